"""Maps of other scenes (``PREDICT_SCENES``): prepared as the training scene was, predicted by chunks, mosaicked.

Each scene (a product folder or a STAC item) is mapped on ``PREDICT_AOI``'s
window of its own grid (None: the whole product), in its own UTM zone, with the
training scene's bands, resolution, harmonisation and cloud mask (taken from
the model's metadata). It is cut into ``PREDICT_CHUNK`` chunks, and each chunk
is one task (in this process, or on Dask with the model loaded once per worker)
that reads only its window of the product plus a margin, prepares it exactly as
test_patches.py prepares ``scene.tif`` (nodata filled from the nearest valid
pixel, normalised with the model's band means, symmetric padding at the
scene's edges) and predicts it: the labels are those of the whole scene
prepared at once, and the memory a task needs is bounded by the chunk, whatever
the scene's size. The stage's process writes each chunk as it arrives into
tiled GeoTIFFs that end as Cloud-Optimised GeoTIFFs::

    PREDICT_DIR/<model>/<scene id>/prediction.tif    CLC codes, colour table
                                   confidence.tif    highest probability
                                   probabilities.tif with WRITE_PROBABILITIES
                                   done.json         the stamp, written last
    PREDICT_DIR/<model>/mosaic.vrt, confidence_mosaic.vrt

Nothing is written under a final name before it is complete, and ``done.json``
(the settings, the model file and the outputs' sizes) is written last: a run
restarted with the same settings skips the scenes whose stamp matches. On Dask
the chunks of at most ``PREDICT_SCENES_IN_FLIGHT`` scenes are queued at a time
(a few small graphs in flight, not one huge graph).

The mosaic is a GDAL VRT in ``TARGET_CRS`` (None: the first scene's CRS): each
scene in another CRS gets a warped VRT (nearest neighbour, on a grid aligned
with the resolution) written by GDAL itself, and the mosaic lists the scenes so
that the first scene in ``PREDICT_SCENES`` wins where they overlap, as the
training mosaic does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from tqdm import tqdm

from landcover import cluster, inference, mosaic, patch_data, products, rasters, sampling
from landcover.files import atomic_write

log = logging.getLogger(__name__)

STAMP = "done.json"
# the training scene's preparation, read from the model's metadata (its training configuration)
PREP_KEYS = ("RESOLUTION", "HARMONIZE", "MASK_CLOUDS", "MASK_SCL_CLASSES", "CLOUD_THRESHOLD", "CLOUD_DILATION_M")


def preparation(meta: dict, cfg) -> dict:
    """How each scene is prepared: the model's bands and its training scene's settings.

    Args:
        meta: the model's metadata (``bands``, and ``config``: the configuration it was trained with).
        cfg: the config module (``SCENE_OFFSET``, ``PREDICT_AOI``, and the fallbacks of a model without ``config``).

    Returns:
        ``{"BANDS": ..., "RESOLUTION": ..., ..., "SCENE_OFFSET": ..., "PREDICT_AOI": ...}``.
    """
    trained = meta.get("config") or {}
    settings = settings_from(cfg)
    settings["BANDS"] = list(meta["bands"])
    for key in PREP_KEYS:
        if key in trained and plain(trained[key]) != settings[key]:
            log.warning("%s=%r as the model's training scene (the configuration says %r)", key, trained[key],
                        getattr(cfg, key))
            settings[key] = trained[key]
    return plain(settings)


def settings_from(cfg) -> dict:
    """How scenes are read, from a config module: ``BANDS``, the ``PREP_KEYS``, ``SCENE_OFFSET``, ``PREDICT_AOI``."""
    return plain({"BANDS": list(cfg.BANDS), **{key: getattr(cfg, key) for key in PREP_KEYS},
                  "SCENE_OFFSET": cfg.SCENE_OFFSET, "PREDICT_AOI": cfg.PREDICT_AOI})


def plain(value):
    """JSON-comparable: tuples as lists, paths as strings."""
    return json.loads(json.dumps(value, default=str))


def scene_ids(sources: list, settings: dict) -> list[str]:
    """A folder name per scene: its product's name (the ``.SAFE`` name without the suffix, the granule of an
    old multi-granule product, or the STAC item's id), made unique.

    Every scene is opened here, before any work: a missing product or band
    file stops the run at once, with one line naming it.
    """
    ids: list[str] = []
    for source in sources:
        product, _, _ = open_scene(source, settings)
        base = product.name.removesuffix(".SAFE") or "scene"
        name, k = base, 2
        while name in ids:
            name, k = f"{base}_{k}", k + 1
        ids.append(name)
    return ids


@dataclass
class Job:
    """One scene to map: its grid, chunks, open output files and progress."""

    source: str
    folder: Path
    stamp: dict
    grid: dict = field(default_factory=dict)
    boxes: list = field(default_factory=list)
    remaining: int = 0
    valid_pixels: int = 0
    writers: contextlib.ExitStack | None = None
    write: dict = field(default_factory=dict)


def stamp_of(source, model_path: Path, settings: dict, codes: np.ndarray, probabilities: str | None) -> dict:
    """What a scene's outputs depend on (``done.json`` holds it, with the outputs' sizes)."""
    stat = Path(model_path).stat()
    return plain({"source": str(source), "model": str(Path(model_path).resolve()), "model_size": stat.st_size,
                   "model_mtime_ns": stat.st_mtime_ns, "settings": settings, "codes": codes.tolist(),
                   "probabilities": probabilities})


def outputs(probabilities: str | None) -> list[str]:
    return ["prediction.tif", "confidence.tif"] + (["probabilities.tif"] if probabilities else [])


def finished(folder: Path, stamp: dict) -> bool:
    """True when ``folder`` holds complete outputs stamped with ``stamp``."""
    try:
        done = json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        return False
    sizes = done.pop("outputs", {})
    return done == stamp and bool(sizes) and all(
        (folder / name).exists() and (folder / name).stat().st_size == size for name, size in sizes.items())


def open_scene(source, settings: dict):
    """The product of ``source`` with ``settings``' bands, resolution and offset, and its grid in
    ``PREDICT_AOI``'s window (the product's own grid and CRS) with the AOI polygon in that CRS."""
    (product,) = products.open_products([source], settings["BANDS"], settings["RESOLUTION"], settings["SCENE_OFFSET"])
    grid, geom = mosaic.target_grid([product], settings["PREDICT_AOI"], settings["RESOLUTION"], None)
    return product, grid, geom


def _read(product, grid: rasters.Grid, geom, settings: dict, chunk: bool = False):
    """:func:`landcover.mosaic.read_mosaic` of one product with ``settings``' harmonisation and masks."""
    return mosaic.read_mosaic([product], grid, geom, harmonize=settings["HARMONIZE"],
                              mask_mode=settings["MASK_CLOUDS"], scl_classes=settings["MASK_SCL_CLASSES"],
                              cloud_threshold=settings["CLOUD_THRESHOLD"],
                              cloud_dilation_m=settings["CLOUD_DILATION_M"], chunk=chunk)


def read_scene(source: str, settings: dict) -> tuple[np.ndarray, dict, np.ndarray, dict]:
    """One whole scene as scene_prep.py reads the training scene: in ``PREDICT_AOI``'s window of the
    product's own grid, harmonised and cloud-masked with ``settings`` (see :func:`preparation`).

    Returns:
        ``(scene, profile, valid, info)``: (bands, rows, cols) as ``scene.tif``
        holds it, its profile, (rows, cols) bool valid mask, and the masked shares.

    Raises:
        ValueError: the product cannot be read as asked (naming it), or no pixel of it is valid.
    """
    scene, profile, info = _read(*open_scene(source, settings), settings)
    return scene, profile, sampling.valid_mask(scene, profile["nodata"]), info


def scene_grid(source: str, settings: dict) -> dict:
    """The grid a scene is mapped on (``PREDICT_AOI``'s window of the product's own grid), from its metadata."""
    _, grid, _ = open_scene(source, settings)
    return {"crs": grid.crs.to_wkt(), "transform": tuple(grid.transform)[:6], "height": grid.height,
            "width": grid.width}


def margin(settings: dict, patch_size: int) -> int:
    """Pixels read around a chunk so that it is prepared exactly as the whole scene would be.

    A window reaches ``r = p // 2`` beyond the chunk; a filled (nodata) pixel in
    it takes the values of its nearest valid pixel, which lies within r * sqrt(2)
    of a valid pixel of the chunk: 3r (plus 16 px to spare) covers both. The
    s2cloudless mask is averaged and dilated, so its reach is added.
    """
    extra = 0
    if settings["MASK_CLOUDS"] == "s2cloudless":
        extra = math.ceil((settings["CLOUD_DILATION_M"] + 4 * 60) / settings["RESOLUTION"])
    return 3 * (patch_size // 2) + 16 + extra


def predict_scene_chunk(source: str, settings: dict, box: tuple[int, int, int, int], meta: dict,
                        codes: np.ndarray, batch_size: int, tile_mb: float, probabilities: str | None,
                        model=None) -> tuple:
    """One chunk of a scene, read, prepared and predicted where it runs (a Dask task, or in process).

    Only the chunk's window and a :func:`margin` around it are read from the
    product (harmonised, cloud-masked, nodata filled from the nearest valid
    pixel, normalised with the model's band means, symmetric padding where the
    window meets the scene's edge), so memory is bounded by the chunk, not the
    scene, and the labels are those of the whole scene prepared at once.

    Args:
        box: ``(r0, r1, c0, c1)`` on the scene's grid (:func:`open_scene`).
        meta: the model's ``patch_size``, ``padding``, ``mean``, ``std``.
        model: the model (in process); None: the worker plugin's.

    Returns:
        ``(box, prediction, confidence, probabilities, valid pixels, read_mosaic's info)``.
    """
    from rasterio.windows import Window

    if model is None:  # on a worker: the model its plugin loaded once
        from distributed import get_worker

        from landcover import cluster

        model = get_worker().plugins[cluster.PLUGIN].model
    p, fcn = meta["patch_size"], meta.get("padding") == "valid"
    r, m = p // 2, margin(settings, p)
    product, grid, geom = open_scene(source, settings)
    r0, r1, c0, c1 = box
    top, left = max(0, r0 - m), max(0, c0 - m)
    bottom, right = min(grid.height, r1 + m), min(grid.width, c1 + m)
    sub = rasters.crop_grid(grid, Window(left, top, right - left, bottom - top))
    scene, profile, info = _read(product, sub, geom, settings, chunk=True)
    valid = sampling.valid_mask(scene, profile["nodata"])
    filled = rasters.fill_nodata_nearest(scene, valid)
    # the whole scene's symmetric padding, where the window meets its edge (r0 - top < r only at row 0, ...)
    pads = ((max(0, r - (r0 - top)), max(0, r - (bottom - r1))), (max(0, r - (c0 - left)), max(0, r - (right - c1))))
    padded = np.pad(patch_data.normalised_padded(filled, meta["mean"], meta["std"], 1), (*pads, (0, 0)),
                    mode="symmetric")
    a, b = r0 - top + pads[0][0] - r, c0 - left + pads[1][0] - r
    h, w = r1 - r0, c1 - c0
    inside = valid[r0 - top:r1 - top, c0 - left:c1 - left]
    prediction, confidence, probs = inference.predict_box(
        model, padded[a:a + h + 2 * r, b:b + w + 2 * r], inside, (0, h, 0, w), p, codes, fully_convolutional=fcn,
        batch_size=batch_size, tile_mb=tile_mb, probabilities=probabilities)
    return box, prediction, confidence, probs, int(inside.sum()), info


def write_stamp(folder: Path, stamp: dict, names: list[str]) -> None:
    """``done.json``: ``stamp`` and the sizes of the ``names`` outputs, written last (atomically)."""
    sizes = {name: (Path(folder) / name).stat().st_size for name in names}
    with atomic_write(Path(folder) / STAMP) as tmp:
        tmp.write_text(json.dumps({**stamp, "outputs": sizes}, indent=2))


def _open_writers(job: Job, codes: np.ndarray, colormap: dict, class_names: list[str], probabilities: str | None):
    info = job.grid
    profile = {"crs": CRS.from_wkt(info["crs"]), "transform": Affine(*info["transform"]), "width": info["width"],
               "height": info["height"]}
    job.writers = contextlib.ExitStack()
    job.write["prediction"] = job.writers.enter_context(rasters.chunk_writer(
        job.folder / "prediction.tif", profile, 1, "uint16", ["class"], colormap, nodata=0))
    job.write["confidence"] = job.writers.enter_context(rasters.chunk_writer(
        job.folder / "confidence.tif", profile, 1, "float32", ["max_probability"], nodata=0,
        overview_resampling="average"))
    if probabilities:
        job.write["probabilities"] = job.writers.enter_context(rasters.chunk_writer(
            job.folder / "probabilities.tif", profile, len(codes), probabilities,
            [f"{c} {n}" for c, n in zip(codes.tolist(), class_names)], overview_resampling="average"))


def _write_chunk(job: Job, box, prediction, confidence, probs, valid_pixels: int) -> None:
    r0, _, c0, _ = box
    job.write["prediction"](r0, c0, prediction)
    job.write["confidence"](r0, c0, confidence)
    if probs is not None:
        job.write["probabilities"](r0, c0, probs)
    job.valid_pixels += valid_pixels
    job.remaining -= 1


def _finish(job: Job, probabilities: str | None) -> None:
    """Close the writers (COGs renamed into place) and stamp the folder; a scene without a valid pixel is refused."""
    if job.valid_pixels == 0:
        raise ValueError(f"{job.source}: no valid, unmasked pixel in PREDICT_AOI (outside the product, or all "
                         "masked); check PREDICT_SCENES and PREDICT_AOI")
    job.writers.close()
    job.writers = None
    write_stamp(job.folder, job.stamp, outputs(probabilities))
    total = job.grid["height"] * job.grid["width"]
    log.info("%s: mapped %d valid pixels of %d into %s", Path(job.source).name, job.valid_pixels, total, job.folder)


def _abort(jobs: list[Job]) -> None:
    """An error: no half-written output is kept (the writers' temporary files go)."""
    for job in jobs:
        if job.writers is not None:
            with contextlib.suppress(Exception):
                job.writers.__exit__(RuntimeError, RuntimeError("aborted"), None)
            job.writers = None


def predict_scenes(sources: list, model_path: Path, model, meta: dict, settings: dict, codes: np.ndarray,
                   colormap: dict, class_names: list[str], out_dir: Path, *, client=None, chunk: int,
                   batch_size: int, tile_mb: float, probabilities: str | None, in_flight: int = 2,
                   mosaic_crs: str | None = None) -> list[Path]:
    """Map every scene of ``sources`` (skipping stamped ones), then write the mosaics.

    Args:
        model: the loaded model (in-process path; None with ``client``).
        meta: its metadata (``patch_size``, ``mean``, ``std``, ``padding``).
        settings: from :func:`preparation`.
        codes, colormap, class_names: the model's classes, their colours and names.
        client: a ``distributed.Client``, or None for this process.
        probabilities: None, ``"uint8"`` or ``"float32"`` (WRITE_PROBABILITIES, PROBABILITY_DTYPE).
        in_flight: scenes being predicted at once on Dask (their chunks are queued together).
        mosaic_crs: ``TARGET_CRS`` of the mosaic (None: the first scene's).

    Returns:
        The scene folders, in the order of ``sources``.
    """
    if not sources:
        raise ValueError("PREDICT_SCENES is empty")
    small = {k: meta[k] for k in ("patch_size", "mean", "std")} | {"padding": meta.get("padding", "same")}
    jobs = []
    for source, name in zip(sources, scene_ids(sources, settings)):
        jobs.append(Job(str(source), Path(out_dir) / name, stamp_of(source, model_path, settings, codes,
                                                                    probabilities)))
    todo = [job for job in jobs if not finished(job.folder, job.stamp)]
    for job in jobs:
        if job not in todo:
            log.info("%s: already mapped with these settings (%s); skipped", job.source, job.folder / STAMP)
        else:
            (job.folder / STAMP).unlink(missing_ok=True)  # the old stamp is void from now on
    bar = tqdm(total=0, desc=f"mapping {len(todo)} scene(s)", unit="chunk", disable=None)
    args = (small, codes, batch_size, tile_mb, probabilities)
    try:
        if client is None:
            from landcover import models

            runner = models.fully_convolutional(model) if small["padding"] == "valid" else model
            for job in todo:
                _start(job, settings, chunk, codes, colormap, class_names, probabilities, bar)
                for box in job.boxes:
                    result = predict_scene_chunk(job.source, settings, box, *args, model=runner)
                    _write_chunk(job, *result[:5])
                    bar.update()
                _finish(job, probabilities)
        else:
            _on_cluster(client, todo, model_path, settings, args, chunk, colormap, class_names, in_flight, bar)
    except BaseException:
        _abort(todo)
        raise
    finally:
        bar.close()
    folders = [job.folder for job in jobs]
    for name, mosaic_name in (("prediction.tif", "mosaic.vrt"), ("confidence.tif", "confidence_mosaic.vrt")):
        write_mosaic(Path(out_dir) / mosaic_name, [f / name for f in folders], mosaic_crs)
    return folders


def _start(job: Job, settings: dict, chunk: int, codes, colormap, class_names, probabilities, bar) -> None:
    """A scene's grid and chunks, and its output files opened."""
    job.grid = scene_grid(job.source, settings)
    job.boxes = cluster.chunks((job.grid["height"], job.grid["width"]), chunk)
    job.remaining = len(job.boxes)
    _open_writers(job, codes, colormap, class_names, probabilities)
    bar.total += len(job.boxes)
    bar.refresh()


def _on_cluster(client, todo: list[Job], model_path, settings, args, chunk, colormap, class_names, in_flight,
                bar) -> None:
    """Scenes on Dask: ``in_flight`` scenes' chunks queued at a time, each chunk written as it comes."""
    from distributed import as_completed

    if in_flight < 1:
        raise ValueError(f"PREDICT_SCENES_IN_FLIGHT={in_flight}: expected at least 1")
    small, codes, probabilities = args[0], args[1], args[4]
    cluster.register_model(client, model_path, small["padding"] == "valid")
    queue, owner, running = list(todo), {}, as_completed()

    def start(job: Job) -> None:
        _start(job, settings, chunk, codes, colormap, class_names, probabilities, bar)
        for box in job.boxes:
            future = client.submit(predict_scene_chunk, job.source, settings, box, *args, pure=False)
            owner[future.key] = job
            running.add(future)

    for _ in range(min(in_flight, len(queue))):
        start(queue.pop(0))
    for future in running:
        job = owner.pop(future.key)
        _write_chunk(job, *future.result()[:5])  # a task's error is raised here
        bar.update()
        if job.remaining == 0:
            _finish(job, probabilities)
            if queue:
                start(queue.pop(0))


# --------------------------------------------------------------------- mosaic ----
def _aligned_grid(src, crs: CRS, resolution: float) -> tuple[Affine, int, int]:
    """A grid in ``crs`` at ``resolution`` covering ``src``, with its corners on multiples of the resolution."""
    left, bottom, right, top = transform_bounds(src.crs, crs, *src.bounds, densify_pts=21)
    left, top = math.floor(left / resolution) * resolution, math.ceil(top / resolution) * resolution
    width = math.ceil((right - left) / resolution)
    height = math.ceil((top - bottom) / resolution)
    return Affine(resolution, 0, left, 0, -resolution, top), width, height


def _warped(path: Path, crs: CRS, resolution: float) -> Path:
    """``path`` warped into ``crs`` (nearest neighbour) as a VRT beside it, serialised by GDAL."""
    target = path.with_name(f"{path.stem}.{crs.to_epsg() or 'crs'}.vrt")
    with rasterio.open(path) as src:
        transform, width, height = _aligned_grid(src, crs, resolution)
        with WarpedVRT(src, crs=crs, transform=transform, width=width, height=height,
                       resampling=Resampling.nearest) as vrt, atomic_write(target) as tmp:
            rasterio.shutil.copy(vrt, tmp, driver="VRT")  # names its source relative to the VRT's folder
    return target


def write_mosaic(path: Path, rasters_in: list[Path], crs: str | None = None) -> Path:
    """A VRT mosaic of single-band rasters of any CRS; the first raster wins where they overlap.

    Rasters in another CRS than ``crs`` (None: the first raster's) are warped
    by GDAL (:func:`_warped`); the mosaic XML lists each as a ``ComplexSource``
    whose nodata is transparent, the first raster last (drawn on top). The
    band's nodata, colour table and description come from the first raster.
    GDAL's ``gdalbuildvrt`` is not reachable from rasterio, hence the XML.
    """
    path = Path(path)
    with rasterio.open(rasters_in[0]) as first:
        target = CRS.from_user_input(crs) if crs is not None else first.crs
        resolution = abs(first.transform.a)
        dtype, nodata = first.dtypes[0], first.nodata
        colormap = first.colormap(1) if first.colorinterp[0].name == "palette" else None
        description = first.descriptions[0]
    sources = []
    for raster in rasters_in:
        with rasterio.open(raster) as src:
            same = src.crs == target and math.isclose(abs(src.transform.a), resolution)
        source = raster if same else _warped(raster, target, resolution)
        with rasterio.open(source) as src:
            sources.append((source, src.bounds, src.width, src.height))
    left = min(b.left for _, b, _, _ in sources)
    top = max(b.top for _, b, _, _ in sources)
    right = max(b.right for _, b, _, _ in sources)
    bottom = min(b.bottom for _, b, _, _ in sources)
    width, height = round((right - left) / resolution), round((top - bottom) / resolution)
    root = ET.Element("VRTDataset", rasterXSize=str(width), rasterYSize=str(height))
    ET.SubElement(root, "SRS", dataAxisToSRSAxisMapping="1,2").text = target.to_wkt()
    ET.SubElement(root, "GeoTransform").text = ", ".join(
        repr(v) for v in Affine(resolution, 0, left, 0, -resolution, top).to_gdal())
    gdal_type = {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "float32": "Float32"}[dtype]
    band = ET.SubElement(root, "VRTRasterBand", dataType=gdal_type, band="1")
    if description:
        ET.SubElement(band, "Description").text = description
    if nodata is not None:
        ET.SubElement(band, "NoDataValue").text = repr(float(nodata))
    if colormap:
        ET.SubElement(band, "ColorInterp").text = "Palette"
        table = ET.SubElement(band, "ColorTable")
        for value in range(max(colormap) + 1):
            c = colormap.get(value, (0, 0, 0, 0))
            ET.SubElement(table, "Entry", c1=str(c[0]), c2=str(c[1]), c3=str(c[2]), c4=str(c[3]))
    for source, bounds, w, h in reversed(sources):  # later sources are drawn over earlier ones
        element = ET.SubElement(band, "ComplexSource")
        ET.SubElement(element, "SourceFilename", relativeToVRT="1").text = os.path.relpath(source, path.parent)
        ET.SubElement(element, "SourceBand").text = "1"
        ET.SubElement(element, "SrcRect", xOff="0", yOff="0", xSize=str(w), ySize=str(h))
        ET.SubElement(element, "DstRect", xOff=str(round((bounds.left - left) / resolution)),
                      yOff=str(round((top - bounds.top) / resolution)), xSize=str(w), ySize=str(h))
        if nodata is not None:
            ET.SubElement(element, "NODATA").text = repr(float(nodata))
    ET.indent(root)
    with atomic_write(path) as tmp:
        ET.ElementTree(root).write(tmp, encoding="unicode")
    log.info("wrote %s: a mosaic of %d raster(s) in %s", path, len(rasters_in), target.to_string())
    return path
