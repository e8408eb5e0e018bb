"""Checks of chapter 0 (introduction): a frame's file paths from its name, and instances per category."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from seglib import cityscapes, labels, masks
from seglib.exercises import Wrong, expect, expect_array

#: The keys of 00.1's answer: the image, then the four gtFine kinds.
PATH_KEYS = ("image", *cityscapes.GT_KINDS)


def expected_frame_paths(root: Path, split: str, stem: str) -> dict[str, Path]:
    """The answer key of 00.1, from :class:`seglib.cityscapes.Frame`."""
    frame = cityscapes.parse_image_name(root, split, f"{stem}_leftImg8bit.png")
    return {"image": frame.image_path, **{kind: frame.gt_path(kind) for kind in cityscapes.GT_KINDS}}


def check_frame_paths(frame_paths) -> None:
    """00.1: ``frame_paths(root: Path, split: str, stem: str) -> dict[str, Path]`` with the keys of
    :data:`PATH_KEYS`, the paths of the Cityscapes layout."""
    cases = [(Path("/data/cityscapes"), "train", "aachen_000000_000019", "a frame of aachen"),
             (Path("cityscapes"), "val", "frankfurt_001234_000007", "a frame of frankfurt (a relative root)"),
             (Path("/data/generated"), "test", "bad_honnef_000012_000345",
              "a frame of bad_honnef (a city name may hold underscores: the frame numbers are the last two parts)")]
    for root, split, stem, name in cases:
        got = frame_paths(root, split, stem)
        expect(isinstance(got, dict), f"frame_paths should return a dict, got {type(got).__name__}")
        missing = [key for key in PATH_KEYS if key not in got]
        expect(not missing, f"your dict has no {', '.join(repr(key) for key in missing)} "
                            f"(the keys are {', '.join(repr(key) for key in PATH_KEYS)})")
        for key, path in expected_frame_paths(root, split, stem).items():
            value = got[key]
            expect(isinstance(value, (str, os.PathLike)), f"the {key!r} path should be a Path, got "
                                                          f"{type(value).__name__}")
            expect(Path(value) == path, f"for {name}, split {split!r}, stem {stem!r}: your {key!r} path is "
                                        f"{str(value)!r}, expected {str(path)!r}")


def expected_instances_per_category(instance_ids: np.ndarray) -> np.ndarray:
    """The answer key of 00.2: distinct ``(label, instance)`` pairs, counted per category."""
    label_ids, instance = masks.instance_ids_to_label_ids(instance_ids)
    has_instance = instance >= 0
    pairs = np.unique(label_ids[has_instance].astype(np.int64) * labels.INSTANCE_FACTOR + instance[has_instance])
    categories = labels.ID_TO_CATEGORY_LUT[pairs // labels.INSTANCE_FACTOR]
    return np.bincount(categories, minlength=labels.NUM_CATEGORIES).astype(np.int64)


def _counted_plain_ids(instance_ids: np.ndarray) -> np.ndarray:
    """A wrong answer the checker recognises: every distinct value of a label with instances counted, the plain
    label ids (groups such as cargroup) too."""
    values = np.unique(instance_ids)
    ids = np.where(values >= labels.INSTANCE_FACTOR, values // labels.INSTANCE_FACTOR, values)
    with_instances = np.array([labels.ID_TO_LABEL[int(i)].has_instances for i in ids], dtype=bool)
    categories = labels.ID_TO_CATEGORY_LUT[ids[with_instances]]
    return np.bincount(categories, minlength=labels.NUM_CATEGORIES).astype(np.int64)


def _instance_cases(rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    by_hand = np.array([[26001, 26001, 26002, 7],
                        [24001, 24001, 26, 11],
                        [33000, 33001, 26002, 23]], dtype=np.int32)
    pool = np.array([7, 8, 11, 21, 23, 24, 26, 33, 24000, 24001, 25000, 26000, 26001, 26002, 26003, 27000,
                     32000, 32001, 33000, 33005], dtype=np.int32)
    return [("a 3x4 instanceIds by hand (a person 24001 and a car 26001 share k = 1; 26 is a cargroup: "
             "no instance)", by_hand),
            ("a 6x5 instanceIds without any instance", np.full((6, 5), 7, dtype=np.int32)),
            ("a random 64x128 instanceIds", pool[rng.integers(0, len(pool), (64, 128))])]


def check_instances_per_category(instances_per_category) -> None:
    """00.2: ``instances_per_category(instance_ids (H, W) int32) -> (8,) int64``: objects per category."""
    rng = np.random.default_rng(0)
    for name, instance_ids in _instance_cases(rng):
        got = instances_per_category(instance_ids.copy())
        expected = expected_instances_per_category(instance_ids)
        if isinstance(got, np.ndarray) and got.shape == expected.shape and not np.array_equal(got, expected):
            objects = instance_ids[instance_ids >= labels.INSTANCE_FACTOR]
            pixels = np.bincount(labels.ID_TO_CATEGORY_LUT[objects // labels.INSTANCE_FACTOR],
                                 minlength=labels.NUM_CATEGORIES)
            expect(not np.array_equal(got, pixels), f"for {name}: you counted the pixels of instances, not the "
                                                    "instances: count each distinct value >= 1000 once")
            expect(not np.array_equal(got, _counted_plain_ids(instance_ids)),
                   f"for {name}: you counted a plain label id (below 1000, such as 26 for a cargroup) as an "
                   "instance; only values id × 1000 + k are instances")
        try:
            expect_array(got, expected, f"the counts of {name}")
        except Wrong as wrong:
            raise Wrong(f"{wrong} (index = category id: {', '.join(labels.CATEGORY_NAMES)})") from None


CHECKS = {"00.1": check_frame_paths, "00.2": check_instances_per_category}
