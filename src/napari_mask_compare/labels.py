"""Label image rules, each written once: the dtype, ids 1..n, what a label image is.

- :func:`labels_dtype`: uint16 when the ids fit, uint32 beyond 65,535 (with a
  warning when written), never wrapping;
- :func:`relabel_sequential`: ids 1..n in the order of their values;
- :func:`as_labels`: validate an input (integers, non-negative, at most
  2**32 - 1) and keep it in the smallest unsigned dtype;
- :func:`check_labels`: what an output label image must be (2D or 3D integers >= 0).

No Qt, no napari, no files.
"""

from __future__ import annotations

import warnings

import numpy as np

from .errors import InputError

__all__ = [
    "UINT16_MAX",
    "UINT32_MAX",
    "as_labels",
    "check_labels",
    "labels_dtype",
    "relabel_sequential",
]

UINT16_MAX = int(np.iinfo(np.uint16).max)
UINT32_MAX = int(np.iinfo(np.uint32).max)


def labels_dtype(max_id: int, *, warn: bool = False) -> np.dtype:
    """uint16 when ``max_id`` fits, else uint32; never wraps.

    Parameters
    ----------
    max_id : int
        The largest id to hold.
    warn : bool
        Warn when uint32 is needed (ImageJ reads it as 32-bit): for outputs.

    Examples
    --------
    >>> labels_dtype(65535), labels_dtype(65536)
    (dtype('uint16'), dtype('uint32'))
    """
    if max_id <= UINT16_MAX:
        return np.dtype(np.uint16)
    if max_id <= UINT32_MAX:
        if warn:
            warnings.warn(
                f"{max_id} objects do not fit uint16: writing uint32 (ImageJ reads it as 32-bit)",
                stacklevel=3,
            )
        return np.dtype(np.uint32)
    raise ValueError(f"{max_id} objects exceed uint32")


def relabel_sequential(labels: np.ndarray) -> np.ndarray:
    """Map the ids of ``labels`` to 1..n in increasing order, 0 staying 0.

    Returns ``labels`` itself when its ids already are 1..n.

    >>> relabel_sequential(np.array([[0, 7], [7, 3]])).tolist()
    [[0, 2], [2, 1]]
    """
    top = int(labels.max(initial=0))
    if top < 2 * labels.size:  # one counting pass; no sort
        present = np.bincount(labels.reshape(-1), minlength=top + 1) > 0
        present[0] = False
        ids = np.flatnonzero(present)
    else:
        ids = np.unique(labels)
        ids = ids[ids != 0]
    if ids.size == 0 or ids[-1] == ids.size:
        return labels
    dtype = labels_dtype(ids.size)
    if ids[-1] < 2 * labels.size:
        lut = np.zeros(int(ids[-1]) + 1, dtype=dtype)
        lut[ids] = np.arange(1, ids.size + 1)
        return lut[labels]
    out = np.searchsorted(ids, labels).astype(dtype) + 1
    out[labels == 0] = 0
    return out


def check_labels(labels: np.ndarray) -> np.ndarray:
    """An output label image: 2D or 3D, integers, no negative id.

    Raises
    ------
    ValueError
    """
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ValueError(f"labels must be 2D or 3D, got shape {labels.shape}")
    if labels.dtype.kind not in "biu":
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got ids down to {labels.min()}")
    return labels


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
        if not np.isfinite(data).all():
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
    check_id_range(lo, hi, path, what=what)
    dtype = labels_dtype(int(hi))
    if data.dtype.kind == "u" and data.dtype.itemsize <= dtype.itemsize:
        return data
    return data.astype(dtype)


def check_id_range(lo, hi, path, *, what: str = "mask") -> None:
    """Ids between ``lo`` and ``hi`` are labels: none negative, none beyond 2**32 - 1.

    Raises
    ------
    InputError
        One line naming ``path`` and ``what``.
    """
    if lo < 0:
        raise InputError(f"{path}: {what} holds negative labels (min {_number(lo)}), "
                         "expected ids >= 0")
    if float(hi) > UINT32_MAX:
        raise InputError(f"{path}: {what} holds ids up to {_number(hi)}, expected ids <= "
                         f"{UINT32_MAX}")


def _number(value) -> str:
    """An id as the user would write it: whole numbers in full (4294967301, not 4.29497e+09)."""
    value = value.item() if hasattr(value, "item") else value
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def as_lazy_labels(data, path, *, what: str = "mask"):
    """:func:`as_labels` for a dask array: checked and cast block by block.

    Nothing is read now: unsigned data of at most 32 bits pass through as
    they are; signed or 64-bit data are checked (:func:`check_id_range`) as
    each block is computed, raising :class:`.errors.InputError` then, and cast
    to the unsigned dtype of their size (uint32 for 64 bits). Floats are
    refused at once (checking them would read everything).

    Parameters
    ----------
    data : dask.array.Array of bool or int, any shape
    path : path or str
        Named in the error message.
    what : str
        What ``data`` is, for the error message.

    Returns
    -------
    dask.array.Array of uint8, uint16 or uint32, shape ``data.shape``, same chunks
    """
    kind, size = data.dtype.kind, data.dtype.itemsize
    if kind == "b":
        return data.astype(np.uint8)
    if kind not in "iu":
        raise InputError(f"{path}: {what} has dtype {data.dtype}, expected integer labels")
    if kind == "u" and size <= 4:
        return data
    dtype = np.dtype(f"u{min(size, 4)}")
    return data.map_blocks(_checked_block, dtype=dtype, path=str(path), what=what, target=dtype)


def _checked_block(block: np.ndarray, *, path: str, what: str, target: np.dtype) -> np.ndarray:
    if block.size:
        check_id_range(block.min(), block.max(), path, what=what)
    return block.astype(target)


def _first_fraction(data: np.ndarray) -> str:
    flat = data.reshape(-1)
    i = np.flatnonzero(flat != np.floor(flat))[0]
    return f"{flat[i]:g}"
