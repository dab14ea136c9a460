"""Synthetic pair of 3D instance masks for the benchmarks, fast and deterministic.

A holds ellipsoidal cells of varying radii on a jittered grid; B is the same
scene as another segmentation would see it:

- every object's boundary moves: radii scaled by 0.85..1.15 per axis (erosion
  or dilation) and the centre shifted by up to 1.5 voxels per axis;
- ``split``: some A objects are two objects in B (cut by a random plane);
- ``merge``: some pairs of grid neighbours are one object in B;
- ``drop``: some A objects are missing in B (only_a);
- ``extra``: B has some small objects between the cells (mostly only_b).

Objects are stamped into the volume in batches: each batch evaluates its
ellipsoids on a small box around every centre (no per-object pass over the
volume, no Python loop over objects). Ids are non-sequential uint16 (uint32
when more than 65,535 are needed). Overlapping objects: the one stamped later
wins, so touching cells have straight-ish shared boundaries, as in real masks.

Full size (128 x 1024 x 1024, ~30,000 objects) generates in about 10 s on 2 cores.

Usage::

    python benchmarks/synthetic.py            # both sizes into benchmarks/.data/
    python benchmarks/synthetic.py --quick    # the small one only

    >>> from synthetic import make_pair
    >>> a, b, info = make_pair((16, 64, 64), 40, seed=1)
    >>> a.shape, a.dtype.name, info["n_a"] > 30
    ((16, 64, 64), 'uint16', True)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

#: (name, shape, number of objects) of the benchmark pairs.
SIZES = {
    "small": ((32, 512, 512), 2_000),
    "full": ((128, 1024, 1024), 30_000),
}

#: Fractions of A objects that B splits, merges with a neighbour, drops; extra B objects.
FRACTIONS = {"split": 0.03, "merge": 0.03, "drop": 0.02, "extra": 0.02}

DEFAULT_CACHE = Path(__file__).resolve().parent / ".data"

_BATCH = 1024  # objects stamped at once (bounds temporary memory to ~100 MB)


# --------------------------------------------------------------------------- scene


def _grid(shape, n_objects):
    """Cells per axis so that their product is close to ``n_objects``."""
    side = (math.prod(shape) / n_objects) ** (1 / 3)
    return tuple(max(1, round(s / side)) for s in shape)


def make_scene(shape, n_objects, *, seed=0):
    """Objects of A and of B as ellipsoid parameters (no voxels yet).

    Returns
    -------
    dict
        ``a`` and ``b``: dicts of float ``centers`` (n, 3), ``radii`` (n, 3),
        int ``ids`` (n,), and for B ``split_normal`` (n, 3) and ``split_id``
        (n,; 0 when the object is not split); ``info``: counts.
    """
    rng = np.random.default_rng(seed)
    grid = _grid(shape, n_objects)
    spacing = np.array(shape, dtype=np.float64) / grid
    cells = np.stack(np.meshgrid(*[np.arange(g) for g in grid], indexing="ij"), -1).reshape(-1, 3)
    n = len(cells)
    centers = (cells + 0.5) * spacing + rng.uniform(-0.15, 0.15, (n, 3)) * spacing
    radii = rng.uniform(0.40, 0.58, (n, 3)) * spacing
    order = rng.permutation(n)  # stamping order: decides who wins where objects touch
    cells, centers, radii = cells[order], centers[order], radii[order]

    # disjoint roles: split, merge (with its +x neighbour), drop; the rest only move boundaries
    role = np.zeros(n, dtype=np.int8)  # 0 keep, 1 split, 2 merge head, 3 merge tail, 4 drop
    flat_cell = np.ravel_multi_index(cells.T, grid)
    where_cell = np.empty(n, dtype=np.int64)
    where_cell[flat_cell] = np.arange(n)
    heads = np.flatnonzero((cells[:, 2] % 2 == 0) & (cells[:, 2] + 1 < grid[2]))
    heads = rng.choice(heads, min(len(heads), round(FRACTIONS["merge"] * n)), replace=False)
    tails = where_cell[np.ravel_multi_index((cells[heads] + [0, 0, 1]).T, grid)]
    role[heads], role[tails] = 2, 3
    free = np.flatnonzero(role == 0)
    picked = rng.choice(free, round((FRACTIONS["split"] + FRACTIONS["drop"]) * n), replace=False)
    n_split = round(FRACTIONS["split"] * n)
    role[picked[:n_split]], role[picked[n_split:]] = 1, 4

    n_extra = round(FRACTIONS["extra"] * n)
    n_b_objects = n - (role == 3).sum() - (role == 4).sum() + n_split + n_extra
    max_id = max(n, n_b_objects)
    dtype = np.uint16 if 2 * max_id <= 65_535 else np.uint32
    id_pool = np.arange(1, 65_536 if dtype == np.uint16 else 4 * max_id, dtype=np.int64)
    ids_a = rng.choice(id_pool, n, replace=False)
    ids_b_pool = rng.choice(id_pool, n + n_split + n_extra, replace=False)

    # B: same objects, boundaries moved
    keep = role != 4
    b_centers = centers + rng.uniform(-1.5, 1.5, (n, 3))
    b_radii = radii * rng.uniform(0.85, 1.15, (n, 3))
    ids_b = ids_b_pool[:n].copy()
    ids_b[tails] = ids_b[heads]  # merged pairs share one B id
    split_id = np.zeros(n, dtype=np.int64)
    split_id[role == 1] = ids_b_pool[n:n + n_split]
    normals = rng.normal(size=(n, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    # extra objects: small balls at cell corners (between cells), mostly in background
    corners = rng.choice(n, n_extra, replace=False)
    extra_jitter = rng.uniform(-0.05, 0.05, (n_extra, 3))
    extra_centers = (cells[corners] + 1.0 + extra_jitter) * spacing
    extra_centers = np.minimum(extra_centers, np.array(shape) - 1)
    extra_radii = rng.uniform(0.12, 0.2, (n_extra, 3)) * spacing
    b = {
        "centers": np.concatenate([b_centers[keep], extra_centers]),
        "radii": np.concatenate([b_radii[keep], extra_radii]),
        "ids": np.concatenate([ids_b[keep], ids_b_pool[n + n_split:]]),
        "split_id": np.concatenate([split_id[keep], np.zeros(n_extra, dtype=np.int64)]),
        "split_normal": np.concatenate([normals[keep], normals[:n_extra]]),
    }
    a = {"centers": centers, "radii": radii, "ids": ids_a}
    info = {
        "shape": list(shape), "grid": list(grid), "seed": seed, "dtype": np.dtype(dtype).name,
        "planned": {"a_objects": n, "split": int(n_split), "merge_pairs": len(heads),
                    "drop": int((role == 4).sum()), "extra": int(n_extra)},
    }
    return {"a": a, "b": b, "info": info, "dtype": dtype}


# --------------------------------------------------------------------------- voxels


def stamp(shape, objects, *, dtype):
    """Label image of ellipsoids; later objects win where they overlap.

    Parameters
    ----------
    shape : tuple of 3 int
    objects : dict
        ``centers``, ``radii`` (n, 3) float, ``ids`` (n,) int; optional
        ``split_id`` (n,) and ``split_normal`` (n, 3): voxels on the positive
        side of the plane through the centre get ``split_id`` when it is not 0.
    """
    out = np.zeros(shape, dtype=dtype)
    flat = out.reshape(-1)
    centers, radii, ids = objects["centers"], objects["radii"], objects["ids"]
    split_id = objects.get("split_id")
    normals = objects.get("split_normal")
    half = np.ceil(radii.max(axis=0)).astype(int) + 1
    offsets = [np.arange(-h, h + 1) for h in half]  # box per axis
    strides = np.array([shape[1] * shape[2], shape[2], 1])
    for lo in range(0, len(ids), _BATCH):
        sl = slice(lo, lo + _BATCH)
        c, r = centers[sl], radii[sl]
        base = np.rint(c).astype(np.int64)
        # per axis: coordinate, validity and squared normalised distance, shape (k, box_axis)
        coord = [base[:, d, None] + offsets[d][None, :] for d in range(3)]
        rel = [(coord[d] - c[:, d, None]) for d in range(3)]
        q = [((rel[d] / r[:, d, None]) ** 2).astype(np.float32) for d in range(3)]
        ok = [(coord[d] >= 0) & (coord[d] < shape[d]) for d in range(3)]
        inside = (q[0][:, :, None, None] + q[1][:, None, :, None] + q[2][:, None, None, :]) <= 1
        inside &= ok[0][:, :, None, None] & ok[1][:, None, :, None] & ok[2][:, None, None, :]
        index = (coord[0][:, :, None, None] * strides[0] + coord[1][:, None, :, None] * strides[1]
                 + coord[2][:, None, None, :])
        label = np.broadcast_to(ids[sl][:, None, None, None], inside.shape)
        if split_id is not None and split_id[sl].any():
            n = normals[sl]
            side = (rel[0][:, :, None, None] * n[:, 0, None, None, None]
                    + rel[1][:, None, :, None] * n[:, 1, None, None, None]
                    + rel[2][:, None, None, :] * n[:, 2, None, None, None]) > 0
            second = split_id[sl][:, None, None, None]
            label = np.where(side & (second != 0), second, label)
        # objects of a batch are written in order: numpy fancy assignment keeps the last write
        flat[index[inside]] = label[inside]
    return out


def make_pair(shape, n_objects, *, seed=0):
    """Generate A and B in memory.

    Returns
    -------
    a, b : ndarray of uint16 (uint32 when ids need it), shape ``shape``
    info : dict
        Parameters, planned disagreements, objects present and generation time.
    """
    t0 = time.perf_counter()
    scene = make_scene(shape, n_objects, seed=seed)
    a = stamp(shape, scene["a"], dtype=scene["dtype"])
    b = stamp(shape, scene["b"], dtype=scene["dtype"])
    info = scene["info"]
    info["n_a"] = int(np.count_nonzero(np.bincount(a.reshape(-1))[1:]))
    info["n_b"] = int(np.count_nonzero(np.bincount(b.reshape(-1))[1:]))
    info["foreground_a"] = float(np.count_nonzero(a)) / a.size
    info["seconds"] = round(time.perf_counter() - t0, 2)
    return a, b, info


# --------------------------------------------------------------------------- cache


def pair_paths(name, *, cache=DEFAULT_CACHE, seed=0):
    """Paths of the cached A, B TIFFs and info JSON for size ``name``."""
    shape, n = SIZES[name]
    stem = f"{name}_{'x'.join(map(str, shape))}_n{n}_seed{seed}"
    cache = Path(cache)
    return cache / f"{stem}_A.tif", cache / f"{stem}_B.tif", cache / f"{stem}.json"


def ensure_pair(name, *, cache=DEFAULT_CACHE, seed=0, force=False, log=print):
    """Generate size ``name`` into ``cache`` unless it is there; return (A path, B path, info)."""
    import tifffile

    from napari_mask_compare._files import atomic_open

    path_a, path_b, path_info = pair_paths(name, cache=cache, seed=seed)
    if not force and path_a.exists() and path_b.exists() and path_info.exists():
        return path_a, path_b, json.loads(path_info.read_text())
    shape, n = SIZES[name]
    log(f"generating {name} pair {shape} with ~{n} objects into {path_a.parent} ...")
    a, b, info = make_pair(shape, n, seed=seed)
    path_a.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for path, data in ((path_a, a), (path_b, b)):
        imagej = data.dtype != np.uint32  # ImageJ hyperstacks have no uint32
        with atomic_open(path) as f:
            tifffile.imwrite(f, data, imagej=imagej, metadata={"axes": "ZYX"})
    info["write_seconds"] = round(time.perf_counter() - t0, 2)
    path_info.write_text(json.dumps(info, indent=2))
    log(f"  {info['n_a']} objects in A, {info['n_b']} in B, generated in {info['seconds']} s, "
        f"written in {info['write_seconds']} s")
    return path_a, path_b, info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the small pair only")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="regenerate even when cached")
    args = parser.parse_args(argv)
    for name in ["small"] if args.quick else list(SIZES):
        ensure_pair(name, cache=args.cache, seed=args.seed, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
