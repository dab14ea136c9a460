"""How a review was looked at (queue order, kinds shown, overlay view), kept beside its output.

``<out>.view.json`` is written atomically (:func:`.._files.atomic_write_bytes`)
whenever one of these settings changes during a review, and read when the
review is resumed, so that it opens as it was left. It holds view settings
only: the review's state is its journal. A file of that name that is not
ours is neither read nor replaced.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import _files

__all__ = ["read_view_settings", "settings_path", "write_view_settings"]

#: Key that marks the file as ours (and its format version).
_MARK = "napari_mask_compare_view"


def settings_path(output) -> Path:
    """``cells.view.json`` beside ``cells.tif``.

    >>> settings_path("out/cells.tif").as_posix()
    'out/cells.view.json'
    """
    return _files.sidecar(output, ".view.json")


def read_view_settings(output) -> dict:
    """The settings saved beside ``output``; empty when there are none (or not ours)."""
    try:
        data = json.loads(settings_path(output).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get(_MARK) != 1:
        return {}
    return {key: value for key, value in data.items() if key != _MARK}


def write_view_settings(output, settings: dict) -> bool:
    """Save ``settings`` beside ``output``.

    Returns
    -------
    bool
        False when nothing was written: the file is not ours, or writing failed
        (view settings are a convenience: the review goes on either way).
    """
    path = settings_path(output)
    if (path.exists() or path.is_symlink()) and not read_view_settings(output) \
            and not _is_empty_ours(path):
        return False
    data = (json.dumps({_MARK: 1, **settings}, indent=1) + "\n").encode()
    try:
        _files.atomic_write_bytes(path, data)
    except OSError:
        return False
    return True


def _is_empty_ours(path: Path) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")) == {_MARK: 1}
    except (OSError, ValueError):
        return False
