"""NGFF metadata: every version that tools write opens; a malformed field is one line.

Stores are written by hand (the JSON as NGFF 0.1 to 0.5 lay it out), then one
field is broken at a time: the refusal names the store and the field, and the
command line exits 2 with that one line and writes nothing. A mask whose fill
value is not 0 and that misses chunks is warned about once.
"""

import warnings

import numpy as np
import pytest
import zarr

from napari_mask_compare import _reader, store
from napari_mask_compare.cli import main
from napari_mask_compare.errors import InputError, InputWarning

SHAPE = (4, 24, 32)


def _mask() -> np.ndarray:
    mask = np.zeros(SHAPE, np.uint16)
    mask[1:3, 2:9, 3:12] = 5
    mask[:, 12:20, 15:30] = 9
    return mask


def _multiscale(version: str, ndim: int) -> dict:
    """``multiscales[0]`` as NGFF ``version`` writes it for an array of ``ndim`` axes."""
    names = "tczyx"[-ndim:]
    multiscale = {"version": version, "datasets": [{"path": "0"}]}
    if version == "0.3":
        multiscale["axes"] = list(names)
    elif version in ("0.4", "0.5"):
        multiscale["axes"] = [{"name": n, "type": "space", "unit": "micrometer"} for n in names]
        multiscale["datasets"][0]["coordinateTransformations"] = [
            {"type": "scale", "scale": [2.0, 0.5, 0.25][-ndim:]}]
    if version == "0.5":
        del multiscale["version"]
    return multiscale


def _write(path, version: str, *, data=None, edit=None):
    """An NGFF ``version`` image at ``path`` holding ``data`` as level 0; ``edit(attrs)``
    changes the attributes first (as a broken writer would)."""
    data = _mask() if data is None else data
    fmt = 3 if version == "0.5" else 2
    root = zarr.open_group(str(path), mode="w", zarr_format=fmt)
    root.create_array("0", data=data, chunks=(1,) * (data.ndim - 3) + (2, 12, 16))
    attrs = {"multiscales": [_multiscale(version, data.ndim)]}
    if version == "0.5":
        attrs = {"ome": {"version": "0.5", **attrs}}
    if edit is not None:
        edit(attrs["ome"] if version == "0.5" else attrs)
    root.attrs.put(attrs)
    return path


@pytest.mark.parametrize("version", ["0.1", "0.2", "0.3", "0.4", "0.5"])
def test_every_ngff_version_opens(tmp_path, version):
    path = _write(tmp_path / "x.ome.zarr", version)
    loaded = store.open_array(path)
    np.testing.assert_array_equal(loaded.data.compute(), _mask())
    if version in ("0.4", "0.5"):
        assert loaded.voxel_size == (2.0, 0.5, 0.25) and loaded.unit == "µm"
    else:
        assert loaded.voxel_size == (1.0, 1.0, 1.0) and loaded.unit == "pixel"


def test_ngff_0_2_without_axes_reads_t_and_c_of_one_as_dropped(tmp_path):
    path = _write(tmp_path / "x.ome.zarr", "0.2", data=_mask()[None, None])
    assert store.open_array(path).data.shape == SHAPE


def _set(*keys_and_value):
    """An edit that sets ``attrs[k1][k2]...`` to the last argument."""
    *keys, value = keys_and_value

    def edit(attrs):
        node = attrs
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return edit


SCALE = ("multiscales", 0, "datasets", 0, "coordinateTransformations")
#: (version, edit, the words of the one line after "x.ome.zarr: ").
MALFORMED = [
    ("0.4", _set("multiscales", 0, "axes", 1, "unit", ["micrometer"]),
     "multiscales[0].axes[1].unit is a list, expected a string (NGFF 0.4)"),
    ("0.4", _set(*SCALE, 0, "scale", ["2", "0.5", "0.25"]),
     "multiscales[0].datasets[0].coordinateTransformations[0].scale[0] is a string, expected "
     "a number (NGFF 0.4)"),
    ("0.4", _set(*SCALE, 0, "scale", [2.0, 0.5]),
     "multiscales[0].datasets[0].coordinateTransformations[0].scale has 2 values, expected 3 "
     "(one per axis of the array) (NGFF 0.4)"),
    ("0.4", _set(*SCALE, {"type": "scale", "scale": [1, 1, 1]}),
     "multiscales[0].datasets[0].coordinateTransformations is an object, expected a list of "
     "transformations (NGFF 0.4)"),
    ("0.4", _set("multiscales", {"datasets": [{"path": "0"}]}),
     "multiscales is an object, expected a list of multiscale objects"),
    ("0.4", _set("multiscales", "0"),
     "multiscales is a string, expected a list of multiscale objects"),
    ("0.4", _set("multiscales", 0, "axes", [0, 1, 2]),
     "multiscales[0].axes[0] is a number, expected an axis name or an object with a name "
     "(NGFF 0.4)"),
    ("0.4", _set("multiscales", 0, "axes", 2, "name", 2),
     "multiscales[0].axes[2].name is a number, expected a string (NGFF 0.4)"),
    ("0.4", _set("multiscales", 0, "datasets", 0, "path", 0),
     "multiscales[0].datasets[0].path is a number, expected the path of the level's array "
     "(NGFF 0.4)"),
    ("0.4", _set("multiscales", 0, "datasets", ["0"]),
     "multiscales[0].datasets[0] is a string, expected an object (NGFF 0.4)"),
    ("0.5", _set("multiscales", 0, "axes", 0, "type", True),
     "multiscales[0].axes[0].type is a boolean, expected a string (NGFF 0.5)"),
]


@pytest.mark.parametrize(("version", "edit", "words"), MALFORMED,
                         ids=[words.split(" is ")[0].split(" has ")[0] + f"-{i}"
                              for i, (_, _, words) in enumerate(MALFORMED)])
def test_malformed_ngff_metadata_is_one_line_naming_the_field(tmp_path, version, edit, words):
    path = _write(tmp_path / "x.ome.zarr", version, edit=edit)
    with pytest.raises(InputError) as err:
        store.open_array(path)
    assert str(err.value) == f"{path}: {words}"


def test_ome_that_is_no_object_and_labels_that_are_no_list_are_named(tmp_path):
    path = tmp_path / "x.zarr"
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    root.attrs.put({"ome": ["0.5"]})
    with pytest.raises(InputError, match=r"x.zarr: ome is a list, expected an object \(NGFF"):
        store.open_array(path)
    root.attrs.put({"ome": {"version": "0.5", "labels": "cells"}})
    with pytest.raises(InputError, match="x.zarr: labels is a string, expected a list of label "
                                         r"names \(NGFF 0.5\)$"):
        store.open_array(path)


def test_the_array_of_a_level_names_the_malformed_group_above_it(tmp_path):
    path = _write(tmp_path / "x.ome.zarr", "0.4",
                  edit=_set(*SCALE, 0, "scale", [2.0, "fast", 0.25]))
    with pytest.raises(InputError, match=r"x.ome.zarr: multiscales\[0\].datasets\[0\]"
                                         r".coordinateTransformations\[0\].scale\[1\] is a "
                                         "string"):
        store.open_array(path / "0")


def test_the_cli_refuses_malformed_metadata_in_one_line_and_writes_nothing(tmp_path, capsys):
    good = _write(tmp_path / "a.ome.zarr", "0.4")
    bad = _write(tmp_path / "b.ome.zarr", "0.4",
                 edit=_set("multiscales", 0, "axes", 1, "unit", ["micrometer"]))
    before = sorted(tmp_path.rglob("*"))
    for command in (["stats", str(good), str(bad)],
                    ["merge", str(good), str(bad), "--out", str(tmp_path / "m.zarr")]):
        assert main(command) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.splitlines() == [
            f"mask-compare {command[0]}: error: {bad}: multiscales[0].axes[1].unit is a list, "
            "expected a string (NGFF 0.4)"]
    assert sorted(tmp_path.rglob("*")) == before


def test_the_napari_reader_skips_a_malformed_store_with_its_line(tmp_path):
    bad = _write(tmp_path / "b.ome.zarr", "0.4", edit=_set("multiscales", 0, "axes", [0, 1, 2]))
    with pytest.warns(UserWarning, match=r"skipped .*b.ome.zarr: multiscales\[0\].axes\[0\] is "
                                         "a number"):
        assert _reader.get_reader(str(bad)) is None


# ----------------------------------------------------------------------------- fill value


def _mask_store(path, *, fill_value, missing: bool):
    """A zarr mask of ``fill_value`` whose chunk (1, 1, 1) is missing when ``missing``."""
    array = zarr.create_array(str(path), shape=SHAPE, dtype=np.uint16, chunks=(2, 12, 16),
                              fill_value=fill_value)
    data = _mask()
    if missing:
        data[2:4, 12:24, 16:32] = fill_value  # not written: equal to the fill value
    array[...] = data
    return str(path)


@pytest.mark.parametrize(("fill_value", "missing", "warned"),
                         [(7, True, True), (7, False, False), (0, True, False)])
def test_a_mask_whose_missing_chunks_read_as_objects_is_warned_once(tmp_path, capsys,
                                                                    fill_value, missing,
                                                                    warned):
    a = _mask_store(tmp_path / "a.zarr", fill_value=0, missing=False)
    b = _mask_store(tmp_path / "b.zarr", fill_value=fill_value, missing=missing)
    assert main(["stats", a, b, "--json"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    expected = [f"mask-compare stats: warning: {b}: fill_value is 7, so its 1 missing chunk(s) "
                "(of 8) read as objects of id 7, not as background; a mask's fill_value "
                "should be 0"]
    assert lines == (expected if warned else [])


def test_the_fill_value_warning_is_an_input_warning(tmp_path):
    b = _mask_store(tmp_path / "b.zarr", fill_value=3, missing=True)
    with pytest.warns(InputWarning, match="fill_value is 3"):
        store.open_array(b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store.open_array(b, what="image")  # an image's fill value is an intensity

