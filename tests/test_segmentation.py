"""Felzenszwalb segmentation, statistics, types and the pixel look-up, on known answers."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import Point

from landcover import segmentation


def _quadrants(noise: float = 5.0, seed: int = 0):
    """(4, 40, 60) scene of four regions with distinct spectra, and the region map."""
    rng = np.random.default_rng(seed)
    region = np.zeros((40, 60), np.int32)
    region[:20, 30:] = 1
    region[20:, :30] = 2
    region[20:, 30:] = 3
    spectra = np.array([[500, 800, 600, 3500], [1500, 1600, 1700, 2000], [300, 400, 300, 200], [900, 1200, 1400, 2600]])
    scene = spectra[region].transpose(2, 0, 1) + rng.normal(0, noise, (4, 40, 60))
    return np.clip(scene, 1, None).astype(np.uint16), region


def test_known_regions_are_recovered():
    # sigma=0: Gaussian pre-smoothing would blend the borders into strips of their own
    scene, region = _quadrants()
    valid = np.ones(region.shape, bool)
    ids = segmentation.segment(scene, valid, scale=20, sigma=0, min_size=20, scaling="reflectance")
    assert ids.min() == 1 and ids.max() == 4
    for r in range(4):
        assert np.unique(ids[region == r]).size == 1  # each region is one segment
    assert np.unique(ids).size == 4


def test_nodata_is_excluded_and_draws_no_edge():
    scene, region = _quadrants()
    valid = np.ones(region.shape, bool)
    valid[5:15, 5:15] = False
    scene[:, ~valid] = 0
    ids = segmentation.segment(scene, valid, scale=20, sigma=0, min_size=20, scaling="reflectance")
    assert (ids[~valid] == 0).all() and (ids[valid] > 0).all()
    assert ids.max() == 4  # the hole did not become a segment or split its region


def test_input_scalings():
    scene = np.full((2, 3, 3), 3276, np.uint16)
    valid = np.ones((3, 3), bool)
    assert segmentation.segmentation_input(scene, valid, "int16")[0, 0, 0] == pytest.approx(3276 / 32767)
    assert segmentation.segmentation_input(scene, valid, "uint16")[0, 0, 0] == pytest.approx(3276 / 65535)
    assert segmentation.segmentation_input(scene, valid, "reflectance")[0, 0, 0] == pytest.approx(0.3276)
    assert segmentation.segmentation_input(scene, valid, "raw").shape == (3, 3, 2)
    with pytest.raises(ValueError, match="SEG_INPUT='percent'"):
        segmentation.segmentation_input(scene, valid, "percent")


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_stats_equal_a_slow_reference(dtype):
    rng = np.random.default_rng(3)
    scene = rng.integers(0, 1000, (2, 30, 30)).astype(dtype)
    ids = rng.integers(0, 8, (30, 30)).astype(np.int32)  # 0 = ignored, segments 1..7
    ids[ids == 5] = 4  # segment 5 has no pixel: NaN statistics
    ids[0, :3] = 7  # odd and even sizes both occur
    stats = segmentation.segment_stats(scene, ids, ["B02", "B08"])
    assert list(stats.index) == list(range(1, 8))
    assert stats.loc[5, "count"] == 0 and np.isnan(stats.loc[5, "B02_median"])
    assert {(ids == s).sum() % 2 for s in (1, 2, 3, 4, 6, 7)} == {0, 1}
    for s in (1, 2, 3, 4, 6, 7):
        assert stats.loc[s, "count"] == (ids == s).sum()
        for b, name in enumerate(["B02", "B08"]):
            values = scene[b][ids == s].astype(float)
            for stat, ref in [("min", values.min()), ("mean", values.mean()), ("max", values.max()),
                              ("median", np.median(values))]:
                assert stats.loc[s, f"{name}_{stat}"] == pytest.approx(ref), (s, name, stat)


def test_types_follow_the_percentiles():
    means = np.arange(1, 101, dtype=float)  # percentiles 10, 25, 50, 75, 90 -> 10.9, 25.75, 50.5, 75.25, 90.1
    types, thresholds = segmentation.segment_types(means)
    assert thresholds == pytest.approx(np.percentile(means, [10, 25, 50, 75, 90]))
    assert np.bincount(types).tolist() == [0, 10, 15, 25, 25, 15, 10]
    assert types[0] == 1 and types[-1] == 6 and types[50] == 4


def test_segment_mean_of_one_band_or_all():
    stats = pd.DataFrame({"B02_mean": [1.0, 3.0], "B08_mean": [5.0, 7.0]})
    assert segmentation.segment_means(stats, ["B02", "B08"]).tolist() == [3.0, 5.0]
    assert segmentation.segment_means(stats, ["B02", "B08"], "B08").tolist() == [5.0, 7.0]
    with pytest.raises(ValueError, match="SEG_TYPE_BAND='B04'"):
        segmentation.segment_means(stats, ["B02", "B08"], "B04")


def test_pixel_lookup_matches_the_polygon_holding_the_point():
    scene, region = _quadrants()
    valid = np.ones(region.shape, bool)
    transform = Affine(10, 0, 580000, 0, -10, 5715000)
    ids, stats, types = segmentation.segment_scene(
        scene, valid, ["B02", "B03", "B04", "B08"], scale=100, sigma=0.5, min_size=20, scaling="reflectance",
        type_band=None, percentiles=(25, 50, 75), max_gb=1)
    polygons = segmentation.segment_polygons(ids, transform, CRS.from_epsg(32630), stats, types)
    rng = np.random.default_rng(1)
    points = pd.DataFrame({"row": rng.integers(0, 40, 200), "col": rng.integers(0, 60, 200)})
    points = segmentation.add_segment_columns(points, ids, types)
    centres = [Point(580005 + 10 * c, 5714995 - 10 * r) for r, c in zip(points["row"], points["col"])]
    joined = gpd.sjoin(gpd.GeoDataFrame(points, geometry=centres, crs=polygons.crs),
                       polygons[["segment", "type", "geometry"]], predicate="within")
    assert len(joined) == 200
    assert (joined["segment_left"] == joined["segment_right"]).all()
    assert (joined["segment_type"] == joined["type"]).all()


def test_too_large_a_scene_is_refused():
    with pytest.raises(ValueError, match=r"segmenting 44,000,000 pixels needs about 13\.2 GB"):
        segmentation.check_memory(44_000_000, 8)
    segmentation.check_memory(4_400_000, 8)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="SEG_PERCENTILES"):
        segmentation.check_settings(1200, 0.5, 500, "int16", (50, 25))
    with pytest.raises(ValueError, match="SEG_SCALE=0"):
        segmentation.check_settings(0, 0.5, 500, "int16", (10, 90))


def test_sweep_entries_and_columns():
    assert segmentation.sweep_entries([1200, [5, 50], (100, 500)], 500) == [(1200, 500), (5, 50), (100, 500)]
    assert segmentation.sweep_column(5, 50) == "segment_type_s5_m50"
    assert segmentation.sweep_column(0.5, 20) == "segment_type_s0.5_m20"
    with pytest.raises(ValueError, match="repeated"):
        segmentation.sweep_entries([1200, [1200, 500]], 500)
    with pytest.raises(ValueError, match="SEG_SCALE=0"):
        segmentation.sweep_entries([0], 500)


def test_smaller_scales_give_smaller_segments():
    """The sweep's point: a smaller scale (and min size) gives more, smaller segments."""
    rng = np.random.default_rng(2)
    scene = np.repeat(np.repeat(rng.integers(500, 3000, (4, 12, 12)), 10, axis=1), 10, axis=2).astype(np.int16)
    scene = scene + rng.integers(-30, 30, scene.shape).astype(np.int16)
    valid = np.ones(scene.shape[1:], bool)
    points = pd.DataFrame({"row": [5, 60, 115], "col": [5, 60, 115]})
    settings = {"sigma": 0.5, "scaling": "raw", "type_band": None, "percentiles": (10, 25, 50, 75, 90),
                "max_gb": 1.0}
    points, summary = segmentation.sweep(scene, valid, ["B02", "B03", "B04", "B08"], points,
                                         [(50000, 2000), (500, 20)], settings)
    assert summary["segments"].iloc[0] < summary["segments"].iloc[1]
    assert summary["median_size_px"].iloc[0] > summary["median_size_px"].iloc[1]
    assert {"segment_type_s50000_m2000", "segment_type_s500_m20"} <= set(points.columns)
    assert points["segment_type_s500_m20"].between(1, 6).all()
