"""Rules that every array read from disk follows, whatever its file: its byte order.

No Qt, no napari, no files.
"""

from __future__ import annotations

__all__ = ["native_byte_order"]


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
