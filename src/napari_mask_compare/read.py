"""Read and validate masks and images; write label images atomically.

TIFF, NPY and MRC files are read into memory (or memory-mapped); zarr,
OME-Zarr and HDF5 stores (:func:`.store.is_store_path`) are read lazily as
dask arrays by :mod:`.store`, through the same functions.

No Qt, no napari. Every refusal is an :class:`InputError` whose message is one
line naming the file, what is wrong and what would be right.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import _files, store
from ._arrays import native_byte_order
from ._files import check_writable
from ._tiff_whole import first_damage
from .errors import InputError, InputWarning, Loaded
from .labels import as_labels, as_lazy_labels, check_labels, labels_dtype, relabel_sequential

__all__ = [
    "STORE_SUFFIXES",
    "SUFFIXES",
    "as_labels",
    "image_files",
    "labels_tiff",
    "MaskPair",
    "load_image",
    "load_mask",
    "load_pair",
    "pair_files",
    "read_array",
    "write_labels",
    "is_our_tiff",
]

#: File name endings this package reads.
SUFFIXES = (".tif", ".tiff", ".npy", ".mrc", ".rec", ".map")
#: Endings of the stores read lazily by :mod:`.store` (zarr folders, HDF5 files).
STORE_SUFFIXES = store.ZARR_SUFFIXES + store.HDF5_SUFFIXES


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
    """Read a TIFF, NPY or MRC file with its voxel size; open a zarr or HDF5 store lazily.

    A TIFF's samples axis ("S", e.g. RGB) or else its channel axis ("C", at
    most :data:`MAX_CHANNELS` long) is moved last; a longer "C" axis counts
    as slices. A TIFF of several series is refused unless one is chosen as
    ``FILE:K`` (series K, from 0), which is read only when no file has that
    name.

    A zarr array, an OME-Zarr image or labels, or an HDF5 dataset
    (:func:`.store.is_store_path`) is opened by :func:`.store.open_array`
    as an image: ``data`` is a dask array chunked like the storage, nothing
    is read yet.

    Raises
    ------
    InputError
        When the file is missing, unreadable, truncated or not an image, or
        when it cannot be read without a guess (several series, pages of
        differing shapes).
    """
    if store.is_store_path(path):
        return store.open_array(path, what="image")
    given = Path(path)
    path, series = _split_series(given)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an image file ({', '.join(SUFFIXES)})")
    if not path.is_file():  # a FIFO, a device: reading could wait forever
        raise InputError(f"{path}: is not a regular file, expected an image file")
    suffix = path.suffix.lower()
    readers = {".tif": _read_tiff, ".tiff": _read_tiff, ".npy": _read_npy,
               ".mrc": _read_mrc, ".rec": _read_mrc, ".map": _read_mrc}
    if suffix not in readers:
        raise InputError(
            f"{path}: unsupported file type {suffix!r}, expected one of {', '.join(SUFFIXES)}"
        )
    try:
        loaded = readers[suffix](path) if series is None else _read_tiff(path, series=series)
    except InputError:
        raise
    except Exception as err:  # every reader failure becomes one readable line
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{path}: cannot be read as {suffix[1:].upper()} ({reason})") from err
    if loaded.data.size == 0:
        raise InputError(f"{given}: holds an empty array of shape {loaded.data.shape}")
    return dataclasses.replace(loaded, data=native_byte_order(loaded.data),
                               path=given if series is not None else loaded.path)


def _split_series(path: Path) -> tuple[Path, int | None]:
    """``FILE:K`` -> (FILE, K) for a TIFF, when no file is named ``FILE:K``; else (path, None).

    >>> path, k = _split_series(Path("cells.ome.tif:1"))
    >>> path.name, k
    ('cells.ome.tif', 1)
    """
    match = re.fullmatch(r"(.+\.tiff?):(\d+)", str(path), flags=re.IGNORECASE)
    if match is None or path.exists():
        return path, None
    return Path(match[1]), int(match[2])


#: Longest axis that a TIFF calls "C" and that is read as channels; a longer
#: one is a stack of slices (ImageJ files saved without axis metadata say "C").
MAX_CHANNELS = 4


def _read_tiff(path: Path, *, series: int | None = None) -> Loaded:
    """Read the only series of a TIFF, or series ``series``.

    Parameters
    ----------
    path : Path
    series : int, optional
        Which series to read; a TIFF of several series needs one.
    """
    import tifffile

    with quiet_logger("tifffile"), tifffile.TiffFile(path) as tif:
        _check_whole(tif, path)
        chosen = _tiff_series(tif, path, index=series)
        data = _tiff_data(tif, chosen, path=path)
        voxel_size, unit = _tiff_voxel_size(tif, index=series or 0)
    data, axes = _squeeze_axes(data, chosen.axes)
    if chosen.kind == "shaped" and "S" in axes[:-1]:
        # tifffile stores a bare (3 or 4, y, x) array as planar RGB: its axes are unknown
        axes = axes.replace("S", "Q")
    data, axes = _channels_last(data, axes)
    channels = axes[-1] if axes[-1] in "CS" else None if "Q" in axes else ""
    n_spatial = data.ndim - bool(channels)
    return Loaded(data, voxel_size[-n_spatial:], unit, path, channels)


def _check_whole(tif, path: Path) -> None:
    """InputError when part of the TIFF lies past the end of its file (:mod:`._tiff_whole`):
    tifffile would read what is left as a smaller image, silently."""
    damage = first_damage(tif)
    if damage:
        raise InputError(f"{path}: truncated: {damage}; expected the whole file (copy it again)")


@contextlib.contextmanager
def quiet_logger(name: str):
    """Silence library ``name``'s log lines (tifffile's oddities, distributed's retries) for a
    while: they would break the one-line rule; the caller says what matters in one line."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _tiff_series(tif, path: Path, *, index: int | None):
    """The TIFF's only series, or series ``index``; an InputError when that is a guess.

    Pyramid levels are one series (``series.levels``), not several.
    """
    try:
        all_series = tif.series
    except RuntimeError as err:  # tifffile: "incompatible keyframe"
        shapes = _page_shapes(path)
        if len(shapes) > 1:
            raise InputError(
                f"{path}: its pages differ in shape ({_format_shapes(shapes)}) but its metadata "
                "describes one image; expected pages of one shape (save each image as its own "
                "file)"
            ) from err
        raise
    if not all_series:
        raise InputError(f"{path}: the TIFF holds no image")
    n = len(all_series)
    if index is None and n > 1:
        pages = " of pages that differ in shape or type" if all_series[0].kind == "generic" else ""
        raise InputError(
            f"{path}: holds {n} series{pages} (shapes "
            f"{', '.join(f'{s.shape} {s.dtype}' for s in all_series)}); choose one as FILE:K, "
            f"e.g. {path.name}:1"
        )
    if index is not None and index >= n:
        raise InputError(
            f"{path}: has no series {index}, it holds {n} series; choose K from 0 to {n - 1} "
            f"as FILE:K, e.g. {path.name}:0"
        )
    return all_series[index or 0]


def _page_shapes(path: Path) -> dict[tuple[int, ...], int]:
    """How many pages of each shape a TIFF holds, in the order they first appear."""
    import tifffile

    shapes: dict[tuple[int, ...], int] = {}
    with tifffile.TiffFile(path) as tif:
        for page in tif.pages:
            shapes[page.shape] = shapes.get(page.shape, 0) + 1
    return shapes


def _format_shapes(shapes: dict[tuple[int, ...], int], *, most: int = 4) -> str:
    """``{(6, 8): 2, (5, 7): 1}`` -> "2 pages of (6, 8), 1 page of (5, 7)".

    >>> _format_shapes({(6, 8): 2, (5, 7): 1})
    '2 pages of (6, 8), 1 page of (5, 7)'
    """
    words = [f"{n} page{'s' * (n > 1)} of {shape}" for shape, n in list(shapes.items())[:most]]
    return ", ".join(words) + (", ..." if len(shapes) > most else "")


def _tiff_data(tif, series, *, path: Path) -> np.ndarray:
    """The series' array: a read-only memory map when uncompressed and native, else read.

    The file's byte order is the memory map's: a big-endian file (as ImageJ
    writes them) is read, not mapped, so that its values arrive in native
    byte order as ``tifffile.imread`` gives them. Pages are checked to have
    one shape before they are read (tifffile would read every page with the
    first one's shape). A memory-mapped series needs no check: tifffile maps
    only pages that follow each other with the bytes of that shape.
    """
    stored = series.dtype.newbyteorder(tif.byteorder)
    if series.dataoffset is not None and len(tif.series) == 1 and stored.isnative:
        try:
            return np.memmap(tif.filehandle.path, dtype=stored, mode="r",
                             offset=series.dataoffset, shape=series.shape)
        except (OSError, ValueError):
            pass
    _check_page_shapes(series, path=path)
    return series.asarray()


def _check_page_shapes(series, *, path: Path) -> None:
    """InputError when the pages of one series differ in shape."""
    import tifffile

    shapes: dict[tuple[int, ...], int] = {}
    for page in series.pages:
        if page is None or getattr(page, "is_virtual", False):
            continue
        if isinstance(page, tifffile.TiffFrame):
            page = page.aspage()  # a frame takes its shape from the first page
        shapes[page.shape] = shapes.get(page.shape, 0) + 1
    if len(shapes) > 1:
        raise InputError(
            f"{path}: its pages differ in shape ({_format_shapes(shapes)}) but its metadata "
            f"describes one image of shape {series.shape}; expected pages of one shape "
            "(save each image as its own file)"
        )


def _squeeze_axes(data: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    keep = [i for i, n in enumerate(data.shape) if n > 1 or axes[i] in "YX"]
    return data.reshape([data.shape[i] for i in keep]), "".join(axes[i] for i in keep)


def _channels_last(data: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """Move the samples axis "S", or else a "C" axis of at most MAX_CHANNELS, last."""
    if "S" in axes:
        name = "S"
    elif "C" in axes and data.shape[axes.index("C")] <= MAX_CHANNELS:
        name = "C"
    else:
        return data, axes
    return np.moveaxis(data, axes.index(name), -1), axes.replace(name, "") + name


def _tiff_voxel_size(tif, *, index: int = 0) -> tuple[tuple[float, ...], str]:
    """(z, y, x) spacing of series ``index``: ImageJ, OME or resolution tags; ones when absent."""
    z = y = x = 1.0
    unit = "pixel"
    page = tif.series[index].keyframe
    if tif.is_ome and tif.ome_metadata:
        import xml.etree.ElementTree as ET

        root = ET.fromstring(tif.ome_metadata)
        pixels = [el for el in root.iter() if el.tag.endswith("Pixels")]
        pixels = pixels[index] if index < len(pixels) else next(iter(pixels), None)
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
    values), non-negative, at most 2**32 - 1. A channel axis of length 2 is
    read as (instances, class per instance): a TIFF's "C" axis, or the
    trailing axis of a file that does not name its axes (NPY, MRC). A TIFF
    with samples per pixel (RGB) or another number of channels is refused.

    A zarr or HDF5 store (:func:`.store.is_store_path`) is opened lazily:
    ``labels`` is then a dask array checked block by block as it is
    computed (:func:`.labels.as_lazy_labels`); its dtype must be an integer one,
    and it has no class channel.

    Returns
    -------
    labels : ndarray or dask.array.Array of uint8/uint16/uint32, shape (y, x) or (z, y, x)
    classes : ndarray or None
        The class channel, same shape as ``labels``.
    loaded : Loaded
        The raw read, for its voxel size.
    """
    if store.is_store_path(path):
        return _load_store_mask(path)
    loaded = read_array(path)
    data, classes = _split_class_channel(loaded)
    _check_mask_ndim(data, loaded.path)
    labels = as_labels(data, loaded.path, what="mask")
    if classes is not None:
        classes = as_labels(classes, loaded.path, what="class channel")
    return labels, classes, loaded


def _load_store_mask(path) -> tuple:
    """:func:`load_mask` of a zarr or HDF5 store: lazy labels, no class channel."""
    loaded = store.open_array(path, what="mask")
    _check_mask_ndim(loaded.data, loaded.path)
    return as_lazy_labels(loaded.data, loaded.path, what="mask"), None, loaded


def _check_mask_ndim(data, path) -> None:
    if data.ndim not in (2, 3):
        raise InputError(
            f"{path}: mask has {data.ndim} dimensions {data.shape}, expected 2D (y, x) "
            "or 3D (z, y, x), optionally with a trailing channel of 2 (instance, class)"
        )


def _split_class_channel(loaded: Loaded) -> tuple[np.ndarray, np.ndarray | None]:
    """(instances, classes) of a mask; classes None without a class channel.

    Decided by the file's axes when it names them (:attr:`Loaded.channels`),
    else by shape (a trailing axis of 2 on 3 or 4 dimensions).
    """
    data = loaded.data
    if loaded.channels in ("C", "S"):
        n = data.shape[-1]
        if loaded.channels == "S" or n != 2:
            raise InputError(
                f"{loaded.path}: holds {_channels_words(loaded.channels, n)}, expected a label "
                "image with one value per pixel; an instance mask with a class channel has "
                "exactly 2 channels"
            )
    elif loaded.channels == "" or not (data.ndim in (3, 4) and data.shape[-1] == 2):
        return data, None
    return data[..., 0], data[..., 1]


def _channels_words(channels: str, n: int) -> str:
    """What a trailing "S" or "C" axis of ``n`` is, in words.

    >>> _channels_words("S", 3), _channels_words("C", 3)
    ('an RGB image (samples axis of 3)', '3 channels (channel axis of 3)')
    """
    if channels == "C":
        return f"{n} channels (channel axis of {n})"
    what = {3: "an RGB image", 4: "an RGBA image"}.get(n, f"{n} samples per pixel")
    return f"{what} (samples axis of {n})"


def load_image(path: str | os.PathLike, *, shape: tuple[int, ...]) -> np.ndarray:
    """Read the image that the masks label and check that it has their shape.

    Parameters
    ----------
    shape : tuple of int
        The masks' shape; the image may add a trailing channel axis.

    Returns
    -------
    image : ndarray, shape ``shape`` or ``shape + (c,)``
        A dask array for a zarr or HDF5 store (not read).
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
    _warn_if_voxel_sizes_differ(loaded_a, loaded_b, ndim=a.ndim)
    voxel_size, unit = loaded_a.voxel_size, loaded_a.unit
    if unit == "pixel" and loaded_b.unit != "pixel":
        voxel_size, unit = loaded_b.voxel_size, loaded_b.unit
    voxel_size = tuple(voxel_size[-a.ndim:]) if len(voxel_size) >= a.ndim else (1.0,) * a.ndim
    return MaskPair(a, b, classes_a, classes_b, img, voxel_size, unit,
                    {"mask_a": Path(mask_a), "mask_b": Path(mask_b),
                     "image": Path(image) if image is not None else None})


#: Metres per unit of length, to compare voxel sizes given in different units.
_METRES = {"m": 1.0, "cm": 1e-2, "mm": 1e-3, "µm": 1e-6, "μm": 1e-6, "um": 1e-6,
           "micron": 1e-6, "nm": 1e-9, "Å": 1e-10, "pm": 1e-12}


def _warn_if_voxel_sizes_differ(loaded_a: Loaded, loaded_b: Loaded, *, ndim: int) -> None:
    """An :class:`InputWarning` when both masks know their voxel size and they disagree.

    Sizes in different known length units are compared in metres; they agree
    within a relative 1e-6.
    """
    if "pixel" in (loaded_a.unit, loaded_b.unit):
        return
    size_a, size_b = loaded_a.voxel_size[-ndim:], loaded_b.voxel_size[-ndim:]
    scale_a, scale_b = _METRES.get(loaded_a.unit), _METRES.get(loaded_b.unit)
    if scale_a is None or scale_b is None:
        if loaded_a.unit != loaded_b.unit:
            scale_a = scale_b = float("nan")  # lengths in units we cannot compare
        else:
            scale_a = scale_b = 1.0
    metres_a = np.asarray(size_a, dtype=float) * scale_a
    metres_b = np.asarray(size_b, dtype=float) * scale_b
    if len(size_a) == len(size_b) and np.allclose(metres_a, metres_b, rtol=1e-6, atol=0):
        return
    warnings.warn(
        f"{loaded_b.path}: voxel size {_format_size(size_b, loaded_b.unit)} differs from mask "
        f"A's {_format_size(size_a, loaded_a.unit)} ({loaded_a.path}); using mask A's",
        InputWarning,
        stacklevel=3,
    )


def _format_size(size: tuple[float, ...], unit: str) -> str:
    """``(2.0, 0.5)`` -> "2 × 0.5 µm".

    >>> _format_size((2.0, 0.5), "µm")
    '2 × 0.5 µm'
    """
    return " × ".join(f"{s:g}" for s in size) + f" {unit}"


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Readable image files of a folder (by :data:`SUFFIXES`), sorted by name.

    Stores count as files: ``.zarr`` folders and HDF5 files
    (:data:`STORE_SUFFIXES`).

    Raises
    ------
    InputError
        When ``folder`` is not a folder or cannot be listed.
    """
    folder = Path(folder)
    try:
        if not folder.is_dir():
            raise InputError(f"{folder}: no such folder")
        return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and (
            (p.is_file() and p.suffix.lower() in SUFFIXES + store.HDF5_SUFFIXES)
            or (p.is_dir() and p.suffix.lower() in store.ZARR_SUFFIXES)))
    except OSError as err:
        raise InputError(
            f"{folder}: the folder cannot be listed ({err.strerror or err}); "
            "expected a folder this user may read"
        ) from err


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
        A folder is missing or cannot be listed, or given twice; two files of a
        folder share a name (``x.tif`` and ``x.npy``: which is the partner of
        ``x``?), named in the message; or no name is common to all folders.
    """
    for k, folder in enumerate(folders):
        for other in folders[k + 1:]:
            if _files.same_file(folder, other):
                raise InputError(f"{folder}: the same folder is given twice ({other}); "
                                 "give the folders of the masks to compare")
    by_name = [_files_by_name(folder) for folder in folders]
    common = sorted(set.intersection(*(set(names) for names in by_name)))
    unpaired = {Path(folder): sorted(set(names) - set(common))
                for folder, names in zip(folders, by_name)}
    if not common:
        raise InputError(
            f"{folders[0]}: no file has a partner of the same name in "
            + ", ".join(str(f) for f in folders[1:])
        )
    return [tuple(names[name] for names in by_name) for name in common], unpaired


def _files_by_name(folder) -> dict[str, Path]:
    """The image files of a folder by name (without suffix); two files of one name are refused."""
    by_name: dict[str, list[Path]] = {}
    for path in image_files(folder):
        by_name.setdefault(_pairing_name(path), []).append(path)
    clashes = [paths for paths in by_name.values() if len(paths) > 1]
    if clashes:
        listed = "; ".join(" and ".join(p.name for p in paths) for paths in clashes)
        raise InputError(f"{folder}: files share a name, so their partners are ambiguous: "
                         f"{listed}; keep one file of each name (move or rename the others)")
    return {name: paths[0] for name, paths in by_name.items()}


def _pairing_name(path: Path) -> str:
    """The name that pairs files: the stem; for a store, its name without ``.ome.zarr``.

    >>> _pairing_name(Path("cells.tif")), _pairing_name(Path("cells.ome.zarr"))
    ('cells', 'cells')
    """
    return store.store_name(path) if path.suffix.lower() in STORE_SUFFIXES else path.stem


# --------------------------------------------------------------------------- writing

#: Written into the TIFF "Software" tag of every label image this package writes:
#: how :func:`is_our_tiff` knows a file that may be replaced.
SOFTWARE = "napari-mask-compare"


def is_our_tiff(path: str | os.PathLike) -> bool:
    """True when ``path`` is a TIFF that this package wrote (its Software tag)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return tif.pages.first.software == SOFTWARE
    except Exception:  # not a TIFF, unreadable: not ours
        return False


def write_labels(
    path: str | os.PathLike,
    labels: np.ndarray,
    *,
    voxel_size: tuple[float, ...] | None = None,
    unit: str = "pixel",
    relabel: bool = True,
    fmt: str = "TIFF",
) -> Path:
    """Write a label image as an ImageJ-compatible TIFF (or ``fmt="NPY"``), atomically.

    Ids become 1..n (in order of their current values) when ``relabel``;
    uint16 when n fits, uint32 with a warning beyond 65,535 (see
    :mod:`.labels`). The file is written by :func:`._files.atomic_open`: readers
    see the old file or the new one, never a partial one; a failure raises
    :class:`._files.WriteError` and leaves the old file as it was. The caller
    checks first that ``path`` may be written (:func:`._files.check_output`).

    Parameters
    ----------
    labels : ndarray of int, shape (y, x) or (z, y, x)
    voxel_size : tuple of float, optional
        Spacing per axis, (y, x) or (z, y, x).
    """
    path = check_writable(path)
    write_label_files({path: labels}, voxel_size=voxel_size, unit=unit, relabel=relabel,
                      fmt=fmt)
    return path


def write_label_files(
    files: dict,
    *,
    voxel_size: tuple[float, ...] | None = None,
    unit: str = "pixel",
    relabel: bool = True,
    fmt: str = "TIFF",
    before_commit: _files.BeforeCommit | None = None,
) -> None:
    """Write several label files (e.g. an output and its classes) that appear together.

    Parameters
    ----------
    files : dict of path to ndarray
        Label images, as for :func:`write_labels`.
    fmt : {"TIFF", "NPY"}
        The format of every file (:func:`.write.output_format` of the name):
        an NPY file holds the same array as the TIFF, without voxel size.
    before_commit : callable, optional
        See :func:`._files.staged`.

    Raises
    ------
    WriteError
        Nothing was replaced (see :func:`._files.staged`).
    """
    import tifffile

    if fmt not in ("TIFF", "NPY"):
        raise ValueError(f"label files are written as TIFF or NPY, not {fmt!r}")
    encoded = {Path(path): labels_tiff(labels, voxel_size=voxel_size, unit=unit,
                                       relabel=relabel, warn=fmt == "TIFF")
               for path, labels in files.items()}
    with _files.staged(before_commit=before_commit) as stage:
        for path, (data, kwargs) in encoded.items():
            with stage.open(path) as f:
                if fmt == "NPY":
                    np.save(f, data, allow_pickle=False)
                else:
                    tifffile.imwrite(f, data, **kwargs)


def labels_tiff(
    labels: np.ndarray,
    *,
    voxel_size: tuple[float, ...] | None = None,
    unit: str = "pixel",
    relabel: bool = True,
    warn: bool = True,
) -> tuple[np.ndarray, dict]:
    """What :func:`write_labels` writes: the checked array and ``tifffile.imwrite`` keywords.

    Parameters
    ----------
    labels : ndarray of int, shape (y, x) or (z, y, x)
    voxel_size : tuple of float, optional
    unit : str
    relabel : bool
        Ids 1..n in order of their current values.
    warn : bool
        Warn that uint32 is needed (ImageJ reads it as 32-bit).

    Returns
    -------
    data : ndarray of uint16 (uint32 beyond 65,535 ids, with a warning)
    kwargs : dict
        ImageJ metadata: axes, voxel size, unit; the Software tag.
    """
    labels = check_labels(labels)
    if relabel:
        labels = relabel_sequential(labels)
    max_id = int(labels.max(initial=0))
    data = labels.astype(labels_dtype(max_id, warn=warn), copy=False)
    return data, _tiff_metadata(data, voxel_size, unit)


def _tiff_metadata(data: np.ndarray, voxel_size, unit: str) -> dict:
    axes = "ZYX" if data.ndim == 3 else "YX"
    voxel_size = tuple(voxel_size) if voxel_size else (1.0,) * data.ndim
    y, x = voxel_size[-2:]
    kwargs = {"resolution": (1.0 / x, 1.0 / y), "software": SOFTWARE}
    if data.dtype == np.uint32:  # ImageJ hyperstacks have no uint32
        kwargs["metadata"] = {"axes": axes}
        return kwargs
    metadata = {"axes": axes, "unit": _unit_to_imagej(unit)}
    if data.ndim == 3:
        metadata["spacing"] = voxel_size[0]
    return {**kwargs, "imagej": True, "metadata": metadata}
