"""The review as a microscopist meets it: room, titles, keys wherever the focus is, slices,
Q, the question before leaving groups undecided, words on screen, what is left after.

Viewer tests at 1366 x 768 (the room and its screenshots also at 1920 x 1080), with
real key presses sent to whichever widget has the focus. Screenshots go to
``tests/_qt/screenshots/`` (look at them).
"""

from __future__ import annotations

import numpy as np
import pytest
from qt_helpers import SAMPLES, SIZES, add_layers, press, screenshot, start
from qtpy.QtCore import QPoint, Qt, QTimer
from qtpy.QtTest import QTest
from qtpy.QtWidgets import QApplication, QMessageBox

from napari_mask_compare._qt import _panel
from napari_mask_compare._qt._keys import WindowKeys
from napari_mask_compare._qt._view import group_focus, is_review_layer
from napari_mask_compare._qt._widget import MaskCompareWidget
from napari_mask_compare._text import GROUP_LINES

KEYS = {"Right": Qt.Key.Key_Right, "Left": Qt.Key.Key_Left, "U": Qt.Key.Key_U,
        "Up": Qt.Key.Key_Up, "Down": Qt.Key.Key_Down, "Q": Qt.Key.Key_Q,
        **{key: getattr(Qt.Key, f"Key_{key}") for key in "1234ABMN"}}


def _docked(make_napari_viewer, size="1366x768"):
    """A window of its own with the widget docked and the 2D sample's layers, no review."""
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(*SIZES[size])
    widget = MaskCompareWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Mask compare", area="right")
    layers = add_layers(viewer, SAMPLES["2d"]())
    widget.set_layers(image=layers[0], mask_a=layers[1], mask_b=layers[2])
    return viewer, widget, layers


def _activate(viewer, qtbot):
    """Make the viewer's window the active one (shortcuts only fire in the active window)."""
    window = viewer.window._qt_window
    window.raise_()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)


def _key(qtbot, key: str) -> None:
    """Press and release ``key`` on whichever widget has the focus, as a person does."""
    focus = QApplication.focusWidget()
    assert focus is not None
    QTest.keyClick(focus, KEYS[key])
    qtbot.wait(10)


# --------------------------------------------------------------------------- item 6: room


@pytest.mark.parametrize("sample", ["2d", "3d"])
@pytest.mark.parametrize("size", list(SIZES))
def test_canvas_gets_the_room_and_panels_are_titled(reviewing, qtbot, sample, size):
    viewer, widget, _ = reviewing(sample, size)
    window = viewer.window._qt_window
    canvas = viewer.window._qt_viewer.canvas.native
    qtbot.waitUntil(lambda: window.width() == SIZES[size][0], timeout=5000)
    assert canvas.width() >= 0.6 * window.width(), (canvas.width(), window.width())
    grid = viewer.canvas.grid
    assert grid.enabled and grid.spacing > 0  # the panels stand apart
    titles = {role: widget.view.layers[role] for role in ("a", "b", "output")}
    assert [layer.name for layer in titles.values()] == ["A: mask A", "B: mask B", "curated"]
    assert all(layer.name_overlay.visible for layer in titles.values())
    assert len({layer.name_overlay.position for layer in titles.values()}) == 1  # one per cell
    names = [layer.name for layer in viewer.layers]
    assert len(names) == len(set(names)) and not any("[" in name for name in names)
    caption = viewer.canvas.overlays.text
    assert caption.visible and caption.text.startswith("group ")
    screenshot(viewer, qtbot, f"review_{sample}_{size}.png")

    widget.panel.overlay_box.setChecked(True)  # one view: the titles become a legend
    assert not grid.enabled
    assert len({layer.name_overlay.position for layer in titles.values()}) == 3
    screenshot(viewer, qtbot, f"review_{sample}_{size}_overlay.png")
    widget.panel.overlay_box.setChecked(False)
    press(viewer, "Q")
    assert not grid.enabled and not any(is_review_layer(layer) for layer in viewer.layers)


def test_the_buttons_do_not_move_from_group_to_group(reviewing, qtbot):
    viewer, widget, _ = reviewing("2d", "1366x768")
    panel = widget.panel
    button = panel.buttons["A"]

    def where():
        return button.mapTo(widget, QPoint(0, 0)).y()

    first = where()
    lines = GROUP_LINES * panel.group_label.fontMetrics().lineSpacing()
    assert panel.group_label.height() >= lines  # every line of the group text shows
    for _ in range(len(widget.session.queue)):  # every kind, short and long id lists
        press(viewer, "Right")
        assert where() == first, widget.session.current


def test_the_group_is_fitted_again_when_the_canvas_is_resized(reviewing, qtbot):
    viewer, widget, _ = reviewing("2d", "1366x768")
    camera = viewer.camera
    view = widget.view
    focus = group_focus(widget.session.current, a=view.a, b=view.b, margin=view.margin)
    zoom = camera.zoom
    viewer.window._qt_window.resize(*SIZES["1920x1080"])
    qtbot.waitUntil(lambda: camera.zoom > zoom, timeout=5000)
    visible = np.asarray(viewer.canvas.viewbox_size(viewer.layers)) / camera.zoom
    assert (visible >= np.asarray(focus.size) * view.scale[-2:]).all()


# --------------------------------------------------------------------------- item 5: keys


def test_keys_work_after_clicking_any_control_of_the_dock(reviewing, qtbot):
    """Click a checkbox, a combo box, the other checkboxes: ←/→, 1 and U still act."""
    viewer, widget, _ = reviewing("2d", "1366x768")
    _activate(viewer, qtbot)
    session, panel = widget.session, widget.panel
    assert widget._review.window_keys.bound
    controls = [panel.kind_boxes["match"], panel.order_combo, panel.overlay_box,
                panel.kind_boxes["only_b"]]
    for control in controls:
        QTest.mouseClick(control, Qt.MouseButton.LeftButton)
        qtbot.wait(50)
        popup = QApplication.activePopupWidget()
        if popup is not None:  # the combo box opened its list: close it as a person would
            QTest.keyClick(popup, Qt.Key.Key_Escape)
            qtbot.wait(50)
        focus = QApplication.focusWidget()
        assert focus is control, (control, focus)  # the canvas does not have the focus
        queue = session.queue
        first = session.current.index
        _key(qtbot, "Right")
        assert session.current.index == queue[(queue.index(first) + 1) % len(queue)], control
        _key(qtbot, "Left")
        assert session.current.index == first, control
        _key(qtbot, "1")
        assert session.choice_of(first) == "A", control
        _key(qtbot, "U")
        assert session.choice_of(first) is None, control
        assert QApplication.focusWidget() is control  # and the control did not take the keys
    for key, choice in zip("1234ABMN", "ABMNABMN"):  # every decision key, then U
        group = session.current.index
        _key(qtbot, key)
        assert session.choice_of(group) == choice, key
        _key(qtbot, "U")
        assert session.choice_of(group) is None, key
    _key(qtbot, "Q")  # Q too, from the checkbox
    assert widget.session is None


def test_typing_in_a_text_field_types(reviewing, qtbot):
    viewer, widget, _ = reviewing("2d", "1366x768")
    _activate(viewer, qtbot)
    widget.tabs.setCurrentIndex(1)  # the Metrics tab: its thresholds field
    edit = widget.metrics.thresholds_edit
    edit.setFocus()
    edit.clear()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is edit, timeout=5000)
    keys = widget._review.window_keys
    assert not keys.enabled  # off while a text field has the focus
    before = len(widget.session.steps)
    QTest.keyClicks(edit, "1M")
    assert edit.text() == "1M" and len(widget.session.steps) == before
    widget.tabs.setCurrentIndex(0)


def test_window_keys_stand_aside_for_the_canvas_and_text_fields(qtbot):
    from qtpy.QtWidgets import QCheckBox, QLineEdit, QVBoxLayout, QWidget

    window = QWidget()
    layout = QVBoxLayout(window)
    canvas, box, edit = QWidget(), QCheckBox("x"), QLineEdit()
    canvas.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    for child in (canvas, box, edit):
        layout.addWidget(child)
    qtbot.addWidget(window)
    hits = []
    keys = WindowKeys(window, canvas, {"next": lambda: hits.append("next")},
                      keys={"Right": "next"})
    keys.bind()
    window.show()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    for widget, enabled in ((box, True), (edit, False), (canvas, False), (box, True)):
        widget.setFocus()
        qtbot.waitUntil(lambda w=widget: QApplication.focusWidget() is w, timeout=5000)
        assert keys.enabled is enabled, widget
    keys.unbind()
    assert not keys.enabled and keys.window is None


# --------------------------------------------------------------------------- item 7: slices


def test_slices_step_with_keys_and_the_slider_shows_the_real_z(reviewing, qtbot):
    viewer, widget, _ = reviewing("3d", "1366x768")
    _activate(viewer, qtbot)
    dims, view = viewer.dims, widget.view
    step = float(view.scale[0])
    assert tuple(dims.axis_labels) == ("z", "y", "x")
    slider = viewer.window._qt_viewer.dims.slider_widgets[0]
    lo, hi = view._z_range
    dims.set_point(0, lo * step)  # the group's first slice
    for key, delta in (("Up", 1), (".", 1), ("Down", -1), (",", -1)):
        z = dims.point[0]
        if key in (".", ","):
            QTest.keyClick(viewer.window._qt_viewer.canvas.native, key)
        else:
            press(viewer, key)
        assert dims.point[0] == z + delta * step, key
        assert slider.curslice_label.text() == f"{dims.point[0]:g}"  # the z of the stack
    assert slider.totslice_label.text() == f"{hi * step:g}"
    assert slider.curslice_label.isReadOnly()
    dims.set_point(0, hi * step)
    press(viewer, "Up")  # the last slice of the group: the slider stays
    assert dims.point[0] == hi * step
    # from a dock control too
    QTest.mouseClick(widget.panel.kind_boxes["match"], Qt.MouseButton.LeftButton)
    QTest.mouseClick(widget.panel.kind_boxes["match"], Qt.MouseButton.LeftButton)
    z = dims.point[0]
    _key(qtbot, "Down")
    assert dims.point[0] == z - step
    screenshot(viewer, qtbot, "review_3d_slices.png")
    press(viewer, "Q")
    assert "z" not in dims.axis_labels  # the user's axes as they were
    assert not slider.curslice_label.isReadOnly()


# --------------------------------------------------------------------------- item 3: Q


def test_q_in_the_app_prints_the_summary_and_closes_the_window(reviewing, qtbot, capsys):
    viewer, widget, _ = reviewing("2d", "1366x768", quit_closes_window=True)
    output = widget._review.output
    press(viewer, "1")
    press(viewer, "Q")
    qtbot.waitUntil(lambda: not hasattr(viewer.window, "_qt_window"), timeout=5000)  # closed
    out = capsys.readouterr().out
    assert f"saved {output}" in out
    assert "A 1 · B 0 · M 0 · N 0 · Auto 0" in out
    assert "undecided:" in out and "unpaired" in out
    assert "Finish adds them (Auto), as the original tool did at the end" in out
    assert output.exists()


def test_q_in_napari_leaves_one_curated_layer_and_the_user_layers(reviewing, qtbot, capsys):
    viewer, widget, layers = reviewing("2d", "1366x768")
    press(viewer, "2")
    press(viewer, "Q")
    assert viewer.window._qt_window.isVisible() and capsys.readouterr().out == ""
    assert [layer.name for layer in viewer.layers] == [
        "image", "mask A", "mask B", "curated: mask_A"]
    assert all(layer.visible for layer in viewer.layers)
    text = widget.message.text()
    assert "Finish adds them (Auto)" in text  # what becomes of the unpaired, on screen


# --------------------------------------------------------------------------- item 4: asking


def _answer(qtbot, *, button: str, dont_ask: bool = False, seen: list):
    """Answer the next message box: tick "don't ask again" if asked, click ``button``."""

    def click():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        seen.append(box.text())
        box.checkBox().setChecked(dont_ask)
        target = next(b for b in box.buttons() if b.text() == button)
        QTest.mouseClick(target, Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, click)


def test_finish_asks_before_leaving_paired_groups_undecided(reviewing, qtbot):
    viewer, widget, _ = reviewing("2d", "1366x768")
    session = widget.session
    press(viewer, "1")
    paired = session.summary()["undecided_paired"]
    assert paired > 0
    seen: list = []
    _answer(qtbot, button="Keep reviewing", seen=seen)
    widget.panel.buttons["finish"].click()
    assert seen == [f"{paired} paired group(s) are still undecided."]
    assert widget.session is session and session.summary()["Auto"] == 0  # nothing done

    _answer(qtbot, button="Finish anyway", dont_ask=True, seen=seen)
    widget.panel.buttons["finish"].click()
    assert len(seen) == 2 and widget.session is None  # finished and saved


def test_dont_ask_again_holds_for_the_review(reviewing, qtbot, monkeypatch):
    viewer, widget, _ = reviewing("2d", "1366x768")
    asked = []

    def answer(parent, *, paired, action):
        asked.append((paired, action))
        return False, True  # keep reviewing, and don't ask again

    monkeypatch.setattr(_panel, "confirm_leaving_undecided", answer)
    widget.panel.buttons["finish"].click()
    assert widget.session is not None and len(asked) == 1
    widget.panel.buttons["finish"].click()  # not asked again: finished
    assert widget.session is None and len(asked) == 1


def test_nothing_is_asked_when_every_paired_group_is_decided(reviewing, qtbot, monkeypatch):
    viewer, widget, _ = reviewing("2d", "1366x768")
    monkeypatch.setattr(_panel, "confirm_leaving_undecided",
                        lambda *a, **k: pytest.fail("asked although nothing is left"))
    session = widget.session
    for group in session.groups:
        if group.paired and session.choice_of(group.index) is None:
            widget.review.decide("N", group=group.index)
    assert session.summary()["undecided_paired"] == 0
    widget.panel.buttons["finish"].click()
    assert widget.session is None


def test_next_file_asks_first(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    import tifffile

    from napari_mask_compare._sample_data import synthetic_masks

    dirs = {name: tmp_path / name for name in ("a", "b", "out")}
    for folder in dirs.values():
        folder.mkdir()
    for seed, name in ((1, "img_000.tif"), (2, "img_001.tif")):
        _, a, b = synthetic_masks((126, 168), seed=seed)
        tifffile.imwrite(dirs["a"] / name, a)
        tifffile.imwrite(dirs["b"] / name, b)
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(*SIZES["1366x768"])
    widget = MaskCompareWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Mask compare", area="right")
    widget.set_folders(mask_a_dir=dirs["a"], mask_b_dir=dirs["b"])
    widget.set_out_dir(dirs["out"])
    start(widget, qtbot)
    names = [layer.name for layer in widget.view.layers.values()]
    assert names == ["A: img_000", "B: img_000", "curated"]  # distinct, no "[1]"
    answers = [(False, False), (True, False)]
    monkeypatch.setattr(_panel, "confirm_leaving_undecided", lambda *a, **k: answers.pop(0))
    widget.panel.next_file_button.click()  # "keep reviewing"
    assert widget._review.output.name == "img_000.tif"
    widget.panel.next_file_button.click()  # "go to the file"
    qtbot.waitUntil(lambda: widget.session is not None and not widget.busy, timeout=30_000)
    assert widget._review.output.name == "img_001.tif" and not answers
    press(viewer, "Q")


# --------------------------------------------------------------------------- item 8: words


def test_words_on_screen_agree(reviewing, qtbot):
    viewer, widget, _ = reviewing("2d", "1366x768")
    session = widget.session
    output = widget.view.layers["output"]
    viewer.layers.selection.active = output
    # napari's status bar tells the review keys, not napari's tool keys
    assert "1/A keep A" in viewer.help and "label eraser" not in viewer.help
    press(viewer, "P")  # napari's brush on the curated layer: napari rewrites the help
    assert output.mode == "paint" and "1/A keep A" in viewer.help
    output.mode = "pan_zoom"
    # hovering the background of the curated layer says nothing about an object
    background = np.argwhere(session.output == 0)[0]
    status = output.get_status(output.data_to_world(background), world=True)
    assert "source" not in status["coordinates"]
    # a group already decided: the message uses the panel's number, and goes on the next move
    group = session.current
    press(viewer, "1")
    widget.go_to(group.index)
    press(viewer, "2")
    number = group.index + 1
    assert f"group {number} is already decided (A)" in widget.message.text()
    assert f"Group {number}</b>" in widget.panel.group_label.text()
    assert f"group {number} ·" in viewer.canvas.overlays.text.text
    press(viewer, "Right")
    assert widget.message.text() == ""
    press(viewer, "Q")
    viewer.layers.selection.active = viewer.layers["mask A"]
    assert "use <" in viewer.help  # napari's own help is back


# --------------------------------------------------------------------------- item 10: after


def test_resume_restores_the_view_and_keeps_one_result_layer(reviewing, qtbot):
    viewer, widget, layers = reviewing("2d", "1366x768")
    panel = widget.panel
    panel.order_combo.setCurrentIndex(1)  # lowest IoU first
    panel.kind_boxes["match"].setChecked(False)
    panel.overlay_box.setChecked(True)
    press(viewer, "1")
    decided = widget.session.log[-1].group
    press(viewer, "Left")  # back to the group just decided, and quit there
    assert widget.session.current.index == decided
    press(viewer, "Q")
    for box in panel.kind_boxes.values():  # the controls as a new window would have them
        box.setChecked(True)
    panel.order_combo.setCurrentIndex(0)
    panel.overlay_box.setChecked(False)

    start(widget, qtbot)  # resumed: as it was left, where it was left
    assert "resumed" in widget.message.text()
    assert panel.order() == "iou" and widget.session.order == "iou"
    assert "match" not in panel.kinds() and "match" not in widget.session.kinds
    assert panel.overlay_box.isChecked() and not viewer.canvas.grid.enabled
    assert widget.session.current.index == decided == widget.view.group.index
    assert "decided <b>A</b>" in panel.group_label.text()  # said before a key is pressed
    press(viewer, "Right")
    press(viewer, "2")
    session = widget.session
    press(viewer, "Q")
    results = [layer for layer in viewer.layers if layer.name.startswith("curated")]
    assert [layer.name for layer in results] == ["curated: mask_A"]
    np.testing.assert_array_equal(results[0].data, session.output)


def test_a_filtered_mask_is_compared_again(make_napari_viewer, qtbot):
    viewer, widget, (_, mask_a, mask_b) = _docked(make_napari_viewer)
    metrics = widget.metrics
    widget.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: "A vs B" in metrics.comparisons and not metrics.busy)
    before = metrics.comparisons["A vs B"]
    metrics.layer_combo.setCurrentText("mask A")
    metrics.rules_edit.setText("npixels < 400")
    metrics.filter_button.click()
    qtbot.waitUntil(lambda: "removed" in metrics.message.text(), timeout=10_000)
    qtbot.waitUntil(lambda: metrics.comparisons.get("A vs B") is not before
                    and not metrics.busy, timeout=10_000)
    np.testing.assert_array_equal(metrics.comparisons["A vs B"].a, mask_a.data)
    assert not np.array_equal(before.a, mask_a.data)


def test_the_metrics_tab_widens_the_dock_and_the_review_narrows_it(reviewing, qtbot):
    from napari_mask_compare._qt._window import METRICS_WIDTH, dock_of

    viewer, widget, _ = reviewing("2d", "1366x768")
    window, canvas = viewer.window._qt_window, viewer.window._qt_viewer.canvas.native
    dock = dock_of(widget)
    narrow = dock.width()
    widget.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: dock.width() >= METRICS_WIDTH - 10, timeout=5000)
    qtbot.waitUntil(lambda: "A vs B" in widget.metrics.comparisons
                    and not widget.metrics.busy, timeout=30_000)
    screenshot(viewer, qtbot, "metrics_tab_1366x768.png")
    widget.tabs.setCurrentIndex(0)
    qtbot.waitUntil(lambda: dock.width() == narrow, timeout=5000)
    qtbot.waitUntil(lambda: canvas.width() >= 0.6 * window.width(), timeout=5000)
