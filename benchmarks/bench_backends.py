"""Benchmark: one training step of the book's U-Net on each Keras backend installed here, against TensorFlow.

Each backend is timed in a fresh process, one after the other (a process's backend is fixed when Keras is
imported): the ci profile's input size and batch, two untimed steps, then ``--steps`` timed ones. Prints the median
milliseconds per step and each backend's time as a ratio to TensorFlow's, with the verdict of a rank test on the
samples (``faster``, ``slower``, ``within the noise``). The book's page on backends runs the same measurement.

Usage: python benchmarks/bench_backends.py [--steps N]
"""

from __future__ import annotations

import argparse
import statistics
import sys

from seglib import backends, bench
from seglib.profiles import get_profile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15, help="timed training steps per backend")
    args = parser.parse_args(argv)
    ci = get_profile("ci")
    print(f"machine: {bench.machine_description()}; the book's U-Net at {ci.image_size[0]}x{ci.image_size[1]}, "
          f"batch {ci.batch_size}, {args.steps} timed steps per backend")
    samples = {backend: bench.backend_step_seconds(backend, ci.image_size, ci.batch_size, args.steps)
               for backend in backends.MODULES}
    baseline = samples["tensorflow"]
    rows = []
    for backend, seconds in samples.items():
        if seconds is None:
            rows.append((backend, "not installed", ""))
            continue
        versus = "baseline" if backend == "tensorflow" else bench.ratio_phrase(seconds, baseline)
        rows.append((backend, f"{1000 * statistics.median(seconds):.0f}", versus))
    print(bench.markdown_table(["Keras backend", "ms per training step (median)", "vs tensorflow"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
