"""npe2 writer: round trip through io, the core's output rules, and napari's save."""

import numpy as np
import pint
import pytest
import tifffile

from napari_mask_compare import read
from napari_mask_compare._writer import write_labels

UNITS = pint.get_application_registry()


def _labels_3d(dtype=np.int32):
    """Shape (3, 10, 12), ids 7, 40, 70000 (not sequential, beyond uint16)."""
    labels = np.zeros((3, 10, 12), dtype=dtype)
    labels[0, 1:4, 1:5] = 40
    labels[1:3, 5:9, 2:6] = 7
    labels[2, 0:2, 8:12] = 70000
    return labels


def test_round_trip_uint16_ids_1_to_n_scale_kept(tmp_path):
    path = tmp_path / "out.tif"
    meta = {"scale": (2.0, 0.5, 0.25), "units": (UNITS.micrometer,) * 3}
    written = write_labels(str(path), _labels_3d(), meta)
    assert written == [str(path)]
    loaded = read.read_array(path)
    assert loaded.data.dtype == np.uint16
    # ids 1..n in the order of the old ids: 7 -> 1, 40 -> 2, 70000 -> 3
    expected = np.select([_labels_3d() == 7, _labels_3d() == 40, _labels_3d() == 70000],
                         [1, 2, 3], 0)
    np.testing.assert_array_equal(loaded.data, expected)
    assert loaded.voxel_size == (2.0, 0.5, 0.25)
    assert loaded.unit == "µm"
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej  # ImageJ / Fiji / QuPath open it calibrated


def test_no_temporary_file_is_left_and_old_file_is_replaced(tmp_path):
    path = tmp_path / "out.tif"
    path.write_bytes(b"previous contents")
    write_labels(str(path), _labels_3d()[0], {"scale": (1.0, 1.0)})
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]
    assert read.read_array(path).data.shape == (10, 12)


def test_2d_layer_with_extra_scale_values(tmp_path):
    path = tmp_path / "out.tiff"
    write_labels(str(path), _labels_3d()[1], {"scale": (9.0, 0.5, 0.5)})
    loaded = read.read_array(path)
    assert loaded.data.shape == (10, 12)
    assert loaded.voxel_size[-2:] == (0.5, 0.5)


def test_tif_suffix_is_added(tmp_path):
    written = write_labels(str(tmp_path / "curated"), _labels_3d()[1], {})
    assert written == [str(tmp_path / "curated.tif")]
    assert read.read_array(written[0]).data.max() == 1


@pytest.mark.parametrize("name", ["curated.npy", "curated.zarr"])
def test_the_suffix_names_the_format_as_for_merge(tmp_path, name):
    """NPY and OME-Zarr hold what the TIFF holds: ids 1..n in uint16 (issue 17)."""
    from napari_mask_compare import ome_zarr_out, store

    meta = {"scale": (2.0, 0.5, 0.25), "units": (UNITS.micrometer,) * 3}
    (tif,) = write_labels(str(tmp_path / "curated.tif"), _labels_3d(), meta)
    (written,) = write_labels(str(tmp_path / name), _labels_3d(), meta)
    assert written == str(tmp_path / name)
    if name.endswith(".npy"):
        result = np.load(written)
    else:
        result = np.asarray(ome_zarr_out.labels_array(written)[...])
        assert store.open_array(written).voxel_size == (2.0, 0.5, 0.25)
    assert result.dtype == np.uint16 and np.array_equal(result, read.read_array(tif).data)


@pytest.mark.parametrize("name", ["curated.png", "curated.h5"])
def test_a_suffix_that_names_no_format_offered_is_refused(tmp_path, name):
    with pytest.raises(ValueError, match=rf"{name}: \.\w+ is not a format mask-compare writes"):
        write_labels(str(tmp_path / name), _labels_3d(), {})
    assert list(tmp_path.iterdir()) == []


def test_multiscale_writes_the_full_resolution_level(tmp_path):
    full = _labels_3d()[1]
    written = write_labels(str(tmp_path / "m.tif"), [full, full[::2, ::2]],
                           {"multiscale": True, "scale": (1.0, 1.0)})
    assert read.read_array(written[0]).data.shape == full.shape


def test_angstrom_survives(tmp_path):
    # io writes ImageJ metadata in ASCII: the writer passes "angstrom", not "Å"
    meta = {"scale": (13.0, 13.0, 13.0), "units": (UNITS.angstrom,) * 3}
    written = write_labels(str(tmp_path / "tomo_seg.tif"), _labels_3d(), meta)
    loaded = read.read_array(written[0])
    assert loaded.voxel_size == (13.0, 13.0, 13.0)
    assert UNITS.parse_units(loaded.unit) == UNITS.angstrom


def test_negative_ids_are_refused_and_nothing_written(tmp_path):
    labels = _labels_3d()
    labels[0, 0, 0] = -1
    with pytest.raises(ValueError, match="negative ids"):
        write_labels(str(tmp_path / "bad.tif"), labels, {})
    assert list(tmp_path.iterdir()) == []


def test_four_dimensional_labels_are_refused(tmp_path):
    with pytest.raises(ValueError, match="2D or 3D"):
        write_labels(str(tmp_path / "t.tif"), np.zeros((2, 2, 3, 4), np.uint8), {})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".tif", ".npy"])
@pytest.mark.slow
def test_napari_saves_a_labels_layer_with_this_writer(make_napari_viewer, tmp_path, suffix):
    viewer = make_napari_viewer()
    viewer.add_labels(_labels_3d(np.uint32), scale=(3.0, 1.5, 1.5), units="nm", name="curated")
    path = tmp_path / f"curated{suffix}"
    written = viewer.layers.save(str(path), selected=True, plugin="napari-mask-compare")
    assert written == [str(path)]
    loaded = read.read_array(path)
    assert loaded.data.dtype == np.uint16 and int(loaded.data.max()) == 3
    if suffix == ".tif":  # NPY holds no voxel size
        assert loaded.voxel_size == (3.0, 1.5, 1.5)
        assert loaded.unit == "nm"
