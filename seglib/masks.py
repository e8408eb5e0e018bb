"""Cityscapes mask formats, the conversions between them, and the 34 -> 8 category grouping.

Four formats describe the same frame (see the book's chapter "Mask formats"):

* ``*_gtFine_labelIds.png``    - 8-bit grey, one label id (0..33) per pixel;
* ``*_gtFine_color.png``       - RGBA, the label's colour per pixel (lossy: some labels share a colour);
* ``*_gtFine_instanceIds.png`` - 16-bit grey, ``id * 1000 + k`` for instance ``k`` of a label with instances,
  the plain label id elsewhere;
* ``*_gtFine_polygons.json``   - the annotators' polygons, from which the official tools draw the PNGs.

All functions are pure functions on numpy arrays (or on the parsed json dict); readers and writers are thin.
Every number comes from :mod:`seglib.labels`.
"""

from __future__ import annotations

import io
import json
import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from seglib import labels

__all__ = [
    "check_label_ids", "check_categories",
    "read_label_ids", "write_label_ids", "read_color", "write_color", "read_instance_ids", "write_instance_ids",
    "read_polygons", "write_polygons", "parse_polygons",
    "pair_lookup_table", "label_ids_to_categories", "label_ids_to_categories_loop", "label_ids_to_train_ids", "label_ids_to_color", "color_to_label_ids",
    "color_to_categories", "categories_to_one_hot", "one_hot_to_categories",
    "instance_ids_to_label_ids", "polygons_to_label_ids", "polygons_to_instance_ids",
    "voc_xml_to_polygons", "polygons_to_voc_xml", "check_size", "nearest_indices", "resize_nearest", "category_shares",
]

PathLike = str | os.PathLike
#: Largest value a 16-bit instanceIds PNG can hold.
_MAX_INSTANCE_VALUE = np.iinfo(np.uint16).max


# ---------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------

def _check_2d_integer(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (H, W) array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{what} must hold integers, got dtype {array.dtype}")
    return array


def check_label_ids(label_ids: np.ndarray) -> np.ndarray:
    """Validate ``label_ids: (H, W)`` integer label ids 0..33; returns it as uint8.

    Raises ``ValueError`` for another shape or dtype, or a value outside 0..33 (naming the value and how many
    pixels hold it, since a train-id or category mask passed by mistake is the usual cause).
    """
    label_ids = _check_2d_integer(label_ids, "label_ids")
    if label_ids.size:
        low, high = int(label_ids.min()), int(label_ids.max())
        if low < 0 or high >= labels.NUM_LABEL_IDS:
            bad = high if high >= labels.NUM_LABEL_IDS else low
            count = int(np.count_nonzero(label_ids == bad))
            raise ValueError(
                f"label id {bad} is outside 0..{labels.NUM_LABEL_IDS - 1} ({count} pixels); label_ids must hold "
                "Cityscapes label ids (a *_gtFine_labelIds.png), not train ids, category ids or colours"
            )
    return label_ids.astype(np.uint8, copy=False)


def check_categories(categories: np.ndarray, allow_ignore: bool = True) -> np.ndarray:
    """Validate ``categories: (H, W)`` integer category ids 0..7 (and IGNORE if allowed); returns uint8."""
    categories = _check_2d_integer(categories, "categories")
    if categories.dtype == np.uint8 and categories.max(initial=0) < labels.NUM_CATEGORIES:
        return categories  # the common case, without the sort np.unique does (a served mask is 2 M pixels)
    valid = np.arange(labels.NUM_CATEGORIES)
    if allow_ignore:
        valid = np.append(valid, labels.IGNORE)
    bad = np.setdiff1d(np.unique(categories), valid)
    if bad.size:
        raise ValueError(
            f"category mask holds value(s) {bad[:5].tolist()} outside 0..{labels.NUM_CATEGORIES - 1}"
            + (f" and IGNORE={labels.IGNORE}" if allow_ignore else "")
            + "; convert label ids with label_ids_to_categories first"
        )
    return categories.astype(np.uint8, copy=False)


# ---------------------------------------------------------------------------------------------------------
# Reading and writing the four formats
# ---------------------------------------------------------------------------------------------------------

def _open_png(path: PathLike) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask file not found: {path}")
    try:
        image = Image.open(path)
        image.load()
    except (OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(f"cannot decode image {path}: {error}") from error
    return image


def read_label_ids(path: PathLike) -> np.ndarray:
    """Read a ``*_gtFine_labelIds.png`` -> ``(H, W) uint8`` label ids, validated."""
    image = _open_png(path)
    if image.mode != "L":
        raise ValueError(f"{path}: a labelIds PNG is 8-bit grey (mode 'L'), got mode {image.mode!r}")
    try:
        return check_label_ids(np.asarray(image))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def write_label_ids(path: PathLike, label_ids: np.ndarray) -> None:
    """Write ``label_ids: (H, W)`` label ids as an 8-bit grey PNG."""
    Image.fromarray(check_label_ids(label_ids), mode="L").save(path)


def read_color(path: PathLike) -> np.ndarray:
    """Read a ``*_gtFine_color.png`` (RGBA or RGB) -> ``(H, W, 3) uint8`` RGB."""
    image = _open_png(path)
    if image.mode not in ("RGB", "RGBA"):
        raise ValueError(f"{path}: a colour mask is RGB or RGBA, got mode {image.mode!r}")
    return np.asarray(image.convert("RGB"))


def write_color(path: PathLike, label_ids: np.ndarray) -> None:
    """Write the colour PNG of ``label_ids`` as the official tools do (RGBA, alpha 255)."""
    Image.fromarray(label_ids_to_color(label_ids), mode="RGB").convert("RGBA").save(path)


def read_instance_ids(path: PathLike) -> np.ndarray:
    """Read a ``*_gtFine_instanceIds.png`` (16-bit grey) -> ``(H, W) int32``."""
    image = _open_png(path)
    if image.mode not in ("I", "I;16", "I;16B", "L"):
        raise ValueError(f"{path}: an instanceIds PNG is 16-bit grey, got mode {image.mode!r}")
    return np.asarray(image).astype(np.int32)


def write_instance_ids(path: PathLike, instance_ids: np.ndarray) -> None:
    """Write ``instance_ids: (H, W)`` integers (``id * 1000 + k`` or plain ids) as a 16-bit grey PNG."""
    instance_ids = _check_2d_integer(instance_ids, "instance_ids")
    if instance_ids.size and (instance_ids.min() < 0 or instance_ids.max() > _MAX_INSTANCE_VALUE):
        raise ValueError(f"instance ids must lie in 0..{_MAX_INSTANCE_VALUE} to fit a 16-bit PNG")
    Image.fromarray(instance_ids.astype(np.uint16)).save(path)


def _positive_size(value: Any) -> int | None:
    """An image side as the official tools read it (``int(value)``): ints, integral floats, digit strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return value if isinstance(value, int) and value > 0 else None


def _check_points(polygon: Any, where: str) -> None:
    if (not isinstance(polygon, list) or len(polygon) < 2
            or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in polygon)
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for p in polygon for v in p)):
        raise ValueError(f"{where}: 'polygon' must be a list of at least two [x, y] number pairs")


def parse_polygons(polygons: Mapping[str, Any] | str | bytes, source: str = "polygons",
                   check_points: bool = True) -> dict[str, Any]:
    """Validate a polygons annotation (the parsed ``*_gtFine_polygons.json``, or its text) and return it as a dict.

    Raises ``ValueError`` naming the first problem: malformed JSON, missing or non-positive ``imgHeight`` /
    ``imgWidth``, ``objects`` not a list, an object without a string ``label``, or (with ``check_points``) a
    ``polygon`` that is not a list of at least two ``[x, y]`` number pairs. Label *names* are checked when drawing;
    drawing checks only the polygons it draws, as the official tool does (a deleted object or a license plate may
    hold anything).
    """
    if isinstance(polygons, (str, bytes)):
        try:
            polygons = json.loads(polygons)
        except json.JSONDecodeError as error:
            raise ValueError(f"{source}: malformed JSON ({error})") from None
    if not isinstance(polygons, Mapping):
        raise ValueError(f"{source}: expected a JSON object with imgHeight, imgWidth, objects")
    polygons = dict(polygons)
    for key in ("imgHeight", "imgWidth"):
        size = _positive_size(polygons.get(key))
        if size is None:
            raise ValueError(f"{source}: {key!r} must be a positive integer, got {polygons.get(key)!r}")
        polygons[key] = size
    objects = polygons.get("objects")
    if not isinstance(objects, list):
        raise ValueError(f"{source}: 'objects' must be a list, got {type(objects).__name__}")
    for index, obj in enumerate(objects):
        if not isinstance(obj, Mapping) or not isinstance(obj.get("label"), str):
            raise ValueError(f"{source}: objects[{index}] must be an object with a string 'label'")
        if check_points:
            _check_points(obj.get("polygon"), f"{source}: objects[{index}] ({obj['label']!r})")
    return polygons


def read_polygons(path: PathLike) -> dict[str, Any]:
    """Read and validate a ``*_gtFine_polygons.json``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"polygons file not found: {path}")
    return parse_polygons(path.read_text(encoding="utf-8"), source=str(path))


def write_polygons(path: PathLike, polygons: Mapping[str, Any]) -> None:
    """Write a polygons annotation as the Cityscapes json (validated first)."""
    polygons = parse_polygons(polygons)
    Path(path).write_text(json.dumps(polygons, indent=4) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------
# Conversions between label ids, categories, colours and one-hot
# ---------------------------------------------------------------------------------------------------------

def pair_lookup_table(lut: np.ndarray) -> np.ndarray:
    """Turn a 256-entry ``uint8`` table into a 65536-entry one that maps *two* pixels at once.

    Two neighbouring ``uint8`` pixels read as one little-endian ``uint16`` index the pair table, whose entry holds
    both results; half as many lookups as pixels.
    """
    pairs = np.arange(2**16, dtype="<u2")
    return (lut[pairs & 0xFF].astype("<u2") | (lut[pairs >> 8].astype("<u2") << 8)).astype("<u2")


_CATEGORY_PAIRS = pair_lookup_table(labels.ID_TO_CATEGORY_LUT)


def label_ids_to_categories(label_ids: np.ndarray) -> np.ndarray:
    """Group label ids into the 8 categories with one table lookup per pair of pixels.

    ``label_ids: (H, W)`` integer label ids 0..33 -> ``(H, W) uint8`` category ids 0..7.
    """
    flat = np.ascontiguousarray(check_label_ids(label_ids)).reshape(-1)
    categories = np.empty_like(flat)
    even = flat.size - flat.size % 2
    categories[:even] = np.take(_CATEGORY_PAIRS, flat[:even].view("<u2")).view(np.uint8)
    categories[even:] = labels.ID_TO_CATEGORY_LUT[flat[even:]]  # an odd last pixel
    return categories.reshape(np.shape(label_ids))


def label_ids_to_categories_loop(label_ids: np.ndarray) -> np.ndarray:
    """The same grouping as :func:`label_ids_to_categories`, by one comparison per label: the slow way, kept as
    the baseline that the book and ``benchmarks/`` measure the lookup table against."""
    label_ids = check_label_ids(label_ids)
    categories = np.zeros_like(label_ids)
    for label in labels.ID_TO_LABEL.values():
        categories[label_ids == label.id] = label.category_id
    return categories


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """``(H, W)`` label ids -> ``(H, W) uint8`` official train ids (0..18, 255 for labels not trained on)."""
    return np.take(labels.ID_TO_TRAIN_ID_LUT, check_label_ids(label_ids))


def label_ids_to_color(label_ids: np.ndarray) -> np.ndarray:
    """``(H, W)`` label ids -> ``(H, W, 3) uint8`` RGB, the official colours."""
    return np.take(labels.LABEL_PALETTE, check_label_ids(label_ids), axis=0)


def _rgb_keys(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


_COLOR_KEYS = _rgb_keys(np.array(list(labels.COLOR_TO_ID), dtype=np.uint8))
_COLOR_KEY_ORDER = np.argsort(_COLOR_KEYS)
_SORTED_COLOR_KEYS = _COLOR_KEYS[_COLOR_KEY_ORDER]
_SORTED_COLOR_IDS = np.array(list(labels.COLOR_TO_ID.values()), dtype=np.uint8)[_COLOR_KEY_ORDER]


def color_to_label_ids(color: np.ndarray) -> np.ndarray:
    """``color: (H, W, 3|4) uint8`` official colours -> ``(H, W) uint8`` label ids.

    Shared colours map to the first label that has them (see :data:`seglib.labels.COLOR_TO_ID`): black -> 0,
    pole grey -> 17 (not polegroup), car blue -> 26. Raises ``ValueError`` for a colour not in the table
    (a JPEG-compressed or resized colour mask is the usual cause).
    """
    color = np.asarray(color)
    if color.ndim != 3 or color.shape[2] not in (3, 4) or color.dtype != np.uint8:
        raise ValueError(f"color must be an (H, W, 3) or (H, W, 4) uint8 array, got {color.shape} {color.dtype}")
    keys = _rgb_keys(color[..., :3])
    index = np.clip(np.searchsorted(_SORTED_COLOR_KEYS, keys), 0, len(_SORTED_COLOR_KEYS) - 1)
    unknown = _SORTED_COLOR_KEYS[index] != keys
    if unknown.any():
        y, x = np.argwhere(unknown)[0]
        raise ValueError(
            f"colour {tuple(int(v) for v in color[y, x, :3])} at (row {y}, col {x}) is not a Cityscapes label colour "
            f"({int(unknown.sum())} such pixels); colour masks must be lossless PNGs at their original size"
        )
    return _SORTED_COLOR_IDS[index]


def color_to_categories(color: np.ndarray) -> np.ndarray:
    """``(H, W, 3|4) uint8`` official colours -> ``(H, W) uint8`` category ids (exact: shared colours share a category)."""
    return label_ids_to_categories(color_to_label_ids(color))


def categories_to_one_hot(categories: np.ndarray, num_classes: int = labels.NUM_CATEGORIES,
                          dtype: np.dtype | type = np.float32) -> np.ndarray:
    """``categories: (H, W)`` ids 0..num_classes-1 (or IGNORE) -> ``(H, W, num_classes)`` one-hot.

    IGNORE pixels become all-zero rows, so they carry no target.
    """
    categories = _check_2d_integer(categories, "categories")
    valid = categories != labels.IGNORE
    if categories.size and (categories[valid].min(initial=0) < 0 or categories[valid].max(initial=0) >= num_classes):
        raise ValueError(f"categories must lie in 0..{num_classes - 1} (or IGNORE={labels.IGNORE})")
    eye = np.vstack([np.eye(num_classes, dtype=dtype), np.zeros((1, num_classes), dtype=dtype)])
    return eye[np.where(valid, categories, num_classes)]


def one_hot_to_categories(one_hot: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` one-hot or scores -> ``(H, W) uint8`` argmax; all-zero rows become IGNORE."""
    one_hot = np.asarray(one_hot)
    if one_hot.ndim != 3 or not 0 < one_hot.shape[2] <= labels.IGNORE:
        raise ValueError(f"one_hot must be (H, W, C) with 1 <= C <= {labels.IGNORE}, got shape {one_hot.shape}")
    result = np.argmax(one_hot, axis=-1).astype(np.uint8)
    result[~one_hot.any(axis=-1)] = labels.IGNORE
    return result


def instance_ids_to_label_ids(instance_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split an instanceIds image.

    ``instance_ids: (H, W)`` integers -> ``(label_ids (H, W) uint8, instance (H, W) int32)`` where ``instance``
    is ``k`` for pixels of instance ``k`` (value ``id * INSTANCE_FACTOR + k``, factor 1000) and -1 where no
    instance is recorded.
    """
    instance_ids = _check_2d_integer(instance_ids, "instance_ids").astype(np.int64)
    has_instance = instance_ids >= labels.INSTANCE_FACTOR
    label_ids = np.where(has_instance, instance_ids // labels.INSTANCE_FACTOR, instance_ids)
    instance = np.where(has_instance, instance_ids % labels.INSTANCE_FACTOR, -1).astype(np.int32)
    return check_label_ids(label_ids), instance


# ---------------------------------------------------------------------------------------------------------
# Polygons -> masks (pixel-identical to cityscapesscripts' json2labelImg / json2instanceImg)
# ---------------------------------------------------------------------------------------------------------

def _drawable_objects(polygons: Mapping[str, Any] | PathLike | str) -> tuple[tuple[int, int], str, list]:
    """``(size, source, [(index, label, is_group, polygon), ...])`` of the objects the official tools draw, in
    drawing order: deleted objects and labels with a negative id (license plate) are left out."""
    is_text = isinstance(polygons, (str, bytes)) and polygons.lstrip()[:1] in ("{", "[", b"{", b"[")
    if isinstance(polygons, (str, os.PathLike)) and not is_text:
        path = Path(polygons)
        if not path.is_file():
            raise FileNotFoundError(f"polygons file not found: {path}")
        source, polygons = str(path), path.read_text(encoding="utf-8")
    else:
        source = "polygons"
    polygons = parse_polygons(polygons, source, check_points=False)
    objects = []
    for index, obj in enumerate(polygons["objects"]):
        if obj.get("deleted"):
            continue
        label = labels.label_from_name(obj["label"])
        if label.id < 0:
            continue
        polygon = obj.get("polygon")
        if not isinstance(polygon, list) or len(polygon) < 2:
            raise ValueError(f"{source}: objects[{index}] ({obj['label']!r}): 'polygon' must be a list of at least "
                             "two [x, y] points")
        objects.append((index, label, label.name != obj["label"], polygon))
    return (polygons["imgWidth"], polygons["imgHeight"]), source, objects


def _draw(draw: ImageDraw.ImageDraw, polygon: list, value: int, source: str, index: int, name: str) -> None:
    try:
        draw.polygon(polygon, fill=value)
    except (TypeError, ValueError, SystemError):
        _check_points(polygon, f"{source}: objects[{index}] ({name!r})")  # names the problem
        raise


def polygons_to_label_ids(polygons: Mapping[str, Any] | PathLike | str) -> np.ndarray:
    """Draw a polygons annotation (a path, its json text, or the parsed dict) into ``(H, W) uint8`` label ids.

    Pixel-identical to the official ``json2labelImg(..., "ids")``: objects drawn in file order, later on top;
    ``deleted`` objects skipped; ``cargroup`` drawn as car (``polegroup`` is a label of its own); license plates
    never drawn; vertices outside the image clipped by the drawing; background ``unlabeled`` (0). Pillow's
    polygon fill is the rasterizer, as in the official tool, so edge pixels belong to the polygon.
    Raises ``ValueError`` for an unknown label name or a malformed annotation.
    """
    size, source, objects = _drawable_objects(polygons)
    image = Image.new("L", size, labels.NAME_TO_LABEL["unlabeled"].id)
    draw = ImageDraw.Draw(image)
    for index, label, _, polygon in objects:
        _draw(draw, polygon, label.id, source, index, label.name)
    return np.asarray(image)


def polygons_to_instance_ids(polygons: Mapping[str, Any] | PathLike | str) -> np.ndarray:
    """Draw a polygons annotation into ``(H, W) int32`` instance ids, as the official ``json2instanceImg``.

    Objects of a label with instances get ``id * INSTANCE_FACTOR + k``, ``k`` counting that label's objects from 0
    in file order; groups (``cargroup``) and labels without instances get their plain label id.
    """
    size, source, objects = _drawable_objects(polygons)
    image = Image.new("I", size, labels.NAME_TO_LABEL["unlabeled"].id)
    draw = ImageDraw.Draw(image)
    counts: dict[str, int] = {}
    for index, label, is_group, polygon in objects:
        value = label.id
        if label.has_instances and not is_group:
            value = label.id * labels.INSTANCE_FACTOR + counts.get(label.name, 0)
            counts[label.name] = counts.get(label.name, 0) + 1
        _draw(draw, polygon, value, source, index, label.name)
    return np.asarray(image, dtype=np.int32)


# ---------------------------------------------------------------------------------------------------------
# Annotation-tool exports: PASCAL VOC / LabelMe-style XML with polygons
# ---------------------------------------------------------------------------------------------------------

def _xml_number(text: str | None, what: str, source: str) -> float:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{source}: {what} is missing or not a number ({text!r})") from None
    if not np.isfinite(value):
        raise ValueError(f"{source}: {what} must be finite, got {text!r}")
    return value


def _xml_int(element: ElementTree.Element | None, tag: str, source: str) -> int:
    node = None if element is None else element.find(tag)
    value = _xml_number(None if node is None else node.text, f"<{tag}>", source)
    if not value.is_integer() or value <= 0:
        raise ValueError(f"{source}: <{tag}> must be a positive integer, got {node.text!r}")  # type: ignore[union-attr]
    return int(value)


def _xml_points(polygon: ElementTree.Element, source: str) -> list[list[float]]:
    """Points of a ``<polygon>``: ``<pt><x/><y/></pt>`` children (LabelMe) or ``<x1/><y1/><x2/>...`` (VOC)."""
    pairs = [(pt.findtext("x"), pt.findtext("y")) for pt in polygon.findall("pt")]
    index = 1
    while polygon.find(f"x{index}") is not None:
        pairs.append((polygon.findtext(f"x{index}"), polygon.findtext(f"y{index}")))
        index += 1
    points = [[_xml_number(x, f"x of point {i + 1}", source), _xml_number(y, f"y of point {i + 1}", source)]
              for i, (x, y) in enumerate(pairs)]
    if len(points) < 2:
        raise ValueError(f"{source}: a <polygon> needs at least two points")
    return [[int(round(x)) if float(x).is_integer() else x for x in point] for point in points]


def voc_xml_to_polygons(xml: str | bytes | PathLike, label_map: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Convert a labelling tool's XML export into a Cityscapes polygons dict (then draw it with
    :func:`polygons_to_label_ids`).

    Accepts PASCAL VOC-style XML (``<size><width/><height/></size>``, polygons as ``<x1/><y1/><x2/>...``) and
    LabelMe XML (``<imagesize><nrows/><ncols/></imagesize>``, polygons as ``<pt><x/><y/></pt>``). Each
    ``<object>`` has a ``<name>``, a ``<polygon>`` and optionally ``<deleted>1</deleted>``; objects keep file
    order, so later objects are drawn on top. ``label_map`` renames tool labels to Cityscapes names first.
    """
    if isinstance(xml, os.PathLike) or (isinstance(xml, str) and not xml.lstrip().startswith("<")):
        source = str(xml)
        if not Path(xml).is_file():
            raise FileNotFoundError(f"annotation file not found: {xml}")
        text = Path(xml).read_bytes()
    else:
        source, text = "annotation XML", xml
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise ValueError(f"{source}: malformed XML ({error})") from None
    if root.find("size") is not None:
        width, height = _xml_int(root.find("size"), "width", source), _xml_int(root.find("size"), "height", source)
    elif root.find("imagesize") is not None:
        width = _xml_int(root.find("imagesize"), "ncols", source)
        height = _xml_int(root.find("imagesize"), "nrows", source)
    else:
        raise ValueError(f"{source}: no <size> (VOC) or <imagesize> (LabelMe) element gives the image size")
    objects = []
    for index, obj in enumerate(root.findall("object")):
        name = (obj.findtext("name") or "").strip()
        name = (label_map or {}).get(name, name)
        labels.label_from_name(name)  # unknown names fail here, naming the label
        polygon = obj.find("polygon")
        if polygon is None:
            raise ValueError(f"{source}: object {index} ({name!r}) has no <polygon>")
        deleted = (obj.findtext("deleted") or "0").strip() not in ("0", "", "false")
        objects.append({"label": name, "polygon": _xml_points(polygon, f"{source}: object {index}"),
                        **({"deleted": 1} if deleted else {})})
    return parse_polygons({"imgHeight": height, "imgWidth": width, "objects": objects}, source)


def polygons_to_voc_xml(polygons: Mapping[str, Any], filename: str = "") -> str:
    """A Cityscapes polygons dict as PASCAL VOC-style XML with polygons (the inverse of :func:`voc_xml_to_polygons`)."""
    polygons = parse_polygons(polygons)
    root = ElementTree.Element("annotation")
    ElementTree.SubElement(root, "filename").text = filename
    size = ElementTree.SubElement(root, "size")
    ElementTree.SubElement(size, "width").text = str(polygons["imgWidth"])
    ElementTree.SubElement(size, "height").text = str(polygons["imgHeight"])
    ElementTree.SubElement(size, "depth").text = "3"
    for obj in polygons["objects"]:
        element = ElementTree.SubElement(root, "object")
        ElementTree.SubElement(element, "name").text = obj["label"]
        ElementTree.SubElement(element, "deleted").text = "1" if obj.get("deleted") else "0"
        polygon = ElementTree.SubElement(element, "polygon")
        for index, (x, y) in enumerate(obj["polygon"], start=1):
            ElementTree.SubElement(polygon, f"x{index}").text = str(x)
            ElementTree.SubElement(polygon, f"y{index}").text = str(y)
    ElementTree.indent(root)
    buffer = io.StringIO()
    ElementTree.ElementTree(root).write(buffer, encoding="unicode", xml_declaration=True)
    return buffer.getvalue() + "\n"


# ---------------------------------------------------------------------------------------------------------
# Resizing and counting
# ---------------------------------------------------------------------------------------------------------

def check_size(size: Any) -> tuple[int, int]:
    """Validate an ``(H, W)`` size of two positive integers; returns it as a tuple."""
    values = tuple(size)
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0
                                   for v in values):
        raise ValueError(f"size must be two positive integers (height, width), got {values!r}")
    return int(values[0]), int(values[1])


def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each of ``n_out`` output samples: ``floor((i + 0.5) * n_in / n_out)``, the input pixel under
    the output pixel's centre, computed exactly in integers as ``(2i + 1) * n_in // (2 n_out)`` (a centre that
    falls exactly on a border between two input pixels takes the later one)."""
    return (2 * np.arange(n_out, dtype=np.int64) + 1) * int(n_in) // (2 * int(n_out))


def resize_nearest(mask: np.ndarray, size: Any) -> np.ndarray:
    """Resize a mask with nearest-neighbour sampling only, so every output value is a value of the input.

    ``mask: (H, W)`` integers (label ids, category ids, predictions, ...) -> ``(h, w)`` of the same dtype, where
    ``size = (h, w)``; output pixel ``(i, j)`` takes input pixel ``(nearest_indices(H, h)[i],
    nearest_indices(W, w)[j])``. The one mask resize of seglib: prepared copies, the training pipelines
    (:func:`seglib.modelio.resize_mask_tf` computes the same indices) and predictions brought back to full size.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or not (np.issubdtype(mask.dtype, np.integer) or mask.dtype == bool):
        raise ValueError(f"mask must be a 2-D (H, W) integer array, got shape {mask.shape} dtype {mask.dtype}")
    if mask.size == 0:
        raise ValueError("mask is empty; there is nothing to resize")
    height, width = check_size(size)
    return mask[np.ix_(nearest_indices(mask.shape[0], height), nearest_indices(mask.shape[1], width))]


def category_shares(categories: np.ndarray) -> dict[str, float]:
    """``categories: (H, W)`` category ids (IGNORE allowed) -> the fraction of all pixels in each category, by name
    (IGNORE pixels count in the total but in no category)."""
    categories = check_categories(categories)
    counts = np.bincount(categories.ravel(), minlength=256)
    total = max(categories.size, 1)
    return {name: float(counts[i] / total) for i, name in enumerate(labels.CATEGORY_NAMES)}
