"""A TIFF cut short is refused, never read as what is left of it.

tifffile reads a cut TIFF where it can: the page chain stops at the first page
past the end of the file, a tag whose value lies past it is dropped, and a 3D
stack came back as its first slice (issue 17: a zlib stack cut at 25/50/75% was
read as (40, 48) instead of (6, 40, 48)), an ImageJ or OME stack as fewer
slices or without its voxel size. The reference is the whole file's reading:
a cut file gives exactly that, or one line naming the file.
"""

import numpy as np
import pytest
import tifffile

from napari_mask_compare.cli import main
from napari_mask_compare.errors import InputError
from napari_mask_compare.read import load_mask, read_array

FLAVOURS = ["shaped", "imagej", "ome"]
STORAGE = [None, "zlib", "lzw", "zstd"]


def _stack() -> np.ndarray:
    """(6, 40, 48) uint16 with objects on every slice, so that each slice differs."""
    rng = np.random.default_rng(17)
    return rng.integers(0, 12, (6, 40, 48)).astype(np.uint16)


def _write(path, flavour: str, compression: str | None) -> None:
    options = {"compression": compression} if compression else {}
    if flavour != "shaped":
        options[flavour] = True
    tifffile.imwrite(path, _stack(), photometric="minisblack", resolution=(2.0, 2.0),
                     rowsperstrip=8, **options)


@pytest.mark.parametrize("compression", STORAGE)
@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("kept", [0.25, 0.5, 0.75])
def test_a_cut_stack_is_refused_as_truncated(tmp_path, flavour, compression, kept):
    path = tmp_path / "a.tif"
    _write(path, flavour, compression)
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * kept)])
    with pytest.raises(InputError) as err:
        load_mask(path)
    message = str(err.value)
    assert message.startswith(f"{path}: truncated: page ") and "\n" not in message


@pytest.mark.parametrize("compression", STORAGE)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_every_cut_reads_the_whole_file_or_is_refused(tmp_path, flavour, compression):
    """Cut at 80 places from the header to the last byte: never a smaller or other image."""
    whole = tmp_path / "whole.tif"
    _write(whole, flavour, compression)
    reference = read_array(whole)
    assert np.array_equal(reference.data, tifffile.imread(whole))
    raw = whole.read_bytes()
    cut = tmp_path / "cut.tif"
    for size in sorted(set(np.linspace(0, len(raw) - 1, 80).astype(int))):
        cut.write_bytes(raw[:size])
        try:
            loaded = read_array(cut)
        except InputError as err:
            assert str(err).startswith(str(cut)) and "\n" not in str(err)
            continue
        assert np.array_equal(np.asarray(loaded.data), reference.data), size
        assert loaded.voxel_size == reference.voxel_size, size


def test_merge_refuses_a_cut_stack_in_one_line(tmp_path, capsys):
    a, b, out = tmp_path / "a.tif", tmp_path / "b.tif", tmp_path / "out.tif"
    _write(a, "shaped", "zlib")
    _write(b, "shaped", "zlib")
    a.write_bytes(a.read_bytes()[: a.stat().st_size // 2])
    assert main(["merge", str(a), str(b), "--out", str(out), "--policy", "a"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{a}: truncated: page " in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif"]
