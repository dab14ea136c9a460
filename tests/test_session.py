import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_mask_compare.session import Session


def group_of(session, kind):
    return next(g for g in session.groups if g.kind == kind)


def test_decisions_on_every_kind(every_kind_2d):
    a, b = every_kind_2d
    s = Session.from_masks(a, b)
    choices = {"match": "B", "split": "A", "merge": "M", "complex": "N"}
    for kind, choice in choices.items():
        s.decide(choice, group=group_of(s, kind).index)
    out = s.output
    # B of the match: exactly B 11's voxels
    assert set(np.unique(out[b == 11])) == {1} and np.count_nonzero(out == 1) == (b == 11).sum()
    # A of the split: A 2 as one object
    assert np.array_equal(out == 2, a == 2)
    # M of the merge: union of A 3, A 4, B 14 as one object
    assert np.array_equal(out == 3, np.isin(a, [3, 4]) | (b == 14))
    # N of the complex: nothing of it
    assert not out[np.isin(a, [5, 6]) | np.isin(b, [15, 16])].any()
    assert s.summary() == {"A": 1, "B": 1, "M": 1, "N": 1, "Auto": 0, "P": 0, "picks": 0,
                           "edits": 0,
                           "contested": 0, "decided": 4, "undecided_paired": 0,
                           "undecided_unpaired": 2, "groups": 6, "objects": 3}
    s.finish()
    assert np.array_equal(out == 4, a == 7) or np.array_equal(out == 5, a == 7)
    assert s.summary()["Auto"] == 2 and s.done
    assert sorted(np.unique(out)) == list(range(6))
    features = s.features()
    assert features["label"] == [1, 2, 3, 4, 5]
    assert features["source"] == ["B", "A", "M", "Auto", "Auto"]
    assert features["from"][2] == "A3 A4 B14"


def test_no_silent_overwrite_and_contested_count():
    a = np.array([[1, 1, 1, 1, 0, 0]], dtype=np.uint8)
    b = np.array([[0, 0, 0, 2, 2, 2]], dtype=np.uint8)  # IoU 1/6 < threshold 0.2
    s = Session.from_masks(a, b, iou_threshold=0.2)
    s.finish()
    assert s.output.tolist() == [[1, 1, 1, 1, 2, 2]]
    assert s.summary()["contested"] == 1 and s.objects[1].contested == 1


def test_fully_contested_object_gets_no_id():
    a = np.array([[1, 1, 1, 1]], dtype=np.uint8)
    b = np.array([[0, 2, 0, 0]], dtype=np.uint8)   # inside A 1, IoU 1/4 < 0.5
    s = Session.from_masks(a, b, iou_threshold=0.5)
    s.finish()
    assert s.output.tolist() == [[1, 1, 1, 1]] and len(s.objects) == 1
    assert s.summary()["contested"] == 1


def test_navigation_and_moving_on(every_kind_2d):
    s = Session.from_masks(*every_kind_2d)
    first = s.current.index
    s.previous()
    assert s.current.index == s.queue[-1]  # wraps around
    s.next()
    assert s.current.index == first
    s.next()
    second = s.current.index
    s.go_to(first)
    s.decide("A")
    assert s.current.index == second  # a decision moves to the next undecided group
    with pytest.raises(ValueError, match="already decided"):
        s.decide("B", group=first)
    with pytest.raises(ValueError, match="choice must be"):
        s.decide("X")


def test_order_and_kind_filter(every_kind_2d):
    s = Session.from_masks(*every_kind_2d)
    s.set_order("iou")
    ious = [s.groups[i].min_iou for i in s.queue]
    assert ious == sorted(ious)
    s.set_kinds({"split", "merge"})
    assert sorted(s.groups[i].kind for i in s.queue) == ["merge", "split"]
    assert s.current.kind in ("split", "merge")
    with pytest.raises(ValueError, match="unknown kinds"):
        s.set_kinds({"pairs"})
    s.set_kinds(set())
    assert s.current is None
    with pytest.raises(ValueError, match="queue is empty"):
        s.decide("A")


def test_undo_restores_output_and_current_group(every_kind_2d):
    s = Session.from_masks(*every_kind_2d)
    s.decide("A")
    before = s.output.copy(), s.summary(), list(s.objects)
    group = s.current.index
    s.decide("M")
    s.undo()
    assert np.array_equal(s.output, before[0]) and s.summary() == before[1]
    assert s.objects == before[2] and s.current.index == group and s.choice_of(group) is None
    s.finish()
    s.undo()  # a finish is undone as one step
    assert np.array_equal(s.output, before[0]) and s.summary()["Auto"] == 0
    assert s.undo() and s.undo() == []


def test_classes_are_carried():
    a = np.array([[1, 1, 0, 2]], dtype=np.uint8)
    b = np.array([[3, 3, 0, 0]], dtype=np.uint8)
    classes_a = np.array([[4, 4, 0, 9]], dtype=np.uint8)
    s = Session.from_masks(a, b, classes_a=classes_a, classes_b=np.full_like(b, 2))
    s.decide("B")
    s.finish()
    assert s.class_map().tolist() == [[2, 2, 0, 9]]
    assert s.features()["class"] == [2, 9]


@pytest.mark.slow
def test_output_widens_to_uint32_beyond_65535_objects():
    a = np.arange(1, 70001, dtype=np.uint32).reshape(70, 1000)
    s = Session.from_masks(a, np.zeros_like(a))
    assert s.output.dtype == np.uint16
    s.finish()
    assert s.output.dtype == np.uint32 and s.output.max() == 70000
    assert len(np.unique(s.output)) == 70000


# ----------------------------------------------------------------------------- properties

labels = st.tuples(st.integers(1, 4), st.integers(2, 9), st.integers(2, 9)).flatmap(
    lambda shape: st.tuples(
        arrays(np.uint16, shape, elements=st.sampled_from([0, 0, 1, 2, 3, 4, 9])),
        arrays(np.uint16, shape, elements=st.sampled_from([0, 0, 5, 6, 7, 1000])),
    )
)
actions = st.lists(st.sampled_from(["A", "B", "M", "N", "undo", "next", "previous", "finish"]),
                   max_size=25)


def run(session, action):
    """Apply one action; return False when the session refuses it."""
    try:
        if action == "undo":
            session.undo()
        elif action == "finish":
            session.finish()
        elif action in ("next", "previous"):
            getattr(session, action)()
        else:
            session.decide(action)
    except ValueError:
        return False
    return True


@given(pair=labels, script=actions, threshold=st.sampled_from([0.1, 0.5]))
def test_invariants_under_random_review(pair, script, threshold):
    a, b = pair
    s = Session.from_masks(a, b, iou_threshold=threshold)
    history = [s.output.copy()]
    ops = []
    apply = s.apply

    def recording_apply(op, **kwargs):  # what a journal would record
        ops.append(op)
        return apply(op, **kwargs)

    s.apply = recording_apply
    for action in script:
        before = s.output.copy()
        n_log = len(s.log)
        if not run(s, action):
            continue
        if action == "undo":
            if n_log:
                history.pop()
            assert np.array_equal(s.output, history[-1])  # undo restores exactly
        elif len(s.log) > n_log:
            owned = before != 0
            assert np.array_equal(s.output[owned], before[owned])  # no accepted voxel changes
            history.append(s.output.copy())
        # output ids are 1..n
        ids = np.unique(s.output[s.output > 0])
        assert np.array_equal(ids, np.arange(1, len(s.objects) + 1))
    # every kept input object is in the output under its own id, but for contested voxels
    for obj in s.objects:
        for side, label in obj.source_ids:
            voxels = s.output[(a if side == "A" else b) == label]
            assert np.all((voxels == obj.id) | (voxels < obj.id) & (voxels > 0))
    # decided objects that are not in the output were skipped or fully contested
    kept = {src for o in s.objects for src in o.source_ids}
    for d in s.log:
        g = s.groups[d.group]
        wanted = {"A": [("A", i) for i in g.ids_a], "B": [("B", i) for i in g.ids_b],
                  "M": [("A", i) for i in g.ids_a] + [("B", i) for i in g.ids_b],
                  "Auto": [("A", i) for i in g.ids_a] + [("B", i) for i in g.ids_b],
                  "N": []}[d.choice]
        for side, label in wanted:
            if (side, label) not in kept:
                mask = (a if side == "A" else b) == label
                assert np.all(s.output[mask] > 0)  # lost only to earlier owners
    # replaying the recorded operations reproduces the output byte for byte
    replayed = Session.from_masks(a, b, iou_threshold=threshold)
    replayed.replay(ops)
    assert replayed.output.tobytes() == s.output.tobytes()
    assert replayed.objects == s.objects
