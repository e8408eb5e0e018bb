"""Checks of chapter 9 (training): the warm-up and cosine learning-rate schedule, and what early stopping keeps.

The answer keys are what :func:`seglib.train.fit` uses: :func:`seglib.train.learning_rate_schedule` and Keras's
``EarlyStopping`` callback configured as ``fit`` configures it (monitor the validation mean IoU, mode ``max``,
restore the best weights), driven epoch by epoch on a list of scores. Nothing is trained.
"""

from __future__ import annotations

import math

import numpy as np

from seglib.exercises import Wrong, expect


def _keras_rate(peak: float, total_steps: int, step: int) -> float:
    from seglib import train

    return float(train.learning_rate_schedule(peak, total_steps)(step))


def _rate_hint(step: int, warmup: int, total_steps: int, peak: float, got: float) -> str:
    """What a wrong rate at ``step`` most likely means."""
    if warmup == 0 and step == 0:
        return " (fewer than 10 steps: total_steps // 10 = 0, no warm-up, the cosine starts at the peak)"
    if step == 0:
        return " (the warm-up starts from peak / 10, not from 0)" if abs(got) < 1e-12 else " (step 0: peak / 10)"
    if step == warmup:
        return f" (after the warm-up of total_steps // 10 = {warmup} steps the rate is the peak)"
    if step >= total_steps:
        return " (the cosine reaches 0 at the last step)"
    if step < warmup:
        return " (the warm-up is linear from peak / 10 to the peak over total_steps // 10 steps)"
    return (f" (the cosine decays over the {max(total_steps - warmup, 1)} steps after the warm-up, "
            "total_steps - total_steps // 10, from the peak to 0)")


def check_learning_rate(learning_rate) -> None:
    """09.1: ``learning_rate(step: int, peak: float, total_steps: int) -> float``, as train.learning_rate_schedule."""
    rng = np.random.default_rng(9)
    cases = [(0.003, 480, [0, 24, 48, 264, 479, 480]),  # the ci profile: 40 steps x 12 epochs, peak 0.003
             (1.0, 100, [0, 5, 10, 55, 100]),
             (1.0, 105, [0, 9, 10, 11, 57, 104, 105]),  # warm-up 10 steps, decay over 95
             (0.5, 7, [0, 1, 3, 7]),  # fewer than 10 steps: no warm-up, the cosine starts at the peak
             (2e-3, 1, [0, 1])]
    total = int(rng.integers(200, 2000))
    cases.append((float(rng.uniform(1e-4, 1e-2)), total, sorted(set(rng.integers(0, total + 1, 12).tolist()))))
    for peak, total_steps, steps in cases:
        warmup = total_steps // 10
        for step in steps:
            got = learning_rate(int(step), peak, total_steps)
            try:
                value = float(got)
            except (TypeError, ValueError):
                raise Wrong(f"learning_rate({step}, {peak:g}, {total_steps}) should return a number, "
                            f"got {type(got).__name__}") from None
            expected = _keras_rate(peak, total_steps, int(step))
            expect(math.isfinite(value) and abs(value - expected) <= 1e-5 * peak,
                   f"learning_rate({step}, {peak:g}, {total_steps}) is {value:.6g}, expected {expected:.6g}"
                   + _rate_hint(int(step), warmup, total_steps, peak, value))


class _NoWeights:
    """The least a model must offer EarlyStopping: weights to keep (none here) and a flag to stop."""

    stop_training = False

    def get_weights(self) -> list:
        return []

    def set_weights(self, weights) -> None:
        pass


def keras_early_stopping(scores, patience: int) -> tuple[int, int]:
    """``(epochs run, best epoch)``, both counted from 1, of a run whose validation mean IoU per epoch would be
    ``scores``, under Keras's ``EarlyStopping`` as :func:`seglib.train.fit` configures it."""
    import keras

    callback = keras.callbacks.EarlyStopping("val_mean_iou", mode="max", patience=patience,
                                             restore_best_weights=True)
    model = _NoWeights()
    callback.set_model(model)
    callback.on_train_begin()
    epochs = 0
    for epoch, score in enumerate(scores):
        callback.on_epoch_end(epoch, {"val_mean_iou": float(score)})
        epochs = epoch + 1
        if model.stop_training:
            break
    return epochs, callback.best_epoch + 1


def check_early_stopping(early_stopping) -> None:
    """09.2: ``early_stopping(scores: list[float], patience: int) -> (epochs_run, best_epoch)``, both from 1."""
    rng = np.random.default_rng(90)
    cases = [("a run that stops", [0.10, 0.20, 0.30, 0.25, 0.20, 0.20, 0.30, 0.10], 2),
             ("a run still improving at its last epoch", [0.10, 0.20, 0.30], 10),
             ("a tie with the best score (not an improvement)", [0.5, 0.6, 0.6, 0.55], 3),
             ("the best score first", [0.9, 0.1, 0.2, 0.3, 0.4], 2),
             ("patience 1", [0.2, 0.3, 0.3, 0.4], 1),
             ("chapter 9's ci run, seed 0 (patience 10)",
              [0.199, 0.203, 0.135, 0.302, 0.442, 0.514, 0.422, 0.543, 0.596, 0.611, 0.619, 0.625], 10)]
    for count in (30, 40):
        noisy = np.round(np.minimum(np.linspace(0.1, 0.7, count), 0.55) + rng.normal(0, 0.03, count), 3)
        cases.append((f"a noisy random curve of {count} epochs", noisy.tolist(), int(rng.integers(2, 8))))
    for name, scores, patience in cases:
        got = early_stopping(list(scores), patience)
        expect(isinstance(got, tuple) and len(got) == 2,
               f"early_stopping should return a tuple (epochs_run, best_epoch), got {got!r:.60}")
        epochs, best = keras_early_stopping(scores, patience)
        run, kept = got
        where = f"{name} (patience {patience}, scores {', '.join(f'{s:g}' for s in scores)})"
        expect(isinstance(run, (int, np.integer)) and isinstance(kept, (int, np.integer)),
               f"both numbers should be integers, got {type(run).__name__} and {type(kept).__name__}")
        if (run, kept) == (epochs - 1, best - 1):
            raise Wrong(f"{where}: you return ({run}, {kept}), expected ({epochs}, {best}): count epochs from 1, "
                        "as Keras prints them")
        expect(1 <= kept <= len(scores), f"{where}: the best epoch {kept} is not one of the epochs 1..{len(scores)}")
        expect(kept == best,
               f"{where}: the best epoch is {kept}, expected {best}"
               + (" (a score equal to the best is not an improvement: the first best epoch is kept)"
                  if scores[kept - 1] == scores[best - 1] else ""))
        expect(run == epochs,
               f"{where}: the run lasts {run} epochs, expected {epochs} (it stops after `patience` epochs in a row "
               "without a better score than the best so far, or at the last epoch)")


CHECKS = {"09.1": check_learning_rate, "09.2": check_early_stopping}
