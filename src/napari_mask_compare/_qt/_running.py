"""A running review in the widget: the core review and the Qt pieces that serve it.

:class:`Running` holds the :class:`..review.Review`, its view (layers,
camera), the keys taken over (canvas and window), the object clicks, and what
is computed once per review (every object's best IoU, the colours of colour
by disagreement). :meth:`Running.bind` takes the keys, the mouse and napari's
paint strokes on the curated layer over (:meth:`Running.unbind` gives them
back): a key, a click (:meth:`Running.click`) or a stroke
(:meth:`Running.paint`) becomes a call of the review (:meth:`Running.act`),
whose refusal is said in one line. :meth:`Running.draw` shows what a change
changed; :meth:`Running.close` ends the review.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import read
from .._text import display_features, group_caption, unpaired_fate
from ..errors import InputError
from ..review import Review
from . import _panel
from ._clicks import ObjectClicks
from ._colouring import objects_of
from ._edits import new_labels, paint_pieces, put_back, shift_pieces
from ._keys import ReviewKeys, WindowKeys
from ._message import one_line
from ._view import ReviewView
from ._window import qt_window

__all__ = ["Running"]

#: Groups after the one shown whose crops are read ahead (a review larger than memory).
_READ_AHEAD = 2


@dataclass
class Running:
    """A running review: the core :class:`..review.Review` and its Qt helpers."""

    review: Review
    view: ReviewView
    keys: ReviewKeys
    window_keys: WindowKeys
    pair: read.MaskPair
    output: Path
    clicks: ObjectClicks
    #: ``say(text, error=False)``: one line for the reviewer.
    say: Callable[..., None]
    #: Ask before Finish or another file leaves paired groups undecided.
    ask_undecided: bool = True
    #: Every object's best IoU and group (:mod:`..disagreement`), once computed.
    objects: object = None
    #: Colours of colour by disagreement, once computed (kept for the next toggle).
    colouring: object = None

    @classmethod
    def start(cls, viewer, opened, view: ReviewView, actions: Mapping[str, Callable], *,
              hint: str, say: Callable[..., None], parent=None) -> Running:
        """The running review of ``opened`` (:class:`._loader.Opened`), keys not yet taken.

        ``actions``: action name -> handler (:mod:`..actions`); ``hint``: napari's
        status bar meanwhile; ``say(text, error=False)``: one line for the reviewer.
        """
        keys = ReviewKeys(viewer, actions, hint=hint)
        window_keys = WindowKeys(qt_window(viewer), view.canvas_widget(), actions,
                                 parent=parent)
        running = cls(opened.review, view, keys, window_keys, opened.pair, opened.output,
                      None, say)
        running.clicks = ObjectClicks(viewer, view, running.click)
        return running

    @property
    def session(self):
        return self.review.session

    def bind(self) -> None:
        """Take the keys (canvas and window), the clicks on objects and the strokes over."""
        self.keys.bind()
        self.window_keys.bind()
        self.clicks.bind()
        self.view.layers["output"].events.paint.connect(self._on_paint)

    def unbind(self) -> None:
        """Give the keys, the clicks and the strokes back."""
        self.view.layers["output"].events.paint.disconnect(self._on_paint)
        self.keys.unbind()
        self.window_keys.unbind()
        self.window_keys.deleteLater()
        self.clicks.unbind()

    def act(self, name: str, *args, **kwargs):
        """Call the review's ``name`` (an action, a move, a setting); return its change.

        A refusal or a failed journal write is said in one red line (None is
        returned: nothing changed). A brush set to a new object (a label above
        the last id) stays on a new object.
        """
        layer = self.view.layers["output"]
        new_label = layer.selected_label >= self.session.next_id
        try:
            change = getattr(self.review, name)(*args, **kwargs)
        except (ValueError, OSError) as err:
            self.say(one_line(err), error=True)
            return None
        if new_label:
            layer.selected_label = self.session.next_id
        return change

    def click(self, role: str, label: int) -> None:
        """A click on object ``label`` of A or B (``role``): pick it, or go to its group.

        An object of the group shown is toggled into the curated output (or
        out of it) like any action: journaled, undone by U, saved. An object
        of another group shows that group (nothing is picked: a second click
        picks); a group the kinds shown leave out is named, not shown.
        """
        side, session = role.upper(), self.session
        group = session.current
        if group is not None and label in (group.ids_a if side == "A" else group.ids_b):
            self.act("pick", side, label)
            return
        if self.objects is None:
            self.objects = objects_of(session)
        index = self.objects.group_of(side, label)
        if index is None:
            return
        if session.place(index) is None:
            self.say(f"{side} {label} is in group {index + 1}, a group of a kind not shown "
                     "(see the kinds shown)", error=True)
        elif self.act("go_to", index) is not None and session.current_index == index:
            self.say(f"group {index + 1} shown: it holds {side} {label}; click it again to "
                     "pick it")  # (not when its crop could not be read: said why)

    def open_view(self) -> bool:
        """The view as the review opens: its overlay, the output's features, the brush
        on a new object, the current group (False: its crop cannot be read, and said)."""
        self.view.set_overlay(self.review.view.overlay)
        self.refresh_features()
        self.view.layers["output"].selected_label = self.session.next_id
        return self.draw()

    def draw(self, *, regions=(), refocus: bool = True) -> bool:
        """Show the review as it is now: the current group (the camera moved only on
        ``refocus``, or to another group), the output's changed ``regions``, the picks
        and the caption.

        A chunk of a store that cannot be read (damaged, see :mod:`.._chunks`) is
        one red line naming the store and the chunk; the layers keep the group
        they showed and the review goes back to it (the keys act on the group
        shown), and goes on from there. Returns False then.
        """
        session, view = self.session, self.view
        group = session.current
        resliced = False
        if group is not None:
            picked = session.picks(group.index)
            if refocus or view.group is None or view.group.index != group.index:
                try:
                    resliced = view.show(group, picked=picked)
                except InputError as err:
                    self._go_back(err)
                    return False
                view.read_ahead(session.upcoming(_READ_AHEAD))  # a review larger than memory
            else:
                view.mark_picked(picked)  # nothing when they are as shown
        if regions:
            view.refresh_output(session.output, regions=regions, redraw=not resliced)
        view.set_caption(group_caption(group, session=session) if group is not None
                         else "no group in the queue")
        return True

    def _go_back(self, err: Exception) -> None:
        """The current group could not be shown: say why, and go back to the group shown."""
        self.say(one_line(err), error=True)
        shown, current = self.view.group, self.session.current_index
        if shown is not None and shown.index != current \
                and self.session.place(shown.index) is not None:
            self.review.go_to(shown.index)  # its change draws it again

    def refresh_features(self) -> None:
        """The features of the output layer (hover), as the session has them now."""
        self.view.refresh_output(self.session.output, redraw=False,
                                 features=display_features(self.session.features()))

    def opening_words(self) -> str:
        """What to say when the review opens: started or resumed, and what opening repaired."""
        replayed = len(self.session.steps)
        state = f"resumed ({replayed} action(s) replayed)" if replayed else "started"
        notes = "".join(f"; {note}" for note in self.review.notes)
        return (f"Review {state}: {len(self.session.groups)} groups; saving to "
                f"{self.output}{notes}")

    def _on_paint(self, event) -> None:
        self.paint(event.value)

    def paint(self, atoms) -> None:
        """napari painted the curated layer: its stroke (history atoms) becomes an edit.

        The stroke is taken back from the layer's copy of the output first
        (the review's change brings it back once journaled); napari's undo
        history is cleared (its Ctrl+Z must not change the array behind the
        journal: U undoes edits). An edit that made a new object leaves the
        brush on it. An edit refused or not journaled is said, its stroke gone.
        """
        layer = self.view.layers["output"]
        atoms = list(atoms)
        # a crop of a review larger than memory: its origin in the volume
        pieces = shift_pieces(paint_pieces(atoms), self.view.crop_origin)
        put_back(layer.data, atoms)
        self.view.forget_paint_history()
        if not pieces:
            return
        try:
            change = self.review.edit(pieces)
        except (ValueError, OSError) as err:
            self.view.refresh_output(self.session.output)  # the stroke is gone
            self.say(f"edit not saved, taken back: {one_line(err)}", error=True)
            return
        created = new_labels(pieces, change.op)
        if layer.selected_label in created:
            layer.selected_label = created[layer.selected_label]

    def may_leave(self, parent, action: str) -> bool:
        """Ask first when ``action`` ("finish", "file") leaves paired groups undecided."""
        paired = self.session.summary()["undecided_paired"]
        if not paired or not self.ask_undecided:
            return True
        go_on, dont_ask = _panel.confirm_leaving_undecided(parent, paired=paired, action=action)
        if dont_ask:
            self.ask_undecided = False
        return go_on

    def close(self) -> tuple[dict, str, bool]:
        """Close the core review (save, summary, lock) and the view.

        Returns
        -------
        summary : dict
        message : str
            What to tell the reviewer.
        error : bool
            Saving failed (the journal is whole: starting again rebuilds the output).
        """
        self.view.stop_reading()  # nothing read ahead while the review closes
        try:
            summary = self.review.close()
        except OSError as err:
            self.review.release()  # the window lets it go: the lock with it
            message = (f"{one_line(err)} — the journal is whole: start the review again to "
                       "rebuild the output")
            return self.session.summary(), message, True
        finally:
            self.view.close()
        fate = unpaired_fate(summary)
        return summary, (f"Saved {self.output} ({summary['objects']} objects; "
                         f"{summary['decided']} of {summary['groups']} groups decided)"
                         + (f". {fate}." if fate else "")), False
