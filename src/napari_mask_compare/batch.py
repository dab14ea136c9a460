"""What a batch run (a folder of pairs) has done: one record per pair, so that a rerun skips it.

A record says which inputs (path, size, modification time) gave which output
(the same), with which settings, and the pair's summary. A pair is done when
its record matches: same settings, inputs unchanged, output still there and
unchanged. Anything else (an input edited, the output deleted or touched, a
new policy) runs the pair again. Each pair's record is its own small file in
``<out>/mask-compare-<command>.records/``, written atomically by the task that
made the output (:func:`._files.atomic_write_bytes`): tasks on several workers
never share a file, and a killed run keeps every record it finished.

An output and its record cannot appear in one rename, so the record is
written twice: before the output is renamed into place, the record gets a
``pending`` entry naming the new output's bytes (a SHA-256 digest,
:meth:`Records.pending`; what the record said before is kept); once the
output is in place, the whole record. A run killed in between leaves an
output whose bytes the pending entry names: the rerun knows it as ours
(:meth:`Records.wrote`) and merges the pair again over it. An output whose
bytes no record names is never taken for ours.

No Qt, no napari.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ._files import atomic_write_bytes, check_output

__all__ = ["Records", "output_digest", "records_path"]

#: ``generator`` of a records file: what makes it ours.
GENERATOR = "napari-mask-compare"


def records_path(folder: str | os.PathLike, *, command: str) -> Path:
    """The folder of the records of ``command``'s batch runs into ``folder``."""
    return Path(folder) / f"mask-compare-{command}.records"


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
        The batch's output folder.
    command : str
        e.g. ``"merge"``.
    settings : dict
        JSON values that decide the outputs (policy, IoU threshold...): a
        record made with other settings does not count as done.

    Notes
    -----
    Picklable: a task on a dask worker records its own pair.
    """

    def __init__(self, folder, *, command: str, settings: dict):
        self.folder = records_path(folder, command=command)
        self.command = command
        self.settings = json.loads(json.dumps(settings))  # as they read back

    def path(self, name: str) -> Path:
        """The record file of pair ``name``."""
        return self.folder / f"{name}.json"

    def check(self, names) -> None:
        """Refuse, before anything runs, record names held by files that are not ours.

        Raises
        ------
        InputError
            One line naming the file.
        """
        for name in names:
            check_output(self.path(name), ours=_is_record, overwrite=True,
                         option="output folder")

    def done(self, name: str, *, inputs, output) -> dict | None:
        """The summary of pair ``name`` when its record matches; else None."""
        record = self._read(name)
        if record is None or record.get("settings") != self.settings:
            return None
        if record.get("inputs") != _states(inputs) or record.get("output") != _states([output]):
            return None
        return record.get("summary")

    def wrote(self, name: str, *, output) -> bool:
        """True when ``output`` is, unchanged, what a recorded run wrote for pair ``name``,
        or the output whose bytes its pending entry names (a run killed before it recorded
        the pair): a rerun may replace it when the pair is not done."""
        record = self._read(name)
        if record is None or path_state(output) is None:
            return False
        if record.get("output") == _states([output]):
            return True
        pending = record.get("pending")
        return (isinstance(pending, dict) and str(output) in pending
                and pending[str(output)] == output_digest(output))

    def pending(self, name: str, *, outputs: dict) -> None:
        """Note in pair ``name``'s record the digests of the files about to be renamed into
        place (``outputs``: ``{target: temporary}``, as :func:`._files.staged` gives them)."""
        record = self._read(name) or {"generator": GENERATOR, "command": self.command}
        record["pending"] = {str(target): output_digest(temporary)
                             for target, temporary in outputs.items()}
        atomic_write_bytes(self.path(name), json.dumps(record, indent=1).encode())

    def add(self, name: str, *, inputs, output, summary: dict) -> None:
        """Record pair ``name`` as done (its record file written atomically)."""
        record = {"generator": GENERATOR, "command": self.command, "settings": self.settings,
                  "inputs": _states(inputs), "output": _states([output]), "summary": summary}
        atomic_write_bytes(self.path(name), json.dumps(record, indent=1).encode())

    def _read(self, name: str) -> dict | None:
        try:
            record = json.loads(self.path(name).read_text())
        except (OSError, ValueError):  # none yet, or torn by hand: the pair runs again
            return None
        return record if isinstance(record, dict) and record.get("generator") == GENERATOR \
            else None


def output_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes; of a folder (a zarr store), of every file in it, in
    sorted order, each with its path relative to the folder."""
    digest = hashlib.sha256()
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if file != path:
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def _states(paths) -> dict[str, list[int] | None]:
    return {str(path): path_state(path) for path in paths}


def _is_record(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False
