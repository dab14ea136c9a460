"""Attack every promise of napari-mask-compare's README, and count what breaks.

    python scripts/attack.py [--quick] [--only CATEGORY ...] [--seed N] [--out DIR]

Runs the installed ``mask-compare`` command line and the
``napari_mask_compare.review.Review`` API (no GUI) against bad inputs, kills,
a full disk, two writers, tampered journals and cluster faults (issue 17), and
prints per category the cases run and the violations (one line each: what
was done, what was promised, what happened; ``[#N]`` names the point of issue
17 the case attacks, ``[new]`` a finding the issue does not list), then a
total. Exit status 1 if any promise was broken. The results, with a log of
every case, go to ``DIR/attack-<seed>.json``.

Deterministic given ``--seed`` (the cases, their data and the moments of the
kills; what a process was doing when killed is up to the machine). About 15-25
minutes in full on 2 cores, about 3 with ``--quick``. Needs root for the
full-disk category (a small tmpfs is mounted; without it the category is
skipped with a note). Not part of the test run: run it after changes to
reading, writing, saving or the engine, and give its figures in the closing note.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from attack import cluster, disk, inputs, journals, kills  # noqa: E402
from attack.common import Outcome, Workspace  # noqa: E402

#: Category name (for --only) -> its run(ws, seed=, quick=) -> Outcome.
CATEGORIES = {
    "inputs": inputs.run,
    "kills": kills.run,
    "disk": disk.run,
    "writers": journals.run_writers,
    "tampering": journals.run_tampering,
    "cluster": cluster.run,
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a sample of every category (about 3 minutes)")
    parser.add_argument("--only", nargs="+", choices=list(CATEGORIES), metavar="CATEGORY",
                        help=f"run these categories only ({', '.join(CATEGORIES)})")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--out", type=Path, default=Path("."),
                        help="folder for attack-<seed>.json (default: here)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder of the cases (its path is printed)")
    args = parser.parse_args(argv)

    ws = Workspace(keep=args.keep)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cleanup runs on the way out
    outcomes = []
    start = time.monotonic()
    try:
        for name in args.only or CATEGORIES:
            began = time.monotonic()
            print(f"== {name} ...", flush=True)
            try:
                outcome = CATEGORIES[name](ws, seed=args.seed, quick=args.quick)
            except Exception as err:  # noqa: BLE001 (the attack's own failure: say it, go on)
                outcome = Outcome(name)
                outcome.check(name, f"the attack itself failed: {err!r}",
                              did=f"run the category {name}", promised="a run")
            outcome.seconds = round(time.monotonic() - began, 1)
            outcomes.append(outcome)
            _print(outcome)
    finally:
        ws.cleanup()
        if args.keep:
            print(f"cases kept in {ws.root}")
    total = _total(outcomes, seconds=time.monotonic() - start)
    print(f"TOTAL: {total['cases']} cases, {total['kills']} kills, "
          f"{total['violations']} violations ({total['new']} not among issue 17's points) "
          f"in {total['seconds']:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"attack-{args.seed}.json"
    path.write_text(json.dumps({"seed": args.seed, "quick": args.quick, "total": total,
                                "categories": [o.as_dict() for o in outcomes]}, indent=1,
                               default=str))
    print(f"results: {path}")
    return 1 if total["violations"] else 0


def _print(outcome: Outcome) -> None:
    if outcome.skipped:
        print(f"{outcome.name}: skipped ({outcome.skipped})")
        return
    kills = f", {outcome.kills} kills" if outcome.kills else ""
    print(f"{outcome.name}: {outcome.cases} cases{kills}, {len(outcome.violations)} violations "
          f"({outcome.seconds:.0f} s)")
    for key, value in outcome.figures.items():
        print(f"  {key}: {value}")
    for note in outcome.notes:
        print(f"  note: {note}")
    for violation in outcome.violations:
        print(f"  - {violation.line()}")
    sys.stdout.flush()


def _total(outcomes, *, seconds: float) -> dict:
    violations = [v for o in outcomes for v in o.violations]
    return {"cases": sum(o.cases for o in outcomes), "kills": sum(o.kills for o in outcomes),
            "violations": len(violations), "new": sum(v.point is None for v in violations),
            "by_category": {o.name: len(o.violations) for o in outcomes},
            "skipped": {o.name: o.skipped for o in outcomes if o.skipped},
            "seconds": round(seconds, 1)}


if __name__ == "__main__":
    sys.exit(main())
