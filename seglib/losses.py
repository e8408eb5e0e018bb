"""Segmentation losses that skip :data:`~seglib.labels.IGNORE` pixels: cross-entropy, soft dice, and their sum.

The maths lives twice, deliberately:

* a **numpy core** of pure functions (:func:`cross_entropy`, :func:`dice_loss`, :func:`binary_dice_loss`,
  :func:`binary_cross_entropy`, :func:`binary_combined_loss`, :func:`combined_loss`, :func:`binary_dice_score`) -
  the readable reference, computed in float64;
* **Keras losses** (:class:`CrossEntropyLoss`, :class:`DiceLoss`, :class:`BinaryDiceLoss`,
  :class:`BinaryCombinedLoss`, :class:`CombinedLoss`)
  that compute the same numbers with ``keras.ops`` for ``model.compile(loss=...)``; the tests check that both agree.

Inputs, as the models and pipelines of this project produce them:

* ``y_true: (B, H, W)`` integer category ids 0..C-1, or IGNORE (255) where augmentation exposed a pixel that has no
  target (Keras hands targets to a loss as float32; they are cast back to integers);
* ``y_pred: (B, H, W, C)`` float32 softmax probabilities (binary losses: ``(B, H, W, 1)`` or ``(B, H, W)`` sigmoid
  probabilities).

Every loss reduces a whole batch to one number, and an IGNORE pixel takes part in no sum and no count: changing the
prediction there changes neither the loss nor any gradient. Cross-entropy is the mean over the batch's non-ignored
pixels, which is exactly what ``keras.losses.SparseCategoricalCrossentropy(ignore_class=255)`` computes (tested).
Dice sums over the batch and all pixels per class before dividing.

The Keras classes are registered under the package name ``seglib``: a model saved with one of them loads with
``keras.models.load_model`` once ``seglib.losses`` has been imported. They refuse ``sample_weight`` (a dice is not
a sum of per-pixel terms that weights could scale).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from seglib import labels

__all__ = [
    "PROBABILITY_EPSILON", "DICE_SMOOTH",
    "cross_entropy", "dice_loss", "binary_dice_loss", "binary_cross_entropy", "binary_combined_loss", "combined_loss",
    "binary_dice_score", "CrossEntropyLoss", "DiceLoss", "BinaryDiceLoss", "BinaryCombinedLoss", "CombinedLoss",
]

#: Probabilities are clipped to ``[PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON]`` before the log, so a confident
#: wrong pixel costs at most ``-log(1e-7) = 16.1``. The same value as ``keras.config.epsilon()``, which Keras's own
#: cross-entropy uses.
PROBABILITY_EPSILON: float = 1e-7
#: Default smoothing ``s`` of the dice ratio ``(2 * intersection + s) / (prediction + truth + s)``. With s = 1 a
#: class absent from both target and prediction scores a perfect 1, and a class absent from the target whose
#: predicted probabilities sum to P scores 1 / (1 + P): a smooth penalty that fades as P shrinks. Against the
#: thousands of pixels a present class covers, adding 1 changes its dice by well under a percent.
DICE_SMOOTH: float = 1.0
#: Softmax/sigmoid outputs in float32 can exceed 1 by a rounding error; the numpy core tolerates this much.
_PROBABILITY_TOLERANCE = 1e-6

# ---------------------------------------------------------------------------------------------------------
# Validation (numpy)
# ---------------------------------------------------------------------------------------------------------


def _check_probabilities(y_pred: np.ndarray) -> np.ndarray:
    if not np.issubdtype(y_pred.dtype, np.floating):
        raise ValueError(f"y_pred must hold float probabilities, got dtype {y_pred.dtype}")
    if y_pred.size and (y_pred.min() < 0 or y_pred.max() > 1 + _PROBABILITY_TOLERANCE):
        raise ValueError(f"y_pred must hold probabilities in [0, 1], got values from {y_pred.min()} to "
                         f"{y_pred.max()}: apply softmax (or sigmoid) to logits first")
    return y_pred.astype(np.float64)


def _check_target_values(y_true: np.ndarray, num_classes: int) -> None:
    bad = (y_true != labels.IGNORE) & ((y_true < 0) | (y_true >= num_classes))
    if bad.any():
        raise ValueError(f"y_true holds target values outside 0..{num_classes - 1} (and not IGNORE={labels.IGNORE}): "
                         f"{np.unique(y_true[bad])[:10].tolist()}")


def _check_multiclass(y_true: np.ndarray, y_pred: np.ndarray,
                      num_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``y_true (B, H, W)`` integers and ``y_pred (B, H, W, C)`` probabilities; return int64 and float64."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_pred.ndim != 4:
        raise ValueError(f"y_pred must be (B, H, W, C) probabilities, got shape {y_pred.shape}")
    if y_true.shape != y_pred.shape[:-1]:
        raise ValueError(f"y_true must have shape (B, H, W) = {y_pred.shape[:-1]} to match y_pred {y_pred.shape}, "
                         f"got {y_true.shape}")
    if not np.issubdtype(y_true.dtype, np.integer):
        raise ValueError(f"y_true must hold integer category ids, got dtype {y_true.dtype}")
    classes = y_pred.shape[-1]
    if num_classes is not None and num_classes != classes:
        raise ValueError(f"num_classes={num_classes} does not match y_pred's last axis ({classes} classes)")
    if classes < 2:
        raise ValueError(f"y_pred's last axis must hold at least 2 classes, got {classes}; for one category "
                         "against the rest use the binary dice loss")
    _check_target_values(y_true, classes)
    return y_true.astype(np.int64), _check_probabilities(y_pred)


def _check_binary(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``y_true (B, H, W)`` in {0, 1, IGNORE} and ``y_pred (B, H, W[, 1])``; return int64 and float64."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_pred.ndim == 4 and y_pred.shape[-1] == 1:
        y_pred = y_pred[..., 0]
    if y_pred.ndim != 3:
        raise ValueError(f"y_pred must be (B, H, W, 1) or (B, H, W) probabilities, got shape {y_pred.shape}")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true must have shape (B, H, W) = {y_pred.shape} to match y_pred, got {y_true.shape}")
    if not (np.issubdtype(y_true.dtype, np.integer) or y_true.dtype == bool):
        raise ValueError(f"y_true must hold integers 0/1 (or IGNORE), got dtype {y_true.dtype}")
    _check_target_values(y_true, 2)
    return y_true.astype(np.int64), _check_probabilities(y_pred)


def _check_smooth(smooth: float) -> float:
    if not (math.isfinite(smooth) and smooth > 0):
        raise ValueError(f"smooth must be a finite number > 0 (it keeps 0/0 out of the dice), got {smooth}")
    return float(smooth)


def _check_dice_weight(dice_weight: float) -> float:
    if not (math.isfinite(dice_weight) and dice_weight >= 0):
        raise ValueError(f"dice_weight must be a finite number >= 0, got {dice_weight}")
    return float(dice_weight)

# ---------------------------------------------------------------------------------------------------------
# The numpy core
# ---------------------------------------------------------------------------------------------------------


def cross_entropy(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int | None = None) -> float:
    """Sparse categorical cross-entropy, averaged over the pixels that have a target.

    ``y_true: (B, H, W)`` integer category ids 0..C-1 or IGNORE; ``y_pred: (B, H, W, C)`` float probabilities.
    Returns ``mean over non-IGNORE pixels of -log(clip(y_pred[b, h, w, y_true[b, h, w]]))``, the probability clipped
    to ``[PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON]``; 0.0 when every pixel is IGNORE.

    This is the value of ``keras.losses.SparseCategoricalCrossentropy(ignore_class=IGNORE)``: Keras too divides by
    the number of non-ignored pixels of the whole batch, not by all pixels (it renormalises the clipped
    probabilities, which differs from this by under ``C * 1e-7`` for a softmax output).
    ``num_classes``, when given, must equal C.
    """
    y_true, y_pred = _check_multiclass(y_true, y_pred, num_classes)
    valid = y_true != labels.IGNORE
    target_probability = np.take_along_axis(y_pred, np.where(valid, y_true, 0)[..., np.newaxis], axis=-1)[..., 0]
    per_pixel = -np.log(np.clip(target_probability[valid], PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON))
    return float(per_pixel.mean()) if per_pixel.size else 0.0


def _dice(intersection: np.ndarray, predicted: np.ndarray, true: np.ndarray, smooth: float) -> np.ndarray:
    return (2 * intersection + smooth) / (predicted + true + smooth)


def dice_loss(y_true: np.ndarray, y_pred: np.ndarray, smooth: float = DICE_SMOOTH,
              num_classes: int | None = None) -> float:
    """Soft multi-class dice loss: ``1 - mean over classes c of (2 * I_c + s) / (P_c + G_c + s)``.

    ``y_true: (B, H, W)`` integer category ids 0..C-1 or IGNORE; ``y_pred: (B, H, W, C)`` float probabilities.
    With ``g`` the one-hot target, ``I_c = sum p_c * g_c``, ``P_c = sum p_c``, ``G_c = sum g_c``; every sum runs
    over the **whole batch** and all its non-IGNORE pixels at once, so a class small in one image still has the
    pixels of the others. (The per-image alternative sums over ``H, W`` only and averages the B * C ratios; it is
    noisier, because an image without a class turns that class's ratio into 0 or 1 on a handful of pixels.)

    ``s = smooth`` (> 0, default :data:`DICE_SMOOTH`): a class absent from both target and prediction scores 1, a
    class absent from the target scores ``s / (P_c + s)``. Every class counts equally in the mean, whatever its
    pixel count: that is what makes dice favour small classes next to cross-entropy.
    Returns a float in [0, 1]; 0.0 for a prediction equal to the one-hot target.
    """
    y_true, y_pred = _check_multiclass(y_true, y_pred, num_classes)
    smooth = _check_smooth(smooth)
    valid = (y_true != labels.IGNORE)[..., np.newaxis]
    truth = (y_true[..., np.newaxis] == np.arange(y_pred.shape[-1])) & valid
    prediction = np.where(valid, y_pred, 0.0)
    axes = (0, 1, 2)
    dice = _dice((prediction * truth).sum(axes), prediction.sum(axes), truth.sum(axes), smooth)
    return float(1 - dice.mean())


def binary_dice_loss(y_true: np.ndarray, y_pred: np.ndarray, smooth: float = DICE_SMOOTH) -> float:
    """Soft dice loss of one category against the rest: ``1 - (2 * sum p * g + s) / (sum p + sum g + s)``.

    ``y_true: (B, H, W)`` integers 0/1 (or bool), IGNORE allowed; ``y_pred: (B, H, W, 1)`` or ``(B, H, W)`` float
    sigmoid probabilities of the category. Sums run over the whole batch and its non-IGNORE pixels; ``s = smooth``
    as in :func:`dice_loss` (a batch without the category, predicted as empty, costs 0).
    """
    y_true, y_pred = _check_binary(y_true, y_pred)
    smooth = _check_smooth(smooth)
    valid = y_true != labels.IGNORE
    truth, prediction = (y_true == 1) & valid, np.where(valid, y_pred, 0.0)
    return float(1 - _dice((prediction * truth).sum(), prediction.sum(), truth.sum(), smooth))


def binary_cross_entropy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Binary cross-entropy ``-[g log p + (1 - g) log(1 - p)]`` averaged over the non-IGNORE pixels (shapes as in
    :func:`binary_dice_loss`; ``p`` clipped to ``[PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON]``); 0.0 when every
    pixel is IGNORE."""
    y_true, y_pred = _check_binary(y_true, y_pred)
    valid = y_true != labels.IGNORE
    truth, p = (y_true[valid] == 1), np.clip(y_pred[valid], PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON)
    per_pixel = -np.where(truth, np.log(p), np.log(1 - p))
    return float(per_pixel.mean()) if per_pixel.size else 0.0


def binary_combined_loss(y_true: np.ndarray, y_pred: np.ndarray, dice_weight: float = 1.0,
                         smooth: float = DICE_SMOOTH) -> float:
    """``binary_cross_entropy + dice_weight * binary_dice_loss``."""
    dice_weight = _check_dice_weight(dice_weight)
    return binary_cross_entropy(y_true, y_pred) + dice_weight * binary_dice_loss(y_true, y_pred, smooth)


def combined_loss(y_true: np.ndarray, y_pred: np.ndarray, dice_weight: float = 1.0, smooth: float = DICE_SMOOTH,
                  num_classes: int | None = None) -> float:
    """``cross_entropy + dice_weight * dice_loss`` (shapes as in :func:`cross_entropy`).

    ``dice_weight=1`` is the common "CE + dice", ``dice_weight=3`` a "CE + 3 * dice" that weights the overlap more.
    """
    dice_weight = _check_dice_weight(dice_weight)
    return (cross_entropy(y_true, y_pred, num_classes)
            + dice_weight * dice_loss(y_true, y_pred, smooth, num_classes))


def binary_dice_score(y_true: np.ndarray, y_pred: np.ndarray, empty_value: float = 1.0) -> float:
    """Dice score of two hard masks, ``2 |T & P| / (|T| + |P|)``, for evaluating one category against the rest.

    ``y_true``: integers 0/1 (or bool) of any shape, IGNORE allowed (those pixels are left out of every count);
    ``y_pred``: a 0/1 or bool mask of the same shape (threshold probabilities first, e.g. ``probabilities > 0.5``).
    Returns a float in [0, 1]; ``empty_value`` (default 1.0: nothing to find, nothing found) when both masks are
    empty on the non-IGNORE pixels. No smoothing: this is the score, not a training loss.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {y_true.shape} and {y_pred.shape}")
    if not (np.issubdtype(y_true.dtype, np.integer) or y_true.dtype == bool):
        raise ValueError(f"y_true must hold integers 0/1 (or IGNORE), got dtype {y_true.dtype}")
    _check_target_values(y_true, 2)
    if not np.isin(y_pred, (0, 1)).all():
        raise ValueError("y_pred must be a hard 0/1 mask; threshold probabilities first (e.g. y_pred > 0.5)")
    valid = y_true != labels.IGNORE
    truth, prediction = (y_true == 1) & valid, (y_pred == 1) & valid
    total = int(truth.sum() + prediction.sum())
    return float(2 * (truth & prediction).sum() / total) if total else float(empty_value)

# ---------------------------------------------------------------------------------------------------------
# The same computations in keras.ops (on validated tensors)
# ---------------------------------------------------------------------------------------------------------


def _ops_cross_entropy(target, valid, y_pred):
    """``target (B, H, W)`` int32 with 0 at IGNORE pixels, ``valid (B, H, W)`` bool, ``y_pred (B, H, W, C)``."""
    probability = ops.take_along_axis(y_pred, ops.expand_dims(target, -1), axis=-1)[..., 0]
    per_pixel = -ops.log(ops.clip(probability, PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON))
    per_pixel = ops.where(valid, per_pixel, 0.0)  # where, not a product: a NaN at an ignored pixel stays out
    return ops.divide_no_nan(ops.sum(per_pixel), ops.sum(ops.cast(valid, y_pred.dtype)))


def _ops_dice(truth, prediction, smooth, axes):
    """``truth`` one-hot and ``prediction`` probabilities, both already zero at IGNORE pixels."""
    intersection = ops.sum(prediction * truth, axis=axes)
    dice = (2 * intersection + smooth) / (ops.sum(prediction, axis=axes) + ops.sum(truth, axis=axes) + smooth)
    return 1 - ops.mean(dice)


def _ops_multiclass_dice(target, valid, y_pred, smooth):
    truth = ops.one_hot(target, y_pred.shape[-1], dtype=y_pred.dtype) * ops.expand_dims(
        ops.cast(valid, y_pred.dtype), -1)
    prediction = ops.where(ops.expand_dims(valid, -1), y_pred, 0.0)
    return _ops_dice(truth, prediction, smooth, axes=(0, 1, 2))


def _static_shape_matches(actual: tuple, expected: tuple) -> bool:
    return len(actual) == len(expected) and all(a is None or e is None or a == e for a, e in zip(actual, expected))


def _target_values_ok(target, num_classes: int):
    """Check ``target`` (int32) for values outside 0..num_classes-1 other than IGNORE; returns ``(target, ok)``.

    Eagerly (on any backend), such a value raises ``ValueError``. Inside a TensorFlow ``tf.function``
    (``model.fit`` on the tensorflow backend) a run-time assertion, which every later op on ``target`` waits for,
    fails with an ``InvalidArgumentError`` carrying the same message. A compiled step that cannot assert (XLA,
    ``jit_compile=True``, and every ``fit`` on the jax backend) gets ``ok`` through :func:`_poison` instead: the
    loss turns NaN, so training stops visibly rather than learning from a wrong target.
    """
    ok = ops.all(ops.logical_or(ops.equal(target, labels.IGNORE),
                                ops.logical_and(target >= 0, target < num_classes)))
    message = f"y_true holds target values outside 0..{num_classes - 1} (and not IGNORE={labels.IGNORE})"
    if _is_concrete(target):
        if not bool(ok):
            bad = ops.convert_to_numpy(target)
            bad = bad[(bad != labels.IGNORE) & ((bad < 0) | (bad >= num_classes))]
            raise ValueError(f"{message}: {np.unique(bad)[:10].tolist()}")
        return target, ok
    if keras.backend.backend() != "tensorflow":
        return target, ok
    import tensorflow as tf

    with tf.control_dependencies([tf.debugging.Assert(ok, [message + "; smallest and largest values:",
                                                           ops.min(target), ops.max(target)])]):
        return tf.identity(target), ok


def _is_concrete(tensor) -> bool:
    """Whether ``tensor`` holds values now (eager), rather than standing for them in a graph being traced."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly()
    if backend == "jax":
        import jax

        return not isinstance(tensor, jax.core.Tracer)
    import torch  # the torch backend runs eagerly unless torch.compile traces the step

    return not torch.compiler.is_compiling()


def _poison(loss, ok):
    """``loss`` where the targets were valid, NaN otherwise (see :func:`_target_values_ok`)."""
    return ops.where(ok, loss, float("nan"))

# ---------------------------------------------------------------------------------------------------------
# Keras losses
# ---------------------------------------------------------------------------------------------------------


class _SegmentationLoss(keras.losses.Loss):
    """Shared by the Keras losses: one number per batch, IGNORE skipped, no ``sample_weight``."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name=name, reduction="sum_over_batch_size")

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(f"{type(self).__name__} does not take sample_weight (or class_weight): it reduces the "
                             "batch to one number itself")
        return super().__call__(y_true, y_pred)

    def get_config(self) -> dict:
        return {"name": self.name}


class _MulticlassLoss(_SegmentationLoss):
    """Checks ``y_true (B, H, W)`` against ``y_pred (B, H, W, C)`` and hands :meth:`compute` clean tensors."""

    def __init__(self, num_classes: int | None = None, name: str | None = None) -> None:
        super().__init__(name=name)
        if num_classes is not None and num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.num_classes = num_classes

    def call(self, y_true, y_pred):
        pred_shape, true_shape = tuple(y_pred.shape), tuple(y_true.shape)
        if len(pred_shape) != 4:
            raise ValueError(f"y_pred must be (B, H, W, C) probabilities, got shape {pred_shape}")
        if not _static_shape_matches(true_shape, pred_shape[:-1]):
            raise ValueError(f"y_true must have shape (B, H, W) = {pred_shape[:-1]} to match y_pred {pred_shape}, "
                             f"got {true_shape}")
        classes = pred_shape[-1]
        if classes is None or classes < 2:
            raise ValueError(f"y_pred's last axis must hold a known number >= 2 of classes, got {classes}")
        if self.num_classes is not None and self.num_classes != classes:
            raise ValueError(f"num_classes={self.num_classes} does not match y_pred's last axis ({classes} classes)")
        target, ok = _target_values_ok(ops.cast(y_true, "int32"), classes)
        valid = ops.not_equal(target, labels.IGNORE)
        return _poison(self.compute(ops.where(valid, target, 0), valid, y_pred), ok)

    def compute(self, target, valid, y_pred):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="seglib")
class CrossEntropyLoss(_MulticlassLoss):
    """Keras version of :func:`cross_entropy`: mean over non-IGNORE pixels of ``-log p[target]``.

    ``model.compile(loss=CrossEntropyLoss())`` for a model with ``(B, H, W, C)`` softmax outputs and
    ``(B, H, W)`` uint8 targets. Same value as ``keras.losses.SparseCategoricalCrossentropy(ignore_class=255)``.
    """

    def __init__(self, num_classes: int | None = None, name: str = "cross_entropy") -> None:
        super().__init__(num_classes=num_classes, name=name)

    def compute(self, target, valid, y_pred):
        return _ops_cross_entropy(target, valid, y_pred)


@keras.saving.register_keras_serializable(package="seglib")
class DiceLoss(_MulticlassLoss):
    """Keras version of :func:`dice_loss`: ``1 - mean_c (2 I_c + s) / (P_c + G_c + s)``, sums over the batch."""

    def __init__(self, smooth: float = DICE_SMOOTH, num_classes: int | None = None, name: str = "dice") -> None:
        super().__init__(num_classes=num_classes, name=name)
        self.smooth = _check_smooth(smooth)

    def compute(self, target, valid, y_pred):
        return _ops_multiclass_dice(target, valid, y_pred, self.smooth)

    def get_config(self) -> dict:
        return {**super().get_config(), "smooth": self.smooth}


@keras.saving.register_keras_serializable(package="seglib")
class CombinedLoss(_MulticlassLoss):
    """Keras version of :func:`combined_loss`: ``cross-entropy + dice_weight * dice``.

    ``CombinedLoss(dice_weight=1.0)`` is "CE + dice", ``CombinedLoss(dice_weight=3.0)`` is "CE + 3 * dice".
    """

    def __init__(self, dice_weight: float = 1.0, smooth: float = DICE_SMOOTH, num_classes: int | None = None,
                 name: str = "cross_entropy_dice") -> None:
        super().__init__(num_classes=num_classes, name=name)
        self.dice_weight = _check_dice_weight(dice_weight)
        self.smooth = _check_smooth(smooth)

    def compute(self, target, valid, y_pred):
        return (_ops_cross_entropy(target, valid, y_pred)
                + self.dice_weight * _ops_multiclass_dice(target, valid, y_pred, self.smooth))

    def get_config(self) -> dict:
        return {**super().get_config(), "dice_weight": self.dice_weight, "smooth": self.smooth}


@keras.saving.register_keras_serializable(package="seglib")
class BinaryDiceLoss(_SegmentationLoss):
    """Keras version of :func:`binary_dice_loss`: ``y_true (B, H, W)`` in {0, 1, IGNORE}, ``y_pred (B, H, W, 1)``
    (or ``(B, H, W)``) sigmoid probabilities; ``1 - (2 sum p g + s) / (sum p + sum g + s)`` over the batch."""

    def __init__(self, smooth: float = DICE_SMOOTH, name: str = "binary_dice") -> None:
        super().__init__(name=name)
        self.smooth = _check_smooth(smooth)

    def call(self, y_true, y_pred):
        truth, y_pred, valid, ok = _binary_inputs(y_true, y_pred)
        return _poison(_ops_dice(truth, ops.where(valid, y_pred, 0.0), self.smooth, axes=None), ok)

    def get_config(self) -> dict:
        return {**super().get_config(), "smooth": self.smooth}


def _binary_inputs(y_true, y_pred):
    """Validate binary ``y_true (B, H, W)`` and ``y_pred (B, H, W[, 1])``; return ``truth`` (float, 0 at IGNORE),
    ``y_pred (B, H, W)``, ``valid`` and the target check ``ok``."""
    pred_shape, true_shape = tuple(y_pred.shape), tuple(y_true.shape)
    if len(pred_shape) == 4 and pred_shape[-1] == 1:
        y_pred, pred_shape = y_pred[..., 0], pred_shape[:-1]
    if len(pred_shape) != 3:
        raise ValueError(f"y_pred must be (B, H, W, 1) or (B, H, W) probabilities, got shape {tuple(y_pred.shape)}")
    if not _static_shape_matches(true_shape, pred_shape):
        raise ValueError(f"y_true must have shape (B, H, W) = {pred_shape} to match y_pred, got {true_shape}")
    target, ok = _target_values_ok(ops.cast(y_true, "int32"), 2)
    valid = ops.not_equal(target, labels.IGNORE)
    truth = ops.cast(ops.logical_and(valid, ops.equal(target, 1)), y_pred.dtype)
    return truth, y_pred, valid, ok


@keras.saving.register_keras_serializable(package="seglib")
class BinaryCombinedLoss(_SegmentationLoss):
    """Keras version of :func:`binary_combined_loss`: binary cross-entropy + ``dice_weight`` * binary dice, both
    over the batch's non-IGNORE pixels. The cross-entropy term gives every pixel a gradient of its own, which keeps
    a small model from settling on "everything is the category" early in training, where dice alone can stall
    (chapter 12 shows it)."""

    def __init__(self, dice_weight: float = 1.0, smooth: float = DICE_SMOOTH,
                 name: str = "binary_cross_entropy_dice") -> None:
        super().__init__(name=name)
        self.dice_weight = _check_dice_weight(dice_weight)
        self.smooth = _check_smooth(smooth)

    def call(self, y_true, y_pred):
        truth, y_pred, valid, ok = _binary_inputs(y_true, y_pred)
        p = ops.clip(y_pred, PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON)
        per_pixel = ops.where(valid, -(truth * ops.log(p) + (1 - truth) * ops.log(1 - p)), 0.0)
        cross_entropy = ops.divide_no_nan(ops.sum(per_pixel), ops.sum(ops.cast(valid, y_pred.dtype)))
        dice = _ops_dice(truth, ops.where(valid, y_pred, 0.0), self.smooth, axes=None)
        return _poison(cross_entropy + self.dice_weight * dice, ok)

    def get_config(self) -> dict:
        return {**super().get_config(), "dice_weight": self.dice_weight, "smooth": self.smooth}
