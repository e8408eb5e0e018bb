"""Run every experiment of the book for one profile and write its results files.

Reads:  the profile's generated street scenes under ``$SEGLIB_DATA`` (made on first use), or ``$CITYSCAPES_DATASET``.
Writes: ``$SEGLIB_DATA/results/<experiment>-<profile>.json`` for each experiment of :mod:`seglib.experiments`, and a
        copy in ``--output`` (default ``book/results/``, where the chapters find the committed files and show them
        beside their live tables). Trained runs stay under ``$SEGLIB_DATA/runs/``, so an interrupted run resumes.

    python benchmarks/run_profile.py --profile reference     # 2-core CPU: the plateau budget, three seeds
    python benchmarks/run_profile.py --profile colab         # a GPU (Keras on the JAX or TensorFlow backend)

Each experiment's file is written as soon as the experiment is done; the summary prints, per contender, the mean
and min-max over seeds of the headline figure, the seconds it took and whether every seed reached its plateau.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
REPOSITORY = Path(__file__).resolve().parent.parent


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    from seglib import experiments, profiles

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", required=True, choices=sorted(profiles.PROFILES))
    parser.add_argument("--only", nargs="+", choices=experiments.EXPERIMENTS, help="run only these experiments")
    parser.add_argument("--output", type=Path, default=REPOSITORY / "book" / "results",
                        help="folder that receives a copy of each results file (default: book/results)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    from seglib import cityscapes, experiments, profiles, results

    profile = profiles.get_profile(arguments.profile)
    root = cityscapes.dataset_root(profile)
    print(f"profile {profile.name} on {results.bench.machine_description()}; data {root}", flush=True)
    names = arguments.only or experiments.EXPERIMENTS
    start = time.perf_counter()  # every run not trained yet, in one pool (two at a time on a CPU)
    trained = experiments.train_pending(names, root, profile, log=lambda line: print(f"  trained {line}", flush=True))
    print(f"== {trained} runs trained in {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    for experiment in names:
        start = time.perf_counter()
        document, _ = experiments.run(experiment, root, profile, verbose=0)
        source = results.results_path(experiment, profile.name)
        arguments.output.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, arguments.output / source.name)
        print(f"\n== {experiment}: {time.perf_counter() - start:.0f} s -> {arguments.output / source.name}")
        for contender, figures in document["results"].items():
            key = "dice" if "dice" in figures else "mean_category_iou"
            seconds = sum(figures.get("seconds", [0.0]))
            plateau = figures.get("plateau")
            print(f"  {contender:45s} {key} {results.format_spread(figures[key])}  {seconds:6.0f} s"
                  + ("" if plateau is None else f"  plateau {sum(plateau)}/{len(plateau)}"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
