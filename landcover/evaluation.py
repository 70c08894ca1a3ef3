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


def against_second_reference(second: np.ndarray | None, predicted: np.ndarray, ground_truth: np.ndarray) -> dict:
    """Accuracy of predictions, and of the ground truth itself, against the finer second reference.

    Args:
        second: (N,) codes of the second reference at the points (0 = none), or None without one.
        predicted: (N,) predicted codes (0 or negative: no class).
        ground_truth: (N,) ground-truth codes at the same points.

    Returns:
        ``test_accuracy_eval`` (the predictions) and ``reference_accuracy_eval``
        (the ground truth: the ceiling of what accuracy against it can mean),
        over the points the second reference labels; NaN without one.
    """
    if second is None or not (np.asarray(second) > 0).any():
        return {"test_accuracy_eval": float("nan"), "reference_accuracy_eval": float("nan")}
    has = np.asarray(second) > 0
    return {"test_accuracy_eval": float((np.asarray(predicted)[has] == np.asarray(second)[has]).mean()),
            "reference_accuracy_eval": float((np.asarray(ground_truth)[has] == np.asarray(second)[has]).mean())}


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


def second_reference_table(name: str, reference_name: str, second_name: str, truth: np.ndarray,
                           second: np.ndarray, prediction: np.ndarray, valid: np.ndarray, points: pd.DataFrame,
                           side: np.ndarray | None, classes: dict[int, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The map and the ground truth scored against a finer second reference, overall and per class.

    Args:
        truth, second, prediction: (rows, cols) codes (0 = none) of the ground truth, the second
            reference and the map; valid: (rows, cols) bool.
        points, side: the points table and each point's side in the model's split (or None).
        classes: code -> name of every class.

    Returns:
        ``(table, per_class)``: rows "ground truth vs second" (the ceiling of accuracy against the
        ground truth), "map vs ground truth" and "map vs second" over the pixels both references
        label, and the map vs second at the held-out test points; per class of the second
        reference, the share of its pixels the ground truth and the map give that class (recall).
    """
    both = valid & (truth > 0) & (second > 0)
    t, s, m = truth[both], second[both], prediction[both]
    where = f"whole AOI, {both.sum():,} pixels both references label"
    rows = [
        {"compared": f"ground truth ({reference_name}) vs {second_name}", "evaluated_on": where,
         "accuracy": float((t == s).mean()) if t.size else float("nan")},
        {"compared": f"map ({name}) vs ground truth ({reference_name})", "evaluated_on": where,
         "accuracy": float((m == t).mean()) if t.size else float("nan")},
        {"compared": f"map ({name}) vs {second_name}", "evaluated_on": where,
         "accuracy": float((m == s).mean()) if t.size else float("nan")},
    ]
    if side is not None and "eval_label" in points:
        test = points[(side == "test") & (points["eval_label"] > 0)]
        rows.append({"compared": f"map ({name}) vs {second_name}",
                     "evaluated_on": f"held-out test points, {len(test):,} labelled by both",
                     "accuracy": float((prediction[test["row"], test["col"]] == test["eval_label"]).mean())
                     if len(test) else float("nan")})
    per_class = []
    for code in np.unique(s):
        sel = s == code
        per_class.append({"code": int(code), "class": classes.get(int(code), str(code)), "pixels": int(sel.sum()),
                          "ground_truth_recall": float((t[sel] == code).mean()),
                          "map_recall": float((m[sel] == code).mean())})
    return pd.DataFrame(rows), pd.DataFrame(per_class)
