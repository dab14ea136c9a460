import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_mask_compare.cli import main


def write(path, data, **kwargs):
    tifffile.imwrite(path, data, **kwargs)
    return path


def test_merge_two_files(every_kind_2d, tmp_path, capsys):
    a, b = every_kind_2d
    write(tmp_path / "a.tif", a, imagej=True, resolution=(2.0, 2.0))
    write(tmp_path / "b.tif", b)
    out = tmp_path / "o.tif"
    assert main(["merge", str(tmp_path / "a.tif"), str(tmp_path / "b.tif"), "--out", str(out),
                 "--policy", "b"]) == 0
    result = tifffile.imread(out)
    assert result.dtype == np.uint16
    # paired groups keep B's objects; the unpaired A 7 and B 17 are added: 6 + 2 objects
    assert np.array_equal(result > 0, (b > 0) | (a == 7))
    assert np.array_equal(np.unique(result), np.arange(9))
    for label in np.unique(b[b > 0]):
        assert len(np.unique(result[b == label])) == 1
    assert "objects 8, A 0, B 4, M 0, N 0, Auto 2, contested 0" in capsys.readouterr().out
    with tifffile.TiffFile(out) as tif:  # voxel size carried from mask A
        assert tif.pages[0].tags["XResolution"].value == (2, 1)


def test_merge_folders_reports_files_without_partner(every_kind_2d, tmp_path, capsys):
    a, b = every_kind_2d
    for folder in ("A", "B"):
        (tmp_path / folder).mkdir()
    for name in ("x", "y"):
        write(tmp_path / "A" / f"{name}.tif", a)
        write(tmp_path / "B" / f"{name}.tif", b)
    write(tmp_path / "A" / "lonely.tif", a)
    write(tmp_path / "A" / "z.tif", a)
    write(tmp_path / "B" / "z.tif", b[:, :-1])  # a bad pair: reported, skipped, status 2
    assert main(["merge", str(tmp_path / "A"), str(tmp_path / "B"), "--out",
                 str(tmp_path / "out"), "--policy", "union"]) == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "mask-compare-merge.records", "x.tif", "y.tif"]
    err = capsys.readouterr().err
    assert "no partner" in err and "lonely" in err
    assert f"error: {tmp_path / 'B' / 'z.tif'}: mask B has shape (12, 39)" in err
    assert np.array_equal(tifffile.imread(tmp_path / "out" / "x.tif") > 0, (a > 0) | (b > 0))


def test_a_rerun_merges_only_the_pairs_not_done(every_kind_2d, tmp_path, capsys):
    a, b = every_kind_2d
    for folder in ("A", "B"):
        (tmp_path / folder).mkdir()
    for name in ("x", "y", "z"):
        write(tmp_path / "A" / f"{name}.tif", a)
        write(tmp_path / "B" / f"{name}.tif", b)
    write(tmp_path / "B" / "z.tif", b[:, :-1])  # fails the first time
    args = ["merge", str(tmp_path / "A"), str(tmp_path / "B"), "--out", str(tmp_path / "out"),
            "--policy", "union"]
    assert main(args) == 2
    done = {name: (tmp_path / "out" / f"{name}.tif").stat().st_mtime_ns for name in "xy"}
    write(tmp_path / "B" / "z.tif", b)  # mended
    write(tmp_path / "B" / "y.tif", b[::-1])  # edited: its output is out of date
    capsys.readouterr()
    assert main(args) == 0  # without --overwrite: x is skipped, y and z are not refused
    out = capsys.readouterr()
    assert "1 of 3 pairs were done by an earlier run" in out.err
    assert "x.tif" not in out.out and "y.tif" in out.out and "z.tif" in out.out
    assert (tmp_path / "out" / "x.tif").stat().st_mtime_ns == done["x"]
    assert (tmp_path / "out" / "y.tif").stat().st_mtime_ns != done["y"]
    assert np.array_equal(tifffile.imread(tmp_path / "out" / "y.tif") > 0,
                          (b[::-1] > 0) | (a > 0))  # the union of the edited pair


def test_a_rerun_refuses_an_output_changed_since_it_was_merged(every_kind_2d, tmp_path, capsys):
    a, b = every_kind_2d
    for folder in ("A", "B"):
        (tmp_path / folder).mkdir()
        for name in ("x", "y"):
            write(tmp_path / folder / f"{name}.tif", a if folder == "A" else b)
    args = ["merge", str(tmp_path / "A"), str(tmp_path / "B"), "--out", str(tmp_path / "out")]
    assert main(args) == 0
    write(tmp_path / "A" / "x.tif", a[::-1])
    os.utime(tmp_path / "out" / "x.tif", ns=(1, 1))  # someone touched the output
    capsys.readouterr()
    assert main(args) == 2
    assert "x.tif: exists (an earlier output); give --overwrite" in capsys.readouterr().err


def test_a_folder_run_of_one_pair_is_recorded_and_skipped_when_run_again(every_kind_2d, tmp_path,
                                                                          capsys):
    """A folder run is a folder run whatever the number of pairs (one pair was merged as a
    single file, without a record, so running the same command again was refused)."""
    a, b = every_kind_2d
    for folder, mask in (("A", a), ("B", b)):
        (tmp_path / folder).mkdir()
        write(tmp_path / folder / "p.tif", mask)
    out = tmp_path / "out"
    args = ["merge", str(tmp_path / "A"), str(tmp_path / "B"), "--out", str(out)]
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["mask-compare-merge.records", "p.tif"]
    written = (out / "p.tif").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mask-compare merge: 1 of 1 pairs were done by an earlier run with the same "
                   "inputs and settings, skipped (--overwrite merges them again)"]
    assert (out / "p.tif").stat().st_mtime_ns == written


@pytest.mark.parametrize("problem", ["shape", "float", "missing", "not_tiff", "out_is_file_dir"])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, problem):
    a = np.zeros((8, 8), np.uint16)
    a[2:5, 2:5] = 1
    path_a = write(tmp_path / "a.tif", a)
    path_b = tmp_path / "b.tif"
    out = tmp_path / "out" / "o.tif"
    if problem == "shape":
        write(path_b, np.zeros((8, 9), np.uint16))
    elif problem == "float":
        write(path_b, a.astype(np.float32) / 2)
    elif problem == "not_tiff":
        path_b.write_text("hello")
    elif problem == "out_is_file_dir":
        write(path_b, a)
        (tmp_path / "out").write_text("a file where the folder should be")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = subprocess.run(
        [sys.executable, "-m", "napari_mask_compare.cli", "merge", str(path_a), str(path_b),
         "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    named = str(tmp_path / "out") if problem == "out_is_file_dir" else str(path_b)
    assert named in lines[0]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
