"""Exports for the car's embedded computer: a TensorFlow SavedModel and TensorFlow Lite files (float32, float16,
int8), a predictor that runs a ``.tflite`` file with LiteRT, and one measurement that compares them with the Keras
model.

* :func:`export_saved_model` writes the model as a SavedModel (``model.export(..., format="tf_saved_model")``):
  a graph and its weights that TensorFlow Serving or C++ load without Python, Keras or seglib.
* :func:`to_tflite` converts a Keras model (or a ``.keras`` file) with Keras's own
  ``model.export(path, format="litert")``, and a SavedModel folder with ``tf.lite.TFLiteConverter``. Both are
  one converter: Keras writes a SavedModel and runs ``tf.lite.TFLiteConverter.from_saved_model`` on it, setting
  each keyword argument of ``export`` on the converter; :func:`converter_options` gives those arguments, for both
  paths, and on the same model the two paths write the same file (tested, all three quantizations).
  ``quantization`` is ``"none"`` (float32), ``"float16"`` (weights stored as float16, half the size; the CPU
  computes in float32) or ``"int8"`` (full-integer: weights and activations int8, with each tensor's
  ``scale``/``zero_point`` calibrated on ``representative_images``: train frames preprocessed exactly as training
  does, :func:`representative_images`). A TFLite model has one fixed input size: the model's own, or
  ``image_size`` for a model that takes any size. Only TFLite's builtin operations are allowed (Keras would also
  allow TensorFlow ops, which LiteRT's runtime cannot run): a model that needs one fails to convert.
* **int8 keeps float32 input and output.** The converter puts a quantize op after the input and a dequantize op
  before the output, so :class:`TFLitePredictor` feeds every file the same ``/255`` floats and takes the same
  argmax: the int8 file is a drop-in replacement, and masks from the three files differ only by what
  quantization itself changes. The two edge ops cost two passes over one image. An integer-only accelerator
  (an NPU, an Edge TPU) would want ``uint8``/``int8`` input and output instead (``inference_input_type``), and
  the caller would then quantize the image with the input tensor's ``scale``/``zero_point``: a different
  contract, which :class:`TFLitePredictor` refuses with a clear error rather than guessing.
* :class:`TFLitePredictor` has :class:`seglib.predict.Predictor`'s interface (``predict_array``,
  ``predict_bytes``) and the model's contract (:mod:`seglib.modelio`: resize, ``/255``, argmax, nearest resize
  back to the image's size); on the float32 file its masks equal the Keras predictor's (tested).
* :func:`compare_exports` measures, for the Keras model and each export, the file size, the CPU latency per image
  at the model's input size and the official category mIoU on a split (:func:`seglib.train.evaluate`);
  ``benchmarks/bench_export.py`` and chapter 15 both print its :func:`comparison_table`.

The interpreter is LiteRT's (``pip install ai-edge-litert``; ``ai_edge_litert.interpreter.Interpreter``), the
runtime that goes on the car without TensorFlow. TensorFlow 2.21 still ships ``tf.lite.Interpreter`` but warns on
every use that it is deprecated and scheduled for deletion in favour of LiteRT; on the same file the two give the
same outputs (tested).
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np

from seglib import backends, bench, data, labels, modelio, predict, train
from seglib.profiles import Profile, get_profile

if TYPE_CHECKING:
    from ai_edge_litert import interpreter as litert

#: TensorFlow, imported on first use: every export below is TensorFlow-only (backends.require_tensorflow); running a
#: .tflite file (load_interpreter) needs only LiteRT.
tf = backends.LazyTensorFlow()

__all__ = ["QUANTIZATIONS", "export_saved_model", "to_tflite", "converter_options", "tflite_converter",
           "representative_images", "load_interpreter", "TFLitePredictor", "file_size", "ExportResult",
           "compare_exports", "comparison_table"]

#: The ``quantization`` choices of :func:`to_tflite`.
QUANTIZATIONS = ("none", "float16", "int8")
#: Representative images used to calibrate int8 (TensorFlow's guide suggests about a hundred).
REPRESENTATIVE_COUNT = 100


def file_size(path: str | os.PathLike) -> int:
    """Bytes of a file, or of every file under a folder (a SavedModel is a folder)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())
    raise FileNotFoundError(f"nothing at {path}")


def _load_keras(model: keras.Model | str | os.PathLike) -> keras.Model:
    if isinstance(model, keras.Model):
        return model
    if not Path(model).is_file():
        raise FileNotFoundError(f"no .keras model file at {model}")
    from seglib import keras_metrics, losses, models  # noqa: F401 - register the custom objects of saved models

    return keras.models.load_model(model, compile=False)


def _check_categories(classes: int | None) -> None:
    if classes != labels.NUM_CATEGORIES:
        raise ValueError(f"the model predicts {classes} classes; exports here are for "
                         f"{labels.NUM_CATEGORIES}-category models ({', '.join(labels.CATEGORY_NAMES)})")


def _fixed_size(model: keras.Model, image_size: Sequence[int] | None) -> tuple[int, int] | None:
    """The ``(h, w)`` to export at: the model's own, or ``image_size`` for a model that takes any size."""
    own = tuple(model.input_shape[1:3])
    if image_size is None:
        return None if None in own else own
    size = tuple(int(side) for side in image_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"image_size must be (height, width) >= 1, got {image_size}")
    if None not in own and own != size:
        raise ValueError(f"the model takes {own[0]}x{own[1]} images, not {size[0]}x{size[1]}")
    return size


def export_saved_model(model: keras.Model | str | os.PathLike, folder: str | os.PathLike,
                       image_size: Sequence[int] | None = None) -> Path:
    """Write ``model`` (a ``keras.Model`` or ``.keras`` path) as a SavedModel in ``folder``; returns ``folder``.

    The SavedModel's ``serve`` endpoint (also signature ``serving_default``) maps ``(B, h, w, 3) float32``
    images in [0, 1] to ``(B, h, w, 8) float32`` probabilities; ``h, w`` are the model's (or ``image_size``,
    which fixes a model that takes any size; without it such a model is exported with a dynamic size).
    """
    backends.require_tensorflow("seglib.export.export_saved_model", "the .keras file (it loads on every backend)")
    model = _load_keras(model)
    _check_categories(model.output_shape[-1])
    size = _fixed_size(model, image_size) or tuple(model.input_shape[1:3])
    with _no_info_logs():
        model.export(str(folder), format="tf_saved_model", input_signature=_signature(size), verbose=False)
    return Path(folder)


@contextlib.contextmanager
def _no_info_logs():
    """TensorFlow logs ``INFO ... Assets written to: <folder>`` whenever a SavedModel is written, and Keras's LiteRT
    export writes one in a temporary folder per conversion: keep TensorFlow's warnings, drop those lines."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def _signature(size: Sequence[int | None]) -> list:
    """The input signature of every export: a batch of ``(h, w, 3) float32`` images named ``image``."""
    return [tf.TensorSpec([None, *size, 3], tf.float32, name="image")]


def _saved_model_size(folder: Path) -> tuple[int, int]:
    """``(h, w)`` of a SavedModel's ``serving_default`` input; ``ValueError`` if it is not a fixed-size image."""
    signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"{folder}: expected one image input and one output, got {list(inputs)} -> {list(outputs)}")
    shape, classes = next(iter(inputs.values())).shape, next(iter(outputs.values())).shape[-1]
    _check_categories(classes)
    if shape.rank != 4 or shape[-1] != 3 or None in shape[1:3]:
        raise ValueError(f"{folder} takes images of shape {shape}; a TFLite model needs a fixed input size: "
                         "convert the Keras model with image_size=(h, w) instead")
    return int(shape[1]), int(shape[2])


def representative_images(root: str | os.PathLike, image_size: Sequence[int], count: int = REPRESENTATIVE_COUNT,
                          split: str = "train") -> np.ndarray:
    """The first ``count`` frames of ``split``, preprocessed as training does (:mod:`seglib.modelio`'s resize and
    ``/255``, no augmentation): ``(N, h, w, 3) float32`` in [0, 1], for calibrating int8."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    frames = data.frames_with_labels(root, split)
    sequence = data.SegmentationSequence(root, split, image_size=image_size, batch_size=min(count, len(frames)))
    return sequence[0][0]


def _check_representative(images, size: tuple[int, int]) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != (*size, 3) or len(images) == 0:
        raise ValueError(f"representative images must be (N, {size[0]}, {size[1]}, 3), got {images.shape}")
    if not np.issubdtype(images.dtype, np.floating) or images.min() < 0 or images.max() > 1:
        raise ValueError(f"representative images must be floats in [0, 1] as the model sees them (uint8 / 255), "
                         f"got {images.dtype} in [{images.min()}, {images.max()}]")
    return images.astype(np.float32)


def _check_quantization(quantization: str, images) -> None:
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r}; choose one of {', '.join(QUANTIZATIONS)}")
    if quantization == "int8" and images is None:
        raise ValueError("int8 quantization calibrates each tensor's range on representative images: pass "
                         "them, export.representative_images(root, image_size)")


def converter_options(quantization: str = "none", images: np.ndarray | None = None) -> dict:
    """The ``tf.lite.TFLiteConverter`` settings for ``quantization``, as the keyword arguments of Keras's
    ``model.export(path, format="litert", **options)`` (Keras sets each on its converter; ``target_spec`` is a
    dict of ``converter.target_spec`` attributes). :func:`tflite_converter` sets the same ones.

    ``quantization``: ``"none"`` (float32 weights and arithmetic), ``"float16"`` (weights stored as float16) or
    ``"int8"`` (weights and activations int8, each tensor's range calibrated on ``images``: ``(N, h, w, 3)
    float32`` in [0, 1], see :func:`representative_images`; integer-only kernels, so the conversion fails rather
    than leave a float op). Builtin TFLite operations only, as LiteRT's runtime has no TensorFlow ops. Input and
    output stay float32.
    """
    _check_quantization(quantization, images)
    if quantization == "float16":
        return {"optimizations": [tf.lite.Optimize.DEFAULT],
                "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS], "supported_types": [tf.float16]}}
    if quantization == "int8":
        return {"optimizations": [tf.lite.Optimize.DEFAULT],
                "representative_dataset": lambda: ([image[np.newaxis]] for image in images),
                "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}}  # fail rather than keep floats
    return {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}


def tflite_converter(folder: str | os.PathLike, quantization: str = "none",
                     images: np.ndarray | None = None) -> tf.lite.TFLiteConverter:
    """The ``tf.lite.TFLiteConverter`` that :func:`to_tflite` runs on a SavedModel ``folder``
    (:func:`export_saved_model`), set up with :func:`converter_options` for ``quantization`` (and ``images`` for
    int8) as Keras sets up its own, but not yet run (call ``.convert()`` for the file's bytes)."""
    options = converter_options(quantization, images)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(folder))
    for name, value in options.pop("target_spec").items():
        setattr(converter.target_spec, name, value)
    for name, value in options.items():
        setattr(converter, name, value)
    return converter


def to_tflite(model: keras.Model | str | os.PathLike, path: str | os.PathLike, quantization: str = "none",
              representative_images: np.ndarray | None = None, image_size: Sequence[int] | None = None) -> Path:
    """Convert ``model`` (a ``keras.Model``, a ``.keras`` file or a SavedModel folder) to a TFLite file at ``path``
    (its name must end in ``.tflite``).

    ``quantization``: ``"none"`` (float32), ``"float16"`` or ``"int8"`` (needs ``representative_images``,
    ``(N, h, w, 3) float32`` in [0, 1]). ``image_size`` fixes the input size of a Keras model that takes any size.
    A Keras model goes through ``model.export(path, format="litert", **converter_options(...))``, a SavedModel
    through :func:`tflite_converter`: the same settings, the same file. Input and output stay float32 in all three
    (see the module docstring). Returns ``path``.
    """
    backends.require_tensorflow("seglib.export.to_tflite", "the .keras file (it loads on every backend)")
    _check_quantization(quantization, representative_images)
    path = Path(path)
    if path.suffix != ".tflite":
        raise ValueError(f"a TFLite file's name ends in .tflite (as Keras's LiteRT export requires), got {path.name!r}")
    keras_model, size = _source(model, image_size)
    images = _check_representative(representative_images, size) if quantization == "int8" else None
    path.parent.mkdir(parents=True, exist_ok=True)
    if keras_model is None:
        path.write_bytes(tflite_converter(model, quantization, images).convert())
    else:
        with _no_info_logs():
            keras_model.export(str(path), format="litert", input_signature=_signature(size), verbose=False,
                               **converter_options(quantization, images))
    return path


def _source(model: keras.Model | str | os.PathLike,
            image_size: Sequence[int] | None) -> tuple[keras.Model | None, tuple[int, int]]:
    """What :func:`to_tflite` converts: ``(the Keras model, or None for a SavedModel folder; the fixed input size)``."""
    if not isinstance(model, keras.Model) and (Path(model) / "saved_model.pb").is_file():
        if image_size is not None:
            raise ValueError("image_size applies to a Keras model; a SavedModel keeps the size it was exported with")
        return None, _saved_model_size(Path(model))
    keras_model = _load_keras(model)
    _check_categories(keras_model.output_shape[-1])
    size = _fixed_size(keras_model, image_size)
    if size is None:
        raise ValueError(f"the model takes images of any size {keras_model.input_shape}; a TFLite model needs a "
                         "fixed input size: pass image_size=(h, w)")
    return keras_model, size

# ---------------------------------------------------------------------------------------------------------
# Running a .tflite file
# ---------------------------------------------------------------------------------------------------------


def load_interpreter(path: str | os.PathLike, num_threads: int | None = None) -> litert.Interpreter:
    """LiteRT's interpreter (``ai_edge_litert.interpreter.Interpreter``) for ``path``, with its tensors allocated
    (``num_threads=None``: LiteRT's default). It needs no TensorFlow, and replaces ``tf.lite.Interpreter``, which
    TensorFlow 2.21 warns is deprecated; the two compute the same outputs on the same file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"TFLite file not found: {path}")
    if num_threads is not None and num_threads < 1:
        raise ValueError(f"num_threads must be at least 1 (or None for LiteRT's default), got {num_threads}")
    try:
        from ai_edge_litert import interpreter as litert_module
    except ImportError as error:
        raise ImportError("running a .tflite file needs LiteRT: pip install ai-edge-litert") from error
    interpreter = litert_module.Interpreter(model_path=str(path), num_threads=num_threads)
    interpreter.allocate_tensors()
    return interpreter


class TFLitePredictor:
    """A ``.tflite`` segmentation model with :class:`seglib.predict.Predictor`'s interface and preprocessing.

    The file takes ``(1, h, w, 3) float32`` images in [0, 1] and gives ``(1, h, w, 8) float32`` probabilities, as
    every file :func:`to_tflite` writes (int8 ones quantize inside). Pre- and post-processing are TensorFlow ops
    here, to be the very ones the Keras predictor runs; on the car they are a resize and an argmax in C++.
    The file runs in LiteRT's interpreter (:func:`load_interpreter`); ``num_threads`` is its CPU threads
    (``None``: LiteRT's default).
    """

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None,
                 max_pixels: int = predict.MAX_PIXELS):
        self.path = Path(path)
        self.interpreter = load_interpreter(self.path, num_threads)
        self.input, self.output = self.interpreter.get_input_details()[0], self.interpreter.get_output_details()[0]
        shape, classes = self.input["shape"], int(self.output["shape"][-1])
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
            raise ValueError(f"{self.path}: expected a (1, h, w, 3) image input, got {shape.tolist()}")
        _check_categories(classes)
        dtypes = (np.dtype(self.input["dtype"]), np.dtype(self.output["dtype"]))
        if dtypes != (np.float32, np.float32):
            raise ValueError(f"{self.path} takes {dtypes[0]} and gives {dtypes[1]}; TFLitePredictor feeds float32 "
                             "images in [0, 1] as the Keras model sees them: convert with to_tflite (float32 I/O)")
        self.image_size = (int(shape[1]), int(shape[2]))
        self.max_pixels = max_pixels

    def scores(self, image: np.ndarray) -> np.ndarray:
        """``(h, w, 3) float32`` in [0, 1] at the model's size -> ``(h, w, 8) float32`` probabilities."""
        self.interpreter.set_tensor(self.input["index"], image[np.newaxis])
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])[0]

    def predict_categories(self, images: np.ndarray) -> np.ndarray:
        """``(B, h, w, 3) float32`` in [0, 1] -> ``(B, h, w) uint8`` categories (what :func:`train.evaluate` takes)."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[1:] != (*self.image_size, 3):
            raise ValueError(f"images must be (B, {self.image_size[0]}, {self.image_size[1]}, 3), got {images.shape}")
        return np.stack([modelio.to_categories(self.scores(image)) for image in images])

    def predict_array(self, image: np.ndarray) -> np.ndarray:
        """``(H, W, 3) uint8`` RGB -> ``(H, W) uint8`` category ids at the same size (as ``Predictor``)."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
        small = modelio.to_model_input(modelio.resize_image_tf(image, self.image_size).numpy())
        return modelio.to_full_size(self.predict_categories(small[np.newaxis])[0], image.shape[:2])

    def predict_bytes(self, content: bytes) -> predict.Prediction:
        """Image file bytes -> :class:`seglib.predict.Prediction` (bad bytes raise ``ImageError``)."""
        image = predict.decode_image(content, self.max_pixels)
        return predict.Prediction(image, self.predict_array(image))

# ---------------------------------------------------------------------------------------------------------
# Measuring: size, latency, accuracy
# ---------------------------------------------------------------------------------------------------------


@dataclass
class ExportResult:
    """One format's measurements. ``seconds``: median per image at the model's input size, model only, with
    TensorFlow's default threads (Keras, SavedModel: ``threads`` is ``None``) or ``threads`` interpreter threads
    (TFLite); ``seconds_one_thread``: TFLite with one thread (``None`` for TensorFlow, whose thread pool is fixed
    when it starts); ``agreement``: share of the split's pixels (at the model's size) predicted as the Keras model
    predicts them. ``samples`` and ``samples_one_thread`` keep every timed call behind the two medians, for
    :func:`seglib.bench.compare_times`."""

    name: str
    path: Path
    size_bytes: int
    seconds: float
    seconds_one_thread: float | None
    evaluation: train.Evaluation
    agreement: float
    threads: int | None = None
    samples: list[float] = field(default_factory=list)
    samples_one_thread: list[float] | None = None


@dataclass
class _Format:
    name: str
    path: Path
    predict_batch: Callable[[np.ndarray], np.ndarray]   # (B, h, w, 3) float32 -> (B, h, w) uint8
    time_one: Callable[[], object]                      # one image through the model, result materialised
    time_one_thread: Callable[[], object] | None = None
    threads: int | None = None


def _evaluate(form: _Format, root, profile: Profile, size: tuple[int, int]) -> tuple[train.Evaluation, np.ndarray]:
    """The format's evaluation on val, and its predictions at the model's size (to compare formats pixel by pixel)."""
    predictions: list[np.ndarray] = []

    def recorded(images: np.ndarray) -> np.ndarray:
        predictions.append(form.predict_batch(images))
        return predictions[-1]

    return train.evaluate(recorded, root, "val", profile, size), np.concatenate(predictions)


def _formats(model_path: Path, model: keras.Model, root, folder: Path, size: tuple[int, int], image: np.ndarray,
             batch_size: int, representative_count: int, threads: int) -> list[_Format]:
    one = tf.constant(image[np.newaxis])
    keras_call = tf.function(lambda x: model(x, training=False))   # as Predictor calls it
    saved = tf.saved_model.load(str(export_saved_model(model, folder / "saved_model", size)))
    formats = [
        _Format("Keras", model_path, lambda images: modelio.predict_categories(model, images, batch_size),
                lambda: keras_call(one).numpy()),
        _Format("SavedModel", folder / "saved_model",
                lambda images: modelio.to_categories(saved.serve(tf.constant(images)).numpy()),
                lambda: saved.serve(one).numpy())]
    calibration = representative_images(root, size, representative_count)
    for quantization, label in (("none", "float32"), ("float16", "float16"), ("int8", "int8")):
        path = to_tflite(model, folder / f"model_{label}.tflite", quantization, calibration)   # Keras's LiteRT export
        predictor, single = TFLitePredictor(path, threads), TFLitePredictor(path, 1)
        formats.append(_Format(f"TFLite {label}", path, predictor.predict_categories,
                               lambda predictor=predictor: predictor.scores(image),
                               lambda single=single: single.scores(image), threads))
    return formats


def compare_exports(model_path: str | os.PathLike, root: str | os.PathLike, folder: str | os.PathLike,
                    profile: Profile | str | None = None, repeats: int | None = None,
                    representative_count: int = REPRESENTATIVE_COUNT, threads: int | None = None) -> list[ExportResult]:
    """Export the ``.keras`` model at ``model_path`` into ``folder`` (SavedModel, TFLite float32/float16/int8, int8
    calibrated on ``root``'s train frames) and measure each format beside the Keras model: size, median latency
    per image over ``repeats`` (default: the profile's ``benchmark_repeats``; formats timed in turns) and the
    category mIoU on ``root``'s val split. TFLite runs with ``threads`` threads (default: all CPU cores) and with
    one. Returns one :class:`ExportResult` per format, Keras first."""
    backends.require_tensorflow("seglib.export.compare_exports", "the .keras file (it loads on every backend)")
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    repeats = repeats or profile.benchmark_repeats
    threads = threads or os.cpu_count() or 1
    folder, model_path = Path(folder), Path(model_path)
    model = _load_keras(model_path)
    size = _fixed_size(model, None) or tuple(profile.image_size)
    image = representative_images(root, size, 1, "val")[0]
    formats = _formats(model_path, model, root, folder, size, image, profile.batch_size, representative_count, threads)
    scored = [_evaluate(form, root, profile, size) for form in formats]
    timers = [form.time_one for form in formats] + [form.time_one_thread for form in formats if form.time_one_thread]
    samples = iter(bench.interleaved_sample_seconds(timers, repeats))   # in turns: a busy machine weighs on all alike
    default = [next(samples) for _ in formats]
    one_thread = [next(samples) if form.time_one_thread else None for form in formats]
    return [ExportResult(form.name, form.path, file_size(form.path), statistics.median(times),
                         statistics.median(single) if single else None, evaluation,
                         float(np.mean(predictions == scored[0][1])), form.threads, times, single)
            for form, times, single, (evaluation, predictions) in zip(formats, default, one_thread, scored)]


def comparison_table(results: Sequence[ExportResult]) -> str:
    """A Markdown table of :func:`compare_exports`'s results, with ratios to the first row (the Keras model)."""
    base = results[0]
    rows = []
    for result in results:
        one_thread = "—" if result.seconds_one_thread is None else f"{1000 * result.seconds_one_thread:.1f}"
        threads = "TF default" if result.threads is None else f"{result.threads} thread(s)"
        rows.append((result.name, f"{result.size_bytes / 1e6:.2f}", f"{result.size_bytes / base.size_bytes:.2f}",
                     f"{1000 * result.seconds:.1f} ({threads})", f"{result.seconds / base.seconds:.2f}", one_thread,
                     f"{result.evaluation.mean_category_iou:.4f}",
                     f"{result.evaluation.mean_category_iou - base.evaluation.mean_category_iou:+.4f}",
                     f"{100 * result.agreement:.2f}"))
    return bench.markdown_table(["format", "size (MB)", "size vs Keras", "ms/image", "time vs Keras",
                                 "ms/image (1 thread)", "category mIoU", "mIoU − Keras", "pixels as Keras (%)"], rows)
