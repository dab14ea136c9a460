import os
import stat
import warnings

import mrcfile
import numpy as np
import pytest
import tifffile

from napari_mask_compare.io import (
    InputError,
    load_image,
    load_mask,
    load_pair,
    pair_files,
    read_array,
    relabel_sequential,
    write_labels,
)


def _labels_3d():
    labels = np.zeros((4, 6, 8), dtype=np.uint16)
    labels[1:3, 1:4, 1:5] = 7
    labels[0, 4:6, 5:8] = 3
    return labels


# ----------------------------------------------------------------------------- reading


def test_plain_tiff_2d_and_3d(tmp_path):
    for data in (_labels_3d()[1], _labels_3d()):
        path = tmp_path / f"m{data.ndim}.tif"
        tifffile.imwrite(path, data)
        labels, classes, loaded = load_mask(path)
        assert np.array_equal(labels, data) and classes is None
        assert loaded.voxel_size == (1.0,) * data.ndim


def test_imagej_tiff_carries_voxel_size(tmp_path):
    path = tmp_path / "m.tif"
    tifffile.imwrite(path, _labels_3d(), imagej=True, resolution=(1 / 0.25, 1 / 0.5),
                     metadata={"axes": "ZYX", "spacing": 2.0, "unit": "um"})
    loaded = read_array(path)
    assert loaded.voxel_size == pytest.approx((2.0, 0.5, 0.25))
    assert loaded.data.shape == (4, 6, 8)


def test_imagej_stack_without_axes_is_read_as_z(tmp_path):
    # ImageJ files saved without axis metadata call their first axis "C"
    data = np.zeros((12, 6, 8), dtype=np.uint16)
    data[3:9, 2:4, 2:6] = 5
    path = tmp_path / "m.tif"
    tifffile.imwrite(path, data, imagej=True)
    assert np.array_equal(load_mask(path)[0], data)


def test_ome_tiff_voxel_size(tmp_path):
    path = tmp_path / "m.ome.tif"
    tifffile.imwrite(path, _labels_3d(), ome=True, metadata={
        "axes": "ZYX", "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.2, "PhysicalSizeZ": 0.3})
    loaded = read_array(path)
    assert loaded.voxel_size == pytest.approx((0.3, 0.2, 0.1))
    assert np.array_equal(loaded.data, _labels_3d())


def test_npy_and_mrc(tmp_path):
    np.save(tmp_path / "m.npy", _labels_3d())
    assert np.array_equal(load_mask(tmp_path / "m.npy")[0], _labels_3d())
    with mrcfile.new(tmp_path / "t.mrc") as mrc:
        mrc.set_data(_labels_3d().astype(np.int16))
        mrc.voxel_size = (10.0, 10.0, 20.0)  # x, y, z in Å
    labels, _, loaded = load_mask(tmp_path / "t.mrc")
    assert np.array_equal(labels, _labels_3d())
    assert loaded.voxel_size == pytest.approx((20.0, 10.0, 10.0)) and loaded.unit == "Å"


def test_class_channel_is_split_off(tmp_path):
    inst = _labels_3d()[1]
    cls = (inst > 0).astype(np.uint16) * 4
    np.save(tmp_path / "m.npy", np.stack([inst, cls], axis=-1))
    labels, classes, _ = load_mask(tmp_path / "m.npy")
    assert np.array_equal(labels, inst) and np.array_equal(classes, cls)


def test_integral_floats_and_huge_ids_are_accepted(tmp_path):
    data = np.array([[0, 2**32 - 1], [5, 5]], dtype=np.float64)
    np.save(tmp_path / "m.npy", data)
    labels = load_mask(tmp_path / "m.npy")[0]
    assert labels.dtype == np.uint32 and labels[0, 1] == 2**32 - 1


def test_image_with_channel_axis(tmp_path):
    image = np.random.default_rng(0).random((6, 8, 3)).astype(np.float32)
    tifffile.imwrite(tmp_path / "img.tif", image, photometric="rgb")
    assert load_image(tmp_path / "img.tif", shape=(6, 8)).shape == (6, 8, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.array([[0.0, 1.5]]), "non-integral floats (e.g. 1.5)"),
        (np.array([[0, -3]]), "negative labels (min -3)"),
        (np.array([[0, np.nan]]), "NaN"),
        (np.array([[0, 2**33]], dtype=np.int64), "ids up to"),
        (np.zeros((2, 2, 2, 2, 2), dtype=np.uint8), "5 dimensions"),
        (np.array([["a"]]), "expected a numeric image array"),
    ],
)
def test_bad_masks_are_refused_with_the_file_named(tmp_path, data, message):
    path = tmp_path / "bad.npy"
    np.save(path, data)
    with pytest.raises(InputError) as err:
        load_mask(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("text.tif", b"this is not a tiff", "cannot be read as TIF"),
        ("empty.npy", b"", "cannot be read as NPY"),
        ("mask.png", b"\x89PNG", "unsupported file type '.png'"),
    ],
)
def test_unreadable_files_are_refused(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_array(path)


def test_truncated_tiff_is_refused(tmp_path):
    path = tmp_path / "m.tif"
    tifffile.imwrite(path, np.arange(64 * 64, dtype=np.uint16).reshape(64, 64), compression="zlib")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match=str(path)):
        load_mask(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_array(tmp_path / "nope.tif")


def test_shape_mismatch_names_both_shapes(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 5), np.uint8))
    np.save(tmp_path / "b.npy", np.zeros((4, 6), np.uint8))
    with pytest.raises(InputError) as err:
        load_pair(tmp_path / "a.npy", tmp_path / "b.npy")
    assert "(4, 6)" in str(err.value) and "(4, 5)" in str(err.value)


def test_image_shape_mismatch(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 5), np.uint8))
    np.save(tmp_path / "img.npy", np.zeros((5, 4), np.float32))
    with pytest.raises(InputError, match="image shape"):
        load_pair(tmp_path / "a.npy", tmp_path / "a.npy", image=tmp_path / "img.npy")


def test_pair_files_by_name(tmp_path):
    for folder, names in (("a", ["x.tif", "y.tif", "z.npy"]), ("b", ["y.tif", "x.npy", "w.tif"])):
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / name).write_bytes(b"")
    pairs, unpaired = pair_files(tmp_path / "a", tmp_path / "b")
    assert [(p.name, q.name) for p, q in pairs] == [("x.tif", "x.npy"), ("y.tif", "y.tif")]
    assert unpaired == {tmp_path / "a": ["z"], tmp_path / "b": ["w"]}


# ----------------------------------------------------------------------------- writing


def test_write_labels_relabels_to_uint16_with_voxel_size(tmp_path):
    labels = np.array([[[0, 70000], [9, 9]], [[0, 0], [0, 70000]]], dtype=np.uint32)
    path = write_labels(tmp_path / "o.tif", labels, voxel_size=(2.0, 0.5, 0.5), unit="µm")
    with tifffile.TiffFile(path) as tif:
        data = tif.asarray()
        assert tif.imagej_metadata["spacing"] == 2.0
    assert data.dtype == np.uint16
    assert np.array_equal(data, [[[0, 2], [1, 1]], [[0, 0], [0, 2]]])
    assert read_array(path).voxel_size == pytest.approx((2.0, 0.5, 0.5))
    assert [p.name for p in tmp_path.iterdir()] == ["o.tif"]


def test_write_labels_beyond_uint16_warns_and_never_wraps(tmp_path):
    labels = np.arange(70000, dtype=np.uint32).reshape(70, 1000)
    with pytest.warns(UserWarning, match="do not fit uint16"):
        path = write_labels(tmp_path / "o.tif", labels)
    data = tifffile.imread(path)
    assert data.dtype == np.uint32 and data.max() == 69999
    assert len(np.unique(data)) == 70000


def test_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "o.tif"
    write_labels(path, np.ones((3, 3), np.uint16))
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", fail)
    with pytest.raises(OSError, match="disk full"):
        write_labels(path, np.zeros((3, 3), np.uint16))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["o.tif"]


def test_unwritable_output_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a writable folder"):
        write_labels(tmp_path / "file" / "o.tif", np.ones((2, 2), np.uint8))


def test_relabel_sequential_keeps_order_and_background():
    labels = np.array([[0, 2**32 - 1, 5], [5, 0, 2**31]], dtype=np.uint32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert relabel_sequential(labels).tolist() == [[0, 3, 1], [1, 0, 2]]


def test_non_ascii_units_round_trip(tmp_path):
    path = write_labels(tmp_path / "t.tif", _labels_3d(), voxel_size=(20.0, 10.0, 10.0), unit="Å")
    loaded = read_array(path)
    assert loaded.unit == "Å" and loaded.voxel_size == pytest.approx((20.0, 10.0, 10.0))
    path = write_labels(tmp_path / "u.tif", _labels_3d(), unit="µm")
    assert read_array(path).unit == "µm"


def test_negative_or_float_labels_are_not_written(tmp_path):
    with pytest.raises(ValueError, match="down to -1"):
        write_labels(tmp_path / "o.tif", np.array([[0, -1], [3, 3]]))
    with pytest.raises(ValueError, match="integers"):
        write_labels(tmp_path / "o.tif", np.array([[0, 1.5]]))
    assert not list(tmp_path.iterdir())


def test_written_file_has_the_permissions_of_a_new_file(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_labels(tmp_path / "o.tif", np.ones((2, 2), np.uint8))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
