"""What a review tells its listeners (one Change each), moves and view settings, saved ids."""

import json

import numpy as np
import pytest
import tifffile

from napari_mask_compare._text import QUEUE_DECIDED
from napari_mask_compare.journal import journal_path
from napari_mask_compare.review import Review
from napari_mask_compare.view_settings import (
    ViewSettings,
    read_view_settings,
    settings_path,
    write_view_settings,
)


def square(y0, y1, x0, x1):
    return (slice(y0, y1), slice(x0, x1))


def read_ops(output):
    return [json.loads(line) for line in journal_path(output).read_text().splitlines()[1:]]


def opened(every_kind_2d, tmp_path, **kwargs):
    """A review of every kind of group, and the list its listener fills."""
    review = Review.open(*every_kind_2d, output=tmp_path / "o.tif", **kwargs)
    told = []
    review.add_listener(told.append)
    return review, told


# ----------------------------------------------------------------------------- actions


def test_a_decision_says_where_the_review_moved_and_what_to_redraw(every_kind_2d, tmp_path):
    review, told = opened(every_kind_2d, tmp_path)
    with review:
        session = review.session
        first = session.current
        change = review.decide("A")
        assert told == [change]  # one change per action, the one returned
        assert change.op["op"] == "decide" and change.op["group"] == first.index
        assert change.regions == (first.region,)
        assert change.decided and change.moved and change.current == session.current.index
        assert change.current != first.index and change.message == ""
        assert change.save_error is None and not change.view


def test_a_pick_and_an_edit_leave_the_reviewer_on_the_group(every_kind_2d, tmp_path):
    review, told = opened(every_kind_2d, tmp_path)
    with review:
        group = review.session.current
        pick = review.pick("B", group.ids_b[0])
        edit = review.edit([(square(0, 2, 30, 33), None, 99)])
        for change in (pick, edit):
            assert change.decided and not change.moved and change.current == group.index
        assert pick.regions == (group.region,)
        assert edit.regions == (square(0, 2, 30, 33),)
        undo = review.undo()  # the edit: the camera stays
        assert undo.undone["op"] == "edit" and not undo.moved
        assert undo.regions == edit.regions and undo.current == group.index
        assert told == [pick, edit, undo]


def test_undoing_a_decision_goes_back_to_its_group(every_kind_2d, tmp_path):
    review, _ = opened(every_kind_2d, tmp_path)
    with review:
        first = review.session.current.index
        review.decide("B")
        change = review.undo()
        assert change.moved and change.current == first and change.undone["choice"] == "B"
        assert change.decided and change.message == ""


def test_the_last_decision_of_the_queue_says_nothing_is_left(every_kind_2d, tmp_path):
    review, _ = opened(every_kind_2d, tmp_path)
    with review:
        review.set_kinds(["match"])
        change = review.decide("N")
        assert change.message == QUEUE_DECIDED and not change.moved
        assert review.session.choice_of(change.current) == "N"


def test_a_refused_action_or_move_tells_nothing(every_kind_2d, tmp_path):
    review, told = opened(every_kind_2d, tmp_path)
    with review:
        with pytest.raises(ValueError, match="nothing to undo"):
            review.undo()
        review.set_kinds(["match"])
        del told[:]
        other = next(g.index for g in review.session.groups if g.kind == "split")
        with pytest.raises(ValueError, match="not in the queue"):
            review.go_to(other)
        assert told == []
    with pytest.raises(ValueError, match="closed"):
        review.next()


def test_a_failed_save_is_in_the_next_change(every_kind_2d, tmp_path, monkeypatch):
    review, _ = opened(every_kind_2d, tmp_path)
    monkeypatch.setattr(review._saver, "error", OSError(28, "No space left on device"))
    change = review.decide("A")
    assert isinstance(change.save_error, OSError)
    monkeypatch.undo()
    review.close()


# ----------------------------------------------------------------------------- moves, settings


def test_moves_and_settings_are_changes_but_never_journaled_nor_undone(every_kind_2d,
                                                                       tmp_path):
    review, told = opened(every_kind_2d, tmp_path)
    with review:
        session = review.session
        review.decide("A")
        decided = session.log[0].group
        queue = session.queue
        nxt = review.next()
        assert nxt.op == {"op": "next"} and nxt.moved and nxt.regions == ()
        assert not nxt.decided and nxt.message == "" and nxt.current == session.current.index
        assert review.previous().current == queue[queue.index(nxt.current) - 1]
        go = review.go_to(decided)
        assert go.op == {"op": "go_to", "group": decided} and go.current == decided
        assert go.message is None  # a move to a group says nothing: what is shown stays
        order = review.set_order("iou")
        assert order.moved and order.current == decided and session.order == "iou"
        kinds = review.set_kinds(["only_a", "only_b"])
        assert session.groups[kinds.current].kind in ("only_a", "only_b")
        view = review.set_view(overlay=True)
        assert view.view and not view.moved and review.view.overlay
        assert not review.view.disagreement  # left as it was
        assert [c.op["op"] for c in told] == ["decide", "next", "previous", "go_to", "order",
                                              "kinds", "view"]
        assert [op["op"] for op in read_ops(tmp_path / "o.tif")] == ["decide"]
        review.undo()  # the decision, not a move
        assert session.choice_of(decided) is None  # (its kind is not shown: not current)
        assert review.view.overlay and session.order == "iou" and len(session.queue) == 2


def test_settings_and_the_position_are_kept_and_restored(every_kind_2d, tmp_path):
    out = tmp_path / "o.tif"
    with Review.open(*every_kind_2d, output=out) as review:
        review.set_order("iou")
        review.set_kinds(["match", "split", "complex", "only_b"])
        review.set_view(disagreement=True)
        saved = read_view_settings(out)  # written at once
        assert (saved.order, saved.disagreement) == ("iou", True)
        assert saved.kinds == ("match", "split", "complex", "only_b")
        review.decide("A")
        decided = review.session.log[0].group
        review.go_to(decided)  # the reviewer goes back to a decided group, and quits
    with Review.open(*every_kind_2d, output=out) as resumed:
        assert resumed.view == review.view  # order, kinds, view and the group
        assert resumed.session.current.index == decided  # decided: opened there anyway
        assert resumed.session.order == "iou" and "merge" not in resumed.session.kinds


def test_a_position_older_than_the_journal_is_not_used(every_kind_2d, tmp_path):
    """A kill lost the last save of the view file: the first undecided group, as before."""
    out = tmp_path / "o.tif"
    with Review.open(*every_kind_2d, output=out) as review:
        review.go_to(review.session.queue[-1])
    review = Review.open(*every_kind_2d, output=out)
    review.decide("A", group=0)  # one more action, then a kill (no close)
    review._saver.close()
    review._lock.release()
    with Review.open(*every_kind_2d, output=out) as resumed:
        assert resumed.session.current.index == 1  # the first undecided


def test_a_new_review_starts_with_the_settings_given(every_kind_2d, tmp_path):
    given = ViewSettings(order="iou", kinds=("match",), overlay=True, group=4)
    with Review.open(*every_kind_2d, output=tmp_path / "o.tif", view=given) as review:
        assert review.session.order == "iou" and review.session.kinds == {"match"}
        assert review.view.overlay and review.session.current.kind == "match"


def test_an_old_view_file_reads_and_a_foreign_one_is_left_alone(every_kind_2d, tmp_path):
    out = tmp_path / "o.tif"
    path = settings_path(out)
    old = {"napari_mask_compare_view": 1, "order": "iou", "kinds": ["match"],
           "overlay": True, "disagreement": False}  # as written before the position was kept
    path.write_text(json.dumps(old))
    with Review.open(*every_kind_2d, output=out) as review:
        assert review.session.order == "iou" and review.view.overlay
    foreign = b'{"order": "iou", "mine": true}\n'
    path.write_bytes(foreign)
    with Review.open(*every_kind_2d, output=out) as review:
        assert review.session.order == "spatial"  # not read
        review.set_order("iou")
    assert path.read_bytes() == foreign  # not replaced
    assert not write_view_settings(out, ViewSettings())


# ----------------------------------------------------------------------------- saved ids


def test_saved_labels_are_the_saved_tiff_and_their_features_follow(every_kind_2d, tmp_path):
    out = tmp_path / "o.tif"
    with Review.open(*every_kind_2d, output=out) as review:
        session = review.session
        for choice in "ABMN":
            review.decide(choice)
        review.finish()
        mask = session.output[1:5, 1:5] == 1
        review.edit([(square(1, 5, 1, 5), mask, 0)])  # object 1 erased: a gap in the ids
        labels, features = review.saved_labels()
        review.flush()
        assert np.array_equal(labels, tifffile.imread(out))
        assert features["label"] == list(range(1, int(labels.max()) + 1))
        every = session.features()
        for k, label in enumerate(features["label"]):  # each row describes its object
            old = np.unique(session.output[labels == label])
            assert old.size == 1
            assert {key: values[k] for key, values in features.items() if key != "label"} \
                == {key: values[int(old[0]) - 1] for key, values in every.items()
                    if key != "label"}


def test_saved_labels_without_edits_are_the_output_itself(every_kind_2d, tmp_path):
    with Review.open(*every_kind_2d, output=tmp_path / "o.tif") as review:
        review.decide("A")
        labels, features = review.saved_labels()
        assert labels is review.session.output and features == review.session.features()
