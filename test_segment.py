"""Stage 3: the per-pixel experiment: random forest vs MLP, with and without the segment type.

Not a test suite: this is the study's first experiment. Classifiers on the
sampled points:
    Random forest  bands + indices (RF_TREES trees, seeded)      the baseline
    Random forest (one-hot, the study's)  the same forest fitted on the one-hot
                   label matrix and scored by exact match of the predicted row,
                   as the study's code did (RF_TARGETS: which forests run)
    MLP-Pixel      the study's MLP on bands + indices
    MLP            the study's MLP on bands + indices + segment type
    MLP (segments: scale s, min size m)  the MLP with the segment type of each
                   further SEG_SCALES entry, at the largest training size
under each split protocol in SPLITS ("random": pixels drawn at random, the
study's protocol; "spatial": whole BLOCK_SIZE blocks held out, k-fold over the
repeats) and for each training-set size in TRAIN_SIZES, REPEATS times (a new
split and model seed each; splits.run_split). Features are standardised on the
training part only.

Inputs:
    PREP_DIR/points.parquet (with the segment types when scene_prep ran with
    SEGMENT=True) or SEG_DIR/points.parquet (from segment.py); PREP_DIR/classes.json;
    PREP_DIR/scene.tif: a segmentation (SEG_SCALE or a SEG_SCALES entry) that neither
    table has is made here, and the log says which
Outputs (REPORTS_DIR/segments/):
    runs.md, runs.csv         one row per classifier, split, training-set size and
                              run: seed, validation and test accuracy, kappa, macro
                              F1, epochs trained, whether the epoch cap ended it;
                              with a second reference (EVAL_LABELS_PATH) also the
                              test accuracy against it and the ground truth's own
    results.md, results.csv   the same per classifier, split and size: means over
                              the runs, test_accuracy_sd, n_runs, epoch_cap_hits
    predictions.parquet       every run's test predictions at the largest size
                              (for report.py's paired comparisons)
    per_class.csv             per-class precision/recall/F1 at the largest size (run 1)
    confusion_<classifier>_<split>.png, curves_<split>.png
    test_segment_config.json  the effective configuration
    .runs/                    each finished run as soon as it finishes: a killed stage, run
                              again with the same settings, resumes at its first unfinished run
Outputs (MODELS_DIR/): the first run of the random forest and of MLP-Pixel at the
    largest size, per split, for whole-scene maps (test_patches.py with PIXEL_MAPS):
    pixel_random_forest_<split>.joblib, pixel_mlp_<split>.keras, each with a .json
    of metadata (bands, indices, feature standardisation, classes) and
    _points.parquet (each point's side in the split)
Config keys: PREP_DIR, SEG_DIR, POINTS_FORMAT, BANDS, INDICES, SPLITS,
    VAL_FRACTION, TEST_FRACTION, BLOCK_SIZE, TRAIN_SIZES, REPEATS, SEG_SCALE,
    SEG_MIN_SIZE, SEG_SCALES (and SEG_SIGMA, SEG_INPUT, SEG_TYPE_BAND, SEG_PERCENTILES,
    SEG_MAX_MEMORY_GB for a segmentation made here), RF_TREES, RF_TARGETS, MLP_LEARNING_RATE, MLP_DECAY,
    MLP_EPOCHS, MLP_BATCH_SIZE, MLP_PATIENCE, TF_DETERMINISTIC, PRECISION, SEED,
    REPORTS_DIR, MODELS_DIR.
Run:
    python test_segment.py [--set "TRAIN_SIZES=[1000]" ...]
"""

import logging
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import config
from landcover import (cli, evaluation, experiment, features, labels, pixel_maps, plots, rasters, resume,
                       sampling, segmentation, splits)
from landcover import runs as runs_

log = logging.getLogger("test_segment")

# (name in the tables, model kind, uses the segment type); the forests come from RF_TARGETS
FORESTS = {"labels": ("Random forest", "rf"), "onehot": ("Random forest (one-hot, the study's)", "rf_onehot")}
NETWORKS = [("MLP-Pixel", "mlp", False), ("MLP", "mlp", True)]


# the classifiers whose first run (largest size) is saved for whole-scene maps: table name -> kind
PIXEL_MAP_MODELS = {"Random forest": "rf", "MLP-Pixel": "mlp"}


def save_for_maps(kind: str, res, protocol: str, seed: int, points: pd.DataFrame, classes, train: np.ndarray,
                  val: np.ndarray, test: np.ndarray) -> None:
    """Save a fitted per-pixel classifier with its features and each point's side in its split."""
    path = pixel_maps.model_path(Path(config.MODELS_DIR), kind, protocol)
    pixel_maps.save(path, kind, res.model, res.scaler, list(config.BANDS), list(config.INDICES),
                    labels.legend.classes_to_json(classes),
                    {"split": protocol, "seed": seed, "run": 0, "train_points": int(train.size),
                     "scores": {"val": res.val, "test": res.test}, "config": cli.effective_config()})
    sampling.write_model_sides(path, points, train, val, test)


def run_record(res, name: str, protocol: str, size: int, run_: int, seed: int, points: pd.DataFrame,
               codes: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, second: np.ndarray | None,
               scale: tuple, keep: bool) -> dict:
    """One classifier run as :class:`landcover.resume.FinishedRuns` keeps it: its ``runs.csv`` row, its test
    predictions (class indices, -1 for none) and history, and with ``keep`` (the largest training size)
    its rows of ``predictions.parquet``."""
    predicted = np.where(res.test_pred >= 0, codes[np.maximum(res.test_pred, 0)], 0)
    row = {"experiment": "pixel", "classifier": name, "split": protocol, "train_size": size,
           "train_points": train.size, "seg_scale": scale[0], "seg_min_size": scale[1], "run": run_, "seed": seed,
           "val_accuracy": res.val["accuracy"], "test_accuracy": res.test["accuracy"],
           "kappa": res.test["kappa"], "macro_f1": res.test["macro_f1"],
           **evaluation.against_second_reference(None if second is None else second[test], predicted, codes[y[test]]),
           **runs_.epochs(res.history, config.MLP_EPOCHS)}
    log.info("%s, %s split, %d training points, run %d: test accuracy %.3f", name, protocol, train.size, run_ + 1,
             res.test["accuracy"])
    return {"row": row, "pred": res.test_pred, "history": res.history,
            "predictions": runs_.predictions("pixel", name, protocol, size, run_, points, test, codes[y[test]],
                                             predicted) if keep else None}


def classifiers() -> list[tuple[str, str, bool]]:
    """The classifiers run: the forests of RF_TARGETS, then the two MLPs."""
    return [(*FORESTS[t], False) for t in config.RF_TARGETS] + NETWORKS


def sweep_models() -> list[tuple[str, tuple[float, int]]]:
    """The SEG_SCALES sweep's extra MLPs (name, (scale, min size)), run at the largest training size;
    the entry of SEG_SCALE and SEG_MIN_SIZE is the "MLP" row itself."""
    own = (config.SEG_SCALE, config.SEG_MIN_SIZE)
    return [(f"MLP (segments: scale {scale:g}, min size {size})", (scale, size))
            for scale, size in segmentation.sweep_entries(config.SEG_SCALES, config.SEG_MIN_SIZE)
            if (scale, size) != own]


def segment_types(prep: Path, entries: list[tuple[float, int]]) -> pd.DataFrame:
    """The points with the segment type of SEG_SCALE and of every sweep entry: from scene_prep.py's table
    (SEGMENT=True) or segment.py's; what neither has is segmented here from PREP_DIR/scene.tif (logged),
    so that either workflow, and a changed SEG_SCALES, runs."""
    points = sampling.read_points_with_segments(
        prep / f"points.{config.POINTS_FORMAT}", Path(config.SEG_DIR) / f"points.{config.POINTS_FORMAT}",
        tuple(segmentation.sweep_column(*entry) for entry in entries))
    settings = segmentation.settings_from(config)
    lacking = segmentation.missing_entries(points, (settings["scale"], settings["min_size"]), entries)
    if lacking:
        log.info("no points table has the segment types at %s (segment.py, or scene_prep.py with SEGMENT=True, "
                 "writes them to SEG_DIR): segmenting %s here", ", ".join(f"scale {s:g}, min size {m}"
                                                                         for s, m in lacking), prep / "scene.tif")
        scene, profile = rasters.read_geotiff(prep / "scene.tif")
        points = segmentation.add_missing_types(scene, sampling.valid_mask(scene, profile["nodata"]),
                                                rasters.band_names(prep / "scene.tif"), points, lacking, settings)
    return points


def check_config() -> None:
    if not config.TRAIN_SIZES or min(config.TRAIN_SIZES) < 1:
        raise ValueError(f"TRAIN_SIZES={config.TRAIN_SIZES}: expected positive training-set sizes")
    unknown = set(config.SPLITS) - set(splits.SPLITS)
    if unknown or not config.SPLITS:
        raise ValueError(f"SPLITS={config.SPLITS}: expected some of {splits.SPLITS}")
    if not set(config.RF_TARGETS) <= set(FORESTS) or len(set(config.RF_TARGETS)) != len(config.RF_TARGETS):
        raise ValueError(f"RF_TARGETS={config.RF_TARGETS}: expected some of {list(FORESTS)}, once each")
    if int(config.REPEATS) < 1:
        raise ValueError(f"REPEATS={config.REPEATS}: expected at least 1")


def run() -> None:
    check_config()
    prep, out = Path(config.PREP_DIR), Path(config.REPORTS_DIR) / "segments"
    sweep = sweep_models()
    points = segment_types(prep, [entry for _, entry in sweep])
    classes = labels.read_classes(prep / "classes.json")
    codes = np.array([c.code for c in classes])
    names = [c.name for c in classes]
    y = np.searchsorted(codes, points["label"].to_numpy())
    x_pixel, _ = features.pixel_features(points, config.BANDS, config.INDICES)
    inputs_ = {False: x_pixel, True: features.pixel_features(points, config.BANDS, config.INDICES, segment_type=True)[0]}
    inputs_.update({entry: np.column_stack([x_pixel, points[segmentation.sweep_column(*entry)].to_numpy(np.float32)])
                    for _, entry in sweep})
    rows, cols = points["row"].to_numpy(), points["col"].to_numpy()
    second = points["eval_label"].to_numpy() if "eval_label" in points else None  # EVAL_LABELS_PATH at the points
    scale_of = {True: (config.SEG_SCALE, config.SEG_MIN_SIZE), **{entry: entry for _, entry in sweep}}

    runs, per_class, figures, predictions = [], [], {}, []
    largest = max(config.TRAIN_SIZES)
    finished = resume.FinishedRuns(out, cli.fingerprint(CONFIG_KEYS, inputs()))
    for protocol in config.SPLITS:
        histories = {}
        for run_ in range(config.REPEATS):
            side = splits.run_split(rows, cols, protocol, run_, config.REPEATS, config.VAL_FRACTION,
                                    config.TEST_FRACTION, config.BLOCK_SIZE, config.SEED)
            val, test = np.flatnonzero(side == 1), np.flatnonzero(side == 2)
            subset_rng, seed = splits.run_rng(config.SEED, "subset", run_), splits.run_seed(config.SEED, run_)
            for size in sorted(config.TRAIN_SIZES):
                train = splits.training_subset(np.flatnonzero(side == 0), size, subset_rng)
                models_ = classifiers() + ([(name, "mlp", entry) for name, entry in sweep] if size == largest else [])
                for name, kind, with_segment in models_:
                    key = f"{name}, {protocol} split, {size} training points, run {run_ + 1}"
                    record = finished.get(key)
                    if record is None:
                        res = experiment.run_pixel_classifier(
                            kind, inputs_[with_segment], y, train, val, test, len(codes), seed=seed,
                            rf_trees=config.RF_TREES, learning_rate=config.MLP_LEARNING_RATE,
                            epochs=config.MLP_EPOCHS, batch_size=config.MLP_BATCH_SIZE, patience=config.MLP_PATIENCE,
                            deterministic=config.TF_DETERMINISTIC, decay=config.MLP_DECAY,
                            precision=config.PRECISION, desc=f"{name} {protocol} {train.size} run {run_ + 1}")
                        if size == largest and run_ == 0 and name in PIXEL_MAP_MODELS:  # for test_patches.py's maps
                            save_for_maps(PIXEL_MAP_MODELS[name], res, protocol, seed, points, classes, train, val,
                                          test)
                        record = run_record(res, name, protocol, size, run_, seed, points, codes, y, train, test,
                                            second, scale_of.get(with_segment, (np.nan, np.nan)), keep=size == largest)
                        finished.put(key, record)
                    runs.append(record["row"])
                    if size != largest:
                        continue
                    predictions.append(record["predictions"])
                    if run_ == 0:
                        table = evaluation.per_class(y[test], record["pred"], np.arange(len(codes)), names)
                        per_class.append(table.assign(code=codes, classifier=name, split=protocol))
                        figures[(name, protocol)] = (y[test], record["pred"])
                        if record["history"]:
                            histories[name] = record["history"]
        if histories:
            plots.training_curves(out / f"curves_{protocol}.png", histories,
                                  f"MLP training, {protocol} split, {largest} training points (run 1)")
    finished.summary()

    per_run = pd.DataFrame(runs)
    evaluation.write_table(per_run, out / "runs", "Per-pixel experiment: every run")
    table = runs_.summarise(per_run, ["experiment", "classifier", "split", "train_size", "seg_scale", "seg_min_size"])
    evaluation.write_table(table, out / "results", "Per-pixel experiment: random forest vs MLP, with and without "
                           f"segment type (mean of {config.REPEATS} runs)")
    evaluation.write_table(pd.concat(per_class, ignore_index=True), out / "per_class", "Per-class scores (run 1)")
    runs_.write_predictions(predictions, out / "predictions.parquet")
    for (name, protocol), (truth, pred) in figures.items():
        slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")  # "Random forest (one-hot, ...)" too
        plots.confusion_figure(out / f"confusion_{slug}_{protocol}.png", truth, pred, np.arange(len(codes)), names,
                               f"{name}, {protocol} split (test, run 1)")
    for _, row in runs_.capped(per_run).iterrows():
        log.warning("%s, %s split, run %d: training ended at the epoch cap (MLP_EPOCHS=%d), it may not have "
                    "converged", row["classifier"], row["split"], row["run"] + 1, config.MLP_EPOCHS)
    cli.save_config(out, "test_segment")
    print(table.drop(columns=["experiment"]).to_markdown(index=False, floatfmt=".3f"))


CONFIG_KEYS = ("PREP_DIR", "SEG_DIR", "POINTS_FORMAT", "BANDS", "INDICES", "SPLITS", "VAL_FRACTION", "TEST_FRACTION",
               "BLOCK_SIZE", "TRAIN_SIZES", "REPEATS", "SEG_SCALE", "SEG_MIN_SIZE", "SEG_SCALES", "SEG_SIGMA",
               "SEG_INPUT", "SEG_TYPE_BAND", "SEG_PERCENTILES", "SEG_MAX_MEMORY_GB", "RF_TREES",
               "RF_TARGETS", "MLP_LEARNING_RATE", "MLP_DECAY", "MLP_EPOCHS", "MLP_BATCH_SIZE", "MLP_PATIENCE",
               "TF_DETERMINISTIC", "PRECISION", "SEED", "REPORTS_DIR", "MODELS_DIR")


def inputs() -> list[Path]:
    prep, seg = Path(config.PREP_DIR), Path(config.SEG_DIR)
    return [prep / f"points.{config.POINTS_FORMAT}", prep / "classes.json", prep / "scene.tif",
            seg / f"points.{config.POINTS_FORMAT}"]


def main(argv: list[str] | None = None) -> int:
    return cli.run_stage(run, __doc__, argv,
                         cli.Reuse(CONFIG_KEYS, inputs, lambda: Path(config.REPORTS_DIR) / "segments"))


if __name__ == "__main__":
    sys.exit(main())
