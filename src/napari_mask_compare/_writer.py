"""npe2 writer: one Labels layer to a TIFF, NPY or OME-Zarr file, by the core's rules.

Thin glue: the format is the one the name's suffix asks for
(:func:`napari_mask_compare.write.output_format`, as for ``mask-compare
merge``); ids become 1..n (background 0), uint16 (uint32 with a warning
beyond 65,535 objects), the layer's scale is the voxel size (not kept by
NPY), and the file or store is replaced atomically (napari asked first; a
store that mask-compare did not write is never replaced).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import read
from .write import output_format

__all__ = ["write_labels"]


def write_labels(path: str | os.PathLike, data: Any, meta: dict) -> list[str]:
    """Write a Labels layer's data with ids 1..n, in the format its name's suffix names.

    Parameters
    ----------
    path : str or PathLike
        Target: ``.tif``/``.tiff`` (ImageJ TIFF), ``.npy`` or ``.zarr``
        (OME-Zarr labels); ``.tif`` is appended to a name without a suffix.
    data : array-like of int, shape (y, x) or (z, y, x)
        The layer's data (for a multiscale layer, the list of levels: the
        full-resolution one is written).
    meta : dict
        The layer's attributes as napari passes them; ``scale`` (one value
        per axis) becomes the voxel size, ``units`` its unit.

    Returns
    -------
    list of str
        The written file.

    Raises
    ------
    ValueError
        Negative ids, or not 2D/3D (from :func:`read.write_labels`); a suffix
        that names no format offered, or a store that is not ours
        (:class:`errors.InputError`).

    Examples
    --------
    >>> import tempfile
    >>> labels = np.array([[0, 7], [7, 3]])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     written = write_labels(f"{folder}/m.tif", labels, {"scale": (0.5, 0.5)})
    >>> Path(written[0]).name
    'm.tif'
    """
    path = Path(path)
    if not path.suffix:
        path = path.with_name(path.name + ".tif")
    fmt = output_format(path, option="the file name")
    labels = _full_resolution(data, multiscale=bool(meta.get("multiscale", False)))
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError(
            f"{path}: the labels hold negative ids (min {labels.min()}), "
            "expected background 0 and ids >= 1"
        )
    voxel_size = _voxel_size(meta.get("scale"), labels.ndim)
    unit = _unit_name(meta.get("units"))
    if fmt == "OME-Zarr":
        from .labels import check_labels, relabel_sequential
        from .ome_zarr_out import write_ome_zarr_labels

        written = write_ome_zarr_labels(path, relabel_sequential(check_labels(labels)),
                                        voxel_size=voxel_size, unit=unit, overwrite=True)
    else:
        written = read.write_labels(path, labels, voxel_size=voxel_size, unit=unit, fmt=fmt)
    return [str(written)]


def _full_resolution(data: Any, *, multiscale: bool) -> np.ndarray:
    """The array to write: level 0 of a multiscale layer, loaded into memory."""
    if multiscale:
        data = data[0]
    return np.asarray(data)


def _voxel_size(scale: Sequence[float] | None, ndim: int) -> tuple[float, ...] | None:
    """The last ``ndim`` values of the layer's scale, as floats (None when absent)."""
    if scale is None or len(scale) < ndim:
        return None
    return tuple(float(s) for s in scale[len(scale) - ndim:])


def _unit_name(units: Sequence[Any] | None) -> str:
    """Name of the x axis' unit for the TIFF: ``"µm"``, ``"nm"``, ``"angstrom"``, ``"pixel"``.

    pint's abbreviation when it is ASCII or µm (which :mod:`.read` escapes for
    ImageJ), else its ASCII long name: the TIFF writer (:func:`.read.write_labels`)
    cannot write other non-ASCII units.
    """
    if not units:
        return "pixel"
    import pint

    try:
        unit = pint.get_application_registry().Unit(units[-1])
    except Exception:  # pint raises several types for unknown or malformed units
        return "pixel"
    short = f"{unit:~}"
    return short if short.isascii() or short == "µm" else str(unit)
