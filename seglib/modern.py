"""Today's segmentation architectures: DeepLabV3+ and SegFormer from keras-hub, and an FPN on an EfficientNet
encoder from ``keras.applications`` (chapter 10b).

Every builder returns a ``keras.Model`` that maps images in [0, 1] of shape (H, W, 3) to a softmax distribution
over the categories at every pixel, at the input size: the contract of :mod:`seglib.models`, so training,
evaluation, serving and export treat them like the U-Net.

``width`` scales every layer's filters: 1 is the published architecture (DeepLabV3+ on ResNet50, SegFormer-B0,
EfficientNetB0 with a 256-filter FPN); the ``ci`` profile trains narrower ones on a CPU. Pretrained weights exist
at width 1 only and are downloaded from Kaggle (keras-hub presets) or Google (``keras.applications``): where there
is no network the builders warn, saying why, and build the same architecture with random weights.
"""

from __future__ import annotations

import warnings

import keras
import keras_hub
import numpy as np

from seglib import labels
from seglib.models import JoinTiles, SquareTiles  # square tiles for SegFormer (registered for loading there)

__all__ = ["DEEPLAB_PRESET", "SEGFORMER_CITYSCAPES_PRESET", "aspp_rates", "deeplab_v3_plus", "segformer", "fpn_efficientnet",
           "load_cityscapes_segformer", "train_id_probabilities_to_categories"]

#: keras-hub's DeepLabV3+ preset (ResNet50 encoder, trained on Pascal VOC).
DEEPLAB_PRESET = "deeplab_v3_plus_resnet50_pascalvoc"
#: keras-hub's SegFormer-B0 trained on Cityscapes' 19 training ids, at 1024 x 1024.
SEGFORMER_CITYSCAPES_PRESET = "segformer_b0_cityscapes_1024"
#: Tiles the Cityscapes SegFormer predicts per call (1024 x 1024 each: attention at that size is large).
TILES_PER_CALL = 4


def _check(input_shape: tuple, num_classes: int, width: float, multiple: int) -> None:
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if not 0 < width <= 1:
        raise ValueError(f"width must be in (0, 1], got {width}")
    height, width_px = input_shape[:2]
    for name, size in (("height", height), ("width", width_px)):
        if size is None or size % multiple:
            raise ValueError(f"input {name} must be a multiple of {multiple} for this architecture, got {size}")


def _filters(count: int, width: float) -> int:
    return max(8, int(round(count * width)))


def _layers_of(task: keras.Model) -> keras.Model:
    """A keras-hub task's layers as a plain functional model: the same graph and weights, without the task's own
    ``compile`` and preprocessing (seglib compiles and feeds the model itself)."""
    return keras.Model(task.input, task.output, name=task.name)


def _normalised(inputs: keras.KerasTensor, converter_class, preset: str) -> keras.KerasTensor:
    """``inputs`` in [0, 1] as the preset's encoder was trained to see them: 0..255, times the scale of the preset's
    image converter, plus its offset (per channel, e.g. ImageNet's mean and standard deviation)."""
    converter = converter_class.from_preset(preset)
    scale = 255.0 * np.asarray(1.0 if converter.scale is None else converter.scale, np.float32)
    offset = np.asarray(0.0 if converter.offset is None else converter.offset, np.float32)
    return keras.layers.Rescaling(scale.tolist() if scale.ndim else float(scale),
                                  offset.tolist() if offset.ndim else float(offset),
                                  name="preset_normalisation")(inputs)


def _from_preset(inputs: keras.KerasTensor, backbone_class, converter_class, preset: str | None, width: float,
                 image_shape: tuple[int, int, int]) -> tuple[keras.Model | None, keras.KerasTensor]:
    """``(backbone, its input)``: the preset's backbone and the normalised ``inputs`` where ``preset`` loads, else
    ``(None, inputs)`` (no preset asked for; or none loaded, with a warning saying why)."""
    if preset is None:
        return None, inputs
    if width != 1:
        raise ValueError(f"pretrained weights exist at width 1 only, not width {width}: pass preset=None")
    try:
        backbone = backbone_class.from_preset(preset, image_shape=image_shape)
        return backbone, _normalised(inputs, converter_class, preset)
    except Exception as error:  # noqa: BLE001 - no network, Kaggle down: every failure means "no weights"
        _warn_offline(f"the keras-hub preset {preset!r}", error)
        return None, inputs


def _softmax(inputs: keras.KerasTensor, logits: keras.KerasTensor, name: str) -> keras.Model:
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return keras.Model(inputs, outputs, name=name)


def _warn_offline(what: str, error: Exception) -> None:
    warnings.warn(f"could not load {what} ({type(error).__name__}: {error}); this machine probably has no network. "
                  "Building the same architecture with random weights: it trains, but from scratch. Where a network "
                  "exists (Colab) the pretrained weights load.", stacklevel=3)


#: The paper's ASPP rates (6, 12, 18) for 513-pixel crops at output stride 16, i.e. on 33 x 33 features.
PAPER_RATES, PAPER_FEATURES = (6, 12, 18), 33


def aspp_rates(input_height: int) -> list[int]:
    """ASPP dilation rates for ``input_height`` at output stride 16: the paper's rates scaled to the feature map
    (each dilated 3x3 convolution then spans the same fraction of it), at least 1 and increasing. 512 gives
    (6, 12, 17), 256 gives (3, 6, 9), 64 gives (1, 2, 3): at small inputs, rates of 6 and more would only read
    zero padding."""
    features = input_height / 16
    rates: list[int] = []
    for rate in PAPER_RATES:
        scaled = max(1, round(rate * features / PAPER_FEATURES))
        rates.append(max(scaled, rates[-1] + 1) if rates else scaled)
    return rates


def deeplab_v3_plus(input_shape: tuple[int, int, int] = (256, 512, 3), num_classes: int = labels.NUM_CATEGORIES,
                    width: float = 1.0, preset: str | None = None) -> keras.Model:
    """DeepLabV3+ (Chen et al. 2018): a ResNet encoder (its stages up to stride 16: the paper dilates the last
    stage instead of striding it, which keras-hub's ResNet cannot) whose stride-16 features feed *atrous spatial pyramid
    pooling* (a 1x1 convolution, three 3x3 convolutions dilated by :func:`aspp_rates`, and an image-level
    pooling, side by side), upsampled 4x and joined with the encoder's stride-4 features, then upsampled to the
    input size.

    ``width`` 1 is ResNet50's 3-4-6 bottleneck blocks; narrower widths use one basic block per stage.
    ``preset`` (width 1 only), e.g. :data:`DEEPLAB_PRESET`, loads keras-hub's pretrained encoder and ASPP where a
    network exists; a new 1x1 head gives ``num_classes`` outputs.
    """
    _check(input_shape, num_classes, width, 32)
    inputs = keras.Input(input_shape, name="image")
    backbone, x = _from_preset(inputs, keras_hub.models.DeepLabV3Backbone, keras_hub.layers.DeepLabV3ImageConverter,
                               preset, width, input_shape)
    if backbone is None:
        # ResNet50's first three stages (to stride 16), or at width < 1 one basic block per stage (keras-hub's
        # ResNet wants 64 filters in the first stage)
        if width == 1:
            filters, blocks, block_type = [64, 128, 256], [3, 4, 6], "bottleneck_block"
        else:
            filters, blocks, block_type = [64] + [max(64, _filters(f, width)) for f in (128, 256)], [1, 1, 1], "basic_block"
        encoder = keras_hub.models.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=filters,
            stackwise_num_blocks=blocks, stackwise_num_strides=[1, 2, 2], block_type=block_type,
            image_shape=input_shape)
        # output stride 16, as the paper trains: ASPP on the stride-16 features, upsampled 4x to stride 4
        backbone = keras_hub.models.DeepLabV3Backbone(
            image_encoder=encoder, spatial_pyramid_pooling_key="P4", upsampling_size=4,
            dilation_rates=aspp_rates(input_shape[0]), low_level_feature_key="P2",
            projection_filters=_filters(48, width), image_shape=input_shape)
    segmenter = _layers_of(keras_hub.models.DeepLabV3ImageSegmenter(backbone=backbone, num_classes=num_classes))
    return _softmax(inputs, segmenter(x), "deeplab_v3_plus")


#: SegFormer-B0's hidden sizes and attention heads per stage.
_MIT_B0_DIMS, _MIT_B0_HEADS = (32, 64, 160, 256), (1, 2, 5, 8)


def _mit_b0(input_shape: tuple[int, int, int], width: float):
    """A Mix Transformer with B0's structure, each stage's hidden size scaled by ``width`` and rounded up to a
    multiple of its attention heads (each head gets an equal share)."""
    dims = [-(-_filters(dim, width) // heads) * heads for dim, heads in zip(_MIT_B0_DIMS, _MIT_B0_HEADS)]
    return keras_hub.models.MiTBackbone(
        layerwise_depths=[2, 2, 2, 2], num_layers=4, layerwise_num_heads=list(_MIT_B0_HEADS),
        layerwise_sr_ratios=[8, 4, 2, 1], max_drop_path_rate=0.1, layerwise_patch_sizes=[7, 3, 3, 3],
        layerwise_strides=[4, 2, 2, 2],
        hidden_dims=dims,
        image_shape=input_shape)


def segformer(input_shape: tuple[int, int, int] = (256, 512, 3), num_classes: int = labels.NUM_CATEGORIES,
              width: float = 1.0, preset: str | None = None) -> keras.Model:
    """SegFormer (Xie et al. 2021): a Mix Transformer encoder (overlapping patch embeddings, self-attention on a
    spatially reduced sequence, no position encoding) whose four stages (strides 4 to 32) are projected to one
    width by an all-MLP decoder, fused at stride 4, then upsampled to the input size. A wide input is cut into
    square tiles (:class:`seglib.models.SquareTiles`), as SegFormer predicts Cityscapes frames, and the tiles'
    outputs joined.

    ``width`` 1 is SegFormer-B0 (hidden sizes 32-64-160-256, 256 decoder filters). ``preset`` (width 1) loads
    keras-hub's pretrained encoder where a network exists; a new head gives ``num_classes`` outputs.
    """
    _check(input_shape, num_classes, width, 64)  # keras-hub's Mix Transformer fails on 1 x 1 last-stage maps
    height, wide = input_shape[0], input_shape[1]
    if wide % height:
        raise ValueError(f"SegFormer predicts square tiles: the input width must be a multiple of its height, "
                         f"got {height} x {wide}")
    tiles, square = wide // height, (height, height, input_shape[2])
    inputs = keras.Input(input_shape, name="image")
    encoder, x = _from_preset(inputs, keras_hub.models.MiTBackbone, keras_hub.layers.MiTImageConverter, preset,
                              width, square)
    if encoder is None:
        encoder = _mit_b0(square, width)
    backbone = keras_hub.models.SegFormerBackbone(image_encoder=encoder, projection_filters=_filters(256, width))
    segmenter = _layers_of(keras_hub.models.SegFormerImageSegmenter(backbone=backbone, num_classes=num_classes))
    logits = JoinTiles(tiles, name="join_tiles")(segmenter(SquareTiles(name="square_tiles")(x)))
    return _softmax(inputs, logits, "segformer")


def _efficientnet(inputs: keras.KerasTensor, weights: str | None, width: float) -> keras.Model:
    """EfficientNetB0 on ``inputs`` (0..255), or at ``width`` < 1 the same family with width and depth scaled by
    ``width`` (random weights). Keras builds every EfficientNet with one constructor, kept in ``keras.src``:
    ``EfficientNetB0`` is its width 1.0, depth 1.0."""
    if width == 1:
        try:
            return keras.applications.EfficientNetB0(include_top=False, weights=weights, input_tensor=inputs)
        except Exception as error:  # noqa: BLE001
            if weights is None:
                raise
            _warn_offline(f"the {weights!r} weights of EfficientNetB0", error)
            return keras.applications.EfficientNetB0(include_top=False, weights=None, input_tensor=inputs)
    if weights is not None:
        raise ValueError(f"ImageNet weights exist at width 1 only (EfficientNetB0), not width {width}: "
                         "pass weights=None")
    from keras.src.applications.efficientnet import EfficientNet

    return EfficientNet(width, width, default_size=224, include_top=False, weights=None, input_tensor=inputs,
                        name=f"efficientnet_width{width:g}")


def _pyramid(encoder: keras.Model, input_height: int) -> list[keras.KerasTensor]:
    """The encoder's deepest output at each of strides 4, 8, 16 and 32 (the last layer of that size)."""
    levels = {}
    for layer in encoder.layers:
        shape = layer.output.shape
        if len(shape) == 4 and shape[1] and input_height % shape[1] == 0:
            levels[input_height // shape[1]] = layer.output
    return [levels[stride] for stride in (4, 8, 16, 32)]


def fpn_efficientnet(input_shape: tuple[int, int, int] = (256, 512, 3), num_classes: int = labels.NUM_CATEGORIES,
                     weights: str | None = "imagenet", width: float = 1.0, pyramid_filters: int = 256) -> keras.Model:
    """A feature pyramid network (Lin et al. 2017, with the semantic head of Kirillov et al.'s panoptic FPN) on
    EfficientNetB0: the encoder's stride-4 to stride-32 features, each reduced to ``pyramid_filters`` by a 1x1
    convolution, are added top-down (upsampled 2x at each step); each level is smoothed by a 3x3 convolution and
    upsampled to stride 4, the levels are summed, classified, and upsampled to the input size.

    ``weights="imagenet"`` (width 1) downloads the encoder's ImageNet weights where a network exists and falls
    back to random weights, with a warning, where not. ``width`` < 1 scales the encoder's width and depth and the
    pyramid's filters (random weights).
    """
    _check(input_shape, num_classes, width, 32)
    if pyramid_filters < 2:
        raise ValueError(f"pyramid_filters must be at least 2, got {pyramid_filters}")
    filters = _filters(pyramid_filters, width)
    inputs = keras.Input(input_shape, name="image")
    scaled = keras.layers.Rescaling(255.0, name="to_0_255")(inputs)  # EfficientNet normalises 0..255 itself
    levels = _pyramid(_efficientnet(scaled, weights, width), input_shape[0])
    x = None
    pyramid = []
    for index in reversed(range(len(levels))):
        lateral = keras.layers.Conv2D(filters, 1, name=f"fpn_lateral{index}")(levels[index])
        x = lateral if x is None else keras.layers.Add(name=f"fpn_add{index}")(
            [keras.layers.UpSampling2D(2, name=f"fpn_up{index}")(x), lateral])
        pyramid.append((index, x))
    merged = []
    for index, level in pyramid:
        y = keras.layers.Conv2D(filters // 2, 3, padding="same", use_bias=False, name=f"fpn_smooth{index}")(level)
        y = keras.layers.BatchNormalization(name=f"fpn_norm{index}")(y)
        y = keras.layers.ReLU(name=f"fpn_relu{index}")(y)
        if index:
            y = keras.layers.UpSampling2D(2 ** index, interpolation="bilinear", name=f"fpn_to_stride4_{index}")(y)
        merged.append(y)
    x = keras.layers.Add(name="fpn_merge")(merged)
    x = keras.layers.Conv2D(num_classes, 1, name="classifier")(x)
    logits = keras.layers.UpSampling2D(4, interpolation="bilinear", name="to_input_size")(x)
    return _softmax(inputs, logits, "fpn_efficientnet")


def train_id_probabilities_to_categories(probabilities: np.ndarray) -> np.ndarray:
    """Sum a model's probabilities over Cityscapes' 19 training ids into the 8 categories: (..., 19) -> (..., 8).

    Each training id belongs to one category (:data:`seglib.labels.TRAIN_ID_TO_CATEGORY`); void has no training
    id, so its probability is 0 and a model trained on the 19 ids never predicts it.
    """
    probabilities = np.asarray(probabilities)
    if probabilities.shape[-1] != labels.NUM_TRAIN_IDS:
        raise ValueError(f"expected {labels.NUM_TRAIN_IDS} training-id probabilities on the last axis, "
                         f"got shape {probabilities.shape}")
    categories = np.zeros((*probabilities.shape[:-1], labels.NUM_CATEGORIES), np.float32)
    for train_id, category in enumerate(labels.TRAIN_ID_TO_CATEGORY):
        categories[..., category] += probabilities[..., train_id]
    return categories


def load_cityscapes_segformer(preset: str = SEGFORMER_CITYSCAPES_PRESET):
    """keras-hub's SegFormer trained on Cityscapes' 19 training ids, as a callable ``images (B, H, k·H, 3) in
    [0, 1] -> category ids (B, H, k·H) uint8``, or ``None`` with a warning saying why where it cannot be loaded
    (no network; or a preset without 19 outputs).

    Each square tile of a frame is resized to the preset's input size, normalised by the preset's own image
    converter, and predicted; the 19 probabilities are summed into the 8 categories
    (:func:`train_id_probabilities_to_categories`), resized back, and the tiles joined.
    """
    try:
        segmenter = keras_hub.models.SegFormerImageSegmenter.from_preset(preset)
        converter = keras_hub.layers.SegFormerImageConverter.from_preset(preset)
    except Exception as error:  # noqa: BLE001
        warnings.warn(f"could not load the keras-hub preset {preset!r} ({type(error).__name__}: {error}); this "
                      "machine probably has no network. Run this chapter in Colab to score a model trained on "
                      "real streets.", stacklevel=2)
        return None
    if segmenter.num_classes != labels.NUM_TRAIN_IDS:
        warnings.warn(f"the keras-hub preset {preset!r} predicts {segmenter.num_classes} classes, not Cityscapes' "
                      f"{labels.NUM_TRAIN_IDS} training ids (it may point at another dataset's weights); not used",
                      stacklevel=2)
        return None
    tile_size = tuple(segmenter.input_shape[1:3])

    def predict(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[-1] != 3 or images.shape[2] % images.shape[1]:
            raise ValueError(f"expected images (B, H, k·H, 3), got shape {images.shape}")
        height = images.shape[1]
        tiles = keras.ops.convert_to_numpy(SquareTiles()(images))
        back = []
        for start in range(0, len(tiles), TILES_PER_CALL):  # a few full-size tiles at a time: attention is large
            resized = keras.ops.image.resize(tiles[start:start + TILES_PER_CALL] * 255.0, tile_size,
                                             interpolation="bilinear")
            logits = keras.ops.convert_to_numpy(segmenter.predict_on_batch(converter(resized)))
            categories = train_id_probabilities_to_categories(
                keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1)))
            back.append(keras.ops.convert_to_numpy(
                keras.ops.image.resize(categories, (height, height), interpolation="bilinear")))
        back = np.concatenate(back)
        joined = JoinTiles(images.shape[2] // height)(back)
        return np.argmax(keras.ops.convert_to_numpy(joined), axis=-1).astype(np.uint8)

    return predict
