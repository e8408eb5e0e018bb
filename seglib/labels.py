"""The Cityscapes label table: the single source of truth for ids, names, categories and colours.

The table is the official one from ``cityscapesscripts/helpers/labels.py`` (tested field by field against
that package). Every lookup below is *derived* from it; no other module repeats these numbers.

Three kinds of integer live in this project and are kept apart by name:

* a **label id** (``Label.id``, 0..33; ``license plate`` is -1 and never appears in a mask),
* a **category id** (``Label.category_id``, 0..7: void, flat, construction, object, nature, sky, human, vehicle),
* :data:`IGNORE` (255): "no target here" - pixels that losses, metrics and plots skip.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "Label", "Category", "LABELS", "CATEGORIES", "IGNORE", "INSTANCE_FACTOR", "NUM_LABEL_IDS", "NUM_CATEGORIES", "NUM_TRAIN_IDS",
    "NAME_TO_LABEL", "ID_TO_LABEL", "CATEGORY_NAMES", "CATEGORY_TO_LABELS", "EVALUATED_CATEGORY_IDS",
    "ID_TO_CATEGORY_LUT", "ID_TO_TRAIN_ID_LUT", "TRAIN_ID_TO_CATEGORY", "LABEL_PALETTE", "CATEGORY_PALETTE", "IGNORE_COLOR",
    "CATEGORY_PALETTE_256", "COLOR_TO_ID",
    "label_from_name",
]


class Label(NamedTuple):
    name: str            # unique name, as written in the polygons json ("car", "traffic sign", ...)
    id: int              # value in *_gtFine_labelIds.png; -1: never drawn (license plate)
    train_id: int        # the official 19-class training id; 255 = not trained on
    category: str        # one of the 8 category names
    category_id: int     # 0..7, the index of the category
    has_instances: bool  # instances are told apart in *_gtFine_instanceIds.png (id * 1000 + k)
    ignore_in_eval: bool # the official evaluator does not score this label
    color: tuple[int, int, int]  # RGB in *_gtFine_color.png


# fmt: off
LABELS: tuple[Label, ...] = (
    #      name                     id  train_id  category        cat_id  has_inst  ignore  color
    Label("unlabeled",              0,  255,      "void",         0,      False,    True,   (  0,   0,   0)),
    Label("ego vehicle",            1,  255,      "void",         0,      False,    True,   (  0,   0,   0)),
    Label("rectification border",   2,  255,      "void",         0,      False,    True,   (  0,   0,   0)),
    Label("out of roi",             3,  255,      "void",         0,      False,    True,   (  0,   0,   0)),
    Label("static",                 4,  255,      "void",         0,      False,    True,   (  0,   0,   0)),
    Label("dynamic",                5,  255,      "void",         0,      False,    True,   (111,  74,   0)),
    Label("ground",                 6,  255,      "void",         0,      False,    True,   ( 81,   0,  81)),
    Label("road",                   7,    0,      "flat",         1,      False,    False,  (128,  64, 128)),
    Label("sidewalk",               8,    1,      "flat",         1,      False,    False,  (244,  35, 232)),
    Label("parking",                9,  255,      "flat",         1,      False,    True,   (250, 170, 160)),
    Label("rail track",            10,  255,      "flat",         1,      False,    True,   (230, 150, 140)),
    Label("building",              11,    2,      "construction", 2,      False,    False,  ( 70,  70,  70)),
    Label("wall",                  12,    3,      "construction", 2,      False,    False,  (102, 102, 156)),
    Label("fence",                 13,    4,      "construction", 2,      False,    False,  (190, 153, 153)),
    Label("guard rail",            14,  255,      "construction", 2,      False,    True,   (180, 165, 180)),
    Label("bridge",                15,  255,      "construction", 2,      False,    True,   (150, 100, 100)),
    Label("tunnel",                16,  255,      "construction", 2,      False,    True,   (150, 120,  90)),
    Label("pole",                  17,    5,      "object",       3,      False,    False,  (153, 153, 153)),
    Label("polegroup",             18,  255,      "object",       3,      False,    True,   (153, 153, 153)),
    Label("traffic light",         19,    6,      "object",       3,      False,    False,  (250, 170,  30)),
    Label("traffic sign",          20,    7,      "object",       3,      False,    False,  (220, 220,   0)),
    Label("vegetation",            21,    8,      "nature",       4,      False,    False,  (107, 142,  35)),
    Label("terrain",               22,    9,      "nature",       4,      False,    False,  (152, 251, 152)),
    Label("sky",                   23,   10,      "sky",          5,      False,    False,  ( 70, 130, 180)),
    Label("person",                24,   11,      "human",        6,      True,     False,  (220,  20,  60)),
    Label("rider",                 25,   12,      "human",        6,      True,     False,  (255,   0,   0)),
    Label("car",                   26,   13,      "vehicle",      7,      True,     False,  (  0,   0, 142)),
    Label("truck",                 27,   14,      "vehicle",      7,      True,     False,  (  0,   0,  70)),
    Label("bus",                   28,   15,      "vehicle",      7,      True,     False,  (  0,  60, 100)),
    Label("caravan",               29,  255,      "vehicle",      7,      True,     True,   (  0,   0,  90)),
    Label("trailer",               30,  255,      "vehicle",      7,      True,     True,   (  0,   0, 110)),
    Label("train",                 31,   16,      "vehicle",      7,      True,     False,  (  0,  80, 100)),
    Label("motorcycle",            32,   17,      "vehicle",      7,      True,     False,  (  0,   0, 230)),
    Label("bicycle",               33,   18,      "vehicle",      7,      True,     False,  (119,  11,  32)),
    Label("license plate",         -1,   -1,      "vehicle",      7,      False,    True,   (  0,   0, 142)),
)
# fmt: on

#: The value that marks "no target" in category masks: skipped by losses, metrics and augmentation fills.
IGNORE: int = 255
#: In ``*_gtFine_instanceIds.png`` instance ``k`` of a label with instances is stored as ``id * INSTANCE_FACTOR + k``.
INSTANCE_FACTOR: int = 1000

# ----------------------------------------------------------------------------------------------------------
# Everything below is derived from LABELS.
# ----------------------------------------------------------------------------------------------------------

#: Labels that can appear in a label-id mask (license plate, id -1, never does).
_DRAWN: tuple[Label, ...] = tuple(label for label in LABELS if label.id >= 0)

NAME_TO_LABEL: dict[str, Label] = {label.name: label for label in LABELS}
ID_TO_LABEL: dict[int, Label] = {label.id: label for label in _DRAWN}

#: Number of label ids (0..33 -> 34).
NUM_LABEL_IDS: int = max(ID_TO_LABEL) + 1
#: Number of official training classes (19).
NUM_TRAIN_IDS: int = len({label.train_id for label in LABELS if 0 <= label.train_id < IGNORE})

#: Category names in category-id order: ("void", "flat", ..., "vehicle").
CATEGORY_NAMES: tuple[str, ...] = tuple(dict.fromkeys(label.category for label in LABELS))
NUM_CATEGORIES: int = len(CATEGORY_NAMES)
CATEGORY_TO_LABELS: dict[str, tuple[Label, ...]] = {
    name: tuple(label for label in LABELS if label.category == name) for name in CATEGORY_NAMES
}


class Category(NamedTuple):
    name: str
    id: int
    color: tuple[int, int, int]  # colour of its first evaluated label (void: "unlabeled")
    evaluated: bool              # has at least one label the official evaluator scores


def _category(category_id: int, name: str) -> Category:
    members = CATEGORY_TO_LABELS[name]
    evaluated = [label for label in members if not label.ignore_in_eval]
    return Category(name, category_id, (evaluated or members)[0].color, bool(evaluated))


CATEGORIES: tuple[Category, ...] = tuple(_category(i, name) for i, name in enumerate(CATEGORY_NAMES))
#: Category ids the official evaluator averages over (flat..vehicle; void has no evaluated label).
EVALUATED_CATEGORY_IDS: tuple[int, ...] = tuple(c.id for c in CATEGORIES if c.evaluated)

#: ``lut[label_id] -> category id``, uint8, length 256; entries past the table hold IGNORE.
ID_TO_CATEGORY_LUT: np.ndarray = np.full(256, IGNORE, dtype=np.uint8)
#: ``lut[label_id] -> train id``, uint8, length 256; 255 for labels not trained on.
ID_TO_TRAIN_ID_LUT: np.ndarray = np.full(256, IGNORE, dtype=np.uint8)
#: ``palette[label_id] -> RGB``, (NUM_LABEL_IDS, 3) uint8.
LABEL_PALETTE: np.ndarray = np.zeros((NUM_LABEL_IDS, 3), dtype=np.uint8)
for _label in _DRAWN:
    ID_TO_CATEGORY_LUT[_label.id] = _label.category_id
    ID_TO_TRAIN_ID_LUT[_label.id] = _label.train_id
    LABEL_PALETTE[_label.id] = _label.color
ID_TO_CATEGORY_LUT.flags.writeable = False
ID_TO_TRAIN_ID_LUT.flags.writeable = False
#: ``TRAIN_ID_TO_CATEGORY[train_id] -> category id`` for the 19 training ids: how the output of a model trained
#: on Cityscapes' training ids (e.g. a published SegFormer) reads as the 8 categories.
TRAIN_ID_TO_CATEGORY: tuple[int, ...] = tuple(
    next(label.category_id for label in LABELS if label.train_id == train_id) for train_id in range(NUM_TRAIN_IDS))
LABEL_PALETTE.flags.writeable = False

#: ``palette[category_id] -> RGB``, (NUM_CATEGORIES, 3) uint8.
CATEGORY_PALETTE: np.ndarray = np.array([c.color for c in CATEGORIES], dtype=np.uint8)
CATEGORY_PALETTE.flags.writeable = False
#: How IGNORE pixels are drawn, in every picture and palette PNG: white, a colour no category uses.
IGNORE_COLOR: tuple[int, int, int] = (255, 255, 255)
#: ``palette[value] -> RGB`` for every uint8 value of a category mask, (256, 3) uint8: the category colours, and
#: IGNORE_COLOR for IGNORE (and for the values no mask holds). Pictures and palette PNGs both use it.
CATEGORY_PALETTE_256: np.ndarray = np.full((256, 3), IGNORE_COLOR, dtype=np.uint8)
CATEGORY_PALETTE_256[:NUM_CATEGORIES] = CATEGORY_PALETTE
CATEGORY_PALETTE_256.flags.writeable = False

#: RGB colour -> label id. Colours are not unique in the official table (ids 0-4 are all black, pole and
#: polegroup share grey, car and license plate share blue): a colour maps to the *first* label id that has it,
#: so the colour format loses the difference between those labels. Categories survive: every shared colour
#: stays within one category.
COLOR_TO_ID: dict[tuple[int, int, int], int] = {}
for _label in _DRAWN:
    COLOR_TO_ID.setdefault(_label.color, _label.id)


def label_from_name(name: str) -> Label:
    """The label for a name as written in a polygons json, resolving a trailing ``group`` as the official
    tools do (``cargroup`` -> car; ``polegroup`` is a label of its own).

    Raises ``ValueError`` naming the unknown label and listing the valid names.
    """
    if not isinstance(name, str):
        raise ValueError(f"a label name must be a string, got {name!r}")
    if name in NAME_TO_LABEL:
        return NAME_TO_LABEL[name]
    if name.endswith("group") and name[: -len("group")] in NAME_TO_LABEL:
        return NAME_TO_LABEL[name[: -len("group")]]
    raise ValueError(
        f"unknown Cityscapes label name {name!r}; valid names are the {len(LABELS)} in seglib.labels.LABELS "
        f"(e.g. {', '.join(repr(label.name) for label in LABELS[7:12])}), optionally with a 'group' suffix"
    )
