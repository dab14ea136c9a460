"""The "Mask compare" dock widget: review two masks group by group.

Thin over the core: :meth:`..review.Review.open` gives the review (pairing,
lock, journal, session, saving, resume, view settings) and every change goes
through it: actions (decide, pick, undo, finish, hand edits on the curated
layer), moves (next, previous, a group clicked) and settings (order, kinds,
overlay, colour by disagreement). Whoever changed the review, its one
:class:`..session.Change` comes back to :meth:`MaskCompareWidget._on_change`,
which redraws from it alone.

The widget composes its pieces and wires them in :meth:`_add_callbacks` (a
running review's own in :meth:`_add_review_callbacks`): the Review tab
(:mod:`._review_tab`: setup page, panel, message line), the loader that opens
a review in a worker (:mod:`._loader`), the running review with its view, keys
and clicks (:mod:`._running`), colour by disagreement (:mod:`._colouring`),
the curated layer left after a review (:mod:`._result`) and the Metrics tab
(:mod:`._metrics`, which listens to the review itself).

Signals for companions: :attr:`review_started` and :attr:`review_ended` (with
the session); every change in between: :meth:`..review.Review.add_listener`.
"""

from __future__ import annotations

from functools import partial

from qtpy.QtCore import QSize, QTimer, Signal
from qtpy.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from .._text import describe_counts, describe_group, summary_text
from ..actions import status_hint
from ..errors import InputError
from ..review import Review
from ._colouring import ColouringWorker
from ._listen import ReviewListener
from ._loader import Opened, ReviewLoader
from ._message import one_line
from ._metrics import MetricsWidget
from ._result import ResultLayer
from ._review_tab import ReviewTab
from ._running import Running
from ._view import ReviewView
from ._window import DOCK_WIDTH, TabWidths, ViewerEvents, focus_canvas, scrolling

__all__ = ["MaskCompareWidget", "describe_counts", "describe_group"]

#: Features of the output layer are refreshed this long after the last action.
_FEATURES_DELAY_MS = 150
#: Shown in napari's status bar while a review runs (instead of napari's tool keys).
_HINT = status_hint() + "; curated layer: P brush, E eraser, F fill"


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
    #: Emitted with the session when the review ends (Q, Finish, closing).
    review_ended = Signal(object)

    def __init__(self, napari_viewer, parent=None, *, quit_closes_window: bool = False):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.quit_closes_window = bool(quit_closes_window)
        self._review: Running | None = None
        self._features_timer = QTimer(self)
        self._features_timer.setSingleShot(True)
        self._features_timer.setInterval(_FEATURES_DELAY_MS)
        self.loader = ReviewLoader(self.viewer, parent=self)
        self.colouring = ColouringWorker(parent=self, running=lambda: self._review,
                                         say=lambda text: self.message.say(text))
        self.result = ResultLayer(self.viewer)
        self._listener = ReviewListener(self._on_change, parent=self)
        self._viewer_events = ViewerEvents(
            self.viewer, dims=partial(self._to_view, "on_dims_changed"),
            resized=partial(self._to_view, "refit"), closing=self._on_viewer_closing,
            parent=self)
        self._build()
        self._tab_widths = TabWidths(self)
        self._add_callbacks()
        self._update_enabled()
        self._on_mask_layer_chosen()

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

    def go_to(self, group: int) -> None:
        """Show the group of index ``group`` (it must be in the queue: ValueError otherwise)."""
        if self._review is not None:
            self._review.review.go_to(group)

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
        if running is None or finish and self._act("finish") is None:
            return None
        self._review = None
        self._features_timer.stop()
        self._remove_review_callbacks(running)
        summary, message, error = running.close()
        self.message.say(message, error=error)
        if self.quit_closes_window:
            print(f"mask-compare review: {summary_text(summary, output=running.output)}",
                  flush=True)
        self.result.show(running.review, scale=running.view.scale)
        self.viewer.reset_view()
        self._update_enabled()
        self.metrics.locked_layers = ()  # the inputs may be filtered again
        self.review_ended.emit(running.session)
        return summary

    # ------------------------------------------------------------------ building

    def _build(self) -> None:
        """Two tabs, "Review" (:class:`._review_tab.ReviewTab`) and "Metrics", each
        scrolling in a narrow dock."""
        self.review_tab = ReviewTab(self.viewer)
        self.metrics = MetricsWidget(self.viewer)
        tab = self.review_tab
        self.setup, self.panel, self.progress, self.message = (
            tab.setup, tab.panel, tab.progress, tab.message)
        # the layer choices, by their old names (other modules' tests use them)
        self.image_combo, self.a_combo, self.b_combo = (
            self.setup.image_combo, self.setup.a_combo, self.setup.b_combo)
        self.tabs = QTabWidget()
        self.tabs.addTab(scrolling(tab), "Review")
        self.tabs.addTab(scrolling(self.metrics, horizontal=True), "Metrics")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.tabs)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        """Narrow: the canvas gets the room (the dock can be widened by hand)."""
        return QSize(DOCK_WIDTH, super().sizeHint().height())

    def _actions(self) -> dict:
        """Action name (see :mod:`..actions`) -> handler of no argument (keys, buttons)."""

        def call(method, *args):
            return lambda: method(*args)

        return {
            **{choice: call(self._act, "decide", choice) for choice in "ABMN"},
            **{name: call(self._act, name) for name in ("undo", "previous", "next")},
            "slice_up": call(self._to_view, "step_slice", +1),
            "slice_down": call(self._to_view, "step_slice", -1),
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
        setup.iou_threshold.valueChanged.connect(self._on_mask_layer_chosen)
        self.metrics.filtered.connect(self._on_layer_filtered)
        panel.previous_file_button.clicked.connect(partial(self._on_file_step, -1))
        panel.next_file_button.clicked.connect(partial(self._on_file_step, +1))
        actions = self._actions()
        for name, button in panel.buttons.items():
            button.clicked.connect(actions[name])
        panel.order_combo.currentIndexChanged.connect(
            lambda index: self._act("set_order", panel.order()))
        for box in panel.kind_boxes.values():
            box.toggled.connect(lambda checked: self._act("set_kinds", panel.kinds()))
        panel.overlay_box.toggled.connect(lambda on: self._act("set_view", overlay=on))
        panel.disagreement_box.toggled.connect(self._on_disagreement_toggled)
        refused = partial(self.message.say, error=True)
        self.colouring.failed.connect(refused)
        loader.step.connect(lambda step: self.message.say(f"{step}…"))
        loader.progressed.connect(self.review_tab.show_progress)
        loader.refused.connect(refused)
        loader.failed.connect(refused)
        loader.ready.connect(self._on_opened)
        loader.finished.connect(self._update_enabled)
        self._features_timer.timeout.connect(self._on_features_due)
        self.tabs.currentChanged.connect(self._tab_widths.on_tab_changed)
        self._viewer_events.connect()  # the slider, the canvas' size, the window closing

    def _add_review_callbacks(self, running: Running) -> None:
        """Listen to the running review; its keys, clicks and paint strokes go to it."""
        self._listener.attach(running.review)
        running.bind()

    def _remove_review_callbacks(self, running: Running) -> None:
        self._listener.detach()
        running.unbind()

    # ------------------------------------------------------------------ inputs and start

    def _on_folders_changed(self) -> None:
        try:
            text = self.setup.list_files()
        except InputError as err:
            self.message.say(str(err), error=True)
            return
        if text:
            self.message.say(text)

    def _on_mask_layer_chosen(self, *args) -> None:
        """Mask A or B (or the IoU) chosen: the Metrics tab describes them, when no review runs."""
        if self._review is None and not self.busy and not self.setup.folders:
            self.metrics.describe_layers(self.a_combo.layer(), self.b_combo.layer(),
                                         iou_threshold=self.setup.iou_threshold.value())

    def _on_layer_filtered(self, layer) -> None:
        """The Metrics tab filtered a layer: a comparison of it is out of date."""
        if layer in (self.a_combo.layer(), self.b_combo.layer()):
            self._on_mask_layer_chosen()

    def _on_file_step(self, delta: int) -> None:
        row, count, _ = self.setup.file_position()
        if not 0 <= row + delta < count:
            self.message.say("no previous file" if delta < 0 else "no next file")
            return
        if self._review is not None and not self._review.may_leave(self, "file"):
            return
        self.setup.file_step(delta)
        if self._review is not None:
            self.end_review()
            self._on_start()

    def _on_start(self) -> None:
        if self.busy:
            return
        try:
            load, output = self.setup.job()
        except InputError as err:
            self.message.say(str(err), error=True)
            return
        if self._review is not None:
            self.end_review()
        self.metrics.describe_nothing()  # until the review it will describe is open
        if self.setup.folders:
            self.result.remove()  # the previous file's result gives way
        else:
            self.result.forget()
        self.message.say(f"reading and pairing… (saving to {output})")
        self.loader.start(load, output=output,
                          iou_threshold=float(self.setup.iou_threshold.value()),
                          margin=int(self.setup.margin.value()),
                          view=self.panel.view_settings())
        self._update_enabled()

    def _on_opened(self, opened: Opened, view: ReviewView) -> None:
        """The layers are in: the review begins (as it was left, when resumed)."""
        review, session = opened.review, opened.review.session
        running = Running.start(self.viewer, opened, view, self._actions(), hint=_HINT,
                                say=self.message.say, parent=self)
        self._review = running
        self._add_review_callbacks(running)
        if running.open_view():  # else the line that says why the group is not shown stays
            self.message.say(running.opening_words())
        self._show_panel(running)
        self.metrics.describe_review(review, locked=() if self.setup.folders else (
            self.a_combo.layer(), self.b_combo.layer()))
        self._update_enabled()
        focus_canvas(self.viewer)
        self._apply_look(running)  # colour by disagreement, if the review was left so
        self.review_started.emit(session)

    # ------------------------------------------------------------------ the review's changes

    def _act(self, name: str, *args, **kwargs):
        """The running review's ``name`` (:meth:`._running.Running.act`): its change, or None."""
        return self._review.act(name, *args, **kwargs) if self._review is not None else None

    def _on_change(self, change) -> None:
        """The review changed, whoever changed it: redraw what ``change`` says changed."""
        running = self._review
        if running is None:
            return
        # a new overlay is a new layout: the group is fitted again
        refocus = change.moved or (change.view and self._apply_look(running))
        shown = running.draw(regions=change.regions, refocus=refocus)
        self._show_panel(running)
        if change.decided:
            self._features_timer.start()
        if change.save_error is not None:
            self.message.say(f"autosave failed: {one_line(change.save_error)}", error=True)
        elif change.message is not None and shown:  # else: why the group is not shown
            self.message.say(change.message)

    def _show_panel(self, running: Running) -> None:
        """The group, the counts and the queue and view settings, as the review has them."""
        self.panel.show_review(running.session)
        self.panel.set_view_settings(running.review.view)

    def _apply_look(self, running: Running) -> bool:
        """The overlay view and colour by disagreement as the review has them; True when
        the overlay view changed."""
        self.colouring.apply(running)
        return running.view.set_overlay(running.review.view.overlay)

    def _on_features_due(self) -> None:
        if self._review is not None:
            self._review.refresh_features()

    # ------------------------------------------------------------------ the view

    def _on_disagreement_toggled(self, on: bool) -> None:
        """Colour every object by its best IoU, or back (and the keys to the canvas)."""
        self._act("set_view", disagreement=on)
        focus_canvas(self.viewer)

    def _to_view(self, name: str, *args) -> None:
        """The running review's view does ``name`` (a slice step, a refit...)."""
        if self._review is not None:
            getattr(self._review.view, name)(*args)

    # ------------------------------------------------------------------ ending

    def _on_quit(self) -> None:
        """Q: save and end the review; in the app of ``mask-compare review``, close it too."""
        if self.end_review() is not None and self.quit_closes_window:
            QTimer.singleShot(0, self._close_window)

    def _close_window(self) -> None:
        if getattr(self.viewer, "window", None) is not None:
            self.viewer.close()

    def _on_finish(self) -> None:
        if self._review is not None and self._review.may_leave(self, "finish"):
            self.end_review(finish=True)

    def _update_enabled(self) -> None:
        self.review_tab.show_state(running=self._review is not None, busy=self.busy)

    # ------------------------------------------------------------------ closing

    def _on_viewer_closing(self) -> None:
        self.loader.abort()
        self.end_review()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self.loader.abort()
        self.end_review()
        self._disconnect()
        super().closeEvent(event)

    def _disconnect(self) -> None:
        for combo in (self.image_combo, self.a_combo, self.b_combo):
            combo.disconnect_viewer()
        self._viewer_events.disconnect()
