"""Whole-scene prediction on a Dask LocalCluster of 2 worker processes: the in-process labels, exactly."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from landcover import cluster, inference, models, patch_data
from tests.test_bigearth import tiny_archive  # noqa: F401  (a fixture)


@pytest.fixture(scope="module")
def client():
    with cluster.connect("local", 2) as c:
        yield c


def _model(tmp_path, padding):
    models.seed_keras(3, True, "float32")
    model = models.build_patch_cnn(5, 4, 3, padding=padding, filters=(4, 8), dense=16)
    path = tmp_path / f"cnn_{padding}.keras"
    models.save_model(path, model, {"patch_size": 5, "padding": padding})
    return model, path


@pytest.mark.slow
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_dask_map_equals_the_in_process_map(tmp_path, client, padding):
    rng = np.random.default_rng(0)
    scene = rng.integers(200, 3000, (4, 37, 53)).astype(np.int16)
    valid = np.ones((37, 53), bool)
    valid[:4, :6] = False  # a masked corner: never predicted
    model, path = _model(tmp_path, padding)
    padded = patch_data.normalised_padded(scene, scene.mean(axis=(1, 2)), scene.std(axis=(1, 2)), 5)
    codes = np.array([211, 231, 311], np.uint16)
    if padding == "valid":
        tiles = inference.fully_convolutional_tiles(models.fully_convolutional(model), padded, 5, valid, tile_mb=1)
    else:
        tiles = inference.window_tiles(model, padded, 5, valid, batch_size=64, tile_mb=1)
    expected, expected_conf = inference.map_from_tiles(tiles, valid.shape, codes, valid)
    # chunks of 16 px: edges, halos and ragged last chunks in both directions
    got, conf = cluster.predict_map(client, path, padded, valid, codes, 5, fully_convolutional=padding == "valid",
                                    chunk=16, batch_size=64, tile_mb=1, scratch=tmp_path / "scratch")
    assert np.array_equal(got, expected) and (got[~valid] == 0).all()
    np.testing.assert_allclose(conf, expected_conf, atol=1e-6)
    # the model was loaded once per worker, not once per task (12 tasks on 2 workers)
    assert len(cluster.chunks(valid.shape, 16)) == 12
    assert sorted(client.run(lambda dask_worker: dask_worker.plugins[cluster.PLUGIN].loads).values()) == [1, 1]
    assert not list((tmp_path / "scratch").iterdir())  # the workers' memory-mapped inputs are removed


def test_unreachable_scheduler_is_one_line_naming_the_address():
    with pytest.raises(ConnectionError, match=r"SCHEDULER='tcp://127\.0\.0\.1:9': cannot reach the Dask scheduler"):
        with cluster.connect("tcp://127.0.0.1:9", 2):
            pass


def test_chunks_cover_the_scene_once():
    boxes = cluster.chunks((37, 53), 16)
    cover = np.zeros((37, 53), int)
    for r0, r1, c0, c1 in boxes:
        cover[r0:r1, c0:c1] += 1
    assert (cover == 1).all()
    with pytest.raises(ValueError, match="PREDICT_CHUNK=0"):
        cluster.chunks((5, 5), 0)


def kill_once(task: str, marker: Path):
    """A worker plugin that kills its worker process (``os._exit``) when the first ``task`` starts executing."""
    from distributed import WorkerPlugin

    class KillOnce(WorkerPlugin):
        name = "kill-once"

        def transition(self, key, start, finish, **kwargs):
            import os

            if finish == "executing" and task in str(key) and not marker.exists():
                marker.touch()
                os._exit(1)  # the worker process dies mid-task; its nanny starts a new one

    return KillOnce()


@pytest.mark.slow
def test_a_worker_killed_mid_run_costs_only_its_task(tmp_path, client):
    """A worker that dies while predicting a chunk: Dask reruns the chunk elsewhere, the map is the same."""
    marker = tmp_path / "killed"
    rng = np.random.default_rng(1)
    scene = rng.integers(200, 3000, (4, 40, 40)).astype(np.int16)
    valid = np.ones((40, 40), bool)
    model, path = _model(tmp_path, "same")
    padded = patch_data.normalised_padded(scene, scene.mean(axis=(1, 2)), scene.std(axis=(1, 2)), 5)
    codes = np.array([211, 231, 311], np.uint16)
    expected, _ = inference.map_from_tiles(inference.window_tiles(model, padded, 5, valid, batch_size=64),
                                           valid.shape, codes, valid)
    client.register_plugin(kill_once("predict_chunk", marker))
    try:
        got, _ = cluster.predict_map(client, path, padded, valid, codes, 5, fully_convolutional=False, chunk=10,
                                     batch_size=64, tile_mb=1, scratch=tmp_path / "scratch")
    finally:
        client.unregister_worker_plugin("kill-once")
    assert marker.exists()  # a worker did die
    assert np.array_equal(got, expected)
    assert not list((tmp_path / "scratch").iterdir())


@pytest.mark.slow
def test_a_model_file_the_workers_cannot_read_is_one_line(tmp_path):
    valid = np.ones((8, 8), bool)
    with cluster.connect("local", 1) as own:
        with pytest.raises(FileNotFoundError, match=r"missing\.keras: the model file is not readable on worker tcp://"):
            cluster.predict_map(own, tmp_path / "missing.keras", np.zeros((12, 12, 4), np.float32), valid,
                                np.array([1]), 5, fully_convolutional=False, chunk=8, batch_size=8, tile_mb=1,
                                scratch=tmp_path)


def test_dask_is_not_imported_without_a_scheduler():
    """SCHEDULER = None: the stages and the modules with a Dask path load without dask or distributed."""
    code = ("import sys, test_patches, segment, read_bigearth, landcover.cluster, landcover.inference, "
            "landcover.scene_maps, landcover.bigearth, landcover.segmentation; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_scenes_on_dask_equal_the_in_process_maps(tmp_path, client):
    """Two scenes in UTM zones of their own, each chunk read and prepared on a worker: the in-process maps,
    the same mosaic."""
    import rasterio

    from tests.test_scene_maps import run_scenes, tiny_model, two_zones

    a, b = two_zones(tmp_path / "products")
    path, model, meta = tiny_model(tmp_path, "valid")
    here = run_scenes([a, b], path, model, meta, tmp_path / "here", probabilities="uint8")
    there = run_scenes([a, b], path, None, meta, tmp_path / "dask", client=client, probabilities="uint8", chunk=24)
    for one, other in zip(here, there):
        for name in ("prediction.tif", "probabilities.tif"):
            with rasterio.open(one / name) as x, rasterio.open(other / name) as y:
                assert (x.crs, x.transform) == (y.crs, y.transform) and np.array_equal(x.read(), y.read())
        assert not list(other.glob(".*"))
    with rasterio.open(tmp_path / "here" / "mosaic.vrt") as x, rasterio.open(tmp_path / "dask" / "mosaic.vrt") as y:
        assert np.array_equal(x.read(), y.read())


def test_bigearth_read_on_dask_gives_the_serial_shards(tmp_path, client, tiny_archive):
    """Batches of patches read on the workers, taken in archive order: the serial run's shards and manifest."""
    import pandas as pd

    from landcover import bigearth

    kwargs = dict(bands=["B02", "B03", "B04", "B08"], targets=[211, 231, 324], policy="first", shard_size=1)
    serial = bigearth.write_shards(tiny_archive, tmp_path / "serial", **kwargs)
    parallel = bigearth.write_shards(tiny_archive, tmp_path / "dask", client=client, batch_size=1, **kwargs)
    for key in ("counts", "shards", "bands", "classes"):
        assert serial[key] == parallel[key]
    assert serial["shards"] == 2 and serial["counts"]["unreadable"] == 2  # several shards, bad patches
    for name in sorted(p.name for p in (tmp_path / "serial").glob("shard_*.npy")):
        assert np.array_equal(np.load(tmp_path / "serial" / name), np.load(tmp_path / "dask" / name)), name
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "serial" / "manifest.parquet"),
                                  pd.read_parquet(tmp_path / "dask" / "manifest.parquet"))
    # stopped early (BIGEARTH_MAX_PATCHES): the serial run's first patches, the batches in flight cancelled
    early = bigearth.write_shards(tiny_archive, tmp_path / "early", client=client, batch_size=1, max_patches=1,
                                  **kwargs)
    assert early["counts"]["kept"] == 1
    assert pd.read_parquet(tmp_path / "early" / "manifest.parquet")["patch"].tolist() == \
        pd.read_parquet(tmp_path / "serial" / "manifest.parquet")["patch"].tolist()[:1]


@pytest.mark.slow
def test_a_worker_killed_while_mapping_a_scene_changes_nothing(tmp_path, client):
    """A worker dies mid-way through a scene's chunk: Dask reruns it; the maps are the undisturbed run's and
    no partial file is left."""
    import rasterio

    from tests.test_scene_maps import run_scenes, tiny_model, two_zones

    a, b = two_zones(tmp_path / "products")
    path, model, meta = tiny_model(tmp_path)
    here = run_scenes([a, b], path, model, meta, tmp_path / "here")
    marker = tmp_path / "killed"
    client.register_plugin(kill_once("predict_scene_chunk", marker))
    try:
        there = run_scenes([a, b], path, None, meta, tmp_path / "dask", client=client)
    finally:
        client.unregister_worker_plugin("kill-once")
    assert marker.exists()
    for one, other in zip(here, there):
        with rasterio.open(one / "prediction.tif") as x, rasterio.open(other / "prediction.tif") as y:
            assert np.array_equal(x.read(), y.read())
        assert not list(other.glob(".*"))


def test_a_forest_maps_on_dask_as_in_process(tmp_path, client):
    """A per-pixel random forest through the patch CNN's path (patch size 1, no halo): the same labels."""
    from sklearn.preprocessing import StandardScaler

    from landcover import pixel_maps

    rng = np.random.default_rng(2)
    scene = rng.integers(200, 3000, (4, 30, 45)).astype(np.int16)
    x = scene.reshape(4, -1).T.astype(np.float32)
    y = (x[:, 3] > x[:, 2]).astype(int) + (x[:, 0] > 1600)
    scaler = StandardScaler().fit(x[:, :4])
    forest = models.random_forest(10, 0).fit(scaler.transform(x), y)
    path = tmp_path / "pixel_random_forest_random.joblib"
    pixel_maps.save(path, "rf", forest, scaler, ["B02", "B03", "B04", "B08"], [],
                    [{"code": c, "name": str(c)} for c in (211, 231, 311)], {"split": "random"})
    model, meta = models.load_model(path)
    padded = patch_data.normalised_padded(scene, meta["mean"], meta["std"], 1)  # the raw values
    valid = np.ones((30, 45), bool)
    codes = np.array([211, 231, 311])
    expected, _ = inference.map_from_tiles(inference.window_tiles(model, padded, 1, valid), valid.shape, codes, valid)
    assert np.array_equal(expected, codes[forest.predict(scaler.transform(x))].reshape(30, 45))
    got, _ = cluster.predict_map(client, path, padded, valid, codes, 1, fully_convolutional=False, chunk=16,
                                 batch_size=64, tile_mb=1, scratch=tmp_path / "scratch")
    assert np.array_equal(got, expected)


@pytest.mark.slow
def test_scenes_segmented_on_dask_equal_the_in_process_segments(tmp_path, client):
    import rasterio

    from tests.test_scene_maps import segment_two, two_zones

    a, b = two_zones(tmp_path / "products")
    here = segment_two([a, b], tmp_path / "here")
    there = segment_two([a, b], tmp_path / "dask", client)
    for one, other in zip(here, there):
        for name in ("segments.tif", "segment_types.tif"):
            with rasterio.open(one / name) as x, rasterio.open(other / name) as y:
                assert np.array_equal(x.read(), y.read())
