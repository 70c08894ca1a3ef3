"""One classifier run of the per-pixel experiment: scale, fit, predict, score."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from landcover import evaluation, features, models


@dataclass
class RunResult:
    """Scores on validation and test, the test predictions, and the training history."""

    val: dict[str, float]
    test: dict[str, float]
    test_pred: np.ndarray
    history: dict[str, list[float]] = field(default_factory=dict)
    model: object = None  # the fitted classifier and the standardisation of its features
    scaler: object = None


def run_pixel_classifier(kind: str, x: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray,
                         test: np.ndarray, n_classes: int, *, seed: int, rf_trees: int, learning_rate: float,
                         epochs: int, batch_size: int, patience: int | None, deterministic: bool,
                         decay: float = 0.0, precision: str = "float32", desc: str = "") -> RunResult:
    """Train ``kind`` on rows ``train`` of x and score it on ``val`` and ``test``.

    Kinds: ``"rf"`` (a random forest, a normal classifier), ``"rf_onehot"``
    (the study's forest, fitted on the one-hot label matrix and scored by
    exact match of the predicted row: a pixel where no class, or several, get
    a majority is predicted as -1, wrong for every class), ``"mlp"``.
    Features are standardised with statistics of the training rows only.

    Args:
        x: (N, features) float32.
        y: (N,) int class indices 0..n_classes-1.
        train, val, test: row indices.
    """
    scaler = features.fit_scaler(x[train])
    xs = scaler.transform(x).astype(np.float32)
    labels = np.arange(n_classes)
    if kind == "rf":
        model = models.random_forest(rf_trees, seed).fit(xs[train], y[train])
        pred_val, pred_test = model.predict(xs[val]), model.predict(xs[test])
        history: dict[str, list[float]] = {}
    elif kind == "rf_onehot":
        model = models.fit_onehot_forest(xs[train], y[train], n_classes, rf_trees, seed)
        pred_val = models.onehot_decision(model.predict(xs[val]))
        pred_test = models.onehot_decision(model.predict(xs[test]))
        history = {}
    elif kind == "mlp":
        models.seed_keras(seed, deterministic, precision)
        model = models.build_mlp(x.shape[1], n_classes, learning_rate, decay)
        history = models.fit_keras(model, xs[train], y[train], xs[val], y[val], epochs=epochs,
                                   batch_size=batch_size, patience=patience, desc=desc or "MLP")
        pred_val = model.predict(xs[val], batch_size=4096, verbose=0).argmax(axis=1)
        pred_test = model.predict(xs[test], batch_size=4096, verbose=0).argmax(axis=1)
    else:
        raise ValueError(f"unknown classifier kind {kind!r}")
    return RunResult(evaluation.scores(y[val], pred_val, labels), evaluation.scores(y[test], pred_test, labels),
                     pred_test, history, model, scaler)


@dataclass
class PatchRun:
    """A trained patch CNN with its normalisation and results."""

    model: object
    mean: np.ndarray
    std: np.ndarray
    result: RunResult


def run_patch_cnn(scene: np.ndarray, rows: np.ndarray, cols: np.ndarray, y: np.ndarray, train: np.ndarray,
                  val: np.ndarray, test: np.ndarray, n_classes: int, patch_size: int, *, padding: str, seed: int,
                  learning_rate: float, epochs: int, batch_size: int, patience: int | None, deterministic: bool,
                  init: str = "glorot_uniform", precision: str = "float32", desc: str = "", min_epochs: int = 0
                  ) -> PatchRun:
    """Train the patch CNN on patches cut on the fly around the training points.

    Per-band normalisation is fitted on the training points only; balanced
    class weights; early stopping on validation accuracy with the best weights kept.

    Args:
        scene: (bands, rows, cols) raw values.
        rows, cols: (N,) pixel positions of all points.
        y: (N,) class indices.
        train, val, test: indices into the points.
    """
    from landcover import patch_data

    models.seed_keras(seed, deterministic, precision)
    mean, std = patch_data.band_normalisation(scene, rows[train], cols[train])
    padded = patch_data.normalised_padded(scene, mean, std, patch_size)

    def data(index: np.ndarray, **kwargs):
        return patch_data.patch_dataset(padded, patch_size, rows[index], cols[index], y[index], batch_size, **kwargs)

    model = models.build_patch_cnn(patch_size, scene.shape[0], n_classes, padding=padding, learning_rate=learning_rate,
                                   init=init)
    history = models.fit_keras(
        model, data(train, class_weights=models.balanced_class_weights(y[train]), shuffle=True, seed=seed),
        y[train], data(val), y[val], epochs=epochs, batch_size=batch_size, patience=patience,
        desc=desc or f"CNN {patch_size}x{patch_size}", min_epochs=min_epochs)
    pred_val = model.predict(data(val), verbose=0).argmax(axis=1)
    pred_test = model.predict(data(test), verbose=0).argmax(axis=1)
    labels = np.arange(n_classes)
    result = RunResult(evaluation.scores(y[val], pred_val, labels), evaluation.scores(y[test], pred_test, labels),
                       pred_test, history)
    return PatchRun(model, mean, std, result)
