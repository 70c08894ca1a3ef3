"""Stage 6: read a BigEarthNet-S2 archive, reduced to our bands and the AOI's classes, into shards.

Drops the patches on the cloud/shadow and seasonal-snow lists (v1 CSVs beside
the archive, or v2's metadata flags) and patches whose files are missing or
unreadable (counted and reported; one bad patch never stops the run). Keeps
the bands BANDS (20/60 m bands resampled to 120 x 120, bilinear) and only
labels among the AOI's classes (BIGEARTH_CLASSES), mapped name -> CLC code
through the legend; patches with none left are skipped. Label policy
BIGEARTH_LABELS: "first" (the study) or "multi" (multi-hot).

Inputs:  BIGEARTH_PATH (v1.0 or v2.0 layout; the demo archive is generated when
         missing), PREP_DIR/classes.json (with BIGEARTH_CLASSES = "scene")
Patches are written in the scene's radiometric convention (HARMONIZE: int16,
10000 x reflectance; BIGEARTH_OFFSET is added first, 0 for v1 and v2), so that
transfer compares like with like. With SCHEDULER ("local" or a scheduler's
address) batches of patches are read on Dask workers and taken in archive
order: the same shards and manifest as a serial run.

Outputs (BIGEARTH_DIR): shard_<k>_x.npy (n, 120, 120, bands) int16 channels-last,
         shard_<k>_y.npy labels, manifest.parquet (patch, shard, index, labels),
         manifest.json (bands, classes, policy, counts, patches per second),
         read_bigearth_config.json
Config keys: BIGEARTH_PATH, BIGEARTH_CLOUD_LIST, BIGEARTH_SNOW_LIST, BIGEARTH_DIR,
    BIGEARTH_CLASSES, BIGEARTH_LABELS, BIGEARTH_SHARD_SIZE, BIGEARTH_MAX_PATCHES, BIGEARTH_OFFSET,
    BANDS, PREP_DIR, DEMO_DIR, SEED, SCHEDULER, DASK_WORKERS.
Run:
    python read_bigearth.py [--set BIGEARTH_PATH=/data/BigEarthNet-v1.0 --set BIGEARTH_LABELS=multi]
"""

import logging
import sys
from pathlib import Path

import config
from landcover import bigearth, cli, cluster, demo, labels, legend

log = logging.getLogger("read_bigearth")


def target_classes() -> list[int]:
    """The CLC codes kept, from BIGEARTH_CLASSES."""
    choice = config.BIGEARTH_CLASSES
    if choice == "scene":
        return [c.code for c in labels.read_classes(Path(config.PREP_DIR) / "classes.json")]
    if choice == "study":
        return list(legend.STUDY_CLASSES)
    if isinstance(choice, (list, tuple)) and choice and all(int(c) in legend.CLC_CODES for c in choice):
        return sorted(int(c) for c in choice)
    raise ValueError(f"BIGEARTH_CLASSES={choice!r}: expected 'scene', 'study' or a list of CLC codes")


def run() -> None:
    if config.BIGEARTH_SHARD_SIZE < 1:
        raise ValueError(f"BIGEARTH_SHARD_SIZE={config.BIGEARTH_SHARD_SIZE}: expected a positive number of patches")
    targets = target_classes()
    demo.ensure_bigearth_demo(config.BIGEARTH_PATH, config.DEMO_DIR, config.SEED)
    # with SCHEDULER: batches of patches read on the workers, taken in archive order
    with cluster.client_or_none(config.SCHEDULER, config.DASK_WORKERS) as client:
        manifest = bigearth.write_shards(
            config.BIGEARTH_PATH, config.BIGEARTH_DIR, list(config.BANDS), targets, config.BIGEARTH_LABELS,
            config.BIGEARTH_SHARD_SIZE, config.BIGEARTH_CLOUD_LIST, config.BIGEARTH_SNOW_LIST,
            config.BIGEARTH_MAX_PATCHES, config.BIGEARTH_OFFSET, client=client)
    if manifest["counts"]["kept"] == 0:
        raise ValueError(f"{config.BIGEARTH_PATH}: no patch has a label among the classes {targets}; "
                         "check BIGEARTH_CLASSES")
    cli.save_config(Path(config.BIGEARTH_DIR), "read_bigearth")


CONFIG_KEYS = ("BIGEARTH_PATH", "BIGEARTH_CLOUD_LIST", "BIGEARTH_SNOW_LIST", "BIGEARTH_DIR", "BIGEARTH_CLASSES",
               "BIGEARTH_LABELS", "BIGEARTH_SHARD_SIZE", "BIGEARTH_MAX_PATCHES", "BIGEARTH_OFFSET", "BANDS", "PREP_DIR",
               "DEMO_DIR", "SEED")


def inputs() -> list[Path]:
    lists = [Path(p) for p in (config.BIGEARTH_CLOUD_LIST, config.BIGEARTH_SNOW_LIST) if p is not None]
    return [Path(config.BIGEARTH_PATH), Path(config.PREP_DIR) / "classes.json", *lists]


def main(argv: list[str] | None = None) -> int:
    return cli.run_stage(run, __doc__, argv, cli.Reuse(CONFIG_KEYS, inputs, lambda: Path(config.BIGEARTH_DIR)))


if __name__ == "__main__":
    sys.exit(main())
