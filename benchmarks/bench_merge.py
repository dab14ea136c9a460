"""Merge by lookup tables against a session decided by the policy and skimage: time, peak memory.

Side by side, on a synthetic pair (see ``synthetic.py``), each a fresh process:

- ``load_ct``: load the pair (``tifffile.imread``) and run skimage's
  ``contingency_table``: the yardstick of the issue's target;
- ``session_merge``: load, ``Session.from_masks`` + ``merging.decide_by_policy``
  (policy "a"): the merge in memory as it was;
- ``lut_merge``: load, ``overlap_table`` + ``review_groups`` +
  ``merging.merge_tables`` + ``merging.apply_tables``: the lookup-table merge;
- ``lut_dask``: the same, but ``apply_tables`` on dask arrays of the loaded
  pair (blocks of 32 x 256 x 256, computed into memory): the blockwise path;
- ``cli``: the whole ``mask-compare merge A B --out OUT`` process (lookup tables).

Rounds are interleaved (the order rotates); medians, min – max, CPU time and
peak RSS (``ru_maxrss`` of each child, from ``wait4``) are reported. A check
run first compares, at full size, the session's output and summary with the
lookup tables' (every policy) and prints whether they are identical.

    python benchmarks/bench_merge.py                 # full size, 3 rounds
    python benchmarks/bench_merge.py --size small --repeats 5

Writes benchmarks/results/merge.md (also printed) and merge.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_pairing import _mask_compare, run_measured  # noqa: E402
from synthetic import DEFAULT_CACHE, ensure_pair  # noqa: E402

RESULTS = HERE / "results"

VARIANTS = {
    "load_ct": "load + skimage contingency_table (the yardstick)",
    "session_merge": "load + Session.from_masks + decide_by_policy (old, in memory)",
    "lut_merge": "load + overlap_table + review_groups + merge_tables + apply_tables (new)",
    "lut_dask": "the same, apply_tables on dask blocks of 32×256×256 (computed into memory)",
    "cli": "`mask-compare merge A B --out OUT` (the whole process)",
}
IN_MEMORY = ("session_merge", "lut_merge", "lut_dask")


# --------------------------------------------------------------------------- child side


def child(variant: str, path_a: str, path_b: str, out: str) -> None:
    """Run one variant; print one JSON line of phase times."""
    t_start = time.perf_counter()
    phases = {}
    import tifffile

    a = tifffile.imread(path_a)
    b = tifffile.imread(path_b)
    phases["load"] = time.perf_counter() - t_start

    def timed(name, fn, *args, **kwargs):
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        phases[name] = time.perf_counter() - t0
        return result

    if variant == "load_ct":
        from skimage.metrics import contingency_table

        timed("contingency_table", contingency_table, a, b)
    elif variant == "session_merge":
        from napari_mask_compare.merging import decide_by_policy
        from napari_mask_compare.session import Session

        session = timed("from_masks", Session.from_masks, a, b)
        timed("merge", decide_by_policy, session, policy="a")
        phases["objects"] = len(session.objects)
    elif variant in ("lut_merge", "lut_dask"):
        from napari_mask_compare import merging
        from napari_mask_compare.pairing import overlap_table, review_groups

        table = timed("overlap_table", overlap_table, a, b)
        groups = timed("review_groups", review_groups, table)
        tables = timed("merge_tables", merging.merge_tables, table, groups, policy="a")
        if variant == "lut_dask":
            import dask.array as da

            chunks = (32, 256, 256)[-a.ndim:]
            lazy = merging.apply_tables(da.from_array(a, chunks=chunks),
                                        da.from_array(b, chunks=chunks), tables)
            timed("apply_tables", lazy.compute)
        else:
            timed("apply_tables", merging.apply_tables, a, b, tables)
        phases["objects"] = tables.n_objects
    else:
        raise SystemExit(f"unknown variant {variant}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": time.perf_counter() - t_start, "phases": phases,
                      "peak_kb": usage.ru_maxrss}))


def check(path_a: str, path_b: str) -> None:
    """A session decided by each policy vs lookup tables at this size: same output and summary?"""
    import numpy as np
    import tifffile

    from napari_mask_compare.labels import relabel_sequential
    from napari_mask_compare.merging import (
        POLICIES,
        apply_tables,
        decide_by_policy,
        merge_tables,
    )
    from napari_mask_compare.pairing import overlap_table, review_groups
    from napari_mask_compare.session import Session

    a, b = tifffile.imread(path_a), tifffile.imread(path_b)
    table = overlap_table(a, b)
    groups = review_groups(table)
    result = {}
    for policy in POLICIES:
        session = decide_by_policy(Session(a, b, groups, table=table), policy=policy)
        tables = merge_tables(table, groups, policy=policy)
        merged = apply_tables(a, b, tables)
        saved = relabel_sequential(session.output)
        result[policy] = {
            "identical_output": bool(merged.dtype == saved.dtype
                                     and np.array_equal(merged, saved)),
            "identical_summary": tables.summary == session.summary(),
            "objects": tables.n_objects, "contested": tables.summary["contested"],
        }
        del session, merged, saved
    print(json.dumps(result))


# --------------------------------------------------------------------------- parent side


def _argv(variant, path_a, path_b, out):
    if variant == "cli":
        return [_mask_compare(), "merge", str(path_a), str(path_b), "--out", str(out)]
    return [sys.executable, str(Path(__file__).resolve()), "--child", variant,
            str(path_a), str(path_b), str(out)]


def measure(args, log) -> dict:
    path_a, path_b, info = ensure_pair(args.size, cache=args.cache, log=log)
    for path in (path_a, path_b):  # warm the page cache once, untimed
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass
    subprocess.run([sys.executable, "-c", "import tifffile, skimage.metrics, dask.array, "
                    "napari_mask_compare.cli, napari_mask_compare.merging"], check=False)
    checked = None
    if not args.no_check:
        res = run_measured([sys.executable, str(Path(__file__).resolve()), "--check",
                            str(path_a), str(path_b)], limit_gib=args.limit_gib,
                           timeout=args.timeout)
        checked = (json.loads(res["stdout"].strip().splitlines()[-1]) if res["returncode"] == 0
                   else {"failed": res["stderr"][-500:]})
        log(f"check: {checked}")
    variants = list(VARIANTS)
    runs = []
    workdir = Path(tempfile.mkdtemp(prefix="bench_merge_", dir=args.cache))
    try:
        for r in range(args.repeats):
            for variant in variants[r % len(variants):] + variants[:r % len(variants)]:
                out = workdir / "out.tif"
                res = run_measured(_argv(variant, path_a, path_b, out),
                                   limit_gib=args.limit_gib, timeout=args.timeout)
                rec = {"variant": variant, "round": r, **res, "ok": res["returncode"] == 0}
                if rec["ok"] and variant != "cli":
                    rec.update(child=json.loads(res["stdout"].strip().splitlines()[-1]))
                runs.append(rec)
                log(f"  [round {r + 1}/{args.repeats}] {variant:14s} {res['wall_s']:7.2f} s  "
                    f"peak {res['peak_kb'] / 1024:7.0f} MiB  load {res['loadavg_1min']:.1f}"
                    + ("" if rec["ok"] else f"  FAILED {res['stderr'][-300:]}"))
                out.unlink(missing_ok=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"size": args.size, "info": info, "check": checked, "runs": runs,
            "repeats": args.repeats}


def _stats(runs, variant):
    ok = [r for r in runs if r["variant"] == variant and r["ok"]]
    if not ok:
        return None
    walls = [r["wall_s"] for r in ok]
    s = {"median": statistics.median(walls), "min": min(walls), "max": max(walls), "n": len(ok),
         "cpu_s": statistics.median([r["cpu_s"] for r in ok]),
         "peak_mib": statistics.median([r["peak_kb"] / 1024 for r in ok])}
    phases = [r["child"].get("phases", {}) for r in ok if "child" in r]
    if phases and phases[0]:
        s["phases"] = {k: statistics.median([p[k] for p in phases]) for k in phases[0]}
    return s


def report(result) -> str:
    runs = result["runs"]
    stats = {v: _stats(runs, v) for v in VARIANTS}
    base = stats["load_ct"]
    loads = [r["loadavg_1min"] for r in runs]
    import numpy

    lines = [
        "# Merge benchmark: lookup tables vs the session's merge",
        "",
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC · {os.cpu_count()} cores · "
        f"Python {platform.python_version()} · numpy {numpy.__version__} · "
        f"size {result['size']} {tuple(result['info']['shape'])}, "
        f"{result['info']['n_a']:,} objects in A, {result['info']['n_b']:,} in B · "
        f"{result['repeats']} interleaved rounds, fresh process each · 1-min load average "
        f"{min(loads):.1f} – {max(loads):.1f} on a shared machine: trust medians and ratios.",
        "",
        "| process | median s | min – max s | CPU s | time / load+contingency_table | "
        "peak RSS MiB | peak / load+ct | phases (median s) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for variant, label in VARIANTS.items():
        s = stats[variant]
        if s is None:
            lines.append(f"| {label} | failed |||||||")
            continue
        phases = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v:,}"
                           for k, v in s.get("phases", {}).items())
        lines.append(
            f"| {label} | {s['median']:.2f} | {s['min']:.2f} – {s['max']:.2f} | "
            f"{s['cpu_s']:.2f} | {s['median'] / base['median']:.2f} | {s['peak_mib']:,.0f} | "
            f"{s['peak_mib'] / base['peak_mib']:.2f} | {phases} |")
    old, new = stats["session_merge"], stats["lut_merge"]
    lines += [""]
    if old and new:
        merge_old = old["phases"]["from_masks"] + old["phases"]["merge"]
        merge_new = sum(new["phases"][k] for k in
                        ("overlap_table", "review_groups", "merge_tables", "apply_tables"))
        lines.append(f"In memory, after loading: session (from_masks + merge) {merge_old:.2f} s, "
                     f"lookup tables (pairing + merge_tables + apply_tables) {merge_new:.2f} s: "
                     f"{merge_old / merge_new:.1f}× faster; peak RSS {old['peak_mib']:,.0f} → "
                     f"{new['peak_mib']:,.0f} MiB.")
    if stats["cli"]:
        ratio = stats["cli"]["median"] / base["median"]
        lines.append(f"Target: whole merge ≤ 0.25 × load + contingency_table: "
                     f"{ratio:.2f} × → **{'met' if ratio <= 0.25 else 'missed'}**.")
    if result["check"]:
        lines.append(f"Check at this size (every policy; output and summary of "
                     f"decide_by_policy vs lookup tables): `{json.dumps(result['check'])}`")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="full", choices=("small", "full"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--limit-gib", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--no-check", action="store_true", help="skip the full-size check")
    parser.add_argument("--child", nargs=4, metavar=("VARIANT", "A", "B", "OUT"))
    parser.add_argument("--check", nargs=2, metavar=("A", "B"))
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    if args.check:
        check(*args.check)
        return 0
    result = measure(args, log=lambda m: print(m, file=sys.stderr, flush=True))
    text = report(result)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stem = "merge" if args.size == "full" else f"merge_{args.size}"
    (RESULTS / f"{stem}.md").write_text(text)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
