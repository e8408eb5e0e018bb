"""A classical baseline: hand-made per-pixel filter features and multinomial logistic regression.

Each pixel is described by its colour, blurred versions of the image, edge filters (Sobel, Prewitt, Roberts),
Gabor texture filters, and its row in the frame. A softmax layer on those features is multinomial logistic
regression: one linear score per category, no learned filters. It is the yardstick a neural network must beat.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import keras
import numpy as np

from seglib import labels, modelio

__all__ = ["KERNELS", "GABOR_ORIENTATIONS", "GABOR_WAVELENGTHS", "GAUSSIAN_SIGMAS", "FEATURE_NAMES",
           "pixel_features", "sample_pixels", "logistic_regression", "baseline_predictor"]

#: Edge kernels (x then y direction; Roberts: its two diagonals).
KERNELS: dict[str, np.ndarray] = {
    "sobel_x": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32),
    "sobel_y": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], np.float32),
    "prewitt_x": np.array([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], np.float32),
    "prewitt_y": np.array([[-1, -1, -1], [0, 0, 0], [1, 1, 1]], np.float32),
    "roberts_1": np.array([[1, 0], [0, -1]], np.float32),
    "roberts_2": np.array([[0, 1], [-1, 0]], np.float32),
}
GAUSSIAN_SIGMAS: tuple[float, ...] = (1.0, 3.0, 7.0)
GABOR_ORIENTATIONS: tuple[float, ...] = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)
GABOR_WAVELENGTHS: tuple[float, ...] = (4.0, 8.0)
FEATURE_NAMES: tuple[str, ...] = (
    "red", "green", "blue", "grey",
    *(f"gaussian_{sigma:g}" for sigma in GAUSSIAN_SIGMAS),
    *(f"|{name}|" for name in KERNELS),
    *(f"|gabor_{np.degrees(theta):.0f}deg_{wavelength:g}px|" for theta in GABOR_ORIENTATIONS
      for wavelength in GABOR_WAVELENGTHS),
    "row",
)


def _gabor(theta: float, wavelength: float) -> np.ndarray:
    sigma = 0.56 * wavelength  # a bandwidth of about one octave
    size = int(2 * np.ceil(2 * sigma) + 1)
    kernel = cv2.getGaborKernel((size, size), sigma, theta, wavelength, 1.0, 0.0, ktype=cv2.CV_32F)
    return kernel - kernel.mean()  # no response to flat regions


def pixel_features(image: np.ndarray) -> np.ndarray:
    """``image: (H, W, 3) uint8`` RGB -> ``(H, W, F) float32`` features, ``F = len(FEATURE_NAMES)``, in the order
    of :data:`FEATURE_NAMES`: colour and grey in [0, 1], Gaussian blurs of grey, absolute edge and Gabor responses,
    and the row position (0 at the top, 1 at the bottom)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    colour = image.astype(np.float32) / 255.0
    grey = cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY)
    planes = [colour[..., 0], colour[..., 1], colour[..., 2], grey]
    planes += [cv2.GaussianBlur(grey, (0, 0), sigma) for sigma in GAUSSIAN_SIGMAS]
    planes += [np.abs(cv2.filter2D(grey, -1, kernel, borderType=cv2.BORDER_REFLECT)) for kernel in KERNELS.values()]
    planes += [np.abs(cv2.filter2D(grey, -1, _gabor(theta, wavelength), borderType=cv2.BORDER_REFLECT))
               for theta in GABOR_ORIENTATIONS for wavelength in GABOR_WAVELENGTHS]
    rows = np.linspace(0.0, 1.0, image.shape[0], dtype=np.float32)[:, None]
    planes.append(np.broadcast_to(rows, grey.shape))
    return np.stack(planes, axis=-1).astype(np.float32)


def sample_pixels(features: np.ndarray, mask: np.ndarray, count: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random pixels (without replacement) of one frame, skipping IGNORE: ``(count, F)`` features and
    ``(count,)`` category ids."""
    valid = np.flatnonzero(mask.ravel() != labels.IGNORE)
    chosen = rng.choice(valid, size=min(count, valid.size), replace=False)
    return features.reshape(-1, features.shape[-1])[chosen], mask.ravel()[chosen]


def logistic_regression(features: np.ndarray, targets: np.ndarray, num_classes: int = labels.NUM_CATEGORIES,
                        epochs: int = 20, seed: int = 0, batch_size: int = 256,
                        learning_rate: float = 0.02) -> keras.Model:
    """Multinomial logistic regression fitted on ``features: (N, F)`` and ``targets: (N,)`` class ids: standardise
    each feature, then one softmax ``Dense`` layer (Adam, cross-entropy)."""
    features, targets = np.asarray(features, np.float32), np.asarray(targets)
    if features.ndim != 2 or targets.shape != features.shape[:1]:
        raise ValueError(f"features must be (N, F) and targets (N,), got {features.shape} and {targets.shape}")
    keras.utils.set_random_seed(seed)
    normalise = keras.layers.Normalization(name="standardise")
    normalise.adapt(features)
    inputs = keras.Input((features.shape[1],), name="features")
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="linear_scores")(normalise(inputs))
    model = keras.Model(inputs, outputs, name="logistic_regression")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")
    model.fit(features, targets, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True)
    return model


def baseline_predictor(model: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
    """A function ``(B, h, w, 3) float32 images in [0, 1] -> (B, h, w) uint8 categories`` (what
    :func:`seglib.train.evaluate` takes) that applies ``model`` to every pixel's features."""
    def predict(images: np.ndarray) -> np.ndarray:
        out = []
        for image in np.asarray(images):
            features = pixel_features(modelio.from_model_input(image))
            scores = model(features.reshape(-1, features.shape[-1]), training=False)
            out.append(np.argmax(np.asarray(scores), axis=-1).reshape(features.shape[:2]).astype(np.uint8))
        return np.stack(out)
    return predict
