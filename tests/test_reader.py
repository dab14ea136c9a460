"""npe2 reader: layer types (from the data), scale, refusals, folders; then in a viewer."""

import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile

from napari_mask_compare import read
from napari_mask_compare._reader import get_reader, is_label_array, layer_data
from napari_mask_compare._sample_data import make_sample_2d, make_sample_3d
from napari_mask_compare.errors import InputError, Loaded


def _mask_3d():
    """Labels of shape (4, 16, 20): ids 3 and 900 (not sequential)."""
    mask = np.zeros((4, 16, 20), dtype=np.uint16)
    mask[1:3, 2:8, 3:9] = 3
    mask[0:2, 10:14, 12:18] = 900
    return mask


def _image_3d():
    rng = np.random.default_rng(0)
    return rng.normal(100.0, 10.0, size=(4, 16, 20)).astype(np.float32)


def _noisy_uint16(shape=(64, 80)):
    """A raw camera image: uint16, an offset, shot noise, no 0."""
    rng = np.random.default_rng(3)
    return rng.poisson(200, size=shape).astype(np.uint16)


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


def test_raw_uint16_tiff_opens_as_image(tmp_path):
    """The issue: a uint16 microscopy image must not open as random-coloured labels."""
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, _noisy_uint16((3, 64, 80)), photometric="minisblack")
    data, meta, kind = _only(_read(path))
    assert kind == "image"
    assert data.dtype == np.uint16
    assert meta == {"name": "img", "scale": (1.0, 1.0, 1.0)}  # nothing napari's reader lacks


def test_sample_arrays_open_as_image_and_labels(tmp_path):
    (image, _, _), (a, _, _), (b, _, _) = make_sample_2d()
    raw = (image * 1000).astype(np.uint16)
    for name, array in (("img", raw), ("a", a), ("b", b)):
        tifffile.imwrite(tmp_path / f"{name}.tif", array, photometric="minisblack")
    paths = [str(tmp_path / f"{name}.tif") for name in ("img", "a", "b")]
    layers = get_reader(paths)(paths)
    assert [(meta["name"], kind) for _, meta, kind in layers] == [
        ("img", "image"), ("a", "labels"), ("b", "labels")]


def test_negative_integers_open_as_image(tmp_path):
    path = tmp_path / "signed.tif"
    tifffile.imwrite(path, _mask_3d().astype(np.int16) - 1, photometric="minisblack")
    assert _only(_read(path))[2] == "image"


def test_memory_mapped_labels_are_writeable(tmp_path):
    path = tmp_path / "m.tif"
    tifffile.imwrite(path, _mask_3d(), photometric="minisblack")
    assert not read.read_array(path).data.flags.writeable  # io maps uncompressed TIFFs
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


def test_two_channel_image_opens_as_channels_not_classes(tmp_path):
    """A "C" axis of 2 is a class channel only when the data look like labels."""
    path = tmp_path / "two_colours.tif"
    tifffile.imwrite(path, _noisy_uint16((2, 16, 20)), imagej=True, metadata={"axes": "CYX"})
    data, meta, kind = _only(_read(path))
    assert kind == "image" and meta["channel_axis"] == 2
    assert data.shape == (16, 20, 2)


def test_samples_axis_of_two_is_never_a_class_channel(tmp_path):
    """The file says "samples per pixel" (as RGB does): load_mask refuses it; no class split."""
    path = tmp_path / "m.tif"
    stacked = np.stack([_mask_3d()[1], (_mask_3d()[1] > 0).astype(np.uint16)], axis=-1)
    tifffile.imwrite(path, stacked, photometric="minisblack", planarconfig="contig",
                     extrasamples=["unspecified"])
    assert read.read_array(path).channels == "S"
    data, meta, kind = _only(_read(path))
    assert kind == "image" and meta["channel_axis"] == 2
    with pytest.raises(InputError, match="samples per pixel"):
        read.load_mask(path)


def test_rgb_tiff_of_uint16_opens_as_rgb_image(tmp_path):
    path = tmp_path / "rgb16.tif"
    tifffile.imwrite(path, _noisy_uint16((16, 20, 3)), photometric="rgb")
    data, meta, kind = _only(_read(path))
    assert kind == "image" and meta["rgb"] is True
    assert meta["scale"] == (1.0, 1.0)


@pytest.mark.parametrize("layout", ["imagej-CYX", "bare-YX2", "npy-YX2", "ZYX-x2"])
def test_class_channel_split_agrees_with_load_mask(tmp_path, layout):
    instances = _mask_3d()[1]
    classes = (instances > 0).astype(np.uint16) * 2
    pair = np.stack([instances, classes], axis=-1)
    path = tmp_path / ("m.npy" if layout.startswith("npy") else "m.tif")
    if layout == "imagej-CYX":
        tifffile.imwrite(path, np.moveaxis(pair, -1, 0), imagej=True, metadata={"axes": "CYX"})
    elif layout == "bare-YX2":
        tifffile.imwrite(path, pair)
    elif layout == "npy-YX2":
        np.save(path, pair)
    else:  # the last axis, of 2, is x: the file says so
        same = np.stack([instances, instances], axis=-1)
        tifffile.imwrite(path, same, imagej=True, metadata={"axes": "ZYX"})
    _, read_classes, _ = read.load_mask(path)
    layers = _read(path)
    assert all(kind == "labels" for _, _, kind in layers)
    assert (len(layers) == 2) == (read_classes is not None)
    if read_classes is not None:
        np.testing.assert_array_equal(layers[1][0], read_classes)


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


# ----------------------------------------------------------------------------- is_label_array


def _squares(shape=(64, 64), *, width=6, ids=None, dtype=np.uint16):
    """Squares of ``width`` voxels on a background of 0, one id each (1, 2, ... or ``ids``)."""
    mask = np.zeros(shape, dtype=dtype)
    corners = [(y, x) for y in range(1, shape[-2] - width, width + 3)
               for x in range(1, shape[-1] - width, width + 3)]
    ids = list(range(1, len(corners) + 1)) if ids is None else ids
    for (y, x), value in zip(corners, ids * len(corners)):
        mask[..., y:y + width, x:x + width] = value
    return mask


@pytest.mark.parametrize("make", [make_sample_2d, make_sample_3d], ids=["2d", "3d"])
def test_sample_image_is_not_labels_and_its_masks_are(make):
    (image, _, _), (a, _, _), (b, _, _) = make()
    assert not is_label_array(image)  # float32 with fractions
    assert not is_label_array((image * 1000).astype(np.uint16))  # the same, as a camera gives it
    assert not is_label_array(np.clip(image * 255, 0, 255).astype(np.uint8))
    assert is_label_array(a) and is_label_array(b)


def test_noisy_uint16_images_are_not_labels():
    rng = np.random.default_rng(1)
    assert not is_label_array(rng.normal(500, 30, (128, 128)).astype(np.uint16))
    # a dark, background-subtracted image: mostly 0, then noise
    assert not is_label_array(np.clip(rng.normal(0, 3, (128, 128)), 0, None).astype(np.uint16))
    # sparse photon counts: isolated 1s on 0 (a binary mask has runs, these do not)
    assert not is_label_array(rng.poisson(0.1, (256, 256)).astype(np.uint16))


def test_posterised_image_without_background_is_not_labels():
    y, x = np.mgrid[:128, :128]
    smooth = np.sin(y / 15.0) + np.cos(x / 11.0)  # -2 .. 2
    levels = np.digitize(smooth, [-1.0, 0.0, 1.0])  # 4 levels, piecewise constant
    posterised = (30 + 60 * levels).astype(np.uint8)  # 30, 90, 150, 210: no 0
    assert not is_label_array(posterised)
    assert is_label_array(np.where(levels == 0, 0, posterised))  # with a background it may be


def test_smooth_gradient_is_not_labels():
    # 0 .. 255 in steps of 1, 16 columns each: piecewise constant, with a 0
    gradient = np.tile(np.linspace(0, 255, 4096).astype(np.uint8), (32, 1))
    assert not is_label_array(gradient)


@pytest.mark.parametrize("dtype", [np.uint32, np.int64, np.float64])
def test_huge_non_sequential_ids_are_labels(dtype):
    mask = _squares(ids=[2**32 - 1, 7, 123_456, 65_536], dtype=dtype)
    assert mask.max() == 2**32 - 1
    assert is_label_array(mask)


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.int32, np.float32])
def test_binary_mask_is_labels(dtype):
    assert is_label_array(_squares(ids=[1]).astype(dtype))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_empty_mask_is_labels(dtype):
    assert is_label_array(np.zeros((32, 48), dtype=dtype))


def test_3d_stacks():
    mask = _squares((40, 300, 300), width=9)
    mask[::2] = 0  # every other plane empty
    assert is_label_array(mask)
    rng = np.random.default_rng(2)
    assert not is_label_array(rng.poisson(100, (40, 300, 300)).astype(np.uint16))


def test_objects_narrower_than_the_threshold_are_not_labels():
    """Objects 3 wide have 2/3 of their voxels equal to the next one: labels; 2 wide, 1/2: not."""
    assert is_label_array(_squares(width=3))
    assert not is_label_array(_squares(width=2))


def test_sample_is_a_few_planes_of_whole_rows():
    import napari_mask_compare._reader as reader

    data = np.arange(64 * 256 * 512, dtype=np.uint32).reshape(64, 256, 512)
    rows = reader._sample_rows(data)
    assert rows.shape[1] == 512  # whole rows: neighbours along x stay neighbours
    assert rows.size <= reader.SAMPLE_SIZE
    planes = np.unique(rows[:, 0] // (256 * 512))
    assert len(planes) == reader.SAMPLE_PLANES and planes[0] == 0 and planes[-1] == 63


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_squares(dtype=np.int32), True),
        (_squares(dtype=np.int32) - 1, False),  # negative
        (_squares(dtype=np.float64), True),  # integral floats
        (_squares(dtype=np.float64) + 0.5 * (_squares() > 0), False),  # fractions
        (np.where(_squares() > 0, np.nan, 0.0), False),
        (_squares(dtype=np.float64) * 2.0**30, False),  # beyond 2**32 - 1
        (_squares(ids=[2**32 - 1], dtype=np.float32), False),  # float32 rounds it to 2**32
        (_squares().astype(np.complex64), False),
        (np.zeros((0, 3), dtype=np.uint16), True),
    ],
    ids=["int", "negative", "integral-float", "fractions", "nan", "beyond-uint32",
         "float32-rounded", "complex", "empty"],
)
def test_label_values(data, expected):
    assert is_label_array(data) is expected


def test_is_label_array_scans_every_chunk_of_floats(monkeypatch):
    import napari_mask_compare._reader as reader

    monkeypatch.setattr(reader, "_CHUNK", 10)
    monkeypatch.setattr(reader, "SAMPLE_SIZE", 8)  # two rows of 4: 12 and 37
    data = np.zeros((50, 4), dtype=np.float64)
    assert is_label_array(data)
    data[-1, -1] = 0.5  # outside the sample, in the last chunk
    assert not is_label_array(data)


# ----------------------------------------------------------------------------- layer_data


def test_layer_data_pads_scale_for_extra_leading_axes():
    loaded = Loaded(np.zeros((2, 3, 4, 5), dtype=np.uint8), (2.0, 0.5, 0.5), "nm")
    (_, meta, kind), = layer_data(loaded, name="t")
    assert kind == "labels"
    assert meta["scale"] == (1.0, 2.0, 0.5, 0.5)
    assert meta["units"] == ("nm",) * 4


@pytest.mark.parametrize("unit", ["pixel", "unit", "blob", "A", "\\u00B5m", ""])
def test_layer_data_keeps_only_length_units(unit):
    loaded = Loaded(np.zeros((3, 4), dtype=np.float32), (1.0, 1.0), unit)
    (_, meta, _), = layer_data(loaded, name="x")
    assert "units" not in meta


def test_image_layer_carries_only_name_and_calibration():
    loaded = Loaded(_noisy_uint16(), (0.5, 0.5), "µm", Path("raw.tif"), "")
    (data, meta, kind), = layer_data(loaded)
    assert kind == "image"
    assert data is loaded.data
    assert meta == {"name": "raw", "scale": (0.5, 0.5), "units": ("µm", "µm")}


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


def test_viewer_opens_an_image_as_napari_does(make_napari_viewer, tmp_path):
    """Where the data are not labels, the layer is the one napari's own reader makes."""
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, _noisy_uint16((3, 64, 80)), photometric="minisblack")
    viewer = make_napari_viewer()
    (ours,) = viewer.open(path, plugin="napari-mask-compare")
    (theirs,) = viewer.open(path, plugin="napari")
    assert type(ours) is type(theirs) and type(ours).__name__ == "Image"
    np.testing.assert_array_equal(ours.data, theirs.data)
    assert ours.data.dtype == theirs.data.dtype
    assert ours.rgb == theirs.rgb is False
    assert ours.metadata == theirs.metadata == {}
    assert ours.colormap.name == theirs.colormap.name
    np.testing.assert_allclose(ours.contrast_limits, theirs.contrast_limits)
    np.testing.assert_allclose(ours.scale, theirs.scale)


def test_viewer_opens_a_folder(make_napari_viewer, tmp_path):
    tifffile.imwrite(tmp_path / "mask.tif", _mask_3d(), photometric="minisblack")
    tifffile.imwrite(tmp_path / "image.tif", _image_3d(), photometric="minisblack")
    viewer = make_napari_viewer()
    viewer.open(tmp_path, plugin="napari-mask-compare")
    assert [(layer.name, type(layer).__name__) for layer in viewer.layers] == [
        ("image", "Image"), ("mask", "Labels")]
