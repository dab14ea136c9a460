"""The metric suite: every metric beyond StarDist's matching, from the overlap table.

Every metric here is computed from a :class:`.pairing.OverlapTable` (sizes,
boxes, the intersections of the pairs that overlap) and the image shape,
which gives the background's share; only the boundary metrics read voxels,
each matched pair's crop. A is the reference, B the prediction.

:func:`metric_suite` (one function per metric below it) gives, for one
image: variation of information and the adapted Rand error (scikit-image),
the Cell Tracking Challenge's SEG and DET (py-ctcmetrics), the aggregated
Jaccard index (MoNuSeg), Cellpose's average precision, boundary distances
per matched pair (DeepMind's surface-distance, on each pair's crop), an
error taxonomy by object size (TIMISE's classes) and a per-object table;
:func:`combine_suites` combines images into a dataset the way each
reference does.

The one-to-one assignment (Cellpose's AP, the boundary metrics' pairs) is
:mod:`.stats`'s, imported from there; :func:`.compare.summarize` adds this
suite to the matching statistics.

No Qt, no napari.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
from scipy import ndimage

from ._arrays import sum_by, voxel_spacing
from .pairing import KINDS, Group, OverlapTable, review_groups
from .stats import check_threshold, matched_pairs, matching_stats

__all__ = [
    "CELLPOSE_THRESHOLDS",
    "ERROR_CLASSES",
    "SUITE_KEYS",
    "adapted_rand_error",
    "aggregated_jaccard_index",
    "average_precision_cellpose",
    "boundary_metrics",
    "combine_suites",
    "ctc_det",
    "ctc_seg",
    "error_taxonomy",
    "metric_suite",
    "object_groups",
    "object_table",
    "variation_of_information",
]

#: IoU thresholds of Cellpose's ``metrics.average_precision`` (its default).
CELLPOSE_THRESHOLDS = (0.5, 0.75, 0.9)

#: Error class of each review group kind (:data:`.pairing.KINDS`), named as TIMISE names
#: its associations; TIMISE's "background" (a predicted object on no reference) is "spurious".
ERROR_CLASSES = {
    "match": "one-to-one",
    "split": "over-segmentation",
    "merge": "under-segmentation",
    "complex": "many-to-many",
    "only_a": "missing",
    "only_b": "spurious",
}

#: Weights of the AOGM-D detection cost (Matula et al. 2015): vertex split, false negative,
#: false positive.
_AOGM_WEIGHTS = {"ns": 5, "fn": 10, "fp": 1}

#: Keys of :func:`metric_suite` that :func:`.compare.summarize` adds (all but the object table).
SUITE_KEYS = ("variation_of_information", "adapted_rand", "ctc_seg", "ctc_det", "aji",
              "ap_cellpose", "boundary", "taxonomy")

#: Per-pair fields of :func:`boundary_metrics`, summarised by mean and median.
_BOUNDARY_FIELDS = ("hausdorff", "hausdorff_percentile", "asd_a_to_b", "asd_b_to_a", "assd",
                    "surface_dice")

#: Most threads that measure boundary pairs, and fewest pairs per thread.
_MAX_THREADS = 8
_PAIRS_PER_THREAD = 16


# --------------------------------------------------------------------------- information metrics


def _contingency(table: OverlapTable):
    """Non-empty cells of the contingency table, each background as one more label.

    Derived from the table alone: an object's voxels on the other side's
    background are its size less its intersections, and the voxels that are
    background in both are what the image holds beyond the two foregrounds.

    Returns
    -------
    rows, cols : ndarray of int64, shape (n_cells,)
        Object index in A and in B; ``n_a`` (``n_b``) stands for A's (B's) background.
    counts : ndarray of int64, shape (n_cells,)
    size_a : ndarray of int64, shape (n_a + 1,)
        Voxels of each A label, the background last; ``size_b`` likewise.
    size_b : ndarray of int64, shape (n_b + 1,)
    """
    n_a, n_b = table.n_a, table.n_b
    total = math.prod(table.shape)
    inter = table.intersection
    a_only = table.sizes_a - sum_by(table.pair_a, inter, n_a)
    b_only = table.sizes_b - sum_by(table.pair_b, inter, n_b)
    fg_a, fg_b = int(table.sizes_a.sum()), int(table.sizes_b.sum())
    both_background = total - fg_a - fg_b + int(inter.sum())
    rows = np.concatenate([table.pair_a, np.arange(n_a), np.full(n_b, n_a), [n_a]])
    cols = np.concatenate([table.pair_b, np.full(n_a, n_b), np.arange(n_b), [n_b]])
    counts = np.concatenate([inter, a_only, b_only, [both_background]]).astype(np.int64)
    keep = counts > 0
    return (rows[keep].astype(np.int64), cols[keep].astype(np.int64), counts[keep],
            np.append(table.sizes_a, total - fg_a), np.append(table.sizes_b, total - fg_b))


def variation_of_information(
    table: OverlapTable, *, base: float = 2.0, ignore_background: bool = False
) -> dict:
    """Variation of information of B against A, as split and merge parts.

    With :math:`n_{ij}` the voxels labelled i in A and j in B (background 0
    included as a label on both sides), :math:`a_i`, :math:`b_j` the label
    sizes and N the voxels counted,

    .. math::

        H(B|A) = \\frac{1}{N} \\sum_{ij} n_{ij} \\log \\frac{a_i}{n_{ij}}, \\qquad
        H(A|B) = \\frac{1}{N} \\sum_{ij} n_{ij} \\log \\frac{b_j}{n_{ij}},

    and VI = H(B|A) + H(A|B) (Meilă 2007). ``split`` is H(B|A): the
    information B adds to A, high when B cuts A's objects (over-segmentation);
    ``merge`` is H(A|B), high when B joins them (under-segmentation).

    The same numbers as ``skimage.metrics.variation_of_information(A, B)``,
    which returns ``[H(B|A), H(A|B)]`` = ``[split, merge]`` (its image0 is A)
    in bits, background included (``ignore_labels=()``, its default).

    Parameters
    ----------
    table : OverlapTable
    base : float
        Base of the logarithm: 2 gives bits (scikit-image's), ``math.e`` nats.
    ignore_background : bool
        Leave out the voxels that are background in A (scikit-image's
        ``ignore_labels=(0,)``); B's background inside A's objects still counts.

    Returns
    -------
    dict
        ``split``, ``merge``, ``vi`` (float; NaN when no voxel is counted) and
        ``unit`` ("bits", "nats" or "log base <base>").

    Notes
    -----
    Over a dataset: scikit-image has no dataset form; :func:`combine_suites`
    averages the per-image values.

    Examples
    --------
    >>> from napari_mask_compare.pairing import overlap_table
    >>> a = np.array([[1, 1, 1, 1]])
    >>> b = np.array([[1, 1, 2, 2]])  # B cuts A's object in two
    >>> vi = variation_of_information(overlap_table(a, b))
    >>> vi["split"], vi["merge"], vi["unit"]
    (1.0, 0.0, 'bits')
    """
    if not base > 0 or base == 1:
        raise ValueError(f"base must be positive and not 1, got {base}")
    rows, cols, counts, size_a, size_b = _contingency(table)
    if ignore_background:
        keep = rows != table.n_a
        rows, cols, counts = rows[keep], cols[keep], counts[keep]
        size_b = sum_by(cols, counts, table.n_b + 1)
    total = int(counts.sum())
    if total == 0:
        split = merge = math.nan
    else:
        n = counts.astype(np.float64)
        scale = 1.0 / (total * math.log2(base))
        split = float(np.sum(n * np.log2(size_a[rows] / n)) * scale)
        merge = float(np.sum(n * np.log2(size_b[cols] / n)) * scale)
    unit = {2.0: "bits", math.e: "nats"}.get(float(base), f"log base {base}")
    return {"split": split, "merge": merge, "vi": split + merge, "unit": unit}


def adapted_rand_error(table: OverlapTable, *, alpha: float = 0.5) -> dict:
    """Adapted Rand error of B against A (SNEMI3D), with its precision and recall.

    Only voxels of A's objects count (A's background is left out); B's
    background inside them is one more B label. With :math:`n_{ij}` the
    voxels labelled i in A and j in B, :math:`t_i` A's object sizes,
    :math:`s_j` B's label sizes within A's objects and N their total, the
    numbers of voxel pairs that share a label are

    .. math::

        P_{AB} = \\sum_{ij} n_{ij}^2 - N, \\quad P_A = \\sum_i t_i^2 - N, \\quad
        P_B = \\sum_j s_j^2 - N,

    ``precision`` = :math:`P_{AB} / P_B` (pairs that B puts together and A
    does too: falls when B merges), ``recall`` = :math:`P_{AB} / P_A` (pairs
    that A puts together and B does too: falls when B splits), and
    ``error`` = :math:`1 - P_{AB} / (\\alpha P_A + (1 - \\alpha) P_B)`
    (Arganda-Carreras et al. 2015, Front. Neuroanat. 9:142).

    ``skimage.metrics.adapted_rand_error(image_true=A, image_test=B)``
    returns the same error, but its second and third values swapped with
    respect to its own documentation (scikit-image issue #6485): its
    ``prec`` is ``recall`` here and its ``rec`` is ``precision``.

    Parameters
    ----------
    table : OverlapTable
    alpha : float in [0, 1]
        Weight of :math:`P_A` (scikit-image's ``alpha``); 0.5 gives the
        F-score of precision and recall.

    Returns
    -------
    dict
        ``error``, ``precision``, ``recall``: float, NaN when no two voxels
        of A share an object (as scikit-image).

    Notes
    -----
    Over a dataset: :func:`combine_suites` averages the per-image values.

    Examples
    --------
    >>> from napari_mask_compare.pairing import overlap_table
    >>> a = np.array([[1, 2], [3, 2]])
    >>> b = np.array([[7, 7], [7, 7]])  # one B object over all of A
    >>> r = adapted_rand_error(overlap_table(a, b))
    >>> round(r["error"], 4), round(r["precision"], 4), r["recall"]
    (0.7143, 0.1667, 1.0)
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    inter = table.intersection.astype(np.float64)
    a_only = (table.sizes_a - sum_by(table.pair_a, table.intersection, table.n_a)).astype(
        np.float64)
    over_b = sum_by(table.pair_b, table.intersection, table.n_b).astype(np.float64)
    sizes_a = table.sizes_a.astype(np.float64)
    total = sizes_a.sum()
    b_background = a_only.sum()
    pairs_ab = np.float64(inter @ inter + a_only @ a_only - total)
    pairs_a = np.float64(sizes_a @ sizes_a - total)
    pairs_b = np.float64(over_b @ over_b + b_background * b_background - total)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "error": float(1.0 - pairs_ab / (alpha * pairs_a + (1 - alpha) * pairs_b)),
            "precision": float(pairs_ab / pairs_b),
            "recall": float(pairs_ab / pairs_a),
        }


# --------------------------------------------------------------------------- Cell Tracking


def _ctc_matches(table: OverlapTable) -> np.ndarray:
    """Pairs where B's object covers more than half of A's (CTC's detection test), bool."""
    return 2 * table.intersection > table.sizes_a[table.pair_a]


def ctc_seg(table: OverlapTable) -> dict:
    """The Cell Tracking Challenge's SEG measure of one frame.

    A reference object R is matched by the predicted object S that covers
    more than half of it, :math:`|R \\cap S| > |R| / 2` (at most one S can);
    SEG is the mean over reference objects of :math:`|R \\cap S| / |R \\cup S|`,
    0 for an unmatched R (Maška et al. 2014, Bioinformatics 30:1609). As
    py-ctcmetrics' ``seg``: 0 when A has no object.

    Returns
    -------
    dict
        ``seg`` (float), ``iou_sum`` (sum of the matched IoUs), ``n_reference``
        (objects of A), ``n_matched``.

    Notes
    -----
    Over a dataset: pooled, as over the frames of a sequence:
    ``sum(iou_sum) / max(sum(n_reference), 1)``.

    Examples
    --------
    >>> from napari_mask_compare.pairing import overlap_table
    >>> a = np.array([[1, 1, 1, 1, 0, 2, 2]])
    >>> b = np.array([[5, 5, 5, 0, 0, 6, 0]])  # 6 covers half of 2: not more
    >>> ctc_seg(overlap_table(a, b))["seg"]
    0.375
    """
    match = _ctc_matches(table)
    iou_sum = float(table.iou[match].sum())
    n_reference = table.n_a
    return {"seg": iou_sum / max(n_reference, 1), "iou_sum": iou_sum,
            "n_reference": n_reference, "n_matched": int(np.count_nonzero(match))}


def ctc_det(table: OverlapTable) -> dict:
    """The Cell Tracking Challenge's DET measure of one frame (normalised AOGM-D).

    With the detection test of :func:`ctc_seg` (B's object covers more than
    half of A's): ``fn`` counts A's objects that no B object matches, ``fp``
    B's objects that match no A object, and ``ns`` the vertex splits: a B
    object that matches k > 1 A objects needs k - 1 (CTC calls it a split
    operation; in segmentation terms B *merged* those objects). Then

    .. math::

        AOGM_D = 5\\,NS + 10\\,FN + 1\\,FP, \\quad AOGM_{D0} = 10\\,n_A, \\quad
        DET = 1 - \\min(AOGM_D, AOGM_{D0}) / AOGM_{D0}

    (Matula et al. 2015, PLoS ONE 10:e0144959), as py-ctcmetrics' ``det``.
    NaN when A has no object (0 / 0, as py-ctcmetrics).

    Returns
    -------
    dict
        ``det`` (float), ``aogm_d``, ``aogm_d0``, ``tp`` (A's objects
        matched), ``fn``, ``fp``, ``ns``, ``n_reference``, ``n_prediction``.

    Notes
    -----
    Over a dataset: the counts are pooled, as over the frames of a sequence,
    and DET is computed again from the sums.

    Examples
    --------
    >>> from napari_mask_compare.pairing import overlap_table
    >>> a = np.array([[1, 1, 0, 2, 2, 0, 3, 3]])
    >>> b = np.array([[5, 5, 5, 5, 5, 0, 0, 0]])  # 5 covers 1 and 2; 3 is missed
    >>> r = ctc_det(overlap_table(a, b))
    >>> r["ns"], r["fn"], r["fp"], round(r["det"], 4)
    (1, 1, 0, 0.5)
    """
    match = _ctc_matches(table)
    per_b = np.bincount(table.pair_b[match], minlength=table.n_b)
    tp = int(np.count_nonzero(match))
    return _det_record(tp=tp, fn=table.n_a - tp, fp=int(np.count_nonzero(per_b == 0)),
                       ns=int(np.maximum(per_b - 1, 0).sum()), n_reference=table.n_a,
                       n_prediction=table.n_b)


def _det_record(*, tp: int, fn: int, fp: int, ns: int, n_reference: int,
                n_prediction: int) -> dict:
    w = _AOGM_WEIGHTS
    aogm_d = w["ns"] * ns + w["fn"] * fn + w["fp"] * fp
    aogm_d0 = w["fn"] * n_reference
    det = 1 - min(aogm_d, aogm_d0) / aogm_d0 if aogm_d0 > 0 else math.nan
    return {"det": det, "aogm_d": aogm_d, "aogm_d0": aogm_d0, "tp": tp, "fn": fn, "fp": fp,
            "ns": ns, "n_reference": n_reference, "n_prediction": n_prediction}


# --------------------------------------------------------------------------- AJI, Cellpose AP


def _best_partners(first: np.ndarray, second: np.ndarray, iou: np.ndarray) -> np.ndarray:
    """Per object of ``first``, the pair of highest IoU (ties: lowest ``second``).

    Returns
    -------
    ndarray of intp
        Indices of pairs, one per object of ``first`` that overlaps something,
        in increasing object order.
    """
    if len(first) == 0:
        return np.zeros(0, dtype=np.intp)
    order = np.lexsort((second, -iou, first))
    head = np.flatnonzero(np.r_[True, first[order][1:] != first[order][:-1]])
    return order[head]


def aggregated_jaccard_index(table: OverlapTable) -> dict:
    """Aggregated Jaccard index (Kumar et al. 2017), as the MoNuSeg challenge computes it.

    Each reference object :math:`G_i` is paired with the predicted object
    :math:`S_j` of highest IoU among those it overlaps (ties: the lowest
    id); a predicted object may be paired with several. With C the sum of
    the pairs' intersections and U the sum of their unions, plus the sizes
    of reference objects that overlap nothing and of predicted objects
    paired with none,

    .. math:: AJI = C / U

    (Kumar et al. 2017, IEEE TMI 36:1550; MoNuSeg's
    ``Aggregated_Jaccard_Index_v1_0.m``). Other variants are not this one:
    AJI+ (Graham et al. 2019) pairs one-to-one, and Cellpose's
    ``aggregated_jaccard_index`` divides the intersections of its IoU >= 0.5
    matches by the union of the foregrounds.

    Returns
    -------
    dict
        ``aji`` (float; NaN when both masks are empty, as MoNuSeg's 0 / 0),
        ``intersection`` (C) and ``union`` (U) in voxels.

    Notes
    -----
    Over a dataset: MoNuSeg averages the per-image AJI; :func:`combine_suites`
    gives that as ``aji`` and ``sum(C) / sum(U)`` as ``aji_pooled``.

    Examples
    --------
    >>> from napari_mask_compare.pairing import overlap_table
    >>> a = np.array([[1, 1, 1, 1, 0, 0]])
    >>> b = np.array([[5, 5, 6, 6, 0, 7]])  # 5 and 6 tie on 1: 5 is paired, 6 and 7 unused
    >>> aggregated_jaccard_index(overlap_table(a, b))  # 2 / (4 + 2 + 1)
    {'aji': 0.2857142857142857, 'intersection': 2, 'union': 7}
    """
    best = _best_partners(table.pair_a, table.pair_b, table.iou)
    pa, pb, inter = table.pair_a[best], table.pair_b[best], table.intersection[best]
    used = np.zeros(table.n_b, dtype=bool)
    used[pb] = True
    intersection = int(inter.sum())
    union = (int((table.sizes_a[pa] + table.sizes_b[pb] - inter).sum())
             + int(table.sizes_a.sum() - table.sizes_a[pa].sum())
             + int(table.sizes_b[~used].sum()))
    return {"aji": intersection / union if union else math.nan,
            "intersection": intersection, "union": union}


def average_precision_cellpose(
    table: OverlapTable, *, thresholds: Iterable[float] = CELLPOSE_THRESHOLDS
) -> dict:
    """Cellpose's ``metrics.average_precision`` of one image.

    At each IoU threshold t, ``ap = tp / (tp + fp + fn)`` with the one-to-one
    matching of :func:`.stats.matching_stats` (Cellpose and StarDist solve the same
    assignment; this is StarDist's ``accuracy``, the DSB 2018 score). It is
    not COCO's AP (the area under a precision-recall curve). When neither
    mask has an object Cellpose gives 0 / 0 = NaN (StarDist's accuracy: 0).

    Parameters
    ----------
    thresholds : iterable of float in [0, 1]
        Cellpose's default: 0.5, 0.75, 0.9.

    Returns
    -------
    dict
        Lists, one value per threshold: ``thresholds``, ``ap``, ``tp``,
        ``fp``, ``fn``.

    Notes
    -----
    Over a dataset: Cellpose reports the mean of the per-image AP at each
    threshold (images where it is NaN left out); the counts are summed.

    Examples
    --------
    >>> from napari_mask_compare.pairing import overlap_table
    >>> a = np.array([[1, 1, 1, 1, 0, 2, 2]])
    >>> b = np.array([[3, 3, 3, 0, 0, 4, 4]])  # IoU 0.75 and 1
    >>> average_precision_cellpose(overlap_table(a, b))["ap"]
    [1.0, 1.0, 0.3333333333333333]
    """
    results = matching_stats(table, thresholds=thresholds)
    out = {"thresholds": [], "ap": [], "tp": [], "fp": [], "fn": []}
    for r in results:
        tp, fp, fn = r["tp"], r["fp"], r["fn"]
        out["thresholds"].append(r["thresh"])
        out["ap"].append(tp / (tp + fp + fn) if tp + fp + fn else math.nan)
        out["tp"].append(tp)
        out["fp"].append(fp)
        out["fn"].append(fn)
    return out


# --------------------------------------------------------------------------- boundary metrics


@lru_cache(maxsize=16)
def _surfel_areas(spacing: tuple[float, ...]) -> np.ndarray:
    """Length (2D) or area (3D) of the surface in a 2**ndim corner cell, per neighbour code.

    DeepMind's tables (``surface_distance.lookup_tables``), taken from the
    package so that the numbers are its own: its 3D table is not plain
    marching cubes (44 of the 256 codes differ), so no other table gives them.
    """
    from surface_distance import lookup_tables

    if len(spacing) == 2:
        return np.asarray(lookup_tables.create_table_neighbour_code_to_contour_length(spacing))
    return np.asarray(lookup_tables.create_table_neighbour_code_to_surface_area(spacing))


def _neighbour_codes(mask: np.ndarray) -> np.ndarray:
    """Code of each voxel corner from the 2**ndim voxels around it, shape + 1 per axis.

    Corner ``c`` sees voxels ``c - 1 + k`` for ``k`` in {0, 1} per axis (0
    outside the mask); voxel ``k`` sets bit ``2**ndim - 1 - int(k as binary)``,
    as surface-distance's ``ENCODE_NEIGHBOURHOOD_*_KERNEL`` under
    ``scipy.ndimage.correlate``.
    """
    ndim = mask.ndim
    padded = np.pad(mask.astype(np.uint8), 1)
    codes = np.zeros(tuple(s + 1 for s in mask.shape), dtype=np.uint8)
    for rank, k in enumerate(itertools.product((0, 1), repeat=ndim)):
        weight = np.uint8(1 << (2**ndim - 1 - rank))
        codes += padded[tuple(slice(o, o + s + 1) for o, s in zip(k, mask.shape))] * weight
    return codes


def _surface_distances(mask_a: np.ndarray, mask_b: np.ndarray, spacing, areas: np.ndarray):
    """surface-distance's ``compute_surface_distances`` of two non-empty masks.

    Surface elements sit on the voxel corners whose 2**ndim neighbours are
    neither all inside nor all outside; each has the length (2D) or area (3D)
    of its code; its distance to the other surface is the Euclidean distance
    transform (``sampling=spacing``) of the other's surface corners.

    Returns
    -------
    d_ab, area_a, d_ba, area_b : ndarray of float64
        Distances from A's surface elements to B's surface and their areas,
        sorted by (distance, area); then the same from B to A.
    """
    full = (1 << (2**mask_a.ndim)) - 1
    surfaces = []
    for mask in (mask_a, mask_b):
        codes = _neighbour_codes(mask)
        border = (codes != 0) & (codes != full)
        surfaces.append((border, areas[codes[border]]))
    (border_a, area_a), (border_b, area_b) = surfaces
    d_ab = ndimage.distance_transform_edt(~border_b, sampling=spacing)[border_a]
    d_ba = ndimage.distance_transform_edt(~border_a, sampling=spacing)[border_b]
    order_a, order_b = np.lexsort((area_a, d_ab)), np.lexsort((area_b, d_ba))
    return d_ab[order_a], area_a[order_a], d_ba[order_b], area_b[order_b]


def _percentile_distance(distances: np.ndarray, areas: np.ndarray, percent: float) -> float:
    """surface-distance's area-weighted percentile of sorted distances."""
    cumulative = np.cumsum(areas) / np.sum(areas)
    index = np.searchsorted(cumulative, percent / 100.0)
    return float(distances[min(index, len(distances) - 1)])


def boundary_metrics(
    table: OverlapTable,
    a: np.ndarray,
    b: np.ndarray,
    *,
    voxel_size: Sequence[float] | None = None,
    tolerance: float | None = None,
    thresh: float = 0.5,
    percentile: float = 95.0,
) -> dict:
    """Surface distances of each matched pair, as DeepMind's surface-distance computes them.

    The pairs are those of the one-to-one matching at IoU ``thresh``
    (:func:`.stats.matched_pairs`). Each pair is measured on its own crop (the
    union of the two bounding boxes, with one voxel of background around
    it), never on the whole volume. Surface elements (surfels) lie on voxel
    corners, found from the 2x2 (2x2x2) neighbourhood of each corner, each
    with its length (area) in physical units; each surfel's distance to the
    other surface comes from ``scipy.ndimage.distance_transform_edt`` with
    ``sampling=voxel_size`` (Nikolov et al. 2021, J Med Internet Res
    23:e26151; github.com/deepmind/surface-distance). Per pair:

    - ``hausdorff``: ``compute_robust_hausdorff(d, 100)``, the largest
      distance either way;
    - ``hausdorff_percentile``: ``compute_robust_hausdorff(d, percentile)``,
      the larger of the two area-weighted percentiles (HD95 by default);
    - ``asd_a_to_b``, ``asd_b_to_a``: ``compute_average_surface_distance``,
      area-weighted mean distance from A's surface to B's and back;
    - ``assd``: the mean of those two (MedPy's ``assd``);
    - ``surface_dice``: ``compute_surface_dice_at_tolerance(d, tolerance)``,
      the share of both surfaces' area within ``tolerance`` of the other.

    Parameters
    ----------
    table : OverlapTable
    a, b : array_like
        The label images of the table: numpy arrays, or anything whose
        slices ``np.asarray`` reads (memmap, zarr, dask); only crops are read.
    voxel_size : sequence of float, optional
        Spacing per axis, (y, x) or (z, y, x); 1 per axis when not given.
        Distances come out in its unit.
    tolerance : float, optional
        Of the surface Dice, in the unit of ``voxel_size``; default: the
        largest spacing (one voxel step along the coarsest axis).
    thresh : float in (0, 1]
        IoU of the matching whose pairs are measured.
    percentile : float in [0, 100]

    Returns
    -------
    dict
        ``pairs``: lists ``id_a``, ``id_b``, ``iou`` and each per-pair field
        above; ``mean`` and ``median`` of each field over the pairs (NaN when
        there is none); ``n_pairs``, ``thresh``, ``tolerance``, ``percentile``,
        ``voxel_size``.

    Notes
    -----
    Over a dataset: the pairs of all images are pooled before the mean and
    median are taken.
    """
    thresh = check_threshold(thresh)
    if thresh == 0:
        raise ValueError("thresh must be above 0: pairs that do not overlap have no crop")
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    if tuple(a.shape) != table.shape or tuple(b.shape) != table.shape:
        raise ValueError(f"a and b must have the table's shape {table.shape}, "
                         f"got {a.shape} and {b.shape}")
    ndim = len(table.shape)
    spacing = voxel_spacing(voxel_size, ndim)
    tolerance = max(spacing) if tolerance is None else float(tolerance)
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be at least 0, got {tolerance}")
    areas = _surfel_areas(spacing)
    chosen = matched_pairs(table, thresh=thresh)
    pa, pb = table.pair_a[chosen], table.pair_b[chosen]
    lo = np.minimum(table.bbox_a[pa, :ndim], table.bbox_b[pb, :ndim]).tolist()
    hi = np.maximum(table.bbox_a[pa, ndim:], table.bbox_b[pb, ndim:]).tolist()
    jobs = list(zip(table.ids_a[pa].tolist(), table.ids_b[pb].tolist(), lo, hi))

    def measure(job) -> tuple[float, ...]:
        id_a, id_b, start, stop = job
        box = tuple(map(slice, start, stop))
        return _pair_boundary(np.asarray(a[box]) == id_a, np.asarray(b[box]) == id_b, spacing,
                              areas, tolerance=tolerance, percentile=percentile)

    n_workers = min(os.cpu_count() or 1, _MAX_THREADS, max(1, len(jobs) // _PAIRS_PER_THREAD))
    if n_workers > 1:  # the distance transforms release the GIL
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            rows = list(pool.map(measure, jobs))
    else:
        rows = [measure(job) for job in jobs]
    columns = {field: [row[k] for row in rows] for k, field in enumerate(_BOUNDARY_FIELDS)}
    pairs = {"id_a": table.ids_a[pa].tolist(), "id_b": table.ids_b[pb].tolist(),
             "iou": table.iou[chosen].tolist(), **columns}
    return {"n_pairs": len(chosen), "thresh": thresh, "tolerance": tolerance,
            "percentile": float(percentile), "voxel_size": list(spacing),
            **_boundary_summary(columns), "pairs": pairs}


def _pair_boundary(mask_a, mask_b, spacing, areas, *, tolerance: float,
                   percentile: float) -> tuple[float, ...]:
    """The :data:`_BOUNDARY_FIELDS` of one pair, from its masks on the pair's crop."""
    d_ab, area_a, d_ba, area_b = _surface_distances(mask_a, mask_b, spacing, areas)
    asd_ab = float(np.sum(d_ab * area_a) / np.sum(area_a))
    asd_ba = float(np.sum(d_ba * area_b) / np.sum(area_b))
    near = np.sum(area_a[d_ab <= tolerance]) + np.sum(area_b[d_ba <= tolerance])
    return (
        max(_percentile_distance(d_ab, area_a, 100.0), _percentile_distance(d_ba, area_b, 100.0)),
        max(_percentile_distance(d_ab, area_a, percentile),
            _percentile_distance(d_ba, area_b, percentile)),
        asd_ab,
        asd_ba,
        (asd_ab + asd_ba) / 2,
        float(near / (np.sum(area_a) + np.sum(area_b))),
    )


def _boundary_summary(columns: dict) -> dict:
    """Mean and median over pairs of each per-pair field (NaN when there is no pair)."""
    def stat(fn, values):
        return float(fn(values)) if len(values) else math.nan

    return {name: {field: stat(fn, columns[field]) for field in _BOUNDARY_FIELDS}
            for name, fn in (("mean", np.mean), ("median", np.median))}


# --------------------------------------------------------------------------- errors and objects


def object_groups(table: OverlapTable, groups: Sequence[Group]):
    """Group index and kind (index into KINDS) of every object of A and of B.

    Returns
    -------
    group_a, kind_a : ndarray of int64, shape (n_a,)
    group_b, kind_b : ndarray of int64, shape (n_b,)
    """
    out = []
    for side, index in (("ids_a", table.index_a), ("ids_b", table.index_b)):
        members = [getattr(g, side) for g in groups]
        counts = [len(m) for m in members]
        n = table.n_a if side == "ids_a" else table.n_b
        if sum(counts) != n:
            raise ValueError("groups do not cover the table's objects: pass the review "
                             "groups of this table")
        where = index(list(itertools.chain.from_iterable(members)))
        group = np.empty(n, dtype=np.int64)
        kind = np.empty(n, dtype=np.int64)
        group[where] = np.repeat([g.index for g in groups], counts)
        kind[where] = np.repeat([KINDS.index(g.kind) for g in groups], counts)
        out += [group, kind]
    return tuple(out)


def _size_edges(table: OverlapTable, size_bins) -> list[float]:
    """Edges between size classes: given, or the terciles of A's sizes (B's when A is empty)."""
    if size_bins is not None:
        edges = [float(e) for e in size_bins]
        if any(e2 <= e1 for e1, e2 in zip(edges, edges[1:])):
            raise ValueError(f"size_bins must increase, got {size_bins!r}")
        return edges
    sizes = table.sizes_a if table.n_a else table.sizes_b
    if len(sizes) == 0:
        return []
    return [float(q) for q in np.quantile(sizes, [1 / 3, 2 / 3])]


def _size_labels(n_classes: int, size_labels) -> list[str]:
    if size_labels is not None:
        labels = [str(label) for label in size_labels]
        if len(labels) != n_classes:
            raise ValueError(f"size_labels needs {n_classes} names, got {len(labels)}")
        return labels
    if n_classes == 3:
        return ["small", "medium", "large"]
    return [f"class {k}" for k in range(n_classes)]


def error_taxonomy(
    table: OverlapTable,
    *,
    iou_threshold: float = 0.1,
    groups: Sequence[Group] | None = None,
    size_bins: Sequence[float] | None = None,
    size_labels: Sequence[str] | None = None,
) -> dict:
    """Objects counted by error class, overall and per size class (TIMISE's associations).

    Each object takes the class of its review group (:data:`ERROR_CLASSES`):
    one-to-one (1 A : 1 B), over-segmentation (1 A : n B), under-segmentation
    (n A : 1 B), many-to-many, missing (an A object linked to none) and
    spurious (a B object linked to none; TIMISE's "background"). As in
    TIMISE (Franco-Barranco et al. 2022), the classes count reference
    objects (an under-segmentation of 3 A objects counts 3) and spurious
    counts predicted objects. Unlike TIMISE, which links each predicted
    object to the reference object it overlaps most (any overlap), objects
    are linked here as in the review: by IoU >= ``iou_threshold``.

    Size classes bin the objects by size in voxels, ``edges[k-1] <= size <
    edges[k]`` (TIMISE's convention); a reference object by its own size, a
    spurious object by its own size (TIMISE puts them all in its first class).

    Parameters
    ----------
    iou_threshold : float in (0, 1]
        IoU that links objects (the review's).
    groups : sequence of Group, optional
        :func:`.pairing.review_groups` of ``table`` when already computed.
    size_bins : sequence of float, optional
        Increasing edges between size classes, in voxels; default: the
        terciles of A's object sizes (three classes, "small", "medium",
        "large"). Give the same edges to every image of a dataset.
    size_labels : sequence of str, optional
        Names of the ``len(size_bins) + 1`` classes.

    Returns
    -------
    dict
        ``counts``: ``{class: int}`` over all objects; ``size_classes``: list of
        ``{"label", "min", "max", "counts"}`` (``min`` inclusive, ``max``
        exclusive, None for no bound); ``size_edges``; ``iou_threshold``;
        ``n_reference``; ``n_prediction``.

    Notes
    -----
    Over a dataset: counts are summed (per size class only when every image
    used the same edges).

    Examples
    --------
    >>> from napari_mask_compare.pairing import overlap_table
    >>> a = np.array([[1, 1, 1, 1, 0, 2, 2, 0, 0]])
    >>> b = np.array([[5, 5, 6, 6, 0, 0, 0, 0, 7]])
    >>> counts = error_taxonomy(overlap_table(a, b), size_bins=[3])["counts"]
    >>> {name: n for name, n in counts.items() if n}
    {'over-segmentation': 1, 'missing': 1, 'spurious': 1}
    """
    if groups is None:
        groups = review_groups(table, iou_threshold=iou_threshold)
    _, kind_a, _, kind_b = object_groups(table, groups)
    edges = _size_edges(table, size_bins)
    labels = _size_labels(len(edges) + 1, size_labels)
    class_a = np.searchsorted(edges, table.sizes_a, side="right")
    class_b = np.searchsorted(edges, table.sizes_b, side="right")
    spurious = KINDS.index("only_b")

    def counts(select_a, select_b) -> dict:
        per_kind = np.bincount(kind_a[select_a], minlength=len(KINDS))
        out = {ERROR_CLASSES[k]: int(per_kind[KINDS.index(k)]) for k in KINDS if k != "only_b"}
        out["spurious"] = int(np.count_nonzero(kind_b[select_b] == spurious))
        return out

    bounds = [None, *edges, None]
    return {
        "counts": counts(slice(None), slice(None)),
        "size_classes": [
            {"label": label, "min": bounds[k], "max": bounds[k + 1],
             "counts": counts(class_a == k, class_b == k)}
            for k, label in enumerate(labels)
        ],
        "size_edges": edges,
        "iou_threshold": float(iou_threshold),
        "n_reference": table.n_a,
        "n_prediction": table.n_b,
    }


def object_table(
    table: OverlapTable,
    *,
    iou_threshold: float = 0.1,
    groups: Sequence[Group] | None = None,
    voxel_size: Sequence[float] | None = None,
) -> dict:
    """Every object of A and of B: its size, best partner, IoU, review group and kind.

    The best partner is the object of the other mask with the highest IoU
    (ties: the lowest id); None with IoU 0 when it overlaps nothing.

    Parameters
    ----------
    iou_threshold : float in (0, 1]
        IoU that links objects into review groups.
    groups : sequence of Group, optional
        :func:`.pairing.review_groups` of ``table`` when already computed.
    voxel_size : sequence of float, optional
        When given, a ``volume`` column (size times the voxel volume).

    Returns
    -------
    dict of lists (columns), one row per object, A's then B's, by id:
        ``side`` ("a" or "b"), ``id``, ``size`` (voxels), ``partner`` (id or
        None), ``iou``, ``group`` (index of its review group), ``kind`` (the
        group's kind), ``error`` (its :data:`ERROR_CLASSES` name), and
        ``volume`` with ``voxel_size``.

    Examples
    --------
    >>> from napari_mask_compare.pairing import overlap_table
    >>> t = object_table(overlap_table(np.array([[1, 1, 0]]), np.array([[4, 0, 5]])))
    >>> list(zip(t["side"], t["id"], t["partner"], t["iou"], t["kind"]))
    [('a', 1, 4, 0.5, 'match'), ('b', 4, 1, 0.5, 'match'), ('b', 5, None, 0.0, 'only_b')]
    """
    if groups is None:
        groups = review_groups(table, iou_threshold=iou_threshold)
    group_a, kind_a, group_b, kind_b = object_groups(table, groups)
    columns = {name: [] for name in ("side", "id", "size", "partner", "iou", "group", "kind",
                                     "error")}
    sides = (
        ("a", table.ids_a, table.sizes_a, group_a, kind_a, table.pair_a, table.pair_b,
         table.ids_b),
        ("b", table.ids_b, table.sizes_b, group_b, kind_b, table.pair_b, table.pair_a,
         table.ids_a),
    )
    for side, ids, sizes, group, kind, first, second, other_ids in sides:
        best = _best_partners(first, second, table.iou)
        partner = [None] * len(ids)
        iou = np.zeros(len(ids))
        for index, other in zip(first[best].tolist(), other_ids[second[best]].tolist()):
            partner[index] = other
        iou[first[best]] = table.iou[best]
        columns["side"] += [side] * len(ids)
        columns["id"] += ids.tolist()
        columns["size"] += sizes.tolist()
        columns["partner"] += partner
        columns["iou"] += iou.tolist()
        columns["group"] += group.tolist()
        kinds = [KINDS[k] for k in kind.tolist()]
        columns["kind"] += kinds
        columns["error"] += [ERROR_CLASSES[k] for k in kinds]
    if voxel_size is not None:
        unit = math.prod(voxel_spacing(voxel_size, len(table.shape)))
        columns["volume"] = [size * unit for size in columns["size"]]
    return columns


# --------------------------------------------------------------------------- the suite


def metric_suite(
    table: OverlapTable,
    *,
    a: np.ndarray | None = None,
    b: np.ndarray | None = None,
    voxel_size: Sequence[float] | None = None,
    iou_threshold: float = 0.1,
    groups: Sequence[Group] | None = None,
    ap_thresholds: Iterable[float] = CELLPOSE_THRESHOLDS,
    boundary_thresh: float = 0.5,
    tolerance: float | None = None,
    percentile: float = 95.0,
    size_bins: Sequence[float] | None = None,
    size_labels: Sequence[str] | None = None,
    objects: bool = True,
) -> dict:
    """Every metric of the suite for one image, as one JSON-ready dict.

    Parameters
    ----------
    table : OverlapTable
        A is the reference, B the prediction.
    a, b : ndarray, optional
        The label images, for the boundary metrics (read per matched pair's
        crop); without them the boundary metrics are skipped.
    voxel_size : sequence of float, optional
        Spacing per axis, for the boundary metrics and object volumes.
    iou_threshold : float in (0, 1]
        IoU that links objects into review groups (taxonomy and object table).
    groups : sequence of Group, optional
        The review groups of ``table`` when already computed.
    ap_thresholds : iterable of float
        Thresholds of :func:`average_precision_cellpose`.
    boundary_thresh, tolerance, percentile
        Options of :func:`boundary_metrics` (``thresh``, ``tolerance``,
        ``percentile``).
    size_bins, size_labels
        Options of :func:`error_taxonomy`.
    objects : bool
        Include the per-object table (:func:`object_table`).

    Returns
    -------
    dict
        ``variation_of_information``, ``adapted_rand``, ``ctc_seg``,
        ``ctc_det``, ``aji``, ``ap_cellpose``, ``boundary`` (or ``{"skipped":
        reason}``), ``taxonomy`` and, with ``objects``, ``objects``: each the
        dict of its function. Only JSON types: NaN (an undefined value, e.g.
        0 / 0) becomes None.

    Examples
    --------
    >>> from napari_mask_compare.pairing import overlap_table
    >>> a = np.array([[1, 1, 1, 1, 0, 2, 2]])
    >>> b = np.array([[3, 3, 4, 4, 0, 5, 5]])
    >>> suite = metric_suite(overlap_table(a, b), objects=False)
    >>> suite["ctc_seg"]["seg"], suite["ctc_det"]["det"], suite["boundary"]
    (0.5, 0.4, {'skipped': 'needs the label images a and b'})
    """
    if groups is None:
        groups = review_groups(table, iou_threshold=iou_threshold)
    out = {
        "variation_of_information": variation_of_information(table),
        "adapted_rand": adapted_rand_error(table),
        "ctc_seg": ctc_seg(table),
        "ctc_det": ctc_det(table),
        "aji": aggregated_jaccard_index(table),
        "ap_cellpose": average_precision_cellpose(table, thresholds=ap_thresholds),
        "boundary": _boundary_or_reason(table, a, b, voxel_size=voxel_size,
                                        tolerance=tolerance, thresh=boundary_thresh,
                                        percentile=percentile),
        "taxonomy": error_taxonomy(table, iou_threshold=iou_threshold, groups=groups,
                                   size_bins=size_bins, size_labels=size_labels),
    }
    out = _json_ready(out)
    if objects:  # Python types already, finite: no pass over its rows
        out["objects"] = object_table(table, iou_threshold=iou_threshold, groups=groups,
                                      voxel_size=voxel_size)
    return out


def _boundary_or_reason(table, a, b, **options) -> dict:
    if a is None or b is None:
        return {"skipped": "needs the label images a and b"}
    return boundary_metrics(table, a, b, **options)


def _json_ready(value):
    """``value`` with numpy scalars and arrays as Python ones, tuples as lists, NaN/inf as None."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def combine_suites(suites: Sequence[dict]) -> dict:
    """Dataset result of several :func:`metric_suite` results (one per image).

    Each metric is combined the way its reference does:

    - pooled: CTC SEG (matched IoUs summed over the reference objects of all
      images) and DET (counts summed, DET again from the sums), as
      py-ctcmetrics over the frames of a sequence; the boundary metrics
      (mean and median over the matched pairs of all images); the error
      taxonomy (counts summed; per size class only when every image used
      the same edges, else ``size_classes`` is None);
    - per-image mean: variation of information and adapted Rand error
      (scikit-image scores one image; CREMI averages volumes), AJI (as
      MoNuSeg; ``aji_pooled`` = sum of C / sum of U) and Cellpose's AP at
      each threshold (as Cellpose; counts summed). Undefined (None) values
      are left out of a mean.

    The per-object tables are not combined.

    Returns
    -------
    dict
        The keys of :func:`metric_suite` except ``objects``, plus ``n_images``.
        JSON types only.
    """
    if not suites:
        raise ValueError("no suites to combine")

    def mean(values) -> float:
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else math.nan

    vi = [s["variation_of_information"] for s in suites]
    rand = [s["adapted_rand"] for s in suites]
    seg = [s["ctc_seg"] for s in suites]
    det = [s["ctc_det"] for s in suites]
    aji = [s["aji"] for s in suites]
    ap = [s["ap_cellpose"] for s in suites]
    thresholds = ap[0]["thresholds"]
    if any(r["thresholds"] != thresholds for r in ap):
        raise ValueError("all images must have Cellpose AP at the same thresholds")
    iou_sum = sum(r["iou_sum"] for r in seg)
    n_reference = sum(r["n_reference"] for r in seg)
    out = {
        "variation_of_information": {
            **{key: mean(r[key] for r in vi) for key in ("split", "merge", "vi")},
            "unit": vi[0]["unit"]},
        "adapted_rand": {key: mean(r[key] for r in rand)
                         for key in ("error", "precision", "recall")},
        "ctc_seg": {"seg": iou_sum / max(n_reference, 1), "iou_sum": iou_sum,
                    "n_reference": n_reference,
                    "n_matched": sum(r["n_matched"] for r in seg)},
        "ctc_det": _det_record(**{key: sum(r[key] for r in det) for key in (
            "tp", "fn", "fp", "ns", "n_reference", "n_prediction")}),
        "aji": {"aji": mean(r["aji"] for r in aji),
                "aji_pooled": _safe_ratio(sum(r["intersection"] for r in aji),
                                          sum(r["union"] for r in aji)),
                "intersection": sum(r["intersection"] for r in aji),
                "union": sum(r["union"] for r in aji)},
        "ap_cellpose": {
            "thresholds": thresholds,
            "ap": [mean(r["ap"][k] for r in ap) for k in range(len(thresholds))],
            **{key: [sum(r[key][k] for r in ap) for k in range(len(thresholds))]
               for key in ("tp", "fp", "fn")}},
        "boundary": _combine_boundary([s["boundary"] for s in suites]),
        "taxonomy": _combine_taxonomy([s["taxonomy"] for s in suites]),
        "n_images": len(suites),
    }
    return _json_ready(out)


def _safe_ratio(x: float, y: float) -> float:
    return x / y if y else math.nan


def _combine_boundary(results: list[dict]) -> dict:
    skipped = [r["skipped"] for r in results if "skipped" in r]
    if skipped:
        return {"skipped": skipped[0]}
    first = results[0]
    for key in ("thresh", "tolerance", "percentile", "voxel_size"):
        if any(r[key] != first[key] for r in results):
            raise ValueError(f"all images must have boundary metrics with the same {key}")
    pairs = {key: [v for r in results for v in r["pairs"][key]] for key in first["pairs"]}
    columns = {field: [math.nan if v is None else v for v in pairs[field]]
               for field in _BOUNDARY_FIELDS}
    return {"n_pairs": len(pairs["id_a"]),
            **{key: first[key] for key in ("thresh", "tolerance", "percentile", "voxel_size")},
            **_boundary_summary(columns)}


def _combine_taxonomy(results: list[dict]) -> dict:
    names = list(results[0]["counts"])
    same_edges = all(r["size_edges"] == results[0]["size_edges"] for r in results)
    classes = None
    if same_edges:
        classes = [
            {**{key: c[key] for key in ("label", "min", "max")},
             "counts": {n: sum(r["size_classes"][k]["counts"][n] for r in results)
                        for n in names}}
            for k, c in enumerate(results[0]["size_classes"])
        ]
    return {"counts": {n: sum(r["counts"][n] for r in results) for n in names},
            "size_classes": classes,
            "size_edges": results[0]["size_edges"] if same_edges else None,
            "iou_threshold": results[0]["iou_threshold"],
            "n_reference": sum(r["n_reference"] for r in results),
            "n_prediction": sum(r["n_prediction"] for r in results)}
