"""Full disk: ``merge``, ``report`` and a review writing to a small tmpfs that is full.

Promises (README, "Bad input" and "How a review is kept safe"):

- merge and report: one line (``...: cannot write (No space left on device)``),
  exit 2; an earlier output intact (byte for byte); no partial file and no
  folder left (a folder of pairs: each output absent or whole);
- a review: an action whose journal line cannot be written raises and changes
  nothing (state and journal); a save that fails leaves the previous TIFF
  whole; once space is freed, ``flush()`` and ``close()`` save everything (the
  output holds every action, the summary is written; issue 17, point 6).

Needs root to mount the tmpfs; otherwise the category is skipped with a note.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

import numpy as np

from .common import (
    Outcome,
    changes,
    describe,
    one_line_refusal,
    read_output,
    reference_merge,
    run_cli,
    shorten,
    snapshot,
)
from .kills import grid_pair, is_state, replayed, temp_files

NO_SPACE = os.strerror(errno.ENOSPC)
SIZE_KIB = 1024


class Disk:
    """The mounted tmpfs: fill it, free it, and clear it between cases."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.filler = folder / "filler"

    def fill(self, *, leave: int = 0) -> None:
        """Take every free byte but ``leave`` (with ``leave=0``, until the writes fail)."""
        info = os.statvfs(self.folder)
        free = info.f_bavail * info.f_frsize
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(fd, bytes(max(0, free - leave)))
            while not leave:
                os.write(fd, bytes(4096))
        except OSError:  # full
            pass
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def clear(self) -> None:
        for path in self.folder.iterdir():
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _cli_case(outcome: Outcome, disk: Disk, inputs: Path, name: str, args, *, earlier=None,
              names=()) -> None:
    """Run ``args`` (paths under ``disk.folder`` as ``DISK/...``) on the full disk."""
    def on_disk(words):
        return [str(word).replace("DISK", str(disk.folder)) for word in words]

    disk.clear()
    args = on_disk(args)
    if earlier is not None:  # an earlier output, written while there was space
        first = run_cli(on_disk(earlier), cwd=inputs)
        if first.status != 0:
            outcome.check(name, describe(first), did=f"the earlier {first.command}",
                          promised="success on a disk with space")
            return
    disk.fill()
    before = snapshot(disk.folder)
    run = run_cli(args, cwd=inputs)
    after = snapshot(disk.folder)
    did = f"{run.command} on a full disk" + (" over an earlier output" if earlier else "")
    happened = one_line_refusal(run, names=names) or changes(before, after, ignore=["filler"])
    if happened is None and NO_SPACE not in run.stderr:
        happened = f"the line does not say {NO_SPACE!r}: {shorten(run.stderr)}"
    outcome.check(name, happened, did=did, promised="one line, exit 2, earlier output intact, "
                                                      "no partial file")
    outcome.cases += 1
    disk.free()


def _review_case(outcome: Outcome, disk: Disk, a, b, *, chunked: bool, then: str) -> None:
    """Decide on a full disk, free it, then ``flush()`` + ``close()`` (or ``close()`` alone)."""
    from napari_mask_compare.review import Review

    name = f"review {'zarr' if chunked else 'tif'}, then {then}"
    did = f"decisions in a review on a full disk, space freed, then {then}"
    disk.clear()
    out = disk.folder / ("r.zarr" if chunked else "r.tif")
    review = Review.open(a, b, output=out)
    failed = False
    try:
        review.decide("A")
        review.flush()
        for leave in (0, 4096):  # no byte for the journal, then a line's room but no TIFF's
            disk.free()
            disk.fill(leave=leave)
            _decide_on_full_disk(outcome, review, name=name)
        failed = _flush_failed(review)
        disk.free()
        if then == "flush":
            review.flush()
        review.close()
        happened = _saved(out, a, b, ops=review.journal.ops)
    except Exception as err:  # noqa: BLE001 (what the promise is about: say it)
        happened = f"{type(err).__name__}: {shorten(str(err))}"
    finally:
        if not review.closed:
            with contextlib.suppress(Exception):  # the failure is recorded already
                review.close()
    outcome.check(name, happened, did=did, promised=f"{then} saves every action and the summary",
                  point=6)
    outcome.figures.setdefault("saves that failed on the full disk", 0)
    outcome.figures["saves that failed on the full disk"] += failed
    outcome.cases += 1
    disk.free()


def _decide_on_full_disk(outcome, review, *, name: str) -> None:
    """A decision on the full disk: applied with its line written, or refused changing nothing."""
    journal = review.journal.path
    before, raw = review.session.summary(), journal.read_bytes()
    try:
        review.decide("B")
    except OSError as err:
        changed = review.session.summary() != before or journal.read_bytes() != raw
        outcome.check(name, "the state or the journal changed" if changed else None,
                      did=f"decide on a full disk (refused: {shorten(str(err), 80)})",
                      promised="a refused action changes nothing")
        return
    whole = journal.read_bytes().endswith(b"\n")
    outcome.check(name, None if whole else "the journal ends in half a line",
                  did="decide on a full disk (accepted)", promised="whole journal lines")


def _flush_failed(review) -> bool:
    try:
        review.flush(timeout=30)
    except OSError:
        return True
    return False


def _saved(out: Path, a, b, *, ops) -> str | None:
    """None when the output holds the journal's state (replayed in memory) and the summary
    is written."""
    if not out.with_name(out.stem + ".summary.json").exists():
        return "no summary written"
    _, found = read_output(out)
    if found is None:
        return "the output is not readable"
    return None if is_state(found, replayed(a, b, ops)) else "the output lacks actions"


def run(ws, *, seed: int, quick: bool) -> Outcome:
    outcome = Outcome("full disk")
    folder = ws.folder("disk", "tmpfs")
    reason = ws.mount_tmpfs(folder, size_kib=SIZE_KIB)
    if reason:
        outcome.skipped = reason
        return outcome
    try:
        _run(ws, outcome, Disk(folder), np.random.default_rng([seed, 3]), quick=quick)
    finally:
        ws.unmount(folder)
    return outcome


def _run(ws, outcome: Outcome, disk: Disk, rng, *, quick: bool) -> None:
    from .files import write_tiff

    inputs = ws.folder("disk", "inputs")
    a, b = grid_pair(rng, (8, 128, 128), (4, 16, 16))
    a, b = (a % 60000).astype(np.uint16), (b % 60000).astype(np.uint16)
    write_tiff(inputs / "a.tif", a)
    write_tiff(inputs / "b.tif", b)
    merge = ["merge", "a.tif", "b.tif", "--out"]
    report = ["report", "a.tif", "b.tif", "--out"]
    cases = [
        ("merge tif", [*merge, "DISK/o.tif"], None, ("o.tif",)),
        ("merge tif --overwrite", [*merge, "DISK/o.tif", "--overwrite"], [*merge, "DISK/o.tif"],
         ("o.tif",)),
        ("merge zarr", [*merge, "DISK/o.zarr"], None, ("o.zarr",)),
        ("merge zarr --overwrite", [*merge, "DISK/o.zarr", "--overwrite"],
         [*merge, "DISK/o.zarr"], ("o.zarr",)),
        ("report", [*report, "DISK/rep"], None, ("rep",)),
        ("report --overwrite", [*report, "DISK/rep", "--overwrite"], [*report, "DISK/rep"],
         ("rep",)),
    ]
    if quick:
        cases = cases[1:2] + cases[4:5]
    for name, args, earlier, names in cases:
        _cli_case(outcome, disk, inputs, name, args, earlier=earlier, names=names)
    if not quick:
        _folder_case(outcome, disk, inputs, rng)
    reviews = [(False, "flush"), (False, "close"), (True, "flush")]
    for chunked, then in reviews[:1] if quick else reviews:
        _review_case(outcome, disk, a, b, chunked=chunked, then=then)


def _folder_case(outcome: Outcome, disk: Disk, inputs: Path, rng) -> None:
    """A folder of pairs into a disk with room for some: each output absent or whole."""
    from .files import write_tiff

    references = {}
    for k in range(3):
        a, b = grid_pair(rng, (4, 128, 128), (4, 16, 16))
        for side, data in (("A", a), ("B", b)):
            (inputs / side).mkdir(exist_ok=True)
            write_tiff(inputs / side / f"p{k}.tif", data)
        references[f"p{k}.tif"] = reference_merge(a, b)[0]
    disk.clear()
    disk.fill(leave=300 * 1024)  # room for some pairs, not all
    run = run_cli(["merge", "A", "B", "--out", disk.folder / "O"], cwd=inputs)
    problems = [describe(run)] if run.status not in (0, 2) or "Traceback" in run.stderr else []
    for name, reference in references.items():
        path = disk.folder / "O" / name
        if path.exists():
            _, found = read_output(path)
            if found is None or not np.array_equal(found, reference):
                problems.append(f"{name} torn or wrong")
    left = temp_files(disk.folder / "O") if (disk.folder / "O").exists() else []
    problems += [f"temporary files left: {left}"] if left else []
    outcome.check("merge folders", "; ".join(problems) or None,
                  did=f"{run.command} on a disk with room for some pairs",
                  promised="every output absent or whole, no temporary file left")
    outcome.cases += 1
    disk.free()
