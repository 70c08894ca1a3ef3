"""The embedded demo data: a synthetic Sentinel-2 L2A product and a CORINE-like truth.

Nothing is downloaded. From the seed alone, :func:`write_demo` lays out a
landscape near Swindon (UTM 30N, tile T30UWC) at 10 m, the way the study's
scene looks from orbit: fields as polygons, each with its own crop state and
hedgerows on their boundaries; a town whose urban classes are fine mosaics of
roofs, roads and gardens; woods with canopy texture; a river, lakes, roads, a
railway and an airfield. Pixel spectra are linear mixtures of typical
published reflectances of the materials (Sentinel-2 bands B02..B12), blurred
by a point-spread function and given sensor noise. Nothing is tuned to make
any classifier win: the classes overlap spectrally where their materials do.

It writes:

- ``<name>.SAFE/GRANULE/<granule>/IMG_DATA/R10m/T30UWC_<date>_B02_10m.jp2`` ...
  (B02, B03, B04, B08) and ``R20m/..._B05_20m.jp2`` ... (B02..B07, B8A, B11,
  B12), uint16 ``10000 x reflectance + 1000`` (processing baseline 05.00, as
  a 2018 acquisition reprocessed as Collection 1), nodata 0 (a swath-edge
  wedge has none); ``MTD_MSIL2A.xml`` with the baseline, quantification value
  and per-band offsets; a small cumulus with its shadow in the bands and the
  matching scene classification ``R20m/..._SCL_20m.jp2``;
- ``truth_10m.tif``: the 10 m land cover the product was drawn from (CLC codes);
- ``clc/U2018_CLC2018_V2020_20u1.tif``: that truth generalised as CORINE is, on
  a 100 m EPSG:3035 grid (majority per cell, 25 ha minimum mapping unit),
  holding CLC grid codes 1..44 as int8 with nodata -128 like the EEA raster;
- ``clc/U2018_CLC2018_V2020_20u1.gpkg``: the same as polygons with ``Code_18``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.features import rasterize, shapes, sieve
from rasterio.warp import reproject, transform, transform_bounds
from scipy import ndimage
from scipy.spatial import cKDTree
from shapely.geometry import LineString, shape
from tqdm import tqdm

from landcover import legend
from landcover.files import atomic_write

log = logging.getLogger(__name__)

CRS_UTM = CRS.from_epsg(32630)
CRS_LAEA = CRS.from_epsg(3035)
TILE = "T30UWC"
TILE_ORIGIN = (499980.0, 5800020.0)  # upper-left corner of tile T30UWC
SENSING = "20180704T110621"
# A 2018 acquisition as the Copernicus archive now serves it: reprocessed as
# Collection 1 at processing baseline 05.00, so its DNs carry the -1000 offset.
BASELINE = "05.00"
PRODUCT = f"S2A_MSIL2A_{SENSING}_N0500_R137_{TILE}_20230424T081431.SAFE"
BOA_OFFSET = -1000
# A small cumulus with its shadow (lon/lat of its centre, radius in pixels at 10 m),
# so that the default run exercises the cloud mask. The shadow falls north-north-west
# (sun in the south-south-east at 11:06 UTC in July, cloud about 600 m up).
CLOUD_CENTRE = (-1.792, 51.552)
CLOUD_RADIUS_PX = 25
SHADOW_SHIFT_PX = (-33, -10)  # rows, cols
GRANULE = f"L2A_{TILE}_A015855_{SENSING}"
CLC_NAME = "U2018_CLC2018_V2020_20u1"
CLC_NODATA = -128
BANDS_10M = ["B02", "B03", "B04", "B08"]
BANDS_20M = ["B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12"]
ALL_BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
TOWN_CENTRE = (-1.78, 51.56)  # Swindon, lon/lat

# Typical surface reflectance of materials in July, bands as in ALL_BANDS
# (after USGS/ASTER spectral-library curves resampled to Sentinel-2 bands).
MATERIALS: dict[str, tuple[float, ...]] = {
    "grass":       (0.030, 0.065, 0.040, 0.100, 0.250, 0.320, 0.360, 0.370, 0.200, 0.110),
    "crop_green":  (0.030, 0.060, 0.035, 0.090, 0.270, 0.360, 0.400, 0.410, 0.210, 0.110),
    "crop_ripe":   (0.060, 0.090, 0.110, 0.150, 0.220, 0.260, 0.290, 0.300, 0.320, 0.230),
    "bare_soil":   (0.080, 0.110, 0.140, 0.170, 0.200, 0.220, 0.230, 0.240, 0.320, 0.270),
    "broadleaf":   (0.020, 0.045, 0.025, 0.070, 0.220, 0.300, 0.340, 0.350, 0.160, 0.070),
    "conifer":     (0.015, 0.030, 0.018, 0.050, 0.140, 0.180, 0.200, 0.210, 0.100, 0.045),
    "scrub":       (0.030, 0.055, 0.045, 0.090, 0.200, 0.250, 0.280, 0.290, 0.210, 0.120),
    "water":       (0.045, 0.055, 0.035, 0.030, 0.020, 0.018, 0.015, 0.013, 0.008, 0.006),
    "asphalt":     (0.070, 0.080, 0.090, 0.100, 0.105, 0.108, 0.110, 0.112, 0.130, 0.120),
    "concrete":    (0.150, 0.170, 0.190, 0.200, 0.205, 0.210, 0.220, 0.222, 0.250, 0.230),
    "roof_red":    (0.070, 0.080, 0.140, 0.180, 0.200, 0.210, 0.220, 0.225, 0.280, 0.220),
    "roof_grey":   (0.100, 0.110, 0.120, 0.125, 0.130, 0.135, 0.150, 0.152, 0.170, 0.160),
    "roof_metal":  (0.200, 0.220, 0.240, 0.245, 0.250, 0.255, 0.260, 0.262, 0.240, 0.220),
    "shadow":      (0.020, 0.022, 0.020, 0.022, 0.030, 0.035, 0.040, 0.040, 0.030, 0.025),
    "ballast":     (0.080, 0.090, 0.100, 0.110, 0.120, 0.125, 0.140, 0.142, 0.180, 0.160),
    "waste":       (0.090, 0.100, 0.110, 0.130, 0.150, 0.160, 0.170, 0.175, 0.250, 0.220),
}
MATERIAL_NAMES = list(MATERIALS)
SPECTRA = np.array([MATERIALS[m] for m in MATERIAL_NAMES], dtype=np.float32)  # (materials, bands)

# Mosaic classes: parcels of about 20-40 m, each of one material, in these shares.
MOSAICS: dict[int, dict[str, float]] = {
    111: {"roof_red": 30, "roof_grey": 25, "asphalt": 25, "concrete": 10, "grass": 5, "broadleaf": 5},
    112: {"roof_red": 25, "roof_grey": 10, "asphalt": 15, "concrete": 5, "grass": 30, "broadleaf": 15},
    121: {"roof_metal": 35, "roof_grey": 20, "concrete": 20, "asphalt": 20, "grass": 5},
    122: {"asphalt": 55, "grass": 30, "broadleaf": 15},
    124: {"grass": 70, "concrete": 20, "asphalt": 10},
    132: {"waste": 60, "bare_soil": 20, "grass": 20},
    133: {"bare_soil": 55, "concrete": 20, "asphalt": 10, "grass": 15},
    141: {"grass": 55, "broadleaf": 40, "asphalt": 5},
    142: {"grass": 85, "bare_soil": 5, "broadleaf": 10},
}


@dataclass(frozen=True)
class DemoPaths:
    """Where :func:`write_demo` put its files."""

    product: Path
    truth: Path
    clc_raster: Path
    clc_vector: Path


def demo_paths(out_dir: Path) -> DemoPaths:
    """The paths :func:`write_demo` writes under ``out_dir``."""
    out_dir = Path(out_dir)
    return DemoPaths(out_dir / PRODUCT, out_dir / "truth_10m.tif",
                     out_dir / "clc" / f"{CLC_NAME}.tif", out_dir / "clc" / f"{CLC_NAME}.gpkg")


def demo_complete(out_dir: Path) -> bool:
    """True when every file of the demo data exists under ``out_dir``."""
    p = demo_paths(out_dir)
    return p.truth.exists() and p.clc_raster.exists() and p.clc_vector.exists() and \
        (p.product / "MTD_MSIL2A.xml").exists() and \
        len(list(p.product.rglob("*.jp2"))) == len(BANDS_10M) + len(BANDS_20M) + 1  # + the SCL


def demo_grid(extent: tuple[float, float, float, float]) -> tuple[Affine, int, int]:
    """The 10 m UTM grid over a lon/lat extent, aligned with tile T30UWC's 60 m grid.

    Returns:
        ``(transform, width, height)``; width and height are multiples of 6.
    """
    left, bottom, right, top = transform_bounds("EPSG:4326", CRS_UTM, *extent)
    x0, y0 = TILE_ORIGIN
    left = x0 + math.floor((left - x0) / 60) * 60
    top = y0 - math.floor((y0 - top) / 60) * 60
    width = math.ceil((right - left) / 60) * 6
    height = math.ceil((top - bottom) / 60) * 6
    return Affine(10, 0, left, 0, -10, top), width, height


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Zero-mean, unit-variance noise with features about ``scale`` pixels wide.

    Drawn on a coarse grid and interpolated, so its cost does not grow with ``scale``.
    """
    step = max(scale / 2.0, 1.0)
    coarse = rng.standard_normal((math.ceil(shape[0] / step) + 3, math.ceil(shape[1] / step) + 3))
    coarse = ndimage.gaussian_filter(coarse, 1.0, mode="wrap")
    full = ndimage.zoom(coarse, step, order=1, grid_mode=True, mode="nearest")[: shape[0], : shape[1]]
    full = full - full.mean()
    return (full / (full.std() + 1e-12)).astype(np.float32)


def _voronoi(rng: np.random.Generator, shape: tuple[int, int], spacing: float,
             where: np.ndarray | None = None) -> np.ndarray:
    """Cell ids (int32, -1 outside ``where``) of a jittered-grid Voronoi tessellation."""
    h, w = shape
    gy, gx = np.mgrid[0:h + spacing:spacing, 0:w + spacing:spacing]
    seeds = np.column_stack([gy.ravel(), gx.ravel()]) + rng.uniform(-0.45, 0.45, (gy.size, 2)) * spacing
    ids = np.full(shape, -1, dtype=np.int32)
    rows, cols = np.nonzero(np.ones(shape, bool) if where is None else where)
    if rows.size:
        ids[rows, cols] = cKDTree(seeds).query(np.column_stack([rows, cols]), workers=-1)[1]
    return ids


def _lines_mask(lines: list[LineString], width_px: float, shape: tuple[int, int]) -> np.ndarray:
    geoms = [line.buffer(width_px / 2) for line in lines]
    return rasterize(geoms, out_shape=shape, transform=Affine.identity(), dtype="uint8").astype(bool)


def _wiggly_line(rng: np.random.Generator, start: tuple[float, float], end: tuple[float, float],
                 amplitude: float, n: int = 40) -> LineString:
    """A line (x=col, y=row) from start to end with a smooth random meander."""
    t = np.linspace(0, 1, n)
    offset = ndimage.gaussian_filter1d(rng.standard_normal(n), 3) * amplitude * np.sin(np.pi * t)
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    nx, ny = -(y1 - y0) / length, (x1 - x0) / length
    return LineString(np.column_stack([x0 + t * (x1 - x0) + offset * nx, y0 + t * (y1 - y0) + offset * ny]))


def land_cover(rng: np.random.Generator, transform_: Affine, shape: tuple[int, int]) -> tuple[np.ndarray, dict]:
    """Lay out the 10 m land cover.

    Returns:
        ``(truth, parts)``: truth is (rows, cols) uint16 CLC codes; parts holds
        the field ids, arable-state per field, hedgerow mask and forest type
        map that :func:`reflectance` needs.
    """
    h, w = shape
    px_area_ha = 0.01
    truth = np.full(shape, 211, dtype=np.uint16)

    # fields: ~6-10 ha each; arable, pasture, or agriculture with natural vegetation
    fields = _voronoi(rng, shape, spacing=28)
    n_fields = int(fields.max()) + 1
    field_class = rng.choice([211, 231, 243], size=n_fields, p=[0.55, 0.35, 0.10])
    # neighbouring fields tend to share a use: smooth the choice with a regional noise
    region = smooth_noise(rng, shape, 150)
    truth[:] = field_class[fields]
    truth[(region > 1.0) & (truth == 211)] = 231
    hedges = np.zeros(shape, bool)
    hedges[:, 1:] |= fields[:, 1:] != fields[:, :-1]
    hedges[1:, :] |= fields[1:, :] != fields[:-1, :]

    # woods, with transitional woodland-shrub on their margins
    wood = smooth_noise(rng, shape, 60) + 0.6 * smooth_noise(rng, shape, 15)
    t_wood = np.quantile(wood, 0.88)
    truth[wood > t_wood] = 311
    truth[(wood > t_wood) & (smooth_noise(rng, shape, 40) < -0.4)] = 313
    truth[(wood > t_wood - 0.18) & (wood <= t_wood)] = 324

    # town: Swindon, continuous urban fabric in the centre, discontinuous around
    cx, cy = transform(CRS.from_epsg(4326), CRS_UTM, [TOWN_CENTRE[0]], [TOWN_CENTRE[1]])
    crow, ccol = rasterio.transform.rowcol(transform_, cx[0], cy[0], op=float)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dist = np.hypot(yy - crow, xx - ccol) * (1 + 0.25 * smooth_noise(rng, shape, 80))
    angle = np.arctan2(yy - crow, xx - ccol)
    town = dist < 200
    truth[dist < 70] = 111
    truth[(dist >= 70) & town] = 112
    # industrial estates in two sectors at the town's edge
    for a0 in rng.uniform(-np.pi, np.pi, 2):
        sector = np.abs(np.angle(np.exp(1j * (angle - a0)))) < 0.22
        truth[sector & (dist > 140) & (dist < 240)] = 121
    blob = smooth_noise(rng, shape, 25)

    def place(code: int, row: float, col: float, radius: float, where: np.ndarray | None = None) -> None:
        d = np.hypot(yy - row, xx - col) * (1 + 0.3 * blob)
        m = d < radius
        truth[m if where is None else m & where] = code

    # parks inside the town, a golf course, a construction site, a dump site
    for _ in range(4):
        r, a = rng.uniform(40, 170), rng.uniform(-np.pi, np.pi)
        place(141, crow + r * math.sin(a), ccol + r * math.cos(a), rng.uniform(12, 22), town)
    a = rng.uniform(-np.pi, np.pi)
    place(142, crow + 250 * math.sin(a), ccol + 250 * math.cos(a), 45)
    a = rng.uniform(-np.pi, np.pi)
    place(133, crow + 220 * math.sin(a), ccol + 220 * math.cos(a), 28)
    place(132, rng.uniform(0.1, 0.9) * h, rng.uniform(0.05, 0.25) * w, 30)

    # lakes (gravel pits) in the west, a river across the scene
    lake_row, lake_col = rng.uniform(0.3, 0.8) * h, rng.uniform(0.08, 0.3) * w
    for _ in range(5):
        place(512, lake_row + rng.normal(0, 60), lake_col + rng.normal(0, 60), rng.uniform(12, 30))
    river = _wiggly_line(rng, (0, rng.uniform(0.1, 0.4) * h), (w, rng.uniform(0.1, 0.4) * h), 60)
    truth[_lines_mask([river], 3, shape)] = 512

    # airfield: a grass rectangle with a concrete runway, away from the town
    ar, ac = rng.uniform(0.65, 0.8) * h, rng.uniform(0.05, 0.2) * w
    truth[int(ar):int(ar + 70), int(ac):int(ac + 150)] = 124

    # motorway south of the town, a railway through it, main roads out of it
    motorway = _wiggly_line(rng, (0, crow + 380), (w, crow + 330), 20)
    railway = _wiggly_line(rng, (0, crow - 30), (w, crow + 20), 15)
    roads = [LineString([(ccol, crow), (ccol + 2 * w * math.cos(a), crow + 2 * w * math.sin(a))])
             for a in rng.uniform(-np.pi, np.pi, 4)]
    road_mask = _lines_mask([motorway], 5, shape) | (_lines_mask(roads, 2.5, shape) & ~town)
    rail_mask = _lines_mask([railway], 3, shape)
    truth[road_mask | rail_mask] = 122

    counts = {int(c): n for c, n in zip(*np.unique(truth, return_counts=True))}
    log.info("demo land cover (ha): %s", {c: round(n * px_area_ha) for c, n in counts.items()})
    parts = {"fields": fields, "hedges": hedges & np.isin(truth, [211, 231, 243]),
             "rail": rail_mask, "runway": (truth == 124) & (np.abs(yy - (ar + 35)) < 2.5)}
    return truth, parts


def _weights(rng: np.random.Generator, truth: np.ndarray, parts: dict) -> np.ndarray:
    """Per-pixel material abundances, (materials, rows, cols) float32 summing to 1."""
    shape = truth.shape
    m = {name: i for i, name in enumerate(MATERIAL_NAMES)}
    wgt = np.zeros((len(MATERIAL_NAMES), *shape), dtype=np.float32)
    fields = parts["fields"]
    n_fields = int(fields.max()) + 1

    # arable: each field has its crop state (green, ripening, harvested/bare), in-field vigour
    state = rng.dirichlet([0.4, 0.4, 0.2], size=n_fields).astype(np.float32)  # per field
    vigour = 0.08 * smooth_noise(rng, shape, 12)
    arable = truth == 211
    f = fields[arable]
    green = np.clip(state[f, 0] + vigour[arable], 0, 1)
    wgt[m["crop_green"], arable] = green
    wgt[m["crop_ripe"], arable] = state[f, 1]
    wgt[m["bare_soil"], arable] = state[f, 2]

    # pasture: grass with per-field dryness
    dry = rng.beta(2, 6, size=n_fields).astype(np.float32)
    past = truth == 231
    d = np.clip(dry[fields[past]] + 0.5 * vigour[past], 0, 1)
    wgt[m["grass"], past] = 1 - d
    wgt[m["crop_ripe"], past] = d

    # agriculture with natural vegetation: crops, grass and scrub in patches of ~50 m
    mix = truth == 243
    patch = smooth_noise(rng, shape, 5)[mix]
    wgt[m["crop_ripe"], mix] = np.clip(0.5 + 0.5 * patch, 0, 1)
    wgt[m["scrub"], mix] = np.clip(0.5 - 0.5 * patch, 0, 1)
    wgt[m["grass"], mix] = 0.3

    # forest canopy: crowns and their shadows at ~1-2 pixels
    crowns = np.clip(0.15 + 0.12 * rng.standard_normal(shape).astype(np.float32), 0, 0.6)
    for code, conifer_share in ((311, 0.05), (313, 0.5)):
        forest = truth == code
        conifer = (rng.random(int(forest.sum())) < conifer_share).astype(np.float32)
        wgt[m["shadow"], forest] = crowns[forest]
        wgt[m["conifer"], forest] = (1 - crowns[forest]) * conifer
        wgt[m["broadleaf"], forest] = (1 - crowns[forest]) * (1 - conifer)
    shrub = truth == 324
    s = np.clip(0.5 + 0.4 * smooth_noise(rng, shape, 3)[shrub], 0, 1)
    wgt[m["scrub"], shrub] = s
    wgt[m["broadleaf"], shrub] = (1 - s) * 0.6
    wgt[m["grass"], shrub] = (1 - s) * 0.4

    water = truth == 512
    wgt[m["water"], water] = 0.92
    wgt[m["crop_green"], water] = 0.08  # algae and shallow margins

    # mosaics: parcels of one material each
    mosaic = np.isin(truth, list(MOSAICS))
    parcels = _voronoi(rng, shape, spacing=2.6, where=mosaic)
    draw = rng.random(int(parcels.max()) + 1)
    for code, shares in MOSAICS.items():
        sel = truth == code
        if not sel.any():
            continue
        names = list(shares)
        cum = np.cumsum([shares[n] for n in names]) / sum(shares.values())
        which = np.searchsorted(cum, draw[parcels[sel]])
        for k, name in enumerate(names):
            wgt[m[name], sel] += (which == k).astype(np.float32)
    wgt[:, parts["rail"]] = 0
    wgt[m["ballast"], parts["rail"]] = 0.7
    wgt[m["grass"], parts["rail"]] = 0.3
    wgt[:, parts["runway"]] = 0
    wgt[m["concrete"], parts["runway"]] = 1

    # hedgerows on field boundaries (the label stays the field's)
    hedge = parts["hedges"]
    wgt[:, hedge] *= 0.4
    wgt[m["broadleaf"], hedge] += 0.6
    wgt /= np.maximum(wgt.sum(axis=0, keepdims=True), 1e-6)
    return wgt


def reflectance(rng: np.random.Generator, truth: np.ndarray, parts: dict) -> np.ndarray:
    """Surface reflectance at 10 m of every band in ``ALL_BANDS``.

    Returns:
        (bands, rows, cols) float32 reflectance (0..1), after illumination
        variation, a Gaussian point-spread function and sensor noise.
    """
    weights = _weights(rng, truth, parts)
    refl = np.einsum("mb,mrc->brc", SPECTRA, weights, optimize=True)
    del weights
    refl *= 1 + 0.04 * smooth_noise(rng, truth.shape, 100)  # terrain and haze
    for i in tqdm(range(refl.shape[0]), desc="demo: optics and noise", unit="band", disable=None):
        refl[i] = ndimage.gaussian_filter(refl[i], 0.6)  # point-spread function (MTF)
        refl[i] *= 1 + 0.02 * rng.standard_normal(truth.shape).astype(np.float32)
        refl[i] += 0.003 * rng.standard_normal(truth.shape).astype(np.float32)
    return refl


def _to_dn(refl: np.ndarray, nodata: np.ndarray) -> np.ndarray:
    """Reflectance to the product's DN (baseline 04.00+: 10000 x reflectance - BOA_OFFSET; 0 = nodata)."""
    dn = np.clip(np.rint(refl * 10000) - BOA_OFFSET, 1, 65535).astype(np.uint16)
    dn[..., nodata] = 0
    return dn


def _write_jp2(path: Path, band: np.ndarray, transform_: Affine) -> None:
    with atomic_write(path) as tmp:
        with rasterio.open(tmp, "w", driver="JP2OpenJPEG", width=band.shape[1], height=band.shape[0],
                           count=1, dtype=band.dtype.name, crs=CRS_UTM, transform=transform_, nodata=0,
                           QUALITY=100, REVERSIBLE="YES", RESOLUTIONS=1) as dst:
            dst.write(band, 1)


def cloud_and_shadow(transform_: Affine, shape: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cloud opacity and shadow strength (each (rows, cols) float32, 0..1) of the demo's cumulus."""
    rng = np.random.default_rng(seed + 11)  # its own stream: the landscape's draws stay as they were
    cx, cy = transform(CRS.from_epsg(4326), CRS_UTM, [CLOUD_CENTRE[0]], [CLOUD_CENTRE[1]])
    row, col = rasterio.transform.rowcol(transform_, cx[0], cy[0], op=float)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    lumpy = 1 + 0.25 * smooth_noise(rng, shape, 12)
    alpha = np.clip(1.4 - np.hypot(yy - row, xx - col) * lumpy / CLOUD_RADIUS_PX, 0, 1)
    dr, dc = SHADOW_SHIFT_PX
    shadow = np.clip(1.4 - np.hypot(yy - row - dr, xx - col - dc) * lumpy / CLOUD_RADIUS_PX, 0, 1) * (1 - alpha)
    return alpha, shadow


def scene_classification(truth: np.ndarray, alpha: np.ndarray, shadow: np.ndarray,
                         nodata: np.ndarray) -> np.ndarray:
    """A Sen2Cor-like SCL at the arrays' resolution: 4 vegetation, 5 not vegetated, 6 water,
    8/9 cloud (medium/high probability), 3 cloud shadow, 0 no data. Thin cloud edges stay unflagged,
    as Sen2Cor misses them too."""
    scl = np.full(truth.shape, 4, np.uint8)
    scl[np.isin(truth, [111, 112, 121, 122, 124, 131, 132, 133])] = 5
    scl[truth == 512] = 6
    scl[shadow > 0.25] = 3
    scl[alpha > 0.2] = 8
    scl[alpha > 0.6] = 9
    scl[nodata] = 0
    return scl


def write_metadata(path: Path) -> None:
    """An ``MTD_MSIL2A.xml`` with the parts a real one has for radiometry (baseline, quantification,
    per-band offsets by 0-based band_id, Spectral_Information), in the PSD-14 namespace."""
    import xml.etree.ElementTree as ET

    ns = "https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd"
    ET.register_namespace("n1", ns)
    root = ET.Element(f"{{{ns}}}Level-2A_User_Product")
    info = ET.SubElement(ET.SubElement(root, "General_Info"), "Product_Info")
    for tag, text in (("PRODUCT_URI", PRODUCT), ("PROCESSING_LEVEL", "Level-2A"), ("PRODUCT_TYPE", "S2MSI2A"),
                      ("PROCESSING_BASELINE", BASELINE), ("GENERATION_TIME", "2023-04-24T08:14:31.000000Z")):
        ET.SubElement(info, tag).text = text
    chars = ET.SubElement(root[0], "Product_Image_Characteristics")
    quant = ET.SubElement(chars, "QUANTIFICATION_VALUES_LIST")
    ET.SubElement(quant, "BOA_QUANTIFICATION_VALUE", unit="none").text = "10000"
    offsets = ET.SubElement(chars, "BOA_ADD_OFFSET_VALUES_LIST")
    physical = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]
    for i in range(len(physical)):
        ET.SubElement(offsets, "BOA_ADD_OFFSET", band_id=str(i)).text = str(BOA_OFFSET)
    spectral = ET.SubElement(chars, "Spectral_Information_List")
    for i, name in enumerate(physical):
        ET.SubElement(spectral, "Spectral_Information", bandId=str(i), physicalBand=name)
    ET.indent(root)
    with atomic_write(path) as tmp:
        ET.ElementTree(root).write(tmp, encoding="UTF-8", xml_declaration=True)


def generalise(truth: np.ndarray, transform_: Affine, crs: CRS, dst_crs: CRS | None = None) -> tuple[np.ndarray, Affine]:
    """Generalise a 10 m land cover as CORINE is made.

    The majority class (GDAL's mode resampling) per 100 m cell of a grid in
    ``dst_crs`` (default ``crs``) snapped to whole 100 m, then polygons under
    the 25 ha minimum mapping unit merged into their largest neighbour (GDAL
    sieve, 4-connected).

    Args:
        truth: (rows, cols) CLC codes, 0 = none.
        transform_, crs: the truth's grid.

    Returns:
        ``(grid, transform)``: (rows, cols) uint8 CLC grid codes, 0 outside,
        and the 100 m grid's transform.
    """
    dst_crs = dst_crs or crs
    h, w = truth.shape
    left, bottom, right, top = transform_bounds(crs, dst_crs, *rasterio.transform.array_bounds(h, w, transform_))
    left, bottom = math.floor(left / 100) * 100, math.floor(bottom / 100) * 100
    right, top = math.ceil(right / 100) * 100, math.ceil(top / 100) * 100
    dst_transform = Affine(100, 0, left, 0, -100, top)
    grid = np.zeros((round((top - bottom) / 100), round((right - left) / 100)), dtype=np.uint8)
    reproject(legend.clc_to_grid(truth), grid, src_transform=transform_, src_crs=crs, dst_transform=dst_transform,
              dst_crs=dst_crs, resampling=Resampling.mode, src_nodata=0, dst_nodata=0)
    return sieve(grid, size=25, connectivity=4, mask=grid > 0), dst_transform


def write_corine(truth: np.ndarray, transform_: Affine, paths: DemoPaths) -> None:
    """Generalise the 10 m truth as CORINE does (:func:`generalise`, on a 100 m
    EPSG:3035 grid) and write it as raster and vector."""
    grid, dst_transform = generalise(truth, transform_, CRS_UTM, CRS_LAEA)
    valid = grid > 0
    out = np.where(valid, grid.astype(np.int8), np.int8(CLC_NODATA))
    profile = dict(driver="GTiff", width=out.shape[1], height=out.shape[0], count=1, dtype="int8",
                   crs=CRS_LAEA, transform=dst_transform, nodata=CLC_NODATA, compress="lzw")
    with atomic_write(paths.clc_raster) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(out, 1)
    polys = [(shape(geom), int(v)) for geom, v in shapes(grid, mask=valid, transform=dst_transform, connectivity=4)]
    codes = [str(legend.CLC_CLASSES[v - 1].code) for _, v in polys]
    frame = gpd.GeoDataFrame(
        {"ID": np.arange(1, len(polys) + 1), "Code_18": codes,
         "Area_Ha": [round(g.area / 1e4, 2) for g, _ in polys]},
        geometry=[g for g, _ in polys], crs=CRS_LAEA,
    )
    with atomic_write(paths.clc_vector) as tmp:
        frame.to_file(tmp, layer=CLC_NAME, driver="GPKG")
    log.info("wrote %s and %s (%d polygons)", paths.clc_raster, paths.clc_vector, len(frame))


def write_demo(out_dir: Path, seed: int, extent: tuple[float, float, float, float]) -> DemoPaths:
    """Generate the demo product and ground truth under ``out_dir``.

    Args:
        out_dir: folder to write into (created).
        seed: the run's seed; the same seed and extent give the same files.
        extent: lon/lat ``(west, south, east, north)`` of the scene.

    Returns:
        The paths written.
    """
    paths = demo_paths(out_dir)
    rng = np.random.default_rng(seed)
    transform_, width, height = demo_grid(extent)
    log.info("generating the demo scene: %dx%d pixels at 10 m in %s under %s", width, height, TILE, out_dir)
    truth, parts = land_cover(rng, transform_, (height, width))
    refl = reflectance(rng, truth, parts)
    rows, cols = np.mgrid[0:height, 0:width]
    swath_edge = (width - cols) + 0.5 * rows < 0.15 * width  # no data beyond the orbit's swath
    alpha, shadow = cloud_and_shadow(transform_, (height, width), seed)
    refl *= 1 - 0.65 * shadow[np.newaxis]
    refl = refl * (1 - alpha) + np.asarray(CLOUD, np.float32)[:, None, None] * alpha
    img = paths.product / "GRANULE" / GRANULE / "IMG_DATA"
    write_metadata(paths.product / "MTD_MSIL2A.xml")
    for band in tqdm(BANDS_10M, desc="demo: 10 m bands", unit="band", disable=None):
        _write_jp2(img / "R10m" / f"{TILE}_{SENSING}_{band}_10m.jp2",
                   _to_dn(refl[ALL_BANDS.index(band)], swath_edge), transform_)
    t20 = Affine(20, 0, transform_.c, 0, -20, transform_.f)
    edge20 = swath_edge[::2, ::2]
    for band in tqdm(BANDS_20M, desc="demo: 20 m bands", unit="band", disable=None):
        coarse = refl[ALL_BANDS.index(band)].reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
        _write_jp2(img / "R20m" / f"{TILE}_{SENSING}_{band}_20m.jp2", _to_dn(coarse, edge20), t20)
    scl = scene_classification(truth[::2, ::2], alpha[::2, ::2], shadow[::2, ::2], edge20)
    _write_jp2(img / "R20m" / f"{TILE}_{SENSING}_SCL_20m.jp2", scl, t20)
    with atomic_write(paths.truth) as tmp:
        with rasterio.open(tmp, "w", driver="GTiff", width=width, height=height, count=1, dtype="uint16",
                           crs=CRS_UTM, transform=transform_, nodata=0, compress="deflate") as dst:
            dst.write(truth, 1)
    write_corine(truth, transform_, paths)
    (out_dir / "README.txt").write_text(
        "Synthetic demo data generated by landcover.demo (seed %d, extent %s). "
        "Not real Sentinel-2 or CORINE data; delete this folder to regenerate it.\n" % (seed, extent)
    )
    return paths


def in_demo(path, demo_dir: Path) -> bool:
    """True when a configured path points into the demo folder (a URL never does)."""
    return "://" not in str(path) and Path(demo_dir).resolve() in Path(path).resolve().parents


def ensure_demo(demo_dir: Path, used_paths: list[Path], seed: int, extent: tuple[float, float, float, float]) -> None:
    """Generate the demo data when a configured input points into ``demo_dir`` and it is incomplete."""
    if any(in_demo(p, demo_dir) for p in used_paths) and not demo_complete(Path(demo_dir).resolve()):
        write_demo(Path(demo_dir).resolve(), seed, extent)


def second_reference(eval_path: Path | None, labels_path: Path, demo_dir: Path) -> Path | None:
    """The second reference to use: ``eval_path``, except the demo's own 10 m land cover (the
    default) when the ground truth is not the demo's: it describes the demo landscape only."""
    if eval_path is None:
        return None
    if in_demo(eval_path, demo_dir) and not in_demo(labels_path, demo_dir):
        log.info("EVAL_LABELS_PATH is the demo's 10 m land cover, which belongs to the demo only: no second "
                 "reference (set EVAL_LABELS_PATH to your own, finer reference)")
        return None
    return Path(eval_path)


def ensure_bigearth_demo(archive: Path, demo_dir: Path, seed: int) -> None:
    """Generate the demo BigEarthNet archive when ``archive`` points into ``demo_dir`` and is missing."""
    if in_demo(archive, demo_dir) and not (Path(archive) / "patches_with_seasonal_snow.csv").exists():
        write_bigearth_demo(Path(archive).resolve(), seed)


# ---------------------------------------------------------------- BigEarthNet ----
BIGEARTH_BANDS = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10,
                  "B8A": 20, "B09": 60, "B11": 20, "B12": 20}
# An October scene in Austria (UTM 33N): other region, other season.
BIGEARTH_CRS = CRS.from_epsg(32633)
# (tile name, its upper-left corner in UTM 33N, where the landscape generator
# draws it from in UTM 30N: the first tile holds a town, the second is rural)
BIGEARTH_TILES = [("S2A_MSIL2A_20171012T101021", (400000.0, 5340000.0), (576000.0, 5721000.0)),
                  ("S2B_MSIL2A_20171019T100029", (430000.0, 5300000.0), (600000.0, 5800000.0))]
# Autumn: cereals harvested (more bare soil and stubble), broadleaf senescing, lower sun.
AUTUMN = {"crop_green": "crop_ripe", "broadleaf": "scrub"}
CLOUD = (0.45, 0.46, 0.47, 0.48, 0.48, 0.49, 0.50, 0.50, 0.40, 0.33)
SNOW = (0.75, 0.74, 0.72, 0.70, 0.68, 0.66, 0.64, 0.62, 0.08, 0.06)


def _autumn(rng: np.random.Generator, truth: np.ndarray, parts: dict) -> np.ndarray:
    """Reflectance of an autumn scene: materials swapped towards their autumn state, dimmer light."""
    refl = reflectance(rng, truth, parts)
    green = SPECTRA[MATERIAL_NAMES.index("crop_green")]
    ripe = SPECTRA[MATERIAL_NAMES.index("crop_ripe")]
    # half of the green signal turns into harvested stubble; 0.8 for the lower sun
    ndvi_like = np.clip((refl[6] - refl[2]) / np.maximum(refl[6] + refl[2], 1e-6), 0, 1)
    refl += 0.5 * ndvi_like * (ripe - green)[:, None, None]
    return np.clip(refl * 0.8, 0, 1)


def write_bigearth_demo(out_dir: Path, seed: int, patches_per_side: int = 12) -> Path:
    """A small BigEarthNet-S2 v1.0-like archive, from another region and season.

    Each patch folder ``S2A_MSIL2A_20171012T101021_<r>_<c>/`` holds
    ``<patch>_B01.tif`` .. ``_B12.tif`` and ``_B8A.tif`` at native sizes (120 x
    120 at 10 m, 60 x 60 at 20 m, 20 x 20 at 60 m; uint16, no nodata set, UTM
    33N) and ``<patch>_labels_metadata.json`` (``labels``: CLC level-3 names of
    the CORINE-like generalised land cover in the patch, in code order;
    ``coordinates``, ``projection``, ``tile_source``, ``acquisition_date``).
    Some patches are really given clouds (with shadows) or snow, and listed in
    ``patches_with_cloud_and_shadow.csv`` / ``patches_with_seasonal_snow.csv``.

    Args:
        out_dir: archive root (created).
        seed: the run's seed.
        patches_per_side: patches per tile side (2 tiles of n x n patches).

    Returns:
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed + 1)
    size = 120 * patches_per_side
    cloudy, snowy = [], []
    for tile_name, (x0, y0), layout in BIGEARTH_TILES:
        layout_transform = Affine(10, 0, layout[0], 0, -10, layout[1])
        truth, parts = land_cover(rng, layout_transform, (size, size))
        refl = _autumn(rng, truth, parts)
        generalised = _generalise(truth, layout_transform)
        date = tile_name.split("_")[2]
        for r in tqdm(range(patches_per_side), desc=f"demo BigEarthNet {tile_name}", unit="row",
                      disable=None):
            for c in range(patches_per_side):
                name = f"{tile_name}_{r}_{c}"
                window = (slice(120 * r, 120 * r + 120), slice(120 * c, 120 * c + 120))
                patch = refl[:, window[0], window[1]].copy()
                draw = rng.random()
                if draw < 0.06:
                    _add_blob(rng, patch, CLOUD, shadow=True)
                    cloudy.append(name)
                elif draw < 0.10:
                    _add_blob(rng, patch, SNOW, shadow=False)
                    snowy.append(name)
                codes = sorted(set(np.unique(generalised[window]).tolist()) - {0})
                _write_bigearth_patch(out_dir / name, name, patch, Affine(10, 0, x0 + 1200 * c, 0, -10, y0 - 1200 * r),
                                      [legend.CLC_BY_CODE[k].name for k in codes], tile_name, date)
    (out_dir / "patches_with_cloud_and_shadow.csv").write_text("".join(f"{n}\n" for n in cloudy))
    (out_dir / "patches_with_seasonal_snow.csv").write_text("".join(f"{n}\n" for n in snowy))
    log.info("wrote the demo BigEarthNet archive %s: %d patches, %d cloudy, %d snowy",
             out_dir, 2 * patches_per_side**2, len(cloudy), len(snowy))
    return out_dir


def _generalise(truth: np.ndarray, transform_: Affine) -> np.ndarray:
    """CORINE-like labels back on the 10 m grid (:func:`generalise` in the truth's own CRS)."""
    grid, _ = generalise(truth, transform_, CRS_UTM)
    codes = legend.grid_code_to_clc(grid)
    return np.repeat(np.repeat(codes, 10, axis=0), 10, axis=1)[: truth.shape[0], : truth.shape[1]]


def _add_blob(rng: np.random.Generator, patch: np.ndarray, spectrum, shadow: bool) -> None:
    yy, xx = np.mgrid[0:120, 0:120]
    cy, cx, rad = rng.uniform(20, 100), rng.uniform(20, 100), rng.uniform(25, 50)
    alpha = np.clip(1.3 - np.hypot(yy - cy, xx - cx) / rad, 0, 1)
    if shadow:
        sh = np.clip(1.3 - np.hypot(yy - cy - 25, xx - cx - 15) / rad, 0, 1) * (1 - alpha)
        patch *= 1 - 0.6 * sh
    patch[:] = patch * (1 - alpha) + np.asarray(spectrum, np.float32)[:, None, None] * alpha


def _write_bigearth_patch(folder: Path, name: str, refl: np.ndarray, transform_: Affine, labels: list[str],
                          tile_name: str, date: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # B01 and B09 (60 m) are not in ALL_BANDS: take the nearest bands' values
    stand_in = {"B01": "B02", "B09": "B8A"}
    for band, res in BIGEARTH_BANDS.items():
        values = refl[ALL_BANDS.index(stand_in.get(band, band))]
        f = res // 10
        values = values.reshape(120 // f, f, 120 // f, f).mean(axis=(1, 3))
        dn = np.clip(np.rint(values * 10000), 1, 65535).astype(np.uint16)
        with rasterio.open(folder / f"{name}_{band}.tif", "w", driver="GTiff", width=dn.shape[1], height=dn.shape[0],
                           count=1, dtype="uint16", crs=BIGEARTH_CRS,
                           transform=Affine(res, 0, transform_.c, 0, -res, transform_.f)) as dst:
            dst.write(dn, 1)
    ulx, uly = transform_.c, transform_.f
    meta = {"labels": labels, "coordinates": {"ulx": ulx, "uly": uly, "lrx": ulx + 1200, "lry": uly - 1200},
            "projection": BIGEARTH_CRS.to_wkt(), "tile_source": f"{tile_name.replace('L2A', 'L1C')}_N0205_T33UUP.SAFE",
            "acquisition_date": f"{date[:4]}-{date[4:6]}-{date[6:8]} {date[9:11]}:{date[11:13]}:{date[13:15]}"}
    (folder / f"{name}_labels_metadata.json").write_text(__import__("json").dumps(meta))
