"""The study's report, regenerated from the stages' own CSV and JSON outputs.

Nothing in the report is typed by hand except the study's published figures
(``STUDY``), shown beside this run's numbers. Every other number, and every
sentence of the reading, is computed from the files the stages wrote.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio

from landcover import comparison, plots
from landcover.files import atomic_write

log = logging.getLogger(__name__)

# The study's published figures on its own scene (random pixel splits).
STUDY = {
    "pixel_test_250k": {"Random forest": 47.5, "MLP-Pixel": 56.9, "MLP": 58.3},
    "patch_val": {3: 58.3, 5: 59.7, 7: 60.3, 11: 49.1, 21: 35.8, 61: 41.3},
    "aoi_map": 66.0,
    "bigearth_below": 40.0,
}
PACKAGES = ["numpy", "rasterio", "geopandas", "scikit-image", "scikit-learn", "tensorflow-cpu", "keras", "pandas"]
STAGES = ["scene_prep", "segment", "test_segment", "patches", "test_patches", "read_bigearth", "train_bigearth"]


@dataclass
class Sources:
    """Where the stages wrote what the report reads."""

    prep: Path
    seg: Path
    reports: Path
    predictions: Path
    bigearth: Path
    block_size: int = 100  # BLOCK_SIZE: the blocks the comparisons' bootstrap resamples
    bootstrap: int = 2000  # BOOTSTRAP_SAMPLES
    seed: int = 42  # SEED


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _read_csv(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.exists() else None


def _read_json(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def _md(table: pd.DataFrame) -> str:
    return table.to_markdown(index=False)


def _versions() -> str:
    rows = []
    for name in PACKAGES:
        try:
            rows.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(rows)


# Settings that define the experiments, and the stage configuration that holds them.
SETTINGS = {"scene_prep": ["N_POINTS", "RESOLUTION"],
            "segment": ["SEG_SCALE", "SEG_SIGMA", "SEG_MIN_SIZE", "SEG_INPUT"],
            "test_segment": ["TRAIN_SIZES", "SPLITS", "BLOCK_SIZE", "INDICES", "MLP_EPOCHS", "TF_DETERMINISTIC"],
            "patches": ["PATCH_SIZES", "CNN_PADDING", "CNN_EPOCHS", "CNN_TRAIN_SIZE", "PATCH_MIN_SAMPLES"],
            "read_bigearth": ["BIGEARTH_LABELS", "BIGEARTH_CLASSES"],
            "train_bigearth": ["BE_EPOCHS", "TRANSFER_TRAIN_SIZE", "TRANSFER_FINE_TUNE_EPOCHS"]}


def _settings(src: Sources) -> str:
    """The experiment-defining settings, as each stage recorded them in its saved configuration."""
    folders = {"scene_prep": src.prep, "segment": src.seg, "test_segment": src.reports / "segments",
               "patches": src.reports / "patches", "read_bigearth": src.bigearth,
               "train_bigearth": src.reports / "bigearth"}
    parts = []
    for stage, keys in SETTINGS.items():
        cfg = _read_json(folders[stage] / f"{stage}_config.json")
        if cfg:
            parts += [f"`{k}={cfg[k]}`" for k in keys if k in cfg]
    return ", ".join(parts) + " (each stage's full configuration is saved beside its outputs as `<stage>_config.json`)"


def data_section(src: Sources) -> list[str]:
    cfg = _read_json(src.prep / "scene_prep_config.json")
    classes = _read_json(src.prep / "classes.json")
    if cfg is None or classes is None or not (src.prep / "scene.tif").exists():
        return ["## Data", "", "scene_prep.py has not run: no data to report.", ""]
    with rasterio.open(src.prep / "scene.tif") as scene:
        width, height, res, crs = scene.width, scene.height, scene.res[0], scene.crs
    points = cfg["N_POINTS"]
    table = pd.DataFrame([{"code": c["code"], "class": c["name"], "pixels": c["pixels"]} for c in classes])
    table["share"] = (100 * table["pixels"] / table["pixels"].sum()).round(1)
    scene_paths = cfg["SCENE_PATH"] if isinstance(cfg["SCENE_PATH"], list) else [cfg["SCENE_PATH"]]
    radiometry = cfg.get("radiometry") or {}
    reference = cfg.get("reference") or {}
    return [
        "## Data and configuration", "",
        f"- Scene: {', '.join(f'`{Path(str(p)).name}`' for p in scene_paths)}, bands {', '.join(cfg['BANDS'])} "
        f"at {cfg['RESOLUTION']} m.",
        *_radiometry_lines(radiometry),
        f"- AOI: `{cfg['AOI']}`: {width} x {height} pixels = {width * res / 1000:.1f} x {height * res / 1000:.1f} km "
        f"({crs}).",
        f"- Ground truth: `{Path(cfg['LABELS_PATH']).name}` (vocabulary `{reference.get('vocab', cfg['LABEL_VOCAB'])}`"
        f"{', labelled points: every point on a valid pixel is a sample' if reference.get('points') else ''}), "
        f"{len(classes)} classes in the AOI; "
        + (f"{int(table['pixels'].sum()):,} points." if reference.get("points") else f"{points:,} points sampled."),
        f"- Seed: {cfg['SEED']}. Packages: {_versions()}.",
        f"- Settings: {_settings(src)}.", "",
        "Classes of the ground truth in the AOI (pixels with data):", "", _md(table), "",
    ]


def _radiometry_lines(info: dict) -> list[str]:
    """The products' baselines and offsets, the convention of scene.tif, and what the cloud mask removed."""
    if not info:
        return []
    products = "; ".join(
        f"`{p['name']}` ({p.get('level') or 'no level'}, baseline {p.get('baseline') or 'unknown'}, offset "
        f"{sorted(set(p['offsets'].values())) or 'none'} DN, mask {(p.get('mask') or {}).get('kind', 'none')})"
        for p in info.get("products", []))
    masked = {k: v for k, v in info.get("masked_share", {}).items() if v > 0}
    shares = ", ".join(f"{k} {100 * v:.2f} %" for k, v in masked.items()) or "nothing"
    return [
        f"- Products: {products}.",
        f"- Radiometry of `scene.tif`: {info.get('convention')}.",
        f"- Masked (never sampled, trained on, scored or mapped): {100 * info.get('masked_total', 0):.2f} % of the "
        f"AOI's pixels with data ({shares}).",
    ]


ONEHOT_FOREST = "Random forest (one-hot, the study's)"
# Said of a difference that has no paired comparison (no test predictions to pair).
NO_VERDICT = "no paired test predictions, no interval: not a verdict"
PREDICTION_FILES = ("segments", "patches", "bigearth")


def best_cnns(src: Sources) -> dict[str, str]:
    """Split -> the name of the patch CNN with the highest mean validation accuracy (e.g. "CNN 7x7")."""
    table = _read_csv(src.reports / "patches" / "results.csv")
    if table is None:
        return {}
    return {split: f"CNN {part.loc[part['val_accuracy'].idxmax(), 'patch']}" for split, part in table.groupby("split")}


def comparisons(src: Sources) -> pd.DataFrame | None:
    """The paired comparisons (``comparison.build``) of the stages' test predictions; None without any."""
    files = [src.reports / folder / "predictions.parquet" for folder in PREDICTION_FILES]
    frames = [pd.read_parquet(f) for f in files if f.exists()]
    if not frames:
        return None
    return comparison.build(pd.concat(frames, ignore_index=True), best_cnns(src), src.block_size, src.bootstrap,
                            src.seed)


def _claim(table: pd.DataFrame | None, experiment: str, split: str, a: str, b: str) -> str | None:
    """One comparison in words: "MLP against MLP-Pixel: +1.2 points (95 % CI -0.4 to +2.8; Holm p 0.43, 3 runs):
    no significant difference"; None when the file has no such row."""
    if table is None:
        return None
    row = table[(table["experiment"] == experiment) & (table["split"] == split) & (table["model_a"] == a)
                & (table["model_b"] == b)]
    if row.empty:
        return None
    r = row.iloc[0]
    verdict = {"A better": f"{a} better", "B better": f"{b} better"}.get(r["verdict"], r["verdict"])
    return (f"{a} ({_pct(r['mean_a'])}) against {b} ({_pct(r['mean_b'])}): "
            f"{comparison.describe(r['diff'], r['ci_low'], r['ci_high'])}; Holm-adjusted p {r['p_holm']:.2g}, "
            f"{int(r['n_runs'])} run{'s' if r['n_runs'] != 1 else ''}, {int(r['n_test']):,} test points per run: "
            f"**{verdict}**")


def _mean_sd(mean: float, sd: float, n: float) -> str:
    """``"58.1 ± 1.2 % (3)"``: a mean over runs with its standard deviation and the number of runs."""
    if not np.isfinite(sd) or n is None or n < 2:
        return _pct(mean)
    return f"{100 * mean:.1f} ± {100 * sd:.1f} % ({int(n)})"


def _fallback(a: str, acc_a: float, b: str, acc_b: float) -> str:
    return f"{a} ({_pct(acc_a)}) against {b} ({_pct(acc_b)}): {100 * (acc_a - acc_b):+.1f} points ({NO_VERDICT})"


def pixel_section(src: Sources, notes: list[str], cmp: pd.DataFrame | None = None) -> list[str]:
    table = _read_csv(src.reports / "segments" / "results.csv")
    if table is None:
        return ["## 1. Per-pixel classifiers and segment type", "", "test_segment.py has not run.", ""]
    seg = _read_json(src.seg / "segments_summary.json")
    largest = table["train_size"].max()
    top = table[table["train_size"] == table.groupby("split")["train_size"].transform("max")]
    n_runs = int(top["n_runs"].max()) if "n_runs" in top else 1
    rows = []
    for name in ["Random forest", ONEHOT_FOREST, "MLP-Pixel", "MLP"]:
        part = top[top["classifier"] == name].set_index("split")
        if part.empty:
            continue
        row = {"classifier": name}
        for split in sorted(part.index):
            r = part.loc[split]
            row[f"{split}: test acc."] = _mean_sd(r["test_accuracy"], r.get("test_accuracy_sd", np.nan),
                                                  r.get("n_runs", 1))
            row[f"{split}: kappa"] = f"{r['kappa']:.3f}"
            row[f"{split}: macro F1"] = f"{r['macro_f1']:.3f}"
        # the study's forest is its one-hot one: its 47.5 % belongs on that row
        study = STUDY["pixel_test_250k"].get("Random forest" if name == ONEHOT_FOREST else name)
        row["study (250k, random)"] = f"{study} %" if name != "Random forest" or ONEHOT_FOREST not in set(
            top["classifier"]) else "-"
        rows.append(row)
    text = ["## 1. Per-pixel classifiers and segment type", "",
            f"Test scores at the largest training size ({largest:,} points; the study used 250,000), the mean ± "
            f"standard deviation over {n_runs} run{'s' if n_runs > 1 else ''} (each a new split and model seed; "
            "the number of runs in brackets). Every run is in `segments/runs.csv`, the summary in "
            "`segments/results.md`."]
    if seg:
        text.append(f"The segmentation gave {seg['segments']:,} segments (median {seg['median_size_px']:,.0f} px).")
    text += ["", _md(pd.DataFrame(rows)), ""]
    for split in sorted(top["split"].unique()):
        part = top[(top["split"] == split) & top["classifier"].isin(["Random forest", ONEHOT_FOREST, "MLP-Pixel",
                                                                      "MLP"])].set_index("classifier")["test_accuracy"]
        pairs = [("segment type", "MLP", "MLP-Pixel", "Segment type")]
        pairs += [("per-pixel classifier vs forest", m, "Random forest", "Per-pixel classifier against the forest")
                  for m in ("MLP-Pixel", "MLP")]
        for experiment, a, b, what in pairs:
            if {a, b} <= set(part.index):
                claim = _claim(cmp, experiment, split, a, b) or _fallback(a, part[a], b, part[b])
                notes.append(f"{what}, {split} split: {claim}.")
        if {"Random forest", ONEHOT_FOREST} <= set(part.index):
            claim = _claim(cmp, "per-pixel classifier vs forest", split, ONEHOT_FOREST, "Random forest") or \
                _fallback(ONEHOT_FOREST, part[ONEHOT_FOREST], "Random forest", part["Random forest"])
            notes.append(f"The study's one-hot forest, {split} split: {claim}. It is the same forest as the normal "
                         "classifier, scored as the study's code did: by exact match of the predicted one-hot row, so "
                         "every pixel where no class gets a majority counts as wrong; the study's forest (47.5 %) "
                         "trailed its MLP (56.9 %).")
    if {"random", "spatial"} <= set(top["split"]):
        for name in ["Random forest", "MLP-Pixel", "MLP"]:
            claim = _claim(cmp, "random vs spatial split", "random vs spatial", f"{name} (random split)",
                           f"{name} (spatial split)")
            if claim:
                notes.append(f"Split protocol: {claim}. The random split puts neighbouring pixels on both sides, the "
                             "spatial one does not (different test points: an unpaired comparison).")
    return text + sweep_section(src, cmp)


def sweep_section(src: Sources, cmp: pd.DataFrame | None) -> list[str]:
    """Accuracy of the MLP with segment type against the median segment size of each SEG_SCALES entry."""
    sweep = _read_csv(src.seg / "scale_sweep.csv")
    results = _read_csv(src.reports / "segments" / "results.csv")
    predictions = src.reports / "segments" / "predictions.parquet"
    if sweep is None or results is None or "seg_scale" not in results or not predictions.exists():
        return []
    frame = comparison.points_frame(pd.read_parquet(predictions), src.block_size)
    frame = frame[frame["setting"].astype(int) == frame["setting"].astype(int).max()]
    rows = []
    mlps = results[results["seg_scale"].notna() & (results["train_size"] == results["train_size"].max())]
    for _, r in mlps.iterrows():
        entry = sweep[(sweep["scale"] == r["seg_scale"]) & (sweep["min_size"] == r["seg_min_size"])]
        part = frame[(frame["model"] == r["classifier"]) & (frame["split"] == r["split"])]
        if entry.empty or part.empty:
            continue
        mean, low, high = comparison.accuracy_interval(part, src.bootstrap, np.random.default_rng([src.seed, 9]))
        rows.append({"split": r["split"], "scale": r["seg_scale"], "min_size": int(r["seg_min_size"]),
                     "segments": int(entry["segments"].iloc[0]), "median_ha": float(entry["median_size_ha"].iloc[0]),
                     "accuracy": mean, "ci_low": low, "ci_high": high, "model": r["classifier"]})
    if not rows:
        return []
    table = pd.DataFrame(rows).sort_values(["split", "median_ha"])
    baseline = {}
    for split in table["split"].unique():
        part = frame[(frame["model"] == "MLP-Pixel") & (frame["split"] == split)]
        if not part.empty:
            baseline[split] = comparison.accuracy_interval(part, src.bootstrap, np.random.default_rng([src.seed, 9]))
    plots.accuracy_by_segment_size(src.reports / "figures" / "accuracy_by_segment_size.png", table, baseline)
    shown = pd.DataFrame({
        "split": table["split"], "scale": table["scale"].map("{:g}".format), "min size (px)": table["min_size"],
        "segments": table["segments"], "median segment (ha)": table["median_ha"].map("{:.2f}".format),
        "MLP with segment type": [f"{100 * a:.1f} % ({100 * lo:.1f} to {100 * hi:.1f})"
                                  for a, lo, hi in zip(table["accuracy"], table["ci_low"], table["ci_high"])],
        "against MLP-Pixel": [
            (lambda row: comparison.describe(row["diff"], row["ci_low"], row["ci_high"]) + f": {row['verdict']}"
             if row is not None else "-")(_row(cmp, "segment type", sp, m, "MLP-Pixel"))
            for sp, m in zip(table["split"], table["model"])]})
    return ["### Texture at several segmentation scales", "",
            "The MLP with segment type, once per segmentation scale (`SEG_SCALES`, at the largest training size), "
            "against the median segment size; accuracy with its 95 % interval (test blocks and runs), and the "
            "paired difference from the MLP without segment type. At the study's scale a scene has a handful of "
            "segments, so the segment type is a regional constant; field-sized segments (0.5-5 ha) carry texture.",
            "", _md(shown), "", "![accuracy by segment size](figures/accuracy_by_segment_size.png)", ""]


def _row(table: pd.DataFrame | None, experiment: str, split: str, a: str, b: str) -> pd.Series | None:
    if table is None:
        return None
    row = table[(table["experiment"] == experiment) & (table["split"] == split) & (table["model_a"] == a)
                & (table["model_b"] == b)]
    return None if row.empty else row.iloc[0]


def patch_section(src: Sources, notes: list[str], cmp: pd.DataFrame | None = None) -> list[str]:
    table = _read_csv(src.reports / "patches" / "results.csv")
    if table is None:
        return ["## 2. Patch CNN", "", "patches.py has not run.", ""]
    sizes = table["patch"].str.split("x").str[0].astype(int)
    rows = []
    for size in sorted(set(sizes)):
        row = {"patch": f"{size}x{size}", "input values": table.loc[sizes == size, "input_values"].iloc[0]}
        for split, part in table[sizes == size].groupby("split"):
            r = part.iloc[0]
            row[f"{split}: val. acc."] = _pct(r["val_accuracy"])
            row[f"{split}: test acc."] = _mean_sd(r["test_accuracy"], r.get("test_accuracy_sd", np.nan),
                                                  r.get("n_runs", 1))
            row[f"{split}: kappa"] = f"{r['kappa']:.3f}"
            row[f"{split}: macro F1"] = f"{r['macro_f1']:.3f}"
        row["study val. acc."] = f"{STUDY['patch_val'][size]} %" if size in STUDY["patch_val"] else "-"
        rows.append(row)
    plots.accuracy_by_patch_size(src.reports / "figures" / "accuracy_by_patch_size.png", table, STUDY["patch_val"])
    pixel = _read_csv(src.reports / "segments" / "results.csv")
    for split, part in table.groupby("split"):
        best = part.loc[part["val_accuracy"].idxmax()]
        notes.append(f"Patch CNN, {split} split: {best['patch']} has the highest mean validation accuracy and is the "
                     f"one mapped and compared with transfer (test {_pct(best['test_accuracy'])}); a selection, not a "
                     "verdict: the patch-size comparisons below say which differences are significant.")
        rf = None if pixel is None else pixel[(pixel["split"] == split) & (pixel["classifier"] == "Random forest")]
        for _, r in part.assign(size=sizes[part.index]).sort_values("size").iterrows():
            name = f"CNN {r['patch']}"
            claim = _claim(cmp, "patch CNN vs forest", split, name, "Random forest")
            if claim is None and rf is not None and not rf.empty:
                claim = _fallback(name, r["test_accuracy"], "Random forest", rf.loc[rf["train_size"].idxmax(),
                                                                                     "test_accuracy"])
            if claim:
                notes.append(f"Spatial context, {split} split: {claim}.")
        ordered = sorted(part["patch"], key=lambda p: int(p.split("x")[0]))
        sizes_claims = [c for c in (_claim(cmp, "patch size", split, f"CNN {big}", f"CNN {small}")
                                    for small, big in zip(ordered, ordered[1:])) if c]
        if sizes_claims:
            notes.append(f"Patch size, {split} split: " + "; ".join(sizes_claims) + ".")
    return ["## 2. Patch CNN", "",
            "Accuracy by patch size: validation accuracy and test accuracy are means over the runs (test: ± the "
            "standard deviation, runs in brackets; every run is in `patches/runs.csv`); the study's column is its "
            "validation accuracy.", "",
            _md(pd.DataFrame(rows)), "", "![accuracy by patch size](figures/accuracy_by_patch_size.png)", ""]


def convergence_notes(src: Sources, notes: list[str]) -> None:
    """Flag every run that the epoch cap ended: a network that may not have converged."""
    for folder, what, cap_key in (("segments", "MLP", "MLP_EPOCHS"), ("patches", "patch CNN", "CNN_EPOCHS")):
        runs = _read_csv(src.reports / folder / "runs.csv")
        if runs is None or "epoch_cap_hit" not in runs:
            continue
        trained = runs[runs["epochs"].notna()]
        capped = trained[trained["epoch_cap_hit"].astype(bool)]
        if trained.empty:
            continue
        if capped.empty:
            notes.append(f"Convergence: every {what} run ({len(trained)}) was ended by early stopping, none by the "
                         f"epoch cap ({int(trained['epochs'].max())} epochs at most).")
        else:
            label = "classifier" if "classifier" in capped else "patch"
            which = ", ".join(sorted({f"{r[label]} ({r['split']}, run {int(r['run']) + 1})"
                                      for _, r in capped.iterrows()}))
            notes.append(f"**Convergence warning**: {len(capped)} of {len(trained)} {what} runs ended at the epoch "
                         f"cap ({cap_key}) and may not have converged: {which}. Their scores may understate the "
                         "network; raise the cap (with no early stopping, the study's MLP protocol, every run ends "
                         "there by design).")


def comparisons_section(cmp: pd.DataFrame | None) -> list[str]:
    if cmp is None or cmp.empty:
        return []
    shown = pd.DataFrame({
        "experiment": cmp["experiment"], "split": cmp["split"], "A": cmp["model_a"], "B": cmp["model_b"],
        "A acc.": cmp["mean_a"].map(_pct), "B acc.": cmp["mean_b"].map(_pct),
        "A - B (95 % CI)": [comparison.describe(d, lo, hi).replace(" (95 % CI ", " (").replace("points ", "")
                            for d, lo, hi in zip(cmp["diff"], cmp["ci_low"], cmp["ci_high"])],
        "p": cmp["p_value"].map("{:.2g}".format), "p (Holm)": cmp["p_holm"].map("{:.2g}".format),
        "McNemar p per run": cmp["mcnemar_p"].fillna(""), "runs": cmp["n_runs"], "test points": cmp["n_test"],
        "verdict": cmp["verdict"]})
    return ["## Comparisons with 95 % intervals", "",
            "Every difference the report states, from `comparisons.csv`: paired on the same test points in each run "
            "(the split protocols are compared unpaired); the interval accounts for the test points (whole spatial "
            "blocks resampled) and for training randomness (the spread over runs); p-values are Holm-adjusted over "
            "all rows; a verdict needs the interval to exclude 0 and the adjusted p below 0.05. McNemar's exact test "
            "per run is a second view. Method and references: README, \"Comparisons\".", "", _md(shown), ""]


def map_section(src: Sources, notes: list[str]) -> list[str]:
    table = _read_csv(src.reports / "patches" / "results.csv")
    if table is None:
        return []
    best = Path(table.loc[table["val_accuracy"].idxmax(), "model"]).stem
    evaluation = _read_csv(src.predictions / best / "evaluation.csv")
    if evaluation is None:
        return ["## Whole-scene map", "", "test_patches.py has not run for the best model.", ""]
    aoi = evaluation.iloc[-1]
    notes.append(f"Whole-AOI map of {best}: {_pct(aoi['accuracy'])} agreement with the ground truth over "
                 f"{aoi['pixels']:,} pixels (the study: {STUDY['aoi_map']} % over its AOI).")
    shown = evaluation.assign(accuracy=evaluation["accuracy"].map(_pct), kappa=evaluation["kappa"].round(3),
                              macro_f1=evaluation["macro_f1"].round(3))
    _copy(src.predictions / best / "prediction.png", src.reports / "figures" / "prediction.png")
    lines = ["## Whole-scene map", "", f"The best model of the sweep ({best}) over every AOI pixel.", "",
             _md(shown), ""]
    assessed = best
    assessment = _read_csv(src.predictions / best / "accuracy_assessment.csv")
    if assessment is not None and assessment.get("sample", pd.Series([""])).iloc[0] != "simple random (random split)":
        # held-out blocks are no simple random sample: use a random-split map of the sweep where one was made
        random_maps = sorted(src.predictions.glob("patch_cnn_random_*/accuracy_assessment.csv"),
                             key=lambda f: f.parent.name != best.replace("spatial", "random"))
        assessed = random_maps[0].parent.name if random_maps else None
        lines += [f"No accuracy assessment with intervals from {best}'s own test points: they are whole blocks of a "
                  "spatial split, not a simple random sample of the map, and Olofsson et al.'s estimators (and the "
                  "areas they give) would be biased towards the classes of the test blocks. "
                  + (f"The assessment below is of {assessed}'s map, from its random split's test points." if assessed
                     else "Map the random split's model for one (`python test_patches.py --set "
                     "PREDICT_MODEL=models/patch_cnn_random_<p>.keras`)."), ""]
        assessment = _read_csv(random_maps[0]) if random_maps else None
    if assessment is not None:
        overall = assessment.iloc[-1]
        notes.append(f"Map accuracy of {assessed} estimated from its held-out points and the map's class proportions "
                     f"(Olofsson et al. 2014): {_pct(overall['users_accuracy'])} +- "
                     f"{100 * overall['users_ci95']:.1f} points (95 % interval).")
        rows = assessment.iloc[:-1]
        table = pd.DataFrame({
            "class": rows["class"], "map share": rows["map_share"].map(_pct), "points": rows["n_points"],
            "user's accuracy": [_pm(v, c) for v, c in zip(rows["users_accuracy"], rows["users_ci95"])],
            "producer's accuracy": [_pm(v, c) for v, c in zip(rows["producers_accuracy"], rows["producers_ci95"])],
            "area (km²)": [f"{a:.2f} ± {c:.2f}" for a, c in zip(rows["area_km2"], rows["area_ci95_km2"])]})
        lines += ["Accuracy and class areas of the map as map producers report them (Olofsson et al. 2014: the "
                  "map's classes as strata, weighted by their mapped share; ± is the 95 % interval), from the "
                  f"model's {int(overall['n_points']):,} held-out test points: overall accuracy "
                  f"{_pm(overall['users_accuracy'], overall['users_ci95'])}. The reference at the points is the "
                  "ground truth the model was trained on.", "", _md(table), ""]
    return lines + ["![prediction](figures/prediction.png)", ""] + maps_compared(src, best)


def maps_compared(src: Sources, best: str) -> list[str]:
    """The per-pixel classifiers' maps beside the best CNN's (test_patches.py with PIXEL_MAPS), if made."""
    table = _read_csv(src.predictions / best / "maps_compared.csv")
    if table is None:
        return []
    _copy(src.predictions / best / "maps_side_by_side.png", src.reports / "figures" / "maps_side_by_side.png")
    wide = table.assign(where=np.where(table["evaluated_on"].str.startswith("whole AOI"), "whole AOI", "test points"))
    wide = wide.pivot_table(index="model", columns="where", values="accuracy", sort=False).reset_index()
    shown = pd.DataFrame({"map": wide["model"].str.rsplit(".", n=1).str[0]})
    for column, title in (("test points", "accuracy at the held-out test points"),
                          ("whole AOI", "whole-AOI agreement with the ground truth")):
        if column in wide:
            shown[title] = wide[column].map(_pct)
    return ["### The three methods' maps", "",
            "The random forest and the MLP-Pixel of the per-pixel experiment mapped through the same path as the "
            "CNN (a halo of 0), each the first run of the same split. These are single runs, without intervals: "
            "the comparisons with their 95 % intervals are in the comparisons section.", "", _md(shown), "",
            "![maps side by side](figures/maps_side_by_side.png)", ""]


def _pm(value: float, ci: float) -> str:
    """A share with its 95 % interval half-width, in per cent: ``"88.0 ± 7.4 %"`` (``"-"`` when undefined)."""
    if not np.isfinite(value):
        return "-"
    return f"{100 * value:.1f} ± {100 * ci:.1f} %" if np.isfinite(ci) else f"{100 * value:.1f} %"


def ceiling_section(src: Sources, notes: list[str]) -> list[str]:
    """Every model, the map and the ground truth itself scored against the second, finer reference."""
    pixel = _read_csv(src.reports / "segments" / "results.csv")
    patch = _read_csv(src.reports / "patches" / "results.csv")
    def scored(table: pd.DataFrame | None) -> bool:
        return table is not None and "test_accuracy_eval" in table and bool(table["test_accuracy_eval"].notna().any())

    if not (scored(pixel) or scored(patch)):
        return []
    rows = []
    if scored(pixel):
        top = pixel[pixel["train_size"] == pixel.groupby("split")["train_size"].transform("max")]
        rows += [{"model": f"{r['classifier']} ({r['train_size']:,} points)", "split": r["split"],
                  "vs ground truth": _pct(r["test_accuracy"]), "vs second reference": _pct(r["test_accuracy_eval"]),
                  "ground truth vs second reference": _pct(r["reference_accuracy_eval"])} for _, r in top.iterrows()]
    if scored(patch):
        rows += [{"model": f"patch CNN {r['patch']}", "split": r["split"], "vs ground truth": _pct(r["test_accuracy"]),
                  "vs second reference": _pct(r["test_accuracy_eval"]),
                  "ground truth vs second reference": _pct(r["reference_accuracy_eval"])} for _, r in patch.iterrows()]
    lines = ["## How much does the coarse reference cap the score?", "",
             "Each model's held-out test points scored against the ground truth it was trained on and against the "
             "second, finer reference (`EVAL_LABELS_PATH`; in the demo, the generator's 10 m land cover), beside "
             "the ground truth's own agreement with that reference at the same points: the ceiling of what "
             "accuracy against the ground truth can mean. Means over the runs.", "", _md(pd.DataFrame(rows)), ""]
    best = Path(patch.loc[patch["val_accuracy"].idxmax(), "model"]).stem if patch is not None else None
    whole = _read_csv(src.predictions / best / "second_reference.csv") if best else None
    per_class = _read_csv(src.predictions / best / "second_reference_per_class.csv") if best else None
    if whole is not None:
        acc = whole[whole["evaluated_on"].str.startswith("whole AOI")].set_index("compared")["accuracy"]
        truth_row = next(k for k in acc.index if k.startswith("ground truth"))
        map_row = next(k for k in acc.index if k.startswith("map") and k.endswith("second reference"))
        diff = 100 * (acc[map_row] - acc[truth_row])
        notes.append(f"Against the second, finer reference the whole-AOI map of {best} agrees on "
                     f"{_pct(acc[map_row])} of the pixels, the ground truth itself on {_pct(acc[truth_row])} "
                     f"({diff:+.1f} points for the map). The study claimed its models represent the scene better "
                     "than the ground truth; one run without an interval is no verdict on that claim.")
        shown = whole.assign(accuracy=whole["accuracy"].map(_pct))
        lines += [f"The whole-AOI map of {best}:", "", _md(shown), ""]
    if per_class is not None:
        shown = per_class.assign(ground_truth_recall=per_class["ground_truth_recall"].map(_pct),
                                 map_recall=per_class["map_recall"].map(_pct)).rename(columns={
                                     "ground_truth_recall": "ground truth gives it", "map_recall": "map gives it"})
        lines += ["Per class of the second reference: the share of its pixels that the ground truth and the map "
                  "give that class.", "", _md(shown), ""]
    return lines


def bigearth_section(src: Sources, notes: list[str], cmp: pd.DataFrame | None = None) -> list[str]:
    table = _read_csv(src.reports / "bigearth" / "results.csv")
    if table is None:
        return ["## 3. BigEarthNet transfer", "", "train_bigearth.py has not run.", ""]
    manifest = _read_json(src.bigearth / "manifest.json") or {}
    counts = manifest.get("counts", {})
    shown = table.copy()
    for col in ("accuracy",):
        shown[col] = shown[col].map(_pct)
    for col in ("kappa", "macro_f1"):
        if col in shown:
            shown[col] = shown[col].round(3)
    by_model = table.set_index("model")["accuracy"]
    a = next((v for k, v in by_model.items() if k.startswith("(a)")), None)
    b = next((v for k, v in by_model.items() if k.startswith("(b)")), None)
    patch = next((v for k, v in by_model.items() if k.startswith("best patch")), None)
    if a is not None:
        notes.append(f"BigEarthNet, the study's way (a): {_pct(a)} on the AOI's held-out points "
                     f"({'below' if 100 * a < STUDY['bigearth_below'] else 'not below'} the study's 40 %); with a new "
                     f"head on frozen features (b): {_pct(b)}.")
    rows = cmp[cmp["experiment"] == "transfer vs best patch CNN"] if cmp is not None else pd.DataFrame()
    for _, r in rows.iterrows():
        claim = _claim(cmp, r["experiment"], r["split"], r["model_a"], r["model_b"])
        notes.append(f"Transfer, {r['split']} split: {claim}"
                     " (the BigEarthNet CNN is trained once, the new head (b) once per run: the interval does not "
                     "cover the BigEarthNet CNN's own training randomness).")
    if rows.empty and a is not None and patch is not None:
        notes.append(f"Transfer: (a) {_pct(a)} and (b) {_pct(b)} against {_pct(patch)} for the best patch CNN "
                     f"({NO_VERDICT}).")
    return ["## 3. BigEarthNet transfer", "",
            f"Archive: {manifest.get('layout', '?')} layout, {counts.get('listed', 0)} patches listed, "
            f"{counts.get('kept', 0)} kept ({counts.get('cloud_or_shadow', 0)} cloud/shadow, {counts.get('snow', 0)} "
            f"snow, {counts.get('unreadable', 0)} unreadable, {counts.get('no_label', 0)} without an AOI class); "
            f"label policy `{manifest.get('policy', '?')}`. The study reported transfer below "
            f"{STUDY['bigearth_below']:.0f} %.", "", _md(shown), ""]


def timing_section(src: Sources) -> list[str]:
    folders = {"scene_prep": src.prep, "segment": src.seg, "test_segment": src.reports / "segments",
               "patches": src.reports / "patches", "read_bigearth": src.bigearth,
               "train_bigearth": src.reports / "bigearth"}
    rows = []
    for stage in STAGES:
        paths = [folders[stage] / f"{stage}_timing.json"] if stage in folders else \
            sorted(src.predictions.glob(f"*/{stage}_timing.json"))
        for path in paths:
            t = _read_json(path)
            if t:
                rows.append({"stage": stage, "wall time (s)": t["wall_s"], "peak memory (MB)": t["peak_mb"],
                             "finished": t["finished"]})
    if not rows:
        return []
    return ["## Wall time and peak memory per stage", "",
            "Of each stage's last real run (a reused stage keeps its earlier figures).", "",
            _md(pd.DataFrame(rows)), ""]


def _copy(source: Path, target: Path) -> bool:
    if not source.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    return True


def figures_section(src: Sources) -> list[str]:
    figures = [("True colour", src.prep / "truecolor.png"), ("Ground truth", src.prep / "ground_truth.png"),
               ("Segment boundaries", src.seg / "segments.png")]
    patches = _read_csv(src.reports / "patches" / "results.csv")
    if patches is not None:
        for split, part in patches.groupby("split"):
            best = part.loc[part["val_accuracy"].idxmax(), "patch"].split("x")[0]
            figures.append((f"Confusion matrix, patch CNN {best}x{best}, {split} split",
                            src.reports / "patches" / f"confusion_{split}_{best}.png"))
    for split in ("random", "spatial"):
        figures.append((f"Confusion matrix, random forest, {split} split",
                        src.reports / "segments" / f"confusion_random_forest_{split}.png"))
    lines = ["## Figures", ""]
    for title, path in figures:
        if _copy(path, src.reports / "figures" / path.name):
            lines += [f"**{title}**", "", f"![{title}](figures/{path.name})", ""]
    return lines


def build(src: Sources, cmp: pd.DataFrame | None = None) -> str:
    """The report as Markdown (figures are copied into ``<reports>/figures``); ``cmp``: the
    comparisons when already computed."""
    notes: list[str] = []
    cmp = comparisons(src) if cmp is None else cmp
    body = (data_section(src) + pixel_section(src, notes, cmp) + patch_section(src, notes, cmp)
            + map_section(src, notes) + ceiling_section(src, notes) + bigearth_section(src, notes, cmp)
            + comparisons_section(cmp))
    convergence_notes(src, notes)
    reading = ["## What this run shows", "",
               "The data differ from the study's (this may be the synthetic demo scene), so the numbers compare "
               "methods on this scene, not this scene with the study's. The study's figures are from random pixel "
               "splits; the spatial split holds out whole blocks of the scene. A model is called better only where "
               "the comparison's verdict says so (interval excluding 0, Holm-adjusted p < 0.05); every difference "
               "is given with its 95 % interval.", ""]
    reading += [f"- {n}" for n in notes] + [""]
    header = ["# Land-cover classification of a Sentinel-2 scene: texture, spatial context and transfer", "",
              "Regenerated by `report.py` from the stages' outputs.", ""]
    return "\n".join(header + reading + body + figures_section(src) + timing_section(src))


def write(src: Sources) -> Path:
    """Write ``report.md`` and ``report.html`` into the reports folder; returns the Markdown path."""
    import markdown

    cmp = comparisons(src)
    text = build(src, cmp)
    if cmp is not None:
        with atomic_write(src.reports / "comparisons.csv") as tmp:
            cmp.to_csv(tmp, index=False)
        log.info("wrote %s (%d comparisons)", src.reports / "comparisons.csv", len(cmp))
    path = src.reports / "report.md"
    with atomic_write(path) as tmp:
        tmp.write_text(text)
    html = markdown.markdown(text, extensions=["tables"])
    with atomic_write(path.with_suffix(".html")) as tmp:
        tmp.write_text(f"<!doctype html><meta charset='utf-8'><title>Report</title>"
                       f"<style>body{{font-family:sans-serif;max-width:70em;margin:auto}}table{{border-collapse:"
                       f"collapse}}td,th{{border:1px solid #ccc;padding:2px 6px}}img{{max-width:100%}}</style>{html}")
    log.info("wrote %s and %s", path, path.with_suffix(".html").name)
    return path
