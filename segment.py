"""Stage 2: Felzenszwalb segmentation of the prepared scene, segment types, points' types.

The scene is segmented with scikit-image's Felzenszwalb algorithm (SEG_SCALE,
SEG_SIGMA, SEG_MIN_SIZE) on one documented input scaling (SEG_INPUT; the
study's int16 by default); nodata is excluded. Each segment's mean (over all
bands, or SEG_TYPE_BAND) is ranked against percentiles of all segment means
(SEG_PERCENTILES) into segment types 1..6, and every sampled point gets its
segment's type by raster look-up.

Inputs (PREP_DIR, from scene_prep.py):
    scene.tif, points.parquet (or .csv)
Outputs (SEG_DIR):
    segments.tif         segment ids, int32, 0 = nodata, aligned with scene.tif
    segment_types.tif    segment type per pixel, uint8 1..6, colour table
    segments.gpkg        layer "segments": polygons with segment, type, count and
                         min/mean/max/median of every band
    segments.png         segment boundaries over the true-colour render
    points.parquet       the points table plus "segment" (id) and "segment_type", and
                         for each SEG_SCALES entry its type, segment_type_s<scale>_m<min size>
    scale_sweep.csv/.md  per SEG_SCALES entry: segments and median segment size (px, ha)
    segments_summary.json  segment count, median size, count per type
    segment_config.json  the effective configuration
Config keys: PREP_DIR, POINTS_FORMAT, SEG_DIR, SEG_SCALE, SEG_SCALES, SEG_SIGMA, SEG_MIN_SIZE,
    SEG_INPUT, SEG_TYPE_BAND, SEG_PERCENTILES, SEG_MAX_MEMORY_GB, STRETCH_PERCENTILES.
Run:
    python segment.py [--set SEG_INPUT=reflectance ...]
"""

import logging
import sys
from pathlib import Path

import config
from landcover import cli, evaluation, plots, rasters, sampling, segmentation

log = logging.getLogger("segment")


def run() -> None:
    seg = segmentation.settings_from(config)
    prep, out = Path(config.PREP_DIR), Path(config.SEG_DIR)
    scene, profile = rasters.read_geotiff(prep / "scene.tif")
    names = rasters.band_names(prep / "scene.tif")
    points = sampling.read_points(prep / f"points.{config.POINTS_FORMAT}")
    valid = sampling.valid_mask(scene, profile["nodata"])

    ids, stats, types = segmentation.segment_scene(scene, valid, names, **seg)
    points = segmentation.add_segment_columns(points, ids, types)
    truecolor = plots.composite(scene, names, ("B04", "B03", "B02"), valid, tuple(config.STRETCH_PERCENTILES))

    entries = segmentation.sweep_entries(config.SEG_SCALES, config.SEG_MIN_SIZE)
    points, summary = segmentation.sweep(scene, valid, names, points, entries, seg)
    if not summary.empty:
        pixel_ha = abs(profile["transform"].a * profile["transform"].e) / 10_000
        summary["median_size_ha"] = summary["median_size_px"] * pixel_ha
        evaluation.write_table(summary, out / "scale_sweep", "Segmentation scales swept (SEG_SCALES)")
        log.info("scale sweep: %s", "; ".join(f"scale {r.scale:g}, min size {r.min_size}: {r.segments} segments, "
                                               f"median {r.median_size_ha:.2f} ha" for r in summary.itertuples()))

    segmentation.write_outputs(out, ids, stats, types, profile, truecolor, len(seg["percentiles"]) + 1)
    sampling.write_points(points, out / f"points.{config.POINTS_FORMAT}")
    cli.save_config(out, "segment")


CONFIG_KEYS = ("PREP_DIR", "POINTS_FORMAT", "SEG_DIR", "SEG_SCALE", "SEG_SCALES", "SEG_SIGMA", "SEG_MIN_SIZE", "SEG_INPUT",
               "SEG_TYPE_BAND", "SEG_PERCENTILES", "SEG_MAX_MEMORY_GB", "STRETCH_PERCENTILES")


def inputs() -> list[Path]:
    prep = Path(config.PREP_DIR)
    return [prep / "scene.tif", prep / f"points.{config.POINTS_FORMAT}"]


def main(argv: list[str] | None = None) -> int:
    return cli.run_stage(run, __doc__, argv, cli.Reuse(CONFIG_KEYS, inputs, lambda: Path(config.SEG_DIR)))


if __name__ == "__main__":
    sys.exit(main())
