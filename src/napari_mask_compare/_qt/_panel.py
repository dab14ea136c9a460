"""The review panel: the group, the counts, the action buttons, the queue options.

:class:`ReviewPanel` shows what :mod:`.._text` formats (the same words as the
canvas caption and the terminal) in labels of fixed height, so that the
buttons below never move from one group to the next; its buttons come from
the table of actions (:mod:`..actions`). Narrow by design: the dock leaves
the canvas at least 60% of a 1366 px wide window. The widget wires it.

:func:`confirm_leaving_undecided` is the question asked before Finish or
another file leaves paired groups undecided.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QEvent, Qt
from qtpy.QtGui import QTextDocument
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from .._text import (
    COUNT_LINES,
    GROUP_LINES,
    KIND_LABELS,
    describe_counts,
    describe_group,
)
from ..actions import ACTIONS, key_text
from ..pairing import KINDS
from ..view_settings import ViewSettings

__all__ = ["ORDERS", "ReviewPanel", "confirm_leaving_undecided"]

#: Queue orders: (session name, text of the combo box).
ORDERS = (("spatial", "spatial"), ("iou", "lowest IoU first"))
#: The buttons, row by row (names of :data:`..actions.ACTIONS`).
_BUTTON_ROWS = (("A", "B", "M", "N"), ("undo", "previous", "next"), ("quit", "finish"))
#: What becomes of the undecided unpaired groups (said once, always shown).
_UNPAIRED_NOTE = ("Undecided unpaired (only A / only B) objects: Finish adds them (Auto), "
                  "as the original tool did at the end; Q leaves them out.")


class ReviewPanel(QWidget):
    """Group text, counts, buttons and queue options of a running review.

    Attributes
    ----------
    buttons : dict of str to QPushButton
        One per action of :data:`..actions.ACTIONS` that has a button.
    kind_boxes : dict of str to QCheckBox
    order_combo : QComboBox
    overlay_box : QCheckBox
    disagreement_box : QCheckBox
        Colour by disagreement (its key and words from :data:`..actions.ACTIONS`).
    previous_file_button, next_file_button : QPushButton
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self._build()

    # ------------------------------------------------------------------ building

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(4)
        layout.addWidget(self._build_file_row())
        self.group_label = _fixed_label(GROUP_LINES, rich=True)
        self.counts_label = _fixed_label(COUNT_LINES)
        self.note_label = QLabel(_UNPAIRED_NOTE)
        self.note_label.setWordWrap(True)
        self.note_label.setEnabled(False)  # drawn dim: a standing note, not news
        _elastic(self.note_label)
        layout.addWidget(self.group_label)
        layout.addWidget(self.counts_label)
        layout.addWidget(self.note_label)
        layout.addLayout(self._build_buttons())
        layout.addLayout(self._build_options())

    def _build_file_row(self) -> QWidget:
        self.file_row = QWidget()
        files = QHBoxLayout(self.file_row)
        files.setContentsMargins(0, 0, 0, 0)
        self.previous_file_button = QPushButton("◀")
        self.next_file_button = QPushButton("▶")
        self.previous_file_button.setToolTip("previous file (this one is saved)")
        self.next_file_button.setToolTip("next file (this one is saved)")
        self.file_label = QLabel()
        _elastic(self.file_label)
        for button in (self.previous_file_button, self.next_file_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setMaximumWidth(32)
        files.addWidget(self.previous_file_button)
        files.addWidget(self.file_label, 1)
        files.addWidget(self.next_file_button)
        return self.file_row

    def _build_buttons(self) -> QGridLayout:
        """A button per action, from the table of actions (text, keys and help)."""
        actions = {action.name: action for action in ACTIONS}
        grid = QGridLayout()
        grid.setSpacing(3)
        self.buttons: dict[str, QPushButton] = {}
        columns = 12  # rows of 4, 3 and 2 buttons share the width evenly
        for row, names in enumerate(_BUTTON_ROWS):
            span = columns // len(names)
            for k, name in enumerate(names):
                action = actions[name]
                button = QPushButton(action.button.replace("&", "&&"))
                keys = " or ".join(key_text(key) for key in action.keys)
                button.setToolTip(f"{action.help}" + (f" (key {keys})" if keys else ""))
                button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the canvas
                button.setMinimumWidth(10)
                button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
                self.buttons[name] = button
                grid.addWidget(button, row, k * span, 1, span)
        return grid

    def _build_options(self) -> QFormLayout:
        options = QFormLayout()
        options.setContentsMargins(0, 0, 0, 0)
        options.setHorizontalSpacing(4)
        self.order_combo = QComboBox()
        for _, label in ORDERS:
            self.order_combo.addItem(label)
        self.order_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.order_combo.setMinimumContentsLength(4)
        self.order_combo.setMinimumWidth(50)
        options.addRow("order", self.order_combo)
        kinds = QGridLayout()
        kinds.setHorizontalSpacing(4)
        kinds.setVerticalSpacing(0)
        self.kind_boxes: dict[str, QCheckBox] = {}
        for i, kind in enumerate(KINDS):
            box = QCheckBox(KIND_LABELS[kind])
            box.setChecked(True)
            box.setToolTip("review the groups of this kind (the queue skips the others)")
            self.kind_boxes[kind] = box
            kinds.addWidget(box, i // 2, i % 2)
        options.addRow(QLabel("kinds shown"))
        options.addRow(kinds)
        self.overlay_box = QCheckBox("overlay view")
        self.overlay_box.setToolTip("one image with A and B as red and green contours, "
                                    "instead of three panels side by side")
        options.addRow(self.overlay_box)
        action = next(action for action in ACTIONS if action.name == "disagreement")
        keys = " or ".join(key_text(key) for key in action.keys)
        self.disagreement_box = QCheckBox(f"colour by IoU ({keys})")
        self.disagreement_box.setToolTip(f"{action.help} (key {keys})")
        _elastic(self.disagreement_box)  # the dock stays narrow
        options.addRow(self.disagreement_box)
        return options

    # ------------------------------------------------------------------ showing

    def show_review(self, session) -> None:
        """Show the current group and the counts of ``session``."""
        group = session.current
        self.group_label.setText(describe_group(group, session=session))
        self.group_label.setToolTip(describe_group(group, session=session, full=True)
                                    if group is not None else "")
        counts = describe_counts(session.summary())
        self.counts_label.setText(counts)
        self.counts_label.setToolTip(counts)  # whole, should a line be cut

    def show_idle(self) -> None:
        """No review runs."""
        self.group_label.setText("<i>No review running.</i>")
        self.group_label.setToolTip("")
        self.counts_label.setText("")

    def set_running(self, running: bool) -> None:
        for button in self.buttons.values():
            button.setEnabled(running)

    def show_file(self, row: int, count: int, name: str) -> None:
        """Folder mode: "file 2 of 5: name" between the previous and next file buttons."""
        self.file_label.setText(f"file {row + 1} of {count}: {name}")
        self.file_label.setToolTip(name)
        self.previous_file_button.setEnabled(row > 0)
        self.next_file_button.setEnabled(row + 1 < count)

    # ------------------------------------------------------------------ options

    def order(self) -> str:
        """The queue order chosen ("spatial" or "iou")."""
        return ORDERS[self.order_combo.currentIndex()][0]

    def kinds(self) -> list[str]:
        """The kinds of group shown."""
        return [kind for kind, box in self.kind_boxes.items() if box.isChecked()]

    def view_settings(self) -> ViewSettings:
        """Order, kinds, overlay and colour by disagreement, as the controls say."""
        return ViewSettings(order=self.order(), kinds=tuple(self.kinds()),
                            overlay=self.overlay_box.isChecked(),
                            disagreement=self.disagreement_box.isChecked())

    def set_view_settings(self, settings: ViewSettings) -> None:
        """Show ``settings`` in the controls, without their signals (nothing is asked)."""
        controls = [self.order_combo, self.overlay_box, self.disagreement_box,
                    *self.kind_boxes.values()]
        blocked = [control.blockSignals(True) for control in controls]
        try:
            self.order_combo.setCurrentIndex([name for name, _ in ORDERS].index(settings.order))
            for kind, box in self.kind_boxes.items():
                box.setChecked(kind in settings.kinds)
            self.overlay_box.setChecked(settings.overlay)
            self.disagreement_box.setChecked(settings.disagreement)
        finally:
            for control, was in zip(controls, blocked):
                control.blockSignals(was)


class _LinesLabel(QLabel):
    """A label exactly ``lines`` lines high, whatever it says; it never widens the dock.

    The height follows the font (napari's style sheet sets it after the label
    is made): long lines are cut, not wrapped, so nothing below moves.
    """

    def __init__(self, lines: int, *, rich: bool = False, parent=None):
        super().__init__(parent)
        self.lines = int(lines)
        self.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
        self.setWordWrap(False)
        self.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        _elastic(self)
        self._fit()

    def _fit(self) -> None:
        """Height of ``lines`` lines as Qt lays text out in this font (line spacing included)."""
        document = QTextDocument()
        document.setDocumentMargin(0)
        document.setDefaultFont(self.font())
        document.setHtml("<br>".join(["<b>Xg</b>"] * self.lines))
        margins = self.contentsMargins()
        self.setFixedHeight(int(np.ceil(document.size().height())) + margins.top()
                            + margins.bottom() + 2)

    def event(self, event) -> bool:
        handled = super().event(event)
        if event.type() in (QEvent.Type.Polish, QEvent.Type.FontChange,
                            QEvent.Type.StyleChange, QEvent.Type.Show):
            self._fit()
        return handled


def _fixed_label(lines: int, *, rich: bool = False) -> QLabel:
    """A label of exactly ``lines`` lines that never widens the dock (long lines are cut)."""
    return _LinesLabel(lines, rich=rich)


def _elastic(widget: QWidget) -> None:
    """The widget takes the width it is given and asks for none."""
    widget.setSizePolicy(QSizePolicy.Policy.Ignored, widget.sizePolicy().verticalPolicy())
    widget.setMinimumWidth(0)


_CHOICES = {
    "finish": ("Finish anyway",
               "Finish adds the undecided unpaired objects and saves. The undecided paired "
               "groups stay out of the curated mask (U undoes the Finish; starting the review "
               "again resumes it)."),
    "file": ("Go to the file",
             "This file's review is saved; its undecided paired groups stay out of its "
             "curated mask until you come back to it."),
}


def confirm_leaving_undecided(parent, *, paired: int, action: str) -> tuple[bool, bool]:
    """Ask before an action leaves paired groups undecided.

    Parameters
    ----------
    parent : QWidget
    paired : int
        Paired groups undecided.
    action : {"finish", "file"}
        What leaves them: Finish, or a move to another file.

    Returns
    -------
    go_on : bool
        True to go on, False to keep reviewing.
    dont_ask : bool
        "don't ask again for this review" was ticked.
    """
    go_text, text = _CHOICES[action]
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Mask compare")
    box.setText(f"{paired} paired group(s) are still undecided.")
    box.setInformativeText(text)
    go = box.addButton(go_text, QMessageBox.ButtonRole.AcceptRole)
    stay = box.addButton("Keep reviewing", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(stay)
    box.setEscapeButton(stay)
    dont_ask = QCheckBox("don't ask again for this review")
    box.setCheckBox(dont_ask)
    box.exec()
    return box.clickedButton() is go, dont_ask.isChecked()
