"""seglib.data: the three pipelines agree, TFRecords round-trip bit-exactly, bad data is named."""

import math
import shutil
from fractions import Fraction

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from seglib import augment, cityscapes, data, labels, masks

SIZE = (32, 64)
BATCH = 2


def _batches(dataset):
    return [(np.asarray(image), np.asarray(mask)) for image, mask in dataset]


def _assert_same(first, second):
    assert len(first) == len(second)
    for (image_a, mask_a), (image_b, mask_b) in zip(first, second):
        np.testing.assert_array_equal(image_a, image_b)
        np.testing.assert_array_equal(mask_a, mask_b)


def nearest_reference(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest neighbour with pixel centres, computed independently with exact fractions: output pixel i takes the
    input pixel under its centre, floor((i + 1/2) * in / out) (a centre exactly on a border takes the later pixel)."""
    def sources(out: int, size_in: int) -> np.ndarray:
        return np.array([math.floor((Fraction(i) + Fraction(1, 2)) * Fraction(size_in, out)) for i in range(out)])

    rows, cols = sources(size[0], mask.shape[0]), sources(size[1], mask.shape[1])
    return mask[rows[:, None], cols[None, :]]


def _expected(root, split):
    """Independent reference: Pillow decode and bilinear resize, the numpy lookup table, numpy nearest neighbour."""
    out = []
    for frame in cityscapes.list_frames(root, split):
        image = Image.open(frame.image_path).convert("RGB").resize(SIZE[::-1], Image.BILINEAR)
        categories = labels.ID_TO_CATEGORY_LUT[np.asarray(Image.open(frame.gt_path("labelIds")))]
        out.append((np.asarray(image) / np.float32(255), nearest_reference(categories, SIZE)))
    return out


def test_three_pipelines_give_identical_batches(small_dataset, tmp_path):
    from_files = _batches(data.tf_dataset(small_dataset, "train", image_size=SIZE, batch_size=BATCH))
    generator = data.SegmentationSequence(small_dataset, "train", image_size=SIZE, batch_size=BATCH)
    from_generator = [generator[i] for i in range(len(generator))]
    data.write_tfrecords(small_dataset, "train", tmp_path, shards=2)
    from_records = _batches(data.tfrecord_dataset(tmp_path, "train", image_size=SIZE, batch_size=BATCH))
    _assert_same(from_files, from_generator)
    _assert_same(from_files, from_records)
    assert [len(images) for images, _ in from_files] == [2, 2, 1]
    expected = _expected(small_dataset, "train")
    for k, (image, mask) in enumerate(expected):
        np.testing.assert_allclose(from_files[k // BATCH][0][k % BATCH], image, atol=1.01 / 255)  # Pillow vs TF: 1 level
        np.testing.assert_array_equal(from_files[k // BATCH][1][k % BATCH], mask)


def test_outputs_have_the_profile_shapes_and_valid_categories(small_dataset):
    images, mask = next(iter(data.tf_dataset(small_dataset, "val", "ci")))
    height, width = data.get_profile("ci").image_size
    assert images.shape == (2, height, width, 3) and images.dtype == tf.float32
    assert mask.shape == (2, height, width) and mask.dtype == tf.uint8
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0
    assert set(np.unique(mask)) <= set(range(labels.NUM_CATEGORIES))


def test_tfrecords_round_trip_bit_exact(small_dataset, tmp_path):
    paths = data.write_tfrecords(small_dataset, "train", tmp_path, shards=3)
    assert [p.name for p in paths] == [f"train-0000{k}-of-00003.tfrecord" for k in range(3)]
    frames = cityscapes.list_frames(small_dataset, "train")
    records = list(data.read_tfrecords(paths).as_numpy_iterator())
    assert [source.decode() for _, _, source, _ in records] == [str(f.image_path) for f in frames]
    assert [source.decode() for _, _, _, source in records] == [str(f.gt_path("labelIds")) for f in frames]
    for (image_png, label_png, _, _), frame in zip(records, frames):
        assert image_png == frame.image_path.read_bytes()
        assert label_png == frame.gt_path("labelIds").read_bytes()


def test_write_tfrecords_is_idempotent_and_never_overwrites_foreign_files(small_dataset, tmp_path):
    paths = data.write_tfrecords(small_dataset, "val", tmp_path / "a", shards=1)
    stamp = paths[0].stat().st_mtime_ns
    assert data.write_tfrecords(small_dataset, "val", tmp_path / "a", shards=1) == paths
    assert paths[0].stat().st_mtime_ns == stamp
    foreign = tmp_path / "b" / "val-00000-of-00001.tfrecord"
    foreign.parent.mkdir()
    foreign.write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="not written by seglib"):
        data.write_tfrecords(small_dataset, "val", tmp_path / "b", shards=1)
    assert foreign.read_bytes() == b"mine"
    with pytest.raises(ValueError, match="shards must lie in 1..2"):
        data.write_tfrecords(small_dataset, "val", tmp_path / "c", shards=5)


def test_tfrecords_are_rewritten_when_a_file_changes(dataset_copy, tmp_path):
    data.write_tfrecords(dataset_copy, "val", tmp_path, shards=1)
    frame = cityscapes.list_frames(dataset_copy, "val")[0]
    masks.write_label_ids(frame.gt_path("labelIds"), np.full((64, 128), 7, np.uint8))  # all road now
    data.write_tfrecords(dataset_copy, "val", tmp_path, shards=1)
    _, first_mask = next(iter(data.tfrecord_dataset(tmp_path, "val", image_size=SIZE, batch_size=1)))
    assert (first_mask.numpy() == 1).all()  # category flat: the records hold the new file, not the stale one


def test_augmentation_is_seeded_and_changes_every_epoch(small_dataset):
    transform = augment.make_augmentation()
    dataset = data.tf_dataset(small_dataset, "train", augmentation=transform, seed=5, image_size=SIZE,
                              batch_size=BATCH)
    epoch_1, epoch_2 = _batches(dataset), _batches(dataset)
    again = _batches(data.tf_dataset(small_dataset, "train", augmentation=transform, seed=5, image_size=SIZE,
                                     batch_size=BATCH))
    _assert_same(epoch_1, again)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(epoch_1, epoch_2))
    values = set(np.unique(np.concatenate([mask.ravel() for _, mask in epoch_1 + epoch_2])))
    assert values <= set(range(labels.NUM_CATEGORIES)) | {labels.IGNORE}


def test_augmentation_ignores_tensorflows_global_seed(small_dataset):
    make = lambda: _batches(data.tf_dataset(small_dataset, "train", augmentation=augment.make_augmentation(),  # noqa
                                            shuffle=True, seed=5, image_size=SIZE, batch_size=BATCH))
    before = make()
    tf.random.set_seed(123)
    after = make()
    _assert_same(before, after)


def test_generator_and_tf_data_augment_alike_epoch_by_epoch(small_dataset):
    transform = augment.make_augmentation()
    dataset = data.tf_dataset(small_dataset, "train", augmentation=transform, seed=2, image_size=SIZE,
                              batch_size=BATCH)
    sequence = data.SegmentationSequence(small_dataset, "train", augmentation=transform, seed=2, image_size=SIZE,
                                         batch_size=BATCH)
    for _ in range(2):
        from_generator = [sequence[i] for i in range(len(sequence))]
        _assert_same(_batches(dataset), from_generator)
        sequence.on_epoch_end()
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(from_generator, [sequence[i] for i in range(3)]))


def test_generator_augments_per_epoch_and_shuffles(small_dataset):
    sequence = data.SegmentationSequence(small_dataset, "train", augmentation=augment.make_augmentation(),
                                         image_size=SIZE, batch_size=BATCH)
    first = [sequence[i] for i in range(len(sequence))]
    sequence.on_epoch_end()
    second = [sequence[i] for i in range(len(sequence))]  # same order (no shuffle): only augmentation differs
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(first, second))
    shuffled = data.SegmentationSequence(small_dataset, "train", shuffle=True, seed=1, image_size=SIZE,
                                         batch_size=BATCH)
    order = shuffled.order.copy()
    shuffled.on_epoch_end()
    assert sorted(shuffled.order) == sorted(order) and not np.array_equal(shuffled.order, order)
    with pytest.raises(IndexError, match="out of range"):
        sequence[len(sequence)]


def test_every_pipeline_trains_a_unet_to_the_same_loss(small_dataset, tmp_path):
    import keras

    from seglib import models

    keras.utils.set_random_seed(0)
    model = models.unet((*SIZE, 3), base_filters=4, depth=2)
    weights = tmp_path / "start.weights.h5"
    model.save_weights(weights)
    data.write_tfrecords(small_dataset, "train", tmp_path / "records")
    pipelines = {
        "files": data.tf_dataset(small_dataset, "train", image_size=SIZE, batch_size=BATCH),
        "generator": data.SegmentationSequence(small_dataset, "train", image_size=SIZE, batch_size=BATCH),
        "tfrecords": data.tfrecord_dataset(tmp_path / "records", "train", image_size=SIZE, batch_size=BATCH),
    }
    losses = {}
    for name, pipeline in pipelines.items():
        model.load_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss=keras.losses.SparseCategoricalCrossentropy())
        losses[name] = model.fit(pipeline, epochs=1, shuffle=False, verbose=0).history["loss"][0]
    assert np.isfinite(losses["files"])
    assert losses["generator"] == pytest.approx(losses["files"], rel=1e-5)
    assert losses["tfrecords"] == pytest.approx(losses["files"], rel=1e-5)


def test_pipelines_know_their_length(small_dataset, tmp_path):
    assert int(data.tf_dataset(small_dataset, "train", image_size=SIZE, batch_size=BATCH).cardinality()) == 3
    data.write_tfrecords(small_dataset, "train", tmp_path)
    assert int(data.tfrecord_dataset(tmp_path, "train", image_size=SIZE, batch_size=BATCH).cardinality()) == 3


def test_shuffle_keeps_the_examples(small_dataset):
    plain = _batches(data.tf_dataset(small_dataset, "train", image_size=SIZE, batch_size=1))
    shuffled = _batches(data.tf_dataset(small_dataset, "train", shuffle=True, seed=3, image_size=SIZE,
                                        batch_size=1))
    key = lambda batch: batch[1].tobytes()  # noqa: E731
    assert sorted(map(key, plain)) == sorted(map(key, shuffled))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(8, 192), st.integers(8, 256), st.integers(0, 2**31))
def test_resized_mask_equals_numpy_nearest_neighbour(height, width, seed):
    mask = np.random.default_rng(seed).integers(0, labels.NUM_CATEGORIES, (96, 128), dtype=np.uint8)
    _, out_mask = data.resize_pair(np.zeros((96, 128, 3), np.uint8), mask, (height, width))
    np.testing.assert_array_equal(out_mask.numpy(), nearest_reference(mask, (height, width)))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(58, 192), st.integers(78, 256), st.integers(0, 2**31))  # 0.6x to 2x the 96x128 input
def test_resize_then_augment_keeps_masks_valid_and_aligned(height, width, seed):
    """The pipeline's order: resize, then augment. Image pixels encode the mask; inside uniform regions (3 pixels
    from any edge: bilinear resizing blends about 1.5 pixels, which scaling by up to 1.1 and nearest-neighbour
    rounding can stretch past 2) they still match after both steps, and the mask holds only its own values or
    IGNORE."""
    rng = np.random.default_rng(seed)
    mask = np.kron(rng.integers(0, labels.NUM_CATEGORIES, (8, 8), dtype=np.uint8), np.ones((12, 16), np.uint8))
    image = np.repeat((mask * 30 + 1)[..., None], 3, axis=2).astype(np.uint8)
    out_image, out_mask = (t.numpy() for t in data.resize_pair(image, mask, (height, width)))
    geometry = augment.AugmentationSettings(brightness_contrast_probability=0, noise_probability=0,
                                            rotate_probability=1, shift_scale_probability=1, image_interpolation=0)
    out_image, out_mask = augment.augment_pair(augment.make_augmentation(geometry), out_image, out_mask, seed)
    assert out_image.shape == (height, width, 3) and out_mask.shape == (height, width)
    assert set(np.unique(out_mask)) <= set(np.unique(mask)) | {labels.IGNORE}
    padded = np.pad(out_mask.astype(int), 3, constant_values=-1)
    uniform = out_mask != labels.IGNORE
    for dy in range(7):
        for dx in range(7):
            uniform &= padded[dy:dy + height, dx:dx + width] == out_mask
    assert uniform.any()
    np.testing.assert_allclose(out_image[..., 0][uniform], out_mask[uniform] * 30.0 + 1, atol=1)


# ---------------------------------------------------------------------------------------------------------
# Bad data is named, never skipped
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def dataset_copy(small_dataset, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(small_dataset, root)
    return root


def test_missing_and_empty_folders_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="leftImg8bit/train"):
        data.tf_dataset(tmp_path, "train")
    (tmp_path / "leftImg8bit" / "train" / "x").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no \\*_leftImg8bit.png files"):
        data.SegmentationSequence(tmp_path, "train")


def test_missing_label_file_is_named(dataset_copy):
    frame = cityscapes.list_frames(dataset_copy, "val")[1]
    frame.gt_path("labelIds").unlink()
    for make in (data.tf_dataset, data.SegmentationSequence):
        with pytest.raises(FileNotFoundError, match=frame.gt_path("labelIds").name):
            make(dataset_copy, "val")


def test_label_size_mismatch_is_named(dataset_copy):
    frame = cityscapes.list_frames(dataset_copy, "val")[0]
    masks.write_label_ids(frame.gt_path("labelIds"), np.zeros((10, 20), np.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"size differs.*{frame.stem}"):
        _batches(data.tf_dataset(dataset_copy, "val", image_size=SIZE))
    with pytest.raises(ValueError, match=f"{frame.stem}_gtFine_labelIds.png is 10x20 but its image .* is 64x128"):
        data.SegmentationSequence(dataset_copy, "val", image_size=SIZE)[0]


@pytest.mark.parametrize("mode", ["I;16", "RGB"])
def test_label_file_in_another_format_is_named(dataset_copy, mode):
    frame = cityscapes.list_frames(dataset_copy, "val")[0]
    Image.fromarray(np.zeros((64, 128), np.uint8)).convert(mode).save(frame.gt_path("labelIds"))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"labelIds is not an 8-bit greyscale PNG.*{frame.stem}"):
        _batches(data.tf_dataset(dataset_copy, "val", image_size=SIZE))
    with pytest.raises(ValueError, match=f"{frame.stem}.*mode"):
        data.SegmentationSequence(dataset_copy, "val", image_size=SIZE)[0]


def test_truncated_label_file_names_the_label_file(dataset_copy):
    frame = cityscapes.list_frames(dataset_copy, "val")[1]
    content = frame.gt_path("labelIds").read_bytes()
    frame.gt_path("labelIds").write_bytes(content[: len(content) // 2])
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"not a complete PNG.*{frame.stem}_gtFine_labelIds"):
        _batches(data.tf_dataset(dataset_copy, "val", image_size=SIZE))


@pytest.mark.parametrize("damage", ["truncate", "not_png"])
def test_unreadable_image_is_named(dataset_copy, damage):
    frame = cityscapes.list_frames(dataset_copy, "val")[1]
    content = frame.image_path.read_bytes()
    frame.image_path.write_bytes(content[: len(content) // 2] if damage == "truncate" else b"GIF89a" + content[6:])
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"not a complete PNG.*{frame.stem}_leftImg8bit"):
        _batches(data.tf_dataset(dataset_copy, "val", image_size=SIZE))
    with pytest.raises(ValueError, match=frame.stem):
        data.SegmentationSequence(dataset_copy, "val", image_size=SIZE, batch_size=2)[0]


def test_label_id_outside_the_table_is_named(dataset_copy):
    frame = cityscapes.list_frames(dataset_copy, "val")[0]
    Image.fromarray(np.full((64, 128), 40, np.uint8)).save(frame.gt_path("labelIds"))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"outside 0..33.*{frame.stem}"):
        _batches(data.tf_dataset(dataset_copy, "val", image_size=SIZE))
    with pytest.raises(ValueError, match="label id 40"):
        data.SegmentationSequence(dataset_copy, "val", image_size=SIZE)[0]


def test_bad_sizes_are_refused(small_dataset):
    with pytest.raises(ValueError, match="image_size must be"):
        data.tf_dataset(small_dataset, "val", image_size=(0, 10))
