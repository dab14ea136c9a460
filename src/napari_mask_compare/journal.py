"""Keep a review session on disk: a journal of actions, the output TIFF, resume.

Every session action appends one JSON line to ``<out>.journal.jsonl``
before anything else happens (written and flushed to the operating system, so
that a process that crashes or is killed loses nothing; fsynced at once by a
background thread, so that a power cut loses at most the last milliseconds);
the output TIFF is then rewritten atomically by another background thread,
coalescing actions that come faster than it can write. A crash loses at most
the action in flight, and the TIFF on disk is always a whole file. Reopening
the same inputs with the same output replays the journal; other inputs are
refused.

No Qt, no napari.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .io import InputError, _fsync_path, check_writable, write_labels
from .session import Change, Session

__all__ = ["FORMAT", "Autosaver", "Journal", "fingerprint", "open_review", "journal_path"]

FORMAT = "napari-mask-compare journal"
VERSION = 1


def fingerprint(array: np.ndarray) -> str:
    """A digest of an array's shape and values.

    Integer arrays are hashed in the smallest unsigned dtype that holds
    their values, so that uint16 and uint32 copies of a mask agree (and a
    uint16 mask is hashed without a copy).
    """
    array = np.ascontiguousarray(array)
    if array.dtype.kind in "biu" and array.size:
        top = int(array.max())
        dtype = np.uint16 if top <= 0xFFFF else np.uint32 if top <= 0xFFFFFFFF else np.uint64
        array = array.astype(dtype, copy=False)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(array.shape).encode())
    digest.update(array.data)
    return digest.hexdigest()


def journal_path(output: str | os.PathLike) -> Path:
    """The journal beside an output TIFF: ``cells.tif`` -> ``cells.journal.jsonl``."""
    output = Path(output)
    return output.with_name(output.stem + ".journal.jsonl")


@dataclass
class Journal:
    """An append-only JSON-lines file: a header, then one line per action.

    Attributes
    ----------
    path : Path
    header : dict
        Format, inputs' fingerprints, parameters.
    ops : list of dict
        The actions read back (on open) or appended since.
    """

    path: Path
    header: dict
    ops: list

    @classmethod
    def create(cls, path: Path, header: dict) -> Journal:
        """Start a journal (atomically: it exists whole or not at all)."""
        header = {"format": FORMAT, "version": VERSION,
                  "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **header}
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(header) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return cls(path, header, [])

    @classmethod
    def read(cls, path: Path) -> Journal:
        """Read a journal; an incomplete last line (a crash mid-write) is dropped."""
        raw = path.read_bytes()
        lines = raw.split(b"\n")
        complete, tail = lines[:-1], lines[-1]
        if tail.strip():  # no newline at the end: the line in flight when it stopped
            with open(path, "r+b") as fh:
                fh.truncate(len(raw) - len(tail))
        try:
            header = json.loads(complete[0]) if complete else None
        except ValueError:
            header = None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise InputError(
                f"{path}: not a napari-mask-compare journal; move it away to start over"
            )
        ops = []
        for number, line in enumerate(complete[1:], start=2):
            try:
                ops.append(json.loads(line))
            except ValueError as err:
                raise InputError(f"{path}: line {number} is damaged ({err})") from err
        return cls(path, header, ops)

    def append(self, op: dict, *, sync: bool = True) -> None:
        """Add one action: written and flushed (a killed process loses nothing).

        With ``sync`` (default) it is also fsynced, durable across a power cut,
        before returning; otherwise call :meth:`sync` soon.
        """
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(op) + "\n")
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        self.ops.append(op)

    def sync(self) -> None:
        """fsync what :meth:`append` wrote without ``sync``."""
        _fsync_path(self.path)


class Autosaver:
    """Mirror a session to disk: journal line per action, output TIFF in the background.

    The journal line is written and flushed synchronously (it is small); one
    background thread fsyncs it at once (an fsync can wait tens of ms for
    the TIFF's pages on ext4: not on the caller's time); another writes the
    TIFF from a shadow copy of the output that is updated only in the changed
    regions, under the session's lock, so that the file always holds whole
    decisions and saving never blocks review.

    Parameters
    ----------
    session : Session
    journal : Journal
    output : Path
        The TIFF to keep up to date.
    voxel_size : tuple of float, optional
    unit : str
    """

    def __init__(self, session: Session, journal: Journal, output: Path, *,
                 voxel_size=None, unit: str = "pixel"):
        self.session = session
        self.journal = journal
        self.output = Path(output)
        self.voxel_size = voxel_size
        self.unit = unit
        self.writes = 0
        self.error: BaseException | None = None
        self._shadow = session.output.copy()
        self._pending: list[tuple[slice, ...]] = []
        self._dirty = False
        self._writing = False
        self._unsynced = False
        self._syncing = False
        self._closed = False
        self._wake = threading.Condition()
        self._threads = [
            threading.Thread(target=target, name=f"mask-compare-{name}", daemon=True)
            for target, name in ((self._run, "autosave"), (self._sync_journal, "journal-sync"))
        ]
        for thread in self._threads:
            thread.start()
        session.add_listener(self._on_change)

    def _on_change(self, change: Change) -> None:
        op = dict(change.op)
        if op["op"] == "decide":
            group = self.session.groups[op["group"]]
            op["ids"] = [list(group.ids_a), list(group.ids_b)]
        self.journal.append(op, sync=False)
        with self._wake:
            self._unsynced = True
            self._wake.notify_all()
        self.schedule(change.regions)

    def schedule(self, regions=None) -> None:
        """Ask for the TIFF to be rewritten (``regions`` of the output changed)."""
        with self._wake:
            if regions is None:
                self._pending.append(tuple(slice(None) for _ in self._shadow.shape))
            else:
                self._pending.extend(regions)
            self._dirty = True
            self._wake.notify_all()

    def _sync_journal(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._unsynced or self._closed)
                if not self._unsynced:
                    return
                self._unsynced, self._syncing = False, True
            try:
                self.journal.sync()
            except OSError as err:  # reported by flush()
                self.error = OSError(err.errno, f"the journal could not be synced to disk "
                                                f"({err.strerror})", str(self.journal.path))
            with self._wake:
                self._syncing = False
                self._wake.notify_all()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._dirty and not self._closed:
                    self._wake.wait()
                if not self._dirty and self._closed:
                    return
                regions, self._pending, self._dirty = self._pending, [], False
                self._writing = True
            try:
                with self.session.lock:
                    if self._shadow.dtype != self.session.output.dtype:
                        self._shadow = self._shadow.astype(self.session.output.dtype)
                    for region in regions:
                        self._shadow[region] = self.session.output[region]
                    classes = self.session.class_map()
                self._write(classes)
            except BaseException as err:  # reported by flush(); the journal is still whole
                self.error = err
            with self._wake:
                self._writing = False
                self.writes += 1
                self._wake.notify_all()

    def _write(self, classes) -> None:
        write_labels(self.output, self._shadow, voxel_size=self.voxel_size, unit=self.unit,
                     relabel=False)
        if classes is not None:
            write_labels(self.output.with_name(self.output.stem + "_classes.tif"), classes,
                         voxel_size=self.voxel_size, unit=self.unit, relabel=False)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the journal is fsynced and the TIFF on disk holds every action so far.

        Returns
        -------
        bool
            False if ``timeout`` ran out first.

        Raises
        ------
        OSError
            The last background write or journal fsync failed.
        """
        with self._wake:
            done = self._wake.wait_for(
                lambda: not (self._dirty or self._writing or self._unsynced or self._syncing),
                timeout)
        if self.error is not None:
            raise self.error
        return done

    def close(self) -> None:
        """Flush, stop the threads, write the summary beside the output.

        The threads stop and the summary is written even when saving failed;
        the error is raised after.
        """
        try:
            self.flush()
        finally:
            self.session.remove_listener(self._on_change)
            with self._wake:
                self._closed = True
                self._wake.notify_all()
            for thread in self._threads:
                thread.join()
            self._write_summary()

    def _write_summary(self) -> None:
        summary_path = self.output.with_name(self.output.stem + ".summary.json")
        tmp = summary_path.with_name(f".{summary_path.name}.tmp")
        tmp.write_text(json.dumps(self.session.summary(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, summary_path)


def open_review(
    a: np.ndarray,
    b: np.ndarray,
    *,
    output: str | os.PathLike,
    iou_threshold: float = 0.1,
    inputs: dict | None = None,
    classes_a=None,
    classes_b=None,
    voxel_size=None,
    unit: str = "pixel",
) -> tuple[Session, Autosaver]:
    """Open a review that saves itself to ``output``, resuming it if it was started.

    Parameters
    ----------
    a, b : ndarray of int, shape (y, x) or (z, y, x)
    output : path
        The curated mask's TIFF; its journal lies beside it.
    iou_threshold : float
    inputs : dict, optional
        Names of the inputs for messages, e.g. ``{"mask_a": "a.tif", "mask_b": "b.tif"}``.

    Returns
    -------
    session : Session
        Replayed up to the last recorded action.
    autosaver : Autosaver
        Already listening: every action is saved. ``close()`` it at the end.

    Raises
    ------
    InputError
        The output folder holds a review of other inputs or parameters, or
        cannot be written.
    """
    output = check_writable(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    path = journal_path(output)
    names = {"mask_a": "mask A", "mask_b": "mask B", **(inputs or {})}
    header = {
        "inputs": {
            "mask_a": {"name": str(names["mask_a"]), "fingerprint": fingerprint(a)},
            "mask_b": {"name": str(names["mask_b"]), "fingerprint": fingerprint(b)},
        },
        "params": {"iou_threshold": float(iou_threshold)},
    }
    session = Session.from_masks(a, b, iou_threshold=iou_threshold,
                                 classes_a=classes_a, classes_b=classes_b)
    if path.exists():
        journal = Journal.read(path)
        _check_same_review(journal, header)
        _replay(session, journal)
    elif output.exists():
        raise InputError(
            f"{output}: exists and is not the output of a review (no {path.name} beside it); "
            "choose another output name so that it is not overwritten"
        )
    else:
        journal = Journal.create(path, header)
    saver = Autosaver(session, journal, output, voxel_size=voxel_size, unit=unit)
    saver.schedule()
    return session, saver


def _check_same_review(journal: Journal, header: dict) -> None:
    for key, label in (("mask_a", "mask A"), ("mask_b", "mask B")):
        then = journal.header.get("inputs", {}).get(key, {})
        if then.get("fingerprint") != header["inputs"][key]["fingerprint"]:
            raise InputError(
                f"{journal.path}: this folder holds a review of another {label} "
                f"({then.get('name', '?')}); use another output folder, or move the journal "
                "away to start over"
            )
    then = journal.header.get("params", {})
    if then != header["params"]:
        raise InputError(
            f"{journal.path}: the review here used {then}, not {header['params']}; "
            "resume with the same settings or use another output folder"
        )


def _replay(session: Session, journal: Journal) -> None:
    """Replay the journal in one ``session.replay`` (moving to the first undecided group
    once, not after every line); errors name the line."""
    line = 1

    def checked_ops():
        nonlocal line
        for line, op in enumerate(journal.ops, start=2):  # line: read by the handler below
            if op.get("op") == "decide":
                known = op["group"] < len(session.groups)
                group = session.groups[op["group"]] if known else None
                if group is None or [list(group.ids_a), list(group.ids_b)] != op.get("ids"):
                    raise InputError(
                        f"{journal.path}: line {line} decides a group that these inputs do "
                        "not have; the journal belongs to another review"
                    )
            yield op

    try:
        session.replay(checked_ops())
    except InputError:
        raise
    except ValueError as err:
        raise InputError(f"{journal.path}: line {line} cannot be replayed ({err})") from err
