"""Chapter 9 executed by nbmake on Keras's JAX backend, scoring like the same experiment on TensorFlow. Its own file,
so that pytest-xdist runs it beside the other JAX tests."""

import pytest

from _backend_runs import run_on
from seglib import backends

pytest.importorskip("jax", reason="the JAX backend's tests need jax (requirements.txt installs it)")


@pytest.mark.slow
def test_chapter_9_executes_on_jax_and_scores_like_tensorflow(tmp_path, monkeypatch):
    """Chapter 9 under nbmake on JAX (the ``smoke`` profile: the chapter's code in a minute), against the same
    experiment on TensorFlow."""
    if backends.backend() != "tensorflow":
        pytest.skip("runs from the TensorFlow session only")
    from seglib import datasets, experiments, profiles, results

    result = run_on("jax", "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "--nbmake-timeout=900",
                    "book/09_training.ipynb", timeout=1200, SEGLIB_PROFILE="smoke", SEGLIB_DATA=str(tmp_path / "jax"),
                    SEGLIB_BOOK_EXECUTED="", XLA_FLAGS="")  # training: XLA's optimisations pay for themselves
    assert result.returncode == 0, result.stdout[-4000:]
    on_jax = results.load(tmp_path / "jax" / "results" / "09_training-smoke.json", profile="smoke",
                          experiment="09_training")
    assert " on jax " in on_jax["budget"]["backend"]
    smoke = profiles.get_profile("smoke")
    monkeypatch.setenv("SEGLIB_DATA", str(tmp_path / "tf"))
    on_tensorflow, _ = experiments.run("09_training", datasets.dataset_root(smoke), smoke)
    unet = f"U-Net ({experiments.BOOK_UNET_FILTERS} filters)"
    jax_scores, tf_scores = (document["results"][unet]["mean_category_iou"] for document in (on_jax, on_tensorflow))
    flat = on_tensorflow["results"]["always 'flat'"]["mean_category_iou"][0]
    assert on_jax["results"]["always 'flat'"]["mean_category_iou"][0] == pytest.approx(flat)  # the same frames
    # the same kind of score: both learned beyond the majority baseline, and they are within 0.1 of each other
    assert min(jax_scores) > flat and min(tf_scores) > flat, (jax_scores, tf_scores, flat)
    assert abs(results.spread(jax_scores).mean - results.spread(tf_scores).mean) < 0.1, (jax_scores, tf_scores)
