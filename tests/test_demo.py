"""The embedded demo data mirrors the real products' layout and is reproducible."""

import geopandas as gpd
import numpy as np
import rasterio
from scipy import ndimage

from landcover import demo, legend, rasters


def test_layout_like_a_real_l2a_product(tiny_demo):
    jp2 = sorted(p.relative_to(tiny_demo.product) for p in tiny_demo.product.rglob("*.jp2"))
    assert str(jp2[0]).startswith("GRANULE/L2A_T30UWC_")
    assert any(str(p).endswith("IMG_DATA/R10m/T30UWC_20180704T110621_B08_10m.jp2") for p in jp2)
    assert any(str(p).endswith("IMG_DATA/R20m/T30UWC_20180704T110621_B8A_20m.jp2") for p in jp2)
    files = rasters.find_band_files(tiny_demo.product, ["B02", "B03", "B04", "B08", "B11"], 10)
    with rasterio.open(files["B02"]) as b02, rasterio.open(files["B11"]) as b11:
        assert b02.crs.to_epsg() == 32630 and b02.res == (10, 10) and b02.dtypes[0] == "uint16"
        # like real products, the JPEG2000 files set no nodata value: 0 is the convention
        assert b11.res == (20, 20) and b02.nodata is None
        values = b02.read(1)
    assert 100 < np.median(values[values > 0]) < 2000  # reflectance x 10000


def test_corine_like_truth_is_coarse_and_in_laea(tiny_demo):
    with rasterio.open(tiny_demo.clc_raster) as src:
        assert src.crs.to_epsg() == 3035 and src.res == (100, 100)
        assert src.dtypes[0] == "int8" and src.nodata == -128
        grid = src.read(1)
    codes = set(np.unique(grid[grid != -128]).tolist())
    assert codes <= set(range(1, 45))
    frame = gpd.read_file(tiny_demo.clc_vector)
    assert "Code_18" in frame.columns and frame.crs.to_epsg() == 3035
    assert {legend.clc_to_grid_code(int(c)) for c in frame["Code_18"]} == codes
    # minimum mapping unit: every 4-connected patch of one class (1 cell = 1 ha) away from the raster's edge
    # and from nodata covers at least 25 cells; there are such patches to check
    valid = grid != -128
    edge = ~ndimage.binary_erosion(np.pad(valid, 1), border_value=0)[1:-1, 1:-1]
    checked = 0
    for code in codes:
        parts, n = ndimage.label(grid == code)
        sizes = np.bincount(parts.ravel())
        cut = np.unique(parts[edge & (parts > 0)])
        inner = np.setdiff1d(np.arange(1, n + 1), cut)
        assert (sizes[inner] >= 25).all(), (code, sizes[inner])
        checked += inner.size
    assert checked > 0


def test_same_seed_same_data(tmp_path, tiny_demo):
    again = demo.write_demo(tmp_path, seed=7, extent=(-1.80, 51.548, -1.76, 51.568))
    with rasterio.open(tiny_demo.truth) as a, rasterio.open(again.truth) as b:
        assert np.array_equal(a.read(), b.read())
    band = "GRANULE/L2A_T30UWC_A015855_20180704T110621/IMG_DATA/R10m/T30UWC_20180704T110621_B04_10m.jp2"
    with rasterio.open(tiny_demo.product / band) as a, rasterio.open(again.product / band) as b:
        assert np.array_equal(a.read(), b.read())
