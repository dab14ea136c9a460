"""The ``mask-compare`` command: review, merge, stats, report.

Nothing heavy is imported at module import: ``mask-compare --help`` is instant
and napari is imported only by ``review``. Bad input, an output that may not be
written and a failed write (a full disk) end with one line on stderr and exit
status 2, never a traceback; so does a reader that goes away (``mask-compare
stats --json | head``): the output stops quietly, with status 141 as a command
killed by SIGPIPE.

Never-overwrite rule (:func:`._files.check_output`): ``merge`` and ``report``
never write over one of their inputs, a review's output, or a file that
mask-compare did not write; their own earlier output only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from pathlib import Path

EXIT_BAD_INPUT = 2
#: Exit status when the reader of the output went away (128 + SIGPIPE, as a shell reports it).
EXIT_BROKEN_PIPE = 141


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mask-compare``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from .io import InputError

    try:
        with _one_line_warnings(args.command):
            status = args.run(args) or 0
        sys.stdout.flush()  # a reader gone is met here, not at the interpreter's exit
        return status
    except BrokenPipeError:  # before OSError, which it is
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except InputError as err:
        print(f"mask-compare {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:
        print(f"mask-compare {args.command}: error: {_os_error_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"mask-compare {args.command}: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _one_line_warnings(command: str):
    """Warnings of this package (e.g. voxel sizes that disagree) as one line each on stderr."""
    from .io import InputWarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, InputWarning):
            print(f"mask-compare {command}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    default = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always", InputWarning)  # each file's, every time
        warnings.showwarning = show
        yield


def _silence_stdout() -> None:
    """The reader of stdout went away: send what is left to /dev/null.

    Python flushes stdout again at exit, which would print a second
    BrokenPipeError; stdout pointing at /dev/null takes it quietly.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (a test's capture)
        pass


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (and the way to the help), exit status 2."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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


def _os_error_line(err: OSError) -> str:
    """One line for the user: the file and the error's words.

    A :class:`._files.WriteError` is that line already; another ``OSError``
    gives ``<file>: <strerror>``.
    """
    from ._files import WriteError

    if isinstance(err, WriteError) or not err.filename:
        text = str(err)
    else:
        text = f"{err.filename}: {err.strerror or err}"
    return text.replace("\n", " ")


def _add_overwrite(p, *, what: str) -> None:
    """``--overwrite``: replace the command's own earlier output, nothing else."""
    p.add_argument("--overwrite", action="store_true",
                   help=f"replace {what} written by an earlier run of mask-compare; an input, "
                        "a review's output or a file mask-compare did not write is never "
                        "overwritten")


def _remove_stale_temps(folder: Path, *, command: str) -> None:
    """Remove the temporary files that a killed mask-compare left in ``folder``, and say so."""
    from ._files import remove_stale_temps

    removed = remove_stale_temps(folder)
    if removed:
        print(f"mask-compare {command}: removed {len(removed)} temporary file(s) left in "
              f"{folder} by a killed process", file=sys.stderr)


def _iou_threshold(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _add_iou_threshold(p, *, help: str = "IoU that pairs two objects (default: 0.1)") -> None:
    """``--iou-threshold`` (also ``--iou_threshold``, the original tool's spelling)."""
    p.add_argument("--iou-threshold", "--iou_threshold", type=_iou_threshold, default=0.1,
                   dest="iou_threshold", help=help)


# --------------------------------------------------------------------------- review


def _add_review(commands) -> None:
    from ._qt._actions import cli_help  # the table of review actions: no Qt, no napari

    p = commands.add_parser(
        "review",
        help="open napari to review two masks case by case",
        description=(
            "Open napari with the Mask compare widget docked and the review started: of two "
            "mask files (MASK_A MASK_B [--image IMG]), or of folders of them (files paired by "
            "name, with previous/next file). Every decision is saved; run the same command "
            "again to resume. Q saves, prints the summary and closes the window (with "
            "folders, at once: the next run goes on)."
        ),
        epilog=cli_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("masks", nargs="*", type=Path, metavar="MASK",
                   help="mask A (the reference) and mask B, two files; or use --mask_a_dir "
                        "and --mask_b_dir")
    p.add_argument("--image", type=Path, metavar="IMG",
                   help="the image of the two mask files (optional)")
    for name, what in (("images_dir", "folder of images (optional)"),
                       ("mask_a_dir", "folder of masks A (the reference)"),
                       ("mask_b_dir", "folder of masks B"),
                       ("out_dir", "folder for the curated masks and their journals")):
        p.add_argument(f"--{name}", f"--{name.replace('_', '-')}", dest=name, type=Path,
                       metavar="DIR", help=what)
    p.add_argument("--margin", type=int, default=15,
                   help="pixels shown around each group (default: 15)")
    _add_iou_threshold(p)
    p.add_argument("--sample", nargs="?", const="2d", choices=("2d", "3d"), default=None,
                   help="review the sample data (2d unless 3d is given); --out_dir defaults "
                        "to ./mask-compare-sample")
    p.set_defaults(run=_run_review)


#: Qt platform plugins that draw without a display server.
_HEADLESS_QT_PLATFORMS = ("offscreen", "minimal", "minimalegl", "vnc", "eglfs", "linuxfb",
                          "vkkhrdisplay")


def _check_display() -> None:
    """Refuse to open napari where Qt has no display (it would abort the process).

    On macOS and Windows there is always one; elsewhere Qt needs ``DISPLAY``
    (X11) or ``WAYLAND_DISPLAY``, unless ``QT_QPA_PLATFORM`` names a platform
    that needs none (offscreen, minimal, vnc...).
    """
    if sys.platform in ("darwin", "win32"):
        return
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0].strip().lower()
    if platform in _HEADLESS_QT_PLATFORMS:
        return
    raise _input_error(
        "no display (DISPLAY and WAYLAND_DISPLAY are not set): review opens a napari window; "
        "run it in a desktop session, over `ssh -X`, or under `xvfb-run -a mask-compare "
        "review ...`; for batch work use merge, stats or report")


def _run_review(args) -> int:
    """Check the arguments, then open napari with the review started; returns at exit.

    In that window Q saves, prints the summary and closes the window
    (``quit_closes_window``); with folders it closes at once, the current
    file saved.
    """
    from ._files import check_writable

    _check_display()
    if args.margin < 0:
        raise _input_error(f"--margin {args.margin}: must be 0 or more pixels")
    if args.sample:
        kind, out_dir, note = _review_sample_args(args)
    elif args.masks:
        kind, out_dir, note = _review_file_args(args)
    else:
        kind, out_dir, note = _review_folder_args(args)
    check_writable(out_dir / "review.tif")
    viewer, widget = _review_window(args, out_dir)
    if kind == "sample":
        _add_sample(viewer, widget, args.sample)
    elif kind == "files":
        widget.set_files(args.masks[0], args.masks[1], image=args.image)
    else:
        widget.set_folders(images_dir=args.images_dir, mask_a_dir=args.mask_a_dir,
                           mask_b_dir=args.mask_b_dir)
    print(f"mask-compare review: {note}; curated masks and journals go to {out_dir}")
    widget.start()
    import napari

    napari.run()
    return 0


def _review_folders(args) -> dict:
    return {"--images_dir": args.images_dir, "--mask_a_dir": args.mask_a_dir,
            "--mask_b_dir": args.mask_b_dir}


def _review_sample_args(args) -> tuple[str, Path, str]:
    """``--sample``: nothing else to review; the out dir defaults to ./mask-compare-sample."""
    given = [flag for flag, folder in _review_folders(args).items() if folder is not None]
    given += ["MASK"] * bool(args.masks) + ["--image"] * (args.image is not None)
    if given:
        raise _input_error(f"--sample reviews the sample data: drop {', '.join(given)}")
    return "sample", args.out_dir or Path.cwd() / "mask-compare-sample", \
        f"{args.sample} sample data"


def _review_file_args(args) -> tuple[str, Path, str]:
    """Two mask files (and an image): checked before napari opens."""
    from ._files import same_file

    if len(args.masks) != 2:
        raise _input_error(f"review takes two mask files, A then B; got {len(args.masks)}: "
                           + " ".join(map(str, args.masks)))
    folders = [flag for flag, folder in _review_folders(args).items() if folder is not None]
    if folders:
        raise _input_error(f"give two mask files or folders, not both: drop {', '.join(folders)}")
    if args.out_dir is None:
        raise _input_error("missing --out_dir (the folder for the curated mask)")
    mask_a, mask_b = args.masks
    for path in (mask_a, mask_b, args.image):
        if path is not None and path.is_dir():
            raise _input_error(f"{path}: is a folder; give two mask files, or the folders with "
                               "--mask_a_dir and --mask_b_dir")
        if path is not None and not path.exists():
            raise _input_error(f"no such file: {path}")
    if same_file(mask_a, mask_b):
        raise _input_error(f"{mask_a}: is given as both mask A and mask B; give the two masks "
                           "to compare")
    _check_out_dir(args.out_dir, folders=(mask_a.parent, mask_b.parent))
    return "files", args.out_dir, f"{mask_a.name} vs {mask_b.name}"


def _review_folder_args(args) -> tuple[str, Path, str]:
    """Folders of masks (and images), paired by name: checked and listed before napari opens."""
    from ._files import same_file
    from .io import pair_files

    folders = _review_folders(args)
    if args.image is not None:
        raise _input_error("--image goes with two mask files; with folders use --images_dir")
    missing = [flag for flag in ("--mask_a_dir", "--mask_b_dir") if folders[flag] is None]
    missing += ["--out_dir"] * (args.out_dir is None)
    if missing:
        raise _input_error(f"missing {', '.join(missing)} (or two mask files, or --sample to "
                           "try the sample)")
    absent = [f"{flag} {folder}" for flag, folder in folders.items()
              if folder is not None and not folder.is_dir()]
    if absent:
        raise _input_error(f"no such folder: {'; '.join(absent)}")
    if same_file(args.mask_a_dir, args.mask_b_dir):
        raise _input_error(f"--mask_a_dir and --mask_b_dir are the same folder "
                           f"({args.mask_a_dir}); give the folders of the two masks to compare")
    _check_out_dir(args.out_dir, folders=(args.mask_a_dir, args.mask_b_dir))
    paired = [args.mask_a_dir, args.mask_b_dir] + [args.images_dir] * bool(args.images_dir)
    pairs, unpaired = pair_files(*paired)
    _warn_unpaired(unpaired)
    return "folders", args.out_dir, f"{len(pairs)} file(s)"


def _check_out_dir(out_dir: Path, *, folders) -> None:
    """The curated masks never go into an input folder (they would take the inputs' names)."""
    from ._files import same_file

    for folder in folders:
        if same_file(out_dir, folder):
            raise _input_error(f"--out_dir {out_dir}: is an input folder ({folder}); choose "
                               "another, so that no input is overwritten")


def _review_window(args, out_dir: Path):
    """napari with the widget docked; Q there prints the summary and closes the window."""
    import napari

    from ._qt._widget import MaskCompareWidget

    viewer = napari.Viewer(title="mask-compare review")
    widget = MaskCompareWidget(viewer, quit_closes_window=True)
    viewer.window.add_dock_widget(widget, name="Mask compare", area="right")
    widget.set_parameters(margin=args.margin, iou_threshold=args.iou_threshold)
    widget.set_out_dir(out_dir)
    return viewer, widget


def _add_sample(viewer, widget, which: str) -> None:
    from . import _sample_data

    make = _sample_data.make_sample_3d if which == "3d" else _sample_data.make_sample_2d
    image, mask_a, mask_b = (getattr(viewer, f"add_{kind}")(data, **meta)
                             for data, meta, kind in make())
    widget.set_layers(image=image, mask_a=mask_a, mask_b=mask_b)


# --------------------------------------------------------------------------- merge


def _add_merge(commands) -> None:
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
                   help="output .tif (a folder when MASK_A and MASK_B are folders)")
    p.add_argument("--policy", choices=("a", "b", "union", "larger"), default="a",
                   help="a: keep A; b: keep B; union: merge each group into one object; "
                        "larger: the side with more voxels (default: a)")
    _add_iou_threshold(p)
    _add_overwrite(p, what="output TIFFs (and their _classes.tif)")
    p.set_defaults(run=_run_merge)


def _run_merge(args) -> int:
    from .io import pair_files

    if args.mask_a.is_dir() or args.mask_b.is_dir():
        pairs, unpaired = pair_files(args.mask_a, args.mask_b)
        _warn_unpaired(unpaired)
        if args.out.suffix.lower() in (".tif", ".tiff") or args.out.is_file():
            raise _input_error(f"{args.out}: with folders of masks, --out must be a folder")
        _check_not_an_input_folder(args.out, folders=(args.mask_a, args.mask_b))
        jobs = [(a, b, args.out / f"{a.stem}.tif") for a, b in pairs]
        out_folder = args.out
    else:
        jobs = [(args.mask_a, args.mask_b, args.out)]
        out_folder = args.out.parent
    _remove_stale_temps(out_folder, command="merge")
    if len(jobs) == 1:
        summary = merge_files(*jobs[0][:2], out=jobs[0][2], policy=args.policy,
                              iou_threshold=args.iou_threshold, overwrite=args.overwrite)
        print(f"{jobs[0][2]}: {_format_summary(summary)}")
        return 0
    return _merge_folder(jobs, policy=args.policy, iou_threshold=args.iou_threshold,
                         overwrite=args.overwrite)


def _check_not_an_input_folder(out: Path, *, folders) -> None:
    """Refuse a whole folder run whose ``--out`` is one of the input folders."""
    from ._files import same_file

    for folder in folders:
        if same_file(out, folder):
            raise _input_error(f"{out}: is an input folder ({folder}); choose another --out "
                               "so that the inputs are not overwritten")


def _merge_folder(jobs, *, policy: str, iou_threshold: float, overwrite: bool) -> int:
    """Merge file after file; a bad or refused file is reported and skipped, and the status is 2.

    A failed write (a full disk) stops the run: the files merged before stay whole.
    """
    from ._files import WriteError
    from .io import InputError

    failed = 0
    progress = _progress(jobs, desc="merge", unit="file")
    for mask_a, mask_b, out in progress:
        try:
            summary = merge_files(mask_a, mask_b, out=out, policy=policy,
                                  iou_threshold=iou_threshold, overwrite=overwrite)
        except WriteError:
            raise
        except (InputError, OSError) as err:
            failed += 1
            message = err if isinstance(err, InputError) else _os_error_line(err)
            progress.write(f"mask-compare merge: error: {message}", file=sys.stderr)
            continue
        progress.write(f"{out}: {_format_summary(summary)}")
    if failed:
        print(f"mask-compare merge: {failed} of {len(jobs)} pairs failed", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def merge_files(mask_a, mask_b, *, out, policy: str = "a", iou_threshold: float = 0.1,
                overwrite: bool = False) -> dict:
    """Read two masks, merge them by ``policy`` and write the output TIFF.

    ``out`` (and its ``_classes.tif`` side-car, with class channels) is
    checked first by :func:`._files.check_output`: never an input, a review's
    output or a file mask-compare did not write; an earlier output of ours
    only with ``overwrite``. Both files are replaced together, or neither.

    Returns
    -------
    dict
        The session summary (counts of A, B, M, N, Auto, contested voxels...).

    Raises
    ------
    InputError
        Bad input, or an output that may not be written.
    OSError
        :class:`._files.WriteError`: the write failed; the old files are intact.
    """
    from ._files import sidecar
    from .io import load_pair, write_label_files
    from .session import Session, merge

    inputs = (mask_a, mask_b)
    out = _check_merge_output(out, inputs=inputs, overwrite=overwrite)
    pair = load_pair(mask_a, mask_b)
    session = merge(
        Session.from_masks(pair.a, pair.b, iou_threshold=iou_threshold,
                           classes_a=pair.classes_a, classes_b=pair.classes_b),
        policy=policy,
    )
    tiffs = {out: session.output}
    classes = session.class_map()
    if classes is not None:
        classes_path = _check_merge_output(sidecar(out, "_classes.tif"), inputs=inputs,
                                           overwrite=overwrite)
        tiffs[classes_path] = classes
    write_label_files(tiffs, voxel_size=pair.voxel_size, unit=pair.unit, relabel=False)
    return session.summary()


def _check_merge_output(path, *, inputs, overwrite: bool) -> Path:
    """:func:`._files.check_output` for merge: ours is a TIFF that mask-compare wrote."""
    from ._files import check_output
    from .io import is_our_tiff

    return check_output(path, inputs=inputs, ours=is_our_tiff, overwrite=overwrite)


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
    _add_iou_threshold(p, help="IoU that links objects into review groups (default: 0.1)")
    p.add_argument("--boundary", action="store_true",
                   help="also measure boundary distances (Hausdorff, HD95, ASSD, surface "
                        "Dice) of every pair matched at IoU 0.5, in the voxel size's unit: "
                        "reads each pair's crop, the slowest part")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_run_stats)


def _run_stats(args) -> int:
    from .stats import DEFAULT_THRESHOLDS

    thresholds = (_parse_thresholds(args.thresholds) if args.thresholds is not None
                  else list(DEFAULT_THRESHOLDS))
    if not (args.mask_a.is_dir() or args.mask_b.is_dir()):
        summary = _stats_of_files(args.mask_a, args.mask_b, thresholds=thresholds,
                                  iou_threshold=args.iou_threshold, boundary=args.boundary)
        _print_stats(summary, as_json=args.json, iou_threshold=args.iou_threshold)
        return 0
    return _stats_of_folders(args, thresholds)


def _parse_thresholds(text: str) -> list[float]:
    """``"0.5,0.75"`` -> [0.5, 0.75]; InputError naming the option otherwise."""
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise _input_error(
                f"--thresholds {text!r}: {part.strip()!r} is not a number; expected "
                "comma-separated IoU thresholds in [0, 1], e.g. 0.5,0.75"
            ) from None
        if not 0 <= value <= 1:
            raise _input_error(f"--thresholds {text!r}: {value:g} is not in [0, 1]")
        values.append(value)
    return values


def _stats_of_files(mask_a, mask_b, *, thresholds, iou_threshold, boundary: bool) -> dict:
    from .io import load_pair
    from .stats import compare

    pair = load_pair(mask_a, mask_b)
    return compare(pair.a, pair.b, thresholds=thresholds, iou_threshold=iou_threshold,
                   voxel_size=pair.voxel_size, boundary=boundary, objects=False).summary


def _stats_of_folders(args, thresholds) -> int:
    """Per-file statistics and the dataset total; a bad pair is reported, skipped, status 2."""
    from .io import InputError, pair_files
    from .stats import combine

    for path in (args.mask_a, args.mask_b):
        if not path.is_dir():
            raise _input_error(f"{path}: is a file but the other mask is a folder; "
                               "give two files or two folders")
    pairs, unpaired = pair_files(args.mask_a, args.mask_b)
    _warn_unpaired(unpaired)
    per_file, failed = [], []
    progress = _progress(pairs, desc="stats", unit="file")
    for mask_a, mask_b in progress:
        try:
            summary = _stats_of_files(mask_a, mask_b, thresholds=thresholds,
                                      iou_threshold=args.iou_threshold,
                                      boundary=args.boundary)
        except InputError as err:
            failed.append({"name": mask_a.stem, "error": str(err)})
            progress.write(f"mask-compare stats: error: {err}", file=sys.stderr)
            continue
        per_file.append({"name": mask_a.stem, "mask_a": str(mask_a), "mask_b": str(mask_b),
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


def _aligned(header: list[str], rows: list[list[str]]) -> str:
    """Right-aligned text table (first column left-aligned)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def line(cells):
        return "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header)] + [line(r) for r in rows])


def _matching_cells(result: dict) -> list[str]:
    from .stats import MATCHING_COLUMNS

    return [fmt.format(result[key]) for _, key, fmt in MATCHING_COLUMNS]


def _matching_headers() -> list[str]:
    from .stats import MATCHING_COLUMNS

    return [header for header, _, _ in MATCHING_COLUMNS]


def _print_stats(summary: dict, *, as_json: bool, iou_threshold: float) -> None:
    from .stats import suite_lines

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
    from .stats import suite_lines

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


# --------------------------------------------------------------------------- report


def _add_report(commands) -> None:
    p = commands.add_parser(
        "report",
        help="CSV, TIFF and PNG report of a comparison",
        description=(
            "Write the quality report of B against A into a folder: matching statistics, "
            "review groups, per-object morphology, an RGB association map (true positives "
            "green, false negatives red, false positives blue) and plots. The files of an "
            "earlier report in the folder are replaced only with --overwrite; an input or a "
            "file that mask-compare did not write is never overwritten."
        ),
    )
    p.add_argument("mask_a", type=Path, metavar="MASK_A", help="reference mask file")
    p.add_argument("mask_b", type=Path, metavar="MASK_B", help="predicted mask file")
    p.add_argument("--out", type=Path, required=True, help="report folder (created if needed)")
    p.add_argument("--image", type=Path, help="the image: grey base of the association map")
    p.add_argument("--roi", type=Path,
                   help="region mask (non-zero inside): objects mostly outside are left out")
    p.add_argument("--curated", type=Path, metavar="OUT.tif",
                   help="a curated output to measure and compare with A and B")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="IoU threshold of the association map (default: 0.5)")
    p.add_argument("--thresholds", default=None, metavar="T1,T2,...",
                   help="thresholds of the statistics (default: 0.1,0.2,...,0.9)")
    _add_iou_threshold(p, help="IoU that links objects into review groups (default: 0.1)")
    p.add_argument("--filter", metavar="RULES", default=None,
                   help="property filter on the --curated output, e.g. 'npixels < 50 or "
                        "circularity < 0.5 and npixels < 200': writes filter_curated.csv "
                        "(each object Removed or Correct, the conditions it met) and "
                        "curated_filtered.tif")
    _add_overwrite(p, what="the files of a report")
    p.set_defaults(run=_run_report)


def _run_report(args) -> int:
    from .io import load_pair
    from .report import check_report_folder, report_files, write_report
    from .stats import DEFAULT_THRESHOLDS

    thresholds = (_parse_thresholds(args.thresholds) if args.thresholds is not None
                  else list(DEFAULT_THRESHOLDS))
    if not 0 <= args.threshold <= 1:
        raise _input_error(f"--threshold {args.threshold:g} is not in [0, 1]")
    for path in (args.mask_a, args.mask_b):
        if path.is_dir():
            raise _input_error(f"{path}: is a folder; report compares two mask files")
    if args.out.exists() and not args.out.is_dir():
        raise _input_error(f"{args.out}: is a file, --out must be a folder")
    rules = _parse_filter(args.filter, curated=args.curated)
    inputs = [path for path in (args.mask_a, args.mask_b, args.image, args.roi, args.curated)
              if path is not None]
    check_report_folder(args.out, inputs=inputs, overwrite=args.overwrite,
                        names=report_files(curated=args.curated is not None,
                                           filtered=rules is not None))
    _remove_stale_temps(args.out, command="report")
    pair = load_pair(args.mask_a, args.mask_b, image=args.image)
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


def _parse_filter(text, *, curated):
    """``--filter`` read before anything is loaded (None without it)."""
    if text is None:
        return None
    from .measure import parse_rules

    if curated is None:
        raise _input_error("--filter applies to a curated output: give it with --curated")
    try:
        return parse_rules(text)
    except ValueError as err:
        raise _input_error(f"--filter {text!r}: {err}") from None


def _check_filter_properties(rules, *, ndim: int, text: str) -> None:
    """Every property of ``rules`` is measured for ``ndim``-D masks."""
    from .measure import property_names

    if not rules:
        return
    known = property_names(ndim)
    for rule in rules:
        for prop, _, _ in rule:
            if prop not in known:
                raise _input_error(f"--filter {text!r}: no property {prop!r} in {ndim}D; "
                                   "known: " + ", ".join(known))


def _report_mask(path, pair, *, what: str):
    """Read an extra mask (ROI, curated output) and check it has the masks' shape."""
    if path is None:
        return None
    from .io import load_mask

    labels, _, _ = load_mask(path)
    if labels.shape != pair.a.shape:
        raise _input_error(
            f"{path}: {what} has shape {labels.shape} but mask A ({pair.paths['mask_a']}) "
            f"has {pair.a.shape}; it must cover the same image"
        )
    return labels


if __name__ == "__main__":
    sys.exit(main())
