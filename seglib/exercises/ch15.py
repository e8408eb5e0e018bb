"""Checks of chapter 15 (export): int8 quantization of an array, and a tensor's scale and zero point from its range.

TensorFlow Lite computes both inside its converter; the answer key here is the affine rule the chapter states,
``real = scale * (q - zero_point)`` with ``q`` an int8, checked against the numbers the chapter prints for the int8
file's input (range [0, 1] -> scale 1/255, zero point -128; pixels 0.0, 0.5, 1.0 -> -128, -1, 127).
"""

from __future__ import annotations

import numbers

import numpy as np

from seglib.exercises import Wrong, expect, expect_array

#: The int8 file's input quantization, as the chapter prints it: float32 1/255 and -128.
INPUT_SCALE, INPUT_ZERO_POINT = float(np.float32(1 / 255)), -128

# ---------------------------------------------------------------------------------------------------------
# 15.1 quantize
# ---------------------------------------------------------------------------------------------------------


def quantized(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """The answer key: ``clip(round(values / scale) + zero_point, -128, 127)`` as int8 (ties to even)."""
    return np.clip(np.round(np.asarray(values, np.float64) / scale) + zero_point, -128, 127).astype(np.int8)


def _away_from_ties(values: np.ndarray, scale: float) -> np.ndarray:
    """``values`` without those whose ``values / scale`` is within 0.01 of a half (rounding rules differ there)."""
    fraction = np.abs(np.asarray(values, np.float64) / scale) % 1
    return values[np.abs(fraction - 0.5) > 0.01]


def _quantize_hint(got: np.ndarray, values: np.ndarray, scale: float, zero_point: int) -> str:
    ratio = np.asarray(values, np.float64) / scale
    variants = {
        "values outside the range wrap around instead of saturating: clip to -128..127 before casting to int8":
            (np.round(ratio) + zero_point).astype(np.int64).astype(np.int8),
        "values are truncated towards zero (astype does that); round to the nearest integer first":
            np.clip(np.trunc(ratio) + zero_point, -128, 127).astype(np.int8),
        "values are rounded down (floor); round to the nearest integer":
            np.clip(np.floor(ratio) + zero_point, -128, 127).astype(np.int8),
        "the zero point is subtracted: q = round(value / scale) + zero_point":
            np.clip(np.round(ratio) - zero_point, -128, 127).astype(np.int8),
        "the value is multiplied by the scale: q = round(value / scale) + zero_point":
            np.clip(np.round(np.asarray(values, np.float64) * scale) + zero_point, -128, 127).astype(np.int8),
    }
    for hint, variant in variants.items():
        if got.shape == variant.shape and np.array_equal(got.astype(np.int64), variant.astype(np.int64)):
            return hint
    return ""


def check_quantize(quantize) -> None:
    """15.1: ``quantize(values (N,) float32, scale: float, zero_point: int) -> (N,) int8``."""
    rng = np.random.default_rng(15)
    cases = [
        ("pixels 0.0, 0.5, 1.0 with the int8 file's input scale (1/255 as float32) and zero point -128",
         np.array([0.0, 0.5, 1.0], np.float32), INPUT_SCALE, INPUT_ZERO_POINT),
        ("values outside the input's range [0, 1] (-0.2, 1.3, 2.0) with the same scale and zero point",
         np.array([-0.2, 1.3, 2.0], np.float32), INPUT_SCALE, INPUT_ZERO_POINT),
        ("kernel weights with scale 0.0113 and zero point 0 (symmetric, as the chapter's kernels)",
         _away_from_ties(rng.normal(0, 0.6, 400).astype(np.float32), 0.0113), 0.0113, 0),
        ("random values in -8..8 with scale 0.05 and zero point 10",
         _away_from_ties(rng.uniform(-8, 8, 400).astype(np.float32), 0.05), 0.05, 10),
    ]
    for name, values, scale, zero_point in cases:
        got = quantize(values.copy(), scale, zero_point)
        expected = quantized(values, scale, zero_point)
        if isinstance(got, np.ndarray) and got.shape == expected.shape and not np.array_equal(got, expected):
            hint = _quantize_hint(got, values, scale, zero_point)
            expect(not hint, f"the int8 values of {name} are wrong: {hint}")
        expect_array(got, expected, f"the int8 values of {name}")

# ---------------------------------------------------------------------------------------------------------
# 15.2 scale and zero point
# ---------------------------------------------------------------------------------------------------------


def scale_and_zero_point(low: float, high: float) -> tuple[float, int]:
    """The answer key: the range widened to hold 0, 255 steps over it, and the int8 that stands for 0.0."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255
    return scale, int(np.clip(np.round(-128 - low / scale), -128, 127))


def check_scale_zero_point(scale_zero_point) -> None:
    """15.2: ``scale_zero_point(low: float, high: float) -> (scale: float, zero_point: int)`` for int8 (-128..127)
    covering ``[low, high]`` widened to hold 0."""
    rng = np.random.default_rng(15)
    cases = [("the input's range [0, 1]", 0.0, 1.0), ("the range [-1, 3]", -1.0, 3.0),
             ("the range [0.5, 2] (0 is outside it)", 0.5, 2.0), ("the range [-3, -1] (0 is outside it)", -3.0, -1.0),
             ("the range [-6.3, 2.1]", -6.3, 2.1)]
    cases += [(f"the range [{low:.4f}, {high:.4f}]", low, high)
              for low, high in np.sort(rng.uniform(-10, 10, (5, 2)), axis=1).tolist()]
    for name, low, high in cases:
        got = scale_zero_point(low, high)
        expect(isinstance(got, tuple) and len(got) == 2,
               f"for {name} your function should return a tuple (scale, zero_point), got {type(got).__name__} "
               f"{got!r:.60}")
        scale, zero_point = got
        expected_scale, expected_zero = scale_and_zero_point(low, high)
        expect(isinstance(scale, numbers.Real) and not isinstance(scale, bool),
               f"for {name} the scale should be a number, got {type(scale).__name__} {scale!r:.40}")
        if not abs(float(scale) - expected_scale) <= 1e-6 * expected_scale:  # NaN is wrong too
            raise Wrong(f"the scale for {name} is {float(scale):.6g}, expected {expected_scale:.6g}"
                        f"{_scale_hint(float(scale), low, high)}")
        expect(isinstance(zero_point, numbers.Integral) and not isinstance(zero_point, bool),
               f"for {name} the zero point should be an int (an int8 value), got {type(zero_point).__name__} "
               f"{zero_point!r:.40}")
        hint = (": its sign is flipped; 0.0 must quantize to the zero point: round(-128 - low / scale)"
                if int(zero_point) == -expected_zero else "")
        expect(int(zero_point) == expected_zero,
               f"the zero point for {name} is {int(zero_point)}, expected {expected_zero}{hint}")


def _scale_hint(scale: float, low: float, high: float) -> str:
    wide_low, wide_high = min(low, 0.0), max(high, 0.0)
    if abs(scale - (wide_high - wide_low) / 256) <= 1e-6 * scale:
        return ": int8 has 256 values with 255 steps between them: divide the range by 255"
    if (wide_low, wide_high) != (low, high) and abs(scale - (high - low) / 255) <= 1e-6 * scale:
        return (": widen the range to hold 0 first (low = min(low, 0), high = max(high, 0)), so that 0.0 (zero "
                "padding, ReLU's zeros) has an exact int8")
    return ""


CHECKS = {"15.1": check_quantize, "15.2": check_scale_zero_point}
