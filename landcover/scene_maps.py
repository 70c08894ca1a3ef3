"""Maps of other scenes (``PREDICT_SCENES``): prepared as the training scene was, predicted by chunks, mosaicked.

Each scene (a product folder or a STAC item) is read only in ``PREDICT_AOI``'s
window (None: the whole product), on its own grid in its own UTM zone, with the
training scene's bands, resolution, harmonisation and cloud mask (taken from
the model's metadata), its nodata filled from the nearest valid pixel and
normalised with the model's band means: exactly what test_patches.py does to
``scene.tif``, so the training product gives the training AOI's labels. It is
then predicted in ``PREDICT_CHUNK`` chunks with a halo of the patch radius (in
this process, or on Dask with the model loaded once per worker), and each
chunk is written as it arrives into tiled GeoTIFFs that end as Cloud-Optimised
GeoTIFFs::

    PREDICT_DIR/<model>/<scene id>/prediction.tif    CLC codes, colour table
                                   confidence.tif    highest probability
                                   probabilities.tif with WRITE_PROBABILITIES
                                   done.json         the stamp, written last
    PREDICT_DIR/<model>/mosaic.vrt, confidence_mosaic.vrt

Nothing is written under a final name before it is complete, and ``done.json``
(the settings, the model file and the outputs' sizes) is written last: a run
restarted with the same settings skips the scenes whose stamp matches. On Dask
the scenes are prepared on the workers, at most ``PREDICT_SCENES_IN_FLIGHT`` at
a time (a few small graphs in flight, not one huge graph); the stage's process
only writes the chunks it receives, so its memory does not grow with the scene.

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
import shutil
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


def scene_ids(sources: list) -> list[str]:
    """A folder name per scene: the product's name (``.SAFE`` stem, granule or STAC item id), made unique."""
    ids: list[str] = []
    for source in sources:
        text = str(source).rstrip("/")
        name = Path(text.split("?")[0]).name
        for suffix in (".SAFE", ".json"):
            name = name[: -len(suffix)] if name.endswith(suffix) else name
        base, k = name or "scene", 2
        while name in ids or not name:
            name, k = f"{base}_{k}", k + 1
        ids.append(name)
    return ids


@dataclass
class Job:
    """One scene to map."""

    source: str
    folder: Path
    stamp: dict
    info: dict = field(default_factory=dict)
    remaining: int = 0
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


def read_scene(source: str, settings: dict) -> tuple[np.ndarray, dict, np.ndarray, dict]:
    """One scene as scene_prep.py reads the training scene: in ``PREDICT_AOI``'s window of the product's
    own grid, harmonised and cloud-masked with ``settings`` (see :func:`preparation`).

    Returns:
        ``(scene, profile, valid, info)``: (bands, rows, cols) as ``scene.tif``
        holds it, its profile, (rows, cols) bool valid mask, and the masked shares.

    Raises:
        ValueError: the product cannot be read as asked (naming it), or no pixel of it is valid.
    """
    prods = products.open_products([source], settings["BANDS"], settings["RESOLUTION"], settings["SCENE_OFFSET"])
    grid, geom = mosaic.target_grid(prods, settings["PREDICT_AOI"], settings["RESOLUTION"], None)
    scene, profile, info = mosaic.read_mosaic(
        prods, grid, geom, harmonize=settings["HARMONIZE"], mask_mode=settings["MASK_CLOUDS"],
        scl_classes=settings["MASK_SCL_CLASSES"], cloud_threshold=settings["CLOUD_THRESHOLD"],
        cloud_dilation_m=settings["CLOUD_DILATION_M"])
    return scene, profile, sampling.valid_mask(scene, profile["nodata"]), info


def prepare(source: str, settings: dict, mean, std, patch_size: int, work: str) -> dict:
    """Prepare one scene for prediction (a task: it runs on a worker, or in the stage's process).

    Reads it (:func:`read_scene`), fills nodata from the nearest valid pixel,
    normalises with the model's ``mean`` and ``std`` and pads by the patch
    radius; saves the (rows + p - 1, cols + p - 1, bands) float32 array and the
    (rows, cols) valid mask as ``.npy`` files in ``work`` for the chunks to memory-map.

    Returns:
        ``{"crs", "transform", "height", "width", "padded", "valid", "valid_pixels", "masked_total"}``.
    """
    scene, profile, valid, info = read_scene(source, settings)
    scene = rasters.fill_nodata_nearest(scene, valid)
    work_dir = Path(work)
    work_dir.mkdir(parents=True, exist_ok=True)
    padded, valid_path = work_dir / "padded.npy", work_dir / "valid.npy"
    np.save(padded, patch_data.normalised_padded(scene, mean, std, patch_size))
    del scene
    np.save(valid_path, valid)
    return {"crs": profile["crs"].to_wkt(), "transform": tuple(profile["transform"])[:6], "height": profile["height"],
            "width": profile["width"], "padded": str(padded), "valid": str(valid_path),
            "valid_pixels": int(valid.sum()), "masked_total": info["masked_total"]}


def write_stamp(folder: Path, stamp: dict, names: list[str]) -> None:
    """``done.json``: ``stamp`` and the sizes of the ``names`` outputs, written last (atomically)."""
    sizes = {name: (Path(folder) / name).stat().st_size for name in names}
    with atomic_write(Path(folder) / STAMP) as tmp:
        tmp.write_text(json.dumps({**stamp, "outputs": sizes}, indent=2))


def _open_writers(job: Job, codes: np.ndarray, colormap: dict, class_names: list[str], probabilities: str | None):
    info = job.info
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


def _write_chunk(job: Job, box, prediction, confidence, probs) -> None:
    r0, _, c0, _ = box
    job.write["prediction"](r0, c0, prediction)
    job.write["confidence"](r0, c0, confidence)
    if probs is not None:
        job.write["probabilities"](r0, c0, probs)


def _finish(job: Job, probabilities: str | None) -> None:
    """Close the writers (COGs renamed into place), stamp the folder, remove the scratch inputs."""
    job.writers.close()
    job.writers = None
    write_stamp(job.folder, job.stamp, outputs(probabilities))
    shutil.rmtree(job.folder / ".work", ignore_errors=True)
    log.info("%s: mapped %d valid pixels (%.1f %% masked) into %s", Path(job.source).name, job.info["valid_pixels"],
             100 * job.info["masked_total"], job.folder)


def _abort(jobs: list[Job]) -> None:
    """An error: no half-written output is kept (the writers' temporary files go), nor scratch inputs."""
    for job in jobs:
        if job.writers is not None:
            with contextlib.suppress(Exception):
                job.writers.__exit__(RuntimeError, RuntimeError("aborted"), None)
        shutil.rmtree(job.folder / ".work", ignore_errors=True)


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
        in_flight: scenes prepared or predicted at once on Dask.
        mosaic_crs: ``TARGET_CRS`` of the mosaic (None: the first scene's).

    Returns:
        The scene folders, in the order of ``sources``.
    """
    if not sources:
        raise ValueError("PREDICT_SCENES is empty")
    p, fcn = meta["patch_size"], meta.get("padding") == "valid"
    jobs = []
    for source, name in zip(sources, scene_ids(sources)):
        folder = Path(out_dir) / name
        jobs.append(Job(str(source), folder, stamp_of(source, model_path, settings, codes, probabilities)))
    todo = [job for job in jobs if not finished(job.folder, job.stamp)]
    for job in jobs:
        if job not in todo:
            log.info("%s: already mapped with these settings (%s); skipped", job.source, job.folder / STAMP)
        else:
            (job.folder / STAMP).unlink(missing_ok=True)  # the old stamp is void from now on
    bar = tqdm(total=0, desc=f"mapping {len(todo)} scene(s)", unit="chunk", disable=None)
    try:
        if client is None:
            from landcover import models

            runner = models.fully_convolutional(model) if fcn else model
            for job in todo:
                job.info = prepare(job.source, settings, meta["mean"], meta["std"], p, str(job.folder / ".work"))
                _open_writers(job, codes, colormap, class_names, probabilities)
                padded = np.load(job.info["padded"], mmap_mode="r")
                valid = np.load(job.info["valid"], mmap_mode="r")
                boxes = cluster.chunks((job.info["height"], job.info["width"]), chunk)
                bar.total += len(boxes)
                for box in boxes:
                    _write_chunk(job, box, *inference.predict_box(
                        runner, padded, valid, box, p, codes, fully_convolutional=fcn, batch_size=batch_size,
                        tile_mb=tile_mb, probabilities=probabilities))
                    bar.update()
                del padded, valid  # the memory maps close before their files go
                _finish(job, probabilities)
        else:
            _on_cluster(client, todo, model_path, meta, codes, colormap, class_names, chunk, batch_size, tile_mb,
                        probabilities, in_flight, bar)
    except BaseException:
        _abort(todo)
        raise
    finally:
        bar.close()
    folders = [job.folder for job in jobs]
    for name, mosaic_name in (("prediction.tif", "mosaic.vrt"), ("confidence.tif", "confidence_mosaic.vrt")):
        write_mosaic(Path(out_dir) / mosaic_name, [f / name for f in folders], mosaic_crs)
    return folders


def _on_cluster(client, todo: list[Job], model_path, meta, codes, colormap, class_names, chunk, batch_size, tile_mb,
                probabilities, in_flight, bar) -> None:
    """Scenes on Dask: prepared on the workers, ``in_flight`` at a time, their chunks written as they come."""
    from distributed import as_completed

    if in_flight < 1:
        raise ValueError(f"PREDICT_SCENES_IN_FLIGHT={in_flight}: expected at least 1")
    cluster.register_model(client, model_path, meta.get("padding") == "valid")
    p = meta["patch_size"]
    queue, owner = list(todo), {}
    running = as_completed()

    def start(job: Job) -> None:
        future = client.submit(prepare, job.source, job.stamp["settings"], meta["mean"], meta["std"], p,
                               str(job.folder / ".work"), pure=False)
        owner[future.key] = job
        running.add(future)

    for _ in range(min(in_flight, len(queue))):
        start(queue.pop(0))
    for future in running:
        job = owner.pop(future.key)
        result = future.result()  # a task's error is raised here, naming the scene
        if not job.info:  # the scene is prepared: its chunks go out
            job.info = result
            _open_writers(job, codes, colormap, class_names, probabilities)
            boxes = cluster.chunks((result["height"], result["width"]), chunk)
            job.remaining = len(boxes)
            bar.total += len(boxes)
            bar.refresh()
            for box in boxes:
                chunk_future = client.submit(cluster.predict_chunk, result["padded"], result["valid"], box, p, codes,
                                             batch_size, tile_mb, probabilities, pure=False)
                owner[chunk_future.key] = job
                running.add(chunk_future)
            continue
        _write_chunk(job, *result)
        bar.update()
        job.remaining -= 1
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
