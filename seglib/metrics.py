"""Segmentation metrics: confusion matrices, IoU, Dice, pixel accuracy, and the official Cityscapes category score.

Everything is computed from a **confusion matrix** ``(C, C)``: rows are ground truth, columns are prediction,
entry ``[i, j]`` counts the pixels of class ``i`` predicted as class ``j``. For a class ``c``::

    TP = matrix[c, c]    FP = column sum - TP    FN = row sum - TP
    IoU = TP / (TP + FP + FN)          Dice = 2 TP / (2 TP + FP + FN)

The module is layered like the rest of seglib:

1. numpy functions (pure, tested by hand): :func:`confusion_matrix`, :class:`ConfusionMatrix` (sums one over a
   dataset), :func:`iou_per_class`, :func:`dice_per_class`, :func:`pixel_accuracy`, :func:`mean_iou`;
2. the official Cityscapes "IoU category" score, exactly as ``cityscapesscripts`` computes it (tested against
   the official evaluator on PNG files): :func:`cityscapes_category_iou`, :class:`CategoryIoU`;
3. streaming Keras metrics for ``model.compile(metrics=[...])``: :class:`MeanIoU`, tested to agree with (1)
   and with ``keras.metrics.MeanIoU``, and :class:`BinaryDice` for one category against the rest, tested to agree
   with :func:`seglib.losses.binary_dice_score`.

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

Every class count, id and name comes from :mod:`seglib.labels`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import keras
import numpy as np
from keras import ops

from seglib import labels, masks

__all__ = [
    "confusion_matrix", "ConfusionMatrix", "iou_per_class", "dice_per_class", "pixel_accuracy", "mean_iou",
    "EVAL_CATEGORY_LUT", "CATEGORY_TO_EVAL_LABEL_ID", "categories_to_eval_label_ids",
    "cityscapes_category_iou", "CategoryIoU", "MeanIoU", "BinaryDice",
]


# ---------------------------------------------------------------------------------------------------------
# Confusion matrices (numpy)
# ---------------------------------------------------------------------------------------------------------

def _check_num_classes(num_classes: int, ignore: int | None) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if ignore is not None and 0 <= ignore < num_classes:
        raise ValueError(f"ignore={ignore} is a class id (0..{num_classes - 1}); it must lie outside the classes")


def _check_range(values: np.ndarray, num_classes: int, what: str, hint: str) -> None:
    """Raise naming the first offending value (and its pixel count) if ``values`` leave 0..num_classes-1."""
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        bad = int(values.max()) if values.max() >= num_classes else int(values.min())
        count = int(np.count_nonzero(values == bad))
        raise ValueError(f"{what} holds value {bad} ({count} pixels) outside 0..{num_classes - 1}{hint}")


def confusion_matrix(gt: np.ndarray, pred: np.ndarray, num_classes: int = labels.NUM_CATEGORIES,
                     ignore: int | None = labels.IGNORE) -> np.ndarray:
    """Count ground truth against prediction: ``(C, C) int64``, rows = ground truth, columns = prediction.

    ``gt``: integer class ids of any shape, e.g. ``(H, W)`` or ``(B, H, W)`` uint8 category ids, with
    ``ignore`` (IGNORE = 255) where there is no target; those pixels are skipped, whatever is predicted there.
    ``pred``: integer class ids ``0..C-1`` of the same shape (argmax the probabilities first).
    ``ignore=None`` counts every pixel.

    One ``np.bincount`` over ``gt * C + pred``. Raises ``ValueError`` for mismatched shapes, empty or
    non-integer input, ``ignore`` inside ``0..C-1``, or a value outside ``0..C-1`` (other than ``ignore`` in
    ``gt``), naming the value.
    """
    _check_num_classes(num_classes, ignore)
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"gt and pred must have the same shape, got {gt.shape} and {pred.shape}")
    for array, what in ((gt, "gt"), (pred, "pred")):
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{what} must hold integer class ids, got dtype {array.dtype} "
                             "(argmax probabilities first)")
    if gt.size == 0:
        raise ValueError(f"gt and pred are empty (shape {gt.shape}); there are no pixels to count")
    _check_range(pred, num_classes, "pred", "; pred must hold class ids (argmax of the probabilities)")
    if ignore is not None:
        keep = gt != ignore
        gt, pred = gt[keep], pred[keep]
    _check_range(gt, num_classes, "gt", "" if ignore is None else f" and ignore={ignore}")
    index = gt.astype(np.int64).ravel() * num_classes + pred.ravel()
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


class ConfusionMatrix:
    """A confusion matrix summed over many frames (the way dataset-level IoU is defined).

    >>> total = ConfusionMatrix()            # NUM_CATEGORIES classes, IGNORE skipped
    >>> for gt, pred in pairs:               # gt: (H, W) category ids, pred: (H, W) argmax
    ...     total.update(gt, pred)
    >>> mean_iou(total.matrix)
    """

    def __init__(self, num_classes: int = labels.NUM_CATEGORIES, ignore: int | None = labels.IGNORE) -> None:
        _check_num_classes(num_classes, ignore)
        self.num_classes, self.ignore = int(num_classes), ignore
        self._matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, gt: np.ndarray, pred: np.ndarray) -> ConfusionMatrix:
        """Add :func:`confusion_matrix` of one frame or batch; returns ``self`` for chaining."""
        self._matrix += confusion_matrix(gt, pred, self.num_classes, self.ignore)
        return self

    def reset(self) -> None:
        self._matrix[:] = 0

    @property
    def matrix(self) -> np.ndarray:
        """The ``(C, C) int64`` sum so far (a copy)."""
        return self._matrix.copy()

    def iou_per_class(self) -> np.ndarray:
        return iou_per_class(self._matrix)

    def mean_iou(self) -> float:
        return mean_iou(self._matrix)


# ---------------------------------------------------------------------------------------------------------
# Scores from a confusion matrix (numpy)
# ---------------------------------------------------------------------------------------------------------

def _check_matrix(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"a confusion matrix must be a non-empty square (C, C) array, got shape {matrix.shape}")
    if not (np.issubdtype(matrix.dtype, np.integer) or np.issubdtype(matrix.dtype, np.floating)):
        raise ValueError(f"a confusion matrix must hold counts (integers or floats), got dtype {matrix.dtype}")
    matrix = matrix.astype(np.float64)
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise ValueError("a confusion matrix must hold finite, non-negative counts")
    return matrix


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, NaN where the denominator is 0."""
    out = np.full(numerator.shape, np.nan)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def iou_per_class(matrix: np.ndarray) -> np.ndarray:
    """``matrix: (C, C)`` counts -> ``(C,) float64`` IoU = TP / (TP + FP + FN); NaN where TP + FP + FN == 0
    (the class is neither in the ground truth nor predicted)."""
    matrix = _check_matrix(matrix)
    true_positives = np.diag(matrix)
    return _ratio(true_positives, matrix.sum(axis=0) + matrix.sum(axis=1) - true_positives)


def dice_per_class(matrix: np.ndarray) -> np.ndarray:
    """``matrix: (C, C)`` counts -> ``(C,) float64`` Dice (F1) = 2 TP / (2 TP + FP + FN); NaN where the
    denominator is 0. Dice = 2 IoU / (1 + IoU), so it ranks models as IoU does but reads higher."""
    matrix = _check_matrix(matrix)
    return _ratio(2 * np.diag(matrix), matrix.sum(axis=0) + matrix.sum(axis=1))


def pixel_accuracy(matrix: np.ndarray) -> float:
    """``matrix: (C, C)`` counts -> fraction of counted pixels predicted correctly (trace / sum); NaN if the
    matrix is all zeros. Dominated by large classes (road, sky), which is why IoU is the headline metric."""
    matrix = _check_matrix(matrix)
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total > 0 else math.nan


def mean_iou(matrix: np.ndarray) -> float:
    """``matrix: (C, C)`` counts -> mean of :func:`iou_per_class` over the classes with a defined IoU (NaN
    entries skipped); NaN if no class has one."""
    iou = iou_per_class(matrix)
    defined = iou[~np.isnan(iou)]
    return float(defined.mean()) if defined.size else math.nan


# ---------------------------------------------------------------------------------------------------------
# The official Cityscapes category score (numpy)
# ---------------------------------------------------------------------------------------------------------

#: ``lut[label_id] -> category id`` for labels the official evaluator scores, IGNORE for ``ignoreInEval`` labels
#: (and everything past the table); uint8, length 256. Ground truth mapped through it is what "IoU category" counts.
EVAL_CATEGORY_LUT: np.ndarray = np.full(256, labels.IGNORE, dtype=np.uint8)
for _label in labels.LABELS:
    if _label.id >= 0 and not _label.ignore_in_eval:
        EVAL_CATEGORY_LUT[_label.id] = _label.category_id
EVAL_CATEGORY_LUT.flags.writeable = False

#: ``category id -> label id`` to write a category prediction in the official label-id format: the category's
#: first evaluated label (flat -> road, ...), or its first label if it has none (void -> unlabeled).
CATEGORY_TO_EVAL_LABEL_ID: np.ndarray = np.array(
    [next((label for label in labels.CATEGORY_TO_LABELS[name] if not label.ignore_in_eval),
          labels.CATEGORY_TO_LABELS[name][0]).id for name in labels.CATEGORY_NAMES], dtype=np.uint8)
CATEGORY_TO_EVAL_LABEL_ID.flags.writeable = False


def categories_to_eval_label_ids(categories: np.ndarray) -> np.ndarray:
    """``categories: (H, W)`` category ids 0..7 -> ``(H, W) uint8`` label ids that the official evaluator
    scores as those categories (see :data:`CATEGORY_TO_EVAL_LABEL_ID`): how to submit a category prediction
    as a ``*.png`` of label ids. Any evaluated label of the category would give the same category scores; an
    ignored one (``parking`` for flat) would not, see :func:`cityscapes_category_iou`."""
    return CATEGORY_TO_EVAL_LABEL_ID[masks.check_categories(categories, allow_ignore=False)]


class CategoryIoU:
    """The official Cityscapes "IoU category", accumulated over a whole set of frames as the evaluator does.

    >>> score = CategoryIoU()
    >>> for gt_label_ids, pred_categories in frames:   # (H, W) label ids 0..33, (H, W) category ids 0..7
    ...     score.update(gt_label_ids, pred_categories)
    >>> per_category, mean = score.result()

    Internally a ``(NUM_CATEGORIES, NUM_CATEGORIES)`` confusion matrix whose rows are the ground truth mapped
    through :data:`EVAL_CATEGORY_LUT` (ignored labels dropped); see :func:`cityscapes_category_iou` for why
    that reproduces the official label-level bookkeeping exactly.
    """

    def __init__(self) -> None:
        self._confusion = ConfusionMatrix(labels.NUM_CATEGORIES, labels.IGNORE)

    def update(self, gt_label_ids: np.ndarray, pred_categories: np.ndarray) -> CategoryIoU:
        """Add one frame (``(H, W)`` arrays) or a stack (``(N, H, W)``); returns ``self``."""
        gt_label_ids, pred_categories = np.asarray(gt_label_ids), np.asarray(pred_categories)
        if gt_label_ids.shape != pred_categories.shape:
            raise ValueError(f"gt_label_ids and pred_categories must have the same shape, got {gt_label_ids.shape} "
                             f"and {pred_categories.shape}")
        if gt_label_ids.ndim == 3:
            for gt, pred in zip(gt_label_ids, pred_categories):
                self.update(gt, pred)
            return self
        gt_label_ids = masks.check_label_ids(gt_label_ids)
        pred_categories = masks.check_categories(pred_categories, allow_ignore=False)
        self._confusion.update(EVAL_CATEGORY_LUT[gt_label_ids], pred_categories)
        return self

    def reset(self) -> None:
        self._confusion.reset()

    @property
    def matrix(self) -> np.ndarray:
        """``(C, C) int64``: rows = ground-truth category of evaluated labels, columns = predicted category."""
        return self._confusion.matrix

    def result(self) -> tuple[dict[str, float], float]:
        """``({category name: IoU, ...}, mean)``; void and categories with an empty denominator are NaN."""
        iou = iou_per_class(self._confusion.matrix)
        evaluated = np.isin(np.arange(labels.NUM_CATEGORIES), labels.EVALUATED_CATEGORY_IDS)
        iou[~evaluated] = np.nan
        defined = iou[~np.isnan(iou)]
        return dict(zip(labels.CATEGORY_NAMES, iou.tolist())), float(defined.mean()) if defined.size else math.nan


def _frames(array_or_frames: np.ndarray | Iterable[np.ndarray]) -> list[np.ndarray]:
    """One (H, W) array -> [it]; an (N, H, W) array -> its N frames; any other iterable -> its items."""
    if hasattr(array_or_frames, "shape"):  # numpy, or a tensor
        array_or_frames = np.asarray(array_or_frames)
        if array_or_frames.ndim == 2:
            return [array_or_frames]
        if array_or_frames.ndim == 3:
            return list(array_or_frames)
        raise ValueError(f"expected one (H, W) frame or a stack (N, H, W), got shape {array_or_frames.shape}")
    return list(array_or_frames)


def cityscapes_category_iou(gt_label_ids: np.ndarray | Iterable[np.ndarray],
                            pred_categories: np.ndarray | Iterable[np.ndarray]) -> tuple[dict[str, float], float]:
    """The official Cityscapes "IoU category" of a prediction: ``({category name: IoU}, mean)``.

    ``gt_label_ids``: one ``(H, W)`` array of label ids 0..33 (a ``*_gtFine_labelIds.png``), an ``(N, H, W)``
    stack, or an iterable of frames; ``pred_categories``: the matching ``(H, W)`` category ids 0..7 (no IGNORE:
    a model predicts something everywhere). Frames may differ in size; each pair must match.

    Identical (to float rounding) to ``cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling`` on the
    same frames written as label-id PNGs (:func:`categories_to_eval_label_ids`); tested against it. Its rules:

    * **One confusion matrix over the whole set**, then scores: not a mean of per-frame scores.
    * For a category only its labels with ``ignoreInEval`` false count (flat: road, sidewalk; not parking or
      rail track). TP = ground truth and prediction both in the category: road predicted as sidewalk is a flat
      hit. FN = every other prediction on those ground-truth pixels, **including void**. FP = predictions of
      the category on ground truth of *evaluated* labels of other categories only.
    * Ground truth of an ignored label (all of void, parking, rail track, guard rail, bridge, tunnel,
      polegroup, caravan, trailer) costs nothing, whatever is predicted there.
    * Void has no evaluated label: NaN always, even where void is predicted (void predictions only cost
      other categories FNs).
    * A category with TP + FP + FN == 0 is NaN. Quirk: a category *absent* from the ground truth is not
      necessarily NaN - predicting it on any evaluated pixel gives IoU 0.0, which counts in the mean; only a
      category predicted nowhere (or only on ignored pixels) is skipped.
    * The mean is over the non-NaN categories (at most the 7 flat..vehicle); NaN if all are NaN (e.g. the
      ground truth is entirely ignored labels).
    * Quirk of the label-id format: the evaluator counts only a category's *evaluated* labels as its
      predictions, so submitting flat as ``parking`` (ignored) turns every flat hit into a miss. Which
      evaluated label represents a category does not matter.

    Raises ``ValueError`` for no frames, a different number of ground truths and predictions, mismatched
    shapes, or values outside the label-id / category-id ranges.
    """
    gts, preds = _frames(gt_label_ids), _frames(pred_categories)
    if not gts:
        raise ValueError("no frames to evaluate: gt_label_ids is empty")
    if len(gts) != len(preds):
        raise ValueError(f"got {len(gts)} ground-truth frames but {len(preds)} predictions")
    score = CategoryIoU()
    for gt, pred in zip(gts, preds):
        if np.shape(gt) != np.shape(pred):
            raise ValueError(f"a ground truth of shape {np.shape(gt)} was paired with a prediction of shape "
                             f"{np.shape(pred)}")
        score.update(gt, pred)
    return score.result()


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
        _check_num_classes(num_classes, ignore)
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
