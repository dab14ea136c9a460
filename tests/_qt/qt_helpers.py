"""Helpers of the viewer tests: key presses and clicks as a person makes them, layers, waiting,
screenshots. The fixtures (windows with a review started) are in ``conftest.py`` beside it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from qtpy.QtCore import QPoint, Qt
from qtpy.QtTest import QTest

from napari_mask_compare._sample_data import make_sample_2d, make_sample_3d

SCREENSHOTS = Path(__file__).parent / "screenshots"
#: The two usual screen sizes: handlers are tested at the first, screenshots taken at both.
SIZES = {"1366x768": (1366, 768), "1920x1080": (1920, 1080)}
#: The plugin's samples, by name: functions giving (data, meta, layer type) tuples.
SAMPLES = {"2d": make_sample_2d, "3d": make_sample_3d}

#: napari key names -> Qt keys, for the keys a reviewer presses.
QT_KEYS = {
    "1": Qt.Key.Key_1, "2": Qt.Key.Key_2, "3": Qt.Key.Key_3, "4": Qt.Key.Key_4,
    "A": Qt.Key.Key_A, "B": Qt.Key.Key_B, "M": Qt.Key.Key_M, "N": Qt.Key.Key_N,
    "U": Qt.Key.Key_U, "Q": Qt.Key.Key_Q, "Left": Qt.Key.Key_Left, "Right": Qt.Key.Key_Right,
    "P": Qt.Key.Key_P, "E": Qt.Key.Key_E, "F": Qt.Key.Key_F, "Z": Qt.Key.Key_Z,
    "Up": Qt.Key.Key_Up, "Down": Qt.Key.Key_Down, "D": Qt.Key.Key_D,
}


def press(viewer, key: str, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """Press and release ``key`` on the canvas, as a person does (napari's keymap path)."""
    QTest.keyClick(viewer.window._qt_viewer.canvas.native, QT_KEYS[key], modifier)


def canvas_point(viewer, layer, voxel) -> QPoint:
    """The canvas pixel that shows the centre of ``voxel`` (data index) of ``layer``.

    The voxel goes to world coordinates by the layer's transform, then to the
    canvas through the vispy view box that shows the layer (in grid mode each
    cell of the grid is a view box with its own camera).
    """
    canvas = viewer.window._qt_viewer.canvas
    world = np.asarray(layer.data_to_world(np.asarray(voxel, dtype=float)))
    y, x = (world[d] for d in viewer.dims.displayed)
    view = _view_box(viewer, canvas, layer)
    canvas_x, canvas_y = (view.transform * view.scene.transform).map([x, y])[:2]
    return QPoint(round(float(canvas_x)), round(float(canvas_y)))


def _view_box(viewer, canvas, layer):
    grid = viewer.canvas.grid
    if not grid.enabled:
        return canvas.view
    index = list(viewer.layers).index(layer)
    for (_, indices), view in zip(grid.iter_viewboxes(viewer.layers), canvas.grid_views):
        if index in indices:
            return view
    raise AssertionError(f"{layer.name} is in no cell of the grid")


def drag(viewer, qtbot, layer, voxels) -> None:
    """Press the left button on the first voxel, move through the others, release on the last.

    Moves are 20 ms apart (vispy drops moves less than 10 ms after the previous one).
    """
    native = viewer.window._qt_viewer.canvas.native
    points = [canvas_point(viewer, layer, voxel) for voxel in voxels]
    button, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QTest.mouseMove(native, points[0])
    qtbot.wait(20)
    QTest.mousePress(native, button, none, points[0])
    for point in points[1:]:
        qtbot.wait(20)
        QTest.mouseMove(native, point)
    qtbot.wait(20)
    QTest.mouseRelease(native, button, none, points[-1])
    qtbot.wait(20)


def click(viewer, qtbot, layer, voxel) -> None:
    """Move to the canvas pixel of ``voxel`` of ``layer``, press and release the left button there.

    Moves and presses are 20 ms apart (vispy drops moves less than 10 ms apart).
    """
    native = viewer.window._qt_viewer.canvas.native
    point = canvas_point(viewer, layer, voxel)
    button, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QTest.mouseMove(native, point)
    qtbot.wait(20)
    QTest.mousePress(native, button, none, point)
    qtbot.wait(20)
    QTest.mouseRelease(native, button, none, point)
    qtbot.wait(20)


def inner_voxel(labels, label, *, z=None) -> tuple[int, ...]:
    """The voxel of object ``label`` farthest from its edge (in slice ``z`` of a stack).

    A click there lands on the object whatever the rounding of the canvas pixel.
    """
    from scipy import ndimage

    plane = labels if z is None else labels[z]
    inside = np.pad(plane == label, 1)
    assert inside.any(), f"object {label} is not in the plane"
    distance = ndimage.distance_transform_edt(inside)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return (int(y), int(x)) if z is None else (int(z), int(y), int(x))


def add_layers(viewer, layer_tuples):
    """Add (data, meta, type) tuples; return the layers."""
    return [getattr(viewer, f"add_{kind}")(data, **meta) for data, meta, kind in layer_tuples]


def start(widget, qtbot, *, timeout: int = 60_000) -> None:
    """Start the review and wait for the worker and the layers (a review, or a message)."""
    widget.start()
    qtbot.waitUntil(lambda: not widget.busy, timeout=timeout)
    assert widget.session is not None, widget.message.text()


def shows_output(layer, session) -> bool:
    """The curated layer shows the session's output: a copy of it (napari paints on the copy)."""
    return layer.data is not session.output and np.array_equal(layer.data, session.output)


def screenshot(viewer, qtbot, name: str, *, wait: int = 300) -> Path:
    """Save the whole window as tests/_qt/screenshots/<name> (to look at) and return its path."""
    SCREENSHOTS.mkdir(exist_ok=True)
    qtbot.wait(wait)
    path = SCREENSHOTS / name
    viewer.screenshot(str(path), canvas_only=False, flash=False)
    return path


def journal_ops(widget) -> list[dict]:
    """The operations of the running review's journal, in order (its header left out)."""
    lines = widget.review.journal.path.read_text().splitlines()
    return [json.loads(line) for line in lines[1:]]
