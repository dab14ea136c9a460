"""Writers and tampering: who may open a review, and journals edited by hand.

Promises (README, "How a review is kept safe"):

- writers: while a process holds a review (idle, or acting), a second
  ``Review.open`` (in this process, or in another) is refused in one line naming
  the holder's pid, and ``merge --out`` onto the review's output is refused; once
  the holder is SIGKILLed, its lock is taken over (and the notes say from whom);
- tampering: a journal truncated mid-line (a middle line), garbled, holding a
  line of another review, with its header changed, a future version, a folder
  or a link in its place... is refused in one line naming the journal, and
  nothing changes (the journal and the output compared byte for byte); a torn
  last line is the one exception: resume cuts it and says so.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from .common import Outcome, changes, one_line_refusal, run_cli, shorten, snapshot
from .driver import act_at_random
from .kills import ReviewSeries

#: Files of a review that opening may leave (the lock), not a change of the review.
_LOCK_FILES = ("r.lock", "r.owner.json")


# --------------------------------------------------------------------------- writers


def run_writers(ws, *, seed: int, quick: bool) -> Outcome:
    outcome = Outcome("writers")
    rng = np.random.default_rng([seed, 4])
    variants = [(False, "--hold"), (False, "acting"), (True, "--hold"), (True, "acting")]
    for k, (chunked, mode) in enumerate(variants[:2] if quick else variants):
        series = ReviewSeries(ws, k, rng, chunked=chunked, category="writers")
        _writers(outcome, series, mode=mode, seed=int(rng.integers(0, 2**31)))
    return outcome


def _writers(outcome: Outcome, series: ReviewSeries, *, mode: str, seed: int) -> None:
    from napari_mask_compare import InputError

    ws = series.ws
    name = f"{'zarr' if series.chunked else 'tif'} review, holder {mode.strip('-')}"
    with open(ws.folder("logs") / f"writers-{name.replace(' ', '_')}.err", "w") as log:
        holder, reader = series.driver(seed, *(["--hold"] if mode == "--hold" else []), log=log)
        if not reader.opened.wait(120) or reader.refused:
            ws.kill(holder)
            outcome.check(name, f"the holder did not open: {reader.refused}",
                          did="open a review", promised="it opens")
            return
        promised = f"refused in one line naming the holder (process {holder.pid})"
        try:  # a second writer in this process
            series.open().close()
            happened = "opened a second time"
        except InputError as err:
            happened = _names_holder(str(err), holder.pid)
        outcome.check(name, happened, did="Review.open while another process holds it",
                      promised=promised)
        second, second_reader = series.driver(seed + 1, log=log)  # in another process
        second_reader.opened.wait(120)
        ws.kill(second)
        happened = (_names_holder(second_reader.refused, holder.pid) if second_reader.refused
                    else "a second process opened it" if second_reader.opened.is_set()
                    else "no answer from a second process")
        outcome.check(name, happened, did="a second process opens the review",
                      promised=promised)
        merge = run_cli(["merge", *map(str, series.paths), "--out", series.out.name],
                        cwd=series.folder)
        outcome.check(name, one_line_refusal(merge, names=(series.out.name,)),
                      did=f"{merge.command} onto the open review's output",
                      promised="refused in one line naming the output")
        ws.kill(holder)
        reader.join(10)
    try:
        review = series.open()
        notes = " ".join(review.notes)
        review.close()
        happened = None if f"took over from process {holder.pid}" in notes \
            else f"opened, but the notes do not say from whom: {notes!r}"
    except Exception as err:  # noqa: BLE001
        happened = f"refused: {shorten(str(err))}"
    outcome.check(name, happened, did=f"Review.open after SIGKILL of the holder {holder.pid}",
                  promised="the dead holder's lock taken over, and said so")
    outcome.cases += 4
    outcome.kills += 1


def _names_holder(message: str, pid: int) -> str | None:
    if "\n" in message.strip():
        return f"the refusal is {message.count(chr(10)) + 1} lines"
    return None if f"process {pid}" in message else f"the holder is not named: {message!r}"


# --------------------------------------------------------------------------- tampering


def _lines(raw: bytes) -> list[bytes]:
    """The journal's lines, each with its newline (a torn tail as the last, without)."""
    return raw.splitlines(keepends=True)


def _index(lines, op: str) -> int:
    """The number of the first line (after the header) holding an operation ``op``."""
    return next(k for k, line in enumerate(lines) if k and f'"op": "{op}"'.encode() in line)


def _edit_line(lines, op: str, change) -> bytes:
    k = _index(lines, op)
    record = json.loads(lines[k])
    change(record)
    return b"".join(lines[:k] + [json.dumps(record).encode() + b"\n"] + lines[k + 1:])


def _edit_header(lines, change) -> bytes:
    header = json.loads(lines[0])
    change(header)
    return b"".join([json.dumps(header).encode() + b"\n", *lines[1:]])


def _source_a(header: dict) -> dict:
    """Mask A's entry of a journal header: ``sources[0]`` (version 2), ``inputs.mask_a`` (1)."""
    return header["sources"][0] if "sources" in header else header["inputs"]["mask_a"]


def _garble(lines, rng) -> bytes:
    k = len(lines) // 2
    noise = bytes(rng.integers(33, 127, len(lines[k]) - 1, dtype=np.uint8)) + b"\n"
    return b"".join(lines[:k] + [noise] + lines[k + 1:])


def _cut_middle(lines, rng) -> bytes:
    k = len(lines) // 2
    return b"".join(lines[:k] + [lines[k][:len(lines[k]) // 2] + b"\n"] + lines[k + 1:])


def _torn_tail(lines, rng) -> bytes:
    return b"".join(lines)[:-(len(lines[-1]) // 2)]


#: name -> (tamper(lines, rng, other_lines) -> new bytes, or None when the case replaces the
#: file by something else; expect "refuse" or "cut")
TAMPERINGS = {
    "torn last line": (lambda ls, rng, o: _torn_tail(ls, rng), "cut"),
    "NUL bytes after the last line": (lambda ls, rng, o: b"".join(ls) + bytes(37), "cut"),
    "a middle line cut short": (lambda ls, rng, o: _cut_middle(ls, rng), "refuse"),
    "a middle line cut short, and a torn last line": (
        lambda ls, rng, o: _torn_tail(_lines(_cut_middle(ls, rng)), rng), "refuse"),
    "a line garbled": (lambda ls, rng, o: _garble(ls, rng), "refuse"),
    "a line garbled, and a torn last line": (
        lambda ls, rng, o: _torn_tail(_lines(_garble(ls, rng)), rng), "refuse"),
    "an op misspelt": (lambda ls, rng, o: _edit_line(ls, "decide", lambda r: r.update(
        op="decibe")), "refuse"),
    "a choice Z": (lambda ls, rng, o: _edit_line(ls, "decide", lambda r: r.update(choice="Z")),
                   "refuse"),
    "a group out of range": (lambda ls, rng, o: _edit_line(ls, "decide", lambda r: r.update(
        group=999_999)), "refuse"),
    "a decision's ids changed": (lambda ls, rng, o: _edit_line(ls, "decide", lambda r: r.update(
        ids=[[123_456], []])), "refuse"),
    "an edit's box outside the image": (lambda ls, rng, o: _edit_line(
        ls, "edit", lambda r: r["pieces"][0].update(box=[[5000, 5010], [0, 4]])), "refuse"),
    "an edit's mask damaged": (lambda ls, rng, o: _edit_line(
        ls, "edit", lambda r: r["pieces"][0].update(mask="!!not base64!!")), "refuse"),
    "a line that is a list": (lambda ls, rng, o: b"".join(ls[:2] + [b"[1, 2]\n"] + ls[2:]),
                              "refuse"),
    "a decision repeated": (lambda ls, rng, o: b"".join(
        ls + [ls[_index(ls, "decide")]]), "refuse"),
    "a line from another review": (lambda ls, rng, o: b"".join(
        ls[:2] + [o[_index(o, "decide")]] + ls[2:]), "refuse"),
    "header: format changed": (lambda ls, rng, o: _edit_header(ls, lambda h: h.update(
        format="something else")), "refuse"),
    "header: a future version": (lambda ls, rng, o: _edit_header(ls, lambda h: h.update(
        version=h["version"] + 1)), "refuse"),
    "header: mask A's fingerprint changed": (lambda ls, rng, o: _edit_header(
        ls, lambda h: _source_a(h).update(fingerprint="0" * 16)), "refuse"),
    "header: IoU threshold changed": (lambda ls, rng, o: _edit_header(
        ls, lambda h: h.update(params={"iou_threshold": 0.5})), "refuse"),
    "header removed": (lambda ls, rng, o: b"".join(ls[1:]), "refuse"),
    "header of another review": (lambda ls, rng, o: b"".join(o[:1] + ls[1:]), "refuse"),
    "empty file": (lambda ls, rng, o: b"", "refuse"),
    "a folder in its place": (None, "refuse"),
    "a link to another review's journal": (None, "refuse"),
}


def run_tampering(ws, *, seed: int, quick: bool) -> Outcome:
    outcome = Outcome("tampering")
    rng = np.random.default_rng([seed, 5])
    names = list(TAMPERINGS)
    for chunked in (False,) if quick else (False, True):
        base = _journaled_review(ws, rng, chunked=chunked, name="base")
        other = _journaled_review(ws, rng, chunked=chunked, name="other")
        for k, name in enumerate(names[::3] if quick else names):
            _tamper(outcome, base, other, name, k=k, rng=rng)
    return outcome


def _journaled_review(ws, rng, *, chunked: bool, name: str) -> ReviewSeries:
    """A closed review that has decided, picked, edited, undone and finished."""
    series = ReviewSeries(ws, 0, rng, chunked=chunked, category=f"tampering-{name}")
    review = series.open()
    try:
        review.decide("A")
        review.edit([((slice(0, 4), slice(0, 4)), None, 9999)])
        while len(review.journal.ops) < 40:
            act_at_random(review, rng)
    finally:
        review.close()
    return series


def _tamper(outcome: Outcome, base: ReviewSeries, other: ReviewSeries, name: str, *, k: int,
            rng) -> None:
    from napari_mask_compare import InputError
    from napari_mask_compare.review import Review

    from .driver import open_masks

    tamper, expect = TAMPERINGS[name]
    folder = base.folder.with_name(f"{base.folder.name}-{k:02d}")
    shutil.copytree(base.folder, folder)
    journal = folder / (base.out.stem + ".journal.jsonl")
    if tamper is not None:
        other_lines = _lines((other.folder / journal.name).read_bytes())
        journal.write_bytes(tamper(_lines(journal.read_bytes()), rng, other_lines))
    elif name.startswith("a folder"):
        journal.unlink()
        journal.mkdir()
    else:
        journal.unlink()
        journal.symlink_to(other.folder / journal.name)
    tampered = _lines(journal.read_bytes()) if journal.is_file() else []
    before = snapshot(folder)
    kind = "zarr" if base.chunked else "tif"
    case = f"{kind} journal: {name}"
    did = f"Review.open on a journal with {name}"
    a, b, inputs = open_masks(*(str(folder / p.name) for p in base.paths))
    try:
        review = Review.open(a, b, output=folder / base.out.name, inputs=inputs)
    except InputError as err:
        message = str(err)
        happened = ("refused, but resume was promised to cut the torn line"
                    if expect == "cut" else None)
        if "\n" in message.strip() or journal.name not in message:
            happened = f"the refusal does not name the journal in one line: {message!r}"
        happened = happened or changes(before, snapshot(folder), ignore=_LOCK_FILES)
    except Exception as err:  # noqa: BLE001
        happened = f"{type(err).__name__}: {shorten(str(err))}"
    else:
        notes, ops = " ".join(review.notes), review.journal.ops
        review.close()
        happened = (f"opened ({len(ops)} actions replayed)" if expect == "refuse"
                    else _cut_said(notes, ops, tampered, journal))
    outcome.check(case, happened, did=did,
                  promised="the torn line cut, and said so" if expect == "cut"
                  else "refused in one line naming the journal, nothing changed")
    outcome.cases += 1


def _cut_said(notes: str, ops: list, whole: list[bytes], journal: Path) -> str | None:
    """None when resume kept every whole line, cut the torn tail and said so."""
    kept = [json.loads(line) for line in whole[1:] if line.endswith(b"\n")]
    if "cut an incomplete last line" not in notes:
        return f"no note of the cut: {notes!r}"
    if ops != kept:
        return f"{len(ops)} actions resumed, the journal's whole lines hold {len(kept)}"
    if not journal.read_bytes().endswith(b"\n"):
        return "the journal still ends in a torn line"
    return None

