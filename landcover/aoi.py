"""Area of interest: a lon/lat box, a vector file, or the whole scene."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from rasterio.crs import CRS
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry
from rasterio.warp import transform_geom

from landcover.files import atomic_write

log = logging.getLogger(__name__)


def aoi_geometry(aoi: Any, dst_crs: CRS) -> BaseGeometry | None:
    """The AOI as one (multi)polygon in ``dst_crs``.

    Args:
        aoi: ``(west, south, east, north)`` in degrees (EPSG:4326), a path to a
            vector file in any CRS (the union of its features), or None.
        dst_crs: the scene's CRS.

    Returns:
        The AOI polygon in ``dst_crs``, or None for the whole scene.

    Raises:
        FileNotFoundError: the vector file does not exist.
        ValueError: the box is malformed or the file holds no polygon.
    """
    if aoi is None:
        return None
    if isinstance(aoi, (str, Path)):
        path = Path(aoi)
        if not path.exists():
            raise FileNotFoundError(f"AOI file {path} does not exist; set AOI to a vector file, a lon/lat box or None")
        try:
            frame = gpd.read_file(path)
        except Exception as err:  # pyogrio raises several types for unreadable files
            raise ValueError(f"AOI file {path} cannot be read as a vector file: {err}") from err
        if frame.crs is None:
            raise ValueError(f"AOI file {path} has no CRS; save it with one")
        geom = frame.to_crs(dst_crs).geometry.union_all()
        if geom.is_empty or geom.area == 0:
            raise ValueError(f"AOI file {path} holds no polygon with an area")
        return geom
    if len(aoi) != 4:
        raise ValueError(f"AOI={aoi!r}: expected (west, south, east, north) in degrees, a file path or None")
    west, south, east, north = map(float, aoi)
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise ValueError(f"AOI={aoi!r}: expected west < east and south < north, in degrees lon/lat")
    # densify the edges so that the box stays exact after reprojection
    lonlat = shapely.segmentize(box(west, south, east, north), max_segment_length=0.005)
    return shape(transform_geom("EPSG:4326", dst_crs, mapping(lonlat)))


def write_aoi_geojson(geom: BaseGeometry, crs: CRS, path: Path) -> None:
    """Write the AOI polygon as GeoJSON in lon/lat (RFC 7946), atomically."""
    frame = gpd.GeoDataFrame({"name": ["aoi"]}, geometry=[geom], crs=crs).to_crs("EPSG:4326")
    with atomic_write(path) as tmp:
        frame.to_file(tmp, driver="GeoJSON")
    log.info("wrote %s", path)
