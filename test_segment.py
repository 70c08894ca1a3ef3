"""Stage 3: the per-pixel experiment: random forest vs MLP, with and without the segment type.

Not a test suite: this is the study's first experiment. Classifiers on the
sampled points:
    Random forest  bands + indices (RF_TREES trees, seeded)      the baseline
    Random forest (one-hot, the study's)  the same forest fitted on the one-hot
                   label matrix and scored by exact match of the predicted row,
                   as the study's code did (RF_TARGETS: which forests run)
    MLP-Pixel      the study's MLP on bands + indices
    MLP            the study's MLP on bands + indices + segment type
under each split protocol in SPLITS ("random": pixels drawn at random, the
study's protocol; "spatial": whole BLOCK_SIZE blocks held out) and for each
training-set size in TRAIN_SIZES. Features are standardised on the training
part only.

Inputs:
    PREP_DIR/points.parquet (with segment_type when scene_prep ran with
    SEGMENT=True) or SEG_DIR/points.parquet (from segment.py); PREP_DIR/classes.json
Outputs (REPORTS_DIR/segments/):
    results.md, results.csv   classifier, split, training-set size, validation
                              and test accuracy, test kappa and macro F1; with a
                              second reference (EVAL_LABELS_PATH) also the test
                              accuracy against it and the ground truth's own
    per_class.csv             per-class precision/recall/F1 at the largest size
    confusion_<classifier>_<split>.png, curves_<split>.png
    test_segment_config.json  the effective configuration
Config keys: PREP_DIR, SEG_DIR, POINTS_FORMAT, BANDS, INDICES, SPLITS,
    VAL_FRACTION, TEST_FRACTION, BLOCK_SIZE, TRAIN_SIZES, RF_TREES, RF_TARGETS,
    MLP_LEARNING_RATE, MLP_DECAY, MLP_EPOCHS, MLP_BATCH_SIZE, MLP_PATIENCE,
    TF_DETERMINISTIC, SEED, REPORTS_DIR.
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
from landcover import cli, evaluation, experiment, features, labels, plots, sampling, splits

log = logging.getLogger("test_segment")

# (name in the tables, model kind, uses the segment type); the forests come from RF_TARGETS
FORESTS = {"labels": ("Random forest", "rf"), "onehot": ("Random forest (one-hot, the study's)", "rf_onehot")}
NETWORKS = [("MLP-Pixel", "mlp", False), ("MLP", "mlp", True)]


def classifiers() -> list[tuple[str, str, bool]]:
    """The classifiers run: the forests of RF_TARGETS, then the two MLPs."""
    return [(*FORESTS[t], False) for t in config.RF_TARGETS] + NETWORKS


def check_config() -> None:
    if not config.TRAIN_SIZES or min(config.TRAIN_SIZES) < 1:
        raise ValueError(f"TRAIN_SIZES={config.TRAIN_SIZES}: expected positive training-set sizes")
    unknown = set(config.SPLITS) - set(splits.SPLITS)
    if unknown or not config.SPLITS:
        raise ValueError(f"SPLITS={config.SPLITS}: expected some of {splits.SPLITS}")
    if not set(config.RF_TARGETS) <= set(FORESTS) or len(set(config.RF_TARGETS)) != len(config.RF_TARGETS):
        raise ValueError(f"RF_TARGETS={config.RF_TARGETS}: expected some of {list(FORESTS)}, once each")


def run() -> None:
    check_config()
    prep, out = Path(config.PREP_DIR), Path(config.REPORTS_DIR) / "segments"
    points = sampling.read_points_with_segments(prep / f"points.{config.POINTS_FORMAT}",
                                                Path(config.SEG_DIR) / f"points.{config.POINTS_FORMAT}")
    classes = labels.read_classes(prep / "classes.json")
    codes = np.array([c.code for c in classes])
    names = [c.name for c in classes]
    y = np.searchsorted(codes, points["label"].to_numpy())
    x_pixel, _ = features.pixel_features(points, config.BANDS, config.INDICES)
    x_segment, _ = features.pixel_features(points, config.BANDS, config.INDICES, segment_type=True)
    rows, cols = points["row"].to_numpy(), points["col"].to_numpy()
    second = points["eval_label"].to_numpy() if "eval_label" in points else None  # EVAL_LABELS_PATH at the points
    rng = np.random.default_rng(config.SEED)

    results, per_class, figures = [], [], {}
    largest = max(config.TRAIN_SIZES)
    for protocol in config.SPLITS:
        side = splits.split_points(rows, cols, protocol, config.VAL_FRACTION, config.TEST_FRACTION,
                                   config.BLOCK_SIZE, rng)
        val, test = np.flatnonzero(side == 1), np.flatnonzero(side == 2)
        histories = {}
        for size in sorted(config.TRAIN_SIZES):
            train = splits.training_subset(np.flatnonzero(side == 0), size, rng)
            for name, kind, with_segment in classifiers():
                res = experiment.run_pixel_classifier(
                    kind, x_segment if with_segment else x_pixel, y, train, val, test, len(codes),
                    seed=config.SEED, rf_trees=config.RF_TREES, learning_rate=config.MLP_LEARNING_RATE,
                    epochs=config.MLP_EPOCHS, batch_size=config.MLP_BATCH_SIZE, patience=config.MLP_PATIENCE,
                    deterministic=config.TF_DETERMINISTIC, decay=config.MLP_DECAY,
                    desc=f"{name} {protocol} {train.size}")
                predicted = np.where(res.test_pred >= 0, codes[np.maximum(res.test_pred, 0)], 0)
                results.append({"classifier": name, "split": protocol, "train_size": train.size,
                                "val_accuracy": res.val["accuracy"], "test_accuracy": res.test["accuracy"],
                                "kappa": res.test["kappa"], "macro_f1": res.test["macro_f1"],
                                **evaluation.against_second_reference(
                                    None if second is None else second[test], predicted, codes[y[test]])})
                log.info("%s, %s split, %d training points: test accuracy %.3f", name, protocol, train.size,
                         res.test["accuracy"])
                if size == largest:
                    table = evaluation.per_class(y[test], res.test_pred, np.arange(len(codes)), names)
                    per_class.append(table.assign(code=codes, classifier=name, split=protocol))
                    figures[(name, protocol)] = (y[test], res.test_pred)
                    if res.history:
                        histories[name] = res.history
        if histories:
            plots.training_curves(out / f"curves_{protocol}.png", histories,
                                  f"MLP training, {protocol} split, {largest} training points")

    table = pd.DataFrame(results)
    evaluation.write_table(table, out / "results", "Per-pixel experiment: random forest vs MLP, with and without segment type")
    evaluation.write_table(pd.concat(per_class, ignore_index=True), out / "per_class", "Per-class scores")
    for (name, protocol), (truth, pred) in figures.items():
        slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")  # "Random forest (one-hot, ...)" too
        plots.confusion_figure(out / f"confusion_{slug}_{protocol}.png", truth, pred, np.arange(len(codes)), names,
                               f"{name}, {protocol} split (test)")
    cli.save_config(out, "test_segment")
    print(table.to_markdown(index=False, floatfmt=".3f"))


CONFIG_KEYS = ("PREP_DIR", "SEG_DIR", "POINTS_FORMAT", "BANDS", "INDICES", "SPLITS", "VAL_FRACTION", "TEST_FRACTION",
               "BLOCK_SIZE", "TRAIN_SIZES", "RF_TREES", "RF_TARGETS", "MLP_LEARNING_RATE", "MLP_DECAY", "MLP_EPOCHS",
               "MLP_BATCH_SIZE", "MLP_PATIENCE", "TF_DETERMINISTIC", "SEED", "REPORTS_DIR")


def inputs() -> list[Path]:
    prep, seg = Path(config.PREP_DIR), Path(config.SEG_DIR)
    return [prep / f"points.{config.POINTS_FORMAT}", prep / "classes.json", seg / f"points.{config.POINTS_FORMAT}"]


def main(argv: list[str] | None = None) -> int:
    return cli.run_stage(run, __doc__, argv,
                         cli.Reuse(CONFIG_KEYS, inputs, lambda: Path(config.REPORTS_DIR) / "segments"))


if __name__ == "__main__":
    sys.exit(main())
