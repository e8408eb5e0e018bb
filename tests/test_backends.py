"""Keras backends: the same numbers on TensorFlow and JAX, the TensorFlow-free pipeline, and clear errors for
TensorFlow-only calls on another backend (seglib.backends)."""

from pathlib import Path

import numpy as np
import pytest

from _backend_runs import run_on
from seglib import backends, data, labels, masks

HERE = Path(__file__).resolve().parent
jax = pytest.importorskip("jax", reason="the JAX backend's tests need jax (requirements.txt installs it)")


@pytest.mark.slow
def test_losses_metric_and_a_training_step_agree_on_tensorflow_and_jax(tmp_path):
    weights = tmp_path / "start.weights.h5"
    found = {}
    for backend in ("tensorflow", "jax"):  # TensorFlow first: it writes the weights JAX starts from
        result = run_on(backend, str(HERE / "_backend_probe.py"), str(tmp_path / f"{backend}.npz"), str(weights))
        assert result.returncode == 0, result.stderr[-3000:]
        found[backend] = np.load(tmp_path / f"{backend}.npz")
        assert str(found[backend]["backend"]) == backend
    tensorflow, jax_ = found["tensorflow"], found["jax"]
    for key in ("loss_cross_entropy", "loss_dice", "loss_combined", "mean_iou", "step_loss"):
        assert float(jax_[key]) == pytest.approx(float(tensorflow[key]), rel=1e-5, abs=1e-6), key
    # the losses are the hand-checked functions of test_losses.py: cross-entropy by hand here too
    assert float(tensorflow["loss_cross_entropy"]) > 0
    # after one SGD step from the same weights the two models predict the same probabilities
    np.testing.assert_allclose(jax_["after_step"], tensorflow["after_step"], atol=2e-4)


def test_tensorflow_only_calls_on_jax_name_the_backend_and_the_alternative(small_dataset):
    script = (
        "from seglib import backends, data, export\n"
        "for call in (lambda: data.tf_dataset(ROOT, 'train'), lambda: export.to_tflite('m.keras', 'm.tflite'),\n"
        "             lambda: data.write_tfrecords(ROOT, 'val', 'records')):\n"
        "    try:\n"
        "        call()\n"
        "    except backends.BackendError as error:\n"
        "        print(error)\n"
        "    else:\n"
        "        print('no error')\n"
    ).replace("ROOT", repr(str(small_dataset)))
    result = run_on("jax", "-c", script)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and not any(line == "no error" for line in lines)
    assert all("'jax' backend" in line for line in lines)
    assert "use seglib.data.SegmentationSequence instead" in lines[0]
    assert "use the .keras file" in lines[1]


def test_seglib_imports_and_trains_without_tensorflow_installed(small_dataset, tmp_path):
    script = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ImportError("no tensorflow on this machine")
sys.meta_path.insert(0, Block())
import dataclasses
from seglib import models, profiles, train
tiny = dataclasses.replace(profiles.get_profile("ci"), name="tiny", synthetic_size=(64, 128), image_size=(32, 64),
                           synthetic_counts={{"train": 5, "val": 2, "test": 1}}, epochs=2, batch_size=2)
run = train.train_or_load("unet4", lambda: models.unet((32, 64, 3), base_filters=4, depth=2),
                          {str(small_dataset)!r}, tiny, verbose=0)
scores = train.evaluate(run.model, {str(small_dataset)!r}, "val", tiny)
print(run.epochs, sorted(run.history), round(scores.mean_category_iou, 6), "tensorflow" in sys.modules)
"""
    result = run_on("jax", "-c", script, SEGLIB_DATA=str(tmp_path), XLA_FLAGS="")
    assert result.returncode == 0, result.stderr[-3000:]
    epochs, *rest = result.stdout.strip().splitlines()[-1].split(" ", 1)
    assert epochs == "2"
    assert "'val_mean_iou'" in rest[0] and rest[0].endswith("False")  # trained, scored, TensorFlow never loaded


def test_numpy_resize_matches_tensorflow(small_dataset):
    tf = pytest.importorskip("tensorflow")
    from seglib import cityscapes, masks

    changed, total = 0, 0
    for frame in cityscapes.list_frames(small_dataset, "train"):
        image = cityscapes.read_image(frame.image_path)
        categories = masks.label_ids_to_categories(masks.read_label_ids(frame.gt_path("labelIds")))
        for size in ((32, 64), (40, 50), (64, 128), (100, 200)):  # down by 2, odd ratios, same size, up
            expected_image, expected_mask = (tensor.numpy() for tensor in data.resize_pair(image, categories, size))
            found_image, found_mask = data.resize_pair_numpy(image, categories, size)
            np.testing.assert_array_equal(found_mask, expected_mask)  # nearest neighbour: exactly TensorFlow's
            difference = np.abs(found_image.astype(int) - expected_image.astype(int))
            assert difference.max() <= 1  # the same filter; float32 sums in another order round a tie otherwise
            changed, total = changed + int((difference > 0).sum()), total + difference.size
    assert changed <= total * 1e-3


@pytest.mark.parametrize("source, target", [((7, 9), (3, 4)), ((64, 128), (256, 512)), ((5, 5), (13, 2))])
def test_nearest_resize_matches_tensorflow(source, target, rng):
    tf = pytest.importorskip("tensorflow")
    mask = rng.integers(0, 8, source).astype(np.uint8)
    expected = tf.image.resize(mask[..., None], target, method="nearest")[..., 0].numpy()
    np.testing.assert_array_equal(masks.resize_nearest(mask, target), expected)


def test_binary_target_numpy_keeps_ignore():
    mask = np.array([[0, 7, labels.IGNORE], [7, 3, 7]], np.uint8)
    np.testing.assert_array_equal(data.binary_target_numpy(mask, 7), [[0, 1, labels.IGNORE], [1, 0, 1]])
    with pytest.raises(ValueError, match="category must be 0..7, got 8"):
        data.binary_target_numpy(mask, 8)


def test_require_tensorflow_on_tensorflow_returns_it():
    if backends.backend() != "tensorflow":
        pytest.skip("this process runs another backend")
    assert backends.require_tensorflow("x", "y").__name__ == "tensorflow"
    assert backends.describe().startswith("Keras 3.") and " on tensorflow " in backends.describe()



def test_a_run_of_another_backend_is_kept_apart(small_dataset, tmp_path, monkeypatch):
    from seglib import models, profiles, train

    monkeypatch.setenv("SEGLIB_DATA", str(tmp_path))
    code = ("from seglib import models, train\n"
            f"folder, settings = train.run_folder('unet4', lambda: models.unet((64, 128, 3), base_filters=4, depth=2), "
            f"{str(small_dataset)!r}, 'ci')\n"
            "print(folder.name, settings['backend'])")
    result = run_on("jax", "-c", code, SEGLIB_DATA=str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    jax_folder, jax_backend = result.stdout.strip().splitlines()[-1].split()
    folder, settings = train.run_folder("unet4", lambda: models.unet((64, 128, 3), base_filters=4, depth=2),
                                        small_dataset, profiles.get_profile("ci"))
    assert jax_backend == "jax" and "backend" not in settings  # TensorFlow's keys are those of earlier runs
    assert jax_folder != folder.name and jax_folder.startswith("unet4-ci-")
