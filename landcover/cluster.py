"""Whole-scene prediction on Dask (``distributed``): a local cluster or an existing one.

``SCHEDULER = None`` never imports Dask: prediction runs in the stage's own
process (:mod:`landcover.inference`). ``"local"`` starts a
``distributed.LocalCluster`` of ``DASK_WORKERS`` worker processes with one
thread each; any other value is the address of a running scheduler (for
example one started by ``dask-jobqueue`` on SLURM, or on Kubernetes).

The scene is cut into ``PREDICT_CHUNK`` x ``PREDICT_CHUNK`` output chunks.
Each task reads its chunk of the normalised, symmetric-padded scene with a
halo of the patch radius from a memory-mapped ``.npy`` file that the stage
writes beside its outputs (the same array the in-process path predicts from,
so the labels are identical), and predicts it with the model that a worker
plugin loaded once per worker. Workers must see that file and the model file
at the same paths (a shared file system on a cluster).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

log = logging.getLogger(__name__)

PLUGIN = "landcover-model"


def _worker_threads() -> None:
    """One TensorFlow thread per worker process: the cluster's parallelism is its workers."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already initialised in this process: keep its threads
        pass


def model_plugin(model_path: str | Path, fully_convolutional: bool):
    """A ``distributed.WorkerPlugin`` that loads the model once per worker (``loads`` counts it)."""
    from distributed import WorkerPlugin

    class ModelPlugin(WorkerPlugin):
        name = PLUGIN

        def __init__(self):
            self.path, self.fcn, self.model, self.loads = str(model_path), fully_convolutional, None, 0

        def setup(self, worker):
            _worker_threads()
            from landcover import models

            if not Path(self.path).exists():
                raise FileNotFoundError(f"{self.path}: the model file is not readable on worker {worker.address}")
            model, _ = models.load_model(self.path, threads=1)  # a patch CNN, or a per-pixel classifier
            self.model = models.fully_convolutional(model) if self.fcn else model
            self.loads += 1

    return ModelPlugin()


def predict_chunk(padded_path: str, valid_path: str, box: tuple[int, int, int, int], patch_size: int,
                  codes: np.ndarray, batch_size: int, tile_mb: float, probabilities: str | None = None
                  ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray, np.ndarray | None]:
    """One task: :func:`landcover.inference.predict_box` with the worker's model, from the memory-mapped inputs.

    Returns:
        ``(box, prediction, confidence, probabilities)``.
    """
    from distributed import get_worker

    from landcover import inference

    plugin = get_worker().plugins[PLUGIN]
    padded = np.load(padded_path, mmap_mode="r")
    valid = np.load(valid_path, mmap_mode="r")
    return (box, *inference.predict_box(plugin.model, padded, valid, box, patch_size, codes,
                                        fully_convolutional=plugin.fcn, batch_size=batch_size, tile_mb=tile_mb,
                                        probabilities=probabilities))


def chunks(shape: tuple[int, int], size: int) -> list[tuple[int, int, int, int]]:
    """(r0, r1, c0, c1) output chunks of at most ``size`` x ``size`` covering ``shape``."""
    if size < 1:
        raise ValueError(f"PREDICT_CHUNK={size}: expected a positive number of pixels")
    return [(r, min(r + size, shape[0]), c, min(c + size, shape[1]))
            for r in range(0, shape[0], size) for c in range(0, shape[1], size)]


@contextlib.contextmanager
def client_or_none(scheduler: str | None, workers: int) -> Iterator[object]:
    """:func:`connect` where ``SCHEDULER`` is set; None (the stage's own process, Dask not imported) where not."""
    if scheduler is None:
        yield None
    else:
        with connect(scheduler, workers) as client:
            yield client


@contextlib.contextmanager
def connect(scheduler: str, workers: int) -> Iterator[object]:
    """A ``distributed.Client``: of a new LocalCluster (``"local"``) or of the scheduler at an address.

    Raises:
        ConnectionError: the scheduler cannot be reached (one line, naming the address).
    """
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler == "local":
        if int(workers) < 1:
            raise ValueError(f"DASK_WORKERS={workers}: expected at least 1")
        cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)  # any free port
        client = Client(cluster)
        log.info("Dask LocalCluster of %d workers; dashboard %s", int(workers), client.dashboard_link)
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as error:
            raise ConnectionError(f"SCHEDULER={scheduler!r}: cannot reach the Dask scheduler "
                                  f"({type(error).__name__})") from None
        log.info("Dask cluster at %s; dashboard %s", scheduler, client.dashboard_link)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def predict_map(client, model_path: Path, padded: np.ndarray, valid: np.ndarray, codes: np.ndarray,
                patch_size: int, *, fully_convolutional: bool, chunk: int, batch_size: int, tile_mb: float,
                scratch: Path, probabilities: str | None = None, probability_sink=None
                ) -> tuple[np.ndarray, np.ndarray]:
    """The class and confidence maps of a scene, predicted chunk by chunk on the cluster.

    Args:
        padded: (rows + p - 1, cols + p - 1, bands) from :func:`patch_data.normalised_padded`.
        valid: (rows, cols) bool.
        codes: (classes,) code of each model output.
        scratch: folder for the memory-mapped inputs the workers read (removed afterwards).
        probabilities, probability_sink: with a dtype (``"uint8"``, ``"float32"``), each
            chunk's (rows, cols, classes) probabilities go to ``probability_sink(r0, c0, probs)``.

    Returns:
        ``(prediction, confidence)`` as :func:`landcover.inference.map_from_tiles`.
    """
    from distributed import as_completed

    register_model(client, model_path, fully_convolutional)
    prediction = np.zeros(valid.shape, np.uint16)
    confidence = np.zeros(valid.shape, np.float32)
    with scratch_inputs(scratch, padded, valid) as (padded_path, valid_path):
        futures = [client.submit(predict_chunk, padded_path, valid_path, box, patch_size, codes, batch_size,
                                 tile_mb, probabilities, pure=False) for box in chunks(valid.shape, chunk)]
        for future in tqdm(as_completed(futures), total=len(futures), desc="predicting chunks on Dask",
                           unit="chunk", disable=None):
            (r0, r1, c0, c1), pred, conf, probs = future.result()
            prediction[r0:r1, c0:c1], confidence[r0:r1, c0:c1] = pred, conf
            if probability_sink is not None:
                probability_sink(r0, c0, probs)
    return prediction, confidence


def register_model(client, model_path: Path, fully_convolutional: bool) -> None:
    """Load the model once on every worker, present and future (a worker plugin)."""
    client.register_plugin(model_plugin(Path(model_path).resolve(), fully_convolutional))


@contextlib.contextmanager
def scratch_inputs(scratch: Path, padded: np.ndarray, valid: np.ndarray) -> Iterator[tuple[str, str]]:
    """``padded`` and ``valid`` saved as ``.npy`` files in ``scratch`` for the workers to memory-map; removed after."""
    scratch.mkdir(parents=True, exist_ok=True)
    padded_path, valid_path = scratch / f".padded-{os.getpid()}.npy", scratch / f".valid-{os.getpid()}.npy"
    try:
        np.save(padded_path, np.ascontiguousarray(padded, np.float32))
        np.save(valid_path, valid)
        yield str(padded_path), str(valid_path)
    finally:
        padded_path.unlink(missing_ok=True)
        valid_path.unlink(missing_ok=True)
