"""seglib.metrics: hand-computed cases, parity with the official cityscapesscripts evaluator, and with Keras."""

import copy
import itertools
import math

import keras
import numpy as np
import pytest
from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official
from cityscapesscripts.helpers import labels as official_labels
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from seglib import keras_metrics, labels, metrics

C = labels.NUM_CATEGORIES
IGNORE = labels.IGNORE
ID = {label.name: label.id for label in labels.LABELS}
CAT = {name: index for index, name in enumerate(labels.CATEGORY_NAMES)}
#: Taken from the official package, not from seglib: the label ids its evaluator skips in the ground truth.
OFFICIAL_IGNORED_IDS = sorted(label.id for label in official_labels.labels if label.ignoreInEval and label.id >= 0)
OFFICIAL_ALL_IDS = sorted(label.id for label in official_labels.labels if label.id >= 0)


def assert_same_scores(actual: dict, expected: dict, tolerance: float = 1e-12) -> None:
    assert list(actual) == list(expected)
    for name in expected:
        if math.isnan(expected[name]):
            assert math.isnan(actual[name]), name
        else:
            assert actual[name] == pytest.approx(expected[name], abs=tolerance, rel=0), name


def assert_same_float(actual: float, expected: float, tolerance: float = 1e-12) -> None:
    if math.isnan(expected):
        assert math.isnan(actual)
    else:
        assert actual == pytest.approx(expected, abs=tolerance, rel=0)


# -------------------------------------------------------------------------------------------------------------
# Confusion matrix: by hand, against a loop, accumulation, validation
# -------------------------------------------------------------------------------------------------------------

#: 3x3, two classes: class 1 covers 2 pixels in gt and 2 in pred, overlapping in 1 -> IoU(1) = 1 / (1 + 1 + 1).
GT_3X3 = np.array([[1, 1, 0], [0, 0, 0], [0, 0, 0]], dtype=np.uint8)
PRED_3X3 = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.uint8)


def test_confusion_matrix_3x3_by_hand():
    matrix = metrics.confusion_matrix(GT_3X3, PRED_3X3, num_classes=2)
    assert matrix.dtype == np.int64
    np.testing.assert_array_equal(matrix, [[6, 1], [1, 1]])  # rows: ground truth, columns: prediction
    np.testing.assert_allclose(metrics.iou_per_class(matrix), [6 / 8, 1 / 3])
    np.testing.assert_allclose(metrics.dice_per_class(matrix), [12 / 14, 2 / 4])
    assert metrics.pixel_accuracy(matrix) == pytest.approx(7 / 9)
    assert metrics.mean_iou(matrix) == pytest.approx((6 / 8 + 1 / 3) / 2)


def test_ignored_pixels_are_skipped_whatever_is_predicted():
    gt = np.array([[0, IGNORE, 2], [IGNORE, 1, 1]], dtype=np.uint8)
    pred = np.array([[0, 2, 2], [1, 1, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(metrics.confusion_matrix(gt, pred, num_classes=3),
                                  [[1, 0, 0], [1, 1, 0], [0, 0, 1]])


def test_ignore_none_counts_every_pixel():
    matrix = metrics.confusion_matrix(GT_3X3, PRED_3X3, num_classes=2, ignore=None)
    assert matrix.sum() == GT_3X3.size


@settings(max_examples=60, deadline=None)
@given(data=st.data(), num_classes=st.integers(1, 6))
def test_confusion_matrix_equals_a_pixel_loop(data, num_classes):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6))
    gt = data.draw(hnp.arrays(np.uint8, shape, elements=st.sampled_from([*range(num_classes), IGNORE])))
    pred = data.draw(hnp.arrays(np.int32, shape, elements=st.integers(0, num_classes - 1)))
    expected = np.zeros((num_classes, num_classes), dtype=np.int64)
    for true, predicted in zip(gt.ravel(), pred.ravel()):
        if true != IGNORE:
            expected[true, predicted] += 1
    np.testing.assert_array_equal(metrics.confusion_matrix(gt, pred, num_classes), expected)


def test_accumulator_sums_frames(rng):
    gts = [rng.choice([*range(C), IGNORE], size=(5, 7)).astype(np.uint8) for _ in range(4)]
    preds = [rng.integers(0, C, size=(5, 7)) for _ in range(4)]
    total = metrics.ConfusionMatrix()
    for gt, pred in zip(gts, preds):
        assert total.update(gt, pred) is total
    expected = metrics.confusion_matrix(np.stack(gts), np.stack(preds))
    np.testing.assert_array_equal(total.matrix, expected)
    assert total.mean_iou() == metrics.mean_iou(expected)
    np.testing.assert_array_equal(total.iou_per_class(), metrics.iou_per_class(expected))
    total.reset()
    assert total.matrix.sum() == 0


@pytest.mark.parametrize("gt, pred, kwargs, message", [
    (np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8), {}, "same shape"),
    (np.zeros((2, 2), np.float32), np.zeros((2, 2), np.uint8), {}, "integer"),
    (np.zeros((2, 2), np.uint8), np.zeros((2, 2, ), np.float64), {}, "argmax"),
    (np.zeros((0, 4), np.uint8), np.zeros((0, 4), np.uint8), {}, "empty"),
    (np.full((2, 2), C, np.uint8), np.zeros((2, 2), np.uint8), {}, f"value {C} .*outside 0..{C - 1}"),
    (np.zeros((2, 2), np.uint8), np.full((2, 2), C, np.uint8), {}, f"pred holds value {C} \\(4 pixels\\)"),
    (np.zeros((2, 2), np.uint8), np.full((2, 2), IGNORE, np.uint8), {}, "pred holds value 255"),
    (np.zeros((2, 2), np.int8), np.full((2, 2), -1, np.int8), {}, "value -1"),
    (np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8), {"num_classes": 0}, "positive integer"),
    (np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8), {"ignore": 3}, "ignore=3 is a class id"),
])
def test_confusion_matrix_rejects(gt, pred, kwargs, message):
    with pytest.raises(ValueError, match=message):
        metrics.confusion_matrix(gt, pred, **kwargs)


# -------------------------------------------------------------------------------------------------------------
# Scores from a confusion matrix: a hand-computed table
# -------------------------------------------------------------------------------------------------------------

NAN = math.nan


@pytest.mark.parametrize("matrix, iou, dice, accuracy, mean", [
    ([[1, 1], [1, 1]], [1 / 3, 1 / 3], [1 / 2, 1 / 2], 1 / 2, 1 / 3),
    ([[5, 0, 0], [0, 0, 0], [0, 0, 3]], [1, NAN, 1], [1, NAN, 1], 1, 1),            # class 1 absent: skipped
    ([[0, 2], [0, 0]], [0, 0], [0, 0], 0, 0),                                       # predicted, never true: 0
    ([[2, 0, 1], [0, 0, 0], [0, 1, 0]], [2 / 3, 0, 0], [4 / 5, 0, 0], 2 / 4, 2 / 9),
    ([[0, 0], [0, 0]], [NAN, NAN], [NAN, NAN], NAN, NAN),                           # nothing counted
    ([[3.5]], [1], [1], 1, 1),                                                      # weighted counts are fine
])
def test_scores_by_hand(matrix, iou, dice, accuracy, mean):
    np.testing.assert_allclose(metrics.iou_per_class(matrix), iou)
    np.testing.assert_allclose(metrics.dice_per_class(matrix), dice)
    assert_same_float(metrics.pixel_accuracy(matrix), accuracy, 1e-15)
    assert_same_float(metrics.mean_iou(matrix), mean, 1e-15)


def test_dice_is_a_function_of_iou(rng):
    matrix = rng.integers(0, 50, size=(C, C))
    iou = metrics.iou_per_class(matrix)
    np.testing.assert_allclose(metrics.dice_per_class(matrix), 2 * iou / (1 + iou))


@pytest.mark.parametrize("matrix, message", [
    (np.zeros((2, 3)), "square"),
    (np.zeros((0, 0)), "non-empty"),
    (np.zeros(4), "square"),
    ([[1, -1], [0, 0]], "non-negative"),
    ([[1, np.nan], [0, 0]], "finite"),
    (np.array([["a"]]), "counts"),
])
def test_scores_reject_a_bad_matrix(matrix, message):
    for function in (metrics.iou_per_class, metrics.dice_per_class, metrics.pixel_accuracy, metrics.mean_iou):
        with pytest.raises(ValueError, match=message):
            function(matrix)


# -------------------------------------------------------------------------------------------------------------
# The official evaluator, called on PNG files
# -------------------------------------------------------------------------------------------------------------

_RUNS = itertools.count()


def official_category_scores(tmp_path, gts: list[np.ndarray], preds: list[np.ndarray]) -> tuple[dict, float]:
    """Run ``evaluateImgLists`` of cityscapesscripts on label-id PNGs; ``preds`` are label ids too.

    Its module-level ``args`` is copied and made quiet; instance-level scores (which need instanceIds PNGs)
    and the JSON export (written under CITYSCAPES_DATASET) are switched off; they do not touch category IoU.
    """
    directory = tmp_path / f"run{next(_RUNS)}"
    directory.mkdir()
    args = copy.copy(official.args)
    args.quiet, args.JSONOutput, args.evalInstLevelScore, args.evalPixelAccuracy = True, False, False, False
    gt_files, pred_files = [], []
    for index, (gt, pred) in enumerate(zip(gts, preds)):
        gt_files.append(str(directory / f"frame{index}_gtFine_labelIds.png"))
        pred_files.append(str(directory / f"frame{index}_pred.png"))
        Image.fromarray(gt.astype(np.uint8)).save(gt_files[-1])
        Image.fromarray(pred.astype(np.uint8)).save(pred_files[-1])
    result = official.evaluateImgLists(pred_files, gt_files, args)
    return result["categoryScores"], result["averageScoreCategories"]


def check_against_official(tmp_path, gts, pred_categories):
    expected, expected_mean = official_category_scores(
        tmp_path, gts, [metrics.categories_to_eval_label_ids(pred) for pred in pred_categories])
    scores, mean = metrics.cityscapes_category_iou(gts, pred_categories)
    assert_same_scores(scores, expected)
    assert_same_float(mean, expected_mean)
    return scores, mean


def random_frames(rng: np.random.Generator, num_frames: int, shape=(16, 32)):
    """Ground truths drawn from a random subset of the label ids (ignored ones included), and predictions
    restricted to a random subset of categories: partly the true category (a decent model), partly noise."""
    label_pool = rng.choice(OFFICIAL_ALL_IDS, size=rng.integers(1, len(OFFICIAL_ALL_IDS) + 1), replace=False)
    category_pool = rng.choice(C, size=rng.integers(1, C + 1), replace=False)
    gts, preds = [], []
    for _ in range(num_frames):
        gt = rng.choice(label_pool, size=shape).astype(np.uint8)
        noise = rng.choice(category_pool, size=shape)
        pred = np.where(rng.random(shape) < rng.random(), labels.ID_TO_CATEGORY_LUT[gt], noise)
        gts.append(gt)
        preds.append(np.where(np.isin(pred, category_pool), pred, noise).astype(np.uint8))
    return gts, preds


@pytest.mark.parametrize("seed", range(30))
def test_category_iou_equals_the_official_evaluator_on_random_sets(tmp_path, seed):
    rng = np.random.default_rng([20261121, seed])
    gts, preds = random_frames(rng, num_frames=1 + seed % 4)
    scores, mean = check_against_official(tmp_path, gts, preds)
    assert math.isnan(scores["void"])


def test_category_iou_by_hand(tmp_path):
    # flat: road + sidewalk both predicted flat (TP 2), flat predicted on car (FP 1) -> 2/3.
    # vehicle: car predicted flat (FN 1); vehicle predicted on parking and unlabeled (ignored: free) -> 0.
    # sky: 1. construction, object, nature, human: absent and never predicted -> NaN. void: always NaN.
    gt = np.array([[ID["road"], ID["sidewalk"], ID["parking"]],
                   [ID["car"], ID["unlabeled"], ID["sky"]]], dtype=np.uint8)
    pred = np.array([[CAT["flat"], CAT["flat"], CAT["vehicle"]],
                     [CAT["flat"], CAT["vehicle"], CAT["sky"]]], dtype=np.uint8)
    scores, mean = check_against_official(tmp_path, [gt], [pred])
    expected = dict.fromkeys(labels.CATEGORY_NAMES, NAN) | {"flat": 2 / 3, "vehicle": 0.0, "sky": 1.0}
    assert_same_scores(scores, expected, 1e-15)
    assert mean == pytest.approx((2 / 3 + 0 + 1) / 3)


def test_void_ground_truth_costs_nothing_and_void_predictions_are_misses(tmp_path):
    ignored = np.array(OFFICIAL_IGNORED_IDS, dtype=np.uint8)[None, :]
    everything_ignored, _ = check_against_official(tmp_path, [ignored], [np.full(ignored.shape, CAT["flat"], np.uint8)])
    assert all(math.isnan(score) for score in everything_ignored.values())
    assert math.isnan(metrics.cityscapes_category_iou(ignored, np.zeros_like(ignored))[1])

    gt = np.array([[ID["road"], ID["car"], ID["sky"]]], dtype=np.uint8)
    scores, mean = check_against_official(tmp_path, [gt], [np.full(gt.shape, CAT["void"], np.uint8)])
    assert scores["flat"] == scores["vehicle"] == scores["sky"] == 0.0 and mean == 0.0
    assert math.isnan(scores["void"])


def test_a_category_absent_from_the_ground_truth_is_zero_if_predicted_on_evaluated_pixels(tmp_path):
    gt = np.array([[ID["road"], ID["road"], ID["parking"]]], dtype=np.uint8)
    on_road = np.array([[CAT["flat"], CAT["human"], CAT["human"]]], dtype=np.uint8)
    scores, mean = check_against_official(tmp_path, [gt], [on_road])
    assert scores["human"] == 0.0 and scores["flat"] == 0.5 and mean == 0.25  # human's 0 counts in the mean
    only_on_parking = np.array([[CAT["flat"], CAT["flat"], CAT["human"]]], dtype=np.uint8)
    scores, mean = check_against_official(tmp_path, [gt], [only_on_parking])
    assert math.isnan(scores["human"]) and scores["flat"] == 1.0 and mean == 1.0


def test_accumulating_over_frames_is_not_averaging_frames(tmp_path):
    gts, preds = random_frames(np.random.default_rng(7), num_frames=3)
    _, mean_over_set = check_against_official(tmp_path, gts, preds)
    accumulated = metrics.CategoryIoU()
    for gt, pred in zip(gts, preds):
        accumulated.update(gt, pred)
    assert accumulated.result()[1] == mean_over_set
    assert metrics.cityscapes_category_iou(iter(gts), (pred for pred in preds))[1] == mean_over_set  # iterables
    assert metrics.cityscapes_category_iou(np.stack(gts), np.stack(preds))[1] == mean_over_set      # (N, H, W)
    assert metrics.CategoryIoU().update(np.stack(gts), np.stack(preds)).result()[1] == mean_over_set
    per_frame = [metrics.cityscapes_category_iou(gt, pred)[1] for gt, pred in zip(gts, preds)]
    assert mean_over_set != pytest.approx(np.mean(per_frame), abs=1e-9)
    accumulated.reset()
    assert accumulated.matrix.sum() == 0


def test_any_evaluated_label_can_represent_its_category(tmp_path):
    """Writing each predicted pixel as a *random* evaluated label of its category gives the same category scores."""
    rng = np.random.default_rng(11)
    evaluated = {category: [label.id for label in official_labels.category2labels[name] if not label.ignoreInEval]
                 for category, name in enumerate(labels.CATEGORY_NAMES)}
    evaluated[CAT["void"]] = [label.id for label in official_labels.category2labels["void"]]  # all ignored
    gts, preds = random_frames(rng, num_frames=2)
    reference, reference_mean = official_category_scores(
        tmp_path, gts, [metrics.categories_to_eval_label_ids(pred) for pred in preds])
    shuffled = []
    for pred in preds:
        label_ids = np.zeros_like(pred)
        for category, ids in evaluated.items():
            where = pred == category
            label_ids[where] = rng.choice(ids, size=int(where.sum()))
        shuffled.append(label_ids)
    scores, mean = official_category_scores(tmp_path, gts, shuffled)
    assert_same_scores(scores, reference, 0)
    assert mean == reference_mean


def test_official_quirk_an_ignored_label_does_not_represent_its_category(tmp_path):
    gt = np.array([[ID["road"], ID["sidewalk"]]], dtype=np.uint8)
    as_road, _ = official_category_scores(tmp_path, [gt], [np.full(gt.shape, ID["road"], np.uint8)])
    as_parking, _ = official_category_scores(tmp_path, [gt], [np.full(gt.shape, ID["parking"], np.uint8)])
    assert as_road["flat"] == 1.0 and as_parking["flat"] == 0.0


def test_eval_tables_agree_with_the_official_labels():
    for label in official_labels.labels:
        if label.id >= 0:
            expected = IGNORE if label.ignoreInEval else label.categoryId
            assert metrics.EVAL_CATEGORY_LUT[label.id] == expected, label.name
    for category, label_id in enumerate(metrics.CATEGORY_TO_EVAL_LABEL_ID):
        label = official_labels.id2label[int(label_id)]
        assert label.categoryId == category
        assert not label.ignoreInEval or category not in labels.EVALUATED_CATEGORY_IDS


@pytest.mark.parametrize("gt, pred, message", [
    ([], [], "no frames"),
    ([np.zeros((2, 2), np.uint8)], [], "1 ground-truth frames but 0"),
    (np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8), "paired"),
    (np.zeros((2, 2, 2, 2), np.uint8), np.zeros((2, 2, 2, 2), np.uint8), "stack"),
    (np.full((2, 2), IGNORE, np.uint8), np.zeros((2, 2), np.uint8), "label id 255"),
    (np.zeros((2, 2), np.uint8), np.full((2, 2), IGNORE, np.uint8), "outside 0..7"),
    (np.zeros((2, 2), np.uint8), np.full((2, 2), C, np.uint8), "outside 0..7"),
])
def test_category_iou_rejects(gt, pred, message):
    with pytest.raises(ValueError, match=message):
        metrics.cityscapes_category_iou(gt, pred)


def test_category_accumulator_rejects_mismatched_stacks():
    with pytest.raises(ValueError, match="same shape"):
        metrics.CategoryIoU().update(np.zeros((2, 3, 3), np.uint8), np.zeros((1, 3, 3), np.uint8))


# -------------------------------------------------------------------------------------------------------------
# Keras: the streaming MeanIoU
# -------------------------------------------------------------------------------------------------------------

def random_batch(rng: np.random.Generator, shape=(3, 8, 12)):
    """``y_true`` with IGNORE patches and classes ``0..C-3``; probabilities of classes ``0..C-2`` (so class C-2
    is predicted but never true: IoU 0, and class C-1 appears nowhere: NaN), peaked on the truth half the time."""
    y_true = rng.integers(0, C - 2, size=shape).astype(np.uint8)
    y_true[rng.random(shape) < 0.1] = IGNORE
    hint = np.eye(C + 1)[np.minimum(y_true, C)][..., :C] * (rng.random(shape) < 0.5)[..., None]
    logits = rng.normal(size=(*shape, C)) + 3 * hint
    logits[..., C - 1] = -np.inf
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return y_true, probabilities.astype(np.float32)


def test_keras_mean_iou_equals_numpy_and_keras_over_batches(rng):
    ours = keras_metrics.MeanIoU()
    theirs = keras.metrics.MeanIoU(num_classes=C, ignore_class=IGNORE)
    total = metrics.ConfusionMatrix()
    for _ in range(4):
        y_true, y_pred = random_batch(rng)
        ours.update_state(y_true, y_pred)
        theirs.update_state(y_true, y_pred.argmax(-1))
        total.update(y_true, y_pred.argmax(-1))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours.total), total.matrix)
    iou = total.iou_per_class()
    assert iou[C - 2] == 0 and np.isnan(iou[C - 1]) and np.isnan(iou).sum() == 1  # NaN: skipped by all three
    assert float(ours.result()) == pytest.approx(total.mean_iou(), abs=1e-6)
    assert float(theirs.result()) == pytest.approx(total.mean_iou(), abs=1e-6)  # Keras skips empty classes too
    ours.reset_state()
    assert math.isnan(float(ours.result()))


def test_keras_mean_iou_sample_weight_and_trailing_axis(rng):
    y_true, y_pred = random_batch(rng)
    weights = np.array([0, 1, 2])
    ours = keras_metrics.MeanIoU()
    ours.update_state(y_true[..., None], y_pred, sample_weight=weights)
    expected = sum(w * metrics.confusion_matrix(t, p.argmax(-1)) for w, t, p in zip(weights, y_true, y_pred))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours.total), expected)
    assert float(ours.result()) == pytest.approx(metrics.mean_iou(expected), abs=1e-6)


def test_keras_mean_iou_rejects_a_wrong_class_axis():
    with pytest.raises(ValueError, match="class axis of 8"):
        keras_metrics.MeanIoU().update_state(np.zeros((1, 2, 2)), np.zeros((1, 2, 2, C + 1), np.float32))
    with pytest.raises(ValueError, match="ignore=0 is a class id"):
        keras_metrics.MeanIoU(ignore=0)


def test_keras_mean_iou_serializes():
    metric = keras_metrics.MeanIoU(num_classes=3, ignore=9, name="iou3")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert type(clone) is keras_metrics.MeanIoU
    assert (clone.num_classes, clone.ignore, clone.name) == (3, 9, "iou3")
    assert keras.saving.get_registered_object("seglib>MeanIoU") is keras_metrics.MeanIoU


def tiny_model() -> keras.Model:
    inputs = keras.Input((8, 16, 3))
    outputs = keras.layers.Conv2D(C, 1, activation="softmax")(inputs)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_keras_mean_iou_in_fit_and_evaluate(rng, tmp_path, jit_compile):
    keras.utils.set_random_seed(1)
    x = rng.random((6, 8, 16, 3)).astype(np.float32)
    y, _ = random_batch(rng, shape=(6, 8, 16))
    model = tiny_model()
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=IGNORE),
                  metrics=[keras_metrics.MeanIoU()], jit_compile=jit_compile)
    history = model.fit(x, y, batch_size=6, epochs=1, verbose=0, shuffle=False)
    assert 0.0 <= history.history["mean_iou"][0] <= 1.0
    evaluated = model.evaluate(x, y, batch_size=2, verbose=0, return_dict=True)  # 3 batches, accumulated
    expected = metrics.mean_iou(metrics.confusion_matrix(y, model.predict(x, verbose=0).argmax(-1)))
    assert evaluated["mean_iou"] == pytest.approx(expected, abs=1e-6)
    if not jit_compile:
        model.save(tmp_path / "model.keras")
        restored = keras.saving.load_model(tmp_path / "model.keras")
        again = restored.evaluate(x, y, batch_size=2, verbose=0, return_dict=True)["mean_iou"]
        assert again == pytest.approx(expected, abs=1e-6)


# -------------------------------------------------------------------------------------------------------------
# The pitfall: keras.metrics.MeanIoU given probabilities
# -------------------------------------------------------------------------------------------------------------

ONE_HOT_3X3 = np.eye(2)[GT_3X3][None].astype(np.float32)                       # (1, 3, 3, 2) labels
PROBABILITIES_3X3 = np.where(np.eye(2)[PRED_3X3] > 0, 0.9, 0.1)[None].astype(np.float32)  # argmax = PRED_3X3
TRUE_MEAN_IOU_3X3 = (6 / 8 + 1 / 3) / 2                                             # by hand, see above


def test_keras_mean_iou_given_probabilities_is_a_constant():
    wrong = keras.metrics.MeanIoU(num_classes=2)
    wrong.update_state(ONE_HOT_3X3, PROBABILITIES_3X3)
    # probabilities cast to int are all 0; labels are 0/1: cm = [[9, 0], [9, 0]] -> IoU [1/2, 0]
    assert float(wrong.result()) == pytest.approx((2 - 1) / (2 * 2))
    assert float(wrong.result()) != pytest.approx(TRUE_MEAN_IOU_3X3, abs=0.05)
    perfect = keras.metrics.MeanIoU(num_classes=2)
    perfect.update_state(ONE_HOT_3X3, np.where(ONE_HOT_3X3 > 0, 0.9, 0.1))
    assert float(perfect.result()) == float(wrong.result())  # a perfect model scores the same


def test_keras_mean_iou_given_probabilities_and_sparse_labels_fails():
    with pytest.raises(Exception, match="(?i)incompatible shapes"):
        keras.metrics.MeanIoU(num_classes=2).update_state(GT_3X3[None], PROBABILITIES_3X3)


@pytest.mark.parametrize("make, y_true, y_pred", [
    (lambda: keras.metrics.MeanIoU(num_classes=2, sparse_y_pred=False), GT_3X3[None], PROBABILITIES_3X3),
    (lambda: keras.metrics.MeanIoU(num_classes=2, sparse_y_true=False, sparse_y_pred=False), ONE_HOT_3X3,
     PROBABILITIES_3X3),
    (lambda: keras.metrics.MeanIoU(num_classes=2), GT_3X3[None], PROBABILITIES_3X3.argmax(-1)),
    (lambda: keras_metrics.MeanIoU(num_classes=2), GT_3X3[None], PROBABILITIES_3X3),
])
def test_argmax_fixes_it(make, y_true, y_pred):
    metric = make()
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == pytest.approx(TRUE_MEAN_IOU_3X3, abs=1e-6)


# ---------------------------------------------------------------------------------------------------------
# Keras BinaryDice against losses.binary_dice_score
# ---------------------------------------------------------------------------------------------------------

def test_binary_dice_by_hand():
    # truth 1 1 0 0 IGNORE, prediction p>0.5 at 1 0 1 0 (1 on IGNORE): |T&P| = 1, |T| = 2, |P| = 2 -> 2/4
    y_true = np.array([[[1, 1, 0, 0, labels.IGNORE]]], np.uint8)
    y_pred = np.array([[[0.9, 0.2, 0.7, 0.1, 0.99]]], np.float32)[..., None]
    metric = keras_metrics.BinaryDice()
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == pytest.approx(0.5)


def test_binary_dice_streams_like_the_numpy_score_of_all_batches(rng):
    from seglib import losses

    metric = keras_metrics.BinaryDice(threshold=0.3)
    truths, predictions = [], []
    for _ in range(4):
        y_true = rng.integers(0, 2, (2, 6, 7)).astype(np.uint8)
        y_true[rng.random(y_true.shape) < 0.1] = labels.IGNORE
        y_pred = rng.random((2, 6, 7, 1)).astype(np.float32)
        metric.update_state(y_true, y_pred)
        truths.append(y_true)
        predictions.append((y_pred[..., 0] > 0.3).astype(np.uint8))
    expected = losses.binary_dice_score(np.concatenate(truths), np.concatenate(predictions))
    assert float(metric.result()) == pytest.approx(expected, abs=1e-7)
    metric.reset_state()
    metric.update_state(np.zeros((1, 3, 3), np.uint8), np.zeros((1, 3, 3), np.float32))
    assert float(metric.result()) == 1.0  # nothing to find, nothing found: binary_dice_score's empty_value


@pytest.mark.parametrize("y_true, y_pred, message", [
    (np.zeros((1, 4, 4)), np.zeros((1, 4, 4, 8)), "needs MeanIoU"),
    (np.zeros((4, 4)), np.zeros((4, 4)), "must be \\(B, H, W\\)"),
])
def test_binary_dice_rejects_wrong_shapes(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        keras_metrics.BinaryDice().update_state(y_true, y_pred)


def test_binary_dice_rejects_a_bad_threshold():
    with pytest.raises(ValueError, match="threshold"):
        keras_metrics.BinaryDice(threshold=1.0)
