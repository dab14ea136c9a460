"""Matching statistics of a prediction B against a reference A, StarDist-compatible.

Everything is computed from a :class:`.pairing.OverlapTable`: sizes and the
intersections of the pairs that overlap. There is no dense n x m matrix.

The per-threshold fields, their names and formulas are those of StarDist's
``stardist.matching.matching`` (criterion "iou"), and so is its one-to-one
assignment: the most matches with IoU >= thresh, ties broken by the sum of
the IoUs of all assigned pairs. StarDist solves this on the dense score
matrix with the costs ``-(scores >= thresh) - scores / (2 * n_matched)``;
here the same costs are solved on the sparse graph of overlapping pairs:

- every object whose only candidate (IoU >= thresh) partner has it as its
  only candidate too is matched to it (every optimal assignment holds that
  pair); above 0.5 that is every candidate pair, since an object has at most
  one partner with IoU > 0.5, so no solver runs;
- what remains splits into connected components of the overlap graph; each
  one that holds a candidate pair is solved on its own with
  :func:`scipy.optimize.linear_sum_assignment` (a sparse solver for the rare
  large one).

Pairs that do not overlap have score 0 and never change the objective, so
the result is StarDist's: tp, fp and fn exactly, the score sums to rounding
(when two assignments tie exactly, either may be reported, as in StarDist).

The metric suite (every metric beyond StarDist's matching) is
:mod:`.suite`, which uses the assignment here; the one comparison recipe,
:mod:`.compare`, puts the two together.

No Qt, no napari.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components, min_weight_full_bipartite_matching

from .pairing import KINDS, Group, OverlapTable, review_groups

__all__ = [
    "AP_THRESHOLDS",
    "DEFAULT_THRESHOLDS",
    "MATCHING_COLUMNS",
    "MATCHING_FIELDS",
    "average_precision_dsb2018",
    "check_threshold",
    "group_counts",
    "matched_pairs",
    "matching_dataset",
    "matching_stats",
    "pixel_scores",
    "pooled_pixel_scores",
]

#: Keys of one per-threshold result, in StarDist's order.
MATCHING_FIELDS = (
    "criterion", "thresh", "fp", "tp", "fn", "precision", "recall", "accuracy", "f1",
    "n_true", "n_pred", "mean_true_score", "mean_matched_score", "panoptic_quality",
)
#: Thresholds of ``mask-compare stats`` when none are given: 0.1, 0.2, ..., 0.9.
DEFAULT_THRESHOLDS = tuple(round(0.1 * k, 1) for k in range(1, 10))
#: Thresholds of the 2018 Data Science Bowl score: 0.5, 0.55, ..., 0.95.
AP_THRESHOLDS = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))
#: Columns of a table of matching statistics, one row per threshold: (header, key of a
#: :func:`matching_stats` record, format). ``mask-compare stats`` and the Metrics tab show these.
MATCHING_COLUMNS = (
    ("thresh", "thresh", "{:g}"), ("tp", "tp", "{}"), ("fp", "fp", "{}"), ("fn", "fn", "{}"),
    ("precision", "precision", "{:.4f}"), ("recall", "recall", "{:.4f}"),
    ("accuracy", "accuracy", "{:.4f}"), ("f1", "f1", "{:.4f}"),
    ("pq", "panoptic_quality", "{:.4f}"), ("mean_matched", "mean_matched_score", "{:.4f}"),
    ("mean_true", "mean_true_score", "{:.4f}"), ("n_true", "n_true", "{}"),
    ("n_pred", "n_pred", "{}"),
)

#: Components whose dense score matrix has more cells go to the sparse solver.
_DENSE_LIMIT = 1 << 22


# --------------------------------------------------------------------------- assignment


def matched_pairs(table: OverlapTable, *, thresh: float) -> np.ndarray:
    """Pairs of the one-to-one assignment at ``thresh`` that count as true positives.

    Parameters
    ----------
    table : OverlapTable
        A is the reference ("true"), B the prediction.
    thresh : float in [0, 1]
        IoU a pair needs to count. At 0 every assigned pair counts, also
        those of objects that do not overlap (as in StarDist); they are not
        in the table and so not returned.

    Returns
    -------
    ndarray of int64, shape (tp,)
        Indices into the table's pairs (``table.pair_a``, ``table.pair_b``,
        ``table.iou``), increasing. Each A and each B object occurs at most once.

    Examples
    --------
    >>> from napari_mask_compare.pairing import overlap_table
    >>> a = np.array([[1, 1, 1, 1, 0, 2, 2]])
    >>> b = np.array([[3, 3, 3, 4, 0, 5, 5]])
    >>> t = overlap_table(a, b)
    >>> [(int(t.ids_a[t.pair_a[i]]), int(t.ids_b[t.pair_b[i]]))
    ...  for i in matched_pairs(t, thresh=0.5)]
    [(1, 3), (2, 5)]
    """
    thresh = check_threshold(thresh)
    chosen, candidate = _assignment(table, thresh)
    return np.flatnonzero(chosen & candidate) if thresh > 0 else np.flatnonzero(chosen)


def check_threshold(thresh) -> float:
    """``thresh`` as a float, or ValueError when it is not in [0, 1]."""
    thresh = float(thresh)
    if not 0 <= thresh <= 1:
        raise ValueError(f"thresh must be in [0, 1], got {thresh}")
    return thresh


def _assignment(table: OverlapTable, thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """StarDist's optimal assignment restricted to overlapping pairs.

    Returns
    -------
    chosen : ndarray of bool, shape (n_pairs,)
        The overlapping pairs the assignment holds (also those below ``thresh``).
    candidate : ndarray of bool, shape (n_pairs,)
        Pairs with IoU >= ``thresh``.
    """
    iou = table.iou
    candidate = iou >= thresh
    n_matched = min(table.n_a, table.n_b)
    # at 0 every pair counts, also the disjoint ones: only the score sum is optimised
    weight = iou if thresh == 0 else candidate + iou / (2 * max(n_matched, 1))
    fixed = _forced_pairs(table, candidate)
    chosen = fixed.copy()
    if np.array_equal(fixed, candidate):
        return chosen, candidate
    busy_a = np.zeros(table.n_a, dtype=bool)
    busy_b = np.zeros(table.n_b, dtype=bool)
    busy_a[table.pair_a[fixed]] = True
    busy_b[table.pair_b[fixed]] = True
    free = np.flatnonzero(~busy_a[table.pair_a] & ~busy_b[table.pair_b])
    for edges in _components_with_candidates(table, free, candidate):
        chosen[edges[_max_weight_matching(table.pair_a[edges], table.pair_b[edges],
                                          weight[edges])]] = True
    return chosen, candidate


def _forced_pairs(table: OverlapTable, candidate: np.ndarray) -> np.ndarray:
    """Candidate pairs whose two objects have no other candidate partner.

    Such a pair is a component of the candidate graph on its own: an
    assignment without it has one match fewer, so every optimal one holds it.
    """
    pa, pb = table.pair_a, table.pair_b
    deg_a = np.bincount(pa[candidate], minlength=table.n_a)
    deg_b = np.bincount(pb[candidate], minlength=table.n_b)
    return candidate & (deg_a[pa] == 1) & (deg_b[pb] == 1)


def _components_with_candidates(table: OverlapTable, edges: np.ndarray, candidate: np.ndarray):
    """Yield, per connected component of the graph of ``edges``, its edges.

    Only components that hold a candidate pair are yielded: the others add
    nothing to tp or to the matched scores.
    """
    if len(edges) == 0:
        return
    pa, pb = table.pair_a[edges], table.pair_b[edges]
    n_a = table.n_a
    graph = sparse.coo_matrix((np.ones(len(edges), dtype=np.int8), (pa, pb + n_a)),
                              shape=(n_a + table.n_b,) * 2)
    _, component = connected_components(graph, directed=False)
    edge_component = component[pa]
    useful = np.unique(edge_component[candidate[edges]])
    keep = np.isin(edge_component, useful)
    edges, edge_component = edges[keep], edge_component[keep]
    order = np.argsort(edge_component, kind="stable")
    edges, edge_component = edges[order], edge_component[order]
    bounds = np.flatnonzero(np.r_[True, edge_component[1:] != edge_component[:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        yield edges[lo:hi]


def _max_weight_matching(rows: np.ndarray, cols: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Maximum weight matching of a small bipartite graph with positive weights.

    Parameters
    ----------
    rows, cols : ndarray of int, shape (n_edges,)
        End points of each edge (global indices; no edge twice).
    weight : ndarray of float, shape (n_edges,)

    Returns
    -------
    ndarray of bool, shape (n_edges,)
        The edges of the matching.
    """
    row_ids, r = np.unique(rows, return_inverse=True)
    col_ids, c = np.unique(cols, return_inverse=True)
    n_rows, n_cols = len(row_ids), len(col_ids)
    if n_rows * n_cols <= _DENSE_LIMIT:
        dense = np.full((n_rows, n_cols), -1, dtype=np.int64)
        dense[r, c] = np.arange(len(r))
        cost = np.zeros((n_rows, n_cols))
        cost[r, c] = -weight
        ri, ci = linear_sum_assignment(cost)
        edge = dense[ri, ci]
        edge = edge[edge >= 0]
    else:
        # every row may also take a private dummy column: a full matching always exists;
        # a constant added to every cost keeps them non-zero without changing the optimum
        offset = 1.0 + weight.max()
        n = len(r)
        cost = sparse.csr_matrix(
            (np.r_[offset - weight, np.full(n_rows, offset)],
             (np.r_[r, np.arange(n_rows)], np.r_[c, n_cols + np.arange(n_rows)])),
            shape=(n_rows, n_cols + n_rows),
        )
        ri, ci = min_weight_full_bipartite_matching(cost)
        real = ci < n_cols
        lookup = sparse.csr_matrix((np.arange(1, n + 1), (r, c)), shape=(n_rows, n_cols))
        edge = np.asarray(lookup[ri[real], ci[real]]).reshape(-1) - 1
    chosen = np.zeros(len(r), dtype=bool)
    chosen[edge] = True
    return chosen


# --------------------------------------------------------------------------- statistics


def matching_stats(
    table: OverlapTable, *, thresholds: Iterable[float] = DEFAULT_THRESHOLDS
) -> list[dict]:
    """StarDist's ``matching`` of B (prediction) against A (reference), per threshold.

    Parameters
    ----------
    table : OverlapTable
    thresholds : iterable of float in [0, 1]

    Returns
    -------
    list of dict
        One dict per threshold with the keys :data:`MATCHING_FIELDS`:
        criterion ("iou"), thresh, fp, tp, fn, precision, recall, accuracy,
        f1, n_true, n_pred, mean_true_score, mean_matched_score,
        panoptic_quality. Ratios with a zero denominator are 0, as in StarDist.

    Examples
    --------
    >>> from napari_mask_compare.pairing import overlap_table
    >>> y_true = np.zeros((100, 100), np.uint16)
    >>> y_true[10:20, 10:20] = 1
    >>> y_pred = np.roll(y_true, 5, axis=0)
    >>> s = matching_stats(overlap_table(y_true, y_pred), thresholds=[0.3, 0.5])
    >>> [(r["thresh"], r["tp"], r["fp"], r["fn"], round(r["f1"], 3)) for r in s]
    [(0.3, 1, 0, 0, 1.0), (0.5, 0, 1, 1, 0.0)]
    """
    thresholds = [check_threshold(t) for t in thresholds]
    return [_single(table, thresh) for thresh in thresholds]


def _single(table: OverlapTable, thresh: float) -> dict:
    n_true, n_pred = table.n_a, table.n_b
    n_matched = min(n_true, n_pred)
    if n_matched == 0:
        tp, score_sum = 0, 0.0
    elif thresh == 0:
        chosen, _ = _assignment(table, thresh)
        tp, score_sum = n_matched, float(table.iou[chosen].sum())
    else:
        chosen, candidate = _assignment(table, thresh)
        ok = chosen & candidate
        tp, score_sum = int(np.count_nonzero(ok)), float(table.iou[ok].sum())
    return _record(thresh, tp=tp, n_true=n_true, n_pred=n_pred, score_sum=score_sum)


def _record(thresh: float, *, tp: int, n_true: int, n_pred: int, score_sum: float) -> dict:
    """StarDist's fields from the counts and the sum of the matched scores."""
    fp, fn = n_pred - tp, n_true - tp
    return {
        "criterion": "iou",
        "thresh": thresh,
        "fp": fp,
        "tp": tp,
        "fn": fn,
        "precision": tp / (tp + fp) if tp > 0 else 0.0,
        "recall": tp / (tp + fn) if tp > 0 else 0.0,
        "accuracy": tp / (tp + fp + fn) if tp > 0 else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0,
        "n_true": n_true,
        "n_pred": n_pred,
        "mean_true_score": _safe_divide(score_sum, n_true),
        "mean_matched_score": _safe_divide(score_sum, tp),
        "panoptic_quality": _safe_divide(score_sum, tp + fp / 2 + fn / 2),
    }


def _safe_divide(x: float, y: float) -> float:
    """StarDist's: ``x / y``, or 0 when ``y`` is not positive."""
    return x / y if y > 0 else 0.0


def matching_dataset(per_image: Sequence[Sequence[dict]]) -> list[dict]:
    """Pool per-image results as StarDist's ``matching_dataset(by_image=False)``.

    tp, fp, fn, n_true, n_pred and the matched score sums (recovered as
    ``mean_true_score * n_true``, as StarDist does) are summed over images;
    the ratios are computed again from the sums.

    Parameters
    ----------
    per_image : sequence of list of dict
        :func:`matching_stats` of each image, all at the same thresholds.

    Returns
    -------
    list of dict
        One per threshold, keys :data:`MATCHING_FIELDS`.
    """
    if not per_image:
        raise ValueError("no images to pool")
    thresholds = [r["thresh"] for r in per_image[0]]
    for results in per_image:
        if [r["thresh"] for r in results] != thresholds:
            raise ValueError("all images must have results at the same thresholds")
    pooled = []
    for k, thresh in enumerate(thresholds):
        rows = [results[k] for results in per_image]
        pooled.append(_record(
            thresh,
            tp=sum(r["tp"] for r in rows),
            n_true=sum(r["n_true"] for r in rows),
            n_pred=sum(r["n_pred"] for r in rows),
            score_sum=sum(r["mean_true_score"] * r["n_true"] for r in rows),
        ))
    return pooled


def pixel_scores(table: OverlapTable) -> dict:
    """Dice and IoU of the foregrounds (all objects of A vs all objects of B).

    The foregrounds' intersection is the sum of the pairs' intersections.

    Returns
    -------
    dict
        ``dice``, ``iou`` (0 when both masks are empty), and the voxel counts
        ``foreground_a``, ``foreground_b``, ``intersection``.

    Examples
    --------
    >>> from napari_mask_compare.pairing import overlap_table
    >>> scores = pixel_scores(overlap_table(np.array([[1, 1, 0, 0]]), np.array([[0, 7, 7, 0]])))
    >>> scores["dice"], round(scores["iou"], 3), scores["intersection"]
    (0.5, 0.333, 1)
    """
    fg_a, fg_b = int(table.sizes_a.sum()), int(table.sizes_b.sum())
    inter = int(table.intersection.sum())
    return _pixel_record(fg_a, fg_b, inter)


def pooled_pixel_scores(records: Sequence[dict]) -> dict:
    """The pixel scores of several images together: from their summed voxel counts.

    Parameters
    ----------
    records : sequence of dict
        :func:`pixel_scores` of each image.
    """
    return _pixel_record(sum(r["foreground_a"] for r in records),
                         sum(r["foreground_b"] for r in records),
                         sum(r["intersection"] for r in records))


def _pixel_record(fg_a: int, fg_b: int, inter: int) -> dict:
    return {
        "dice": _safe_divide(2 * inter, fg_a + fg_b),
        "iou": _safe_divide(inter, fg_a + fg_b - inter),
        "foreground_a": fg_a,
        "foreground_b": fg_b,
        "intersection": inter,
    }


def average_precision_dsb2018(table: OverlapTable) -> float:
    """The 2018 Data Science Bowl score of one image.

    The mean over the thresholds :data:`AP_THRESHOLDS` (0.5 to 0.95 by 0.05)
    of ``tp / (tp + fp + fn)``, which is StarDist's ``accuracy`` (a match
    needs IoU >= t; 0 when there is no true positive, also for two empty masks).

    Examples
    --------
    >>> from napari_mask_compare.pairing import overlap_table
    >>> a = np.zeros((1, 10), np.uint8)
    >>> a[0, :4] = 1
    >>> b = a.copy()
    >>> b[0, 4] = 1  # IoU 0.8: a match at 0.5, ..., 0.8, not at 0.85, 0.9, 0.95
    >>> round(average_precision_dsb2018(overlap_table(a, b)), 3)
    0.7
    """
    results = matching_stats(table, thresholds=AP_THRESHOLDS)
    return float(np.mean([r["accuracy"] for r in results]))


def group_counts(table: OverlapTable, *, iou_threshold: float = 0.1,
                 groups: Sequence[Group] | None = None) -> dict:
    """Number of review groups of each kind (:data:`.pairing.KINDS`).

    Parameters
    ----------
    iou_threshold : float in (0, 1]
        The IoU that links two objects into a group.
    groups : sequence of Group, optional
        :func:`.pairing.review_groups` of ``table`` when already computed
        (``iou_threshold`` is then not used).

    Returns
    -------
    dict
        ``{"match": int, "split": int, "merge": int, "complex": int,
        "only_a": int, "only_b": int}``
    """
    if groups is None:
        groups = review_groups(table, iou_threshold=iou_threshold)
    counts = Counter(g.kind for g in groups)
    return {kind: counts.get(kind, 0) for kind in KINDS}
