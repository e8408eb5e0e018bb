"""seglib.modelio (the model's contract) and the one nearest-neighbour mask resize of seglib.masks."""

import math
from fractions import Fraction

import numpy as np
import pytest

from seglib import masks, modelio


def exact_sources(n_out: int, n_in: int) -> list[int]:
    """Independent reference: the input pixel under each output pixel's centre, in exact fractions."""
    return [math.floor((Fraction(i) + Fraction(1, 2)) * Fraction(n_in, n_out)) for i in range(n_out)]


@pytest.mark.parametrize("n_in, n_out", [(2, 25), (6, 5), (7, 3), (64, 256), (256, 64), (97, 32), (1, 9), (10, 4)])
def test_nearest_indices_equal_exact_fractions(n_in, n_out):
    assert masks.nearest_indices(n_in, n_out).tolist() == exact_sources(n_out, n_in)


def test_resize_nearest_by_hand_and_on_a_tie():
    mask = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], dtype=np.uint8)
    assert masks.resize_nearest(mask, (1, 2)).tolist() == [[5, 7]]
    # 2 -> 25: output 12's centre (12.5 * 2 / 25 = 1) lies exactly on the border of the two inputs: the later one
    row = masks.resize_nearest(np.array([[10, 20]], dtype=np.uint8), (1, 25))[0]
    assert row[:12].tolist() == [10] * 12 and row[12:].tolist() == [20] * 13


def test_the_tensorflow_twins_agree_with_numpy(rng):
    tf = pytest.importorskip("tensorflow")
    for source, target in (((96, 128), (25, 250)), ((2, 6), (25, 5)), ((64, 128), (256, 512)), ((37, 53), (8, 16))):
        mask = rng.integers(0, 8, source).astype(np.uint8)
        np.testing.assert_array_equal(modelio.resize_mask_tf(tf.constant(mask), target).numpy(),
                                      masks.resize_nearest(mask, target))
        image = rng.integers(0, 256, (*source, 3)).astype(np.uint8)
        difference = np.abs(modelio.resize_image_tf(image, target).numpy().astype(int)
                            - modelio.resize_image(image, target).astype(int))
        assert difference.max() <= 1 and (difference > 0).mean() < 1e-2
    probabilities = rng.random((2, 4, 5, 8)).astype(np.float32)
    np.testing.assert_array_equal(modelio.to_categories_tf(probabilities).numpy(), modelio.to_categories(probabilities))


def test_resize_image_averages_when_shrinking_and_keeps_a_flat_image():
    image = np.zeros((2, 2, 3), np.uint8)
    image[0, 0] = image[1, 1] = 100                                   # mean 50 over the 2x2 block
    assert modelio.resize_image(image, (1, 1)).tolist() == [[[50, 50, 50]]]
    assert (modelio.resize_image(np.full((3, 5, 3), 77, np.uint8), (7, 2)) == 77).all()


def test_model_input_and_outputs_by_hand():
    images = np.array([[[[0, 51, 255]]]], dtype=np.uint8)
    np.testing.assert_allclose(modelio.to_model_input(images), [[[[0.0, 0.2, 1.0]]]])
    assert modelio.to_model_input(images).dtype == np.float32
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    assert modelio.to_categories(scores).tolist() == [1, 0]
    assert modelio.to_binary(np.array([[0.2], [0.6], [0.5]])).tolist() == [0, 1, 0]
    assert modelio.to_full_size(np.array([[1, 2]], np.uint8), (2, 4)).tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]


@pytest.mark.parametrize("call, message", [
    (lambda: modelio.to_model_input(np.zeros((4, 4, 3), np.float32)), "uint8"),
    (lambda: modelio.to_categories(np.zeros((4, 4, 1))), "C >= 2"),
    (lambda: modelio.to_binary(np.zeros((4, 4, 8))), "one sigmoid output"),
    (lambda: modelio.to_binary(np.zeros((4, 4, 1)), threshold=1.0), "threshold"),
    (lambda: modelio.resize_image(np.zeros((4, 4), np.uint8), (2, 2)), "uint8 array"),
    (lambda: masks.resize_nearest(np.zeros((4, 4), np.uint8), (2, -1)), "positive integers"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_from_model_input_inverts_to_model_input(rng):
    images = rng.integers(0, 256, (2, 3, 4, 3)).astype(np.uint8)
    np.testing.assert_array_equal(modelio.from_model_input(modelio.to_model_input(images)), images)
    assert modelio.from_model_input(np.array([[[[-0.1, 0.5, 1.2]]]])).tolist() == [[[[0, 128, 255]]]]
    with pytest.raises(ValueError, match="floats in"):
        modelio.from_model_input(images)
