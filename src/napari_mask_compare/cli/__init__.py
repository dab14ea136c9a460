"""The ``mask-compare`` command: review, merge, stats, report.

Nothing heavy is imported at module import: ``mask-compare --help`` is instant
and napari is imported only by ``review``. Bad input, an output that may not be
written and a failed write (a full disk) end with one line on stderr and exit
status 2, never a traceback; so does a reader that goes away (``mask-compare
stats --json | head``): the output stops quietly, with status 141 as a command
killed by SIGPIPE.

Never-overwrite rule (:func:`.._files.check_output`): ``merge`` and ``report``
never write over one of their inputs, a review's output, or a file that
mask-compare did not write; their own earlier output only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings

from ._common import EXIT_BAD_INPUT, EXIT_BROKEN_PIPE, os_error_line
from ._merge import add_merge, merge_files
from ._report import add_report
from ._review import add_review
from ._stats import add_stats

__all__ = ["EXIT_BAD_INPUT", "EXIT_BROKEN_PIPE", "build_parser", "main", "merge_files"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mask-compare``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..errors import InputError

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
        print(f"mask-compare {args.command}: error: {os_error_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"mask-compare {args.command}: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _one_line_warnings(command: str):
    """Warnings of this package (e.g. voxel sizes that disagree) as one line each on stderr."""
    from ..errors import InputWarning

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
    for add in (add_review, add_merge, add_stats, add_report):
        add(commands)
    return parser
