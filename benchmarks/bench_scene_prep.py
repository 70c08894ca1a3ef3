"""Benchmark scene_prep.py at the study's scale: the study AOI (about 4000 x 1100
pixels) and 400,000 points, on a demo scene generated over the whole study AOI.

Prints the generator's time, then scene_prep's wall time and peak memory
(measured in a child process). Goals: under 60 s and under 2 GB on 2 cores.

Run:  .venv/bin/python benchmarks/bench_scene_prep.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import config  # noqa: E402
from landcover import demo  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="write the data here instead of a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        west, south, east, north = config.STUDY_AOI
        extent = (west - 0.01, south - 0.005, east + 0.01, north + 0.005)
        start = time.perf_counter()
        paths = demo.write_demo(work / "demo", config.SEED, extent)
        print(f"demo generation over the study extent: {time.perf_counter() - start:.1f} s")

        cmd = [sys.executable, str(ROOT / "scene_prep.py"), "--preset", "paper",
               "--set", f"SCENE_PATH={paths.product}", "--set", f"LABELS_PATH={paths.clc_vector}",
               "--set", f"PREP_DIR={work / 'prepared'}"]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        with open(work / "prepared" / "scene_prep_config.json") as fh:
            n_points = __import__("json").load(fh)["N_POINTS"]
        import rasterio
        with rasterio.open(work / "prepared" / "scene.tif") as src:
            size = f"{src.width} x {src.height}"
        print(f"scene_prep, study AOI ({size} px), {n_points} points: "
              f"{wall:.1f} s wall (goal < 60 s), peak memory {peak_mb:.0f} MB (goal < 2048 MB)")


if __name__ == "__main__":
    main()
