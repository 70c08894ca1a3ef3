"""One seamless scene from one or several products: target grid, harmonisation, masks, mosaic.

Each product is harmonised and cloud-masked on its own, then warped onto one
target grid (bilinear for reflectance, nearest for masks), taking the first
valid, unmasked pixel in list order. Adjacent tiles overlap by about 10 km,
and tiles of different UTM zones meet on the target grid without a seam.

The target grid: with one product in the target CRS, that product's own grid
(its pixels are copied, not resampled: one product gives exactly the
single-product result); otherwise a ``RESOLUTION`` grid in ``TARGET_CRS``
(default: the UTM zone of the AOI's centre), aligned with the first product
in that CRS where there is one, else with whole multiples of the resolution.

Arrays are (bands, rows, cols) as rasterio reads them.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.features import geometry_mask
from rasterio.warp import transform_bounds
from shapely.geometry import box, mapping
from shapely.geometry.base import BaseGeometry
from tqdm import tqdm

from landcover import aoi as aoi_mod
from landcover import clouds, products, rasters
from landcover.rasters import Grid

log = logging.getLogger(__name__)


def utm_crs(lon: float, lat: float) -> CRS:
    """The WGS 84 / UTM zone CRS holding (lon, lat)."""
    zone = min(int((lon + 180) // 6) + 1, 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _product_grid(product: products.Product, resolution: int) -> Grid:
    return rasters.scene_grid(product.bands, resolution)


def _lonlat_bounds(grid: Grid) -> tuple[float, float, float, float]:
    return transform_bounds(grid.crs, "EPSG:4326", *grid.bounds)


def target_grid(prods: list[products.Product], aoi_setting, resolution: int,
                target_crs: str | None = None) -> tuple[Grid, BaseGeometry | None]:
    """The cropped target grid over the AOI and the AOI polygon in its CRS.

    Args:
        prods: the products, in list order.
        aoi_setting: ``AOI`` (lon/lat box, vector file or None).
        resolution: ``RESOLUTION`` in metres.
        target_crs: ``TARGET_CRS`` (e.g. ``"EPSG:32631"``) or None.

    Returns:
        ``(grid, aoi)``: the grid of the AOI's window and the AOI in its CRS (None: whole extent).

    Raises:
        ValueError: the AOI does not meet any product.
    """
    grids = [_product_grid(p, resolution) for p in prods]
    if target_crs is not None:
        crs = CRS.from_user_input(target_crs)
    elif len(prods) == 1:
        crs = grids[0].crs
    else:
        if aoi_setting is None:
            boxes = [_lonlat_bounds(g) for g in grids]
            lon = (min(b[0] for b in boxes) + max(b[2] for b in boxes)) / 2
            lat = (min(b[1] for b in boxes) + max(b[3] for b in boxes)) / 2
        else:
            centre = aoi_mod.aoi_geometry(aoi_setting, CRS.from_epsg(4326)).centroid
            lon, lat = centre.x, centre.y
        crs = utm_crs(lon, lat)
    ref = next((g for g in grids if g.crs == crs and math.isclose(g.transform.a, resolution)), None)
    if len(prods) == 1 and ref is not None:
        grid = ref
    else:
        bounds = [transform_bounds(g.crs, crs, *g.bounds, densify_pts=21) for g in grids]
        left, bottom = min(b[0] for b in bounds), min(b[1] for b in bounds)
        right, top = max(b[2] for b in bounds), max(b[3] for b in bounds)
        x0, y0 = (ref.transform.c, ref.transform.f) if ref is not None else (0.0, 0.0)
        left = x0 + math.floor((left - x0) / resolution) * resolution
        top = y0 + math.ceil((top - y0) / resolution) * resolution
        grid = Grid(crs, Affine(resolution, 0, left, 0, -resolution, top),
                    math.ceil((right - left) / resolution), math.ceil((top - bottom) / resolution))
        log.info("target grid: %s at %d m, aligned with %s", crs.to_string(), resolution,
                 "the first product in it" if ref is not None else f"multiples of {resolution} m")
    geom = aoi_mod.aoi_geometry(aoi_setting, grid.crs)
    crop = rasters.crop_grid(grid, rasters.aoi_window(grid, geom))
    for product, g in zip(prods, grids):
        footprint = box(*transform_bounds(g.crs, crop.crs, *g.bounds, densify_pts=21))
        if not footprint.intersects(box(*crop.bounds)):
            log.warning("%s does not reach the AOI; it contributes nothing", product.name)
    return crop, geom


def read_mosaic(prods: list[products.Product], grid: Grid, aoi: BaseGeometry | None, *, harmonize: bool = True,
                mask_mode=True, scl_classes: list[int] = (), cloud_threshold: float = 0.4,
                cloud_dilation_m: float = 0.0, chunk: bool = False) -> tuple[np.ndarray, dict, dict]:
    """Read, harmonise, mask and mosaic the products on ``grid``.

    Args:
        prods: the products; earlier ones win where several have a valid pixel.
        grid: from :func:`target_grid`.
        aoi: the AOI polygon in ``grid.crs``; pixels outside become nodata.
        harmonize: ``HARMONIZE``: write :data:`products.CONVENTION`; else the stored values.
        mask_mode, scl_classes, cloud_threshold, cloud_dilation_m: see :func:`clouds.product_masks`.
        chunk: ``grid`` is one chunk of a larger scene: a chunk without a valid
            pixel is returned all nodata (no error), and the per-product lines are logged at debug level.

    Returns:
        ``(scene, profile, info)``: scene (bands, rows, cols) int16 (harmonised)
        or the stored dtype; profile for GeoTIFF writing; info with the
        products' metadata, the convention and the masked shares (of the AOI
        pixels that have data) per reason.

    Raises:
        ValueError: no product has a valid pixel in the AOI.
    """
    bands = list(prods[0].bands)
    if harmonize:
        dtype, nodata = products.HARMONIZED_DTYPE, products.HARMONIZED_NODATA
    else:
        with rasters.open_raster(prods[0].bands[bands[0]]) as src:
            dtype = src.dtypes[0]
        nodata = rasters.S2_NODATA
        baselines = {p.meta.baseline for p in prods}
        if any(p.meta.offsets and any(p.meta.offsets.values()) for p in prods):
            log.warning("HARMONIZE=False: the stored values are kept, and the products' offsets (%s) are not "
                        "applied; values of different baselines are not comparable", sorted(map(str, baselines)))
    scene = np.full((len(bands), *grid.shape), nodata, dtype=dtype)
    filled = np.zeros(grid.shape, bool)
    has_data = np.zeros(grid.shape, bool)
    reason = np.full(grid.shape, -1, np.int16)  # index into reasons: why a pixel ended up masked
    reasons: list[str] = []
    inside = np.ones(grid.shape, bool) if aoi is None else \
        ~geometry_mask([mapping(aoi)], out_shape=grid.shape, transform=grid.transform)
    for product in tqdm(prods, desc="reading products", unit="product", disable=None):
        # one band at a time in float32 (resampling), kept in the output dtype: 2 bytes a value, not 4
        stack = np.empty((len(bands), *grid.shape), dtype)
        valid = inside.copy()
        for i, band in enumerate(bands):
            dn = rasters.read_on_grid(product.bands[band], grid, Resampling.bilinear)
            has = dn != rasters.S2_NODATA
            valid &= has
            if harmonize:
                stack[i] = products.harmonise(dn, has, product.meta.offset(band), product.meta.quantification)
            else:
                stack[i] = np.rint(dn).astype(dtype)
            del dn
        if not valid.any():
            log.log(logging.DEBUG if chunk else logging.INFO, "%s: no valid pixel in the AOI", product.name)
            continue
        masks = clouds.product_masks(product, grid, list(scl_classes), mask_mode, cloud_threshold,
                                     cloud_dilation_m)
        masked = np.zeros(grid.shape, bool)
        for name, m in masks.items():
            if name not in reasons:
                reasons.append(name)
            new = m & valid & ~filled & (reason < 0)
            reason[new] = reasons.index(name)
            masked |= m
        take = valid & ~masked & ~filled
        scene[:, take] = stack[:, take]
        filled |= take
        has_data |= valid
        log.log(logging.DEBUG if chunk else logging.INFO, "%s: %d pixels taken, %d masked", product.name,
                int(take.sum()), int((valid & masked).sum()))
    if not filled.any() and not chunk:
        names = ", ".join(p.name for p in prods)
        raise ValueError(f"no valid, unmasked pixel of {names} lies in the AOI; check SCENE_PATH and AOI"
                         + (" (or the cloud mask: every pixel is masked)" if has_data.any() else ""))
    final_masked = has_data & ~filled
    n_data = int(has_data.sum())
    shares = {name: float(((reason == k) & final_masked).sum()) / max(n_data, 1) for k, name in enumerate(reasons)}
    info = {
        "harmonized": harmonize,
        "convention": products.CONVENTION if harmonize else "stored values (HARMONIZE=False)",
        "products": [p.describe() for p in prods],
        "masked_share": {k: round(v, 6) for k, v in shares.items()},
        "masked_total": round(float(final_masked.sum()) / max(n_data, 1), 6),
        "pixels_with_data": n_data,
    }
    level = logging.DEBUG if chunk else logging.INFO
    for name, share in shares.items():
        if share > 0:
            log.log(level, "masked as %s: %.2f %% of the AOI", name, 100 * share)
    log.log(level, "masked in all: %.2f %% of the AOI's pixels with data", 100 * info["masked_total"])
    profile = {"driver": "GTiff", "dtype": dtype, "count": len(bands), "height": grid.height, "width": grid.width,
               "crs": grid.crs, "transform": grid.transform, "nodata": nodata}
    return scene, profile, info


def check_masked_share(prods: list[products.Product], info: dict, max_share: float) -> None:
    """Refuse an AOI masked beyond ``max_share`` (``MAX_CLOUD_SHARE``), naming the products and the reasons."""
    if info["masked_total"] > max_share:
        raise ValueError(f"{', '.join(p.name for p in prods)}: {info['masked_total']:.0%} of the AOI is masked "
                         f"(clouds, shadows, snow: {info['masked_share']}), more than MAX_CLOUD_SHARE="
                         f"{max_share:.0%}; choose a clearer product or add one to SCENE_PATH")


def tags(info: dict) -> dict[str, str]:
    """GeoTIFF tags that record the radiometry of ``scene.tif``."""
    import json

    return {
        "RADIOMETRY": info["convention"],
        "HARMONIZED": str(info["harmonized"]),
        "PROCESSING_BASELINES": ",".join(str(p["baseline"]) for p in info["products"]),
        "PRODUCTS": json.dumps([{k: p[k] for k in ("name", "baseline", "quantification", "offsets")}
                                for p in info["products"]]),
        "MASKED_SHARE": json.dumps(info["masked_share"]),
    }
