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
    """Overall accuracy, Cohen's kappa and macro F1 (over ``labels`` present in y_true)."""
    present = np.intersect1d(labels, np.unique(y_true))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "kappa": float(cohen_kappa_score(y_true, y_pred)),
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
