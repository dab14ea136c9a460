"""Bad-input cases of stores: zarr v2 and v3, OME-Zarr 0.4 and 0.5, HDF5.

- damaged chunks (issue 17, point 2): truncated, empty, garbage, a chunk file
  replaced by a folder (all refused), a missing chunk (zarr's fill value,
  legitimately); with threads and with ``--workers 2``;
- damaged metadata, dtypes that are not a mask's, big-endian stores;
- malformed NGFF metadata (point 3): units that are lists, string scales, wrong
  types, integer axes or dataset paths; older NGFF layouts that must still open;
  a ``fill_value`` that is not 0 (a warning);
- HDF5: truncated, garbage, a corrupt chunk (the message must name the file),
  several datasets, big-endian datasets.

Mask B is a good store of the same kind as A; the reference of a store is what
zarr or h5py read from it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from .common import masks
from .inputs import Case, merge_setup

SHAPE = (6, 40, 48)
CHUNKS = (3, 16, 16)
_METADATA = {"zarr.json", ".zarray", ".zattrs", ".zgroup"}


# --------------------------------------------------------------------------- writers


def write_zarr(path: Path, data, *, fmt: int = 3, dtype=None, fill_value=0, sharded=False,
               big_endian=False, chunks=CHUNKS) -> Path:
    """A plain zarr array (v2 or v3); returns the folder of its chunks."""
    import zarr

    options = {"shards": (6, 32, 32)} if sharded else {}
    if big_endian and fmt == 3:
        from zarr.codecs import BytesCodec

        options["serializer"] = BytesCodec(endian="big")
    dtype = np.dtype(dtype or data.dtype)
    if big_endian and fmt == 2:
        dtype = dtype.newbyteorder(">")
    array = zarr.create_array(store=str(path), shape=data.shape, chunks=chunks, dtype=dtype,
                              zarr_format=fmt, fill_value=fill_value, **options)
    array[...] = data
    return path


def _ngff(version: str, *, unit="micrometer") -> dict:
    axes = [{"name": n, "type": "space", "unit": unit} for n in "zyx"]
    multiscale = {"axes": axes, "name": "a", "datasets": [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [2.0, 0.5, 0.5]}]}]}
    if version == "0.4":
        multiscale["version"] = "0.4"
    return multiscale


def write_ome_zarr(path: Path, data, *, version: str = "0.4", labels: bool = False,
                   mutate=None) -> tuple[str, Path]:
    """An OME-Zarr image (or an image with one label ``cells`` holding ``data``); ``mutate``
    changes the NGFF attributes of the group holding the data. Returns (the path to give,
    the folder of the data's level-0 chunks)."""
    import zarr

    fmt = 2 if version == "0.4" else 3
    root = zarr.open_group(str(path), mode="w", zarr_format=fmt)
    holder, spec = root, path.name
    if labels:
        _level(root, np.zeros(data.shape, np.uint8), version=version)
        group = root.create_group("labels")
        _set_ngff(group, {"labels": ["cells"]}, version=version)
        holder, spec = group.create_group("cells"), f"{path.name}/labels/cells"
    ngff = _level(holder, data, version=version, labels=labels)
    if mutate is not None:
        mutate(ngff)
        _set_ngff(holder, ngff, version=version)
    return spec, path / spec.split("/", 1)[1] / "0" if labels else path / "0"


def _level(group, data, *, version: str, labels: bool = False) -> dict:
    array = group.create_array("0", shape=data.shape, chunks=CHUNKS, dtype=data.dtype)
    array[...] = data
    ngff = {"multiscales": [_ngff(version)]}
    if labels:
        ngff["image-label"] = {"version": version, "source": {"image": "../../"}}
    _set_ngff(group, ngff, version=version)
    return ngff


def _set_ngff(group, ngff: dict, *, version: str) -> None:
    if version == "0.4":
        group.attrs.put(ngff)
    else:
        group.attrs.put({"ome": {"version": "0.5", **ngff}})


def write_hdf5(path: Path, datasets: dict, *, compression="gzip") -> None:
    import h5py

    with h5py.File(path, "w") as f:
        for name, data in datasets.items():
            f.create_dataset(name, data=data, chunks=CHUNKS, compression=compression)


def read_store(spec: Path) -> np.ndarray:
    """What zarr or h5py read from a store (the reference)."""
    text = str(spec)
    if ".h5" in text:
        import h5py

        file, _, name = text.partition(":")
        with h5py.File(file, "r") as f:
            return np.asarray(f[name or "seg"])
    import zarr

    node = zarr.open(store=text, mode="r")
    return np.asarray(node[...] if isinstance(node, zarr.Array) else node["0"][...])


def chunk_files(folder: Path) -> list[Path]:
    """The chunk files of an array's folder (no metadata), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in _METADATA)


def _stored(kind: str, folder: Path, name: str, data, **options) -> tuple[str, Path]:
    """Write ``data`` as ``kind`` under ``folder/name.<suffix>``: (spec, chunks folder)."""
    if kind.startswith("zarr"):
        path = folder / f"{name}.zarr"
        write_zarr(path, data, fmt=3 if "v3" in kind else 2, sharded="sharded" in kind,
                   **options)
        return path.name, path
    if kind.startswith("ome-zarr"):
        return write_ome_zarr(folder / f"{name}.ome.zarr", data, version=kind.split()[-1],
                              labels=options.get("labels", False))
    write_hdf5(folder / f"{name}.h5", {"seg": data})
    return f"{name}.h5", folder / f"{name}.h5"


def _pair(rng, dtype="u2"):
    a, b = masks(rng, SHAPE)
    return a.astype(dtype), b.astype(np.uint16)


# --------------------------------------------------------------------------- damaged chunks


def _damaged_chunk(kind: str, damage: str, *, workers: bool = False) -> Case:
    def build(folder, rng):
        a, b = _pair(rng)
        spec, chunks = _stored(kind, folder, "a", a)
        b_spec, _ = _stored(kind, folder, "b", b)
        files = chunk_files(chunks)
        victim = files[int(rng.integers(0, len(files)))]
        raw = victim.read_bytes()
        victim.unlink()
        if damage == "truncated":
            victim.write_bytes(raw[:len(raw) // 2])
        elif damage == "empty":
            victim.write_bytes(b"")
        elif damage == "garbage":
            victim.write_bytes(rng.integers(0, 256, len(raw), dtype=np.uint8).tobytes())
        elif damage == "a folder":
            victim.mkdir()
        missing = damage == "missing"
        out = "out.zarr" if rng.integers(0, 2) else "out.tif"
        return merge_setup(spec, b_spec, ref_a=read_store(folder / spec) if missing else None,
                           ref_b=b, expect="succeed" if missing else "refuse", out=out,
                           names=(spec.split("/")[0],),
                           options=("--workers", "2") if workers else ())

    engine = "workers 2" if workers else "threads"
    return Case(f"damaged-chunk/{kind}/{damage}/{engine}", build, point=2)


def _damaged_hdf5_chunk() -> Case:
    def build(folder, rng):
        import h5py

        a, b = _pair(rng)
        write_hdf5(folder / "a.h5", {"seg": a})
        write_hdf5(folder / "b.h5", {"seg": b})
        with h5py.File(folder / "a.h5", "r") as f:
            info = f["seg"].id.get_chunk_info(int(rng.integers(0, f["seg"].id.get_num_chunks())))
        with open(folder / "a.h5", "r+b") as f:
            f.seek(info.byte_offset)
            f.write(rng.integers(0, 256, info.size, dtype=np.uint8).tobytes())
        return merge_setup("a.h5", "b.h5", ref_a=None, ref_b=b, expect="refuse")

    return Case("damaged-chunk/hdf5/garbage/threads", build, point=2)


def damaged_chunk_cases() -> list[Case]:
    kinds = ("zarr v2", "zarr v3", "zarr v3 sharded", "ome-zarr 0.4", "ome-zarr 0.5")
    cases = [_damaged_chunk(kind, damage) for kind in kinds
             for damage in ("truncated", "empty", "garbage", "a folder", "missing")]
    cases += [_damaged_chunk(kind, damage, workers=True) for kind in ("zarr v2", "ome-zarr 0.5")
              for damage in ("truncated", "garbage", "a folder")]
    return [*cases, _damaged_hdf5_chunk(), _damaged_hdf5_chunk()]


# --------------------------------------------------------------------------- metadata, dtypes


def _damaged_metadata(fmt: int, damage: str) -> Case:
    def build(folder, rng):
        import json

        a, b = _pair(rng)
        write_zarr(folder / "a.zarr", a, fmt=fmt)
        write_zarr(folder / "b.zarr", b, fmt=fmt)
        meta = folder / "a.zarr" / ("zarr.json" if fmt == 3 else ".zarray")
        raw = meta.read_bytes()
        if damage in ("empty", "truncated", "garbage"):
            meta.write_bytes({"empty": b"", "truncated": raw[:len(raw) // 2],
                              "garbage": rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
                              }[damage])
        else:
            fields = json.loads(raw)
            key = "data_type" if fmt == 3 else "dtype"
            changed = {"unknown dtype": (key, "banana"), "shape of strings": ("shape", ["6", "x"]),
                       "negative shape": ("shape", [-6, 40, 48]),
                       "shape of another rank": ("shape", [6, 40])}[damage]
            fields[changed[0]] = changed[1]
            meta.write_text(json.dumps(fields))
        return merge_setup("a.zarr", "b.zarr", ref_a=None, ref_b=b, expect="refuse")

    return Case(f"zarr-metadata/v{fmt}/{damage}", build)


def _store_dtype(kind: str, name: str) -> Case:
    """Store contents: big-endian (must read right), not a mask (refused), floats (either)."""
    def build(folder, rng):
        a, b = _pair(rng)
        data, expect, options = a, "succeed", {}
        if name == "big-endian":
            options = {"big_endian": True} if kind.startswith("zarr") else {}
            data = a if kind.startswith("zarr") else a.astype(">u2")
        elif name == "uint64 small":
            data = a.astype(np.uint64)
        elif name == "uint64 above 2**32-1":
            data = a.astype(np.uint64)
            data[a == a.max()] = 2**33
            expect = "refuse"
        elif name == "int32 negative":
            data = a.astype(np.int32)
            data[a == a.max()] = -3
            expect = "refuse"
        elif name == "float32 integral":
            data, expect = a.astype(np.float32), "either"
        elif name == "float32 non-integral":
            data, expect = (a + 0.5 * (a > 0)).astype(np.float32), "refuse"
        elif name == "bool":
            data, expect = a > 0, "either"
        elif name == "int8":
            data = (a % 100).astype(np.int8)
        if kind == "hdf5":
            write_hdf5(folder / "a.h5", {"seg": data})
            spec = "a.h5"
        else:
            spec, _ = _stored(kind, folder, "a", data, **options)
        b_spec, _ = _stored(kind, folder, "b", b)
        ref = read_store(folder / spec) if expect != "refuse" else None
        return merge_setup(spec, b_spec, ref_a=ref, ref_b=b, expect=expect,
                           out="out.zarr" if rng.integers(0, 2) else "out.tif")

    return Case(f"store-dtype/{kind}/{name}", build, point=1 if name == "big-endian" else None)


def dtype_cases() -> list[Case]:
    names = ("big-endian", "uint64 small", "uint64 above 2**32-1", "int32 negative",
             "float32 integral", "float32 non-integral", "bool", "int8")
    cases = [_store_dtype(kind, name) for kind in ("zarr v2", "zarr v3", "hdf5")
             for name in names]
    cases += [_damaged_metadata(fmt, damage) for fmt in (2, 3)
              for damage in ("empty", "truncated", "garbage", "unknown dtype", "shape of strings",
                             "negative shape", "shape of another rank")]
    return cases


# --------------------------------------------------------------------------- NGFF


def _axes(ngff):
    return ngff["multiscales"][0]["axes"]


def _dataset(ngff):
    return ngff["multiscales"][0]["datasets"][0]


def _set(getter, key, value):
    return lambda ngff: getter(ngff).__setitem__(key, value)


#: name -> (change of the NGFF attributes, expect)
NGFF_CHANGES = {
    "axis unit a list": (lambda n: _axes(n)[2].__setitem__("unit", ["micrometer"]), "either"),
    "axis unit a number": (lambda n: _axes(n)[2].__setitem__("unit", 5), "either"),
    "axis unit unknown": (lambda n: _axes(n)[2].__setitem__("unit", "furlong"), "either"),
    "axis name a number": (lambda n: _axes(n)[0].__setitem__("name", 0), "either"),
    "axis type unknown": (lambda n: _axes(n)[0].__setitem__("type", "banana"), "either"),
    "axes integers": (_set(lambda n: n["multiscales"][0], "axes", [0, 1, 2]), "either"),
    "axes a string": (_set(lambda n: n["multiscales"][0], "axes", "zyx"), "either"),
    "axes without names": (_set(lambda n: n["multiscales"][0], "axes", [{}, {}, {}]), "either"),
    "axes too few": (_set(lambda n: n["multiscales"][0], "axes", _ngff("0.4")["axes"][1:]),
                     "either"),
    "axes as strings (NGFF 0.3)": (_set(lambda n: n["multiscales"][0], "axes", ["z", "y", "x"]),
                                   "succeed"),
    "no axes (NGFF 0.1)": (lambda n: n["multiscales"][0].pop("axes"), "succeed"),
    "scale of strings": (lambda n: _dataset(n)["coordinateTransformations"][0].__setitem__(
        "scale", ["2", "0.5", "0.5"]), "either"),
    "scale a string": (lambda n: _dataset(n)["coordinateTransformations"][0].__setitem__(
        "scale", "0.5"), "either"),
    "scale null": (lambda n: _dataset(n)["coordinateTransformations"][0].__setitem__(
        "scale", None), "either"),
    "scale of nulls": (lambda n: _dataset(n)["coordinateTransformations"][0].__setitem__(
        "scale", [None, 1, 1]), "either"),
    "scale zero and negative": (lambda n: _dataset(n)["coordinateTransformations"][0]
                                .__setitem__("scale", [0, -1, 0.5]), "either"),
    "scale too short": (lambda n: _dataset(n)["coordinateTransformations"][0].__setitem__(
        "scale", [0.5, 0.5]), "either"),
    "transforms a dict": (_set(_dataset, "coordinateTransformations",
                               {"type": "scale", "scale": [1, 1, 1]}), "either"),
    "transform a string": (_set(_dataset, "coordinateTransformations", ["scale"]), "either"),
    "dataset path a number": (_set(_dataset, "path", 0), "either"),
    "dataset path missing": (_set(_dataset, "path", "7"), "refuse"),
    "datasets a dict": (_set(lambda n: n["multiscales"][0], "datasets", {"path": "0"}),
                        "either"),
    "datasets empty": (_set(lambda n: n["multiscales"][0], "datasets", []), "refuse"),
    "multiscales a dict": (lambda n: n.__setitem__("multiscales", n["multiscales"][0]),
                           "either"),
    "multiscales a string": (lambda n: n.__setitem__("multiscales", "x"), "either"),
    "multiscales [5]": (lambda n: n.__setitem__("multiscales", [5]), "either"),
    "image-label a string": (lambda n: n.__setitem__("image-label", "x"), "either"),
}


def _ngff_case(version: str, name: str) -> Case:
    change, expect = NGFF_CHANGES[name]
    if version != "0.4" and expect == "succeed":  # layouts of NGFF before 0.4: must still open
        expect = "either"
    labels = name.startswith("image-label")

    def build(folder, rng):
        a, b = _pair(rng)
        spec, _ = write_ome_zarr(folder / "a.ome.zarr", a, version=version, labels=labels,
                                 mutate=change)
        b_spec, _ = write_ome_zarr(folder / "b.ome.zarr", b, version=version)
        return merge_setup(spec, b_spec, ref_a=None if expect == "refuse" else a, ref_b=b,
                           expect=expect, names=("a.ome.zarr",),
                           out="out.zarr" if rng.integers(0, 2) else "out.tif")

    return Case(f"ngff/{version}/{name}", build, point=3)


def _fill_value(fmt: int, *, missing: bool) -> Case:
    """A store whose fill value is 7: a missing chunk reads as an object of id 7."""
    def build(folder, rng):
        a, b = _pair(rng)
        write_zarr(folder / "a.zarr", a, fmt=fmt, fill_value=7)
        write_zarr(folder / "b.zarr", b, fmt=fmt)
        if missing:
            files = chunk_files(folder / "a.zarr")
            files[int(rng.integers(0, len(files)))].unlink()
        ref = read_store(folder / "a.zarr")
        return merge_setup("a.zarr", "b.zarr", ref_a=ref, ref_b=b,
                           expect="warn" if missing else "succeed", names=("a.zarr",))

    return Case(f"fill-value/v{fmt}/7{', a chunk missing' if missing else ''}", build,
                point=3 if missing else None)


def ngff_cases() -> list[Case]:
    cases = [_ngff_case(version, name) for version in ("0.4", "0.5") for name in NGFF_CHANGES]
    return cases + [_fill_value(fmt, missing=True) for fmt in (2, 3)]


# --------------------------------------------------------------------------- damaged files


def _damaged_file(kind: str, damage: str) -> Case:
    """A store's file (HDF5) or folder (zarr) damaged as a whole."""
    def build(folder, rng):
        a, b = _pair(rng)
        spec, path = _stored(kind, folder, "a", a)
        b_spec, _ = _stored(kind, folder, "b", b)
        ref = None
        if kind == "hdf5":
            raw = path.read_bytes()
            path.write_bytes({"empty": b"", "8 bytes": raw[:8], "half": raw[:len(raw) // 2],
                              "garbage": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
                              }[damage])
        elif damage == "no metadata":
            for meta in path.rglob("*"):
                if meta.name in _METADATA:
                    meta.unlink()
        elif damage == "a file":
            shutil.rmtree(path)
            path.write_bytes(b"zarr?")
        elif damage == "empty folder":
            shutil.rmtree(path)
            path.mkdir()
        return merge_setup(spec, b_spec, ref_a=ref, ref_b=b, expect="refuse",
                           names=(spec.split("/")[0],))

    return Case(f"damaged-store/{kind}/{damage}", build)


def _hdf5_choice(spec: str, expect: str) -> Case:
    def build(folder, rng):
        a, b = _pair(rng)
        write_hdf5(folder / "a.h5", {"seg": a, "other/raw": b})
        write_hdf5(folder / "b.h5", {"seg": b})
        ref = {"a.h5:/seg": a, "a.h5:/other/raw": b}.get(spec)
        return merge_setup(spec, "b.h5:/seg", ref_a=ref, ref_b=b, expect=expect,
                           names=("a.h5",))

    return Case(f"hdf5-datasets/{spec}", build)


def file_cases() -> list[Case]:
    cases = [_damaged_file("hdf5", d) for d in ("empty", "8 bytes", "half", "garbage")]
    cases += [_damaged_file(kind, d) for kind in ("zarr v2", "zarr v3")
              for d in ("no metadata", "a file", "empty folder")]
    cases += [_hdf5_choice(spec, expect) for spec, expect in (
        ("a.h5", "refuse"), ("a.h5:/seg", "succeed"), ("a.h5:/missing", "refuse"),
        ("a.h5:/other", "refuse"), ("a.h5:/other/raw", "succeed"))]
    return cases


def cases() -> list[Case]:
    return [*damaged_chunk_cases(), *dtype_cases(), *ngff_cases(), *file_cases()]
