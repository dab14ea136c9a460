"""A review session in memory: the queue of groups, the actions, undo, the output labels.

A ``pick`` toggles one object of a group (A's or B's) into the output, or out
of it again: a group with picks counts as decided ("P").

No Qt, no napari, no files: :class:`.review.Review` keeps a session on disk
(journal first, then :meth:`Session.apply`) and the widget and the CLI drive
that. Every action is one operation dict, as the journal records it
(see :mod:`.journal`): ``decide``, ``pick``, ``undo``, ``finish``, ``edit`` and
``bulk`` (a rule: many groups decided in one step, undone as one).
Decisions write objects only into background voxels of the output (no silent
overwrite); an edit is the user's explicit overwrite. Output ids are given in
action order; an edit that erases an object leaves its id unused until the
output is compacted on save. The arrays are read and written region by region
(:mod:`.regions`); one policy run over every group is
:func:`.merging.decide_by_policy`.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .journal import decode_mask, encode_mask, ids_by_source, unpack_groups
from .labels import labels_dtype, relabel_sequential
from .pairing import KINDS, Group, OverlapTable, overlap_table, review_groups
from .regions import ArrayRegions, ChunkedRegions, regions_of

__all__ = [
    "CHOICES", "EDIT", "ORDERS", "Change", "Decision", "OutputObject", "Session", "Step",
    "edit_op",
]

#: Decisions a reviewer can take on a group: keep A, keep B, the union of its objects
#: as one object (M), skip.
CHOICES = ("A", "B", "M", "N")
#: Queue orders: spatial (bounding box start), or lowest IoU first.
ORDERS = ("spatial", "iou")
_AUTO = "Auto"
#: The choice of a group decided by picking objects.
_PICK = "P"
#: Source of an output object painted by hand.
EDIT = "edit"


@dataclass(frozen=True)
class OutputObject:
    """Provenance of one output object.

    Attributes
    ----------
    id : int
        Its id in the output (1..n).
    source : str
        "A", "B", "M" (the union of a group), "Auto" (unpaired, added on finish) or "edit"
        (painted by hand).
    group : int
        Index of the group it came from (-1 for an edit).
    iou : float
        Best IoU of that group (0 when unpaired).
    source_ids : tuple of (str, int)
        The input objects it was made of, as ("A" or "B", id).
    contested : int
        Voxels of those inputs that were already owned and kept their owner.
    cls : int or None
        Class of the input object (the largest, for a union), when masks carry classes.
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
class Step:
    """One user action as it was applied: what :meth:`Session.undo` takes back.

    Attributes
    ----------
    op : dict
        The operation (as journaled).
    decisions : tuple of Decision
        The groups it decided (one for ``decide``, any number for ``finish``).
    edits : tuple of (region, mask, previous values)
        For an ``edit``: per piece, the voxels set and what they held before.
    first_id, stop_id : int
        Output ids ``first_id .. stop_id - 1`` were made by this step.
    pick : tuple or None
        For a ``pick``: (group, (side, id), output id or None, True when the
        object was added, False when it was taken out again).
    """

    op: dict
    decisions: tuple[Decision, ...] = ()
    edits: tuple = ()
    first_id: int = 0
    stop_id: int = 0
    pick: tuple | None = None


@dataclass(frozen=True)
class Change:
    """What one change of a review did: all a listener needs to show it.

    :meth:`Session.apply` fills what the session knows; :class:`.review.Review`
    adds the words and the save state, and makes one for every move and
    setting too (see :meth:`.review.Review.go_to`).

    Attributes
    ----------
    op : dict
        What was done: an action as the journal records it (``decide``,
        ``pick``, ``edit``, ``undo``, ``finish``, ``bulk``), e.g.
        ``{"op": "decide", "group": 3, "choice": "A", ...}``; or a move or a
        setting, not journaled: ``{"op": "go_to", "group": 3}``,
        ``{"op": "next"}``, ``{"op": "previous"}``, ``{"op": "order", "order":
        "iou"}``, ``{"op": "kinds", "kinds": [...]}``, ``{"op": "view",
        "overlay": ..., "disagreement": ...}``.
    regions : tuple of tuple of slice
        Regions of the output that may have changed (none for a move or a setting).
    undone : dict or None
        For an ``undo``, the action taken back.
    current : int or None
        Index of the group current after the change; None when the queue is empty.
    moved : bool
        Show the current group: it is another group than before, or a move or
        a new queue (order, kinds) asked for it. False when the reviewer stays
        on the group (a pick, an edit, their undo): the camera stays too.
    decided : bool
        Decisions, picks, output objects or counts changed (an action applied).
    view : bool
        The overlay view or colour by disagreement changed.
    message : str or None
        Words for the reviewer ("" takes back what was said before); None
        when there is nothing to say (what is shown stays).
    save_error : OSError or None
        The last background save's error when it failed (the journal is whole).
    """

    op: dict
    regions: tuple[tuple[slice, ...], ...] = ()
    undone: dict | None = None
    current: int | None = None
    moved: bool = False
    decided: bool = False
    view: bool = False
    message: str | None = None
    save_error: OSError | None = field(default=None, compare=False)


def edit_op(pieces: Iterable[tuple[tuple[slice, ...], np.ndarray | None, int]]) -> dict:
    """The ``edit`` operation of voxels set by hand.

    Parameters
    ----------
    pieces : iterable of (region, mask, value)
        ``region`` a tuple of slices with explicit start and stop (the box),
        ``mask`` a boolean array of the box's shape (None: the whole box),
        ``value`` the id the voxels get (0 erases).

    Returns
    -------
    dict
        ``{"op": "edit", "pieces": [{"box": ..., "mask": ..., "value": ...}]}``
    """
    out = []
    for region, mask, value in pieces:
        box = [[int(s.start), int(s.stop)] for s in region]
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != tuple(b - a for a, b in box):
                raise ValueError(f"mask shape {mask.shape} does not fit the box {box}")
        out.append({"box": box, "mask": None if mask is None else encode_mask(mask),
                    "value": int(value)})
    return {"op": "edit", "pieces": out}


def _region(box) -> tuple[slice, ...]:
    return tuple(slice(start, stop) for start, stop in box)


class Session:
    """Review two instance masks group by group and build one curated mask.

    Parameters
    ----------
    a, b : ndarray of int, shape (y, x) or (z, y, x)
        Instance masks, A the reference. Kept by reference, not copied.
        zarr or dask arrays are read region by region, never whole (see
        :func:`.regions.regions_of`).
        The output (:attr:`output`) is uint16 until an id passes 65,535;
        it is then replaced by a uint32 copy (holders of it must re-read it).
    groups : sequence of Group
        From :func:`.pairing.review_groups` on ``a`` and ``b``.
    classes_a, classes_b : ndarray of int, optional
        Per-voxel class of A and of B, same shape; carried to output objects.
    table : OverlapTable, optional
        The overlap table ``groups`` came from (kept in :attr:`table` for the
        statistics, which then need not pair A and B again).
    output : zarr.Array, optional
        A writable chunked array of zeros, shape of ``a``, for the output
        (e.g. an OME-Zarr labels array): it is changed chunk by chunk through
        a cache (:class:`.regions.ChunkedRegions`; :meth:`flush_output`
        writes it), and :attr:`output` is that store. Its dtype is kept (uint32 holds every id).
        None: an ndarray in memory.
    cache_bytes : int
        Memory for the chunks of each chunked array (a, b, output).

    Notes
    -----
    ``lock`` is held while the output changes: a thread that reads the output
    (the autosaver) takes it to see whole actions only.

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

    def __init__(self, a, b, groups: Sequence[Group], *, classes_a=None, classes_b=None,
                 table: OverlapTable | None = None, output=None,
                 cache_bytes: int = 256 << 20):
        stores = {name: regions_of(x, cache_bytes=cache_bytes) if x is not None else None
                  for name, x in (("A", a), ("B", b), ("classes_a", classes_a),
                                  ("classes_b", classes_b))}
        shape = stores["A"].shape
        if stores["B"].shape != shape:
            raise ValueError(f"masks differ in shape: {shape} vs {stores['B'].shape}")
        for name in ("classes_a", "classes_b"):
            if stores[name] is not None and stores[name].shape != shape:
                raise ValueError(f"{name} has shape {stores[name].shape}, expected {shape}")
        if output is None:
            self._out = ArrayRegions(np.zeros(shape, dtype=labels_dtype(0)))
        elif tuple(output.shape) != shape:
            raise ValueError(f"output has shape {tuple(output.shape)}, expected {shape}")
        else:
            self._out = ChunkedRegions(output, cache_bytes=cache_bytes)
        self._inputs = {"A": stores["A"], "B": stores["B"]}
        self._classes = {"A": stores["classes_a"], "B": stores["classes_b"]}
        self.a, self.b = (x.array for x in self._inputs.values())
        self.classes = {"A": classes_a, "B": classes_b}
        self.groups = list(groups)
        self.table = table
        self.objects: list[OutputObject] = []
        self.steps: list[Step] = []
        self.lock = threading.RLock()
        self._choice_of: dict[int, str] = {}
        # running counts of _choice_of (see _set_choice): summary() reads them, never
        # a loop over every group (hundreds of thousands in a volume larger than memory)
        self._choices: Counter = Counter()
        self._decided_paired = 0
        self._contested = 0  # of the decisions in force
        self._picks: dict[int, dict[tuple[str, int], int | None]] = {}
        #: Per group (by index): its kind's number in KINDS, paired or not.
        self._kind_code = np.fromiter((KINDS.index(g.kind) for g in self.groups),
                                      dtype=np.int8, count=len(self.groups))
        self._paired = np.fromiter((g.paired for g in self.groups), dtype=bool,
                                   count=len(self.groups))
        self._n_paired = int(np.count_nonzero(self._paired))
        self._min_iou: np.ndarray | None = None  # per group, made for the "iou" order
        self._order = "spatial"
        self._kinds: frozenset[str] = frozenset(KINDS)
        self._queue: list[int] = []
        self._place = np.full(len(self.groups), -1, dtype=np.int64)  # group -> queue position
        self._position = 0
        self._rebuild_queue()

    @property
    def output(self):
        """The output labels: an ndarray, or the :class:`.regions.ChunkedRegions` of a chunked one.

        On a chunked output read regions (``output[region]`` or
        :meth:`read`), never the whole volume.
        """
        return self._out.array if not self._out.chunked else self._out

    @property
    def chunked(self) -> bool:
        """True when the output is a chunked array written chunk by chunk."""
        return self._out.chunked

    def read(self, layer: str, region: tuple[slice, ...]) -> np.ndarray:
        """The values of one region of ``"A"``, ``"B"`` or ``"output"`` (e.g. a crop to show).

        Parameters
        ----------
        layer : {"A", "B", "output"}
        region : tuple of slice
            Slices with step 1, one per axis.

        Returns
        -------
        ndarray, shape of the region
            Read only (on numpy arrays a view); the output as it is now,
            written to disk or not.
        """
        store = self._out if layer == "output" else self._inputs.get(layer)
        if store is None:
            raise ValueError(f"layer must be 'A', 'B' or 'output', got {layer!r}")
        return store.get(region)

    def prefetch(self, layer: str, region: tuple[slice, ...], *,
                 budget: int | None = None) -> int:
        """Read the chunks of one region of ``"A"``, ``"B"`` or ``"output"`` ahead of need.

        For a thread that reads the next group's crop while a person looks
        at this one (see :meth:`.regions.ChunkedRegions.prefetch`); nothing on arrays
        in memory. Returns the bytes read into the cache.
        """
        store = self._out if layer == "output" else self._inputs.get(layer)
        if store is None:
            raise ValueError(f"layer must be 'A', 'B' or 'output', got {layer!r}")
        return store.prefetch(region, budget=budget)

    def flush_output(self) -> int:
        """Write the chunks of a chunked output changed since the last call; return how many.

        Safe from another thread; a no-op (0) on an output in memory.
        """
        return self._out.flush()

    @classmethod
    def from_masks(cls, a, b, *, iou_threshold: float = 0.1, classes_a=None, classes_b=None):
        """Pair ``a`` and ``b`` and open a session on the groups."""
        table = overlap_table(a, b)
        groups = review_groups(table, iou_threshold=iou_threshold)
        return cls(a, b, groups, classes_a=classes_a, classes_b=classes_b, table=table)

    @property
    def log(self) -> list[Decision]:
        """Every decision in force, in the order taken."""
        return [d for step in self.steps for d in step.decisions]

    @property
    def next_id(self) -> int:
        """The id the next output object gets (ids are given in action order, from 1).

        A brush set to this id (or above) paints a new object (see :meth:`prepare`).
        """
        return len(self.objects) + 1

    @property
    def edited(self) -> bool:
        """True when an edit or an unpicked object is in force (ids may have gaps: compact)."""
        return any(step.edits for step in self.steps)

    def picks(self, group: int) -> dict:
        """The objects picked in a group: ``{(side, id): output id or None}``."""
        return dict(self._picks.get(group, {}))

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
    def current_index(self) -> int | None:
        """Index of :attr:`current`, None when the queue is empty."""
        return self._queue[self._position] if self._queue else None

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

    def place(self, group: int) -> int | None:
        """Position of group index ``group`` in :attr:`queue`, None when not in it.

        Constant time (a person's "3/25"; :attr:`queue` is a copy of the whole queue).
        """
        place = int(self._place[group]) if 0 <= group < len(self._place) else -1
        return place if place >= 0 else None

    @property
    def queue_size(self) -> int:
        """Groups in :attr:`queue` (without copying it)."""
        return len(self._queue)

    def _rebuild_queue(self) -> None:
        """The queue of the kinds shown, in the order asked (vectorised: many groups)."""
        current = self.current_index
        wanted = [KINDS.index(kind) for kind in self._kinds]
        queue = np.flatnonzero(np.isin(self._kind_code, wanted))
        if self._order == "iou":  # lowest IoU first, ties by index
            if self._min_iou is None:
                self._min_iou = np.fromiter((g.min_iou for g in self.groups), dtype=float,
                                            count=len(self.groups))
            queue = queue[np.argsort(self._min_iou[queue], kind="stable")]
        self._place[:] = -1
        self._place[queue] = np.arange(len(queue))
        self._queue = queue.tolist()
        place = self.place(current) if current is not None else None
        self._position = place if place is not None else 0
        if place is None:
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

    def upcoming(self, n: int = 1) -> list[Group]:
        """The ``n`` groups after the current one in :attr:`queue` (wrapping), in order.

        What :meth:`next` shows next, and a decision moves to when they are
        undecided: e.g. to read their voxels ahead.
        """
        size = len(self._queue)
        return [self.groups[self._queue[(self._position + k) % size]]
                for k in range(1, min(n, size - 1) + 1)]

    def go_to(self, group: int) -> Group:
        """Make group index ``group`` current (it must be in the queue)."""
        place = self.place(group)
        if place is None:
            raise ValueError(f"group {group} is not in the queue")
        self._position = place
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

    def _set_choice(self, group: int, choice: str) -> None:
        """Record ``group`` decided (the one way into ``_choice_of``, counts kept)."""
        self._drop_choice(group)
        self._choice_of[group] = choice
        self._choices[choice] += 1
        self._decided_paired += bool(self._paired[group])

    def _drop_choice(self, group: int) -> None:
        """Record ``group`` undecided again (nothing when it was not decided)."""
        choice = self._choice_of.pop(group, None)
        if choice is not None:
            self._choices[choice] -= 1
            self._decided_paired -= bool(self._paired[group])

    @property
    def done(self) -> bool:
        """True when every group has a decision."""
        return len(self._choice_of) == len(self.groups)

    # ------------------------------------------------------------------ operations

    def prepare(self, op: dict) -> dict:
        """Check an operation against the current state and make it explicit.

        A ``decide`` without ``group`` gets the current group, and the ids of
        the group (so that a journal of other inputs is detected on resume);
        an ``edit`` value beyond the last id becomes the next new id.
        Nothing is changed.

        Returns
        -------
        dict
            The operation to journal and then :meth:`apply`.

        Raises
        ------
        ValueError
            The operation cannot be applied now (e.g. a group already
            decided, nothing to undo), in words for the user.
        """
        kind = op.get("op")
        if kind == "decide":
            return self._prepare_decide(op)
        if kind == "undo":
            if not self.steps:
                raise ValueError("nothing to undo")
            return {"op": "undo"}
        if kind == "finish":
            return {"op": "finish"}
        if kind == "edit":
            return self._prepare_edit(op)
        if kind == "pick":
            return self._prepare_pick(op)
        if kind == "bulk":
            return self._prepare_bulk(op)
        raise ValueError(f"unknown operation {op!r}")

    def _group_of(self, op: dict, *, verb: str) -> int:
        """The group an operation names, or the current one; ValueError when there is none."""
        group = op.get("group")
        if group is None:
            if self.current is None:
                raise ValueError(f"no group to {verb}: the queue is empty")
            group = self.current.index
        if not 0 <= group < len(self.groups):
            raise ValueError(f"there is no group #{group}")
        return group

    def _prepare_pick(self, op: dict) -> dict:
        group = self._group_of(op, verb="pick from")
        side, label = op.get("side"), op.get("id")
        g = self.groups[group]
        if label not in (g.ids_a if side == "A" else g.ids_b if side == "B" else ()):
            raise ValueError(f"{side}{label} is not an object of group {group + 1}")
        choice = self._choice_of.get(group)
        if choice not in (None, _PICK):
            raise ValueError(f"group {group + 1} is already decided ({choice}); undo (U) to "
                             "pick objects instead")
        return {"op": "pick", "group": int(group), "side": side, "id": int(label)}

    def _prepare_decide(self, op: dict) -> dict:
        choice = op.get("choice")
        if choice not in CHOICES:
            raise ValueError(f"choice must be one of {CHOICES}, got {choice!r}")
        group = self._group_of(op, verb="decide")
        if group in self._choice_of:
            # groups are called by their number (index + 1) wherever a person reads them
            raise ValueError(f"group {group + 1} is already decided "
                             f"({self._choice_of[group]}); undo (U) to change it")
        g = self.groups[group]
        ids = {"A": list(map(int, g.ids_a)), "B": list(map(int, g.ids_b))}
        if "ids" in op and ids_by_source(op["ids"]) != ids:
            raise ValueError(f"group #{group} holds other objects than the operation names")
        return {"op": "decide", "group": int(group), "choice": choice, "ids": ids}

    def _prepare_bulk(self, op: dict) -> dict:
        """A rule's decisions (:func:`.journal.bulk_op`): every group exists and is undecided."""
        for choice, groups in self._bulk_groups(op):
            if choice not in CHOICES:
                raise ValueError(f"choice must be one of {CHOICES}, got {choice!r}")
            if groups.size and (groups[0] < 0 or groups[-1] >= len(self.groups)):
                raise ValueError(f"there is no group #{int(groups[-1])}")
            decided = [g for g in groups.tolist() if g in self._choice_of]
            if decided:
                raise ValueError(f"group {decided[0] + 1} is already decided "
                                 f"({self._choice_of[decided[0]]}); a rule decides only "
                                 "undecided groups")
        return op

    @staticmethod
    def _bulk_groups(op: dict) -> list[tuple[str, np.ndarray]]:
        """(choice, group indices) of a ``bulk`` operation."""
        return [(choice, unpack_groups(text)) for choice, text in op["groups"].items()]

    def _prepare_edit(self, op: dict) -> dict:
        pieces, new_ids, next_id = [], {}, self.next_id
        for piece in op["pieces"]:
            box = piece["box"]
            shape = self._out.shape
            if len(box) != len(shape) or any(
                    not 0 <= start < stop <= n for (start, stop), n in zip(box, shape)):
                raise ValueError(f"edit box {box} is outside the output {shape}")
            value = int(piece["value"])
            if value >= next_id:  # a new object: the next id, whatever the brush said
                value = new_ids.setdefault(value, next_id + len(new_ids))
            pieces.append({**piece, "value": value})
        return {"op": "edit", "pieces": pieces}

    def apply(self, op: dict, *, move: bool = True) -> Change:
        """Apply a prepared operation (see :meth:`prepare`); the one way the state changes.

        A decision on the current group moves on to the next undecided one
        (unless ``move`` is False: a replay moves once at the end).

        Returns
        -------
        Change
        """
        kind = op["op"]
        before = self.current_index
        if kind == "undo":
            return self._undo(before)
        with self.lock:
            step = self._apply_step(op)
            applied = bool(step.decisions or step.edits or step.pick)
            if applied:  # an empty finish is no step
                self.steps.append(step)
                self._contested += sum(d.contested for d in step.decisions)
        if move and before is not None and kind in ("decide", "bulk") \
                and any(d.group == before for d in step.decisions):
            self._move_to_undecided(start=self._position + 1)  # the current group decided
        return self._change(op, step, before=before, decided=applied)

    def _change(self, op: dict, step: Step, *, before: int | None, decided: bool = True,
                undone: dict | None = None) -> Change:
        """The :class:`Change` of an applied step (the current group compared with ``before``)."""
        current = self.current_index
        return Change(op, self._regions(step), undone, current, current != before, decided)

    def _regions(self, step: Step) -> tuple[tuple[slice, ...], ...]:
        """Regions of the output that ``step`` changed."""
        groups = [d.group for d in step.decisions] + ([step.pick[0]] if step.pick else [])
        return tuple([self.groups[g].region for g in groups]
                     + [region for region, _, _ in step.edits])

    def _apply_step(self, op: dict) -> Step:
        """Apply one operation; if it fails part way (a chunk of an input that cannot be
        read), what it changed is taken back before the error is raised."""
        kind = op["op"]
        first_id = self.next_id
        if kind == "pick":
            return self._pick(op, first_id)
        decisions, edits = [], []  # what is done so far, to take back on a failure
        try:
            if kind == "edit":
                for piece in op["pieces"]:
                    edits.append(self._edit_piece(piece))
            else:
                todo = [(op["group"], op["choice"])] if kind == "decide" else self._to_decide(op)
                for group, choice in todo:
                    decisions.append(self._decide_group(group, choice))
        except BaseException:
            self._take_back(Step(op, tuple(decisions), tuple(edits), first_id))
            raise
        return Step(op, tuple(decisions), tuple(edits), first_id, self.next_id)

    def _to_decide(self, op: dict) -> list[tuple[int, str]]:
        """(group, choice) of a ``finish`` (every undecided unpaired group, Auto) or of a
        ``bulk`` (its groups in group order, whatever their choice)."""
        if op["op"] == "finish":
            return [(g, _AUTO) for g in np.flatnonzero(~self._paired).tolist()
                    if g not in self._choice_of]
        return sorted((g, choice) for choice, groups in self._bulk_groups(op)
                      for g in groups.tolist())

    def _pick(self, op: dict, first_id: int) -> Step:
        """Toggle one object of a group into the output (or out of it again)."""
        group, key = op["group"], (op["side"], op["id"])
        picks = self._picks.setdefault(group, {})
        if key not in picks:  # in: into background voxels, as a decision writes
            self._write_object(self.groups[group], _PICK, (key,))  # reads, then writes
            made = self.next_id > first_id
            picks[key] = first_id if made else None
            self._set_choice(group, _PICK)
            return Step(op, (), (), first_id, self.next_id,
                        (group, key, picks[key], True))
        out_id = picks.pop(key)  # out again: its voxels back to background
        edits = ()
        if out_id is not None:
            region = self.groups[group].region
            out = self._out.get(region)
            mask = out == out_id
            edits = ((region, mask, out[mask]),)
            self._out.put(region, 0, where=mask)
        if not picks:
            self._drop_choice(group)
        return Step(op, (), edits, first_id, first_id, (group, key, out_id, False))

    def _undo(self, was: int | None) -> Change:
        """Take the last step back; ``was`` the current group's index before."""
        with self.lock:
            step = self.steps.pop()
            self._contested -= sum(d.contested for d in step.decisions)
            self._take_back(step)
        groups = [d.group for d in step.decisions] + ([step.pick[0]] if step.pick else [])
        place = self.place(groups[0]) if groups else None
        if place is not None:
            self._position = place
        return self._change({"op": "undo"}, step, before=was, undone=step.op)

    def _take_back(self, step: Step) -> None:
        """Restore the output and the objects as they were before ``step`` (the choices too)."""
        for region, mask, before in reversed(step.edits):
            self._out.put_masked(region, mask, before)
        for decision in reversed(step.decisions):
            self._revert(decision)
        if step.pick:
            self._revert_pick(step)
        del self.objects[step.first_id - 1:]

    def _revert_pick(self, step: Step) -> None:
        group, key, out_id, added = step.pick
        picks = self._picks.setdefault(group, {})
        if added:
            if out_id is not None:
                region = self.groups[group].region
                self._out.put(region, 0, where=self._out.get(region) == out_id)
            del picks[key]
        else:
            picks[key] = out_id
        if picks:
            self._set_choice(group, _PICK)
        else:
            self._drop_choice(group)

    # ------------------------------------------------------------------ shortcuts

    def decide(self, choice: str, *, group: int | None = None) -> Decision:
        """Apply ``choice`` to the current group (or to ``group``) and move on.

        Parameters
        ----------
        choice : {"A", "B", "M", "N"}
            Keep A's objects, keep B's, their union as one object, or skip.
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
        self.apply(self.prepare({"op": "decide", "choice": choice, "group": group}))
        return self.steps[-1].decisions[0]

    def finish(self) -> list[Decision]:
        """Add the objects of every undecided unpaired group ("Auto"), in one step."""
        n_steps = len(self.steps)
        self.apply({"op": "finish"})
        return list(self.steps[-1].decisions) if len(self.steps) > n_steps else []

    def edit(self, pieces) -> Change:
        """Set voxels by hand: ``pieces`` as for :func:`edit_op`."""
        return self.apply(self.prepare(edit_op(pieces)))

    def undo(self) -> list[Decision]:
        """Take back the last action (a decision, a whole finish, or an edit).

        The output, the objects and the counts are restored exactly, and an
        undone group becomes current.

        Returns
        -------
        list of Decision
            The decisions taken back (empty for an edit, or when there was
            nothing to undo).
        """
        if not self.steps:
            return []
        decisions = list(reversed(self.steps[-1].decisions))
        self.apply({"op": "undo"})
        return decisions

    def replay(self, ops: Iterable[dict]) -> None:
        """Apply journal operations in order (each prepared first); go to an undecided group."""
        for op in ops:
            self.apply(self.prepare(op), move=False)
        self._move_to_undecided(start=0)

    # ------------------------------------------------------------------ writing objects

    def _decide_group(self, group_index: int, choice: str) -> Decision:
        group = self.groups[group_index]
        first_id = self.next_id
        contested = 0
        try:
            for source, parts in self._objects_to_keep(group, choice):
                contested += self._write_object(group, source, parts)
        except BaseException:  # an object of the group could not be read: none is kept
            self._revert(Decision(group_index, choice, len(self.steps), first_id,
                                  self.next_id, 0))
            del self.objects[first_id - 1:]
            raise
        self._set_choice(group_index, choice)
        return Decision(group_index, choice, len(self.steps), first_id, self.next_id,
                        contested)

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

    def _new_id(self) -> int:
        """The next output id; an output in memory widens to uint32 when it needs to."""
        new_id = self.next_id
        if np.iinfo(self._out.dtype).max < new_id:
            if self._out.chunked:  # not reachable with uint32; never wrap
                raise ValueError(f"{new_id} objects do not fit the output's {self._out.dtype}")
            self._out.array = self._out.array.astype(labels_dtype(new_id))
        return new_id

    def _write_object(self, group: Group, source: str, parts) -> int:
        """Write one output object into background voxels; return its contested voxels."""
        region = group.region
        out = self._out.get(region)
        mask = np.zeros(out.shape, dtype=bool)
        for side, label in parts:
            mask |= self._inputs[side].get(region) == label
        free = mask & (out == 0)
        n_free = int(np.count_nonzero(free))
        contested = int(np.count_nonzero(mask)) - n_free
        if n_free:  # everything read first (an unreadable chunk raises before any write)
            made = OutputObject(self._new_id(), source, group.index, group.iou, tuple(parts),
                                contested, self._class_of(parts, region))
            self.objects.append(made)
            self._out.put(region, made.id, where=free)
        return contested

    def _edit_piece(self, piece: dict):
        """Set the voxels of one edit piece; return (region, mask, previous values)."""
        region = _region(piece["box"])
        value = piece["value"]
        if value >= self.next_id:
            value = self._new_id()
            self.objects.append(OutputObject(value, EDIT, -1, 0.0, (), 0))
        out = self._out.get(region)
        if piece["mask"] is None:
            before = out.copy()
            self._out.put(region, value)
            return region, None, before
        mask = decode_mask(piece["mask"], out.shape)
        before = out[mask]
        self._out.put(region, value, where=mask)
        return region, mask, before

    def _class_of(self, parts, region) -> int | None:
        """Class of the largest input object among ``parts`` (its most frequent class)."""
        best = None
        for side, label in parts:
            classes = self._classes[side]
            if classes is None:
                continue
            values = classes.get(region)[self._inputs[side].get(region) == label]
            if values.size and (best is None or values.size > best[0]):
                best = (values.size, int(np.bincount(values.astype(np.int64)).argmax()))
        return None if best is None else best[1]

    def _revert(self, decision: Decision) -> None:
        if decision.stop_id > decision.first_id:
            region = self.groups[decision.group].region
            out = self._out.get(region)
            self._out.put(region, 0, where=(out >= decision.first_id) & (out < decision.stop_id))
        self._drop_choice(decision.group)

    # ------------------------------------------------------------------ results

    def summary(self) -> dict:
        """Counts of A, B, M, N and Auto decisions, edits, contested voxels, progress.

        Returns
        -------
        dict
            Keys A, B, M, N, Auto (groups decided so), P (groups decided by
            picks), picks (objects picked), edits, contested, decided,
            undecided_paired, undecided_unpaired, groups, objects.
        """
        # from running counts: no loop over the groups (see _set_choice)
        counts, decided = self._choices, len(self._choice_of)
        return {
            **{key: counts.get(key, 0) for key in (*CHOICES, _AUTO)},
            "P": counts.get(_PICK, 0),
            "picks": sum(len(p) for p in self._picks.values()),
            "edits": sum(1 for step in self.steps if step.op["op"] == "edit"),
            "contested": self._contested,
            "decided": decided,
            "undecided_paired": self._n_paired - self._decided_paired,
            "undecided_unpaired": (len(self.groups) - self._n_paired
                                   - (decided - self._decided_paired)),
            "groups": len(self.groups),
            "objects": len(self.objects),
        }

    def features(self) -> dict[str, list]:
        """Per output object: label, source, group, iou, source ids, class; for a Labels layer.

        Row k describes label k + 1; the "label" column says so explicitly.
        Objects changed by an edit have "+edit" after their source.
        """
        edited = self._edited_ids()
        return {
            "label": [o.id for o in self.objects],
            "source": [o.source + ("+edit" if o.id in edited and o.source != EDIT else "")
                       for o in self.objects],
            "group": [o.group for o in self.objects],
            "iou": [round(o.iou, 4) for o in self.objects],
            "from": [" ".join(f"{side}{i}" for side, i in o.source_ids) for o in self.objects],
            "class": [o.cls if o.cls is not None else -1 for o in self.objects],
        }

    def saved_labels(self) -> tuple[np.ndarray, dict[str, list]]:
        """The output as it is saved, ids 1..n, and its features (one row per saved id).

        With edits in force (an erased object leaves its id unused) the ids
        are compacted to 1..n in order (:func:`.labels.relabel_sequential`, as
        the saved TIFF) and the features follow; otherwise both are as they are.

        Returns
        -------
        labels : ndarray, shape of the masks
            :attr:`output` itself when nothing is compacted, else a compacted copy.
        features : dict of str to list
            As :meth:`features`, row k describing id k + 1.

        Raises
        ------
        ValueError
            On a chunked output: its ids are compacted in its store when the
            review closes (see :meth:`.review.Review.saved_labels`).

        Examples
        --------
        >>> s = Session.from_masks(np.array([[1, 0, 2]]), np.array([[0, 0, 0]]))
        >>> _ = s.finish()
        >>> _ = s.edit([((slice(0, 1), slice(0, 1)), None, 0)])  # object 1 erased
        >>> labels, features = s.saved_labels()
        >>> labels.tolist(), features["label"], features["from"]
        ([[0, 0, 1]], [1], ['A2'])
        """
        if self._out.chunked:
            raise ValueError("a chunked output is compacted in its store when the review closes")
        output, features = self._out.array, self.features()
        if not self.edited:
            return output, features
        present = np.bincount(output.reshape(-1), minlength=self.next_id)[1:] > 0
        rows = np.flatnonzero(present)  # row k describes id k + 1
        features = {key: [values[k] for k in rows] for key, values in features.items()}
        features["label"] = list(range(1, len(rows) + 1))
        return relabel_sequential(output), features

    def _edited_ids(self) -> set[int]:
        """Ids that an edit in force painted or painted over."""
        ids: set[int] = set()
        for step in (step for step in self.steps if step.op["op"] == "edit"):
            for (_, _, before), piece in zip(step.edits, step.op["pieces"]):
                ids.add(int(piece["value"]))
                ids.update(np.unique(before).tolist())
        ids.discard(0)
        return ids

    def class_lut(self) -> np.ndarray | None:
        """Class per output id, shape (n_objects + 1,), 0 on background; None without classes."""
        if all(c is None for c in self.classes.values()):
            return None
        lut = np.zeros(self.next_id, dtype=np.uint16)
        lut[1:] = [max(o.cls or 0, 0) for o in self.objects]
        return lut

    def class_map(self, region: tuple[slice, ...] | None = None) -> np.ndarray | None:
        """Per-voxel class of the output (0 on background), None without classes.

        Parameters
        ----------
        region : tuple of slice, optional
            Only this region; required on a chunked output (never whole).
        """
        lut = self.class_lut()
        if lut is None:
            return None
        if region is None:
            if self._out.chunked:
                raise ValueError("a chunked output's classes are mapped region by region")
            return lut[self._out.array]
        return lut[self._out.get(region)]

