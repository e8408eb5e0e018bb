"""seglib.labels against the official cityscapesscripts table, and its derived lookups by hand."""

import numpy as np
import pytest
from cityscapesscripts.helpers import labels as official

from seglib import labels


def test_table_matches_official_field_by_field():
    ours = [(l.name, l.id, l.train_id, l.category, l.category_id, l.has_instances, l.ignore_in_eval, l.color)
            for l in labels.LABELS]
    theirs = [(l.name, l.id, l.trainId, l.category, l.categoryId, l.hasInstances, l.ignoreInEval, l.color)
              for l in official.labels]
    assert ours == theirs


def test_counts():
    assert (labels.NUM_LABEL_IDS, labels.NUM_TRAIN_IDS, labels.NUM_CATEGORIES) == (34, 19, 8)
    assert labels.CATEGORY_NAMES == ("void", "flat", "construction", "object", "nature", "sky", "human", "vehicle")


@pytest.mark.parametrize("label_id, category_id", [(0, 0), (6, 0), (7, 1), (10, 1), (11, 2), (16, 2), (17, 3),
                                                   (20, 3), (21, 4), (22, 4), (23, 5), (24, 6), (25, 6), (26, 7),
                                                   (33, 7)])
def test_category_lut_by_hand(label_id, category_id):
    assert labels.ID_TO_CATEGORY_LUT[label_id] == category_id


def test_category_lut_matches_official_and_rejects_unknown_ids():
    for label in official.labels:
        if label.id >= 0:
            assert labels.ID_TO_CATEGORY_LUT[label.id] == label.categoryId
            assert labels.ID_TO_TRAIN_ID_LUT[label.id] == label.trainId
    assert (labels.ID_TO_CATEGORY_LUT[34:] == labels.IGNORE).all()


def test_ignore_is_the_official_ignored_train_id():
    assert labels.IGNORE == official.name2label["unlabeled"].trainId == 255


def test_evaluated_categories_are_the_seven_without_void():
    # FACTS: void (ids 0-6) has no evaluated label; the other 7 each have at least one.
    expected = sorted({l.categoryId for l in official.labels if not l.ignoreInEval})
    assert list(labels.EVALUATED_CATEGORY_IDS) == expected == [1, 2, 3, 4, 5, 6, 7]


def test_category_colours_come_from_their_first_evaluated_label():
    assert labels.CATEGORIES[1].color == official.name2label["road"].color
    assert labels.CATEGORIES[7].color == official.name2label["car"].color
    assert labels.CATEGORIES[0].color == official.name2label["unlabeled"].color


def test_shared_colours_map_to_the_first_label():
    assert labels.COLOR_TO_ID[(0, 0, 0)] == 0
    assert labels.COLOR_TO_ID[(153, 153, 153)] == 17
    assert labels.COLOR_TO_ID[(0, 0, 142)] == 26
    assert len(labels.COLOR_TO_ID) == 34 - 5  # ids 1-4 and polegroup share an earlier label's colour


def test_palettes():
    assert labels.LABEL_PALETTE.shape == (34, 3) and labels.LABEL_PALETTE.dtype == np.uint8
    assert tuple(labels.LABEL_PALETTE[23]) == (70, 130, 180)
    assert labels.CATEGORY_PALETTE.shape == (8, 3)


@pytest.mark.parametrize("name, expected", [("car", "car"), ("cargroup", "car"), ("polegroup", "polegroup"),
                                            ("persongroup", "person"), ("license plate", "license plate")])
def test_label_from_name(name, expected):
    assert labels.label_from_name(name).name == expected


def test_label_from_unknown_name_names_it():
    with pytest.raises(ValueError, match="'spaceship'"):
        labels.label_from_name("spaceship")
    with pytest.raises(ValueError, match="'spaceshipgroup'"):
        labels.label_from_name("spaceshipgroup")


def test_label_from_name_needs_a_string():
    with pytest.raises(ValueError, match="must be a string, got 5"):
        labels.label_from_name(5)


def test_lookups_are_read_only():
    with pytest.raises(ValueError):
        labels.ID_TO_CATEGORY_LUT[7] = 3
