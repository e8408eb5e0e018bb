"""Benchmark: the 34 -> 8 category remap, and polygons -> label ids against the official tool.

Prints, in one run on this machine:
1. ``label_ids_to_categories`` (lookup table) versus a per-class loop on 1024x2048 masks (ratio);
2. ``polygons_to_label_ids`` versus the official ``cityscapesscripts`` json2labelImg (``Annotation.fromJsonFile``
   + ``createLabelImage(..., "ids")``) on generated full-size polygon files (ratio and identical-pixel percentage).

Usage: python benchmarks/bench_masks.py [--frames N] [--repeats R]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.preparation.json2labelImg import createLabelImage

from seglib import bench, cityscapes, labels, masks, synthetic

FULL_SIZE = cityscapes.FRAME_SIZE


def official_label_ids(path: Path) -> np.ndarray:
    annotation = Annotation()
    annotation.fromJsonFile(str(path))
    return np.asarray(createLabelImage(annotation, "ids"))


def bench_remap(repeats: int) -> None:
    label_ids = np.random.default_rng(0).integers(0, labels.NUM_LABEL_IDS, FULL_SIZE).astype(np.uint8)
    assert np.array_equal(masks.label_ids_to_categories(label_ids), masks.label_ids_to_categories_loop(label_ids))
    lookup = bench.median_seconds(lambda: masks.label_ids_to_categories(label_ids), repeats)
    loop = bench.median_seconds(lambda: masks.label_ids_to_categories_loop(label_ids), repeats)
    print(f"remap 34 -> 8 at {FULL_SIZE[0]}x{FULL_SIZE[1]}: lookup table {1000 * lookup:.2f} ms, "
          f"per-class loop {1000 * loop:.2f} ms -> lookup is {loop / lookup:.1f}x faster")


def bench_polygons(frames: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index in range(frames):
            path = Path(folder) / f"frame{index}_gtFine_polygons.json"
            masks.write_polygons(path, synthetic.make_scene(np.random.default_rng(index), FULL_SIZE))
            paths.append(path)
        identical = total = 0
        for path in paths:
            ours, official = masks.polygons_to_label_ids(path), official_label_ids(path)
            identical += int(np.count_nonzero(ours == official))
            total += ours.size
        ours_s = bench.median_seconds(lambda: [masks.polygons_to_label_ids(p) for p in paths], repeats) / frames
        official_s = bench.median_seconds(lambda: [official_label_ids(p) for p in paths], repeats) / frames
    print(f"polygons json -> label ids at {FULL_SIZE[0]}x{FULL_SIZE[1]} ({frames} generated frames): "
          f"seglib {1000 * ours_s:.1f} ms, official json2labelImg {1000 * official_s:.1f} ms per frame -> "
          f"seglib takes {ours_s / official_s:.2f}x the official time; "
          f"{100 * identical / total:.4f} % of {total} pixels identical")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8, help="generated full-size polygon files to draw")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions (the median is printed)")
    args = parser.parse_args(argv)
    print(f"machine: {bench.machine_description()}")
    bench_remap(args.repeats)
    bench_polygons(args.frames, args.repeats)


if __name__ == "__main__":
    main()
