"""Benchmark scene_prep.py at the study's scale: the study AOI (about 4000 x 1100
pixels) and 400,000 points, on a demo scene generated over the whole study AOI.

Prints the generator's time, then scene_prep's wall time and peak memory
(measured in a child process). Goals: under 60 s and under 2 GB on 2 cores.

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
        f = prepare(Path(tmp))
        with rasterio.open(f["prep_dir"] / "scene.tif") as src:
            size = f"{src.width} x {src.height}"
        print(f"demo generation over the study extent: {f['demo_s']:.1f} s")
        print(f"scene_prep, study AOI ({size} px), {f['n_points']} points: {f['prep_s']:.1f} s wall "
              f"(goal < 60 s), peak memory {f['prep_peak_mb']:.0f} MB (goal < 2048 MB)")


if __name__ == "__main__":
    main()
