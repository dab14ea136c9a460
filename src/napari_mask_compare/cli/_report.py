"""``mask-compare report``: the CSV, TIFF and PNG report of a comparison."""

from __future__ import annotations

from pathlib import Path

from ._common import (
    add_engine_options,
    add_iou_threshold,
    add_overwrite,
    engine_of,
    input_error,
    is_mask_folder,
    parse_thresholds,
    remove_stale_temps,
)


def add_report(commands) -> None:
    p = commands.add_parser(
        "report",
        help="CSV, TIFF and PNG report of a comparison",
        description=(
            "Write the quality report of B against A into a folder: matching statistics, "
            "review groups, per-object morphology, an RGB association map (true positives "
            "green, false negatives red, false positives blue) and plots. The folder must be "
            "new, empty or an earlier report's, whose files are replaced only with "
            "--overwrite; an input, a folder holding other files or a file that mask-compare "
            "did not write is never written into or over."
        ),
    )
    p.add_argument("mask_a", type=Path, metavar="MASK_A", help="reference mask file")
    p.add_argument("mask_b", type=Path, metavar="MASK_B", help="predicted mask file")
    p.add_argument("--out", type=Path, required=True,
                   help="report folder: new, empty, or an earlier report's (created if needed)")
    p.add_argument("--image", type=Path, help="the image: grey base of the association map")
    p.add_argument("--roi", type=Path,
                   help="region mask (non-zero inside): objects mostly outside are left out")
    p.add_argument("--curated", type=Path, metavar="OUT.tif",
                   help="a curated output to measure and compare with A and B")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="IoU threshold of the association map (default: 0.5)")
    p.add_argument("--thresholds", default=None, metavar="T1,T2,...",
                   help="thresholds of the statistics (default: 0.1,0.2,...,0.9)")
    add_iou_threshold(p, help="IoU that links objects into review groups (default: 0.1)")
    p.add_argument("--filter", metavar="RULES", default=None,
                   help="property filter on the --curated output, e.g. 'npixels < 50 or "
                        "circularity < 0.5 and npixels < 200': writes filter_curated.csv "
                        "(each object Removed or Correct, the conditions it met) and "
                        "curated_filtered.tif")
    add_overwrite(p, what="the files of a report")
    add_engine_options(p)
    p.set_defaults(run=_run_report)


def _run_report(args) -> int:
    from ..read import load_pair
    from ..report import check_report_folder, report_files, write_report
    from ..stats import DEFAULT_THRESHOLDS

    thresholds = (parse_thresholds(args.thresholds) if args.thresholds is not None
                  else list(DEFAULT_THRESHOLDS))
    if not 0 <= args.threshold <= 1:
        raise input_error(f"--threshold {args.threshold:g} is not in [0, 1]")
    for path in (args.mask_a, args.mask_b):
        if is_mask_folder(path):
            raise input_error(f"{path}: is a folder; report compares two mask files")
    rules = _parse_filter(args.filter, curated=args.curated)
    inputs = [path for path in (args.mask_a, args.mask_b, args.image, args.roi, args.curated)
              if path is not None]
    check_report_folder(args.out, inputs=inputs, overwrite=args.overwrite,
                        names=report_files(curated=args.curated is not None,
                                           filtered=rules is not None))
    remove_stale_temps(args.out, command="report")
    with engine_of(args):
        pair = _in_memory(load_pair(args.mask_a, args.mask_b, image=args.image))
        roi = _report_mask(args.roi, pair, what="ROI")
        curated = _report_mask(args.curated, pair, what="curated output")
    _check_filter_properties(rules, ndim=pair.a.ndim, text=args.filter)
    files = write_report(
        args.out, pair.a, pair.b, voxel_size=pair.voxel_size, unit=pair.unit,
        image=pair.image, roi=roi, curated=curated, threshold=args.threshold,
        thresholds=thresholds, iou_threshold=args.iou_threshold, filter_rules=rules,
        sources={k: str(v) for k, v in
                 {**pair.paths, "roi": args.roi, "curated": args.curated}.items()
                 if v is not None},
        inputs=inputs, overwrite=args.overwrite,
    )
    print(f"{args.out}: wrote " + ", ".join(files))
    return 0


def _in_memory(pair):
    """The pair with its lazily read arrays (zarr, HDF5) read whole: the report's maps and
    morphology need every voxel (use ``stats`` for masks larger than memory)."""
    import dataclasses

    from ..engine import compute

    lazy = {name: value for name, value in vars(pair).items() if hasattr(value, "compute")}
    if not lazy:
        return pair
    values = compute(*lazy.values(), desc="read the masks")
    return dataclasses.replace(pair, **dict(zip(lazy, values)))


def _parse_filter(text, *, curated):
    """``--filter`` read before anything is loaded (None without it)."""
    if text is None:
        return None
    from ..measure import parse_rules

    if curated is None:
        raise input_error("--filter applies to a curated output: give it with --curated")
    try:
        return parse_rules(text)
    except ValueError as err:
        raise input_error(f"--filter {text!r}: {err}") from None


def _check_filter_properties(rules, *, ndim: int, text: str) -> None:
    """Every property of ``rules`` is measured for ``ndim``-D masks."""
    from ..measure import property_names

    if not rules:
        return
    known = property_names(ndim)
    for rule in rules:
        for prop, _, _ in rule:
            if prop not in known:
                raise input_error(f"--filter {text!r}: no property {prop!r} in {ndim}D; "
                                  "known: " + ", ".join(known))


def _report_mask(path, pair, *, what: str):
    """Read an extra mask (ROI, curated output) and check it has the masks' shape."""
    if path is None:
        return None
    from ..read import load_mask

    labels, _, _ = load_mask(path)
    if hasattr(labels, "compute"):  # read lazily (zarr, HDF5)
        from ..engine import compute

        (labels,) = compute(labels, desc=f"read {path}")
    if labels.shape != pair.a.shape:
        raise input_error(
            f"{path}: {what} has shape {labels.shape} but mask A ({pair.paths['mask_a']}) "
            f"has {pair.a.shape}; it must cover the same image"
        )
    return labels
