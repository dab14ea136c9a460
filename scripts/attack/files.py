"""Bad-input cases of files: TIFF, NPY and MRC.

- byte order (issue 17, point 1): every dtype in both byte orders, uncompressed
  (memory-mapped, and tiled: not memory-mapped) and compressed, plain, ImageJ
  and OME, with and without a class channel; the ids must be tifffile's;
- truncated, empty and garbage files of each type;
- contents that are not a mask (non-integral floats, negative ids, ids above
  2**32 - 1, RGB, several series, pages of different shapes...) and contents
  that are (big-endian NPY and MRC, Fortran order, uint32 at its maximum);
- masks whose shapes differ.

Each case's mask B is a good little-endian uint16 TIFF ``b.tif`` (with a class
channel when A has one), so that what is attacked is A.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .common import masks
from .inputs import Case, merge_setup

SHAPES = {2: (40, 48), 3: (6, 40, 48)}
#: Largest id of the masks made for a dtype.
TOP = {"u1": 255, "i1": 127, "i2": 32767}
#: Ids of 32- and 64-bit dtypes are spread beyond 16 bits (float32: exactly representable).
SPREAD = {"u4": 35791, "i4": 35791, "f8": 35791, "f4": 251}
#: How a TIFF's data is laid out; "contiguous" is the memory-mapped path.
LAYOUTS = {
    "contiguous": {},
    "tiled": {"tile": (16, 16)},
    "zlib": {"compression": "zlib"},
    "zlib+predictor": {"compression": "zlib", "predictor": True},
    "lzw": {"compression": "lzw"},
    "zstd": {"compression": "zstd"},
}


def _pair(rng, ndim: int, *, dtype="u2"):
    """Masks A (of ``dtype``, ids spread over its range) and B (uint16) of one image."""
    a, b = masks(rng, SHAPES[ndim], top=TOP.get(dtype, 60000))
    return (a.astype(np.int64) * SPREAD.get(dtype, 1)).astype(dtype), b.astype(np.uint16)


def _classes(labels: np.ndarray) -> np.ndarray:
    """A class per object: 3, 6, ... 15 (from its id)."""
    return ((labels.astype(np.int64) % 5 + 1) * 3 * (labels > 0)).astype(labels.dtype)


def write_tiff(path: Path, data, *, byteorder: str = "<", layout: str = "contiguous",
               flavour: str = "shaped", axes: str | None = None) -> None:
    import tifffile

    options = dict(LAYOUTS[layout], byteorder=byteorder, photometric="minisblack")
    if flavour == "imagej":
        options.update(imagej=True, metadata={"axes": axes} if axes else {})
    elif flavour == "ome":
        options.update(ome=True, metadata={"axes": axes} if axes else {})
    elif axes:
        options["metadata"] = {"axes": axes}
    tifffile.imwrite(path, data, **options)


def _write_b(folder: Path, b, *, classes: bool = False) -> tuple[str, object]:
    """Mask B as a plain TIFF (planar class channel first when ``classes``)."""
    cls = _classes(b) if classes else None
    axes = ("ZCYX" if b.ndim == 3 else "CYX") if classes else None
    data = np.stack([b, cls], axis=-3) if classes else b
    write_tiff(folder / "b.tif", data, axes=axes)
    return "b.tif", cls


# --------------------------------------------------------------------------- byte order


def byte_order_case(dtype: str, order: str, layout: str, *, flavour: str = "shaped",
                classes: bool = False) -> Case:
    def build(folder, rng):
        import tifffile

        ndim = 2 + int(rng.integers(0, 2))
        a, b = _pair(rng, ndim, dtype=dtype)
        if classes:
            axes = "ZCYX" if ndim == 3 else "CYX"
            data = np.stack([a, _classes(a)], axis=-3)
        else:
            axes, data = ("ZYX" if ndim == 3 else "YX") if flavour != "shaped" else None, a
        write_tiff(folder / "a.tif", data, byteorder=order, layout=layout, flavour=flavour,
                   axes=axes)
        ref = tifffile.imread(folder / "a.tif")
        ref_a, ref_classes = (ref.take(0, axis=-3), ref.take(1, axis=-3)) if classes \
            else (ref, None)
        b_name, b_classes = _write_b(folder, b, classes=classes)
        return merge_setup("a.tif", b_name, ref_a=ref_a, ref_b=b, classes_a=ref_classes,
                           classes_b=b_classes, expect="succeed", policy="union")

    what = f"{flavour}{'+classes' if classes else ''}"
    return Case(f"tiff-byte-order/{what}/{dtype}/{order}/{layout}", build, point=1)


def byte_order_cases() -> list[Case]:
    cases = [byte_order_case(dtype, order, layout)
             for dtype in ("u1", "u2", "u4", "i1", "i2", "i4", "f4", "f8")
             for order in "<>" for layout in LAYOUTS]
    cases += [byte_order_case(dtype, order, layout, classes=True)
              for dtype in ("u2", "u4", "i2", "f4") for order in "<>"
              for layout in ("contiguous", "tiled", "zlib")]
    cases += [byte_order_case(dtype, order, layout, flavour="imagej", classes=classes)
              for dtype in ("u1", "u2", "f4") for order in "<>"
              for layout in ("contiguous", "zlib") for classes in (False, True)]
    cases += [byte_order_case(dtype, order, layout, flavour="ome")
              for dtype in ("u2", "u4") for order in "<>" for layout in ("contiguous", "zlib")]
    return cases


# --------------------------------------------------------------------------- damaged files


def _write(kind: str, path: Path, data) -> None:
    if kind == "tif":
        write_tiff(path, data)
    elif kind == "tif-zlib":
        write_tiff(path, data, layout="zlib")
    elif kind == "npy":
        np.save(path, data)
    else:
        import mrcfile

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.new(path, overwrite=True) as mrc:
                mrc.set_data(data)


_SUFFIX = {"tif": ".tif", "tif-zlib": ".tif", "npy": ".npy", "mrc": ".mrc"}
_DTYPE = {"tif": "u2", "tif-zlib": "u4", "npy": "u4", "mrc": "i2"}


def _cut(kind: str, keep: str, ndim: int) -> Case:
    """A good file cut short: the right reading is the whole file's, or a refusal."""
    def build(folder, rng):
        a, b = _pair(rng, ndim, dtype=_DTYPE[kind])
        path = folder / f"a{_SUFFIX[kind]}"
        _write(kind, path, a)
        raw = path.read_bytes()
        fixed = {"empty": 0, "8 bytes": 8, "last byte": len(raw) - 1}
        size = fixed[keep] if keep in fixed else int(len(raw) * float(keep.rstrip("%")) / 100)
        path.write_bytes(raw[:size])
        _write_b(folder, b)
        return merge_setup(path.name, "b.tif", ref_a=a, ref_b=b, expect="either")

    return Case(f"truncated/{kind}/{ndim}d/{keep}", build)


def _garbage(suffix: str, style: str) -> Case:
    magic = {".tif": b"II*\x00\x08\x00\x00\x00", ".npy": b"\x93NUMPY\x01\x00v\x00",
             ".mrc": b""}[suffix]

    def build(folder, rng):
        a, b = _pair(rng, 3)
        path = folder / f"a{suffix}"
        noise = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
        path.write_bytes({"noise": noise, "magic+noise": magic + noise,
                          "text": b"not an image\n" * 40, "zeros": bytes(4096)}[style])
        _write_b(folder, b)
        return merge_setup(path.name, "b.tif", ref_a=None, ref_b=b, expect="refuse")

    return Case(f"garbage/{suffix[1:]}/{style}", build)


def damaged_cases() -> list[Case]:
    cuts = ("empty", "8 bytes", "10%", "25%", "50%", "75%", "99%", "last byte")
    cases = [_cut(kind, keep, ndim) for kind in _SUFFIX for ndim in (2, 3) for keep in cuts]
    cases += [_garbage(suffix, style) for suffix in (".tif", ".npy", ".mrc")
              for style in ("noise", "magic+noise", "text", "zeros")]
    return cases


# --------------------------------------------------------------------------- contents


def _contents(name: str, a):
    """(data, expect, what A must read as) for a content of A named ``name``."""
    big = a.astype(np.uint64)
    big[a == a.max()] = 2**32
    top = a.astype(np.uint32)
    top[a == a.max()] = 2**32 - 1
    negative = a.astype(np.int32)
    negative[a == a.max()] = -5
    nan = a.astype(np.float32)
    nan.flat[np.flatnonzero(a)[0]] = np.nan
    return {
        "float32 non-integral": ((a + 0.5 * (a > 0)).astype(np.float32), "refuse", None),
        "float64 non-integral": (a.astype(np.float64) + 0.25 * (a > 0), "refuse", None),
        "float32 integral": (a.astype(np.float32), "succeed", a),
        "float32 NaN": (nan, "refuse", None),
        "int32 negative": (negative, "refuse", None),
        "int16 negative": (negative.astype(np.int16), "refuse", None),
        "uint64 above 2**32-1": (big, "refuse", None),
        "uint32 at 2**32-1": (top, "succeed", top),
        "int64 small": (a.astype(np.int64), "succeed", a),
        "bool": (a > 0, "either", (a > 0).astype(np.uint8)),
        "complex64": (a.astype(np.complex64), "refuse", None),
        "1d": (a.reshape(-1), "refuse", None),
        "4d or more": (np.broadcast_to(a, (3, 2, *a.shape)).copy(), "refuse", None),
        "empty array": (a[:0], "refuse", None),
    }[name]


#: Contents each format can hold (MRC has modes for a few dtypes only).
_CONTENTS = {
    "tif": ("float32 non-integral", "float64 non-integral", "float32 integral", "float32 NaN",
            "int32 negative", "int16 negative", "uint64 above 2**32-1", "uint32 at 2**32-1",
            "int64 small", "bool", "complex64", "4d or more", "empty array"),
    "npy": ("float32 non-integral", "float64 non-integral", "float32 integral", "float32 NaN",
            "int32 negative", "int16 negative", "uint64 above 2**32-1", "uint32 at 2**32-1",
            "int64 small", "bool", "complex64", "1d", "4d or more", "empty array"),
    "mrc": ("float32 non-integral", "float32 integral", "float32 NaN", "int16 negative",
            "complex64"),
}


def _content(kind: str, name: str, ndim: int) -> Case:
    def build(folder, rng):
        a, b = _pair(rng, ndim, dtype="u2" if kind != "mrc" else "i2")
        data, expect, ref = _contents(name, a)
        path = folder / f"a{_SUFFIX[kind]}"
        _write(kind, path, data)
        _write_b(folder, b)
        return merge_setup(path.name, "b.tif", ref_a=ref, ref_b=b, expect=expect)

    return Case(f"content/{kind}/{ndim}d/{name}", build)


def _endianness(kind: str, dtype: str, ndim: int, *, classes: bool = False,
                order: str = "C") -> Case:
    """Good NPY and MRC files in the other byte order (or Fortran order)."""
    def build(folder, rng):
        a, b = _pair(rng, ndim, dtype=dtype.lstrip("<>"))
        data = np.stack([a, _classes(a)], axis=-1) if classes else a
        data = np.asfortranarray(data.astype(dtype)) if order == "F" else data.astype(dtype)
        path = folder / f"a{_SUFFIX[kind]}"
        _write(kind, path, data)
        ref = _reference_read(path)
        ref_a, ref_classes = (ref[..., 0], ref[..., 1]) if classes else (ref, None)
        b_name, b_classes = _write_b(folder, b, classes=classes)
        return merge_setup(path.name, b_name, ref_a=ref_a, ref_b=b, classes_a=ref_classes,
                           classes_b=b_classes, expect="succeed", policy="b")

    tail = "+classes" if classes else ""
    point = 1 if dtype.startswith(">") else None
    return Case(f"byte-order/{kind}/{dtype}{tail}/{order}/{ndim}d", build, point=point)


def _reference_read(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return np.load(path)
    import mrcfile

    with mrcfile.open(path, permissive=True) as mrc:
        return np.array(mrc.data)


def content_cases() -> list[Case]:
    cases = [_content(kind, name, ndim) for kind, names in _CONTENTS.items() for name in names
             for ndim in (2, 3)]
    cases += [_endianness("npy", dtype, ndim) for dtype in (">u2", ">i4", ">f8", ">u4", "<u4")
              for ndim in (2, 3)]
    cases += [_endianness("npy", ">u2", 3, classes=True), _endianness("npy", "<u2", 2, order="F"),
              _endianness("npy", ">i4", 3, order="F")]
    cases += [_endianness("mrc", dtype, ndim) for dtype in (">i2", "<i2", ">f4", "<u2", ">u2")
              for ndim in (2, 3)]
    return cases


# --------------------------------------------------------------------------- TIFF structure


def _structure(name: str) -> Case:
    def build(folder, rng):
        import tifffile

        a, b = _pair(rng, 3)
        path = folder / "a.tif"
        spec, expect, ref = "a.tif", "refuse", None
        if name in ("rgb", "rgba", "rgb uint16"):
            channels = 4 if name == "rgba" else 3
            dtype = np.uint16 if name == "rgb uint16" else np.uint8
            data = np.stack([a[0] % 256] * channels, axis=-1).astype(dtype)
            tifffile.imwrite(path, data, photometric="rgb",
                             extrasamples=["unassalpha"] if channels == 4 else None)
            b = b[0]
        elif name.startswith("series"):
            other = a[:, :20] if name == "series of two shapes" else a[::-1]
            tifffile.imwrite(path, a)
            tifffile.imwrite(path, other, append=True)
            if name == "series chosen as FILE:1":
                spec, expect, ref = "a.tif:1", "succeed", other
            elif name == "series FILE:7 missing":
                spec = "a.tif:7"
        elif name.startswith("pages of two shapes"):
            kind = name.rsplit(" ", 1)[-1]
            description = {"imagej": "ImageJ=1.11a\nimages=6\nslices=6\n", "generic": None}[kind]
            with tifffile.TiffWriter(path) as tif:
                for z, page in enumerate(a):
                    page = page[:30] if z == 3 else page
                    tif.write(page, photometric="minisblack", metadata=None,
                              description=description if z == 0 else None)
        elif name == "pyramid":  # levels of one series: level 0 is the mask
            with tifffile.TiffWriter(path) as tif:
                tif.write(a[0], subifds=1, metadata=None)
                tif.write(a[0][::2, ::2], subfiletype=1, metadata=None)
            b, expect, ref = b[0], "succeed", a[0]
        _write_b(folder, b)
        return merge_setup(spec, "b.tif", ref_a=ref, ref_b=b, expect=expect)

    return Case(f"tiff-structure/{name}", build)


def structure_cases() -> list[Case]:
    names = ("rgb", "rgba", "rgb uint16", "series of two shapes", "series of one shape",
             "series chosen as FILE:1", "series FILE:7 missing", "pages of two shapes generic",
             "pages of two shapes imagej", "pyramid")
    return [_structure(name) for name in names]


# --------------------------------------------------------------------------- shapes


def _shapes(name: str, a_shape, b_shape, *, kind: str = "tif") -> Case:
    def build(folder, rng):
        a, _ = masks(rng, a_shape)
        _, b = masks(rng, b_shape)
        _write(kind, folder / f"a{_SUFFIX[kind]}", a.astype(np.uint16))
        _write_b(folder, b.astype(np.uint16))
        return merge_setup(f"a{_SUFFIX[kind]}", "b.tif", ref_a=a, ref_b=b, expect="refuse",
                           names=("a.", "b.tif"))

    return Case(f"shapes/{name}", build)


def shape_cases() -> list[Case]:
    return [
        _shapes("3d vs 2d", (6, 40, 48), (40, 48)),
        _shapes("2d vs 3d", (40, 48), (6, 40, 48)),
        _shapes("x differs", (6, 40, 48), (6, 40, 47)),
        _shapes("y differs 2d", (40, 48), (41, 48)),
        _shapes("z differs", (6, 40, 48), (5, 40, 48)),
        _shapes("transposed", (6, 40, 48), (6, 48, 40)),
        _shapes("npy vs tif", (6, 40, 48), (6, 40, 40), kind="npy"),
        _shapes("mrc vs tif", (6, 40, 48), (7, 40, 48), kind="mrc"),
    ]


def cases() -> list[Case]:
    return [*byte_order_cases(), *damaged_cases(), *content_cases(), *structure_cases(),
            *shape_cases()]
