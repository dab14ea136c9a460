"""A review session: the queue of groups, decisions, undo and the output labels.

No Qt, no napari, no files: :mod:`.journal` keeps a session on disk and the
widget and the CLI drive it. Decisions are written into the output only where
it is still background (no silent overwrite); output ids are 1..n in decision
order at all times.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .matching import KINDS, Group, overlap_table, review_groups

__all__ = [
    "CHOICES", "ORDERS", "POLICIES", "Change", "Decision", "OutputObject", "Session", "merge",
]

#: Decisions a reviewer can take on a group: keep A, keep B, merge, skip.
CHOICES = ("A", "B", "M", "N")
#: Queue orders: spatial (bounding box start), or lowest IoU first.
ORDERS = ("spatial", "iou")
_AUTO = "Auto"
#: Policies of :func:`merge`: the decision taken on every paired group.
POLICIES = ("a", "b", "union", "larger")


@dataclass(frozen=True)
class OutputObject:
    """Provenance of one output object.

    Attributes
    ----------
    id : int
        Its id in the output (1..n).
    source : str
        "A", "B", "M" (merged) or "Auto" (unpaired, added on finish).
    group : int
        Index of the group it came from.
    iou : float
        Best IoU of that group (0 when unpaired).
    source_ids : tuple of (str, int)
        The input objects it was made of, as ("A" or "B", id).
    contested : int
        Voxels of those inputs that were already owned and kept their owner.
    cls : int or None
        Class of the input object (the largest, for a merge), when masks carry classes.
    """

    id: int
    source: str
    group: int
    iou: float
    source_ids: tuple[tuple[str, int], ...]
    contested: int
    cls: int | None = None


@dataclass(frozen=True)
class Decision:
    """One decision on one group, as it was applied.

    Attributes
    ----------
    group : int
    choice : str
        One of :data:`CHOICES` or "Auto".
    step : int
        Number of the user action it belongs to (a finish decides many groups in one step).
    first_id, stop_id : int
        Output ids ``first_id .. stop_id - 1`` were made by this decision.
    contested : int
        Voxels not written because they were already owned.
    """

    group: int
    choice: str
    step: int
    first_id: int
    stop_id: int
    contested: int


@dataclass(frozen=True)
class Change:
    """What a session action changed: passed to listeners.

    Attributes
    ----------
    op : dict
        The action as the journal records it, e.g. ``{"op": "decide", "group": 3, "choice": "A"}``.
    regions : tuple of tuple of slice
        Regions of the output that may have changed.
    """

    op: dict
    regions: tuple[tuple[slice, ...], ...]


class Session:
    """Review two instance masks group by group and build one curated mask.

    Parameters
    ----------
    a, b : ndarray of int, shape (y, x) or (z, y, x)
        Instance masks, A the reference. Kept by reference, not copied.
        The output (:attr:`output`) is uint16 until an id passes 65,535;
        it is then replaced by a uint32 copy (holders of it must re-read it).
    groups : sequence of Group
        From :func:`.matching.review_groups` on ``a`` and ``b``.
    classes_a, classes_b : ndarray of int, optional
        Per-voxel class of A and of B, same shape; carried to output objects.

    Notes
    -----
    ``lock`` is held while the output changes: a thread that reads the output
    (the autosaver) takes it to see whole decisions only.

    Examples
    --------
    >>> a = np.array([[1, 1, 0, 2]])
    >>> b = np.array([[3, 3, 0, 0]])
    >>> s = Session.from_masks(a, b)
    >>> s.current.kind, s.decide("B").choice
    ('match', 'B')
    >>> _ = s.finish()
    >>> s.summary()["Auto"], s.output.tolist()
    (1, [[1, 1, 0, 2]])
    """

    def __init__(self, a, b, groups: Sequence[Group], *, classes_a=None, classes_b=None):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
        for name, classes in (("classes_a", classes_a), ("classes_b", classes_b)):
            if classes is not None and np.shape(classes) != a.shape:
                raise ValueError(f"{name} has shape {np.shape(classes)}, expected {a.shape}")
        self.a, self.b = a, b
        self.classes = {"A": classes_a, "B": classes_b}
        self.groups = list(groups)
        self.output = np.zeros(a.shape, dtype=np.uint16)
        self.objects: list[OutputObject] = []
        self.log: list[Decision] = []
        self.lock = threading.RLock()
        self._choice_of: dict[int, str] = {}
        self._listeners: list[Callable[[Change], None]] = []
        self._order = "spatial"
        self._kinds: frozenset[str] = frozenset(KINDS)
        self._queue: list[int] = []
        self._position = 0
        self._rebuild_queue()

    @classmethod
    def from_masks(cls, a, b, *, iou_threshold: float = 0.1, classes_a=None, classes_b=None):
        """Pair ``a`` and ``b`` and open a session on the groups."""
        groups = review_groups(overlap_table(a, b), iou_threshold=iou_threshold)
        return cls(a, b, groups, classes_a=classes_a, classes_b=classes_b)

    # ------------------------------------------------------------------ listeners

    def add_listener(self, callback: Callable[[Change], None]) -> None:
        """Call ``callback(change)`` after every action that changes the session."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[Change], None]) -> None:
        self._listeners.remove(callback)

    def _emit(self, op: dict, groups: Iterable[int]) -> None:
        if not self._listeners:
            return
        change = Change(op, tuple(self.groups[g].region for g in groups))
        for callback in list(self._listeners):
            callback(change)

    # ------------------------------------------------------------------ queue

    @property
    def queue(self) -> list[int]:
        """Group indices in review order, filtered by kind."""
        return list(self._queue)

    @property
    def position(self) -> int:
        """Index of the current group in :attr:`queue`."""
        return self._position

    @property
    def current(self) -> Group | None:
        """The group under review, None when the queue is empty."""
        return self.groups[self._queue[self._position]] if self._queue else None

    @property
    def order(self) -> str:
        return self._order

    @property
    def kinds(self) -> frozenset[str]:
        return self._kinds

    def set_order(self, order: str) -> None:
        """Review in ``"spatial"`` order or ``"iou"`` (lowest IoU first)."""
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        self._order = order
        self._rebuild_queue()

    def set_kinds(self, kinds: Iterable[str] | None) -> None:
        """Review only groups of these kinds (all when None)."""
        kinds = frozenset(KINDS if kinds is None else kinds)
        unknown = kinds - set(KINDS)
        if unknown:
            raise ValueError(f"unknown kinds {sorted(unknown)}; kinds are {KINDS}")
        self._kinds = kinds
        self._rebuild_queue()

    def _rebuild_queue(self) -> None:
        current = self.current.index if self._queue else None
        queue = [g.index for g in self.groups if g.kind in self._kinds]
        if self._order == "iou":
            queue.sort(key=lambda i: (self.groups[i].min_iou, i))
        self._queue = queue
        self._position = queue.index(current) if current in queue else 0
        if current not in queue:
            self._move_to_undecided(start=0)

    def next(self) -> Group | None:
        """Move to the next group of the queue without deciding (wraps around)."""
        return self._step(+1)

    def previous(self) -> Group | None:
        """Move to the previous group of the queue without deciding (wraps around)."""
        return self._step(-1)

    def _step(self, delta: int) -> Group | None:
        if self._queue:
            self._position = (self._position + delta) % len(self._queue)
        return self.current

    def go_to(self, group: int) -> Group:
        """Make group index ``group`` current (it must be in the queue)."""
        self._position = self._queue.index(group)
        return self.current

    def _move_to_undecided(self, *, start: int) -> None:
        n = len(self._queue)
        for k in range(n):
            position = (start + k) % n
            if self._queue[position] not in self._choice_of:
                self._position = position
                return

    def choice_of(self, group: int) -> str | None:
        """The decision taken on a group, None while undecided."""
        return self._choice_of.get(group)

    @property
    def done(self) -> bool:
        """True when every group has a decision."""
        return len(self._choice_of) == len(self.groups)

    # ------------------------------------------------------------------ decisions

    def decide(self, choice: str, *, group: int | None = None) -> Decision:
        """Apply ``choice`` to the current group (or to ``group``) and move on.

        Parameters
        ----------
        choice : {"A", "B", "M", "N"}
            Keep A's objects, keep B's, merge all into one object, or skip.
        group : int, optional
            Group index; the current group when omitted.

        Returns
        -------
        Decision

        Raises
        ------
        ValueError
            Unknown choice, empty queue, or a group already decided (undo first).
        """
        if choice not in CHOICES:
            raise ValueError(f"choice must be one of {CHOICES}, got {choice!r}")
        if group is None:
            if self.current is None:
                raise ValueError("no group to decide: the queue is empty")
            group = self.current.index
        if group in self._choice_of:
            raise ValueError(
                f"group {group} is already decided ({self._choice_of[group]}); undo to change it"
            )
        step = self._next_step()
        with self.lock:
            decision = self._apply(group, choice, step)
        if self._queue and self.current is not None and self.current.index == group:
            self._move_to_undecided(start=self._position + 1)
        self._emit({"op": "decide", "group": group, "choice": choice}, [group])
        return decision

    def finish(self) -> list[Decision]:
        """Add the objects of every undecided unpaired group ("Auto"), in one step."""
        step = self._next_step()
        todo = [g.index for g in self.groups if not g.paired and g.index not in self._choice_of]
        with self.lock:
            decisions = [self._apply(g, _AUTO, step) for g in todo]
        self._emit({"op": "finish"}, todo)
        return decisions

    def undo(self) -> list[Decision]:
        """Take back the last action (a decision, or a whole finish).

        The output, the objects and the counts are restored exactly, and the
        undone group becomes current.

        Returns
        -------
        list of Decision
            The decisions taken back, empty when there was nothing to undo.
        """
        if not self.log:
            return []
        step = self.log[-1].step
        undone = []
        with self.lock:
            while self.log and self.log[-1].step == step:
                undone.append(self._revert(self.log.pop()))
        group = undone[-1].group
        if group in self._queue:
            self._position = self._queue.index(group)
        self._emit({"op": "undo"}, [d.group for d in undone])
        return undone

    def _next_step(self) -> int:
        return self.log[-1].step + 1 if self.log else 0

    def _apply(self, group_index: int, choice: str, step: int) -> Decision:
        group = self.groups[group_index]
        first_id = len(self.objects) + 1
        contested = 0
        for source, parts in self._objects_to_keep(group, choice):
            contested += self._write_object(group, source, parts)
        decision = Decision(group_index, choice, step, first_id, len(self.objects) + 1, contested)
        self.log.append(decision)
        self._choice_of[group_index] = choice
        return decision

    @staticmethod
    def _objects_to_keep(group: Group, choice: str):
        """The output objects of a decision, each as (source, ((side, id), ...))."""
        a_parts = [(("A", i),) for i in group.ids_a]
        b_parts = [(("B", i),) for i in group.ids_b]
        if choice == "A":
            return [("A", p) for p in a_parts]
        if choice == "B":
            return [("B", p) for p in b_parts]
        if choice == "M":
            return [("M", tuple(p[0] for p in a_parts + b_parts))]
        if choice == _AUTO:
            return [(_AUTO, p) for p in a_parts + b_parts]
        return []  # N: skip

    def _write_object(self, group: Group, source: str, parts) -> int:
        """Write one output object into background voxels; return its contested voxels."""
        region = group.region
        out = self.output[region]
        mask = np.zeros(out.shape, dtype=bool)
        for side, label in parts:
            mask |= (self.a if side == "A" else self.b)[region] == label
        free = mask & (out == 0)
        n_free = int(np.count_nonzero(free))
        contested = int(np.count_nonzero(mask)) - n_free
        if n_free:
            new_id = len(self.objects) + 1
            if new_id > 0xFFFF and self.output.dtype == np.uint16:
                self.output = self.output.astype(np.uint32)
                out = self.output[region]
            np.copyto(out, new_id, where=free)
            self.objects.append(OutputObject(
                new_id, source, group.index, group.iou, tuple(parts), contested,
                self._class_of(parts, region),
            ))
        return contested

    def _class_of(self, parts, region) -> int | None:
        """Class of the largest input object among ``parts`` (its most frequent class)."""
        best = None
        for side, label in parts:
            classes = self.classes[side]
            if classes is None:
                continue
            source = self.a if side == "A" else self.b
            values = classes[region][source[region] == label]
            if values.size and (best is None or values.size > best[0]):
                best = (values.size, int(np.bincount(values.astype(np.int64)).argmax()))
        return None if best is None else best[1]

    def _revert(self, decision: Decision) -> Decision:
        if decision.stop_id > decision.first_id:
            out = self.output[self.groups[decision.group].region]
            out[(out >= decision.first_id) & (out < decision.stop_id)] = 0
            del self.objects[decision.first_id - 1:]
        del self._choice_of[decision.group]
        return decision

    # ------------------------------------------------------------------ results

    def summary(self) -> dict:
        """Counts of A, B, M, N and Auto decisions, contested voxels, progress.

        Returns
        -------
        dict
            Keys A, B, M, N, Auto, contested, decided, groups, objects.
        """
        counts = Counter(d.choice for d in self.log)
        return {
            **{key: counts.get(key, 0) for key in (*CHOICES, _AUTO)},
            "contested": sum(d.contested for d in self.log),
            "decided": len(self._choice_of),
            "groups": len(self.groups),
            "objects": len(self.objects),
        }

    def features(self) -> dict[str, list]:
        """Per output object: label, source, group, iou, source ids, class; for a Labels layer.

        Row k describes label k + 1; the "label" column says so explicitly.
        """
        return {
            "label": [o.id for o in self.objects],
            "source": [o.source for o in self.objects],
            "group": [o.group for o in self.objects],
            "iou": [round(o.iou, 4) for o in self.objects],
            "from": [" ".join(f"{side}{i}" for side, i in o.source_ids) for o in self.objects],
            "class": [o.cls if o.cls is not None else -1 for o in self.objects],
        }

    def class_map(self) -> np.ndarray | None:
        """Per-voxel class of the output (0 on background), None without classes."""
        if all(c is None for c in self.classes.values()):
            return None
        lut = np.zeros(len(self.objects) + 1, dtype=np.uint16)
        lut[1:] = [max(o.cls or 0, 0) for o in self.objects]
        return lut[self.output]

    def replay(self, ops: Iterable[dict]) -> None:
        """Apply journal operations (``decide``, ``undo``, ``finish``) in order."""
        for op in ops:
            kind = op.get("op")
            if kind == "decide":
                self.decide(op["choice"], group=int(op["group"]))
            elif kind == "undo":
                self.undo()
            elif kind == "finish":
                self.finish()
            else:
                raise ValueError(f"unknown journal operation {op!r}")
        self._move_to_undecided(start=0)


def merge(session: Session, *, policy: str = "a") -> Session:
    """Decide every paired group by one policy, then finish (unpaired objects added).

    Parameters
    ----------
    session : Session
        Decisions go in queue order (spatial by default).
    policy : {"a", "b", "union", "larger"}
        Keep A; keep B; merge each group into one object; keep the side with
        more voxels in the group (A on a tie).

    Returns
    -------
    Session
        The same session, every group decided.

    Examples
    --------
    >>> a = np.array([[1, 1, 1, 0, 2]])
    >>> b = np.array([[3, 3, 4, 4, 0]])
    >>> merge(Session.from_masks(a, b), policy="b").output.tolist()
    [[1, 1, 2, 2, 3]]
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    for index in session.queue:
        group = session.groups[index]
        if group.paired and session.choice_of(index) is None:
            session.decide(_policy_choice(group, policy), group=index)
    session.finish()
    return session


def _policy_choice(group: Group, policy: str) -> str:
    if policy == "larger":
        return "A" if sum(group.sizes_a) >= sum(group.sizes_b) else "B"
    return {"a": "A", "b": "B", "union": "M"}[policy]
