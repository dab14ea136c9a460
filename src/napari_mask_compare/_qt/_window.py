"""napari's main window, seen from the dock: its events, the canvas' focus, the dock's width.

:class:`ViewerEvents` passes on the viewer's events a review follows (the
slider, the canvas' size, the window closing).

The dock is narrow for the review and wider for the Metrics tab
(:class:`TabWidths`); each tab scrolls in it (:func:`scrolling`) so that the
dock stays narrow and short whatever it holds.
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, QObject, Qt
from qtpy.QtWidgets import QDockWidget, QFrame, QMainWindow, QScrollArea, QWidget

__all__ = ["DOCK_WIDTH", "METRICS_WIDTH", "TabWidths", "ViewerEvents", "dock_of",
           "focus_canvas", "qt_window", "scrolling"]

#: Width the dock asks for: at 1366 x 768, napari's layer controls (320 px) and
#: this leave the canvas at least 60% of the window.
DOCK_WIDTH = 190
#: Width the dock takes while the Metrics tab shows (its table and plots need it); the
#: canvas gets the room back with the Review tab. A width set by hand is kept per tab.
METRICS_WIDTH = 460


def qt_window(viewer):
    """napari's QMainWindow, None without a window."""
    return getattr(getattr(viewer, "window", None), "_qt_window", None)


def focus_canvas(viewer) -> None:
    """Give the keyboard focus to the canvas (where napari's keymaps hear the keys)."""
    qt_viewer = getattr(getattr(viewer, "window", None), "_qt_viewer", None)
    if qt_viewer is not None:
        qt_viewer.canvas.native.setFocus()


class ViewerEvents(QObject):
    """Calls ``dims()`` when the slider moves or its range changes, ``resized()`` when the
    canvas is resized, ``closing()`` when napari's window is about to close.

    :meth:`connect` listens, :meth:`disconnect` stops (the viewer outlives the widget).
    """

    def __init__(self, viewer, *, dims, resized, closing, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self._dims, self._resized, self._closing = dims, resized, closing

    def _emitters(self):
        dims = self.viewer.dims.events
        canvas = getattr(self.viewer, "canvas", None)
        sized = (canvas.events.size,) if canvas is not None and hasattr(canvas, "events") else ()
        return [(dims.current_step, self._on_dims), (dims.range, self._on_dims),
                *((emitter, self._on_resized) for emitter in sized)]

    def connect(self) -> None:
        for emitter, callback in self._emitters():
            emitter.connect(callback)
        window = qt_window(self.viewer)  # not kept: a window closed must be free to go
        if window is not None:
            window.installEventFilter(self)

    def disconnect(self) -> None:
        for emitter, callback in self._emitters():
            emitter.disconnect(callback)
        window = qt_window(self.viewer)
        if window is not None:
            window.removeEventFilter(self)

    def _on_dims(self, event=None) -> None:
        self._dims()

    def _on_resized(self, event=None) -> None:
        self._resized()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt API)
        if event.type() == QEvent.Type.Close:
            self._closing()
        return False


def dock_of(widget: QWidget):
    """The QDockWidget holding ``widget`` in a main window, None otherwise (floating)."""
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    if parent is None or parent.isFloating() \
            or not isinstance(parent.parentWidget(), QMainWindow):
        return None
    return parent


class TabWidths:
    """The dock narrow for the review, wider for the Metrics tab (each as last left).

    Parameters
    ----------
    widget : QWidget
        The dock's widget (its tabs: 0 the review, 1 the Metrics tab).
    """

    def __init__(self, widget: QWidget):
        self.widget = widget
        self._widths = {0: DOCK_WIDTH, 1: METRICS_WIDTH}
        self._tab = 0

    def on_tab_changed(self, index: int) -> None:
        dock = dock_of(self.widget)
        if dock is None:
            return
        self._widths[self._tab] = dock.width()
        self._tab = index
        dock.parentWidget().resizeDocks([dock], [self._widths.get(index, DOCK_WIDTH)],
                                        Qt.Orientation.Horizontal)


def scrolling(widget: QWidget, *, horizontal: bool = False) -> QScrollArea:
    """``widget`` in a scroll area: the dock stays narrow and short whatever it holds."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded if horizontal
                                      else Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area
