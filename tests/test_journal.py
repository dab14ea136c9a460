"""The journal's version 2 (sources, axes, options, rules in one line) beside version 1.

A version-1 journal written by the code before version 2 (``tests/data/journal_v1``)
must keep resuming to the very output that code saved, keep its version while
its actions fit it, and become version 2, every line kept, for the first one
that does not (a rule).
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import given
from hypothesis import strategies as st

from napari_mask_compare import journal
from napari_mask_compare._text import QUEUE_DECIDED
from napari_mask_compare.errors import InputError
from napari_mask_compare.journal import (
    Journal,
    bulk_op,
    journal_path,
    pack_groups,
    unpack_groups,
)
from napari_mask_compare.review import Review
from napari_mask_compare.session import Session

V1 = Path(__file__).parent / "data" / "journal_v1"
INPUTS = {"mask_a": "a.tif", "mask_b": "b.tif"}


def lines(output) -> list[str]:
    return journal_path(output).read_text().splitlines()


@pytest.fixture
def v1_review(tmp_path):
    """The output path of a version-1 review of ``every_kind_2d``, its journal in place."""
    out = tmp_path / "curated.tif"
    shutil.copyfile(V1 / "curated.journal.jsonl", journal_path(out))
    return out


# ----------------------------------------------------------------------------- version 1


def test_a_version_1_review_resumes_to_the_output_it_saved(every_kind_2d, v1_review):
    with Review.open(*every_kind_2d, output=v1_review, inputs=INPUTS) as review:
        assert review.journal.version == 1 and review.resumed
        summary = review.session.summary()
        assert (summary["A"], summary["B"], summary["N"], summary["P"], summary["edits"]) \
            == (1, 1, 1, 1, 2)
        review.flush()
        assert np.array_equal(tifffile.imread(v1_review), tifffile.imread(V1 / "curated.tif"))


def test_a_version_1_journal_stays_version_1_while_its_actions_fit(every_kind_2d, v1_review):
    before = lines(v1_review)
    with Review.open(*every_kind_2d, output=v1_review, inputs=INPUTS) as review:
        review.decide("A")   # the only-A group, now current
        review.pick("B", 17)  # the only-B group
        review.undo()
        review.edit([((slice(10, 12), slice(30, 32)), None, 50)])
    after = lines(v1_review)
    assert after[:len(before)] == before  # header and lines untouched
    added = [json.loads(line) for line in after[len(before):]]
    assert [op["op"] for op in added] == ["decide", "pick", "undo", "edit"]
    assert added[0]["ids"] == [[7], []]  # as version 1 writes them: an older install reads it
    with Review.open(*every_kind_2d, output=v1_review, inputs=INPUTS) as resumed:
        assert resumed.session.output.tobytes() == review.session.output.tobytes()


def test_a_rule_makes_a_version_1_journal_version_2_keeping_every_line(every_kind_2d,
                                                                         v1_review):
    old_header, *old_ops = lines(v1_review)
    with Review.open(*every_kind_2d, output=v1_review, inputs=INPUTS) as review:
        change = review.bulk({"A": [4], "B": [5]}, rule="unpaired: keep")
        assert change.op["op"] == "bulk" and review.journal.version == 2
        state = review.session.output.copy()
    header, *ops = lines(v1_review)
    assert ops[:-1] == old_ops and json.loads(ops[-1])["op"] == "bulk"
    header, old_header = json.loads(header), json.loads(old_header)
    assert header["version"] == 2 and header["upgraded_from"] == 1
    assert header["created"] == old_header["created"] and header["axes"] == "yx"
    assert header["params"] == old_header["params"]
    assert header["sources"] == [
        {"key": "A", **old_header["inputs"]["mask_a"]},
        {"key": "B", **old_header["inputs"]["mask_b"]}]
    with Review.open(*every_kind_2d, output=v1_review, inputs=INPUTS) as resumed:
        assert np.array_equal(resumed.session.output, state)
        resumed.undo()  # the rule, as one action
        assert resumed.session.choice_of(4) is None and resumed.session.choice_of(5) is None
        assert resumed.session.choice_of(3) == "N"


@pytest.mark.parametrize("header", ['"inputs": 5', '"inputs": []', '"inputs": {"mask_a": "x"}'])
def test_a_damaged_version_1_header_is_refused(every_kind_2d, v1_review, header):
    path = journal_path(v1_review)
    first, rest = path.read_text().split("\n", 1)
    key, value = header.split(":", 1)
    path.write_text(json.dumps({**json.loads(first), key.strip('"'): json.loads(value)})
                    + "\n" + rest)
    before = path.read_bytes()
    with pytest.raises(InputError, match="not a napari-mask-compare journal"):
        Review.open(*every_kind_2d, output=v1_review, inputs=INPUTS)
    assert path.read_bytes() == before


def test_a_rule_line_in_a_version_1_journal_is_damage(every_kind_2d, v1_review):
    path = journal_path(v1_review)
    path.write_text(path.read_text() + json.dumps(bulk_op({"A": [4]}, rule="x")) + "\n")
    with pytest.raises(InputError, match="line 10 is damaged .*version-1 journal holds no"):
        Review.open(*every_kind_2d, output=v1_review, inputs=INPUTS)


# ----------------------------------------------------------------------------- version 2


def test_a_new_review_writes_version_2(every_kind_2d, tmp_path):
    a, b = every_kind_2d
    for shape, axes in ((a.shape, "yx"), ((2, *a.shape), "zyx")):
        out = tmp_path / f"{axes}.tif"
        masks = [np.broadcast_to(m, shape).copy() for m in (a, b)]
        with Review.open(*masks, output=out, inputs=INPUTS, iou_threshold=0.3) as review:
            review.decide("A")
        header, decide = (json.loads(line) for line in lines(out))
        assert header["version"] == 2 and header["axes"] == axes
        assert [(s["key"], s["name"]) for s in header["sources"]] == [("A", "a.tif"),
                                                                      ("B", "b.tif")]
        assert [s["fingerprint"] for s in header["sources"]] == [
            journal.fingerprint(m) for m in masks]
        assert header["params"] == {"iou_threshold": 0.3}
        assert header["options"] == {"blind": False}
        assert decide["ids"] == {"A": [1], "B": [11]}  # keyed by source


def test_masks_read_with_other_axes_are_refused(every_kind_2d, tmp_path):
    out = tmp_path / "o.tif"
    Review.open(*every_kind_2d, output=out).close()
    path = journal_path(out)
    first, rest = path.read_text().split("\n", 1)
    path.write_text(json.dumps({**json.loads(first), "axes": "tyx"}) + "\n" + rest)
    with pytest.raises(InputError, match="read the masks as tyx, not yx"):
        Review.open(*every_kind_2d, output=out)


def test_a_rule_is_one_action_and_never_touches_a_decided_group(every_kind_2d, tmp_path):
    out = tmp_path / "o.tif"
    review = Review.open(*every_kind_2d, output=out)
    session = review.session
    review.decide("B")  # group 0
    after_one = session.output.copy()
    everything = list(range(len(session.groups)))
    change = review.bulk({"A": everything}, rule="all: a")
    assert session.choice_of(0) == "B"  # left as it was
    assert all(session.choice_of(g) == "A" for g in everything[1:])
    assert change.op["n"] == len(everything) - 1 and change.decided
    assert list(change.regions) == [session.groups[g].region for g in everything[1:]]
    assert change.current == 1 and not change.moved  # nothing undecided to move on to
    assert change.message == QUEUE_DECIDED
    assert json.loads(lines(out)[-1])["rule"] == "all: a"
    with pytest.raises(ValueError, match="decides no undecided group"):
        review.bulk({"N": everything}, rule="all: skip")
    state = session.output.copy()
    review._saver.close()  # killed: no summary
    review._lock.release()
    with Review.open(*every_kind_2d, output=out) as resumed:
        assert np.array_equal(resumed.session.output, state)
        resumed.undo()  # one U takes the whole rule back
        assert np.array_equal(resumed.session.output, after_one)
        assert resumed.session.summary()["decided"] == 1


def test_a_rule_equals_its_decisions_taken_one_by_one(every_kind_2d):
    """Same output, ids and counts as deciding its groups one at a time in group order."""
    groups = {"A": [3, 1], "M": [2], "N": [5]}
    ruled = Session.from_masks(*every_kind_2d)
    ruled.apply(ruled.prepare(bulk_op(groups, rule="r")))
    one_by_one = Session.from_masks(*every_kind_2d)
    for group, choice in sorted((g, c) for c, gs in groups.items() for g in gs):
        one_by_one.decide(choice, group=group)
    assert np.array_equal(ruled.output, one_by_one.output)
    assert ruled.objects == one_by_one.objects
    assert ruled.summary() == one_by_one.summary() and len(ruled.steps) == 1


@pytest.mark.parametrize(("change", "words"), [
    ({"n": 5}, "must count its 2 groups"),
    ({"groups": {"A": pack_groups([1]), "B": pack_groups([1])}}, "a group twice"),
    ({"groups": {"A": "!!"}}, "damaged"),
    ({"groups": {"Q": pack_groups([1])}}, "must map choices"),
    ({"rule": None}, "rule"),
])
def test_damaged_rule_lines_are_refused_by_number(every_kind_2d, tmp_path, change, words):
    out = tmp_path / "o.tif"
    Review.open(*every_kind_2d, output=out).close()
    path = journal_path(out)
    line = {**bulk_op({"A": [1], "B": [2]}, rule="r"), **change}
    path.write_text(path.read_text() + json.dumps(line) + "\n")
    with pytest.raises(InputError, match=f"line 2 is damaged .*{words}"):
        Review.open(*every_kind_2d, output=out)


def test_journal_knows_its_sources_whatever_its_version(every_kind_2d, v1_review, tmp_path):
    old = Journal.read(journal_path(v1_review))
    out = tmp_path / "new.tif"
    Review.open(*every_kind_2d, output=out, inputs=INPUTS).close()
    new = Journal.read(journal_path(out))
    assert old.sources == new.sources  # the same masks, the same names
    assert (old.axes, new.axes) == (None, "yx")
    assert old.options == new.options == {"blind": False}
    assert old.ops[0]["ids"] == {"A": [1], "B": [11]}  # read in memory form


@given(st.sets(st.integers(0, 2**32 - 1), max_size=200))
def test_packed_groups_come_back_sorted(groups):
    assert unpack_groups(pack_groups(list(groups))).tolist() == sorted(groups)
