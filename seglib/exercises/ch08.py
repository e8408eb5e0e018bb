"""Checks of chapter 8 (metrics): IoU per class from a confusion matrix, and the confusion matrix itself (IGNORE
skipped, one vectorised count), against :mod:`seglib.metrics`."""

from __future__ import annotations

import time

import numpy as np

from seglib import labels, metrics
from seglib.exercises import Wrong, expect, expect_array, median_seconds

_IGNORE = labels.IGNORE


def _matrices(rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    chapter = metrics.confusion_matrix(np.array([[0, 0, 1], [0, 1, 1], [2, 2, 2]]),
                                       np.array([[0, 1, 1], [0, 1, 2], [2, 2, 0]]), num_classes=3)
    absent = np.array([[5, 1, 0, 2], [0, 7, 0, 1], [0, 0, 0, 0], [3, 0, 0, 4]], np.int64)  # class 2: nowhere
    missed = np.array([[6, 2, 0], [4, 0, 0], [1, 0, 3]], np.int64)                          # class 1: TP = 0
    random = rng.integers(0, 1000, (labels.NUM_CATEGORIES, labels.NUM_CATEGORIES)).astype(np.int64)
    random[3, :] = 0
    random[:, 3] = 0                                                                       # class 3: nowhere
    return [("the chapter's 3x3 example", chapter),
            ("a 4x4 matrix whose class 2 is neither true nor predicted", absent),
            ("a 3x3 matrix whose class 1 is never predicted right", missed),
            ("a random 8x8 matrix (class 3 nowhere)", random),
            ("a random 8x8 matrix of float counts", rng.random((8, 8)) * 100)]


def check_iou(iou_per_class) -> None:
    """08.1: ``iou_per_class(matrix (C, C) counts) -> (C,) float64`` IoU = TP / (TP + FP + FN), NaN where that
    denominator is 0."""
    rng = np.random.default_rng(8)
    for name, matrix in _matrices(rng):
        got = iou_per_class(matrix.copy())
        want = metrics.iou_per_class(matrix)
        what = f"the IoU of {name}"
        expect(isinstance(got, np.ndarray), f"{what} should be a numpy array, got {type(got).__name__}")
        expect(got.shape == want.shape, f"{what} has shape {got.shape}, expected {want.shape}: one IoU per class")
        expect(got.dtype == want.dtype, f"{what} has dtype {got.dtype}, expected {want.dtype}")
        for index in np.flatnonzero(np.isnan(want)):
            expect(np.isnan(got[index]), f"{what}: class {index} appears nowhere (TP + FP + FN = 0), so its IoU is "
                                         f"undefined: NaN, not {float(got[index])!r} (a 0 would pull the mean down)")
        defined = ~np.isnan(want)
        wrong = defined & ~np.isclose(got, want, rtol=1e-12, atol=1e-12)
        if not wrong.any():
            continue
        index = int(np.flatnonzero(wrong)[0])
        diagonal, rows, columns = np.diag(matrix), matrix.sum(1), matrix.sum(0)
        hint = ""
        with np.errstate(divide="ignore", invalid="ignore"):
            if np.isclose(got[index], diagonal[index] / rows[index]):
                hint = ": that is TP / (TP + FN), the recall; IoU counts the false positives (the column) too"
            elif np.isclose(got[index], diagonal[index] / columns[index]):
                hint = ": that is TP / (TP + FP), the precision; IoU counts the false negatives (the row) too"
            elif np.isclose(got[index], diagonal[index] / (rows[index] + columns[index])):
                hint = ": the diagonal is in both the row and the column sum; subtract TP once"
            elif np.isclose(got[index], 2 * diagonal[index] / (rows[index] + columns[index])):
                hint = ": that is the Dice score, 2 TP / (2 TP + FP + FN)"
        raise Wrong(f"{what} differs at class {index}: {float(got[index]):.6g}, "
                    f"expected {float(want[index]):.6g}{hint}")


def _mask_pairs(rng: np.random.Generator) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    gt = np.array([[0, 0, 1], [0, 1, 1], [2, 2, 2]], np.uint8)
    pred = np.array([[0, 1, 1], [0, 1, 2], [2, 2, 0]], np.uint8)
    gt_ignore = gt.copy()
    gt_ignore[0, 0] = gt_ignore[2, 2] = _IGNORE
    batch_gt = rng.integers(0, labels.NUM_CATEGORIES, (2, 16, 24)).astype(np.uint8)
    batch_gt[rng.random(batch_gt.shape) < 0.1] = _IGNORE
    batch_pred = rng.integers(0, labels.NUM_CATEGORIES, (2, 16, 24)).astype(np.uint8)
    return [("the chapter's 3x3 example", gt, pred, 3),
            ("the same with two IGNORE pixels in the ground truth", gt_ignore, pred, 3),
            ("a random (2, 16, 24) batch with IGNORE pixels", batch_gt, batch_pred, labels.NUM_CATEGORIES),
            ("a random 20x30 pair of 5 classes where class 4 is never predicted",
             rng.integers(0, 5, (20, 30)).astype(np.uint8), rng.integers(0, 4, (20, 30)).astype(np.uint8), 5)]


def check_confusion(confusion_matrix) -> None:
    """08.2: ``confusion_matrix(gt, pred, num_classes) -> (C, C) int64``: rows ground truth, columns prediction,
    IGNORE pixels of ``gt`` skipped, counted in one vectorised pass."""
    rng = np.random.default_rng(82)
    for name, gt, pred, classes in _mask_pairs(rng):
        got = confusion_matrix(gt.copy(), pred.copy(), classes)
        want = metrics.confusion_matrix(gt, pred, classes)
        what = f"the confusion matrix of {name}"
        if isinstance(got, np.ndarray) and got.shape == want.shape and not np.array_equal(got, want):
            ignored = int(np.count_nonzero(gt == _IGNORE))
            if np.array_equal(got, want.T):
                raise Wrong(f"{what} is transposed: rows are the ground truth, columns the prediction")
            if ignored and got.sum() == gt.size:
                raise Wrong(f"{what} counts {int(got.sum())} pixels, but {ignored} of them are IGNORE (255) in the "
                            "ground truth: skip them, whatever is predicted there")
        expect_array(got, want, what)
    # the speed, on a 512x1024 pair of the 34 label ids: a loop over the C x C pairs of classes scans the masks
    # 1,156 times, where one np.bincount of gt * C + pred scans them once
    gt = rng.integers(0, labels.NUM_LABEL_IDS, (512, 1024)).astype(np.uint8)
    gt[rng.random(gt.shape) < 0.05] = _IGNORE
    pred = rng.integers(0, labels.NUM_LABEL_IDS, (512, 1024)).astype(np.uint8)
    start = time.perf_counter()
    got = confusion_matrix(gt, pred, labels.NUM_LABEL_IDS)
    first = time.perf_counter() - start
    want = metrics.confusion_matrix(gt, pred, labels.NUM_LABEL_IDS)
    if isinstance(got, np.ndarray) and got.shape == want.shape and not np.array_equal(got, want):
        keep = gt != _IGNORE
        wrapped = (gt[keep] * np.uint8(labels.NUM_LABEL_IDS) + pred[keep]).astype(np.uint8)  # uint8 arithmetic wraps
        expect(not np.array_equal(got, np.bincount(wrapped, minlength=want.size).reshape(want.shape)),
               "with 34 classes, gt * C overflows uint8 (33 * 34 = 1,122 > 255) and wraps around: cast gt to int64 "
               "before multiplying")
    expect_array(got, want, "the confusion matrix of a random 512x1024 pair of the 34 label ids")
    counted = median_seconds(lambda: metrics.confusion_matrix(gt, pred, labels.NUM_LABEL_IDS), repeats=3)
    yours = first if first > 0.25 else median_seconds(lambda: confusion_matrix(gt, pred, labels.NUM_LABEL_IDS),
                                                      repeats=3)
    expect(yours < 10 * counted + 0.005,
           f"the matrices are right, but a 512x1024 pair of the 34 label ids takes {1000 * yours:.0f} ms against "
           f"{1000 * counted:.0f} ms for one np.bincount: a loop over the pairs of classes (or the pixels)? count "
           "gt * C + pred in one pass instead")


CHECKS = {"08.1": check_iou, "08.2": check_confusion}
