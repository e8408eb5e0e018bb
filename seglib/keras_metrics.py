"""Streaming Keras metrics for ``model.compile(metrics=[...])``, on any Keras backend: :class:`MeanIoU` (8 categories,
IGNORE skipped) and :class:`BinaryDice` (one category against the rest).

They mirror the numpy core of :mod:`seglib.metrics` and are tested to agree with it (and :class:`MeanIoU` with
``keras.metrics.MeanIoU`` given class ids; :class:`BinaryDice` with :func:`seglib.losses.binary_dice_score`).
Import this module before loading a saved model that was compiled with them (it registers them with Keras).

Pitfall: ``keras.metrics.MeanIoU`` and probabilities
----------------------------------------------------
Keras's own ``keras.metrics.MeanIoU(num_classes=C)`` expects *class ids* for both ``y_true`` and ``y_pred``
(``sparse_y_pred=True`` is the default). A segmentation model outputs ``(B, H, W, C)`` probabilities; given
those, Keras does **not** take the argmax: it casts the probability tensor to its integer dtype (every
probability below 1 becomes class 0) and flattens it. With sparse labels ``(B, H, W)`` the flattened sizes
differ and it fails with a shape error; with one-hot labels ``(B, H, W, C)`` the sizes agree and it silently
returns a constant: every label entry is 0 or 1, every prediction 0, so the result is ``(C - 1) / (2 C)``
(7/16 for the 8 categories) for a perfect model and a useless one alike. Fixes: pass
``sparse_y_pred=False`` (Keras then takes the argmax over ``axis=-1``), argmax the predictions yourself, or
use :class:`MeanIoU` below, which takes probabilities and skips :data:`~seglib.labels.IGNORE`.
"""

from __future__ import annotations

import keras
from keras import ops

from seglib import labels, metrics

__all__ = ["MeanIoU", "BinaryDice"]


# ---------------------------------------------------------------------------------------------------------
# Keras: a streaming mean IoU for training
# ---------------------------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="seglib")
class MeanIoU(keras.metrics.Metric):
    """Streaming mean IoU for ``model.compile(metrics=[MeanIoU()])``: the Keras mirror of
    ``mean_iou(confusion_matrix(y_true, argmax(y_pred)))`` summed over all batches seen since ``reset_state()``.

    ``y_true: (B, H, W)`` integer category ids with IGNORE (a trailing axis of 1 is accepted);
    ``y_pred: (B, H, W, C)`` probabilities or logits, argmax'ed inside. Pixels whose ``y_true`` is not in
    ``0..C-1`` (IGNORE, and anything else: graph code cannot raise on values) are skipped. ``sample_weight``,
    if given, is a scalar, ``(B,)`` or ``(B, H, W)`` weight per pixel.

    ``result()`` is the mean over classes with a defined IoU (TP + FP + FN > 0), NaN before any pixel is
    counted; unlike ``keras.metrics.MeanIoU`` it adds no epsilon. The counts are float64, exact up to 2**53
    pixels (a float32 cell stops counting single pixels past 2**24 = 16.8 M, a few dozen full-size frames). JAX
    has no float64 unless ``jax_enable_x64`` is set: there the counts are float32 (:func:`_count_dtype`), and each
    batch's counts, added whole, are off by at most one pixel per batch past 2**24 (a relative error of 1e-7).
    Built from ``keras.ops``; the counting is a ``segment_sum`` into ``C * C`` bins rather than a ``bincount``,
    whose output size depends on the data and so cannot be compiled by XLA (``jit_compile``, the default on a
    GPU).
    """

    def __init__(self, num_classes: int = labels.NUM_CATEGORIES, ignore: int = labels.IGNORE,
                 name: str = "mean_iou", dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)
        metrics.check_num_classes(num_classes, ignore)
        self.num_classes, self.ignore = int(num_classes), int(ignore)
        self.count_dtype = _count_dtype()
        self.total = self.add_variable(shape=(self.num_classes, self.num_classes), initializer="zeros",
                                       dtype=self.count_dtype, name="confusion_matrix")

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
        if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
            y_true = ops.squeeze(y_true, axis=-1)
        if len(y_pred.shape) != len(y_true.shape) + 1 or y_pred.shape[-1] not in (None, self.num_classes):
            raise ValueError(f"{self.name}: y_pred must be y_true's shape plus a class axis of {self.num_classes} "
                             f"(e.g. (B, H, W) and (B, H, W, {self.num_classes})), got {y_true.shape} and "
                             f"{y_pred.shape}")
        true = ops.cast(y_true, "int32")
        pred = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        valid = ops.logical_and(true >= 0, true < self.num_classes)  # drops self.ignore (outside 0..C-1)
        weights = ops.cast(valid, self.count_dtype)
        if sample_weight is not None:
            sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), self.count_dtype)
            while len(sample_weight.shape) < len(weights.shape):
                sample_weight = ops.expand_dims(sample_weight, axis=-1)
            weights = weights * sample_weight
        index = ops.where(valid, true, 0) * self.num_classes + pred
        counts = ops.segment_sum(ops.reshape(weights, (-1,)), ops.reshape(index, (-1,)),
                                 num_segments=self.num_classes**2)  # a static size: XLA compiles it
        self.total.assign_add(ops.reshape(counts, (self.num_classes, self.num_classes)))

    def result(self):
        true_positives = ops.diagonal(self.total)
        denominator = ops.sum(self.total, axis=0) + ops.sum(self.total, axis=1) - true_positives
        defined = denominator > 0
        iou = ops.where(defined, true_positives / ops.where(defined, denominator, 1.0), 0.0)
        mean = ops.sum(iou) / ops.sum(ops.cast(defined, self.count_dtype))  # 0/0 = NaN when nothing is defined
        return ops.cast(mean, self.dtype)

    def reset_state(self) -> None:
        self.total.assign(ops.zeros((self.num_classes, self.num_classes), dtype=self.count_dtype))

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "ignore": self.ignore}


def _count_dtype() -> str:
    """float64 for the streaming metrics' counts, except on JAX without ``jax_enable_x64`` (float32 there)."""
    if keras.backend.backend() == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            return "float32"
    return "float64"


@keras.saving.register_keras_serializable(package="seglib")
class BinaryDice(keras.metrics.Metric):
    """Streaming dice score of one category against the rest, for a model with one sigmoid output.

    ``y_true: (B, H, W)`` 0/1 with IGNORE (a trailing axis of 1 is accepted); ``y_pred: (B, H, W, 1)`` or
    ``(B, H, W)`` probabilities, thresholded at ``threshold``. Sums ``|T & P|``, ``|T|`` and ``|P|`` over the
    non-IGNORE pixels of every batch since ``reset_state()``; ``result()`` is ``2 |T & P| / (|T| + |P|)`` over all
    of them, or ``empty_value`` when both are empty: :func:`seglib.losses.binary_dice_score` of the concatenated
    batches (tested).
    """

    def __init__(self, threshold: float = 0.5, empty_value: float = 1.0, ignore: int = labels.IGNORE,
                 name: str = "dice", dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must lie strictly between 0 and 1, got {threshold}")
        self.threshold, self.empty_value, self.ignore = float(threshold), float(empty_value), int(ignore)
        self.count_dtype = _count_dtype()
        self.counts = self.add_variable(shape=(3,), initializer="zeros", dtype=self.count_dtype, name="counts")

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        if sample_weight is not None:
            raise ValueError(f"{self.name}: sample_weight is not supported (a dice is not a sum of pixel terms)")
        y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
        if len(y_true.shape) == 4 and y_true.shape[-1] == 1:
            y_true = ops.squeeze(y_true, axis=-1)
        if len(y_pred.shape) == 4 and y_pred.shape[-1] == 1:
            y_pred = ops.squeeze(y_pred, axis=-1)
        if len(y_pred.shape) != 3 or len(y_true.shape) != 3:
            raise ValueError(f"{self.name}: y_true must be (B, H, W) and y_pred (B, H, W, 1) or (B, H, W); got "
                             f"{y_true.shape} and {y_pred.shape} (a {y_pred.shape[-1]}-class output needs MeanIoU)")
        true = ops.cast(y_true, "int32")
        valid = ops.not_equal(true, self.ignore)
        truth = ops.logical_and(valid, ops.equal(true, 1))
        predicted = ops.logical_and(valid, y_pred > self.threshold)
        count = lambda mask: ops.sum(ops.cast(mask, self.count_dtype))  # noqa: E731
        self.counts.assign_add(ops.stack([count(ops.logical_and(truth, predicted)), count(truth), count(predicted)]))

    def result(self):
        both, truth, predicted = self.counts[0], self.counts[1], self.counts[2]
        total = truth + predicted
        score = ops.where(total > 0, 2.0 * both / ops.maximum(total, 1.0), self.empty_value)
        return ops.cast(score, self.dtype)

    def reset_state(self) -> None:
        self.counts.assign(ops.zeros((3,), dtype=self.count_dtype))

    def get_config(self) -> dict:
        return {**super().get_config(), "threshold": self.threshold, "empty_value": self.empty_value,
                "ignore": self.ignore}
