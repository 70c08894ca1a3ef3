"""Whole-scene prediction with a patch CNN, tile by tile, in large batches.

Every pixel of the scene is classified from the p x p window centred on it,
with symmetric padding at the edges, exactly as per-patch prediction of that
pixel's patch. Memory is bounded by the tile, not the scene.
"""

from __future__ import annotations

import logging

import numpy as np
from tqdm import tqdm

from landcover import patch_data

log = logging.getLogger(__name__)


def predict_windows(model, padded: np.ndarray, patch_size: int, valid: np.ndarray, *, batch_size: int = 2048,
                    tile_mb: float = 256) -> np.ndarray:
    """Per-patch prediction of every valid pixel: windows cut tile by tile, large batches.

    Args:
        model: a patch CNN taking (N, p, p, bands).
        padded: (rows + p - 1, cols + p - 1, bands) from :func:`patch_data.normalised_padded`.
        valid: (rows, cols) bool; other pixels are not predicted.
        batch_size: patches per ``predict_on_batch`` call.
        tile_mb: memory for the patches cut at once.

    Returns:
        (rows, cols, classes) float32 probabilities (0 where not valid).
    """
    view = patch_data.windows(padded, patch_size)
    n_rows, n_cols = valid.shape
    n_classes = model.output_shape[-1]
    probs = np.zeros((n_rows, n_cols, n_classes), np.float32)
    per_patch = patch_size * patch_size * padded.shape[-1] * 4
    chunk = max(batch_size, int(tile_mb * 2**20 // per_patch) // batch_size * batch_size)
    rr, cc = np.nonzero(valid)
    for start in tqdm(range(0, rr.size, chunk), desc=f"predicting {patch_size}x{patch_size} windows", unit="tile",
                      disable=None):
        r, c = rr[start:start + chunk], cc[start:start + chunk]
        patches = np.ascontiguousarray(view[r, c])
        out = np.concatenate([np.asarray(model.predict_on_batch(patches[i:i + batch_size]))
                              for i in range(0, len(patches), batch_size)])
        probs[r, c] = out
    return probs


def predict_fully_convolutional(fcn, padded: np.ndarray, patch_size: int, valid: np.ndarray, *,
                                tile_mb: float = 256) -> np.ndarray:
    """Whole-scene prediction with a fully convolutional network, one pass per tile of rows.

    Args:
        fcn: from :func:`landcover.models.fully_convolutional`.
        padded: as for :func:`predict_windows`.
        valid: (rows, cols) bool; probabilities are zeroed elsewhere.
        tile_mb: rough memory for one tile's activations.

    Returns:
        (rows, cols, classes) float32 probabilities.
    """
    n_rows, n_cols = valid.shape
    widest = max(layer.output.shape[-1] for layer in fcn.layers[1:])
    tile_rows = max(1, int(tile_mb * 2**20 // (4 * widest * (n_cols + patch_size) * 2)))
    probs = np.zeros((n_rows, n_cols, fcn.output_shape[-1]), np.float32)
    for r0 in tqdm(range(0, n_rows, tile_rows), desc="predicting (fully convolutional)", unit="tile",
                   disable=None):
        r1 = min(r0 + tile_rows, n_rows)
        tile = padded[r0:r1 + patch_size - 1][np.newaxis]
        probs[r0:r1] = np.asarray(fcn.predict_on_batch(tile))[0]
    probs[~valid] = 0
    return probs


def predict_rows_batch1(model, padded: np.ndarray, patch_size: int, n_rows: int) -> float:
    """The study's method, for benchmarks: each row's patches, ``predict(batch_size=1)``.

    Returns the number of pixels predicted (only ``n_rows`` rows are done).
    """
    view = patch_data.windows(padded, patch_size)
    done = 0
    for r in range(n_rows):
        model.predict(np.ascontiguousarray(view[r]), batch_size=1, verbose=0)
        done += view.shape[1]
    return done



def check_model_fits(meta: dict, model_path, band_names: list[str], classes) -> None:
    """Refuse a model whose bands or classes do not fit the prepared scene.

    Args:
        meta: the model's metadata (``bands``, ``classes``, ``patch_size``).
        band_names: the scene's bands, in order.
        classes: the scene's ground-truth classes (ClassInfo list).

    Raises:
        ValueError: naming the model and what differs.
    """
    if meta.get("bands") != band_names:
        raise ValueError(f"{model_path}: the model was trained on bands {meta.get('bands')}, the scene has "
                         f"{band_names}; run scene_prep.py with the model's BANDS or train a model on these bands")
    scene = {c.code: c.name for c in classes}
    model_classes = {int(c["code"]): c["name"] for c in meta.get("classes", [])}
    clash = {code: (name, scene[code]) for code, name in model_classes.items() if code in scene and scene[code] != name}
    if clash or not set(model_classes) & set(scene):
        raise ValueError(f"{model_path}: the model's classes {sorted(model_classes)} do not fit the scene's ground "
                         f"truth classes {sorted(scene)}" + (f" (names differ: {clash})" if clash else ""))
    p = meta.get("patch_size")
    if not isinstance(p, int) or p < 1 or p % 2 == 0:
        raise ValueError(f"{model_path}: the metadata has no valid odd patch_size ({p!r})")
