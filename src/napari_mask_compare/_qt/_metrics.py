"""The "Metrics" panel: matching statistics, plots, report export and property filters.

Thin over the core: :mod:`..stats` computes, :mod:`..plots` plots, :mod:`..report` writes,
:mod:`..measure` filters. Every computation runs in a napari thread worker;
the widget shows results when they come back. Events are wired in
:meth:`MetricsWidget._add_callbacks`.

What the tab describes, the review widget says once: a review
(:meth:`MetricsWidget.describe_review`: A vs B, and the curated output vs A
and vs B as curation goes on), the mask layers chosen when no review runs
(:meth:`MetricsWidget.describe_layers`), or nothing new while a review opens.
The tab listens to the review itself (:class:`._listen.ReviewListener`), keeps
its own list of what is out of date, and computes it only while it is shown
(a second after the last change: pairing a large volume takes seconds of CPU
the review needs). It tells of every filter applied
(:attr:`MetricsWidget.filtered`) so that a filtered mask is compared again.
The message under the panel speaks of the comparison shown.

Every comparison is :func:`..compare.compare` (the one recipe the CLI and the
report use too): the summary line, the metric suite (:func:`..compare.suite_lines`),
the plots (matching scores, IoU histogram, error taxonomy) and the per-object
table. The boundary metrics (slow on big data) are measured for A vs B only.
When the comparison is the running review's A vs B, the review's overlap table
and groups are reused (nothing is paired again) and a click on an object's row
moves the review to its group (:meth:`..review.Review.go_to`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
from napari.layers import Labels
from napari.qt.threading import create_worker
from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .. import measure, plots, report, stats
from .._arrays import is_lazy
from .._text import LARGER_THAN_MEMORY
from ..compare import compare, suite_lines
from ..pairing import OverlapTable
from ._inputs import load_from_layers
from ._listen import ReviewListener
from ._objects import ObjectModel
from ._view import is_review_layer

__all__ = ["MetricsWidget", "ObjectModel", "default_rules"]

#: Label of the comparison of the inputs (the only one with boundary metrics).
INPUTS_LABEL = "A vs B"
#: The curated output is compared again this long after the last change (milliseconds).
DELAY_MS = 1000

#: The filter offered first, per number of dimensions (circularity is 2D, sphericity 3D).
DEFAULT_RULES = {2: "npixels < 50 or circularity < 0.5 and npixels < 200",
                 3: "npixels < 50 or sphericity < 0.5 and npixels < 200"}


def default_rules(ndim: int) -> str:
    """The filter offered for ``ndim``-D labels (it uses only properties measured there).

    >>> default_rules(3)
    'npixels < 50 or sphericity < 0.5 and npixels < 200'
    """
    return DEFAULT_RULES.get(ndim, DEFAULT_RULES[2])

#: Columns of the statistics table: (header, key of a matching dict, format).
COLUMNS = stats.MATCHING_COLUMNS


@dataclass(frozen=True)
class ShownComparison:
    """One entry of the panel's comparison list, as it is shown (A the reference).

    :class:`..stats.Comparison` (the computed result) with what the panel
    shows beside it: the masks, the groups' IoUs, the object table and the
    review it came from.

    Attributes
    ----------
    label : str
    a, b : ndarray, shape (y, x) or (z, y, x)
    voxel_size : tuple of float or None
    unit : str
    table : OverlapTable
    summary : dict
        :func:`..compare.summarize` at the panel's thresholds, with the metric suite.
    ious : ndarray of float, shape (n_paired_groups,)
        Best IoU of each paired review group.
    iou_threshold : float
        The IoU that links objects into those groups.
    groups : list of Group
    objects : dict
        :func:`..suite.object_table` (columns).
    review : object or None
        The review session whose table and groups were reused: its rows lead
        to the review's groups.
    """

    label: str
    a: np.ndarray
    b: np.ndarray
    voxel_size: tuple[float, ...] | None
    unit: str
    table: OverlapTable
    summary: dict
    ious: np.ndarray
    iou_threshold: float
    groups: list = ()
    objects: dict | None = None
    review: object = None


def compute_comparison(a, b, *, label: str, thresholds, iou_threshold: float = 0.1,
                       voxel_size=None, unit: str = "pixel", table=None, groups=None,
                       boundary: bool | None = None, review=None) -> ShownComparison:
    """Everything the panel shows about ``b`` against ``a`` (runs in a worker).

    :func:`..compare.compare`; ``table`` and ``groups`` when already made (by the
    review), boundary metrics by default for :data:`INPUTS_LABEL` only.
    """
    if boundary is None:
        boundary = label == INPUTS_LABEL
    result = compare(a, b, table=table, groups=groups, thresholds=thresholds,
                     iou_threshold=iou_threshold, voxel_size=voxel_size,
                     boundary=boundary, objects=True)
    ious = np.array([g.iou for g in result.groups if g.paired], dtype=float)
    return ShownComparison(label, a, b, voxel_size, unit, result.table, result.summary, ious,
                           iou_threshold, result.groups, result.objects, review)


def _compute(*args, **kwargs) -> ShownComparison:
    return compute_comparison(*args, **kwargs)


def _load_and_compute(load, **kwargs) -> ShownComparison:
    """:func:`compute_comparison` of the masks ``load()`` reads and checks (in a worker)."""
    pair = load()
    a, b = np.array(pair.a), np.array(pair.b)  # copies: a layer may be painted meanwhile
    return compute_comparison(a, b, voxel_size=pair.voxel_size or None, unit=pair.unit,
                              **kwargs)


def filter_changes(labels: np.ndarray, rules, *, voxel_size=None):
    """Measure and filter ``labels``; return the voxels to clear and the result (in a worker).

    Returns
    -------
    indices : tuple of ndarray of int
        Voxels of the removed objects, as for ``Labels.data_setitem``.
    result : measure.FilterResult
    """
    labels = np.asarray(labels)
    filtered, result = measure.filter_labels(labels, rules, voxel_size=voxel_size)
    return np.nonzero(filtered != labels), result


class MetricsWidget(QWidget):
    """Statistics table, F1/PQ and IoU plots, report export and a property filter.

    Parameters
    ----------
    viewer : napari.Viewer

    Attributes
    ----------
    locked_layers : tuple of Layer
        Layers the filter must not change (the inputs of a running review).
    """

    #: Emitted with the layer after a filter removed objects from it.
    filtered = Signal(object)
    #: Emitted with a review group's index when the row of one of its objects is
    #: clicked and the review moved there (the running review's A vs B only).
    object_chosen = Signal(int)

    def __init__(self, viewer, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.comparisons: dict[str, ShownComparison] = {}
        self.last_filter: measure.FilterResult | None = None
        self.locked_layers: tuple = ()
        self.review = None  # the review described (its table and groups are reused)
        self._layers = None  # or (mask A, mask B, IoU threshold) described without a review
        self._stale: set[str] = set()  # of "inputs", "curated", "layers": to compute
        self._listener = ReviewListener(self._on_review_change, parent=self)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DELAY_MS)
        self._workers: set = set()
        self._generation = 0  # results of workers started before a clear() are dropped
        self._build()
        self._add_callbacks()
        self._reset_layers()

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.comparison_combo = QComboBox()
        self.thresholds_edit = QLineEdit(", ".join(f"{t:g}" for t in stats.DEFAULT_THRESHOLDS))
        self.thresholds_edit.setToolTip("IoU thresholds in [0, 1], comma-separated")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([c[0] for c in COLUMNS])
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.summary_label = QLabel("No comparison yet.")
        self.summary_label.setWordWrap(True)
        self.suite_label = QLabel("")
        self.suite_label.setWordWrap(True)
        self.suite_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.figure = Figure(figsize=(5, 2.6), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(220)
        self.taxonomy_figure = Figure(figsize=(5, 2.4), layout="constrained")
        self.taxonomy_canvas = FigureCanvasQTAgg(self.taxonomy_figure)
        self.taxonomy_canvas.setMinimumHeight(200)
        self.objects = ObjectModel(self)
        self.objects_view = QTableView()
        self.objects_view.setModel(self.objects)
        self.objects_view.verticalHeader().setVisible(False)
        self.objects_view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.objects_view.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.objects_view.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
        self.objects_view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.objects_view.setSortingEnabled(True)
        self.objects_view.horizontalHeader().setStretchLastSection(True)
        self.objects_view.setWordWrap(False)
        self.objects_view.verticalHeader().setDefaultSectionSize(
            self.objects_view.fontMetrics().height() + 6)
        self.objects_view.setMinimumHeight(200)
        self.objects_view.setToolTip("Objects of A and B; click a header to sort, a row of "
                                     "A vs B to go to its group in the running review")
        self.export_button = QPushButton("Export report…")
        self.export_button.setEnabled(False)

        self.layer_combo = QComboBox()
        self.rules_edit = QLineEdit(default_rules(2))
        self.rules_edit.setToolTip(
            "Conditions 'property op number' joined by 'and'; alternatives by 'or'. "
            "Properties: " + ", ".join(measure.property_names(2)[1:7])
            + ", volume, surface_area, sphericity (3D)")
        self.filter_button = QPushButton("Apply filter")
        self.save_filter_button = QPushButton("Save list…")
        self.save_filter_button.setEnabled(False)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.note = QLabel("")  # what is left out (e.g. for a review larger than memory)
        self.note.setWordWrap(True)
        self.note.setVisible(False)

        top = QFormLayout()
        top.addRow("Comparison", self.comparison_combo)
        top.addRow("Thresholds", self.thresholds_edit)
        filter_box = QGroupBox("Property filter")
        form = QFormLayout(filter_box)
        form.addRow("Layer", self.layer_combo)
        form.addRow("Remove if", self.rules_edit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.filter_button)
        buttons.addWidget(self.save_filter_button)
        form.addRow(buttons)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.note)
        layout.addWidget(self.suite_label)
        layout.addWidget(self.canvas)
        layout.addWidget(self.taxonomy_canvas)
        layout.addWidget(QLabel("Objects"))
        layout.addWidget(self.objects_view)
        layout.addWidget(self.export_button)
        layout.addWidget(filter_box)
        layout.addWidget(self.message)

    def _add_callbacks(self) -> None:
        self.comparison_combo.currentTextChanged.connect(self._on_comparison_selected)
        self.layer_combo.currentTextChanged.connect(self._on_filter_layer_chosen)
        self.thresholds_edit.editingFinished.connect(self._on_thresholds_edited)
        self.export_button.clicked.connect(self._on_export_clicked)
        self.filter_button.clicked.connect(self._on_filter_clicked)
        self.save_filter_button.clicked.connect(self._on_save_filter_clicked)
        self.objects_view.clicked.connect(self._on_object_clicked)
        self._timer.timeout.connect(self._update)
        for emitter in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            emitter.connect(self._reset_layers)

    # ------------------------------------------------------------------ state

    @property
    def busy(self) -> bool:
        """True while a worker runs."""
        return bool(self._workers)

    @property
    def current(self) -> ShownComparison | None:
        """The comparison shown."""
        return self.comparisons.get(self.comparison_combo.currentText())

    def thresholds(self) -> list[float]:
        """The thresholds typed in the panel; ValueError when they cannot be read."""
        text = self.thresholds_edit.text()
        try:
            values = [stats.check_threshold(t) for t in text.split(",") if t.strip()]
        except ValueError as err:
            raise ValueError(f"thresholds {text!r}: {err}") from None
        if not values:
            raise ValueError("give at least one IoU threshold, e.g. 0.5")
        return values

    def _run(self, func, *args, on_returned, **kwargs):
        """Run ``func`` in a thread worker; ``on_returned(result)`` in the GUI thread,
        unless :meth:`clear` was called meanwhile."""
        generation = self._generation

        def returned(result):
            if generation == self._generation:
                on_returned(result)

        worker = create_worker(func, *args, _start_thread=False, _ignore_errors=True, **kwargs)
        self._workers.add(worker)
        worker.returned.connect(returned)
        worker.errored.connect(self._on_worker_error)
        worker.finished.connect(lambda: self._workers.discard(worker))
        worker.start()
        return worker

    # ------------------------------------------------------------------ comparisons

    def show_comparison(self, a, b, *, label: str, voxel_size=None, unit: str = "pixel",
                        iou_threshold: float = 0.1, copy: bool = True, table=None,
                        groups=None, boundary: bool | None = None):
        """Compute and show the statistics of ``b`` against ``a`` (A the reference).

        Parameters
        ----------
        a, b : ndarray of int, shape (y, x) or (z, y, x)
        label : str
            Name in the comparison list; a comparison of that name is replaced.
        voxel_size : sequence of float, optional
            For the report's physical morphology.
        unit : str
            Unit of ``voxel_size``.
        iou_threshold : float in (0, 1]
            IoU that links objects into review groups (for the group counts
            and the IoU histogram), as in the review.
        copy : bool
            Copy the arrays first (default), so that a mask that changes while
            the worker runs (the curated output) is read as it was.
        table, groups : optional
            Their overlap table and review groups, when already made. When
            ``a`` and ``b`` are the inputs of :attr:`review`, the review's.
        boundary : bool, optional
            Measure the boundary metrics (slow); by default for A vs B only.

        Returns
        -------
        The thread worker (already started).
        """
        if not (is_lazy(a) and is_lazy(b)):  # lazy (larger than memory): never read whole
            a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            raise ValueError(f"{label}: masks differ in shape, {a.shape} vs {b.shape}")
        for name, arr in (("a", a), ("b", b)):
            if arr.dtype.kind not in "biu" or arr.ndim not in (2, 3):
                raise ValueError(f"{label}: {name} must be 2D or 3D integer labels, got "
                                 f"{arr.dtype} of shape {arr.shape}")
        review = self.review.session if self.review is not None else None
        if table is None and review is not None and a is review.a and b is review.b:
            table, groups = review.table, review.groups  # the review paired them already
        else:
            review = None
        if copy and not is_lazy(a):
            a, b = a.copy(), b.copy()
        thresholds = self._thresholds_or_default()
        self.message.setText(f"Computing {label}…")
        return self._run(_compute, a, b, label=label, thresholds=thresholds,
                         iou_threshold=iou_threshold, voxel_size=voxel_size, unit=unit,
                         table=table, groups=groups, boundary=boundary, review=review,
                         on_returned=self._on_comparison_ready)

    def set_note(self, text: str) -> None:
        """One line under the summary about what the tab does not show (hidden when empty)."""
        self.note.setText(text)
        self.note.setVisible(bool(text))

    # ------------------------------------------------------------------ what to describe

    def describe_review(self, review, *, locked=()) -> None:
        """Describe ``review`` (a :class:`..review.Review`), from now on, as it changes.

        Its A vs B reuses its pairing, and its curated output is compared with
        A and with B after each change; a click on one of its objects moves
        the review to its group while it is open. ``locked``: the layers of
        its inputs, never filtered while it runs (:attr:`locked_layers`).
        """
        self.locked_layers = tuple(layer for layer in locked if layer is not None)
        self._listener.attach(review)
        self.review, self._layers = review, None
        self._stale = {"inputs", "curated"}
        self.clear()
        self.set_note("")
        self._update()

    def describe_layers(self, mask_a, mask_b, *, iou_threshold: float) -> None:
        """No review: describe A vs B of these Labels layers (None: nothing), soon."""
        self._listener.detach()
        self.review, self._layers = None, (mask_a, mask_b, float(iou_threshold))
        self._stale = {"layers"}
        self._timer.start()  # both layers may change at once

    def describe_nothing(self) -> None:
        """Compute nothing new (a review is being opened): what is shown stays."""
        self._listener.detach()
        self.review, self._layers = None, None
        self._stale = set()

    def _on_review_change(self, change) -> None:
        if change.decided:
            self._stale.add("curated")
            self._timer.start()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        """The tab is looked at: what it lacks is computed now."""
        super().showEvent(event)
        self._update()

    def _update(self) -> None:
        """Compute what is out of date, if the tab shows and no worker runs (else later)."""
        if not self._stale or not self.isVisible():
            return
        if self.busy:
            self._timer.start()
        elif "layers" in self._stale:
            self._compare_layers()
        else:
            self._compare_review()

    def _compare_layers(self) -> None:
        """A vs B of the chosen mask layers (checked and copied in the worker)."""
        self._stale.clear()
        self.clear()
        a, b, iou_threshold = self._layers
        if a is not None and b is not None:
            self.compare(partial(load_from_layers, None, a, b), label=INPUTS_LABEL,
                         iou_threshold=iou_threshold)

    def _compare_review(self) -> None:
        """The review's stale comparisons: A vs B, the curated output vs A and vs B."""
        review, stale = self.review, self._stale
        self._stale = set()
        session = review.session
        options = dict(voxel_size=review.voxel_size or None, unit=review.unit,
                       iou_threshold=review.iou_threshold, copy=False)
        if session.chunked:  # from the review's table; no voxel is read
            options["boundary"] = False
        if "inputs" in stale:
            self.show_comparison(session.a, session.b, label=INPUTS_LABEL, **options)
        if session.chunked:
            self.set_note(LARGER_THAN_MEMORY)
            return
        if "curated" in stale and (session.objects or "curated vs A" in self.comparisons):
            with session.lock:
                curated = session.output.copy()
            self.show_comparison(session.a, curated, label="curated vs A", **options)
            self.show_comparison(session.b, curated, label="curated vs B", **options)

    def clear(self) -> None:
        """Forget every comparison (a new review starts), and those still computed."""
        self._generation += 1
        self.comparisons.clear()
        self.comparison_combo.clear()
        self.export_button.setEnabled(False)
        self._refresh()

    def compare(self, load, *, label: str, iou_threshold: float = 0.1):
        """:meth:`show_comparison` of the masks that ``load()`` returns, read in the worker.

        Parameters
        ----------
        load : callable
            Returns an :class:`..read.MaskPair`; its :class:`..errors.InputError`
            (bad masks) is shown as the panel's message.
        label : str
        iou_threshold : float in (0, 1]

        Returns
        -------
        The thread worker (already started).
        """
        self.message.setText(f"Computing {label}…")
        return self._run(_load_and_compute, load, label=label,
                         thresholds=self._thresholds_or_default(),
                         iou_threshold=iou_threshold, on_returned=self._on_comparison_ready)

    def _thresholds_or_default(self) -> list[float]:
        try:
            return self.thresholds()
        except ValueError:
            return list(stats.DEFAULT_THRESHOLDS)

    def _on_comparison_ready(self, comparison: ShownComparison) -> None:
        """A new comparison is shown; an update of one not shown does not pull the list."""
        self.comparisons[comparison.label] = comparison
        self.export_button.setEnabled(True)
        if self.comparison_combo.findText(comparison.label) < 0:
            self.comparison_combo.addItem(comparison.label)
            self.comparison_combo.setCurrentText(comparison.label)
        if self.comparison_combo.currentText() == comparison.label:
            self._refresh()
            self.message.setText(f"{comparison.label}: done.")
        elif self.message.text().startswith("Computing"):
            self.message.setText("")  # the message speaks of the comparison shown

    def _on_comparison_selected(self, label: str) -> None:
        if self.message.text().endswith(": done."):
            self.message.setText("")
        self._refresh()

    def _on_thresholds_edited(self) -> None:
        try:
            thresholds = self.thresholds()
        except ValueError as err:
            self.message.setText(str(err))
            return
        for comparison in list(self.comparisons.values()):
            if [r["thresh"] for r in comparison.summary["matching"]] != thresholds:
                self._run(_rematch, comparison, thresholds, on_returned=self._on_rematched)

    def _on_rematched(self, comparison: ShownComparison) -> None:
        self.comparisons[comparison.label] = comparison
        if comparison is self.current:
            self._refresh()

    def _refresh(self) -> None:
        """Show the current comparison in the table, the summary line and the plots."""
        comparison = self.current
        self.figure.clear()
        self.taxonomy_figure.clear()
        if comparison is None:
            self.table.setRowCount(0)
            self.summary_label.setText("No comparison yet.")
            self.suite_label.setText("")
            self.objects.set_objects(None)
            self.canvas.draw_idle()
            self.taxonomy_canvas.draw_idle()
            return
        matching = comparison.summary["matching"]
        self.table.setRowCount(len(matching))
        for row, result in enumerate(matching):
            for col, (_, key, fmt) in enumerate(COLUMNS):
                self.table.setItem(row, col, QTableWidgetItem(fmt.format(result[key])))
        pixel, groups = comparison.summary["pixel"], comparison.summary["groups"]
        self.summary_label.setText(
            f"{comparison.label}: pixel Dice {pixel['dice']:.3f}, IoU {pixel['iou']:.3f}; "
            f"AP (DSB 2018) {comparison.summary['ap_dsb2018']:.3f}; groups: "
            + ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in groups.items()))
        left, right = self.figure.subplots(1, 2)
        plots.plot_scores(left, matching)
        plots.plot_iou_histogram(right, comparison.ious)
        self.canvas.draw_idle()
        self.suite_label.setText("\n".join(suite_lines(comparison.summary)))
        plots.plot_taxonomy(self.taxonomy_figure.subplots(), comparison.summary["taxonomy"],
                             title=f"Errors of {comparison.label}")
        self.taxonomy_canvas.draw_idle()
        self.objects.set_objects(comparison.objects)
        self.objects_view.resizeColumnsToContents()  # Qt reads the first 1000 rows

    def _on_object_clicked(self, index) -> None:
        """Go to the review group of the object clicked (the running review's A vs B)."""
        comparison = self.current
        if comparison is None or not index.isValid():
            return
        row = index.row()
        name = f"{self.objects.value(row, 'side').upper()} {self.objects.value(row, 'id')}"
        group = self.objects.group(row)
        review = self.review
        session = comparison.review
        if session is None or review is None or session is not review.session \
                or review.closed:
            self.message.setText(f"{name}: group {group} of {comparison.label}; only the "
                                 "objects of a running review's A vs B lead to its groups.")
        elif session.place(group) is None:
            self.message.setText(f"{name}: its group {group} ({session.groups[group].kind}) "
                                 "is not in the queue; tick its kind in the Review tab.")
        else:
            self.message.setText(f"{name}: group {group}.")
            review.go_to(group)
            self.object_chosen.emit(group)

    # ------------------------------------------------------------------ report

    def _on_export_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Report folder")
        if folder:
            self.export_report(folder)

    def export_report(self, folder):
        """Write the report of the current comparison into ``folder`` (in a worker)."""
        comparison = self.current
        if comparison is None:
            self.message.setText("Nothing to export: no comparison yet.")
            return None
        self.message.setText(f"Writing the report into {folder}…")
        return self._run(
            report.write_report, Path(folder), comparison.a, comparison.b,
            voxel_size=comparison.voxel_size, unit=comparison.unit,
            thresholds=[r["thresh"] for r in comparison.summary["matching"]],
            iou_threshold=comparison.iou_threshold, sources={"comparison": comparison.label},
            on_returned=lambda files: self.message.setText(
                f"Report written: {len(files)} files in {folder}."),
        )

    # ------------------------------------------------------------------ filter

    def _reset_layers(self, event=None) -> None:
        current = self.layer_combo.currentText()
        blocked = self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        names = [layer.name for layer in self.viewer.layers if isinstance(layer, Labels)]
        self.layer_combo.addItems(names)
        if current in names:
            self.layer_combo.setCurrentText(current)
        self.layer_combo.blockSignals(blocked)
        if self.layer_combo.currentText() != current:
            self._on_filter_layer_chosen(self.layer_combo.currentText())

    def _on_filter_layer_chosen(self, name: str) -> None:
        """Offer the default filter of the layer's dimensions (a rule typed by hand stays)."""
        if name not in self.viewer.layers or self.rules_edit.text() not in DEFAULT_RULES.values():
            return
        self.rules_edit.setText(default_rules(self.viewer.layers[name].ndim))

    def _on_filter_clicked(self) -> None:
        name = self.layer_combo.currentText()
        if name not in self.viewer.layers:
            self.message.setText("Choose a Labels layer to filter.")
            return
        try:
            rules = measure.parse_rules(self.rules_edit.text())
        except ValueError as err:
            self.message.setText(str(err))
            return
        self.apply_filter(self.viewer.layers[name], rules)

    def apply_filter(self, layer: Labels, rules):
        """Remove from ``layer`` the objects that a rule marks (napari undo restores them).

        Parameters
        ----------
        layer : napari.layers.Labels
        rules : sequence of rules
            See :func:`..measure.evaluate_filter`.
        """
        if any(layer is locked for locked in self.locked_layers) or (
                is_review_layer(layer) and not layer.editable):
            self.message.setText(f"{layer.name}: is an input of the running review; end the "
                                 "review (Q) before filtering it")
            return None
        data = np.asarray(layer.data)
        try:  # refuse unknown properties now, not in the worker
            measure.evaluate_filter(
                {name: np.empty(0) for name in measure.property_names(data.ndim)}, rules)
        except (ValueError, TypeError) as err:
            self.message.setText(str(err))
            return None
        self.message.setText(f"Filtering {layer.name}…")
        return self._run(filter_changes, data.copy(), rules,
                         voxel_size=tuple(layer.scale[-data.ndim:]),
                         on_returned=lambda out: self._on_filtered(layer, *out))

    def _on_filtered(self, layer: Labels, indices, result: measure.FilterResult) -> None:
        if len(indices[0]):
            layer.data_setitem(indices, 0)
        self.last_filter = result
        self.save_filter_button.setEnabled(True)
        self.message.setText(f"{layer.name}: removed {int(result.removed.sum())} of "
                             f"{len(result.label)} objects.")
        if len(indices[0]):
            self.filtered.emit(layer)

    def _on_save_filter_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the filter list", "filter.csv",
                                              "CSV (*.csv)")
        if path and self.last_filter is not None:
            report.write_csv(path, self.last_filter.rows())
            self.message.setText(f"Saved {path}.")

    # ------------------------------------------------------------------ errors

    def _on_worker_error(self, err: Exception) -> None:
        self.message.setText(f"Error: {err}")


def _rematch(comparison: ShownComparison, thresholds) -> ShownComparison:
    """The comparison with its matching statistics at other thresholds (in a worker)."""
    summary = {**comparison.summary,  # the metric suite does not depend on them
               "matching": stats.matching_stats(comparison.table, thresholds=thresholds)}
    return replace(comparison, summary=summary)
