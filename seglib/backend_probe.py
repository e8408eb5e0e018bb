"""What each Keras backend can run of the book: every tool tried with a tiny U-Net, in a fresh process per backend.

:func:`probe` tries each of :data:`FEATURES` in this process; :func:`probe_backend` runs it on another backend
(:func:`seglib.backends.run_on_backend`). The appendix on backends tabulates the outcome.
"""

from __future__ import annotations

import keras

from seglib import backends

__all__ = ["FEATURES", "probe", "probe_backend"]


#: What :func:`probe` tries on a backend: (feature, the call) - the book's page on backends tabulates the outcome.
FEATURES = (
    ("models", "models.unet(...)"),
    ("losses and metrics", "losses.CombinedLoss(), keras_metrics.MeanIoU(8)"),
    ("a training step", "model.train_on_batch(...)"),
    ("PyDataset pipeline", "data.SegmentationSequence(...)"),
    ("tf.data pipeline", "data.tf_dataset(...)"),
    ("TFRecords", "data.write_tfrecords(...)"),
    ("TFLite export", "export.to_tflite(...)"),
    ("serving (web app)", "predict.Predictor(...)"),
)


def probe(root: str, folder: str) -> dict:
    """Try each of :data:`FEATURES` on this process's backend with a tiny model and ``root``'s val split, writing
    files under ``folder``; returns ``{"backend": ..., "features": {feature: "works" or the error}, "loss": ...}``
    (the combined loss of fixed random predictions and targets: the same number on every backend)."""
    import numpy as np

    from seglib import data, keras_metrics, labels, losses, models

    rng = np.random.default_rng(0)
    images = rng.random((2, 32, 64, 3), dtype=np.float32)
    targets = rng.integers(0, labels.NUM_CATEGORIES, (2, 32, 64)).astype(np.uint8)
    # fixed predictions (a model's random initial weights differ between backends' random generators)
    predictions = rng.random((2, 32, 64, labels.NUM_CATEGORIES)).astype(np.float32) + 0.05
    predictions /= predictions.sum(axis=-1, keepdims=True)
    found, state = {}, {}

    def build():
        keras.utils.set_random_seed(0)
        state["model"] = models.unet((32, 64, 3), base_filters=4, depth=2)

    def score():
        state["loss"] = float(losses.CombinedLoss()(targets, predictions))
        keras_metrics.MeanIoU(labels.NUM_CATEGORIES).update_state(targets, state["model"](images))

    def step():
        state["model"].compile(optimizer="adam", loss=losses.CombinedLoss())
        state["model"].train_on_batch(images, targets)
        state["model"].save(f"{folder}/tiny.keras")

    def tflite():
        from seglib import export

        export.to_tflite(f"{folder}/tiny.keras", f"{folder}/tiny.tflite")

    def serve():
        from seglib import predict

        predict.Predictor(f"{folder}/tiny.keras", image_size=(32, 64))

    calls = [build, score, step, lambda: data.SegmentationSequence(root, "val", image_size=(32, 64))[0],
             lambda: next(iter(data.tf_dataset(root, "val", image_size=(32, 64)))),
             lambda: data.write_tfrecords(root, "val", f"{folder}/records"), tflite, serve]
    for (feature, _), call in zip(FEATURES, calls):
        try:
            call()
            found[feature] = "works"
        except backends.BackendError as error:
            found[feature] = f"BackendError: {error}"
    return {"backend": backends.describe(), "features": found, "loss": state.get("loss")}


def probe_backend(backend_name: str, root: str, folder: str) -> dict | None:
    """:func:`probe` run on ``backend_name`` in a fresh process; None when that backend's framework is not
    installed here."""
    import os

    os.makedirs(folder, exist_ok=True)
    code = f"import json\nfrom seglib import backend_probe\nprint(json.dumps(backend_probe.probe({str(root)!r}, {str(folder)!r})))"
    return backends.run_on_backend(backend_name, code, 600)
