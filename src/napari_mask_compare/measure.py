"""Per-object morphology and property filters.

Every object is measured on its bounding-box crop (boxes from
:func:`.pairing.overlap_table`): the volume is scanned once to find the
objects, never once per object. Ids may be huge and non-sequential.

Measures, in physical units from the voxel size:

- all: ``npixels``, ``bbox_diameter`` (diagonal of the bounding box),
  ``centroid-k`` (voxel index coordinates, like napari's data coordinates),
  ``bbox-k`` (starts then exclusive stops, like ``regionprops_table``);
- 2D: ``area``, ``perimeter`` (length of the marching-squares contour at 0.5,
  holes included), ``circularity`` = 4 pi area / perimeter**2, ``elongation``
  = major / minor axis of the inertia ellipse (``regionprops``);
- 3D: ``volume``, ``surface_area`` (marching cubes at 0.5 and
  ``mesh_surface_area``), ``sphericity`` = pi**(1/3) (6 volume)**(2/3) / surface_area.

Contours of voxel masks follow the staircase: a digital disk has circularity
about 0.9 to 0.95 and a digital ball sphericity about 0.91 to 0.92 rather than
1; a square's perimeter is 4 n - 1.2 and a cube's area is 6 n**2 less a few
percent (chamfered edges). Compare objects measured the same way.

No Qt, no napari.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._arrays import voxel_spacing
from .labels import labels_dtype

__all__ = [
    "OPERATORS",
    "FilterResult",
    "evaluate_filter",
    "filter_labels",
    "find_objects",
    "measure_objects",
    "parse_rules",
    "property_names",
    "remove_objects",
]

#: Comparison operators of filter conditions.
OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
             "==": operator.eq, "!=": operator.ne}


# --------------------------------------------------------------------------- objects


def find_objects(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids, voxel counts and bounding boxes of the objects of a label image.

    Parameters
    ----------
    labels : ndarray of int, shape (y, x) or (z, y, x)

    Returns
    -------
    ids : ndarray of uint64, shape (n,)
        Sorted non-zero ids.
    sizes : ndarray of int64, shape (n,)
    bboxes : ndarray of int64, shape (n, 2 * ndim)
        Starts then exclusive stops.

    Examples
    --------
    >>> ids, sizes, boxes = find_objects(np.array([[0, 9, 9], [4, 0, 9]]))
    >>> ids.tolist(), sizes.tolist(), boxes.tolist()
    ([4, 9], [1, 3], [[1, 0, 2, 1], [0, 1, 2, 3]])
    """
    from .pairing import overlap_table

    table = overlap_table(labels, labels)
    return table.ids_a, table.sizes_a, table.bbox_a


def property_names(ndim: int) -> tuple[str, ...]:
    """Columns of :func:`measure_objects` for 2D or 3D labels, in order.

    >>> property_names(2)[:7]
    ('label', 'npixels', 'area', 'bbox_diameter', 'perimeter', 'circularity', 'elongation')
    """
    if ndim == 2:
        shape = ("area", "bbox_diameter", "perimeter", "circularity", "elongation")
    elif ndim == 3:
        shape = ("volume", "bbox_diameter", "surface_area", "sphericity")
    else:
        raise ValueError(f"labels must be 2D or 3D, got {ndim} dimensions")
    return (("label", "npixels") + shape + tuple(f"centroid-{k}" for k in range(ndim))
            + tuple(f"bbox-{k}" for k in range(2 * ndim)))


def measure_objects(
    labels: np.ndarray,
    *,
    voxel_size: Sequence[float] | None = None,
    objects: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Morphology of every object, measured on its bounding-box crop.

    Parameters
    ----------
    labels : ndarray of int, shape (y, x) or (z, y, x)
        0 is background.
    voxel_size : sequence of float, optional
        Spacing per axis, (y, x) or (z, y, x); ones by default.
    objects : (ids, bboxes), optional
        Ids (shape (n,)) and boxes (shape (n, 2 * ndim), starts then stops)
        of the objects to measure, e.g. ``(table.ids_a, table.bbox_a)`` of an
        :class:`.pairing.OverlapTable`; found with :func:`find_objects` when
        not given.

    Returns
    -------
    dict of str to ndarray, each shape (n,)
        Columns :func:`property_names` (``labels.ndim``), rows in the order of
        the ids. Undefined ratios (a one-pixel object's circularity, a line's
        minor axis) are NaN or inf.

    Examples
    --------
    >>> labels = np.zeros((6, 8), np.uint16)
    >>> labels[1:4, 1:7] = 5
    >>> props = measure_objects(labels, voxel_size=(0.5, 0.5))
    >>> props["label"].tolist(), props["npixels"].tolist(), props["area"].tolist()
    ([5], [18], [4.5])
    >>> props["centroid-0"].tolist(), props["bbox-3"].tolist()
    ([2.0], [7])
    """
    labels = np.asarray(labels)
    ndim = labels.ndim
    names = property_names(ndim)
    spacing = voxel_spacing(voxel_size, ndim)
    if objects is None:
        ids, _, bboxes = find_objects(labels)
    else:
        ids, bboxes = np.asarray(objects[0]), np.asarray(objects[1], dtype=np.int64)
        if bboxes.shape != (len(ids), 2 * ndim):
            raise ValueError(f"bboxes must have shape ({len(ids)}, {2 * ndim}), "
                             f"got {bboxes.shape}")
    columns = {name: np.empty(len(ids), dtype=np.float64) for name in names}
    columns["label"] = np.asarray(ids, dtype=np.uint64)
    measure = _measure_2d if ndim == 2 else _measure_3d
    for i, (label, box) in enumerate(zip(ids.tolist(), bboxes.tolist())):
        lo, hi = box[:ndim], box[ndim:]
        mask = labels[tuple(map(slice, lo, hi))] == label
        if not mask.any():
            raise ValueError(f"object {label} is not in labels (in its box {box})")
        for name, value in _measure_common(mask, lo, spacing).items():
            columns[name][i] = value
        for name, value in measure(mask, spacing).items():
            columns[name][i] = value
    if ndim == 2:
        columns["elongation"] = _elongation(labels, ids, spacing)
    columns["npixels"] = columns["npixels"].astype(np.int64)
    for k in range(2 * ndim):
        columns[f"bbox-{k}"] = bboxes[:, k].astype(np.int64) if len(ids) else np.empty(
            0, np.int64)
    return {name: columns[name] for name in names}


def _measure_common(mask: np.ndarray, lo: Sequence[int], spacing) -> dict:
    """npixels, physical size, bbox diameter and centroid of one object's crop.

    Parameters
    ----------
    mask : ndarray of bool, shape of the object's bounding box
    lo : sequence of int
        The box's start in the full image.
    """
    coords = np.nonzero(mask)
    n = len(coords[0])
    out = {"npixels": n,
           "area" if mask.ndim == 2 else "volume": n * math.prod(spacing),
           "bbox_diameter": math.hypot(*(s * e for s, e in zip(spacing, mask.shape)))}
    for k, (c, offset) in enumerate(zip(coords, lo)):
        out[f"centroid-{k}"] = c.mean() + offset
    return out


def _measure_2d(mask: np.ndarray, spacing) -> dict:
    """Perimeter and circularity of one 2D object (its elongation: :func:`_elongation`).

    Parameters
    ----------
    mask : ndarray of bool, shape (h, w)
    """
    from skimage.measure import find_contours

    padded = np.pad(mask, 1).astype(np.float32)
    perimeter = sum(
        float(np.sqrt(((np.diff(contour, axis=0) * spacing) ** 2).sum(axis=1)).sum())
        for contour in find_contours(padded, 0.5)
    )
    area = float(mask.sum()) * math.prod(spacing)
    return {
        "perimeter": perimeter,
        "circularity": 4 * math.pi * area / perimeter**2 if perimeter > 0 else math.nan,
    }


def _elongation(labels: np.ndarray, ids: np.ndarray, spacing) -> np.ndarray:
    """Major / minor axis of the inertia ellipse of each object, in one ``regionprops_table``.

    Parameters
    ----------
    labels : ndarray of int, shape (y, x)
    ids : ndarray of int, shape (n,)
        Each present in ``labels``, in any order.

    Returns
    -------
    ndarray of float64, shape (n,)
        inf for a line (no minor axis), NaN for a point.
    """
    from skimage.measure import regionprops_table

    distinct, row = np.unique(ids, return_inverse=True)
    props = regionprops_table(_numbered(labels, distinct), spacing=spacing,
                              properties=("axis_major_length", "axis_minor_length"))
    major, minor = props["axis_major_length"][row], props["axis_minor_length"][row]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(minor > 1e-12, major / minor, np.where(major > 1e-12, math.inf, math.nan))


def _numbered(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``labels`` with the objects ``ids`` numbered 1..n in that order, every other voxel 0.

    ``labels`` itself when its objects already are 1..n. Ids may be up to
    2**32 - 1, and ``regionprops`` keeps a slot for every id up to the largest.

    Parameters
    ----------
    labels : ndarray of int, any shape
    ids : ndarray of int, shape (n,)
        Sorted, distinct, each present in ``labels``.

    Returns
    -------
    ndarray of int, shape ``labels.shape``
    """
    n = len(ids)
    top = int(labels.max(initial=0))
    if top == n and np.array_equal(ids, np.arange(1, n + 1)):
        return labels
    number = np.arange(1, n + 1, dtype=labels_dtype(n))
    if top < 2 * labels.size:  # a table by id
        lut = np.zeros(top + 1, dtype=number.dtype)
        lut[np.asarray(ids, dtype=np.int64)] = number
        return lut[labels]
    present, inverse = np.unique(labels, return_inverse=True)
    lut = np.zeros(len(present), dtype=number.dtype)
    lut[np.searchsorted(present, ids)] = number
    return lut[inverse].reshape(labels.shape)


def _measure_3d(mask: np.ndarray, spacing) -> dict:
    """Surface area (marching cubes) and sphericity of one 3D object.

    Parameters
    ----------
    mask : ndarray of bool, shape (d, h, w)
    """
    from skimage.measure import marching_cubes, mesh_surface_area

    padded = np.pad(mask, 1).astype(np.float32)
    verts, faces, _, _ = marching_cubes(padded, 0.5, spacing=spacing)
    surface = float(mesh_surface_area(verts, faces))
    volume = float(mask.sum()) * math.prod(spacing)
    sphericity = math.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / surface if surface else math.nan
    return {"surface_area": surface, "sphericity": sphericity}


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class Condition:
    """``property op value``, e.g. ``Condition("npixels", "<", 50)``."""

    prop: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.prop} {self.op} {self.value:g}"


@dataclass(frozen=True)
class FilterResult:
    """Which objects a filter removes, and why.

    Attributes
    ----------
    label : ndarray of uint64, shape (n,)
        Object ids, in the order of the measured table.
    removed : ndarray of bool, shape (n,)
        True when all the conditions of at least one rule hold.
    met : tuple of tuple of str, length n
        Per object, the conditions that hold for it (``"npixels < 50"``),
        in rule order; an object marked Correct may meet some of them.
    rules : tuple of tuple of Condition
        The rules, normalised: an object is removed if any rule holds, and a
        rule holds if all its conditions do.
    """

    label: np.ndarray
    removed: np.ndarray
    met: tuple[tuple[str, ...], ...]
    rules: tuple[tuple[Condition, ...], ...]

    @property
    def removed_ids(self) -> np.ndarray:
        """Ids of the removed objects, shape (n_removed,)."""
        return self.label[self.removed]

    def rows(self) -> list[dict]:
        """One dict per object: ``label``, ``status`` ("Removed" or "Correct"), ``conditions``."""
        return [{"label": int(label), "status": "Removed" if removed else "Correct",
                 "conditions": "; ".join(met)}
                for label, removed, met in zip(self.label.tolist(), self.removed.tolist(),
                                               self.met)]


def _normalize_rules(rules, names: Sequence[str]) -> tuple[tuple[Condition, ...], ...]:
    """Rules as a tuple of groups of conditions, checked against the column names.

    A rule is a sequence of ``(property, op, value)``; a bare condition
    counts as a rule of its own.
    """
    if isinstance(rules, str):
        raise TypeError("rules must be a list of conditions, not a string: see parse_rules")
    groups = []
    for rule in rules:
        if len(rule) == 3 and isinstance(rule[0], str):
            rule = [rule]
        group = []
        for condition in rule:
            prop, op, value = condition
            if prop not in names:
                raise ValueError(f"unknown property {prop!r}; known: {', '.join(names)}")
            if op not in OPERATORS:
                raise ValueError(f"unknown operator {op!r}; known: {' '.join(OPERATORS)}")
            group.append(Condition(prop, op, float(value)))
        if not group:
            raise ValueError("a rule needs at least one condition")
        groups.append(tuple(group))
    return tuple(groups)


def evaluate_filter(props: dict[str, np.ndarray], rules) -> FilterResult:
    """Mark objects Removed when any rule holds, Correct otherwise.

    Parameters
    ----------
    props : dict of str to ndarray, each shape (n,)
        From :func:`measure_objects`; needs a ``label`` column.
    rules : sequence of rules
        A rule is a sequence of conditions ``(property, op, value)`` that must
        all hold (AND); the rules are alternatives (OR). A bare condition is a
        rule of one condition. Operators: :data:`OPERATORS`. NaN meets no
        condition but ``!=``.

    Returns
    -------
    FilterResult

    Examples
    --------
    >>> props = {"label": np.array([1, 2, 3]), "npixels": np.array([10, 150, 900]),
    ...          "circularity": np.array([0.9, 0.3, 0.2])}
    >>> result = evaluate_filter(props, [("npixels", "<", 50),
    ...                                  [("circularity", "<", 0.5), ("npixels", "<", 200)]])
    >>> for row in result.rows():
    ...     print(row["label"], row["status"], row["conditions"], sep=" | ")
    1 | Removed | npixels < 50; npixels < 200
    2 | Removed | circularity < 0.5; npixels < 200
    3 | Correct | circularity < 0.5
    """
    if "label" not in props:
        raise ValueError("props needs a 'label' column")
    groups = _normalize_rules(rules, list(props))
    n = len(props["label"])
    removed = np.zeros(n, dtype=bool)
    unique = list(dict.fromkeys(c for group in groups for c in group))
    holds = {c: OPERATORS[c.op](np.asarray(props[c.prop], dtype=np.float64), c.value)
             for c in unique}
    for group in groups:
        removed |= np.logical_and.reduce([holds[c] for c in group])
    met = tuple(tuple(str(c) for c in unique if holds[c][i]) for i in range(n))
    return FilterResult(np.asarray(props["label"], dtype=np.uint64), removed, met, groups)


def parse_rules(text: str) -> list[list[tuple[str, str, float]]]:
    """Rules from one line of text: conditions joined by ``and``, rules by ``or``.

    Only that flat form (OR of ANDs), no parentheses. ``;`` also separates rules.

    Examples
    --------
    >>> parse_rules("npixels < 50 or circularity < 0.5 and npixels < 200")
    [[('npixels', '<', 50.0)], [('circularity', '<', 0.5), ('npixels', '<', 200.0)]]
    """
    rules = []
    for part in re.split(r"\s+or\s+|;", text.strip(), flags=re.IGNORECASE):
        if not part.strip():
            continue
        rule = []
        for condition in re.split(r"\s+and\s+", part.strip(), flags=re.IGNORECASE):
            match = re.fullmatch(r"\s*([A-Za-z_][\w-]*)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*",
                                 condition)
            if match is None:
                raise ValueError(f"cannot read condition {condition.strip()!r}: "
                                 "expected 'property op number', e.g. 'npixels < 50'")
            prop, op, value = match.groups()
            try:
                rule.append((prop, op, float(value)))
            except ValueError:
                raise ValueError(f"{value!r} in {condition.strip()!r} is not a number") from None
        rules.append(rule)
    if not rules:
        raise ValueError("no condition given, e.g. 'npixels < 50'")
    return rules


def remove_objects(labels: np.ndarray, ids, *, bboxes: np.ndarray) -> np.ndarray:
    """A copy of ``labels`` without the objects ``ids``.

    Parameters
    ----------
    labels : ndarray of int, shape (y, x) or (z, y, x)
    ids : sequence of int, length n
    bboxes : ndarray of int, shape (n, 2 * ndim)
        The objects' bounding boxes (starts then stops): only those are scanned.

    Returns
    -------
    ndarray, same shape and dtype as ``labels``

    Examples
    --------
    >>> remove_objects(np.array([[1, 2, 2]]), [2], bboxes=np.array([[0, 1, 1, 3]])).tolist()
    [[1, 0, 0]]
    """
    out = np.array(labels, copy=True)
    ndim = out.ndim
    bboxes = np.asarray(bboxes, dtype=np.int64).reshape(-1, 2 * ndim)
    ids = np.asarray(ids).reshape(-1)
    if len(ids) != len(bboxes):
        raise ValueError(f"{len(ids)} ids but {len(bboxes)} boxes")
    for label, box in zip(ids.tolist(), bboxes.tolist()):
        crop = out[tuple(map(slice, box[:ndim], box[ndim:]))]
        crop[crop == label] = 0
    return out


def filter_labels(
    labels: np.ndarray,
    rules,
    *,
    voxel_size: Sequence[float] | None = None,
    props: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, FilterResult]:
    """Measure, filter and remove the objects that a rule marks.

    Parameters
    ----------
    labels : ndarray of int, shape (y, x) or (z, y, x)
    rules : sequence of rules
        See :func:`evaluate_filter`.
    voxel_size : sequence of float, optional
    props : dict, optional
        :func:`measure_objects` of ``labels`` when already computed.

    Returns
    -------
    filtered : ndarray, same shape and dtype as ``labels``
        Removed objects set to 0; the others keep their ids.
    result : FilterResult

    Examples
    --------
    >>> labels = np.array([[1, 1, 1, 0, 2]])
    >>> filtered, result = filter_labels(labels, [("npixels", "<", 2)])
    >>> filtered.tolist(), result.removed_ids.tolist()
    ([[1, 1, 1, 0, 0]], [2])
    """
    labels = np.asarray(labels)
    if props is None:
        props = measure_objects(labels, voxel_size=voxel_size)
    result = evaluate_filter(props, rules)
    boxes = np.stack([props[f"bbox-{k}"] for k in range(2 * labels.ndim)], axis=1)
    filtered = remove_objects(labels, result.removed_ids, bboxes=boxes[result.removed])
    return filtered, result
