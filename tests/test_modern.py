"""Chapter 10b's architectures: each gives a distribution per pixel at the input size, saves and loads, builds
offline with a warning that says why, and the Cityscapes training ids read as the official categories."""

import subprocess
import sys

import keras
import keras_hub
import numpy as np
import pytest
from cityscapesscripts.helpers import labels as official

from seglib import experiments, labels, models, modern, profiles

SHAPE = (64, 128, 3)
BUILDERS = {
    "deeplab": lambda: modern.deeplab_v3_plus(SHAPE, width=0.25),
    "segformer": lambda: modern.segformer(SHAPE, width=0.25),
    "fpn": lambda: modern.fpn_efficientnet(SHAPE, weights=None, width=0.25),
}


@pytest.fixture(scope="module")
def built():
    return {name: build() for name, build in BUILDERS.items()}


@pytest.mark.parametrize("name", BUILDERS)
def test_every_model_gives_a_distribution_per_pixel_at_the_input_size(built, name):
    images = np.random.default_rng(0).random((2, *SHAPE), dtype=np.float32)
    probabilities = np.asarray(built[name].predict_on_batch(images))
    assert probabilities.shape == (2, *SHAPE[:2], labels.NUM_CATEGORIES)
    np.testing.assert_allclose(probabilities.sum(-1), 1, atol=1e-5)
    assert np.all(probabilities >= 0)


@pytest.mark.parametrize("name", BUILDERS)
def test_every_model_saves_and_loads_to_the_same_predictions(built, name, tmp_path):
    images = np.random.default_rng(1).random((1, *SHAPE), dtype=np.float32)
    path = tmp_path / f"{name}.keras"
    built[name].save(path)
    again = keras.models.load_model(path)
    np.testing.assert_allclose(again.predict_on_batch(images), built[name].predict_on_batch(images), atol=1e-6)


def test_a_saved_segformer_loads_where_the_web_app_and_the_exports_load_models(built, tmp_path):
    # a fresh process that imports only seglib.predict (the web app's and the endpoint's path) finds the tile layers
    path, images = tmp_path / "segformer.keras", np.random.default_rng(5).random((1, *SHAPE), dtype=np.float32)
    built["segformer"].save(path)
    np.save(tmp_path / "images.npy", images)
    code = ("import sys, numpy as np\nfrom seglib import predict\n"
            "model = predict.Predictor(sys.argv[1]).model\n"
            "np.save(sys.argv[2], model.predict_on_batch(np.load(sys.argv[3])))")
    done = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "out.npy"), str(tmp_path / "images.npy")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), built["segformer"].predict_on_batch(images), atol=1e-6)


@pytest.mark.parametrize("width", [0.3, 0.6])
def test_segformer_widths_round_hidden_sizes_to_whole_heads(width):
    model = modern.segformer(SHAPE, width=width)
    assert model.output.shape == (None, *SHAPE[:2], 8)


def test_a_preset_encoder_sees_its_own_normalisation(monkeypatch):
    # where a preset loads, the images in [0, 1] are scaled as its converter says: x * 255 * scale + offset
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    converter = keras_hub.layers.MiTImageConverter(scale=(1 / (255 * std)).tolist(), offset=(-mean / std).tolist())
    monkeypatch.setattr(keras_hub.models.MiTBackbone, "from_preset", lambda *a, **k: modern._mit_b0((64, 64, 3), 1))
    monkeypatch.setattr(keras_hub.layers.MiTImageConverter, "from_preset", lambda *a, **k: converter)
    model = modern.segformer(SHAPE, preset="mit_b0_ade20k_512")
    images = np.random.default_rng(6).random((1, *SHAPE), dtype=np.float32)
    normalised = keras.Model(model.input, model.get_layer("preset_normalisation").output).predict_on_batch(images)
    np.testing.assert_allclose(normalised, (images - mean) / std, rtol=1e-5, atol=1e-5)


def test_square_tiles_are_the_frame_cut_left_to_right_and_join_back():
    frames = np.arange(2 * 4 * 12 * 3, dtype=np.float32).reshape(2, 4, 12, 3)
    tiles = keras.ops.convert_to_numpy(models.SquareTiles()(frames))
    assert tiles.shape == (6, 4, 4, 3)
    for frame in range(2):
        for tile in range(3):  # tile t of frame f is columns 4t..4t+3, at batch index 3f + t
            np.testing.assert_array_equal(tiles[3 * frame + tile], frames[frame, :, 4 * tile:4 * tile + 4])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(models.JoinTiles(3)(tiles)), frames)


def test_segformer_sees_each_square_tile_alone(built):
    # the right half of a frame does not change the left half's prediction: the tiles are predicted apart
    rng = np.random.default_rng(2)
    first, second = rng.random((1, *SHAPE), dtype=np.float32), rng.random((1, *SHAPE), dtype=np.float32)
    second[:, :, :64] = first[:, :, :64]
    a, b = (np.asarray(built["segformer"].predict_on_batch(x)) for x in (first, second))
    np.testing.assert_allclose(a[:, :, :64], b[:, :, :64], atol=1e-6)
    assert not np.allclose(a[:, :, 64:], b[:, :, 64:], atol=1e-6)


def test_aspp_rates_are_the_papers_on_its_feature_map_and_scale_with_it():
    assert modern.aspp_rates(33 * 16) == [6, 12, 18]  # 513-pixel crops at stride 16: the paper's 33 features
    assert modern.aspp_rates(66 * 16) == [12, 24, 36]  # twice the features, twice the rates
    assert modern.aspp_rates(256) == [3, 6, 9]         # 16 features: 6·16/33 = 2.9 -> 3, 5.8 -> 6, 8.7 -> 9
    assert modern.aspp_rates(64) == [1, 2, 3]          # 4 features: 0.7 -> 1, 1.5 -> 1 -> 2 (increasing), 2.2 -> 3


def test_deeplab_uses_the_scaled_rates():
    model = modern.deeplab_v3_plus((64, 128, 3), width=0.25)
    rates = sorted({layer.dilation_rate[0] for layer in model._flatten_layers()
                    if isinstance(layer, keras.layers.Conv2D) and layer.dilation_rate[0] > 1})
    assert rates == [2, 3]  # and 1, the ordinary convolution beside them


def test_train_ids_read_as_the_official_categories():
    for label in official.labels:
        if 0 <= label.trainId < 19:
            assert labels.TRAIN_ID_TO_CATEGORY[label.trainId] == label.categoryId, label.name
    assert len(labels.TRAIN_ID_TO_CATEGORY) == 19


def test_train_id_probabilities_sum_into_categories():
    rng = np.random.default_rng(3)
    probabilities = rng.dirichlet(np.ones(19), size=(3, 4)).astype(np.float32)
    categories = modern.train_id_probabilities_to_categories(probabilities)
    assert categories.shape == (3, 4, 8)
    np.testing.assert_allclose(categories[..., 0], 0)  # void has no training id
    np.testing.assert_allclose(categories[..., 7], probabilities[..., 13:19].sum(-1), rtol=1e-6)  # car..bicycle
    np.testing.assert_allclose(categories[..., 1], probabilities[..., 0] + probabilities[..., 1], rtol=1e-6)
    np.testing.assert_allclose(categories.sum(-1), 1, rtol=1e-5)
    with pytest.raises(ValueError, match="19 training-id probabilities"):
        modern.train_id_probabilities_to_categories(np.ones((2, 8)))


@pytest.mark.parametrize("build, message", [
    (lambda: modern.deeplab_v3_plus((60, 128, 3)), "height must be a multiple of 32"),
    (lambda: modern.segformer((64, 96, 3)), "width must be a multiple of 64"),
    (lambda: modern.segformer((128, 192, 3)), "width must be a multiple of its height"),
    (lambda: modern.segformer((64, 128, 3), width=0), r"width must be in \(0, 1\]"),
    (lambda: modern.fpn_efficientnet((64, 128, 3), weights="imagenet", width=0.5), "width 1 only"),
    (lambda: modern.deeplab_v3_plus((64, 128, 3), num_classes=1), "at least 2"),
    (lambda: modern.segformer((64, 128, 3), width=0.5, preset="mit_b0_ade20k_512"), "width 1 only"),
])
def test_bad_settings_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_offline_presets_fall_back_to_random_weights_and_say_why(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'api.kaggle.com'")

    monkeypatch.setattr(keras_hub.models.MiTBackbone, "from_preset", offline)
    with pytest.warns(UserWarning, match=r"could not load the keras-hub preset 'mit_b0_ade20k_512'.*no network"):
        model = modern.segformer((64, 128, 3), preset="mit_b0_ade20k_512")
    assert model.output.shape == (None, 64, 128, 8)
    monkeypatch.setattr(keras_hub.models.SegFormerImageSegmenter, "from_preset", offline)
    with pytest.warns(UserWarning, match="Run this chapter in Colab"):
        assert modern.load_cityscapes_segformer() is None


def _fake_cityscapes_segformer(classes):
    encoder = modern._mit_b0((64, 64, 3), 0.25)
    backbone = keras_hub.models.SegFormerBackbone(image_encoder=encoder, projection_filters=16)
    return keras_hub.models.SegFormerImageSegmenter(backbone=backbone, num_classes=classes)


def test_a_cityscapes_segformer_predicts_categories_tile_by_tile(monkeypatch):
    segmenter = _fake_cityscapes_segformer(19)
    converter = keras_hub.layers.SegFormerImageConverter(image_size=(64, 64), scale=1 / 255)
    monkeypatch.setattr(keras_hub.models.SegFormerImageSegmenter, "from_preset", lambda *a, **k: segmenter)
    monkeypatch.setattr(keras_hub.layers.SegFormerImageConverter, "from_preset", lambda *a, **k: converter)
    predict = modern.load_cityscapes_segformer()
    frames = np.random.default_rng(4).random((1, 16, 32, 3), dtype=np.float32)
    got = predict(frames)
    assert got.shape == (1, 16, 32) and got.dtype == np.uint8
    # the right tile by hand: resized to the preset's size, 0..255, the preset's converter, 19 -> 8, back to 16 x 16
    tile = keras.ops.image.resize(frames[:, :, 16:] * 255.0, (64, 64))
    probabilities = keras.ops.softmax(segmenter.predict_on_batch(converter(tile)), axis=-1)
    categories = modern.train_id_probabilities_to_categories(keras.ops.convert_to_numpy(probabilities))
    expected = np.argmax(keras.ops.convert_to_numpy(keras.ops.image.resize(categories, (16, 16))), -1)
    np.testing.assert_array_equal(got[:, :, 16:], expected)
    assert 0 not in got  # void has no training id: never predicted
    with pytest.raises(ValueError, match=r"expected images \(B, H, k·H, 3\)"):
        predict(frames[:, :, :24])


def test_a_preset_without_19_outputs_is_not_used(monkeypatch):
    monkeypatch.setattr(keras_hub.models.SegFormerImageSegmenter, "from_preset",
                        lambda *a, **k: _fake_cityscapes_segformer(150))
    monkeypatch.setattr(keras_hub.layers.SegFormerImageConverter, "from_preset", lambda *a, **k: None)
    with pytest.warns(UserWarning, match="predicts 150 classes, not Cityscapes' 19"):
        assert modern.load_cityscapes_segformer() is None


def test_the_comparison_shares_the_book_unet_and_trains_each_architecture():
    profile = profiles.get_profile("ci")
    contenders = experiments._contenders("10b_modern_architectures", profile)
    assert list(contenders) == ["U-Net (16 filters)", "DeepLabV3+ (ResNet, width 0.25)", "SegFormer (B0, width 0.25)",
                                "FPN (EfficientNetB0, width 0.25)"]
    assert contenders["U-Net (16 filters)"] is experiments._contenders("09_training", profile)["U-Net (16 filters)"]
    assert len({contender.run_name for contender in contenders.values()}) == 4
    widths = {name: contender.build(profile) for name, contender in list(contenders.items())[1:]}
    # width 1 would be the published models; the ci profile's narrow ones are far smaller
    assert all(model.count_params() < 2e6 for model in widths.values())
