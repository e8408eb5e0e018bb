"""benchmarks/run_profile.py: one command trains a profile's experiments and writes valid results files."""

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

from seglib import profiles, results

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "run_profile.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("run_profile", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_run_profile_trains_and_writes_valid_files(tmp_path, monkeypatch, capsys):
    tiny = dataclasses.replace(profiles.get_profile("ci"), name="tiny", synthetic_size=(64, 128), image_size=(32, 64),
                               synthetic_counts={"train": 5, "val": 2, "test": 1}, epochs=2, batch_size=2)
    monkeypatch.setitem(profiles.PROFILES, "tiny", tiny)
    monkeypatch.setenv("SEGLIB_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("CITYSCAPES_DATASET", raising=False)
    output = tmp_path / "shipped"
    assert _load_script().main(["--profile", "tiny", "--only", "09_training", "--output", str(output)]) == 0
    document = results.load(output / "09_training-tiny.json", profile="tiny", experiment="09_training")
    unet = document["results"]["U-Net (16 filters)"]
    assert len(unet["mean_category_iou"]) == tiny.seeds and all(0 <= v <= 1 for v in unet["mean_category_iou"])
    assert unet["epochs"] == [2] * tiny.seeds
    assert document["budget"]["backend"].startswith("Keras 3.") and " on tensorflow " in document["budget"]["backend"]
    printed = capsys.readouterr().out
    assert "2 runs trained" in printed and "U-Net (16 filters)" in printed
    with pytest.raises(ValueError, match="profile"):  # a file of another profile is refused
        results.load(output / "09_training-tiny.json", profile="ci")


def test_run_profile_refuses_an_unknown_experiment_and_a_second_backend(capsys):
    script = _load_script()
    with pytest.raises(SystemExit):
        script.parse_arguments(["--profile", "ci", "--only", "08_metrics"])
    assert "unknown experiment(s) 08_metrics" in capsys.readouterr().err
    other = "jax" if sys.modules["keras"].backend.backend() != "jax" else "tensorflow"
    with pytest.raises(SystemExit):
        script.parse_arguments(["--profile", "ci", "--backend", other])
    assert "run the script in a fresh process" in capsys.readouterr().err
