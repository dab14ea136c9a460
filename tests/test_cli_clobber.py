"""``merge`` and ``report`` never overwrite what they must not (issue 9).

Each case runs ``mask-compare`` in process and checks: exit status 2, one
stderr line naming the file, and the protected file as it was (bytes, mtime,
inode: a rename over it would change the inode).
"""

import json
import os
import socket
import stat

import numpy as np
import pytest
import tifffile

from file_trees import entries, refused, state, tree
from napari_mask_compare.cli import main
from napari_mask_compare.read import write_labels
from napari_mask_compare.review import Review


@pytest.fixture
def masks(every_kind_2d, tmp_path):
    """Mask A and B as TIFFs that mask-compare wrote (so that only the input rule saves them)."""
    a, b = every_kind_2d
    return (write_labels(tmp_path / "a.tif", a, relabel=False),
            write_labels(tmp_path / "b.tif", b, relabel=False))


# --------------------------------------------------------------------------- merge, one file


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_merge_out_is_mask_b(masks, capsys, overwrite):
    a, b = masks
    before = state(a, b)
    line = refused(capsys, ["merge", a, b, "--out", b, *overwrite], named=b)
    assert "is an input" in line
    assert state(a, b) == before


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_merge_out_is_mask_a_through_a_link(masks, tmp_path, capsys, link):
    a, b = masks
    out = tmp_path / "link.tif"
    (os.symlink if link == "symlink" else os.link)(a, out)
    before = state(a, b, out)
    line = refused(capsys, ["merge", a, b, "--out", out, "--overwrite"], named=out)
    assert "is an input" in line
    assert state(a, b, out) == before
    assert out.is_symlink() == (link == "symlink")


@pytest.mark.parametrize("kind", ["tiff", "text"])
def test_merge_never_overwrites_a_file_it_did_not_write(masks, tmp_path, capsys, kind):
    out = tmp_path / "thesis.tif"
    if kind == "tiff":
        tifffile.imwrite(out, np.arange(12, dtype=np.uint16).reshape(3, 4))
    else:
        out.write_text("Chapter 1. Three years of work.\n")
    before = state(out)
    line = refused(capsys, ["merge", *masks, "--out", out, "--overwrite"], named=out)
    assert "not written by mask-compare" in line
    assert state(out) == before


def test_merge_keeps_a_read_only_earlier_output(masks, tmp_path, capsys):
    out = tmp_path / "o.tif"
    assert main(["merge", *map(str, masks), "--out", str(out)]) == 0
    capsys.readouterr()
    out.chmod(0o444)
    before = state(out)
    line = refused(capsys, ["merge", *masks, "--out", out, "--overwrite", "--policy", "b"],
                   named=out)
    assert "read-only" in line
    assert state(out) == before


@pytest.mark.parametrize("kind", ["device", "socket"])
def test_merge_never_replaces_a_device(masks, tmp_path, capsys, kind):
    # a /dev/null of our own: if the check broke, the test must not replace the system's
    # (a FIFO is not used: reading it to see whether it is ours would block)
    out = tmp_path / "null.tif"  # a name with an output suffix, so that the file is looked at
    try:
        if kind == "socket":
            with socket.socket(socket.AF_UNIX) as sock:
                sock.bind(str(out))
        else:
            os.mknod(out, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except OSError as err:
        pytest.skip(f"cannot make a {kind} file here ({err.strerror})")
    before = os.stat(out)
    line = refused(capsys, ["merge", *masks, "--out", out, "--overwrite"], named=out)
    assert "not a regular file" in line
    after = os.stat(out)
    assert after.st_ino == before.st_ino and after.st_mode == before.st_mode


def test_merge_never_writes_over_a_review(every_kind_2d, masks, tmp_path, capsys):
    out = tmp_path / "review" / "a.tif"
    review = Review.open(*every_kind_2d, output=out)
    review.decide("B")
    review.close()
    before = tree(out.parent)
    line = refused(capsys, ["merge", *masks, "--out", out, "--overwrite"], named=out)
    assert "belongs to a review" in line
    assert tree(out.parent) == before


def test_merge_rerun_needs_overwrite_and_then_replaces_its_output(masks, tmp_path, capsys):
    out = tmp_path / "o.tif"
    assert main(["merge", *map(str, masks), "--out", str(out), "--policy", "a"]) == 0
    capsys.readouterr()
    before = state(out)
    line = refused(capsys, ["merge", *masks, "--out", out, "--policy", "b"], named=out)
    assert "--overwrite" in line
    assert state(out) == before
    assert main(["merge", *map(str, masks), "--out", str(out), "--policy", "b",
                 "--overwrite"]) == 0
    assert state(out) != before
    b = tifffile.imread(masks[1])
    assert np.array_equal(tifffile.imread(out) > 0, (b > 0) | (tifffile.imread(masks[0]) == 7))


def test_merge_checks_the_classes_side_car(every_kind_2d, tmp_path, capsys):
    a, b = every_kind_2d
    np.save(tmp_path / "a.npy", np.stack([a, (a > 0) * 1], axis=-1).astype(np.uint16))
    np.save(tmp_path / "b.npy", np.stack([b, (b > 0) * 2], axis=-1).astype(np.uint16))
    out = tmp_path / "o.tif"
    side = tmp_path / "o_classes.tif"
    side.write_text("someone's notes")
    before = state(side)
    refused(capsys, ["merge", tmp_path / "a.npy", tmp_path / "b.npy", "--out", out,
                     "--overwrite"], named=side)
    assert state(side) == before
    assert not out.exists()  # both files or neither


# --------------------------------------------------------------------------- merge, folders


@pytest.fixture
def folders(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    for name in ("A", "B"):
        (tmp_path / name).mkdir()
    for stem in ("x", "y"):
        write_labels(tmp_path / "A" / f"{stem}.tif", a, relabel=False)
        write_labels(tmp_path / "B" / f"{stem}.tif", b, relabel=False)
    return tmp_path / "A", tmp_path / "B"


@pytest.mark.parametrize("which", [0, 1])
def test_merge_folder_out_is_an_input_folder(folders, capsys, which):
    before = {**tree(folders[0]), **tree(folders[1])}
    line = refused(capsys, ["merge", *folders, "--out", folders[which], "--overwrite"],
                   named=folders[which])
    assert "input folder" in line
    assert {**tree(folders[0]), **tree(folders[1])} == before


def test_merge_folder_skips_a_file_it_did_not_write_and_goes_on(folders, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.tif").write_text("not a mask")
    before = state(out / "x.tif")
    assert main(["merge", *map(str, folders), "--out", str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert f"mask-compare merge: error: {out / 'x.tif'}: exists and was not written" in err
    assert "1 of 2 pairs failed" in err
    assert state(out / "x.tif") == before
    assert tifffile.imread(out / "y.tif").max() > 0


def test_merge_folder_into_a_review_folder(every_kind_2d, folders, tmp_path, capsys):
    out = tmp_path / "reviews"
    Review.open(*every_kind_2d, output=out / "x.tif").close()
    before = tree(out)
    assert main(["merge", *map(str, folders), "--out", str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert f"error: {out / 'x.tif'}: belongs to a review" in err
    assert {k: v for k, v in tree(out).items() if k in before} == before


# --------------------------------------------------------------------------- report


def run_report(*args):
    return main(["report", *map(str, args)])


@pytest.mark.parametrize("name", ["association.tif", "curated_filtered.tif"])
def test_report_never_overwrites_an_input_in_its_folder(masks, tmp_path, capsys, name):
    a, b = masks
    out = tmp_path / "report"
    assert run_report(a, b, "--out", out) == 0  # an earlier report: its files are ours
    capsys.readouterr()
    given = out / name
    given.write_bytes(a.read_bytes())  # the user keeps a mask there
    if name == "association.tif":
        args = [given, b, "--out", out]
    else:
        args = [a, b, "--curated", given, "--filter", "npixels < 5", "--out", out]
    before = tree(out)
    line = refused(capsys, ["report", *args, "--overwrite"], named=given)
    assert "is an input" in line
    assert tree(out) == before


def test_report_never_overwrites_a_file_it_did_not_write(masks, tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "pairs.csv").write_text("my own pairs\n")
    before = tree(out)
    line = refused(capsys, ["report", *masks, "--out", out, "--overwrite"], named=out)
    assert "did not write (pairs.csv)" in line
    assert tree(out) == before


@pytest.mark.parametrize("kind", ["user folder", "zarr store", "review"])
def test_report_never_writes_into_a_folder_it_does_not_own(masks, tmp_path, capsys, kind):
    """A folder holding the user's files, a zarr store or a review: nothing added (issue 17)."""
    import zarr

    out = tmp_path / ("other.zarr" if kind == "zarr store" else "out")
    if kind == "user folder":
        out.mkdir()
        (out / "notes.txt").write_text("my notes\n")
    elif kind == "zarr store":
        zarr.create_array(str(out), shape=(8, 8), dtype="uint16", chunks=(4, 4))[...] = 1
    else:
        a, b = (tifffile.imread(mask) for mask in masks)
        with Review.open(a, b, output=out / "x.tif") as review:
            review.decide("A")
    before, listing = tree(out), entries(out)
    for overwrite in ([], ["--overwrite"]):
        line = refused(capsys, ["report", *masks, "--out", out, *overwrite], named=out)
        assert "did not write" in line and "new or empty folder" in line
        assert tree(out) == before and entries(out) == listing


def test_report_goes_into_a_new_folder_or_an_empty_one(masks, tmp_path, capsys):
    from napari_mask_compare.report import report_files

    empty = tmp_path / "empty"
    empty.mkdir()
    stale = empty / ".summary.json.999999999.0123abcd.tmp"  # of a report killed while writing
    stale.write_text("{")
    for out in (tmp_path / "new" / "deeper", empty):
        assert run_report(*masks, "--out", out) == 0
        assert entries(out) == sorted(report_files())
    assert "removed 1 temporary file(s)" in capsys.readouterr().err


def test_report_rerun_needs_overwrite_and_then_replaces_its_files(masks, tmp_path, capsys):
    out = tmp_path / "report"
    assert run_report(*masks, "--out", out) == 0
    assert json.loads((out / "summary.json").read_text())["generator"] == (
        "napari-mask-compare report")
    capsys.readouterr()
    before = tree(out)
    line = refused(capsys, ["report", *masks, "--out", out, "--threshold", "0.3"], named=out)
    assert "--overwrite" in line
    assert tree(out) == before
    assert run_report(*masks, "--out", out, "--threshold", "0.3", "--overwrite") == 0
    assert json.loads((out / "summary.json").read_text())["parameters"]["threshold"] == 0.3
    assert set(tree(out)) == set(before)


def test_report_folder_with_a_foreign_summary_is_not_ours(masks, tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    (out / "summary.json").write_text('{"generator": "my lab notebook"}\n')
    before = tree(out)
    line = refused(capsys, ["report", *masks, "--out", out, "--overwrite"], named=out)
    assert "did not write (summary.json)" in line
    assert tree(out) == before


def test_report_rerun_without_curated_leaves_no_file_of_the_earlier_report(masks, tmp_path):
    out = tmp_path / "report"
    assert run_report(*masks, "--out", out, "--curated", masks[0]) == 0
    assert (out / "morphology_curated.csv").exists()
    assert run_report(*masks, "--out", out, "--overwrite") == 0
    from napari_mask_compare.report import report_files

    assert sorted(p.name for p in out.iterdir()) == sorted(report_files())  # not two reports


def test_attacks_found_before_release_are_one_line(masks, tmp_path, capsys):
    """A bad option, a FIFO as input, a link loop as --out, a truncated TIFF: one line, exit 2."""
    fifo = tmp_path / "fifo.tif"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.tif"
    loop.symlink_to(loop)
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(masks[0].read_bytes()[:8])
    for argv in (["merge", *masks, "--out", tmp_path / "o.tif", "--policy", "x"],
                 ["stats", *masks, "--iou-threshold", "2"],
                 ["merge", fifo, masks[1], "--out", tmp_path / "o.tif"],
                 ["merge", *masks, "--out", loop],
                 ["stats", truncated, masks[1]]):
        try:
            status = main([str(x) for x in argv])
        except SystemExit as exit_:  # argparse's way out
            status = exit_.code
        assert status == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "o.tif").exists()


def test_an_input_chosen_as_a_series_is_still_an_input(masks, tmp_path, capsys):
    out = tmp_path / "prev.tif"
    assert main(["merge", *map(str, masks), "--out", str(out)]) == 0
    before = state(out)
    refused(capsys, ["merge", f"{out}:0", masks[1], "--out", out, "--overwrite"], named=out)
    assert state(out) == before


def test_merge_never_writes_a_review_file_before_its_first_save(masks, tmp_path, capsys):
    review = tmp_path / "rv"
    review.mkdir()
    (review / "r.journal.jsonl").write_text("{}\n")  # a review killed before its first save
    for name in ("r.tif", "r_classes.tif", "r.summary.json", "r.owner.json"):
        refused(capsys, ["merge", *masks, "--out", review / name], named=review / name)
        assert not (review / name).exists()


@pytest.mark.slow
def test_report_overwrite_never_removes_an_input_in_its_folder(masks, tmp_path):
    out = tmp_path / "rep"
    assert run_report(*masks, "--out", out, "--curated", masks[0],
                      "--filter", "npixels < 20") == 0
    curated = out / "curated_filtered.tif"
    before = state(curated)
    assert run_report(*masks, "--out", out, "--curated", curated, "--overwrite") == 0
    assert curated.exists() and state(curated)[str(curated)][0] == before[str(curated)][0]
