"""segment.py, scene_prep.py with SEGMENT = True, and test_segment.py end to end on a tiny scene."""


import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio

import patches
import scene_prep
import segment
import test_patches as scene_maps
import test_segment as segment_experiment
from tests.conftest import TINY_AOI

SMALL = ["--set", "SEG_INPUT=raw", "--set", "SEG_MIN_SIZE=50", "--set", "SEG_SCALE=300"]


def _prep_args(tiny_demo, tmp_path, *extra):
    return ["--set", f"SCENE_PATH={tiny_demo.product}", "--set", f"LABELS_PATH={tiny_demo.clc_vector}",
            "--set", f"AOI={TINY_AOI}", "--set", f"PREP_DIR={tmp_path / 'prepared'}",
            "--set", f"SEG_DIR={tmp_path / 'segments'}", "--set", f"REPORTS_DIR={tmp_path / 'reports'}",
            "--set", f"MODELS_DIR={tmp_path / 'models'}", "--set", f"PREDICT_DIR={tmp_path / 'maps'}",
            "--set", "N_POINTS=3000", *SMALL, *extra]


def test_segment_stage_writes_aligned_outputs(tmp_path, tiny_demo):
    assert scene_prep.main(_prep_args(tiny_demo, tmp_path)) == 0
    assert segment.main(_prep_args(tiny_demo, tmp_path)) == 0
    seg = tmp_path / "segments"
    with rasterio.open(tmp_path / "prepared" / "scene.tif") as scene, rasterio.open(seg / "segments.tif") as ids_src, \
            rasterio.open(seg / "segment_types.tif") as types_src:
        assert ids_src.transform == scene.transform and ids_src.crs == scene.crs and ids_src.shape == scene.shape
        ids, types = ids_src.read(1), types_src.read(1)
        assert types_src.colormap(1)[6][3] == 255
    assert ids.max() > 5 and set(np.unique(types[ids > 0]).tolist()) <= set(range(1, 7))
    polygons = gpd.read_file(seg / "segments.gpkg", layer="segments")
    assert sorted(polygons["segment"]) == list(range(1, ids.max() + 1))
    assert {"type", "count", "B08_median"} <= set(polygons.columns)
    points = pd.read_parquet(seg / "points.parquet")
    assert (points["segment_type"] == types[points["row"], points["col"]]).all()
    # scene_prep's own table is an input of segment.py and stays as it was
    assert "segment_type" not in pd.read_parquet(tmp_path / "prepared" / "points.parquet").columns


def test_scene_prep_with_segment_adds_the_type(tmp_path, tiny_demo):
    assert scene_prep.main(_prep_args(tiny_demo, tmp_path, "--set", "SEGMENT=True")) == 0
    points = pd.read_parquet(tmp_path / "prepared" / "points.parquet")
    assert {"segment", "segment_type"} <= set(points.columns)
    assert (tmp_path / "segments" / "segments.png").exists()


@pytest.mark.slow
def test_per_pixel_experiment_writes_the_table(tmp_path, tiny_demo, capsys):
    args = _prep_args(tiny_demo, tmp_path, "--set", "TRAIN_SIZES=[300, 800]", "--set", "MLP_EPOCHS=3",
                      "--set", "RF_TREES=20", "--set", "BLOCK_SIZE=40", "--set", "REPEATS=2",
                      "--set", "SEG_SCALES=[300, [50, 20]]")
    assert scene_prep.main(args) == 0
    assert segment.main(args) == 0
    assert segment_experiment.main(args) == 0
    out = tmp_path / "reports" / "segments"
    table = pd.read_csv(out / "results.csv")
    sweep = "MLP (segments: scale 50, min size 20)"
    assert sorted(table["classifier"].unique()) == sorted(["MLP", "MLP-Pixel", "Random forest",
                                                           "Random forest (one-hot, the study's)", sweep])
    assert sorted(table["split"].unique()) == ["random", "spatial"]
    assert sorted(table["train_size"].unique()) == [300, 800]
    assert set(table.loc[table["classifier"] == sweep, "train_size"]) == {800}  # the sweep: at the largest size
    assert (table["n_runs"] == 2).all()
    assert table[["val_accuracy", "test_accuracy"]].apply(lambda c: c.between(0, 1)).all().all()
    # every run is a row; MLP_EPOCHS=3 ends every MLP run at the cap, and that is flagged
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 2 * len(table) and set(runs["run"]) == {0, 1}
    mlp = runs["classifier"].str.startswith("MLP")
    assert (runs.loc[mlp, "epochs"] == 3).all() and runs.loc[mlp, "epoch_cap_hit"].all()
    assert not runs.loc[~mlp, "epoch_cap_hit"].any()
    assert (table.loc[table["classifier"] == "MLP", "epoch_cap_hits"] == 2).all()
    # test predictions of every run at the largest size; the spatial runs test disjoint blocks
    predictions = pd.read_parquet(out / "predictions.parquet")
    assert set(predictions["setting"]) == {"800"} and set(predictions["run"]) == {0, 1}
    spatial = predictions[(predictions["split"] == "spatial") & (predictions["model"] == "Random forest")]
    assert not set(spatial.loc[spatial["run"] == 0, "point_id"]) & set(spatial.loc[spatial["run"] == 1, "point_id"])
    assert (tmp_path / "segments" / "scale_sweep.csv").exists()
    assert "| Random forest" in (out / "results.md").read_text()
    for name in ["confusion_mlp_spatial.png", "confusion_random_forest_one_hot_the_study_s_random.png",
                 "curves_random.png", "per_class.csv", "test_segment_config.json"]:
        assert (out / name).exists(), name
    assert "| classifier" in capsys.readouterr().out
    # same seed, same forest: the random-forest rows repeat exactly
    assert segment_experiment.main(args) == 0
    again = pd.read_csv(out / "results.csv")
    rf = table["classifier"] == "Random forest"
    assert table[rf].equals(again[rf])

    # whole-AOI maps of the saved first runs, through the patch CNN's path (a halo of 0): at the held-out test
    # points the forest's map gives exactly the experiment's test accuracy, the MLP's within a near-tie
    first = runs[(runs["run"] == 0) & (runs["train_size"] == 800)].set_index(["classifier", "split"])["test_accuracy"]
    for kind, name in (("rf", "Random forest"), ("mlp", "MLP-Pixel")):
        for split in ("random", "spatial"):
            model = tmp_path / "models" / f"pixel_{'random_forest' if kind == 'rf' else 'mlp'}_{split}"
            model = model.with_suffix(".joblib" if kind == "rf" else ".keras")
            assert scene_maps.main([*args, "--set", f"PREDICT_MODEL={model}"]) == 0
            evaluation = pd.read_csv(tmp_path / "maps" / model.stem / "evaluation.csv")
            tolerance = 0 if kind == "rf" else 1.01 / evaluation.loc[0, "pixels"]
            assert evaluation.loc[0, "accuracy"] == pytest.approx(first[(name, split)], abs=tolerance + 1e-12)
    # beside a patch CNN: the three maps of its split side by side
    cnn = [*args, "--set", "PATCH_SIZES=[3]", "--set", "CNN_EPOCHS=1", "--set", "CNN_TRAIN_SIZE=300",
           "--set", "PATCH_MIN_SAMPLES=20", "--set", "PRECISION='float32'"]
    assert patches.main(cnn) == 0
    assert scene_maps.main(cnn) == 0
    folder = next((tmp_path / "maps").glob("patch_cnn_*_3"))
    compared = pd.read_csv(folder / "maps_compared.csv")
    assert set(compared["model"]) == {f"{folder.name}.keras", f"pixel_random_forest_{folder.name.split('_')[2]}.joblib",
                                      f"pixel_mlp_{folder.name.split('_')[2]}.keras"}
    assert (folder / "maps_side_by_side.png").stat().st_size > 10_000


# the per-pixel experiment at its smallest: one split, one run, one forest, one MLP epoch
FAST = ["--set", "TRAIN_SIZES=[300]", "--set", "MLP_EPOCHS=1", "--set", "RF_TREES=5", "--set", "REPEATS=1",
        "--set", "SPLITS=['random']", "--set", "RF_TARGETS=['labels']"]


@pytest.mark.parametrize("workflow", ["scene_prep with SEGMENT", "scene_prep, segment.py", "scene_prep only"])
def test_every_segmentation_workflow_runs_the_experiment(tmp_path, tiny_demo, workflow, capsys):
    """With the default segmentation settings (SEG_SCALE, the SEG_SCALES sweep, SEG_INPUT), from a clean folder:
    the study's workflow (scene_prep.py --set SEGMENT=True, then test_segment.py), the stage-by-stage one, and
    none at all; test_segment.py segments only what no table has, and says so."""
    args = ["--set", f"SCENE_PATH={tiny_demo.product}", "--set", f"LABELS_PATH={tiny_demo.clc_vector}",
            "--set", f"AOI={TINY_AOI}", "--set", f"PREP_DIR={tmp_path / 'prepared'}",
            "--set", f"SEG_DIR={tmp_path / 'segments'}", "--set", f"REPORTS_DIR={tmp_path / 'reports'}",
            "--set", f"MODELS_DIR={tmp_path / 'models'}", "--set", "N_POINTS=1500"]
    sweep = "segment_type_s5_m50"  # the default SEG_SCALES' entry other than SEG_SCALE's
    if workflow == "scene_prep with SEGMENT":
        assert scene_prep.main([*args, "--set", "SEGMENT=True"]) == 0
        prepared = pd.read_parquet(tmp_path / "prepared" / "points.parquet")
        assert {"segment_type", sweep} <= set(prepared.columns)
        assert (tmp_path / "segments" / "scale_sweep.csv").exists()
    else:
        assert scene_prep.main(args) == 0
        if workflow == "scene_prep, segment.py":
            assert segment.main(args) == 0
    capsys.readouterr()
    assert segment_experiment.main([*args, *FAST]) == 0
    table = pd.read_csv(tmp_path / "reports" / "segments" / "results.csv")
    assert {"MLP", "MLP-Pixel", "MLP (segments: scale 5, min size 50)"} <= set(table["classifier"])
    segmented_here = [line for line in capsys.readouterr().err.splitlines() if "segmenting" in line]
    if workflow == "scene_prep only":
        assert len(segmented_here) == 1 and "scale 1200, min size 500, scale 5, min size 50" in segmented_here[0]
    else:
        assert not segmented_here
