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


def run_pixel_classifier(kind: str, x: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray,
                         test: np.ndarray, n_classes: int, *, seed: int, rf_trees: int, learning_rate: float,
                         epochs: int, batch_size: int, patience: int, deterministic: bool,
                         desc: str = "") -> RunResult:
    """Train ``kind`` ("rf" or "mlp") on rows ``train`` of x and score it on ``val`` and ``test``.

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
    elif kind == "mlp":
        models.seed_keras(seed, deterministic)
        model = models.build_mlp(x.shape[1], n_classes, learning_rate)
        history = models.fit_keras(model, xs[train], y[train], xs[val], y[val], epochs=epochs,
                                   batch_size=batch_size, patience=patience, desc=desc or "MLP")
        pred_val = model.predict(xs[val], batch_size=4096, verbose=0).argmax(axis=1)
        pred_test = model.predict(xs[test], batch_size=4096, verbose=0).argmax(axis=1)
    else:
        raise ValueError(f"unknown classifier kind {kind!r}")
    return RunResult(evaluation.scores(y[val], pred_val, labels), evaluation.scores(y[test], pred_test, labels),
                     pred_test, history)
