"""What the categories of the attack share.

- :class:`Violation` (what was done, what was promised, what happened) and
  :class:`Outcome` (one category's figures);
- :class:`Workspace`: the temporary folders, the processes started and the
  tmpfs mounted, all removed, killed and unmounted by :meth:`Workspace.cleanup`;
- :func:`run_cli`: the installed ``mask-compare`` in a process of its own;
- the checkers of the promises: :func:`one_line_refusal`, :func:`snapshot` and
  :func:`changes` (nothing written, nothing touched), :func:`quiet_stderr`;
- the masks (:func:`masks`) and the references: :func:`reference_merge` (the
  package's in-memory merge of arrays read by tifffile, zarr, h5py or numpy:
  what is under test is the reading and the writing, not the merge) and
  :func:`read_output` (an output read back by its format's own library).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

#: The command under test: the installed script (it honours PYTHONPATH), else the module.
MASK_COMPARE = ([shutil.which("mask-compare")] if shutil.which("mask-compare")
                else [sys.executable, "-m", "napari_mask_compare.cli"])

logging.getLogger("tifffile").setLevel(logging.CRITICAL)  # a damaged file is said once, here

#: A progress bar of the package on stderr (engine._draw_text): not a message.
_PROGRESS = re.compile(r"\[[# ]*\] \| \d+% \|")


# --------------------------------------------------------------------------- results


@dataclass
class Violation:
    """A promise that did not hold.

    ``point`` is the number of the point of issue 17 that the case attacks
    (None: a finding that the issue does not list).
    """

    case: str
    did: str
    promised: str
    happened: str
    point: int | None = None

    def line(self) -> str:
        tag = f"[#{self.point}]" if self.point else "[new]"
        return (f"{tag} {self.case}: did {self.did}; promised {self.promised}; "
                f"happened {self.happened}")


@dataclass
class Outcome:
    """One category's figures: cases run, kills, violations, notes, and a log per case."""

    name: str
    cases: int = 0
    kills: int = 0
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    log: list[dict] = field(default_factory=list)
    skipped: str | None = None
    seconds: float = 0.0

    def check(self, case: str, happened: str | None, *, did: str, promised: str,
              point: int | None = None) -> bool:
        """Count a checked promise; record a violation when ``happened`` says what went
        wrong (None: it held). Returns True when it held."""
        if happened is None:
            return True
        self.violations.append(Violation(case, did, promised, happened, point))
        return False

    def as_dict(self) -> dict:
        return {**asdict(self), "violations": [asdict(v) for v in self.violations]}


# --------------------------------------------------------------------------- workspace


class Workspace:
    """Temporary folders, processes and mounts of the attack, cleaned up at the end.

    Every process is started in a session of its own, so that killing it with
    :meth:`kill` also ends what it started (a LocalCluster's workers).
    """

    def __init__(self, *, keep: bool = False):
        self.root = Path(tempfile.mkdtemp(prefix="mask-compare-attack-"))
        self.keep = keep
        self.processes: list[subprocess.Popen] = []
        self.mounts: list[Path] = []

    def folder(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start(self, cmd, **options) -> subprocess.Popen:
        process = subprocess.Popen(cmd, start_new_session=True, **options)
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen, *, group: bool = True) -> None:
        """SIGKILL ``process`` (and with ``group`` every process of its session) and reap it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(process.pid, signal.SIGKILL)
        if group:
            kill_group(process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)

    def mount_tmpfs(self, folder: Path, *, size_kib: int) -> str | None:
        """Mount a tmpfs of ``size_kib`` on ``folder``; the reason why not, or None."""
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            return "mounting a tmpfs needs root"
        try:
            result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs",
                                     str(folder)], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"cannot run mount ({err})"
        if result.returncode != 0:
            return f"mount refused ({result.stderr.strip() or result.returncode})"
        self.mounts.append(folder)
        return None

    def unmount(self, folder: Path) -> None:
        if folder in self.mounts:
            if subprocess.run(["umount", str(folder)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(folder)], capture_output=True)
            self.mounts.remove(folder)

    def cleanup(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                self.kill(process)
        for folder in list(self.mounts):
            self.unmount(folder)
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


# --------------------------------------------------------------------------- the command


@dataclass
class Run:
    """One finished (or timed out) run of the command line."""

    args: list[str]
    status: int | None
    stdout: str
    stderr: str
    seconds: float

    @property
    def command(self) -> str:
        return "mask-compare " + " ".join(self.args)


def run_cli(args, *, cwd: Path, timeout: float = 180.0) -> Run:
    """Run ``mask-compare *args`` in ``cwd``; status None when it ran out of ``timeout``
    (it is then killed with everything it started)."""
    args = [str(a) for a in args]
    start = time.monotonic()
    process = subprocess.Popen([*MASK_COMPARE, *args], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
        status = process.returncode
    except subprocess.TimeoutExpired:
        kill_group(process.pid)
        out, err = process.communicate()
        status = None
    kill_group(process.pid)  # a LocalCluster's worker left behind
    return Run(args, status, out, err, time.monotonic() - start)


def stderr_lines(text: str) -> list[str]:
    """The message lines of stderr: progress bars (redrawn with ``\\r``) left out."""
    lines = []
    for raw in text.split("\n"):
        line = raw.rsplit("\r", 1)[-1].strip()
        if line and not _PROGRESS.search(line):
            lines.append(line)
    return lines


def describe(run: Run) -> str:
    """What a run did, in a few words: its status and the start of its stderr."""
    if run.status is None:
        return f"no answer within {run.seconds:.0f} s (killed)"
    lines = stderr_lines(run.stderr)
    trace = " with a traceback" if "Traceback (most recent call last)" in run.stderr else ""
    first = f": {shorten(lines[-1] if trace else lines[0])}" if lines else ""
    return f"exit {run.status}{trace}, {len(lines)} stderr line(s){first}"


def shorten(text: str, most: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= most else text[:most - 3] + "..."


# --------------------------------------------------------------------------- checkers


def one_line_refusal(run: Run, *, names=()) -> str | None:
    """The refusal promise: exit 2, exactly one line on stderr, naming one of ``names``
    (a file, an option), no traceback. None when it holds, else what happened."""
    lines = stderr_lines(run.stderr)
    if run.status != 2 or len(lines) != 1 or "Traceback" in run.stderr:
        return describe(run)
    if names and not any(str(name) in lines[0] for name in names):
        return f"the line names none of {', '.join(map(str, names))}: {shorten(lines[0])}"
    return None


def quiet_stderr(run: Run, *, allowed=()) -> str | None:
    """No message on stderr but lines matching one of the ``allowed`` patterns."""
    extra = [line for line in stderr_lines(run.stderr)
             if not any(re.search(pattern, line) for pattern in allowed)]
    if extra:
        return f"{len(extra)} stderr line(s): {shorten(extra[0])}"
    return None


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder``: a file's size and digest, a folder, a link's target."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder)
            if os.path.islink(path):
                found[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                found[rel] = ("folder",)
            else:
                found[rel] = ("file", digest(path))
    return found


def digest(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()


def changes(before: dict, after: dict, *, ignore=()) -> str | None:
    """What changed between two snapshots (None: nothing), entries named in ``ignore``
    (and what lies in them) left out."""
    def kept(rel):
        return not any(rel == i or rel.startswith(i + os.sep) for i in ignore)

    added = sorted(r for r in after if r not in before and kept(r))
    removed = sorted(r for r in before if r not in after and kept(r))
    changed = sorted(r for r in before if r in after and before[r] != after[r] and kept(r))
    words = [f"{label} {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
             for label, names in (("added", added), ("removed", removed),
                                  ("changed", changed)) if names]
    return "; ".join(words) or None


# --------------------------------------------------------------------------- masks


def masks(rng: np.random.Generator, shape, *, n: int = 12, top: int = 60000):
    """Two masks of one image: A of ``n`` boxes with random ids in 1..``top``, B the same
    boxes moved by a voxel, one split in two, one dropped, one added (uint32)."""
    a = np.zeros(shape, np.uint32)
    b = np.zeros(shape, np.uint32)
    ids = rng.choice(np.arange(1, top + 1), size=n + 3, replace=False)
    for k in range(n):
        box = _box(rng, shape)
        a[box] = ids[k]
        if k == 1:
            continue  # dropped from B
        moved = tuple(slice(s.start + 1, s.stop + 1) if i == len(shape) - 1 else s
                      for i, s in enumerate(box))
        b[moved] = ids[k] + 7 if ids[k] + 7 <= top else ids[k]
        if k == 2:  # split: the right half gets its own id
            half = (moved[-1].start + moved[-1].stop) // 2
            b[(*moved[:-1], slice(half, moved[-1].stop))] = ids[n]
    b[_box(rng, shape)] = ids[n + 1]  # only in B
    return a, b


def _box(rng, shape) -> tuple[slice, ...]:
    box = []
    for size in shape:
        length = int(rng.integers(2, max(3, size // 3)))
        start = int(rng.integers(0, size - length - 1))
        box.append(slice(start, start + length))
    return tuple(box)


def reference_merge(a, b, *, policy: str = "a", classes_a=None, classes_b=None):
    """The merge of arrays read by the reference libraries: (labels, classes or None)."""
    from napari_mask_compare.merging import merge_masks

    merged, classes, _ = merge_masks(_ids(a), _ids(b), policy=policy, classes_a=_ids(classes_a),
                                     classes_b=_ids(classes_b))
    return np.asarray(merged), None if classes is None else np.asarray(classes)


def _ids(array):
    """Ids as merge_masks takes them: native byte order, integral floats and bools as uint32."""
    if array is None:
        return None
    array = np.asarray(array)
    if array.dtype.kind in "fb":
        return array.astype(np.uint32)
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def read_output(path: Path):
    """An output read back by its format's own library, chosen by its bytes (not its name).

    Returns
    -------
    format : str
        "tiff", "npy", "png", "zarr" (OME-Zarr labels), "hdf5" or "unknown".
    data : ndarray or None
    """
    if path.is_dir():
        import zarr

        try:
            group = zarr.open_group(str(path), mode="r")
            return "zarr", np.asarray(group["labels/curated/0"][...])
        except Exception:  # noqa: BLE001 (any failure: not what we promised)
            return "unknown", None
    head = path.read_bytes()[:8]
    try:
        if head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
            import tifffile

            return "tiff", tifffile.imread(path)
        if head[:6] == b"\x93NUMPY":
            return "npy", np.load(path, allow_pickle=False)
        if head[:8] == b"\x89PNG\r\n\x1a\n":
            from PIL import Image

            return "png", np.asarray(Image.open(path))
        if head[:8] == b"\x89HDF\r\n\x1a\n":
            import h5py

            with h5py.File(path, "r") as f:
                names = []
                f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
                return "hdf5", (np.asarray(f[names[0]]) if len(names) == 1 else None)
    except Exception:  # noqa: BLE001
        return "unreadable", None
    return "unknown", None


def same_ids(found, expected) -> str | None:
    """None when ``found`` holds ``expected``'s values (any dtype), else how they differ."""
    if found is None:
        return "no array"
    found, expected = np.asarray(found), np.asarray(expected)
    if found.shape != expected.shape:
        return f"shape {found.shape}, expected {expected.shape}"
    if found.dtype.kind == "f" and not np.array_equal(found, np.round(found)):
        return f"non-integral {found.dtype} values"
    differ = found.astype(np.float64) != expected.astype(np.float64)
    if differ.any():
        where = tuple(int(i[0]) for i in np.nonzero(differ))
        return (f"{int(differ.sum())} voxel(s) differ, e.g. at {where}: {found[where]} "
                f"instead of {expected[where]}")
    return None
