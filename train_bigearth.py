"""Stage 7: train the study's CNN on BigEarthNet, then transfer it to the AOI.

Trains the study's BigEarthNet CNN (120 x 120 inputs: Conv 32-32, pool,
dropout; Conv 64-64, pool, dropout; Conv 128-128, pool; Dense 200; softmax, or
sigmoid for BIGEARTH_LABELS="multi"; Adam 5e-4; inputs rescaled 1/10000;
early stopping, best epoch kept) on the shards of read_bigearth.py, and scores
it on held-out BigEarthNet patches. Then, on the held-out test points of the
best patch CNN (so every row of the table is scored on the same AOI pixels;
without a patch sweep, on a random split of the AOI's points of its own, and
the table has no patch-CNN row):
  (a) the study's way: the BigEarthNet model applied to the 120 x 120 window
      around each point, scored against the CORINE label;
  (b) transfer learning: its convolutional layers frozen, a new head trained
      on AOI windows (TRANSFER_TRAIN_SIZE training points of the same split),
      optionally fine-tuned with the convolutions unfrozen
      (TRANSFER_FINE_TUNE_EPOCHS).

Inputs: BIGEARTH_DIR (shards), PREP_DIR (scene.tif, points, classes.json),
    REPORTS_DIR/patches/results.csv and the best patch model's _points.parquet
    (optional: without them transfer uses VAL_FRACTION / TEST_FRACTION of its own)
Outputs:
    MODELS_DIR/bigearth_cnn.keras (+ .json), MODELS_DIR/bigearth_transfer.keras
        (+ .json, _points.parquet): whole-scene maps with test_patches.py
        (PREDICT_MODEL=...; 120 x 120 windows are slow on a CPU)
    REPORTS_DIR/bigearth/results.md, results.csv  BigEarthNet held-out score;
        AOI transfer (a) and (b) beside the best patch CNN
    REPORTS_DIR/bigearth/predictions.parquet  (a) and (b) at each test point of
        each run (REPEATS: the best patch CNN's runs, with their splits; the
        BigEarthNet CNN is trained once, the head (b) once per run), paired
        with the best patch CNN in reports/comparisons.csv
    REPORTS_DIR/bigearth/bigearth_per_class.csv, curves.png, train_bigearth_config.json
    REPORTS_DIR/bigearth/.runs/  each finished run as soon as it finishes: a killed stage, run again
        with the same settings, resumes at its first unfinished run (landcover.resume)
Config keys: BIGEARTH_DIR, BE_*, TRANSFER_*, PREP_DIR, POINTS_FORMAT, REPORTS_DIR,
    MODELS_DIR, TF_DETERMINISTIC, PRECISION, SEED, REPEATS, VAL_FRACTION, TEST_FRACTION, BLOCK_SIZE.
Run:
    python train_bigearth.py
"""

import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import config
from landcover import (bigearth, cli, evaluation, labels, legend, models, plots, rasters, resume, sampling, splits,
                       transfer)
from landcover import runs as runs_

log = logging.getLogger("train_bigearth")
# The transfer models' names in predictions.parquet and the comparisons.
TRANSFER_A, TRANSFER_B = "Transfer (a): BigEarthNet CNN as it is", "Transfer (b): new head"


def best_patch_model() -> tuple[pd.Series, Path] | tuple[None, None]:
    """The patch sweep's best row (validation accuracy) and its model path; (None, None) without a sweep."""
    path = Path(config.REPORTS_DIR) / "patches" / "results.csv"
    if not path.exists():
        return None, None
    table = pd.read_csv(path)
    best = table.loc[table["val_accuracy"].idxmax()]
    return best, Path(config.MODELS_DIR) / Path(str(best["model"])).name


def own_split(points: pd.DataFrame) -> np.ndarray:
    """A random split of the AOI's points (VAL_FRACTION, TEST_FRACTION, SEED) when there is no patch sweep."""
    rng = np.random.default_rng(config.SEED)
    side = splits.split_points(points["row"].to_numpy(), points["col"].to_numpy(), "random", config.VAL_FRACTION,
                               config.TEST_FRACTION, config.BLOCK_SIZE, rng)
    return np.array(["train", "val", "test"], dtype=object)[side]


def run_sides(points: pd.DataFrame, first: np.ndarray, split: str, best_path: Path | None) -> list[np.ndarray]:
    """Each run's side of every point: the best patch CNN's first run (``first``), then the
    same split protocol's further runs as patches.py drew them (REPEATS), on the points its
    classes kept; one run without a patch sweep."""
    if best_path is None:
        return [first]
    kept = points["label"].isin([c["code"] for c in models.load_metadata(best_path)["classes"]]).to_numpy()
    names = np.array(["train", "val", "test"], dtype=object)
    sides = [first]
    for run_ in range(1, config.REPEATS):
        side = splits.run_split(points["row"].to_numpy(), points["col"].to_numpy(), split, run_, config.REPEATS,
                                config.VAL_FRACTION, config.TEST_FRACTION, config.BLOCK_SIZE, config.SEED)
        sides.append(np.where(kept, names[side], "unused"))
    return sides


def run() -> None:
    prep, reports, models_dir = Path(config.PREP_DIR), Path(config.REPORTS_DIR) / "bigearth", Path(config.MODELS_DIR)
    manifest = bigearth.read_manifest(config.BIGEARTH_DIR)
    names = rasters.band_names(prep / "scene.tif")
    if manifest["bands"] != names:
        raise ValueError(f"{config.BIGEARTH_DIR}: shards hold bands {manifest['bands']} but the scene has {names}; "
                         "run read_bigearth.py with the scene's BANDS")
    best, best_path = best_patch_model()
    if best is None:
        log.info("no patch sweep (reports/patches/results.csv): transfer is scored on a random split of the AOI's "
                 "points of its own, without the comparison with the best patch CNN")

    finished = resume.FinishedRuns(reports, cli.fingerprint(CONFIG_KEYS, inputs()))
    be_classes = [legend.CLC_BY_CODE[c] for c in manifest["classes"]]
    base_meta = {"patch_size": 120, "bands": names, "padding": "same", "mean": [0.0] * len(names),
                 "std": [1.0] * len(names), "seed": config.SEED, "config": cli.effective_config()}

    # 1. BigEarthNet (a finished training is reused from its saved model)
    be_path = models_dir / "bigearth_cnn.keras"
    be = finished.get("BigEarthNet CNN") if be_path.exists() else None
    if be is None:
        trained = transfer.train_bigearth(
            config.BIGEARTH_DIR, manifest, seed=config.SEED, val_fraction=config.BE_VAL_FRACTION,
            test_fraction=config.BE_TEST_FRACTION, learning_rate=config.BE_LEARNING_RATE, epochs=config.BE_EPOCHS,
            batch_size=config.BE_BATCH_SIZE, patience=config.BE_PATIENCE, deterministic=config.TF_DETERMINISTIC,
            precision=config.PRECISION)
        models.save_model(be_path, trained.model, {
            **base_meta, "kind": "bigearth_cnn", "classes": legend.classes_to_json(be_classes),
            "label_policy": manifest["policy"], "split": "bigearth", "scores": {"bigearth_test": trained.test_scores}})
        be = {"history": trained.history, "test_scores": trained.test_scores, "per_class": trained.per_class}
        finished.put("BigEarthNet CNN", be)
        be_model = trained.model
    else:
        be_model, _ = models.load_model(be_path)

    # 2. transfer to the AOI, on the best patch CNN's held-out points
    scene, _, _ = rasters.read_scene_filled(prep / "scene.tif")  # windows near nodata see their neighbourhood
    points = sampling.read_points(prep / f"points.{config.POINTS_FORMAT}")
    if best is None:
        side, split = own_split(points), "random"
    else:
        side, split = sampling.model_sides(points, best_path), str(best["split"])
        if side is None:
            raise FileNotFoundError(f"{best_path.stem}_points.parquet is missing beside {best_path}; "
                                    "run patches.py again")
    scene_codes = np.array([c.code for c in labels.read_classes(prep / "classes.json")])
    results, frames = [], []
    transfer_path = models_dir / "bigearth_transfer.keras"
    for run_, side_run in enumerate(run_sides(points, side, split, best_path)):
        key = f"transfer to the AOI, run {run_ + 1}"
        tr_run = finished.get(key) if run_ > 0 or transfer_path.exists() else None
        if tr_run is None:
            tr_run = transfer.transfer_to_aoi(
                be_model, np.asarray(manifest["classes"]), scene, points, side_run, scene_codes,
                seed=splits.run_seed(config.SEED, run_), train_size=config.TRANSFER_TRAIN_SIZE,
                epochs=config.TRANSFER_EPOCHS, fine_tune_epochs=config.TRANSFER_FINE_TUNE_EPOCHS,
                deterministic=config.TF_DETERMINISTIC)
            if run_ == 0:  # the first run's head is the model kept
                models.save_model(transfer_path, tr_run.model_b, {
                    **base_meta, "kind": "bigearth_transfer", "classes": legend.classes_to_json(
                        [legend.CLC_BY_CODE[c] for c in tr_run.classes_b]), "split": split,
                    "scores": {"test": tr_run.score_b}})
                sampling.write_points(pd.DataFrame({"point_id": points["point_id"], "side": side}),
                                      models_dir / "bigearth_transfer_points.parquet")
            tr_run = dataclasses.replace(tr_run, model_b=None)
            finished.put(key, tr_run)
            log.info("transfer, run %d: (a) %.3f, (b) %.3f", run_ + 1, tr_run.score_a["accuracy"],
                     tr_run.score_b["accuracy"])
        truth = points["label"].to_numpy()[tr_run.test]
        frames += [runs_.predictions("transfer", name, split, "", run_, points, tr_run.test, truth, pred)
                   for name, pred in ((TRANSFER_A, tr_run.pred_a), (TRANSFER_B, tr_run.pred_b))]
        results.append(tr_run)
    finished.summary()
    tr = results[0]
    runs_.write_predictions(frames, reports / "predictions.parquet")

    def mean(which: str) -> dict:
        return {k: float(np.mean([getattr(r, which)[k] for r in results])) for k in results[0].score_a}

    split_name = f"AOI held-out test points ({split} split{'' if best is not None else ' of its own'})"
    rows_ = [
        {"model": "BigEarthNet CNN", "evaluated_on": "BigEarthNet held-out patches", "n": be["test_scores"]["patches"],
         **{k: v for k, v in be["test_scores"].items() if k != "patches"}, "n_runs": 1},
        {"model": "(a) BigEarthNet CNN applied to 120x120 AOI windows", "evaluated_on": split_name,
         "n": tr.test.size, **mean("score_a"), "n_runs": len(results)},
        {"model": tr.label_b, "evaluated_on": split_name, "n": tr.test.size, **mean("score_b"), "n_runs": len(results)},
    ]
    if best is not None:
        rows_.append({"model": f"best patch CNN ({best['patch']})", "evaluated_on": split_name, "n": tr.test.size,
                      "accuracy": best["test_accuracy"], "kappa": best["kappa"], "macro_f1": best["macro_f1"],
                      "n_runs": best.get("n_runs", 1)})
    table = pd.DataFrame(rows_)
    evaluation.write_table(table, reports / "results", "BigEarthNet and transfer to the AOI")
    evaluation.write_table(be["per_class"], reports / "bigearth_per_class", "BigEarthNet CNN per class (held-out patches)")
    plots.training_curves(reports / "curves.png", {"BigEarthNet CNN": be["history"], "transfer head (b)": tr.history_b},
                          "BigEarthNet CNN and transfer head")
    cli.save_config(reports, "train_bigearth")
    print(table.to_markdown(index=False, floatfmt=".3f"))


CONFIG_KEYS = ("BIGEARTH_DIR", "BE_LEARNING_RATE", "BE_EPOCHS", "BE_BATCH_SIZE", "BE_PATIENCE", "BE_VAL_FRACTION",
               "BE_TEST_FRACTION", "TRANSFER_TRAIN_SIZE", "TRANSFER_EPOCHS", "TRANSFER_FINE_TUNE_EPOCHS", "PREP_DIR",
               "POINTS_FORMAT", "REPORTS_DIR", "MODELS_DIR", "TF_DETERMINISTIC", "SEED", "VAL_FRACTION",
               "TEST_FRACTION", "PRECISION", "REPEATS", "BLOCK_SIZE")


def inputs() -> list[Path]:
    prep = Path(config.PREP_DIR)
    files = [Path(config.BIGEARTH_DIR) / "manifest.json", prep / "scene.tif", prep / "classes.json",
             prep / f"points.{config.POINTS_FORMAT}", Path(config.REPORTS_DIR) / "patches" / "results.csv"]
    try:
        _, best = best_patch_model()
        if best is not None:
            files += [best, best.with_name(best.stem + "_points.parquet")]
    except (ValueError, KeyError):
        pass
    return [f for f in files if f.exists() or f.name != "results.csv"]


def main(argv: list[str] | None = None) -> int:
    return cli.run_stage(run, __doc__, argv,
                         cli.Reuse(CONFIG_KEYS, inputs, lambda: Path(config.REPORTS_DIR) / "bigearth"))


if __name__ == "__main__":
    sys.exit(main())
