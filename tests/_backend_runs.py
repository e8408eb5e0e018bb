"""Running Python on another Keras backend from a test: a subprocess (the backend is fixed when Keras is imported)."""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: XLA's backend optimisations cost seconds per compiled program, and the unit tests on JAX compile many small
#: programs once each (every new shape): without them those take half the time, with the same results. A test that
#: trains for many steps passes ``XLA_FLAGS=""``: there the optimised program pays for its compilation (an epoch of
#: chapter 9 on the smoke profile takes 0.8 s optimised, 7.5 s not).
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def run_on(backend: str, *args: str, timeout: int = 240, **variables: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2",
                   **variables}
    if backend == "jax":
        environment.setdefault("XLA_FLAGS", FAST_COMPILE)
    return subprocess.run([sys.executable, *args], env=environment, capture_output=True, text=True, timeout=timeout,
                          cwd=HERE.parent)
