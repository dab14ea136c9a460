"""How a review is looked at, kept beside its output: queue order, kinds shown, view, position.

``<out>.view.json`` holds a :class:`ViewSettings`: the queue order, the kinds
of group shown, the overlay view, colour by disagreement and the group the
reviewer was on. :class:`.review.Review` writes it atomically
(:func:`._files.atomic_write_bytes`) whenever a setting changes and when the
review closes, and reads it when the review is resumed, so that the review
opens as it was left, on the group where the reviewer was. None of it is the
review's state (that is the journal): nothing here is journaled or undone,
and a file that cannot be written costs only the convenience. A file of that
name that is not ours is neither read nor replaced. Files written before the
position was kept (no ``"group"``) still read.

No Qt, no napari.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from . import _files
from .pairing import KINDS
from .session import ORDERS

__all__ = ["ViewSettings", "read_view_settings", "settings_path", "write_view_settings"]

#: Key that marks the file as ours (and its format version).
_MARK = "napari_mask_compare_view"


@dataclass(frozen=True)
class ViewSettings:
    """How a review is looked at (not journaled, not undone).

    Attributes
    ----------
    order : str
        Queue order, one of :data:`.session.ORDERS`.
    kinds : tuple of str
        Kinds of group in the queue (in :data:`.pairing.KINDS` order).
    overlay : bool
        One image with A and B as contours, instead of panels side by side.
    disagreement : bool
        Every object coloured by its best IoU.
    group : int or None
        Index of the current group (where the reviewer was); None when unknown.
    actions : int or None
        Actions in the journal when ``group`` was saved: the position holds
        for that journal only (after a kill that lost the last save of this
        file, the review resumes on its first undecided group, as without one).
    """

    order: str = "spatial"
    kinds: tuple[str, ...] = KINDS
    overlay: bool = False
    disagreement: bool = False
    group: int | None = None
    actions: int | None = None

    @classmethod
    def from_dict(cls, data: dict) -> ViewSettings:
        """Settings from a dict as saved; values of the wrong type or unknown are left default.

        >>> ViewSettings.from_dict({"order": "iou", "kinds": ["match", "fly"], "group": -3})
        ViewSettings(order='iou', kinds=('match',), overlay=False, disagreement=False, \
group=None, actions=None)
        """
        kinds = data.get("kinds")
        return cls(
            order=data["order"] if data.get("order") in ORDERS else "spatial",
            kinds=tuple(k for k in KINDS if k in kinds) if isinstance(kinds, list) else KINDS,
            overlay=data["overlay"] if isinstance(data.get("overlay"), bool) else False,
            disagreement=(data["disagreement"] if isinstance(data.get("disagreement"), bool)
                          else False),
            group=_count(data.get("group")),
            actions=_count(data.get("actions")),
        )

    def to_dict(self) -> dict:
        """As saved: lists, not tuples (JSON)."""
        return {**asdict(self), "kinds": list(self.kinds)}


def _count(value) -> int | None:
    """An index or a count as saved (an int >= 0), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 \
        else None


def settings_path(output) -> Path:
    """``cells.view.json`` beside ``cells.tif``.

    >>> settings_path("out/cells.tif").as_posix()
    'out/cells.view.json'
    """
    return _files.sidecar(output, ".view.json")


def read_view_settings(output) -> ViewSettings | None:
    """The settings saved beside ``output``; None when there are none (or not ours)."""
    data = _read_ours(settings_path(output))
    return ViewSettings.from_dict(data) if data else None


def write_view_settings(output, settings: ViewSettings) -> bool:
    """Save ``settings`` beside ``output``.

    Returns
    -------
    bool
        False when nothing was written: the file is not ours, or writing failed
        (view settings are a convenience: the review goes on either way).
    """
    path = settings_path(output)
    if (path.exists() or path.is_symlink()) and _read_ours(path) is None:
        return False
    data = (json.dumps({_MARK: 1, **settings.to_dict()}, indent=1) + "\n").encode()
    try:
        _files.atomic_write_bytes(path, data)
    except OSError:
        return False
    return True


def _read_ours(path: Path) -> dict | None:
    """The settings of a file of ours (without its mark), None for any other file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get(_MARK) != 1:
        return None
    return {key: value for key, value in data.items() if key != _MARK}
