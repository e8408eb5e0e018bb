"""Train chapter 9's U-Net on a Cityscapes-layout folder and write the model to an output folder.

Reads:  ``--data``, a dataset root with ``leftImg8bit/`` and ``gtFine/`` (the real Cityscapes or the generated
        street scenes); its train split is trained on, its val split validates.
Writes: ``--output``/``model.keras`` (the trained model, ready for ``seglib.predict.Predictor`` and for
        registering as an Azure ML model from the folder) and ``--output``/``run.json`` (history, seconds,
        settings, machine). The run itself is kept by :func:`seglib.train.train_or_load` under
        ``$SEGLIB_DATA/runs/`` exactly as chapter 9 keeps it: the same settings on the same data read the finished
        run back instead of training again.

This is the command of the Azure ML job in ``deploy/azureml/train-job.yml``; it runs unchanged on a laptop::

    python data_scripts/train.py --data ~/.cache/seglib/synthetic-cityscapes-v1-256x512 --output /tmp/model
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

try:
    import seglib  # noqa: F401  (importable when installed or run from the repository root)
except ImportError:  # run as a file from elsewhere (an Azure ML job's code folder): the package is next door
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seglib.cityscapes import check_dataset_root
from seglib.profiles import PROFILE_ENV, PROFILES, get_profile

MODEL_FILE = "model.keras"
#: Chapter 9's U-Net: 16 base filters trains on a CPU.
BASE_FILTERS = 16


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train chapter 9's U-Net and write model.keras to a folder.")
    parser.add_argument("--data", type=Path, required=True, help="dataset root (leftImg8bit/ and gtFine/)")
    parser.add_argument("--output", type=Path, required=True, help="folder to write model.keras and run.json to")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help=f"run profile: input size, batch, epochs (default: ${PROFILE_ENV}, else ci)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the profile's)")
    parser.add_argument("--base-filters", type=int, default=BASE_FILTERS,
                        help=f"U-Net width (default {BASE_FILTERS}, chapter 9's)")
    return parser.parse_args(argv)


def train(data: Path, output: Path, profile_name: str | None, epochs: int | None, base_filters: int):
    """Train (or read back) the run and copy its model and record into ``output``; returns the Run."""
    profile = get_profile(profile_name)
    root = check_dataset_root(data)
    from seglib import models, train as training  # TensorFlow (~6 s) only once the arguments are known good

    run = training.train_or_load(f"unet{base_filters}",
                                 lambda: models.unet((*profile.image_size, 3), base_filters=base_filters),
                                 root, profile, epochs=epochs, verbose=2)
    output.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run.folder / "final.keras", output / MODEL_FILE)
    shutil.copyfile(run.folder / "run.json", output / "run.json")
    return run


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        print(f"error: --epochs must be at least 1, got {args.epochs}", file=sys.stderr)
        return 2
    try:
        run = train(args.data, args.output, args.profile, args.epochs, args.base_filters)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{'read back' if run.reused else 'trained'} {run.folder.name}: {run.epochs} epochs, "
          f"best val mean IoU {max(run.history['val_mean_iou']):.3f} -> {args.output / MODEL_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
