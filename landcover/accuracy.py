"""Map accuracy and class areas as map producers report them (Olofsson et al. 2014).

Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E. and
Wulder, M. A. (2014). Good practices for estimating area and assessing
accuracy of land change. Remote Sensing of Environment 148: 42-57.

The map's classes are the strata: with ``n[i, j]`` the sample counts (rows:
map class i, columns: reference class j) and ``W[i]`` the share of the map in
class i, the estimated area proportion of each cell is
``p[i, j] = W[i] * n[i, j] / n[i, :].sum()``. Overall, user's and producer's
accuracy and the area of every reference class follow from ``p`` (their
equations 1-4 and 9-11), each with a 95 % interval (1.96 standard errors).
These estimators correct the bias of the raw sample counts towards the
classes the sample over-represents.

The points must be a probability sample of the map (simple random or
stratified by map class); held-out points of a spatial-block split are
clustered, so their intervals are too narrow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# The sample design of the held-out points, as written beside the estimates.
SIMPLE_RANDOM = "simple random (random split)"
BLOCKS = "whole blocks (spatial split): not a simple random sample, estimates biased towards the test blocks"
Z95 = 1.96  # as Olofsson et al. (2014) use


def stratified_estimates(counts: np.ndarray, mapped: np.ndarray) -> dict[str, np.ndarray | float]:
    """Olofsson et al.'s estimators from an error matrix of sample counts and the mapped areas.

    Args:
        counts: (K, K) sample counts, rows = map class, columns = reference class,
            in the same class order.
        mapped: (K,) mapped area (pixels, or any area unit) of each map class.

    Returns:
        ``overall``, ``overall_se`` (floats); ``users``, ``users_se``,
        ``producers``, ``producers_se``, ``area_share``, ``area_share_se``
        ((K,) arrays; area shares of the reference classes, sum 1). A map
        class without a sample point has NaN user's accuracy; a class with
        one point has an undefined (NaN) standard error.
    """
    n = np.asarray(counts, dtype=np.float64)
    mapped = np.asarray(mapped, dtype=np.float64)
    if n.ndim != 2 or n.shape[0] != n.shape[1] or mapped.shape != (n.shape[0],):
        raise ValueError(f"expected a (K, K) error matrix and (K,) mapped areas, got {n.shape} and {mapped.shape}")
    w = mapped / mapped.sum()
    n_i = n.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        row = n / n_i[:, None]                         # n_ij / n_i.
        p = w[:, None] * row                           # eq. 4: estimated area proportions
        users = np.diag(row)
        var_rows = row * (1 - row) / (n_i[:, None] - 1)  # per cell: (n_ij/n_i.)(1 - n_ij/n_i.)/(n_i. - 1)
        overall = float(np.nansum(np.diag(p)))
        overall_var = float(np.nansum(w**2 * users * (1 - users) / (n_i - 1)))  # eq. 5
        area_share = np.nansum(p, axis=0)              # eq. 9: p_.k
        area_share_se = np.sqrt(np.nansum(w[:, None] ** 2 * var_rows, axis=0))  # eq. 10
        producers = np.diag(p) / area_share
        # eq. 7, with the mapped areas N_i. and the estimated reference totals N_.j
        n_map = mapped
        n_ref = np.nansum(n_map[:, None] * row, axis=0)
        k = n.shape[0]
        prod_var = np.empty(k)
        for j in range(k):
            others = [i for i in range(k) if i != j]
            first = n_map[j] ** 2 * (1 - producers[j]) ** 2 * users[j] * (1 - users[j]) / (n_i[j] - 1)
            second = producers[j] ** 2 * np.nansum(n_map[others] ** 2 * var_rows[others, j])
            prod_var[j] = (first + second) / n_ref[j] ** 2
        users_se = np.sqrt(users * (1 - users) / (n_i - 1))  # eq. 6
    return {"overall": overall, "overall_se": float(np.sqrt(overall_var)), "users": users, "users_se": users_se,
            "producers": producers, "producers_se": np.sqrt(prod_var), "area_share": area_share,
            "area_share_se": area_share_se}


def assessment_table(reference: np.ndarray, predicted: np.ndarray, prediction_map: np.ndarray, codes: np.ndarray,
                     names: list[str], pixel_area_km2: float) -> pd.DataFrame:
    """The accuracy assessment of a class map from sample points, one row per class and an overall row.

    Args:
        reference: (N,) reference class codes at the sample points.
        predicted: (N,) map class codes at the same points.
        prediction_map: (rows, cols) map codes, 0 = no data (not counted in the areas).
        codes: (K,) the class codes, in table order (every code in reference and predicted).
        names: (K,) class names.
        pixel_area_km2: area of one pixel.

    Returns:
        Columns ``code, class, map_share, n_points, users_accuracy, users_ci95,
        producers_accuracy, producers_ci95, area_km2, area_ci95_km2`` (the
        ``_ci95`` columns are the half-widths of the 95 % intervals: value +- ci95),
        and a last row ``overall`` with the overall accuracy and its interval
        in the user's columns and the total mapped area.
    """
    codes = np.asarray(codes)
    index = {int(c): k for k, c in enumerate(codes)}
    missing = set(np.unique(reference).tolist()) | set(np.unique(predicted).tolist())
    missing -= set(index)
    if missing:
        raise ValueError(f"class codes {sorted(missing)} of the sample are not in the table's codes")
    k = codes.size
    counts = np.zeros((k, k), np.int64)
    np.add.at(counts, (np.vectorize(index.get)(predicted), np.vectorize(index.get)(reference)), 1)
    mapped_codes, mapped_px = np.unique(prediction_map[prediction_map > 0], return_counts=True)
    mapped = np.zeros(k)
    for c, px in zip(mapped_codes, mapped_px):
        if int(c) in index:
            mapped[index[int(c)]] = px
    est = stratified_estimates(counts, mapped)
    total_km2 = mapped.sum() * pixel_area_km2
    table = pd.DataFrame({
        "code": codes, "class": names, "map_share": mapped / mapped.sum(), "n_points": counts.sum(axis=1),
        "users_accuracy": est["users"], "users_ci95": Z95 * est["users_se"],
        "producers_accuracy": est["producers"], "producers_ci95": Z95 * est["producers_se"],
        "area_km2": est["area_share"] * total_km2, "area_ci95_km2": Z95 * est["area_share_se"] * total_km2,
    })
    overall = {"code": 0, "class": "overall", "map_share": 1.0, "n_points": int(counts.sum()),
               "users_accuracy": est["overall"], "users_ci95": Z95 * est["overall_se"],
               "producers_accuracy": np.nan, "producers_ci95": np.nan, "area_km2": total_km2, "area_ci95_km2": 0.0}
    return pd.concat([table, pd.DataFrame([overall])], ignore_index=True)
