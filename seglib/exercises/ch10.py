"""Checks of chapter 10 (comparison): the words that state an outcome over seeds, and the parameters of FCN-8's head.

The answer keys are :func:`seglib.results.compare` (the sentences of the chapter come from it) and the layers of
:func:`seglib.models.fcn8_vgg16`, built at tiny sizes (no weights downloaded, nothing trained).
"""

from __future__ import annotations

import functools

import numpy as np

from seglib import results
from seglib.exercises import Wrong, expect

#: The words :func:`seglib.results.compare` chooses from (without a fixed baseline on either side).
VERDICTS = ("ahead by more than the spread", "behind by more than the spread", "within the spread",
            "ahead on one seed", "behind on one seed", "level on one seed")


def _verdict_hint(got: str, expected: str, higher_is_better: bool) -> str:
    if expected == "within the spread":
        return (": the ranges (lowest to highest seed) overlap, so the seeds do not separate the two, whatever "
                "the means say")
    if expected.endswith("on one seed") and got.endswith("by more than the spread"):
        return ": a side with one seed has no spread to compare; say which mean is better 'on one seed'"
    if got.split()[0] != expected.split()[0] and got.split()[0] in ("ahead", "behind") and not higher_is_better:
        return ": with higher_is_better=False (milliseconds, a loss) the lower figure is the better one"
    if expected.endswith("by more than the spread"):
        return (": every seed of one side is better than every seed of the other (compare the lowest of one "
                "with the highest of the other)")
    return ""


def check_verdict(verdict) -> None:
    """10.1: ``verdict(first: list[float], second: list[float], higher_is_better: bool = True) -> str``, the words
    of :func:`seglib.results.compare`."""
    rng = np.random.default_rng(10)
    cases = [([0.632, 0.617, 0.644], [0.571, 0.563, 0.577], True),  # the reference run: U-Net against FCN-8
             ([0.571, 0.563, 0.577], [0.632, 0.617, 0.644], True),
             ([0.575, 0.583], [0.521], True),  # the ci run: one FCN-8 seed
             ([0.486], [0.575, 0.583], True),
             ([0.60, 0.64], [0.58, 0.62], True),  # overlapping ranges, different means
             ([0.60, 0.64], [0.55, 0.60], True),  # touching: the lowest of one equals the highest of the other
             ([6.3, 5.6, 6.8], [11.5, 10.3, 12.9], False),  # milliseconds: lower is better
             ([16.4], [13.2, 20.3], False),
             ([0.5], [0.5], True)]
    for _ in range(6):
        first = np.round(rng.uniform(0.4, 0.7, int(rng.integers(1, 4))), 3).tolist()
        second = np.round(rng.uniform(0.4, 0.7, int(rng.integers(2, 4))), 3).tolist()
        cases.append((first, second, bool(rng.integers(0, 2))))
    for first, second, higher in cases:
        got = verdict(list(first), list(second), higher_is_better=higher)
        expected = results.compare(first, second, higher_is_better=higher)
        call = f"verdict({first}, {second}, higher_is_better={higher})"
        expect(isinstance(got, str), f"{call} should return a string, got {type(got).__name__}")
        expect(got in VERDICTS, f"{call} returned {got!r}, which is not one of the verdicts: "
                                + ", ".join(repr(v) for v in VERDICTS))
        if got != expected:
            raise Wrong(f"{call} is {got!r}, expected {expected!r}" + _verdict_hint(got, expected, higher))


@functools.lru_cache(maxsize=None)
def _fcn8_head(width: float, head_filters: int, num_classes: int) -> tuple[int, int]:
    """``(channels of pool5, parameters of fc6 + fc7 + score_fr)`` of seglib's FCN-8 at ``width``."""
    from seglib import models

    model = models.fcn8_vgg16((32, 32, 3), num_classes=num_classes, weights=None, head_filters=head_filters,
                              width=width)
    channels = int(model.get_layer("block5_pool").output.shape[-1])
    return channels, sum(model.get_layer(name).count_params() for name in ("fc6", "fc7", "score_fr"))


#: ``(channels, head_filters, num_classes, parameters)`` by hand (fc6 7*7*c*h + h, fc7 h*h + h, score_fr h*n + n):
#: the paper's head on the full VGG16 for the 21 classes of PASCAL VOC, and the ``ci`` profile's FCN-8 (width 0.25:
#: 128 channels, a head 128 wide); tests/test_exercise_checks_c.py checks the second against models.fcn8_vgg16.
PAPER_HEAD = (512, 4096, 21, 119_631_893)
CI_HEAD = (128, 128, 8, 820_488)


def _head_hint(got: int, expected: int, channels: int, head: int, classes: int) -> str:
    difference = expected - got
    if difference == 2 * head + classes:
        return ": the biases are missing (one per filter of each convolution)"
    if difference == head * classes + classes:
        return ": score_fr, the 1x1 convolution to the class scores, is missing"
    if difference == 40 * channels * head:
        return ": fc6 has a 7x7 kernel, not 3x3"
    if difference == head * head + head:
        return ": fc7, the 1x1 convolution from head_filters to head_filters, is missing"
    return ""


def check_head_parameters(head_parameters) -> None:
    """10.2: ``head_parameters(channels: int, head_filters: int, num_classes: int) -> int``: fc6 + fc7 + score_fr."""
    channels, count = _fcn8_head(0.0625, 24, 3)  # one tiny FCN-8 (32 channels at pool5): building costs ~0.5 s
    cases = [PAPER_HEAD, CI_HEAD, (channels, 24, 3, count)]
    for channels, head, classes, expected in cases:
        got = head_parameters(channels, head, classes)
        call = f"head_parameters({channels}, {head}, {classes})"
        expect(isinstance(got, (int, np.integer)) and not isinstance(got, bool),
               f"{call} should return an integer, got {type(got).__name__} {got!r:.40}")
        if got != expected:
            raise Wrong(f"{call} is {int(got):,}, expected {expected:,} (off by {expected - int(got):,})"
                        + _head_hint(int(got), expected, channels, head, classes))


CHECKS = {"10.1": check_verdict, "10.2": check_head_parameters}
