"""The tests of the losses, metrics, models and training loop, run again on Keras's JAX backend (a separate pytest
process: the backend is fixed when Keras is imported). Its own file, so that pytest-xdist runs it beside the rest."""

import pytest

from _backend_runs import run_on
from seglib import backends

pytest.importorskip("jax", reason="the JAX backend's tests need jax (requirements.txt installs it)")

#: The tests of what runs on every backend; tests/test_backends.py runs them again on JAX.
BACKEND_SENSITIVE = ["tests/test_losses.py", "tests/test_metrics.py", "tests/test_models.py", "tests/test_train.py"]


@pytest.mark.slow
def test_the_backend_sensitive_tests_pass_on_jax(tmp_path):
    """``KERAS_BACKEND=jax python -m pytest <BACKEND_SENSITIVE>``, from the README's one test command."""
    if backends.backend() != "tensorflow":
        pytest.skip("runs from the TensorFlow session only")
    # The two-process locking test is about files, not backends. Without XLA's backend optimisations (FAST_COMPILE)
    # the run takes about 2 minutes instead of 4 on 2 cores.
    result = run_on("jax", "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "-W", "ignore::UserWarning",
                  "-k", "not two_processes", *BACKEND_SENSITIVE, timeout=900, SEGLIB_DATA=str(tmp_path))
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in summary and " failed" not in summary, summary

