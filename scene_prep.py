"""Stage 1: prepare the scene: merge bands, crop to the AOI, ground truth, sample points.

Each product is read only in the AOI's window, harmonised to one radiometric
convention (HARMONIZE: int16, 10000 x reflectance, whatever the processing
baseline), cloud-masked with its own mask (MASK_CLOUDS), and several products
are mosaicked onto one grid (first valid pixel in list order).

Inputs:
    SCENE_PATH   Sentinel-2 product (.SAFE L1C/L2A, IMG_DATA folder, folder of
                 band files, STAC item .json or URL) or a list of them; the demo
                 product is generated when missing.
    AOI          lon/lat box, vector file or None.
    LABELS_PATH  ground truth: a raster (CORINE, WorldCover, CLC+ Backbone ...),
                 polygons or labelled points (LABEL_ATTRIBUTE, LABEL_LAYER,
                 LABEL_VOCAB), any CRS.
    EVAL_LABELS_PATH  optional second, finer reference (EVAL_* keys).
Outputs (in PREP_DIR):
    scene.tif          merged bands cropped to the AOI (bands, rows, cols),
                       band descriptions = band names; nodata outside the AOI
                       and where masked; tags record the radiometry and masks
    aoi.geojson        the AOI polygon (lon/lat)
    truecolor.png      B04/B03/B02 with a 2-98 % stretch; falsecolor.png B08/B04/B03
    labels.tif         ground truth on the scene grid (uint16 class codes,
                       0 = none, colour table embedded); classes.json its classes
    points.parquet     N_POINTS sampled labelled pixels (row, col, x, y, label,
                       band values, NDVI; with SEGMENT also segment and
                       segment_type); .csv with POINTS_FORMAT="csv"
    ground_truth.png   true colour beside the ground truth with the legend
    eval_labels.tif, eval_classes.json  with EVAL_LABELS_PATH: the second, finer
                       reference on the same grid (the points table then has
                       an eval_label column, 0 = none)
    patches_<p>.npz    with SAVE_PATCHES: (N, p, p, bands) patches and labels
    scene_prep_config.json  the effective configuration
With SEGMENT = True also the segmentation stage's outputs in SEG_DIR (see segment.py: SEG_SCALE
and every SEG_SCALES entry), and the points table carries their segment types.
Config keys: SCENE_PATH, BANDS, RESOLUTION, AOI, LABELS_PATH, LABEL_ATTRIBUTE,
    LABEL_LAYER, LABEL_VOCAB, MIN_LABEL_COVERAGE, EVAL_LABELS_PATH, EVAL_LABEL_VOCAB,
    EVAL_LABEL_ATTRIBUTE, EVAL_CROSSWALK, HARMONIZE, SCENE_OFFSET, TARGET_CRS, MASK_CLOUDS,
    MASK_SCL_CLASSES, CLOUD_THRESHOLD, CLOUD_DILATION_M, MAX_CLOUD_SHARE, N_POINTS, POINTS_FORMAT,
    SAVE_PATCHES, PATCH_SIZE, SEGMENT (and the SEG_* keys), STRETCH_PERCENTILES, SEED, PREP_DIR,
    DEMO_DIR, DEMO_EXTENT.
Run:
    python scene_prep.py [--preset paper] [--set KEY=VALUE ...]
"""

import logging
import sys
from pathlib import Path

import numpy as np

import config
from landcover import aoi, cli, demo, labels, mosaic, plots, products, rasters, sampling, segmentation

log = logging.getLogger("scene_prep")


def check_config() -> None:
    """Refuse values that cannot work, before any work is done."""
    if not config.BANDS or not all(isinstance(b, str) for b in config.BANDS):
        raise ValueError(f"BANDS={config.BANDS!r}: expected a list of band names such as 'B02'")
    if config.RESOLUTION not in (10, 20, 60):
        raise ValueError(f"RESOLUTION={config.RESOLUTION}: expected 10, 20 or 60 (metres)")
    if config.N_POINTS < 1:
        raise ValueError(f"N_POINTS={config.N_POINTS}: expected a positive number of points")
    if config.POINTS_FORMAT not in ("parquet", "csv"):
        raise ValueError(f"POINTS_FORMAT={config.POINTS_FORMAT!r}: expected 'parquet' or 'csv'")
    if config.PATCH_SIZE < 1 or config.PATCH_SIZE % 2 == 0:
        raise ValueError(f"PATCH_SIZE={config.PATCH_SIZE}: expected an odd number of pixels")
    if not 0 <= config.MIN_LABEL_COVERAGE <= 1:
        raise ValueError(f"MIN_LABEL_COVERAGE={config.MIN_LABEL_COVERAGE}: expected a share between 0 and 1")
    if not 0 <= config.MAX_CLOUD_SHARE <= 1:
        raise ValueError(f"MAX_CLOUD_SHARE={config.MAX_CLOUD_SHARE}: expected a share between 0 and 1")
    if config.MASK_CLOUDS not in (True, False, "s2cloudless"):
        raise ValueError(f"MASK_CLOUDS={config.MASK_CLOUDS!r}: expected True, False or 's2cloudless'")
    if not set(config.MASK_SCL_CLASSES) <= set(range(12)):
        raise ValueError(f"MASK_SCL_CLASSES={config.MASK_SCL_CLASSES}: SCL classes are 0..11")
    if not 0 < config.CLOUD_THRESHOLD < 1 or config.CLOUD_DILATION_M < 0:
        raise ValueError(f"CLOUD_THRESHOLD={config.CLOUD_THRESHOLD} (0..1), CLOUD_DILATION_M="
                         f"{config.CLOUD_DILATION_M} (metres, >= 0)")
    if config.LABEL_VOCAB not in labels.VOCABS:
        raise ValueError(f"LABEL_VOCAB={config.LABEL_VOCAB!r}: expected one of {labels.VOCABS}")
    lo, hi = config.STRETCH_PERCENTILES
    if not 0 <= lo < hi <= 100:
        raise ValueError(f"STRETCH_PERCENTILES={config.STRETCH_PERCENTILES}: expected 0 <= low < high <= 100")
    if config.SEGMENT:
        segmentation.settings_from(config)
        segmentation.sweep_entries(config.SEG_SCALES, config.SEG_MIN_SIZE)


def scene_paths() -> list:
    """``SCENE_PATH`` as a list of products (paths, or URLs of STAC items)."""
    return list(config.SCENE_PATH) if isinstance(config.SCENE_PATH, (list, tuple)) else [config.SCENE_PATH]


def run() -> None:
    check_config()
    eval_labels_path = demo.second_reference(config.EVAL_LABELS_PATH, config.LABELS_PATH, config.DEMO_DIR)
    eval_path = [eval_labels_path] if eval_labels_path is not None else []
    demo.ensure_demo(config.DEMO_DIR, [*scene_paths(), config.LABELS_PATH, *eval_path], config.SEED,
                     config.DEMO_EXTENT)
    out = Path(config.PREP_DIR)

    # 1. products -> one harmonised, cloud-masked array on the AOI's grid
    prods = products.open_products(config.SCENE_PATH, config.BANDS, config.RESOLUTION, config.SCENE_OFFSET)
    for product in prods:
        log.info("product %s (%s, baseline %s, offsets %s, mask %s)", product.name, product.meta.level,
                 product.meta.baseline, sorted(set(product.meta.offsets.values())) or "none",
                 product.mask[0] if product.mask else "none")
        for band, path in product.bands.items():
            log.info("band %s: %s", band, path)
    crop, aoi_geom = mosaic.target_grid(prods, config.AOI, config.RESOLUTION, config.TARGET_CRS)
    scene, profile, radiometry = mosaic.read_mosaic(
        prods, crop, aoi_geom, harmonize=config.HARMONIZE, mask_mode=config.MASK_CLOUDS,
        scl_classes=config.MASK_SCL_CLASSES, cloud_threshold=config.CLOUD_THRESHOLD,
        cloud_dilation_m=config.CLOUD_DILATION_M)
    mosaic.check_masked_share(prods, radiometry, config.MAX_CLOUD_SHARE)
    valid = sampling.valid_mask(scene, profile["nodata"])
    log.info("scene crop: %dx%d pixels, %d valid", crop.width, crop.height, valid.sum())

    # 2. ground truth on the crop's grid; labels only where the scene has data
    reference = labels.read_reference(
        config.LABELS_PATH, crop, config.LABEL_VOCAB, config.LABEL_ATTRIBUTE, config.LABEL_LAYER)
    truth, classes = reference.labels, reference.classes
    labels.check_coverage(config.LABELS_PATH, truth, valid, config.MIN_LABEL_COVERAGE, reference.points)
    truth[~valid] = 0
    codes, counts = np.unique(truth[truth > 0], return_counts=True)
    classes = [c for c in classes if c.code in set(codes.tolist())]
    second = labels.evaluation_reference(
        eval_labels_path, crop, config.EVAL_LABEL_VOCAB, config.EVAL_LABEL_ATTRIBUTE or config.LABEL_ATTRIBUTE,
        config.EVAL_CROSSWALK, reference) if eval_labels_path is not None else None
    if second is not None:
        second.labels[~valid] = 0
        both = (truth > 0) & (second.labels > 0)
        log.info("the ground truth agrees with %s on %.1f %% of the %d pixels both label (the ceiling of accuracy "
                 "against the ground truth)", eval_labels_path.name,
                 100 * (truth[both] == second.labels[both]).mean() if both.any() else float("nan"), both.sum())

    # 3. points (and optionally patches); a reference of labelled points is the sample itself
    rng = np.random.default_rng(config.SEED)
    names = list(config.BANDS)
    if reference.points:
        rows, cols = sampling.all_labelled_pixels(truth, valid, rng)
        log.info("the reference is labelled points: all %d of them on valid pixels are the sample (N_POINTS "
                 "not used)", rows.size)
    else:
        rows, cols = sampling.sample_pixels(truth, valid, config.N_POINTS, rng)
    table = sampling.points_table(scene, truth, rows, cols, crop.transform, names, classes)
    if second is not None:  # the finer reference at each point (0: none)
        table["eval_label"] = second.labels[rows, cols].astype(np.int32)
    patches = sampling.cut_patches(scene, rows, cols, config.PATCH_SIZE) if config.SAVE_PATCHES else None

    # 4. renders
    pct = tuple(config.STRETCH_PERCENTILES)
    truecolor = plots.composite(scene, names, ("B04", "B03", "B02"), valid, pct)
    falsecolor = plots.composite(scene, names, ("B08", "B04", "B03"), valid, pct) if "B08" in names else None
    if config.SEGMENT:  # the segmentation stage (segment.py), run here as the study did: SEG_SCALE and SEG_SCALES
        table = segmentation.segment_aoi(Path(config.SEG_DIR), scene, profile, names, valid, table,
                                         segmentation.settings_from(config),
                                         segmentation.sweep_entries(config.SEG_SCALES, config.SEG_MIN_SIZE), truecolor)
        sampling.write_points(table, Path(config.SEG_DIR) / f"points.{config.POINTS_FORMAT}")

    # 5. outputs, each written to a temporary name and renamed
    rasters.write_geotiff(out / "scene.tif", scene, profile, descriptions=names, tags=mosaic.tags(radiometry))
    if aoi_geom is not None:
        aoi.write_aoi_geojson(aoi_geom, crop.crs, out / "aoi.geojson")
    plots.save_png(out / "truecolor.png", truecolor)
    if falsecolor is not None:
        plots.save_png(out / "falsecolor.png", falsecolor)
    label_profile = dict(profile, dtype="uint16", nodata=0, count=1)
    rasters.write_geotiff(out / "labels.tif", truth, label_profile, descriptions=["label"],
                          colormap=labels.legend.colormap(classes))
    labels.write_classes(out / "classes.json", classes, dict(zip(codes.tolist(), counts.tolist())))
    if second is not None:
        rasters.write_geotiff(out / "eval_labels.tif", second.labels, label_profile, descriptions=["eval_label"],
                              colormap=labels.legend.colormap(second.classes))
        eval_codes, eval_counts = np.unique(second.labels[second.labels > 0], return_counts=True)
        labels.write_classes(out / "eval_classes.json", second.classes,
                             dict(zip(eval_codes.tolist(), eval_counts.tolist())))
    else:  # a stale second reference of an earlier run must not be scored against
        for stale in ("eval_labels.tif", "eval_classes.json"):
            (out / stale).unlink(missing_ok=True)
    sampling.write_points(table, out / f"points.{config.POINTS_FORMAT}")
    if patches is not None:
        sampling.write_patches(out / f"patches_{config.PATCH_SIZE}.npz", patches, table["label"].to_numpy())
    plots.ground_truth_figure(out / "ground_truth.png", truecolor, truth, classes,
                              title=f"{' + '.join(p.name for p in prods)} - {crop.width}x{crop.height} px")
    cli.save_config(out, "scene_prep", extra={"radiometry": radiometry, "reference": reference.describe()})


# What the outputs depend on: an unchanged re-run reuses them (--force redoes it).
CONFIG_KEYS = ("SCENE_PATH", "BANDS", "RESOLUTION", "TARGET_CRS", "HARMONIZE", "SCENE_OFFSET", "MASK_CLOUDS",
               "MASK_SCL_CLASSES", "CLOUD_THRESHOLD", "CLOUD_DILATION_M", "MAX_CLOUD_SHARE", "EVAL_LABELS_PATH",
               "EVAL_LABEL_VOCAB", "EVAL_LABEL_ATTRIBUTE", "EVAL_CROSSWALK", "AOI", "LABELS_PATH", "LABEL_ATTRIBUTE",
               "LABEL_LAYER", "LABEL_VOCAB", "MIN_LABEL_COVERAGE", "N_POINTS", "POINTS_FORMAT", "SAVE_PATCHES",
               "PATCH_SIZE",
               "SEGMENT", "SEG_DIR", "SEG_SCALE", "SEG_SCALES", "SEG_SIGMA", "SEG_MIN_SIZE", "SEG_INPUT", "SEG_TYPE_BAND",
               "SEG_PERCENTILES", "SEG_MAX_MEMORY_GB", "STRETCH_PERCENTILES", "SEED", "PREP_DIR", "DEMO_DIR",
               "DEMO_EXTENT")


def inputs() -> list[Path]:
    aoi_file = [Path(config.AOI)] if isinstance(config.AOI, (str, Path)) else []
    local = [Path(p) for p in scene_paths() if "://" not in str(p)]
    eval_path = demo.second_reference(config.EVAL_LABELS_PATH, config.LABELS_PATH, config.DEMO_DIR)
    second = [Path(p) for p in (eval_path, config.EVAL_CROSSWALK) if p is not None]
    return [*local, Path(config.LABELS_PATH), *aoi_file, *second]


def main(argv: list[str] | None = None) -> int:
    return cli.run_stage(run, __doc__, argv, cli.Reuse(CONFIG_KEYS, inputs, lambda: Path(config.PREP_DIR)))


if __name__ == "__main__":
    sys.exit(main())
