"""seglib.losses: hand-computed values, numpy core == Keras classes == Keras's own cross-entropy, IGNORE pixels
inert (value and gradient), training and saving with each loss, and ValueErrors for bad input."""

import math

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seglib import labels, losses

IGNORE = labels.IGNORE

# A 1 x 1 x 2 batch, 2 classes: pixel 0 predicts [0.8, 0.2] and is class 0, pixel 1 predicts [0.4, 0.6] and is
# class 1. A third pixel, confidently wrong, is IGNORE: it must change nothing.
PRED_2PX = np.array([[[[0.8, 0.2], [0.4, 0.6]]]], np.float32)
TRUE_2PX = np.array([[[0, 1]]], np.uint8)
PRED_3PX = np.array([[[[0.8, 0.2], [0.4, 0.6], [0.01, 0.99]]]], np.float32)
TRUE_3PX = np.array([[[0, 1, IGNORE]]], np.uint8)
# cross-entropy = (-ln 0.8 - ln 0.6) / 2 = (0.22314 + 0.51083) / 2
CE_2PX = (-math.log(0.8) - math.log(0.6)) / 2
# dice, smooth 1: class 0: I = 0.8, P = 0.8 + 0.4 = 1.2, G = 1 -> (1.6 + 1) / (2.2 + 1) = 0.8125
#                 class 1: I = 0.6, P = 0.2 + 0.6 = 0.8, G = 1 -> (1.2 + 1) / (1.8 + 1) = 0.785714...
DICE_2PX = 1 - (2.6 / 3.2 + 2.2 / 2.8) / 2  # = 0.200893
# dice, smooth ~0: (1.6 / 2.2 + 1.2 / 1.8) / 2 = (0.72727 + 0.66667) / 2 = 0.69697
DICE_2PX_UNSMOOTHED = 1 - (1.6 / 2.2 + 1.2 / 1.8) / 2  # = 0.303030

# Binary: p = 0.9, 0.2, 0.6 on targets 1, 0, 1, and an IGNORE pixel predicted 0.7.
# I = 0.9 + 0.6 = 1.5, P = 1.7, G = 2 -> 1 - (3 + 1) / (3.7 + 1) = 1 - 4 / 4.7
PRED_BINARY = np.array([[[[0.9], [0.2], [0.6], [0.7]]]], np.float32)
TRUE_BINARY = np.array([[[1, 0, 1, IGNORE]]], np.uint8)
BINARY_DICE = 1 - 4 / 4.7  # = 0.148936

KERAS_FOR = {  # numpy core function -> the Keras class that mirrors it
    losses.cross_entropy: losses.CrossEntropyLoss,
    losses.dice_loss: losses.DiceLoss,
    losses.combined_loss: losses.CombinedLoss,
    losses.binary_dice_loss: losses.BinaryDiceLoss,
    losses.binary_combined_loss: losses.BinaryCombinedLoss,
}
MULTICLASS = [losses.cross_entropy, losses.dice_loss, losses.combined_loss]


def keras_value(loss: keras.losses.Loss, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(keras.ops.convert_to_numpy(loss(y_true, y_pred)))


def both(function, y_true, y_pred, **kwargs) -> tuple[float, float]:
    """The numpy core's value and its Keras class's value on the same input."""
    return function(y_true, y_pred, **kwargs), keras_value(KERAS_FOR[function](**kwargs), y_true, y_pred)


def softmax_batch(rng: np.random.Generator, shape: tuple[int, ...], sharpness: float = 2.0) -> np.ndarray:
    logits = sharpness * rng.normal(size=shape)
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    return (probabilities / probabilities.sum(-1, keepdims=True)).astype(np.float32)


def targets_with_ignore(rng: np.random.Generator, shape: tuple[int, ...], classes: int,
                        ignore_fraction: float = 0.3) -> np.ndarray:
    targets = rng.integers(0, classes, shape).astype(np.uint8)
    targets[rng.random(shape) < ignore_fraction] = IGNORE
    return targets


@st.composite
def batches(draw, binary: bool = False):
    """A random ``(y_true, y_pred)`` batch: softmax probabilities (sigmoid for binary) and targets with IGNORE."""
    batch, height, width = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    classes = 2 if binary else draw(st.integers(2, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    y_true = targets_with_ignore(rng, (batch, height, width), classes, draw(st.sampled_from([0.0, 0.3, 1.0])))
    sharpness = draw(st.floats(0.1, 5.0))
    if binary:
        y_pred = (1 / (1 + np.exp(-sharpness * rng.normal(size=(batch, height, width, 1))))).astype(np.float32)
    else:
        y_pred = softmax_batch(rng, (batch, height, width, classes), sharpness)
    return y_true, y_pred


# On JAX each new shape compiles its own kernels: fewer random batches keep the second backend's run short.
FAST = settings(max_examples=25 if keras.backend.backend() == "tensorflow" else 6, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------------------------------------
# Values by hand
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("function, kwargs, expected", [
    (losses.cross_entropy, {}, CE_2PX),
    (losses.dice_loss, {}, DICE_2PX),
    (losses.dice_loss, {"smooth": 1e-9}, DICE_2PX_UNSMOOTHED),
    (losses.combined_loss, {}, CE_2PX + DICE_2PX),                      # 0.366985 + 0.200893 = 0.567877
    (losses.combined_loss, {"dice_weight": 3.0}, CE_2PX + 3 * DICE_2PX),  # 0.366985 + 0.602679 = 0.969663
])
@pytest.mark.parametrize("y_true, y_pred", [(TRUE_2PX, PRED_2PX), (TRUE_3PX, PRED_3PX)], ids=["2px", "2px+ignore"])
def test_multiclass_losses_by_hand(function, kwargs, expected, y_true, y_pred):
    numpy_value, keras_loss_value = both(function, y_true, y_pred, **kwargs)
    assert numpy_value == pytest.approx(expected, rel=1e-6)
    assert keras_loss_value == pytest.approx(expected, rel=1e-5)


def test_cross_entropy_of_one_pixel_by_hand():
    # 1 x 1 x 1 batch, 2 classes: -ln 0.25 = 1.386294
    numpy_value, keras_loss_value = both(losses.cross_entropy, np.array([[[1]]]), np.array([[[[0.75, 0.25]]]]))
    assert numpy_value == pytest.approx(math.log(4)) and keras_loss_value == pytest.approx(math.log(4), rel=1e-6)


@pytest.mark.parametrize("y_pred", [PRED_BINARY, PRED_BINARY[..., 0]], ids=["BHW1", "BHW"])
def test_binary_dice_loss_by_hand(y_pred):
    numpy_value, keras_loss_value = both(losses.binary_dice_loss, TRUE_BINARY, y_pred)
    assert numpy_value == pytest.approx(BINARY_DICE) and keras_loss_value == pytest.approx(BINARY_DICE, rel=1e-6)


# binary cross-entropy of the same pixels: -(ln 0.9 + ln 0.8 + ln 0.6) / 3 (the IGNORE pixel left out)
BINARY_CE = -(math.log(0.9) + math.log(0.8) + math.log(0.6)) / 3  # = 0.279...


def test_binary_cross_entropy_and_combined_loss_by_hand():
    assert losses.binary_cross_entropy(TRUE_BINARY, PRED_BINARY) == pytest.approx(BINARY_CE)
    numpy_value, keras_loss_value = both(losses.binary_combined_loss, TRUE_BINARY, PRED_BINARY, dice_weight=3.0)
    assert numpy_value == pytest.approx(BINARY_CE + 3 * BINARY_DICE)
    assert keras_loss_value == pytest.approx(BINARY_CE + 3 * BINARY_DICE, rel=1e-5)


def test_binary_cross_entropy_equals_keras_on_the_non_ignored_pixels(rng):
    y_true = rng.integers(0, 2, (2, 5, 6)).astype(np.uint8)
    y_true[rng.random(y_true.shape) < 0.2] = IGNORE
    y_pred = rng.uniform(0.01, 0.99, (2, 5, 6, 1)).astype(np.float32)
    valid = y_true != IGNORE
    expected = float(keras.losses.BinaryCrossentropy()(y_true[valid].astype(np.float32)[:, None],
                                                         y_pred[..., 0][valid][:, None]))
    assert losses.binary_cross_entropy(y_true, y_pred) == pytest.approx(expected, rel=1e-5)
    assert keras_value(losses.BinaryCombinedLoss(dice_weight=0.0), y_true, y_pred) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("y_true, y_pred, expected", [
    ([[1, 1, 0], [0, 0, 0]], [[1, 0, 0], [1, 0, 0]], 0.5),          # |T & P| = 1, |T| = 2, |P| = 2: 2 / 4
    ([[1, 1, IGNORE]], [[1, 0, 1]], 2 / 3),                          # the IGNORE pixel's prediction is not counted
    ([[1, 1], [1, 1]], np.ones((2, 2), bool), 1.0),
    ([[1, 0]], [[0, 1]], 0.0),
    ([[0, 0, IGNORE]], [[0, 0, 1]], 1.0),                            # both empty: nothing to find, nothing found
])
def test_binary_dice_score_by_hand(y_true, y_pred, expected):
    assert losses.binary_dice_score(np.array(y_true), np.array(y_pred)) == pytest.approx(expected)


def test_binary_dice_score_empty_value_is_a_choice():
    assert math.isnan(losses.binary_dice_score(np.zeros((2, 2), int), np.zeros((2, 2), int), empty_value=math.nan))

# ---------------------------------------------------------------------------------------------------------
# numpy core == Keras classes == Keras's own cross-entropy
# ---------------------------------------------------------------------------------------------------------


@FAST
@given(batches())
def test_cross_entropy_equals_keras_sparse_categorical_crossentropy_with_ignore_class(batch):
    # Keras zeroes the ignored pixels' losses and masks them, so its "sum_over_batch_size" divides by the number
    # of *non-ignored* pixels of the batch (0 if there are none) - the same mean as ours.
    y_true, y_pred = batch
    reference = keras_value(keras.losses.SparseCategoricalCrossentropy(ignore_class=IGNORE), y_true, y_pred)
    numpy_value, keras_loss_value = both(losses.cross_entropy, y_true, y_pred)
    assert numpy_value == pytest.approx(reference, rel=1e-5, abs=1e-6)
    assert keras_loss_value == pytest.approx(reference, rel=1e-5, abs=1e-6)


@FAST
@given(batches(), st.sampled_from([losses.dice_loss, losses.combined_loss]), st.sampled_from([1e-6, 1.0, 10.0]))
def test_keras_dice_losses_equal_the_numpy_core(batch, function, smooth):
    numpy_value, keras_loss_value = both(function, *batch, smooth=smooth)
    assert keras_loss_value == pytest.approx(numpy_value, rel=1e-5, abs=1e-6)


@FAST
@given(batches(binary=True), st.sampled_from([1e-6, 1.0]))
def test_keras_binary_dice_equals_the_numpy_core(batch, smooth):
    numpy_value, keras_loss_value = both(losses.binary_dice_loss, *batch, smooth=smooth)
    assert keras_loss_value == pytest.approx(numpy_value, rel=1e-5, abs=1e-6)


def test_dice_equals_the_mean_of_keras_per_class_dice(rng):
    # keras.losses.dice is 1 - 2 sum(g p) / (sum g + sum p + 1e-7) with no IGNORE: one class at a time, on the
    # non-ignored pixels, and averaged, it is our loss with (almost) no smoothing.
    y_true, y_pred = targets_with_ignore(rng, (2, 6, 7), 4), softmax_batch(rng, (2, 6, 7, 4))
    valid = y_true != IGNORE
    per_class = [float(keras.losses.dice((y_true[valid] == c).astype(np.float32), y_pred[valid][:, c]))
                 for c in range(4)]
    assert losses.dice_loss(y_true, y_pred, smooth=1e-9) == pytest.approx(np.mean(per_class), rel=1e-5)


@pytest.mark.parametrize("dice_weight", [0.0, 1.0, 3.0])
def test_combined_is_cross_entropy_plus_weighted_dice(rng, dice_weight):
    y_true, y_pred = targets_with_ignore(rng, (2, 5, 4), 3), softmax_batch(rng, (2, 5, 4, 3))
    expected = losses.cross_entropy(y_true, y_pred) + dice_weight * losses.dice_loss(y_true, y_pred)
    assert losses.combined_loss(y_true, y_pred, dice_weight=dice_weight) == expected
    keras_expected = (keras_value(losses.CrossEntropyLoss(), y_true, y_pred)
                      + dice_weight * keras_value(losses.DiceLoss(), y_true, y_pred))
    assert keras_value(losses.CombinedLoss(dice_weight), y_true, y_pred) == pytest.approx(keras_expected, rel=1e-6)


def test_a_batch_without_targets_costs_nothing(rng):
    # Like Keras's ignore_class (divide_no_nan), an all-IGNORE batch gives 0, not NaN.
    y_true, y_pred = np.full((1, 3, 3), IGNORE, np.uint8), softmax_batch(rng, (1, 3, 3, 4))
    for function in MULTICLASS:
        assert both(function, y_true, y_pred) == (0.0, 0.0)
    assert both(losses.binary_dice_loss, y_true, y_pred[..., :1]) == (0.0, 0.0)
    assert both(losses.binary_combined_loss, y_true, y_pred[..., :1]) == (0.0, 0.0)

# ---------------------------------------------------------------------------------------------------------
# IGNORE pixels are inert
# ---------------------------------------------------------------------------------------------------------


def _case(function, rng):
    """Targets with IGNORE, a prediction, and a second prediction that differs only on the ignored pixels."""
    binary = function in (losses.binary_dice_loss, losses.binary_combined_loss)
    classes = 2 if binary else 5
    y_true = targets_with_ignore(rng, (2, 6, 5), classes, ignore_fraction=0.4)
    if binary:
        y_pred, other = rng.random((2, 6, 5, 1), np.float32), rng.random((2, 6, 5, 1), np.float32)
    else:
        y_pred, other = softmax_batch(rng, (2, 6, 5, classes)), softmax_batch(rng, (2, 6, 5, classes), 8.0)
    ignored = (y_true == IGNORE)[..., np.newaxis]
    return y_true, y_pred, np.where(ignored, other, y_pred), ignored


@pytest.mark.parametrize("function", list(KERAS_FOR), ids=lambda f: f.__name__)
def test_predictions_on_ignored_pixels_change_nothing(function, rng):
    y_true, y_pred, changed, _ = _case(function, rng)
    assert function(y_true, y_pred) == function(y_true, changed)
    loss = KERAS_FOR[function]()
    assert keras_value(loss, y_true, y_pred) == keras_value(loss, y_true, changed)


def _gradient(loss, y_true, y_pred) -> np.ndarray:
    """d loss / d y_pred, with the backend's own differentiation (GradientTape, jax.grad, torch autograd)."""
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(lambda prediction: loss(y_true, prediction))(jax.numpy.asarray(y_pred)))
    if keras.backend.backend() == "torch":
        import torch

        prediction = torch.tensor(y_pred, requires_grad=True)
        loss(y_true, prediction).backward()
        return prediction.grad.numpy()
    import tensorflow as tf

    prediction = tf.constant(y_pred)
    with tf.GradientTape() as tape:
        tape.watch(prediction)
        value = loss(y_true, prediction)
    return tape.gradient(value, prediction).numpy()


@pytest.mark.parametrize("function", list(KERAS_FOR), ids=lambda f: f.__name__)
def test_ignored_pixels_get_zero_gradient(function, rng):
    y_true, y_pred, _, ignored = _case(function, rng)
    gradient = _gradient(KERAS_FOR[function](), y_true, y_pred)
    assert np.all(gradient[np.broadcast_to(ignored, gradient.shape)] == 0)
    assert np.any(gradient[np.broadcast_to(~ignored, gradient.shape)] != 0)

# ---------------------------------------------------------------------------------------------------------
# Perfect predictions and degrading ones
# ---------------------------------------------------------------------------------------------------------

MIXES = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]  # prediction = (1 - a) * one-hot target + a * uniform


@pytest.mark.parametrize("function", MULTICLASS, ids=lambda f: f.__name__)
def test_losses_grow_as_the_prediction_degrades(function, rng):
    classes = 4
    y_true = targets_with_ignore(rng, (2, 5, 5), classes)
    one_hot = np.eye(classes, dtype=np.float32)[np.where(y_true == IGNORE, 0, y_true)]
    values = [both(function, y_true, (1 - a) * one_hot + a / classes) for a in MIXES]
    for numpy_values in zip(*values):
        assert all(later > earlier for earlier, later in zip(numpy_values, numpy_values[1:]))
    if function is losses.dice_loss:
        assert values[0] == (0.0, 0.0)  # perfect: every class's ratio is exactly 1
    assert values[0][0] == pytest.approx(0.0, abs=1e-6) and values[0][1] == pytest.approx(0.0, abs=1e-6)


def test_binary_dice_grows_as_the_prediction_degrades(rng):
    y_true = targets_with_ignore(rng, (2, 5, 5), 2)
    truth = (y_true == 1).astype(np.float32)[..., np.newaxis]
    values = [both(losses.binary_dice_loss, y_true, (1 - a) * truth + a * 0.5) for a in MIXES]
    assert values[0] == (0.0, 0.0)
    for numpy_values in zip(*values):
        assert all(later > earlier for earlier, later in zip(numpy_values, numpy_values[1:]))

# ---------------------------------------------------------------------------------------------------------
# In a model: compile, fit, save, load
# ---------------------------------------------------------------------------------------------------------


def _tiny_model(classes: int) -> keras.Model:
    inputs = keras.Input((8, 8, 3))
    activation = "sigmoid" if classes == 1 else "softmax"
    return keras.Model(inputs, keras.layers.Conv2D(classes, 3, padding="same", activation=activation)(inputs))


@pytest.mark.parametrize("loss, function", [
    (losses.CrossEntropyLoss(), losses.cross_entropy),
    (losses.DiceLoss(smooth=0.5), lambda y_true, y_pred: losses.dice_loss(y_true, y_pred, smooth=0.5)),
    (losses.CombinedLoss(dice_weight=3.0), lambda y_true, y_pred: losses.combined_loss(y_true, y_pred, 3.0)),
    (losses.BinaryDiceLoss(), losses.binary_dice_loss),
    (losses.BinaryCombinedLoss(2.0), lambda y_true, y_pred: losses.binary_combined_loss(y_true, y_pred, 2.0)),
], ids=["cross_entropy", "dice", "combined", "binary_dice", "binary_combined"])
def test_fit_save_and_load(loss, function, rng, tmp_path):
    classes = 1 if isinstance(loss, (losses.BinaryDiceLoss, losses.BinaryCombinedLoss)) else 3
    images = rng.random((4, 8, 8, 3), np.float32)
    targets = targets_with_ignore(rng, (4, 8, 8), max(classes, 2))
    model = _tiny_model(classes)
    model.compile(optimizer="adam", loss=loss)
    history = model.fit(images, targets, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    # evaluate (graph mode) equals the numpy core on the model's own prediction
    evaluated = model.evaluate(images, targets, batch_size=4, verbose=0)
    assert evaluated == pytest.approx(function(targets, model.predict(images, verbose=0)), rel=1e-5)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(loaded.loss) is type(loss) and loaded.loss.get_config() == loss.get_config()
    assert loaded.evaluate(images, targets, batch_size=4, verbose=0) == pytest.approx(evaluated, rel=1e-6)


def test_keras_ignore_class_reduces_the_same_way_inside_fit(rng):
    # Inside model.evaluate too (graph mode), Keras's ignore_class divides by the non-ignored pixel count.
    images, targets = rng.random((4, 8, 8, 3), np.float32), targets_with_ignore(rng, (4, 8, 8), 3, 0.5)
    model = _tiny_model(3)
    values = []
    for loss in (losses.CrossEntropyLoss(), keras.losses.SparseCategoricalCrossentropy(ignore_class=IGNORE)):
        model.compile(loss=loss)
        values.append(model.evaluate(images, targets, batch_size=4, verbose=0))
    assert values[0] == pytest.approx(values[1], rel=1e-5)


@pytest.mark.parametrize("loss", [losses.CrossEntropyLoss(num_classes=8), losses.DiceLoss(smooth=2.0),
                                  losses.CombinedLoss(dice_weight=3.0, smooth=0.5), losses.BinaryDiceLoss(1e-3),
                                  losses.BinaryCombinedLoss(0.5, smooth=2.0)])
def test_config_round_trip(loss):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is type(loss) and restored.get_config() == loss.get_config()

# ---------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------

GOOD_TRUE, GOOD_PRED = np.zeros((1, 2, 2), np.uint8), np.full((1, 2, 2, 3), 1 / 3, np.float32)


@pytest.mark.parametrize("function", MULTICLASS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("y_true, y_pred, kwargs, message", [
    (GOOD_TRUE, GOOD_PRED[0], {}, r"y_pred must be \(B, H, W, C\)"),
    (GOOD_TRUE[0], GOOD_PRED, {}, r"y_true must have shape \(B, H, W\)"),
    (np.zeros((1, 2, 3), np.uint8), GOOD_PRED, {}, r"y_true must have shape \(B, H, W\) = \(1, 2, 2\)"),
    (GOOD_TRUE, GOOD_PRED, {"num_classes": 8}, r"num_classes=8 does not match y_pred's last axis \(3 classes\)"),
    (np.array([[[0, 3], [IGNORE, 1]]]), GOOD_PRED, {}, r"target values outside 0\.\.2 .*\[3\]"),
    (np.array([[[0, -1], [2, 1]]]), GOOD_PRED, {}, r"target values outside 0\.\.2 .*\[-1\]"),
    (GOOD_TRUE, GOOD_PRED[..., :1], {}, r"at least 2 classes|>= 2 of classes"),
], ids=["pred-rank", "true-rank", "true-shape", "num_classes", "too-large", "negative", "one-class"])
def test_bad_multiclass_input_is_refused(function, y_true, y_pred, kwargs, message):
    with pytest.raises(ValueError, match=message):
        function(y_true, y_pred, **kwargs)
    with pytest.raises(ValueError, match=message):
        KERAS_FOR[function](**kwargs)(y_true, y_pred)


@pytest.mark.parametrize("call, message", [
    (lambda: losses.cross_entropy(GOOD_TRUE.astype(float), GOOD_PRED), "integer category ids"),
    (lambda: losses.cross_entropy(GOOD_TRUE, GOOD_PRED * 4), r"probabilities in \[0, 1\].*softmax"),
    (lambda: losses.cross_entropy(GOOD_TRUE, GOOD_PRED.astype(int)), "float probabilities"),
    (lambda: losses.dice_loss(GOOD_TRUE, GOOD_PRED, smooth=0.0), "smooth must be a finite number > 0"),
    (lambda: losses.DiceLoss(smooth=-1.0), "smooth must be a finite number > 0"),
    (lambda: losses.combined_loss(GOOD_TRUE, GOOD_PRED, dice_weight=-1.0), "dice_weight must be"),
    (lambda: losses.CombinedLoss(dice_weight=math.inf), "dice_weight must be"),
    (lambda: losses.CrossEntropyLoss(num_classes=1), "num_classes must be at least 2"),
    (lambda: losses.binary_dice_loss(GOOD_TRUE, GOOD_PRED[..., :2]), r"y_pred must be \(B, H, W, 1\)"),
    (lambda: losses.BinaryDiceLoss()(GOOD_TRUE, GOOD_PRED[..., :2]), r"y_pred must be \(B, H, W, 1\)"),
    (lambda: losses.binary_dice_loss(GOOD_TRUE[0], GOOD_PRED[0, ..., :1]), r"y_true must have shape"),
    (lambda: losses.BinaryDiceLoss()(GOOD_TRUE[:, :1], GOOD_PRED[..., :1]), r"y_true must have shape"),
    (lambda: losses.binary_dice_loss(GOOD_TRUE + 2, GOOD_PRED[..., :1]), r"outside 0\.\.1 .*\[2\]"),
    (lambda: losses.BinaryDiceLoss()(GOOD_TRUE + 2, GOOD_PRED[..., :1]), r"outside 0\.\.1 .*\[2\]"),
    (lambda: losses.binary_dice_score(GOOD_TRUE, GOOD_TRUE[0]), "same shape"),
    (lambda: losses.binary_dice_score(GOOD_TRUE, GOOD_PRED[..., 0]), "hard 0/1 mask"),
    (lambda: losses.binary_dice_score(GOOD_TRUE + 2, GOOD_TRUE), r"outside 0\.\.1"),
    (lambda: losses.CrossEntropyLoss()(GOOD_TRUE, GOOD_PRED, sample_weight=np.ones(1)), "does not take sample_weight"),
])
def test_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("loss", [losses.CrossEntropyLoss(), losses.DiceLoss()])
def test_bad_targets_fail_inside_a_graph_and_poison_xla(loss):
    import tensorflow as tf

    y_true = np.array([[[0, 5], [1, 2]]], np.uint8)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"outside 0\.\.2"):
        tf.function(loss)(y_true, GOOD_PRED)
    # XLA drops assertions; the loss turns NaN instead of silently training on a wrong target.
    assert np.isnan(tf.function(loss, jit_compile=True)(y_true, GOOD_PRED).numpy())
    assert np.isfinite(tf.function(loss, jit_compile=True)(GOOD_TRUE, GOOD_PRED).numpy())


@pytest.mark.parametrize("loss", [losses.CrossEntropyLoss(), losses.DiceLoss()])
def test_bad_targets_poison_a_jit_compiled_loss_on_jax(loss):
    if keras.backend.backend() != "jax":
        pytest.skip("jax.jit is the JAX backend's compiled step")
    import jax

    compiled = jax.jit(lambda y_true, y_pred: loss(y_true, y_pred))
    assert np.isnan(float(compiled(np.array([[[0, 5], [1, 2]]], np.uint8), GOOD_PRED)))
    assert np.isfinite(float(compiled(GOOD_TRUE, GOOD_PRED)))
