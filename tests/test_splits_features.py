"""Split protocols and per-pixel features."""

import numpy as np
import pandas as pd
import pytest

from landcover import features, splits


def _grid_points(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 500, n), rng.integers(0, 700, n)


def test_spatial_split_keeps_blocks_whole():
    rows, cols = _grid_points()
    side = splits.split_points(rows, cols, "spatial", 0.2, 0.2, 50, np.random.default_rng(1))
    blocks = splits.block_ids(rows, cols, 50)
    for block in np.unique(blocks):
        assert np.unique(side[blocks == block]).size == 1
    assert set(np.unique(side).tolist()) == {0, 1, 2}


def test_random_split_fractions_and_seed():
    rows, cols = _grid_points()
    a = splits.split_points(rows, cols, "random", 0.2, 0.1, 50, np.random.default_rng(5))
    b = splits.split_points(rows, cols, "random", 0.2, 0.1, 50, np.random.default_rng(5))
    assert np.array_equal(a, b)
    assert np.bincount(a).tolist() == [2100, 600, 300]


def test_training_subset_and_bad_values():
    pool = np.arange(100)
    sub = splits.training_subset(pool, 30, np.random.default_rng(0))
    assert sub.size == 30 and np.unique(sub).size == 30
    assert splits.training_subset(pool, 500, np.random.default_rng(0)).size == 100
    with pytest.raises(ValueError, match="unknown protocol 'blocks'"):
        splits.split_points(np.zeros(3), np.zeros(3), "blocks", 0.2, 0.2, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="VAL_FRACTION=0.6"):
        splits.split_points(np.zeros(3), np.zeros(3), "random", 0.6, 0.5, 10, np.random.default_rng(0))


def test_indices_and_feature_matrix():
    table = pd.DataFrame({"B02": [500], "B03": [800], "B04": [600], "B08": [3000], "segment_type": [4]})
    assert features.spectral_index("NDVI", table)[0] == pytest.approx(2400 / 3600)
    assert features.spectral_index("NDWI", table)[0] == pytest.approx(-2200 / 3800)
    assert features.spectral_index("SAVI", table)[0] == pytest.approx(1.5 * 0.24 / (0.36 + 0.5))
    assert features.spectral_index("EVI", table)[0] == pytest.approx(2.5 * 0.24 / (0.3 + 0.36 - 0.375 + 1))
    x, names = features.pixel_features(table, ["B02", "B08"], ["NDVI"], segment_type=True)
    assert names == ["B02", "B08", "NDVI", "segment_type"] and x.shape == (1, 4) and x[0, 3] == 4
    with pytest.raises(ValueError, match="no segment_type"):
        features.pixel_features(table.drop(columns="segment_type"), ["B02"], [], segment_type=True)
    with pytest.raises(ValueError, match="unknown index 'LAI'"):
        features.spectral_index("LAI", table)


def test_scores_kappa_is_undefined_for_a_single_class():
    from landcover import evaluation

    one = evaluation.scores(np.array([2, 2, 2]), np.array([2, 2, 2]), np.arange(4))
    assert one["accuracy"] == 1.0 and np.isnan(one["kappa"])
    two = evaluation.scores(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), np.arange(2))
    assert two["accuracy"] == 0.75 and two["kappa"] == pytest.approx(0.5)


def test_spatial_repeats_are_k_fold_block_cross_validation():
    rng = np.random.default_rng(4)
    rows, cols = rng.integers(0, 400, 3000), rng.integers(0, 500, 3000)
    blocks = splits.block_ids(rows, cols, 50)
    k = 4
    sides = [splits.run_split(rows, cols, "spatial", r, k, 0.2, 0.2, 50, 42) for r in range(k)]
    tested = np.zeros(np.unique(blocks).size, int)
    for side in sides:
        for block in np.unique(blocks):
            members = side[blocks == block]
            assert (members == members[0]).all()  # a block is never split between sides
        tested += np.isin(np.unique(blocks), blocks[side == 2])
        assert (side == 1).any() and (side == 0).any()
    assert (tested == 1).all()  # every block tested exactly once over the k repeats
    # one seed, the same splits; another seed, other folds
    assert np.array_equal(sides[1], splits.run_split(rows, cols, "spatial", 1, k, 0.2, 0.2, 50, 42))
    assert not np.array_equal(sides[1], splits.run_split(rows, cols, "spatial", 1, k, 0.2, 0.2, 50, 43))


def test_random_repeats_reshuffle_and_agree_on_kept_points():
    rng = np.random.default_rng(5)
    rows, cols = rng.integers(0, 300, 2000), rng.integers(0, 300, 2000)
    a = splits.run_split(rows, cols, "random", 0, 3, 0.2, 0.2, 50, 42)
    b = splits.run_split(rows, cols, "random", 1, 3, 0.2, 0.2, 50, 42)
    assert not np.array_equal(a, b) and abs((a == 2).mean() - 0.2) < 0.01
    with pytest.raises(ValueError, match="REPEATS=3"):
        splits.run_split(rows, cols, "spatial", 3, 3, 0.2, 0.2, 50, 42)
    with pytest.raises(ValueError, match="only 1 blocks"):
        splits.run_split(rows % 10, cols % 10, "spatial", 0, 3, 0.2, 0.2, 50, 42)
