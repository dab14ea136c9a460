"""Viewer fixtures: napari windows with a review of a sample, shared by the tests.

Opening a napari window and a review costs seconds (the window, six review
layers and their GL programs, and about as much again to end the review), far
more than most viewer tests themselves. :func:`reviewing` hands a test a window
with the widget docked and a review of the 2D or 3D sample just started in it,
as a person has it after Start. The window is kept for the session (one per
sample and screen size) and handed to the next test as it was after Start:

1. :meth:`ReviewWindow.rewind` puts it back (every action undone, the queue,
   the view, the tab, the layers and their tools, the window's size, the
   message), then :func:`fingerprint` (the layers and their modes, the grid,
   the camera, the slider, the panel, the session, the texts on screen...)
   must equal the one taken right after Start;
2. otherwise (the review was ended, or the rewind missed something) the
   review is ended and a new one started, in a new folder, and its
   fingerprint must equal the window's first;
3. otherwise (a test changed the widget or the user layers themselves) the
   window is closed and a new one opened.

A test thus always gets what a new window with a review just started shows,
whichever tests ran before it. A test that needs anything else (no review,
folders, lazy stores, two windows, a window closed and opened again) makes
its own window with napari's ``make_napari_viewer``.
"""

from __future__ import annotations

import hashlib
import itertools
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
from qt_helpers import SAMPLES, SIZES, add_layers, start

from napari_mask_compare._qt._widget import MaskCompareWidget
from napari_mask_compare._qt._window import dock_of, focus_canvas


def _digest(array) -> str:
    return hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=8).hexdigest()


def _rounded(values) -> tuple:
    return tuple(round(float(v), 3) for v in values)


def fingerprint(window: ReviewWindow) -> dict:
    """What a test may see of ``window``: layers, canvas, panel, session, texts on screen.

    The review's folder is left out of the texts (each review has its own).
    """
    viewer, widget = window.viewer, window.widget
    qt_window = viewer.window._qt_window
    camera, dims, grid = viewer.scene.camera, viewer.dims, viewer.canvas.grid
    overlays = viewer.canvas.overlays
    review, running, metrics, panel = widget.review, widget._review, widget.metrics, widget.panel
    out = str(review.output.parent) if review is not None else "\0"
    seen = {
        "window": (qt_window.isVisible(), qt_window.width(), qt_window.height(),
                   dock_of(widget).width(), widget.tabs.currentIndex(),
                   widget.quit_closes_window),
        "signals": [widget.receivers(signal) for signal in (widget.review_started,
                                                            widget.review_ended)],
        "layers": [(layer.name, type(layer).__name__, layer.visible, layer.opacity,
                    getattr(layer, "mode", None), getattr(layer, "contour", None),
                    getattr(layer, "editable", None),
                    type(getattr(layer, "colormap", None)).__name__,
                    sorted(map(str, layer.keymap))) for layer in viewer.layers],
        "labels": {layer.name: (layer.selected_label, layer.brush_size)
                   for layer in viewer.layers if hasattr(layer, "selected_label")},
        "user data": [_digest(layer.data) for layer in window.layers],
        "selection": (getattr(viewer.layers.selection.active, "name", None),
                      sorted(layer.name for layer in viewer.layers.selection)),
        "grid": (grid.enabled, tuple(grid.shape), grid.stride, grid.spacing),
        "camera": (_rounded(camera.center), round(camera.zoom, 4)),
        "dims": (_rounded(dims.point), [tuple(r) for r in dims.range], dims.ndisplay,
                 tuple(dims.axis_labels), tuple(dims.order)),
        "overlays": (overlays.text.visible, overlays.text.text, str(overlays.text.position),
                     sorted(str(key) for key in overlays if "legend" in str(key))),
        "help": viewer.help,
        "keymap": sorted(map(str, viewer.keymap)),
        "message": (widget.message.text().replace(out, "<out>"),
                    bool(widget.message.property("error"))),
        "panel": (panel.view_settings(), panel.group_label.text(), panel.counts_label.text(),
                  {name: button.isEnabled() for name, button in panel.buttons.items()}),
        "metrics": (sorted(metrics.comparisons), metrics.thresholds_edit.text(),
                    metrics.rules_edit.text(), metrics.layer_combo.currentText(),
                    metrics.message.text()),
    }
    if running is not None:
        session, view = running.session, review.view
        seen["review"] = (
            len(session.steps), len(session.objects), session.next_id,
            _digest(session.output), _digest(widget.view.layers["output"].data),
            session.current_index, tuple(session.queue), session.order, tuple(session.kinds),
            (view.order, view.kinds, view.overlay, view.disagreement, view.group),
            running.ask_undecided, running.keys.bound, running.window_keys.bound,
            len(review._listeners), review.save_error is None)
    return seen


@dataclass
class ReviewWindow:
    """A napari window with the widget docked and the sample's layers (the user's)."""

    sample: str
    size: str
    viewer: object
    widget: MaskCompareWidget
    layers: list  #: image, mask A, mask B, as a user opened them
    data: list  #: a copy of their data
    app: object  #: napari's app-model application of this window
    folders: object  #: yields a new empty folder for each review
    first: dict | None = None  #: :func:`fingerprint` after the first Start
    fresh: dict | None = None  #: :func:`fingerprint` after the last Start
    first_group: int | None = None  #: the current group after the last Start
    listeners: tuple = ()  #: the review's listeners after the last Start

    @property
    def closed(self) -> bool:
        return not hasattr(self.viewer.window, "_qt_window")

    def start_new_review(self, qtbot) -> bool:
        """End the review (if one runs), remove the layers tests added, start a new review
        in a new folder; True when the window then shows what it showed after its first."""
        widget = self.widget
        widget.quit_closes_window = False
        if widget.session is not None:
            widget.end_review()
        self._disconnect_tests()
        self._remove_added_layers()
        for layer, data in zip(self.layers, self.data):
            if _digest(layer.data) != _digest(data):  # a test gave it other data
                layer.data = data.copy()
        widget.tabs.setCurrentIndex(0)
        panel = widget.panel  # a new review takes its order, kinds and view from the panel
        panel.order_combo.setCurrentIndex(0)
        for box in panel.kind_boxes.values():
            box.setChecked(True)
        panel.overlay_box.setChecked(False)
        panel.disagreement_box.setChecked(False)
        widget.set_layers(image=self.layers[0], mask_a=self.layers[1], mask_b=self.layers[2])
        widget.set_out_dir(next(self.folders))
        start(widget, qtbot)
        self.first_group = widget.session.current_index
        self.listeners = tuple(widget.review._listeners)
        self._settle(qtbot)
        self.fresh = fingerprint(self)
        self.first = self.first or self.fresh
        return self.fresh == self.first

    def rewind(self, qtbot) -> bool:
        """Put the running review back as it was after Start; True when it shows so."""
        widget, review = self.widget, self.widget.review
        if review is None or self.fresh is None or self._added_layers():
            return False  # layers added by a test go once the review has ended (see below)
        for listener in set(review._listeners) - set(self.listeners):
            review.remove_listener(listener)
        self._disconnect_tests()
        while review.session.steps:
            review.undo()
        review.set_view(overlay=False, disagreement=False)
        review.set_kinds(None)
        review.set_order("spatial")
        review.go_to(self.first_group)
        widget._review.ask_undecided = True
        widget.quit_closes_window = False
        widget.tabs.setCurrentIndex(0)
        widget.metrics.describe_review(review, locked=widget.metrics.locked_layers)
        active, _ = self.fresh["selection"]
        self.viewer.layers.selection.active = self.viewer.layers[active]
        output = widget.view.layers["output"]
        output.mode = "pan_zoom"
        output.selected_label, output.brush_size = self.fresh["labels"][output.name]
        message, error = self.fresh["message"]
        widget.message.say(message.replace("<out>", str(review.output.parent)), error=error)
        self._settle(qtbot)
        return fingerprint(self) == self.fresh

    def _disconnect_tests(self) -> None:
        """Tests connect to the widget's signals (the widget itself does not)."""
        widget = self.widget
        for signal in (widget.review_started, widget.review_ended):
            if widget.receivers(signal):
                signal.disconnect()

    def _added_layers(self) -> list:
        """The layers in the viewer that are neither the user's nor the review's."""
        view = self.widget.view
        keep = [*self.layers, *(view.layers.values() if view is not None else ())]
        return [layer for layer in self.viewer.layers if layer not in keep]

    def _remove_added_layers(self) -> None:
        """Remove the layers tests added, with no review shown: a layer removed while the
        review's grid shows can leave vispy drawing a texture it deleted (napari 0.9.2)."""
        assert self.widget.view is None
        for layer in self._added_layers():
            self.viewer.layers.remove(layer)

    def _settle(self, qtbot) -> None:
        """The window at its size, the canvas with the focus, pending events served."""
        qt_window = self.viewer.window._qt_window
        width, height = SIZES[self.size]
        if (qt_window.width(), qt_window.height()) != (width, height):
            qt_window.resize(width, height)
            qtbot.waitUntil(lambda: qt_window.width() == width, timeout=5000)
        focus_canvas(self.viewer)
        qtbot.wait(50)

    def close(self) -> None:
        if not self.closed:
            self.viewer.close()  # ends the review (saved)


class ReviewWindows:
    """The session's windows, one per (sample, size), opened when first asked for."""

    def __init__(self, tmp_path_factory):
        self._tmp = tmp_path_factory
        self._windows: dict[tuple[str, str], ReviewWindow] = {}
        self._count = itertools.count()
        self._app = None  # the app-model application of the window in use

    @contextmanager
    def in_use(self):
        """napari's code gets the app-model application of the window in use, as
        ``make_napari_viewer`` gives each viewer its own."""
        from napari._app_model._app import NapariApplication

        original = NapariApplication.get_app_model
        with patch.object(NapariApplication, "get_app_model",
                          side_effect=lambda: self._app or original()):
            try:
                yield
            finally:
                self._app = None

    def get(self, sample: str, size: str, qtbot) -> ReviewWindow:
        """The window of ``sample`` at ``size``, as after Start (see the module's text)."""
        window = self._windows.get((sample, size))
        if window is None or window.closed:
            window = self._open(sample, size, qtbot)
        self._app = window.app
        if window.rewind(qtbot) or window.start_new_review(qtbot):
            return window
        window.close()
        window = self._open(sample, size, qtbot)
        window.start_new_review(qtbot)
        return window

    def _open(self, sample: str, size: str, qtbot) -> ReviewWindow:
        """A new window with its own app-model application, the widget docked, the
        sample's layers added."""
        import napari
        from napari._app_model._app import NapariApplication, _napari_names
        from napari._qt._qapp_model.qactions import init_qactions
        from napari._qt.qt_viewer import QtViewer
        from napari.plugins import _initialize_plugins

        app = NapariApplication(f"mask_compare_tests_{next(self._count)}")
        app.injection_store.namespace = _napari_names
        self._app = app
        _initialize_plugins.cache_clear()  # napari registers its actions in this app
        init_qactions.cache_clear()
        viewer = napari.Viewer(show=True, show_welcome_screen=False)
        # kept for the session: not a viewer make_napari_viewer should find left over
        QtViewer._instances.discard(viewer.window._qt_viewer)
        qt_window = viewer.window._qt_window
        qt_window.status_thread.start = lambda *args, **kwargs: None  # as make_napari_viewer
        qt_window.resize(*SIZES[size])
        qtbot.wait_exposed(qt_window, timeout=5000)
        widget = MaskCompareWidget(viewer)
        viewer.window.add_dock_widget(widget, name="Mask compare", area="right")
        layers = add_layers(viewer, SAMPLES[sample]())
        folders = (self._tmp.mktemp(f"review_{sample}_{size}_") for _ in itertools.count())
        window = ReviewWindow(sample, size, viewer, widget, layers,
                              [np.array(layer.data, copy=True) for layer in layers], app, folders)
        self._windows[(sample, size)] = window
        return window

    def close(self) -> None:
        from app_model import Application

        for window in self._windows.values():
            self._app = window.app
            window.close()
            Application.destroy(window.app.name)
        self._windows.clear()


@pytest.fixture(scope="session")
def _review_windows(qapp, tmp_path_factory):
    windows = ReviewWindows(tmp_path_factory)
    yield windows
    with windows.in_use():
        windows.close()


@pytest.fixture
def reviewing(_review_windows, qtbot):
    """Call with a sample ("2d", "3d") and a size ("1366x768", "1920x1080"): (viewer,
    widget, user layers), a review of the sample just started in a window kept for the
    session. ``quit_closes_window``: Q closes the window, as in ``mask-compare review``."""

    def make(sample="2d", size="1366x768", *, quit_closes_window=False):
        window = _review_windows.get(sample, size, qtbot)
        window.widget.quit_closes_window = quit_closes_window
        return window.viewer, window.widget, window.layers

    with _review_windows.in_use():
        yield make


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """The viewer tests run in one process, one after the other (``--dist loadgroup``): two
    napari processes drawing at once under Xvfb's software GL met GL errors in vispy's text."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.xdist_group("viewer"))
