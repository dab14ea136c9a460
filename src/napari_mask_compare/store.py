"""Chunked stores in: read zarr, OME-Zarr and HDF5 lazily.

Inputs (:func:`open_array`), read as dask arrays whose blocks are the
storage chunks, nothing read until computed:

- a zarr array, v2 or v3 (``plain.zarr``, ``group.zarr/path/to/array``);
- an OME-Zarr image, NGFF 0.4 (zarr v2) or 0.5 (zarr v3): level 0 of its
  multiscale (``img.ome.zarr``), or of one of its labels
  (``img.ome.zarr/labels/cells``, or ``img.ome.zarr/labels`` when it holds
  exactly one); the voxel size and unit from the NGFF
  ``coordinateTransformations`` and ``axes``;
- an HDF5 dataset (``file.h5:/path/to/dataset``, as ilastik and PlantSeg
  write them; ``file.h5`` alone when it holds one dataset); the voxel size
  from an ``element_size_um`` attribute, the axes from ilastik's
  ``axistags``.

Writing OME-Zarr labels is :mod:`.ome_zarr_out`'s.

Bad input raises :class:`.errors.InputError` with one line naming the path, the
problem and what would be right. No Qt, no napari.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._arrays import native_byte_order
from ._chunks import Hdf5Dataset, ZarrChunks, first_line
from ._ngff import axis_type, labels_of, multiscale_of, ngff_attrs
from .errors import InputError, InputWarning, Loaded

__all__ = [
    "contents",
    "dask_from_zarr",
    "enclosing_store",
    "is_store_path",
    "open_array",
    "store_name",
]

#: Folder endings of a zarr store.
ZARR_SUFFIXES = (".zarr",)
#: File endings of an HDF5 file.
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")

#: ``file.h5:/path/in/file`` (the dataset part may be empty: ``file.h5:``).
_HDF5_SPEC = re.compile(r"(?P<file>.+\.(?:h5|hdf5|hdf|he5)):(?P<dataset>.*)", re.IGNORECASE)
#: Files that make a folder a zarr node.
_ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")


# --------------------------------------------------------------------------- paths


def is_store_path(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` names a zarr store (or a node in one) or an HDF5 file (or dataset).

    Judged from the name, plus a look for zarr's metadata files in a folder
    whose name does not end in ``.zarr``; nothing is opened.

    Examples
    --------
    >>> [is_store_path(s) for s in ("a.zarr", "a.ome.zarr/labels/cells", "f.h5:/seg", "a.tif")]
    [True, True, True, False]
    """
    text = os.fspath(spec)
    if _HDF5_SPEC.fullmatch(text):
        return True
    path = Path(text)
    if path.suffix.lower() in HDF5_SUFFIXES:
        return True
    if any(part.lower().endswith(ZARR_SUFFIXES) for part in path.parts):
        return True
    return path.is_dir() and any((path / marker).is_file() for marker in _ZARR_MARKERS)


def store_name(spec: str | os.PathLike) -> str:
    """A short name for what ``spec`` names: the label's or dataset's name, else the store's.

    Examples
    --------
    >>> [store_name(s) for s in ("img.ome.zarr", "img.ome.zarr/labels/cells", "f.h5:/a/b")]
    ['img', 'cells', 'b']
    """
    text = os.fspath(spec)
    match = _HDF5_SPEC.fullmatch(text)
    if match and match["dataset"].strip("/"):
        return match["dataset"].strip("/").split("/")[-1]
    name = Path(match["file"] if match else text).name
    for suffix in (".ome.zarr", *ZARR_SUFFIXES, *HDF5_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def enclosing_store(path: str | os.PathLike) -> Path | None:
    """The outermost zarr store that ``path`` lies inside (``path`` itself not counted), or None.

    A folder is a store by its name (``*.zarr``) or by zarr's metadata files
    in it; links are followed.

    Examples
    --------
    >>> enclosing_store("/data/img.ome.zarr/labels/x.tif").as_posix(), enclosing_store("a.zarr")
    ('/data/img.ome.zarr', None)
    """
    stores = [folder for folder in Path(os.path.realpath(path)).parents
              if folder.name.lower().endswith(ZARR_SUFFIXES)
              or any((folder / marker).is_file() for marker in _ZARR_MARKERS)]
    return stores[-1] if stores else None


def _split_hdf5(spec: str | os.PathLike) -> tuple[Path, str | None]:
    """``file.h5:/a/b`` -> (file.h5, "/a/b"); ``file.h5`` -> (file.h5, None)."""
    text = os.fspath(spec)
    match = _HDF5_SPEC.fullmatch(text)
    if match is None or Path(text).exists():
        return Path(text), None
    return Path(match["file"]), match["dataset"] or None


# --------------------------------------------------------------------------- reading


def contents(spec: str | os.PathLike) -> list[str]:
    """What a store holds to open, as specs for :func:`open_array` (e.g. for a viewer).

    An HDF5 file: each of its datasets (``file.h5:/ds``); an OME-Zarr image:
    the image, then each of its labels; a zarr group without multiscale:
    each label it holds, else each array in it; anything else (an array, a
    dataset, a label): ``spec`` itself. Nothing is checked beyond the
    metadata: :func:`open_array` says what is wrong with a spec.

    Returns
    -------
    list of str
    """
    text = os.fspath(spec)
    file, dataset = _split_hdf5(text)
    if file.suffix.lower() in HDF5_SUFFIXES:
        if dataset is not None or not file.is_file():
            return [text]
        return [f"{file}:{name}" for name in _hdf5_names(file)] or [text]
    return _zarr_contents(Path(text)) or [text]


def _hdf5_names(file: Path) -> list[str]:
    import h5py

    try:
        with h5py.File(file, "r") as h5:
            return _hdf5_datasets(h5)
    except OSError:
        return []


def _zarr_contents(path: Path) -> list[str]:
    import zarr

    try:
        node = zarr.open(store=str(path), mode="r")
    except Exception:  # not a zarr node: open_array will say so
        return []
    if isinstance(node, zarr.Array):
        return [str(path)]
    try:
        attrs = ngff_attrs(node.attrs, where=path)
        found = [str(path)] if multiscale_of(attrs, where=path) else []
        labels = labels_of(attrs, where=path)
        if labels is None and "labels" in node:
            labels = labels_of(ngff_attrs(node["labels"].attrs, where=path), where=path)
    except ValueError:  # malformed NGFF metadata: open_array says which field
        return []
    if labels:
        found += [str(path / "labels" / name) for name in labels]
    elif not found:
        found = [str(path / name) for name in _arrays_of(node)]
    return found


def open_array(spec: str | os.PathLike, *, what: str = "mask"):
    """Open a zarr array, an OME-Zarr image or labels, or an HDF5 dataset, lazily.

    Parameters
    ----------
    spec : str or PathLike
        ``plain.zarr``, ``group.zarr/path/to/array``, ``img.ome.zarr``
        (level 0 of its multiscale), ``img.ome.zarr/labels/cells``,
        ``img.ome.zarr/labels`` (when it holds one label), a zarr container
        without image that holds one label (as :func:`write_ome_zarr_labels`
        writes), ``file.h5:/path/to/dataset`` or ``file.h5`` (one dataset).
    what : {"mask", "image"}
        A mask must hold integers (or booleans) and no channel axis; an
        image may be of any number type, and a channel axis named by the file
        (NGFF ``"channel"`` axis, ilastik ``c``) is moved last. Axes of
        length 1 named time or channel are dropped.

    Returns
    -------
    errors.Loaded
        ``data`` is a :class:`dask.array.Array` of the stored dtype, shape
        (y, x) or (z, y, x) (more axes when the file names none), with
        chunks equal to the storage chunks (the shards of a sharded zarr v3
        array); ``voxel_size`` per spatial axis and ``unit`` ("µm", "nm", ...,
        or "pixel" when unknown); ``channels`` "C" for a channel axis moved
        last, "" when the file names its axes, None when it does not.

    Raises
    ------
    errors.InputError
        One line: a missing path, a zarr folder that is not an array or a
        multiscale (with the arrays it holds), several labels or datasets to
        choose from (listed), a missing HDF5 dataset, a mask of floats or
        with a channel axis, an empty array.
    """
    if what not in ("mask", "image"):
        raise ValueError(f"what must be 'mask' or 'image', got {what!r}")
    file, dataset = _split_hdf5(spec)
    if file.suffix.lower() in HDF5_SUFFIXES:
        return _open_hdf5(file, dataset, given=spec, what=what)
    return _open_zarr(Path(os.fspath(spec)), what=what)


def _open_zarr(path: Path, *, what: str):
    import zarr

    if not path.exists():
        raise InputError(f"{path}: no such zarr store or folder")
    if not path.is_dir():
        raise InputError(f"{path}: is a file, expected a zarr store (a folder) or an array "
                         "in one")
    if not any((path / marker).is_file() for marker in _ZARR_MARKERS):
        raise InputError(f"{path}: is not a zarr array or group (no zarr.json, .zarray or "
                         ".zgroup in it); expected a zarr store or a path to an array in one")
    try:
        node = zarr.open(store=str(path), mode="r")
    except Exception as err:  # zarr raises several types for damaged metadata
        raise InputError(f"{path}: cannot be read as zarr ({first_line(err)})") from err
    array, multiscale, level, label = _resolve_zarr(node, path)
    if what == "mask":
        _warn_if_missing_chunks_are_objects(array, path)
    axes, scale, unit = (multiscale.axes_scale_unit(level, ndim=array.ndim)
                         if multiscale is not None else (None, [1.0] * array.ndim, "pixel"))
    data = dask_from_zarr(array, spec=path)
    loaded = _finish(data, axes=axes, scale=scale, unit=unit, path=path, what=what)
    return dataclasses.replace(loaded, labels=True) if label else loaded


def _warn_if_missing_chunks_are_objects(array, path: Path) -> None:
    """An :class:`.errors.InputWarning` when chunks of a mask are missing and its fill value is
    not 0.

    zarr reads a missing chunk as the fill value: 0 is background, anything
    else an object as large as the chunk. Counting the chunks stored lists the
    store: done only for a fill value other than 0.
    """
    fill = array.fill_value
    if fill is None or fill == 0:
        return
    missing = array.nchunks - array.nchunks_initialized
    if missing > 0:
        fill = fill.item() if hasattr(fill, "item") else fill
        warnings.warn(f"{path}: fill_value is {fill}, so its {missing} missing chunk(s) (of "
                      f"{array.nchunks}) read as objects of id {fill}, not as background; "
                      "a mask's fill_value should be 0", InputWarning, stacklevel=4)


def _resolve_zarr(node, path: Path) -> tuple:
    """The array that ``node`` names, the NGFF multiscale that holds it, its level there.

    Returns
    -------
    array : zarr.Array
    multiscale : _ngff.Multiscale or None
        The multiscale whose level ``array`` is (None when there is none).
    level : int
    label : bool
        Whether the multiscale group is an NGFF image-label.

    A multiscale group gives its level 0; a labels group its only label; a
    container without image its only label; an array that is a level of a
    multiscale (its parent folder) gives that level.

    Raises
    ------
    errors.InputError
        Malformed NGFF metadata (the field named, :mod:`._ngff`), a level 0 or
        a label that is listed but missing, a group that names no array.
    """
    import zarr

    if isinstance(node, zarr.Array):
        return (node, *_parent_multiscale(path))
    attrs = ngff_attrs(node.attrs, where=path)
    multiscale = multiscale_of(attrs, where=path)
    if multiscale is not None:
        try:
            array = node[multiscale.paths[0]]
        except KeyError as err:
            raise InputError(f"{path}: its level 0 {multiscale.paths[0]!r} is missing; "
                             "expected the array that the NGFF multiscales metadata "
                             "names") from err
        return array, multiscale, 0, "image-label" in attrs
    labels = labels_of(attrs, where=path)
    if labels is None and "labels" in node and not _arrays_of(node, deep=False):
        return _resolve_zarr(node["labels"], path / "labels")
    if labels is not None:
        return _only_label(node, labels, path)
    arrays = _arrays_of(node)
    listed = ", ".join(arrays[:8]) + (", ..." if len(arrays) > 8 else "") or "none"
    raise InputError(f"{path}: is a zarr group, not an array or an OME-Zarr multiscale; give "
                     f"the path of an array in it (arrays: {listed})")


def _only_label(node, labels: Sequence[str], path: Path):
    if len(labels) != 1:
        names = ", ".join(f"{path / name}" for name in labels) or "none"
        raise InputError(f"{path}: holds {len(labels)} labels; choose one by its path "
                         f"({names})")
    if labels[0] not in node:
        raise InputError(f"{path}: lists the label {labels[0]!r} but does not hold it; "
                         "expected a group of that name")
    return _resolve_zarr(node[labels[0]], path / labels[0])


def _arrays_of(group, *, deep: bool = True) -> list[str]:
    """Paths of the arrays in a zarr group (in its sub-groups too when ``deep``), sorted."""
    import zarr

    found = []
    for name, member in sorted(group.members()):
        if isinstance(member, zarr.Array):
            found.append(name)
        elif deep:
            found.extend(f"{name}/{inner}" for inner in _arrays_of(member))
    return found


def _parent_multiscale(path: Path) -> tuple:
    """The NGFF multiscale of the group above the array ``path``, the level, image-label or not.

    ``(None, 0, False)`` unless that group is a multiscale that lists ``path``
    as a level.
    """
    import zarr

    parent = path.resolve().parent
    if not any((parent / marker).is_file() for marker in _ZARR_MARKERS):
        return None, 0, False
    try:
        attrs = zarr.open_group(store=str(parent), mode="r").attrs
    except Exception:  # no group above, or unreadable: no voxel size
        return None, 0, False
    attrs = ngff_attrs(attrs, where=parent)
    multiscale = multiscale_of(attrs, where=parent)
    if multiscale is None or path.resolve().name not in multiscale.paths:
        return None, 0, False
    return multiscale, multiscale.paths.index(path.resolve().name), "image-label" in attrs


def dask_from_zarr(array, *, spec):
    """A dask array over a zarr array, one block per stored chunk (or shard).

    A damaged chunk is an InputError naming ``spec`` and the chunk when a
    block is computed (:class:`._chunks.ZarrChunks`).
    """
    import dask.array as da
    from dask.base import tokenize

    source = ZarrChunks(array, spec=spec)
    return da.from_array(source, chunks=source.chunks, lock=False, asarray=True,
                         meta=np.empty((0,) * array.ndim, dtype=array.dtype),
                         name="from-zarr-" + tokenize(array, source.chunks))


# HDF5 ----------------------------------------------------------------------


def _open_hdf5(file: Path, dataset: str | None, *, given, what: str):
    import dask.array as da
    from dask.base import tokenize

    if not file.is_file():
        raise InputError(f"{file}: no such file" if not file.exists()
                         else f"{file}: is not a file, expected an HDF5 file")
    name = _hdf5_dataset_name(file, dataset, given=given)
    try:
        source = Hdf5Dataset(file, name)
    except Exception as err:
        raise InputError(f"{given}: cannot be read as HDF5 ({first_line(err)})") from err
    if source.dtype.kind not in "biuf":
        source.close()
        raise InputError(f"{given}: holds {source.dtype} data, expected a numeric array")
    chunks = source.chunks or {0: "auto", **{i: -1 for i in range(1, source.ndim)}}
    stat = file.stat()
    data = da.from_array(source, chunks=chunks, lock=False, asarray=True,
                         meta=np.empty((0,) * source.ndim, dtype=source.dtype),
                         name="hdf5-" + tokenize(str(file.resolve()), name, stat.st_mtime_ns,
                                                 stat.st_size))
    axes = _ilastik_axes(source.attrs.get("axistags"), ndim=source.ndim)
    scale = [1.0] * source.ndim
    unit = "pixel"
    size = source.attrs.get("element_size_um")
    if size is not None:
        size = [float(s) for s in np.atleast_1d(size)]
        spatial = ([i for i, (_, kind) in enumerate(axes) if kind == "space"] if axes
                   else list(range(source.ndim)))
        if len(size) >= len(spatial) > 0:
            for i, s in zip(spatial, size[-len(spatial):]):
                scale[i] = s if s > 0 else 1.0
            unit = "µm"
    return _finish(data, axes=axes, scale=scale, unit=unit, path=Path(os.fspath(given)),
                   what=what)


def _hdf5_dataset_name(file: Path, dataset: str | None, *, given) -> str:
    """The dataset to read: the one named, or the file's only dataset."""
    import h5py

    try:
        with h5py.File(file, "r") as h5:
            found = _hdf5_datasets(h5)
            if dataset is not None:
                node = h5.get(dataset)
                if node is None:
                    raise InputError(f"{file}: has no dataset {dataset} (datasets: "
                                     f"{_listing(found)}); give FILE.h5:/path/to/dataset")
                if not isinstance(node, h5py.Dataset):
                    inner = [d for d in found if d.startswith(node.name.rstrip("/") + "/")]
                    raise InputError(f"{file}:{dataset} is a group, not a dataset (datasets in "
                                     f"it: {_listing(inner)}); give FILE.h5:/path/to/dataset")
                return node.name
    except OSError as err:
        raise InputError(f"{file}: cannot be read as HDF5 ({first_line(err)})") from err
    if len(found) != 1:
        example = f"{file.name}:{(found or ['/data'])[0]}"
        raise InputError(f"{file}: holds {len(found)} datasets ({_listing(found)}); choose one "
                         f"as FILE.h5:/path/to/dataset, e.g. {example}")
    return found[0]


def _hdf5_datasets(h5) -> list[str]:
    import h5py

    found = []
    h5.visititems(lambda name, node: found.append("/" + name)
                  if isinstance(node, h5py.Dataset) else None)
    return sorted(found)


def _listing(names: Sequence[str], *, most: int = 8) -> str:
    """ "a, b, c" with at most ``most`` names (then "...").

    >>> _listing(["/a", "/b"]), _listing([])
    ('/a, /b', 'none')
    """
    if not names:
        return "none"
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "")


def _ilastik_axes(axistags, *, ndim: int):
    """ilastik's ``axistags`` attribute (JSON) -> [(name, type)], or None."""
    if axistags is None:
        return None
    try:
        keys = [axis["key"] for axis in json.loads(axistags)["axes"]]
    except (ValueError, KeyError, TypeError):
        return None
    if len(keys) != ndim:
        return None
    return [(key, axis_type(key)) for key in keys]


# shared --------------------------------------------------------------------


def _finish(data, *, axes, scale, unit: str, path: Path, what: str):
    """Drop single time/channel axes, check or move a channel axis, check the dtype: a Loaded
    in native byte order (:func:`._arrays.native_byte_order`)."""
    data = native_byte_order(data)
    channels = None
    if axes is not None:
        keep = [i for i, (_, kind) in enumerate(axes) if kind == "space" or data.shape[i] > 1]
        dropped = [i for i in range(data.ndim) if i not in keep]
        data = data[tuple(0 if i in dropped else slice(None) for i in range(data.ndim))]
        axes = [axes[i] for i in keep]
        scale = [scale[i] for i in keep]
        kinds = [kind for _, kind in axes]
        if "time" in kinds:
            raise InputError(f"{path}: has a time axis of {data.shape[kinds.index('time')]}; "
                             "expected one time point (a single (z, y, x) volume)")
        channels = ""
        if "channel" in kinds:
            axis = kinds.index("channel")
            n = data.shape[axis]
            if what == "mask":
                raise InputError(f"{path}: has a channel axis of {n}; expected a mask with one "
                                 "value per voxel (give one channel's labels)")
            data = _moveaxis(data, axis, -1)
            scale = scale[:axis] + scale[axis + 1:]
            channels = "C"
    if data.size == 0:
        raise InputError(f"{path}: holds an empty array of shape {data.shape}")
    if what == "mask" and data.dtype.kind not in "biu":
        raise InputError(f"{path}: mask has dtype {data.dtype}, expected integer labels "
                         "(a mask read lazily must be stored as integers)")
    n_spatial = data.ndim - (channels == "C")
    voxel_size = tuple(float(s) for s in scale[-min(n_spatial, 3):]) if n_spatial else ()
    return Loaded(data, voxel_size, unit, path, channels)


def _moveaxis(data, source: int, destination: int):
    import dask.array as da

    return da.moveaxis(data, source, destination)
