"""Generate the book's license-clean street scenes in the Cityscapes file layout.

Reads:  nothing (every frame is procedurally generated from ``--seed``); an existing ``--root`` is only reused
        if its ``seglib_synthetic.json`` marker records the same generator version, seed and size.
Writes: under ``--root`` (default :func:`seglib.datasets.synthetic_root`, the folder the book's
        :func:`seglib.datasets.dataset_root` uses: ``$SEGLIB_DATA/synthetic-cityscapes-v<version>-{H}x{W}``):
        ``leftImg8bit/<split>/<city>/<city>_<seq>_000019_leftImg8bit.png`` and
        ``gtFine/<split>/<city>/<city>_<seq>_000019_gtFine_{color,labelIds,instanceIds}.png`` + ``_polygons.json``,
        plus the marker and a ``README.txt``.

Sizes and frame counts default to the run profile (``--profile``, default ``$SEGLIB_PROFILE``, else ``ci``).
Only missing frames are generated: rerun with larger counts to add frames, or after an interrupt to finish.
A non-empty folder without the marker is never written to. The work is done by :mod:`seglib.synthetic`.

Ctrl-C (exit code 130) and SIGTERM (exit code 143) stop the run cleanly: the worker processes are terminated (they
also die with this process if it is killed), every frame file is whole or absent, and a rerun finishes the job.

Example::

    python data_scripts/make_synthetic.py --profile colab --workers 4
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

try:
    import seglib  # noqa: F401  (importable when installed or run from the repository root)
except ImportError:  # run as a file from elsewhere: the package lives next to this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seglib.cityscapes import SPLITS
from seglib.datasets import synthetic_root
from seglib.profiles import PROFILE_ENV, PROFILES, get_profile
from seglib.synthetic import ensure_dataset


class Terminated(BaseException):
    """SIGTERM, raised as an exception (like Ctrl-C's KeyboardInterrupt) so that the workers are stopped first."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Generate synthetic street scenes in the Cityscapes layout (license-clean, made from a seed).",
        epilog="Counts and size default to the run profile; only missing frames are generated.",
    )
    parser.add_argument("--root", type=Path, default=None,
                        help="output folder (default: $SEGLIB_DATA or ~/.cache/seglib, then "
                             "/synthetic-cityscapes-v<version>-HxW, where the book looks)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help=f"run profile giving the default size and counts (default: ${PROFILE_ENV}, else ci)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="frame size (default: the profile's; the real Cityscapes is 1024 2048)")
    for split in SPLITS:
        parser.add_argument(f"--{split}", type=int, default=None, metavar="N",
                            help=f"number of {split} frames (default: the profile's)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default: 0, the book's)")
    parser.add_argument("--workers", type=positive_int, default=None,
                        help="worker processes (default: 1 for few missing frames, else one per CPU)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        profile = get_profile(args.profile)
        size = tuple(args.size) if args.size else profile.synthetic_size
        asked = {split: getattr(args, split) for split in SPLITS}
        counts = {split: profile.synthetic_counts.get(split, 0) if n is None else n for split, n in asked.items()}
        root = args.root or synthetic_root(size)
        print(f"synthetic street scenes {size[0]}x{size[1]}, seed {args.seed}, "
              f"{', '.join(f'{n} {split}' for split, n in counts.items())} -> {root}", flush=True)
        root = ensure_dataset(root, size, counts, seed=args.seed, workers=args.workers)
    except (ValueError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # a worker process died
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: workers stopped, the frames written so far are whole; rerun the same command to finish",
              file=sys.stderr)
        return 130
    except Terminated:
        print("terminated (SIGTERM): workers stopped, the frames written so far are whole; rerun the same command "
              "to finish", file=sys.stderr)
        return 143
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    print(f"done: {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
