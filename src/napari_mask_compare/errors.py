"""The error and result types that every reading and writing module shares.

- :class:`InputError`: bad input or a path that may not be written; its message is one line
  naming the file, what is wrong and what would be right (the CLI exits 2 with it);
- :class:`InputWarning`: input that is read but deserves a word;
- :class:`Loaded`: an array read from disk with its voxel size (:mod:`.read`, :mod:`.store`).

A leaf: it imports nothing from this package, so that every module may import it at the top.
(A failed write is :class:`._files.WriteError`, beside the one way files reach disk.)
No Qt, no napari.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["InputError", "InputWarning", "Loaded"]


class InputError(ValueError):
    """Bad input or output path: the message is one line meant for the user."""


class InputWarning(UserWarning):
    """Input that is read but deserves a word, e.g. masks whose voxel sizes disagree."""


@dataclass(frozen=True)
class Loaded:
    """An array read from disk with its spatial metadata.

    Attributes
    ----------
    data : ndarray or dask.array.Array
        Shape (y, x), (z, y, x), or either with a trailing channel axis (..., c).
        A dask array, chunked like the storage, for a zarr or HDF5 store. In
        native byte order (:func:`._arrays.native_byte_order`).
    voxel_size : tuple of float
        Spacing per spatial axis, in ``unit``; ones when the file has none.
    unit : str
        Unit of ``voxel_size`` ("pixel" when unknown).
    path : Path or None
        The file as given: ``FILE:K`` for series K of a TIFF.
    channels : {"C", "S", "", None}
        What the file says the trailing axis of ``data`` is: "C" a channel
        axis, "S" the samples of each pixel (RGB, extra samples), "" a spatial
        axis; None when the file does not name its axes (NPY, MRC, a TIFF
        written from a bare array), where a trailing axis of 2 counts as a
        class channel.
    labels : bool or None
        True when the file says that it holds labels (an OME-Zarr
        ``image-label``); None when it does not say.
    """

    data: np.ndarray
    voxel_size: tuple[float, ...]
    unit: str = "pixel"
    path: Path | None = None
    channels: str | None = None
    labels: bool | None = None
