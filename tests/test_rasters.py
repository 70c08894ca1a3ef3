"""Band discovery, merge, crop and the errors for bad products."""

import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import box

from landcover import aoi, mosaic, products, rasters
from tests.conftest import ORIGIN, band_values, write_raster

BANDS = ["B02", "B03", "B04", "B08"]
NODATA = products.HARMONIZED_NODATA


def _read(folder, bands, window=None, poly=None):
    """The bands of a folder product merged on its grid (or a window of it), unmasked."""
    prods = products.open_products(folder, bands, 10, None)
    grid = rasters.scene_grid(prods[0].bands, 10)
    crop = grid if window is None else rasters.crop_grid(grid, window)
    scene, profile, _ = mosaic.read_mosaic(prods, crop, poly, mask_mode=False)
    return scene, profile, grid


def test_merge_keeps_band_order_and_values(band_folder):
    scene, profile, grid = _read(band_folder, ["B08", "B02"])
    assert scene.shape == (2, 30, 40) and scene.dtype == np.int16  # no metadata: no offset, the values as stored
    assert np.array_equal(scene[0], band_values(3, (30, 40)))
    assert np.array_equal(scene[1], band_values(0, (30, 40)))
    assert profile["transform"] == grid.transform and profile["crs"] == grid.crs


def test_aoi_crop_bounds_and_outside_pixels(band_folder):
    files = rasters.find_band_files(band_folder, BANDS, 10)
    grid = rasters.scene_grid(files, 10)
    # a box from pixel (row 5, col 10) to (row 15, col 30), with a corner cut off
    poly = box(ORIGIN[0] + 100, ORIGIN[1] - 150, ORIGIN[0] + 300, ORIGIN[1] - 50)
    poly = poly.difference(box(ORIGIN[0] + 250, ORIGIN[1] - 150, ORIGIN[0] + 300, ORIGIN[1] - 100))
    window = rasters.aoi_window(grid, poly)
    assert (window.row_off, window.col_off, window.height, window.width) == (5, 10, 10, 20)
    scene, profile, _ = _read(band_folder, BANDS, window, poly)
    assert profile["transform"].c == ORIGIN[0] + 100 and profile["transform"].f == ORIGIN[1] - 50
    assert np.array_equal(scene[0, 0], band_values(0, (30, 40))[5, 10:30])
    # the cut corner (full-scene rows 10-14, cols 25-29) is nodata, the rest is not
    assert (scene[:, 9, 19] == NODATA).all() and (scene[:, 5, 15] == NODATA).all()
    assert (scene[:, 4, 14] != NODATA).all() and (scene[:, 9, 14] != NODATA).all()


def test_lonlat_aoi_is_reprojected(band_folder):
    files = rasters.find_band_files(band_folder, BANDS, 10)
    grid = rasters.scene_grid(files, 10)
    geom = aoi.aoi_geometry((-1.85, 51.55, -1.83, 51.56), grid.crs)
    lon_lat_centre = rasterio.warp.transform(grid.crs, "EPSG:4326", [geom.centroid.x], [geom.centroid.y])
    assert lon_lat_centre[0][0] == pytest.approx(-1.84, abs=1e-4)
    assert lon_lat_centre[1][0] == pytest.approx(51.555, abs=1e-4)


def test_aoi_outside_scene_is_an_error(band_folder):
    files = rasters.find_band_files(band_folder, BANDS, 10)
    grid = rasters.scene_grid(files, 10)
    far = aoi.aoi_geometry((10.0, 45.0, 10.1, 45.1), grid.crs)
    with pytest.raises(ValueError, match="does not intersect the scene"):
        rasters.aoi_window(grid, far)


def _touch_jp2(path, res):
    write_raster(path, np.ones((6, 6), np.uint16), Affine(res, 0, ORIGIN[0], 0, -res, ORIGIN[1]), driver="JP2OpenJPEG")


def test_l2a_discovery_prefers_the_target_resolution(tmp_path):
    img = tmp_path / "S2B_MSIL2A_20190601T110629_N0212_R137_T30UWC_20190601T120000.SAFE" / "GRANULE" / "L2A_T30UWC_A1" / "IMG_DATA"
    for res in (10, 20):
        for band in ["B02", "B08" if res == 10 else "B8A"]:
            _touch_jp2(img / f"R{res}m" / f"T30UWC_20190601T110629_{band}_{res}m.jp2", res)
    _touch_jp2(img.parent / "QI_DATA" / "MSK_CLDPRB_B02_20m.jp2", 20)
    safe = img.parents[2]
    files = rasters.find_band_files(safe, ["B02", "B08", "B8A"], 10)
    assert files["B02"].parent.name == "R10m"
    assert files["B08"].name.endswith("_B08_10m.jp2")
    assert files["B8A"].name.endswith("_B8A_20m.jp2")
    assert rasters.find_band_files(safe, ["B02"], 20)["B02"].parent.name == "R20m"
    assert rasters.find_band_files(img, ["B02"], 10)["B02"].parent.name == "R10m"


def test_l1c_discovery(tmp_path):
    img = tmp_path / "S2A_MSIL1C_20180704T110621_N0206_R137_T30UWC_20180704T113447.SAFE" / "GRANULE" / "L1C_T30UWC_A015855_20180704T110621" / "IMG_DATA"
    for band in ["B02", "B03", "B04", "B08", "B8A", "TCI"]:
        _touch_jp2(img / f"T30UWC_20180704T110621_{band}.jp2", 10)
    files = rasters.find_band_files(img.parents[2], BANDS, 10)
    assert [p.name for p in files.values()] == [f"T30UWC_20180704T110621_{b}.jp2" for b in BANDS]


def test_bands_at_other_resolution_are_resampled_bilinear(tmp_path):
    folder = tmp_path / "mixed"
    write_raster(folder / "B02_10m.tif", np.ones((20, 20), np.uint16), Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]))
    ramp = np.tile(np.arange(100, 1100, 100, dtype=np.uint16), (10, 1))  # +100 per 20 m pixel eastwards
    write_raster(folder / "B11_20m.tif", ramp, Affine(20, 0, ORIGIN[0], 0, -20, ORIGIN[1]))
    scene, _, _ = _read(folder, ["B02", "B11"])
    assert scene.shape == (2, 20, 20)
    # 10 m pixel centres between 20 m centres: bilinear gives the mean of neighbours
    assert scene[1, 5, 4] == 275 and scene[1, 5, 5] == 325


def test_missing_band_names_the_band_and_folder(band_folder):
    with pytest.raises(FileNotFoundError, match=r"bands: no file for band B05"):
        rasters.find_band_files(band_folder, ["B02", "B05"], 10)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        rasters.find_band_files(band_folder / "nope.SAFE", ["B02"], 10)


def test_band_in_another_crs_is_an_error(band_folder):
    write_raster(band_folder / "T30UWC_20180704T110621_B08.tif", band_values(3, (30, 40)),
                 Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]), crs="EPSG:32631")
    files = rasters.find_band_files(band_folder, BANDS, 10)
    with pytest.raises(ValueError, match=r"B08\.tif: band B08 is in EPSG:32631"):
        rasters.scene_grid(files, 10)


def test_band_on_another_grid_is_an_error(band_folder):
    write_raster(band_folder / "T30UWC_20180704T110621_B03.tif", band_values(1, (30, 40)),
                 Affine(10, 0, ORIGIN[0] + 10, 0, -10, ORIGIN[1]))
    files = rasters.find_band_files(band_folder, BANDS, 10)
    with pytest.raises(ValueError, match=r"B03\.tif: band B03 is on another grid"):
        rasters.scene_grid(files, 10)


def test_corrupt_raster_is_an_error(band_folder):
    (band_folder / "T30UWC_20180704T110621_B04.tif").write_bytes(b"II*\x00 this is not a tiff")
    files = rasters.find_band_files(band_folder, BANDS, 10)
    with pytest.raises(ValueError, match=r"B04\.tif: not a readable raster"):
        rasters.scene_grid(files, 10)


def test_written_geotiff_keeps_georeferencing(tmp_path, band_folder):
    scene, profile, grid = _read(band_folder, BANDS)
    rasters.write_geotiff(tmp_path / "out.tif", scene, profile, descriptions=BANDS)
    back, back_profile = rasters.read_geotiff(tmp_path / "out.tif")
    assert np.array_equal(back, scene)
    assert back_profile["crs"] == grid.crs and back_profile["transform"] == grid.transform
    with rasterio.open(tmp_path / "out.tif") as src:
        assert src.descriptions == tuple(BANDS) and src.nodata == NODATA
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_band_at_another_resolution_is_used_with_a_warning(tmp_path, caplog):
    img = tmp_path / "S2B_MSIL2A_20190601T110629_N0212_R137_T30UWC_20190601T120000.SAFE" / "GRANULE" / "L2A_T1" / \
        "IMG_DATA"
    _touch_jp2(img / "R10m" / "T30UWC_20190601T110629_B02_10m.jp2", 10)
    _touch_jp2(img / "R20m" / "T30UWC_20190601T110629_B8A_20m.jp2", 20)
    with caplog.at_level("WARNING"):
        files = rasters.find_band_files(img.parents[2], ["B02", "B8A"], 10)
    assert files["B8A"].parent.name == "R20m"
    assert "band B8A: no file at 10 m; using" in caplog.text
    assert "_B8A_20m.jp2 (20 m), resampled bilinearly" in caplog.text


def test_fill_nodata_nearest_and_the_filled_scene(tmp_path):
    scene = np.arange(2 * 4 * 5, dtype=np.int16).reshape(2, 4, 5)
    valid = np.ones((4, 5), bool)
    valid[:, 0] = False  # a nodata column at the AOI's edge
    valid[2, 3] = False  # a masked pixel inside
    filled = rasters.fill_nodata_nearest(scene, valid)
    assert np.array_equal(filled[:, :, 0], scene[:, :, 1])  # each edge pixel takes its nearest valid neighbour
    assert filled[0, 2, 3] in (scene[0, 1, 3], scene[0, 3, 3], scene[0, 2, 2], scene[0, 2, 4])
    assert np.array_equal(filled[:, valid], scene[:, valid])
    raw = scene.copy()
    raw[:, ~valid] = NODATA
    rasters.write_geotiff(tmp_path / "scene.tif", raw, {"crs": "EPSG:32630", "nodata": NODATA,
                                                        "transform": Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1])})
    back, profile, back_valid = rasters.read_scene_filled(tmp_path / "scene.tif")
    assert np.array_equal(back_valid, valid) and (back != NODATA).all()
    assert np.array_equal(back[:, :, 0], scene[:, :, 1])


def test_read_on_grid_copies_aligned_windows_and_warps_others(tmp_path):
    values = np.arange(1, 401, dtype=np.uint16).reshape(20, 20)
    path = write_raster(tmp_path / "b.tif", values, Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]))
    # a grid shifted by whole pixels, reaching 5 px beyond the file: copied, 0 (nodata) outside
    grid = rasters.Grid(rasterio.crs.CRS.from_epsg(32630), Affine(10, 0, ORIGIN[0] + 50, 0, -10, ORIGIN[1] - 30), 20, 5)
    assert rasters.aligned_window(Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]), grid.crs, grid) is not None
    out = rasters.read_on_grid(path, grid)
    assert np.array_equal(out[:, :15], values[3:8, 5:20]) and (out[:, 15:] == 0).all()
    # half a pixel off: not aligned, warped (bilinear: the mean of two neighbours)
    half = rasters.Grid(grid.crs, Affine(10, 0, ORIGIN[0] + 5, 0, -10, ORIGIN[1]), 4, 4)
    assert rasters.aligned_window(Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]), grid.crs, half) is None
    assert rasters.read_on_grid(path, half)[1, 1] == pytest.approx((values[1, 1] + values[1, 2]) / 2)
