"""Write the first code cell of every chapter from one template: install seglib where it is missing, then start.

Reads:  ``_config.yml`` (``repository.url`` and ``repository.branch``: the one place the book's repository is named;
        the launch buttons read it too), and ``book/*.ipynb`` or the notebooks named on the command line.
Writes: each notebook's managed cell, its first code cell, where it differs from the template::

            import importlib.util

            if importlib.util.find_spec("seglib") is None:
                %pip install --quiet "seglib[book] @ git+<repository.url>@<repository.branch>"
                importlib.invalidate_caches()

            from seglib import notebook

            notebook.start("09_training")

        The extras are ``[book]``, and more where a chapter needs them (:data:`EXTRAS`); a chapter that uses chapter
        9's trained U-Net (it calls ``book_model_path`` or ``train_book_unet``) passes ``uses_trained_model=True``.
        A notebook without such a cell gets one before its first code cell. Outputs stay stripped, the cell keeps its
        id, and the file is written as the repository writes notebooks (sorted keys, indent 1, a final newline).

``--check`` writes nothing and exits 1 naming the notebooks that differ (``tests/test_repo.py`` runs the same
comparison). A fork changes ``repository.url`` in ``_config.yml`` and runs::

    python data_scripts/sync_notebooks.py                                   # every chapter
    python data_scripts/sync_notebooks.py book/05_augmentation.ipynb        # only these
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

import yaml

try:
    import seglib  # noqa: F401  (importable when installed or run from the repository root)
except ImportError:  # run as a file from elsewhere: the package lives next to this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seglib.exercises.notebooks import cell_source

REPOSITORY = Path(__file__).resolve().parents[1]
#: The seglib extras a chapter's install cell asks for, where ``[book]`` is not enough: the web app (``[serve]``:
#: flask, gunicorn) and Azure ML's SDK and inference server (``[azure]``). pyproject.toml defines them.
EXTRAS = {"13_serving": ("book", "serve"), "14_azure": ("book", "serve", "azure")}
DEFAULT_EXTRAS = ("book",)
#: How the managed cell is recognised: the test for an installed seglib.
MARKER = 'importlib.util.find_spec("seglib")'
#: A chapter that calls one of these needs chapter 9's trained U-Net (seglib.experiments).
_USES_TRAINED_MODEL = re.compile(r"\b(book_model_path|train_book_unet)\(")
TEMPLATE = '''\
# The book's library: installed here from the book's repository where it is missing (Colab); locally,
# `pip install -r requirements.txt` installed it. Then the run profile, the data folder and this chapter's times.
import importlib.util

REPOSITORY = "{url}"  # the book's repository (_config.yml's repository.url)
if {marker} is None:
    %pip install --quiet "{requirement}"
    importlib.invalidate_caches()

from seglib import notebook

notebook.start({arguments})'''


def repository(config: Path = REPOSITORY / "_config.yml") -> tuple[str, str]:
    """``(url, branch)`` of ``repository`` in the book's ``_config.yml``; ``ValueError`` where they are missing."""
    settings = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("repository") or {}
    url, branch = settings.get("url"), settings.get("branch", "main")
    if not url or not re.fullmatch(r"https://[^\s\"'@]+", str(url)):
        raise ValueError(f"{config}: repository.url must be the https address of the book's repository, got {url!r}")
    if not re.fullmatch(r"[\w./-]+", str(branch)):
        raise ValueError(f"{config}: repository.branch {branch!r} is not a branch name")
    return str(url).rstrip("/"), str(branch)


def requirement(url: str, branch: str, extras: tuple[str, ...] = DEFAULT_EXTRAS) -> str:
    """``seglib[book] @ git+https://...@main``: what pip installs in Colab."""
    return f"seglib[{','.join(extras)}] @ git+{url}@{branch}"


def managed_source(chapter: str, url: str, branch: str, uses_trained_model: bool = False) -> str:
    """The first code cell of ``chapter`` (the notebook's name without ``.ipynb``)."""
    arguments = json.dumps(chapter) + (", uses_trained_model=True" if uses_trained_model else "")
    return TEMPLATE.format(marker=MARKER, url=url, requirement=requirement(url, branch, EXTRAS.get(chapter, DEFAULT_EXTRAS)),
                           arguments=arguments)


def uses_trained_model(nb: dict) -> bool:
    """Whether a code cell of ``nb`` other than the managed one trains or loads chapter 9's U-Net."""
    return any(_USES_TRAINED_MODEL.search(cell_source(cell)) for cell in nb["cells"]
               if cell["cell_type"] == "code" and MARKER not in cell_source(cell))


def _new_id(nb: dict) -> str:
    taken = {cell.get("id") for cell in nb["cells"]}
    return next(name for index in range(len(taken) + 1) if (name := f"install-{index}") not in taken)


def synced(nb: dict, chapter: str, url: str, branch: str) -> dict:
    """A copy of notebook ``nb`` whose managed cell is the template's (inserted before the first code cell where
    there is none). ``ValueError`` where a managed cell exists but is not the first code cell."""
    nb = copy.deepcopy(nb)
    source = managed_source(chapter, url, branch, uses_trained_model(nb))
    code = [index for index, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code"]
    managed = [index for index in code if MARKER in cell_source(nb["cells"][index])]
    if managed and managed != code[:1]:
        raise ValueError(f"{chapter}: the cell that installs seglib must be the first code cell and the only one "
                         f"(code cells {[code.index(index) for index in managed]})")
    lines = source.splitlines(keepends=True)
    if managed:
        cell = nb["cells"][managed[0]]
        cell.update(source=lines, outputs=[], execution_count=None)
    else:
        at = code[0] if code else len(nb["cells"])
        nb["cells"].insert(at, {"cell_type": "code", "execution_count": None, "id": _new_id(nb), "metadata": {},
                                "outputs": [], "source": lines})
    return nb


def dumps(nb: dict) -> str:
    """A notebook as the repository stores it."""
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def expected_text(path: Path, url: str, branch: str) -> str:
    """The text ``path`` should hold once its managed cell is synced."""
    return dumps(synced(json.loads(path.read_text(encoding="utf-8")), path.stem, url, branch))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Write every chapter's first code cell from one template.")
    parser.add_argument("notebooks", nargs="*", type=Path, help="the notebooks to touch (default: every one in --book)")
    parser.add_argument("--book", type=Path, default=REPOSITORY / "book", help="the book's folder (default: book/)")
    parser.add_argument("--config", type=Path, default=REPOSITORY / "_config.yml",
                        help="the Jupyter Book configuration naming the repository (default: _config.yml)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a notebook differs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        url, branch = repository(args.config)
    except (OSError, ValueError) as error:
        print(error, file=sys.stderr)
        return 2
    paths = args.notebooks or sorted(args.book.glob("*.ipynb"))
    if not paths:
        print(f"no notebooks in {args.book}", file=sys.stderr)
        return 2
    differ = []
    for path in paths:
        try:
            text = expected_text(path, url, branch)
        except (OSError, ValueError, KeyError) as error:
            print(f"{path}: {error}", file=sys.stderr)
            return 2
        if text == path.read_text(encoding="utf-8"):
            continue
        differ.append(path)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    verb = "differ from the template" if args.check else "rewritten"
    print(f"{len(differ)} of {len(paths)} notebooks {verb}" + "".join(f"\n  {path}" for path in differ))
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
