"""seglib.augment: property tests (hypothesis) that masks stay valid and aligned with their images."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seglib import augment, labels

# Geometry only, image resampled by nearest too: then an image that encodes its mask must still encode it exactly.
GEOMETRY_ONLY = augment.AugmentationSettings(
    flip_probability=0.5, rotate_probability=1.0, shift_scale_probability=1.0,
    brightness_contrast_probability=0.0, noise_probability=0.0, image_interpolation=0)  # 0 = cv2.INTER_NEAREST
ENCODE = 30  # image value = category * ENCODE (categories 0..7 -> 0..210, never the fill value of 255 * ...)


@st.composite
def image_and_mask(draw):
    height, width = draw(st.integers(8, 40)), draw(st.integers(8, 60))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    block = draw(st.integers(1, 6))
    small = rng.integers(0, labels.NUM_CATEGORIES, (height // block + 1, width // block + 1), dtype=np.uint8)
    mask = np.kron(small, np.ones((block, block), np.uint8))[:height, :width]
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return image, mask, seed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image_and_mask())
def test_augmented_mask_holds_only_its_values_or_ignore(example):
    image, mask, seed = example
    out_image, out_mask = augment.augment_pair(augment.make_augmentation(), image, mask, seed)
    assert out_image.shape == image.shape and out_image.dtype == np.uint8
    assert out_mask.shape == mask.shape and out_mask.dtype == np.uint8
    assert set(np.unique(out_mask)) <= set(np.unique(mask)) | {labels.IGNORE}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image_and_mask())
def test_image_and_mask_stay_aligned(example):
    _, mask, seed = example
    encoded = np.repeat((mask * ENCODE + 1)[..., None], 3, axis=2).astype(np.uint8)  # +1: never the image fill 0
    out_image, out_mask = augment.augment_pair(augment.make_augmentation(GEOMETRY_ONLY), encoded, mask, seed)
    labelled = out_mask != labels.IGNORE
    np.testing.assert_array_equal(out_image[..., 0][labelled], out_mask[labelled] * ENCODE + 1)
    assert (out_image[~labelled] == 0).all()  # exposed pixels: image filled with 0 exactly where the mask is IGNORE


def test_same_seed_same_result_and_seeds_differ(rng):
    image = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    mask = rng.integers(0, 8, (32, 48), dtype=np.uint8)
    transform = augment.make_augmentation()
    first = augment.augment_pair(transform, image, mask, 7)
    again = augment.augment_pair(augment.make_augmentation(), image, mask, 7)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    others = [augment.augment_pair(transform, image, mask, seed)[1] for seed in range(8)]
    assert any(not np.array_equal(other, first[1]) for other in others)


def test_seed_for_is_deterministic_and_distinct():
    assert augment.seed_for(0, 1, 2) == augment.seed_for(0, 1, 2)
    assert len({augment.seed_for(0, epoch, index) for epoch in range(5) for index in range(20)}) == 100


def test_a_full_rotation_fills_with_ignore_not_with_a_class():
    # rotating a mask of one class exposes corners: they must hold IGNORE, never category 0 (void) or another
    rotate = augment.AugmentationSettings(flip_probability=0, rotate_degrees=10, rotate_probability=1,
                                          shift_scale_probability=0, brightness_contrast_probability=0,
                                          noise_probability=0)
    mask = np.full((40, 80), 5, np.uint8)
    _, out = augment.augment_pair(augment.make_augmentation(rotate), np.zeros((40, 80, 3), np.uint8), mask, 1)
    assert set(np.unique(out)) == {5, labels.IGNORE}


@pytest.mark.parametrize("image, mask, message", [
    (np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), r"\(H, W, 3\) uint8"),
    (np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8), r"\(H, W, 3\) uint8"),
    (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8), r"matching the image \(4, 4\)"),
])
def test_bad_input_is_named(image, mask, message):
    with pytest.raises(ValueError, match=message):
        augment.augment_pair(augment.make_augmentation(), image, mask, 0)
