"""Where the training stages' time goes: Keras fit's share of each stage, and fit against a bare Keras fit.

Part 1, stage shares: test_segment.py, patches.py and train_bigearth.py run in this
process on the prepared demo (data/prepared, data/bigearth: run study.py, or
scene_prep.py and read_bigearth.py, first), writing into benchmarks/out/fit/, with
every call of ``models.fit_keras`` and of Keras ``predict`` timed. Printed per
stage: wall time, the time inside fit (training steps and per-epoch validation),
inside predict, and the rest (reading, forests, scoring, figures, tables).
``--set`` overrides apply (e.g. ``--set REPEATS=1`` for a shorter run).

Part 2, fit against a bare fit: the MLP (test_segment's), the 7x7 patch CNN
(patches') and the transfer head (train_bigearth's) trained for a fixed number of
epochs (no early stopping) by the project's function, then by a bare
``model.fit`` of the same architecture on the same arrays held in memory (the
patches cut beforehand), compiled with Keras's defaults (one step per call),
the same batch size, class weights and validation data. Printed: both times
and their ratio; the project's fit should be no slower than the bare one.

Run:  .venv/bin/python benchmarks/bench_fit.py [--stages test_segment patches train_bigearth]
      [--epochs 10] [--set KEY=VALUE ...]
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import config  # noqa: E402
from landcover import cli, experiment, features, labels, models, patch_data, rasters, sampling, splits  # noqa: E402

OUT = ROOT / "benchmarks" / "out" / "fit"


class Timer:
    """Accumulated seconds inside wrapped functions."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def wrap(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start
        setattr(owner, name, timed)


def stage_shares(stages: list[str], overrides: list[str]) -> None:
    import importlib

    import keras

    timer = Timer()
    timer.wrap(models, "fit_keras", "fit")
    timer.wrap(keras.Model, "predict", "predict")
    print("| stage | wall (s) | fit (s) | fit share | predict (s) | rest (s) |\n|---|---|---|---|---|---|")
    for stage in stages:
        cli.reset_config()
        cli.apply_overrides({"REPORTS_DIR": OUT / "reports", "MODELS_DIR": OUT / "models",
                             **dict(cli._split_override(o) for o in overrides)})
        module = importlib.import_module(stage)
        timer.seconds.clear()
        start = time.perf_counter()
        module.run()
        wall = time.perf_counter() - start
        fit, predict = timer.seconds.get("fit", 0.0), timer.seconds.get("predict", 0.0)
        print(f"| {stage} | {wall:.1f} | {fit:.1f} | {fit / wall:.0%} | {predict:.1f} | {wall - fit - predict:.1f} |",
              flush=True)


def _bare_fit(model, x, y, xv, yv, batch_size: int, epochs: int) -> float:
    import keras

    bare = keras.models.clone_model(model)
    bare.compile(optimizer=model.optimizer.__class__.from_config(model.optimizer.get_config()), loss=model.loss,
                 metrics=["accuracy"])  # Keras's defaults: one step per call
    start = time.perf_counter()
    bare.fit(x, y, batch_size=batch_size, epochs=epochs, validation_data=(xv, yv), shuffle=True, verbose=0,
             class_weight=models.balanced_class_weights(y))
    return time.perf_counter() - start


def fit_against_bare(epochs: int) -> None:
    prep = Path(config.PREP_DIR)
    points = sampling.read_points(prep / "points.parquet")
    points, _ = sampling.drop_rare_classes(points, config.PATCH_MIN_SAMPLES)
    codes = np.array([c.code for c in labels.read_classes(prep / "classes.json") if c.code in set(points["label"])])
    y = np.searchsorted(codes, points["label"].to_numpy())
    rows, cols = points["row"].to_numpy(), points["col"].to_numpy()
    side = splits.run_split(rows, cols, "random", 0, config.REPEATS, config.VAL_FRACTION, config.TEST_FRACTION,
                            config.BLOCK_SIZE, config.SEED)
    pool, val, test = np.flatnonzero(side == 0), np.flatnonzero(side == 1), np.flatnonzero(side == 2)
    rng = splits.run_rng(config.SEED, "subset", 0)
    timer = Timer()
    timer.wrap(models, "fit_keras", "fit")
    print(f"\n| network | epochs | project's fit (s) | bare Keras fit (s) | project / bare |\n|---|---|---|---|---|")

    # the MLP on bands + indices, 10,000 points, batch MLP_BATCH_SIZE
    train = splits.training_subset(pool, max(config.TRAIN_SIZES), rng)
    x, _ = features.pixel_features(points, config.BANDS, config.INDICES)
    scaler = features.fit_scaler(x[train])
    xs = scaler.transform(x).astype(np.float32)
    models.seed_keras(1, config.TF_DETERMINISTIC, "float32")
    mlp = models.build_mlp(xs.shape[1], len(codes), config.MLP_LEARNING_RATE)
    timer.seconds.clear()
    models.fit_keras(mlp, xs[train], y[train], xs[val], y[val], epochs=epochs, batch_size=config.MLP_BATCH_SIZE,
                     patience=None, desc="MLP")
    models.seed_keras(1, config.TF_DETERMINISTIC, "float32")
    bare = _bare_fit(models.build_mlp(xs.shape[1], len(codes), config.MLP_LEARNING_RATE), xs[train], y[train],
                     xs[val], y[val], config.MLP_BATCH_SIZE, epochs)
    print(f"| MLP ({train.size} points, batch {config.MLP_BATCH_SIZE}) | {epochs} | {timer.seconds['fit']:.1f} | "
          f"{bare:.1f} | {timer.seconds['fit'] / bare:.2f} |", flush=True)

    # the 7x7 patch CNN, CNN_TRAIN_SIZE points, patches cut on the fly (project) or beforehand (bare)
    scene, _, _ = rasters.read_scene_filled(prep / "scene.tif")
    train = splits.training_subset(pool, config.CNN_TRAIN_SIZE or pool.size, rng)
    timer.seconds.clear()
    run = experiment.run_patch_cnn(scene, rows, cols, y, train, val, test, len(codes), 7, padding=config.CNN_PADDING,
                                   seed=1, learning_rate=config.CNN_LEARNING_RATE, epochs=epochs,
                                   batch_size=config.CNN_BATCH_SIZE, patience=None,
                                   deterministic=config.TF_DETERMINISTIC, precision=config.PRECISION)
    padded = patch_data.normalised_padded(scene, run.mean, run.std, 7)
    view = patch_data.windows(padded, 7)
    models.seed_keras(1, config.TF_DETERMINISTIC, config.PRECISION)
    cnn = models.build_patch_cnn(7, scene.shape[0], len(codes), padding=config.CNN_PADDING,
                                 learning_rate=config.CNN_LEARNING_RATE)
    bare = _bare_fit(cnn, np.ascontiguousarray(view[rows[train], cols[train]]), y[train],
                     np.ascontiguousarray(view[rows[val], cols[val]]), y[val], config.CNN_BATCH_SIZE, epochs)
    print(f"| CNN 7x7 ({train.size} points, batch {config.CNN_BATCH_SIZE}, {models.resolve_precision(config.PRECISION)}) "
          f"| {epochs} | {timer.seconds['fit']:.1f} | {bare:.1f} | {timer.seconds['fit'] / bare:.2f} |", flush=True)

    # the transfer head on 15 x 15 x 128 frozen features of 2,000 points (random features of that shape)
    n_features = 15 * 15 * 128
    feats = np.random.default_rng(0).random((3000, n_features), dtype=np.float32)
    head_y = y[:3000]
    models.seed_keras(1, config.TF_DETERMINISTIC)
    timer.seconds.clear()
    models.fit_keras(models.build_transfer_head(n_features, len(codes)), feats[:2000], head_y[:2000], feats[2000:],
                     head_y[2000:], epochs=epochs, batch_size=64, patience=None, desc="transfer head")
    models.seed_keras(1, config.TF_DETERMINISTIC)
    bare = _bare_fit(models.build_transfer_head(n_features, len(codes)), feats[:2000], head_y[:2000], feats[2000:],
                     head_y[2000:], 64, epochs)
    print(f"| transfer head (2000 points, {n_features} features, batch 64) | {epochs} | {timer.seconds['fit']:.1f} | "
          f"{bare:.1f} | {timer.seconds['fit'] / bare:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", nargs="*", default=["test_segment", "patches", "train_bigearth"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    cli.setup_logging()
    import logging

    logging.getLogger().setLevel(logging.WARNING)  # the tables, not the stages' logs
    if args.stages:
        stage_shares(args.stages, args.overrides)
    cli.reset_config()
    cli.apply_overrides(dict(cli._split_override(o) for o in args.overrides))
    fit_against_bare(args.epochs)


if __name__ == "__main__":
    main()
