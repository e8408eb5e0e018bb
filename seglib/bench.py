"""Timing helpers shared by ``benchmarks/`` and the chapters that print measured tables."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np

__all__ = ["median_seconds", "markdown_table", "machine_description", "images_per_second",
           "training_images_per_second"]


def median_seconds(function: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``function()`` over ``repeats`` calls, after ``warmup`` untimed calls."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (numbers kept as given: format them before)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_description() -> str:
    """One line naming the hardware the numbers were measured on."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        model = ""
    gpus = ""
    tensorflow = sys.modules.get("tensorflow")  # asked only if a chapter already imported it (importing costs ~6 s)
    if tensorflow is not None:
        gpus = ", ".join(device.name for device in tensorflow.config.list_physical_devices("GPU"))
    cpu = model or platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} CPU cores" + (f", GPU: {gpus}" if gpus else ", no GPU")


def images_per_second(batches: Iterable, epochs: int = 3) -> float:
    """Steady-state images per second of a pipeline: ``epochs`` passes over ``batches`` (built once and iterated
    once per epoch, as ``fit`` does), timed from the end of the first batch so that the first fill is left out.
    ``batches`` yields ``(images, masks)``; images are materialised as numpy arrays."""
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    start, count = None, 0
    for _ in range(epochs):
        for images, _ in batches:
            size = len(np.asarray(images))
            if start is None:
                start = time.perf_counter()
            else:
                count += size
        getattr(batches, "on_epoch_end", lambda: None)()
    if not count:
        raise ValueError("the pipeline delivered fewer than two batches: nothing to time")
    return count / (time.perf_counter() - start)


def training_images_per_second(model, image_size: Sequence[int], batch_size: int, steps: int = 3) -> float:
    """Images per second that ``model`` consumes in training (``train_on_batch`` on random data after one
    warm-up step, with the model's own compiled loss and optimizer)."""
    rng = np.random.default_rng(0)
    images = rng.random((batch_size, *image_size, 3), dtype=np.float32)
    targets = rng.integers(0, model.output_shape[-1], (batch_size, *image_size)).astype(np.uint8)
    model.train_on_batch(images, targets)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, targets)
    return steps * batch_size / (time.perf_counter() - start)
