"""The "Mask compare" dock widget: review two masks group by group.

Thin over the core: :meth:`..review.Review.open` gives the review (pairing,
lock, journal, session, background TIFF, resume) and every action goes
through it (decide, undo, finish, and the hand edits napari's brush, eraser
and fill make on the curated layer, see :mod:`._edits`); the review's one
change event redraws the view.

The widget composes its pieces and wires them in :meth:`_add_callbacks`
(the running review's own events in :meth:`_add_review_callbacks`):
:class:`._setup.SetupPage` (inputs and parameters), :class:`._loader.ReviewLoader`
(the worker that opens a review), :class:`._panel.ReviewPanel` (group text,
counts, buttons from :mod:`._actions`), :class:`._view.ReviewView` (layers,
camera, slider), :class:`._clicks.ObjectClicks` (a click on an object of A or B
picks it, or shows its group), :class:`._colouring.ColouringWorker` (colour by
disagreement, computed once per review in a worker) and
:class:`._metrics.MetricsWidget` (the Metrics tab). Keys
are taken over while a review runs, on the canvas (:class:`._keys.ReviewKeys`)
and on the rest of the window (:class:`._keys.WindowKeys`), and given back after.

Signals for companions: :attr:`review_started` (session), :attr:`review_changed`
(a :class:`..session.Change`, after every decision, undo, finish or edit) and
:attr:`review_ended` (session). The Metrics tab listens to them: it shows A vs B
and the curated output vs A and vs B, computed when the tab is looked at;
without a review, A vs B of the layers chosen as mask A and mask B.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from qtpy.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QDockWidget,
    QFrame,
    QLabel,
    QMainWindow,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .. import io, store
from .._text import (
    LARGER_THAN_MEMORY,
    describe_counts,
    describe_group,
    display_features,
    group_caption,
    summary_text,
    unpaired_fate,
)
from ..labels import relabel_sequential
from ..review import Review
from . import _panel
from ._actions import status_hint
from ._clicks import ObjectClicks
from ._colouring import ColouringWorker, objects_of
from ._edits import new_labels, paint_pieces, put_back, shift_pieces
from ._inputs import load_from_layers
from ._keys import ReviewKeys, WindowKeys
from ._loader import Opened, ReviewLoader
from ._metrics import MetricsWidget
from ._panel import ReviewPanel
from ._settings import read_view_settings, write_view_settings
from ._setup import SetupPage
from ._view import ReviewView, layer_features

__all__ = ["MaskCompareWidget", "describe_counts", "describe_group"]

_RESULT_MARK = "napari_mask_compare_result"
#: Features of the output layer are refreshed this long after the last decision.
_FEATURES_DELAY_MS = 150
#: The Metrics tab, when shown, recomputes the curated output's statistics this
#: long after the last decision.
_METRICS_DELAY_MS = 1000
#: Groups after the one shown whose crops are read ahead (a review larger than memory).
_READ_AHEAD = 2
#: Width the dock asks for: at 1366 x 768, napari's layer controls (320 px) and
#: this leave the canvas at least 60% of the window.
DOCK_WIDTH = 190
#: Width the dock takes while the Metrics tab shows (its table and plots need it); the
#: canvas gets the room back with the Review tab. A width set by hand is kept per tab.
METRICS_WIDTH = 460
#: Shown in napari's status bar while a review runs (instead of napari's tool keys).
_HINT = status_hint() + "; curated layer: P brush, E eraser, F fill"


@dataclass
class _Review:
    """A running review: the core :class:`..review.Review` and its Qt helpers."""

    review: Review
    view: ReviewView
    keys: ReviewKeys
    window_keys: WindowKeys
    pair: io.MaskPair
    output: Path
    clicks: ObjectClicks
    #: Ask before Finish or another file leaves paired groups undecided.
    ask_undecided: bool = True
    #: Every object's best IoU and group (:mod:`..disagreement`), once computed.
    objects: object = None
    #: Colours of colour by disagreement, once computed (kept for the next toggle).
    colouring: object = None

    @property
    def session(self):
        return self.review.session


class MaskCompareWidget(QWidget):
    """Review two instance masks group by group and build one curated mask.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    quit_closes_window : bool
        The app that ``mask-compare review`` opens: Q (and every end of a
        review) prints the summary to the terminal, and Q closes the window.
        In a user's own napari (False), Q ends the review and leaves the
        curated layer and the user's layers.
    """

    #: Emitted with the session when a review starts (or resumes).
    review_started = Signal(object)
    #: Emitted with a session.Change after every decision, undo or finish.
    review_changed = Signal(object)
    #: Emitted with the session when the review ends (Q, Finish, closing).
    review_ended = Signal(object)

    def __init__(self, napari_viewer, parent=None, *, quit_closes_window: bool = False):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.quit_closes_window = bool(quit_closes_window)
        self._review: _Review | None = None
        self._output_changed: list = []  # regions of the output not yet copied to the layer
        self._result_layer = None
        self._window_filter = None
        self._features_timer = _single_shot(self, _FEATURES_DELAY_MS)
        self._compared: _Review | None = None  # the review the Metrics tab describes
        self._layers_stale = True  # mask layers chosen since the tab last compared them
        self._stale_metrics: set[str] = set()
        self._metrics_timer = _single_shot(self, _METRICS_DELAY_MS)
        self._tab_widths = {0: DOCK_WIDTH, 1: METRICS_WIDTH}
        self._tab = 0
        self.loader = ReviewLoader(self.viewer, parent=self)
        self.colouring = ColouringWorker(parent=self)
        self._build()
        self._add_callbacks()
        self._update_enabled()

    # ------------------------------------------------------------------ public

    @property
    def session(self):
        """The running review's session, None when no review runs."""
        return self._review.session if self._review is not None else None

    @property
    def review(self) -> Review | None:
        """The running :class:`..review.Review`, None when no review runs."""
        return self._review.review if self._review is not None else None

    @property
    def view(self) -> ReviewView | None:
        return self._review.view if self._review is not None else None

    @property
    def busy(self) -> bool:
        """True while inputs are being read and paired, and the review layers added."""
        return self.loader.busy

    def set_layers(self, *, image=None, mask_a=None, mask_b=None) -> None:
        """Choose the input layers (and switch to the layers source)."""
        self.setup.set_layers(image=image, mask_a=mask_a, mask_b=mask_b)

    def set_folders(self, *, images_dir=None, mask_a_dir=None, mask_b_dir=None) -> None:
        """Choose the input folders (and switch to the folders source); lists the files."""
        self.setup.set_folders(images_dir=images_dir, mask_a_dir=mask_a_dir,
                               mask_b_dir=mask_b_dir)
        self._on_folders_changed()

    def set_files(self, mask_a, mask_b, *, image=None) -> None:
        """Review one pair of files (``mask-compare review A.tif B.tif``)."""
        self.setup.set_files(mask_a, mask_b, image=image)

    def set_out_dir(self, out_dir) -> None:
        self.setup.out_dir.setText(str(out_dir))

    def set_parameters(self, *, margin: int | None = None,
                       iou_threshold: float | None = None) -> None:
        """Set the margin (pixels around a group) and the IoU threshold."""
        self.setup.set_parameters(margin=margin, iou_threshold=iou_threshold)

    def go_to(self, group: int) -> bool:
        """Show the group of index ``group`` (it must be in the queue).

        Returns False when its crop cannot be read (see :meth:`_show_current`).
        """
        if self._review is None:
            return False
        self._review.session.go_to(group)
        return self._show_current()

    def start(self) -> None:
        """Read the inputs and start (or resume) the review, off the GUI thread."""
        self._on_start()

    def end_review(self, *, finish: bool = False) -> dict | None:
        """End the running review: finish it if asked, save, give the keys back.

        A finish that cannot be journaled leaves the review running (the
        message says why). Nothing is asked here (see :meth:`_on_finish`).

        Returns
        -------
        dict or None
            The session summary, None when no review ran or the finish failed.
        """
        running = self._review
        if running is None:
            return None
        # while the review runs: the finish is drawn and sent like a decision
        if finish and self._act(running.review.finish) is None:
            return None
        self._save_view_settings()
        self._review = None
        self._features_timer.stop()
        running.keys.unbind()
        running.window_keys.unbind()
        running.window_keys.deleteLater()
        self._remove_review_callbacks(running)
        running.view.stop_reading()  # nothing read ahead while the review closes
        summary = self._close(running)
        running.view.close()
        self._show_result(running)
        self.viewer.reset_view()
        self._update_panel()
        self._update_enabled()
        self.review_ended.emit(running.session)
        return summary

    # ------------------------------------------------------------------ building

    def _build(self) -> None:
        """Two tabs, "Review" and "Metrics", each scrolling in a narrow dock.

        In "Review", setup (inputs, parameters, Start) shows until a review
        runs, then the panel. Both are pages of one stack, and the progress bar
        keeps its room when hidden: switching changes no size, so the canvas is
        not resized (and repainted) on the way.
        """
        self.setup = SetupPage(self.viewer)
        self.panel = ReviewPanel()
        self.metrics = MetricsWidget(self.viewer)
        # the layer choices, by their old names (other modules' tests use them)
        self.image_combo, self.a_combo, self.b_combo = (
            self.setup.image_combo, self.setup.a_combo, self.setup.b_combo)
        self.tabs = QTabWidget()
        self.tabs.addTab(_scrolling(self._build_review_tab()), "Review")
        self.tabs.addTab(_scrolling(self.metrics, horizontal=True), "Metrics")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.tabs)

    def _build_review_tab(self) -> QWidget:
        review_tab = QWidget()
        layout = QVBoxLayout(review_tab)
        layout.setContentsMargins(2, 2, 2, 2)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.setup)
        self.pages.addWidget(self.panel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        policy = self.progress.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.progress.setSizePolicy(policy)
        self.progress.setVisible(False)
        self.message = QLabel()
        self.message.setWordWrap(True)  # paths break after their slashes
        self.message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setMinimumHeight(3 * self.message.fontMetrics().height())
        self.message.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.pages)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addStretch(1)
        return review_tab

    def sizeHint(self) -> QSize:
        """Narrow: the canvas gets the room (the dock can be widened by hand)."""
        return QSize(DOCK_WIDTH, super().sizeHint().height())

    def _actions(self) -> dict:
        """Action name (see :mod:`._actions`) -> handler."""
        return {
            "A": partial(self._on_decide, "A"), "B": partial(self._on_decide, "B"),
            "M": partial(self._on_decide, "M"), "N": partial(self._on_decide, "N"),
            "undo": self._on_undo, "previous": self._on_previous, "next": self._on_next,
            "slice_up": partial(self._on_slice, +1), "slice_down": partial(self._on_slice, -1),
            "quit": self._on_quit, "finish": self._on_finish,
            "disagreement": self.panel.disagreement_box.toggle,
        }

    # ------------------------------------------------------------------ wiring

    def _add_callbacks(self) -> None:
        """Connect every control, the loader and the viewer's events (the only place that does)."""
        setup, panel, loader = self.setup, self.panel, self.loader
        setup.start_button.clicked.connect(self._on_start)
        for edit in (setup.images_dir, setup.mask_a_dir, setup.mask_b_dir):
            edit.editingFinished.connect(self._on_folders_changed)
        for combo in (setup.a_combo, setup.b_combo):
            combo.currentTextChanged.connect(self._on_mask_layer_chosen)
        panel.previous_file_button.clicked.connect(partial(self._on_file_step, -1))
        panel.next_file_button.clicked.connect(partial(self._on_file_step, +1))
        actions = self._actions()
        for name, button in panel.buttons.items():
            button.clicked.connect(actions[name])
        panel.order_combo.currentIndexChanged.connect(self._on_order_changed)
        for box in panel.kind_boxes.values():
            box.toggled.connect(self._on_kinds_changed)
        panel.overlay_box.toggled.connect(self._on_overlay_toggled)
        panel.disagreement_box.toggled.connect(self._on_disagreement_toggled)
        self.colouring.ready.connect(self._on_colouring_ready)
        self.colouring.failed.connect(self._on_refused)
        loader.step.connect(self._on_worker_step)
        loader.progressed.connect(self._on_worker_progress)
        loader.refused.connect(self._on_refused)
        loader.failed.connect(self._on_refused)
        loader.ready.connect(self._on_opened)
        loader.finished.connect(self._update_enabled)
        self._features_timer.timeout.connect(self._on_features_due)
        self.review_started.connect(self.metrics.set_review)  # before A vs B is asked for
        self.review_ended.connect(self.metrics.end_review)
        self.metrics.object_chosen.connect(self.go_to)
        self.review_started.connect(self._on_review_started)
        self.review_changed.connect(self._on_review_changed)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.tabs.currentChanged.connect(self._update_metrics)
        self._metrics_timer.timeout.connect(self._update_metrics)
        self.metrics.filtered.connect(self._on_layer_filtered)
        self.viewer.dims.events.current_step.connect(self._on_dims_changed)
        self.viewer.dims.events.range.connect(self._on_dims_changed)
        canvas = getattr(self.viewer, "canvas", None)
        if canvas is not None and hasattr(canvas, "events"):
            canvas.events.size.connect(self._on_canvas_resized)
        window = getattr(getattr(self.viewer, "window", None), "_qt_window", None)
        if window is not None:
            self._window_filter = _CloseFilter(self._on_viewer_closing, parent=self)
            window.installEventFilter(self._window_filter)

    def _add_review_callbacks(self, running: _Review) -> None:
        """Connect the running review's events, and take the keys over.

        The review's one change event (every decision, undo, finish, edit)
        redraws the view; napari's paint event of the curated layer (a brush,
        eraser or fill stroke) becomes an edit of the review.
        """
        running.review.add_listener(self._on_review_change)
        running.view.layers["output"].events.paint.connect(self._on_output_painted)
        running.keys.bind()
        running.window_keys.bind()
        running.clicks.bind()

    def _remove_review_callbacks(self, running: _Review) -> None:
        running.review.remove_listener(self._on_review_change)
        running.view.layers["output"].events.paint.disconnect(self._on_output_painted)
        running.clicks.unbind()

    # ------------------------------------------------------------------ inputs

    def _on_folders_changed(self) -> None:
        try:
            text = self.setup.list_files()
        except io.InputError as err:
            self._message(str(err), error=True)
            return
        if text:
            self._message(text)

    def _on_file_step(self, delta: int) -> None:
        row, count, _ = self.setup.file_position()
        if not 0 <= row + delta < count:
            self._message("no previous file" if delta < 0 else "no next file")
            return
        if self._review is not None and not self._confirm_leaving("file"):
            return
        self.setup.file_step(delta)
        if self._review is not None:
            self.end_review()
            self._on_start()

    # ------------------------------------------------------------------ start

    def _on_start(self) -> None:
        if self.busy:
            return
        try:
            load, output = self.setup.job()
        except io.InputError as err:
            self._message(str(err), error=True)
            return
        if self._review is not None:
            self.end_review()
        self._layers_stale = False  # the review's A vs B describes them
        self._compared = None  # nothing more to compute for the one that ended
        self._remove_result_layer()
        self._message(f"reading and pairing… (saving to {output})")
        self.loader.start(load, output=output,
                          iou_threshold=float(self.setup.iou_threshold.value()),
                          margin=int(self.setup.margin.value()))
        self._update_enabled()

    def _on_worker_step(self, step: str) -> None:
        self._message(f"{step}…")

    def _on_worker_progress(self, done: int, total: int) -> None:
        """The blocks paired so far (the bar is busy, without a count, otherwise)."""
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _on_refused(self, message: str) -> None:
        self._message(message, error=True)

    def _on_opened(self, opened: Opened, view: ReviewView) -> None:
        """The layers are in: the review begins (as it was left, when resumed)."""
        session = opened.review.session
        self.panel.set_view_settings(read_view_settings(opened.output))
        view.set_overlay(self.panel.overlay_box.isChecked())
        actions = self._actions()
        keys = ReviewKeys(self.viewer, actions, hint=_HINT)
        window = getattr(getattr(self.viewer, "window", None), "_qt_window", None)
        window_keys = WindowKeys(window, view.canvas_widget(), actions, parent=self)
        self._review = _Review(opened.review, view, keys, window_keys, opened.pair,
                               opened.output, ObjectClicks(self.viewer, view,
                                                           self._on_object_clicked))
        session.set_order(self.panel.order())
        session.set_kinds(self.panel.kinds())
        self._add_review_callbacks(self._review)
        view.refresh_output(session.output, redraw=False,
                            features=display_features(session.features()))
        view.layers["output"].selected_label = len(session.objects) + 1  # a new object
        shown = self._show_current()
        replayed = len(session.steps)
        state = f"resumed ({replayed} action(s) replayed)" if replayed else "started"
        notes = "".join(f"; {note}" for note in opened.review.notes)
        if shown:  # else the line that says why the group is not shown stays
            self._message(f"Review {state}: {len(session.groups)} groups; saving to "
                          f"{opened.output}{notes}")
        self.metrics.locked_layers = tuple(
            layer for layer in (self.a_combo.layer(), self.b_combo.layer())
            if layer is not None and not self.setup.folders)
        self._update_enabled()
        self._focus_canvas()
        if self.panel.disagreement_box.isChecked():
            self._on_disagreement_toggled(True)
        self.review_started.emit(session)

    # ------------------------------------------------------------------ review actions

    def _act(self, action):
        """Run one review action; a refusal or a failed journal write is one red line.

        The output layer is redrawn from the session either way. A brush set
        to a new object (a label above the last id) stays on a new object.

        Returns
        -------
        session.Change or None
            None when the action was not taken (nothing changed).
        """
        running = self._review
        layer = running.view.layers["output"]
        new_label = layer.selected_label > len(running.session.objects)
        try:
            change = action()
        except (ValueError, OSError) as err:
            self._message(_one_line(err), error=True)
            running.view.refresh_output(running.session.output)
            return None
        if new_label:
            layer.selected_label = len(running.session.objects) + 1
        return change

    def _on_decide(self, choice: str) -> None:
        if self._review is not None \
                and self._act(partial(self._review.review.decide, choice)) is not None:
            self._after_action()

    def _on_undo(self) -> None:
        if self._review is None:
            return
        change = self._act(self._review.review.undo)
        if change is None:
            return
        if change.undone.get("op") == "edit":
            self._after_edit()  # the camera stays where the user painted
        elif change.undone.get("op") == "pick":
            self._after_pick()
        else:
            self._after_action()

    def _on_output_painted(self, event) -> None:
        """napari painted on the curated layer: the stroke becomes an edit of the review.

        The stroke is taken back from the layer's copy of the output first
        (the review's change brings it back once journaled); napari's undo history is
        cleared (its Ctrl+Z must not change the array behind the journal: U
        undoes edits). An edit that made a new object leaves the brush on it.
        """
        running = self._review
        if running is None:
            return
        layer = running.view.layers["output"]
        atoms = list(event.value)
        # a crop of a review larger than memory: its origin in the volume
        pieces = shift_pieces(paint_pieces(atoms), running.view.crop_origin)
        put_back(layer.data, atoms)
        running.view.forget_paint_history()
        if not pieces:
            return
        try:
            change = running.review.edit(pieces)
        except (ValueError, OSError) as err:
            running.view.refresh_output(running.session.output)
            self._message(f"edit not saved, taken back: {_one_line(err)}", error=True)
            return
        created = new_labels(pieces, change.op)
        if layer.selected_label in created:
            layer.selected_label = created[layer.selected_label]
        self._after_edit()

    def _on_object_clicked(self, role: str, label: int) -> None:
        """A click on object ``label`` of A or B (``role``): pick it, or go to its group.

        An object of the group shown is toggled into the curated output (or
        out of it) like any action: journaled, undone by U, saved. An object
        of another group shows that group (nothing is picked: a second click
        picks); a group the kinds shown leave out is named, not shown.
        """
        running = self._review
        if running is None:
            return
        side, session = role.upper(), running.session
        group = session.current
        if group is not None and label in (group.ids_a if side == "A" else group.ids_b):
            if self._act(partial(running.review.pick, side, label)) is not None:
                self._after_pick()
            return
        if running.objects is None:
            running.objects = objects_of(session)
        index = running.objects.group_of(side, label)
        if index is None:
            return
        if session.place(index) is None:
            self._message(f"{side} {label} is in group {index + 1}, a group of a kind not "
                          "shown (see the kinds shown)", error=True)
            return
        if self.go_to(index):
            self._message(f"group {index + 1} shown: it holds {side} {label}; click it again "
                          "to pick it")

    def _after_pick(self) -> None:
        """After a pick (or its undo): the picks drawn, the camera left where it is."""
        running = self._review
        group = running.session.current
        if group is None or running.view.group is None \
                or running.view.group.index != group.index:
            self._after_action()  # the undo went back to another group
            return
        running.view.mark_picked(running.session.picks(group.index))
        self._redraw_output()
        running.view.set_caption(group_caption(group, session=running.session))
        self._update_panel()
        if not self._save_failed():
            self._message("")

    def _on_disagreement_toggled(self, on: bool) -> None:
        """Colour every object by its best IoU (computed once, in a worker), or back."""
        running = self._review
        if running is None:
            return
        self._save_view_settings()
        if not on:
            running.view.set_disagreement(None)
        elif running.colouring is not None:
            self._show_colouring(running.colouring)
        elif not self.colouring.busy:
            self._message("colouring the objects by their best IoU…")
            self.colouring.start(running.session, picked=self._picked_shown(),
                                 objects=running.objects)
        self._focus_canvas()

    def _on_colouring_ready(self, colouring) -> None:
        running = self._review
        if running is None or colouring.session is not running.session:
            # computed for a review that ended since: the one running may want its own
            if running is not None and self.panel.disagreement_box.isChecked():
                QTimer.singleShot(0, partial(self._on_disagreement_toggled, True))
            return
        running.colouring = colouring
        running.objects = colouring.objects
        self._message("")
        if self.panel.disagreement_box.isChecked():
            self._show_colouring(colouring)

    def _show_colouring(self, colouring) -> None:
        self._review.view.set_disagreement(colouring.colors, colormaps=colouring.colormaps,
                                           picked=colouring.picked)

    def _picked_shown(self) -> frozenset:
        """The picks of the group shown (drawn white)."""
        group = self._review.session.current
        return frozenset(self._review.session.picks(group.index) if group is not None else ())

    def _on_next(self) -> None:
        if self._review is not None:
            self._review.session.next()
            self._message("")  # an error was about the group left behind
            self._show_current()

    def _on_previous(self) -> None:
        if self._review is not None:
            self._review.session.previous()
            self._message("")
            self._show_current()

    def _on_slice(self, delta: int) -> None:
        if self._review is not None:
            self._review.view.step_slice(delta)

    def _on_quit(self) -> None:
        """Q: save and end the review; in the app of ``mask-compare review``, close it too."""
        summary = self.end_review()
        self._update_metrics()
        if summary is not None and self.quit_closes_window:
            QTimer.singleShot(0, self._close_window)

    def _on_finish(self) -> None:
        if self._review is None or not self._confirm_leaving("finish"):
            return
        self.end_review(finish=True)
        self._update_metrics()

    def _confirm_leaving(self, action: str) -> bool:
        """Ask first when ``action`` ("finish", "file") leaves paired groups undecided."""
        running = self._review
        paired = running.session.summary()["undecided_paired"]
        if not paired or not running.ask_undecided:
            return True
        go_on, dont_ask = _panel.confirm_leaving_undecided(self, paired=paired, action=action)
        if dont_ask:
            running.ask_undecided = False
        return go_on

    def _on_order_changed(self, index: int) -> None:
        if self._review is not None:
            self._review.session.set_order(self.panel.order())
            self._save_view_settings()
            self._show_current()

    def _on_kinds_changed(self, checked: bool = False) -> None:
        if self._review is not None:
            self._review.session.set_kinds(self.panel.kinds())
            self._save_view_settings()
            self._show_current()

    def _on_overlay_toggled(self, overlay: bool) -> None:
        if self._review is not None:
            self._review.view.set_overlay(overlay)
            self._save_view_settings()
            self._show_current()

    def _on_review_change(self, change) -> None:
        """Review listener: the output changed (decision, undo, finish, edit).

        The output layer is redrawn once, by :meth:`_show_current` of the action
        (free when the slice changes anyway), or on the next turn of the event
        loop when the session was driven from elsewhere.
        """
        if self._review is None:
            return
        self._output_changed.extend(change.regions)
        QTimer.singleShot(0, self._redraw_output)
        self._features_timer.start()
        self.review_changed.emit(change)

    def _redraw_output(self, *, resliced: bool = False) -> None:
        if self._review is not None and self._output_changed:
            regions, self._output_changed = self._output_changed, []
            self._review.view.refresh_output(self._review.session.output, regions=regions,
                                             redraw=not resliced)

    def _on_features_due(self) -> None:
        if self._review is not None:
            session = self._review.session
            self._review.view.refresh_output(session.output, redraw=False,
                                             features=display_features(session.features()))

    def _on_dims_changed(self, event=None) -> None:
        if self._review is not None:
            self._review.view.on_dims_changed()

    def _on_canvas_resized(self, event=None) -> None:
        if self._review is not None:
            self._review.view.refit()

    def _after_action(self) -> None:
        running = self._review
        if not self._show_current():
            return
        current = running.session.current
        if self._save_failed():
            return
        if current is not None and running.session.choice_of(current.index) is not None:
            # a decision moves on to the next undecided group: none is left in the queue
            self._message("Every group in the queue is decided: Finish adds the unpaired "
                          "objects left and saves; Q saves and quits.")
        else:
            self._message("")

    def _after_edit(self) -> None:
        """After an edit (or its undo): output and counts redrawn, the camera left alone."""
        self._redraw_output()
        self._update_panel()
        if not self._save_failed():
            self._message("")

    def _save_failed(self) -> bool:
        """Say so if the last background save of the output failed (the journal is whole)."""
        error = self._review.review.save_error
        if error is not None:
            self._message(f"autosave failed: {_one_line(error)}", error=True)
        return error is not None

    def _show_current(self) -> bool:
        """Show the current group; False when its crop cannot be read.

        A chunk of a store that cannot be read (damaged, see :mod:`.._chunks`)
        is one red line naming the store and the chunk; the layers keep the
        group they showed and the review goes back to it (keys act on the group
        shown), and goes on from there (another group, Q).
        """
        review = self._review
        if review is None:
            return False
        group = review.session.current
        try:
            resliced = (review.view.show(group, picked=review.session.picks(group.index))
                        if group is not None else False)
        except io.InputError as err:
            shown = review.view.group
            if shown is not None and review.session.place(shown.index) is not None:
                review.session.go_to(shown.index)
            self._update_panel()
            self._message(_one_line(err), error=True)
            return False
        self._redraw_output(resliced=resliced)
        review.view.set_caption(group_caption(group, session=review.session)
                                if group is not None else "no group in the queue")
        self._update_panel()
        # a review larger than memory: the next groups' crops are read meanwhile
        review.view.read_ahead(review.session.upcoming(_READ_AHEAD))
        return True

    # ------------------------------------------------------------------ ending

    def _close(self, running: _Review) -> dict:
        """Close the core review (save, summary, lock); say so, and print it in the app."""
        try:
            summary = running.review.close()
        except OSError as err:
            summary = running.session.summary()
            self._message(f"{_one_line(err)} — the journal is whole: start the review "
                          "again to rebuild the output", error=True)
        else:
            fate = unpaired_fate(summary)
            self._message(f"Saved {running.output} ({summary['objects']} objects; "
                          f"{summary['decided']} of {summary['groups']} groups decided)"
                          + (f". {fate}." if fate else ""))
        if self.quit_closes_window:
            print(f"mask-compare review: {summary_text(summary, output=running.output)}",
                  flush=True)
        return summary

    def _close_window(self) -> None:
        window = getattr(self.viewer, "window", None)
        if window is not None:
            self.viewer.close()

    def _save_view_settings(self) -> None:
        if self._review is not None:
            write_view_settings(self._review.output, self.panel.view_settings())

    # ------------------------------------------------------------------ metrics

    def _on_tab_changed(self, index: int) -> None:
        """The dock is narrow for the review, wider for the Metrics tab (each as last left)."""
        dock = self._dock()
        if dock is None:
            return
        self._tab_widths[self._tab] = dock.width()
        self._tab = index
        dock.parentWidget().resizeDocks([dock], [self._tab_widths.get(index, DOCK_WIDTH)],
                                        Qt.Orientation.Horizontal)

    def _dock(self):
        """The QDockWidget holding this widget in a main window, None otherwise (floating)."""
        parent = self.parentWidget()
        while parent is not None and not isinstance(parent, QDockWidget):
            parent = parent.parentWidget()
        if parent is None or parent.isFloating() \
                or not isinstance(parent.parentWidget(), QMainWindow):
            return None
        return parent

    def _on_review_started(self, session) -> None:
        self._compared = self._review
        self._stale_metrics = {"inputs", "curated"}
        self.metrics.clear()
        self.metrics.set_note("")
        self._update_metrics()

    def _on_review_changed(self, change) -> None:
        self._stale_metrics.add("curated")
        self._metrics_timer.start()

    def _on_mask_layer_chosen(self, name: str = "") -> None:
        """Mask A or B chosen: the tab compares them soon (both may change at once)."""
        self._layers_stale = True
        self._metrics_timer.start()

    def _on_layer_filtered(self, layer) -> None:
        """The Metrics tab filtered a layer: a comparison of it is out of date."""
        if layer in (self.a_combo.layer(), self.b_combo.layer()):
            self._on_mask_layer_chosen()

    def _update_metrics(self, *args) -> None:
        """Compute what the Metrics tab lacks, if it shows.

        That is the stale comparisons of the review (running, or ended by Q or
        Finish), or, when no review runs, A vs B of the mask layers the user
        chose. Nothing is computed while the tab is hidden (pairing a large
        volume takes seconds of CPU the review needs), nor while the panel
        still works on the previous request.
        """
        if self.tabs.currentIndex() != 1:
            return
        layers = (self._review is None and not self.busy and self._layers_stale
                  and not self.setup.folders)
        if not (layers or self._compared is not None and self._stale_metrics):
            return
        if self.metrics.busy:
            self._metrics_timer.start()
        elif layers:
            self._compare_layers()
        else:
            self._compare_review(self._compared)

    def _compare_layers(self) -> None:
        """A vs B of the chosen mask layers (checked and copied in the worker)."""
        self._compared, self._layers_stale = None, False
        self._stale_metrics.clear()
        self.metrics.clear()
        a, b = self.a_combo.layer(), self.b_combo.layer()
        if a is not None and b is not None:
            self.metrics.compare(partial(load_from_layers, None, a, b), label="A vs B",
                                 iou_threshold=self.setup.iou_threshold.value())

    def _compare_review(self, review: _Review) -> None:
        session, pair = review.session, review.pair
        options = dict(voxel_size=pair.voxel_size or None, unit=pair.unit,
                       iou_threshold=self.setup.iou_threshold.value(), copy=False)
        if session.chunked:  # from the review's table; no voxel is read
            options["boundary"] = False
        if "inputs" in self._stale_metrics:
            self.metrics.show_comparison(session.a, session.b, label="A vs B", **options)
        if session.chunked:
            self.metrics.set_note(LARGER_THAN_MEMORY)
            self._stale_metrics.clear()
            return
        shown_before = "curated vs A" in self.metrics.comparisons
        if "curated" in self._stale_metrics and (session.objects or shown_before):
            with session.lock:
                curated = session.output.copy()
            self.metrics.show_comparison(session.a, curated, label="curated vs A", **options)
            self.metrics.show_comparison(session.b, curated, label="curated vs B", **options)
        self._stale_metrics.clear()

    # ------------------------------------------------------------------ state shown

    def _update_panel(self) -> None:
        if self._review is None:
            self.panel.show_idle()
        else:
            self.panel.show_review(self._review.session)

    def _update_enabled(self) -> None:
        running = self._review is not None
        self.panel.set_running(running)
        self.setup.start_button.setEnabled(not self.busy)
        self.progress.setVisible(self.busy)
        if not self.busy:
            self.progress.setRange(0, 0)  # busy, without a count, next time
        self.pages.setCurrentWidget(self.panel if running else self.setup)
        folders = running and self.setup.folders
        self.panel.file_row.setVisible(folders)
        if folders:
            self.panel.show_file(*self.setup.file_position())
        if not running:
            self.metrics.locked_layers = ()

    def _message(self, text: str, *, error: bool = False) -> None:
        """Show one line (red for errors); unchanged text costs nothing (style sheets do)."""
        if error != self.message.property("error"):
            self.message.setProperty("error", error)
            self.message.setStyleSheet("color: #ff6060;" if error else "")
        if text != self.message.text():
            self.message.setText(text)
            self.message.setToolTip(text)  # whole, should a long name be cut

    def _focus_canvas(self) -> None:
        qt_viewer = getattr(getattr(self.viewer, "window", None), "_qt_viewer", None)
        if qt_viewer is not None:
            qt_viewer.canvas.native.setFocus()

    def _show_result(self, running: _Review) -> None:
        """The curated mask, with the saved ids, in one layer per output.

        The layer of an earlier review of the same output is updated in place
        (it keeps its place in the layer list and its settings); otherwise one
        is added.
        """
        labels, features = _saved_labels(running.session, output=running.output)
        features = layer_features(display_features(features))
        key = str(running.output)
        layer = next((layer for layer in self.viewer.layers
                      if layer.metadata.get(_RESULT_MARK) == key), None)
        if layer is None:
            layer = self.viewer.add_labels(
                labels, name=f"curated: {Path(running.output).stem}",
                scale=running.view.scale, features=features, metadata={_RESULT_MARK: key})
        else:
            layer.data = labels
            layer.features = features
            layer.visible = True
        self._result_layer = layer

    def _remove_result_layer(self) -> None:
        """In folder mode, the previous file's result gives way to the next one."""
        layer, self._result_layer = self._result_layer, None
        if layer is not None and self.setup.folders and layer in self.viewer.layers:
            self.viewer.layers.remove(layer)

    # ------------------------------------------------------------------ closing

    def _on_viewer_closing(self) -> None:
        self.loader.abort()
        self.end_review()

    def closeEvent(self, event) -> None:
        self.loader.abort()
        self.end_review()
        self._disconnect()
        super().closeEvent(event)

    def _disconnect(self) -> None:
        for combo in (self.image_combo, self.a_combo, self.b_combo):
            combo.disconnect_viewer()
        self.viewer.dims.events.current_step.disconnect(self._on_dims_changed)
        self.viewer.dims.events.range.disconnect(self._on_dims_changed)
        canvas = getattr(self.viewer, "canvas", None)
        if canvas is not None and hasattr(canvas, "events"):
            canvas.events.size.disconnect(self._on_canvas_resized)
        window = getattr(getattr(self.viewer, "window", None), "_qt_window", None)
        if window is not None and self._window_filter is not None:
            window.removeEventFilter(self._window_filter)
            self._window_filter = None


class _CloseFilter(QObject):
    """Calls ``callback`` when the watched window is about to close."""

    def __init__(self, callback, parent=None):
        super().__init__(parent)
        self._callback = callback

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Close:
            self._callback()
        return False


def _single_shot(parent, interval_ms: int) -> QTimer:
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(interval_ms)
    return timer


def _scrolling(widget: QWidget, *, horizontal: bool = False) -> QScrollArea:
    """``widget`` in a scroll area: the dock stays narrow and short whatever it holds."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded if horizontal
                                      else Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area


def _saved_labels(session, *, output: Path | None = None) -> tuple[np.ndarray, dict]:
    """The output as the review saves it, and its features.

    With edits in force the saved ids are compacted to 1..n (an erased
    object leaves a gap in the session's ids); the features follow.

    Parameters
    ----------
    session : session.Session
    output : Path, optional
        The review's output; a chunked review's saved store is opened lazily
        from it (the review closed: compacted, pyramided).

    Returns
    -------
    labels : ndarray or dask.array.Array
        ``session.output`` itself when nothing was compacted; a dask array
        over the saved OME-Zarr labels of a chunked review.
    features : dict of str to list
        As :meth:`..session.Session.features`, one row per saved id (a
        chunked review with edits: none, as finding the ids left would read
        the whole volume).
    """
    if session.chunked:
        import dask.array as da

        saved = store.labels_array(output)
        labels = da.from_zarr(saved)
        features = session.features() if not session.edited else {"label": []}
        return labels, features
    output, features = session.output, session.features()
    labels = relabel_sequential(output) if session.edited else output
    if labels is output:
        return output, features
    present = np.bincount(output.reshape(-1), minlength=len(session.objects) + 1)[1:] > 0
    rows = np.flatnonzero(present)  # row k describes id k + 1
    features = {key: [values[k] for k in rows] for key, values in features.items()}
    features["label"] = list(range(1, len(rows) + 1))
    return labels, features


def _one_line(err) -> str:
    """An error's words on one line (for the widget message)."""
    return " ".join(str(err).split("\n")).strip() or type(err).__name__
