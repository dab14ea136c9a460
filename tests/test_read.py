import errno
import os
import stat
import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile

from napari_mask_compare.cli import main
from napari_mask_compare.errors import InputError, InputWarning
from napari_mask_compare.read import (
    image_files,
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
        (np.array([[0, 2**33]], dtype=np.int64), f"ids up to {2**33}, expected"),
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


# ------------------------------------------------------------------------- no silent wrong read


def _mask_2d():
    mask = np.zeros((8, 8), dtype=np.uint16)
    mask[1:4, 1:4] = 1
    mask[5:7, 2:7] = 2
    return mask


def _merge_is_refused(capsys, mask_a, mask_b, out):
    """``mask-compare merge`` exits 2 with one stderr line and writes nothing; the line."""
    before = sorted(out.parent.parent.rglob("*"))
    assert main(["merge", str(mask_a), str(mask_b), "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0]
    assert not out.exists() and sorted(out.parent.parent.rglob("*")) == before
    return lines[0]


def _two_series_ome(path, first, second):
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(first, photometric="minisblack", metadata={"axes": "YX"})
        tif.write(second, photometric="minisblack", metadata={"axes": "YX"})
    return path


def test_several_series_are_refused_and_one_is_chosen_as_file_k(tmp_path, capsys):
    other = np.zeros((5, 7), dtype=np.uint16)
    path = _two_series_ome(tmp_path / "cells.ome.tif", _mask_2d(), other)
    with pytest.raises(InputError) as err:
        load_mask(path)
    message = str(err.value)
    assert message.startswith(f"{path}: holds 2 series (shapes (8, 8) uint16, (5, 7) uint16)")
    assert "choose one as FILE:K, e.g. cells.ome.tif:1" in message
    assert np.array_equal(load_mask(f"{path}:0")[0], _mask_2d())
    labels, _, loaded = load_mask(f"{path}:1")
    assert labels.shape == (5, 7) and loaded.path == Path(f"{path}:1")
    with pytest.raises(InputError, match=r"no series 2, it holds 2 series; choose K from 0 to 1"):
        load_mask(f"{path}:2")
    np.save(tmp_path / "a.npy", _mask_2d())
    line = _merge_is_refused(capsys, tmp_path / "a.npy", path, tmp_path / "out" / "o.tif")
    assert str(path) in line and "holds 2 series" in line and "FILE:K" in line


def test_a_file_named_like_file_k_is_not_taken_for_a_series(tmp_path):
    _two_series_ome(tmp_path / "m.tif", _mask_2d(), np.ones((5, 7), np.uint16))
    (tmp_path / "m.tif:1").write_bytes(b"")
    with pytest.raises(InputError, match=r"m\.tif:1: unsupported file type '\.tif:1'"):
        load_mask(tmp_path / "m.tif:1")


def test_pyramid_levels_are_one_series_read_at_level_0(tmp_path):
    mask = np.zeros((256, 256), dtype=np.uint16)
    mask[10:60, 20:90] = 3
    path = tmp_path / "pyramid.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(mask, subifds=2, tile=(64, 64), photometric="minisblack")
        for factor in (2, 4):
            tif.write(mask[::factor, ::factor], subfiletype=1, tile=(64, 64),
                      photometric="minisblack")
    with tifffile.TiffFile(path) as tif:
        assert len(tif.series) == 1 and len(tif.series[0].levels) == 3
    assert np.array_equal(load_mask(path)[0], mask)


def _differing_pages(path, kind):
    """Pages of (8, 8), (5, 7), (8, 8); described as one image by ImageJ or OME metadata."""
    pages = [_mask_2d(), np.ones((5, 7), dtype=np.uint16), _mask_2d()]
    description = {
        "imagej": "ImageJ=1.11a\nimages=3\nslices=3\n",
        "ome": _ome_description(path.with_name("one.ome.tif"), (3, 8, 8)),
        "generic": None,
    }[kind]
    with tifffile.TiffWriter(path) as tif:
        for i, page in enumerate(pages):
            tif.write(page, photometric="minisblack", metadata=None,
                      description=description if i == 0 else None)
    return path


def _ome_description(path, shape):
    tifffile.imwrite(path, np.zeros(shape, np.uint16), ome=True, metadata={"axes": "ZYX"})
    with tifffile.TiffFile(path) as tif:
        return tif.ome_metadata


@pytest.mark.parametrize("kind", ["generic", "imagej", "ome"])
def test_pages_of_differing_shapes_are_never_stacked_or_cut(tmp_path, capsys, kind):
    path = _differing_pages(tmp_path / "pages.tif", kind)
    with pytest.raises(InputError) as err:
        load_mask(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "(5, 7)" in message and "8, 8)" in message
    if kind == "generic":  # tifffile makes one series per shape: one may be chosen
        assert "holds 2 series of pages that differ in shape or type (shapes (2, 8, 8)" in message
        assert "choose one as FILE:K" in message
        assert load_mask(f"{path}:1")[0].shape == (5, 7)
    else:
        assert "2 pages of (8, 8), 1 page of (5, 7)" in message
        assert "expected pages of one shape" in message
    line = _merge_is_refused(capsys, path, path, tmp_path / "out" / "o.tif")
    assert str(path) in line and "(5, 7)" in line


@pytest.mark.parametrize(
    ("write", "words"),
    [
        (lambda p: tifffile.imwrite(p, np.zeros((64, 64, 3), np.uint8), photometric="rgb"),
         "holds an RGB image (samples axis of 3)"),
        (lambda p: tifffile.imwrite(p, np.zeros((64, 64, 4), np.uint8), photometric="rgb",
                                    extrasamples=["unassalpha"]),
         "holds an RGBA image (samples axis of 4)"),
        (lambda p: tifffile.imwrite(p, np.zeros((64, 64, 2), np.uint16),
                                    photometric="minisblack", extrasamples=["unspecified"]),
         "holds 2 samples per pixel (samples axis of 2)"),
        (lambda p: tifffile.imwrite(p, np.zeros((3, 64, 64), np.uint16), ome=True,
                                    metadata={"axes": "CYX"}),
         "holds 3 channels (channel axis of 3)"),
    ],
    ids=["rgb", "rgba", "extrasamples", "3-channels"],
)
def test_rgb_or_channels_are_refused_as_a_mask(tmp_path, capsys, write, words):
    path = tmp_path / "rgb.tif"
    write(path)
    with pytest.raises(InputError) as err:
        load_mask(path)
    assert str(err.value) == (
        f"{path}: {words}, expected a label image with one value per pixel; an instance mask "
        "with a class channel has exactly 2 channels"
    )
    line = _merge_is_refused(capsys, path, path, tmp_path / "out" / "o.tif")
    assert str(path) in line and words in line


def test_rgb_is_still_an_image_and_two_channels_a_class_channel(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    assert load_image(tmp_path / "rgb.tif", shape=(8, 8)).shape == (8, 8, 3)
    assert read_array(tmp_path / "rgb.tif").channels == "S"
    classes = (_mask_2d() > 0).astype(np.uint16) * 3
    tifffile.imwrite(tmp_path / "c.tif", np.stack([_mask_2d(), classes]), imagej=True,
                     metadata={"axes": "CYX"})
    labels, found, loaded = load_mask(tmp_path / "c.tif")
    assert np.array_equal(labels, _mask_2d()) and np.array_equal(found, classes)
    assert loaded.channels == "C"


def _imagej_mask(path, size, unit="um"):
    tifffile.imwrite(path, _mask_2d(), imagej=True, resolution=(1 / size, 1 / size),
                     metadata={"axes": "YX", "unit": unit})
    return path


def test_voxel_sizes_that_disagree_warn_and_keep_a(tmp_path, capsys):
    a = _imagej_mask(tmp_path / "a.tif", 0.5)
    b = _imagej_mask(tmp_path / "b.tif", 0.25)
    with pytest.warns(InputWarning) as record:
        pair = load_pair(a, b)
    assert len(record) == 1
    assert str(record[0].message) == (
        f"{b}: voxel size 0.25 × 0.25 µm differs from mask A's 0.5 × 0.5 µm ({a}); "
        "using mask A's"
    )
    assert pair.voxel_size == pytest.approx((0.5, 0.5)) and pair.unit == "µm"
    out = tmp_path / "o.tif"
    capsys.readouterr()
    assert main(["merge", str(a), str(b), "--out", str(out)]) == 0
    err = capsys.readouterr().err.strip().splitlines()  # the CLI says it in one line
    assert err == [f"mask-compare merge: warning: {record[0].message}"]
    assert read_array(out).voxel_size == pytest.approx((0.5, 0.5))


def test_voxel_sizes_that_agree_or_are_unknown_do_not_warn(tmp_path):
    a = _imagej_mask(tmp_path / "a.tif", 0.5)
    same_in_nm = _imagej_mask(tmp_path / "nm.tif", 500.0, unit="nm")
    np.save(tmp_path / "pixels.npy", _mask_2d())
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        load_pair(a, same_in_nm)
        load_pair(a, tmp_path / "pixels.npy")
        load_pair(tmp_path / "pixels.npy", a)


@pytest.mark.parametrize(
    ("compression", "args"),
    [("lzw", None), ("zstd", None), ("zlib", None), ("deflate", None),
     ("jpegxl", {"lossless": True})],
)
def test_compressed_tiffs_are_read(tmp_path, compression, args):
    import imagecodecs  # a dependency: without it LZW, zstd and JPEG-XL cannot be read
    if compression == "jpegxl" and not imagecodecs.JPEGXL.available:
        pytest.skip("imagecodecs was built without JPEG-XL: it cannot encode the test file")
    mask = _labels_3d() * 257  # values beyond uint8
    path = tmp_path / "m.tif"
    tifffile.imwrite(path, mask, compression=compression, compressionargs=args,
                     photometric="minisblack")
    with tifffile.TiffFile(path) as tif:
        assert tif.pages.first.compression != 1  # compressed indeed
    labels, _, loaded = load_mask(path)
    assert np.array_equal(labels, mask) and loaded.data.shape == mask.shape


def test_folder_that_cannot_be_listed_is_refused(tmp_path, capsys, monkeypatch):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        tifffile.imwrite(tmp_path / name / "m.tif", _mask_2d(), photometric="minisblack")
    locked = tmp_path / "a"
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):  # root may list anything: make listing fail as it would
            listdir = os.listdir

            def refuse(path):
                if Path(path) == locked:
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
                return listdir(path)

            monkeypatch.setattr(os, "listdir", refuse)
        expected = f"{locked}: the folder cannot be listed (Permission denied)"
        for call in (lambda: image_files(locked), lambda: pair_files(locked, tmp_path / "b")):
            with pytest.raises(InputError) as err:
                call()
            assert str(err.value).startswith(expected)
        line = _merge_is_refused(capsys, locked, tmp_path / "b", tmp_path / "out" / "o")
        assert expected in line
    finally:
        locked.chmod(0o755)


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
