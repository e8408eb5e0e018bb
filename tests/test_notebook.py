"""seglib.notebook, the first cell of every chapter: the profile it picks, the Drive advice, the measured times."""

import json

import pytest

from seglib import datasets, notebook
from seglib.profiles import PROFILE_ENV


def _times(folder, profile="ci", seconds=None, machine="a 2-core CPU", date="2026-11-29"):
    document = notebook.times_document(profile, seconds or {"09_training": 118.1, "02_categories": 3.8}, machine,
                                       date, "a test")
    return notebook.write_times(document, folder)


@pytest.mark.parametrize("environ, gpu, expected", [
    ({}, False, ("ci", False)),
    ({}, True, ("colab", False)),
    ({PROFILE_ENV: "ci"}, True, ("ci", True)),          # a named profile wins over the GPU
    ({PROFILE_ENV: "full"}, False, ("full", True)),
    ({PROFILE_ENV: ""}, True, ("colab", False)),        # set but empty: not chosen
])
def test_the_profile_follows_the_setting_then_the_gpu(environ, gpu, expected):
    name, reason = notebook.choose_profile(environ, gpu)
    assert name == expected[0]
    assert (PROFILE_ENV + "=" in reason) == expected[1], reason
    assert ("GPU is present" in reason) == (name == "colab" and not expected[1])


def test_an_unknown_profile_is_a_clear_value_error(tmp_path):
    with pytest.raises(ValueError, match="unknown run profile 'gpu'.*ci, reference, colab"):
        notebook.plan("02_categories", environ={PROFILE_ENV: "gpu"}, gpu=True, colab=False, folder=tmp_path)


def test_a_data_folder_that_is_a_file_is_a_clear_value_error(tmp_path):
    (tmp_path / "data").write_text("")
    with pytest.raises(ValueError, match="SEGLIB_DATA=.*is a file"):
        notebook.plan("02_categories", environ={datasets.DATA_ENV: str(tmp_path / "data")}, gpu=False, colab=False,
                      folder=tmp_path)


def test_start_sets_the_picked_profile_and_says_why(tmp_path):
    environ, said = {datasets.DATA_ENV: str(tmp_path)}, []
    notebook.start("02_categories", environ=environ, gpu=lambda: True, colab=False, folder=tmp_path, say=said.append)
    assert environ[PROFILE_ENV] == "colab"
    assert said[0] == f"Run profile: colab (a GPU is present and {PROFILE_ENV} is not set)."


def test_a_named_profile_is_kept_and_the_gpu_is_not_asked(tmp_path):
    def no_asking():
        raise AssertionError("the GPU check ran although a profile was named")

    environ, said = {PROFILE_ENV: "ci", datasets.DATA_ENV: str(tmp_path)}, []
    notebook.start("02_categories", environ=environ, gpu=no_asking, colab=False, folder=tmp_path, say=said.append)
    assert environ[PROFILE_ENV] == "ci" and said[0] == f"Run profile: ci ({PROFILE_ENV}=ci)."


@pytest.mark.parametrize("colab, data_set, advised", [(True, False, True), (True, True, False),
                                                      (False, False, False), (False, True, False)])
def test_the_drive_advice_only_in_colab_without_a_data_folder(tmp_path, colab, data_set, advised):
    environ = {datasets.DATA_ENV: str(tmp_path)} if data_set else {}
    assert bool(notebook.data_advice(environ, colab)) == advised
    lines = notebook.plan("02_categories", environ=environ, gpu=True, colab=colab, folder=tmp_path).lines
    text = "\n".join(lines)
    assert ("drive.mount(" in text) == advised and ("from google.colab import drive" in text) == advised
    assert (f"%env {datasets.DATA_ENV}=" in text) == advised


def test_colab_without_a_gpu_says_how_to_get_one(tmp_path):
    lines = notebook.plan("02_categories", environ={}, gpu=False, colab=True, folder=tmp_path).lines
    assert lines[0].startswith("Run profile: ci") and "Change runtime type" in lines[1]
    assert not any("Change runtime type" in line for line in
                   notebook.plan("02_categories", environ={}, gpu=True, colab=True, folder=tmp_path).lines)


def test_the_times_are_read_from_the_file_and_unmeasured_profiles_say_so(tmp_path):
    _times(tmp_path)
    lines = notebook.time_statement("09_training", "colab", folder=tmp_path)
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"ci", "reference", "colab", "full"}
    assert "2.0 min (on a 2-core CPU, book build of 2026-11-29)" in rows["ci"]
    for name in ("reference", "colab", "full"):
        assert notebook.NOT_MEASURED in rows[name]
    assert rows["colab"].endswith("<- this profile") and not rows["ci"].endswith("<- this profile")


def test_without_any_file_every_profile_is_not_measured_yet(tmp_path):
    lines = notebook.time_statement("09_training", "ci", folder=tmp_path / "none")
    assert all(notebook.NOT_MEASURED in line for line in lines[1:]) and len(lines) == 5


def test_a_chapter_missing_from_the_file_is_not_measured_yet(tmp_path):
    _times(tmp_path)
    assert notebook.NOT_MEASURED in notebook.time_statement("15_export", "ci", folder=tmp_path)[1]


def test_the_smoke_profile_gets_its_own_row(tmp_path):
    lines = notebook.time_statement("09_training", "smoke", folder=tmp_path)
    assert lines[-1].split()[0] == "smoke" and lines[-1].endswith("<- this profile")


def test_a_chapter_that_uses_the_trained_model_says_what_training_it_costs(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path / "data"))
    _times(tmp_path)
    lines = notebook.plan("13_serving", uses_trained_model=True, environ={PROFILE_ENV: "ci"}, colab=False,
                          folder=tmp_path).lines
    assert "not trained here for the ci profile yet" in lines[-1] and "2.0 min" in lines[-1]
    lines = notebook.plan("13_serving", uses_trained_model=True, environ={PROFILE_ENV: "colab"}, colab=False,
                          folder=tmp_path).lines
    assert lines[-1].endswith(f"took: {notebook.NOT_MEASURED}.")

    run = tmp_path / "data" / "runs" / f"{datasets.BOOK_MODEL}-ci-abc123"
    run.mkdir(parents=True)
    (run / "final.keras").write_bytes(b"")
    lines = notebook.plan("13_serving", uses_trained_model=True, environ={PROFILE_ENV: "ci"}, colab=False,
                          folder=tmp_path).lines
    assert lines[-1].startswith("Chapter 9's trained U-Net for the ci profile is here") and str(run) in lines[-1]


def test_a_times_file_round_trips_and_bad_ones_are_refused(tmp_path):
    path = _times(tmp_path, profile="colab", seconds={"00_introduction": 12.345})
    assert path == tmp_path / "colab.json"
    document = notebook.load_times("colab", tmp_path)
    assert document["seconds"] == {"00_introduction": 12.3} and document["machine"] == "a 2-core CPU"
    assert notebook.load_times("full", tmp_path) is None

    (tmp_path / "full.json").write_text(json.dumps(dict(document, profile="colab")))
    with pytest.raises(ValueError, match="holds the 'colab' profile"):
        notebook.load_times("full", tmp_path)
    (tmp_path / "full.json").write_text(json.dumps(dict(document, profile="full", schema=99)))
    with pytest.raises(ValueError, match="schema"):
        notebook.load_times("full", tmp_path)
    (tmp_path / "full.json").write_text(json.dumps(dict(document, profile="full", seconds={"x": -1})))
    with pytest.raises(ValueError, match="non-negative"):
        notebook.load_times("full", tmp_path)
    with pytest.raises(ValueError, match="unknown run profile"):
        notebook.times_document("gpu", {}, "m", "2026-11-29", "a test")


@pytest.mark.parametrize("seconds, text", [(3.04, "3 s"), (89, "89 s"), (118.1, "2.0 min"), (3599, "60.0 min"),
                                           (3600, "1 h 00 min"), (5400, "1 h 30 min")])
def test_format_duration(seconds, text):
    assert notebook.format_duration(seconds) == text


def test_the_committed_times_are_valid():
    """Every file the first cells read parses, names its profile, and covers only chapters that exist."""
    from pathlib import Path

    chapters = {path.stem for path in (Path(__file__).resolve().parents[1] / "book").glob("*.ipynb")}
    files = sorted(notebook.TIMES_DIR.glob("*.json"))
    assert files, "no measured chapter times: run data_scripts/chapter_times.py after a book build"
    for path in files:
        document = notebook.load_times(path.stem)
        assert set(document["seconds"]) <= chapters, f"{path}: times of notebooks that no longer exist"


def test_gpu_and_colab_checks_read_the_machine(monkeypatch):
    """Both checks answer on this machine without raising; in_colab reads Colab's own variable."""
    assert isinstance(notebook.gpu_present(), bool)
    assert notebook.in_colab({"COLAB_RELEASE_TAG": "release-colab_20261128"}) is True
    monkeypatch.setattr(notebook.importlib.util, "find_spec", lambda name: None)
    assert notebook.in_colab({}) is False
