"""Shared by the benchmarks: the demo scene over the whole study AOI, prepared
by scene_prep.py at the study's scale (``--preset paper``: 400,000 points)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import config  # noqa: E402
from landcover import demo  # noqa: E402


def run_scene_prep(scene_path, labels_path: Path, prep_dir: Path) -> tuple[float, float]:
    """scene_prep.py at the paper preset in a child process: (wall seconds, peak MB of that child)."""
    cmd = [sys.executable, str(ROOT / "scene_prep.py"), "--preset", "paper",
           "--set", f"SCENE_PATH={scene_path}", "--set", f"LABELS_PATH={labels_path}", "--set", f"PREP_DIR={prep_dir}"]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise RuntimeError(f"scene_prep.py failed ({status}): {' '.join(cmd)}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def split_product(product: Path, out: Path) -> list[Path]:
    """Two overlapping products cut from one: the western and the eastern 60 % of every band, SCL and metadata.

    As two adjacent tiles of one UTM zone overlap (about 10 km), the middle fifth is in both.
    """
    import rasterio
    from rasterio.windows import Window

    halves = []
    for name, tile, (lo, hi) in (("west", "T30UWC", (0.0, 0.6)), ("east", "T30UXC", (0.4, 1.0))):
        safe = out / product.name.replace("T30UWC", tile)
        for jp2 in sorted(product.rglob("*.jp2")):
            target = safe / jp2.relative_to(product)
            target.parent.mkdir(parents=True, exist_ok=True)
            with rasterio.open(jp2) as src:  # JPEG2000 as the original, so that reading costs the same
                window = Window(round(lo * src.width), 0, round((hi - lo) * src.width), src.height)
                with rasterio.open(target, "w", driver="JP2OpenJPEG", width=int(window.width), height=src.height,
                                   count=1, dtype=src.dtypes[0], crs=src.crs, transform=src.window_transform(window),
                                   nodata=0, QUALITY=100, REVERSIBLE="YES", RESOLUTIONS=1) as dst:
                    dst.write(src.read(window=window))
        shutil.copy(product / "MTD_MSIL2A.xml", safe / "MTD_MSIL2A.xml")
        halves.append(safe)
    return halves


def prepare(work: Path, two_products: bool = False) -> dict:
    """Generate the study-sized demo scene in ``work`` and run scene_prep.py on it.

    Args:
        two_products: also prepare the same AOI from two overlapping products.

    Returns:
        Figures: ``demo_s``, ``prep_s``, ``prep_peak_mb`` (the child process),
        ``n_points``, ``prep_dir``; with ``two_products`` also ``two_s``,
        ``two_peak_mb``, ``two_dir``.
    """
    west, south, east, north = config.STUDY_AOI
    start = time.perf_counter()
    # in a child process: a parent grown by the generator would pass its memory on to the forked children
    extent = (west - 0.01, south - 0.005, east + 0.01, north + 0.005)
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from pathlib import Path; from landcover import demo; "
            f"demo.write_demo(Path({str(work / 'demo')!r}), {config.SEED}, {extent})")
    subprocess.run([sys.executable, "-c", code], check=True,
                   stderr=subprocess.DEVNULL)
    paths = demo.demo_paths(work / "demo")
    demo_s = time.perf_counter() - start
    prep_s, peak_mb = run_scene_prep(paths.product, paths.clc_vector, work / "prepared")
    n_points = json.loads((work / "prepared" / "scene_prep_config.json").read_text())["N_POINTS"]
    figures = {"demo_s": demo_s, "prep_s": prep_s, "prep_peak_mb": peak_mb, "n_points": n_points,
               "prep_dir": work / "prepared"}
    if two_products:
        pair = split_product(paths.product, work / "two")
        two_s, two_peak = run_scene_prep(str([str(p) for p in pair]), paths.clc_vector, work / "prepared_two")
        figures.update(two_s=two_s, two_peak_mb=two_peak, two_dir=work / "prepared_two")
    return figures
