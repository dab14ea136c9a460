"""Opening a review off the GUI thread: read, pair, open (or resume), then add the layers.

:class:`ReviewLoader` runs :func:`open_review` in a napari thread worker (the
viewer stays live while a large volume is read and paired), then puts the
review layers into the viewer one per turn of the event loop
(:meth:`._view.ReviewView.open_steps`), and hands the open review over with
:attr:`ReviewLoader.ready`. Bad input comes back as one line
(:attr:`ReviewLoader.refused`), never as a traceback.

A review into a ``.zarr`` output (lazy inputs, larger than memory) pairs
block by block under an :class:`..engine.Engine` opened in the worker, whose
reports drive a napari progress bar ("overlap table: 37/512 blocks"); its
layers hold each group's crop (:mod:`._crops`), never a whole volume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from napari.qt.threading import create_worker
from napari.utils import progress
from qtpy.QtCore import QObject, QTimer, Signal

from .. import read
from ..engine import Engine
from ..errors import InputError
from ..review import Review
from ..view_settings import ViewSettings
from ._crops import Crops
from ._view import ReviewView, make_review_layers

__all__ = ["Opened", "ReviewLoader", "close_quietly", "open_review"]


@dataclass(frozen=True)
class Opened:
    """What the loading worker hands back to the GUI thread."""

    pair: read.MaskPair
    review: Review
    output: Path
    layers: dict


@dataclass(frozen=True)
class _Refused:
    """Bad input met by the worker: a one-line message to show (not an exception,
    which the worker would re-raise as a traceback)."""

    message: str


def open_review(load, *, output: Path, iou_threshold: float, report=None,
                view: ViewSettings | None = None):
    """Worker body: read and validate, pair and open (or resume) the review, make layers.

    ``report(desc, done, total)`` is told the blocks of the overlap table of
    lazy inputs as they are paired (in this thread: the engine is opened
    here). ``view``: the order, kinds and view of a review that has none saved
    (:meth:`..review.Review.open`). Yields a step name before each long step;
    returns :class:`Opened`, or :class:`_Refused` with the message of the
    :class:`InputError` (a review refused, e.g. open in another window,
    holds nothing to release).
    The review is closed again if anything fails after it opened.
    """
    yield "reading"
    try:
        pair = load()
        yield "pairing"
        with Engine(callback=_in_blocks(report, pair.a)):
            review = Review.open(
                pair.a, pair.b, output=output, iou_threshold=iou_threshold,
                inputs={"mask_a": str(pair.paths.get("mask_a")),
                        "mask_b": str(pair.paths.get("mask_b"))},
                classes_a=pair.classes_a, classes_b=pair.classes_b,
                voxel_size=pair.voxel_size or None, unit=pair.unit, view=view,
            )
    except InputError as err:
        return _Refused(str(err))
    try:
        yield "preparing the view"
        names = tuple(_short_name(pair.paths.get(key)) for key in ("mask_a", "mask_b"))
        chunked = review.session.chunked
        curated = review.session.output  # chunked: only its dtype is read
        layers = make_review_layers(a=pair.a, b=pair.b,
                                    output=curated if chunked else curated.copy(),
                                    image=pair.image, scale=pair.voxel_size or None,
                                    names=names, crops=chunked)
    except BaseException:
        close_quietly(review)
        raise
    return Opened(pair, review, output, layers)


def _in_blocks(report, a):
    """An engine callback that tells ``report`` the blocks of ``a`` done (from task counts).

    The blockwise table runs a fixed number of tasks per block of the
    partition: done blocks are the tasks done scaled to the number of blocks.
    """
    if report is None:
        return None
    blocks = math.prod(a.numblocks) if hasattr(a, "numblocks") else 0

    def callback(desc: str, done: int, total: int) -> None:
        if blocks and total:
            report(desc, min(blocks, done * blocks // total), blocks)
        else:
            report(desc, done, total)
    return callback


def close_quietly(review: Review) -> None:
    """Close a review on the way out of an error (that error is the one to report)."""
    try:
        review.close()
    except OSError:
        review.release()


def _short_name(source) -> str:
    return source.stem if isinstance(source, Path) else str(source)


class ReviewLoader(QObject):
    """Opens one review at a time: the worker, then the layers, one per turn.

    Parameters
    ----------
    viewer : napari.Viewer

    Signals
    -------
    step(str)
        A long step begins ("reading", "pairing"...), or advances
        ("overlap table: 37/512 blocks").
    progressed(int, int)
        Done and total of the step that reports them (the blocks paired).
    refused(str)
        Bad input, a review open elsewhere...: one line to show.
    failed(str)
        An unexpected error of the worker, as one line.
    ready(object, object)
        The :class:`Opened` review and its :class:`._view.ReviewView`, layers in.
    finished()
        The worker ended (whatever the outcome).
    """

    step = Signal(str)
    _reported = Signal(str, int, int)
    progressed = Signal(int, int)
    refused = Signal(str)
    failed = Signal(str)
    ready = Signal(object, object)
    finished = Signal()

    def __init__(self, viewer, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self._worker = None
        self._opening = None  # (opened, view, steps) while the layers go in
        self._margin = 15
        self._bar = None  # napari's progress bar of the blocks paired
        self._reporting = False
        self._latest = None  # the last report received, and the last one passed on
        self._passed_on = None
        self._pairing = False  # reports are taken until the worker returns
        self._reported.connect(self._on_reported)  # queued: emitted in the worker

    @property
    def busy(self) -> bool:
        """True while inputs are read and paired, and while the review layers go in."""
        return self._worker is not None or self._opening is not None

    def start(self, load, *, output: Path, iou_threshold: float, margin: int,
              view: ViewSettings | None = None) -> None:
        """Read with ``load()`` and open the review of ``output`` in a worker.

        ``view``: the order, kinds and view of a new review (one with none saved).
        """
        self._margin = int(margin)
        worker = create_worker(
            open_review, load, output=output, iou_threshold=float(iou_threshold),
            report=self._reported.emit, view=view,
            _progress={"total": 3, "desc": "mask-compare: pairing"},
        )
        worker.yielded.connect(self.step.emit)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._pairing = True
        self._latest = self._passed_on = None
        worker.start()

    def abort(self) -> None:
        """The widget goes away while the layers go in: save and let go."""
        opening, self._opening = self._opening, None
        if opening is not None:
            opened, view, steps = opening
            steps.close()
            close_quietly(opened.review)
            view.close()

    def _on_reported(self, desc: str, done: int, total: int) -> None:
        """The worker paired ``done`` of ``total`` blocks: napari's bar and the widget's.

        napari's bar serves the event loop as it is made and updated: a report
        that comes in meanwhile is only noted, and the latest one is shown
        when the one being shown is done; one still noted when the worker
        returns is passed on then (so the last report is never lost). A report
        that comes after the worker returned (the engine's threads report on
        their own) is dropped: it would cover the refusal's line.
        """
        self._latest = (desc, done, total)
        if self._reporting or not self._pairing:
            return
        self._reporting = True
        try:
            shown = None
            while self._pairing and self._latest != shown:
                shown = desc, done, total = self._latest
                # each call to the bar may serve the event loop, where the worker may return
                # and close the bar: this report then goes no further (_on_returned passes it on)
                bar = self._bar = self._bar or progress(total=total, desc=desc)
                text = f"{desc}: {done}/{total} blocks"
                if self._pairing:
                    bar.update(done - bar.n)
                if self._pairing:
                    bar.set_description(text)
                if self._pairing:
                    self._pass_on()
        finally:
            self._reporting = False
            if not self._pairing:  # a bar made after the worker returned goes too
                self._close_bar()

    def _pass_on(self) -> None:
        """The latest report to the widget: its line and its progress."""
        desc, done, total = self._passed_on = self._latest
        self.step.emit(f"{desc}: {done}/{total} blocks")
        self.progressed.emit(done, total)

    def _close_bar(self) -> None:
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.close()

    def _on_returned(self, opened) -> None:
        if self._latest != self._passed_on:  # noted while napari's bar served the events
            self._pass_on()
        self._pairing = False
        self._close_bar()
        if isinstance(opened, _Refused):
            self.refused.emit(opened.message)
            return
        session = opened.review.session
        crops = Crops(session, image=opened.pair.image) if session.chunked else None
        view = ReviewView(self.viewer, a=opened.pair.a, b=opened.pair.b,
                          scale=opened.pair.voxel_size or None, margin=self._margin,
                          layers=opened.layers, insert=False, crops=crops)
        if session.current is not None:  # its crop is read while the layers go in
            view.read_ahead([session.current])
        self._opening = (opened, view, view.open_steps())
        self.step.emit("adding the review layers")
        QTimer.singleShot(0, self._on_open_step)

    def _on_open_step(self) -> None:
        """Add one review layer, and come back (the GUI is served between layers)."""
        if self._opening is None:
            return
        opened, view, steps = self._opening
        try:
            next(steps)
        except StopIteration:
            self._opening = None
            self.ready.emit(opened, view)
            return
        QTimer.singleShot(0, self._on_open_step)

    def _on_errored(self, err: Exception) -> None:
        self._pairing = False
        self._close_bar()
        self.failed.emit(f"could not start: {type(err).__name__}: {err}")

    def _on_finished(self) -> None:
        self._close_bar()
        self._worker = None
        self.finished.emit()
