"""seglib.augment: property tests (hypothesis) that masks stay valid and aligned with their images, run alike for
both back-ends (albumentations and Keras's preprocessing layers)."""

import dataclasses
import functools

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seglib import augment, labels

NONE = augment.AugmentationSettings(flip_probability=0, rotate_probability=0, shift_scale_probability=0,
                                    brightness_contrast_probability=0, noise_probability=0)  # every transform off
# Geometry only, image resampled by nearest too: then an image that encodes its mask must still encode it exactly.
GEOMETRY_ONLY = dataclasses.replace(NONE, flip_probability=0.5, rotate_probability=1.0, shift_scale_probability=1.0,
                                    image_interpolation=cv2.INTER_NEAREST)
ROTATION_ONLY = dataclasses.replace(NONE, rotate_probability=1.0, image_interpolation=cv2.INTER_NEAREST)
PHOTOMETRIC_ONLY = dataclasses.replace(NONE, brightness_contrast_probability=1.0, noise_probability=1.0)
ENCODE = 30  # image value = category * ENCODE + 1 (categories 0..7 -> 1..211, never the image fill 0)
BACKENDS = pytest.mark.parametrize("backend", augment.BACKENDS)
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def transform(backend: str, base: augment.AugmentationSettings = augment.DEFAULT_SETTINGS) -> augment.Augmentation:
    """One transform per back-end and settings for the whole module (a Keras one traces its graph once)."""
    return augment.make_augmentation(dataclasses.replace(base, backend=backend))


@st.composite
def image_and_mask(draw, with_ignore: bool = True):
    height, width = draw(st.integers(8, 40)), draw(st.integers(8, 60))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    block = draw(st.integers(1, 6))
    small = rng.integers(0, labels.NUM_CATEGORIES, (height // block + 1, width // block + 1), dtype=np.uint8)
    if with_ignore:  # a mask may arrive with IGNORE already (an earlier step's fill): it must stay IGNORE
        small[rng.random(small.shape) < 0.1] = labels.IGNORE
    mask = np.kron(small, np.ones((block, block), np.uint8))[:height, :width]
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return image, mask, seed


def encode(mask: np.ndarray) -> np.ndarray:
    """An image whose three channels are ``mask * ENCODE + 1``."""
    return np.repeat((mask * ENCODE + 1)[..., None], 3, axis=2).astype(np.uint8)


@BACKENDS
@PROPERTY
@given(example=image_and_mask())
def test_augmented_mask_holds_only_its_values_or_ignore(backend, example):
    image, mask, seed = example
    out_image, out_mask = augment.augment_pair(transform(backend), image, mask, seed)
    assert out_image.shape == image.shape and out_image.dtype == np.uint8
    assert out_mask.shape == mask.shape and out_mask.dtype == np.uint8
    assert set(np.unique(out_mask)) <= set(np.unique(mask)) | {labels.IGNORE}


@BACKENDS
@PROPERTY
@given(example=image_and_mask(with_ignore=False))
def test_image_and_mask_stay_aligned(backend, example):
    _, mask, seed = example
    out_image, out_mask = augment.augment_pair(transform(backend, GEOMETRY_ONLY), encode(mask), mask, seed)
    labelled = out_mask != labels.IGNORE
    np.testing.assert_array_equal(out_image[..., 0][labelled], out_mask[labelled] * ENCODE + 1)
    assert (out_image[~labelled] == 0).all()  # exposed pixels: image filled with 0 exactly where the mask is IGNORE


@BACKENDS
def test_geometry_moves_image_and_mask(backend, rng):
    """The alignment test above would pass on a transform that did nothing: this one checks that the draws move."""
    mask = np.kron(rng.integers(0, labels.NUM_CATEGORIES, (8, 12), dtype=np.uint8), np.ones((5, 5), np.uint8))
    outputs = [augment.augment_pair(transform(backend, GEOMETRY_ONLY), encode(mask), mask, seed) for seed in range(8)]
    assert sum(not np.array_equal(out_mask, mask) for _, out_mask in outputs) == 8
    assert sum((out_mask == labels.IGNORE).any() for _, out_mask in outputs) >= 6


@BACKENDS
def test_a_flip_mirrors_image_and_mask_exactly(backend, rng):
    image = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    mask = rng.integers(0, labels.NUM_CATEGORIES, (6, 9), dtype=np.uint8)
    out_image, out_mask = augment.augment_pair(transform(backend, dataclasses.replace(NONE, flip_probability=1.0)),
                                               image, mask, 3)
    np.testing.assert_array_equal(out_image, image[:, ::-1])
    np.testing.assert_array_equal(out_mask, mask[:, ::-1])


@BACKENDS
@pytest.mark.parametrize("category", [0, 5])  # void itself, and another category
def test_exposed_pixels_are_ignore_never_void(backend, category):
    """Rotated masks of one category: where the rotation exposed pixels (the image, resampled by nearest like the
    mask, holds its fill 0 there) the mask holds IGNORE; everywhere else the category it held."""
    mask = np.full((40, 80), category, np.uint8)
    image = np.full((40, 80, 3), 200, np.uint8)
    exposed_total = 0
    for seed in range(8):
        out_image, out_mask = augment.augment_pair(transform(backend, ROTATION_ONLY), image, mask, seed)
        exposed = out_image[..., 0] == 0
        assert (out_mask[exposed] == labels.IGNORE).all()
        assert (out_mask[~exposed] == category).all()
        exposed_total += int(exposed.sum())
    assert exposed_total > 0


@BACKENDS
def test_same_seed_same_result_and_seeds_differ(backend, rng):
    image = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    mask = rng.integers(0, 8, (32, 48), dtype=np.uint8)
    first = augment.augment_pair(transform(backend), image, mask, 7)
    again = augment.augment_pair(augment.make_augmentation(augment.AugmentationSettings(backend=backend)),
                                 image, mask, 7)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    others = [augment.augment_pair(transform(backend), image, mask, seed)[1] for seed in range(8)]
    assert any(not np.array_equal(other, first[1]) for other in others)


@BACKENDS
def test_photometric_transforms_change_the_image_only(backend, rng):
    image = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    mask = rng.integers(0, 8, (24, 40), dtype=np.uint8)
    for seed in range(5):
        out_image, out_mask = augment.augment_pair(transform(backend, PHOTOMETRIC_ONLY), image, mask, seed)
        np.testing.assert_array_equal(out_mask, mask)
        assert np.abs(out_image.astype(int) - image).mean() > 1


@BACKENDS
def test_each_transform_fires_with_its_probability(backend, rng):
    """Over 300 seeds a flip of probability 0.3 fires 90 times on average (standard deviation 7.9): between 60 and 120
    is more than 3.7 deviations either side, so this fails only for a wrong probability."""
    image = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    mask = rng.integers(0, 8, (4, 6), dtype=np.uint8)
    flips = transform(backend, dataclasses.replace(NONE, flip_probability=0.3))
    fired = sum(np.array_equal(augment.augment_pair(flips, image, mask, seed)[0], image[:, ::-1])
                for seed in range(300))
    assert 60 <= fired <= 120


def test_seed_for_is_deterministic_and_distinct():
    assert augment.seed_for(0, 1, 2) == augment.seed_for(0, 1, 2)
    assert len({augment.seed_for(0, epoch, index) for epoch in range(5) for index in range(20)}) == 100


def test_keras_fills_masks_with_the_image_fill_value():
    """Why the keras back-end offsets the mask: Keras's own call fills exposed mask pixels with the layer's one
    ``fill_value``, here 0, which would read as void."""
    import keras

    layer = keras.layers.RandomRotation((0.1, 0.1), fill_mode="constant", fill_value=0.0, seed=1)  # 36 degrees
    out = layer({"images": np.full((1, 20, 40, 3), 200.0, np.float32),
                 "segmentation_masks": np.full((1, 20, 40, 1), 5.0, np.float32)})
    values = set(np.unique(keras.ops.convert_to_numpy(out["segmentation_masks"])).tolist())
    assert values == {0.0, 5.0}


def test_keras_eager_path_matches_the_compiled_one(rng):
    """On jax and torch :meth:`KerasAugmentation.apply` runs eagerly with a Python int seed; on tensorflow through a
    ``tf.function`` with a tensor seed. Both draw from the same seeds: the same arrays."""
    import keras

    image = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    mask = rng.integers(0, 8, (24, 40), dtype=np.uint8)
    keras_transform = transform("keras")
    for seed in (0, 1, 2**32 - 1):
        eager = [keras.ops.convert_to_numpy(array) for array in keras_transform.apply(image, mask, seed)]
        compiled = augment.augment_pair(keras_transform, image, mask, seed)
        assert all(np.array_equal(a, b) for a, b in zip(eager, compiled))


def test_keras_augmentation_in_tf_data_matches_the_generator(small_dataset):
    """The keras back-end inside the ``tf.data`` graph and in the ``PyDataset`` (eager calls): the same examples,
    epoch by epoch, as the pipelines promise for albumentations."""
    from seglib import data

    keras_transform = transform("keras")
    size = (32, 64)
    dataset = data.tf_dataset(small_dataset, "train", augmentation=keras_transform, seed=2, image_size=size,
                              batch_size=2)
    sequence = data.SegmentationSequence(small_dataset, "train", augmentation=keras_transform, seed=2,
                                         image_size=size, batch_size=2)
    for _ in range(2):
        for (tf_images, tf_masks), (images, batch_masks) in zip(dataset, [sequence[i] for i in range(len(sequence))]):
            np.testing.assert_array_equal(tf_masks.numpy(), batch_masks)
            np.testing.assert_array_equal(tf_images.numpy(), images)
        sequence.on_epoch_end()


@BACKENDS
@pytest.mark.parametrize("image, mask, message", [
    (np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), r"\(H, W, 3\) uint8"),
    (np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8), r"\(H, W, 3\) uint8"),
    (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8), r"matching the image \(4, 4\)"),
])
def test_bad_input_is_named(backend, image, mask, message):
    with pytest.raises(ValueError, match=message):
        augment.augment_pair(transform(backend), image, mask, 0)


@pytest.mark.parametrize("make, message", [
    (lambda: augment.AugmentationSettings(backend="torchvision"), r"unknown augmentation backend 'torchvision'"),
    (lambda: augment.make_augmentation(augment.AugmentationSettings(backend="keras",
                                                                    image_interpolation=cv2.INTER_CUBIC)),
     r"cv2.INTER_NEAREST or cv2.INTER_LINEAR, got image_interpolation=2"),
    (lambda: augment.make_augmentation(augment.AugmentationSettings(backend="keras", scale_range=(0.4, 1.1))),
     r"scale_range must hold 0.5 <= low <= high"),
    (lambda: augment.augment_pair(object(), np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), 0),
     r"must come from seglib.augment.make_augmentation, got object"),
])
def test_bad_settings_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()
