"""What a command must leave as it was, and how it refuses (test_cli_clobber,
test_cli_merge_formats)."""

import os

from napari_mask_compare.cli import main


def state(*paths):
    """What must not change: bytes, mtime and inode of each file (links followed)."""
    return {str(p): (open(p, "rb").read(), os.stat(p).st_mtime_ns, os.stat(p).st_ino)
            for p in paths}


def tree(folder):
    return state(*sorted(p for p in folder.rglob("*") if p.is_file()))


def refused(capsys, argv, *, named):
    """Run ``argv``: exit 2 and one stderr line that names ``named``."""
    assert main([str(arg) for arg in argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"mask-compare {argv[0]}: error: ") and str(named) in lines[0]
    return lines[0]


def entries(folder):
    """Every file and folder under ``folder``: what a report must not add to."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
