"""The checks of chapters 0, 1, 3 and 4 catch plausible wrong answers and say what is wrong: a wrong dtype, an
off-by-one, IGNORE mishandled, a loop where one array operation was asked for."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from seglib import labels, masks, modelio

from _exercise_checks import fails as _fails

pytestmark = pytest.mark.exercise


# ---------------------------------------------------------------------------------------------------------
# 00.1 a frame's paths, 00.2 instances per category
# ---------------------------------------------------------------------------------------------------------

def _paths(root, split, stem, city=None, polygons="json"):
    city = city or stem.rsplit("_", 2)[0]
    paths = {"image": Path(root) / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png"}
    for kind in ("color", "labelIds", "instanceIds", "polygons"):
        extension = polygons if kind == "polygons" else "png"
        paths[kind] = Path(root) / "gtFine" / split / city / f"{stem}_gtFine_{kind}.{extension}"
    return paths


def test_00_1_names_the_wrong_path():
    _fails("00.1", lambda root, split, stem: _paths(root, split, stem, city=stem.split("_")[0]),
           r"bad_honnef.*'image' path is '/data/generated/leftImg8bit/test/bad/")
    _fails("00.1", lambda root, split, stem: _paths(root, split, stem, polygons="png"),
           r"'polygons' path is .*_gtFine_polygons\.png', expected .*_gtFine_polygons\.json'")
    _fails("00.1", lambda root, split, stem: {key: value for key, value in _paths(root, split, stem).items()
                                              if key != "instanceIds"},
           r"your dict has no 'instanceIds'")
    _fails("00.1", lambda root, split, stem: list(_paths(root, split, stem).values()),
           r"should return a dict, got list")


def test_00_2_says_pixels_groups_and_dtype():
    def pixels(instance_ids):  # every object pixel counted
        objects = instance_ids[instance_ids >= 1000]
        return np.bincount(labels.ID_TO_CATEGORY_LUT[objects // 1000], minlength=8).astype(np.int64)

    def with_groups(instance_ids):  # the cargroup's plain 26 counted as one more car
        values = np.unique(instance_ids)
        ids = np.where(values >= 1000, values // 1000, values)
        has = np.array([labels.ID_TO_LABEL[int(i)].has_instances for i in ids], dtype=bool)
        return np.bincount(labels.ID_TO_CATEGORY_LUT[ids[has]], minlength=8).astype(np.int64)

    def by_k(instance_ids):  # objects told apart by k alone: a car and a bicycle with the same k merge
        objects = instance_ids[instance_ids >= 1000]
        counts = np.zeros(8, dtype=np.int64)
        for category in range(8):
            counts[category] = len(np.unique(objects[labels.ID_TO_CATEGORY_LUT[objects // 1000] == category] % 1000))
        return counts

    _fails("00.2", pixels, r"you counted the pixels of instances, not the instances")
    _fails("00.2", with_groups, r"plain label id \(below 1000, such as 26 for a cargroup\)")
    _fails("00.2", by_k, r"the counts of a 3x4 instanceIds by hand .* differs at 1 of 8 elements; the first is at "
                         r"\(7,\): 3, expected 4 \(index = category id: void, flat")
    _fails("00.2", lambda ids: np.bincount(labels.ID_TO_CATEGORY_LUT[np.unique(ids[ids >= 1000]) // 1000],
                                           minlength=8).astype(np.int32), r"dtype int32, expected int64")
    _fails("00.2", lambda ids: np.bincount(labels.ID_TO_CATEGORY_LUT[np.unique(ids[ids >= 1000]) // 1000],
                                           minlength=8)[:7].astype(np.int64), r"shape \(7,\), expected \(8,\)")


# ---------------------------------------------------------------------------------------------------------
# 01.1 colour -> label ids, 01.2 one-hot with IGNORE
# ---------------------------------------------------------------------------------------------------------

def _color_table(first: bool = True) -> dict:
    table = {}
    for label in labels.LABELS:
        if label.id >= 0:
            if first:
                table.setdefault(label.color, label.id)
            else:
                table[label.color] = label.id
    return table


def _lookup(color, table):
    keys = np.array([r * 65536 + g * 256 + b for r, g, b in table], dtype=np.int64)
    ids = np.array(list(table.values()), dtype=np.uint8)
    order = np.argsort(keys)
    rgb = color.astype(np.int64)
    pixels = rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2]
    index = np.clip(np.searchsorted(keys[order], pixels), 0, len(keys) - 1)
    if (keys[order][index] != pixels).any():
        raise ValueError("unknown colour")
    return ids[order][index]


def test_01_1_says_shared_colours_unknown_colours_and_loops():
    _fails("01.1", lambda color: _lookup(color, _color_table(first=False)),
           r"several labels share.*got the last of them.*'static', expected 'unlabeled'")
    _fails("01.1", lambda color: _lookup(color, _color_table()).astype(np.int64), r"dtype int64, expected uint8")

    def guesses(color):  # unknown colours silently become 0
        table = _color_table()
        return np.array([[table.get(tuple(int(v) for v in pixel), 0) for pixel in row] for row in color], np.uint8)

    _fails("01.1", guesses, r"no label has, \(1, 2, 3\) at \(1, 2\), gave 0 instead of raising ValueError")

    def key_error(color):  # a plain dict lookup raises KeyError
        table = _color_table()
        return np.array([[table[tuple(int(v) for v in pixel)] for pixel in row] for row in color], np.uint8)

    _fails("01.1", key_error, r"raised KeyError.*raise ValueError")

    def loop_checked(color):
        table = _color_table()
        out = np.empty(color.shape[:2], np.uint8)
        for y in range(color.shape[0]):
            for x in range(color.shape[1]):
                key = (int(color[y, x, 0]), int(color[y, x, 1]), int(color[y, x, 2]))
                if key not in table:
                    raise ValueError(f"unknown colour {key}")
                out[y, x] = table[key]
        return out

    _fails("01.1", loop_checked, r"takes \d+ ms against \d+ ms for seglib: a loop over the pixels")


def test_01_2_says_ignore_dtype_and_classes():
    def index_eye(categories, num_classes=8):  # IGNORE indexes past the identity matrix
        return np.eye(num_classes, dtype=np.float32)[categories]

    def clipped(categories, num_classes=8):  # IGNORE clipped into the last class
        return np.eye(num_classes, dtype=np.float32)[np.minimum(categories, num_classes - 1)]

    def float64(categories, num_classes=8):
        rows = np.vstack([np.eye(num_classes), np.zeros((1, num_classes))])
        return rows[np.where(categories == 255, num_classes, categories)]

    def always_eight(categories, num_classes=8):
        rows = np.vstack([np.eye(8, dtype=np.float32), np.zeros((1, 8), np.float32)])
        return rows[np.where(categories == 255, 8, categories)]

    _fails("01.2", index_eye, r"raised IndexError .*IGNORE \(255\) is no class")
    _fails("01.2", clipped, r"IGNORE \(255\) handled wrongly .* must be all zeros")
    _fails("01.2", float64, r"dtype float64, expected float32")
    _fails("01.2", always_eight, r"shape \(2, 3, 8\), expected \(2, 3, 2\) \(one channel per class")


# ---------------------------------------------------------------------------------------------------------
# 03.1 drawing polygons, 03.2 pixels owned
# ---------------------------------------------------------------------------------------------------------

def _draw(annotation, skip_deleted=True, skip_plates=True, reverse=False, shape_swap=False, fill=True):
    width, height = annotation["imgWidth"], annotation["imgHeight"]
    image = Image.new("L", (height, width) if shape_swap else (width, height), 0)
    draw = ImageDraw.Draw(image)
    objects = annotation["objects"][::-1] if reverse else annotation["objects"]
    for obj in objects:
        label = labels.label_from_name(obj["label"])
        if (skip_deleted and obj.get("deleted")) or (skip_plates and label.id < 0):
            continue
        points = [tuple(point) for point in obj["polygon"]]
        if fill:
            draw.polygon(points, fill=label.id)
        else:  # the interior only: edge pixels left out
            draw.polygon(points, fill=label.id)
            draw.line(points + points[:1], fill=0)
    return np.asarray(image)


def test_03_1_names_the_rule_broken():
    _fails("03.1", lambda a: _draw(a, reverse=True), r"the mask of two overlapping boxes \(the object listed later")
    _fails("03.1", lambda a: _draw(a, skip_deleted=False), r"the mask of a deleted object \(skip it\) differs at")
    _fails("03.1", lambda a: _draw(a, skip_plates=False),
           r"the mask of a license plate on a car \(never drawn: the car stays\) differs at .*: 0, expected 26")
    _fails("03.1", lambda a: _draw(a, fill=False), r"edge pixels belong to the polygon.* differs at")
    _fails("03.1", lambda a: _draw(a, shape_swap=True), r"has shape \(8, 5\), expected \(5, 8\)")
    _fails("03.1", lambda a: _draw(a).astype(np.int32), r"dtype int32, expected uint8")


def _owned(annotation, alone=False, reverse=False, dtype=np.int64):
    objects = annotation["objects"]
    counts = np.zeros(len(objects), dtype=np.int64)
    if alone:
        for index, obj in enumerate(objects):
            single = dict(annotation, objects=[obj])
            counts[index] = np.count_nonzero(_draw(single))
        return counts.astype(dtype)
    image = Image.new("I", (annotation["imgWidth"], annotation["imgHeight"]), 0)
    draw = ImageDraw.Draw(image)
    order = list(enumerate(objects, start=1))
    for position, obj in (order[::-1] if reverse else order):
        if not obj.get("deleted") and labels.label_from_name(obj["label"]).id >= 0:
            draw.polygon([tuple(point) for point in obj["polygon"]], fill=position)
    return np.bincount(np.asarray(image).ravel(), minlength=len(objects) + 1)[1:].astype(dtype)


def test_03_2_says_areas_order_and_dtype():
    _fails("03.2", lambda a: _owned(a, alone=True),
           r"you counted each polygon's own area.*yours \[9, 9\], expected \[5, 9\]")
    _fails("03.2", lambda a: _owned(a, reverse=True), r"the earlier object stays on top.*later object wins")
    _fails("03.2", lambda a: _owned(a, dtype=np.int32), r"dtype int32, expected int64")
    _fails("03.2", lambda a: _owned(a)[:-1], r"has shape \(1,\), expected \(2,\)")


# ---------------------------------------------------------------------------------------------------------
# 04.1 nearest-neighbour resize, 04.2 one example from PNG bytes
# ---------------------------------------------------------------------------------------------------------

def _indices(n_in, n_out, rule):
    i = np.arange(n_out)
    if rule == "top-left":
        return i * n_in // n_out
    if rule == "round":
        return np.minimum(np.round((i + 0.5) * n_in / n_out).astype(np.int64), n_in - 1)
    return (2 * i + 1) * n_in // (2 * n_out)


def test_04_1_says_off_by_half_averaging_dtype_and_loops():
    def nearest(mask, size, rule="centre"):
        return mask[_indices(mask.shape[0], size[0], rule)[:, None], _indices(mask.shape[1], size[1], rule)]

    def bilinear(mask, size):  # Pillow's bilinear filter: averages neighbouring ids
        return np.asarray(Image.fromarray(mask.astype(np.uint8)).resize(size[::-1], Image.BILINEAR)).astype(mask.dtype)

    def loop(mask, size):
        rows, columns = _indices(mask.shape[0], size[0], "centre"), _indices(mask.shape[1], size[1], "centre")
        out = np.empty(size, dtype=mask.dtype)
        for i in range(size[0]):
            for j in range(size[1]):
                out[i, j] = mask[rows[i], columns[j]]
        return out

    _fails("04.1", lambda mask, size: nearest(mask, size, "top-left"),
           r"your result for a 2x3 mask with IGNORE \(255\) pixels enlarged to 5x7 \(a centre on a border takes the "
           r"later pixel\) differs at 9 of 35 elements; the first is at \(2, 0\): 1, expected 7")
    _fails("04.1", lambda mask, size: nearest(mask, size, "round"), r"differs at .* elements; the first is at")
    _fails("04.1", bilinear, r"a value the input does not hold.*(IGNORE|averaging resize invents classes)")
    _fails("04.1", lambda mask, size: nearest(mask, size).astype(np.uint8),
           r"int32 mask .* dtype uint8, expected int32")
    _fails("04.1", loop, r"takes \d+ ms against [\d.]+ ms for one indexing operation: a loop over the pixels")


def _example(image_png, label_png, size, group=True, scale=True, swap=False, pil_image=False, bilinear_mask=False):
    image = np.asarray(Image.open(io.BytesIO(image_png)).convert("RGB"))
    label_ids = np.asarray(Image.open(io.BytesIO(label_png)))
    mask = labels.ID_TO_CATEGORY_LUT[label_ids] if group else label_ids
    target = size[::-1] if swap else size
    if pil_image:
        resized = np.asarray(Image.fromarray(image).resize(size[::-1], Image.BILINEAR))
    else:
        resized = modelio.resize_image(image, target)
    if bilinear_mask:
        mask = np.asarray(Image.fromarray(mask).resize(size[::-1], Image.BILINEAR))
    else:
        mask = masks.resize_nearest(mask, target)
    return (modelio.to_model_input(resized) if scale else resized), mask


def test_04_2_says_grouping_scaling_size_order_and_filter():
    _fails("04.2", lambda i, l, s: _example(i, l, s, group=False), r"holds \d+, a label id: group the label ids")
    _fails("04.2", lambda i, l, s: _example(i, l, s, scale=False), r"image of .* has dtype uint8, expected float32")
    _fails("04.2", lambda i, l, s: (_example(i, l, s, scale=False)[0].astype(np.float32), _example(i, l, s)[1]),
           r"reaches \d+: scale it to \[0, 1\]")
    _fails("04.2", lambda i, l, s: _example(i, l, s, swap=True),
           r"shape \(16, 12, 3\), expected \(12, 16, 3\): size is \(height, width\)")
    _fails("04.2", lambda i, l, s: _example(i, l, s, pil_image=True),
           r"image of .* differs at .* modelio\.resize_image")
    _fails("04.2", lambda i, l, s: _example(i, l, s, bilinear_mask=True), r"the mask of .* differs at")
    _fails("04.2", lambda i, l, s: [*_example(i, l, s)], r"should return a tuple \(image, mask\), got list")
