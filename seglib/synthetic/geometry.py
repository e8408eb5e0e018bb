"""Geometry of the generated scenes: the camera, the street, polygon clipping and union, flat shapes in metres.

Used by :mod:`seglib.synthetic.scene` to lay out a street and by :mod:`seglib.synthetic.render` to recover the
ground plane; nothing here draws random numbers except through the ``rng`` it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from seglib.cityscapes import FRAME_SIZE

#: (H, W) the scenes are designed at (the real Cityscapes frame size); other sizes scale the camera.
DESIGN_SIZE: tuple[int, int] = FRAME_SIZE

_Box = tuple[slice, slice]  # (rows, columns) of an object's bounding box

# ---------------------------------------------------------------------------------------------------------
# Camera and street layout (world coordinates in metres: x to the right, y up from the road, z ahead)
# ---------------------------------------------------------------------------------------------------------

_FOCAL = 2262.0   # Cityscapes' focal length in pixels at 2048 px width
_NEAR = 0.3       # nearer points are pushed back to this depth (they project far outside the image anyway)
_FAR = 2000.0     # depth where ground surfaces end, a fraction of a pixel below the horizon


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
