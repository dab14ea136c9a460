"""The overlap-table scan kernel (hash grouping of runs, background runs dropped or kept).

tests/test_matching.py checks tables against brute force; here the kernel's own switches
are forced both ways (background runs dropped or kept, chunks of rows, of one plane or of
several planes) and its partial results are checked directly.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_mask_compare import matching
from napari_mask_compare.matching import overlap_table
from test_matching import brute_force, table_as_dicts

ID_VALUES = st.sampled_from([0, 0, 0, 0, 1, 2, 17, 65535, 65536, 2**31 + 5, 2**32 - 1])
DTYPES = st.sampled_from([np.uint8, np.uint16, np.int32, np.uint32, np.int64, np.uint64])
pairs = st.tuples(st.integers(2, 3), st.integers(1, 6), st.integers(1, 6),
                  st.integers(1, 8)).flatmap(
    lambda p: st.tuples(*[arrays(np.uint64, (p[1], p[2], p[3])[3 - p[0]:], elements=ID_VALUES)
                          for _ in range(2)])
)

#: ``_DROP_BACKGROUND`` values: never drop (more than n of n runs), drop whenever one is 0 | 0.
NEVER, ALWAYS = 1, 1 << 62


def _cast(labels, dtype):
    return (labels % np.uint64(min(np.iinfo(dtype).max, 2**32 - 1) + 1)).astype(dtype)


@settings(max_examples=200, deadline=None)
@given(pair=pairs, chunk=st.integers(1, 80), drop=st.sampled_from([NEVER, ALWAYS, 4]),
       dtypes=st.tuples(DTYPES, DTYPES))
def test_kernel_switches_give_the_brute_force_table(pair, chunk, drop, dtypes):
    a, b = (_cast(labels, dtype) for labels, dtype in zip(pair, dtypes))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(matching, "_CHUNK_VOXELS", chunk)
        patch.setattr(matching, "_DROP_BACKGROUND", drop)
        table = overlap_table(a, b)
    assert table_as_dicts(table) == brute_force(a, b)


@pytest.mark.parametrize("drop", [NEVER, ALWAYS])
def test_background_only(drop, monkeypatch):
    monkeypatch.setattr(matching, "_DROP_BACKGROUND", drop)
    zeros = np.zeros((3, 4, 5), np.uint32)
    t = overlap_table(zeros, zeros)
    assert t.n_a == t.n_b == len(t.intersection) == 0
    assert t.bbox_a.shape == (0, 6) and t.bbox_a.dtype == np.int64
    b = zeros.copy()
    b[2, 3, 4] = 2**32 - 1  # one voxel: every chunk but the last is background only
    monkeypatch.setattr(matching, "_CHUNK_VOXELS", 5)
    t = overlap_table(zeros, b)
    assert t.ids_b.tolist() == [2**32 - 1] and t.bbox_b.tolist() == [[2, 3, 4, 3, 4, 5]]
    assert t.n_a == 0 and len(t.intersection) == 0


@pytest.mark.parametrize("drop", [NEVER, ALWAYS])
def test_chunk_entries_of_several_planes(drop, monkeypatch):
    # a chunk of 3 whole planes (4 x 5): entries of (a, b), one side 0 included, 0 | 0 not
    # when dropped; boxes in whole-image coordinates, stops exclusive
    monkeypatch.setattr(matching, "_DROP_BACKGROUND", drop)
    rng = np.random.default_rng(3)
    a = rng.choice(np.array([0, 1, 2**32 - 1], np.uint32), (6, 4, 5))
    b = rng.choice(np.array([0, 7], np.uint16), (6, 4, 5))
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    scratch = matching._Scratch(60, a.dtype, b.dtype)
    keys, counts, box = matching._chunk_entries(flat_a[60:], flat_b[60:], offset=60,
                                                shape=a.shape, scratch=scratch)
    assert keys.dtype == np.uint64 and counts.dtype == np.int64 and box.dtype == np.int32
    assert len(np.unique(keys)) == len(keys)
    got = {int(k): (int(n), tuple(map(int, bx))) for k, n, bx in zip(keys, counts, box.T)}
    want = {}
    for ia, ib in {(int(x), int(y)) for x, y in zip(a[3:].ravel(), b[3:].ravel())}:
        if drop == ALWAYS and ia == ib == 0:
            continue
        where = np.argwhere((a == ia) & (b == ib))
        where = where[where[:, 0] >= 3]
        want[ia << 32 | ib] = (len(where), tuple(where.min(0)) + tuple(where.max(0) + 1))
    assert got == want


def test_reduce_entries_sorts_and_joins():
    keys = np.array([5 << 32, 3, 5 << 32, 3, 1 << 32 | 2], np.uint64)
    counts = np.array([1, 2, 3, 4, 5], np.int64)
    box = np.array([[4, 1, 2, 0, 9], [8, 3, 5, 1, 10]], np.int32)  # (start, stop) in 1D
    k, n, bx = matching._reduce_entries(keys, counts, box)
    assert k.tolist() == [3, 1 << 32 | 2, 5 << 32] and n.tolist() == [6, 5, 4]
    assert bx.tolist() == [[0, 9, 2], [3, 10, 8]]
