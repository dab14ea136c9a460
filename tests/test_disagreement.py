"""Best IoU, colour bin and review group of every object (colour by disagreement)."""

from __future__ import annotations

import time

import numpy as np

from napari_mask_compare.disagreement import BIN_COLORS, best_ious, iou_bins, object_ious
from napari_mask_compare.matching import overlap_table, review_groups
from napari_mask_compare.suite import object_table


def test_best_iou_and_group_agree_with_the_object_table(every_kind_2d):
    a, b = every_kind_2d
    table = overlap_table(a, b)
    groups = review_groups(table)
    objects = object_ious(table, groups)
    rows = object_table(table, groups=groups)
    for side, label, iou, group in zip(rows["side"], rows["id"], rows["iou"], rows["group"]):
        ids = objects.ids_a if side == "a" else objects.ids_b
        ious = objects.iou_a if side == "a" else objects.iou_b
        assert ious[np.searchsorted(ids, label)] == iou
        assert objects.group_of(side.upper(), label) == group
        assert label in getattr(groups[group], f"ids_{side}")
    assert objects.group_of("A", 11) is None  # 11 is a B id
    assert objects.group_of("B", 0) is None  # background is no object


def test_colours_follow_the_bins(every_kind_2d):
    a, b = every_kind_2d
    table = overlap_table(a, b)
    objects = object_ious(table, review_groups(table))
    ids, rgba = objects.colors("A")
    assert ids.tolist() == [1, 2, 3, 4, 5, 6, 7]
    # match (16/20 overlap: 0.6), split/merge halves 0.5, complex quarters, only A 0
    expected = [BIN_COLORS[k] for k in iou_bins(objects.iou_a)]
    np.testing.assert_allclose(rgba, expected)
    assert tuple(rgba[6]) == BIN_COLORS[0]  # only in A: the worst colour
    assert objects.iou_a[0] == 0.6 and iou_bins([0.6]).tolist() == [2]


def test_thirty_thousand_objects_are_fast():
    side = 1200  # 30,000 cells of 8 x 6 pixels; B shifted by a pixel
    a = np.zeros((side, side), dtype=np.uint16)
    cells = np.arange(150 * 200).reshape(150, 200) + 1
    a[:, :] = np.kron(cells, np.ones((8, 6), dtype=np.uint16))
    b = np.roll(a, 1, axis=1)
    table = overlap_table(a, b)
    groups = review_groups(table)
    start = time.perf_counter()
    objects = object_ious(table, groups)
    objects.colors("A"), objects.colors("B")
    elapsed = time.perf_counter() - start
    assert objects.ids_a.size == 30_000
    assert elapsed < 1.0, elapsed  # vectorised: well under a second on a noisy machine
    iou_a, _ = best_ious(table)
    np.testing.assert_allclose(iou_a, 40 / 56)  # 8 x 5 shared of 8 x 7 union
