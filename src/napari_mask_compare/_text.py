"""Words about a review, formatted once for the panel, the canvas caption and the terminal.

Qt-free and napari-free: the dock panel (:mod:`._qt._panel`), the canvas
caption (:mod:`._qt._view`) and the command line all show a review's groups
and counts through these functions, so that they never disagree.

Numbering: a group is called by its number, ``index + 1`` (:func:`group_number`),
everywhere a person reads it: the panel, the canvas, error messages and the
hover of the curated layer; its place in the queue (which depends on the
order and the kind filter) is given as "3/25".
"""

from __future__ import annotations

from . import colours

__all__ = [
    "COUNT_LINES", "GROUP_LINES", "KIND_LABELS", "LARGER_THAN_MEMORY", "QUEUE_DECIDED",
    "describe_counts",
    "describe_group",
    "display_features", "group_caption", "group_number", "picked_text", "summary_text",
    "unpaired_fate",
]

#: Kind of a review group, as a person reads it.
KIND_LABELS = {"match": "match", "split": "split", "merge": "merge", "complex": "complex",
               "only_a": "only A", "only_b": "only B"}
#: The Metrics tab on a review larger than memory (chunked): what it leaves out, and why.
LARGER_THAN_MEMORY = ("curated vs A and vs B: not computed for reviews larger than memory "
                      "(A vs B comes from the review's overlap table)")
#: Said when a decision leaves no undecided group in the queue to move on to.
QUEUE_DECIDED = ("Every group in the queue is decided: Finish adds the unpaired objects left "
                 "and saves; Q saves and quits.")
#: Lines of :func:`describe_group` (always this many: the panel below it does not move).
GROUP_LINES = 6
#: Lines of :func:`describe_counts` (always this many).
COUNT_LINES = 4
#: Characters of a line of the panel's group text before ids are cut ("+2 more"): the
#: dock is narrow (about 28 characters).
_BUDGET = 24


def group_number(group) -> int:
    """The number a person knows a group by: its index + 1.

    >>> from types import SimpleNamespace
    >>> group_number(SimpleNamespace(index=0))
    1
    """
    return int(group.index) + 1


def picked_text(session, group, *, budget: int | None = None) -> str:
    """The objects picked in a group, "A5, B16" (cut to ``budget`` characters).

    >>> import numpy as np
    >>> from napari_mask_compare.session import Session
    >>> s = Session.from_masks(np.array([[1, 2, 0]]), np.array([[3, 3, 0]]))
    >>> s.apply(s.prepare({"op": "pick", "side": "B", "id": 3})).op["op"]
    'pick'
    >>> picked_text(s, s.groups[0])
    'B3'
    """
    return _cut([f"{side}{label}" for side, label in sorted(session.picks(group.index))],
                budget=budget)


def _choice_text(session, group) -> str:
    choice = session.choice_of(group.index)
    if choice == "P":
        return f"<b>picked</b> {picked_text(session, group, budget=_BUDGET - 7)}"
    return f"decided <b>{choice}</b>" if choice else "<i>undecided</i>"


def describe_group(group, *, session, full: bool = False) -> str:
    """Panel text of the current group: rich text of exactly :data:`GROUP_LINES` lines.

    Parameters
    ----------
    group : pairing.Group or None
    session : session.Session
    full : bool
        Every id and IoU, however long the lines get (for a tooltip);
        otherwise long lists end in "+n more".

    Returns
    -------
    str
        Lines joined by ``<br>``: number and place in the queue, decision,
        kind (UNPAIRED flagged), A's objects, B's objects, IoUs (or what
        becomes of an unpaired group).

    Examples
    --------
    >>> import numpy as np
    >>> from napari_mask_compare.session import Session
    >>> s = Session.from_masks(np.array([[1, 1, 0, 2]]), np.array([[3, 3, 0, 0]]))
    >>> print(describe_group(s.groups[1], session=s).replace("<br>", "\\n"))
    <b>Group 2</b> (2/2 in queue)
    <i>undecided</i>
    only A <b style='color:#ff5050'>UNPAIRED</b>
    A 2 (1 vx)
    B —
    unpaired: Finish adds it
    """
    if group is None:
        return "<br>".join(["<i>No group in the queue</i>", "<i>(see the kinds shown).</i>"]
                           + [""] * (GROUP_LINES - 2))
    place = _place(session, group)
    flag = "" if group.paired else f" <b style='color:{colours.UNPAIRED}'>UNPAIRED</b>"
    budget = None if full else _BUDGET
    lines = [
        f"<b>Group {group_number(group)}</b> ({place} in queue)",
        _choice_text(session, group),
        f"{KIND_LABELS[group.kind]}{flag}",
        "A " + _objects(group.ids_a, group.sizes_a, budget=budget),
        "B " + _objects(group.ids_b, group.sizes_b, budget=budget),
        _ious(group, budget=budget) if group.pairs else "unpaired: Finish adds it",
    ]
    return "<br>".join(lines)


def _objects(ids, sizes, *, budget: int | None) -> str:
    """``3 (564 vx), 7 (12 vx)``, cut to ``budget`` characters with "+n more"."""
    if not ids:
        return "—"
    parts = [f"{i} ({s:,} vx)" for i, s in zip(ids, sizes)]
    return _cut(parts, budget=budget)


def _ious(group, *, budget: int | None) -> str:
    if budget is None:
        return "IoU " + ", ".join(f"A{a}–B{b} {iou:.3f}" for a, b, iou in group.pairs)
    ious = sorted((iou for _, _, iou in group.pairs), reverse=True)
    return "IoU " + _cut([f"{iou:.2f}" for iou in ious], budget=budget - 4)


def _cut(parts: list[str], *, budget: int | None) -> str:
    """Join ``parts`` with ", "; past ``budget`` characters, end with "+n more"."""
    if budget is None:
        return ", ".join(parts)
    shown: list[str] = []
    for k, part in enumerate(parts):
        rest = len(parts) - k - 1
        tail = f", +{rest} more" if rest else ""
        if shown and len(", ".join([*shown, part]) + tail) > budget:
            return ", ".join(shown) + f", +{len(parts) - k} more"
        shown.append(part)
    return ", ".join(shown)


def _place(session, group) -> str:
    """The group's place in the queue, "3/25" ("—" when its kind is not shown)."""
    place = session.place(group.index)
    return f"{place + 1}/{session.queue_size}" if place is not None else "—"


def group_caption(group, *, session) -> str:
    """One line for the canvas: number, place in the queue, kind, the objects' ids.

    >>> import numpy as np
    >>> from napari_mask_compare.session import Session
    >>> s = Session.from_masks(np.array([[1, 1, 0, 2]]), np.array([[3, 3, 0, 0]]))
    >>> group_caption(s.groups[0], session=s)
    'group 1 · 1/2 · match · A 1 | B 3'
    """
    place = _place(session, group)
    choice = session.choice_of(group.index)
    decided = (f" · picked {picked_text(session, group)}" if choice == "P"
               else f" · decided {choice}" if choice else "")
    flag = " UNPAIRED" if not group.paired else ""
    return (f"group {group_number(group)} · {place} · {KIND_LABELS[group.kind]}{flag}"
            f"{decided} · A {' '.join(map(str, group.ids_a)) or '—'} "
            f"| B {' '.join(map(str, group.ids_b)) or '—'}")


def describe_counts(summary: dict) -> str:
    """The running counts: exactly :data:`COUNT_LINES` short lines.

    >>> print(describe_counts({"A": 2, "B": 1, "M": 0, "N": 3, "Auto": 0, "decided": 6,
    ...                        "groups": 9, "objects": 4, "contested": 0,
    ...                        "undecided_paired": 2, "undecided_unpaired": 1}))
    A 2 · B 1 · M 0 · N 3
    Auto 0 · 4 objects
    decided 6 of 9 groups
    left: 2 paired, 1 unpaired
    >>> print(describe_counts({"A": 0, "B": 0, "M": 0, "N": 0, "Auto": 0, "P": 1, "picks": 2,
    ...                        "decided": 1, "groups": 2, "objects": 2}).splitlines()[:2])
    ['A 0 · B 0 · M 0 · N 0 · P 1', 'Auto 0 · 2 objects · 2 picks']
    """
    words = _count_words(summary)
    paired, unpaired = _undecided(summary)
    left = (f"left: {paired} paired, {unpaired} unpaired" if paired or unpaired
            else "every group decided")
    made = " · ".join([words["auto"], words["objects"], *words["made"]])
    return "\n".join([words["choices"], made, words["progress"], left])


def _count_words(summary: dict) -> dict:
    """The counts of :meth:`..session.Session.summary`, worded once for the panel and the terminal.

    Returns
    -------
    dict
        ``choices`` ("A 2 · B 1 · M 0 · N 3", then "· P 1" when something is
        picked), ``auto`` ("Auto 0"), ``objects`` ("4 objects"), ``made``
        (a list: picks, hand edits and contested voxels, those not zero) and
        ``progress`` ("decided 6 of 9 groups").
    """
    choices = " · ".join(f"{key} {summary[key]}" for key in ("A", "B", "M", "N"))
    if summary.get("P"):
        choices += f" · P {summary['P']}"
    made = []
    if summary.get("picks"):
        made.append(f"{summary['picks']} picks")
    if summary.get("edits"):
        made.append(f"{summary['edits']} edit(s)")
    if summary.get("contested"):
        made.append(f"{summary['contested']:,} vx contested")
    return {"choices": choices, "auto": f"Auto {summary['Auto']}",
            "objects": f"{summary['objects']} objects", "made": made,
            "progress": f"decided {summary['decided']} of {summary['groups']} groups"}


def _undecided(summary: dict) -> tuple[int, int]:
    """Undecided paired and unpaired groups."""
    return summary.get("undecided_paired", 0), summary.get("undecided_unpaired", 0)


def unpaired_fate(summary: dict) -> str:
    """What becomes of the undecided unpaired groups (the original tool added them at the end).

    >>> unpaired_fate({"undecided_unpaired": 0})
    ''
    >>> unpaired_fate({"undecided_unpaired": 4})  # doctest: +NORMALIZE_WHITESPACE
    '4 undecided unpaired group(s) (only A / only B) are not in the output: Finish adds
    them (Auto), as the original tool did at the end; Q leaves them out'
    """
    n = _undecided(summary)[1]
    if not n:
        return ""
    return (f"{n} undecided unpaired group(s) (only A / only B) are not in the output: "
            "Finish adds them (Auto), as the original tool did at the end; Q leaves them out")


def summary_text(summary: dict, *, output=None) -> str:
    """The end-of-review summary, as printed in the terminal (several lines).

    Parameters
    ----------
    summary : dict
        :meth:`..session.Session.summary`.
    output : path, optional
        The curated mask saved.

    Examples
    --------
    >>> print(summary_text({"A": 2, "B": 1, "M": 0, "N": 3, "Auto": 0, "decided": 6,
    ...                     "groups": 9, "objects": 4, "undecided_paired": 2,
    ...                     "undecided_unpaired": 0}, output="out/cells.tif"))
    saved out/cells.tif: 4 objects
      A 2 · B 1 · M 0 · N 3 · Auto 0
      decided 6 of 9 groups; undecided: 2 paired, 0 unpaired
      2 undecided paired group(s) are not in the output yet: run the same review again to resume
    >>> print(summary_text({"A": 0, "B": 0, "M": 0, "N": 0, "Auto": 0, "P": 1, "picks": 2,
    ...                     "edits": 1, "contested": 1234, "decided": 1, "groups": 1,
    ...                     "objects": 2}).splitlines()[1])
      A 0 · B 0 · M 0 · N 0 · P 1 · Auto 0 · 2 picks · 1 edit(s) · 1,234 vx contested
    """
    saved = f"saved {output}: " if output is not None else ""
    words = _count_words(summary)
    paired, unpaired = _undecided(summary)
    lines = [f"{saved}{words['objects']}",
             " · ".join([words["choices"], words["auto"], *words["made"]]),
             f"{words['progress']}; undecided: {paired} paired, {unpaired} unpaired"]
    if paired:
        lines.append(f"{paired} undecided paired group(s) are not in the output yet: run the "
                     "same review again to resume")
    if unpaired:
        lines.append(unpaired_fate(summary))
    return "\n".join(lines[:1] + ["  " + line for line in lines[1:]])


def display_features(features: dict) -> dict:
    """Features of the output's objects as shown when hovering: groups by their number.

    >>> display_features({"label": [1, 2], "group": [0, -1]})
    {'label': [1, 2], 'group': [1, '—']}
    """
    shown = dict(features)
    if "group" in shown:
        shown["group"] = [g + 1 if g >= 0 else "—" for g in shown["group"]]
    return shown
