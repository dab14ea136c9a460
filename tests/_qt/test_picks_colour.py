"""Picks by mouse and colour by disagreement, in a real viewer, as a person uses them.

A click (press and release on one pixel) on an object of the A or B panel
toggles it into the curated output: journaled, undone by U, drawn white in its
panel and named in the panel text. A drag pans and picks nothing. A click on
an object of another group goes to that group. "Colour by disagreement" (D,
or its box) colours every object of A and B by its best IoU, with a legend on
the canvas, and gives the group colours back when off.

In 2D and 3D; the tests that take screenshots at 1366 x 768 and 1920 x 1080,
the others at one size. Screenshots in ``tests/_qt/screenshots/`` (look at them).
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils.colormaps import CyclicLabelColormap, DirectLabelColormap
from qt_helpers import SAMPLES, SIZES, click, drag, inner_voxel, journal_ops, press, screenshot
from qtpy.QtCore import Qt

from napari_mask_compare._qt._view import highlight_colors
from napari_mask_compare.disagreement import BIN_COLORS, iou_bins
from napari_mask_compare.view_settings import read_view_settings

WHITE = [1.0, 1.0, 1.0, 1.0]


def _z(viewer, widget):
    """The slice shown (None in 2D)."""
    view = widget.view
    return None if view.a.ndim == 2 else round(viewer.dims.point[0] / view.scale[0])


def _go_to_group_of_two(viewer, widget, qtbot, kind="split"):
    """Show the first group of ``kind``; return it."""
    group = next(g for g in widget.session.groups if g.kind == kind)
    widget.go_to(group.index)
    qtbot.wait(50)
    return group


def _largest_in_slice(labels, ids, z):
    """The id among ``ids`` with the most voxels in the slice shown."""
    plane = labels if z is None else labels[z]
    return max(ids, key=lambda label: int(np.count_nonzero(plane == label)))


def _other_object_in_sight(viewer, widget, side: str):
    """An object of ``side`` ("a" or "b") in another group than the one shown, in sight.

    Returns
    -------
    group, label, voxel
        Its group, its id, and its voxel farthest from its edge within the view.
    """
    session, view = widget.session, widget.view
    labels = view.a if side == "a" else view.b
    z = _z(viewer, widget)
    plane = labels if z is None else labels[z]
    visible = np.asarray(viewer.canvas.viewbox_size(viewer.layers)) / viewer.scene.camera.zoom
    center = np.asarray(viewer.scene.camera.center[-2:])
    lo = np.maximum(np.ceil(center - visible / 2 + 3), 0).astype(int)
    hi = np.floor(center + visible / 2 - 3).astype(int)
    window = plane[lo[0]:hi[0], lo[1]:hi[1]]
    current = getattr(session.current, f"ids_{side}")
    ids, counts = np.unique(window[window > 0], return_counts=True)
    candidates = [(n, int(i)) for i, n in zip(ids, counts) if int(i) not in current]
    assert candidates, "no object of another group in sight"
    label = max(candidates)[1]
    y, x = inner_voxel(np.where(window == label, window, 0), label)
    voxel = (int(y + lo[0]), int(x + lo[1]))
    group = next(g for g in session.groups if label in getattr(g, f"ids_{side}"))
    return group, label, (voxel if z is None else (z, *voxel))


def _shown_color(layer, label) -> list[float]:
    return np.round(layer.colormap.map(np.array([label], dtype=layer.data.dtype))[0], 3).tolist()


@pytest.mark.parametrize("sample", list(SAMPLES))
@pytest.mark.parametrize("size", list(SIZES))
def test_a_click_picks_an_object_and_u_undoes_it(reviewing, qtbot, sample, size):
    viewer, widget, _ = reviewing(sample, size)
    session, view = widget.session, widget.view
    group = _go_to_group_of_two(viewer, widget, qtbot)
    z = _z(viewer, widget)
    a_id = group.ids_a[0]
    b_id = _largest_in_slice(view.b, group.ids_b, z)
    layer_a, layer_b = view.layers["a"], view.layers["b"]
    camera = (tuple(viewer.scene.camera.center), viewer.scene.camera.zoom)

    click(viewer, qtbot, layer_a, inner_voxel(view.a, a_id, z=z))  # A's object

    assert session.picks(group.index) == {("A", a_id): 1}
    assert session.choice_of(group.index) == "P" and session.current.index == group.index
    assert journal_ops(widget)[-1] == {"op": "pick", "group": group.index, "side": "A",
                                        "id": a_id}
    assert np.array_equal(session.output == 1, view.a == a_id)
    qtbot.waitUntil(lambda: np.array_equal(view.layers["output"].data, session.output),
                    timeout=5000)
    assert _shown_color(layer_a, a_id) == WHITE  # it looks picked
    assert f"picked</b> A{a_id}" in widget.panel.group_label.text()
    assert "P 1" in widget.panel.counts_label.text()
    assert f"picked A{a_id}" in viewer.canvas.overlays.text.text
    camera_after = (tuple(viewer.scene.camera.center), viewer.scene.camera.zoom)
    assert camera_after == camera  # the view stays where it was

    click(viewer, qtbot, layer_b, inner_voxel(view.b, b_id, z=z))  # and one of B's
    assert set(session.picks(group.index)) == {("A", a_id), ("B", b_id)}
    assert _shown_color(layer_b, b_id) == WHITE
    assert "2 picks" in widget.panel.counts_label.text()
    screenshot(viewer, qtbot, f"picks_{sample}_{size}.png")

    press(viewer, "U")  # B's pick undone, exactly
    assert session.picks(group.index) == {("A", a_id): 1}
    assert not np.isin(session.output, [2]).any()
    assert _shown_color(layer_b, b_id) != WHITE
    assert journal_ops(widget)[-1] == {"op": "undo"}
    press(viewer, "U")
    assert session.picks(group.index) == {} and session.choice_of(group.index) is None
    assert not session.output.any() and _shown_color(layer_a, a_id) != WHITE


def test_a_drag_pans_and_picks_nothing(reviewing, qtbot):
    viewer, widget, _ = reviewing("2d", "1366x768")
    session, view = widget.session, widget.view
    group = _go_to_group_of_two(viewer, widget, qtbot)
    a_id = group.ids_a[0]
    y, x = inner_voxel(view.a, a_id)
    center = tuple(viewer.scene.camera.center)
    drag(viewer, qtbot, view.layers["a"], [(y, x), (y, x + 4), (y, x + 8)])
    assert tuple(viewer.scene.camera.center) != center  # panned
    assert session.picks(group.index) == {} and not session.steps


def test_a_click_on_another_group_goes_there_and_a_second_click_picks(reviewing, qtbot):
    viewer, widget, _ = reviewing("2d", "1920x1080")
    session, view = widget.session, widget.view
    _go_to_group_of_two(viewer, widget, qtbot, kind="merge")
    other, label, voxel = _other_object_in_sight(viewer, widget, "a")

    click(viewer, qtbot, view.layers["a"], voxel)
    assert session.current.index == other.index and not session.steps
    assert f"group {other.index + 1} shown" in widget.message.text()

    click(viewer, qtbot, view.layers["a"], inner_voxel(view.a, label))  # now it is picked
    assert ("A", label) in session.picks(other.index)
    press(viewer, "Q")


def test_in_the_overlay_view_a_click_picks_from_the_selected_layer(reviewing, qtbot):
    viewer, widget, _ = reviewing("2d", "1366x768")
    session, view = widget.session, widget.view
    widget.panel.overlay_box.setChecked(True)
    group = _go_to_group_of_two(viewer, widget, qtbot, kind="split")
    b_id = group.ids_b[0]
    voxel = inner_voxel(view.b, b_id)
    assert view.a[voxel] in group.ids_a  # A's object lies under it too
    click(viewer, qtbot, view.layers["a"], voxel)  # A first, no layer of them selected
    assert set(session.picks(group.index)) == {("A", int(view.a[voxel]))}
    viewer.layers.selection.active = view.layers["b"]
    click(viewer, qtbot, view.layers["b"], voxel)
    assert ("B", b_id) in session.picks(group.index)
    screenshot(viewer, qtbot, "picks_2d_overlay.png")


def test_a_click_with_a_painting_tool_is_napari_s(reviewing, qtbot):
    viewer, widget, _ = reviewing("2d", "1366x768")
    session, view = widget.session, widget.view
    output = view.layers["output"]
    viewer.layers.selection.active = output
    press(viewer, "P")  # napari's brush on the curated layer
    group = _go_to_group_of_two(viewer, widget, qtbot)
    voxel = inner_voxel(view.a, group.ids_a[0])
    click(viewer, qtbot, output, voxel)  # a dab of paint, not a pick
    assert session.picks(group.index) == {}
    assert [step.op["op"] for step in session.steps] == ["edit"]


def _expected_colors(widget, role):
    objects = widget.review.session  # the review's session: its table gives the IoUs
    table = objects.table
    from napari_mask_compare.disagreement import best_ious

    iou = best_ious(table)[0 if role == "a" else 1]
    ids = table.ids_a if role == "a" else table.ids_b
    return ids, np.asarray(BIN_COLORS, dtype=np.float32)[iou_bins(iou)]


@pytest.mark.parametrize("sample", list(SAMPLES))
@pytest.mark.parametrize("size", list(SIZES))
def test_colour_by_disagreement_on_and_off(reviewing, qtbot, sample, size):
    viewer, widget, _ = reviewing(sample, size)
    session, view = widget.session, widget.view
    box = widget.panel.disagreement_box
    before = {role: view.layers[role].colormap for role in ("a", "b")}

    press(viewer, "D")
    assert box.isChecked()
    qtbot.waitUntil(lambda: isinstance(view.layers["a"].colormap, DirectLabelColormap),
                    timeout=20_000)
    for role in ("a", "b"):
        layer = view.layers[role]
        ids, rgba = _expected_colors(widget, role)
        shown = layer.colormap.map(ids.astype(layer.data.dtype))
        np.testing.assert_allclose(shown, rgba, atol=1e-6)  # every object, its bin's colour
    legend = [o for key, o in viewer.canvas.overlays.items() if "legend" in str(key)]
    assert len(legend) == 4 and all(o.visible for o in legend)
    assert {o.text for o in legend} >= {"best IoU ≥ 0.75"}
    screenshot(viewer, qtbot, f"disagreement_{sample}_{size}.png")
    widget.panel.overlay_box.setChecked(True)
    screenshot(viewer, qtbot, f"disagreement_{sample}_{size}_overlay.png")
    widget.panel.overlay_box.setChecked(False)

    # a click on an object of another group goes to its group (and picks nothing)
    other, _, voxel = _other_object_in_sight(viewer, widget, "b")
    click(viewer, qtbot, view.layers["b"], voxel)
    assert session.current.index == other.index and not session.steps

    press(viewer, "D")  # off: the group colours come back
    assert not box.isChecked()
    assert not any("legend" in str(key) for key in viewer.canvas.overlays)
    for role in ("a", "b"):
        colormap = view.layers[role].colormap
        assert isinstance(colormap, CyclicLabelColormap)
        ids = session.current.ids_a if role == "a" else session.current.ids_b
        np.testing.assert_allclose(colormap.colors, highlight_colors(ids, role=role))
    assert type(before["a"]) is type(view.layers["a"].colormap)
    press(viewer, "Q")
    assert not any("legend" in str(key) for key in viewer.canvas.overlays)


def test_colour_by_disagreement_is_kept_and_picks_show_in_it(reviewing, qtbot):
    viewer, widget, _ = reviewing("2d", "1366x768")
    session, view = widget.session, widget.view
    widget.panel.disagreement_box.setChecked(True)
    qtbot.waitUntil(lambda: isinstance(view.layers["a"].colormap, DirectLabelColormap),
                    timeout=20_000)
    group = _go_to_group_of_two(viewer, widget, qtbot)
    assert isinstance(view.layers["a"].colormap, DirectLabelColormap)  # kept from group to group
    a_id = group.ids_a[0]
    click(viewer, qtbot, view.layers["a"], inner_voxel(view.a, a_id))
    assert ("A", a_id) in session.picks(group.index)
    assert _shown_color(view.layers["a"], a_id) == WHITE
    press(viewer, "U")
    assert _shown_color(view.layers["a"], a_id) != WHITE
    output = widget.review.output
    press(viewer, "Q")
    assert read_view_settings(output).disagreement is True  # saved beside the output


def test_keys_table_has_d_and_the_panel_says_it(reviewing, qtbot):
    viewer, widget, _ = reviewing("2d", "1366x768")
    assert "(D)" in widget.panel.disagreement_box.text()
    widget.panel.disagreement_box.setFocus()  # focus on the dock: D still works
    qtbot.keyClick(widget.panel.disagreement_box, Qt.Key.Key_D)
    assert widget.panel.disagreement_box.isChecked()


def test_a_and_b_are_the_same_colours_in_the_viewer_and_in_the_report():
    """The title colour of A's and B's panels is the colour of their bars in sizes.png."""
    from matplotlib.colors import to_rgb
    from matplotlib.figure import Figure

    from napari_mask_compare import plots
    from napari_mask_compare._qt._view import make_review_layers

    a = np.zeros((8, 8), np.uint16)
    layers = make_review_layers(a=a, b=a, output=a)
    ax = Figure().add_subplot()
    plots.plot_sizes(ax, [10, 20], [15])
    handles, labels = ax.get_legend_handles_labels()
    bars = {label[0].lower(): handle.get_facecolor()[:3] for handle, label in zip(handles, labels)}
    for role in ("a", "b"):
        assert np.allclose(bars[role], to_rgb(layers[role].name_overlay.color[:3])), role
