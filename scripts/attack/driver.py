"""A process that drives a review until it is killed (run by :mod:`.kills` and :mod:`.journals`).

    python driver.py A B OUTPUT SEED [--hold]

A and B are ``.npy`` files, or zarr arrays (then OUTPUT is a ``.zarr`` and
the review reads them region by region). Prints ``open`` once the review is
open (``refused <message>`` and exit status 3 when it is not), then acts at
random through :class:`Review` (decide, pick, edit, undo, finish, and moves
that are not actions), and after each action that :meth:`Review.act`
confirmed prints its line: ``<n> <op as JSON>``, ``n`` the action's number in
the journal. With ``--hold`` it only holds the review
open (for the test of two writers).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def open_masks(a: str, b: str):
    """The two masks and the ``inputs`` of Review.open (paths of chunked inputs)."""
    if a.endswith(".npy"):
        return np.load(a), np.load(b), None
    import zarr

    return (zarr.open_array(a, mode="r"), zarr.open_array(b, mode="r"),
            {"mask_a": a, "mask_b": b})


def act_at_random(review, rng: np.random.Generator) -> bool:
    """One random action; False when the review refused it (nothing changed) or it was a move."""
    session = review.session
    kind = rng.choice(["decide"] * 6 + ["pick"] * 2 + ["edit"] * 2 + ["undo"] * 2
                      + ["move", "finish"])
    group = session.current
    try:
        if kind == "move":
            session.next() if rng.integers(0, 2) else session.previous()
            return False
        if kind == "decide":
            review.decide(str(rng.choice(list("ABMN"))))
        elif kind == "pick" and group is not None:
            side = "A" if group.ids_a and (not group.ids_b or rng.integers(0, 2)) else "B"
            ids = group.ids_a if side == "A" else group.ids_b
            review.pick(side, int(ids[int(rng.integers(0, len(ids)))]))
        elif kind == "edit":
            review.edit([_stroke(session.output.shape, rng, top=len(session.objects) + 2)])
        elif kind == "undo":
            review.undo()
        elif kind == "finish" and rng.integers(0, 4) == 0:
            review.finish()
        else:
            return False
    except ValueError:  # not possible now (nothing to undo, decided): nothing changed
        return False
    return True


def _stroke(shape, rng, *, top: int):
    """A box of the output painted with an id (0 erases, beyond ``top`` is a new object)."""
    region = []
    for n in shape:
        length = int(rng.integers(1, max(2, n // 8)))
        start = int(rng.integers(0, n - length + 1))
        region.append(slice(start, start + length))
    mask = rng.random([s.stop - s.start for s in region]) < 0.6 if rng.integers(0, 2) else None
    return tuple(region), mask, int(rng.integers(0, top + 1))


def main(argv) -> None:
    from napari_mask_compare import InputError
    from napari_mask_compare.review import Review

    a_path, b_path, output, seed = argv[:4]
    a, b, inputs = open_masks(a_path, b_path)
    try:
        review = Review.open(a, b, output=output, inputs=inputs)
    except InputError as err:  # held by another process: say so, as the widget would
        print(f"refused {err}", flush=True)
        sys.exit(3)
    print("open", flush=True)
    if "--hold" in argv:
        while True:
            time.sleep(60)
    rng = np.random.default_rng(int(seed))
    while True:
        if act_at_random(review, rng):
            ops = review.journal.ops
            print(f"{len(ops)} {json.dumps(ops[-1])}", flush=True)
        time.sleep(float(rng.random()) * 0.004)


if __name__ == "__main__":
    main(sys.argv[1:])
