"""Sparse overlap table of two label images and the review groups built on it.

The table is built in one pass over the volume, row by row: along each row
(last axis) the pair of labels (a, b) is constant over runs, so the volume
reduces to a few runs per object and row. Sizes, bounding boxes and pairwise
intersections are sums and extremes over runs. There is no dense n x m matrix
and no loop over objects; ids may be as large as 2**32 - 1.

No Qt, no napari.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

__all__ = [
    "KINDS",
    "Group",
    "OverlapTable",
    "overlap_table",
    "review_groups",
]

#: Review group kinds, in the order they are listed to users.
KINDS = ("match", "split", "merge", "complex", "only_a", "only_b")

#: Voxels handled at once while scanning (bounds the scan's temporary memory).
_CHUNK_VOXELS = 1 << 22


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

    Parameters
    ----------
    a, b : ndarray of non-negative int, same shape (y, x) or (z, y, x)
        0 is background.

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
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"label images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3) or a.size == 0:
        raise ValueError(f"label images must be non-empty 2D or 3D arrays, got shape {a.shape}")
    for name, arr in (("a", a), ("b", b)):
        if arr.dtype.kind not in "biu":
            raise ValueError(f"{name} must hold integer labels, got dtype {arr.dtype}")
    row_len = a.shape[-1]
    flat_a = np.ascontiguousarray(a).reshape(-1)
    flat_b = np.ascontiguousarray(b).reshape(-1)
    chunk = max(1, _CHUNK_VOXELS // row_len) * row_len
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        partials = list(pool.map(
            lambda lo: _chunk_table(flat_a[lo:lo + chunk], flat_b[lo:lo + chunk],
                                    offset=lo, shape=a.shape),
            range(0, flat_a.size, chunk),
        ))
    objects_a, objects_b, pairs = (_concat(p) for p in zip(*partials))
    ids_a, sizes_a, bbox_a = _reduce_objects(*objects_a)
    ids_b, sizes_b, bbox_b = _reduce_objects(*objects_b)
    pair_ids_a, pair_ids_b, intersection = _reduce_pairs(*pairs)
    return OverlapTable(
        shape=tuple(a.shape),
        ids_a=ids_a, ids_b=ids_b,
        sizes_a=sizes_a, sizes_b=sizes_b,
        bbox_a=bbox_a, bbox_b=bbox_b,
        pair_a=np.searchsorted(ids_a, pair_ids_a),
        pair_b=np.searchsorted(ids_b, pair_ids_b),
        intersection=intersection,
    )


def _concat(parts):
    return tuple(np.concatenate(column) for column in zip(*parts))


def _chunk_table(a, b, *, offset: int, shape: tuple[int, ...]):
    """Partial overlap table of a chunk of whole rows.

    Parameters
    ----------
    a, b : ndarray, shape (n,)
        Flat labels of consecutive whole rows.
    offset : int
        Flat index of the chunk's first voxel.

    Returns
    -------
    objects_a, objects_b : tuple (ids, sizes, lo, hi)
        Per id present in the chunk: its voxel count and box in the chunk.
    pairs : tuple (ids_a, ids_b, intersection)
    """
    row_len = shape[-1]
    new_a = _run_starts(a, row_len)
    new_b = _run_starts(b, row_len)
    starts = np.flatnonzero(new_a | new_b)
    lengths = _run_lengths(starts, a.size)
    labels_a, labels_b = a[starts], b[starts]
    both = np.flatnonzero((labels_a != 0) & (labels_b != 0))
    return (
        _objects_in_chunk(starts[new_a[starts]], a, offset=offset, shape=shape),
        _objects_in_chunk(starts[new_b[starts]], b, offset=offset, shape=shape),
        _reduce_pairs(labels_a[both], labels_b[both], lengths[both]),
    )


def _run_lengths(starts, size: int) -> np.ndarray:
    """Lengths of runs that start at ``starts`` and tile ``size`` voxels."""
    lengths = np.empty_like(starts)
    np.subtract(starts[1:], starts[:-1], out=lengths[:-1])
    lengths[-1:] = size - starts[-1:]
    return lengths


def _run_starts(labels, row_len: int) -> np.ndarray:
    """Boolean mask of where a run of equal labels starts; every row starts one."""
    new = np.empty(labels.size, dtype=bool)
    np.not_equal(labels[1:], labels[:-1], out=new[1:])
    new.reshape(-1, row_len)[:, 0] = True
    return new


def _objects_in_chunk(starts, labels, *, offset: int, shape: tuple[int, ...]):
    """Per-id voxel counts and boxes from one side's runs in a chunk.

    ``starts`` are where this side's runs start in the flat chunk ``labels``
    (every row starts one).

    Runs come in scan order, so after sorting by (id, run number) the first
    and last run of an id hold its smallest and largest row (hence z in 3D).
    The sort is one ``np.sort`` of ``id << 32 | run number`` (faster than a
    stable argsort).
    """
    lengths = _run_lengths(starts, labels.size)
    ids = labels[starts]
    run = np.flatnonzero(ids)
    packed = np.sort((ids[run].astype(np.uint64) << np.uint64(32)) | run.astype(np.uint64))
    ids = packed >> np.uint64(32)
    order = (packed & np.uint64(0xFFFFFFFF)).astype(np.intp)
    starts = starts[order] + offset
    lengths = lengths[order]
    ndim = len(shape)
    bbox = np.empty((0, 2 * ndim), dtype=np.int64)
    if len(ids) == 0:
        return ids.astype(np.uint64), lengths.astype(np.int64), bbox
    first = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    last = np.r_[first[1:], len(ids)] - 1
    rows, x0 = np.divmod(starts, shape[-1])
    bbox = np.empty((len(first), 2 * ndim), dtype=np.int64)
    if ndim == 2:
        bbox[:, 0], bbox[:, 2] = rows[first], rows[last] + 1
    else:
        planes, y = np.divmod(rows, shape[-2])
        bbox[:, 0], bbox[:, 3] = planes[first], planes[last] + 1
        bbox[:, 1] = np.minimum.reduceat(y, first)
        bbox[:, 4] = np.maximum.reduceat(y, first) + 1
    bbox[:, ndim - 1] = np.minimum.reduceat(x0, first)
    bbox[:, 2 * ndim - 1] = np.maximum.reduceat(x0 + lengths, first)
    return ids[first].astype(np.uint64), np.add.reduceat(lengths, first), bbox


def _reduce_objects(ids, sizes, bbox):
    """Sum sizes and join boxes of entries with equal ids.

    Parameters
    ----------
    ids : ndarray of int, shape (n,)
    sizes : ndarray of int, shape (n,)
    bbox : ndarray of int64, shape (n, 2 * ndim)
        Box starts then stops of each entry.

    Returns
    -------
    ids : ndarray of uint64, shape (m,)
        Unique ids, increasing.
    sizes : ndarray of int64, shape (m,)
    bbox : ndarray of int64, shape (m, 2 * ndim)
    """
    ndim = bbox.shape[1] // 2
    order = np.argsort(ids, kind="stable")
    ids, sizes, bbox = ids[order], sizes[order], bbox[order]
    first = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else order
    if len(ids) == 0:
        return ids.astype(np.uint64), sizes.astype(np.int64), bbox
    return (
        ids[first].astype(np.uint64),
        np.add.reduceat(sizes, first).astype(np.int64),
        np.concatenate(
            [np.minimum.reduceat(bbox[:, :ndim], first),
             np.maximum.reduceat(bbox[:, ndim:], first)],
            axis=1,
        ),
    )


def _reduce_pairs(ids_a, ids_b, counts):
    """Sum the counts of equal (id_a, id_b) pairs; sorted by (id_a, id_b).

    Returns
    -------
    ids_a, ids_b : ndarray of uint64, shape (m,)
    counts : ndarray of int64, shape (m,)
    """
    if len(ids_a) and max(ids_a.max(), ids_b.max()) < 1 << 16 and counts.max() < 1 << 32:
        # one sort of id_a << 48 | id_b << 32 | count, then sums over equal keys
        packed = np.sort((ids_a.astype(np.uint64) << np.uint64(48))
                         | (ids_b.astype(np.uint64) << np.uint64(32))
                         | counts.astype(np.uint64))
        key = packed >> np.uint64(32)
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        sums = np.add.reduceat((packed & np.uint64(0xFFFFFFFF)).astype(np.int64), first)
        return key[first] >> np.uint64(16), key[first] & np.uint64(0xFFFF), sums
    key = (ids_a.astype(np.uint64) << np.uint64(32)) | ids_b.astype(np.uint64)
    keys, inverse = np.unique(key, return_inverse=True)
    counts = np.bincount(inverse.reshape(-1), weights=counts, minlength=len(keys))
    return keys >> np.uint64(32), keys & np.uint64(0xFFFFFFFF), counts.astype(np.int64)


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
    lo = np.full((n_groups, ndim), np.iinfo(np.int64).max, dtype=np.int64)
    hi = np.zeros((n_groups, ndim), dtype=np.int64)
    np.minimum.at(lo, component, boxes[:, :ndim])
    np.maximum.at(hi, component, boxes[:, ndim:])
    spatial = np.lexsort(lo.T[::-1])
    rank = np.empty(n_groups, dtype=np.int64)
    rank[spatial] = np.arange(n_groups)

    # members and linking pairs of each group, as Python lists sliced per group
    group_of_node = rank[component]
    nodes = np.argsort(group_of_node, kind="stable")
    node_bounds = np.searchsorted(group_of_node[nodes], np.arange(n_groups + 1)).tolist()
    is_a = (nodes < n_a).tolist()
    node_ids = np.where(nodes < n_a, table.ids_a[np.minimum(nodes, max(n_a - 1, 0))] if n_a else 0,
                        table.ids_b[np.maximum(nodes - n_a, 0)] if n_b else 0).tolist()
    node_sizes = np.concatenate([table.sizes_a, table.sizes_b])[nodes].tolist()
    group_of_pair = rank[component[pa]]
    by_group = np.argsort(group_of_pair, kind="stable")
    pair_bounds = np.searchsorted(group_of_pair[by_group], np.arange(n_groups + 1)).tolist()
    pairs = list(zip(table.ids_a[pa[by_group]].tolist(), table.ids_b[pb[by_group]].tolist(),
                     piou[by_group].tolist()))
    boxes = np.concatenate([lo, hi], axis=1)[spatial].tolist()

    groups = []
    for g in range(n_groups):
        lo_, hi_ = node_bounds[g], node_bounds[g + 1]
        n_in_a = sum(is_a[lo_:hi_])  # A nodes come first within a group (stable sort)
        groups.append(Group(
            index=g,
            kind=_kind(n_in_a, hi_ - lo_ - n_in_a),
            ids_a=tuple(node_ids[lo_:lo_ + n_in_a]),
            ids_b=tuple(node_ids[lo_ + n_in_a:hi_]),
            sizes_a=tuple(node_sizes[lo_:lo_ + n_in_a]),
            sizes_b=tuple(node_sizes[lo_ + n_in_a:hi_]),
            pairs=tuple(pairs[pair_bounds[g]:pair_bounds[g + 1]]),
            bbox=tuple(boxes[g]),
        ))
    return groups


def _kind(n_a: int, n_b: int) -> str:
    if n_b == 0:
        return "only_a"
    if n_a == 0:
        return "only_b"
    if n_a == 1:
        return "match" if n_b == 1 else "split"
    return "merge" if n_b == 1 else "complex"
