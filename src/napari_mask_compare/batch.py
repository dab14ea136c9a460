"""What a batch run (a folder of pairs) has done: one record per pair, so that a rerun skips it.

A record says which inputs (path, size, modification time) gave which output
(the same), with which settings, and the pair's summary. A pair is done when
its record matches: same settings, inputs unchanged, output still there and
unchanged. Anything else (an input edited, the output deleted or touched, a
new policy) runs the pair again. The records file is rewritten whole after
every pair (:func:`._files.atomic_write_bytes`): a killed run keeps every
record it finished.

No Qt, no napari.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ._files import atomic_write_bytes, check_output

__all__ = ["Records", "records_path"]

#: ``generator`` of a records file: what makes it ours.
GENERATOR = "napari-mask-compare"


def records_path(folder: str | os.PathLike, *, command: str) -> Path:
    """The records file of ``command``'s batch runs into ``folder``."""
    return Path(folder) / f"mask-compare-{command}.records.json"


def path_state(path: str | os.PathLike) -> list[int] | None:
    """``[size, mtime_ns]`` of a file; of a folder (a zarr store) its entry count and latest
    mtime over the whole tree; None when ``path`` is missing."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return None
    if not path.is_dir():
        return [stat.st_size, stat.st_mtime_ns]
    count, latest = 0, stat.st_mtime_ns
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            count += 1
            try:
                latest = max(latest, os.stat(os.path.join(root, name)).st_mtime_ns)
            except OSError:
                return None
    return [count, latest]


class Records:
    """The records of one command's batch runs into one folder.

    Parameters
    ----------
    folder : path
        The batch's output folder (created by the first record).
    command : str
        e.g. ``"merge"``.
    settings : dict
        JSON values that decide the outputs (policy, IoU threshold...): a
        record made with other settings does not count as done.

    Raises
    ------
    InputError
        A file of that name exists and is not a records file of ours.
    """

    def __init__(self, folder, *, command: str, settings: dict):
        self.path = records_path(folder, command=command)
        self.command = command
        self.settings = json.loads(json.dumps(settings))  # as they read back
        check_output(self.path, ours=_is_records_file, overwrite=True, option="output folder")
        self._records = _read_records(self.path) if self.path.exists() else {}

    def done(self, name: str, *, inputs, output) -> dict | None:
        """The summary of pair ``name`` when its record matches; else None."""
        record = self._records.get(name)
        if record is None or record["settings"] != self.settings:
            return None
        if record["inputs"] != _states(inputs) or record["output"] != _states([output]):
            return None
        return record["summary"]

    def wrote(self, name: str, *, output) -> bool:
        """True when ``output`` is, unchanged, what a recorded run wrote for pair ``name``
        (a rerun may replace it when the pair is not done)."""
        record = self._records.get(name)
        return record is not None and record["output"] == _states([output]) \
            and path_state(output) is not None

    def add(self, name: str, *, inputs, output, summary: dict) -> None:
        """Record pair ``name`` as done (the file is rewritten whole, atomically)."""
        self._records[name] = {"settings": self.settings, "inputs": _states(inputs),
                               "output": _states([output]), "summary": summary}
        text = json.dumps({"generator": GENERATOR, "command": self.command,
                           "records": self._records}, indent=1)
        atomic_write_bytes(self.path, text.encode())


def _states(paths) -> dict[str, list[int] | None]:
    return {str(path): path_state(path) for path in paths}


def _is_records_file(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def _read_records(path: Path) -> dict:
    from .io import InputError

    try:
        records = json.loads(path.read_text())["records"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{path}: is not a readable records file ({err}); move it away to "
                         "run every pair again") from None
    return records if isinstance(records, dict) else {}
