"""Whole-scene maps of the per-pixel experiment's classifiers: the random forest and the MLP-Pixel.

test_segment.py saves the first run of each (per split, at the largest
training size) with its features (bands, spectral indices) and the
standardisation fitted on its training points. :class:`PixelClassifier` wraps
such a model so that it answers like a 1 x 1 patch CNN: ``predict_on_batch``
takes (N, 1, 1, bands) raw band values (channels-last) and returns (N, classes)
probabilities. Whole-scene prediction then takes the patch CNN's path with a
halo of 0 (patch size 1; the "normalisation" of its metadata is the identity,
so the windows carry the raw values the features need): tile by tile in this
process, or chunk by chunk on Dask with the model loaded once per worker.

Files (MODELS_DIR): ``pixel_random_forest_<split>.joblib`` (scikit-learn,
joblib) or ``pixel_mlp_<split>.keras``, each with a ``.json`` of metadata and
``_points.parquet`` (each point's side in the split) beside it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

from landcover import features
from landcover.files import atomic_write

log = logging.getLogger(__name__)

KINDS = {"rf": ("pixel_random_forest", ".joblib"), "mlp": ("pixel_mlp", ".keras")}


class PixelClassifier:
    """A fitted forest or MLP with its features, answering like a 1 x 1 patch CNN."""

    def __init__(self, estimator, kind: str, bands: list[str], indices: list[str], mean, scale, n_classes: int):
        self.estimator, self.kind, self.bands, self.indices = estimator, kind, list(bands), list(indices)
        self.scaler = StandardScaler()  # the fitted standardisation, from its saved statistics
        self.scaler.mean_, self.scaler.scale_ = np.asarray(mean, np.float64), np.asarray(scale, np.float64)
        self.scaler.var_, self.scaler.n_features_in_ = self.scaler.scale_ ** 2, len(self.scaler.mean_)
        self.output_shape = (None, int(n_classes))

    def features(self, pixels: np.ndarray) -> np.ndarray:
        """(N, bands) raw values -> (N, features) standardised float32, as in training."""
        x, _ = features.pixel_features(pd.DataFrame(pixels, columns=self.bands), self.bands, self.indices)
        return self.scaler.transform(x).astype(np.float32)  # the training features' arithmetic, to the last bit

    def predict_on_batch(self, patches: np.ndarray) -> np.ndarray:
        """(N, 1, 1, bands) raw band values -> (N, classes) float32 probabilities."""
        x = self.features(np.asarray(patches, np.float32).reshape(len(patches), -1))
        if self.kind == "rf":
            probs = np.zeros((len(x), self.output_shape[1]), np.float32)
            probs[:, self.estimator.classes_] = self.estimator.predict_proba(x)  # classes seen in training
            return probs
        return np.asarray(self.estimator.predict_on_batch(x), np.float32)


def model_path(models_dir: Path, kind: str, split: str) -> Path:
    """Where test_segment.py saves the ``kind`` ("rf", "mlp") classifier of ``split``."""
    stem, suffix = KINDS[kind]
    return Path(models_dir) / f"{stem}_{split}{suffix}"


def save(path: Path, kind: str, estimator, scaler, bands: list[str], indices: list[str], classes_json: list[dict],
         extra: dict) -> None:
    """Save a fitted classifier (joblib or .keras), its metadata (.json) beside it, atomically."""
    path = Path(path)
    if kind == "rf":
        import joblib

        with atomic_write(path) as tmp:
            joblib.dump(estimator, tmp, compress=3)
    else:
        with atomic_write(path) as tmp:
            estimator.save(tmp)
    meta = {"kind": f"pixel_{kind}", "patch_size": 1, "padding": "same", "bands": list(bands), "indices": list(indices),
            "mean": [0.0] * len(bands), "std": [1.0] * len(bands),  # the windows carry raw values
            "feature_mean": scaler.mean_.tolist(), "feature_scale": scaler.scale_.tolist(),
            "classes": classes_json, **extra}
    with atomic_write(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    log.info("wrote %s and its metadata", path)


def is_pixel_model(meta: dict) -> bool:
    return str(meta.get("kind", "")).startswith("pixel_")


def load(path: Path, meta: dict, threads: int | None = None) -> PixelClassifier:
    """The :class:`PixelClassifier` saved at ``path`` with ``meta`` (a forest on ``threads``; None: all cores)."""
    kind = meta["kind"].removeprefix("pixel_")
    if kind == "rf":
        import joblib

        estimator = joblib.load(path)
        if threads is not None:  # on a Dask worker, one: the cluster's parallelism is its workers
            estimator.set_params(n_jobs=threads)
    else:
        import keras

        estimator = keras.models.load_model(path)
    return PixelClassifier(estimator, kind, meta["bands"], meta["indices"], meta["feature_mean"],
                           meta["feature_scale"], len(meta["classes"]))
