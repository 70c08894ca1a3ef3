"""Benchmark PRECISION: the patch CNN trained in float32 and in mixed bfloat16, time and accuracy.

On the prepared demo scene (data/prepared from scene_prep.py), the demo's
training settings (CNN_TRAIN_SIZE, CNN_BATCH_SIZE, CNN_EPOCHS, CNN_PATIENCE),
each patch size of --sizes is trained on the random split's first --runs runs
in both precisions: the same points, the same seeds. Printed per size and
precision: mean training time, epochs, test accuracy; the paired accuracy
difference per run; and the speed of predicting the whole AOI with the trained
7x7 model (test_patches' predictor).

bfloat16 runs natively on CPUs with AVX-512 BF16 or AMX and on Ampere or later
GPUs; elsewhere it is emulated and slower (PRECISION = "auto" picks float32 there).

Run:  .venv/bin/python benchmarks/bench_precision.py [--sizes 3 7] [--runs 3]
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import config  # noqa: E402
from landcover import experiment, inference, labels, models, patch_data, rasters, sampling, splits  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 7])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    prep = Path(config.PREP_DIR)
    scene, _, valid = rasters.read_scene_filled(prep / "scene.tif")
    all_points = sampling.read_points(prep / "points.parquet")
    points, _ = sampling.drop_rare_classes(all_points, config.PATCH_MIN_SAMPLES)
    kept = np.flatnonzero(all_points["point_id"].isin(points["point_id"]).to_numpy())
    codes = np.array([c.code for c in labels.read_classes(prep / "classes.json") if c.code in set(points["label"])])
    y = np.searchsorted(codes, points["label"].to_numpy())
    rows, cols = points["row"].to_numpy(), points["col"].to_numpy()
    print(f"bfloat16 native here: {models.bfloat16_is_fast()}")
    results, trained = {}, {}
    for run in range(args.runs):
        side = splits.run_split(all_points["row"].to_numpy(), all_points["col"].to_numpy(), "random", run,
                                config.REPEATS, config.VAL_FRACTION, config.TEST_FRACTION, config.BLOCK_SIZE,
                                config.SEED)[kept]
        train = splits.training_subset(np.flatnonzero(side == 0), config.CNN_TRAIN_SIZE,
                                       splits.run_rng(config.SEED, "subset", run))
        val, test = np.flatnonzero(side == 1), np.flatnonzero(side == 2)
        for p in args.sizes:
            for precision in ("float32", "mixed_bfloat16"):
                start = time.perf_counter()
                fit = experiment.run_patch_cnn(
                    scene, rows, cols, y, train, val, test, len(codes), p, padding="same",
                    seed=splits.run_seed(config.SEED, run), learning_rate=config.CNN_LEARNING_RATE,
                    epochs=config.CNN_EPOCHS, batch_size=config.CNN_BATCH_SIZE, patience=config.CNN_PATIENCE,
                    min_epochs=config.CNN_MIN_EPOCHS, deterministic=True, precision=precision)
                seconds = time.perf_counter() - start
                results.setdefault((p, precision), []).append(
                    (seconds, len(fit.result.history["loss"]), fit.result.test["accuracy"]))
                trained[(p, precision)] = fit
                print(f"run {run + 1}, {p}x{p}, {precision}: {seconds:.1f} s, {len(fit.result.history['loss'])} "
                      f"epochs, test accuracy {fit.result.test['accuracy']:.3f}", flush=True)
    print("\n| patch | precision | train time (s) | epochs | test accuracy | speed-up |")
    print("|---|---|---|---|---|---|")
    for p in args.sizes:
        base = np.mean([r[0] for r in results[(p, "float32")]])
        for precision in ("float32", "mixed_bfloat16"):
            t, e, a = (np.mean([r[i] for r in results[(p, precision)]]) for i in range(3))
            print(f"| {p}x{p} | {precision} | {t:.1f} | {e:.1f} | {a:.3f} | {base / t:.2f}x |")
        diffs = [b[2] - f[2] for f, b in zip(results[(p, "float32")], results[(p, "mixed_bfloat16")])]
        print(f"|  | bf16 - float32, per run | | | {', '.join(f'{100 * d:+.1f}' for d in diffs)} points | |")
    p = max(args.sizes)
    for precision in ("float32", "mixed_bfloat16"):
        fit = trained[(p, precision)]
        padded = patch_data.normalised_padded(scene, fit.mean, fit.std, p)
        start = time.perf_counter()
        for _ in inference.window_tiles(fit.model, padded, p, valid, batch_size=config.PREDICT_BATCH,
                                        tile_mb=config.PREDICT_TILE_MB):
            pass
        seconds = time.perf_counter() - start
        print(f"whole AOI ({valid.sum():,} px), {p}x{p}, {precision}: {seconds:.1f} s, "
              f"{valid.sum() / seconds:,.0f} px/s")


if __name__ == "__main__":
    main()
