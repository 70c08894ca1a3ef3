"""Long runs resume where they stopped: a training stage killed with SIGKILL after a finished run, then run
again, writes the tables of an uninterrupted run; a half-written run is never taken for a finished one."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import scene_prep
from landcover import resume
from tests.conftest import TINY_AOI

ROOT = Path(__file__).resolve().parents[1]

# each stage at its smallest with four runs (two repeats of two models), all in float32
STAGES = {
    "patches": ["--set", "PATCH_SIZES=[3, 5]", "--set", "CNN_EPOCHS=2", "--set", "CNN_TRAIN_SIZE=300",
                "--set", "PATCH_MIN_SAMPLES=20"],
    "test_segment": ["--set", "TRAIN_SIZES=[300]", "--set", "MLP_EPOCHS=2", "--set", "RF_TREES=5",
                     "--set", "RF_TARGETS=['labels']", "--set", "SEG_SCALES=[]", "--set", "SEG_INPUT=raw",
                     "--set", "SEG_SCALE=300", "--set", "SEG_MIN_SIZE=50"],
}
OUTPUTS = {"patches": "patches", "test_segment": "segments"}


def _args(prep: Path, out: Path) -> list[str]:
    return ["--set", f"PREP_DIR={prep}", "--set", f"SEG_DIR={prep.parent / 'segments'}",
            "--set", f"REPORTS_DIR={out / 'reports'}", "--set", f"MODELS_DIR={out / 'models'}",
            "--set", f"PREDICT_DIR={out / 'maps'}", "--set", "SPLITS=['random']", "--set", "REPEATS=2",
            "--set", "PRECISION='float32'", "--set", "BLOCK_SIZE=40"]


def _start(script: str, args: list[str], log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    return subprocess.Popen([sys.executable, str(ROOT / f"{script}.py"), *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def _finished(folder: Path) -> int:
    return len(list((folder / resume.FOLDER).glob("*.pkl")))


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["patches", "test_segment"])
def test_killed_stage_resumes_with_the_tables_of_an_uninterrupted_run(tmp_path, tiny_demo, stage):
    prep = tmp_path / "prepared"
    assert scene_prep.main(["--set", f"SCENE_PATH={tiny_demo.product}", "--set", f"LABELS_PATH={tiny_demo.clc_vector}",
                            "--set", f"AOI={TINY_AOI}", "--set", f"PREP_DIR={prep}", "--set", "N_POINTS=1500",
                            "--set", "SEGMENT=True", "--set", f"SEG_DIR={tmp_path / 'segments'}",
                            "--set", "SEG_SCALES=[]", "--set", "SEG_INPUT=raw", "--set", "SEG_SCALE=300",
                            "--set", "SEG_MIN_SIZE=50"]) == 0
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole_args, killed_args = _args(prep, whole) + STAGES[stage], _args(prep, killed) + STAGES[stage]

    assert _start(stage, whole_args, tmp_path / "whole.log").wait(timeout=600) == 0

    # killed with SIGKILL as soon as its second run is finished (the third is then under way)
    out = killed / "reports" / OUTPUTS[stage]
    process = _start(stage, killed_args, tmp_path / "killed.log")
    deadline = time.monotonic() + 600
    while _finished(out) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL, "the stage ended before it could be killed"
    assert 2 <= _finished(out) < 4 and not (out / "runs.csv").exists()

    assert _start(stage, killed_args, tmp_path / "resumed.log").wait(timeout=600) == 0
    log = (tmp_path / "resumed.log").read_text()
    reused = log.count("reused finished run:")
    assert reused == _finished(out) - log.count("new finished run:") and reused >= 2
    assert f"runs: {reused} reused" in log

    for name in ("runs.csv", "results.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(out / name), pd.read_csv(whole / "reports" / OUTPUTS[stage] / name))
    pd.testing.assert_frame_equal(pd.read_parquet(out / "predictions.parquet"),
                                  pd.read_parquet(whole / "reports" / OUTPUTS[stage] / "predictions.parquet"))
    for args in (whole_args, killed_args):
        assert _start("report", args, tmp_path / "report.log").wait(timeout=600) == 0
    pd.testing.assert_frame_equal(pd.read_csv(killed / "reports" / "comparisons.csv"),
                                  pd.read_csv(whole / "reports" / "comparisons.csv"))


def test_only_whole_runs_of_the_same_settings_are_finished(tmp_path):
    """A temporary file (a run killed while written) and an unreadable one are not finished runs; runs of
    other settings are dropped."""
    store = resume.FinishedRuns(tmp_path, "settings A")
    store.put("CNN 3x3, random split, run 1", {"row": {"test_accuracy": 0.5}})
    assert resume.FinishedRuns(tmp_path, "settings A").get("CNN 3x3, random split, run 1") == {
        "row": {"test_accuracy": 0.5}}

    folder = tmp_path / resume.FOLDER
    half = store._path("CNN 3x3, random split, run 2")
    partial = half.with_name(f".{half.stem}.tmp-12345{half.suffix}")  # atomic_write's name, never renamed
    partial.write_bytes(pickle.dumps({"key": "CNN 3x3, random split, run 2", "record": {}})[:10])
    again = resume.FinishedRuns(tmp_path, "settings A")
    assert again.get("CNN 3x3, random split, run 2") is None and not partial.exists()

    half.write_bytes(b"\x80\x05 truncated")  # unreadable: trained again, not an error
    assert again.get("CNN 3x3, random split, run 2") is None

    changed = resume.FinishedRuns(tmp_path, "settings B")
    assert changed.get("CNN 3x3, random split, run 1") is None and not list(folder.glob("*.pkl"))
