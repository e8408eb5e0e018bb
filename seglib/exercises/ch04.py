"""Checks of chapter 4 (input pipelines): the nearest-neighbour mask resize, and one example from PNG bytes to
what the model sees."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from seglib import labels, masks, modelio
from seglib.exercises import Wrong, expect, expect_array, median_seconds


def _invented(got: np.ndarray, mask: np.ndarray) -> tuple[int, ...] | None:
    """The first position where ``got`` holds a value that ``mask`` does not hold anywhere, or None."""
    foreign = ~np.isin(got, np.unique(mask))
    return tuple(int(i) for i in np.argwhere(foreign)[0]) if foreign.any() else None


def check_resize_mask(resize_mask) -> None:
    """04.1: ``resize_mask(mask (H, W) integers, size (h, w)) -> (h, w)`` of the mask's dtype, output pixel
    ``(i, j)`` from input pixel ``(floor((i + 0.5) H / h), floor((j + 0.5) W / w))``, without loops over pixels."""
    rng = np.random.default_rng(4)
    by_hand = np.arange(16, dtype=np.uint8).reshape(4, 4)
    ignore = np.array([[1, 1, labels.IGNORE], [7, labels.IGNORE, 7]], dtype=np.uint8)
    cases = [("a 2x3 mask with IGNORE (255) pixels enlarged to 5x7 (a centre on a border takes the later pixel)",
              ignore, (5, 7)),
             ("a 4x4 mask halved to 2x2 (each output pixel takes the input pixel under its centre)", by_hand, (2, 2)),
             ("a random 37x53 category mask to 16x24", rng.integers(0, 8, (37, 53)).astype(np.uint8), (16, 24)),
             ("a random 20x30 mask to 45x17 (one axis grows, the other shrinks)",
              rng.integers(0, 8, (20, 30)).astype(np.uint8), (45, 17)),
             ("a 3x5 int32 mask of predictions to 6x10 (the dtype stays)",
              rng.integers(0, 8, (3, 5)).astype(np.int32), (6, 10))]
    for name, mask, size in cases:
        got = resize_mask(mask.copy(), size)
        expected = masks.resize_nearest(mask, size)
        if isinstance(got, np.ndarray) and got.shape == expected.shape:
            where = _invented(got, mask)
            if where is not None:
                ignored = " (next to IGNORE (255): averaging it with a class gives a class that is not there)" \
                    if (mask == labels.IGNORE).any() else ""
                raise Wrong(f"for {name}: your mask holds {got[where].item()!r} at {where}, a value the input does "
                            f"not hold{ignored}: an averaging resize invents classes; nearest neighbour only picks")
        expect_array(got, expected, f"your result for {name}")
    big = rng.integers(0, 8, (512, 1024)).astype(np.uint8)
    yours = median_seconds(lambda: resize_mask(big, (256, 512)), repeats=3)
    library = median_seconds(lambda: masks.resize_nearest(big, (256, 512)), repeats=3)
    expect(yours < 8 * library + 0.005,
           f"the masks are right, but 512x1024 -> 256x512 takes {1000 * yours:.0f} ms against {1000 * library:.1f} ms "
           "for one indexing operation: a loop over the pixels? compute the source rows and columns once "
           "(np.arange) and index with both (mask[rows[:, None], columns])")


def png_bytes(array: np.ndarray) -> bytes:
    """``array`` (an ``(H, W, 3) uint8`` image or an ``(H, W) uint8`` grey mask) encoded as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def expected_example(image_png: bytes, label_png: bytes, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The answer key of 04.2, from seglib's numpy functions (the pipelines' ``load_pair`` in numpy)."""
    image = np.asarray(Image.open(io.BytesIO(image_png)).convert("RGB"))
    label_ids = masks.check_label_ids(np.asarray(Image.open(io.BytesIO(label_png))))
    categories = masks.label_ids_to_categories(label_ids)
    return modelio.to_model_input(modelio.resize_image(image, size)), masks.resize_nearest(categories, size)


def check_load_example(load_example) -> None:
    """04.2: ``load_example(image_png: bytes, label_png: bytes, size (h, w)) -> (image (h, w, 3) float32 in [0, 1],
    mask (h, w) uint8 category ids)``."""
    rng = np.random.default_rng(42)
    cases = []
    for height, width, size in ((24, 40, (12, 16)), (30, 20, (45, 10))):
        image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
        label_ids = rng.integers(0, labels.NUM_LABEL_IDS, (height, width)).astype(np.uint8)
        cases.append((f"a random {height}x{width} frame at size {size}", png_bytes(image), png_bytes(label_ids), size))
    for name, image_png, label_png, size in cases:
        result = load_example(image_png, label_png, size)
        expect(isinstance(result, tuple) and len(result) == 2,
               f"load_example should return a tuple (image, mask), got {type(result).__name__}")
        got_image, got_mask = result
        want_image, want_mask = expected_example(image_png, label_png, size)
        for what, got, want in (("image", got_image, want_image), ("mask", got_mask, want_mask)):
            expect(isinstance(got, np.ndarray), f"the {what} of {name} should be a numpy array, got "
                                                f"{type(got).__name__}")
            if got.shape == want.shape[1::-1] + want.shape[2:]:
                raise Wrong(f"the {what} of {name} has shape {got.shape}, expected {want.shape}: size is (height, "
                            "width), and Pillow's resize takes (width, height)")
            expect(got.shape == want.shape, f"the {what} of {name} has shape {got.shape}, expected {want.shape}")
            expect(got.dtype == want.dtype, f"the {what} of {name} has dtype {got.dtype}, expected {want.dtype}")
        expect(float(got_image.max()) <= 1.0, f"the image of {name} reaches {float(got_image.max()):.6g}: scale it "
                                              "to [0, 1] (modelio.to_model_input)")
        if got_mask.max() >= labels.NUM_CATEGORIES:
            raise Wrong(f"the mask of {name} holds {int(got_mask.max())}, a label id: group the label ids into the "
                        "8 categories (labels.ID_TO_CATEGORY_LUT or masks.label_ids_to_categories)")
        expect_array(got_mask, want_mask, f"the mask of {name}")
        error = np.abs(got_image.astype(np.float64) - want_image)
        if error.max() > 1e-6:
            where = tuple(int(i) for i in np.unravel_index(np.argmax(error), error.shape))
            raise Wrong(f"the image of {name} differs at {int((error > 1e-6).sum()):,} of {error.size:,} values; the "
                        f"largest difference is at {where}: {float(got_image[where]):.6f}, expected "
                        f"{float(want_image[where]):.6f} (resize with modelio.resize_image, then divide by 255)")


CHECKS = {"04.1": check_resize_mask, "04.2": check_load_example}
