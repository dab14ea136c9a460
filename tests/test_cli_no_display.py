"""``mask-compare review`` without a display says so in one line (Qt would abort the process)."""

import os
import subprocess
import sys

import pytest

from napari_mask_compare.cli import main


@pytest.fixture
def no_display(monkeypatch):
    """Linux without X11 or Wayland; importing napari fails, to show it is not reached."""
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setitem(sys.modules, "napari", None)


def test_review_without_a_display_is_one_line(no_display, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["review", "--sample", "--out_dir", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("mask-compare review: error: no display")
    assert "xvfb-run -a mask-compare review" in lines[0] and "ssh -X" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("name, value", [("DISPLAY", ":0"), ("WAYLAND_DISPLAY", "wayland-0"),
                                         ("QT_QPA_PLATFORM", "offscreen"),
                                         ("QT_QPA_PLATFORM", "vnc:size=800x600")])
def test_review_with_a_display_goes_on(no_display, monkeypatch, capsys, name, value):
    monkeypatch.setenv(name, value)
    assert main(["review", "--sample", "--margin", "-1"]) == 2  # the next check stops it
    err = capsys.readouterr().err
    assert "no display" not in err and "--margin -1" in err


def test_review_on_macos_needs_no_display_variable(no_display, monkeypatch, capsys):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert main(["review", "--sample", "--margin", "-1"]) == 2
    assert "no display" not in capsys.readouterr().err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland platforms only")
def test_review_without_a_display_exits_2_not_sigabrt(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "-m", "napari_mask_compare.cli", "review",
                             "--sample", "--out_dir", str(tmp_path / "out")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "no display" in result.stderr
