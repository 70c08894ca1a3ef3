"""Writing outputs safely: to a temporary name beside the target, then renamed."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    On an exception the temporary file is removed and an existing ``path`` is
    left untouched, so a failed run never leaves a half-written output.
    The temporary name keeps the suffix, so drivers chosen by extension work.

    Args:
        path: the final file path; its folder is created if missing.

    Yields:
        The temporary path to write to.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
        for side in tmp.parent.glob(tmp.name + ".*"):  # e.g. GDAL's .aux.xml
            side.unlink()
