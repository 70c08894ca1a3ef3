"""Whole-scene prediction with a patch CNN, tile by tile, in large batches.

Every pixel of the scene is classified from the p x p window centred on it,
with symmetric padding at the edges, exactly as per-patch prediction of that
pixel's patch. Memory is bounded by the tile, not the scene.
"""

from __future__ import annotations

import logging
from typing import Iterator

import numpy as np
from tqdm import tqdm

from landcover import patch_data

log = logging.getLogger(__name__)


def window_tiles(model, padded: np.ndarray, patch_size: int, valid: np.ndarray, *, batch_size: int = 2048,
                 tile_mb: float = 256, progress: bool = True) -> Iterator[tuple[int, int, np.ndarray]]:
    """Per-patch prediction of every valid pixel, one tile of rows at a time, in large batches.

    Each tile holds as many rows as fit ``tile_mb`` of cut windows, so memory
    is bounded by the tile, not by the scene.

    Args:
        model: a patch CNN taking (N, p, p, bands).
        padded: (rows + p - 1, cols + p - 1, bands) from :func:`patch_data.normalised_padded`.
        valid: (rows, cols) bool; other pixels are not predicted.
        batch_size: patches per ``predict_on_batch`` call.
        tile_mb: memory for the windows cut at once.
        progress: show a progress bar (on a terminal).

    Yields:
        ``(r0, r1, probs)``: rows r0..r1-1 and their (r1 - r0, cols, classes)
        float32 probabilities (0 where not valid).
    """
    view = patch_data.windows(padded, patch_size)
    n_rows, n_cols = valid.shape
    n_classes = model.output_shape[-1]
    per_patch = patch_size * patch_size * padded.shape[-1] * 4
    tile_rows = max(1, int(tile_mb * 2**20 // per_patch) // n_cols)
    for r0 in tqdm(range(0, n_rows, tile_rows), desc=f"predicting {patch_size}x{patch_size} windows", unit="tile",
                   disable=None if progress else True):
        r1 = min(r0 + tile_rows, n_rows)
        rr, cc = np.nonzero(valid[r0:r1])
        probs = np.zeros((r1 - r0, n_cols, n_classes), np.float32)
        if rr.size:
            patches = np.ascontiguousarray(view[rr + r0, cc])
            probs[rr, cc] = np.concatenate([np.asarray(model.predict_on_batch(patches[i:i + batch_size]))
                                            for i in range(0, len(patches), batch_size)])
        yield r0, r1, probs


def fully_convolutional_tiles(fcn, padded: np.ndarray, patch_size: int, valid: np.ndarray, *,
                              tile_mb: float = 256, progress: bool = True) -> Iterator[tuple[int, int, np.ndarray]]:
    """Whole-scene prediction with a fully convolutional network, one pass per tile of rows.

    Args:
        fcn: from :func:`landcover.models.fully_convolutional`.
        padded: as for :func:`window_tiles`.
        valid: (rows, cols) bool; probabilities are zeroed elsewhere.
        tile_mb: rough memory for one tile's activations.

    Yields:
        ``(r0, r1, probs)`` as :func:`window_tiles`.
    """
    n_rows, n_cols = valid.shape
    widest = max(layer.output.shape[-1] for layer in fcn.layers[1:])
    tile_rows = max(1, int(tile_mb * 2**20 // (4 * widest * (n_cols + patch_size) * 2)))
    for r0 in tqdm(range(0, n_rows, tile_rows), desc="predicting (fully convolutional)", unit="tile",
                   disable=None if progress else True):
        r1 = min(r0 + tile_rows, n_rows)
        probs = np.asarray(fcn.predict_on_batch(padded[r0:r1 + patch_size - 1][np.newaxis]))[0].copy()
        probs[~valid[r0:r1]] = 0
        yield r0, r1, probs


def predict_windows(model, padded: np.ndarray, patch_size: int, valid: np.ndarray, **kwargs) -> np.ndarray:
    """All of :func:`window_tiles` as one (rows, cols, classes) float32 array (small scenes, tests)."""
    return np.concatenate([probs for _, _, probs in window_tiles(model, padded, patch_size, valid, **kwargs)])


def predict_fully_convolutional(fcn, padded: np.ndarray, patch_size: int, valid: np.ndarray, **kwargs) -> np.ndarray:
    """All of :func:`fully_convolutional_tiles` as one (rows, cols, classes) float32 array."""
    return np.concatenate([probs for _, _, probs in fully_convolutional_tiles(fcn, padded, patch_size, valid,
                                                                                **kwargs)])


def map_from_tiles(tiles: Iterator[tuple[int, int, np.ndarray]], shape: tuple[int, int], codes: np.ndarray,
                   valid: np.ndarray, probability_sink=None) -> tuple[np.ndarray, np.ndarray]:
    """Reduce predicted tiles to a class map and a confidence map, keeping no full probability array.

    Args:
        tiles: from :func:`window_tiles` or :func:`fully_convolutional_tiles`.
        shape: (rows, cols) of the scene.
        codes: (classes,) class code of each output.
        valid: (rows, cols) bool.
        probability_sink: optional callable ``(r0, r1, probs)`` that stores each tile
            (e.g. a windowed GeoTIFF write).

    Returns:
        ``(prediction, confidence)``: (rows, cols) uint16 codes (0 where not
        valid) and float32 highest probability.
    """
    prediction = np.zeros(shape, np.uint16)
    confidence = np.zeros(shape, np.float32)
    for r0, r1, probs in tiles:
        prediction[r0:r1] = np.where(valid[r0:r1], codes[probs.argmax(axis=-1)], 0)
        confidence[r0:r1] = np.where(valid[r0:r1], probs.max(axis=-1), 0)
        if probability_sink is not None:
            probability_sink(r0, r1, probs)
    return prediction, confidence


PROBABILITY_DTYPES = ("uint8", "float32")


def probability_values(probs: np.ndarray, dtype: str) -> np.ndarray:
    """Probabilities as stored: ``"uint8"`` (round(p x 255), 1 byte a value) or ``"float32"``."""
    if dtype == "uint8":
        return np.rint(probs * 255).astype(np.uint8)
    if dtype == "float32":
        return probs.astype(np.float32)
    raise ValueError(f"PROBABILITY_DTYPE={dtype!r}: expected one of {PROBABILITY_DTYPES}")


def predict_box(model, padded: np.ndarray, valid: np.ndarray, box: tuple[int, int, int, int], patch_size: int,
                codes: np.ndarray, *, fully_convolutional: bool, batch_size: int, tile_mb: float,
                probabilities: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Predict the output rows r0..r1-1 and columns c0..c1-1 of a scene: one chunk.

    The chunk's windows are cut from ``padded`` with a halo of the patch radius,
    so its labels are those of the whole-scene prediction.

    Args:
        model: the patch CNN, or with ``fully_convolutional`` its fully convolutional form.
        padded: (rows + p - 1, cols + p - 1, bands) channels-last, e.g. a memory-mapped ``.npy``.
        valid: (rows, cols) bool of the whole scene.
        box: ``(r0, r1, c0, c1)``.
        codes: (classes,) class code of each model output.
        probabilities: None, or the dtype of the returned probabilities (:func:`probability_values`).

    Returns:
        ``(prediction, confidence, probs)``: (r1 - r0, c1 - c0) uint16 codes (0 where
        not valid), float32 highest probability (0 where not valid), and
        (r1 - r0, c1 - c0, classes) probabilities or None.
    """
    r0, r1, c0, c1 = box
    part = np.ascontiguousarray(padded[r0:r1 + patch_size - 1, c0:c1 + patch_size - 1], np.float32)
    inside = np.asarray(valid[r0:r1, c0:c1])
    if fully_convolutional:
        tiles = fully_convolutional_tiles(model, part, patch_size, inside, tile_mb=tile_mb, progress=False)
    else:
        tiles = window_tiles(model, part, patch_size, inside, batch_size=batch_size, tile_mb=tile_mb,
                             progress=False)
    kept: list[np.ndarray] = []  # the tiles come in row order

    def keep(t0: int, t1: int, probs: np.ndarray) -> None:
        kept.append(probability_values(probs, probabilities))

    prediction, confidence = map_from_tiles(tiles, inside.shape, codes, inside, keep if probabilities else None)
    return prediction, confidence, np.concatenate(kept) if kept else None


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
