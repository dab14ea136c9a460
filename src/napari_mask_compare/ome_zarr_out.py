"""OME-Zarr labels out: the stores this package writes, and a review's output store.

An OME-Zarr container ``out.zarr`` holds the labels at ``out.zarr/labels/<name>``
(NGFF image-label metadata, a multiscale pyramid made by striding, the voxel
size as the scale). :func:`write_ome_zarr_labels` writes it whole and
blockwise into a temporary folder renamed in place
(:func:`._files.staged_folder`), never over an input or a store we did not
write (:func:`check_store_output`). A chunked review makes it empty
(:func:`create_ome_zarr_labels`, :func:`new_review_store`), writes its chunks
as it goes, and rebuilds the lower levels at the end (:func:`write_pyramid`).

Reading stores (zarr, NGFF, HDF5 inputs) is :mod:`.store`'s. No Qt, no napari.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from . import _files
from ._ngff import UNITS, multiscale_of, ngff_attrs
from .engine import compute
from .errors import InputError
from .journal import journal_path
from .labels import labels_dtype
from .regions import chunk_keys
from .store import dask_from_zarr

__all__ = [
    "GENERATOR",
    "check_store_output",
    "create_ome_zarr_labels",
    "is_adoptable",
    "is_our_store",
    "labels_array",
    "new_review_store",
    "reopen_review_store",
    "write_ome_zarr_labels",
    "write_pyramid",
]

#: The root attribute that marks a store this package wrote (what ``overwrite`` may replace).
GENERATOR = "napari-mask-compare"
_GENERATOR_KEY = "_creator"
#: The name of a review's labels in its store (``cells.zarr/labels/curated``).
REVIEW_LABELS = "curated"

#: Short unit names (see read._METRES) -> NGFF's.
_NGFF_UNITS = {**{short: ngff for ngff, short in UNITS.items()},
               "μm": "micrometer", "um": "micrometer", "micron": "micrometer"}


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
        raise InputError(f"{path}: exists and is not a store written by mask-compare; it is "
                           "never overwritten: choose another output")
    if not overwrite:
        raise InputError(f"{path}: exists (an earlier output); replace it with overwrite, or "
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
        raise InputError(f"{path}: has no labels {name!r} (no {path / 'labels' / name}); "
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

    levels = _levels(_labels_group(path, name=name, mode="r+"))
    if region is not None:
        region = tuple(s.indices(n)[:2] for s, n in zip(region, levels[0].shape))
    for above, level in zip(levels[:-1], levels[1:]):
        steps = tuple(1 if a == n else 2 for a, n in zip(above.shape, level.shape))
        if region is None:
            source = dask_from_zarr(above, spec=path)[tuple(slice(None, None, s) for s in steps)]
            compute(da.store(source.rechunk(level.chunks), level, lock=False, compute=False),
                    desc=f"pyramid level {levels.index(level)}")
            continue
        region = tuple((-(-a // s), -(-b // s)) for (a, b), s in zip(region, steps))
        if any(a >= b for a, b in region):
            return
        level[tuple(slice(a, b) for a, b in region)] = above[
            tuple(slice(a * s, b * s, s) for (a, b), s in zip(region, steps))]

# --------------------------------------------------------------------------- a review's store


def new_review_store(output: Path, a, *, chunks, voxel_size, unit):
    """The labels array of a new review, empty (see :func:`create_ome_zarr_labels`).

    uint32 from the start (a chunked store cannot change its dtype cheaply).
    An empty store of ours already there (a review killed before its journal
    was made) is made again.

    Parameters
    ----------
    output : Path
        The review's ``.zarr`` output.
    a : array-like, shape (y, x) or (z, y, x)
        Mask A: the shape, and the chunks unless ``chunks`` is given.
    chunks : sequence of int or None
    voxel_size, unit
        As for :func:`create_ome_zarr_labels`.

    Returns
    -------
    zarr.Array, shape of ``a``, uint32
    """
    return create_ome_zarr_labels(
        output, shape=tuple(a.shape), dtype=np.uint32,
        chunks=tuple(chunks) if chunks else _default_chunks(a),
        voxel_size=voxel_size, unit=unit, name=REVIEW_LABELS, overwrite=is_adoptable(output))


def is_adoptable(output: Path) -> bool:
    """True for an empty labels store of ours (a new review killed before its journal)."""
    if not (output.is_dir() and is_our_store(output)):
        return False
    try:
        return not chunk_keys(labels_array(output, name=REVIEW_LABELS))
    except InputError:
        return False


def reopen_review_store(output: Path, a):
    """The labels array of a review being resumed (checked to fit the masks).

    Raises
    ------
    errors.InputError
        ``output`` is missing, holds no review labels or labels of another shape than ``a``.
    """
    if not output.exists():
        raise InputError(f"{output}: missing; the review's journal is beside it: put the "
                         f"store back, or move {journal_path(output).name} away to start over")
    array = labels_array(output, name=REVIEW_LABELS)
    if tuple(array.shape) != tuple(a.shape):
        raise InputError(f"{output}: holds labels of shape {tuple(array.shape)}, "
                         f"not {tuple(a.shape)} as the masks; move it away")
    return array


def _default_chunks(a) -> tuple[int, ...]:
    """A's chunk shape (reads and writes then meet the same grid), else 64**3 or 512**2."""
    chunks = getattr(a, "chunksize", None) or getattr(a, "chunks", None)
    if chunks is not None and all(isinstance(c, int | np.integer) for c in chunks):
        return tuple(int(c) for c in chunks)
    side = 64 if len(a.shape) == 3 else 512
    return tuple(min(side, int(n)) for n in a.shape)
