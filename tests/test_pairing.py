import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_mask_compare import pairing
from napari_mask_compare.pairing import KINDS, overlap_table, review_groups
from pairing_reference import brute_force, table_as_dicts

ID_VALUES = st.sampled_from([0, 0, 0, 1, 2, 3, 17, 65535, 65536, 2**32 - 1])
label_images = st.tuples(st.integers(2, 3), st.integers(1, 7), st.integers(1, 7),
                         st.integers(1, 9)).flatmap(
    lambda p: st.tuples(
        arrays(np.uint32, (p[1], p[2], p[3])[3 - p[0]:], elements=ID_VALUES),
        arrays(np.uint32, (p[1], p[2], p[3])[3 - p[0]:], elements=ID_VALUES),
    )
)


DTYPES = st.sampled_from([np.uint8, np.uint16, np.int32, np.int64, np.uint32])


@given(pair=label_images, dtypes=st.tuples(DTYPES, DTYPES))
def test_overlap_table_equals_brute_force(pair, dtypes):
    # ids of every width (wrapped into the dtype) meet in one 64-bit key per pair
    a, b = ((labels.astype(np.uint64) % np.uint64(np.iinfo(dtype).max + 1)).astype(dtype)
            for labels, dtype in zip(pair, dtypes))
    table = overlap_table(a, b)
    assert table_as_dicts(table) == brute_force(a, b)
    union = table.sizes_a[table.pair_a] + table.sizes_b[table.pair_b] - table.intersection
    assert np.allclose(table.iou, table.intersection / union)


@pytest.mark.parametrize("threads", [1, 2, 3, 6])
def test_threads_share_rows_or_whole_planes(threads, monkeypatch):
    # one object low in plane 0 and high in plane 1: its y-range needs both planes, whether a
    # thread scans a row, rows of one plane, one plane or both planes (3 x 2 voxels each)
    a = np.zeros((2, 3, 2), np.uint16)
    a[0, 2, 1] = a[1, 0, 0] = 7
    monkeypatch.setattr(pairing, "_VOXELS_PER_THREAD", 1)
    monkeypatch.setattr(pairing.os, "cpu_count", lambda: threads)
    assert len(pairing._row_shares(a.shape)) == threads
    t = overlap_table(a, a)
    assert t.bbox_a.tolist() == [[0, 0, 0, 2, 3, 2]] and t.sizes_a.tolist() == [2]


def test_literal_2d_table():
    a = np.array([[1, 1, 0], [0, 2, 2]], dtype=np.uint8)
    b = np.array([[5, 5, 5], [0, 0, 5]], dtype=np.uint16)
    t = overlap_table(a, b)
    assert t.ids_a.tolist() == [1, 2] and t.ids_b.tolist() == [5]
    assert t.bbox_a.tolist() == [[0, 0, 1, 2], [1, 1, 2, 3]]
    assert t.intersection.tolist() == [2, 1]
    assert t.iou.tolist() == [2 / 4, 1 / 5]


def test_empty_masks():
    zeros = np.zeros((3, 4, 5), np.uint16)
    t = overlap_table(zeros, zeros)
    assert t.n_a == t.n_b == len(t.intersection) == 0
    assert review_groups(t) == []
    full = np.ones_like(zeros)
    groups = review_groups(overlap_table(zeros, full))
    assert [g.kind for g in groups] == ["only_b"] and groups[0].bbox == (0, 0, 0, 3, 4, 5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="differ in shape"):
        overlap_table(np.zeros((2, 2), int), np.zeros((2, 3), int))
    with pytest.raises(ValueError, match="integer labels"):
        overlap_table(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="iou_threshold"):
        review_groups(overlap_table(np.zeros((2, 2), int), np.zeros((2, 2), int)), iou_threshold=0)


def test_every_kind(every_kind_2d):
    groups = review_groups(overlap_table(*every_kind_2d))
    by_kind = {g.kind: (g.ids_a, g.ids_b) for g in groups}
    assert by_kind == {
        "match": ((1,), (11,)),
        "split": ((2,), (12, 13)),
        "merge": ((3, 4), (14,)),
        "complex": ((5, 6), (15, 16)),
        "only_a": ((7,), ()),
        "only_b": ((), (17,)),
    }
    match = next(g for g in groups if g.kind == "match")
    assert match.pairs == ((1, 11, pytest.approx(12 / 20)),)
    assert match.bbox == (1, 1, 5, 6)
    assert not next(g for g in groups if g.kind == "only_b").paired


def test_threshold_is_inclusive_and_spatial_order():
    a = np.array([[1, 1, 0, 0, 2]], dtype=np.uint8)   # IoU(1, 3) = 2/5
    b = np.array([[3, 3, 3, 3, 3]], dtype=np.uint8)   # IoU(2, 3) = 1/5
    t = overlap_table(a, b)
    assert [g.kind for g in review_groups(t, iou_threshold=0.4)] == ["match", "only_a"]
    assert [g.kind for g in review_groups(t, iou_threshold=0.2)] == ["merge"]
    assert [g.kind for g in review_groups(t, iou_threshold=0.41)] == ["only_a", "only_b", "only_a"]
    assert [g.bbox[1] for g in review_groups(t, iou_threshold=0.41)] == [0, 0, 4]


@given(pair=label_images, threshold=st.sampled_from([0.05, 0.1, 0.3, 0.5, 0.9, 1.0]))
def test_groups_partition_objects_and_respect_threshold(pair, threshold):
    a, b = pair
    table = overlap_table(a, b)
    groups = review_groups(table, iou_threshold=threshold)
    assert sorted(i for g in groups for i in g.ids_a) == table.ids_a.tolist()
    assert sorted(i for g in groups for i in g.ids_b) == table.ids_b.tolist()
    assert [g.index for g in groups] == list(range(len(groups)))
    for g in groups:
        assert g.kind in KINDS
        assert all(iou >= threshold for _, _, iou in g.pairs)
        members = np.isin(a, g.ids_a) | np.isin(b, g.ids_b)
        assert members[g.region].sum() == members.sum()  # the box holds every member voxel
    linked = {(int(table.ids_a[i]), int(table.ids_b[j]))
              for i, j, v in zip(table.pair_a, table.pair_b, table.iou) if v >= threshold}
    assert {(x, y) for g in groups for x, y, _ in g.pairs} == linked
