"""Colour by disagreement, computed off the GUI thread.

:func:`colouring` reads the review's overlap table (pairing A and B again
only when the session has none) into every object's best IoU and group
(:func:`..disagreement.object_ious`) and builds the two colormaps (napari
validates every colour of a direct colormap: about 0.3 s for 30,000
objects). :class:`ColouringWorker` runs it in a napari thread worker for the
running review and shows it when it comes back on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from napari.qt.threading import create_worker
from qtpy.QtCore import QObject, QTimer, Signal

from ..disagreement import ObjectIoU, object_ious
from ..pairing import overlap_table
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
    """Runs :func:`colouring` in a thread; :attr:`ready` gives the :class:`Colouring`.

    :meth:`apply` colours a running review's view as its review says (on or
    off), computing the colours the first time; they are kept for the review
    and shown when they come back.

    Parameters
    ----------
    running : callable, optional
        Returns the running review (:class:`._running.Running`) or None: the
        colours that come back are adopted by it (or computed again for it,
        when they were computed for a review that ended since).
    say : callable, optional
        ``say(text)``: one line for the reviewer (that the colours are computed).
    """

    ready = Signal(object)
    #: The worker failed: one line.
    failed = Signal(str)

    def __init__(self, parent=None, *, running: Callable[[], object] | None = None,
                 say: Callable[[str], None] | None = None):
        super().__init__(parent)
        self._worker = None
        self._running = running
        self._say = say or (lambda text: None)
        if running is not None:
            self.ready.connect(self._on_ready)

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

    def apply(self, running) -> None:
        """Colour ``running``'s objects as its review's view says: by disagreement, or not.

        Parameters
        ----------
        running : ._running.Running
        """
        view = running.view
        if not running.review.view.disagreement:
            view.set_disagreement(None)
        elif running.colouring is not None:
            _show(view, running.colouring)
        elif not self.busy:
            group = running.session.current
            picked = running.session.picks(group.index) if group is not None else ()
            self._say("colouring the objects by their best IoU…")
            self.start(running.session, picked=frozenset(picked), objects=running.objects)

    def _on_ready(self, colouring: Colouring) -> None:
        running = self._running()
        if self._adopt(running, colouring):
            self._say("")
        elif running is not None and running.review.view.disagreement:
            # computed for a review that ended since: the one running wants its own
            QTimer.singleShot(0, self._colour_again)

    def _colour_again(self) -> None:
        running = self._running()
        if running is not None:
            self.apply(running)

    def _adopt(self, running, colouring: Colouring) -> bool:
        """Keep ``colouring`` for ``running`` and show it if asked; False when it is not
        ``running``'s (computed for a review that ended since)."""
        if running is None or colouring.session is not running.session:
            return False
        running.colouring = colouring
        running.objects = colouring.objects
        if running.review.view.disagreement:
            _show(running.view, colouring)
        return True


def _show(view, colouring: Colouring) -> None:
    view.set_disagreement(colouring.colors, colormaps=colouring.colormaps,
                          picked=colouring.picked)
