"""The command line on masks read lazily (zarr v2/v3, OME-Zarr, HDF5) and on a dask cluster.

Every format must give the same statistics and the same merged labels as the TIFFs of the
same pair, with blocks that cut objects in every axis and A and B chunked differently.
"""

import contextlib
import json
import socket
import subprocess
import sys
import threading

import h5py
import numpy as np
import pytest
import tifffile
import zarr

from napari_mask_compare import ome_zarr_out, store
from napari_mask_compare.cli import main


def _boxes(rng, shape, n, *, first_id):
    out = np.zeros(shape, np.uint32)
    for k in range(n):
        lo = [rng.integers(0, s - 3) for s in shape]
        hi = [min(s, start + rng.integers(3, 14)) for start, s in zip(lo, shape)]
        out[tuple(slice(start, stop) for start, stop in zip(lo, hi))] = first_id + 7 * k
    return out


@pytest.fixture(scope="module")
def pair_3d():
    rng = np.random.default_rng(5)
    a = _boxes(rng, (18, 60, 70), 45, first_id=3)
    b = np.roll(a, (1, 2, -2), axis=(0, 1, 2))
    b[b % 2 == 1] += 100_000  # other ids, some way over 2**16
    b[:, :, 35:][b[:, :, 35:] > 0] += 1  # splits along x
    b[_boxes(rng, a.shape, 6, first_id=1) > 0] = 4_000_000_000
    return a, b


def _write(kind, path, data, chunks):
    if kind == "tif":
        tifffile.imwrite(path, data)
    elif kind in ("zarr2", "zarr3"):
        arr = zarr.create_array(store=str(path), shape=data.shape, dtype=data.dtype,
                                chunks=chunks, zarr_format=2 if kind == "zarr2" else 3)
        arr[...] = data
    elif kind == "ome":
        ome_zarr_out.write_ome_zarr_labels(path, data, chunks=chunks, name="cells")
    elif kind == "h5":
        with h5py.File(path.with_suffix(""), "w") as f:
            f.create_dataset("seg/cells", data=data, chunks=chunks)
        return f"{path.with_suffix('')}:/seg/cells"
    return str(path)


SUFFIX = {"tif": ".tif", "zarr2": ".zarr", "zarr3": ".zarr", "ome": ".ome.zarr", "h5": ".h5.x"}


def pair_as(kind, folder, pair_3d, *, name="p"):
    a, b = pair_3d
    folder.mkdir(parents=True, exist_ok=True)
    return (_write(kind, folder / f"{name}_a{SUFFIX[kind]}", a, (5, 16, 32)),
            _write(kind, folder / f"{name}_b{SUFFIX[kind]}", b, (7, 25, 20)))


def stats_json(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["stats", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("kind", ["zarr2", "zarr3", "ome", "h5"])
def test_stats_of_a_lazy_pair_equal_those_of_its_tiffs(kind, pair_3d, tmp_path, capsys):
    expected = stats_json(capsys, *pair_as("tif", tmp_path / "tif", pair_3d))
    got = stats_json(capsys, *pair_as(kind, tmp_path / kind, pair_3d))
    assert got == expected


@pytest.mark.parametrize("policy", ["a", "union"])
@pytest.mark.slow
def test_merge_into_ome_zarr_equals_the_merged_tiff(policy, pair_3d, tmp_path, capsys):
    tif_a, tif_b = pair_as("tif", tmp_path / "tif", pair_3d)
    assert main(["merge", tif_a, tif_b, "--out", str(tmp_path / "m.tif"),
                 "--policy", policy]) == 0
    zarr_a, zarr_b = pair_as("zarr3", tmp_path / "z", pair_3d)
    assert main(["merge", zarr_a, zarr_b, "--out", str(tmp_path / "m.zarr"),
                 "--policy", policy]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(": ", 1)[1] == lines[1].split(": ", 1)[1]  # the same summary
    merged = store.open_array(tmp_path / "m.zarr")
    np.testing.assert_array_equal(merged.data.compute(), tifffile.imread(tmp_path / "m.tif"))
    # the output is written, not clobbered: a second run without --overwrite is refused
    assert main(["merge", zarr_a, zarr_b, "--out", str(tmp_path / "m.zarr")]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_a_folder_of_zarr_pairs_merges_each_pair_once(pair_3d, tmp_path, capsys):
    for name in ("x", "y"):
        a, b = pair_as("zarr2", tmp_path / "in", pair_3d, name=name)
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    for name in ("x", "y"):
        (tmp_path / "in" / f"{name}_a.zarr").rename(tmp_path / "A" / f"{name}.zarr")
        (tmp_path / "in" / f"{name}_b.zarr").rename(tmp_path / "B" / f"{name}.zarr")
    args = ["merge", str(tmp_path / "A"), str(tmp_path / "B"), "--out", str(tmp_path / "out")]
    assert main(args) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "mask-compare-merge.records", "x.zarr", "y.zarr"]
    capsys.readouterr()
    assert main(args) == 0
    assert "2 of 2 pairs were done by an earlier run" in capsys.readouterr().err


@pytest.mark.slow
def test_stats_on_a_local_cluster_of_two_processes(pair_3d, tmp_path, capsys):
    pair = pair_as("zarr3", tmp_path, pair_3d)
    expected = stats_json(capsys, *pair)
    assert stats_json(capsys, *pair, "--workers", "2") == expected


def run(*args):
    return subprocess.run([sys.executable, "-m", "napari_mask_compare.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never says a word (a wrong service, a proxy)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def serve():
        with contextlib.suppress(OSError):
            while True:
                accepted.append(server.accept()[0])

    threading.Thread(target=serve, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for conn in accepted:
        conn.close()


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:9", "silent"])
@pytest.mark.slow
def test_a_scheduler_that_does_not_answer_is_one_line_quickly(pair_3d, tmp_path, address,
                                                              silent_server):
    address = silent_server if address == "silent" else address
    pair = pair_as("zarr2", tmp_path, pair_3d)
    result = run("merge", *pair, "--out", tmp_path / "m.zarr", "--scheduler", address)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and address in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "m.zarr").exists()


@pytest.mark.slow
def test_bad_lazy_inputs_are_one_line_and_write_nothing(pair_3d, tmp_path):
    a, _ = pair_as("zarr2", tmp_path, pair_3d)
    group = tmp_path / "group.zarr"
    zarr.open_group(str(group), mode="w").create_group("inner")
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("seg", data=pair_3d[0])
    for other, words in ((group, "group.zarr"), (f"{tmp_path / 'f.h5'}:/missing", "missing")):
        result = run("merge", a, other, "--out", tmp_path / "m.zarr")
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and words in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "m.zarr").exists()


def test_review_checks_a_store_pair_before_napari_opens(pair_3d, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setitem(sys.modules, "napari", None)  # reaching napari would fail the test
    a, _ = pair_as("zarr2", tmp_path, pair_3d)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("seg", data=pair_3d[0])
    for other, words in ((tmp_path / "nothing.zarr", "no such zarr store"),
                         (f"{tmp_path / 'f.h5'}:/missing", "missing")):
        assert main(["review", a, str(other), "--out_dir", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "out").exists()


def test_nothing_is_written_inside_an_input_store_or_folder(pair_3d, tmp_path, capsys):
    a, b = pair_3d
    image = tmp_path / "img.ome.zarr"
    ome_zarr_out.write_ome_zarr_labels(image, a, chunks=(5, 16, 32), name="cells")
    _, zarr_b = pair_as("zarr2", tmp_path, pair_3d)
    inside = image / "labels" / "x.zarr"
    assert main(["merge", str(image / "labels" / "cells"), zarr_b, "--out", str(inside)]) == 2
    assert "is inside an input" in capsys.readouterr().err
    assert not inside.exists()
    for folder in ("A", "B"):
        pair_as("tif", tmp_path / folder, pair_3d, name="x")
    out = tmp_path / "A" / "sub"
    assert main(["merge", str(tmp_path / "A"), str(tmp_path / "B"), "--out", str(out)]) == 2
    assert "inside an input folder" in capsys.readouterr().err
    assert not out.exists()


def test_review_refuses_an_out_dir_in_an_input_store_and_stores_of_other_shapes(
        pair_3d, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setitem(sys.modules, "napari", None)  # reaching napari would fail the test
    a, b = pair_as("zarr2", tmp_path, pair_3d)
    listing = sorted(p.name for p in (tmp_path / "p_a.zarr").iterdir())
    assert main(["review", a, b, "--out_dir", a]) == 2
    assert "is inside an input" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "p_a.zarr").iterdir()) == listing
    other = _write("zarr3", tmp_path / "small.zarr", pair_3d[1][:, :50], (5, 16, 32))
    assert main(["review", a, other, "--out_dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "shape" in err, err
    assert not (tmp_path / "out").exists()
