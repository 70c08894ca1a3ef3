"""Shared by the benchmarks: the demo scene over the whole study AOI, prepared
by scene_prep.py at the study's scale (``--preset paper``: 400,000 points)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import config  # noqa: E402
from landcover import demo  # noqa: E402


def prepare(work: Path) -> dict:
    """Generate the study-sized demo scene in ``work`` and run scene_prep.py on it.

    Returns:
        Figures: ``demo_s``, ``prep_s``, ``prep_peak_mb`` (the child process),
        ``n_points``, ``prep_dir``.
    """
    west, south, east, north = config.STUDY_AOI
    start = time.perf_counter()
    paths = demo.write_demo(work / "demo", config.SEED, (west - 0.01, south - 0.005, east + 0.01, north + 0.005))
    demo_s = time.perf_counter() - start
    cmd = [sys.executable, str(ROOT / "scene_prep.py"), "--preset", "paper",
           "--set", f"SCENE_PATH={paths.product}", "--set", f"LABELS_PATH={paths.clc_vector}",
           "--set", f"PREP_DIR={work / 'prepared'}"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    prep_s = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    n_points = json.loads((work / "prepared" / "scene_prep_config.json").read_text())["N_POINTS"]
    return {"demo_s": demo_s, "prep_s": prep_s, "prep_peak_mb": peak_mb, "n_points": n_points,
            "prep_dir": work / "prepared"}
