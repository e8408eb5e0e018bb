"""Checks of chapter 1 (mask formats): decoding a colour mask, and one-hot encoding with IGNORE."""

from __future__ import annotations

import numpy as np

from seglib import labels, masks
from seglib.exercises import Wrong, expect, expect_array, median_seconds


def _last_label_wins(color: np.ndarray) -> np.ndarray:
    """A wrong answer the checker recognises: a shared colour decoded as the *last* label that has it."""
    table = {label.color: label.id for label in labels.LABELS if label.id >= 0}
    keys = [tuple(int(v) for v in pixel) for pixel in color.reshape(-1, 3)]
    return np.array([table[key] for key in keys], dtype=np.uint8).reshape(color.shape[:2])


def check_color_to_label_ids(color_to_label_ids) -> None:
    """01.1: ``color_to_label_ids(color (H, W, 3) uint8) -> (H, W) uint8`` label ids; the first label of a shared
    colour; ``ValueError`` for a colour no label has; fast enough for a whole mask."""
    rng = np.random.default_rng(1)
    every_id = np.arange(labels.NUM_LABEL_IDS, dtype=np.uint8).reshape(2, 17)
    by_hand = np.array([[7, 7, 26, 26], [0, 17, 21, 23], [24, 33, 8, 11]], dtype=np.uint8)
    random_ids = rng.integers(0, labels.NUM_LABEL_IDS, (64, 128)).astype(np.uint8)
    for name, label_ids in (("a 3x4 mask by hand", by_hand), ("the colour of every label id (2x17)", every_id),
                            ("a random 64x128 colour mask", random_ids)):
        color = masks.label_ids_to_color(label_ids)
        got = color_to_label_ids(color.copy())
        expected = masks.color_to_label_ids(color)
        if (isinstance(got, np.ndarray) and got.shape == expected.shape and not np.array_equal(got, expected)
                and np.array_equal(got, _last_label_wins(color))):
            differ = tuple(int(i) for i in np.argwhere(got != expected)[0])
            raise Wrong(f"for {name}: a colour that several labels share got the last of them (at {differ}: "
                        f"{labels.ID_TO_LABEL[int(got[differ])].name!r}, expected "
                        f"{labels.ID_TO_LABEL[int(expected[differ])].name!r}); decode it as the first label in "
                        "labels.LABELS with that colour")
        expect_array(got, expected, f"the label ids of {name}")
    unknown = masks.label_ids_to_color(by_hand)
    unknown[1, 2] = (1, 2, 3)
    try:
        answer = color_to_label_ids(unknown)
    except ValueError:
        pass
    except Exception as error:  # noqa: BLE001 - any other exception is the wrong kind
        raise Wrong(f"a colour that no label has, (1, 2, 3), raised {type(error).__name__}: {error}; raise "
                    "ValueError (and name the colour)") from None
    else:
        try:
            gave = f"gave {np.asarray(answer)[1, 2].item()!r}"
        except (IndexError, TypeError, ValueError):
            gave = f"returned a {type(answer).__name__}"
        raise Wrong(f"a colour that no label has, (1, 2, 3) at (1, 2), {gave} instead of raising "
                    "ValueError: a JPEG-compressed or resized colour file holds such colours, and a guessed label "
                    "would go unnoticed")
    big = masks.label_ids_to_color(rng.integers(0, labels.NUM_LABEL_IDS, (256, 512)).astype(np.uint8))
    yours = median_seconds(lambda: color_to_label_ids(big), repeats=2)
    library = median_seconds(lambda: masks.color_to_label_ids(big), repeats=3)
    expect(yours < 10 * library + 0.02,
           f"the label ids are right, but a 256x512 colour mask takes {1000 * yours:.0f} ms against "
           f"{1000 * library:.0f} ms for seglib: a loop over the pixels? turn each pixel's colour into one integer "
           "(r × 65536 + g × 256 + b, in a wide integer type) and look the integers up all at once")


def check_to_one_hot(to_one_hot) -> None:
    """01.2: ``to_one_hot(categories (H, W) uint8, num_classes=8) -> (H, W, num_classes) float32``; IGNORE (255)
    pixels are all-zero rows."""
    rng = np.random.default_rng(12)
    plain = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], dtype=np.uint8)
    expect_array(to_one_hot(plain.copy()), masks.categories_to_one_hot(plain), "the one-hot of a 2x4 mask by hand")
    random = rng.integers(0, labels.NUM_CATEGORIES, (48, 64)).astype(np.uint8)
    random[rng.random(random.shape) < 0.1] = labels.IGNORE
    binary = np.array([[0, 1, 1], [labels.IGNORE, 0, 1]], dtype=np.uint8)
    for name, categories, classes in (("a 48x64 mask with IGNORE (255) pixels", random, labels.NUM_CATEGORIES),
                                      ("a 2x3 binary mask (num_classes=2) with an IGNORE pixel", binary, 2)):
        expected = masks.categories_to_one_hot(categories, classes)
        try:
            got = to_one_hot(categories.copy(), *(() if classes == labels.NUM_CATEGORIES else (classes,)))
        except IndexError as error:
            raise Wrong(f"on {name} your answer raised IndexError ({error}): IGNORE (255) is no class to look up; "
                        "its pixels get an all-zero row") from None
        expect(isinstance(got, np.ndarray) and got.shape == expected.shape,
               f"the one-hot of {name} has shape {getattr(got, 'shape', None)}, expected {expected.shape}"
               + (" (one channel per class: use num_classes)" if classes == 2 else ""))
        expect(got.dtype == expected.dtype, f"the one-hot of {name} has dtype {got.dtype}, expected float32")
        ignored = categories == labels.IGNORE
        if got[ignored].any():
            row = tuple(int(i) for i in np.argwhere(ignored & got.any(axis=-1))[0])
            raise Wrong(f"IGNORE (255) handled wrongly in {name}: the pixel at {row} is IGNORE, and your row there is "
                        f"{got[row].tolist()}; it must be all zeros, so that the pixel carries no target")
        expect_array(got, expected, f"the one-hot of {name}")


CHECKS = {"01.1": check_color_to_label_ids, "01.2": check_to_one_hot}
