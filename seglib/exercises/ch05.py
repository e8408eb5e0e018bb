"""Checks of chapter 5 (augmentation): a horizontal flip of image and mask together, and a rotation that keeps the
mask's values (nearest neighbour, exposed pixels IGNORE)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from seglib import augment, labels
from seglib.exercises import Wrong, expect, expect_array


def _pair(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A random image and a mask of random 4x4 blocks of categories (with some IGNORE), ``height`` x ``width``."""
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    blocks = rng.integers(0, labels.NUM_CATEGORIES, (-(-height // 4), -(-width // 4))).astype(np.uint8)
    blocks[rng.random(blocks.shape) < 0.05] = labels.IGNORE
    mask = np.repeat(np.repeat(blocks, 4, 0), 4, 1)[:height, :width]
    return image, np.ascontiguousarray(mask)


def _hand_pair() -> tuple[np.ndarray, np.ndarray]:
    """A 2x3 image whose pixel (i, j) is (10 i + j, 100 + 10 i + j, 200 + j) and the mask [[0, 1, 2], [3, 4, 255]]."""
    rows, columns = np.mgrid[0:2, 0:3]
    image = np.stack([10 * rows + columns, 100 + 10 * rows + columns, 200 + columns], axis=-1).astype(np.uint8)
    return image, np.array([[0, 1, 2], [3, 4, labels.IGNORE]], np.uint8)


def _result_pair(result, what: str) -> tuple[np.ndarray, np.ndarray]:
    expect(isinstance(result, tuple) and len(result) == 2,
           f"{what} should return a tuple (image, mask), got {type(result).__name__}"
           + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""))
    return result


_FLIP_ONLY = dataclasses.replace(augment.DEFAULT_SETTINGS, flip_probability=1.0, rotate_probability=0.0,
                                 shift_scale_probability=0.0, brightness_contrast_probability=0.0,
                                 noise_probability=0.0)


def check_flip(flip_pair) -> None:
    """05.1: ``flip_pair(image (H, W, 3) uint8, mask (H, W) uint8) -> (image, mask)`` mirrored left to right, as
    albumentations' ``HorizontalFlip`` in ``augment.make_augmentation`` does."""
    transform = augment.make_augmentation(_FLIP_ONLY)
    rng = np.random.default_rng(5)
    cases = [("the 2x3 example by hand", *_hand_pair()), ("a random 24x40 pair", *_pair(rng, 24, 40)),
             ("a random 17x9 pair (odd sizes)", *_pair(rng, 17, 9))]
    for name, image, mask in cases:
        image_before, mask_before = image.copy(), mask.copy()
        new_image, new_mask = _result_pair(flip_pair(image, mask), "flip_pair")
        expect(np.array_equal(image, image_before) and np.array_equal(mask, mask_before),
               f"flip_pair changed its input arrays ({name}): return flipped copies and leave the inputs alone")
        want_image, want_mask = augment.augment_pair(transform, image, mask, seed=0)
        for got, want, what in ((new_image, want_image, "image"), (new_mask, want_mask, "mask")):
            if isinstance(got, np.ndarray) and got.shape == want.shape and got.dtype == want.dtype \
                    and not np.array_equal(got, want):
                original = image if what == "image" else mask
                if np.array_equal(got, original):
                    raise Wrong(f"the {what} of {name} is not flipped: image and mask must move together, pixel "
                                "for pixel")
                if np.array_equal(got, original[::-1]):
                    raise Wrong(f"the {what} of {name} is flipped upside down (axis 0); a horizontal flip reverses "
                                "the columns (axis 1)")
                if what == "image" and np.array_equal(got, original[::-1, ::-1, ::-1]):
                    raise Wrong(f"the image of {name} is flipped along every axis (np.flip without axis=1?): its "
                                "rows and its colour channels are reversed too")
                if what == "image" and np.array_equal(got, original[:, ::-1, ::-1]):
                    raise Wrong(f"the image of {name} has its colour channels reversed (RGB became BGR): flip "
                                "axis 1 only")
            expect_array(got, want, f"the flipped {what} of {name}")


def rotated_reference(image: np.ndarray, mask: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """The answer key of 05.2: the chapter's rotation about ``(W / 2, H / 2)``, the image bilinear with 0 in the
    exposed corners, the mask by nearest neighbour with IGNORE there."""
    height, width = mask.shape
    rotation = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    new_image = cv2.warpAffine(image, rotation, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    new_mask = cv2.warpAffine(mask, rotation, (width, height), flags=cv2.INTER_NEAREST,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=labels.IGNORE)
    return new_image, new_mask


def check_rotate(rotate_pair) -> None:
    """05.2: ``rotate_pair(image (H, W, 3) uint8, mask (H, W) uint8, degrees) -> (image, mask)`` rotated by
    ``degrees`` (counter-clockwise) about the centre; the mask keeps its values and gets IGNORE where nothing was."""
    rng = np.random.default_rng(52)
    cases = [(f"a random {h}x{w} pair rotated by {d:g}°", *_pair(rng, h, w), d)
             for h, w, d in ((32, 48, 20.0), (40, 40, -35.0), (24, 64, 45.0), (30, 50, 7.5))]
    for name, image, mask, degrees in cases:
        new_image, new_mask = _result_pair(rotate_pair(image.copy(), mask.copy(), degrees), "rotate_pair")
        want_image, want_mask = rotated_reference(image, mask, degrees)
        for got, want, what in ((new_image, want_image, "image"), (new_mask, want_mask, "mask")):
            expect(isinstance(got, np.ndarray), f"the rotated {what} should be a numpy array, got {type(got).__name__}")
            expect(got.shape == want.shape, f"the rotated {what} of {name} has shape {got.shape}, expected "
                                            f"{want.shape}: the output keeps the input's size")
            expect(got.dtype == want.dtype,
                   f"the rotated {what} of {name} has dtype {got.dtype}, expected {want.dtype}")
        wrong = new_mask != want_mask
        if wrong.any() and np.all(want_mask[wrong] == labels.IGNORE) and np.all(new_mask[wrong] == 0):
            index = tuple(int(i) for i in np.argwhere(wrong)[0])
            raise Wrong(f"the pixels the rotation exposed ({name}) hold 0, which is void, a real category; fill "
                        f"them with labels.IGNORE (255) (the first is at {index})")
        if not np.array_equal(new_mask, want_mask) and np.array_equal(new_mask,
                                                                      rotated_reference(image, mask, -degrees)[1]):
            raise Wrong(f"{name}: you rotated clockwise; a positive angle turns counter-clockwise, as "
                        "cv2.getRotationMatrix2D((W / 2, H / 2), degrees, 1.0) does")
        allowed = np.union1d(np.unique(mask), [labels.IGNORE])
        invented = np.setdiff1d(np.unique(new_mask), allowed)
        expect(not invented.size,
               f"the rotated mask of {name} holds {invented.size} value(s) the original does not, such as "
               f"{int(invented[0]) if invented.size else ''}: the mask was interpolated; resample it by nearest "
               "neighbour (cv2.INTER_NEAREST), which only copies existing pixels")
        try:
            expect_array(new_mask, want_mask, f"the rotated mask of {name}")
        except Wrong as wrong:
            raise Wrong(f"{wrong} (rotate about (W / 2, H / 2) with cv2.getRotationMatrix2D, as the chapter does, and "
                        "resample by nearest neighbour)") from None
        expect(not np.array_equal(new_image, image) or degrees == 0,
               f"the image of {name} was not rotated: image and mask must move together")
        differ = np.abs(new_image.astype(np.int16) - want_image.astype(np.int16))
        if differ.max() > 1:
            index = tuple(int(i) for i in np.argwhere(differ > 1)[0])
            raise Wrong(f"the rotated image of {name} differs at {np.count_nonzero(differ.max(-1) > 1):,} of "
                        f"{differ.shape[0] * differ.shape[1]:,} pixels; the first is at {index[:2]}: "
                        f"{new_image[index[:2]].tolist()}, expected {want_image[index[:2]].tolist()} (bilinear, "
                        "0 in the exposed corners, the same rotation as the mask)")


CHECKS = {"05.1": check_flip, "05.2": check_rotate}
