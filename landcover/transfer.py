"""Training on BigEarthNet and transfer to the AOI."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from landcover import bigearth, evaluation, models, patch_data

log = logging.getLogger(__name__)


@dataclass
class BigEarthRun:
    model: object
    history: dict
    test_scores: dict
    per_class: pd.DataFrame


def train_bigearth(folder: Path, manifest: dict, *, seed: int, val_fraction: float, test_fraction: float,
                   learning_rate: float, epochs: int, batch_size: int, patience: int, deterministic: bool) -> BigEarthRun:
    """Train the study's CNN on the shards; score it on held-out patches (a seeded random split by patch)."""
    xs, y, where = bigearth.open_shards(folder, manifest)
    targets = np.asarray(manifest["classes"])
    multi = manifest["policy"] == "multi"
    target = y.astype(np.float32) if multi else np.searchsorted(targets, y)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test, n_val = max(1, round(test_fraction * len(y))), max(1, round(val_fraction * len(y)))
    test, val, train = np.sort(order[:n_test]), np.sort(order[n_test:n_test + n_val]), np.sort(order[n_test + n_val:])
    log.info("BigEarthNet patches: %d train, %d validation, %d test", train.size, val.size, test.size)
    models.seed_keras(seed, deterministic)
    model = models.build_bigearth_cnn(xs[0].shape[-1], len(targets), multi_label=multi, learning_rate=learning_rate)
    weights = None
    if not multi:
        lut = models.balanced_class_weights(target[train])
        weights = np.array([lut.get(int(t), 0.0) for t in target], np.float32)
    history = models.fit_keras(
        model, bigearth.shard_dataset(xs, where, target, train, batch_size, sample_weights=weights, shuffle=True, seed=seed),
        target[train], bigearth.shard_dataset(xs, where, target, val, batch_size), target[val],
        epochs=epochs, batch_size=batch_size, patience=patience, desc="BigEarthNet CNN")
    scores_ = model.predict(bigearth.shard_dataset(xs, where, target, test, batch_size), verbose=0)
    names = [str(c) for c in targets]
    if multi:
        pred = (scores_ >= 0.5).astype(int)
        truth = target[test].astype(int)
        test_scores = {"micro_f1": float(f1_score(truth, pred, average="micro", zero_division=0)),
                       "macro_f1": float(f1_score(truth, pred, average="macro", zero_division=0))}
        per_class = pd.DataFrame({"code": targets, "f1": f1_score(truth, pred, average=None, zero_division=0),
                                  "support": truth.sum(axis=0)})
    else:
        pred = scores_.argmax(axis=1)
        test_scores = evaluation.scores(target[test], pred, np.arange(len(targets)))
        per_class = evaluation.per_class(target[test], pred, np.arange(len(targets)), names).assign(code=targets)
    return BigEarthRun(model, history, {**test_scores, "patches": int(test.size)}, per_class)


def aoi_features(base, scene: np.ndarray, rows: np.ndarray, cols: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Flat convolutional features of 120 x 120 windows (symmetric padding) around AOI pixels.

    The BigEarthNet CNN rescales raw values itself, so the scene is not normalised.
    """
    p = base.input_shape[1]
    padded = patch_data.normalised_padded(scene, np.zeros(scene.shape[0]), np.ones(scene.shape[0]), p)
    data = patch_data.patch_dataset(padded, p, rows, cols, np.zeros(rows.size, np.int64), batch_size)
    return base.predict(data, verbose=0)


def train_new_head(f_train: np.ndarray, y_train: np.ndarray, f_val: np.ndarray, y_val: np.ndarray, n_classes: int, *,
                   seed: int, deterministic: bool, epochs: int, learning_rate: float = 5e-4):
    """Transfer (b): a new head trained on frozen features of AOI patches."""
    models.seed_keras(seed, deterministic)
    head = models.build_transfer_head(f_train.shape[1], n_classes, learning_rate)
    history = models.fit_keras(head, f_train, y_train, f_val, y_val, epochs=epochs, batch_size=64,
                               patience=max(3, epochs // 5), desc="transfer head")
    return head, history


def fine_tune(base, head, scene: np.ndarray, rows: np.ndarray, cols: np.ndarray, y: np.ndarray, val_rows: np.ndarray,
              val_cols: np.ndarray, y_val: np.ndarray, *, epochs: int, batch_size: int = 32):
    """Unfreeze the convolutions and train base + new head end to end at a low learning rate."""
    import keras

    p = base.input_shape[1]
    full = keras.Model(base.input, head(base.output), name="bigearth_transfer")
    base.trainable = True
    full.compile(optimizer=keras.optimizers.Adam(1e-5), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    padded = patch_data.normalised_padded(scene, np.zeros(scene.shape[0]), np.ones(scene.shape[0]), p)
    train = patch_data.patch_dataset(padded, p, rows, cols, y, batch_size,
                                     class_weights=models.balanced_class_weights(y), shuffle=True)
    val = patch_data.patch_dataset(padded, p, val_rows, val_cols, y_val, batch_size)
    models.fit_keras(full, train, y, val, y_val, epochs=epochs, batch_size=batch_size, patience=epochs,
                     desc="fine-tuning")
    return full
