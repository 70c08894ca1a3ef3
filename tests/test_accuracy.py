"""Map accuracy and areas with Olofsson et al. (2014)'s stratified estimators: their worked example."""

import numpy as np
import pytest

from landcover import accuracy

# Olofsson et al. 2014, Table 8: rows map classes (deforestation, forest gain, stable forest, stable non-forest),
# columns reference; mapped pixels of 0.09 ha
COUNTS = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
MAPPED = np.array([200_000, 150_000, 3_200_000, 6_450_000])


def test_worked_example_of_the_paper():
    est = accuracy.stratified_estimates(COUNTS, MAPPED)
    ci = accuracy.Z95
    assert est["overall"] == pytest.approx(0.947, abs=5e-4) and ci * est["overall_se"] == pytest.approx(0.018, abs=5e-4)
    assert np.allclose(est["users"], [0.880, 0.733, 0.927, 0.963], atol=5e-4)
    assert np.allclose(ci * est["users_se"], [0.074, 0.101, 0.040, 0.021], atol=5e-4)
    assert np.allclose(est["producers"], [0.749, 0.847, 0.935, 0.962], atol=5e-4)
    assert np.allclose(ci * est["producers_se"], [0.213, 0.254, 0.034, 0.018], atol=5e-4)
    hectares = MAPPED.sum() * 0.09
    assert np.allclose(est["area_share"] * hectares, [21_158, 11_686, 285_770, 581_386], atol=0.5)
    assert np.allclose(ci * est["area_share_se"] * hectares, [6_158, 3_756, 15_510, 16_282], atol=0.5)


def test_the_unweighted_counts_are_not_the_estimate():
    # the raw share of correct sample points is 0.917: the estimator must weight by the mapped areas
    raw = np.trace(COUNTS) / COUNTS.sum()
    assert raw == pytest.approx(0.917, abs=5e-4)
    assert accuracy.stratified_estimates(COUNTS, MAPPED)["overall"] != pytest.approx(raw, abs=0.01)


def test_assessment_table_from_points_and_a_map():
    # the same error matrix as sample points, and a map with the paper's class proportions (1/10000 of its pixels)
    codes = np.array([1, 2, 3, 4])
    pred, ref = [], []
    for i, row in enumerate(COUNTS):
        for j, count in enumerate(row):
            pred += [codes[i]] * count
            ref += [codes[j]] * count
    mapped = np.repeat(codes, MAPPED // 10_000)
    prediction_map = np.concatenate([mapped, np.zeros(5, int)]).reshape(1, -1)  # a few no-data pixels
    table = accuracy.assessment_table(np.array(ref), np.array(pred), prediction_map, codes,
                                      ["deforestation", "gain", "forest", "non-forest"], pixel_area_km2=9.0)
    overall = table.iloc[-1]
    assert overall["class"] == "overall" and overall["users_accuracy"] == pytest.approx(0.947, abs=5e-4)
    assert overall["area_km2"] == pytest.approx(1000 * 9.0)
    assert table["map_share"].iloc[:4].tolist() == pytest.approx([0.02, 0.015, 0.32, 0.645])
    assert table["area_km2"].iloc[:4].sum() == pytest.approx(9000)
    assert table["n_points"].iloc[:4].tolist() == COUNTS.sum(axis=1).tolist()
    with pytest.raises(ValueError, match=r"class codes \[9\]"):
        accuracy.assessment_table(np.array([9]), np.array([1]), prediction_map, codes, list("abcd"), 1.0)
