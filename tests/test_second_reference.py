"""A second, finer reference: crosswalks, scores against it, and the ceiling the coarse ground truth sets."""

import json

import numpy as np
import pandas as pd
import pytest
import rasterio

import scene_prep
from landcover import evaluation, labels, legend
from landcover.rasters import Grid
from tests.conftest import TINY_AOI, write_raster

GRID = Grid(rasterio.crs.CRS.from_epsg(32630), rasterio.Affine(10, 0, 580000, 0, -10, 5715000), 60, 50)


def test_crosswalk_maps_another_vocabulary_to_the_ground_truths(tmp_path):
    worldcover = np.full((50, 60), 40, np.uint8)  # cropland
    worldcover[:, 30:] = 10                       # tree cover
    worldcover[:5] = 80                           # water: not in the crosswalk, so no label
    path = write_raster(tmp_path / "ESA_WorldCover_10m_2021_v200_N51W003_Map.tif", worldcover, GRID.transform)
    (tmp_path / "cw.csv").write_text("from,to\n40,211\n10,311\n")
    truth = labels.Reference(np.full((50, 60), 211, np.uint16), [legend.CLC_BY_CODE[211]], "clc")
    second = labels.evaluation_reference(path, GRID, "auto", None, tmp_path / "cw.csv", truth)
    assert second.vocab == "clc" and [c.code for c in second.classes] == [211, 311]
    assert (second.labels[:5] == 0).all() and second.labels[10, 0] == 211 and second.labels[10, 40] == 311
    with pytest.raises(ValueError, match=r"vocabulary 'worldcover', the ground truth in 'clc'; give EVAL_CROSSWALK"):
        labels.evaluation_reference(path, GRID, "auto", None, None, truth)
    (tmp_path / "bad.csv").write_text("from,to\n40,999\n")
    with pytest.raises(ValueError, match=r"bad\.csv: 'to' codes \[999\] are not classes of the ground truth"):
        labels.evaluation_reference(path, GRID, "auto", None, tmp_path / "bad.csv", truth)
    (tmp_path / "cols.csv").write_text("a,b\n40,211\n")
    with pytest.raises(ValueError, match="needs the columns 'from' and 'to'"):
        labels.evaluation_reference(path, GRID, "auto", None, tmp_path / "cols.csv", truth)


def test_scores_against_the_second_reference():
    second = np.array([211, 211, 311, 0, 311])
    predicted = np.array([211, 311, 311, 211, 0])
    truth = np.array([211, 211, 211, 211, 311])
    out = evaluation.against_second_reference(second, predicted, truth)
    assert out["test_accuracy_eval"] == pytest.approx(2 / 4) and out["reference_accuracy_eval"] == pytest.approx(3 / 4)
    assert np.isnan(evaluation.against_second_reference(None, predicted, truth)["test_accuracy_eval"])
    # the whole-AOI table: ground truth vs second (the ceiling), map vs both; per class recall
    t = np.array([[211, 211], [211, 311]])
    s = np.array([[211, 311], [311, 311]])
    m = np.array([[211, 311], [211, 311]])
    table, per_class = evaluation.second_reference_table("m.keras", "CORINE", "10 m", t, s, m, np.ones((2, 2), bool),
                                                         pd.DataFrame(), None, {211: "arable", 311: "forest"})
    assert table["accuracy"].tolist() == pytest.approx([0.5, 0.75, 0.75])
    assert per_class.set_index("code")["ground_truth_recall"].to_dict() == pytest.approx({211: 1.0, 311: 1 / 3})
    assert per_class.set_index("code")["map_recall"].to_dict() == pytest.approx({211: 1.0, 311: 2 / 3})


def test_scene_prep_writes_the_second_reference(tmp_path, tiny_demo):
    args = ["--set", f"SCENE_PATH={tiny_demo.product}", "--set", f"LABELS_PATH={tiny_demo.clc_vector}",
            "--set", f"AOI={TINY_AOI}", "--set", f"PREP_DIR={tmp_path / 'p'}", "--set", "N_POINTS=1000",
            "--set", f"EVAL_LABELS_PATH={tiny_demo.truth}"]
    assert scene_prep.main(args) == 0
    with rasterio.open(tmp_path / "p" / "labels.tif") as a, rasterio.open(tmp_path / "p" / "eval_labels.tif") as b:
        truth, second = a.read(1), b.read(1)
        assert (a.transform, a.shape) == (b.transform, b.shape)
    assert ((second > 0) == (truth > 0)).all()  # masked and outside the AOI alike
    agreement = (truth[truth > 0] == second[truth > 0]).mean()
    assert 0.4 < agreement < 0.95  # CORINE's 100 m polygons are partly wrong at 10 m
    points = pd.read_parquet(tmp_path / "p" / "points.parquet")
    assert (points["eval_label"] == second[points["row"], points["col"]]).all()
    assert {c["code"] for c in json.loads((tmp_path / "p" / "eval_classes.json").read_text())} == \
        set(np.unique(second[second > 0]).tolist())
    # the default (the main demo's land cover) is not used for another ground truth, and a stale file goes
    assert scene_prep.main(args[:-2]) == 0  # every run starts from config.py: the default is back
    assert not (tmp_path / "p" / "eval_labels.tif").exists() and "eval_label" not in pd.read_parquet(
        tmp_path / "p" / "points.parquet")
