"""read_bigearth.py and train_bigearth.py end to end on a tiny generated archive and scene."""

import json

import pandas as pd
import pytest

import patches
import read_bigearth
import scene_prep
import train_bigearth
from landcover import demo
from tests.conftest import TINY_AOI


@pytest.mark.slow
def test_read_then_train_and_transfer(tmp_path, tiny_demo):
    archive = demo.write_bigearth_demo(tmp_path / "archive", seed=3, patches_per_side=3)
    args = ["--set", f"SCENE_PATH={tiny_demo.product}", "--set", f"LABELS_PATH={tiny_demo.clc_vector}",
            "--set", f"AOI={TINY_AOI}", "--set", f"PREP_DIR={tmp_path / 'prepared'}",
            "--set", f"REPORTS_DIR={tmp_path / 'reports'}", "--set", f"MODELS_DIR={tmp_path / 'models'}",
            "--set", f"BIGEARTH_PATH={archive}", "--set", f"BIGEARTH_DIR={tmp_path / 'shards'}",
            "--set", "N_POINTS=800", "--set", "PATCH_MIN_SAMPLES=20", "--set", "PATCH_SIZES=[3]",
            "--set", "SPLITS=['random']", "--set", "REPEATS=1", "--set", "CNN_EPOCHS=1", "--set", "BE_EPOCHS=1", "--set", "BE_BATCH_SIZE=8",
            "--set", "TRANSFER_TRAIN_SIZE=60", "--set", "TRANSFER_EPOCHS=2", "--set", "BIGEARTH_CLASSES='study'",
            "--set", "BIGEARTH_SHARD_SIZE=5", "--set", "TRANSFER_FINE_TUNE_EPOCHS=1"]
    assert scene_prep.main(args) == 0 and patches.main(args) == 0
    assert read_bigearth.main(args) == 0
    manifest = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    listed = (archive / "patches_with_cloud_and_shadow.csv").read_text().split() + \
        (archive / "patches_with_seasonal_snow.csv").read_text().split()
    kept = pd.read_parquet(tmp_path / "shards" / "manifest.parquet")["patch"]
    assert manifest["counts"]["listed"] == 18 and not set(kept) & set(listed)
    assert manifest["shards"] == -(-manifest["counts"]["kept"] // 5)
    # read on a LocalCluster of 2 workers: the same shards and manifest
    assert read_bigearth.main([*args, "--set", f"BIGEARTH_DIR={tmp_path / 'dask'}", "--set", "SCHEDULER='local'"]) == 0
    assert json.loads((tmp_path / "dask" / "manifest.json").read_text())["counts"] == manifest["counts"]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "dask" / "manifest.parquet"),
                                  pd.read_parquet(tmp_path / "shards" / "manifest.parquet"))
    assert (tmp_path / "dask" / "shard_00000_x.npy").read_bytes() == (tmp_path / "shards" / "shard_00000_x.npy").read_bytes()

    assert train_bigearth.main(args) == 0
    table = pd.read_csv(tmp_path / "reports" / "bigearth" / "results.csv")
    assert len(table) == 4 and table["accuracy"].between(0, 1).all()
    assert table["model"].str.startswith("(a)").any()
    assert table["model"].str.contains("fine-tuned 1 epochs").any()
    meta = json.loads((tmp_path / "models" / "bigearth_cnn.json").read_text())
    assert meta["patch_size"] == 120 and meta["kind"] == "bigearth_cnn"
    assert (tmp_path / "models" / "bigearth_transfer.keras").exists()
    assert manifest["radiometry"].startswith("DN = 10000 x reflectance") and manifest["offset"] == 0

    # without a patch sweep, transfer is scored on a split of its own and the table has no patch-CNN row
    alone = [*args, "--set", f"REPORTS_DIR={tmp_path / 'alone'}", "--set", f"MODELS_DIR={tmp_path / 'm2'}"]
    assert train_bigearth.main(alone) == 0
    table = pd.read_csv(tmp_path / "alone" / "bigearth" / "results.csv")
    assert len(table) == 3 and not table["model"].str.startswith("best patch").any()
    assert table["evaluated_on"].str.contains("random split of its own").iloc[1]
