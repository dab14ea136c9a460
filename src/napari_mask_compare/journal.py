"""The journal file format: a header line, then one JSON line per review action.

This module knows the format and nothing else (no session, no threads): it
creates a journal, reads one back (checking every line before anything is
changed), cuts a torn tail, appends a line so that the file never holds half
a line after a failure, and turns a version-1 journal into a version-2 one.
:mod:`.review` decides when.

Version 2 (written by new reviews since the thin widget) is designed for what
comes next: rules deciding many groups in one action, time-lapse masks, more
than two masks, blind review. Its header::

    {"format": "napari-mask-compare journal", "version": 2, "created": "<UTC time>",
     "sources": [{"key": "A", "name": "a.tif", "fingerprint": "..."},
                 {"key": "B", "name": "b.tif", "fingerprint": "..."}],
     "axes": "yx" | "zyx" | "tyx" | "tzyx",
     "params": {"iou_threshold": 0.1},
     "options": {"blind": false}}

``sources`` are the masks compared, k >= 2 of them keyed ``A``, ``B``, ``C``...
in order (at most 12: the letters before ``M``, a choice); A is the
reference. ``axes`` name the axes of the masks (``t`` is time, never depth).
``options`` are fixed when the review is created: ``"blind": true`` comes
with ``"seed"`` (an int), and group g is shown with its sides swapped when
:func:`blind_swapped` says so (the shuffle is recorded by its seed; decisions
and picks are stored by source, whatever the screen showed).

Operations (``"op"``), each one user action (one ``U`` undoes it):

========== ============================================================
``decide`` ``group`` (index), ``choice`` (a source key, ``M`` the union of
           all, ``N`` skip), ``ids`` keyed by source: ``{"A": [ids], "B": [ids]}``
``undo``   take back the last action
``finish`` add every undecided unpaired group ("Auto")
``pick``   ``group``, ``side`` (a source key), ``id``: toggle that object in or out
``edit``   ``pieces``: voxels set by hand, each ``{"box": [[start, stop], ...]``
           (one pair per axis: 2 to 4), ``"mask": <packed bits, zlib, base64>``
           or null (the whole box), ``"value": new id}``
``bulk``   many groups decided at once (a rule): ``groups`` maps each choice to
           the groups it decided, packed (:func:`pack_groups`: sorted,
           delta-encoded, little-endian uint32, zlib, base64); ``n`` how many
           in all; ``rule`` the rule's text. Groups already decided when it
           was made are never in it.
========== ============================================================

A group is the review's group by its index (a track group, in a time-lapse
review). A ``bulk`` holds the choices as they were resolved when the rule was
applied (a rule's "larger" is A for some groups and B for others), never the
rule to evaluate again: replaying it gives the same output whatever a later
install makes of the rule's words.

Version 1 (reviews started before) has ``"inputs": {"mask_a": {"name",
"fingerprint"}, "mask_b": {...}}`` instead of ``sources`` (and no ``axes``
nor ``options``), decisions' ``ids`` as ``[[A ids], [B ids]]``, no ``bulk``,
boxes of 2 or 3 axes. It is read as it is (both forms of ``ids`` are read in
either version; in memory an operation is always in the version-2 form). A
version-1 journal stays version 1 while its actions fit it (lines are
written in its form, so that an older install can still resume it); the
first action it cannot hold (a ``bulk``) makes it version 2 first
(:meth:`Journal.upgrade`: the header replaced and every line kept, in one
atomic rewrite). A journal of a newer version than this install reads is
refused as such, never as damaged.

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
from .errors import InputError

__all__ = ["AXES", "FORMAT", "VERSION", "Journal", "blind_swapped", "bulk_op", "check_op",
           "decode_mask", "default_axes", "encode_mask", "files_fingerprint", "fingerprint",
           "header", "ids_by_source", "journal_path", "pack_groups", "unpack_groups"]

FORMAT = "napari-mask-compare journal"
#: The version new journals are written in; versions 1 to VERSION are read.
VERSION = 2
#: Keys of the sources in order (the letters before M, which is a choice).
SOURCE_KEYS = "ABCDEFGHIJKL"
#: Names of the masks' axes a version-2 header may give.
AXES = ("yx", "zyx", "tyx", "tzyx")
#: Choices besides a source's key: the union of all objects, skip.
OTHER_CHOICES = ("M", "N")
#: Operations a version-1 journal can hold.
_V1_OPS = ("decide", "undo", "finish", "pick", "edit")


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


# --------------------------------------------------------------------------- groups


def pack_groups(groups) -> str:
    """Group indices as text: sorted, delta-encoded, little-endian uint32, zlib, base64.

    Compact for the many groups of a rule (100,000 groups a few apart: ~60 kB).

    >>> unpack_groups(pack_groups([7, 3, 4])).tolist()
    [3, 4, 7]
    """
    indices = np.unique(np.asarray(groups, dtype=np.int64))
    if indices.size and (indices[0] < 0 or indices[-1] > 0xFFFFFFFF):
        raise ValueError("group indices must be in 0..2**32 - 1")
    deltas = np.diff(indices, prepend=0).astype("<u4")
    return base64.b64encode(zlib.compress(deltas.tobytes(), 9)).decode()


def unpack_groups(text: str) -> np.ndarray:
    """Inverse of :func:`pack_groups`: the group indices, increasing, int64."""
    raw = zlib.decompress(base64.b64decode(text, validate=True))
    if len(raw) % 4:
        raise ValueError(f"packed groups hold {len(raw)} bytes, not whole uint32s")
    indices = np.cumsum(np.frombuffer(raw, dtype="<u4").astype(np.int64))
    if indices.size > 1 and not (np.diff(indices) > 0).all():
        raise ValueError("packed groups repeat a group")
    return indices


def blind_swapped(options: dict, group: int) -> bool:
    """True when a blind review shows group ``group`` with its sides swapped.

    A function of the header's ``seed`` and the group alone, so that the
    shuffle is recorded by the seed (bit 0 of the BLAKE2b digest of
    ``"<seed>:<group>"``). False when the review is not blind.

    >>> blind_swapped({"blind": False}, 3)
    False
    >>> [blind_swapped({"blind": True, "seed": 7}, g) for g in range(6)]
    [True, True, False, False, True, False]
    """
    if not options.get("blind"):
        return False
    digest = hashlib.blake2b(f"{options['seed']}:{int(group)}".encode(), digest_size=8)
    return bool(digest.digest()[0] & 1)


# --------------------------------------------------------------------------- checking


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _index(op: dict, key: str) -> None:
    if not _is_int(op.get(key)) or op[key] < 0:
        raise ValueError(f"\"{key}\" must be an index >= 0, got {op.get(key)!r}")


def check_op(op, *, keys: str = "AB") -> dict:
    """Check that ``op`` is a well-formed operation (types, ranges); return it, in memory form.

    Parameters
    ----------
    op : object
        A line of a journal, parsed.
    keys : str
        The keys of the review's sources (choices and sides).

    Returns
    -------
    dict
        ``op``, a decision's ``ids`` keyed by source (the form version 1 wrote,
        ``[[A ids], [B ids]]``, is read too).

    Raises
    ------
    ValueError
        What is wrong, in words.
    """
    if not isinstance(op, dict):
        raise ValueError(f"expected an object with an \"op\", got {type(op).__name__}")
    kind = op.get("op")
    choices = (*keys, *OTHER_CHOICES)
    if kind in ("undo", "finish"):
        return op
    if kind == "decide":
        _index(op, "group")
        if op.get("choice") not in choices:
            raise ValueError(f"\"choice\" must be one of {choices}, got {op.get('choice')!r}")
        return {**op, "ids": ids_by_source(op.get("ids"), keys=keys)}
    if kind == "pick":
        _index(op, "group")
        if op.get("side") not in tuple(keys) or not _is_int(op.get("id")) or op["id"] < 1:
            raise ValueError(f"a pick needs \"side\" one of {tuple(keys)} and an \"id\" >= 1, "
                             f"got {op.get('side')!r} {op.get('id')!r}")
        return op
    if kind == "edit":
        pieces = op.get("pieces")
        if not isinstance(pieces, list) or not pieces:
            raise ValueError("\"pieces\" must be a non-empty list")
        for piece in pieces:
            _check_piece(piece)
        return op
    if kind == "bulk":
        _check_bulk(op, choices=choices)
        return op
    raise ValueError(f"unknown operation {kind!r}")


def ids_by_source(ids, *, keys: str = "AB") -> dict[str, list[int]]:
    """A decision's object ids keyed by source, from either form.

    >>> ids_by_source([[1], [11, 12]])
    {'A': [1], 'B': [11, 12]}
    >>> ids_by_source({"A": [], "B": [3]})
    {'A': [], 'B': [3]}
    """
    def ints(side):
        return isinstance(side, list) and all(map(_is_int, side))

    if isinstance(ids, list) and len(ids) == len(keys) and all(map(ints, ids)):
        return dict(zip(keys, ids))
    if isinstance(ids, dict) and sorted(ids) == sorted(keys) and all(map(ints, ids.values())):
        return {key: ids[key] for key in keys}
    raise ValueError(f"\"ids\" must be {{{', '.join(f'{k!r}: [ids]' for k in keys)}}}, "
                     f"got {ids!r}")


def _check_piece(piece) -> None:
    if not isinstance(piece, dict):
        raise ValueError(f"an edit piece must be an object, got {type(piece).__name__}")
    box = piece.get("box")
    if not (isinstance(box, list) and len(box) in (2, 3, 4) and all(
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


def _check_bulk(op: dict, *, choices: tuple[str, ...]) -> None:
    groups = op.get("groups")
    if not isinstance(groups, dict) or not groups or not set(groups) <= set(choices) \
            or not all(isinstance(text, str) for text in groups.values()):
        raise ValueError(f"a bulk's \"groups\" must map choices {choices} to packed "
                         f"groups, got {groups!r}")
    if not isinstance(op.get("rule"), str):
        raise ValueError(f"a bulk's \"rule\" must be its text, got {op.get('rule')!r}")
    try:
        decided = [unpack_groups(text) for text in groups.values()]
    except (ValueError, zlib.error) as err:
        raise ValueError(f"a bulk's \"groups\" are damaged ({err})") from None
    n = sum(len(g) for g in decided)
    if not _is_int(op.get("n")) or op["n"] != n or n == 0:
        raise ValueError(f"a bulk's \"n\" must count its {n} groups, got {op.get('n')!r}")
    if np.unique(np.concatenate(decided)).size != n:
        raise ValueError("a bulk decides a group twice")


def bulk_op(groups: dict, *, rule: str) -> dict:
    """The ``bulk`` operation of a rule: ``groups`` maps each choice to its group indices.

    >>> op = bulk_op({"A": [5, 2], "N": [9]}, rule="match iou>=0.75: a")
    >>> op["n"], unpack_groups(op["groups"]["A"]).tolist()
    (3, [2, 5])
    """
    packed = {choice: pack_groups(indices) for choice, indices in groups.items()
              if len(indices)}
    n = sum(len(unpack_groups(text)) for text in packed.values())
    return {"op": "bulk", "groups": packed, "n": n, "rule": str(rule)}


# --------------------------------------------------------------------------- the header


def default_axes(ndim: int) -> str:
    """The axes of masks without metadata: ``yx`` in 2D, ``zyx`` in 3D."""
    return {2: "yx", 3: "zyx"}[ndim]


def header(*, sources, axes: str, params: dict, options: dict | None = None) -> dict:
    """The fields of a version-2 header (:meth:`Journal.create` adds format, version, time).

    Parameters
    ----------
    sources : sequence of (name, fingerprint)
        The masks, in order: keyed A, B, C...
    axes : str
        One of :data:`AXES`.
    params : dict
    options : dict, optional
        Fixed at creation; ``{"blind": False}`` by default.
    """
    if not 2 <= len(sources) <= len(SOURCE_KEYS):
        raise ValueError(f"a review compares 2 to {len(SOURCE_KEYS)} masks, got {len(sources)}")
    if axes not in AXES:
        raise ValueError(f"axes must be one of {AXES}, got {axes!r}")
    return {
        "sources": [{"key": key, "name": str(name), "fingerprint": str(print_)}
                    for key, (name, print_) in zip(SOURCE_KEYS, sources)],
        "axes": axes, "params": dict(params), "options": dict(options or {"blind": False}),
    }


def _check_header(line: bytes, path: Path) -> dict:
    """The header of a journal of a version this install reads (else InputError)."""
    try:
        first = json.loads(line)
    except (ValueError, RecursionError):
        first = None
    if not isinstance(first, dict) or first.get("format") != FORMAT:
        raise InputError(f"{path}: not a napari-mask-compare journal; move it away to "
                         "start over")
    version = first.get("version")
    if _is_int(version) and version > VERSION:
        raise InputError(f"{path}: written by a newer version of napari-mask-compare (journal "
                         f"version {version}; this install reads versions 1-{VERSION}); "
                         "upgrade to resume it")
    well_formed = {1: _v1_header_ok, 2: _v2_header_ok}.get(version)
    if well_formed is None or not well_formed(first):
        raise InputError(f"{path}: not a napari-mask-compare journal (its header is "
                         "damaged); move it away to start over")
    return first


def _v1_header_ok(first: dict) -> bool:
    inputs = first.get("inputs")
    return isinstance(inputs, dict) and all(
        isinstance(inputs.get(key), dict) for key in ("mask_a", "mask_b")) \
        and isinstance(first.get("params", {}), dict)


def _v2_header_ok(first: dict) -> bool:
    sources, options = first.get("sources"), first.get("options")
    return (isinstance(sources, list) and 2 <= len(sources) <= len(SOURCE_KEYS)
            and [s.get("key") if isinstance(s, dict) else None for s in sources]
            == list(SOURCE_KEYS[:len(sources)])
            and all(isinstance(s.get("fingerprint"), str) for s in sources)
            and first.get("axes") in AXES and isinstance(first.get("params"), dict)
            and isinstance(options, dict) and isinstance(options.get("blind"), bool)
            and (not options["blind"] or _is_int(options.get("seed"))))


# --------------------------------------------------------------------------- the file


@dataclass
class Journal:
    """An append-only JSON-lines file: a header, then one line per action.

    Attributes
    ----------
    path : Path
    header : dict
        As written (see the module's notes): version, sources, parameters...
    ops : list of dict
        The actions read back (on open) or appended since, in memory form
        (see :func:`check_op`).
    torn : int
        Bytes of an incomplete last line (a write cut short); :meth:`repair`
        removes them.
    """

    path: Path
    header: dict
    ops: list = field(default_factory=list)
    torn: int = 0
    _last_line_at: int | None = field(default=None, repr=False)  # see take_back_last

    @property
    def version(self) -> int:
        return self.header["version"]

    @property
    def sources(self) -> list[dict]:
        """``[{"key": "A", "name": ..., "fingerprint": ...}, ...]``, whatever the version."""
        if self.version >= 2:
            return self.header["sources"]
        inputs = self.header["inputs"]
        return [{"key": key, "name": str(inputs[name].get("name", "?")),
                 "fingerprint": inputs[name].get("fingerprint")}
                for key, name in (("A", "mask_a"), ("B", "mask_b"))]

    @property
    def params(self) -> dict:
        return self.header.get("params", {})

    @property
    def options(self) -> dict:
        """Fixed at creation (version 1: none, so not blind)."""
        return self.header.get("options", {"blind": False})

    @property
    def axes(self) -> str | None:
        """The masks' axes (None for version 1, which did not say)."""
        return self.header.get("axes")

    @property
    def _keys(self) -> str:
        return "".join(source["key"] for source in self.sources)

    @classmethod
    def create(cls, path: str | os.PathLike, fields: dict) -> Journal:
        """Start a journal of the current version (atomically: whole or not at all).

        ``fields``: see :func:`header`.
        """
        path = Path(path)
        header = {"format": FORMAT, "version": VERSION, "created": _now(), **fields}
        _files.atomic_write_bytes(path, (json.dumps(header) + "\n").encode())
        return cls(path, header, [])

    @classmethod
    def read(cls, path: str | os.PathLike) -> Journal:
        """Read and check a journal without changing the file.

        Raises
        ------
        InputError
            Not a journal of this package, a journal of a newer version, or a
            complete line that is not a well-formed operation (named by its
            number).
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
        journal = cls(path, _check_header(complete[0] if complete else b"", path), [], len(tail))
        keys = journal._keys
        for number, line in enumerate(complete[1:], start=2):
            try:
                op = check_op(json.loads(line), keys=keys)
                if not journal.holds(op):
                    raise ValueError(f"a version-{journal.version} journal holds no "
                                     f"{op['op']!r}")
            except (ValueError, RecursionError) as err:
                raise InputError(f"{path}: line {number} is damaged ({err}); move the journal "
                                 "away to start over") from None
            journal.ops.append(op)
        return journal

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

    def holds(self, op: dict) -> bool:
        """True when this journal's version can record ``op`` (version 1: no ``bulk``)."""
        return self.version >= 2 or op["op"] in _V1_OPS

    def upgrade(self, *, axes: str) -> None:
        """Make a version-1 journal version 2, before an action version 1 cannot hold.

        The header is replaced (its inputs become sources, ``axes`` added,
        ``created`` kept, ``upgraded_from`` 1) and every line is kept byte for
        byte, in one atomic rewrite: the file is the old one or the new one,
        never half of either. Nothing for a version-2 journal.

        Raises
        ------
        WriteError
            The new file could not be written (the old one is untouched).
        """
        if self.version >= 2:
            return
        self.repair()
        fields = header(sources=[(s["name"], s["fingerprint"]) for s in self.sources],
                        axes=axes, params=self.params)
        new = {"format": FORMAT, "version": VERSION,
               "created": self.header.get("created", _now()), **fields, "upgraded_from": 1}
        lines = self.path.read_bytes().partition(b"\n")[2]
        try:
            _files.atomic_write_bytes(self.path, (json.dumps(new) + "\n").encode() + lines)
        except OSError as err:
            raise _files.write_error(self.path, err, doing="cannot be made version 2") from err
        self.header = new

    def append(self, op: dict) -> None:
        """Add one action: written and flushed, so that a killed process loses nothing.

        Written in this journal's version (a version-1 journal gets a
        decision's ids as ``[[A ids], [B ids]]``); an action the version
        cannot hold is refused (:meth:`upgrade` first). If the write fails (a
        full disk), what was written of the line is cut off again and
        :class:`._files.WriteError` is raised: the file ends with a whole
        line, and the action is not recorded. Call :meth:`sync` to make it
        durable across a power cut.
        """
        op = check_op(op, keys=self._keys)
        if not self.holds(op):
            raise ValueError(f"{self.path}: a version-{self.version} journal cannot hold "
                             f"{op['op']!r}: upgrade it first")
        record = {**op, "ids": list(op["ids"].values())} \
            if self.version == 1 and op["op"] == "decide" else op
        line = (json.dumps(record) + "\n").encode()
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
        self._last_line_at = size

    def take_back_last(self) -> None:
        """Remove the line that :meth:`append` wrote last: its action could not be applied
        (e.g. a chunk it reads cannot be read). Truncating needs no free space.

        Raises
        ------
        WriteError
            The file could not be cut (it then still holds the line).
        """
        if self._last_line_at is None:
            raise ValueError(f"{self.path}: no line appended to take back")
        try:
            os.truncate(self.path, self._last_line_at)
        except OSError as err:
            raise _files.write_error(self.path, err, doing="cannot take its last line back") \
                from err
        self.ops.pop()
        self._last_line_at = None

    def sync(self) -> None:
        """fsync what :meth:`append` wrote."""
        try:
            _files.fsync_path(self.path)
        except OSError as err:
            raise _files.write_error(self.path, err, doing="cannot be synced to disk") from err


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _cut_back(fd: int, size: int) -> None:
    """Remove a partly written line (truncating needs no free space)."""
    try:
        os.ftruncate(fd, size)
    except OSError:
        pass
