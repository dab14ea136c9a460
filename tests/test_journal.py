import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_mask_compare.io import InputError
from napari_mask_compare.journal import Journal, fingerprint, journal_path, open_review
from napari_mask_compare.session import Session


def read_ops(output):
    lines = journal_path(output).read_text().splitlines()
    return [json.loads(line) for line in lines[1:]]


def test_every_action_is_journaled_and_saved(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    out = tmp_path / "curated.tif"
    session, saver = open_review(a, b, output=out, inputs={"mask_a": "a.tif", "mask_b": "b.tif"})
    session.decide("B")
    session.decide("M")
    session.undo()
    saver.flush()
    assert [op["op"] for op in read_ops(out)] == ["decide", "decide", "undo"]
    assert np.array_equal(tifffile.imread(out), session.output)
    session.finish()
    saver.close()
    assert np.array_equal(tifffile.imread(out), session.output)
    summary = json.loads(out.with_name("curated.summary.json").read_text())
    assert summary == session.summary() and summary["Auto"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "curated.journal.jsonl", "curated.summary.json", "curated.tif"]


def test_resume_reproduces_the_output(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    out = tmp_path / "o.tif"
    session, saver = open_review(a, b, output=out)
    for choice in "ABMN":
        session.decide(choice)
    saver.close()
    resumed, saver2 = open_review(a.astype(np.uint32), b, output=out)  # same values, other dtype
    assert resumed.output.tobytes() == session.output.tobytes()
    assert resumed.summary() == session.summary()
    assert resumed.current.index == session.current.index  # where it stopped
    saver2.close()


def test_other_inputs_or_settings_are_refused_untouched(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    out = tmp_path / "o.tif"
    session, saver = open_review(a, b, output=out, inputs={"mask_a": "a.tif", "mask_b": "b.tif"})
    session.decide("A")
    saver.close()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    other = b.copy()
    other[0, 0] = 99
    with pytest.raises(InputError, match=r"another mask B \(b.tif\)"):
        open_review(a, other, output=out)
    with pytest.raises(InputError, match="iou_threshold"):
        open_review(a, b, output=out, iou_threshold=0.5)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_an_existing_file_is_never_adopted(tmp_path, every_kind_2d):
    out = tmp_path / "ground_truth.tif"
    tifffile.imwrite(out, every_kind_2d[0])
    before = out.read_bytes()
    with pytest.raises(InputError, match="not the output of a review"):
        open_review(*every_kind_2d, output=out)
    assert out.read_bytes() == before and not journal_path(out).exists()


def test_incomplete_last_line_is_dropped_and_damage_reported(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    out = tmp_path / "o.tif"
    session, saver = open_review(a, b, output=out)
    session.decide("A")
    session.decide("B")
    saver.close()
    path = journal_path(out)
    text = path.read_text()
    path.write_text(text + '{"op": "deci')  # killed in the middle of a line
    resumed, saver = open_review(a, b, output=out)
    assert resumed.summary()["decided"] == 2
    resumed.decide("M")
    saver.close()
    assert [op["op"] for op in read_ops(out)] == ["decide"] * 3
    lines = path.read_text().splitlines()
    lines[1] = "garbage"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="line 2 is damaged"):
        open_review(a, b, output=out)


def test_lines_that_cannot_be_replayed_are_named(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    out = tmp_path / "o.tif"
    session, saver = open_review(a, b, output=out)
    session.decide("A")
    session.decide("B")
    saver.close()
    path = journal_path(out)
    header, first, second = path.read_text().splitlines()
    wrong_ids = json.loads(second)
    wrong_ids["ids"] = [[999], []]
    path.write_text("\n".join([header, first, json.dumps(wrong_ids)]) + "\n")
    with pytest.raises(InputError, match="line 3 decides a group that these inputs do not have"):
        open_review(a, b, output=out)
    again = json.loads(first)  # the same group decided twice without an undo
    path.write_text("\n".join([header, first, json.dumps(again)]) + "\n")
    with pytest.raises(InputError, match="line 3 cannot be replayed"):
        open_review(a, b, output=out)


def test_journal_rejects_foreign_files(tmp_path):
    path = tmp_path / "x.journal.jsonl"
    path.write_text('{"hello": 1}\n')
    with pytest.raises(InputError, match="not a napari-mask-compare journal"):
        Journal.read(path)


def test_fingerprint_depends_on_values_and_shape():
    x = np.arange(12, dtype=np.uint16).reshape(3, 4)
    assert fingerprint(x) == fingerprint(x.astype(np.int64))
    assert fingerprint(x) != fingerprint(x.reshape(4, 3))
    y = x.copy()
    y[2, 3] = 0
    assert fingerprint(x) != fingerprint(y)


def test_journal_fsync_runs_beside_the_decision(every_kind_2d, tmp_path, monkeypatch):
    """A slow fsync (ext4 making it wait for the TIFF's pages) does not hold up a
    decision; the line is in the file at once, and flush() waits for the fsync."""
    import threading

    from napari_mask_compare import journal

    release, synced = threading.Event(), []

    def slow_fsync(path):
        release.wait(10)
        synced.append(Path(path).name)

    session, saver = open_review(*every_kind_2d, output=tmp_path / "o.tif")
    saver.flush()
    monkeypatch.setattr(journal, "_fsync_path", slow_fsync)
    start = time.perf_counter()
    session.decide("A")
    assert time.perf_counter() - start < 5
    assert read_ops(tmp_path / "o.tif")[-1]["choice"] == "A"   # written: a kill loses nothing
    assert not saver.flush(timeout=0.2) and synced == []      # flush waits for the fsync
    release.set()
    assert saver.flush(timeout=10)
    assert synced == ["o.journal.jsonl"]
    saver.close()


def test_a_failed_journal_sync_is_reported_and_close_still_stops(every_kind_2d, tmp_path,
                                                                  monkeypatch):
    from napari_mask_compare import journal

    def failing_fsync(path):
        raise OSError(5, "Input/output error")

    session, saver = open_review(*every_kind_2d, output=tmp_path / "o.tif")
    monkeypatch.setattr(journal, "_fsync_path", failing_fsync)
    session.decide("A")
    with pytest.raises(OSError, match="journal could not be synced.*o.journal.jsonl"):
        saver.flush()
    with pytest.raises(OSError, match="journal could not be synced"):
        saver.close()
    assert not any(thread.is_alive() for thread in saver._threads)
    summary = json.loads((tmp_path / "o.summary.json").read_text())
    assert summary["A"] == 1


def test_saving_does_not_hold_up_decisions(tmp_path):
    """Decisions return while the background thread is still writing the TIFF."""
    rng = np.random.default_rng(0)
    a = np.zeros((16, 512, 512), np.uint16)
    for i in range(1, 200):
        z, y, x = rng.integers(0, [12, 500, 500])
        a[z:z + 4, y:y + 10, x:x + 10] = i
    session, saver = open_review(a, a, output=tmp_path / "o.tif")
    times = []
    for _ in range(20):
        start = time.perf_counter()
        session.decide("A")
        times.append(time.perf_counter() - start)
    saver.close()
    assert saver.writes < 20  # writes were coalesced
    assert np.array_equal(tifffile.imread(tmp_path / "o.tif"), session.output)


CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from napari_mask_compare.journal import open_review
    a = np.load(sys.argv[1]); b = np.load(sys.argv[2])
    session, saver = open_review(a, b, output=sys.argv[3])
    while session.current is not None and not session.done:
        session.decide("ABMN"[session.current.index % 4])
        print(session.summary()["decided"], flush=True)
        time.sleep(0.005)
    saver.close()
""")


@pytest.mark.slow
def test_killed_review_resumes_losing_at_most_the_decision_in_flight(tmp_path):
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
        resumed, saver = open_review(a, b, output=out)
        assert resumed.summary()["decided"] >= confirmed  # nothing confirmed was lost
        if out.exists():  # the TIFF is always a whole file, holding whole decisions
            tiffs_seen += 1
            on_disk = tifffile.imread(out)
            replay = Session(a, b, reference.groups)
            states = [replay.output.tobytes()]
            for op in read_ops(out):
                replay.replay([op])
                states.append(replay.output.tobytes())
            assert on_disk.astype(replay.output.dtype).tobytes() in states
        saver.close()
    assert tiffs_seen and resumed.summary()["decided"] >= 60
