"""Whole-scene prediction on a Dask LocalCluster of 2 worker processes: the in-process labels, exactly."""

import numpy as np
import pytest

from landcover import cluster, inference, models, patch_data


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
