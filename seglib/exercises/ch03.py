"""Checks of chapter 3 (where masks come from): drawing polygons by the official rules, and the pixels each object
ends up owning."""

from __future__ import annotations

import copy

import numpy as np

from seglib import labels, masks
from seglib.exercises import Wrong, expect, expect_array


def annotation(*objects: dict, height: int = 5, width: int = 8) -> dict:
    """A Cityscapes polygons dict of ``objects`` (``{"label", "polygon", ["deleted"]}``) on a ``height x width``
    image."""
    return {"imgHeight": height, "imgWidth": width, "objects": [dict(obj) for obj in objects]}


def _box(x0: int, y0: int, x1: int, y1: int) -> list[list[int]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def random_annotation(rng: np.random.Generator, count: int = 12, height: int = 36, width: int = 52) -> dict:
    """``count`` random objects (triangles and quadrilaterals, some vertices outside the image, some deleted, some
    groups and license plates) on a ``height x width`` image."""
    names = ["road", "sidewalk", "building", "vegetation", "sky", "car", "person", "pole", "cargroup",
             "persongroup", "polegroup", "license plate", "traffic sign"]
    objects = []
    for _ in range(count):
        corners = int(rng.integers(3, 5))
        points = np.stack([rng.integers(-6, width + 6, corners), rng.integers(-6, height + 6, corners)], axis=1)
        obj = {"label": names[int(rng.integers(len(names)))], "polygon": points.tolist()}
        if rng.random() < 0.15:
            obj["deleted"] = 1
        objects.append(obj)
    return annotation(*objects, height=height, width=width)


def _rule_cases(rng: np.random.Generator) -> list[tuple[str, dict]]:
    return [
        ("a square from (1, 1) to (3, 3) on a 5x8 image (edge pixels belong to the polygon; background 0)",
         annotation({"label": "road", "polygon": _box(1, 1, 3, 3)})),
        ("two overlapping boxes (the object listed later is drawn on top)",
         annotation({"label": "sky", "polygon": _box(0, 0, 5, 3)}, {"label": "car", "polygon": _box(3, 2, 7, 4)})),
        ("a deleted object (skip it)",
         annotation({"label": "road", "polygon": _box(0, 2, 7, 4)},
                    {"label": "person", "polygon": _box(2, 0, 4, 4), "deleted": 1})),
        ("'cargroup' (drawn as car, 26) and 'polegroup' (a label of its own, 18)",
         annotation({"label": "cargroup", "polygon": _box(0, 0, 2, 2)},
                    {"label": "polegroup", "polygon": _box(6, 0, 7, 4)})),
        ("a license plate on a car (never drawn: the car stays)",
         annotation({"label": "car", "polygon": _box(1, 1, 6, 4)},
                    {"label": "license plate", "polygon": _box(2, 3, 4, 4)})),
        ("vertices outside the image (the drawing clips them)",
         annotation({"label": "sky", "polygon": [[-20, -20], [30, -20], [30, 2], [-20, 2]]})),
        ("a 7x11 image (not square: the mask is (imgHeight, imgWidth))",
         annotation({"label": "vegetation", "polygon": [[0, 0], [10, 0], [0, 6]]}, height=7, width=11)),
        ("a random annotation of 12 objects on 36x52", random_annotation(rng)),
    ]


def check_draw_polygons(draw_polygons) -> None:
    """03.1: ``draw_polygons(annotation: dict) -> (imgHeight, imgWidth) uint8`` label ids, drawn by the official
    rules (the answer key is :func:`seglib.masks.polygons_to_label_ids`)."""
    rng = np.random.default_rng(3)
    for name, polygons in _rule_cases(rng):
        expect_array(draw_polygons(copy.deepcopy(polygons)), masks.polygons_to_label_ids(polygons),
                     f"the mask of {name}")


def expected_pixels_owned(polygons: dict) -> np.ndarray:
    """The answer key of 03.2, from :func:`seglib.masks.polygons_to_instance_ids`: every drawn object relabelled as
    one car, whose instance number ``k`` then counts the drawn objects in file order."""
    relabelled, drawn = copy.deepcopy(polygons), []
    for index, obj in enumerate(relabelled["objects"]):
        skipped = bool(obj.get("deleted")) or labels.label_from_name(obj["label"]).id < 0
        obj["label"], obj["deleted"] = "car", int(skipped)
        if not skipped:
            drawn.append(index)
    values = masks.polygons_to_instance_ids(relabelled)
    car = labels.NAME_TO_LABEL["car"].id * labels.INSTANCE_FACTOR
    counts = np.bincount(values[values >= car].ravel() - car, minlength=len(drawn))
    owned = np.zeros(len(polygons["objects"]), dtype=np.int64)
    owned[drawn] = counts[:len(drawn)]
    return owned


def _areas(polygons: dict) -> np.ndarray:
    """A wrong answer the checker recognises: each drawn object's own area, as if nothing covered it."""
    areas = np.zeros(len(polygons["objects"]), dtype=np.int64)
    for index, obj in enumerate(polygons["objects"]):
        alone = annotation(obj, height=polygons["imgHeight"], width=polygons["imgWidth"])
        areas[index] = expected_pixels_owned(alone)[0]
    return areas


def _reversed(polygons: dict) -> np.ndarray:
    """A wrong answer the checker recognises: the earlier object drawn on top."""
    flipped = copy.deepcopy(polygons)
    flipped["objects"] = flipped["objects"][::-1]
    return expected_pixels_owned(flipped)[::-1]


def check_pixels_owned(pixels_owned) -> None:
    """03.2: ``pixels_owned(annotation: dict) -> (N,) int64``, for each of the N objects in file order the pixels
    whose label it decides in the drawn mask (0 for deleted objects, license plates and hidden objects)."""
    rng = np.random.default_rng(32)
    cases = [
        ("two overlapping 3x3 boxes", annotation({"label": "road", "polygon": _box(1, 1, 3, 3)},
                                                 {"label": "car", "polygon": _box(2, 2, 4, 4)})),
        ("a deleted object and a license plate",
         annotation({"label": "road", "polygon": _box(0, 2, 7, 4)},
                    {"label": "person", "polygon": _box(2, 0, 4, 4), "deleted": 1},
                    {"label": "license plate", "polygon": _box(5, 3, 6, 4)})),
        ("a box hidden entirely by a later, larger one",
         annotation({"label": "person", "polygon": _box(2, 1, 3, 2)},
                    {"label": "building", "polygon": _box(0, 0, 7, 4)})),
        ("a random annotation of 12 objects on 36x52", random_annotation(rng)),
    ]
    for name, polygons in cases:
        got = pixels_owned(copy.deepcopy(polygons))
        expected = expected_pixels_owned(polygons)
        if isinstance(got, np.ndarray) and got.shape == expected.shape and not np.array_equal(got, expected):
            expect(not np.array_equal(got, _areas(polygons)),
                   f"for {name}: you counted each polygon's own area; a pixel that a later object covers belongs "
                   f"to that later object (yours {got.tolist()}, expected {expected.tolist()})")
            expect(not np.array_equal(got, _reversed(polygons)),
                   f"for {name}: in yours the earlier object stays on top; the tools draw in file order, so the "
                   f"later object wins (yours {got.tolist()}, expected {expected.tolist()})")
        try:
            expect_array(got, expected, f"the pixels owned in {name}")
        except Wrong as wrong:
            raise Wrong(f"{wrong} (index = the object's position in 'objects')") from None


CHECKS = {"03.1": check_draw_polygons, "03.2": check_pixels_owned}
