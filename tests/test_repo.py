"""The repository keeps its promises: CI runs the README's steps, chapters follow the skeleton, the workflow
is valid, notebooks carry no outputs, no Cityscapes data is committed, and the tests reuse the book build's
notebook executions when told to (SEGLIB_BOOK_EXECUTED)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))


def _readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_ci_runs_the_readme_commands():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in commands:
        assert command in ci_lines, f"README command not run verbatim by .ci/run: {command}"


#: Pages of the book that are not chapters: the teacher's guide has no skeleton of its own.
NOT_CHAPTERS = {"18_teachers_guide"}


def test_toc_lists_every_chapter_and_only_existing_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert sorted(files) == sorted(str(p.relative_to(ROOT).with_suffix("")) for p in CHAPTERS)
    assert yaml.safe_load((ROOT / "_config.yml").read_text())["only_build_toc_files"] is True


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_has_no_outputs_and_the_skeleton(path):
    notebook = json.loads(path.read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code), "strip outputs before committing"
    markdown = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown"]
    assert markdown[0].startswith("# "), "a chapter opens with its title"
    if path.stem in NOT_CHAPTERS:
        return  # a page for teachers, not a chapter: no exercises of its own
    headings = [line for text in markdown for line in text.splitlines() if line.startswith("## ")]
    for required in ("## What you will learn", "## Summary", "## Exercises"):
        assert required in headings, f"{path.name} lacks {required!r}"


WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_a_valid_github_workflow(path):
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_workflow_is_checked():
    assert {path.name for path in WORKFLOWS} >= {"ci.yml", "deploy-webapp.yml"}


def _uploads(job: dict) -> set[str]:
    return {step["with"]["name"] for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact")}


def test_pages_publishes_what_the_builds_upload_on_main_only():
    """The pages job deploys the CPU job's HTML, and the GPU job's colab build where that job passed."""
    jobs = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())["jobs"]
    pages = jobs["pages"]
    assert set(pages["needs"]) == {"cpu", "gpu-notebooks"}
    assert "refs/heads/main" in pages["if"] and "needs.cpu.result == 'success'" in pages["if"]
    assert pages["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    downloads = {step["with"]["name"]: step for step in pages["steps"]
                 if step.get("uses", "").startswith("actions/download-artifact")}
    assert "book-html" in _uploads(jobs["cpu"]) and "book-html-colab" in _uploads(jobs["gpu-notebooks"])
    assert downloads["book-html"]["with"]["path"] == "site" and "if" not in downloads["book-html"]
    assert downloads["book-html-colab"]["with"]["path"] == "site/colab"
    assert "needs.gpu-notebooks.result == 'success'" in downloads["book-html-colab"]["if"]
    uses = [step.get("uses", "").split("@")[0] for step in pages["steps"]]
    assert uses[-2:] == ["actions/upload-pages-artifact", "actions/deploy-pages"]
    assert pages["steps"][-2]["with"]["path"] == "site"


def _sync_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("sync_notebooks", ROOT / "data_scripts" / "sync_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_first_cell_is_the_template(path):
    """The install cell and the start of every chapter come from one template and _config.yml's repository.url:
    a fork changes that line and runs the script; this test says where it was forgotten."""
    sync = _sync_script()
    url, branch = sync.repository(ROOT / "_config.yml")
    assert path.read_text(encoding="utf-8") == sync.expected_text(path, url, branch), (
        f"{path.name}'s first code cell differs from the template: run "
        f"python data_scripts/sync_notebooks.py {path.relative_to(ROOT)}")


def test_the_repository_is_named_once():
    """The repository's address appears in no chapter but through the template (nor twice in the configuration);
    the launch buttons read the same setting."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = config["repository"]["url"]
    assert (ROOT / "_config.yml").read_text().count(url) == 1
    assert config["html"]["use_repository_button"] and config["launch_buttons"]["colab_url"]
    for path in CHAPTERS:
        cells = json.loads(path.read_text())["cells"]
        first_code = next(index for index, cell in enumerate(cells) if cell["cell_type"] == "code")
        elsewhere = [index for index, cell in enumerate(cells)
                     if url in "".join(cell["source"]) and index != first_code]
        assert not elsewhere, (f"{path.name} names {url} in cells {elsewhere}: use REPOSITORY, which the first cell "
                               "sets from _config.yml (data_scripts/sync_notebooks.py)")


def test_no_cityscapes_data_is_committed():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    data = [f for f in files if re.search(r"(leftImg8bit|gtFine|gtCoarse).*\.(png|json|zip)$", f)]
    assert data == []


def test_readme_profile_table_matches_the_profiles():
    from seglib.profiles import PROFILES

    readme = (ROOT / "README.md").read_text()
    for name, profile in PROFILES.items():
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}`"))
        (h, w), (ih, iw) = profile.synthetic_size, profile.image_size
        assert f"{h}×{w}" in row and f"{ih}×{iw}" in row, row


def _chapter(path: Path, code: str):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A chapter"), nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return nb


def _cache_execution(cache_dir: Path, source: Path, outputs: list, tags=()) -> None:
    """Store an execution of ``source`` with ``outputs`` in its code cell, the way myst-nb does after executing."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    nb = nbformat.read(source, as_version=4)
    nb.cells[1].execution_count, nb.cells[1].outputs = 1, outputs
    nb.cells[1].metadata["tags"] = list(tags)
    nbformat.write(nb, source)  # the tags are part of the source, the outputs are not hashed
    get_cache(cache_dir).cache_notebook_bundle(CacheBundleIn(nb, str(source), data={"execution_seconds": 2.5}),
                                               overwrite=True)


def test_tests_reuse_the_book_builds_executions(tmp_path):
    """SEGLIB_BOOK_EXECUTED: a notebook whose current code the book build executed is checked in the cache."""
    import nbformat
    from _book_cache import cached_execution

    cache, source = tmp_path / "jupyter_cache", tmp_path / "chapter.ipynb"
    _chapter(source, "print(1)")
    assert cached_execution(cache, source) is None
    assert not cache.exists(), "looking up must not create a cache"

    _cache_execution(cache, source, [nbformat.v4.new_output("stream", name="stdout", text="1\n")])
    run = cached_execution(cache, source)
    assert run is not None and run.errors() == [] and run.seconds == 2.5 and run.pk == 1, run
    assert "cache record 1" in run.describe() and "2.5 s" in run.describe()

    nb = nbformat.read(source, as_version=4)
    nb.cells[0].source = "# A chapter, reworded"  # prose edits need no new execution
    nbformat.write(nb, source)
    assert cached_execution(cache, source) is not None
    nb.cells[1].source = "print(2)"  # code edits do
    nbformat.write(nb, source)
    assert cached_execution(cache, source) is None

    error = nbformat.v4.new_output("error", ename="ValueError", evalue="boom", traceback=[])
    _cache_execution(cache, source, [error])
    assert cached_execution(cache, source).errors() == ["code cell 1: ValueError: boom"]
    _cache_execution(cache, source, [error], tags=["raises-exception"])  # allowed to raise, as in nbmake
    assert cached_execution(cache, source).errors() == []


def test_pytest_checks_cached_notebooks_instead_of_executing_them(tmp_path):
    """The conftest hook swaps nbmake's item for the cache check only where the current code was executed."""
    import nbformat

    for name in ("conftest.py", "_book_cache.py"):
        (tmp_path / "tests").mkdir(exist_ok=True)
        (tmp_path / "tests" / name).write_text((ROOT / "tests" / name).read_text())
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests", "book"]\n')
    (tmp_path / "book").mkdir()
    cache = tmp_path / "_build" / ".jupyter_cache"
    for name in ("cached", "changed"):
        _chapter(tmp_path / "book" / f"{name}.ipynb", "print(1)")
        _cache_execution(cache, tmp_path / "book" / f"{name}.ipynb",
                         [nbformat.v4.new_output("stream", name="stdout", text="1\n")])
    _chapter(tmp_path / "book" / "changed.ipynb", "print(2)")

    def collect(env: dict) -> str:
        result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "--nbmake", "-p", "no:xdist",
                                 "-p", "no:cacheprovider"], cwd=tmp_path, capture_output=True, text=True,
                                env={k: v for k, v in os.environ.items() if k != "SEGLIB_BOOK_EXECUTED"} | env)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    out = collect({"SEGLIB_BOOK_EXECUTED": "_build/.jupyter_cache"})
    assert "<CachedNotebookCheck cached.ipynb>" in out and "<NotebookItem changed.ipynb>" in out, out
    out = collect({})
    assert "<NotebookItem cached.ipynb>" in out and "<NotebookItem changed.ipynb>" in out, out


def test_ci_tests_reuse_the_book_build():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    book, tests = (ci.index(command) for command in _readme_commands())
    export = next(i for i, line in enumerate(ci) if line.startswith("export SEGLIB_BOOK_EXECUTED="))
    assert book < export < tests and "_build/.jupyter_cache" in ci[export]
