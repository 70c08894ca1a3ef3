"""Stage 5: whole-scene maps: a patch CNN predicts every AOI pixel; maps beside the ground truth.

Not a test suite. Loads a saved patch CNN (PREDICT_MODEL, or the sweep's best
by validation accuracy) and classifies every valid pixel of the AOI from the
window centred on it, with symmetric padding, exactly as per-patch prediction
would: windows are cut tile by tile and predicted in large batches
(PREDICT_BATCH, PREDICT_TILE_MB), never all at once and never one by one; only
the class and confidence maps are kept whole (6 bytes a pixel). A
CNN_PADDING="valid" model is run fully convolutionally instead (one pass per
tile, the same labels). With SCHEDULER ("local" or a scheduler's address) the
map is predicted on Dask instead, PREDICT_CHUNK x PREDICT_CHUNK chunks with a
halo of the patch radius, the model loaded once per worker: the same labels
(landcover/cluster.py).

Inputs: the model (.keras + .json + _points.parquet from patches.py);
    PREP_DIR/scene.tif, labels.tif, classes.json, points.parquet
Outputs (PREDICT_DIR/<model name>/):
    prediction.tif    CLC codes (uint16, 0 = nodata) with the colour table,
                      CRS, transform and size of scene.tif; a Cloud-Optimised
                      GeoTIFF (256 px tiles, nearest-neighbour overviews)
    confidence.tif    highest class probability (float32), a COG as well
    probabilities.tif with WRITE_PROBABILITIES: one band per class (PROBABILITY_DTYPE:
                      uint8 = p x 255, or float32)
    prediction.png    true colour | ground truth | prediction, with legend
    evaluation.md/.csv  held-out test points (accuracy, kappa, macro F1) and
                      the whole AOI (agreement with the ground truth)
    second_reference.md/.csv, second_reference_per_class.md/.csv  with a second
                      reference (scene_prep's eval_labels.tif): the ground truth and
                      the map scored against it (the ceiling of accuracy against
                      the ground truth), overall and per class
    accuracy_assessment.md/.csv  (models with a split of the AOI's points) overall,
                      user's and producer's accuracy and the area of every class
                      in km2, each with its 95 % interval, from the held-out test
                      points and the map's class proportions (Olofsson et al. 2014)
    per_class.csv, confusion_aoi.png, test_patches_config.json
    maps_side_by_side.png, maps_compared.md/.csv  with PIXEL_MAPS: the per-pixel
                      experiment's random forest and MLP-Pixel (run 1 of the CNN's
                      split, saved by test_segment.py; PREDICT_MODEL may name one
                      too) mapped through the same path (a 1 x 1 "patch"), each
                      with the outputs above in PREDICT_DIR/<its name>/, and the
                      three maps side by side with their scores
With PREDICT_SCENES (products or STAC items), also each of those scenes, in
PREDICT_AOI (None: whole), prepared as the model's training scene and mapped
chunk by chunk, each chunk reading only its window (landcover/scene_maps.py):
    PREDICT_DIR/<model name>/<scene id>/prediction.tif, confidence.tif (COGs),
        [probabilities.tif], done.json (written last; a re-run skips the scene)
    PREDICT_DIR/<model name>/mosaic.vrt, confidence_mosaic.vrt  over all scenes,
        in TARGET_CRS (None: the first scene's), the first scene on top
Config keys: PREDICT_MODEL, REPORTS_DIR, PREP_DIR, POINTS_FORMAT, PREDICT_DIR,
    PREDICT_BATCH, PREDICT_TILE_MB, WRITE_PROBABILITIES, PROBABILITY_DTYPE,
    PIXEL_MAPS, MODELS_DIR, SPLITS, STRETCH_PERCENTILES, PREDICT_SCENES, PREDICT_AOI,
    SCENE_OFFSET, TARGET_CRS, SCHEDULER, DASK_WORKERS, PREDICT_CHUNK,
    PREDICT_SCENES_IN_FLIGHT.
Run:
    python test_patches.py [--set PREDICT_MODEL=models/patch_cnn_spatial_7.keras]
    python test_patches.py --set SCHEDULER='"local"' --set "PREDICT_SCENES=['/data/S2B_...T30UWC_....SAFE']"
"""

import contextlib
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import config
from landcover import (accuracy, cli, cluster, evaluation, inference, labels, legend, models, patch_data,
                       pixel_maps, plots, rasters, sampling)

log = logging.getLogger("test_patches")


def chosen_model() -> Path:
    """PREDICT_MODEL, or the model with the best validation accuracy in patches.py's table."""
    if config.PREDICT_MODEL is not None:
        return Path(config.PREDICT_MODEL)
    table_path = Path(config.REPORTS_DIR) / "patches" / "results.csv"
    if not table_path.exists():
        raise FileNotFoundError(f"{table_path} is missing; run patches.py first or set PREDICT_MODEL")
    table = pd.read_csv(table_path)
    best = table.loc[table["val_accuracy"].idxmax()]
    log.info("best model of the sweep: %s (%s split, validation accuracy %.3f)", best["model"], best["split"],
             best["val_accuracy"])
    return Path(config.MODELS_DIR) / Path(str(best["model"])).name  # the table names files in MODELS_DIR


def predict_in_process(model, meta: dict, padded: np.ndarray, valid: np.ndarray, codes: np.ndarray,
                       probabilities: Path, profile: dict, classes) -> tuple[np.ndarray, np.ndarray]:
    """The class and confidence maps predicted tile by tile in this process (the probability
    stack written to ``probabilities`` with WRITE_PROBABILITIES)."""
    p = meta["patch_size"]
    if meta.get("padding") == "valid":
        tiles = inference.fully_convolutional_tiles(models.fully_convolutional(model), padded, p, valid,
                                                    tile_mb=config.PREDICT_TILE_MB)
    else:
        tiles = inference.window_tiles(model, padded, p, valid, batch_size=config.PREDICT_BATCH,
                                       tile_mb=config.PREDICT_TILE_MB)
    with contextlib.ExitStack() as stack:
        write = stack.enter_context(rasters.chunk_writer(
            probabilities, profile, len(classes), config.PROBABILITY_DTYPE,
            [f"{c.code} {c.name}" for c in classes], cog=False)) if config.WRITE_PROBABILITIES else None
        sink = None if write is None else \
            (lambda r0, r1, probs: write(r0, 0, inference.probability_values(probs, config.PROBABILITY_DTYPE)))
        return inference.map_from_tiles(tiles, valid.shape, codes, valid, sink)


def predict_on_dask(client, path: Path, meta: dict, padded: np.ndarray, valid: np.ndarray, codes: np.ndarray,
                    probabilities: Path, profile: dict, classes) -> tuple[np.ndarray, np.ndarray]:
    """The class and confidence maps predicted by chunks on Dask (SCHEDULER), the model loaded once per worker
    (the probability stack, with WRITE_PROBABILITIES, written chunk by chunk as the chunks arrive)."""
    with contextlib.ExitStack() as stack:
        dtype = config.PROBABILITY_DTYPE if config.WRITE_PROBABILITIES else None
        sink = stack.enter_context(rasters.chunk_writer(
            probabilities, profile, len(classes), dtype, [f"{c.code} {c.name}" for c in classes],
            cog=False)) if dtype else None
        return cluster.predict_map(client, path, padded, valid, codes, meta["patch_size"],
                                   fully_convolutional=meta.get("padding") == "valid", chunk=config.PREDICT_CHUNK,
                                   batch_size=config.PREDICT_BATCH, tile_mb=config.PREDICT_TILE_MB,
                                   scratch=probabilities.parent, probabilities=dtype, probability_sink=sink)


def map_scenes(path: Path, model, meta: dict, client) -> None:
    """PREDICT_SCENES: each scene prepared as the training scene was, mapped by chunks (in this process, or on
    Dask with ``client``), stamped; a VRT mosaic over them (landcover/scene_maps.py)."""
    from landcover import scene_maps

    classes = legend.classes_from_json(meta["classes"])
    out = Path(config.PREDICT_DIR) / path.stem
    folders = scene_maps.predict_scenes(
        list(config.PREDICT_SCENES), path, model if client is None else None, meta,
        scene_maps.preparation(meta, config), np.array([c.code for c in classes]), legend.colormap(classes),
        [c.name for c in classes], out, client=client, chunk=config.PREDICT_CHUNK, batch_size=config.PREDICT_BATCH,
        tile_mb=config.PREDICT_TILE_MB, probabilities=config.PROBABILITY_DTYPE if config.WRITE_PROBABILITIES else None,
        in_flight=config.PREDICT_SCENES_IN_FLIGHT, mosaic_crs=config.TARGET_CRS)
    print("\n".join(str(f / "prediction.tif") for f in folders) + f"\n{out / 'mosaic.vrt'}")


def run() -> None:
    path = chosen_model()
    model, meta = models.load_model(path)
    inference.probability_values(np.zeros(1), config.PROBABILITY_DTYPE)  # a bad dtype is refused before any work
    out = Path(config.PREDICT_DIR) / path.stem
    with cluster.client_or_none(config.SCHEDULER, config.DASK_WORKERS) as client:  # one for every map of the run
        if config.PREDICT_SCENES:  # other scenes: maps only (no ground truth there)
            map_scenes(path, model, meta, client)
            if not (Path(config.PREP_DIR) / "scene.tif").exists():
                log.info("no prepared AOI in %s: only PREDICT_SCENES mapped", config.PREP_DIR)
                return cli.save_config(out, "test_patches")
        map_aoi_and_pixel_maps(path, model, meta, out, client)
    cli.save_config(out, "test_patches")


def map_aoi_and_pixel_maps(path: Path, model, meta: dict, out: Path, client) -> None:
    """The training AOI's map and, with PIXEL_MAPS, the per-pixel classifiers' maps beside it."""
    mapped = map_aoi(path, model, meta, client)
    if config.PIXEL_MAPS and not pixel_maps.is_pixel_model(meta):
        split = meta.get("split", "?")
        others = [pixel_maps.model_path(Path(config.MODELS_DIR), kind, split) for kind in ("rf", "mlp")]
        missing = [o.name for o in others if not o.exists()]
        if missing:
            log.info("PIXEL_MAPS: %s not in MODELS_DIR (test_segment.py saves them); mapped without them",
                     ", ".join(missing))
        maps = [mapped] + [map_aoi(o, *models.load_model(o), client) for o in others if o.exists()]
        if len(maps) > 1:  # the three methods side by side, with their scores
            evaluation.write_table(pd.concat([m["table"] for m in maps], ignore_index=True), out / "maps_compared",
                                   f"The per-pixel classifiers' maps beside {path.name}'s ({meta.get('split')} split, "
                                   "run 1 of each)")
            shown = {c.code: c for m in maps for c in m["shown"]}
            plots.map_panels(out / "maps_side_by_side.png",
                             [(mapped["truecolor"], "True colour"),
                              (plots.label_image(mapped["truth"], list(shown.values())), "Ground truth")]
                             + [(plots.label_image(m["prediction"], list(shown.values())),
                                 f"{m['label']} ({m['agreement']:.1%})") for m in maps],
                             [shown[c] for c in sorted(shown)],
                             f"Whole-AOI maps, {meta.get('split')} split (whole-AOI agreement with the ground truth)",
                             columns=3)
    print(mapped["table"].to_markdown(index=False, floatfmt=".3f"))


def map_aoi(path: Path, model, meta: dict, client=None) -> dict:
    """The training AOI's map by ``model`` (a patch CNN or a per-pixel classifier; on Dask with ``client``),
    scored and written to PREDICT_DIR/<model name>/; returns what the side-by-side figure needs."""
    prep = Path(config.PREP_DIR)
    scene, profile, valid = rasters.read_scene_filled(prep / "scene.tif")  # nodata filled for the windows
    names = rasters.band_names(prep / "scene.tif")
    truth = rasters.read_geotiff(prep / "labels.tif")[0][0]
    scene_classes = labels.read_classes(prep / "classes.json")
    inference.check_model_fits(meta, path, names, scene_classes)
    classes = legend.classes_from_json(meta["classes"])
    codes = np.array([c.code for c in classes])
    p = meta["patch_size"]

    # predict tile by tile; keep only the class and confidence maps (the probabilities go to disk if asked)
    out = Path(config.PREDICT_DIR) / path.stem
    base = dict(profile, count=1)
    padded = patch_data.normalised_padded(scene, meta["mean"], meta["std"], p)
    if client is not None:  # on Dask: chunks with a halo, the model loaded once per worker
        prediction, confidence = predict_on_dask(client, path, meta, padded, valid, codes, out / "probabilities.tif",
                                                 dict(base), classes)
    else:
        prediction, confidence = predict_in_process(model, meta, padded, valid, codes, out / "probabilities.tif",
                                                    dict(base), classes)

    # evaluation: the model's held-out test points (when it has a split of them), and the whole AOI
    points = sampling.read_points(prep / f"points.{config.POINTS_FORMAT}")
    side = sampling.model_sides(points, path)
    if side is None:
        log.info("%s has no split of the AOI's points; only the whole AOI is scored", path)
    all_codes = np.union1d(codes, [c.code for c in scene_classes])
    table = evaluation.map_table(path.name, meta.get("split", "?"), truth, prediction, valid, codes, all_codes,
                                 points, side)
    aoi_scores = table.iloc[-1]
    labelled = (truth > 0) & valid
    by_code = {c.code: c for c in [*scene_classes, *classes]}
    shown = [by_code[c] for c in all_codes]

    rasters.write_geotiff(out / "prediction.tif", prediction, dict(base, dtype="uint16", nodata=0),
                          descriptions=["class"], colormap=legend.colormap(shown), cog=True)
    rasters.write_geotiff(out / "confidence.tif", confidence, dict(base, dtype="float32", nodata=None),
                          descriptions=["max_probability"], cog=True, overview_resampling="average")
    truecolor = plots.composite(scene, names, ("B04", "B03", "B02"), valid, tuple(config.STRETCH_PERCENTILES))
    plots.prediction_figure(out / "prediction.png", truecolor, truth, prediction, shown,
                            f"{path.stem}: whole-AOI agreement {aoi_scores['accuracy']:.1%}")
    evaluation.write_table(table, out / "evaluation", f"Whole-scene prediction with {path.name}")
    if (prep / "eval_labels.tif").exists():  # how much does the coarse ground truth cap the score?
        second = rasters.read_geotiff(prep / "eval_labels.tif")[0][0]
        second_classes = labels.read_classes(prep / "eval_classes.json")
        ceiling, ceiling_classes = evaluation.second_reference_table(
            path.name, "CORINE" if all(c.code in legend.CLC_CODES for c in scene_classes) else "ground truth",
            "the second reference", truth, second, prediction, valid, points, side,
            {c.code: c.name for c in [*shown, *second_classes]})
        evaluation.write_table(ceiling, out / "second_reference",
                               "The map and the ground truth against the second, finer reference (EVAL_LABELS_PATH)")
        evaluation.write_table(ceiling_classes, out / "second_reference_per_class",
                               "Per class of the second reference: share of its pixels each map gives that class")
    if side is not None:  # map accuracy and class areas with their intervals (Olofsson et al. 2014)
        test = points[side == "test"]
        assessment = accuracy.assessment_table(
            test["label"].to_numpy(), prediction[test["row"], test["col"]], prediction, all_codes,
            [c.name for c in shown], abs(profile["transform"].a * profile["transform"].e) / 1e6)
        # the estimators assume a simple random (or stratified) sample; held-out blocks are a cluster sample
        assessment["sample"] = accuracy.SIMPLE_RANDOM if meta.get("split") == "random" else accuracy.BLOCKS
        if meta.get("split") != "random":
            log.warning("%s was held out by blocks: its test points are not a simple random sample of the map, so "
                        "accuracy_assessment.csv is biased towards the classes of the test blocks; map the random "
                        "split's model (PREDICT_MODEL) for an assessment from a simple random sample", path.name)
        evaluation.write_table(assessment, out / "accuracy_assessment",
                               f"Accuracy and area estimates of the map of {path.name} from its {len(test)} held-out "
                               f"test points ({meta.get('split', '?')} split; Olofsson et al. 2014; "
                               "+- = 95 % interval)")
    evaluation.write_table(evaluation.per_class(truth[labelled], prediction[labelled], all_codes,
                                                [c.name for c in shown]), out / "per_class", "Whole-AOI per-class scores")
    plots.confusion_figure(out / "confusion_aoi.png", truth[labelled], prediction[labelled], all_codes,
                           [c.name for c in shown], f"{path.stem}, whole AOI")
    label = {"pixel_rf": "Random forest", "pixel_mlp": "MLP-Pixel"}.get(meta.get("kind"), f"CNN {p}x{p}")
    return {"prediction": prediction, "shown": shown, "truth": truth, "truecolor": truecolor, "label": label,
            "agreement": float(aoi_scores["accuracy"]), "table": table}


CONFIG_KEYS = ("PREDICT_MODEL", "REPORTS_DIR", "PREP_DIR", "POINTS_FORMAT", "PREDICT_DIR", "PREDICT_BATCH",
               "PREDICT_TILE_MB", "WRITE_PROBABILITIES", "PROBABILITY_DTYPE", "STRETCH_PERCENTILES", "PREDICT_SCENES",
               "PREDICT_AOI", "SCENE_OFFSET", "TARGET_CRS", "PIXEL_MAPS", "MODELS_DIR", "SPLITS")


def _model_or_none() -> Path | None:
    try:
        return chosen_model()
    except (FileNotFoundError, ValueError, KeyError):
        return None


def inputs() -> list[Path]:
    prep, model = Path(config.PREP_DIR), _model_or_none()
    files = [prep / "scene.tif", prep / "labels.tif", prep / "classes.json", prep / f"points.{config.POINTS_FORMAT}",
             Path(config.REPORTS_DIR) / "patches" / "results.csv"]
    files += [f for f in (prep / "eval_labels.tif", prep / "eval_classes.json") if f.exists()]
    files += [Path(p) for p in config.PREDICT_SCENES if "://" not in str(p)]
    if isinstance(config.PREDICT_AOI, (str, Path)):
        files.append(Path(config.PREDICT_AOI))
    others = [pixel_maps.model_path(Path(config.MODELS_DIR), kind, split) for kind in ("rf", "mlp")
              for split in config.SPLITS] if config.PIXEL_MAPS else []
    for m in ([model] if model is not None else []) + others:
        files += [m, m.with_suffix(".json"), m.with_name(m.stem + "_points.parquet")]
    return files


def output_folder() -> Path:
    model = _model_or_none()
    return Path(config.PREDICT_DIR) / (model.stem if model is not None else "none")


def main(argv: list[str] | None = None) -> int:
    return cli.run_stage(run, __doc__, argv, cli.Reuse(CONFIG_KEYS, inputs, output_folder))


if __name__ == "__main__":
    sys.exit(main())
