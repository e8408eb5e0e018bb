"""seglib.cityscapes (the folder layout, dataset choice) and seglib.profiles."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seglib import cityscapes, datasets, profiles


def test_frame_paths_follow_the_cityscapes_layout():
    frame = cityscapes.Frame(Path("/data"), "val", "frankfurt", 1, 19)
    assert frame.stem == "frankfurt_000001_000019"
    assert frame.image_path == Path("/data/leftImg8bit/val/frankfurt/frankfurt_000001_000019_leftImg8bit.png")
    assert frame.gt_path("labelIds") == Path("/data/gtFine/val/frankfurt/frankfurt_000001_000019_gtFine_labelIds.png")
    assert frame.gt_path("polygons").name == "frankfurt_000001_000019_gtFine_polygons.json"
    with pytest.raises(ValueError, match="'depth'"):
        frame.gt_path("depth")


def test_parse_image_name():
    frame = cityscapes.parse_image_name("/r", "train", "aachen_000012_000019_leftImg8bit.png")
    assert (frame.city, frame.seq, frame.frame) == ("aachen", 12, 19)
    with pytest.raises(ValueError, match="not a Cityscapes image name"):
        cityscapes.parse_image_name("/r", "train", "aachen_12_19_leftImg8bit.png")


def _touch_frame(root: Path, split: str, name: str) -> None:
    folder = root / "leftImg8bit" / split / name.split("_")[0]
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 2), (10, 20, 30)).save(folder / name)


def test_list_frames_sorted(tmp_path):
    _touch_frame(tmp_path, "val", "bcity_000002_000019_leftImg8bit.png")
    _touch_frame(tmp_path, "val", "acity_000001_000019_leftImg8bit.png")
    _touch_frame(tmp_path, "val", "acity_000000_000019_leftImg8bit.png")
    frames = cityscapes.list_frames(tmp_path, "val")
    assert [f.stem for f in frames] == ["acity_000000_000019", "acity_000001_000019", "bcity_000002_000019"]
    np.testing.assert_array_equal(cityscapes.read_image(frames[0].image_path)[0, 0], [10, 20, 30])


def test_missing_and_empty_dataset_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="leftImg8bit/val"):
        cityscapes.list_frames(tmp_path, "val")
    (tmp_path / "leftImg8bit" / "val" / "city").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no \\*_leftImg8bit.png files"):
        cityscapes.list_frames(tmp_path, "val")
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        cityscapes.list_frames(tmp_path, "dev")


def test_cityscapes_dataset_variable_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv(cityscapes.CITYSCAPES_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="missing leftImg8bit and gtFine"):
        datasets.dataset_root()
    (tmp_path / "leftImg8bit").mkdir()
    (tmp_path / "gtFine").mkdir()
    assert datasets.dataset_root() == tmp_path


def test_read_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        cityscapes.read_image(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"GIF89a")
    with pytest.raises(ValueError, match="bad.png"):
        cityscapes.read_image(tmp_path / "bad.png")


def test_profiles(monkeypatch):
    monkeypatch.delenv(profiles.PROFILE_ENV, raising=False)
    assert profiles.get_profile().name == "ci"
    monkeypatch.setenv(profiles.PROFILE_ENV, "colab")
    assert profiles.get_profile().name == "colab"
    assert profiles.get_profile("full").synthetic_size == (1024, 2048)
    monkeypatch.setenv(profiles.PROFILE_ENV, "huge")
    with pytest.raises(ValueError, match="'huge'.*ci, reference, colab, full"):
        profiles.get_profile()
    reference, ci = profiles.get_profile("reference"), profiles.get_profile("ci")
    # the reference run is the ci experiments with a larger budget: same data and input, more epochs and seeds
    assert (reference.synthetic_size, reference.synthetic_counts, reference.image_size) == (
        ci.synthetic_size, ci.synthetic_counts, ci.image_size)
    assert reference.epochs > ci.epochs and reference.seeds == reference.comparison_seeds == 3 and ci.seeds >= 2
