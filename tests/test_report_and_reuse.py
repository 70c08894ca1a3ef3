"""The report comes from the stages' outputs; unchanged stages are reused; the runner runs the study."""

import json
import os
import re

import numpy as np
import pandas as pd
import pytest
from affine import Affine

import report as report_stage
import scene_prep
import study
from landcover import report
from tests.conftest import TINY_AOI, write_raster


def _fake_outputs(root):
    """Minimal stage outputs, as the stages write them."""
    prep, reports = root / "prepared", root / "reports"
    write_raster(prep / "scene.tif", np.ones((4, 30, 50), np.uint16), Affine(10, 0, 580000, 0, -10, 5715000))
    (prep / "scene_prep_config.json").write_text(json.dumps({
        "SCENE_PATH": "/data/S2.SAFE", "BANDS": ["B02", "B03", "B04", "B08"], "RESOLUTION": 10, "AOI": [0, 0, 1, 1],
        "LABELS_PATH": "/data/clc.gpkg", "LABEL_VOCAB": "auto", "N_POINTS": 1000, "SEED": 7,
        "reference": {"vocab": "clc", "points": False, "classes": 2},
        "radiometry": {"convention": "DN = 10000 x reflectance", "masked_total": 0.0312, "masked_share": {
            "cloud shadows": 0.0101, "cloud high probability": 0.0211, "snow or ice": 0.0},
            "products": [{"name": "S2.SAFE", "level": "L2A", "baseline": "05.09", "offsets": {"B02": -1000.0},
                          "mask": {"kind": "scl", "path": "x"}}]}}))
    (prep / "classes.json").write_text(json.dumps([{"code": 211, "name": "Non-irrigated arable land", "rgb": [1, 2, 3],
                                                    "pixels": 900}, {"code": 231, "name": "Pastures", "rgb": [4, 5, 6],
                                                                     "pixels": 600}]))
    (reports / "segments").mkdir(parents=True)
    rows = [{"classifier": c, "split": s, "train_size": 500, "val_accuracy": 0.5, "test_accuracy": acc,
             "kappa": 0.3, "macro_f1": 0.4}
            for s, base in (("random", 0.6), ("spatial", 0.5))
            for c, acc in (("Random forest", base), ("Random forest (one-hot, the study's)", base - 0.08),
                           ("MLP-Pixel", base - 0.05), ("MLP", base - 0.02))]
    pd.DataFrame(rows).to_csv(reports / "segments" / "results.csv", index=False)
    (reports / "patches").mkdir()
    pd.DataFrame([{"patch": f"{p}x{p}", "input_values": "B02, B03, B04, B08", "split": s, "val_accuracy": v,
                   "test_accuracy": v - 0.01, "kappa": 0.4, "macro_f1": 0.3, "model": f"/m/patch_cnn_{s}_{p}.keras"}
                  for s in ("random", "spatial") for p, v in ((3, 0.55), (5, 0.61))]).to_csv(
        reports / "patches" / "results.csv", index=False)
    return report.Sources(prep, root / "segments", reports, root / "maps", root / "bigearth")


def test_every_number_comes_from_the_stage_outputs(tmp_path):
    src = _fake_outputs(tmp_path)
    text = report.build(src)
    assert re.search(r"\| Random forest +\| 60\.0 %", text) and "50.0 %" in text
    assert re.search(r"\| Random forest \(one-hot, the study's\) \| 52\.0 %.*\| 47\.5 %", text)  # the study's forest
    assert ("The study's one-hot forest, random split: Random forest (one-hot, the study's) (52.0 %) against "
            "Random forest (60.0 %): -8.0 points") in text
    assert "random split: 5x5 has the highest mean validation accuracy and is the one mapped" in text
    assert "(test 60.0 %); a selection, not a verdict" in text
    # a difference without paired predictions has no interval: stated as such, never as a win
    assert "CNN 5x5 (60.0 %) against Random forest (60.0 %): +0.0 points (no paired test predictions" in text
    assert "not a verdict" in text and " beats " not in text and "better**" not in text
    assert "50 x 30 pixels = 0.5 x 0.3 km" in text
    assert "`S2.SAFE` (L2A, baseline 05.09, offset [-1000.0] DN, mask scl)" in text
    assert "3.12 % of the AOI's pixels with data (cloud shadows 1.01 %, cloud high probability 2.11 %)" in text
    assert "(vocabulary `clc`)" in text
    # change one output file: the report follows
    table = pd.read_csv(src.reports / "segments" / "results.csv")
    table.loc[(table["classifier"] == "Random forest") & (table["split"] == "random"), "test_accuracy"] = 0.713
    table.to_csv(src.reports / "segments" / "results.csv", index=False)
    changed = report.build(src)
    assert re.search(r"\| Random forest +\| 71\.3 %", changed)
    assert not re.search(r"\| Random forest +\| 60\.0 %", changed)
    assert "train_bigearth.py has not run." in changed


def test_report_stage_writes_markdown_and_html(tmp_path):
    src = _fake_outputs(tmp_path)
    args = ["--set", f"PREP_DIR={src.prep}", "--set", f"REPORTS_DIR={src.reports}", "--set", f"SEG_DIR={src.seg}",
            "--set", f"PREDICT_DIR={src.predictions}", "--set", f"BIGEARTH_DIR={src.bigearth}"]
    assert report_stage.main(args) == 0
    assert "<table>" in (src.reports / "report.html").read_text()
    assert (src.reports / "figures" / "accuracy_by_patch_size.png").exists()


def test_unchanged_stage_is_reused_and_changes_redo_it(tmp_path, tiny_demo, capsys):
    args = ["--set", f"SCENE_PATH={tiny_demo.product}", "--set", f"LABELS_PATH={tiny_demo.clc_vector}",
            "--set", f"AOI={TINY_AOI}", "--set", f"PREP_DIR={tmp_path}", "--set", "N_POINTS=500"]
    assert scene_prep.main(args) == 0
    points = tmp_path / "points.parquet"
    first = points.stat().st_mtime_ns
    capsys.readouterr()
    assert scene_prep.main(args) == 0
    assert "unchanged since the last run" in capsys.readouterr().err
    assert points.stat().st_mtime_ns == first
    assert scene_prep.main([*args, "--set", "N_POINTS=600"]) == 0  # a setting the stage depends on
    assert len(pd.read_parquet(points)) == 600
    second = points.stat().st_mtime_ns
    assert scene_prep.main([*args, "--set", "N_POINTS=600", "--force"]) == 0
    assert points.stat().st_mtime_ns != second
    os.utime(tiny_demo.clc_vector)  # an input file touched
    capsys.readouterr()
    assert scene_prep.main([*args, "--set", "N_POINTS=600"]) == 0
    assert "unchanged since the last run" not in capsys.readouterr().err


@pytest.mark.slow
def test_runner_runs_every_stage_and_writes_the_report(tmp_path, tiny_demo):
    archive = tmp_path / "archive"
    from landcover import demo
    demo.write_bigearth_demo(archive, seed=3, patches_per_side=3)
    args = ["--set", f"SCENE_PATH={tiny_demo.product}", "--set", f"LABELS_PATH={tiny_demo.clc_vector}",
            "--set", f"AOI={TINY_AOI}", "--set", f"PREP_DIR={tmp_path / 'prepared'}",
            "--set", f"SEG_DIR={tmp_path / 'segments'}", "--set", f"REPORTS_DIR={tmp_path / 'reports'}",
            "--set", f"MODELS_DIR={tmp_path / 'models'}", "--set", f"PREDICT_DIR={tmp_path / 'maps'}",
            "--set", f"BIGEARTH_PATH={archive}", "--set", f"BIGEARTH_DIR={tmp_path / 'shards'}",
            "--set", "N_POINTS=800", "--set", "PATCH_MIN_SAMPLES=20", "--set", "PATCH_SIZES=[3]",
            "--set", "TRAIN_SIZES=[200]", "--set", "MLP_EPOCHS=2", "--set", "RF_TREES=10", "--set", "BLOCK_SIZE=40",
            "--set", "CNN_EPOCHS=1", "--set", "BE_EPOCHS=1", "--set", "BE_BATCH_SIZE=8", "--set", "SEG_INPUT=raw",
            "--set", "SEG_MIN_SIZE=50", "--set", "TRANSFER_TRAIN_SIZE=60", "--set", "TRANSFER_EPOCHS=2",
            "--set", "BIGEARTH_CLASSES='study'", "--set", "REPEATS=2", "--set", "SEG_SCALES=[1200, [5, 20]]"]
    assert study.main(args) == 0
    text = (tmp_path / "reports" / "report.md").read_text()
    for heading in ["## 1. Per-pixel", "## 2. Patch CNN", "## Whole-scene map", "## 3. BigEarthNet transfer",
                    "## Comparisons with 95 % intervals", "### Texture at several segmentation scales",
                    "## Wall time and peak memory per stage"]:
        assert heading in text
    assert "has not run" not in text
    table = pd.read_csv(tmp_path / "reports" / "comparisons.csv")
    experiments = set(table["experiment"])
    assert {"segment type", "per-pixel classifier vs forest", "patch CNN vs forest", "transfer vs best patch CNN",
            "random vs spatial split"} <= experiments
    assert set(table["verdict"]) <= {"A better", "B better", "no significant difference"}
    assert (table["p_holm"] >= table["p_value"] - 1e-12).all() and (table["ci_low"] <= table["ci_high"]).all()
    # the patch CNN and the forest were tested on the same points in each run: paired, both runs
    cnn = table[table["experiment"] == "patch CNN vs forest"]
    assert cnn["paired"].all() and (cnn["n_runs"] == 2).all() and (cnn["n_test"] > 50).all()
    # transfer: the head (b) trained on each of the best patch CNN's runs, on that run's points
    assert (table.loc[table["experiment"] == "transfer vs best patch CNN", "n_runs"] == 2).all()
    assert (tmp_path / "reports" / "figures" / "accuracy_by_segment_size.png").exists()
    # the per-pixel forest and MLP mapped beside the CNN (PIXEL_MAPS), shown in the report
    assert "### The three methods' maps" in text and "pixel_random_forest_" in text
    assert (tmp_path / "reports" / "figures" / "maps_side_by_side.png").exists()


def _fake_predictions(src, accuracy: dict[str, float], runs=3, points=1000, seed=0):
    """Per-run test predictions of the per-pixel models, right on the given shares of the points."""
    rng = np.random.default_rng(seed)
    frames = []
    for split in ("random", "spatial"):
        for run in range(runs):
            rows, cols = rng.integers(0, 300, points), rng.integers(0, 500, points)
            truth = rng.choice([211, 231], points)
            for model, share in accuracy.items():
                right = rng.random(points) < share
                frames.append(pd.DataFrame({"experiment": "pixel", "model": model, "split": split, "setting": "500",
                                            "run": run, "point_id": np.arange(points) + 10_000 * run, "row": rows,
                                            "col": cols, "truth": truth, "pred": np.where(right, truth, 0)}))
    pd.concat(frames).to_parquet(src.reports / "segments" / "predictions.parquet")


def test_report_states_verdicts_only_from_the_comparisons(tmp_path):
    src = _fake_outputs(tmp_path)
    _fake_predictions(src, {"Random forest": 0.8, "MLP-Pixel": 0.5, "MLP": 0.51,
                            "Random forest (one-hot, the study's)": 0.78})
    text = report.build(src)
    assert "## Comparisons with 95 % intervals" in text
    # a clear difference: stated with its interval and the verdict
    assert re.search(r"Per-pixel classifier against the forest, random split: MLP-Pixel \(\d+\.\d %\) against "
                     r"Random forest \(\d+\.\d %\): -\d+\.\d points \(95 % CI -\d+\.\d to -\d+\.\d\); "
                     r"Holm-adjusted p [0-9.e-]+, 3 runs, 1,000 test points per run: \*\*Random forest better\*\*", text)
    # a chance-sized difference: no winner
    assert re.search(r"Segment type, random split: MLP \(.*\): [+-]\d+\.\d points \(95 % CI -\d+\.\d to "
                     r"\+\d+\.\d\).*\*\*no significant difference\*\*", text)
    assert "MLP better" not in text
    report.write(src)
    table = pd.read_csv(src.reports / "comparisons.csv")
    assert list(table.columns[:15]) == ["experiment", "split", "model_a", "model_b", "metric", "mean_a", "mean_b",
                                        "diff", "ci_low", "ci_high", "p_value", "p_holm", "n_runs", "n_test",
                                        "verdict"]
    # the same seed gives the same table
    report.write(src)
    assert pd.read_csv(src.reports / "comparisons.csv").equals(table)
