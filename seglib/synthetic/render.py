"""Rendering: a photo-like image of a polygons annotation (:func:`render_image`), each pixel painted as the object
that the official rasterizer draws last there (:func:`owner_map`), so the image agrees with the label masks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw

from seglib import labels, masks
from seglib.synthetic.geometry import _FOCAL, DESIGN_SIZE, _Box
from seglib.synthetic.textures import _BY_CATEGORY, _TEXTURES, _Ground, _Look, _tex_thing

__all__ = ["owner_map", "render_image"]

# ---------------------------------------------------------------------------------------------------------
# Rendering: who owns each pixel, and what it looks like
# ---------------------------------------------------------------------------------------------------------

def owner_map(polygons: Mapping[str, Any]) -> np.ndarray:
    """``(H, W) int32``: 1 + the index (in ``polygons["objects"]``) of the object visible at each pixel, 0 for none.

    Every non-deleted object is drawn in file order with Pillow's polygon fill, the official tools' rasterizer,
    so an object's pixels here are exactly its pixels in the label masks; license plates are drawn too (they
    show in the image although the label masks leave them out).
    """
    return _owners(masks.parse_polygons(polygons))


def _owners(polygons: Mapping[str, Any]) -> np.ndarray:
    """:func:`owner_map` of an already validated annotation."""
    image = Image.new("I", (polygons["imgWidth"], polygons["imgHeight"]), 0)
    draw = ImageDraw.Draw(image)
    for index, obj in enumerate(polygons["objects"]):
        if not obj.get("deleted"):
            draw.polygon([tuple(point) for point in obj["polygon"]], fill=index + 1)
    return np.asarray(image, dtype=np.int32)



def _box(polygon: list[list[int]], size: tuple[int, int]) -> _Box | None:
    points = np.asarray(polygon, dtype=np.int64)
    x0, y0 = np.maximum(points.min(axis=0), 0)
    x1, y1 = np.minimum(points.max(axis=0) + 1, [size[1], size[0]])
    return (slice(int(y0), int(y1)), slice(int(x0), int(x1))) if x1 > x0 and y1 > y0 else None


def _shape(polygon: list[list[int]], box: _Box) -> np.ndarray:
    """The object's own polygon (ignoring occlusion) rasterized over its box: ``(h, w) bool``."""
    canvas = Image.new("L", (box[1].stop - box[1].start, box[0].stop - box[0].start), 0)
    ImageDraw.Draw(canvas).polygon([(x - box[1].start, y - box[0].start) for x, y in polygon], fill=1)
    return np.asarray(canvas, dtype=bool)


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cell: int) -> np.ndarray:
    """``(H, W) float32`` noise with unit spread, smooth over about ``cell`` pixels."""
    height, width = size
    if cell <= 1:
        return rng.standard_normal(size, dtype=np.float32)
    grid = rng.standard_normal((height // cell + 3, width // cell + 3), dtype=np.float32)
    big = cv2.resize(grid, (grid.shape[1] * cell, grid.shape[0] * cell), interpolation=cv2.INTER_CUBIC)
    big = big[cell:cell + height, cell:cell + width]
    return big / max(float(big.std()), 1e-6)


def _road_ground(polygons: Mapping[str, Any], size: tuple[int, int]) -> _Ground | None:
    """Fit straight lines to the left and right edges of the largest 'road' polygon; they meet at the vanishing
    point, which gives the ground plane (None if there is no usable road)."""
    roads = [o["polygon"] for o in polygons["objects"] if o["label"] == "road" and not o.get("deleted")]
    if not roads:
        return None
    polygon = max(roads, key=lambda p: np.ptp(np.asarray(p), axis=0).prod())
    box = _box(polygon, size)
    if box is None:
        return None
    shape = _shape(polygon, box)
    rows = np.nonzero(shape.any(axis=1))[0]
    left = shape[rows].argmax(axis=1) + box[1].start
    right = shape.shape[1] - 1 - shape[rows, ::-1].argmax(axis=1) + box[1].start
    ys = rows + box[0].start
    keep = (left > 0) & (right < size[1] - 1) & (ys > ys.min() + 0.2 * np.ptp(ys))
    if keep.sum() < 4:
        return None
    (al, bl), (ar, br) = np.polyfit(ys[keep], left[keep], 1), np.polyfit(ys[keep], right[keep], 1)
    if ar - al < 1e-3:
        return None
    cy = (bl - br) / (ar - al)
    fx, fy = _FOCAL * size[1] / DESIGN_SIZE[1], _FOCAL * size[0] / DESIGN_SIZE[0]
    if not -0.5 * size[0] < cy < ys[keep].min():
        return None
    return _Ground(al * cy + bl, cy, fx, fy, al * fy * 1.2 / fx, ar * fy * 1.2 / fx)


def _sky_colours(rng: np.random.Generator, overcast: bool) -> tuple[np.ndarray, np.ndarray]:
    if overcast:
        low = np.array([205, 208, 212], dtype=np.float32) + rng.uniform(-25, 25)
        return low - rng.uniform(5, 35), low
    top = np.array([rng.uniform(50, 95), rng.uniform(95, 140), rng.uniform(160, 210)], dtype=np.float32)
    low = np.array([rng.uniform(165, 205), rng.uniform(185, 215), rng.uniform(205, 235)], dtype=np.float32)
    return top, low


def _look(polygons: Mapping[str, Any], rng: np.random.Generator) -> _Look:
    height, width = size = polygons["imgHeight"], polygons["imgWidth"]
    cells = {"fine": 1, "small": 9, "mid": 32, "coarse": 170}
    noise = {name: _smooth_noise(rng, size, max(1, round(cell * width / DESIGN_SIZE[1])))
             for name, cell in cells.items()}
    ground = _road_ground(polygons, size)
    overcast = bool(rng.random() < 0.45)
    sky_top, sky_low = _sky_colours(rng, overcast)
    image = np.empty((height, width, 3), dtype=np.float32)
    image[:] = (14 + 5 * noise["fine"])[..., None]
    horizon = ground.cy if ground is not None else 0.45 * height
    return _Look(image, noise, ground, horizon, sky_top, sky_low, overcast)


_UNLIT = {"flat", "sky", "void"}  # categories that get no per-object lighting change
#: Labels whose texture is laid out in image or ground coordinates, not relative to the object's box.
_REGIONAL = {"sky", "road", "sidewalk", "parking", "rail track", "ground", "terrain", "building", "wall", "fence",
             "ego vehicle", "unlabeled", "rectification border", "out of roi"}


def _texture(look: _Look, obj: Mapping[str, Any], box: _Box, rng: np.random.Generator) -> np.ndarray:
    """The ``(h, w, 3) float32`` appearance of one object over its box (a per-object light level included)."""
    label = labels.label_from_name(obj["label"])
    texture = _TEXTURES.get(label.name) or _BY_CATEGORY.get(label.category, _tex_thing)
    look.polygon = np.asarray(obj["polygon"], dtype=np.float32)
    patch = texture(look, label.name, box, _shape(obj["polygon"], box), rng)
    if label.category not in _UNLIT:
        patch = patch * np.float32(rng.uniform(0.72, 1.12))
    return patch


def _shade_ground(look: _Look, owner: np.ndarray, polygons: Mapping[str, Any], rng: np.random.Generator) -> None:
    """Sunny days: building shadows along one side of the street and dappled tree shade on the ground."""
    if look.overcast or look.ground is None or rng.random() < 0.25:
        return
    flat = np.zeros(len(polygons["objects"]) + 1, dtype=bool)
    for index, obj in enumerate(polygons["objects"]):
        label = labels.label_from_name(obj["label"])
        flat[index + 1] = label.category == "flat" or label.name == "terrain"
    rows, cols = np.nonzero(flat[owner])
    depth, lateral, valid = look.ground.world(rows.astype(np.float32), cols.astype(np.float32))
    knots, edges = np.cumsum(rng.uniform(5, 30, 24)), rng.uniform(-4, 9, 25)
    side = rng.choice([-1.0, 1.0])
    shadow = (lateral * side > edges[np.searchsorted(knots, depth)]) & valid
    leafy = look.noise["coarse"][rows, cols] + 0.3 * look.noise["mid"][rows, cols]
    dapple = leafy > rng.uniform(1.0, 1.8) + 9 * (rng.random() < 0.4)  # no trees' shade in 40% of images
    factor = np.where(shadow, rng.uniform(0.5, 0.72), 1.0) * np.where(dapple, rng.uniform(0.65, 0.85), 1.0)
    look.image[rows, cols] *= factor.astype(np.float32)[:, None]


def _camera_finish(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exposure, contrast, white balance, vignetting, a slight lens blur and sensor noise -> ``uint8``."""
    height, width = image.shape[:2]
    image = (image - 110) * np.float32(rng.uniform(0.8, 1.15)) + 110
    image *= (rng.uniform(0.78, 1.18) * rng.uniform(0.94, 1.06, 3)).astype(np.float32)
    ys = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    xs = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    image *= (1 - np.float32(rng.uniform(0.05, 0.3)) * (xs ** 2 + ys ** 2) / 2)[..., None]
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.35, 0.8))
    image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(rng.uniform(1.5, 4.5))
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def _visible_box(box: _Box, visible: np.ndarray) -> tuple[_Box, np.ndarray]:
    """Shrink ``box`` to the rows and columns where ``visible (h, w) bool`` holds any pixel."""
    rows, cols = np.flatnonzero(visible.any(axis=1)), np.flatnonzero(visible.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    sub = (slice(box[0].start + r0, box[0].start + r1), slice(box[1].start + c0, box[1].start + c1))
    return sub, visible[r0:r1, c0:c1]


def render_image(polygons: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    """A photo-like ``(H, W, 3) uint8`` RGB image of a polygons annotation.

    Each pixel shows the object that :func:`owner_map` gives it (the official rasterizer's last polygon there),
    textured over that object's bounding box: colours that overlap between classes, per-object variation,
    lighting, multi-scale noise, windows, road markings, clouds, lamps; then camera effects and sensor noise.
    All randomness comes from ``rng``.
    """
    polygons = masks.parse_polygons(polygons)
    owner = _owners(polygons)
    look = _look(polygons, rng)
    size = owner.shape
    for index, obj in enumerate(polygons["objects"]):
        box = None if obj.get("deleted") else _box(obj["polygon"], size)
        if box is None:
            continue
        visible = owner[box] == index + 1
        if not visible.any():
            continue
        if obj["label"] in _REGIONAL:  # textures that do not depend on the whole box: paint the visible part only
            box, visible = _visible_box(box, visible)
        look.image[box][visible] = _texture(look, obj, box, rng)[visible]
    _shade_ground(look, owner, polygons, rng)
    return _camera_finish(look.image, rng)
