"""What the commands share: one-line errors, common options, progress bars."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2
#: Exit status when the reader of the output went away (128 + SIGPIPE, as a shell reports it).
EXIT_BROKEN_PIPE = 141


def input_error(message: str) -> Exception:
    from ..errors import InputError

    return InputError(message)


def os_error_line(err: OSError) -> str:
    """One line for the user: the file and the error's words.

    A :class:`._files.WriteError` is that line already; another ``OSError``
    gives ``<file>: <strerror>``.
    """
    from .._files import WriteError

    if isinstance(err, WriteError) or not err.filename:
        text = str(err)
    else:
        text = f"{err.filename}: {err.strerror or err}"
    return text.replace("\n", " ")


def add_overwrite(p, *, what: str) -> None:
    """``--overwrite``: replace the command's own earlier output, nothing else."""
    p.add_argument("--overwrite", action="store_true",
                   help=f"replace {what} written by an earlier run of mask-compare; an input, "
                        "a review's output or a file mask-compare did not write is never "
                        "overwritten")


def remove_stale_temps(folder: Path, *, command: str) -> None:
    """Remove the temporary files that a killed mask-compare left in ``folder``, and say so."""
    from .._files import remove_stale_temps

    removed = remove_stale_temps(folder)
    if removed:
        print(f"mask-compare {command}: removed {len(removed)} temporary file(s) left in "
              f"{folder} by a killed process", file=sys.stderr)


def iou_threshold_value(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def add_iou_threshold(p, *, help: str = "IoU that pairs two objects (default: 0.1)") -> None:
    """``--iou-threshold`` (also ``--iou_threshold``, the original tool's spelling)."""
    p.add_argument("--iou-threshold", "--iou_threshold", type=iou_threshold_value, default=0.1,
                   dest="iou_threshold", help=help)




def warn_unpaired(unpaired: dict) -> None:
    for folder, names in unpaired.items():
        if names:
            print(f"mask-compare: {len(names)} file(s) in {folder} have no partner, skipped: "
                  + ", ".join(names), file=sys.stderr)


def parse_thresholds(text: str) -> list[float]:
    """``"0.5,0.75"`` -> [0.5, 0.75]; InputError naming the option otherwise."""
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise input_error(
                f"--thresholds {text!r}: {part.strip()!r} is not a number; expected "
                "comma-separated IoU thresholds in [0, 1], e.g. 0.5,0.75"
            ) from None
        if not 0 <= value <= 1:
            raise input_error(f"--thresholds {text!r}: {value:g} is not in [0, 1]")
        values.append(value)
    return values


def add_engine_options(p) -> None:
    """``--scheduler`` and ``--workers``: where the blockwise (dask) work of zarr/HDF5 runs."""
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="dask scheduler for masks read lazily (zarr, OME-Zarr, HDF5) and for "
                        "folders of pairs: tcp://HOST:PORT of a running dask.distributed "
                        "cluster (e.g. dask-jobqueue on SLURM), or threads / processes "
                        "(default: threads, nothing to start)")
    p.add_argument("--workers", type=int, metavar="N", default=None,
                   help="start a local dask cluster of N worker processes for this run (with "
                        "--scheduler threads or processes: that many threads or processes)")
    p.add_argument("--worker-timeout", type=float, metavar="SECONDS", default=None,
                   help="on a dask cluster: fail when it has had no worker for this long "
                        "(default: 60)")
    p.add_argument("--verbose", action="store_true",
                   help="show dask.distributed's log lines (workers lost, restarted, "
                        "connections closed) on stderr")


def engine_of(args):
    """The :class:`..engine.Engine` that the engine options ask for (a context manager: a
    cluster is started on entry and stopped on exit), with progress on stderr."""
    from ..engine import Engine

    return Engine(scheduler=args.scheduler, workers=args.workers, progress=True,
                  worker_timeout=args.worker_timeout, verbose=args.verbose)


def is_mask_folder(path: Path) -> bool:
    """A folder of mask files (not a zarr store, which is a folder too)."""
    from ..store import is_store_path

    return path.is_dir() and not is_store_path(path)
