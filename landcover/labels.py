"""Ground truth on the scene's grid: a raster, a polygon layer or labelled points, any CRS.

Vocabularies: CORINE (EEA grid codes 1..44 or three-digit CLC codes), ESA
WorldCover 10 m (10..100), CLC+ Backbone 10 m (1..11), or class names of any
other source (OpenStreetMap, field surveys). Label rasters are (rows, cols)
uint16 holding class codes (CLC codes, WorldCover or CLC+ codes, or 1..N for
a vocabulary of names), 0 where there is no label.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio.transform
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.warp import transform_bounds
from shapely.geometry import box

from landcover import legend
from landcover.files import atomic_write
from landcover.legend import ClassInfo
from landcover.rasters import Grid, open_raster, read_on_grid

log = logging.getLogger(__name__)

VECTOR_SUFFIXES = {".gpkg", ".shp", ".geojson", ".json", ".fgb", ".gml", ".kml", ".sqlite"}


VOCABS = ("auto", "clc", "worldcover", "clcplus", "names")
POINT_TYPES = ("Point", "MultiPoint")
# Column names of longitude / latitude in a CSV of points (LUCAS uses TH_LONG / TH_LAT).
_LON = ("lon", "long", "longitude", "x", "th_long", "gps_long")
_LAT = ("lat", "latitude", "y", "th_lat", "gps_lat")


@dataclass
class Reference:
    """A ground truth on the scene's grid.

    Attributes:
        labels: (rows, cols) uint16 class codes, 0 = no label.
        classes: the classes the labels use, sorted by code.
        vocab: the vocabulary used (``"clc"``, ``"worldcover"``, ``"clcplus"``, ``"names"``).
        points: True for labelled points (each point is a sample), False for a wall-to-wall map.
    """

    labels: np.ndarray
    classes: list[ClassInfo]
    vocab: str
    points: bool = False

    def describe(self) -> dict:
        return {"vocab": self.vocab, "points": self.points, "classes": len(self.classes)}


def labels_on_grid(
    path: Path, grid: Grid, vocab: str = "clc", attribute: str | None = None, layer: str | int | None = None,
) -> tuple[np.ndarray, list[ClassInfo]]:
    """``(labels, classes)`` of :func:`read_reference`."""
    ref = read_reference(path, grid, vocab, attribute, layer)
    return ref.labels, ref.classes


def read_reference(
    path: Path, grid: Grid, vocab: str = "auto", attribute: str | None = None, layer: str | int | None = None,
) -> Reference:
    """Put a ground-truth file on ``grid``.

    A raster is reprojected with nearest-neighbour resampling (only the part
    under the grid is read); a polygon layer is reprojected and rasterised (a
    pixel takes the class of the polygon holding its centre); labelled points
    (a point layer, or a CSV with lon/lat columns) each label the pixel they
    fall in.

    Args:
        path: raster (GeoTIFF ...), vector file (GeoPackage, Shapefile,
            GeoJSON ...) or CSV of points.
        grid: the target grid (the cropped scene's).
        vocab: one of :data:`VOCABS`; ``"auto"`` recognises the file by its
            name, attribute or embedded colour table (never by its values).
        attribute: vector only; the class column (matched ignoring case).
        layer: vector only; the layer (None: the first).

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: unreadable file, missing attribute, unknown class values,
            a vocabulary that cannot be recognised, or a file that does not
            overlap the grid.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"LABELS_PATH {path} does not exist")
    if vocab not in VOCABS:
        raise ValueError(f"LABEL_VOCAB={vocab!r}: expected one of {VOCABS}")
    if path.suffix.lower() == ".csv":
        return _point_labels(path, grid, vocab, attribute, _csv_points(path))
    if path.suffix.lower() in VECTOR_SUFFIXES:
        return _vector_labels(path, grid, vocab, attribute, layer)
    return _raster_labels(path, grid, vocab)


def detect_vocab(path: Path, attribute: str | None = None, colormap: dict | None = None) -> str:
    """The vocabulary of a label file from its name, class attribute or colour table; logged.

    Raises:
        ValueError: nothing identifies it (value ranges are never used: WorldCover's
            10..40 are also CLC grid codes).
    """
    name = path.name.lower()
    checks = [
        ("worldcover" in name, "worldcover", "the file name says WorldCover"),
        (any(k in name for k in ("clcplus", "clc_plus", "clc+", "clmsclcplus")), "clcplus",
         "the file name says CLC+ Backbone"),
        (bool(re.search(r"(^|[^a-z])(clc|corine)", name)), "clc", "the file name says CORINE (CLC)"),
        (attribute is not None and bool(re.fullmatch(r"code_\d\d", attribute.lower())), "clc",
         f"the attribute {attribute} is CORINE's"),
        (bool(colormap) and all(colormap.get(c.code, (0, 0, 0))[:3] == c.rgb for c in legend.WORLDCOVER_CLASSES[:5]),
         "worldcover", "its colour table is WorldCover's"),
    ]
    for hit, vocab, why in checks:
        if hit:
            log.info("LABEL_VOCAB=auto: %s read as %s (%s)", path, vocab, why)
            return vocab
    raise ValueError(f"{path}: LABEL_VOCAB='auto' cannot tell the vocabulary from the file name, attribute or "
                     f"legend; set LABEL_VOCAB to one of {VOCABS[1:]}")


def _vat_colours(path: Path) -> dict[int, tuple[int, int, int]]:
    """Value -> RGB from an ESRI ``<file>.vat.dbf`` beside a raster (EEA CORINE ships one), else {}."""
    vat = path.with_name(path.name + ".vat.dbf")
    if not vat.exists():
        return {}
    try:
        frame = pyogrio.read_dataframe(vat, read_geometry=False)
    except Exception as err:  # an unreadable side file: the legend's colours serve
        log.warning("%s: not readable (%s); using the legend's colours", vat, err)
        return {}
    cols = {c.lower(): c for c in frame.columns}
    names = [next((cols[k] for k in keys if k in cols), None) for keys in
             (("value",), ("red", "r"), ("green", "g"), ("blue", "b"))]
    if None in names:
        return {}
    rgb = frame[names].to_numpy()
    scale = 255 if rgb[:, 1:].max() <= 1 else 1  # some tables store 0..1
    return {int(v): (round(r * scale), round(g * scale), round(b * scale)) for v, r, g, b in rgb}


def _raster_labels(path: Path, grid: Grid, vocab: str) -> Reference:
    with open_raster(path) as src:
        if src.crs is None:
            raise ValueError(f"{path}: the labels raster has no CRS")
        _check_overlap(path, transform_bounds(src.crs, grid.crs, *src.bounds), grid)
        try:
            cmap = src.colormap(1)
        except ValueError:  # no colour table
            cmap = None
        src_nodata = src.nodata
        dtype = src.dtypes[0]
    if vocab == "auto":
        vocab = detect_vocab(path, colormap=cmap)
    # outside the source (or where it has no nodata value) 0 marks "no label"
    fill = src_nodata if src_nodata is not None else 0
    values = read_on_grid(path, grid, Resampling.nearest, src_nodata=src_nodata, dtype=dtype)
    valid = values != fill
    present = {int(v) for v in np.unique(values[valid])}
    if vocab == "names":
        classes = legend.custom_classes([str(v) for v in sorted(present)])
        lut = {v: next(c.code for c in classes if c.name == str(v)) for v in present}
        labels = np.zeros(values.shape, np.uint16)
        for v, code in lut.items():
            labels[valid & (values == v)] = code
        return Reference(labels, classes, vocab)
    voc = legend.VOCABULARIES[vocab]
    if vocab == "clc" and present <= set(range(1, 45)) | legend.CLC_GRID_NODATA:
        log.info("%s holds CLC grid codes (1..44; 48, 49, 50, 255 and -128 are no label)", path)
        colours = {int(legend.grid_code_to_clc(np.array(v))): rgb for v, rgb in _vat_colours(path).items()}
        values = np.where(valid, legend.grid_code_to_clc(values), 0)
    else:
        colours = _vat_colours(path)
        codes = set(voc.by_code())
        unknown = sorted(present - codes - voc.no_label)
        if unknown:
            hint = "neither CLC grid codes 1..44 nor CLC codes 111..523" if vocab == "clc" else \
                f"not {vocab} classes {sorted(codes)}"
            raise ValueError(f"{path}: unknown class codes {unknown[:10]} ({hint}); set LABEL_VOCAB to the "
                             "file's vocabulary, or 'names' to use the values as classes of their own")
        if vocab == "clc":
            log.info("%s holds three-digit CLC codes (999 is no label)", path)
    keep = valid & np.isin(values, list(voc.by_code()))
    labels = np.where(keep, values, 0).astype(np.uint16)
    used = sorted(set(np.unique(labels).tolist()) - {0})
    by_code = voc.by_code()
    classes = [ClassInfo(c, by_code[c].name, colours.get(c, by_code[c].rgb)) for c in used]
    if colours:
        log.info("class colours from %s", path.with_name(path.name + ".vat.dbf"))
    return Reference(labels, classes, vocab)


def _csv_points(path: Path) -> gpd.GeoDataFrame:
    """A CSV of labelled points with lon/lat columns (EPSG:4326) as a point layer."""
    frame = pd.read_csv(path)
    cols = {c.lower(): c for c in frame.columns}
    lon = next((cols[k] for k in _LON if k in cols), None)
    lat = next((cols[k] for k in _LAT if k in cols), None)
    if lon is None or lat is None:
        raise ValueError(f"{path}: a CSV of labelled points needs longitude and latitude columns (one of {_LON} and "
                         f"one of {_LAT}, in degrees); it has {list(frame.columns)}")
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame[lon], frame[lat]), crs="EPSG:4326")


def _vector_labels(path: Path, grid: Grid, vocab: str, attribute: str | None, layer) -> Reference:
    try:
        info = pyogrio.read_info(path, layer=layer)
    except Exception as err:  # pyogrio raises DataSourceError and others
        raise ValueError(f"{path}: not a readable vector file (layer {layer!r}): {err}") from err
    if info["crs"] is None:
        raise ValueError(f"{path}: the labels layer has no CRS")
    column = _match_attribute(path, list(info["fields"]), attribute)
    bbox = transform_bounds(grid.crs, info["crs"], *grid.bounds)
    frame = gpd.read_file(path, layer=layer, bbox=bbox, columns=[column])
    if frame.geom_type.isin(POINT_TYPES).any():
        return _point_labels(path, grid, vocab, column, frame)
    frame = frame[frame.geometry.notna() & frame.geom_type.isin(["Polygon", "MultiPolygon"])]
    if frame.empty:
        raise ValueError(f"{path}: no polygon overlaps the AOI; the ground truth does not cover the AOI")
    frame = frame.to_crs(grid.crs)
    raw = frame[column].astype(str).str.strip()
    vocab = detect_vocab(path, attribute=column) if vocab == "auto" else vocab
    classes, code_of = _vector_vocabulary(path, raw.unique().tolist(), vocab)
    codes = raw.map(code_of).to_numpy()
    labels = rasterize(
        zip(frame.geometry, codes), out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint16",
    )
    used = set(np.unique(labels).tolist()) - {0}
    return Reference(labels, [c for c in classes if c.code in used], vocab)


def _match_attribute(path: Path, columns: list[str], attribute: str | None) -> str:
    match = [c for c in columns if attribute is not None and c.lower() == attribute.lower()]
    if not match:
        raise ValueError(f"{path}: no attribute {attribute!r} (LABEL_ATTRIBUTE); the layer has {columns}")
    return match[0]


def _point_labels(path: Path, grid: Grid, vocab: str, attribute: str | None, frame: gpd.GeoDataFrame) -> Reference:
    """Labelled points: each labels the pixel it falls in (a later point in a pixel wins, counted)."""
    column = _match_attribute(path, list(frame.columns), attribute)
    frame = frame[frame.geometry.notna() & frame.geom_type.isin(POINT_TYPES)].to_crs(grid.crs)
    frame = frame[frame.geometry.within(box(*grid.bounds))]
    if frame.empty:
        raise ValueError(f"{path}: no labelled point lies in the AOI; the ground truth does not cover the AOI")
    raw = frame[column].astype(str).str.strip()
    vocab = detect_vocab(path, attribute=column) if vocab == "auto" else vocab
    classes, code_of = _vector_vocabulary(path, raw.unique().tolist(), vocab)
    rows, cols = rasterio.transform.rowcol(grid.transform, frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy(),
                                           op=np.floor)
    rows, cols = np.asarray(rows, int), np.asarray(cols, int)
    labels = np.zeros(grid.shape, np.uint16)
    labels[rows, cols] = raw.map(code_of).to_numpy()
    shared = len(rows) - len(set(zip(rows.tolist(), cols.tolist())))
    if shared:
        log.warning("%s: %d points share a pixel with another; the later point's label is kept", path, shared)
    used = set(np.unique(labels).tolist()) - {0}
    log.info("%s: %d labelled points in the AOI", path, len(rows))
    return Reference(labels, [c for c in classes if c.code in used], vocab, points=True)


def _vector_vocabulary(path: Path, values: list[str], vocab: str) -> tuple[list[ClassInfo], dict[str, int]]:
    """Classes and value -> code for the distinct attribute values of a layer (codes or names)."""
    if vocab == "names":
        classes = legend.custom_classes(values)
        return classes, {c.name: c.code for c in classes}
    voc = legend.VOCABULARIES[vocab]
    by_code = voc.by_code()
    code_of: dict[str, int] = {}
    unknown = []
    for v in values:
        if v.lstrip("-").isdigit() and int(v) in by_code:
            code = int(v)
        elif vocab == "clc":
            code = legend.clc_code_for_name(v)
        else:
            code = voc.code_for_name(v)
        if code is None:
            unknown.append(v)
        else:
            code_of[v] = code
    if unknown:
        raise ValueError(
            f"{path}: unknown class values {sorted(unknown)[:10]} (not {vocab} codes or names); "
            "set LABEL_VOCAB='names' to use them as classes of their own"
        )
    return [by_code[c] for c in sorted(set(code_of.values()))], code_of


def evaluation_reference(path: Path, grid: Grid, vocab: str, attribute: str | None, crosswalk: Path | None,
                         ground_truth: Reference) -> Reference:
    """The second, finer reference (``EVAL_LABELS_PATH``) on ``grid``, in the ground truth's codes.

    Raises:
        ValueError: its vocabulary differs from the ground truth's and no crosswalk maps it.
    """
    ref = read_reference(path, grid, vocab, attribute)
    if ground_truth.vocab == "names":
        target = ground_truth.classes
    else:
        target = list(legend.VOCABULARIES[ground_truth.vocab].classes)
    if crosswalk is not None:
        mapped, classes = apply_crosswalk(Path(crosswalk), ref.labels, ref.classes, target)
        return Reference(mapped, classes, ground_truth.vocab, ref.points)
    if ref.vocab != ground_truth.vocab or ref.vocab == "names":
        raise ValueError(f"{path}: the evaluation reference is in vocabulary {ref.vocab!r}, the ground truth in "
                         f"{ground_truth.vocab!r}; give EVAL_CROSSWALK, a CSV mapping its codes ('from') to the "
                         "ground truth's ('to')")
    return ref


def apply_crosswalk(path: Path, labels: np.ndarray, classes: list[ClassInfo],
                    target: list[ClassInfo]) -> tuple[np.ndarray, list[ClassInfo]]:
    """Map a reference's codes to another vocabulary's with a crosswalk CSV (columns ``from``, ``to``).

    Args:
        path: the CSV; codes it does not list become 0 (no label).
        labels: (rows, cols) uint16 codes of the reference, 0 = none.
        classes: the reference's classes; target: the vocabulary mapped to (its ClassInfo by code).

    Returns:
        ``(labels, classes)`` in the target's codes.

    Raises:
        ValueError: a CSV without the two columns, or a ``to`` code the target does not know.
    """
    table = pd.read_csv(path)
    cols = {c.lower(): c for c in table.columns}
    if not {"from", "to"} <= set(cols):
        raise ValueError(f"{path}: a crosswalk needs the columns 'from' and 'to' (codes); it has {list(table.columns)}")
    by_code = {c.code: c for c in target}
    unknown = sorted(set(table[cols["to"]].astype(int)) - set(by_code))
    if unknown:
        raise ValueError(f"{path}: 'to' codes {unknown[:10]} are not classes of the ground truth {sorted(by_code)}")
    lut = np.zeros(max(int(labels.max()), int(table[cols["from"]].max())) + 1, np.uint16)
    lut[table[cols["from"]].astype(int).to_numpy()] = table[cols["to"]].astype(int).to_numpy()
    mapped = lut[labels]
    used = set(np.unique(mapped).tolist()) - {0}
    return mapped, [by_code[c] for c in sorted(used)]


def _check_overlap(path: Path, bounds: tuple, grid: Grid) -> None:
    left, bottom, right, top = bounds
    g_left, g_bottom, g_right, g_top = grid.bounds
    if left >= g_right or right <= g_left or bottom >= g_top or top <= g_bottom:
        raise ValueError(f"{path}: the ground truth does not cover the AOI (no overlap with the scene crop)")


def check_coverage(path: Path, labels: np.ndarray, valid: np.ndarray, min_coverage: float,
                   points: bool = False) -> float:
    """Share of valid scene pixels that carry a label; ValueError below ``min_coverage``.

    Sparse references (OpenStreetMap, field polygons) cover part of the AOI by
    nature, so the default minimum (``MIN_LABEL_COVERAGE``, 1 %) refuses only a
    file that does not belong to the AOI. Labelled points need only one point
    on a valid pixel.

    Args:
        labels: (rows, cols) label codes, 0 = none.
        valid: (rows, cols) bool, True where every band has data inside the AOI.
        points: the reference is labelled points.
    """
    n_valid = int(valid.sum())
    if n_valid == 0:
        raise ValueError("the AOI holds no valid scene pixel (all nodata); check AOI and SCENE_PATH")
    labelled = int(((labels > 0) & valid).sum())
    coverage = labelled / n_valid
    if points:
        if labelled == 0:
            raise ValueError(f"{path}: no labelled point lies on a valid (unmasked) pixel of the AOI")
        log.info("%d labelled points lie on valid pixels of the AOI", labelled)
        return coverage
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
