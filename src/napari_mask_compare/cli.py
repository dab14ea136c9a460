"""The ``mask-compare`` command: review, merge, stats, report.

Nothing heavy is imported at module import: ``mask-compare --help`` is instant
and napari is imported only by ``review``. Bad input ends with one line on
stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mask-compare``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from .io import InputError

    try:
        return args.run(args) or 0
    except InputError as err:
        print(f"mask-compare {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"mask-compare {args.command}: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mask-compare",
        description="See, measure and curate where two instance segmentations disagree.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_review, _add_merge, _add_stats, _add_report):
        add(commands)
    return parser


def _input_error(message: str) -> Exception:
    from .io import InputError

    return InputError(message)


def _iou_threshold(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


# --------------------------------------------------------------------------- review


def _add_review(commands) -> None:
    p = commands.add_parser("review", help="open napari to review two masks case by case")
    p.set_defaults(run=_run_review)


def _run_review(args) -> int:
    raise NotImplementedError


# --------------------------------------------------------------------------- merge


def _add_merge(commands) -> None:
    p = commands.add_parser(
        "merge",
        help="curate without a GUI: one policy for every paired group",
        description=(
            "Build one mask from A and B without a GUI. Every paired group gets the same "
            "decision (--policy); objects that only one mask has are added, as in review."
        ),
    )
    p.add_argument("mask_a", type=Path, metavar="MASK_A", help="mask A file, or a folder of them")
    p.add_argument("mask_b", type=Path, metavar="MASK_B", help="mask B file, or a folder of them")
    p.add_argument("--out", type=Path, required=True,
                   help="output .tif (a folder when MASK_A and MASK_B are folders)")
    p.add_argument("--policy", choices=("a", "b", "union", "larger"), default="a",
                   help="a: keep A; b: keep B; union: merge each group into one object; "
                        "larger: the side with more voxels (default: a)")
    p.add_argument("--iou-threshold", "--iou_threshold", type=_iou_threshold, default=0.1,
                   dest="iou_threshold", help="IoU that pairs two objects (default: 0.1)")
    p.set_defaults(run=_run_merge)


def _run_merge(args) -> int:
    from .io import check_writable, pair_files

    if args.mask_a.is_dir() or args.mask_b.is_dir():
        pairs, unpaired = pair_files(args.mask_a, args.mask_b)
        _warn_unpaired(unpaired)
        if args.out.suffix.lower() in (".tif", ".tiff") or args.out.is_file():
            raise _input_error(f"{args.out}: with folders of masks, --out must be a folder")
        jobs = [(a, b, args.out / f"{a.stem}.tif") for a, b in pairs]
    else:
        jobs = [(args.mask_a, args.mask_b, args.out)]
    for _, _, out in jobs:
        check_writable(out)
    if len(jobs) == 1:
        summary = merge_files(*jobs[0][:2], out=jobs[0][2], policy=args.policy,
                              iou_threshold=args.iou_threshold)
        print(f"{jobs[0][2]}: {_format_summary(summary)}")
        return 0
    return _merge_folder(jobs, policy=args.policy, iou_threshold=args.iou_threshold)


def _merge_folder(jobs, *, policy: str, iou_threshold: float) -> int:
    """Merge file after file; a bad file is reported and skipped, and the status is 2."""
    from .io import InputError

    failed = 0
    progress = _progress(jobs, desc="merge", unit="file")
    for mask_a, mask_b, out in progress:
        try:
            summary = merge_files(mask_a, mask_b, out=out, policy=policy,
                                  iou_threshold=iou_threshold)
        except InputError as err:
            failed += 1
            progress.write(f"mask-compare merge: error: {err}", file=sys.stderr)
            continue
        progress.write(f"{out}: {_format_summary(summary)}")
    if failed:
        print(f"mask-compare merge: {failed} of {len(jobs)} pairs failed", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def merge_files(mask_a, mask_b, *, out, policy: str = "a", iou_threshold: float = 0.1) -> dict:
    """Read two masks, merge them by ``policy`` and write the output TIFF.

    Returns
    -------
    dict
        The session summary (counts of A, B, M, N, Auto, contested voxels...).
    """
    from .io import load_pair, write_labels
    from .session import Session, merge

    pair = load_pair(mask_a, mask_b)
    session = merge(
        Session.from_masks(pair.a, pair.b, iou_threshold=iou_threshold,
                           classes_a=pair.classes_a, classes_b=pair.classes_b),
        policy=policy,
    )
    write_labels(out, session.output, voxel_size=pair.voxel_size, unit=pair.unit, relabel=False)
    classes = session.class_map()
    if classes is not None:
        write_labels(Path(out).with_name(Path(out).stem + "_classes.tif"), classes,
                     voxel_size=pair.voxel_size, unit=pair.unit, relabel=False)
    return session.summary()


def _format_summary(summary: dict) -> str:
    return ", ".join(f"{key} {summary[key]}" for key in
                     ("objects", "A", "B", "M", "N", "Auto", "contested"))


def _warn_unpaired(unpaired: dict) -> None:
    for folder, names in unpaired.items():
        if names:
            print(f"mask-compare: {len(names)} file(s) in {folder} have no partner, skipped: "
                  + ", ".join(names), file=sys.stderr)


def _progress(items, **kwargs):
    """A progress bar on stderr over ``items``."""
    from tqdm import tqdm

    return tqdm(items, file=sys.stderr, **kwargs)


# --------------------------------------------------------------------------- stats


def _add_stats(commands) -> None:
    p = commands.add_parser("stats", help="matching statistics of B against A")
    p.set_defaults(run=_run_stats)


def _run_stats(args) -> int:
    raise NotImplementedError


# --------------------------------------------------------------------------- report


def _add_report(commands) -> None:
    p = commands.add_parser("report", help="CSV, TIFF and PNG report of a comparison")
    p.set_defaults(run=_run_report)


def _run_report(args) -> int:
    raise NotImplementedError


if __name__ == "__main__":
    sys.exit(main())
