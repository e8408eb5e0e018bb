"""Writing the dataset: frames (:func:`generate_frame`), where they live (:func:`frame_for`), their files
(:func:`write_frame`) and whole datasets made idempotently, in worker processes when there are many
(:func:`ensure_dataset`). Files are written with :mod:`seglib.safeio`: whole files only, never into a folder
that is not ours.

The worker processes never outlive the process that started them: each asks Linux to send it SIGTERM when its parent
dies (``prctl(PR_SET_PDEATHSIG)``; elsewhere a watchdog thread checks the parent's id), ignores Ctrl-C (the parent
handles it) and, on SIGTERM, abandons the file it is writing (its temporary is removed) and exits. When the parent
stops early - an exception, Ctrl-C, or SIGTERM turned into an exception, as ``data_scripts/make_synthetic.py`` does -
the pending frames are cancelled and the workers terminated before the exception goes on; a rerun finishes the job."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from seglib import lifetime, masks, safeio
from seglib.cityscapes import GT_KINDS, SPLITS, Frame
from seglib.synthetic.render import render_image
from seglib.synthetic.scene import _check_size, make_scene

__all__ = ["GENERATOR_VERSION", "CITIES", "FRAME_NUMBER", "MARKER_NAME", "generate_frame", "frame_for",
           "write_frame", "ensure_dataset"]

#: Bumped whenever the same seed would give different frames; a dataset made by another version is not reused.
GENERATOR_VERSION: int = 1
#: Fictional city names per split (lowercase letters only, as the Cityscapes file names need).
CITIES: dict[str, tuple[str, ...]] = {
    "train": ("velmora", "quenstadt", "lorivale"), "val": ("marrowick",), "test": ("tessaburg",),
}
#: The frame number in every file name: Cityscapes annotates the 20th frame of each 30-frame snippet.
FRAME_NUMBER: int = 19
#: The file that marks a folder as made by this module (and records how).
MARKER_NAME: str = "seglib_synthetic.json"

PathLike = str | os.PathLike


def generate_frame(seed: int, split: str, index: int, size: tuple[int, int]) -> tuple[np.ndarray, dict[str, Any]]:
    """Frame ``index`` of ``split``: ``(image (H, W, 3) uint8, polygons dict)``.

    Deterministic: the generator is ``np.random.default_rng([seed, SPLITS.index(split), index])``, so the same
    arguments give byte-identical output on any machine with the same library versions.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative, got seed={seed}, index={index}")
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    polygons = make_scene(rng, size)
    return render_image(polygons, rng), polygons


def frame_for(root: PathLike, split: str, index: int) -> Frame:
    """Where frame ``index`` of ``split`` lives: cities take turns, ``<city>_<seq:06d>_000019`` like Cityscapes."""
    cities = CITIES[split]
    return Frame(Path(root), split, cities[index % len(cities)], index // len(cities), FRAME_NUMBER)


def _frame_paths(frame: Frame) -> list[Path]:
    return [frame.image_path] + [frame.gt_path(kind) for kind in GT_KINDS]


def write_frame(frame: Frame, image: np.ndarray, polygons: Mapping[str, Any]) -> None:
    """Write ``image (H, W, 3) uint8`` and the four gtFine files of ``polygons`` at ``frame``'s paths.

    The masks are drawn from the polygons with :mod:`seglib.masks` (as the official tools do). Each file is written
    under a temporary name and renamed into place; the image comes last, so an image implies its annotations.
    """
    label_ids = masks.polygons_to_label_ids(polygons)
    instance_ids = masks.polygons_to_instance_ids(polygons)
    image = np.asarray(image)
    if image.shape != label_ids.shape + (3,) or image.dtype != np.uint8:
        height, width = label_ids.shape
        raise ValueError(f"image must be ({height}, {width}, 3) uint8, got {image.shape} {image.dtype}")
    writers: list[tuple[Path, Callable[[Path], None]]] = [
        (frame.gt_path("polygons"), lambda p: masks.write_polygons(p, polygons)),
        (frame.gt_path("labelIds"), lambda p: masks.write_label_ids(p, label_ids)),
        (frame.gt_path("color"), lambda p: masks.write_color(p, label_ids)),
        (frame.gt_path("instanceIds"), lambda p: masks.write_instance_ids(p, instance_ids)),
        (frame.image_path, lambda p: Image.fromarray(image, mode="RGB").save(p, compress_level=1)),
    ]
    for path, write in writers:
        safeio.atomic_write(path, write)


_README = """Synthetic street scenes in the Cityscapes file layout
=====================================================

Every image and annotation in this folder was procedurally generated by seglib.synthetic
(generator version {version}, seed {seed}, {height} x {width} pixels). None of it comes from the
Cityscapes dataset or any other photograph, so it is license-clean: use, share and delete it freely.
The folder layout and file formats are those of Cityscapes (leftImg8bit/, gtFine/), so the same
code runs on the real dataset. Deleting the folder is safe: it is regenerated on demand.
"""


def _claim(root: Path, size: tuple[int, int], seed: int) -> None:
    """Make ``root`` ours (marker + README), or check that it already is, with the same settings."""
    wanted = {"generator": "seglib.synthetic", "version": GENERATOR_VERSION, "seed": seed, "size": list(size)}
    found = safeio.claim_folder(
        root, MARKER_NAME, wanted,
        not_ours=f"{root} exists and is not empty but has no {MARKER_NAME}, so it may hold your own data; "
                 "seglib.synthetic will not write into it. Choose a new or empty folder for the generated "
                 "scenes (or point CITYSCAPES_DATASET at it if it is a real Cityscapes root)")
    if any(found.get(key) != wanted[key] for key in ("version", "seed", "size")):
        raise ValueError(
            f"{root} holds synthetic scenes made with {_settings(found)}, but {_settings(wanted)} was asked for; "
            f"delete {root} to regenerate it, or use another root (one folder per size and seed)")
    if not (root / "README.txt").is_file():
        text = _README.format(version=GENERATOR_VERSION, seed=seed, height=size[0], width=size[1])
        safeio.atomic_write_text(root / "README.txt", text)


def _settings(marker: Any) -> str:
    if not isinstance(marker, dict):
        return repr(marker)
    size = marker.get("size")
    size = f"{size[0]}x{size[1]}" if isinstance(size, list) and len(size) == 2 else repr(size)
    return f"version={marker.get('version')!r}, seed={marker.get('seed')!r}, size={size}"


def _make_frame(task: tuple[str, str, int, tuple[int, int], int]) -> None:
    root, split, index, size, seed = task
    image, polygons = generate_frame(seed, split, index, size)
    write_frame(frame_for(root, split, index), image, polygons)


def _check_workers(workers: Any) -> int | None:
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer (or None for automatic), got {workers!r}")
    return int(workers)


def _worker_count(workers: int | None, frames: int) -> int:
    if workers is not None:
        return max(1, min(int(workers), frames))
    if frames < 64:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, frames // 16))


# ---------------------------------------------------------------------------------------------------------
# The worker pool: workers that die with their parent, stop cleanly, and a clear error for a missing main guard
# ---------------------------------------------------------------------------------------------------------

#: What a script that starts the pool without the main guard is told (in the parent and in the failing worker).
_MAIN_GUARD_HINT = (
    "the synthetic frames are generated in worker processes started with 'spawn', which re-imports the main script "
    "in each of them, so a script that calls seglib.datasets.dataset_root() or seglib.synthetic.ensure_dataset() at "
    "its top level needs the usual guard: put that code under 'if __name__ == \"__main__\":'. Or generate in this "
    "process: ensure_dataset(..., workers=1), or make the dataset once beforehand with "
    "'python data_scripts/make_synthetic.py --workers 1'"
)
#: Worker state: inside a frame (SIGTERM unwinds the write), and whether SIGTERM has come.
_in_task = False
_stopping = False


class _Stopped(BaseException):
    """Raised in a worker by SIGTERM while it writes a frame, so that the write is abandoned (temporary removed)."""


def _stop_worker(signum: int, frame: Any) -> None:
    global _stopping
    _stopping = True
    if _in_task:
        raise _Stopped
    os._exit(128 + signum)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def _init_worker(parent: int) -> None:
    """Pool initializer: SIGTERM when the parent dies, Ctrl-C left to the parent, SIGTERM stops cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the whole process group
    signal.signal(signal.SIGTERM, _stop_worker)
    set_death_signal = lifetime.death_signal(parent)
    watched = set_death_signal() if set_death_signal else False
    if os.getppid() != parent:  # the parent died before this worker started
        os._exit(128 + signal.SIGTERM)
    if not watched:
        threading.Thread(target=_watch_parent, args=(parent,), name="seglib-watch-parent", daemon=True).start()


def _make_frame_in_worker(task: tuple[str, str, int, tuple[int, int], int]) -> None:
    global _in_task
    try:
        if _stopping:
            os._exit(128 + signal.SIGTERM)
        _in_task = True
        _make_frame(task)
    except _Stopped:
        os._exit(128 + signal.SIGTERM)
    finally:
        _in_task = False


def _stop_pool(pool: ProcessPoolExecutor, timeout: float = 10.0) -> None:
    """Cancel the pending frames and terminate the workers (each abandons its current file and exits)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
    pool.shutdown(wait=True)


def _importing_main_in_a_worker() -> bool:
    """Whether this process is a spawned worker still importing the main script (the missing-guard case)."""
    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


def _generate(root: Path, split: str, indices: list[int], size: tuple[int, int], seed: int,
              workers: int | None) -> None:
    """Generate and write the given frames, in worker processes when there are many."""
    tasks = [(str(root), split, index, size, seed) for index in indices]
    count = _worker_count(workers, len(tasks))
    if count == 1:
        for task in tasks:
            _make_frame(task)
        return
    # spawn: safe in notebooks and with threads; scripts need the usual `if __name__ == "__main__":` guard
    pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                               initargs=(os.getpid(),))
    try:
        list(pool.map(_make_frame_in_worker, tasks, chunksize=max(1, len(tasks) // (8 * count))))
    except BrokenProcessPool as error:
        _stop_pool(pool)
        raise RuntimeError(f"a worker process died while generating synthetic frames ({error}). If a script "
                           f"started this: {_MAIN_GUARD_HINT}. Otherwise a worker was killed (out of memory?); the "
                           "frames written so far are whole, rerun to finish") from error
    except BaseException:  # an error, Ctrl-C, SIGTERM turned into an exception: no worker may go on writing
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def _check_counts(counts: Mapping[str, int]) -> dict[str, int]:
    unknown = set(counts) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)} in counts; choose from {', '.join(SPLITS)}")
    if any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0 for n in counts.values()):
        raise ValueError(f"frame counts must be non-negative integers, got {dict(counts)}")
    return {split: int(counts.get(split, 0)) for split in SPLITS}


def ensure_dataset(root: PathLike, size: tuple[int, int], counts: Mapping[str, int], seed: int = 0,
                   workers: int | None = None) -> Path:
    """Make sure ``root`` holds the first ``counts[split]`` generated frames of each split at ``size = (H, W)``.

    Made on first use and idempotent: only frames with a missing file are generated (asking for more frames
    later adds frames; a re-run after an interrupt finishes the job). ``root`` gets a marker ``seglib_synthetic.json``
    (generator version, seed, size) and a ``README.txt``. Raises ``FileExistsError`` for an existing non-empty
    folder without the marker (it may be someone's data) and ``ValueError`` for a marker with other settings.
    ``workers`` processes generate (a positive integer; default: 1 for fewer than 64 missing frames, else up to the
    CPU count); they are started with ``spawn``, so a script calling this at its top level needs the
    ``if __name__ == "__main__":`` guard (a ``RuntimeError`` says so otherwise). A run that generated frames then
    deletes the temporaries a killed run left (:func:`seglib.safeio.remove_stale_temporaries`).
    Prints at most one line per split. Returns ``root`` as a Path.
    """
    root, size, counts = Path(root).expanduser(), _check_size(size), _check_counts(counts)
    workers = _check_workers(workers)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _claim(root, size, int(seed))
    folders = (root / "leftImg8bit", root / "gtFine")
    cleaned = False
    for split in SPLITS:
        missing = [i for i in range(counts[split])
                   if not all(path.is_file() for path in _frame_paths(frame_for(root, split, i)))]
        if not missing:
            continue
        if _importing_main_in_a_worker():
            raise RuntimeError(f"not generating frames in a worker process that is importing the main script; "
                               f"{_MAIN_GUARD_HINT}")
        if not cleaned:
            for folder in folders:
                safeio.remove_stale_temporaries(folder)
            cleaned = True
        start = time.perf_counter()
        _generate(root, split, missing, size, int(seed), workers)
        print(f"seglib.synthetic: generated {len(missing)} {split} frame(s) of {size[0]}x{size[1]} in "
              f"{time.perf_counter() - start:.1f} s under {root}", flush=True)
    if cleaned:  # this run completed the frames: nothing a killed run left behind may stay
        for folder in folders:
            safeio.remove_stale_temporaries(folder, orphaned_after=5.0)
    return root
