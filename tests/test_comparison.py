"""Paired comparisons: block bootstrap, training variance, McNemar, Holm, verdicts."""

import numpy as np
import pandas as pd
import pytest

from landcover import comparison


def synthetic(rng, p_a, p_b, *, runs=3, n_blocks=60, per_block=25, tau=0.02, block_sd=0.15, own_sd=0.1,
              kfold=True):
    """Two models' predictions per run: a block difficulty shared by both and one of each model's
    own (spatially correlated errors), a per-run training effect of sd ``tau`` for each model,
    test blocks as k folds."""
    block_effect = rng.normal(0, block_sd, n_blocks)
    own_effect = {"a": rng.normal(0, own_sd, n_blocks), "b": rng.normal(0, own_sd, n_blocks)}
    fold = rng.permutation(n_blocks) % runs
    frames = {"a": [], "b": []}
    for run in range(runs):
        blocks = np.flatnonzero(fold == run) if kfold else rng.choice(n_blocks, n_blocks // runs, replace=False)
        block = np.repeat(blocks, per_block)
        point_id = block * per_block + np.tile(np.arange(per_block), blocks.size)
        shared = rng.random(block.size)
        own = rng.random(block.size)
        mix = rng.random(block.size) < 0.5
        for name, p, u in (("a", p_a, shared), ("b", p_b, np.where(mix, shared, own))):
            chance = np.clip(p + block_effect[block] + own_effect[name][block] + rng.normal(0, tau), 0, 1)
            frames[name].append(pd.DataFrame({"run": run, "point_id": point_id, "block": block,
                                              "correct": u < chance}))
    return pd.concat(frames["a"]), pd.concat(frames["b"])


def test_known_better_model_is_found_both_ways():
    a, b = synthetic(np.random.default_rng(0), 0.70, 0.60)
    row = comparison.paired(a, b, 1000, np.random.default_rng(1))
    assert 0.06 < row["diff"] < 0.14 and row["ci_low"] > 0
    table = comparison.finish([row, comparison.paired(b, a, 1000, np.random.default_rng(1))])
    assert list(table["verdict"]) == ["A better", "B better"]
    assert row["n_runs"] == 3 and row["n_test"] == 500


def test_false_positive_rate_near_five_percent_under_chance():
    """Two models that differ by chance alone (test points, blocks and training): about 5 % verdicts."""
    rng = np.random.default_rng(7)
    trials = 300
    hits = 0
    for _ in range(trials):
        a, b = synthetic(rng, 0.6, 0.6, tau=0.03)
        row = comparison.paired(a, b, 400, rng)
        hits += row["ci_low"] > 0 or row["ci_high"] < 0
    assert 0.02 <= hits / trials <= 0.09, hits / trials


def test_pixel_bootstrap_would_be_overconfident():
    """The block bootstrap's interval is wider than the one that treats correlated pixels as independent."""
    a, b = synthetic(np.random.default_rng(3), 0.65, 0.6, runs=1)
    by_block = comparison.paired(a, b, 1000, np.random.default_rng(0))
    by_pixel = comparison.paired(a.assign(block=a["point_id"]), b.assign(block=b["point_id"]), 1000,
                                 np.random.default_rng(0))
    assert (by_block["ci_high"] - by_block["ci_low"]) > 1.3 * (by_pixel["ci_high"] - by_pixel["ci_low"])


def test_training_variance_widens_the_interval():
    rng = np.random.default_rng(5)
    calm, noisy = [], []
    for _ in range(20):
        a, b = synthetic(rng, 0.62, 0.6, tau=0.0)
        calm.append(comparison.paired(a, b, 300, rng))
        a, b = synthetic(rng, 0.62, 0.6, tau=0.08)
        noisy.append(comparison.paired(a, b, 300, rng))
    width = lambda rows: np.median([r["ci_high"] - r["ci_low"] for r in rows])
    assert width(noisy) > 1.5 * width(calm)


def test_block_bootstrap_never_splits_a_block():
    """Whole blocks are drawn: copying every point four times inside its own block adds no information,
    and the interval stays exactly the same (a pixel bootstrap would halve it)."""
    a, b = synthetic(np.random.default_rng(4), 0.65, 0.6, runs=1)

    def copied(frame):
        return pd.concat([frame.assign(point_id=frame["point_id"] * 4 + k) for k in range(4)], ignore_index=True)

    once = comparison.paired(a, b, 500, np.random.default_rng(0))
    four = comparison.paired(copied(a), copied(b), 500, np.random.default_rng(0))
    assert four["ci_high"] - four["ci_low"] == pytest.approx(once["ci_high"] - once["ci_low"], rel=1e-9)
    assert four["n_test"] == 4 * once["n_test"]


def test_block_ids_do_not_depend_on_the_other_points():
    assert comparison.block_ids(np.array([250]), np.array([730]), 100)[0] == \
        comparison.block_ids(np.array([250, 0]), np.array([730, 9999]), 100)[0]


def test_holm_on_known_p_values():
    # sorted p 0.01, 0.02, 0.03, 0.04 over m=4: 0.04, 0.06, 0.06 (monotone), 0.06
    adjusted = comparison.holm([0.03, 0.01, 0.04, 0.02])
    np.testing.assert_allclose(adjusted, [0.06, 0.04, 0.06, 0.06])
    np.testing.assert_allclose(comparison.holm([0.5, 0.001]), [0.5, 0.002])


def test_verdict_needs_interval_and_holm():
    assert comparison.verdict(0.01, 0.05, 0.01) == "A better"
    assert comparison.verdict(-0.05, -0.01, 0.01) == "B better"
    assert comparison.verdict(0.01, 0.05, 0.2) == "no significant difference"  # Holm not passed
    assert comparison.verdict(-0.01, 0.05, 0.01) == "no significant difference"


def test_mcnemar_exact_known_value():
    # 10 discordant pairs, 9 for A: two-sided binomial p = 2 * (11 / 1024)
    a = np.array([1] * 9 + [0] + [1] * 50, bool)
    b = np.array([0] * 9 + [1] + [1] * 50, bool)
    assert comparison.mcnemar_exact(a, b) == pytest.approx(22 / 1024)


def test_unpaired_difference_of_two_protocols():
    rng = np.random.default_rng(2)
    a, _ = synthetic(rng, 0.75, 0.6)
    b, _ = synthetic(rng, 0.55, 0.6)
    row = comparison.unpaired(a, b, 1000, rng)
    assert row["ci_low"] > 0 and 0.1 < row["diff"] < 0.3 and not row["paired"] and row["mcnemar_p"] == ""


def test_describe():
    assert comparison.describe(0.026, -0.004, 0.056) == "+2.6 points (95 % CI -0.4 to +5.6)"
