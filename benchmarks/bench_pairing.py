"""Pairing and ``mask-compare merge`` against scikit-image and StarDist, time and peak memory.

One run measures, for each synthetic pair (see ``synthetic.py``):

(a) pairing on in-memory arrays: ``overlap_table`` + ``review_groups`` vs
    ``skimage.metrics.contingency_table`` vs ``stardist.matching.matching(thresh=0.5)``;
(b) whole processes: ``mask-compare merge A.tif B.tif --out OUT.tif`` vs a Python
    process that loads the pair with ``tifffile.imread`` and runs
    ``contingency_table`` (and one that runs StarDist's ``matching``, and one
    that only loads, the floor of all of them).

Every measurement is a fresh subprocess (so peak RSS is its own), under an
address-space limit (RLIMIT_AS, ``--limit-gib``) that protects the machine.
Variants are interleaved round by round (the order rotates) and repeated;
medians, min/max and ratios of medians are reported. StarDist's dense
(n_a + 1) x (n_b + 1) matrices are estimated up front: when they cannot fit
under the limit it is reported as out of memory instead of being run.

    python benchmarks/bench_pairing.py            # small + full size, 5 rounds
    python benchmarks/bench_pairing.py --quick    # small size, 3 rounds

Writes benchmarks/results/pairing.md (the table printed on stdout) and
pairing.json (every raw measurement).
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

from synthetic import DEFAULT_CACHE, SIZES, ensure_pair  # noqa: E402

RESULTS = HERE / "results"
GIB = 1 << 30

#: Resident bytes StarDist's ``matching`` adds per cell of its dense (n_a + 1) x (n_b + 1)
#: matrices: label_overlap (uint64, 8 B), the IoU step (denominator uint64 8 B, |y| 8 B,
#: float32 result 4 B, mask 1 B) and the cost matrix (float64 8 B + temporaries).
#: Measured on this machine at 7,938 x 7,938 objects: 26.5 B per cell of added peak RSS.
STARDIST_BYTES_PER_CELL = 26

# --------------------------------------------------------------------------- what is measured

#: (a) operations timed inside a child after loading the pair with tifffile.imread.
IN_MEMORY = {
    "pairing": "overlap_table + review_groups",
    "contingency_table": "skimage contingency_table",
    "stardist": "StarDist matching(thresh=0.5)",
}

_LOAD = "import sys, tifffile; a = tifffile.imread(sys.argv[1]); b = tifffile.imread(sys.argv[2])"

#: (b) whole processes: label -> argv (A, B, OUT substituted).
def _process_argv(name, path_a, path_b, out):
    python = sys.executable
    if name == "merge":
        return [_mask_compare(), "merge", str(path_a), str(path_b), "--out", str(out)]
    code = {
        "load_ct": _LOAD + "; from skimage.metrics import contingency_table; "
                           "contingency_table(a, b)",
        "load_stardist": _LOAD + "; from stardist.matching import matching; "
                                 "matching(a, b, thresh=0.5)",
        "load_only": _LOAD,
    }[name]
    return [python, "-c", code, str(path_a), str(path_b)]


PROCESSES = {
    "merge": "`mask-compare merge A B --out OUT`",
    "load_ct": "load (tifffile.imread) + contingency_table",
    "load_stardist": "load (tifffile.imread) + StarDist matching",
    "load_only": "load only (tifffile.imread), the floor",
}


def _mask_compare() -> str:
    """The console script of this environment (not a pyenv shim, whose start-up costs)."""
    beside = Path(sys.executable).parent / "mask-compare"
    return str(beside) if beside.exists() else (shutil.which("mask-compare") or "mask-compare")


# --------------------------------------------------------------------------- child side


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def child(variant: str, path_a: str, path_b: str) -> None:
    """Load the pair, time one operation, print one JSON line."""
    import gc

    import numpy as np
    import tifffile

    a = tifffile.imread(path_a)
    b = tifffile.imread(path_b)
    extra = {}
    if variant == "pairing":
        from napari_mask_compare import _tally
        from napari_mask_compare.pairing import overlap_table, review_groups

        del _tally  # imported (numba) before the timer: imports stay untimed

        def run():
            t0 = time.perf_counter()
            table = overlap_table(a, b)
            t1 = time.perf_counter()
            groups = review_groups(table)
            extra.update(overlap_table_s=t1 - t0, review_groups_s=time.perf_counter() - t1,
                         n_pairs=len(table.intersection), n_groups=len(groups),
                         n_a=table.n_a, n_b=table.n_b)
    elif variant == "contingency_table":
        from skimage.metrics import contingency_table

        def run():
            extra["table"] = contingency_table(a, b)
    elif variant == "stardist":
        from stardist.matching import matching

        # compile numba's label_overlap outside the timing (the process rows include it)
        t0 = time.perf_counter()
        matching(a[:1, :4, :4], b[:1, :4, :4], thresh=0.5)
        extra["jit_warmup_s"] = time.perf_counter() - t0

        def run():
            m = matching(a, b, thresh=0.5)
            extra.update(tp=int(m.tp), fp=int(m.fp), fn=int(m.fn), n_true=int(m.n_true),
                         n_pred=int(m.n_pred))
    else:
        raise SystemExit(f"unknown variant {variant}")
    gc.collect()
    rss_before = _rss_kb()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    run()
    seconds = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss
    extra["cpu_s"] = (usage.ru_utime - usage0.ru_utime) + (usage.ru_stime - usage0.ru_stime)
    extra["sys_s"] = usage.ru_stime - usage0.ru_stime
    if "table" in extra:  # checked after the timing: pairs of non-zero ids
        table = extra.pop("table").tocsr()
        extra["n_pairs"] = int(np.count_nonzero(table[1:, 1:].data))
    print(json.dumps({"seconds": seconds, "peak_kb": peak, "rss_before_kb": rss_before,
                      "maxrss_before_kb": usage0.ru_maxrss, **extra}))


# --------------------------------------------------------------------------- parent side


def _limit(gib: float):
    def preexec():
        limit = int(gib * GIB)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return preexec


def run_measured(argv, *, limit_gib: float, timeout: float) -> dict:
    """Run ``argv``; wall time, peak RSS (wait4), exit status, stdout and stderr tail."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, preexec_fn=_limit(limit_gib))
        try:
            _, status, usage = _wait4(proc, timeout)
        except TimeoutError:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            status = -9
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status) if status != -9 else -9
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    return {"wall_s": wall, "peak_kb": usage.ru_maxrss, "returncode": proc.returncode,
            "cpu_s": usage.ru_utime + usage.ru_stime, "sys_s": usage.ru_stime,
            "stdout": stdout, "stderr": stderr[-2000:], "loadavg_1min": load}


def _wait4(proc, timeout):
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return pid, status, usage
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.01)


def _out_of_memory(stderr: str) -> bool:
    return any(text in stderr for text in
               ("MemoryError", "Unable to allocate", "Allocation failed"))


def stardist_estimate(info: dict) -> int:
    """Bytes StarDist's matching needs on top of the loaded pair (dense matrices)."""
    return STARDIST_BYTES_PER_CELL * (info["n_a"] + 1) * (info["n_b"] + 1)


def measure_size(name, args, log) -> dict:
    path_a, path_b, info = ensure_pair(name, cache=args.cache, log=log)
    shape, _ = SIZES[name]
    pair_bytes = path_a.stat().st_size + path_b.stat().st_size
    repeats = args.repeats if name != "full" or args.full_repeats is None else args.full_repeats
    need = stardist_estimate(info)
    stardist_fits = need + 2 * pair_bytes + GIB < args.limit_gib * GIB
    skipped = {}
    if not stardist_fits:
        skipped["stardist"] = skipped["load_stardist"] = {
            "reason": "out of memory",
            "needs_gib": round((need + pair_bytes) / GIB, 1),
            "label_overlap_gib": round(8 * (info["n_a"] + 1) * (info["n_b"] + 1) / GIB, 1),
            "limit_gib": args.limit_gib,
        }
    if not args.stardist:
        for key in ("stardist", "load_stardist"):
            skipped[key] = {"reason": "unavailable", "why": args.stardist_why}

    # warm the page cache and the imports once, untimed
    for path in (path_a, path_b):
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass
    warm = "import tifffile, skimage.metrics, napari_mask_compare.cli, napari_mask_compare.session"
    subprocess.run([sys.executable, "-c", warm + ("; import stardist.matching" if args.stardist
                                                   else "")], check=False)

    variants = [("a", v) for v in IN_MEMORY if v not in skipped]
    variants += [("b", p) for p in PROCESSES if p not in skipped]
    runs = []
    workdir = Path(tempfile.mkdtemp(prefix="bench_", dir=args.cache))
    try:
        for r in range(repeats):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for part, variant in order:
                out = workdir / "out.tif"
                if part == "a":
                    argv = [sys.executable, str(Path(__file__).resolve()), "--child", variant,
                            str(path_a), str(path_b)]
                else:
                    argv = _process_argv(variant, path_a, path_b, out)
                res = run_measured(argv, limit_gib=args.limit_gib, timeout=args.timeout)
                rec = {"size": name, "part": part, "variant": variant, "round": r, **res}
                if part == "a" and res["returncode"] == 0:
                    rec.update(json.loads(res["stdout"].strip().splitlines()[-1]))
                rec["ok"] = res["returncode"] == 0
                if not rec["ok"]:
                    rec["oom"] = _out_of_memory(res["stderr"])
                runs.append(rec)
                secs = rec.get("seconds", rec["wall_s"])
                log(f"  [{name} round {r + 1}/{repeats}] {part}:{variant:18s} "
                    f"{secs:8.2f} s  peak {rec['peak_kb'] / 1024:8.0f} MiB  "
                    f"load {res['loadavg_1min']:.1f}" + ("" if rec["ok"] else
                                                         f"  FAILED rc={res['returncode']}"))
                out.unlink(missing_ok=True)
        if args.stardist and not stardist_fits and args.stardist_attempt_gib:
            # show where it fails, under a small address-space limit that cannot hurt the machine
            argv = [sys.executable, str(Path(__file__).resolve()), "--child", "stardist",
                    str(path_a), str(path_b)]
            res = run_measured(argv, limit_gib=args.stardist_attempt_gib, timeout=args.timeout)
            lines = [ln for ln in res["stderr"].strip().splitlines() if ln.strip()]
            last = lines[-1:] or [""]
            frames = [ln.strip() for ln in lines if ln.strip().startswith("File ")]
            skipped["stardist"]["attempt"] = {
                "limit_gib": args.stardist_attempt_gib, "returncode": res["returncode"],
                "wall_s": round(res["wall_s"], 2), "peak_mib": res["peak_kb"] // 1024,
                "error": last[0][:300],
                "where": frames[-1][:300] if frames else "",
            }
            log(f"  [{name}] StarDist attempt under {args.stardist_attempt_gib} GiB: "
                f"rc={res['returncode']} {last[0][:200]}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"name": name, "shape": list(shape), "info": info, "repeats": repeats,
            "files": [str(path_a), str(path_b)], "pair_mib": pair_bytes // (1 << 20),
            "runs": runs, "skipped": skipped,
            "stardist_estimate_gib": round(need / GIB, 2)}


# --------------------------------------------------------------------------- report


def _summary(runs, part, variant):
    ok = [r for r in runs if r["part"] == part and r["variant"] == variant and r["ok"]]
    failed = [r for r in runs if r["part"] == part and r["variant"] == variant and not r["ok"]]
    if not ok:
        return None if not failed else {"failed": len(failed),
                                        "oom": any(r.get("oom") for r in failed)}
    secs = [r["seconds"] if part == "a" else r["wall_s"] for r in ok]
    peaks = [r["peak_kb"] / 1024 for r in ok]
    s = {"median": statistics.median(secs), "min": min(secs), "max": max(secs), "n": len(ok),
         "peak_mib": statistics.median(peaks), "failed": len(failed),
         "cpu_s": statistics.median([r["cpu_s"] for r in ok]),
         "sys_s": statistics.median([r["sys_s"] for r in ok])}
    if part == "a":
        s["added_mib"] = statistics.median(
            [max(0, r["peak_kb"] - r["rss_before_kb"]) / 1024 for r in ok])
        for key in ("overlap_table_s", "review_groups_s"):
            if key in ok[0]:
                s[key] = statistics.median([r[key] for r in ok])
        for key in ("n_pairs", "n_groups", "tp", "jit_warmup_s"):
            if key in ok[0]:
                s[key] = ok[0][key]
    return s


def _fmt_s(s):
    return f"{s['median']:.2f}" if s["median"] >= 0.1 else f"{s['median']:.3f}"


def _range(s):
    f = "{:.2f}" if s["min"] >= 0.1 else "{:.3f}"
    return f"{f.format(s['min'])} – {f.format(s['max'])}"


def _unmeasured_row(size: dict, variant: str, label: str, s: dict | None) -> str | None:
    """The table row of a variant that was skipped or failed; None when it was measured."""
    if variant in size["skipped"]:
        return f"| {label} | {_skip_text(size['skipped'][variant])} |||||||"
    if s is None or "median" not in s:
        return f"| {label} | failed ({s}) |||||||"
    return None


def _measured_row(label: str, s: dict, *, ratio: str, peak: str, last: str) -> str:
    """A table row: label, median, range, runs, CPU, then the table's own three columns."""
    return (f"| {label} | {_fmt_s(s)} | {_range(s)} | {s['n']} | {s['cpu_s']:.2f} "
            f"| {ratio} | {peak} | {last} |")


def _skip_text(skip):
    if skip["reason"] == "unavailable":
        return f"unavailable ({skip['why']})"
    text = (f"out of memory (needs ≈ {skip['needs_gib']} GiB; its dense label_overlap matrix "
            f"alone is {skip['label_overlap_gib']} GiB; limit {skip['limit_gib']} GiB): not run")
    if "attempt" in skip:
        at = skip["attempt"]
        where = at.get("where", "")
        func = where.rsplit(" in ", 1)[-1] if " in " in where else "?"
        text += (f"; run anyway under a {at['limit_gib']} GiB limit: exit {at['returncode']} "
                 f"after {at['wall_s']} s, `{at['error']}` in `{func}`")
    return text


def _per_round(runs, part_x, x, part_y, y):
    """Median over rounds of time(x) / time(y) measured in the same round."""
    def secs(r):
        return r["seconds"] if r["part"] == "a" else r["wall_s"]
    ratios = []
    for rnd in sorted({r["round"] for r in runs}):
        rx = [r for r in runs if (r["round"], r["part"], r["variant"], r["ok"]) ==
              (rnd, part_x, x, True)]
        ry = [r for r in runs if (r["round"], r["part"], r["variant"], r["ok"]) ==
              (rnd, part_y, y, True)]
        if rx and ry:
            ratios.append(secs(rx[0]) / secs(ry[0]))
    return statistics.median(ratios) if ratios else None


def targets(size: dict) -> dict:
    """The issue's targets as ratios: of medians (the verdict), of minima, per round."""
    runs = size["runs"]
    pair, ct = _summary(runs, "a", "pairing"), _summary(runs, "a", "contingency_table")
    merge, load_ct = _summary(runs, "b", "merge"), _summary(runs, "b", "load_ct")
    t = {}
    if pair and ct and "median" in pair and "median" in ct:
        t["pairing_speedup_vs_ct"] = ct["median"] / pair["median"]
        t["pairing_speedup_vs_ct_min"] = ct["min"] / pair["min"]
        t["pairing_speedup_vs_ct_rounds"] = 1 / _per_round(runs, "a", "pairing", "a",
                                                           "contingency_table")
        t["pairing_speedup_vs_ct_cpu"] = ct["cpu_s"] / pair["cpu_s"]
    if merge and load_ct and "median" in merge and "median" in load_ct:
        t["merge_time_ratio_vs_load_ct"] = merge["median"] / load_ct["median"]
        t["merge_time_ratio_vs_load_ct_min"] = merge["min"] / load_ct["min"]
        t["merge_time_ratio_vs_load_ct_rounds"] = _per_round(runs, "b", "merge", "b", "load_ct")
        t["merge_cpu_ratio_vs_load_ct"] = merge["cpu_s"] / load_ct["cpu_s"]
        t["merge_peak_ratio_vs_load_ct"] = merge["peak_mib"] / load_ct["peak_mib"]
    return t


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def render(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Pairing benchmark",
        "",
        f"{m['date']} · {m['nproc']} cores ({m['cpu']}) · {m['ram_gib']} GiB RAM · "
        f"Python {m['python']} · " + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + (f" · main at {m['commit']}" if m.get("commit") else ""),
        "",
        "Each measurement is a fresh subprocess; variants are interleaved round by round (the "
        "order rotates each round) with the page cache warm. Times are medians with min – max "
        "over the rounds; ratios are ratios of medians. *CPU s* is user + system time (median), "
        "less sensitive than wall time to other processes. Peak memory is the child's peak RSS "
        "(ru_maxrss from wait4, median over the runs); *added* is peak RSS minus RSS just before "
        "the timed operation. The machine is shared and noisy: other engineers' test runs went "
        f"on meanwhile (1-min load average {m['load_range']} on 2 cores), so single runs vary "
        "by up to 3×: trust the medians and ratios, not single figures.",
        "",
    ]
    for size in result["sizes"]:
        info, runs = size["info"], size["runs"]
        lines += [
            f"## {size['name']}: {' × '.join(map(str, size['shape']))} voxels, "
            f"{info['n_a']:,} objects in A, {info['n_b']:,} in B "
            f"({size['repeats']} rounds, {size['pair_mib']} MiB of uncompressed TIFFs)",
            "",
            "B disagrees with A: every boundary moved (radii ×0.85–1.15, centre shift ≤ 1.5 "
            f"voxels), {info['planned']['split']} A objects split in two, "
            f"{info['planned']['merge_pairs']} neighbour pairs merged, "
            f"{info['planned']['drop']} dropped, {info['planned']['extra']} extra.",
            "",
            "**(a) Pairing, on the same in-memory arrays** (loaded with tifffile.imread "
            "before the timer starts)",
            "",
            "| operation | median s | min – max s | runs | CPU s | speed-up vs contingency_table"
            " | peak RSS MiB | added MiB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        ct = _summary(runs, "a", "contingency_table")
        for variant, label in IN_MEMORY.items():
            s = _summary(runs, "a", variant)
            if (row := _unmeasured_row(size, variant, label, s)) is not None:
                lines.append(row)
                continue
            if variant == "pairing":
                label += (f" (overlap_table {s['overlap_table_s']:.2f} s + review_groups "
                          f"{s['review_groups_s']:.2f} s; {s['n_pairs']:,} pairs, "
                          f"{s['n_groups']:,} groups)")
            if variant == "contingency_table":
                label += f" ({s['n_pairs']:,} pairs of non-zero ids)"
            if variant == "stardist":
                label += f" (tp {s['tp']:,}; numba JIT {s['jit_warmup_s']:.1f} s, untimed)"
            ratio = f"{ct['median'] / s['median']:.1f}×" if ct and "median" in ct else "–"
            lines.append(_measured_row(label, s, ratio=ratio, peak=f"{s['peak_mib']:,.0f}",
                                       last=f"{s['added_mib']:,.0f}"))
        lines += [
            "",
            "**(b) Whole processes** (wall time from spawn to exit: start-up, imports, reading "
            "the TIFFs, and for merge deciding every group and writing the output)",
            "",
            "| process | median s | min – max s | runs | CPU s | time / load+contingency_table "
            "| peak RSS MiB | peak / load+contingency_table |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        base = _summary(runs, "b", "load_ct")
        for variant, label in PROCESSES.items():
            s = _summary(runs, "b", variant)
            if (row := _unmeasured_row(size, variant, label, s)) is not None:
                lines.append(row)
                continue
            ok_base = base and "median" in base
            ratio = f"{s['median'] / base['median']:.2f}" if ok_base else "–"
            pratio = f"{s['peak_mib'] / base['peak_mib']:.2f}" if ok_base else "–"
            lines.append(_measured_row(label, s, ratio=ratio, peak=f"{s['peak_mib']:,.0f}",
                                       last=pratio))
        t = targets(size)
        lines += ["", "**Targets** (verdict on the ratio of medians; ratio of minima, median of "
                  "the per-round ratios and ratio of CPU times for the noise)", ""]
        if "merge_time_ratio_vs_load_ct" in t:
            r = t["merge_time_ratio_vs_load_ct"]
            lines.append(
                f"- whole `merge` in ≤ 0.5 × the time of load + contingency_table: {r:.2f} × "
                f"→ {_verdict(r <= 0.5)} (minima {t['merge_time_ratio_vs_load_ct_min']:.2f}, "
                f"per round {t['merge_time_ratio_vs_load_ct_rounds']:.2f}, "
                f"CPU {t['merge_cpu_ratio_vs_load_ct']:.2f})")
            p = t["merge_peak_ratio_vs_load_ct"]
            lines.append(f"- whole `merge` peak memory ≤ load + contingency_table's: {p:.2f} × "
                         f"→ {_verdict(p <= 1)}")
        if "pairing_speedup_vs_ct" in t:
            r = t["pairing_speedup_vs_ct"]
            lines.append(
                f"- pairing ≥ 10 × faster than contingency_table: {r:.1f} × → "
                f"{_verdict(r >= 10)} (minima {t['pairing_speedup_vs_ct_min']:.1f}, per round "
                f"{t['pairing_speedup_vs_ct_rounds']:.1f}, CPU "
                f"{t['pairing_speedup_vs_ct_cpu']:.1f})")
        lines.append("")
    return "\n".join(lines) + "\n"


def machine(args) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("numpy", "scipy", "scikit-image", "tifffile", "stardist", "numba"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(HERE.parent), "status", "--porcelain", "--", "src"],
                           capture_output=True, text=True).stdout.strip()
    if commit and dirty:
        commit += " + uncommitted changes in src/"
    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": os.cpu_count(), "cpu": cpu,
        "ram_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB, 1),
        "python": platform.python_version(), "versions": versions, "commit": commit,
        "limit_gib": args.limit_gib,
    }


def _write_atomic(path: Path, text: str) -> None:
    from napari_mask_compare._files import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode())


def _stardist_available() -> tuple[bool, str]:
    res = subprocess.run([sys.executable, "-c", "from stardist.matching import matching"],
                         capture_output=True, text=True)
    if res.returncode == 0:
        return True, ""
    last = (res.stderr.strip().splitlines() or ["import failed"])[-1]
    return False, f"`from stardist.matching import matching` fails: {last}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small size only, 3 rounds")
    parser.add_argument("--sizes", default=None, help=f"comma list of {', '.join(SIZES)}")
    parser.add_argument("--repeats", type=int, default=None, help="rounds (default 5; quick 3)")
    parser.add_argument("--full-repeats", type=int, default=None,
                        help="rounds at full size (default: --repeats)")
    parser.add_argument("--limit-gib", type=float, default=20.0,
                        help="address-space limit of every child (default 20)")
    parser.add_argument("--stardist-attempt-gib", type=float, default=0.0,
                        help="where StarDist cannot fit, run it once anyway under this smaller "
                             "limit to show where it fails (default: do not)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per child, seconds")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the results")
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "A", "B"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    sizes = args.sizes.split(",") if args.sizes else (["small"] if args.quick else list(SIZES))
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    args.stardist, args.stardist_why = _stardist_available()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    result = {"machine": machine(args), "sizes": []}
    for name in sizes:
        log(f"{name}:")
        result["sizes"].append(measure_size(name, args, log))
    loads = [r["loadavg_1min"] for s in result["sizes"] for r in s["runs"]]
    result["machine"]["load_range"] = f"{min(loads):.1f} – {max(loads):.1f}" if loads else "?"
    for size in result["sizes"]:
        size["targets"] = targets(size)
    text = render(result)
    print(text)
    suffix = "" if set(sizes) == set(SIZES) else "_" + "_".join(sizes)
    _write_atomic(args.out / f"pairing{suffix}.md", text)
    _write_atomic(args.out / f"pairing{suffix}.json", json.dumps(result, indent=1, default=str))
    log(f"written: {args.out / f'pairing{suffix}.md'} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
