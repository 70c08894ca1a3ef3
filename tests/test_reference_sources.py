"""Reference data as people have it: EEA CORINE quirks, WorldCover, CLC+ Backbone, sparse layers, points."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform as warp_transform
from shapely.geometry import Point

import scene_prep
from landcover import labels, legend
from landcover.rasters import Grid
from tests.conftest import SHARED_DATA, TINY_AOI, write_raster

GRID = Grid(CRS.from_epsg(32630), Affine(10, 0, 580000, 0, -10, 5715000), 60, 50)
WORLDCOVER = SHARED_DATA / "worldcover" / "ESA_WorldCover_10m_2021_v200_N00E006_Map.tif"
GUADELOUPE = SHARED_DATA / "corine-guadeloupe" / "U2018_CLC2018_V2020_20u1_FR_GLP.tif"


def _utm_grid_at(lon: float, lat: float, crs: CRS, size: int = 41) -> Grid:
    x, y = warp_transform("EPSG:4326", crs, [lon], [lat])
    half = size // 2
    return Grid(crs, Affine(10, 0, x[0] - 10 * half - 5, 0, -10, y[0] + 10 * half + 5), size, size)


@pytest.mark.skipif(not WORLDCOVER.exists(), reason="../shared/data/worldcover is absent")
def test_real_worldcover_tile_names_and_colours_at_known_points():
    found = {}
    with rasterio.open(WORLDCOVER) as src:
        table = src.colormap(1)
        # São Tomé: a window of the tile around the island, searched for homogeneous 5 x 5 px patches
        window = rasterio.windows.from_bounds(6.45, 0.0, 6.8, 0.45, src.transform)
        values = src.read(1, window=window)
        transform = src.window_transform(window)
    for code in (10, 30, 50, 80):
        for r, c in zip(*np.nonzero(values == code)):
            if r > 3 and c > 3 and (values[r - 3:r + 4, c - 3:c + 4] == code).all():
                found[code] = rasterio.transform.xy(transform, r, c)
                break
    assert set(found) >= {10, 80}, found
    crs = CRS.from_epsg(32632)
    for code, (lon, lat) in found.items():
        ref = labels.read_reference(WORLDCOVER, _utm_grid_at(lon, lat, crs), vocab="auto")
        assert ref.vocab == "worldcover"  # from the file name, never from the values
        assert ref.labels[20, 20] == code
        info = {c.code: c for c in ref.classes}[code]
        assert info.name == legend.VOCABULARIES["worldcover"].by_code()[code].name
        assert info.rgb == tuple(table[code][:3])  # the official legend is the tile's own colour table


def test_worldcover_under_another_name_is_recognised_by_its_colour_table(tmp_path):
    values = np.full((50, 60), 10, np.uint8)
    values[:, 30:] = 40  # 10 and 40 are also CLC grid codes: the values alone must not decide
    path = write_raster(tmp_path / "landcover_2021.tif", values, GRID.transform)
    with pytest.raises(ValueError, match=r"landcover_2021\.tif: LABEL_VOCAB='auto' cannot tell the vocabulary"):
        labels.read_reference(path, GRID, vocab="auto")
    with rasterio.open(path, "r+") as dst:
        dst.write_colormap(1, {c.code: (*c.rgb, 255) for c in legend.WORLDCOVER_CLASSES})
    ref = labels.read_reference(path, GRID, vocab="auto")
    assert ref.vocab == "worldcover" and [c.name for c in ref.classes] == ["Tree cover", "Cropland"]
    assert ref.labels[0, 0] == 10 and ref.labels[0, -1] == 40


@pytest.mark.skipif(not GUADELOUPE.exists(), reason="../shared/data/corine-guadeloupe is absent")
def test_real_guadeloupe_clc_raster_without_nodata_tag():
    with rasterio.open(GUADELOUPE) as src:
        assert src.nodata is None and src.crs.to_epsg() == 4559
        values = src.read(1)
        transform, crs = src.transform, src.crs
    checked = 0
    for grid_code in (2, 12, 23, 44):  # urban, arable, broad-leaved forest, sea
        rows, cols = np.nonzero(values == grid_code)
        inner = [(r, c) for r, c in zip(rows, cols) if 2 <= r < values.shape[0] - 2 and 2 <= c < values.shape[1] - 2
                 and (values[r - 2:r + 3, c - 2:c + 3] == grid_code).all()]
        if not inner:
            continue
        x, y = rasterio.transform.xy(transform, *inner[len(inner) // 2])
        lon, lat = warp_transform(crs, "EPSG:4326", [x], [y])
        ref = labels.read_reference(GUADELOUPE, _utm_grid_at(lon[0], lat[0], CRS.from_epsg(32620)), vocab="auto")
        code = legend.CLC_CLASSES[grid_code - 1].code
        assert ref.vocab == "clc" and ref.labels[20, 20] == code
        assert {c.code: c.name for c in ref.classes}[code] == legend.CLC_BY_CODE[code].name
        checked += 1
    assert checked >= 3
    # outside the coverage (0, no nodata tag) there is no label
    edge = _utm_grid_at(-61.9, 16.55, CRS.from_epsg(32620))  # open sea west of Basse-Terre, outside the file's data
    ref = labels.read_reference(GUADELOUPE, edge, vocab="clc")
    assert set(np.unique(ref.labels).tolist()) <= {0, 523}


def test_eea_grid_code_special_values_are_no_label(tmp_path):
    values = np.full((50, 60), 12, np.int16)  # arable
    values[:10] = 48   # NODATA
    values[10:20] = 49  # UNCLASSIFIED LAND SURFACE
    values[20:25] = 50  # UNCLASSIFIED WATER BODIES
    values[25:30] = 255
    values[30:35] = -128
    path = write_raster(tmp_path / "U2018_CLC2018_V2020_20u1.tif", values, GRID.transform, nodata=None)
    ref = labels.read_reference(path, GRID, vocab="auto")
    assert (ref.labels[:35] == 0).all() and (ref.labels[35:] == 211).all()
    assert [c.code for c in ref.classes] == [211]


def test_older_release_with_three_digit_codes_999_and_vat_colours(tmp_path):
    values = np.full((50, 60), 211, np.uint16)
    values[:, :10] = 999  # the older release's "no data"
    values[:, 40:] = 311
    path = write_raster(tmp_path / "g100_clc12_V18_5.tif", values, GRID.transform, nodata=None)
    vat = pd.DataFrame({"Value": [211, 311, 999], "Red": [1, 2, 3], "Green": [4, 5, 6], "Blue": [7, 8, 9],
                        "LABEL3": ["Non-irrigated arable land", "Broad-leaved forest", "NODATA"]})
    import pyogrio

    # a plain table written as dBase beside the raster, as the EEA ships its value attribute table
    pyogrio.write_dataframe(vat, tmp_path / "g100_clc12_V18_5.tif.vat.dbf", driver="ESRI Shapefile")
    ref = labels.read_reference(path, GRID, vocab="clc")
    assert (ref.labels[:, :10] == 0).all() and ref.labels[0, 20] == 211 and ref.labels[0, 50] == 311
    assert {c.code: c.rgb for c in ref.classes} == {211: (1, 4, 7), 311: (2, 5, 8)}


def test_clcplus_backbone_vocabulary(tmp_path):
    values = np.full((50, 60), 6, np.uint8)  # permanent herbaceous
    values[:, :20] = 1     # sealed
    values[:, 50:] = 254   # outside area
    values[:5] = 253       # coastal seawater buffer
    path = write_raster(tmp_path / "CLMS_CLCplus_RASTER_2018_010m_eu_03035_V1_1.tif", values, GRID.transform,
                        nodata=255)
    ref = labels.read_reference(path, GRID, vocab="auto")
    assert ref.vocab == "clcplus"
    assert [(c.code, c.name) for c in ref.classes] == [(1, "Sealed"), (6, "Permanent herbaceous")]
    assert (ref.labels[:5] == 0).all() and (ref.labels[:, 50:] == 0).all() and ref.labels[10, 0] == 1
    values[0, 0] = 12
    write_raster(path, values, GRID.transform, nodata=255)
    with pytest.raises(ValueError, match=r"unknown class codes \[12\] \(not clcplus classes"):
        labels.read_reference(path, GRID, vocab="clcplus")


def test_labelled_points_gpkg_and_csv(tmp_path):
    # three survey points in lon/lat, two of them inside the grid
    xs, ys = rasterio.transform.xy(GRID.transform, [5, 40, 0], [5, 30, 0])
    lon, lat = warp_transform(GRID.crs, "EPSG:4326", xs, ys)
    lon[2], lat[2] = 10.0, 45.0  # far away
    frame = gpd.GeoDataFrame({"LC": ["Cropland", "Tree cover", "Cropland"]},
                             geometry=[Point(x, y) for x, y in zip(lon, lat)], crs="EPSG:4326")
    frame.to_file(tmp_path / "survey.gpkg")
    ref = labels.read_reference(tmp_path / "survey.gpkg", GRID, vocab="worldcover", attribute="lc")
    assert ref.points and ref.labels[5, 5] == 40 and ref.labels[40, 30] == 10 and (ref.labels > 0).sum() == 2
    pd.DataFrame({"TH_LONG": lon, "TH_LAT": lat, "LC1": ["211", "311", "211"]}).to_csv(tmp_path / "lucas.csv")
    ref = labels.read_reference(tmp_path / "lucas.csv", GRID, vocab="clc", attribute="lc1")
    assert ref.points and ref.labels[5, 5] == 211 and ref.labels[40, 30] == 311
    pd.DataFrame({"E": lon, "N": lat, "LC1": ["211"] * 3}).to_csv(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match=r"bad\.csv: a CSV of labelled points needs longitude and latitude"):
        labels.read_reference(tmp_path / "bad.csv", GRID, vocab="clc", attribute="lc1")


def test_scene_prep_with_points_samples_every_point(tmp_path, tiny_demo):
    west, south, east, north = TINY_AOI
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(west, east, 300), rng.uniform(south, north, 300)
    names = rng.choice(["Pastures", "Non-irrigated arable land"], 300)
    gpd.GeoDataFrame({"class": names}, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326") \
        .to_file(tmp_path / "field_points.gpkg")
    args = ["--set", f"SCENE_PATH={tiny_demo.product}", "--set", f"LABELS_PATH={tmp_path / 'field_points.gpkg'}",
            "--set", "LABEL_VOCAB='clc'", "--set", "LABEL_ATTRIBUTE='class'", "--set", f"AOI={TINY_AOI}",
            "--set", f"PREP_DIR={tmp_path / 'out'}"]
    assert scene_prep.main(args) == 0
    table = pd.read_parquet(tmp_path / "out" / "points.parquet")
    with rasterio.open(tmp_path / "out" / "labels.tif") as lab:
        truth = lab.read(1)
    # every point on a valid pixel is a sample; some fall into the masked cloud and shadow
    assert len(table) == (truth > 0).sum() and 200 < len(table) < 300 and set(table["label"]) == {211, 231}
