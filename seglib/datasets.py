"""Where the book's data lives: which dataset a chapter reads, the data folder, the runs folder, trained models.

* :func:`dataset_root` - the real Cityscapes where ``CITYSCAPES_DATASET`` points (the variable the official tools
  read), else the generated street scenes of the run profile, made under :func:`data_dir` on first use;
* :func:`samples_root` - the same dataset, generating only the validation split (a web server needs no more);
* :func:`data_dir` - ``$SEGLIB_DATA`` (default ``~/.cache/seglib``): generated scenes, TFRecords, runs, results;
* :func:`runs_dir`, :func:`run_folder_name`, :func:`find_run` - training runs, named ``<name>-<profile>-<key>``,
  found again by name and profile (``find_run("unet16", "ci")`` is chapter 9's U-Net).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from seglib import cityscapes, synthetic
from seglib.profiles import PROFILES, Profile, get_profile

__all__ = ["DATA_ENV", "BOOK_MODEL", "data_dir", "dataset_root", "samples_root", "synthetic_root", "runs_dir",
           "run_folder_name", "find_run"]

DATA_ENV = "SEGLIB_DATA"
#: The run name of the book's U-Net (chapter 9): the web app, the endpoint and the export chapter serve it.
BOOK_MODEL = "unet16"
#: The validation split: what :func:`samples_root` generates.
SAMPLE_SPLIT = "val"
_RUN_FOLDER = re.compile(r"^(?P<name>.+)-(?P<profile>[a-z]+)-(?P<key>[0-9a-z]+)$")


def data_dir() -> Path:
    """Where generated data lives: ``$SEGLIB_DATA``, else ``~/.cache/seglib``."""
    return Path(os.environ.get(DATA_ENV) or Path.home() / ".cache" / "seglib").expanduser()


def _profile(profile: Profile | str | None) -> Profile:
    return profile if isinstance(profile, Profile) else get_profile(profile)


def synthetic_root(size: tuple[int, int]) -> Path:
    """Where the generated street scenes of ``size`` (H, W) live: under :func:`data_dir`, one folder per
    generator version and size, so a newer generator never mixes its frames with an older one's."""
    height, width = size
    return data_dir() / f"synthetic-cityscapes-v{synthetic.GENERATOR_VERSION}-{height}x{width}"


def dataset_root(profile: Profile | str | None = None) -> Path:
    """The dataset the book uses: ``$CITYSCAPES_DATASET`` if set (checked), else the generated street scenes of
    ``profile`` (default: ``$SEGLIB_PROFILE``), generated on first use."""
    if os.environ.get(cityscapes.CITYSCAPES_ENV):
        return cityscapes.check_dataset_root(os.environ[cityscapes.CITYSCAPES_ENV])
    profile = _profile(profile)
    return synthetic.ensure_dataset(synthetic_root(profile.synthetic_size), profile.synthetic_size,
                                    profile.synthetic_counts)


def samples_root(profile: Profile | str | None = None) -> Path:
    """Where a server's sample frames come from: :func:`dataset_root`, but where the dataset is generated only the
    validation split is made when missing (5,000 frames in the full profile, 150 of them validation). The frames
    and their ids are those the chapters read, as the generator names frames by index."""
    if os.environ.get(cityscapes.CITYSCAPES_ENV):
        return dataset_root(profile)
    profile = _profile(profile)
    counts = {SAMPLE_SPLIT: profile.synthetic_counts[SAMPLE_SPLIT]}
    return synthetic.ensure_dataset(synthetic_root(profile.synthetic_size), profile.synthetic_size, counts)


def runs_dir() -> Path:
    """Where :func:`seglib.train.train_or_load` keeps its runs: ``$SEGLIB_DATA/runs``."""
    return data_dir() / "runs"


def run_folder_name(name: str, profile: Profile | str | None, key: str) -> str:
    """``<name>-<profile>-<key>``: the folder of a run under :func:`runs_dir` (``key`` hashes its settings)."""
    if not re.fullmatch(r"[0-9a-z]+", key):
        raise ValueError(f"a run key is lower-case letters and digits, got {key!r}")
    return f"{name}-{_profile(profile).name}-{key}"


def _seed(folder: Path) -> int | None:
    """The seed a saved run was trained with (from its ``run.json``), or None where unknown."""
    try:
        return json.loads((folder / "run.json").read_text())["settings"].get("seed")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def find_run(name: str, profile: Profile | str | None = None) -> Path:
    """The saved model (``final.keras``) of the run called ``name`` for ``profile``: its first seed where several
    were trained, the newest such run where several settings were. Raises ``FileNotFoundError`` naming the folder
    searched."""
    profile = _profile(profile)
    found = []
    for folder in runs_dir().iterdir() if runs_dir().is_dir() else ():
        match = _RUN_FOLDER.match(folder.name)
        if (match and match["name"] == name and match["profile"] == profile.name and match["profile"] in PROFILES
                and (folder / "final.keras").is_file()):
            found.append(folder)
    if not found:
        raise FileNotFoundError(f"no trained run {name!r} for the {profile.name} profile under {runs_dir()}")
    best = max(found, key=lambda folder: (_seed(folder) == 0, (folder / "final.keras").stat().st_mtime))
    return best / "final.keras"
