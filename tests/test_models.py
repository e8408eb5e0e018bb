"""seglib.models: shapes and parameter counts computed by hand."""

import keras
import numpy as np
import pytest

from seglib import models


def test_tiny_unet_parameters_by_hand():
    # base 2, depth 1, 3 classes on RGB: down 3->2 (56) 2->2 (38); bottleneck 2->4 (76) 4->4 (148);
    # transpose 2x2 4->2 (34); after concat 4 channels: 4->2 (74) 2->2 (38); 1x1 2->3 (9): 473 in all
    model = models.unet((8, 8, 3), num_classes=3, base_filters=2, depth=1, batch_norm=False)
    assert model.count_params() == 56 + 38 + 76 + 148 + 34 + 74 + 38 + 9


def test_tiny_unet_with_batch_norm_parameters_by_hand():
    # each 3x3 convolution loses its bias and gains a BatchNormalization of 4 values per channel
    # (gamma, beta, moving mean, moving variance): down 54 + 8, 36 + 8; bottleneck 72 + 16, 144 + 16;
    # transpose 2x2 4->2 with bias (34); up 72 + 8, 36 + 8; 1x1 2->3 (9)
    model = models.unet((8, 8, 3), num_classes=3, base_filters=2, depth=1)
    assert model.count_params() == 54 + 8 + 36 + 8 + 72 + 16 + 144 + 16 + 34 + 72 + 8 + 36 + 8 + 9
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == 6


def test_unet_output_is_a_distribution_per_pixel():
    model = models.unet((32, 64, 3), num_classes=8, base_filters=4, depth=3)
    probabilities = model.predict(np.random.default_rng(0).random((2, 32, 64, 3), np.float32), verbose=0)
    assert probabilities.shape == (2, 32, 64, 8)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("build", [
    lambda: models.unet((32, 64, 3), num_classes=1, base_filters=4, depth=3),
    lambda: models.simple_unet((32, 64, 3), num_classes=1, base_filters=4, depth=3),
])
def test_one_class_gives_a_sigmoid_probability(build):
    model = build()
    inputs = np.random.default_rng(1).random((2, 32, 64, 3), np.float32)
    probabilities = model.predict(inputs, verbose=0)
    assert probabilities.shape == (2, 32, 64, 1)
    # the head is a sigmoid of a 1x1 convolution of the last features: recompute it by hand
    head = model.get_layer("probabilities")
    features = model.get_layer(index=-2).output
    kernel, bias = (np.asarray(w) for w in head.get_weights())
    import keras
    last = keras.Model(model.input, features).predict(inputs, verbose=0)
    np.testing.assert_allclose(probabilities[..., 0], 1 / (1 + np.exp(-(last @ kernel[0, 0] + bias)[..., 0])),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"input_shape": (30, 64, 3), "depth": 2}, "divisible by 2\\*\\*depth = 4"),
    ({"num_classes": 0}, "num_classes >= 1"),
])
def test_bad_configurations_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.unet(**kwargs)


VGG16_NOTOP_PARAMETERS = 14_714_688  # Keras' published count for VGG16(include_top=False): 13 conv layers


def test_fcn8_parameters_by_hand():
    head, classes = 16, 3
    expected = (VGG16_NOTOP_PARAMETERS
                + 7 * 7 * 512 * head + head        # fc6: 7x7 conv on pool5
                + head * head + head               # fc7: 1x1
                + head * classes + classes         # score_fr
                + 4 * 4 * classes * classes + classes   # upscore2 (x2)
                + 512 * classes + classes          # score_pool4
                + 4 * 4 * classes * classes + classes   # upscore_pool4 (x2)
                + 256 * classes + classes          # score_pool3
                + 16 * 16 * classes * classes + classes)  # upscore8 (x8)
    model = models.fcn8_vgg16((64, 64, 3), num_classes=classes, weights=None, head_filters=head)
    assert model.count_params() == expected


def test_simple_unet_parameters_by_hand():
    # base 2, depth 1, 3 classes: conv 3->2 (56); stride conv 2->2 (38); bottleneck 2->4 (76);
    # transpose 3x3 4->2 (74); after concat 4 channels: conv 4->2 (74); 1x1 2->3 (9)
    model = models.simple_unet((8, 8, 3), num_classes=3, base_filters=2, depth=1)
    assert model.count_params() == 56 + 38 + 76 + 74 + 74 + 9


@pytest.mark.parametrize("build", [
    lambda: models.simple_unet((32, 64, 3), base_filters=4, depth=3),
    lambda: models.fcn8_vgg16((32, 64, 3), weights=None, head_filters=8),
    lambda: models.pretrained_unet((32, 64, 3), weights=None),
    lambda: models.pretrained_unet((32, 64, 3), encoder_name="resnet50", weights=None),
], ids=["simple_unet", "fcn8", "unet_vgg16", "unet_resnet50"])
def test_every_model_gives_a_distribution_per_pixel_at_full_size(build):
    model = build()
    probabilities = model.predict(np.random.default_rng(0).random((1, 32, 64, 3), np.float32), verbose=0)
    assert probabilities.shape == (1, 32, 64, 8)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)


def test_imagenet_preprocessing_by_hand():
    red = np.zeros((1, 1, 1, 3), np.float32)
    red[..., 0] = 1.0  # pure red in [0, 1] -> BGR (0, 0, 255) minus the ImageNet mean (103.939, 116.779, 123.68)
    out = np.asarray(models.ImageNetPreprocess()(red))[0, 0, 0]
    np.testing.assert_allclose(out, [-103.939, -116.779, 255 - 123.68], atol=1e-3)


def test_offline_pretrained_weights_fall_back_with_a_clear_warning(monkeypatch):
    from keras.src.utils import file_utils

    def no_network(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -2] Name or service not known")  # what keras raises offline

    monkeypatch.setattr(file_utils, "get_file", no_network)
    with pytest.warns(UserWarning, match="could not load the 'imagenet' weights of VGG16.*no network.*weights=None"):
        model = models.pretrained_unet((32, 64, 3), weights="imagenet")
    assert model.output_shape == (None, 32, 64, 8)


def test_pretrained_unet_saves_and_loads(tmp_path):
    import keras

    model = models.pretrained_unet((32, 64, 3), weights=None, trainable_encoder=False)
    assert not model.get_layer("block1_conv1").trainable
    path = tmp_path / "model.keras"
    model.save(path)
    image = np.random.default_rng(1).random((1, 32, 64, 3), np.float32)
    np.testing.assert_allclose(keras.models.load_model(path).predict(image, verbose=0),
                               model.predict(image, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("build, message", [
    (lambda: models.fcn8_vgg16((48, 64, 3), weights=None), "divisible by 32"),
    (lambda: models.pretrained_unet(encoder_name="mobilenet", weights=None), "'mobilenet'"),
    (lambda: models.pretrained_unet(decoder_filters=(8, 8), weights=None), "needs 4 entries"),
    (lambda: models.encoder("alexnet", None), "'alexnet'"),
])
def test_bad_model_arguments_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_receptive_field_by_hand_and_published():
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(1, 3)(inputs)            # 3
    x = keras.layers.MaxPooling2D(2)(x)              # 3 + 1 * 1 = 4, jump 2
    x = keras.layers.Conv2D(1, 3)(x)                 # 4 + 2 * 2 = 8
    assert models.receptive_field(keras.Model(inputs, x)) == 8
    # VGG16: the receptive field of conv5_3 is 196 pixels and of pool5 212 (Araujo et al., Distill 2019)
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(224, 224, 3))
    assert models.receptive_field(vgg, "block5_conv3") == 196
    assert models.receptive_field(vgg, "block5_pool") == 212
    with pytest.raises(ValueError, match="no layer 'fc9'"):
        models.receptive_field(vgg, "fc9")


def test_narrow_vgg16_parameters_by_hand():
    # width 1/64: blocks of 1, 2, 4, 8, 8 filters; 3x3 convolutions with bias:
    # 3->1 (28), 1->1 (10) | 1->2 (20), 2->2 (38) | 2->4 (76), 4->4 (148) x2 | 4->8 (296), 8->8 (584) x2 | 8->8 x3
    model = models.narrow_vgg16(keras.Input((32, 32, 3)), 1 / 64)
    assert model.count_params() == 28 + 10 + 20 + 38 + 76 + 2 * 148 + 296 + 2 * 584 + 3 * 584
    assert model.output_shape == (None, 1, 1, 8)


def test_narrow_vgg16_at_width_one_is_vgg16():
    ours = models.narrow_vgg16(keras.Input((64, 64, 3)), 1.0)
    official = keras.applications.VGG16(include_top=False, weights=None, input_shape=(64, 64, 3))
    assert ours.count_params() == official.count_params() == 14_714_688
    assert [layer.name for layer in ours.layers[1:]] == [layer.name for layer in official.layers[1:]]


def test_narrow_encoders_in_fcn8_and_the_vgg_unet():
    fcn = models.fcn8_vgg16((64, 64, 3), weights=None, head_filters=8, width=0.25)
    assert fcn.get_layer("block5_conv3").output.shape[-1] == 128 and fcn.output_shape == (None, 64, 64, 8)
    unet = models.pretrained_unet((64, 64, 3), weights=None, encoder_width=0.25)
    assert unet.get_layer("block1_conv2").output.shape[-1] == 16 and unet.output_shape == (None, 64, 64, 8)


@pytest.mark.parametrize("build, message", [
    (lambda: models.fcn8_vgg16((64, 64, 3), weights="imagenet", width=0.5), "ImageNet weights exist for the full"),
    (lambda: models.pretrained_unet((64, 64, 3), encoder_name="resnet50", weights=None, encoder_width=0.5),
     "only the vgg16 encoder has a width"),
    (lambda: models.fcn8_vgg16((64, 64, 3), weights=None, width=0.0), r"width must be in \(0, 1\]"),
])
def test_bad_encoder_widths_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()
