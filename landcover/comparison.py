"""Paired comparisons of two classifiers with 95 % intervals, significance and a verdict.

Two sources of noise separate a measured accuracy difference from the true one:

- the test points: neighbouring pixels are not independent, so the points are
  resampled in whole spatial blocks (a block bootstrap; Roberts et al. 2017,
  Ecography 40: 913-929), never pixel by pixel;
- training randomness: each repeat trains both models again (new seed, new
  split), so the spread of the per-run differences beyond what the test
  points explain is the training variance.

For one comparison with runs r = 1..R, d_r is the accuracy difference on run
r's test points (both models on the same points: paired) and D = mean(d_r).
One bootstrap draw resamples the blocks once, with the same draw for every run
(runs whose test sets overlap stay correlated), and recomputes every d_r and D:

    V_test  = variance of D over the draws            (test points)
    tau^2   = max(0, s^2 - mean_r var(d_r))            (training; s^2 = variance of the d_r)
    Var(D)  = V_test + tau^2 / R

the random-effects decomposition of meta-analysis, with each run a study.
The interval is D +- t * sqrt(Var(D)): normal quantiles when the runs differ
no more than their test points explain (tau^2 = 0), Student's t with R - 1
degrees of freedom when training variance is seen (as Hartung and Knapp's
random-effects interval; with disjoint test folds Var(D) is then s^2 / R, the
usual cross-validation t-test). The p-value is the matching two-sided test.
Simulated under the null (tests/test_comparison.py), 3 runs: 2-7 % false
verdicts at the 5 % level. McNemar's exact test on each run's paired predictions (Foody
2004, Photogrammetric Engineering & Remote Sensing 70: 627-633) is reported as
a second view. Holm's correction runs over all the rows of one file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

VERDICTS = ("A better", "B better", "no significant difference")
ALPHA = 0.05
# Encoding of (block row, block column) as one id; no scene has a million blocks per row.
_BLOCK_STRIDE = 1_000_000


def block_ids(rows: np.ndarray, cols: np.ndarray, block_size: int) -> np.ndarray:
    """Id of the ``block_size`` square block of each pixel, the same for any set of points (int64, (N,))."""
    if block_size < 1:
        raise ValueError(f"BLOCK_SIZE={block_size}: expected a positive number of pixels")
    return (np.asarray(rows, np.int64) // block_size) * _BLOCK_STRIDE + np.asarray(cols, np.int64) // block_size


def _draw_blocks(n_blocks: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n_blocks) counts of n_blocks draws with replacement, equal chances."""
    return rng.multinomial(n_blocks, np.full(n_blocks, 1 / n_blocks), size=n_boot).astype(np.float64)


@dataclass
class Estimate:
    """A mean over runs with its variance (test points and training) and degrees of freedom."""

    mean: float
    var: float
    df: float
    per_run: np.ndarray

    def interval(self) -> tuple[float, float]:
        half = stats.t.ppf(1 - ALPHA / 2, self.df) * np.sqrt(self.var)
        return self.mean - half, self.mean + half

    def p_value(self) -> float:
        if self.var <= 0:
            return 1.0 if self.mean == 0 else 0.0
        return float(2 * stats.t.sf(abs(self.mean) / np.sqrt(self.var), self.df))


def estimate(values: np.ndarray, counts: np.ndarray, n_boot: int, rng: np.random.Generator) -> Estimate:
    """Mean over runs of a per-point score (accuracy, or a paired difference of correctness).

    Args:
        values: (blocks, runs) the sum of the score over each block's test points in each run.
        counts: (blocks, runs) the number of test points of each block in each run.
    """
    values, counts = np.asarray(values, np.float64), np.asarray(counts, np.float64)
    n_runs = values.shape[1]
    per_run = values.sum(axis=0) / counts.sum(axis=0)
    weights = _draw_blocks(values.shape[0], n_boot, rng)  # whole blocks, one draw for every run
    with np.errstate(invalid="ignore", divide="ignore"):
        drawn = (weights @ values) / (weights @ counts)  # (n_boot, runs); nan where a draw missed a run's blocks
    drawn = drawn[np.isfinite(drawn).all(axis=1)]
    v_test = float(np.var(drawn.mean(axis=1), ddof=1)) if len(drawn) > 1 else 0.0
    v_runs = float(np.var(drawn, axis=0, ddof=1).mean()) if len(drawn) > 1 else 0.0
    tau2 = max(0.0, float(np.var(per_run, ddof=1)) - v_runs) if n_runs > 1 else 0.0
    # training variance seen: estimated from the R runs, so R - 1 degrees of freedom (Hartung-Knapp)
    return Estimate(float(per_run.mean()), v_test + tau2 / n_runs, float(n_runs - 1) if tau2 > 0 else np.inf, per_run)


def _per_block(frame: pd.DataFrame, column: str, runs: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(blocks, runs) sums of ``column`` and point counts."""
    table = frame.pivot_table(index="block", columns="run", values=column, aggfunc=["sum", "count"], fill_value=0)
    return (table["sum"].reindex(columns=runs, fill_value=0).to_numpy(),
            table["count"].reindex(columns=runs, fill_value=0).to_numpy())


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """McNemar's exact (binomial) test of two classifiers on the same points: its two-sided p-value."""
    from statsmodels.stats.contingency_tables import mcnemar

    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    return float(mcnemar(table, exact=True).pvalue)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (statsmodels)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, np.float64)
    if p.size == 0:
        return p
    return multipletests(p, method="holm")[1]


def paired(a: pd.DataFrame, b: pd.DataFrame, n_boot: int, rng: np.random.Generator) -> dict:
    """Compare two models on the test points they share in each run.

    Args:
        a, b: one row per (run, point) with columns ``run``, ``point_id``,
            ``block`` and ``correct`` (bool).

    Returns:
        The comparison's numbers: means, difference, interval, p-value,
        McNemar's per-run p-values, runs and test points per run.
    """
    both = a.merge(b, on=["run", "point_id"], suffixes=("_a", "_b"))
    if both.empty:
        raise ValueError("the two models share no test point in any run")
    both = both.assign(block=both["block_a"], diff=both["correct_a"].astype(float) - both["correct_b"].astype(float),
                       acc_a=both["correct_a"].astype(float), acc_b=both["correct_b"].astype(float))
    runs = sorted(both["run"].unique())
    diff = estimate(*_per_block(both, "diff", runs), n_boot, rng)
    mean_a = both.groupby("run")["acc_a"].mean().mean()
    mean_b = both.groupby("run")["acc_b"].mean().mean()
    low, high = diff.interval()
    mcnemar = [mcnemar_exact(part["correct_a"], part["correct_b"]) for _, part in both.groupby("run")]
    return {"mean_a": mean_a, "mean_b": mean_b, "diff": diff.mean, "ci_low": low, "ci_high": high,
            "p_value": diff.p_value(), "mcnemar_p": "; ".join(f"{p:.3g}" for p in mcnemar), "paired": True,
            "n_runs": len(runs), "n_test": int(round(len(both) / len(runs)))}


def unpaired(a: pd.DataFrame, b: pd.DataFrame, n_boot: int, rng: np.random.Generator) -> dict:
    """Compare two models tested on different points (e.g. one model under two split protocols):
    the difference of two independent estimates, Welch-Satterthwaite degrees of freedom."""
    est = []
    for part in (a, b):
        runs = sorted(part["run"].unique())
        est.append(estimate(*_per_block(part.assign(correct=part["correct"].astype(float)), "correct", runs),
                            n_boot, rng))
    ea, eb = est
    var = ea.var + eb.var
    terms = [e.var ** 2 / e.df for e in est if np.isfinite(e.df) and e.var > 0]
    df = var ** 2 / sum(terms) if terms else np.inf
    diff = Estimate(ea.mean - eb.mean, var, df, np.array([]))
    low, high = diff.interval()
    return {"mean_a": ea.mean, "mean_b": eb.mean, "diff": diff.mean, "ci_low": low, "ci_high": high,
            "p_value": diff.p_value(), "mcnemar_p": "", "paired": False,
            "n_runs": min(a["run"].nunique(), b["run"].nunique()),
            "n_test": int(round((len(a) / a["run"].nunique() + len(b) / b["run"].nunique()) / 2))}


def accuracy_interval(part: pd.DataFrame, n_boot: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """Mean accuracy over runs and its 95 % interval (``part``: run, block, correct)."""
    runs = sorted(part["run"].unique())
    est = estimate(*_per_block(part.assign(correct=part["correct"].astype(float)), "correct", runs), n_boot, rng)
    return (est.mean, *est.interval())


def verdict(ci_low: float, ci_high: float, p_holm: float) -> str:
    """'A better' / 'B better' only when the interval excludes 0 and the Holm-adjusted p < 0.05."""
    if p_holm < ALPHA and ci_low > 0:
        return VERDICTS[0]
    if p_holm < ALPHA and ci_high < 0:
        return VERDICTS[1]
    return VERDICTS[2]


def finish(rows: list[dict]) -> pd.DataFrame:
    """The comparison table: Holm over all rows, then each row's verdict."""
    columns = ["experiment", "split", "model_a", "model_b", "metric", "mean_a", "mean_b", "diff", "ci_low", "ci_high",
               "p_value", "p_holm", "n_runs", "n_test", "verdict", "mcnemar_p", "paired"]
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=columns)
    table = table.reindex(columns=[c for c in columns if c not in ("p_holm", "verdict")])
    table["p_holm"] = holm(table["p_value"])
    table["verdict"] = [verdict(lo, hi, p) for lo, hi, p in zip(table["ci_low"], table["ci_high"], table["p_holm"])]
    return table[columns]


def points_frame(predictions: pd.DataFrame, block_size: int) -> pd.DataFrame:
    """Add ``block`` and ``correct`` to a predictions table (row, col, truth, pred)."""
    return predictions.assign(block=block_ids(predictions["row"], predictions["col"], block_size),
                              correct=predictions["truth"].to_numpy() == predictions["pred"].to_numpy())


def describe(diff: float, low: float, high: float) -> str:
    """``"+2.6 points (95 % CI -0.4 to +5.6)"``."""
    return f"{100 * diff:+.1f} points (95 % CI {100 * low:+.1f} to {100 * high:+.1f})"


# The rows of reports/comparisons.csv, in the order the report states them.
FOREST, MLP_PIXEL, MLP = "Random forest", "MLP-Pixel", "MLP"


def _cnn_size(name: str) -> int:
    return int(name.split()[1].split("x")[0])


def study_pairs(models: dict[str, list[str]], best_cnn: dict[str, str]) -> list[tuple]:
    """The comparisons the report states: (experiment, split, (split, model A), (split, model B), paired).

    Args:
        models: split -> the model names with test predictions under it.
        best_cnn: split -> the best patch CNN's name (highest mean validation accuracy).
    """
    pairs = []
    for split, names in models.items():
        cnns = sorted((n for n in names if n.startswith("CNN ")), key=_cnn_size)
        mlps = [n for n in names if n == MLP or n.startswith("MLP (segments")]
        pair = []
        if MLP_PIXEL in names:
            pair += [("segment type", m, MLP_PIXEL) for m in mlps]
        if FOREST in names:
            pair += [("per-pixel classifier vs forest", m, FOREST)
                     for m in names if m in ("Random forest (one-hot, the study's)", MLP_PIXEL, MLP)]
            pair += [("patch CNN vs forest", m, FOREST) for m in cnns]
        pair += [("patch size", big, small) for small, big in zip(cnns, cnns[1:])]
        if best_cnn.get(split) in names:
            pair += [("transfer vs best patch CNN", m, best_cnn[split]) for m in names if m.startswith("Transfer")]
        pairs += [(experiment, split, (split, a), (split, b), True) for experiment, a, b in pair]
    if {"random", "spatial"} <= set(models):
        both = [m for m in models["random"] if m in models["spatial"] and not m.startswith("Transfer")]
        pairs += [("random vs spatial split", "random vs spatial", ("random", m), ("spatial", m), False)
                  for m in both]
    return pairs


def build(predictions: pd.DataFrame, best_cnn: dict[str, str], block_size: int, n_boot: int,
          seed: int) -> pd.DataFrame:
    """reports/comparisons.csv from the stages' test predictions (``runs.predictions`` rows).

    Per-pixel models are compared at their largest training size. Each row has
    its own generator (SEED and the row's position), so a row's interval does
    not depend on which other rows exist.
    """
    frame = points_frame(predictions, block_size)
    pixel = frame["experiment"] == "pixel"
    largest = frame.loc[pixel].groupby("model")["setting"].transform(lambda s: s.astype(int).max())
    keep = ~pixel
    keep[pixel] = frame.loc[pixel, "setting"].astype(int) == largest
    columns = ["run", "point_id", "block", "correct"]
    groups = {key: part[columns] for key, part in frame[keep].groupby(["split", "model"])}
    models: dict[str, list[str]] = {}
    for split, model in groups:
        models.setdefault(split, []).append(model)
    rows = []
    for i, (experiment, split, a, b, is_paired) in enumerate(study_pairs(models, best_cnn)):
        rng = np.random.default_rng([seed, 7, i])
        numbers = (paired if is_paired else unpaired)(groups[a], groups[b], n_boot, rng)
        names = (a[1], b[1]) if is_paired else (f"{a[1]} ({a[0]} split)", f"{b[1]} ({b[0]} split)")
        rows.append({"experiment": experiment, "split": split, "model_a": names[0], "model_b": names[1],
                     "metric": "accuracy", **numbers})
    return finish(rows)
