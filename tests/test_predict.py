"""seglib.predict: the one prediction path. Decoding refuses bad uploads with the right HTTP status and converts
modes; the served mask equals what the training pipeline feeds the same model."""

import base64
import io
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from seglib import cityscapes, data, labels, predict


def png_bytes(image: Image.Image, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def rgb(rng=None) -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (40, 60, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def predictor(tiny_model_path):
    return predict.Predictor(tiny_model_path)


def test_rgb_png_decodes_to_its_pixels(rgb):
    np.testing.assert_array_equal(predict.decode_image(png_bytes(Image.fromarray(rgb))), rgb)


@pytest.mark.parametrize("mode, expected", [
    ("L", lambda rgb, grey: np.repeat(grey[..., None], 3, axis=2)),
    ("RGBA", lambda rgb, grey: rgb),          # alpha dropped, colours kept
    ("LA", lambda rgb, grey: np.repeat(grey[..., None], 3, axis=2)),
])
def test_modes_are_converted_not_refused(rgb, mode, expected):
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    image = Image.fromarray(rgb).convert(mode)
    if mode == "RGBA":
        image.putalpha(Image.fromarray(np.full(rgb.shape[:2], 7, np.uint8)))  # nearly transparent: still the colours
    np.testing.assert_array_equal(predict.decode_image(png_bytes(image)), expected(rgb, grey))


def test_sixteen_bit_grey_is_scaled_to_eight_bits():
    values = np.array([[0, 257, 65535, 32896]], np.uint16)  # 257 = 1 * 257, 32896 = 128 * 257
    decoded = predict.decode_image(png_bytes(Image.fromarray(values)))
    np.testing.assert_array_equal(decoded[..., 0], [[0, 1, 255, 128]])
    assert decoded.shape == (1, 4, 3)


def test_palette_image_decodes_to_its_colours():
    indices = np.array([[0, 1], [2, 1]], np.uint8)
    image = Image.frombytes("P", (2, 2), indices.tobytes())
    palette = [10, 20, 30, 200, 100, 0, 0, 0, 255]
    image.putpalette(palette + [0] * (768 - len(palette)))
    expected = np.array(palette, np.uint8).reshape(3, 3)[indices]
    np.testing.assert_array_equal(predict.decode_image(png_bytes(image)), expected)


def test_jpeg_decodes_like_pillow(rgb):
    data_ = png_bytes(Image.fromarray(rgb), "JPEG", quality=90)
    np.testing.assert_array_equal(predict.decode_image(data_), np.asarray(Image.open(io.BytesIO(data_))))


@pytest.mark.parametrize("make, status, message", [
    (lambda png: b"", 400, "empty"),
    (lambda png: b"this is a text file, not an image", 400, "not an image"),
    (lambda png: png[: len(png) // 2], 400, "truncated"),
    (lambda png: png_bytes(Image.new("RGB", (8, 8)), "GIF"), 415, "unsupported image format GIF"),
    (lambda png: png_bytes(Image.new("F", (8, 8)), "TIFF"), 415, "unsupported image format TIFF"),
    (lambda png: png_bytes(Image.new("L", (300, 200))), 413, "60,000 pixels"),
])
def test_bad_uploads_get_their_status(rgb, make, status, message):
    with pytest.raises(predict.ImageError, match=message) as error:
        predict.decode_image(make(png_bytes(Image.fromarray(rgb))), max_pixels=50_000)
    assert error.value.status == status and isinstance(error.value, ValueError)


def test_decompression_bombs_are_refused_before_decoding():
    # a 20000 x 20000 grey PNG compresses to well under a megabyte; decoding it would take 400 MB
    bomb = png_bytes(Image.new("L", (20_000, 20_000)), optimize=True)
    assert len(bomb) < 1_000_000
    with pytest.raises(predict.ImageError, match="too many pixels|400,000,000") as error:
        predict.decode_image(bomb)
    assert error.value.status == 413


def test_mask_png_round_trip_and_palette(rng):
    categories = rng.integers(0, labels.NUM_CATEGORIES, (9, 13)).astype(np.uint8)
    encoded = predict.mask_png(categories)
    np.testing.assert_array_equal(predict.decode_mask_png(encoded), categories)
    np.testing.assert_array_equal(predict.decode_mask_png(base64.b64encode(encoded).decode()), categories)
    with Image.open(io.BytesIO(encoded)) as image:  # a viewer shows the official category colours
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), np.array(labels.CATEGORY_PALETTE)[categories])
    with pytest.raises(ValueError, match="category"):
        predict.mask_png(np.full((2, 2), 9, np.uint8))


def test_served_mask_equals_the_training_pipeline_fed_to_the_model(predictor, small_dataset):
    # the training pipeline resizes frames to the model's size; the model's argmax there, resized back by nearest
    # neighbour, must be exactly what the server answers for the frame's PNG bytes
    size = predictor.image_size
    images, _ = next(iter(data.tf_dataset(small_dataset, "val", image_size=size, batch_size=8)))
    expected = np.argmax(predictor.model.predict(images, verbose=0), axis=-1).astype(np.uint8)
    for frame, small in zip(cityscapes.list_frames(small_dataset, "val"), expected):
        served = predictor.predict_file(frame.image_path)
        full = tf.image.resize(small[..., None], served.image.shape[:2], method="nearest")[..., 0].numpy()
        np.testing.assert_array_equal(served.categories, full)
        np.testing.assert_array_equal(served.image, cityscapes.read_image(frame.image_path))


def test_prediction_json_and_shares(predictor, small_dataset):
    frame = cityscapes.list_frames(small_dataset, "val")[0]
    prediction = predictor.predict_file(frame.image_path)
    answer = prediction.as_json(overlay=True)
    categories = predict.decode_mask_png(answer["mask_png"])
    np.testing.assert_array_equal(categories, prediction.categories)
    counts = np.bincount(categories.ravel(), minlength=labels.NUM_CATEGORIES)
    assert answer["shares"] == {name: pytest.approx(counts[i] / categories.size)
                                for i, name in enumerate(labels.CATEGORY_NAMES)}
    overlay = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["overlay_png"]))))
    colours = np.array(labels.CATEGORY_PALETTE)[categories]
    np.testing.assert_array_equal(overlay, np.round(0.5 * prediction.image + 0.5 * colours).astype(np.uint8))
    assert (answer["height"], answer["width"]) == categories.shape


def test_predictor_refuses_wrong_models_and_arrays(tmp_path, predictor):
    import keras

    from seglib import models

    with pytest.raises(FileNotFoundError, match="model file not found"):
        predict.Predictor(tmp_path / "missing.keras")
    with pytest.raises(ValueError, match="predicts 3 classes"):
        predict.Predictor(models.unet((32, 64, 3), num_classes=3, base_filters=2, depth=1))
    with pytest.raises(ValueError, match="takes 128x256 images"):
        predict.Predictor(predictor.model, image_size=(64, 64))
    with pytest.raises(ValueError, match="uint8 RGB"):
        predictor.predict_array(np.zeros((8, 8, 3), np.float32))
    assert isinstance(predictor.model, keras.Model)


def test_default_model_path(tmp_path, monkeypatch, tiny_model_path):
    monkeypatch.setenv("SEGLIB_DATA", str(tmp_path))
    monkeypatch.delenv(predict.MODEL_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="run chapter 9"):
        predict.default_model_path("ci")
    run = tmp_path / "runs" / "unet16-ci-abc" / "final.keras"
    run.parent.mkdir(parents=True)
    run.write_bytes(tiny_model_path.read_bytes())
    assert predict.default_model_path("ci") == run
    monkeypatch.setenv(predict.MODEL_ENV, str(tiny_model_path))
    assert predict.default_model_path("ci") == tiny_model_path
    monkeypatch.setenv(predict.MODEL_ENV, str(tmp_path / "nothing.keras"))
    with pytest.raises(FileNotFoundError, match="names no file"):
        predict.default_model_path()


def test_predicting_first_leaves_the_pipelines_working(tiny_model_path, small_dataset):
    # regression: a Predictor traced before seglib.data was imported used to capture data's module-level constants
    # in its graph, and every eager pipeline built afterwards in the process failed
    script = f"""
import numpy as np
from seglib import predict
p = predict.Predictor({str(tiny_model_path)!r})
p.predict_array(np.zeros((64, 128, 3), np.uint8))
from seglib import data
images, masks = next(iter(data.tf_dataset({str(small_dataset)!r}, "val", image_size=(32, 64), batch_size=2)))
print("ok", images.shape)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok (2, 32, 64, 3)" in result.stdout


def test_phone_jpeg_with_a_multi_picture_block_is_accepted(rgb):
    # Pillow reports a JPEG carrying an MPF (multi-picture) block, as many phones write, as format "MPO"
    first, second = Image.fromarray(rgb), Image.fromarray(255 - rgb)
    data_ = png_bytes(first, "MPO", save_all=True, append_images=[second], quality=95)
    with Image.open(io.BytesIO(data_)) as opened:
        assert opened.format == "MPO"
        expected = np.asarray(opened.convert("RGB"))  # the first picture
    np.testing.assert_array_equal(predict.decode_image(data_), expected)


def test_exif_orientation_is_applied(rgb):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    data_ = png_bytes(Image.fromarray(rgb), "JPEG", quality=95, exif=exif.tobytes())
    stored = np.asarray(Image.open(io.BytesIO(data_)))
    decoded = predict.decode_image(data_)
    assert stored.shape == (40, 60, 3) and decoded.shape == (60, 40, 3)
    np.testing.assert_array_equal(decoded, np.rot90(stored, k=-1))  # clockwise


def test_a_long_thin_strip_is_refused_before_decoding():
    strip = png_bytes(Image.new("L", (predict.MAX_SIDE + 1, 1)))
    with pytest.raises(predict.ImageError, match="sides longer than 8192") as error:
        predict.decode_image(strip)
    assert error.value.status == 413


def test_a_time_limit_while_decoding_is_not_called_a_bad_image(monkeypatch):
    """A server's time limit (TimeoutError, an OSError) raised while decoding reaches the server as itself, not as
    a 400 "not an image" that would blame the client."""
    from PIL import Image

    def slow_open(*args, **kwargs):
        raise TimeoutError("scoring timeout")

    monkeypatch.setattr(Image, "open", slow_open)
    with pytest.raises(TimeoutError, match="scoring timeout"):
        predict.decode_image(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
