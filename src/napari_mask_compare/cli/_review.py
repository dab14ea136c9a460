"""``mask-compare review``: napari with the review widget, of files, folders or the sample."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ._common import add_iou_threshold, input_error, warn_unpaired


def add_review(commands) -> None:
    from ..actions import cli_help  # the table of review actions: no Qt, no napari

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
    add_iou_threshold(p)
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
    raise input_error(
        "no display (DISPLAY and WAYLAND_DISPLAY are not set): review opens a napari window; "
        "run it in a desktop session, over `ssh -X`, or under `xvfb-run -a mask-compare "
        "review ...`; for batch work use merge, stats or report")


def _run_review(args) -> int:
    """Check the arguments, then open napari with the review started; returns at exit.

    In that window Q saves, prints the summary and closes the window
    (``quit_closes_window``); with folders it closes at once, the current
    file saved.
    """
    from .._files import check_writable

    _check_display()
    if args.margin < 0:
        raise input_error(f"--margin {args.margin}: must be 0 or more pixels")
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
        raise input_error(f"--sample reviews the sample data: drop {', '.join(given)}")
    return "sample", args.out_dir or Path.cwd() / "mask-compare-sample", \
        f"{args.sample} sample data"


def _review_file_args(args) -> tuple[str, Path, str]:
    """Two mask files (and an image): checked before napari opens."""
    from .._files import same_file
    from ..read import load_pair
    from ..store import is_store_path, open_array

    if len(args.masks) != 2:
        raise input_error(f"review takes two mask files, A then B; got {len(args.masks)}: "
                          + " ".join(map(str, args.masks)))
    folders = [flag for flag, folder in _review_folders(args).items() if folder is not None]
    if folders:
        raise input_error(f"give two mask files or folders, not both: drop {', '.join(folders)}")
    if args.out_dir is None:
        raise input_error("missing --out_dir (the folder for the curated mask)")
    mask_a, mask_b = args.masks
    given = [path for path in (mask_a, mask_b, args.image) if path is not None]
    for path in given:
        if is_store_path(path):
            continue
        if path.is_dir():
            raise input_error(f"{path}: is a folder; give two mask files, or the folders with "
                              "--mask_a_dir and --mask_b_dir")
        if not path.exists():
            raise input_error(f"no such file: {path}")
    if all(is_store_path(path) for path in given):  # read lazily: checked whole, cheaply, now
        load_pair(mask_a, mask_b, image=args.image)
    else:  # the files are read by the widget; the stores are opened (lazily) here
        for path, what in ((mask_a, "mask"), (mask_b, "mask"), (args.image, "image")):
            if path is not None and is_store_path(path):
                open_array(path, what=what)
    if same_file(mask_a, mask_b):
        raise input_error(f"{mask_a}: is given as both mask A and mask B; give the two masks "
                          "to compare")
    _check_out_dir(args.out_dir, folders=(mask_a.parent, mask_b.parent), inputs=given)
    return "files", args.out_dir, f"{mask_a.name} vs {mask_b.name}"


def _review_folder_args(args) -> tuple[str, Path, str]:
    """Folders of masks (and images), paired by name: checked and listed before napari opens."""
    from .._files import same_file
    from ..read import pair_files

    folders = _review_folders(args)
    if args.image is not None:
        raise input_error("--image goes with two mask files; with folders use --images_dir")
    missing = [flag for flag in ("--mask_a_dir", "--mask_b_dir") if folders[flag] is None]
    missing += ["--out_dir"] * (args.out_dir is None)
    if missing:
        raise input_error(f"missing {', '.join(missing)} (or two mask files, or --sample to "
                          "try the sample)")
    absent = [f"{flag} {folder}" for flag, folder in folders.items()
              if folder is not None and not folder.is_dir()]
    if absent:
        raise input_error(f"no such folder: {'; '.join(absent)}")
    if same_file(args.mask_a_dir, args.mask_b_dir):
        raise input_error(f"--mask_a_dir and --mask_b_dir are the same folder "
                          f"({args.mask_a_dir}); give the folders of the two masks to compare")
    _check_out_dir(args.out_dir, folders=(args.mask_a_dir, args.mask_b_dir))
    paired = [args.mask_a_dir, args.mask_b_dir] + [args.images_dir] * bool(args.images_dir)
    pairs, unpaired = pair_files(*paired)
    warn_unpaired(unpaired)
    return "folders", args.out_dir, f"{len(pairs)} file(s)"


def _check_out_dir(out_dir: Path, *, folders, inputs=()) -> None:
    """The curated masks never go into an input folder (they would take the inputs' names),
    nor into an input's store or anywhere inside one."""
    from .._files import input_root, is_inside, same_file

    for folder in folders:
        if same_file(out_dir, folder):
            raise input_error(f"--out_dir {out_dir}: is an input folder ({folder}); choose "
                              "another, so that no input is overwritten")
    for given in inputs:
        if is_inside(out_dir, input_root(given)):
            raise input_error(f"--out_dir {out_dir}: is inside an input ({given}); choose "
                              "another, so that no input is written into")


def _review_window(args, out_dir: Path):
    """napari with the widget docked; Q there prints the summary and closes the window."""
    import napari

    from .._qt._widget import MaskCompareWidget

    viewer = napari.Viewer(title="mask-compare review")
    widget = MaskCompareWidget(viewer, quit_closes_window=True)
    viewer.window.add_dock_widget(widget, name="Mask compare", area="right")
    widget.set_parameters(margin=args.margin, iou_threshold=args.iou_threshold)
    widget.set_out_dir(out_dir)
    return viewer, widget


def _add_sample(viewer, widget, which: str) -> None:
    from .. import _sample_data

    make = _sample_data.make_sample_3d if which == "3d" else _sample_data.make_sample_2d
    image, mask_a, mask_b = (getattr(viewer, f"add_{kind}")(data, **meta)
                             for data, meta, kind in make())
    widget.set_layers(image=image, mask_a=mask_a, mask_b=mask_b)
