"""The first cell of every chapter: which run profile, where the data goes, and how long the chapter takes.

Every chapter opens with the same cell (written by ``data_scripts/sync_notebooks.py``): it installs seglib where it
is missing (Colab), then calls :func:`start` with the chapter's name. :func:`start`

* keeps the run profile ``SEGLIB_PROFILE`` names (an unknown one is a ``ValueError``), and where none is named picks
  ``colab`` when a GPU is present, else ``ci``, and says which and why;
* in Colab, where ``SEGLIB_DATA`` is unset, suggests a folder on Google Drive, so that generated frames and trained
  runs survive a disconnect;
* states how long the chapter took in each profile, as a book build measured it (:data:`TIMES_DIR`), and "not
  measured yet" where no build of that profile was measured; a chapter that uses chapter 9's trained U-Net also says
  how long training it takes where this machine has not trained it yet.

The measured times are package data (``seglib/chapter_times/<profile>.json``), so that Colab, which installs the
package and nothing else of the repository, reads them too. ``data_scripts/chapter_times.py`` writes them from a
book build's execution cache::

    {"schema": 1, "profile": "ci", "machine": "AMD EPYC ..., 2 CPU cores, no GPU", "date": "2026-11-29",
     "commit": "0d739d9...", "source": "...", "seconds": {"00_introduction": 24.3, ...}}

The checks that need the machine (:func:`gpu_present`, :func:`in_colab`) can be replaced by arguments, for tests.
Importing this module imports neither TensorFlow nor Keras: the first cell stays quick.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from seglib import datasets
from seglib.profiles import PROFILE_ENV, PROFILES, get_profile

__all__ = ["TIMES_DIR", "TIMES_SCHEMA", "NOT_MEASURED", "DEFAULT_PROFILE", "TRAINING_CHAPTER", "DRIVE_DATA", "Setup",
           "gpu_present", "in_colab", "choose_profile", "check_data_dir", "data_advice", "times_path", "times_document",
           "write_times", "load_times", "format_duration", "time_statement", "training_statement", "plan", "start"]

#: Where the measured chapter times live (package data: Colab has them too).
TIMES_DIR = Path(__file__).resolve().parent / "chapter_times"
TIMES_SCHEMA = 1
NOT_MEASURED = "not measured yet"
#: The chapter that trains the book's U-Net (``experiments.train_book_unet``), which chapters 13-15 serve.
TRAINING_CHAPTER = "09_training"
#: The profile where no GPU is present and none is named (:func:`seglib.profiles.get_profile`'s default).
DEFAULT_PROFILE = "ci"
#: The profiles a reader runs (``smoke`` is for tests only).
_READER_PROFILES = tuple(name for name in PROFILES if name != "smoke")
#: Where the Drive suggestion keeps the data.
DRIVE_DATA = "/content/drive/MyDrive/seglib"


def gpu_present() -> bool:
    """Whether this machine has an NVIDIA GPU, asked of the driver (``nvidia-smi -L``, else ``/proc``), without
    importing a framework."""
    if shutil.which("nvidia-smi"):
        try:
            listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        if any(line.startswith("GPU ") for line in listing.splitlines()):
            return True
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def in_colab(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this kernel runs in Google Colab (its runtime sets ``COLAB_RELEASE_TAG`` and has ``google.colab``)."""
    if environ.get("COLAB_RELEASE_TAG"):
        return True
    try:
        return importlib.util.find_spec("google.colab") is not None
    except (ImportError, ValueError):  # no "google" package at all
        return False


def choose_profile(environ: Mapping[str, str], gpu: bool) -> tuple[str, str]:
    """The run profile and why: the one ``SEGLIB_PROFILE`` names (``ValueError`` if unknown), else ``colab`` where
    ``gpu``, else ``ci``. Returns ``(name, reason)``."""
    named = environ.get(PROFILE_ENV)
    if named:
        return get_profile(named).name, f"{PROFILE_ENV}={named}"
    if gpu:
        return "colab", f"a GPU is present and {PROFILE_ENV} is not set"
    return DEFAULT_PROFILE, f"no GPU here and {PROFILE_ENV} is not set: the default"


def check_data_dir(environ: Mapping[str, str]) -> Path:
    """The data folder (``$SEGLIB_DATA``, default ``~/.cache/seglib``); ``ValueError`` where it names a file."""
    folder = Path(environ.get(datasets.DATA_ENV) or Path.home() / ".cache" / "seglib").expanduser()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{datasets.DATA_ENV}={folder} is a file; it must name a folder (made if missing)")
    return folder


def data_advice(environ: Mapping[str, str], colab: bool) -> list[str]:
    """In Colab with ``SEGLIB_DATA`` unset: how to keep the data on Google Drive. Elsewhere: nothing."""
    if not colab or environ.get(datasets.DATA_ENV):
        return []
    return [f"Colab keeps generated frames and trained runs on the runtime's disk, which a disconnect empties. "
            f"To keep them on Google Drive, run this, then this cell again:",
            "    from google.colab import drive",
            '    drive.mount("/content/drive")',
            f"    %env {datasets.DATA_ENV}={DRIVE_DATA}"]


def times_path(profile: str, folder: str | os.PathLike | None = None) -> Path:
    """``<folder>/<profile>.json`` (default folder: :data:`TIMES_DIR`)."""
    return Path(folder or TIMES_DIR) / f"{profile}.json"


def times_document(profile: str, seconds: Mapping[str, float], machine: str, date: str, source: str,
                   commit: str | None = None) -> dict:
    """A chapter-times document: ``seconds`` by notebook name (``"09_training"``) as measured under ``profile`` on
    ``machine`` on ``date`` (ISO), and what measured them (``source``)."""
    get_profile(profile)
    document = {"schema": TIMES_SCHEMA, "profile": profile, "machine": machine, "date": date, "source": source,
                "seconds": {name: round(float(value), 1) for name, value in sorted(seconds.items())}}
    if commit:
        document["commit"] = commit
    return _checked(document, "the new document")


def _checked(document: object, where: str) -> dict:
    if not isinstance(document, dict) or document.get("schema") != TIMES_SCHEMA:
        raise ValueError(f"{where}: not a chapter-times document of schema {TIMES_SCHEMA}")
    missing = [key for key in ("profile", "machine", "date", "seconds") if key not in document]
    if missing:
        raise ValueError(f"{where}: lacks {', '.join(missing)}")
    seconds = document["seconds"]
    if not isinstance(seconds, dict) or not all(
            isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
            for value in seconds.values()):
        raise ValueError(f"{where}: 'seconds' must map notebook names to non-negative numbers")
    return document


def write_times(document: dict, folder: str | os.PathLike | None = None) -> Path:
    """Write ``document`` to :func:`times_path` of its profile; returns the path."""
    path = times_path(_checked(document, "the document")["profile"], folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load_times(profile: str, folder: str | os.PathLike | None = None) -> dict | None:
    """The measured chapter times of ``profile`` (checked), or None where none were measured."""
    path = times_path(profile, folder)
    if not path.is_file():
        return None
    document = _checked(json.loads(path.read_text(encoding="utf-8")), str(path))
    if document["profile"] != profile:
        raise ValueError(f"{path}: holds the {document['profile']!r} profile, not {profile!r}")
    return document


def format_duration(seconds: float) -> str:
    """``"25 s"``, ``"2.5 min"``, ``"1 h 05 min"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


def _measured(chapter: str, profile: str, folder) -> str:
    document = load_times(profile, folder)
    if document is None or chapter not in document["seconds"]:
        return NOT_MEASURED
    return (f"{format_duration(document['seconds'][chapter])} "
            f"(on {document['machine']}, book build of {document['date']})")


def time_statement(chapter: str, current: str, folder: str | os.PathLike | None = None) -> list[str]:
    """How long ``chapter`` took in each profile, one line per profile, the ``current`` one marked."""
    names = _READER_PROFILES + ((current,) if current not in _READER_PROFILES else ())
    width = max(len(name) for name in names)
    lines = ["How long this chapter took when the book was built (the build runs the chapters in order: chapter 0 "
             "generates the frames, later chapters read back runs that earlier ones trained):"]
    for name in names:
        marker = "  <- this profile" if name == current else ""
        lines.append(f"  {name:<{width}}  {_measured(chapter, name, folder)}{marker}")
    return lines


def training_statement(profile: str, folder: str | os.PathLike | None = None) -> list[str]:
    """For a chapter that uses chapter 9's U-Net: where it is, or that the chapter trains it first and how long
    chapter 9 took to train it."""
    try:
        found = datasets.find_run(datasets.BOOK_MODEL, profile)
    except FileNotFoundError:
        took = _measured(TRAINING_CHAPTER, profile, folder)
        return [f"This chapter uses chapter 9's U-Net, not trained here for the {profile} profile yet: unless "
                f"SEGLIB_MODEL names a model, the chapter trains it first. Chapter 9, which trains it, took: {took}."]
    return [f"Chapter 9's trained U-Net for the {profile} profile is here: {found}"]


@dataclass(frozen=True)
class Setup:
    """What :func:`start` settles: the profile, whether it was picked here (and must be set), and what to say."""

    profile: str
    picked: bool
    lines: tuple[str, ...]


def plan(chapter: str, *, uses_trained_model: bool = False, environ: Mapping[str, str] = os.environ,
         gpu: bool | Callable[[], bool] = gpu_present, colab: bool | None = None,
         folder: str | os.PathLike | None = None) -> Setup:
    """What the first cell of ``chapter`` does, without doing it: see :func:`start`. ``gpu`` and ``colab`` replace
    the machine checks (a bool, or for ``gpu`` a function asked only when no profile is named)."""
    named = bool(environ.get(PROFILE_ENV))
    has_gpu = (gpu() if callable(gpu) else gpu) if not named else False
    profile, reason = choose_profile(environ, has_gpu)
    colab = in_colab(environ) if colab is None else colab
    data = check_data_dir(environ)
    lines = [f"Run profile: {profile} ({reason})."]
    if colab and not named and not has_gpu:
        lines.append("For the colab profile choose Runtime > Change runtime type > a GPU, then run this cell again.")
    where = datasets.DATA_ENV if environ.get(datasets.DATA_ENV) else f"the default; {datasets.DATA_ENV} moves it"
    lines.append(f"Data folder: {data} ({where}).")
    lines += data_advice(environ, colab)
    lines += time_statement(chapter, profile, folder)
    if uses_trained_model:
        lines += training_statement(profile, folder)
    return Setup(profile, picked=not named, lines=tuple(lines))


def start(chapter: str, *, uses_trained_model: bool = False, environ: MutableMapping[str, str] = os.environ,
          gpu: bool | Callable[[], bool] = gpu_present, colab: bool | None = None,
          folder: str | os.PathLike | None = None, say: Callable[[str], None] = print) -> None:
    """The first cell of ``chapter`` (``"09_training"``): settle the run profile (setting ``SEGLIB_PROFILE`` where it
    picked one, so every later cell and child process uses it), and say the profile, the data folder, the advice
    for Colab and the measured times. ``ValueError`` where ``SEGLIB_PROFILE`` or ``SEGLIB_DATA`` is wrong."""
    setup = plan(chapter, uses_trained_model=uses_trained_model, environ=environ, gpu=gpu, colab=colab,
                 folder=folder)
    if setup.picked:
        environ[PROFILE_ENV] = setup.profile
    for line in setup.lines:
        say(line)
