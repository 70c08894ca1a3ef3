"""Ground truth on the scene grid: rasters in other CRSs, vectors, vocabularies, real CLC files."""

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import transform as warp_transform
from shapely.geometry import box

from landcover import labels, legend
from landcover.rasters import Grid
from tests.conftest import SHARED_DATA, write_raster

GRID = Grid(rasterio.crs.CRS.from_epsg(32630), Affine(10, 0, 580000, 0, -10, 5715000), 60, 50)
LANJARON = SHARED_DATA / "corine-lanjaron"
needs_lanjaron = pytest.mark.skipif(not LANJARON.exists(), reason="../shared/data/corine-lanjaron is absent")


def _centres(grid: Grid):
    rows, cols = np.mgrid[0:grid.height, 0:grid.width]
    xs, ys = rasterio.transform.xy(grid.transform, rows.ravel(), cols.ravel(), offset="center")
    return rows.ravel(), cols.ravel(), np.asarray(xs), np.asarray(ys)


def test_laea_raster_of_grid_codes_is_reprojected_nearest(tmp_path):
    # a 100 m EPSG:3035 raster with a different grid code in every cell
    left, bottom, right, top = rasterio.warp.transform_bounds(GRID.crs, "EPSG:3035", *GRID.bounds)
    t3035 = Affine(100, 0, np.floor(left / 100) * 100 - 200, 0, -100, np.ceil(top / 100) * 100 + 200)
    codes = (np.arange(12 * 12).reshape(12, 12) % 44 + 1).astype(np.int8)
    path = write_raster(tmp_path / "clc.tif", codes, t3035, crs="EPSG:3035", nodata=-128)
    out, classes = labels.labels_on_grid(path, GRID)
    # the expected label of each scene pixel: the 3035 cell holding its centre
    rows, cols, xs, ys = _centres(GRID)
    lx, ly = warp_transform(GRID.crs, "EPSG:3035", xs, ys)
    r, c = rasterio.transform.rowcol(t3035, lx, ly)
    expected = legend.grid_code_to_clc(codes[np.asarray(r), np.asarray(c)])
    assert (out[rows, cols] == expected).mean() > 0.99  # cells edges may round either way
    assert {c.code for c in classes} == set(np.unique(out).tolist())


def test_vector_in_another_crs_is_rasterised(tmp_path):
    west = box(580000, 5714500, 580300, 5715000)  # cols 0-30, all rows
    east = box(580300, 5714500, 580600, 5715000)
    frame = gpd.GeoDataFrame({"CODE_18": ["211", "231"]}, geometry=[west, east], crs=GRID.crs).to_crs("EPSG:3035")
    path = tmp_path / "clc.gpkg"
    frame.to_file(path, layer="clc")
    out, classes = labels.labels_on_grid(path, GRID, attribute="Code_18")
    assert (out[:, :29] == 211).all() and (out[:, 31:] == 231).all()
    assert [c.code for c in classes] == [211, 231]


def test_other_vocabulary_with_names(tmp_path):
    frame = gpd.GeoDataFrame({"fclass": ["residential", "farmland"]},
                             geometry=[box(580000, 5714500, 580300, 5715000), box(580300, 5714500, 580600, 5715000)],
                             crs=GRID.crs)
    path = tmp_path / "osm.gpkg"
    frame.to_file(path)
    with pytest.raises(ValueError, match=r"osm\.gpkg: unknown class values \['farmland', 'residential'\]"):
        labels.labels_on_grid(path, GRID, attribute="fclass")
    out, classes = labels.labels_on_grid(path, GRID, vocab="names", attribute="fclass")
    assert [(c.code, c.name) for c in classes] == [(1, "farmland"), (2, "residential")]
    assert out[0, 0] == 2 and out[0, -1] == 1


def test_clc_names_are_accepted(tmp_path):
    frame = gpd.GeoDataFrame({"name": ["Pastures"]}, geometry=[box(580000, 5714500, 580600, 5715000)], crs=GRID.crs)
    frame.to_file(tmp_path / "named.geojson")
    out, _ = labels.labels_on_grid(tmp_path / "named.geojson", GRID, attribute="name")
    assert (out == 231).all()


def test_unknown_codes_missing_attribute_and_no_overlap(tmp_path):
    worldcover = np.full((50, 60), 10, np.uint8)  # 10 alone would read as CLC grid code 10
    worldcover[:, 30:] = 60
    path = write_raster(tmp_path / "worldcover.tif", worldcover, GRID.transform)
    with pytest.raises(ValueError, match=r"worldcover\.tif: unknown class codes \[10, 60\]"):
        labels.labels_on_grid(path, GRID)
    frame = gpd.GeoDataFrame({"Code_18": ["211"]}, geometry=[box(0, 0, 10, 10)], crs=GRID.crs)
    frame.to_file(tmp_path / "far.gpkg")
    with pytest.raises(ValueError, match="no attribute 'landuse'"):
        labels.labels_on_grid(tmp_path / "far.gpkg", GRID, attribute="landuse")
    with pytest.raises(ValueError, match=r"far\.gpkg: no polygon overlaps the AOI"):
        labels.labels_on_grid(tmp_path / "far.gpkg", GRID, attribute="Code_18")
    with pytest.raises(FileNotFoundError, match="LABELS_PATH"):
        labels.labels_on_grid(tmp_path / "missing.tif", GRID)


def test_coverage_check():
    valid = np.ones((10, 10), bool)
    lab = np.zeros((10, 10), np.uint16)
    lab[:3] = 211
    with pytest.raises(ValueError, match=r"clc\.tif: the ground truth covers 30\.0%"):
        labels.check_coverage("clc.tif", lab, valid, 0.5)
    assert labels.check_coverage("clc.tif", lab, valid, 0.25) == pytest.approx(0.3)


@needs_lanjaron
def test_real_clc_raster_and_vector_agree_on_a_10m_grid():
    # a 10 m UTM 30N (EPSG:25830) grid over the middle of the municipality
    with rasterio.open(LANJARON / "clc.tif") as src:
        left, bottom, right, top = src.bounds
        values = src.read(1)
    cx, cy = (left + right) / 2, (bottom + top) / 2
    grid = Grid(rasterio.crs.CRS.from_epsg(25830), Affine(10, 0, round(cx) - 2000, 0, -10, round(cy) + 2000), 400, 400)
    from_raster, classes = labels.labels_on_grid(LANJARON / "clc.tif", grid)
    from_vector, _ = labels.labels_on_grid(LANJARON / "clc.gpkg", grid, attribute="Code_18", layer="clc")
    assert {c.code for c in classes} <= set(np.unique(values).tolist())
    assert (from_raster > 0).mean() > 0.9
    # the 25 m raster was made from the polygons: they agree except near borders
    both = (from_raster > 0) & (from_vector > 0)
    assert (from_raster[both] == from_vector[both]).mean() > 0.9


@needs_lanjaron
def test_real_clc_vector_known_points():
    frame = gpd.read_file(LANJARON / "clc.gpkg", layer="clc")
    biggest = frame.loc[frame.area.sort_values().index[-3:]]
    for _, row in biggest.iterrows():
        p = row.geometry.representative_point()
        grid = Grid(rasterio.crs.CRS.from_epsg(32630), Affine(10, 0, p.x - 55, 0, -10, p.y + 55), 11, 11)
        out, _ = labels.labels_on_grid(LANJARON / "clc.gpkg", grid, attribute="code_18", layer="clc")
        assert out[5, 5] == int(row["CODE_18"])
