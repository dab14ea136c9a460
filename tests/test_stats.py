"""Matching statistics: hand-computed cases and StarDist's dense algorithm as the reference."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import linear_sum_assignment
from skimage.segmentation import relabel_sequential

from napari_mask_compare import stats
from napari_mask_compare.compare import combine, summarize
from napari_mask_compare.pairing import KINDS, overlap_table, review_groups

# --------------------------------------------------------------------------- reference


def stardist_matching(y_true, y_pred, thresh):
    """StarDist's ``matching`` (criterion "iou"), step for step, on dense matrices.

    Returns the per-threshold dict and the objective value of its assignment
    (count of pairs >= thresh, then the scores of all assigned pairs).
    """
    y_true = relabel_sequential(y_true)[0]
    y_pred = relabel_sequential(y_pred)[0]
    x, y = y_true.ravel(), y_pred.ravel()
    overlap = np.zeros((1 + int(x.max()), 1 + int(y.max())), dtype=np.uint)
    np.add.at(overlap, (x, y), 1)
    n_pixels_pred = np.sum(overlap, axis=0, keepdims=True)
    n_pixels_true = np.sum(overlap, axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):  # 0 / 0 in the background cell when it is empty
        scores = (overlap / (n_pixels_pred + n_pixels_true - overlap))[1:, 1:]
    n_true, n_pred = scores.shape
    n_matched = min(n_true, n_pred)
    not_trivial = n_matched > 0 and np.any(scores >= thresh)
    objective = (0, 0.0)
    if not_trivial:
        costs = -(scores >= thresh).astype(float) - scores / (2 * n_matched)
        true_ind, pred_ind = linear_sum_assignment(costs)
        assert n_matched == len(true_ind) == len(pred_ind)
        match_ok = scores[true_ind, pred_ind] >= thresh
        tp = np.count_nonzero(match_ok)
        objective = (tp, float(scores[true_ind, pred_ind].sum()))
    else:
        tp = 0
    fp = n_pred - tp
    fn = n_true - tp
    sum_matched_score = np.sum(scores[true_ind, pred_ind][match_ok]) if not_trivial else 0.0

    def safe(x, y):
        return x / y if y > 0 else 0.0

    return {
        "criterion": "iou", "thresh": thresh, "fp": fp, "tp": tp, "fn": fn,
        "precision": tp / (tp + fp) if tp > 0 else 0,
        "recall": tp / (tp + fn) if tp > 0 else 0,
        "accuracy": tp / (tp + fp + fn) if tp > 0 else 0,
        "f1": (2 * tp) / (2 * tp + fp + fn) if tp > 0 else 0,
        "n_true": n_true, "n_pred": n_pred,
        "mean_true_score": safe(sum_matched_score, n_true),
        "mean_matched_score": safe(sum_matched_score, tp),
        "panoptic_quality": safe(sum_matched_score, tp + fp / 2 + fn / 2),
    }, objective


def objective_of(table, thresh):
    """The objective value of this package's assignment, as :func:`stardist_matching`'s."""
    chosen, candidate = stats._assignment(table, thresh)
    tp = min(table.n_a, table.n_b) if thresh == 0 else int((chosen & candidate).sum())
    return tp, float(table.iou[chosen].sum())


def stardist_dataset(per_image):
    """StarDist's ``matching_dataset_lazy(by_image=False)`` accumulation, for one threshold."""
    acc = {}
    for s in per_image:
        for k, v in s.items():
            if k == "mean_true_score":
                acc[k] = acc.setdefault(k, 0) + v * s["n_true"]
            elif k not in ("criterion", "thresh"):
                acc[k] = acc.setdefault(k, 0) + v
    tp, fp, fn, n_true = acc["tp"], acc["fp"], acc["fn"], acc["n_true"]
    score = acc["mean_true_score"]
    acc.update(
        precision=tp / (tp + fp) if tp > 0 else 0,
        recall=tp / (tp + fn) if tp > 0 else 0,
        accuracy=tp / (tp + fp + fn) if tp > 0 else 0,
        f1=(2 * tp) / (2 * tp + fp + fn) if tp > 0 else 0,
        mean_true_score=score / n_true if n_true > 0 else 0.0,
        mean_matched_score=score / tp if tp > 0 else 0.0,
        panoptic_quality=score / (tp + fp / 2 + fn / 2) if tp + fp / 2 + fn / 2 > 0 else 0.0,
    )
    return acc


def assert_same(ours, ref, *, ref_objective=None, our_objective=None):
    """Counts exactly, scores to 1e-9 (or an exact tie of two optimal assignments)."""
    assert list(ours) == list(stats.MATCHING_FIELDS)
    for key in ("criterion", "fp", "tp", "fn", "n_true", "n_pred"):
        assert ours[key] == ref[key], key
    for key in ("precision", "recall", "accuracy", "f1"):
        assert ours[key] == pytest.approx(ref[key], abs=1e-12), key
    scores_equal = all(
        math.isclose(ours[k], ref[k], abs_tol=1e-9)
        for k in ("mean_true_score", "mean_matched_score", "panoptic_quality")
    )
    if not scores_equal:
        # allowed only when both assignments are optimal: the same objective value
        assert ref_objective is not None, (ours, ref)
        assert our_objective[0] == ref_objective[0]
        assert our_objective[1] == pytest.approx(ref_objective[1], abs=1e-12), (ours, ref)


# --------------------------------------------------------------------------- hand-computed


def row(*values):
    return np.array([values], dtype=np.uint32)


def test_fields_are_stardists_in_its_order():
    t = overlap_table(row(1, 1), row(1, 1))
    (result,) = stats.matching_stats(t, thresholds=[0.5])
    assert tuple(result) == stats.MATCHING_FIELDS
    assert result["criterion"] == "iou"


def test_empty_vs_empty():
    t = overlap_table(np.zeros((4, 5), np.uint16), np.zeros((4, 5), np.uint16))
    for r in stats.matching_stats(t, thresholds=[0, 0.5, 1]):
        assert (r["tp"], r["fp"], r["fn"], r["n_true"], r["n_pred"]) == (0, 0, 0, 0, 0)
        assert r["precision"] == r["recall"] == r["f1"] == r["panoptic_quality"] == 0.0
    assert stats.pixel_scores(t) == {"dice": 0.0, "iou": 0.0, "foreground_a": 0,
                                     "foreground_b": 0, "intersection": 0}
    assert stats.average_precision_dsb2018(t) == 0.0
    assert stats.group_counts(t) == dict.fromkeys(KINDS, 0)
    assert len(stats.matched_pairs(t, thresh=0.5)) == 0


@pytest.mark.parametrize("reference_empty", [True, False])
def test_empty_vs_full(reference_empty):
    empty, full = np.zeros((3, 3), np.uint16), np.full((3, 3), 9, np.uint16)
    a, b = (empty, full) if reference_empty else (full, empty)
    t = overlap_table(a, b)
    for r in stats.matching_stats(t, thresholds=[0, 0.1, 0.5]):
        assert r["tp"] == 0
        assert (r["fp"], r["fn"]) == ((1, 0) if reference_empty else (0, 1))
        assert r["mean_true_score"] == r["mean_matched_score"] == r["panoptic_quality"] == 0.0
    assert stats.pixel_scores(t)["dice"] == 0.0
    assert stats.group_counts(t)["only_b" if reference_empty else "only_a"] == 1


def test_shifted_square_2d_around_its_iou():
    a = np.zeros((6, 8), np.uint16)
    a[1:5, 1:5] = 1
    b = np.zeros_like(a)
    b[1:5, 2:6] = 4  # 12 shared of 20: IoU 0.6
    t = overlap_table(a, b)
    below, at, above = stats.matching_stats(t, thresholds=[0.5, 0.6, np.nextafter(0.6, 1)])
    assert (below["tp"], at["tp"], above["tp"]) == (1, 1, 0)
    assert at["mean_matched_score"] == pytest.approx(0.6)
    assert at["mean_true_score"] == pytest.approx(0.6)
    assert at["panoptic_quality"] == pytest.approx(0.6)
    assert (above["fp"], above["fn"], above["f1"]) == (1, 1, 0.0)
    assert stats.pixel_scores(t)["dice"] == pytest.approx(2 * 12 / 32)
    assert stats.pixel_scores(t)["iou"] == pytest.approx(12 / 20)


def test_split_in_halves_at_exactly_one_half():
    # A 1 is cut by B into two halves: both IoU exactly 0.5; one of them matches
    t = overlap_table(row(1, 1, 1, 1), row(2, 2, 3, 3))
    at, above = stats.matching_stats(t, thresholds=[0.5, np.nextafter(0.5, 1)])
    assert (at["tp"], at["fp"], at["fn"]) == (1, 1, 0)
    assert at["precision"] == 0.5 and at["recall"] == 1.0 and at["f1"] == pytest.approx(2 / 3)
    assert at["accuracy"] == 0.5
    assert at["mean_matched_score"] == 0.5 and at["mean_true_score"] == 0.5
    assert at["panoptic_quality"] == pytest.approx(0.5 / 1.5)
    assert (above["tp"], above["fp"], above["fn"]) == (0, 2, 1)
    assert len(stats.matched_pairs(t, thresh=0.5)) == 1


def test_just_above_one_half_is_unique_and_solver_free(monkeypatch):
    # IoU 3/5 and 1/5: above 0.5 the one candidate is taken without a solver
    monkeypatch.setattr(stats, "_max_weight_matching", None)
    t = overlap_table(row(1, 1, 1, 1, 0), row(2, 2, 2, 3, 3))
    (r,) = stats.matching_stats(t, thresholds=[0.55])
    assert (r["tp"], r["fp"], r["fn"]) == (1, 1, 0)
    assert r["mean_matched_score"] == pytest.approx(0.75)


def test_ties_are_broken_by_the_scores_of_all_assigned_pairs_as_in_stardist():
    # A 2 (9 px) has candidates B 2 (IoU 3/9) and B 3 (IoU 5/12) at 0.3. Taking B 3 gives
    # the higher matched score, but StarDist's costs also count the sub-threshold pair
    # A 3-B 3 (IoU 1/8): A 2-B 2 + A 3-B 3 = 0.458 beats A 2-B 3 = 0.417.
    a = row(2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 3)
    b = row(2, 2, 2, 1, 3, 3, 3, 3, 3, 3, 3, 3)
    t = overlap_table(a, b)
    (r,) = stats.matching_stats(t, thresholds=[0.3])
    assert (r["tp"], r["fp"], r["fn"]) == (1, 2, 1)
    assert r["mean_matched_score"] == pytest.approx(1 / 3)
    assert r["mean_true_score"] == pytest.approx(1 / 6)
    (pair,) = stats.matched_pairs(t, thresh=0.3)
    assert (t.ids_a[t.pair_a[pair]], t.ids_b[t.pair_b[pair]]) == (2, 2)
    ref, _ = stardist_matching(a, b, 0.3)
    assert_same(r, ref)


def test_threshold_zero_counts_disjoint_objects_as_matches():
    # StarDist at thresh 0: every assigned pair counts, even one that does not overlap
    t = overlap_table(row(1, 0, 0, 2), row(0, 5, 0, 0))
    (r,) = stats.matching_stats(t, thresholds=[0])
    assert (r["tp"], r["fp"], r["fn"]) == (1, 0, 1)
    assert r["mean_matched_score"] == 0.0


def test_3d_two_objects():
    a = np.zeros((4, 5, 6), np.uint16)
    a[0:2, 0:2, 0:2] = 1          # 8 voxels
    a[2:4, 2:5, 2:6] = 2          # 24 voxels
    b = np.zeros_like(a)
    b[0:2, 0:2, 0:1] = 3          # 4 of A 1: IoU 0.5
    b[2:4, 2:5, 3:6] = 7          # 18 of A 2: IoU 0.75
    b[0, 4, 5] = 8                # a false positive
    t = overlap_table(a, b)
    r = {x["thresh"]: x for x in stats.matching_stats(t, thresholds=[0.5, 0.6, 0.8])}
    assert (r[0.5]["tp"], r[0.5]["fp"], r[0.5]["fn"]) == (2, 1, 0)
    assert r[0.5]["mean_matched_score"] == pytest.approx(0.625)
    assert r[0.5]["panoptic_quality"] == pytest.approx(1.25 / 2.5)
    assert (r[0.6]["tp"], r[0.6]["fp"], r[0.6]["fn"]) == (1, 2, 1)
    assert r[0.8]["tp"] == 0
    assert stats.pixel_scores(t) == {"dice": 2 * 22 / (32 + 23), "iou": 22 / 33,
                                     "foreground_a": 32, "foreground_b": 23,
                                     "intersection": 22}


def test_huge_non_sequential_ids_and_permutations_change_nothing():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 6, size=(3, 9, 11)).astype(np.uint32)
    b = rng.integers(0, 6, size=(3, 9, 11)).astype(np.uint32)
    thresholds = [0.05, 0.1, 0.2, 0.3, 0.5, 0.6]
    expected = summarize(overlap_table(a, b), thresholds=thresholds)
    huge = np.array([0, 2**32 - 1, 2**31, 7, 2**32 - 2, 65536], dtype=np.uint32)
    perm_a, perm_b = rng.permutation(5) + 1, rng.permutation(5) + 1
    lut_a = huge[np.r_[0, perm_a]]
    lut_b = huge[np.r_[0, perm_b]]
    got = summarize(overlap_table(lut_a[a], lut_b[b]), thresholds=thresholds)
    assert got["pixel"] == expected["pixel"]
    assert got["groups"] == expected["groups"]
    assert got["ap_dsb2018"] == pytest.approx(expected["ap_dsb2018"], abs=1e-12)
    for g, e in zip(got["matching"], expected["matching"]):
        assert_same(g, e)
    ref, _ = stardist_matching(lut_a[a].astype(np.int64), lut_b[b].astype(np.int64), 0.2)
    assert_same(stats.matching_stats(overlap_table(lut_a[a], lut_b[b]), thresholds=[0.2])[0],
                ref)


def test_average_precision_dsb2018_by_hand():
    # IoU 0.8 and 0.6: thresholds 0.5..0.95 give 2, 2, 2, 1, 1, 1, 1, 0, 0, 0 matches of 2
    a = np.zeros((2, 10), np.uint8)
    b = np.zeros_like(a)
    a[0, :4] = 1
    b[0, :5] = 1              # 4 / 5 = 0.8
    a[1, :6] = 2
    b[1, :10] = 2             # 6 / 10 = 0.6
    accuracy = [1, 1, 1, 1 / 3, 1 / 3, 1 / 3, 1 / 3, 0, 0, 0]
    t = overlap_table(a, b)
    assert stats.average_precision_dsb2018(t) == pytest.approx(np.mean(accuracy))


def test_group_counts_of_every_kind(every_kind_2d):
    t = overlap_table(*every_kind_2d)
    assert stats.group_counts(t) == dict.fromkeys(KINDS, 1)
    # at 0.6 only the match links; groups computed elsewhere are counted as given
    expected = {**dict.fromkeys(KINDS, 0), "match": 1, "only_a": 6, "only_b": 6}
    assert stats.group_counts(t, iou_threshold=0.6) == expected
    assert stats.group_counts(t, groups=review_groups(t, iou_threshold=0.6)) == expected
    assert summarize(t, groups=review_groups(t, iou_threshold=0.6))["groups"] == expected


def test_summarize_is_plain_json():
    import json

    a = np.zeros((5, 5), np.uint16)
    a[1:3, 1:3] = 1
    s = summarize(overlap_table(a, a), thresholds=[0.5, 0.9])
    assert json.loads(json.dumps(s)) == s
    assert [r["tp"] for r in s["matching"]] == [1, 1]
    assert s["ap_dsb2018"] == 1.0 and s["pixel"]["dice"] == 1.0


def test_bad_thresholds_are_refused():
    t = overlap_table(row(1), row(1))
    with pytest.raises(ValueError, match="thresh must be in"):
        stats.matching_stats(t, thresholds=[1.5])
    with pytest.raises(ValueError, match="thresh must be in"):
        stats.matched_pairs(t, thresh=-0.1)


def test_dataset_pools_counts_and_scores_not_ratios():
    # image 1: one perfect match; image 2: one match of IoU 0.6 and 3 false positives
    one = stats.matching_stats(overlap_table(row(1, 1), row(1, 1)), thresholds=[0.5])
    two = stats.matching_stats(overlap_table(row(1, 1, 1, 0, 0, 0, 0, 0, 0),
                                             row(1, 1, 1, 1, 1, 2, 3, 0, 4)),
                               thresholds=[0.5])
    (pooled,) = stats.matching_dataset([one, two])
    assert (pooled["tp"], pooled["fp"], pooled["fn"]) == (2, 3, 0)
    assert pooled["precision"] == pytest.approx(2 / 5)  # not the mean of 1 and 1/4
    assert pooled["mean_matched_score"] == pytest.approx((1 + 0.6) / 2)
    assert pooled["panoptic_quality"] == pytest.approx(1.6 / 3.5)
    for key, value in stardist_dataset([one[0], two[0]]).items():
        assert pooled[key] == pytest.approx(value, abs=1e-12), key


def test_combine_sums_pixels_and_groups_and_averages_ap():
    s1 = summarize(overlap_table(row(1, 1), row(1, 1)), thresholds=[0.5])
    s2 = summarize(overlap_table(row(1, 1, 0, 0), row(0, 1, 1, 2)), thresholds=[0.5])
    total = combine([s1, s2])
    assert total["n_images"] == 2
    assert total["pixel"]["intersection"] == 3
    assert total["pixel"]["dice"] == pytest.approx(2 * 3 / (4 + 5))
    assert total["groups"]["match"] == s1["groups"]["match"] + s2["groups"]["match"]
    assert total["groups"]["only_b"] == 1
    assert total["ap_dsb2018"] == pytest.approx((s1["ap_dsb2018"] + s2["ap_dsb2018"]) / 2)
    with pytest.raises(ValueError, match="same thresholds"):
        stats.matching_dataset([s1["matching"], stats.matching_stats(
            overlap_table(row(1), row(1)), thresholds=[0.6])])


# --------------------------------------------------------------------------- against StarDist

THRESHOLDS = st.one_of(
    st.sampled_from([0.0, 0.1, 0.2, 0.25, 1 / 3, 0.4, 0.5, np.nextafter(0.5, 0), 0.6, 2 / 3,
                     0.75, 1.0]),
    st.floats(0, 1),
)


@st.composite
def label_pairs(draw):
    """Small 2D or 3D label images with few ids, overlapping in many ways.

    Half of them are made of runs along rows (objects of a few pixels that
    cut each other at various IoUs), half of independent random pixels.
    """
    ndim = draw(st.sampled_from([2, 3]))
    shape = tuple(draw(st.lists(st.integers(1, 7 if ndim == 2 else 4), min_size=ndim,
                                max_size=ndim)))
    if draw(st.booleans()):
        shape = shape[:-1] + (draw(st.integers(4, 16)),)
    n_ids = draw(st.integers(1, 7))
    ids = st.integers(0, n_ids)
    if draw(st.booleans()):
        return (draw(arrays(np.uint32, shape, elements=ids)),
                draw(arrays(np.uint32, shape, elements=ids)))
    return tuple(_runs(draw, shape, ids) for _ in range(2))


def _runs(draw, shape, ids):
    """Labels constant over runs of each row, with run ends drawn at random."""
    n_rows, n = int(np.prod(shape[:-1])), shape[-1]
    out = np.zeros((n_rows, n), np.uint32)
    for r in range(n_rows):
        cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=3))) if n > 1 else []
        for lo, hi in zip([0, *cuts], [*cuts, n]):
            out[r, lo:hi] = draw(ids)
    return out.reshape(shape)


@pytest.mark.parametrize("solver", ["dense", "sparse"])
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(pair=label_pairs(), thresh=THRESHOLDS)
def test_matches_stardist_on_random_images(solver, pair, thresh):
    a, b = pair
    if solver == "sparse":
        stats_limit = stats._DENSE_LIMIT
        stats._DENSE_LIMIT = 0
    try:
        table = overlap_table(a, b)
        (ours,) = stats.matching_stats(table, thresholds=[thresh])
        ref, ref_objective = stardist_matching(a.astype(np.int64), b.astype(np.int64), thresh)
        assert_same(ours, ref, ref_objective=ref_objective,
                    our_objective=objective_of(table, thresh))
        matched = stats.matched_pairs(table, thresh=thresh)
        if thresh > 0:
            assert len(matched) == ours["tp"]
            assert np.all(table.iou[matched] >= thresh)
        assert len(np.unique(table.pair_a[matched])) == len(matched)
        assert len(np.unique(table.pair_b[matched])) == len(matched)
    finally:
        if solver == "sparse":
            stats._DENSE_LIMIT = stats_limit


@given(images=st.lists(label_pairs(), min_size=1, max_size=4), thresh=THRESHOLDS)
def test_dataset_matches_stardist_accumulation(images, thresh):
    ours = [stats.matching_stats(overlap_table(a, b), thresholds=[thresh]) for a, b in images]
    (pooled,) = stats.matching_dataset(ours)
    expected = stardist_dataset([r[0] for r in ours])
    for key in ("tp", "fp", "fn", "n_true", "n_pred"):
        assert pooled[key] == expected[key]
    for key in ("precision", "recall", "accuracy", "f1", "mean_true_score",
                "mean_matched_score", "panoptic_quality"):
        assert pooled[key] == pytest.approx(expected[key], abs=1e-12), key


@given(pair=label_pairs())
def test_pixel_scores_match_dense_foregrounds(pair):
    a, b = pair
    fa, fb = a > 0, b > 0
    inter, union, total = (fa & fb).sum(), (fa | fb).sum(), fa.sum() + fb.sum()
    got = stats.pixel_scores(overlap_table(a, b))
    assert got["intersection"] == inter
    assert got["dice"] == pytest.approx(2 * inter / total if total else 0.0)
    assert got["iou"] == pytest.approx(inter / union if union else 0.0)
