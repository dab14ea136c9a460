"""npe2 reader: layer types, scale, refusals, folders; then through a real viewer."""

import warnings

import mrcfile
import numpy as np
import pytest
import tifffile

from napari_mask_compare import io
from napari_mask_compare._reader import get_reader, is_label_array, layer_data


def _mask_3d():
    """Labels of shape (4, 16, 20): ids 3 and 900 (not sequential)."""
    mask = np.zeros((4, 16, 20), dtype=np.uint16)
    mask[1:3, 2:8, 3:9] = 3
    mask[0:2, 10:14, 12:18] = 900
    return mask


def _image_3d():
    rng = np.random.default_rng(0)
    return rng.normal(100.0, 10.0, size=(4, 16, 20)).astype(np.float32)


def _read(path):
    """Layers as the reader returns them, failing on any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reader = get_reader(str(path))
        assert callable(reader), f"{path} was refused"
        return reader(str(path))


def _only(layers):
    assert len(layers) == 1
    return layers[0]


# ----------------------------------------------------------------------------- TIFF


def test_plain_tiff_mask_opens_as_labels(tmp_path):
    path = tmp_path / "cells_mask.tif"
    tifffile.imwrite(path, _mask_3d(), photometric="minisblack")
    data, meta, kind = _only(_read(path))
    assert kind == "labels"
    assert meta["name"] == "cells_mask"
    assert meta["scale"] == (1.0, 1.0, 1.0)
    assert "units" not in meta
    np.testing.assert_array_equal(data, _mask_3d())


def test_imagej_tiff_spacing_goes_to_scale_and_units(tmp_path):
    path = tmp_path / "m.tif"
    tifffile.imwrite(path, _mask_3d(), imagej=True, resolution=(1 / 0.25, 1 / 0.25),
                     metadata={"axes": "ZYX", "spacing": 2.0, "unit": "um"})
    data, meta, kind = _only(_read(path))
    assert kind == "labels"
    assert meta["scale"] == (2.0, 0.25, 0.25)
    assert meta["units"] == ("µm",) * 3  # ImageJ "um" is read as µm


def test_ome_tiff_physical_size_goes_to_scale(tmp_path):
    path = tmp_path / "stack.ome.tif"
    tifffile.imwrite(path, _image_3d(), ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeZ": 1.5, "PhysicalSizeY": 0.5,
                               "PhysicalSizeX": 0.5, "PhysicalSizeXUnit": "µm"})
    data, meta, kind = _only(_read(path))
    assert kind == "image"
    assert meta["name"] == "stack"  # ".ome" dropped with ".tif"
    assert meta["scale"] == (1.5, 0.5, 0.5)
    assert data.dtype == np.float32


def test_float_image_opens_as_image(tmp_path):
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, _image_3d(), photometric="minisblack")
    data, _, kind = _only(_read(path))
    assert kind == "image"
    np.testing.assert_array_equal(data, _image_3d())


def test_integral_floats_open_as_editable_uint_labels(tmp_path):
    path = tmp_path / "float_mask.tif"
    tifffile.imwrite(path, _mask_3d().astype(np.float32), photometric="minisblack")
    data, _, kind = _only(_read(path))
    assert kind == "labels"
    assert data.dtype == np.uint16
    np.testing.assert_array_equal(data, _mask_3d())


def test_negative_integers_open_as_image(tmp_path):
    path = tmp_path / "signed.tif"
    tifffile.imwrite(path, _mask_3d().astype(np.int16) - 1, photometric="minisblack")
    assert _only(_read(path))[2] == "image"


def test_memory_mapped_labels_are_writeable(tmp_path):
    path = tmp_path / "m.tif"
    tifffile.imwrite(path, _mask_3d(), photometric="minisblack")
    assert not io.read_array(path).data.flags.writeable  # io maps uncompressed TIFFs
    data, _, _ = _only(_read(path))
    data[0, 0, 0] = 5  # napari's paint brush must be able to do this


def test_two_channel_mask_opens_as_instances_and_classes(tmp_path):
    path = tmp_path / "m.tif"
    stacked = np.stack([_mask_3d()[1], (_mask_3d()[1] > 0).astype(np.uint16) * 2], axis=0)
    tifffile.imwrite(path, stacked, imagej=True, metadata={"axes": "CYX"})
    layers = _read(path)
    assert [(meta["name"], kind) for _, meta, kind in layers] == [
        ("m", "labels"), ("m classes", "labels")]
    assert all(data.shape == (16, 20) for data, _, _ in layers)
    assert layers[0][1]["scale"] == (1.0, 1.0)


def test_rgb_tiff_opens_as_rgb_image(tmp_path):
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, np.zeros((16, 20, 3), dtype=np.uint8), photometric="rgb")
    data, meta, kind = _only(_read(path))
    assert kind == "image" and meta["rgb"] is True
    assert meta["scale"] == (1.0, 1.0)


# ----------------------------------------------------------------------------- NPY, MRC


def test_npy_labels_and_image(tmp_path):
    np.save(tmp_path / "mask.npy", _mask_3d().astype(np.int64))
    np.save(tmp_path / "image.npy", _image_3d())
    data, meta, kind = _only(_read(tmp_path / "mask.npy"))
    assert kind == "labels" and meta["scale"] == (1.0, 1.0, 1.0)
    assert _only(_read(tmp_path / "image.npy"))[2] == "image"


@pytest.mark.parametrize("suffix", [".mrc", ".rec"])
def test_mrc_voxel_size_in_angstrom(tmp_path, suffix):
    path = tmp_path / f"tomo{suffix}"
    with mrcfile.new(path) as mrc:
        mrc.set_data(_image_3d())
        mrc.voxel_size = (4.0, 5.0, 6.0)  # mrcfile takes (x, y, z)
    data, meta, kind = _only(_read(path))
    assert kind == "image"
    assert meta["scale"] == (6.0, 5.0, 4.0)
    assert meta["units"] == ("Å",) * 3
    assert meta["name"] == "tomo"


def test_mrc_mask_opens_as_labels(tmp_path):
    path = tmp_path / "seg.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(_mask_3d().astype(np.int16))
    data, _, kind = _only(_read(path))
    assert kind == "labels"
    np.testing.assert_array_equal(data, _mask_3d())


# ----------------------------------------------------------------------------- refusals


def test_text_file_is_refused_silently(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an image\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert get_reader(str(path)) is None


def test_missing_path_is_refused_silently(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert get_reader(str(tmp_path / "gone.tif")) is None


def test_tif_that_is_not_a_tiff_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "fake.tif"
    path.write_text("this is text, not a TIFF\n")
    with pytest.warns(UserWarning, match="fake.tif: cannot be read as TIF"):
        assert get_reader(str(path)) is None


def test_truncated_tiff_is_refused(tmp_path):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, _mask_3d(), photometric="minisblack", compression="zlib")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.warns(UserWarning, match="cut.tif"):
        assert get_reader(str(path)) is None


def test_npy_of_objects_is_refused(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.warns(UserWarning, match="objects.npy"):
        assert get_reader(str(path)) is None


def test_one_dimensional_array_is_refused(tmp_path):
    path = tmp_path / "line.npy"
    np.save(path, np.arange(5))
    with pytest.warns(UserWarning, match="1-D array"):
        assert get_reader(str(path)) is None


# ----------------------------------------------------------------------------- folders


def test_folder_opens_every_readable_file_sorted(tmp_path):
    tifffile.imwrite(tmp_path / "b_mask.tif", _mask_3d(), photometric="minisblack")
    np.save(tmp_path / "a_image.npy", _image_3d())
    (tmp_path / "c_notes.txt").write_text("ignored\n")
    (tmp_path / "d_broken.tif").write_text("not a TIFF\n")
    with pytest.warns(UserWarning, match="d_broken.tif"):
        reader = get_reader(str(tmp_path))
    layers = reader(str(tmp_path))
    assert [(meta["name"], kind) for _, meta, kind in layers] == [
        ("a_image", "image"), ("b_mask", "labels")]


def test_folder_without_readable_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing to see\n")
    assert get_reader(str(tmp_path)) is None


def test_list_of_paths_opens_each(tmp_path):
    for name in ("one", "two"):
        tifffile.imwrite(tmp_path / f"{name}.tif", _mask_3d(), photometric="minisblack")
    paths = [str(tmp_path / "one.tif"), str(tmp_path / "two.tif")]
    layers = get_reader(paths)(paths)
    assert [meta["name"] for _, meta, _ in layers] == ["one", "two"]


# ----------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (np.array([[0, 1], [2, 3]], dtype=np.uint8), True),
        (np.array([[0, 1], [2, 3]], dtype=np.int32), True),
        (np.array([[0, -1]], dtype=np.int32), False),
        (np.array([[True, False]]), True),
        (np.array([[0.0, 4.0]]), True),
        (np.array([[0.0, 4.5]]), False),
        (np.array([[0.0, -4.0]]), False),
        (np.array([[0.0, np.nan]]), False),
        (np.array([[0.0, 2.0**33]]), False),
        (np.array([[1 + 1j]]), False),
    ],
)
def test_is_label_array(data, expected):
    assert is_label_array(data) is expected


def test_is_label_array_scans_every_chunk(monkeypatch):
    import napari_mask_compare._reader as reader

    monkeypatch.setattr(reader, "_CHUNK", 10)
    data = np.zeros((50, 4), dtype=np.float64)
    assert is_label_array(data)
    data[-1, -1] = 0.5  # only in the last chunk
    assert not is_label_array(data)


def test_layer_data_pads_scale_for_extra_leading_axes():
    loaded = io.Loaded(np.zeros((2, 3, 4, 5), dtype=np.uint8), (2.0, 0.5, 0.5), "nm")
    (_, meta, kind), = layer_data(loaded, name="t")
    assert kind == "labels"
    assert meta["scale"] == (1.0, 2.0, 0.5, 0.5)
    assert meta["units"] == ("nm",) * 4


@pytest.mark.parametrize("unit", ["pixel", "unit", "blob", "A", "\\u00B5m", ""])
def test_layer_data_keeps_only_length_units(unit):
    loaded = io.Loaded(np.zeros((3, 4), dtype=np.float32), (1.0, 1.0), unit)
    (_, meta, _), = layer_data(loaded, name="x")
    assert "units" not in meta


# ----------------------------------------------------------------------------- viewer


def test_viewer_opens_mask_tiff_as_labels(make_napari_viewer, tmp_path):
    path = tmp_path / "mask.tif"
    tifffile.imwrite(path, _mask_3d(), imagej=True, resolution=(2.0, 2.0),
                     metadata={"axes": "ZYX", "spacing": 3.0, "unit": "um"})
    viewer = make_napari_viewer()
    layers = viewer.open(path, plugin="napari-mask-compare")
    assert [type(layer).__name__ for layer in layers] == ["Labels"]
    layer = viewer.layers["mask"]
    np.testing.assert_allclose(layer.scale, (3.0, 0.5, 0.5))
    assert set(np.unique(layer.data)) == {0, 3, 900}


def test_viewer_opens_a_folder(make_napari_viewer, tmp_path):
    tifffile.imwrite(tmp_path / "mask.tif", _mask_3d(), photometric="minisblack")
    tifffile.imwrite(tmp_path / "image.tif", _image_3d(), photometric="minisblack")
    viewer = make_napari_viewer()
    viewer.open(tmp_path, plugin="napari-mask-compare")
    assert [(layer.name, type(layer).__name__) for layer in viewer.layers] == [
        ("image", "Image"), ("mask", "Labels")]
