"""Where two masks disagree, object by object: best IoU, its colour, and its review group.

"Colour by disagreement" in the review colours every object of A and of B
by its best IoU with the other mask, over the whole image, so that a
reviewer sees where the masks disagree before stepping through the groups;
a click on an object goes to its review group. This module holds the rule
(Qt-free, napari-free, vectorised: one pass over the overlap table's pairs,
no loop over objects); the widget only paints its colours.

Colours come from one binned colormap (:data:`IOU_BINS`, :data:`.colours.BIN_COLORS`):
bright warm colours for low IoU (where to look), blue for agreement;
:func:`legend` gives its words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .colours import BIN_COLORS
from .pairing import Group, OverlapTable
from .suite import object_groups

__all__ = ["BIN_COLORS", "IOU_BINS", "ObjectIoU", "best_ious", "iou_bins", "legend",
           "object_ious"]

#: Upper edges of the IoU bins (the last bin runs up to 1 included).
IOU_BINS = (0.25, 0.5, 0.75)


def best_ious(table: OverlapTable) -> tuple[np.ndarray, np.ndarray]:
    """The best IoU of every object of A and of B with any object of the other mask.

    Parameters
    ----------
    table : OverlapTable

    Returns
    -------
    iou_a : ndarray of float64, shape (n_a,)
        In the order of ``table.ids_a``; 0 for an object that overlaps nothing.
    iou_b : ndarray of float64, shape (n_b,)

    Examples
    --------
    >>> from napari_mask_compare.pairing import overlap_table
    >>> a = np.array([[1, 1, 0, 2]])
    >>> b = np.array([[3, 0, 0, 4]])
    >>> [x.tolist() for x in best_ious(overlap_table(a, b))]
    [[0.5, 1.0], [0.5, 1.0]]
    """
    iou = table.iou
    iou_a = np.zeros(table.n_a)
    iou_b = np.zeros(table.n_b)
    np.maximum.at(iou_a, table.pair_a, iou)
    np.maximum.at(iou_b, table.pair_b, iou)
    return iou_a, iou_b


def iou_bins(iou) -> np.ndarray:
    """Bin of each IoU: 0 below 0.25, 1 below 0.5, 2 below 0.75, 3 from 0.75.

    >>> iou_bins([0.0, 0.25, 0.6, 1.0]).tolist()
    [0, 1, 2, 3]
    """
    return np.digitize(np.asarray(iou, dtype=float), IOU_BINS)


def legend() -> list[tuple[str, tuple[float, float, float, float]]]:
    """Words and colour of each bin, best first (as a legend lists them top down).

    >>> [text for text, _ in legend()]
    ['best IoU ≥ 0.75', '0.5 – 0.75', '0.25 – 0.5', '< 0.25 (or no partner)']
    """
    edges = ("0", *map(_number, IOU_BINS), "1")
    texts = [f"{lo} – {hi}" for lo, hi in zip(edges[:-1], edges[1:])]
    texts[0] = f"< {edges[1]} (or no partner)"
    texts[-1] = f"best IoU ≥ {edges[-2]}"
    return list(zip(texts, BIN_COLORS))[::-1]


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True, eq=False)
class ObjectIoU:
    """Every object of A and of B: its best IoU and its review group.

    Attributes
    ----------
    ids_a, ids_b : ndarray of uint64
        Ids, increasing (as in the overlap table).
    iou_a, iou_b : ndarray of float64
        Best IoU of each (see :func:`best_ious`).
    group_a, group_b : ndarray of int64
        Index of each object's review group.
    """

    ids_a: np.ndarray
    ids_b: np.ndarray
    iou_a: np.ndarray
    iou_b: np.ndarray
    group_a: np.ndarray
    group_b: np.ndarray

    def _side(self, side: str):
        if side not in ("A", "B"):
            raise ValueError(f"side must be 'A' or 'B', got {side!r}")
        return ((self.ids_a, self.iou_a, self.group_a) if side == "A"
                else (self.ids_b, self.iou_b, self.group_b))

    def group_of(self, side: str, label: int) -> int | None:
        """Index of the review group of object ``label`` of ``side`` ("A" or "B").

        Returns
        -------
        int or None
            None when ``side`` has no object ``label``.
        """
        ids, _, groups = self._side(side)
        if label <= 0 or not ids.size:
            return None
        k = int(np.searchsorted(ids, np.uint64(label)))
        if k == ids.size or int(ids[k]) != int(label):
            return None
        return int(groups[k])

    def colors(self, side: str) -> tuple[np.ndarray, np.ndarray]:
        """Ids of ``side`` and the RGBA of each, by its IoU bin.

        Returns
        -------
        ids : ndarray of uint64, shape (n,)
        rgba : ndarray of float32, shape (n, 4)
        """
        ids, iou, _ = self._side(side)
        return ids, np.asarray(BIN_COLORS, dtype=np.float32)[iou_bins(iou)]


def object_ious(table: OverlapTable, groups: Sequence[Group]) -> ObjectIoU:
    """Best IoU and review group of every object (see :class:`ObjectIoU`).

    Parameters
    ----------
    table : OverlapTable
    groups : sequence of Group
        :func:`.pairing.review_groups` of ``table``.

    Examples
    --------
    >>> from napari_mask_compare.pairing import overlap_table, review_groups
    >>> a = np.array([[1, 1, 0, 2]])
    >>> b = np.array([[3, 0, 0, 9]])
    >>> table = overlap_table(a, b)
    >>> objects = object_ious(table, review_groups(table))
    >>> objects.group_of("B", 9), objects.group_of("B", 5), objects.colors("A")[1][:, 0].tolist()
    (1, None, [1.0, 0.30000001192092896])
    """
    iou_a, iou_b = best_ious(table)
    group_a, _, group_b, _ = object_groups(table, groups)
    return ObjectIoU(table.ids_a, table.ids_b, iou_a, iou_b, group_a, group_b)
