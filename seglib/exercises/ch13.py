"""Checks of chapter 13 (serving): the shares of a served mask, the overlay blend, the status of an upload."""

from __future__ import annotations

import copy
import io
import numbers
import tracemalloc

import numpy as np
from PIL import Image

from seglib import labels, masks, predict
from seglib.exercises import Wrong, expect, expect_array, median_seconds

# ---------------------------------------------------------------------------------------------------------
# 13.1 The shares of a served mask
# ---------------------------------------------------------------------------------------------------------


def _answer(categories: np.ndarray) -> dict:
    """The JSON API's answer for a prediction of ``categories`` (what ``Prediction.as_json`` sends)."""
    image = np.zeros((*categories.shape, 3), np.uint8)
    return predict.Prediction(image, categories).as_json()


def _share_cases(rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    return [("a 2x4 mask by hand (void, flat, construction, vehicle)",
             np.array([[0, 0, 1, 2], [7, 7, 7, 1]], np.uint8)),
            ("a 2x4 mask with 3 IGNORE (255) pixels", np.array([[1, 1, 255, 255], [3, 3, 3, 255]], np.uint8)),
            ("a 5x7 mask that is all sky", np.full((5, 7), labels.CATEGORY_NAMES.index("sky"), np.uint8)),
            ("a random 60x90 mask", rng.integers(0, labels.NUM_CATEGORIES, (60, 90)).astype(np.uint8))]


def check_shares(shares_from_answer) -> None:
    """13.1: ``shares_from_answer(answer: dict) -> dict[str, float]``: each category's share of the mask's pixels,
    computed from ``answer["mask_png"]`` (base64 palette PNG), keyed by category name in order."""
    rng = np.random.default_rng(13)
    for name, categories in _share_cases(rng):
        answer = _answer(categories)
        got = shares_from_answer(copy.deepcopy(answer))
        expected = masks.category_shares(categories)
        expect(isinstance(got, dict), f"for {name} your function should return a dict, got {type(got).__name__}")
        expect(list(got) == list(labels.CATEGORY_NAMES),
               f"for {name} the keys should be the 8 category names in order (labels.CATEGORY_NAMES), every one "
               f"even with a share of 0, got {list(got)}")
        counts = np.bincount(categories.ravel(), minlength=256)[: labels.NUM_CATEGORIES]
        labelled = max(int((categories != labels.IGNORE).sum()), 1)
        for index, category in enumerate(labels.CATEGORY_NAMES):
            try:
                value = float(got[category])
            except (TypeError, ValueError):
                raise Wrong(f"for {name} the share of {category} should be a number, got "
                            f"{type(got[category]).__name__}") from None
            if abs(value - expected[category]) <= 1e-9:
                continue
            hint = ""
            if abs(value - counts[index]) <= 1e-9 and counts[index] != expected[category]:
                hint = ": that is the pixel count; divide by the number of pixels"
            elif abs(value - counts[index] / labelled) <= 1e-9:
                hint = (": IGNORE (255) pixels are pixels of the image: they count in the total (H x W) but in no "
                        "category")
            raise Wrong(f"for {name} the share of {category} is {value:.6f}, expected {expected[category]:.6f}{hint}")


# ---------------------------------------------------------------------------------------------------------
# 13.2 The overlay blend in integer arithmetic
# ---------------------------------------------------------------------------------------------------------

#: (image, mask) value pairs by hand: ties (an odd sum, whose half rounds to even), sums that overflow uint8, others.
_PAIRS = [(0, 0), (0, 1), (1, 2), (2, 3), (3, 4), (255, 255), (254, 255), (253, 255), (0, 255), (1, 255),
          (128, 129), (100, 50)]


def _blend_hint(got: np.ndarray, image: np.ndarray, mask_rgb: np.ndarray) -> str:
    total = image.astype(np.int64) + mask_rgb
    variants = {
        "a + b overflows uint8 (255 + 255 wraps around): add in uint16": ((image + mask_rgb) // 2).astype(np.uint8),
        "every half is rounded down ((a + b) // 2): viz.overlay rounds a half to the even neighbour, so 1 and 2 "
        "blend to 2 and 2 and 3 blend to 2": (total // 2).astype(np.uint8),
        "every half is rounded up: viz.overlay (np.round) rounds a half to the even neighbour, so 2 and 3 blend "
        "to 2": ((total + 1) // 2).astype(np.uint8),
    }
    for hint, variant in variants.items():
        if got.shape == variant.shape and np.array_equal(got, variant):
            return hint
    return ""


def _peak_bytes(function) -> int:
    """Peak bytes numpy allocated while ``function()`` ran (tracemalloc sees numpy's buffers)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        function()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        if started:
            tracemalloc.stop()


def check_blend(blend_half) -> None:
    """13.2: ``blend_half(image, mask_rgb)``: both ``(H, W, 3) uint8`` -> ``(H, W, 3) uint8``, equal to
    ``viz.overlay(image, mask_rgb, alpha=0.5)``, in integer arithmetic, inputs unchanged."""
    from seglib import webapp

    rng = np.random.default_rng(13)
    pairs = np.array(_PAIRS, np.uint8)
    by_hand = (np.repeat(pairs[:, 0], 3).reshape(2, 6, 3), np.repeat(pairs[:, 1], 3).reshape(2, 6, 3))
    cases = [("12 pixels by hand (ties such as 1 and 2, and 255 + 255)", *by_hand),
             ("a random 64x96 image and mask", rng.integers(0, 256, (64, 96, 3), dtype=np.uint8),
              rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))]
    for name, image, mask_rgb in cases:
        kept = image.copy(), mask_rgb.copy()
        got = blend_half(image, mask_rgb)
        expect(np.array_equal(image, kept[0]) and np.array_equal(mask_rgb, kept[1]),
               f"for {name} your function changed its input: blend into a new array (an in-place += on the image "
               "overwrites the picture the page also shows)")
        expected = webapp.blend_half(image, mask_rgb)
        if isinstance(got, np.ndarray) and got.shape == expected.shape and got.dtype == expected.dtype:
            hint = _blend_hint(got, image, mask_rgb)
            expect(not hint or np.array_equal(got, expected), f"the blend of {name} is wrong: {hint}")
        expect_array(got, expected, f"the blend of {name}")
    image = rng.integers(0, 256, (256, 512, 3), dtype=np.uint8)
    mask_rgb = rng.integers(0, 256, (256, 512, 3), dtype=np.uint8)
    yours = median_seconds(lambda: blend_half(image, mask_rgb), repeats=3)
    library = median_seconds(lambda: webapp.blend_half(image, mask_rgb), repeats=3)
    expect(yours < 50 * library + 0.02,
           f"the blend is right, but a 256x512 frame takes {1000 * yours:.0f} ms against {1000 * library:.1f} ms for "
           "seglib's: a loop over the pixels? add whole arrays at once")
    peak, reference = (_peak_bytes(lambda f=f: f(image, mask_rgb)) / image.size
                       for f in (blend_half, webapp.blend_half))
    expect(peak <= max(11.0, reference + 3),
           f"the blend is right, but its temporaries peak at {peak:.1f} bytes per value against {reference:.1f} for "
           "seglib's: float32 (or wider) copies of the image? add in uint16, 2 bytes per value")


# ---------------------------------------------------------------------------------------------------------
# 13.3 The status of an upload
# ---------------------------------------------------------------------------------------------------------


def _encoded(image: Image.Image, image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def _expected_status(data: bytes, max_bytes: int, max_pixels: int) -> tuple[int, str]:
    """The answer key: the byte limit first, then what ``predict.decode_image`` says (status, reason)."""
    if len(data) > max_bytes:
        return 413, f"{len(data):,} bytes is over max_bytes={max_bytes:,}"
    try:
        predict.decode_image(data, max_pixels)
    except predict.ImageError as error:
        return error.status, str(error)
    return 200, "an image the server can predict on"


def _upload_cases(rng: np.random.Generator) -> list[tuple[str, bytes, int, int, str]]:
    """(name, data, max_bytes, max_pixels, hint when wrong)."""
    noise = Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8))
    png = _encoded(noise)
    big = _encoded(Image.new("RGB", (3000, 3000)))
    mib, pixels = 16 * 2**20, 4 * 2**20
    return [
        ("a 32x48 PNG", png, mib, pixels, ""),
        ("the same PNG with max_bytes one byte smaller than the file", png, len(png) - 1, pixels,
         ": check len(data) against max_bytes first, before reading anything"),
        ("an empty body", b"", mib, pixels, ""),
        ("a text file", b"a shopping list, not a picture", mib, pixels, ""),
        ("a GIF", _encoded(noise.convert("P"), "GIF"), mib, pixels, ": a format the server does not take is 415"),
        ("a TIFF", _encoded(noise, "TIFF"), mib, pixels,
         ": only PNG, JPEG (Pillow calls some JPEGs MPO), WebP and BMP are taken; every other format is 415"),
        ("a JPEG", _encoded(noise, "JPEG"), mib, pixels, ""),
        ("a BMP", _encoded(noise, "BMP"), mib, pixels, ""),
        ("an RGBA PNG", _encoded(noise.convert("RGBA")), mib, pixels, ": RGBA and greyscale images are converted"),
        ("a greyscale PNG", _encoded(noise.convert("L")), mib, pixels, ": RGBA and greyscale images are converted"),
        ("a 3000x3000 PNG with max_pixels 4,194,304", big, mib, pixels, ""),
        ("the first 200 bytes of a 3000x3000 PNG", big[:200], mib, pixels,
         ": the header alone says the image is too large, so the answer is 413 before any pixel is decoded "
         "(decoding first finds it truncated and says 400)"),
        ("the first half of a 32x48 PNG", png[: len(png) // 2], mib, pixels,
         ": its header is fine but its pixels are cut off; only decoding them (image.load()) finds that out"),
        ("a 9000x1 PNG", _encoded(Image.new("RGB", (9000, 1))), mib, pixels,
         f": a side longer than predict.MAX_SIDE = {predict.MAX_SIDE} is refused, however few the pixels"),
    ]


def check_upload_status(upload_status) -> None:
    """13.3: ``upload_status(data: bytes, max_bytes: int, max_pixels: int) -> int``: the HTTP status the server
    answers an upload with (200, 400, 413 or 415), as ``predict.decode_image`` and the upload limit decide it."""
    rng = np.random.default_rng(13)
    for name, data, max_bytes, max_pixels, hint in _upload_cases(rng):
        got = upload_status(data, max_bytes, max_pixels)
        expect(isinstance(got, numbers.Integral) and not isinstance(got, bool),
               f"for {name} your function should return an int HTTP status, got {type(got).__name__} {got!r}")
        expected, reason = _expected_status(data, max_bytes, max_pixels)
        expect(int(got) == expected, f"for {name} your status is {int(got)}, expected {expected} ({reason}){hint}")


CHECKS = {"13.1": check_shares, "13.2": check_blend, "13.3": check_upload_status}
