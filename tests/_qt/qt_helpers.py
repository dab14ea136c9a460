"""Helpers of the viewer tests: key presses as a person makes them, layers, waiting.

Not a conftest.py: ``tests/conftest.py`` is one already, and two modules named
``conftest`` outside packages collide.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import Qt
from qtpy.QtTest import QTest

SCREENSHOTS = Path(__file__).parent / "screenshots"

#: napari key names -> Qt keys, for the keys a reviewer presses.
QT_KEYS = {
    "1": Qt.Key.Key_1, "2": Qt.Key.Key_2, "3": Qt.Key.Key_3, "4": Qt.Key.Key_4,
    "A": Qt.Key.Key_A, "B": Qt.Key.Key_B, "M": Qt.Key.Key_M, "N": Qt.Key.Key_N,
    "U": Qt.Key.Key_U, "Q": Qt.Key.Key_Q, "Left": Qt.Key.Key_Left, "Right": Qt.Key.Key_Right,
}


def press(viewer, key: str) -> None:
    """Press and release ``key`` on the canvas, as a person does (napari's keymap path)."""
    QTest.keyClick(viewer.window._qt_viewer.canvas.native, QT_KEYS[key])


def add_layers(viewer, layer_tuples):
    """Add (data, meta, type) tuples; return the layers."""
    return [getattr(viewer, f"add_{kind}")(data, **meta) for data, meta, kind in layer_tuples]


def start(widget, qtbot, *, timeout: int = 60_000) -> None:
    """Start the review and wait for the worker and the layers (a review, or a message)."""
    widget.start()
    qtbot.waitUntil(lambda: not widget.busy, timeout=timeout)
    assert widget.session is not None, widget.message.text()

