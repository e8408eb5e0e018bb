"""Shared fixtures: seeded generators, and helpers that call the official cityscapesscripts tools; and the hooks
that let the tests reuse the book build's notebook executions (``SEGLIB_BOOK_EXECUTED``, see _book_cache.py)."""

import json

import numpy as np
import pytest
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
from cityscapesscripts.preparation.json2labelImg import createLabelImage

import _book_cache


def pytest_collection_modifyitems(config, items):
    # a conftest's collection hook sees every item of the session, the notebooks under book/ included
    _book_cache.collection_modifyitems(config, items)


def pytest_runtest_setup(item):
    if item.get_closest_marker("tensorflow_only"):
        import keras

        if keras.backend.backend() != "tensorflow":
            pytest.skip(f"checks TensorFlow itself; Keras runs on {keras.backend.backend()!r}")


def pytest_terminal_summary(terminalreporter):
    _book_cache.terminal_summary(terminalreporter)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261121)


def _official_annotation(polygons: dict) -> Annotation:
    annotation = Annotation()
    annotation.fromJsonText(json.dumps(polygons))
    return annotation


def official_label_ids(polygons: dict) -> np.ndarray:
    """The official json2labelImg(..., "ids") output as an array."""
    return np.asarray(createLabelImage(_official_annotation(polygons), "ids"))


def official_color(polygons: dict) -> np.ndarray:
    """The official json2labelImg(..., "color") output (RGBA) as an array."""
    return np.asarray(createLabelImage(_official_annotation(polygons), "color"))


def official_instance_ids(polygons: dict) -> np.ndarray:
    """The official json2instanceImg(..., "ids") output as an array."""
    return np.asarray(createInstanceImage(_official_annotation(polygons), "ids"), dtype=np.int32)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """A generated Cityscapes-layout dataset of 64x128 frames: 5 train, 2 val, 1 test."""
    from seglib import synthetic

    root = tmp_path_factory.mktemp("data") / "synthetic"
    synthetic.ensure_dataset(root, (64, 128), {"train": 5, "val": 2, "test": 1})
    return root


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    """A small untrained 8-category U-Net (128x256 input, seeded weights) saved as ``.keras``: for tests of the
    serving path, where the mask only has to be the same everywhere, not good."""
    import keras

    from seglib import models

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("model") / "unet.keras"
    models.unet((128, 256, 3), base_filters=8, depth=3).save(path)
    return path
