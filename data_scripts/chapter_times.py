"""Record how long a book build took to execute each chapter: the times the first cell of every chapter states.

Reads:  a Jupyter Book build's execution cache (``--cache``, default ``_build/.jupyter_cache``): myst-nb stores each
        successful execution with its ``execution_seconds``. Only records of the chapters' current code are taken
        (a record of code that has changed since is stale, and left out with a note).
Writes: ``seglib/chapter_times/<profile>.json`` (``--output-dir``; the profile the build ran, ``--profile``,
        default ``$SEGLIB_PROFILE`` or ``ci``): seconds per chapter, the machine (``--machine``, default this one,
        as :func:`seglib.bench.machine_description` names it: run this where the build ran), the date of the newest
        execution, and the commit checked out beside the cache. :mod:`seglib.notebook` reads the file.

After a full build, on the build machine::

    jupyter-book build . -W --keep-going
    python data_scripts/chapter_times.py                          # SEGLIB_PROFILE=ci: seglib/chapter_times/ci.json

CI does this in both of its builds and uploads the files (artifacts ``chapter-times-ci``, ``chapter-times-colab``):
commit them to update the book's stated times.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

try:
    import seglib  # noqa: F401  (importable when installed or run from the repository root)
except ImportError:  # run as a file from elsewhere: the package lives next to this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seglib import bench, notebook
from seglib.profiles import PROFILE_ENV, get_profile

SOURCE = "execution seconds of a Jupyter Book build, from its execution cache (data_scripts/chapter_times.py)"


def measured(cache_dir: Path) -> tuple[dict[str, float], str, list[str]]:
    """``(seconds by notebook name, date of the newest execution (ISO), notes)`` from a jupyter-cache: the records
    whose notebook still has the code they executed."""
    import nbformat
    from jupyter_cache import get_cache

    if not (cache_dir / "global.db").is_file():
        raise FileNotFoundError(f"no jupyter-cache at {cache_dir} (build the book first)")
    cache = get_cache(cache_dir)
    seconds, dates, notes = {}, [], []
    for record in cache.list_cache_records():
        path, value = Path(record.uri), (record.data or {}).get("execution_seconds")
        if value is None:
            notes.append(f"{path.name}: no execution time recorded")
            continue
        if not path.is_file():
            notes.append(f"{path.name}: the notebook is gone")
            continue
        _, hashkey = cache.create_hashed_notebook(nbformat.read(path, as_version=4))
        if hashkey != record.hashkey:
            notes.append(f"{path.name}: its code changed since this execution (stale, left out)")
            continue
        if path.stem in seconds:
            notes.append(f"{path.name}: executed twice in the cache; keeping the newest")
        seconds[path.stem] = float(value)
        dates.append(record.created)
    if not seconds:
        raise ValueError(f"{cache_dir}: no current execution of any notebook")
    return seconds, max(dates).date().isoformat(), notes


def commit(folder: Path) -> str | None:
    """The commit checked out at ``folder`` (None where it is no git checkout)."""
    try:
        result = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Record a book build's execution time per chapter.")
    parser.add_argument("--cache", type=Path, default=Path("_build/.jupyter_cache"),
                        help="the build's jupyter-cache (default: _build/.jupyter_cache)")
    parser.add_argument("--profile", default=os.environ.get(PROFILE_ENV) or "ci",
                        help=f"the run profile the build ran (default: ${PROFILE_ENV}, else ci)")
    parser.add_argument("--machine", help="the machine the build ran on (default: this one)")
    parser.add_argument("--output-dir", type=Path, default=notebook.TIMES_DIR,
                        help="where to write <profile>.json (default: seglib/chapter_times)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        profile = get_profile(args.profile).name
        seconds, date, notes = measured(args.cache)
    except (OSError, ValueError) as error:
        print(error, file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    document = notebook.times_document(profile, seconds, args.machine or bench.machine_description(), date, SOURCE,
                                       commit(args.cache.resolve().parent.parent))
    path = notebook.write_times(document, args.output_dir)
    print(f"{path}: {len(seconds)} chapters, {notebook.format_duration(sum(seconds.values()))} in all, "
          f"{profile} profile, {document['machine']}, {date}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
