"""Benchmark: what a training step of the book's U-Net costs on this machine, the measurements behind the ci profile.

Prints training steps per second and images per second of the U-Net with 16 filters for several input sizes,
batch sizes and ways of sharing the cores (one run on all of them with TensorFlow's default threads, or two runs
side by side with one share each), each as a ratio to the ci profile's setting measured first in the same run.
The appendix "How the ci profile was chosen" runs a shorter version of the same measurement.

Usage: python benchmarks/bench_training_budget.py [--steps N]
"""

from __future__ import annotations

import argparse
import sys

from seglib import bench
from seglib.profiles import get_profile

#: (input size, batch, processes side by side); the first is the baseline of the ratios.
SETTINGS = [((64, 128), 4, 1), ((64, 128), 4, 2), ((64, 128), 16, 1), ((128, 256), 4, 1), ((128, 256), 4, 2)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per process (the median counts)")
    args = parser.parse_args(argv)
    ci = get_profile("ci")
    print(f"machine: {bench.machine_description()}; the ci profile trains at {ci.image_size[0]}x{ci.image_size[1]}, "
          f"batch {ci.batch_size}")
    rows, baseline = [], None
    for size, batch, processes in SETTINGS:
        steps = bench.training_steps_per_second(size, batch, processes, args.steps)
        images = steps * batch
        baseline = baseline or images
        rows.append((f"{size[0]}x{size[1]}", batch, processes, f"{steps:.2f}", f"{images:.1f}",
                     f"{images / baseline:.2f}x"))
        print(f"  {rows[-1]}", flush=True)
    print(bench.markdown_table(["input", "batch", "runs side by side", "steps/s (all runs)", "images/s",
                                "images/s vs first row"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
