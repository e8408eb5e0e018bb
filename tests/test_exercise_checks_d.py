"""The checks of chapters 13-17 catch plausible wrong answers and say what is wrong: a wrong dtype or type, an
off-by-one, IGNORE mishandled, an overflow, a loop or float copies where integer arithmetic was asked for."""

import base64
import io
import json
import math

import numpy as np
import pytest
from PIL import Image

from seglib import labels, predict, results, webapp

from _exercise_checks import fails as _fails
from _exercise_checks import passes as _passes

pytestmark = pytest.mark.exercise


# ---------------------------------------------------------------------------------------------------------
# 13.1 shares from the answer, 13.2 the blend, 13.3 the status of an upload
# ---------------------------------------------------------------------------------------------------------

def _categories(answer: dict) -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(answer["mask_png"]))) as image:
        return np.asarray(image)


def test_13_1_names_ignore_counts_and_missing_categories():
    def without_ignore(answer):  # divides by the labelled pixels only
        categories = _categories(answer)
        counts = np.bincount(categories.ravel(), minlength=256)
        labelled = max(int((categories != 255).sum()), 1)
        return {name: counts[i] / labelled for i, name in enumerate(labels.CATEGORY_NAMES)}

    def counts(answer):  # forgets to divide
        counts = np.bincount(_categories(answer).ravel(), minlength=256)
        return {name: float(counts[i]) for i, name in enumerate(labels.CATEGORY_NAMES)}

    def present_only(answer):  # only the categories that occur
        categories = _categories(answer)
        values, found = np.unique(categories[categories != 255], return_counts=True)
        return {labels.CATEGORY_NAMES[v]: n / categories.size for v, n in zip(values, found)}

    _fails("13.1", without_ignore, r"IGNORE \(255\) pixels are pixels of the image: they count in the total")
    _fails("13.1", counts, r"share of void is 2\.000000, expected 0\.250000: that is the pixel count")
    _fails("13.1", present_only, r"keys should be the 8 category names in order.*every one even with a share of 0")
    _fails("13.1", lambda answer: list(answer["shares"].values()), r"should return a dict, got list")


def test_13_2_names_overflow_rounding_mutation_and_float_copies():
    def in_uint8(image, mask_rgb):
        return (image + mask_rgb) // 2

    def floor(image, mask_rgb):
        return ((image.astype(np.uint16) + mask_rgb) // 2).astype(np.uint8)

    def half_up(image, mask_rgb):
        return ((image.astype(np.uint16) + mask_rgb + 1) // 2).astype(np.uint8)

    def in_place(image, mask_rgb):
        image //= 2
        image += mask_rgb // 2 + (image & mask_rgb & 1)  # any arithmetic: the input is overwritten
        return webapp.blend_half(image, mask_rgb)

    def in_float64(image, mask_rgb):
        return np.round(0.5 * image.astype(np.float64) + 0.5 * mask_rgb.astype(np.float64)).astype(np.uint8)

    def as_uint16(image, mask_rgb):
        return webapp.blend_half(image, mask_rgb).astype(np.uint16)

    _fails("13.2", in_uint8, r"overflows uint8 \(255 \+ 255 wraps around\): add in uint16")
    _fails("13.2", floor, r"every half is rounded down.*even neighbour")
    _fails("13.2", half_up, r"every half is rounded up")
    _fails("13.2", in_place, r"changed its input: blend into a new array")
    _fails("13.2", in_float64, r"temporaries peak at \d+\.\d bytes per value against \d\.\d for seglib's: float32")
    _fails("13.2", as_uint16, r"has dtype uint16, expected uint8")


def test_13_2_times_a_loop_over_the_pixels():
    def loop(image, mask_rgb):
        flat_image, flat_mask = image.reshape(-1).tolist(), mask_rgb.reshape(-1).tolist()
        out = [round(0.5 * a + 0.5 * b) for a, b in zip(flat_image, flat_mask)]  # Python rounds halves to even
        return np.array(out, np.uint8).reshape(image.shape)

    _fails("13.2", loop, r"the blend is right, but a 256x512 frame takes \d+ ms .*a loop over the pixels")


def _status(data, max_bytes, max_pixels, decode_first=False, header_only=False, deny_gif_only=False,
            size_first=True):
    """A configurable version of the solution, each switch one plausible mistake."""
    if size_first and len(data) > max_bytes:
        return 413
    try:
        image = Image.open(io.BytesIO(data))
        if decode_first:
            image.load()
    except (OSError, SyntaxError, ValueError):
        return 400
    if (image.format == "GIF") if deny_gif_only else (image.format not in ("PNG", "JPEG", "MPO", "WEBP", "BMP")):
        return 415
    width, height = image.size
    if width * height > max_pixels or max(width, height) > predict.MAX_SIDE:
        return 413
    if not header_only:
        try:
            image.load()
        except (OSError, SyntaxError, ValueError):
            return 400
    return 200


def test_13_3_names_the_order_of_the_rules():
    _passes("13.3", _status)
    _fails("13.3", lambda *args: _status(*args, decode_first=True),
           r"first 200 bytes of a 3000x3000 PNG your status is 400, expected 413.*header alone")
    _fails("13.3", lambda *args: _status(*args, header_only=True),
           r"first half of a 32x48 PNG your status is 200, expected 400.*image\.load\(\)")
    _fails("13.3", lambda *args: _status(*args, deny_gif_only=True), r"TIFF your status is 200, expected 415")
    _fails("13.3", lambda *args: _status(*args, size_first=False),
           r"max_bytes one byte smaller.*your status is 200, expected 413")
    _fails("13.3", lambda *args: str(_status(*args)), r"should return an int HTTP status, got str '200'")


# ---------------------------------------------------------------------------------------------------------
# 14.1 the image in a request body, 14.2 the size of a base64 image
# ---------------------------------------------------------------------------------------------------------

def _image_bytes(body, content_type, exact_type=False, strict=True, data_url=True, unwrap=True, check_type=True):
    media_type = (content_type or "") if exact_type else (content_type or "").split(";")[0].strip().lower()
    if media_type not in ("application/json", "text/json"):
        return body
    document = json.loads(body)
    text = document["image"] if not check_type else None
    if check_type:
        if not isinstance(document, dict) or not isinstance(document.get("image"), str):
            raise ValueError("no image")
        text = document["image"]
    if data_url and text.startswith("data:"):
        text = text.split(",", 1)[1]
    if unwrap:
        text = "".join(text.split())
    return base64.b64decode(text, validate=strict)


def test_14_1_names_content_types_base64_and_exceptions():
    _passes("14.1", _image_bytes)
    _fails("14.1", lambda b, t: _image_bytes(b, t, exact_type=True),
           r"charset=utf-8 your function returned the body itself.*compare only the media type")
    _fails("14.1", lambda b, t: _image_bytes(b, t, strict=False),
           r"outside base64 .*returned 6 bytes instead of raising ValueError.*validate=True")
    _fails("14.1", lambda b, t: _image_bytes(b, t, data_url=False),
           r"data URL.*raised Error \(Only base64 data is allowed\), but the body holds an image: strip a data URL")
    _fails("14.1", lambda b, t: _image_bytes(b, t, unwrap=False), r"wrapped in lines.*remove the whitespace")
    _fails("14.1", lambda b, t: _image_bytes(b, t, check_type=False), r"JSON list.*raised TypeError.*should raise "
                                                                      r"ValueError.*where any other exception is a 500")


def test_14_2_names_padding_whitespace_decoding_and_type():
    def size(text: str) -> int:
        characters = "".join(text.split())
        return 3 * len(characters) // 4 - (len(characters) - len(characters.rstrip("=")))

    def decodes(text: str) -> int:
        return len(base64.b64decode(text))

    _passes("14.2", size)
    _fails("14.2", lambda text: 3 * len("".join(text.split())) // 4,
           r'"YQ==" \(1 byte, two padding characters\).*says 3 bytes, expected 1: a padding .=. stands for no byte')
    _fails("14.2", lambda text: 3 * len(text) // 4 - (len(text) - len(text.rstrip("="))),
           r"lines of 76 characters.*line breaks are not base64 characters")
    _fails("14.2", decodes, r"decodes the text .*count characters instead")
    _fails("14.2", lambda text: 0.75 * len("".join(text.split())), r"should return an int .*got float")


# ---------------------------------------------------------------------------------------------------------
# 15.1 quantize, 15.2 scale and zero point
# ---------------------------------------------------------------------------------------------------------

def test_15_1_names_wrapping_truncation_zero_point_and_dtype():
    _fails("15.1", lambda v, s, z: (np.round(v / s) + z).astype(np.int8), r"wrap around instead of saturating: clip")
    _fails("15.1", lambda v, s, z: np.clip((v / s).astype(np.int64) + z, -128, 127).astype(np.int8),
           r"truncated towards zero")
    _fails("15.1", lambda v, s, z: np.clip(np.round(v / s) - z, -128, 127).astype(np.int8),
           r"the zero point is subtracted")
    _fails("15.1", lambda v, s, z: np.clip(np.round(v / s) + z, -128, 127).astype(np.int64),
           r"has dtype int64, expected int8")
    _fails("15.1", lambda v, s, z: np.clip(np.round(v * s) + z, -128, 127).astype(np.int8),
           r"multiplied by the scale")


def test_15_2_names_255_steps_the_zero_and_the_types():
    def unwidened(low, high):
        scale = (high - low) / 255
        return scale, int(np.clip(np.round(-128 - low / scale), -128, 127))

    def by_256(low, high):
        low, high = min(low, 0.0), max(high, 0.0)
        return (high - low) / 256, int(round(-128 - low / ((high - low) / 256)))

    def float_zero(low, high):
        low, high = min(low, 0.0), max(high, 0.0)
        return (high - low) / 255, float(np.round(-128 - low / ((high - low) / 255)))

    def flipped(low, high):
        low, high = min(low, 0.0), max(high, 0.0)
        return (high - low) / 255, -int(np.round(-128 - low / ((high - low) / 255)))

    _fails("15.2", unwidened, r"range \[0\.5, 2\].*widen the range to hold 0 first")
    _fails("15.2", by_256, r"input's range \[0, 1\] is 0\.00390625, expected 0\.00392157: .*divide the range by 255")
    _fails("15.2", float_zero, r"zero point should be an int .*got float -128\.0")
    _fails("15.2", flipped, r"zero point for the input's range \[0, 1\] is 128, expected -128: its sign is flipped")
    _fails("15.2", lambda low, high: [1 / 255, -128], r"should return a tuple \(scale, zero_point\), got list")


# ---------------------------------------------------------------------------------------------------------
# 16.1 epochs that fit, 16.2 the verdict of two sets of seeds
# ---------------------------------------------------------------------------------------------------------

def test_16_1_names_partial_batches_rounding_and_type():
    _fails("16.1", lambda budget, frames, batch, rate: math.floor(budget * rate / (frames // batch or 1)),
           r"161 frames.*says 41 epochs, expected 40: an epoch is ceil\(161 / 4\) = 41 steps")
    _fails("16.1", lambda budget, frames, batch, rate: math.ceil(budget * rate / math.ceil(frames / batch)),
           r"ci profile.*says 12 epochs, expected 11: only whole epochs fit.*round down")
    _fails("16.1", lambda budget, frames, batch, rate: budget * rate // math.ceil(frames / batch),
           r"should return an int .*got float 11\.0")


def test_16_2_names_touching_ranges_means_and_direction():
    def by_mean(first, second, higher_is_better=True):
        sign = 1 if higher_is_better else -1
        a, b = sign * np.mean(first), sign * np.mean(second)
        return "ahead by more than the spread" if a > b else "behind by more than the spread"

    def touching_apart(first, second, higher_is_better=True):
        sign = 1 if higher_is_better else -1
        first, second = [sign * v for v in first], [sign * v for v in second]
        if min(first) >= max(second):
            return "ahead by more than the spread"
        if max(first) <= min(second):
            return "behind by more than the spread"
        return "within the spread"

    def higher_always(first, second, higher_is_better=True):
        return results.compare(first, second)

    _fails("16.2", by_mean, r"overlapping ranges.*'behind by more than the spread', expected 'within the spread'")
    _fails("16.2", touching_apart, r"ranges that touch.*share 0\.62, so they overlap")
    _fails("16.2", higher_always, r"lower is better.*'behind by more than the spread', expected 'ahead.*lower values "
                                  r"are the better ones")
    _fails("16.2", lambda first, second, higher_is_better=True: "ahead", r"should return one of 'ahead by more")


# ---------------------------------------------------------------------------------------------------------
# 17.1 a keras.ops cross-entropy
# ---------------------------------------------------------------------------------------------------------

def _ops_cross_entropy(y_true, y_pred, mask_ignore=True, count_all=False, clip=True, no_nan=True, use_numpy=False):
    from keras import ops

    if use_numpy:
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        valid = y_true != 255
        p = np.take_along_axis(y_pred, np.where(valid, y_true, 0)[..., None], -1)[..., 0]
        return float(np.where(valid, -np.log(np.clip(p, 1e-7, 1 - 1e-7)), 0).sum() / max(valid.sum(), 1))
    y_true = ops.cast(y_true, "int32")
    valid = ops.not_equal(y_true, 255)
    target = ops.where(valid, y_true, 0) if mask_ignore else y_true
    p = ops.take_along_axis(y_pred, ops.expand_dims(target, -1), axis=-1)[..., 0]
    per_pixel = -ops.log(ops.clip(p, 1e-7, 1 - 1e-7) if clip else p)
    per_pixel = ops.where(valid, per_pixel, 0.0)
    count = ops.cast(ops.size(y_true), "float32") if count_all else ops.sum(ops.cast(valid, "float32"))
    return ops.divide_no_nan(ops.sum(per_pixel), count) if no_nan else ops.sum(per_pixel) / count


def test_17_1_names_ignore_clipping_nan_and_numpy():
    _passes("17.1", _ops_cross_entropy)
    _fails("17.1", lambda t, p: _ops_cross_entropy(t, p, mask_ignore=False),
           r"second one IGNORE \(255\).*raised .*replace IGNORE targets by 0 before gathering")
    _fails("17.1", lambda t, p: _ops_cross_entropy(t, p, count_all=True),
           r"second one IGNORE.*loss is 0\.0526803, expected 0\.105361: IGNORE pixels are left out of the sum but "
           r"still counted in the mean")
    _fails("17.1", lambda t, p: _ops_cross_entropy(t, p, clip=False), r"probability 0 your loss is inf.*clip")
    _fails("17.1", lambda t, p: _ops_cross_entropy(t, p, no_nan=False), r"all IGNORE your loss is nan.*divide_no_nan")
    _fails("17.1", lambda t, p: _ops_cross_entropy(t, p, use_numpy=True),
           r"fails on symbolic tensors.*use keras\.ops for every step, not numpy")
