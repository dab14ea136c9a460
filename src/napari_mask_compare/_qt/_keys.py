"""Review key bindings that win over napari's own while a review runs.

napari resolves a key through the active layer's instance keymap, then that
layer's class keymaps (a Labels layer binds 1-7, B, M... to its tools), then
the viewer's instance and class keymaps. A binding on the viewer alone never
fires for ``1`` while a Labels layer is selected (checked on napari 0.9.2).
So the review keys go into the *instance* keymap of the viewer and of every
layer, including layers added during the review; class keymaps are left
alone, so other viewers are not touched. Whatever those instance keymaps held
before is put back by :meth:`ReviewKeys.unbind`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from napari.utils.key_bindings import coerce_keybinding

__all__ = ["REVIEW_KEYS", "ReviewKeys"]

#: Key -> action name of the review (the original tool's keys).
REVIEW_KEYS: dict[str, str] = {
    "1": "A", "A": "A",
    "2": "B", "B": "B",
    "3": "M", "M": "M",
    "4": "N", "N": "N",
    "U": "undo",
    "Left": "previous",
    "Right": "next",
    "Q": "quit",
}

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
                 keys: Mapping[str, str] | None = None):
        self.viewer = viewer
        keys = REVIEW_KEYS if keys is None else keys
        self._bindings = {
            coerce_keybinding(key): _handler(actions[name], name)
            for key, name in keys.items() if name in actions
        }
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

    def unbind(self) -> None:
        """Give the keys back: every instance keymap gets its previous bindings."""
        if not self.bound:
            return
        self.viewer.layers.events.inserted.disconnect(self._on_layer_inserted)
        for provider, old in self._saved.values():
            self._give_back(provider, old)
        self._saved.clear()
        self.bound = False

    def _on_layer_inserted(self, event) -> None:
        self._take(event.value)

    def _take(self, provider) -> None:
        if id(provider) in self._saved:
            return
        keymap = provider.keymap
        old = {key: keymap.get(key, _MISSING) for key in self._bindings}
        keymap.update(self._bindings)
        self._saved[id(provider)] = (provider, old)

    def _give_back(self, provider, old: dict) -> None:
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
