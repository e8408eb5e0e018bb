"""Benchmark: what a run's first training step costs on TensorFlow with Adam built before it and left to ``fit``.

``seglib.train.fit`` calls ``train.build_optimizer`` after compiling. Without it Adam creates its variables while
``model.fit`` traces the training step into a graph, and a ``tf.function`` that creates variables is traced a
second time. This benchmark times the first ``fit`` of one epoch of two steps (trace, graph optimisation and the
two steps) in a fresh process for each sample, alternating the two ways, and prints the time with the optimizer
built as a ratio to the time without, for the book's U-Net and for chapter 10b's SegFormer at the ci profile's
size and width.

Measured on 2 CPU cores (Intel Xeon, no GPU), 3 processes each, medians: the U-Net 8.8 s left to ``fit``, 4.4 s
built first; SegFormer 34.0 s and 15.6 s.

Usage: python benchmarks/bench_first_step.py [--repeats N] [--models unet segformer]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from seglib import bench
from seglib.profiles import get_profile

#: model name -> the seglib.experiments function that builds it at a profile's size
MODELS = {"unet": "book_unet", "segformer": "segformer", "deeplab": "deeplab", "fpn": "fpn"}

_ONE_SAMPLE = """
import json, time
import keras, numpy as np
from seglib import experiments, losses, keras_metrics, profiles, train
profile = profiles.get_profile("ci")
model = experiments.{build}(profile)
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=losses.CrossEntropyLoss(),
              metrics=[keras_metrics.MeanIoU()])
if {prebuild}:
    train.build_optimizer(model)
rng = np.random.default_rng(0)
images = rng.random((2 * profile.batch_size, *profile.image_size, 3), dtype=np.float32)
targets = rng.integers(0, 8, (2 * profile.batch_size, *profile.image_size))
start = time.perf_counter()
model.fit(images, targets, batch_size=profile.batch_size, epochs=1, verbose=0)
print(json.dumps(time.perf_counter() - start))
"""


def first_fit_seconds(model: str, prebuild: bool) -> float:
    """Seconds of the first ``fit`` (one epoch, two steps) of ``model`` in a fresh Python process."""
    code = _ONE_SAMPLE.format(build=MODELS[model], prebuild=prebuild)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the {model} sample failed:\n{result.stderr[-2000:]}")
    return float(json.loads(result.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4,
                        help="fresh processes per model and way (default 4: with 3 the rank test cannot say faster)")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["unet", "segformer"])
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    ci = get_profile("ci")
    print(f"machine: {bench.machine_description()}; ci profile: {ci.image_size[0]}x{ci.image_size[1]} input, "
          f"batch {ci.batch_size}, encoder width {ci.encoder_width:g}")
    rows = []
    for model in args.models:
        unbuilt, built = [], []
        for _ in range(args.repeats):  # alternating, so that a change in the machine's load hits both ways
            unbuilt.append(first_fit_seconds(model, prebuild=False))
            built.append(first_fit_seconds(model, prebuild=True))
        rows.append((model, f"{sorted(unbuilt)[len(unbuilt) // 2]:.1f} s", f"{sorted(built)[len(built) // 2]:.1f} s",
                     bench.ratio_phrase(built, unbuilt)))
        print(f"  {rows[-1]}", flush=True)
    print(bench.markdown_table(["model", "first fit, Adam left to fit (median)", "first fit, Adam built first",
                                "built first vs left to fit"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
