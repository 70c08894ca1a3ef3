"""Maps of other scenes (PREDICT_SCENES): two products in UTM zones of their own, stamps, restarts, the mosaic."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import transform as warp_transform

import config
from landcover import inference, models, patch_data, rasters, scene_maps
from tests.conftest import ORIGIN
from tests.test_products import write_product, zone_tiles

BANDS = ["B02", "B03", "B04", "B08"]
CODES = np.array([211, 231, 311])


def two_zones(root):
    """Two 60 x 40 px products either side of 0 degrees east: one in UTM 30N, one in UTM 31N, 800 m apart."""
    return zone_tiles(root, 1000, 400, 200, 60, 40)


def tiny_model(tmp_path, padding="same"):
    models.seed_keras(5, True, "float32")
    model = models.build_patch_cnn(5, 4, 3, padding=padding, filters=(4, 8), dense=16)
    meta = {"patch_size": 5, "padding": padding, "bands": BANDS, "mean": [2000.0] * 4, "std": [800.0] * 4,
            "classes": [{"code": int(c), "name": f"class {c}"} for c in CODES]}
    path = tmp_path / f"cnn_{padding}.keras"
    models.save_model(path, model, meta)
    return path, *models.load_model(path)


def run_scenes(sources, path, model, meta, out, client=None, probabilities=None, chunk=16):
    return scene_maps.predict_scenes(
        sources, path, model, meta, scene_maps.preparation(meta, config), CODES,
        {int(c): (50 * i, 100, 200, 255) for i, c in enumerate(CODES)}, [f"class {c}" for c in CODES], out,
        client=client, chunk=chunk, batch_size=64, tile_mb=1, probabilities=probabilities)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return two_zones(tmp_path_factory.mktemp("zones"))


@pytest.mark.slow
def test_two_scenes_in_their_own_zones_and_the_mosaic_covers_both(tmp_path, scenes):
    a, b = scenes
    path, model, meta = tiny_model(tmp_path)
    folders = run_scenes([a, b], path, model, meta, tmp_path / "maps")
    assert [f.name for f in folders] == [a.stem, b.stem]
    maps = []
    for folder, source, epsg in zip(folders, (a, b), (32630, 32631)):
        with rasterio.open(folder / "prediction.tif") as pred, \
                rasterio.open(next(source.rglob("*_B02_10m.tif"))) as band:
            # each scene on its own product grid, in its own UTM zone: no resampling
            assert pred.crs.to_epsg() == epsg and pred.transform == band.transform and pred.shape == band.shape
            assert pred.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and pred.colormap(1)[211][3] == 255
            maps.append((pred.read(1), pred.transform, pred.crs))
        assert (maps[-1][0] > 0).all() and set(np.unique(maps[-1][0])) <= set(CODES)
        # the chunked map (16 px chunks, halos across chunk edges) is the whole-scene per-patch prediction
        scene, _, valid, _ = scene_maps.read_scene(str(source), scene_maps.preparation(meta, config))
        padded = patch_data.normalised_padded(rasters.fill_nodata_nearest(scene, valid), meta["mean"], meta["std"], 5)
        expected, _ = inference.map_from_tiles(inference.window_tiles(model, padded, 5, valid, batch_size=64),
                                               valid.shape, CODES, valid)
        assert np.array_equal(maps[-1][0], expected)
        stamp = json.loads((folder / scene_maps.STAMP).read_text())
        assert stamp["source"] == str(source) and stamp["settings"]["BANDS"] == BANDS
        assert not list(folder.glob(".*"))  # no temporary file left
    # the mosaic: in the first scene's CRS, covering both, the second scene warped into it
    with rasterio.open(tmp_path / "maps" / "mosaic.vrt") as mosaic:
        assert mosaic.crs.to_epsg() == 32630 and mosaic.colormap(1)[231][3] == 255
        whole = mosaic.read(1)
        for labels, transform, crs in maps:
            rows, cols = np.mgrid[0:40:7, 0:60:7]
            xs, ys = rasterio.transform.xy(transform, rows.ravel(), cols.ravel())
            mx, my = warp_transform(crs, mosaic.crs, xs, ys)
            r, c = rasterio.transform.rowcol(mosaic.transform, mx, my)
            agree = whole[np.asarray(r), np.asarray(c)] == labels[rows.ravel(), cols.ravel()]
            assert agree.mean() > 0.9  # nearest neighbour: exact but where a point falls on a pixel's edge
        covered = (whole > 0).sum()
        assert 0.97 * 4800 < covered < 1.03 * 4800  # both scenes' 2400 pixels, the warped one +-
    with rasterio.open(tmp_path / "maps" / "confidence_mosaic.vrt") as conf:
        assert conf.read(1).max() <= 1 and (conf.read(1) > 0).sum() == covered


@pytest.mark.slow
def test_restart_skips_finished_scenes_and_a_failed_scene_leaves_no_output(tmp_path, scenes):
    a, b = scenes
    path, model, meta = tiny_model(tmp_path)
    # a product that opens but holds no valid pixel (all DN 0): it fails once mapped, after the first scene
    broken = write_product(tmp_path, "S2B_MSIL2A_broken", np.zeros((4, 20, 30), np.uint16),
                           Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]))
    with pytest.raises(ValueError, match="S2B_MSIL2A_broken.SAFE: no valid, unmasked pixel in PREDICT_AOI"):
        run_scenes([a, broken], path, model, meta, tmp_path / "maps")
    done = tmp_path / "maps" / a.stem
    assert (done / scene_maps.STAMP).exists()  # the scene before the failure is complete and stamped
    failed = tmp_path / "maps" / broken.stem
    assert not failed.exists() or not [f for f in failed.rglob("*") if f.is_file()]
    first = (done / "prediction.tif").stat().st_mtime_ns
    # restarted with the failed scene replaced: the finished one is skipped, the new one mapped
    run_scenes([a, b], path, model, meta, tmp_path / "maps")
    assert (done / "prediction.tif").stat().st_mtime_ns == first
    assert (tmp_path / "maps" / b.stem / scene_maps.STAMP).exists()
    # a changed setting voids the stamp: the scene is mapped again
    run_scenes([a], path, model, meta, tmp_path / "maps", probabilities="uint8")
    assert (done / "prediction.tif").stat().st_mtime_ns != first
    with rasterio.open(done / "probabilities.tif") as src:
        probs = src.read()
    assert probs.dtype == np.uint8 and probs.shape[0] == 3
    assert np.abs(probs.sum(axis=0).astype(int) - 255).max() <= 2  # p x 255, rounded per class
    # a truncated output is not taken for a finished one
    (done / "confidence.tif").write_bytes(b"")
    stamp = json.loads((done / scene_maps.STAMP).read_text())
    stamp.pop("outputs")
    assert not scene_maps.finished(done, stamp)


def test_scene_ids_are_product_names_made_unique(tmp_path, scenes):
    a, b = scenes
    settings = scene_maps.settings_from(config) | {"BANDS": BANDS}
    assert scene_maps.scene_ids([a, b, a], settings) == [a.stem, b.stem, f"{a.stem}_2"]
    with pytest.raises(FileNotFoundError, match="missing.SAFE"):  # checked before any work
        scene_maps.scene_ids([a, tmp_path / "missing.SAFE"], settings)


def test_scenes_are_prepared_as_the_models_training_scene(monkeypatch):
    meta = {"bands": BANDS, "config": {"HARMONIZE": True, "MASK_CLOUDS": False, "RESOLUTION": 10}}
    monkeypatch.setattr(config, "MASK_CLOUDS", True)
    settings = scene_maps.preparation(meta, config)
    assert settings["MASK_CLOUDS"] is False and settings["BANDS"] == BANDS
    assert settings["CLOUD_THRESHOLD"] == config.CLOUD_THRESHOLD  # not in the model's config: the current value


SEG = {"scale": 100, "sigma": 0.5, "min_size": 20, "scaling": "raw", "type_band": None,
       "percentiles": (10, 25, 50, 75, 90), "max_gb": 1.0}


def segment_two(sources, out, client=None, seg=SEG):
    from landcover import segmentation

    settings = scene_maps.settings_from(config) | {"BANDS": BANDS}
    return segmentation.segment_scenes(sources, settings, seg, out, (2, 98), client)


def test_each_scene_is_segmented_whole_in_its_own_zone_and_skipped_once_done(tmp_path, scenes):
    a, b = scenes
    folders = segment_two([a, b], tmp_path / "segments")
    for folder, epsg in zip(folders, (32630, 32631)):
        with rasterio.open(folder / "segments.tif") as ids, rasterio.open(folder / "segment_types.tif") as types:
            assert ids.crs.to_epsg() == epsg and ids.shape == (40, 60)
            assert ids.read(1).max() > 1 and set(np.unique(types.read(1))) <= set(range(1, 7))
        assert (folder / scene_maps.STAMP).exists()
    first = (folders[0] / "segments.tif").stat().st_mtime_ns
    segment_two([a, b], tmp_path / "segments")  # restarted with the same settings: nothing redone
    assert (folders[0] / "segments.tif").stat().st_mtime_ns == first
    # a scene beyond SEG_MAX_MEMORY_GB is refused, naming the size, and leaves no stamp
    with pytest.raises(ValueError, match="SEG_MAX_MEMORY_GB"):
        segment_two([a], tmp_path / "tiny", seg=SEG | {"max_gb": 1e-6})
    assert not (tmp_path / "tiny" / a.stem / scene_maps.STAMP).exists()


def test_segment_stage_segments_the_scenes_only_when_asked(tmp_path, scenes):
    import segment

    a, b = scenes
    args = ["--set", f"PREDICT_SCENES={[str(a), str(b)]}", "--set", f"PREP_DIR={tmp_path / 'none'}",
            "--set", f"SEG_DIR={tmp_path / 'segments'}", "--set", "SEG_INPUT='raw'", "--set", "SEG_SCALE=100",
            "--set", "SEG_MIN_SIZE=20"]
    assert segment.main([*args, "--set", "SEGMENT_SCENES=True"]) == 0  # no prepared AOI: the scenes only
    assert all((tmp_path / "segments" / "scenes" / p.stem / scene_maps.STAMP).exists() for p in (a, b))
    assert segment.main([*args, "--set", f"SEG_DIR={tmp_path / 'off'}"]) == 2  # not asked: the AOI, which is missing
    assert not (tmp_path / "off" / "scenes").exists()


@pytest.mark.slow
def test_a_stac_item_is_a_scene_too(tmp_path):
    """A STAC item (COG assets, scale and offset) mapped like a product folder: its id names the folder."""
    from tests.test_products import _item, reflectance_field

    dn = (np.rint(reflectance_field((30, 40)) * 10000) + 1000).astype(np.uint16)
    item = _item(tmp_path / "stac", dn, Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]))
    path, model, meta = tiny_model(tmp_path)
    (folder,) = run_scenes([item], path, model, meta, tmp_path / "maps")
    assert folder.name == "S2B_30UWC_20230101_0_L2A"  # the item's id
    with rasterio.open(folder / "prediction.tif") as pred:
        assert pred.shape == (30, 40) and pred.transform == Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1])
        assert (pred.read(1) > 0).all()
