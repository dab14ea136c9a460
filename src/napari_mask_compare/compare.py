"""The one comparison recipe: every statistic of B (the prediction) against A (the reference).

:func:`compare` is what the CLI, the report and the Metrics tab all call: the
overlap table and the review groups (:mod:`.pairing`), StarDist's matching
statistics (:mod:`.stats`) and every other metric (:mod:`.suite`), in one
JSON-ready summary (:func:`summarize`), with the per-object table.
:func:`combine` pools the summaries of several images; :func:`suite_lines`
says the metric suite in lines of text.

Both :mod:`.stats` and :mod:`.suite` sit below this module: neither imports it.

No Qt, no napari.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .pairing import KINDS, Group, OverlapTable, overlap_table, review_groups
from .stats import (
    DEFAULT_THRESHOLDS,
    average_precision_dsb2018,
    group_counts,
    matching_dataset,
    matching_stats,
    pixel_scores,
    pooled_pixel_scores,
)
from .suite import SUITE_KEYS, combine_suites, metric_suite, object_table

__all__ = ["Comparison", "combine", "compare", "suite_lines", "summarize"]


def summarize(
    table: OverlapTable,
    *,
    thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
    iou_threshold: float = 0.1,
    groups: Sequence[Group] | None = None,
    a: np.ndarray | None = None,
    b: np.ndarray | None = None,
    voxel_size: Sequence[float] | None = None,
) -> dict:
    """Every statistic of one comparison, as ``mask-compare stats --json`` prints it.

    Parameters
    ----------
    table : OverlapTable
        A is the reference, B the prediction.
    thresholds : iterable of float in [0, 1]
        Thresholds of the matching statistics.
    iou_threshold : float in (0, 1]
        IoU that links objects into review groups, for the group counts.
    groups : sequence of Group, optional
        The review groups when already computed (see :func:`.stats.group_counts`).
    a, b : ndarray, optional
        The label images: with them, the boundary metrics of the matched pairs.
    voxel_size : sequence of float, optional
        For the boundary metrics, in physical units.

    Returns
    -------
    dict
        ``matching``: list of dicts (:func:`.stats.matching_stats`); ``pixel``:
        :func:`.stats.pixel_scores`; ``ap_dsb2018``: float; ``groups``:
        :func:`.stats.group_counts`; and the keys of :func:`.suite.metric_suite` but
        ``objects`` (variation of information, adapted Rand error, CTC SEG and
        DET, AJI, Cellpose's AP, boundary metrics, error taxonomy). Only JSON
        types.
    """
    if groups is None:
        groups = review_groups(table, iou_threshold=iou_threshold)
    return {
        "matching": matching_stats(table, thresholds=thresholds),
        "pixel": pixel_scores(table),
        "ap_dsb2018": average_precision_dsb2018(table),
        "groups": group_counts(table, iou_threshold=iou_threshold, groups=groups),
        **metric_suite(table, a=a, b=b, voxel_size=voxel_size, iou_threshold=iou_threshold,
                       groups=groups, objects=False),
    }


def combine(summaries: Sequence[dict]) -> dict:
    """Dataset total of several :func:`summarize` results.

    Matching statistics are pooled as by :func:`.stats.matching_dataset`; pixel
    scores from the summed voxel counts; group counts are summed;
    ``ap_dsb2018`` is the mean over images, as the Data Science Bowl scored;
    the metric suite as :func:`.suite.combine_suites` (each as its reference does).

    Returns
    -------
    dict
        Same keys as :func:`summarize`, plus ``n_images``.
    """
    if not summaries:
        raise ValueError("no summaries to combine")
    pixel = [s["pixel"] for s in summaries]
    suites = [{key: s[key] for key in SUITE_KEYS} for s in summaries]
    return {
        "matching": matching_dataset([s["matching"] for s in summaries]),
        "pixel": pooled_pixel_scores(pixel),
        "ap_dsb2018": float(np.mean([s["ap_dsb2018"] for s in summaries])),
        "groups": {kind: sum(s["groups"][kind] for s in summaries) for kind in KINDS},
        **combine_suites(suites),
        "n_images": len(summaries),
    }


def _number(value, fmt: str = ".4f") -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else format(value, fmt)


def suite_lines(summary: dict) -> list[str]:
    """The metric suite of a :func:`summarize` result as lines of text, one per metric.

    Shared by ``mask-compare stats``, the report and the Metrics tab, so that
    they say the same thing. A is the reference, B the prediction.

    Examples
    --------
    >>> a = np.array([[1, 1, 0, 2]])
    >>> suite_lines(summarize(overlap_table(a, a)))[2]
    'CTC SEG 1.0000 · DET 1.0000 (FN 0, FP 0, splits 0)'
    """
    vi, rand, seg, det = (summary[k] for k in ("variation_of_information", "adapted_rand",
                                                 "ctc_seg", "ctc_det"))
    ap = summary["ap_cellpose"]
    lines = [
        f"VI {_number(vi['vi'])} {vi['unit']} (split {_number(vi['split'])}, merge "
        f"{_number(vi['merge'])})",
        f"adapted Rand error {_number(rand['error'])} (precision {_number(rand['precision'])},"
        f" recall {_number(rand['recall'])})",
        f"CTC SEG {_number(seg['seg'])} · DET {_number(det['det'])} (FN {det['fn']}, FP "
        f"{det['fp']}, splits {det['ns']})",
        f"AJI {_number(summary['aji']['aji'])} · AP (Cellpose) "
        + ", ".join(f"{t:g}: {_number(v)}" for t, v in zip(ap["thresholds"], ap["ap"])),
        "errors: " + ", ".join(f"{name} {n}" for name, n in summary["taxonomy"]["counts"].items()),
    ]
    boundary = summary["boundary"]
    if "skipped" in boundary:
        lines.append(f"boundary: not measured ({boundary['skipped']})")
    else:
        mean = boundary["mean"]
        lines.append(
            f"boundary of {boundary['n_pairs']} matched pairs, mean: Hausdorff "
            f"{_number(mean['hausdorff'], '.3g')}, HD{boundary['percentile']:g} "
            f"{_number(mean['hausdorff_percentile'], '.3g')}, ASSD {_number(mean['assd'], '.3g')}"
            f", surface Dice {_number(mean['surface_dice'])} (tolerance "
            f"{_number(boundary['tolerance'], 'g')})")
    return lines


@dataclass(frozen=True)
class Comparison:
    """One comparison of B (the prediction) against A (the reference).

    Attributes
    ----------
    table : OverlapTable
    groups : list of Group
        The review groups at ``iou_threshold``.
    summary : dict
        :func:`summarize` (JSON types).
    objects : dict or None
        :func:`.suite.object_table` (columns), when asked for.
    iou_threshold : float
    """

    table: OverlapTable
    groups: list
    summary: dict
    objects: dict | None
    iou_threshold: float


def compare(
    a: np.ndarray,
    b: np.ndarray,
    *,
    table: OverlapTable | None = None,
    groups: Sequence[Group] | None = None,
    thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
    iou_threshold: float = 0.1,
    voxel_size: Sequence[float] | None = None,
    boundary: bool = True,
    objects: bool = True,
) -> Comparison:
    """The one comparison recipe: the CLI, the report and the Metrics tab all call it.

    Parameters
    ----------
    a, b : ndarray of int, shape (y, x) or (z, y, x)
        A is the reference, B the prediction.
    table : OverlapTable, optional
        The overlap table of ``a`` and ``b`` when already computed (e.g. by a
        review): it is not computed again.
    groups : sequence of Group, optional
        Their review groups at ``iou_threshold``, when already computed.
    thresholds : iterable of float
        Thresholds of the matching statistics.
    iou_threshold : float
        IoU that links objects into review groups.
    voxel_size : sequence of float, optional
    boundary : bool
        Measure the boundary metrics (each matched pair's crop is read: the
        slowest part).
    objects : bool
        Make the per-object table.

    Returns
    -------
    Comparison

    Examples
    --------
    >>> a = np.array([[1, 1, 0, 2]])
    >>> result = compare(a, a, boundary=False)
    >>> result.summary["aji"]["aji"], result.objects["iou"]
    (1.0, [1.0, 1.0, 1.0, 1.0])
    """
    if table is None:
        table = overlap_table(a, b)
    if groups is None:
        groups = review_groups(table, iou_threshold=iou_threshold)
    summary = summarize(table, thresholds=thresholds, iou_threshold=iou_threshold,
                        groups=groups, a=a if boundary else None, b=b if boundary else None,
                        voxel_size=voxel_size)
    table_of_objects = (object_table(table, iou_threshold=iou_threshold, groups=groups,
                                     voxel_size=voxel_size) if objects else None)
    return Comparison(table, list(groups), summary, table_of_objects, iou_threshold)
