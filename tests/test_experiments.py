"""seglib.experiments: every seed trained and scored, runs shared between chapters, results files written."""

import dataclasses
import json

import numpy as np
import pytest

from seglib import data, experiments, labels, results, train
from seglib.profiles import Profile

TINY = Profile("tiny", (64, 128), {"train": 5, "val": 2, "test": 1}, (32, 64), 2, 2, 1,
               learning_rate=1e-3, patience=10, seeds=2, comparison_seeds=1, encoder_width=0.125)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGLIB_DATA", str(tmp_path))
    return tmp_path


@pytest.mark.slow
def test_ablation_trains_every_seed_side_by_side_and_writes_its_file(small_dataset, data_dir, monkeypatch):
    # 05: the U-Net and its ablation, one comparison seed each; 09 then adds the U-Net's second seed
    assert len(experiments.pending(["05_augmentation", "09_training"], small_dataset, TINY)) == 3
    document, runs = experiments.run("05_augmentation", small_dataset, TINY)  # 2 side by side
    assert [job[2] for job in experiments.pending(["05_augmentation", "09_training"], small_dataset, TINY)] == [1]
    written = results.load(data_dir / "results" / "05_augmentation-tiny.json", profile="tiny",
                           experiment="05_augmentation")
    assert written == document
    assert list(document["results"]) == ["U-Net, augmented", "U-Net, not augmented"]
    augmented = document["results"]["U-Net, augmented"]
    assert len(runs["U-Net, augmented"]) == len(augmented["mean_category_iou"]) == TINY.comparison_seeds
    assert len(runs["U-Net, not augmented"]) == TINY.comparison_seeds
    for seed, run in enumerate(runs["U-Net, augmented"]):
        assert run.settings["seed"] == seed and run.settings["augmentation"]
        again = train.evaluate(run.model, small_dataset, "val", TINY)  # the file holds what evaluate gives
        assert augmented["mean_category_iou"][seed] == pytest.approx(again.mean_category_iou)
        assert augmented["epochs"][seed] == 2 and augmented["plateau"][seed] in (True, False)
    assert not any(run.settings["augmentation"] for run in runs["U-Net, not augmented"])
    assert document["budget"]["train_frames"] == 5
    evaluate = train.evaluate
    # each run's worker saved its scores beside it; a chapter showing the run again reads them, predicting nothing
    for name, seed_runs in runs.items():
        saved = json.loads((seed_runs[0].folder / "scores-val.json").read_text())
        assert saved["scores"]["mean_category_iou"] == document["results"][name]["mean_category_iou"][0]
        assert saved["key"]["frames"] == [frame.image_path.name for frame in data.frames_with_labels(small_dataset, "val")]
    with monkeypatch.context() as patched:
        patched.setattr(train, "evaluate", lambda *args, **kwargs: pytest.fail("scored again"))
        again, _ = experiments.run("05_augmentation", small_dataset, TINY, write=False)
    for name, figures in document["results"].items():
        for key in ("mean_category_iou", "category_iou", "pixel_accuracy"):
            assert again["results"][name][key] == figures[key]
    # scores saved by another version of the scoring are not taken: computed again, and kept in their place
    run, calls = runs["U-Net, augmented"][0], []
    with monkeypatch.context() as patched:
        patched.setattr(experiments, "SCORES_VERSION", experiments.SCORES_VERSION + 1)
        patched.setattr(train, "evaluate", lambda *args, **kwargs: calls.append(args) or evaluate(*args, **kwargs))
        rescored = experiments.validation_scores(run, small_dataset, TINY)
        assert json.loads((run.folder / "scores-val.json").read_text())["key"]["version"] == experiments.SCORES_VERSION
    assert len(calls) == 1 and rescored["mean_category_iou"] == augmented["mean_category_iou"][0]
    training, training_runs = experiments.run("09_training", small_dataset, TINY, processes=1)  # trains seed 1
    assert experiments.pending(["05_augmentation", "09_training"], small_dataset, TINY) == []
    # the book's U-Net is one run, whoever asks for it
    assert training_runs["U-Net (16 filters)"][0].reused
    assert training_runs["U-Net (16 filters)"][0].folder == runs["U-Net, augmented"][0].folder
    shared = experiments.train_book_unet(small_dataset, TINY, seed=1)
    assert shared.reused and shared.folder == training_runs["U-Net (16 filters)"][1].folder
    unet_scores = training["results"]["U-Net (16 filters)"]["mean_category_iou"]
    assert len(unet_scores) == TINY.seeds and unet_scores[0] == augmented["mean_category_iou"][0]
    flat = labels.CATEGORY_NAMES.index("flat")
    constant = train.evaluate(lambda images: np.full(images.shape[:3], flat, np.uint8), small_dataset, "val", TINY)
    assert training["results"]["always 'flat'"]["mean_category_iou"] == [pytest.approx(constant.mean_category_iou)]


@pytest.mark.slow
def test_losses_experiment_reuses_the_book_unet_for_cross_entropy(small_dataset, data_dir):
    first = experiments.train_book_unet(small_dataset, TINY, seed=0)
    document, runs = experiments.run("07_losses", small_dataset, TINY, processes=1)
    assert runs["cross-entropy"][0].reused and runs["cross-entropy"][0].folder == first.folder
    assert list(document["results"]) == ["cross-entropy", "dice", "CE + dice", "CE + 3·dice"]
    assert [len(runs[name]) for name in document["results"]] == [1, 1, 1, 1]  # comparison_seeds each
    assert len({run.folder for name in runs for run in runs[name]}) == 4
    assert [runs[name][0].settings["loss"]["config"]["dice_weight"] for name in ("CE + dice", "CE + 3·dice")] == [1.0, 3.0]


def test_losses_of_a_profile_follow_its_dice_weights():
    one = dataclasses.replace(TINY, dice_weights=(1.0,))
    assert list(experiments._contenders("07_losses", one)) == ["cross-entropy", "dice", "CE + dice"]
    two = dataclasses.replace(TINY, dice_weights=(0.5, 2.0))
    losses_of = {name: contender.loss() for name, contender in experiments._contenders("07_losses", two).items()
                 if contender.loss}
    assert list(losses_of) == ["dice", "CE + 0.5·dice", "CE + 2·dice"]
    assert [losses_of[name].dice_weight for name in ("CE + 0.5·dice", "CE + 2·dice")] == [0.5, 2.0]
    # the list of weights changes no run: the same run is found whatever the list
    assert train._profile_sizes(one) == train._profile_sizes(two)


def test_unknown_experiment_is_named(small_dataset):
    with pytest.raises(ValueError, match="unknown experiment '08_metrics'"):
        experiments.run("08_metrics", small_dataset, TINY)


def test_book_model_path_prefers_a_saved_model_else_trains_chapter_9s_run(data_dir, monkeypatch, tmp_path):
    trained = []

    class FakeRun:
        folder = tmp_path / "trained-now"

    def fake_train(root, profile, seed=0, augmentation=True, verbose=0):
        trained.append((root, profile.name, seed, augmentation))
        return FakeRun()

    monkeypatch.setattr(experiments, "train_book_unet", fake_train)
    monkeypatch.delenv("SEGLIB_MODEL", raising=False)
    # nothing saved: chapter 9's run is trained (or read back) with its own settings, from the profile's name
    assert experiments.book_model_path("some-root", "ci") == tmp_path / "trained-now" / "final.keras"
    assert trained == [("some-root", "ci", 0, True)]
    # chapter 9 saved its run for this profile: that file, nothing trained
    saved = data_dir / "runs" / "unet16-ci-abc123" / "final.keras"
    saved.parent.mkdir(parents=True)
    saved.write_bytes(b"")
    assert experiments.book_model_path("some-root", "ci") == saved
    # $SEGLIB_MODEL wins over the saved run
    chosen = tmp_path / "chosen.keras"
    chosen.write_bytes(b"")
    monkeypatch.setenv("SEGLIB_MODEL", str(chosen))
    assert experiments.book_model_path("some-root", "ci") == chosen
    assert len(trained) == 1
