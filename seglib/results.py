"""Results files: what an experiment measured, per contender and per seed, and the sentences that read them.

An experiment chapter writes ``$SEGLIB_DATA/results/<notebook stem>-<profile>.json`` and draws its tables from the
file; the book also ships the files of larger runs (``book/results/``: the ``reference`` profile on a 2-core CPU,
``colab`` on a GPU) and shows them beside the live one. A file holds::

    {"schema": 1, "experiment": "09_training", "profile": "ci", "machine": "...", "date": "2026-11-28",
     "versions": {"keras": "3.15.1", ...}, "budget": {"image_size": [64, 128], "epochs": 24, "seeds": [0, 1], ...},
     "results": {"U-Net (16 filters)": {"mean_category_iou": [0.61, 0.60], "category_iou": {"flat": [...], ...},
                                        "seconds": [...], "epochs": [...], "plateau": [true, true], ...}}}

Every figure of a contender is a list with one value per seed (or a dict of such lists). :func:`spread` reduces a
list to mean and min-max, and :func:`compare` chooses the words that state an outcome from the numbers, so no
sentence of the book can drift from the figures beside it.

This module is pure Python (no TensorFlow): it reads and checks files, summarises and words them.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from seglib import bench, datasets

__all__ = ["SCHEMA", "BOOK_RESULTS", "PLATEAU_TOLERANCE", "Spread", "results_dir", "results_path", "new_document",
           "add_seed", "write", "load", "validate", "shipped", "spread", "compare", "outcome", "reached_plateau",
           "format_spread", "describe", "label", "side_by_side", "per_category"]

SCHEMA = 1
#: Results files committed with the book (larger profiles than a reader's CPU can run while reading).
BOOK_RESULTS = Path(__file__).resolve().parent.parent / "book" / "results"
#: A run has reached its plateau when its validation metric improved by less than this over its last fifth.
PLATEAU_TOLERANCE = 0.01
_VERSIONED = ("seglib", "keras", "tensorflow", "jax", "numpy", "albumentations")


@dataclass(frozen=True)
class Spread:
    """Mean and range of one figure over seeds."""

    mean: float
    low: float
    high: float
    count: int

    def __str__(self) -> str:
        return format_spread(self)


def results_dir() -> Path:
    """Where live results files go: ``$SEGLIB_DATA/results``."""
    return datasets.data_dir() / "results"


def results_path(experiment: str, profile: str, folder: str | os.PathLike | None = None) -> Path:
    """``<folder>/<experiment>-<profile>.json`` (default folder: :func:`results_dir`)."""
    return Path(folder or results_dir()) / f"{experiment}-{profile}.json"


def _versions() -> dict[str, str]:
    found = {}
    for package in _VERSIONED:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def new_document(experiment: str, profile: str, budget: Mapping[str, object], machine: str | None = None) -> dict:
    """An empty results document for ``experiment`` run under ``profile`` with ``budget`` (sizes, epochs, seeds:
    whatever a reader needs to know what the figures cost)."""
    return {"schema": SCHEMA, "experiment": experiment, "profile": profile,
            "machine": machine or bench.machine_description(), "date": datetime.date.today().isoformat(),
            "versions": _versions(), "budget": dict(budget), "results": {}}


def add_seed(document: dict, contender: str, figures: Mapping[str, object]) -> None:
    """Append one seed's ``figures`` (numbers, booleans, or dicts of them) to ``contender``'s lists."""
    entry = document["results"].setdefault(contender, {})
    for key, value in figures.items():
        if isinstance(value, Mapping):
            inner = entry.setdefault(key, {})
            for name, item in value.items():
                inner.setdefault(name, []).append(_plain(item))
        else:
            entry.setdefault(key, []).append(_plain(value))


def _plain(value):
    """numpy scalars and NaN -> JSON values (NaN becomes None: a category absent from the split)."""
    if isinstance(value, bool) or value is None:
        return value
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def write(document: dict, path: str | os.PathLike) -> Path:
    """Check ``document`` and write it to ``path`` atomically (a reader never sees half a file)."""
    validate(document, str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")
    os.replace(temporary, path)
    return path


def validate(document: object, source: str = "results document", profile: str | None = None,
             experiment: str | None = None) -> None:
    """Raise ``ValueError`` naming ``source`` and the problem unless ``document`` is a results file of this schema
    (and of ``profile`` / ``experiment`` when given)."""
    if not isinstance(document, dict):
        raise ValueError(f"{source}: a results file holds a JSON object, got {type(document).__name__}")
    if document.get("schema") != SCHEMA:
        raise ValueError(f"{source}: schema {document.get('schema')!r}, this seglib reads schema {SCHEMA}; "
                         "run the experiment again to rewrite it")
    for key, kind in (("experiment", str), ("profile", str), ("machine", str), ("date", str), ("versions", dict),
                      ("budget", dict), ("results", dict)):
        if not isinstance(document.get(key), kind):
            raise ValueError(f"{source}: field {key!r} must be a {kind.__name__}, got {document.get(key)!r:.80}")
    if profile is not None and document["profile"] != profile:
        raise ValueError(f"{source} holds results of profile {document['profile']!r}, not {profile!r}")
    if experiment is not None and document["experiment"] != experiment:
        raise ValueError(f"{source} holds results of experiment {document['experiment']!r}, not {experiment!r}")
    if not document["results"]:
        raise ValueError(f"{source}: no contender in 'results'")
    for contender, figures in document["results"].items():
        if not isinstance(figures, dict) or not figures:
            raise ValueError(f"{source}: contender {contender!r} has no figures")
        lengths = set()
        for key, values in figures.items():
            for name, column in (values.items() if isinstance(values, dict) else [(None, values)]):
                label = key if name is None else f"{key}.{name}"
                if not isinstance(column, list) or not column:
                    raise ValueError(f"{source}: {contender!r} {label} must be a non-empty list (one value per seed)")
                if any(not isinstance(v, (int, float, bool, list)) and v is not None for v in column):
                    raise ValueError(f"{source}: {contender!r} {label} holds a value that is not a number")
                lengths.add(len(column))
        if len(lengths) > 1:
            raise ValueError(f"{source}: {contender!r} has lists of different lengths {sorted(lengths)}: one value "
                             "per seed in every figure")


def load(path: str | os.PathLike, profile: str | None = None, experiment: str | None = None) -> dict:
    """Read and check a results file; ``ValueError`` names the file when it is malformed, of another schema, or
    of another ``profile`` / ``experiment`` than asked for."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no results file {path}; run the experiment (its chapter, or "
                                "benchmarks/run_profile.py) to write it")
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a JSON results file: {error}") from error
    validate(document, str(path), profile, experiment)
    return document


def shipped(experiment: str, folder: str | os.PathLike | None = None) -> dict[str, dict]:
    """The committed results files of ``experiment`` (``<folder>/<experiment>-<profile>.json``, default
    :data:`BOOK_RESULTS`), checked, by profile."""
    folder = Path(folder or BOOK_RESULTS)
    found = {}
    for path in sorted(folder.glob(f"{experiment}-*.json")):
        profile = path.stem[len(experiment) + 1:]
        found[profile] = load(path, profile=profile, experiment=experiment)
    return found


def spread(values: Sequence[float | None]) -> Spread:
    """Mean, min and max of the values, one per seed (``None``, a category absent from the split, is skipped)."""
    kept = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not kept:
        return Spread(math.nan, math.nan, math.nan, 0)
    return Spread(statistics.fmean(kept), min(kept), max(kept), len(kept))


def format_spread(value: Spread | Sequence[float], digits: int = 3) -> str:
    """``0.612 (0.601–0.623)`` over several seeds, ``0.612`` for one."""
    value = value if isinstance(value, Spread) else spread(value)
    if value.count == 0:
        return "–"
    if value.count == 1:
        return f"{value.mean:.{digits}f}"
    return f"{value.mean:.{digits}f} ({value.low:.{digits}f}–{value.high:.{digits}f})"


def compare(first: Sequence[float], second: Sequence[float], higher_is_better: bool = True,
            exact: tuple[bool, bool] = (False, False)) -> str:
    """How ``first`` stands against ``second`` over seeds: ``"ahead by more than the spread"`` when every seed of
    ``first`` is better than every seed of ``second``, ``"behind by more than the spread"`` for the reverse,
    ``"within the spread"`` when their ranges overlap. With one seed on either side there is no spread to judge
    by: ``"ahead on one seed"`` / ``"behind on one seed"`` / ``"level on one seed"``, from the means. A side
    marked ``exact`` (a baseline without randomness, such as "always flat") has no spread to miss: its single
    value is compared with the other side's range."""
    sign = 1.0 if higher_is_better else -1.0  # compare "goodness": negate a figure where lower is better
    a = spread([sign * v for v in first if v is not None])
    b = spread([sign * v for v in second if v is not None])
    if a.count == 0 or b.count == 0:
        raise ValueError("compare needs at least one value on each side")
    if (a.count == 1 and not exact[0]) or (b.count == 1 and not exact[1]):  # a side whose spread is unknown
        return ("ahead on one seed" if a.mean > b.mean else "behind on one seed" if a.mean < b.mean
                else "level on one seed")
    if a.low > b.high:
        return "ahead by more than the spread"
    if a.high < b.low:
        return "behind by more than the spread"
    return "within the spread"


def _is_exact(figures: Mapping, key: str) -> bool:
    """A contender with one value and no training time is a fixed baseline (no seed, no spread)."""
    return len(figures[key]) == 1 and "seconds" not in figures


_FIGURE_NAMES = {"mean_category_iou": "category mean IoU", "dice": "dice", "ms_per_image": "milliseconds per image"}


def outcome(document: Mapping, first: str, second: str, key: str = "mean_category_iou",
            higher_is_better: bool = True) -> str:
    """One sentence stating how contender ``first`` stands against ``second`` on ``key`` in ``document``, with both
    figures, the number of seeds and the profile: the words come from :func:`compare`."""
    results = document["results"]
    for name in (first, second):
        if name not in results or key not in results[name]:
            raise ValueError(f"{document.get('experiment')}-{document.get('profile')}: no {key!r} for {name!r}; "
                             f"contenders: {', '.join(results)}")
    a, b = results[first][key], results[second][key]
    exact = tuple(_is_exact(results[name], key) for name in (first, second))
    counts = [("no seed" if fixed else f"{len(values)} seed{'s' if len(values) != 1 else ''}")
              for values, fixed in zip((a, b), exact)]
    seeds = f"{counts[0]} each" if counts[0] == counts[1] and not exact[0] else " and ".join(counts)
    words = compare(a, b, higher_is_better, exact)
    left, right = f"{first} ({format_spread(a)})", f"{second} ({format_spread(b)})"
    relation = {"ahead": "is ahead of", "behind": "is behind", "level": "is level with"}
    if words == "within the spread":
        verdict = f"{left} and {right} are within the spread of each other"
    elif words.endswith("on one seed"):
        verdict = f"{left} {relation[words.split()[0]]} {right} on one seed, with no spread to judge by"
    else:
        verdict = f"{left} {relation[words.split()[0]]} {right} by more than the spread"
    return f"{verdict} ({_FIGURE_NAMES.get(key, key)}, profile {document['profile']}, {seeds})."


def reached_plateau(values: Sequence[float], max_epochs: int, tolerance: float = PLATEAU_TOLERANCE) -> bool:
    """Whether a run whose validation metric per epoch is ``values`` ended at its plateau: it stopped early (fewer
    epochs than ``max_epochs``: early stopping saw no improvement), or its best value improved by less than
    ``tolerance`` over the last fifth of its epochs."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("no epochs: a run has at least one validation value")
    if len(values) < max_epochs:
        return True
    fifth = max(1, len(values) // 5)
    if len(values) <= fifth:
        return False
    return max(values) - max(values[:-fifth]) < tolerance


def describe(document: Mapping) -> str:
    """One line naming where and how a results file was measured: profile, machine, budget, date."""
    budget = document["budget"]
    parts = []
    if "image_size" in budget:
        parts.append(f"{budget['image_size'][0]}×{budget['image_size'][1]} input")
    if "train_frames" in budget:
        parts.append(f"{budget['train_frames']} training frames")
    if "epochs" in budget:
        parts.append(f"up to {budget['epochs']} epochs")
    if "seeds" in budget:
        parts.append(f"seeds {', '.join(str(s) for s in budget['seeds'])}")
    if "backend" in budget:
        parts.append(budget["backend"])
    return (f"profile {document['profile']}, {document['machine']}, {'; '.join(parts)}, {document['date']}")


def label(document: Mapping, live: bool = False) -> str:
    """A column heading for a document: ``ci (this run)`` or ``reference (2026-11-28)``."""
    return f"{document['profile']} ({'this run' if live else document['date']})"


def side_by_side(documents: Sequence[Mapping], key: str = "mean_category_iou", live: int | None = 0,
                 digits: int = 3) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of a table with one row per contender and one column per document (the live one first,
    then the committed ones): ``key`` as mean (min–max) over seeds, and the number of seeds, plateau marks and
    training minutes where known. ``live`` is the index of the document measured by this run (``None``: none)."""
    contenders = list(dict.fromkeys(name for document in documents for name in document["results"]))
    headers = ["contender"] + [label(document, index == live) for index, document in enumerate(documents)]
    rows = []
    for name in contenders:
        row = [name]
        for document in documents:
            figures = document["results"].get(name)
            if figures is None or key not in figures:
                row.append("–")
                continue
            cell = format_spread(figures[key], digits)
            notes = [f"{len(figures[key])} seed{'s' if len(figures[key]) != 1 else ''}"]
            if "plateau" in figures:
                notes.append(f"plateau {sum(bool(v) for v in figures['plateau'])}/{len(figures['plateau'])}")
            if "seconds" in figures:
                notes.append(f"{statistics.fmean(figures['seconds']) / 60:.1f} min each")
            row.append(f"{cell} <br><small>{', '.join(notes)}</small>")
        rows.append(row)
    return headers, rows


def per_category(document: Mapping, digits: int = 2) -> tuple[list[str], list[list[str]]]:
    """Headers and rows: each contender's category IoU, mean (min–max) over seeds, for the 7 scored categories."""
    first = next(iter(document["results"].values()))
    categories = [name for name, values in first.get("category_iou", {}).items()
                  if any(v is not None for v in values)]
    headers = ["contender", *categories]
    rows = [[name, *(format_spread(figures["category_iou"][c], digits) for c in categories)]
            for name, figures in document["results"].items() if "category_iou" in figures]
    return headers, rows
