"""Benchmark whole-scene prediction and training of the patch CNN on 2 cores.

On the same model (the study's 7x7 CNN, weights as initialised: speed does
not depend on them) and the same crop of the prepared demo scene:
  - the study's method: each row's patches, model.predict(batch_size=1);
  - model.predict on pre-cut patches in large batches (the ceiling);
  - test_patches' predictor (windows cut tile by tile, large batches);
  - memory allocated while predicting a small and a 10x larger crop (child processes);
  - the "valid" variant, per patch vs fully convolutional, for 7, 15 and 61 px;
  - training patches per second (one epoch of 7x7).
Goals: predictor >= 10x the study's method, >= 70 % of pre-cut throughput,
peak memory independent of the crop size.

Run:  .venv/bin/python benchmarks/bench_predict.py   (needs data/prepared from scene_prep.py)
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import resource  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import config  # noqa: E402
from landcover import inference, models, patch_data, rasters  # noqa: E402


def scene_crop(rows: int):
    scene, _ = rasters.read_geotiff(Path(config.PREP_DIR) / "scene.tif")
    scene = scene[:, 100:100 + rows, :]
    return scene, scene.mean(axis=(1, 2)), scene.std(axis=(1, 2))


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def memory_child(rows: int) -> None:
    """Child process: predict a crop of ``rows`` rows; print the peak of the arrays
    allocated during prediction (tracemalloc sees numpy's) and the process's peak RSS, in MB."""
    import tracemalloc

    scene, mean, std = scene_crop(rows)
    model = models.build_patch_cnn(7, 4, 13)
    padded = patch_data.normalised_padded(scene, mean, std, 7)
    valid = np.ones(scene.shape[1:], bool)
    tracemalloc.start()
    prediction, confidence = inference.map_from_tiles(inference.window_tiles(model, padded, 7, valid, tile_mb=64),
                                                      valid.shape, np.arange(13), valid)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    maps = (prediction.nbytes + confidence.nbytes) / 2**20
    print(f"{peak:.0f} {maps:.1f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


def main() -> None:
    models.seed_keras(config.SEED, False)
    scene, mean, std = scene_crop(60)
    n_classes = 13
    model = models.build_patch_cnn(7, 4, n_classes)
    padded = patch_data.normalised_padded(scene, mean, std, 7)
    valid = np.ones(scene.shape[1:], bool)
    view = patch_data.windows(padded, 7)
    model.predict_on_batch(np.ascontiguousarray(view[0, :64]))  # trace once

    px, secs = timed(inference.predict_rows_batch1, model, padded, 7, 2)
    study = px / secs
    print(f"study's method (row by row, batch size 1): {study:,.0f} px/s")
    precut = np.ascontiguousarray(view.reshape(-1, 7, 7, 4))
    _, secs = timed(model.predict, precut, batch_size=2048, verbose=0)
    ceiling = precut.shape[0] / secs
    print(f"model.predict on pre-cut patches, batch 2048: {ceiling:,.0f} px/s")
    _, secs = timed(inference.predict_windows, model, padded, 7, valid, batch_size=2048)
    ours = valid.sum() / secs
    print(f"test_patches predictor (tiles, batch 2048): {ours:,.0f} px/s = {ours / study:.0f}x the study's method, "
          f"{ours / ceiling:.0%} of pre-cut")

    for rows in (60, 600):
        out = subprocess.run([sys.executable, __file__, "--memory", str(rows)], capture_output=True, text=True, check=True)
        peak, output, rss = out.stdout.split()
        print(f"predicting a {rows} x {scene.shape[2]} crop: peak of arrays allocated while predicting {peak} MB, "
              f"of which the class and confidence maps {output} MB (process peak RSS {rss} MB)")

    for p in (7, 15, 61):
        m = models.build_patch_cnn(p, 4, n_classes, padding="valid")
        fcn = models.fully_convolutional(m)
        pad = patch_data.normalised_padded(scene[:, :40], mean, std, p)
        sub = np.ones((40, scene.shape[2]), bool)
        v = patch_data.windows(pad, p)
        sample = np.ascontiguousarray(v[:4].reshape(-1, p, p, 4))[: 2048 if p < 61 else 256]
        m.predict(sample[:8], verbose=0)
        _, secs = timed(m.predict, sample, batch_size=256, verbose=0)
        per_patch = len(sample) / secs
        inference.predict_fully_convolutional(fcn, pad[: 2 + p], p, sub[:2])  # trace once
        _, secs = timed(inference.predict_fully_convolutional, fcn, pad, p, sub)
        full = sub.sum() / secs
        print(f"valid {p:2d}x{p:<2d}: per patch (batched) {per_patch:,.0f} px/s, fully convolutional "
              f"{full:,.0f} px/s ({full / per_patch:.1f}x)")

    rng = np.random.default_rng(0)
    rows_, cols_ = rng.integers(0, scene.shape[1], 4096), rng.integers(0, scene.shape[2], 4096)
    labels = rng.integers(0, n_classes, 4096)
    data = patch_data.patch_dataset(padded, 7, rows_, cols_, labels, 128, shuffle=True)
    model.fit(data, epochs=1, verbose=0)  # trace
    _, secs = timed(model.fit, data, epochs=1, verbose=0)
    print(f"training 7x7: {4096 / secs:,.0f} patches/s")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--memory":
        memory_child(int(sys.argv[2]))
    else:
        main()
