"""Which format an output's name asks for: the one rule from suffix to writer.

============== ========== ====================================================
suffix         format     written by
============== ========== ====================================================
``.tif/.tiff`` TIFF       :func:`.read.write_label_files` (ImageJ, voxel size,
                          the Software tag that makes it ours)
``.npy``       NPY        :func:`.read.write_label_files` (no voxel size; no mark
                          of its writer, so never replaced)
``.zarr``      OME-Zarr   :func:`.ome_zarr_out.write_ome_zarr_labels` (NGFF labels,
                          block by block)
============== ========== ====================================================

Every format holds ids 1..n in the dtype of :func:`.labels.labels_dtype`
(uint16, uint32 beyond 65,535 ids). Any other suffix (``.png``, ``.h5``,
``.mrc``, none) is refused in one line naming it and the formats offered:
PNG is not written (8-bit PNG cannot hold 70,000 ids, and mask-compare does
not read PNG back).

The merge command and the napari writer both ask :func:`output_format`.
No Qt, no napari.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import _files
from .errors import InputError
from .ome_zarr_out import check_store_output
from .read import is_our_tiff

__all__ = ["FORMATS", "check_label_output", "output_format"]

#: Output formats by suffix (lower case).
FORMATS = {".tif": "TIFF", ".tiff": "TIFF", ".zarr": "OME-Zarr", ".npy": "NPY"}


def output_format(path: str | os.PathLike, *, option: str = "--out") -> str:
    """The format that the suffix of ``path`` names: "TIFF", "OME-Zarr" or "NPY".

    Raises
    ------
    InputError
        Another suffix: one line naming it and the formats offered.

    Examples
    --------
    >>> output_format("cells.ome.tif"), output_format("big.zarr"), output_format("m.NPY")
    ('TIFF', 'OME-Zarr', 'NPY')
    """
    suffix = Path(path).suffix
    fmt = FORMATS.get(suffix.lower())
    if fmt is None:
        problem = (f"{suffix} is not a format mask-compare writes" if suffix
                   else "has no suffix to name its format")
        raise InputError(f"{path}: {problem}; end {option} in {_offered()}")
    return fmt


def _offered() -> str:
    """``".tif or .tiff (TIFF), .zarr (OME-Zarr) or .npy (NPY)"``, from :data:`FORMATS`."""
    suffixes: dict[str, list[str]] = {}
    for suffix, fmt in FORMATS.items():
        suffixes.setdefault(fmt, []).append(suffix)
    named = [" or ".join(names) + f" ({fmt})" for fmt, names in suffixes.items()]
    return ", ".join(named[:-1]) + " or " + named[-1]


def check_label_output(
    path: str | os.PathLike,
    *,
    inputs=(),
    overwrite: bool = False,
    option: str = "--out",
) -> tuple[Path, str]:
    """Check that a label output may be written at ``path``, before anything is computed.

    The format comes from the suffix (:func:`output_format`); what may be
    replaced with ``overwrite`` is an earlier output of ours in that format:
    a TIFF with our Software tag, a store with our ``_creator``; an NPY file
    never (it carries no mark of its writer). See :func:`._files.check_output`.

    Returns
    -------
    path : Path
    format : str

    Raises
    ------
    InputError
        A suffix that is not offered, or an output that may not be written.
    """
    fmt = output_format(path, option=option)
    if fmt == "OME-Zarr":
        return check_store_output(path, inputs=inputs, overwrite=overwrite, option=option), fmt
    ours = is_our_tiff if fmt == "TIFF" else lambda path: _unknown_writer(path, option=option)
    return _files.check_output(path, inputs=inputs, ours=ours, overwrite=overwrite,
                               option=option), fmt


def _unknown_writer(path: Path, *, option: str) -> bool:
    """``ours`` of an existing NPY file: nothing in it says who wrote it, so it is refused
    with that reason (raised here, once :func:`._files.check_output` has checked the rest)."""
    raise InputError(f"{path}: exists, and an NPY file does not say which program wrote it, "
                     f"so it is never overwritten: remove it first, or choose another {option}")
