"""Benchmark: the trained U-Net as Keras, SavedModel and TFLite (float32, float16, int8) on this machine's CPU.

For each format: file size, median milliseconds to predict one image at the model's input size (the model alone:
Keras called in a tf.function as seglib.predict.Predictor calls it, the SavedModel's ``serve`` function, the
TFLite files in LiteRT's interpreter, ``ai_edge_litert``, with all CPU cores and with one thread; the files written
by Keras's ``model.export(..., format="litert")``), and the official category mIoU on the val split
(seglib.train.evaluate); each as a ratio to the Keras model, measured in the same run by
seglib.export.compare_exports (the code chapter 15 runs too). Below the table, each time is judged faster, slower
or within the noise from its samples (seglib.bench.ratio_phrase), against Keras and, on one thread, against TFLite
float32.

The model is chapter 9's U-Net for the run profile (seglib.predict.default_model_path: ``$SEGLIB_MODEL`` or the
newest ``$SEGLIB_DATA/runs/unet16-<profile>-*/final.keras``); ``--model`` overrides it.

Usage: python benchmarks/bench_export.py [--model PATH] [--repeats N] [--out FOLDER] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from seglib import bench, datasets, export, predict
from seglib.profiles import get_profile


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a .keras model (default: chapter 9's for the run profile)")
    parser.add_argument("--repeats", type=int, help="timed calls per format (default: the profile's)")
    parser.add_argument("--threads", type=int, help="LiteRT interpreter threads (default: all CPU cores)")
    parser.add_argument("--out", type=Path, help="folder for the exported files (default: a temporary folder)")
    args = parser.parse_args(argv)
    profile = get_profile()
    try:
        model_path = args.model or predict.default_model_path(profile.name)
    except FileNotFoundError as error:
        parser.error(str(error))
    root = datasets.dataset_root(profile)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.out or Path(scratch)
        results = export.compare_exports(model_path, root, folder, profile, args.repeats, threads=args.threads)
    print(f"machine: {bench.machine_description()}; profile {profile.name}; model {model_path}")
    print(f"latency: median of {args.repeats or profile.benchmark_repeats} calls on one image at the model's input "
          f"size; TFLite in LiteRT with {args.threads or os.cpu_count()} thread(s) and with 1; mIoU on "
          f"{results[0].evaluation.frames} val frames of {root}\n")
    print(export.comparison_table(results))
    keras_result, float32 = results[0], next(r for r in results if r.name == "TFLite float32")
    print(f"\nJudged from the {len(keras_result.samples)} samples of each (seglib.bench.compare_times: Mann-Whitney's "
          f"exact test at {bench.SIGNIFICANCE:.0%}):")
    print("- time against Keras: " + "; ".join(f"{r.name} {bench.ratio_phrase(r.samples, keras_result.samples)}"
                                            for r in results[1:]))
    print("- on one thread, against TFLite float32: " + "; ".join(
        f"{r.name} {bench.ratio_phrase(r.samples_one_thread, float32.samples_one_thread)}"
        for r in results if r.samples_one_thread and r is not float32))


if __name__ == "__main__":
    main()
