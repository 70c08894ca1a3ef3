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
With SEGMENT_SCENES = True, also each scene of PREDICT_SCENES (read in PREDICT_AOI as scene_prep.py
reads the training product: BANDS, RESOLUTION, HARMONIZE, the cloud mask), whole,
one scene per task (on Dask with SCHEDULER; Felzenszwalb is not tiled, since tiles
would change the segments, and a scene beyond SEG_MAX_MEMORY_GB is refused), its
types from its own segment means' percentiles, into SEG_DIR/scenes/<scene id>/:
    segments.tif, segment_types.tif, segments.gpkg, segments.png,
    segments_summary.json, done.json (written last; a re-run skips stamped scenes)
Config keys: PREP_DIR, POINTS_FORMAT, SEG_DIR, SEG_SCALE, SEG_SCALES, SEG_SIGMA, SEG_MIN_SIZE,
    SEG_INPUT, SEG_TYPE_BAND, SEG_PERCENTILES, SEG_MAX_MEMORY_GB, STRETCH_PERCENTILES;
    SEGMENT_SCENES, PREDICT_SCENES, PREDICT_AOI, SCHEDULER, DASK_WORKERS and the
    scene keys (BANDS, RESOLUTION, HARMONIZE, SCENE_OFFSET, MASK_CLOUDS, MASK_SCL_CLASSES,
    CLOUD_THRESHOLD, CLOUD_DILATION_M).
Run:
    python segment.py [--set SEG_INPUT=reflectance ...]
"""

import logging
import sys
from pathlib import Path

import config
from landcover import cli, cluster, plots, rasters, sampling, scene_maps, segmentation

log = logging.getLogger("segment")


def run() -> None:
    seg = segmentation.settings_from(config)
    prep, out = Path(config.PREP_DIR), Path(config.SEG_DIR)
    if config.PREDICT_SCENES and config.SEGMENT_SCENES:  # other scenes, each whole in one task
        segment_scenes(seg, out / "scenes")
        if not (prep / "scene.tif").exists():
            log.info("no prepared AOI in %s: only PREDICT_SCENES segmented", prep)
            return
    segment_aoi(seg, prep, out)


def segment_scenes(seg: dict, out: Path) -> None:
    """PREDICT_SCENES: each scene read as scene_prep.py reads the training product, segmented whole."""
    with cluster.client_or_none(config.SCHEDULER, config.DASK_WORKERS) as client:
        segmentation.segment_scenes(list(config.PREDICT_SCENES), scene_maps.settings_from(config), seg, out,
                                    tuple(config.STRETCH_PERCENTILES), client)


def segment_aoi(seg: dict, prep: Path, out: Path) -> None:
    """The training AOI's segmentation, the segment types of its points and the scale sweep."""
    scene, profile = rasters.read_geotiff(prep / "scene.tif")
    names = rasters.band_names(prep / "scene.tif")
    points = sampling.read_points(prep / f"points.{config.POINTS_FORMAT}")
    valid = sampling.valid_mask(scene, profile["nodata"])
    truecolor = plots.composite(scene, names, ("B04", "B03", "B02"), valid, tuple(config.STRETCH_PERCENTILES))
    points = segmentation.segment_aoi(out, scene, profile, names, valid, points, seg,
                                      segmentation.sweep_entries(config.SEG_SCALES, config.SEG_MIN_SIZE), truecolor)
    sampling.write_points(points, out / f"points.{config.POINTS_FORMAT}")
    cli.save_config(out, "segment")


CONFIG_KEYS = ("PREP_DIR", "POINTS_FORMAT", "SEG_DIR", "SEG_SCALE", "SEG_SCALES", "SEG_SIGMA", "SEG_MIN_SIZE", "SEG_INPUT",
               "SEG_TYPE_BAND", "SEG_PERCENTILES", "SEG_MAX_MEMORY_GB", "STRETCH_PERCENTILES", "SEGMENT_SCENES",
               "PREDICT_SCENES", "PREDICT_AOI", "BANDS", "RESOLUTION", "HARMONIZE", "SCENE_OFFSET", "MASK_CLOUDS",
               "MASK_SCL_CLASSES", "CLOUD_THRESHOLD", "CLOUD_DILATION_M")


def inputs() -> list[Path]:
    prep = Path(config.PREP_DIR)
    scenes = [Path(p) for p in config.PREDICT_SCENES if "://" not in str(p)]
    return [prep / "scene.tif", prep / f"points.{config.POINTS_FORMAT}", *scenes]


def main(argv: list[str] | None = None) -> int:
    return cli.run_stage(run, __doc__, argv, cli.Reuse(CONFIG_KEYS, inputs, lambda: Path(config.SEG_DIR)))


if __name__ == "__main__":
    sys.exit(main())
