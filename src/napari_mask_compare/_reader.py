"""npe2 reader: TIFF, NPY and MRC files, zarr/OME-Zarr/HDF5 stores, and folders of them.

Thin glue over :mod:`napari_mask_compare.read`, which reads the files and their
voxel size. An array opens as Labels when its data look like labels (see
:func:`is_label_array`: label values, piecewise constant over a background of
0), else as an Image as napari's own reader would open it; the voxel size
becomes the layer's ``scale`` and the file's stem its name.

A zarr or HDF5 store (a dropped ``.zarr`` folder, an ``.h5`` file) opens
lazily: every array it holds (:func:`.store.contents`: an OME-Zarr image and
its labels, each dataset of an HDF5 file) becomes a layer over a dask array;
Labels or Image is decided from a few of its chunks.

Following npe2, :func:`get_reader` returns None for what it cannot read (a
foreign or damaged file, an empty folder) and never raises. A file that has
one of this plugin's suffixes but that :mod:`.read` refuses is reported with a
warning, so that the user learns why it did not open.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from . import read, store
from ._arrays import as_dask, is_lazy
from .errors import InputError, Loaded
from .labels import UINT32_MAX, labels_dtype

__all__ = ["get_reader", "is_label_array", "layer_data"]

#: One layer for napari: (data, layer keyword arguments, layer type).
LayerDataTuple = tuple[np.ndarray, dict, str]
PathOrPaths = str | os.PathLike | Sequence[str | os.PathLike]

#: Elements checked at once when scanning a float array for fractions.
_CHUNK = 1 << 22

# The thresholds of :func:`is_label_array`.
#: Voxels of the sample that tells labels from an image (whole rows along x).
SAMPLE_SIZE = 1 << 20
#: Most planes (indices along the leading axes) the sample is taken from.
SAMPLE_PLANES = 16
#: Least share of 0 in the sample: labels have a background.
MIN_BACKGROUND = 0.001
#: Least share of non-zero voxels equal to their neighbour along x.
MIN_EQUAL_NEIGHBOURS = 0.6
#: Most share of the changes of value along x that are steps of 1 between non-zero values.
MAX_UNIT_STEPS = 0.5


def get_reader(path: PathOrPaths) -> Callable[..., list[LayerDataTuple]] | None:
    """Return a function that opens ``path``, or None when it cannot be read here.

    The files are read now, once; the returned function only builds the
    layers (it ignores its argument, which npe2 sets to ``path`` again).

    Parameters
    ----------
    path : str or PathLike or sequence of them
        A file, a folder (every readable file in it, sorted by name) or a
        list of files and folders.

    Returns
    -------
    callable or None
        ``reader(path) -> list of (data, meta, layer_type)``; None when no
        file of ``path`` can be read.

    Examples
    --------
    >>> get_reader("notes.txt") is None
    True
    """
    files = list(_candidate_files(path))
    if not files:
        return None
    loaded, refused = _read_files(files)
    if refused:
        warnings.warn(
            "napari-mask-compare skipped " + "; ".join(refused), UserWarning, stacklevel=2
        )
    if not loaded:
        return None
    return partial(_layers_of, loaded)


def _candidate_files(path: PathOrPaths) -> Iterator[Path]:
    """Existing files of ``path`` with a suffix that :mod:`.read` reads, in order."""
    if isinstance(path, (str, os.PathLike)):
        if store.is_store_path(path):
            yield from (Path(spec) for spec in store.contents(path))
            return
        path = Path(path)
        if path.is_dir():
            try:
                files = read.image_files(path)
            except OSError:  # e.g. a folder we may not list: nothing to read here
                return
            for file in files:
                yield from _candidate_files(file)
        elif path.is_file() and path.suffix.lower() in read.SUFFIXES:
            yield path
        return
    for item in path:
        yield from _candidate_files(item)


def _read_files(files: list[Path]) -> tuple[list[Loaded], list[str]]:
    """Read each file; collect the refusals' one-line reasons instead of raising."""
    loaded, refused = [], []
    for file in files:
        try:
            item = read.read_array(file)
        except InputError as err:
            refused.append(str(err))
            continue
        if item.data.ndim < 2:
            refused.append(f"{file}: holds a {item.data.ndim}-D array of shape "
                           f"{item.data.shape}, expected an image of 2 or more dimensions")
            continue
        loaded.append(item)
    return loaded, refused


def _layers_of(loaded: list[Loaded], _path: PathOrPaths | None = None) -> list[LayerDataTuple]:
    """The layers of every array already read, in order."""
    return [layer for item in loaded for layer in layer_data(item)]


def layer_data(loaded: Loaded, *, name: str | None = None) -> list[LayerDataTuple]:
    """napari layers for one array read by :func:`read.read_array`.

    Parameters
    ----------
    loaded : Loaded
        ``data`` of shape (y, x), (z, y, x) or more axes, optionally with a
        trailing channel axis (at most 4 long, as :mod:`.read` reads TIFF), which
        ``loaded.channels`` names when the file does.
    name : str, optional
        Layer name; the file's stem by default.

    Returns
    -------
    list of (data, meta, layer_type)
        One ``"labels"`` layer when the file says it holds labels
        (``loaded.labels``, integers) or :func:`is_label_array` says so; two
        (instances and "<name> classes") for a class channel, as
        :func:`read.load_mask` reads it; else one ``"image"`` layer, as napari's
        own reader gives it (RGB for a samples axis of 3 or 4, one layer per
        channel for other channel axes). ``meta["scale"]`` is the voxel size
        of the spatial axes.

    Examples
    --------
    >>> mask = np.zeros((8, 8), dtype=np.uint16)
    >>> mask[2:6, 2:6] = 7
    >>> loaded = Loaded(mask, (0.5, 0.5), "µm")
    >>> [(kind, meta["name"], meta["scale"]) for _, meta, kind in layer_data(loaded, name="m")]
    [('labels', 'm', (0.5, 0.5))]
    """
    data = loaded.data
    name = name if name is not None else _layer_name(loaded.path)
    layout = _channel_layout(loaded)
    n_spatial = data.ndim - (layout != "none")
    meta = {"name": name, "scale": _scale(loaded.voxel_size, n_spatial),
            **_units_meta(loaded.unit, n_spatial)}
    if layout == "classes":
        meta["metadata"] = _provenance(loaded)
        return [(_as_labels(data[..., 0]), meta, "labels"),
                (_as_labels(data[..., 1]), {**meta, "name": f"{name} classes"}, "labels")]
    if layout != "none":
        return [_channels_image(data, meta, rgb=layout == "rgb")]
    if (loaded.labels and data.dtype.kind in "biu") or is_label_array(data,
                                                                      scan=not is_lazy(data)):
        return [(_as_labels(data), {**meta, "metadata": _provenance(loaded)}, "labels")]
    return [(data, meta, "image")]


def _provenance(loaded: Loaded) -> dict:
    """A Labels layer's ``metadata``: the file it came from and its unit."""
    return {"path": str(loaded.path), "unit": loaded.unit} if loaded.path is not None else {}


def _channel_layout(loaded: Loaded) -> str:
    """What the trailing axis of ``loaded.data`` is: "classes", "rgb", "channels" or "none".

    The file's own axis names decide when it has them (:attr:`Loaded.channels`):
    a samples axis "S" is RGB(A) (or channels), never a class channel; a "C"
    axis of 2 is (instances, classes) when its first channel looks like labels,
    as :func:`read.load_mask` reads it. Without names (NPY, MRC, bare TIFF), a
    trailing axis of 2 on 3 or 4 dimensions is a class channel when it looks
    like one, and an extra axis beyond the voxel size's is channels.
    """
    data, channels = loaded.data, loaded.channels
    if channels == "S":
        return "rgb" if data.shape[-1] in (3, 4) else "channels"
    if channels == "C":
        return "classes" if _is_class_pair(data) else "channels"
    if channels == "":
        return "none"
    if data.ndim in (3, 4) and _is_class_pair(data):
        return "classes"
    if not _has_channel_axis(loaded):
        return "none"
    return "rgb" if data.dtype == np.uint8 and data.shape[-1] in (3, 4) else "channels"


def _is_class_pair(data: np.ndarray) -> bool:
    """(..., 2) of instance labels and a class per voxel (label values)."""
    if data.shape[-1] != 2:
        return False
    if is_lazy(data):  # judged from a few blocks
        return (is_label_array(data[..., 0], scan=False)
                and _label_values(_sample_rows(data[..., 1])))
    return is_label_array(data[..., 0]) and _label_values(data[..., 1])


def _has_channel_axis(loaded: Loaded) -> bool:
    """Whether :func:`read.read_array` left a channel axis last (it has no voxel size)."""
    data = loaded.data
    return data.ndim == len(loaded.voxel_size) + 1 and data.shape[-1] <= read.MAX_CHANNELS


def _channels_image(data: np.ndarray, meta: dict, *, rgb: bool) -> LayerDataTuple:
    """Image with a trailing channel axis: RGB(A), or one layer per channel."""
    if rgb:
        return (data, {**meta, "rgb": True}, "image")
    return (data, {**meta, "channel_axis": data.ndim - 1}, "image")


def _layer_name(path: Path | None) -> str:
    """File name without its suffix (and without ``.ome`` before ``.tif``)."""
    if path is None:
        return "array"
    stem = Path(path).stem
    return stem[:-4] if stem.lower().endswith(".ome") else stem


def _scale(voxel_size: tuple[float, ...], ndim: int) -> tuple[float, ...]:
    """Spacing for ``ndim`` axes: the last ones of ``voxel_size``, padded with 1 in front."""
    spacing = tuple(float(s) for s in voxel_size)[-ndim:] if ndim else ()
    return (1.0,) * (ndim - len(spacing)) + spacing


def _units_meta(unit: str, ndim: int) -> dict:
    """``{"units": ...}`` when ``unit`` is a length napari (pint) knows, else ``{}``.

    pint parses almost any word ("unit" is a micro-nit, "blob" a slinch): only
    lengths count, other words are not calibrations.
    """
    if not unit or unit == "pixel":
        return {}
    import pint

    registry = pint.get_application_registry()
    try:
        parsed = registry.parse_units(unit)
    except Exception:  # pint raises several types for unknown or malformed units
        return {}
    if parsed.dimensionality != registry.meter.dimensionality:
        return {}
    return {"units": (unit,) * ndim}


def is_label_array(data: np.ndarray, *, scan: bool = True) -> bool:
    """Whether ``data`` holds labels (a mask) rather than an image, judged from the data.

    The dtype alone cannot tell: raw microscopy images are uint16 too. Labels
    are label values laid out piecewise constant over a background of 0:

    1. **Values** (the rule of :func:`read.load_mask`): booleans; non-negative
       integers; finite floats with integral values from 0 to ``2**32 - 1``
       (floats with fractions are never labels).
    2. **Layout**, on a sample of whole rows along x (the last axis): every
       ``k``-th row of at most :data:`SAMPLE_PLANES` evenly spaced planes,
       about :data:`SAMPLE_SIZE` voxels in all:

       - all 0: labels (an empty mask);
       - **background**: at least :data:`MIN_BACKGROUND` (0.1 %) of the
         sample is 0;
       - **piecewise constant**: at least :data:`MIN_EQUAL_NEIGHBOURS` (60 %)
         of the non-zero voxels have the value of their neighbour along x.
         An object ``w`` voxels wide gives ``(w - 1) / w``, so objects 2.5
         voxels wide on average pass; noisy images give 1-30 %, sparse
         photon counts (isolated non-zero voxels) less than 30 %;
       - **not smooth**: at most :data:`MAX_UNIT_STEPS` (50 %) of the changes
         of value along x are steps of 1 between two non-zero values. Labels
         change mostly to or from the background, a quantised gradient
         steps by 1.

    Data that fail any rule are an image: napari's own reader opens them as
    one. Known confusions: an image posterised to a few levels one of which
    is 0 passes (it is piecewise constant over 0), and a class map whose
    classes 1, 2, ... mostly touch one another (e.g. thresholds of one
    intensity) fails the last rule.

    Parameters
    ----------
    data : ndarray, any shape
        Read through basic indexing only, a few planes: memory maps stay
        mostly on disk. Floats are also scanned in full for fractions, and
        signed integers for negative values, unless ``scan`` is False.
    scan : bool
        Check the values (rule 1) of all of ``data``; when False, of the
        sample only (a guess that reads a few planes, e.g. for a GUI).

    Returns
    -------
    bool

    Examples
    --------
    >>> mask = np.zeros((8, 8), dtype=np.uint16)
    >>> mask[2:6, 1:5] = 2**16 - 1
    >>> rng = np.random.default_rng(0)
    >>> image = rng.poisson(100, size=(8, 8)).astype(np.uint16)
    >>> is_label_array(mask), is_label_array(image), is_label_array(mask * 0.5)
    (True, False, False)
    """
    if data.dtype.kind == "b":
        return True
    if data.dtype.kind not in "iuf":
        return False
    if data.size == 0:
        return True
    rows = _sample_rows(data)
    if not (_label_values(rows) and _looks_like_labels(rows)):
        return False
    return not scan or _label_values(data)


def _label_values(data: np.ndarray) -> bool:
    """Rule 1 of :func:`is_label_array`, over all of ``data``: label values."""
    kind = data.dtype.kind
    if kind == "b":
        return True
    if kind in "iu":
        return data.size == 0 or kind == "u" or int(data.min()) >= 0
    if kind != "f":
        return False
    return all(_integral_chunk(chunk) for chunk in _chunks(data))


def _sample_rows(data: np.ndarray) -> np.ndarray:
    """Whole rows (along the last axis) of ``data``, about :data:`SAMPLE_SIZE` voxels.

    For a lazy array (:func:`._arrays.is_lazy`), rows of a few whole blocks instead (see
    :func:`_sample_block_rows`): a plane of a chunked volume would read every
    chunk it crosses.

    Returns
    -------
    ndarray, shape (n_rows, x)
        Every ``k``-th row, from the middle of the first ``k``, of at most
        :data:`SAMPLE_PLANES` planes evenly spaced along the leading axes.
    """
    if is_lazy(data):
        return _sample_block_rows(data)
    if data.ndim < 2:
        return np.asarray(data).reshape(1, -1)
    lead, (y, x) = data.shape[:-2], data.shape[-2:]
    n_planes = int(np.prod(lead, dtype=np.int64))
    planes = np.unique(np.linspace(0, n_planes - 1, min(n_planes, SAMPLE_PLANES)).round())
    rows_per_plane = max(1, SAMPLE_SIZE // (len(planes) * max(x, 1)))
    step = -(-y // rows_per_plane)
    rows = [np.asarray(data[np.unravel_index(int(i), lead) + (slice(step // 2, None, step),)])
            for i in planes]
    return np.concatenate(rows, axis=0)


def _sample_block_rows(data) -> np.ndarray:
    """Rows along x of at most :data:`SAMPLE_PLANES` blocks of a lazy array, evenly spaced.

    The blocks are read whole (one storage chunk each, together) and every
    ``k``-th of their rows is kept, about :data:`SAMPLE_SIZE` voxels in all.

    Returns
    -------
    ndarray, shape (n_rows, x_block)
        Rows of the blocks of the first block width along x.
    """
    import dask

    data = as_dask(data)  # a zarr array too (a napari layer's)
    n_blocks = data.npartitions
    picks = np.unique(np.linspace(0, n_blocks - 1, min(n_blocks, SAMPLE_PLANES)).round())
    grid = data.numblocks
    blocks = dask.compute(*[data.blocks[np.unravel_index(int(i), grid)] for i in picks])
    width = min(block.shape[-1] for block in blocks) if data.ndim else 1
    rows = [np.asarray(block)[..., :width].reshape(-1, width) for block in blocks]
    total = sum(len(r) for r in rows) * width
    step = max(1, -(-total // SAMPLE_SIZE))
    return np.concatenate([r[step // 2::step] if len(r) > step else r for r in rows], axis=0)


def _looks_like_labels(rows: np.ndarray) -> bool:
    """Rule 2 of :func:`is_label_array` on sampled rows of label values."""
    background = rows == 0
    if background.all():
        return True
    if background.mean() < MIN_BACKGROUND:
        return False
    left, right = rows[:, :-1], rows[:, 1:]
    change = left != right
    foreground = ~background[:, :-1]
    n_foreground = np.count_nonzero(foreground)
    if n_foreground == 0 or np.count_nonzero(foreground & ~change) < (
            MIN_EQUAL_NEIGHBOURS * n_foreground):
        return False
    between = change & foreground & ~background[:, 1:]
    steps = np.abs(left[between].astype(np.float64) - right[between]) == 1
    return np.count_nonzero(steps) <= MAX_UNIT_STEPS * np.count_nonzero(change)


def _chunks(data: np.ndarray) -> Iterator[np.ndarray]:
    """Consecutive pieces of ``data`` along its first axis, about :data:`_CHUNK` elements each."""
    if data.ndim == 0:
        yield data.reshape(1)
        return
    step = max(1, _CHUNK // max(1, data[:1].size))
    for start in range(0, data.shape[0], step):
        yield data[start:start + step]


def _integral_chunk(chunk: np.ndarray) -> bool:
    chunk = np.asarray(chunk)
    if chunk.size == 0:
        return True
    if not np.isfinite(chunk).all():
        return False
    return (chunk.min() >= 0 and float(chunk.max()) <= UINT32_MAX  # no float32 rounding
            and bool(np.array_equal(chunk, np.floor(chunk))))


def _as_labels(data: np.ndarray) -> np.ndarray:
    """Integer labels napari can edit: floats and booleans to uint16/uint32, in memory.

    A dask array stays lazy: floats become uint32, booleans uint8, block by block.
    """
    if is_lazy(data):
        kind = data.dtype.kind
        return data.astype({"f": np.uint32, "b": np.uint8}[kind]) if kind in "fb" else data
    if data.dtype.kind in "fb":
        return data.astype(labels_dtype(int(data.max(initial=0))))
    if not data.flags.writeable:  # e.g. a read-only memory map: painting would fail
        return np.array(data)
    return data
