"""scene_prep.py end to end on the tiny demo product, and its bad-input behaviour."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.warp

import scene_prep
from landcover.legend import CLC_BY_CODE
from tests.conftest import TINY_AOI


def _args(tiny_demo, out, *extra):
    return ["--set", f"SCENE_PATH={tiny_demo.product}", "--set", f"LABELS_PATH={tiny_demo.clc_vector}",
            "--set", f"AOI={TINY_AOI}", "--set", f"PREP_DIR={out}", "--set", "N_POINTS=2000", *extra]


def test_scene_prep_writes_every_output(tmp_path, tiny_demo):
    out = tmp_path / "prepared"
    assert scene_prep.main(_args(tiny_demo, out, "--set", "SAVE_PATCHES=True", "--set", "PATCH_SIZE=5")) == 0
    for name in ["scene.tif", "aoi.geojson", "truecolor.png", "falsecolor.png", "labels.tif", "classes.json",
                 "points.parquet", "ground_truth.png", "patches_5.npz", "scene_prep_config.json"]:
        assert (out / name).stat().st_size > 0, name
    with rasterio.open(out / "scene.tif") as scene, rasterio.open(out / "labels.tif") as lab:
        assert scene.descriptions == ("B02", "B03", "B04", "B08")
        assert scene.crs == lab.crs and scene.transform == lab.transform and scene.shape == lab.shape
        assert lab.colorinterp[0].name == "palette"
        bands, truth, colours = scene.read(), lab.read(1), lab.colormap(1)
    for code in np.unique(truth[truth > 0]):
        assert colours[int(code)][:3] == CLC_BY_CODE[int(code)].rgb
    table = pd.read_parquet(out / "points.parquet")
    assert len(table) == 2000
    assert (truth[table["row"], table["col"]] == table["label"]).all()
    assert (bands[:, table["row"], table["col"]] > 0).all()
    classes = json.loads((out / "classes.json").read_text())
    assert {c["code"] for c in classes} == set(np.unique(truth[truth > 0]).tolist())
    patches = np.load(out / "patches_5.npz")
    assert patches["patches"].shape == (2000, 5, 5, 4)
    saved = json.loads((out / "scene_prep_config.json").read_text())
    assert saved["N_POINTS"] == 2000
    # the demo product (baseline 05.00) is harmonised, and its cloud and shadow are masked out of everything
    radiometry = saved["radiometry"]
    assert radiometry["products"][0]["baseline"] == "05.00" and radiometry["products"][0]["offsets"]["B02"] == -1000
    assert 0.01 < radiometry["masked_total"] < 0.3 and radiometry["masked_share"]["cloud shadows"] > 0
    with rasterio.open(out / "scene.tif") as scene:
        tags = scene.tags()
        assert scene.dtypes[0] == "int16" and scene.nodata == -32768
    assert tags["PROCESSING_BASELINES"] == "05.00" and tags["RADIOMETRY"].startswith("DN = 10000 x reflectance")
    scl_path = next(tiny_demo.product.rglob("*_SCL_20m.jp2"))
    with rasterio.open(scl_path) as scl_src, rasterio.open(out / "scene.tif") as scene:
        scl = np.zeros(scene.shape, np.uint8)
        rasterio.warp.reproject(rasterio.band(scl_src, 1), scl, dst_transform=scene.transform, dst_crs=scene.crs,
                                resampling=rasterio.enums.Resampling.nearest)
    cloudy = np.isin(scl, [3, 8, 9])
    assert cloudy.sum() > 100 and (bands[:, cloudy] == -32768).all() and (truth[cloudy] == 0).all()
    assert not cloudy[table["row"], table["col"]].any()


def test_raster_ground_truth_gives_the_same_labels(tmp_path, tiny_demo):
    assert scene_prep.main(_args(tiny_demo, tmp_path / "v")) == 0
    assert scene_prep.main(_args(tiny_demo, tmp_path / "r", "--set", f"LABELS_PATH={tiny_demo.clc_raster}")) == 0
    with rasterio.open(tmp_path / "v" / "labels.tif") as v, rasterio.open(tmp_path / "r" / "labels.tif") as r:
        assert (v.read(1) == r.read(1)).mean() > 0.97  # polygon edges vs cell centres


def test_same_seed_same_points(tmp_path, tiny_demo):
    scene_prep.main(_args(tiny_demo, tmp_path / "a"))
    scene_prep.main(_args(tiny_demo, tmp_path / "b"))
    scene_prep.main(_args(tiny_demo, tmp_path / "c", "--set", "SEED=1"))
    a, b, c = (pd.read_parquet(tmp_path / x / "points.parquet") for x in "abc")
    assert a.equals(b) and not a.equals(c)


@pytest.mark.parametrize("override, message", [
    ("N_POINTS=10000000", "N_POINTS=10000000 is larger than the"),
    ("AOI=(10.0, 45.0, 10.1, 45.1)", "does not intersect the scene"),
    ("BANDS=['B02', 'B05x']", "no file for band B05x"),
    ("LABEL_ATTRIBUTE='fclass'", "no attribute 'fclass'"),
    ("PATCH_SIZE=4", "PATCH_SIZE=4"),
    ("MAX_CLOUD_SHARE=0.01", "of the AOI is masked (clouds, shadows, snow: {"),
    ("LABEL_VOCAB='worldcover'", "unknown class values"),
])
def test_bad_input_exits_2_and_keeps_earlier_outputs(tmp_path, tiny_demo, capsys, override, message):
    out = tmp_path / "prepared"
    assert scene_prep.main(_args(tiny_demo, out)) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert scene_prep.main(_args(tiny_demo, out, "--set", override)) == 2
    assert message in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_labels_not_covering_the_aoi(tmp_path, tiny_demo, capsys):
    # keep only the western quarter of the CORINE polygons
    import geopandas as gpd
    frame = gpd.read_file(tiny_demo.clc_vector)
    minx, _, maxx, _ = frame.total_bounds
    part = frame.clip((minx, frame.total_bounds[1], minx + (maxx - minx) / 4, frame.total_bounds[3]))
    part.to_file(tmp_path / "west.gpkg")
    west = f"LABELS_PATH={tmp_path / 'west.gpkg'}"
    # a sparse reference is accepted by default (MIN_LABEL_COVERAGE 1 %) and only the labelled part is sampled
    assert scene_prep.main(_args(tiny_demo, tmp_path / "sparse", "--set", west, "--set", "N_POINTS=500")) == 0
    with rasterio.open(tmp_path / "sparse" / "labels.tif") as lab:
        truth = lab.read(1)
    assert 0.01 < (truth > 0).mean() < 0.5
    assert scene_prep.main(_args(tiny_demo, tmp_path / "o", "--set", west, "--set", "MIN_LABEL_COVERAGE=0.5")) == 2
    assert "west.gpkg: the ground truth covers" in capsys.readouterr().err


def test_band_folder_product(tmp_path, tiny_demo):
    # a folder of GeoTIFFs, one per band, as users export from other tools
    folder = tmp_path / "tifs"
    folder.mkdir()
    for jp2 in tiny_demo.product.rglob("*_10m.jp2"):
        with rasterio.open(jp2) as src:
            profile = dict(src.profile, driver="GTiff")
            with rasterio.open(folder / (jp2.stem.replace("_10m", "") + ".tif"), "w", **profile) as dst:
                dst.write(src.read())
    no_mask = ("--set", "MASK_CLOUDS=False")  # the folder has no SCL beside the bands
    assert scene_prep.main(_args(tiny_demo, tmp_path / "a", *no_mask)) == 0
    # without metadata the offset must be given by hand (SCENE_OFFSET); without it the stored DNs are kept
    assert scene_prep.main(_args(tiny_demo, tmp_path / "b", "--set", f"SCENE_PATH={folder}",
                                 "--set", "SCENE_OFFSET=-1000", *no_mask)) == 0
    assert scene_prep.main(_args(tiny_demo, tmp_path / "c", "--set", f"SCENE_PATH={folder}", *no_mask)) == 0
    with rasterio.open(tmp_path / "a" / "scene.tif") as a, rasterio.open(tmp_path / "b" / "scene.tif") as b, \
            rasterio.open(tmp_path / "c" / "scene.tif") as c:
        va, vc = a.read(), c.read()
        assert np.array_equal(va, b.read())
        valid = va != a.nodata
        assert np.array_equal(vc[valid].astype(int) - va[valid], np.full(valid.sum(), 1000))
    shutil.rmtree(folder)


def test_aoi_as_a_vector_file_in_another_crs_and_csv_points(tmp_path, tiny_demo):
    import geopandas as gpd
    from shapely.geometry import box

    # the same lon/lat box, saved as a GeoPackage in EPSG:3035
    frame = gpd.GeoDataFrame({"name": ["aoi"]}, geometry=[box(*TINY_AOI)], crs="EPSG:4326").to_crs("EPSG:3035")
    frame.to_file(tmp_path / "aoi.gpkg")
    assert scene_prep.main(_args(tiny_demo, tmp_path / "box")) == 0
    assert scene_prep.main(_args(tiny_demo, tmp_path / "file", "--set", f"AOI={tmp_path / 'aoi.gpkg'}",
                                 "--set", "POINTS_FORMAT='csv'")) == 0
    with rasterio.open(tmp_path / "box" / "scene.tif") as a, rasterio.open(tmp_path / "file" / "scene.tif") as b:
        assert a.shape == b.shape and a.transform == b.transform
        # the reprojected polygon's edge may take or leave a pixel on the slanted borders
        assert (a.read(1) > 0).sum() == pytest.approx((b.read(1) > 0).sum(), rel=0.01)
    table = pd.read_csv(tmp_path / "file" / "points.csv")
    assert len(table) == 2000 and {"row", "col", "label", "B08", "NDVI"} <= set(table.columns)
