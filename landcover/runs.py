"""Repeated runs: per-run rows, their summary per model, and the test predictions the comparisons pair.

Each stage that trains models writes, beside its ``results.csv``:

- ``runs.csv``: one row per model, split, setting and run (seed, scores,
  epochs trained, whether the epoch cap ended training);
- ``predictions.parquet``: each run's test predictions at the points
  (``experiment, model, split, setting, run, point_id, row, col, truth,
  pred``), from which ``report.py`` builds the paired comparisons.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from landcover.files import atomic_write

log = logging.getLogger(__name__)

METRICS = ["train_points", "val_accuracy", "test_accuracy", "kappa", "macro_f1", "test_accuracy_eval",
           "reference_accuracy_eval"]


def epochs(history: dict, cap: int) -> dict:
    """``epochs`` trained and ``epoch_cap_hit`` (training ended by the cap, not by early stopping);
    NaN and False for models trained without epochs (forests)."""
    if not history:
        return {"epochs": np.nan, "epoch_cap_hit": False}
    trained = len(history["loss"])
    return {"epochs": trained, "epoch_cap_hit": trained >= cap}


def summarise(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per ``keys``: the mean of every metric over the runs, the standard deviation of the
    test accuracy, ``n_runs`` and ``epoch_cap_hits`` (runs that the epoch cap ended)."""
    metrics = [m for m in METRICS if m in runs]
    grouped = runs.groupby(keys, sort=False, dropna=False)
    table = grouped[metrics].mean()
    table.insert(metrics.index("test_accuracy") + 1, "test_accuracy_sd", grouped["test_accuracy"].std(ddof=1))
    table["n_runs"] = grouped["run"].nunique()
    table["epoch_cap_hits"] = grouped["epoch_cap_hit"].sum().astype(int)
    extra = [c for c in runs.columns if c not in keys + metrics + ["run", "seed", "epochs", "epoch_cap_hit"]]
    if extra:  # columns constant per model (e.g. the model file name): the first run's
        table = table.join(grouped[extra].first())
    return table.reset_index()


def predictions(experiment: str, model: str, split: str, setting, run: int, points: pd.DataFrame,
                index: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    """One run's test predictions as rows of ``predictions.parquet``.

    Args:
        points: the points table (point_id, row, col); index: the test rows of it.
        truth, pred: (len(index),) class codes (pred 0 or negative: no class).
    """
    return pd.DataFrame({"experiment": experiment, "model": model, "split": split, "setting": str(setting),
                         "run": run, "point_id": points["point_id"].to_numpy()[index],
                         "row": points["row"].to_numpy()[index], "col": points["col"].to_numpy()[index],
                         "truth": np.asarray(truth, np.int32), "pred": np.asarray(pred, np.int32)})


def write_predictions(frames: list[pd.DataFrame], path: Path) -> None:
    with atomic_write(path) as tmp:
        pd.concat(frames, ignore_index=True).to_parquet(tmp, index=False)
    log.info("wrote %s", path)


def capped(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that the epoch cap ended (a network that may not have converged)."""
    return runs[runs["epoch_cap_hit"].astype(bool)] if "epoch_cap_hit" in runs else runs.iloc[:0]
