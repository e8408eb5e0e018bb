"""Training and evaluation, driven by the run profile.

* :func:`fit` compiles and trains a model with EarlyStopping, ModelCheckpoint (the best epoch by validation mean
  IoU) and a CSV log, and returns a :class:`Run`;
* :func:`train_or_load` does the same once per (name, profile, settings) and saves the model and its results
  under ``$SEGLIB_DATA/runs/``: a chapter executed again (the book build after the tests) reads them back;
* :func:`evaluate` scores a model on a split the way Cityscapes does: predictions resized back to each frame's
  full size by nearest neighbour, the official category IoU (:mod:`seglib.metrics`) and an 8-class confusion
  matrix;
* :func:`configure_devices` turns on mixed precision on a GPU and returns a ``tf.distribute`` strategy
  (``MirroredStrategy`` when several GPUs are present) on TensorFlow, a do-nothing scope on the other backends.

Every function runs on each Keras backend (:mod:`seglib.backends`): on TensorFlow the runs train from ``tf.data``
(:func:`seglib.data.tf_dataset`), on JAX and PyTorch from the ``PyDataset`` (:class:`seglib.data.SegmentationSequence`),
which gives the same batches.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np

from seglib import backends, bench, data, datasets, keras_metrics, labels, losses, masks, metrics, modelio, safeio
from seglib.profiles import Profile, get_profile

__all__ = ["Run", "Evaluation", "BinaryEvaluation", "configure_devices", "fit", "build_optimizer", "train_or_load",
           "run_folder", "is_finished", "learning_rate_schedule", "architecture_fingerprint",
           "evaluate", "evaluate_binary", "plot_learning_curves",
           "show_predictions"]


@dataclass
class Run:
    """A finished training run: its model, the per-epoch history, and where its files are."""

    model: keras.Model
    history: dict[str, list[float]]
    seconds: float
    folder: Path
    reused: bool = False                 # True when read back from a previous run instead of trained
    settings: dict = field(default_factory=dict)
    machine: str = field(default_factory=bench.machine_description)  # where it was trained

    @property
    def epochs(self) -> int:
        return len(next(iter(self.history.values()), []))


class OneDevice:
    """The strategy of the jax and torch backends here: one device, ``scope()`` does nothing."""

    num_replicas_in_sync = 1

    @staticmethod
    def scope():
        return contextlib.nullcontext()


def configure_devices():
    """Mixed precision (``mixed_float16``) when a GPU is present, on every backend. On TensorFlow, returns
    ``MirroredStrategy`` over several GPUs, else the default strategy; on the others an object whose ``scope()``
    does nothing (one device). Build and compile models inside ``strategy.scope()``."""
    if backends.backend() != "tensorflow":
        if backends.accelerator():
            keras.mixed_precision.set_global_policy("mixed_float16")
        return OneDevice()
    tf = backends.require_tensorflow("configure_devices", "another backend")
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def learning_rate_schedule(peak: float, total_steps: int) -> keras.optimizers.schedules.LearningRateSchedule:
    """Warm-up from ``peak / 10`` to ``peak`` over the first tenth of ``total_steps``, then cosine decay to 0 at
    ``total_steps``: a large rate while the weights are far from any solution, a small one to settle at the end.
    On a short CPU budget it reaches a given score in far fewer steps than a constant rate (appendix)."""
    if peak <= 0 or total_steps < 1:
        raise ValueError(f"need a positive learning rate and at least one step, got {peak} and {total_steps}")
    warmup = total_steps // 10
    return keras.optimizers.schedules.CosineDecay(peak / 10, max(total_steps - warmup, 1), alpha=0.0,
                                                  warmup_target=peak, warmup_steps=warmup)


def _steps_per_epoch(train) -> int | None:
    if isinstance(train, keras.utils.PyDataset):
        return len(train)
    steps = int(train.cardinality())  # a tf.data.Dataset
    return steps if steps > 0 else None


def fit(model: keras.Model, train: "tf.data.Dataset | keras.utils.PyDataset", validation, folder: str | os.PathLike,
        epochs: int, loss: keras.losses.Loss | None = None, learning_rate: float = 1e-3,
        patience: int = 10, verbose: int = 2, metric: keras.metrics.Metric | None = None,
        schedule: bool = True) -> Run:
    """Compile ``model`` (Adam, ``loss`` default :class:`seglib.losses.CrossEntropyLoss`, ``metric`` default
    :class:`seglib.keras_metrics.MeanIoU` over the 8 categories) and train it for up to ``epochs`` epochs.

    With ``schedule`` (and a training set of known length) the learning rate follows
    :func:`learning_rate_schedule` over all ``epochs``, peaking at ``learning_rate``; else it stays constant.

    Writes ``folder/log.csv`` (one row per epoch) and ``folder/best.keras`` (the epoch with the best validation
    ``metric``); EarlyStopping ends training after ``patience`` epochs without improvement and restores the best
    weights. A binary model (one sigmoid output, chapter 12) passes ``loss=losses.BinaryDiceLoss()`` and
    ``metric=keras_metrics.BinaryDice()``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    metric = metric or keras_metrics.MeanIoU(labels.NUM_CATEGORIES)
    steps = _steps_per_epoch(train)
    rate = learning_rate_schedule(learning_rate, epochs * steps) if schedule and steps else learning_rate
    model.compile(optimizer=keras.optimizers.Adam(rate), loss=loss or losses.CrossEntropyLoss(), metrics=[metric])
    build_optimizer(model)
    monitor = f"val_{metric.name}"
    callbacks = [
        keras.callbacks.EarlyStopping(monitor, mode="max", patience=patience, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(folder / "best.keras", monitor, mode="max", save_best_only=True),
        keras.callbacks.CSVLogger(folder / "log.csv"),
    ]
    start = time.perf_counter()
    history = model.fit(train, validation_data=validation, epochs=epochs, callbacks=callbacks, shuffle=False,
                        verbose=verbose)
    return Run(model, {key: [float(v) for v in values] for key, values in history.history.items()},
               time.perf_counter() - start, folder)


def build_optimizer(model: keras.Model) -> None:
    """Create the compiled optimizer's variables (Adam's two moments per weight) before the first step.

    On TensorFlow, ``fit`` compiles its training step with ``tf.function``; an optimizer that is still unbuilt
    creates its variables while that step is traced, and ``tf.function`` then traces the whole step a second time.
    Building first gives the same variables (zeros) and the same training, traced once: on 2 CPU cores the first
    ``fit`` of the book's U-Net took 4.4 s instead of 8.8 s, chapter 10b's SegFormer's 16 s instead of 34 s
    (``benchmarks/bench_first_step.py``).
    """
    if getattr(model, "optimizer", None) is None:
        raise ValueError("compile the model before building its optimizer")
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def train_or_load(name: str, build: Callable[[], keras.Model], root: str | os.PathLike,
                  profile: Profile | str | None = None, loss: keras.losses.Loss | None = None,
                  learning_rate: float | None = None, epochs: int | None = None, augmentation: bool = True,
                  seed: int = 0, verbose: int = 2, category: int | None = None, patience: int | None = None) -> Run:
    """Train ``build()`` on ``root``'s train split (validated on val) with the profile's sizes, or read back the
    run saved by an earlier call with the same settings.

    With ``category`` set, the targets become that category against the rest (:func:`seglib.data.binary_target`),
    the default loss :class:`seglib.losses.BinaryDiceLoss` and the metric :class:`seglib.keras_metrics.BinaryDice`:
    ``build()`` must return a model with one sigmoid output.

    ``learning_rate`` (the schedule's peak), ``epochs`` and ``patience`` default to the profile's.

    A run is identified by ``name``, the profile (all its sizes), the dataset root, the model's architecture, the
    loss's config, the learning rate, the epochs, augmentation, the seed, the category and the early-stopping
    ``patience``; its folder under :func:`seglib.datasets.runs_dir` holds ``final.keras``, ``log.csv`` and ``run.json`` (history,
    seconds, settings). Nothing is reused across different settings.
    """
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    if category is not None:
        loss = loss or losses.BinaryDiceLoss()
    folder, settings = run_folder(name, build, root, profile, loss, learning_rate, epochs, augmentation, seed,
                                  category, patience)
    epochs, learning_rate, patience = settings["epochs"], settings["learning_rate"], settings["patience"]
    folder.parent.mkdir(parents=True, exist_ok=True)
    # a second process asking for the same run (two notebooks under `pytest -n 2`) waits, then reads it back
    with safeio.file_lock(folder.with_name(folder.name + ".lock")):
        if is_finished(folder):
            saved = json.loads((folder / "run.json").read_text())
            model = keras.models.load_model(folder / "final.keras")
            return Run(model, saved["history"], saved["seconds"], folder, reused=True, settings=settings,
                       machine=saved["machine"])
        keras.utils.set_random_seed(seed)
        strategy = configure_devices()
        with strategy.scope():
            model = build()
        if category is not None and model.output_shape[-1] != 1:
            raise ValueError(f"binary training of category {category} needs a model with one sigmoid output, "
                             f"got {model.output_shape[-1]} outputs (build it with num_classes=1)")
        train, validation = _pipelines(root, profile, seed, augmentation, category)
        metric = None if category is None else keras_metrics.BinaryDice()
        run = fit(model, train, validation, folder, epochs, loss, learning_rate, patience, verbose, metric)
        run.settings = settings
        safeio.atomic_write(folder / "final.keras", run.model.save)
        # written last: its presence means the run is complete
        safeio.atomic_write_json(folder / "run.json", {"history": run.history, "seconds": run.seconds,
                                                       "settings": settings, "machine": run.machine}, indent=1)
        return run


def _pipelines(root, profile: Profile, seed: int, augmentation: bool, category: int | None):
    """Training (shuffled, augmented if asked) and validation batches: ``tf.data`` on TensorFlow, the ``PyDataset``
    on the other backends (the same batches, :mod:`seglib.data`)."""
    transform = _augmentation() if augmentation else None
    if backends.backend() != "tensorflow":
        # on a GPU, loading threads keep it fed (PIL's decoding and numpy's resize release the GIL)
        threads = {"workers": min(8, os.cpu_count() or 1)} if backends.accelerator() else {}
        return (data.SegmentationSequence(root, "train", profile, augmentation=transform, shuffle=True, seed=seed,
                                          category=category, **threads),
                data.SegmentationSequence(root, "val", profile, category=category, **threads))
    train = data.tf_dataset(root, "train", profile, shuffle=True, seed=seed, drop_remainder=False,
                            augmentation=transform)
    validation = data.tf_dataset(root, "val", profile)
    if category is not None:
        train, validation = (dataset.map(lambda x, y: data.binary_target(x, y, category)) for dataset in
                             (train, validation))
    return train, validation


def _profile_sizes(profile: Profile) -> dict:
    """The profile's settings a run is keyed on: all but the benchmark repeats and chapter 7's list of dice weights,
    which change no single run (change a profile's other numbers, and its runs are trained anew)."""
    sizes = asdict(profile)
    sizes.pop("benchmark_repeats")
    sizes.pop("dice_weights")
    return sizes


def architecture_fingerprint(model: keras.Model) -> str:
    """A short hash of a model's layers (class, parameter count, output shape; not the names, which Keras numbers
    anew in each build): two builds of the same architecture share it, a change of layer, width or input size
    changes it."""
    layers = [(type(layer).__name__, layer.count_params(), str(getattr(layer.output, "shape", "")))
              for layer in model.layers]
    return hashlib.sha256(json.dumps([model.name, layers]).encode()).hexdigest()[:12]


def run_folder(name: str, build: Callable[[], keras.Model], root: str | os.PathLike,
               profile: Profile | str | None = None, loss: keras.losses.Loss | None = None,
               learning_rate: float | None = None, epochs: int | None = None, augmentation: bool = True,
               seed: int = 0, category: int | None = None, patience: int | None = None) -> tuple[Path, dict]:
    """The folder under :func:`seglib.datasets.runs_dir` where :func:`train_or_load` keeps the run with these arguments, and the
    settings that identify it (the folder name ends with a hash of them; a backend other than TensorFlow is one of
    them). Nothing is trained."""
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    if category is not None:
        loss = loss or losses.BinaryDiceLoss()
    settings = {"name": name, "profile": profile.name, "sizes": _profile_sizes(profile),
                "root": str(Path(root).resolve()), "architecture": architecture_fingerprint(build()),
                "epochs": epochs or profile.epochs, "learning_rate": learning_rate or profile.learning_rate,
                "augmentation": augmentation, "seed": seed,
                "loss": keras.saving.serialize_keras_object(loss or losses.CrossEntropyLoss()),
                "patience": int(profile.patience if patience is None else patience)}
    if category is not None:  # absent for the multi-class runs
        settings["category"] = int(category)
    if backends.backend() != "tensorflow":  # another backend computes other numbers: its own run (absent on TF)
        settings["backend"] = backends.backend()
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return datasets.runs_dir() / datasets.run_folder_name(name, profile, key), settings


def is_finished(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a complete run (``run.json`` is written last)."""
    folder = Path(folder)
    return (folder / "run.json").is_file() and (folder / "final.keras").is_file()


def _augmentation():
    from seglib import augment

    return augment.make_augmentation()

# ---------------------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """Scores of a model on a split: the official category IoU (7 categories, their mean) and the 8-class
    confusion matrix, at the frames' full size."""

    category_iou: dict[str, float]
    mean_category_iou: float
    confusion: np.ndarray
    frames: int

    @property
    def mean_iou(self) -> float:
        """8-class mean IoU (void included) from the confusion matrix."""
        return metrics.mean_iou(self.confusion)

    @property
    def pixel_accuracy(self) -> float:
        return metrics.pixel_accuracy(self.confusion)

    def as_dict(self) -> dict:
        return {**asdict(self), "confusion": self.confusion.tolist(), "mean_iou": self.mean_iou,
                "pixel_accuracy": self.pixel_accuracy}


def evaluate(model: keras.Model | Callable[[np.ndarray], np.ndarray], root: str | os.PathLike, split: str = "val",
             profile: Profile | str | None = None, image_size: Sequence[int] | None = None) -> Evaluation:
    """Score ``model`` on ``split``: each frame resized to the model's input size, predicted, the prediction
    resized back to the frame's size by nearest neighbour, and compared with the full-size ground truth.

    ``model`` is a Keras model or any function from ``(B, h, w, 3) float32`` images to ``(B, h, w) uint8``
    categories (a baseline, chapter 11).
    """
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    size = tuple(image_size or profile.image_size)
    predict = (lambda images: modelio.predict_categories(model, images)) if isinstance(model, keras.Model) else model
    category_iou, confusion, count = metrics.CategoryIoU(), metrics.ConfusionMatrix(labels.NUM_CATEGORIES), 0
    for frames, images, truths in data.evaluation_batches(root, split, size, profile.batch_size):
        for label_ids, prediction in zip(truths, predict(images)):
            full = modelio.to_full_size(prediction, label_ids.shape)
            category_iou.update(label_ids, full)
            confusion.update(masks.label_ids_to_categories(label_ids), full)
        count += len(frames)
    scores, mean = category_iou.result()
    return Evaluation(scores, mean, confusion.matrix, count)

@dataclass
class BinaryEvaluation:
    """Scores of a one-category-against-the-rest model on a split, at the frames' full size."""

    category: str
    dice: float            # over all pixels of the split: 2 |T & P| / (|T| + |P|)
    iou: float             # |T & P| / |T | P|
    frame_dice: list[float]  # per frame (1.0 where the frame has neither truth nor prediction)
    confusion: np.ndarray  # 2x2: rows truth (rest, category), columns prediction


def evaluate_binary(model: keras.Model | Callable[[np.ndarray], np.ndarray], root: str | os.PathLike, category: int,
                    split: str = "val", profile: Profile | str | None = None, threshold: float = 0.5) -> BinaryEvaluation:
    """Score a binary model of ``category`` on ``split`` like :func:`evaluate`: predictions resized back to each
    frame's full size by nearest neighbour and compared with the full-size truth (``category`` against every other
    pixel, void included). ``model`` is a one-sigmoid Keras model or a function from images to 0/1 masks."""
    if not 0 <= category < labels.NUM_CATEGORIES:
        raise ValueError(f"category must be 0..{labels.NUM_CATEGORIES - 1}, got {category}")
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    if isinstance(model, keras.Model):
        keras_model = model
        model = lambda images: modelio.predict_binary(keras_model, images, threshold)  # noqa: E731
    confusion, frame_dice = metrics.ConfusionMatrix(2), []
    for _, images, truths in data.evaluation_batches(root, split, profile.image_size, profile.batch_size):
        for label_ids, prediction in zip(truths, model(images)):
            truth = (masks.label_ids_to_categories(label_ids) == category).astype(np.uint8)
            full = modelio.to_full_size(prediction, truth.shape)
            confusion.update(truth, full)
            frame_dice.append(losses.binary_dice_score(truth, full))
    matrix = confusion.matrix
    return BinaryEvaluation(labels.CATEGORY_NAMES[category], float(metrics.dice_per_class(matrix)[1]),
                            float(metrics.iou_per_class(matrix)[1]), frame_dice, matrix)

# ---------------------------------------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------------------------------------


def plot_learning_curves(history: dict[str, list[float]], title: str = "", metric: str = "mean_iou"):
    """Loss and ``metric`` (``"dice"`` for a binary run) per epoch, training and validation side by side. Returns
    the matplotlib figure."""
    import matplotlib.pyplot as plt

    if metric not in history:
        raise ValueError(f"the history has no {metric!r}; it has {', '.join(history)}")
    figure, axes = plt.subplots(1, 2, figsize=(12, 3.5))
    for axis, key in zip(axes, ("loss", metric)):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + key in history:
                values = history[prefix + key]
                axis.plot(range(1, len(values) + 1), values, style, label=prefix + key)
        axis.set_xlabel("epoch")
        axis.set_title(key)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def show_predictions(model: keras.Model, root: str | os.PathLike, split: str = "val", count: int = 3,
                     profile: Profile | str | None = None):
    """Input, ground truth and prediction side by side for the first ``count`` frames of ``split``."""
    import matplotlib.pyplot as plt

    from seglib import viz

    sequence = data.SegmentationSequence(root, split, profile, batch_size=count)
    images, truth = sequence[0]
    predicted = modelio.predict_categories(model, images)
    figure, axes = plt.subplots(len(images), 3, figsize=(15, 2.6 * len(images)), squeeze=False)
    for row, (image, true_mask, predicted_mask) in enumerate(zip(images, truth, predicted)):
        panels = (modelio.from_model_input(image), viz.colorize_categories(true_mask),
                  viz.colorize_categories(predicted_mask))
        for axis, panel, title in zip(axes[row], panels, ("input", "truth", "prediction")):
            axis.imshow(panel, interpolation="nearest")
            axis.set_title(title if row == 0 else "")
            axis.axis("off")
    figure.legend(handles=viz.legend_handles(), loc="lower center", ncol=8, frameon=False)
    figure.subplots_adjust(bottom=0.08)
    return figure
