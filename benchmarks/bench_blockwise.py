"""Blockwise overlap table on zarr arrays: time and memory against the read limit and in memory.

For a pair of zarr arrays (A and B, same shape), each measurement in a fresh subprocess:

- ``read``: read and decompress both arrays once, block by block, on the engine (the
  floor: every block task reads its chunks and returns nothing);
- ``table``: ``overlap_table(da.from_zarr(A), da.from_zarr(B))`` on the engine (blockwise);
- ``memory``: the in-memory path, ``overlap_table`` on numpy arrays (loaded before the
  timer starts; the load is timed apart).

Engines: ``threads`` (dask's local scheduler, the default) and ``workers=N`` (a
LocalCluster of N processes, start-up untimed). Peak memory is the largest sum of the
resident sets of the process and all its descendants (LocalCluster workers included),
sampled every 20 ms. CPU seconds are those of the measuring process (all its threads; not
LocalCluster workers): on a shared machine they say more than wall seconds. Imports are not
timed (numba included: the table kernel imports it on first use). Variants are interleaved
round by round; medians are reported.

    python benchmarks/bench_blockwise.py --synthetic full            # 128x1024x1024 uint32
    python benchmarks/bench_blockwise.py --a A.zarr --b B.zarr --rounds 3 --workers 2

``--synthetic NAME`` writes the pair of ``synthetic.py`` as uint32 zarr arrays
(``--chunks 32,256,256``) into benchmarks/.data/ once.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

GIB = 1 << 30


# --------------------------------------------------------------------------- data


def synthetic_zarr(name: str, *, chunks: tuple[int, ...]) -> tuple[Path, Path]:
    """The synthetic pair ``name`` as uint32 zarr arrays (written once, then reused)."""
    import numpy as np
    import tifffile
    import zarr

    from synthetic import DEFAULT_CACHE, ensure_pair

    path_a, path_b, _ = ensure_pair(name)
    tag = "x".join(map(str, chunks))
    out = [DEFAULT_CACHE / f"{p.stem}_u32_c{tag}.zarr" for p in (path_a, path_b)]
    for tif, path in zip((path_a, path_b), out):
        if not (path / "zarr.json").exists():
            data = tifffile.imread(tif).astype(np.uint32) * np.uint32(7919)  # spread ids out
            z = zarr.create_array(str(path), shape=data.shape, chunks=chunks, dtype=np.uint32,
                                  overwrite=True)
            z[:] = data
    return out[0], out[1]


# --------------------------------------------------------------------------- one measurement


def _child(variant: str, path_a: str, path_b: str, workers: int,
           scheduler: str | None = None) -> dict:
    """Run one variant in this process; return wall and CPU seconds and what it found."""
    import dask.array as da
    import zarr

    from napari_mask_compare import _tally, engine, pairing

    del _tally  # imported (numba) before the timer: imports stay untimed

    za, zb = zarr.open_array(path_a, mode="r"), zarr.open_array(path_b, mode="r")
    a, b = da.from_zarr(za), da.from_zarr(zb)
    options = {"workers": workers} if workers else {}
    with engine.Engine(scheduler=scheduler, **options):
        if variant == "memory":
            start = time.perf_counter()
            a, b = za[...], zb[...]
            loaded = time.perf_counter() - start
            start, cpu = time.perf_counter(), time.process_time()
            table = pairing.overlap_table(a, b)
            return {"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu,
                    "load_seconds": loaded, "pairs": len(table.intersection)}
        start, cpu = time.perf_counter(), time.process_time()
        if variant == "read":
            engine.compute(*(x.map_blocks(_nothing, dtype=x.dtype,
                                          chunks=tuple((1,) * len(c) for c in x.chunks))
                             for x in (a, b)), desc="read")
            return {"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu}
        table = pairing.overlap_table(a, b)
        return {"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu,
                "pairs": len(table.intersection), "n_a": table.n_a, "n_b": table.n_b}


def _nothing(block):
    """A block read and dropped: one voxel out."""
    import numpy as np

    return np.zeros((1,) * block.ndim, dtype=block.dtype)


def measure(variant: str, path_a: Path, path_b: Path, *, workers: int) -> dict:
    """One variant in a fresh subprocess: its result plus the peak RSS of its process tree."""
    from bench_bigdata import run_tree

    code = (f"import sys, json; sys.path.insert(0, {str(HERE)!r}); import bench_blockwise as b; "
            f"print(json.dumps(b._child({variant!r}, {str(path_a)!r}, {str(path_b)!r}, "
            f"{workers})))")
    run = run_tree([sys.executable, "-c", code])
    if run["returncode"]:
        raise RuntimeError(f"{variant} failed with exit code {run['returncode']}")
    result = json.loads(run["stdout"].strip().splitlines()[-1])
    result["peak_gib"] = run["peak_gib"]
    return result


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path)
    parser.add_argument("--b", type=Path)
    parser.add_argument("--synthetic", choices=("small", "full"))
    parser.add_argument("--chunks", default="32,256,256")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0,
                        help="also measure on a LocalCluster of this many processes")
    parser.add_argument("--no-memory", action="store_true", help="skip the in-memory variant")
    args = parser.parse_args(argv)
    if args.synthetic:
        path_a, path_b = synthetic_zarr(args.synthetic,
                                        chunks=tuple(int(c) for c in args.chunks.split(",")))
    elif args.a and args.b:
        path_a, path_b = args.a, args.b
    else:
        parser.error("give --a and --b, or --synthetic")
    engines = [0] + ([args.workers] if args.workers else [])
    variants = [(v, w) for w in engines for v in ("read", "table")]
    if not args.no_memory:
        variants.append(("memory", 0))
    runs: dict = {v: [] for v in variants}
    for round_ in range(args.rounds):
        order = variants[round_ % len(variants):] + variants[:round_ % len(variants)]
        for variant, workers in order:
            result = measure(variant, path_a, path_b, workers=workers)
            runs[variant, workers].append(result)
            print(f"round {round_}: {variant:6} {_engine(workers):12} {result['seconds']:7.2f} s "
                  f"(CPU {result['cpu']:.2f} s) peak {result['peak_gib']:.2f} GiB",
                  file=sys.stderr)
    print(f"\n{path_a.name} | {path_b.name}, {args.rounds} rounds (medians)\n")
    print("| variant | engine | seconds | CPU seconds (this process) "
          "| peak GiB (process + workers) |\n|---|---|---:|---:|---:|")
    median = {key: statistics.median(r["seconds"] for r in rs) for key, rs in runs.items()}
    cpu = {key: statistics.median(r["cpu"] for r in rs) for key, rs in runs.items()}
    for (variant, workers), rs in runs.items():
        peak = statistics.median(r["peak_gib"] for r in rs)
        print(f"| {variant} | {_engine(workers)} | {median[variant, workers]:.2f} | "
              f"{cpu[variant, workers]:.2f} | {peak:.2f} |")
    print()
    for workers in engines:
        ratio = median["table", workers] / median["read", workers]
        print(f"- table / read limit ({_engine(workers)}): {ratio:.2f}"
              + ("" if workers else f" (CPU: {cpu['table', 0] / cpu['read', 0]:.2f})"))
        if ("memory", 0) in median:
            print(f"- blockwise table ({_engine(workers)}) / in-memory table: "
                  f"{median['table', workers] / median['memory', 0]:.2f}")
    return 0


def _engine(workers: int) -> str:
    return f"LocalCluster({workers})" if workers else "threads"


if __name__ == "__main__":
    sys.exit(main())
