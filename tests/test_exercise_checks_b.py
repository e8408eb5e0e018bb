"""The checks of chapters 5 to 8 catch plausible wrong answers and say what is wrong: a wrong dtype or axis, an
off-by-one, IGNORE mishandled (counted, filled with void, averaged over), a loop where one array operation was
asked for."""


import cv2
import numpy as np
import pytest

from seglib import labels

from _exercise_checks import fails as _fails
from _exercise_checks import passes as _passes

pytestmark = pytest.mark.exercise

IGNORE = labels.IGNORE


# ---------------------------------------------------------------------------------------------------------
# 05.1 flip image and mask together, 05.2 a rotation that keeps the mask a mask
# ---------------------------------------------------------------------------------------------------------

def test_05_1_names_the_axis_and_the_mask_left_behind():
    _passes("05.1", lambda image, mask: (np.fliplr(image).copy(), np.fliplr(mask).copy()))
    _fails("05.1", lambda image, mask: (image[:, ::-1], mask), r"mask of .* is not flipped: image and mask must move")
    _fails("05.1", lambda image, mask: (image[::-1], mask[::-1]), r"upside down \(axis 0\)")
    _fails("05.1", lambda image, mask: (np.flip(image), np.flip(mask)), r"np\.flip without axis=1\?")
    _fails("05.1", lambda image, mask: (image[:, ::-1].astype(np.float32), mask[:, ::-1]),
           r"flipped image of .* has dtype float32, expected uint8")

    def in_place(image, mask):
        image[:] = image[:, ::-1].copy()
        mask[:] = mask[:, ::-1].copy()
        return image, mask

    _fails("05.1", in_place, r"changed its input arrays")


def _rotation(mask, degrees, center=None):
    height, width = mask.shape
    return cv2.getRotationMatrix2D(center or (width / 2, height / 2), degrees, 1.0), (width, height)


def _rotate(image, mask, degrees, mask_flags=cv2.INTER_NEAREST, fill=IGNORE, center=None):
    matrix, size = _rotation(mask, degrees, center)
    return (cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0)),
            cv2.warpAffine(mask, matrix, size, flags=mask_flags, borderValue=fill))


def test_05_2_tells_interpolation_void_fill_and_direction():
    _passes("05.2", _rotate)
    _fails("05.2", lambda image, mask, degrees: _rotate(image, mask, degrees, mask_flags=cv2.INTER_LINEAR),
           r"holds \d+ value\(s\) the original does not.*interpolated.*nearest")
    _fails("05.2", lambda image, mask, degrees: _rotate(image, mask, degrees, fill=0),
           r"exposed .* hold 0, which is void.*labels\.IGNORE \(255\)")
    _fails("05.2", lambda image, mask, degrees: _rotate(image, mask, -degrees), r"you rotated clockwise")
    _fails("05.2", lambda image, mask, degrees: _rotate(image, mask, degrees,
                                                        center=((mask.shape[1] - 1) / 2, (mask.shape[0] - 1) / 2)),
           r"rotated mask of .* differs at .*rotate about \(W / 2, H / 2\)")
    _fails("05.2", lambda image, mask, degrees: (image, _rotate(image, mask, degrees)[1]),
           r"image of .* was not rotated")
    _fails("05.2", lambda image, mask, degrees: (_rotate(image, mask, degrees)[0],
                                                 _rotate(image, mask, degrees)[1].astype(np.int64)),
           r"rotated mask of .* has dtype int64, expected uint8")


# ---------------------------------------------------------------------------------------------------------
# 06.1 a convolution's parameters, 06.2 the receptive field of a stack
# ---------------------------------------------------------------------------------------------------------

def test_06_1_names_the_missing_bias_or_channels():
    _passes("06.1", lambda k, c, f, use_bias=True: k * k * c * f + f * use_bias)
    _fails("06.1", lambda k, c, f, use_bias=True: k * k * c * f,
           r"you count 4,608 parameters, Keras counts 4,640: the biases are missing")
    _fails("06.1", lambda k, c, f, use_bias=True: k * k * c * f + f, r"use_bias=False there is no bias to count")
    _fails("06.1", lambda k, c, f, use_bias=True: k * k * f + f * use_bias, r"a k x k kernel for every input channel")
    _fails("06.1", lambda k, c, f, use_bias=True: k * c * f + f * use_bias, r"k \* k weights per input channel")
    _fails("06.1", lambda k, c, f, use_bias=True: float(k * k * c * f + f * use_bias),
           r"should be an integer, got float")


def _field(layers, start=1, late_stride=False):
    field, jump = start, 1
    for kernel, stride in layers:
        if late_stride:
            jump *= stride
        field += (kernel - 1) * jump
        if not late_stride:
            jump *= stride
    return field


def test_06_2_names_the_jump_and_the_first_pixel():
    _passes("06.2", _field)
    _fails("06.2", lambda layers: _field(layers, start=0), r"is 3 px; yours is 2: one pixel short")
    _fails("06.2", lambda layers: 1 + sum(kernel - 1 for kernel, _ in layers),
           r"\(kernel - 1\) times the current jump")
    _fails("06.2", lambda layers: _field(layers, late_stride=True), r"multiply the jump by the stride after adding")
    _fails("06.2", lambda layers: float(_field(layers)), r"should be an integer, got float 3\.0")


# ---------------------------------------------------------------------------------------------------------
# 07.1 cross-entropy, 07.2 soft dice
# ---------------------------------------------------------------------------------------------------------

def _target_probability(y_true, y_pred):
    valid = y_true != IGNORE
    target = np.where(valid, y_true, 0).astype(np.int64)
    return valid, np.take_along_axis(y_pred.astype(np.float64), target[..., None], -1)[..., 0]


def _cross_entropy(y_true, y_pred, clip=True, divide_by_all=False, per_image=False):
    if per_image:
        return float(np.mean([_cross_entropy(y_true[b:b + 1], y_pred[b:b + 1], clip)
                              for b in range(len(y_true)) if (y_true[b] != IGNORE).any()]))
    valid, p = _target_probability(y_true, y_pred)
    per_pixel = -np.log(np.clip(p, 1e-7, 1 - 1e-7) if clip else p)
    if divide_by_all:
        return float(per_pixel[valid].sum() / y_true.size)
    return float(per_pixel[valid].mean()) if valid.any() else 0.0


def test_07_1_names_the_count_the_clip_and_the_batch_mean():
    _passes("07.1", _cross_entropy)
    _fails("07.1", lambda t, p: _cross_entropy(t, p, divide_by_all=True),
           r"divide by every pixel, IGNORE included")
    _fails("07.1", lambda t, p: float(-np.log(np.clip(_target_probability(t, p)[1], 1e-7, 1 - 1e-7)).mean()),
           r"IGNORE pixels are counted")
    with np.errstate(divide="ignore"):
        _fails("07.1", lambda t, p: _cross_entropy(t, p, clip=False), r"is inf: log\(0\) is -inf; clip")
    _fails("07.1", lambda t, p: _cross_entropy(t, p, per_image=True), r"mean of per-image means")


def _dice(y_true, y_pred, smooth=1.0, mask_ignore=True, axes=(0, 1, 2), score=False):
    valid = (y_true != IGNORE)[..., None]
    truth = (y_true[..., None] == np.arange(y_pred.shape[-1])) & valid
    prediction = np.where(valid, y_pred.astype(np.float64), 0.0) if mask_ignore else y_pred.astype(np.float64)
    dice = (2 * (prediction * truth).sum(axes) + smooth) / (prediction.sum(axes) + truth.sum(axes) + smooth)
    return float(dice.mean() if score else 1 - dice.mean())


def test_07_2_names_ignore_batch_sums_smoothing_and_the_sign():
    _passes("07.2", _dice)
    _fails("07.2", lambda t, p, smooth=1.0: _dice(t, p, smooth, mask_ignore=False),
           r"predicted on IGNORE pixels count in the sums")
    _fails("07.2", lambda t, p, smooth=1.0: _dice(t, p, smooth, axes=(1, 2)), r"mean of per-image dice ratios")
    _fails("07.2", lambda t, p, smooth=1.0: _dice(t, p, smooth, score=True), r"that is the dice score; the loss is 1")
    _fails("07.2", lambda t, p, smooth=1.0: _dice(t, p, 1e-12), r"smoothing term s is missing")
    _fails("07.2", lambda t, p, smooth=1.0: _dice(t, p), r"smooth=0\.5.*use the smooth argument")


# ---------------------------------------------------------------------------------------------------------
# 08.1 IoU from the confusion matrix, 08.2 the confusion matrix in one pass
# ---------------------------------------------------------------------------------------------------------

def _iou(matrix, union_minus_tp=True, nan=True):
    matrix = np.asarray(matrix, np.float64)
    tp = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - (tp if union_minus_tp else 0)
    iou = np.divide(tp, union, out=np.full(len(matrix), np.nan), where=union > 0)
    return iou if nan else np.nan_to_num(iou)


def test_08_1_names_recall_the_double_count_nan_and_dtype():
    _passes("08.1", _iou)
    with np.errstate(divide="ignore", invalid="ignore"):
        _fails("08.1", lambda m: np.diag(m) / np.asarray(m).sum(1), r"TP / \(TP \+ FN\), the recall")
    _fails("08.1", lambda m: _iou(m, union_minus_tp=False), r"in both the row and the column sum; subtract TP once")
    _fails("08.1", lambda m: _iou(m, nan=False), r"class 2 appears nowhere .*NaN, not 0\.0")
    _fails("08.1", lambda m: _iou(m).astype(np.float32), r"dtype float32, expected float64")
    _fails("08.1", lambda m: _iou(m).tolist(), r"should be a numpy array, got list")


def _confusion(gt, pred, num_classes, skip_ignore=True, wide=True):
    gt, pred = np.asarray(gt), np.asarray(pred)
    if skip_ignore:
        keep = gt != IGNORE
        gt, pred = gt[keep], pred[keep]
    else:
        gt = np.where(gt == IGNORE, 0, gt)  # IGNORE counted as class 0
    cells = (gt.astype(np.int64) if wide else gt) * num_classes + pred
    return np.bincount(cells.ravel(), minlength=num_classes ** 2).reshape(num_classes, num_classes)


def _confusion_by_pairs(gt, pred, num_classes):
    matrix = np.zeros((num_classes, num_classes), np.int64)
    for i in range(num_classes):
        for j in range(num_classes):
            matrix[i, j] = np.count_nonzero((gt == i) & (pred == j))
    return matrix


def test_08_2_names_ignore_transpose_overflow_and_the_loop():
    _passes("08.2", _confusion)
    _fails("08.2", lambda gt, pred, c: _confusion(gt, pred, c, skip_ignore=False),
           r"counts 9 pixels, but 2 of them are IGNORE \(255\).*skip them")
    _fails("08.2", lambda gt, pred, c: _confusion(gt, pred, c).T, r"transposed: rows are the ground truth")
    _fails("08.2", lambda gt, pred, c: _confusion(gt, pred, c).astype(np.int32), r"dtype int32, expected int64")
    _fails("08.2", lambda gt, pred, c: _confusion(gt, pred, c, wide=False), r"gt \* C overflows uint8")
    _fails("08.2", _confusion_by_pairs, r"the matrices are right, but a 512x1024 pair .* a loop over the pairs")
