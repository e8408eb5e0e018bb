"""Execute each chapter once in CI: the tests reuse the book build's executions.

``jupyter-book build`` (``execute_notebooks: cache``) executes every chapter and stores each successful execution
in a jupyter-cache folder (``_build/.jupyter_cache``), keyed by a hash of the notebook's code cells. When
``SEGLIB_BOOK_EXECUTED`` names that folder, each notebook that nbmake collected and whose *current* code has a
cached execution is not executed again: its test reads the executed notebook from the cache and fails on any
error output. A notebook without a match (its code changed since the build, or its execution failed) is executed
by nbmake as usual, and so is every notebook when the variable is unset. ``tests/conftest.py`` calls the hooks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nbformat
import pytest

ENV = "SEGLIB_BOOK_EXECUTED"
PROPERTY = "seglib_book_cache"  # user property on notebook test reports; read by the terminal summary


@dataclass(frozen=True)
class CachedExecution:
    """A successful execution of a notebook's current code, stored by the book build."""

    notebook: Path  # the source notebook
    pk: int  # the jupyter-cache record
    executed: Path  # the executed notebook, with its outputs
    created: datetime  # when it was cached (UTC)
    seconds: float | None  # execution time, as myst-nb recorded it

    def describe(self) -> str:
        seconds = "?" if self.seconds is None else f"{self.seconds:.1f} s"
        return f"cache record {self.pk}, executed {self.created:%Y-%m-%d %H:%M:%S} UTC in {seconds}"

    def errors(self) -> list[str]:
        """One line per error output in the executed notebook (cells tagged ``raises-exception`` are allowed
        to raise, as in nbmake and nbclient)."""
        nb = nbformat.read(self.executed, as_version=4)  # jupyter-cache keeps only the code cells
        found = []
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or "raises-exception" in cell.get("metadata", {}).get("tags", []):
                continue
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    found.append(f"code cell {index + 1}: {output.get('ename')}: {output.get('evalue')}")
        return found


def cached_execution(cache_dir: str | os.PathLike, notebook: str | os.PathLike) -> CachedExecution | None:
    """The cached execution of ``notebook``'s current code in the jupyter-cache ``cache_dir``, or None.

    Matches the way myst-nb looks notebooks up (``JupyterCacheBase.match_cache_notebook``: a hash of the code
    cells, their metadata and the kernelspec). Only successful executions are cached by the book build. Reads
    the cache and never writes to it (``get_cache_bundle`` would: it touches the record).
    """
    cache_dir = Path(cache_dir)
    if not (cache_dir / "global.db").is_file():  # get_cache would create an empty cache
        return None
    from jupyter_cache import get_cache

    cache = get_cache(cache_dir)
    try:
        record = cache.match_cache_notebook(nbformat.read(notebook, as_version=4))
    except KeyError:
        return None
    executed = cache_dir / "executed" / record.hashkey / "base.ipynb"
    if not executed.is_file():
        return None
    return CachedExecution(Path(notebook), record.pk, executed, record.created,
                           (record.data or {}).get("execution_seconds"))


class CachedNotebookError(Exception):
    pass


class CachedNotebookCheck(pytest.Item):
    """Stands in for nbmake's NotebookItem when the book build already executed the notebook's code."""

    def __init__(self, *, execution: CachedExecution, **kwargs):
        super().__init__(**kwargs)
        self.execution = execution
        self.user_properties.append((PROPERTY, f"executed once, by the book build: {execution.describe()}"))

    def runtest(self):
        errors = self.execution.errors()
        if errors:
            raise CachedNotebookError(
                f"{self.execution.notebook.name}: error output in the book build's execution "
                f"({self.execution.describe()}, {self.execution.executed}):\n" + "\n".join(errors))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CachedNotebookError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, 0, f"{self.name} (checked in the book build's cache)"


def _cache_dir(config) -> Path | None:
    value = os.environ.get(ENV)
    if not value:
        return None
    if config.option.overwrite or config.option.nbmake_find_import_errors:  # these need nbmake's own run
        return None
    return config.invocation_params.dir / value


def collection_modifyitems(config, items) -> None:
    """Replace each nbmake item whose current code the book build executed by a check of that execution."""
    if not getattr(config.option, "nbmake", False):
        return
    cache_dir = _cache_dir(config)
    if cache_dir is None:
        return
    from nbmake.pytest_items import NotebookItem

    for index, item in enumerate(items):
        if not isinstance(item, NotebookItem):
            continue
        try:
            execution = cached_execution(cache_dir, item.path)
        except Exception as error:  # an unreadable notebook or cache: nbmake runs the notebook and reports
            item.user_properties.append((PROPERTY, f"cache lookup failed ({error!r}): executed by nbmake"))
            continue
        if execution is None:
            item.user_properties.append((PROPERTY, f"not in the book build's cache {cache_dir}: executed by nbmake"))
        else:
            items[index] = CachedNotebookCheck.from_parent(item.parent, name=item.name, execution=execution)


def terminal_summary(terminalreporter) -> None:
    """List how each notebook was tested (works with xdist: user properties travel with the reports)."""
    found = {}
    for outcome in ("passed", "skipped", "error", "failed"):  # a later outcome overrides an earlier one
        for report in terminalreporter.stats.get(outcome, []):
            for key, value in getattr(report, "user_properties", ()):
                if key == PROPERTY and (outcome == "error" or report.when == "call"
                                        or report.nodeid not in found):
                    found[report.nodeid] = f"{outcome.upper():7} {report.nodeid.split('::')[0]}: {value}"
    if found:
        terminalreporter.write_sep("-", f"notebooks and the book build's execution cache ({ENV})")
        for nodeid in sorted(found):
            terminalreporter.write_line(found[nodeid])
