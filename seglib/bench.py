"""Timing helpers shared by ``benchmarks/`` and the chapters that print measured tables."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence

__all__ = ["median_seconds", "markdown_table", "machine_description"]


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
