"""Three ways to feed a segmentation model from a Cityscapes-layout folder.

* :func:`tf_dataset` - a ``tf.data`` pipeline from file paths: read -> decode -> category remap -> resize
  (masks by nearest neighbour) -> cache -> shuffle -> augment -> batch -> prefetch;
* :class:`SegmentationSequence` - a Keras ``PyDataset`` that loads and augments each batch in Python, for data that
  does not fit in memory or preprocessing TensorFlow cannot express;
* TFRecords - :func:`write_tfrecords` packs the PNG bytes of image and labelIds into sharded record files,
  :func:`tfrecord_dataset` reads them back into the same pipeline.

All three yield the same ``(image, mask)`` pairs for the same files and settings: ``image (B, h, w, 3) float32``
in [0, 1] and ``mask (B, h, w) uint8`` category ids 0..7 (IGNORE where augmentation exposed no pixel). On the
TensorFlow backend they share one resize (:func:`resize_pair`), so without augmentation their arrays are identical
(tested); elsewhere the ``PyDataset``'s numpy resize gives identical masks and images equal but for a rounding tie
on a few values in a million (tested). Every resize and the ``/255`` are the model's contract,
:mod:`seglib.modelio`; :func:`evaluation_batches` feeds evaluation at the frames' full size.

``tf.data`` and TFRecords are TensorFlow's: they need the tensorflow backend, and say so on another. The
``PyDataset`` needs no TensorFlow on the other backends (PIL decodes, :func:`resize_pair_numpy` resizes), so it feeds
training on the jax and torch backends (:func:`seglib.train.train_or_load` picks it there).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from seglib import augment, backends, cityscapes, labels, masks, modelio, safeio
from seglib.profiles import Profile, get_profile

__all__ = [
    "frames_with_labels", "read_frame", "decode_pair", "resize_pair", "load_pair", "binary_target", "tf_dataset",
    "resize_pair_numpy", "binary_target_numpy", "evaluation_batches",
    "SegmentationSequence", "write_tfrecords", "tfrecord_paths", "read_tfrecords", "tfrecord_dataset",
]

_PNG_START = b"\x89PNG\r\n\x1a\n"   # every PNG file begins with these 8 bytes...
_PNG_END = b"IEND\xaeB`\x82"        # ...and a complete one ends with its IEND chunk: a truncated file does not
_IHDR_BIT_DEPTH = 24                # offset of the bit depth byte, followed by the colour type byte
_EIGHT_BIT, _EIGHT_BIT_GREY = b"\x08", b"\x08\x00"
_PNG_FORMATS = {_EIGHT_BIT: "8-bit", _EIGHT_BIT_GREY: "8-bit greyscale"}
#: Decoded examples are cached in memory when they take less than this.
CACHE_BUDGET_BYTES = 2 * 2**30
#: Decoded examples a TFRecord pipeline shuffles among when it does not cache.
TFRECORD_SHUFFLE_BUFFER = 64
#: TensorFlow, imported on first use: importing seglib.data needs none (see seglib.backends).
tf = backends.LazyTensorFlow()


def frames_with_labels(root: str | os.PathLike, split: str) -> list[cityscapes.Frame]:
    """The frames of ``split`` that a pipeline reads; raises ``FileNotFoundError`` naming an image without its
    ``*_gtFine_labelIds.png`` (no frame is skipped silently)."""
    frames = cityscapes.list_frames(root, split)
    missing = [frame for frame in frames if not frame.gt_path("labelIds").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} image(s) of {split} have no labelIds file, e.g. {missing[0].gt_path('labelIds')} "
            f"for {missing[0].image_path}; restore it or remove the image")
    return frames

def read_frame(frame: cityscapes.Frame) -> tuple[np.ndarray, np.ndarray]:
    """A frame's ``image (H, W, 3) uint8`` and full-size ``label_ids (H, W) uint8``, checked to be the same size."""
    image = cityscapes.read_image(frame.image_path)
    label_ids = masks.read_label_ids(frame.gt_path("labelIds"))
    if label_ids.shape != image.shape[:2]:
        raise ValueError(f"{frame.gt_path('labelIds')} is {label_ids.shape[0]}x{label_ids.shape[1]} but its "
                         f"image {frame.image_path} is {image.shape[0]}x{image.shape[1]}")
    return image, label_ids


def evaluation_batches(root: str | os.PathLike, split: str, image_size: Sequence[int], batch_size: int):
    """What evaluation iterates, reading each file once: ``(frames, model_input, label_ids)`` per batch of
    ``batch_size`` frames of ``split`` in order, with ``model_input (B, h, w, 3) float32`` at ``image_size`` (the
    training pipelines' resize on this backend) and ``label_ids`` the list of full-size ``(H, W) uint8`` truths."""
    frames = frames_with_labels(root, split)
    size = masks.check_size(image_size)
    for start in range(0, len(frames), batch_size):
        chunk = frames[start:start + batch_size]
        images, truths = [], []
        for frame in chunk:
            image, label_ids = read_frame(frame)
            images.append(_resize_image_here(image, size))
            truths.append(label_ids)
        yield chunk, modelio.to_model_input(np.stack(images)), truths

# ---------------------------------------------------------------------------------------------------------
# One example: decode, remap, resize (TensorFlow ops, shared by every pipeline)
# ---------------------------------------------------------------------------------------------------------


def _check_png(data: tf.Tensor, source: tf.Tensor, kind: str, header: bytes) -> tf.Operation:
    """Assert that ``data`` is a complete PNG whose IHDR bit depth (and colour type) bytes equal ``header``."""
    start = tf.strings.substr(data, 0, len(_PNG_START))
    end = tf.strings.substr(data, tf.maximum(tf.strings.length(data) - len(_PNG_END), 0), len(_PNG_END))
    complete = tf.logical_and(tf.equal(start, _PNG_START), tf.equal(end, _PNG_END))
    with tf.control_dependencies([tf.debugging.Assert(complete, [
            f"{kind} is not a complete PNG file (missing, truncated or another format):", source])]):
        format_ok = tf.equal(tf.strings.substr(data, _IHDR_BIT_DEPTH, len(header)), header)
        return tf.debugging.Assert(format_ok, [f"{kind} is not an {_PNG_FORMATS[header]} PNG:", source])


def decode_pair(image_png: tf.Tensor, label_png: tf.Tensor, image_source: tf.Tensor,
                label_source: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """PNG bytes of an image and its labelIds -> ``image (H, W, 3) uint8``, ``label_ids (H, W) uint8``.

    Fails with an ``InvalidArgumentError`` naming the file for a truncated or non-PNG file, an image that is not
    8-bit, a labelIds that is not 8-bit grey, a labelIds whose size differs from its image, or a label id outside
    0..33.
    """
    with tf.control_dependencies([_check_png(image_png, image_source, "image", _EIGHT_BIT),
                                  _check_png(label_png, label_source, "labelIds", _EIGHT_BIT_GREY)]):
        image = tf.io.decode_png(image_png, channels=3)
        label_ids = tf.io.decode_png(label_png, channels=1)[..., 0]
    same_size = tf.reduce_all(tf.equal(tf.shape(image)[:2], tf.shape(label_ids)))
    in_table = tf.reduce_max(label_ids) < labels.NUM_LABEL_IDS
    with tf.control_dependencies([
        tf.debugging.Assert(same_size, ["labelIds size differs from its image:", label_source, tf.shape(label_ids),
                                        image_source, tf.shape(image)[:2]]),
        tf.debugging.Assert(in_table, ["labelIds holds a label id outside 0..33:", label_source,
                                       tf.reduce_max(label_ids)])]):
        return tf.identity(image), tf.identity(label_ids)


def resize_pair(image: tf.Tensor, categories: tf.Tensor, size: Sequence[int]) -> tuple[tf.Tensor, tf.Tensor]:
    """Resize ``image (H, W, 3) uint8`` (:func:`seglib.modelio.resize_image_tf`) and ``categories (H, W) uint8``
    (:func:`seglib.modelio.resize_mask_tf`, nearest neighbour only: it never invents a value) to ``size = (h, w)``."""
    return modelio.resize_image_tf(image, size), modelio.resize_mask_tf(categories, size)


def load_pair(image_png: tf.Tensor, label_png: tf.Tensor, image_source: tf.Tensor, label_source: tf.Tensor,
              size: Sequence[int]) -> tuple[tf.Tensor, tf.Tensor]:
    """PNG bytes -> ``image (h, w, 3) uint8`` and ``mask (h, w) uint8`` category ids at ``size``."""
    image, label_ids = decode_pair(image_png, label_png, image_source, label_source)
    categories = tf.gather(tf.constant(labels.ID_TO_CATEGORY_LUT), tf.cast(label_ids, tf.int32))
    return resize_pair(image, categories, size)


def binary_target(image: tf.Tensor, mask: tf.Tensor, category: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Map a pipeline's ``(image, categories)`` to ``(image, target)`` for binary segmentation of ``category``:
    1 where the mask is that category, 0 elsewhere, IGNORE kept. Use as ``dataset.map(...)`` (chapter 12)."""
    if not 0 <= category < labels.NUM_CATEGORIES:
        raise ValueError(f"category must be 0..{labels.NUM_CATEGORIES - 1}, got {category}")
    target = tf.where(mask == labels.IGNORE, tf.constant(labels.IGNORE, tf.uint8),
                      tf.cast(mask == category, tf.uint8))
    return image, target


def resize_pair_numpy(image: np.ndarray, categories: np.ndarray, size: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`resize_pair` in numpy, for the ``PyDataset`` on any backend: the mask by the same nearest neighbour
    (identical), the image by the same antialiased bilinear filter (the same float32 values but for summation
    order: after rounding, a few values in a million differ by 1, 4 of 983,040 on 40 generated frames)."""
    if image.ndim != 3 or image.shape[:2] != categories.shape:
        raise ValueError(f"image must be (H, W, C) and categories (H, W) of the same size, got {image.shape} and "
                         f"{categories.shape}")
    return modelio.resize_image(image, size), masks.resize_nearest(categories, size).astype(np.uint8)


_resize_eagerly = None


def _resize_image_here(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """The image resize of the ``PyDataset`` and of evaluation: on the tensorflow backend TensorFlow's own
    (:func:`seglib.modelio.resize_image_tf`, so that the generator and ``tf.data`` give identical arrays), on the
    others :func:`seglib.modelio.resize_image`."""
    global _resize_eagerly
    if backends.backend() != "tensorflow":
        return modelio.resize_image(image, size)
    if _resize_eagerly is None:
        _resize_eagerly = tf.function(modelio.resize_image_tf, reduce_retracing=True)
    return _resize_eagerly(image, size).numpy()


def _resize_pair_here(image: np.ndarray, categories: np.ndarray, size: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_resize_image_here` and the one nearest-neighbour mask resize (the same on every backend)."""
    return _resize_image_here(image, size), masks.resize_nearest(categories, size)


def binary_target_numpy(mask: np.ndarray, category: int) -> np.ndarray:
    """:func:`binary_target`'s target in numpy: 1 where ``mask`` is ``category``, 0 elsewhere, IGNORE kept."""
    if not 0 <= category < labels.NUM_CATEGORIES:
        raise ValueError(f"category must be 0..{labels.NUM_CATEGORIES - 1}, got {category}")
    return np.where(mask == labels.IGNORE, labels.IGNORE, mask == category).astype(np.uint8)

# ---------------------------------------------------------------------------------------------------------
# tf.data
# ---------------------------------------------------------------------------------------------------------


def _sizes(profile: Profile | str | None, image_size: Sequence[int] | None,
           batch_size: int | None) -> tuple[tuple[int, int], int]:
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    size = tuple(int(v) for v in (image_size or profile.image_size))
    batch = int(batch_size or profile.batch_size)
    if len(size) != 2 or min(size) < 1 or batch < 1:
        raise ValueError(f"image_size must be (height, width) >= 1 and batch_size >= 1, got {size} and {batch}")
    return size, batch  # type: ignore[return-value]


def _augment_in_graph(transform: augment.Augmentation, image: tf.Tensor, mask: tf.Tensor, seed: int,
                      epoch: tf.Tensor, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Augment one example with the seed :func:`seglib.augment.seed_for` gives ``(seed, epoch, index)``: Keras's layers
    as TensorFlow ops in the graph, albumentations in Python through ``tf.numpy_function``."""
    if isinstance(transform, augment.KerasAugmentation):
        def example_seed(epoch: np.int64, index: np.int64) -> np.int64:
            return np.int64(augment.seed_for(seed, int(epoch), int(index)))

        seed_tensor = tf.reshape(tf.numpy_function(example_seed, [epoch, index], tf.int64, stateful=False), [])
        augmented_image, augmented_mask = transform.apply(image, mask, seed_tensor)
    else:
        def apply(image: np.ndarray, mask: np.ndarray, epoch: np.int64,
                  index: np.int64) -> tuple[np.ndarray, np.ndarray]:
            return augment.augment_pair(transform, image, mask, augment.seed_for(seed, int(epoch), int(index)))

        augmented_image, augmented_mask = tf.numpy_function(apply, [image, mask, epoch, index], [tf.uint8, tf.uint8],
                                                            stateful=False)
    augmented_image.set_shape(image.shape)
    augmented_mask.set_shape(mask.shape)
    return augmented_image, augmented_mask


def _epochs(one_epoch) -> tf.data.Dataset:
    """``one_epoch(epoch)`` for epoch 0, 1, 2, ...: the counter advances each time the dataset is iterated (each
    ``fit`` epoch), so shuffling and augmentation can be stateless functions of (seed, epoch, index)."""
    with tf.device("/cpu:0"):
        counter = tf.Variable(-1, dtype=tf.int64, trainable=False, name="epoch")
    return tf.data.Dataset.from_tensors(0).map(lambda _: counter.assign_add(1)).flat_map(one_epoch)


def _finish(read, count: int, size: tuple[int, int], batch_size: int, augmentation: augment.Augmentation | None,
            shuffle: bool, seed: int, cache: bool | None, drop_remainder: bool,
            shuffle_buffer: int | None = None) -> tf.data.Dataset:
    """The steps every pipeline shares, from examples to model batches.

    ``read(indices)`` turns a dataset of frame indices into ``(index, image_png, label_png, image_source,
    label_source)``; a reader that cannot seek (TFRecords) ignores the order and reports its own indices, and
    then ``shuffle_buffer`` bounds a buffer shuffle after decoding.
    """
    def load(index, image_png, label_png, image_source, label_source):
        return (index, *load_pair(image_png, label_png, image_source, label_source, size))

    def order(epoch: tf.Tensor) -> tf.Tensor:
        indices = tf.range(count, dtype=tf.int64)
        return tf.random.experimental.stateless_shuffle(indices, seed=tf.stack([tf.constant(seed, tf.int64), epoch]))

    if cache is None:  # decoding and resizing once pays whenever the decoded examples fit in memory
        cache = count * size[0] * size[1] * 4 <= CACHE_BUDGET_BYTES
    if cache:
        decoded = read(tf.data.Dataset.range(count)).map(load, num_parallel_calls=tf.data.AUTOTUNE).cache()

        def one_epoch(epoch):
            examples = decoded
            if shuffle:  # the cache holds file order: gather it into this epoch's order
                examples = decoded.batch(count).flat_map(lambda *columns: tf.data.Dataset.from_tensor_slices(
                    tuple(tf.gather(column, order(epoch)) for column in columns)))
            return examples.map(lambda index, image, mask: (index, epoch, image, mask))
    else:
        def one_epoch(epoch):
            indices = tf.data.Dataset.from_tensor_slices(order(epoch) if shuffle else tf.range(count, dtype=tf.int64))
            examples = read(indices).map(load, num_parallel_calls=tf.data.AUTOTUNE)
            if shuffle and shuffle_buffer:
                examples = examples.shuffle(shuffle_buffer, seed=seed)
            return examples.map(lambda index, image, mask: (index, epoch, image, mask))

    dataset = _epochs(one_epoch).apply(tf.data.experimental.assert_cardinality(count))
    if augmentation is not None:
        dataset = dataset.map(lambda index, epoch, image, mask: _augment_in_graph(augmentation, image, mask, seed,
                                                                                  epoch, index),
                              num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = dataset.map(lambda index, epoch, image, mask: (image, mask))
    dataset = dataset.map(lambda image, mask: (modelio.to_model_input_tf(image), mask),
                          num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def tf_dataset(root: str | os.PathLike, split: str, profile: Profile | str | None = None, *,
               augmentation: augment.Augmentation | None = None, shuffle: bool = False, seed: int = 0,
               cache: bool | None = None, drop_remainder: bool = False, image_size: Sequence[int] | None = None,
               batch_size: int | None = None) -> tf.data.Dataset:
    """A ``tf.data`` pipeline over the frames of ``split`` under ``root`` (a Cityscapes layout).

    Sizes come from ``profile`` (``image_size``, ``batch_size``) unless given. ``augmentation`` (from
    :func:`seglib.augment.make_augmentation`) is applied after resizing; with ``shuffle`` the order changes every
    epoch. Both are stateless functions of ``(seed, epoch, frame index)``, so a run repeats exactly, whatever
    TensorFlow's global seed, and augments exactly as :class:`SegmentationSequence` does in the same epoch.
    ``cache=None`` caches decoded examples when they fit in :data:`CACHE_BUDGET_BYTES`; without the cache the frame
    indices are shuffled before decoding, so memory stays at a few batches however large the split.
    Yields ``(image (B, h, w, 3) float32, mask (B, h, w) uint8)``; the epoch counter advances each time the
    dataset is iterated (once per ``fit`` epoch).
    """
    backends.require_tensorflow("seglib.data.tf_dataset", "seglib.data.SegmentationSequence")
    size, batch = _sizes(profile, image_size, batch_size)
    frames = frames_with_labels(root, split)
    image_paths = tf.constant([str(frame.image_path) for frame in frames])
    label_paths = tf.constant([str(frame.gt_path("labelIds")) for frame in frames])

    def read(indices: tf.data.Dataset) -> tf.data.Dataset:
        def read_one(index):
            image_path, label_path = image_paths[index], label_paths[index]
            return index, tf.io.read_file(image_path), tf.io.read_file(label_path), image_path, label_path
        return indices.map(read_one, num_parallel_calls=tf.data.AUTOTUNE)

    return _finish(read, len(frames), size, batch, augmentation, shuffle, seed, cache, drop_remainder)

# ---------------------------------------------------------------------------------------------------------
# A Keras generator (PyDataset)
# ---------------------------------------------------------------------------------------------------------


class SegmentationSequence(keras.utils.PyDataset):
    """Batches loaded and augmented in Python, one ``__getitem__`` at a time (Keras runs them in ``workers``
    threads). Same outputs as :func:`tf_dataset` for the same frames and settings; reads each file when asked,
    so the data never needs to fit in memory. On a backend other than TensorFlow it needs no TensorFlow: PIL
    decodes and :func:`resize_pair_numpy` resizes.

    With ``category``, the masks become binary targets of that category (:func:`binary_target_numpy`, chapter 12).
    """

    def __init__(self, root: str | os.PathLike, split: str, profile: Profile | str | None = None, *,
                 augmentation: augment.Augmentation | None = None, shuffle: bool = False, seed: int = 0,
                 image_size: Sequence[int] | None = None, batch_size: int | None = None,
                 category: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.size, self.batch_size = _sizes(profile, image_size, batch_size)
        self.frames = frames_with_labels(root, split)
        self.augmentation, self.shuffle, self.seed = augmentation, shuffle, seed
        if category is not None:
            binary_target_numpy(np.zeros(1, np.uint8), category)  # checks the category now
        self.category = category
        self.epoch = 0
        self.order = self._order()

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.frames))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.frames))

    def __len__(self) -> int:
        return math.ceil(len(self.frames) / self.batch_size)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``index`` -> ``image (h, w, 3) uint8``, ``mask (h, w) uint8`` categories, before augmentation."""
        image, label_ids = read_frame(self.frames[index])
        return _resize_pair_here(image, masks.label_ids_to_categories(label_ids), self.size)

    def __getitem__(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= batch < len(self):
            raise IndexError(f"batch {batch} out of range 0..{len(self) - 1}")
        images, batch_masks = [], []
        for index in self.order[batch * self.batch_size:(batch + 1) * self.batch_size]:
            image, mask = self.load(int(index))
            if self.augmentation is not None:
                image, mask = augment.augment_pair(self.augmentation, image, mask,
                                                   augment.seed_for(self.seed, self.epoch, int(index)))
            images.append(image)
            batch_masks.append(mask if self.category is None else binary_target_numpy(mask, self.category))
        return modelio.to_model_input(np.stack(images)), np.stack(batch_masks)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()

# ---------------------------------------------------------------------------------------------------------
# TFRecords
# ---------------------------------------------------------------------------------------------------------


_RECORD_KEYS = ("image_png", "label_png", "image_source", "label_source")
_MANIFEST = "{split}.manifest.json"


def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _example(frame: cityscapes.Frame) -> bytes:
    features = {"image_png": frame.image_path.read_bytes(), "label_png": frame.gt_path("labelIds").read_bytes(),
                "image_source": str(frame.image_path).encode(), "label_source": str(frame.gt_path("labelIds")).encode()}
    return tf.train.Example(features=tf.train.Features(
        feature={key: _bytes_feature(value) for key, value in features.items()})).SerializeToString()


def _fingerprint(frame: cityscapes.Frame) -> list:
    """What the records of a frame were made from: both paths with their sizes and modification times."""
    return [[str(path), path.stat().st_size, path.stat().st_mtime_ns]
            for path in (frame.image_path, frame.gt_path("labelIds"))]


def tfrecord_paths(out_dir: str | os.PathLike, split: str) -> list[Path]:
    """The shard files of ``split`` that :func:`write_tfrecords` wrote (from its manifest)."""
    manifest = Path(out_dir) / _MANIFEST.format(split=split)
    if not manifest.is_file():
        raise FileNotFoundError(f"no {manifest}: write the records first with seglib.data.write_tfrecords")
    return [Path(out_dir) / name for name in json.loads(manifest.read_text())["shards"]]


def write_tfrecords(root: str | os.PathLike, split: str, out_dir: str | os.PathLike,
                    shards: int | None = None) -> list[Path]:
    """Pack the image and labelIds PNG bytes of every frame of ``split`` into ``shards`` record files
    ``<split>-00000-of-0000N.tfrecord`` under ``out_dir`` (default: about 64 frames a shard).

    Idempotent: a manifest lists what was written from which files (path, size, modification time), and a
    complete set for unchanged frames is not written again; a changed file makes it rewrite the shards. Never
    overwrites a file it did not write (raises ``FileExistsError``); each shard is written under a temporary name and
    renamed when complete.
    """
    backends.require_tensorflow("seglib.data.write_tfrecords", "the PNG files themselves "
                                "(seglib.data.SegmentationSequence reads them)")
    frames = frames_with_labels(root, split)
    shards = shards or max(1, math.ceil(len(frames) / 64))
    if not 1 <= shards <= len(frames):
        raise ValueError(f"shards must lie in 1..{len(frames)} (the number of frames), got {shards}")
    out_dir = Path(out_dir)
    names = [f"{split}-{k:05d}-of-{shards:05d}.tfrecord" for k in range(shards)]
    wanted = {"sources": [_fingerprint(frame) for frame in frames], "shards": names}
    manifest = out_dir / _MANIFEST.format(split=split)
    if manifest.is_file() and json.loads(manifest.read_text()) == wanted and all((out_dir / n).is_file() for n in names):
        return [out_dir / name for name in names]
    owned = set(json.loads(manifest.read_text())["shards"]) if manifest.is_file() else set()
    foreign = [out_dir / name for name in names if (out_dir / name).exists() and name not in owned]
    if foreign:
        raise FileExistsError(f"{foreign[0]} exists and was not written by seglib; choose another out_dir")
    out_dir.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, len(frames), shards + 1).round().astype(int)  # contiguous runs: order is kept
    for k, name in enumerate(names):
        shard = frames[bounds[k]:bounds[k + 1]]
        safeio.atomic_write(out_dir / name, lambda temporary, shard=shard: _write_shard(temporary, shard))
    safeio.atomic_write_json(manifest, wanted, indent=1)
    return [out_dir / name for name in names]


def _write_shard(path: Path, frames: Sequence[cityscapes.Frame]) -> None:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for frame in frames:
            writer.write(_example(frame))


def read_tfrecords(paths: Sequence[str | os.PathLike]) -> tf.data.Dataset:
    """Records -> ``(image_png, label_png, image_source, label_source)`` string tensors, exactly the bytes that
    were written, in the order written (shards one after another)."""
    missing = [str(path) for path in paths if not Path(path).is_file()]
    if not paths or missing:
        raise FileNotFoundError(f"TFRecord file(s) not found: {missing or 'no paths given'}")
    backends.require_tensorflow("seglib.data.read_tfrecords", "seglib.data.SegmentationSequence")
    features = {name: tf.io.FixedLenFeature([], tf.string) for name in _RECORD_KEYS}
    records = tf.data.TFRecordDataset([str(path) for path in paths])
    parsed = records.map(lambda record: tf.io.parse_single_example(record, features),
                         num_parallel_calls=tf.data.AUTOTUNE)
    return parsed.map(lambda example: tuple(example[name] for name in _RECORD_KEYS))


def tfrecord_dataset(out_dir: str | os.PathLike, split: str, profile: Profile | str | None = None, *,
                     augmentation: augment.Augmentation | None = None, shuffle: bool = False, seed: int = 0,
                     cache: bool | None = None, drop_remainder: bool = False,
                     image_size: Sequence[int] | None = None, batch_size: int | None = None) -> tf.data.Dataset:
    """The :func:`tf_dataset` pipeline, reading its PNG bytes from the TFRecord shards :func:`write_tfrecords`
    wrote for ``split`` under ``out_dir`` instead of from the PNG files.

    Records are read in order; with ``shuffle`` and the cache (small data) the epoch order is the same stateless
    permutation as :func:`tf_dataset`'s, without it a buffer of :data:`TFRECORD_SHUFFLE_BUFFER` decoded examples
    is shuffled (seeded by ``seed`` and, as every ``tf.data`` shuffle, TensorFlow's global seed).
    """
    backends.require_tensorflow("seglib.data.tfrecord_dataset", "seglib.data.SegmentationSequence")
    size, batch = _sizes(profile, image_size, batch_size)
    paths = tfrecord_paths(out_dir, split)
    count = len(json.loads((Path(out_dir) / _MANIFEST.format(split=split)).read_text())["sources"])

    def read(indices: tf.data.Dataset) -> tf.data.Dataset:  # records cannot seek: file order, own indices
        return read_tfrecords(paths).enumerate().map(lambda index, example: (index, *example))

    return _finish(read, count, size, batch, augmentation, shuffle, seed, cache, drop_remainder,
                   shuffle_buffer=min(count, TFRECORD_SHUFFLE_BUFFER))
