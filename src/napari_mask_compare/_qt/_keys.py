"""Review key bindings that win over napari's own while a review runs, wherever the focus is.

Two paths, one table of keys (:func:`..actions.key_table`):

- **The canvas** (:class:`ReviewKeys`). napari resolves a key through the
  active layer's instance keymap, then that layer's class keymaps (a Labels
  layer binds 1-7, B, M... to its tools), then the viewer's instance and
  class keymaps. A binding on the viewer alone never fires for ``1`` while a
  Labels layer is selected (checked on napari 0.9.2). So the review keys go
  into the *instance* keymap of the viewer and of every layer, including
  layers added during the review; class keymaps are left alone, so other
  viewers are not touched. Whatever those instance keymaps held before is put
  back by :meth:`ReviewKeys.unbind`. The layers' help text (napari's status
  bar: "use <1> for activate the label eraser") says the review keys instead,
  and napari's own comes back after.
- **The rest of the window** (:class:`WindowKeys`). A checkbox or a combo box
  of the dock keeps the focus after a click and eats the arrow keys (a
  checkbox moves the focus with them), so the canvas never hears them. A
  window-wide :class:`QShortcut` per key does the action instead; the
  shortcuts are off while the canvas has the focus (the keymaps above serve
  it) and while a text field has it (typing a 1 in a field types a 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from napari.utils.key_bindings import coerce_keybinding
from qtpy.QtCore import QObject, Qt
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QShortcut,
    QTextEdit,
)

from ..actions import key_table

__all__ = ["REVIEW_KEYS", "ReviewKeys", "WindowKeys"]

#: Key -> action name of the review (the original tool's keys, and slice steps).
REVIEW_KEYS: dict[str, str] = key_table()

_MISSING = object()


class ReviewKeys:
    """Bind the review keys on a viewer and all its layers; restore on unbind.

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
    actions : mapping of str to callable
        Action name (the values of ``keys``) -> function of no argument.
    keys : mapping of str to str, optional
        Key -> action name; :data:`REVIEW_KEYS` by default.
    hint : str, optional
        Help text of every layer while the keys are taken (napari shows the
        active layer's in its status bar); napari's own comes back on unbind.

    Examples
    --------
    >>> from napari.components import ViewerModel
    >>> viewer = ViewerModel()
    >>> hits = []
    >>> keys = ReviewKeys(viewer, {"A": lambda: hits.append("A")}, keys={"1": "A"})
    >>> keys.bind()
    >>> viewer.keymap[coerce_keybinding("1")](viewer)
    >>> keys.unbind()
    >>> hits, dict(viewer.keymap)
    (['A'], {})
    """

    def __init__(self, viewer, actions: Mapping[str, Callable[[], object]], *,
                 keys: Mapping[str, str] | None = None, hint: str | None = None):
        self.viewer = viewer
        keys = REVIEW_KEYS if keys is None else keys
        self._bindings = {
            coerce_keybinding(key): _handler(actions[name], name)
            for key, name in keys.items() if name in actions
        }
        self.hint = hint
        self._saved: dict[int, tuple[object, dict]] = {}  # id(provider) -> (provider, old)
        self.bound = False

    def bind(self) -> None:
        """Take over the keys on the viewer and on every current and future layer."""
        if self.bound:
            return
        self._take(self.viewer)
        for layer in self.viewer.layers:
            self._take(layer)
        self.viewer.layers.events.inserted.connect(self._on_layer_inserted)
        self.bound = True
        self._show_help()

    def unbind(self) -> None:
        """Give the keys back: every instance keymap gets its previous bindings."""
        if not self.bound:
            return
        self.viewer.layers.events.inserted.disconnect(self._on_layer_inserted)
        for provider, old in self._saved.values():
            self._give_back(provider, old)
        self._saved.clear()
        self.bound = False
        self._show_help()

    def _on_layer_inserted(self, event) -> None:
        self._take(event.value)

    def _take(self, provider) -> None:
        if id(provider) in self._saved:
            return
        keymap = provider.keymap
        old = {key: keymap.get(key, _MISSING) for key in self._bindings}
        keymap.update(self._bindings)
        self._saved[id(provider)] = (provider, old)
        if self.hint is not None and provider is not self.viewer:
            provider.help = self.hint
            if hasattr(provider.events, "mode"):  # napari rewrites the help on a mode change
                provider.events.mode.connect(self._on_layer_mode, position="last")

    def _on_layer_mode(self, event) -> None:
        """napari wrote its help for the layer's new mode: the review's goes back."""
        event.source.help = self.hint
        self._show_help()

    def _show_help(self) -> None:
        """The status bar shows the active layer's help (napari updates it on hover only)."""
        active = self.viewer.layers.selection.active
        if active is not None and hasattr(self.viewer, "help"):
            self.viewer.help = active.help

    def _give_back(self, provider, old: dict) -> None:
        if self.hint is not None and provider is not self.viewer:
            if hasattr(provider.events, "mode"):
                provider.events.mode.disconnect(self._on_layer_mode)
            _napari_help(provider)
        keymap = provider.keymap
        for key, func in old.items():
            if keymap.get(key) is not self._bindings[key]:
                continue  # rebound by someone else since: theirs now
            if func is _MISSING:
                del keymap[key]
            else:
                keymap[key] = func


def _handler(action: Callable[[], object], name: str):
    """A keymap function: napari calls it with the provider (layer or viewer)."""

    def review_key(provider):
        action()

    review_key.__name__ = f"mask_compare_{name}"
    review_key.__qualname__ = review_key.__name__
    return review_key


def _napari_help(layer) -> None:
    """Give a layer napari's own help text for its mode back."""
    from napari.components import ViewerModel

    restore = getattr(ViewerModel, "_layer_help_from_mode", None)
    if restore is not None:
        restore(layer)


class WindowKeys(QObject):
    """The review keys on the whole window, for when the canvas has not the focus.

    One :class:`QShortcut` per key, in the window's context (a floating dock
    counts as part of its window). They are enabled only while the focus is
    outside the canvas (there :class:`ReviewKeys` serves the keys, with
    napari's keymaps) and outside text fields (line edits, spin boxes, text
    edits, editable combo boxes), so that typing is typing.

    Parameters
    ----------
    window : QWidget
        napari's main window.
    canvas : QWidget or None
        The canvas widget (its focus is the keymaps' business).
    actions : mapping of str to callable
        Action name -> function of no argument.
    keys : mapping of str to str, optional
        Key (napari name) -> action name; :data:`REVIEW_KEYS` by default.
    """

    def __init__(self, window, canvas, actions: Mapping[str, Callable[[], object]], *,
                 keys: Mapping[str, str] | None = None, parent=None):
        super().__init__(parent)
        self.window = window
        self.canvas = canvas
        keys = REVIEW_KEYS if keys is None else keys
        self._keys = {key: actions[name] for key, name in keys.items() if name in actions}
        self._shortcuts: list[QShortcut] = []
        self.bound = False

    def bind(self) -> None:
        """Make the shortcuts (enabled according to the current focus)."""
        if self.bound or self.window is None:
            return
        for key, action in self._keys.items():
            shortcut = QShortcut(QKeySequence(key), self.window)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.setAutoRepeat(key in ("Left", "Right", "Up", "Down", ",", "."))
            shortcut.activated.connect(action)
            self._shortcuts.append(shortcut)
        QApplication.instance().focusChanged.connect(self._on_focus_changed)
        self.bound = True
        self._update(QApplication.focusWidget())

    def unbind(self) -> None:
        """Remove the shortcuts, and let go of the window (it may be closing)."""
        if self.bound:
            QApplication.instance().focusChanged.disconnect(self._on_focus_changed)
            for shortcut in self._shortcuts:
                shortcut.setEnabled(False)
                shortcut.setParent(None)
                shortcut.deleteLater()
            self._shortcuts.clear()
            self.bound = False
        self.window = self.canvas = None

    @property
    def enabled(self) -> bool:
        """True while the shortcuts answer (the focus is neither the canvas nor a text field)."""
        return any(shortcut.isEnabled() for shortcut in self._shortcuts)

    def _on_focus_changed(self, old, new) -> None:
        self._update(new)

    def _update(self, focus) -> None:
        enabled = not (self._in_canvas(focus) or is_text_field(focus))
        for shortcut in self._shortcuts:
            shortcut.setEnabled(enabled)

    def _in_canvas(self, widget) -> bool:
        canvas = self.canvas
        return widget is not None and canvas is not None and (
            widget is canvas or canvas.isAncestorOf(widget))


def is_text_field(widget) -> bool:
    """True for a widget that takes typed text (where review keys must not act)."""
    if isinstance(widget, QComboBox):
        return widget.isEditable()
    return isinstance(widget, (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit))
