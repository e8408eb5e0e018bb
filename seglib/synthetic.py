"""Procedurally generated street scenes, written exactly in the Cityscapes file layout.

No Cityscapes file may be downloaded or shipped with this project, so the book's default dataset is made here:
license-clean street scenes seen from a car's windscreen camera, generated on first use, with every file where
the real dataset has it (``leftImg8bit/<split>/<city>/..._leftImg8bit.png`` and the four ``gtFine`` files).
Every loader in the book therefore works unchanged on the real Cityscapes.

A frame is made in two steps, both driven by one explicit ``numpy.random.Generator``:

1. :func:`make_scene` lays out a street in metres (road, sidewalks, buildings, trees, poles, vehicles, people),
   projects it through a pinhole camera like Cityscapes' own (focal length 2262 px at 2048 px width, the camera
   1.2 m above the road) and writes the annotators' polygons, far objects first so nearer ones cover them;
2. :func:`render_image` paints a photo-like RGB image from those polygons. Each pixel belongs to the object that
   the official rasterizer draws last there, so the image agrees with the label masks pixel for pixel.

The masks are then drawn from the polygons by :mod:`seglib.masks`, exactly as the official ``json2labelImg`` and
``json2instanceImg`` do. :func:`ensure_dataset` makes a whole dataset, idempotently.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw

from seglib import labels, masks
from seglib.cityscapes import FRAME_SIZE, GT_KINDS, SPLITS, Frame

__all__ = [
    "GENERATOR_VERSION", "DESIGN_SIZE", "CITIES", "FRAME_NUMBER", "MARKER_NAME",
    "make_scene", "owner_map", "render_image", "generate_frame", "frame_for", "write_frame", "ensure_dataset",
]

#: Bumped whenever the same seed would give different frames; a dataset made by another version is not reused.
GENERATOR_VERSION: int = 1
#: (H, W) the scenes are designed at (the real Cityscapes frame size); other sizes scale the camera.
DESIGN_SIZE: tuple[int, int] = FRAME_SIZE
#: Fictional city names per split (lowercase letters only, as the Cityscapes file names need).
CITIES: dict[str, tuple[str, ...]] = {
    "train": ("velmora", "quenstadt", "lorivale"), "val": ("marrowick",), "test": ("tessaburg",),
}
#: The frame number in every file name: Cityscapes annotates the 20th frame of each 30-frame snippet.
FRAME_NUMBER: int = 19
#: The file that marks a folder as made by this module (and records how).
MARKER_NAME: str = "seglib_synthetic.json"

PathLike = str | os.PathLike
_Box = tuple[slice, slice]  # (rows, columns) of an object's bounding box

# ---------------------------------------------------------------------------------------------------------
# Camera and street layout (world coordinates in metres: x to the right, y up from the road, z ahead)
# ---------------------------------------------------------------------------------------------------------

_FOCAL = 2262.0   # Cityscapes' focal length in pixels at 2048 px width
_NEAR = 0.3       # nearer points are pushed back to this depth (they project far outside the image anyway)
_FAR = 2000.0     # depth where ground surfaces end, a fraction of a pixel below the horizon
_ATTEMPTS = 8     # scenes tried until one shows all seven evaluated categories
# Drawing layers, drawn in this order; within a layer far before near.
_SKY, _GROUND, _SKYLINE, _BUILDINGS, _FACADE, _STREET, _EGO = range(7)


@dataclass(frozen=True)
class _Camera:
    fx: float
    fy: float
    cx: float
    cy: float
    height: float

    def project(self, x: Any, y: Any, z: Any) -> np.ndarray:
        """World points (broadcastable arrays, metres) -> ``(N, 2)`` float pixel coordinates (x, y)."""
        x, y, z = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, y, z)))
        z = np.maximum(z, _NEAR)
        points = np.stack([self.cx + self.fx * x / z, self.cy + self.fy * (self.height - y) / z], axis=-1)
        return points.reshape(-1, 2)

    def frontal(self, shape: np.ndarray, x: float, z: float) -> np.ndarray:
        """An upright flat ``shape`` of (lateral offset, height) points facing the camera at ``(x, z)``."""
        return self.project(x + shape[:, 0], shape[:, 1], z)

    def side(self, profile: np.ndarray, x: float, z: float) -> np.ndarray:
        """A ``profile`` of (distance ahead, height) points in the vertical plane ``X = x``, starting at depth z."""
        return self.project(x, profile[:, 1], z + profile[:, 0])

    def ground(self, x: Any, z: Any) -> np.ndarray:
        return self.project(x, 0.0, z)


@dataclass(frozen=True)
class _Street:
    left: float                 # road edges (x)
    right: float
    lanes: int
    lane: float                 # lane width
    parking: int                # side (-1 left, 1 right) with a parking strip, 0 for none
    curb: dict[int, float]      # side -> inner edge of the sidewalk
    walk: dict[int, float]      # side -> outer edge of the sidewalk
    facade: dict[int, float]    # side -> building line
    end: float                  # depth where side buildings stop (a cross street's buildings if closed)
    closed: bool

    def edge(self, side: int) -> float:
        return self.left if side < 0 else self.right


def _camera(rng: np.random.Generator, size: tuple[int, int]) -> _Camera:
    """The Cityscapes camera scaled to ``size``, with a little random yaw (cx), pitch (cy) and mounting height."""
    sy, sx = size[0] / DESIGN_SIZE[0], size[1] / DESIGN_SIZE[1]
    cx = (DESIGN_SIZE[1] / 2 + rng.uniform(-110, 110)) * sx
    return _Camera(_FOCAL * sx, _FOCAL * sy, cx, rng.uniform(425, 490) * sy, rng.uniform(1.15, 1.3))


def _street(rng: np.random.Generator) -> _Street:
    """A random straight street: 2-4 lanes, the camera in one of them, sidewalks, verges, building lines."""
    lanes, lane = int(rng.choice([2, 2, 3, 4])), rng.uniform(2.9, 3.5)
    left = -(int(rng.integers(lanes)) + 0.5) * lane + rng.uniform(-0.4, 0.4)
    right = left + lanes * lane
    parking = int(rng.choice([-1, 0, 0, 1]))
    curb, walk, facade = {}, {}, {}
    for side, edge in ((-1, left), (1, right)):
        curb[side] = edge + (2.3 * side if parking == side else 0.0)
        walk[side] = curb[side] + side * rng.uniform(1.8, 5.0)
        facade[side] = walk[side] + side * (rng.uniform(1.0, 6.0) if rng.random() < 0.4 else 0.0)
    closed = bool(rng.random() < 0.4)
    end = rng.uniform(55, 140) if closed else rng.uniform(130, 240)
    return _Street(left, right, lanes, lane, parking, curb, walk, facade, end, closed)


# ---------------------------------------------------------------------------------------------------------
# Polygons: clipping, unions, integer coordinates
# ---------------------------------------------------------------------------------------------------------

def _clip(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip a polygon ``(N, 2)`` to the image rectangle ``[0, W-1] x [0, H-1]`` (Sutherland-Hodgman)."""
    poly = np.asarray(points, dtype=float).reshape(-1, 2)
    if len(poly) == 0 or (poly.min() >= 0 and poly[:, 0].max() <= width - 1 and poly[:, 1].max() <= height - 1):
        return poly
    points = poly.tolist()
    for axis, limit, sign in ((0, 0.0, 1), (0, width - 1.0, -1), (1, 0.0, 1), (1, height - 1.0, -1)):
        if not points:
            break
        out, previous = [], points[-1]
        previous_in = (previous[axis] - limit) * sign >= 0
        for point in points:
            point_in = (point[axis] - limit) * sign >= 0
            if point_in != previous_in:
                t = (limit - previous[axis]) / (point[axis] - previous[axis])
                out.append([previous[0] + t * (point[0] - previous[0]), previous[1] + t * (point[1] - previous[1])])
            if point_in:
                out.append(point)
            previous, previous_in = point, point_in
        points = out
    return np.array(points, dtype=float).reshape(-1, 2)


def _trace(parts: list[np.ndarray], size: tuple[int, int]) -> np.ndarray | None:
    """The outline of the union of several polygons (in pixels), traced on a small oversampled canvas."""
    height, width = size
    clipped = [c for c in (_clip(p, width, height) for p in parts) if len(c) >= 3]
    if not clipped:
        return None
    stacked = np.concatenate(clipped)
    origin = np.floor(stacked.min(axis=0)) - 1
    extent = np.ceil(stacked.max(axis=0)) - origin + 2
    scale = int(np.clip(600 // max(extent), 1, 4))
    canvas = np.zeros((int(extent[1]) * scale, int(extent[0]) * scale), dtype=np.uint8)
    fixed = [np.rint((c - origin) * scale * 16).astype(np.int32) for c in clipped]
    cv2.fillPoly(canvas, fixed, 1, lineType=cv2.LINE_8, shift=4)
    contours, _ = cv2.findContours(canvas, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    contour = max(contours, key=lambda c: (cv2.contourArea(c), len(c)))
    return cv2.approxPolyDP(contour, 0.35 * scale, True)[:, 0, :] / scale + origin


def _polygon(parts: list[np.ndarray], size: tuple[int, int]) -> list[list[int]] | None:
    """One object's parts -> its polygon as ``[[x, y], ...]`` ints inside the image; None if it vanishes."""
    points = _clip(parts[0], size[1], size[0]) if len(parts) == 1 else _trace(parts, size)
    if points is None or len(points) < 3:
        return None
    points = np.rint(points).astype(np.int64)
    points = points[np.any(points != np.roll(points, 1, axis=0), axis=1)]
    polygon = points.tolist()
    return polygon if len({tuple(point) for point in polygon}) >= 3 else None


# ---------------------------------------------------------------------------------------------------------
# Flat shapes in metres (lateral or along-the-road offset, height)
# ---------------------------------------------------------------------------------------------------------

def _rect(u0: float, u1: float, v0: float, v1: float) -> np.ndarray:
    """The rectangle ``[u0, u1] x [v0, v1]`` as ``(4, 2)`` points."""
    return np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]], dtype=float)


def _ellipse(u: float, v: float, ru: float, rv: float, n: int = 16) -> np.ndarray:
    """An ellipse centred on ``(u, v)`` with radii ``ru, rv`` as an ``(n, 2)`` polygon (n = 4: a diamond)."""
    angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([u + ru * np.cos(angle), v + rv * np.sin(angle)], axis=1)


def _segment(p: tuple[float, float], q: tuple[float, float], width: float) -> np.ndarray:
    """A thick line from ``p`` to ``q`` as a quadrilateral (limbs, frames, arms)."""
    p_, q_ = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    direction = q_ - p_
    normal = np.array([-direction[1], direction[0]]) / max(np.hypot(*direction), 1e-9) * width / 2
    return np.array([p_ + normal, q_ + normal, q_ - normal, p_ - normal])


def _blob(rng: np.random.Generator, ru: float, rv: float, n: int = 28) -> np.ndarray:
    """An irregular closed blob (a tree canopy, a bush): an ellipse with random low harmonics and jitter."""
    angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
    radius = 1 + rng.uniform(-0.07, 0.07, n)
    for k in range(2, 6):
        radius += rng.uniform(0, 0.12) * np.cos(k * angle + rng.uniform(0, 2 * np.pi))
    return np.stack([ru * radius * np.cos(angle), rv * radius * np.sin(angle)], axis=1)


def _bumpy_top(rng: np.random.Generator, length: float, height: float, jitter: float) -> np.ndarray:
    """A band from 0 to ``length`` whose top wanders around ``height`` (hedges, distant tree lines)."""
    count = max(3, int(length / 0.8))
    tops = np.stack([np.linspace(length, 0, count), height + rng.uniform(-jitter, jitter, count)], axis=1)
    return np.concatenate([[[0.0, 0.0], [length, 0.0]], tops])


# ---------------------------------------------------------------------------------------------------------
# The scene being built
# ---------------------------------------------------------------------------------------------------------

class _Scene:
    """Objects of one scene, each with a layer and depth that fix the drawing order, plus ground footprints."""

    def __init__(self, rng: np.random.Generator, size: tuple[int, int]) -> None:
        self.rng, self.size = rng, size
        self.cam = _camera(rng, size)
        self.street = _street(rng)
        self.items: list[tuple[int, float, int, str, list[np.ndarray]]] = []
        self.footprints: list[tuple[float, float, float, float]] = []

    def add(self, layer: int, depth: float, label: str, parts: list[np.ndarray]) -> None:
        """Add an object made of pixel-space ``parts`` (their union is its polygon)."""
        self.items.append((layer, -float(depth), len(self.items), label, parts))

    def add_frontal(self, depth: float, label: str, shapes: list[np.ndarray], x: float) -> None:
        """Add a street object made of upright ``shapes`` (metres) standing at ``(x, depth)``."""
        self.add(_STREET, depth, label, [self.cam.frontal(shape, x, depth) for shape in shapes])

    def claim(self, x0: float, x1: float, z0: float, z1: float) -> bool:
        """Reserve a ground footprint; False (and nothing reserved) if it overlaps one already taken."""
        for a0, a1, b0, b1 in self.footprints:
            if x0 < a1 and a0 < x1 and z0 < b1 and b0 < z1:
                return False
        self.footprints.append((x0, x1, z0, z1))
        return True

    def annotation(self) -> dict[str, Any]:
        """The Cityscapes polygons dict: objects in drawing order, vanished (sub-pixel) ones left out."""
        objects = []
        for *_, label, parts in sorted(self.items, key=lambda item: item[:3]):
            polygon = _polygon(parts, self.size)
            if polygon is not None:
                objects.append({"label": label, "polygon": polygon})
        return {"imgHeight": self.size[0], "imgWidth": self.size[1], "objects": objects}


# ---------------------------------------------------------------------------------------------------------
# Background: sky, ground surfaces, skyline, buildings
# ---------------------------------------------------------------------------------------------------------

def _add_sky(scene: _Scene) -> None:
    height, width = scene.size
    bottom = scene.cam.cy + 2
    scene.add(_SKY, 0, "sky", [np.array([[0, 0], [width - 1, 0], [width - 1, bottom], [0, bottom]], dtype=float)])


def _ground_strip(scene: _Scene, label: str, x0: float, x1: float, z0: float = _NEAR, z1: float = _FAR) -> None:
    """A flat strip of ground between lateral ``x0, x1`` and depths ``z0, z1`` (metres)."""
    xs, zs = [x0, x1, x1, x0], [z0, z0, z1, z1]
    scene.add(_GROUND, 0, label, [scene.cam.ground(xs, zs)])


def _add_ground(scene: _Scene) -> None:
    """Road, parking strip, sidewalks, verges and the ground beyond the building lines, all to the horizon."""
    street, rng = scene.street, scene.rng
    for side in (-1, 1):
        outer = str(rng.choice(["terrain", "terrain", "terrain", "sidewalk", "ground"]))
        _ground_strip(scene, outer, street.facade[side], street.facade[side] + side * 150)
        if street.facade[side] != street.walk[side]:
            _ground_strip(scene, "terrain", street.walk[side], street.facade[side])
        _ground_strip(scene, "sidewalk", street.curb[side], street.walk[side])
        if street.parking == side:
            _ground_strip(scene, "parking", street.edge(side), street.curb[side])
        if rng.random() < 0.12:  # a patch of bare ground on the sidewalk
            z0 = rng.uniform(6, 40)
            patch = (street.walk[side] - side * 1.5, street.walk[side])
            _ground_strip(scene, "ground", *patch, z0, z0 + rng.uniform(2, 8))
    _ground_strip(scene, "road", street.left, street.right)


def _add_skyline(scene: _Scene) -> None:
    """Distant buildings and tree lines where the street runs to the horizon (a gap is left over the road)."""
    street, rng, cam = scene.street, scene.rng, scene.cam
    gap = (street.left - 4, street.right + 4) if rng.random() < 0.6 else (np.inf, np.inf)
    x = -220.0
    while x < 220:
        width, z = rng.uniform(8, 35), street.end + rng.uniform(10, 150)
        if x + width > gap[0] and x < gap[1]:
            x = gap[1]
            continue
        kind = rng.random()
        if kind < 0.55:
            scene.add(_SKYLINE, z, "building", [cam.frontal(_rect(0, width, 0, rng.uniform(8, 35)), x, z)])
        elif kind < 0.9:
            band = _bumpy_top(rng, width, rng.uniform(6, 14), 2.0)
            scene.add(_SKYLINE, z, "vegetation", [cam.frontal(band, x, z)])
        x += width


def _add_building(scene: _Scene, side: int, z0: float, z1: float) -> None:
    """A building: its facade along the street plus, if in view, the end wall facing the camera (+ a gable)."""
    rng = scene.rng
    x = scene.street.facade[side] + side * rng.uniform(0, 1.2)
    height, depth = rng.uniform(6, 26), rng.uniform(8, 20)
    xs, ys = [x, x + side * depth, x + side * depth], [0.0, 0.0, height]
    if rng.random() < 0.3:  # a gable over the end wall
        xs, ys = xs + [x + side * depth / 2], ys + [height + rng.uniform(2, 5)]
    xs, ys = xs + [x, x, x], ys + [height, height, 0.0]
    zs = [z0] * (len(xs) - 2) + [z1, z1]
    scene.add(_BUILDINGS, max(z0, 0.0), "building", [scene.cam.project(xs, ys, zs)])


def _add_gap(scene: _Scene, side: int, z0: float, z1: float) -> None:
    """What fills a gap between buildings: trees behind, and a wall, fence or hedge on the building line."""
    rng, cam, x = scene.rng, scene.cam, scene.street.facade[side]
    if rng.random() < 0.5:
        z = (z0 + z1) / 2
        scene.add(_BUILDINGS, z, "vegetation", [cam.frontal(s, x + side * rng.uniform(2, 6), z) for s in _tree(rng)])
    kind = str(rng.choice(["wall", "fence", "vegetation", "none"], p=[0.35, 0.25, 0.25, 0.15]))
    if kind == "none":
        return
    height = {"wall": rng.uniform(1.2, 3.0), "fence": rng.uniform(1.0, 2.2), "vegetation": rng.uniform(0.8, 2.0)}[kind]
    profile = _bumpy_top(rng, z1 - z0, height, 0.15) if kind == "vegetation" else _rect(0, z1 - z0, 0, height)
    scene.add(_FACADE, z0, kind, [cam.side(profile, x, z0)])


def _add_side_buildings(scene: _Scene, side: int) -> None:
    """Buildings of varying length and height along one side, with occasional gaps."""
    street, rng = scene.street, scene.rng
    limit = street.end - (rng.uniform(10, 25) if street.closed else 0.0)
    z = rng.uniform(-15, 8)
    while z < limit:
        if z > 3 and rng.random() < 0.3:
            length = rng.uniform(3, 15)
            _add_gap(scene, side, z, min(z + length, limit))
        else:
            length = rng.uniform(8, 35)
            _add_building(scene, side, z, min(z + length, limit))
        z += length


def _add_cross_buildings(scene: _Scene) -> None:
    """The row of buildings across the end of a closed street (a T junction)."""
    rng, cam, z = scene.rng, scene.cam, scene.street.end
    tallest = min(28.0, cam.height + 0.8 * cam.cy * z / cam.fy)  # leave some sky above them
    x = -250.0
    while x < 250:
        width = rng.uniform(10, 40)
        front = _rect(0, width, 0, rng.uniform(8, tallest))
        scene.add(_BUILDINGS, z + rng.uniform(0, 4), "building", [cam.frontal(front, x, z)])
        x += width


# ---------------------------------------------------------------------------------------------------------
# Street furniture and vegetation
# ---------------------------------------------------------------------------------------------------------

def _tree(rng: np.random.Generator) -> list[np.ndarray]:
    """A tree as upright shapes: a trunk and 2-4 overlapping irregular canopy blobs."""
    height = rng.uniform(5, 14)
    trunk_height, trunk = height * rng.uniform(0.3, 0.5), rng.uniform(0.2, 0.45)
    radius = (height - trunk_height) / 2 * rng.uniform(1.0, 1.4)
    shapes = [_rect(-trunk / 2, trunk / 2, 0, trunk_height + radius * 0.5)]
    for _ in range(int(rng.integers(2, 5))):
        centre = [rng.uniform(-0.4, 0.4) * radius, trunk_height + radius * rng.uniform(0.7, 1.1)]
        shapes.append(_blob(rng, radius * rng.uniform(0.6, 0.9), radius * rng.uniform(0.55, 0.85)) + centre)
    return shapes


def _add_trees(scene: _Scene, side: int, near: float | None = None) -> None:
    """A row of street trees along one side (or, with ``near``, one tree at that depth)."""
    street, rng = scene.street, scene.rng
    verge = abs(street.facade[side] - street.walk[side])
    if verge > 1.5:
        x = (street.walk[side] + street.facade[side]) / 2
    else:
        x = street.curb[side] + side * rng.uniform(0.6, 1.0)
    z, stop = (near, near + 1) if near is not None else (rng.uniform(2, 12), min(street.end, 140.0))
    while z < stop:
        if scene.claim(x - 0.4, x + 0.4, z - 0.4, z + 0.4):
            scene.add_frontal(z, "vegetation", _tree(rng), x)
        z += rng.uniform(7, 16)


def _sign_shape(rng: np.random.Generator, size: float) -> np.ndarray:
    """A sign plate ``size`` metres across, centred on (0, 0): round, give-way triangle, diamond, octagon or board."""
    kind = int(rng.integers(5))
    if kind == 0:
        return _ellipse(0, 0, size / 2, size / 2, 20)
    if kind == 1:
        return np.array([[-size / 2, size * 0.4], [size / 2, size * 0.4], [0, -size * 0.47]])
    if kind == 2:
        return _ellipse(0, 0, size / 2, size / 2, 4)
    if kind == 3:
        return _ellipse(0, 0, size / 2, size / 2, 8)
    return _rect(-size * 0.45, size * 0.45, -size * rng.uniform(0.25, 0.6), size * 0.3)


def _add_pole(scene: _Scene, side: int, z: float, kind: str) -> bool:
    """A pole at the curb: a street lamp (arm over the road), a sign post, or a traffic-light post."""
    rng, street = scene.rng, scene.street
    x = street.curb[side] + side * rng.uniform(0.3, 0.7)
    if not scene.claim(x - 0.3, x + 0.3, z - 0.3, z + 0.3):
        return False
    height = {"lamp": rng.uniform(6, 9), "sign": rng.uniform(2.6, 3.6), "light": rng.uniform(3.2, 4.5)}[kind]
    width = rng.uniform(0.1, 0.22)
    shapes = [_rect(-width / 2, width / 2, 0, height)]
    if kind == "lamp":
        reach = -side * rng.uniform(1.0, 3.5)
        shapes += [_segment((0, height - 0.4), (reach, height), width * 0.6),
                   _ellipse(reach, height - 0.05, 0.35, 0.12)]
    scene.add_frontal(z, "pole", shapes, x)
    if kind == "sign" or (kind == "lamp" and rng.random() < 0.3):
        for k in range(1 + int(rng.random() < 0.35)):
            size = rng.uniform(0.55, 0.85)
            scene.add_frontal(z, "traffic sign", [_sign_shape(rng, size) + [0, 2.3 + k * 0.9]], x)
    if kind == "light":
        scene.add_frontal(z, "traffic light", [_rect(-0.17, 0.17, height - 1.0, height)], x)
    return True


def _add_poles(scene: _Scene) -> None:
    """Street lamps and sign posts along both curbs, traffic lights where the street ends."""
    street, rng = scene.street, scene.rng
    for side in (-1, 1):
        z = rng.uniform(4, 25)
        while z < min(street.end, 150.0):
            _add_pole(scene, side, z, str(rng.choice(["lamp", "lamp", "sign"])))
            z += rng.uniform(15, 40)
        if street.closed:
            _add_pole(scene, side, street.end - rng.uniform(4, 10), "light")
    if street.closed and rng.random() < 0.6:
        _add_mast(scene, street.end - rng.uniform(5, 12))


def _add_mast(scene: _Scene, z: float) -> None:
    """A traffic-light mast: a pole on the right curb with an arm over the road and 1-2 hanging lights."""
    rng, street = scene.rng, scene.street
    x = street.curb[1] + 0.5
    if not scene.claim(x - 0.3, x + 0.3, z - 0.3, z + 0.3):
        return
    height, reach = rng.uniform(5.5, 7), -rng.uniform(3, 7)
    arm = _segment((0, height - 0.2), (reach, height - 0.2), 0.15)
    scene.add_frontal(z, "pole", [_rect(-0.13, 0.13, 0, height), arm], x)
    for k in range(int(rng.integers(1, 3))):
        u = reach * (0.5 + 0.45 * k)
        scene.add_frontal(z, "traffic light", [_rect(u - 0.18, u + 0.18, height - 1.3, height - 0.25)], x)


def _add_clutter(scene: _Scene) -> None:
    """Occasional void objects on the sidewalks: 'static' (bollards, cabinets, benches) and 'dynamic' (bins)."""
    rng, street = scene.rng, scene.street
    for _ in range(int(rng.poisson(1.2))):
        side = int(rng.choice([-1, 1]))
        x, z = _on_sidewalk(rng, street, side), rng.uniform(5, 60)
        label = "dynamic" if rng.random() < 0.3 else "static"
        if label == "dynamic":  # bins, prams
            w, h = rng.uniform(0.5, 0.8), rng.uniform(0.9, 1.2)
        else:  # bollards, cabinets, benches
            w, h = rng.uniform(0.15, 1.8), rng.uniform(0.5, 1.6)
        if scene.claim(x - w / 2, x + w / 2, z - 0.3, z + 0.3):
            scene.add_frontal(z, label, [_rect(-w / 2, w / 2, 0, h)], x)


def _add_polegroup(scene: _Scene) -> None:
    """A far cluster of thin poles annotated as one 'polegroup'."""
    rng, street = scene.rng, scene.street
    side, z = int(rng.choice([-1, 1])), rng.uniform(40, 100)
    x = street.curb[side] + side * 0.5
    shapes = []
    for k in range(int(rng.integers(3, 6))):
        u = k * rng.uniform(0.25, 0.6)
        shapes += [_rect(u - 0.07, u + 0.07, 0, rng.uniform(2.5, 5)), _segment((u, 1.5), (u + 0.5, 1.6), 0.06)]
    if scene.claim(x - 0.2, x + 3.0, z - 0.3, z + 0.3):
        scene.add(_STREET, z, "polegroup", [scene.cam.frontal(s, x, z) for s in shapes])


# ---------------------------------------------------------------------------------------------------------
# Vehicles and people
# ---------------------------------------------------------------------------------------------------------

def _vehicle_dims(rng: np.random.Generator, kind: str) -> tuple[float, float, float, float]:
    """(width, length, height, belt line) in metres for a car, truck or bus (vans count as cars)."""
    if kind == "truck":
        return rng.uniform(2.3, 2.5), rng.uniform(6, 10), rng.uniform(2.9, 3.8), 1.0
    if kind == "bus":
        return 2.55, rng.uniform(10, 13), rng.uniform(3.0, 3.3), 1.0
    if rng.random() < 0.15:  # a van or SUV
        return rng.uniform(1.85, 2.0), rng.uniform(4.5, 5.3), rng.uniform(1.8, 2.1), rng.uniform(1.05, 1.2)
    return rng.uniform(1.7, 1.92), rng.uniform(3.9, 4.9), rng.uniform(1.38, 1.62), rng.uniform(0.85, 1.0)


def _vehicle_rear(kind: str, w: float, h: float, belt: float) -> list[np.ndarray]:
    """The back (or front) of a vehicle as upright shapes centred on its axis: body, cabin and tyres."""
    half = w / 2
    if kind == "car":
        body = np.array([(-0.97, 0.25), (0.97, 0.25), (1, 0.4), (1, belt - 0.05), (0.92, belt), (0.8, h - 0.07),
                         (0.7, h), (-0.7, h), (-0.8, h - 0.07), (-0.92, belt), (-1, belt - 0.05), (-1, 0.4)])
        body = body * [half, 1.0]
    else:
        body = np.array([(-half, 0.35), (half, 0.35), (half, h - 0.15), (half - 0.1, h), (-half + 0.1, h),
                         (-half, h - 0.15)])
    tyre = 0.3 if kind == "car" else 0.5
    tyres = [_rect(-half + 0.04, -half + 0.3, 0, tyre + 0.05), _rect(half - 0.3, half - 0.04, 0, tyre + 0.05)]
    return [body, *tyres]


def _vehicle_side(kind: str, length: float, h: float, belt: float) -> list[np.ndarray]:
    """The side of a vehicle as a profile of (distance ahead, height) points, plus its wheels."""
    if kind == "car":  # the body side (up to the belt line); the cabin side is set in, see _add_vehicle
        frac = [(0, 0.28), (0, belt), (0.97, belt - 0.08), (1.0, belt - 0.2), (1.0, 0.28)]
        body, radius, wheels = np.array(frac) * [length, 1.0], 0.31, (0.17, 0.82)
    elif kind == "truck":
        body = np.array([(0, 0.45), (0, h), (0.72 * length, h), (0.72 * length, 0.45)])
        cab = np.array([(0.74, 0.45), (0.74, 2.9), (1 - 0.5 / length, 2.9), (1, 1.6), (1, 0.45)]) * [length, 1.0]
        return [body, cab] + [_ellipse(f * length, 0.5, 0.5, 0.5) for f in (0.12, 0.3, 0.88)]
    else:
        body, radius, wheels = _rect(0, length, 0.3, h), 0.5, (0.18, 0.78)
    return [body] + [_ellipse(f * length, radius, radius, radius) for f in wheels]


def _add_vehicle(scene: _Scene, x: float, z: float, kind: str = "car") -> bool:
    """A car, truck or bus whose back is at depth ``z``; its near side shows when it is off the camera axis."""
    rng, cam = scene.rng, scene.cam
    w, length, h, belt = _vehicle_dims(rng, kind)
    if not scene.claim(x - w / 2, x + w / 2, z, z + length):
        return False
    parts = [cam.frontal(s, x, z) for s in _vehicle_rear(kind, w, h, belt)]
    if abs(x) > w / 2 + 0.3:
        parts += [cam.side(p, x - np.sign(x) * w / 2, z) for p in _vehicle_side(kind, length, h, belt)]
        if kind == "car":
            cabin = np.array([(0, belt - 0.05), (0, h - 0.1), (0.04, h), (0.62, h), (0.78, belt - 0.05)])
            cabin = cabin * [length, 1.0]
            parts.append(cam.side(cabin, x - np.sign(x) * w * 0.36, z))
    scene.add(_STREET, z, kind, parts)
    if kind == "car" and rng.random() < 0.75 and cam.fx * 0.52 / z >= 4:
        scene.add_frontal(z, "license plate", [_rect(-0.26, 0.26, 0.42, 0.53)], x)
    return True


def _person(rng: np.random.Generator, height: float, profile: bool) -> list[np.ndarray]:
    """A pedestrian as upright shapes (head, torso, arms, legs), seen from the front/back or the side."""
    s = height / 1.75
    shoulder, hip = (0.12, 0.12) if profile else (rng.uniform(0.18, 0.23), rng.uniform(0.14, 0.18))
    stride = rng.uniform(0.05, 0.38) if profile else rng.uniform(0.0, 0.08)
    shapes = [_ellipse(0, 1.64 * s, 0.095 * s, 0.115 * s), _rect(-0.05 * s, 0.05 * s, 1.45 * s, 1.58 * s)]
    coat = 0.5 if rng.random() < 0.25 else 0.88
    flare = 0.04 * (coat < 0.8)
    shapes.append(np.array([(-shoulder, 1.5), (shoulder, 1.5), (hip + flare, coat), (-hip - flare, coat)]) * s)
    for sign in (-1, 1):
        foot = (sign * (stride + (0 if profile else 0.1)) * s, 0.03 * s)
        shapes.append(_segment((sign * (0 if profile else 0.08) * s, 0.92 * s), foot, 0.14 * s))
        swing = sign * stride * 0.6 if profile else sign * 0.05
        hand = ((sign * shoulder + swing) * s, 0.86 * s)
        shapes.append(_segment((sign * shoulder * 0.9 * s, 1.46 * s), hand, 0.085 * s))
    if rng.random() < 0.2:  # a bag
        shapes.append(_rect(hip * s, (hip + 0.2) * s, 0.8 * s, 1.1 * s))
    return shapes


def _add_person(scene: _Scene, x: float, z: float, profile: bool | None = None) -> bool:
    rng = scene.rng
    if not scene.claim(x - 0.3, x + 0.3, z - 0.3, z + 0.3):
        return False
    profile = bool(rng.random() < 0.4) if profile is None else profile
    scene.add_frontal(z, "person", _person(rng, rng.uniform(1.5, 1.95), profile), x)
    return True


def _bicycle(profile: bool) -> list[np.ndarray]:
    """A bicycle as upright shapes: seen from the side (wheels, frame) or from behind (a thin wheel, handlebar)."""
    if not profile:
        return [_rect(-0.035, 0.035, 0, 0.68), _segment((0, 0.34), (0, 1.0), 0.07),
                _segment((-0.3, 1.0), (0.3, 1.0), 0.05)]
    wheels = [_ellipse(u, 0.34, 0.34, 0.34, 20) for u in (-0.52, 0.52)]
    tubes = (((-0.52, 0.34), (0, 0.32)), ((0, 0.32), (-0.12, 0.9)), ((-0.52, 0.34), (-0.12, 0.9)),
             ((0, 0.32), (0.42, 0.95)), ((-0.12, 0.9), (0.4, 0.92)), ((0.52, 0.34), (0.4, 1.08)))
    frame = [_segment(p, q, 0.05) for p, q in tubes]
    return wheels + frame + [_rect(-0.22, -0.04, 0.9, 0.96)]


def _rider(rng: np.random.Generator, profile: bool) -> list[np.ndarray]:
    """A cyclist (or motorcyclist) sitting on a two-wheeler, in the same frame as :func:`_bicycle`."""
    if profile:
        pedal = (0.02, 0.22 + rng.uniform(0, 0.2))
        return [_ellipse(0.17, 1.72, 0.1, 0.12), _segment((-0.15, 0.98), (0.1, 1.55), 0.34),
                _segment((0.1, 1.5), (0.4, 1.05), 0.09), _segment((-0.12, 0.98), (0.12, 0.68), 0.16),
                _segment((0.12, 0.68), pedal, 0.13)]
    shapes = [_ellipse(0, 1.68, 0.1, 0.12), np.array([(-0.2, 1.55), (0.2, 1.55), (0.16, 0.95), (-0.16, 0.95)])]
    for sign in (-1, 1):
        shapes += [_segment((sign * 0.09, 1.0), (sign * 0.14, 0.3 + rng.uniform(0, 0.25)), 0.14),
                   _segment((sign * 0.18, 1.5), (sign * 0.3, 1.02), 0.085)]
    return shapes


def _add_cyclist(scene: _Scene, x: float, z: float, profile: bool, motor: bool = False, rider: bool = True) -> bool:
    """A bicycle (or motorcycle) with or without its rider; the rider is drawn over it."""
    rng = scene.rng
    half_w, half_l = (0.9, 0.3) if profile else (0.35, 0.9)
    if not scene.claim(x - half_w, x + half_w, z - half_l, z + half_l):
        return False
    shapes = _bicycle(profile)
    if motor:
        shapes += [_rect(-0.32, 0.32, 0.35, 0.95)] if not profile else [_ellipse(0, 0.6, 0.55, 0.3)]
    flip = np.array([rng.choice([-1.0, 1.0]), 1.0])
    scene.add_frontal(z, "motorcycle" if motor else "bicycle", [s * flip for s in shapes], x)
    if rider:
        scene.add_frontal(z, "rider", [s * flip for s in _rider(rng, profile)], x)
    return True


def _add_traffic(scene: _Scene) -> None:
    """Moving vehicles in the lanes, cyclists near the right curb and occasionally a far 'cargroup'."""
    street, rng = scene.street, scene.rng
    for lane in range(street.lanes):
        x = street.left + (lane + 0.5) * street.lane + rng.uniform(-0.3, 0.3)
        z = rng.uniform(7, 25)
        while z < min(street.end - 5, 160.0):
            if rng.random() < 0.45:
                kind = str(rng.choice(["car", "truck", "bus", "motorcycle"], p=[0.86, 0.07, 0.04, 0.03]))
                if kind == "motorcycle":
                    _add_cyclist(scene, x, z, profile=False, motor=True)
                else:
                    _add_vehicle(scene, x, z, kind)
            z += rng.uniform(8, 30)
    if rng.random() < 0.35:
        _add_cyclist(scene, street.right - 0.8, rng.uniform(8, 40), profile=False)
    if rng.random() < 0.25:
        _add_cargroup(scene)


def _add_parked(scene: _Scene) -> None:
    """Rows of parked cars along the curbs (in the parking strip where there is one), parked bicycles."""
    street, rng = scene.street, scene.rng
    for side in (-1, 1):
        if rng.random() < 0.45 or street.parking == side:
            x = (street.edge(side) + side * 1.15) if street.parking == side else street.edge(side) - side * 1.0
            z = rng.uniform(2, 10)
            while z < 80:
                if rng.random() < 0.65:
                    _add_vehicle(scene, x, z)
                z += rng.uniform(5, 8)
        if rng.random() < 0.3:
            z = rng.uniform(6, 30)
            for k in range(int(rng.integers(1, 5))):
                _add_cyclist(scene, street.walk[side] - side * 0.9, z + k * 0.7, profile=True, rider=False)


def _add_cargroup(scene: _Scene) -> None:
    """A far cluster of cars annotated as one 'cargroup' (drawn as car, without an instance id)."""
    rng, street, cam = scene.rng, scene.street, scene.cam
    x, z = street.left + street.lane * (0.5 + int(rng.integers(street.lanes))), rng.uniform(70, 140)
    if not scene.claim(x - 2, x + 2, z, z + 25):
        return
    parts = []
    for k in range(int(rng.integers(3, 7))):
        w, _, h, belt = _vehicle_dims(rng, "car")
        where = (x + rng.uniform(-1.5, 1.5), z + k * rng.uniform(2, 5))
        parts += [cam.frontal(s, *where) for s in _vehicle_rear("car", w, h, belt)]
    scene.add(_STREET, z, "cargroup", parts)


def _add_people(scene: _Scene) -> None:
    """Pedestrians on both sidewalks, sometimes a few crossing the road."""
    street, rng = scene.street, scene.rng
    for side in (-1, 1):
        for _ in range(int(rng.poisson(2.5))):
            _add_person(scene, _on_sidewalk(rng, street, side), rng.uniform(5, 90))
    if rng.random() < 0.3:
        z = rng.uniform(10, 40)
        for _ in range(int(rng.integers(1, 4))):
            _add_person(scene, rng.uniform(street.left, street.right), z + rng.uniform(-1, 1), profile=True)


def _on_sidewalk(rng: np.random.Generator, street: _Street, side: int) -> float:
    """A random lateral position on one sidewalk, at least 0.4 m from its edges."""
    inner, outer = sorted((street.curb[side], street.walk[side]))
    return rng.uniform(inner + 0.4, max(outer - 0.4, inner + 0.5))


def _add_essentials(scene: _Scene) -> None:
    """One near person, car, sign post and tree, so every frame shows all evaluated categories."""
    street, rng = scene.street, scene.rng
    for _ in range(20):
        side = int(rng.choice([-1, 1]))
        x = _on_sidewalk(rng, street, side)
        nearest = max(7.0, 2.8 * abs(x))  # nearer, it would stand outside the picture
        if _add_person(scene, x, rng.uniform(nearest, nearest + 15)):
            break
    for _ in range(20):
        lane = int(rng.integers(street.lanes))
        if _add_vehicle(scene, street.left + (lane + 0.5) * street.lane, rng.uniform(8, 30)):
            break
    for _ in range(20):
        if _add_pole(scene, int(rng.choice([-1, 1])), rng.uniform(8, 25), "sign"):
            break
    _add_trees(scene, int(rng.choice([-1, 1])), near=rng.uniform(6, 25))


def _add_ego(scene: _Scene) -> None:
    """The ego vehicle's bonnet at the bottom, a thin 'out of roi' band under it and the 'rectification border'."""
    rng, (height, width) = scene.rng, scene.size
    sy, sx = height / DESIGN_SIZE[0], width / DESIGN_SIZE[1]
    top, drop, centre = rng.uniform(880, 950) * sy, rng.uniform(50, 120) * sy, width / 2 + rng.uniform(-60, 60) * sx
    xs = np.linspace(-0.02 * width, 1.02 * width, 21)
    arc = np.stack([xs, top + drop * ((xs - centre) / (width / 2)) ** 2], axis=1)
    hood = np.concatenate([arc, [[1.02 * width, height + 5], [-0.02 * width, height + 5]]])
    scene.add(_EGO, 0, "ego vehicle", [hood])
    band = height - 1 - rng.uniform(2, 8) * sy
    right, bottom = width - 1, height - 1
    scene.add(_EGO, 0, "out of roi", [np.array([[0, band], [right, band], [right, bottom], [0, bottom]])])
    b, r, t = rng.uniform(2, 7) * sx, right - rng.uniform(2, 7) * sx, rng.uniform(2, 6) * sy
    frame = [[0, 0], [right, 0], [right, bottom], [r, bottom], [r, t], [b, t], [b, bottom], [0, bottom]]
    scene.add(_EGO, 0, "rectification border", [np.array(frame, dtype=float)])


def _build(scene: _Scene) -> None:
    """Lay out a whole street: background first, then street objects (sorted far to near when drawn)."""
    street = scene.street
    _add_sky(scene)
    _add_ground(scene)
    if not street.closed:
        _add_skyline(scene)
    for side in (-1, 1):
        _add_side_buildings(scene, side)
    if street.closed:
        _add_cross_buildings(scene)
    _add_essentials(scene)
    _add_poles(scene)
    _add_parked(scene)
    _add_traffic(scene)
    for side in (-1, 1):
        if scene.rng.random() < 0.6:
            _add_trees(scene, side)
    _add_people(scene)
    _add_clutter(scene)
    if scene.rng.random() < 0.2:
        _add_polegroup(scene)
    _add_ego(scene)


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    """``size`` as an ``(H, W)`` int pair; raises ``ValueError`` outside 32..4096 x 32..8192."""
    height, width = (int(v) for v in size)
    if height < 32 or width < 32 or height > 4096 or width > 8192:
        raise ValueError(f"size must be (H, W) with 32 <= H <= 4096 and 32 <= W <= 8192, got {size!r}")
    return height, width


def _shows_all_categories(annotation: Mapping[str, Any]) -> bool:
    """Whether the category mask of ``annotation`` holds every evaluated category (drawn as the official tools do)."""
    canvas = Image.new("L", (annotation["imgWidth"], annotation["imgHeight"]), labels.IGNORE)
    draw = ImageDraw.Draw(canvas)
    for obj in annotation["objects"]:
        label = labels.label_from_name(obj["label"])
        if label.id >= 0:
            draw.polygon([tuple(point) for point in obj["polygon"]], fill=label.category_id)
    return set(labels.EVALUATED_CATEGORY_IDS) <= set(np.unique(np.asarray(canvas)).tolist())


def make_scene(rng: np.random.Generator, size: tuple[int, int]) -> dict[str, Any]:
    """A random street scene as a Cityscapes polygons annotation.

    Returns ``{"imgHeight": H, "imgWidth": W, "objects": [{"label": name, "polygon": [[x, y], ...]}, ...]}`` with
    int coordinates inside the image, objects in drawing order (later ones on top), for ``size = (H, W)``. The
    layout is designed at 1024 x 2048 and scales to any size. Every scene shows all seven evaluated categories
    (tried up to 8 times; only a tiny ``size`` can defeat that). All randomness comes from ``rng``.
    """
    size = _check_size(size)
    for _ in range(_ATTEMPTS):
        scene = _Scene(rng, size)
        _build(scene)
        annotation = scene.annotation()
        if _shows_all_categories(annotation):
            break
    return annotation


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


@dataclass(frozen=True)
class _Ground:
    """The ground plane as seen in the image, recovered from the road's straight edges."""

    cx: float      # vanishing point of the road
    cy: float
    fx: float
    fy: float
    left: float    # road edges in metres (assuming the camera 1.2 m up)
    right: float

    def world(self, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixel rows/columns (broadcastable) -> ground depth Z, lateral X (metres) and where they are valid
        (below the horizon; elsewhere Z and X are placeholders)."""
        below = np.asarray(ys - self.cy, dtype=np.float32)
        valid = below > 0.5
        depth = np.where(valid, self.fy * 1.2 / np.maximum(below, 0.5), 1.0).astype(np.float32)
        return depth, ((xs - self.cx) * depth / self.fx).astype(np.float32), valid


@dataclass
class _Look:
    """Per-image appearance: the image being painted, shared noise fields, ground plane, sky colours."""

    image: np.ndarray
    noise: dict[str, np.ndarray]
    ground: _Ground | None
    horizon: float
    sky_top: np.ndarray
    sky_low: np.ndarray
    overcast: bool
    polygon: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))  # the object being painted

    def field(self, name: str, box: _Box) -> np.ndarray:
        return self.noise[name][box]


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


# --- colour palettes (RGB); they overlap on purpose: greys and beiges appear in many classes -----------------

_ASPHALT = [(88, 88, 92), (105, 103, 100), (75, 78, 82), (122, 120, 116), (96, 92, 98), (135, 132, 128)]
_PAVING = [(140, 136, 130), (160, 150, 135), (120, 118, 118), (150, 120, 110), (178, 172, 160), (105, 100, 98),
           (128, 128, 122)]
_DIRT = [(120, 105, 85), (140, 130, 110), (100, 95, 85), (150, 140, 120)]
_BUILDING = [(190, 180, 160), (215, 205, 185), (150, 145, 140), (120, 115, 110), (170, 110, 90), (200, 170, 120),
             (180, 185, 190), (100, 95, 92), (228, 222, 210), (160, 140, 120), (140, 150, 155), (95, 100, 110)]
_WALL = [(150, 148, 140), (120, 118, 112), (175, 165, 150), (110, 100, 90), (160, 120, 100), (90, 92, 95)]
_FENCE = [(90, 95, 90), (130, 130, 125), (120, 90, 60), (60, 80, 60), (170, 170, 165), (50, 50, 55)]
_METAL = [(110, 110, 110), (70, 75, 70), (50, 55, 60), (140, 140, 135), (60, 80, 70), (160, 160, 158)]
_LEAVES = [(60, 85, 35), (75, 100, 45), (50, 70, 40), (90, 110, 50), (70, 80, 40), (110, 110, 55), (45, 60, 45)]
_TERRAIN = [(110, 120, 60), (130, 135, 80), (120, 110, 80), (95, 115, 55), (140, 125, 95), (100, 100, 70)]
_PAINT = [(200, 200, 200), (30, 30, 32), (140, 140, 145), (100, 100, 105), (60, 60, 70), (170, 30, 30), (30, 60, 130),
          (222, 222, 216), (80, 90, 100), (120, 20, 20), (50, 80, 60), (180, 170, 150), (15, 15, 18), (170, 172, 175)]
_CLOTHES = [(30, 30, 35), (60, 60, 70), (20, 30, 60), (120, 120, 125), (180, 175, 165), (110, 90, 70), (150, 30, 40),
            (40, 70, 120), (200, 200, 195), (70, 80, 50), (160, 140, 110), (90, 60, 90), (15, 15, 20), (45, 45, 50)]
_SKIN = [(225, 190, 165), (200, 160, 130), (160, 115, 85), (110, 75, 55)]
_SIGNS = {"red": (200, 30, 35), "blue": (25, 70, 170), "yellow": (235, 190, 30), "white": (232, 232, 228),
          "green": (20, 110, 60)}


def _pick(rng: np.random.Generator, palette: list[tuple[int, int, int]], spread: float) -> np.ndarray:
    """One palette colour with random variation: ``(3,) float32``."""
    colour = np.asarray(palette[int(rng.integers(len(palette)))], dtype=np.float32)
    return np.clip(colour + rng.normal(0, spread * 0.4, 3) + rng.normal(0, spread), 0, 255).astype(np.float32)


def _paint(colour: np.ndarray, light: np.ndarray) -> np.ndarray:
    """``colour (3,)`` times ``light (h, w)`` (or broadcastable) -> ``(h, w, 3) float32``."""
    return np.asarray(colour, dtype=np.float32) * np.asarray(light, dtype=np.float32)[..., None]


def _rows(box: _Box) -> np.ndarray:
    return np.arange(box[0].start, box[0].stop, dtype=np.float32)[:, None]


def _cols(box: _Box) -> np.ndarray:
    return np.arange(box[1].start, box[1].stop, dtype=np.float32)[None, :]


def _extents(shape: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last pixel of the shape along ``axis`` (per column for 0, per row for 1), as float32."""
    first = shape.argmax(axis=axis)
    last = shape.shape[axis] - 1 - np.flip(shape, axis=axis).argmax(axis=axis)
    return first.astype(np.float32), last.astype(np.float32)


def _coverage(distance: np.ndarray, half_width: float, pixel: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of a line ``half_width`` wide at ``distance`` (same units as the pixel size)."""
    return np.clip((half_width - distance) / np.maximum(pixel, 1e-6) + 0.5, 0, 1)


def _tex_sky(look: _Look, name: str, box: _Box, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    t = np.clip(_rows(box) / max(look.horizon, 1.0), 0, 1) ** 0.8
    patch = look.sky_top + (look.sky_low - look.sky_top) * t[..., None] + np.zeros(shape.shape + (3,), np.float32)
    cloud = look.field("coarse", box) + 0.6 * look.field("mid", box) + 0.2 * look.field("small", box)
    amount = np.clip((cloud - rng.uniform(0.2, 1.6)) * 0.8, 0, 1)[..., None]
    white = look.sky_low + 20 if not look.overcast else look.sky_low - 25
    return patch * (1 - amount) + np.clip(white, 0, 255) * amount * (1 - 0.12 * amount)


def _tex_flat(look: _Look, name: str, box: _Box, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Asphalt (road, parking), paving (sidewalk) or bare ground, with markings or joints where the ground is known."""
    palette = {"sidewalk": _PAVING, "ground": _DIRT}.get(name, _ASPHALT)
    light = (1 + 0.035 * look.field("mid", box) + 0.07 * look.field("fine", box) + 0.05 * look.field("coarse", box)
             + (0.08 if name == "ground" else 0.03) * look.field("small", box))
    patch = _paint(_pick(rng, palette, 9), light)
    if look.ground is not None and box[0].stop > look.ground.cy + 1:
        depth, lateral, valid = look.ground.world(_rows(box), _cols(box))
        if name == "road":
            _road_markings(look.ground, depth, lateral, valid, patch, rng)
        elif name in ("sidewalk", "parking"):
            _paving_joints(look.ground, depth, lateral, valid, patch, rng, name)
    return patch


def _road_markings(ground: _Ground, depth: np.ndarray, lateral: np.ndarray, valid: np.ndarray, patch: np.ndarray,
                   rng: np.random.Generator) -> None:
    """Dashed lane lines, solid edge lines and sometimes a zebra crossing, painted in place (image detail only)."""
    width = ground.right - ground.left
    lanes = max(1, int(round(width / 3.2)))
    lane, pixel = width / lanes, depth / ground.fx
    t = (lateral - ground.left) / lane
    nearest = np.clip(np.round(t), 1, max(lanes - 1, 1))
    dashes = (np.mod(depth / rng.uniform(8, 13) + rng.uniform(0, 1), 1) < rng.uniform(0.3, 0.5)) & (lanes > 1)
    paint = _coverage(np.abs(t - nearest) * lane, 0.07, pixel) * dashes
    if rng.random() < 0.6:
        edges = np.minimum(np.abs(lateral - ground.left - 0.35), np.abs(lateral - ground.right + 0.35))
        paint = np.maximum(paint, _coverage(edges, 0.07, pixel))
    if rng.random() < 0.25:
        start = rng.uniform(9, 45)
        zebra = (depth > start) & (depth < start + 4) & (np.mod(lateral, 1.0) < 0.5) & (t > 0.1) & (t < lanes - 0.1)
        paint = np.maximum(paint, zebra * np.clip(1.3 - pixel * 4, 0, 1))
    paint = paint * valid * rng.uniform(0.55, 0.95)
    colour = np.array([225, 225, 218] if rng.random() < 0.85 else [230, 190, 60], dtype=np.float32)
    patch += (colour - patch) * paint[..., None]


def _paving_joints(ground: _Ground, depth: np.ndarray, lateral: np.ndarray, valid: np.ndarray, patch: np.ndarray,
                   rng: np.random.Generator, name: str) -> None:
    """Darker joints between paving stones (sidewalk) or white bay lines (parking), fading with distance."""
    pixel = depth / ground.fx
    if name == "parking":
        spacing = rng.uniform(5, 6)
        lines = _coverage(np.abs(np.mod(depth, spacing) - spacing / 2), 0.06, depth * depth / (ground.fy * 1.2))
        patch += (np.float32(215) - patch) * (lines * valid * 0.8)[..., None]
        return
    tile = rng.uniform(0.3, 0.7)
    across, along = (np.abs(np.mod(v / tile + 0.5, 1) - 0.5) for v in (lateral, depth))
    joint = np.minimum(across, along) * tile
    fade = np.clip(1 - pixel / (tile / 4), 0, 1)
    shade = _coverage(joint, 0.012, pixel) * fade * valid * rng.uniform(0.15, 0.35)
    patch *= (1 - shade)[..., None]


def _tex_nature(look: _Look, name: str, box: _Box, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Leafy vegetation (bark where a tree is narrow near its foot, sky through a few holes) or grassy terrain."""
    small, fine, mid = look.field("small", box), look.field("fine", box), look.field("mid", box)
    if name == "terrain":
        grass = 1 + 0.1 * small + 0.1 * fine + 0.1 * mid + 0.06 * look.field("coarse", box)
        return _paint(_pick(rng, _TERRAIN, 12), grass)
    v = (_rows(box) - box[0].start) / max(shape.shape[0], 1)
    light = (1.1 - 0.35 * v) * (1 + 0.3 * small + 0.08 * fine + 0.2 * mid)
    light = np.where(small + 0.3 * fine < -1.7, 0.45, light)
    patch = _paint(_pick(rng, _LEAVES, 10), np.clip(light, 0.2, 2.2))
    tint = np.clip(0.5 * mid + rng.uniform(-0.6, 0.2), 0, 1)[..., None]
    patch = patch * (1 - tint) + _paint(_pick(rng, _LEAVES, 14), np.clip(light, 0.2, 2.2)) * tint
    first, last = _extents(shape, 1)
    widths = (last - first + 1) * shape.any(axis=1)
    below_top = (np.arange(len(widths)) > 0.3 * len(widths)) | (box[0].start == 0)  # canopy tips are narrow too
    trunk = (widths < max(0.2 * widths.max(), 0.1 * len(widths))) & below_top & (shape.shape[0] > shape.shape[1])
    bark = _paint(_pick(rng, [(80, 65, 50), (100, 90, 80), (60, 55, 50)], 8), 1 + 0.15 * fine)
    patch = np.where(trunk[:, None, None], bark, patch)
    holes = (small > 2.4) & (v < 0.6) & (shape.shape[0] > 8)
    return np.where(holes[..., None], look.sky_low, patch)


def _envelope(look: _Look, box: _Box) -> tuple[np.ndarray, np.ndarray]:
    """Top and bottom of the painted object's polygon per column of its box (box rows, float32, continuous:
    taken from the polygon's edges, not from the pixels, so perspective lines stay straight)."""
    points = look.polygon.astype(np.float32)
    start, end = points, np.roll(points, -1, axis=0)
    cols = np.arange(box[1].start, box[1].stop, dtype=np.float32)[:, None]
    x0, x1 = np.minimum(start[:, 0], end[:, 0]), np.maximum(start[:, 0], end[:, 0])
    t = (cols - start[:, 0]) / np.where(end[:, 0] == start[:, 0], 1, end[:, 0] - start[:, 0])
    ys = start[:, 1] + t * (end[:, 1] - start[:, 1])
    spans = (cols >= x0) & (cols <= x1) & (x1 > x0)
    top = np.where(spans, ys, np.inf).min(axis=1)
    bottom = np.where(spans, ys, -np.inf).max(axis=1)
    edge = points[:, 1].min(), points[:, 1].max()
    top, bottom = np.where(np.isfinite(top), top, edge[0]), np.where(np.isfinite(bottom), bottom, edge[1])
    return (top - box[0].start).astype(np.float32), (bottom - box[0].start).astype(np.float32)


def _facade_coords(look: _Look, box: _Box, storey: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a facade: floors counted up from its foot ``(h, w)``, position along it ``(1, w)`` (in storeys),
    and its height in floors ``(1, w)``."""
    top, bottom = _envelope(look, box)
    if look.ground is not None:
        storey_px = (_foot(look, box, bottom) - look.ground.cy) * storey / 1.2
    else:
        storey_px = np.maximum(bottom - top + 1, 1) / 5
    storey_px = np.maximum(storey_px, 0.5).astype(np.float32)
    floors = (bottom[None, :] - (_rows(box) - box[0].start)) / storey_px[None, :]
    along = np.cumsum(1 / storey_px)[None, :]
    return floors, along, ((bottom - top) / storey_px)[None, :]


def _foot(look: _Look, box: _Box, bottom: np.ndarray) -> np.ndarray:
    """Image row of a facade's foot per column; where the image bottom cuts it off, continued on the line
    through the vanishing point (where a facade's foot runs) from the nearest uncut columns."""
    assert look.ground is not None
    rows = bottom + box[0].start
    cols = np.arange(box[1].start, box[1].stop, dtype=np.float32)
    offset = cols - look.ground.cx
    offset = np.where(np.abs(offset) < 1, 1, offset)
    ratio = (rows - look.ground.cy) / offset
    uncut = rows < look.image.shape[0] - 1.5
    if uncut.any() and not uncut.all():
        ratio = np.interp(cols, cols[uncut], ratio[uncut])
    return np.maximum(look.ground.cy + ratio * offset, look.ground.cy + 0.5)


def _tex_building(look: _Look, name: str, box: _Box, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plastered or brick facade with a grid of windows in perspective, a shop floor and a darker cornice."""
    colour = _pick(rng, _BUILDING, 14)
    light = 1 + 0.04 * look.field("mid", box) + 0.04 * look.field("fine", box) + 0.06 * look.field("coarse", box)
    floors, along, height = _facade_coords(look, box, rng.uniform(2.9, 3.6))
    spacing = rng.uniform(0.8, 1.4)
    column = np.mod(along / spacing + rng.uniform(0, 1), 1)
    row = np.mod(floors, 1)
    low, high = rng.uniform(0.2, 0.35), rng.uniform(0.7, 0.85)
    windows = (row > 0.28) & (row < 0.82) & (column > low) & (column < high) & (floors > 1) & (floors < height - 0.35)
    shop = (floors < 0.85) & (column > 0.1) & (column < 0.9) & (rng.random() < 0.6)
    patch = _paint(colour, light * (1 - 0.12 * (floors < 1)) * (1 - 0.25 * (floors > height - 0.15)))
    ids = (np.floor(floors) * 131 + np.floor(along / spacing) * 17).astype(np.int64) % 97
    glass_light = (rng.random(97).astype(np.float32) * 0.8 + 0.2)[ids]
    glass = np.array([rng.uniform(35, 70), rng.uniform(45, 80), rng.uniform(60, 100)], dtype=np.float32)
    pane = glass * (0.7 + 0.6 * glass_light[..., None]) + look.sky_low * 0.25 * glass_light[..., None]
    patch = np.where(windows[..., None], pane, patch)
    return np.where(shop[..., None], _paint(_pick(rng, _PAINT, 20), 0.6 + 0.1 * look.field("fine", box)), patch)


def _tex_wall(look: _Look, name: str, box: _Box, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Concrete or plaster with a lighter coping and sometimes graffiti; used for the other constructions too."""
    light = 1 + 0.06 * look.field("mid", box) + 0.06 * look.field("fine", box) + 0.1 * look.field("coarse", box)
    top, bottom = _envelope(look, box)
    v = ((_rows(box) - box[0].start) - top[None, :]) / np.maximum(bottom - top + 1, 1)[None, :]
    patch = _paint(_pick(rng, _WALL, 12), light * (1 + 0.15 * (v < 0.08)))
    if rng.random() < 0.25:
        spray = np.clip(look.field("mid", box) * 1.5 - 1.2, 0, 1)[..., None]
        patch = patch * (1 - spray) + _pick(rng, _PAINT + list(_SIGNS.values()), 10) * spray
    return patch


def _tex_fence(look: _Look, name: str, box: _Box, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Slats or bars (spaced in perspective) and rails, with a dim view of what lies behind in between."""
    top, bottom = _envelope(look, box)
    height = np.maximum(bottom - top + 1, 1)
    along = np.cumsum(1 / height)[None, :] * rng.uniform(4, 12)
    v = ((_rows(box) - box[0].start) - top[None, :]) / height[None, :]
    solid = (np.mod(along, 1) < rng.uniform(0.3, 0.7)) | (np.abs(v - 0.12) < 0.05) | (np.abs(v - 0.85) < 0.05)
    light = 1 + 0.06 * look.field("fine", box)
    front = _paint(_pick(rng, _FENCE, 12), light)
    behind = _paint(_pick(rng, _LEAVES + _WALL, 10), light * (0.75 + 0.2 * look.field("mid", box)))
    return np.where(solid[..., None], front, behind)


def _tex_pole(look: _Look, name: str, box: _Box, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Painted metal, shaded like a cylinder across each row."""
    first, last = _extents(shape, 1)
    across = ((_cols(box) - box[1].start) - first[:, None]) / np.maximum(last - first + 1, 1)[:, None]
    light = 0.7 + 0.45 * np.sin(np.pi * np.clip(across, 0, 1)) + 0.04 * look.field("fine", box)
    return _paint(_pick(rng, _METAL, 12), light)


def _tex_traffic_light(look: _Look, name: str, box: _Box, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dark (or yellow) housing with three lamps, one lit, unless it is seen from behind."""
    h, w = shape.shape
    patch = _paint(_pick(rng, [(35, 35, 38), (55, 58, 55), (175, 150, 40)], 8), 1 + 0.05 * look.field("fine", box))
    if rng.random() < 0.35 or h < 3:
        return patch
    rows, cols = _rows(box) - box[0].start, _cols(box) - box[1].start
    lit = int(rng.integers(3))
    for k, colour in enumerate([(255, 60, 40), (255, 190, 40), (60, 240, 120)]):
        centre = (k + 0.5) * h / 3
        radius = max(0.35 * min(w, h / 3), 0.6)
        lamp = (rows - centre) ** 2 + (cols - (w - 1) / 2) ** 2 <= radius ** 2
        shade = np.array(colour, dtype=np.float32) * (1.0 if k == lit else 0.25)
        patch = np.where(lamp[..., None], shade, patch)
    return patch


def _tex_sign(look: _Look, name: str, box: _Box, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A sign face (red ring on white, blue, yellow, green) with a border and a simple symbol, or its grey back."""
    light = 1 + 0.04 * look.field("fine", box)
    if rng.random() < 0.3:
        return _paint(_pick(rng, _METAL, 10), light)
    fill, border = [(_SIGNS[a], _SIGNS[b]) for a, b in (("white", "red"), ("blue", "white"), ("yellow", "white"),
                                                           ("green", "white"), ("white", "red"))][int(rng.integers(5))]
    k = max(1, int(round(0.14 * min(shape.shape))))
    inner = cv2.erode(shape.astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8)).astype(bool)
    symbol = cv2.erode(inner.astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8)).astype(bool)
    rows, cols = _rows(box) - box[0].start - shape.shape[0] / 2, _cols(box) - box[1].start - shape.shape[1] / 2
    bar = np.abs(rows) < 0.1 * shape.shape[0] if rng.random() < 0.5 else np.abs(cols) < 0.1 * shape.shape[1]
    symbol &= bar if rng.random() < 0.6 else (rows ** 2 + cols ** 2 < (0.2 * min(shape.shape)) ** 2)
    ink = _SIGNS["white"] if fill == _SIGNS["blue"] else (30, 30, 35)
    face, rim = (_paint(np.array(colour, np.float32), light) for colour in (fill, border))
    patch = np.where(inner[..., None], face, rim)
    return np.where(symbol[..., None], _paint(np.array(ink, np.float32), light), patch)


def _tex_human(look: _Look, name: str, box: _Box, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hair and face, a top, trousers and shoes in random clothes colours, shaded across the body."""
    h = shape.shape[0]
    v = (_rows(box) - box[0].start) / max(h, 1)
    head, waist = (0.14, rng.uniform(0.48, 0.6)) if name == "person" else (0.17, 0.6)
    bands = [(v < 0.045, _pick(rng, [(30, 25, 20), (80, 60, 40), (150, 120, 80), (60, 60, 60)], 10)),
             (v < head, _pick(rng, _SKIN, 10)), (v < waist, _pick(rng, _CLOTHES, 18)),
             (v < 0.95, _pick(rng, _CLOTHES, 18)),
             (v >= 0.95, _pick(rng, [(20, 20, 22), (60, 50, 45), (200, 200, 200)], 8))]
    colour = np.select([mask[..., None] for mask, _ in bands], [np.broadcast_to(c, (h, 1, 3)) for _, c in bands])
    first, last = _extents(shape, 1)
    across = ((_cols(box) - box[1].start) - first[:, None]) / np.maximum(last - first + 1, 1)[:, None]
    light = (0.75 + 0.35 * np.sin(np.pi * np.clip(across, 0, 1))
             + 0.06 * look.field("fine", box) + 0.05 * look.field("small", box))
    return colour * light[..., None]


def _tex_vehicle(look: _Look, name: str, box: _Box, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Body paint with a sky reflection on top, dark windows in the cabin, black tyres and coloured lamps."""
    h, w = shape.shape
    rows, cols = (_rows(box) - box[0].start) / max(h, 1), (_cols(box) - box[1].start) / max(w, 1)
    top, bottom = _extents(shape, 0)
    top, bottom = top[None, :] / max(h, 1), bottom[None, :] / max(h, 1)
    light = 1.05 - 0.3 * rows + 0.03 * look.field("fine", box) + 0.04 * look.field("mid", box)
    patch = _paint(_pick(rng, _PAINT, 12), light) + look.sky_low * (0.12 * np.clip(0.3 - rows, 0, 1) / 0.3)[..., None]
    glass_bottom = {"bus": 0.6, "truck": 0.3}.get(name, 0.42)
    inset = cv2.erode(shape.astype(np.uint8), np.ones((1, max(3, w // 12)), np.uint8)).astype(bool)
    windows = inset & (top < 0.2) & (rows > top + 0.04) & (rows < glass_bottom)
    glass = np.float32(rng.uniform(25, 60)) + look.sky_low * 0.2 * np.clip(1 - (rows - top) * 4, 0, 1)[..., None]
    patch = np.where(windows[..., None], glass, patch)
    tyres = (rows > 0.78) & (bottom > 0.96)
    patch = np.where(tyres[..., None], np.float32(22) + 5 * look.field("fine", box)[..., None], patch)
    lamps = (np.abs(rows - 0.52) < 0.05) & ((cols < 0.12) | (cols > 0.88)) & (w > 6)
    lamp = np.array([200, 30, 25] if rng.random() < 0.6 else [235, 225, 190], dtype=np.float32)
    return np.where(lamps[..., None], lamp, patch)


def _tex_two_wheeler(look: _Look, name: str, box: _Box, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Frame and tyres mixed with what shows between the spokes."""
    frame, tyre = _pick(rng, _PAINT + _CLOTHES, 15), np.array([25, 25, 27], dtype=np.float32)
    mix = np.clip(0.5 + 0.8 * look.field("small", box) + 0.4 * look.field("fine", box), 0, 1)[..., None]
    patch = tyre * (1 - mix) + frame * mix
    behind = np.clip(look.field("small", box) * 1.5 - 0.5, 0, 1)[..., None] * (name == "bicycle")
    return patch * (1 - behind) + _pick(rng, _ASPHALT + _PAVING, 10) * behind


def _tex_plate(look: _Look, name: str, box: _Box, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A white plate with a blue strip on the left and dark characters."""
    h, w = shape.shape
    rows, cols = (_rows(box) - box[0].start) / max(h, 1), (_cols(box) - box[1].start) / max(w, 1)
    patch = _paint(np.array([228, 228, 222], np.float32), 1 + 0.03 * look.field("fine", box))
    chars = (np.abs(rows - 0.5) < 0.3) & (cols > 0.18) & (cols < 0.95) & (np.mod(cols * 9, 1) < 0.55)
    patch = np.where(chars[..., None], np.float32(35), patch)
    return np.where((cols < 0.12)[..., None], np.array(_SIGNS["blue"], np.float32), patch)


def _tex_ego(look: _Look, name: str, box: _Box, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The dark bonnet, reflecting the scene above it dimly."""
    rows = np.arange(box[0].start, box[0].stop)
    mirror = np.clip(2 * box[0].start - rows, 0, look.image.shape[0] - 1)
    reflection = look.image[mirror, box[1]]
    paint = _paint(_pick(rng, [(20, 22, 25), (40, 42, 45), (25, 28, 40)], 5), 1 + 0.03 * look.field("fine", box))
    return paint + 0.22 * reflection


def _tex_dark(look: _Look, name: str, box: _Box, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _paint(np.array([8, 8, 8], np.float32), 1 + 0.5 * look.field("fine", box))


def _tex_thing(look: _Look, name: str, box: _Box, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Anything else (static, dynamic, unknown): a random colour with a vertical light gradient."""
    v = (_rows(box) - box[0].start) / max(shape.shape[0], 1)
    return _paint(_pick(rng, _PAINT + _METAL + _WALL, 15), 1.1 - 0.3 * v + 0.05 * look.field("fine", box))


_Texture = Callable[[_Look, str, _Box, np.ndarray, np.random.Generator], np.ndarray]
_TEXTURES: dict[str, _Texture] = {
    "sky": _tex_sky, "road": _tex_flat, "sidewalk": _tex_flat, "parking": _tex_flat, "rail track": _tex_flat,
    "ground": _tex_flat, "vegetation": _tex_nature, "terrain": _tex_nature, "building": _tex_building,
    "wall": _tex_wall, "fence": _tex_fence, "guard rail": _tex_fence, "pole": _tex_pole, "polegroup": _tex_pole,
    "traffic light": _tex_traffic_light, "traffic sign": _tex_sign, "person": _tex_human, "rider": _tex_human,
    "bicycle": _tex_two_wheeler, "motorcycle": _tex_two_wheeler, "license plate": _tex_plate, "ego vehicle": _tex_ego,
    "unlabeled": _tex_dark, "rectification border": _tex_dark, "out of roi": _tex_dark,
}
_BY_CATEGORY: dict[str, _Texture] = {"flat": _tex_flat, "construction": _tex_wall, "vehicle": _tex_vehicle}
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


# ---------------------------------------------------------------------------------------------------------
# Frames and datasets
# ---------------------------------------------------------------------------------------------------------

def generate_frame(seed: int, split: str, index: int, size: tuple[int, int]) -> tuple[np.ndarray, dict[str, Any]]:
    """Frame ``index`` of ``split``: ``(image (H, W, 3) uint8, polygons dict)``.

    Deterministic: the generator is ``np.random.default_rng([seed, SPLITS.index(split), index])``, so the same
    arguments give byte-identical output on any machine with the same library versions.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative, got seed={seed}, index={index}")
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    polygons = make_scene(rng, size)
    return render_image(polygons, rng), polygons


def frame_for(root: PathLike, split: str, index: int) -> Frame:
    """Where frame ``index`` of ``split`` lives: cities take turns, ``<city>_<seq:06d>_000019`` like Cityscapes."""
    cities = CITIES[split]
    return Frame(Path(root), split, cities[index % len(cities)], index // len(cities), FRAME_NUMBER)


def _frame_paths(frame: Frame) -> list[Path]:
    return [frame.image_path] + [frame.gt_path(kind) for kind in GT_KINDS]


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write via a temporary file in the same folder, then rename it into place (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_frame(frame: Frame, image: np.ndarray, polygons: Mapping[str, Any]) -> None:
    """Write ``image (H, W, 3) uint8`` and the four gtFine files of ``polygons`` at ``frame``'s paths.

    The masks are drawn from the polygons with :mod:`seglib.masks` (as the official tools do). Each file is written
    under a temporary name and renamed into place; the image comes last, so an image implies its annotations.
    """
    label_ids = masks.polygons_to_label_ids(polygons)
    instance_ids = masks.polygons_to_instance_ids(polygons)
    image = np.asarray(image)
    if image.shape != label_ids.shape + (3,) or image.dtype != np.uint8:
        height, width = label_ids.shape
        raise ValueError(f"image must be ({height}, {width}, 3) uint8, got {image.shape} {image.dtype}")
    writers: list[tuple[Path, Callable[[Path], None]]] = [
        (frame.gt_path("polygons"), lambda p: masks.write_polygons(p, polygons)),
        (frame.gt_path("labelIds"), lambda p: masks.write_label_ids(p, label_ids)),
        (frame.gt_path("color"), lambda p: masks.write_color(p, label_ids)),
        (frame.gt_path("instanceIds"), lambda p: masks.write_instance_ids(p, instance_ids)),
        (frame.image_path, lambda p: Image.fromarray(image, mode="RGB").save(p, compress_level=1)),
    ]
    for path, write in writers:
        _write_atomically(path, write)


_README = """Synthetic street scenes in the Cityscapes file layout
=====================================================

Every image and annotation in this folder was procedurally generated by seglib.synthetic
(generator version {version}, seed {seed}, {height} x {width} pixels). None of it comes from the
Cityscapes dataset or any other photograph, so it is license-clean: use, share and delete it freely.
The folder layout and file formats are those of Cityscapes (leftImg8bit/, gtFine/), so the same
code runs on the real dataset. Deleting the folder is safe: it is regenerated on demand.
"""
_TEMPORARY = re.compile(r"\.tmp\d+\.(png|json)$")


def _claim(root: Path, size: tuple[int, int], seed: int) -> None:
    """Make ``root`` ours (marker + README), or check that it already is, with the same settings."""
    marker = root / MARKER_NAME
    wanted = {"generator": "seglib.synthetic", "version": GENERATOR_VERSION, "seed": seed, "size": list(size)}
    if not marker.is_file():
        if root.exists() and (not root.is_dir() or any(path.name != MARKER_NAME for path in root.iterdir())):
            raise FileExistsError(
                f"{root} exists and is not empty but has no {MARKER_NAME}, so it may hold your own data; "
                "seglib.synthetic will not write into it. Choose a new or empty folder for the generated "
                "scenes (or point CITYSCAPES_DATASET at it if it is a real Cityscapes root)")
        root.mkdir(parents=True, exist_ok=True)
        _create_marker(marker, json.dumps(wanted, indent=2) + "\n")
    try:
        found = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{marker} cannot be read ({error}); delete {root} to regenerate the dataset") from None
    if not isinstance(found, dict) or any(found.get(key) != wanted[key] for key in ("version", "seed", "size")):
        raise ValueError(
            f"{root} holds synthetic scenes made with {_settings(found)}, but {_settings(wanted)} was asked for; "
            f"delete {root} to regenerate it, or use another root (one folder per size and seed)")
    if not (root / "README.txt").is_file():
        text = _README.format(version=GENERATOR_VERSION, seed=seed, height=size[0], width=size[1])
        _write_atomically(root / "README.txt", lambda p: p.write_text(text, encoding="utf-8"))


def _create_marker(marker: Path, text: str) -> None:
    """Create ``marker`` whole and only if it does not exist, so that two processes starting on the same empty
    root agree on one marker: it is written beside the root, then hard-linked into place (atomic, and refused if
    the marker exists); where hard links are not supported, an exclusive create is used instead."""
    temporary = marker.parent.parent / f".{marker.parent.name}.{os.getpid()}.marker.tmp"
    temporary.write_text(text, encoding="utf-8")
    try:
        os.link(temporary, marker)
    except FileExistsError:
        pass  # another process claimed the root first; the caller checks its settings
    except OSError:
        try:
            with open(marker, "x", encoding="utf-8") as file:
                file.write(text)
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)


def _settings(marker: Any) -> str:
    if not isinstance(marker, dict):
        return repr(marker)
    size = marker.get("size")
    size = f"{size[0]}x{size[1]}" if isinstance(size, list) and len(size) == 2 else repr(size)
    return f"version={marker.get('version')!r}, seed={marker.get('seed')!r}, size={size}"


def _remove_stale_temporaries(root: Path, age: float = 600.0) -> None:
    """Delete temporary files an interrupted run left behind (those younger than ``age`` s may be in use)."""
    now = time.time()
    for folder in (root / "leftImg8bit", root / "gtFine"):
        for path in folder.rglob("*.tmp*") if folder.is_dir() else ():
            try:
                if _TEMPORARY.search(path.name) and now - path.stat().st_mtime > age:
                    path.unlink()
            except FileNotFoundError:
                pass


def _make_frame(task: tuple[str, str, int, tuple[int, int], int]) -> None:
    root, split, index, size, seed = task
    image, polygons = generate_frame(seed, split, index, size)
    write_frame(frame_for(root, split, index), image, polygons)


def _worker_count(workers: int | None, frames: int) -> int:
    if workers is not None:
        return max(1, min(int(workers), frames))
    if frames < 64:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, frames // 16))


def _generate(root: Path, split: str, indices: list[int], size: tuple[int, int], seed: int,
              workers: int | None) -> None:
    """Generate and write the given frames, in worker processes when there are many."""
    tasks = [(str(root), split, index, size, seed) for index in indices]
    count = _worker_count(workers, len(tasks))
    if count == 1:
        for task in tasks:
            _make_frame(task)
        return
    # spawn: safe in notebooks and with threads; scripts need the usual `if __name__ == "__main__":` guard
    with ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_make_frame, tasks, chunksize=max(1, len(tasks) // (8 * count))))


def _check_counts(counts: Mapping[str, int]) -> dict[str, int]:
    unknown = set(counts) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)} in counts; choose from {', '.join(SPLITS)}")
    if any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0 for n in counts.values()):
        raise ValueError(f"frame counts must be non-negative integers, got {dict(counts)}")
    return {split: int(counts.get(split, 0)) for split in SPLITS}


def ensure_dataset(root: PathLike, size: tuple[int, int], counts: Mapping[str, int], seed: int = 0,
                   workers: int | None = None) -> Path:
    """Make sure ``root`` holds the first ``counts[split]`` generated frames of each split at ``size = (H, W)``.

    Made on first use and idempotent: only frames with a missing file are generated (asking for more frames
    later adds frames; a re-run after an interrupt finishes the job). ``root`` gets a marker ``seglib_synthetic.json``
    (generator version, seed, size) and a ``README.txt``. Raises ``FileExistsError`` for an existing non-empty
    folder without the marker (it may be someone's data) and ``ValueError`` for a marker with other settings.
    ``workers`` processes generate (default: 1 for fewer than 64 missing frames, else up to the CPU count).
    Prints at most one line per split. Returns ``root`` as a Path.
    """
    root, size, counts = Path(root).expanduser(), _check_size(size), _check_counts(counts)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _claim(root, size, int(seed))
    cleaned = False
    for split in SPLITS:
        missing = [i for i in range(counts[split])
                   if not all(path.is_file() for path in _frame_paths(frame_for(root, split, i)))]
        if not missing:
            continue
        if not cleaned:
            _remove_stale_temporaries(root)
            cleaned = True
        start = time.perf_counter()
        _generate(root, split, missing, size, int(seed), workers)
        print(f"seglib.synthetic: generated {len(missing)} {split} frame(s) of {size[0]}x{size[1]} in "
              f"{time.perf_counter() - start:.1f} s under {root}", flush=True)
    return root
