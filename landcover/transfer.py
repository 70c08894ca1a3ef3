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
                   learning_rate: float, epochs: int, batch_size: int, patience: int, deterministic: bool,
                   precision: str = "float32") -> BigEarthRun:
    """Train the study's CNN on the shards; score it on held-out patches (a seeded random split by patch)."""
    xs, y, where = bigearth.open_shards(folder, manifest)
    targets = np.asarray(manifest["classes"])
    multi = manifest["policy"] == "multi"
    target = y.astype(np.float32) if multi else np.searchsorted(targets, y)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test, n_val = max(1, round(test_fraction * len(y))), max(1, round(val_fraction * len(y)))
    test, val, train = np.sort(order[:n_test]), np.sort(order[n_test:n_test + n_val]), np.sort(order[n_test + n_val:])
    log.info("BigEarthNet patches: %d train, %d validation, %d test", train.size, val.size, test.size)
    models.seed_keras(seed, deterministic, precision)
    model = models.build_bigearth_cnn(xs[0].shape[-1], len(targets), multi_label=multi, learning_rate=learning_rate)
    weights = None
    if not multi:
        lut = np.zeros(len(targets), np.float32)  # classes absent from training weigh 0
        for k, w in models.balanced_class_weights(target[train]).items():
            lut[k] = w
        weights = lut[target]
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
    full.compile(steps_per_execution=models.STEPS_PER_EXECUTION, optimizer=keras.optimizers.Adam(1e-5),
                 loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    padded = patch_data.normalised_padded(scene, np.zeros(scene.shape[0]), np.ones(scene.shape[0]), p)
    train = patch_data.patch_dataset(padded, p, rows, cols, y, batch_size,
                                     class_weights=models.balanced_class_weights(y), shuffle=True)
    val = patch_data.patch_dataset(padded, p, val_rows, val_cols, y_val, batch_size)
    models.fit_keras(full, train, y, val, y_val, epochs=epochs, batch_size=batch_size, patience=epochs,
                     desc="fine-tuning")
    return full


@dataclass
class TransferResult:
    """Transfer to the AOI: scores of (a) and (b) on the held-out points, and model (b)."""

    test: np.ndarray
    score_a: dict
    score_b: dict
    pred_a: np.ndarray
    pred_b: np.ndarray
    label_b: str
    model_b: object
    classes_b: np.ndarray
    history_b: dict


def transfer_to_aoi(model, targets: np.ndarray, scene: np.ndarray, points: pd.DataFrame, side: np.ndarray,
                    scene_codes: np.ndarray, *, seed: int, train_size: int, epochs: int, fine_tune_epochs: int,
                    deterministic: bool) -> TransferResult:
    """Transfer a BigEarthNet CNN to the AOI and score it on the held-out test points.

    (a) the model as it is, on the 120 x 120 window around each point; (b) its
    convolutions frozen and a new head trained on ``train_size`` training points
    of the same split (optionally fine-tuned end to end for ``fine_tune_epochs``).

    Args:
        model: the trained BigEarthNet CNN; ``targets`` its class codes.
        scene: (bands, rows, cols) raw values.
        points: the points table (row, col, label).
        side: (N,) "train" / "val" / "test" / "unused" per point (the best patch CNN's split).
        scene_codes: the ground truth's class codes (for the scores).
    """
    import keras

    from landcover import splits

    if fine_tune_epochs > 0:  # fine-tuning changes the convolutions: on a copy, so every run starts from the same CNN
        original, model = model, keras.models.clone_model(model)
        model.set_weights(original.get_weights())
    rows, cols, codes = points["row"].to_numpy(), points["col"].to_numpy(), points["label"].to_numpy()
    rng = np.random.default_rng(seed)
    test = np.flatnonzero(side == "test")
    train = splits.training_subset(np.flatnonzero(side == "train"), train_size, rng)
    val = splits.training_subset(np.flatnonzero(side == "val"), max(1, train_size // 2), rng)
    all_codes = np.union1d(scene_codes, targets)
    base, head = models.split_at_flatten(model)
    f_test = aoi_features(base, scene, rows[test], cols[test])

    pred_a = np.asarray(targets)[np.asarray(head.predict(f_test, verbose=0)).argmax(axis=1)]
    score_a = evaluation.scores(codes[test], pred_a, all_codes)

    classes_b = np.unique(codes[train])
    y_train = np.searchsorted(classes_b, codes[train])
    # validation points of a class absent from training cannot be predicted: count them as class 0
    y_val = np.where(np.isin(codes[val], classes_b), np.searchsorted(classes_b, codes[val]).clip(0, len(classes_b) - 1), 0)
    new_head, history_b = train_new_head(
        aoi_features(base, scene, rows[train], cols[train]), y_train, aoi_features(base, scene, rows[val], cols[val]),
        y_val, len(classes_b), seed=seed, deterministic=deterministic, epochs=epochs)
    label_b = "(b) frozen convolutions, new head"
    if fine_tune_epochs > 0:
        model_b = fine_tune(base, new_head, scene, rows[train], cols[train], y_train, rows[val], cols[val], y_val,
                            epochs=fine_tune_epochs)
        f_test = aoi_features(base, scene, rows[test], cols[test])
        label_b += f", fine-tuned {fine_tune_epochs} epochs"
    else:
        model_b = keras.Model(base.input, new_head(base.output), name="bigearth_transfer")
    pred_b = classes_b[np.asarray(new_head.predict(f_test, verbose=0)).argmax(axis=1)]
    score_b = evaluation.scores(codes[test], pred_b, all_codes)
    return TransferResult(test, score_a, score_b, pred_a, pred_b, label_b, model_b, classes_b, history_b)
