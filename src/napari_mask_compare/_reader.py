"""npe2 reader: TIFF, NPY and MRC files, and folders of them, as napari layers.

Thin glue over :mod:`napari_mask_compare.io`, which reads the files and their
voxel size. Integer-valued arrays (integers, or floats with integral values,
non-negative) open as Labels, others as Image; the voxel size becomes the
layer's ``scale`` and the file's stem its name.

Following npe2, :func:`get_reader` returns None for what it cannot read (a
foreign or damaged file, an empty folder) and never raises. A file that has
one of this plugin's suffixes but that :mod:`io` refuses is reported with a
warning, so that the user learns why it did not open.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from . import io
from .labels import UINT32_MAX, labels_dtype

__all__ = ["get_reader", "is_label_array", "layer_data"]

#: One layer for napari: (data, layer keyword arguments, layer type).
LayerDataTuple = tuple[np.ndarray, dict, str]
PathOrPaths = str | os.PathLike | Sequence[str | os.PathLike]

#: Elements checked at once when scanning a float array for fractions.
_CHUNK = 1 << 22


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
    """Existing files of ``path`` with a suffix that :mod:`io` reads, in order."""
    if isinstance(path, (str, os.PathLike)):
        path = Path(path)
        if path.is_dir():
            try:
                yield from io.image_files(path)
            except OSError:  # e.g. a folder we may not list: nothing to read here
                return
        elif path.is_file() and path.suffix.lower() in io.SUFFIXES:
            yield path
        return
    for item in path:
        yield from _candidate_files(item)


def _read_files(files: list[Path]) -> tuple[list[io.Loaded], list[str]]:
    """Read each file; collect the refusals' one-line reasons instead of raising."""
    loaded, refused = [], []
    for file in files:
        try:
            item = io.read_array(file)
        except io.InputError as err:
            refused.append(str(err))
            continue
        if item.data.ndim < 2:
            refused.append(f"{file}: holds a {item.data.ndim}-D array of shape "
                           f"{item.data.shape}, expected an image of 2 or more dimensions")
            continue
        loaded.append(item)
    return loaded, refused


def _layers_of(loaded: list[io.Loaded], _path: PathOrPaths | None = None) -> list[LayerDataTuple]:
    """The layers of every array already read, in order."""
    return [layer for item in loaded for layer in layer_data(item)]


def layer_data(loaded: io.Loaded, *, name: str | None = None) -> list[LayerDataTuple]:
    """napari layers for one array read by :func:`io.read_array`.

    Parameters
    ----------
    loaded : io.Loaded
        ``data`` of shape (y, x), (z, y, x) or more axes, optionally with a
        trailing channel axis (at most 4 long, as :mod:`io` reads TIFF).
    name : str, optional
        Layer name; the file's stem by default.

    Returns
    -------
    list of (data, meta, layer_type)
        One ``"labels"`` layer for integer-valued data; two (instances and
        "<name> classes") for a trailing channel of 2, as :func:`io.load_mask`
        reads it; else one ``"image"`` layer (RGB for 3 or 4 uint8 channels,
        one layer per channel for other channel axes). ``meta["scale"]`` is
        the voxel size of the spatial axes.

    Examples
    --------
    >>> loaded = io.Loaded(np.array([[0, 1], [2, 2]]), (0.5, 0.5), "µm")
    >>> [(kind, meta["name"], meta["scale"]) for _, meta, kind in layer_data(loaded, name="m")]
    [('labels', 'm', (0.5, 0.5))]
    """
    data = loaded.data
    name = name if name is not None else _layer_name(loaded.path)
    classes = _has_class_channel(data)
    n_spatial = data.ndim - (classes or _has_channel_axis(loaded))
    meta = {"name": name, "scale": _scale(loaded.voxel_size, n_spatial),
            **_units_meta(loaded.unit, n_spatial)}
    if loaded.path is not None:
        meta["metadata"] = {"path": str(loaded.path), "unit": loaded.unit}
    if classes:
        return [(_as_labels(data[..., 0]), meta, "labels"),
                (_as_labels(data[..., 1]), {**meta, "name": f"{name} classes"}, "labels")]
    if n_spatial < data.ndim:
        return [_channels_image(data, meta)]
    if is_label_array(data):
        return [(_as_labels(data), meta, "labels")]
    return [(data, meta, "image")]


def _has_class_channel(data: np.ndarray) -> bool:
    """(y, x, 2) or (z, y, x, 2) labels: (instance, class), as :func:`io.load_mask` reads them."""
    return data.ndim in (3, 4) and data.shape[-1] == 2 and is_label_array(data)


def _has_channel_axis(loaded: io.Loaded) -> bool:
    """Whether :func:`io.read_array` left a channel axis last (it has no voxel size)."""
    data = loaded.data
    return data.ndim == len(loaded.voxel_size) + 1 and data.shape[-1] <= io.MAX_CHANNELS


def _channels_image(data: np.ndarray, meta: dict) -> LayerDataTuple:
    """Image with a trailing channel axis: RGB(A) when uint8, else one layer per channel."""
    if data.dtype == np.uint8 and data.shape[-1] in (3, 4):
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


def is_label_array(data: np.ndarray) -> bool:
    """Whether ``data`` holds instance labels: non-negative integral values.

    Booleans and integers count when non-negative; floats when finite,
    integral, non-negative and at most ``2**32 - 1`` (the rule of
    :func:`io.load_mask`).

    Parameters
    ----------
    data : ndarray, any shape

    Examples
    --------
    >>> is_label_array(np.array([0.0, 3.0])), is_label_array(np.array([0.5]))
    (True, False)
    """
    kind = data.dtype.kind
    if kind == "b":
        return True
    if kind in "iu":
        return data.size == 0 or kind == "u" or int(data.min()) >= 0
    if kind != "f":
        return False
    return all(_integral_chunk(chunk) for chunk in _chunks(data))


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
    return (chunk.min() >= 0 and chunk.max() <= UINT32_MAX
            and bool(np.array_equal(chunk, np.floor(chunk))))


def _as_labels(data: np.ndarray) -> np.ndarray:
    """Integer labels napari can edit: floats and booleans to uint16/uint32, in memory."""
    if data.dtype.kind in "fb":
        return data.astype(labels_dtype(int(data.max(initial=0))))
    if not data.flags.writeable:  # e.g. a read-only memory map: painting would fail
        return np.array(data)
    return data
