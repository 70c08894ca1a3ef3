"""Clouds, shadows, snow and defective pixels: each product's mask on the scene's grid.

Where a product carries a mask of its own it is used (``MASK_CLOUDS = True``):

- L2A: the scene classification ``SCL`` (``IMG_DATA/R20m/..._SCL_20m.jp2``,
  else R60m), resampled to the grid by nearest neighbour; the classes in
  ``MASK_SCL_CLASSES`` are masked.
- L1C from baseline 04.00: ``QI_DATA/MSK_CLASSI_B00.jp2`` (bands: opaque
  clouds, cirrus, snow; 1 = flagged).
- L1C before 04.00: ``QI_DATA/MSK_CLOUDS_B00.gml`` (polygons with
  ``maskType`` OPAQUE / CIRRUS; empty, or no features, when there is no cloud).

Products without a mask of their own get one from s2cloudless with
``MASK_CLOUDS = "s2cloudless"`` (an optional extra: ``pip install s2cloudless``),
computed from the L1C bands it needs on a 60 m grid and brought to the scene
grid by nearest neighbour.

Masks are (rows, cols) bool arrays, True = masked, one per reason.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.warp import reproject

from landcover import rasters
from landcover.rasters import Grid

log = logging.getLogger(__name__)

# The L2A scene classification (Sen2Cor), value -> name.
SCL_CLASSES = {
    0: "no data", 1: "saturated or defective", 2: "dark area pixels", 3: "cloud shadows", 4: "vegetation",
    5: "not vegetated", 6: "water", 7: "unclassified", 8: "cloud medium probability",
    9: "cloud high probability", 10: "thin cirrus", 11: "snow or ice",
}
CLASSI_BANDS = ("opaque clouds", "cirrus", "snow")
# The bands s2cloudless's model takes, in its order (L1C top-of-atmosphere reflectance).
S2CLOUDLESS_BANDS = ["B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12"]
S2CLOUDLESS_RESOLUTION = 60


def find_product_mask(scene_path: Path) -> tuple[str, str] | None:
    """Where a product's own cloud mask is: ``(kind, path)`` or None.

    Searches the granule holding ``scene_path`` when it lies inside one (an
    old multi-granule ``.SAFE`` has one mask per granule), else the folder
    itself (a ``.SAFE`` of one granule, or a folder of band files).
    """
    root = rasters.granule_folder(scene_path) or Path(scene_path).resolve()
    files = sorted(p for p in root.rglob("*") if p.is_file())
    scl = [p for p in files if "SCL" in p.stem.upper().split("_") and p.suffix.lower() in rasters.RASTER_SUFFIXES]
    if scl:
        scl.sort(key=lambda p: (rasters.resolution_in_name(p) or 999) != 20)  # 20 m first, then any
        return ("scl", str(scl[0]))
    classi = [p for p in files if p.name.upper().startswith("MSK_CLASSI") and p.suffix.lower() in (".jp2", ".tif")]
    if classi:
        return ("classi", str(classi[0]))
    gml = [p for p in files if p.name.upper().startswith("MSK_CLOUDS") and p.suffix.lower() == ".gml"]
    if gml:
        return ("gml", str(gml[0]))
    return None


def _check_mask_grid(path: str, band_path: str) -> None:
    """Refuse a mask that is not on its product's tile (another CRS or footprint)."""
    with rasters.open_raster(path) as m, rasters.open_raster(band_path) as b:
        if m.crs != b.crs:
            raise ValueError(f"{path}: the mask is in {m.crs}, but the product's bands ({band_path}) are in {b.crs}")
        if not np.allclose(tuple(m.bounds), tuple(b.bounds), atol=max(m.res[0], b.res[0])):
            raise ValueError(f"{path}: the mask covers {tuple(m.bounds)}, not the product's tile {tuple(b.bounds)} "
                             f"({band_path}); is it another product's mask?")


def product_masks(product, grid: Grid, scl_classes: list[int], mode, threshold: float = 0.4,
                  dilation_m: float = 0.0) -> dict[str, np.ndarray]:
    """The product's masks on ``grid``: ``{reason: (rows, cols) bool}``.

    Args:
        product: a :class:`landcover.products.Product`.
        grid: the target grid (the AOI window's).
        scl_classes: ``MASK_SCL_CLASSES``.
        mode: ``MASK_CLOUDS``: True (the product's own mask; none: nothing
            masked, with a log line), False (no mask), ``"s2cloudless"``.
        threshold, dilation_m: s2cloudless probability threshold and dilation.

    Raises:
        ValueError: a mask on another grid, an unreadable mask, or
            s2cloudless asked for but not installed or missing bands.
    """
    if mode is False:
        return {}
    if mode == "s2cloudless":
        return {"s2cloudless clouds": s2cloudless_mask(product, grid, threshold, dilation_m)}
    if product.mask is None:
        log.warning("%s carries no cloud mask of its own; nothing masked (set MASK_CLOUDS='s2cloudless' to "
                    "compute one)", product.name)
        return {}
    kind, path = product.mask
    first_band = next(iter(product.bands.values()))
    if kind == "scl":
        _check_mask_grid(path, first_band)
        scl = rasters.read_on_grid(path, grid, Resampling.nearest, src_nodata=None, dtype="uint8")
        return {SCL_CLASSES.get(c, f"SCL {c}"): scl == c for c in scl_classes}
    if kind == "classi":
        _check_mask_grid(path, first_band)
        flags = rasters.read_on_grid(path, grid, Resampling.nearest, indexes=[1, 2, 3], src_nodata=None,
                                     dtype="uint8")
        return {name: flags[i] > 0 for i, name in enumerate(CLASSI_BANDS)}
    return _gml_masks(path, grid)


def _gml_masks(path: str, grid: Grid) -> dict[str, np.ndarray]:
    """Masks from an old L1C ``MSK_CLOUDS_B00.gml`` (empty or featureless: no cloud)."""
    text = Path(path).read_text(errors="replace")
    if "MaskFeature" not in text:  # ESA writes an empty mask (or none at all) when there is no cloud
        log.info("%s holds no cloud polygon", path)
        return {}
    try:
        frame = pyogrio.read_dataframe(path)
    except Exception as err:  # pyogrio and GDAL's GML driver raise several types
        raise ValueError(f"{path}: not a readable cloud-mask GML: {err}") from err
    if frame.empty:
        return {}
    if frame.crs is None:
        raise ValueError(f"{path}: the cloud-mask GML has no CRS (srsName)")
    frame = gpd.GeoDataFrame(frame, geometry="geometry").to_crs(grid.crs)
    kinds = frame["maskType"].astype(str).str.lower() if "maskType" in frame else ["opaque"] * len(frame)
    out: dict[str, np.ndarray] = {}
    for kind in sorted(set(kinds)):
        geoms = [g for g, k in zip(frame.geometry, kinds) if k == kind and g is not None and not g.is_empty]
        if geoms:
            out[f"{kind} clouds"] = rasterize(geoms, out_shape=grid.shape, transform=grid.transform,
                                              dtype="uint8").astype(bool)
    return out


def s2cloudless_mask(product, grid: Grid, threshold: float, dilation_m: float) -> np.ndarray:
    """A cloud mask computed with s2cloudless (an optional extra) from the product's L1C bands.

    The ten bands the model needs are read from the same product (whatever
    ``BANDS`` holds) on a 60 m grid over ``grid``, as top-of-atmosphere
    reflectance (offset applied), classified, thresholded at ``threshold``,
    dilated by ``dilation_m`` metres, and brought to ``grid`` by nearest neighbour.
    """
    try:
        from s2cloudless import S2PixelCloudDetector
    except ImportError as err:
        raise ValueError("MASK_CLOUDS='s2cloudless' needs the s2cloudless package: pip install s2cloudless "
                         "(or set MASK_CLOUDS=True to use the product's own mask)") from err
    if product.folder is None:
        raise ValueError(f"{product.source}: s2cloudless reads the L1C bands from a product folder; "
                         "this STAC item has none")
    try:
        files = rasters.find_band_files(product.folder, S2CLOUDLESS_BANDS, S2CLOUDLESS_RESOLUTION)
    except FileNotFoundError as err:
        raise ValueError(f"{product.source}: s2cloudless needs the L1C bands {S2CLOUDLESS_BANDS}: {err}") from err
    left, bottom, right, top = grid.bounds
    res = S2CLOUDLESS_RESOLUTION
    coarse = Grid(grid.crs, Affine(res, 0, left, 0, -res, top), max(1, math.ceil((right - left) / res)),
                  max(1, math.ceil((top - bottom) / res)))
    stack = np.empty((coarse.height, coarse.width, len(S2CLOUDLESS_BANDS)), np.float32)
    valid = np.ones(coarse.shape, bool)
    for i, (band, path) in enumerate(files.items()):
        dn = rasters.read_on_grid(path, coarse, Resampling.average)
        valid &= dn > 0
        stack[..., i] = (dn + product.meta.offset(band)) / product.meta.quantification
    detector = S2PixelCloudDetector(threshold=threshold, average_over=4, dilation_size=round(dilation_m / res),
                                    all_bands=False)
    mask = detector.get_cloud_masks(stack[np.newaxis])[0].astype(np.uint8) * valid
    out = np.zeros(grid.shape, np.uint8)
    reproject(mask, out, src_transform=coarse.transform, src_crs=grid.crs, dst_transform=grid.transform,
              dst_crs=grid.crs, resampling=Resampling.nearest)
    log.info("s2cloudless: %.1f %% of %s flagged (threshold %.2f, dilation %.0f m)",
             100 * out.mean(), product.name, threshold, dilation_m)
    return out.astype(bool)
