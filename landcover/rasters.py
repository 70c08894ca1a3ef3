"""Sentinel-2 band discovery, grids, windowed reads onto a grid, and GeoTIFF input/output.

Arrays are (bands, rows, cols) as rasterio reads them. Only the window that
covers the AOI is read from each band file, so a full 10980 x 10980 tile never
sits in memory (:func:`read_on_grid`; :mod:`landcover.mosaic` merges the bands
of one or several products with it).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import rasterio
import rasterio.shutil
from scipy import ndimage
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from landcover.files import atomic_write

log = logging.getLogger(__name__)

RASTER_SUFFIXES = {".jp2", ".tif", ".tiff"}
# Sentinel-2's convention where a file sets no nodata value.
S2_NODATA = 0


@contextlib.contextmanager
def open_raster(path: Path) -> Iterator[rasterio.io.DatasetReader]:
    """Open a raster, turning an unreadable file into a ValueError naming it."""
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as err:
        raise ValueError(f"{path}: not a readable raster (corrupt or unsupported file): {err}") from err
    with src:
        yield src


def _band_pattern(band: str) -> re.Pattern:
    # B8 must not match B8A, B02 must not match B020: the name is a whole token
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(band)}(?![A-Za-z0-9])", re.IGNORECASE)


def granule_folder(path: Path) -> Path | None:
    """The ``GRANULE/<granule>`` folder holding ``path`` inside a ``.SAFE``, or None."""
    path = Path(path).resolve()
    return next((p for p in [path, *path.parents] if p.parent.name == "GRANULE"), None)


def resolution_in_name(path: Path) -> int | None:
    """Resolution written in a Sentinel-2 file or folder name (``_10m`` / ``R10m``)."""
    m = re.search(r"_(\d+)m$", path.stem) or re.search(r"^R(\d+)m$", path.parent.name)
    return int(m.group(1)) if m else None


def find_band_files(scene_path: Path, bands: list[str], resolution: int) -> dict[str, Path]:
    """Find one file per band in a Sentinel-2 product.

    Accepts an L2A ``.SAFE`` (``GRANULE/*/IMG_DATA/R10m|R20m|R60m/*_B02_10m.jp2``),
    an L1C ``.SAFE`` (``GRANULE/*/IMG_DATA/*_B02.jp2``), an ``IMG_DATA`` folder,
    or a folder of one GeoTIFF/JPEG2000 per band with the band name in the file
    name. Where a band exists at several resolutions (L2A), the file at
    ``resolution`` is taken, else the finest one.

    Args:
        scene_path: the product or folder.
        bands: band names such as ``["B02", "B03", "B04", "B08"]``.
        resolution: target pixel size in metres.

    Returns:
        ``{band: path}`` in the order of ``bands``.

    Raises:
        FileNotFoundError: the folder or a band's file is missing.
        ValueError: several files match one band at the same resolution.
    """
    scene_path = Path(scene_path)
    if not scene_path.is_dir():
        raise FileNotFoundError(
            f"SCENE_PATH {scene_path} is not a folder; point it at a .SAFE product, "
            "its IMG_DATA folder or a folder of band files"
        )
    files = sorted(p for p in scene_path.rglob("*") if p.suffix.lower() in RASTER_SUFFIXES and p.is_file())
    in_img_data = [p for p in files if "IMG_DATA" in p.relative_to(scene_path.parent).parts]
    files = in_img_data or files  # in a .SAFE, skip QI_DATA masks and previews
    found: dict[str, Path] = {}
    for band in bands:
        matches = [p for p in files if _band_pattern(band).search(p.stem)]
        if not matches:
            raise FileNotFoundError(
                f"{scene_path}: no file for band {band} (expected a .jp2/.tif with '{band}' in its name); "
                f"check SCENE_PATH and BANDS"
            )
        by_res: dict[int | None, list[Path]] = {}
        for p in matches:
            by_res.setdefault(resolution_in_name(p), []).append(p)
        if resolution in by_res:
            chosen = by_res[resolution]
        else:
            best = min(by_res, key=lambda r: (r is None, r or 0))
            chosen = by_res[best]
            if best is not None:  # a folder of band files with no resolution in the names says nothing
                log.warning("band %s: no file at %d m; using %s (%d m), resampled bilinearly to %d m",
                            band, resolution, chosen[0], best, resolution)
        if len(chosen) > 1:
            raise ValueError(
                f"{scene_path}: several files for band {band}: {[str(p) for p in chosen]}; "
                "point SCENE_PATH at one granule's IMG_DATA folder"
            )
        found[band] = chosen[0]
    return found


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, affine transform (pixel corners) and size in pixels."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return rasterio.transform.array_bounds(self.height, self.width, self.transform)[:4]


def scene_grid(band_files: dict[str, Path], resolution: int) -> Grid:
    """The common grid of the bands at ``resolution``, after checking they agree.

    Bands at the target resolution must share CRS, transform and size; bands at
    another resolution must share the CRS and cover the same bounds (within one
    of their pixels).

    Raises:
        ValueError: naming the file whose CRS or grid differs.
    """
    infos = {}
    for band, path in band_files.items():
        with open_raster(path) as src:
            infos[band] = (path, src.crs, src.transform, src.width, src.height, src.res)
    ref_band = next((b for b, i in infos.items() if math.isclose(i[5][0], resolution)), None)
    path0, crs0, t0, w0, h0, _ = infos[ref_band or next(iter(infos))]
    if crs0 is None:
        raise ValueError(f"{path0}: the band file has no CRS")
    if ref_band is not None:
        grid = Grid(crs0, t0, w0, h0)
    else:  # no band at the target resolution: lay a grid over the first band's bounds
        left, bottom, right, top = rasterio.transform.array_bounds(h0, w0, t0)
        grid = Grid(crs0, Affine(resolution, 0, left, 0, -resolution, top),
                    round((right - left) / resolution), round((top - bottom) / resolution))
    for band, (path, crs, transform, width, height, res) in infos.items():
        if crs != grid.crs:
            raise ValueError(f"{path}: band {band} is in {crs}, but {path0} is in {grid.crs}; all bands must share one CRS")
        if math.isclose(res[0], resolution):
            if transform != grid.transform or (width, height) != (grid.width, grid.height):
                raise ValueError(
                    f"{path}: band {band} is on another grid ({width}x{height}, origin {transform.c}, {transform.f}) "
                    f"than {path0} ({grid.width}x{grid.height}, origin {grid.transform.c}, {grid.transform.f})"
                )
        else:
            bounds = rasterio.transform.array_bounds(height, width, transform)
            if not np.allclose(bounds, grid.bounds, atol=res[0]):
                raise ValueError(f"{path}: band {band} covers {bounds}, but the scene covers {grid.bounds}")
    return grid


def aligned_window(src_transform: Affine, src_crs: CRS, grid: Grid) -> Window | None:
    """The window of a source raster that is ``grid`` pixel for pixel, or None.

    Only when the source has the grid's CRS and pixel size and its pixel
    corners fall on the grid's (an integer offset): then a windowed read gives
    the grid's pixels without resampling.
    """
    if src_crs != grid.crs or not (math.isclose(src_transform.a, grid.transform.a)
                                   and math.isclose(src_transform.e, grid.transform.e)) \
            or src_transform.b or src_transform.d:
        return None
    col = (grid.transform.c - src_transform.c) / src_transform.a
    row = (grid.transform.f - src_transform.f) / src_transform.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return Window(round(col), round(row), grid.width, grid.height)


def read_on_grid(path: str | Path, grid: Grid, resampling: Resampling = Resampling.bilinear,
                 indexes: int | list[int] = 1, src_nodata: float | None = S2_NODATA,
                 dtype: str = "float32") -> np.ndarray:
    """Read a raster (a file or a URL) onto ``grid``, reading only the part under it.

    Where the file is ``grid`` pixel for pixel (:func:`aligned_window`) the
    window is read as it is; otherwise it is warped (``resampling``: bilinear
    for reflectance, nearest for masks and labels). Outside the file, and
    where it holds ``src_nodata``, the result is ``src_nodata`` (0 if None).

    Returns:
        (rows, cols) for one index, else (len(indexes), rows, cols), of ``dtype``.
    """
    fill = src_nodata if src_nodata is not None else 0
    with open_raster(path) as src:
        try:
            window = aligned_window(src.transform, src.crs, grid)
            if window is not None:
                return src.read(indexes, window=window, boundless=True, fill_value=fill).astype(dtype)
            with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                           resampling=resampling, src_nodata=src_nodata, nodata=fill, dtype=dtype) as vrt:
                return vrt.read(indexes)
        except rasterio.errors.RasterioIOError as err:
            raise ValueError(f"{path}: reading failed (corrupt file?): {err}") from err


def fill_nodata_nearest(array: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Give every invalid pixel the values of its nearest valid pixel.

    Windows that reach into nodata (the AOI's edge, a cloud) then see
    plausible values instead of the nodata number.

    Args:
        array: (bands, rows, cols).
        valid: (rows, cols) bool.

    Returns:
        A (bands, rows, cols) array of the same dtype (``array`` itself when all is valid).
    """
    if valid.all() or not valid.any():
        return array
    nearest = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    return array[:, nearest[0], nearest[1]]


def crop_grid(grid: Grid, window: Window) -> Grid:
    """The part of ``grid`` inside ``window`` (e.g. from :func:`aoi_window`) as a grid of its own."""
    return Grid(grid.crs, rasterio.windows.transform(window, grid.transform), int(window.width), int(window.height))


def aoi_window(grid: Grid, aoi: BaseGeometry | None) -> Window:
    """The window of ``grid`` covering the AOI's bounds, snapped outwards to pixels.

    Raises:
        ValueError: the AOI does not intersect the scene.
    """
    full = Window(0, 0, grid.width, grid.height)
    if aoi is None:
        return full
    if not aoi.intersects(box(*grid.bounds)):
        raise ValueError(
            f"the AOI (bounds {tuple(round(v) for v in aoi.bounds)} in {grid.crs}) does not intersect the scene "
            f"(bounds {tuple(round(v) for v in grid.bounds)}); check AOI and SCENE_PATH"
        )
    left, bottom, right, top = aoi.bounds
    # fractional pixel positions of the corners, snapped outwards (a hair of slack for float error)
    (r0, r1), (c0, c1) = rasterio.transform.rowcol(grid.transform, [left, right], [top, bottom], op=np.asarray)
    r0, c0 = max(math.floor(r0 + 1e-6), 0), max(math.floor(c0 + 1e-6), 0)
    r1, c1 = min(math.ceil(r1 - 1e-6), grid.height), min(math.ceil(c1 - 1e-6), grid.width)
    inside = aoi.intersection(box(*grid.bounds)).area / aoi.area
    if inside < 0.999:
        log.warning("only %.0f %% of the AOI lies inside the scene; the rest is left out", 100 * inside)
    return Window(c0, r0, c1 - c0, r1 - r0)


def write_geotiff(
    path: Path, array: np.ndarray, profile: dict, descriptions: list[str] | None = None,
    colormap: dict[int, tuple[int, int, int, int]] | None = None, tags: dict[str, str] | None = None,
    cog: bool = False, overview_resampling: str = "nearest",
) -> None:
    """Write (bands, rows, cols) or (rows, cols) ``array`` as a tiled, compressed GeoTIFF.

    Written to a temporary name and renamed. ``profile`` gives CRS, transform
    and nodata; ``descriptions`` name the bands; ``colormap`` (value -> RGBA)
    is embedded in band 1 (uint8 or uint16 only); ``tags`` become dataset
    metadata (``gdalinfo`` shows them). ``cog``: a Cloud-Optimised GeoTIFF
    (GDAL's COG driver: 256 px tiles, overviews made with ``overview_resampling``,
    "nearest" for class maps), which web maps and QGIS read by HTTP ranges.
    """
    if array.ndim == 2:
        array = array[np.newaxis]
    shape = dict(count=array.shape[0], height=array.shape[1], width=array.shape[2], dtype=array.dtype.name,
                 compress="deflate")
    if cog:
        prof = dict(profile, driver="COG", blocksize=256, resampling=overview_resampling,
                    predictor="YES" if array.dtype.kind in "uif" else "NO", **shape)
        prof.pop("tiled", None), prof.pop("blockxsize", None), prof.pop("blockysize", None)
    else:
        prof = dict(profile, driver="GTiff", tiled=True, blockxsize=256, blockysize=256, **shape)
        if array.dtype.kind == "f":
            prof["predictor"] = 3
        elif array.dtype.kind in "ui":
            prof["predictor"] = 2
    with atomic_write(path) as tmp:
        with rasterio.open(tmp, "w", **prof) as dst:
            if colormap:  # before the pixels, or libtiff refuses the palette
                dst.write_colormap(1, colormap)
            for i, name in enumerate(descriptions or [], start=1):
                dst.set_band_description(i, name)
            if tags:
                dst.update_tags(**tags)
            dst.write(array)
    log.info("wrote %s (%d band(s), %dx%d)", path, array.shape[0], array.shape[2], array.shape[1])


def read_geotiff(path: Path) -> tuple[np.ndarray, dict]:
    """Read a whole raster as (bands, rows, cols) with its profile.

    Raises:
        FileNotFoundError: naming the file and the stage that writes it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run scene_prep.py first")
    with open_raster(path) as src:
        return src.read(), dict(src.profile)


def read_scene_filled(path: Path) -> tuple[np.ndarray, dict, np.ndarray]:
    """``scene.tif`` for cutting windows: nodata filled from the nearest valid pixel.

    A window that reaches into nodata (the AOI's edge, a masked cloud) then
    sees its neighbourhood's values, not the nodata number, so no frame of
    wrong classes appears along the edges; the valid mask says which pixels
    may be trained on, scored or mapped.

    Returns:
        ``(scene, profile, valid)``: (bands, rows, cols) filled values, the
        profile, and (rows, cols) bool, True where every band has data.
    """
    scene, profile = read_geotiff(path)
    nodata = profile.get("nodata")
    valid = np.ones(scene.shape[1:], bool) if nodata is None else (scene != nodata).all(axis=0)
    return fill_nodata_nearest(scene, valid), profile, valid


def band_names(path: Path) -> list[str]:
    """The band descriptions of a raster written by scene_prep (e.g. ``["B02", ...]``)."""
    with open_raster(path) as src:
        names = list(src.descriptions)
    if not all(names):
        raise ValueError(f"{path}: bands have no names (descriptions); write it with scene_prep.py")
    return names


@contextlib.contextmanager
def chunk_writer(path: Path, profile: dict, count: int, dtype: str, descriptions: list[str] | None = None,
                 colormap: dict[int, tuple[int, int, int, int]] | None = None, nodata: float | None = None,
                 cog: bool = True, overview_resampling: str = "nearest"):
    """A GeoTIFF written chunk by chunk (or tile by tile), in any order: yields ``write(r0, c0, array)``.

    ``array`` is (rows, cols) or channels-last (rows, cols, count), as
    predictions come, whole rows or any box. The chunks go into a temporary tiled GeoTIFF; with
    ``cog`` it is then converted by GDAL's COG driver (256 px tiles, deflate,
    overviews made with ``overview_resampling``) and the temporary file
    removed. The result is renamed to ``path`` only when the block ends without
    error: an interrupted run leaves no file under the final name.
    """
    path = Path(path)
    prof = dict(profile, driver="GTiff", count=count, dtype=dtype, nodata=nodata, compress="deflate", tiled=True,
                blockxsize=256, blockysize=256, BIGTIFF="IF_SAFER")
    prof.pop("blocksize", None)
    tmp = path.with_name(f".{path.stem}.chunks-{os.getpid()}.tif")
    with atomic_write(path) as final, contextlib.ExitStack() as cleanup:
        cleanup.callback(tmp.unlink, missing_ok=True)
        with rasterio.open(tmp, "w", **prof) as dst:
            if colormap:
                dst.write_colormap(1, colormap)
            for i, name in enumerate(descriptions or [], start=1):
                dst.set_band_description(i, name)

            def write(r0: int, c0: int, array: np.ndarray) -> None:
                block = array[np.newaxis] if array.ndim == 2 else np.moveaxis(array, -1, 0)
                dst.write(block.astype(dtype, copy=False), window=Window(c0, r0, block.shape[2], block.shape[1]))

            yield write
        if cog:
            rasterio.shutil.copy(tmp, final, driver="COG", blocksize=256, compress="deflate",
                                 resampling=overview_resampling, predictor="YES", BIGTIFF="IF_SAFER")
        else:
            os.replace(tmp, final)
    log.info("wrote %s (%d band(s), %dx%d, by chunks%s)", path, count, prof["width"], prof["height"],
             ", Cloud-Optimised" if cog else "")
