"""Benchmark whole-scene prediction in-process against a Dask LocalCluster of 1 and 2 workers.

A scene of --sizes (square, px; the prepared demo scene tiled to that size)
is predicted with the demo's best 7x7 model (models/patch_cnn_random_7.keras,
from patches.py): in this process (test_patches' path), then on a LocalCluster
of 1 and of 2 worker processes (one thread each; PREDICT_CHUNK chunks). Printed
per size and engine: wall time with and without the cluster's start, pixels
per second, peak memory of the process or of each worker, and whether the map
equals the in-process one; then a projection for N workers from the measured
per-worker rate. Goals: 2 workers >= 0.9x the in-process throughput on 2 cores,
per-worker memory flat in scene size, identical maps.

Run:  .venv/bin/python benchmarks/bench_scale.py [--sizes 1024 2048] [--chunk 256]
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import config  # noqa: E402
from landcover import cluster, inference, models, patch_data, rasters  # noqa: E402


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM: its own, not inherited from the process that started it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scene_of(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The prepared demo scene (nodata filled) tiled to size x size; all pixels valid."""
    scene, _, _ = rasters.read_scene_filled(Path(config.PREP_DIR) / "scene.tif")
    reps = (1, -(-size // scene.shape[1]), -(-size // scene.shape[2]))
    return np.tile(scene, reps)[:, :size, :size], np.ones((size, size), bool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--model", default=str(Path(config.MODELS_DIR) / "patch_cnn_random_7.keras"))
    args = parser.parse_args()
    model, meta = models.load_model(args.model)
    p, codes = meta["patch_size"], np.array([c["code"] for c in meta["classes"]])
    rates = {}
    for size in args.sizes:
        scene, valid = scene_of(size)
        padded = patch_data.normalised_padded(scene, meta["mean"], meta["std"], p)
        start = time.perf_counter()
        expected, _ = inference.map_from_tiles(
            inference.window_tiles(model, padded, p, valid, batch_size=config.PREDICT_BATCH,
                                   tile_mb=config.PREDICT_TILE_MB, progress=False), valid.shape, codes, valid)
        seconds = time.perf_counter() - start
        rates[(size, "in-process")] = valid.size / seconds
        print(f"{size}x{size} ({valid.size:,} px), in-process: {seconds:.1f} s, {valid.size / seconds:,.0f} px/s, "
              f"peak {_peak_mb():,.0f} MB (this process)", flush=True)
        for workers in (1, 2):
            start = time.perf_counter()
            with cluster.connect("local", workers) as client:
                started = time.perf_counter()
                got, _ = cluster.predict_map(client, Path(args.model), padded, valid, codes, p,
                                             fully_convolutional=meta.get("padding") == "valid", chunk=args.chunk,
                                             batch_size=config.PREDICT_BATCH, tile_mb=config.PREDICT_TILE_MB,
                                             scratch=Path(config.PREDICT_DIR) / "bench_scale")
                done = time.perf_counter()
                peaks = client.run(_peak_mb)
            rate = valid.size / (done - started)
            rates[(size, workers)] = rate
            print(f"{size}x{size}, LocalCluster {workers} worker(s), chunks {args.chunk}: {done - started:.1f} s "
                  f"predicting ({done - start:.1f} s with the cluster's start), {rate:,.0f} px/s "
                  f"({rate / rates[(size, 'in-process')]:.2f}x in-process), peak per worker "
                  f"{', '.join(f'{v:,.0f}' for v in peaks.values())} MB, identical map: {np.array_equal(got, expected)}",
                  flush=True)
    largest = max(args.sizes)
    per_worker = rates[(largest, 1)]
    tile = 10980 * 10980
    print(f"\nprojection from {per_worker:,.0f} px/s per worker (one core each, {largest}x{largest}): a whole "
          f"10980 x 10980 tile in " + ", ".join(f"{n} workers {tile / (n * per_worker) / 60:.1f} min"
                                                 for n in (2, 8, 32, 128)))


if __name__ == "__main__":
    main()
