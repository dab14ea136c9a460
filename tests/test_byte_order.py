"""Every read path gives the values that the file's own reader gives, in either byte order.

ImageJ writes big-endian TIFFs; NPY, MRC, zarr v2 and HDF5 may hold big-endian
arrays. The reference is the format's reader (``tifffile.imread``, ``np.load``,
``mrcfile.read``, zarr, h5py): same values, and arrays in native byte order
(as ``tifffile.imread`` gives them), so that no kernel or viewer meets swapped
bytes. The matrix: dtype x byte order x storage (memory-mapped, uncompressed
tiles, zlib, LZW, zstd) x class channel (none, (y, x, 2), (z, y, x, 2) written
with a "C" axis).
"""

import json
import warnings

import h5py
import mrcfile
import numpy as np
import pytest
import tifffile
import zarr

from napari_mask_compare import _reader, store
from napari_mask_compare.cli import main
from napari_mask_compare.read import load_mask, load_pair, read_array

#: Every dtype a mask may be stored in (read accepts integers and integral floats).
DTYPES = ["u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8", "f2", "f4", "f8"]
#: How the TIFF holds its pixels: "mapped" is uncompressed and contiguous (memory-mapped
#: when native), "tiles" uncompressed but tiled (read), the others compressed.
STORAGE = ["mapped", "tiles", "zlib", "lzw", "zstd"]
#: No class channel; a class channel on (y, x) or on (z, y, x), written with a "C" axis.
CLASSES = ["none", "yxc", "zyxc"]


def _mask(dtype, *, shape=(24, 40)) -> np.ndarray:
    """Instances whose ids change when their bytes are swapped (1 -> 256, 3 -> 768, ...)."""
    dtype = np.dtype(dtype)
    big = 100 if dtype.itemsize == 1 else 1000 if dtype.itemsize == 2 else 70_000
    mask = np.zeros(shape, dtype=dtype)
    for k, label in enumerate((1, 3, 6, big)):
        mask[..., 2 + 5 * k: 5 + 5 * k, 3:9 + k] = label
    return mask


def _classes(mask: np.ndarray) -> np.ndarray:
    """A class per instance: 3 for ids below 5, else 2."""
    return np.where(mask == 0, 0, np.where(mask < 5, 3, 2)).astype(mask.dtype)


def _write_tiff(path, dtype, order: str, storage: str, classes: str):
    """A TIFF of ``_mask`` (with a class channel on axis "C") in byte order ``order``.

    Returns
    -------
    axis : int or None
        Where the file's "C" axis is (None without a class channel).
    """
    shape = (3, 24, 40) if classes == "zyxc" else (24, 40)
    mask = _mask(dtype, shape=shape)
    data, axes, axis = mask, "ZYX"[-mask.ndim:], None
    if classes != "none":
        axis = mask.ndim - 2  # C before Y, X: CYX or ZCYX
        data = np.stack([mask, _classes(mask)], axis=axis)
        axes = axes[:axis] + "C" + axes[axis:]
    options = {"tiles": {"tile": (16, 16)}, "mapped": {}}.get(storage,
                                                              {"compression": storage})
    tifffile.imwrite(path, data, byteorder=order, photometric="minisblack",
                     metadata={"axes": axes}, **options)
    return axis


def _expected(reference: np.ndarray, axis) -> tuple[np.ndarray, np.ndarray | None]:
    """(instances, classes) of what the format's reader gave."""
    if axis is None:
        return reference, None
    moved = np.moveaxis(reference, axis, -1)
    return moved[..., 0], moved[..., 1]


def _assert_same(found, expected) -> None:
    """The same values, in native byte order."""
    found = np.asarray(found)
    assert found.dtype.isnative
    assert found.shape == expected.shape and np.array_equal(found, expected)


@pytest.mark.parametrize("classes", CLASSES)
@pytest.mark.parametrize("storage", STORAGE)
@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_tiff_reads_as_tifffile_imread(tmp_path, dtype, order, storage, classes):
    path = tmp_path / "m.tif"
    axis = _write_tiff(path, dtype, order, storage, classes)
    with tifffile.TiffFile(path) as tif:
        assert tif.byteorder == order
        assert (tif.series[0].dataoffset is not None) == (storage == "mapped")
    reference = tifffile.imread(path)
    assert reference.dtype.isnative
    instances, class_values = _expected(reference, axis)

    with warnings.catch_warnings(record=True) as caught:  # e.g. numpy's overflow of float16
        warnings.simplefilter("always")
        loaded = read_array(path)
        labels, found_classes, _ = load_mask(path)
    assert [str(w.message) for w in caught] == []
    raw = loaded.data if axis is None else np.moveaxis(loaded.data, -1, axis)
    assert raw.dtype == reference.dtype  # the dtype too: native, as tifffile gives it
    _assert_same(raw, reference)
    native = np.dtype(dtype).newbyteorder(order).isnative
    assert isinstance(loaded.data, np.memmap) == (storage == "mapped" and native)

    _assert_same(labels, instances)
    assert labels.dtype.kind == "u"
    if axis is None:
        assert found_classes is None
    else:
        _assert_same(found_classes, class_values)

    layers = _reader.get_reader(str(path))(str(path))
    assert [kind for _, _, kind in layers] == ["labels"] * (1 + (axis is not None))
    _assert_same(layers[0][0], instances)
    if axis is not None:
        _assert_same(layers[1][0], class_values)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_npy_reads_as_np_load(tmp_path, dtype, order):
    mask = _mask(dtype)
    for name, data in (("m.npy", mask), ("c.npy", np.stack([mask, _classes(mask)], axis=-1))):
        np.save(tmp_path / name, data.astype(np.dtype(dtype).newbyteorder(order)))
        reference = np.load(tmp_path / name)
        _assert_same(read_array(tmp_path / name).data, reference)
    labels, classes, _ = load_mask(tmp_path / "c.npy")
    _assert_same(labels, mask)
    _assert_same(classes, _classes(mask))


#: The MRC modes that hold labels: int8, int16, float32, uint16, uint8, float16.
MRC_DTYPES = ["i1", "i2", "f4", "u2", "u1", "f2"]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("dtype", MRC_DTYPES)
def test_mrc_reads_as_mrcfile(tmp_path, dtype, order):
    mask = _mask(dtype, shape=(3, 24, 40))
    path = tmp_path / "m.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(mask.astype(np.dtype(dtype).newbyteorder(order)))
    reference = mrcfile.read(path)
    _assert_same(read_array(path).data, reference)
    _assert_same(load_mask(path)[0], mask)


def test_load_pair_of_either_byte_order_reads_the_same_masks(tmp_path):
    mask = _mask("u2")
    tifffile.imwrite(tmp_path / "big.tif", mask, byteorder=">")
    np.save(tmp_path / "little.npy", mask.astype("<u4"))
    pair = load_pair(tmp_path / "big.tif", tmp_path / "little.npy")
    _assert_same(pair.a, mask)
    _assert_same(pair.b, mask)


@pytest.mark.parametrize("dtype", ["u1", "u2", "i4", "u4", "f8"])
def test_zarr_and_hdf5_of_big_endian_dtypes_are_read_natively(tmp_path, dtype):
    mask = _mask(dtype)
    big = np.dtype(dtype).newbyteorder(">")
    array = zarr.create_array(str(tmp_path / "m.zarr"), shape=mask.shape, dtype=big,
                              chunks=(8, 16), zarr_format=2)
    array[:] = mask.astype(big)
    with h5py.File(tmp_path / "m.h5", "w") as h5:
        h5.create_dataset("seg", data=mask.astype(big), chunks=(8, 16))
    for spec in (tmp_path / "m.zarr", f"{tmp_path / 'm.h5'}:/seg"):
        loaded = store.open_array(spec, what="image")
        assert loaded.data.dtype.isnative
        _assert_same(loaded.data.compute(), mask)
    if np.dtype(dtype).kind in "iu":
        labels, _, _ = load_mask(tmp_path / "m.zarr")
        _assert_same(labels.compute(), mask)


# ----------------------------------------------------------------------------- the CLI


def test_merge_of_a_big_endian_mask_keeps_its_ids_and_classes(tmp_path, capsys):
    mask = _mask("u2")
    _write_tiff(tmp_path / "a.tif", "u2", ">", "mapped", "yxc")
    tifffile.imwrite(tmp_path / "b.tif", mask)
    out = tmp_path / "o.tif"
    assert main(["merge", str(tmp_path / "a.tif"), str(tmp_path / "b.tif"), "--out", str(out),
                 "--policy", "a"]) == 0
    merged, classes = tifffile.imread(out), tifffile.imread(tmp_path / "o_classes.tif")
    assert np.array_equal(merged > 0, mask > 0)
    assert np.array_equal(classes, _classes(mask))  # 3, not 768
    assert "objects 4, A 4" in capsys.readouterr().out


def test_stats_of_a_big_endian_float_mask_equal_those_of_the_little_endian_one(tmp_path,
                                                                              capsys):
    mask = _mask("f4")
    tifffile.imwrite(tmp_path / "big.tif", mask, byteorder=">")
    tifffile.imwrite(tmp_path / "little.tif", mask, byteorder="<")
    tifffile.imwrite(tmp_path / "b.tif", _mask("u2")[:, ::-1])
    results = []
    for name in ("big.tif", "little.tif"):
        assert main(["stats", str(tmp_path / name), str(tmp_path / "b.tif"), "--json"]) == 0
        captured = capsys.readouterr()
        assert captured.err == ""
        results.append(json.loads(captured.out))
    assert results[0] == results[1]
    assert results[0]["matching"][0]["n_true"] == 4
