"""seglib.datasets: the data folder, the runs folder, and finding a trained model by name."""

import json
import os

import pytest

from seglib import datasets


def _run(root, name, seed=None, age=0.0):
    folder = root / "runs" / name
    folder.mkdir(parents=True)
    (folder / "final.keras").write_bytes(b"model")
    if seed is not None:
        (folder / "run.json").write_text(json.dumps({"settings": {"seed": seed}}))
    os.utime(folder / "final.keras", (1e9 + age, 1e9 + age))
    return folder / "final.keras"


def test_find_run_by_name_and_profile(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path))
    assert datasets.runs_dir() == tmp_path / "runs"
    with pytest.raises(FileNotFoundError, match="no trained run 'unet16' for the ci profile"):
        datasets.find_run("unet16", "ci")
    seed1 = _run(tmp_path, "unet16-ci-aaaa", seed=1, age=10)
    seed0 = _run(tmp_path, "unet16-ci-bbbb", seed=0, age=0)
    _run(tmp_path, "unet16-ce+dice-ci-cccc", seed=0, age=20)     # another run whose name starts alike
    _run(tmp_path, "unet16-colab-dddd", seed=0, age=30)          # another profile
    assert datasets.find_run("unet16", "ci") == seed0             # the first seed, though older
    assert datasets.find_run("unet16-ce+dice", "ci").parent.name == "unet16-ce+dice-ci-cccc"
    seed0.unlink()
    assert datasets.find_run("unet16", "ci") == seed1             # an unfinished run is skipped


def test_run_folder_names_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path))
    name = datasets.run_folder_name("simple_unet16-vehicle", "reference", "0123abcd")
    assert name == "simple_unet16-vehicle-reference-0123abcd"
    _run(tmp_path, name)
    assert datasets.find_run("simple_unet16-vehicle", "reference").parent.name == name
    with pytest.raises(ValueError, match="run key"):
        datasets.run_folder_name("unet16", "ci", "Not/A-Key")


def test_data_dir_default_and_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    assert datasets.data_dir() == datasets.Path.home() / ".cache" / "seglib"
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path))
    assert datasets.data_dir() == tmp_path
    assert datasets.synthetic_root((64, 128)).parent == tmp_path
