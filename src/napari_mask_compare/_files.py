"""The one way a file of this package reaches disk.

Every file is written to a temporary name in its own folder
(``.<name>.<pid>.<random>.tmp``), flushed, fsynced, renamed over its name, and
the folder is fsynced: a reader sees the old file or the new one, never a
partial one, and a failure (a full disk, a kill) leaves the old one as it was.
:func:`staged` renames several files only once all are written. Temporary files
of dead processes are removed by :func:`remove_stale_temps`.

A folder output (a zarr store) is written the same way by
:func:`staged_folder`: into a temporary folder of that name form beside it,
every file fsynced, then renamed in place (an earlier output of ours is
swapped out and removed only once the new one is in place).

:func:`check_output` is the one never-overwrite rule: an output is never one
of the inputs, never a file this package did not make, never inside a zarr
store, and never a review's file unless the caller is that review;
:func:`check_output_folder` its rule for a folder that files are written
into (new, empty, or ours).

A failed write raises :class:`WriteError`, an ``OSError`` whose message is one
line naming the file and the error's words.

No Qt, no napari.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import InputError
from .store import enclosing_store

__all__ = [
    "WriteError",
    "atomic_open",
    "atomic_write_bytes",
    "check_output",
    "check_output_folder",
    "check_writable",
    "fsync_folder",
    "fsync_path",
    "fsync_tree",
    "remove_stale_temps",
    "same_file",
    "set_aside",
    "sidecar",
    "staged",
    "staged_folder",
]

#: Name of a temporary file: ``.<name>.<pid>.<8 hex>.tmp``.
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


class WriteError(OSError):
    """A file could not be written: ``str(err)`` is one line for the user."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def write_error(path, err: OSError, *, doing: str = "cannot write") -> WriteError:
    """One-line :class:`WriteError` naming ``path`` and the error's words."""
    words = err.strerror or os.strerror(err.errno) if err.errno else str(err)
    return WriteError(err.errno or errno.EIO, f"{path}: {doing} ({words})")


def _with_errno(err: OSError, f) -> OSError:
    """``err``, or the error that the file system really gives when ``err`` has no errno.

    numpy's ``tofile`` reports a short write on a full disk as an OSError
    without errno ("65536 requested and 3920 written"): one more byte written
    at the end of ``f`` tells why (ENOSPC, EDQUOT, EIO...).
    """
    if err.errno is not None:
        return err
    try:
        f.flush()
        os.pwrite(f.fileno(), b"\0", os.fstat(f.fileno()).st_size)
    except OSError as real:
        if real.errno is not None:
            return real
    return err


def sidecar(output: str | os.PathLike, suffix: str) -> Path:
    """The name of a file that belongs to ``output`` (its journal, summary, lock...).

    >>> sidecar("out/cells.tif", "_classes.tif").as_posix()
    'out/cells_classes.tif'
    """
    output = Path(output)
    return output.with_name(output.stem + suffix)


def fsync_path(path: str | os.PathLike) -> None:
    """fsync a file (or folder) by name."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make renames in ``folder`` durable (not possible on every file system)."""
    with contextlib.suppress(OSError):
        fsync_path(folder)


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


class _Stage:
    """Temporary files that replace their targets together, at the end.

    Folders are created as files need them, and removed again (when still
    empty) if the stage fails.
    """

    def __init__(self):
        self.files: list[tuple[Path, Path]] = []
        self.removed: list[Path] = []
        self.made: list[Path] = []

    def _make_folder(self, folder: Path) -> None:
        missing = [f for f in (folder, *folder.parents) if not f.exists()]
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise write_error(folder, err, doing="cannot create the folder") from err
        self.made.extend(missing)  # deepest first

    def remove(self, path: str | os.PathLike) -> None:
        """Remove ``path`` when the stage ends well (a file of ours that is not written again)."""
        self.removed.append(Path(path))

    @contextlib.contextmanager
    def open(self, path: str | os.PathLike) -> Iterator[BinaryIO]:
        """A binary file that becomes ``path`` when the stage ends well."""
        path = Path(path)
        self._make_folder(path.parent)
        tmp = _temp_name(path)
        try:  # created with the usual permissions (mkstemp's 0600 would pass on)
            f = open(tmp, "xb")  # noqa: SIM115 (closed below)
        except OSError as err:
            raise write_error(path, err) from err
        self.files.append((tmp, path))
        try:
            yield f
            f.flush()
            os.fsync(f.fileno())
            f.close()
        except OSError as err:
            failure = write_error(path, _with_errno(err, f))
            with contextlib.suppress(OSError):  # closing flushes the buffer again: no space
                f.close()
            raise failure from err
        finally:
            if not f.closed:  # another exception: close quietly, it is reported
                with contextlib.suppress(OSError):
                    f.close()

    def commit(self) -> None:
        for tmp, path in self.files:
            try:
                os.replace(tmp, path)
            except OSError as err:
                raise write_error(path, err) from err
        for path in self.removed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        for folder in {path.parent for _, path in self.files} | {p.parent for p in self.removed}:
            fsync_folder(folder)

    def discard(self) -> None:
        for tmp, _ in self.files:
            tmp.unlink(missing_ok=True)
        for folder in self.made:
            with contextlib.suppress(OSError):  # only when still empty
                folder.rmdir()


#: ``before_commit(temporaries)``: called with ``{target: temporary}`` once every file is
#: written and fsynced, before the first rename (e.g. to record what is about to appear).
BeforeCommit = Callable[[dict[Path, Path]], None]


@contextlib.contextmanager
def staged(*, before_commit: BeforeCommit | None = None) -> Iterator[_Stage]:
    """Write several files with ``stage.open(path)``; all are renamed in place only at the end.

    If anything fails before, no target is touched, and the temporary files
    and the folders made for them are removed. ``before_commit`` is called
    with ``{target: temporary file}`` between the last write and the first
    rename; if it raises, nothing is renamed.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with staged() as stage:
    ...     for name in ("a.txt", "b.txt"):
    ...         with stage.open(folder / name) as f:
    ...             _ = f.write(name.encode())
    >>> sorted(p.name for p in folder.iterdir())
    ['a.txt', 'b.txt']
    """
    stage = _Stage()
    try:
        yield stage
        if before_commit is not None:
            before_commit({path: tmp for tmp, path in stage.files})
        stage.commit()
    except BaseException:
        stage.discard()
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file that appears at ``path`` whole, only if the block succeeds.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_open(folder / "x.txt") as f:
    ...     _ = f.write(b"hello")
    >>> (folder / "x.txt").read_bytes(), sorted(p.name for p in folder.iterdir())
    (b'hello', ['x.txt'])
    """
    with staged() as stage, stage.open(path) as f:
        yield f


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path) as f:
        f.write(data)
    return Path(path)


def fsync_tree(folder: str | os.PathLike) -> None:
    """fsync every file and folder under ``folder`` (deepest first), then ``folder``."""
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            fsync_path(os.path.join(root, name))
        for name in dirs:
            fsync_folder(os.path.join(root, name))
    fsync_folder(folder)


@contextlib.contextmanager
def staged_folder(path: str | os.PathLike, *,
                  before_commit: BeforeCommit | None = None) -> Iterator[Path]:
    """A temporary folder that becomes the folder ``path`` only if the block succeeds.

    The folder ``.<name>.<pid>.<hex>.tmp`` is made beside ``path`` and
    yielded; when the block ends well, every file in it is fsynced and it is
    renamed to ``path``. An existing ``path`` (which the caller checked with
    :func:`check_output` to be an output of ours) is first renamed to a
    temporary name and removed after the new folder is in place. If the block
    fails, the temporary folder is removed and ``path`` is left as it was.
    ``before_commit`` is called with ``{path: temporary folder}`` once the
    folder is written and fsynced, before the rename (as for :func:`staged`).

    Raises
    ------
    WriteError
        The folder could not be made or renamed (one line naming ``path``).

    Examples
    --------
    >>> import tempfile
    >>> parent = Path(tempfile.mkdtemp())
    >>> with staged_folder(parent / "out.zarr") as tmp:
    ...     _ = (tmp / "zarr.json").write_text("{}")
    >>> sorted(p.name for p in parent.iterdir()), (parent / "out.zarr" / "zarr.json").exists()
    (['out.zarr'], True)
    """
    path = Path(path)
    stage = _Stage()
    stage._make_folder(path.parent)
    tmp = _temp_name(path)
    try:
        tmp.mkdir()
    except OSError as err:
        stage.discard()
        raise write_error(path, err) from err
    try:
        yield tmp
        try:
            fsync_tree(tmp)
        except OSError as err:
            raise write_error(path, err) from err
        if before_commit is not None:
            before_commit({path: tmp})
        _replace_folder(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        stage.discard()
        raise


def _replace_folder(tmp: Path, path: Path) -> None:
    """Rename the folder ``tmp`` to ``path``; an existing ``path`` is removed once replaced."""
    old = None
    if path.exists() or path.is_symlink():
        old = _temp_name(path)
        try:
            os.replace(path, old)
        except OSError as err:
            raise write_error(path, err, doing="cannot replace") from err
    try:
        os.replace(tmp, path)
    except OSError as err:
        if old is not None:  # put the old output back
            with contextlib.suppress(OSError):
                os.replace(old, path)
        raise write_error(path, err) from err
    fsync_folder(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def set_aside(folder: str | os.PathLike, *, keep: Iterable[str] = (),
              beside: str | os.PathLike) -> Iterator[int]:
    """Empty ``folder`` (but the entries named in ``keep``) for a block, undone if it fails.

    The entries are renamed into a temporary folder ``.<name>.<pid>.<hex>.tmp``
    beside ``beside`` (on the same file system: no copy); the block then
    fills ``folder`` again. If the block raises, what it wrote in ``folder``
    is removed and the entries are put back; if it ends well, they are
    deleted. A process killed meanwhile leaves the temporary folder, which
    :func:`remove_stale_temps` removes at the next start.

    Yields
    ------
    int
        The number of entries set aside.

    Raises
    ------
    WriteError
        An entry could not be moved (those moved are put back first).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()) / "store"
    >>> folder.mkdir()
    >>> for name in ("meta", "chunk"):
    ...     _ = (folder / name).write_text(name)
    >>> try:
    ...     with set_aside(folder, keep={"meta"}, beside=folder):
    ...         _ = (folder / "new").write_text("half done")
    ...         raise ValueError("failed")
    ... except ValueError:
    ...     pass
    >>> sorted(p.name for p in folder.iterdir()), sorted(p.name for p in folder.parent.iterdir())
    (['chunk', 'meta'], ['store'])
    """
    folder, keep = Path(folder), set(keep)
    aside = _temp_name(Path(beside))
    names = sorted(name for name in os.listdir(folder) if name not in keep)
    moved: list[str] = []
    try:
        aside.mkdir()
        for name in names:
            os.rename(folder / name, aside / name)
            moved.append(name)
    except OSError as err:
        _put_back(folder, aside, moved)
        raise write_error(folder, err, doing="cannot set its files aside") from err
    try:
        yield len(names)
    except BaseException:
        _put_back(folder, aside, moved, clear_but=keep)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _put_back(folder: Path, aside: Path, names: list[str], *,
              clear_but: set[str] | None = None) -> None:
    """Undo :func:`set_aside`: remove what is in ``folder`` now but ``clear_but`` (unless
    None), move ``names`` back from ``aside``, remove ``aside``."""
    if clear_but is not None:
        for entry in os.scandir(folder):
            if entry.name not in clear_but:
                _remove_entry(Path(entry.path))
    for name in names:
        os.rename(aside / name, folder / name)
    with contextlib.suppress(OSError):
        aside.rmdir()


def _remove_entry(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files and folders that dead processes of ours left in ``folder``.

    Only names of this module's form whose process is gone are removed: a
    temporary file of a running writer is left alone. A temporary folder (of
    :func:`staged_folder`) is removed with its content.

    Returns
    -------
    list of Path
        The files and folders removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP.match(entry.name)
        if match is None or _alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            elif entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
            else:
                continue
            removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` are one file (after links; same device and inode)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (or is a link loop): compare the names
        return os.path.realpath(a) == os.path.realpath(b)


def _check_folder(path: Path) -> None:
    existing = path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot write here ({existing} is not a writable folder)")


def check_writable(path: str | os.PathLike) -> Path:
    """Check that ``path`` can be created: its folder exists or can be made, and is writable.

    It does not look at what ``path`` holds: see :func:`check_output`.

    Raises
    ------
    InputError
    """
    path = Path(path)
    _check_folder(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a .tif file name")
    return path


def _review_journal(path: Path) -> Path | None:
    """The journal of the review that ``path`` belongs to (its output or a side-car), if any."""
    stem = path.stem
    for suffix in ("_classes", ".summary", ".owner", ".journal", ".view"):
        stem = stem.removesuffix(suffix)
    journal = path.with_name(stem + ".journal.jsonl")
    return journal if journal.exists() or journal.is_symlink() else None


def _without_series(path) -> Path:
    """The file of an input: ``cells.tif:1`` -> ``cells.tif``, ``f.h5:/ds`` -> ``f.h5``.

    See :func:`.read.read_array` and :func:`.store.open_array`.
    """
    path = Path(path)
    match = re.fullmatch(r"(.+\.tiff?):\d+|(.+\.(?:h5|hdf5|hdf|he5)):.*", str(path),
                         flags=re.IGNORECASE)
    return Path(match[1] or match[2]) if match and not path.exists() else path


def is_inside(inner: str | os.PathLike, outer: str | os.PathLike) -> bool:
    """True when ``inner`` is ``outer`` or lies in the folder ``outer`` (after links)."""
    inner, outer = os.path.realpath(inner), os.path.realpath(outer)
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def input_root(given: str | os.PathLike) -> Path:
    """What an input path holds on disk as a whole: the file of ``cells.tif:1`` or
    ``f.h5:/ds``, the outermost ``.zarr`` store around ``img.ome.zarr/labels/cells``.

    Examples
    --------
    >>> input_root("data/img.ome.zarr/labels/cells").as_posix(), input_root("f.h5:/seg").name
    ('data/img.ome.zarr', 'f.h5')
    """
    path = _without_series(given)
    stores = [p for p in (path, *path.parents) if p.suffix.lower() == ".zarr"]
    return stores[-1] if stores else path


def _check_not_in_a_store(path: Path, *, option: str) -> None:
    """Refuse ``path`` inside a zarr store: an output never goes among a store's chunks."""
    store = enclosing_store(path)
    if store is not None:
        raise InputError(f"{path}: is inside the zarr store {store}; nothing is written into "
                         f"a store: choose another {option}")


def _foreign_entries(folder: Path) -> list[str]:
    """Names in ``folder`` other than temporary files of ours (those of a killed writer)."""
    return sorted(entry.name for entry in os.scandir(folder) if not _TEMP.match(entry.name))


def check_output_folder(
    folder: str | os.PathLike,
    *,
    ours: Callable[[Path], bool],
    what: str,
    option: str = "--out",
) -> Path:
    """Check that files may be written into ``folder``: it is new, empty, or ours.

    A folder that holds anything else (the user's files, a zarr store, a
    review's files) is never written into, not even with ``--overwrite``.
    Whether each file in it may be written is then :func:`check_output`'s
    question.

    Parameters
    ----------
    folder : path
        The folder the files go into (it need not exist).
    ours : callable
        ``ours(folder)`` is True when ``folder`` holds an earlier output of
        this kind (e.g. a report's ``summary.json``).
    what : str
        What is written, for the message (e.g. ``"a report"``).
    option : str
        How the user named ``folder``.

    Returns
    -------
    Path

    Raises
    ------
    InputError
        One line naming the folder, some of what it holds, and what would be right.
    """
    folder = Path(folder)
    if not (folder.exists() or folder.is_symlink()):
        return folder
    if not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder; choose another {option}")
    foreign = _foreign_entries(folder)
    if foreign and not ours(folder):
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3
                                          else "")
        raise InputError(f"{folder}: holds files that mask-compare did not write ({shown}); "
                         f"{what} goes into a new or empty folder, or replaces an earlier "
                         f"one: choose another {option}")
    return folder


def check_output(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    ours: Callable[[Path], bool] = lambda path: False,
    overwrite: bool = False,
    option: str = "--out",
    folder: bool = False,
) -> Path:
    """Check that ``path`` may be written, before anything is computed.

    Parameters
    ----------
    path : path
        A file (or with ``folder``, a folder such as a zarr store) to create
        or replace.
    inputs : iterable of path
        Files read by the command: never written over.
    ours : callable
        ``ours(path)`` is True when the existing file at ``path`` is an
        earlier output of this package (that ``overwrite`` may replace).
    overwrite : bool
        Replace an earlier output of ours.
    option : str
        How the user named ``path``, for the messages.
    folder : bool
        ``path`` is a folder output (a zarr store, written by
        :func:`staged_folder`): an existing folder may be replaced when
        ``ours``; an input inside it, or an output inside an input store,
        is refused.

    Returns
    -------
    Path

    Raises
    ------
    InputError
        One line: the file, why it is not written, and what would be right.
    """
    path = Path(path)
    for given in inputs:
        if given is None:
            continue
        source = input_root(given)
        if same_file(path, source):
            raise InputError(f"{path}: is an input ({given}); choose another {option} so that "
                             "the input is not overwritten")
        if is_inside(path, source) or (folder and is_inside(source, path)):
            raise InputError(f"{path}: is inside an input or holds one ({given}); choose another "
                             f"{option} so that the input is not overwritten")
    _check_folder(path)
    _check_not_in_a_store(path, option=option)
    journal = _review_journal(path)  # also before the review's first save
    if journal is not None:
        raise InputError(f"{path}: belongs to a review ({journal.name} beside it); open it "
                         f"with mask-compare review, or choose another {option}")
    if not (path.exists() or path.is_symlink()):
        return path
    if folder:
        if path.is_symlink() or not path.is_dir():
            raise InputError(f"{path}: exists and is not a folder; choose another {option}")
    elif path.is_dir():
        raise InputError(f"{path}: is a folder, expected a file name for {option}")
    elif path.is_symlink() or not path.is_file():
        raise InputError(f"{path}: exists and is not a regular file; choose another {option}")
    if not ours(path):
        raise InputError(f"{path}: exists and was not written by mask-compare; it is never "
                         f"overwritten: choose another {option}")
    if not overwrite:
        raise InputError(f"{path}: exists (an earlier output); give --overwrite to replace it, "
                         f"or choose another {option}")
    if not path.stat().st_mode & 0o222 or not os.access(path, os.W_OK):  # root passes access()
        raise InputError(f"{path}: is read-only; it is not replaced (make it writable first, "
                         f"or choose another {option})")
    return path
