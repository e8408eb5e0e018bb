"""Make the student notebooks: the book's chapters with their solutions removed.

Reads:  ``book/*.ipynb`` (``--book``), or the chapters named on the command line.
Writes: one notebook per chapter under ``--output`` (default ``student/``), the same file names: every solution
        dropdown and solution cell removed, each coding exercise's function left as a stub whose body raises
        ``NotImplementedError``, outputs stripped; the install cell, the profile cell and the chapter itself kept.
        An existing file is not overwritten unless ``--force`` is given.

The check cells stay: in the student's notebook ``exercises.check("02.1", remap_to_categories)`` reports "not
attempted" until the function is written, then what is wrong, then "passed". The work is done by
:func:`seglib.exercises.notebooks.student_version`.

Example::

    python data_scripts/make_student_notebooks.py --output student/
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    import seglib  # noqa: F401  (importable when installed or run from the repository root)
except ImportError:  # run as a file from elsewhere: the package lives next to this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seglib import safeio
from seglib.exercises import notebooks

REPOSITORY = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Make the student notebooks: the chapters without their solutions.")
    parser.add_argument("chapters", nargs="*", type=Path, help="chapter notebooks (default: every one in --book)")
    parser.add_argument("--book", type=Path, default=REPOSITORY / "book", help="the book's folder (default: book/)")
    parser.add_argument("--output", type=Path, default=Path("student"), help="where to write (default: student/)")
    parser.add_argument("--force", action="store_true", help="overwrite student notebooks that exist")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chapters = args.chapters or sorted(args.book.glob("*.ipynb"))
    if not chapters:
        print(f"no notebooks in {args.book}", file=sys.stderr)
        return 2
    targets = [args.output / chapter.name for chapter in chapters]
    existing = [target for target in targets if target.exists()]
    if existing and not args.force:
        print(f"{existing[0]} exists (and {len(existing) - 1} more); nothing written - pass --force to overwrite "
              "student notebooks (your students' work is not kept there, is it?)", file=sys.stderr)
        return 2
    for chapter, target in zip(chapters, targets):
        try:
            student = notebooks.student_version(json.loads(chapter.read_text(encoding="utf-8")))
        except (OSError, ValueError) as error:
            print(f"{chapter}: {error}", file=sys.stderr)
            return 1
        safeio.atomic_write_text(target, json.dumps(student, indent=1, ensure_ascii=False) + "\n")
        stubs = sum('NotImplementedError("exercise' in "".join(cell["source"]) for cell in student["cells"])
        print(f"{target}: {stubs} function(s) to complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
