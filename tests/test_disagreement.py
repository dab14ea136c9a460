"""Best IoU, colour bin and review group of every object (colour by disagreement)."""

from __future__ import annotations

import sys

import numpy as np

from napari_mask_compare.disagreement import BIN_COLORS, best_ious, iou_bins, object_ious
from napari_mask_compare.pairing import overlap_table, review_groups
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


def _python_calls(function) -> int:
    """How many Python functions ``function()`` calls (numpy's C loops call none)."""
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count)
    try:
        function()
    finally:
        sys.setprofile(None)
    return calls


def _grid_of_cells(rows: int, cols: int) -> tuple:
    """Cells of 8 x 6 pixels, ``rows`` x ``cols`` of them; B shifted by a pixel."""
    cells = np.arange(rows * cols).reshape(rows, cols) + 1
    a = np.kron(cells, np.ones((8, 6), dtype=np.uint16)).astype(np.uint16)
    return a, np.roll(a, 1, axis=1)


def test_thirty_thousand_objects_take_no_loop_over_the_objects():
    """Vectorised: as many Python calls for 30,000 objects as for 300 (a loop over the
    objects would make 100 times more), whatever the machine's load."""
    calls = {}
    for rows, cols in ((15, 20), (150, 200)):
        table = overlap_table(*_grid_of_cells(rows, cols))
        groups = review_groups(table)

        def colour(table=table, groups=groups):
            objects = object_ious(table, groups)
            objects.colors("A"), objects.colors("B")
            return objects

        calls[rows * cols] = _python_calls(colour)
    objects = colour()
    assert calls[30_000] == calls[300]
    assert objects.ids_a.size == 30_000
    iou_a, _ = best_ious(table)
    np.testing.assert_allclose(iou_a, 40 / 56)  # 8 x 5 shared of 8 x 7 union
