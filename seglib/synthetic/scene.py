"""Scene layout: a random street in metres (road, sidewalks, buildings, trees, poles, vehicles, people), projected
through the camera into the annotators' polygons of one frame (:func:`make_scene`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from seglib import labels
from seglib.synthetic.geometry import (
    _FAR, _NEAR, DESIGN_SIZE, _blob, _bumpy_top, _camera, _ellipse, _polygon, _rect, _segment, _street, _Street,
)

__all__ = ["make_scene"]

_ATTEMPTS = 8     # scenes tried until one shows all seven evaluated categories
# Drawing layers, drawn in this order; within a layer far before near.
_SKY, _GROUND, _SKYLINE, _BUILDINGS, _FACADE, _STREET, _EGO = range(7)


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
