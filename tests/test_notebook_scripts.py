"""data_scripts/sync_notebooks.py (every chapter's first cell from one template and _config.yml) and
data_scripts/chapter_times.py (a book build's execution seconds into the file the first cell reads)."""

import importlib.util
import json
from pathlib import Path

import pytest

from seglib import notebook

ROOT = Path(__file__).resolve().parents[1]
URL = "https://github.com/seglib-book/street-scenes"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "data_scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync = _script("sync_notebooks")
chapter_times = _script("chapter_times")


def _cell(kind, source, cell_id):
    cell = {"cell_type": kind, "id": cell_id, "metadata": {}, "source": source}
    return cell | ({"execution_count": 3, "outputs": [{"output_type": "stream", "name": "stdout", "text": "x"}]}
                   if kind == "code" else {})


def _notebook(path, *code, install=True):
    cells = [_cell("markdown", "# A chapter", "title")]
    if install:
        cells.append(_cell("code", '# old\nimport importlib.util\nif importlib.util.find_spec("seglib") is None:\n'
                                   '    %pip install seglib', "install"))
    cells += [_cell("code", source, f"code-{index}") for index, source in enumerate(code)]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def _config(folder, url=URL, branch="main"):
    path = folder / "_config.yml"
    path.write_text(f"title: A book\nrepository:\n  url: {url}\n  branch: {branch}\n")
    return path


def _first_code(path):
    return next(cell for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code")


def test_the_cell_installs_the_configured_repository_and_starts_the_chapter(tmp_path):
    path = _notebook(tmp_path / "09_training.ipynb", "import numpy")
    assert sync.main([str(path), "--config", str(_config(tmp_path))]) == 0
    cell = _first_code(path)
    source = "".join(cell["source"])
    assert f'%pip install --quiet "seglib[book] @ git+{URL}@main"' in source
    assert source.endswith('notebook.start("09_training")')
    assert cell["id"] == "install" and cell["outputs"] == [] and cell["execution_count"] is None
    assert path.read_text() == json.dumps(json.loads(path.read_text()), sort_keys=True, indent=1,
                                          ensure_ascii=False) + "\n"


def test_a_fork_changes_one_line_and_check_says_where_it_was_forgotten(tmp_path, capsys):
    path = _notebook(tmp_path / "02_categories.ipynb", "import numpy")
    sync.main([str(path), "--config", str(_config(tmp_path))])
    (tmp_path / "fork").mkdir()
    fork = _config(tmp_path / "fork", "https://github.com/someone/street-scenes", "course-2027")
    assert sync.main([str(path), "--config", str(fork), "--check"]) == 1
    assert str(path) in capsys.readouterr().out
    assert sync.main([str(path), "--config", str(fork)]) == 0
    assert "git+https://github.com/someone/street-scenes@course-2027" in "".join(_first_code(path)["source"])
    assert sync.main([str(path), "--config", str(fork), "--check"]) == 0


@pytest.mark.parametrize("stem, extras", [("13_serving", "book,serve"), ("14_azure", "book,serve,azure"),
                                          ("07_losses", "book")])
def test_each_chapter_asks_for_its_extras(tmp_path, stem, extras):
    path = _notebook(tmp_path / f"{stem}.ipynb", "x = 1")
    sync.main([str(path), "--config", str(_config(tmp_path))])
    assert f'"seglib[{extras}] @ git+' in "".join(_first_code(path)["source"])


def test_a_chapter_that_uses_the_trained_model_says_so(tmp_path):
    path = _notebook(tmp_path / "15_export.ipynb", "MODEL = experiments.book_model_path(ROOT, PROFILE)")
    sync.main([str(path), "--config", str(_config(tmp_path))])
    assert "".join(_first_code(path)["source"]).endswith('notebook.start("15_export", uses_trained_model=True)')


def test_a_chapter_without_the_cell_gets_one_before_its_code(tmp_path):
    path = _notebook(tmp_path / "04_input_pipelines.ipynb", "import numpy", install=False)
    sync.main([str(path), "--config", str(_config(tmp_path))])
    cells = json.loads(path.read_text())["cells"]
    assert [cell["id"] for cell in cells] == ["title", "install-0", "code-0"]
    assert sync.MARKER in "".join(cells[1]["source"])


def test_a_misplaced_install_cell_is_refused_and_nothing_is_written(tmp_path, capsys):
    path = _notebook(tmp_path / "01_mask_formats.ipynb", "import numpy", install=False)
    nb = json.loads(path.read_text())
    nb["cells"].append(_cell("code", 'importlib.util.find_spec("seglib")', "late"))
    path.write_text(json.dumps(nb))
    before = path.read_text()
    assert sync.main([str(path), "--config", str(_config(tmp_path))]) == 2
    assert "must be the first code cell" in capsys.readouterr().err and path.read_text() == before


@pytest.mark.parametrize("url", ["", "git@github.com:a/b.git", "http://example.org/a b"])
def test_a_bad_repository_setting_is_refused(tmp_path, url, capsys):
    path = _notebook(tmp_path / "00_introduction.ipynb")
    assert sync.main([str(path), "--config", str(_config(tmp_path, url))]) == 2
    assert "repository.url" in capsys.readouterr().err


# -- chapter_times.py -------------------------------------------------------------------------------------------------

def _cached(cache, path, seconds):
    """Store an execution of notebook ``path`` in a jupyter-cache, as myst-nb does."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    nb = nbformat.read(path, as_version=4)
    nb.cells[1].execution_count = 1
    get_cache(cache).cache_notebook_bundle(CacheBundleIn(nb, str(path), data={"execution_seconds": seconds}),
                                           overwrite=True)


def _chapter(path, code):
    import nbformat

    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A chapter"),
                                                   nbformat.v4.new_code_cell(code)]), path)
    return path


def test_chapter_times_records_the_current_executions(tmp_path, capsys):
    cache, out = tmp_path / "_build" / ".jupyter_cache", tmp_path / "times"
    (tmp_path / "book").mkdir()
    first = _chapter(tmp_path / "book" / "00_introduction.ipynb", "print(1)")
    second = _chapter(tmp_path / "book" / "09_training.ipynb", "print(2)")
    _cached(cache, first, 24.26)
    _cached(cache, second, 118.1)
    _chapter(second, "print(3)")  # changed since the build: its time is stale
    assert chapter_times.main(["--cache", str(cache), "--profile", "colab", "--machine", "one GPU",
                               "--output-dir", str(out)]) == 0
    captured = capsys.readouterr()
    assert "09_training.ipynb: its code changed" in captured.err
    document = notebook.load_times("colab", out)
    assert document["seconds"] == {"00_introduction": 24.3} and document["machine"] == "one GPU"
    assert document["date"] == json.loads((out / "colab.json").read_text())["date"] and len(document["date"]) == 10
    lines = notebook.time_statement("00_introduction", "colab", folder=out)
    assert any(line.split()[:2] == ["colab", "24"] for line in lines), lines


def test_chapter_times_without_a_cache_or_profile_is_a_clear_error(tmp_path, capsys):
    assert chapter_times.main(["--cache", str(tmp_path / "none"), "--output-dir", str(tmp_path)]) == 2
    assert "no jupyter-cache" in capsys.readouterr().err
    assert chapter_times.main(["--cache", str(tmp_path), "--profile", "gpu", "--output-dir", str(tmp_path)]) == 2
    assert "unknown run profile" in capsys.readouterr().err
    assert list(tmp_path.glob("*.json")) == []
