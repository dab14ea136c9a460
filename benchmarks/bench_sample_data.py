"""Speed of the plugin's samples (File > Open Sample): making the 2D and 3D pair (not a test).

The sample opens while the user waits: each is made in well under half a second (the target,
which the tests checked on the clock before; a loaded machine made that check flaky).

Usage::

    python benchmarks/bench_sample_data.py            # best of 5 runs each
    python benchmarks/bench_sample_data.py --repeats 20
"""

from __future__ import annotations

import argparse
import time

from napari_mask_compare._sample_data import make_sample_2d, make_sample_3d

#: Seconds a sample may take (best of the runs).
TARGET_S = 0.5


def best_time(function, *, repeats: int) -> float:
    """The shortest of ``repeats`` wall-clock runs of ``function()``, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    status = 0
    for make in (make_sample_2d, make_sample_3d):
        best = best_time(make, repeats=args.repeats)
        verdict = "ok" if best < TARGET_S else f"SLOWER than the {TARGET_S} s target"
        status |= best >= TARGET_S
        print(f"{make.__name__}: {best * 1000:.0f} ms (best of {args.repeats}): {verdict}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
