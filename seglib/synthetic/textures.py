"""Textures: what each kind of object looks like over its bounding box (palettes, facades, markings, lamps...),
painted on the per-image :class:`_Look` that :mod:`seglib.synthetic.render` prepares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from seglib.synthetic.geometry import _Box


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
