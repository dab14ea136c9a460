"""``merge --out`` writes the format its suffix names, or refuses in one line (issue 17).

The reference is the TIFF output, which the other merge tests check against
the masks: an NPY or OME-Zarr output must hold the same array.
"""

import numpy as np
import pytest
import tifffile
import zarr

from file_trees import entries, refused, state, tree
from napari_mask_compare import ome_zarr_out
from napari_mask_compare.cli import main
from napari_mask_compare.write import output_format

OFFERED = ".tif or .tiff (TIFF), .zarr (OME-Zarr) or .npy (NPY)"


@pytest.fixture
def masks(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    tifffile.imwrite(tmp_path / "a.tif", a, imagej=True, resolution=(2.0, 2.0),
                     metadata={"unit": "um"})
    tifffile.imwrite(tmp_path / "b.tif", b)
    return tmp_path / "a.tif", tmp_path / "b.tif"


def merged_tiff(masks, tmp_path, *, policy="union"):
    out = tmp_path / "reference.tif"
    assert main(["merge", *map(str, masks), "--out", str(out), "--policy", policy]) == 0
    return tifffile.imread(out)


@pytest.mark.parametrize("name", ["o.npy", "o.NPY", "o.zarr", "o.tiff"])
def test_merge_writes_the_format_its_suffix_names(masks, tmp_path, capsys, name):
    reference = merged_tiff(masks, tmp_path)
    capsys.readouterr()
    out = tmp_path / name
    assert main(["merge", *map(str, masks), "--out", str(out), "--policy", "union"]) == 0
    fmt = output_format(out)
    if fmt == "NPY":
        result = np.load(out)
    elif fmt == "OME-Zarr":
        result = np.asarray(ome_zarr_out.labels_array(out)[...])
    else:
        result = tifffile.imread(out)
    assert result.dtype == np.uint16 and np.array_equal(result, reference)
    err = capsys.readouterr().err.strip().splitlines()
    if fmt == "NPY":  # the voxel size is said to be lost, once
        assert err == [f"mask-compare merge: warning: {out}: an NPY file holds no voxel size; "
                       "0.5 × 0.5 µm is not kept (a .tif or .zarr output keeps it)"]
    else:
        assert err == []


def test_an_npy_output_beyond_65535_ids_is_uint32_like_the_tiff(tmp_path, capsys):
    a = np.arange(1, 70_001, dtype=np.uint32).reshape(280, 250)  # 70,000 one-pixel objects
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", a)
    masks = (tmp_path / "a.npy", tmp_path / "b.npy")
    for name in ("o.tif", "o.npy"):
        assert main(["merge", *map(str, masks), "--out", str(tmp_path / name)]) == 0
    result = np.load(tmp_path / "o.npy")
    assert result.dtype == np.uint32
    assert np.array_equal(result, tifffile.imread(tmp_path / "o.tif"))
    assert np.array_equal(np.unique(result), np.arange(1, 70_001))  # no background here


def test_an_npy_output_keeps_the_classes_beside_it(every_kind_2d, tmp_path, capsys):
    a, b = every_kind_2d
    np.save(tmp_path / "a.npy", np.stack([a, (a > 0) * 1], axis=-1).astype(np.uint16))
    np.save(tmp_path / "b.npy", np.stack([b, (b > 0) * 2], axis=-1).astype(np.uint16))
    for name in ("o.tif", "o.npy"):
        assert main(["merge", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--out",
                     str(tmp_path / name)]) == 0
    assert np.array_equal(np.load(tmp_path / "o_classes.npy"),
                          tifffile.imread(tmp_path / "o_classes.tif"))
    assert np.array_equal(np.load(tmp_path / "o.npy"), tifffile.imread(tmp_path / "o.tif"))


@pytest.mark.parametrize("name", ["o.png", "o.jpg", "o.h5", "o.mrc", "o.csv", "o"])
def test_a_suffix_that_names_no_format_offered_is_refused(masks, tmp_path, capsys, name):
    out = tmp_path / name
    listing = entries(tmp_path)
    line = refused(capsys, ["merge", *masks, "--out", out], named=out)
    suffix = out.suffix or "has no suffix"
    assert suffix in line and line.endswith(f"end --out in {OFFERED}")
    assert entries(tmp_path) == listing  # nothing written, no folder named o.png or o.h5


@pytest.mark.parametrize("name", ["x.tif", "x.zarr", "x.npy", "labels/x.tif"])
@pytest.mark.parametrize("marked_by", ["name", "metadata"])
def test_an_output_inside_a_store_is_refused(masks, tmp_path, capsys, name, marked_by):
    """Inside an unrelated store (by its .zarr name, or by zarr's metadata in a folder)."""
    other = tmp_path / ("other.zarr" if marked_by == "name" else "plain")
    zarr.create_array(str(other), shape=(8, 8), dtype="uint16", chunks=(4, 4))[...] = 3
    before, listing = tree(other), entries(other)
    for overwrite in ([], ["--overwrite"]):
        line = refused(capsys, ["merge", *masks, "--out", other / name, *overwrite],
                       named=other / name)
        assert "is inside the zarr store" in line
        assert tree(other) == before and entries(other) == listing


def test_a_folder_run_into_a_store_is_refused_and_adds_nothing(masks, tmp_path, capsys):
    for side, mask in zip("AB", masks):
        (tmp_path / side).mkdir()
        for stem in ("x", "y"):
            (tmp_path / side / f"{stem}.tif").write_bytes(mask.read_bytes())
    other = tmp_path / "other.zarr"
    zarr.create_array(str(other), shape=(8, 8), dtype="uint16", chunks=(4, 4))[...] = 3
    listing = entries(other)
    refused(capsys, ["merge", tmp_path / "A", tmp_path / "B", "--out", other / "merged"],
            named=other / "merged")
    assert entries(other) == listing


def test_an_existing_npy_is_never_overwritten(masks, tmp_path, capsys):
    """An NPY file does not say who wrote it: not even an earlier merge's is replaced."""
    out = tmp_path / "o.npy"
    assert main(["merge", *map(str, masks), "--out", str(out)]) == 0
    capsys.readouterr()
    before = state(out)
    line = refused(capsys, ["merge", *masks, "--out", out, "--policy", "b", "--overwrite"],
                   named=out)
    assert "never overwritten" in line
    assert state(out) == before
