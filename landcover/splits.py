"""Train / validation / test splits of the sampled points.

``random`` draws points at random, as the study did: neighbouring pixels end
up on both sides, so test accuracy measures interpolation between known
pixels. ``spatial`` assigns whole square blocks of the scene to one side, so
test pixels are at least a block away from most training pixels.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

SPLITS = ("random", "spatial")


def block_ids(rows: np.ndarray, cols: np.ndarray, block_size: int) -> np.ndarray:
    """Id of the ``block_size`` x ``block_size`` block holding each pixel (int64, (N,))."""
    if block_size < 1:
        raise ValueError(f"BLOCK_SIZE={block_size}: expected a positive number of pixels")
    block_row, block_col = rows // block_size, cols // block_size
    return block_row * (int(block_col.max(initial=0)) + 1) + block_col


def split_points(rows: np.ndarray, cols: np.ndarray, protocol: str, val_fraction: float, test_fraction: float,
                 block_size: int, rng: np.random.Generator) -> np.ndarray:
    """Assign each point to train (0), validation (1) or test (2).

    Args:
        rows, cols: the points' pixel positions, (N,) ints.
        protocol: ``"random"`` (points shuffled) or ``"spatial"`` (blocks shuffled).
        val_fraction, test_fraction: shares of points (random) or blocks (spatial).
        block_size: block side in pixels (spatial).
        rng: the run's generator.

    Returns:
        (N,) int8 array of 0/1/2.
    """
    if protocol not in SPLITS:
        raise ValueError(f"SPLITS: unknown protocol {protocol!r}; expected {SPLITS}")
    if not (0 < val_fraction and 0 < test_fraction and val_fraction + test_fraction < 1):
        raise ValueError(f"VAL_FRACTION={val_fraction}, TEST_FRACTION={test_fraction}: expected shares summing below 1")
    units = np.arange(rows.size) if protocol == "random" else block_ids(rows, cols, block_size)
    unique, inverse = np.unique(units, return_inverse=True)
    order = rng.permutation(unique.size)
    n_test = max(1, round(test_fraction * unique.size))
    n_val = max(1, round(val_fraction * unique.size))
    side = np.zeros(unique.size, dtype=np.int8)
    side[order[:n_test]] = 2
    side[order[n_test:n_test + n_val]] = 1
    if protocol == "spatial":
        log.info("spatial split: %d blocks of %d px (%d train, %d validation, %d test)",
                 unique.size, block_size, (side == 0).sum(), (side == 1).sum(), (side == 2).sum())
    return side[inverse]


def training_subset(train_index: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` training points drawn from the pool (all of it if smaller), sorted."""
    if size >= train_index.size:
        return np.sort(train_index)
    return np.sort(rng.choice(train_index, size=size, replace=False))


# Stream ids of the run generators, so that each protocol, and the training subsets, draw independently.
_STREAMS = {"random": 1, "spatial": 2, "subset": 3, "folds": 4}


def run_rng(seed: int, purpose: str, run: int) -> np.random.Generator:
    """The generator of one repeat for one purpose ("random", "spatial", "subset", "folds"): a function of
    (SEED, purpose, run) only, so every stage draws the same split for the same run."""
    return np.random.default_rng([seed, _STREAMS[purpose], run])


def run_seed(seed: int, run: int) -> int:
    """Model seed of repeat ``run`` (run 0 trains with SEED itself)."""
    return seed + 1000 * run


def run_split(rows: np.ndarray, cols: np.ndarray, protocol: str, run: int, repeats: int, val_fraction: float,
              test_fraction: float, block_size: int, seed: int) -> np.ndarray:
    """Assign each point to train (0), validation (1) or test (2) for repeat ``run`` of ``repeats``.

    ``random``: a new shuffle of the points per repeat (TEST_FRACTION, VAL_FRACTION).
    ``spatial`` with ``repeats`` >= 2: k-fold block cross-validation, k = ``repeats``.
    The blocks are dealt to k folds by one seeded shuffle. Repeat r tests fold r, so
    every block is tested exactly once over the repeats, and validation blocks
    (VAL_FRACTION of all blocks) are drawn from the other folds. ``spatial``
    with one repeat: a hold-out of TEST_FRACTION of the blocks, as before.

    The split depends only on the points' positions, the protocol, the run and
    the seed, so stages that drop points (rare classes) still agree on the side
    of the points they keep: comparisons between stages are paired.

    Args:
        rows, cols: (N,) pixel positions of all sampled points.
        run: 0 .. repeats-1.

    Returns:
        (N,) int8 array of 0/1/2.
    """
    if not 0 <= run < repeats:
        raise ValueError(f"REPEATS={repeats}: run {run} out of range")
    if protocol == "random" or repeats == 1:
        return split_points(rows, cols, protocol, val_fraction, test_fraction, block_size,
                            run_rng(seed, protocol, run))
    if protocol not in SPLITS:
        raise ValueError(f"SPLITS: unknown protocol {protocol!r}; expected {SPLITS}")
    if not 0 < val_fraction < 1 - 1 / repeats:
        raise ValueError(f"VAL_FRACTION={val_fraction}: with REPEATS={repeats} block folds, expected a share "
                         f"below {1 - 1 / repeats:.2f}")
    unique, inverse = np.unique(block_ids(rows, cols, block_size), return_inverse=True)
    if unique.size < repeats:
        raise ValueError(f"REPEATS={repeats}: only {unique.size} blocks of BLOCK_SIZE={block_size} px hold points; "
                         "use a smaller BLOCK_SIZE or fewer repeats")
    fold = np.empty(unique.size, dtype=np.int64)
    fold[run_rng(seed, "folds", repeats).permutation(unique.size)] = np.arange(unique.size) % repeats
    side = np.where(fold == run, 2, 0).astype(np.int8)
    others = np.flatnonzero(fold != run)
    n_val = max(1, round(val_fraction * unique.size))
    side[run_rng(seed, "spatial", run).choice(others, size=min(n_val, others.size - 1), replace=False)] = 1
    log.info("spatial split, fold %d of %d: %d blocks of %d px (%d train, %d validation, %d test)", run + 1, repeats,
             unique.size, block_size, (side == 0).sum(), (side == 1).sum(), (side == 2).sum())
    return side[inverse]
