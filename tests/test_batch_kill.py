"""A folder merge killed between a pair's output and its record resumes (issue 17).

Each case runs ``mask-compare merge A B --out OUT`` in a child process that
kills itself (``os._exit``) at one step of one pair; the rerun, in process,
must finish every pair (exit 0, nothing refused), leave outputs equal to those
of a run that was never killed, and record every pair as done. An output
that is not ours stays as it was.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tifffile
import zarr

from napari_mask_compare import ome_zarr_out
from napari_mask_compare.batch import Records
from napari_mask_compare.cli import main

#: The child: patch one step of pair ``victim`` to kill the process there, then merge.
CHILD = textwrap.dedent("""
    import os, sys
    from napari_mask_compare.batch import Records
    from napari_mask_compare.cli import main

    point, victim, *argv = sys.argv[1:]
    pending, add = Records.pending, Records.add

    def killed_pending(self, name, **kwargs):
        if name == victim and point == "before the pending record":
            os._exit(9)  # the output is in its temporary file, nothing recorded
        pending(self, name, **kwargs)
        if name == victim and point == "before the rename":
            os._exit(9)  # the pending record names the new bytes; the old output is in place

    def killed_add(self, name, **kwargs):
        if name == victim:
            os._exit(9)  # the output is in place, its record not written
        add(self, name, **kwargs)

    Records.pending, Records.add = killed_pending, killed_add
    sys.exit(main(argv))
""")
POINTS = ["before the pending record", "before the rename", "before the record"]
NAMES = ("x", "y", "z")


def write_mask(path, data):
    if path.suffix == ".zarr":
        zarr.create_array(str(path), shape=data.shape, dtype=data.dtype, chunks=(6, 20),
                          overwrite=True)[...] = data
    else:
        tifffile.imwrite(path, data)


def read_output(path):
    return (np.asarray(ome_zarr_out.labels_array(path)[...]) if path.suffix == ".zarr"
            else tifffile.imread(path))


def make_folders(tmp_path, masks, suffix):
    """Folders A and B of three pairs (TIFFs, or zarr stores: OME-Zarr outputs)."""
    for side, mask in zip("AB", masks):
        (tmp_path / side).mkdir()
        for name in NAMES:
            write_mask(tmp_path / side / f"{name}{suffix}", mask)
    return tmp_path / "A", tmp_path / "B", suffix


def merge_args(folders, out):
    return ["merge", str(folders[0]), str(folders[1]), "--out", str(out), "--policy", "union"]


def run_killed(folders, out, *, point, victim="y"):
    child = subprocess.run([sys.executable, "-c", CHILD, point, victim,
                            *merge_args(folders, out)], capture_output=True, text=True)
    assert child.returncode == 9, child.stderr  # killed where it was told


def assert_all_done(folders, out, reference):
    records = Records(out, command="merge", settings={"policy": "union", "iou_threshold": 0.1})
    suffix = folders[2]
    for name in NAMES:
        output = out / f"{name}{'.zarr' if suffix == '.zarr' else '.tif'}"
        assert np.array_equal(read_output(output), reference[name]), name
        assert records.done(name, output=output, inputs=[folders[0] / f"{name}{suffix}",
                                                          folders[1] / f"{name}{suffix}"])


def reference_run(folders, tmp_path, capsys):
    """The outputs of a run that nobody killed."""
    out = tmp_path / "reference"
    assert main(merge_args(folders, out)) == 0
    capsys.readouterr()
    suffix = ".zarr" if folders[2] == ".zarr" else ".tif"
    return {name: read_output(out / f"{name}{suffix}") for name in NAMES}


@pytest.mark.parametrize(("suffix", "run"), [
    (".tif", "first run"), (".tif", "rerun after an input changed"),
    (".zarr", "first run"),  # a folder output: its digest covers every file
])
@pytest.mark.parametrize("point", POINTS)
@pytest.mark.slow
def test_a_kill_between_an_output_and_its_record_resumes(every_kind_2d, tmp_path, capsys,
                                                         point, suffix, run):
    folders = make_folders(tmp_path, every_kind_2d, suffix)
    out = tmp_path / "out"
    if run != "first run":  # every pair done, then y's mask A changes: y is merged again
        assert main(merge_args(folders, out)) == 0
        a = every_kind_2d[0].copy()
        a[a == 7] = 0  # the only-A object goes
        write_mask(folders[0] / f"y{folders[2]}", a)
    reference = reference_run(folders, tmp_path, capsys)
    run_killed(folders, out, point=point)
    capsys.readouterr()
    assert main(merge_args(folders, out)) == 0
    err = capsys.readouterr().err
    assert "error" not in err and "exists" not in err, err
    assert_all_done(folders, out, reference)


def test_an_output_replaced_after_the_kill_is_not_taken_for_ours(every_kind_2d, tmp_path,
                                                                 capsys):
    """The pending record names the bytes the run wrote: a file put there since is refused."""
    folders = make_folders(tmp_path, every_kind_2d, ".tif")
    out = tmp_path / "out"
    reference = reference_run(folders, tmp_path, capsys)
    run_killed(folders, out, point="before the record")
    mine = out / "y.tif"
    tifffile.imwrite(mine, np.ones((12, 40), np.uint16))  # the user's own file, same name
    before = (mine.read_bytes(), os.stat(mine).st_ino)
    assert main(merge_args(folders, out)) == 2
    lines = [line for line in capsys.readouterr().err.strip().splitlines()
             if "temporary file(s) left" not in line]  # x's or z's, when the kill caught them
    assert lines[0] == (f"mask-compare merge: error: {mine}: exists and was not written by "
                        "mask-compare; it is never overwritten: choose another --out")
    assert lines[-1] == "mask-compare merge: 1 of 3 pairs failed"
    assert all("were done by an earlier run" in line for line in lines[1:-1])  # x, z if done
    assert (mine.read_bytes(), os.stat(mine).st_ino) == before
    for name in ("x", "z"):
        assert np.array_equal(tifffile.imread(out / f"{name}.tif"), reference[name])
