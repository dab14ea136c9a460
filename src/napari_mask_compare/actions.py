"""The one table of review actions: name, button text, keys, words.

Everything a reviewer can press is defined here once, and built from here:
the panel's buttons (:mod:`._qt._panel`), the key bindings (:mod:`._qt._keys`, on the
canvas and on the whole window), the hint in napari's status bar, the help of
``mask-compare review`` and the keys table of the README (a test checks that
the README holds :func:`markdown_table`).

Qt-free and napari-free, so that the command line can read it without
starting a GUI. Keys are napari key names (``"Left"``, ``"1"``, ``"."``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACTIONS", "CLICK_HELP", "Action", "cli_help", "key_table", "markdown_table",
           "status_hint"]


@dataclass(frozen=True)
class Action:
    """One thing a reviewer can do.

    Attributes
    ----------
    name : str
        What the widget calls it ("A", "undo", "slice_up"...).
    button : str or None
        Text of its button in the panel; None when it has none.
    keys : tuple of str
        napari key names that do it (none for Finish: it asks first).
    short : str
        A few words, for the status bar.
    help : str
        What it does, in a sentence (tooltips, README, command line help).
    """

    name: str
    button: str | None
    keys: tuple[str, ...]
    short: str
    help: str


#: Every review action, in the order the README and the help list them.
ACTIONS: tuple[Action, ...] = (
    Action("A", "1 A", ("1", "A"), "keep A", "keep A's objects of the group"),
    Action("B", "2 B", ("2", "B"), "keep B", "keep B's objects of the group"),
    Action("M", "3 M", ("3", "M"), "union", "the union of the group's objects as one object"),
    Action("N", "4 N", ("4", "N"), "none", "skip the group (nothing from it in the output)"),
    Action("undo", "U undo", ("U",), "undo", "undo the last decision, pick, Finish or hand edit"),
    Action("previous", "← prev", ("Left",), "previous group",
           "previous group of the queue, without deciding"),
    Action("next", "→ next", ("Right",), "next group",
           "next group of the queue, without deciding"),
    Action("slice_down", None, ("Down", ","), "slice down",
           "3D: previous slice (the z-slider spans the group's slices; it shows the real z)"),
    Action("slice_up", None, ("Up", "."), "slice up", "3D: next slice"),
    Action("disagreement", None, ("D",), "colour by IoU",
           "colour by disagreement (toggle): every object of A and B coloured by its best IoU "
           "over the whole image (legend on the canvas); click an object to go to its group"),
    Action("quit", "Q quit", ("Q",), "save & quit",
           "save and end the review (start it again to resume); in the window that "
           "`mask-compare review` opens, also print the summary and close the window; "
           "undecided groups stay out of the output"),
    Action("finish", "Finish…", (), "finish",
           "add the undecided only-A/only-B objects (Auto), as the original tool did at the "
           "end, save and end the review; asks first when paired groups are undecided"),
)

#: What a click on an object does (the mouse's one review action; dragging still pans).
CLICK_HELP = ("pick the object into the curated output, or take it out again (journaled, U "
              "undoes it; the group counts as decided, P); an object of another group: go to "
              "that group. Side by side, the panel clicked; in the overlay view the selected "
              "layer, else A. Not while a painting tool is active")

_KEY_TEXT = {"Left": "←", "Right": "→", "Up": "↑", "Down": "↓"}


def key_text(key: str) -> str:
    """A key as a person reads it.

    >>> key_text("Left"), key_text("1"), key_text(",")
    ('←', '1', ',')
    """
    return _KEY_TEXT.get(key, key)


def key_table() -> dict[str, str]:
    """Key -> action name, for every key of :data:`ACTIONS`.

    >>> key_table()["1"], key_table()["Right"], key_table()["."]
    ('A', 'next', 'slice_up')
    """
    return {key: action.name for action in ACTIONS for key in action.keys}


def status_hint() -> str:
    """One line of the review keys for napari's status bar.

    >>> status_hint().startswith("review keys: 1/A keep A, 2/B keep B")
    True
    """
    return "review keys: " + ", ".join(
        f"{'/'.join(key_text(k) for k in action.keys)} {action.short}"
        for action in ACTIONS if action.keys)


def cli_help() -> str:
    """The keys, for the help of ``mask-compare review``.

    >>> print(cli_help().splitlines()[1])
      1 or A: keep A's objects of the group
    """
    lines = ["keys in the review window:"]
    for action in ACTIONS:
        keys = " or ".join(key_text(k) for k in action.keys) or f"the {action.button} button"
        lines.append(f"  {keys}: {action.help}")
    lines.append(f"  a click on an object of A or B: {CLICK_HELP}")
    return "\n".join(lines)


def markdown_table() -> str:
    """The README's table of review keys (a test checks the README holds it).

    >>> print(markdown_table().splitlines()[2])
    | `1` or `A` | 1 A | keep A's objects of the group |
    """
    rows = ["| key | button | action |", "|---|---|---|"]
    for action in ACTIONS:
        keys = " or ".join(f"`{key_text(k)}`" for k in action.keys) or "—"
        rows.append(f"| {keys} | {action.button or '—'} | {action.help} |")
    rows.append(f"| click an object of A or B | — | {CLICK_HELP} |")
    return "\n".join(rows)
