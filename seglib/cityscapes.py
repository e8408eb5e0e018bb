"""The Cityscapes folder layout: where each frame's image and masks live.

``root/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` and
``root/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_{color,labelIds,instanceIds}.png`` (+ ``_polygons.json``).

This module knows the layout only (it imports no other seglib module); which dataset the book reads, the real
Cityscapes or the generated street scenes, is :func:`seglib.datasets.dataset_root`'s choice.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "SPLITS", "FRAME_SIZE", "GT_KINDS", "CITYSCAPES_ENV", "Frame", "parse_image_name", "list_frames",
    "check_dataset_root", "read_image",
]

SPLITS = ("train", "val", "test")
#: (H, W) of every Cityscapes frame.
FRAME_SIZE = (1024, 2048)
#: gtFine file kinds and their extensions.
GT_KINDS = {"color": "png", "labelIds": "png", "instanceIds": "png", "polygons": "json"}
#: The variable the official tools read for the dataset's root (:func:`seglib.datasets.dataset_root` reads it too).
CITYSCAPES_ENV = "CITYSCAPES_DATASET"

_IMAGE_NAME = re.compile(r"^(?P<city>[a-z_]+)_(?P<seq>\d{6})_(?P<frame>\d{6})_leftImg8bit\.png$")


@dataclass(frozen=True, order=True)
class Frame:
    """One frame of a Cityscapes-layout dataset; its paths are derived, never stored."""

    root: Path
    split: str
    city: str
    seq: int
    frame: int

    @property
    def stem(self) -> str:
        return f"{self.city}_{self.seq:06d}_{self.frame:06d}"

    @property
    def image_path(self) -> Path:
        return self.root / "leftImg8bit" / self.split / self.city / f"{self.stem}_leftImg8bit.png"

    def gt_path(self, kind: str) -> Path:
        """Path of the ``kind`` annotation: one of ``color``, ``labelIds``, ``instanceIds``, ``polygons``."""
        if kind not in GT_KINDS:
            raise ValueError(f"unknown gtFine kind {kind!r}; choose one of {', '.join(GT_KINDS)}")
        return self.root / "gtFine" / self.split / self.city / f"{self.stem}_gtFine_{kind}.{GT_KINDS[kind]}"


def parse_image_name(root: str | os.PathLike, split: str, name: str) -> Frame:
    """The frame of a ``<city>_<seq>_<frame>_leftImg8bit.png`` file name."""
    match = _IMAGE_NAME.match(name)
    if not match:
        raise ValueError(f"{name!r} is not a Cityscapes image name (<city>_<6 digits>_<6 digits>_leftImg8bit.png)")
    return Frame(Path(root), split, match["city"], int(match["seq"]), int(match["frame"]))


def list_frames(root: str | os.PathLike, split: str) -> list[Frame]:
    """All frames of ``split`` under ``root``, sorted. Raises ``FileNotFoundError`` if there are none."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    folder = Path(root) / "leftImg8bit" / split
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no image folder {folder}; a Cityscapes root holds leftImg8bit/<split>/<city>/ "
            f"(unset {CITYSCAPES_ENV} to use the generated dataset, or run data_scripts/download_cityscapes.py)"
        )
    frames = sorted(parse_image_name(root, split, path.name) for path in folder.glob("*/*_leftImg8bit.png"))
    if not frames:
        raise FileNotFoundError(f"no *_leftImg8bit.png files under {folder}/<city>/")
    return frames


def check_dataset_root(root: str | os.PathLike) -> Path:
    """Check that ``root`` looks like a Cityscapes root (``leftImg8bit/`` and ``gtFine/``); returns it as a Path."""
    root = Path(root).expanduser()
    missing = [name for name in ("leftImg8bit", "gtFine") if not (root / name).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"{root} is not a Cityscapes root: missing {' and '.join(missing)}/. Download and unpack "
            "leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip there (data_scripts/download_cityscapes.py), "
            f"or unset {CITYSCAPES_ENV} to use the generated street scenes"
        )
    return root


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a ``*_leftImg8bit.png`` (or any RGB image file) -> ``(H, W, 3) uint8`` RGB.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming a file that cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(f"cannot decode image {path}: {error}") from error
