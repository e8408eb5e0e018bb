"""How long the book build took to execute each notebook, from its jupyter-cache records (longest first).

    python .ci/notebook_times.py [CACHE_DIR]        # default: _build/.jupyter_cache

myst-nb stores each successful execution with ``execution_seconds``. A record is "current" when the notebook's
code still matches it, "stale" when the code changed since, and a notebook whose last execution failed is listed
as FAILED (myst-nb keeps its traceback and caches nothing). Reads the cache, never writes it.
"""

import sys
from pathlib import Path

import nbformat
from jupyter_cache import get_cache


def _name(uri: str) -> str:
    path = Path(uri)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return uri


def main(cache_dir: Path) -> int:
    if not (cache_dir / "global.db").is_file():
        print(f"no jupyter-cache at {cache_dir}", file=sys.stderr)
        return 1
    cache = get_cache(cache_dir)
    rows = []
    for record in cache.list_cache_records():
        seconds = (record.data or {}).get("execution_seconds")
        path = Path(record.uri)
        if not path.is_file():
            state = "missing"
        else:
            _, hashkey = cache.create_hashed_notebook(nbformat.read(path, as_version=4))
            state = "current" if hashkey == record.hashkey else "stale"
        rows.append((seconds, _name(record.uri), state, f"{record.created:%Y-%m-%d %H:%M:%S}"))
    failed = [_name(r.uri) for r in cache.list_project_records() if r.traceback]

    rows.sort(key=lambda row: (-(row[0] or 0), row[1]))
    width = max([len(row[1]) for row in rows] + [len(name) for name in failed] + [len("total (current)")])
    print(f"{'notebook':<{width}}  {'seconds':>8}  {'state':<7}  executed (UTC)")
    for seconds, name, state, created in rows:
        shown = "?" if seconds is None else f"{seconds:.1f}"
        print(f"{name:<{width}}  {shown:>8}  {state:<7}  {created}")
    for name in sorted(failed):
        print(f"{name:<{width}}  {'FAILED':>8}  (execution failed: nothing cached)")
    current = [row[0] or 0 for row in rows if row[2] == "current"]
    print(f"{'total (current)':<{width}}  {sum(current):>8.1f}  {len(current)} notebooks")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "_build/.jupyter_cache")))
