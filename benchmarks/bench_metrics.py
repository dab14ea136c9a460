"""The metric suite against the pairing and against scikit-image, time and peak memory.

For each synthetic pair (see ``synthetic.py``), in one run, each measurement a
fresh process that loads the pair with ``tifffile.imread`` and times one step:

- ``pairing``: ``overlap_table`` + ``review_groups`` (what every metric starts from);
- ``suite``: the pairing, then ``compare.summarize`` (matching at 9 thresholds,
  pixel scores, DSB AP, VI, adapted Rand, CTC SEG/DET, AJI, Cellpose AP, the
  error taxonomy) and ``suite.object_table``, without boundary metrics: both
  times are reported;
- ``boundary``: the pairing, then ``suite.boundary_metrics`` of every pair
  matched at IoU 0.5;
- ``skimage``: ``skimage.metrics.variation_of_information`` +
  ``adapted_rand_error`` on the same arrays (what a user would otherwise run);
- ``report_before``: the report as it was before the suite (matching, pairs,
  morphology of A and B, association map, plots), the yardstick of the
  boundary metrics' time.

Rounds are interleaved (the order rotates); medians and ratios of medians.

    python benchmarks/bench_metrics.py                 # small + full size, 3 rounds
    python benchmarks/bench_metrics.py --sizes small   # small only

Writes benchmarks/results/metrics.md (the table printed) and metrics.json.
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

from bench_pairing import _write_atomic, machine, run_measured  # noqa: E402
from synthetic import DEFAULT_CACHE, ensure_pair  # noqa: E402

RESULTS = HERE / "results"
VARIANTS = ("pairing", "suite", "boundary", "skimage", "report_before")
LABELS = {
    "pairing": "pairing: overlap_table + review_groups",
    "suite": "metric suite without boundary (after the pairing)",
    "boundary": "boundary metrics of every pair matched at 0.5 (after the pairing)",
    "skimage": "scikit-image variation_of_information + adapted_rand_error",
    "report_before": "the report before the suite (no objects/taxonomy/boundary)",
}


def child(variant: str, path_a: str, path_b: str) -> None:
    """Load the pair, time one step, print one JSON line."""
    import resource

    import tifffile
    from skimage.metrics import adapted_rand_error, variation_of_information

    from napari_mask_compare import measure, report, stats, suite  # noqa: F401 (imported untimed)
    from napari_mask_compare.compare import summarize
    from napari_mask_compare.pairing import overlap_table, review_groups

    a, b = tifffile.imread(path_a), tifffile.imread(path_b)
    out: dict = {}
    t0 = time.perf_counter()  # imports done: only the step is timed
    if variant == "skimage":
        out["vi"] = [float(v) for v in variation_of_information(a, b)]
        out["are"] = float(adapted_rand_error(a, b)[0])
        out["step_s"] = time.perf_counter() - t0
    elif variant == "report_before":
        _report_before(a, b)
        out["step_s"] = time.perf_counter() - t0
    else:
        table = overlap_table(a, b)
        groups = review_groups(table)
        out["pairing_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        if variant == "suite":
            summary = summarize(table, groups=groups)
            suite.object_table(table, groups=groups)
            out.update(vi=[summary["variation_of_information"][k] for k in ("split", "merge")],
                       are=summary["adapted_rand"]["error"])
        elif variant == "boundary":
            out["n_pairs"] = suite.boundary_metrics(table, a, b)["n_pairs"]
        out["step_s"] = time.perf_counter() - t1
    out["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(out))


def _report_before(a, b) -> None:
    """What write_report computed before the metric suite: its time, not its files."""
    from napari_mask_compare import measure, report, suite
    from napari_mask_compare.compare import summarize
    from napari_mask_compare.pairing import overlap_table, review_groups

    table = overlap_table(a, b)
    groups = review_groups(table)
    summary = {key: value for key, value in summarize(table, groups=groups).items()
               if key not in suite.SUITE_KEYS}
    report.pairs_rows(groups)
    measure.measure_objects(a, objects=(table.ids_a, table.bbox_a))
    measure.measure_objects(b, objects=(table.ids_b, table.bbox_b))
    report.association_map(table, a, b, thresh=0.5)
    assert summary["matching"]


def measure(size: str, rounds: int, log) -> dict:
    path_a, path_b, info = ensure_pair(size, cache=DEFAULT_CACHE, log=log)
    runs = {v: [] for v in VARIANTS}
    for k in range(rounds):
        order = VARIANTS[k % len(VARIANTS):] + VARIANTS[:k % len(VARIANTS)]
        for variant in order:
            argv = [sys.executable, __file__, "--child", variant, str(path_a), str(path_b)]
            result = run_measured(argv, limit_gib=22, timeout=3600)
            if result["returncode"] != 0:
                raise SystemExit(f"{variant} failed: {result['stderr']}")
            record = json.loads(result["stdout"].strip().splitlines()[-1])
            runs[variant].append({**record, "wall_s": result["wall_s"],
                                  "peak_rss_kb": result["peak_kb"], "round": k})
            log(f"{size} round {k + 1}/{rounds} {variant}: step {record['step_s']:.2f} s, "
                f"peak {result['peak_kb'] / 2**20:.2f} GiB")
    return {"size": size, "info": info, "runs": runs}


def _median(runs, key) -> float:
    return statistics.median(r[key] for r in runs)


def render(results: list[dict], meta: dict) -> str:
    lines = [f"# Metric suite: {meta['date']}, {meta['nproc']} cores, {meta['cpu']}",
             f"commit {meta['commit']}; medians of {len(results[0]['runs']['pairing'])} "
             "rounds, each a fresh process", ""]
    for result in results:
        runs, info = result["runs"], result["info"]
        pairing = _median(runs["pairing"], "pairing_s")
        suite = _median(runs["suite"], "step_s")
        boundary = _median(runs["boundary"], "step_s")
        skimage = _median(runs["skimage"], "step_s")
        before = _median(runs["report_before"], "step_s")
        n_pairs = runs["boundary"][0]["n_pairs"]
        lines += [
            f"## {result['size']}: {tuple(info['shape'])}, {info['n_a']} / {info['n_b']} objects",
            "", "| step | median s | peak RSS GiB | ratio |", "|---|---:|---:|---:|",
            f"| {LABELS['pairing']} | {pairing:.2f} | "
            f"{_median(runs['pairing'], 'peak_rss_kb') / 2**20:.2f} | 1 |",
            f"| {LABELS['suite']} | {suite:.2f} | "
            f"{_median(runs['suite'], 'peak_rss_kb') / 2**20:.2f} | "
            f"**{(pairing + suite) / pairing:.2f}x** the pairing alone (target <= 2x) |",
            f"| {LABELS['skimage']} | {skimage:.2f} | "
            f"{_median(runs['skimage'], 'peak_rss_kb') / 2**20:.2f} | "
            f"suite incl. pairing **{skimage / (pairing + suite):.1f}x faster** |",
            f"| {LABELS['boundary']} ({n_pairs} pairs) | {boundary:.2f} | "
            f"{_median(runs['boundary'], 'peak_rss_kb') / 2**20:.2f} | "
            f"**{boundary / before:.2f}x** the report before (target <= 1x) |",
            f"| {LABELS['report_before']} | {before:.2f} | "
            f"{_median(runs['report_before'], 'peak_rss_kb') / 2**20:.2f} | |",
            "",
        ]
        vi_ours, vi_sk = runs["suite"][0]["vi"], runs["skimage"][0]["vi"]
        lines.append(f"Same numbers: VI (split, merge) ours {vi_ours}, scikit-image {vi_sk}; "
                     f"adapted Rand error ours {runs['suite'][0]['are']}, scikit-image "
                     f"{runs['skimage'][0]['are']}.")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,full")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "A", "B"))
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0

    def log(text):
        print(text, file=sys.stderr, flush=True)

    results = [measure(size, args.rounds, log) for size in args.sizes.split(",")]
    meta = machine(argparse.Namespace(limit_gib=22))
    text = render(results, meta)
    print(text)
    suffix = "" if args.sizes == "small,full" else "_" + args.sizes.replace(",", "_")
    _write_atomic(RESULTS / f"metrics{suffix}.md", text + "\n")
    _write_atomic(RESULTS / f"metrics{suffix}.json",
                  json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
