"""Benchmark the segmentation at the study's scale: Felzenszwalb on the study AOI
(about 4000 x 1100 pixels, demo scene) and the segment-type look-up of 400,000
points (the study matched every point against every polygon).

Prints segment counts and times for the input scalings, the statistics time,
and the look-up time.

Run:  .venv/bin/python benchmarks/bench_segment.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository

import tempfile  # noqa: E402
import time

import config
from landcover import rasters, sampling, segmentation
from study_scene import prepare


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        prep = prepare(Path(tmp))["prep_dir"]
        scene, profile = rasters.read_geotiff(prep / "scene.tif")
        names = rasters.band_names(prep / "scene.tif")
        points = sampling.read_points(prep / "points.parquet")
        valid = sampling.valid_mask(scene, profile["nodata"])
        print(f"study AOI: {scene.shape[2]} x {scene.shape[1]} px, {valid.sum():,} valid, {len(points):,} points")
        for scaling in segmentation.SCALINGS:
            start = time.perf_counter()
            ids = segmentation.segment(scene, valid, config.SEG_SCALE, config.SEG_SIGMA, config.SEG_MIN_SIZE, scaling)
            print(f"Felzenszwalb (scale {config.SEG_SCALE}, sigma {config.SEG_SIGMA}, min_size {config.SEG_MIN_SIZE}), "
                  f"input {scaling:<11}: {ids.max():6,} segments in {time.perf_counter() - start:5.1f} s")
        ids = segmentation.segment(scene, valid, config.SEG_SCALE, config.SEG_SIGMA, config.SEG_MIN_SIZE, "raw")
        start = time.perf_counter()
        stats = segmentation.segment_stats(scene, ids, names)
        types, _ = segmentation.segment_types(segmentation.segment_means(stats, names))
        print(f"statistics and types of {len(stats):,} segments: {time.perf_counter() - start:.2f} s")
        start = time.perf_counter()
        segmentation.add_segment_columns(points, ids, types)
        print(f"segment-type look-up of {len(points):,} points: {1000 * (time.perf_counter() - start):.1f} ms")


if __name__ == "__main__":
    main()
