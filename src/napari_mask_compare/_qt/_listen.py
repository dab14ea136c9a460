"""A review's changes, delivered on the GUI thread.

:class:`ReviewListener` listens to one :class:`..review.Review` at a time
(:meth:`ReviewListener.attach`) and calls its callback with every
:class:`..session.Change`: at once when the review was changed on the GUI
thread (a key, a click), queued to the GUI thread when a worker changed it
(Qt's automatic connection between threads). The widget and the Metrics tab
each listen with one.
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import QObject, Signal

__all__ = ["ReviewListener"]


class ReviewListener(QObject):
    """Calls ``callback(change)`` on the GUI thread for each change of the review attached.

    Parameters
    ----------
    callback : callable
        Called with a :class:`..session.Change`.
    """

    _changed = Signal(object)

    def __init__(self, callback: Callable[[object], None], parent=None):
        super().__init__(parent)
        self.review = None
        self._changed.connect(callback)

    def attach(self, review) -> None:
        """Listen to ``review`` (and no longer to the one before)."""
        self.detach()
        self.review = review
        review.add_listener(self._emit)

    def detach(self) -> None:
        if self.review is not None:
            self.review.remove_listener(self._emit)
            self.review = None

    def _emit(self, change) -> None:
        """The review's listener (any thread): the signal takes the change to the GUI thread."""
        self._changed.emit(change)
