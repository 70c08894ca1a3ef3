"""Command line of the stage scripts: presets, ``--set KEY=VALUE``, logging, errors.

Every stage script calls :func:`run_stage` from its ``main()``. Overrides are
written onto the ``config`` module itself, so code that reads ``config.NAME``
at run time sees them.
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import json
import logging
import sys
import time
import resource
from pathlib import Path
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

import rasterio.errors

import config

log = logging.getLogger(__name__)

# Errors that mean "bad input or bad configuration": reported on one line.
INPUT_ERRORS = (FileNotFoundError, ValueError, rasterio.errors.RasterioError)

# Keys whose value may take another type than the default's. Where Path is
# allowed, a string is a path and becomes a Path, except a URL where str is
# allowed too (a STAC item's address).
_ALTERNATIVE_TYPES: dict[str, tuple[type, ...]] = {
    "SCENE_PATH": (Path, str, list, tuple),
    "TARGET_CRS": (str, type(None)),
    "SCENE_OFFSET": (int, float, type(None)),
    "MASK_CLOUDS": (bool, str),
    "AOI": (tuple, list, Path, type(None)),
    "PREDICT_AOI": (tuple, list, Path, type(None)),
    "EVAL_LABELS_PATH": (Path, type(None)),
    "EVAL_LABEL_ATTRIBUTE": (str, type(None)),
    "EVAL_CROSSWALK": (Path, type(None)),
    "LABEL_LAYER": (str, int, type(None)),
    "CNN_TRAIN_SIZE": (int, type(None)),
    "MLP_PATIENCE": (int, type(None)),
    "CNN_PATIENCE": (int, type(None)),
    "PREDICT_MODEL": (Path, type(None)),
    "SCHEDULER": (str, type(None)),
    "BIGEARTH_CLASSES": (str, list, tuple),
    "BIGEARTH_CLOUD_LIST": (Path, type(None)),
    "BIGEARTH_SNOW_LIST": (Path, type(None)),
    "BIGEARTH_MAX_PATCHES": (int, type(None)),
}


def config_keys(cfg: ModuleType = config) -> list[str]:
    """Names of the settings in ``cfg``: its UPPER_SNAKE module constants."""
    return [k for k in vars(cfg) if k.isupper() and not k.startswith("_")]


# config.py's own values, taken when this module is first imported: every stage run starts from them,
# so a second stage run in the same process (tests, notebooks) does not inherit the first one's --set
_DEFAULTS = {k: copy.deepcopy(getattr(config, k)) for k in config_keys()}


def reset_config(cfg: ModuleType = config) -> None:
    """Put every setting back to config.py's value (what ``--preset`` and ``--set`` start from)."""
    for key, value in _DEFAULTS.items():
        setattr(cfg, key, copy.deepcopy(value))


def parse_value(text: str) -> Any:
    """Parse an override value as a Python literal; plain words stay strings.

    Args:
        text: the text after ``=`` in ``--set KEY=VALUE``.

    Returns:
        ``ast.literal_eval(text)``, or ``text`` itself when it is no literal
        (so ``--set SCENE_PATH=/data/S2.SAFE`` needs no quotes).
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def check_type(key: str, value: Any, default: Any) -> Any:
    """Return ``value`` converted to the type of ``default``, or raise ValueError."""
    allowed = _ALTERNATIVE_TYPES.get(key)
    if allowed is not None:
        if Path in allowed and isinstance(value, str) and (str not in allowed or "://" not in value):
            return Path(value)
        if not isinstance(value, allowed):
            raise ValueError(f"{key}={value!r}: expected one of {[t.__name__ for t in allowed]}")
        return value
    if default is None:
        return value
    if isinstance(default, Path):
        if isinstance(value, (str, Path)):
            return Path(value)
    elif isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return type(default)(value)
    elif isinstance(value, type(default)):
        return value
    raise ValueError(
        f"{key}={value!r}: expected a {type(default).__name__} like the default {default!r}"
    )


def apply_overrides(overrides: dict[str, Any], cfg: ModuleType = config) -> None:
    """Set each ``KEY: value`` on the config module after checking key and type.

    Raises:
        ValueError: for an unknown key or a value of the wrong type.
    """
    keys = set(config_keys(cfg))
    for key, value in overrides.items():
        if key not in keys:
            raise ValueError(f"unknown config key {key!r}; see config.py for the keys")
        setattr(cfg, key, check_type(key, value, getattr(cfg, key)))


def apply_preset(name: str, cfg: ModuleType = config) -> None:
    """Apply ``cfg.PRESETS[name]``; raise ValueError naming the known presets."""
    if name not in cfg.PRESETS:
        raise ValueError(f"unknown preset {name!r}; known presets: {sorted(cfg.PRESETS)}")
    apply_overrides(cfg.PRESETS[name], cfg)


def parse_args(argv: list[str] | None, description: str | None) -> argparse.Namespace:
    """Parse ``--preset NAME``, ``--set KEY=VALUE`` (repeatable) and ``-v``."""
    parser = argparse.ArgumentParser(
        description=description or "",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", help="apply a preset from config.PRESETS first (demo, paper)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value (a Python literal or a plain string); repeatable",
    )
    parser.add_argument("--force", action="store_true",
                        help="run even if the inputs and settings are unchanged since the last run")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def effective_config(cfg: ModuleType = config) -> dict[str, Any]:
    """The settings as JSON-friendly values (paths and tuples become str and list)."""
    def plain(v: Any) -> Any:
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        return v
    return {k: plain(getattr(cfg, k)) for k in config_keys(cfg) if k != "PRESETS"}


def save_config(folder: Path, stage: str, extra: dict | None = None) -> Path:
    """Write the effective configuration of ``stage`` to ``folder/<stage>_config.json``.

    ``extra`` adds what the stage found out (e.g. the products' radiometry and
    the masked shares) under its own keys, in lower case beside the settings.
    """
    from landcover.files import atomic_write

    path = Path(folder) / f"{stage}_config.json"
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps({**effective_config(), **(extra or {})}, indent=2, default=str))
    log.info("wrote %s", path)
    return path


def setup_logging(verbose: bool = False) -> None:
    """Configure the root logger once, for a stage script's ``main()``."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )


@dataclass
class Reuse:
    """What a stage's result depends on, so that an unchanged re-run can be skipped.

    Attributes:
        keys: the config keys the stage reads.
        inputs: returns the files and folders it reads (after overrides).
        folder: returns its output folder (the stamp and timing go there).
    """

    keys: tuple[str, ...]
    inputs: Callable[[], list[Path]]
    folder: Callable[[], Path]


MAX_FILES_HASHED = 5000


def fingerprint(keys: tuple[str, ...], inputs: list[Path]) -> str:
    """SHA-256 of the values of ``keys`` and the size and modification time of
    every input file (folders: their files, or past MAX_FILES_HASHED files the
    folder's own listing)."""
    settings = effective_config()
    values = {k: settings.get(k) for k in keys}
    files = []
    for path in map(Path, inputs):
        if path.is_dir():
            found = []
            for f in sorted(path.rglob("*")):
                if len(found) > MAX_FILES_HASHED:
                    found = [(str(p), p.stat().st_mtime_ns) for p in sorted(path.iterdir())]
                    break
                if f.is_file() and not f.name.startswith("."):
                    found.append((str(f), f.stat().st_size, f.stat().st_mtime_ns))
            files.append((str(path), found))
        elif path.exists():
            files.append((str(path), path.stat().st_size, path.stat().st_mtime_ns))
        else:
            files.append((str(path), "missing"))
    text = json.dumps({"config": values, "inputs": files}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _stamp_path(reuse: Reuse, name: str) -> Path:
    return Path(reuse.folder()) / f".{name}.stamp"


def run_stage(stage: Callable[[], None], doc: str | None, argv: list[str] | None, reuse: Reuse | None = None) -> int:
    """Parse the command line, apply overrides, run ``stage`` and report errors.

    Args:
        stage: the stage's body, reading ``config.NAME`` at run time.
        doc: the script's docstring (shown by ``--help``).
        argv: command-line arguments (None: ``sys.argv[1:]``).

    Returns:
        0 on success, 2 when an input or the configuration is bad (the reason is
        logged on one line; outputs written before are left as they were).
    """
    args = parse_args(argv, doc)
    setup_logging(args.verbose)
    name = Path(sys.argv[0]).stem if stage.__module__ == "__main__" else stage.__module__
    try:
        reset_config()
        if args.preset:
            apply_preset(args.preset)
        apply_overrides(dict(_split_override(o) for o in args.overrides))
        log.info("effective configuration: %s", json.dumps(effective_config()))
        if reuse is not None and not args.force:
            stamp = _stamp_path(reuse, name)
            if stamp.exists() and stamp.read_text() == fingerprint(reuse.keys, reuse.inputs()):
                log.info("%s: inputs and settings unchanged since the last run; reusing its outputs in %s "
                         "(--force redoes it)", name, reuse.folder())
                return 0
        if reuse is not None and args.force:  # redo every run, not only the stage's tables
            from landcover import resume

            resume.clear(reuse.folder())
        start = time.perf_counter()
        stage()
        wall = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if reuse is not None:
            from landcover.files import atomic_write

            with atomic_write(Path(reuse.folder()) / f"{name}_timing.json") as tmp:
                tmp.write_text(json.dumps({"stage": name, "wall_s": round(wall, 2), "peak_mb": round(peak_mb),
                                           "finished": time.strftime("%Y-%m-%d %H:%M:%S")}))
            with atomic_write(_stamp_path(reuse, name)) as tmp:
                tmp.write_text(fingerprint(reuse.keys, reuse.inputs()))
    except INPUT_ERRORS as err:
        log.error("%s: %s", name, " ".join(str(err).split()))
        return 2
    log.info("%s done in %.1f s, peak memory %.0f MB", name, wall, peak_mb)
    return 0


def _split_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ValueError(f"--set {text!r}: expected KEY=VALUE")
    key, value = text.split("=", 1)
    return key.strip(), parse_value(value.strip())
