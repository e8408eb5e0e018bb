"""One prediction path, from image bytes to a category mask, shared by the notebooks, the web app and the endpoint.

* :func:`decode_image` turns uploaded bytes into ``(H, W, 3) uint8`` RGB, or raises :class:`ImageError` (a
  ``ValueError``) whose ``status`` is the HTTP answer a server should give: 400 not an image or truncated, 413 too
  many pixels to decode safely, 415 a format the model cannot read. Greyscale, palette, RGBA (its alpha dropped:
  a camera frame has none) and 16-bit images are converted, not refused.
* :class:`Predictor` holds a trained model and predicts a full-size category mask through the model's contract,
  :mod:`seglib.modelio`: the image is resized to the model's input size with **the same resize the training
  pipelines use**, scaled to [0, 1], passed through the model, and the argmax is resized back to the image's
  size by nearest neighbour (as :func:`seglib.train.evaluate` scores it).
* :func:`encode_png` and :func:`mask_png` write arrays as PNG bytes for answers.

The same bytes give the same mask in a notebook, the Flask app and ``score.py`` because all three call
:meth:`Predictor.predict_bytes` (tested).
"""

from __future__ import annotations

import base64
import io
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from seglib import datasets, labels, masks, modelio

__all__ = ["MODEL_ENV", "MAX_PIXELS", "MAX_SIDE", "ImageError", "Prediction", "Predictor", "decode_image", "encode_png",
           "mask_png", "decode_mask_png", "default_model_path", "load_predictor"]

#: Environment variable naming the ``.keras`` model a server loads.
MODEL_ENV = "SEGLIB_MODEL"
#: Largest image (in pixels) decoded: 4x a Cityscapes frame. Bigger images are refused before decoding.
MAX_PIXELS = 4 * 1024 * 2048
#: Longest side accepted: a 1 x 8,000,000 strip is under MAX_PIXELS but its antialiased resize takes a minute.
MAX_SIDE = 8192
#: Image formats accepted (Pillow's names): lossless PNG as Cityscapes ships, JPEG as phones take (Pillow calls a
#: JPEG with a multi-picture block, common from phones, "MPO"), and WebP/BMP.
FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "BMP")


_EXIF_ORIENTATION = 0x0112


class ImageError(ValueError):
    """Uploaded bytes that cannot be predicted on; ``status`` is the HTTP status a server should answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Image file bytes -> ``(H, W, 3) uint8`` RGB.

    The header is read first: more than ``max_pixels`` pixels, or a side longer than :data:`MAX_SIDE`, is refused
    (413) before any pixel is decoded. An EXIF orientation is applied, so the mask lines up with the picture as
    viewers show it.
    Modes other than RGB are converted: greyscale and palette to RGB, RGBA/LA by dropping alpha, 16-bit and
    32-bit greyscale scaled to 8 bits, CMYK by Pillow's conversion.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode_image needs bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise ImageError("the upload is empty: send the bytes of a PNG or JPEG image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=None)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(f"the image has too many pixels to decode safely: {error}", 413) from error
    except TimeoutError:
        raise  # a server's time limit running out while decoding (an OSError too): not the image's fault
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError("the upload is not an image file that can be read (expected PNG, JPEG, WebP or BMP)") \
            from error
    with image:
        if image.format not in FORMATS:
            raise ImageError(f"unsupported image format {image.format}; send PNG, JPEG, WebP or BMP", 415)
        width, height = image.size
        if width * height > max_pixels:
            raise ImageError(f"the image is {width}x{height} = {width * height:,} pixels, more than the "
                             f"{max_pixels:,} this server decodes; downscale it first", 413)
        if max(width, height) > MAX_SIDE:
            raise ImageError(f"the image is {width}x{height}; sides longer than {MAX_SIDE} pixels are refused", 413)
        if width < 1 or height < 1:
            raise ImageError(f"the image is empty ({width}x{height})")
        try:
            image.load()
        except TimeoutError:
            raise
        except (OSError, SyntaxError, ValueError) as error:
            raise ImageError(f"the {image.format} image is truncated or corrupt: {error}") from error
        if image.getexif().get(_EXIF_ORIENTATION, 1) != 1:  # a phone photo taken upright: show it as viewers do
            image = ImageOps.exif_transpose(image)
        return _to_rgb(image)


def _to_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode == "RGB":
        return np.asarray(image)
    if mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey scaled from 0..65535; 32-bit from 0..255 when it fits
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        grey = np.clip(np.round(values / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "F":
        raise ImageError("floating-point images (mode F) are not supported; send an 8-bit image", 415)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    return np.asarray(image.convert("RGB"))   # L, LA, RGBA, CMYK, YCbCr, 1, P: alpha dropped


def encode_png(array: np.ndarray, compress_level: int = 1) -> bytes:
    """``(H, W)`` or ``(H, W, 3)`` uint8 array -> PNG bytes (fast compression: answers are encoded per request)."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ValueError(f"encode_png needs a (H, W) or (H, W, 3) uint8 array, got {array.shape} {array.dtype}")
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def mask_png(categories: np.ndarray) -> bytes:
    """Category mask -> an 8-bit **palette** PNG: its pixel values are the category ids (read them with
    ``np.asarray(Image.open(...))``) and image viewers show the official category colours."""
    categories = masks.check_categories(categories)
    image = Image.frombytes("P", categories.shape[::-1], np.ascontiguousarray(categories).tobytes())
    image.putpalette(labels.CATEGORY_PALETTE_256.ravel().tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1, compress_type=3)  # zlib's run-length strategy: masks are runs
    return buffer.getvalue()


def decode_mask_png(data: bytes | str) -> np.ndarray:
    """The inverse of :func:`mask_png` (also accepts its base64 text): -> ``(H, W) uint8`` category ids."""
    if isinstance(data, str):
        data = base64.b64decode(data)
    with Image.open(io.BytesIO(data)) as image:
        if image.mode not in ("P", "L"):
            raise ValueError(f"a category mask PNG is 8-bit palette or grey, got mode {image.mode}")
        return masks.check_categories(np.asarray(image))


@dataclass
class Prediction:
    """What one prediction gives: the decoded image, its category mask at the image's size, and the shares."""

    image: np.ndarray        # (H, W, 3) uint8
    categories: np.ndarray   # (H, W) uint8 category ids

    @property
    def shares(self) -> dict[str, float]:
        """Fraction of the image's pixels predicted as each category."""
        return masks.category_shares(self.categories)

    def colored(self) -> np.ndarray:
        from seglib import viz

        return viz.colorize_categories(self.categories)

    def overlay(self, alpha: float = 0.5) -> np.ndarray:
        from seglib import viz

        return viz.overlay(self.image, self.colored(), alpha)

    def as_json(self, overlay: bool = False) -> dict:
        """A JSON-serialisable answer: size, the mask as a base64 palette PNG (:func:`mask_png`), the shares, and
        optionally the overlay as a base64 PNG."""
        answer = {"height": int(self.categories.shape[0]), "width": int(self.categories.shape[1]),
                  "categories": list(labels.CATEGORY_NAMES),
                  "mask_png": base64.b64encode(mask_png(self.categories)).decode("ascii"),
                  "shares": self.shares}
        if overlay:
            answer["overlay_png"] = base64.b64encode(encode_png(self.overlay())).decode("ascii")
        return answer


class Predictor:
    """A trained segmentation model and the preprocessing it was trained with.

    ``model`` is a ``keras.Model`` or the path of a ``.keras`` file. ``image_size`` is the ``(h, w)`` the model
    sees; by default the model's own input size, else the run profile's.
    """

    def __init__(self, model, image_size: Sequence[int] | None = None, max_pixels: int = MAX_PIXELS):
        import keras

        from seglib import backends, keras_metrics, losses, models  # noqa: F401 - they register saved objects
        tf = backends.require_tensorflow("seglib.predict.Predictor (the web app's and the endpoint's model)",
                                         "seglib.modelio.predict_categories")
        from seglib.profiles import get_profile

        if not isinstance(model, keras.Model):
            path = Path(model)
            if not path.is_file():
                raise FileNotFoundError(f"model file not found: {path}")
            model = keras.models.load_model(path, compile=False)
        self.model = model
        input_size = tuple(model.input_shape[1:3])
        if image_size is None:
            image_size = input_size if None not in input_size else get_profile().image_size
        self.image_size = tuple(int(side) for side in image_size)
        if None not in input_size and input_size != self.image_size:
            raise ValueError(f"the model takes {input_size[0]}x{input_size[1]} images, not {self.image_size}")
        if model.output_shape[-1] != labels.NUM_CATEGORIES:
            raise ValueError(f"the model predicts {model.output_shape[-1]} classes; the web app and endpoint "
                             f"serve {labels.NUM_CATEGORIES}-category models")
        self.max_pixels = max_pixels
        # the model's whole contract as one graph (seglib.modelio.predict_full_size_tf), traced once for any size
        self._predict = tf.function(lambda image: modelio.predict_full_size_tf(self.model, image, self.image_size),
                                    input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)], reduce_retracing=True)

    def predict_array(self, image: np.ndarray) -> np.ndarray:
        """``(H, W, 3) uint8`` RGB -> ``(H, W) uint8`` category ids at the same size."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
        return self._predict(image).numpy()

    def predict_bytes(self, data: bytes) -> Prediction:
        """Image file bytes -> :class:`Prediction`; bad bytes raise :class:`ImageError` (see :func:`decode_image`)."""
        image = decode_image(data, self.max_pixels)
        return Prediction(image, self.predict_array(image))

    def predict_file(self, path: str | os.PathLike) -> Prediction:
        return self.predict_bytes(Path(path).read_bytes())


def default_model_path(profile: str | None = None) -> Path:
    """The model a server loads: ``$SEGLIB_MODEL`` if set, else the U-Net chapter 9 trained for the run profile
    (:func:`seglib.datasets.find_run` of :data:`seglib.datasets.BOOK_MODEL`: its first seed, the newest run where
    there are several). Raises ``FileNotFoundError`` saying how to get one."""
    from seglib.profiles import get_profile

    if os.environ.get(MODEL_ENV):
        path = Path(os.environ[MODEL_ENV])
        if not path.is_file():
            raise FileNotFoundError(f"{MODEL_ENV}={path} names no file")
        return path
    profile_name = get_profile(profile).name
    try:
        return datasets.find_run(datasets.BOOK_MODEL, profile_name)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"no trained model: set {MODEL_ENV} to a .keras file, or run chapter 9 (book/09_training.ipynb) with "
            f"SEGLIB_PROFILE={profile_name} to train one ({error})") from None


def load_predictor(path: str | os.PathLike | None = None) -> Predictor:
    """A :class:`Predictor` for ``path`` (default :func:`default_model_path`)."""
    return Predictor(Path(path) if path else default_model_path())
