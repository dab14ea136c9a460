"""Kills: SIGKILL ``mask-compare merge`` and a process driving a review at random moments.

Promises (README, "How a review is kept safe" and "merge"):

- merge (TIFF and OME-Zarr, threads and ``--workers 2``, folders of pairs with
  their records): after a kill the output is absent or whole and equal to the
  reference; a rerun succeeds, leaves no temporary file, and in folder mode
  finishes every pair without refusing one (issue 17, point 8), also after a
  kill in the windows between a pair's output and its record (made on purpose
  by :mod:`.merge_driver`, a random kill rarely lands there);
- a review (:mod:`.driver` acting at random through ``Review``, printing each
  action once ``act`` returned): after a kill, resuming keeps every confirmed
  action (counted: actions confirmed, actions lost); the TIFF left by the kill
  is readable and holds the state after a prefix of the journal (never torn);
  after resuming, the output is the journal's state and closing writes the
  summary; the killed process's temporary files are gone.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from .common import (
    MASK_COMPARE,
    Outcome,
    describe,
    quiet_stderr,
    read_output,
    reference_merge,
    run_cli,
    same_ids,
    shorten,
)

DRIVER = Path(__file__).with_name("driver.py")
MERGE_DRIVER = Path(__file__).with_name("merge_driver.py")
_TEMP = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$")
#: Messages a rerun after a kill may print besides progress bars.
_RERUN_NOTES = (r"removed \d+ temporary file", r"pairs were done by an earlier run")


def grid_pair(rng, shape, cell):
    """A: cells of ``cell`` voxels with unique random ids (up to 2**20); B: A moved by two
    voxels along x, every fifth object split in two. uint32."""
    grid = tuple(s // c for s, c in zip(shape, cell))
    ids = rng.choice(np.arange(1, 2**20), int(np.prod(grid)), replace=False)
    a = ids.reshape(grid).astype(np.uint32)
    for axis, c in enumerate(cell):
        a = a.repeat(c, axis=axis)
    b = np.roll(a, 2, axis=-1)
    right = np.arange(shape[-1]) % cell[-1] >= cell[-1] // 2
    return a, np.where((b % 5 == 0) & right, b + 2**21, b).astype(np.uint32)


def temp_files(folder: Path, *, pid: int | None = None) -> list[str]:
    """Temporary files and folders of the package's form in ``folder`` (of ``pid``)."""
    found = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = _TEMP.match(path.name)
        if match and (pid is None or int(match[1]) == pid):
            found.append(path.name)
    return found


# --------------------------------------------------------------------------- merge


class MergeMode:
    """One way of running merge: its inputs, its command, and the reference outputs."""

    def __init__(self, ws, name: str, rng, *, quick: bool):
        from .files import write_tiff
        from .stores import write_zarr

        self.name = name
        self.folder = ws.folder("kills", name.replace(" ", "-"))
        if name.startswith("folder"):
            self.references = {}
            for k in range(4 if quick else 6):
                a, b = grid_pair(rng, (8, 128, 128), (4, 16, 16))
                for side, data in (("A", a), ("B", b)):
                    (self.folder / side).mkdir(exist_ok=True)
                    write_tiff(self.folder / side / f"p{k}.tif", data)
                self.references[f"p{k}.tif"] = reference_merge(a, b)[0]
            return
        a, b = grid_pair(rng, (16, 256, 256), (4, 16, 16))
        self.reference = reference_merge(a, b)[0]
        if name.startswith("tif"):
            write_tiff(self.folder / "a.tif", a)
            write_tiff(self.folder / "b.tif", b)
        else:
            for side, data in (("a", a), ("b", b)):
                write_zarr(self.folder / f"{side}.zarr", data, chunks=(8, 64, 64))

    def args(self, k: int, *, overwrite: bool) -> tuple[list[str], Path]:
        """The command of kill ``k`` and its output (folder mode: a new folder per kill)."""
        if self.name.startswith("folder"):
            out = f"O{k}"
            return ["merge", "A", "B", "--out", out], self.folder / out
        suffix = "tif" if self.name.startswith("tif") else "zarr"
        args = ["merge", f"a.{suffix}", f"b.{suffix}", "--out", f"out.{suffix}"]
        if "workers" in self.name:
            args += ["--workers", "2"]
        if overwrite:
            args.append("--overwrite")
        return args, self.folder / f"out.{suffix}"

    def whole(self, out: Path) -> str | None:
        """None when the output is absent or whole and right (folder mode: each file)."""
        if self.name.startswith("folder"):
            for name, reference in self.references.items():
                problem = self._whole(out / name, reference)
                if problem:
                    return f"{name}: {problem}"
            return None
        return self._whole(out, self.reference)

    @staticmethod
    def _whole(path: Path, reference) -> str | None:
        if not (path.exists() or path.is_symlink()):
            return None
        kind, data = read_output(path)
        if data is None:
            return f"{path.name} is there but not readable ({kind}): torn"
        return same_ids(data, reference)

    def complete(self, out: Path) -> str | None:
        """None when every output is there and right."""
        names = self.references if self.name.startswith("folder") else {"": None}
        missing = [n for n in names if not (out / n if n else out).exists()]
        return f"missing {', '.join(missing)}" if missing else self.whole(out)


def _kill_merge(ws, outcome: Outcome, mode: MergeMode, k: int, *, delay: float,
                overwrite: bool) -> None:
    args, out = mode.args(k, overwrite=overwrite)
    case = f"{mode.name} #{k}"
    if not overwrite and out.exists():  # a first run: no earlier output
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    process = ws.start([*MASK_COMPARE, *args], cwd=mode.folder, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    time.sleep(delay)
    if process.poll() is not None:
        outcome.figures["merges finished before their kill"] += 1
    else:
        ws.kill(process)
        outcome.kills += 1
    did = f"SIGKILL {delay:.2f} s into mask-compare {' '.join(args)}"
    outcome.check(case, mode.whole(out), did=did,
                  promised="the output absent, or whole and equal to the reference")
    rerun_args = args  # a folder run goes on where it stopped; a file is replaced
    if out.exists() and not mode.name.startswith("folder") and "--overwrite" not in args:
        rerun_args = [*args, "--overwrite"]
    rerun = run_cli(rerun_args, cwd=mode.folder)
    happened = (describe(rerun) if rerun.status != 0
                else quiet_stderr(rerun, allowed=_RERUN_NOTES) or mode.complete(out))
    left = temp_files(out.parent) + temp_files(out)
    outcome.check(case, happened or (f"temporary files left: {left}" if left else None),
                  did=f"{did}, then mask-compare {' '.join(rerun_args)}",
                  promised="the rerun finishes every pair, output equal to the reference, "
                           "no temporary file left", point=8 if "folder" in mode.name else None)
    outcome.cases += 1


#: Merge mode -> kills in a full run, in a quick one.
MERGE_PLAN = {"tif threads": (10, 2), "zarr threads": (8, 1), "zarr workers 2": (4, 0),
              "folder records": (12, 2)}


def merge_kills(ws, outcome: Outcome, rng, *, quick: bool) -> None:
    """Kills at moments drawn over the time a clean run of the same command takes."""
    outcome.figures["merges finished before their kill"] = 0
    for name, (full, short) in MERGE_PLAN.items():
        if not (short if quick else full):
            continue
        mode = MergeMode(ws, name, rng, quick=quick)
        clean = run_cli(mode.args(999, overwrite=False)[0], cwd=mode.folder)
        if outcome.check(name, describe(clean) if clean.status else None,
                         did=f"a clean {clean.command}", promised="success"):
            for k in range(short if quick else full):
                delay = float(rng.uniform(0.3, clean.seconds))
                _kill_merge(ws, outcome, mode, k, delay=delay, overwrite=bool(k % 2))
        if name.startswith("folder"):
            _record_window(ws, outcome, mode)


def _record_window(ws, outcome: Outcome, mode: MergeMode) -> None:
    """The kill windows between a pair's output and its record, made on purpose (a random
    kill rarely lands in them): :mod:`.merge_driver` ends itself as a kill would at each
    step of p0's record, in a first run and in an ``--overwrite`` run over a finished one;
    then the same command without ``--overwrite`` must finish every pair."""
    from .merge_driver import POINTS

    for k, (point, over) in enumerate((p, o) for o in (False, True) for p in POINTS):
        case = f"folder records: killed {point}{' (--overwrite)' if over else ''}"
        args, out = mode.args(1000 + k, overwrite=False)
        if over:  # a finished run first: the killed one replaces its outputs
            first = run_cli(args, cwd=mode.folder)
            if not outcome.check(case, describe(first) if first.status else None,
                                 did=first.command, promised="success"):
                continue
        killed = ws.start([sys.executable, str(MERGE_DRIVER), point, "p0", *args,
                           *(["--overwrite"] if over else [])], cwd=mode.folder,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, err = killed.communicate(timeout=180)
        if killed.returncode != 9:
            outcome.check(case, f"the driver was not killed there: exit {killed.returncode}, "
                                f"{shorten(err)}", did=f"merge_driver {point}",
                          promised="killed at that step")
            continue
        outcome.kills += 1
        rerun = run_cli(args, cwd=mode.folder)
        happened = (describe(rerun) if rerun.status != 0
                    else quiet_stderr(rerun, allowed=_RERUN_NOTES) or mode.complete(out))
        left = temp_files(out)
        outcome.check(case, happened or (f"temporary files left: {left}" if left else None),
                      did=f"mask-compare {' '.join(args)}{' --overwrite' if over else ''} "
                          f"killed (os._exit) {point} of p0, then the same command again",
                      promised="the rerun finishes every pair without refusing one, outputs "
                               "equal to the reference", point=8)
        outcome.cases += 1


# --------------------------------------------------------------------------- review


class Reader(threading.Thread):
    """Collects the lines a driver prints: ``open`` (or ``refused ...``), then its confirmed
    actions (whole lines only: a line cut by the kill was not confirmed)."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.lines, self.opened = stream, [], threading.Event()
        self.refused: str | None = None

    def run(self) -> None:
        for line in self.stream:
            if line.startswith(("open", "refused")):
                self.refused = line[len("refused "):].strip() if line.startswith("r") else None
                self.opened.set()
            elif line.endswith("\n"):
                self.lines.append(line)

    def confirmed(self) -> list[tuple[int, dict]]:
        return [(int(n), json.loads(op)) for n, op in (line.split(" ", 1) for line in self.lines)]


class ReviewSeries:
    """One review killed again and again: its masks, output, and the reference groups."""

    def __init__(self, ws, k: int, rng, *, chunked: bool, category: str = "kills"):
        from napari_mask_compare.session import Session

        from .stores import write_zarr

        self.ws, self.chunked = ws, chunked
        self.folder = ws.folder(category, f"review-{k}{'-chunked' if chunked else ''}")
        self.a, self.b = grid_pair(rng, (96, 128), (8, 8))
        if chunked:
            self.paths = [self.folder / "a.zarr", self.folder / "b.zarr"]
            for path, data in zip(self.paths, (self.a, self.b)):
                write_zarr(path, data, chunks=(32, 32))
        else:
            self.paths = [self.folder / "a.npy", self.folder / "b.npy"]
            for path, data in zip(self.paths, (self.a, self.b)):
                np.save(path, data)
        self.out = self.folder / ("r.zarr" if chunked else "r.tif")
        self.groups = Session.from_masks(self.a, self.b).groups

    def driver(self, *options, log) -> tuple[subprocess.Popen, Reader]:
        """Start a driver of this review (see :mod:`.driver`) and the reader of its lines."""
        process = self.ws.start([sys.executable, str(DRIVER), *map(str, self.paths),
                                 str(self.out), *map(str, options)], stdout=subprocess.PIPE,
                                stderr=log, text=True)
        reader = Reader(process.stdout)
        reader.start()
        return process, reader

    def open(self):
        from napari_mask_compare.review import Review

        from .driver import open_masks

        a, b, inputs = open_masks(*map(str, self.paths))
        return Review.open(a, b, output=self.out, inputs=inputs)

    def states(self, ops):
        """The output after each prefix of ``ops`` (a session in memory), as uint32: a
        generator, the last the journal's state."""
        from napari_mask_compare.session import Session

        session = Session(self.a, self.b, self.groups)
        yield session.output.astype(np.uint32)
        for op in ops:
            session.replay([op])
            yield session.output.astype(np.uint32)


def replayed(a, b, ops, *, groups=None) -> np.ndarray:
    """The output that ``ops`` make of ``a`` and ``b`` (a session in memory), as uint32."""
    from napari_mask_compare.session import Session

    session = Session.from_masks(a, b) if groups is None else Session(a, b, groups)
    session.replay(ops)
    return session.output.astype(np.uint32)


def _journal_ops(out: Path) -> list[dict]:
    """The whole lines of a journal (a torn last line left out)."""
    from napari_mask_compare.journal import journal_path

    raw = journal_path(out).read_bytes()
    return [json.loads(line) for line in raw.split(b"\n")[1:-1]]


def is_state(found, state) -> bool:
    """``found`` is ``state``, as saved: the session's ids, or compacted to 1..n."""
    from napari_mask_compare.labels import relabel_sequential

    found = np.asarray(found).astype(np.uint32)
    return np.array_equal(found, state) or np.array_equal(found, relabel_sequential(state))


def _kill_review(outcome: Outcome, series: ReviewSeries, *, seed: int, delay: float,
                 case: str) -> None:
    ws = series.ws
    with open(ws.folder("logs") / f"{case.replace(' ', '_').replace('#', '')}.err", "w") as log:
        process, reader = series.driver(seed, log=log)
        opened = reader.opened.wait(120) and not reader.refused
        if opened:
            time.sleep(delay)
        ws.kill(process)
        reader.join(10)
    if not opened:
        outcome.check(case, f"the driver did not open the review: {reader.refused or log.name}",
                      did="open a review in a driver", promised="it opens")
        return
    outcome.kills += 1
    confirmed = reader.confirmed()
    outcome.figures["actions confirmed"] += len(confirmed)
    did = f"SIGKILL a process driving Review {delay:.2f} s after it opened"
    if not series.chunked:
        outcome.check(case, _tiff_left(series), did=did,
                      promised="the TIFF whole, holding the state after a prefix of the journal")
    _resume(outcome, series, case=case, did=did, confirmed=confirmed, pid=process.pid)


def _tiff_left(series: ReviewSeries) -> str | None:
    if not series.out.exists():
        return None
    kind, found = read_output(series.out)
    if found is None:
        return f"{series.out.name} unreadable ({kind}): torn"
    if not any(is_state(found, state) for state in series.states(_journal_ops(series.out))):
        return f"{series.out.name} holds no state of the journal"
    return None


def _resume(outcome, series: ReviewSeries, *, case, did, confirmed, pid) -> None:
    try:
        review = series.open()
    except Exception as err:  # noqa: BLE001
        outcome.check(case, f"resuming raised {shorten(repr(err))}", did=f"{did}, then resume",
                      promised="the review resumes")
        return
    try:
        ops = review.journal.ops
        lost = sum(1 for n, op in confirmed if n > len(ops) or ops[n - 1] != op)
        outcome.figures["actions lost"] += lost
        outcome.check(case, f"{lost} of {len(confirmed)} confirmed actions lost" if lost else None,
                      did=f"{did}, then resume", promised="every confirmed action resumed")
        left = temp_files(series.folder, pid=pid)
        outcome.check(case, f"temporary files of the killed process left: {left}" if left
                      else None, did=f"{did}, then resume",
                      promised="the killed process's temporary files removed on resume")
        review.flush()
        if not series.chunked:
            _, found = read_output(series.out)
            state = review.session.output.astype(np.uint32)
            outcome.check(case, None if found is not None and is_state(found, state)
                          else "the TIFF is not the resumed state", did=f"{did}, resume, flush",
                          promised="the TIFF equal to the journal's state")
    finally:
        try:
            review.close()
        except Exception as err:  # noqa: BLE001
            outcome.check(case, f"close raised {shorten(repr(err))}", did=f"{did}, resume, close",
                          promised="close saves and writes the summary")
    summary = series.out.with_name(series.out.stem + ".summary.json")
    outcome.check(case, None if summary.exists() else "no summary written",
                  did=f"{did}, resume, close", promised="the summary written on close")
    if series.chunked:
        _, found = read_output(series.out)
        state = replayed(series.a, series.b, review.journal.ops, groups=series.groups)
        outcome.check(case, None if found is not None and is_state(found, state)
                      else "the store is not the journal's state", did=f"{did}, resume, close",
                      promised="the OME-Zarr output equal to the journal replayed")
    outcome.cases += 1


def review_kills(ws, outcome: Outcome, rng, *, quick: bool) -> None:
    plan = [(False, 8)] * 4 + [(True, 7)] * 2 if not quick else [(False, 2), (True, 1)]
    outcome.figures.update({"actions confirmed": 0, "actions lost": 0})
    for k, (chunked, n) in enumerate(plan):
        series = ReviewSeries(ws, k, rng, chunked=chunked)
        for j in range(n):
            _kill_review(outcome, series, seed=int(rng.integers(0, 2**31)),
                         delay=float(rng.uniform(0.02, 1.5)),
                         case=f"review{' chunked' if chunked else ''} {k} #{j}")


def run(ws, *, seed: int, quick: bool) -> Outcome:
    outcome = Outcome("kills")
    rng = np.random.default_rng([seed, 2])
    merge_kills(ws, outcome, rng, quick=quick)
    review_kills(ws, outcome, rng, quick=quick)
    return outcome
