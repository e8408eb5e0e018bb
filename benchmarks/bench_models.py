"""Benchmark: training step time and inference time per image of each model, at 256x512 on this machine.

Prints, for each model of seglib.models (random weights: speed does not depend on them), its parameters, the
median seconds of one training step on a batch of 8 (Adam, cross-entropy), and the median milliseconds to predict
one image inside a tf.function; each as a ratio to the book's CPU U-Net (16 base filters).

Usage: python benchmarks/bench_models.py [--steps N] [--models unet16,fcn8_512,...]
"""

from __future__ import annotations

import argparse

import keras
import numpy as np
import tensorflow as tf

from seglib import bench, models

SIZE = (256, 512)
BATCH = 8
SHAPE = (*SIZE, 3)
MODELS = {
    "unet16": lambda: models.unet(SHAPE, base_filters=16),
    "unet32": lambda: models.unet(SHAPE, base_filters=32),
    "unet64": lambda: models.unet(SHAPE, base_filters=64),
    "simple_unet16": lambda: models.simple_unet(SHAPE, base_filters=16),
    "fcn8_512": lambda: models.fcn8_vgg16(SHAPE, weights=None, head_filters=512),
    "fcn8_4096": lambda: models.fcn8_vgg16(SHAPE, weights=None, head_filters=4096),
    "unet_vgg16": lambda: models.pretrained_unet(SHAPE, weights=None),
    "unet_resnet50": lambda: models.pretrained_unet(SHAPE, encoder_name="resnet50", weights=None),
}


def measure(model: keras.Model, steps: int) -> tuple[float, float]:
    """(seconds per training step, seconds per predicted image)."""
    rng = np.random.default_rng(0)
    images = rng.random((BATCH, *SHAPE), dtype=np.float32)
    targets = rng.integers(0, model.output_shape[-1], (BATCH, *SIZE)).astype(np.uint8)
    model.compile(optimizer=keras.optimizers.Adam(), loss=keras.losses.SparseCategoricalCrossentropy())
    step = bench.median_seconds(lambda: model.train_on_batch(images, targets), repeats=steps, warmup=1)
    predict = tf.function(lambda x: model(x, training=False))
    one = tf.constant(images[:1])
    per_image = bench.median_seconds(lambda: predict(one).numpy(), repeats=max(3, steps), warmup=1)
    return step, per_image


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per model (the median is printed)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of: " + ", ".join(MODELS))
    args = parser.parse_args(argv)
    names = args.models.split(",")
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    if "unet16" not in names:
        names.insert(0, "unet16")  # the baseline of the ratios
    print(f"machine: {bench.machine_description()}; input {SIZE[0]}x{SIZE[1]}, training batch {BATCH}")
    results = {}
    for name in names:
        model = MODELS[name]()
        results[name] = (model.count_params(), *measure(model, args.steps))
        keras.backend.clear_session()
    base_step, base_image = results["unet16"][1:]
    for name, (parameters, step, image) in results.items():
        print(f"{name:>14}: {parameters / 1e6:7.2f} M parameters, training step {step:6.2f} s "
              f"({step / base_step:5.1f}x unet16), predict {1000 * image:7.1f} ms/image ({image / base_image:5.1f}x)")


if __name__ == "__main__":
    main()
