"""One policy for every paired group: in a session, and by lookup tables in memory and on dask.

A policy takes one choice on every paired group: keep A, keep B, their union
as one object (choice "M"), or the side with more voxels.
:func:`decide_by_policy` runs it over a :class:`.session.Session`: every
paired group decided in queue order, then finished (the unpaired objects are
added, "Auto"), writing object after object into the background of the
output. The result depends only on the overlap table: a voxel holding A id
``a`` and B id ``b`` is covered by at most two output objects (the one ``a``
went into and the one ``b`` went into, the same object for a union), and the
one written first owns it ("contested" voxels keep their owner). So the
decisions become two lookup tables, the output id of every A id and of every
B id in decision order, and the output is

    out = min over the non-zero of (lut_a[a], lut_b[b])   (0 when both are 0)

An object whose voxels are all owned by earlier objects gets no id (the
session writes it nowhere), so the ids stay 1..n: that is found from the
table's intersections too, with no pass over the volume.

- :func:`merge_tables`: the lookup tables, the counts of the session's
  summary and the class of each output object, from the overlap table and
  the review groups alone;
- :func:`apply_tables`: the output from A and B, numpy in memory (chunked,
  threaded) or dask block by block (no halo: a voxel needs only itself);
- :func:`object_classes`: the majority class of each object, for the classes;
- :func:`merge_masks`: the whole recipe on two masks in memory (``mask-compare merge``).

No Qt, no napari, no files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain

import numpy as np

from ._arrays import as_dask, is_lazy, sum_by
from .labels import labels_dtype
from .pairing import Group, OverlapTable, overlap_table, review_groups
from .session import CHOICES, Session

__all__ = [
    "POLICIES", "MergeTables", "apply_tables", "class_map", "decide_by_policy", "merge_masks",
    "merge_tables", "object_classes", "policy_choice",
]

#: Policies: the choice taken on every paired group (keep A, keep B, their union as one
#: object, the side with more voxels).
POLICIES = ("a", "b", "union", "larger")

#: The decision on a group as a code: skip, keep A, keep B, union (M), unpaired added on finish.
_N, _A, _B, _M, _AUTO = range(5)
_CODE = {"N": _N, "A": _A, "B": _B, "M": _M}
#: Decisions that keep a group's A objects, and its B objects.
_KEEPS_A = (_A, _M, _AUTO)
_KEEPS_B = (_B, _M, _AUTO)

#: Largest id for which a dense lookup (one entry per possible id) is always used; above it
#: (and above the voxel count of an in-memory volume: the table is then no larger than the
#: output), a sorted search, about 14 times slower here (30k ids). A dense table of 2**24
#: uint32 entries is 64 MiB, built once.
_DENSE_MAX_ID = 1 << 24

#: Voxels looked up at once by one thread: temporaries that stay in cache. Measured on
#: 128 x 1024 x 1024 (one thread, best of 5): 2**14 0.54 s, 2**16 0.46 s, 2**18 0.32 s,
#: 2**20 0.32 s, 2**22 0.92 s.
_BLOCK_VOXELS = 1 << 18

#: Most threads that apply the tables to an in-memory volume.
_MAX_THREADS = 8


@dataclass(frozen=True, eq=False)
class MergeTables:
    """Output id of every input object, as :func:`decide_by_policy` would give it.

    Attributes
    ----------
    ids_a, ids_b : ndarray of uint64, shape (n_a,), (n_b,)
        The objects' ids (those of the overlap table).
    lut_a, lut_b : ndarray of uint16 or uint32, shape (n_a,), (n_b,)
        Output id of each object of ``ids_a`` and ``ids_b``; 0 when it is not
        in the output (its group's decision left it out, or every voxel of it
        was already owned). Ids are 1..n, in decision order, with no gap: the
        session's output as it is saved.
    kept_a, kept_b : ndarray of bool, shape (n_a,), (n_b,)
        True when the decision kept the object (it may still be wholly contested).
    summary : dict
        The keys and values of :meth:`.session.Session.summary` after :func:`decide_by_policy`.
    classes : ndarray of uint16 or uint32, shape (n + 1,), or None
        Class of each output id (0 for the background and for objects without
        a class); None when no classes were given.
    """

    ids_a: np.ndarray
    ids_b: np.ndarray
    lut_a: np.ndarray
    lut_b: np.ndarray
    kept_a: np.ndarray
    kept_b: np.ndarray
    summary: dict
    classes: np.ndarray | None = None

    @property
    def n_objects(self) -> int:
        """Number of output objects (ids 1..n)."""
        return int(self.summary["objects"])

    @property
    def dtype(self) -> np.dtype:
        """The output's dtype (:func:`.labels.labels_dtype` of the number of objects)."""
        return labels_dtype(self.n_objects)


# --------------------------------------------------------------------------- policies


def decide_by_policy(session: Session, *, policy: str = "a") -> Session:
    """Decide every paired group by one policy, then finish (unpaired objects added).

    Parameters
    ----------
    session : Session
        Decisions go in queue order (spatial by default); groups already
        decided keep their decision.
    policy : {"a", "b", "union", "larger"}
        Keep A; keep B; the union of each group's objects as one object
        (choice "M"); keep the side with more voxels in the group (A on a tie).

    Returns
    -------
    Session
        The same session, every group decided.

    Examples
    --------
    >>> a = np.array([[1, 1, 1, 0, 2]])
    >>> b = np.array([[3, 3, 4, 4, 0]])
    >>> decide_by_policy(Session.from_masks(a, b), policy="b").output.tolist()
    [[1, 1, 2, 2, 3]]
    """
    _check_policy(policy)
    for index in session.queue:
        group = session.groups[index]
        if group.paired and session.choice_of(index) is None:
            session.decide(policy_choice(group, policy), group=index)
    session.finish()
    return session


def policy_choice(group: Group, policy: str) -> str:
    """The choice ("A", "B" or "M", the union) that ``policy`` takes on a paired ``group``."""
    if policy == "larger":
        return "A" if sum(group.sizes_a) >= sum(group.sizes_b) else "B"
    return {"a": "A", "b": "B", "union": "M"}[policy]


def _check_policy(policy: str) -> None:
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")


# --------------------------------------------------------------------------- the recipe


def merge_masks(a: np.ndarray, b: np.ndarray, *, policy: str = "a", iou_threshold: float = 0.1,
                classes_a: np.ndarray | None = None, classes_b: np.ndarray | None = None,
                table: OverlapTable | None = None):
    """Merge two masks by one policy: the output of :func:`decide_by_policy`, by lookup tables.

    Parameters
    ----------
    a, b : ndarray of int, shape (y, x) or (z, y, x)
        Instance masks, A the reference.
    policy : {"a", "b", "union", "larger"}
    iou_threshold : float in (0, 1]
        As for :func:`.pairing.review_groups`.
    classes_a, classes_b : ndarray of int, same shape, optional
        Class of every voxel of A, of B.
    table : OverlapTable, optional
        :func:`.pairing.overlap_table` of ``a`` and ``b``, when already made.

    Returns
    -------
    merged : ndarray of uint16 or uint32, shape of ``a``
        Ids 1..n in decision order, background 0.
    classes : ndarray, shape of ``a``, or None
        Class of every voxel of ``merged``; None without classes.
    tables : MergeTables
        With the summary of the merge.

    Examples
    --------
    >>> merged, _, tables = merge_masks(np.array([[1, 1, 1, 0, 2]]),
    ...                                 np.array([[3, 3, 4, 4, 0]]), policy="b")
    >>> merged.tolist(), tables.summary["B"], tables.summary["Auto"]
    ([[1, 1, 2, 2, 3]], 1, 1)
    """
    table = overlap_table(a, b) if table is None else table
    tables = merge_tables(
        table, review_groups(table, iou_threshold=iou_threshold), policy=policy,
        classes_a=None if classes_a is None else object_classes(a, classes_a),
        classes_b=None if classes_b is None else object_classes(b, classes_b),
    )
    merged = apply_tables(a, b, tables)
    return merged, class_map(merged, tables), tables


# --------------------------------------------------------------------------- tables


def merge_tables(table: OverlapTable, groups: Sequence[Group], *, policy: str,
                 classes_a: np.ndarray | None = None,
                 classes_b: np.ndarray | None = None) -> MergeTables:
    """The lookup tables of merging A and B by one policy, from the overlap table alone.

    The same decisions as :func:`decide_by_policy` on a session of these
    groups in spatial (queue) order: every paired group by ``policy``, then
    the unpaired groups added ("Auto").

    Parameters
    ----------
    table : OverlapTable
        From :func:`.pairing.overlap_table` of A and B.
    groups : sequence of Group
        From :func:`.pairing.review_groups` of ``table``.
    policy : {"a", "b", "union", "larger"}
        As for :func:`decide_by_policy`.
    classes_a, classes_b : ndarray of int, shape (n_a,), (n_b,), optional
        Class of each object of ``table.ids_a`` and ``table.ids_b`` (see
        :func:`object_classes`); an output object takes the class of its
        largest input object.

    Returns
    -------
    MergeTables

    Examples
    --------
    >>> from napari_mask_compare.pairing import overlap_table, review_groups
    >>> a = np.array([[1, 1, 1, 0, 2]])
    >>> b = np.array([[3, 3, 4, 4, 0]])
    >>> t = overlap_table(a, b)
    >>> m = merge_tables(t, review_groups(t), policy="b")
    >>> m.lut_a.tolist(), m.lut_b.tolist(), m.summary["objects"]
    ([0, 3], [1, 2], 3)
    >>> apply_tables(a, b, m).tolist()
    [[1, 1, 2, 2, 3]]
    """
    _check_policy(policy)
    for name, classes, n in (("classes_a", classes_a, table.n_a),
                             ("classes_b", classes_b, table.n_b)):
        if classes is not None and np.shape(classes) != (n,):
            raise ValueError(f"{name} must hold one class per object, shape ({n},), "
                             f"got {np.shape(classes)}")
    group_a, group_b = _group_of_objects(table, groups)
    choice = _choices(groups, policy=policy)
    rank_a, rank_b, n_units = _decision_ranks(choice, group_a, group_b)
    survives, contested = _surviving_units(table, rank_a, rank_b, n_units=n_units)
    n_objects = int(np.count_nonzero(survives))
    dtype = labels_dtype(n_objects)
    output_id = np.zeros(n_units + 1, dtype=dtype)  # the last entry: objects not kept
    output_id[:n_units][survives] = np.arange(1, n_objects + 1, dtype=dtype)
    classes = None
    if classes_a is not None or classes_b is not None:
        classes = _output_classes(table, rank_a, rank_b, classes_a, classes_b,
                                  n_units=n_units, output_id=output_id[:n_units])
    return MergeTables(
        ids_a=table.ids_a, ids_b=table.ids_b,
        lut_a=output_id[rank_a], lut_b=output_id[rank_b],
        kept_a=rank_a < n_units, kept_b=rank_b < n_units,
        summary=_summary(choice, contested=contested, n_objects=n_objects),
        classes=classes,
    )


def _group_of_objects(table: OverlapTable, groups: Sequence[Group]):
    """Index of the group of every A object and every B object.

    Returns
    -------
    group_a, group_b : ndarray of int64, shape (n_a,), (n_b,)

    Raises
    ------
    ValueError
        The groups are not a partition of the table's objects, in index order.
    """
    if any(g.index != k for k, g in enumerate(groups)):
        raise ValueError("groups must be listed in index order (as review_groups gives them)")
    out = []
    for side, ids_of_table in (("a", table.ids_a), ("b", table.ids_b)):
        members = [getattr(g, f"ids_{side}") for g in groups]
        counts = np.fromiter(map(len, members), dtype=np.int64, count=len(groups))
        ids = np.fromiter(chain.from_iterable(members), dtype=np.uint64, count=int(counts.sum()))
        n = len(ids_of_table)
        index = np.minimum(np.searchsorted(ids_of_table, ids), max(n - 1, 0))
        group = np.full(n, -1, dtype=np.int64)
        if len(ids) == n and np.array_equal(ids_of_table[index], ids):
            group[index] = np.repeat(np.arange(len(groups), dtype=np.int64), counts)
        if len(ids) != n or (group < 0).any():  # an id missing, unknown or twice
            raise ValueError(f"the groups' {side.upper()} ids are not those of the overlap "
                             "table, each once: pass the groups of this table")
        out.append(group)
    return tuple(out)


def _choices(groups: Sequence[Group], *, policy: str) -> np.ndarray:
    """The decision code of every group: the policy's for paired groups, Auto for the others."""
    return np.fromiter(
        (_CODE[policy_choice(g, policy)] if g.paired else _AUTO for g in groups),
        dtype=np.int8, count=len(groups),
    )


def _decision_ranks(choice: np.ndarray, group_a: np.ndarray, group_b: np.ndarray):
    """Rank of the output object each input object goes into, in the order they are written.

    The session decides the paired groups in index order, then adds the
    unpaired ones in index order; within a decision the objects go in id
    order (A before B for Auto), and a union is one object.

    Returns
    -------
    rank_a, rank_b : ndarray of int64, shape (n_a,), (n_b,)
        ``n_units`` for an object that its decision leaves out.
    n_units : int
        Number of objects written (some may get no voxel).
    """
    n_groups = len(choice)
    order = np.arange(n_groups, dtype=np.int64)
    order[np.asarray(choice) == _AUTO] += n_groups  # finish comes after every decision
    stride = len(group_a) + len(group_b) + 1
    keys = []
    for side, group, keeps in ((0, group_a, _KEEPS_A), (1, group_b, _KEEPS_B)):
        code = choice[group]
        kept = np.isin(code, keeps)
        within = np.arange(len(group), dtype=np.int64) + 1 + side * len(group_a)
        within[code == _M] = 0  # one object per union
        keys.append(np.where(kept, order[group] * stride + within, -1))
    all_keys = np.concatenate(keys)
    kept = all_keys >= 0
    units, inverse = np.unique(all_keys[kept], return_inverse=True)
    rank = np.full(len(all_keys), len(units), dtype=np.int64)
    rank[kept] = inverse.reshape(-1)
    return rank[:len(group_a)], rank[len(group_a):], len(units)


def _surviving_units(table: OverlapTable, rank_a: np.ndarray, rank_b: np.ndarray, *,
                     n_units: int):
    """Which written objects own at least one voxel, and the contested voxels.

    A voxel of A id ``a`` and B id ``b`` belongs to the earlier of the
    objects they went into; the later one loses it (contested). Voxels of
    one side only (the other is background) belong to their object.

    Returns
    -------
    survives : ndarray of bool, shape (n_units,)
    contested : int
    """
    inter = table.intersection
    ra, rb = rank_a[table.pair_a], rank_b[table.pair_b]
    owner = np.minimum(ra, rb)
    alone_a = table.sizes_a - sum_by(table.pair_a, inter, table.n_a)
    alone_b = table.sizes_b - sum_by(table.pair_b, inter, table.n_b)
    owned = (sum_by(owner, inter, n_units + 1) + sum_by(rank_a, alone_a, n_units + 1)
             + sum_by(rank_b, alone_b, n_units + 1))
    both_written = (ra < n_units) & (rb < n_units) & (ra != rb)
    return owned[:n_units] > 0, int(inter[both_written].sum())


def _summary(choice: np.ndarray, *, contested: int, n_objects: int) -> dict:
    """The counts of :meth:`.session.Session.summary` after a policy run (every group decided)."""
    counts = np.bincount(choice, minlength=len(_CODE) + 1).tolist()
    return {
        **{key: counts[_CODE[key]] for key in CHOICES},
        "Auto": counts[_AUTO],
        "P": 0, "picks": 0, "edits": 0,
        "contested": contested,
        "decided": len(choice),
        "undecided_paired": 0,
        "undecided_unpaired": 0,
        "groups": len(choice),
        "objects": n_objects,
    }


def _output_classes(table, rank_a, rank_b, classes_a, classes_b, *, n_units: int,
                    output_id: np.ndarray) -> np.ndarray:
    """Class of every output id: that of the largest input object (the first one on a tie).

    Objects are taken in the session's order within a decision (A before B,
    each in id order); a side without classes gives none.

    Returns
    -------
    ndarray of uint16 or uint32, shape (n + 1,)
    """
    unit, size, side, index, cls = [], [], [], [], []
    for s, ranks, sizes, classes in ((0, rank_a, table.sizes_a, classes_a),
                                     (1, rank_b, table.sizes_b, classes_b)):
        if classes is None:
            continue
        kept = np.flatnonzero(ranks < n_units)
        unit.append(ranks[kept])
        size.append(sizes[kept])
        side.append(np.full(len(kept), s, dtype=np.int64))
        index.append(kept)
        cls.append(np.asarray(classes, dtype=np.int64)[kept])
    unit, size, side, index, cls = map(np.concatenate, (unit, size, side, index, cls))
    order = np.lexsort((index, side, -size, unit))
    first = order[np.r_[True, unit[order][1:] != unit[order][:-1]]] if len(order) else order
    n_objects = int(output_id.max(initial=0))
    out = np.zeros(n_objects + 1, dtype=np.int64)
    out[output_id[unit[first]]] = np.maximum(cls[first], 0)
    out[0] = 0  # objects that own no voxel have no class
    return out.astype(labels_dtype(int(out.max(initial=0))))


def object_classes(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The most frequent class of every object (the smallest class on a tie).

    Parameters
    ----------
    labels : ndarray of int, shape (y, x) or (z, y, x)
    classes : ndarray of int, same shape
        Class of every voxel (0 counts as a class too).

    Returns
    -------
    ndarray of int64, shape (n,)
        One class per non-zero id of ``labels``, in increasing id order (the
        order of :attr:`.pairing.OverlapTable.ids_a` for ``labels`` as A).

    Examples
    --------
    >>> object_classes(np.array([[5, 5, 5, 2]]), np.array([[1, 3, 3, 0]])).tolist()
    [0, 3]
    """
    table = overlap_table(labels, classes)
    unclassed = table.sizes_a - sum_by(table.pair_a, table.intersection, table.n_a)
    obj = np.concatenate([np.arange(table.n_a), table.pair_a])
    count = np.concatenate([unclassed, table.intersection])
    cls = np.concatenate([np.zeros(table.n_a, dtype=np.int64),
                          table.ids_b[table.pair_b].astype(np.int64)])
    order = np.lexsort((cls, -count, obj))
    first = order[np.r_[True, obj[order][1:] != obj[order][:-1]]] if len(order) else order
    return cls[first]


# --------------------------------------------------------------------------- applying


def apply_tables(a, b, tables: MergeTables):
    """The merged output: per voxel, the earlier output id of its A object and its B object.

    Parameters
    ----------
    a, b : ndarray or lazy array (dask, zarr, chunked HDF5) of int, shape (y, x) or (z, y, x)
        The masks the tables were made from.

    Returns
    -------
    ndarray, or dask.array.Array when ``a`` or ``b`` is lazy (:func:`._arrays.is_lazy`),
    of ``tables.dtype``
        Ids 1..n, background 0; identical to the output of :func:`decide_by_policy`.
        A dask output is computed block by block (the blocks of ``a``), each
        from its own blocks of ``a`` and ``b`` only.
    """
    if np.shape(a) != np.shape(b):
        raise ValueError(f"masks differ in shape: {np.shape(a)} vs {np.shape(b)}")
    for name, arr in (("a", a), ("b", b)):
        if np.dtype(arr.dtype).kind not in "biu":
            raise ValueError(f"{name} must hold integer labels, got dtype {arr.dtype}")
    lazy = is_lazy(a) or is_lazy(b)
    dense_up_to = _DENSE_MAX_ID if lazy else max(_DENSE_MAX_ID, int(np.prod(np.shape(a))))
    lookup_a = _Lookup(tables.ids_a, tables.lut_a, dtype=a.dtype, dense_up_to=dense_up_to)
    lookup_b = _Lookup(tables.ids_b, tables.lut_b, dtype=b.dtype, dense_up_to=dense_up_to)
    if lazy:
        return _apply_dask(a, b, lookup_a, lookup_b, dtype=tables.dtype)
    return _apply_numpy(np.asarray(a), np.asarray(b), lookup_a, lookup_b, dtype=tables.dtype)


def class_map(merged, tables: MergeTables):
    """Class of every voxel of the merged output (0 on the background), or None without classes.

    Parameters
    ----------
    merged : ndarray or lazy array, shape (y, x) or (z, y, x)
        From :func:`apply_tables`.

    Returns
    -------
    ndarray or dask.array.Array of ``tables.classes.dtype``, or None
        As :meth:`.session.Session.class_map`.
    """
    if tables.classes is None:
        return None
    if is_lazy(merged):
        import dask

        merged = as_dask(merged)
        classes = dask.delayed(tables.classes, pure=True)  # one copy in the graph
        return merged.map_blocks(_take, classes, dtype=tables.classes.dtype,
                                 meta=np.empty((0,) * merged.ndim, dtype=tables.classes.dtype))
    return _take(np.asarray(merged), tables.classes)


def _take(ids: np.ndarray, lut: np.ndarray) -> np.ndarray:
    return lut[ids]


class _Lookup:
    """Output id of every input id: a dense table by id when ids are small, else a search.

    Parameters
    ----------
    ids : ndarray of uint64, shape (n,)
        Sorted non-zero ids.
    values : ndarray, shape (n,)
        Output id of each.
    dtype : numpy dtype
        Dtype of the labels it will be applied to.
    dense_up_to : int
        Largest id for which a dense table is made (always for 8 and 16 bit labels).
    """

    def __init__(self, ids: np.ndarray, values: np.ndarray, *, dtype, dense_up_to: int):
        top = int(ids[-1]) if len(ids) else 0
        dtype = np.dtype(dtype)
        self.dense = top <= dense_up_to or dtype.itemsize <= 2
        if self.dense:  # every value of a small dtype has an entry: no index can fall out
            size = max(top, int(np.iinfo(dtype).max) if dtype.itemsize <= 2 else 0) + 1
            self.table = np.zeros(size, dtype=values.dtype)
            self.table[ids.astype(np.intp)] = values
        else:
            self.keys = np.concatenate([[0], ids]).astype(dtype if dtype.kind == "u" else np.int64)
            self.values = np.concatenate([np.zeros(1, dtype=values.dtype), values])

    def __dask_tokenize__(self):
        from dask.base import tokenize

        arrays = (self.table,) if self.dense else (self.keys, self.values)
        return type(self).__name__, tokenize(*arrays)

    def __call__(self, labels: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write the output ids of ``labels`` (any shape) into ``out`` (same shape)."""
        if self.dense:
            return np.take(self.table, labels, out=out, mode="clip")
        return np.take(self.values, np.searchsorted(self.keys, labels), out=out, mode="clip")


def _apply_block(a: np.ndarray, b: np.ndarray, lookup_a: _Lookup, lookup_b: _Lookup, *,
                 out_dtype, out: np.ndarray | None = None) -> np.ndarray:
    """``min(lut_a[a] - 1, lut_b[b] - 1) + 1`` in unsigned arithmetic: the smaller non-zero.

    0 - 1 wraps to the dtype's largest value, above every id, and back to 0.
    """
    dtype = np.dtype(out_dtype)
    out = np.empty(a.shape, dtype=dtype) if out is None else out
    other = np.empty(a.shape, dtype=dtype)
    lookup_a(a, out)
    lookup_b(b, other)
    one = dtype.type(1)
    np.subtract(out, one, out=out)
    np.subtract(other, one, out=other)
    np.minimum(out, other, out=out)
    np.add(out, one, out=out)
    return out


def _apply_numpy(a, b, lookup_a, lookup_b, *, dtype) -> np.ndarray:
    """:func:`_apply_block` over flat blocks of the volume, shared by a few threads."""
    out = np.empty(a.shape, dtype=dtype)
    flat = [np.ascontiguousarray(x).reshape(-1) for x in (a, b, out)]
    starts = range(0, out.size, _BLOCK_VOXELS)
    n_workers = max(1, min(os.cpu_count() or 1, _MAX_THREADS, len(starts)))
    if n_workers == 1:
        _apply_blocks(*flat, starts, lookup_a, lookup_b)
        return out
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        list(pool.map(lambda share: _apply_blocks(*flat, share, lookup_a, lookup_b),
                      [starts[w::n_workers] for w in range(n_workers)]))
    return out


def _apply_blocks(flat_a, flat_b, flat_out, starts, lookup_a, lookup_b) -> None:
    """:func:`_apply_block` on the flat blocks that begin at ``starts``, into ``flat_out``."""
    for start in starts:
        stop = start + _BLOCK_VOXELS
        _apply_block(flat_a[start:stop], flat_b[start:stop], lookup_a, lookup_b,
                     out_dtype=flat_out.dtype, out=flat_out[start:stop])


def _apply_chunk(a, b, *, lookup_a, lookup_b, out_dtype) -> np.ndarray:
    """One dask block, on one thread (dask runs blocks in parallel)."""
    out = np.empty(a.shape, dtype=out_dtype)
    flat = [np.ascontiguousarray(x).reshape(-1) for x in (a, b, out)]
    _apply_blocks(*flat, range(0, out.size, _BLOCK_VOXELS), lookup_a, lookup_b)
    return out


def _apply_dask(a, b, lookup_a, lookup_b, *, dtype):
    """:func:`_apply_block` on every block of ``a`` (``b`` rechunked to match): no halo."""
    import dask
    import dask.array as da

    a = da.asarray(a)
    b = da.asarray(b).rechunk(a.chunks)
    # one copy of each table in the graph, not one per block (on a cluster each task is sent)
    lookup_a, lookup_b = (dask.delayed(lookup, pure=True) for lookup in (lookup_a, lookup_b))
    return da.map_blocks(_apply_chunk, a, b, lookup_a=lookup_a, lookup_b=lookup_b,
                         out_dtype=dtype, dtype=dtype,
                         meta=np.empty((0,) * a.ndim, dtype=dtype))
