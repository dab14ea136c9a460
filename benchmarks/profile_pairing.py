"""Where the time of pairing and of ``mask-compare merge`` goes (run on demand).

    python benchmarks/profile_pairing.py [--size full|small] [--out benchmarks/results]

1. ``overlap_table`` with the default thread pool and with one worker (parallel efficiency);
2. line_profiler over the table's helpers, the scan run in the main thread (line_profiler
   sees only the thread that enabled it; the compiled kernel is one line);
3. cProfile over the whole ``mask-compare merge`` (main thread: the pool's work shows as
   waiting in ``overlap_table``).

Writes ``profile_<size>.txt`` beside the benchmark results.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synthetic import DEFAULT_CACHE, ensure_pair  # noqa: E402


def _best_of(fn, n=3):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), sorted(times)[len(times) // 2]


def _serial_scan(pairing, a, b):
    """The scan of ``overlap_table`` (the compiled kernel), in this thread, and the table."""
    return pairing._table_from_entries(pairing._tally(a, b).entries(sort=False),
                                       shape=a.shape)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="full")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)

    import tifffile
    from line_profiler import LineProfiler
    from skimage.metrics import contingency_table

    from napari_mask_compare import cli, pairing

    path_a, path_b, _ = ensure_pair(args.size, cache=args.cache)
    a, b = tifffile.imread(path_a), tifffile.imread(path_b)
    report = io.StringIO()

    def say(*parts):
        print(*parts)
        print(*parts, file=report)

    say(f"# profile of pairing and merge, {args.size} pair {a.shape}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()[0]:.1f}")

    # 1. threads vs one worker, and the pieces
    cpu_count = os.cpu_count
    best, median = _best_of(lambda: pairing.overlap_table(a, b))
    say(f"overlap_table, {cpu_count()} workers: best {best:.2f} s, median {median:.2f} s")
    os.cpu_count = lambda: 1
    try:
        best1, median1 = _best_of(lambda: pairing.overlap_table(a, b))
        best_mm, _ = _best_of(lambda: pairing.overlap_table(
            tifffile.memmap(path_a, mode="r"), tifffile.memmap(path_b, mode="r")))
        say(f"overlap_table, 1 worker, memory-mapped TIFFs (as merge reads them): "
            f"best {best_mm:.2f} s")
        say(f"overlap_table, 1 worker:  best {best1:.2f} s, median {median1:.2f} s "
            f"(parallel speed-up {best1 / best:.2f}x)")
        table = pairing.overlap_table(a, b)
        best_g, _ = _best_of(lambda: pairing.review_groups(table))
        say(f"review_groups: best {best_g:.2f} s ({table.n_a} + {table.n_b} objects, "
            f"{len(table.intersection)} pairs)")
        best_ct, _ = _best_of(lambda: contingency_table(a, b), n=1)
        say(f"skimage contingency_table: {best_ct:.2f} s (one run)")

        # 2. line by line, one worker
        lp = LineProfiler()
        for fn in (pairing.overlap_table, _serial_scan, pairing._table_from_entries,
                   pairing._objects, pairing.review_groups):
            lp.add_function(fn)
        lp.runcall(_serial_scan, pairing, a, b)
        lp.runcall(pairing.overlap_table, a, b)
        lp.runcall(pairing.review_groups, table)
        text = io.StringIO()
        lp.print_stats(stream=text, output_unit=1e-3, stripzeros=True)
        say("\n## line_profiler, one worker (ms)\n")
        say(text.getvalue())
    finally:
        os.cpu_count = cpu_count

    # 3. the whole merge command, in this process
    with tempfile.TemporaryDirectory(dir=args.cache) as tmp:
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.runcall(cli.main, ["merge", str(path_a), str(path_b), "--out", f"{tmp}/out.tif"])
        say(f"\n## cProfile of `mask-compare merge` ({time.perf_counter() - t0:.2f} s with "
            "the profiler on)\n")
        for key in ("cumulative", "tottime"):
            text = io.StringIO()
            pstats.Stats(prof, stream=text).sort_stats(key).print_stats(30)
            say(text.getvalue())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"profile_{args.size}.txt").write_text(report.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
