"""Finished runs of a training stage, kept one file each, so that a killed stage resumes where it stopped.

test_segment.py, patches.py and train_bigearth.py train many models, one run at a
time. As each run finishes (its saved model, where one is saved, written first),
the stage puts what its tables and figures need of it (its ``runs.csv`` row,
its test predictions, its history) into ``<output folder>/.runs/`` as one file,
written to a temporary name and renamed: a file there is a finished run, and a
run killed half-way leaves only a temporary file, which is never read and is
removed on the next start. The folder also holds the fingerprint of the
stage's settings and inputs (:func:`landcover.cli.fingerprint`); when they
change, or with ``--force``, it is emptied and the stage starts over. A re-run
with the same settings takes the finished runs from their files and trains only
the others, so its tables are those of an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import re
import shutil
from pathlib import Path
from typing import Any

from landcover.files import atomic_write

log = logging.getLogger(__name__)

FOLDER = ".runs"
FINGERPRINT = "fingerprint"


def clear(output_folder: Path) -> None:
    """Forget every finished run of the stage writing ``output_folder`` (``--force``)."""
    shutil.rmtree(Path(output_folder) / FOLDER, ignore_errors=True)


class FinishedRuns:
    """The finished runs of one stage for one fingerprint of its settings and inputs.

    Args:
        output_folder: the stage's output folder; the runs live in its ``.runs/``.
        fingerprint: what the stage's results depend on; runs of another fingerprint are dropped.
    """

    def __init__(self, output_folder: Path, fingerprint: str):
        self.folder = Path(output_folder) / FOLDER
        self.reused: list[str] = []
        self.new: list[str] = []
        stamp = self.folder / FINGERPRINT
        if self.folder.exists() and (not stamp.exists() or stamp.read_text() != fingerprint):
            dropped = len(list(self.folder.glob("*.pkl")))
            if dropped:
                log.info("settings or inputs changed since the runs in %s: %d finished runs dropped, the stage "
                         "starts over", self.folder, dropped)
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        for partial in self.folder.glob(".*.tmp-*"):  # a run killed while its file was written
            partial.unlink()
        if not stamp.exists():
            with atomic_write(stamp) as tmp:
                tmp.write_text(fingerprint)
        finished = len(list(self.folder.glob("*.pkl")))
        if finished:
            log.info("%d finished runs in %s are reused; the others are trained", finished, self.folder)

    def _path(self, key: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_")[:80]
        return self.folder / f"{slug}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.pkl"

    def get(self, key: str) -> dict[str, Any] | None:
        """The record of finished run ``key``, or None when it has not finished (or its file is unreadable)."""
        path = self._path(key)
        if not path.exists():
            return None
        try:
            with open(path, "rb") as f:
                stored = pickle.load(f)
        except Exception as err:  # noqa: BLE001 - whatever makes it unreadable, the run is not finished
            log.warning("%s: unreadable (%s); run %s is trained again", path, err, key)
            return None
        if stored.get("key") != key:
            return None
        self.reused.append(key)
        log.info("reused finished run: %s", key)
        return stored["record"]

    def put(self, key: str, record: dict[str, Any]) -> None:
        """Keep run ``key`` as finished (call it once everything the run writes elsewhere is written)."""
        with atomic_write(self._path(key)) as tmp:
            with open(tmp, "wb") as f:
                pickle.dump({"key": key, "record": record}, f, protocol=pickle.HIGHEST_PROTOCOL)
        self.new.append(key)
        log.info("new finished run: %s (kept in %s)", key, self.folder)

    def summary(self) -> None:
        """Log how many runs were reused and how many trained in this invocation."""
        log.info("runs: %d reused from an earlier, interrupted invocation, %d trained now%s", len(self.reused),
                 len(self.new), f" (reused: {'; '.join(self.reused)})" if self.reused else "")
