"""A review larger than memory in the widget: zarr stores opened lazily, reviewed by crops.

A small zarr pair (and image) is written with zarr, opened with our reader
(dask layers) and reviewed in a real viewer as a person does it: keys decide,
a click picks, napari's brush edits the curated crop, U undoes, Q ends. The
layers must hold each group's crop, never the volume, placed so that world
coordinates are the volume's; the OME-Zarr output, read back with our reader,
must equal the journal replayed by a session in memory, with ids 1..n.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr
from qt_helpers import SCREENSHOTS, add_layers, click, drag, inner_voxel, press, start
from qtpy.QtCore import QPoint
from qtpy.QtTest import QTest

from napari_mask_compare._qt._widget import MaskCompareWidget
from napari_mask_compare._reader import get_reader
from napari_mask_compare._text import LARGER_THAN_MEMORY
from napari_mask_compare.labels import relabel_sequential
from napari_mask_compare.session import Session

SHAPE = (20, 120, 140)
CHUNKS = (8, 32, 32)


def _masks(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A (boxes), B (A's boxes shifted, some split in two, some missing, some extra), image."""
    rng = np.random.default_rng(seed)
    a = np.zeros(SHAPE, np.uint32)
    b = np.zeros(SHAPE, np.uint32)
    for i in range(1, 41):
        z, y, x = rng.integers(0, [SHAPE[0] - 6, SHAPE[1] - 14, SHAPE[2] - 14])
        dz, dy, dx = rng.integers([3, 6, 6], [7, 14, 14])
        a[z:z + dz, y:y + dy, x:x + dx] = 1000 + i  # ids not 1..n
        if i % 7 == 0:
            continue  # only in A
        if i % 5 == 0:  # split in B
            b[z:z + dz, y:y + dy // 2, x + 1:x + dx] = 5000 + 2 * i
            b[z:z + dz, y + dy // 2:y + dy, x + 1:x + dx] = 5001 + 2 * i
        else:
            b[z:z + dz, y:y + dy, x + 1:x + dx + 1] = 5000 + 2 * i
    b[2:5, 3:9, 120:130] = 9999  # only in B
    image = np.where(a > 0, 150, 30).astype(np.uint8)
    image += rng.integers(0, 40, SHAPE, dtype=np.uint8)
    return a, b, image


def _write(path, data, chunks=CHUNKS) -> None:
    array = zarr.create_array(str(path), shape=data.shape, dtype=data.dtype, chunks=chunks,
                              fill_value=0)
    array[...] = data


def _open_lazily(viewer, path):
    """Open ``path`` with our reader, as a file dropped on napari: dask layers."""
    layers = add_layers(viewer, get_reader(str(path))(str(path)))
    assert len(layers) == 1 and not isinstance(layers[0].data, np.ndarray)
    return layers[0]


@pytest.fixture
def lazy_review(make_napari_viewer, qtbot, tmp_path):
    a, b, image = _masks()
    for name, data in (("a.zarr", a), ("b.zarr", b), ("image.zarr", image)):
        _write(tmp_path / name, data)
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    widget = MaskCompareWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Mask compare", area="right")
    layers = [_open_lazily(viewer, tmp_path / name)
              for name in ("image.zarr", "a.zarr", "b.zarr")]
    assert [type(layer).__name__ for layer in layers] == ["Image", "Labels", "Labels"]
    widget.set_layers(image=layers[0], mask_a=layers[1], mask_b=layers[2])
    out_dir = tmp_path / "out"
    widget.set_out_dir(out_dir)
    reported = []
    widget.loader.progressed.connect(lambda done, total: reported.append((done, total)))
    start(widget, qtbot)
    qtbot.wait(100)
    return viewer, widget, (a, b, image), out_dir, reported


def _region(view) -> tuple[slice, ...]:
    return view.crop_region


def _assert_crops(view, volumes) -> None:
    """Every review layer holds the crop of its volume, placed at the crop's origin."""
    a, b, image = volumes
    region = _region(view)
    crop_shape = tuple(s.stop - s.start for s in region)
    assert crop_shape != SHAPE and np.prod(crop_shape) < np.prod(SHAPE)
    for role, volume in (("a", a), ("b", b), ("image_a", image), ("image_output", image)):
        layer = view.layers[role]
        assert layer.data.shape == crop_shape, role
        np.testing.assert_array_equal(layer.translate, [s.start for s in region])
        np.testing.assert_array_equal(np.asarray(layer.data), volume[region])


def _hover(viewer, qtbot, layer, voxel) -> None:
    """Move the mouse over the canvas pixel that shows ``voxel`` (volume index) of ``layer``."""
    from qt_helpers import canvas_point

    local = np.subtract(voxel, layer.translate).astype(int)
    point = canvas_point(viewer, layer, local)
    native = viewer.window._qt_viewer.canvas.native
    QTest.mouseMove(native, QPoint(point.x() + 1, point.y()))
    qtbot.wait(30)
    QTest.mouseMove(native, point)
    qtbot.wait(30)


def _ops(out) -> list[dict]:
    lines = (out.parent / f"{out.stem}.journal.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[1:]]


def test_a_lazy_review_by_crops_writes_the_journal_s_output(lazy_review, qtbot):
    viewer, widget, volumes, out_dir, reported = lazy_review
    a, b, image = volumes
    session, view = widget.session, widget.view
    output = widget._review.output
    assert session.chunked and output == out_dir / "a.zarr"

    # start-up: the blocks of the overlap table drove the progress bar, to the last one
    blocks = int(np.prod([-(-n // c) for n, c in zip(SHAPE, CHUNKS)]))
    assert reported and reported[-1] == (blocks, blocks)
    assert all(total == blocks for _, total in reported)

    # the panels hold the group's crop, where it lies in the volume
    _assert_crops(view, volumes)
    region = _region(view)
    group = session.current
    for axis, (lo, hi) in enumerate(zip(group.bbox[:3], group.bbox[3:])):
        assert region[axis].start <= lo and hi <= region[axis].stop
    assert region[0] == slice(group.bbox[0], group.bbox[3])  # the slider's slices only
    z = round(viewer.dims.point[0])
    assert region[0].start <= z < region[0].stop

    # hover: the value under the mouse is the volume's at that world position
    voxel = inner_voxel(a, group.ids_a[0], z=z) if group.ids_a else \
        inner_voxel(b, group.ids_b[0], z=z)
    _hover(viewer, qtbot, view.layers["a"], voxel)
    world = np.asarray(viewer.cursor.position)
    index = tuple(int(round(c)) for c in world)
    assert index[0] == z
    assert view.layers["a"].get_value(world, world=True) == a[index]
    assert view.layers["b"].get_value(world, world=True) == b[index]

    # keys decide two groups; each shows its own crop
    viewer.layers.selection.active = view.layers["a"]
    first = session.current
    press(viewer, "1")
    second = session.current
    assert second.index != first.index and session.choice_of(first.index) == "A"
    _assert_crops(view, volumes)
    press(viewer, "2")
    assert session.choice_of(second.index) == "B"
    _assert_crops(view, volumes)
    np.testing.assert_array_equal(view.layers["output"].data,
                                  session.read("output", _region(view)))

    # a click on an object of B in the group shown picks it
    while not session.current.ids_b:
        press(viewer, "Right")
    group = session.current
    z = round(viewer.dims.point[0])
    label = group.ids_b[0]
    if not (b[z] == label).any():
        z = int(np.argmax((b == label).sum(axis=(1, 2))))
        viewer.dims.set_point(0, z)
    voxel = inner_voxel(b, label, z=z)
    layer_b = view.layers["b"]
    local = tuple(int(v) for v in np.subtract(voxel, layer_b.translate))
    click(viewer, qtbot, layer_b, local)
    assert ("B", label) in session.picks(group.index)
    assert session.read("output", tuple(slice(v, v + 1) for v in voxel)).item() > 0
    assert view.layers["output"].data[local] > 0

    # a brush stroke on the curated crop: an edit where the stroke went, in the volume
    layer = view.layers["output"]
    viewer.layers.selection.active = layer
    press(viewer, "P")
    layer.brush_size = 3
    layer.selected_label = len(session.objects) + 1
    origin = np.asarray(view.crop_origin)
    reg = _region(view)
    y = (reg[1].start + reg[1].stop) // 2
    stroke = [(z, y, x) for x in range(reg[2].start + 3, reg[2].stop - 3, 2)]
    before = session.read("output", reg).copy()
    drag(viewer, qtbot, layer, [tuple(np.subtract(v, origin)) for v in stroke])
    assert session.steps[-1].op["op"] == "edit"
    after = session.read("output", reg)
    changed = after != before
    assert changed.any() and (after[changed] == len(session.objects)).all()
    assert {int(v) for v in np.argwhere(changed)[:, 0]} == {z - reg[0].start}
    np.testing.assert_array_equal(layer.data, after)  # the layer shows the output's crop
    where = np.argwhere(changed) + origin  # in the volume: along the stroke's row
    assert np.abs(where[:, 1] - y).max() <= 2
    assert stroke[0][2] - 2 <= where[:, 2].min() and where[:, 2].max() <= stroke[-1][2] + 2

    # U undoes the stroke exactly; a second stroke is kept
    viewer.layers.selection.active = view.layers["a"]
    press(viewer, "U")
    np.testing.assert_array_equal(session.read("output", reg), before)
    np.testing.assert_array_equal(layer.data, before)
    viewer.layers.selection.active = layer
    press(viewer, "P")
    drag(viewer, qtbot, layer, [tuple(np.subtract(v, origin)) for v in stroke[:6]])
    assert session.steps[-1].op["op"] == "edit"

    # Metrics tab: A vs B from the review's table; curated vs A/B said not computed
    widget.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: "A vs B" in widget.metrics.comparisons, timeout=30_000)
    assert widget.metrics.note.text() == LARGER_THAN_MEMORY
    assert "curated vs A" not in widget.metrics.comparisons
    widget.tabs.setCurrentIndex(0)

    # colour by disagreement (from the review's table): the crops keep their colours' ids
    viewer.layers.selection.active = view.layers["a"]
    press(viewer, "D")
    qtbot.waitUntil(lambda: view.disagreement, timeout=30_000)
    press(viewer, "Right")
    _assert_crops(view, volumes)
    press(viewer, "D")
    assert not view.disagreement

    # the screenshot (looked at: A | B | curated crops, the stroke on the curated panel)
    viewer.layers.selection.active = view.layers["a"]
    SCREENSHOTS.mkdir(exist_ok=True)
    qtbot.wait(200)
    shot = SCREENSHOTS / "lazy_review_3d.png"
    viewer.screenshot(str(shot), canvas_only=False, flash=False)
    assert shot.stat().st_size > 10_000

    # Q: saved; the OME-Zarr read back with our reader equals the journal replayed in memory
    press(viewer, "Q")
    assert widget.session is None
    ops = _ops(output)
    assert [op["op"] for op in ops] == ["decide", "decide", "pick", "edit", "undo", "edit"]
    reference = Session.from_masks(a, b)
    reference.replay(ops)
    (data, meta, kind), *_ = get_reader(str(output))(str(output))
    saved = np.asarray(data[0] if isinstance(data, list) else data)
    assert kind == "labels" and saved.shape == SHAPE
    np.testing.assert_array_equal(saved, relabel_sequential(reference.output))
    ids = np.unique(saved[saved > 0])
    np.testing.assert_array_equal(ids, np.arange(1, ids.size + 1))
    # the result layer is the saved store, lazily
    result = next(layer for layer in viewer.layers if layer.name.startswith("curated: "))
    assert not isinstance(result.data, np.ndarray)
    np.testing.assert_array_equal(np.asarray(result.data), saved)


def test_the_next_groups_crops_are_read_ahead_and_moving_there_reads_no_chunk(
        lazy_review, qtbot):
    """While a group shows, the crops of the next ones are read in the background: Right
    and a decision then find every chunk they show in memory (nothing read on the GUI
    thread); Q stops the reading ahead."""
    viewer, widget, volumes, out_dir, _ = lazy_review
    session, view = widget.session, widget.view
    stores = {name: session._out if name == "output" else session._inputs[name]
              for name in ("A", "B", "output")}
    missed = []
    for name, store in stores.items():
        load = store._load

        def counted(key, *, name=name, store=store, load=load):
            if key not in store._cache:
                missed.append((name, key))
            return load(key)

        store._load = counted
    prefetcher = view.crops.prefetcher
    viewer.layers.selection.active = view.layers["a"]
    for key in ("Right", "Right", "1", "Right", "2", "Right"):
        assert prefetcher.idle(timeout=10)
        missed.clear()
        press(viewer, key)
        assert missed == [], key
        _assert_crops(view, volumes)
    assert prefetcher.done >= 6
    press(viewer, "Q")
    assert widget.session is None
    assert prefetcher._thread is None or not prefetcher._thread.is_alive()


def test_a_damaged_chunk_of_the_image_is_one_red_line_and_the_review_goes_on(
        lazy_review, qtbot, tmp_path):
    """The image is read crop by crop as groups are shown: a chunk that cannot be decoded
    is one red line naming the store and the chunk; the panels keep the group they showed,
    the keys act on it, and the review goes on (a decision, Q)."""
    viewer, widget, volumes, out_dir, _ = lazy_review
    session, view = widget.session, widget.view
    for chunk in (tmp_path / "image.zarr" / "c").rglob("*"):
        if chunk.is_file():
            chunk.write_bytes(chunk.read_bytes()[:5])  # truncated: zstd cannot decode it
    shown, region = session.current.index, _region(view)
    viewer.layers.selection.active = view.layers["a"]
    press(viewer, "Right")
    message = widget.message.text()
    assert widget.message.property("error") and "\n" not in message
    assert message.startswith(f"{tmp_path / 'image.zarr'}: chunk c/"), message
    assert "cannot be read (" in message and "restore the store" in message
    assert _region(view) == region and view.group.index == shown  # the layers as they were
    assert session.current.index == shown  # what the keys act on is what is shown
    press(viewer, "1")
    assert session.choice_of(shown) == "A"
    assert widget.message.property("error") and "image.zarr" in widget.message.text()
    press(viewer, "Q")
    assert widget.session is None
    ops = _ops(out_dir / "a.zarr")
    assert [(op["op"], op["group"], op["choice"]) for op in ops] == [("decide", shown, "A")]

def test_a_damaged_chunk_of_a_mask_refuses_the_review_in_one_red_line(
        make_napari_viewer, qtbot, tmp_path):
    """The overlap table reads every chunk of A and B: one that cannot be decoded stops the
    start with one line naming the store and the chunk, and no review (no journal)."""
    a, b, _ = _masks()
    for name, data in (("a.zarr", a), ("b.zarr", b)):
        _write(tmp_path / name, data)
    viewer = make_napari_viewer()
    widget = MaskCompareWidget(viewer)
    layers = [_open_lazily(viewer, tmp_path / name) for name in ("a.zarr", "b.zarr")]
    chunk = tmp_path / "b.zarr" / "c" / "1" / "2" / "3"
    chunk.write_bytes(chunk.read_bytes()[:7])
    widget.set_layers(mask_a=layers[0], mask_b=layers[1])
    widget.set_out_dir(tmp_path / "out")
    widget.start()
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    assert widget.session is None
    assert widget.message.property("error"), widget.message.text()
    assert widget.message.text().startswith(f"{tmp_path / 'b.zarr'}: chunk c/1/2/3 cannot be "
                                            "read (")
    assert not any((tmp_path / "out").glob("*.journal.jsonl"))

def test_the_prefetcher_reads_the_latest_request_in_order_and_stops_when_closed():
    """Regions in the order asked, A, B and the output of each; a newer request drops the
    rest of the older one; the budget bounds the bytes of a request; closed, it is idle."""
    import threading

    from napari_mask_compare._qt._crops import Prefetcher

    calls, gate = [], threading.Event()

    def read(name, region, *, budget):
        gate.wait(5)
        calls.append((name, region, budget))
        return 40

    prefetcher = Prefetcher(read, budget=100)
    prefetcher.request(["first", "dropped"])
    prefetcher.request(["r1", "r2", "r3"])  # the first may have begun: it stops there
    gate.set()
    assert prefetcher.idle(timeout=5)
    latest = [call for call in calls if call[1] != "first"]
    assert ("A", "dropped", 60) not in calls and calls[-len(latest):] == latest
    assert latest == [("A", "r1", 100), ("B", "r1", 100), ("output", "r1", 100),
                      ("A", "r2", 60), ("B", "r2", 60), ("output", "r2", 60),
                      ("A", "r3", 20), ("B", "r3", 20), ("output", "r3", 20)]
    prefetcher.close()
    prefetcher.request(["after"])
    assert prefetcher.idle(timeout=1) and all(call[1] != "after" for call in calls)


def test_folder_mode_takes_zarr_stores_named_directly(make_napari_viewer, qtbot, tmp_path):
    """The folder fields accept a .zarr store each: one pair, reviewed lazily into .zarr."""
    a, b, _ = _masks(1)
    _write(tmp_path / "cells.zarr", a)
    _write(tmp_path / "pred.zarr", b)
    viewer = make_napari_viewer(show=True)
    widget = MaskCompareWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Mask compare", area="right")
    widget.set_folders(mask_a_dir=tmp_path / "cells.zarr", mask_b_dir=tmp_path / "pred.zarr")
    assert "1 pair of stores" in widget.message.text()
    widget.set_out_dir(tmp_path / "out")
    start(widget, qtbot)
    assert widget.session.chunked
    assert widget._review.output == tmp_path / "out" / "cells.zarr"
    assert widget.view.layers["a"].data.shape != SHAPE
    press(viewer, "Q")
    assert (tmp_path / "out" / "cells.zarr" / "labels" / "curated").is_dir()
