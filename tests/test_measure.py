"""Morphology on shapes with known answers, and property filters."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.draw import disk, ellipse
from skimage.measure import regionprops, regionprops_table
from skimage.morphology import ball

from napari_mask_compare import measure

# Tolerances, from the staircase of digital shapes (see the module docstring):
#   area / volume: voxel count times voxel size, exact; against the continuous shape 1 %;
#   perimeter of a square 2 % (4 n - 1.2), of a disk 6 % (contour follows the steps);
#   surface area of a cube 4 % (chamfered edges), of a ball 10 % (staircase, over);
#   circularity of a disk in [0.88, 1], sphericity of a ball in [0.88, 0.95];
#   elongation of symmetric shapes 1 to 1e-9, of an ellipse a / b to 2 %.


def only(props):
    assert len(props["label"]) == 1
    return {k: v[0] for k, v in props.items()}


@pytest.mark.parametrize("spacing", [1.0, 0.5])
def test_square(spacing):
    n = 20
    labels = np.zeros((30, 40), np.uint16)
    labels[3:3 + n, 11:11 + n] = 4
    p = only(measure.measure_objects(labels, voxel_size=(spacing, spacing)))
    assert p["label"] == 4 and p["npixels"] == n * n
    assert p["area"] == n * n * spacing**2
    assert p["perimeter"] == pytest.approx(4 * n * spacing, rel=0.02)
    assert p["circularity"] == pytest.approx(math.pi / 4, rel=0.03)
    assert p["elongation"] == pytest.approx(1, abs=1e-9)
    assert p["bbox_diameter"] == pytest.approx(n * spacing * math.sqrt(2))
    assert (p["centroid-0"], p["centroid-1"]) == (3 + (n - 1) / 2, 11 + (n - 1) / 2)
    assert [p[f"bbox-{k}"] for k in range(4)] == [3, 11, 3 + n, 11 + n]


def test_disk():
    r = 20
    labels = np.zeros((50, 60), np.uint32)
    labels[disk((24, 30), r)] = 2**32 - 1
    p = only(measure.measure_objects(labels))
    assert p["label"] == 2**32 - 1
    assert p["area"] == pytest.approx(math.pi * r * r, rel=0.01)
    assert p["perimeter"] == pytest.approx(2 * math.pi * r, rel=0.06)
    assert 0.88 <= p["circularity"] <= 1.0
    assert p["elongation"] == pytest.approx(1, abs=1e-9)
    assert (p["centroid-0"], p["centroid-1"]) == pytest.approx((24, 30))


def test_ellipse_elongation_and_anisotropic_pixels():
    labels = np.zeros((60, 100), np.uint16)
    labels[ellipse(30, 50, 10, 30)] = 3
    p = only(measure.measure_objects(labels))
    assert p["elongation"] == pytest.approx(3, rel=0.02)
    assert p["circularity"] < 0.7
    # a 10 x 20 pixel rectangle with pixels twice as tall as wide is a 20 x 20 square
    labels = np.zeros((20, 30), np.uint16)
    labels[2:12, 5:25] = 1
    p = only(measure.measure_objects(labels, voxel_size=(2, 1)))
    assert p["area"] == 400
    assert p["elongation"] == pytest.approx(1, rel=0.01)
    assert p["perimeter"] == pytest.approx(80, rel=0.02)
    assert p["bbox_diameter"] == pytest.approx(20 * math.sqrt(2))


@pytest.mark.parametrize("spacing", [(1, 1, 1), (0.5, 0.5, 0.5)])
def test_cube(spacing):
    n = 20
    labels = np.zeros((24, 25, 26), np.uint16)
    labels[2:2 + n, 3:3 + n, 4:4 + n] = 6
    p = only(measure.measure_objects(labels, voxel_size=spacing))
    s = spacing[0]
    assert p["npixels"] == n**3 and p["volume"] == n**3 * s**3
    assert p["surface_area"] == pytest.approx(6 * (n * s) ** 2, rel=0.04)
    assert p["sphericity"] == pytest.approx(math.pi ** (1 / 3) * 6 ** (2 / 3) / 6, rel=0.04)
    assert p["bbox_diameter"] == pytest.approx(n * s * math.sqrt(3))
    assert [p[f"centroid-{k}"] for k in range(3)] == [2 + 9.5, 3 + 9.5, 4 + 9.5]
    assert [p[f"bbox-{k}"] for k in range(6)] == [2, 3, 4, 22, 23, 24]
    assert "perimeter" not in p and "circularity" not in p


def test_anisotropic_cuboid_is_a_cube():
    labels = np.zeros((14, 24, 24), np.uint16)
    labels[2:12, 2:22, 2:22] = 1  # 10 slices 2 apart: a 20^3 cube
    p = only(measure.measure_objects(labels, voxel_size=(2, 1, 1)))
    assert p["volume"] == 8000
    assert p["surface_area"] == pytest.approx(2400, rel=0.05)


def test_ball():
    r = 15
    labels = np.zeros((40, 40, 40), np.uint16)
    labels[3:34, 3:34, 3:34][ball(r).astype(bool)] = 9
    p = only(measure.measure_objects(labels))
    assert p["volume"] == pytest.approx(4 / 3 * math.pi * r**3, rel=0.01)
    assert p["surface_area"] == pytest.approx(4 * math.pi * r * r, rel=0.10)
    assert 0.88 <= p["sphericity"] <= 0.95
    assert [p[f"centroid-{k}"] for k in range(3)] == [18, 18, 18]


def test_columns_follow_property_names_and_objects_may_be_given():
    labels = np.zeros((10, 12), np.uint16)
    labels[1:4, 1:4] = 4464
    labels[5:9, 6:11] = 2
    props = measure.measure_objects(labels)
    assert tuple(props) == measure.property_names(2)
    assert props["label"].tolist() == [2, 4464]
    ids, _, boxes = measure.find_objects(labels)
    subset = measure.measure_objects(labels, objects=(ids[1:], boxes[1:]))
    assert subset["label"].tolist() == [4464]
    assert subset["npixels"].tolist() == [9]
    with pytest.raises(ValueError, match="bboxes must have shape"):
        measure.measure_objects(labels, objects=(ids, boxes[:, :2]))


@given(labels=arrays(np.uint32, st.tuples(st.integers(1, 12), st.integers(1, 12)),
                     elements=st.sampled_from([0, 0, 1, 7, 2**16, 2**32 - 1])),
       spacing=st.sampled_from([(1.0, 1.0), (0.5, 2.0)]), data=st.data())
def test_elongation_is_regionprops_of_each_object_whatever_its_id(labels, spacing, data):
    """Ids up to 2**32 - 1, any subset of the objects in any order: each object's
    major / minor axis is that of ``regionprops`` on the object alone."""
    ids, _, boxes = measure.find_objects(labels)
    pick = data.draw(st.permutations(range(len(ids)))).copy()[:data.draw(
        st.integers(0, len(ids)))]
    props = measure.measure_objects(labels, voxel_size=spacing, objects=(ids[pick], boxes[pick]))
    assert props["label"].tolist() == ids[pick].tolist()
    for label, elongation in zip(ids[pick].tolist(), props["elongation"].tolist()):
        ref = regionprops((labels == label).astype(np.uint8), spacing=spacing)[0]
        major, minor = ref.axis_major_length, ref.axis_minor_length
        expected = major / minor if minor > 1e-12 else (math.inf if major > 1e-12 else math.nan)
        assert elongation == pytest.approx(expected, nan_ok=True)


def test_an_object_not_in_the_labels_is_named():
    labels = np.zeros((4, 4), np.uint16)
    labels[1:3, 1:3] = 5
    with pytest.raises(ValueError, match="object 9 is not in labels"):
        measure.measure_objects(labels, objects=(np.array([9]), np.array([[0, 0, 4, 4]])))


def test_empty_labels_and_bad_voxel_size():
    props = measure.measure_objects(np.zeros((3, 4, 5), np.uint8))
    assert tuple(props) == measure.property_names(3)
    assert all(len(v) == 0 for v in props.values())
    with pytest.raises(ValueError, match="voxel_size must be 2 positive"):
        measure.measure_objects(np.ones((3, 3), np.uint8), voxel_size=(1, 0))
    with pytest.raises(ValueError, match="2D or 3D"):
        measure.property_names(4)


def test_degenerate_objects_give_nan_or_inf_not_errors():
    labels = np.zeros((5, 7), np.uint16)
    labels[1, 1:6] = 1   # a line: minor axis 0
    labels[3, 3] = 2     # one pixel
    p = measure.measure_objects(labels)
    assert p["elongation"][0] == math.inf
    assert math.isnan(p["elongation"][1])
    labels3 = np.zeros((3, 3, 3), np.uint8)
    labels3[1, 1, 1] = 1
    p3 = only(measure.measure_objects(labels3))
    assert p3["surface_area"] > 0 and p3["npixels"] == 1


@given(labels=st.sampled_from([2, 3]).flatmap(
    lambda nd: arrays(np.uint16, st.tuples(*[st.integers(1, 9)] * nd),
                      elements=st.sampled_from([0, 1, 2, 300, 65535]))))
def test_sizes_centroids_boxes_agree_with_regionprops_table(labels):
    props = measure.measure_objects(labels)
    ref = regionprops_table(labels.astype(np.int64),
                            properties=("label", "area", "centroid", "bbox"))
    assert props["label"].tolist() == ref["label"].tolist()
    assert props["npixels"].tolist() == ref["area"].astype(int).tolist()
    for k in range(labels.ndim):
        np.testing.assert_allclose(props[f"centroid-{k}"], ref[f"centroid-{k}"])
    for k in range(2 * labels.ndim):
        assert props[f"bbox-{k}"].tolist() == ref[f"bbox-{k}"].tolist()


# --------------------------------------------------------------------------- filters


def small_and_round():
    labels = np.zeros((40, 60), np.uint16)
    labels[2:5, 2:5] = 1                     # 9 px, compact: small
    labels[10:12, 2:60] = 2                  # 116 px, a long bar: not round, < 200
    labels[disk((28, 20), 9)] = 3            # ~250 px disk: kept
    labels[20:39, 40:42] = 4                 # 38 px bar: small and not round
    return labels


def test_filter_or_of_ands_lists_conditions_met():
    labels = small_and_round()
    rules = [("npixels", "<", 50), [("circularity", "<", 0.5), ("npixels", "<", 200)]]
    filtered, result = measure.filter_labels(labels, rules)
    rows = {r["label"]: r for r in result.rows()}
    assert rows[1]["status"] == "Removed"
    assert rows[1]["conditions"] == "npixels < 50; npixels < 200"
    assert rows[2]["status"] == "Removed"
    assert rows[2]["conditions"] == "circularity < 0.5; npixels < 200"
    assert rows[3] == {"label": 3, "status": "Correct", "conditions": ""}
    assert rows[4]["status"] == "Removed"
    assert rows[4]["conditions"] == "npixels < 50; circularity < 0.5; npixels < 200"
    assert result.removed_ids.tolist() == [1, 2, 4]
    assert np.array_equal(filtered, np.where(labels == 3, labels, 0))
    assert filtered.dtype == labels.dtype
    assert labels.max() == 4  # the input is not modified


def test_filter_with_no_match_keeps_everything_and_physical_units():
    labels = small_and_round()
    filtered, result = measure.filter_labels(labels, [("area", "<", 1)], voxel_size=(0.5, 0.5))
    assert not result.removed.any()
    assert np.array_equal(filtered, labels)
    # in physical units (0.25 per pixel) only the 9 px square is under 3
    _, result = measure.filter_labels(labels, [("area", "<", 3)], voxel_size=(0.5, 0.5))
    assert result.removed_ids.tolist() == [1]


def test_filter_refuses_unknown_property_and_operator():
    props = measure.measure_objects(small_and_round())
    with pytest.raises(ValueError, match="unknown property 'size'.*npixels"):
        measure.evaluate_filter(props, [("size", "<", 3)])
    with pytest.raises(ValueError, match="unknown operator '=<'"):
        measure.evaluate_filter(props, [("npixels", "=<", 3)])
    with pytest.raises(TypeError, match="parse_rules"):
        measure.evaluate_filter(props, "npixels < 3")
    with pytest.raises(ValueError, match="at least one condition"):
        measure.evaluate_filter(props, [[]])


def test_nan_meets_no_condition_but_not_equal():
    props = {"label": np.array([1, 2]), "circularity": np.array([math.nan, 0.2])}
    result = measure.evaluate_filter(props, [("circularity", "<", 0.5)])
    assert result.removed.tolist() == [False, True]
    result = measure.evaluate_filter(props, [("circularity", "!=", 0.2)])
    assert result.removed.tolist() == [True, False]


def test_parse_rules():
    assert measure.parse_rules("npixels<50 OR circularity < 0.5 and npixels <= 2e2") == [
        [("npixels", "<", 50.0)], [("circularity", "<", 0.5), ("npixels", "<=", 200.0)]]
    assert measure.parse_rules("centroid-0 > 3; elongation >= inf") == [
        [("centroid-0", ">", 3.0)], [("elongation", ">=", math.inf)]]
    with pytest.raises(ValueError, match="cannot read condition 'npixels'"):
        measure.parse_rules("npixels")
    with pytest.raises(ValueError, match="'big' in 'npixels < big' is not a number"):
        measure.parse_rules("npixels < big")
    with pytest.raises(ValueError, match="no condition"):
        measure.parse_rules("  ")


def test_remove_objects_touches_only_their_boxes_3d():
    labels = np.zeros((4, 6, 6), np.uint32)
    labels[0:2, 0:3, 0:3] = 2**32 - 1
    labels[2:4, 3:6, 3:6] = 5
    labels[3, 0, 0] = 5       # a second part of 5, outside the box given below
    out = measure.remove_objects(labels, [2**32 - 1, 5],
                                 bboxes=np.array([[0, 0, 0, 2, 3, 3], [2, 3, 3, 4, 6, 6]]))
    assert out.dtype == np.uint32
    assert out.sum() == 5 and out[3, 0, 0] == 5
    with pytest.raises(ValueError, match="2 ids but 1 boxes"):
        measure.remove_objects(labels, [1, 2], bboxes=np.zeros((1, 6)))
