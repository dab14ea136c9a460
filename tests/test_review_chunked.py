"""Review of a volume larger than memory: zarr/dask inputs, an OME-Zarr labels output.

The reference is the in-memory review: the same journal replayed by a
:class:`Session` on numpy arrays must give the same output, voxel for voxel.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from examples import share
from napari_mask_compare import ome_zarr_out, store
from napari_mask_compare import review as review_module
from napari_mask_compare.errors import InputError
from napari_mask_compare.journal import files_fingerprint, fingerprint, journal_path
from napari_mask_compare.labels import relabel_sequential
from napari_mask_compare.pairing import KINDS, overlap_table, review_groups
from napari_mask_compare.regions import ArrayRegions, ChunkedRegions
from napari_mask_compare.review import Review
from napari_mask_compare.session import ORDERS, Session
from review_scripts import act, masks
from review_scripts import with_kills as steps


def as_zarr(folder: Path, name: str, data: np.ndarray, chunks) -> zarr.Array:
    array = zarr.create_array(str(folder / name), shape=data.shape, dtype=data.dtype,
                              chunks=chunks, fill_value=0)
    array[...] = data
    return array


def zarr_pair(folder: Path, a, b, chunks):
    """A and B as zarr arrays on disk, and the ``inputs`` naming their folders."""
    za, zb = as_zarr(folder, "a.zarr", a, chunks), as_zarr(folder, "b.zarr", b, chunks)
    return za, zb, {"mask_a": str(folder / "a.zarr"), "mask_b": str(folder / "b.zarr")}


def saved(out: Path) -> np.ndarray:
    """Level 0 of the review's labels store, whole (test volumes are small)."""
    return np.asarray(ome_zarr_out.labels_array(out)[...])


def current(session: Session) -> np.ndarray:
    """The output as it is now (chunked: through its cache)."""
    return np.asarray(session.read("output", tuple(slice(0, n) for n in session.output.shape)))


def read_ops(out: Path) -> list[dict]:
    return [json.loads(line) for line in journal_path(out).read_text().splitlines()[1:]]


def replayed(a, b, out: Path, *, iou_threshold: float = 0.1) -> Session:
    """The reference: the journal replayed by a session in memory."""
    session = Session.from_masks(a, b, iou_threshold=iou_threshold)
    session.replay(read_ops(out))
    return session


def chunk_files(out: Path) -> dict[str, int]:
    """Chunk files of level 0 and their mtimes (metadata files left out)."""
    level = out / "labels" / "curated" / "0"
    return {p.relative_to(level).as_posix(): p.stat().st_mtime_ns for p in level.rglob("*")
            if p.is_file() and not p.name.startswith((".z", "zarr.json"))}


def square(y0, y1, x0, x1):
    return (slice(y0, y1), slice(x0, x1))


# ----------------------------------------------------------------------------- regions


def test_chunked_regions_read_and_write_like_an_ndarray(tmp_path):
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 5, (13, 29)).astype(np.uint32)
    stored = as_zarr(tmp_path, "x.zarr", reference, (4, 8))
    regions = ChunkedRegions(stored, cache_bytes=3 * 4 * 8 * 4)  # 3 chunks: evictions
    for _ in range(200):
        y0, x0 = rng.integers(0, [13, 29])
        region = square(y0, rng.integers(y0 + 1, 14), x0, rng.integers(x0 + 1, 30))
        assert np.array_equal(regions.get(region), reference[region])
        where = rng.random(reference[region].shape) < 0.3
        value = int(rng.integers(0, 9))
        regions.put(region, value, where=where)
        np.copyto(reference[region], value, where=where)
    regions.flush()
    assert np.array_equal(stored[...], reference)  # every change reached the array
    assert np.array_equal(regions[:, 3:9], reference[:, 3:9])


def _counted_the_slow_way(session: Session) -> dict:
    """The summary's counts as the definition says them, one loop over every group."""
    undecided = [g for g in session.groups if session.choice_of(g.index) is None]
    counts = Counter(d.choice for d in session.log)
    return {**{key: counts.get(key, 0) for key in ("A", "B", "M", "N", "Auto")},
            "P": sum(session.choice_of(g.index) == "P" for g in session.groups),
            "contested": sum(d.contested for d in session.log),
            "decided": len(session.groups) - len(undecided),
            "undecided_paired": sum(g.paired for g in undecided),
            "undecided_unpaired": sum(not g.paired for g in undecided)}


# a share of the profile's examples: a chunked review written (and killed) per example
@share(0.4, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pair=masks, script=steps, views=st.lists(st.tuples(
    st.sampled_from(ORDERS), st.sets(st.sampled_from(KINDS), min_size=1)), max_size=3))
@pytest.mark.slow
def test_the_summary_and_the_queue_places_are_kept_without_a_loop_over_the_groups(
        tmp_path_factory, pair, script, views):
    """Counts and places are kept as actions go (a big review has ~500k groups): they
    must say what a count over every group says, after any actions, undos and orders."""
    a, b = pair
    folder = tmp_path_factory.mktemp("counts")
    za, zb, inputs = zarr_pair(folder, a, b, (1, 3, 4))
    review = Review.open(za, zb, output=folder / "o.zarr", inputs=inputs, chunks=(1, 3, 4))
    session = review.session
    views = iter(views)
    for step in script:
        if step in ("crash", "torn crash"):  # here: look at other groups, in another order
            order, kinds = next(views, ("spatial", set(KINDS)))
            session.set_order(order)
            session.set_kinds(kinds)
        else:
            act(review, step)
        summary = session.summary()
        assert {key: summary[key] for key in _counted_the_slow_way(session)} \
            == _counted_the_slow_way(session)
        queue = session.queue
        assert session.queue_size == len(queue)
        assert [session.place(g.index) for g in session.groups] == [
            queue.index(g.index) if g.index in queue else None for g in session.groups]
        if queue:
            assert session.upcoming(2) == [
                session.groups[queue[(session.position + k) % len(queue)]]
                for k in range(1, min(2, len(queue) - 1) + 1)]
    review.close()


# ----------------------------------------------------------------------------- actions


@pytest.mark.parametrize("lazy", ["zarr", "dask"])
def test_actions_on_a_zarr_pair_equal_the_in_memory_review(every_kind_2d, tmp_path, lazy):
    a, b = every_kind_2d
    za, zb, inputs = zarr_pair(tmp_path, a, b, (4, 8))
    if lazy == "dask":
        import dask.array as da

        za, zb = da.from_zarr(za), da.from_zarr(zb)
    out = tmp_path / "o.zarr"
    review = Review.open(za, zb, output=out, inputs=inputs)
    memory = Review.open(a, b, output=tmp_path / "memory.tif")
    complex_group = next(g.index for g in memory.session.groups if g.kind == "complex")
    actions = [
        lambda r: r.decide("B"),
        lambda r: r.decide("M"),
        lambda r: r.pick("A", 5, group=complex_group),
        lambda r: r.pick("B", 16, group=complex_group),
        lambda r: r.pick("A", 5, group=complex_group),  # taken out again
        lambda r: r.edit([(square(0, 2, 30, 33), None, 99)]),  # a new object by hand
        lambda r: r.edit([(square(1, 5, 1, 6), memory.session.output[1:5, 1:6] == 1, 0)]),
        lambda r: r.undo(),
        lambda r: r.decide("A"),
        lambda r: r.finish(),
    ]
    for action in actions:
        change, expected = action(review), action(memory)
        assert change.op == expected.op  # the same journal line
        assert np.array_equal(current(review.session), memory.session.output)
    review.flush()
    assert np.array_equal(saved(out), memory.session.output)  # written as it is
    assert review.session.summary() == memory.session.summary()
    assert review.session.features() == memory.session.features()
    review.close()
    memory.close()
    exported = saved(out)
    assert exported.dtype == np.uint32
    assert np.array_equal(exported, relabel_sequential(memory.session.output))
    ids = np.unique(exported[exported > 0])
    assert np.array_equal(ids, np.arange(1, ids.size + 1))  # ids 1..n after export
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("o.")) == [
        "o.journal.jsonl", "o.lock", "o.summary.json", "o.table.npz", "o.view.json", "o.zarr"]


def test_a_3d_review_with_lower_levels_rebuilt_at_close(tmp_path):
    rng = np.random.default_rng(3)
    a = np.zeros((6, 40, 40), np.uint16)
    b = np.zeros_like(a)
    for i in range(1, 30):
        z, y, x = rng.integers(0, [4, 34, 34])
        a[z:z + 2, y:y + 6, x:x + 6] = i
        b[z:z + 2, y + 1:y + 7, x:x + 5] = i + 100
    za, zb, inputs = zarr_pair(tmp_path, a, b, (2, 16, 16))
    out = tmp_path / "o.zarr"
    with Review.open(za, zb, output=out, inputs=inputs, voxel_size=(2.0, 1.0, 1.0),
                     unit="µm") as review:
        for choice in "ABMNAB":
            review.decide(choice)
        review.finish()
    reference = replayed(a, b, out)
    assert np.array_equal(saved(out), reference.output)  # no edit: the session's ids as they are
    level1 = zarr.open_group(str(out / "labels" / "curated"))["1"]
    assert np.array_equal(level1[...], reference.output[:, ::2, ::2])


# ----------------------------------------------------------------------------- only touched chunks


class CountingArray:
    """A zarr array that records every region read from it (to catch whole-volume reads)."""

    def __init__(self, array):
        self.array, self.reads = array, []
        self.shape, self.dtype, self.chunks = array.shape, array.dtype, array.chunks

    def __getitem__(self, region):
        self.reads.append(region)
        return self.array[region]


def test_each_action_reads_and_writes_only_the_chunks_of_its_region(tmp_path):
    a = np.zeros((4, 256, 256), np.uint16)
    b = np.zeros_like(a)
    a[0:2, 10:20, 10:20], b[0:2, 11:21, 10:20] = 1, 11      # in chunk (0, 0, 0)
    a[2:4, 200:230, 130:150], b[2:4, 200:230, 131:151] = 2, 12  # in chunks (1, 3, 2)
    za, zb, inputs = zarr_pair(tmp_path, a, b, (2, 64, 64))
    ca, cb = CountingArray(za), CountingArray(zb)
    out = tmp_path / "o.zarr"
    review = Review.open(ca, cb, output=out, inputs=inputs, table=overlap_table(a, b))
    review.flush()
    assert chunk_files(out) == {}  # nothing written yet: an empty store has no chunk
    review.decide("A")
    review.flush()
    first = chunk_files(out)
    assert list(first) == ["0/0/0"]  # the one chunk the first group's voxels are in
    review.decide("B")
    review.flush()
    second = chunk_files(out)
    assert sorted(second) == ["0/0/0", "1/3/2"]
    assert second["0/0/0"] == first["0/0/0"]  # not written again
    boxes = [[tuple((s.start, s.stop) for s in region) for region in reads]
             for reads in (ca.reads, cb.reads)]
    assert boxes == [[((0, 2), (0, 64), (0, 64))],  # A: the first group's chunk, once
                     [((2, 4), (192, 256), (128, 192))]]  # B: the second group's
    review.close()


def test_prefetch_reads_the_chunks_of_a_region_ahead_and_stays_within_its_budget(tmp_path):
    reference = np.arange(8 * 24, dtype=np.uint32).reshape(8, 24)
    counted = CountingArray(as_zarr(tmp_path, "x.zarr", reference, (4, 8)))
    regions = ChunkedRegions(counted)
    chunk = 4 * 8 * 4  # bytes
    assert regions.prefetch(square(0, 8, 0, 24), budget=chunk - 1) == 0  # not one chunk
    assert counted.reads == []
    assert regions.prefetch(square(1, 6, 2, 10), budget=3 * chunk) == 3 * chunk  # 3 of 4
    assert len(counted.reads) == 3
    assert regions.prefetch(square(1, 6, 2, 10)) == chunk  # the 4th; the rest is cached
    assert len(counted.reads) == 4
    assert np.array_equal(regions.get(square(1, 6, 2, 10)), reference[1:6, 2:10])
    assert len(counted.reads) == 4  # read from the cache
    assert ArrayRegions(reference).prefetch(square(0, 8, 0, 24)) == 0  # in memory: nothing


class MeddlingArray(CountingArray):
    """Runs ``meddle()`` once, after a read and before it returns (a race, made to happen)."""

    meddle = None

    def __getitem__(self, region):
        data = super().__getitem__(region)
        meddle, self.meddle = self.meddle, None
        if meddle is not None:
            meddle()
        return data

    def __setitem__(self, region, value):
        self.array[region] = value


@pytest.mark.parametrize("dropped", [False, True])
def test_prefetch_never_replaces_a_newer_copy_of_a_chunk(tmp_path, dropped):
    """A chunk changed while it was read ahead keeps its change (cached, or written)."""
    stored = MeddlingArray(as_zarr(tmp_path, "o.zarr", np.zeros((4, 16), np.uint32), (4, 8)))
    regions = ChunkedRegions(stored, cache_bytes=4 * 8 * 4 if dropped else 1 << 20)

    def meddle():  # a decision writes the chunk being read ahead ...
        regions.put(square(0, 1, 0, 1), 7)
        if dropped:  # ... it is saved, then pushed out of the cache by another write
            regions.flush()
            regions.put(square(0, 1, 8, 9), 5)

    stored.meddle = meddle
    assert regions.prefetch(square(0, 4, 0, 8), budget=1 << 20) == 0  # its copy: dropped
    assert stored.meddle is None  # it happened during the read ahead
    assert regions.get(square(0, 1, 0, 1)).item() == 7
    regions.flush()
    assert stored.array[0, 0] == 7 and stored.array[0, 8] == 5 * dropped



def test_chunks_are_saved_once_actions_pause_and_flush_does_not_wait(tmp_path, monkeypatch):
    """A chunked output is saved after a pause in the actions (compressing chunks does
    not take the CPU from the next key press), coalesced; flush() and close() never wait
    for the pause, and the journal is fsynced at once."""
    monkeypatch.setattr(review_module, "CHUNK_SAVE_DELAY_S", 60.0)
    monkeypatch.setattr(review_module, "CHUNK_SAVE_MAX_DELAY_S", 60.0)
    a = np.zeros((4, 64, 64), np.uint16)
    b = np.zeros_like(a)
    a[0:2, 2:9, 2:9], b[0:2, 3:10, 2:9] = 1, 11
    a[2:4, 40:50, 40:50], b[2:4, 40:50, 41:51] = 2, 12
    za, zb, inputs = zarr_pair(tmp_path, a, b, (2, 32, 32))
    out = tmp_path / "o.zarr"
    review = Review.open(za, zb, output=out, inputs=inputs, chunks=(2, 32, 32))
    assert review.flush(timeout=30)
    saves = review.writes
    review.decide("A")
    review.decide("B")
    deadline = time.monotonic() + 30
    while review._saver._unsynced or review._saver._syncing:  # the journal: at once
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.3)
    assert review.writes == saves and chunk_files(out) == {}  # no pause yet: not saved
    assert review.flush(timeout=30)  # True: done without waiting for the pause (60 s)
    assert review.writes == saves + 1  # both actions in one save
    assert sorted(chunk_files(out)) == ["0/0/0", "1/1/1"]
    review.undo()  # an action left unsaved ...
    review.close()  # ... saved by close, without waiting for a pause
    assert np.array_equal(saved(out), relabel_sequential(replayed(a, b, out).output))


# ----------------------------------------------------------------------------- resume


def _crash(review, *, torn: bool, damage: bool) -> None:
    """Stop as a killed process would: no summary, no export; maybe torn journal and chunks."""
    review._saver.close()
    review._lock.release()
    if torn:
        with open(review.journal.path, "ab") as f:
            f.write(b'{"op": "decide", "gr')
    if damage:  # a chunk ahead of the journal, and a chunk torn by the kill
        array = ome_zarr_out.labels_array(review.output)
        array[tuple(slice(n - 1, n) for n in array.shape)] = 7
        files = sorted(chunk_files(review.output))
        (review.output / "labels" / "curated" / "0" / files[0]).write_bytes(b"\x00garbage")


# a share of the profile's examples: a chunked review written (and killed) per example
@share(0.4, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pair=masks, script=steps, threshold=st.sampled_from([0.1, 0.5]), damage=st.booleans())
@pytest.mark.slow
def test_any_sequence_of_actions_and_crashes_equals_the_in_memory_review(
        tmp_path_factory, pair, script, threshold, damage):
    a, b = pair
    folder = tmp_path_factory.mktemp("chunked")
    za, zb, inputs = zarr_pair(folder, a, b, (1, 3, 4))
    out = folder / "o.zarr"

    def open_review():
        return Review.open(za, zb, output=out, iou_threshold=threshold, inputs=inputs,
                           chunks=(1, 3, 4))

    review = open_review()
    for step in script:
        if step in ("crash", "torn crash"):
            state = current(review.session)
            _crash(review, torn=step == "torn crash", damage=damage)
            review = open_review()
            assert np.array_equal(current(review.session), state)  # resumed exactly
            continue
        act(review, step)
        reference = replayed(a, b, out, iou_threshold=threshold)
        assert np.array_equal(current(review.session), reference.output)
    review.flush()
    reference = replayed(a, b, out, iou_threshold=threshold)
    assert np.array_equal(saved(out), reference.output)  # the store as the journal says
    assert review.session.summary() == reference.summary()
    review.finish()
    review.close()
    reference = replayed(a, b, out, iou_threshold=threshold)
    assert np.array_equal(saved(out), relabel_sequential(reference.output))


CHILD = textwrap.dedent("""
    import sys, time
    import zarr
    from napari_mask_compare.review import Review
    folder = sys.argv[1]
    inputs = {"mask_a": folder + "/a.zarr", "mask_b": folder + "/b.zarr"}
    a, b = (zarr.open_array(inputs[k], mode="r") for k in ("mask_a", "mask_b"))
    review = Review.open(a, b, output=folder + "/o.zarr", inputs=inputs)
    session = review.session
    while session.current is not None and not session.done:
        if session.current.index % 7 == 3:
            g = session.current.region
            review.edit([(tuple(slice(s.start, s.start + 1) for s in g), None, 60000)])
        review.decide("ABMN"[session.current.index % 4])
        print(session.summary()["decided"], flush=True)
        time.sleep(0.002)
    review.close()
""")


@pytest.mark.slow
def test_killed_review_resumes_as_the_journal_says_without_pairing_again(tmp_path,
                                                                         monkeypatch):
    rng = np.random.default_rng(1)
    a = np.zeros((8, 256, 256), np.uint16)
    b = np.zeros_like(a)
    for i in range(1, 400):
        z, y, x = rng.integers(0, [6, 246, 246])
        a[z:z + 2, y:y + 8, x:x + 8] = i
        b[z:z + 2, y + 1:y + 9, x:x + 7] = i + 1000
    za, zb, inputs = zarr_pair(tmp_path, a, b, (4, 64, 64))
    out = tmp_path / "o.zarr"
    groups = review_groups(overlap_table(a, b))
    with monkeypatch.context() as patch:
        for kill_after in (1, 20, 80):
            child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)],
                                     stdout=subprocess.PIPE, text=True)
            confirmed = 0
            while confirmed < kill_after:
                line = child.stdout.readline()
                if not line:
                    break
                confirmed = int(line)
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            patch.setattr(review_module, "overlap_table", _must_not_pair)  # the cache serves
            with Review.open(za, zb, output=out, inputs=inputs) as resumed:
                assert resumed.session.summary()["decided"] >= confirmed
                reference = Session(a, b, groups)
                reference.replay(read_ops(out))
                assert np.array_equal(current(resumed.session), reference.output)
                resumed.flush()
                assert np.array_equal(saved(out), reference.output)
    assert resumed.session.summary()["decided"] >= 80


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every file under ``folder`` with its bytes, every folder (None); the lock left out."""
    return {p.relative_to(folder).as_posix(): None if p.is_dir() else p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.name != "o.lock"}


def _changed_line(op: str, change):
    """A tampering: the first ``op`` line of the journal changed by ``change(record)``."""
    def tamper(lines, other):
        k = next(i for i, line in enumerate(lines) if i and f'"op": "{op}"' in line)
        record = json.loads(lines[k])
        change(record)
        return lines[:k] + [json.dumps(record) + "\n"] + lines[k + 1:]
    return tamper


def _first_decision(lines):
    return next(line for line in lines[1:] if '"op": "decide"' in line)


#: Lines that are well formed but cannot be replayed: the replay fails part way through.
UNREPLAYABLE = {
    "a group out of range": _changed_line("decide", lambda r: r.update(group=999_999)),
    "a decision's ids changed": _changed_line("decide", lambda r: r.update(ids=[[123], []])),
    "an edit's box outside the image": _changed_line(
        "edit", lambda r: r["pieces"][0].update(box=[[500, 510], [0, 4]])),
    "a decision repeated": lambda lines, other: lines + [_first_decision(lines)],
    "a line from another review": lambda lines, other: lines + [_first_decision(other)],
}


@pytest.mark.parametrize("tampering", list(UNREPLAYABLE))
@pytest.mark.parametrize("kind", ["o.zarr", "o.tif"])
def test_a_journal_that_cannot_be_replayed_is_refused_and_nothing_changes(
        every_kind_2d, tmp_path, tampering, kind):
    """Resuming a store empties it for the replay: a line that fails part way through must
    leave every chunk as it was (the chunks were deleted before the refusal)."""
    a, b = every_kind_2d
    other_b = b.copy()
    other_b[b == 13] = 0  # another review: other groups
    reviews = {}
    for name, mask_b in (("mine", b), ("other", other_b)):
        (tmp_path / name).mkdir()
        za, zb, inputs = zarr_pair(tmp_path / name, a, mask_b, (4, 8))
        with Review.open(za, zb, output=tmp_path / name / kind, inputs=inputs) as review:
            review.decide("B")
            review.edit([(square(0, 2, 30, 33), None, 99)])
            review.decide("A")
            review.decide("M")
        reviews[name] = (za, zb, inputs)
    journal = journal_path(tmp_path / "mine" / kind)
    other = journal_path(tmp_path / "other" / kind).read_text().splitlines(keepends=True)
    journal.write_text("".join(UNREPLAYABLE[tampering](
        journal.read_text().splitlines(keepends=True), other)))
    before = _tree(tmp_path / "mine")
    with pytest.raises(InputError) as err:
        Review.open(*reviews["mine"][:2], output=tmp_path / "mine" / kind,
                    inputs=reviews["mine"][2])
    assert str(err.value).startswith(f"{journal}: line ") and "\n" not in str(err.value)
    assert _tree(tmp_path / "mine") == before


def _state(review: Review) -> tuple:
    """What an action changes: the session's output, objects, choices, steps; the journal."""
    session = review.session
    return (current(session).tolist(), list(session.objects), session.summary(),
            len(session.steps), review.journal.path.read_bytes(), len(review.journal.ops))


def test_an_action_that_reads_a_damaged_chunk_is_neither_applied_nor_journaled(tmp_path):
    """A chunk of B damaged after the overlap table was made is read by the action: the
    journal held the action, half applied for Finish. Now it says so, and neither the
    session nor the journal holds any of it; once the chunk is mended the actions go on."""
    a = np.zeros((12, 48), np.uint16)
    b = np.zeros_like(a)
    for k in range(6):  # only-B objects, one per chunk of (4, 8) in row 1: Finish reads each
        b[5:7, 8 * k + 1: 8 * k + 5] = 20 + k
    a[1:3, 1:5], b[1:3, 2:6] = 1, 11  # a match in chunk (0, 0)
    a[1:3, 25:29], b[1:3, 26:30] = 2, 12  # a match in chunk (0, 3); Finish fails at (1, 3)
    _, _, inputs = zarr_pair(tmp_path, a, b, (4, 8))
    za, zb = (store.open_array(inputs[key]).data for key in ("mask_a", "mask_b"))
    review = Review.open(za, zb, output=tmp_path / "o.zarr", inputs=inputs)
    review.decide("A", group=0)
    chunks = {key: tmp_path / "b.zarr" / "c" / key for key in ("0/3", "1/3")}
    kept = {key: path.read_bytes() for key, path in chunks.items()}
    for path in chunks.values():
        path.write_bytes(path.read_bytes()[:5])  # not decodable any more
    before = _state(review)
    match = next(g.index for g in review.session.groups if 12 in g.ids_b)
    for action in (lambda: review.decide("B", group=match), review.finish):
        with pytest.raises(InputError, match=r"b\.zarr: chunk c/[01]/3 cannot be read"):
            action()
        assert _state(review) == before
    for key, path in chunks.items():
        path.write_bytes(kept[key])
    review.decide("B", group=match)
    review.finish()
    review.close()
    reference = replayed(a, b, tmp_path / "o.zarr")
    assert [op["op"] for op in read_ops(tmp_path / "o.zarr")] == ["decide", "decide", "finish"]
    assert np.array_equal(saved(tmp_path / "o.zarr"), relabel_sequential(reference.output))


def _must_not_pair(a, b):
    raise AssertionError("the overlap table was computed again")


# ----------------------------------------------------------------------------- table cache


def test_the_table_cache_is_used_on_resume_and_refused_for_other_inputs(every_kind_2d,
                                                                        tmp_path, monkeypatch):
    a, b = every_kind_2d
    za, zb, inputs = zarr_pair(tmp_path, a, b, (4, 8))
    out = tmp_path / "o.zarr"
    with Review.open(za, zb, output=out, inputs=inputs) as review:
        review.decide("A")
    cache = tmp_path / "o.table.npz"
    cached = cache.read_bytes()
    with monkeypatch.context() as patch:
        patch.setattr(review_module, "overlap_table", _must_not_pair)
        with Review.open(za, zb, output=out, inputs=inputs) as resumed:  # not paired again
            assert resumed.session.summary()["decided"] == 1
            assert resumed.session.table.n_a == 7
    other = b.copy()
    other[0:2, 34:38] = 18  # a new object in B
    zb[...] = other
    with pytest.raises(InputError, match="another mask B"):
        Review.open(za, zb, output=out, inputs=inputs)
    assert cache.read_bytes() == cached  # refused untouched
    for path in (journal_path(out), out, tmp_path / "o.summary.json"):  # moved away: anew
        path.rename(tmp_path / ("old_" + path.name))
    calls = []
    monkeypatch.setattr(review_module, "overlap_table",
                        lambda x, y: calls.append(1) or overlap_table(x, y))
    with Review.open(za, zb, output=out, inputs=inputs) as fresh:
        assert calls == [1]  # the cached table was of the old B: computed again
        assert any("other inputs" in note for note in fresh.notes)
        assert 18 in fresh.session.table.ids_b.tolist()
    assert cache.read_bytes() != cached


def test_a_foreign_file_at_the_table_path_is_never_overwritten(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    za, zb, inputs = zarr_pair(tmp_path, a, b, (4, 8))
    (tmp_path / "o.table.npz").write_text("my notes")
    with pytest.raises(InputError, match="not a review's overlap table"):
        Review.open(za, zb, output=tmp_path / "o.zarr", inputs=inputs)
    assert (tmp_path / "o.table.npz").read_text() == "my notes"
    assert not (tmp_path / "o.zarr").exists() and not journal_path(tmp_path / "o.zarr").exists()


def test_files_fingerprint_sees_a_rewritten_chunk_and_never_reads_values(tmp_path):
    data = np.arange(64, dtype=np.uint16).reshape(8, 8)
    array = as_zarr(tmp_path, "m.zarr", data, (4, 4))
    first = fingerprint(array)  # its own folder
    assert first.startswith("files:") and first == fingerprint(array)
    assert first == files_fingerprint(array, tmp_path / "m.zarr")
    array[0, 0] = 99
    assert fingerprint(array) != first
    assert fingerprint(data) == fingerprint(data.astype(np.uint32))  # ndarrays: by value
