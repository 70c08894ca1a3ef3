"""Benchmark scene_prep.py at the study's scale: the study AOI (about 4000 x 1100
pixels) and 400,000 points, on a demo scene generated over the whole study AOI
(baseline 05.00 with its -1000 offset, a cloud and an SCL: harmonisation and
the cloud mask are on).

Prints the generator's time, then scene_prep's wall time and peak memory
(measured in a child process) for one product, and for the same AOI mosaicked
from two overlapping products (the western and eastern 60 % of the scene, as
two adjacent tiles). Goals: one product under 60 s and 2 GB; two products
under 2x the one-product time and under 2 GB; the two give the same scene.

Run:  .venv/bin/python benchmarks/bench_scene_prep.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository

import tempfile  # noqa: E402

import rasterio

from study_scene import prepare


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        f = prepare(Path(tmp), two_products=True)
        with rasterio.open(f["prep_dir"] / "scene.tif") as one, rasterio.open(f["two_dir"] / "scene.tif") as two:
            size = f"{one.width} x {one.height}"
            same = one.shape == two.shape and (one.read() == two.read()).all()
        print(f"demo generation over the study extent: {f['demo_s']:.1f} s")
        print(f"scene_prep, study AOI ({size} px), {f['n_points']} points, one product: {f['prep_s']:.1f} s wall "
              f"(goal < 60 s), peak memory {f['prep_peak_mb']:.0f} MB (goal < 2048 MB)")
        print(f"scene_prep, same AOI from two overlapping products: {f['two_s']:.1f} s wall = "
              f"{f['two_s'] / f['prep_s']:.2f}x one product (goal < 2x), peak memory {f['two_peak_mb']:.0f} MB "
              f"(goal < 2048 MB); same scene.tif as one product: {same}")


if __name__ == "__main__":
    main()
