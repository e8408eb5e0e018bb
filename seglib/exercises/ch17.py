"""Checks of appendix 17 (Keras backends): a cross-entropy that skips IGNORE, written with ``keras.ops`` only.

The answer key is :func:`seglib.losses.cross_entropy`, the numpy reference of the Keras losses. Keras is imported
when a check runs, not with this module (listing the book's exercises must stay cheap).
"""

from __future__ import annotations

import numpy as np

from seglib import labels
from seglib.exercises import Wrong, expect


def _softmax(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    logits = rng.normal(0, 2, shape)
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return (exp / exp.sum(-1, keepdims=True)).astype(np.float32)


def _value(got, name: str) -> float:
    from keras import ops

    try:
        value = np.asarray(ops.convert_to_numpy(got))
    except Exception as error:  # not a tensor or a number
        raise Wrong(f"for {name} your function should return a scalar tensor, got {type(got).__name__} "
                    f"({error})") from None
    expect(value.shape == (), f"for {name} your function should return one number for the whole batch (a scalar "
                              f"tensor), got shape {value.shape}")
    return float(value)


def _ignore_hint(got: float, y_true: np.ndarray, y_pred: np.ndarray) -> str:
    from seglib import losses

    valid = y_true != labels.IGNORE
    if valid.all():
        return ""
    summed = losses.cross_entropy(y_true, y_pred) * valid.sum()
    if abs(got - summed / y_true.size) <= 1e-5 * max(1.0, abs(got)):
        return (": IGNORE pixels are left out of the sum but still counted in the mean: divide by the number of "
                "pixels that have a target")
    return ": IGNORE (255) pixels take part in no sum and no count"


def check_ops_cross_entropy(cross_entropy) -> None:
    """17.1: ``cross_entropy(y_true (B, H, W) int32, y_pred (B, H, W, C) float32) -> scalar tensor``: the mean of
    ``-log(clip(p[target]))`` over the non-IGNORE pixels, written with ``keras.ops`` (any backend)."""
    import keras

    from seglib import losses

    rng = np.random.default_rng(17)
    pair = np.array([[[[0.9, 0.1], [0.2, 0.8]]]], np.float32)
    cases = [
        ("two pixels by hand (targets 0 and 1, probabilities 0.9 and 0.8)", np.array([[[0, 1]]], np.int32), pair, ""),
        ("the same two pixels, the second one IGNORE (255)", np.array([[[0, 255]]], np.int32), pair, None),
        ("a pixel whose target has probability 0", np.array([[[1]]], np.int32),
         np.array([[[[1.0, 0.0]]]], np.float32),
         ": log(0) is -inf: clip the probability to [1e-7, 1 - 1e-7] (losses.PROBABILITY_EPSILON) before the log"),
        ("a batch that is all IGNORE", np.full((1, 2, 3), labels.IGNORE, np.int32), _softmax(rng, (1, 2, 3, 4)),
         ": with no pixel to average over, the loss is 0.0 (ops.divide_no_nan), not NaN"),
    ]
    y_true = rng.integers(0, labels.NUM_CATEGORIES, (2, 8, 12)).astype(np.int32)
    y_true[rng.random(y_true.shape) < 0.15] = labels.IGNORE
    cases.append(("a random (2, 8, 12, 8) batch with 15 % IGNORE pixels", y_true, _softmax(rng, (2, 8, 12, 8)), None))
    for index, (name, y_true, y_pred, hint) in enumerate(cases):
        try:
            got = _value(cross_entropy(y_true.copy(), y_pred.copy()), name)
        except (NotImplementedError, Wrong):
            raise
        except Exception as error:
            if index == 0:
                raise
            where = (": replace IGNORE targets by 0 before gathering (ops.where) and leave those pixels out of the "
                     "mean" if (y_true == labels.IGNORE).any() else "")
            raise Wrong(f"for {name} your function raised {type(error).__name__}: {' '.join(str(error).split())[:160]}"
                        f"{where}") from None
        expected = losses.cross_entropy(y_true, y_pred)
        if not abs(got - expected) <= 1e-5 * max(1.0, abs(expected)):  # NaN is wrong too
            hint = _ignore_hint(got, y_true, y_pred) if hint is None else hint
            raise Wrong(f"for {name} your loss is {got:.6g}, expected {expected:.6g}{hint}")
        if index == 0:
            _check_symbolic(cross_entropy, keras)


def _check_symbolic(cross_entropy, keras) -> None:
    """The function must build a graph from symbolic tensors, as Keras traces a training step on any backend."""
    y_true = keras.KerasTensor((2, 4, 6), dtype="int32")
    y_pred = keras.KerasTensor((2, 4, 6, labels.NUM_CATEGORIES), dtype="float32")
    try:
        got = cross_entropy(y_true, y_pred)
    except Exception as error:
        raise Wrong(f"your loss computes the right numbers on arrays, but fails on symbolic tensors, the way Keras "
                    f"traces a training step ({type(error).__name__}: {' '.join(str(error).split())[:120]}): use "
                    f"keras.ops for every step, not numpy") from None
    expect(isinstance(got, keras.KerasTensor) and tuple(got.shape) == (),
           f"on symbolic tensors your loss should give a scalar symbolic tensor, got {type(got).__name__} "
           f"{getattr(got, 'shape', '')}: use keras.ops for every step, not numpy or Python numbers")


CHECKS = {"17.1": check_ops_cross_entropy}
