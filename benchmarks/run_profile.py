"""Run every experiment of the book for one profile and write its results files.

Reads:  the profile's generated street scenes under ``$SEGLIB_DATA`` (made on first use), or ``$CITYSCAPES_DATASET``.
Writes: ``$SEGLIB_DATA/results/<experiment>-<profile>.json`` for each experiment of :mod:`seglib.experiments`, and a
        copy in ``--output`` (default ``book/results/``, where the chapters find the committed files and show them
        beside their live tables). Trained runs stay under ``$SEGLIB_DATA/runs/``, so an interrupted run resumes.

    python benchmarks/run_profile.py --profile reference                  # 2-core CPU, TensorFlow: the plateau budget
    python benchmarks/run_profile.py --profile colab --backend jax        # a GPU, Keras on JAX

``--backend`` sets ``KERAS_BACKEND`` before Keras is imported (default: the variable, else tensorflow); the files
record the backend and the GPU (``budget.backend``, ``machine``). On JAX and PyTorch the runs train from the
``PyDataset`` pipeline and need no TensorFlow, so the script runs on a GPU machine that has JAX, numpy, scipy,
opencv, pillow and h5py but no TensorFlow, no Keras and no package registry, given a folder of the missing wheels
(12 MiB; ``--python-version`` is the GPU machine's Python), made on a machine with PyPI::

    pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 -d wheels \
        keras==3.15.1 namex optree absl-py packaging albumentations==2.0.8 albucore==0.0.24 stringzilla simsimd \
        pydantic pydantic-core annotated-types typing-extensions typing-inspection pyyaml

and installed there before the run::

    pip install --no-index --find-links wheels --target /tmp/site wheels/*.whl && export PYTHONPATH=/tmp/site:.
    python benchmarks/run_profile.py --profile colab --backend jax --output book/results

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
BACKENDS = ("tensorflow", "jax", "torch")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    from seglib import profiles  # imports no Keras: the backend is still free to choose

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", required=True, choices=sorted(profiles.PROFILES))
    parser.add_argument("--backend", choices=BACKENDS, default=os.environ.get("KERAS_BACKEND") or "tensorflow",
                        help="the Keras backend (default: $KERAS_BACKEND, else tensorflow)")
    parser.add_argument("--only", nargs="+", metavar="EXPERIMENT", help="run only these experiments")
    parser.add_argument("--output", type=Path, default=REPOSITORY / "book" / "results",
                        help="folder that receives a copy of each results file (default: book/results)")
    arguments = parser.parse_args(argv)
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != arguments.backend:
        parser.error(f"Keras was already imported on the {sys.modules['keras'].backend.backend()!r} backend; "
                     f"run the script in a fresh process for --backend {arguments.backend}")
    os.environ["KERAS_BACKEND"] = arguments.backend
    from seglib import experiments

    unknown = sorted(set(arguments.only or ()) - set(experiments.EXPERIMENTS))
    if unknown:
        parser.error(f"unknown experiment(s) {', '.join(unknown)}; choose from {', '.join(experiments.EXPERIMENTS)}")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    from seglib import backends, datasets, experiments, profiles, results

    profile = profiles.get_profile(arguments.profile)
    root = datasets.dataset_root(profile)
    print(f"profile {profile.name}, {backends.describe()}, on {results.bench.machine_description()}; data {root}",
          flush=True)
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
