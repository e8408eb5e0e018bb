"""Run profiles: one setting, ``SEGLIB_PROFILE=ci|reference|colab|full``, sizes every chapter (``smoke``: tests only).

The code path is the same in all of them; only sizes change. ``ci`` is sized for 2 CPU cores (every chapter but
10b in three minutes or less; 10b, which trains three new models side by side, took 2.7 and 3.2 minutes in two
quiet builds: each chapter's first cell states its last measured time), ``colab`` fits a free Colab GPU, ``full``
is the real experiment (Cityscapes' own sizes).
``reference`` is the ``ci`` data with a budget large enough for every contender to reach its plateau, three seeds
each: ``python benchmarks/run_profile.py --profile reference`` runs it on a CPU in about an hour and a half, plus
chapter 10b's nine new runs (40 minutes, with a CI run sharing the cores), and
the book shows its committed results beside every live table. The appendix "How the ci profile was chosen" gives
the measurements behind these numbers.
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
    #: Peak learning rate of Adam's schedule (warm-up over the first tenth of the steps, then cosine decay to 0).
    learning_rate: float
    #: Epochs without a better validation score after which early stopping ends a run.
    patience: int
    #: Seeds of the book's U-Net and its ablation (chapters 5, 9, 11): at least two, so that a spread is shown.
    seeds: int
    #: Seeds of every other contender of a comparison (chapters 7, 10, 12).
    comparison_seeds: int
    #: Width of the VGG16 encoders of chapter 10 (a fraction of VGG16's 64-128-256-512-512 filters): 1 is VGG16
    #: itself, which loads ImageNet weights where a network exists; narrower ones train from scratch on a CPU.
    encoder_width: float = 1.0
    #: Dice weights of chapter 7's combined losses (CE + w·dice), beside cross-entropy and dice alone. ``ci``
    #: compares one weighting, the others two: a third new run does not fit a chapter's three CPU minutes.
    dice_weights: tuple[float, ...] = (1.0, 3.0)


_CI_COUNTS = {"train": 160, "val": 24, "test": 8}

PROFILES: dict[str, Profile] = {
    # name           generated frames  frames per split  input       batch epochs repeats  lr  patience seeds  width
    "ci": Profile("ci", (256, 512), _CI_COUNTS, (64, 128), 4, 12, 5, 3e-3, 10, 2, 1, encoder_width=0.25,
                  dice_weights=(1.0,)),
    "reference": Profile("reference", (256, 512), _CI_COUNTS, (64, 128), 4, 40, 5, 3e-3, 10, 3, 3,
                         encoder_width=0.25),
    "colab": Profile("colab", (512, 1024), {"train": 600, "val": 150, "test": 150}, (256, 512), 16, 40, 20, 1e-3, 8,
                     3, 3),
    "full": Profile("full", FRAME_SIZE, {"train": 2975, "val": 500, "test": 1525}, (512, 1024), 8, 100, 50, 1e-3, 10,
                    3, 3),
    # for tests only: every chapter's code path in seconds (chapter 9 on JAX, tests/test_chapter9_jax.py);
    # its figures mean nothing. Chapter 10b's SegFormer needs inputs of 64 pixels or more (its Mix Transformer
    # fails on 1 x 1 maps at stride 32): its tests build it at 64 x 128
    # (tests/test_modern.py)
    "smoke": Profile("smoke", (64, 128), {"train": 32, "val": 4, "test": 2}, (32, 64), 4, 10, 1, 3e-3, 10, 2, 1,
                     encoder_width=0.125, dice_weights=(1.0,)),
}


def get_profile(name: str | None = None) -> Profile:
    """The profile called ``name``, else the one ``SEGLIB_PROFILE`` names, else ``ci``."""
    name = name or os.environ.get(PROFILE_ENV) or "ci"
    if name not in PROFILES:
        raise ValueError(f"unknown run profile {name!r} (from {PROFILE_ENV}); choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
