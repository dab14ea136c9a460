"""Colour by disagreement, computed off the GUI thread.

:func:`colouring` reads the review's overlap table (pairing A and B again
only when the session has none) into every object's best IoU and group
(:func:`..disagreement.object_ious`) and builds the two colormaps (napari
validates every colour of a direct colormap: about 0.3 s for 30,000
objects). :class:`ColouringWorker` runs it in a napari thread worker and
hands the result back on the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from napari.qt.threading import create_worker
from qtpy.QtCore import QObject, Signal

from ..disagreement import ObjectIoU, object_ious
from ..matching import overlap_table
from ._view import disagreement_colormap

__all__ = ["Colouring", "ColouringWorker", "colouring", "objects_of"]


@dataclass(frozen=True)
class Colouring:
    """Every object's best IoU and group, its colour, and the colormaps made of them.

    Attributes
    ----------
    session : session.Session
        The session coloured.
    objects : ObjectIoU
    colors : dict
        ``{"a": (ids, rgba), "b": (ids, rgba)}``.
    colormaps : dict
        Role -> DirectLabelColormap with the ``picked`` ids white.
    picked : frozenset of (side, id)
        The picks the colormaps show.
    """

    session: object
    objects: ObjectIoU
    colors: dict
    colormaps: dict
    picked: frozenset


def objects_of(session) -> ObjectIoU:
    """Best IoU and review group of every object of the session's A and B."""
    table = session.table if session.table is not None else overlap_table(session.a, session.b)
    return object_ious(table, session.groups)


def colouring(session, *, picked=frozenset(), objects: ObjectIoU | None = None) -> Colouring:
    """Colours of every object by its best IoU, and their colormaps (see the module).

    Parameters
    ----------
    session : session.Session
    picked : frozenset of (side, id)
        Objects drawn white (the picks of the group shown).
    objects : ObjectIoU, optional
        Already computed.
    """
    objects = objects if objects is not None else objects_of(session)
    colors = {"a": objects.colors("A"), "b": objects.colors("B")}
    colormaps = {
        role: disagreement_colormap(
            *colors[role], picked=[label for side, label in picked if side == role.upper()])
        for role in ("a", "b")}
    return Colouring(session, objects, colors, colormaps, frozenset(picked))


class ColouringWorker(QObject):
    """Runs :func:`colouring` in a thread; :attr:`ready` gives the :class:`Colouring`."""

    ready = Signal(object)
    #: The worker failed: one line.
    failed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._worker = None

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def start(self, session, *, picked=frozenset(), objects=None) -> None:
        """Compute the colouring of ``session`` off the GUI thread (once at a time)."""
        if self._worker is not None:
            return
        worker = create_worker(colouring, session, picked=frozenset(picked), objects=objects)
        worker.returned.connect(self.ready.emit)
        worker.errored.connect(lambda err: self.failed.emit(f"{type(err).__name__}: {err}"))
        worker.finished.connect(self._on_finished)
        self._worker = worker
        worker.start()

    def _on_finished(self) -> None:
        self._worker = None
