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
class channels), ``cells.view.json`` (how it is looked at and where the
reviewer was: :mod:`.view_settings`).

Every change, journaled or not (a move to another group, the queue order),
goes through :class:`Review`, and its listeners get one
:class:`.session.Change` that says all of it: the widget redraws from that
alone, whoever drove the review.

A volume larger than memory is reviewed into ``cells.zarr``, an OME-Zarr
labels image (``labels/curated``, created by :mod:`.ome_zarr_out`), uint32 from the
start (a chunked store cannot change its dtype cheaply, and hand edits add
ids beyond any count the overlap table gives). A, B (zarr or dask) are read
region by region; each action changes only the chunks its region touches, in
a cache that the autosave thread writes back (the journal line is written and
flushed first, as for a TIFF). While the review runs the saved ids are the
session's ids: in action order, with gaps where an edit or an unpick erased an
object; :meth:`Review.close` compacts them to 1..n chunk by chunk (written
chunks only) and rebuilds the lower resolution levels. Opening again always
rebuilds the store from the journal: its chunk files are deleted (no pass
over the volume) and the journal is replayed, each operation touching its
region only; so whatever a kill left (chunks ahead of, behind or between
actions), the store ends as the journal says. The overlap table is cached in
``cells.table.npz``, keyed by the inputs' fingerprints
(:func:`.journal.fingerprint`: for chunked inputs, their files' names, sizes
and mtimes, never their values), and reused when they match.

No Qt, no napari.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np

from . import _files, ome_zarr_out
from ._files import check_writable
from ._text import QUEUE_DECIDED
from .errors import InputError
from .journal import Journal, bulk_op, default_axes, fingerprint, journal_path
from .journal import header as journal_header
from .labels import relabel_sequential
from .pairing import KINDS, Group, OverlapTable, overlap_table, review_groups
from .read import write_label_files
from .regions import ZARR_METADATA, chunk_keys, compact_chunks
from .session import Change, Session, edit_op
from .view_settings import ViewSettings, read_view_settings, write_view_settings

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

    Use :meth:`open`. Actions (journaled, undone by :meth:`undo`): :meth:`decide`,
    :meth:`pick`, :meth:`edit`, :meth:`undo`, :meth:`finish`, :meth:`bulk`. Moves and
    settings (not journaled, kept in ``<out>.view.json``, see
    :mod:`.view_settings`): :meth:`go_to`, :meth:`next`, :meth:`previous`,
    :meth:`set_order`, :meth:`set_kinds`, :meth:`set_view`. Each of them
    tells every listener (:meth:`add_listener`) what changed in one
    :class:`.session.Change`, in the thread that called it. :meth:`close` at
    the end (or use it as a context manager).

    Attributes
    ----------
    session : Session
        The state in memory (read it; change it only through this object).
    output : Path
    journal : Journal
    notes : list of str
        What opening found and repaired (a torn journal tail, stale files).
    resumed : bool
        The review existed (its journal was replayed).
    voxel_size : tuple of float or None
    unit : str
    """

    def __init__(self, session: Session, journal: Journal, lock: ReviewLock, output: Path, *,
                 voxel_size=None, unit: str = "pixel", notes=(), resumed: bool = False,
                 view: ViewSettings | None = None):
        self.session = session
        self.journal = journal
        self.output = Path(output)
        self.notes = list(notes)
        self.resumed = resumed
        self.voxel_size = voxel_size
        self.unit = unit
        self._lock = lock
        self._listeners: list[Callable[[Change], None]] = []
        self._look = view or ViewSettings()  # overlay and colour by disagreement
        self._saver = _Autosaver(self, voxel_size=voxel_size, unit=unit)
        self.closed = False
        self._closing = False  # close() began: no more actions (see close)
        self._compacted = False  # a chunked output's ids compacted by close()

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
        table: OverlapTable | None = None,
        chunks: tuple[int, ...] | None = None,
        view: ViewSettings | None = None,
    ) -> Review:
        """Open a review, resuming it where it stopped if ``output`` has a journal.

        A resumed review opens as it was left: the queue order, the kinds
        shown, the view and the group the reviewer was on (when it is in the
        queue, decided or not) come from ``<out>.view.json``.

        Parameters
        ----------
        a, b : ndarray, zarr.Array or dask.array.Array of int, shape (y, x) or (z, y, x)
            Chunked arrays are read region by region (for a ``.zarr`` output).
        output : path
            The curated mask's TIFF, or its OME-Zarr (a name ending in
            ``.zarr``: for volumes larger than memory); its journal and lock
            lie beside it.
        iou_threshold : float
        inputs : dict, optional
            Names of the inputs for messages, e.g. ``{"mask_a": "a.tif", "mask_b": "b.tif"}``;
            for chunked inputs, the paths they were read from (their fingerprint).
        groups : list of Group, optional
            The review groups of ``a`` and ``b`` when already computed.
        table : OverlapTable, optional
            The overlap table of ``a`` and ``b`` when already computed.
        chunks : tuple of int, optional
            Chunk shape of a new ``.zarr`` output; A's chunks by default.
        view : ViewSettings, optional
            Order, kinds and view when none are saved beside the output (e.g.
            those of the previous image of a folder); its group is not used.

        Raises
        ------
        InputError
            The review is open elsewhere; the folder holds a review of other
            inputs or parameters, a damaged journal, or a file that is not a
            review's; or it cannot be written.
        """
        output = _check_output_name(output)
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(f"{output.parent}: cannot create the folder ({err.strerror})") \
                from err
        lock = ReviewLock(output).acquire()
        try:
            review = cls._open_locked(
                a, b, lock=lock, output=output, iou_threshold=iou_threshold, inputs=inputs,
                groups=groups, classes_a=classes_a, classes_b=classes_b,
                voxel_size=voxel_size, unit=unit, table=table, chunks=chunks)
            review._restore_view(view)
            return review
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _open_locked(cls, a, b, *, lock, output, iou_threshold, inputs, groups, classes_a,
                     classes_b, voxel_size, unit, table, chunks) -> Review:
        if _is_zarr(output):
            return cls._open_chunked(
                a, b, lock=lock, output=output, iou_threshold=iou_threshold, inputs=inputs,
                groups=groups, classes_a=classes_a, classes_b=classes_b,
                voxel_size=voxel_size, unit=unit, table=table, chunks=chunks)
        notes = _opening_notes(lock, output)
        header = _header(a, b, inputs=inputs, iou_threshold=iou_threshold)
        path, journal = _existing_journal(output, header)
        if groups is None and table is not None:
            groups = review_groups(table, iou_threshold=iou_threshold)
        if groups is None:
            session = Session.from_masks(a, b, iou_threshold=iou_threshold,
                                         classes_a=classes_a, classes_b=classes_b)
        else:
            session = Session(a, b, groups, classes_a=classes_a, classes_b=classes_b,
                              table=table)
        resumed = journal is not None
        if resumed:
            _resume(session, journal, notes=notes)
        else:
            journal = Journal.create(path, header)
        return cls._started(session, journal, lock, output, voxel_size=voxel_size, unit=unit,
                            notes=notes, resumed=resumed)

    @classmethod
    def _open_chunked(cls, a, b, *, lock, output, iou_threshold, inputs, groups, classes_a,
                      classes_b, voxel_size, unit, table, chunks) -> Review:
        """Open or resume a review into an OME-Zarr labels store (see the module's notes)."""
        notes = _opening_notes(lock, output)
        header = _header(a, b, inputs=inputs, iou_threshold=iou_threshold)
        path, journal = _existing_journal(output, header,
                                          adopt_output=ome_zarr_out.is_adoptable(output))
        key = _table_key(header)
        if table is None and groups is None:
            table = _cached_table(output, a, b, key=key, notes=notes)
        elif table is not None:
            _save_table(_table_path(output), table, key=key)
        if groups is None:
            groups = review_groups(table, iou_threshold=iou_threshold)
        new = journal is None
        if new:  # the store first (it appears whole): a journal is never without its store
            array = ome_zarr_out.new_review_store(output, a, chunks=chunks,
                                                  voxel_size=voxel_size, unit=unit)
            journal = Journal.create(path, header)
        else:
            array = ome_zarr_out.reopen_review_store(output, a)
        session = Session(a, b, groups, classes_a=classes_a, classes_b=classes_b, table=table,
                          output=array)
        if not new:
            _rebuild_from_journal(output, array, session, journal, notes=notes)
        return cls._started(session, journal, lock, output, voxel_size=voxel_size, unit=unit,
                            notes=notes, resumed=not new)

    @classmethod
    def _started(cls, session, journal, lock, output, **options) -> Review:
        """The open review, its first save scheduled."""
        review = cls(session, journal, lock, output, **options)
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

    def bulk(self, groups: dict, *, rule: str) -> Change:
        """Decide many groups in one action (a rule): one journal line, one U undoes it.

        Parameters
        ----------
        groups : dict of str to iterable of int
            Choice ("A", "B", "M", "N") -> the group indices it decides. Groups
            already decided are left out (a rule never touches them).
        rule : str
            The rule's text, as the reviewer wrote it (journaled with it).

        Raises
        ------
        ValueError
            No undecided group is left to decide (nothing changed).
        """
        choice_of = self.session.choice_of
        undecided = {choice: [g for g in map(int, indices) if choice_of(g) is None]
                     for choice, indices in groups.items()}
        if not any(undecided.values()):
            raise ValueError(f"{rule}: decides no undecided group")
        return self.act(bulk_op(undecided, rule=rule))

    def act(self, op: dict) -> Change:
        """Prepare, journal, then apply one action; tell the listeners.

        Journal first: a kill at any moment loses at most this action. An
        action that fails while it is applied (it reads a chunk of an input
        that cannot be read: a chunk damaged after the overlap table was made)
        leaves the session as it was (:meth:`.Session.apply`) and its line is
        taken back out of the journal: neither holds it. (Reading what an
        action needs before journaling it would read a rule's or Finish's
        thousands of groups twice, or hold them all in memory.)

        Raises
        ------
        ValueError
            The action cannot be taken now (nothing changed).
        InputError
            A chunk it reads cannot be read (nothing changed).
        WriteError
            The journal could not be written (nothing changed).
        """
        self._check_open()
        op = self.session.prepare(op)
        if not self.journal.holds(op):  # an older journal: made version 2 first, lines kept
            self.journal.upgrade(axes=default_axes(len(self.session.output.shape)))
        self.journal.append(op)
        try:
            change = self.session.apply(op)
        except BaseException:  # e.g. a chunk of an input that cannot be read: the session
            self.journal.take_back_last()  # took back what it changed; so does the journal
            raise
        self._saver.saved_action(change.regions)
        return self._tell(replace(change, message=self._message_after(change),
                                  save_error=self.save_error))

    def _message_after(self, change: Change) -> str:
        """What to say after an action: that nothing is left to decide, or nothing."""
        current = change.current
        if change.op["op"] in ("decide", "bulk") and current is not None \
                and self.session.choice_of(current) is not None:
            return QUEUE_DECIDED  # a decision moves on to an undecided group: none is left
        return ""

    def _tell(self, change: Change) -> Change:
        for callback in list(self._listeners):
            callback(change)
        return change

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("the review is closed")
        if self._closing:
            raise ValueError("the review is being closed and its save failed; close it "
                             "again once there is space")

    # ------------------------------------------------------------------ moves and settings

    def go_to(self, group: int) -> Change:
        """Make group index ``group`` current (it must be in the queue: ValueError otherwise)."""
        return self._move({"op": "go_to", "group": int(group)},
                          lambda: self.session.go_to(group), message=None)

    def next(self) -> Change:
        """Move to the next group of the queue without deciding (wraps around)."""
        return self._move({"op": "next"}, self.session.next)

    def previous(self) -> Change:
        """Move to the previous group of the queue without deciding (wraps around)."""
        return self._move({"op": "previous"}, self.session.previous)

    def set_order(self, order: str) -> Change:
        """Review in ``"spatial"`` order or ``"iou"`` (lowest IoU first); saved with the view."""
        return self._move({"op": "order", "order": order},
                          lambda: self.session.set_order(order), message=None, save=True)

    def set_kinds(self, kinds) -> Change:
        """Review only the groups of these kinds (all when None); saved with the view."""
        kinds = list(KINDS if kinds is None else kinds)
        return self._move({"op": "kinds", "kinds": kinds},
                          lambda: self.session.set_kinds(kinds), message=None, save=True)

    def set_view(self, *, overlay: bool | None = None,
                 disagreement: bool | None = None) -> Change:
        """The overlay view and colour by disagreement (each left as it is when None); saved."""
        self._check_open()
        look = self._look
        self._look = replace(look, overlay=look.overlay if overlay is None else bool(overlay),
                             disagreement=(look.disagreement if disagreement is None
                                           else bool(disagreement)))
        self._save_view()
        return self._tell(Change({"op": "view", "overlay": self._look.overlay,
                                  "disagreement": self._look.disagreement},
                                 current=self.session.current_index, view=True))

    def _move(self, op: dict, move: Callable[[], object], *, message: str | None = "",
              save: bool = False) -> Change:
        """Change the position or the queue, then tell the listeners (nothing journaled).

        ``message`` "" takes back what was said about the group left
        behind; None leaves it. ``save``: write the view settings file.
        """
        self._check_open()
        move()
        if save:
            self._save_view()
        return self._tell(Change(op, current=self.session.current_index, moved=True,
                                 message=message))

    @property
    def view(self) -> ViewSettings:
        """How the review is looked at now: order, kinds, view, current group."""
        session = self.session
        return replace(self._look, order=session.order,
                       kinds=tuple(k for k in KINDS if k in session.kinds),
                       group=session.current_index, actions=len(self.journal.ops))

    def _restore_view(self, default: ViewSettings | None) -> None:
        """Order, kinds and view as saved (else ``default``); a resumed review's group too.

        The group is where the reviewer was when the file was saved, if the
        journal holds the same actions as then (a kill may have lost the
        last save of the file; the review then starts on its first undecided
        group, as the replay left it) and the group is in the queue.
        """
        saved = read_view_settings(self.output)
        settings = saved or default or ViewSettings()
        self.session.set_order(settings.order)
        self.session.set_kinds(settings.kinds)
        self._look = settings
        if saved is not None and self.resumed and saved.group is not None \
                and saved.actions == len(self.journal.ops) \
                and self.session.place(saved.group) is not None:
            self.session.go_to(saved.group)

    def _save_view(self) -> None:
        write_view_settings(self.output, self.view)  # a convenience: a failure costs nothing

    @property
    def iou_threshold(self) -> float:
        """The IoU that links objects into the review's groups."""
        return float(self.journal.params["iou_threshold"])

    def saved_labels(self):
        """The curated labels as saved, ids 1..n, and their features (one row per saved id).

        See :meth:`.session.Session.saved_labels`; a chunked review's, once
        closed, from its store (compacted, pyramided) as a dask array, its
        features only without edits (finding the ids left would read the
        whole volume).

        Returns
        -------
        labels : ndarray or dask.array.Array, shape of the masks
        features : dict of str to list
        """
        session = self.session
        if not session.chunked:
            return session.saved_labels()
        import dask.array as da

        labels = da.from_zarr(ome_zarr_out.labels_array(self.output))
        return labels, session.features() if not session.edited else {"label": []}

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

        Once called, the review takes no more actions (a chunked output's ids
        are compacted on the way). If saving fails (a full disk), the error is
        raised and the review stays open and locked: call :meth:`close`
        again once there is space, it goes on from where it stopped; or
        :meth:`release` it unsaved.

        Returns
        -------
        dict
            The session summary.

        Raises
        ------
        OSError
            :class:`._files.WriteError`, one line naming the file: saving failed
            (the journal is whole: reopening the review rebuilds the output).
        """
        if self.closed:
            return self.session.summary()
        self._closing = True
        self._save_view()  # where the reviewer was: a resumed review opens there
        summary = self.session.summary()
        self._saver.flush()  # the threads keep running until the end: a retry saves again
        if self.session.chunked:
            self._finish_store()
        _files.atomic_write_bytes(_files.sidecar(self.output, ".summary.json"),
                                  (json.dumps(summary, indent=2) + "\n").encode())
        self.release()
        return summary

    def release(self) -> None:
        """Stop the threads and release the lock without saving any more.

        For a review let go after :meth:`close` failed (e.g. its window goes
        away): every action is in the journal, so opening the review again
        rebuilds the output.
        """
        self._closing = self.closed = True
        try:
            self._saver.stop()
        finally:
            self._lock.release()

    def _finish_store(self) -> None:
        """A chunked output at the end: ids 1..n (written chunks only), lower levels rebuilt.

        From here on the store holds the exported ids, not the session's;
        opening the review again rebuilds the session's from the journal.
        Retried by :meth:`close` after a failure: the ids are compacted once.
        """
        try:
            if self.session.edited and not self._compacted:
                compact_chunks(self.session.output)
                self._compacted = True
            self.session.flush_output()
            ome_zarr_out.write_pyramid(self.output, name=ome_zarr_out.REVIEW_LABELS)
        except _files.WriteError:
            raise
        except OSError as err:
            raise _files.write_error(self.output, err) from err

    def __enter__(self) -> Review:
        return self

    def __exit__(self, *exc) -> None:
        """Close; if that fails, let the review go (nothing can retry after the block)."""
        try:
            self.close()
        except BaseException:
            self.release()
            raise


class _Autosaver:
    """Background threads of a review: journal fsync, output TIFF rewrite (coalesced).

    The TIFF is written from a shadow copy of the output updated only in the
    changed regions, under the session's lock, so that the file always holds
    whole actions and saving never blocks the review. With edits in force the
    ids are compacted to 1..n on the way. A chunked output instead gets the
    chunks changed since the last save written (:meth:`.Session.flush_output`)
    once no action came for :data:`CHUNK_SAVE_DELAY_S` (at the latest
    :data:`CHUNK_SAVE_MAX_DELAY_S` after the first one unsaved; the actions
    meanwhile join the same save): compressing chunks then does not take the
    CPU from the widget while it handles a key press. The journal line is
    fsynced at once either way; :meth:`flush` and :meth:`close` do not wait.
    A save that failed keeps its regions (and a chunked output its dirty
    chunks): the next action, :meth:`flush` or :meth:`close` saves them again.
    """

    def __init__(self, review: Review, *, voxel_size=None, unit: str = "pixel"):
        self.review = review
        self.voxel_size = voxel_size
        self.unit = unit
        self.writes = 0
        self.error: OSError | None = None
        session = review.session
        self._shadow = None if session.chunked else session.output.copy()
        self._pending: list[tuple[slice, ...]] = []
        self._dirty = self._writing = self._unsynced = self._syncing = self._closed = False
        self._failed = False  # the last save failed: flush() tries it again
        self._hurry = False  # flush() waits: no delay
        self._delay = CHUNK_SAVE_DELAY_S if session.chunked else 0.0
        self._last_action = 0.0  # time.monotonic() of the last action scheduled
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
                self._pending.append(tuple(slice(None) for _ in self.review.session.output.shape))
            else:
                self._pending.extend(regions)
            self._dirty = True
            self._last_action = time.monotonic()
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
                self._wait_for_a_pause()
                regions, self._pending, self._dirty = self._pending, [], False
                self._writing = True
            error = None
            try:
                if self.review.session.chunked:
                    self.review.session.flush_output()
                else:
                    self._save_tiff(regions)
            except _files.WriteError as err:  # reported by flush(); the journal is whole
                error = err
            except OSError as err:  # zarr's own error: one line that names the output
                error = _files.write_error(self.review.output, err)
            except Exception as err:  # a bug: still never silent
                error = _files.WriteError(0, f"{self.review.output}: not saved ({err!r})")
            with self._wake:
                self.error, self._failed = error, error is not None
                if error is not None:  # saved again by the next action, flush() or close()
                    self._pending[:0] = regions
                self._writing = False
                self.writes += 1
                self._wake.notify_all()

    def _wait_for_a_pause(self) -> None:
        """(Holding ``_wake``) a chunked output: until actions pause, or flush() or close()."""
        latest = time.monotonic() + CHUNK_SAVE_MAX_DELAY_S
        while self._delay and not (self._closed or self._hurry):
            wait = min(self._last_action + self._delay, latest) - time.monotonic()
            if wait <= 0:
                return
            self._wake.wait(wait)

    def _save_tiff(self, regions) -> None:
        """Copy the changed regions to the shadow (whole actions only), then write it."""
        session = self.review.session
        with session.lock:
            if self._shadow.dtype != session.output.dtype:
                self._shadow = self._shadow.astype(session.output.dtype)
            for region in regions:
                self._shadow[region] = session.output[region]
            classes = session.class_map()
            compact = session.edited
        self._write(classes, compact=compact)

    def _write(self, classes, *, compact: bool) -> None:
        """The output TIFF (and its classes beside it, replaced together)."""
        output = self.review.output
        files = {output: relabel_sequential(self._shadow) if compact else self._shadow}
        if classes is not None:
            files[_files.sidecar(output, "_classes.tif")] = classes
        write_label_files(files, voxel_size=self.voxel_size, unit=self.unit, relabel=False)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for the journal's fsync and the output's save; a save that failed (a full
        disk, space since freed) is tried again first. Raises the error if it fails again."""
        with self._wake:
            if self._failed and not (self._dirty or self._writing):
                self._dirty, self._failed = True, False
            self._hurry = True  # no waiting for a pause
            self._wake.notify_all()
            done = self._wake.wait_for(
                lambda: not (self._dirty or self._writing or self._unsynced or self._syncing),
                timeout)
            if done:
                self._hurry = False
        if self.error is not None:
            raise self.error
        return done

    def close(self) -> None:
        """Flush, then stop the threads (even when saving failed; the error is raised after)."""
        try:
            self.flush()
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop the threads (a save in flight ends first; nothing more is saved)."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        for thread in self._threads:
            thread.join()


def _check_new_review(output: Path, journal: Path, *, adopt_output: bool = False) -> None:
    """A new review writes its output and side-cars: none of them may be there already.

    ``adopt_output``: the output is an empty store of ours (a review killed
    before its journal was made), made again.
    """
    for path in ((output,) * (not adopt_output) + (_files.sidecar(output, ".summary.json"),
                 _files.sidecar(output, "_classes.tif"))):
        if path.exists() or path.is_symlink():
            raise InputError(
                f"{path}: exists and is not a review's (no {journal.name} beside it); choose "
                "another output name so that it is not overwritten"
            )


def _check_same_review(journal: Journal, header: dict) -> None:
    """The journal is of a review of the same masks (fingerprints), read the same way
    (axes, when it says) with the same parameters; InputError otherwise."""
    then = {source["key"]: source for source in journal.sources}
    for source in header["sources"]:
        was = then.get(source["key"], {})
        if was.get("fingerprint") != source["fingerprint"]:
            raise InputError(
                f"{journal.path}: this folder holds a review of another mask {source['key']} "
                f"({was.get('name', '?')}); use another output folder, or move the journal "
                "away to start over"
            )
    if journal.axes is not None and journal.axes != header["axes"]:
        raise InputError(f"{journal.path}: the review here read the masks as {journal.axes}, "
                         f"not {header['axes']}; resume with the same axes or use another "
                         "output folder")
    if journal.params != header["params"]:
        raise InputError(
            f"{journal.path}: the review here used {journal.params}, not {header['params']}; "
            "resume with the same settings or use another output folder"
        )


def _existing_journal(output: Path, header: dict, *, adopt_output: bool = False):
    """The journal path of ``output`` and its journal when the review exists (checked to be
    the same review), else None (checked that nothing foreign is in the way).

    Returns
    -------
    path : Path
    journal : Journal or None
    """
    path = journal_path(output)
    if path.exists() or path.is_symlink():
        journal = Journal.read(path)
        _check_same_review(journal, header)
        return path, journal
    _check_new_review(output, path, adopt_output=adopt_output)
    return path, None


def _resume(session: Session, journal: Journal, *, notes: list[str]) -> None:
    """Replay the journal into ``session``, then cut a torn last line off (and say so)."""
    _replay(session, journal)
    cut = journal.repair()
    if cut:
        notes.append(f"cut an incomplete last line ({cut} bytes) from {journal.path.name}: "
                     "the action being written when it stopped was not applied")


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


# --------------------------------------------------------------------------- chunked outputs

#: A chunked output's changed chunks are saved once actions pause this long (seconds; see
#: :class:`_Autosaver`) ...
CHUNK_SAVE_DELAY_S = 0.25
#: ... or this long after the first unsaved action at the latest (the chunks stay
#: cached meanwhile: a few, as neighbouring groups share chunks).
CHUNK_SAVE_MAX_DELAY_S = 1.0
#: Version of the overlap table cache (``<out>.table.npz``).
TABLE_FORMAT = 1
_TABLE_FIELDS = ("ids_a", "ids_b", "sizes_a", "sizes_b", "bbox_a", "bbox_b", "pair_a", "pair_b",
                 "intersection")


def _is_zarr(output: Path) -> bool:
    return output.suffix.lower() == ".zarr"


def _check_output_name(output) -> Path:
    """A TIFF output must be a file name; a ``.zarr`` output is a folder (ours on resume)."""
    output = Path(output)
    if _is_zarr(output):
        check_writable(journal_path(output))
        return output
    return check_writable(output)


def _opening_notes(lock: ReviewLock, output: Path) -> list[str]:
    notes = []
    if lock.previous_owner:
        notes.append(f"took over from process {lock.previous_owner.get('pid')}, which "
                     "is no longer running")
    stale = _files.remove_stale_temps(output.parent)
    if stale:
        notes.append(f"removed {len(stale)} temporary file(s) left by a killed process")
    return notes


def _header(a, b, *, inputs: dict | None, iou_threshold: float) -> dict:
    """The journal header's fields: the inputs' names and fingerprints, axes, parameters."""
    names = {"mask_a": "mask A", "mask_b": "mask B", **(inputs or {})}
    given = inputs or {}
    return journal_header(
        sources=[(names[key], fingerprint(mask, source=given.get(key)))
                 for key, mask in (("mask_a", a), ("mask_b", b))],
        axes=default_axes(len(a.shape)), params={"iou_threshold": float(iou_threshold)})


def _table_path(output: Path) -> Path:
    return _files.sidecar(output, ".table.npz")


def _table_key(header: dict) -> str:
    """What a cached table must have been computed from: both inputs' fingerprints."""
    prints = {source["key"]: source["fingerprint"] for source in header["sources"]}
    return json.dumps({"format": TABLE_FORMAT, "mask_a": prints["A"], "mask_b": prints["B"]},
                      sort_keys=True)


def _cached_table(output: Path, a, b, *, key: str, notes: list[str]) -> OverlapTable:
    """The overlap table of ``a`` and ``b``: from ``<out>.table.npz`` if its key matches.

    Otherwise it is computed (:func:`.pairing.overlap_table`) and the cache
    written (atomically) for the next opening.
    """
    path = _table_path(output)
    table, cached_key = _load_table(path)
    if table is None and (path.exists() or path.is_symlink()):
        raise InputError(f"{path}: exists and is not a review's overlap table; move it away "
                         "(it is never overwritten)")
    if table is not None and cached_key == key:
        return table
    if table is not None:
        notes.append(f"{path.name} was computed from other inputs: computed again")
    table = overlap_table(a, b)
    _save_table(path, table, key=key)
    return table


def _load_table(path: Path) -> tuple[OverlapTable | None, str | None]:
    """A cached table and its key; (None, None) when there is none or it is not ours."""
    if not path.is_file() or path.is_symlink():
        return None, None
    try:
        with np.load(path, allow_pickle=False) as data:
            key = str(data["key"])
            if json.loads(key).get("format") != TABLE_FORMAT:
                return None, None
            fields = {name: data[name] for name in _TABLE_FIELDS}
            shape = tuple(int(n) for n in data["shape"])
    except (OSError, ValueError, KeyError, AttributeError):
        return None, None
    return OverlapTable(shape=shape, **fields), key


def _save_table(path: Path, table: OverlapTable, *, key: str) -> None:
    with _files.atomic_open(path) as f:
        np.savez(f, key=np.array(key), shape=np.array(table.shape, dtype=np.int64),
                 **{name: getattr(table, name) for name in _TABLE_FIELDS})


def _rebuild_from_journal(output: Path, array, session: Session, journal: Journal, *,
                          notes: list[str]) -> None:
    """Replay the journal into an emptied output store: the store is the journal's state.

    The chunk files written before (a chunk torn by a kill among them) are set
    aside for the replay (:func:`._files.set_aside`: renames, no pass over
    the volume), deleted once it succeeded; if a line cannot be replayed (a
    journal changed by hand, of another review), the InputError leaves the
    store as it was, its chunks put back.
    """
    n = len(chunk_keys(array))
    with _files.set_aside(Path(array.store.root) / array.path, keep=ZARR_METADATA,
                          beside=output):
        _resume(session, journal, notes=notes)
    if n:
        notes.append(f"rebuilt {output.name} from the journal ({n} chunk files)")


