"""seglib.features: filter responses by hand, and logistic regression on a separable problem."""

import numpy as np
import pytest

from seglib import features, labels


def _image(grey_levels: np.ndarray) -> np.ndarray:
    return np.repeat(grey_levels[..., None], 3, axis=2).astype(np.uint8)


def test_feature_names_match_the_planes():
    assert features.pixel_features(np.zeros((20, 30, 3), np.uint8)).shape == (20, 30, len(features.FEATURE_NAMES))


def test_flat_image_has_no_edges_and_keeps_its_level():
    planes = dict(zip(features.FEATURE_NAMES, np.moveaxis(features.pixel_features(_image(np.full((24, 24), 102))), -1, 0)))
    for name in ("|sobel_x|", "|prewitt_y|", "|roberts_1|", "|gabor_0deg_4px|"):
        np.testing.assert_allclose(planes[name], 0.0, atol=1e-5)
    np.testing.assert_allclose(planes["gaussian_3"], 102 / 255, atol=1e-5)
    np.testing.assert_allclose(planes["row"][:, 0], np.linspace(0, 1, 24), atol=1e-6)


def test_sobel_and_prewitt_on_a_vertical_step_by_hand():
    # left half 0, right half 255 (grey 1.0): at the step, Sobel x = 1 + 2 + 1 = 4, Prewitt x = 3; Sobel y = 0
    grey = np.zeros((10, 10)); grey[:, 5:] = 255
    planes = dict(zip(features.FEATURE_NAMES, np.moveaxis(features.pixel_features(_image(grey)), -1, 0)))
    assert planes["|sobel_x|"][5, 4] == pytest.approx(4.0, abs=1e-5)
    assert planes["|prewitt_x|"][5, 4] == pytest.approx(3.0, abs=1e-5)
    assert planes["|sobel_y|"][5, 4] == pytest.approx(0.0, abs=1e-5)


def test_logistic_regression_learns_a_separable_problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 2)).astype(np.float32)
    y = (x[:, 0] + 2 * x[:, 1] > 0).astype(np.uint8)  # linearly separable
    model = features.logistic_regression(x, y, num_classes=2, epochs=30)
    accuracy = np.mean(np.argmax(model.predict(x, verbose=0), axis=-1) == y)
    assert accuracy > 0.97


def test_sample_pixels_skips_ignore():
    mask = np.array([[1, labels.IGNORE], [2, labels.IGNORE]], np.uint8)
    planes = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    x, y = features.sample_pixels(planes, mask, 10, np.random.default_rng(0))
    assert sorted(y.tolist()) == [1, 2] and x.shape == (2, 2)


def test_baseline_predictor_shapes_and_bad_input():
    x = np.random.default_rng(0).random((200, len(features.FEATURE_NAMES)), dtype=np.float32)
    model = features.logistic_regression(x, np.arange(200) % 3, num_classes=3, epochs=1)
    predicted = features.baseline_predictor(model)(np.zeros((2, 16, 24, 3), np.float32))
    assert predicted.shape == (2, 16, 24) and predicted.dtype == np.uint8
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        features.pixel_features(np.zeros((4, 4, 3), np.float32))
