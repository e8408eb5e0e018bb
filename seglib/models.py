"""Segmentation models: functions that return a ``keras.Model`` (Functional API), built from short blocks.

Inputs are ``(H, W, 3) float32`` images in [0, 1]; outputs are ``(H, W, num_classes)`` softmax probabilities, or with
``num_classes=1`` a single sigmoid channel: the probability of one category against the rest (binary segmentation,
chapter 12).
"""

from __future__ import annotations

import math
import warnings

import keras
from keras import layers

from seglib import labels

__all__ = ["conv_block", "unet", "simple_unet", "fcn8_vgg16", "pretrained_unet", "ImageNetPreprocess", "encoder",
           "narrow_vgg16", "VGG16_BLOCKS", "ENCODER_SKIPS", "SquareTiles", "JoinTiles", "receptive_field"]


def conv_block(x: keras.KerasTensor, filters: int, name: str, dropout: float = 0.0,
               batch_norm: bool = False) -> keras.KerasTensor:
    """Two 3x3 convolutions with ReLU (the U-Net's unit), optionally followed by dropout.

    With ``batch_norm`` each convolution (then without a bias, which the normalisation's shift replaces) is followed
    by ``BatchNormalization`` before its ReLU: training tolerates a larger learning rate and converges in fewer
    steps, which is what a CPU budget needs (appendix: how the ``ci`` profile was chosen).
    """
    for index in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", activation=None if batch_norm else "relu",
                          use_bias=not batch_norm, kernel_initializer="he_normal", name=f"{name}_conv{index}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_norm{index}")(x)
            x = layers.Activation("relu", name=f"{name}_relu{index}")(x)
    return layers.Dropout(dropout, name=f"{name}_dropout")(x) if dropout else x


def unet(input_shape: tuple[int, int, int] = (None, None, 3), num_classes: int = labels.NUM_CATEGORIES,
         base_filters: int = 64, depth: int = 4, dropout: float = 0.0, batch_norm: bool = True) -> keras.Model:
    """The U-Net (Ronneberger et al. 2015): ``depth`` levels of two 3x3 convolutions and 2x2 max pooling,
    a bottleneck, then transposed-convolution upsampling with skip concatenations back to full size.

    ``base_filters`` doubles at each level (64 is the paper's; 16 trains on a CPU). ``batch_norm`` (default, as in
    most U-Nets since 2015) normalises after every 3x3 convolution; ``batch_norm=False`` is the paper's network
    exactly. ``H`` and ``W`` must be divisible by ``2 ** depth``.
    """
    if depth < 1 or base_filters < 1 or num_classes < 1:
        raise ValueError(f"need depth >= 1, base_filters >= 1, num_classes >= 1 (1: binary); got {depth}, "
                         f"{base_filters}, {num_classes}")
    height, width = input_shape[:2]
    for side in (height, width):
        if side is not None and side % 2**depth:
            raise ValueError(f"input size {height}x{width} must be divisible by 2**depth = {2**depth}")
    inputs = keras.Input(input_shape, name="image")
    x, skips = inputs, []
    for level in range(depth):
        x = conv_block(x, base_filters * 2**level, f"down{level}", batch_norm=batch_norm)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
    x = conv_block(x, base_filters * 2**depth, "bottleneck", dropout, batch_norm)
    x = _decoder(x, skips, [base_filters * 2**level for level in range(depth)], batch_norm)
    return keras.Model(inputs, _probabilities(x, num_classes), name=f"unet{base_filters}")


def _check(num_classes: int, input_shape: tuple, multiple: int, **positive: int) -> None:
    if num_classes < 1 or any(value < 1 for value in positive.values()):
        raise ValueError(f"need num_classes >= 1 (1: binary) and {', '.join(positive)} >= 1; got {num_classes}, "
                         f"{positive}")
    height, width = input_shape[:2]
    if any(side is not None and side % multiple for side in (height, width)):
        raise ValueError(f"input size {height}x{width} must be divisible by {multiple} for this model")


def _decoder(x: keras.KerasTensor, skips: list[keras.KerasTensor], filters: list[int],
             batch_norm: bool = False) -> keras.KerasTensor:
    """From the deepest level up: 2x transposed convolution, concatenate the skip, two 3x3 convolutions."""
    for level in reversed(range(len(skips))):
        x = layers.Conv2DTranspose(filters[level], 2, strides=2, name=f"up{level}_transpose")(x)
        x = layers.Concatenate(name=f"up{level}_skip")([x, skips[level]])
        x = conv_block(x, filters[level], f"up{level}", batch_norm=batch_norm)
    return x


def _probabilities(x: keras.KerasTensor, num_classes: int) -> keras.KerasTensor:
    """1x1 convolution to class scores, softmax in float32 (also under mixed precision); one sigmoid channel for
    ``num_classes=1``."""
    activation = "sigmoid" if num_classes == 1 else "softmax"
    return layers.Conv2D(num_classes, 1, activation=activation, dtype="float32", name="probabilities")(x)


def simple_unet(input_shape: tuple[int, int, int] = (None, None, 3), num_classes: int = labels.NUM_CATEGORIES,
                base_filters: int = 16, depth: int = 4) -> keras.Model:
    """A "simple" U-Net, as binary-segmentation tutorials often build it: each level one 3x3 convolution,
    then a *strided* 3x3 convolution halves the size (learned downsampling instead of max pooling); the decoder
    mirrors it with transposed convolutions and skip concatenations."""
    _check(num_classes, input_shape, 2**depth, base_filters=base_filters, depth=depth)
    inputs = keras.Input(input_shape, name="image")
    x, skips = inputs, []
    for level in range(depth):
        filters = base_filters * 2**level
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"down{level}_conv")(x)
        skips.append(x)
        x = layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", name=f"down{level}_stride")(x)
    x = layers.Conv2D(base_filters * 2**depth, 3, padding="same", activation="relu", name="bottleneck_conv")(x)
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", activation="relu",
                                   name=f"up{level}_transpose")(x)
        x = layers.Concatenate(name=f"up{level}_skip")([x, skips[level]])
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"up{level}_conv")(x)
    return keras.Model(inputs, _probabilities(x, num_classes), name=f"simple_unet{base_filters}")

# ---------------------------------------------------------------------------------------------------------
# Pretrained encoders from keras.applications
# ---------------------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="seglib")
class ImageNetPreprocess(layers.Layer):
    """``[0, 1]`` RGB -> the input ``keras.applications`` VGG16 and ResNet50 were trained on ("caffe" mode: BGR,
    0..255, ImageNet mean subtracted), so the models take the same input as every other model of the book."""

    def call(self, images):
        return keras.applications.vgg16.preprocess_input(images * 255.0)


#: Layers of each encoder whose outputs feed the decoder, from full-size-most to deepest (the last is the bottom).
ENCODER_SKIPS = {
    "vgg16": ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"),
    "resnet50": ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
}
_APPLICATIONS = {"vgg16": "VGG16", "resnet50": "ResNet50"}


#: VGG16's five blocks: (convolutions, filters) each, followed by 2x2 max pooling.
VGG16_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


def narrow_vgg16(inputs: keras.KerasTensor, width: float) -> keras.Model:
    """VGG16's convolutional part with every layer ``width`` times as wide (at least one filter), layer names as in
    ``keras.applications.VGG16`` (``block3_conv3``, ``block4_pool``, ...), random weights: the same structure at
    a cost a CPU can train."""
    x = inputs
    for block, (convolutions, filters) in enumerate(VGG16_BLOCKS, start=1):
        for index in range(1, convolutions + 1):
            x = layers.Conv2D(max(1, round(filters * width)), 3, padding="same", activation="relu",
                              name=f"block{block}_conv{index}")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    return keras.Model(inputs, x, name=f"vgg16_width{width:g}")


def encoder(name: str, inputs: keras.KerasTensor, weights: str | None = "imagenet", width: float = 1.0) -> keras.Model:
    """A ``keras.applications`` encoder (``"vgg16"`` or ``"resnet50"``, no classifier head) on ``inputs`` (already
    preprocessed). ``weights="imagenet"`` downloads the ImageNet weights where a network exists (Colab); where the
    download fails (offline) it warns, saying why, and builds the same encoder with random weights.

    ``width`` below 1 (VGG16 only) builds :func:`narrow_vgg16`, which has no pretrained weights: ask for
    ``weights=None``.
    """
    if name not in _APPLICATIONS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(_APPLICATIONS)}")
    if not 0 < width <= 1:
        raise ValueError(f"encoder width must be in (0, 1], got {width}")
    if width != 1:
        if name != "vgg16":
            raise ValueError(f"only the vgg16 encoder has a width setting, got {name!r} with width {width}")
        if weights is not None:
            raise ValueError(f"ImageNet weights exist for the full VGG16 only (width 1), not width {width}: "
                             "pass weights=None")
        return narrow_vgg16(inputs, width)
    application = getattr(keras.applications, _APPLICATIONS[name])
    try:
        return application(include_top=False, weights=weights, input_tensor=inputs)
    except Exception as error:  # noqa: BLE001 - keras raises a bare Exception on a failed download
        if weights is None:
            raise
        warnings.warn(f"could not load the {weights!r} weights of {_APPLICATIONS[name]} ({error}); this machine "
                      "probably has no network. Building the encoder with random weights (weights=None): it "
                      "will train from scratch, and figures will not match a pretrained run.", stacklevel=2)
        return application(include_top=False, weights=None, input_tensor=inputs)


def fcn8_vgg16(input_shape: tuple[int, int, int] = (None, None, 3), num_classes: int = labels.NUM_CATEGORIES,
               weights: str | None = "imagenet", head_filters: int = 4096, dropout: float = 0.5,
               width: float = 1.0) -> keras.Model:
    """FCN-8s (Long et al. 2015) on a VGG16 encoder.

    The classifier of VGG16 becomes convolutions (``fc6`` 7x7 and ``fc7`` 1x1, ``head_filters`` wide: 4096 in the
    paper, 512 trains on a CPU), scored by a 1x1 convolution per class at 1/32 of the input size. Transposed
    convolutions upsample x2, add the 1x1 scores of ``pool4`` (1/16), x2 again, add the scores of ``pool3`` (1/8),
    and a final x8 brings the scores to full size. ``H`` and ``W`` must be divisible by 32. ``width`` below 1 narrows
    every VGG16 layer (:func:`narrow_vgg16`, random weights only).
    """
    _check(num_classes, input_shape, 32, head_filters=head_filters)
    inputs = keras.Input(input_shape, name="image")
    vgg = encoder("vgg16", ImageNetPreprocess(name="imagenet_preprocess")(inputs), weights, width)
    pool3, pool4, pool5 = (vgg.get_layer(f"block{k}_pool").output for k in (3, 4, 5))
    x = layers.Conv2D(head_filters, 7, padding="same", activation="relu", name="fc6")(pool5)
    x = layers.Dropout(dropout, name="fc6_dropout")(x)
    x = layers.Conv2D(head_filters, 1, activation="relu", name="fc7")(x)
    x = layers.Dropout(dropout, name="fc7_dropout")(x)
    x = layers.Conv2D(num_classes, 1, name="score_fr")(x)
    x = layers.Conv2DTranspose(num_classes, 4, strides=2, padding="same", name="upscore2")(x)
    x = layers.Add(name="fuse_pool4")([x, layers.Conv2D(num_classes, 1, name="score_pool4")(pool4)])
    x = layers.Conv2DTranspose(num_classes, 4, strides=2, padding="same", name="upscore_pool4")(x)
    x = layers.Add(name="fuse_pool3")([x, layers.Conv2D(num_classes, 1, name="score_pool3")(pool3)])
    x = layers.Conv2DTranspose(num_classes, 16, strides=8, padding="same", name="upscore8")(x)
    activation = "sigmoid" if num_classes == 1 else "softmax"
    outputs = layers.Activation(activation, dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="fcn8_vgg16")


def pretrained_unet(input_shape: tuple[int, int, int] = (None, None, 3), num_classes: int = labels.NUM_CATEGORIES,
                    encoder_name: str = "vgg16", weights: str | None = "imagenet",
                    decoder_filters: tuple[int, ...] = (16, 32, 64, 128), trainable_encoder: bool = True,
                    encoder_width: float = 1.0) -> keras.Model:
    """A U-Net whose encoder is a pretrained ``keras.applications`` network (VGG16 or ResNet50).

    The decoder climbs from the encoder's deepest features through its skip layers (:data:`ENCODER_SKIPS`) with
    transposed convolutions, concatenations and two 3x3 convolutions per level, ``decoder_filters`` wide from the
    finest level up. ResNet50's first skip is at half size, so its decoder ends with one more x2 upsampling.
    ``H`` and ``W`` must be divisible by 32. ``trainable_encoder=False`` freezes the encoder (train the decoder
    first, then fine-tune). ``encoder_width`` below 1 narrows a VGG16 encoder (:func:`narrow_vgg16`, random weights
    only).
    """
    if encoder_name not in ENCODER_SKIPS:
        raise ValueError(f"unknown encoder {encoder_name!r}; choose one of {', '.join(ENCODER_SKIPS)}")
    skip_names = ENCODER_SKIPS[encoder_name]
    if len(decoder_filters) != len(skip_names) - 1:
        raise ValueError(f"decoder_filters needs {len(skip_names) - 1} entries, one per skip level")
    _check(num_classes, input_shape, 32, **{f"decoder_filters[{i}]": f for i, f in enumerate(decoder_filters)})
    inputs = keras.Input(input_shape, name="image")
    backbone = encoder(encoder_name, ImageNetPreprocess(name="imagenet_preprocess")(inputs), weights, encoder_width)
    backbone.trainable = trainable_encoder
    *skips, bottom = (backbone.get_layer(name).output for name in skip_names)
    x = _decoder(bottom, skips, list(decoder_filters))
    if encoder_name == "resnet50":  # its finest skip is at 1/2 size
        x = layers.Conv2DTranspose(decoder_filters[0], 2, strides=2, name="up_full_transpose")(x)
        x = conv_block(x, decoder_filters[0], "up_full")
    return keras.Model(inputs, _probabilities(x, num_classes), name=f"unet_{encoder_name}")


@keras.saving.register_keras_serializable(package="seglib")
class SquareTiles(keras.layers.Layer):
    """(B, H, k·H, C) -> (k·B, H, H, C): a wide image as ``k`` square tiles, left to right, in the batch axis.

    keras-hub's Mix Transformer reshapes its token sequences into square feature maps, so it accepts square
    images only; SegFormer's Cityscapes models are trained on square crops and predict a 1024 x 2048 frame as
    two 1024 x 1024 squares (:func:`seglib.modern.segformer`). :class:`JoinTiles` undoes it. Both live here,
    beside the book's other layers, so that every loader of a saved model finds them."""

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        tiles = width // height
        return (None if batch is None else batch * tiles, height, height, channels)

    def call(self, x):
        shape = keras.ops.shape(x)
        height, width = x.shape[1], x.shape[2]
        tiles = width // height
        x = keras.ops.reshape(x, (shape[0], height, tiles, height, x.shape[3]))
        x = keras.ops.transpose(x, (0, 2, 1, 3, 4))
        return keras.ops.reshape(x, (-1, height, height, x.shape[4]))


@keras.saving.register_keras_serializable(package="seglib")
class JoinTiles(keras.layers.Layer):
    """(k·B, H, H, C) -> (B, H, k·H, C): the inverse of :class:`SquareTiles`."""

    def __init__(self, tiles: int, **kwargs):
        super().__init__(**kwargs)
        self.tiles = tiles

    def get_config(self):
        return {**super().get_config(), "tiles": self.tiles}

    def compute_output_shape(self, input_shape):
        batch, height, _, channels = input_shape
        return (None if batch is None else batch // self.tiles, height, height * self.tiles, channels)

    def call(self, x):
        height, channels = x.shape[1], x.shape[3]
        x = keras.ops.reshape(x, (-1, self.tiles, height, height, channels))
        x = keras.ops.transpose(x, (0, 2, 1, 3, 4))
        return keras.ops.reshape(x, (-1, height, height * self.tiles, channels))


def receptive_field(model: keras.Model, layer_name: str | None = None) -> int:
    """Side, in input pixels, of the square that can influence one pixel of ``layer_name``'s output (default: the
    model's output), walking the model's layers in order.

    A k x k convolution or pooling with stride s adds (k - 1) times the current *jump* (input pixels between two
    neighbouring features) and multiplies the jump by s; a transposed convolution with stride s divides the jump
    by s and adds (ceil(k / s) - 1) input features; merges (add, concatenate) take the largest field of their
    inputs. Other layers change nothing.
    """
    fields: dict[int, tuple[float, float]] = {}
    for layer in model.layers:
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        known = [fields[id(t)] for t in inputs if id(t) in fields] or [(1.0, 1.0)]
        field, jump = max(known)
        kernel = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
        strides = getattr(layer, "strides", None) or (1, 1)
        if isinstance(layer, layers.Conv2DTranspose):
            field += (math.ceil(kernel[0] / strides[0]) - 1) * jump
            jump /= strides[0]
        elif kernel is not None:
            dilation = getattr(layer, "dilation_rate", (1, 1))[0]
            field += dilation * (kernel[0] - 1) * jump
            jump *= strides[0]
        elif isinstance(layer, layers.UpSampling2D):
            jump /= layer.size[0]
        fields[id(layer.output)] = (field, jump)
        if layer.name == layer_name:
            return int(field)
    if layer_name is not None:
        raise ValueError(f"{model.name} has no layer {layer_name!r}")
    return int(fields[id(model.output)][0])
