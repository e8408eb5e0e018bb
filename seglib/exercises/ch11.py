"""Checks of chapter 11 (classical baseline): one filter feature, and logistic regression's prediction.

The answer keys are the baseline's own code: the edge planes of :func:`seglib.features.pixel_features` (OpenCV's
``filter2D`` with mirrored borders, absolute value) and a logistic regression built as
:func:`seglib.features.logistic_regression` builds it (a ``Normalization`` layer, one softmax ``Dense`` layer),
with given weights instead of fitted ones: nothing is trained.
"""

from __future__ import annotations

import cv2
import numpy as np

from seglib import features
from seglib.exercises import Wrong, expect, expect_array, median_seconds


def _expect_close_array(got, expected: np.ndarray, what: str, tolerance: float = 1e-5) -> None:
    """Same shape and dtype as ``expected``, values within ``tolerance`` (absolute and relative); the message names
    the first pixel that differs and both values."""
    expect(isinstance(got, np.ndarray), f"{what} should be a numpy array, got {type(got).__name__}")
    expect(got.shape == expected.shape, f"{what} has shape {got.shape}, expected {expected.shape}")
    expect(got.dtype == expected.dtype, f"{what} has dtype {got.dtype}, expected {expected.dtype}")
    far = ~np.isclose(got, expected, rtol=tolerance, atol=tolerance)
    if far.any():
        index = tuple(int(i) for i in np.argwhere(far)[0])
        raise Wrong(f"{what} differs at {int(far.sum()):,} of {expected.size:,} pixels; the first is at {index}: "
                    f"{got[index].item():.6g}, expected {expected[index].item():.6g}")


def _reference_response(grey: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    return np.abs(cv2.filter2D(grey, -1, kernel, borderType=cv2.BORDER_REFLECT))


def _response_hint(got: np.ndarray, grey: np.ndarray, kernel: np.ndarray) -> str:
    """Why a response of the right shape and dtype differs, when a usual slip explains it."""
    signed = cv2.filter2D(grey, -1, kernel, borderType=cv2.BORDER_REFLECT)
    flipped = np.abs(cv2.filter2D(grey, -1, kernel[::-1, ::-1].copy(), borderType=cv2.BORDER_REFLECT))
    expected = np.abs(signed)
    close = lambda a, b: np.allclose(a, b, rtol=1e-5, atol=1e-5)  # noqa: E731
    if close(got, signed):
        return ": the feature is the absolute response (an edge counts whichever way it goes)"
    if close(got, flipped):
        return (": that is a convolution (kernel flipped); the filters are applied as correlation, the kernel as it "
                "is printed")
    if close(got[1:-1, 1:-1], expected[1:-1, 1:-1]):
        return (": the inside is right, the border is not: mirror the edge pixels (np.pad(..., mode='symmetric'), "
                "OpenCV's BORDER_REFLECT), do not pad with zeros")
    return ""


def check_filter_response(filter_response) -> None:
    """11.1: ``filter_response(grey (H, W) float32, kernel (3, 3) float32) -> (H, W) float32``, |correlation| with
    mirrored borders, as the edge planes of features.pixel_features."""
    rng = np.random.default_rng(11)
    image = rng.integers(0, 256, (24, 40, 3)).astype(np.uint8)
    planes = features.pixel_features(image)
    grey = np.ascontiguousarray(planes[..., features.FEATURE_NAMES.index("grey")])
    step = np.zeros((5, 6), np.float32)
    step[:, 3:] = 1.0  # a vertical edge between columns 2 and 3
    cases = [("a 5x6 step image, sobel_x", step, features.KERNELS["sobel_x"], None)]
    for name in ("sobel_x", "sobel_y", "prewitt_x"):
        cases.append((f"a random 24x40 image, {name}", grey, features.KERNELS[name],
                      planes[..., features.FEATURE_NAMES.index(f"|{name}|")]))
    cases.append(("a random 24x40 image, a random 3x3 kernel", grey,
                  rng.normal(0, 1, (3, 3)).astype(np.float32), None))
    for what, picture, kernel, plane in cases:
        expected = _reference_response(picture, kernel) if plane is None else plane
        got = filter_response(picture.copy(), kernel.copy())
        try:
            _expect_close_array(got, expected, f"the response on {what}")
        except Wrong as wrong:
            comparable = isinstance(got, np.ndarray) and got.shape == expected.shape and got.dtype == expected.dtype
            raise Wrong(str(wrong) + (_response_hint(got, picture, kernel) if comparable else "")) from None
    big = rng.random((128, 256), dtype=np.float32)
    yours = median_seconds(lambda: filter_response(big, features.KERNELS["sobel_x"]), repeats=1)
    library = median_seconds(lambda: _reference_response(big, features.KERNELS["sobel_x"]), repeats=3)
    expect(yours < 20 * library + 0.03,
           f"the responses are right, but a 128x256 image takes {1000 * yours:.0f} ms against {1000 * library:.2f} "
           "ms for OpenCV: a loop over the pixels? sum the 9 shifted copies of the padded image, weighted by the "
           "kernel, instead")


def _keras_predict(x: np.ndarray, mean: np.ndarray, variance: np.ndarray, weights: np.ndarray,
                   bias: np.ndarray) -> np.ndarray:
    """The categories a logistic regression built as features.logistic_regression builds it predicts."""
    import keras

    inputs = keras.Input((x.shape[1],), name="features")
    standardise = keras.layers.Normalization(mean=mean, variance=variance, name="standardise")
    scores = keras.layers.Dense(weights.shape[1], activation="softmax", name="linear_scores")
    model = keras.Model(inputs, scores(standardise(inputs)))
    scores.set_weights([weights, bias])
    return np.argmax(np.asarray(model(x, training=False)), axis=-1).astype(np.uint8)


def _predict_hint(got: np.ndarray, x, mean, variance, weights, bias) -> str:
    raw = np.argmax(x @ weights + bias, axis=-1)
    by_variance = np.argmax((x - mean) / variance @ weights + bias, axis=-1)
    if np.array_equal(got, raw):
        return ": standardise each feature first, (x - mean) / sqrt(variance), as the model's first layer does"
    if np.array_equal(got, by_variance):
        return ": divide by the standard deviation, sqrt(variance), not by the variance"
    return ""


def check_predict_categories(predict_categories) -> None:
    """11.2: ``predict_categories(features (N, F) float32, mean (F,), variance (F,), weights (F, C), bias (C,))
    -> (N,) uint8`` category ids."""
    rng = np.random.default_rng(110)
    hand = (np.array([[0.0, 2.0], [4.0, 2.0], [2.0, 0.0], [2.0, 4.0]], np.float32),
            np.array([2.0, 2.0], np.float32), np.array([4.0, 4.0], np.float32),
            np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]], np.float32), np.array([0.1, 0.0, 0.5], np.float32))
    cases = [("4 pixels, 2 features, 3 categories by hand", hand)]
    for count, width, classes in ((500, 22, 8), (64, 5, 4)):
        mean = rng.uniform(0, 1, width).astype(np.float32)
        variance = rng.uniform(0.01, 0.2, width).astype(np.float32)
        x = (mean + np.sqrt(variance) * rng.normal(0, 1, (count, width))).astype(np.float32) * 1.5 + 0.3
        cases.append((f"{count} random pixels, {width} features, {classes} categories",
                      (x.astype(np.float32), mean, variance, rng.normal(0, 1, (width, classes)).astype(np.float32),
                       rng.normal(0, 0.5, classes).astype(np.float32))))
    for what, (x, mean, variance, weights, bias) in cases:
        expected = _keras_predict(x, mean, variance, weights, bias)
        got = predict_categories(x.copy(), mean.copy(), variance.copy(), weights.copy(), bias.copy())
        if isinstance(got, np.ndarray) and got.shape == (*expected.shape, weights.shape[1]):
            raise Wrong(f"the result for {what} has shape {got.shape}, expected {expected.shape}: return each "
                        "pixel's category (the argmax of its scores), not the scores")
        try:
            expect_array(got, expected, f"the categories of {what}")
        except Wrong as wrong:
            comparable = isinstance(got, np.ndarray) and got.shape == expected.shape and got.dtype == expected.dtype
            raise Wrong(str(wrong) + (_predict_hint(got, x, mean, variance, weights, bias) if comparable else "")) \
                from None


CHECKS = {"11.1": check_filter_response, "11.2": check_predict_categories}
