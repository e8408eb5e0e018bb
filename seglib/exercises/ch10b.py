"""Checks of chapter 10b (modern architectures): DeepLabV3+'s atrous rates scaled to the feature map, and a model
trained on Cityscapes' 19 training ids read as the 8 categories.

The answer keys are :func:`seglib.modern.aspp_rates` and :func:`seglib.modern.train_id_probabilities_to_categories`
(whose table, :data:`seglib.labels.TRAIN_ID_TO_CATEGORY`, the tests compare with the official labels).
"""

from __future__ import annotations

import numpy as np

from seglib import labels, modern
from seglib.exercises import Wrong, expect


def check_aspp_rates(aspp_rates) -> None:
    """10b.1: ``aspp_rates(input_height: int) -> list[int]``, the paper's rates (6, 12, 18) on 33 x 33 features
    scaled to an input's stride-16 feature map, at least 1 and increasing."""
    for height in (528, 512, 256, 128, 64, 32, 1024, 96):
        got = aspp_rates(height)
        expected = modern.aspp_rates(height)
        expect(isinstance(got, (list, tuple)) and len(got) == 3,
               f"aspp_rates({height}) should return three rates, got {got!r}")
        got = [int(rate) for rate in got]
        if got != expected:
            hint = ""
            if height == 528 and got != [6, 12, 18]:
                hint = ": 528 pixels at stride 16 are the paper's 33 features, so its rates 6, 12, 18 must come back"
            elif min(got) < 1:
                hint = ": a dilation rate is at least 1 (1 is an ordinary convolution)"
            elif any(b <= a for a, b in zip(got, got[1:])):
                hint = ": when two scaled rates round to the same value, raise the later one to one more than the one before"
            raise Wrong(f"aspp_rates({height}) is {got}, expected {expected}{hint}")


def check_train_ids_to_categories(train_ids_to_categories) -> None:
    """10b.2: ``train_ids_to_categories(probabilities: (..., 19) float) -> (..., 8) float32``: each category's
    probability is the sum of its training ids' probabilities; void gets 0."""
    rng = np.random.default_rng(102)
    car = np.zeros(labels.NUM_TRAIN_IDS, np.float32)
    car[13] = 1.0  # train id 13 is car
    got = np.asarray(train_ids_to_categories(car))
    expect(got.shape == (labels.NUM_CATEGORIES,), f"one pixel's 19 probabilities should give 8, got shape {got.shape}")
    vehicle = labels.CATEGORY_NAMES.index("vehicle")
    if int(np.argmax(got)) != vehicle or got[vehicle] != 1:
        raise Wrong(f"all probability on train id 13 (car) should put 1 on 'vehicle' (category {vehicle}), got "
                    f"{np.round(got, 3).tolist()}")
    logits = rng.normal(size=(2, 5, 7, labels.NUM_TRAIN_IDS))
    probabilities = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
    got = np.asarray(train_ids_to_categories(probabilities))
    expected = modern.train_id_probabilities_to_categories(probabilities)
    expect(got.shape == expected.shape, f"(2, 5, 7, 19) probabilities should give shape {expected.shape}, got {got.shape}")
    if np.any(got[..., 0] != 0):
        raise Wrong("void (category 0) has no training id: its probability must be 0")
    if not np.allclose(got.sum(-1), 1, atol=1e-5):
        raise Wrong("the 8 category probabilities of a pixel should sum to 1, as its 19 training-id probabilities do")
    where = np.argwhere(~np.isclose(got, expected, atol=1e-6))
    if len(where):
        index = tuple(where[0])
        raise Wrong(f"at {index} got {got[index]:.4f}, expected {expected[index]:.4f} "
                    f"(category {labels.CATEGORY_NAMES[index[-1]]!r}): sum the training ids of each category "
                    "(labels.TRAIN_ID_TO_CATEGORY)")


CHECKS = {"10b.1": check_aspp_rates, "10b.2": check_train_ids_to_categories}
