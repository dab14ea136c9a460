"""The overlap table's kernel: runs of two label images tallied per pair, compiled by numba.

Along a row (the last axis) the pair of labels ``(a, b)`` is constant over runs. One pass
per row finds the runs (branch-free), and each run is tallied into an open-addressing hash
table keyed by ``a << 32 | b``: its voxels summed, its box (z, y, x starts and stops)
widened. The same table joins tallies (entries of blocks, threads, or one side's ids), so
there is one home for the reduction. The compiled loops release the GIL: threads scan in
parallel, beside zarr's decompression.

Imported on first use (numba takes a fraction of a second to import); the machine code is
cached on disk by numba (``cache=True``), so a process pays the compilation once per
dtype pair, ever.

No Qt, no napari.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["Tally"]

#: Fibonacci hashing: the top bits of ``key * _MULT`` are a good slot for any key.
_MULT = np.uint64(0x9E3779B97F4A7C15)

#: Entries a new tally has room for; it doubles as needed.
_CAPACITY = 1 << 12


@njit(nogil=True, cache=True)
def _slot(key, slots, keys, shift):
    """The slot of ``key`` in ``slots``: where it is, or the empty one where it goes.

    ``slots`` has ``2 ** (64 - shift)`` slots, each -1 or the index of its key in ``keys``.
    """
    mask = slots.size - 1
    s = np.int64((key * _MULT) >> np.uint64(shift))
    while True:
        e = slots[s]
        if e < 0 or keys[e] == key:
            return s
        s = (s + 1) & mask


@njit(nogil=True, cache=True)
def _rehash(keys, m, slots, shift):
    """Fill the empty ``slots`` with the first ``m`` keys."""
    for e in range(m):
        slots[_slot(keys[e], slots, keys, shift)] = e


@njit(nogil=True, cache=True)
def _tally_runs(a, b, row_len, ny, row0, first_row, slots, shift, keys, counts, box, m):
    """Tally the runs of rows ``first_row``.. of flat ``a``, ``b`` until the table may overflow.

    Returns ``(m, row)``: the entries now used and the first row not tallied (all rows
    when it equals ``a.size // row_len``). A row is tallied only when the table has room
    for ``row_len`` new entries, the most one row can add, so a stop never splits a row.
    """
    cap = keys.size
    changed = np.empty(row_len, np.uint8)
    starts = np.empty(row_len + 1, np.int64)
    n_rows = a.size // row_len
    z = (row0 + first_row) // ny
    y = (row0 + first_row) - z * ny
    for r in range(first_row, n_rows):
        if m + row_len > cap:
            return m, r
        ra = a[r * row_len:(r + 1) * row_len]
        rb = b[r * row_len:(r + 1) * row_len]
        for x in range(1, row_len):  # vectorised: where a or b changes
            changed[x] = (ra[x] != ra[x - 1]) | (rb[x] != rb[x - 1])
        starts[0] = 0
        n = 1
        for x in range(1, row_len):  # branch-free: the runs' starts
            starts[n] = x
            n += changed[x]
        starts[n] = row_len
        for i in range(n):
            x = starts[i]
            ka = ra[x]
            kb = rb[x]
            if ka == 0 and kb == 0:
                continue
            x1 = starts[i + 1]
            key = (np.uint64(ka) << np.uint64(32)) | np.uint64(kb)
            s = _slot(key, slots, keys, shift)
            e = slots[s]
            if e < 0:
                e = m
                m += 1
                slots[s] = e
                keys[e] = key
                counts[e] = x1 - x
                box[0, e], box[1, e], box[2, e] = z, y, x
                box[3, e], box[4, e], box[5, e] = z + 1, y + 1, x1
            else:
                counts[e] += x1 - x
                box[0, e] = min(box[0, e], z)  # rows come in order within a call, not across
                box[3, e] = max(box[3, e], z + 1)
                box[1, e] = min(box[1, e], y)
                box[4, e] = max(box[4, e], y + 1)
                box[2, e] = min(box[2, e], x)
                box[5, e] = max(box[5, e], x1)
        y += 1
        if y == ny:
            y = 0
            z += 1
    return m, n_rows


@njit(nogil=True, cache=True)
def _tally_entries(in_keys, in_counts, in_box, first, slots, shift, keys, counts, box, m):
    """Tally entries ``first``.. (keys, voxels, boxes) until the table is full.

    Returns ``(m, i)``: the entries now used and the first entry not tallied.
    """
    cap = keys.size
    for i in range(first, in_keys.size):
        key = in_keys[i]
        s = _slot(key, slots, keys, shift)
        e = slots[s]
        if e < 0:
            if m == cap:
                return m, i
            e = m
            m += 1
            slots[s] = e
            keys[e] = key
            counts[e] = in_counts[i]
            for k in range(6):
                box[k, e] = in_box[k, i]
        else:
            counts[e] += in_counts[i]
            for k in range(3):
                box[k, e] = min(box[k, e], in_box[k, i])
                box[3 + k, e] = max(box[3 + k, e], in_box[3 + k, i])
    return m, in_keys.size


class Tally:
    """Voxels and box per key, tallied from the runs of label images or from entries.

    Keys are ``id_a << 32 | id_b`` (one side 0 included, never both) or one side's ids.
    Boxes are always 3D: ``(z0, y0, x0, z1, y1, x1)``, stops exclusive; a 2D image is one
    plane (z = 0). The table starts small and doubles as needed.

    Examples
    --------
    >>> t = Tally()
    >>> t.add_rows(np.array([1, 1, 0, 0, 2, 2]), np.array([5, 5, 5, 0, 0, 5]), row_len=3)
    >>> keys, counts, box = t.entries()
    >>> [(int(k >> 32), int(k & 0xFFFFFFFF)) for k in keys], counts.tolist()
    ([(0, 5), (1, 5), (2, 0), (2, 5)], [1, 2, 1, 1])
    """

    def __init__(self, capacity: int = _CAPACITY):
        self._m = 0
        self._allocate(1 << max(int(capacity) - 1, 0).bit_length())  # a power of 2

    def _allocate(self, capacity: int) -> None:
        """Room for ``capacity`` entries (a power of 2), the entries so far kept."""
        m, old = self._m, getattr(self, "_arrays", None)
        self._arrays = (np.empty(capacity, dtype=np.uint64),  # keys
                        np.empty(capacity, dtype=np.int64),  # counts
                        np.empty((6, capacity), dtype=np.int32))  # boxes
        self._keys, self._counts, self._box = self._arrays
        self._slots = np.full(2 * capacity, -1, dtype=np.int32)  # load at most 1/2
        self._shift = 64 - (2 * capacity).bit_length() + 1
        if m:
            for new, kept in zip(self._arrays, old):
                new[..., :m] = kept[..., :m]
            _rehash(self._keys, m, self._slots, self._shift)

    def _grow(self, need: int) -> None:
        capacity = len(self._keys)
        while capacity < need:
            capacity *= 2
        self._allocate(capacity)

    def __len__(self) -> int:
        return self._m

    def add_rows(self, a: np.ndarray, b: np.ndarray, *, row_len: int, ny: int | None = None,
                 row0: int = 0) -> None:
        """Tally the runs of flat label images.

        Parameters
        ----------
        a, b : ndarray of non-negative int, shape (n_rows * row_len,)
            Contiguous rows of both images; ids below 2**32.
        row_len : int
            Voxels per row (the last axis).
        ny : int, optional
            Rows per plane (the y axis of a 3D image); by default all rows are one plane.
        row0 : int
            Index of the first row in the image: rows ``row0..`` of planes of ``ny`` rows.
        """
        a, b = _unsigned(a), _unsigned(b)
        if a.size == 0:
            return
        n_rows = a.size // row_len
        ny = ny or max(n_rows + row0, 1)
        row = 0
        while True:
            self._m, row = _tally_runs(a, b, row_len, ny, row0, row, self._slots, self._shift,
                                       self._keys, self._counts, self._box, self._m)
            if row == n_rows:
                return
            self._grow(self._m + row_len)

    def add_entries(self, keys: np.ndarray, counts: np.ndarray, box: np.ndarray) -> None:
        """Tally entries: voxels summed and boxes joined per key.

        Parameters
        ----------
        keys : ndarray of uint64, shape (n,)
        counts : ndarray of int64, shape (n,)
        box : ndarray of int32, shape (6, n)
        """
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        counts = np.ascontiguousarray(counts, dtype=np.int64)
        box = np.ascontiguousarray(box, dtype=np.int32)
        done = 0
        while True:
            self._m, done = _tally_entries(keys, counts, box, done, self._slots, self._shift,
                                           self._keys, self._counts, self._box, self._m)
            if done == len(keys):
                return
            self._grow(self._m + len(keys) - done)

    def entries(self, *, sort: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The tally, one entry per key (sorted by key unless ``sort=False``).

        Returns
        -------
        keys : ndarray of uint64, shape (m,)
        counts : ndarray of int64, shape (m,)
        box : ndarray of int32, shape (6, m)
        """
        m = self._m
        keys, counts, box = self._keys[:m], self._counts[:m], self._box[:, :m]
        if not sort:
            return keys.copy(), counts.copy(), box.copy()
        order = np.argsort(keys)
        return keys[order], counts[order], box[:, order]


def _unsigned(x: np.ndarray) -> np.ndarray:
    """``x`` flat and contiguous, viewed as the unsigned integers of its width (ids are >= 0)."""
    x = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("=")).reshape(-1)
    return x.view(f"u{x.dtype.itemsize}") if x.dtype.kind in "bi" else x
