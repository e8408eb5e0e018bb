"""Augmenting image and mask together with albumentations (2.0.8, the last MIT release).

Geometric transforms move image and mask by the same random parameters; the mask is always resampled by
*nearest neighbour* and the area a transform exposes is filled with :data:`seglib.labels.IGNORE`, so a mask never
holds a category that no annotator drew. Photometric transforms (brightness/contrast, noise) touch the image only.

Randomness comes only from an explicit seed per call (:func:`augment_pair`), so a pipeline that passes the same
seeds gets the same augmented examples, whichever thread or process runs them.
"""

from __future__ import annotations

import copy
import os
import threading
from dataclasses import dataclass

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations would otherwise ask PyPI for a newer version

import albumentations
import cv2
import numpy as np

from seglib import labels, masks, viz

__all__ = ["AugmentationSettings", "DEFAULT_SETTINGS", "make_augmentation", "augment_pair", "seed_for",
           "show_augmentations"]


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


DEFAULT_SETTINGS = AugmentationSettings()


def make_augmentation(settings: AugmentationSettings = DEFAULT_SETTINGS) -> albumentations.Compose:
    """The augmentation pipeline: flip, rotate, shift-scale, brightness/contrast, noise (each with a probability).

    Apply it with :func:`augment_pair`, which seeds it per call.
    """
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


_PER_THREAD = threading.local()  # a Compose holds one random state: each thread seeds and applies its own copy


def _thread_copy(transform: albumentations.Compose) -> albumentations.Compose:
    copies = _PER_THREAD.__dict__.setdefault("copies", {})
    if id(transform) not in copies:
        copies[id(transform)] = (transform, copy.deepcopy(transform))  # keeps the original alive: ids stay unique
    return copies[id(transform)][1]


def augment_pair(transform: albumentations.Compose, image: np.ndarray, mask: np.ndarray,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Augment ``image: (H, W, 3) uint8`` and ``mask: (H, W) uint8`` category ids together, seeded by ``seed``.

    Returns arrays of the same shapes and dtypes; the mask holds only values it held before, or IGNORE.
    Raises ``ValueError`` if the shapes do not match.
    """
    image, mask = np.asarray(image), np.asarray(mask)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if mask.shape != image.shape[:2] or mask.dtype != np.uint8:
        raise ValueError(f"mask must be (H, W) uint8 matching the image {image.shape[:2]}, got {mask.shape} {mask.dtype}")
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
