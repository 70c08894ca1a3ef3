"""Felzenszwalb segmentation, per-segment statistics and segment types.

Scenes are (bands, rows, cols) as rasterio reads them; scikit-image gets
them channels-last. Segment-id rasters are (rows, cols) int32, 0 = nodata,
segments numbered 1..N.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import shapes
from shapely.geometry import shape
from skimage.segmentation import felzenszwalb, relabel_sequential

from landcover import rasters

log = logging.getLogger(__name__)

# Felzenszwalb's graph, sort and union-find need roughly this much per pixel.
BYTES_PER_PIXEL = 300
SCALINGS = ("int16", "uint16", "reflectance", "raw")
STATS = ("count", "min", "mean", "max", "median")


def segmentation_input(scene: np.ndarray, valid: np.ndarray, scaling: str = "int16") -> np.ndarray:
    """The array handed to Felzenszwalb, channels-last, with nodata filled.

    Felzenszwalb's ``scale`` acts on pixel differences, so the number of
    segments depends on the value range. The scalings:

    - ``"int16"`` (the study's): band values as int16, which scikit-image
      converts to float by dividing by 32767 (reflectance x 10000 -> 0..~0.3);
    - ``"uint16"``: values as uint16, converted by dividing by 65535;
    - ``"reflectance"``: values / 10000 (0..~1);
    - ``"raw"``: the values as floats (0..~10000).

    Invalid pixels take the value of the nearest valid pixel, so nodata draws
    no edges; they are removed from the segments afterwards.

    Args:
        scene: (bands, rows, cols) band values (reflectance x 10000).
        valid: (rows, cols) bool.
        scaling: one of ``SCALINGS``.

    Returns:
        (rows, cols, bands) float64 array.
    """
    if scaling not in SCALINGS:
        raise ValueError(f"SEG_INPUT={scaling!r}: expected one of {SCALINGS}")
    scene = rasters.fill_nodata_nearest(scene, valid)
    image = np.moveaxis(scene, 0, -1)
    if scaling == "int16":
        return np.clip(image, -32768, 32767).astype(np.int16) / 32767.0
    if scaling == "uint16":
        return np.clip(image, 0, 65535).astype(np.uint16) / 65535.0
    if scaling == "reflectance":
        return image.astype(np.float64) / 10000.0
    return image.astype(np.float64)


def check_memory(n_pixels: int, max_gb: float) -> None:
    """Refuse a segmentation whose working memory would exceed ``max_gb``."""
    need = n_pixels * BYTES_PER_PIXEL / 1e9
    if need > max_gb:
        raise ValueError(
            f"segmenting {n_pixels:,} pixels needs about {need:.1f} GB (Felzenszwalb, ~{BYTES_PER_PIXEL} bytes "
            f"per pixel), more than SEG_MAX_MEMORY_GB={max_gb}; use a smaller AOI or raise SEG_MAX_MEMORY_GB"
        )


def segment(scene: np.ndarray, valid: np.ndarray, scale: float, sigma: float, min_size: int,
            scaling: str = "int16") -> np.ndarray:
    """Felzenszwalb graph segmentation of a multi-band scene.

    Args:
        scene: (bands, rows, cols) band values.
        valid: (rows, cols) bool; invalid pixels get id 0.
        scale, sigma, min_size: scikit-image's parameters (study: 1200, 0.5, 500).
        scaling: the input scaling, see :func:`segmentation_input`.

    Returns:
        (rows, cols) int32 segment ids 1..N, 0 where invalid.
    """
    image = segmentation_input(scene, valid, scaling)
    with warnings.catch_warnings():  # 4 bands are meant: channel_axis says so
        warnings.filterwarnings("ignore", message="Got image with third dimension")
        ids = felzenszwalb(image, scale=scale, sigma=sigma, min_size=min_size, channel_axis=-1)
    ids = np.where(valid, ids + 1, 0)
    ids, _, _ = relabel_sequential(ids)
    return ids.astype(np.int32)


def segment_stats(scene: np.ndarray, ids: np.ndarray, band_names: list[str]) -> pd.DataFrame:
    """Count, min, mean, max and median of every band over every segment.

    Vectorised over the label image, no Python loop over segments or pixels:
    one sort per band by (segment, value) gives each segment's min, max and
    median from its offsets (median as numpy's: mean of the two middle values).

    Args:
        scene: (bands, rows, cols) values.
        ids: (rows, cols) segment ids 1..N, 0 ignored.
        band_names: names of the bands, for the column names.

    Returns:
        One row per segment, index ``segment`` 1..N, columns ``count`` and
        ``<band>_<stat>``; statistics of a segment id with no pixel are NaN.
    """
    n = int(ids.max())
    flat = ids.ravel()
    keep = flat > 0
    seg = flat[keep]
    counts = np.bincount(seg, minlength=n + 1)[1:]
    present = counts > 0
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    last = np.maximum(counts - 1, 0)

    def pick(sorted_values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        out = np.full(n, np.nan)
        out[present] = sorted_values[(starts + offsets)[present]]
        return out

    table = {"count": counts.astype(np.int64)}
    for name, band in zip(band_names, scene):
        raw = band.ravel()[keep]
        values = raw.astype(np.float64)
        if raw.dtype.kind == "u" and raw.dtype.itemsize <= 4:
            # one int64 key (segment, value) sorts faster than a two-key lexsort
            ordered = (np.sort((seg.astype(np.int64) << 32) | raw.astype(np.int64)) & 0xFFFFFFFF).astype(np.float64)
        else:
            ordered = values[np.lexsort((values, seg))]
        sums = np.bincount(seg, weights=values, minlength=n + 1)[1:]
        table[f"{name}_min"] = pick(ordered, np.zeros(n, np.int64))
        table[f"{name}_mean"] = np.where(present, sums / np.maximum(counts, 1), np.nan)
        table[f"{name}_max"] = pick(ordered, last)
        table[f"{name}_median"] = (pick(ordered, (counts - 1) // 2) + pick(ordered, counts // 2)) / 2
    return pd.DataFrame(table, index=pd.Index(np.arange(1, n + 1), name="segment"))


def segment_means(stats: pd.DataFrame, band_names: list[str], band: str | None = None) -> np.ndarray:
    """The per-segment mean that is ranked into types: one band's, or the mean over all bands."""
    if band is None:
        return stats[[f"{b}_mean" for b in band_names]].to_numpy().mean(axis=1)
    if band not in band_names:
        raise ValueError(f"SEG_TYPE_BAND={band!r} is not among the scene's bands {band_names}")
    return stats[f"{band}_mean"].to_numpy()


def segment_types(means: np.ndarray, percentiles: tuple[float, ...] = (10, 25, 50, 75, 90)) -> tuple[np.ndarray, np.ndarray]:
    """Rank segment means against percentiles of all segment means.

    With the study's percentiles (10, 25, 50, 75, 90) a segment whose mean is
    below the 10th percentile is type 1, between the 10th and 25th type 2, ...
    at or above the 90th type 6.

    Args:
        means: (N,) float, one mean per segment.
        percentiles: increasing percentiles in %.

    Returns:
        ``(types, thresholds)``: types (N,) uint8 in 1..len(percentiles)+1;
        thresholds the percentile values.
    """
    thresholds = np.percentile(means, percentiles)
    types = np.searchsorted(thresholds, means, side="right") + 1
    return types.astype(np.uint8), thresholds


def type_raster(ids: np.ndarray, types: np.ndarray) -> np.ndarray:
    """(rows, cols) uint8 segment type of every pixel (0 where id is 0)."""
    lut = np.concatenate([[0], types]).astype(np.uint8)
    return lut[ids]


def segment_polygons(ids: np.ndarray, transform: Affine, crs: CRS, stats: pd.DataFrame,
                     types: np.ndarray) -> gpd.GeoDataFrame:
    """The segments as polygons with id, type and statistics (rasterio.features.shapes).

    A segment that is not 4-connected becomes several polygons with the same id.
    """
    geoms, values = [], []
    for geom, value in shapes(ids, mask=ids > 0, transform=transform, connectivity=4):
        geoms.append(shape(geom))
        values.append(int(value))
    frame = gpd.GeoDataFrame({"segment": values}, geometry=geoms, crs=crs)
    frame = frame.dissolve(by="segment", as_index=False)
    attrs = stats.assign(type=types).reset_index()
    return frame.merge(attrs, on="segment", how="left")


def segment_scene(scene: np.ndarray, valid: np.ndarray, band_names: list[str], *, scale: float, sigma: float,
                  min_size: int, scaling: str, type_band: str | None, percentiles: tuple[float, ...],
                  max_gb: float) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """Segment, compute statistics and types; the whole segmentation step.

    Returns:
        ``(ids, stats, types)``: ids (rows, cols) int32; stats one row per
        segment; types (N,) uint8 in 1..len(percentiles)+1.
    """
    check_memory(int(valid.size), max_gb)
    ids = segment(scene, valid, scale, sigma, min_size, scaling)
    n = int(ids.max())
    if n == 0:
        raise ValueError("the scene has no valid pixel to segment")
    stats = segment_stats(scene, ids, band_names)
    types, thresholds = segment_types(segment_means(stats, band_names, type_band), percentiles)
    log.info("Felzenszwalb (scale %s, sigma %s, min_size %s, input %s): %d segments, median size %d px; "
             "type thresholds %s", scale, sigma, min_size, scaling, n, int(stats["count"].median()),
             np.round(thresholds, 1).tolist())
    return ids, stats, types


def add_segment_columns(points: pd.DataFrame, ids: np.ndarray, types: np.ndarray) -> pd.DataFrame:
    """Add ``segment`` (id) and ``segment_type`` (1..6) to a points table by raster look-up.

    Args:
        points: table with ``row`` and ``col`` on the segmented grid.
        ids: (rows, cols) segment ids.
        types: (N,) type of segment i+1.
    """
    seg = ids[points["row"].to_numpy(), points["col"].to_numpy()]
    lut = np.concatenate([[0], types]).astype(np.uint8)
    return points.assign(segment=seg.astype(np.int32), segment_type=lut[seg])


def check_settings(scale: float, sigma: float, min_size: int, scaling: str, percentiles) -> None:
    """Refuse segmentation settings that cannot work (before any work is done)."""
    if scale <= 0 or sigma < 0 or min_size < 1:
        raise ValueError(f"SEG_SCALE={scale}, SEG_SIGMA={sigma}, SEG_MIN_SIZE={min_size}: expected scale > 0, "
                         "sigma >= 0, min_size >= 1")
    if scaling not in SCALINGS:
        raise ValueError(f"SEG_INPUT={scaling!r}: expected one of {SCALINGS}")
    p = list(percentiles)
    if not p or p != sorted(set(p)) or p[0] <= 0 or p[-1] >= 100:
        raise ValueError(f"SEG_PERCENTILES={percentiles}: expected increasing percentiles between 0 and 100")


def settings_from(cfg) -> dict:
    """The segmentation settings of a config module (``SEG_*``), checked, as
    keyword arguments of :func:`segment_scene`."""
    check_settings(cfg.SEG_SCALE, cfg.SEG_SIGMA, cfg.SEG_MIN_SIZE, cfg.SEG_INPUT, cfg.SEG_PERCENTILES)
    return {"scale": cfg.SEG_SCALE, "sigma": cfg.SEG_SIGMA, "min_size": cfg.SEG_MIN_SIZE, "scaling": cfg.SEG_INPUT,
            "type_band": cfg.SEG_TYPE_BAND, "percentiles": tuple(cfg.SEG_PERCENTILES),
            "max_gb": cfg.SEG_MAX_MEMORY_GB}


def sweep_entries(scales, default_min_size: int) -> list[tuple[float, int]]:
    """SEG_SCALES as ``(scale, min_size)`` pairs: a number takes SEG_MIN_SIZE, a pair its own."""
    entries = []
    for item in scales:
        scale, min_size = (item, default_min_size) if np.isscalar(item) else tuple(item)
        check_settings(scale, 0.0, int(min_size), SCALINGS[0], (50,))
        entries.append((float(scale) if float(scale) != int(scale) else int(scale), int(min_size)))
    if len(set(entries)) != len(entries):
        raise ValueError(f"SEG_SCALES={scales}: an entry is repeated")
    return entries


def sweep_column(scale: float, min_size: int) -> str:
    """Points-table column of the segment type at one sweep entry, e.g. ``segment_type_s100_m50``."""
    return f"segment_type_s{scale:g}_m{min_size}"


def sweep(scene: np.ndarray, valid: np.ndarray, band_names: list[str], points: pd.DataFrame,
          entries: list[tuple[float, int]], settings: dict,
          done: dict[tuple[float, int], tuple[np.ndarray, pd.DataFrame, np.ndarray]] | None = None
          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Segment the scene at every sweep entry; add each entry's segment type to the points.

    Args:
        scene: (bands, rows, cols); valid: (rows, cols) bool.
        settings: :func:`settings_from`'s keywords (scale and min_size replaced per entry).
        done: segmentations already made, ``(scale, min_size) -> segment_scene()``'s answer, not redone.

    Returns:
        ``(points, summary)``: the points with one ``sweep_column`` per entry,
        and one row per entry: scale, min_size, segments, median size (px).
    """
    rows = []
    for scale, min_size in entries:
        ids, stats, types = (done or {}).get((scale, min_size)) or segment_scene(
            scene, valid, band_names, **{**settings, "scale": scale, "min_size": min_size})
        points = points.assign(**{sweep_column(scale, min_size): add_segment_columns(points, ids, types)[
            "segment_type"].to_numpy()})
        rows.append({"scale": scale, "min_size": min_size, "segments": int(ids.max()),
                     "median_size_px": float(stats["count"].median())})
    return points, pd.DataFrame(rows)


def segment_aoi(folder: Path, scene: np.ndarray, profile: dict, band_names: list[str], valid: np.ndarray,
                points: pd.DataFrame, settings: dict, entries: list[tuple[float, int]],
                truecolor: np.ndarray) -> pd.DataFrame:
    """The segmentation stage on the training AOI, as segment.py and scene_prep.py (SEGMENT) both run it.

    Segments at ``settings`` (SEG_SCALE) and at every sweep entry (SEG_SCALES), writes
    :func:`write_outputs`' files and ``scale_sweep.csv/.md`` into ``folder``, and returns the points
    with ``segment``, ``segment_type`` and one :func:`sweep_column` per entry.

    Args:
        scene: (bands, rows, cols); valid: (rows, cols) bool; truecolor: (rows, cols, 3) uint8 render.
    """
    from landcover import evaluation

    ids, stats, types = segment_scene(scene, valid, band_names, **settings)
    points = add_segment_columns(points, ids, types)
    own = (settings["scale"], settings["min_size"])
    points, summary = sweep(scene, valid, band_names, points, entries, settings, {own: (ids, stats, types)})
    if not summary.empty:
        summary = sweep_summary(summary, profile["transform"])
        evaluation.write_table(summary, Path(folder) / "scale_sweep", "Segmentation scales swept (SEG_SCALES)")
        log.info("scale sweep: %s", "; ".join(f"scale {r.scale:g}, min size {r.min_size}: {r.segments} segments, "
                                               f"median {r.median_size_ha:.2f} ha" for r in summary.itertuples()))
    write_outputs(folder, ids, stats, types, profile, truecolor, len(settings["percentiles"]) + 1)
    return points


def sweep_summary(summary: pd.DataFrame, transform: Affine) -> pd.DataFrame:
    """The sweep's summary with each entry's median segment size in hectares (pixel area of ``transform``)."""
    return summary.assign(median_size_ha=summary["median_size_px"] * abs(transform.a * transform.e) / 10_000)


def missing_entries(points: pd.DataFrame, own: tuple[float, int], entries: list[tuple[float, int]]
                    ) -> list[tuple[float, int]]:
    """The segmentations a points table lacks: ``own`` (SEG_SCALE, SEG_MIN_SIZE: ``segment_type``) when it has
    no ``segment_type``, and each sweep entry other than ``own`` without its :func:`sweep_column`."""
    lacking = [own] if "segment_type" not in points else []
    return lacking + [e for e in entries if e != own and sweep_column(*e) not in points and e not in lacking]


def add_missing_types(scene: np.ndarray, valid: np.ndarray, band_names: list[str], points: pd.DataFrame,
                      lacking: list[tuple[float, int]], settings: dict) -> pd.DataFrame:
    """Segment the scene at each ``lacking`` entry and add its types to the points: ``segment`` and
    ``segment_type`` for the entry of ``settings`` (SEG_SCALE), a :func:`sweep_column` for the others.

    Args:
        scene: (bands, rows, cols); valid: (rows, cols) bool.
        lacking: :func:`missing_entries`' answer.
        settings: :func:`settings_from`'s keywords.
    """
    own = (settings["scale"], settings["min_size"])
    for scale, min_size in lacking:
        ids, _, types = segment_scene(scene, valid, band_names, **{**settings, "scale": scale, "min_size": min_size})
        typed = add_segment_columns(points, ids, types)
        if (scale, min_size) == own:
            points = typed
        else:
            points = points.assign(**{sweep_column(scale, min_size): typed["segment_type"].to_numpy()})
    return points


def type_colormap(n_types: int) -> dict[int, tuple[int, int, int, int]]:
    """Colour table for segment types 1..n (viridis, dark = low mean), 0 transparent."""
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    table = {0: (0, 0, 0, 0)}
    for t in range(1, n_types + 1):
        r, g, b, _ = cmap((t - 1) / max(n_types - 1, 1))
        table[t] = (round(r * 255), round(g * 255), round(b * 255), 255)
    return table


def write_outputs(folder, ids: np.ndarray, stats: pd.DataFrame, types: np.ndarray, profile: dict,
                  truecolor: np.ndarray, n_types: int) -> None:
    """Write the segmentation's rasters, polygons and boundary render into ``folder``.

    ``segments.tif`` (int32 ids, 0 = nodata), ``segment_types.tif`` (uint8
    types with a colour table), ``segments.gpkg`` (layer ``segments``: id,
    type, statistics) and ``segments.png`` (boundaries over true colour).
    """
    from pathlib import Path

    from landcover import plots, rasters
    from landcover.files import atomic_write

    folder = Path(folder)
    base = dict(profile, count=1)
    rasters.write_geotiff(folder / "segments.tif", ids, dict(base, dtype="int32", nodata=0), descriptions=["segment"])
    rasters.write_geotiff(folder / "segment_types.tif", type_raster(ids, types), dict(base, dtype="uint8", nodata=0),
                          descriptions=["segment_type"], colormap=type_colormap(n_types))
    polygons = segment_polygons(ids, profile["transform"], profile["crs"], stats, types)
    with atomic_write(folder / "segments.gpkg") as tmp:
        polygons.to_file(tmp, layer="segments", driver="GPKG")
    log.info("wrote %s (%d segments)", folder / "segments.gpkg", len(polygons))
    plots.segment_boundaries(folder / "segments.png", truecolor, ids)
    summary = {"segments": int(len(stats)), "median_size_px": float(stats["count"].median()),
               "types": np.bincount(types, minlength=n_types + 1)[1:].tolist()}
    with atomic_write(folder / "segments_summary.json") as tmp:
        tmp.write_text(__import__("json").dumps(summary, indent=2))


# -------------------------------------------------------------- other scenes ----
SCENE_OUTPUTS = ["segments.tif", "segment_types.tif", "segments.gpkg", "segments_summary.json"]


def segment_other_scene(source: str, settings: dict, seg: dict, folder: str, stamp: dict,
                        stretch: tuple[float, float]) -> str:
    """One scene of ``PREDICT_SCENES`` segmented whole: a task (on a Dask worker, or in the stage's process).

    The scene is read as the training scene was (:func:`landcover.scene_maps.read_scene`)
    and segmented in one piece: Felzenszwalb is not tiled, since tiles would cut
    segments at their edges and change them; a scene beyond ``SEG_MAX_MEMORY_GB``
    is refused as the training scene is. The segment types rank the segments
    against the percentiles of this scene's own segment means, as the study
    defines them. Outputs as :func:`write_outputs`, then ``done.json`` (last).

    Returns:
        The folder.
    """
    from landcover import plots, scene_maps

    scene, profile, valid, _ = scene_maps.read_scene(source, settings)
    ids, stats, types = segment_scene(scene, valid, settings["BANDS"], **seg)
    truecolor = plots.composite(scene, settings["BANDS"], ("B04", "B03", "B02"), valid, tuple(stretch)) \
        if {"B04", "B03", "B02"} <= set(settings["BANDS"]) else np.zeros((*valid.shape, 3), np.uint8)
    write_outputs(folder, ids, stats, types, profile, truecolor, len(seg["percentiles"]) + 1)
    scene_maps.write_stamp(Path(folder), stamp, SCENE_OUTPUTS)
    return folder


def segment_scenes(sources: list, settings: dict, seg: dict, out_dir: Path, stretch: tuple[float, float],
                   client=None) -> list[Path]:
    """Segment each scene into ``out_dir/<scene id>/``, one scene per task, skipping scenes already stamped.

    Args:
        settings: how the scenes are read (``BANDS``, ``RESOLUTION``, ``HARMONIZE``, masks, ``PREDICT_AOI``).
        seg: :func:`settings_from`.
        client: a ``distributed.Client`` (the scheduler runs as many scenes at once as it has worker
            threads; a task returns only its folder), or None for this process.
    """
    from tqdm import tqdm

    from landcover import scene_maps

    log.info("segmenting %d scene(s), each whole in one task (Felzenszwalb is not tiled: tiles would change "
             "the segments)", len(sources))
    folders = [Path(out_dir) / name for name in scene_maps.scene_ids(sources, settings)]
    jobs = []
    for source, folder in zip(sources, folders):
        stamp = scene_maps.plain({"source": str(source), "settings": settings, "segmentation": seg})
        if scene_maps.finished(folder, stamp):
            log.info("%s: already segmented with these settings; skipped", source)
        else:
            (folder / scene_maps.STAMP).unlink(missing_ok=True)
            jobs.append((str(source), settings, seg, str(folder), stamp, tuple(stretch)))
    bar = tqdm(total=len(jobs), desc="segmenting scenes", unit="scene", disable=None)
    if client is None:
        for job in jobs:
            segment_other_scene(*job)
            bar.update()
    else:
        from distributed import as_completed

        for future in as_completed([client.submit(segment_other_scene, *job, pure=False) for job in jobs]):
            future.result()  # a scene's error is raised here
            bar.update()
    bar.close()
    return folders
