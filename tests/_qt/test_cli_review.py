"""``mask-compare review``: arguments checked up front, then napari with the review started."""

from __future__ import annotations

import subprocess
import sys

import napari
import pytest
import tifffile
from qt_helpers import press

from napari_mask_compare import cli
from napari_mask_compare._qt._widget import MaskCompareWidget
from napari_mask_compare._sample_data import synthetic_masks


@pytest.fixture
def no_event_loop(make_napari_viewer, monkeypatch):
    """``napari.Viewer`` made by the test fixture, ``napari.run`` returning at once."""
    viewers = []

    def viewer(**kwargs):
        viewers.append(make_napari_viewer(show=True))
        return viewers[-1]

    monkeypatch.setattr(napari, "Viewer", viewer)
    monkeypatch.setattr(napari, "run", lambda *a, **k: None)
    return viewers


def _widget(viewer) -> MaskCompareWidget:
    docks = viewer.window._wrapped_dock_widgets
    return next(dock.widget() for dock in docks.values()
                if isinstance(dock.widget(), MaskCompareWidget))


def _wait_started(widget, qtbot):
    qtbot.waitUntil(lambda: not widget.busy and widget.session is not None, timeout=60_000)


def test_missing_and_absent_folders_are_named(tmp_path, capsys):
    assert cli.main(["review", "--mask_a_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--mask_b_dir" in err and "--out_dir" in err and "Traceback" not in err
    assert cli.main(["review", "--mask-a-dir", str(tmp_path / "nope"), "--mask-b-dir",
                     str(tmp_path), "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"--mask_a_dir {tmp_path / 'nope'}" in err
    assert cli.main(["review", "--sample", "--mask_a_dir", str(tmp_path)]) == 2
    assert "drop --mask_a_dir" in capsys.readouterr().err
    assert cli.main(["review", "--sample", "--margin", "-1"]) == 2


def test_napari_not_imported_before_review_runs():
    code = ("import sys; from napari_mask_compare import cli; cli.build_parser(); "
            "print('napari' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_review_folders_with_the_original_flags(no_event_loop, qtbot, tmp_path, capsys):
    dirs = {name: tmp_path / name for name in ("img", "a", "b")}
    for folder in dirs.values():
        folder.mkdir()
    image, a, b = synthetic_masks((126, 168), seed=3)
    for folder, data in zip(dirs.values(), (image, a, b)):
        tifffile.imwrite(folder / "cells.tif", data)
    out = tmp_path / "out"
    status = cli.main(["review", "--images_dir", str(dirs["img"]), "--mask_a_dir",
                       str(dirs["a"]), "--mask-b-dir", str(dirs["b"]), "--out_dir", str(out),
                       "--margin", "20", "--iou_threshold", "0.2"])
    assert status == 0
    assert str(out) in capsys.readouterr().out
    viewer = no_event_loop[0]
    widget = _widget(viewer)
    _wait_started(widget, qtbot)
    setup = widget.setup
    assert setup.margin.value() == 20 and setup.iou_threshold.value() == pytest.approx(0.2)
    assert widget._review.output == out / "cells.tif"
    press(viewer, "1")
    press(viewer, "Q")
    assert (out / "cells.summary.json").exists()


def test_review_sample_defaults_out_dir_to_the_current_folder(no_event_loop, qtbot, tmp_path,
                                                              monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["review", "--sample"]) == 0
    expected = tmp_path / "mask-compare-sample"
    assert str(expected) in capsys.readouterr().out
    widget = _widget(no_event_loop[0])
    _wait_started(widget, qtbot)
    assert widget._review.output.parent == expected
    assert widget.session.groups and widget.view.a.ndim == 2
    widget.end_review()


def _pair_of_files(tmp_path):
    image, a, b = synthetic_masks((126, 168), seed=5)
    paths = {name: tmp_path / f"{name}.tif" for name in ("img", "cellpose", "stardist")}
    for path, data in zip(paths.values(), (image, a, b)):
        tifffile.imwrite(path, data)
    return paths


def test_review_a_pair_of_files_q_prints_and_closes(no_event_loop, qtbot, tmp_path, capsys):
    paths = _pair_of_files(tmp_path)
    out = tmp_path / "out"
    assert cli.main(["review", str(paths["cellpose"]), str(paths["stardist"]), "--image",
                     str(paths["img"]), "--out_dir", str(out)]) == 0
    assert "cellpose.tif vs stardist.tif" in capsys.readouterr().out
    viewer = no_event_loop[0]
    widget = _widget(viewer)
    _wait_started(widget, qtbot)
    assert widget._review.output == out / "cellpose.tif"
    assert widget.view.layers["a"].name == "A: cellpose" and "image_a" in widget.view.layers
    press(viewer, "1")
    press(viewer, "Q")  # the app: saved, summary printed, window closed
    qtbot.waitUntil(lambda: not hasattr(viewer.window, "_qt_window"), timeout=5000)  # closed
    printed = capsys.readouterr().out
    assert f"mask-compare review: saved {out / 'cellpose.tif'}" in printed
    assert "A 1 · B 0 · M 0 · N 0 · Auto 0" in printed and "undecided:" in printed
    assert (out / "cellpose.summary.json").exists()


def test_the_same_mask_twice_and_mixed_arguments_are_refused(tmp_path, capsys):
    paths = _pair_of_files(tmp_path)
    a, b = str(paths["cellpose"]), str(paths["stardist"])
    out = str(tmp_path / "out")
    cases = {
        ("review", a, a, "--out_dir", out): "is given as both mask A and mask B",
        ("review", a, "--out_dir", out): "two mask files, A then B; got 1",
        ("review", a, b): "missing --out_dir",
        ("review", a, b, "--mask_a_dir", str(tmp_path), "--out_dir", out): "not both",
        ("review", a, str(tmp_path), "--out_dir", out): "is a folder",
        ("review", a, b, "--out_dir", str(tmp_path)): "is an input folder",
        ("review", "--mask_a_dir", str(tmp_path), "--mask_b_dir", str(tmp_path),
         "--out_dir", out): "are the same folder",
        ("review", "--mask_a_dir", str(tmp_path), "--mask_b_dir", str(tmp_path / "out"),
         "--image", a, "--out_dir", out): "--image goes with two mask files",
    }
    for argv, expected in cases.items():
        assert cli.main(list(argv)) == 2, argv
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err, (argv, err)


def test_review_help_lists_the_keys_of_the_table(capsys):
    from napari_mask_compare.actions import cli_help

    with pytest.raises(SystemExit):
        cli.main(["review", "--help"])
    assert cli_help() in capsys.readouterr().out


def test_an_input_warning_is_printed_once_though_review_opens_the_store_twice(
        make_napari_viewer, monkeypatch, qtbot, tmp_path, capsys):
    """review checks a store pair before napari opens, and the window reads it again: a
    store's warning (here: missing chunks that read as objects of its fill value) is one line,
    once."""
    import numpy as np
    import zarr

    viewers = []

    def viewer(**kwargs):
        viewers.append(make_napari_viewer(show=True))
        return viewers[-1]

    monkeypatch.setattr(napari, "Viewer", viewer)
    monkeypatch.setattr(napari, "run", lambda *a, **k: _wait_started(_widget(viewers[0]), qtbot))
    mask = np.zeros((40, 48), np.uint16)
    mask[3:12, 4:20] = 1
    mask[25:35, 30:44] = 2
    for name, fill in (("a.zarr", 0), ("b.zarr", 7)):
        array = zarr.create_array(str(tmp_path / name), shape=mask.shape, dtype=mask.dtype,
                                  chunks=(20, 24), fill_value=fill)
        array[...] = np.where(mask == 0, fill, mask)  # chunks all fill_value are not written
    assert cli.main(["review", str(tmp_path / "a.zarr"), str(tmp_path / "b.zarr"),
                     "--out_dir", str(tmp_path / "out")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert lines == [f"mask-compare review: warning: {tmp_path / 'b.zarr'}: fill_value is 7, so "
                     "its 2 missing chunk(s) (of 4) read as objects of id 7, not as background; "
                     "a mask's fill_value should be 0"]
    _widget(viewers[0]).end_review()
