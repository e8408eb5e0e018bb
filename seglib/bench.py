"""Timing helpers shared by ``benchmarks/`` and the chapters that print measured tables."""

from __future__ import annotations

import functools
import itertools
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np

__all__ = ["limit_threads", "training_steps_per_second", "sample_seconds", "median_seconds",
           "interleaved_sample_seconds", "compare_times",
           "ratio_phrase", "SIGNIFICANCE", "markdown_table", "machine_description", "images_per_second",
           "training_images_per_second"]

#: Largest chance (two-sided) of a split at least as clear between two sets of samples of one and the same
#: timing for which :func:`compare_times` still calls one faster or slower.
SIGNIFICANCE = 0.05


def sample_seconds(function: Callable[[], object], repeats: int = 5, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of each of ``repeats`` calls of ``function()``, after ``warmup`` untimed calls."""
    return interleaved_sample_seconds([function], repeats, warmup)[0]


def median_seconds(function: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``function()`` over ``repeats`` calls, after ``warmup`` untimed calls."""
    return statistics.median(sample_seconds(function, repeats, warmup))


def interleaved_sample_seconds(functions: Sequence[Callable[[], object]], repeats: int = 5,
                               warmup: int = 1) -> list[list[float]]:
    """Seconds of each of ``repeats`` calls of every function, timed in turns (one call of each per round, after
    ``warmup`` untimed rounds), so that a machine that gets busier or quieter during the run weighs on all alike.
    Returns one list of ``repeats`` samples per function, in the order given."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be at least 0, got {warmup}")
    times: list[list[float]] = [[] for _ in functions]
    for round_ in range(warmup + repeats):
        for function, record in zip(functions, times):
            start = time.perf_counter()
            function()
            if round_ >= warmup:
                record.append(time.perf_counter() - start)
    return times


def _checked_samples(samples: Sequence[float], name: str) -> list[float]:
    values = [float(value) for value in samples]
    if not values:
        raise ValueError(f"{name} holds no samples")
    if not all(math.isfinite(value) and value > 0 for value in values):
        raise ValueError(f"{name} must hold positive, finite seconds, got {values}")
    return values


@functools.cache
def _u_counts(n: int, m: int) -> tuple[int, ...]:
    """``counts[u]``: how many of the C(n + m, n) orderings of ``n`` candidate and ``m`` baseline samples (no ties)
    have exactly ``u`` (candidate, baseline) pairs with the candidate slower: Mann-Whitney's U under the null."""
    if n == 0 or m == 0:
        return (1,)
    # The largest sample is a candidate one (slower than all m baseline ones: U grows by m) or a baseline one.
    largest_candidate = (0,) * m + _u_counts(n - 1, m)
    largest_baseline = _u_counts(n, m - 1)
    return tuple(a + b for a, b in itertools.zip_longest(largest_candidate, largest_baseline, fillvalue=0))


def compare_times(candidate_seconds: Sequence[float], baseline_seconds: Sequence[float],
                  significance: float = SIGNIFICANCE) -> str:
    """``"faster"``, ``"slower"`` or ``"within the noise"``: the candidate's time against the baseline's, judged
    from repeated samples of each (seconds, or any positive time unit shared by both).

    The rule is Mann-Whitney's exact two-sided rank test. ``U`` counts the (candidate, baseline) pairs of samples
    in which the candidate took longer (a tie counts one half), out of ``n * m`` pairs. If both sets were samples
    of one and the same timing, every ordering of the ``n + m`` samples would be equally likely; the verdict is
    ``"slower"`` (or ``"faster"``) only when a ``U`` at least as far from ``n * m / 2`` as the one measured has a
    chance of at most ``significance`` (5 %) under that null, and the medians point the same way. So with 5 and 5
    samples "faster" needs the candidate to be quicker in at least 23 of the 25 pairs. Even a complete split is
    that unlikely only with enough samples (at least 4 and 4, 3 and 5, or 2 and 8); with fewer, the answer is
    always ``"within the noise"``.
    """
    candidate = _checked_samples(candidate_seconds, "candidate_seconds")
    baseline = _checked_samples(baseline_seconds, "baseline_seconds")
    if not 0 < significance < 1:
        raise ValueError(f"significance must be between 0 and 1, got {significance}")
    n, m = len(candidate), len(baseline)
    slower_pairs = sum((c > b) + 0.5 * (c == b) for c in candidate for b in baseline)
    extreme = min(slower_pairs, n * m - slower_pairs)          # the distribution of U is symmetric about n*m/2
    at_most = sum(_u_counts(n, m)[: math.ceil(extreme) + 1])   # a tie's half rounds towards "no verdict"
    chance = min(1.0, 2 * at_most / math.comb(n + m, n))
    if chance > significance:
        return "within the noise"
    ratio = statistics.median(candidate) / statistics.median(baseline)
    if slower_pairs > n * m / 2 and ratio > 1:
        return "slower"
    if slower_pairs < n * m / 2 and ratio < 1:
        return "faster"
    return "within the noise"


def ratio_phrase(candidate_seconds: Sequence[float], baseline_seconds: Sequence[float],
                 significance: float = SIGNIFICANCE) -> str:
    """The verdict of :func:`compare_times` with the ratio of the medians: ``"1.40× slower"`` (candidate median /
    baseline median), ``"2.10× faster"`` (baseline median / candidate median), or ``"within the noise (1.02×)"``
    (candidate median / baseline median)."""
    verdict = compare_times(candidate_seconds, baseline_seconds, significance)
    ratio = statistics.median(candidate_seconds) / statistics.median(baseline_seconds)
    if verdict == "slower":
        return f"{ratio:.2f}× slower"
    if verdict == "faster":
        return f"{1 / ratio:.2f}× faster"
    return f"within the noise ({ratio:.2f}×)"


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
    gpus = ", ".join(_gpu_names())
    cpu = model or platform.processor() or platform.machine()
    note = os.environ.get(_PARALLEL_NOTE)
    return (f"{cpu}, {os.cpu_count()} CPU cores" + (f", GPU: {gpus}" if gpus else ", no GPU")
            + (f" ({note})" if note else ""))


def _gpu_names() -> list[str]:
    """The GPUs of whichever framework this process already imported (importing one costs seconds)."""
    if (jax := sys.modules.get("jax")) is not None:
        return [device.device_kind for device in jax.devices() if device.platform == "gpu"]
    if (torch := sys.modules.get("torch")) is not None and torch.cuda.is_available():
        return [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
    if (tensorflow := sys.modules.get("tensorflow")) is not None:
        return [device.name for device in tensorflow.config.list_physical_devices("GPU")]
    return []


_PARALLEL_NOTE = "SEGLIB_PARALLEL_NOTE"


def limit_threads(threads: int, parallel: int) -> None:
    """Give this process ``threads`` TensorFlow threads (and one inter-op thread), for ``parallel`` processes
    training side by side. Call it before TensorFlow is imported (a process pool's initializer);
    :func:`machine_description` then says how the machine was shared. Two one-thread runs side by side train
    1.3-1.6x as many steps per second as one run on both cores of a 2-core machine
    (``benchmarks/bench_training_budget.py``)."""
    if threads < 1 or parallel < 1:
        raise ValueError(f"need at least one thread and one process, got {threads} and {parallel}")
    os.environ.update({"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1",
                       "OMP_NUM_THREADS": str(threads),
                       _PARALLEL_NOTE: f"{parallel} runs side by side, {threads} thread{'s' * (threads > 1)} each"})


def _book_unet_step_seconds(image_size: tuple[int, int], batch_size: int, steps: int) -> float:
    """Median seconds of one training step of the book's U-Net (16 filters) on random data, in this process."""
    return statistics.median(_book_unet_step_samples(image_size, batch_size, steps))


def backend_step_seconds(backend: str, image_size: Sequence[int], batch_size: int,
                         steps: int = 10) -> list[float] | None:
    """Seconds of each of ``steps`` training steps of the book's U-Net on the Keras ``backend``, measured in a fresh
    process (:func:`seglib.backends.run_on_backend`) after two untimed steps; None when the backend's framework is
    not installed here. The process gets the machine to itself: run one backend at a time."""
    from seglib import backends

    if steps < 1:
        raise ValueError(f"need at least one step, got {steps}")
    size = (int(image_size[0]), int(image_size[1]))
    return backends.run_on_backend(backend, "import json\nfrom seglib import bench\nprint(json.dumps("
                                            f"bench._book_unet_step_samples({size}, {int(batch_size)}, {int(steps)})))")


def _book_unet_step_samples(image_size: tuple[int, int], batch_size: int, steps: int) -> list[float]:
    """Seconds of each of ``steps`` training steps of the book's U-Net on random data, in this process."""
    import keras

    from seglib import losses, models

    model = models.unet((*image_size, 3), base_filters=16)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=losses.CrossEntropyLoss())
    rng = np.random.default_rng(0)
    images = rng.random((batch_size, *image_size, 3), dtype=np.float32)
    targets = rng.integers(0, 8, (batch_size, *image_size)).astype(np.uint8)
    return sample_seconds(lambda: model.train_on_batch(images, targets), repeats=steps, warmup=2)


def training_steps_per_second(image_size: Sequence[int], batch_size: int, processes: int = 1,
                              steps: int = 10) -> float:
    """Training steps per second of the book's U-Net on this machine, summed over ``processes`` fresh processes
    training side by side. One process keeps TensorFlow's default threads (what a chapter gets); several get an
    equal share of the cores each (:func:`limit_threads`, what ``seglib.experiments`` does on a CPU)."""
    import concurrent.futures
    import multiprocessing

    if processes < 1 or steps < 1:
        raise ValueError(f"need at least one process and one step, got {processes} and {steps}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    shared = ({"initializer": limit_threads, "initargs": (max(1, cores // processes), processes)}
              if processes > 1 else {})
    size = (int(image_size[0]), int(image_size[1]))
    with concurrent.futures.ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                                **shared) as pool:
        seconds = list(pool.map(_book_unet_step_seconds, [size] * processes, [batch_size] * processes,
                                [steps] * processes))
    return sum(1 / value for value in seconds)


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
