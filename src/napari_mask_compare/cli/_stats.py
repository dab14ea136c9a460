"""``mask-compare stats``: the matching statistics and metric suite, of files or folders."""

from __future__ import annotations

import sys
from pathlib import Path

from ._common import (
    EXIT_BAD_INPUT,
    add_engine_options,
    add_iou_threshold,
    engine_of,
    input_error,
    is_mask_folder,
    os_error_line,
    parse_thresholds,
    warn_unpaired,
)


def add_stats(commands) -> None:
    p = commands.add_parser(
        "stats",
        help="matching statistics of B against A",
        description=(
            "StarDist's matching statistics of B (prediction) against A (reference) per IoU "
            "threshold, pixel Dice and IoU, the 2018 Data Science Bowl score, the counts "
            "of review groups, variation of information, adapted Rand error, CTC SEG and "
            "DET, AJI, Cellpose's AP, the error taxonomy by object size and, with "
            "--boundary, boundary distances of the matched pairs (see the README's metric "
            "definitions). With folders, files are paired by name and a dataset total "
            "combines each metric as its reference does (matching counts pooled, as "
            "StarDist's matching_dataset, by_image=False)."
        ),
    )
    p.add_argument("mask_a", type=Path, metavar="MASK_A",
                   help="reference mask file, or a folder of them")
    p.add_argument("mask_b", type=Path, metavar="MASK_B",
                   help="predicted mask file, or a folder of them")
    p.add_argument("--thresholds", default=None, metavar="T1,T2,...",
                   help="IoU thresholds in [0, 1], comma-separated (default: 0.1,0.2,...,0.9)")
    add_iou_threshold(p, help="IoU that links objects into review groups (default: 0.1)")
    p.add_argument("--boundary", action="store_true",
                   help="also measure boundary distances (Hausdorff, HD95, ASSD, surface "
                        "Dice) of every pair matched at IoU 0.5, in the voxel size's unit: "
                        "reads each pair's crop, the slowest part")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_engine_options(p)
    p.set_defaults(run=_run_stats)


def _run_stats(args) -> int:
    thresholds = parse_thresholds(args.thresholds) if args.thresholds is not None else None
    with engine_of(args):  # a cluster that cannot be used is said before scipy is imported
        from ..stats import DEFAULT_THRESHOLDS

        thresholds = list(DEFAULT_THRESHOLDS) if thresholds is None else thresholds
        if not (is_mask_folder(args.mask_a) or is_mask_folder(args.mask_b)):
            summary = _stats_of_files(args.mask_a, args.mask_b, thresholds=thresholds,
                                      iou_threshold=args.iou_threshold, boundary=args.boundary)
            _print_stats(summary, as_json=args.json, iou_threshold=args.iou_threshold)
            return 0
        return _stats_of_folders(args, thresholds)




def _stats_of_files(mask_a, mask_b, *, thresholds, iou_threshold, boundary: bool) -> dict:
    from ..compare import compare
    from ..read import load_pair

    pair = load_pair(mask_a, mask_b)
    return compare(pair.a, pair.b, thresholds=thresholds, iou_threshold=iou_threshold,
                   voxel_size=pair.voxel_size, boundary=boundary, objects=False).summary


def _stats_of_folders(args, thresholds) -> int:
    """Per-file statistics (one task per pair on the engine) and the dataset total; a bad
    pair is reported and left out of the total, and the status is 2."""
    from dask import delayed

    from ..compare import combine
    from ..engine import compute
    from ..read import pair_files

    for path in (args.mask_a, args.mask_b):
        if not is_mask_folder(path):
            raise input_error(f"{path}: is a file but the other mask is a folder; "
                              "give two files or two folders")
    pairs, unpaired = pair_files(args.mask_a, args.mask_b)
    warn_unpaired(unpaired)
    tasks = [delayed(_stats_of_pair, pure=False)(mask_a, mask_b, thresholds=thresholds,
                                                 iou_threshold=args.iou_threshold,
                                                 boundary=args.boundary)
             for mask_a, mask_b in pairs]
    results = compute(*tasks, desc=f"stats of {len(pairs)} pairs") if tasks else ()
    per_file, failed = [], []
    for (mask_a, mask_b), (summary, error) in zip(pairs, results):
        name = _pair_name(mask_a)
        if error is not None:
            failed.append({"name": name, "error": error})
            print(f"mask-compare stats: error: {error}", file=sys.stderr)
        else:
            per_file.append({"name": name, "mask_a": str(mask_a), "mask_b": str(mask_b),
                             **summary})
    total = combine(per_file) if per_file else None
    if args.json:
        import json

        print(json.dumps({**(total or {}), "files": per_file, "failed": failed,
                          "unpaired": {str(k): v for k, v in unpaired.items()}}))
    else:
        _print_folder_stats(per_file, total, iou_threshold=args.iou_threshold)
    if failed:
        print(f"mask-compare stats: {len(failed)} of {len(pairs)} pairs failed"
              + (", the total leaves them out" if per_file else ""), file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _stats_of_pair(mask_a, mask_b, **options) -> tuple[dict | None, str | None]:
    """One pair of a folder run (a dask task): ``(summary, None)`` or ``(None, error line)``."""
    from ..errors import InputError

    try:
        return _stats_of_files(mask_a, mask_b, **options), None
    except InputError as err:
        return None, str(err)
    except OSError as err:
        return None, os_error_line(err)


def _pair_name(mask_a: Path) -> str:
    from ..store import is_store_path, store_name

    return store_name(mask_a) if is_store_path(mask_a) else mask_a.stem


def _aligned(header: list[str], rows: list[list[str]]) -> str:
    """Right-aligned text table (first column left-aligned)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def line(cells):
        return "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header)] + [line(r) for r in rows])


def _matching_cells(result: dict) -> list[str]:
    from ..stats import MATCHING_COLUMNS

    return [fmt.format(result[key]) for _, key, fmt in MATCHING_COLUMNS]


def _matching_headers() -> list[str]:
    from ..stats import MATCHING_COLUMNS

    return [header for header, _, _ in MATCHING_COLUMNS]


def _print_stats(summary: dict, *, as_json: bool, iou_threshold: float) -> None:
    from ..compare import suite_lines

    if as_json:
        import json

        print(json.dumps(summary))
        return
    print(_aligned(_matching_headers(),
                   [_matching_cells(r) for r in summary["matching"]]))
    pixel, groups = summary["pixel"], summary["groups"]
    print(f"\npixel Dice {pixel['dice']:.4f}, IoU {pixel['iou']:.4f}")
    print(f"AP (DSB 2018, IoU 0.5:0.95) {summary['ap_dsb2018']:.4f}")
    print(f"groups (IoU >= {iou_threshold:g}): "
          + ", ".join(f"{kind} {n}" for kind, n in groups.items()))
    print("\n".join(suite_lines(summary)))


def _print_folder_stats(per_file: list[dict], total: dict | None, *,
                        iou_threshold: float) -> None:
    from ..compare import suite_lines

    if not per_file:
        return
    rows = [[f["name"], *_matching_cells(r)] for f in per_file for r in f["matching"]]
    rows += [["TOTAL", *_matching_cells(r)] for r in total["matching"]]
    print(_aligned(["file", *_matching_headers()], rows))
    kinds = list(total["groups"])
    rows = [[f["name"], f"{f['pixel']['dice']:.4f}", f"{f['pixel']['iou']:.4f}",
             f"{f['ap_dsb2018']:.4f}", *(str(f["groups"][k]) for k in kinds)]
            for f in [*per_file, {**total, "name": "TOTAL"}]]
    print()
    print(_aligned(["file", "dice", "iou", "ap_dsb2018", *kinds], rows))
    print("\nTOTAL: " + "\nTOTAL: ".join(suite_lines(total)))
    print(f"\n{total['n_images']} files; groups at IoU >= {iou_threshold:g}; the total "
          "combines each metric as its reference does (see the README's metric definitions)")
