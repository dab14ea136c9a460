"""A full disk during ``merge`` and ``report``: one line, exit 2, nothing torn, nothing left.

Two disks: a real one, a 256 KiB tmpfs mounted for the test (needs root and
``mount``; skipped otherwise), and a simulated one, where ``fsync`` of the
written file fails with ENOSPC (as on file systems that allocate late), which
runs everywhere.
"""

import contextlib
import errno
import json
import os
import subprocess

import numpy as np
import pytest
import tifffile

from napari_mask_compare.cli import main

NO_SPACE = os.strerror(errno.ENOSPC)


class TmpfsDisk:
    """A small tmpfs: ``fill()`` leaves a few KiB free."""

    def __init__(self, folder):
        self.folder = folder

    def fill(self, *, leave: int = 8192) -> None:
        info = os.statvfs(self.folder)
        free = info.f_bavail * info.f_frsize
        with open(self.folder / "filler", "wb") as f:
            f.write(b"\0" * max(0, free - leave))

    def free(self) -> None:
        (self.folder / "filler").unlink()

    def files(self):
        return sorted(p.name for p in self.folder.iterdir() if p.name != "filler")


class SimulatedDisk(TmpfsDisk):
    """A folder whose files cannot be made durable once ``fill()`` is called."""

    def __init__(self, folder, monkeypatch):
        super().__init__(folder)
        self.monkeypatch = monkeypatch

    def fill(self, *, leave: int = 0) -> None:
        fsync = os.fsync

        def no_space(fd):
            if os.path.isdir(f"/proc/self/fd/{fd}"):  # a folder's fsync: nothing to allocate
                return fsync(fd)
            raise OSError(errno.ENOSPC, NO_SPACE)

        self.monkeypatch.setattr(os, "fsync", no_space)


class InjectedDisk(TmpfsDisk):
    """A folder where the writers of a review's output (a TIFF, a store's chunks) meet
    ENOSPC once ``fill()`` is called, until ``free()``; the journal is written."""

    def __init__(self, folder):
        super().__init__(folder)
        self.patch = pytest.MonkeyPatch()

    def fill(self, *, leave: int = 0) -> None:
        import zarr

        from napari_mask_compare import _files

        def no_space(*args, **kwargs):
            raise OSError(errno.ENOSPC, NO_SPACE)

        self.patch.setattr(_files._Stage, "open", no_space)
        self.patch.setattr(zarr.Array, "__setitem__", no_space)

    def free(self) -> None:
        self.patch.undo()


def _mount_tmpfs(folder):
    """Mount a 256 KiB tmpfs on ``folder``; the reason why not, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs",
                                 str(folder)], capture_output=True, text=True)
    except OSError as err:
        return f"cannot run mount ({err})"
    if result.returncode != 0:
        return f"mount refused: {result.stderr.strip()}"
    return None


@contextlib.contextmanager
def tmpfs_disk(folder):
    """A :class:`TmpfsDisk` mounted on ``folder`` for the block (the test is skipped without)."""
    reason = _mount_tmpfs(folder)
    if reason:
        pytest.skip(reason)
    try:
        yield TmpfsDisk(folder)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)  # lazy: even if a file is open


@pytest.fixture(params=["tmpfs", "simulated"])
def disk(request, tmp_path, monkeypatch):
    folder = tmp_path / "disk"
    folder.mkdir()
    if request.param == "simulated":
        yield SimulatedDisk(folder, monkeypatch)
        return
    with tmpfs_disk(folder) as tmpfs:
        yield tmpfs


@pytest.fixture
def masks(tmp_path):
    """Two 256 x 256 masks (a merge output is 128 KiB) beside the disk, not on it."""
    a = np.zeros((256, 256), np.uint16)
    for i, (y, x) in enumerate(np.ndindex(16, 16)):
        a[16 * y + 2:16 * y + 14, 16 * x + 2:16 * x + 14] = i + 1
    b = np.roll(a, 3, axis=1)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    return tmp_path / "a.npy", tmp_path / "b.npy"


def one_error_line(capsys, *, command, named):
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"mask-compare {command}: error: {named}: cannot write ({NO_SPACE})"]


def test_merge_on_a_full_disk_keeps_the_previous_output(disk, masks, capsys):
    out = disk.folder / "o.tif"
    assert main(["merge", *map(str, masks), "--out", str(out)]) == 0
    capsys.readouterr()
    previous = out.read_bytes()
    disk.fill()
    assert main(["merge", *map(str, masks), "--out", str(out), "--policy", "b",
                 "--overwrite"]) == 2
    one_error_line(capsys, command="merge", named=out)
    assert out.read_bytes() == previous
    assert disk.files() == ["o.tif"]  # no temporary file left


def test_merge_into_a_new_file_on_a_full_disk_leaves_nothing(disk, masks, capsys):
    disk.fill()
    out = disk.folder / "o.tif"
    assert main(["merge", *map(str, masks), "--out", str(out)]) == 2
    one_error_line(capsys, command="merge", named=out)
    assert disk.files() == []


def test_report_on_a_full_disk_leaves_no_file_and_no_folder(disk, masks, capsys):
    disk.fill()
    out = disk.folder / "reports" / "r"
    assert main(["report", *map(str, masks), "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0]
    assert lines[0].startswith(f"mask-compare report: error: {out}{os.sep}")
    assert lines[0].endswith(f": cannot write ({NO_SPACE})")
    assert disk.files() == []  # the folders it made are gone


@pytest.mark.slow
def test_report_on_a_full_disk_keeps_the_previous_report(disk, masks, capsys):
    small = [str(m).replace(".npy", "_small.npy") for m in masks]
    for mask, path in zip(masks, small):
        np.save(path, np.load(mask)[:64, :64])  # a first report that fits on the disk
    out = disk.folder / "r"
    assert main(["report", *small, "--out", str(out)]) == 0
    capsys.readouterr()
    previous = {p.name: p.read_bytes() for p in out.iterdir()}
    disk.fill()
    assert main(["report", *map(str, masks), "--out", str(out), "--overwrite"]) == 2
    assert capsys.readouterr().err.strip().endswith(f": cannot write ({NO_SPACE})")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == previous


def test_a_review_on_a_full_disk_loses_nothing_and_resumes(disk, masks):
    """Actions refused while the disk is full change nothing; the journal stays whole."""
    from napari_mask_compare import _files
    from napari_mask_compare.journal import journal_path
    from napari_mask_compare.review import Review

    if isinstance(disk, SimulatedDisk):
        pytest.skip("the journal line is written before any fsync: needs a real full disk")
    a, b = (np.load(path)[:96, :96] for path in masks)  # the TIFF and its temp copy fit
    out = disk.folder / "o.tif"
    review = Review.open(a, b, output=out)
    try:
        review.decide("A")
        review.flush()
        journal = journal_path(out).read_bytes()
        state = review.session.output.copy()
        disk.fill(leave=0)
        refused = None
        for _ in range(1000):  # decide and undo until the journal's last page is full too
            action = review.undo if len(review.session.steps) > 1 else review.decide
            try:
                action() if action == review.undo else action("B")
            except _files.WriteError as err:
                refused = err
                break
            state = review.session.output.copy()
        assert str(refused) == f"{journal_path(out)}: cannot write ({NO_SPACE})"
        assert np.array_equal(review.session.output, state)  # refused whole
        assert journal_path(out).read_bytes().endswith(b"\n")  # never half a line
        with pytest.raises(OSError, match=NO_SPACE):  # the TIFF save failed too: said
            review.flush()
        (disk.folder / "filler").unlink()
        review.undo()  # space again: the next action is whole, and the TIFF saved
    finally:
        review.close()
    assert journal_path(out).read_bytes().startswith(journal)
    with Review.open(a, b, output=out) as resumed:
        assert resumed.session.output.tobytes() == review.session.output.tobytes()
    assert disk.files() == sorted(["o.journal.jsonl", "o.lock", "o.summary.json", "o.tif",
                                   "o.view.json"])


@pytest.fixture(params=["tmpfs", "injected"])
def transient_disk(request, tmp_path):
    """A disk that is full for a while: a real tmpfs, or writers that fail (runs everywhere)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if request.param == "injected":
        disk = InjectedDisk(folder)
        yield disk
        disk.free()
        return
    with tmpfs_disk(folder) as tmpfs:
        yield tmpfs


@pytest.mark.parametrize("retried_by", ["flush", "close"])
@pytest.mark.parametrize("output", ["o.tif", "o.zarr"])
def test_a_save_that_failed_on_a_full_disk_is_retried_once_there_is_space(
        transient_disk, masks, output, retried_by):
    """flush() and close() save again: the output holds every decision, the summary is
    written (issue 17: the stale error was raised and Q failed until another action)."""
    import json

    from napari_mask_compare import _files, ome_zarr_out
    from napari_mask_compare.review import Review

    a, b = (np.load(path)[:96, :96] for path in masks)
    out = transient_disk.folder / output
    review = Review.open(a, b, output=out, chunks=(32, 32))
    whole = (slice(None), slice(None))

    def saved():
        return (np.asarray(ome_zarr_out.labels_array(out)[...]) if output.endswith(".zarr")
                else tifffile.imread(out))

    try:
        review.decide("A")
        review.flush()
        transient_disk.fill(leave=0)
        review.decide("B")  # its journal line fits in the journal's last page
        with pytest.raises(OSError, match=NO_SPACE):  # the output's save did not
            review.flush()
        assert np.count_nonzero(saved() != review.session.read("output", whole)) > 0
        transient_disk.free()
        if retried_by == "flush":
            assert review.flush() and review.save_error is None
            assert np.array_equal(saved(), review.session.read("output", whole))
    finally:
        summary = review.close()
    final = saved()
    assert np.array_equal(final, review.session.read("output", whole))
    assert json.loads(_files.sidecar(out, ".summary.json").read_text()) == summary
    assert summary["B"] > 0
    with Review.open(a, b, output=out) as resumed:  # the journal holds the same decisions
        assert np.array_equal(resumed.session.read("output", whole), final)


@pytest.mark.parametrize("output", ["o.tif", "o.zarr"])
def test_close_on_a_full_disk_fails_in_one_line_keeps_the_lock_and_is_retried(
        transient_disk, masks, output):
    """A close that fails is tried again by the next close (it marked the review closed
    and the second close returned as if saved); the review stays locked meanwhile and
    takes no more actions; the error names the output (a chunked save said only
    "[Errno 28] No space left on device")."""
    from napari_mask_compare import _files, ome_zarr_out
    from napari_mask_compare.errors import InputError
    from napari_mask_compare.review import Review

    a, b = (np.load(path)[:96, :96] for path in masks)
    out = transient_disk.folder / output
    summary_path = _files.sidecar(out, ".summary.json")
    review = Review.open(a, b, output=out, chunks=(32, 32))
    review.decide("A")
    review.flush()
    transient_disk.fill(leave=0)
    review.decide("B")  # its journal line fits in the journal's last page
    for _ in range(2):  # still full: each close fails, none returns as if it had saved
        with pytest.raises(OSError) as failed:
            review.close()
        assert str(failed.value) == f"{out}: cannot write ({NO_SPACE})"
        assert not summary_path.exists()
        with pytest.raises(InputError, match="this review is open in process"):
            Review.open(a, b, output=out)
        with pytest.raises(ValueError, match="is being closed"):
            review.decide("N")
    transient_disk.free()
    summary = review.close()
    assert json.loads(summary_path.read_text()) == summary and summary["B"] == 1
    saved = (np.asarray(ome_zarr_out.labels_array(out)[...]) if output.endswith(".zarr")
             else tifffile.imread(out))
    with Review.open(a, b, output=out) as resumed:  # unlocked; the journal holds both
        assert resumed.session.summary()["decided"] == 2
        assert np.array_equal(resumed.session.read("output", (slice(None),) * 2) > 0,
                              saved > 0)


def test_a_failed_store_write_leaves_no_folder_whatever_zarr_still_writes(masks, tmp_path,
                                                                          monkeypatch, capsys):
    """zarr writes a group's .zgroup and .zattrs together: when one fails (a full disk) the
    other goes on, and it made the temporary folder again after it was removed (a
    ``.o.zarr.<pid>.<hex>.tmp`` folder was left, 1 run in 10 on a full tmpfs)."""
    import threading
    import time

    from zarr.storage import _local

    real_put, late_write = _local._put, threading.Event()

    def put(path, value, exclusive=False):
        if path.name == ".zattrs":  # the disk is full for this one
            raise OSError(errno.ENOSPC, NO_SPACE)
        if path.name == ".zgroup":  # its sibling, written a moment later
            time.sleep(0.2)
            try:
                return real_put(path, value, exclusive=exclusive)
            finally:
                late_write.set()
        return real_put(path, value, exclusive=exclusive)

    monkeypatch.setattr(_local, "_put", put)
    out = tmp_path / "disk" / "o.zarr"
    out.parent.mkdir()
    assert main(["merge", *map(str, masks), "--out", str(out)]) == 2
    assert late_write.wait(10)
    one_error_line(capsys, command="merge", named=out)
    assert list(out.parent.iterdir()) == []
