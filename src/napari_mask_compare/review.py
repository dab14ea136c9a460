"""An open review: one owner of its state on disk.

:class:`Review` holds the review's lock (one writer per output), its journal
and its :class:`.session.Session`. Every action is prepared (checked against
the state), journaled (written and flushed), and only then applied; if the
journal cannot be written the state stays exactly as it was and the caller
gets a :class:`._files.WriteError`. After each action the listeners get one
:class:`.session.Change`. The output TIFF is rewritten in the background,
coalescing actions, from a shadow copy updated under the session's lock; the
journal line is fsynced by another background thread.

Files beside the output ``cells.tif``: ``cells.journal.jsonl`` (the journal),
``cells.summary.json`` (written on close), ``cells.lock`` and
``cells.owner.json`` (who holds the review), ``cells_classes.tif`` (with
class channels).

No Qt, no napari.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np

from . import _files
from ._files import check_writable
from .io import InputError, write_label_files
from .journal import Journal, fingerprint, journal_path
from .labels import relabel_sequential
from .matching import Group
from .session import Change, Session, edit_op

__all__ = ["Review", "ReviewLock"]


class ReviewLock:
    """The OS lock that makes one process the writer of a review.

    ``<out>.lock`` is locked with :mod:`filelock` (``flock``: the kernel
    releases it when its process dies, so a dead holder's lock is simply taken
    over); ``<out>.owner.json`` says who holds it, for the refusal message.

    Parameters
    ----------
    output : path
        The review's output TIFF.
    """

    def __init__(self, output: str | os.PathLike):
        import filelock

        self.output = Path(output)
        self.path = _files.sidecar(output, ".lock")
        self.owner_path = _files.sidecar(output, ".owner.json")
        # not thread-local: the widget opens a review in a worker and closes it in the GUI thread
        self._lock = filelock.FileLock(self.path, timeout=0, thread_local=False)
        self.previous_owner: dict | None = None

    def acquire(self) -> ReviewLock:
        """Take the lock or raise :class:`InputError` naming the holder."""
        import filelock

        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise InputError(self._held_message()) from None
        except OSError as err:
            raise InputError(f"{self.path}: cannot lock the review ({err.strerror})") from err
        self.previous_owner = self._read_owner()
        if self.previous_owner is None and (self.owner_path.exists()
                                            or self.owner_path.is_symlink()):
            self._lock.release()
            raise InputError(f"{self.owner_path}: exists and is not a review's owner record; "
                             "move it away (it is never overwritten)")
        owner = {"pid": os.getpid(), "host": socket.gethostname(),
                 "since": datetime.now().astimezone().isoformat(timespec="seconds")}
        try:
            _files.atomic_write_bytes(self.owner_path, (json.dumps(owner) + "\n").encode())
        except OSError:
            self._lock.release()
            raise
        return self

    def release(self) -> None:
        if self._lock.is_locked:
            self.owner_path.unlink(missing_ok=True)
            self._lock.release()

    def _read_owner(self) -> dict | None:
        try:
            owner = json.loads(self.owner_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(owner, dict) or not {"pid", "host", "since"} <= set(owner):
            return None
        return owner

    def _held_message(self) -> str:
        owner = self._read_owner() or {}
        who = (f"process {owner.get('pid', '?')} on {owner.get('host', '?')} since "
               f"{owner.get('since', '?')}") if owner else "another process"
        return (f"{self.output}: this review is open in {who}; close it there first "
                "(one window per review)")


class Review:
    """An open review of two masks that saves itself to ``output``.

    Use :meth:`open`. Actions: :meth:`decide`, :meth:`pick`, :meth:`edit`, :meth:`undo`,
    :meth:`finish`; :meth:`close` at the end (or use it as a context manager).

    Attributes
    ----------
    session : Session
        The state in memory (read it; change it only through this object).
    output : Path
    journal : Journal
    notes : list of str
        What opening found and repaired (a torn journal tail, stale files).
    """

    def __init__(self, session: Session, journal: Journal, lock: ReviewLock, output: Path, *,
                 voxel_size=None, unit: str = "pixel", notes=()):
        self.session = session
        self.journal = journal
        self.output = Path(output)
        self.notes = list(notes)
        self._lock = lock
        self._listeners: list[Callable[[Change], None]] = []
        self._saver = _Autosaver(self, voxel_size=voxel_size, unit=unit)
        self.closed = False

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        a: np.ndarray,
        b: np.ndarray,
        *,
        output: str | os.PathLike,
        iou_threshold: float = 0.1,
        inputs: dict | None = None,
        groups: list[Group] | None = None,
        classes_a=None,
        classes_b=None,
        voxel_size=None,
        unit: str = "pixel",
    ) -> Review:
        """Open a review, resuming it where it stopped if ``output`` has a journal.

        Parameters
        ----------
        a, b : ndarray of int, shape (y, x) or (z, y, x)
        output : path
            The curated mask's TIFF; its journal and lock lie beside it.
        iou_threshold : float
        inputs : dict, optional
            Names of the inputs for messages, e.g. ``{"mask_a": "a.tif", "mask_b": "b.tif"}``.
        groups : list of Group, optional
            The review groups of ``a`` and ``b`` when already computed.

        Raises
        ------
        InputError
            The review is open elsewhere; the folder holds a review of other
            inputs or parameters, a damaged journal, or a file that is not a
            review's; or it cannot be written.
        """
        output = check_writable(output)
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(f"{output.parent}: cannot create the folder ({err.strerror})") \
                from err
        lock = ReviewLock(output).acquire()
        try:
            return cls._open_locked(
                a, b, lock=lock, output=output, iou_threshold=iou_threshold, inputs=inputs,
                groups=groups, classes_a=classes_a, classes_b=classes_b,
                voxel_size=voxel_size, unit=unit)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _open_locked(cls, a, b, *, lock, output, iou_threshold, inputs, groups, classes_a,
                     classes_b, voxel_size, unit) -> Review:
        notes = []
        if lock.previous_owner:
            notes.append(f"took over from process {lock.previous_owner.get('pid')}, which "
                         "is no longer running")
        stale = _files.remove_stale_temps(output.parent)
        if stale:
            notes.append(f"removed {len(stale)} temporary file(s) left by a killed process")
        names = {"mask_a": "mask A", "mask_b": "mask B", **(inputs or {})}
        header = {
            "inputs": {
                "mask_a": {"name": str(names["mask_a"]), "fingerprint": fingerprint(a)},
                "mask_b": {"name": str(names["mask_b"]), "fingerprint": fingerprint(b)},
            },
            "params": {"iou_threshold": float(iou_threshold)},
        }
        path = journal_path(output)
        journal = None
        if path.exists() or path.is_symlink():
            journal = Journal.read(path)
            _check_same_review(journal, header)
        else:
            _check_new_review(output, path)
        if groups is None:
            session = Session.from_masks(a, b, iou_threshold=iou_threshold,
                                         classes_a=classes_a, classes_b=classes_b)
        else:
            session = Session(a, b, groups, classes_a=classes_a, classes_b=classes_b)
        if journal is None:
            journal = Journal.create(path, header)
        else:
            _replay(session, journal)
            cut = journal.repair()
            if cut:
                notes.append(f"cut an incomplete last line ({cut} bytes) from {path.name}: "
                             "the action being written when it stopped was not applied")
        review = cls(session, journal, lock, output, voxel_size=voxel_size, unit=unit,
                     notes=notes)
        review._saver.schedule()
        return review

    # ------------------------------------------------------------------ listeners

    def add_listener(self, callback: Callable[[Change], None]) -> None:
        """Call ``callback(change)`` after every action."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[Change], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    # ------------------------------------------------------------------ actions

    def decide(self, choice: str, *, group: int | None = None) -> Change:
        """Decide the current group (or ``group``): "A", "B", "M" or "N"."""
        return self.act({"op": "decide", "choice": choice, "group": group})

    def pick(self, side: str, label: int, *, group: int | None = None) -> Change:
        """Toggle object ``label`` of ``side`` ("A" or "B") of the current group (or ``group``)."""
        return self.act({"op": "pick", "side": side, "id": label, "group": group})

    def edit(self, pieces) -> Change:
        """Voxels set by hand: ``pieces`` of (region, mask, value) (:func:`.session.edit_op`)."""
        return self.act(edit_op(pieces))

    def undo(self) -> Change:
        """Take back the last action, whatever it was."""
        return self.act({"op": "undo"})

    def finish(self) -> Change:
        """Add every undecided unpaired group (Auto)."""
        return self.act({"op": "finish"})

    def act(self, op: dict) -> Change:
        """Prepare, journal, then apply one action; tell the listeners.

        Raises
        ------
        ValueError
            The action cannot be taken now (nothing changed).
        WriteError
            The journal could not be written (nothing changed).
        """
        if self.closed:
            raise ValueError("the review is closed")
        op = self.session.prepare(op)
        self.journal.append(op)
        change = self.session.apply(op)
        self._saver.saved_action(change.regions)
        for callback in list(self._listeners):
            callback(change)
        return change

    # ------------------------------------------------------------------ saving

    @property
    def save_error(self) -> OSError | None:
        """The last background save's error, None once a save succeeded again."""
        return self._saver.error

    @property
    def writes(self) -> int:
        """Output files written so far (saves coalesce actions)."""
        return self._saver.writes

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the journal is fsynced and the TIFF holds every action so far.

        Returns
        -------
        bool
            False if ``timeout`` ran out first.

        Raises
        ------
        OSError
            The last save failed.
        """
        return self._saver.flush(timeout)

    def close(self) -> dict:
        """Save, write the summary, stop the threads and release the lock.

        Returns
        -------
        dict
            The session summary.

        Raises
        ------
        OSError
            Saving failed (the journal is whole: reopening rebuilds the output).
        """
        if self.closed:
            return self.session.summary()
        self.closed = True
        summary = self.session.summary()
        try:
            self._saver.close()
            _files.atomic_write_bytes(_files.sidecar(self.output, ".summary.json"),
                                      (json.dumps(summary, indent=2) + "\n").encode())
        finally:
            self._lock.release()
        return summary

    def __enter__(self) -> Review:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Autosaver:
    """Background threads of a review: journal fsync, output TIFF rewrite (coalesced).

    The TIFF is written from a shadow copy of the output updated only in the
    changed regions, under the session's lock, so that the file always holds
    whole actions and saving never blocks the review. With edits in force the
    ids are compacted to 1..n on the way.
    """

    def __init__(self, review: Review, *, voxel_size=None, unit: str = "pixel"):
        self.review = review
        self.voxel_size = voxel_size
        self.unit = unit
        self.writes = 0
        self.error: OSError | None = None
        session = review.session
        self._shadow = session.output.copy()
        self._pending: list[tuple[slice, ...]] = []
        self._dirty = self._writing = self._unsynced = self._syncing = self._closed = False
        self._wake = threading.Condition()
        self._threads = [
            threading.Thread(target=target, name=f"mask-compare-{name}", daemon=True)
            for target, name in ((self._run, "autosave"), (self._sync_journal, "journal-sync"))
        ]
        for thread in self._threads:
            thread.start()

    def saved_action(self, regions) -> None:
        """An action was journaled and applied: fsync its line, rewrite the TIFF."""
        with self._wake:
            self._unsynced = True
            self._wake.notify_all()
        self.schedule(regions)

    def schedule(self, regions=None) -> None:
        """Ask for the TIFF to be rewritten (``regions`` of the output changed; all if None)."""
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
                self.review.journal.sync()
            except OSError as err:  # reported by flush()
                self.error = err
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
                session = self.review.session
                with session.lock:
                    if self._shadow.dtype != session.output.dtype:
                        self._shadow = self._shadow.astype(session.output.dtype)
                    for region in regions:
                        self._shadow[region] = session.output[region]
                    classes = session.class_map()
                    compact = session.edited
                self._write(classes, compact=compact)
                self.error = None
            except OSError as err:  # reported by flush(); the journal is whole
                self.error = err
            except Exception as err:  # a bug: still never silent
                self.error = _files.WriteError(0, f"{self.review.output}: not saved ({err!r})")
            with self._wake:
                self._writing = False
                self.writes += 1
                self._wake.notify_all()

    def _write(self, classes, *, compact: bool) -> None:
        """The output TIFF (and its classes beside it, replaced together)."""
        output = self.review.output
        files = {output: relabel_sequential(self._shadow) if compact else self._shadow}
        if classes is not None:
            files[_files.sidecar(output, "_classes.tif")] = classes
        write_label_files(files, voxel_size=self.voxel_size, unit=self.unit, relabel=False)

    def flush(self, timeout: float | None = None) -> bool:
        with self._wake:
            done = self._wake.wait_for(
                lambda: not (self._dirty or self._writing or self._unsynced or self._syncing),
                timeout)
        if self.error is not None:
            raise self.error
        return done

    def close(self) -> None:
        """Flush, then stop the threads (even when saving failed; the error is raised after)."""
        try:
            self.flush()
        finally:
            with self._wake:
                self._closed = True
                self._wake.notify_all()
            for thread in self._threads:
                thread.join()


def _check_new_review(output: Path, journal: Path) -> None:
    """A new review writes its output and side-cars: none of them may be there already."""
    for path in (output, _files.sidecar(output, ".summary.json"),
                 _files.sidecar(output, "_classes.tif")):
        if path.exists() or path.is_symlink():
            raise InputError(
                f"{path}: exists and is not a review's (no {journal.name} beside it); choose "
                "another output name so that it is not overwritten"
            )


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
    """Replay the journal's operations; an operation that does not fit names its line."""
    line = 1

    def ops():
        nonlocal line
        for line, op in enumerate(journal.ops, start=2):  # noqa: B007 (read by the handler)
            yield op

    try:
        session.replay(ops())
    except ValueError as err:
        raise InputError(f"{journal.path}: line {line} cannot be replayed ({err}); the "
                         "journal belongs to another review, or was changed by hand") from err
