"""BigEarthNet-S2 archives reduced to our bands and the AOI's classes, in shards.

Reads the v1.0 layout (one folder per patch: ``<patch>_B01.tif`` ..
``_B12.tif``, ``_B8A.tif`` and ``<patch>_labels_metadata.json`` with CLC
level-3 names; cloud/shadow and snow lists as CSV beside) and the v2.0 (reBEN)
layout (``metadata.parquet`` plus ``BigEarthNet-S2/<tile>/<patch_id>/
<patch_id>_B02.tif``; 19-class names and snow/cloud flags). Patches are
streamed into shards of ``shard_size`` patches, so the full archive never has
to fit in memory:

- ``shard_<k>_x.npy``: (n, 120, 120, bands) int16 in the scene's convention, channels-last;
- ``shard_<k>_y.npy``: (n,) int16 CLC codes (label policy ``first``) or
  (n, classes) uint8 multi-hot (``multi``);
- ``manifest.parquet``: patch, shard, index, labels; ``manifest.json``: band
  order, classes, policy, counts of what was read and skipped, throughput.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from rasterio.enums import Resampling
from tqdm import tqdm

from landcover import legend, products
from landcover.files import atomic_write

log = logging.getLogger(__name__)

PATCH_PX = 120
CLOUD_LIST = "patches_with_cloud_and_shadow.csv"
SNOW_LIST = "patches_with_seasonal_snow.csv"


@dataclass
class Patch:
    """One archive patch: its name, folder, and (v2) labels and flags from the metadata."""

    name: str
    folder: Path
    labels: list[str] | None = None
    cloudy: bool = False
    snowy: bool = False


@dataclass
class ReadCounts:
    """What happened to the patches of an archive."""

    listed: int = 0
    cloud_or_shadow: int = 0
    snow: int = 0
    unreadable: int = 0
    no_label: int = 0
    kept: int = 0
    unreadable_examples: list[str] = field(default_factory=list)


def list_patches(root: Path) -> tuple[str, list[Patch]]:
    """The archive's layout (``"v1"`` or ``"v2"``) and its patches, sorted by name.

    Raises:
        FileNotFoundError: ``root`` is missing or holds no patch.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"BIGEARTH_PATH {root} is not a folder; point it at a BigEarthNet-S2 archive")
    if (root / "metadata.parquet").exists():
        meta = pd.read_parquet(root / "metadata.parquet")
        patches = [Patch(row.patch_id, root / "BigEarthNet-S2" / row.patch_id.rsplit("_", 2)[0] / row.patch_id,
                         list(row.labels), bool(row.contains_cloud_or_shadow), bool(row.contains_seasonal_snow))
                   for row in meta.itertuples()]
        return "v2", sorted(patches, key=lambda p: p.name)
    patches = [Patch(d.name, d) for d in sorted(root.iterdir()) if d.is_dir()]
    if not patches:
        raise FileNotFoundError(f"{root}: no patch folders and no metadata.parquet; not a BigEarthNet-S2 archive")
    return "v1", patches


def read_name_list(path: Path | None) -> set[str]:
    """Patch names listed one per line (no header), as in the official CSVs; empty if absent."""
    if path is None or not Path(path).exists():
        return set()
    return {line.strip().split(",")[0] for line in Path(path).read_text().splitlines() if line.strip()}


def map_labels(names: list[str], targets: list[int], layout: str) -> list[int]:
    """Map a patch's label names to target CLC codes, in the patch's order.

    v1 names are CLC level-3 names (any spelling); v2 names are BigEarthNet-19
    classes, kept only where exactly one target code lies in the class's group
    (e.g. "Arable land" -> 211 when 211 is the only arable target).
    """
    out: list[int] = []
    for name in names:
        if layout == "v1":
            code = legend.clc_code_for_name(name)
            candidates = [code] if code in targets else []
        else:
            group = legend.ben19_codes(name) or ()
            candidates = [c for c in group if c in targets]
        if len(candidates) == 1 and candidates[0] not in out:
            out.append(candidates[0])
    return out


def read_patch(patch: Patch, bands: list[str]) -> tuple[np.ndarray, list[str]]:
    """The patch's bands at 120 x 120 (20/60 m bands resampled bilinearly) and its labels.

    Returns:
        ``(x, labels)``: x is (bands, 120, 120) uint16; labels the names from
        the patch's JSON (v1) or the metadata (v2).

    Raises:
        FileNotFoundError, ValueError, rasterio errors: missing or unreadable files.
    """
    x = np.empty((len(bands), PATCH_PX, PATCH_PX), np.uint16)
    for i, band in enumerate(bands):
        with rasterio.open(patch.folder / f"{patch.name}_{band}.tif") as src:
            x[i] = src.read(1, out_shape=(PATCH_PX, PATCH_PX), resampling=Resampling.bilinear)
    if patch.labels is not None:
        return x, patch.labels
    meta = json.loads((patch.folder / f"{patch.name}_labels_metadata.json").read_text())
    return x, list(meta["labels"])


def read_batch(patches: list[Patch], bands: list[str], targets: list[int], layout: str, policy: str,
               offset: float) -> list[tuple]:
    """Read a batch of patches: one task (on a Dask worker, or in the stage's process).

    Returns:
        One entry per patch, in order: ``("kept", name, x, y, codes)`` with x
        (120, 120, bands) int16 channels-last in the scene's convention and y
        the label (``first``: int16 code; ``multi``: multi-hot uint8),
        ``("unreadable", name, reason)`` or ``("no_label", name)``.
    """
    out: list[tuple] = []
    for patch in patches:
        try:
            x, names = read_patch(patch, bands)
        except (OSError, ValueError, KeyError, rasterio.errors.RasterioError) as err:
            out.append(("unreadable", patch.name, " ".join(str(err).split())[:200]))
            continue
        codes = map_labels(names, targets, layout)
        if not codes:
            out.append(("no_label", patch.name))
            continue
        # the scene's convention; BigEarthNet sets no nodata, so a 0 DN is a 0 reflectance here
        x = np.moveaxis(products.harmonise(x, np.ones(x.shape, bool), offset, 10000.0), 0, -1)
        y = np.int16(codes[0]) if policy == "first" else np.isin(targets, codes).astype(np.uint8)
        out.append(("kept", patch.name, x, y, codes))
    return out


def _batches_in_order(batches: list[list[Patch]], args: tuple, client=None, in_flight: int | None = None):
    """Yield :func:`read_batch` of each batch, in order: in this process, or on Dask with a bounded
    number of batches in flight (so finished batches do not pile up in memory)."""
    if client is None:
        for batch in batches:
            yield read_batch(batch, *args)
        return
    from collections import deque

    in_flight = in_flight or 2 * max(1, sum(client.nthreads().values()))
    pending: deque = deque()
    queue = iter(batches)
    try:
        for batch in queue:
            pending.append(client.submit(read_batch, batch, *args, pure=False))
            if len(pending) >= in_flight:
                break
        while pending:
            result = pending.popleft().result()
            batch = next(queue, None)
            if batch is not None:
                pending.append(client.submit(read_batch, batch, *args, pure=False))
            yield result
    finally:
        for future in pending:  # stopped early (BIGEARTH_MAX_PATCHES) or failed
            future.cancel()


def write_shards(root: Path, out_dir: Path, bands: list[str], targets: list[int], policy: str, shard_size: int,
                 cloud_list: Path | None = None, snow_list: Path | None = None,
                 max_patches: int | None = None, offset: float = 0.0, client=None, batch_size: int = 64) -> dict:
    """Read an archive into shards of ``shard_size`` patches; see the module docstring.

    Args:
        root: the archive (v1 folder of patch folders, or v2 root).
        out_dir: the shard folder (created; earlier shards there are replaced).
        bands: bands to keep, in order.
        targets: CLC codes kept as labels; patches with none left are skipped.
        policy: ``"first"`` (the first remaining label, as the study) or ``"multi"``.
        shard_size: patches per shard.
        cloud_list, snow_list: CSVs of names to drop (v1; default beside ``root``).
        max_patches: stop after this many kept patches (None: all).
        offset: ``BIGEARTH_OFFSET``, the DN offset that brings the archive to
            :data:`landcover.products.CONVENTION` (0 for v1 and v2, stored as
            10000 x reflectance). Patches are written through the same
            :func:`landcover.products.harmonise` as the scene, as int16.
        client: a ``distributed.Client``: batches of ``batch_size`` patches are
            read on its workers; their results are taken in archive order, so
            the shards and the manifest are those of a serial run.

    Returns:
        The manifest (also written as ``manifest.json``).
    """
    if policy not in ("first", "multi"):
        raise ValueError(f"BIGEARTH_LABELS={policy!r}: expected 'first' or 'multi'")
    layout, patches = list_patches(root)
    cloudy = read_name_list(cloud_list or Path(root) / CLOUD_LIST)
    snowy = read_name_list(snow_list or Path(root) / SNOW_LIST)
    counts = ReadCounts(listed=len(patches))
    out_dir = Path(out_dir)
    for old in out_dir.glob("shard_*.npy"):
        old.unlink()
    rows, xs, ys, shard = [], [], [], 0
    start = time.perf_counter()

    def flush() -> None:
        nonlocal xs, ys, shard
        if not xs:
            return
        for suffix, array in (("x", np.stack(xs)), ("y", np.stack(ys))):
            with atomic_write(out_dir / f"shard_{shard:05d}_{suffix}.npy") as tmp:
                np.save(tmp, array)
        xs, ys, shard = [], [], shard + 1

    candidates = []
    for patch in patches:
        if patch.cloudy or patch.name in cloudy:
            counts.cloud_or_shadow += 1
        elif patch.snowy or patch.name in snowy:
            counts.snow += 1
        else:
            candidates.append(patch)
    batches = [candidates[i:i + batch_size] for i in range(0, len(candidates), batch_size)]
    bar = tqdm(total=len(candidates), desc="reading BigEarthNet" + (" on Dask" if client is not None else ""),
               unit="patch", disable=None)
    results = _batches_in_order(batches, (bands, targets, layout, policy, offset), client)
    try:
        for batch in results:
            for entry in batch:
                bar.update()
                if entry[0] == "unreadable":
                    counts.unreadable += 1
                    if len(counts.unreadable_examples) < 10:
                        counts.unreadable_examples.append(f"{entry[1]}: {entry[2]}")
                    continue
                if entry[0] == "no_label":
                    counts.no_label += 1
                    continue
                _, name, x, y, codes = entry
                xs.append(x)
                ys.append(y)
                rows.append({"patch": name, "shard": shard, "index": len(xs) - 1, "labels": " ".join(map(str, codes))})
                counts.kept += 1
                if len(xs) == shard_size:
                    flush()
                if max_patches is not None and counts.kept >= max_patches:
                    break
            if max_patches is not None and counts.kept >= max_patches:
                break
    finally:
        results.close()
        bar.close()
    flush()
    seconds = time.perf_counter() - start
    manifest = {"layout": layout, "source": str(root), "bands": bands, "classes": targets, "policy": policy,
                "radiometry": products.CONVENTION, "offset": offset,
                "shards": shard, "patch_size": PATCH_PX, "counts": vars(counts),
                "seconds": round(seconds, 2), "patches_per_second": round(counts.listed / max(seconds, 1e-9), 1)}
    with atomic_write(out_dir / "manifest.parquet") as tmp:
        pd.DataFrame(rows, columns=["patch", "shard", "index", "labels"]).to_parquet(tmp, index=False)
    with atomic_write(out_dir / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2))
    log.info("BigEarthNet %s: %d listed, %d kept, %d cloud/shadow, %d snow, %d unreadable, %d without an AOI class; "
             "%.1f patches/s", layout, counts.listed, counts.kept, counts.cloud_or_shadow, counts.snow,
             counts.unreadable, counts.no_label, manifest["patches_per_second"])
    for example in counts.unreadable_examples:
        log.warning("skipped unreadable patch %s", example)
    return manifest


def read_manifest(folder: Path) -> dict:
    """The manifest written by :func:`write_shards`."""
    path = Path(folder) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run read_bigearth.py first")
    return json.loads(path.read_text())


def open_shards(folder: Path, manifest: dict) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The shards memory-mapped (nothing is read until used) and every patch's labels.

    Returns:
        ``(xs, y, where)``: xs a list of (n_k, 120, 120, bands) int16 memmaps;
        y (N,) int16 codes or (N, K) multi-hot; where (N, 2) int64 of
        (shard, index) per patch.
    """
    folder = Path(folder)
    xs = [np.load(folder / f"shard_{k:05d}_x.npy", mmap_mode="r") for k in range(manifest["shards"])]
    if not xs:
        raise ValueError(f"{folder}: no patch was kept; check BIGEARTH_PATH and BIGEARTH_CLASSES")
    y = np.concatenate([np.load(folder / f"shard_{k:05d}_y.npy") for k in range(manifest["shards"])])
    where = np.concatenate([np.column_stack([np.full(len(x), k), np.arange(len(x))]) for k, x in enumerate(xs)])
    return xs, y, where


def shard_dataset(xs: list[np.ndarray], where: np.ndarray, targets: np.ndarray, index: np.ndarray, batch_size: int,
                  *, sample_weights: np.ndarray | None = None, shuffle: bool = False, seed: int = 0):
    """A Keras ``PyDataset`` of patches ``index`` read from the memory-mapped shards.

    Args:
        xs, where: from :func:`open_shards`.
        targets: (N,) class indices or (N, K) multi-hot, per patch.
        index: the patches to serve.
        sample_weights: (N,) optional per-patch weights.
    """
    import keras

    class Shards(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(index) if shuffle else np.asarray(index)

        def __len__(self) -> int:
            return -(-len(self.order) // batch_size)

        def __getitem__(self, i: int):
            idx = self.order[i * batch_size:(i + 1) * batch_size]
            shard, within = where[idx, 0], where[idx, 1]
            x = np.empty((idx.size, *xs[0].shape[1:]), np.float32)
            for k in np.unique(shard):  # one fancy read per shard touched by the batch
                x[shard == k] = xs[k][within[shard == k]]
            if sample_weights is None:
                return x, targets[idx]
            return x, targets[idx], sample_weights[idx]

        def on_epoch_end(self) -> None:
            if shuffle:
                self.order = self.rng.permutation(self.order)

    return Shards()
