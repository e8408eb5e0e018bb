"""Augmenting image and mask together, by albumentations (the default) or by Keras's preprocessing layers.

Geometric transforms move image and mask by the same random parameters; the mask is always resampled by
*nearest neighbour* and the area a transform exposes is filled with :data:`seglib.labels.IGNORE`, so a mask never
holds a category that no annotator drew. Photometric transforms (brightness/contrast, noise) touch the image only.

Two back-ends implement the same settings, chosen by ``AugmentationSettings(backend=...)``:

* ``"albumentations"`` (default): albumentations 2.0.8, numpy and OpenCV, run by ``tf.data`` through
  ``tf.numpy_function``. 2.0.8 (May 2025) is the last MIT release: the project has had no maintenance since mid-2025
  and its successor, AlbumentationsX, is AGPL-3.0 or commercial.
* ``"keras"``: Keras 3's preprocessing layers (:class:`KerasAugmentation`), TensorFlow ops traced into the
  ``tf.data`` graph on the tensorflow backend, eager ops of the backend elsewhere.

Randomness comes only from an explicit seed per call (:func:`augment_pair`), so a pipeline that passes the same
seeds gets the same augmented examples, whichever thread or process runs them.
"""

from __future__ import annotations

import copy
import functools
import os
import threading
from dataclasses import dataclass

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations would otherwise ask PyPI for a newer version

import albumentations
import cv2
import numpy as np

from seglib import labels, masks, viz

__all__ = ["BACKENDS", "AugmentationSettings", "DEFAULT_SETTINGS", "Augmentation", "KerasAugmentation",
           "make_augmentation", "augment_pair", "seed_for", "show_augmentations"]

#: The augmentation back-ends :class:`AugmentationSettings` can name; the first is the default.
BACKENDS = ("albumentations", "keras")
#: Image resampling of geometric transforms on the keras back-end, by the OpenCV flag the settings hold.
_KERAS_INTERPOLATION = {cv2.INTER_NEAREST: "nearest", cv2.INTER_LINEAR: "bilinear"}


@dataclass(frozen=True)
class AugmentationSettings:
    """The usual augmentations for street scenes: flip, a small rotation, shift-scale, brightness/contrast and
    noise."""

    flip_probability: float = 0.5
    rotate_degrees: float = 10.0            # rotation drawn from [-rotate_degrees, +rotate_degrees]
    rotate_probability: float = 0.5
    shift_fraction: float = 0.0625          # translation up to this fraction of width / height
    scale_range: tuple[float, float] = (0.9, 1.1)
    shift_scale_probability: float = 0.5
    brightness_contrast: float = 0.2        # limits of RandomBrightnessContrast
    brightness_contrast_probability: float = 0.5
    noise_std: tuple[float, float] = (0.02, 0.06)  # Gaussian noise, as a fraction of the value range
    noise_probability: float = 0.3
    #: How the *image* is resampled by geometric transforms (the mask is always nearest).
    image_interpolation: int = cv2.INTER_LINEAR
    #: Which library applies the transforms: one of :data:`BACKENDS`.
    backend: str = BACKENDS[0]

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown augmentation backend {self.backend!r}: choose one of {', '.join(BACKENDS)}")


DEFAULT_SETTINGS = AugmentationSettings()


def make_augmentation(settings: AugmentationSettings = DEFAULT_SETTINGS) -> Augmentation:
    """The augmentation pipeline: flip, rotate, shift-scale, brightness/contrast, noise (each with a probability),
    by the back-end ``settings.backend`` names: an albumentations ``Compose`` or a :class:`KerasAugmentation`.

    Apply it with :func:`augment_pair`, which seeds it per call.
    """
    if settings.backend == "keras":
        return KerasAugmentation(settings)
    geometry = {"interpolation": settings.image_interpolation, "mask_interpolation": cv2.INTER_NEAREST,
                "border_mode": cv2.BORDER_CONSTANT, "fill": 0, "fill_mask": labels.IGNORE}
    return albumentations.Compose([
        albumentations.HorizontalFlip(p=settings.flip_probability),
        albumentations.Rotate(limit=(-settings.rotate_degrees, settings.rotate_degrees),
                              p=settings.rotate_probability, **geometry),
        albumentations.Affine(translate_percent=(-settings.shift_fraction, settings.shift_fraction),
                              scale=settings.scale_range, p=settings.shift_scale_probability, **geometry),
        albumentations.RandomBrightnessContrast(brightness_limit=settings.brightness_contrast,
                                                contrast_limit=settings.brightness_contrast,
                                                p=settings.brightness_contrast_probability),
        albumentations.GaussNoise(std_range=settings.noise_std, p=settings.noise_probability),
    ])


# ---------------------------------------------------------------------------------------------------------
# The keras back-end
# ---------------------------------------------------------------------------------------------------------

#: Steps of :meth:`KerasAugmentation.apply`, each with its own stream of seeds (see :func:`_seed_stream`).
_STEPS = ("flip", "rotation", "shift_scale", "brightness_contrast", "noise")
_DRAWS_PER_STEP = 16  # more random draws than any step makes


@functools.cache
def _seed_stream_class() -> type:
    """``SeedStream(seed, step)``: a ``keras.random.SeedGenerator`` whose ``next()`` returns the stateless seeds
    ``(seed, 16 step)``, ``(seed, 16 step + 1)``, ... and holds no variable, so a layer draws the same numbers from
    the same ``seed`` in every call, also inside a ``tf.data`` graph (where a variable could not be created).

    Keras's random functions accept a Python ``int`` or a ``SeedGenerator`` as ``seed``; an ``int`` would make
    every draw of a layer equal (``RandomTranslation`` draws its x and y shifts with one seed), a real
    ``SeedGenerator`` holds a variable that examples augmented in parallel would share.
    """
    import keras
    from keras.src.backend import random_seed_dtype  # what Keras's own SeedGenerator state uses on this backend

    class SeedStream(keras.random.SeedGenerator):
        def __init__(self, seed, step: str) -> None:  # no super().__init__(): no state variable
            self.seed, self.first, self.draws = seed, _DRAWS_PER_STEP * _STEPS.index(step), 0
            self.name = f"seed_stream_{step}"

        def next(self, ordered: bool = True):
            if self.draws == _DRAWS_PER_STEP:
                raise RuntimeError(f"{self.name} ran out of seeds: raise _DRAWS_PER_STEP")
            offset, self.draws = self.first + self.draws, self.draws + 1
            if isinstance(self.seed, (int, np.integer)):  # a Python seed: eager calls (jax, torch)
                dtype = random_seed_dtype()
                value = int(self.seed) if dtype != "int32" else (int(self.seed) ^ 0x80000000) - 0x80000000
                return keras.ops.convert_to_tensor([value, offset], dtype=dtype)
            return keras.ops.stack([self.seed, keras.ops.convert_to_tensor(offset, dtype=self.seed.dtype)])

    return SeedStream


def _cond(predicate, true_fn, false_fn):
    """``true_fn()`` if ``predicate`` else ``false_fn()``: a graph conditional when tracing (``tf.data``,
    ``tf.function``), a Python ``if`` on an eager value (jax and torch run only the branch taken)."""
    import keras

    if keras.backend.backend() == "tensorflow":
        return keras.ops.cond(predicate, true_fn, false_fn)
    return true_fn() if bool(keras.ops.convert_to_numpy(predicate)) else false_fn()


class KerasAugmentation:
    """The augmentations of :class:`AugmentationSettings` by Keras 3 preprocessing layers: ``RandomFlip``,
    ``RandomRotation``, ``RandomZoom`` then ``RandomTranslation`` (shift-scale), ``RandomContrast`` and
    ``RandomBrightness``, and Gaussian noise from ``keras.random``; each step fires with its settings' probability.

    Each geometric layer draws one transformation (``get_random_transformation``, from the example's seed) and
    applies it to the image (``transform_images``) and to the mask (``transform_segmentation_masks``, always
    nearest neighbour), as the layer's own call on ``{"images": x, "segmentation_masks": m}`` does. Keras fills
    exposed pixels of image *and* mask with the one ``fill_value`` (0); so the mask travels offset by one (category
    ``c`` as ``c + 1``, IGNORE as 256), exposed pixels arrive as 0, and 0 becomes IGNORE at the end: a mask
    never shows void (0) where nothing was.

    Where Keras has no equivalent, the closest: shift and scale are two resamplings (zoom, then translation) instead
    of albumentations' one affine warp, the zoom factor is drawn uniformly in 1 / scale, and contrast scales each
    channel about its mean (albumentations: about 0). Apply it with :func:`augment_pair`; ``tf.data`` traces
    :meth:`apply` into its graph (tensorflow backend).
    """

    def __init__(self, settings: AugmentationSettings = DEFAULT_SETTINGS) -> None:
        import keras

        if settings.image_interpolation not in _KERAS_INTERPOLATION:
            raise ValueError(f"the keras backend resamples images by cv2.INTER_NEAREST or cv2.INTER_LINEAR, got "
                             f"image_interpolation={settings.image_interpolation}")
        low, high = settings.scale_range
        if not 0.5 <= low <= high:  # RandomZoom takes zoom factors 1 / scale - 1 up to 1
            raise ValueError(f"scale_range must hold 0.5 <= low <= high for the keras backend, "
                             f"got {settings.scale_range}")
        self.settings = settings
        geometry = {"fill_mode": "constant", "fill_value": 0.0, "dtype": "float32",
                    "interpolation": _KERAS_INTERPOLATION[settings.image_interpolation]}
        colour = {"value_range": (0, 255), "dtype": "float32"}
        self.flip = keras.layers.RandomFlip("horizontal", dtype="float32")
        self.rotation = keras.layers.RandomRotation(settings.rotate_degrees / 360, **geometry)
        self.zoom = keras.layers.RandomZoom((1 / high - 1, 1 / low - 1), **geometry)  # zoom z shows 1/z of the scene
        self.translation = keras.layers.RandomTranslation(settings.shift_fraction, settings.shift_fraction, **geometry)
        self.contrast = keras.layers.RandomContrast(settings.brightness_contrast, **colour)
        self.brightness = keras.layers.RandomBrightness(settings.brightness_contrast, **colour)
        self._compiled = None

    def __repr__(self) -> str:
        return f"KerasAugmentation({self.settings})"

    def apply(self, image, mask, seed):
        """``image (H, W, 3) uint8`` and ``mask (H, W) uint8`` tensors (or arrays), ``seed`` a Python int or an int64
        scalar tensor -> the augmented ``(image, mask)``, uint8 tensors of the same shapes, of this Keras backend."""
        import keras

        ops, settings, stream = keras.ops, self.settings, _seed_stream_class()
        seeds = {step: stream(seed, step) for step in _STEPS}
        fires = {step: keras.random.uniform((), seed=seeds[step]) < probability for step, probability in (
            ("flip", settings.flip_probability), ("rotation", settings.rotate_probability),
            ("shift_scale", settings.shift_scale_probability),
            ("brightness_contrast", settings.brightness_contrast_probability),
            ("noise", settings.noise_probability))}
        image = ops.cast(image, "float32")
        target = ops.cast(mask, "float32")[..., None] + 1.0  # 0 is left for the pixels a transform exposes
        image, target = _cond(fires["flip"], lambda: self._flip(image, target), lambda: (image, target))
        for step, layers in (("rotation", (self.rotation,)), ("shift_scale", (self.zoom, self.translation))):
            image, target = _cond(fires[step], lambda: self._geometric(layers, image, target, seeds[step]),
                                  lambda: (image, target))  # both called before the names are bound again
        for step, change in (("brightness_contrast", self._brightness_contrast), ("noise", self._noise)):
            image = _cond(fires[step], lambda: change(image, seeds[step]), lambda: image)
        target = target[..., 0]
        mask = ops.where(target == 0, float(labels.IGNORE), target - 1.0)
        return ops.cast(ops.clip(ops.round(image), 0, 255), "uint8"), ops.cast(mask, "uint8")

    def _flip(self, image, target):
        import keras

        # RandomFlip's transformation, with its coin (fixed at one half) replaced by ours, drawn in apply()
        flip = {"flips": keras.ops.ones((1, 1, 1), "bool"), "input_shape": keras.ops.shape(image)}
        return self.flip.transform_images(image, flip), self.flip.transform_segmentation_masks(target, flip)

    @staticmethod
    def _geometric(layers, image, target, seed):
        for layer in layers:
            transformation = layer.get_random_transformation(image, training=True, seed=seed)
            image = layer.transform_images(image, transformation)
            target = layer.transform_segmentation_masks(target, transformation)
        return image, target

    def _brightness_contrast(self, image, seed):
        contrast = self.contrast.get_random_transformation(image, training=True, seed=seed)
        brightness = self.brightness.get_random_transformation(image, training=True, seed=seed)
        return self.brightness.transform_images(self.contrast.transform_images(image, contrast), brightness)

    def _noise(self, image, seed):
        import keras

        low, high = self.settings.noise_std
        std = keras.random.uniform((), 255.0 * low, 255.0 * high, seed=seed)
        return image + std * keras.random.normal(keras.ops.shape(image), seed=seed)

    def __call__(self, image: np.ndarray, mask: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`apply` on numpy arrays, returning numpy arrays; on the tensorflow backend through one
        ``tf.function`` (the graph ``tf.data`` runs, traced once for every size)."""
        import keras

        if keras.backend.backend() != "tensorflow":
            return tuple(keras.ops.convert_to_numpy(array) for array in self.apply(image, mask, int(seed)))
        if self._compiled is None:
            import tensorflow as tf

            self._compiled = tf.function(self.apply, input_signature=[
                tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([None, None], tf.uint8),
                tf.TensorSpec([], tf.int64)])
        return tuple(array.numpy() for array in self._compiled(image, mask, np.int64(seed)))


#: What :func:`make_augmentation` returns and :func:`augment_pair` applies.
Augmentation = albumentations.Compose | KerasAugmentation

_PER_THREAD = threading.local()  # a Compose holds one random state: each thread seeds and applies its own copy


def _thread_copy(transform: albumentations.Compose) -> albumentations.Compose:
    copies = _PER_THREAD.__dict__.setdefault("copies", {})
    if id(transform) not in copies:
        copies[id(transform)] = (transform, copy.deepcopy(transform))  # keeps the original alive: ids stay unique
    return copies[id(transform)][1]


def augment_pair(transform: Augmentation, image: np.ndarray, mask: np.ndarray,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Augment ``image: (H, W, 3) uint8`` and ``mask: (H, W) uint8`` category ids together, seeded by ``seed``,
    with ``transform`` from :func:`make_augmentation` (either back-end).

    Returns arrays of the same shapes and dtypes; the mask holds only values it held before, or IGNORE. The same
    ``transform`` settings and ``seed`` give the same arrays, on any thread. Raises ``ValueError`` if the shapes do
    not match or ``transform`` is not an augmentation.
    """
    image, mask = np.asarray(image), np.asarray(mask)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if mask.shape != image.shape[:2] or mask.dtype != np.uint8:
        raise ValueError(f"mask must be (H, W) uint8 matching the image {image.shape[:2]}, got {mask.shape} {mask.dtype}")
    if isinstance(transform, KerasAugmentation):
        return transform(image, mask, seed)
    if not isinstance(transform, albumentations.Compose):
        raise ValueError(f"transform must come from seglib.augment.make_augmentation, got {type(transform).__name__}")
    own = _thread_copy(transform)
    own.set_random_seed(int(seed))
    result = own(image=image, mask=mask)
    return result["image"], result["mask"]


def seed_for(*keys: int) -> int:
    """A 32-bit seed derived from integers (e.g. base seed, epoch, example index) by numpy's SeedSequence."""
    return int(np.random.SeedSequence([int(key) for key in keys]).generate_state(1)[0])


def show_augmentations(transform: albumentations.Compose, image: np.ndarray, mask: np.ndarray, draws: int = 4,
                       seed: int = 0, width: float = 16.0):
    """A grid: the original image and mask in the first column, ``draws`` augmented versions beside it.

    ``mask: (H, W) uint8`` category ids; IGNORE shows white. Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    masks.check_categories(mask)
    columns = [("original", image, mask)] + [
        (f"draw {k + 1}", *augment_pair(transform, image, mask, seed_for(seed, k))) for k in range(draws)]
    height, width_px = mask.shape
    figure, axes = plt.subplots(2, len(columns), figsize=(width, width / len(columns) * height / width_px * 2 + 0.6),
                                squeeze=False)
    for column, (title, augmented_image, augmented_mask) in enumerate(columns):
        axes[0, column].imshow(augmented_image)
        axes[0, column].set_title(title)
        axes[1, column].imshow(viz.colorize_categories(augmented_mask), interpolation="nearest")
        for axis in axes[:, column]:
            axis.axis("off")
    figure.tight_layout()
    return figure
