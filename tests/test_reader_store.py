"""The napari reader on zarr, OME-Zarr and HDF5 stores: lazy layers, Labels vs Image, scale.

No viewer: the reader function returns layer data tuples.
"""

import warnings

import dask.array as da
import h5py
import numpy as np
import pytest
import zarr

from napari_mask_compare import _reader, ome_zarr_out, store
from stores import CHUNKS, VOXEL, blobs, ome_image


def _layers(path):
    reader = _reader.get_reader(str(path))
    assert reader is not None
    return reader(str(path))


def test_labels_zarr_opens_as_lazy_labels(tmp_path):
    data = blobs()
    zarr.create_array(str(tmp_path / "seg.zarr"), data=data, chunks=CHUNKS)
    ((layer, meta, kind),) = _layers(tmp_path / "seg.zarr")
    assert kind == "labels" and isinstance(layer, da.Array)
    assert layer.chunksize == CHUNKS and meta["name"] == "seg"
    np.testing.assert_array_equal(layer.compute(), data)


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
def test_raw_zarr_opens_as_an_image(tmp_path, dtype):
    rng = np.random.default_rng(0)
    raw = (rng.poisson(300, size=(10, 40, 36))).astype(dtype)  # raw microscopy is uint16 too
    zarr.create_array(str(tmp_path / "raw.zarr"), data=raw, chunks=CHUNKS)
    ((layer, _, kind),) = _layers(tmp_path / "raw.zarr")
    assert kind == "image" and isinstance(layer, da.Array)


def test_ome_zarr_image_opens_with_its_labels_and_scale(tmp_path):
    path, image = ome_image(tmp_path, blobs(), "0.5")
    layers = _layers(path)
    assert [(meta["name"], kind) for _, meta, kind in layers] == [("img0.5", "image"),
                                                                  ("cells", "labels")]
    for layer, meta, _ in layers:
        assert isinstance(layer, da.Array)
        assert meta["scale"] == pytest.approx(VOXEL)
    assert layers[0][1]["units"] == ("µm",) * 3
    np.testing.assert_array_equal(layers[0][0].compute(), image)


def test_our_output_opens_as_labels_even_when_noisy(tmp_path):
    """NGFF image-label metadata says labels, whatever the sample looks like."""
    noise = np.random.default_rng(0).integers(0, 1000, size=(8, 32, 32)).astype(np.uint16)
    out = ome_zarr_out.write_ome_zarr_labels(tmp_path / "out.zarr", noise,
                                             voxel_size=(1.0, 0.2, 0.2), unit="µm")
    ((layer, meta, kind),) = _layers(out)
    assert kind == "labels" and meta["scale"] == pytest.approx((1.0, 0.2, 0.2))
    np.testing.assert_array_equal(layer.compute(), noise)


def test_hdf5_file_opens_every_dataset(tmp_path):
    data = blobs()
    raw = np.random.default_rng(2).random(data.shape).astype(np.float32)
    with h5py.File(tmp_path / "plantseg.h5", "w") as h5:
        h5.create_dataset("raw", data=raw, chunks=CHUNKS)
        seg = h5.create_dataset("segmentation", data=data, chunks=CHUNKS)
        seg.attrs["element_size_um"] = VOXEL
    layers = _layers(tmp_path / "plantseg.h5")
    assert [(meta["name"], kind) for _, meta, kind in layers] == [("raw", "image"),
                                                                  ("segmentation", "labels")]
    assert layers[1][1]["scale"] == pytest.approx(VOXEL)
    np.testing.assert_array_equal(layers[1][0].compute(), data)


def test_folder_of_stores_opens_each(tmp_path):
    zarr.create_array(str(tmp_path / "a.zarr"), data=blobs(), chunks=CHUNKS)
    zarr.create_array(str(tmp_path / "b.zarr"), data=blobs(seed=3), chunks=CHUNKS)
    names = [meta["name"] for _, meta, _ in _layers(tmp_path)]
    assert names == ["a", "b"]


@pytest.mark.slow
def test_label_decision_reads_only_a_few_blocks(tmp_path):
    """A volume of 4096 chunks: the sample reads at most SAMPLE_PLANES of them."""
    data = blobs((64, 256, 256))
    zarr.create_array(str(tmp_path / "big.zarr"), data=data, chunks=(4, 16, 16))
    loaded = store.open_array(tmp_path / "big.zarr")
    reads = []
    counted = loaded.data.map_blocks(lambda b: reads.append(1) or b,
                                     meta=np.empty((0, 0, 0), dtype=data.dtype))
    assert _reader.is_label_array(counted, scan=False)
    assert 0 < len(reads) <= _reader.SAMPLE_PLANES


def test_a_broken_store_is_skipped_with_a_warning(tmp_path):
    group = zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    group.attrs["labels"] = ["missing"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _reader.get_reader(str(tmp_path / "group.zarr")) is None
    assert any("group.zarr" in str(w.message) for w in caught)
