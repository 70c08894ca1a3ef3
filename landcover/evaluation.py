"""Scores, per-class reports and result tables (Markdown and CSV)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score, precision_recall_fscore_support

from landcover.files import atomic_write

log = logging.getLogger(__name__)


def scores(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Overall accuracy, Cohen's kappa (NaN when only one class occurs) and macro F1
    (over ``labels`` present in y_true)."""
    present = np.intersect1d(labels, np.unique(y_true))
    # kappa is 0/0 when truth and prediction hold one and the same class: undefined, not 0 or 1
    one_class = np.union1d(np.unique(y_true), np.unique(y_pred)).size < 2
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "kappa": float("nan") if one_class else float(cohen_kappa_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
    }


def per_class(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support of each class (rows in ``labels`` order)."""
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return pd.DataFrame({"code": labels, "class": names, "precision": p, "recall": r, "f1": f, "support": s})


def write_table(table: pd.DataFrame, stem: Path, title: str, floatfmt: str = ".3f") -> None:
    """Write ``table`` as ``<stem>.csv`` and ``<stem>.md`` (a Markdown table under a title)."""
    stem = Path(stem)
    with atomic_write(stem.with_suffix(".csv")) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_write(stem.with_suffix(".md")) as tmp:
        tmp.write_text(f"# {title}\n\n{table.to_markdown(index=False, floatfmt=floatfmt)}\n")
    log.info("wrote %s.csv and %s.md", stem, stem.name)


def map_table(name: str, split: str, truth: np.ndarray, prediction: np.ndarray, valid: np.ndarray,
              codes: np.ndarray, all_codes: np.ndarray, points: pd.DataFrame,
              side: np.ndarray | None) -> pd.DataFrame:
    """Scores of a whole-scene map: at the model's held-out test points (when it has a
    split of them) and over every labelled valid pixel of the AOI (training pixels included).

    Args:
        truth, prediction: (rows, cols) class codes, 0 = none.
        valid: (rows, cols) bool.
        codes: the model's class codes; all_codes: those and the ground truth's.
        points: the points table; side: each point's side, or None.
    """
    labelled = (truth > 0) & valid
    rows = []
    if side is not None:
        test = points[side == "test"]
        rows.append({"model": name, "evaluated_on": f"held-out test points ({split} split)", "pixels": len(test),
                     **scores(test["label"].to_numpy(), prediction[test["row"], test["col"]], codes)})
    rows.append({"model": name, "evaluated_on": "whole AOI (training pixels included)", "pixels": int(labelled.sum()),
                 **scores(truth[labelled], prediction[labelled], all_codes)})
    return pd.DataFrame(rows)
