"""Clicks on the canvas, told apart from drags: a click on an object of A or B.

A reviewer picks an object into the curated output (or goes to its group)
by clicking it; dragging still pans, and napari's tools keep the clicks they
need. :class:`ObjectClicks` puts one generator in the viewer's
``mouse_drag_callbacks`` while a review runs: a left press and release that
moved at most :data:`CLICK_SLOP` pixels, without a modifier key, while no
painting tool is active (the selected layer is in napari's pan/zoom mode),
asks the view which object is under the cursor
(:meth:`._view.ReviewView.object_at`) and hands it on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["CLICK_SLOP", "ObjectClicks"]

#: Canvas pixels the mouse may move between press and release for a click.
CLICK_SLOP = 4.0


class ObjectClicks:
    """Call ``on_click(role, id)`` for a click on an object of A or B.

    Parameters
    ----------
    viewer : napari.Viewer
    view : ._view.ReviewView
        Says which object is under the cursor.
    on_click : callable
        ``on_click(role, label)``: ``role`` "a" or "b", ``label`` the id.
    """

    def __init__(self, viewer, view, on_click: Callable[[str, int], None]):
        self.viewer = viewer
        self.view = view
        self.on_click = on_click
        self.bound = False

    def bind(self) -> None:
        """Listen to the canvas' mouse (first, before napari's tools)."""
        if not self.bound:
            self.viewer.mouse_drag_callbacks.insert(0, self._on_drag)
            self.bound = True

    def unbind(self) -> None:
        if self.bound:
            if self._on_drag in self.viewer.mouse_drag_callbacks:
                self.viewer.mouse_drag_callbacks.remove(self._on_drag)
            self.bound = False

    def _on_drag(self, viewer, event):
        """napari's drag generator: press, moves, release (one event object, updated)."""
        if event.button != 1 or event.modifiers or not self._pan_zoom():
            return
        press = np.asarray(event.pos, dtype=float)
        moved = False
        yield
        while event.type == "mouse_move":
            moved = moved or np.hypot(*(np.asarray(event.pos) - press)) > CLICK_SLOP
            yield
        if moved or np.hypot(*(np.asarray(event.pos) - press)) > CLICK_SLOP:
            return
        hit = self.view.object_at(event.position, viewbox=event.viewbox)
        if hit is not None:
            self.on_click(*hit)

    def _pan_zoom(self) -> bool:
        """True when a click is no tool's (the selected layer pans and zooms)."""
        active = self.viewer.layers.selection.active
        return active is None or str(getattr(active, "mode", "pan_zoom")) == "pan_zoom"
