"""Grade a class: execute every submitted student notebook and write who passed which checked exercise.

Reads:  ``--submissions``: a folder of ``*.ipynb``, one per student (the file name, without ``.ipynb``, names the
        student: collect them as ``alice.ipynb``, ``bob.ipynb``...).
Writes: ``--output`` (a CSV that must not exist yet): ``student, chapter, exercise, status, message`` with
        ``status`` one of ``passed``, ``failed`` (the check's message says what is wrong), ``not attempted``
        (the stub still raises ``NotImplementedError``), ``error`` (the notebook raised before the check, or ran
        out of ``--timeout`` seconds).

**This runs your students' code.** Each submission runs in its own process with a time limit and its own scratch
folder, so one that loops forever, raises or deletes files in its folder cannot stop or spoil the grading of the
others; it could still read or delete your files. Grade in a container or a throwaway account. The chapters need
the book's dataset: set ``SEGLIB_PROFILE`` (and ``SEGLIB_DATA``) as for the book; training chapters read back the
runs the book trained, so build the book (or run the chapters) once before grading them. The work is done by
:mod:`seglib.exercises.grading`.

Example::

    python data_scripts/grade_notebooks.py --submissions submitted/02/ --output grades-02.csv --timeout 600
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

try:
    import seglib  # noqa: F401  (importable when installed or run from the repository root)
except ImportError:  # run as a file from elsewhere: the package lives next to this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seglib.exercises import grading


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--timeout must be a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"--timeout must be a positive number of seconds, got {text!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Grade submitted student notebooks into a CSV (runs their code).")
    parser.add_argument("--submissions", type=Path, required=True, help="folder of *.ipynb, one per student")
    parser.add_argument("--output", type=Path, required=True, help="the CSV to write (must not exist)")
    parser.add_argument("--timeout", type=positive_seconds, default=900.0,
                        help="seconds one notebook may run (default 900)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.output.exists():
        print(f"{args.output} exists; choose another --output (grades are never overwritten)", file=sys.stderr)
        return 2
    try:
        grades = grading.grade(args.submissions, args.timeout)
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    grading.write_csv(grades, args.output)
    counts = Counter(grade.status for grade in grades)
    print(f"{args.output}: " + ", ".join(f"{counts[status]} {status}" for status in
                                         ("passed", "failed", "not attempted", "error")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
