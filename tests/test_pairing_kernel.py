"""The overlap table's kernel (:mod:`napari_mask_compare._tally`): runs tallied in a hash table.

tests/test_pairing.py checks tables against brute force; here the kernel's own paths are
forced: tallies that start with room for one entry (so they grow mid-image and resume at a row
or an entry), images shared by up to 8 threads (shares cutting planes), signed, boolean and
big-endian labels, and its partial results are checked directly.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_mask_compare import _tally, pairing
from napari_mask_compare._tally import Tally
from napari_mask_compare.pairing import overlap_table
from pairing_reference import brute_force, table_as_dicts

ID_VALUES = st.sampled_from([0, 0, 0, 0, 1, 2, 17, 65535, 65536, 2**31 + 5, 2**32 - 1])
DTYPES = st.sampled_from([np.uint8, np.uint16, np.int32, np.uint32, np.int64, np.uint64, ">u4"])
pairs = st.tuples(st.integers(2, 3), st.integers(1, 6), st.integers(1, 6),
                  st.integers(1, 8)).flatmap(
    lambda p: st.tuples(*[arrays(np.uint64, (p[1], p[2], p[3])[3 - p[0]:], elements=ID_VALUES)
                          for _ in range(2)])
)


def _cast(labels, dtype):
    dtype = np.dtype(dtype)
    return (labels % np.uint64(min(np.iinfo(dtype).max, 2**32 - 1) + 1)).astype(dtype)


@given(pair=pairs, capacity=st.sampled_from([1, 2, 5, 4096]), threads=st.integers(1, 8),
       dtypes=st.tuples(DTYPES, DTYPES))
def test_growth_and_thread_shares_give_the_brute_force_table(pair, capacity, threads, dtypes):
    a, b = (_cast(labels, dtype) for labels, dtype in zip(pair, dtypes))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_tally, "_CAPACITY", capacity)
        patch.setattr(pairing, "_VOXELS_PER_THREAD", 1)
        patch.setattr(pairing.os, "cpu_count", lambda: threads)
        table = overlap_table(a, b)
    assert table_as_dicts(table) == brute_force(a, b)


def test_background_only():
    zeros = np.zeros((3, 4, 5), np.uint32)
    t = overlap_table(zeros, zeros)
    assert t.n_a == t.n_b == len(t.intersection) == 0
    assert t.bbox_a.shape == (0, 6) and t.bbox_a.dtype == np.int64
    b = zeros.copy()
    b[2, 3, 4] = 2**32 - 1  # one voxel, in the last row
    t = overlap_table(zeros, b)
    assert t.ids_b.tolist() == [2**32 - 1] and t.bbox_b.tolist() == [[2, 3, 4, 3, 4, 5]]
    assert t.n_a == 0 and len(t.intersection) == 0


@pytest.mark.parametrize("capacity", [1, 3, 64])
def test_tally_of_rows_from_the_middle_of_a_volume(capacity):
    # rows 12.. of planes of 4 rows (planes 3.. of 6 x 4 x 5): entries of (a, b), one side 0
    # included, 0 | 0 not; boxes in whole-image coordinates, stops exclusive
    rng = np.random.default_rng(3)
    a = rng.choice(np.array([0, 1, 2**32 - 1], np.uint32), (6, 4, 5))
    b = rng.choice(np.array([0, 7], np.uint16), (6, 4, 5))
    tally = Tally(capacity)
    tally.add_rows(a.reshape(-1)[60:], b.reshape(-1)[60:], row_len=5, ny=4, row0=12)
    keys, counts, box = tally.entries()
    assert keys.dtype == np.uint64 and counts.dtype == np.int64 and box.dtype == np.int32
    assert keys.tolist() == sorted(set(keys.tolist())) and len(tally) == len(keys)
    got = {int(k): (int(n), tuple(map(int, bx))) for k, n, bx in zip(keys, counts, box.T)}
    want = {}
    for ia, ib in {(int(x), int(y)) for x, y in zip(a[3:].ravel(), b[3:].ravel())}:
        if ia == ib == 0:
            continue
        where = np.argwhere((a == ia) & (b == ib))
        where = where[where[:, 0] >= 3]
        want[ia << 32 | ib] = (len(where), tuple(where.min(0)) + tuple(where.max(0) + 1))
    assert got == want


@pytest.mark.parametrize("capacity", [1, 2, 4096])
def test_tally_of_entries_sorts_and_joins(capacity):
    keys = np.array([5 << 32, 3, 5 << 32, 3, 1 << 32 | 2], np.uint64)
    counts = np.array([1, 2, 3, 4, 5], np.int64)
    box = np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [4, 1, 2, 0, 9],
                    [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [8, 3, 5, 1, 10]], np.int32)
    tally = Tally(capacity)
    tally.add_entries(keys[:2], counts[:2], box[:, :2])
    tally.add_entries(keys[2:], counts[2:], box[:, 2:])
    k, n, bx = tally.entries()
    assert k.tolist() == [3, 1 << 32 | 2, 5 << 32] and n.tolist() == [6, 5, 4]
    assert bx[2].tolist() == [0, 9, 2] and bx[5].tolist() == [3, 10, 8]
    unsorted = tally.entries(sort=False)
    assert sorted(unsorted[0].tolist()) == k.tolist()


def test_signed_and_boolean_labels_are_their_unsigned_bits():
    a = np.array([[True, True, False]])
    b = np.array([[-0, 3, 3]], dtype=np.int8)
    t = overlap_table(a, b)
    assert t.ids_a.tolist() == [1] and t.ids_b.tolist() == [3]
    assert t.intersection.tolist() == [1] and t.bbox_b.tolist() == [[0, 1, 1, 3]]


def test_rows_tallied_out_of_order_widen_every_side_of_the_box():
    # planes 1 then 0 of one object (1 x 1 rows): its box starts at z = 0 all the same
    tally = Tally()
    a, b = np.array([1, 1], np.uint8), np.zeros(2, np.uint8)
    tally.add_rows(a[1:], b[1:], row_len=1, ny=1, row0=1)
    tally.add_rows(a[:1], b[:1], row_len=1, ny=1, row0=0)
    keys, counts, box = tally.entries()
    assert counts.tolist() == [2] and box[:, 0].tolist() == [0, 0, 0, 2, 1, 1]


def test_empty_blocks_of_a_dask_array_are_tallied_as_nothing():
    import dask.array as da

    a = np.zeros((4, 16, 30), np.uint8)
    a[:, 5:9, 20:28] = 1
    chunked = da.from_array(a, chunks=((4,), (16,), (25, 0, 5)))  # a block 0 voxels wide
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pairing, "_MIN_BLOCK_VOXELS", 1)  # the blocks are these chunks
        table = overlap_table(chunked, a)
    assert table_as_dicts(table) == brute_force(a, a)
