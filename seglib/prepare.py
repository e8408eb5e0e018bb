"""Prepare a Cityscapes-layout dataset for fast training: category masks and, optionally, downscaled copies.

For every frame of the requested splits of an input root (the real Cityscapes or the generated street scenes)
this writes, under a separate output root and in the same layout:

* ``gtFine/<split>/<city>/<stem>_gtFine_categoryIds.png`` - 8-bit grey, category ids 0..7
  (:func:`seglib.masks.label_ids_to_categories` of the frame's labelIds);
* with a ``size`` (H, W) also ``leftImg8bit/.../<stem>_leftImg8bit.png`` (the image resized with area
  filtering when shrinking, bilinear when enlarging) and ``gtFine/.../<stem>_gtFine_labelIds.png`` (resized
  with nearest-neighbour sampling only, so no label is ever invented); the category mask then has that size too.
  A size is at most :data:`MAX_SIZE` = 4096 x 8192 (H x W), four times a Cityscapes frame (1024 x 2048) per side,
  the same bound as the generated street scenes; larger sizes are refused before anything is created
  (:func:`check_output_size`), so a mistyped size fails at once rather than running out of memory after the output
  root was made.

Safety rules, all enforced here rather than in the command-line script:

* the input root is only read: an output root equal to it, inside it, or containing it is refused;
* the output root carries a marker (:data:`MARKER_NAME`, recording the input root and size) and a ledger of
  every file written (:data:`LEDGER_NAME`); a non-empty folder without the marker, a marker for another input or
  size, and an existing output file missing from the ledger are all refused, so no foreign file is overwritten;
* every file is written to a temporary name and moved into place with ``os.replace``, so an interrupted run
  leaves whole files only; a rerun skips outputs that exist and are at least as new as their inputs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from seglib import safeio
from seglib.cityscapes import SPLITS, Frame, check_dataset_root, list_frames, read_image
from seglib.datasets import data_dir
from seglib.masks import (check_categories, check_label_ids, check_size, label_ids_to_categories, read_label_ids,
                          resize_nearest)

__all__ = [
    "MARKER_NAME", "LEDGER_NAME", "MAX_SIZE", "check_output_size", "PrepareReport", "OutputRoot", "category_mask_path",
    "resize_image", "default_output_root", "check_output_root", "open_output_root",
    "available_splits", "prepare_frame", "prepare_split", "prepare_dataset",
]

PathLike = str | os.PathLike
#: File in the output root that marks it as made by this module (JSON: tool, source root, size).
MARKER_NAME = ".seglib-prepared.json"
#: File in the output root listing, one relative path a line, every file this module has written there.
LEDGER_NAME = ".seglib-prepared-files.txt"
#: The largest output size ``(H, W)``: four times a Cityscapes frame (1024 x 2048) per side.
MAX_SIZE: tuple[int, int] = (4096, 8192)
_TOOL = "seglib.prepare"


def check_output_size(size: Iterable[int]) -> tuple[int, int]:
    """Validate an output size ``(H, W)``: two positive integers (:func:`seglib.masks.check_size`) of at most
    :data:`MAX_SIZE`; returns it as a tuple, else raises ``ValueError`` naming the bound."""
    height, width = check_size(size)
    if height > MAX_SIZE[0] or width > MAX_SIZE[1]:
        raise ValueError(
            f"size {height}x{width} (HxW) is too large: at most {MAX_SIZE[0]}x{MAX_SIZE[1]}, four times a Cityscapes "
            "frame (1024x2048) per side"
        )
    return height, width


@dataclass
class PrepareReport:
    """Counts of one preparation run: frames visited, output files written, output files skipped as up to date."""

    frames: int = 0
    written: int = 0
    skipped: int = 0

    def __add__(self, other: PrepareReport) -> PrepareReport:
        return PrepareReport(self.frames + other.frames, self.written + other.written, self.skipped + other.skipped)


# ---------------------------------------------------------------------------------------------------------
# Resizing (pure functions on arrays)
# ---------------------------------------------------------------------------------------------------------

def resize_image(image: np.ndarray, size: Iterable[int]) -> np.ndarray:
    """Resize an RGB image for a stored copy: area averaging (Pillow ``BOX``: each output pixel is the mean of the
    input pixels it covers, as downscaled datasets are made) when no side grows, bilinear otherwise. Masks are resized
    by :func:`seglib.masks.resize_nearest`; the model's own resize is :func:`seglib.modelio.resize_image`.

    ``image: (H, W, 3) uint8`` -> ``(h, w, 3) uint8``, where ``size = (h, w)``.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be an (H, W, 3) uint8 array, got shape {image.shape} dtype {image.dtype}")
    height, width = check_output_size(size)
    shrinking = height <= image.shape[0] and width <= image.shape[1]
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(image, mode="RGB").resize((width, height), method))


def _image_size(path: Path) -> tuple[int, int]:
    """``(H, W)`` of an image file, from its header only."""
    try:
        with Image.open(path) as image:
            return image.height, image.width
    except (OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(f"cannot decode image {path}: {error}; re-download or regenerate it") from error


# ---------------------------------------------------------------------------------------------------------
# The output root: where it goes, and the guards that keep it apart from everything else
# ---------------------------------------------------------------------------------------------------------

def category_mask_path(frame: Frame) -> Path:
    """Path of a frame's category mask: ``<root>/gtFine/<split>/<city>/<stem>_gtFine_categoryIds.png``."""
    return frame.gt_path("labelIds").with_name(f"{frame.stem}_gtFine_categoryIds.png")


def default_output_root(size: Iterable[int] | None = None) -> Path:
    """``data_dir()/prepared-{H}x{W}``, or ``data_dir()/prepared-fullsize`` without a size
    (:func:`seglib.datasets.data_dir`)."""
    if size is None:
        return data_dir() / "prepared-fullsize"
    height, width = check_output_size(size)
    return data_dir() / f"prepared-{height}x{width}"


def check_output_root(input_root: PathLike, output_root: PathLike) -> tuple[Path, Path]:
    """Check that the input root is a Cityscapes root and that the output root lies wholly outside it.

    Returns both, resolved. Raises ``FileNotFoundError`` for a missing input root and ``ValueError`` for an
    output root equal to, inside, or containing the input root.
    """
    source = check_dataset_root(input_root).resolve()
    target = Path(output_root).expanduser().resolve()
    if target == source or target.is_relative_to(source):
        where = "the input root" if target == source else f"inside the input root {source}"
        raise ValueError(
            f"output root {target} is {where}; the input dataset is never written to - choose an --out folder "
            "outside it"
        )
    if source.is_relative_to(target):
        raise ValueError(f"output root {target} contains the input root {source}; choose an --out folder beside it")
    if target.exists() and not target.is_dir():
        raise ValueError(f"output root {target} exists and is not a folder; choose another --out")
    return source, target


class OutputRoot:
    """An output root opened by :func:`open_output_root`: writes files atomically and records them in its ledger
    (:class:`seglib.safeio.Ledger`) before writing them."""

    def __init__(self, path: Path, source: Path, size: tuple[int, int] | None):
        self.path, self.source, self.size = path, source, size
        self.ledger = safeio.Ledger(path, LEDGER_NAME)

    def is_ours(self, path: Path) -> bool:
        """Whether ``path`` (inside the root) is listed in the ledger as written by this module."""
        return path in self.ledger

    def is_up_to_date(self, path: Path, inputs: Iterable[Path]) -> bool:
        """True if ``path`` exists, was written by us and is at least as new as every input.

        Raises ``FileExistsError`` naming ``path`` if it exists but is not in the ledger.
        """
        if not path.exists():
            return False
        self.ledger.check_ours(path, f"{path} exists but was not written by prepare_cityscapes (it is not in "
                                     f"{self.ledger.path}); it is left alone - move it away, or choose another --out")
        newest_input = max(source.stat().st_mtime_ns for source in inputs)
        return path.stat().st_mtime_ns >= newest_input

    def write_png(self, path: Path, array: np.ndarray, mode: str) -> None:
        """Write ``array`` as a PNG of Pillow ``mode`` (``"L"`` or ``"RGB"``), atomically, recorded first."""
        self.ledger.record(path)
        safeio.atomic_write(path, lambda temporary: Image.fromarray(array, mode=mode).save(temporary, format="PNG"))


def open_output_root(input_root: PathLike, output_root: PathLike, size: Iterable[int] | None = None) -> OutputRoot:
    """Check both roots (:func:`check_output_root`), then create the output root with its marker, or reopen one
    made earlier for the same input root and size. Raises as described in the module docstring."""
    size = None if size is None else check_output_size(size)
    source, target = check_output_root(input_root, output_root)
    wanted = {"tool": _TOOL, "source": str(source), "size": list(size) if size else None}
    marker = safeio.claim_folder(target, MARKER_NAME, wanted, not_ours=(
        f"output root {target} is not empty and was not made by prepare_cityscapes (no {MARKER_NAME}); "
        "nothing is written there - choose a new or empty --out folder"))
    recorded_size = tuple(marker["size"]) if marker.get("size") else None
    if marker.get("tool") != _TOOL or marker.get("source") != str(source) or recorded_size != size:
        raise ValueError(
            f"output root {target} was prepared from {marker.get('source')} at size {recorded_size or 'full'}, "
            f"not from {source} at size {size or 'full'}; choose another --out, or delete {target} to redo it"
        )
    return OutputRoot(target, source, size)


# ---------------------------------------------------------------------------------------------------------
# Preparing frames and splits
# ---------------------------------------------------------------------------------------------------------

def _check_labels_exist(frames: list[Frame]) -> None:
    """Fail before writing anything if any frame lacks its labelIds, naming the first such file."""
    missing = [frame for frame in frames if not frame.gt_path("labelIds").is_file()]
    if missing:
        first = missing[0]
        raise FileNotFoundError(
            f"missing label mask {first.gt_path('labelIds')} for image {first.image_path}"
            f" ({len(missing)} of {len(frames)} frames of split {first.split!r} lack one); every image needs its "
            "*_gtFine_labelIds.png - unpack gtFine_trainvaltest.zip into the same root, or remove the image"
        )


def _read_checked_labels(frame: Frame) -> np.ndarray:
    """The frame's ``(H, W) uint8`` label ids, checked to have its image's size."""
    label_path = frame.gt_path("labelIds")
    label_ids = read_label_ids(label_path)
    image_size = _image_size(frame.image_path)
    if label_ids.shape != image_size:
        raise ValueError(
            f"label mask {label_path} is {label_ids.shape[0]}x{label_ids.shape[1]} but its image {frame.image_path} "
            f"is {image_size[0]}x{image_size[1]} (HxW); masks must have their image's size - regenerate or "
            "re-download this frame"
        )
    return label_ids


def _targets(frame: Frame, output: OutputRoot) -> dict[str, tuple[Path, list[Path]]]:
    """What to write for a frame: kind -> (output path, the input files it is computed from)."""
    out_frame = dataclasses.replace(frame, root=output.path)
    labels_in = frame.gt_path("labelIds")
    targets = {"categoryIds": (category_mask_path(out_frame), [labels_in])}
    if output.size is not None:
        targets["labelIds"] = (out_frame.gt_path("labelIds"), [labels_in])
        targets["image"] = (out_frame.image_path, [frame.image_path])
    return targets


def prepare_frame(frame: Frame, output: OutputRoot) -> PrepareReport:
    """Write one frame's outputs that are missing or stale (see the module docstring); returns the counts."""
    targets = _targets(frame, output)
    todo = {kind: path for kind, (path, inputs) in targets.items() if not output.is_up_to_date(path, inputs)}
    if not todo:
        return PrepareReport(frames=1, skipped=len(targets))
    label_ids = _read_checked_labels(frame)
    if output.size is not None:
        label_ids = check_label_ids(resize_nearest(label_ids, output.size))
    if "categoryIds" in todo:
        output.write_png(todo["categoryIds"], check_categories(label_ids_to_categories(label_ids), False), "L")
    if "labelIds" in todo:
        output.write_png(todo["labelIds"], label_ids, "L")
    if "image" in todo:
        output.write_png(todo["image"], resize_image(read_image(frame.image_path), output.size), "RGB")
    return PrepareReport(frames=1, written=len(todo), skipped=len(targets) - len(todo))


def _frames_to_prepare(input_root: PathLike, split: str) -> list[Frame]:
    """The frames of ``split``, after checking that each has its labelIds (nothing is written yet)."""
    frames = list_frames(check_dataset_root(input_root), split)
    _check_labels_exist(frames)
    return frames


def _prepare_frames(frames: list[Frame], output: OutputRoot,
                    progress: Callable[[int, int], None] | None) -> PrepareReport:
    report = PrepareReport()
    for done, frame in enumerate(frames, start=1):
        report = report + prepare_frame(frame, output)
        if progress is not None:
            progress(done, len(frames))
    return report


def prepare_split(input_root: PathLike, output: OutputRoot | PathLike, split: str,
                  size: Iterable[int] | None = None,
                  progress: Callable[[int, int], None] | None = None) -> PrepareReport:
    """Prepare every frame of ``split`` of ``input_root`` into ``output``.

    ``output`` is an :class:`OutputRoot` or a folder (then opened with :func:`open_output_root` and ``size``;
    an ``OutputRoot`` carries its own size and ``size`` must then be omitted). ``progress(done, total)`` is
    called after each frame. Raises ``FileNotFoundError`` for a missing root or split or a missing labelIds
    (named), and ``ValueError`` for a labelIds whose size differs from its image (named). Returns the counts.
    """
    if not isinstance(output, OutputRoot):
        check_output_root(input_root, output)
    frames = _frames_to_prepare(input_root, split)
    if not isinstance(output, OutputRoot):
        output = open_output_root(input_root, output, size)
    elif size is not None and check_output_size(size) != output.size:
        raise ValueError(f"size {tuple(size)} differs from the size {output.size} of output root {output.path}")
    return _prepare_frames(frames, output, progress)


def available_splits(input_root: PathLike) -> list[str]:
    """The splits of :data:`seglib.cityscapes.SPLITS` that have a ``leftImg8bit/<split>`` folder under the root."""
    root = check_dataset_root(input_root)
    return [split for split in SPLITS if (root / "leftImg8bit" / split).is_dir()]


def prepare_dataset(input_root: PathLike, output_root: PathLike | None = None,
                    splits: Iterable[str] | None = None, size: Iterable[int] | None = None,
                    progress: Callable[[str, int, int], None] | None = None) -> dict[str, PrepareReport]:
    """Prepare ``splits`` (default: :func:`available_splits`) of ``input_root`` into ``output_root`` (default:
    :func:`default_output_root` of ``size``).

    The output root's placement, every split, and every frame's labelIds are checked before anything is
    written. Returns ``{split: PrepareReport}``. ``progress(split, done, total)`` is called after each frame.
    """
    size = None if size is None else check_output_size(size)
    output_root = output_root or default_output_root(size)
    check_output_root(input_root, output_root)
    splits = (available_splits(input_root) or ["train"]) if splits is None else splits
    frames = {split: _frames_to_prepare(input_root, split) for split in dict.fromkeys(splits)}
    output = open_output_root(input_root, output_root, size)
    reports = {}
    for split, split_frames in frames.items():
        callback = None if progress is None else (lambda done, total, split=split: progress(split, done, total))
        reports[split] = _prepare_frames(split_frames, output, callback)
    return reports
