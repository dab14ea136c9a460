"""Sparse overlap table of two label images and the review groups built on it.

The table is built in one pass over the volume, rows shared by a few threads
(or blocks by dask tasks): along each row (last axis) the pair of labels
(a, b) is constant over runs, and each run is tallied into a hash table keyed
by ``a << 32 | b`` (:mod:`._tally`, compiled by numba, the GIL released):
one entry per pair (a, b) with one side 0 included, holding its voxels and
box. Tallies of threads or blocks are joined by the same hash table, and each
object's size and box are those of its entries. There is no dense n x m
matrix, no sort of voxels and no loop over objects in Python; ids may be as
large as 2**32 - 1.

No Qt, no napari.
"""

from __future__ import annotations

import gc
import math
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from . import engine
from ._arrays import as_dask, is_lazy

__all__ = [
    "KINDS",
    "Group",
    "OverlapTable",
    "blockwise_table",
    "overlap_table",
    "review_groups",
]

#: Review group kinds, in the order they are listed to users.
KINDS = ("match", "split", "merge", "complex", "only_a", "only_b")

#: Most threads that scan an image in memory, and the fewest voxels worth a thread.
_MAX_THREADS = 8
_VOXELS_PER_THREAD = 1 << 20

#: Blockwise: storage chunks smaller than this many voxels are scanned several at once, and
#: chunks larger than _MAX_BLOCK_VOXELS in parts; blocks are then of about _BLOCK_VOXELS
#: (16 MiB of uint32 per side: per-task overhead is small, and so is memory per task in flight).
_MIN_BLOCK_VOXELS = 1 << 20
_MAX_BLOCK_VOXELS = 1 << 24
_BLOCK_VOXELS = 1 << 22

#: Blockwise: partial tables joined by one task of the reduction tree.
_SPLIT_EVERY = 8

#: Rows of a 3D box ``(z0, y0, x0, z1, y1, x1)`` that are an ndim-D box.
_BOX_ROWS = {2: [1, 2, 4, 5], 3: slice(None)}


@dataclass(frozen=True, eq=False)
class OverlapTable:
    """Who overlaps whom, by how much, and where each object is.

    Objects are indexed 0..n-1 in increasing id order on each side.

    Attributes
    ----------
    shape : tuple of int
        Shape of the label images.
    ids_a, ids_b : ndarray of uint64, shape (n_a,), (n_b,)
        Sorted non-zero ids present in A and in B.
    sizes_a, sizes_b : ndarray of int64, shape (n_a,), (n_b,)
        Voxel count per object.
    bbox_a, bbox_b : ndarray of int64, shape (n_a, 2 * ndim), (n_b, 2 * ndim)
        Per object ``(min_0, ..., min_{d-1}, stop_0, ..., stop_{d-1})``,
        stops exclusive (slice convention).
    pair_a, pair_b : ndarray of int64, shape (n_pairs,)
        Object indices of each overlapping pair, sorted by (pair_a, pair_b).
    intersection : ndarray of int64, shape (n_pairs,)
        Voxels shared by each pair.
    """

    shape: tuple[int, ...]
    ids_a: np.ndarray
    ids_b: np.ndarray
    sizes_a: np.ndarray
    sizes_b: np.ndarray
    bbox_a: np.ndarray
    bbox_b: np.ndarray
    pair_a: np.ndarray
    pair_b: np.ndarray
    intersection: np.ndarray

    @property
    def n_a(self) -> int:
        return len(self.ids_a)

    @property
    def n_b(self) -> int:
        return len(self.ids_b)

    @cached_property
    def iou(self) -> np.ndarray:
        """Intersection over union of each pair, float64, shape (n_pairs,)."""
        union = self.sizes_a[self.pair_a] + self.sizes_b[self.pair_b] - self.intersection
        return self.intersection / np.maximum(union, 1)

    def index_a(self, ids) -> np.ndarray:
        """Object indices of A ids (which must be present)."""
        return np.searchsorted(self.ids_a, np.asarray(ids, dtype=np.uint64))

    def index_b(self, ids) -> np.ndarray:
        """Object indices of B ids (which must be present)."""
        return np.searchsorted(self.ids_b, np.asarray(ids, dtype=np.uint64))


@dataclass(frozen=True)
class Group:
    """One case to review: a connected set of A and B objects.

    Attributes
    ----------
    index : int
        Position in the list returned by :func:`review_groups` (stable for
        given inputs and threshold; the journal refers to it).
    kind : str
        One of :data:`KINDS`.
    ids_a, ids_b : tuple of int
        Object ids, increasing.
    sizes_a, sizes_b : tuple of int
        Voxel counts, in the order of the ids.
    pairs : tuple of (int, int, float)
        ``(id_a, id_b, iou)`` of the pairs with IoU >= threshold that link
        the group.
    bbox : tuple of int
        ``(min_0, ..., min_{d-1}, stop_0, ..., stop_{d-1})`` of all members.
    """

    index: int
    kind: str
    ids_a: tuple[int, ...]
    ids_b: tuple[int, ...]
    sizes_a: tuple[int, ...]
    sizes_b: tuple[int, ...]
    pairs: tuple[tuple[int, int, float], ...]
    bbox: tuple[int, ...]

    @property
    def paired(self) -> bool:
        """False for objects that only one mask has."""
        return self.kind not in ("only_a", "only_b")

    @property
    def iou(self) -> float:
        """Best IoU of the group's pairs (0 when unpaired)."""
        return max((p[2] for p in self.pairs), default=0.0)

    @property
    def min_iou(self) -> float:
        """Worst IoU of the group's pairs (0 when unpaired)."""
        return min((p[2] for p in self.pairs), default=0.0)

    @property
    def region(self) -> tuple[slice, ...]:
        """Slices of the bounding box."""
        ndim = len(self.bbox) // 2
        return tuple(map(slice, self.bbox[:ndim], self.bbox[ndim:]))

    def slices(self, *, margin: int = 0, shape: tuple[int, ...] | None = None) -> tuple:
        """Slices of the bounding box, grown by ``margin`` and clipped to ``shape``."""
        ndim = len(self.bbox) // 2
        lo = [max(v - margin, 0) for v in self.bbox[:ndim]]
        hi = [v + margin for v in self.bbox[ndim:]]
        if shape is not None:
            hi = [min(h, s) for h, s in zip(hi, shape)]
        return tuple(slice(lo_, hi_) for lo_, hi_ in zip(lo, hi))


# --------------------------------------------------------------------------- overlap table


def overlap_table(a: np.ndarray, b: np.ndarray) -> OverlapTable:
    """Sizes, bounding boxes and pairwise intersections of two label images.

    Arrays in memory are scanned here by a few threads. Chunked arrays (dask
    arrays, or anything else with ``.chunks`` such as zarr arrays) are scanned
    block by block on the current :mod:`~napari_mask_compare.engine` (local
    threads, or a dask.distributed cluster), blocks aligned with the chunks
    of ``a``; the result is the same table, and memory is bounded by the
    blocks in flight, not by the volume. See :func:`blockwise_table`.

    Parameters
    ----------
    a, b : ndarray or chunked array of non-negative int, same shape (y, x) or (z, y, x)
        0 is background; ids below 2**32; every axis shorter than 2**31.

    Returns
    -------
    OverlapTable

    Examples
    --------
    >>> a = np.array([[1, 1, 0], [0, 2, 2]])
    >>> b = np.array([[5, 5, 5], [0, 0, 5]])
    >>> t = overlap_table(a, b)
    >>> t.ids_a.tolist(), t.sizes_a.tolist(), t.intersection.tolist()
    ([1, 2], [2, 2], [2, 1])
    """
    if is_lazy(a) or is_lazy(b):
        return engine.compute(blockwise_table(a, b), desc="overlap table")[0]
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    _check_pair(a, b)
    shares = _row_shares(a.shape)
    with ThreadPoolExecutor(max_workers=len(shares)) as pool:  # the kernel releases the GIL
        tallies = list(pool.map(lambda rows: _tally(a, b, rows=rows), shares))
    first, *others = tallies
    for other in others:
        first.add_entries(*other.entries(sort=False))
    return _table_from_entries(first.entries(sort=False), shape=tuple(a.shape))


def _check_pair(a, b) -> None:
    """ValueError unless ``a`` and ``b`` (arrays or chunked arrays) can be tabled together."""
    if a.shape != b.shape:
        raise ValueError(f"label images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3) or a.size == 0:
        raise ValueError(f"label images must be non-empty 2D or 3D arrays, got shape {a.shape}")
    if max(a.shape) >= 1 << 31:  # entries hold coordinates as int32
        raise ValueError(f"label images must be shorter than 2**31 on every axis, got {a.shape}")
    for name, arr in (("a", a), ("b", b)):
        if arr.dtype.kind not in "biu":
            raise ValueError(f"{name} must hold integer labels, got dtype {arr.dtype}")


def _table_from_entries(entries, *, shape: tuple[int, ...]) -> OverlapTable:
    """The table of a whole image's entries (one per key, any order; see :func:`_tally`)."""
    keys, counts, box = entries
    entry_a, entry_b = keys >> np.uint64(32), keys & np.uint64(0xFFFFFFFF)
    ids_a, sizes_a, bbox_a = _objects(entry_a, counts, box, ndim=len(shape))
    ids_b, sizes_b, bbox_b = _objects(entry_b, counts, box, ndim=len(shape))
    pairs = np.flatnonzero((entry_a != 0) & (entry_b != 0))
    pairs = pairs[np.argsort(keys[pairs])]  # sorted by (a, b)
    return OverlapTable(
        shape=shape,
        ids_a=ids_a, ids_b=ids_b,
        sizes_a=sizes_a, sizes_b=sizes_b,
        bbox_a=bbox_a, bbox_b=bbox_b,
        pair_a=np.searchsorted(ids_a, entry_a[pairs]),
        pair_b=np.searchsorted(ids_b, entry_b[pairs]),
        intersection=counts[pairs],
    )


def _objects(ids, counts, box, *, ndim: int):
    """Ids, sizes and boxes of one side's objects from the entries ``(id, any)``, joined per id.

    Parameters
    ----------
    ids : ndarray of uint64, shape (n,)
        One side's id of each entry (0: the entry is the other side's alone).
    counts : ndarray of int64, shape (n,)
    box : ndarray of int32, shape (6, n)
        3D boxes (z = 0 for a 2D image).
    ndim : int
        Of the image.

    Returns
    -------
    ids : ndarray of uint64, shape (m,)
        Sorted.
    sizes : ndarray of int64, shape (m,)
    bbox : ndarray of int64, shape (m, 2 * ndim)
    """
    from ._tally import Tally

    keep = ids != 0
    tally = Tally(np.count_nonzero(keep))
    tally.add_entries(ids[keep], counts[keep], box[:, keep])
    ids, sizes, box = tally.entries()
    return ids, sizes, np.ascontiguousarray(box[_BOX_ROWS[ndim]].T, dtype=np.int64)


def _row_shares(shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """Rows ``(start, stop)`` (of the image seen as rows of its last axis) per scanning thread."""
    n_rows = math.prod(shape[:-1])
    n = min(os.cpu_count() or 1, _MAX_THREADS, max(1, math.prod(shape) // _VOXELS_PER_THREAD))
    bounds = np.linspace(0, n_rows, n + 1).astype(int)
    return [(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]


def _tally(a: np.ndarray, b: np.ndarray, *, rows: tuple[int, int] | None = None):
    """The :class:`~._tally.Tally` of the runs of some rows of two C-contiguous images.

    Parameters
    ----------
    a, b : ndarray, shape (y, x) or (z, y, x), C-contiguous
    rows : (start, stop), optional
        Rows of the image seen as ``(z * y, x)`` (all by default).
    """
    from ._tally import Tally

    row_len = a.shape[-1]
    start, stop = rows or (0, math.prod(a.shape[:-1]))  # a dask block may have no voxels
    flat = slice(start * row_len, stop * row_len)
    tally = Tally()
    tally.add_rows(a.reshape(-1)[flat], b.reshape(-1)[flat], row_len=row_len, ny=a.shape[-2],
                   row0=start)
    return tally


# --------------------------------------------------------------------------- blockwise


def blockwise_table(a, b, *, split_every: int = _SPLIT_EVERY):
    """The overlap table of chunked label images, as a lazy dask computation.

    A reduction over a partition of the volume, with no halo: each block
    (aligned with the chunks of ``a``) gives its reduced entries with the
    in-memory kernel, its boxes moved by the block's origin; a tree of
    reduce tasks (``split_every`` partial tables at a time, joined in the
    kernel's hash table) joins them, and the last task builds the
    :class:`OverlapTable`, equal in every field to
    ``overlap_table(numpy a, numpy b)``. Each block task reads its
    own chunks (lazily opened stores are read on the workers); memory is a
    few blocks per worker, not the volume.

    Parameters
    ----------
    a, b : dask array, chunked array (``.chunks``, e.g. zarr) or ndarray, same shape
        (y, x) or (z, y, x); at least one chunked. Non-negative integer labels
        below 2**32. ``b`` is rechunked to the blocks of ``a`` when their chunks
        differ. Chunks of fewer than 2**20 voxels are scanned several at a
        time and chunks of more than 2**24 in parts (blocks of about 2**22
        voxels, by multiples or divisors of the storage chunks).
    split_every : int >= 2
        Partial tables joined per task of the reduction tree.

    Returns
    -------
    dask.delayed.Delayed
        Computes to the :class:`OverlapTable`; run it with
        :func:`napari_mask_compare.engine.compute`.

    Examples
    --------
    >>> import dask.array as da
    >>> a = da.from_array(np.array([[1, 1, 0], [0, 2, 2]]), chunks=1)
    >>> b = da.from_array(np.array([[5, 5, 5], [0, 0, 5]]), chunks=2)
    >>> t = blockwise_table(a, b).compute(scheduler="synchronous")
    >>> t.ids_a.tolist(), t.sizes_a.tolist(), t.intersection.tolist(), t.bbox_b.tolist()
    ([1, 2], [2, 2], [2, 1], [[0, 0, 2, 3]])
    """
    import dask

    if isinstance(split_every, bool) or not isinstance(split_every, int) or split_every < 2:
        raise ValueError(f"split_every must be an integer >= 2, got {split_every!r}")
    a, b = _aligned_blocks(a, b)
    level = _block_parts(a, b)
    join = dask.delayed(_join_entries, pure=True)
    while True:  # at least one join: it unwraps the blocks' object arrays
        level = [join(*level[i:i + split_every]) for i in range(0, len(level), split_every)]
        if len(level) == 1:
            break
    return dask.delayed(_table_from_entries, pure=True)(level[0], shape=tuple(a.shape))


def _aligned_blocks(a, b):
    """``a`` and ``b`` as checked dask arrays with the same blocks (storage-aligned to ``a``).

    Returns
    -------
    a, b : dask array, same shape and chunks
    """
    import dask.array as da

    if not is_lazy(a):  # an array in memory beside a chunked one: cut like the other
        b = _as_dask(b)
        a = da.from_array(np.asarray(a), chunks=b.chunks if np.shape(a) == b.shape else "auto")
    a = _as_dask(a)
    b = _as_dask(b) if is_lazy(b) else da.from_array(
        np.asarray(b), chunks=a.chunks if np.shape(b) == a.shape else "auto")
    _check_pair(a, b)
    blocks = _block_chunks(a)
    return a.rechunk(blocks), b.rechunk(blocks)  # no-ops when the chunks are already these


def _as_dask(x):
    """A dask array of a chunked array, cut along its own chunks, of known shape."""
    x = as_dask(x)
    if any(math.isnan(n) for n in x.shape):
        raise ValueError("label images must have known chunk sizes: call compute_chunk_sizes()")
    return x


def _block_chunks(x) -> tuple[tuple[int, ...], ...]:
    """Chunks of the blocks: those of ``x``, unless its blocks are far too small or too large."""
    from dask.array.core import normalize_chunks

    if _MIN_BLOCK_VOXELS <= math.prod(x.chunksize) <= _MAX_BLOCK_VOXELS:
        return x.chunks
    return normalize_chunks("auto", x.shape, limit=_BLOCK_VOXELS * x.dtype.itemsize,
                            dtype=x.dtype, previous_chunks=x.chunksize)


def _block_parts(a, b) -> list:
    """One Delayed per block, of a 1-voxel object array holding the block's reduced entries."""
    import dask.array as da

    parts = da.map_blocks(
        _block_entries, a, b, dtype=object, chunks=tuple((1,) * len(c) for c in a.chunks),
        meta=np.empty((0,) * a.ndim, dtype=object),
    )
    return parts.to_delayed().ravel().tolist()  # reading a block is fused into its task


def _block_entries(a, b, block_info=None):
    """Entries of one block (see :func:`_tally`), boxes in whole-image coordinates.

    Parameters
    ----------
    a, b : ndarray, same shape (block)
    block_info : dict
        From :func:`dask.array.map_blocks`: where the block lies in the image.

    Returns
    -------
    ndarray of object, shape (1,) * ndim
        Holding ``(keys, counts, box)``: uint64 (m,), int64 (m,), int32 (6, m), 3D boxes.
    """
    origin = [start for start, _ in block_info[0]["array-location"]]
    origin = np.array([0] * (3 - a.ndim) + origin, dtype=np.int32)[:, None]
    keys, counts, box = _tally(np.ascontiguousarray(a), np.ascontiguousarray(b)).entries(
        sort=False)
    box[:3] += origin
    box[3:] += origin
    part = np.empty((1,) * a.ndim, dtype=object)
    part[(0,) * a.ndim] = (keys, counts, box)
    return part


def _join_entries(*parts):
    """Entries of several parts (blocks' object arrays, or joined entries) as one, any order."""
    from ._tally import Tally

    parts = [part.item() if isinstance(part, np.ndarray) else part for part in parts]
    tally = Tally(sum(len(keys) for keys, _, _ in parts))
    for entries in parts:
        tally.add_entries(*entries)
    return tally.entries(sort=False)


# --------------------------------------------------------------------------- review groups


def review_groups(table: OverlapTable, *, iou_threshold: float = 0.1) -> list[Group]:
    """Connected components of the pairs with IoU >= ``iou_threshold``.

    Every object of A and of B belongs to exactly one group. Groups are
    listed in spatial order (by the start of their bounding box), which is
    also their ``index``.

    Parameters
    ----------
    table : OverlapTable
    iou_threshold : float in (0, 1]
        Pairs below it do not link objects; 0.1 as in the original tool.

    Returns
    -------
    list of Group

    Examples
    --------
    >>> a = np.array([[1, 1, 1, 1, 0, 2]])
    >>> b = np.array([[3, 3, 4, 4, 0, 0]])
    >>> [(g.kind, g.ids_a, g.ids_b) for g in review_groups(overlap_table(a, b))]
    [('split', (1,), (3, 4)), ('only_a', (2,), ())]
    """
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    n_a, n_b = table.n_a, table.n_b
    linked = table.iou >= iou_threshold
    pa, pb, piou = table.pair_a[linked], table.pair_b[linked], table.iou[linked]
    graph = sparse.coo_matrix(
        (np.ones(len(pa), dtype=np.int8), (pa, pb + n_a)), shape=(n_a + n_b, n_a + n_b)
    )
    n_groups, component = connected_components(graph, directed=False)
    ndim = len(table.shape)
    boxes = np.concatenate([table.bbox_a, table.bbox_b]).reshape(-1, 2 * ndim)
    by_component = np.argsort(component, kind="stable")  # every group has a node
    starts = np.searchsorted(component[by_component], np.arange(n_groups))
    boxes = boxes[by_component]
    lo = np.minimum.reduceat(boxes[:, :ndim], starts, axis=0)
    hi = np.maximum.reduceat(boxes[:, ndim:], starts, axis=0)
    spatial = np.lexsort(lo.T[::-1])
    rank = np.empty(n_groups, dtype=np.int64)
    rank[spatial] = np.arange(n_groups)

    # members (A before B) and linking pairs of each group, as Python lists sliced per group;
    # hundreds of thousands of small lists and tuples: no cyclic GC passes over them (a pass
    # over a napari process's heap holds the GIL, and so the GUI, for tens of milliseconds)
    with _gc_paused():
        return _groups(table, component, rank, pa, pb, piou, lo=lo, hi=hi, spatial=spatial)


def _groups(table, component, rank, pa, pb, piou, *, lo, hi, spatial) -> list[Group]:
    """The :class:`Group` list of :func:`review_groups` from its components (ranked spatially)."""
    n_a, n_groups = table.n_a, len(spatial)
    group_of_node = rank[component]
    nodes = np.argsort(group_of_node, kind="stable")
    node_bounds = np.searchsorted(group_of_node[nodes], np.arange(n_groups + 1))
    in_a = np.bincount(group_of_node[:n_a], minlength=n_groups)  # nodes 0..n_a-1 are A's
    in_b = np.diff(node_bounds) - in_a
    node_ids = _as_list(np.concatenate([table.ids_a, table.ids_b])[nodes])
    node_sizes = _as_list(np.concatenate([table.sizes_a, table.sizes_b])[nodes])
    group_of_pair = rank[component[pa]]
    by_group = np.argsort(group_of_pair, kind="stable")
    pair_bounds = _as_list(np.searchsorted(group_of_pair[by_group], np.arange(n_groups + 1)))
    pairs = list(zip(_as_list(table.ids_a[pa[by_group]]), _as_list(table.ids_b[pb[by_group]]),
                     _as_list(piou[by_group])))
    boxes = _as_list(np.concatenate([lo, hi], axis=1)[spatial])
    return [
        Group(index=g, kind=kind,
              ids_a=tuple(node_ids[start:split]), ids_b=tuple(node_ids[split:stop]),
              sizes_a=tuple(node_sizes[start:split]), sizes_b=tuple(node_sizes[split:stop]),
              pairs=tuple(pairs[pair_start:pair_stop]), bbox=tuple(box))
        for g, (kind, start, split, stop, pair_start, pair_stop, box) in enumerate(zip(
            _kinds(in_a, in_b), _as_list(node_bounds[:-1]), _as_list(node_bounds[:-1] + in_a),
            _as_list(node_bounds[1:]), pair_bounds[:-1], pair_bounds[1:], boxes,
        ))
    ]


def _as_list(array: np.ndarray, *, rows: int = 1 << 13) -> list:
    """``array.tolist()`` a slice at a time.

    One ``tolist`` of hundreds of thousands of rows holds the GIL for a
    good part of a second; slice by slice, a GUI thread (the review opens in
    a worker) runs in between.
    """
    out = []
    for start in range(0, len(array), rows):
        out.extend(array[start:start + rows].tolist())
    return out


def _kinds(n_a: np.ndarray, n_b: np.ndarray) -> list[str]:
    """Kind of each group from its numbers of A and B objects."""
    kind = np.select(
        [n_b == 0, n_a == 0, (n_a == 1) & (n_b == 1), n_a == 1, n_b == 1],
        [KINDS.index(k) for k in ("only_a", "only_b", "match", "split", "merge")],
        default=KINDS.index("complex"),
    )
    return [KINDS[k] for k in _as_list(kind)]


@contextmanager
def _gc_paused():
    """No cyclic garbage collection inside; process-wide, so for short bulk work only.

    Collection is turned back on at exit if it was on at entry.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
