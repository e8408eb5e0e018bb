"""What each use installs: pyproject.toml's extras hold what the chapters import, at ranges that hold the tested pins,
and ``pip install "seglib[book]"`` alone, into a fresh virtual environment, runs the first chapters (as Colab does).

The chapters' install cells ask for ``seglib[book]`` (chapters 13 and 14 add ``serve`` and ``azure``:
``data_scripts/sync_notebooks.py``'s ``EXTRAS``). The static test reads every chapter's imports, and those of every
seglib module they reach (function bodies included), and checks that the extras the chapter asks for provide them.
The slow test installs ``.[book]`` with ``constraints.txt`` into a new environment and executes chapters 0-2 there
with nbmake, after a notebook that imports everything the ``[book]`` chapters import.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import test_architecture

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))
#: Imported where installed, never required: Keras's other backends (seglib.backends probes them).
OPTIONAL = {"jax", "torch"}
#: The chapters the slow test executes in a fresh environment with only ``seglib[book]`` (and the tools to run them).
FRESH_CHAPTERS = ("00_introduction", "01_mask_formats", "02_categories")
#: What executing notebooks takes besides the chapters' own needs (pinned by constraints.txt).
RUNNERS = ("pytest", "nbmake", "ipykernel")


def _sync_script():
    spec = importlib.util.spec_from_file_location("sync_notebooks", ROOT / "data_scripts" / "sync_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SYNC = _sync_script()


def _code(path: Path) -> list[str]:
    """The code cells of a notebook, IPython magics (``%pip``) replaced by ``pass``."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [re.sub(r"^(\s*)[%!].*$", r"\1pass", "".join(cell["source"]), flags=re.M)
            for cell in cells if cell["cell_type"] == "code"]


def _imports(source: str) -> tuple[set[str], set[str]]:
    """``(third-party top-level modules, seglib names)`` that ``source`` imports anywhere."""
    third, seglib = set(), set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("seglib."):
                    seglib.add(alias.name.removeprefix("seglib."))
                else:
                    third.add(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module == "seglib":
                seglib |= {alias.name for alias in node.names}
            elif node.module.startswith("seglib."):
                seglib.add(node.module.removeprefix("seglib."))
            else:
                third.add(node.module.split(".")[0])
    return third - set(sys.stdlib_module_names) - {"seglib", "__future__"}, seglib


@functools.cache
def _seglib() -> tuple[dict[str, Path], dict[str, set[str]]]:
    return test_architecture._modules(), test_architecture._graph()


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def needed_modules(path: Path) -> set[str]:
    """Every third-party module chapter ``path`` imports, itself or through the seglib modules it reaches."""
    modules, graph = _seglib()
    third, names = set(), set()
    for source in _code(path):
        found, seglib = _imports(source)
        third, names = third | found, names | seglib
    todo = {name if name in modules else name.rsplit(".", 1)[0] for name in names}
    todo &= set(modules)
    reached = set()
    while todo:
        name = todo.pop()
        reached.add(name)
        todo |= graph[name] - reached
    for name in reached:
        third |= _imports(modules[name].read_text(encoding="utf-8"))[0]
    return third - OPTIONAL


def _requirements(extras: tuple[str, ...]) -> list[Requirement]:
    """The base dependencies and those of ``extras`` (self-references expanded)."""
    found, todo, done = [Requirement(text) for text in PYPROJECT["dependencies"]], list(extras), set()
    while todo:
        extra = todo.pop()
        done.add(extra)
        for requirement in map(Requirement, PYPROJECT["optional-dependencies"][extra]):
            if canonicalize_name(requirement.name) == "seglib":
                todo += [name for name in requirement.extras if name not in done]
            else:
                found.append(requirement)
    return found


@functools.cache
def _provided(extras: tuple[str, ...]) -> set[str]:
    """The distributions ``seglib[extras]`` installs: its requirements and theirs (read from this environment)."""
    environment = default_environment()
    todo = [canonicalize_name(requirement.name) for requirement in _requirements(extras)]
    provided = set()
    while todo:
        name = todo.pop()
        if name in provided:
            continue
        provided.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:  # not installed here (another platform's dependency)
            continue
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate(environment | {"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return provided


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_the_extras_a_chapter_installs_provide_what_it_imports(path):
    extras = SYNC.EXTRAS.get(path.stem, SYNC.DEFAULT_EXTRAS)
    provided, distributions = _provided(extras), _distributions()
    missing = {module: distributions.get(module, ["?"]) for module in needed_modules(path)
               if not {canonicalize_name(name) for name in distributions.get(module, [])} & provided}
    assert not missing, (f"{path.name} imports {sorted(missing)} (from {missing}), which seglib[{','.join(extras)}] "
                         "does not install: add it to an extra in pyproject.toml (or to EXTRAS in "
                         "data_scripts/sync_notebooks.py for this chapter)")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-") and "==" in line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_the_ranges_hold_the_tested_pins():
    """Every requirement of pyproject.toml is met by constraints.txt's pin, and requirements.txt pins inside it."""
    pins = _pins(ROOT / "constraints.txt")
    requirements = _pins(ROOT / "requirements.txt")
    declared = _requirements(tuple(PYPROJECT["optional-dependencies"]))
    for requirement in declared:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not pinned in constraints.txt: regenerate it (its header says how)"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"pyproject.toml asks for {requirement}, constraints.txt pins {pins[name]}")
        if name in requirements:
            assert requirements[name] == pins[name], f"{name}: requirements.txt and constraints.txt disagree"
    assert "-e .[book,serve,azure,test]" in (ROOT / "requirements.txt").read_text().splitlines()


def test_every_extra_is_used_and_the_test_extra_holds_the_others():
    extras = PYPROJECT["optional-dependencies"]
    assert set(extras) == {"book", "serve", "azure", "test"}
    assert {name for chapter_extras in SYNC.EXTRAS.values() for name in chapter_extras} <= set(extras)
    assert {canonicalize_name(r.name) for r in _requirements(("test",))} >= {
        canonicalize_name(r.name) for r in _requirements(("book", "serve", "azure"))}


# -- the [book] extra alone, in a fresh environment ------------------------------------------------------------------

def _book_only_modules() -> list[str]:
    """What the chapters that ask for ``seglib[book]`` alone import: the modules the fresh environment must have."""
    return sorted(set().union(*(needed_modules(path) for path in CHAPTERS if path.stem not in SYNC.EXTRAS)))


def _environment_check(venv: Path) -> dict:
    """A notebook that fails unless its kernel runs in ``venv`` with the installed seglib (the measured times
    included as package data) and every module the [book] chapters import."""
    import nbformat

    cell = (f"import importlib, sys\nfrom pathlib import Path\n\nVENV = Path({str(venv.resolve())!r})\n"
            "assert Path(sys.prefix).resolve() == VENV, sys.prefix\n"
            "import seglib\nfrom seglib import notebook\n"
            "assert VENV in Path(seglib.__file__).resolve().parents, seglib.__file__\n"
            "assert (notebook.TIMES_DIR / 'ci.json').is_file(), 'the measured times are not installed'\n"
            f"for name in {_book_only_modules()!r}:\n    importlib.import_module(name)\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _run(command: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    return result


@pytest.mark.slow
@pytest.mark.clean_install
def test_the_book_extra_alone_runs_the_first_chapters(tmp_path):
    """``pip install -c constraints.txt ".[book]"`` (and only pytest, nbmake, ipykernel to execute) in a new
    virtual environment, then chapters 0-2 executed there: a chapter that imports what [book] lacks fails here."""
    import nbformat

    started = time.monotonic()
    source, venv, book, data = (tmp_path / name for name in ("source", "venv", "book", "data"))
    # the package from a copy, so the build leaves nothing in the checkout (pip builds in the source folder)
    shutil.copytree(ROOT / "seglib", source / "seglib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith(("SEGLIB_", "PYTHON", "VIRTUAL_ENV", "KERAS_", "CITYSCAPES_", "JUPYTER"))}
    environ |= {"PATH": f"{venv / 'bin'}{os.pathsep}{environ.get('PATH', '')}", "SEGLIB_PROFILE": "ci",
                "SEGLIB_DATA": str(data), "NO_ALBUMENTATIONS_UPDATE": "1",
                "JUPYTER_DATA_DIR": str(tmp_path / "jupyter"), "MPLBACKEND": "Agg"}
    _run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    # --no-compile: Python compiles what the chapters import when they import it (TensorFlow has thousands of files)
    _run([python, "-m", "pip", "install", "--quiet", "--no-compile", "-c", ROOT / "constraints.txt", f"{source}[book]",
          *RUNNERS],
         env=environ, cwd=tmp_path, timeout=1200)
    installed = time.monotonic()

    book.mkdir()
    for name in FRESH_CHAPTERS:
        shutil.copy2(ROOT / "book" / f"{name}.ipynb", book)
    nbformat.write(_environment_check(venv), book / "00_environment.ipynb")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # none of the repository's settings (xdist, warning filters)
    result = _run([python, "-m", "pytest", "-c", tmp_path / "pytest.ini", "--rootdir", tmp_path, "-p",
                   "no:cacheprovider", "--nbmake", "--nbmake-timeout=600", "-q", book], env=environ, cwd=tmp_path,
                  timeout=1800)
    assert f"{len(FRESH_CHAPTERS) + 1} passed" in result.stdout, result.stdout
    print(f"fresh environment: install {installed - started:.0f} s, chapters {time.monotonic() - installed:.0f} s")
