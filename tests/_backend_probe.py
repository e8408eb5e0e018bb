"""Computed once per Keras backend by tests/test_backends.py (a subprocess each, since the backend is fixed when
Keras is imported): the same losses and metric on fixed inputs, and one training step of the same U-Net from the
same weights. Writes the numbers to the .npz file named by argv[1]; argv[2] is the weights file to start from
(written first by the TensorFlow run)."""

import sys
from pathlib import Path

import keras
import numpy as np

from seglib import keras_metrics, labels, losses, models

out, weights = Path(sys.argv[1]), Path(sys.argv[2])
rng = np.random.default_rng(7)
images = rng.random((4, 32, 64, 3), dtype=np.float32)
targets = rng.integers(0, labels.NUM_CATEGORIES, (4, 32, 64)).astype(np.uint8)
targets[0, :4] = labels.IGNORE
probabilities = rng.random((4, 32, 64, labels.NUM_CATEGORIES)).astype(np.float32) + 0.05
probabilities /= probabilities.sum(-1, keepdims=True)

found = {f"loss_{name}": float(loss(targets, probabilities)) for name, loss in (
    ("cross_entropy", losses.CrossEntropyLoss()), ("dice", losses.DiceLoss()),
    ("combined", losses.CombinedLoss(dice_weight=3.0)))}
mean_iou = keras_metrics.MeanIoU(labels.NUM_CATEGORIES)
mean_iou.update_state(targets, probabilities)
found["mean_iou"] = float(mean_iou.result())

model = models.unet((32, 64, 3), base_filters=4, depth=2)
if weights.exists():
    model.load_weights(weights)
else:
    model.save_weights(weights)
model.compile(optimizer=keras.optimizers.SGD(0.1), loss=losses.CombinedLoss())
found["step_loss"] = float(np.asarray(model.train_on_batch(images, targets)))
found["after_step"] = np.asarray(model.predict_on_batch(images))
found["backend"] = keras.backend.backend()
np.savez(out, **found)
