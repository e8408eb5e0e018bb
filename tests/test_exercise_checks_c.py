"""The checks of chapters 9-12 reject plausible wrong answers, each with a message that says what is wrong."""

import math

import cv2
import numpy as np
import pytest

from seglib import exercises, labels
from seglib.exercises import Wrong

pytestmark = pytest.mark.exercise


def _fails(exercise: str, answer, message: str) -> None:
    """``answer`` fails ``exercise``'s check with a message matching the regex ``message``."""
    with pytest.raises(Wrong, match=message):
        exercises.checker(exercise)(answer)


# ---------------------------------------------------------------------------------------------------------
# 09 training
# ---------------------------------------------------------------------------------------------------------

def _rate(step, peak, total_steps, start=0.1, decay_over=None, warmup_steps=None):
    """The schedule with one knob turned: warm-up start (fraction of peak), decay length, warm-up length."""
    warmup = total_steps // 10 if warmup_steps is None else warmup_steps
    if step < warmup:
        return peak * start + (peak - peak * start) * step / warmup
    decay = decay_over(total_steps, warmup) if decay_over else max(total_steps - warmup, 1)
    return peak * 0.5 * (1 + math.cos(math.pi * min(step - warmup, decay) / decay))


def test_09_1_the_right_schedule_passes():
    exercises.checker("09.1")(_rate)


@pytest.mark.parametrize("answer, message", [
    (lambda step, peak, total: _rate(step, peak, total, start=0.0),
     r"learning_rate\(0, 0.003, 480\) is 0, expected 0.0003 \(the warm-up starts from peak / 10, not from 0\)"),
    (lambda step, peak, total: _rate(step, peak, total, decay_over=lambda total, warmup: total),
     r"learning_rate\(264, 0.003, 480\) is .*, expected 0.0015 \(the cosine decays over the 432 steps after the "
     r"warm-up"),
    (lambda step, peak, total: _rate(step, peak, total, warmup_steps=0),
     r"learning_rate\(0, 0.003, 480\) is 0.003, expected 0.0003 \(step 0: peak / 10\)"),
    (lambda step, peak, total: _rate(step, peak, total, warmup_steps=max(round(total / 10), 1)),
     r"learning_rate\(0, 0.5, 7\) is 0.05, expected 0.5 \(fewer than 10 steps: total_steps // 10 = 0, no warm-up"),
])
def test_09_1_wrong_schedules(answer, message):
    _fails("09.1", answer, message)


def _stopping(scores, patience, improves=lambda score, best: score > best, wait_more=0, count_from=1):
    best, best_epoch, waited = None, 0, 0
    for epoch, score in enumerate(scores):
        if best is None or improves(score, best):
            best, best_epoch, waited = score, epoch, 0
        else:
            waited += 1
            if waited >= patience + wait_more:
                return epoch + count_from, best_epoch + count_from
    return len(scores) - 1 + count_from, best_epoch + count_from


def test_09_2_the_right_stopping_passes():
    exercises.checker("09.2")(_stopping)


@pytest.mark.parametrize("answer, message", [
    (lambda scores, patience: _stopping(scores, patience, count_from=0),
     r"you return \(4, 2\), expected \(5, 3\): count epochs from 1"),
    (lambda scores, patience: _stopping(scores, patience, improves=lambda score, best: score >= best),
     r"a tie with the best score .*: the best epoch is 3, expected 2 \(a score equal to the best is not an "
     r"improvement"),
    (lambda scores, patience: _stopping(scores, patience, wait_more=1),
     r"a run that stops .*: the run lasts 6 epochs, expected 5 \(it stops after `patience` epochs in a row"),
    (lambda scores, patience: [len(scores), int(np.argmax(scores)) + 1],
     r"should return a tuple \(epochs_run, best_epoch\)"),
])
def test_09_2_wrong_stopping(answer, message):
    _fails("09.2", answer, message)


# ---------------------------------------------------------------------------------------------------------
# 10 comparison
# ---------------------------------------------------------------------------------------------------------

def _verdict(first, second, higher_is_better=True, spread_of_one=False, touching_is_ahead=False, by_means=False,
             ignore_direction=False):
    sign = 1 if higher_is_better or ignore_direction else -1
    a, b = [sign * v for v in first], [sign * v for v in second]
    if (len(a) == 1 or len(b) == 1) and not spread_of_one:
        difference = sum(a) / len(a) - sum(b) / len(b)
        return ("ahead" if difference > 0 else "behind" if difference < 0 else "level") + " on one seed"
    if by_means:
        return "ahead by more than the spread" if sum(a) / len(a) > sum(b) / len(b) else "behind by more than the spread"
    if min(a) > max(b) or (touching_is_ahead and min(a) >= max(b)):
        return "ahead by more than the spread"
    if max(a) < min(b):
        return "behind by more than the spread"
    return "within the spread"


def test_10_1_the_right_verdict_passes():
    exercises.checker("10.1")(_verdict)


@pytest.mark.parametrize("answer, message", [
    (lambda a, b, higher_is_better=True: _verdict(a, b, higher_is_better, spread_of_one=True),
     r"verdict\(\[0.575, 0.583\], \[0.521\], higher_is_better=True\) is 'ahead by more than the spread', expected "
     r"'ahead on one seed': a side with one seed has no spread"),
    (lambda a, b, higher_is_better=True: _verdict(a, b, higher_is_better, by_means=True),
     r"is 'ahead by more than the spread', expected 'within the spread': the ranges .* overlap"),
    (lambda a, b, higher_is_better=True: _verdict(a, b, higher_is_better, touching_is_ahead=True),
     r"verdict\(\[0.6, 0.64\], \[0.55, 0.6\], .*expected 'within the spread'"),
    (lambda a, b, higher_is_better=True: _verdict(a, b, higher_is_better, ignore_direction=True),
     r"higher_is_better=False\) is 'behind by more than the spread', expected 'ahead by more than the spread': with "
     r"higher_is_better=False .* the lower figure is the better one"),
    (lambda a, b, higher_is_better=True: "better", r"returned 'better', which is not one of the verdicts"),
])
def test_10_1_wrong_verdicts(answer, message):
    _fails("10.1", answer, message)


def _head(channels, head, classes, kernel=7, biases=True, score=True):
    count = kernel * kernel * channels * head + head * head + (head * classes if score else 0)
    return count + ((2 * head + (classes if score else 0)) if biases else 0)


def test_10_2_the_right_count_passes_and_the_constants_match_the_model():
    from seglib.exercises import ch10

    exercises.checker("10.2")(_head)
    assert ch10._fcn8_head(0.25, 128, 8) == (ch10.CI_HEAD[0], ch10.CI_HEAD[3])  # the ci profile's FCN-8 head
    assert _head(*ch10.PAPER_HEAD[:3]) == ch10.PAPER_HEAD[3]


@pytest.mark.parametrize("answer, message", [
    (lambda c, h, n: _head(c, h, n, biases=False), r"head_parameters\(512, 4096, 21\) is 119,623,680, expected "
                                                   r"119,631,893 \(off by 8,213\): the biases are missing"),
    (lambda c, h, n: _head(c, h, n, kernel=3), r"fc6 has a 7x7 kernel, not 3x3"),
    (lambda c, h, n: _head(c, h, n, score=False), r"score_fr, the 1x1 convolution to the class scores, is missing"),
    (lambda c, h, n: float(_head(c, h, n)), r"should return an integer, got float"),
])
def test_10_2_wrong_counts(answer, message):
    _fails("10.2", answer, message)


# ---------------------------------------------------------------------------------------------------------
# 11 classical baseline
# ---------------------------------------------------------------------------------------------------------

def _response(grey, kernel, pad="symmetric", absolute=True, flip=False, dtype=np.float32):
    kernel = kernel[::-1, ::-1] if flip else kernel
    height, width = grey.shape
    padded = np.pad(grey, 1, mode=pad)
    out = np.zeros((height, width), dtype)
    for dy in range(3):
        for dx in range(3):
            out += kernel[dy, dx] * padded[dy:dy + height, dx:dx + width]
    return np.abs(out) if absolute else out


def _response_per_pixel(grey, kernel):
    padded, out = np.pad(grey, 1, mode="symmetric"), np.zeros(grey.shape, np.float32)
    for y in range(grey.shape[0]):
        for x in range(grey.shape[1]):
            out[y, x] = abs(float((padded[y:y + 3, x:x + 3] * kernel).sum()))
    return out


def test_11_1_the_right_response_passes():
    exercises.checker("11.1")(_response)
    exercises.checker("11.1")(lambda grey, kernel: np.abs(cv2.filter2D(grey, -1, kernel,
                                                                       borderType=cv2.BORDER_REFLECT)))


@pytest.mark.parametrize("answer, message", [
    (lambda grey, kernel: _response(grey, kernel, absolute=False),
     r"the response on a random 24x40 image, sobel_x differs .*: the feature is the absolute response"),
    (lambda grey, kernel: _response(grey, kernel, pad="constant"),
     r"the response on a 5x6 step image, sobel_x differs at .* pixels; the first is at \(0, 2\): 3, expected 4: the "
     r"inside is right, the border is not"),
    (lambda grey, kernel: _response(grey, kernel, flip=True),
     r"a random 3x3 kernel differs .*: that is a convolution \(kernel flipped\)"),
    (lambda grey, kernel: _response(grey, kernel, dtype=np.float64), r"has dtype float64, expected float32"),
    (_response_per_pixel, r"the responses are right, but a 128x256 image takes \d+ ms .*a loop over the pixels\?"),
])
def test_11_1_wrong_responses(answer, message):
    _fails("11.1", answer, message)


def _categories(x, mean, variance, weights, bias, scale=np.sqrt, standardise=True, dtype=np.uint8, scores=False):
    z = (x - mean) / scale(variance) if standardise else x
    out = z @ weights + bias
    return out if scores else np.argmax(out, axis=-1).astype(dtype)


def test_11_2_the_right_prediction_passes():
    exercises.checker("11.2")(_categories)


@pytest.mark.parametrize("answer, message", [
    (lambda *args: _categories(*args, standardise=False),
     r"the categories of 4 pixels, .* differs .*: standardise each feature first"),
    (lambda *args: _categories(*args, scale=lambda v: v), r"divide by the standard deviation, sqrt\(variance\)"),
    (lambda *args: _categories(*args, scores=True),
     r"has shape \(4, 3\), expected \(4,\): return each pixel's category \(the argmax of its scores\)"),
    (lambda *args: _categories(*args, dtype=np.int64), r"has dtype int64, expected uint8"),
])
def test_11_2_wrong_predictions(answer, message):
    _fails("11.2", answer, message)


# ---------------------------------------------------------------------------------------------------------
# 12 binary segmentation
# ---------------------------------------------------------------------------------------------------------

def test_12_1_the_right_target_passes():
    from seglib import data

    exercises.checker("12.1")(data.binary_target_numpy)


@pytest.mark.parametrize("answer, message", [
    (lambda mask, category: (mask == category).astype(np.uint8),
     r"IGNORE handled wrongly in a 3x4 mask by hand, vehicle: at \(1, 1\) the mask is IGNORE \(255\) and your target "
     r"is 0"),
    (lambda mask, category: np.where(mask == labels.IGNORE, labels.IGNORE, mask == category),
     r"has dtype int64, expected uint8"),
    (lambda mask, category: np.where(mask == labels.IGNORE, labels.IGNORE, mask == category + 1).astype(np.uint8),
     r"the target of a 3x4 mask by hand, vehicle \(category 7\) differs at 4 of 12 elements; the first is at "
     r"\(0, 2\): 0, expected 1"),
])
def test_12_1_wrong_targets(answer, message):
    _fails("12.1", answer, message)


def _dice(truth, predicted, ignore_predictions=True, empty=1.0, iou=False):
    valid = truth != labels.IGNORE
    true = (truth == 1) & valid
    found = (predicted == 1) & (valid if ignore_predictions else True)
    both = int((true & found).sum())
    if iou:
        union = int((true | found).sum())
        return both / union if union else empty
    total = int(true.sum() + found.sum())
    return 2 * both / total if total else empty


def test_12_2_the_right_dice_passes():
    exercises.checker("12.2")(_dice)


@pytest.mark.parametrize("answer, message", [
    (lambda t, p: _dice(t, p, iou=True),
     r"the dice of a 2x3 pair by hand .* is 0.5, expected 0.666667: that is the IoU"),
    (lambda t, p: _dice(t, p, ignore_predictions=False),
     r"is 0.571429, expected 0.666667: the predictions on IGNORE pixels were counted"),
    (lambda t, p: _dice(t, p, empty=0.0),
     r"the dice of no vehicle, none predicted is 0, expected 1: with nothing to find and nothing found"),
    (lambda t, p: _dice(t, p, empty=math.nan), r"the dice of no vehicle, none predicted is nan, expected 1: with "
                                               r"nothing to find and nothing found"),
])
def test_12_2_wrong_dice(answer, message):
    _fails("12.2", answer, message)
