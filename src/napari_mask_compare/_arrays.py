"""Rules about the arrays the package computes on, each written once.

- :func:`native_byte_order`: every array read from disk, whatever its file,
  leaves in this machine's byte order;
- :func:`is_lazy`: an array read chunk by chunk when used (dask, zarr,
  chunked HDF5) rather than one in memory; :func:`as_dask` one as dask;
- :func:`voxel_spacing`: a voxel size checked, one positive number per axis;
- :func:`sum_by`: sums of values per index, e.g. voxels per id of an overlap table.

A leaf: no imports from the package, no Qt, no napari, no dask at import.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["as_dask", "is_lazy", "native_byte_order", "sum_by", "voxel_spacing"]


def is_lazy(data) -> bool:
    """An array stored in chunks and read when used, not one in memory.

    True for dask arrays, zarr arrays and chunked HDF5 datasets (each has a
    ``chunks`` grid to cut blocks along); False for numpy arrays, memory maps
    included. A napari multiscale layer is a list of such arrays: test its
    level 0.

    Examples
    --------
    >>> import dask.array as da
    >>> is_lazy(np.zeros(3)), is_lazy(da.zeros(3, chunks=2))
    (False, True)
    """
    return not isinstance(data, np.ndarray) and getattr(data, "chunks", None) is not None


def as_dask(data):
    """A lazy array (:func:`is_lazy`) as a dask array cut along its own chunks.

    Parameters
    ----------
    data : dask.array.Array, zarr array or chunked HDF5 dataset, any shape

    Returns
    -------
    dask.array.Array, shape ``data.shape``
        ``data`` itself when it is one already.
    """
    import dask.array as da

    return data if isinstance(data, da.Array) else da.from_array(data, chunks=data.chunks)


def voxel_spacing(voxel_size, ndim: int) -> tuple[float, ...]:
    """``voxel_size`` checked (one positive finite number per axis), 1 per axis when None.

    Parameters
    ----------
    voxel_size : sequence of float, length ``ndim``, or None
    ndim : int

    Returns
    -------
    tuple of float, length ``ndim``

    Raises
    ------
    ValueError
        Not ``ndim`` positive finite numbers.

    Examples
    --------
    >>> voxel_spacing(None, 2), voxel_spacing([0.5, 2], 2)
    ((1.0, 1.0), (0.5, 2.0))
    """
    if voxel_size is None:
        return (1.0,) * ndim
    values = tuple(float(v) for v in voxel_size)
    if len(values) != ndim or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"voxel_size must be {ndim} positive numbers, got {voxel_size!r}")
    return values


def sum_by(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Sums of integer ``values`` per ``index`` in 0..n-1.

    Parameters
    ----------
    index : ndarray of int, shape (m,)
        Each in 0..n-1.
    values : ndarray of int, shape (m,)
    n : int

    Returns
    -------
    ndarray of int64, shape (n,)
        Exact while every sum is below 2**53 (summed in float64).

    Examples
    --------
    >>> sum_by(np.array([0, 2, 0]), np.array([5, 1, 2]), 4).tolist()
    [7, 0, 1, 0]
    """
    return np.rint(np.bincount(index, weights=values, minlength=n)).astype(np.int64)


def native_byte_order(data):
    """``data`` with its values in this machine's byte order, as ``tifffile.imread`` gives them.

    Files and stores may hold big-endian values (ImageJ TIFFs, ``>u2`` NPY
    files, zarr v2 and HDF5 arrays of ``>`` dtypes); every array read here
    leaves in native byte order, so that no compiled kernel or viewer meets
    swapped bytes.

    Parameters
    ----------
    data : ndarray or dask.array.Array
        Any shape.

    Returns
    -------
    ndarray or dask.array.Array
        ``data`` itself when native already; else a native copy (a dask array
        converts block by block as it is computed).

    >>> import numpy as np
    >>> x = native_byte_order(np.array([1, 3], dtype=">u2"))
    >>> x.dtype.isnative, x.tolist()
    (True, [1, 3])
    """
    dtype = data.dtype
    return data if dtype.isnative else data.astype(dtype.newbyteorder("="))
