"""seglib.export: each export computes what the Keras model computes (exactly, or within what its number format
allows), int8 really is int8 and about 4x smaller, LiteRT runs the files as the deprecated ``tf.lite.Interpreter``
did, Keras's LiteRT export writes what the converter writes, and bad requests are refused with errors that say
why."""

import io
import os
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import interpreter as litert
from PIL import Image

from seglib import cityscapes, data, experiments, export, labels, masks, modelio, models, predict, profiles, train
from seglib.profiles import Profile

SIZE = (128, 256)   # the tiny_model_path fixture's input size
TINY = Profile("tiny", (64, 128), {"train": 5, "val": 2, "test": 1}, SIZE, 2, 2, 1,
               learning_rate=1e-3, patience=10, seeds=1, comparison_seeds=1)
#: Chapter 9's model is the book's U-Net at the ci profile's input size (64x128, the small dataset's frame size).
BOOK = profiles.get_profile("ci")


@pytest.fixture(scope="module")
def tiny_model(tiny_model_path):
    return keras.models.load_model(tiny_model_path, compile=False)


@pytest.fixture(scope="module")
def calibration(small_dataset):
    return export.representative_images(small_dataset, SIZE)


@pytest.fixture(scope="module")
def tflite_files(tiny_model_path, calibration, tmp_path_factory):
    """The tiny model as TFLite float32 ("none"), float16 and int8."""
    folder = tmp_path_factory.mktemp("tflite")
    return {quantization: export.to_tflite(tiny_model_path, folder / f"{quantization}.tflite", quantization,
                                           calibration if quantization == "int8" else None)
            for quantization in export.QUANTIZATIONS}


@pytest.fixture(scope="module")
def images():
    """Two images at the model's input size, as the model sees them: (2, 128, 256, 3) float32 in [0, 1]."""
    return np.random.default_rng(7).integers(0, 256, (2, *SIZE, 3)).astype(np.float32) / np.float32(255.0)


def tflite_probabilities(path, images: np.ndarray) -> np.ndarray:
    predictor = export.TFLitePredictor(path)
    return np.stack([predictor.scores(image) for image in images])


def conv_filters(model: keras.Model) -> list[int]:
    return [layer.filters for layer in model.layers if isinstance(layer, (keras.layers.Conv2D,
                                                                          keras.layers.Conv2DTranspose))]


def test_saved_model_reloaded_by_tensorflow_equals_keras(tiny_model, images, tmp_path):
    folder = export.export_saved_model(tiny_model, tmp_path / "saved")
    loaded = tf.saved_model.load(str(folder))   # plain TensorFlow: no Keras, no seglib
    signature = loaded.signatures["serving_default"]
    assert signature.structured_input_signature[1]["image"].shape.as_list() == [None, *SIZE, 3]
    np.testing.assert_allclose(loaded.serve(tf.constant(images)).numpy(), tiny_model(images).numpy(), atol=1e-5)
    assert export.file_size(folder) == sum(os.path.getsize(os.path.join(directory, name))
                                           for directory, _, names in os.walk(folder) for name in names)


def test_float32_tflite_equals_keras(tiny_model, tflite_files, images):
    expected = tiny_model(images).numpy()
    got = tflite_probabilities(tflite_files["none"], images)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_array_equal(got.argmax(-1), expected.argmax(-1))


def test_tflite_predictor_gives_the_keras_predictors_masks(tiny_model, tiny_model_path, tflite_files, small_dataset):
    """Same resize, same /255, same argmax, same nearest resize back. Float32 TFLite sums in another order than
    TensorFlow and differs by ~1e-7; the untrained model's two best classes can be that close (the smallest gap is
    ~1e-7 on these images, and exact ties occur where ReLUs are dead), so equality is required on every pixel whose
    gap is over 1e-5 and on >= 99.9 % of all pixels (in practice every pixel agrees here)."""
    keras_predictor, tflite_predictor = predict.Predictor(tiny_model_path), export.TFLitePredictor(tflite_files["none"])
    frame = cityscapes.read_image(cityscapes.list_frames(small_dataset, "val")[0].image_path)   # 64x128: upscaled
    odd = np.random.default_rng(3).integers(0, 256, (97, 301, 3), dtype=np.uint8)             # another aspect ratio
    for image in (frame, odd):
        mask, expected = tflite_predictor.predict_array(image), keras_predictor.predict_array(image)
        assert mask.shape == image.shape[:2] and mask.dtype == np.uint8
        small = modelio.to_model_input(modelio.resize_image_tf(image, SIZE).numpy())[np.newaxis]
        best_two = np.sort(tiny_model(small).numpy()[0], axis=-1)[..., -2:]
        clear = (best_two[..., 1] - best_two[..., 0] > 1e-5).astype(np.uint8)[..., np.newaxis]
        clear = masks.resize_nearest(clear[..., 0], image.shape[:2]).astype(bool)
        np.testing.assert_array_equal(mask[clear], expected[clear])
        assert np.mean(mask == expected) >= 0.999 and clear.mean() > 0.99
        assert len(np.unique(mask)) > 1   # not a constant mask that any two models would share
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    from_bytes = tflite_predictor.predict_bytes(buffer.getvalue())
    assert from_bytes.as_json() == keras_predictor.predict_bytes(buffer.getvalue()).as_json()


def test_float16_stores_half_precision_weights_and_stays_close(tiny_model, tflite_files, images):
    """float16 keeps 11 significant bits: each weight moves by at most 2**-11 (~5e-4) of itself. Through the 18
    convolutions these errors add up to ~2e-4 on the probabilities here; atol 2e-3 leaves 10x room while still
    catching a broken conversion (wrong weights move probabilities by tenths)."""
    interpreter = export.load_interpreter(tflite_files["float16"])
    halves = [d for d in interpreter.get_tensor_details() if d["dtype"] == np.float16]
    assert len(halves) >= len(conv_filters(tiny_model))   # every kernel (and bias) stored as float16
    got = tflite_probabilities(tflite_files["float16"], images)
    difference = np.abs(got - tiny_model(images).numpy())
    assert 0 < difference.max() < 2e-3   # > 0: it is not the float32 file under another name
    ratio = export.file_size(tflite_files["float16"]) / export.file_size(tflite_files["none"])
    assert 0.45 < ratio < 0.6, ratio


def test_int8_file_holds_int8_tensors_and_is_about_4x_smaller(tiny_model, tflite_files):
    interpreter = export.load_interpreter(tflite_files["int8"])
    details = interpreter.get_tensor_details()
    io_indices = {interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]}
    assert {d["index"] for d in details if d["dtype"] == np.float32} == io_indices   # float only at the edges
    assert {np.dtype(d["dtype"]) for d in details} <= {np.dtype(np.float32), np.dtype(np.int8), np.dtype(np.int32)}
    # kernels: int8 with one scale per output channel, one per convolution of the Keras model
    kernels = [d for d in details if d["dtype"] == np.int8 and len(d["quantization_parameters"]["scales"]) > 1]
    assert Counter(len(d["quantization_parameters"]["scales"]) for d in kernels) == Counter(conv_filters(tiny_model))
    # activations: every image-shaped tensor inside the network is int8 with a positive scale
    activations = [d for d in details if len(d["shape"]) == 4 and d["shape"][0] == 1 and d["index"] not in io_indices
                   and d["shape"][-1] in (3, *conv_filters(tiny_model))]
    assert activations and all(d["dtype"] == np.int8 and d["quantization"][0] > 0 for d in activations)
    ratio = export.file_size(tflite_files["int8"]) / export.file_size(tflite_files["none"])
    assert 0.2 < ratio < 0.33, f"int8 is {ratio:.3f} of float32; 1 byte instead of 4 per weight plus scales"


@pytest.mark.slow
def test_int8_masks_agree_with_float_on_a_trained_model(tiny_model_path, small_dataset, calibration, tmp_path):
    """The untrained model's scores are nearly flat, so int8 rounding flips many of its argmaxes; a model trained
    a little has margins, and int8 then keeps its masks."""
    keras.utils.set_random_seed(0)
    model = keras.models.load_model(tiny_model_path, compile=False)
    _fit(model, small_dataset)
    int8 = export.TFLitePredictor(export.to_tflite(model, tmp_path / "int8.tflite", "int8", calibration))
    val = export.representative_images(small_dataset, SIZE, split="val")
    expected, got = model(val).numpy().argmax(-1), int8.predict_categories(val)
    shares = np.bincount(expected.ravel(), minlength=labels.NUM_CATEGORIES) / expected.size
    assert (shares > 0.01).sum() >= 3, f"the float model predicts almost one category: {shares}"
    assert np.mean(got == expected) > 0.9


def _fit(model: keras.Model, root) -> None:
    from seglib import losses

    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=losses.CrossEntropyLoss())
    model.fit(data.tf_dataset(root, "train", TINY, batch_size=5), epochs=15, verbose=0, shuffle=False)


def test_compare_exports_measures_every_format(tiny_model_path, small_dataset, tmp_path):
    results = export.compare_exports(tiny_model_path, small_dataset, tmp_path, TINY, repeats=1,
                                     representative_count=3, threads=1)
    assert [r.name for r in results] == ["Keras", "SavedModel", "TFLite float32", "TFLite float16", "TFLite int8"]
    keras_scores = train.evaluate(keras.models.load_model(tiny_model_path, compile=False), small_dataset, "val", TINY)
    assert results[0].evaluation.mean_category_iou == pytest.approx(keras_scores.mean_category_iou)
    for result in results[:3]:   # float32 everywhere: the same masks, so the same score
        assert result.agreement == 1.0, result.name
        assert result.evaluation.mean_category_iou == pytest.approx(keras_scores.mean_category_iou)
    assert results[0].size_bytes == os.path.getsize(tiny_model_path)
    assert results[4].size_bytes == os.path.getsize(tmp_path / "model_int8.tflite")
    assert all(r.seconds > 0 for r in results)
    assert [r.seconds_one_thread is None for r in results] == [True, True, False, False, False]
    table = export.comparison_table(results).splitlines()
    assert len(table) == 2 + len(results) and table[2].startswith("| Keras | ") and "| 1.00 |" in table[2]


# ---------------------------------------------------------------------------------------------------------
# LiteRT: the interpreter that replaces tf.lite.Interpreter, and Keras's LiteRT export
# ---------------------------------------------------------------------------------------------------------

DEPRECATION = ".*tf.lite.Interpreter is deprecated"   # TensorFlow 2.21's warning, at every tf.lite.Interpreter(...)


@pytest.fixture(scope="module")
def book_model():
    """Chapter 9's model, the book's U-Net (16 filters, batch normalisation) at the ci profile's 64x128, with fixed
    random weights: Keras's seeded initialisation, and seeded batch-normalisation statistics and scales, so that
    the normalisation the converter folds into the convolutions is not the identity an untrained model has."""
    keras.utils.set_random_seed(0)
    model = experiments.book_unet(BOOK)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 2.0, variance.shape)])
    return model


@pytest.fixture(scope="module")
def book_images(small_dataset):
    """The small dataset's 2 val frames and 2 random images, as the model sees them: (4, 64, 128, 3) float32."""
    frames = export.representative_images(small_dataset, BOOK.image_size, split="val")
    noise = np.random.default_rng(5).integers(0, 256, (2, *BOOK.image_size, 3)).astype(np.float32) / np.float32(255)
    return np.concatenate([frames, noise])


@pytest.fixture(scope="module")
def book_files(book_model, small_dataset, tmp_path_factory):
    """``{quantization: {"keras": file, "converter": file}}``: the book's U-Net through Keras's
    ``model.export(format="litert")`` and through ``tf.lite.TFLiteConverter`` on its SavedModel."""
    folder = tmp_path_factory.mktemp("book_tflite")
    saved = export.export_saved_model(book_model, folder / "saved_model")
    calibration = export.representative_images(small_dataset, BOOK.image_size)
    return {quantization: {source: export.to_tflite(model, folder / f"{source}_{quantization}.tflite", quantization,
                                                    calibration if quantization == "int8" else None)
                           for source, model in (("keras", book_model), ("converter", saved))}
            for quantization in export.QUANTIZATIONS}


def run_interpreter(interpreter, images: np.ndarray) -> np.ndarray:
    """``(B, h, w, 3) float32`` through an allocated interpreter one image at a time -> ``(B, h, w, 8)``."""
    image_input, output = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    found = []
    for image in images:
        interpreter.set_tensor(image_input["index"], image[np.newaxis])
        interpreter.invoke()
        found.append(interpreter.get_tensor(output["index"])[0])
    return np.stack(found)


def tf_lite_reference(path, images: np.ndarray) -> np.ndarray:
    """What the deprecated ``tf.lite.Interpreter`` computes on ``path``: only the reference LiteRT must match (its
    deprecation warning is expected here, and silenced)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=DEPRECATION, category=UserWarning)
        interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return run_interpreter(interpreter, images)


@pytest.mark.parametrize("quantization", export.QUANTIZATIONS)
def test_litert_computes_what_tf_lite_interpreter_computed(book_files, book_images, quantization):
    """The same file, the same images: LiteRT's outputs equal the old interpreter's to float32 rounding (1e-6 on
    probabilities in [0, 1]: a few units in the last place; int8 outputs are multiples of a scale near 1/256, so
    for them this is equality). Found here: exactly equal, every quantization."""
    path = book_files[quantization]["keras"]
    expected = tf_lite_reference(path, book_images)
    got = run_interpreter(export.load_interpreter(path), book_images)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got.argmax(-1), expected.argmax(-1))
    one_thread = run_interpreter(export.load_interpreter(path, num_threads=1), book_images)
    np.testing.assert_allclose(one_thread, expected, rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def chapter_9_files(tmp_path_factory):
    """Chapter 9's trained U-Net for the ci profile (the run the book build trained, read back; trained now where
    no chapter has trained it yet: a file lock lets chapter 9's notebook and this test share one run) as a TFLite
    file per quantization, and 4 validation frames of the ci dataset."""
    from seglib import datasets

    root = datasets.dataset_root(BOOK)
    trained = experiments.book_model_path(root, BOOK)
    folder = tmp_path_factory.mktemp("chapter_9_tflite")
    calibration = export.representative_images(root, BOOK.image_size)
    files = {quantization: export.to_tflite(trained, folder / f"{quantization}.tflite", quantization,
                                            calibration if quantization == "int8" else None)
             for quantization in export.QUANTIZATIONS}
    return files, export.representative_images(root, BOOK.image_size, count=4, split="val")


@pytest.mark.slow
@pytest.mark.parametrize("quantization", export.QUANTIZATIONS)
def test_litert_computes_what_tf_lite_interpreter_computed_on_chapter_9s_trained_model(chapter_9_files,
                                                                                      quantization):
    """The same check on the weights chapter 9 trained (what chapter 15 exports and the web app could serve)."""
    files, images = chapter_9_files
    expected = tf_lite_reference(files[quantization], images)
    got = run_interpreter(export.load_interpreter(files[quantization]), images)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got.argmax(-1), expected.argmax(-1))


@pytest.mark.parametrize("quantization", export.QUANTIZATIONS)
def test_keras_litert_export_gives_what_the_converter_gives(book_files, book_images, quantization):
    """``model.export(format="litert")`` runs the converter on a SavedModel Keras writes, with the settings of
    ``export.converter_options``: the same outputs as the converter on seglib's SavedModel (the same bytes, here)."""
    files = book_files[quantization]
    from_keras = run_interpreter(export.load_interpreter(files["keras"]), book_images)
    from_converter = run_interpreter(export.load_interpreter(files["converter"]), book_images)
    np.testing.assert_allclose(from_keras, from_converter, rtol=0, atol=1e-6)
    assert Path(files["keras"]).read_bytes() == Path(files["converter"]).read_bytes()


def test_keras_litert_export_of_the_book_unet_equals_keras(book_model, book_files, book_images):
    """Float32 LiteRT against Keras itself on chapter 9's model: float32 sums in another order, nothing more."""
    expected = book_model(book_images, training=False).numpy()
    got = run_interpreter(export.load_interpreter(book_files["none"]["keras"]), book_images)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    best_two = np.sort(expected, axis=-1)[..., -2:]
    clear = best_two[..., 1] - best_two[..., 0] > 1e-5
    np.testing.assert_array_equal(got.argmax(-1)[clear], expected.argmax(-1)[clear])


def test_seglib_converts_and_runs_with_no_deprecation_warning(tiny_model, images, tmp_path):
    """seglib's own path (Keras's LiteRT export, LiteRT's interpreter) raises no deprecation warning: the one
    chapter 15 used to print came from ``tf.lite.Interpreter``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictor = export.TFLitePredictor(export.to_tflite(tiny_model, tmp_path / "m.tflite"))
        predictor.scores(images[0])
    assert isinstance(predictor.interpreter, litert.Interpreter)
    assert not [str(warning.message) for warning in caught if "deprecat" in str(warning.message).lower()]


NO_TENSORFLOW = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ImportError("no tensorflow on this machine")
sys.meta_path.insert(0, Block())
import numpy as np
from ai_edge_litert.interpreter import Interpreter
interpreter = Interpreter(model_path=sys.argv[1])
interpreter.allocate_tensors()
interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.load(sys.argv[2]))
interpreter.invoke()
np.save(sys.argv[3], interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
print("tensorflow" in sys.modules)
"""


def test_litert_runs_a_file_on_a_machine_without_tensorflow(book_files, book_images, tmp_path):
    """What goes on the car: LiteRT alone (TensorFlow blocked from importing) gives the outputs seen here."""
    path = book_files["none"]["keras"]
    np.save(tmp_path / "image.npy", book_images[:1])
    result = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, str(path), str(tmp_path / "image.npy"),
                             str(tmp_path / "out.npy")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "False"   # ran, and TensorFlow was never imported
    expected = run_interpreter(export.load_interpreter(path), book_images[:1])
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)


# ---------------------------------------------------------------------------------------------------------
# Bad requests
# ---------------------------------------------------------------------------------------------------------


def test_unknown_quantization_names_the_choices(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="unknown quantization 'int4'; choose one of none, float16, int8"):
        export.to_tflite(tiny_model, tmp_path / "m.tflite", "int4")


def test_int8_needs_representative_images_scaled_as_training_does(tiny_model, calibration, tmp_path):
    with pytest.raises(ValueError, match="representative images"):
        export.to_tflite(tiny_model, tmp_path / "m.tflite", "int8")
    with pytest.raises(ValueError, match=r"floats in \[0, 1\]"):
        export.to_tflite(tiny_model, tmp_path / "m.tflite", "int8", calibration * 255)
    with pytest.raises(ValueError, match=r"must be \(N, 128, 256, 3\)"):
        export.to_tflite(tiny_model, tmp_path / "m.tflite", "int8", calibration[:, :64])
    assert not (tmp_path / "m.tflite").exists()


def test_models_that_are_not_8_category_are_refused(tmp_path):
    three_classes = models.unet((32, 64, 3), num_classes=3, base_filters=2, depth=1)
    with pytest.raises(ValueError, match="predicts 3 classes"):
        export.to_tflite(three_classes, tmp_path / "m.tflite")
    with pytest.raises(ValueError, match="predicts 3 classes"):
        export.export_saved_model(three_classes, tmp_path / "saved")


def test_a_model_of_any_input_size_needs_image_size(tmp_path):
    any_size = models.unet((None, None, 3), base_filters=2, depth=1)
    with pytest.raises(ValueError, match=r"needs a fixed input size: pass image_size=\(h, w\)"):
        export.to_tflite(any_size, tmp_path / "m.tflite")
    path = export.to_tflite(any_size, tmp_path / "m.tflite", image_size=(32, 48))
    predictor = export.TFLitePredictor(path)
    assert predictor.image_size == (32, 48)
    image = np.random.default_rng(0).random((1, 32, 48, 3), np.float32)
    np.testing.assert_allclose(predictor.scores(image[0]), any_size(image).numpy()[0], atol=1e-4)
    with pytest.raises(ValueError, match="SavedModel keeps the size"):
        export.to_tflite(export.export_saved_model(any_size, tmp_path / "saved"), tmp_path / "n.tflite",
                         image_size=(32, 48))
    with pytest.raises(ValueError, match="a TFLite model needs a fixed input size"):
        export.to_tflite(tmp_path / "saved", tmp_path / "n.tflite")   # exported without image_size: any size


def test_image_size_must_match_a_fixed_size_model(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="takes 128x256 images, not 64x64"):
        export.to_tflite(tiny_model, tmp_path / "m.tflite", image_size=(64, 64))


def test_missing_files_and_bad_images(tflite_files, tmp_path):
    with pytest.raises(FileNotFoundError, match="no .keras model file"):
        export.to_tflite(tmp_path / "missing.keras", tmp_path / "m.tflite")
    with pytest.raises(FileNotFoundError, match="TFLite file not found"):
        export.TFLitePredictor(tmp_path / "missing.tflite")
    with pytest.raises(FileNotFoundError):
        export.file_size(tmp_path / "missing")
    predictor = export.TFLitePredictor(tflite_files["none"])
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        predictor.predict_array(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(B, 128, 256, 3\)"):
        predictor.predict_categories(np.zeros((1, 64, 64, 3), np.float32))
    with pytest.raises(predict.ImageError):
        predictor.predict_bytes(b"not an image")


def test_tflite_converter_is_set_up_for_each_quantization(tiny_model, calibration, tmp_path):
    builtins, int8_only = {tf.lite.OpsSet.TFLITE_BUILTINS}, {tf.lite.OpsSet.TFLITE_BUILTINS_INT8}
    assert export.converter_options() == {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    folder = export.export_saved_model(tiny_model, tmp_path / "saved")
    plain = export.tflite_converter(folder)
    assert not plain.optimizations and set(plain.target_spec.supported_ops) == builtins  # float32, nothing optimised
    half = export.tflite_converter(folder, "float16")
    assert half.optimizations == [tf.lite.Optimize.DEFAULT] and half.target_spec.supported_types == [tf.float16]
    assert set(half.target_spec.supported_ops) == builtins
    integer = export.tflite_converter(folder, "int8", calibration[:3])
    assert integer.optimizations == [tf.lite.Optimize.DEFAULT]
    assert set(integer.target_spec.supported_ops) == int8_only
    fed = list(integer.representative_dataset())  # one image at a time, with a batch axis
    assert len(fed) == 3 and all(batch[0].shape == (1, *SIZE, 3) for batch in fed)
    np.testing.assert_array_equal(fed[2][0][0], calibration[2])
    options = export.converter_options("int8", calibration[:3])   # what Keras's export gets: the same settings
    assert sorted(options) == ["optimizations", "representative_dataset", "target_spec"]
    assert options["target_spec"] == {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}
    with pytest.raises(ValueError, match="unknown quantization 'int4'; choose one of none, float16, int8"):
        export.tflite_converter(folder, "int4")
    with pytest.raises(ValueError, match="representative images"):
        export.tflite_converter(folder, "int8")
    with pytest.raises(ValueError, match="unknown quantization 'dynamic'"):
        export.converter_options("dynamic")


class MatrixInverse(keras.layers.Layer):
    """Inverts each 2x2 image plane (plus 3I) of each channel: ``tf.linalg.inv`` is a TensorFlow op with no TFLite
    builtin, which only the Flex delegate (not in LiteRT's runtime) could run."""

    def call(self, x):
        planes = tf.transpose(x, (0, 3, 1, 2)) + 3.0 * tf.eye(2)
        return tf.transpose(tf.linalg.inv(planes), (0, 2, 3, 1))


def test_a_model_that_needs_a_tensorflow_op_fails_to_convert(tmp_path):
    """Keras's LiteRT export alone would also allow TensorFlow ops, and write a file LiteRT's runtime refuses at
    load time; with converter_options' builtins-only setting the conversion itself fails, naming the op."""
    inputs = keras.Input((2, 2, 3))
    model = keras.Model(inputs, keras.layers.Softmax()(MatrixInverse()(keras.layers.Conv2D(8, 1)(inputs))))
    with pytest.raises(Exception, match="MatrixInverse"):
        export.to_tflite(model, tmp_path / "m.tflite")
    assert not (tmp_path / "m.tflite").exists()


def test_file_names_and_thread_counts_are_checked(tiny_model, book_files, tmp_path):
    with pytest.raises(ValueError, match=r"ends in \.tflite .* got 'm\.lite'"):
        export.to_tflite(tiny_model, tmp_path / "m.lite")
    assert not (tmp_path / "m.lite").exists()
    with pytest.raises(ValueError, match="num_threads must be at least 1"):
        export.load_interpreter(book_files["none"]["keras"], num_threads=0)
