"""Checks of chapter 2 (categories): the 34 -> 8 remap and the train-id lookup table."""

from __future__ import annotations

import numpy as np

from seglib import labels, masks
from seglib.exercises import expect, expect_array, median_seconds


def _cases(rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    every_id = np.arange(labels.NUM_LABEL_IDS, dtype=np.uint8).reshape(2, 17)
    return [("every label id once (2x17)", every_id),
            ("a 3x4 mask by hand", np.array([[7, 7, 26, 26], [0, 11, 21, 23], [24, 33, 4, 8]], np.uint8)),
            ("a random 64x128 mask", rng.integers(0, labels.NUM_LABEL_IDS, (64, 128)).astype(np.uint8))]


def check_remap(remap_to_categories) -> None:
    """02.1: ``remap_to_categories(label_ids (H, W) uint8) -> (H, W) uint8`` category ids, as a lookup table."""
    rng = np.random.default_rng(2)
    for name, label_ids in _cases(rng):
        expect_array(remap_to_categories(label_ids.copy()), masks.label_ids_to_categories(label_ids),
                     f"the categories of {name}")
    big = rng.integers(0, labels.NUM_LABEL_IDS, (1024, 2048)).astype(np.uint8)
    yours = median_seconds(lambda: remap_to_categories(big), repeats=3)
    lookup = median_seconds(lambda: masks.label_ids_to_categories(big), repeats=3)
    expect(yours < 8 * lookup + 0.005,
           f"the categories are right, but a 1024x2048 mask takes {1000 * yours:.0f} ms against "
           f"{1000 * lookup:.0f} ms for a lookup table: a loop over the classes? index a 256-entry table instead")


def check_train_id_table(train_id_table) -> None:
    """02.2: ``train_id_table() -> (256,) uint8``: train id of each label id, 255 where there is none."""
    table = train_id_table()
    expect_array(table, labels.ID_TO_TRAIN_ID_LUT, "your table")


CHECKS = {"02.1": check_remap, "02.2": check_train_id_table}
