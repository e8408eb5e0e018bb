"""Segmentation models: functions that return a ``keras.Model`` (Functional API), built from short blocks.

Inputs are ``(H, W, 3) float32`` images in [0, 1]; outputs are ``(H, W, num_classes)`` softmax probabilities.
"""

from __future__ import annotations

import keras
from keras import layers

from seglib import labels

__all__ = ["conv_block", "unet"]


def conv_block(x: keras.KerasTensor, filters: int, name: str, dropout: float = 0.0) -> keras.KerasTensor:
    """Two 3x3 convolutions with ReLU (the U-Net's unit), optionally followed by dropout."""
    for index in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer="he_normal",
                          name=f"{name}_conv{index}")(x)
    return layers.Dropout(dropout, name=f"{name}_dropout")(x) if dropout else x


def unet(input_shape: tuple[int, int, int] = (None, None, 3), num_classes: int = labels.NUM_CATEGORIES,
         base_filters: int = 64, depth: int = 4, dropout: float = 0.0) -> keras.Model:
    """The classic U-Net (Ronneberger et al. 2015): ``depth`` levels of two 3x3 convolutions and 2x2 max pooling,
    a bottleneck, then transposed-convolution upsampling with skip concatenations back to full size.

    ``base_filters`` doubles at each level (64 is the paper's; 16 trains on a CPU). ``H`` and ``W`` must be
    divisible by ``2 ** depth``.
    """
    if depth < 1 or base_filters < 1 or num_classes < 2:
        raise ValueError(f"need depth >= 1, base_filters >= 1, num_classes >= 2; got {depth}, {base_filters}, "
                         f"{num_classes}")
    height, width = input_shape[:2]
    for side in (height, width):
        if side is not None and side % 2**depth:
            raise ValueError(f"input size {height}x{width} must be divisible by 2**depth = {2**depth}")
    inputs = keras.Input(input_shape, name="image")
    x, skips = inputs, []
    for level in range(depth):
        x = conv_block(x, base_filters * 2**level, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
    x = conv_block(x, base_filters * 2**depth, "bottleneck", dropout)
    for level in reversed(range(depth)):
        x = layers.Conv2DTranspose(base_filters * 2**level, 2, strides=2, name=f"up{level}_transpose")(x)
        x = layers.Concatenate(name=f"up{level}_skip")([x, skips[level]])
        x = conv_block(x, base_filters * 2**level, f"up{level}")
    outputs = layers.Conv2D(num_classes, 1, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"unet{base_filters}")
