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
3. streaming Keras metrics for ``model.compile(metrics=[...])`` live in :mod:`seglib.keras_metrics`
   (:class:`~seglib.keras_metrics.MeanIoU`, :class:`~seglib.keras_metrics.BinaryDice`), tested to agree with (1):
   this module imports no Keras, so scoring masks costs no deep-learning import.

Every class count, id and name comes from :mod:`seglib.labels`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from seglib import labels, masks

__all__ = [
    "check_num_classes", "confusion_matrix", "ConfusionMatrix", "iou_per_class", "dice_per_class", "pixel_accuracy", "mean_iou",
    "EVAL_CATEGORY_LUT", "CATEGORY_TO_EVAL_LABEL_ID", "categories_to_eval_label_ids",
    "cityscapes_category_iou", "CategoryIoU",
]


# ---------------------------------------------------------------------------------------------------------
# Confusion matrices (numpy)
# ---------------------------------------------------------------------------------------------------------

def check_num_classes(num_classes: int, ignore: int | None) -> None:
    """Raise ``ValueError`` unless ``num_classes`` is a positive integer and ``ignore`` (if any) lies outside
    ``0..num_classes - 1``."""
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
    check_num_classes(num_classes, ignore)
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
        check_num_classes(num_classes, ignore)
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
