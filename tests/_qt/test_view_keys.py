"""The pure parts of the review view, and the key bindings, without a window."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from napari.components import ViewerModel
from napari.layers import Labels
from napari.utils.key_bindings import coerce_keybinding

from napari_mask_compare._qt._keys import REVIEW_KEYS, ReviewKeys
from napari_mask_compare._qt._view import ReviewView, group_focus, highlight_colors
from napari_mask_compare._qt._widget import describe_group
from napari_mask_compare.session import Session


def _group(bbox, ids_a=(1,), ids_b=(2,)):
    return SimpleNamespace(bbox=bbox, ids_a=ids_a, ids_b=ids_b)


def test_focus_2d_is_the_box_centre_and_size_with_margin():
    a = np.zeros((50, 60), int)
    focus = group_focus(_group((10, 20, 20, 40)), a=a, b=a, margin=5)
    assert focus.center == (14.5, 29.5) and focus.size == (20, 30)
    assert focus.z_range is None and focus.z is None


def test_focus_3d_takes_the_slice_of_largest_overlap():
    a = np.zeros((10, 8, 8), int)
    b = np.zeros_like(a)
    a[2:8, 2:6, 2:6] = 1
    b[2:8, 2:6, 4:6] = 2
    b[6, 2:6, 2:6] = 2  # slice 6 overlaps most
    focus = group_focus(_group((2, 2, 2, 8, 6, 6)), a=a, b=b, margin=0)
    assert focus.z_range == (2, 7) and focus.z == 6


def test_focus_3d_unpaired_takes_the_largest_slice():
    a = np.zeros((6, 8, 8), int)
    a[1, 3:4, 3:4] = 4
    a[2, 1:7, 1:7] = 4
    focus = group_focus(_group((1, 1, 1, 3, 7, 7), ids_a=(4,), ids_b=()), a=a, b=a, margin=0)
    assert focus.z == 2


def test_highlight_colors_pick_out_the_group_even_for_huge_ids():
    colors = highlight_colors([5, 2**32 - 1, 5 + 4093], role="b")
    bright = colors[:, 3] == 1.0
    assert bright.sum() == 2  # 5 and 5 + 4093 share a colour (the colormap is cyclic)
    assert colors[0, 3] == 0.0


def test_describe_group_flags_unpaired():
    a = np.array([[1, 1, 0, 2]])
    b = np.array([[3, 3, 0, 0]])
    session = Session.from_masks(a, b)
    text = describe_group(session.groups[1], session=session)
    assert "UNPAIRED" in text and "only A" in text
    assert "IoU 1.00" in describe_group(session.groups[0], session=session)
    assert "A1–B3 1.000" in describe_group(session.groups[0], session=session, full=True)


def test_keys_are_taken_and_given_back_exactly():
    viewer = ViewerModel()
    labels = viewer.add_labels(np.zeros((4, 4), np.uint16))
    mine = lambda layer: None  # noqa: E731 - a binding the user had before the review
    labels.bind_key("U", mine)
    class_keymap = dict(Labels.class_keymap)  # napari's tools (bound once a window exists)
    hits = []
    keys = ReviewKeys(viewer, {name: (lambda n=name: hits.append(n))
                               for name in set(REVIEW_KEYS.values())})
    keys.bind()
    later = viewer.add_labels(np.zeros((4, 4), np.uint16))  # a layer added mid-review
    for provider in (viewer, labels, later):
        for key, name in REVIEW_KEYS.items():
            provider.keymap[coerce_keybinding(key)](provider)
            assert hits[-1] == name
    keys.unbind()
    assert labels.keymap == {coerce_keybinding("U"): mine}
    assert not later.keymap and not viewer.keymap
    assert dict(Labels.class_keymap) == class_keymap  # napari's tools untouched


def test_view_restores_the_viewer():
    viewer = ViewerModel()
    a = np.zeros((3, 20, 20), np.uint16)
    a[1, 5:9, 5:9] = 1
    user = viewer.add_labels(a, name="user")
    grid = viewer.canvas.grid
    view = ReviewView(viewer, a=a, b=a, output=np.zeros_like(a), image=a.astype(float),
                      scale=(2.0, 1.0, 1.0))
    assert [layer.name for layer in viewer.layers] == [
        "image · A", "A: A", "image · B", "B: B", "image · curated", "curated", "user"]
    assert grid.enabled and grid.stride == 2 and not user.visible
    view.show(_group((1, 5, 5, 2, 9, 9)))
    assert viewer.dims.range[0][:2] == (2.0, 2.0) and viewer.dims.point[0] == 2.0
    view.set_overlay(True)
    assert not grid.enabled
    view.close()
    assert list(viewer.layers) == [user] and user.visible and not grid.enabled
    assert viewer.dims.range[0][:2] == (0.0, 2.0)


@pytest.mark.parametrize("ndim", [2, 3])
def test_view_zooms_to_the_box(ndim):
    viewer = ViewerModel()
    shape = (4, 200, 300)[-ndim:]
    a = np.zeros(shape, np.uint16)
    view = ReviewView(viewer, a=a, b=a, output=a, margin=10)
    bbox = (1, 50, 60, 3, 70, 100)[-2 * ndim:] if ndim == 3 else (50, 60, 70, 100)
    view.show(_group(bbox))
    camera = viewer.scene.camera
    np.testing.assert_allclose(camera.center[-2:], (59.5, 79.5))
    visible = np.asarray(viewer.canvas.viewbox_size(viewer.layers)) / camera.zoom
    assert (visible >= (40, 60)).all() and (visible <= (40 * 1.3 / 0.95, 60 * 1.3 / 0.95)).any()
