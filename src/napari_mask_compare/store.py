"""Chunked stores: read zarr, OME-Zarr and HDF5 lazily; write OME-Zarr labels.

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

Output: an OME-Zarr container ``out.zarr`` holding the labels at
``out.zarr/labels/<name>`` (NGFF image-label metadata, a multiscale pyramid
made by striding, the voxel size as the scale), written blockwise into a
temporary folder and renamed in place (:func:`._files.staged_folder`), never
over an input or a store we did not write (:func:`check_store_output`).

Bad input raises :class:`.errors.InputError` with one line naming the path, the
problem and what would be right. No Qt, no napari.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from . import _files
from ._arrays import native_byte_order
from ._chunks import Hdf5Dataset, ZarrChunks, first_line
from ._files import ZARR_MARKERS, ZARR_SUFFIXES
from ._ngff import UNITS, axis_type, labels_of, multiscale_of, ngff_attrs
from .errors import InputError, InputWarning, Loaded
from .labels import labels_dtype

__all__ = [
    "GENERATOR",
    "check_store_output",
    "contents",
    "create_ome_zarr_labels",
    "is_our_store",
    "is_store_path",
    "labels_array",
    "open_array",
    "store_name",
    "write_ome_zarr_labels",
    "write_pyramid",
]

#: File endings of an HDF5 file.
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
#: The root attribute that marks a store this package wrote (what ``overwrite`` may replace).
GENERATOR = "napari-mask-compare"
_GENERATOR_KEY = "_creator"

#: ``file.h5:/path/in/file`` (the dataset part may be empty: ``file.h5:``).
_HDF5_SPEC = re.compile(r"(?P<file>.+\.(?:h5|hdf5|hdf|he5)):(?P<dataset>.*)", re.IGNORECASE)

#: Short unit names (see read._METRES) -> NGFF's.
_NGFF_UNITS = {**{short: ngff for ngff, short in UNITS.items()},
               "μm": "micrometer", "um": "micrometer", "micron": "micrometer"}


def _input_error(message: str):
    return InputError(message)


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
    return path.is_dir() and any((path / marker).is_file() for marker in ZARR_MARKERS)


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
        raise _input_error(f"{path}: no such zarr store or folder")
    if not path.is_dir():
        raise _input_error(f"{path}: is a file, expected a zarr store (a folder) or an array "
                           "in one")
    if not any((path / marker).is_file() for marker in ZARR_MARKERS):
        raise _input_error(f"{path}: is not a zarr array or group (no zarr.json, .zarray or "
                           ".zgroup in it); expected a zarr store or a path to an array in one")
    try:
        node = zarr.open(store=str(path), mode="r")
    except Exception as err:  # zarr raises several types for damaged metadata
        raise _input_error(f"{path}: cannot be read as zarr ({first_line(err)})") from err
    array, multiscale, level, label = _resolve_zarr(node, path)
    if what == "mask":
        _warn_if_missing_chunks_are_objects(array, path)
    axes, scale, unit = (multiscale.axes_scale_unit(level, ndim=array.ndim)
                         if multiscale is not None else (None, [1.0] * array.ndim, "pixel"))
    data = _dask_from_zarr(array, spec=path)
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
            raise _input_error(f"{path}: its level 0 {multiscale.paths[0]!r} is missing; "
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
    raise _input_error(f"{path}: is a zarr group, not an array or an OME-Zarr multiscale; give "
                       f"the path of an array in it (arrays: {listed})")


def _only_label(node, labels: Sequence[str], path: Path):
    if len(labels) != 1:
        names = ", ".join(f"{path / name}" for name in labels) or "none"
        raise _input_error(f"{path}: holds {len(labels)} labels; choose one by its path "
                           f"({names})")
    if labels[0] not in node:
        raise _input_error(f"{path}: lists the label {labels[0]!r} but does not hold it; "
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
    if not any((parent / marker).is_file() for marker in ZARR_MARKERS):
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


def _dask_from_zarr(array, *, spec):
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
        raise _input_error(f"{file}: no such file" if not file.exists()
                           else f"{file}: is not a file, expected an HDF5 file")
    name = _hdf5_dataset_name(file, dataset, given=given)
    try:
        source = Hdf5Dataset(file, name)
    except Exception as err:
        raise _input_error(f"{given}: cannot be read as HDF5 ({first_line(err)})") from err
    if source.dtype.kind not in "biuf":
        source.close()
        raise _input_error(f"{given}: holds {source.dtype} data, expected a numeric array")
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
                    raise _input_error(f"{file}: has no dataset {dataset} (datasets: "
                                       f"{_listing(found)}); give FILE.h5:/path/to/dataset")
                if not isinstance(node, h5py.Dataset):
                    inner = [d for d in found if d.startswith(node.name.rstrip("/") + "/")]
                    raise _input_error(f"{file}:{dataset} is a group, not a dataset (datasets in "
                                       f"it: {_listing(inner)}); give FILE.h5:/path/to/dataset")
                return node.name
    except OSError as err:
        raise _input_error(f"{file}: cannot be read as HDF5 ({first_line(err)})") from err
    if len(found) != 1:
        example = f"{file.name}:{(found or ['/data'])[0]}"
        raise _input_error(f"{file}: holds {len(found)} datasets ({_listing(found)}); choose one "
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
            raise _input_error(f"{path}: has a time axis of {data.shape[kinds.index('time')]}; "
                               "expected one time point (a single (z, y, x) volume)")
        channels = ""
        if "channel" in kinds:
            axis = kinds.index("channel")
            n = data.shape[axis]
            if what == "mask":
                raise _input_error(f"{path}: has a channel axis of {n}; expected a mask with one "
                                   "value per voxel (give one channel's labels)")
            data = _moveaxis(data, axis, -1)
            scale = scale[:axis] + scale[axis + 1:]
            channels = "C"
    if data.size == 0:
        raise _input_error(f"{path}: holds an empty array of shape {data.shape}")
    if what == "mask" and data.dtype.kind not in "biu":
        raise _input_error(f"{path}: mask has dtype {data.dtype}, expected integer labels "
                           "(a mask read lazily must be stored as integers)")
    n_spatial = data.ndim - (channels == "C")
    voxel_size = tuple(float(s) for s in scale[-min(n_spatial, 3):]) if n_spatial else ()
    return Loaded(data, voxel_size, unit, path, channels)


def _moveaxis(data, source: int, destination: int):
    import dask.array as da

    return da.moveaxis(data, source, destination)


# --------------------------------------------------------------------------- writing


def is_our_store(path: str | os.PathLike) -> bool:
    """True when ``path`` is a zarr store that this package wrote (its root ``_creator``).

    Only the root metadata file is read (``zarr.json`` or ``.zattrs``).
    """
    path = Path(path)
    for name, inner in (("zarr.json", ("attributes",)), (".zattrs", ())):
        try:
            attrs = json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for key in inner:
            attrs = attrs.get(key, {}) if isinstance(attrs, dict) else {}
        creator = attrs.get(_GENERATOR_KEY) if isinstance(attrs, dict) else None
        return isinstance(creator, dict) and creator.get("name") == GENERATOR
    return False


def check_store_output(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    overwrite: bool = False,
    option: str = "--out",
) -> Path:
    """Check that the zarr store ``path`` may be written (:func:`._files.check_output`).

    Never an input, never inside an input store or holding one, never a
    store that this package did not write; an earlier output of ours only
    with ``overwrite``.

    Raises
    ------
    errors.InputError
    """
    return _files.check_output(path, inputs=inputs, ours=is_our_store, overwrite=overwrite,
                               option=option, folder=True)


#: Seconds at most that a failed store write waits for zarr's other writes to end.
_SETTLE_S = 60.0


@contextlib.contextmanager
def _staged_store(path: Path, *, before_commit: _files.BeforeCommit | None = None):
    """:func:`._files.staged_folder` for a zarr store: on a failure, the writes zarr still
    runs are waited for before the folder is removed.

    zarr writes an array's or a group's metadata files (and a region's chunks) together
    (``asyncio.gather``): when one fails (a full disk), the others go on, and each makes
    its folders again (``mkdir(parents=True)``), so that the temporary folder came back after
    it was removed (1 run in 10 of ``merge --out o.zarr --overwrite`` on a full disk).
    """
    with _files.staged_folder(path, before_commit=before_commit) as tmp:
        try:
            yield tmp
        except BaseException:
            _settle_zarr_io()
            raise


def _settle_zarr_io() -> None:
    """Wait (at most :data:`_SETTLE_S` seconds) until zarr's I/O event loop runs no task."""
    import asyncio

    from zarr.core import sync as zarr_sync

    loop = zarr_sync.loop[0]
    if loop is None or loop.is_closed() or not loop.is_running():
        return

    async def others_done():
        this = asyncio.current_task()
        while pending := {task for task in asyncio.all_tasks() if task is not this}:
            await asyncio.wait(pending)

    with contextlib.suppress(Exception):  # a loop gone meanwhile: nothing runs on it
        asyncio.run_coroutine_threadsafe(others_done(), loop).result(timeout=_SETTLE_S)


def write_ome_zarr_labels(
    path: str | os.PathLike,
    data,
    *,
    voxel_size: Sequence[float] | None = None,
    unit: str = "pixel",
    name: str = "curated",
    chunks: Sequence[int] | None = None,
    inputs: Iterable[str | os.PathLike] = (),
    overwrite: bool = False,
    max_id: int | None = None,
    ngff: str = "0.4",
    before_commit: _files.BeforeCommit | None = None,
) -> Path:
    """Write labels as an OME-Zarr container with a multiscale pyramid, atomically.

    The store at ``path`` (e.g. ``out.zarr``) holds the labels at
    ``labels/<name>``: levels ``0, 1, ...`` made by striding (level k+1
    takes every second voxel of level k along the axes that are halved, see
    :func:`create_ome_zarr_labels`), NGFF multiscales and image-label
    metadata, the voxel size as level 0's scale. It is written block by
    block into a temporary folder beside ``path`` and renamed in place
    (:func:`._files.staged_folder`): after a failure nothing is left.

    Parameters
    ----------
    path : str or PathLike
        The store to create (a folder).
    data : ndarray or dask.array.Array of int, shape (y, x) or (z, y, x)
        Labels, 0 = background; a dask array is computed block by block,
        never whole. Stored as uint16, or uint32 beyond 65,535
        (:func:`.labels.labels_dtype`, which warns).
    voxel_size : sequence of float, optional
        Spacing per axis, in ``unit``; ones by default.
    unit : str
        "µm", "nm", ... or "pixel" (no unit written).
    name : str
        The label's name in ``labels/``.
    chunks : sequence of int, optional
        Storage chunks of level 0; those of a dask ``data`` by default, else
        up to 1024 x 1024 (2D) or 64 x 256 x 256 (3D).
    inputs : iterable of path
        Files and stores read to make ``data``: never written over or into.
    overwrite : bool
        Replace an earlier output of ours at ``path``.
    max_id : int, optional
        The largest id in ``data`` when the caller knows it (a merge does):
        the storage dtype then needs no pass over ``data``.
    ngff : {"0.4", "0.5"}
        NGFF 0.4 (zarr v2, read by most tools) or 0.5 (zarr v3).
    before_commit : callable, optional
        See :func:`._files.staged_folder`.

    Returns
    -------
    Path

    Notes
    -----
    Blocks are computed and written on the current :mod:`.engine` (its
    scheduler, its progress bar or callback).

    Raises
    ------
    errors.InputError
        ``path`` may not be written (see :func:`check_store_output`).
    ValueError
        ``data`` is not 2D or 3D integers >= 0.
    _files.WriteError
        The disk refused; nothing is left at ``path`` (an earlier output stays).
    """
    import dask.array as da

    from .engine import compute

    path = check_store_output(path, inputs=inputs, overwrite=overwrite)
    data = data if isinstance(data, da.Array) else da.from_array(np.asarray(data), chunks=-1)
    dtype = _output_dtype(data) if max_id is None else labels_dtype(max_id, warn=True)
    chunks = _chunks_for(data.shape, chunks if chunks is not None else _dask_chunksize(data))
    try:
        with _staged_store(path, before_commit=before_commit) as tmp:
            target = _create_labels(tmp, shape=data.shape, dtype=dtype, chunks=chunks,
                                    voxel_size=voxel_size, unit=unit, name=name, ngff=ngff)
            compute(da.store(data.astype(dtype).rechunk(chunks), target, lock=False,
                             compute=False), desc=f"write {path.name}")
            write_pyramid(tmp, name=name)
    except _files.WriteError:
        raise
    except OSError as err:  # met by a block being written (a full disk): name the output
        raise _files.write_error(path, err) from err
    return path


def _output_dtype(data) -> np.dtype:
    """uint16 or uint32 for ``data`` (one pass over it unless its dtype settles it)."""
    from .engine import compute

    if data.ndim not in (2, 3):
        raise ValueError(f"labels must be 2D or 3D, got shape {data.shape}")
    kind = data.dtype.kind
    if kind == "b" or (kind == "u" and data.dtype.itemsize <= 2):
        return labels_dtype(0)
    if kind not in "iu":
        raise ValueError(f"labels must be integers, got dtype {data.dtype}")
    lo, hi = compute(data.min(), data.max(), desc="label range") if data.size else (0, 0)
    if lo < 0:
        raise ValueError(f"labels must be >= 0, got ids down to {lo}")
    return labels_dtype(int(hi), warn=True)


def _dask_chunksize(data) -> tuple[int, ...] | None:
    """The chunks of a dask array when they are regular (all but the last equal), else None."""
    regular = all(len(set(c[:-1])) <= 1 and (len(c) == 1 or c[-1] <= c[0]) for c in data.chunks)
    return tuple(int(c[0]) for c in data.chunks) if regular and data.npartitions > 1 else None


def _chunks_for(shape: Sequence[int], chunks: Sequence[int] | None) -> tuple[int, ...]:
    """Storage chunks for ``shape``: ``chunks`` clipped to it, or the default.

    >>> _chunks_for((10, 5000, 300), None), _chunks_for((100, 100), (64, 256))
    ((10, 256, 256), (64, 100))
    """
    if chunks is None:
        chunks = (1024, 1024) if len(shape) == 2 else (64, 256, 256)
    if len(chunks) != len(shape) or any(int(c) < 1 for c in chunks):
        raise ValueError(f"chunks {tuple(chunks)} do not fit shape {tuple(shape)}")
    return tuple(max(1, min(int(c), int(n))) for c, n in zip(chunks, shape))


def create_ome_zarr_labels(
    path: str | os.PathLike,
    *,
    shape: Sequence[int],
    dtype,
    chunks: Sequence[int] | None = None,
    voxel_size: Sequence[float] | None = None,
    unit: str = "pixel",
    name: str = "curated",
    ngff: str = "0.4",
    overwrite: bool = False,
):
    """Create an OME-Zarr labels container with empty levels and return level 0, writable.

    For a review that writes its output chunk by chunk: chunks written into
    the returned array go straight to disk (all-zero chunks are not stored);
    :func:`write_pyramid` then rebuilds the lower levels. The metadata (NGFF
    multiscales with every level's scale, image-label, the ``_creator``
    mark) is written now, by ome-zarr-py's metadata writers.

    The pyramid: level k+1 halves (rounding up) each axis of level k that is
    longer than 1 and whose spacing is less than twice the finest spacing
    of level k (so a coarse z is not halved with x and y), until level k
    fits one chunk along every axis (at most 12 levels).

    The store is made in a temporary folder and renamed in place
    (:func:`._files.staged_folder`): it appears whole or not at all.

    Parameters
    ----------
    path : str or PathLike
        The store to create; it must not exist (an earlier output of ours
        is replaced with ``overwrite``; the caller checks ``path`` against
        its inputs with :func:`check_store_output` first).
    shape : tuple of int, (y, x) or (z, y, x)
    dtype : unsigned integer dtype (uint16 or uint32, see :func:`.labels.labels_dtype`)
    chunks : tuple of int, optional
        Storage chunks of level 0 (also of the other levels, clipped).
    voxel_size, unit, name, ngff
        As for :func:`write_ome_zarr_labels`.

    overwrite : bool
        Replace an earlier output of ours at ``path``.

    Returns
    -------
    zarr.Array
        Level 0, shape ``shape``, filled with 0, opened for writing.

    Raises
    ------
    errors.InputError
        ``path`` exists (and is not ours, or ``overwrite`` is False). Unlike
        :func:`check_store_output`, a review's journal beside ``path`` is no
        refusal: the review that owns it calls this.
    """
    path = _check_replaceable(Path(path), overwrite=overwrite)
    with _staged_store(path) as tmp:
        _create_labels(tmp, shape=shape, dtype=dtype, chunks=chunks, voxel_size=voxel_size,
                       unit=unit, name=name, ngff=ngff)
    return labels_array(path, name=name)


def _check_replaceable(path: Path, *, overwrite: bool) -> Path:
    """``path`` when free, or a store of ours that ``overwrite`` replaces; else InputError."""
    if not (path.exists() or path.is_symlink()):
        return path
    if path.is_symlink() or not path.is_dir() or not is_our_store(path):
        raise _input_error(f"{path}: exists and is not a store written by mask-compare; it is "
                           "never overwritten: choose another output")
    if not overwrite:
        raise _input_error(f"{path}: exists (an earlier output); replace it with overwrite, or "
                           "choose another output")
    return path


def _create_labels(path: Path, *, shape, dtype, chunks, voxel_size, unit: str, name: str,
                   ngff: str):
    """:func:`create_ome_zarr_labels` in the empty folder ``path``, not staged: level 0."""
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_label_metadata, write_multiscales_metadata

    shape = tuple(int(n) for n in shape)
    dtype = np.dtype(dtype)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"labels must be 2D or 3D and not empty, got shape {shape}")
    if dtype.kind != "u":
        raise ValueError(f"labels are stored as unsigned integers, got dtype {dtype}")
    if ngff not in ("0.4", "0.5"):
        raise ValueError(f"ngff must be '0.4' or '0.5', got {ngff!r}")
    chunks = _chunks_for(shape, chunks)
    spacing = (tuple(float(s) for s in voxel_size) if voxel_size is not None
               else (1.0,) * len(shape))
    if len(spacing) != len(shape) or min(spacing) <= 0:
        raise ValueError(f"voxel_size {spacing} does not fit shape {shape}")
    fmt = FormatV04() if ngff == "0.4" else FormatV05()
    root = zarr.open_group(store=str(path), mode="w-", zarr_format=fmt.zarr_format)
    root.attrs[_GENERATOR_KEY] = {"name": GENERATOR, "version": _version()}
    group = root.require_group("labels").require_group(name)
    axes = ["z", "y", "x"][-len(shape):]
    datasets = []
    for level, (level_shape, level_spacing) in enumerate(_pyramid(shape, spacing, chunks)):
        level_chunks = tuple(min(c, n) for c, n in zip(chunks, level_shape))
        _create_level(group, str(level), shape=level_shape, chunks=level_chunks, dtype=dtype,
                      zarr_format=fmt.zarr_format, axes=axes)
        datasets.append({"path": str(level), "coordinateTransformations": [
            {"type": "scale", "scale": list(level_spacing)}]})
    ngff_unit = _ngff_unit(unit)
    write_multiscales_metadata(group, datasets, fmt=fmt, axes=axes, name=name,
                               axes_units=dict.fromkeys(axes, ngff_unit) if ngff_unit else None)
    write_label_metadata(root["labels"], name, fmt=fmt)
    return _levels(group)[0]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(GENERATOR)
    except PackageNotFoundError:
        return "unknown"


def _ngff_unit(unit: str) -> str | None:
    """NGFF's name for ``unit`` ("µm" -> "micrometer"), None for "pixel" or an unknown unit.

    >>> _ngff_unit("µm"), _ngff_unit("nanometer"), _ngff_unit("pixel")
    ('micrometer', 'nanometer', None)
    """
    from ome_zarr.axes import KNOWN_SPATIAL_UNITS

    unit = _NGFF_UNITS.get(unit, unit)
    return unit if unit in KNOWN_SPATIAL_UNITS else None


def _pyramid(shape, spacing, chunks, *, most: int = 12):
    """[(shape, spacing)] of each level, level 0 first (see :func:`create_ome_zarr_labels`).

    >>> [s for s, _ in _pyramid((10, 64, 64), (4.0, 1.0, 1.0), (10, 8, 8))]
    [(10, 64, 64), (10, 32, 32), (10, 16, 16), (5, 8, 8)]
    """
    levels = [(tuple(shape), tuple(spacing))]
    while len(levels) < most:
        shape, spacing = levels[-1]
        if all(n <= c for n, c in zip(shape, chunks)):
            break
        live = [s for s, n in zip(spacing, shape) if n > 1]
        finest = min(live)
        halve = [n > 1 and s < 2 * finest for n, s in zip(shape, spacing)]
        levels.append((tuple(-(-n // 2) if h else n for n, h in zip(shape, halve)),
                       tuple(s * 2 if h else s for s, h in zip(spacing, halve))))
    return levels


def _create_level(group, name: str, *, shape, chunks, dtype, zarr_format: int, axes) -> None:
    options = ({"chunk_key_encoding": {"name": "v2", "separator": "/"}} if zarr_format == 2
               else {"dimension_names": axes})
    group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=0, **options)


def _labels_group(path: str | os.PathLike, *, name: str, mode: str):
    import zarr

    path = Path(path)
    try:
        return zarr.open_group(store=str(path / "labels" / name), mode=mode)
    except Exception as err:
        raise _input_error(f"{path}: has no labels {name!r} (no {path / 'labels' / name}); "
                           "expected an OME-Zarr labels store written by mask-compare") from err


def _levels(group) -> list:
    """The arrays of a labels multiscale group, level 0 first."""
    path = Path(str(group.store.root), group.path)
    return [group[name] for name in multiscale_of(ngff_attrs(group.attrs, where=path),
                                                   where=path).paths]


def labels_array(path: str | os.PathLike, *, name: str = "curated"):
    """Level 0 of the labels ``name`` in the store ``path``, opened for writing (to resume).

    Returns
    -------
    zarr.Array, shape (y, x) or (z, y, x)

    Raises
    ------
    errors.InputError
        ``path`` holds no such labels.
    """
    return _levels(_labels_group(path, name=name, mode="r+"))[0]


def write_pyramid(
    path: str | os.PathLike,
    *,
    name: str = "curated",
    region: Sequence[slice] | None = None,
) -> None:
    """(Re)build levels 1, 2, ... of the labels ``name`` from level 0, blockwise.

    Each level takes every second voxel of the level above along the axes
    it halves (nearest neighbour: ids are never blended).

    Parameters
    ----------
    path : str or PathLike
        A store made by :func:`create_ome_zarr_labels`.
    name : str
    region : tuple of slice, optional
        The part of level 0 that changed (e.g. a review's crop): only the
        voxels of the other levels that come from it are rewritten. All of
        them by default.
    """
    import dask.array as da

    from .engine import compute

    levels = _levels(_labels_group(path, name=name, mode="r+"))
    if region is not None:
        region = tuple(s.indices(n)[:2] for s, n in zip(region, levels[0].shape))
    for above, level in zip(levels[:-1], levels[1:]):
        steps = tuple(1 if a == n else 2 for a, n in zip(above.shape, level.shape))
        if region is None:
            source = _dask_from_zarr(above, spec=path)[tuple(slice(None, None, s) for s in steps)]
            compute(da.store(source.rechunk(level.chunks), level, lock=False, compute=False),
                    desc=f"pyramid level {levels.index(level)}")
            continue
        region = tuple((-(-a // s), -(-b // s)) for (a, b), s in zip(region, steps))
        if any(a >= b for a, b in region):
            return
        level[tuple(slice(a, b) for a, b in region)] = above[
            tuple(slice(a * s, b * s, s) for (a, b), s in zip(region, steps))]
