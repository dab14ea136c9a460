"""The "Mask compare" dock widget: review two masks group by group.

Thin over the core: :meth:`..review.Review.open` gives the review (pairing,
lock, journal, session, background TIFF, resume) and every action goes
through it (decide, undo, finish, and the hand edits napari's brush, eraser
and fill make on the curated layer, see :mod:`._edits`); the review's one
change event redraws the view. This widget builds the controls, wires its
controls in :meth:`_add_callbacks` and the running review's events in
:meth:`_add_review_callbacks`, and shows the session through a
:class:`._view.ReviewView`. Keys are taken over by :class:`._keys.ReviewKeys`
while a review runs and given back after.

Signals for companions: :attr:`review_started` (session), :attr:`review_changed`
(a :class:`..session.Change`, after every decision, undo, finish or edit) and
:attr:`review_ended` (session). The widget's own "Metrics" tab (a
:class:`._metrics.MetricsWidget`) listens to them: it shows A vs B and the
curated output vs A and vs B, computed when the tab is looked at; without a
review, A vs B of the layers chosen as mask A and mask B.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from napari.layers import Image, Labels
from napari.qt.threading import create_worker
from qtpy.QtCore import QEvent, QObject, Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .. import io
from ..labels import relabel_sequential
from ..matching import KINDS
from ..review import Review
from ._edits import new_labels, paint_pieces, put_back
from ._inputs import LayerCombo, load_from_files, load_from_layers, output_name
from ._keys import ReviewKeys
from ._metrics import MetricsWidget
from ._view import ReviewView, layer_features, make_review_layers

__all__ = ["MaskCompareWidget", "describe_group", "describe_counts"]

_KIND_LABELS = {"match": "match", "split": "split", "merge": "merge", "complex": "complex",
                "only_a": "only A", "only_b": "only B"}
_ORDERS = (("spatial", "spatial"), ("iou", "lowest IoU first"))
_RESULT_MARK = "napari_mask_compare_result"
#: Features of the output layer are refreshed this long after the last decision.
_FEATURES_DELAY_MS = 150
#: The Metrics tab, when shown, recomputes the curated output's statistics this
#: long after the last decision.
_METRICS_DELAY_MS = 1000


@dataclass
class _Review:
    """A running review: the core :class:`..review.Review` and its Qt helpers."""

    review: Review
    view: ReviewView
    keys: ReviewKeys
    pair: io.MaskPair
    output: Path

    @property
    def session(self):
        return self.review.session


@dataclass(frozen=True)
class _Opened:
    """What the loading worker hands back to the GUI thread."""

    pair: io.MaskPair
    review: Review
    output: Path
    layers: dict


@dataclass(frozen=True)
class _Refused:
    """Bad input met by the worker: a one-line message to show (not an exception,
    which the worker would re-raise as a traceback)."""

    message: str


def _open(load, *, output: Path, iou_threshold: float):
    """Worker body: read and validate, pair and open (or resume) the review, make layers.

    Yields a step name before each long step; returns :class:`_Opened`, or
    :class:`_Refused` with the message of the :class:`io.InputError` (a
    review refused, e.g. open in another window, holds nothing to release).
    The review is closed again if anything fails after it opened.
    """
    yield "reading"
    try:
        pair = load()
        yield "pairing"
        review = Review.open(
            pair.a, pair.b, output=output, iou_threshold=iou_threshold,
            inputs={"mask_a": str(pair.paths.get("mask_a")),
                    "mask_b": str(pair.paths.get("mask_b"))},
            classes_a=pair.classes_a, classes_b=pair.classes_b,
            voxel_size=pair.voxel_size or None, unit=pair.unit,
        )
    except io.InputError as err:
        return _Refused(str(err))
    try:
        yield "preparing the view"
        names = tuple(_short_name(pair.paths.get(key)) for key in ("mask_a", "mask_b"))
        layers = make_review_layers(a=pair.a, b=pair.b, output=review.session.output.copy(),
                                    image=pair.image, scale=pair.voxel_size or None,
                                    names=names)
    except BaseException:
        _close_quietly(review)
        raise
    return _Opened(pair, review, output, layers)


def _close_quietly(review: Review) -> None:
    """Close a review on the way out of an error (that error is the one to report)."""
    with contextlib.suppress(OSError):
        review.close()


def _short_name(source) -> str:
    return source.stem if isinstance(source, Path) else str(source)


def describe_group(group, *, session) -> str:
    """Panel text of the current group (rich text).

    Parameters
    ----------
    group : matching.Group or None
    session : session.Session
    """
    if group is None:
        return "<i>No group in the queue (see the kind filter).</i>"
    queue = session.queue
    position = session.position + 1
    kind = _KIND_LABELS[group.kind]
    flag = "" if group.paired else " <b style='color:#ff5050'>UNPAIRED</b>"
    choice = session.choice_of(group.index)
    decided = f" · decided: <b>{choice}</b>" if choice else " · <i>undecided</i>"
    lines = [
        f"<b>Group {position} of {len(queue)}</b> (#{group.index}){decided}",
        f"kind: <b>{kind}</b>{flag}",
        "A: " + _objects(group.ids_a, group.sizes_a),
        "B: " + _objects(group.ids_b, group.sizes_b),
    ]
    if group.pairs:
        lines.append("IoU: " + ", ".join(f"A{a}–B{b} {iou:.3f}" for a, b, iou in group.pairs))
    return "<br>".join(lines)


def _objects(ids, sizes) -> str:
    if not ids:
        return "—"
    return ", ".join(f"{i} ({s:,} vx)" for i, s in zip(ids, sizes))


def describe_counts(summary: dict) -> str:
    """The running counts line.

    >>> describe_counts({"A": 2, "B": 1, "M": 0, "N": 3, "Auto": 0, "decided": 6,
    ...                  "groups": 9, "objects": 4, "contested": 0})
    'A 2 · B 1 · M 0 · N 3 · Auto 0 — decided 6/9 — 4 objects'
    """
    counts = " · ".join(f"{key} {summary[key]}" for key in ("A", "B", "M", "N", "Auto"))
    text = f"{counts} — decided {summary['decided']}/{summary['groups']} — " \
           f"{summary['objects']} objects"
    if summary.get("edits"):
        text += f" — {summary['edits']} hand edit(s)"
    if summary.get("contested"):
        text += f" — {summary['contested']:,} contested vx kept their owner"
    return text


class MaskCompareWidget(QWidget):
    """Review two instance masks group by group and build one curated mask.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    #: Emitted with the session when a review starts (or resumes).
    review_started = Signal(object)
    #: Emitted with a session.Change after every decision, undo or finish.
    review_changed = Signal(object)
    #: Emitted with the session when the review ends (Q, Finish, closing).
    review_ended = Signal(object)

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self._review: _Review | None = None
        self._worker = None
        self._opening = None  # (opened, view, steps) while the layers go in
        self._output_changed: list = []  # regions of the output not yet copied to the layer
        self._pairs: list[tuple[Path | None, Path, Path]] = []
        self._result_layer = None
        self._window_filter = None
        self._features_timer = QTimer(self)
        self._features_timer.setSingleShot(True)
        self._features_timer.setInterval(_FEATURES_DELAY_MS)
        self._compared: _Review | None = None  # the review the Metrics tab describes
        self._layers_stale = True  # mask layers chosen since the tab last compared them
        self._stale_metrics: set[str] = set()
        self._metrics_timer = QTimer(self)
        self._metrics_timer.setSingleShot(True)
        self._metrics_timer.setInterval(_METRICS_DELAY_MS)
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
        return self._worker is not None or self._opening is not None

    def set_layers(self, *, image=None, mask_a=None, mask_b=None) -> None:
        """Choose the input layers (and switch to the layers source)."""
        self.source_tabs.setCurrentIndex(0)
        self.image_combo.set_layer(image)
        self.a_combo.set_layer(mask_a)
        self.b_combo.set_layer(mask_b)

    def set_folders(self, *, images_dir=None, mask_a_dir=None, mask_b_dir=None) -> None:
        """Choose the input folders (and switch to the folders source); lists the files."""
        self.source_tabs.setCurrentIndex(1)
        for edit, value in ((self.images_dir, images_dir), (self.mask_a_dir, mask_a_dir),
                            (self.mask_b_dir, mask_b_dir)):
            edit.setText("" if value is None else str(value))
        self._on_folders_changed()

    def set_out_dir(self, out_dir) -> None:
        self.out_dir.setText(str(out_dir))

    def set_parameters(self, *, margin: int | None = None,
                       iou_threshold: float | None = None) -> None:
        """Set the margin (pixels around a group) and the IoU threshold."""
        if margin is not None:
            self.margin.setValue(int(margin))
        if iou_threshold is not None:
            self.iou_threshold.setValue(float(iou_threshold))

    def go_to(self, group: int) -> None:
        """Show the group of index ``group`` (it must be in the queue)."""
        if self._review is not None:
            self._review.session.go_to(group)
            self._show_current()

    def start(self) -> None:
        """Read the inputs and start (or resume) the review, off the GUI thread."""
        self._on_start()

    def end_review(self, *, finish: bool = False) -> dict | None:
        """End the running review: finish it if asked, save, give the keys back.

        A finish that cannot be journaled leaves the review running (the
        message says why).

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
        self._review = None
        self._features_timer.stop()
        running.keys.unbind()
        self._remove_review_callbacks(running)
        try:
            summary = running.review.close()
        except OSError as err:
            summary = running.session.summary()
            self._message(f"{_one_line(err)} — the journal is whole: start the review "
                          "again to rebuild the output", error=True)
        else:
            self._message(f"Saved {running.output} — {describe_counts(summary)}")
        running.view.close()
        self._show_result(running)
        self.viewer.reset_view()
        self._update_panel()
        self._update_enabled()
        self.review_ended.emit(running.session)
        return summary

    # ------------------------------------------------------------------ building

    def _build(self) -> None:
        """Two tabs, "Review" and "Metrics".

        In "Review", setup (inputs, parameters, Start) shows until a review
        runs, then the panel. Both are pages of one stack, and the progress bar
        keeps its room when hidden: switching changes no size, so the canvas is
        not resized (and repainted) on the way.
        """
        self.tabs = QTabWidget()
        review_tab = QWidget()
        self.metrics = MetricsWidget(self.viewer)
        self.tabs.addTab(review_tab, "Review")
        self.tabs.addTab(self.metrics, "Metrics")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.tabs)
        layout = QVBoxLayout(review_tab)
        self.setup_box = QWidget()
        setup = QVBoxLayout(self.setup_box)
        setup.setContentsMargins(0, 0, 0, 0)
        self.source_tabs = QTabWidget()
        self.source_tabs.addTab(self._build_layer_inputs(), "Layers")
        self.source_tabs.addTab(self._build_folder_inputs(), "Folders")
        setup.addWidget(self.source_tabs)
        setup.addWidget(self._build_parameters())
        self.start_button = QPushButton("Start review")
        setup.addWidget(self.start_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        policy = self.progress.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.progress.setSizePolicy(policy)
        self.progress.setVisible(False)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setMinimumHeight(3 * self.message.fontMetrics().height())
        self.message.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.setup_box)
        self.pages.addWidget(self._build_review_panel())
        layout.addWidget(self.pages)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addStretch(1)

    def _build_layer_inputs(self) -> QWidget:
        box = QWidget()
        form = QFormLayout(box)
        self.image_combo = LayerCombo(self.viewer, kinds=(Image,), optional=True)
        self.a_combo = LayerCombo(self.viewer, kinds=(Labels,), masks=True)
        self.b_combo = LayerCombo(self.viewer, kinds=(Labels,), masks=True)
        form.addRow("image", self.image_combo)
        form.addRow("mask A", self.a_combo)
        form.addRow("mask B", self.b_combo)
        return box

    def _build_folder_inputs(self) -> QWidget:
        box = QWidget()
        form = QFormLayout(box)
        self.images_dir, self.mask_a_dir, self.mask_b_dir = QLineEdit(), QLineEdit(), QLineEdit()
        self._browse_buttons = {}
        for label, edit in (("images", self.images_dir), ("mask A", self.mask_a_dir),
                            ("mask B", self.mask_b_dir)):
            form.addRow(label, self._folder_row(edit))
        self.file_list = QListWidget()
        self.file_list.setMaximumHeight(100)
        form.addRow(self.file_list)
        return box

    def _folder_row(self, edit: QLineEdit) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        button = QPushButton("…")
        button.setMaximumWidth(30)
        layout.addWidget(edit)
        layout.addWidget(button)
        self._browse_buttons[button] = edit
        return row

    def _build_parameters(self) -> QWidget:
        box = QWidget()
        form = QFormLayout(box)
        form.setContentsMargins(0, 0, 0, 0)
        self.out_dir = QLineEdit()
        self.out_dir.setPlaceholderText("folder for the curated mask and its journal")
        form.addRow("out dir", self._folder_row(self.out_dir))
        self.margin = QSpinBox()
        self.margin.setRange(0, 10_000)
        self.margin.setValue(15)
        self.margin.setSuffix(" px")
        self.iou_threshold = QDoubleSpinBox()
        self.iou_threshold.setRange(0.001, 1.0)
        self.iou_threshold.setDecimals(3)
        self.iou_threshold.setSingleStep(0.05)
        self.iou_threshold.setValue(0.1)
        form.addRow("margin", self.margin)
        form.addRow("IoU threshold", self.iou_threshold)
        return box

    def _build_review_panel(self) -> QWidget:
        self.review_box = QGroupBox("Review")
        layout = QVBoxLayout(self.review_box)
        self.file_row = QWidget()
        files = QHBoxLayout(self.file_row)
        files.setContentsMargins(0, 0, 0, 0)
        self.previous_file_button = QPushButton("◀ file")
        self.next_file_button = QPushButton("file ▶")
        self.file_label = QLabel()
        for button in (self.previous_file_button, self.next_file_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        files.addWidget(self.previous_file_button)
        files.addWidget(self.file_label, 1)
        files.addWidget(self.next_file_button)
        layout.addWidget(self.file_row)
        self.group_label = QLabel()
        self.group_label.setWordWrap(True)
        self.group_label.setTextFormat(Qt.TextFormat.RichText)
        self.counts_label = QLabel()
        self.counts_label.setWordWrap(True)
        layout.addWidget(self.group_label)
        layout.addWidget(self.counts_label)
        options = QFormLayout()
        self.order_combo = QComboBox()
        for _, label in _ORDERS:
            self.order_combo.addItem(label)
        options.addRow("order", self.order_combo)
        kinds = QGridLayout()
        self.kind_boxes = {}
        for i, kind in enumerate(KINDS):
            box = QCheckBox(_KIND_LABELS[kind])
            box.setChecked(True)
            self.kind_boxes[kind] = box
            kinds.addWidget(box, i // 3, i % 3)
        options.addRow("kinds", kinds)
        self.overlay_box = QCheckBox("overlay view (A and B contours on one image)")
        options.addRow(self.overlay_box)
        layout.addLayout(options)
        self.buttons = {}
        rows = ((("A", "1. A"), ("B", "2. B"), ("M", "3. Merge"), ("N", "4. None")),
                (("undo", "U. undo"), ("previous", "← prev"), ("next", "→ next"),
                 ("quit", "Q. save && quit")),
                (("finish", "Finish (add unpaired, save)"),))
        for row in rows:
            line = QHBoxLayout()
            for name, text in row:
                button = QPushButton(text)
                button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the canvas
                self.buttons[name] = button
                line.addWidget(button)
            layout.addLayout(line)
        return self.review_box

    # ------------------------------------------------------------------ wiring

    def _add_callbacks(self) -> None:
        """Connect every control and model event (the only place that does)."""
        self.start_button.clicked.connect(self._on_start)
        for button in self._browse_buttons:
            button.clicked.connect(partial(self._on_browse, button))
        for edit in (self.images_dir, self.mask_a_dir, self.mask_b_dir):
            edit.editingFinished.connect(self._on_folders_changed)
        self.previous_file_button.clicked.connect(partial(self._on_file_step, -1))
        self.next_file_button.clicked.connect(partial(self._on_file_step, +1))
        for choice in ("A", "B", "M", "N"):
            self.buttons[choice].clicked.connect(partial(self._on_decide, choice))
        self.buttons["undo"].clicked.connect(self._on_undo)
        self.buttons["previous"].clicked.connect(self._on_previous)
        self.buttons["next"].clicked.connect(self._on_next)
        self.buttons["quit"].clicked.connect(self._on_quit)
        self.buttons["finish"].clicked.connect(self._on_finish)
        self.order_combo.currentIndexChanged.connect(self._on_order_changed)
        for box in self.kind_boxes.values():
            box.toggled.connect(self._on_kinds_changed)
        self.overlay_box.toggled.connect(self._on_overlay_toggled)
        self._features_timer.timeout.connect(self._on_features_due)
        self.review_started.connect(self._on_review_started)
        self.review_changed.connect(self._on_review_changed)
        self.tabs.currentChanged.connect(self._update_metrics)
        for combo in (self.a_combo, self.b_combo):
            combo.currentTextChanged.connect(self._on_mask_layer_chosen)
        self._metrics_timer.timeout.connect(self._update_metrics)
        window = getattr(getattr(self.viewer, "window", None), "_qt_window", None)
        if window is not None:
            self._window_filter = _CloseFilter(self._on_viewer_closing, parent=self)
            window.installEventFilter(self._window_filter)

    def _add_review_callbacks(self, running: _Review) -> None:
        """Connect the running review's events (the only place that does).

        The review's one change event (every decision, undo, finish, edit)
        redraws the view; napari's paint event of the curated layer (a brush,
        eraser or fill stroke) becomes an edit of the review.
        """
        running.review.add_listener(self._on_review_change)
        running.view.layers["output"].events.paint.connect(self._on_output_painted)

    def _remove_review_callbacks(self, running: _Review) -> None:
        running.review.remove_listener(self._on_review_change)
        running.view.layers["output"].events.paint.disconnect(self._on_output_painted)

    # ------------------------------------------------------------------ inputs

    def _on_browse(self, button) -> None:
        edit = self._browse_buttons[button]
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder", edit.text())
        if folder:
            edit.setText(folder)
            if edit is not self.out_dir:
                self._on_folders_changed()

    def _on_folders_changed(self) -> None:
        self._pairs = []
        self.file_list.clear()
        dirs = self._folder_paths()
        if dirs["mask_a"] is None or dirs["mask_b"] is None:
            return
        try:
            self._pairs, unpaired = _pair_folders(**dirs)
        except io.InputError as err:
            self._message(str(err), error=True)
            return
        self.file_list.addItems([mask_a.name for _, mask_a, _ in self._pairs])
        self.file_list.setCurrentRow(0)
        skipped = sum(len(names) for names in unpaired.values())
        note = f"; {skipped} file(s) without a partner skipped" if skipped else ""
        self._message(f"{len(self._pairs)} file(s) to review{note}")

    def _folder_paths(self) -> dict:
        def path(edit):
            return Path(edit.text().strip()) if edit.text().strip() else None

        return {"images": path(self.images_dir), "mask_a": path(self.mask_a_dir),
                "mask_b": path(self.mask_b_dir)}

    def _on_file_step(self, delta: int) -> None:
        row = self.file_list.currentRow() + delta
        if not 0 <= row < self.file_list.count():
            self._message("no previous file" if delta < 0 else "no next file")
            return
        self.file_list.setCurrentRow(row)
        if self._review is not None:
            self.end_review()
            self._on_start()

    # ------------------------------------------------------------------ start

    def _on_start(self) -> None:
        if self.busy:
            return
        try:
            load, output = self._job()
        except io.InputError as err:
            self._message(str(err), error=True)
            return
        if self._review is not None:
            self.end_review()
        self._layers_stale = False  # the review's A vs B describes them
        self._compared = None  # nothing more to compute for the one that ended
        self._remove_result_layer()
        self._message(f"reading and pairing… (saving to {output})")
        worker = create_worker(
            _open, load, output=output, iou_threshold=float(self.iou_threshold.value()),
            _progress={"total": 3, "desc": "mask-compare: pairing"},
        )
        worker.yielded.connect(self._on_worker_step)
        worker.returned.connect(self._on_opened)
        worker.errored.connect(self._on_worker_error)
        worker.finished.connect(self._on_worker_finished)
        self._worker = worker
        self._update_enabled()
        worker.start()

    def _job(self):
        """The loader to run in the worker, and the output path; checks what is cheap."""
        out_text = self.out_dir.text().strip()
        if not out_text:
            raise io.InputError("choose an out dir for the curated mask")
        out_dir = Path(out_text).expanduser()
        if self.source_tabs.currentIndex() == 0:
            a, b, image = self.a_combo.layer(), self.b_combo.layer(), self.image_combo.layer()
            if a is None or b is None:
                raise io.InputError("choose a layer for mask A and one for mask B")
            return partial(load_from_layers, image, a, b), out_dir / output_name(a.name)
        if not self._pairs:
            self._on_folders_changed()
        if not self._pairs:
            raise io.InputError("choose the mask A and mask B folders (files are paired by name)")
        image, mask_a, mask_b = self._pairs[max(self.file_list.currentRow(), 0)]
        for folder in (mask_a.parent, mask_b.parent):
            if out_dir.resolve() == folder.resolve():
                raise io.InputError(f"{out_dir}: is an input folder; choose another out dir")
        return partial(load_from_files, mask_a, mask_b, image=image), \
            out_dir / output_name(mask_a)

    def _on_worker_step(self, step: str) -> None:
        self._message(f"{step}…")

    def _on_worker_error(self, err: Exception) -> None:
        self._message(f"could not start: {type(err).__name__}: {err}", error=True)

    def _on_worker_finished(self) -> None:
        self._worker = None
        self._update_enabled()

    def _on_opened(self, opened) -> None:
        if isinstance(opened, _Refused):
            self._message(opened.message, error=True)
            return
        view = ReviewView(self.viewer, a=opened.pair.a, b=opened.pair.b,
                          scale=opened.pair.voxel_size or None, margin=int(self.margin.value()),
                          layers=opened.layers, insert=False)
        self._opening = (opened, view, view.open_steps())
        self._message("adding the review layers…")
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
            self._begin(opened, view)
            return
        QTimer.singleShot(0, self._on_open_step)

    def _abort_opening(self) -> None:
        """The widget goes away while the layers go in: save and let go."""
        opening, self._opening = self._opening, None
        if opening is not None:
            opened, view, steps = opening
            steps.close()
            _close_quietly(opened.review)
            view.close()

    def _begin(self, opened: _Opened, view: ReviewView) -> None:
        pair, session = opened.pair, opened.review.session
        view.set_overlay(self.overlay_box.isChecked())
        keys = ReviewKeys(self.viewer, {
            "A": partial(self._on_decide, "A"), "B": partial(self._on_decide, "B"),
            "M": partial(self._on_decide, "M"), "N": partial(self._on_decide, "N"),
            "undo": self._on_undo, "previous": self._on_previous, "next": self._on_next,
            "quit": self._on_quit,
        })
        self._review = _Review(opened.review, view, keys, pair, opened.output)
        session.set_order(_ORDERS[self.order_combo.currentIndex()][0])
        session.set_kinds(self._checked_kinds())
        self._add_review_callbacks(self._review)
        keys.bind()
        view.refresh_output(session.output, redraw=False, features=session.features())
        view.layers["output"].selected_label = len(session.objects) + 1  # a new object
        self._show_current()
        replayed = len(session.steps)
        state = f"resumed ({replayed} action(s) replayed)" if replayed else "started"
        notes = "".join(f"; {note}" for note in opened.review.notes)
        self._message(f"Review {state}: {len(session.groups)} groups; saving to "
                      f"{opened.output}{notes}")
        self._update_enabled()
        self._focus_canvas()
        self.review_started.emit(session)

    def _checked_kinds(self) -> list[str]:
        return [kind for kind, box in self.kind_boxes.items() if box.isChecked()]

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
        pieces = paint_pieces(atoms)
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

    def _on_next(self) -> None:
        if self._review is not None:
            self._review.session.next()
            self._show_current()

    def _on_previous(self) -> None:
        if self._review is not None:
            self._review.session.previous()
            self._show_current()

    def _on_quit(self) -> None:
        self.end_review()
        self._update_metrics()

    def _on_finish(self) -> None:
        self.end_review(finish=True)
        self._update_metrics()

    def _on_order_changed(self, index: int) -> None:
        if self._review is not None:
            self._review.session.set_order(_ORDERS[index][0])
            self._show_current()

    def _on_kinds_changed(self, checked: bool = False) -> None:
        if self._review is not None:
            self._review.session.set_kinds(self._checked_kinds())
            self._show_current()

    def _on_overlay_toggled(self, overlay: bool) -> None:
        if self._review is not None:
            self._review.view.set_overlay(overlay)
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
            self._review.view.refresh_output(self._review.session.output, redraw=False,
                                             features=self._review.session.features())

    def _after_action(self) -> None:
        running = self._review
        self._show_current()
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

    def _show_current(self) -> None:
        review = self._review
        if review is None:
            return
        group = review.session.current
        resliced = review.view.show(group) if group is not None else False
        self._redraw_output(resliced=resliced)
        if group is not None:
            review.view.set_caption(
                f"{review.session.position + 1}/{len(review.session.queue)} "
                f"{_KIND_LABELS[group.kind]} · A {' '.join(map(str, group.ids_a)) or '—'} "
                f"| B {' '.join(map(str, group.ids_b)) or '—'}"
            )
        self._update_panel()

    # ------------------------------------------------------------------ metrics

    def _on_review_started(self, session) -> None:
        self._compared = self._review
        self._stale_metrics = {"inputs", "curated"}
        self.metrics.clear()
        self._update_metrics()

    def _on_review_changed(self, change) -> None:
        self._stale_metrics.add("curated")
        self._metrics_timer.start()

    def _on_mask_layer_chosen(self, name: str = "") -> None:
        """Mask A or B chosen: the tab compares them soon (both may change at once)."""
        self._layers_stale = True
        self._metrics_timer.start()

    def _update_metrics(self, *args) -> None:
        """Compute what the Metrics tab lacks, if it shows.

        That is the stale comparisons of the review (running, or ended by Q or
        Finish), or, when no review runs, A vs B of the mask layers the user
        chose. Nothing is computed while the tab is hidden (pairing a large
        volume takes seconds of CPU the review needs), nor while the panel
        still works on the previous request.
        """
        if self.tabs.currentWidget() is not self.metrics:
            return
        layers = (self._review is None and not self.busy and self._layers_stale
                  and self.source_tabs.currentIndex() == 0)
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
                                 iou_threshold=self.iou_threshold.value())

    def _compare_review(self, review: _Review) -> None:
        session, pair = review.session, review.pair
        options = dict(voxel_size=pair.voxel_size or None, unit=pair.unit,
                       iou_threshold=self.iou_threshold.value(), copy=False)
        if "inputs" in self._stale_metrics:
            self.metrics.show_comparison(session.a, session.b, label="A vs B", **options)
        shown_before = "curated vs A" in self.metrics.comparisons
        if "curated" in self._stale_metrics and (session.objects or shown_before):
            with session.lock:
                curated = session.output.copy()
            self.metrics.show_comparison(session.a, curated, label="curated vs A", **options)
            self.metrics.show_comparison(session.b, curated, label="curated vs B", **options)
        self._stale_metrics.clear()

    # ------------------------------------------------------------------ state shown

    def _update_panel(self) -> None:
        review = self._review
        if review is None:
            self.group_label.setText("<i>No review running.</i>")
            self.counts_label.setText("")
            return
        session = review.session
        self.group_label.setText(describe_group(session.current, session=session))
        self.counts_label.setText(describe_counts(session.summary()))

    def _update_enabled(self) -> None:
        running = self._review is not None
        for button in self.buttons.values():
            button.setEnabled(running)
        self.start_button.setEnabled(not self.busy)
        self.progress.setVisible(self.busy)
        self.pages.setCurrentWidget(self.review_box if running else self.setup_box)
        folders = running and self.source_tabs.currentIndex() == 1
        self.file_row.setVisible(folders)
        if folders:
            row, count = self.file_list.currentRow(), self.file_list.count()
            name = self.file_list.currentItem().text() if row >= 0 else ""
            self.file_label.setText(f"file {row + 1} of {count}: {name}")
            self.previous_file_button.setEnabled(row > 0)
            self.next_file_button.setEnabled(row + 1 < count)

    def _message(self, text: str, *, error: bool = False) -> None:
        """Show one line (red for errors); unchanged text costs nothing (style sheets do)."""
        if error != self.message.property("error"):
            self.message.setProperty("error", error)
            self.message.setStyleSheet("color: #ff6060;" if error else "")
        if text != self.message.text():
            self.message.setText(text)

    def _focus_canvas(self) -> None:
        qt_viewer = getattr(getattr(self.viewer, "window", None), "_qt_viewer", None)
        if qt_viewer is not None:
            qt_viewer.canvas.native.setFocus()

    def _show_result(self, running: _Review) -> None:
        """Put the curated mask in the viewer as a layer of its own, with the saved ids."""
        name = f"curated: {Path(running.output).stem}"
        for layer in list(self.viewer.layers):
            if layer.name == name and layer.metadata.get(_RESULT_MARK):
                self.viewer.layers.remove(layer)
        labels, features = _saved_labels(running.session)
        self._result_layer = self.viewer.add_labels(
            labels, name=name, scale=running.view.scale, features=layer_features(features),
            metadata={_RESULT_MARK: True},
        )

    def _remove_result_layer(self) -> None:
        """In folder mode, the previous file's result gives way to the next one."""
        layer, self._result_layer = self._result_layer, None
        if layer is not None and self.source_tabs.currentIndex() == 1 \
                and layer in self.viewer.layers:
            self.viewer.layers.remove(layer)

    # ------------------------------------------------------------------ closing

    def _on_viewer_closing(self) -> None:
        self._abort_opening()
        self.end_review()

    def closeEvent(self, event) -> None:
        self._abort_opening()
        self.end_review()
        self._disconnect()
        super().closeEvent(event)

    def _disconnect(self) -> None:
        for combo in (self.image_combo, self.a_combo, self.b_combo):
            combo.disconnect_viewer()
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


def _saved_labels(session) -> tuple[np.ndarray, dict]:
    """The output as the review saves it, and its features.

    With edits in force the saved ids are compacted to 1..n (an erased
    object leaves a gap in the session's ids); the features follow.

    Parameters
    ----------
    session : session.Session

    Returns
    -------
    labels : ndarray
        ``session.output`` itself when nothing was compacted.
    features : dict of str to list
        As :meth:`..session.Session.features`, one row per saved id.
    """
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


def _pair_folders(*, images: Path | None, mask_a: Path, mask_b: Path):
    """(image or None, mask A, mask B) per name found in every given folder, and the rest."""
    folders = [mask_a, mask_b] + ([images] if images is not None else [])
    pairs, unpaired = io.pair_files(*folders)
    return [(p[2] if images is not None else None, p[0], p[1]) for p in pairs], unpaired
