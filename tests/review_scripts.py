"""Scripts of actions, moves and edits for a Review, drawn by hypothesis, and how to take one
step of them (test_review_properties, test_review_chunked)."""

import json

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_mask_compare.journal import journal_path


def read_ops(output):
    lines = journal_path(output).read_text().splitlines()
    return [json.loads(line) for line in lines[1:]]


def square(y0, y1, x0, x1):
    return (slice(y0, y1), slice(x0, x1))


masks = st.tuples(st.integers(1, 3), st.integers(2, 8), st.integers(2, 8)).flatmap(
    lambda shape: st.tuples(
        arrays(np.uint16, shape, elements=st.sampled_from([0, 0, 1, 2, 3, 9])),
        arrays(np.uint16, shape, elements=st.sampled_from([0, 0, 5, 6, 1000])),
    )
)
edits = st.tuples(st.just("edit"), st.integers(0, 7), st.integers(0, 7), st.integers(1, 3),
                  st.integers(0, 12))
picks = st.tuples(st.just("pick"), st.sampled_from(["A", "B"]), st.integers(0, 3))
#: Moves and settings (not journaled) -> the ``op`` of their change.
MOVES = {"next": "next", "previous": "previous", "iou": "order", "spatial": "order",
         "no matches": "kinds", "all kinds": "kinds"}
ACTIONS = ["A", "B", "M", "N", "undo", "finish", "rule"]
steps = st.lists(st.one_of(st.sampled_from([*ACTIONS, *MOVES]), edits, picks), max_size=20)
with_kills = st.lists(st.one_of(st.sampled_from([*ACTIONS, *MOVES, "crash", "torn crash"]),
                                edits, picks), max_size=20)


def act(review, step):
    """One step through the Review's API: its change, or None when it was refused (and then
    nothing changed)."""
    session = review.session
    steps = {
        "undo": review.undo, "finish": review.finish, "next": review.next,
        "previous": review.previous, "iou": lambda: review.set_order("iou"),
        "spatial": lambda: review.set_order("spatial"),
        "no matches": lambda: review.set_kinds(["split", "merge", "complex", "only_a",
                                                "only_b"]),
        "all kinds": lambda: review.set_kinds(None),
        # every other group of the queue kept B, in one action
        "rule": lambda: review.bulk({"B": session.queue[::2]}, rule="every other: b"),
    }
    try:
        if isinstance(step, tuple) and step[0] == "pick":
            _, side, k = step
            group = session.current
            ids = (group.ids_a if side == "A" else group.ids_b) if group else ()
            return review.pick(side, ids[k % len(ids)] if ids else 1)
        if isinstance(step, tuple):
            _, y, x, size, value = step
            shape = session.output.shape
            y, x = min(y, shape[-2] - 1), min(x, shape[-1] - 1)
            region = (slice(0, shape[0]),) * (len(shape) == 3) + square(
                y, min(y + size, shape[-2]), x, min(x + size, shape[-1]))
            return review.edit([(region, None, value)])
        return steps[step]() if step in steps else review.decide(step)
    except ValueError:
        return None
