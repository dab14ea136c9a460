"""A damaged chunk of a zarr/OME-Zarr store or an HDF5 file is one line, exit status 2.

Chunks that cannot be decoded (zstd, blosc, a shard's checksum, a truncated or
empty file) or whose file is a folder are refused by every command with one
line naming the store, the chunk and what failed; nothing is written. A
missing chunk is zarr's fill value: background, as the README says.
"""

import json
import os
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import zarr
from numcodecs import Blosc, Zstd

from napari_mask_compare import ome_zarr_out
from napari_mask_compare.cli import main

SHAPE, CHUNKS = (64, 96), (32, 32)
#: How the store holds its chunks: zarr v2 (zstd, blosc, raw), v3 (zstd; sharded), OME-Zarr.
FORMATS = ["zarr2-zstd", "zarr2-blosc", "zarr2-raw", "zarr3", "zarr3-sharded", "ome"]
DAMAGES = ["truncated", "empty", "folder"]


def _mask(shift: int = 0) -> np.ndarray:
    mask = np.zeros(SHAPE, np.uint16)
    for k in range(6):
        mask[5 + 9 * k: 12 + 9 * k, 4 + 14 * k + shift: 15 + 14 * k + shift] = 1 + 2 * k
    return mask


def _write(path, fmt: str, data) -> tuple[str, object]:
    """``data`` as a store of format ``fmt`` at ``path``: (spec to give, zarr array)."""
    if fmt == "ome":
        ome_zarr_out.write_ome_zarr_labels(path, data, chunks=CHUNKS, name="cells")
        return str(path), zarr.open_array(str(path / "labels" / "cells" / "0"), mode="r")
    options = {"zarr2-zstd": {"zarr_format": 2, "compressors": Zstd()},
               "zarr2-blosc": {"zarr_format": 2, "compressors": Blosc()},
               "zarr2-raw": {"zarr_format": 2, "compressors": None},
               "zarr3": {}, "zarr3-sharded": {"shards": (32, 64)}}[fmt]
    chunks = (16, 32) if fmt == "zarr3-sharded" else CHUNKS
    array = zarr.create_array(str(path), shape=data.shape, dtype=data.dtype, chunks=chunks,
                              **options)
    array[...] = data
    return str(path), array


def _chunk_file(spec: str, array, index=(1, 1)):
    """The file of the chunk (or shard) ``index`` and its name relative to ``spec``."""
    key = array.metadata.encode_chunk_key(index)
    path = os.path.join(str(array.store.root), array.path, key)
    return path, os.path.relpath(path, spec)


def _damage(path: str, damage: str) -> None:
    path = Path(path)
    if damage == "folder":
        path.unlink()
        path.mkdir()
    else:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")


@pytest.fixture
def damaged(tmp_path, request):
    """(A, damaged B, name of B's damaged chunk) for ``request.param`` = (format, damage)."""
    fmt, damage = request.param
    a, _ = _write(tmp_path / "a.zarr", fmt, _mask())
    b, array = _write(tmp_path / "b.zarr", fmt, _mask(shift=2))
    path, name = _chunk_file(b, array)
    _damage(path, damage)
    return a, b, name


def one_error_line(capsys, command: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"mask-compare {command}: error: ")
    assert captured.out == ""
    return lines[0]


@pytest.mark.parametrize("damaged", [(f, d) for f in FORMATS for d in DAMAGES], indirect=True,
                         ids=lambda p: "-".join(p))
def test_stats_of_a_damaged_chunk_is_one_line_naming_store_and_chunk(damaged, capsys):
    a, b, chunk = damaged
    assert main(["stats", a, b]) == 2
    line = one_error_line(capsys, "stats")
    assert f"error: {b}: chunk {chunk} " in line
    assert re.search(r"(cannot be read \(.+\)|is an empty file|is a folder)", line), line
    assert line.endswith("restore the store from a copy")


@pytest.mark.parametrize("command", ["merge", "report"])
@pytest.mark.parametrize("damaged", [("zarr3", "truncated"), ("ome", "folder")],
                         indirect=True, ids=lambda p: "-".join(p))
def test_merge_and_report_of_a_damaged_chunk_write_nothing(damaged, command, tmp_path, capsys):
    a, b, chunk = damaged
    before = sorted(tmp_path.rglob("*"))
    out = tmp_path / ("m.zarr" if command == "merge" else "report")
    assert main([command, a, b, "--out", str(out)]) == 2
    assert f"{b}: chunk {chunk} " in one_error_line(capsys, command)
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("damaged", [("zarr2-zstd", "truncated")], indirect=True,
                         ids=lambda p: "-".join(p))
def test_a_damaged_chunk_read_on_a_local_cluster_is_the_same_line(damaged, capfd):
    """The task's InputError travels back from the worker process; the worker logs nothing
    (its stderr is the terminal's: ``capfd``)."""
    a, b, chunk = damaged
    assert main(["stats", a, b, "--workers", "2"]) == 2
    captured = capfd.readouterr()
    # the progress bar may show while the cluster starts: it is not a line of its own
    lines = [line for line in captured.err.split("\n")
             if line and not re.fullmatch(r"(\r?[\w ]+: \[[# ]*\] \| *\d+% \| [\d.]+ s)+", line)]
    assert lines == [f"mask-compare stats: error: {b}: chunk {chunk} cannot be read (Zstd "
                     "decompression error: invalid input data); restore the store from a copy"]


def test_a_corrupt_hdf5_chunk_names_the_file_the_dataset_and_the_chunk(tmp_path, capsys):
    path = tmp_path / "b.h5"
    with h5py.File(path, "w") as h5:
        dataset = h5.create_dataset("seg", data=_mask(), chunks=CHUNKS, compression="gzip")
        info = dataset.id.get_chunk_info_by_coord((32, 32))
    raw = bytearray(path.read_bytes())
    raw[info.byte_offset: info.byte_offset + info.size] = bytes(info.size)
    path.write_bytes(bytes(raw))
    tifffile.imwrite(tmp_path / "a.tif", _mask())
    assert main(["stats", str(tmp_path / "a.tif"), f"{path}:/seg"]) == 2
    line = one_error_line(capsys, "stats")
    assert f"error: {path}:/seg: the chunk at (32, 32) cannot be read (" in line


@pytest.mark.parametrize("fmt", ["zarr2-zstd", "zarr3-sharded", "ome"])
def test_a_missing_chunk_reads_as_background(fmt, tmp_path, capsys):
    """A chunk never written (or deleted) is zarr's fill value 0: the objects there are gone,
    as in a TIFF with that region cleared."""
    a, _ = _write(tmp_path / "a.zarr", fmt, _mask())
    b, array = _write(tmp_path / "b.zarr", fmt, _mask(shift=2))
    path, _ = _chunk_file(b, array, index=(1, 1))
    os.remove(path)
    cleared = _mask(shift=2)
    block = getattr(array, "shards", None) or array.chunks
    cleared[block[0]: 2 * block[0], block[1]: 2 * block[1]] = 0
    tifffile.imwrite(tmp_path / "a.tif", _mask())
    tifffile.imwrite(tmp_path / "b.tif", cleared)
    results = []
    for pair in ((a, b), (str(tmp_path / "a.tif"), str(tmp_path / "b.tif"))):
        assert main(["stats", *pair, "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0] == results[1]
    assert results[0]["matching"][0]["n_pred"] < 6


def test_a_chunk_folder_of_a_nested_v2_store_is_no_chunk(tmp_path, capsys):
    """With "/" as separator a v2 store nests chunks in folders ("1/1"): those folders are the
    layout, not damage; only a chunk's own path being a folder is."""
    data = _mask()
    nested = zarr.create_array(str(tmp_path / "n.zarr"), shape=SHAPE, dtype=data.dtype,
                               chunks=CHUNKS, zarr_format=2,
                               chunk_key_encoding={"name": "v2", "separator": "/"})
    nested[...] = data
    assert (tmp_path / "n.zarr" / "1").is_dir()
    tifffile.imwrite(tmp_path / "a.tif", data)
    assert main(["stats", str(tmp_path / "a.tif"), str(tmp_path / "n.zarr"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["matching"][0]["tp"] == 6
    shutil.rmtree(tmp_path / "n.zarr" / "1")
    (tmp_path / "n.zarr" / "1" / "1").mkdir(parents=True)
    assert main(["stats", str(tmp_path / "a.tif"), str(tmp_path / "n.zarr")]) == 2
    assert "n.zarr: chunk 1/1 is a folder" in one_error_line(capsys, "stats")
