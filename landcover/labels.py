"""Ground truth on the scene's grid: a CLC raster or a polygon layer, any CRS.

Label rasters are (rows, cols) uint16 holding class codes (three-digit CLC
codes, or 1..N for a vocabulary of class names), 0 where there is no label.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds

from landcover import legend
from landcover.files import atomic_write
from landcover.legend import ClassInfo
from landcover.rasters import Grid, open_raster

log = logging.getLogger(__name__)

VECTOR_SUFFIXES = {".gpkg", ".shp", ".geojson", ".json", ".fgb", ".gml", ".kml", ".sqlite"}


def labels_on_grid(
    path: Path, grid: Grid, vocab: str = "clc", attribute: str | None = None, layer: str | int | None = None,
) -> tuple[np.ndarray, list[ClassInfo]]:
    """Put a ground-truth file on ``grid``.

    A raster is reprojected with nearest-neighbour resampling (only the part
    under the grid is read); a vector layer is reprojected and rasterised
    (a pixel takes the class of the polygon holding its centre).

    Args:
        path: raster (GeoTIFF ...) or vector file (GeoPackage, Shapefile, GeoJSON ...).
        grid: the target grid (the cropped scene's).
        vocab: ``"clc"`` (CLC grid codes, CLC codes or CLC names; others are an
            error) or ``"names"`` (each distinct value is a class).
        attribute: vector only; the class column (matched ignoring case).
        layer: vector only; the layer (None: the first).

    Returns:
        ``(labels, classes)``: labels is (rows, cols) uint16, 0 = no label;
        classes lists every class the labels use, sorted by code.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: unreadable file, missing attribute, unknown class values,
            or a file that does not overlap the grid.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"LABELS_PATH {path} does not exist")
    if vocab not in ("clc", "names"):
        raise ValueError(f"LABEL_VOCAB={vocab!r}: expected 'clc' or 'names'")
    if path.suffix.lower() in VECTOR_SUFFIXES:
        return _vector_labels(path, grid, vocab, attribute, layer)
    return _raster_labels(path, grid, vocab)


def _raster_labels(path: Path, grid: Grid, vocab: str) -> tuple[np.ndarray, list[ClassInfo]]:
    with open_raster(path) as src:
        if src.crs is None:
            raise ValueError(f"{path}: the labels raster has no CRS")
        _check_overlap(path, transform_bounds(src.crs, grid.crs, *src.bounds), grid)
        # outside the source (or where it has no nodata value) 0 marks "no label"
        nodata = src.nodata if src.nodata is not None else 0
        with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                       resampling=Resampling.nearest, src_nodata=src.nodata, nodata=nodata) as vrt:
            values = vrt.read(1)
            valid = (values != nodata) & (vrt.read_masks(1) > 0)
    present = np.unique(values[valid])
    if vocab == "names":
        classes = legend.custom_classes([str(v) for v in present])
        lut = {int(v): next(c.code for c in classes if c.name == str(v)) for v in present}
        labels = np.zeros(values.shape, np.uint16)
        for v, code in lut.items():
            labels[valid & (values == v)] = code
        return labels, classes
    present_set = {int(v) for v in present}
    if present_set <= set(range(1, 45)) | legend.CLC_GRID_NODATA:
        log.info("%s holds CLC grid codes (1..44); mapping them to CLC codes", path)
        labels = np.where(valid, legend.grid_code_to_clc(values), 0).astype(np.uint16)
    elif present_set <= legend.CLC_CODES:
        log.info("%s holds three-digit CLC codes", path)
        labels = np.where(valid, values, 0).astype(np.uint16)
    else:
        unknown = sorted(present_set - legend.CLC_CODES - set(range(1, 45)) - legend.CLC_GRID_NODATA)
        raise ValueError(
            f"{path}: unknown class codes {unknown[:10]} (neither CLC grid codes 1..44 nor CLC codes 111..523); "
            "set LABEL_VOCAB='names' to use the values as classes of their own"
        )
    return labels, [legend.CLC_BY_CODE[c] for c in sorted(set(np.unique(labels).tolist()) - {0})]


def _vector_labels(path: Path, grid: Grid, vocab: str, attribute: str | None, layer) -> tuple[np.ndarray, list[ClassInfo]]:
    try:
        info = pyogrio.read_info(path, layer=layer)
    except Exception as err:  # pyogrio raises DataSourceError and others
        raise ValueError(f"{path}: not a readable vector file (layer {layer!r}): {err}") from err
    if info["crs"] is None:
        raise ValueError(f"{path}: the labels layer has no CRS")
    columns = list(info["fields"])
    match = [c for c in columns if attribute is not None and c.lower() == attribute.lower()]
    if not match:
        raise ValueError(f"{path}: no attribute {attribute!r} (LABEL_ATTRIBUTE); the layer has {columns}")
    column = match[0]
    bbox = transform_bounds(grid.crs, info["crs"], *grid.bounds)
    frame = gpd.read_file(path, layer=layer, bbox=bbox, columns=[column])
    frame = frame[frame.geometry.notna() & frame.geom_type.isin(["Polygon", "MultiPolygon"])]
    if frame.empty:
        raise ValueError(f"{path}: no polygon overlaps the AOI; the ground truth does not cover the AOI")
    frame = frame.to_crs(grid.crs)
    raw = frame[column].astype(str).str.strip()
    classes, code_of = _vector_vocabulary(path, raw.unique().tolist(), vocab)
    codes = raw.map(code_of).to_numpy()
    labels = rasterize(
        zip(frame.geometry, codes), out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint16",
    )
    used = set(np.unique(labels).tolist()) - {0}
    return labels, [c for c in classes if c.code in used]


def _vector_vocabulary(path: Path, values: list[str], vocab: str) -> tuple[list[ClassInfo], dict[str, int]]:
    """Classes and value -> code for the distinct attribute values of a layer."""
    if vocab == "names":
        classes = legend.custom_classes(values)
        return classes, {c.name: c.code for c in classes}
    code_of: dict[str, int] = {}
    unknown = []
    for v in values:
        code = int(v) if v.isdigit() and int(v) in legend.CLC_CODES else legend.clc_code_for_name(v)
        if code is None:
            unknown.append(v)
        else:
            code_of[v] = code
    if unknown:
        raise ValueError(
            f"{path}: unknown class values {sorted(unknown)[:10]} (not CLC codes or names); "
            "set LABEL_VOCAB='names' to use them as classes of their own"
        )
    return [legend.CLC_BY_CODE[c] for c in sorted(set(code_of.values()))], code_of


def _check_overlap(path: Path, bounds: tuple, grid: Grid) -> None:
    left, bottom, right, top = bounds
    g_left, g_bottom, g_right, g_top = grid.bounds
    if left >= g_right or right <= g_left or bottom >= g_top or top <= g_bottom:
        raise ValueError(f"{path}: the ground truth does not cover the AOI (no overlap with the scene crop)")


def check_coverage(path: Path, labels: np.ndarray, valid: np.ndarray, min_coverage: float) -> float:
    """Share of valid scene pixels that carry a label; ValueError below ``min_coverage``.

    Args:
        labels: (rows, cols) label codes, 0 = none.
        valid: (rows, cols) bool, True where every band has data inside the AOI.
    """
    n_valid = int(valid.sum())
    if n_valid == 0:
        raise ValueError("the AOI holds no valid scene pixel (all nodata); check AOI and SCENE_PATH")
    coverage = float(((labels > 0) & valid).sum()) / n_valid
    if coverage < min_coverage:
        raise ValueError(
            f"{path}: the ground truth covers {coverage:.1%} of the AOI's valid pixels, less than "
            f"MIN_LABEL_COVERAGE={min_coverage:.0%}; check LABELS_PATH and AOI"
        )
    log.info("ground truth covers %.1f %% of the AOI's valid pixels", 100 * coverage)
    return coverage


def write_classes(path: Path, classes: list[ClassInfo], counts: dict[int, int] | None = None) -> None:
    """Write the class table (code, name, rgb and pixel count) as JSON, atomically."""
    items = legend.classes_to_json(classes)
    for item in items:
        item["pixels"] = int((counts or {}).get(item["code"], 0))
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(items, indent=2))
    log.info("wrote %s (%d classes)", path, len(items))


def read_classes(path: Path) -> list[ClassInfo]:
    """Read a class table written by :func:`write_classes`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run scene_prep.py first")
    return legend.classes_from_json(json.loads(path.read_text()))
