"""The model's contract, written once: what goes into a segmentation model and what comes out of it.

Every model of the book takes ``(B, h, w, 3) float32`` images in [0, 1] and returns ``(B, h, w, C)``
probabilities: a softmax over the 8 categories (C = 8), or one sigmoid for a binary model (C = 1). Around it:

1. **image -> model input**: :func:`resize_image` the ``(H, W, 3) uint8`` frame to the model's ``(h, w)``
   (antialiased bilinear, rounded back to uint8), then :func:`to_model_input` (``/ 255`` as float32);
2. **model output -> categories**: :func:`to_categories` (the argmax over the last axis), or :func:`to_binary`
   (probability above a threshold) for a binary model;
3. **categories -> full size**: :func:`to_full_size`, the nearest-neighbour resize of
   :func:`seglib.masks.resize_nearest`, back to the frame's ``(H, W)``: scores are computed there.

Training, evaluation, the web app, the endpoint and the exported files all go through these functions. They are
numpy functions (any Keras backend) with TensorFlow twins (``*_tf``) for ``tf.data`` and the served graph, tested
to agree: the masks exactly, the images to within one grey level at a few pixels in a million (float32 sums
in another order round a tie the other way).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from seglib import masks

__all__ = ["resize_image", "to_model_input", "from_model_input", "to_categories", "to_binary", "to_full_size", "predict_categories",
           "predict_binary", "resize_image_tf", "resize_mask_tf", "to_model_input_tf", "to_categories_tf",
           "predict_full_size_tf"]


# ---------------------------------------------------------------------------------------------------------
# numpy
# ---------------------------------------------------------------------------------------------------------

def _triangle_weights(source: int, target: int) -> np.ndarray:
    """``(target, source)`` float32 weights of an antialiased bilinear resize along one axis: each output sample
    at ``(i + 0.5) * source / target`` averages the inputs under a triangle as wide as the scale (at least 1),
    normalised to sum to 1 - what ``tf.image.resize(..., "bilinear", antialias=True)`` computes."""
    scale = source / target
    support = max(scale, 1.0)
    centres = (np.arange(target) + 0.5) * scale
    weights = np.maximum(0.0, 1.0 - np.abs(np.arange(source)[None, :] + 0.5 - centres[:, None]) / support)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def resize_image(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """``image: (H, W, C) uint8`` -> ``(h, w, C) uint8`` at ``size = (h, w)``: antialiased bilinear (each output
    pixel averages the input under a triangle as wide as the scale, so shrinking averages rather than skips),
    rounded. :func:`resize_image_tf` is the same filter in TensorFlow."""
    image = np.asarray(image)
    if image.ndim != 3 or image.dtype != np.uint8 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image must be an (H, W, C) uint8 array, got shape {image.shape} dtype {image.dtype}")
    height, width = masks.check_size(size)
    rows, columns = _triangle_weights(image.shape[0], height), _triangle_weights(image.shape[1], width)
    resized = np.einsum("ij,jkc->ikc", rows, image.astype(np.float32))
    resized = np.einsum("lk,ikc->ilc", columns, resized)
    return np.clip(np.round(resized), 0, 255).astype(np.uint8)


def to_model_input(images: np.ndarray) -> np.ndarray:
    """``images: (..., h, w, 3) uint8`` (already at the model's size) -> float32 in [0, 1]: ``images / 255``."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim < 3 or images.shape[-1] != 3:
        raise ValueError(f"model input is made from (..., H, W, 3) uint8 images, got {images.shape} {images.dtype}")
    return images.astype(np.float32) / np.float32(255.0)


def from_model_input(images: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_model_input`, to show or re-use what a model saw: float32 in [0, 1] ->
    ``uint8`` (``round(x * 255)``, clipped)."""
    images = np.asarray(images)
    if not np.issubdtype(images.dtype, np.floating) or images.ndim < 3 or images.shape[-1] != 3:
        raise ValueError(f"model input is (..., H, W, 3) floats in [0, 1], got {images.shape} {images.dtype}")
    return np.clip(np.round(images * 255), 0, 255).astype(np.uint8)


def to_categories(probabilities: Any) -> np.ndarray:
    """``(..., C)`` scores or probabilities -> ``(...) uint8`` the category of highest score (the argmax)."""
    probabilities = np.asarray(probabilities)
    if probabilities.ndim < 1 or probabilities.shape[-1] < 2:
        raise ValueError(f"need (..., C) scores of C >= 2 classes, got shape {probabilities.shape}")
    return np.argmax(probabilities, axis=-1).astype(np.uint8)


def to_binary(probabilities: Any, threshold: float = 0.5) -> np.ndarray:
    """``(..., 1)`` sigmoid probabilities -> ``(...) uint8`` 1 where the probability is above ``threshold``."""
    probabilities = np.asarray(probabilities)
    if probabilities.ndim < 1 or probabilities.shape[-1] != 1:
        raise ValueError(f"a binary model has one sigmoid output, got {probabilities.shape[-1:]} outputs")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie strictly between 0 and 1, got {threshold}")
    return (probabilities[..., 0] > threshold).astype(np.uint8)


def to_full_size(categories: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """``categories: (h, w)`` -> ``(H, W)`` at a frame's ``size``, by nearest neighbour
    (:func:`seglib.masks.resize_nearest`: no value is invented)."""
    return masks.resize_nearest(categories, size)


def _batches(model: Callable, images: np.ndarray, batch_size: int) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (B, H, W, 3) float32 model input, got {images.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    return np.concatenate([np.asarray(model(images[start:start + batch_size], training=False))
                           for start in range(0, len(images), batch_size)])


def predict_categories(model, images: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """``images: (B, h, w, 3) float32`` model input -> ``(B, h, w) uint8`` categories of a Keras model (any
    backend), ``batch_size`` images at a time."""
    return to_categories(_batches(model, images, batch_size))


def predict_binary(model, images: np.ndarray, threshold: float = 0.5, batch_size: int = 8) -> np.ndarray:
    """``images: (B, h, w, 3) float32`` model input -> ``(B, h, w) uint8`` 0/1: a one-sigmoid model's probability
    above ``threshold``."""
    if model.output_shape[-1] != 1:
        raise ValueError(f"predict_binary needs a model with one sigmoid output, got {model.output_shape[-1]}")
    return to_binary(_batches(model, images, batch_size), threshold)


# ---------------------------------------------------------------------------------------------------------
# TensorFlow twins (tf.data pipelines, the served graph, export)
# ---------------------------------------------------------------------------------------------------------

def resize_image_tf(image, size: Sequence[int]):
    """:func:`resize_image` in TensorFlow: ``image (H, W, 3) uint8`` tensor -> ``(h, w, 3) uint8``."""
    import tensorflow as tf

    image = tf.image.resize(image, size, method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def _nearest_indices_tf(n_in, n_out):
    """:func:`seglib.masks.nearest_indices` in TensorFlow integers (sizes may be tensors: a frame's own size)."""
    import tensorflow as tf

    n_in, n_out = tf.cast(n_in, tf.int32), tf.cast(n_out, tf.int32)
    return (2 * tf.range(n_out) + 1) * n_in // (2 * n_out)


def resize_mask_tf(mask, size):
    """:func:`seglib.masks.resize_nearest` in TensorFlow: ``mask (H, W)`` tensor -> ``(h, w)`` of the same dtype
    at ``size`` (a pair of ints or a shape tensor); the same source pixels (tested)."""
    import tensorflow as tf

    shape = tf.shape(mask)
    rows = _nearest_indices_tf(shape[0], size[0])
    columns = _nearest_indices_tf(shape[1], size[1])
    return tf.gather(tf.gather(mask, rows, axis=0), columns, axis=1)


def to_model_input_tf(image):
    """:func:`to_model_input` in TensorFlow: uint8 -> float32 in [0, 1]."""
    import tensorflow as tf

    return tf.cast(image, tf.float32) / 255.0


def to_categories_tf(probabilities):
    """:func:`to_categories` in TensorFlow: the argmax over the last axis, as uint8."""
    import tensorflow as tf

    return tf.cast(tf.argmax(probabilities, axis=-1), tf.uint8)


def predict_full_size_tf(model, image, size: Sequence[int]):
    """The whole contract as one TensorFlow graph: ``image (H, W, 3) uint8`` -> ``(H, W) uint8`` categories of
    ``model`` (input size ``size = (h, w)``): resize, ``/255``, the model, argmax, nearest resize back to (H, W)."""
    import tensorflow as tf

    model_input = to_model_input_tf(resize_image_tf(image, size))[tf.newaxis]
    categories = to_categories_tf(model(model_input, training=False)[0])
    return resize_mask_tf(categories, tf.shape(image)[:2])
