"""The one table of review actions: the README, the keys and the buttons are built from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from napari_mask_compare._qt._keys import REVIEW_KEYS
from napari_mask_compare.actions import ACTIONS, cli_help, key_table, markdown_table

README = Path(__file__).parents[2] / "README.md"


def test_readme_keys_table_is_the_table_of_actions():
    assert markdown_table() in README.read_text(encoding="utf-8")


def test_every_key_does_one_thing_and_the_original_keys_are_there():
    keys = [key for action in ACTIONS for key in action.keys]
    assert len(keys) == len(set(keys))
    assert key_table() == REVIEW_KEYS
    original = {"1": "A", "A": "A", "2": "B", "B": "B", "3": "M", "M": "M", "4": "N",
                "N": "N", "U": "undo", "Left": "previous", "Right": "next", "Q": "quit"}
    assert original.items() <= key_table().items()
    assert {"Up", "Down"} <= set(key_table())  # slices, in 3D


def test_the_cli_help_lists_every_action():
    text = cli_help()
    for action in ACTIONS:
        assert action.help in text


def test_the_table_loads_no_qt():
    code = ("import sys; import napari_mask_compare.actions; "
            "print(any(m.split('.')[0] in ('qtpy', 'PyQt6', 'PyQt5', 'napari') "
            "for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
