"""The Metrics panel: table, plots, export and filter, driven through its handlers."""

import json

import numpy as np
import pytest
from skimage.draw import disk

from napari_mask_compare import stats
from napari_mask_compare._qt._metrics import COLUMNS, MetricsWidget
from napari_mask_compare.compare import compare, suite_lines
from napari_mask_compare.pairing import overlap_table


@pytest.fixture
def panel(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    widget = MetricsWidget(viewer)
    qtbot.addWidget(widget)
    return viewer, widget


def wait(widget, qtbot, timeout=30_000):
    qtbot.waitUntil(lambda: not widget.busy, timeout=timeout)


def cells(widget, row):
    return {COLUMNS[c][0]: widget.table.item(row, c).text() for c in range(len(COLUMNS))}


def canvas_std(widget):
    widget.canvas.draw()
    return np.asarray(widget.canvas.buffer_rgba())[..., :3].std()


def test_show_comparison_fills_table_summary_and_plots(panel, qtbot, every_kind_2d):
    viewer, widget = panel
    a, b = every_kind_2d
    assert widget.table.rowCount() == 0 and not widget.export_button.isEnabled()
    blank = canvas_std(widget)
    widget.show_comparison(a, b, label="A vs B")
    wait(widget, qtbot)
    expected = stats.matching_stats(overlap_table(a, b))
    assert widget.table.rowCount() == len(expected) == 9
    row = cells(widget, 4)
    assert (row["thresh"], row["tp"], row["fp"], row["fn"]) == ("0.5", "3", "4", "4")
    assert row["f1"] == f"{expected[4]['f1']:.4f}"
    assert "split 1" in widget.summary_label.text() and "A vs B" in widget.summary_label.text()
    scores_axes, histogram_axes = widget.figure.axes
    assert len(scores_axes.lines) == 4     # precision, recall, F1, PQ
    assert sum(p.get_height() for p in histogram_axes.patches) == 4  # 4 paired groups
    assert blank == 0 and canvas_std(widget) > 10
    assert widget.export_button.isEnabled()


def test_several_comparisons_and_thresholds(panel, qtbot, every_kind_2d):
    _, widget = panel
    a, b = every_kind_2d
    widget.show_comparison(a, b, label="A vs B")
    wait(widget, qtbot)
    widget.show_comparison(a, a, label="curated vs A")
    wait(widget, qtbot)
    assert [widget.comparison_combo.itemText(i) for i in range(2)] == ["A vs B", "curated vs A"]
    assert widget.comparison_combo.currentText() == "curated vs A"
    assert cells(widget, 8)["tp"] == "7"                      # identical masks: all match at 0.9
    widget.comparison_combo.setCurrentText("A vs B")
    assert cells(widget, 8)["tp"] == "0"

    widget.thresholds_edit.setText("0.3, 0.5")
    widget._on_thresholds_edited()
    wait(widget, qtbot)
    assert widget.table.rowCount() == 2
    assert [cells(widget, r)["tp"] for r in range(2)] == ["5", "3"]
    widget.comparison_combo.setCurrentText("curated vs A")
    assert widget.table.rowCount() == 2

    widget.thresholds_edit.setText("0.3, x")
    widget._on_thresholds_edited()
    assert "thresholds '0.3, x'" in widget.message.text()
    assert widget.table.rowCount() == 2


def test_the_comparison_is_a_snapshot(panel, qtbot, every_kind_2d, monkeypatch):
    import threading

    from napari_mask_compare._qt import _metrics

    _, widget = panel
    a, b = every_kind_2d
    output = a.copy()
    changed = threading.Event()
    compute = _metrics.compute_comparison

    def after_the_change(*args, **kwargs):
        assert changed.wait(10)
        return compute(*args, **kwargs)

    monkeypatch.setattr(_metrics, "compute_comparison", after_the_change)
    widget.show_comparison(a, output, label="curated vs A")
    output[:] = 0   # the curated output changes while the worker runs
    changed.set()
    wait(widget, qtbot)
    assert cells(widget, 0)["tp"] == "7"


def test_export_report_writes_the_files(panel, qtbot, every_kind_2d, tmp_path, monkeypatch):
    from qtpy.QtWidgets import QFileDialog

    _, widget = panel
    a, b = every_kind_2d
    widget.show_comparison(a, b, label="A vs B", voxel_size=(0.5, 0.5), unit="µm",
                           iou_threshold=0.4)
    wait(widget, qtbot)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *args, **kwargs: str(tmp_path)))
    widget.export_button.click()
    wait(widget, qtbot)
    assert "Report written" in widget.message.text()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["sources"] == {"comparison": "A vs B"}
    assert summary["parameters"]["voxel_size"] == [0.5, 0.5]
    assert summary["parameters"]["iou_threshold"] == 0.4  # groups as the panel made them
    assert (tmp_path / "association.tif").exists() and (tmp_path / "scores.png").exists()


def test_filter_removes_objects_with_napari_undo(panel, qtbot, tmp_path, monkeypatch):
    from qtpy.QtWidgets import QFileDialog

    viewer, widget = panel
    labels = np.zeros((40, 60), np.uint16)
    labels[2:5, 2:5] = 1                    # 9 px: removed
    labels[disk((25, 20), 9)] = 2           # round, large: kept
    labels[10:12, 30:60] = 3                # a bar of 60 px: not round, < 200: removed
    layer = viewer.add_labels(labels.copy(), name="output")
    assert widget.layer_combo.currentText() == "output"
    widget.rules_edit.setText("npixels < 50 or circularity < 0.5 and npixels < 200")
    widget.filter_button.click()
    wait(widget, qtbot)
    assert np.array_equal(layer.data, np.where(labels == 2, labels, 0))
    assert "removed 2 of 3 objects" in widget.message.text()
    rows = widget.last_filter.rows()
    assert [(r["label"], r["status"]) for r in rows] == [
        (1, "Removed"), (2, "Correct"), (3, "Removed")]
    layer.undo()
    assert np.array_equal(layer.data, labels)

    path = tmp_path / "filter.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *args, **kwargs: (str(path), "")))
    widget.save_filter_button.click()
    assert path.read_text().splitlines()[0] == "label,status,conditions"
    assert path.read_text().count("Removed") == 2


def test_filter_refuses_bad_rules_without_touching_the_layer(panel, qtbot):
    viewer, widget = panel
    labels = np.zeros((10, 10), np.uint16)
    labels[1:3, 1:3] = 1
    layer = viewer.add_labels(labels.copy(), name="output")
    widget.rules_edit.setText("npixels <")
    widget.filter_button.click()
    assert "cannot read condition" in widget.message.text() and not widget.busy
    widget.rules_edit.setText("size < 3")
    widget.filter_button.click()
    assert "unknown property 'size'" in widget.message.text() and not widget.busy
    assert np.array_equal(layer.data, labels)


def test_layer_list_follows_the_viewer(panel):
    viewer, widget = panel
    assert widget.layer_combo.count() == 0
    viewer.add_image(np.zeros((4, 4)), name="image")
    viewer.add_labels(np.zeros((4, 4), np.uint8), name="masks")
    assert [widget.layer_combo.itemText(i) for i in range(widget.layer_combo.count())] == [
        "masks"]
    viewer.layers.remove("masks")
    assert widget.layer_combo.count() == 0


def test_bad_input_is_refused_and_worker_errors_are_shown(panel, qtbot, monkeypatch):
    from napari_mask_compare._qt import _metrics

    _, widget = panel
    with pytest.raises(ValueError, match="differ in shape"):
        widget.show_comparison(np.zeros((3, 3), np.uint8), np.zeros((3, 4), np.uint8),
                               label="bad")
    with pytest.raises(ValueError, match="integer labels, got float32"):
        widget.show_comparison(np.zeros((3, 3), np.float32), np.zeros((3, 3), np.float32),
                               label="float")

    def boom(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(_metrics, "compute_comparison", boom)
    widget.show_comparison(np.zeros((3, 3), np.uint8), np.zeros((3, 3), np.uint8), label="x")
    wait(widget, qtbot)
    assert widget.message.text() == "Error: out of memory"
    assert widget.comparison_combo.count() == 0


def test_results_from_before_a_clear_are_dropped(panel, qtbot, every_kind_2d):
    _, widget = panel
    a, b = every_kind_2d
    widget.show_comparison(a, b, label="A vs B")
    widget.clear()                     # a new review starts while the worker runs
    wait(widget, qtbot)
    assert widget.comparisons == {} and widget.table.rowCount() == 0
    widget.show_comparison(a, b, label="A vs B")
    wait(widget, qtbot)
    assert list(widget.comparisons) == ["A vs B"]


def test_the_filter_offered_fits_the_layer(panel):
    viewer, widget = panel
    viewer.add_labels(np.zeros((4, 8, 8), np.uint16), name="stack")
    assert widget.layer_combo.currentText() == "stack"
    rules = widget.rules_edit.text()
    assert "sphericity" in rules and "circularity" not in rules
    viewer.add_labels(np.zeros((8, 8), np.uint16), name="plane")
    widget.layer_combo.setCurrentText("plane")
    assert "circularity" in widget.rules_edit.text()
    widget.rules_edit.setText("npixels < 7")  # typed by hand: stays
    widget.layer_combo.setCurrentText("stack")
    assert widget.rules_edit.text() == "npixels < 7"


def test_the_message_speaks_of_the_comparison_shown(panel, qtbot, every_kind_2d):
    _, widget = panel
    a, b = every_kind_2d
    widget.show_comparison(a, b, label="A vs B")
    wait(widget, qtbot)
    widget.show_comparison(b, a, label="curated vs B")
    wait(widget, qtbot)
    assert widget.comparison_combo.currentText() == "curated vs B"
    assert widget.message.text() == "curated vs B: done."
    widget.comparison_combo.setCurrentText("A vs B")
    assert "curated vs B" not in widget.message.text()
    widget.show_comparison(b, b, label="curated vs B")  # updated while A vs B shows
    wait(widget, qtbot)
    assert widget.comparison_combo.currentText() == "A vs B"  # not pulled away
    assert "curated vs B" not in widget.message.text()
    assert cells(widget, 0)["tp"] == "5"  # still A vs B


def test_the_inputs_of_a_running_review_are_not_filtered(panel, qtbot):
    viewer, widget = panel
    labels = np.zeros((10, 10), np.uint16)
    labels[1:3, 1:3] = 1
    layer = viewer.add_labels(labels.copy(), name="mask A")
    widget.locked_layers = (layer,)
    assert widget.apply_filter(layer, [[("npixels", "<", 50.0)]]) is None
    assert "input of the running review" in widget.message.text()
    assert np.array_equal(layer.data, labels) and not widget.busy


# ------------------------------------------------------------------ metric suite and objects


def _object_rows(widget):
    model = widget.objects
    keys = [key for _, key in _metrics_columns()] + ["group"]
    return [{key: model.value(row, key) for key in keys} for row in range(model.rowCount())]


def _metrics_columns():
    from napari_mask_compare._qt._objects import OBJECT_COLUMNS

    return OBJECT_COLUMNS


def _click_header(widget, qtbot, column):
    from qtpy.QtCore import QPoint, Qt

    header = widget.objects_view.horizontalHeader()
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(x, header.height() // 2))


def _click_row(widget, qtbot, row):
    from qtpy.QtCore import Qt

    view = widget.objects_view
    index = widget.objects.index(row, 1)
    view.scrollTo(index)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualRect(index).center())


def test_the_suite_lines_taxonomy_and_object_table(panel, qtbot, every_kind_2d):
    viewer, widget = panel
    a, b = every_kind_2d
    widget.resize(700, 1400)
    widget.show()
    widget.show_comparison(a, b, label="A vs B")
    wait(widget, qtbot)
    expected = compare(a, b)
    lines = suite_lines(expected.summary)
    assert widget.suite_label.text() == "\n".join(lines)
    assert widget.suite_label.isVisible() and widget.suite_label.wordWrap()
    assert any(line.startswith("boundary of ") for line in lines)  # A vs B: measured
    (taxonomy_axes,) = widget.taxonomy_figure.axes
    counts = expected.summary["taxonomy"]["counts"]
    assert sum(p.get_height() for p in taxonomy_axes.patches) == sum(counts.values()) == 8

    # one row per object of A and of B, A's then B's by id
    model = widget.objects
    assert model.rowCount() == len(np.unique(a)) - 1 + len(np.unique(b)) - 1 == 14
    rows = _object_rows(widget)
    assert [(r["side"], r["id"]) for r in rows] == list(
        zip(expected.objects["side"], expected.objects["id"]))
    assert [r["iou"] for r in rows] == expected.objects["iou"]

    iou_column = [c[0] for c in _metrics_columns()].index("IoU")
    _click_header(widget, qtbot, iou_column)
    first = [r["iou"] for r in _object_rows(widget)]
    assert first in (sorted(expected.objects["iou"]),
                     sorted(expected.objects["iou"], reverse=True))
    _click_header(widget, qtbot, iou_column)   # again: the other way
    assert [r["iou"] for r in _object_rows(widget)] == first[::-1]
    shown = model.data(model.index(0, iou_column))
    assert shown == f"{first[::-1][0]:.3f}"
    _click_row(widget, qtbot, 0)               # no review runs: a message, nothing else
    assert "running review" in widget.message.text()

    widget.show_comparison(a, a, label="curated vs A")   # curated: no boundary metrics
    wait(widget, qtbot)
    assert widget.suite_label.text().splitlines()[-1].startswith("boundary: not measured")
    assert widget.suite_label.text() == "\n".join(
        suite_lines(compare(a, a, boundary=False).summary))

    widget.comparison_combo.setCurrentText("A vs B")
    from qt_helpers import SCREENSHOTS
    SCREENSHOTS.mkdir(exist_ok=True)
    qtbot.wait(200)
    widget.grab().save(str(SCREENSHOTS / "metrics_suite.png"))


def test_a_click_on_an_object_goes_to_its_review_group(make_napari_viewer, qtbot, tmp_path,
                                                        every_kind_2d):
    from qt_helpers import add_layers, start

    from napari_mask_compare._qt._widget import MaskCompareWidget

    a, b = every_kind_2d
    viewer = make_napari_viewer(show=True)
    widget = MaskCompareWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Mask compare", area="right")
    image, layer_a, layer_b = add_layers(viewer, [
        (np.zeros(a.shape, np.uint8), {"name": "image"}, "image"),
        (a, {"name": "mask A"}, "labels"), (b, {"name": "mask B"}, "labels")])
    widget.set_layers(image=image, mask_a=layer_a, mask_b=layer_b)
    widget.set_out_dir(tmp_path)
    start(widget, qtbot)
    session, metrics = widget.session, widget.metrics
    widget.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: "A vs B" in metrics.comparisons and not metrics.busy,
                    timeout=30_000)
    comparison = metrics.comparisons["A vs B"]
    assert comparison.table is session.table       # the review's pairing, not made again
    assert comparison.review is session
    rows = _object_rows(metrics)
    assert len(rows) == 14

    target = next(r for r in rows if r["kind"] == "only_b")   # not the first group
    assert session.current.index != target["group"]
    _click_row(metrics, qtbot, rows.index(target))
    assert session.current.index == target["group"]
    assert f"group {target['group']}" in metrics.message.text()

    for kind, box in widget.panel.kind_boxes.items():  # hide the merges from the queue
        box.setChecked(kind != "merge")
    merged = next(r for r in rows if r["kind"] == "merge")
    before = session.current.index
    _click_row(metrics, qtbot, rows.index(merged))
    assert session.current.index == before
    assert "not in the queue" in metrics.message.text()
    widget.end_review()
    _click_row(metrics, qtbot, rows.index(target))
    assert "running review" in metrics.message.text()
