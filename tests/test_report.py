"""The report's files: they exist, read back, agree with the statistics, and plots are drawn."""

import csv
import json
import os

import numpy as np
import pytest
import tifffile
from matplotlib.image import imread

from napari_mask_compare import plots, report, stats, suite
from napari_mask_compare.compare import summarize
from napari_mask_compare.pairing import overlap_table

FILES = {"summary.json", "matching.csv", "pairs.csv", "objects.csv", "taxonomy.csv",
         "boundary.csv", "morphology_a.csv", "morphology_b.csv", "association.tif",
         "iou_histogram.png", "scores.png", "sizes.png", "taxonomy.png"}
CURATED_FILES = {"morphology_curated.csv", "matching_curated_vs_a.csv",
                 "matching_curated_vs_b.csv"}

GREEN, RED, BLUE, BLACK = [0, 255, 0], [255, 0, 0], [0, 0, 255], [0, 0, 0]
MAGENTA, CYAN = [255, 0, 255], [0, 255, 255]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def assert_not_blank(png):
    pixels = imread(png)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels[..., :3].std() > 0.05  # white page with lines and bars, not a blank page


def test_report_files_read_back(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    out = tmp_path / "report"
    written = report.write_report(out, a, b, voxel_size=(0.5, 0.5), unit="µm",
                                  thresholds=[0.25, 0.5, 0.75], sources={"mask_a": "a.tif"})
    assert set(written) == FILES
    assert {p.name for p in out.iterdir()} == FILES  # and no temporary file left

    summary = json.loads((out / "summary.json").read_text())
    expected = summarize(overlap_table(a, b), thresholds=[0.25, 0.5, 0.75])
    for key in ("matching", "pixel", "groups"):
        assert summary[key] == expected[key]
    assert summary["ap_dsb2018"] == pytest.approx(expected["ap_dsb2018"])
    assert summary["parameters"]["voxel_size"] == [0.5, 0.5]
    assert summary["sources"] == {"mask_a": "a.tif"}

    rows = read_csv(out / "matching.csv")
    assert list(rows[0]) == list(stats.MATCHING_FIELDS)
    assert [(float(r["thresh"]), int(r["tp"]), int(r["fp"]), int(r["fn"])) for r in rows] == [
        (r["thresh"], r["tp"], r["fp"], r["fn"]) for r in expected["matching"]]
    assert [float(r["f1"]) for r in rows] == [r["f1"] for r in expected["matching"]]

    pairs = read_csv(out / "pairs.csv")
    assert sorted(r["kind"] for r in pairs) == sorted(
        ["match", "split", "merge", "complex", "only_a", "only_b"])
    split = next(r for r in pairs if r["kind"] == "split")
    assert (split["ids_a"], split["ids_b"], split["sizes_a"], split["sizes_b"]) == (
        "2", "12 13", "32", "16 16")
    assert float(split["iou"]) == 0.5
    assert split["pairs"] == "2:12:0.5 2:13:0.5"
    only_b = next(r for r in pairs if r["kind"] == "only_b")
    assert (only_b["ids_a"], only_b["ids_b"], float(only_b["iou"])) == ("", "17", 0.0)

    morph_a = read_csv(out / "morphology_a.csv")
    assert [int(r["label"]) for r in morph_a] == [1, 2, 3, 4, 5, 6, 7]
    assert [int(r["npixels"]) for r in morph_a] == [16, 32, 16, 16, 16, 16, 12]
    assert float(morph_a[0]["area"]) == 16 * 0.25
    assert "perimeter" in morph_a[0] and "circularity" in morph_a[0]
    assert [int(r["label"]) for r in read_csv(out / "morphology_b.csv")] == list(range(11, 18))

    # the metric suite: the same numbers as compare.summarize, and its tables as CSVs
    full = summarize(overlap_table(a, b), thresholds=[0.25, 0.5, 0.75], a=a, b=b,
                     voxel_size=(0.5, 0.5))
    for key in suite.SUITE_KEYS:
        assert summary[key] == full[key], key
    objects = read_csv(out / "objects.csv")
    assert len(objects) == 14 and {r["side"] for r in objects} == {"a", "b"}
    split_row = next(r for r in objects if r["side"] == "a" and r["id"] == "2")
    assert (split_row["kind"], split_row["error"]) == ("split", "over-segmentation")
    taxonomy = read_csv(out / "taxonomy.csv")
    assert taxonomy[-1]["size_class"] == "all"
    assert int(taxonomy[-1]["missing"]) == 1 and int(taxonomy[-1]["spurious"]) == 1
    boundary = read_csv(out / "boundary.csv")
    assert len(boundary) == full["boundary"]["n_pairs"] > 0
    assert float(boundary[0]["hausdorff"]) == pytest.approx(
        full["boundary"]["pairs"]["hausdorff"][0])

    for png in ("iou_histogram.png", "scores.png", "sizes.png", "taxonomy.png"):
        assert_not_blank(out / png)


def test_report_in_angstrom_as_mrc_tomograms_have(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    report.write_report(tmp_path, a, b, voxel_size=(2.5, 2.5), unit="Å", thresholds=[0.5])
    with tifffile.TiffFile(tmp_path / "association.tif") as tif:
        assert tif.imagej_metadata["unit"] == "\\u00C5"  # as ImageJ escapes it


def test_association_map_colours(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    report.write_report(tmp_path, a, b, threshold=0.5, voxel_size=(2.0, 1.0))
    rgb = tifffile.imread(tmp_path / "association.tif")
    assert rgb.shape == a.shape + (3,) and rgb.dtype == np.uint8
    assert rgb[2, 2].tolist() == GREEN       # match, IoU 0.6
    assert rgb[2, 5].tolist() == BLACK       # B 11 is matched: only its A partner is coloured
    # the split at IoU exactly 0.5: A 2 matched to one half, the other half a false
    # positive on top of it (green + blue)
    assert sorted([rgb[2, 9].tolist(), rgb[2, 13].tolist()]) == sorted([GREEN, CYAN])
    # the merge: one of A 3 / A 4 matches B 14, the other is a false negative
    assert sorted([rgb[2, 20].tolist(), rgb[2, 24].tolist()]) == sorted([GREEN, RED])
    # the complex case has no pair at 0.5: A false negatives on B false positives
    assert rgb[8, 3].tolist() == MAGENTA
    assert rgb[8, 13].tolist() == RED        # only in A
    assert rgb[8, 19].tolist() == BLUE       # only in B
    assert rgb[0, 0].tolist() == BLACK
    with tifffile.TiffFile(tmp_path / "association.tif") as tif:
        assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.RGB
        x_res, y_res = tif.pages[0].tags["XResolution"].value, tif.pages[0].tags["YResolution"]
        assert x_res == (1, 1) and y_res.value == (1, 2)
    # at 0.3 the complex pairs (IoU 1/3) match too
    rgb = report.association_map(overlap_table(a, b), a, b, thresh=0.3)
    assert rgb[8, 3].tolist() == GREEN


def test_association_map_huge_ids_use_the_sorted_lookup(monkeypatch):
    a = np.array([[2**32 - 1, 2**32 - 1, 0, 70000]], dtype=np.uint32)
    b = np.array([[5, 5, 2**31, 0]], dtype=np.uint32)
    table = overlap_table(a, b)
    direct = report.association_map(table, a, b)
    monkeypatch.setattr(report, "_MAX_LUT_ID", 10)
    assert np.array_equal(report.association_map(table, a, b), direct)
    assert direct[0].tolist() == [GREEN, GREEN, BLUE, RED]


def test_association_map_over_an_image_and_in_3d(tmp_path):
    a = np.zeros((3, 6, 7), np.uint16)
    a[1, 1:4, 1:4] = 1
    b = np.zeros_like(a)
    b[1, 1:4, 1:4] = 9
    image = np.arange(a.size, dtype=np.float32).reshape(a.shape)
    rgb = report.association_map(overlap_table(a, b), a, b, image=image)
    assert rgb[0, 0, 0].tolist() == [0, 0, 0]            # darkest voxel, background: grey 0
    assert rgb[2, 5, 6].tolist() == [255, 255, 255]      # brightest voxel, background
    r, g, bl = rgb[1, 2, 2].tolist()                     # object: half green, half grey
    assert r == bl and g > r and g >= 127
    report.write_report(tmp_path, a, b, image=image, voxel_size=(3.0, 1.0, 1.0))
    rgb3 = tifffile.imread(tmp_path / "association.tif")
    assert rgb3.shape == (3, 6, 7, 3)
    with tifffile.TiffFile(tmp_path / "association.tif") as tif:
        assert tif.imagej_metadata["spacing"] == 3.0
    morph = read_csv(tmp_path / "morphology_a.csv")
    assert float(morph[0]["volume"]) == 27.0 and "sphericity" in morph[0]


def test_roi_removes_objects_mostly_outside_from_both_masks(tmp_path):
    a = np.zeros((4, 20), np.uint16)
    b = np.zeros_like(a)
    a[0:2, 0:4] = 1       # fully inside
    b[0:2, 0:4] = 5
    a[0:2, 8:12] = 2      # exactly half inside: kept
    b[0:2, 8:12] = 6
    a[0:2, 13:17] = 3     # 1 of 8 inside: removed
    b[2:4, 16:20] = 7     # outside: removed
    roi = np.zeros_like(a, dtype=bool)
    roi[:, :10] = True
    roi[0, 13] = True
    result = report.apply_roi(a, b, roi)
    assert result.removed_a.tolist() == [3] and result.removed_b.tolist() == [7]
    assert np.unique(result.a).tolist() == [0, 1, 2]
    assert np.unique(result.b).tolist() == [0, 5, 6]
    assert a.max() == 3  # inputs untouched

    report.write_report(tmp_path, a, b, roi=roi, curated=a, thresholds=[0.5])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["roi"] == {"removed_a": 1, "removed_b": 1, "removed_curated": 1}
    (m,) = summary["matching"]
    assert (m["tp"], m["fp"], m["fn"], m["n_true"], m["n_pred"]) == (2, 0, 0, 2, 2)
    assert [int(r["label"]) for r in read_csv(tmp_path / "morphology_curated.csv")] == [1, 2]
    with pytest.raises(ValueError, match="roi has shape"):
        report.apply_roi(a, b, roi[:, :5])


def test_curated_output_is_measured_and_compared(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    curated = np.where(a > 0, a + 100, 0).astype(np.uint16)
    written = report.write_report(tmp_path, a, b, curated=curated, thresholds=[0.5])
    assert set(written) == FILES | CURATED_FILES
    (vs_a,) = read_csv(tmp_path / "matching_curated_vs_a.csv")
    assert (int(vs_a["tp"]), int(vs_a["fp"]), int(vs_a["fn"])) == (7, 0, 0)
    (vs_b,) = read_csv(tmp_path / "matching_curated_vs_b.csv")
    expected = stats.matching_stats(overlap_table(b, curated), thresholds=[0.5])[0]
    assert int(vs_b["tp"]) == expected["tp"] and int(vs_b["fn"]) == expected["fn"]
    labels = [int(r["label"]) for r in read_csv(tmp_path / "morphology_curated.csv")]
    assert labels == [101, 102, 103, 104, 105, 106, 107]
    assert json.loads((tmp_path / "summary.json").read_text())["curated_vs_a"]["pixel"][
        "dice"] == 1.0


def test_empty_masks_give_a_report(tmp_path):
    empty = np.zeros((8, 9), np.uint8)
    written = report.write_report(tmp_path, empty, empty)
    assert set(written) == FILES
    assert read_csv(tmp_path / "morphology_a.csv") == []
    assert tifffile.imread(tmp_path / "association.tif").max() == 0
    assert json.loads((tmp_path / "summary.json").read_text())["matching"][0]["tp"] == 0


def test_a_failure_leaves_nothing_and_keeps_the_old_report(every_kind_2d, tmp_path,
                                                           monkeypatch):
    a, b = every_kind_2d
    report.write_report(tmp_path, a, b, thresholds=[0.5])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken(path, figure, *, opener):
        with opener(path) as f:
            f.write(b"half a png")
            raise OSError("disk full")

    monkeypatch.setattr(report, "_write_figure", broken)
    with pytest.raises(OSError, match="disk full"):
        report.write_report(tmp_path, b, a, thresholds=[0.9], overwrite=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before

    fresh = tmp_path / "fresh"
    with pytest.raises(OSError, match="disk full"):
        report.write_report(fresh, a, b)
    assert not fresh.exists()  # the folder it created is removed


def test_files_get_the_usual_permissions(every_kind_2d, tmp_path):
    umask = os.umask(0o022)
    try:
        report.write_report(tmp_path, *every_kind_2d)
    finally:
        os.umask(umask)
    for path in tmp_path.iterdir():
        assert path.stat().st_mode & 0o777 == 0o644, path.name


def test_bad_arguments_write_nothing(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    with pytest.raises(ValueError, match="curated has shape"):
        report.write_report(tmp_path / "r", a, b, curated=a[:, :3])
    with pytest.raises(ValueError, match="thresh must be in"):
        report.write_report(tmp_path / "r", a, b, threshold=2)
    assert not (tmp_path / "r").exists()


def test_plots_draw_on_given_axes():
    from matplotlib.figure import Figure

    def pixels(figure):
        figure.canvas.draw()
        return np.asarray(figure.canvas.buffer_rgba())[..., :3]

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = Figure(figsize=(4, 3))
    FigureCanvasAgg(figure)
    blank = pixels(figure).std()
    plots.plot_scores(figure.add_subplot(), stats.matching_stats(
        overlap_table(np.array([[1, 1, 2]]), np.array([[1, 3, 3]]))))
    assert blank == 0 and pixels(figure).std() > 10
    figure = Figure(figsize=(4, 3))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    plots.plot_iou_histogram(ax, [0.2, 0.8, 0.85], thresh=0.5)
    assert sum(p.get_height() for p in ax.patches) == 3
    figure = Figure(figsize=(4, 3))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    plots.plot_sizes(ax, [10, 20, 1000], [15])
    assert ax.get_xscale() == "log"
    assert sum(p.get_height() for p in ax.patches) == 4
