"""The Review tab: the setup page or the review panel, a progress bar, the message line.

Setup (inputs, parameters, Start) shows until a review runs, then the panel.
Both are pages of one stack, and the progress bar keeps its room when hidden:
switching changes no size, so the canvas is not resized (and repainted) on the way.
"""

from __future__ import annotations

from qtpy.QtWidgets import QProgressBar, QStackedWidget, QVBoxLayout, QWidget

from ._message import MessageLine
from ._panel import ReviewPanel
from ._setup import SetupPage

__all__ = ["ReviewTab"]


class ReviewTab(QWidget):
    """The setup page and the review panel in one stack, the progress bar, the message line.

    Parameters
    ----------
    viewer : napari.Viewer

    Attributes
    ----------
    setup : SetupPage
    panel : ReviewPanel
    progress : QProgressBar
    message : MessageLine
    """

    def __init__(self, viewer, parent=None):
        super().__init__(parent)
        self.setup = SetupPage(viewer)
        self.panel = ReviewPanel()
        self.pages = QStackedWidget()
        self.pages.addWidget(self.setup)
        self.pages.addWidget(self.panel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        policy = self.progress.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.progress.setSizePolicy(policy)
        self.progress.setVisible(False)
        self.message = MessageLine()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        for part in (self.pages, self.progress, self.message):
            layout.addWidget(part)
        layout.addStretch(1)

    def show_state(self, *, running: bool, busy: bool) -> None:
        """The panel while a review runs (with the file row in folder mode), else setup;
        the progress bar while a review opens."""
        self.panel.set_running(running)
        if not running:
            self.panel.show_idle()
        self.setup.start_button.setEnabled(not busy)
        self.progress.setVisible(busy)
        if not busy:
            self.progress.setRange(0, 0)  # busy, without a count, next time
        self.pages.setCurrentWidget(self.panel if running else self.setup)
        folders = running and self.setup.folders
        self.panel.file_row.setVisible(folders)
        if folders:
            self.panel.show_file(*self.setup.file_position())

    def show_progress(self, done: int, total: int) -> None:
        """The blocks paired so far (the bar is busy, without a count, otherwise)."""
        self.progress.setRange(0, total)
        self.progress.setValue(done)
