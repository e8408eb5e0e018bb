"""Run profiles: one setting, ``SEGLIB_PROFILE=ci|colab|full``, sizes every chapter.

The code path is the same in all three; only sizes change. ``ci`` finishes each chapter in a minute or two on
2 CPU cores, ``colab`` fits a free Colab GPU, ``full`` is the real experiment (Cityscapes' own sizes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from seglib.cityscapes import FRAME_SIZE

__all__ = ["Profile", "PROFILES", "PROFILE_ENV", "get_profile"]

PROFILE_ENV = "SEGLIB_PROFILE"


@dataclass(frozen=True)
class Profile:
    name: str
    #: (H, W) of the generated street scenes (the real Cityscapes frames are 1024 x 2048).
    synthetic_size: tuple[int, int]
    #: Frames generated per split.
    synthetic_counts: dict[str, int] = field(hash=False)
    #: (H, W) the models see.
    image_size: tuple[int, int]
    batch_size: int
    epochs: int
    #: How many times a benchmark repeats a measurement (the median is reported).
    benchmark_repeats: int
    #: Epochs each model gets in the chapter that compares several heavy models (U-Net, FCN-8, VGG16 U-Net).
    comparison_epochs: int


PROFILES: dict[str, Profile] = {
    "ci": Profile("ci", (256, 512), {"train": 24, "val": 8, "test": 8}, (128, 256), 8, 30, 5, 3),
    "colab": Profile("colab", (512, 1024), {"train": 600, "val": 150, "test": 150}, (256, 512), 16, 40, 20, 40),
    "full": Profile("full", FRAME_SIZE, {"train": 2975, "val": 500, "test": 1525}, (512, 1024), 8, 100, 50, 100),
}


def get_profile(name: str | None = None) -> Profile:
    """The profile called ``name``, else the one ``SEGLIB_PROFILE`` names, else ``ci``."""
    name = name or os.environ.get(PROFILE_ENV) or "ci"
    if name not in PROFILES:
        raise ValueError(f"unknown run profile {name!r} (from {PROFILE_ENV}); choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
