"""Patches for the CNNs, cut on the fly from the scene by each point's row/col.

The scene is normalised per band and padded symmetrically once (about the
size of the scene itself); a batch of patches is cut by fancy indexing into a
sliding-window view, so N patches of p x p are never all in memory.
Arrays handed to Keras are channels-last: (N, p, p, bands).
"""

from __future__ import annotations

import math

import numpy as np


def band_normalisation(scene: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and standard deviation of the pixels at (rows, cols).

    Fitted on the training points only. Returns two (bands,) float64 arrays.
    """
    values = scene[:, rows, cols].astype(np.float64)
    return values.mean(axis=1), np.maximum(values.std(axis=1), 1e-6)


def normalised_padded(scene: np.ndarray, mean, std, patch_size: int) -> np.ndarray:
    """The scene normalised per band, channels-last, padded symmetrically by p // 2.

    Args:
        scene: (bands, rows, cols) raw values.
        mean, std: (bands,) from :func:`band_normalisation`.
        patch_size: odd patch side p.

    Returns:
        (rows + p - 1, cols + p - 1, bands) float32.
    """
    half = patch_size // 2
    norm = (np.moveaxis(scene, 0, -1).astype(np.float32) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.pad(norm, ((half, half), (half, half), (0, 0)), mode="symmetric")


def windows(padded: np.ndarray, patch_size: int) -> np.ndarray:
    """Sliding-window view (rows, cols, p, p, bands) of a padded scene: [r, c] is the patch centred on (r, c)."""
    return np.lib.stride_tricks.sliding_window_view(padded, (patch_size, patch_size), axis=(0, 1)).transpose(0, 1, 3, 4, 2)


def patch_dataset(padded: np.ndarray, patch_size: int, rows: np.ndarray, cols: np.ndarray, labels: np.ndarray,
                  batch_size: int, *, class_weights: dict[int, float] | None = None, shuffle: bool = False,
                  seed: int = 0):
    """A Keras ``PyDataset`` yielding (patches, labels[, sample weights]) batches.

    Class weights are given as per-sample weights, which Keras accepts for any
    dataset type. With ``shuffle`` the order changes every epoch (seeded).
    """
    import keras

    view = windows(padded, patch_size)

    class Patches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(rows.size) if shuffle else np.arange(rows.size)
            lut = None
            if class_weights:
                lut = np.zeros(int(max(class_weights)) + 1, np.float32)
                for k, w in class_weights.items():
                    lut[k] = w
            self.weights = lut

        def __len__(self) -> int:
            return math.ceil(rows.size / batch_size)

        def __getitem__(self, i: int):
            idx = self.order[i * batch_size:(i + 1) * batch_size]
            x = np.ascontiguousarray(view[rows[idx], cols[idx]])
            y = labels[idx]
            return (x, y) if self.weights is None else (x, y, self.weights[y])

        def on_epoch_end(self) -> None:
            if shuffle:
                self.order = self.rng.permutation(rows.size)

    return Patches()
