"""Merge by lookup tables against a session decided by the policy, object by object and voxel by
voxel."""

import dask.array as da
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_mask_compare import merging
from napari_mask_compare.labels import relabel_sequential
from napari_mask_compare.merging import (
    POLICIES,
    apply_tables,
    class_map,
    decide_by_policy,
    merge_tables,
    object_classes,
)
from napari_mask_compare.pairing import overlap_table, review_groups
from napari_mask_compare.session import Session

#: Ids of both masks: small, at the uint16 border, and the largest a mask may hold.
IDS = [1, 2, 3, 7, 17, 255, 65535, 65536, 2**31, 2**32 - 1]
THRESHOLDS = st.sampled_from([0.01, 0.1, 0.3, 0.5, 1.0])


@st.composite
def label_pairs(draw):
    """A pair of 2D or 3D masks with matches, splits, merges, overlaps below threshold.

    Boxes of random ids are stamped into A; B is A with some boxes moved,
    cut or joined and some new ones (later boxes cut earlier ones); or, for a
    quarter of the examples, both are noise (many tiny objects that touch).
    """
    ndim = draw(st.integers(2, 3))
    shape = tuple(draw(st.integers(1, 4 if ndim == 3 and k == 0 else 12)) for k in range(ndim))
    ids = st.sampled_from(IDS)
    if draw(st.integers(0, 3)) == 0:
        noise = st.one_of(st.just(0), ids)
        return (draw(arrays(np.uint32, shape, elements=noise)),
                draw(arrays(np.uint32, shape, elements=noise)))
    a = np.zeros(shape, dtype=np.uint32)
    b = np.zeros(shape, dtype=np.uint32)

    def box():
        lo = [draw(st.integers(0, s - 1)) for s in shape]
        return tuple(slice(x, draw(st.integers(x + 1, s))) for x, s in zip(lo, shape))

    for _ in range(draw(st.integers(1, 6))):
        region, label = box(), draw(ids)
        a[region] = label
        if draw(st.booleans()):  # B sees it too, maybe moved by one voxel
            shift = tuple(slice(min(s.start + 1, n - 1), min(s.stop + 1, n))
                          if draw(st.booleans()) else s for s, n in zip(region, shape))
            b[shift] = draw(ids)
    for _ in range(draw(st.integers(0, 4))):  # B's own boxes: splits, joins, extras
        b[box()] = draw(ids)
    return a, b


def session_by_policy(a, b, groups, table, *, policy, classes_a=None, classes_b=None):
    """The reference: a session of the same groups, decided by the policy."""
    return decide_by_policy(
        Session(a, b, groups, table=table, classes_a=classes_a, classes_b=classes_b),
        policy=policy)


@pytest.mark.parametrize(("policy", "expected"), [
    ("a", [[1, 1, 1, 0, 2, 0]]),
    ("b", [[1, 1, 2, 2, 3, 0]]),
    ("union", [[1, 1, 1, 1, 2, 0]]),
    ("larger", [[1, 1, 2, 2, 3, 0]]),
])
def test_each_policy_on_a_session(policy, expected):
    a = np.array([[1, 1, 1, 0, 5, 0]], dtype=np.uint8)
    b = np.array([[3, 3, 4, 4, 0, 0]], dtype=np.uint8)
    assert decide_by_policy(Session.from_masks(a, b), policy=policy).output.tolist() == expected


def tables_of(a, b, *, policy, iou_threshold):
    table = overlap_table(a, b)
    groups = review_groups(table, iou_threshold=iou_threshold)
    return table, groups, merge_tables(table, groups, policy=policy)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(pair=label_pairs(), policy=st.sampled_from(POLICIES), threshold=THRESHOLDS)
def test_lookup_merge_equals_session_by_policy(pair, policy, threshold):
    a, b = pair
    table, groups, tables = tables_of(a, b, policy=policy, iou_threshold=threshold)
    session = session_by_policy(a, b, groups, table, policy=policy)
    out = apply_tables(a, b, tables)
    saved = relabel_sequential(session.output)  # as the output is compacted on save
    assert out.dtype == saved.dtype == tables.dtype
    np.testing.assert_array_equal(out, saved)
    assert tables.summary == session.summary()
    assert tables.n_objects == int(out.max(initial=0)) == len(session.objects)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(pair=label_pairs(), policy=st.sampled_from(POLICIES), threshold=THRESHOLDS,
       chunk=st.integers(1, 5))
def test_blockwise_merge_equals_session_by_policy(pair, policy, threshold, chunk):
    a, b = pair
    table, groups, tables = tables_of(a, b, policy=policy, iou_threshold=threshold)
    session = session_by_policy(a, b, groups, table, policy=policy)
    lazy = apply_tables(da.from_array(a, chunks=chunk), da.from_array(b, chunks=chunk + 1),
                        tables)
    assert isinstance(lazy, da.Array) and lazy.dtype == tables.dtype
    assert lazy.chunks == da.from_array(a, chunks=chunk).chunks  # A's blocks
    np.testing.assert_array_equal(lazy.compute(scheduler="sync"),
                                  relabel_sequential(session.output))


def per_voxel(labels, ids, values):
    """``values`` of the object at every voxel (0 / False on the background)."""
    lookup = dict(zip(ids.tolist(), values.tolist()))
    return np.array([lookup.get(i, 0) for i in labels.ravel().tolist()],
                    dtype=values.dtype).reshape(labels.shape)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(pair=label_pairs(), policy=st.sampled_from(POLICIES), threshold=THRESHOLDS)
def test_every_object_is_in_the_output_or_counted(pair, policy, threshold):
    a, b = pair
    table, groups, tables = tables_of(a, b, policy=policy, iou_threshold=threshold)
    out = apply_tables(a, b, tables)
    kept_a = per_voxel(a, table.ids_a, tables.kept_a)
    kept_b = per_voxel(b, table.ids_b, tables.kept_b)
    # a voxel is written exactly when one of its objects is kept
    np.testing.assert_array_equal(out > 0, kept_a | kept_b)
    # a kept object's voxels hold its id, or an earlier object's: counted as contested
    lost_a = kept_a & (out != per_voxel(a, table.ids_a, tables.lut_a))
    lost_b = kept_b & (out != per_voxel(b, table.ids_b, tables.lut_b))
    assert (out[lost_a | lost_b] > 0).all()
    assert np.count_nonzero(lost_a) + np.count_nonzero(lost_b) == tables.summary["contested"]
    # an object left out by its decision: a paired group whose policy chose the other side
    for side, kept, ids in (("A", tables.kept_a, table.ids_a), ("B", tables.kept_b, table.ids_b)):
        group_of = {i: g for g in groups for i in (g.ids_a if side == "A" else g.ids_b)}
        for label in ids[~kept].tolist():
            group = group_of[label]
            larger = "A" if sum(group.sizes_a) >= sum(group.sizes_b) else "B"
            chosen = {"a": "A", "b": "B", "union": "AB", "larger": larger}[policy]
            assert group.paired and side not in chosen
    # output ids: 1..n, each used
    assert set(np.unique(out[out > 0]).tolist()) == set(range(1, tables.n_objects + 1))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(pair=label_pairs(), policy=st.sampled_from(POLICIES), threshold=THRESHOLDS,
       data=st.data())
@pytest.mark.slow
def test_classes_equal_the_session_class_map(pair, policy, threshold, data):
    a, b = pair
    which = data.draw(st.sampled_from(["a", "b", "both"]))

    def classes_of(labels):  # mostly one class per object, some voxels of other classes
        per_object = np.array([0, 1, 2, 5, 70000], dtype=np.uint32)[labels % 5]
        noise = data.draw(arrays(np.uint32, labels.shape, elements=st.sampled_from([0, 1, 2])))
        return np.where(data.draw(arrays(bool, labels.shape)), noise, per_object)

    classes_a = classes_of(a) if which != "b" else None
    classes_b = classes_of(b) if which != "a" else None
    table = overlap_table(a, b)
    groups = review_groups(table, iou_threshold=threshold)
    tables = merge_tables(
        table, groups, policy=policy,
        classes_a=None if classes_a is None else object_classes(a, classes_a),
        classes_b=None if classes_b is None else object_classes(b, classes_b),
    )
    session = session_by_policy(a, b, groups, table, policy=policy, classes_a=classes_a,
                            classes_b=classes_b)
    expected = [0] + [max(o.cls or 0, 0) for o in session.objects]
    assert tables.classes.tolist() == expected
    out = apply_tables(a, b, tables)
    np.testing.assert_array_equal(class_map(out, tables), np.array(expected)[out])
    lazy = class_map(apply_tables(da.from_array(a, chunks=2), b, tables), tables)
    np.testing.assert_array_equal(lazy.compute(scheduler="sync"), np.array(expected)[out])


@given(pair=label_pairs())
def test_object_classes_are_the_most_frequent_class(pair):
    labels, classes = pair
    classes = classes % 4
    expected = [int(np.bincount(classes[labels == i]).argmax())
                for i in np.unique(labels[labels > 0])]
    assert object_classes(labels, classes).tolist() == expected


@pytest.mark.parametrize("dense_max_id", [0, 1 << 24])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.int32, np.int64])
def test_dense_and_searched_lookups_agree(every_kind_2d, dense_max_id, dtype, monkeypatch):
    # ids above the voxel count (480), so that dense_max_id 0 takes the search for 32 and
    # 64 bit labels (8 and 16 bit labels always have a dense table)
    scale = 3 if dtype == np.uint8 else 1000
    a, b = (x.astype(dtype) * scale for x in every_kind_2d)
    if dtype not in (np.uint8, np.uint16):
        a[a == scale] = min(np.iinfo(dtype).max, 2**32 - 1)  # the largest id a mask may hold
    monkeypatch.setattr(merging, "_DENSE_MAX_ID", dense_max_id)
    monkeypatch.setattr(merging, "_BLOCK_VOXELS", 7)  # blocks that cut rows and objects
    for policy in POLICIES:
        table, groups, tables = tables_of(a, b, policy=policy, iou_threshold=0.1)
        expected = session_by_policy(a, b, groups, table, policy=policy).output
        np.testing.assert_array_equal(apply_tables(a, b, tables), expected)
        lazy = apply_tables(da.from_array(a, chunks=5), da.from_array(b, chunks=5), tables)
        np.testing.assert_array_equal(lazy.compute(scheduler="sync"), expected)


def test_merge_masks_is_the_session_by_policy_with_classes(every_kind_2d):
    a, b = every_kind_2d
    classes_a, classes_b = (a % 3).astype(np.uint8), (b % 4).astype(np.uint8)
    for policy in POLICIES:
        merged, classes, tables = merging.merge_masks(a, b, policy=policy, iou_threshold=0.2,
                                                      classes_a=classes_a, classes_b=classes_b)
        session = decide_by_policy(Session.from_masks(a, b, iou_threshold=0.2, classes_a=classes_a,
                                                      classes_b=classes_b), policy=policy)
        np.testing.assert_array_equal(merged, session.output)
        np.testing.assert_array_equal(classes, session.class_map())
        assert classes.dtype == session.class_map().dtype
        assert tables.summary == session.summary()
    merged, classes, _ = merging.merge_masks(a, b)
    assert classes is None and merged.max() == 8


def test_contested_voxels_keep_their_owner():
    # B 2 alone is an only_b group, added after the match is decided: no contest
    a2 = np.array([[1, 1, 0, 0]])
    b2 = np.array([[1, 1, 2, 2]])
    t2 = overlap_table(a2, b2)
    m2 = merge_tables(t2, review_groups(t2), policy="a")
    assert m2.lut_b.tolist() == [0, 2] and m2.summary["contested"] == 0
    # A 5 and B 9 share one voxel (IoU 1/7 < 0.5): two unpaired groups, both added;
    # B 9 is written second and loses the shared voxel
    a = np.array([[5, 5, 5, 5, 0, 0, 0, 0]])
    b = np.array([[0, 0, 0, 9, 9, 9, 9, 0]])
    t = overlap_table(a, b)
    m = merge_tables(t, review_groups(t, iou_threshold=0.5), policy="a")
    assert apply_tables(a, b, m).tolist() == [[1, 1, 1, 1, 2, 2, 2, 0]]
    assert m.summary["contested"] == 1 and m.summary["Auto"] == 2
    # a B object inside an earlier A object's voxels: written nowhere, no id, counted
    a3 = np.array([[4, 4, 4, 4, 4, 4, 0, 8]])
    b3 = np.array([[0, 0, 6, 0, 0, 0, 0, 3]])
    t3 = overlap_table(a3, b3)
    groups = review_groups(t3, iou_threshold=0.5)  # A 4 alone (IoU 1/6), A 8 = B 3
    m3 = merge_tables(t3, groups, policy="union")
    session = session_by_policy(a3, b3, groups, t3, policy="union")
    assert m3.lut_b.tolist() == [1, 0]  # B 3 in the match's union; B 6 has no voxel left
    assert m3.kept_b.tolist() == [True, True]
    assert apply_tables(a3, b3, m3).tolist() == session.output.tolist()
    assert m3.summary == session.summary() and m3.summary["objects"] == 2


def test_a_union_takes_the_class_of_its_largest_object():
    a = np.array([[1, 1, 1, 1, 0, 2, 2, 0]])
    b = np.array([[0, 7, 7, 7, 7, 7, 7, 7]])  # A 2 (2 voxels) < B 7 (7 voxels) < A 1 + A 2
    classes_a = np.array([[3, 3, 3, 3, 0, 4, 4, 0]])
    classes_b = np.full(b.shape, 9)
    table = overlap_table(a, b)
    groups = review_groups(table)
    tables = merge_tables(table, groups, policy="union", classes_a=object_classes(a, classes_a),
                          classes_b=object_classes(b, classes_b))
    assert tables.classes.tolist() == [0, 9]  # one union of A 1, A 2, B 7: B 7 is the largest
    tables = merge_tables(table, groups, policy="union", classes_a=object_classes(a, classes_a))
    assert tables.classes.tolist() == [0, 3]  # without B's classes: A 1, the larger A object


def test_larger_policy_keeps_the_side_with_more_voxels(every_kind_2d):
    a, b = every_kind_2d
    table, groups, tables = tables_of(a, b, policy="larger", iou_threshold=0.1)
    expected = session_by_policy(a, b, groups, table, policy="larger")
    assert tables.summary == expected.summary()
    assert tables.summary["A"] + tables.summary["B"] == sum(g.paired for g in groups)


def test_blockwise_graph_holds_one_copy_of_the_lookup_tables(tmp_path):
    # on a cluster every task is sent on its own: tables in each task's arguments were sent
    # once per block (a LocalCluster merge of the big pair peaked at 4.9 GiB for it)
    import cloudpickle
    import zarr

    rng = np.random.default_rng(0)
    a = rng.integers(0, 100_000, (16, 64, 64)).astype(np.uint32)  # ~66k objects: tables of MBs
    b = np.roll(a, 1, axis=2)
    stored = zarr.create_array(tmp_path / "a.zarr", shape=a.shape, chunks=(4, 32, 32),
                               dtype=a.dtype)
    stored[...] = a
    table = overlap_table(a, b)
    tables = merge_tables(table, review_groups(table), policy="a",
                          classes_a=(np.arange(table.n_a) % 3).astype(np.uint8))
    merged = apply_tables(da.from_zarr(stored), da.from_array(b, chunks=(4, 32, 32)), tables)
    classes = class_map(merged, tables)
    for lazy in (merged, classes):
        tasks = dict(lazy.__dask_graph__()).values()
        sent = sum(len(cloudpickle.dumps(task)) for task in tasks)
        table_bytes = tables.lut_a.nbytes + tables.lut_b.nbytes + b.nbytes
        assert sent < 4 * table_bytes, (sent, table_bytes)
    assert np.array_equal(classes.compute(), class_map(apply_tables(a, b, tables), tables))


def test_bad_input_is_refused(every_kind_2d):
    a, b = every_kind_2d
    table = overlap_table(a, b)
    groups = review_groups(table)
    with pytest.raises(ValueError, match="policy must be one of"):
        merge_tables(table, groups, policy="A")
    with pytest.raises(ValueError, match="not those of the overlap table"):
        merge_tables(table, groups[:-1], policy="a")
    other = overlap_table(a, b * 2)
    with pytest.raises(ValueError, match="not those of the overlap table"):
        merge_tables(other, groups, policy="a")
    with pytest.raises(ValueError, match="classes_a must hold one class per object"):
        merge_tables(table, groups, policy="a", classes_a=np.zeros(2))
    tables = merge_tables(table, groups, policy="a")
    with pytest.raises(ValueError, match="differ in shape"):
        apply_tables(a, b[:-1], tables)
    with pytest.raises(ValueError, match="integer labels"):
        apply_tables(a.astype(float), b, tables)


def test_core_module_loads_no_qt():
    import subprocess
    import sys

    code = ("import sys, napari_mask_compare.merging; "
            "print(any(m.split('.')[0] in ('qtpy', 'PyQt6', 'napari') for m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
