"""Zarr (v2, v3), OME-Zarr (0.4, 0.5) and HDF5 inputs read lazily; OME-Zarr labels output.

Every input is written by its own library (zarr, ome-zarr-py, h5py) and read
back by :func:`store.open_array`; the output is read back by ours and by
ome-zarr-py's reader.
"""

import json
import os
import warnings

import dask.array as da
import h5py
import numpy as np
import pytest
import zarr
from hypothesis import given
from hypothesis import strategies as st

from examples import share
from napari_mask_compare import _files, ome_zarr_out, read, store
from napari_mask_compare.engine import Engine
from napari_mask_compare.errors import InputError
from napari_mask_compare.labels import as_labels, as_lazy_labels
from stores import CHUNKS, VOXEL, blobs, ome_image

# --------------------------------------------------------------------------- inputs


def write_zarr_v2(folder, data):
    path = folder / "plain_v2.zarr"
    zarr.create_array(str(path), data=data, chunks=CHUNKS, zarr_format=2)
    return str(path), CHUNKS, (1.0,) * 3, "pixel"


def write_zarr_v3(folder, data):
    path = folder / "plain_v3.zarr"
    zarr.create_array(str(path), data=data, chunks=CHUNKS, zarr_format=3)
    return str(path), CHUNKS, (1.0,) * 3, "pixel"


def write_zarr_v3_sharded(folder, data):
    path = folder / "sharded.zarr"
    shards = (CHUNKS[0] * 2, CHUNKS[1] * 2, CHUNKS[2] * 2)
    zarr.create_array(str(path), data=data, chunks=CHUNKS, shards=shards, zarr_format=3)
    return str(path), shards, (1.0,) * 3, "pixel"


def write_zarr_in_group(folder, data):
    path = folder / "group.zarr"
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    root.require_group("seg").create_array("cells", data=data, chunks=CHUNKS)
    return str(path / "seg" / "cells"), CHUNKS, (1.0,) * 3, "pixel"


def write_ome_04(folder, data):
    path, _ = ome_image(folder, data, "0.4")
    return str(path / "labels" / "cells"), CHUNKS, VOXEL, "µm"


def write_ome_05(folder, data):
    path, _ = ome_image(folder, data, "0.5")
    return str(path / "labels" / "cells"), CHUNKS, VOXEL, "µm"


def write_ome_05_labels_group(folder, data):
    path, _ = ome_image(folder, data, "0.5")
    return str(path / "labels"), CHUNKS, VOXEL, "µm"


def write_hdf5(folder, data):
    path = folder / "plantseg.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("raw", data=data.astype(np.float32), chunks=CHUNKS)
        ds = h5.create_dataset("segmentation/cells", data=data, chunks=CHUNKS)
        ds.attrs["element_size_um"] = VOXEL
    return f"{path}:/segmentation/cells", CHUNKS, VOXEL, "µm"


def write_hdf5_ilastik(folder, data):
    path = folder / "ilastik.h5"
    axistags = json.dumps({"axes": [{"key": k, "typeFlags": 2} for k in "zyxc"]})
    with h5py.File(path, "w") as h5:
        ds = h5.create_dataset("exported_data", data=data[..., None], chunks=CHUNKS + (1,))
        ds.attrs["axistags"] = axistags
    return str(path), CHUNKS, (1.0,) * 3, "pixel"


WRITERS = [write_zarr_v2, write_zarr_v3, write_zarr_v3_sharded, write_zarr_in_group,
           write_ome_04, write_ome_05, write_ome_05_labels_group, write_hdf5,
           write_hdf5_ilastik]


@pytest.mark.parametrize("write", WRITERS, ids=lambda w: w.__name__[6:])
def test_open_array_reads_back_lazily_with_storage_chunks(tmp_path, write):
    data = blobs()
    spec, chunks, voxel, unit = write(tmp_path, data)
    assert store.is_store_path(spec)
    loaded = store.open_array(spec)
    assert isinstance(loaded.data, da.Array)
    assert loaded.data.chunksize == tuple(min(c, n) for c, n in zip(chunks, data.shape))
    assert loaded.data.shape == data.shape and loaded.data.dtype == data.dtype
    np.testing.assert_array_equal(loaded.data.compute(), data)
    assert loaded.voxel_size == pytest.approx(voxel)
    assert loaded.unit == unit


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_image_opens_level_0_and_its_labels_say_so(tmp_path, version):
    data = blobs()
    path, image = ome_image(tmp_path, data, version)
    loaded = store.open_array(path, what="image")
    np.testing.assert_array_equal(loaded.data.compute(), image)
    assert loaded.voxel_size == pytest.approx(VOXEL) and loaded.unit == "µm"
    assert not loaded.labels
    label = store.open_array(path / "labels" / "cells")
    assert label.labels
    level_1 = store.open_array(path / "labels" / "cells" / "s1")
    np.testing.assert_array_equal(level_1.data.compute().shape, (10, 20, 18))
    assert level_1.voxel_size == pytest.approx((2.0, 1.0, 0.5))


def test_opening_is_lazy_even_for_a_huge_volume(tmp_path):
    """32 TB of empty chunks: opened, validated and paired without reading them."""
    shape = (4096, 65536, 65536)
    for name in ("a.zarr", "b.zarr"):
        zarr.create_array(str(tmp_path / name), shape=shape, chunks=(64, 512, 512),
                          dtype=np.uint32, fill_value=0, zarr_format=2)
    pair = read.load_pair(tmp_path / "a.zarr", tmp_path / "b.zarr")
    assert isinstance(pair.a, da.Array) and pair.a.shape == shape
    assert pair.a.chunksize == (64, 512, 512)
    assert pair.voxel_size == (1.0, 1.0, 1.0)


def test_load_pair_of_stores_compares_shapes_without_loading(tmp_path):
    zarr.create_array(str(tmp_path / "a.zarr"), data=blobs(), chunks=CHUNKS)
    zarr.create_array(str(tmp_path / "b.zarr"), data=blobs((10, 40, 35)), chunks=CHUNKS)
    with pytest.raises(InputError, match=r"b\.zarr: mask B has shape"):
        read.load_pair(tmp_path / "a.zarr", tmp_path / "b.zarr")


def test_load_mask_of_a_store_matches_the_in_memory_path(tmp_path):
    data = blobs(dtype=np.int64)
    zarr.create_array(str(tmp_path / "m.zarr"), data=data, chunks=CHUNKS)
    np.save(tmp_path / "m.npy", data)
    lazy, classes, loaded = read.load_mask(tmp_path / "m.zarr")
    eager, _, _ = read.load_mask(tmp_path / "m.npy")
    assert isinstance(lazy, da.Array) and classes is None
    assert lazy.dtype.kind == "u"
    np.testing.assert_array_equal(lazy.compute(), eager)


def test_load_image_of_a_store_is_lazy_and_shape_checked(tmp_path):
    path, image = ome_image(tmp_path, blobs(), "0.4")
    got = read.load_image(path, shape=image.shape)
    assert isinstance(got, da.Array)
    np.testing.assert_array_equal(got.compute(), image)
    with pytest.raises(InputError, match="does not match"):
        read.load_image(path, shape=(1, 2, 3))


def test_read_array_dispatches_stores_and_keeps_files_in_memory(tmp_path):
    data = blobs()
    np.save(tmp_path / "m.npy", data)
    zarr.create_array(str(tmp_path / "m.zarr"), data=data, chunks=CHUNKS)
    assert isinstance(read.read_array(tmp_path / "m.npy").data, np.ndarray)
    assert isinstance(read.read_array(tmp_path / "m.zarr").data, da.Array)


def test_hdf5_dataset_survives_pickling_and_keeps_its_file_open(tmp_path):
    import pickle

    spec, *_ = write_hdf5(tmp_path, blobs())
    data = store.open_array(spec).data
    import gc

    gc.collect()  # no reference to the h5py File is kept outside the dask graph
    clone = pickle.loads(pickle.dumps(data))
    np.testing.assert_array_equal(clone.compute(), data.compute())


# lazy label checks -----------------------------------------------------------


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=60),
       st.sampled_from([np.int64, np.uint64, np.int32, np.uint32, np.uint16, np.bool_]),
       st.integers(1, 7))
def test_lazy_labels_equal_the_in_memory_rule(values, dtype, chunk):
    top = 1 if dtype == np.bool_ else np.iinfo(dtype).max
    data = np.minimum(np.array(values, dtype=np.uint64), top).astype(dtype)
    lazy = as_lazy_labels(da.from_array(data, chunks=chunk), "x")
    eager = as_labels(data, "x")
    assert lazy.dtype.kind == "u" and lazy.dtype.itemsize >= eager.dtype.itemsize
    np.testing.assert_array_equal(lazy.compute(), eager)


@pytest.mark.parametrize(("values", "match"), [([0, -3], "negative"),
                                               ([0, 2**33], f"ids up to {2**33}, expected")])
def test_lazy_labels_refuse_bad_ids_when_computed(values, match):
    lazy = as_lazy_labels(da.from_array(np.array(values, dtype=np.int64), chunks=1), "m.zarr")
    with pytest.raises(InputError, match=f"m.zarr: mask holds {match}"):
        lazy.compute()


# bad input ---------------------------------------------------------------------


def _one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_bad_inputs_give_one_line_naming_the_path(tmp_path):
    data = blobs()
    group = zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    group.create_array("raw", data=data.astype(np.float32), chunks=CHUNKS)
    group.create_array("seg", data=data, chunks=CHUNKS)
    (tmp_path / "plain_folder").mkdir()
    zarr.create_array(str(tmp_path / "float.zarr"), data=data * 0.5, chunks=CHUNKS)
    zarr.create_array(str(tmp_path / "empty.zarr"), shape=(0, 4), dtype=np.uint8)
    path, _ = ome_image(tmp_path, data, "0.4")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ome_zarr.writer import write_labels

        write_labels(data, zarr.open_group(str(path)), name="nuclei", axes="zyx")
    with h5py.File(tmp_path / "two.h5", "w") as h5:
        h5.create_dataset("a/raw", data=data)
        h5.create_dataset("b", data=data)
    (tmp_path / "notes.h5").write_text("not hdf5")

    cases = {
        tmp_path / "missing.zarr": "no such zarr store",
        tmp_path / "group.zarr": "not an array or an OME-Zarr multiscale; .* raw, seg",
        tmp_path / "plain_folder": "not a zarr array or group",
        tmp_path / "float.zarr": "dtype float64, expected integer labels",
        tmp_path / "empty.zarr": "empty array",
        path / "labels": "holds 2 labels; choose one .*cells.*nuclei",
        path: "dtype float32, expected integer labels",
        f"{tmp_path / 'two.h5'}:/nope": "has no dataset /nope .*/a/raw, /b",
        f"{tmp_path / 'two.h5'}:/a": "is a group, not a dataset .*/a/raw",
        tmp_path / "two.h5": "holds 2 datasets .*/a/raw, /b.*two.h5:/a/raw",
        tmp_path / "missing.h5": "no such file",
        tmp_path / "notes.h5": "cannot be read as HDF5",
    }
    for spec, match in cases.items():
        with pytest.raises(InputError, match=match) as err:
            store.open_array(spec)
        message = _one_line(err)
        assert message.startswith(str(spec).split(":/")[0]), message


def test_a_channel_or_time_axis_is_refused_for_a_mask(tmp_path):
    from ome_zarr.writer import write_image

    data = np.stack([blobs(), blobs(seed=2)])
    for axes, match in (("czyx", "channel axis of 2"), ("tzyx", "time axis of 2")):
        path = tmp_path / f"{axes}.ome.zarr"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            write_image(data, zarr.open_group(str(path), mode="w", zarr_format=2), axes=axes,
                        scale_factors=None, storage_options={"chunks": (1,) + CHUNKS})
        with pytest.raises(InputError, match=match) as err:
            store.open_array(path)
        assert _one_line(err).startswith(str(path))
    image = store.open_array(tmp_path / "czyx.ome.zarr", what="image")
    assert image.channels == "C" and image.data.shape == blobs().shape + (2,)


def test_single_channel_and_time_axes_are_dropped(tmp_path):
    from ome_zarr.writer import write_image

    data = blobs()
    path = tmp_path / "tczyx.ome.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_image(data[None, None], zarr.open_group(str(path), mode="w", zarr_format=2),
                    axes="tczyx", scale_factors=None,
                    scale={"t": 1.0, "c": 1.0, "z": 3.0, "y": 1.5, "x": 1.5},
                    storage_options={"chunks": (1, 1) + CHUNKS})
    loaded = store.open_array(path)
    np.testing.assert_array_equal(loaded.data.compute(), data)
    assert loaded.voxel_size == (3.0, 1.5, 1.5) and loaded.data.chunksize == CHUNKS


# --------------------------------------------------------------------------- output


def _ngff(path):
    """The NGFF attributes of a zarr group folder, v2 or v3."""
    if (path / "zarr.json").exists():
        return json.loads((path / "zarr.json").read_text())["attributes"].get("ome", {})
    return json.loads((path / ".zattrs").read_text())


@pytest.mark.parametrize("ngff", ["0.4", "0.5"])
@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.slow
def test_write_ome_zarr_labels_round_trips_with_a_pyramid(tmp_path, ngff, lazy):
    data = blobs((9, 70, 66), dtype=np.int32)
    source = da.from_array(data, chunks=(5, 32, 32)) if lazy else data
    out = ome_zarr_out.write_ome_zarr_labels(tmp_path / "out.zarr", source, voxel_size=VOXEL,
                                             unit="µm", chunks=(4, 16, 16), ngff=ngff)
    loaded = store.open_array(out)
    assert loaded.data.dtype == np.uint16 and loaded.data.chunksize == (4, 16, 16)
    np.testing.assert_array_equal(loaded.data.compute(), data)
    assert loaded.voxel_size == pytest.approx(VOXEL) and loaded.unit == "µm"
    assert ome_zarr_out.is_our_store(out)

    group = out / "labels" / "curated"
    assert _ngff(out / "labels")["labels"] == ["curated"]
    attrs = _ngff(group)
    assert "image-label" in attrs
    multiscale = attrs["multiscales"][0]
    assert [a["name"] for a in multiscale["axes"]] == ["z", "y", "x"]
    assert all(a["type"] == "space" and a["unit"] == "micrometer" for a in multiscale["axes"])
    assert (attrs.get("version") or multiscale.get("version")) == ngff
    shapes, scales = [], []
    for dataset in multiscale["datasets"]:
        (transform,) = dataset["coordinateTransformations"]
        assert transform["type"] == "scale"
        scales.append(transform["scale"])
        level = store.open_array(group / dataset["path"])
        shapes.append(level.data.shape)
        step = np.round(np.array(transform["scale"]) / VOXEL).astype(int)
        np.testing.assert_array_equal(  # every level strides level 0 (nearest)
            level.data.compute(), data[::step[0], ::step[1], ::step[2]])
    assert len(shapes) >= 3
    for (above, below), (s_above, s_below) in zip(zip(shapes, shapes[1:]),
                                                  zip(scales, scales[1:])):
        for n_a, n_b, sa, sb in zip(above, below, s_above, s_below):
            assert (n_b, sb) in ((n_a, sa), (-(-n_a // 2), 2 * sa))
        assert below != above
    assert shapes[1:3] == [(9, 70, 33), (9, 35, 17)]  # x first: it is the finest


@pytest.mark.parametrize("ngff", ["0.4", "0.5"])
def test_ome_zarr_reader_reads_our_output(tmp_path, ngff):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader

    data = blobs((6, 40, 40))
    out = ome_zarr_out.write_ome_zarr_labels(tmp_path / "out.zarr", data, voxel_size=VOXEL,
                                             unit="µm", chunks=(4, 16, 16), ngff=ngff)
    nodes = list(Reader(parse_url(str(out / "labels" / "curated")))())
    node = next(n for n in nodes if any(isinstance(s, Label) for s in n.specs))
    np.testing.assert_array_equal(np.asarray(node.data[0]), data)
    assert node.metadata["coordinateTransformations"][0][0]["scale"] == list(VOXEL)


def test_write_ome_zarr_labels_uses_uint32_beyond_uint16(tmp_path):
    data = np.zeros((20, 20), dtype=np.int64)
    data[5:9, 5:9] = 70_000
    with pytest.warns(UserWarning, match="do not fit uint16"):
        out = ome_zarr_out.write_ome_zarr_labels(tmp_path / "big.zarr",
                                                 da.from_array(data, chunks=8))
    loaded = store.open_array(out)
    assert loaded.data.dtype == np.uint32
    np.testing.assert_array_equal(loaded.data.compute(), data)


def test_write_reports_progress_to_the_engine(tmp_path):
    seen = []
    with Engine(callback=lambda desc, done, total: seen.append((desc, done, total))):
        ome_zarr_out.write_ome_zarr_labels(tmp_path / "out.zarr", blobs(), chunks=(5, 20, 18))
    writes = [(done, total) for desc, done, total in seen if desc == "write out.zarr"]
    assert writes and writes[-1][0] == writes[-1][1] > 0


def test_output_never_overwrites_an_input_or_a_foreign_store(tmp_path):
    data = blobs()
    zarr.create_array(str(tmp_path / "in.zarr"), data=data, chunks=CHUNKS)
    path, _ = ome_image(tmp_path, data, "0.4")
    foreign = tmp_path / "foreign.zarr"
    zarr.create_array(str(foreign), data=data, chunks=CHUNKS)
    refusals = {
        tmp_path / "in.zarr": "is an input",
        path / "labels" / "mine.zarr": "inside an input",
        foreign: "not written by mask-compare",
    }
    for out, match in refusals.items():
        before = sorted(p.name for p in out.parent.iterdir()) if out.parent.exists() else None
        with pytest.raises(InputError, match=match):
            ome_zarr_out.write_ome_zarr_labels(out, data, inputs=[tmp_path / "in.zarr", path])
        after = sorted(p.name for p in out.parent.iterdir()) if out.parent.exists() else None
        assert before == after
    np.testing.assert_array_equal(store.open_array(foreign).data.compute(), data)
    # an input given as an HDF5 dataset spec: its file is protected
    with h5py.File(tmp_path / "in.h5", "w") as h5:
        h5.create_dataset("seg", data=data)
    with pytest.raises(InputError, match="is an input"):
        ome_zarr_out.check_store_output(tmp_path / "in.h5", inputs=[f"{tmp_path / 'in.h5'}:/seg"])


def test_our_output_is_replaced_only_with_overwrite(tmp_path):
    out = ome_zarr_out.write_ome_zarr_labels(tmp_path / "out.zarr", blobs())
    with pytest.raises(InputError, match="--overwrite"):
        ome_zarr_out.write_ome_zarr_labels(out, blobs(seed=3))
    ome_zarr_out.write_ome_zarr_labels(out, blobs(seed=3), overwrite=True)
    np.testing.assert_array_equal(store.open_array(out).data.compute(), blobs(seed=3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]


def _failing(data, *, bad_block=3):
    source = da.from_array(data, chunks=(5, 20, 18))

    def fail(block, block_info=None):
        if block_info[0]["chunk-location"] == np.unravel_index(bad_block, source.numblocks):
            raise OSError(28, "No space left on device")
        return block

    return source.map_blocks(fail, dtype=source.dtype)


def test_a_failure_mid_write_leaves_no_output_and_no_temp(tmp_path):
    out = tmp_path / "sub" / "out.zarr"
    with pytest.raises(OSError, match=f"^{out}: cannot write \\(No space left"):
        ome_zarr_out.write_ome_zarr_labels(out, _failing(blobs()))
    assert list(tmp_path.iterdir()) == []


def test_a_failure_mid_overwrite_keeps_the_earlier_output(tmp_path):
    out = ome_zarr_out.write_ome_zarr_labels(tmp_path / "out.zarr", blobs())
    with pytest.raises(OSError, match="No space left"):
        ome_zarr_out.write_ome_zarr_labels(out, _failing(blobs(seed=5)), overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]
    np.testing.assert_array_equal(store.open_array(out).data.compute(), blobs())


# review: write in place, rebuild the pyramid ------------------------------------


@pytest.mark.parametrize("ngff", ["0.4", "0.5"])
@pytest.mark.slow
def test_create_then_write_chunks_then_pyramid(tmp_path, ngff):
    data = blobs((9, 70, 66))
    out = tmp_path / "review.zarr"
    level0 = ome_zarr_out.create_ome_zarr_labels(out, shape=data.shape, dtype=np.uint16,
                                                 chunks=(4, 16, 16), voxel_size=VOXEL, unit="µm",
                                                 ngff=ngff)
    assert level0.shape == data.shape and not level0[:].any()
    assert ome_zarr_out.is_our_store(out)
    level0[2:7, 10:50, 5:40] = data[2:7, 10:50, 5:40]
    ome_zarr_out.write_pyramid(out)
    again = ome_zarr_out.labels_array(out)
    np.testing.assert_array_equal(again[:], np.where(
        np.pad(np.ones((5, 40, 35), bool), ((2, 2), (10, 20), (5, 26))), data, 0))
    reference = tmp_path / "reference.zarr"
    ome_zarr_out.write_ome_zarr_labels(reference, again[:], voxel_size=VOXEL, unit="µm",
                                       chunks=(4, 16, 16), ngff=ngff)
    _assert_same_levels(out, reference)


def _assert_same_levels(a, b):
    levels_a = _ngff(a / "labels" / "curated")["multiscales"][0]["datasets"]
    levels_b = _ngff(b / "labels" / "curated")["multiscales"][0]["datasets"]
    assert levels_a == levels_b
    for dataset in levels_a:
        np.testing.assert_array_equal(
            store.open_array(a / "labels" / "curated" / dataset["path"]).data.compute(),
            store.open_array(b / "labels" / "curated" / dataset["path"]).data.compute())


# a share of the profile's examples: a pyramid written and rebuilt per example (~1.5 s)
@share(0.08)
@given(st.tuples(*(st.tuples(st.integers(0, n - 1), st.integers(1, n)) for n in (9, 37, 30))))
@pytest.mark.slow
def test_pyramid_of_a_region_equals_the_full_rebuild(tmp_path_factory, box):
    region = tuple(slice(min(a, b - 1), max(a + 1, b)) for a, b in box)
    folder = tmp_path_factory.mktemp("region")
    data = blobs((9, 37, 30), seed=7)
    for name in ("part.zarr", "full.zarr"):
        level0 = ome_zarr_out.create_ome_zarr_labels(folder / name, shape=data.shape,
                                                     dtype=np.uint16, chunks=(3, 8, 8))
        level0[:] = data
        ome_zarr_out.write_pyramid(folder / name)
    level0 = ome_zarr_out.labels_array(folder / "part.zarr")
    level0[region] = 0  # then both erase the region; one rebuilds only it
    ome_zarr_out.write_pyramid(folder / "part.zarr", region=region)
    full = ome_zarr_out.labels_array(folder / "full.zarr")
    full[region] = 0
    ome_zarr_out.write_pyramid(folder / "full.zarr")
    _assert_same_levels(folder / "part.zarr", folder / "full.zarr")


def test_labels_array_of_a_store_without_those_labels_is_one_line(tmp_path):
    ome_zarr_out.write_ome_zarr_labels(tmp_path / "out.zarr", blobs())
    with pytest.raises(InputError, match="has no labels 'other'") as err:
        ome_zarr_out.labels_array(tmp_path / "out.zarr", name="other")
    _one_line(err)


# paths, pairing, temporary folders -------------------------------------------------


def test_is_store_path_and_names():
    assert store.is_store_path("a.zarr/labels/cells")
    assert store.is_store_path("stack.hdf5") and store.is_store_path("f.h5:/x")
    assert not store.is_store_path("cells.tif") and not store.is_store_path("cells.tif:1")
    assert store.store_name("cells.ome.zarr") == "cells"
    assert store.store_name("f.h5") == "f" and store.store_name("f.h5:/a/seg") == "seg"


def test_pair_files_pairs_folders_of_stores(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        for name in ("one", "two"):
            zarr.create_array(str(tmp_path / folder / f"{name}.ome.zarr"), data=blobs(),
                              chunks=CHUNKS)
    with h5py.File(tmp_path / "b" / "three.h5", "w") as h5:
        h5.create_dataset("seg", data=blobs())
    pairs, unpaired = read.pair_files(tmp_path / "a", tmp_path / "b")
    assert [(p.name, q.name) for p, q in pairs] == [("one.ome.zarr", "one.ome.zarr"),
                                                   ("two.ome.zarr", "two.ome.zarr")]
    assert unpaired[tmp_path / "b"] == ["three"]
    pair = read.load_pair(*pairs[0])
    np.testing.assert_array_equal(pair.a.compute(), pair.b.compute())


def test_stale_temp_folders_of_dead_processes_are_removed(tmp_path):
    dead = tmp_path / ".out.zarr.999999999.0123abcd.tmp"
    (dead / "labels").mkdir(parents=True)
    alive = tmp_path / f".out.zarr.{os.getpid()}.0123abcd.tmp"
    alive.mkdir()
    assert _files.remove_stale_temps(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name]


def test_create_refuses_a_foreign_folder_and_replaces_ours_only_with_overwrite(tmp_path):
    foreign = tmp_path / "foreign.zarr"
    zarr.create_array(str(foreign), data=blobs(), chunks=CHUNKS)
    with pytest.raises(InputError, match="not a store written by mask-compare") as err:
        ome_zarr_out.create_ome_zarr_labels(foreign, shape=(4, 4), dtype=np.uint16)
    _one_line(err)
    ours = tmp_path / "ours.zarr"
    ome_zarr_out.create_ome_zarr_labels(ours, shape=(4, 4), dtype=np.uint16)[:] = 7
    with pytest.raises(InputError, match="exists"):
        ome_zarr_out.create_ome_zarr_labels(ours, shape=(4, 4), dtype=np.uint16)
    again = ome_zarr_out.create_ome_zarr_labels(ours, shape=(4, 4), dtype=np.uint16,
                                                overwrite=True)
    assert not again[:].any()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign.zarr", "ours.zarr"]


def test_napari_ome_zarr_opens_our_labels_output(tmp_path):
    """Our output is read by the napari-ome-zarr plugin too (at out.zarr/labels/<name>)."""
    reader = pytest.importorskip("napari_ome_zarr").napari_get_reader
    data = blobs()
    out = ome_zarr_out.write_ome_zarr_labels(tmp_path / "out.zarr", data, voxel_size=VOXEL,
                                             unit="µm", chunks=(5, 20, 18))
    (layer,) = reader(str(out / "labels" / "curated"))(str(out / "labels" / "curated"))
    levels, meta, kind = layer
    assert kind == "labels"
    np.testing.assert_array_equal(np.asarray(levels[0]), data)
    assert tuple(meta["scale"]) == VOXEL
    assert [tuple(level.shape) for level in levels][1:] == [
        tuple(level.shape) for level in ome_zarr_out._levels(
            ome_zarr_out._labels_group(out, name="curated", mode="r"))][1:]
