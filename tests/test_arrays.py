"""The one "is this array lazy" rule, and the small array rules beside it."""

import dask.array as da
import h5py
import numpy as np
import pytest
import zarr
from hypothesis import given
from hypothesis import strategies as st

from napari_mask_compare._arrays import as_dask, is_lazy, sum_by, voxel_spacing


def test_arrays_stored_in_chunks_are_lazy_and_arrays_in_memory_are_not(tmp_path):
    np.save(tmp_path / "m.npy", np.zeros((4, 4), np.uint16))
    with h5py.File(tmp_path / "m.h5", "w") as f:
        chunked = f.create_dataset("chunked", data=np.zeros((4, 4), np.uint16), chunks=(2, 2))
        contiguous = f.create_dataset("contiguous", data=np.zeros((4, 4), np.uint16))
        assert is_lazy(chunked) and not is_lazy(contiguous)  # no chunk grid to cut along
    assert is_lazy(da.zeros((4, 4), chunks=2))
    assert is_lazy(zarr.zeros(shape=(4, 4), chunks=(2, 2), dtype=np.uint16))
    assert not is_lazy(np.zeros((4, 4)))
    assert not is_lazy(np.load(tmp_path / "m.npy", mmap_mode="r"))  # a memory map


def test_as_dask_cuts_along_the_stored_chunks():
    stored = zarr.zeros(shape=(5, 4), chunks=(2, 3), dtype=np.uint16)
    stored[1, 2] = 7
    lazy = as_dask(stored)
    assert lazy.chunks == ((2, 2, 1), (3, 1))
    assert lazy.compute()[1, 2] == 7
    already = da.zeros(3, chunks=2)
    assert as_dask(already) is already


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 2**40)), max_size=30))
def test_sum_by_is_the_exact_sum_per_index(pairs):
    index = np.array([i for i, _ in pairs], dtype=np.int64)
    values = np.array([v for _, v in pairs], dtype=np.int64)
    expected = [sum(v for i, v in pairs if i == k) for k in range(6)]
    assert sum_by(index, values, 6).tolist() == expected


@pytest.mark.parametrize("bad", [(1.0,), (1.0, 0.0), (1.0, -2.0), (1.0, float("nan")),
                                 (1.0, float("inf"))])
def test_voxel_spacing_refuses_what_is_not_one_positive_number_per_axis(bad):
    with pytest.raises(ValueError, match="voxel_size must be 2 positive numbers"):
        voxel_spacing(bad, 2)


def test_zarr_masks_are_merged_block_by_block_to_the_same_output():
    """A zarr array is lazy for merging too: its output and class map are computed
    blockwise (a dask array), equal to those of the same masks in memory."""
    from napari_mask_compare import merging
    from napari_mask_compare.pairing import overlap_table, review_groups

    rng = np.random.default_rng(1)
    a, b = (rng.integers(0, 5, (20, 20)).astype(np.uint16) for _ in range(2))
    stored = []
    for x in (a, b):
        z = zarr.zeros(shape=x.shape, chunks=(8, 8), dtype=x.dtype)
        z[:] = x
        stored.append(z)
    table = overlap_table(a, b)
    tables = merging.merge_tables(table, review_groups(table, iou_threshold=0.1),
                                  policy="larger", classes_a=np.arange(table.n_a) % 3 + 1)
    merged = merging.apply_tables(*stored, tables)
    assert is_lazy(merged) and not isinstance(merged, np.ndarray)
    in_memory = merging.apply_tables(a, b, tables)
    np.testing.assert_array_equal(np.asarray(merged), in_memory)
    np.testing.assert_array_equal(np.asarray(merging.class_map(merged, tables)),
                                  merging.class_map(in_memory, tables))
