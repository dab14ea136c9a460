"""``mask-compare stats`` and ``mask-compare report``."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_mask_compare import stats, suite
from napari_mask_compare.cli import main
from napari_mask_compare.compare import summarize
from napari_mask_compare.pairing import overlap_table
from napari_mask_compare.report import report_files


def write(path, data, **kwargs):
    tifffile.imwrite(path, data, **kwargs)
    return path


def run(*args):
    """The command in a fresh interpreter, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "napari_mask_compare.cli", *map(str, args)],
                          capture_output=True, text=True)


@pytest.fixture
def pair_files(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    return write(tmp_path / "a.tif", a), write(tmp_path / "b.tif", b)


# --------------------------------------------------------------------------- stats


def test_stats_json_is_one_object_with_every_statistic(every_kind_2d, pair_files, capsys):
    assert main(["stats", *map(str, pair_files), "--thresholds", "0.3, 0.5,0.75",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    expected = summarize(overlap_table(*every_kind_2d), thresholds=[0.3, 0.5, 0.75])
    assert result == expected
    assert [r["thresh"] for r in result["matching"]] == [0.3, 0.5, 0.75]
    assert list(result["matching"][0]) == list(stats.MATCHING_FIELDS)
    assert set(result["pixel"]) >= {"dice", "iou"}
    assert result["groups"] == {"match": 1, "split": 1, "merge": 1, "complex": 1,
                                "only_a": 1, "only_b": 1}


def test_stats_metric_suite_beside_matching(every_kind_2d, pair_files, capsys):
    a, b = every_kind_2d
    assert main(["stats", *map(str, pair_files), "--json", "--boundary"]) == 0
    result = json.loads(capsys.readouterr().out)
    expected = summarize(overlap_table(a, b), a=a, b=b)
    for key in suite.SUITE_KEYS:
        assert result[key] == expected[key], key
    at_half = next(r for r in result["matching"] if r["thresh"] == 0.5)
    assert result["boundary"]["n_pairs"] == at_half["tp"] == 3  # the pairs matched at 0.5
    assert main(["stats", *map(str, pair_files)]) == 0
    text = capsys.readouterr().out
    for words in ("VI ", "adapted Rand error", "CTC SEG", "AJI", "AP (Cellpose)",
                  "errors: one-to-one 1, over-segmentation 1", "boundary: not measured"):
        assert words in text, words


def test_stats_table_has_default_thresholds(pair_files, capsys):
    assert main(["stats", *map(str, pair_files)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:5] == ["thresh", "tp", "fp", "fn", "precision"]
    rows = [line.split() for line in out[1:10]]
    assert [r[0] for r in rows] == [f"{t:g}" for t in stats.DEFAULT_THRESHOLDS]
    # at 0.5 the match (IoU 0.6), one half of the split and one half of the merge (0.5)
    row = dict(zip(out[0].split(), rows[4]))
    assert (row["tp"], row["fp"], row["fn"], row["n_true"], row["n_pred"]) == (
        "3", "4", "4", "7", "7")
    text = "\n".join(out)
    assert "pixel Dice" in text and "AP (DSB 2018" in text
    assert "split 1, merge 1" in text


def test_stats_folders_per_file_and_pooled_total(every_kind_2d, tmp_path, capsys):
    a, b = every_kind_2d
    empty = np.zeros_like(a)
    for folder in ("A", "B"):
        (tmp_path / folder).mkdir()
    write(tmp_path / "A" / "x.tif", a)
    write(tmp_path / "B" / "x.tif", b)
    write(tmp_path / "A" / "y.tif", a)
    np.save(tmp_path / "B" / "y.npy", empty)
    write(tmp_path / "A" / "lonely.tif", a)
    assert main(["stats", str(tmp_path / "A"), str(tmp_path / "B"), "--thresholds", "0.5",
                 "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert [f["name"] for f in result["files"]] == ["x", "y"]
    x, y = (f["matching"][0] for f in result["files"])
    (total,) = result["matching"]
    assert (total["tp"], total["fp"], total["fn"]) == (x["tp"] + y["tp"], x["fp"] + y["fp"],
                                                       x["fn"] + y["fn"])
    assert total["n_true"] == 14 and total["n_pred"] == 7
    assert total["recall"] == pytest.approx(total["tp"] / 14)
    assert result["n_images"] == 2
    combined = suite.combine_suites([{k: f[k] for k in suite.SUITE_KEYS}
                                     for f in result["files"]])
    assert {k: result[k] for k in suite.SUITE_KEYS} == {k: combined[k] for k in suite.SUITE_KEYS}
    assert result["ctc_det"]["fn"] == sum(f["ctc_det"]["fn"] for f in result["files"])
    assert result["unpaired"][str(tmp_path / "A")] == ["lonely"]
    assert "lonely" in captured.err and "no partner" in captured.err

    assert main(["stats", str(tmp_path / "A"), str(tmp_path / "B"), "--thresholds",
                 "0.5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:4]] == ["x", "y", "TOTAL"]


def test_stats_folder_with_a_bad_pair_reports_it_and_exits_2(every_kind_2d, tmp_path, capsys):
    a, b = every_kind_2d
    for folder in ("A", "B"):
        (tmp_path / folder).mkdir()
    write(tmp_path / "A" / "x.tif", a)
    write(tmp_path / "B" / "x.tif", b)
    write(tmp_path / "A" / "z.tif", a)
    write(tmp_path / "B" / "z.tif", b[:, :-1])
    assert main(["stats", str(tmp_path / "A"), str(tmp_path / "B"), "--json"]) == 2
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert [f["name"] for f in result["files"]] == ["x"]
    assert result["failed"][0]["name"] == "z"
    assert f"error: {tmp_path / 'B' / 'z.tif'}: mask B has shape (12, 39)" in captured.err
    assert "1 of 2 pairs failed" in captured.err


@pytest.mark.parametrize("problem", ["shape", "float", "negative", "missing", "not_tiff",
                                     "thresholds", "file_and_folder"])
def test_stats_bad_input_exits_2_with_one_line(tmp_path, problem):
    a = np.zeros((8, 8), np.uint16)
    a[2:5, 2:5] = 1
    path_a = write(tmp_path / "a.tif", a)
    path_b = tmp_path / "b.tif"
    extra = []
    named = str(path_b)
    if problem == "shape":
        write(path_b, np.zeros((8, 9), np.uint16))
    elif problem == "float":
        write(path_b, a.astype(np.float32) / 2)
    elif problem == "negative":
        write(path_b, -a.astype(np.int16))
    elif problem == "not_tiff":
        path_b.write_text("hello")
    elif problem == "thresholds":
        write(path_b, a)
        extra, named = ["--thresholds", "0.5,1.5"], "--thresholds"
    elif problem == "file_and_folder":
        path_b = tmp_path / "folder"
        path_b.mkdir()
        named = str(path_a)
    result = run("stats", path_a, path_b, *extra)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("mask-compare stats: error: ") and named in lines[0]
    assert result.stdout == ""


def test_stats_3d_huge_ids(tmp_path, capsys):
    a = np.zeros((3, 6, 6), np.uint32)
    a[0:2, 0:3, 0:3] = 2**32 - 1
    b = np.zeros_like(a)
    b[0:2, 0:3, 0:2] = 123456
    b[2, 5, 5] = 7
    a_path = write(tmp_path / "a.tif", a, photometric="minisblack")
    b_path = write(tmp_path / "b.tif", b, photometric="minisblack")
    assert main(["stats", str(a_path), str(b_path),
                 "--thresholds", "0.6,0.7", "--json"]) == 0
    m06, m07 = json.loads(capsys.readouterr().out)["matching"]
    assert (m06["tp"], m06["fp"], m06["fn"]) == (1, 1, 0)  # IoU 12 / 18
    assert m06["mean_matched_score"] == pytest.approx(2 / 3)
    assert m07["tp"] == 0


# --------------------------------------------------------------------------- report


def test_report_writes_its_files(every_kind_2d, pair_files, tmp_path, capsys):
    a, _ = every_kind_2d
    image = write(tmp_path / "img.tif", np.random.default_rng(0).random(a.shape,
                                                                        dtype=np.float32))
    roi = np.ones_like(a)
    roi[:, 30:] = 0
    roi_path = write(tmp_path / "roi.tif", roi)
    curated = write(tmp_path / "curated.tif", a)
    out = tmp_path / "out" / "report"
    assert main(["report", *map(str, pair_files), "--image", str(image), "--roi",
                 str(roi_path), "--curated", str(curated), "--threshold", "0.3",
                 "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"summary.json", "matching.csv", "pairs.csv", "association.tif", "scores.png",
            "morphology_a.csv", "morphology_b.csv", "morphology_curated.csv"} <= names
    assert names == set(report_files(curated=True))  # the names checked before writing
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parameters"]["threshold"] == 0.3
    assert summary["sources"]["roi"] == str(roi_path)
    assert summary["roi"] == {"removed_a": 0, "removed_b": 0, "removed_curated": 0}
    assert str(out) in capsys.readouterr().out
    rgb = tifffile.imread(out / "association.tif")
    assert rgb.shape == a.shape + (3,)


def test_report_roi_leaves_out_objects_outside(every_kind_2d, pair_files, tmp_path):
    roi = np.zeros(every_kind_2d[0].shape, np.uint8)
    roi[:6, :] = 1   # the top row of cases: match, split, merge
    out = tmp_path / "r"
    assert main(["report", *map(str, pair_files), "--roi", str(write(tmp_path / "roi.tif", roi)),
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["roi"] == {"removed_a": 3, "removed_b": 3}
    assert summary["groups"] == {"match": 1, "split": 1, "merge": 1, "complex": 0,
                                 "only_a": 0, "only_b": 0}


def test_report_filter_lists_each_object_and_writes_the_filtered_mask(tmp_path, capsys):
    curated = np.zeros((20, 40), np.uint16)
    curated[1:9, 1:9] = 7        # square, 64 px: kept
    curated[12:14, 1:3] = 9      # 4 px: removed by "npixels < 10"
    curated[1:3, 20:38] = 40     # thin bar, 36 px: circularity < 0.5 and npixels < 50
    curated[12:19, 20:27] = 41   # 49 px square: near the limits, meets only npixels < 50
    path = write(tmp_path / "c.tif", curated)
    out = tmp_path / "r"
    assert main(["report", str(path), str(path), "--curated", str(path), "--out", str(out),
                 "--filter", "npixels < 10 or circularity < 0.5 and npixels < 50"]) == 0
    assert {p.name for p in out.iterdir()} == set(report_files(curated=True, filtered=True))
    with open(out / "filter_curated.csv") as f:
        rows = {int(r["label"]): r for r in csv.DictReader(f)}
    assert {k: r["status"] for k, r in rows.items()} == {
        7: "Correct", 9: "Removed", 40: "Removed", 41: "Correct"}
    assert rows[9]["conditions"] == "npixels < 10; npixels < 50"
    assert rows[40]["conditions"] == "circularity < 0.5; npixels < 50"
    assert rows[41]["conditions"] == "npixels < 50"
    filtered = tifffile.imread(out / "curated_filtered.tif")
    assert filtered.dtype == np.uint16
    for label, row in rows.items():      # new ids 1..n, as the CSV says, same pixels
        new = int(row["new_label"])
        assert (new == 0) == (row["status"] == "Removed")
        if new:
            np.testing.assert_array_equal(filtered == new, curated == label)
    assert set(np.unique(filtered)) == {0, 1, 2}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["filter"]["removed"] == 2 and summary["filter"]["kept"] == 2


@pytest.mark.parametrize("problem", ["shape", "roi_shape", "curated_float", "image_shape",
                                     "missing", "out_is_file", "threshold", "folder",
                                     "filter_without_curated", "filter_syntax",
                                     "filter_property"])
def test_report_bad_input_exits_2_and_writes_nothing(tmp_path, problem):
    a = np.zeros((8, 8), np.uint16)
    a[2:5, 2:5] = 1
    path_a = write(tmp_path / "a.tif", a)
    path_b = write(tmp_path / "b.tif", a)
    out = tmp_path / "out"
    extra = []
    named = None
    if problem == "shape":
        path_b = write(tmp_path / "b.tif", np.zeros((8, 9), np.uint16))
        named = path_b
    elif problem == "roi_shape":
        named = write(tmp_path / "roi.tif", np.ones((9, 8), np.uint8))
        extra = ["--roi", named]
    elif problem == "curated_float":
        named = write(tmp_path / "c.tif", a.astype(np.float32) + 0.5)
        extra = ["--curated", named]
    elif problem == "image_shape":
        named = write(tmp_path / "img.tif", np.ones((4, 4), np.float32))
        extra = ["--image", named]
    elif problem == "missing":
        named = tmp_path / "nope.tif"
        extra = ["--roi", named]
    elif problem == "out_is_file":
        out.write_text("a file where the folder should be")
        named = out
    elif problem == "threshold":
        extra, named = ["--threshold", "1.5"], "--threshold"
    elif problem == "folder":
        path_b = tmp_path / "B"
        path_b.mkdir()
        named = path_b
    elif problem == "filter_without_curated":
        extra, named = ["--filter", "npixels < 5"], "--curated"
    elif problem == "filter_syntax":
        extra = ["--curated", path_a, "--filter", "npixels <"]
        named = "cannot read condition 'npixels <'"
    elif problem == "filter_property":      # a 3D property on 2D masks
        extra = ["--curated", path_a, "--filter", "sphericity < 0.5"]
        named = "no property 'sphericity' in 2D"
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    result = run("report", path_a, path_b, "--out", out, *extra)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("mask-compare report: error: ") and str(named) in lines[0]
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before
