"""The journal file format: a header line, then one JSON line per review action.

This module knows the format and nothing else (no session, no threads): it
creates a journal, reads one back (checking every line before anything is
changed), cuts a torn tail, and appends a line so that the file never holds
half a line after a failure. :mod:`.review` decides when.

Operations (``"op"``), each one user action:

========== ============================================================
``decide`` ``group`` (index), ``choice`` (A, B, M, N), ``ids`` ([A ids], [B ids])
``undo``   take back the last action
``finish`` add every undecided unpaired group ("Auto")
``pick``   ``group``, ``side`` (A or B), ``id``: toggle that object in or out
``edit``   ``pieces``: voxels set by hand, each ``{"box": [[start, stop], ...],
           "mask": <packed bits, zlib, base64> or null (the whole box),
           "value": new id}``
========== ============================================================

No Qt, no napari.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import _files
from .io import InputError

__all__ = ["FORMAT", "Journal", "check_op", "decode_mask", "encode_mask", "files_fingerprint",
           "fingerprint", "journal_path"]

FORMAT = "napari-mask-compare journal"
VERSION = 1
CHOICES = ("A", "B", "M", "N")


def fingerprint(array, *, source: str | os.PathLike | None = None) -> str:
    """A digest that changes when a mask changes.

    An ndarray is hashed by shape and values: integer arrays in the
    smallest unsigned dtype that holds their values, so that uint16 and
    uint32 copies of a mask agree (and a uint16 mask is hashed without a
    copy).

    A chunked array (zarr, dask: larger than memory) is not read: see
    :func:`files_fingerprint` of ``source`` (its file or folder), or of the
    zarr array's own folder. Only a chunked array with neither (a dask
    array computed from something else) is hashed by value, block by block.

    Parameters
    ----------
    array : ndarray, zarr.Array or dask.array.Array
    source : path, optional
        The file or folder the chunked array was read from.

    Returns
    -------
    str
        32 hex digits; a chunked array's starts with ``files:``.
    """
    if not isinstance(array, np.ndarray) and hasattr(array, "chunks"):
        folder = source if source is not None and Path(source).exists() \
            else _zarr_folder(array)
        if folder is not None:
            return files_fingerprint(array, folder)
        return _blockwise_fingerprint(array)
    array = np.ascontiguousarray(array)
    if array.dtype.kind in "biu" and array.size:
        top = int(array.max())
        dtype = np.uint16 if top <= 0xFFFF else np.uint32 if top <= 0xFFFFFFFF else np.uint64
        array = array.astype(dtype, copy=False)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(array.shape).encode())
    digest.update(array.data)
    return digest.hexdigest()


def files_fingerprint(array, source: str | os.PathLike) -> str:
    """A digest of a chunked array's shape, dtype, chunks and its files' names, sizes, mtimes.

    Its files are ``source`` itself, or every file under the folder
    ``source``. Nothing is read but the folder listing and one ``stat`` per
    file: seconds for a store of a million chunks, where hashing the values
    would read the whole volume. Any chunk or metadata rewritten changes an
    mtime (zarr writes a new file and renames it), so a changed mask is never
    taken for the one a review or a cached overlap table was made of; a copy
    of the store (new mtimes) is taken for another mask (refused, never
    silently wrong).

    Returns
    -------
    str
        ``files:`` and 32 hex digits.
    """
    digest = hashlib.blake2b(digest_size=16)
    chunks = getattr(array, "chunks", None)
    digest.update(repr((tuple(array.shape), str(np.dtype(array.dtype)), chunks)).encode())
    root = Path(source)
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in paths:
        info = path.stat()
        digest.update(f"{path.relative_to(root).as_posix() if path != root else ''}\0"
                      f"{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return "files:" + digest.hexdigest()


def _zarr_folder(array) -> Path | None:
    """The local folder of a zarr array, None for another array or store."""
    root = getattr(getattr(array, "store", None), "root", None)
    if root is None or not hasattr(array, "path"):
        return None
    folder = Path(root) / array.path
    return folder if folder.is_dir() else None


def _blockwise_fingerprint(array) -> str:
    """A value digest of a chunked array read block by block, in order (one pass)."""
    if not hasattr(array, "numblocks"):  # e.g. zarr on a remote store: through dask
        import dask.array as da

        array = da.from_array(array, chunks=getattr(array, "shards", None) or array.chunks)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(tuple(array.shape)).encode())
    for index in np.ndindex(*array.numblocks):
        block = np.ascontiguousarray(np.asarray(array.blocks[index]))
        digest.update(block.astype(np.uint64, copy=False).data)
    return "values:" + digest.hexdigest()


def journal_path(output: str | os.PathLike) -> Path:
    """The journal beside an output: ``cells.tif`` or ``.zarr`` -> ``cells.journal.jsonl``."""
    return _files.sidecar(output, ".journal.jsonl")


# --------------------------------------------------------------------------- edits


def encode_mask(mask: np.ndarray) -> str:
    """A boolean array as text: packed bits, zlib, base64 (its shape is the box's).

    >>> m = np.array([[True, False], [False, True]])
    >>> np.array_equal(decode_mask(encode_mask(m), m.shape), m)
    True
    """
    return base64.b64encode(zlib.compress(np.packbits(mask, axis=None).tobytes())).decode()


def decode_mask(text: str, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`encode_mask`."""
    bits = np.frombuffer(zlib.decompress(base64.b64decode(text, validate=True)), np.uint8)
    n = int(np.prod(shape))
    if bits.size != (n + 7) // 8:
        raise ValueError(f"mask holds {bits.size * 8} bits, box {shape} needs {n}")
    return np.unpackbits(bits, count=n).astype(bool).reshape(shape)


# --------------------------------------------------------------------------- checking


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_op(op) -> dict:
    """Check that ``op`` is a well-formed operation (types, ranges); return it.

    Raises
    ------
    ValueError
        What is wrong, in words.
    """
    if not isinstance(op, dict):
        raise ValueError(f"expected an object with an \"op\", got {type(op).__name__}")
    kind = op.get("op")
    if kind in ("undo", "finish"):
        return op
    if kind == "decide":
        if not _is_int(op.get("group")) or op["group"] < 0:
            raise ValueError(f"\"group\" must be an index >= 0, got {op.get('group')!r}")
        if op.get("choice") not in CHOICES:
            raise ValueError(f"\"choice\" must be one of {CHOICES}, got {op.get('choice')!r}")
        ids = op.get("ids")
        if not (isinstance(ids, list) and len(ids) == 2
                and all(isinstance(side, list) and all(map(_is_int, side)) for side in ids)):
            raise ValueError(f"\"ids\" must be [[A ids], [B ids]], got {ids!r}")
        return op
    if kind == "pick":
        if not _is_int(op.get("group")) or op["group"] < 0:
            raise ValueError(f"\"group\" must be an index >= 0, got {op.get('group')!r}")
        if op.get("side") not in ("A", "B") or not _is_int(op.get("id")) or op["id"] < 1:
            raise ValueError(f"a pick needs \"side\" A or B and an \"id\" >= 1, got "
                             f"{op.get('side')!r} {op.get('id')!r}")
        return op
    if kind == "edit":
        pieces = op.get("pieces")
        if not isinstance(pieces, list) or not pieces:
            raise ValueError("\"pieces\" must be a non-empty list")
        for piece in pieces:
            _check_piece(piece)
        return op
    raise ValueError(f"unknown operation {kind!r}")


def _check_piece(piece) -> None:
    if not isinstance(piece, dict):
        raise ValueError(f"an edit piece must be an object, got {type(piece).__name__}")
    box = piece.get("box")
    if not (isinstance(box, list) and len(box) in (2, 3) and all(
            isinstance(r, list) and len(r) == 2 and all(map(_is_int, r)) and 0 <= r[0] < r[1]
            for r in box)):
        raise ValueError(f"an edit's \"box\" must be [[start, stop], ...], got {box!r}")
    if not _is_int(piece.get("value")) or piece["value"] < 0:
        raise ValueError(f"an edit's \"value\" must be an id >= 0, got {piece.get('value')!r}")
    mask = piece.get("mask")
    if mask is not None:
        if not isinstance(mask, str):
            raise ValueError("an edit's \"mask\" must be text or null")
        try:
            decode_mask(mask, tuple(stop - start for start, stop in box))
        except (ValueError, zlib.error) as err:
            raise ValueError(f"an edit's \"mask\" is damaged ({err})") from None


# --------------------------------------------------------------------------- the file


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
    torn : int
        Bytes of an incomplete last line (a write cut short); :meth:`repair`
        removes them.
    """

    path: Path
    header: dict
    ops: list = field(default_factory=list)
    torn: int = 0

    @classmethod
    def create(cls, path: str | os.PathLike, header: dict) -> Journal:
        """Start a journal (atomically: it exists whole or not at all)."""
        path = Path(path)
        header = {"format": FORMAT, "version": VERSION,
                  "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **header}
        _files.atomic_write_bytes(path, (json.dumps(header) + "\n").encode())
        return cls(path, header, [])

    @classmethod
    def read(cls, path: str | os.PathLike) -> Journal:
        """Read and check a journal without changing the file.

        Raises
        ------
        InputError
            Not a journal of this package, or a complete line that is not a
            well-formed operation (named by its number).
        """
        path = Path(path)
        if path.is_dir():
            raise InputError(f"{path}: is a folder, expected a review journal; move it away")
        if path.is_symlink() or not path.is_file() or path.stat().st_nlink > 1:
            raise InputError(f"{path}: is a link or not a regular file; a review's journal is "
                             "its own file (one writer per journal): move it away")
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise InputError(f"{path}: cannot be read ({err.strerror})") from err
        lines = raw.split(b"\n")
        complete, tail = lines[:-1], lines[-1]
        header = _header(complete[0] if complete else b"")
        if header is None:
            raise InputError(f"{path}: not a napari-mask-compare journal; move it away to "
                             "start over")
        ops = []
        for number, line in enumerate(complete[1:], start=2):
            try:
                ops.append(check_op(json.loads(line)))
            except (ValueError, RecursionError) as err:
                raise InputError(f"{path}: line {number} is damaged ({err}); move the journal "
                                 "away to start over") from None
        return cls(path, header, ops, len(tail))

    def repair(self) -> int:
        """Cut an incomplete last line (the action in flight when a write failed).

        Returns
        -------
        int
            Bytes cut.
        """
        if not self.torn:
            return 0
        size = self.path.stat().st_size
        try:
            os.truncate(self.path, size - self.torn)
        except OSError as err:
            raise _files.write_error(self.path, err, doing="cannot cut its torn tail") from err
        cut, self.torn = self.torn, 0
        return cut

    def append(self, op: dict) -> None:
        """Add one action: written and flushed, so that a killed process loses nothing.

        If the write fails (a full disk), what was written of the line is cut
        off again and :class:`._files.WriteError` is raised: the file ends
        with a whole line, and the action is not recorded. Call :meth:`sync`
        to make it durable across a power cut.
        """
        line = (json.dumps(check_op(op)) + "\n").encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as err:
            raise _files.write_error(self.path, err) from err
        try:
            size = os.fstat(fd).st_size
            try:
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(28, os.strerror(28))  # a short write: the disk is full
            except OSError as err:
                _cut_back(fd, size)
                raise _files.write_error(self.path, err) from err
        finally:
            os.close(fd)
        self.ops.append(op)

    def sync(self) -> None:
        """fsync what :meth:`append` wrote."""
        try:
            _files.fsync_path(self.path)
        except OSError as err:
            raise _files.write_error(self.path, err, doing="cannot be synced to disk") from err


def _header(line: bytes) -> dict | None:
    try:
        header = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(header, dict) or header.get("format") != FORMAT \
            or header.get("version") != VERSION:
        return None
    inputs = header.get("inputs")
    if not isinstance(inputs, dict) or not all(
            isinstance(inputs.get(key), dict) for key in ("mask_a", "mask_b")) \
            or not isinstance(header.get("params", {}), dict):
        return None
    return header


def _cut_back(fd: int, size: int) -> None:
    """Remove a partly written line (truncating needs no free space)."""
    try:
        os.ftruncate(fd, size)
    except OSError:
        pass
