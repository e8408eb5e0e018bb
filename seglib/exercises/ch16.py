"""Checks of appendix 16 (the CPU budget): the epochs that fit a budget, and the verdict of two sets of seeds."""

from __future__ import annotations

import math
import numbers

import numpy as np

from seglib import results
from seglib.exercises import Wrong, expect

# ---------------------------------------------------------------------------------------------------------
# 16.1 Epochs that fit a budget
# ---------------------------------------------------------------------------------------------------------


def steps_per_epoch(frames: int, batch_size: int) -> int:
    """Steps of one epoch: training keeps the last, partial batch (``seglib.data.SegmentationSequence.__len__``, and
    ``tf_dataset(..., drop_remainder=False)`` as :func:`seglib.train` trains)."""
    return math.ceil(frames / batch_size)


def epochs_in_budget(budget_seconds: float, frames: int, batch_size: int, steps_per_second: float) -> int:
    """The answer key: whole epochs of ``steps_per_epoch`` steps in ``budget_seconds``."""
    return math.floor(budget_seconds * steps_per_second / steps_per_epoch(frames, batch_size))


def check_epochs(epochs_that_fit) -> None:
    """16.1: ``epochs_that_fit(budget_seconds, frames, batch_size, steps_per_second) -> int``."""
    rng = np.random.default_rng(16)
    cases = [("the ci profile: 60 s, 160 frames, batch 4, 7.91 steps/s", 60.0, 160, 4, 7.91),
             ("205 s, 161 frames, batch 4, 8 steps/s (a last batch of 1 frame)", 205.0, 161, 4, 8.0),
             ("50 s, 160 frames, batch 4, 8 steps/s (exactly 10 epochs)", 50.0, 160, 4, 8.0),
             ("3 s, 160 frames, batch 4, 7.91 steps/s (not one epoch)", 3.0, 160, 4, 7.91),
             ("10 s, 3 frames, batch 4, 2 steps/s (one batch smaller than batch_size)", 10.0, 3, 4, 2.0)]
    random = zip(rng.uniform(30, 900, 6), rng.integers(20, 3000, 6), rng.integers(1, 33, 6), rng.uniform(0.5, 20, 6))
    for budget, frames, batch, rate in random:
        cases.append((f"{budget:.1f} s, {frames} frames, batch {batch}, {rate:.3f} steps/s", float(budget),
                      int(frames), int(batch), float(rate)))
    for name, budget, frames, batch, rate in cases:
        got = epochs_that_fit(budget, frames, batch, rate)
        expect(isinstance(got, numbers.Integral) and not isinstance(got, bool),
               f"for {name} your function should return an int (a number of whole epochs), got "
               f"{type(got).__name__} {got!r}")
        expected = epochs_in_budget(budget, frames, batch, rate)
        if int(got) == expected:
            continue
        available = budget * rate
        hint = ""
        if int(got) == math.ceil(available / steps_per_epoch(frames, batch)):
            hint = ": only whole epochs fit in the budget, so round down"
        elif int(got) in (math.floor(available / (frames / batch)), math.floor(available / (frames // batch or 1))):
            hint = (f": an epoch is ceil({frames} / {batch}) = {steps_per_epoch(frames, batch)} steps, since training "
                    "keeps the last, partial batch")
        raise Wrong(f"for {name} your function says {int(got)} epochs, expected {expected}{hint}")


# ---------------------------------------------------------------------------------------------------------
# 16.2 Ahead, behind or within the spread
# ---------------------------------------------------------------------------------------------------------

VERDICTS = ("ahead by more than the spread", "behind by more than the spread", "within the spread")


def check_verdict(verdict) -> None:
    """16.2: ``verdict(first, second, higher_is_better=True) -> str``: one of :data:`VERDICTS` for two lists of
    two or more values (one per seed), as :func:`seglib.results.compare` says it."""
    rng = np.random.default_rng(16)
    cases = [
        ("the reference's best mean IoU per seed against the ci profile's", [0.662, 0.676, 0.688], [0.620, 0.625],
         True, ""),
        ("the ci profile's against the reference's", [0.620, 0.625], [0.662, 0.676, 0.688], True, ""),
        ("overlapping ranges [0.60, 0.65] and [0.62, 0.70]", [0.60, 0.65], [0.62, 0.70], True, ""),
        ("ranges that touch: [0.60, 0.62] and [0.62, 0.64]", [0.60, 0.62], [0.62, 0.64], True,
         ": the ranges share 0.62, so they overlap; 'behind' needs every seed of the first worse than every seed "
         "of the second"),
        ("different means but overlapping ranges: [0.50, 0.70] and [0.55, 0.58]", [0.50, 0.70], [0.55, 0.58], True,
         ": compare the ranges (lowest and highest of each), not the means"),
        ("seconds, where lower is better: [1.0, 1.2] against [2.0, 2.5]", [1.0, 1.2], [2.0, 2.5], False,
         ": with higher_is_better=False (seconds, errors) the lower values are the better ones"),
        ("seconds, where lower is better: [3.1, 3.3, 3.2] against [2.0, 2.5]", [3.1, 3.3, 3.2], [2.0, 2.5], False,
         ": with higher_is_better=False (seconds, errors) the lower values are the better ones"),
    ]
    for index in range(8):
        first = rng.normal(0.6, 0.03, rng.integers(2, 5)).round(3).tolist()
        second = rng.normal(0.6 + 0.02 * (index - 4), 0.03, rng.integers(2, 5)).round(3).tolist()
        cases.append((f"{first} against {second}", first, second, bool(index % 2), ""))
    for name, first, second, higher_is_better, hint in cases:
        got = verdict(list(first), list(second), higher_is_better=higher_is_better)
        expect(isinstance(got, str) and got in VERDICTS,
               f"for {name} your function should return one of {', '.join(repr(v) for v in VERDICTS)}, got {got!r}")
        expected = results.compare(first, second, higher_is_better)
        expect(got == expected, f"for {name} (higher_is_better={higher_is_better}) your verdict is {got!r}, "
                                f"expected {expected!r}{hint}")


CHECKS = {"16.1": check_epochs, "16.2": check_verdict}
