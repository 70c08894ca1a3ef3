"""Labelled pixel sampling, the points table, and patch cutting.

The points table has one row per sampled pixel: ``point_id``, ``row``, ``col``
(in the cropped scene), ``x``, ``y`` (pixel centre in the scene's CRS),
``label`` (class code), ``class_name``, one column per band (raw values) and
``NDVI`` when B04 and B08 are among the bands.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio.transform
from affine import Affine

from landcover.files import atomic_write
from landcover.legend import ClassInfo

log = logging.getLogger(__name__)


def valid_mask(scene: np.ndarray, nodata: float | None) -> np.ndarray:
    """True where every band has data.

    Args:
        scene: (bands, rows, cols) array.
        nodata: the nodata value (None: only non-finite values are invalid).

    Returns:
        (rows, cols) bool array.
    """
    valid = np.ones(scene.shape[1:], dtype=bool)
    for band in scene:
        if nodata is not None:
            valid &= band != nodata
        if band.dtype.kind == "f":
            valid &= np.isfinite(band)
    return valid


def sample_pixels(
    labels: np.ndarray, valid: np.ndarray, n_points: int, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_points`` distinct pixels where there is a label and every band is valid.

    Args:
        labels: (rows, cols) class codes, 0 = no label.
        valid: (rows, cols) bool from :func:`valid_mask`.
        n_points: number of pixels to draw (without replacement).
        rng: the run's generator (``np.random.default_rng(config.SEED)``).

    Returns:
        ``(rows, cols)``: int64 arrays of length ``n_points``, in random order.

    Raises:
        ValueError: fewer eligible pixels than ``n_points``.
    """
    eligible = np.flatnonzero((labels > 0) & valid)
    if n_points > eligible.size:
        raise ValueError(
            f"N_POINTS={n_points} is larger than the {eligible.size} labelled valid pixels in the AOI; "
            "lower N_POINTS or enlarge the AOI"
        )
    flat = rng.choice(eligible, size=n_points, replace=False)
    rows, cols = np.unravel_index(flat, labels.shape)
    return rows.astype(np.int64), cols.astype(np.int64)


def all_labelled_pixels(labels: np.ndarray, valid: np.ndarray, rng: np.random.Generator
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Every labelled valid pixel, in random order (a reference of labelled points is the sample itself).

    Returns:
        ``(rows, cols)``: int64 arrays.
    """
    flat = rng.permutation(np.flatnonzero((labels > 0) & valid))
    rows, cols = np.unravel_index(flat, labels.shape)
    return rows.astype(np.int64), cols.astype(np.int64)


def ndvi(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """(NIR - red) / (NIR + red) as float32; 0 where both are 0."""
    red = red.astype(np.float32)
    nir = nir.astype(np.float32)
    total = nir + red
    return np.divide(nir - red, total, out=np.zeros_like(total), where=total != 0)


def points_table(
    scene: np.ndarray, labels: np.ndarray, rows: np.ndarray, cols: np.ndarray,
    transform: Affine, band_names: list[str], classes: list[ClassInfo],
) -> pd.DataFrame:
    """Build the points table for sampled pixels (vectorised, no Python loop over points).

    Args:
        scene: (bands, rows, cols) raw band values.
        labels: (rows, cols) class codes.
        rows, cols: pixel indices from :func:`sample_pixels`.
        transform: the scene's affine transform (for x, y of pixel centres).
        band_names: names of the scene's bands, in order.
        classes: the class table (for ``class_name``).
    """
    xs, ys = rasterio.transform.xy(transform, rows, cols, offset="center")
    codes = labels[rows, cols]
    names = {c.code: c.name for c in classes}
    table = pd.DataFrame({
        "point_id": np.arange(rows.size, dtype=np.int64),
        "row": rows, "col": cols,
        "x": np.asarray(xs, dtype=np.float64), "y": np.asarray(ys, dtype=np.float64),
        "label": codes.astype(np.int32),
        "class_name": pd.Categorical.from_codes(*_category_codes(codes, names)),
    })
    values = scene[:, rows, cols]
    for name, column in zip(band_names, values):
        table[name] = column
    if "B04" in band_names and "B08" in band_names:
        table["NDVI"] = ndvi(values[band_names.index("B04")], values[band_names.index("B08")])
    return table


def _category_codes(codes: np.ndarray, names: dict[int, str]) -> tuple[np.ndarray, list[str]]:
    uniq, inverse = np.unique(codes, return_inverse=True)
    return inverse.astype(np.int32), [names.get(int(c), str(c)) for c in uniq]


def write_points(table: pd.DataFrame, path: Path) -> None:
    """Write the points table as Parquet (``.parquet``) or CSV (``.csv``), atomically."""
    path = Path(path)
    with atomic_write(path) as tmp:
        if path.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        elif path.suffix == ".csv":
            table.to_csv(tmp, index=False)
        else:
            raise ValueError(f"{path}: points table must be .parquet or .csv (POINTS_FORMAT)")
    log.info("wrote %s (%d points)", path, len(table))


def read_points(path: Path) -> pd.DataFrame:
    """Read a points table written by :func:`write_points`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run scene_prep.py first")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def cut_patches(scene: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """Cut ``size`` x ``size`` patches centred on pixels, with symmetric padding at edges.

    Symmetric padding mirrors the scene including the edge pixel
    (``numpy.pad(mode="symmetric")``), as the study did.

    Args:
        scene: (bands, rows, cols) array.
        rows, cols: centre pixels, int arrays of equal length N.
        size: odd patch side in pixels.

    Returns:
        (N, size, size, bands) array, channels last (the Keras order), of
        ``scene.dtype``; the centre pixel ``[:, size // 2, size // 2]`` is
        ``scene[:, rows, cols].T``.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"patch size {size} must be odd and positive (PATCH_SIZE / PATCH_SIZES)")
    half = size // 2
    padded = np.pad(scene, ((0, 0), (half, half), (half, half)), mode="symmetric")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size), axis=(1, 2))
    # windows: (bands, rows, cols, size, size); a point's window starts at its own row/col
    return np.ascontiguousarray(windows[:, rows, cols].transpose(1, 2, 3, 0))


def write_patches(path: Path, patches: np.ndarray, labels: np.ndarray) -> None:
    """Save patches (N, size, size, bands) and labels (N,) as a compressed ``.npz``."""
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, patches=patches, labels=labels)
    log.info("wrote %s (%s patches)", path, patches.shape)


def read_points_with_segments(prep_points: Path, seg_points: Path, columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """The points table with whichever of ``segment``, ``segment_type`` and ``columns`` (e.g. the SEG_SCALES
    sweep's types) exist: scene_prep's own (run with SEGMENT=True), completed from the segmentation stage's
    copy when that copy is of the same points. A copy of other points (an earlier scene_prep.py run) is
    logged and left out; what neither table has, the caller segments (``segmentation.missing_entries``).
    """
    points = read_points(prep_points)
    wanted = ["segment", "segment_type", *columns]
    lacking = [c for c in wanted if c not in points.columns]
    if not lacking or not Path(seg_points).exists():
        return points
    segmented = read_points(seg_points)
    same = len(segmented) == len(points) and (segmented[["row", "col"]].to_numpy() == points[["row", "col"]].to_numpy()).all()
    if not same:
        log.warning("%s was made from other points than %s (an earlier scene_prep.py run): not used", seg_points,
                    prep_points)
        return points
    return points.assign(**{c: segmented[c].to_numpy() for c in lacking if c in segmented.columns})


def drop_rare_classes(points: pd.DataFrame, min_samples: int) -> tuple[pd.DataFrame, list[int]]:
    """Drop the points of classes with fewer than ``min_samples`` points.

    Returns:
        ``(points, dropped)``: the kept rows (index reset) and the dropped class codes.
    """
    counts = points["label"].value_counts()
    dropped = sorted(int(c) for c in counts.index[counts < min_samples])
    if dropped:
        log.info("dropping classes with fewer than %d points: %s",
                 min_samples, {c: int(counts[c]) for c in dropped})
    return points[~points["label"].isin(dropped)].reset_index(drop=True), dropped


def write_model_sides(model_path: Path, points: pd.DataFrame, train: np.ndarray, val: np.ndarray,
                      test: np.ndarray) -> None:
    """``<model>_points.parquet`` beside a model: each point's side ("train", "val", "test", "unused")
    in its split, from the row indices of the three parts (read back by :func:`model_sides`)."""
    sides = np.full(len(points), "unused", dtype=object)
    sides[train], sides[val], sides[test] = "train", "val", "test"
    write_points(pd.DataFrame({"point_id": points["point_id"], "side": sides}),
                 Path(model_path).with_name(Path(model_path).stem + "_points.parquet"))


def model_sides(points: pd.DataFrame, model_path: Path) -> np.ndarray | None:
    """Each point's side ("train", "val", "test", "unused") in a model's split, from the
    ``<model>_points.parquet`` beside it; None when the model has no split of these points."""
    path = Path(model_path).with_name(Path(model_path).stem + "_points.parquet")
    if not path.exists():
        return None
    sides = read_points(path).set_index("point_id")["side"]
    return points["point_id"].map(sides).fillna("unused").to_numpy()
