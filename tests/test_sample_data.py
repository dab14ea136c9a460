"""Sample data: every review group kind, deterministic, fast, plausible; then in a viewer."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from napari_mask_compare import pairing
from napari_mask_compare._sample_data import (
    SHAPE_2D,
    SHAPE_3D,
    VOXEL_SIZE_3D,
    make_sample_2d,
    make_sample_3d,
    synthetic_masks,
)

SAMPLES = {"2d": (make_sample_2d, SHAPE_2D, (1.0, 1.0)),
           "3d": (make_sample_3d, SHAPE_3D, VOXEL_SIZE_3D)}


def _groups(a, b):
    return pairing.review_groups(pairing.overlap_table(a, b), iou_threshold=0.1)


@pytest.fixture(params=sorted(SAMPLES))
def sample(request):
    make, shape, scale = SAMPLES[request.param]
    return make(), shape, scale


def test_layers_are_image_mask_a_mask_b(sample):
    layers, shape, scale = sample
    assert [(meta["name"], kind) for _, meta, kind in layers] == [
        ("image", "image"), ("mask A", "labels"), ("mask B", "labels")]
    for data, meta, _ in layers:
        assert data.shape == shape
        assert tuple(meta["scale"]) == scale
    image, a, b = (data for data, _, _ in layers)
    assert image.dtype == np.float32
    assert a.dtype == b.dtype == np.uint16


def test_every_group_kind_is_present(sample):
    layers, _, _ = sample
    _, a, b = (data for data, _, _ in layers)
    kinds = Counter(group.kind for group in _groups(a, b))
    assert set(kinds) == set(pairing.KINDS)
    assert 20 <= sum(kinds.values()) <= 60  # a few dozen cases


def test_matches_include_exact_and_shifted_boundaries(sample):
    layers, _, _ = sample
    _, a, b = (data for data, _, _ in layers)
    ious = [group.iou for group in _groups(a, b) if group.kind == "match"]
    assert any(iou == 1.0 for iou in ious)
    assert any(0.5 < iou < 0.9 for iou in ious)


def test_group_shapes_are_as_described(sample):
    layers, _, _ = sample
    _, a, b = (data for data, _, _ in layers)
    for group in _groups(a, b):
        n_a, n_b = len(group.ids_a), len(group.ids_b)
        expected = {"match": (1, 1), "split": (1, 2), "merge": (2, 1), "complex": (2, 2),
                    "only_a": (1, 0), "only_b": (0, 1)}[group.kind]
        assert (n_a, n_b) == expected, group


def test_mask_a_ids_are_sequential_and_b_ids_shuffled(sample):
    layers, _, _ = sample
    _, a, b = (data for data, _, _ in layers)
    ids_a = np.unique(a)[1:]
    np.testing.assert_array_equal(ids_a, np.arange(1, len(ids_a) + 1))
    assert set(np.unique(b)[1:]) == set(range(1, int(b.max()) + 1))


def test_image_looks_like_fluorescence(sample):
    layers, _, _ = sample
    image, a, b = (data for data, _, _ in layers)
    background = image[(a == 0) & (b == 0)]
    cells = image[a > 0]
    assert cells.mean() > background.mean() + 0.3
    assert 0.01 < background.std() < 0.2  # noise, not a flat background
    only_b = [g for g in _groups(a, b) if g.kind == "only_b"]
    dim = image[np.isin(b, [g.ids_b[0] for g in only_b])]
    assert dim.mean() > background.mean() + 0.05  # B found a dim cell that A missed


def test_deterministic():
    for make in (make_sample_2d, make_sample_3d):
        first, second = make(), make()
        for (x, _, _), (y, _, _) in zip(first, second):
            np.testing.assert_array_equal(x, y)
    one, other = synthetic_masks(SHAPE_2D, seed=1), synthetic_masks(SHAPE_2D, seed=2)
    assert not np.array_equal(one[1], other[1])


@given(seed=st.integers(0, 2**32 - 1),
       shape=st.sampled_from([(128, 168), (256, 256), (200, 300), (24, 75, 100), (48, 50, 75)]))
def test_every_kind_for_any_seed_and_shape(seed, shape):
    image, a, b = synthetic_masks(shape, seed=seed)
    assert image.shape == a.shape == b.shape == shape
    assert {group.kind for group in _groups(a, b)} == set(pairing.KINDS)


@pytest.mark.parametrize("shape", [(100, 100), (256,), (2, 24, 128, 128), (10, 256, 256)])
def test_too_small_or_wrong_shape_is_refused(shape):
    with pytest.raises(ValueError, match="shape"):
        synthetic_masks(shape, seed=0)


@pytest.mark.slow
def test_viewer_opens_both_samples(make_napari_viewer):
    viewer = make_napari_viewer()
    for key, shape in (("two_masks_2d", SHAPE_2D), ("two_masks_3d", SHAPE_3D)):
        viewer.layers.clear()
        viewer.open_sample("napari-mask-compare", key)
        assert [(layer.name, type(layer).__name__) for layer in viewer.layers] == [
            ("image", "Image"), ("mask A", "Labels"), ("mask B", "Labels")]
        assert viewer.layers["mask A"].data.shape == shape
