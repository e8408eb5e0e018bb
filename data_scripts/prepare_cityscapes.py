"""Prepare a Cityscapes-layout dataset for fast training.

Reads:  ``<root>/leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and
        ``<root>/gtFine/<split>/<city>/*_gtFine_labelIds.png`` (``--root``, default ``$CITYSCAPES_DATASET``;
        the real Cityscapes or the generated street scenes).
Writes: under ``--out`` (default ``$SEGLIB_DATA/prepared-{H}x{W}``, or ``.../prepared-fullsize`` without ``--size``),
        in the same layout, for every frame of ``--splits``:
        ``gtFine/.../*_gtFine_categoryIds.png`` (8-bit grey category ids 0..7), and with ``--size H W`` also the
        image resized (area filter) and ``*_gtFine_labelIds.png`` resized (nearest neighbour only).

The input root is never written to. Reruns skip outputs that are up to date; an interrupted run (Ctrl-C: exit code
130, SIGTERM: 143) can simply be rerun. ``--size`` is at most 4096 8192 (:data:`seglib.prepare.MAX_SIZE`, four times a
Cityscapes frame per side); sizes and inputs are checked before the output folder is created. The work is done by
:mod:`seglib.prepare`, which documents the safety rules.

Example::

    python data_scripts/prepare_cityscapes.py --root ~/data/cityscapes --size 256 512
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

try:
    import seglib  # noqa: F401  (importable when installed or run from the repository root)
except ImportError:  # run as a file from elsewhere: the package lives next to this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seglib.cityscapes import CITYSCAPES_ENV, SPLITS
from seglib.prepare import (MAX_SIZE, PrepareReport, available_splits, check_output_size, default_output_root,
                            prepare_dataset)

#: Print a progress line every this many frames.
_PROGRESS_EVERY = 100


class Terminated(BaseException):
    """SIGTERM, raised as an exception (like Ctrl-C's KeyboardInterrupt) so that the file being written is dropped."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Write category masks (and optionally downscaled copies) of a Cityscapes-layout dataset.",
        epilog="The input root is only read; outputs go to a separate folder marked as made by this script.",
    )
    parser.add_argument("--root", type=Path, default=None,
                        help=f"Cityscapes-layout input root (default: ${CITYSCAPES_ENV})")
    parser.add_argument("--out", type=Path, default=None,
                        help="output root (default: $SEGLIB_DATA or ~/.cache/seglib, then /prepared-HxW, "
                             "or /prepared-fullsize without --size)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="also write images and labelIds resized to H x W, at most "
                             f"{MAX_SIZE[0]} {MAX_SIZE[1]} (default: full-size category masks only)")
    parser.add_argument("--splits", nargs="+", choices=SPLITS, default=None,
                        help="splits to prepare (default: every split the root has)")
    parser.add_argument("--quiet", action="store_true", help="print only the final counts")
    return parser.parse_args(argv)


def _input_root(root: Path | None) -> Path:
    if root is not None:
        return root.expanduser()
    if os.environ.get(CITYSCAPES_ENV):
        return Path(os.environ[CITYSCAPES_ENV]).expanduser()
    raise ValueError(
        f"no input dataset: pass --root DIR (a folder holding leftImg8bit/ and gtFine/), or set {CITYSCAPES_ENV} "
        "to your Cityscapes root"
    )


def _progress(split: str, done: int, total: int) -> None:
    if done % _PROGRESS_EVERY == 0 or done == total:
        print(f"  {split}: {done}/{total} frames", flush=True)


def _print_reports(reports: dict[str, PrepareReport], out: Path) -> None:
    for split, report in reports.items():
        print(f"{split}: {report.frames} frames, {report.written} files written, {report.skipped} up to date (skipped)")
    total = sum(reports.values(), PrepareReport())
    print(f"total: {total.written} files written, {total.skipped} skipped, in {out}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        size = None if args.size is None else check_output_size(args.size)
        root = _input_root(args.root)
        out = (args.out or default_output_root(size)).expanduser()
        splits = args.splits or available_splits(root) or ["train"]
        print(f"preparing {', '.join(splits)} of {root} -> {out}" + (f" at {size[0]}x{size[1]}" if size else ""))
        reports = prepare_dataset(root, out, splits, size, progress=None if args.quiet else _progress)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: every file written so far is whole; rerun the same command to finish", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated (SIGTERM): every file written so far is whole; rerun the same command to finish",
              file=sys.stderr)
        return 143
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    _print_reports(reports, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
