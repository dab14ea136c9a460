"""The message line under the review panel: one line of news, red for errors."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel, QSizePolicy

from .. import colours

__all__ = ["MessageLine", "one_line"]


class MessageLine(QLabel):
    """A label that says one thing at a time (long paths wrap after their slashes)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setMinimumHeight(3 * self.fontMetrics().height())
        self.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

    def say(self, text: str, *, error: bool = False) -> None:
        """Show ``text`` (red for errors); unchanged text costs nothing (style sheets do)."""
        if error != self.property("error"):
            self.setProperty("error", error)
            self.setStyleSheet(f"color: {colours.ERROR};" if error else "")
        if text != self.text():
            self.setText(text)
            self.setToolTip(text)  # whole, should a long name be cut


def one_line(err) -> str:
    """An error's words on one line (for the message line).

    >>> one_line(OSError("no\\nspace"))
    'no space'
    """
    return " ".join(str(err).split("\n")).strip() or type(err).__name__
