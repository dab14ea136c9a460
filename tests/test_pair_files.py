"""Folders paired by name: files of one name are named, not dropped; a folder is not paired
with itself. And the command line's output stops quietly when its reader goes away."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_mask_compare import cli
from napari_mask_compare.errors import InputError
from napari_mask_compare.read import pair_files


def _folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        for name in ("x", "y"):
            tifffile.imwrite(folder / f"{name}.tif", np.ones((4, 4), np.uint16))
    return a, b


def test_files_of_one_name_are_named_not_dropped(tmp_path):
    a, b = _folders(tmp_path)
    np.save(a / "x.npy", np.ones((4, 4), np.uint16))
    with pytest.raises(InputError) as err:
        pair_files(a, b)
    message = str(err.value)
    assert str(a) in message and "x.npy and x.tif" in message and "\n" not in message
    assert cli.main(["merge", str(a), str(b), "--out", str(tmp_path / "out")]) == 2


def test_a_folder_is_not_paired_with_itself(tmp_path, capsys):
    a, _ = _folders(tmp_path)
    with pytest.raises(InputError, match="the same folder is given twice"):
        pair_files(a, a)
    assert cli.main(["stats", str(a), str(a)]) == 2
    assert "the same folder is given twice" in capsys.readouterr().err


def test_a_reader_gone_ends_the_output_quietly(tmp_path):
    """``mask-compare stats --json | head``: no BrokenPipeError traceback, status 141."""
    a, b = _folders(tmp_path)
    code = ("import sys; from napari_mask_compare import cli; "
            f"sys.exit(cli.main(['stats', {str(a)!r}, {str(b)!r}, '--json']))")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before a line is written
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == cli.EXIT_BROKEN_PIPE
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
