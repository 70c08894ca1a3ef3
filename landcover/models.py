"""Classifiers: the random-forest baseline and the study's Keras networks.

Keras is imported inside the functions, so stages that train no network do
not pay for loading TensorFlow. Keras inputs are channels-last.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.utils.class_weight import compute_class_weight
from tqdm import tqdm

log = logging.getLogger(__name__)


def random_forest(n_trees: int, seed: int) -> RandomForestClassifier:
    """The baseline: a seeded random forest (same seed, same forest, any n_jobs)."""
    return RandomForestClassifier(n_estimators=n_trees, random_state=seed, n_jobs=-1)


def seed_keras(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and TensorFlow; optionally make TensorFlow's ops deterministic."""
    # TensorFlow 2.2x logs a harmless tf.data attribute mismatch at C++ "error" level on every fit
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    keras.backend.clear_session()  # a fresh graph per model: no retracing warnings, no growth
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def build_mlp(n_features: int, n_classes: int, learning_rate: float):
    """The study's MLP: Dense 400-300-200 (ReLU, dropout 0.2), softmax;
    SGD (momentum 0.9, Nesterov) on sparse categorical cross-entropy.

    Args:
        n_features: width of the (N, n_features) float input.
        n_classes: number of output classes (labels are 0..n_classes-1).
    """
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input(shape=(n_features,)),
        layers.Dense(400, activation="relu"), layers.Dropout(0.2),
        layers.Dense(300, activation="relu"), layers.Dropout(0.2),
        layers.Dense(200, activation="relu"), layers.Dropout(0.2),
        layers.Dense(n_classes, activation="softmax"),
    ], name="mlp")
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9, nesterov=True),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def balanced_class_weights(y: np.ndarray) -> dict[int, float]:
    """``{class index: weight}`` inversely proportional to class frequency (scikit-learn's "balanced")."""
    present = np.unique(y)
    weights = compute_class_weight("balanced", classes=present, y=y)
    return {int(c): float(w) for c, w in zip(present, weights)}


def _progress_callback(epochs: int, desc: str):
    import keras

    class Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=epochs, desc=desc, unit="epoch", leave=False)

        def on_epoch_end(self, epoch, logs=None):
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in (logs or {}).items() if "acc" in k})

        def on_train_end(self, logs=None):
            self.bar.close()

    return Progress()


def fit_keras(model, x_train, y_train: np.ndarray, x_val, y_val: np.ndarray, *, epochs: int, batch_size: int,
              patience: int, desc: str = "training") -> dict[str, list[float]]:
    """Train with balanced class weights and early stopping on validation accuracy.

    The weights of the best validation epoch are restored.

    Args:
        x_train, x_val: arrays (N, ...) or Keras ``PyDataset`` objects (then
            ``y_*`` are only used for the class weights / ignored).
        y_train, y_val: (N,) int class indices.

    Returns:
        The history (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` per epoch).
    """
    import keras

    stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience, restore_best_weights=True)
    fit_args: dict[str, Any] = {}
    if isinstance(x_train, np.ndarray):
        fit_args = {"y": y_train, "batch_size": batch_size, "shuffle": True}
        validation = (x_val, y_val)
    else:
        validation = x_val
    history = model.fit(x_train, epochs=epochs, validation_data=validation, class_weight=balanced_class_weights(y_train),
                        callbacks=[stop, _progress_callback(epochs, desc)], verbose=0, **fit_args)
    best = int(np.argmax(history.history["val_accuracy"]))
    log.info("%s: %d epochs, best validation accuracy %.3f at epoch %d", desc, len(history.history["loss"]),
             history.history["val_accuracy"][best], best + 1)
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}
