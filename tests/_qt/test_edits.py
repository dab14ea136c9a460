"""Hand edits on the curated panel, made with napari's own tools as a person makes them.

The curated layer is selected, napari's tool chosen with its key (P brush,
E eraser, F fill), then the mouse is pressed, moved and released on the
canvas pixels that show chosen voxels of the curated panel (the review shows
a grid: the curated layer has a view box of its own). Each stroke must become
one journaled edit of the review: undone by U, saved in the TIFF, resumed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from qt_helpers import (
    drag,
    journal_ops,
    press,
    screenshot,
    shows_output,
    start,
)
from qtpy.QtCore import Qt

from napari_mask_compare import _files
from napari_mask_compare._qt import _panel
from napari_mask_compare._qt._keys import REVIEW_KEYS
from napari_mask_compare.labels import relabel_sequential


def _curated(viewer, widget, tool: str, *, brush_size: int | None = None, label=None):
    """Select the curated layer and pick napari's tool by its key, as a person does."""
    layer = widget.view.layers["output"]
    viewer.layers.selection.active = layer
    press(viewer, tool)
    if brush_size is not None:
        layer.brush_size = brush_size
    if label is not None:
        layer.selected_label = label
    return layer


def _z(viewer, widget) -> tuple[int, ...]:
    """The current slice as a leading index (none in 2D)."""
    view = widget.view
    if view.a.ndim == 2:
        return ()
    return (round(viewer.dims.point[0] / view.scale[0]),)


def _row_across(widget, z) -> list[tuple[int, ...]]:
    """Voxels across the current group's box, through its middle row, 2 apart."""
    group, ndim = widget.session.current, widget.view.a.ndim
    (y0, x0), (y1, x1) = group.bbox[:ndim][-2:], group.bbox[ndim:][-2:]
    y = (y0 + y1) // 2
    return [(*z, y, x) for x in range(x0, x1, 2)]


def _near(changed: np.ndarray, voxels, radius: float) -> bool:
    """Every changed voxel lies within ``radius`` of the stroke's path (in its plane)."""
    points = np.argwhere(changed)[:, -2:].astype(float)
    path = np.asarray(voxels, dtype=float)[:, -2:]
    (y, x0), x1 = path[0], path[-1][1]
    dx = np.clip(points[:, 1], x0, x1) - points[:, 1]
    dy = y - points[:, 0]
    return bool(np.all(np.hypot(dx, dy) <= radius + 1e-9))


@pytest.mark.parametrize("sample", ["2d", "3d"])
def test_a_brush_stroke_is_a_journaled_edit(reviewing, qtbot, sample):
    viewer, widget, _ = reviewing(sample)
    session = widget.session
    assert set("PEF").isdisjoint(REVIEW_KEYS)  # napari's tool keys stay napari's
    layer = _curated(viewer, widget, "P", brush_size=5)
    assert layer.mode == "paint" and layer.editable and not layer.locked
    assert not widget.view.layers["a"].editable and not widget.view.layers["b"].editable
    assert shows_output(layer, session) and layer.selected_label == 1  # a new object
    z = _z(viewer, widget)
    stroke = _row_across(widget, z)
    before = session.output.copy()

    drag(viewer, qtbot, layer, stroke)

    changed = session.output != before
    assert changed[tuple(np.transpose([stroke[0], stroke[-1]]))].all()
    assert (session.output[changed] == 1).all() and _near(changed, stroke, radius=2.5)
    if z:  # napari's brush paints the slice shown
        assert changed.any(axis=(1, 2)).tolist().count(True) == 1 and changed[z[0]].any()
    assert [o.source for o in session.objects] == ["edit"]
    assert journal_ops(widget)[-1]["op"] == "edit"
    assert "1 edit(s)" in widget.panel.counts_label.text()
    assert layer.selected_label == 1  # the next stroke continues the object
    assert not layer._undo_history and not layer._redo_history
    painted = session.output.copy()
    press(viewer, "Z", Qt.KeyboardModifier.ControlModifier)  # napari's undo: nothing to undo
    np.testing.assert_array_equal(session.output, painted)

    # hovering the stroke names its source
    qtbot.waitUntil(lambda: len(layer.features) == 2, timeout=5000)
    status = layer.get_status(layer.data_to_world(stroke[0]), world=True)
    assert "source: edit" in status["coordinates"]

    # a decision after the edit: its object gets a new id; the stroke keeps its voxels
    group = session.current
    press(viewer, "3")  # merge: one object, whatever the kind of group
    decision = session.log[-1]
    assert decision.group == group.index and decision.first_id == 2 < decision.stop_id
    assert decision.contested > 0  # the stroke crossed the group: its voxels stay the stroke's
    assert (session.output[changed] == 1).all()
    assert {int(v) for v in np.unique(session.output[session.output != painted])} \
        <= set(range(2, decision.stop_id))
    press(viewer, "Left")
    shot = screenshot(viewer, qtbot, f"edit_stroke_{sample}.png")
    assert shot.stat().st_size > 10_000


def test_erase_and_fill_then_undo_exactly(reviewing, qtbot):
    viewer, widget, _ = reviewing("2d")
    session = widget.session
    press(viewer, "3")  # the first group merged into one object
    first = session.log[-1]
    press(viewer, "Left")  # back to it
    kept = first.first_id
    decided = session.output.copy()

    # the eraser on the middle of the kept object
    layer = _curated(viewer, widget, "E", brush_size=3)
    inside = np.argwhere(decided == kept)
    middle = tuple(inside[len(inside) // 2])
    drag(viewer, qtbot, layer, [middle])
    erased = session.output.copy()
    changed = erased != decided
    assert changed[middle] and (erased[changed] == 0).all() and (decided[changed] == kept).all()
    assert journal_ops(widget)[-1]["op"] == "edit"
    qtbot.waitUntil(lambda: list(layer.features["source"])[kept] == "M+edit", timeout=5000)

    # the fill turns what is left of the object into a new one
    new_label = len(session.objects) + 1
    layer = _curated(viewer, widget, "F", label=new_label)
    rest = np.argwhere(erased == kept)
    drag(viewer, qtbot, layer, [tuple(rest[0])])
    filled = session.output.copy()
    assert (filled[erased == kept] == new_label).sum() > 0
    assert session.objects[-1].source == "edit" and layer.selected_label == new_label
    assert not layer._undo_history

    # U undoes edits and decisions, last first, exactly
    press(viewer, "U")
    np.testing.assert_array_equal(session.output, erased)
    press(viewer, "U")
    np.testing.assert_array_equal(session.output, decided)
    press(viewer, "U")
    assert not session.output.any() and session.choice_of(first.group) is None
    assert shows_output(widget.view.layers["output"], session)


def test_edits_are_saved_with_ids_1_to_n_and_resumed(reviewing, qtbot):
    viewer, widget, (image, a, b) = reviewing("2d")
    session, output_path = widget.session, widget._review.output
    layer = _curated(viewer, widget, "P", brush_size=5)
    stroke = _row_across(widget, ())
    drag(viewer, qtbot, layer, stroke)  # object 1, by hand
    press(viewer, "1")
    press(viewer, "2")
    # the fill with 0 (an eraser) takes object 1 away: its id is a gap until saved
    press(viewer, "Left")
    press(viewer, "Left")  # the first group in view again
    layer = _curated(viewer, widget, "F", label=0)
    drag(viewer, qtbot, layer, [stroke[len(stroke) // 2]])
    assert not (session.output == 1).any() and session.output.any()
    expected = session.output.copy()

    press(viewer, "Q")
    assert widget.session is None
    saved = tifffile.imread(output_path)
    n = len(np.unique(expected)) - 1
    np.testing.assert_array_equal(np.unique(saved), np.arange(n + 1))
    np.testing.assert_array_equal(saved, relabel_sequential(expected))
    result = viewer.layers[f"curated: {output_path.stem}"]
    np.testing.assert_array_equal(result.data, saved)
    summary = json.loads(_files.sidecar(output_path, ".summary.json").read_text())
    assert summary["edits"] == 2

    widget.set_layers(image=image, mask_a=a, mask_b=b)
    start(widget, qtbot)  # same inputs, same out dir: resumed
    assert "resumed (4 action(s) replayed)" in widget.message.text()
    np.testing.assert_array_equal(widget.session.output, expected)
    assert shows_output(widget.view.layers["output"], widget.session)
    press(viewer, "U")  # the erasing fill is undone: object 1 is back
    np.testing.assert_array_equal(widget.session.output[tuple(np.transpose(stroke))], 1)


def test_a_failed_journal_write_takes_the_stroke_back(reviewing, qtbot, monkeypatch):
    viewer, widget, _ = reviewing("2d")
    session = widget.session
    journal = widget.review.journal

    def full_disk(op):
        raise _files.WriteError(28, f"{journal.path}: cannot write (No space left on device)")

    monkeypatch.setattr(journal, "append", full_disk)
    layer = _curated(viewer, widget, "P", brush_size=7)
    before = session.output.copy()
    drag(viewer, qtbot, layer, _row_across(widget, ()))

    text = widget.message.text()
    assert "No space left on device" in text and "taken back" in text
    assert "\n" not in text and "Traceback" not in text and widget.message.property("error")
    np.testing.assert_array_equal(session.output, before)
    assert shows_output(layer, session) and not session.steps and not layer._undo_history
    screenshot(viewer, qtbot, "edit_refused.png")
    press(viewer, "1")  # a decision fails the same way, and says so in one line
    assert "No space left on device" in widget.message.text() and not session.steps
    monkeypatch.setattr(_panel, "confirm_leaving_undecided", lambda *a, **k: (True, False))
    widget.panel.buttons["finish"].click()  # so does Finish: the review goes on
    assert widget.session is session and not session.steps
    monkeypatch.undo()
    press(viewer, "1")
    assert len(session.steps) == 1
