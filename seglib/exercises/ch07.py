"""Checks of chapter 7 (losses): cross-entropy and soft dice in numpy, IGNORE pixels left out, against
:func:`seglib.losses.cross_entropy` and :func:`seglib.losses.dice_loss` (imported when a check runs: seglib.losses
imports Keras)."""

from __future__ import annotations

import numpy as np

from seglib import labels
from seglib.exercises import Wrong, expect, expect_close

_IGNORE = labels.IGNORE


def _probabilities(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    logits = rng.normal(0, 2, shape)
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return (exp / exp.sum(-1, keepdims=True)).astype(np.float32)


def _cases(rng: np.random.Generator) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, y_true (B, H, W) uint8, y_pred (B, H, W, C) float32)``: by hand, with IGNORE, random."""
    hand_true = np.array([[[0, 1], [2, 1]]], np.uint8)                                    # (1, 2, 2), 3 classes
    hand_pred = np.array([[[[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]],
                           [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]]], np.float32)
    ignored_true = hand_true.copy()
    ignored_true[0, 1, 1] = _IGNORE                                                        # the worst pixel, ignored
    certain_true = np.array([[[0, 1, 1]]], np.uint8)
    certain_pred = np.array([[[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]]], np.float32)        # sure, and once wrong
    random_true = rng.integers(0, 4, (3, 6, 5)).astype(np.uint8)
    random_true[rng.random(random_true.shape) < 0.2] = _IGNORE
    random_true[0] = rng.integers(0, 4, (6, 5))  # one image without IGNORE, one with...
    random_true[2, :4] = _IGNORE                # ...and one that is mostly IGNORE
    return [("the 2x2 example by hand (3 classes)", hand_true, hand_pred),
            ("the same with its pixel (1, 1) IGNORE", ignored_true, hand_pred),
            ("a prediction sure everywhere, wrong once (probability 0 on the truth)", certain_true, certain_pred),
            ("a random batch (3, 6, 5) of 4 classes with IGNORE pixels", random_true,
             _probabilities(rng, (3, 6, 5, 4)))]


def _number(value, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Wrong(f"{what} should be a number, got {type(value).__name__}") from None


def _close(a: float, b: float) -> bool:
    return bool(np.isfinite(a) and abs(a - b) <= 1e-5 * max(1.0, abs(b)))


def _ce_mistakes(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """What plausible wrong cross-entropies give, with the message for each."""
    y_pred = y_pred.astype(np.float64)
    valid = y_true != _IGNORE
    target = np.where(valid, y_true, 0).astype(np.int64)
    p = np.take_along_axis(y_pred, target[..., None], -1)[..., 0]
    clipped = -np.log(np.clip(p, 1e-7, 1 - 1e-7))
    mistakes = {}
    if valid.any() and not valid.all():
        mistakes["you divide by every pixel, IGNORE included: divide by the number of pixels that have a target"] = \
            clipped[valid].sum() / y_true.size
        mistakes["IGNORE pixels are counted (as class 0?): leave them out of both the sum and the count"] = \
            clipped.mean()
    if len(y_true) > 1 and valid.any():
        per_image = [clipped[b][valid[b]].mean() for b in range(len(y_true)) if valid[b].any()]
        mistakes["that is the mean of per-image means; the loss is the mean over all the batch's non-IGNORE pixels"] = \
            float(np.mean(per_image))
    return mistakes


def check_cross_entropy(cross_entropy) -> None:
    """07.1: ``cross_entropy(y_true (B, H, W) uint8, y_pred (B, H, W, C) float32) -> float``, the mean over non-IGNORE
    pixels of ``-log(clip(p_true, 1e-7, 1 - 1e-7))``."""
    from seglib import losses

    rng = np.random.default_rng(7)
    for name, y_true, y_pred in _cases(rng):
        got = _number(cross_entropy(y_true.copy(), y_pred.copy()), f"the cross-entropy of {name}")
        want = losses.cross_entropy(y_true, y_pred)
        if _close(got, want):
            continue
        expect(np.isfinite(got), f"the cross-entropy of {name} is {got}: log(0) is -inf; clip the probabilities to "
                                 f"[{losses.PROBABILITY_EPSILON:g}, 1 - {losses.PROBABILITY_EPSILON:g}] before the log")
        for message, value in _ce_mistakes(y_true, y_pred).items():
            if _close(got, value):
                raise Wrong(f"the cross-entropy of {name} is {got:.6g}, expected {want:.6g}: {message}")
        expect_close(got, want, f"the cross-entropy of {name}", tolerance=1e-5)
    everything_ignored = np.full((1, 2, 2), _IGNORE, np.uint8)
    got = _number(cross_entropy(everything_ignored, np.full((1, 2, 2, 3), 1 / 3, np.float32)),
                  "the cross-entropy of a batch where every pixel is IGNORE")
    expect(got == 0.0, f"the cross-entropy of a batch where every pixel is IGNORE is {got}, expected 0.0: with no "
                       "pixel to average over, return 0.0")


def _dice_mistakes(y_true: np.ndarray, y_pred: np.ndarray, smooth: float) -> dict[str, float]:
    y_pred = y_pred.astype(np.float64)
    classes = y_pred.shape[-1]
    valid = (y_true != _IGNORE)[..., None]
    truth = (y_true[..., None] == np.arange(classes)) & valid
    masked = np.where(valid, y_pred, 0.0)

    def loss(prediction, axes=(0, 1, 2), s=smooth):
        dice = (2 * (prediction * truth).sum(axes) + s) / (prediction.sum(axes) + truth.sum(axes) + s)
        return float(1 - dice.mean())

    mistakes = {}
    if not valid.all():
        mistakes["the probabilities predicted on IGNORE pixels count in the sums; zero them out first"] = loss(y_pred)
    if len(y_true) > 1:
        mistakes["that is the mean of per-image dice ratios; every sum runs over the whole batch at once"] = \
            loss(masked, axes=(1, 2))
    mistakes["that is the dice score; the loss is 1 minus it"] = 1 - loss(masked)
    mistakes["the smoothing term s is missing (or not added to both the numerator and the denominator)"] = \
        loss(masked, s=0.0) if (truth.sum((0, 1, 2)) + masked.sum((0, 1, 2))).all() else np.nan
    numerator_only = 1 - float(((2 * (masked * truth).sum((0, 1, 2)) + smooth)
                                / (masked.sum((0, 1, 2)) + truth.sum((0, 1, 2)))).mean()) \
        if (truth.sum((0, 1, 2)) + masked.sum((0, 1, 2))).all() else np.nan
    mistakes["the smoothing term s must be added to the denominator too"] = numerator_only
    if smooth != 1.0:
        mistakes["that is the loss for smooth=1: use the smooth argument you were given"] = loss(masked, s=1.0)
    return mistakes


def check_dice_loss(dice_loss) -> None:
    """07.2: ``dice_loss(y_true (B, H, W) uint8, y_pred (B, H, W, C) float32, smooth=1.0) -> float``, soft dice loss
    with sums over the whole batch and its non-IGNORE pixels."""
    from seglib import losses

    rng = np.random.default_rng(72)
    cases = _cases(rng)
    truth = np.zeros((1, 1, 100), np.uint8)
    truth[0, 0, 0] = 1
    misses = (np.zeros_like(truth)[..., None] == np.arange(2)).astype(np.float32)
    cases.append(("the chapter's pole: one pixel of class 1 in 99 of class 0, missed", truth, misses))
    cases.append(("a perfect prediction", truth, (truth[..., None] == np.arange(2)).astype(np.float32)))
    for name, y_true, y_pred in cases:
        for smooth in (1.0, 0.5):
            got = _number(dice_loss(y_true.copy(), y_pred.copy(), smooth=smooth), f"the dice loss of {name}")
            want = losses.dice_loss(y_true, y_pred, smooth=smooth)
            if _close(got, want):
                continue
            for message, value in _dice_mistakes(y_true, y_pred, smooth).items():
                if _close(got, value):
                    raise Wrong(f"the dice loss of {name} (smooth={smooth:g}) is {got:.6g}, expected {want:.6g}: "
                                f"{message}")
            expect_close(got, want, f"the dice loss of {name} (smooth={smooth:g})", tolerance=1e-5)


CHECKS = {"07.1": check_cross_entropy, "07.2": check_dice_loss}
