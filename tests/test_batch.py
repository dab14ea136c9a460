"""Records of a batch run: a pair is done while its inputs, output and settings are unchanged."""

import json
import os

import pytest

from napari_mask_compare.batch import Records, records_path
from napari_mask_compare.errors import InputError


@pytest.fixture
def pair(tmp_path):
    a, b, out = tmp_path / "a.tif", tmp_path / "b.tif", tmp_path / "out" / "x.tif"
    a.write_bytes(b"A")
    b.write_bytes(b"B")
    out.parent.mkdir()
    out.write_bytes(b"OUT")
    return a, b, out


def test_a_recorded_pair_is_done_on_the_next_run(pair):
    a, b, out = pair
    Records(out.parent, command="merge", settings={"policy": "a"}).add(
        "x", inputs=[a, b], output=out, summary={"objects": 3})
    again = Records(out.parent, command="merge", settings={"policy": "a"})
    assert again.done("x", inputs=[a, b], output=out) == {"objects": 3}
    assert again.done("y", inputs=[a, b], output=out) is None


@pytest.mark.parametrize("change", ["input", "output", "output_gone", "settings"])
def test_any_change_runs_the_pair_again(pair, change):
    a, b, out = pair
    Records(out.parent, command="merge", settings={"policy": "a"}).add(
        "x", inputs=[a, b], output=out, summary={})
    settings = {"policy": "a"}
    if change == "input":
        a.write_bytes(b"A2")
    elif change == "output":
        os.utime(out, ns=(1, 1))
    elif change == "output_gone":
        out.unlink()
    else:
        settings = {"policy": "b"}
    assert Records(out.parent, command="merge", settings=settings).done(
        "x", inputs=[a, b], output=out) is None


def test_a_folder_output_changes_when_a_chunk_is_added(tmp_path):
    store = tmp_path / "out" / "x.zarr"
    (store / "0").mkdir(parents=True)
    records = Records(store.parent, command="merge", settings={})
    records.add("x", inputs=[], output=store, summary={})
    assert records.done("x", inputs=[], output=store) == {}
    (store / "0" / "1").write_bytes(b"chunk")
    assert records.done("x", inputs=[], output=store) is None


def test_a_foreign_file_of_that_name_is_refused_and_kept(tmp_path):
    records = Records(tmp_path, command="merge", settings={})
    records.path("x").parent.mkdir()
    records.path("x").write_text(json.dumps({"mine": True}))
    with pytest.raises(InputError, match="not written by mask-compare"):
        records.check(["w", "x"])
    assert json.loads(records.path("x").read_text()) == {"mine": True}
    assert records.folder == records_path(tmp_path, command="merge")


def test_a_pending_entry_names_the_new_bytes_and_keeps_the_earlier_record(pair, tmp_path):
    """Before an output is renamed into place its digest is recorded (issue 17): a run killed
    after the rename leaves an output the rerun may replace; one killed before, the earlier
    output still recorded as done."""
    a, b, out = pair
    records = Records(out.parent, command="merge", settings={})
    records.add("x", inputs=[a, b], output=out, summary={"objects": 1})
    new = tmp_path / "new.tmp"
    new.write_bytes(b"NEW")
    records.pending("x", outputs={out: new})
    assert records.done("x", inputs=[a, b], output=out) == {"objects": 1}  # killed before
    out.write_bytes(b"NEW")  # killed after the rename: the bytes the entry names
    assert records.done("x", inputs=[a, b], output=out) is None and records.wrote("x", output=out)
    out.write_bytes(b"NEX")  # anything else (same size, changed since) is not taken for ours
    assert not records.wrote("x", output=out)


def test_a_folder_digest_covers_every_file_and_its_name(tmp_path):
    from napari_mask_compare.batch import output_digest

    store = tmp_path / "x.zarr"
    (store / "0").mkdir(parents=True)
    (store / "0" / "0").write_bytes(b"chunk")
    before = output_digest(store)
    (store / "0" / "0").rename(store / "0" / "1")
    renamed = output_digest(store)
    (store / "0" / "1").write_bytes(b"chunK")
    assert len({before, renamed, output_digest(store)}) == 3
