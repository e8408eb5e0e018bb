"""Which Keras backend runs seglib, and what needs TensorFlow.

Keras 3 runs the same model code on TensorFlow, JAX or PyTorch; the backend is fixed when Keras is first
imported, from ``KERAS_BACKEND`` (default ``tensorflow``)::

    KERAS_BACKEND=jax python -m pytest tests/test_losses.py

seglib's models, losses, metrics, ``SegmentationSequence`` and training run on every backend. ``tf.data``,
TFRecords and the SavedModel/TFLite export are TensorFlow's own: they call :func:`require_tensorflow`, which
raises :class:`BackendError` naming the backend and the alternative. Importing seglib needs no TensorFlow: the
modules that use it import it on first use (:class:`LazyTensorFlow`), so seglib trains on a machine that has
JAX and no TensorFlow at all. :mod:`seglib.backend_probe` tries each of the book's tools on each backend.
"""

from __future__ import annotations

import importlib
import types

import keras

__all__ = ["BackendError", "LazyTensorFlow", "backend", "require_tensorflow", "accelerator", "describe", "MODULES",
           "run_on_backend"]


class BackendError(RuntimeError):
    """A TensorFlow-only function was called on another backend, or without TensorFlow installed."""


def backend() -> str:
    """The Keras backend in use: ``"tensorflow"``, ``"jax"`` or ``"torch"``."""
    return keras.backend.backend()


def _import_tensorflow(what: str, alternative: str) -> types.ModuleType:
    try:
        return importlib.import_module("tensorflow")
    except ImportError as error:
        raise BackendError(f"{what} needs TensorFlow, which is not installed here (Keras runs on "
                           f"{backend()!r}); use {alternative} instead") from error


def require_tensorflow(what: str, alternative: str) -> types.ModuleType:
    """TensorFlow, for ``what`` (a TensorFlow-only function); raises :class:`BackendError` naming the backend and
    ``alternative`` when Keras runs on another backend or TensorFlow is missing."""
    if backend() != "tensorflow":
        raise BackendError(f"{what} is TensorFlow-only, but Keras runs on the {backend()!r} backend "
                           f"(KERAS_BACKEND); use {alternative} instead, or set KERAS_BACKEND=tensorflow")
    return _import_tensorflow(what, alternative)


class LazyTensorFlow:
    """Stands for the ``tensorflow`` module and imports it on the first attribute asked for, so that importing a
    seglib module costs nothing on a machine without TensorFlow; a TensorFlow-only call there raises
    :class:`BackendError` instead of ``ImportError``."""

    def __getattr__(self, name: str):
        module = _import_tensorflow("this seglib function", "seglib.data.SegmentationSequence")
        return getattr(module, name)


def accelerator() -> str | None:
    """The name of the first GPU the backend sees (``"NVIDIA H200"``), or None on a CPU."""
    name = backend()
    if name == "jax":
        import jax

        gpus = [device for device in jax.devices() if device.platform == "gpu"]
        return gpus[0].device_kind if gpus else None
    if name == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    tf = _import_tensorflow("seglib.backends.accelerator", "another backend")
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)


def describe() -> str:
    """``"Keras 3.15.1 on jax 0.10.2"``: the backend and its version, for results files and chapter headers."""
    name = backend()
    version = getattr(importlib.import_module(MODULES[name]), "__version__", "?")
    return f"Keras {keras.__version__} on {name} {version}"


#: Keras's backends, and the module each needs.
MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def run_on_backend(backend_name: str, code: str, timeout: int = 900):
    """Run ``code`` (Python that prints one JSON value on its last line) in a fresh process on the Keras backend
    ``backend_name`` (a process's backend is fixed when Keras is imported) and return that value; None when the
    backend's framework is not installed here. Raises ``RuntimeError`` with the end of its stderr if it fails."""
    import importlib.util
    import json
    import os
    import subprocess
    import sys

    if backend_name not in MODULES:
        raise ValueError(f"unknown Keras backend {backend_name!r}; choose one of {', '.join(MODULES)}")
    if importlib.util.find_spec(MODULES[backend_name]) is None:
        return None
    environment = {**os.environ, "KERAS_BACKEND": backend_name, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"running on the {backend_name} backend failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
