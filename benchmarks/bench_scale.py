"""Benchmark the whole-scene path of PREDICT_SCENES in-process against a Dask LocalCluster of 1 and 2 workers.

For each --sizes (square, px) a product is generated: a folder of four band
GeoTIFFs (B02, B03, B04, B08, uint16, 10 m) holding the prepared demo scene
tiled to that size (benchmarks/out/scale/<size>/). It is mapped exactly as
``test_patches.py --set "PREDICT_SCENES=[...]"`` maps a product
(landcover/scene_maps.py: chunks of --chunk px, each reading its own window of
the product, prepared and predicted where it runs, written as it arrives, COG
outputs): in this process, then on a LocalCluster of 1 and of 2 worker
processes (one thread each). Each engine runs in a subprocess of its own, so
peak memory is its own. Printed per size and engine: wall time with and without
the cluster's start, pixels per second, peak memory of the process and of each
worker, and whether prediction.tif equals the in-process one; then a projection
for N workers from the measured per-worker rate. Goals: 2 workers >= 0.9x the
in-process throughput on 2 cores, per-worker memory flat in scene size (< 2 GB),
identical maps.

The default model is the demo's best 7x7 CNN (models/patch_cnn_random_7.keras,
from patches.py); --model takes another, e.g. a CNN_PADDING="valid" one, which is
predicted fully convolutionally (the fast path for whole tiles: --sizes 10980).

Run:  .venv/bin/python benchmarks/bench_scale.py [--sizes 2048 4096] [--chunk 1024] [--engines local0 1 2]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repository
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from affine import Affine  # noqa: E402

import config  # noqa: E402
from landcover import rasters  # noqa: E402

OUT = ROOT / "benchmarks" / "out" / "scale"
BANDS = ["B02", "B03", "B04", "B08"]


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_product(size: int) -> Path:
    """A band-file product of size x size px: the prepared demo scene tiled (all pixels valid)."""
    folder = OUT / str(size) / f"S2X_MSIL2A_BENCH_{size}"
    if all((folder / f"T30UWC_{b}_10m.tif").exists() for b in BANDS):
        return folder
    scene, profile, _ = rasters.read_scene_filled(Path(config.PREP_DIR) / "scene.tif")
    reps = (1, -(-size // scene.shape[1]), -(-size // scene.shape[2]))
    tiled = np.clip(np.tile(scene, reps)[:, :size, :size], 1, None).astype(np.uint16)  # DN 0 is nodata
    t = profile["transform"]
    folder.mkdir(parents=True, exist_ok=True)
    for i, band in enumerate(BANDS):
        with rasterio.open(folder / f"T30UWC_{band}_10m.tif", "w", driver="GTiff", width=size, height=size, count=1,
                           dtype="uint16", crs=profile["crs"], transform=Affine(t.a, 0, t.c, 0, t.e, t.f), nodata=0,
                           tiled=True, blockxsize=512, blockysize=512, compress="deflate") as dst:
            dst.write(tiled[i], 1)
    return folder


def one_run(product: Path, engine: str, model_path: str, chunk: int, out: Path) -> dict:
    """Map ``product`` with ``engine`` ("in-process" or a number of workers); this process's figures."""
    from landcover import cluster, legend, models, scene_maps

    config.MASK_CLOUDS = False  # a band folder carries no mask
    model, meta = models.load_model(model_path)
    classes = legend.classes_from_json(meta["classes"])
    codes = np.array([c.code for c in classes])
    settings = scene_maps.preparation(meta, config) | {"MASK_CLOUDS": False}
    kwargs = dict(chunk=chunk, batch_size=config.PREDICT_BATCH, tile_mb=config.PREDICT_TILE_MB, probabilities=None)
    begin = time.perf_counter()
    if engine == "in-process":
        start = time.perf_counter()
        scene_maps.predict_scenes([product], Path(model_path), model, meta, settings, codes, legend.colormap(classes),
                                  [c.name for c in classes], out, **kwargs)
        done, workers = time.perf_counter(), {}
    else:
        with cluster.connect("local", int(engine)) as client:
            start = time.perf_counter()
            scene_maps.predict_scenes([product], Path(model_path), None, meta, settings, codes,
                                      legend.colormap(classes), [c.name for c in classes], out, client=client,
                                      **kwargs)
            done = time.perf_counter()
            workers = client.run(_peak_mb)
    return {"seconds": done - start, "with_start": done - begin, "peak_mb": _peak_mb(),
            "workers_mb": list(workers.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--engines", nargs="+", default=["in-process", "1", "2"])
    parser.add_argument("--model", default=str(Path(config.MODELS_DIR) / "patch_cnn_random_7.keras"))
    parser.add_argument("--one", nargs=3, metavar=("PRODUCT", "ENGINE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child: one engine on one product
        print(json.dumps(one_run(Path(args.one[0]), args.one[1], args.model, args.chunk, Path(args.one[2]))))
        return
    rates = {}
    for size in args.sizes:
        product = make_product(size)
        maps = {}
        for engine in args.engines:
            out = OUT / str(size) / f"maps_{engine}"
            for old in out.rglob("done.json"):
                old.unlink()  # map again, not skip
            child = subprocess.run([sys.executable, __file__, "--model", args.model, "--chunk", str(args.chunk),
                                    "--one", str(product), engine, str(out)], capture_output=True, text=True)
            if child.returncode:
                sys.exit(f"{engine} on {size}x{size} failed:\n{child.stderr[-3000:]}")
            got = json.loads(child.stdout.strip().splitlines()[-1])
            with rasterio.open(out / product.name / "prediction.tif") as src:
                maps[engine] = src.read(1)
            rate = size * size / got["seconds"]
            rates[(size, engine)] = rate
            first = args.engines[0]
            same = np.array_equal(maps[engine], maps[first])
            workers = (f", peak per worker {', '.join(f'{v:,.0f}' for v in got['workers_mb'])} MB"
                       if got["workers_mb"] else "")
            print(f"{size}x{size} ({size * size:,} px), {engine if engine == 'in-process' else engine + ' worker(s)'}"
                  f", chunks {args.chunk}: {got['seconds']:.1f} s ({got['with_start']:.1f} s with the start), "
                  f"{rate:,.0f} px/s ({rate / rates[(size, first)]:.2f}x {first}), peak {got['peak_mb']:,.0f} MB "
                  f"(the stage's process){workers}, prediction.tif equal to {first}'s: {same}", flush=True)
    largest = max(args.sizes)
    if (largest, "1") in rates:
        per_worker = rates[(largest, "1")]
        tile = 10980 * 10980
        print(f"\nprojection from {per_worker:,.0f} px/s per worker (one core each, {largest}x{largest}): a whole "
              f"10980 x 10980 tile in " + ", ".join(f"{n} workers {tile / (n * per_worker) / 60:.1f} min"
                                                     for n in (2, 8, 32, 128)))


if __name__ == "__main__":
    main()
