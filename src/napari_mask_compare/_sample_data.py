"""npe2 sample data: an image and two masks that disagree in every way a review meets.

Made at run time (numpy and scipy, a fixed seed, no download, no shipped
file). Cells sit one per slot of a regular grid, far enough apart that each
slot is one review group, and each slot plays one scenario:

===========  ==============================  ===================================
kind         mask A (the reference)          mask B
===========  ==============================  ===================================
match        a cell                          the same cell, exact, shifted by
                                             1-2 px, or grown/shrunk by 15 %
split        an elongated cell               cut in two across its long axis
merge        two touching cells              one object over both
complex      two cells (cut across)          two objects (cut lengthwise)
only_a       a dim cell                      nothing
only_b       nothing                         a dim cell
===========  ==============================  ===================================

The image shows the cells of A (and the dim cell of ``only_b``) as blurred
blobs on a noisy background, so A is the better segmentation everywhere.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import colours

__all__ = [
    "SHAPE_2D",
    "SHAPE_3D",
    "VOXEL_SIZE_3D",
    "make_sample_2d",
    "make_sample_3d",
    "synthetic_masks",
]

SHAPE_2D = (256, 256)
SHAPE_3D = (24, 128, 128)
#: The 3D sample's (z, y, x) spacing: slices twice as deep as pixels are wide.
VOXEL_SIZE_3D = (2.0, 1.0, 1.0)
_SEED = 2024

#: Target slot edge per axis, in voxels.
_SLOT = {2: (42, 42), 3: (24, 25, 25)}
_MATCH_VARIANTS = ("exact", "shifted", "resized")
#: Fewest slots for one of each special scenario, twice over, plus 3 matches.
_MIN_SLOTS = 12

LayerDataTuple = tuple[np.ndarray, dict, str]


# --------------------------------------------------------------------------- npe2 commands


def make_sample_2d() -> list[LayerDataTuple]:
    """Two masks (2D): a 256 x 256 image, mask A and mask B.

    Returns
    -------
    list of (data, meta, layer_type)
        ``[image (float32), "mask A" (uint16 labels), "mask B" (uint16 labels)]``,
        each of shape (256, 256).
    """
    return _layers(*synthetic_masks(SHAPE_2D, seed=_SEED), scale=(1.0, 1.0))


def make_sample_3d() -> list[LayerDataTuple]:
    """Two masks (3D): a 24 x 128 x 128 stack, mask A and mask B.

    Returns
    -------
    list of (data, meta, layer_type)
        As :func:`make_sample_2d`, shape (24, 128, 128), with scale
        :data:`VOXEL_SIZE_3D`.
    """
    return _layers(*synthetic_masks(SHAPE_3D, seed=_SEED), scale=VOXEL_SIZE_3D)


def _layers(image, a, b, *, scale) -> list[LayerDataTuple]:
    return [
        (image, {"name": "image", "colormap": colours.IMAGE_COLORMAP, "scale": scale}, "image"),
        (a, {"name": "mask A", "scale": scale}, "labels"),
        (b, {"name": "mask B", "scale": scale}, "labels"),
    ]


# --------------------------------------------------------------------------- generator


def synthetic_masks(
    shape: tuple[int, ...] = SHAPE_2D, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fluorescence-like image and two instance masks that disagree in every way.

    Every review group kind (match, split, merge, complex, only_a, only_b) is
    present for any seed, and matches include shifted and resized
    boundaries; see the module docstring. In 3D, the z axis is sampled
    ``VOXEL_SIZE_3D[0]`` times coarser than y and x (cells are flatter in
    voxels).

    Parameters
    ----------
    shape : tuple of int
        (y, x) or (z, y, x); at least 12 slots of 42 x 42 (2D) or
        24 x 25 x 25 (3D) voxels, e.g. (128, 168) or (24, 75, 100).
    seed : int
        Same seed, same arrays.

    Returns
    -------
    image : ndarray of float32, shape ``shape``
        Blurred cells on a background, plus Gaussian noise.
    a, b : ndarray of uint16, shape ``shape``
        Instance labels, 0 = background. A's ids are 1..n in slot order;
        B's ids are 1..m shuffled.

    Raises
    ------
    ValueError
        When ``shape`` is not 2D/3D or too small for every kind.

    Examples
    --------
    >>> image, a, b = synthetic_masks((24, 75, 100), seed=1)
    >>> image.shape, image.dtype.name, a.dtype.name, int(a.max()), int(b.max())
    ((24, 75, 100), 'float32', 'uint16', 13, 13)
    """
    shape = tuple(int(n) for n in shape)
    boxes = _slot_boxes(shape)
    rng = np.random.default_rng(seed)
    scenarios = _scenarios(len(boxes), rng)
    z_step = VOXEL_SIZE_3D[0] if len(shape) == 3 else 1.0
    a = np.zeros(shape, dtype=np.uint16)
    b = np.zeros(shape, dtype=np.uint16)
    cells = np.zeros(shape, dtype=np.float32)
    next_a = 1
    b_parts = []
    for box, scenario in zip(boxes, scenarios):
        parts_a, parts_b, intensity = _draw_slot(
            tuple(s.stop - s.start for s in box), scenario, rng, z_step=z_step)
        for part in parts_a:
            a[box][part] = next_a
            next_a += 1
        b_parts.extend((box, part) for part in parts_b)
        cells[box] += intensity
    for new_id, (box, part) in zip(rng.permutation(len(b_parts)) + 1, b_parts):
        b[box][part] = new_id
    return _render(cells, rng, z_step=z_step), a, b


def _slot_boxes(shape: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """A regular grid of boxes tiling ``shape``, in C order."""
    if len(shape) not in (2, 3):
        raise ValueError(f"shape must be (y, x) or (z, y, x), got {shape}")
    slot = _SLOT[len(shape)]
    counts = [max(1, n // s) for n, s in zip(shape, slot)]
    if int(np.prod(counts)) < _MIN_SLOTS or any(n < s for n, s in zip(shape, slot)):
        raise ValueError(
            f"shape {shape} holds {int(np.prod(counts))} cells of {slot} voxels; at least "
            f"{_MIN_SLOTS} are needed to show every group kind, e.g. "
            f"{tuple(s * c for s, c in zip(slot, (1,) * (len(shape) - 2) + (3, 4)))}"
        )
    edges = [np.linspace(0, n, c + 1).astype(int) for n, c in zip(shape, counts)]
    grid = np.stack(np.meshgrid(*[np.arange(c) for c in counts], indexing="ij"), -1)
    return [tuple(slice(e[i], e[i + 1]) for e, i in zip(edges, index))
            for index in grid.reshape(-1, len(shape))]


def _scenarios(n_slots: int, rng: np.random.Generator) -> list[str]:
    """One scenario per slot: ``k`` of each disagreement (k >= 2), the rest matches.

    Matches cycle through :data:`_MATCH_VARIANTS` ("match:exact", ...).
    """
    k = max(2, n_slots // 10)
    special = (["split"] * k + ["merge"] * k + ["complex"] * max(1, k - 1)
               + ["only_a"] * k + ["only_b"] * k)
    n_match = n_slots - len(special)
    matches = [f"match:{_MATCH_VARIANTS[i % 3]}" for i in range(n_match)]
    return [str(s) for s in rng.permutation(special + matches)]


def _draw_slot(box_shape, scenario: str, rng: np.random.Generator, *, z_step: float):
    """Masks of A and B and the cells' brightness for one slot.

    Returns
    -------
    parts_a, parts_b : list of ndarray of bool, shape ``box_shape``
        One per object, disjoint within each list.
    intensity : ndarray of float32, shape ``box_shape``
    """
    kind, _, variant = scenario.partition(":")
    elongated = kind in ("split", "merge", "complex")
    cell = _random_cell(box_shape, rng, elongated=elongated, z_step=z_step)
    coords = np.indices(box_shape, dtype=np.float32)
    inside, along, across = cell.frame(coords)
    brightness = rng.uniform(0.25, 0.35) if kind.startswith("only") else rng.uniform(0.6, 1.0)
    doublet = kind in ("merge", "complex")  # two cells in the image, as A says
    intensity = _blob(inside, cell.q(coords), brightness, seam=along if doublet else None)
    first, second = inside & (along < 0), inside & (along >= 0)
    if kind == "match":
        return [inside], [_match_b(cell, coords, variant, rng)], intensity
    if kind == "split":
        b_inside, b_along, _ = cell.moved(rng.uniform(-1, 1, 2)).frame(coords)
        return [inside], [b_inside & (b_along < 0), b_inside & (b_along >= 0)], intensity
    if kind == "merge":
        return [first, second], [cell.scaled(1.05).frame(coords)[0]], intensity
    if kind == "complex":
        return [first, second], [inside & (across < 0), inside & (across >= 0)], intensity
    if kind == "only_a":
        return [inside], [], intensity
    return [], [inside], intensity  # only_b


def _match_b(cell, coords, variant: str, rng: np.random.Generator) -> np.ndarray:
    """B's version of a matched cell: the same, shifted by 1-2 px, or 15 % larger/smaller."""
    if variant == "exact":
        return cell.frame(coords)[0]
    if variant == "shifted":
        direction = rng.normal(size=2)
        offset = direction / np.linalg.norm(direction) * rng.uniform(1.0, 2.0)
        return cell.moved(offset).frame(coords)[0]
    return cell.scaled(rng.choice([0.85, 1.15])).frame(coords)[0]


class _Cell:
    """An ellipse (2D) or ellipsoid (3D) turned in the (y, x) plane, in box voxels.

    Parameters
    ----------
    center : ndarray of float, shape (ndim,)
    radii : ndarray of float, shape (ndim,)
        ``(along, across)`` semi-axes in y/x, preceded by z's in 3D.
    angle : float
        Direction of the long axis in the (y, x) plane, in radians.
    """

    def __init__(self, center, radii, angle: float):
        self.center = np.asarray(center, dtype=np.float32)
        self.radii = np.asarray(radii, dtype=np.float32)
        self.angle = float(angle)

    def moved(self, offset_yx) -> _Cell:
        offset = np.zeros_like(self.center)
        offset[-2:] = offset_yx
        return _Cell(self.center + offset, self.radii, self.angle)

    def scaled(self, factor: float) -> _Cell:
        return _Cell(self.center, self.radii * factor, self.angle)

    def axes(self, coords):
        """Coordinates along and across the long axis (and z) relative to the centre."""
        d = coords - self.center.reshape((-1,) + (1,) * (coords.ndim - 1))
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        along = d[-2] * cos + d[-1] * sin
        across = -d[-2] * sin + d[-1] * cos
        return along, across, (d[0] if len(self.center) == 3 else None)

    def q(self, coords) -> np.ndarray:
        """Squared normalised radius: <= 1 inside."""
        along, across, z = self.axes(coords)
        q = (along / self.radii[-2]) ** 2 + (across / self.radii[-1]) ** 2
        return q if z is None else q + (z / self.radii[0]) ** 2

    def frame(self, coords):
        """(inside, along, across): the cell's mask and its in-plane coordinates."""
        along, across, _ = self.axes(coords)
        return self.q(coords) <= 1, along, across


def _random_cell(box_shape, rng: np.random.Generator, *, elongated: bool,
                 z_step: float) -> _Cell:
    """A cell that fits its box with a margin for shifts, growth and blur."""
    edge = min(box_shape[-2:])
    r = rng.uniform(0.20, 0.26) * edge
    along, across = (1.6 * r, 0.9 * r) if elongated else (r * rng.uniform(1.0, 1.25), r)
    radii = (along, across) if len(box_shape) == 2 else (r / z_step, along, across)
    extent = np.array(radii[:-2] + (along, along)) * 1.15 + 2.5
    half = np.array(box_shape) / 2
    slack = np.maximum(half - extent, 0)
    center = half - 0.5 + rng.uniform(-slack, slack)
    return _Cell(center, radii, rng.uniform(0, np.pi))


def _blob(inside, q, brightness: float, *, seam=None) -> np.ndarray:
    """A cell's brightness: brighter centre, and a dark seam between two touching cells."""
    intensity = np.where(inside, brightness * (0.75 + 0.25 * (1 - np.minimum(q, 1))), 0)
    if seam is not None:
        intensity = intensity * (1 - 0.6 * np.exp(-(seam / 1.2) ** 2))
    return intensity.astype(np.float32)


def _render(cells: np.ndarray, rng: np.random.Generator, *, z_step: float) -> np.ndarray:
    """Blur the cells as a microscope would, add background and noise.

    Returns
    -------
    ndarray of float32, shape ``cells.shape``
    """
    sigma = (1.5,) * cells.ndim if cells.ndim == 2 else (1.5 / z_step, 1.5, 1.5)
    image = ndimage.gaussian_filter(cells, sigma) + 0.08
    image += rng.normal(0.0, 0.03, size=cells.shape).astype(np.float32)
    return np.clip(image, 0, None).astype(np.float32)
