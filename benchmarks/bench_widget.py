"""Speed of the review widget: moving to the next group, deciding, saving (not a test).

On the full synthetic pair (128 x 1024 x 1024, ~30,000 objects, from
``synthetic.py``) with an image, in a real napari window: the time from a key
press on the canvas until the event loop is idle again (the handler and the
repaint it asks for), median over ``--repeats`` presses:

- ``Right``: move to the next group (camera, z-range, slice, highlight, panel);
- ``1`` / ``2`` / ``3`` / ``4``: a decision (review: journal line written,
  fsynced in the background; session, output layer, next group), split by
  whether a background TIFF write was running when the key was pressed:
  saving must never block review;
- ``U``: undo.

It also reports how long Start takes (read, validate, pair, open the journal)
and the longest the event loop went unserved meanwhile (the GUI must not
freeze), and how long one background TIFF write of the output takes.

Usage (needs a display: ``xvfb-run -a`` headless)::

    xvfb-run -a python benchmarks/bench_widget.py             # full size, 100 presses each
    xvfb-run -a python benchmarks/bench_widget.py --quick     # small size, 30 presses

Target: at most 50 ms per move and per decision (issue 3). Results go to
``benchmarks/results/widget[_small].md`` and ``.json``.

``--big`` reviews the 512 x 2048 x 2048 uint32 zarr pair of ``bigdata.py``
(~490k objects a side) lazily, as a person who drops the two stores on napari
does: the reader's dask layers, a ``.zarr`` output, crops read per group.
It reports start-up (blockwise overlap table under the engine, with napari's
progress bar) and the longest event-loop gap meanwhile, then ``--repeats``
presses (default 50) each of ``Right`` and of a decision: handler and total
times, target <= 100 ms median (crop reads included). ``--slab`` does the
same on the 128 x 1024 x 1024 zarr pair of ``synthetic.py`` (faster to
iterate on). Results: ``benchmarks/results/widget_big[_slab].md`` and ``.json``.
The out dir is a temporary one (the overlap table is computed: ~60 s on the
big pair) unless ``--out DIR`` names one: there the table cached beside the
journal by a first run is reused, and an earlier run's review is removed and
started afresh (resumed, its groups would be decided already: refused keys
time nothing, and the bench stops if any decision or undo is refused).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TARGET_MS = 50.0


def make_image(a: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """A uint8 image that looks like the cells of ``a`` (cheap: one pass, a small noise tile)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 40, size=(1,) + a.shape[1:], dtype=np.uint8)
    image = np.where(a > 0, np.uint8(140), np.uint8(30))
    image += noise
    return image


class LoopWatch:
    """Largest gap between ticks of a 10 ms timer: how long the GUI went unserved."""

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.longest = 0.0
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def _tick(self):
        now = time.perf_counter()
        self.longest = max(self.longest, now - self._last)
        self._last = now

    def stop(self):
        self._timer.stop()


def start_review(widget, app):
    """Start the widget's review and serve the event loop until it is up.

    Returns the seconds it took and the :class:`LoopWatch` of the event loop meanwhile.
    """
    watch = LoopWatch()
    t0 = time.perf_counter()
    widget.start()
    while widget.busy:
        app.processEvents()
        time.sleep(0.002)
    start_s = time.perf_counter() - t0
    watch.stop()
    if widget.session is None:
        raise SystemExit(f"review did not start: {widget.message.text()}")
    return start_s, watch


def settle(app) -> None:
    """Run the event loop until nothing is pending (the repaint included)."""
    app.processEvents()
    app.processEvents()


def timed_press(app, canvas, key) -> tuple[float, float]:
    """Milliseconds in the key handler (GUI thread busy), and until idle (repaint done)."""
    from qtpy.QtTest import QTest

    t0 = time.perf_counter()
    QTest.keyClick(canvas, key)
    t1 = time.perf_counter()
    settle(app)
    t2 = time.perf_counter()
    return (t1 - t0) * 1000, (t2 - t0) * 1000


def _stats(pairs) -> dict:
    if not pairs:
        return {"n": 0}
    out = {"n": len(pairs)}
    for name, values in (("handler", [p[0] for p in pairs]), ("total", [p[1] for p in pairs])):
        values = sorted(values)
        out[name] = {
            "median_ms": round(statistics.median(values), 2),
            "p90_ms": round(values[int(0.9 * (len(values) - 1))], 2),
            "max_ms": round(values[-1], 2),
        }
    return out


def run(size: str, repeats: int, out_dir: Path) -> dict:
    import napari
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication

    from napari_mask_compare import read
    from napari_mask_compare._qt._widget import MaskCompareWidget
    from synthetic import ensure_pair

    path_a, path_b, info = ensure_pair(size, log=lambda *a: print(*a, file=sys.stderr))
    pair = read.load_pair(path_a, path_b)
    a, b = np.asarray(pair.a), np.asarray(pair.b)
    image = make_image(a)
    print(f"{size}: {a.shape}, {info.get('n_a', '?')} objects in A", file=sys.stderr)

    viewer = napari.Viewer(show=True, title="bench_widget")
    viewer.window._qt_window.resize(1600, 1000)
    app = QApplication.instance()
    widget = MaskCompareWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Mask compare", area="right")
    layers = (viewer.add_image(image, name="image"), viewer.add_labels(a, name="A"),
              viewer.add_labels(b, name="B"))
    widget.set_layers(image=layers[0], mask_a=layers[1], mask_b=layers[2])
    widget.set_out_dir(out_dir)
    settle(app)

    start_s, watch = start_review(widget, app)
    session, review = widget.session, widget.review
    saver = review._saver  # to see whether a background TIFF write runs
    review.flush()  # the first full write, before timing
    canvas = viewer.window._qt_viewer.canvas.native
    viewer.layers.selection.active = widget.view.layers["a"]  # a Labels layer: 1-4 are ours
    settle(app)

    for _ in range(5):  # warm-up
        timed_press(app, canvas, Qt.Key.Key_Right)
    moves = [timed_press(app, canvas, Qt.Key.Key_Right) for _ in range(repeats)]

    t0 = time.perf_counter()
    timed_press(app, canvas, Qt.Key.Key_4)
    review.flush()
    write_s = time.perf_counter() - t0

    keys = (Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_3, Qt.Key.Key_4)
    during_write, idle = [], []
    for i in range(repeats):
        writing = saver._writing or saver._dirty
        (during_write if writing else idle).append(timed_press(app, canvas, keys[i % 4]))
    undos = [timed_press(app, canvas, Qt.Key.Key_U) for _ in range(min(repeats, 20))]
    writes = review.writes

    t0 = time.perf_counter()
    timed_press(app, canvas, Qt.Key.Key_Q)  # flush, summary, layers back
    quit_s = time.perf_counter() - t0
    summary = json.loads((out_dir / "A.summary.json").read_text())
    viewer.close()

    return {
        "size": size, "shape": list(a.shape), "objects_a": int(info.get("n_a", 0)),
        "groups": len(session.groups), "repeats": repeats,
        "start_s": round(start_s, 2), "start_longest_gui_gap_ms": round(watch.longest * 1000, 1),
        "next_group": _stats(moves),
        "decision_all": _stats(during_write + idle),
        "decision_during_tiff_write": _stats(during_write),
        "decision_no_write_running": _stats(idle),
        "undo": _stats(undos),
        "tiff_write_s": round(write_s, 2), "tiff_writes": writes,
        "quit_s": round(quit_s, 2), "summary": summary,
        "machine": {"python": platform.python_version(), "napari": napari.__version__,
                    "cpus": __import__("os").cpu_count(), "platform": platform.platform()},
    }


LAZY_TARGET_MS = 100.0


def _lazy_paths(slab: bool) -> tuple[Path, Path]:
    if slab:
        from synthetic import DEFAULT_CACHE

        stem = "full_128x1024x1024_n30000_seed0"
        paths = tuple(DEFAULT_CACHE / f"{stem}_{side}_u32_c32x256x256.zarr" for side in "AB")
        if not all(path.exists() for path in paths):
            raise SystemExit(f"{paths[0]} is missing: run benchmarks/bench_bigdata.py first")
        return paths
    from bigdata import big_paths, make_big_pair

    make_big_pair(log=lambda *a: print(*a, file=sys.stderr))
    return big_paths()


#: Files of an earlier run's review in ``--out`` (the cached overlap table is kept).
_REVIEW_FILES = (".journal.jsonl", ".zarr", ".summary.json", ".view.json", ".lock")


def _fresh_review(out_dir: Path, stem: str) -> None:
    """Remove an earlier run's review of ``stem`` from ``out_dir``, keeping its table cache.

    Resuming it would replay its decisions and refuse the bench's (groups
    already decided): each run must time a review that starts afresh.
    """
    import shutil

    for suffix in _REVIEW_FILES:
        path = out_dir / f"{stem}{suffix}"
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def run_lazy(repeats: int, out_dir: Path, *, slab: bool) -> dict:
    """Review the big zarr pair (or the slab) lazily in the widget: start, moves, decisions."""
    import napari
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication

    from napari_mask_compare._qt._widget import MaskCompareWidget
    from napari_mask_compare._reader import get_reader

    path_a, path_b = _lazy_paths(slab)
    _fresh_review(out_dir, path_a.stem)
    cached_table = (out_dir / f"{path_a.stem}.table.npz").exists()
    viewer = napari.Viewer(show=True, title="bench_widget --big")
    viewer.window._qt_window.resize(1600, 1000)
    app = QApplication.instance()
    widget = MaskCompareWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Mask compare", area="right")
    layers = []
    for path in (path_a, path_b):
        (data, meta, kind), = get_reader(str(path))(str(path))
        layers.append(getattr(viewer, f"add_{kind}")(data, **meta))
    shape = tuple(layers[0].data.shape)
    print(f"{'slab' if slab else 'big'}: {shape}, lazy: {type(layers[0].data).__name__}",
          file=sys.stderr)
    widget.set_layers(mask_a=layers[0], mask_b=layers[1])
    widget.set_out_dir(out_dir)
    settle(app)
    reports = []
    widget.loader.progressed.connect(lambda done, total: reports.append((done, total)))

    start_s, watch = start_review(widget, app)
    session, review = widget.session, widget.review
    assert session.chunked
    canvas = viewer.window._qt_viewer.canvas.native
    viewer.layers.selection.active = widget.view.layers["a"]
    settle(app)
    crop = [s.stop - s.start for s in widget.view.crop_region]

    for _ in range(5):  # warm-up
        timed_press(app, canvas, Qt.Key.Key_Right)
    moves = [timed_press(app, canvas, Qt.Key.Key_Right) for _ in range(repeats)]
    keys = (Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_3, Qt.Key.Key_4)
    steps = len(session.steps)
    decisions = [timed_press(app, canvas, keys[i % 4]) for i in range(repeats)]
    taken = len(session.steps) - steps
    undos = [timed_press(app, canvas, Qt.Key.Key_U) for _ in range(min(repeats, 20))]
    undone = taken - (len(session.steps) - steps)
    writes = review.writes
    if taken != repeats or undone != len(undos):  # a refused key times nothing
        raise SystemExit(f"{repeats - taken} decision(s) and {len(undos) - undone} undo(s) "
                         f"refused: {widget.message.text()}")

    t0 = time.perf_counter()
    timed_press(app, canvas, Qt.Key.Key_Q)  # flush, compact the written chunks, pyramid
    quit_s = time.perf_counter() - t0
    output = out_dir / f"{path_a.stem}.zarr"
    summary = json.loads((out_dir / f"{path_a.stem}.summary.json").read_text())
    viewer.close()
    return {
        "size": "slab" if slab else "big", "shape": list(shape), "groups": len(session.groups),
        "repeats": repeats, "start_s": round(start_s, 2), "cached_table": cached_table,
        "start_longest_gui_gap_ms": round(watch.longest * 1000, 1),
        "progress_reports": len(reports), "progress_last": list(reports[-1]) if reports else None,
        "first_crop": crop, "next_group": _stats(moves), "decision": _stats(decisions),
        "undo": _stats(undos), "chunk_writes": writes, "quit_s": round(quit_s, 2),
        "output": str(output.name), "summary": summary,
        "machine": {"python": platform.python_version(), "napari": napari.__version__,
                    "cpus": __import__("os").cpu_count(), "platform": platform.platform()},
    }


def report_lazy(result: dict) -> str:
    rows = [("move to the next group (Right)", result["next_group"]),
            ("decision (1-4)", result["decision"]), ("undo (U)", result["undo"])]
    lines = [
        f"# Review widget speed, lazy (by crops): {result['size']} "
        f"({' x '.join(map(str, result['shape']))} uint32 zarr, {result['groups']:,} groups)",
        "",
        "The two zarr stores opened with the plugin's reader (dask layers) and reviewed into "
        "an OME-Zarr output: each group's crop (box + margin, or what the camera shows, at "
        "most twice that) read from A, B and the output on every move. Handler: the key "
        "press handled (crop reads included); total: until the event loop is idle (repaint "
        f"included, Mesa llvmpipe under Xvfb). Target <= {LAZY_TARGET_MS:.0f} ms (median).",
        "",
        "| action | n | handler median | p90 | max | total median | p90 | max | handler |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in rows:
        h, t = s["handler"], s["total"]
        ok = "ok" if h["median_ms"] <= LAZY_TARGET_MS else "OVER"
        lines.append(f"| {name} | {s['n']} | {h['median_ms']} | {h['p90_ms']} | {h['max_ms']} "
                     f"| {t['median_ms']} | {t['p90_ms']} | {t['max_ms']} | {ok} |")
    lines += [
        "",
        f"- Start (open lazily, blockwise overlap table"
        f"{' from the cache of an earlier run' if result.get('cached_table') else ''}, "
        f"journal, OME-Zarr store, layers): "
        f"{result['start_s']} s off the GUI thread; longest event-loop gap meanwhile "
        f"{result['start_longest_gui_gap_ms']} ms; {result['progress_reports']} progress "
        f"reports, last {result['progress_last']} (blocks done, total).",
        f"- First crop: {' x '.join(map(str, result['first_crop']))} voxels.",
        f"- Chunks written by the autosaver: {result['chunk_writes']}; Q (flush, compact, "
        f"pyramid): {result['quit_s']} s.",
        f"- {result['machine']}",
    ]
    return "\n".join(lines) + "\n"


def report(result: dict) -> str:
    rows = [("move to the next group (Right)", result["next_group"]),
            ("decision (1-4), all", result["decision_all"]),
            ("decision while a TIFF write runs", result["decision_during_tiff_write"]),
            ("decision, no write running", result["decision_no_write_running"]),
            ("undo (U)", result["undo"])]
    lines = [
        f"# Review widget speed: {result['size']} "
        f"({' x '.join(map(str, result['shape']))}, {result['objects_a']:,} objects in A, "
        f"{result['groups']:,} groups)",
        "",
        "Handler: the key press handled (napari keymap, session, journal fsync, layers, "
        "camera, slider, panel), i.e. the GUI thread busy. Total: until the event loop is "
        "idle, the repaint included (here software OpenGL, Mesa llvmpipe under Xvfb). "
        f"Target <= {TARGET_MS:.0f} ms (median).",
        "",
        "| action | n | handler median | p90 | max | total median | p90 | max | handler |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in rows:
        if not s["n"]:
            lines.append(f"| {name} | 0 | | | | | | | |")
            continue
        h, t = s["handler"], s["total"]
        ok = "ok" if h["median_ms"] <= TARGET_MS else "OVER"
        lines.append(f"| {name} | {s['n']} | {h['median_ms']} | {h['p90_ms']} | {h['max_ms']} "
                     f"| {t['median_ms']} | {t['p90_ms']} | {t['max_ms']} | {ok} |")
    lines += [
        "",
        f"- Start (read layers, validate, pair, journal): {result['start_s']} s off the GUI "
        f"thread; longest event-loop gap meanwhile {result['start_longest_gui_gap_ms']} ms.",
        f"- One background TIFF write of the output: {result['tiff_write_s']} s "
        f"({result['tiff_writes']} writes in all, coalesced).",
        f"- Q (flush, summary, layers back): {result['quit_s']} s.",
        f"- {result['machine']}",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small size, 30 presses")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--big", action="store_true",
                        help="the 512 x 2048 x 2048 zarr pair, reviewed lazily (by crops)")
    parser.add_argument("--slab", action="store_true",
                        help="as --big on the 128 x 1024 x 1024 zarr pair")
    parser.add_argument("--out", type=Path, default=None,
                        help="with --big/--slab: the out dir (kept: a second run reuses the "
                             "cached overlap table; an earlier run's review there is removed "
                             "and started afresh)")
    args = parser.parse_args(argv)
    if args.big or args.slab:
        repeats = args.repeats or 50
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            result = run_lazy(repeats, args.out, slab=args.slab)
        else:
            with tempfile.TemporaryDirectory() as out:
                result = run_lazy(repeats, Path(out), slab=args.slab)
        text = report_lazy(result)
        print(text)
        results = HERE / "results"
        results.mkdir(exist_ok=True)
        stem = "widget_big_slab" if args.slab else "widget_big"
        (results / f"{stem}.md").write_text(text)
        (results / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
        return 0
    size = "small" if args.quick else "full"
    repeats = args.repeats or (30 if args.quick else 100)
    with tempfile.TemporaryDirectory() as out:
        result = run(size, repeats, Path(out))
    text = report(result)
    print(text)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    stem = "widget" if size == "full" else f"widget_{size}"
    (results / f"{stem}.md").write_text(text)
    (results / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
