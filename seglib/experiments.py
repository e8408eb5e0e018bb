"""The book's experiments, one per chapter that compares contenders, run for every seed of a profile.

Each experiment trains its contenders with :func:`seglib.train.train_or_load` (so a run with the same settings is
trained once and shared: chapter 7's cross-entropy run, chapter 10's U-Net and chapter 11's U-Net *are* chapter 9's
U-Net), scores every seed at full size with the official category IoU (or dice, for the binary chapter), and writes
a results file (:mod:`seglib.results`). The chapters call :func:`run`; ``benchmarks/run_profile.py`` calls it for
every experiment of a profile. Same code path in every profile; only sizes change.

=====================  =====================================================================================
experiment             contenders
=====================  =====================================================================================
``05_augmentation``    the book's U-Net with and without augmentation (the ablation)
``07_losses``          the book's U-Net trained with cross-entropy, dice, CE + w·dice for each of the
                       profile's ``dice_weights`` (1 and 3; ``ci``: 1)
``09_training``        the book's U-Net, always "flat"
``10_comparison``      the book's U-Net, FCN-8 on VGG16, a U-Net on a VGG16 encoder
``10b_modern_architectures`` the book's U-Net, DeepLabV3+, SegFormer, an FPN on EfficientNet
``11_classical_baseline``  filter features + logistic regression, the book's U-Net, always "flat"
``12_binary_segmentation`` a one-sigmoid U-Net for vehicles with BCE + dice and with dice alone, the book's
                       U-Net read as a vehicle detector, always / never vehicle
=====================  =====================================================================================
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from seglib import (backends, bench, data, features, labels, losses, modelio, models, modern, predict, results, safeio,
                    train)
from seglib.profiles import Profile, get_profile

__all__ = ["BOOK_UNET_FILTERS", "MAJORITY", "VEHICLE", "Contender", "EXPERIMENTS", "book_unet", "binary_unet",
           "fcn8", "vgg16_unet", "deeplab", "segformer", "fpn", "train_book_unet", "book_model_path", "seeds",
           "pending", "train_pending", "run", "budget", "milliseconds_per_image", "fit_filter_baseline",
           "validation_scores", "SCORES_VERSION"]

#: Base filters of the book's U-Net (chapter 6): 16 trains on a CPU.
BOOK_UNET_FILTERS = 16
#: The most frequent category (chapter 2): the trivial baseline predicts it everywhere.
MAJORITY = labels.CATEGORY_NAMES.index("flat")
#: The category of the binary chapter.
VEHICLE = labels.CATEGORY_NAMES.index("vehicle")
#: Pixels sampled from each training frame for the filter baseline (chapter 11), and its epochs.
BASELINE_PIXELS_PER_FRAME = 1000
BASELINE_EPOCHS = 20


def book_unet(profile: Profile) -> keras.Model:
    """The book's U-Net: :func:`seglib.models.unet` with 16 base filters and batch normalisation, at the profile's
    input size."""
    return models.unet((*profile.image_size, 3), base_filters=BOOK_UNET_FILTERS)


def train_book_unet(root: str | os.PathLike, profile: Profile | str | None = None, seed: int = 0,
                    augmentation: bool = True, verbose: int = 0) -> train.Run:
    """Chapter 9's run of the book's U-Net (cross-entropy, the profile's budget), trained once and read back by
    every chapter that uses it (7, 9, 10, 11, 12, 13, 14, 15, and ``data_scripts/train.py``)."""
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    return train.train_or_load(f"unet{BOOK_UNET_FILTERS}", lambda: book_unet(profile), root, profile, seed=seed,
                               augmentation=augmentation, verbose=verbose)


def book_model_path(root: str | os.PathLike, profile: Profile | str | None = None) -> Path:
    """The ``.keras`` file of the book's model for ``profile``, for the chapters that serve or ship it (13, 14, 15):
    :func:`seglib.predict.default_model_path` (``$SEGLIB_MODEL``, else chapter 9's saved run) where it finds one,
    else chapter 9's run trained now, or read back, by :func:`train_book_unet` on the data at ``root``: its
    ``final.keras``."""
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    try:
        return predict.default_model_path(profile.name)
    except FileNotFoundError:  # chapter 9 has not run here: train (or read back) its run, defined in one place
        return train_book_unet(root, profile).folder / "final.keras"


@dataclass(frozen=True)
class Contender:
    """One trained contender of an experiment: how to build it and train it. ``seeds`` names the profile field
    that says how many seeds it gets (``"seeds"`` for the book's U-Net, ``"comparison_seeds"`` for the others)."""

    run_name: str
    build: Callable[[Profile], keras.Model]
    loss: Callable[[], keras.losses.Loss] | None = None
    augmentation: bool = True
    category: int | None = None
    seeds: str = "comparison_seeds"

    def train(self, root, profile: Profile, seed: int, verbose: int = 0) -> train.Run:
        return train.train_or_load(self.run_name, lambda: self.build(profile), root, profile,
                                   loss=self.loss() if self.loss else None, augmentation=self.augmentation,
                                   seed=seed, category=self.category, verbose=verbose)

    def folder(self, root, profile: Profile, seed: int):
        """Where this contender's run of ``seed`` is (or will be) kept."""
        return train.run_folder(self.run_name, lambda: self.build(profile), root, profile,
                                loss=self.loss() if self.loss else None, augmentation=self.augmentation,
                                seed=seed, category=self.category)[0]


_UNET = Contender(f"unet{BOOK_UNET_FILTERS}", book_unet, seeds="seeds")
#: The same runs with the comparison seeds, for chapters 5 and 7, where every side gets the same count (and the
#: book's U-Net's further seeds are trained by chapter 9).
_UNET_COMPARED = dataclasses.replace(_UNET, seeds="comparison_seeds")


def fcn8(profile: Profile) -> keras.Model:
    """Chapter 10's FCN-8: VGG16 at the profile's encoder width, a head 512 filters wide at width 1 (narrowed with
    the encoder), random weights (ImageNet weights exist only at width 1; chapter 10 says which it used)."""
    width = profile.encoder_width
    return models.fcn8_vgg16((*profile.image_size, 3), weights=None, head_filters=max(8, round(512 * width)),
                             width=width)


def vgg16_unet(profile: Profile) -> keras.Model:
    """Chapter 10's U-Net on a VGG16 encoder at the profile's encoder width, random weights."""
    return models.pretrained_unet((*profile.image_size, 3), encoder_name="vgg16", weights=None,
                                  encoder_width=profile.encoder_width)


def deeplab(profile: Profile) -> keras.Model:
    """Chapter 10b's DeepLabV3+ at the profile's encoder width, random weights."""
    return modern.deeplab_v3_plus((*profile.image_size, 3), width=profile.encoder_width)


def segformer(profile: Profile) -> keras.Model:
    """Chapter 10b's SegFormer (B0 at width 1) at the profile's encoder width, random weights."""
    return modern.segformer((*profile.image_size, 3), width=profile.encoder_width)


def fpn(profile: Profile) -> keras.Model:
    """Chapter 10b's FPN on EfficientNetB0 (scaled by the profile's encoder width), random weights."""
    return modern.fpn_efficientnet((*profile.image_size, 3), weights=None, width=profile.encoder_width)


def binary_unet(profile: Profile) -> keras.Model:
    """Chapter 12's binary model: the strided "simple" U-Net with 16 base filters and one sigmoid output."""
    return models.simple_unet((*profile.image_size, 3), num_classes=1, base_filters=BOOK_UNET_FILTERS)


def _contenders(experiment: str, profile: Profile) -> dict[str, Contender]:
    """The trained contenders of ``experiment`` under ``profile``, by the name the chapter shows."""
    if experiment == "07_losses":
        contenders = {"cross-entropy": _UNET_COMPARED, "dice": Contender(f"{_UNET.run_name}-dice", book_unet, losses.DiceLoss)}
        for weight in profile.dice_weights:
            factor = "" if weight == 1 else f"{weight:g}"
            contenders[f"CE + {factor}{'·' if factor else ''}dice"] = Contender(
                f"{_UNET.run_name}-ce+{factor}dice", book_unet,
                functools.partial(losses.CombinedLoss, dice_weight=weight))
        return contenders
    if experiment == "05_augmentation":
        return {"U-Net, augmented": _UNET_COMPARED,
                "U-Net, not augmented": Contender(f"{_UNET.run_name}-not-augmented", book_unet, augmentation=False)}
    if experiment == "09_training":
        return {f"U-Net ({BOOK_UNET_FILTERS} filters)": _UNET}
    if experiment == "10_comparison":
        width = "" if profile.encoder_width == 1 else f", width {profile.encoder_width:g}"
        return {f"U-Net ({BOOK_UNET_FILTERS} filters)": _UNET,
                f"FCN-8 (VGG16{width})": Contender("fcn8_vgg16", fcn8),
                f"U-Net on VGG16{width}": Contender("unet_vgg16", vgg16_unet)}
    if experiment == "10b_modern_architectures":
        width = "" if profile.encoder_width == 1 else f", width {profile.encoder_width:g}"
        return {f"U-Net ({BOOK_UNET_FILTERS} filters)": _UNET,
                f"DeepLabV3+ (ResNet{width})": Contender("deeplab_v3_plus", deeplab),
                f"SegFormer (B0{width})": Contender("segformer_b0", segformer),
                f"FPN (EfficientNetB0{width})": Contender("fpn_efficientnet_b0", fpn)}
    if experiment == "11_classical_baseline":
        return {f"U-Net ({BOOK_UNET_FILTERS} filters, chapter 9)": _UNET}
    if experiment == "12_binary_segmentation":
        return {"binary U-Net, BCE + dice": Contender("simple_unet16-vehicle", binary_unet, losses.BinaryCombinedLoss,
                                                      category=VEHICLE),
                "binary U-Net, dice alone": Contender("simple_unet16-vehicle-dice", binary_unet, losses.BinaryDiceLoss,
                                                      category=VEHICLE)}
    raise ValueError(f"unknown experiment {experiment!r}; choose one of {', '.join(EXPERIMENTS)}")


EXPERIMENTS = ("05_augmentation", "07_losses", "09_training", "10_comparison", "10b_modern_architectures",
               "11_classical_baseline", "12_binary_segmentation")


def seeds(profile: Profile, kind: str = "seeds") -> list[int]:
    """The seeds a profile gives a contender: ``range(profile.seeds)`` or ``range(profile.comparison_seeds)``."""
    return list(range(getattr(profile, kind)))


def budget(root: str | os.PathLike, profile: Profile) -> dict:
    """What every contender of an experiment gets: sizes, frames, epochs, seeds, learning rate, and the Keras
    backend that trained it."""
    return {"image_size": list(profile.image_size), "frame_size": list(profile.synthetic_size),
            "train_frames": len(data.frames_with_labels(root, "train")),
            "val_frames": len(data.frames_with_labels(root, "val")), "batch_size": profile.batch_size,
            "epochs": profile.epochs, "patience": profile.patience, "learning_rate": profile.learning_rate,
            "seeds": seeds(profile), "comparison_seeds": seeds(profile, "comparison_seeds"),
            "backend": backends.describe()}


def milliseconds_per_image(model: keras.Model, profile: Profile) -> float:
    """Median time to predict one image at the profile's input size with Keras's compiled predict step
    (``predict_on_batch``: a ``tf.function`` on TensorFlow, ``jax.jit`` on JAX)."""
    image = np.zeros((1, *profile.image_size, 3), np.float32)
    return 1000 * bench.median_seconds(lambda: np.asarray(model.predict_on_batch(image)), profile.benchmark_repeats)


def _training_figures(run: train.Run, profile: Profile, metric: str) -> dict:
    values = run.history[f"val_{metric}"]
    return {"seconds": run.seconds, "epochs": run.epochs, "best_epoch": int(np.argmax(values)) + 1,
            f"best_val_{metric}": max(values), "plateau": results.reached_plateau(values, profile.epochs),
            "parameters": run.model.count_params(), f"val_{metric}_per_epoch": [float(v) for v in values]}


def _category_figures(evaluation: train.Evaluation) -> dict:
    return {"mean_category_iou": evaluation.mean_category_iou, "category_iou": evaluation.category_iou,
            "pixel_accuracy": evaluation.pixel_accuracy}


def _binary_figures(evaluation: train.BinaryEvaluation) -> dict:
    return {"dice": evaluation.dice, "iou": evaluation.iou, "mean_frame_dice": float(np.mean(evaluation.frame_dice))}


@functools.lru_cache(maxsize=4)  # the chapter shows seed 0's weights after the experiment has fitted it
def fit_filter_baseline(root: str | os.PathLike, profile: Profile, seed: int = 0,
                        pixels_per_frame: int = BASELINE_PIXELS_PER_FRAME,
                        epochs: int = BASELINE_EPOCHS) -> keras.Model:
    """Chapter 11's classical baseline: ``pixels_per_frame`` random pixels of every training frame (at the
    profile's input size, not augmented), described by :func:`seglib.features.pixel_features`, fitted by
    :func:`seglib.features.logistic_regression`. ``seed`` draws the pixels and the initial weights."""
    frames = data.SegmentationSequence(root, "train", profile)
    rng = np.random.default_rng(seed)
    samples = [features.sample_pixels(features.pixel_features(image), mask, pixels_per_frame, rng)
               for image, mask in (frames.load(index) for index in range(len(frames.frames)))]
    x = np.concatenate([sample[0] for sample in samples])
    y = np.concatenate([sample[1] for sample in samples])
    return features.logistic_regression(x, y, epochs=epochs, seed=seed)


def pending(names: Sequence[str], root: str | os.PathLike, profile: Profile) -> list[tuple[str, str, int]]:
    """The ``(experiment, contender, seed)`` runs of the experiments ``names`` that are not trained yet (each run
    once, though several experiments share it)."""
    jobs, folders = [], set()
    for experiment in names:
        for name, contender in _contenders(experiment, profile).items():
            for seed in seeds(profile, contender.seeds):
                folder = contender.folder(root, profile, seed)
                if folder not in folders and not train.is_finished(folder):
                    folders.add(folder)
                    jobs.append((experiment, name, seed))
    return jobs


#: Bump when the scoring changes: validation scores saved by an earlier version are then computed again.
SCORES_VERSION = 1


def validation_scores(trained: train.Run, root: str | os.PathLike, profile: Profile, category: int | None = None) -> dict:
    """A trained run's scores on the validation split at full size: the official category IoU
    (:func:`seglib.train.evaluate`), or for a binary run (``category`` set) dice and IoU of that category
    (:func:`seglib.train.evaluate_binary`).

    Kept in the run's folder (``scores-val.json``), with the validation frames and input size they were computed on:
    the process that trains a run scores it while the other runs still train, and every chapter that shows the
    run (the book's U-Net appears in six) reads the scores back instead of predicting the frames again."""
    key = {"version": SCORES_VERSION, "image_size": list(profile.image_size), "category": category,
           "frames": [frame.image_path.name for frame in data.frames_with_labels(root, "val")]}
    path = Path(trained.folder) / "scores-val.json"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("key") == key:
            return saved["scores"]
    except (OSError, ValueError, AttributeError):  # none yet, or unreadable: compute them again
        pass
    if category is None:
        scores = _category_figures(train.evaluate(trained.model, root, "val", profile))
    else:
        scores = _binary_figures(train.evaluate_binary(trained.model, root, category, "val", profile))
    safeio.atomic_write_json(path, {"key": key, "scores": scores}, indent=1)
    return scores


def _train_job(job: tuple[str, str, int], root: str, profile: Profile) -> str:
    experiment, name, seed = job
    contender = _contenders(experiment, profile)[name]
    run = contender.train(root, profile, seed)
    validation_scores(run, root, profile, contender.category)  # here, while the other runs still train
    return f"{experiment} / {name} / seed {seed}: {run.epochs} epochs, {run.seconds:.0f} s"


def train_pending(names: Sequence[str], root: str | os.PathLike, profile: Profile,
                  processes: int | None = None, log: Callable[[str], None] | None = None) -> int:
    """Train the runs of the experiments ``names`` that are not trained yet, ``processes`` at a time, each process
    with its share of the cores (at least one thread); a run left over after the last full round trains in this
    process, on every core. Returns how many runs were trained. On a GPU, runs are trained one after the other in
    this process.

    The default on a CPU with 2 or more cores: as many processes as runs, up to one more than the cores. A one-thread
    run leaves its core idle while Keras traces its steps and saves, and one more run fills those gaps: chapter
    10b's three runs took 151 s side by side on 2 cores, against 171 s as two and then one on both cores."""
    jobs = pending(names, root, profile)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if processes is None:
        processes = min(len(jobs), cores + 1) if cores >= 2 and len(jobs) > 1 and not backends.accelerator() else 1
    alone = jobs if processes <= 1 else jobs[len(jobs) - len(jobs) % processes:]  # a last odd run gets every core
    side_by_side = jobs[:len(jobs) - len(alone)]
    if side_by_side:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: threads set before TensorFlow loads
        with concurrent.futures.ProcessPoolExecutor(processes, mp_context=context, initializer=bench.limit_threads,
                                                    initargs=(max(1, cores // processes), processes)) as pool:
            for message in pool.map(_train_job, side_by_side, [str(root)] * len(side_by_side),
                                    [profile] * len(side_by_side)):
                if log:
                    log(message)
    for job in alone:
        message = _train_job(job, str(root), profile)
        if log:
            log(message)
    return len(jobs)


def _majority(images: np.ndarray) -> np.ndarray:
    return np.full(images.shape[:3], MAJORITY, np.uint8)


def run(experiment: str, root: str | os.PathLike, profile: Profile | str | None = None, verbose: int = 0,
        write: bool = True, processes: int | None = None) -> tuple[dict, dict[str, list[train.Run]]]:
    """Train (or read back) every contender of ``experiment`` for each of its seeds, score each seed on the
    validation split at full size, and write ``$SEGLIB_DATA/results/<experiment>-<profile>.json``.

    The runs not trained yet are trained first by :func:`train_pending` (side by side on a CPU).

    Returns the results document and the runs (contender -> one :class:`seglib.train.Run` per seed), for the
    chapter's pictures.
    """
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    contenders = _contenders(experiment, profile)
    document = results.new_document(experiment, profile.name, budget(root, profile))
    train_pending([experiment], root, profile, processes)
    runs: dict[str, list[train.Run]] = {}
    binary = experiment == "12_binary_segmentation"
    for name, contender in contenders.items():
        runs[name] = []
        for seed in seeds(profile, contender.seeds):
            trained = contender.train(root, profile, seed, verbose)
            runs[name].append(trained)
            scores = validation_scores(trained, root, profile, contender.category)
            figures = {**scores, **_training_figures(trained, profile, "dice" if binary else "mean_iou")}
            if experiment in ("10_comparison", "10b_modern_architectures"):
                figures["ms_per_image"] = milliseconds_per_image(trained.model, profile)
            results.add_seed(document, name, figures)
    _add_untrained(experiment, document, root, profile)
    document["budget"]["trained_on"] = sorted({run.machine for seeds_runs in runs.values() for run in seeds_runs})
    if write:
        results.write(document, results.results_path(experiment, profile.name))
    return document, runs


def _add_untrained(experiment: str, document: dict, root, profile: Profile) -> None:
    """The contenders that need no training of their own: baselines, and the book's U-Net read another way."""
    majority = f"always '{labels.CATEGORY_NAMES[MAJORITY]}'"
    if experiment in ("09_training", "11_classical_baseline"):
        results.add_seed(document, majority, _category_figures(train.evaluate(_majority, root, "val", profile)))
    if experiment == "11_classical_baseline":
        for seed in seeds(profile):
            start = time.perf_counter()
            baseline = fit_filter_baseline(str(root), profile, seed)
            seconds = time.perf_counter() - start
            evaluation = train.evaluate(features.baseline_predictor(baseline), root, "val", profile)
            results.add_seed(document, "filters + logistic regression",
                             {**_category_figures(evaluation), "seconds": seconds,
                              "parameters": baseline.count_params()})
    if experiment == "12_binary_segmentation":
        for seed in seeds(profile):
            unet = train_book_unet(root, profile, seed).model
            read_as_vehicle = lambda images, unet=unet: (  # noqa: E731
                modelio.predict_categories(unet, images) == VEHICLE).astype(np.uint8)
            results.add_seed(document, "U-Net, 8 categories, read as vehicle",
                             _binary_figures(train.evaluate_binary(read_as_vehicle, root, VEHICLE, "val", profile)))
        for name, answer in (("always vehicle", 1), ("never vehicle", 0)):
            constant = lambda images, answer=answer: np.full(images.shape[:3], answer, np.uint8)  # noqa: E731
            results.add_seed(document, name,
                             _binary_figures(train.evaluate_binary(constant, root, VEHICLE, "val", profile)))
