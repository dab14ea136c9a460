"""Hand edits on the curated layer: napari's paint history as review edit pieces.

napari's brush, eraser, fill and polygon write into a Labels layer's array and
record each change as a history *atom*; one committed stroke (or fill) is sent
as ``layer.events.paint(value=atoms)``. The curated layer holds a copy of the
session's output; the review widget takes each stroke back from it
(:func:`put_back`), turns it into the pieces of a review edit
(:func:`paint_pieces`) and lets the :class:`..review.Review` journal and apply
it; the review's change then brings the copy up to date.

Two kinds of atoms (napari 0.9.2, ``napari/layers/labels/labels.py``):

- ``_MaskedPaintAtom(slice_key, mask, old_values, new_value)`` from ``paint``,
  ``fill`` and ``paint_polygon``: a box (slices with start and stop, one per
  axis), the voxels changed in it (None: all of them), their values before
  (1D under the mask, or the whole box when ``mask`` is None), the new value;
- ``(indices, old_values, new_values)`` from ``data_setitem``: a numpy
  multi-index, the values before, the value or values after.

Pure numpy, no Qt and no napari (atoms are recognised by their fields).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["new_labels", "paint_pieces", "put_back", "shift_pieces"]

#: An edit piece: (box as slices with start and stop, mask of the box or None, value).
Piece = tuple[tuple[slice, ...], np.ndarray | None, int]


def _is_masked(atom) -> bool:
    return hasattr(atom, "slice_key") and hasattr(atom, "new_value")


def paint_pieces(atoms: Iterable) -> list[Piece]:
    """The review edit pieces of one napari paint history item, in order.

    Parameters
    ----------
    atoms : iterable
        napari history atoms (see the module docstring), in the order
        napari applied them.

    Returns
    -------
    list of (region, mask, value)
        One piece per masked atom, and per distinct new value of a
        ``data_setitem`` atom: ``region`` a tuple of slices with explicit
        start and stop, ``mask`` a boolean array of the region's shape (None:
        the whole region), ``value`` the id painted (0 erases). Applied in
        order they give what napari painted.

    Examples
    --------
    >>> data_setitem = ((np.array([1, 2]), np.array([3, 5])), np.array([0, 0]), 7)
    >>> [(region, mask.tolist(), value) for region, mask, value in paint_pieces([data_setitem])]
    [((slice(1, 3, None), slice(3, 6, None)), [[True, False, False], [False, False, True]], 7)]
    """
    pieces: list[Piece] = []
    for atom in atoms:
        if _is_masked(atom):
            region = tuple(slice(int(s.start), int(s.stop)) for s in atom.slice_key)
            mask = None if atom.mask is None else np.asarray(atom.mask, dtype=bool)
            pieces.append((region, mask, int(atom.new_value)))
        else:
            pieces.extend(_index_pieces(*atom))
    return pieces


def shift_pieces(pieces: Sequence[Piece], origin: Sequence[int]) -> list[Piece]:
    """Pieces painted on a crop, in the coordinates of the whole volume.

    Parameters
    ----------
    pieces : sequence of (region, mask, value)
        From :func:`paint_pieces` on a layer that holds a crop.
    origin : sequence of int
        Where the crop starts in the volume (one per axis).

    >>> shift_pieces([((slice(1, 3), slice(0, 2)), None, 5)], (10, 20))
    [((slice(11, 13, None), slice(20, 22, None)), None, 5)]
    """
    if not any(origin):
        return list(pieces)
    return [(tuple(slice(s.start + o, s.stop + o) for s, o in zip(region, origin)), mask, value)
            for region, mask, value in pieces]


def _index_pieces(indices, old_values, new_values) -> list[Piece]:
    """Pieces of a ``data_setitem`` atom: a box and mask per distinct new value."""
    indices = tuple(np.asarray(axis, dtype=np.int64).reshape(-1) for axis in indices)
    if not indices or indices[0].size == 0:
        return []
    new_values = np.asarray(new_values)
    if new_values.ndim == 0:
        return [_box_piece(indices, int(new_values))]
    new_values = np.broadcast_to(new_values.reshape(-1), indices[0].shape)
    return [_box_piece(tuple(axis[new_values == value] for axis in indices), int(value))
            for value in dict.fromkeys(new_values.tolist())]  # distinct, in first-seen order


def _box_piece(indices: Sequence[np.ndarray], value: int) -> Piece:
    """The bounding box of voxels given by index arrays, and their mask in it."""
    lo = [int(axis.min()) for axis in indices]
    hi = [int(axis.max()) + 1 for axis in indices]
    mask = np.zeros([b - a for a, b in zip(lo, hi)], dtype=bool)
    mask[tuple(axis - a for axis, a in zip(indices, lo))] = True
    region = tuple(slice(a, b) for a, b in zip(lo, hi))
    return region, (None if mask.all() else mask), value


def put_back(data: np.ndarray, atoms: Sequence) -> None:
    """Undo napari's paint of ``atoms`` in ``data``: the values before, last atom first.

    Parameters
    ----------
    data : ndarray
        The array napari painted into (changed in place).
    atoms : sequence
        The same atoms as for :func:`paint_pieces`.
    """
    for atom in reversed(atoms):
        if _is_masked(atom):
            if atom.mask is None:
                data[atom.slice_key] = atom.old_values
            else:
                data[atom.slice_key][atom.mask] = atom.old_values
        else:
            indices, old_values, _ = atom
            data[tuple(indices)] = old_values


def new_labels(pieces: Sequence[Piece], op: dict) -> dict[int, int]:
    """Values painted that the review turned into new objects: painted -> id used.

    Parameters
    ----------
    pieces : sequence of (region, mask, value)
        As given to :meth:`..review.Review.edit`.
    op : dict
        The ``edit`` operation as applied (``Change.op``): a value above the
        last object id became the next new id.

    Returns
    -------
    dict of int to int

    >>> new_labels([((slice(0, 1),), None, 9), ((slice(1, 2),), None, 0)],
    ...            {"op": "edit", "pieces": [{"value": 4}, {"value": 0}]})
    {9: 4}
    """
    return {int(value): int(piece["value"])
            for (_, _, value), piece in zip(pieces, op["pieces"])
            if int(piece["value"]) != int(value)}
