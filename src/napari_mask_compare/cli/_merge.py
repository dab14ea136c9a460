"""``mask-compare merge``: one policy for every paired group, without a GUI."""

from __future__ import annotations

import sys
from pathlib import Path

from ._common import (
    EXIT_BAD_INPUT,
    add_engine_options,
    add_iou_threshold,
    add_overwrite,
    engine_of,
    input_error,
    is_mask_folder,
    os_error_line,
    remove_stale_temps,
    warn_unpaired,
)


def add_merge(commands) -> None:
    p = commands.add_parser(
        "merge",
        help="curate without a GUI: one policy for every paired group",
        description=(
            "Build one mask from A and B without a GUI. Every paired group gets the same "
            "decision (--policy); objects that only one mask has are added, as in review. "
            "Nothing is overwritten but an earlier merge output, and that only with "
            "--overwrite: never an input, a review's output or a file that mask-compare did "
            "not write."
        ),
    )
    p.add_argument("mask_a", type=Path, metavar="MASK_A", help="mask A file, or a folder of them")
    p.add_argument("mask_b", type=Path, metavar="MASK_B", help="mask B file, or a folder of them")
    p.add_argument("--out", type=Path, required=True,
                   help="output .tif, .zarr for OME-Zarr labels (written block by block: "
                        "for masks larger than memory) or .npy (no voxel size); a folder when "
                        "MASK_A and MASK_B are folders")
    p.add_argument("--policy", choices=("a", "b", "union", "larger"), default="a",
                   help="a: keep A; b: keep B; union: the union of each group's objects as one "
                        "object; larger: the side with more voxels (default: a)")
    add_iou_threshold(p)
    add_overwrite(p, what="output TIFFs (and their _classes.tif) or OME-Zarr stores")
    add_engine_options(p)
    p.set_defaults(run=_run_merge)


def _run_merge(args) -> int:
    from ..read import pair_files
    from ..write import FORMATS

    folders = is_mask_folder(args.mask_a) or is_mask_folder(args.mask_b)
    if folders:  # a folder run, whatever the number of pairs: each pair is recorded
        pairs, unpaired = pair_files(args.mask_a, args.mask_b)
        warn_unpaired(unpaired)
        if args.out.suffix.lower() in FORMATS or args.out.is_file():
            raise input_error(f"{args.out}: with folders of masks, --out must be a folder")
        _check_not_an_input_folder(args.out, folders=(args.mask_a, args.mask_b))
        jobs = [(a, b, args.out / _output_name(a)) for a, b in pairs]
        out_folder = args.out
    else:
        jobs = [(args.mask_a, args.mask_b, args.out)]
        out_folder = args.out.parent
    remove_stale_temps(out_folder, command="merge")
    with engine_of(args):
        if not folders:
            summary = merge_files(*jobs[0][:2], out=jobs[0][2], policy=args.policy,
                                  iou_threshold=args.iou_threshold, overwrite=args.overwrite)
            print(f"{jobs[0][2]}: {_format_summary(summary)}")
            return 0
        return _merge_folder(jobs, policy=args.policy, iou_threshold=args.iou_threshold,
                             overwrite=args.overwrite)


def _output_name(mask_a: Path) -> str:
    """The output's file name in a folder run: A's name, .zarr for a store, else .tif."""
    from ..store import is_store_path, store_name

    return f"{store_name(mask_a)}.zarr" if is_store_path(mask_a) else f"{mask_a.stem}.tif"


def _check_not_an_input_folder(out: Path, *, folders) -> None:
    """Refuse a whole folder run whose ``--out`` is one of the input folders or inside one."""
    from .._files import is_inside, same_file

    for folder in folders:
        if same_file(out, folder):
            raise input_error(f"{out}: is an input folder ({folder}); choose another --out "
                              "so that the inputs are not overwritten")
        if is_inside(out, folder):
            raise input_error(f"{out}: is inside an input folder ({folder}); choose another "
                              "--out so that nothing is written among the inputs")


def _merge_folder(jobs, *, policy: str, iou_threshold: float, overwrite: bool) -> int:
    """Merge every pair as one task on the engine; a failed pair is reported, the rest go on.

    Each task records its pair when its output is written (:class:`..batch.Records`;
    a pending entry naming the output's bytes first, so that a kill in between
    leaves an output the rerun knows as ours):
    a rerun skips the pairs whose inputs, output and settings are unchanged (all
    of them are merged again with ``overwrite``); an output that a recorded run
    wrote and nobody changed since is replaced when its pair is not done. A pair
    that fails (bad input, a full disk) leaves its earlier output whole; the
    status is then 2.
    """
    from dask import delayed

    from ..batch import Records
    from ..engine import compute

    records = Records(jobs[0][2].parent, command="merge",
                      settings={"policy": policy, "iou_threshold": iou_threshold})
    records.check(out.stem for _, _, out in jobs)
    todo = [job for job in jobs if overwrite
            or records.done(job[2].stem, inputs=job[:2], output=job[2]) is None]
    tasks = [delayed(_merge_pair, pure=False)(*job, records=records, policy=policy,
                                              iou_threshold=iou_threshold, overwrite=overwrite)
             for job in todo]
    results = compute(*tasks, desc=f"merge {len(todo)} pairs") if tasks else ()
    failed = 0
    for (_, _, out), (ok, text) in zip(todo, results):
        failed += not ok
        print(f"{out}: {text}" if ok else f"mask-compare merge: error: {text}",
              file=sys.stdout if ok else sys.stderr)
    if len(todo) < len(jobs):
        print(f"mask-compare merge: {len(jobs) - len(todo)} of {len(jobs)} pairs were done by "
              "an earlier run with the same inputs and settings, skipped (--overwrite merges "
              "them again)", file=sys.stderr)
    if failed:
        print(f"mask-compare merge: {failed} of {len(jobs)} pairs failed", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _merge_pair(mask_a, mask_b, out, *, records, policy, iou_threshold, overwrite):
    """One pair of a folder run (a dask task): ``(True, summary line)`` or ``(False, error)``."""
    from ..errors import InputError

    try:
        summary = merge_files(
            mask_a, mask_b, out=out, policy=policy, iou_threshold=iou_threshold,
            overwrite=overwrite or records.wrote(out.stem, output=out),
            before_commit=lambda outputs: records.pending(out.stem, outputs=outputs))
        records.add(out.stem, inputs=(mask_a, mask_b), output=out, summary=summary)
    except InputError as err:
        return False, str(err)
    except OSError as err:
        return False, os_error_line(err)
    return True, _format_summary(summary)


def merge_files(mask_a, mask_b, *, out, policy: str = "a", iou_threshold: float = 0.1,
                overwrite: bool = False, before_commit=None) -> dict:
    """Read two masks, merge them by ``policy`` and write the output.

    The output's suffix names its format (:func:`..write.output_format`): a
    ``.zarr`` output is OME-Zarr labels (``out.zarr/labels/curated``),
    computed and written block by block on the current engine (masks read
    lazily, zarr or HDF5, are never loaded whole); ``.tif``/``.tiff`` a TIFF;
    ``.npy`` an NPY array. ``out`` (and a file output's ``_classes`` side-car,
    with class channels) is checked first: never an input, a review's output,
    a file mask-compare did not write or a path inside a zarr store; an
    earlier output of ours only with ``overwrite``. The files are replaced
    together, or not at all; ``before_commit`` is called just before (see
    :func:`.._files.staged`).

    Returns
    -------
    dict
        The merge summary (the keys of ``Session.summary()``: counts of A, B, M, N,
        Auto, contested voxels...).

    Raises
    ------
    InputError
        Bad input, or an output that may not be written (a suffix that names no
        format offered among them).
    OSError
        :class:`.._files.WriteError`: the write failed; the old files are intact.
    """
    from .._files import sidecar
    from ..merging import merge_masks
    from ..ome_zarr_out import write_ome_zarr_labels
    from ..read import load_pair, write_label_files
    from ..write import check_label_output

    inputs = (mask_a, mask_b)
    out, fmt = check_label_output(out, inputs=inputs, overwrite=overwrite)
    pair = load_pair(mask_a, mask_b)
    merged, classes, tables = merge_masks(
        pair.a, pair.b, policy=policy, iou_threshold=iou_threshold,
        classes_a=pair.classes_a, classes_b=pair.classes_b,
    )
    if fmt == "OME-Zarr":
        write_ome_zarr_labels(out, merged, voxel_size=pair.voxel_size, unit=pair.unit,
                              inputs=inputs, overwrite=overwrite, max_id=tables.n_objects,
                              before_commit=before_commit)
        return tables.summary
    files = {out: merged}
    if classes is not None:
        classes_path, _ = check_label_output(sidecar(out, "_classes" + out.suffix),
                                             inputs=inputs, overwrite=overwrite)
        files[classes_path] = classes
    if fmt == "NPY":
        _warn_voxel_size_lost(out, pair)
    write_label_files(files, voxel_size=pair.voxel_size, unit=pair.unit, relabel=False, fmt=fmt,
                      before_commit=before_commit)
    return tables.summary


def _warn_voxel_size_lost(out: Path, pair) -> None:
    """An NPY output keeps no voxel size: say so when the masks have one."""
    import warnings

    from ..errors import InputWarning
    from ..read import _format_size

    if pair.unit != "pixel" or any(size != 1 for size in pair.voxel_size):
        size = _format_size(pair.voxel_size, pair.unit)
        warnings.warn(f"{out}: an NPY file holds no voxel size; {size} is not kept (a .tif "
                      "or .zarr output keeps it)", InputWarning, stacklevel=2)


def _format_summary(summary: dict) -> str:
    return ", ".join(f"{key} {summary[key]}" for key in
                     ("objects", "A", "B", "M", "N", "Auto", "contested"))
