"""Patches for the CNNs, cut on the fly from the scene by each point's row/col.

The scene is normalised per band and padded symmetrically once (about the
size of the scene itself); a batch of patches is cut by fancy indexing into a
sliding-window view, so N patches of p x p are never all in memory.
Arrays handed to Keras are channels-last: (N, p, p, bands).
"""

from __future__ import annotations

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
    """A ``tf.data.Dataset`` of (patches, labels[, sample weights]) batches, the patches cut inside TensorFlow.

    The padded scene is held once as a tensor; each batch gathers its windows from it in the graph
    (no Python per batch), so N patches of p x p are never all in memory. Class weights are given as
    per-sample weights, which Keras accepts for any dataset type. With ``shuffle`` the order changes
    every epoch (seeded).

    Args:
        padded: (rows + p - 1, cols + p - 1, bands) float32 from :func:`normalised_padded`.
        rows, cols: (N,) pixel positions in the unpadded scene (the patch centres).
        labels: (N,) int class indices.

    Returns:
        A dataset of batches: patches (n, p, p, bands) float32 channels-last, labels (n,) and, with
        ``class_weights``, weights (n,) float32.
    """
    import tensorflow as tf

    width, bands = padded.shape[1], padded.shape[2]
    flat = tf.constant(np.ascontiguousarray(padded, np.float32).reshape(-1, bands))
    dr, dc = np.mgrid[0:patch_size, 0:patch_size]
    offsets = tf.constant((dr * width + dc).ravel(), tf.int64)  # each window cell from its top-left corner
    start = np.asarray(rows, np.int64) * width + np.asarray(cols, np.int64)  # = the centre in the padded scene
    parts = [start, np.asarray(labels)]
    if class_weights:
        lut = np.zeros(int(max(class_weights)) + 1, np.float32)
        for k, w in class_weights.items():
            lut[k] = w
        parts.append(lut[np.asarray(labels)])
    data = tf.data.Dataset.from_tensor_slices(tuple(parts))
    if shuffle:
        data = data.shuffle(len(start), seed=seed, reshuffle_each_iteration=True)

    def cut(first, *rest):
        x = tf.reshape(tf.gather(flat, first[:, None] + offsets[None, :]), (-1, patch_size, patch_size, bands))
        return (x, *rest)

    return data.batch(batch_size).map(cut).prefetch(tf.data.AUTOTUNE)
