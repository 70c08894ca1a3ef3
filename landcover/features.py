"""Per-pixel features: band values, spectral indices, the segment type; scaling.

Band values are reflectance x 10000 (Sentinel-2 L2A); indices that need
reflectance (SAVI, EVI) divide by 10000 first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

INDEX_BANDS = {"NDVI": ("B04", "B08"), "SAVI": ("B04", "B08"), "EVI": ("B02", "B04", "B08"), "NDWI": ("B03", "B08")}


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


def spectral_index(name: str, table: pd.DataFrame) -> np.ndarray:
    """One index from the band columns of a points table, as float32 (N,).

    NDVI = (NIR - red) / (NIR + red); SAVI = 1.5 (NIR - red) / (NIR + red + 0.5);
    EVI = 2.5 (NIR - red) / (NIR + 6 red - 7.5 blue + 1); NDWI (McFeeters) =
    (green - NIR) / (green + NIR).

    Raises:
        ValueError: unknown index, or a band it needs is not in the table.
    """
    if name not in INDEX_BANDS:
        raise ValueError(f"INDICES: unknown index {name!r}; known: {sorted(INDEX_BANDS)}")
    missing = [b for b in INDEX_BANDS[name] if b not in table.columns]
    if missing:
        raise ValueError(f"INDICES: {name} needs bands {missing}, which are not in BANDS")
    r = {b: table[b].to_numpy(np.float64) / 10000.0 for b in INDEX_BANDS[name]}
    if name == "NDVI":
        out = _ratio(r["B08"] - r["B04"], r["B08"] + r["B04"])
    elif name == "SAVI":
        out = 1.5 * _ratio(r["B08"] - r["B04"], r["B08"] + r["B04"] + 0.5)
    elif name == "EVI":
        out = 2.5 * _ratio(r["B08"] - r["B04"], r["B08"] + 6 * r["B04"] - 7.5 * r["B02"] + 1)
    else:
        out = _ratio(r["B03"] - r["B08"], r["B03"] + r["B08"])
    return out.astype(np.float32)


def pixel_features(table: pd.DataFrame, bands: list[str], indices: list[str],
                   segment_type: bool = False) -> tuple[np.ndarray, list[str]]:
    """Feature matrix of a points table.

    Args:
        table: points table (band columns, optionally ``segment_type``).
        bands: band columns to use.
        indices: spectral indices to add (see :func:`spectral_index`).
        segment_type: add the ``segment_type`` column as a feature.

    Returns:
        ``(X, names)``: X is (N, features) float32.
    """
    missing = [b for b in bands if b not in table.columns]
    if missing:
        raise ValueError(f"the points table has no columns {missing}; run scene_prep.py with these BANDS")
    columns = [table[b].to_numpy(np.float32) for b in bands] + [spectral_index(i, table) for i in indices]
    names = list(bands) + list(indices)
    if segment_type:
        if "segment_type" not in table.columns:
            raise ValueError("the points table has no segment_type; run segment.py (or scene_prep.py with SEGMENT=True)")
        columns.append(table["segment_type"].to_numpy(np.float32))
        names.append("segment_type")
    return np.column_stack(columns), names


def fit_scaler(X_train: np.ndarray) -> StandardScaler:
    """Standardisation fitted on the training rows only (N, features)."""
    return StandardScaler().fit(X_train)
