"""Review: journal first, then apply; resume; one writer; torn tails; failed writes."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tifffile

from napari_mask_compare import _files, journal
from napari_mask_compare.errors import InputError
from napari_mask_compare.journal import fingerprint, journal_path
from napari_mask_compare.review import Review
from napari_mask_compare.session import Session


def read_ops(output):
    lines = journal_path(output).read_text().splitlines()
    return [json.loads(line) for line in lines[1:]]


def square(y0, y1, x0, x1):
    return (slice(y0, y1), slice(x0, x1))


# ----------------------------------------------------------------------------- actions


def test_every_action_is_journaled_and_saved(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    out = tmp_path / "curated.tif"
    review = Review.open(a, b, output=out, inputs={"mask_a": "a.tif", "mask_b": "b.tif"})
    changes = []
    review.add_listener(changes.append)
    review.decide("B")
    review.decide("M")
    review.undo()
    review.edit([(square(0, 2, 30, 33), None, 99)])  # a new object painted by hand
    review.flush()
    assert [op["op"] for op in read_ops(out)] == ["decide", "decide", "undo", "edit"]
    assert [c.op["op"] for c in changes] == ["decide", "decide", "undo", "edit"]
    assert changes[2].undone["choice"] == "M"
    assert np.array_equal(tifffile.imread(out), review.session.output)
    review.finish()
    summary = review.close()
    assert np.array_equal(tifffile.imread(out), review.session.output)
    assert json.loads(out.with_name("curated.summary.json").read_text()) == summary
    assert summary["Auto"] == 2 and summary["edits"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "curated.journal.jsonl", "curated.lock", "curated.summary.json", "curated.tif",
        "curated.view.json"]


def test_a_refused_action_is_not_journaled(every_kind_2d, tmp_path):
    out = tmp_path / "o.tif"
    with Review.open(*every_kind_2d, output=out) as review:
        review.decide("A")
        group = review.session.log[0].group
        with pytest.raises(ValueError, match="already decided"):
            review.decide("B", group=group)
        review.undo()
        with pytest.raises(ValueError, match="nothing to undo"):
            review.undo()
    assert [op["op"] for op in read_ops(out)] == ["decide", "undo"]


def test_painted_ids_never_collide_with_decided_ones(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    with Review.open(a, b, output=tmp_path / "o.tif") as review:
        review.decide("A")  # object 1
        change = review.edit([(square(0, 1, 30, 34), None, 50)])  # the brush said 50
        assert change.op["pieces"][0]["value"] == 2  # the next id, whatever the brush said
        review.decide("B")
        out = review.session.output
        assert set(np.unique(out[0, 30:34])) == {2}
        assert review.session.objects[1].source == "edit"
        assert 2 not in np.unique(out[b == 12]) and 2 not in np.unique(out[b == 13])
        assert review.session.features()["source"][:2] == ["A", "edit"]


def test_erasing_most_of_an_object_is_saved_compacted(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    out = tmp_path / "o.tif"
    with Review.open(a, b, output=out) as review:
        review.decide("A")   # object 1: A 1
        review.decide("A")   # objects 2
        mask = review.session.output[1:5, 1:5] == 1
        review.edit([(square(1, 5, 1, 5), mask, 0)])  # erase object 1 entirely
        review.finish()
    saved = tifffile.imread(out)
    assert not saved[1:5, 1:5].any()
    ids = np.unique(saved[saved > 0])
    assert np.array_equal(ids, np.arange(1, ids.size + 1))  # ids 1..n after compaction
    assert np.array_equal(saved > 0, review.session.output > 0)


def test_picks_toggle_objects_of_a_group_and_decide_it(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    out = tmp_path / "o.tif"
    with Review.open(a, b, output=out) as review:
        session = review.session
        complex_group = next(g for g in session.groups if g.kind == "complex")
        index = complex_group.index
        review.pick("A", 5, group=index)   # A's object 5 and B's object 16
        review.pick("B", 16, group=index)
        assert session.choice_of(index) == "P"
        assert np.array_equal(session.output == 1, a == 5)
        assert np.array_equal(session.output == 2, (b == 16) & (a != 5))  # only background
        with pytest.raises(ValueError, match="already decided"):
            review.decide("A", group=index)
        review.pick("A", 5, group=index)   # toggled out again
        assert not (session.output == 1).any() and session.picks(index) == {("B", 16): 2}
        review.undo()                      # back in, exactly
        assert np.array_equal(session.output == 1, a == 5)
        with pytest.raises(ValueError, match="not an object of group"):
            review.pick("A", 1, group=index)
        summary = session.summary()
        assert (summary["P"], summary["picks"], summary["decided"]) == (1, 2, 1)
        review.finish()
    saved = tifffile.imread(out)
    with Review.open(a, b, output=out) as resumed:  # picks are replayed
        assert resumed.session.output.tobytes() == session.output.tobytes()
        assert resumed.session.picks(index) == session.picks(index)
    assert np.array_equal(saved > 0, session.output > 0)


# ----------------------------------------------------------------------------- resuming


def test_resume_reproduces_the_output(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    out = tmp_path / "o.tif"
    with Review.open(a, b, output=out) as review:
        for choice in "ABMN":
            review.decide(choice)
        review.edit([(square(0, 1, 0, 3), None, 7)])
    session = review.session
    with Review.open(a.astype(np.uint32), b, output=out) as resumed:  # same values, other dtype
        assert resumed.session.output.tobytes() == session.output.tobytes()
        assert resumed.session.summary() == session.summary()
        assert resumed.session.current.index == session.current.index  # where it stopped


def test_other_inputs_or_settings_are_refused_untouched(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    out = tmp_path / "o.tif"
    with Review.open(a, b, output=out, inputs={"mask_a": "a.tif", "mask_b": "b.tif"}) as review:
        review.decide("A")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    other = b.copy()
    other[0, 0] = 99
    with pytest.raises(InputError, match=r"another mask B \(b.tif\)"):
        Review.open(a, other, output=out)
    with pytest.raises(InputError, match="iou_threshold"):
        Review.open(a, b, output=out, iou_threshold=0.5)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_an_existing_file_is_never_adopted(tmp_path, every_kind_2d):
    out = tmp_path / "ground_truth.tif"
    tifffile.imwrite(out, every_kind_2d[0])
    before = out.read_bytes()
    with pytest.raises(InputError, match="is not a review.s"):
        Review.open(*every_kind_2d, output=out)
    assert out.read_bytes() == before and not journal_path(out).exists()


def test_torn_tail_is_cut_on_resume_and_said(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    out = tmp_path / "o.tif"
    with Review.open(a, b, output=out) as review:
        review.decide("A")
        review.decide("B")
    path = journal_path(out)
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"op": "deci')  # killed in the middle of a line
    with Review.open(a, b, output=out) as resumed:
        assert resumed.session.summary()["decided"] == 2
        assert any("incomplete last line (12 bytes)" in note for note in resumed.notes)
        assert path.read_bytes() == whole  # cut back to the last whole line
        resumed.decide("M")
    assert [op["op"] for op in read_ops(out)] == ["decide"] * 3


@pytest.mark.parametrize(("line", "words"), [
    ("garbage", "Expecting value"),
    ("5", "expected an object"),
    ("null", "expected an object"),
    ('{"op": "decide", "group": "7", "choice": "A", "ids": [[1], [11]]}', "index >= 0"),
    ('{"op": "decide", "group": -1, "choice": "A", "ids": [[1], [11]]}', "index >= 0"),
    ('{"op": "decide", "group": 0, "ids": [[1], [11]]}', "choice"),
    ('{"op": "decide", "group": 0, "choice": "A"}', "ids"),
    ('{"op": "edit", "pieces": [{"box": [[0, 1]], "mask": null, "value": 3}]}', "box"),
    ('{"op": "edit", "pieces": [{"box": [[0, 1], [0, 2]], "mask": "xx", "value": 3}]}', "mask"),
    ('{"op": "fly"}', "unknown operation"),
])
def test_wrongly_typed_lines_are_refused_by_number_and_left_alone(every_kind_2d, tmp_path,
                                                                  line, words):
    a, b = every_kind_2d
    out = tmp_path / "o.tif"
    with Review.open(a, b, output=out) as review:
        review.decide("A")
    path = journal_path(out)
    path.write_text(path.read_text() + line + "\n" + '{"op": "und')
    before = path.read_bytes()
    with pytest.raises(InputError, match=rf"line 3 is damaged .*{words}"):
        Review.open(a, b, output=out)
    assert path.read_bytes() == before  # checked before anything is cut


def test_lines_that_cannot_be_replayed_are_named(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    out = tmp_path / "o.tif"
    with Review.open(a, b, output=out) as review:
        review.decide("A")
        review.decide("B")
    path = journal_path(out)
    header, first, second = path.read_text().splitlines()
    wrong_ids = json.loads(second)
    wrong_ids["ids"] = [[999], []]
    path.write_text("\n".join([header, first, json.dumps(wrong_ids)]) + "\n")
    with pytest.raises(InputError, match="line 3 cannot be replayed .*other objects"):
        Review.open(a, b, output=out)
    path.write_text("\n".join([header, first, first]) + "\n")  # decided twice, no undo
    with pytest.raises(InputError, match="line 3 cannot be replayed .*already decided"):
        Review.open(a, b, output=out)


@pytest.mark.parametrize("content", [b'{"hello": 1}\nmy notes\nlast line',
                                     b"just text, no newline"])
def test_a_foreign_file_at_the_journal_path_is_never_changed(every_kind_2d, tmp_path, content):
    out = tmp_path / "o.tif"
    journal_path(out).write_bytes(content)
    with pytest.raises(InputError, match="not a napari-mask-compare journal"):
        Review.open(*every_kind_2d, output=out)
    assert journal_path(out).read_bytes() == content
    assert not out.exists()


def test_a_header_only_journal_resumes_intact(every_kind_2d, tmp_path):
    out = tmp_path / "o.tif"
    Review.open(*every_kind_2d, output=out).close()
    before = journal_path(out).read_bytes()
    with Review.open(*every_kind_2d, output=out) as review:
        assert review.session.summary()["decided"] == 0
    assert journal_path(out).read_bytes() == before


def test_a_journal_path_that_is_a_folder_is_refused(every_kind_2d, tmp_path):
    out = tmp_path / "o.tif"
    journal_path(out).mkdir()
    with pytest.raises(InputError, match="is a folder"):
        Review.open(*every_kind_2d, output=out)


def test_fingerprint_depends_on_values_and_shape():
    x = np.arange(12, dtype=np.uint16).reshape(3, 4)
    assert fingerprint(x) == fingerprint(x.astype(np.int64))
    assert fingerprint(x) != fingerprint(x.reshape(4, 3))
    y = x.copy()
    y[2, 3] = 0
    assert fingerprint(x) != fingerprint(y)


# ----------------------------------------------------------------------------- failed writes


def _full_disk_after(nbytes):
    """An ``os.write`` that writes ``nbytes`` of the line, then fails as a full disk does."""
    real_write = os.write

    def write(fd, data):
        if len(data) > nbytes:
            real_write(fd, data[:nbytes])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    return write


def test_a_failed_journal_write_changes_nothing(every_kind_2d, tmp_path, monkeypatch):
    a, b = every_kind_2d
    out = tmp_path / "o.tif"
    review = Review.open(a, b, output=out)
    review.decide("A")
    review.flush()
    state = (review.session.output.copy(), review.session.summary(), review.session.current)
    before = journal_path(out).read_bytes()
    with monkeypatch.context() as patch:
        patch.setattr(journal.os, "write", _full_disk_after(10))
        for action in (lambda: review.decide("B"), review.undo,
                       lambda: review.edit([(square(0, 1, 0, 2), None, 5)])):
            with pytest.raises(_files.WriteError, match=r"o.journal.jsonl: cannot write "
                                                         r"\(No space left on device\)"):
                action()
            assert journal_path(out).read_bytes() == before  # no partial line left
            assert np.array_equal(review.session.output, state[0])
            assert review.session.summary() == state[1]
            assert review.session.current == state[2]
    review.decide("B")  # space again: the next action goes on a whole line
    review.close()
    with Review.open(a, b, output=out) as resumed:
        assert resumed.session.output.tobytes() == review.session.output.tobytes()


def test_a_failed_tiff_save_is_reported_and_retried(every_kind_2d, tmp_path, monkeypatch):
    out = tmp_path / "o.tif"
    review = Review.open(*every_kind_2d, output=out)
    review.flush()
    real = _files._Stage.open

    def full(self, path):
        raise _files.write_error(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))

    monkeypatch.setattr(_files._Stage, "open", full)
    review.decide("A")
    with pytest.raises(OSError, match="No space left"):
        review.flush()
    assert review.save_error is not None
    monkeypatch.setattr(_files._Stage, "open", real)
    review.decide("B")
    review.flush()
    assert review.save_error is None
    review.close()
    assert np.array_equal(tifffile.imread(out), review.session.output)


def test_journal_fsync_runs_beside_the_decision(every_kind_2d, tmp_path, monkeypatch):
    """The decision returns with its line written; the fsync follows on another thread."""
    import threading

    release, synced = threading.Event(), []
    review = Review.open(*every_kind_2d, output=tmp_path / "o.tif")
    review.flush()

    def slow_fsync(path):
        release.wait(10)
        synced.append(path)

    monkeypatch.setattr(_files, "fsync_path", slow_fsync)
    review.decide("A")
    assert len(read_ops(tmp_path / "o.tif")) == 1  # written before decide returned
    assert not review.flush(timeout=0.2) and synced == []  # flush waits for the fsync
    release.set()
    assert review.flush(timeout=10)
    review.close()


def test_saving_does_not_hold_up_decisions(tmp_path):
    """Decisions return while the background thread is still writing the TIFF."""
    rng = np.random.default_rng(0)
    a = np.zeros((16, 512, 512), np.uint16)
    for i in range(1, 200):
        z, y, x = rng.integers(0, [12, 500, 500])
        a[z:z + 4, y:y + 10, x:x + 10] = i
    review = Review.open(a, a, output=tmp_path / "o.tif")
    for _ in range(20):
        review.decide("A")
    review.close()
    assert review.writes < 20  # writes were coalesced
    assert np.array_equal(tifffile.imread(tmp_path / "o.tif"), review.session.output)


# ----------------------------------------------------------------------------- one writer

HOLDER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from napari_mask_compare.review import Review
    a = np.load(sys.argv[1]); b = np.load(sys.argv[2])
    review = Review.open(a, b, output=sys.argv[3])
    print("open", flush=True)
    time.sleep(60)
""")


def test_one_writer_per_review(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    out = tmp_path / "o.tif"
    first = Review.open(a, b, output=out)
    with pytest.raises(InputError, match=rf"open in process {os.getpid()} on .* since"):
        Review.open(a, b, output=out)  # a second window of the same process
    first.decide("A")
    first.close()
    with Review.open(a, b, output=out) as again:  # released on close
        assert again.session.summary()["decided"] == 1


def test_a_review_opened_in_one_thread_is_closed_in_another(every_kind_2d, tmp_path):
    """The widget opens in a worker thread and closes on the GUI thread."""
    import threading

    out = tmp_path / "o.tif"
    opened = []
    worker = threading.Thread(target=lambda: opened.append(Review.open(*every_kind_2d,
                                                                       output=out)))
    worker.start()
    worker.join()
    opened[0].close()
    Review.open(*every_kind_2d, output=out).close()  # released: not refused


@pytest.mark.slow
def test_a_second_process_is_refused_and_a_dead_holders_lock_taken_over(every_kind_2d,
                                                                         tmp_path):
    a, b = every_kind_2d
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    out = tmp_path / "o.tif"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "a.npy"),
                               str(tmp_path / "b.npy"), str(out)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(InputError, match=rf"open in process {holder.pid} on "):
            Review.open(a, b, output=out)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with Review.open(a, b, output=out) as review:  # the dead holder's lock is taken over
        assert any(f"took over from process {holder.pid}" in n for n in review.notes)


# ----------------------------------------------------------------------------- kills

CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from napari_mask_compare.review import Review
    a = np.load(sys.argv[1]); b = np.load(sys.argv[2])
    review = Review.open(a, b, output=sys.argv[3])
    session = review.session
    while session.current is not None and not session.done:
        if session.current.index % 7 == 3:
            g = session.current.region
            review.edit([(tuple(slice(s.start, s.start + 1) for s in g), None, 60000)])
        review.decide("ABMN"[session.current.index % 4])
        print(session.summary()["decided"], flush=True)
        time.sleep(0.005)
    review.close()
""")


@pytest.mark.slow
def test_killed_review_resumes_losing_nothing_and_leaves_no_temp_file(tmp_path):
    rng = np.random.default_rng(1)
    a = np.zeros((8, 256, 256), np.uint16)
    b = np.zeros_like(a)
    for i in range(1, 400):
        z, y, x = rng.integers(0, [6, 246, 246])
        a[z:z + 2, y:y + 8, x:x + 8] = i
        b[z:z + 2, y + 1:y + 9, x:x + 7] = i + 1000
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    out = tmp_path / "o.tif"
    reference = Session.from_masks(a, b)
    tiffs_seen = 0
    for kill_after in (1, 15, 60):  # decisions confirmed by the child before the kill
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path / "a.npy"), str(tmp_path / "b.npy"),
             str(out)], stdout=subprocess.PIPE, text=True)
        confirmed = 0
        while confirmed < kill_after:
            line = child.stdout.readline()
            if not line:
                break
            confirmed = int(line)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        on_disk = tifffile.imread(out) if out.exists() else None
        with Review.open(a, b, output=out) as resumed:
            assert not list(tmp_path.glob(f".*.{child.pid}.*.tmp"))  # the killed one's are gone
            assert resumed.session.summary()["decided"] >= confirmed  # nothing confirmed lost
            replay = Session(a, b, reference.groups)
            states = [replay.output.tobytes()]
            for op in read_ops(out):
                replay.replay([op])
                states.append(replay.output.tobytes())
            assert replay.output.tobytes() == resumed.session.output.tobytes()
        if on_disk is not None:  # the TIFF is always a whole file, holding whole actions
            tiffs_seen += 1
            assert on_disk.astype(replay.output.dtype).tobytes() in states
    assert tiffs_seen and resumed.session.summary()["decided"] >= 60


@pytest.mark.parametrize("name", ["o.owner.json", "o.summary.json", "o_classes.tif"])
def test_a_new_review_never_writes_over_a_file_beside_its_output(every_kind_2d, tmp_path,
                                                                  name):
    (tmp_path / name).write_text("my notes")
    with pytest.raises(InputError, match="never overwritten|not a review's"):
        Review.open(*every_kind_2d, output=tmp_path / "o.tif").close()
    assert (tmp_path / name).read_text() == "my notes"


@pytest.mark.parametrize("header", [
    '"sources": 5', '"sources": []', '"sources": [{"key": "B", "fingerprint": "x"}, '
    '{"key": "A", "fingerprint": "y"}]', '"axes": "xy"', '"params": 3',
    '"options": {"blind": 1}', '"options": {"blind": true}', '"version": 0', '"version": "2"'])
def test_a_journal_header_of_the_wrong_shape_is_refused(every_kind_2d, tmp_path, header):
    out = tmp_path / "o.tif"
    Review.open(*every_kind_2d, output=out).close()
    path = journal_path(out)
    first, rest = path.read_text().split("\n", 1)
    key = header.split(":")[0].strip('"')
    damaged = json.loads(first)
    damaged[key] = json.loads(header.split(":", 1)[1])
    path.write_text(json.dumps(damaged) + "\n" + rest)
    before = path.read_bytes()
    with pytest.raises(InputError, match="not a napari-mask-compare journal"):
        Review.open(*every_kind_2d, output=out)
    assert path.read_bytes() == before


def test_a_journal_of_a_newer_version_is_named_so_never_damaged(every_kind_2d, tmp_path):
    out = tmp_path / "o.tif"
    with Review.open(*every_kind_2d, output=out) as review:
        review.decide("A")
    path = journal_path(out)
    first, rest = path.read_text().split("\n", 1)
    path.write_text(json.dumps({**json.loads(first), "version": 3, "sources": "?"}) + "\n"
                    + rest + '{"op": "from the future"}\n')
    before = path.read_bytes()
    with pytest.raises(InputError) as refused:
        Review.open(*every_kind_2d, output=out)
    assert str(refused.value) == (
        f"{path}: written by a newer version of napari-mask-compare (journal version 3; this "
        "install reads versions 1-2); upgrade to resume it")
    assert path.read_bytes() == before


def test_a_journal_shared_by_link_with_another_review_is_refused(every_kind_2d, tmp_path):
    out = tmp_path / "o.tif"
    Review.open(*every_kind_2d, output=out).close()
    other = tmp_path / "other"
    other.mkdir()
    journal_path(other / "o.tif").symlink_to(journal_path(out))
    with pytest.raises(InputError, match="is a link"):
        Review.open(*every_kind_2d, output=other / "o.tif")
    os.link(journal_path(out), journal_path(tmp_path / "hard.tif"))
    with pytest.raises(InputError, match="is a link"):
        Review.open(*every_kind_2d, output=tmp_path / "hard.tif")
