"""Any sequence of actions, moves and kills on a Review: the journal replayed equals it, and
each change tells its listeners exactly what changed."""


import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_mask_compare.review import Review
from napari_mask_compare.session import Session
from review_scripts import MOVES, act, masks, read_ops, steps, with_kills


def _crash(review, *, torn: bool) -> None:
    """Stop as a killed process would: no summary; maybe half a line in the journal."""
    review._saver.close()
    review._lock.release()
    if torn:
        with open(review.journal.path, "ab") as f:
            f.write(b'{"op": "decide", "gr')


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pair=masks, script=with_kills, threshold=st.sampled_from([0.1, 0.5]))
@pytest.mark.slow
def test_any_sequence_of_actions_and_crashes_equals_the_journal_replayed(tmp_path_factory,
                                                                          pair, script,
                                                                          threshold):
    a, b = pair
    out = tmp_path_factory.mktemp("review") / "o.tif"
    review = Review.open(a, b, output=out, iou_threshold=threshold)
    history = [review.session.output.copy()]
    painted = np.zeros(a.shape, bool)
    for step in script:
        if step in ("crash", "torn crash"):
            state = review.session.output.copy()
            _crash(review, torn=step == "torn crash")
            review = Review.open(a, b, output=out, iou_threshold=threshold)
            assert np.array_equal(review.session.output, state)  # resumed exactly
            continue
        before, n_steps = review.session.output.copy(), len(review.session.steps)
        if act(review, step) is None:
            assert np.array_equal(review.session.output, before)
            continue
        if step == "undo":
            history.pop()
            assert np.array_equal(review.session.output, history[-1])  # undo is exact
        elif len(review.session.steps) > n_steps:
            history.append(review.session.output.copy())
            if isinstance(step, tuple):  # an edit, or a pick taken out again
                painted |= review.session.output != before
    review.finish()
    review.close()
    session = review.session
    # the TIFF equals the journal replayed on fresh inputs (ids compacted to 1..n on save)
    replayed = Session.from_masks(a, b, iou_threshold=threshold)
    replayed.replay(read_ops(out))
    assert replayed.output.tobytes() == session.output.tobytes()
    saved = tifffile.imread(out).reshape(session.output.shape)  # a single plane reads as 2D
    assert np.array_equal(saved > 0, session.output > 0)
    ids = np.unique(saved[saved > 0])
    assert np.array_equal(ids, np.arange(1, ids.size + 1))
    # every object of A and B is in the output, or its group was skipped or not chosen,
    # or its voxels belong to an earlier owner or were edited by hand
    summary = session.summary()
    assert summary["undecided_unpaired"] == 0
    assert summary["decided"] + summary["undecided_paired"] == summary["groups"]
    for d in session.log:
        g = session.groups[d.group]
        kept = {"A": [("A", i) for i in g.ids_a], "B": [("B", i) for i in g.ids_b],
                "N": []}.get(d.choice, [("A", i) for i in g.ids_a] + [("B", i) for i in g.ids_b])
        for side, label in kept:
            voxels = ((a if side == "A" else b) == label) & ~painted
            assert np.all(session.output[voxels] > 0)
    for g in session.groups:  # and every picked object that is still picked
        for side, label in session.picks(g.index):
            voxels = ((a if side == "A" else b) == label) & ~painted
            assert np.all(session.output[voxels] > 0)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pair=masks, script=steps)
def test_each_change_says_all_that_changed(tmp_path_factory, pair, script):
    """The output changed only inside the change's regions; its current group is the review's;
    moved when the group changed; only actions are journaled."""
    review = Review.open(*pair, output=tmp_path_factory.mktemp("r") / "o.tif")
    told = []
    review.add_listener(told.append)
    with review:
        session = review.session
        for step in script:
            before, current = session.output.copy(), session.current_index
            n_ops = len(review.journal.ops)
            change = act(review, step)
            if change is None:
                assert np.array_equal(session.output, before)
                continue
            assert told[-1] is change
            assert change.current == session.current_index
            assert change.moved or change.current == current
            outside = np.ones(before.shape, bool)
            for region in change.regions:
                outside[region] = False
            after = session.output
            assert np.array_equal(after[outside], before[outside].astype(after.dtype))
            if step in MOVES:
                assert change.op["op"] == MOVES[step] and change.moved and not change.regions
                assert len(review.journal.ops) == n_ops
            else:
                assert len(review.journal.ops) == n_ops + 1
                assert change.decided or step == "finish"
