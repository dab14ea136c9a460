"""Which layers the widget offers and pre-selects as image, mask A and mask B (issue 10, item 2).

The bug: with an image and two masks open, the widget showed image "(none)" and the
image as both mask A and mask B, and Start refused. Layers are added in every order,
before and after the widget, by hand and through the reader.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from qt_helpers import start

from napari_mask_compare._qt._widget import MaskCompareWidget
from napari_mask_compare._sample_data import make_sample_2d


@pytest.fixture
def sample():
    """The 2D sample: (image as a camera gives it: uint16, mask A, mask B)."""
    (image, _, _), (a, _, _), (b, _, _) = make_sample_2d()
    return (image * 1000).astype(np.uint16), a, b


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def _widget(viewer):
    return MaskCompareWidget(viewer)


def _shown(widget):
    """What the three combos show: (image, mask A, mask B)."""
    return (widget.image_combo.currentText(), widget.a_combo.currentText(),
            widget.b_combo.currentText())


def _items(combo):
    return [combo.itemText(i) for i in range(combo.count())]


def _add(viewer, kind, data, name):
    return getattr(viewer, f"add_{kind}")(data, name=name)


# ----------------------------------------------------------------------------- orders


@pytest.mark.parametrize(
    "order",
    [("image", "mask A", "mask B"), ("mask A", "mask B", "image"),
     ("mask A", "image", "mask B")],
    ids=["image-then-masks", "masks-then-image", "image-between"],
)
def test_layers_added_one_by_one_are_preselected(viewer, sample, order):
    widget = _widget(viewer)
    arrays = dict(zip(("image", "mask A", "mask B"), sample))
    for name in order:
        _add(viewer, "image" if name == "image" else "labels", arrays[name], name)
    assert _shown(widget) == ("image", "mask A", "mask B")


def test_layers_open_before_the_widget_are_preselected(viewer, sample):
    image, a, b = sample
    _add(viewer, "labels", a, "mask A")
    _add(viewer, "labels", b, "mask B")
    _add(viewer, "image", image, "image")
    assert _shown(_widget(viewer)) == ("image", "mask A", "mask B")


def test_integer_image_is_the_image_and_offered_as_a_mask_after_the_labels(viewer, sample):
    image, a, b = sample
    _add(viewer, "image", image, "img")  # uint16, as read from a camera
    widget = _widget(viewer)
    assert _shown(widget) == ("img", "", "")  # never a mask by default
    assert _items(widget.a_combo) == ["img"]
    _add(viewer, "labels", a, "mask A")
    _add(viewer, "labels", b, "mask B")
    assert _shown(widget) == ("img", "mask A", "mask B")
    for combo in (widget.a_combo, widget.b_combo):  # Labels first, most recent first
        assert _items(combo) == ["mask B", "mask A", "img"]
    assert _items(widget.image_combo) == ["(none)", "img"]


def test_mask_opened_as_an_image_is_offered_but_not_preselected(viewer, sample):
    """A mask that napari's own reader opened as an Image: a mask candidate, not the image."""
    image, a, b = sample
    _add(viewer, "image", image, "img")
    _add(viewer, "image", b, "b as image")  # uint16 labels in an Image layer
    _add(viewer, "labels", a, "mask A")
    widget = _widget(viewer)
    assert _shown(widget) == ("img", "mask A", "")
    assert _items(widget.b_combo) == ["mask A", "b as image", "img"]  # label-like ones first
    assert _items(widget.image_combo) == ["(none)", "img", "b as image"]


def test_only_one_labels_layer(viewer, sample, tmp_path, qtbot):
    image, a, _ = sample
    _add(viewer, "image", image, "img")
    _add(viewer, "labels", a, "mask A")
    widget = _widget(viewer)
    assert _shown(widget) == ("img", "mask A", "")
    assert widget.b_combo.layer() is None
    widget.set_out_dir(tmp_path)
    widget.start()
    assert widget.session is None
    assert "choose a layer for mask A and one for mask B" in widget.message.text()


def test_two_most_recent_labels_older_first(viewer, sample):
    _, a, b = sample
    for name in ("old", "mask A", "mask B"):
        _add(viewer, "labels", a if name != "mask B" else b, name)
    assert _shown(_widget(viewer))[1:] == ("mask A", "mask B")


# ----------------------------------------------------------------------------- choices kept


def test_choices_survive_new_renamed_and_moved_layers(viewer, sample):
    image, a, b = sample
    widget = _widget(viewer)
    img = _add(viewer, "image", image, "img")
    mask_a = _add(viewer, "labels", a, "mask A")
    _add(viewer, "labels", b, "mask B")
    _add(viewer, "labels", a, "later")
    assert _shown(widget) == ("img", "mask A", "mask B")
    mask_a.name = "renamed A"
    viewer.layers.move(viewer.layers.index(img), len(viewer.layers))
    assert _shown(widget) == ("img", "renamed A", "mask B")
    assert widget.a_combo.layer() is mask_a


def test_user_choice_is_kept_and_a_removed_choice_is_refilled(viewer, sample):
    image, a, b = sample
    widget = _widget(viewer)
    _add(viewer, "image", image, "img")
    mask_a = _add(viewer, "labels", a, "mask A")
    mask_b = _add(viewer, "labels", b, "mask B")
    widget.image_combo.set_layer(None)  # "(none)" on purpose
    widget.b_combo.set_layer(mask_a)
    _add(viewer, "image", image, "img 2")
    assert _shown(widget) == ("(none)", "mask A", "mask A")
    viewer.layers.remove(mask_a)  # both masks lose their layer: refilled, distinct
    assert _shown(widget) == ("(none)", "mask B", "")
    extra = _add(viewer, "labels", a, "extra")
    assert _shown(widget) == ("(none)", "mask B", "extra")
    assert (widget.a_combo.layer(), widget.b_combo.layer()) == (mask_b, extra)


# ----------------------------------------------------------------------------- Start


@pytest.mark.parametrize("widget_first", [True, False], ids=["widget-first", "layers-first"])
def test_start_works_on_the_preselected_sample(make_napari_viewer, qtbot, tmp_path,
                                               widget_first):
    viewer = make_napari_viewer(show=True)
    widget = _widget(viewer) if widget_first else None
    for data, meta, kind in make_sample_2d():
        getattr(viewer, f"add_{kind}")(data, **meta)
    widget = widget or _widget(viewer)
    viewer.window.add_dock_widget(widget, name="Mask compare", area="right")
    assert _shown(widget) == ("image", "mask A", "mask B")
    widget.set_out_dir(tmp_path)
    start(widget, qtbot)
    assert widget._review.pair.paths == {"mask_a": "mask A", "mask_b": "mask B",
                                        "image": "image"}
    widget.end_review()


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_files_opened_through_the_reader_are_preselected(make_napari_viewer, qtbot, tmp_path,
                                                         sample, dtype):
    """``napari img.tif a.tif b.tif``: Image + Labels + Labels, chosen as image, A, B."""
    image, a, b = sample
    image = image if dtype == "uint16" else image.astype(np.float32) / 1000
    paths = []
    for name, array in (("img", image), ("a", a), ("b", b)):
        paths.append(tmp_path / f"{name}.tif")
        tifffile.imwrite(paths[-1], array, photometric="minisblack")
    viewer = make_napari_viewer(show=True)
    widget = _widget(viewer)
    viewer.window.add_dock_widget(widget, name="Mask compare", area="right")
    viewer.open(paths, plugin="napari-mask-compare")
    assert [(layer.name, type(layer).__name__) for layer in viewer.layers] == [
        ("img", "Image"), ("a", "Labels"), ("b", "Labels")]
    assert _shown(widget) == ("img", "a", "b")
    assert _shown(_widget(viewer)) == ("img", "a", "b")  # a widget opened afterwards too
    widget.set_out_dir(tmp_path / "out")
    start(widget, qtbot)
    assert widget._review.pair.paths == {"mask_a": "a", "mask_b": "b", "image": "img"}
    widget.end_review()
