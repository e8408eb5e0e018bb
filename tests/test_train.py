"""seglib.train: fitting writes its files, runs are reused only with the same settings, evaluation scores like
the official metric at full size."""

import csv

import keras
import numpy as np
import pytest

from seglib import cityscapes, data, labels, masks, metrics, modelio, models, train
from seglib.profiles import Profile

TINY = Profile("tiny", (64, 128), {"train": 5, "val": 2, "test": 1}, (32, 64), 2, 2, 1,
               learning_rate=1e-3, patience=10, seeds=2, comparison_seeds=1)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGLIB_DATA", str(tmp_path))
    return tmp_path


def tiny_unet():
    return models.unet((32, 64, 3), base_filters=4, depth=2)


def test_train_or_load_trains_once_and_reuses_only_the_same_settings(small_dataset, data_dir):
    first = train.train_or_load("tiny", tiny_unet, small_dataset, TINY, augmentation=False, verbose=0)
    assert not first.reused and first.epochs == 2
    assert set(first.history) >= {"loss", "mean_iou", "val_loss", "val_mean_iou"}
    for name in ("best.keras", "final.keras", "log.csv", "run.json"):
        assert (first.folder / name).is_file(), name
    with open(first.folder / "log.csv") as log:
        assert len(list(csv.DictReader(log))) == 2
    again = train.train_or_load("tiny", tiny_unet, small_dataset, TINY, augmentation=False, verbose=0)
    assert again.reused and again.folder == first.folder and again.history == first.history
    assert again.machine == first.machine and "CPU cores" in again.machine
    image = np.random.default_rng(0).random((1, 32, 64, 3), np.float32)
    np.testing.assert_allclose(again.model.predict(image, verbose=0), first.model.predict(image, verbose=0),
                               rtol=1e-5, atol=1e-6)
    other = train.train_or_load("tiny", tiny_unet, small_dataset, TINY, augmentation=False, learning_rate=1e-2,
                                epochs=1, verbose=0)
    assert not other.reused and other.folder != first.folder and other.epochs == 1


def test_evaluate_a_perfect_and_a_constant_predictor(small_dataset):
    frames = cityscapes.list_frames(small_dataset, "val")
    truth = [masks.read_label_ids(frame.gt_path("labelIds")) for frame in frames]
    categories = [masks.label_ids_to_categories(label_ids) for label_ids in truth]
    served = iter(categories)

    def perfect(images):  # at full size the frames come in order: return their own ground truth
        return np.stack([next(served) for _ in images])

    result = train.evaluate(perfect, small_dataset, "val", TINY, image_size=(64, 128))
    assert result.frames == 2
    assert result.mean_category_iou == pytest.approx(1.0)
    assert result.pixel_accuracy == pytest.approx(1.0)
    flat = labels.CATEGORY_NAMES.index("flat")
    constant = train.evaluate(lambda images: np.full(images.shape[:3], flat, np.uint8), small_dataset, "val", TINY)
    expected, expected_mean = metrics.cityscapes_category_iou(truth, [np.full_like(c, flat) for c in categories])
    assert constant.mean_category_iou == pytest.approx(expected_mean)
    assert constant.category_iou["flat"] == pytest.approx(expected["flat"])


def test_evaluate_resizes_predictions_back_to_full_size(small_dataset):
    """A model at half size is scored against full-size ground truth: the confusion matrix counts every pixel."""
    model = models.unet((32, 64, 3), base_filters=2, depth=1)
    result = train.evaluate(model, small_dataset, "val", TINY)
    assert result.confusion.sum() == 2 * 64 * 128


def test_predict_categories_and_bad_input():
    model = models.unet((32, 64, 3), base_filters=2, depth=1)
    predicted = modelio.predict_categories(model, np.zeros((2, 32, 64, 3), np.float32))
    assert predicted.shape == (2, 32, 64) and predicted.dtype == np.uint8
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\)"):
        modelio.predict_categories(model, np.zeros((32, 64, 3)))
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        train.fit(model, None, None, "/tmp/unused", epochs=0)


def test_configure_devices_on_a_cpu_keeps_float32():
    strategy = train.configure_devices()
    if keras.backend.backend() == "tensorflow":
        assert strategy.num_replicas_in_sync == 1
    with strategy.scope():
        assert keras.mixed_precision.global_policy().name == "float32"


def test_learning_curves_figure():
    figure = train.plot_learning_curves({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "mean_iou": [0.1, 0.3],
                                         "val_mean_iou": [0.1, 0.2]})
    assert [len(axis.lines) for axis in figure.axes] == [2, 2]


@pytest.mark.tensorflow_only
def test_binary_target_keeps_ignore_and_marks_one_category():
    from seglib import data

    vehicle = labels.CATEGORY_NAMES.index("vehicle")
    mask = np.array([[0, vehicle, 3, labels.IGNORE, vehicle]], np.uint8)
    _, target = data.binary_target(np.zeros((1, 5, 3), np.float32), mask, vehicle)
    np.testing.assert_array_equal(target.numpy(), [[0, 1, 0, labels.IGNORE, 1]])
    with pytest.raises(ValueError, match="category must be 0..7"):
        data.binary_target(None, mask, 8)


def test_binary_training_and_full_size_evaluation(small_dataset, data_dir):
    from seglib import losses

    vehicle = labels.CATEGORY_NAMES.index("vehicle")
    build = lambda: models.simple_unet((32, 64, 3), 1, base_filters=4, depth=2)  # noqa: E731
    run = train.train_or_load("tiny-binary", build, small_dataset, TINY, augmentation=False, verbose=0,
                              category=vehicle)
    assert set(run.history) >= {"loss", "dice", "val_loss", "val_dice"}
    assert (run.folder / "best.keras").is_file() and run.settings["category"] == vehicle
    # the run is told apart from a multi-class run of the same name by its category
    again = train.train_or_load("tiny-binary", build, small_dataset, TINY, augmentation=False, verbose=0,
                                category=vehicle)
    assert again.reused
    # evaluation at full size equals binary_dice_score of the stacked full-size masks
    frames = cityscapes.list_frames(small_dataset, "val")
    truth = np.stack([masks.label_ids_to_categories(masks.read_label_ids(f.gt_path("labelIds"))) == vehicle
                      for f in frames]).astype(np.uint8)
    served = iter(truth[:, ::2, ::2])  # a half-size prediction: the truth, subsampled, then resized back

    def half_size_truth(images):
        return np.stack([next(served) for _ in images])

    result = train.evaluate_binary(half_size_truth, small_dataset, vehicle, "val", TINY)
    expected = np.repeat(np.repeat(truth[:, ::2, ::2], 2, axis=1), 2, axis=2)  # nearest-neighbour upsampling
    assert result.dice == pytest.approx(losses.binary_dice_score(truth, expected))
    assert result.frame_dice == pytest.approx([losses.binary_dice_score(t, e) for t, e in zip(truth, expected)])
    assert 0 < result.dice < 1 and result.category == "vehicle"
    evaluated = train.evaluate_binary(run.model, small_dataset, vehicle, "val", TINY)
    assert 0.0 <= evaluated.dice <= 1.0 and evaluated.confusion.sum() == truth.size


def test_binary_training_refuses_a_multiclass_model(small_dataset, data_dir):
    with pytest.raises(ValueError, match="one sigmoid output"):
        train.train_or_load("tiny-wrong", tiny_unet, small_dataset, TINY, augmentation=False, verbose=0, category=7)


def test_two_processes_asking_for_the_same_run_train_it_once(small_dataset, data_dir):
    # under pytest -n 2 two notebooks can ask for the same run at once: one trains, the other waits and reads it
    import subprocess
    import sys

    script = f"""
from seglib import models, train
from seglib.profiles import Profile
tiny = Profile("tiny", (64, 128), {{"train": 5, "val": 2, "test": 1}}, (32, 64), 2, 2, 1,
               learning_rate=1e-3, patience=10, seeds=2, comparison_seeds=1)
run = train.train_or_load("locked", lambda: models.unet((32, 64, 3), base_filters=4, depth=2), {str(small_dataset)!r},
                          tiny, augmentation=False, verbose=0)
print("reused" if run.reused else "trained", run.folder)
"""
    processes = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert all(process.returncode == 0 for process in processes), [err[-1500:] for _, err in outputs]
    verdicts = sorted(out.split()[0] for out, _ in outputs)
    assert verdicts == ["reused", "trained"]
    assert len({out.split()[1] for out, _ in outputs}) == 1


def test_learning_rate_schedule_by_hand():
    schedule = train.learning_rate_schedule(1e-2, 100)  # warm-up over 10 steps from 1e-3, cosine over 90 to 0
    rate = lambda step: float(schedule(step))  # noqa: E731
    assert rate(0) == pytest.approx(1e-3)
    assert rate(5) == pytest.approx(1e-3 + 0.5 * 9e-3)
    assert rate(10) == pytest.approx(1e-2)
    assert rate(55) == pytest.approx(1e-2 * 0.5 * (1 + np.cos(np.pi * 45 / 90)))
    assert rate(100) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="positive learning rate"):
        train.learning_rate_schedule(0.0, 10)


def test_fit_follows_the_schedule_over_all_epochs(small_dataset, tmp_path):
    model = tiny_unet()
    pipeline = data.SegmentationSequence(small_dataset, "train", TINY)  # 5 frames, batch 2: 3 steps per epoch
    run = train.fit(model, pipeline, data.SegmentationSequence(small_dataset, "val", TINY), tmp_path, epochs=2,
                    learning_rate=1e-2, verbose=0)
    assert run.epochs == 2
    assert int(model.optimizer.iterations) == 6
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)  # decayed to 0 at the last step


def test_architecture_fingerprint_tells_architectures_apart():
    first, again = tiny_unet(), tiny_unet()
    assert train.architecture_fingerprint(first) == train.architecture_fingerprint(again)
    others = [models.unet((32, 64, 3), base_filters=4, depth=2, batch_norm=False),
              models.unet((32, 64, 3), base_filters=8, depth=2), models.unet((64, 64, 3), base_filters=4, depth=2)]
    prints = {train.architecture_fingerprint(model) for model in [first, *others]}
    assert len(prints) == 4


def _two_steps(prebuild: bool) -> tuple[int, list[np.ndarray]]:
    """How many times Keras traces the training step over two steps, and the weights after them."""
    keras.utils.set_random_seed(3)
    model = tiny_unet()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    if prebuild:
        train.build_optimizer(model)
    traces, step = [0], model.train_step

    def counted(batch):  # runs once per trace in graph mode (TensorFlow, JAX), once per step in eager mode (torch)
        traces[0] += 1
        return step(batch)

    model.train_step = counted
    rng = np.random.default_rng(0)
    images = rng.random((4, 32, 64, 3), dtype=np.float32)
    targets = rng.integers(0, labels.NUM_CATEGORIES, (4, 32, 64))
    model.fit(images, targets, batch_size=2, epochs=1, shuffle=False, verbose=0)
    return traces[0], [np.asarray(weight) for weight in model.get_weights()]


@pytest.mark.tensorflow_only
def test_a_built_optimizer_traces_the_training_step_once_and_trains_the_same():
    unbuilt_traces, unbuilt = _two_steps(prebuild=False)
    built_traces, built = _two_steps(prebuild=True)
    assert unbuilt_traces == 2  # Adam's moments created inside the first trace: tf.function traces again
    assert built_traces == 1
    for before, after in zip(unbuilt, built, strict=True):
        np.testing.assert_array_equal(before, after)


def test_building_the_optimizer_of_an_uncompiled_model_is_refused():
    with pytest.raises(ValueError, match="compile the model"):
        train.build_optimizer(tiny_unet())
