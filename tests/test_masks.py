"""seglib.masks: hand-computed cases, and pixel parity with the official cityscapesscripts rasterizer."""

import json

import numpy as np
import pytest
from conftest import official_color, official_instance_ids, official_label_ids
from PIL import Image

from seglib import labels, masks

# -------------------------------------------------------------------------------------------------------------
# Category grouping, train ids, colours, one-hot: hand-computed
# -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("label_ids, expected", [
    ([[0, 7], [26, 23]], [[0, 1], [7, 5]]),
    ([[8, 11, 17, 21]], [[1, 2, 3, 4]]),
    ([[24, 25, 33, 6]], [[6, 6, 7, 0]]),
])
def test_label_ids_to_categories_by_hand(label_ids, expected):
    result = masks.label_ids_to_categories(np.array(label_ids, dtype=np.uint8))
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (7, 1), (2, 2), (0, 4)])
def test_categories_on_odd_and_tiny_shapes(rng, shape):
    label_ids = rng.integers(0, 34, size=shape).astype(np.uint8)
    np.testing.assert_array_equal(masks.label_ids_to_categories(label_ids), labels.ID_TO_CATEGORY_LUT[label_ids])


def test_categories_of_a_non_contiguous_int64_view(rng):
    label_ids = rng.integers(0, 34, size=(20, 30)).astype(np.int64)[::2, 1::3]
    np.testing.assert_array_equal(masks.label_ids_to_categories(label_ids), labels.ID_TO_CATEGORY_LUT[label_ids])


def test_categories_equal_a_per_class_loop(rng):
    label_ids = rng.integers(0, 34, size=(50, 70)).astype(np.uint8)
    expected = np.zeros_like(label_ids)
    for label in labels.LABELS:
        if label.id >= 0:
            expected[label_ids == label.id] = label.category_id
    np.testing.assert_array_equal(masks.label_ids_to_categories(label_ids), expected)
    np.testing.assert_array_equal(masks.label_ids_to_categories_loop(label_ids), expected)


def test_train_ids_by_hand():
    np.testing.assert_array_equal(masks.label_ids_to_train_ids(np.array([[7, 8, 0, 33]])), [[0, 1, 255, 18]])


@pytest.mark.parametrize("bad, message", [
    (np.zeros((4, 4, 3), np.uint8), "2-D"),
    (np.zeros((4, 4), np.float32), "integers"),
    (np.full((4, 4), 40, np.uint8), "label id 40"),
    (np.full((4, 4), -1, np.int16), "label id -1"),
    (np.full((2, 2), 255, np.uint8), "not train ids"),
])
def test_bad_label_ids_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        masks.label_ids_to_categories(bad)


def test_color_round_trip_keeps_categories_and_first_ids():
    all_ids = np.arange(34, dtype=np.uint8).reshape(2, 17)
    back = masks.color_to_label_ids(masks.label_ids_to_color(all_ids))
    expected = np.array([labels.COLOR_TO_ID[labels.ID_TO_LABEL[i].color] for i in range(34)]).reshape(2, 17)
    np.testing.assert_array_equal(back, expected)
    assert back[0, 3] == 0 and back[1, 1] == 17  # "out of roi" -> unlabeled, polegroup -> pole: lossy
    np.testing.assert_array_equal(masks.color_to_categories(masks.label_ids_to_color(all_ids)),
                                  masks.label_ids_to_categories(all_ids))  # categories survive


def test_color_accepts_rgba_and_names_unknown_colours():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = (70, 130, 180)
    np.testing.assert_array_equal(masks.color_to_label_ids(rgba), [[23, 23], [23, 23]])
    rgba[1, 0, :3] = (71, 130, 180)
    with pytest.raises(ValueError, match=r"\(71, 130, 180\) at \(row 1, col 0\)"):
        masks.color_to_label_ids(rgba)


def test_one_hot_by_hand():
    categories = np.array([[0, 2], [255, 1]], dtype=np.uint8)
    one_hot = masks.categories_to_one_hot(categories, num_classes=3)
    np.testing.assert_array_equal(one_hot, [[[1, 0, 0], [0, 0, 1]], [[0, 0, 0], [0, 1, 0]]])
    assert one_hot.dtype == np.float32
    np.testing.assert_array_equal(masks.one_hot_to_categories(one_hot), categories)
    with pytest.raises(ValueError, match="0..2"):
        masks.categories_to_one_hot(np.array([[3]]), num_classes=3)


def test_check_categories():
    with pytest.raises(ValueError, match=r"\[9\]"):
        masks.check_categories(np.array([[1, 9]]))
    with pytest.raises(ValueError, match=r"\[255\]"):
        masks.check_categories(np.array([[255]]), allow_ignore=False)


def test_instance_ids_out_of_range_do_not_wrap():
    with pytest.raises(ValueError, match="label id 4294967"):
        masks.instance_ids_to_label_ids(np.array([[2**32 + 7]], dtype=np.int64))


def test_one_hot_with_too_many_channels():
    with pytest.raises(ValueError, match="C <= 255"):
        masks.one_hot_to_categories(np.zeros((2, 2, 300)))


def test_instance_ids_split_by_hand():
    label_ids, instance = masks.instance_ids_to_label_ids(np.array([[26001, 7], [24000, 0]]))
    np.testing.assert_array_equal(label_ids, [[26, 7], [24, 0]])
    np.testing.assert_array_equal(instance, [[1, -1], [0, -1]])

# -------------------------------------------------------------------------------------------------------------
# Polygons -> label ids: by hand, then against the official tool
# -------------------------------------------------------------------------------------------------------------


def _annotation(objects, height=6, width=8):
    return {"imgHeight": height, "imgWidth": width, "objects": objects}


def test_square_includes_its_edges():
    ids = masks.polygons_to_label_ids(_annotation([{"label": "road", "polygon": [[1, 1], [3, 1], [3, 3], [1, 3]]}]))
    expected = np.zeros((6, 8), np.uint8)
    expected[1:4, 1:4] = 7  # rows and columns 1..3 inclusive: 9 pixels
    np.testing.assert_array_equal(ids, expected)


def test_rules_by_hand():
    objects = [
        {"label": "sky", "polygon": [[-10, -10], [20, -10], [20, 20], [-10, 20]]},  # beyond the image: clipped
        {"label": "cargroup", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]},         # group suffix -> car
        {"label": "polegroup", "polygon": [[6, 0], [7, 0], [7, 1], [6, 1]]},        # a label of its own
        {"label": "license plate", "polygon": [[0, 0], [7, 0], [7, 5], [0, 5]]},    # never drawn
        {"label": "person", "polygon": [[3, 3], [4, 3], [4, 4], [3, 4]], "deleted": 1},  # skipped
    ]
    ids = masks.polygons_to_label_ids(_annotation(objects))
    expected = np.full((6, 8), 23, np.uint8)
    expected[0:2, 0:2] = 26
    expected[0:2, 6:8] = 18
    np.testing.assert_array_equal(ids, expected)


def test_objects_that_are_never_drawn_may_be_degenerate_as_officially():
    polygons = _annotation([{"label": "car", "polygon": [[3, 3]], "deleted": 1},
                            {"label": "license plate", "polygon": []},
                            {"label": "road", "polygon": [[0, 0], [2, 0], [2, 2]]}])
    np.testing.assert_array_equal(masks.polygons_to_label_ids(polygons), official_label_ids(polygons))
    np.testing.assert_array_equal(masks.polygons_to_instance_ids(polygons), official_instance_ids(polygons))


def test_later_objects_are_on_top_and_background_is_unlabeled():
    objects = [{"label": "road", "polygon": [[0, 0], [4, 0], [4, 4], [0, 4]]},
               {"label": "car", "polygon": [[2, 2], [6, 2], [6, 4], [2, 4]]}]
    ids = masks.polygons_to_label_ids(_annotation(objects))
    assert ids[1, 1] == 7 and ids[3, 3] == 26 and ids[5, 7] == 0


def _random_polygons(rng, height, width):
    """Random annotations exercising every official rule: order, deleted, group suffixes, polegroup, license
    plates, vertices far outside the image, float vertices, thin and degenerate shapes."""
    names = [label.name for label in labels.LABELS] + ["cargroup", "persongroup", "bicyclegroup", "ridergroup"]
    objects = []
    for _ in range(rng.integers(1, 25)):
        n = rng.integers(2, 9)
        xs = rng.integers(-width // 2, width * 3 // 2, n)
        ys = rng.integers(-height // 2, height * 3 // 2, n)
        points = [[int(x), int(y)] for x, y in zip(xs, ys)]
        if rng.random() < 0.2:
            points = [[float(x) + 0.37, float(y) - 0.61] for x, y in points]
        obj = {"label": str(rng.choice(names)), "polygon": points}
        if rng.random() < 0.1:
            obj["deleted"] = 1
        if (obj.get("deleted") or obj["label"] == "license plate") and rng.random() < 0.3:
            obj["polygon"] = points[:1] if rng.random() < 0.5 else []  # never drawn, so never checked
        objects.append(obj)
    return _annotation(objects, height, width)


@pytest.mark.parametrize("seed", range(60))
def test_polygons_match_official_json2labelImg(seed):
    rng = np.random.default_rng(seed)
    polygons = _random_polygons(rng, int(rng.integers(5, 90)), int(rng.integers(5, 160)))
    expected = official_label_ids(polygons)
    np.testing.assert_array_equal(masks.polygons_to_label_ids(polygons), expected)


@pytest.mark.parametrize("seed", range(30))
def test_instances_match_official_json2instanceImg(seed):
    rng = np.random.default_rng(1000 + seed)
    polygons = _random_polygons(rng, 40, 64)
    np.testing.assert_array_equal(masks.polygons_to_instance_ids(polygons), official_instance_ids(polygons))


@pytest.mark.parametrize("seed", range(15))
def test_color_matches_official_color_image(seed):
    rng = np.random.default_rng(2000 + seed)
    polygons = _random_polygons(rng, 30, 50)
    official = official_color(polygons)
    ours = masks.label_ids_to_color(masks.polygons_to_label_ids(polygons))
    np.testing.assert_array_equal(ours, official[..., :3])
    assert (official[..., 3] == 255).all()


def test_polygons_from_path_and_text_agree(tmp_path, rng):
    polygons = _random_polygons(rng, 30, 40)
    path = tmp_path / "x_gtFine_polygons.json"
    masks.write_polygons(path, polygons)
    from_path = masks.polygons_to_label_ids(path)
    np.testing.assert_array_equal(from_path, masks.polygons_to_label_ids(str(path)))
    np.testing.assert_array_equal(from_path, masks.polygons_to_label_ids(path.read_text()))
    np.testing.assert_array_equal(from_path, official_label_ids(polygons))


@pytest.mark.parametrize("polygons, message", [
    ('{"imgHeight": 4, "imgWidth": 4, "objects": [', "malformed JSON"),
    ({"imgWidth": 4, "objects": []}, "'imgHeight' must be a positive integer"),
    ({"imgHeight": 4, "imgWidth": 0, "objects": []}, "'imgWidth' must be a positive integer"),
    ({"imgHeight": 4, "imgWidth": 4, "objects": {}}, "'objects' must be a list"),
    ({"imgHeight": 4, "imgWidth": 4, "objects": [{"polygon": [[0, 0], [1, 1]]}]}, r"objects\[0\] must be"),
    ({"imgHeight": 4, "imgWidth": 4, "objects": [{"label": "car", "polygon": [[0, 0]]}]}, "at least two"),
    ({"imgHeight": 4, "imgWidth": 4, "objects": [{"label": "car", "polygon": [[0, "a"], [1, 1]]}]}, "number pair"),
    ({"imgHeight": 4, "imgWidth": 4, "objects": [{"label": "spaceship", "polygon": [[0, 0], [1, 1]]}]}, "'spaceship'"),
])
def test_bad_polygons_are_named(polygons, message):
    with pytest.raises(ValueError, match=message):
        masks.polygons_to_label_ids(polygons)


def test_sizes_are_read_as_the_official_int_does():
    polygons = {"imgHeight": "3", "imgWidth": 4.0, "objects": [{"label": "sky", "polygon": [[0, 0], [3, 0]]}]}
    np.testing.assert_array_equal(masks.polygons_to_label_ids(polygons), official_label_ids(polygons))
    with pytest.raises(ValueError, match="'imgWidth' must be a positive integer, got 4.5"):
        masks.polygons_to_label_ids({"imgHeight": 3, "imgWidth": 4.5, "objects": []})


def test_json_text_that_is_not_an_object():
    with pytest.raises(ValueError, match="expected a JSON object"):
        masks.polygons_to_label_ids("[1, 2]")


def test_bad_points_in_a_drawn_polygon_name_the_object():
    polygons = {"imgHeight": 4, "imgWidth": 4, "objects": [
        {"label": "road", "polygon": [[0, 0], [3, 0], [3, 3]]},
        {"label": "car", "polygon": [[0, 0], [1, 2, 3], [2, 2]]}]}
    with pytest.raises(ValueError, match=r"objects\[1\] \('car'\).*number pairs"):
        masks.polygons_to_label_ids(polygons)
    with pytest.raises(ValueError, match=r"objects\[1\] \('car'\)"):
        masks.write_polygons("/nonexistent/never-written.json", polygons)  # writing checks every point first


def test_missing_polygons_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere_gtFine_polygons.json"):
        masks.polygons_to_label_ids(tmp_path / "nothere_gtFine_polygons.json")

# -------------------------------------------------------------------------------------------------------------
# Files: round trips and bad files
# -------------------------------------------------------------------------------------------------------------


def test_png_round_trips(tmp_path, rng):
    polygons = _random_polygons(rng, 20, 30)
    label_ids = masks.polygons_to_label_ids(polygons)
    instance_ids = masks.polygons_to_instance_ids(polygons)
    masks.write_label_ids(tmp_path / "l.png", label_ids)
    masks.write_color(tmp_path / "c.png", label_ids)
    masks.write_instance_ids(tmp_path / "i.png", instance_ids)
    np.testing.assert_array_equal(masks.read_label_ids(tmp_path / "l.png"), label_ids)
    assert Image.open(tmp_path / "c.png").mode == "RGBA"
    np.testing.assert_array_equal(masks.read_color(tmp_path / "c.png"), masks.label_ids_to_color(label_ids))
    assert Image.open(tmp_path / "i.png").mode.startswith("I")
    np.testing.assert_array_equal(masks.read_instance_ids(tmp_path / "i.png"), instance_ids)
    split_ids, _ = masks.instance_ids_to_label_ids(instance_ids)
    np.testing.assert_array_equal(split_ids, label_ids)


def test_bad_files_are_named(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match="mode 'RGB'"):
        masks.read_label_ids(tmp_path / "rgb.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ValueError, match="cannot decode image .*broken.png"):
        masks.read_label_ids(tmp_path / "broken.png")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        masks.read_color(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="16-bit"):
        masks.write_instance_ids(tmp_path / "big.png", np.full((2, 2), 70000))

# -------------------------------------------------------------------------------------------------------------
# Annotation-tool XML
# -------------------------------------------------------------------------------------------------------------

VOC_XML = """<annotation><filename>a.png</filename><size><width>8</width><height>6</height><depth>3</depth></size>
<object><name>road</name><polygon><x1>0</x1><y1>3</y1><x2>7</x2><y2>3</y2><x3>7</x3><y3>5</y3><x4>0</x4><y4>5</y4>
</polygon></object>
<object><name>car</name><deleted>1</deleted><polygon><x1>0</x1><y1>0</y1><x2>7</x2><y2>0</y2><x3>7</x3><y3>5</y3>
</polygon></object>
<object><name>pedestrian</name><polygon><x1>2</x1><y1>2</y1><x2>3</x2><y2>2</y2><x3>3</x3><y3>4</y3><x4>2</x4><y4>4</y4>
</polygon></object></annotation>"""

LABELME_XML = """<annotation><imagesize><nrows>6</nrows><ncols>8</ncols></imagesize>
<object><name>road</name><deleted>0</deleted><polygon><pt><x>0</x><y>3</y></pt><pt><x>7</x><y>3</y></pt>
<pt><x>7</x><y>5</y></pt><pt><x>0</x><y>5</y></pt></polygon></object>
<object><name>person</name><polygon><pt><x>2</x><y>2</y></pt><pt><x>3</x><y>2</y></pt><pt><x>3</x><y>4</y></pt>
<pt><x>2</x><y>4</y></pt></polygon></object></annotation>"""


def _expected_xml_mask():
    expected = np.zeros((6, 8), np.uint8)
    expected[3:6, :] = 7       # road rows 3..5
    expected[2:5, 2:4] = 24    # person on top, rows 2..4, cols 2..3
    return expected


def test_voc_and_labelme_xml_by_hand():
    voc = masks.voc_xml_to_polygons(VOC_XML, label_map={"pedestrian": "person"})
    np.testing.assert_array_equal(masks.polygons_to_label_ids(voc), _expected_xml_mask())
    labelme = masks.voc_xml_to_polygons(LABELME_XML)
    np.testing.assert_array_equal(masks.polygons_to_label_ids(labelme), _expected_xml_mask())


def test_xml_round_trip(rng, tmp_path):
    polygons = _random_polygons(rng, 30, 40)
    path = tmp_path / "a.xml"
    path.write_text(masks.polygons_to_voc_xml(polygons, "a.png"))
    back = masks.voc_xml_to_polygons(path)
    np.testing.assert_array_equal(masks.polygons_to_label_ids(back), official_label_ids(polygons))


@pytest.mark.parametrize("xml, message", [
    ("<annotation><size><width>4</width></size></annotation>", "<height>"),
    ("<annotation><object>", "malformed XML"),
    ("<annotation></annotation>", "no <size>"),
    ("<annotation><size><width>4</width><height>4</height></size><object><name>car</name></object></annotation>",
     "no <polygon>"),
    ("<annotation><size><width>4</width><height>4</height></size><object><name>ufo</name><polygon/></object>"
     "</annotation>", "'ufo'"),
    ("<annotation><size><width>inf</width><height>4</height></size></annotation>", "<width> must be finite"),
    ("<annotation><size><width>4</width><height>4</height></size><object><name>car</name><polygon><x1>a</x1>"
     "<y1>0</y1><x2>1</x2><y2>1</y2></polygon></object></annotation>", r"x of point 1 .*'a'"),
    ("<annotation><size><width>4</width><height>4</height></size><object><name>car</name><polygon><x1>1</x1>"
     "<y1>0</y1></polygon></object></annotation>", "at least two points"),
])
def test_bad_xml_is_named(xml, message):
    with pytest.raises(ValueError, match=message):
        masks.voc_xml_to_polygons(xml)
