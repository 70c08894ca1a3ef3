"""patches.py and test_patches.py end to end on the tiny demo product."""

import json

import numpy as np
import pandas as pd
import pytest
import rasterio

import patches
import scene_prep
import test_patches as scene_maps
from landcover import accuracy
from tests.conftest import TINY_AOI


def _args(tiny_demo, tmp_path, *extra):
    return ["--set", f"SCENE_PATH={tiny_demo.product}", "--set", f"LABELS_PATH={tiny_demo.clc_vector}",
            "--set", f"AOI={TINY_AOI}", "--set", f"PREP_DIR={tmp_path / 'prepared'}",
            "--set", f"REPORTS_DIR={tmp_path / 'reports'}", "--set", f"MODELS_DIR={tmp_path / 'models'}",
            "--set", f"PREDICT_DIR={tmp_path / 'maps'}", "--set", "N_POINTS=1500", "--set", "PATCH_MIN_SAMPLES=30",
            "--set", "CNN_EPOCHS=2", "--set", "CNN_TRAIN_SIZE=400", "--set", "BLOCK_SIZE=40", "--set", "REPEATS=2",
            "--set", "PRECISION='float32'", *extra]


@pytest.mark.slow
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_train_sweep_then_whole_scene_maps(tmp_path, tiny_demo, padding):
    args = _args(tiny_demo, tmp_path, "--set", "PATCH_SIZES=[3, 5]", "--set", f"CNN_PADDING={padding}",
                 "--set", f"WRITE_PROBABILITIES={padding == 'valid'}")
    assert scene_prep.main(args) == 0
    assert patches.main(args) == 0
    table = pd.read_csv(tmp_path / "reports" / "patches" / "results.csv")
    assert sorted(zip(table["patch"], table["split"])) == [("3x3", "random"), ("3x3", "spatial"),
                                                          ("5x5", "random"), ("5x5", "spatial")]
    meta = json.loads((tmp_path / "models" / "patch_cnn_spatial_5.json").read_text())
    assert meta["patch_size"] == 5 and meta["bands"] == ["B02", "B03", "B04", "B08"] and meta["padding"] == padding
    assert len(meta["mean"]) == 4 and meta["split"] == "spatial" and meta["classes"]

    assert scene_maps.main(args) == 0  # the best model of the sweep
    best = table.loc[table["val_accuracy"].idxmax()]
    out = tmp_path / "maps" / f"patch_cnn_{best['split']}_{best['patch'].split('x')[0]}"
    with rasterio.open(tmp_path / "prepared" / "scene.tif") as scene, rasterio.open(out / "prediction.tif") as pred:
        assert (pred.crs, pred.transform, pred.shape) == (scene.crs, scene.transform, scene.shape)
        assert pred.colorinterp[0].name == "palette"
        # a Cloud-Optimised GeoTIFF: tiled, compressed, with overviews (nearest: only real classes)
        assert pred.block_shapes[0] == (256, 256) or max(pred.shape) <= 256
        assert pred.compression is not None
        if max(pred.shape) > 256:
            assert pred.overviews(1)
        prediction, colours = pred.read(1), pred.colormap(1)
    assert set(np.unique(prediction)) - {0} <= {c["code"] for c in meta["classes"]}
    assert all(colours[int(c)][3] == 255 for c in np.unique(prediction) if c)
    evaluation = pd.read_csv(out / "evaluation.csv")
    # whole-scene prediction at the held-out points gives what patches.py measured on their patches
    # (exact label equality is proven in test_patch_cnn.py; here batch sizes differ, so allow one near-tie point)
    # (the saved model is the first run's: its row of runs.csv, not the mean over the runs in results.csv)
    runs = pd.read_csv(tmp_path / "reports" / "patches" / "runs.csv")
    first = runs[(runs["patch"] == best["patch"]) & (runs["split"] == best["split"]) & (runs["run"] == 0)].iloc[0]
    assert set(runs["run"]) == {0, 1} and (table["n_runs"] == 2).all()
    assert evaluation.loc[0, "accuracy"] == pytest.approx(first["test_accuracy"], abs=1.01 / evaluation.loc[0, "pixels"])
    for name in ["confidence.tif", "prediction.png", "confusion_aoi.png", "per_class.csv"]:
        assert (out / name).exists(), name
    # the map's accuracy and class areas from the held-out points (Olofsson et al. 2014)
    assessment = pd.read_csv(out / "accuracy_assessment.csv")
    overall, classes = assessment.iloc[-1], assessment.iloc[:-1]
    assert overall["class"] == "overall" and overall["n_points"] == evaluation.loc[0, "pixels"]
    assert 0 < overall["users_accuracy"] < 1 and 0 < overall["users_ci95"] < 0.2
    assert overall["area_km2"] == pytest.approx((prediction > 0).sum() * 1e-4)  # 10 m pixels
    # a mapped class without a test point cannot be assessed: its mapped area is left out of the class areas
    unassessed = classes.loc[classes["n_points"] == 0, "map_share"].sum() * overall["area_km2"]
    assert classes["map_share"].sum() == pytest.approx(1) and classes["area_km2"].sum() == pytest.approx(
        overall["area_km2"] - unassessed)
    assert (assessment["sample"] == (accuracy.SIMPLE_RANDOM if best["split"] == "random" else accuracy.BLOCKS)).all()
    if padding == "valid":  # the probability stack: one uint8 band per class (p x 255), summing to 255
        with rasterio.open(out / "probabilities.tif") as src:
            probs = src.read()
        assert probs.shape[0] == len(meta["classes"]) and probs.dtype == np.uint8
        assert np.abs(probs.sum(axis=0)[prediction > 0].astype(int) - 255).max() <= len(meta["classes"]) // 2 + 1
        # the stage on a LocalCluster of 2 workers (one cluster for the run): the same map and probabilities
        dask_args = [*args, "--set", f"PREDICT_DIR={tmp_path / 'dask'}", "--set", "SCHEDULER='local'",
                     "--set", "PREDICT_CHUNK=50"]
        assert scene_maps.main(dask_args) == 0
        with rasterio.open(tmp_path / "dask" / out.name / "prediction.tif") as other, \
                rasterio.open(tmp_path / "dask" / out.name / "probabilities.tif") as other_probs:
            assert np.array_equal(other.read(1), prediction) and np.array_equal(other_probs.read(), probs)
    else:  # the training product as another scene (PREDICT_SCENES, PREDICT_AOI): prepared the same, same labels
        model = f"{tmp_path / 'models' / out.name}.keras"
        assert scene_maps.main([*args, "--set", f"PREDICT_SCENES=['{tiny_demo.product}']", "--set",
                                f"PREDICT_AOI={TINY_AOI}", "--set", f"PREDICT_MODEL={model}",
                                "--set", "PREDICT_CHUNK=37"]) == 0
        scene_out = out / tiny_demo.product.name.removesuffix(".SAFE")
        with rasterio.open(scene_out / "prediction.tif") as other, rasterio.open(out / "mosaic.vrt") as mosaic:
            assert (other.crs, other.transform) == (pred.crs, pred.transform)
            assert np.array_equal(other.read(1), prediction) and np.array_equal(mosaic.read(1), prediction)


@pytest.mark.slow
def test_model_on_a_scene_with_other_bands_is_refused(tmp_path, tiny_demo, capsys):
    args = _args(tiny_demo, tmp_path, "--set", "PATCH_SIZES=[3]", "--set", "SPLITS=['random']")
    assert scene_prep.main(args) == 0 and patches.main(args) == 0
    other = _args(tiny_demo, tmp_path, "--set", f"PREP_DIR={tmp_path / 'rgb'}", "--set", "BANDS=['B02', 'B03', 'B04']",
                  "--set", f"PREDICT_MODEL={tmp_path / 'models' / 'patch_cnn_random_3.keras'}")
    assert scene_prep.main(other) == 0
    capsys.readouterr()
    assert scene_maps.main(other) == 2
    assert "the model was trained on bands ['B02', 'B03', 'B04', 'B08']" in capsys.readouterr().err
    # a model without a split of the AOI's points (as bigearth_cnn.keras) is still mapped and scored on the AOI
    model = tmp_path / "models" / "patch_cnn_random_3.keras"
    (tmp_path / "models" / "patch_cnn_random_3_points.parquet").unlink()
    assert scene_maps.main([*args, "--set", f"PREDICT_MODEL={model}"]) == 0
    evaluation = pd.read_csv(tmp_path / "maps" / "patch_cnn_random_3" / "evaluation.csv")
    assert evaluation["evaluated_on"].tolist() == ["whole AOI (training pixels included)"]
    assert not (tmp_path / "maps" / "patch_cnn_random_3" / "accuracy_assessment.csv").exists()


def test_missing_model_says_what_to_run(tmp_path, capsys):
    assert scene_maps.main(["--set", f"REPORTS_DIR={tmp_path}"]) == 2
    assert "run patches.py first" in capsys.readouterr().err
