"""The npe2 manifest: valid, installed, and every python_name importable.

The widget's module is written separately; its entry is checked once the file
exists (validation itself never imports python names).
"""

import inspect
from importlib.resources import files
from pathlib import Path

import pytest
from npe2 import PluginManifest
from npe2.manifest.utils import import_python_name

import napari_mask_compare
from napari_mask_compare.write import FORMATS

MANIFEST = Path(str(files(napari_mask_compare) / "napari.yaml"))


@pytest.fixture(scope="module")
def manifest():
    return PluginManifest.from_file(MANIFEST)  # validates: raises on a broken manifest


def _commands(manifest):
    return {command.id: command for command in manifest.contributions.commands}


def test_npe2_validate_cli_passes():
    from npe2.cli import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["validate", "napari-mask-compare"])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_installed_distribution_serves_this_manifest(manifest):
    installed = PluginManifest.from_distribution("napari-mask-compare")
    assert installed.name == manifest.name == "napari-mask-compare"
    assert installed.display_name == "Mask compare"


def test_contributions(manifest):
    contributions = manifest.contributions
    (widget,) = contributions.widgets
    assert widget.display_name == "Mask compare"
    (reader,) = contributions.readers
    assert reader.accepts_directories
    assert {"*.tif", "*.tiff", "*.npy", "*.mrc", "*.rec"} <= set(reader.filename_patterns)
    (writer,) = contributions.writers
    assert [str(t) for t in writer.layer_types] == ["labels"]
    assert set(writer.filename_extensions) == set(FORMATS)  # what merge --out writes
    assert {(s.key, s.display_name) for s in contributions.sample_data} == {
        ("two_masks_2d", "Two masks (2D)"), ("two_masks_3d", "Two masks (3D)")}
    commands = _commands(manifest)
    for contribution in [widget, reader, writer, *contributions.sample_data]:
        assert contribution.command in commands


def test_widget_entry_points_at_the_dock_widget_class(manifest):
    (widget,) = manifest.contributions.widgets
    assert _commands(manifest)[widget.command].python_name == (
        "napari_mask_compare._qt._widget:MaskCompareWidget")


def test_python_names_import(manifest):
    for command in manifest.contributions.commands:
        if command.python_name.startswith("napari_mask_compare._qt._widget:"):
            continue  # below, once the module exists
        assert callable(import_python_name(command.python_name)), command.id


def test_widget_class_imports_and_takes_the_viewer(manifest):
    (widget,) = manifest.contributions.widgets
    cls = import_python_name(_commands(manifest)[widget.command].python_name)
    assert "napari_viewer" in inspect.signature(cls).parameters
