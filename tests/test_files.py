"""_files: the one way a file reaches disk, and the one never-overwrite rule."""

import errno
import os
import subprocess
import sys

import pytest
import tifffile

from napari_mask_compare import _files
from napari_mask_compare.errors import InputError
from napari_mask_compare.read import is_our_tiff, write_labels


def test_atomic_open_removes_its_temporary_file_on_error(tmp_path):
    (tmp_path / "x.csv").write_bytes(b"old")
    with pytest.raises(RuntimeError), _files.atomic_open(tmp_path / "x.csv") as f:
        f.write(b"partial")
        raise RuntimeError
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]
    assert (tmp_path / "x.csv").read_bytes() == b"old"


def test_staged_files_appear_together_or_not_at_all(tmp_path):
    with pytest.raises(OSError, match="No space left"), _files.staged() as stage:
        with stage.open(tmp_path / "a.txt") as f:
            f.write(b"a")
        with stage.open(tmp_path / "b.txt") as f:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_is_one_line_naming_the_file(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(_files.WriteError) as info, \
            _files.atomic_open(tmp_path / "file" / "x.tif"):
        pass
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'file'}: cannot create the folder (")
    assert "\n" not in message


def test_folders_made_for_a_failed_stage_are_removed(tmp_path):
    with pytest.raises(RuntimeError), _files.staged() as stage:
        with stage.open(tmp_path / "new" / "deeper" / "a.txt") as f:
            f.write(b"a")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_stale_temps_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = tmp_path / f".o.tif.{dead.stdout.strip()}.0123abcd.tmp"
    mine = tmp_path / f".o.tif.{os.getpid()}.0123abcd.tmp"
    foreign = tmp_path / ".notes.tmp"  # not of our naming: never touched
    for path in (stale, mine, foreign):
        path.write_bytes(b"x")
    assert _files.remove_stale_temps(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, foreign.name])


def test_check_output_refuses_what_is_not_ours(tmp_path):
    given = tmp_path / "b.tif"
    tifffile.imwrite(given, [[1, 2]])
    (tmp_path / "link.tif").symlink_to(given)
    thesis = tmp_path / "thesis.tif"
    thesis.write_text("my thesis")
    ours = write_labels(tmp_path / "merged.tif", [[0, 5]])
    assert is_our_tiff(ours) and not is_our_tiff(given) and not is_our_tiff(thesis)
    check = _files.check_output
    with pytest.raises(InputError, match="is an input"):
        check(given, inputs=[given], ours=is_our_tiff, overwrite=True)
    with pytest.raises(InputError, match="is an input"):
        check(tmp_path / "link.tif", inputs=[given], ours=is_our_tiff, overwrite=True)
    with pytest.raises(InputError, match="not written by mask-compare"):
        check(thesis, ours=is_our_tiff, overwrite=True)
    with pytest.raises(InputError, match="give --overwrite"):
        check(ours, ours=is_our_tiff)
    assert check(ours, ours=is_our_tiff, overwrite=True) == ours
    os.chmod(ours, 0o444)
    with pytest.raises(InputError, match="read-only"):
        check(ours, ours=is_our_tiff, overwrite=True)


def test_a_review_output_is_never_an_output_of_something_else(tmp_path):
    out = write_labels(tmp_path / "o.tif", [[1]])
    _files.sidecar(out, ".journal.jsonl").write_text("{}\n")
    classes = write_labels(tmp_path / "o_classes.tif", [[1]])  # a review's class side-car
    for path in (out, classes):
        with pytest.raises(InputError, match="belongs to a review"):
            _files.check_output(path, ours=is_our_tiff, overwrite=True)
