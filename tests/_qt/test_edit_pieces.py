"""napari paint history atoms -> review edit pieces, without a viewer.

The atoms are made by a napari Labels layer that is not in a viewer (its
brush, fill and ``data_setitem``, as the tools call them), so that the test
follows napari's own history format.
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Labels

from napari_mask_compare._qt._edits import new_labels, paint_pieces, put_back
from napari_mask_compare.session import Session


def _stroke(layer: Labels, paint) -> list:
    """The history item of one stroke: what ``layer.events.paint`` carries."""
    items = []
    layer.events.paint.connect(lambda event: items.append(event.value))
    with layer.block_history():
        paint(layer)
    assert len(items) == 1
    return items[0]


def _apply(pieces, before: np.ndarray) -> np.ndarray:
    out = before.copy()
    for region, mask, value in pieces:
        if mask is None:
            out[region] = value
        else:
            out[region][mask] = value
    return out


def _layer(data: np.ndarray) -> Labels:
    layer = Labels(data)
    layer.brush_size = 5
    return layer


def _masks():
    data = np.zeros((40, 50), np.uint16)
    data[5:15, 5:20] = 1
    data[20:30, 25:45] = 2
    return data


STROKES = {
    "brush": lambda layer: [layer.paint(c, 3, refresh=False) for c in ((10, 10), (12, 18))],
    "eraser": lambda layer: layer.paint((22, 30), 0, refresh=False),
    "fill": lambda layer: layer.fill((25, 40), 7, refresh=False),
    "brush over itself": lambda layer: [layer.paint(c, 1, refresh=False)
                                        for c in ((20, 20), (21, 21), (22, 22))],
    "data_setitem": lambda layer: layer.data_setitem(
        (np.array([0, 0, 39, 6]), np.array([0, 1, 49, 6])), [4, 5, 4, 0], refresh=False),
    "data_setitem one value": lambda layer: layer.data_setitem(
        (np.array([1, 2]), np.array([1, 2])), 6, refresh=False),
}


@pytest.mark.parametrize("name", list(STROKES))
def test_pieces_redo_and_put_back_undoes_the_stroke(name):
    data = _masks()
    before = data.copy()
    layer = _layer(data)
    atoms = _stroke(layer, STROKES[name])
    painted = data.copy()
    assert not np.array_equal(painted, before)

    pieces = paint_pieces(atoms)
    for region, mask, value in pieces:
        assert all(isinstance(s.start, int) and isinstance(s.stop, int) for s in region)
        assert mask is None or mask.shape == tuple(s.stop - s.start for s in region)
        assert isinstance(value, int)
    np.testing.assert_array_equal(_apply(pieces, before), painted)

    put_back(data, atoms)
    np.testing.assert_array_equal(data, before)


def test_data_setitem_gives_one_piece_per_value():
    layer = _layer(_masks())
    atoms = _stroke(layer, STROKES["data_setitem"])
    pieces = paint_pieces(atoms)
    assert [value for _, _, value in pieces] == [4, 5, 0]
    region, mask, _ = pieces[0]
    assert region == (slice(0, 40), slice(0, 50)) and mask.sum() == 2


def test_a_3d_brush_stroke_is_one_slice_thick():
    data = np.zeros((6, 30, 30), np.uint16)
    layer = _layer(data)  # the brush paints the displayed plane (y, x) at z = 2
    atoms = _stroke(layer, lambda layer: layer.paint((2, 10, 10), 5, refresh=False))
    (region, mask, value), = paint_pieces(atoms)
    assert region[0] == slice(2, 3) and value == 5 and mask.shape[0] == 1


def test_the_session_applies_the_pieces_and_names_new_objects():
    a = _masks()
    session = Session.from_masks(a, a)
    session.decide("A")  # object 1
    data = session.output
    layer = _layer(data)
    atoms = _stroke(layer, STROKES["brush"])  # label 3: beyond the last id
    painted = data.copy()
    pieces = paint_pieces(atoms)
    put_back(data, atoms)
    change = session.edit(pieces)
    assert new_labels(pieces, change.op) == {3: 2}
    np.testing.assert_array_equal(session.output, np.where(painted == 3, 2, painted))
    assert session.features()["source"] == ["A+edit", "edit"]
