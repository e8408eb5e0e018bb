"""Checks of chapter 6 (models): the parameter count of a convolution, and the receptive field of a stack of
convolutions and poolings. The answer key is Keras's own count and :func:`seglib.models.receptive_field` on tiny
models built from the same layers (Keras is imported when a check runs, not with this module)."""

from __future__ import annotations

import numpy as np

from seglib.exercises import Wrong, expect


def _expect_int(value, what: str) -> int:
    expect(isinstance(value, (int, np.integer)) and not isinstance(value, bool),
           f"{what} should be an integer, got {type(value).__name__} {value!r}")
    return int(value)


def _keras_conv_parameters(kernel_size: int, in_channels: int, filters: int, use_bias: bool) -> int:
    from keras import layers

    layer = layers.Conv2D(filters, kernel_size, use_bias=use_bias)
    layer.build((None, None, None, in_channels))
    return int(layer.count_params())


def check_conv_parameters(conv2d_parameters) -> None:
    """06.1: ``conv2d_parameters(kernel_size, in_channels, filters, use_bias=True) -> int``, the weights of a
    ``k x k`` ``Conv2D``, as ``keras`` counts them."""
    rng = np.random.default_rng(6)
    cases = [(3, 16, 32, True, "a 3x3 convolution of a U-Net without batch normalisation"),
             (3, 16, 16, False, "a 3x3 convolution followed by batch normalisation, which replaces the bias"),
             (7, 512, 512, True, "FCN-8's 512-wide fc6"),
             (1, 512, 8, True, "a 1x1 scoring convolution to 8 classes"),
             (3, 3, 16, True, "a first convolution on an RGB image")]
    cases += [(int(k), int(c), int(f), bool(b), "a random convolution")
              for k, c, f, b in zip(rng.choice([1, 2, 3, 5], 4), rng.integers(1, 40, 4), rng.integers(1, 40, 4),
                                    rng.integers(0, 2, 4))]
    for kernel, channels, filters, bias, name in cases:
        what = (f"a {kernel}x{kernel} convolution from {channels} to {filters} channels, "
                f"{'with' if bias else 'without'} bias")
        got = _expect_int(conv2d_parameters(kernel, channels, filters, use_bias=bias), f"the count for {what}")
        want = _keras_conv_parameters(kernel, channels, filters, bias)
        if got == want:
            continue
        hint = ""
        if bias and got == want - filters:
            hint = ": the biases are missing, one per filter"
        elif not bias and got == want + filters:
            hint = ": with use_bias=False there is no bias to count"
        elif got in (kernel * kernel * filters + filters * bias, kernel * kernel * filters):
            hint = ": each filter has a k x k kernel for every input channel"
        elif got in (kernel * channels * filters + filters * bias, kernel * channels * filters):
            hint = ": a k x k kernel has k * k weights per input channel, not k"
        raise Wrong(f"{what} ({name}): you count {got:,} parameters, Keras counts {want:,}{hint}")


def _stack_model(stack: list[tuple[str, int, int]]):
    """A tiny Keras model of the given layers (``("conv" | "pool", kernel, stride)``), 1 channel each."""
    import keras
    from keras import layers

    inputs = keras.Input((None, None, 1))
    x = inputs
    for index, (kind, kernel, stride) in enumerate(stack):
        if kind == "conv":
            x = layers.Conv2D(1, kernel, strides=stride, padding="same", name=f"conv{index}")(x)
        else:
            x = layers.MaxPooling2D(kernel, strides=stride, padding="same", name=f"pool{index}")(x)
    return keras.Model(inputs, x)


_VGG16_CONV5_3 = [("conv", 3, 1)] * 2 + [("pool", 2, 2)] + [("conv", 3, 1)] * 2 + [("pool", 2, 2)] + (
    [("conv", 3, 1)] * 3 + [("pool", 2, 2)]) * 2 + [("conv", 3, 1)] * 3
_UNET_BOTTLENECK = ([("conv", 3, 1)] * 2 + [("pool", 2, 2)]) * 4 + [("conv", 3, 1)] * 2


def check_receptive_field(stack_receptive_field) -> None:
    """06.2: ``stack_receptive_field(layers: list[(kernel, stride)]) -> int``, the receptive field (input pixels)
    of the last layer of a chain of convolutions and poolings, as :func:`seglib.models.receptive_field` walks it."""
    from seglib import models

    rng = np.random.default_rng(62)
    cases = [("one 3x3 convolution", [("conv", 3, 1)]),
             ("two 3x3 convolutions", [("conv", 3, 1)] * 2),
             ("a 3x3 convolution, 2x2 pooling, a 3x3 convolution", [("conv", 3, 1), ("pool", 2, 2), ("conv", 3, 1)]),
             ("VGG16 up to conv5_3", _VGG16_CONV5_3),
             ("the book's U-Net encoder up to its bottleneck", _UNET_BOTTLENECK),
             ("a strided 3x3 convolution, then a 7x7 one", [("conv", 3, 2), ("conv", 7, 1)])]
    for number in range(4):
        stack = [("conv" if rng.random() < 0.7 else "pool", int(rng.choice([1, 2, 3, 5, 7])), int(rng.choice([1, 2])))
                 for _ in range(int(rng.integers(2, 9)))]
        cases.append((f"random stack {number + 1}", stack))
    for name, stack in cases:
        pairs = [(kernel, stride) for _, kernel, stride in stack]
        got = _expect_int(stack_receptive_field(list(pairs)), f"the receptive field of {name}")
        want = models.receptive_field(_stack_model(stack))
        if got == want:
            continue
        no_jump = 1 + sum(kernel - 1 for kernel, _ in pairs)
        hint = ""
        if got == want - 1:
            hint = ": one pixel short; a single pixel sees itself, so the field starts at 1"
        elif got == no_jump and got != want:
            hint = (": each layer must add (kernel - 1) times the current jump, the input pixels between two "
                    "neighbouring features, which every stride multiplies")
        else:
            jump, late = 1, 1
            for kernel, stride in pairs:  # the jump updated before the layer's own kernel is added
                jump *= stride
                late += (kernel - 1) * jump
            if got == late:
                hint = (": a layer's kernel spans the jump *before* its own stride; multiply the jump by the stride "
                        "after adding (kernel - 1) * jump")
        shown = f" {pairs}" if len(pairs) <= 8 else ""
        raise Wrong(f"the receptive field of {name}{shown} is {want} px; yours is {got}{hint}")


CHECKS = {"06.1": check_conv_parameters, "06.2": check_receptive_field}
