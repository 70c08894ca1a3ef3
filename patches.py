"""Stage 4: the patch CNN: a CNN on the p x p patch around each point predicts its class.

For every split protocol in SPLITS and every patch size in PATCH_SIZES, the
study's CNN (Conv2D 8-16-32-64-128-128, Flatten, Dense 1000, softmax; Adam;
CNN_PADDING "same" as the study, or "valid" for exact fully convolutional
prediction) is trained on patches cut on the fly from scene.tif (symmetric
padding at the scene edge; per-band normalisation fitted on the training
points), with balanced class weights and early stopping on validation
accuracy; the best epoch is kept. Classes with fewer than PATCH_MIN_SAMPLES
points are dropped. The split protocols and their REPEATS runs are those of
test_segment.py (the same test points per run, so the two stages' models are
compared paired); the first run's model is saved.

Inputs (PREP_DIR): scene.tif, points.parquet, classes.json
Outputs:
    MODELS_DIR/patch_cnn_<split>_<p>.keras  each trained model, with
        patch_cnn_<split>_<p>.json (patch size, bands, normalisation, classes,
        padding, split, seed, scores, config) and
        patch_cnn_<split>_<p>_points.parquet (point_id and its side: train,
        val, test), so that prediction and evaluation need nothing else
    REPORTS_DIR/patches/runs.md, runs.csv  one row per patch size, split and
        run: seed, validation and test accuracy, kappa, macro F1, epochs
        trained, whether the epoch cap ended it; with a second reference
        (EVAL_LABELS_PATH) also the test accuracy against it and the ground
        truth's own (test_accuracy_eval, reference_accuracy_eval)
    REPORTS_DIR/patches/results.md, results.csv  the same per patch size and
        split: means over the runs, test_accuracy_sd, n_runs, epoch_cap_hits,
        model file name
    REPORTS_DIR/patches/predictions.parquet  every run's test predictions
    REPORTS_DIR/patches/per_class.csv, confusion_<split>_<p>.png, curves_<split>.png
    REPORTS_DIR/patches/patches_config.json
    REPORTS_DIR/patches/.runs/  each finished run as soon as it finishes: a killed stage, run again
        with the same settings, resumes at its first unfinished run (landcover.resume)
Config keys: PREP_DIR, POINTS_FORMAT, PATCH_SIZES, PATCH_MIN_SAMPLES, CNN_PADDING,
    CNN_INIT, CNN_LEARNING_RATE, CNN_EPOCHS, CNN_BATCH_SIZE, CNN_PATIENCE, CNN_MIN_EPOCHS, CNN_TRAIN_SIZE,
    SPLITS, REPEATS, PRECISION, VAL_FRACTION, TEST_FRACTION, BLOCK_SIZE, TF_DETERMINISTIC, SEED,
    MODELS_DIR, REPORTS_DIR.
Run:
    python patches.py [--set "PATCH_SIZES=[7]" --set CNN_PADDING=valid ...]
"""

import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import config
from landcover import cli, evaluation, experiment, labels, models, plots, rasters, resume, sampling, splits
from landcover import runs as runs_

log = logging.getLogger("patches")


def check_config() -> None:
    if not config.PATCH_SIZES or any(p < 1 or p % 2 == 0 for p in config.PATCH_SIZES):
        raise ValueError(f"PATCH_SIZES={config.PATCH_SIZES}: expected odd patch sides in pixels")
    if config.CNN_PADDING not in ("same", "valid"):
        raise ValueError(f"CNN_PADDING={config.CNN_PADDING!r}: expected 'same' or 'valid'")
    if set(config.SPLITS) - set(splits.SPLITS) or not config.SPLITS:
        raise ValueError(f"SPLITS={config.SPLITS}: expected some of {splits.SPLITS}")


def run() -> None:
    check_config()
    prep, reports = Path(config.PREP_DIR), Path(config.REPORTS_DIR) / "patches"
    scene, _, _ = rasters.read_scene_filled(prep / "scene.tif")  # windows near nodata see their neighbourhood
    band_names = rasters.band_names(prep / "scene.tif")
    all_points = sampling.read_points(prep / f"points.{config.POINTS_FORMAT}")
    all_rows, all_cols = all_points["row"].to_numpy(), all_points["col"].to_numpy()
    points, _ = sampling.drop_rare_classes(all_points, config.PATCH_MIN_SAMPLES)
    kept = np.flatnonzero(all_points["point_id"].isin(points["point_id"]).to_numpy())
    classes = [c for c in labels.read_classes(prep / "classes.json") if c.code in set(points["label"])]
    codes = np.array([c.code for c in classes])
    y = np.searchsorted(codes, points["label"].to_numpy())
    second = points["eval_label"].to_numpy() if "eval_label" in points else None  # EVAL_LABELS_PATH at the points
    results, per_class, predictions = [], [], []
    finished = resume.FinishedRuns(reports, cli.fingerprint(CONFIG_KEYS, inputs()))
    for protocol in config.SPLITS:
        histories = {}
        for run_ in range(config.REPEATS):
            # the split of all sampled points, then the kept ones: the same sides as test_segment.py's
            side = splits.run_split(all_rows, all_cols, protocol, run_, config.REPEATS, config.VAL_FRACTION,
                                    config.TEST_FRACTION, config.BLOCK_SIZE, config.SEED)[kept]
            pool = np.flatnonzero(side == 0)
            train = splits.training_subset(pool, config.CNN_TRAIN_SIZE or pool.size,
                                           splits.run_rng(config.SEED, "subset", run_))
            val, test = np.flatnonzero(side == 1), np.flatnonzero(side == 2)
            seed = splits.run_seed(config.SEED, run_)
            for p in config.PATCH_SIZES:
                key = f"CNN {p}x{p}, {protocol} split, run {run_ + 1}"
                record = finished.get(key)
                if record is None:
                    record = train_run(scene, band_names, points, classes, codes, y, second, protocol, run_, seed,
                                       p, train, val, test)
                    finished.put(key, record)
                results.append(record["row"])
                predictions.append(record["predictions"])
                if run_ == 0:
                    per_class.append(record["per_class"])
                    plots.confusion_figure(reports / f"confusion_{protocol}_{p}.png", y[test], record["pred"],
                                           np.arange(len(codes)), [c.name for c in classes],
                                           f"CNN {p}x{p}, {protocol} split (test, run 1)")
                    histories[f"{p}x{p}"] = record["history"]
        plots.training_curves(reports / f"curves_{protocol}.png", histories,
                              f"Patch CNN training, {protocol} split (run 1)")
    finished.summary()

    per_run = pd.DataFrame(results)
    evaluation.write_table(per_run, reports / "runs", "Patch CNN: every run")
    table = runs_.summarise(per_run, ["experiment", "patch", "input_values", "split"])
    evaluation.write_table(table, reports / "results", f"Patch CNN: accuracy by patch size (mean of {config.REPEATS} "
                           "runs)")
    evaluation.write_table(pd.concat(per_class, ignore_index=True), reports / "per_class",
                           "Patch CNN per-class scores (run 1)")
    runs_.write_predictions(predictions, reports / "predictions.parquet")
    for _, row in runs_.capped(per_run).iterrows():
        log.warning("CNN %s, %s split, run %d: training ended at the epoch cap (CNN_EPOCHS=%d), it may not have "
                    "converged", row["patch"], row["split"], row["run"] + 1, config.CNN_EPOCHS)
    cli.save_config(reports, "patches")
    print(table.drop(columns=["experiment", "model"]).to_markdown(index=False, floatfmt=".3f"))


def train_run(scene: np.ndarray, band_names: list[str], points: pd.DataFrame, classes, codes: np.ndarray,
              y: np.ndarray, second: np.ndarray | None, protocol: str, run_: int, seed: int, p: int,
              train: np.ndarray, val: np.ndarray, test: np.ndarray) -> dict:
    """Train and score one CNN (the first run's model saved); its ``runs.csv`` row, test predictions,
    and (first run) per-class table and history, as kept by :class:`landcover.resume.FinishedRuns`.

    Args:
        scene: (bands, rows, cols) raw values; y: (N,) class indices into ``codes``; second: the second
            reference's code at each point, or None.
    """
    run_cnn = experiment.run_patch_cnn(
        scene, points["row"].to_numpy(), points["col"].to_numpy(), y, train, val, test, len(codes), p,
        padding=config.CNN_PADDING, seed=seed, learning_rate=config.CNN_LEARNING_RATE, epochs=config.CNN_EPOCHS,
        batch_size=config.CNN_BATCH_SIZE, patience=config.CNN_PATIENCE, deterministic=config.TF_DETERMINISTIC,
        init=config.CNN_INIT, precision=config.PRECISION, desc=f"CNN {p}x{p} {protocol} run {run_ + 1}",
        min_epochs=config.CNN_MIN_EPOCHS)
    res = run_cnn.result
    name = f"patch_cnn_{protocol}_{p}"
    if run_ == 0:  # the model kept for maps and transfer: the first run's (file names as before)
        save_run(name, run_cnn, p, band_names, classes, protocol, seed, points, train, val, test)
    log.info("CNN %dx%d, %s split, run %d: validation %.3f, test %.3f (%d epochs)", p, p, protocol, run_ + 1,
             res.val["accuracy"], res.test["accuracy"], len(res.history["loss"]))
    row = {"experiment": "patch", "patch": f"{p}x{p}", "input_values": ", ".join(band_names),
           "split": protocol, "run": run_, "seed": seed,
           "val_accuracy": res.val["accuracy"], "test_accuracy": res.test["accuracy"],
           "kappa": res.test["kappa"], "macro_f1": res.test["macro_f1"],
           **evaluation.against_second_reference(None if second is None else second[test], codes[res.test_pred],
                                                 codes[y[test]]),
           **runs_.epochs(res.history, config.CNN_EPOCHS),
           # a file name in MODELS_DIR, not a path of this machine; only the first run's is kept
           "model": f"{name}.keras" if run_ == 0 else ""}
    first = run_ == 0
    return {"row": row, "pred": res.test_pred, "history": res.history if first else None,
            "predictions": runs_.predictions("patch", f"CNN {p}x{p}", protocol, p, run_, points, test,
                                             codes[y[test]], codes[res.test_pred]),
            "per_class": evaluation.per_class(y[test], res.test_pred, np.arange(len(codes)),
                                              [c.name for c in classes]).assign(code=codes, patch=p, split=protocol)
            if first else None}


def save_run(name: str, run_cnn, p: int, band_names: list[str], classes, protocol: str, seed: int,
             points: pd.DataFrame, train: np.ndarray, val: np.ndarray, test: np.ndarray) -> None:
    """Save a trained model with its metadata and each point's side in its split."""
    res = run_cnn.result
    models_dir = Path(config.MODELS_DIR)
    metadata = {
        "kind": "patch_cnn", "patch_size": p, "bands": band_names, "padding": config.CNN_PADDING,
        "mean": run_cnn.mean.tolist(), "std": run_cnn.std.tolist(),
        "classes": labels.legend.classes_to_json(classes), "split": protocol, "seed": seed, "run": 0,
        "train_points": int(train.size), "scores": {"val": res.val, "test": res.test},
        "config": cli.effective_config(),
    }
    models.save_model(models_dir / f"{name}.keras", run_cnn.model, metadata)
    sampling.write_model_sides(models_dir / f"{name}.keras", points, train, val, test)


CONFIG_KEYS = ("PREP_DIR", "POINTS_FORMAT", "PATCH_SIZES", "PATCH_MIN_SAMPLES", "CNN_PADDING", "CNN_INIT",
               "CNN_LEARNING_RATE", "CNN_EPOCHS", "CNN_BATCH_SIZE", "CNN_PATIENCE", "CNN_MIN_EPOCHS", "CNN_TRAIN_SIZE",
               "SPLITS",
               "REPEATS", "PRECISION", "VAL_FRACTION",
               "TEST_FRACTION", "BLOCK_SIZE", "TF_DETERMINISTIC", "SEED", "MODELS_DIR", "REPORTS_DIR")


def inputs() -> list[Path]:
    prep = Path(config.PREP_DIR)
    return [prep / "scene.tif", prep / f"points.{config.POINTS_FORMAT}", prep / "classes.json"]


def main(argv: list[str] | None = None) -> int:
    return cli.run_stage(run, __doc__, argv,
                         cli.Reuse(CONFIG_KEYS, inputs, lambda: Path(config.REPORTS_DIR) / "patches"))


if __name__ == "__main__":
    sys.exit(main())
