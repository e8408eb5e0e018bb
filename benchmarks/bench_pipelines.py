"""Benchmark: how fast each input pipeline delivers (image, mask) pairs, beside how fast a U-Net eats them.

Prints, in one run on this machine, on the generated `ci` frames (always generated ones, whatever
$CITYSCAPES_DATASET says) at their own size, 256x512, so without resizing:
1. steady-state images per second (over several epochs, the first batch left out) of tf.data (from PNG files),
   the Keras PyDataset generator, and tf.data from TFRecords, each without and with augmentation (decoding every
   epoch: no cache; the generator in one thread, as iterated here);
2. the same for tf.data with its cache (what training uses from the second epoch on);
3. the rate at which the book's CPU U-Net (16 base filters) consumes images in training, and each pipeline's
   rate as a multiple of it (>= 10x means the input is never the bottleneck);
4. reading an example from PNG files vs from TFRecords, bytes only and bytes + decode (ratio);
5. the two augmentation back-ends (albumentations, Keras's preprocessing layers) inside tf.data (files, cached, so
   that augmentation is what differs): images per second of each, epochs timed in turns, and the Keras back-end's
   rate as a multiple of albumentations' with the verdict of seglib.bench.ratio_phrase (faster, slower or within the
   noise).

Usage: python benchmarks/bench_pipelines.py [--epochs E] [--repeats R] [--size H W] [--backends-only]
(--size resizes the frames to H x W; --backends-only runs part 5 alone.)
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile

import keras
import tensorflow as tf

from seglib import augment, bench, cityscapes, data, datasets, models, profiles, synthetic

SIZE = (256, 512)
BATCH = 8


def pipeline_rates(root, records, epochs: int, size: tuple[int, int] = SIZE) -> dict[str, float]:
    transform = augment.make_augmentation()
    settings = {"image_size": size, "batch_size": BATCH}
    makers = {
        "tf.data (files)": lambda aug, cache: data.tf_dataset(root, "train", augmentation=aug, cache=cache,
                                                              **settings),
        "generator (PyDataset)": lambda aug, cache: data.SegmentationSequence(root, "train", augmentation=aug,
                                                                             **settings),
        "tf.data (TFRecords)": lambda aug, cache: data.tfrecord_dataset(records, "train", augmentation=aug,
                                                                        cache=cache, **settings),
    }
    rates = {}
    for name, make in makers.items():
        for aug in (None, transform):
            label = f"{name}{' + augmentation' if aug else ''}"
            rates[label] = bench.images_per_second(make(aug, False), epochs)
    cached = data.tf_dataset(root, "train", augmentation=transform, cache=True, **settings)
    rates["tf.data (files) + augmentation, cached"] = bench.images_per_second(cached, epochs + 1)
    return rates


def _one_epoch(dataset) -> None:
    for images, _ in dataset:
        images.numpy()


def backend_seconds(root, repeats: int, size: tuple[int, int] = SIZE) -> dict[str, list[float]]:
    """Seconds of each of ``repeats`` epochs of tf.data (files, cached) with each augmentation back-end, timed in
    turns after one untimed epoch each (which fills the cache and traces the graph): ``{backend: seconds}``."""
    pipelines = {backend: data.tf_dataset(root, "train", cache=True, image_size=size, batch_size=BATCH,
                                          augmentation=augment.make_augmentation(
                                              augment.AugmentationSettings(backend=backend)))
                 for backend in augment.BACKENDS}
    samples = bench.interleaved_sample_seconds([functools.partial(_one_epoch, dataset)
                                                for dataset in pipelines.values()], repeats, warmup=1)
    return dict(zip(pipelines, samples))


def print_backends(seconds: dict[str, list[float]], frames: int) -> None:
    baseline = seconds[augment.BACKENDS[0]]
    base_rate = frames / statistics.median(baseline)
    for backend, samples in seconds.items():
        rate = frames / statistics.median(samples)
        print(f"{'augmentation by ' + backend:>42}: {rate:7.1f} images/s = {rate / base_rate:6.2f}x "
              f"{augment.BACKENDS[0]}' rate")
    for backend, samples in seconds.items():
        if samples is not baseline:
            print(f"{backend} against {augment.BACKENDS[0]} ({len(samples)} epochs each, in turns): "
                  f"{bench.ratio_phrase(samples, baseline)} (epoch time)")


def unet_rate(size: tuple[int, int] = SIZE) -> float:
    model = models.unet((*size, 3), base_filters=16)
    model.compile(optimizer=keras.optimizers.Adam(), loss=keras.losses.SparseCategoricalCrossentropy())
    return bench.training_images_per_second(model, size, BATCH, steps=3)


def reading_seconds(root, records, repeats: int) -> dict[str, float]:
    """Seconds per example over full passes of the split, one example at a time: PNG files vs TFRecords, bytes
    only and bytes + decode."""
    frames = data.frames_with_labels(root, "train")
    paths = tf.data.Dataset.from_tensor_slices(([str(f.image_path) for f in frames],
                                                [str(f.gt_path("labelIds")) for f in frames]))
    files = paths.map(lambda image, label: (tf.io.read_file(image), tf.io.read_file(label), image, label))
    tfrecords = data.read_tfrecords(data.tfrecord_paths(records, "train"))
    passes = {"PNG files, read": files, "TFRecords, read": tfrecords,
              "PNG files, read + decode": files.map(data.decode_pair),
              "TFRecords, read + decode": tfrecords.map(data.decode_pair)}
    return {name: bench.median_seconds(lambda: [None for _ in dataset], repeats) / len(frames)
            for name, dataset in passes.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="passes over the split per pipeline")
    profile = profiles.get_profile("ci")  # the generated frames, always (not $CITYSCAPES_DATASET): 256x512 = SIZE
    parser.add_argument("--repeats", type=int, default=profile.benchmark_repeats,
                        help="timed epochs per augmentation back-end")
    parser.add_argument("--size", type=int, nargs=2, default=SIZE, metavar=("H", "W"),
                        help="resize the frames to H x W (default: their own size, no resizing)")
    parser.add_argument("--backends-only", action="store_true", help="compare the augmentation back-ends only")
    args = parser.parse_args(argv)
    size = tuple(args.size)
    root = synthetic.ensure_dataset(datasets.synthetic_root(profile.synthetic_size), profile.synthetic_size,
                                    profile.synthetic_counts)
    frames = len(cityscapes.list_frames(root, "train"))
    print(f"machine: {bench.machine_description()}; {frames} frames at {size[0]}x{size[1]}, batch {BATCH}")
    if args.backends_only:
        print_backends(backend_seconds(root, args.repeats, size), frames)
        return
    with tempfile.TemporaryDirectory() as records:
        data.write_tfrecords(root, "train", records)
        rates = pipeline_rates(root, records, args.epochs, size)
        reading = reading_seconds(root, records, 3)
    backends = backend_seconds(root, args.repeats, size)
    training = unet_rate(size)
    print(f"U-Net (16 base filters) training on CPU consumes {training:.1f} images/s")
    for name, rate in rates.items():
        print(f"{name:>42}: {rate:7.1f} images/s = {rate / training:6.1f}x the U-Net's training rate")
    for step in ("read", "read + decode"):
        png, record = reading[f"PNG files, {step}"], reading[f"TFRecords, {step}"]
        print(f"per example, {step}: PNG files {1000 * png:.2f} ms, TFRecords {1000 * record:.2f} ms -> "
              f"TFRecords take {record / png:.2f}x the PNG files' time")
    print_backends(backends, frames)


if __name__ == "__main__":
    main()
