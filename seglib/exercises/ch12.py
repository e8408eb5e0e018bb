"""Checks of chapter 12 (binary segmentation): the one-category target, and the dice score of two masks.

The answer keys are :func:`seglib.data.binary_target_numpy` (the numpy twin of the pipeline's ``binary_target``)
and :func:`seglib.losses.binary_dice_score` (the score of the chapter's tables).
"""

from __future__ import annotations

import numpy as np

from seglib import labels
from seglib.exercises import Wrong, expect, expect_array


def _reference_target(mask: np.ndarray, category: int) -> np.ndarray:
    from seglib import data

    return data.binary_target_numpy(mask, category)


def check_binary_target(binary_target) -> None:
    """12.1: ``binary_target(mask (H, W) uint8 category ids or IGNORE, category: int) -> (H, W) uint8`` 1 / 0 /
    IGNORE."""
    rng = np.random.default_rng(12)
    ignore = labels.IGNORE
    hand = np.array([[0, 1, 7, 7], [7, ignore, 2, 6], [ignore, 7, 3, 0]], np.uint8)
    noisy = rng.integers(0, labels.NUM_CATEGORIES, (64, 128)).astype(np.uint8)
    noisy[rng.random((64, 128)) < 0.1] = ignore
    cases = [("a 3x4 mask by hand, vehicle", hand, 7), ("a 3x4 mask by hand, flat", hand, 1),
             ("a mask without IGNORE, human", np.arange(8, dtype=np.uint8).reshape(2, 4), 6),
             ("a random 64x128 mask with IGNORE, vehicle", noisy, 7),
             ("a random 64x128 mask with IGNORE, void", noisy, 0)]
    for what, mask, category in cases:
        expected = _reference_target(mask, category)
        got = binary_target(mask.copy(), category)
        if isinstance(got, np.ndarray) and got.shape == expected.shape:
            at_ignore = mask == ignore
            wrong = np.argwhere(at_ignore & (got != ignore))
            if len(wrong):
                index = tuple(int(i) for i in wrong[0])
                raise Wrong(f"IGNORE handled wrongly in {what}: at {index} the mask is IGNORE ({ignore}) and your "
                            f"target is {got[index].item()!r}; IGNORE pixels must stay {ignore}, so that they count "
                            "for nothing in the loss and the score")
        expect_array(got, expected, f"the target of {what} (category {category})")


def _reference_dice(truth: np.ndarray, predicted: np.ndarray) -> float:
    from seglib import losses

    return losses.binary_dice_score(truth, predicted)


def _dice_hint(got: float, truth: np.ndarray, predicted: np.ndarray) -> str:
    valid = truth != labels.IGNORE
    t, p = (truth == 1) & valid, (predicted == 1) & valid
    both, union = int((t & p).sum()), int((t | p).sum())
    with_ignored = int((truth == 1).sum() + (predicted == 1).sum())
    if union and abs(got - both / union) < 1e-9:
        return ": that is the IoU |T ∩ P| / |T ∪ P|; dice is 2 |T ∩ P| / (|T| + |P|)"
    if with_ignored and abs(got - 2 * both / with_ignored) < 1e-9:
        return (": the predictions on IGNORE pixels were counted; leave IGNORE pixels out of both masks (predicted "
                "vehicle where the truth is IGNORE costs nothing)")
    return ""


def check_dice_score(dice_score) -> None:
    """12.2: ``dice_score(truth (H, W) uint8 0/1/IGNORE, predicted (H, W) uint8 0/1) -> float``, 1.0 when both masks
    are empty on the non-IGNORE pixels."""
    rng = np.random.default_rng(120)
    ignore = labels.IGNORE
    truth = np.array([[1, 1, 0], [0, ignore, 1]], np.uint8)
    predicted = np.array([[1, 0, 0], [1, 1, 1]], np.uint8)
    empty = np.zeros((4, 5), np.uint8)
    only_ignore = np.full((4, 5), ignore, np.uint8)
    random_truth = (rng.random((64, 128)) < 0.15).astype(np.uint8)
    random_truth[rng.random((64, 128)) < 0.05] = ignore
    random_prediction = (rng.random((64, 128)) < 0.2).astype(np.uint8)
    cases = [("a 2x3 pair by hand (one IGNORE pixel, predicted vehicle)", truth, predicted),
             ("a perfect prediction", random_truth, np.where(random_truth == 1, 1, 0).astype(np.uint8)),
             ("no vehicle, none predicted", empty, empty.copy()),
             ("no vehicle, some predicted", empty, np.eye(4, 5, dtype=np.uint8)),
             ("vehicle everywhere, none predicted", np.ones((4, 5), np.uint8), empty.copy()),
             ("only IGNORE in the truth, vehicle predicted", only_ignore, np.ones((4, 5), np.uint8)),
             ("a random 64x128 pair with IGNORE", random_truth, random_prediction)]
    for what, t, p in cases:
        expected = _reference_dice(t, p)
        got = dice_score(t.copy(), p.copy())
        try:
            value = float(got)
        except (TypeError, ValueError):
            raise Wrong(f"the dice of {what} should be a number, got {type(got).__name__}") from None
        if not np.isfinite(value) or abs(value - expected) > 1e-9:
            hint = _dice_hint(value, t, p) if np.isfinite(value) else ""
            valid = t != ignore
            if not hint and not ((t == 1) & valid).any() and not ((p == 1) & valid).any():
                hint = (": with nothing to find and nothing found on the non-IGNORE pixels the dice is 1.0 (the "
                        "prediction is perfect), not 0 or NaN")
            raise Wrong(f"the dice of {what} is {value:.6g}, expected {expected:.6g}{hint}")


CHECKS = {"12.1": check_binary_target, "12.2": check_dice_score}
