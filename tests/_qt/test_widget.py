"""Whole reviews in a real napari viewer, driven by key presses on the canvas, or by a script
through the Review (the widget follows every change, from any thread)."""

from __future__ import annotations

import json
import threading
from collections import Counter

import numpy as np
import pytest
import tifffile
from qt_helpers import add_layers, press, screenshot, shows_output, start

from napari_mask_compare import stats
from napari_mask_compare._qt import _panel
from napari_mask_compare._qt._keys import REVIEW_KEYS
from napari_mask_compare._qt._view import group_focus, is_review_layer
from napari_mask_compare._qt._widget import MaskCompareWidget
from napari_mask_compare._sample_data import make_sample_2d, make_sample_3d
from napari_mask_compare._text import group_caption
from napari_mask_compare.pairing import overlap_table

#: Keys pressed in turn, each a decision.
DECISION_KEYS = ("1", "2", "3", "4", "A", "B", "M", "N")


@pytest.fixture
def docked(make_napari_viewer, qtbot):
    """A viewer (shown) with the widget docked: call it to get (viewer, widget)."""

    def make():
        viewer = make_napari_viewer(show=True)
        viewer.window._qt_window.resize(1400, 800)
        widget = MaskCompareWidget(viewer)
        viewer.window.add_dock_widget(widget, name="Mask compare", area="right")
        return viewer, widget

    return make


def _open(docked, qtbot, tmp_path, sample):
    """A window of its own with a review of ``sample`` (a function) started in ``tmp_path``."""
    viewer, widget = docked()
    image, a, b = add_layers(viewer, sample())
    widget.set_layers(image=image, mask_a=a, mask_b=b)
    widget.set_out_dir(tmp_path)
    start(widget, qtbot)
    return viewer, widget, (image, a, b)


def _selectable(widget, user_layers):
    """The layer types a reviewer may have selected: image, labels A, labels B, output."""
    layers = widget.view.layers
    return [layers["image_a"], layers["a"], layers["b"], layers["output"], user_layers[1], None]


def _select(viewer, layer) -> None:
    if layer is None:
        viewer.layers.selection.clear()
    else:
        viewer.layers.selection.active = layer


def _labels_modes(viewer):
    return {layer.name: layer.mode for layer in viewer.layers if hasattr(layer, "selected_label")}


def _check_focus(viewer, widget, group) -> None:
    """Camera on the group's box centre; in 3D the slider spans its slices, at the best one."""
    view = widget.view
    focus = group_focus(group, a=view.a, b=view.b, margin=view.margin)
    scale = view.scale
    center = np.asarray(viewer.scene.camera.center)[-2:]
    np.testing.assert_allclose(center, np.multiply(focus.center, scale[-2:]))
    if focus.z_range is not None:
        z_range = viewer.dims.range[0]
        assert (z_range.start, z_range.stop) == (focus.z_range[0] * scale[0],
                                                 focus.z_range[1] * scale[0])
        assert viewer.dims.point[0] == focus.z * scale[0]


def _review_all_by_keys(viewer, widget, user_layers, *, check_focus=False) -> Counter:
    """Decide every group of the queue with the decision keys, changing the selected layer."""
    session = widget.session
    selectable = _selectable(widget, user_layers)
    counts = Counter()
    step = 0
    while session.current is not None and session.choice_of(session.current.index) is None:
        group = session.current
        if check_focus:
            _check_focus(viewer, widget, group)
        _select(viewer, selectable[step % len(selectable)])
        modes = _labels_modes(viewer)
        key = DECISION_KEYS[step % len(DECISION_KEYS)]
        press(viewer, key)
        assert session.choice_of(group.index) == REVIEW_KEYS[key], (key, group)
        assert _labels_modes(viewer) == modes, "a napari tool key fired during review"
        counts[REVIEW_KEYS[key]] += 1
        step += 1
    return counts


def _saved(widget_output):
    tif = tifffile.imread(widget_output)
    summary = json.loads(widget_output.with_name(widget_output.stem + ".summary.json")
                         .read_text())
    return tif, summary


@pytest.mark.parametrize("sample", ["2d", "3d"])
def test_whole_review_by_keys(reviewing, qtbot, sample):
    viewer, widget, user_layers = reviewing(sample)
    session, output_path = widget.session, widget._review.output
    output_layer = widget.view.layers["output"]
    assert shows_output(output_layer, session)

    # navigation: Right and Left move without deciding
    first = session.current.index
    press(viewer, "Right")
    assert session.current.index == session.queue[1]
    press(viewer, "Left")
    assert session.current.index == first

    counts = _review_all_by_keys(viewer, widget, user_layers, check_focus=True)
    assert session.done or all(session.choice_of(g) for g in session.queue)
    summary = session.summary()
    assert {k: summary[k] for k in "ABMN"} == {k: counts[k] for k in "ABMN"}
    # the features (one row per object, and a first, empty one for the background)
    qtbot.waitUntil(lambda: len(output_layer.features) == summary["objects"] + 1,
                    timeout=5000)
    features = output_layer.features
    assert list(features["index"]) == list(range(summary["objects"] + 1))
    assert list(features["label"])[1:] == list(range(1, summary["objects"] + 1))
    obj = session.objects[-1]
    voxel = np.argwhere(session.output == obj.id)[0]
    status = output_layer.get_status(output_layer.data_to_world(voxel), world=True)
    # groups are called by their number (index + 1), as the panel does
    assert f"label: {obj.id}, source: {obj.source}, group: {obj.group + 1}" \
        in status["coordinates"]

    # a decided group: the message says so, nothing changes
    press(viewer, "Left")
    before = session.output.copy()
    press(viewer, "1")
    assert "already decided" in widget.message.text()
    np.testing.assert_array_equal(session.output, before)

    # undo: the output comes back exactly, the group is current and undecided
    last = session.log[-1].group
    press(viewer, "U")
    assert session.current.index == last and session.choice_of(last) is None
    assert session.summary()["decided"] == summary["decided"] - 1
    press(viewer, "2")
    assert session.choice_of(last) == "B"

    # Q: saved and quit; the TIFF and the summary hold the review
    expected_output, expected_summary = session.output.copy(), session.summary()
    press(viewer, "Q")
    assert widget.session is None
    tif, saved_summary = _saved(output_path)
    np.testing.assert_array_equal(tif, expected_output)
    assert saved_summary == expected_summary
    assert not any(is_review_layer(layer) for layer in viewer.layers)
    assert all(layer.visible for layer in user_layers)
    result = viewer.layers[f"curated: {output_path.stem}"]
    np.testing.assert_array_equal(result.data, expected_output)


def test_keys_given_back_after_review(reviewing, qtbot):
    viewer, widget, (image, a, b) = reviewing("2d")
    assert widget._review.keys.bound
    press(viewer, "Q")
    assert all(not layer.keymap for layer in viewer.layers)
    assert not viewer.keymap
    # napari's own bindings work again: "1" picks a Labels tool, Right steps a slider
    viewer.layers.selection.active = a
    a.mode = "pan_zoom"
    press(viewer, "1")
    assert a.mode != "pan_zoom"
    assert widget.session is None


def test_keys_beat_napari_on_every_layer_type(reviewing, qtbot):
    """With each kind of layer selected (and none), 1-4 decide and no Labels tool fires."""
    viewer, widget, user_layers = reviewing("2d")
    points = viewer.add_points(np.array([[10.0, 10.0]]), name="some points")  # added mid-review
    session = widget.session
    for layer in [*_selectable(widget, user_layers), user_layers[0], points]:
        _select(viewer, layer)
        group = session.current.index
        press(viewer, "3")
        assert session.choice_of(group) == "M", layer
        press(viewer, "U")
        assert session.choice_of(group) is None, layer
    widget.end_review()
    assert not points.keymap


def test_finish_adds_unpaired_and_buttons(reviewing, qtbot, monkeypatch):
    viewer, widget, _ = reviewing("2d")
    monkeypatch.setattr(_panel, "confirm_leaving_undecided", lambda *a, **k: (True, False))
    session, output_path = widget.session, widget._review.output
    widget.panel.buttons["A"].click()
    widget.panel.buttons["next"].click()
    widget.panel.buttons["previous"].click()
    widget.panel.buttons["undo"].click()
    assert session.summary()["decided"] == 0
    widget.panel.buttons["B"].click()
    unpaired = sum(1 for g in session.groups if not g.paired and not session.choice_of(g.index))
    widget.panel.buttons["finish"].click()
    assert widget.session is None
    tif, summary = _saved(output_path)
    assert summary["Auto"] == unpaired and summary["B"] == 1
    np.testing.assert_array_equal(tif, session.output)


def test_resume_after_closing_widget_and_viewer(docked, qtbot, tmp_path):
    viewer, widget, layers = _open(docked, qtbot, tmp_path, make_sample_3d)
    for key in "1243":
        press(viewer, key)
    log_1 = [(d.group, d.choice) for d in widget.session.log]
    output_1 = widget.session.output.copy()
    output_path = widget._review.output
    widget.close()  # closing the widget saves and ends the review
    assert widget.session is None
    np.testing.assert_array_equal(tifffile.imread(output_path), output_1)

    widget_2 = type(widget)(viewer)
    viewer.window.add_dock_widget(widget_2, name="Mask compare 2")
    widget_2.set_layers(image=layers[0], mask_a=layers[1], mask_b=layers[2])
    widget_2.set_out_dir(tmp_path)
    start(widget_2, qtbot)
    assert "resumed" in widget_2.message.text()
    assert [(d.group, d.choice) for d in widget_2.session.log] == log_1
    np.testing.assert_array_equal(widget_2.session.output, output_1)
    press(viewer, "M")
    log_2 = [(d.group, d.choice) for d in widget_2.session.log]
    output_2 = widget_2.session.output.copy()
    viewer.close()  # closing the viewer saves too

    viewer_3, widget_3 = docked()
    image, a, b = add_layers(viewer_3, make_sample_3d())
    widget_3.set_layers(image=image, mask_a=a, mask_b=b)
    widget_3.set_out_dir(tmp_path)
    start(widget_3, qtbot)
    assert [(d.group, d.choice) for d in widget_3.session.log] == log_2
    np.testing.assert_array_equal(widget_3.session.output, output_2)
    np.testing.assert_array_equal(tifffile.imread(output_path), output_2)
    press(viewer_3, "Q")


def test_other_inputs_refused_with_a_message(reviewing, qtbot):
    viewer, widget, (image, a, b) = reviewing("2d")
    press(viewer, "1")
    press(viewer, "Q")
    b.data = np.roll(b.data, 3, axis=1)  # another mask B, same out dir
    widget.start()
    qtbot.waitUntil(lambda: not widget.busy, timeout=30_000)
    assert widget.session is None
    text = widget.message.text()
    assert "review of another mask B" in text and "\n" not in text
    assert "Traceback" not in text


def test_a_second_window_on_the_same_review_is_refused(docked, qtbot, tmp_path):
    """One writer per review: the second widget is told who holds it; the first goes on."""
    viewer, widget, layers = _open(docked, qtbot, tmp_path, make_sample_2d)
    viewer_2, widget_2 = docked()
    image, a, b = add_layers(viewer_2, make_sample_2d())
    widget_2.set_layers(image=image, mask_a=a, mask_b=b)
    widget_2.set_out_dir(tmp_path)
    widget_2.start()
    qtbot.waitUntil(lambda: not widget_2.busy, timeout=30_000)
    text = widget_2.message.text()
    assert widget_2.session is None and "\n" not in text
    assert "this review is open in process" in text and "close it there first" in text
    press(viewer, "1")  # the first review still holds its lock and saves
    assert len(widget.session.steps) == 1
    press(viewer, "Q")
    (tmp_path / ".mask_A.tif.999999999.0123abcd.tmp").write_bytes(b"")  # left by a dead writer
    start(widget_2, qtbot)  # free now: resumed, and what opening repaired is said
    text = widget_2.message.text()
    assert "resumed (1 action(s) replayed)" in text and "removed 1 temporary file" in text
    widget_2.end_review()


def test_bad_inputs_are_one_line_messages(docked, qtbot, tmp_path):
    viewer, widget = docked()
    image, a, b = add_layers(viewer, make_sample_2d())
    small = viewer.add_labels(np.zeros((10, 10), dtype=np.uint16), name="small")
    negative = viewer.add_labels(np.full((256, 256), -1, dtype=np.int32), name="negative")
    widget.set_layers(image=image, mask_a=a, mask_b=small)
    widget.start()
    assert "choose an out dir" in widget.message.text()
    widget.set_out_dir(tmp_path)
    for mask_b, expected in ((small, "both masks must label the same image"),
                             (negative, "negative labels")):
        widget.set_layers(image=image, mask_a=a, mask_b=mask_b)
        widget.start()
        qtbot.waitUntil(lambda: not widget.busy, timeout=30_000)
        assert widget.session is None
        assert expected in widget.message.text()
        assert "\n" not in widget.message.text()


def test_order_kind_filter_overlay_and_signals(reviewing, qtbot):
    viewer, widget, _ = reviewing("2d")
    session = widget.session
    changes = []
    widget.review.add_listener(changes.append)
    widget.panel.order_combo.setCurrentIndex(1)  # lowest IoU first
    ious = [session.groups[g].min_iou for g in session.queue]
    assert ious == sorted(ious)
    for kind, box in widget.panel.kind_boxes.items():
        box.setChecked(kind == "only_b")
    assert session.current.kind == "only_b"
    assert "UNPAIRED" in widget.panel.group_label.text()
    press(viewer, "2")
    assert [c.op["op"] for c in changes] == ["order"] + ["kinds"] * 5 + ["decide"]
    assert changes[-1].op["choice"] == "B"
    grid = viewer.canvas.grid
    assert grid.enabled
    widget.panel.overlay_box.setChecked(True)
    assert not grid.enabled and widget.view.layers["a"].contour > 0
    widget.panel.overlay_box.setChecked(False)
    assert grid.enabled and widget.view.layers["a"].contour == 0
    ended = []
    widget.review_ended.connect(ended.append)
    press(viewer, "Q")
    assert ended == [session]
    assert not grid.enabled  # the grid as it was before the review


def test_folders_review_and_next_file(docked, qtbot, tmp_path, monkeypatch):
    from napari_mask_compare._sample_data import synthetic_masks

    dirs = {name: tmp_path / name for name in ("images", "a", "b", "out")}
    for folder in dirs.values():
        folder.mkdir()
    for seed, name in ((1, "cells_01.tif"), (2, "cells_02.tif")):
        image, a, b = synthetic_masks((126, 168), seed=seed)
        tifffile.imwrite(dirs["images"] / name, image)
        tifffile.imwrite(dirs["a"] / name, a)
        tifffile.imwrite(dirs["b"] / name, b)
    viewer, widget = docked()
    widget.set_folders(images_dir=dirs["images"], mask_a_dir=dirs["a"], mask_b_dir=dirs["b"])
    widget.set_out_dir(dirs["out"])
    assert widget.setup.file_list.count() == 2
    start(widget, qtbot)
    assert widget._review.output == dirs["out"] / "cells_01.tif"
    assert widget.panel.file_row.isVisible() and "file 1 of 2" in widget.panel.file_label.text()
    press(viewer, "1")
    first_output = widget.session.output.copy()
    monkeypatch.setattr(_panel, "confirm_leaving_undecided", lambda *a, **k: (True, False))
    widget.panel.next_file_button.click()  # saves file 1, opens file 2
    qtbot.waitUntil(lambda: widget.session is not None, timeout=30_000)
    np.testing.assert_array_equal(tifffile.imread(dirs["out"] / "cells_01.tif"), first_output)
    assert widget._review.output == dirs["out"] / "cells_02.tif"
    assert "file 2 of 2" in widget.panel.file_label.text()
    assert not widget.panel.next_file_button.isEnabled()
    press(viewer, "2")
    press(viewer, "Q")
    assert (dirs["out"] / "cells_02.summary.json").exists()


@pytest.mark.parametrize("sample", ["2d", "3d"])
def test_screenshots(reviewing, qtbot, sample):
    """Screenshots of the review view (look at them: zoom, colours, content)."""
    viewer, widget, _ = reviewing(sample)
    session = widget.session
    # a split decided B, then back to it: the curated cell shows B's two objects
    split = next(g for g in session.queue if session.groups[g].kind == "split")
    widget.go_to(split)
    press(viewer, "2")
    press(viewer, "Left")
    assert session.current.index == split
    shot = screenshot(viewer, qtbot, f"review_{sample}.png")
    assert shot.stat().st_size > 10_000
    canvas = viewer.screenshot(canvas_only=True, flash=False)
    assert canvas[..., :3].std() > 10  # not an empty canvas
    widget.panel.overlay_box.setChecked(True)
    screenshot(viewer, qtbot, f"review_{sample}_overlay.png")


def test_metrics_tab_follows_the_curation(reviewing, qtbot, monkeypatch):
    viewer, widget, (_, layer_a, layer_b) = reviewing("2d")
    monkeypatch.setattr(_panel, "confirm_leaving_undecided", lambda *a, **k: (True, False))
    metrics, session = widget.metrics, widget.session
    assert not metrics.comparisons and not metrics.busy  # nothing computed while hidden

    widget.tabs.setCurrentIndex(1)  # the Metrics tab
    qtbot.waitUntil(lambda: "A vs B" in metrics.comparisons and not metrics.busy)
    expected = stats.matching_stats(overlap_table(layer_a.data, layer_b.data))
    shown = metrics.comparisons["A vs B"].summary["matching"]
    assert [r["tp"] for r in shown] == [r["tp"] for r in expected]
    assert metrics.table.rowCount() == len(expected)

    def curated_vs_a_after(key):
        """Press ``key``; wait for the panel to describe the output as it now is."""
        metrics.comparisons.pop("curated vs A", None)
        press(viewer, key)
        qtbot.waitUntil(lambda: "curated vs A" in metrics.comparisons and not metrics.busy,
                        timeout=10_000)
        return metrics.comparisons["curated vs A"].summary["matching"]

    for kind, box in widget.panel.kind_boxes.items():
        box.setChecked(kind == "match")
    for _ in range(3):
        rows = curated_vs_a_after("1")   # keep A: the output's objects are A's, exactly
    kept = len(session.objects)
    assert kept >= 3
    assert all(r["precision"] == 1.0 and r["tp"] == kept for r in rows)
    assert "curated vs B" in metrics.comparisons
    rows = curated_vs_a_after("U")
    assert all(r["tp"] == len(session.objects) < kept for r in rows)
    screenshot(viewer, qtbot, "metrics_tab_2d.png")
    del metrics.comparisons["curated vs A"]
    widget.panel.buttons["finish"].click()       # adds the unpaired objects: the panel follows
    qtbot.waitUntil(lambda: "curated vs A" in metrics.comparisons and not metrics.busy)
    rows = metrics.comparisons["curated vs A"].summary["matching"]
    assert all(r["n_pred"] == len(session.objects) > kept for r in rows)
    assert set(metrics.comparisons) == {"A vs B", "curated vs A", "curated vs B"}


def test_metrics_tab_compares_the_chosen_layers_without_a_review(docked, qtbot):
    viewer, widget = docked()
    image, layer_a, layer_b = add_layers(viewer, make_sample_2d())
    widget.set_layers(image=image, mask_a=layer_a, mask_b=layer_b)
    metrics = widget.metrics
    assert not metrics.comparisons and not metrics.busy     # hidden: nothing computed

    widget.tabs.setCurrentIndex(1)  # the Metrics tab
    qtbot.waitUntil(lambda: "A vs B" in metrics.comparisons and not metrics.busy)
    expected = stats.matching_stats(overlap_table(layer_a.data, layer_b.data))
    assert metrics.comparisons["A vs B"].summary["matching"] == expected

    widget.set_layers(image=image, mask_a=layer_a, mask_b=layer_a)   # a mistake: refused
    qtbot.waitUntil(lambda: "both mask A and mask B" in metrics.message.text())
    assert not metrics.comparisons
    widget.set_layers(image=image, mask_a=layer_b, mask_b=layer_a)   # B as the reference now
    qtbot.waitUntil(lambda: "A vs B" in metrics.comparisons and not metrics.busy)
    swapped = stats.matching_stats(overlap_table(layer_b.data, layer_a.data))
    assert metrics.comparisons["A vs B"].summary["matching"] == swapped != expected


# --------------------------------------------------------------------------- driven from outside


def _camera(viewer) -> np.ndarray:
    return np.asarray(viewer.scene.camera.center)[-2:]


def _shows_the_current_group(viewer, widget) -> None:
    """Caption, panel, highlighted group and camera (and slider in 3D) on the current group."""
    session = widget.session
    group = session.current
    assert widget.view.group.index == group.index
    assert viewer.canvas.overlays.text.text == group_caption(group, session=session)
    assert f"<b>Group {group.index + 1}</b>" in widget.panel.group_label.text()
    _check_focus(viewer, widget, group)


@pytest.mark.parametrize("sample", ["2d", "3d"])
def test_every_change_made_through_the_review_shows(reviewing, qtbot, sample):
    """A script drives the review through its API: the widget follows every change."""
    viewer, widget, _ = reviewing(sample)
    review, session = widget.review, widget.session
    output = widget.view.layers["output"]

    first = session.current.index
    review.decide("A")
    assert session.current.index != first
    assert shows_output(output, session) and "A 1 ·" in widget.panel.counts_label.text()
    _shows_the_current_group(viewer, widget)
    review.undo()
    assert session.current.index == first and shows_output(output, session)
    _shows_the_current_group(viewer, widget)

    review.next()
    _shows_the_current_group(viewer, widget)
    far = session.queue[-1]
    review.go_to(far)
    _shows_the_current_group(viewer, widget)
    review.previous()
    _shows_the_current_group(viewer, widget)
    review.set_kinds(["split"])
    assert session.current.kind == "split"
    _shows_the_current_group(viewer, widget)
    assert [kind for kind, box in widget.panel.kind_boxes.items() if box.isChecked()] == [
        "split"]
    review.set_kinds(None)
    review.set_order("iou")
    assert widget.panel.order() == "iou"
    _shows_the_current_group(viewer, widget)

    # a pick and an edit leave the camera where the reviewer put it
    group = session.current
    camera = viewer.scene.camera
    camera.center = (*camera.center[:-2], 1.0, 2.0)
    panned = _camera(viewer)
    picked = group.ids_b[0]
    review.pick("B", picked)
    assert ("B", picked) in widget.view._picked and shows_output(output, session)
    assert f"picked</b> B{picked}" in widget.panel.group_label.text()
    box = tuple(slice(0, n) for n in session.output.shape[:-2]) + (slice(0, 3), slice(0, 3))
    review.edit([(box, None, session.next_id)])
    assert shows_output(output, session) and (output.data[box] == len(session.objects)).all()
    review.undo()
    assert shows_output(output, session) and not output.data[box].any()
    np.testing.assert_allclose(_camera(viewer), panned)
    qtbot.waitUntil(lambda: len(output.features) == len(session.objects) + 1, timeout=5000)

    review.set_view(overlay=True)
    assert widget.panel.overlay_box.isChecked() and not viewer.canvas.grid.enabled
    _shows_the_current_group(viewer, widget)
    review.set_view(overlay=False)
    assert viewer.canvas.grid.enabled


def test_a_change_made_in_another_thread_is_drawn_on_the_gui_thread(reviewing, qtbot):
    viewer, widget, _ = reviewing("2d")
    review, session = widget.review, widget.session
    output, metrics = widget.view.layers["output"], widget.metrics
    widget.tabs.setCurrentIndex(1)  # the Metrics tab listens to the review too
    qtbot.waitUntil(lambda: "A vs B" in metrics.comparisons and not metrics.busy,
                    timeout=30_000)
    worker = threading.Thread(target=review.decide, args=("B",))
    worker.start()
    worker.join()
    assert len(session.objects) > 0 and not shows_output(output, session)  # not yet drawn
    qtbot.waitUntil(lambda: shows_output(output, session), timeout=5000)
    _shows_the_current_group(viewer, widget)
    qtbot.waitUntil(lambda: "curated vs A" in metrics.comparisons and not metrics.busy,
                    timeout=10_000)
    rows = metrics.comparisons["curated vs A"].summary["matching"]
    assert all(row["n_pred"] == len(session.objects) for row in rows)
