"""The one way a file of this package reaches disk.

Every file is written to a temporary name in its own folder
(``.<name>.<pid>.<random>.tmp``), flushed, fsynced, renamed over its name, and
the folder is fsynced: a reader sees the old file or the new one, never a
partial one, and a failure (a full disk, a kill) leaves the old one as it was.
:func:`staged` renames several files only once all are written. Temporary files
of dead processes are removed by :func:`remove_stale_temps`.

:func:`check_output` is the one never-overwrite rule: an output is never one
of the inputs, never a file this package did not make, and never a review's
file unless the caller is that review.

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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "WriteError",
    "atomic_open",
    "atomic_write_bytes",
    "check_output",
    "check_writable",
    "fsync_folder",
    "fsync_path",
    "remove_stale_temps",
    "same_file",
    "sidecar",
    "staged",
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


@contextlib.contextmanager
def staged() -> Iterator[_Stage]:
    """Write several files with ``stage.open(path)``; all are renamed in place only at the end.

    If anything fails before, no target is touched, and the temporary files
    and the folders made for them are removed.

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


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that dead processes of this package left in ``folder``.

    Only names of this module's form whose process is gone are removed: a
    temporary file of a running writer is left alone.

    Returns
    -------
    list of Path
        The files removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP.match(entry.name)
        if match is None or _alive(int(match["pid"])) or not entry.is_file(follow_symlinks=False):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
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
    from .io import InputError

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
    from .io import InputError

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
    """``cells.tif:1`` (a TIFF series, see :func:`.io.read_array`) -> ``cells.tif``."""
    path = Path(path)
    match = re.fullmatch(r"(.+\.tiff?):\d+", str(path), flags=re.IGNORECASE)
    return Path(match[1]) if match and not path.exists() else path


def check_output(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    ours: Callable[[Path], bool] = lambda path: False,
    overwrite: bool = False,
    option: str = "--out",
) -> Path:
    """Check that ``path`` may be written, before anything is computed.

    Parameters
    ----------
    path : path
        A file to create or replace.
    inputs : iterable of path
        Files read by the command: never written over.
    ours : callable
        ``ours(path)`` is True when the existing file at ``path`` is an
        earlier output of this package (that ``overwrite`` may replace).
    overwrite : bool
        Replace an earlier output of ours.
    option : str
        How the user named ``path``, for the messages.

    Returns
    -------
    Path

    Raises
    ------
    InputError
        One line: the file, why it is not written, and what would be right.
    """
    from .io import InputError

    path = Path(path)
    for given in inputs:
        if given is not None and same_file(path, _without_series(given)):
            raise InputError(f"{path}: is an input ({given}); choose another {option} so that "
                             "the input is not overwritten")
    _check_folder(path)
    journal = _review_journal(path)  # also before the review's first save
    if journal is not None:
        raise InputError(f"{path}: belongs to a review ({journal.name} beside it); open it "
                         f"with mask-compare review, or choose another {option}")
    if not (path.exists() or path.is_symlink()):
        return path
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a file name for {option}")
    if path.is_symlink() or not path.is_file():
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
