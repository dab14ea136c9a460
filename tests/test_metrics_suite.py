"""The metric suite: hand-computed cases, and each metric against its reference implementation.

References: scikit-image (variation of information, adapted Rand error), py-ctcmetrics
(CTC SEG and DET), DeepMind's surface-distance (boundary metrics); the aggregated Jaccard
index and Cellpose's average precision are written out here on dense arrays, step for step
as MoNuSeg's ``Aggregated_Jaccard_Index_v1_0.m`` and Cellpose's ``metrics.py`` compute them.
"""

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment
from skimage.metrics import adapted_rand_error as sk_adapted_rand_error
from skimage.metrics import variation_of_information as sk_variation_of_information
from skimage.segmentation import relabel_sequential

from napari_mask_compare import stats, suite
from napari_mask_compare._sample_data import SHAPE_2D, SHAPE_3D, VOXEL_SIZE_3D, synthetic_masks
from napari_mask_compare.pairing import overlap_table, review_groups

TOL = 1e-6


# --------------------------------------------------------------------------- references


def sk_vi(a, b):
    """scikit-image's [H(B|A), H(A|B)] (ids made sequential: its table is indexed by id)."""
    a, b = relabel_sequential(a)[0], relabel_sequential(b)[0]
    return sk_variation_of_information(a, b)


def sk_rand(a, b):
    """scikit-image's (error, prec, rec), NaN where it divides 0 by 0."""
    a, b = relabel_sequential(a)[0], relabel_sequential(b)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return tuple(float(v) for v in sk_adapted_rand_error(image_true=a, image_test=b))


def ctc_reference(a, b, tmp_path):
    """py-ctcmetrics' SEG, DET and AOGM counts of one frame, from TIFF files as it reads them."""
    tifffile = pytest.importorskip("tifffile")
    representations = pytest.importorskip("ctc_metrics.utils.representations")
    from ctc_metrics.metrics import det, seg

    ref, comp = tmp_path / "man_seg.tif", tmp_path / "mask.tif"
    # sequential ids, and a dtype that its in-place id offset (comp += max(ref) + 1) cannot wrap
    tifffile.imwrite(ref, relabel_sequential(a)[0].astype(np.uint32), photometric="minisblack")
    tifffile.imwrite(comp, relabel_sequential(b)[0].astype(np.uint32), photometric="minisblack")
    labels_ref, labels_comp, mapped_ref, mapped_comp, ious = representations.match(
        str(ref), str(comp))
    counts = representations.count_acyclic_graph_correction_operations(
        None, None, [labels_ref], [labels_comp], [mapped_ref], [mapped_comp])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return seg([labels_ref], [ious]), det(**counts), counts


def surface_reference(mask_a, mask_b, spacing, *, tolerance, percentile):
    """DeepMind's surface-distance on whole masks."""
    from surface_distance import metrics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its scipy.ndimage.filters
        d = metrics.compute_surface_distances(mask_a, mask_b, spacing)
    asd_ab, asd_ba = metrics.compute_average_surface_distance(d)
    return {
        "hausdorff": metrics.compute_robust_hausdorff(d, 100),
        "hausdorff_percentile": metrics.compute_robust_hausdorff(d, percentile),
        "asd_a_to_b": asd_ab,
        "asd_b_to_a": asd_ba,
        "assd": (asd_ab + asd_ba) / 2,
        "surface_dice": metrics.compute_surface_dice_at_tolerance(d, tolerance),
    }


def dense_aji(a, b):
    """MoNuSeg's Aggregated_Jaccard_Index_v1_0.m, on dense masks (one pass per object)."""
    gt_ids = [i for i in np.unique(a) if i != 0]
    pred_ids = [j for j in np.unique(b) if j != 0]
    uses = dict.fromkeys(pred_ids, 0)
    correct = union = 0
    for i in reversed(gt_ids):  # it walks the list from its end
        gt = a == i
        overlapping = [j for j in np.unique(b[gt]) if j != 0]
        if not overlapping:
            union += gt.sum()
            continue
        best, best_ji = None, 0.0
        for j in overlapping:  # increasing ids; a later one must beat the best strictly
            pred = b == j
            ji = (gt & pred).sum() / (gt | pred).sum()
            if ji > best_ji:
                best, best_ji = j, ji
        pred = b == best
        correct += (gt & pred).sum()
        union += (gt | pred).sum()
        uses[best] += 1
    union += sum((b == j).sum() for j, n in uses.items() if n == 0)
    return correct / union if union else math.nan


def dense_cellpose_ap(a, b, thresholds):
    """Cellpose's metrics.average_precision for one image (dense IoU, linear_sum_assignment)."""
    a, b = relabel_sequential(a)[0], relabel_sequential(b)[0]
    n_true, n_pred = int(a.max()), int(b.max())
    tp = np.zeros(len(thresholds))
    if n_pred > 0:
        overlap = np.zeros((n_true + 1, n_pred + 1))
        np.add.at(overlap, (a.ravel(), b.ravel()), 1)
        n_pixels_pred = overlap.sum(axis=0, keepdims=True)
        n_pixels_true = overlap.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = (overlap / (n_pixels_pred + n_pixels_true - overlap))[1:, 1:]
        iou[np.isnan(iou)] = 0.0
        for k, th in enumerate(thresholds):
            if min(iou.shape) == 0:
                continue
            n_min = min(iou.shape)
            costs = -(iou >= th).astype(float) - iou / (2 * n_min)
            true_ind, pred_ind = linear_sum_assignment(costs)
            tp[k] = np.count_nonzero(iou[true_ind, pred_ind] >= th)
    fp, fn = n_pred - tp, n_true - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return tp / (tp + fp + fn), tp, fp, fn


def dense_best_partner(a, b, obj, side):
    """(partner id or None, IoU) of object ``obj`` of one side, ties to the lowest id."""
    this, other = (a, b) if side == "a" else (b, a)
    mask = this == obj
    best, best_iou = None, 0.0
    for j in np.unique(other[mask]):
        if j == 0:
            continue
        m = other == j
        iou = (mask & m).sum() / (mask | m).sum()
        if iou > best_iou:
            best, best_iou = int(j), iou
    return best, best_iou


# --------------------------------------------------------------------------- strategies


@st.composite
def label_pairs(draw, *, related=None):
    """Small 2D or 3D label images with few ids; B often a perturbed A (so IoUs reach 0.5+).

    Labels are constant over runs along rows, with random run ends, so objects
    cut each other at every kind of IoU.
    """
    ndim = draw(st.sampled_from([2, 3]))
    shape = tuple(draw(st.lists(st.integers(1, 6 if ndim == 2 else 4), min_size=ndim,
                                max_size=ndim)))
    shape = shape[:-1] + (draw(st.integers(3, 12)),)
    ids = st.integers(0, draw(st.integers(1, 6)))
    a = _runs(draw, shape, ids)
    if related is None:
        related = draw(st.booleans())
    if related:
        b = a.copy()
        flat = b.reshape(-1)
        changes = st.lists(st.integers(0, flat.size - 1), max_size=max(1, flat.size // 3))
        for index in draw(changes):
            flat[index] = draw(ids)
        if draw(st.booleans()):  # ids of B unrelated to A's
            b = np.where(b > 0, b + 10, 0).astype(np.uint32)
    else:
        b = _runs(draw, shape, ids)
    return a, b


def _runs(draw, shape, ids):
    n_rows, n = int(np.prod(shape[:-1])), shape[-1]
    out = np.zeros((n_rows, n), np.uint32)
    for r in range(n_rows):
        cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=3)))
        for lo, hi in zip([0, *cuts], [*cuts, n]):
            out[r, lo:hi] = draw(ids)
    return out.reshape(shape)


def with_background(a, b):
    """The pair with the last voxel background in both (py-ctcmetrics needs a 0 in each)."""
    a, b = a.copy(), b.copy()
    a.reshape(-1)[-1] = 0
    b.reshape(-1)[-1] = 0
    return a, b


def sample_pairs():
    _, a2, b2 = synthetic_masks(SHAPE_2D, seed=3)
    _, a3, b3 = synthetic_masks(SHAPE_3D, seed=3)
    return [pytest.param(a2, b2, (1.0, 1.0), id="sample-2d"),
            pytest.param(a3, b3, VOXEL_SIZE_3D, id="sample-3d")]


def assert_close(ours, ref, what=""):
    if ref is None or (isinstance(ref, float) and math.isnan(ref)):
        assert ours is None or math.isnan(ours), what
    else:
        assert ours == pytest.approx(float(ref), abs=TOL, rel=TOL), what


# --------------------------------------------------------------------------- hand-computed


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4)])
def test_empty_vs_empty(shape):
    empty = np.zeros(shape, np.uint16)
    result = suite.metric_suite(overlap_table(empty, empty), a=empty, b=empty)
    json.dumps(result, allow_nan=False)
    assert result["variation_of_information"] == {"split": 0.0, "merge": 0.0, "vi": 0.0,
                                                  "unit": "bits"}
    assert result["adapted_rand"] == {"error": None, "precision": None, "recall": None}
    assert result["ctc_seg"]["seg"] == 0.0
    assert result["ctc_det"]["det"] is None  # 0 / 0, as py-ctcmetrics
    assert result["aji"] == {"aji": None, "intersection": 0, "union": 0}
    assert result["ap_cellpose"]["ap"] == [None, None, None]
    assert result["boundary"]["n_pairs"] == 0
    assert result["boundary"]["mean"]["hausdorff"] is None
    assert set(result["taxonomy"]["counts"].values()) == {0}
    assert result["objects"]["id"] == []


def test_empty_vs_full_and_full_vs_empty():
    empty = np.zeros((3, 4), np.uint8)
    full = np.full((3, 4), 9, np.uint8)
    r = suite.metric_suite(overlap_table(empty, full))
    assert r["variation_of_information"]["vi"] == 0.0  # one label on each side
    assert r["adapted_rand"]["error"] is None  # A has no object: no pair of voxels counts
    assert (r["ctc_seg"]["seg"], r["ctc_det"]["det"], r["ctc_det"]["fp"]) == (0.0, None, 1)
    assert r["aji"] == {"aji": 0.0, "intersection": 0, "union": 12}
    assert r["ap_cellpose"]["ap"] == [0.0, 0.0, 0.0]
    assert r["taxonomy"]["counts"]["spurious"] == 1

    r = suite.metric_suite(overlap_table(full, empty))
    # B's background inside A's object is one B label: the Rand scores see no error
    assert r["adapted_rand"] == {"error": 0.0, "precision": 1.0, "recall": 1.0}
    assert r["variation_of_information"]["vi"] == 0.0
    assert (r["ctc_seg"]["seg"], r["ctc_det"]["det"], r["ctc_det"]["fn"]) == (0.0, 0.0, 1)
    assert r["aji"]["aji"] == 0.0
    assert r["taxonomy"]["counts"]["missing"] == 1
    assert sk_rand(full, empty) == (0.0, 1.0, 1.0)


def split_case():
    """A: one 2 x 4 object in a 4 x 4 image; B: the same object cut into two 2 x 2 halves."""
    a = np.zeros((4, 4), np.uint16)
    a[1:3, :] = 7
    b = np.zeros_like(a)
    b[1:3, :2] = 3
    b[1:3, 2:] = 4
    return a, b


def test_one_object_vs_its_split():
    a, b = split_case()
    t = overlap_table(a, b)
    vi = suite.variation_of_information(t)
    # half the voxels are A's object; B needs one more bit there: H(B|A) = 8/16
    assert (vi["split"], vi["merge"]) == (0.5, 0.0)
    assert suite.variation_of_information(t, base=math.e)["split"] == pytest.approx(
        0.5 * math.log(2))
    assert suite.variation_of_information(t, ignore_background=True)["split"] == 1.0
    np.testing.assert_allclose(sk_vi(a, b), [vi["split"], vi["merge"]])

    rand = suite.adapted_rand_error(t)
    # pairs within A's object: 8*8-8 = 56; within both: 2*(4*4)-8 = 24; within B's parts: 24
    assert rand["precision"] == 1.0
    assert rand["recall"] == pytest.approx(24 / 56)
    assert rand["error"] == pytest.approx(1 - 24 / (0.5 * 56 + 0.5 * 24))
    sk_error, sk_prec, sk_rec = sk_rand(a, b)
    # scikit-image returns them swapped (its issue #6485): its "prec" is the recall here
    assert (sk_error, sk_prec, sk_rec) == pytest.approx(
        (rand["error"], rand["recall"], rand["precision"]))

    # each half covers exactly half of A's object: not more, so no CTC match
    assert suite.ctc_seg(t) == {"seg": 0.0, "iou_sum": 0.0, "n_reference": 1, "n_matched": 0}
    d = suite.ctc_det(t)
    assert (d["fn"], d["fp"], d["ns"], d["aogm_d"], d["aogm_d0"], d["det"]) == (1, 2, 0, 12, 10,
                                                                                 0.0)
    # the halves tie at IoU 0.5: the lower id (3) is A's partner, 4 is unused
    assert suite.aggregated_jaccard_index(t) == {"aji": 4 / 12, "intersection": 4, "union": 12}
    ap = suite.average_precision_cellpose(t)
    assert ap == {"thresholds": [0.5, 0.75, 0.9], "ap": [0.5, 0.0, 0.0], "tp": [1, 0, 0],
                  "fp": [1, 2, 2], "fn": [0, 1, 1]}
    assert suite.error_taxonomy(t)["counts"]["over-segmentation"] == 1
    objects = suite.object_table(t)
    assert list(zip(objects["side"], objects["id"], objects["partner"], objects["iou"],
                    objects["kind"], objects["error"])) == [
        ("a", 7, 3, 0.5, "split", "over-segmentation"),
        ("b", 3, 7, 0.5, "split", "over-segmentation"),
        ("b", 4, 7, 0.5, "split", "over-segmentation"),
    ]


def test_merge_counts_as_ctc_split_operation():
    a = np.array([[1, 1, 0, 2, 2, 0, 3, 3, 0, 4]], np.uint8)
    b = np.array([[5, 5, 5, 5, 5, 0, 0, 0, 0, 0]], np.uint8)
    d = suite.ctc_det(overlap_table(a, b))
    # 5 covers all of 1 and 2 (2 matches: 1 vertex split), 3 and 4 are missed
    assert (d["tp"], d["ns"], d["fn"], d["fp"]) == (2, 1, 2, 0)
    assert d["det"] == pytest.approx(1 - (5 * 1 + 10 * 2) / 40)
    assert suite.ctc_seg(overlap_table(a, b))["seg"] == pytest.approx((2 / 5 + 2 / 5) / 4)


def test_taxonomy_counts_reference_objects_per_size_class(every_kind_2d):
    a, b = every_kind_2d
    t = overlap_table(a, b)
    # A sizes: 16 (match), 32 (split), 16 + 16 (merge), 16 + 16 (complex), 12 (only A)
    # classes as TIMISE's: edges[k-1] <= size < edges[k]; 16 voxels is the middle class
    r = suite.error_taxonomy(t, size_bins=[16, 30], size_labels=["s", "m", "l"])
    assert r["counts"] == {"one-to-one": 1, "over-segmentation": 1, "under-segmentation": 2,
                           "many-to-many": 2, "missing": 1, "spurious": 1}
    by_label = {c["label"]: (c["min"], c["max"], c["counts"]) for c in r["size_classes"]}
    assert [v[:2] for v in by_label.values()] == [(None, 16.0), (16.0, 30.0), (30.0, None)]
    nonzero = {label: {k: n for k, n in v[2].items() if n} for label, v in by_label.items()}
    assert nonzero == {
        "s": {"missing": 1, "spurious": 1},  # 12 voxels each
        "m": {"one-to-one": 1, "under-segmentation": 2, "many-to-many": 2},  # 16 each
        "l": {"over-segmentation": 1},  # 32
    }
    # default: terciles of A's sizes, three classes
    default = suite.error_taxonomy(t)
    assert default["size_edges"] == pytest.approx(list(np.quantile(t.sizes_a, [1 / 3, 2 / 3])))
    assert [c["label"] for c in default["size_classes"]] == ["small", "medium", "large"]
    with pytest.raises(ValueError, match="increase"):
        suite.error_taxonomy(t, size_bins=[5, 5])


def test_object_table_matches_dense_best_partners(every_kind_2d):
    a, b = every_kind_2d
    t = overlap_table(a, b)
    groups = review_groups(t, iou_threshold=0.1)
    rows = suite.object_table(t, groups=groups, voxel_size=(0.5, 2.0))
    kind_of = {("a", i): g.kind for g in groups for i in g.ids_a}
    kind_of.update({("b", j): g.kind for g in groups for j in g.ids_b})
    assert len(rows["id"]) == t.n_a + t.n_b
    for side, obj, size, partner, iou, kind, volume in zip(
            rows["side"], rows["id"], rows["size"], rows["partner"], rows["iou"], rows["kind"],
            rows["volume"]):
        expected_partner, expected_iou = dense_best_partner(a, b, obj, side)
        assert (partner, iou) == (expected_partner, pytest.approx(expected_iou)), (side, obj)
        assert size == ((a if side == "a" else b) == obj).sum()
        assert volume == size * 1.0
        assert kind == kind_of[(side, obj)]


def assert_same_tree(ours, expected, path=""):
    """Nested dicts and lists equal, floats within TOL."""
    if isinstance(expected, dict):
        assert ours.keys() == expected.keys(), path
        for key in expected:
            assert_same_tree(ours[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(ours) == len(expected), path
        for k, (x, y) in enumerate(zip(ours, expected)):
            assert_same_tree(x, y, f"{path}[{k}]")
    elif isinstance(expected, float):
        assert ours == pytest.approx(expected, abs=TOL, rel=TOL), path
    else:
        assert ours == expected, path


def test_ids_permuted_and_huge_give_the_same_numbers():
    _, a, b = synthetic_masks(SHAPE_2D, seed=5)
    rng = np.random.default_rng(0)

    def huge_ids(labels):
        """Ids permuted at random among the largest uint32 values; 0 stays background."""
        n = int(labels.max())
        lut = np.zeros(n + 1, np.uint32)
        lut[1:] = (2**32 - 1) - rng.permutation(n)
        return lut[labels]

    a2, b2 = huge_ids(a), huge_ids(b)
    assert a2.max() == b2.max() == 2**32 - 1
    plain = suite.metric_suite(overlap_table(a, b), a=a, b=b, objects=False)
    moved = suite.metric_suite(overlap_table(a2, b2), a=a2, b=b2, objects=False)
    for key in ("variation_of_information", "adapted_rand", "ctc_seg", "ctc_det", "aji",
                "ap_cellpose", "taxonomy"):
        assert_same_tree(moved[key], plain[key], key)
    for key in ("n_pairs", "mean", "median"):
        assert_same_tree(moved["boundary"][key], plain["boundary"][key], key)
    # the references agree on the huge ids too
    check_information_metrics(a2, b2)
    check_aji_and_ap(a2, b2)
    objects = suite.object_table(overlap_table(a2, b2))
    assert 2**32 - 1 in objects["id"] and 2**32 - 1 in objects["partner"]
    assert json.loads(json.dumps(objects)) == objects


def test_anisotropic_voxels_hand_computed():
    a = np.zeros((8, 8), np.uint8)
    a[2:5, 2:6] = 1
    b = np.zeros_like(a)
    b[3:6, 2:6] = 2  # one row lower: IoU 8 / 16 = 0.5
    r = suite.boundary_metrics(overlap_table(a, b), a, b, voxel_size=(3.0, 1.0))
    assert r["n_pairs"] == 1 and r["tolerance"] == 3.0
    # the top and bottom edges are one row (3 units) from the other's, the sides overlap
    assert r["pairs"]["hausdorff"] == [3.0]
    assert r["pairs"]["surface_dice"] == [1.0]  # everything within one z step
    tight = suite.boundary_metrics(overlap_table(a, b), a, b, voxel_size=(3.0, 1.0),
                                   tolerance=0.5)
    assert 0 < tight["pairs"]["surface_dice"][0] < 1
    isotropic = suite.boundary_metrics(overlap_table(a, b), a, b)
    assert isotropic["pairs"]["hausdorff"] == [1.0]

    a3 = np.zeros((6, 6, 6), np.uint16)
    a3[1:4, 1:5, 1:5] = 5
    b3 = np.zeros_like(a3)
    b3[2:5, 1:5, 1:5] = 6
    r3 = suite.boundary_metrics(overlap_table(a3, b3), a3, b3, voxel_size=(2.5, 0.5, 0.5))
    assert r3["pairs"]["hausdorff"] == [2.5]
    ref = surface_reference(a3 == 5, b3 == 6, (2.5, 0.5, 0.5), tolerance=2.5, percentile=95)
    for field, value in ref.items():
        assert_close(r3["pairs"][field][0], value, field)
    with pytest.raises(ValueError, match="voxel_size"):
        suite.boundary_metrics(overlap_table(a3, b3), a3, b3, voxel_size=(1.0, 1.0))


# --------------------------------------------------------------------------- against references


def check_information_metrics(a, b):
    t = overlap_table(a, b)
    vi = suite.variation_of_information(t)
    ref = sk_vi(a, b)
    assert_close(vi["split"], ref[0], "split = H(B|A)")
    assert_close(vi["merge"], ref[1], "merge = H(A|B)")
    ignore = suite.variation_of_information(t, ignore_background=True)
    if a.any():
        a_seq, b_seq = relabel_sequential(a)[0], relabel_sequential(b)[0]
        ref = sk_variation_of_information(a_seq, b_seq, ignore_labels=(0,))
        assert_close(ignore["split"], ref[0], "split, background ignored")
        assert_close(ignore["merge"], ref[1], "merge, background ignored")
    rand = suite.adapted_rand_error(t)
    error, prec, rec = sk_rand(a, b)
    assert_close(rand["error"], error, "error")
    assert_close(rand["recall"], prec, "recall (scikit-image's prec)")
    assert_close(rand["precision"], rec, "precision (scikit-image's rec)")


def check_ctc(a, b, tmp_path):
    a, b = with_background(a, b)
    t = overlap_table(a, b)
    if t.n_a == 0 or t.n_b == 0:  # py-ctcmetrics cannot count an empty frame
        event("ctc: an empty mask")
        return
    ref_seg, ref_det, counts = ctc_reference(a, b, tmp_path)
    ours_seg, ours_det = suite.ctc_seg(t), suite.ctc_det(t)
    assert_close(ours_seg["seg"], ref_seg, "SEG")
    assert_close(ours_det["det"], ref_det, "DET")
    assert (ours_det["fn"], ours_det["fp"], ours_det["ns"], ours_det["tp"]) == (
        counts["FN"], counts["FP"], counts["NS"], counts["TP"])


def check_aji_and_ap(a, b):
    t = overlap_table(a, b)
    assert_close(suite.aggregated_jaccard_index(t)["aji"], dense_aji(a, b), "AJI")
    thresholds = [0.5, 0.75, 0.9]
    ours = suite.average_precision_cellpose(t, thresholds=thresholds)
    ap, tp, fp, fn = dense_cellpose_ap(a, b, thresholds)
    for k in range(len(thresholds)):
        assert_close(ours["ap"][k], ap[k], f"AP at {thresholds[k]}")
        assert (ours["tp"][k], ours["fp"][k], ours["fn"][k]) == (tp[k], fp[k], fn[k])


def check_boundary(a, b, spacing, *, tolerance=None, percentile=95.0):
    t = overlap_table(a, b)
    r = suite.boundary_metrics(t, a, b, voxel_size=spacing, tolerance=tolerance,
                               percentile=percentile)
    matched = stats.matched_pairs(t, thresh=0.5)
    assert r["n_pairs"] == len(matched) == len(r["pairs"]["id_a"])
    tolerance = max(spacing) if tolerance is None else tolerance
    for k, (ia, ib) in enumerate(zip(r["pairs"]["id_a"], r["pairs"]["id_b"])):
        ref = surface_reference(a == ia, b == ib, spacing, tolerance=tolerance,
                                percentile=percentile)
        for field, value in ref.items():
            assert_close(r["pairs"][field][k], value, f"{field} of ({ia}, {ib})")
    return r


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(pair=label_pairs())
def test_information_metrics_match_scikit_image_on_random_pairs(pair):
    check_information_metrics(*pair)


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(pair=label_pairs())
def test_ctc_matches_py_ctcmetrics_on_random_pairs(pair, tmp_path):
    check_ctc(*pair, tmp_path)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(pair=label_pairs())
def test_aji_and_cellpose_ap_match_dense_references_on_random_pairs(pair):
    check_aji_and_ap(*pair)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(pair=label_pairs(related=True),
       spacing_seed=st.integers(0, 2**16), tolerance=st.sampled_from([None, 0.3, 1.0, 2.5]),
       percentile=st.sampled_from([95.0, 50.0, 100.0]))
def test_boundary_matches_surface_distance_on_random_pairs(pair, spacing_seed, tolerance,
                                                           percentile):
    a, b = pair
    spacing = tuple(np.random.default_rng(spacing_seed).uniform(0.3, 3.0, a.ndim).round(2))
    r = check_boundary(a, b, spacing, tolerance=tolerance, percentile=percentile)
    event(f"{min(r['n_pairs'], 3)}+ matched pairs")


@pytest.mark.parametrize(("a", "b", "spacing"), sample_pairs())
def test_every_metric_matches_its_reference_on_the_sample_data(a, b, spacing, tmp_path):
    check_information_metrics(a, b)
    check_ctc(a, b, tmp_path)
    check_aji_and_ap(a, b)
    r = check_boundary(a, b, spacing)
    assert r["n_pairs"] > 3


def test_boundary_pairs_measured_in_threads_give_the_same_lists(monkeypatch):
    _, a, b = synthetic_masks(SHAPE_3D, seed=3)
    t = overlap_table(a, b)
    serial = suite.boundary_metrics(t, a, b, voxel_size=VOXEL_SIZE_3D)
    monkeypatch.setattr(suite, "_PAIRS_PER_THREAD", 1)
    monkeypatch.setattr(suite.os, "cpu_count", lambda: 4)
    threaded = suite.boundary_metrics(t, a, b, voxel_size=VOXEL_SIZE_3D)
    assert threaded == serial and serial["n_pairs"] > 3


def test_py_ctcmetrics_needs_background_in_the_reference(tmp_path):
    """Its match() drops the first reference id when the reference has no background voxel."""
    a = np.ones((4, 6), np.uint16)
    a[:, 3:] = 2
    b = np.where(a == 1, 1, 0).astype(np.uint16)  # object 1 exact, object 2 missed
    ref_seg, _, _ = ctc_reference(a, b, tmp_path)
    assert ref_seg == 0.0  # only object 2 was looked at
    assert suite.ctc_seg(overlap_table(a, b))["seg"] == 0.5
    ref_seg, _, _ = ctc_reference(*with_background(a, b), tmp_path)
    assert ref_seg == 0.5


# --------------------------------------------------------------------------- suite and dataset


def test_metric_suite_is_json_ready_and_reuses_groups(every_kind_2d):
    a, b = every_kind_2d
    t = overlap_table(a, b)
    groups = review_groups(t, iou_threshold=0.3)
    result = suite.metric_suite(t, a=a, b=b, voxel_size=(0.5, 0.5), groups=groups,
                                iou_threshold=0.3)
    assert json.loads(json.dumps(result, allow_nan=False)) == result
    assert result["taxonomy"]["counts"]["spurious"] == sum(g.kind == "only_b" for g in groups)
    assert result["boundary"]["voxel_size"] == [0.5, 0.5]
    assert result["objects"]["volume"][0] == result["objects"]["size"][0] * 0.25
    assert "objects" not in suite.metric_suite(t, objects=False)
    assert suite.metric_suite(t)["boundary"] == {"skipped": "needs the label images a and b"}


def test_combine_suites_pools_or_averages_as_the_references_do(every_kind_2d):
    a1, b1 = every_kind_2d
    a2, b2 = split_case()
    t1, t2 = overlap_table(a1, b1), overlap_table(a2, b2)
    s1 = suite.metric_suite(t1, a=a1, b=b1, size_bins=[20])
    s2 = suite.metric_suite(t2, a=a2, b=b2, size_bins=[20])
    both = suite.combine_suites([s1, s2])
    json.dumps(both, allow_nan=False)
    assert both["n_images"] == 2
    # pooled: CTC over the reference objects of both images
    seg1, seg2 = suite.ctc_seg(t1), suite.ctc_seg(t2)
    assert both["ctc_seg"]["seg"] == pytest.approx(
        (seg1["iou_sum"] + seg2["iou_sum"]) / (seg1["n_reference"] + seg2["n_reference"]))
    d1, d2 = suite.ctc_det(t1), suite.ctc_det(t2)
    assert both["ctc_det"]["det"] == pytest.approx(
        1 - (d1["aogm_d"] + d2["aogm_d"]) / (d1["aogm_d0"] + d2["aogm_d0"]))
    # per-image means: VI, Rand, AJI (MoNuSeg), Cellpose AP
    assert both["variation_of_information"]["vi"] == pytest.approx(
        (s1["variation_of_information"]["vi"] + s2["variation_of_information"]["vi"]) / 2)
    assert both["aji"]["aji"] == pytest.approx((s1["aji"]["aji"] + s2["aji"]["aji"]) / 2)
    assert both["aji"]["aji_pooled"] == pytest.approx(
        (s1["aji"]["intersection"] + s2["aji"]["intersection"])
        / (s1["aji"]["union"] + s2["aji"]["union"]))
    assert both["ap_cellpose"]["ap"][0] == pytest.approx(
        (s1["ap_cellpose"]["ap"][0] + s2["ap_cellpose"]["ap"][0]) / 2)
    assert both["ap_cellpose"]["tp"][0] == s1["ap_cellpose"]["tp"][0] + s2["ap_cellpose"]["tp"][0]
    # boundary: pooled over all pairs
    hd = s1["boundary"]["pairs"]["hausdorff"] + s2["boundary"]["pairs"]["hausdorff"]
    assert both["boundary"]["n_pairs"] == len(hd)
    assert both["boundary"]["median"]["hausdorff"] == pytest.approx(np.median(hd))
    # taxonomy: summed, per size class too (same edges)
    assert both["taxonomy"]["counts"]["over-segmentation"] == 2
    # the split object of image 2 (8 voxels) is small, that of image 1 (32 voxels) large
    assert [c["counts"]["over-segmentation"] for c in both["taxonomy"]["size_classes"]] == [1, 1]
    # an undefined value is left out of a mean
    empty = np.zeros((3, 3), np.uint8)
    s3 = suite.metric_suite(overlap_table(empty, empty), a=empty, b=empty)
    with_empty = suite.combine_suites([s1, s3])
    assert with_empty["aji"]["aji"] == pytest.approx(s1["aji"]["aji"])
    assert with_empty["taxonomy"]["size_classes"] is None  # the edges differ
    with pytest.raises(ValueError):
        suite.combine_suites([])
