"""Read and validate masks and images; write label images atomically.

No Qt, no napari. Every refusal is an :class:`InputError` whose message is one
line naming the file, what is wrong and what would be right.
"""

from __future__ import annotations

import os
import re
import secrets
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "SUFFIXES",
    "InputError",
    "as_labels",
    "image_files",
    "labels_tiff",
    "Loaded",
    "MaskPair",
    "load_image",
    "load_mask",
    "load_pair",
    "pair_files",
    "read_array",
    "write_labels",
    "labels_dtype",
]

#: File name endings this package reads.
SUFFIXES = (".tif", ".tiff", ".npy", ".mrc", ".rec", ".map")

UINT16_MAX = np.iinfo(np.uint16).max
UINT32_MAX = np.iinfo(np.uint32).max


class InputError(ValueError):
    """Bad input or output path: the message is one line meant for the user."""


@dataclass(frozen=True)
class Loaded:
    """An array read from disk with its spatial metadata.

    Attributes
    ----------
    data : ndarray
        Shape (y, x), (z, y, x), or either with a trailing channel axis (..., c).
    voxel_size : tuple of float
        Spacing per spatial axis, in ``unit``; ones when the file has none.
    unit : str
        Unit of ``voxel_size`` ("pixel" when unknown).
    path : Path or None
    """

    data: np.ndarray
    voxel_size: tuple[float, ...]
    unit: str = "pixel"
    path: Path | None = None


@dataclass(frozen=True)
class MaskPair:
    """Two validated instance masks of one image (and the image when given).

    Attributes
    ----------
    a, b : ndarray of unsigned int, shape (y, x) or (z, y, x)
        Instance labels, 0 = background. A is the reference.
    classes_a, classes_b : ndarray of unsigned int or None
        Per-voxel class from a second mask channel, same shape as ``a``.
    image : ndarray or None
        Shape ``a.shape`` or ``a.shape + (c,)``.
    voxel_size : tuple of float
    unit : str
    paths : dict
        ``{"mask_a": Path, "mask_b": Path, "image": Path | None}``
    """

    a: np.ndarray
    b: np.ndarray
    classes_a: np.ndarray | None = None
    classes_b: np.ndarray | None = None
    image: np.ndarray | None = None
    voxel_size: tuple[float, ...] = ()
    unit: str = "pixel"
    paths: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- reading


def read_array(path: str | os.PathLike) -> Loaded:
    """Read a TIFF, NPY or MRC file with its voxel size.

    A TIFF's channel axis ("C", at most :data:`MAX_CHANNELS` long) is moved
    last; a longer "C" axis, or samples not stored last, count as slices.

    Raises
    ------
    InputError
        When the file is missing, unreadable, truncated or not an image.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an image file ({', '.join(SUFFIXES)})")
    suffix = path.suffix.lower()
    readers = {".tif": _read_tiff, ".tiff": _read_tiff, ".npy": _read_npy,
               ".mrc": _read_mrc, ".rec": _read_mrc, ".map": _read_mrc}
    if suffix not in readers:
        raise InputError(
            f"{path}: unsupported file type {suffix!r}, expected one of {', '.join(SUFFIXES)}"
        )
    try:
        loaded = readers[suffix](path)
    except InputError:
        raise
    except Exception as err:  # every reader failure becomes one readable line
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{path}: cannot be read as {suffix[1:].upper()} ({reason})") from err
    if loaded.data.size == 0:
        raise InputError(f"{path}: holds an empty array of shape {loaded.data.shape}")
    return loaded


#: Longest axis that a TIFF calls "C" and that is read as channels; a longer
#: one is a stack of slices (ImageJ files saved without axis metadata say "C").
MAX_CHANNELS = 4


def _read_tiff(path: Path) -> Loaded:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise InputError(f"{path}: the TIFF holds no image")
        series = tif.series[0]
        data = _tiff_data(tif, series)
        axes = series.axes
        voxel_size, unit = _tiff_voxel_size(tif)
    data, axes = _squeeze_axes(data, axes)
    if "C" in axes and data.shape[axes.index("C")] <= MAX_CHANNELS:
        data = np.moveaxis(data, axes.index("C"), -1)
        axes = axes.replace("C", "") + "C"
    n_spatial = data.ndim - (axes[-1] in "CS")
    return Loaded(data, voxel_size[-n_spatial:], unit, path)


def _tiff_data(tif, series) -> np.ndarray:
    """The series' array: a read-only memory map when uncompressed, else read."""
    if series.dataoffset is not None and len(tif.series) == 1:
        try:
            return np.memmap(tif.filehandle.path, dtype=series.dtype, mode="r",
                             offset=series.dataoffset, shape=series.shape)
        except (OSError, ValueError):
            pass
    return series.asarray()


def _squeeze_axes(data: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    keep = [i for i, n in enumerate(data.shape) if n > 1 or axes[i] in "YX"]
    return data.reshape([data.shape[i] for i in keep]), "".join(axes[i] for i in keep)


def _tiff_voxel_size(tif) -> tuple[tuple[float, ...], str]:
    """(z, y, x) spacing from ImageJ, OME or resolution tags; ones when absent."""
    z = y = x = 1.0
    unit = "pixel"
    page = tif.pages.first
    if tif.is_ome and tif.ome_metadata:
        import xml.etree.ElementTree as ET

        root = ET.fromstring(tif.ome_metadata)
        pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
        if pixels is not None:
            x = float(pixels.get("PhysicalSizeX", x))
            y = float(pixels.get("PhysicalSizeY", y))
            z = float(pixels.get("PhysicalSizeZ", z))
            default_unit = "µm" if "PhysicalSizeX" in pixels.attrib else unit
            unit = pixels.get("PhysicalSizeXUnit", default_unit)
        return (z, y, x), unit
    tags = page.tags
    if "XResolution" in tags and "YResolution" in tags:
        xr = tags["XResolution"].value
        yr = tags["YResolution"].value
        if xr[0] and yr[0] and (xr != (1, 1) or yr != (1, 1)):
            x, y = xr[1] / xr[0], yr[1] / yr[0]
    ij = tif.imagej_metadata or {}
    if ij:
        z = float(ij.get("spacing", z))
        unit = _unit_from_imagej(str(ij.get("unit", unit)))
    return (z, y, x), unit


def _unit_from_imagej(unit: str) -> str:
    """ImageJ escapes non-ASCII units as ``\\uXXXX``; "micron" and "um" mean µm."""
    unit = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), unit)
    return "µm" if unit in ("micron", "microns", "um") else unit


def _unit_to_imagej(unit: str) -> str:
    return "".join(c if ord(c) < 128 else f"\\u{ord(c):04X}" for c in unit)


def _read_npy(path: Path) -> Loaded:
    data = np.load(path, allow_pickle=False)
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "biuf":
        raise InputError(f"{path}: holds {data.dtype} data, expected a numeric image array")
    return Loaded(data, (1.0,) * min(data.ndim, 3), "pixel", path)


def _read_mrc(path: Path) -> Loaded:
    import mrcfile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mrcfile.open(path, permissive=False, mode="r") as mrc:
            data = np.asarray(mrc.data).copy()
            vs = mrc.voxel_size
            spacing = (float(vs.z), float(vs.y), float(vs.x))
    if data.ndim == 2:
        spacing = spacing[1:]
    unit = "Å" if any(s not in (0.0, 1.0) for s in spacing) else "pixel"
    spacing = tuple(s if s > 0 else 1.0 for s in spacing)
    return Loaded(data, spacing, unit, path)


# --------------------------------------------------------------------------- validating


def load_mask(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None, Loaded]:
    """Read an instance mask and check it.

    A mask is (y, x) or (z, y, x) of integers (or floats with integral
    values), non-negative, at most 2**32 - 1. A trailing axis of length 2 is
    read as (instances, class per instance).

    Returns
    -------
    labels : ndarray of uint16/uint32, shape (y, x) or (z, y, x)
    classes : ndarray or None
        The class channel, same shape as ``labels``.
    loaded : Loaded
        The raw read, for its voxel size.
    """
    loaded = read_array(path)
    data = loaded.data
    classes = None
    if data.ndim in (3, 4) and data.shape[-1] == 2:
        data, classes = data[..., 0], data[..., 1]
    if data.ndim not in (2, 3):
        raise InputError(
            f"{loaded.path}: mask has {data.ndim} dimensions {data.shape}, expected 2D (y, x) "
            "or 3D (z, y, x), optionally with a trailing channel of 2 (instance, class)"
        )
    labels = as_labels(data, loaded.path, what="mask")
    if classes is not None:
        classes = as_labels(classes, loaded.path, what="class channel")
    return labels, classes, loaded


def as_labels(data: np.ndarray, path, *, what: str = "mask") -> np.ndarray:
    """Validate integer labels and return them in the smallest unsigned dtype.

    Parameters
    ----------
    data : ndarray
        Integers, booleans, or floats with integral values; non-negative,
        at most 2**32 - 1.
    path : path or str
        Named in the error message.
    what : str
        What ``data`` is, for the error message.

    Returns
    -------
    ndarray of uint8, uint16 or uint32
        ``data`` itself when it already is unsigned and small enough.

    Raises
    ------
    InputError
    """
    if data.dtype.kind == "b":
        return data.astype(np.uint8)
    if data.dtype.kind == "f":
        finite = np.isfinite(data)
        if not finite.all():
            raise InputError(
                f"{path}: {what} holds NaN or infinite values, expected integer labels"
            )
        if not np.array_equal(data, np.floor(data)):
            raise InputError(
                f"{path}: {what} holds non-integral floats (e.g. {_first_fraction(data)}), "
                "expected integer labels"
            )
    elif data.dtype.kind not in "iu":
        raise InputError(f"{path}: {what} has dtype {data.dtype}, expected integer labels")
    lo, hi = (data.min(), data.max())
    if lo < 0:
        raise InputError(f"{path}: {what} holds negative labels (min {lo:g}), expected ids >= 0")
    if hi > UINT32_MAX:
        raise InputError(f"{path}: {what} holds ids up to {hi:g}, expected ids <= {UINT32_MAX}")
    dtype = np.uint16 if hi <= UINT16_MAX else np.uint32
    if data.dtype.kind == "u" and data.dtype.itemsize <= np.dtype(dtype).itemsize:
        return data
    return data.astype(dtype)


def _first_fraction(data: np.ndarray) -> str:
    flat = data.reshape(-1)
    i = np.flatnonzero(flat != np.floor(flat))[0]
    return f"{flat[i]:g}"


def load_image(path: str | os.PathLike, *, shape: tuple[int, ...]) -> np.ndarray:
    """Read the image that the masks label and check that it has their shape.

    Parameters
    ----------
    shape : tuple of int
        The masks' shape; the image may add a trailing channel axis.

    Returns
    -------
    image : ndarray, shape ``shape`` or ``shape + (c,)``
    """
    loaded = read_array(path)
    data = loaded.data
    if data.ndim == len(shape) + 1 and data.shape[1:] == tuple(shape) and data.shape[0] <= 4:
        data = np.moveaxis(data, 0, -1)  # channels first, e.g. planar RGB
    if data.shape != tuple(shape) and data.shape[:-1] != tuple(shape):
        raise InputError(
            f"{loaded.path}: image shape {data.shape} does not match the masks' shape "
            f"{tuple(shape)} (a trailing channel axis is allowed)"
        )
    return data


def load_pair(mask_a, mask_b, *, image=None) -> MaskPair:
    """Read and validate mask A, mask B and optionally the image.

    Raises
    ------
    InputError
        Any problem with any of the files, before anything is computed.
    """
    a, classes_a, loaded_a = load_mask(mask_a)
    b, classes_b, loaded_b = load_mask(mask_b)
    if a.shape != b.shape:
        raise InputError(
            f"{loaded_b.path}: mask B has shape {b.shape} but mask A ({loaded_a.path}) has "
            f"{a.shape}; both masks must label the same image"
        )
    img = load_image(image, shape=a.shape) if image is not None else None
    voxel_size, unit = loaded_a.voxel_size, loaded_a.unit
    if unit == "pixel" and loaded_b.unit != "pixel":
        voxel_size, unit = loaded_b.voxel_size, loaded_b.unit
    voxel_size = tuple(voxel_size[-a.ndim:]) if len(voxel_size) >= a.ndim else (1.0,) * a.ndim
    return MaskPair(a, b, classes_a, classes_b, img, voxel_size, unit,
                    {"mask_a": Path(mask_a), "mask_b": Path(mask_b),
                     "image": Path(image) if image is not None else None})


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Readable image files of a folder (by :data:`SUFFIXES`), sorted by name.

    Raises
    ------
    InputError
        When ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith("."))


def pair_files(
    *folders: str | os.PathLike,
) -> tuple[list[tuple[Path, ...]], dict[Path, list[str]]]:
    """Pair the files of several folders by name (without suffix), sorted.

    Returns
    -------
    pairs : list of tuple of Path
        One tuple per name found in every folder, in the order of ``folders``.
    unpaired : dict
        Per folder, the names of its files that have no partner in the others.

    Raises
    ------
    InputError
        A folder is missing, or no name is common to all of them.
    """
    by_name = [{p.stem: p for p in image_files(folder)} for folder in folders]
    common = sorted(set.intersection(*(set(names) for names in by_name)))
    unpaired = {Path(folder): sorted(set(names) - set(common))
                for folder, names in zip(folders, by_name)}
    if not common:
        raise InputError(
            f"{folders[0]}: no file has a partner of the same name in "
            + ", ".join(str(f) for f in folders[1:])
        )
    return [tuple(names[name] for names in by_name) for name in common], unpaired


# --------------------------------------------------------------------------- writing


def labels_dtype(max_id: int) -> np.dtype:
    """uint16 when ``max_id`` fits, else uint32 (with a warning); never wraps.

    >>> labels_dtype(65535)
    dtype('uint16')
    """
    if max_id <= UINT16_MAX:
        return np.dtype(np.uint16)
    if max_id <= UINT32_MAX:
        warnings.warn(
            f"{max_id} objects do not fit uint16: writing uint32 (ImageJ reads it as 32-bit)",
            stacklevel=3,
        )
        return np.dtype(np.uint32)
    raise ValueError(f"{max_id} objects exceed uint32")


def check_writable(path: str | os.PathLike) -> Path:
    """Check that ``path`` can be created (its folder exists or can be, and is writable)."""
    path = Path(path)
    folder = path.parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot write here ({existing} is not a writable folder)")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a .tif file name")
    return path


def write_labels(
    path: str | os.PathLike,
    labels: np.ndarray,
    *,
    voxel_size: tuple[float, ...] | None = None,
    unit: str = "pixel",
    relabel: bool = True,
) -> Path:
    """Write a label image as an ImageJ-compatible TIFF, atomically.

    Ids become 1..n (in order of their current values) when ``relabel``;
    uint16 when n fits, uint32 with a warning beyond 65,535. The file is
    written to a temporary name in the same folder, fsynced and renamed over
    ``path``: readers see the old file or the new one, never a partial one.

    Parameters
    ----------
    labels : ndarray of int, shape (y, x) or (z, y, x)
    voxel_size : tuple of float, optional
        Spacing per axis, (y, x) or (z, y, x).
    """
    import tifffile

    path = check_writable(path)
    data, kwargs = labels_tiff(labels, voxel_size=voxel_size, unit=unit, relabel=relabel)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp_file(path)
    try:
        tifffile.imwrite(tmp, data, **kwargs)
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def labels_tiff(
    labels: np.ndarray,
    *,
    voxel_size: tuple[float, ...] | None = None,
    unit: str = "pixel",
    relabel: bool = True,
) -> tuple[np.ndarray, dict]:
    """What :func:`write_labels` writes: the checked array and ``tifffile.imwrite`` keywords.

    Parameters
    ----------
    labels : ndarray of int, shape (y, x) or (z, y, x)
    voxel_size : tuple of float, optional
    unit : str
    relabel : bool
        Ids 1..n in order of their current values.

    Returns
    -------
    data : ndarray of uint16 (uint32 beyond 65,535 ids, with a warning)
    kwargs : dict
        ImageJ metadata: axes, voxel size, unit.
    """
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ValueError(f"labels must be 2D or 3D, got shape {labels.shape}")
    if labels.dtype.kind not in "biu":
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got ids down to {labels.min()}")
    if relabel:
        labels = relabel_sequential(labels)
    max_id = int(labels.max(initial=0))
    data = labels.astype(labels_dtype(max_id), copy=False)
    return data, _tiff_metadata(data, voxel_size, unit)


def _new_temp_file(path: Path) -> Path:
    """Create an empty temporary file beside ``path``, with the permissions of a new file.

    (``tempfile.mkstemp`` makes it 0600, which the rename would pass on to ``path``.)
    """
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def _tiff_metadata(data: np.ndarray, voxel_size, unit: str) -> dict:
    axes = "ZYX" if data.ndim == 3 else "YX"
    voxel_size = tuple(voxel_size) if voxel_size else (1.0,) * data.ndim
    y, x = voxel_size[-2:]
    kwargs = {"resolution": (1.0 / x, 1.0 / y)}
    if data.dtype == np.uint32:  # ImageJ hyperstacks have no uint32
        kwargs["metadata"] = {"axes": axes}
        return kwargs
    metadata = {"axes": axes, "unit": _unit_to_imagej(unit)}
    if data.ndim == 3:
        metadata["spacing"] = voxel_size[0]
    return {**kwargs, "imagej": True, "metadata": metadata}


def _fsync_path(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (not possible on every file system)."""
    try:
        _fsync_path(folder)
    except OSError:
        pass


def relabel_sequential(labels: np.ndarray) -> np.ndarray:
    """Map the ids of ``labels`` to 1..n in increasing order, 0 staying 0.

    Returns ``labels`` itself when its ids already are 1..n.

    >>> relabel_sequential(np.array([[0, 7], [7, 3]])).tolist()
    [[0, 2], [2, 1]]
    """
    ids = np.unique(labels)
    ids = ids[ids != 0]
    if ids.size == 0 or ids[-1] == ids.size:
        return labels
    lut_dtype = labels_dtype_quiet(ids.size)
    if ids[-1] < 2 * labels.size:
        lut = np.zeros(int(ids[-1]) + 1, dtype=lut_dtype)
        lut[ids] = np.arange(1, ids.size + 1)
        return lut[labels]
    out = np.searchsorted(ids, labels).astype(lut_dtype) + 1
    out[labels == 0] = 0
    return out


def labels_dtype_quiet(n: int) -> np.dtype:
    return np.dtype(np.uint16) if n <= UINT16_MAX else np.dtype(np.uint32)
