"""A pair of uint32 zarr arrays larger than one machine's comfort: 512 x 2048 x 2048 each.

The full synthetic pair (``synthetic.py``, 128 x 1024 x 1024, ~30k objects) is
tiled 4 x 2 x 2 times, each tile flipped differently (so that neighbouring
tiles do not repeat) and its ids offset by ``tile * 65536`` (so that every
object of the big pair is its own): 16 GiB of labels uncompressed (8 GiB per
side), ~490k objects per side. Written tile by tile (one tile in memory at
once) as zarr v3 arrays with (64, 256, 256) chunks, zstd-compressed.

Usage::

    python benchmarks/bigdata.py              # into benchmarks/.data/big_{a,b}.zarr
    python benchmarks/bigdata.py --force      # regenerate
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import DEFAULT_CACHE, ensure_pair  # noqa: E402

TILES = (4, 2, 2)
CHUNKS = (64, 256, 256)
ID_STEP = 1 << 16


def big_paths(cache: Path = DEFAULT_CACHE) -> tuple[Path, Path]:
    return cache / "big_a.zarr", cache / "big_b.zarr"


def _tile_flips(index: int) -> tuple[int, ...]:
    """Axes flipped in tile ``index`` (its bits)."""
    return tuple(axis for axis in range(3) if index >> axis & 1)


def make_big_pair(*, cache: Path = DEFAULT_CACHE, force: bool = False, log=print) -> dict:
    """Write the big pair (unless there) and return its description."""
    import tifffile
    import zarr

    path_a, path_b = big_paths(cache)
    info_path = cache / "big.json"
    if info_path.exists() and path_a.exists() and path_b.exists() and not force:
        return json.loads(info_path.read_text())
    tile_a_path, tile_b_path, _ = ensure_pair("full", cache=cache, log=log)
    tile_a, tile_b = tifffile.imread(tile_a_path), tifffile.imread(tile_b_path)
    if max(int(tile_a.max()), int(tile_b.max())) >= ID_STEP:
        raise SystemExit("the tile's ids do not fit the id step")
    shape = tuple(n * s for n, s in zip(TILES, tile_a.shape))
    start = time.perf_counter()
    arrays = [zarr.create_array(store=str(path), shape=shape, chunks=CHUNKS, dtype="uint32",
                                fill_value=0, overwrite=True) for path in (path_a, path_b)]
    n_objects = [0, 0]
    for index, origin in enumerate(itertools.product(*(range(n) for n in TILES))):
        region = tuple(slice(o * s, (o + 1) * s) for o, s in zip(origin, tile_a.shape))
        flips = _tile_flips(index)
        for side, (tile, array) in enumerate(zip((tile_a, tile_b), arrays)):
            data = np.flip(tile, flips) if flips else tile
            out = data.astype(np.uint32)
            out[out > 0] += index * ID_STEP
            array[region] = out
            n_objects[side] += len(np.unique(tile)) - 1
        log(f"tile {index + 1}/{np.prod(TILES)} written ({time.perf_counter() - start:.0f} s)")
    info = {"shape": shape, "chunks": CHUNKS, "dtype": "uint32", "n_a": n_objects[0],
            "n_b": n_objects[1], "tiles": TILES, "seconds": round(time.perf_counter() - start, 1),
            "bytes_on_disk": [sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
                              for path in (path_a, path_b)]}
    info_path.write_text(json.dumps(info, indent=1))
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="regenerate")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    print(json.dumps(make_big_pair(cache=args.cache, force=args.force), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
