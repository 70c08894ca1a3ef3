"""Shared fixtures: tiny seeded rasters with a real CRS, and a tiny demo product."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

import config
from landcover import cli, demo

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# A 10 m grid in UTM 30N near Swindon: 40 x 30 pixels.
ORIGIN = (580000.0, 5715000.0)
UTM = "EPSG:32630"


@pytest.fixture(autouse=True)
def restore_config():
    """Undo every override a test makes to the config module."""
    saved = {k: getattr(config, k) for k in cli.config_keys()}
    yield
    for k, v in saved.items():
        setattr(config, k, v)
    if "keras" in sys.modules:  # a stage may have set mixed precision (PRECISION); the next test starts in float32
        sys.modules["keras"].config.set_dtype_policy("float32")
    # stage runs attach a handler to the test's captured stderr; drop it with the test
    for handler in logging.getLogger().handlers[:]:
        logging.getLogger().removeHandler(handler)


def write_raster(path: Path, array: np.ndarray, transform: Affine, crs: str = UTM,
                 nodata: float | None = 0, driver: str = "GTiff") -> Path:
    """Write a (rows, cols) or (bands, rows, cols) array as a raster."""
    if array.ndim == 2:
        array = array[np.newaxis]
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver=driver, width=array.shape[2], height=array.shape[1],
                       count=array.shape[0], dtype=array.dtype, crs=crs, transform=transform,
                       nodata=nodata) as dst:
        dst.write(array)
    return path


def band_values(band_index: int, shape: tuple[int, int]) -> np.ndarray:
    """Known band content: 1000 * (band index + 1) + row * 100 + col (uint16)."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    return (1000 * (band_index + 1) + rows * 100 + cols).astype(np.uint16)


@pytest.fixture
def band_folder(tmp_path) -> Path:
    """A folder of one GeoTIFF per band (B02, B03, B04, B08), 40 x 30 px at 10 m."""
    folder = tmp_path / "bands"
    transform = Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1])
    for i, band in enumerate(["B02", "B03", "B04", "B08"]):
        write_raster(folder / f"T30UWC_20180704T110621_{band}.tif", band_values(i, (30, 40)), transform)
    return folder


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> demo.DemoPaths:
    """The demo generator on a small extent (about 280 x 220 px) around Swindon."""
    out = tmp_path_factory.mktemp("demo")
    return demo.write_demo(out, seed=7, extent=(-1.80, 51.548, -1.76, 51.568))


TINY_AOI = (-1.795, 51.551, -1.765, 51.565)
