"""Classifiers: the random-forest baseline and the study's Keras networks.

Keras is imported inside the functions, so stages that train no network do
not pay for loading TensorFlow. Keras inputs are channels-last.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.utils.class_weight import compute_class_weight
from tqdm import tqdm

log = logging.getLogger(__name__)


def random_forest(n_trees: int, seed: int) -> RandomForestClassifier:
    """The baseline: a seeded random forest (same seed, same forest, any n_jobs)."""
    return RandomForestClassifier(n_estimators=n_trees, random_state=seed, n_jobs=-1)


def fit_onehot_forest(x: np.ndarray, y: np.ndarray, n_classes: int, n_trees: int, seed: int) -> RandomForestClassifier:
    """The study's forest: fitted on the one-hot label matrix, a multi-output forest (one 0/1 output per class).

    Args:
        x: (N, features) float.
        y: (N,) class indices 0..n_classes-1.
    """
    return random_forest(n_trees, seed).fit(x, np.eye(n_classes, dtype=np.int8)[y])


def onehot_decision(rows: np.ndarray) -> np.ndarray:
    """Class index of each predicted one-hot row, as the study scored it: -1 (wrong for every
    class) where the row is not exactly one class, i.e. no class or several got a majority.

    Args:
        rows: (N, classes) 0/1 predictions of :func:`fit_onehot_forest`'s model.

    Returns:
        (N,) int64.
    """
    rows = np.asarray(rows)
    return np.where(rows.sum(axis=1) == 1, rows.argmax(axis=1), -1).astype(np.int64)


PRECISIONS = ("auto", "float32", "mixed_bfloat16")


def bfloat16_is_fast() -> bool:
    """True where bfloat16 arithmetic runs natively: a GPU of compute capability 8.0 or later
    (Ampere, Hopper), or else a CPU with AVX-512 BF16 or AMX (Linux: /proc/cpuinfo flags)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
        return tuple(capability) >= (8, 0)
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str) -> str:
    """``PRECISION`` as a Keras dtype policy: "auto" is "mixed_bfloat16" where bfloat16 is fast
    (:func:`bfloat16_is_fast`), else "float32"."""
    if precision not in PRECISIONS:
        raise ValueError(f"PRECISION={precision!r}: expected one of {PRECISIONS}")
    if precision == "auto":
        return "mixed_bfloat16" if bfloat16_is_fast() else "float32"
    return precision


# Training batches run per call into TensorFlow (Keras's steps_per_execution): the same batches, in the
# same order, with the same updates; only the Python round trips between them go (benchmarks/bench_fit.py).
STEPS_PER_EXECUTION = 32
# Batch of the per-epoch validation of array inputs: accuracy does not depend on it, the time does.
VALIDATION_BATCH = 4096


def seed_keras(seed: int, deterministic: bool, precision: str = "float32") -> None:
    """Seed Python, NumPy and TensorFlow; optionally make TensorFlow's ops deterministic;
    set the dtype policy of the networks built next (``PRECISION``: "float32",
    "mixed_bfloat16" (bfloat16 compute with float32 weights and a float32 softmax) or "auto")."""
    precision = resolve_precision(precision)
    # TensorFlow 2.2x logs a harmless tf.data attribute mismatch at C++ "error" level on every fit
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    keras.backend.clear_session()  # a fresh graph per model: no retracing warnings, no growth
    keras.utils.set_random_seed(seed)
    keras.config.set_dtype_policy(precision)  # after clear_session, which resets it
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def build_mlp(n_features: int, n_classes: int, learning_rate: float, decay: float = 0.0):
    """The study's MLP: Dense 400-300-200 (ReLU, dropout 0.2), softmax;
    SGD (momentum 0.9, Nesterov) on sparse categorical cross-entropy.

    Args:
        n_features: width of the (N, n_features) float input.
        n_classes: number of output classes (labels are 0..n_classes-1).
        decay: the study's ``SGD(decay=1e-6)`` of Keras 2, the learning rate divided by
            ``1 + decay * step`` (Keras 3's InverseTimeDecay); 0: a constant rate.
    """
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input(shape=(n_features,)),
        layers.Dense(400, activation="relu"), layers.Dropout(0.2),
        layers.Dense(300, activation="relu"), layers.Dropout(0.2),
        layers.Dense(200, activation="relu"), layers.Dropout(0.2),
        layers.Dense(n_classes, activation="softmax", dtype="float32"),  # float32 softmax under mixed precision
    ], name="mlp")
    rate = keras.optimizers.schedules.InverseTimeDecay(learning_rate, decay_steps=1, decay_rate=decay) \
        if decay else learning_rate
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=rate, momentum=0.9, nesterov=True),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=STEPS_PER_EXECUTION)
    return model


def balanced_class_weights(y: np.ndarray) -> dict[int, float]:
    """``{class index: weight}`` inversely proportional to class frequency (scikit-learn's "balanced")."""
    present = np.unique(y)
    weights = compute_class_weight("balanced", classes=present, y=y)
    return {int(c): float(w) for c, w in zip(present, weights)}


def _progress_callback(epochs: int, desc: str):
    import keras

    class Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=epochs, desc=desc, unit="epoch", leave=False, disable=None)

        def on_epoch_end(self, epoch, logs=None):
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in (logs or {}).items() if "acc" in k})

        def on_train_end(self, logs=None):
            self.bar.close()

    return Progress()


def fit_keras(model, x_train, y_train: np.ndarray, x_val, y_val: np.ndarray, *, epochs: int, batch_size: int,
              patience: int | None, desc: str = "training", min_epochs: int = 0) -> dict[str, list[float]]:
    """Train with balanced class weights and early stopping on validation accuracy.

    The weights of the best validation epoch are restored. ``patience=None``
    trains every epoch and keeps the last weights (the study's MLP). Early stopping
    watches from epoch ``min_epochs`` on (Keras's ``start_from_epoch``): the epochs
    before it are trained whatever their validation accuracy, and never kept as the best.

    Args:
        x_train, x_val: arrays (N, ...), or Keras ``PyDataset`` objects that
            yield their own labels and (training) sample weights.
        y_train, y_val: (N,) int class indices.

    Returns:
        The history (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` per epoch).
    """
    import keras

    callbacks = [_progress_callback(epochs, desc)]
    if patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience,
                                                       restore_best_weights=True, start_from_epoch=min_epochs))
    fit_args: dict[str, Any] = {}
    if isinstance(x_train, np.ndarray):
        fit_args = {"y": y_train, "batch_size": batch_size, "shuffle": True,
                    "validation_batch_size": max(batch_size, VALIDATION_BATCH)}
        validation = (x_val, y_val)
    else:
        validation = x_val
        fit_args = {"shuffle": False}  # a dataset shuffles itself
    if isinstance(x_train, np.ndarray):
        fit_args["class_weight"] = balanced_class_weights(y_train)  # a PyDataset yields sample weights itself
    history = model.fit(x_train, epochs=epochs, validation_data=validation,
                        callbacks=callbacks, verbose=0, **fit_args)
    best = int(np.argmax(history.history["val_accuracy"]))
    log.info("%s: %d epochs, best validation accuracy %.3f at epoch %d", desc, len(history.history["loss"]),
             history.history["val_accuracy"][best], best + 1)
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


CNN_FILTERS = (8, 16, 32, 64, 128, 128)


def build_patch_cnn(patch_size: int, n_bands: int, n_classes: int, *, padding: str = "same",
                    learning_rate: float = 1e-4, filters: tuple[int, ...] = CNN_FILTERS, dense: int = 1000,
                    init: str = "glorot_uniform"):
    """The study's patch CNN: Conv2D 8-16-32-64-128-128 (3x3, ReLU), Flatten,
    Dense 1000 (ReLU), softmax; Adam. Input (N, p, p, bands), channels-last.

    ``init`` is the kernel initializer of every layer: Keras's default
    ``"glorot_uniform"``, or the study's ``"uniform"`` (Keras's RandomUniform, -0.05..0.05).

    ``padding="same"`` is the study's network. ``padding="valid"`` shrinks the
    patch by 2 per 3x3 layer; once it is 1x1 the remaining layers are 1x1
    convolutions. Its Flatten-Dense head can then be turned into convolutions
    (:func:`fully_convolutional`) so that a whole scene is predicted in one pass.
    """
    import keras
    from keras import layers

    if padding not in ("same", "valid"):
        raise ValueError(f"CNN_PADDING={padding!r}: expected 'same' or 'valid'")
    inputs = keras.Input(shape=(patch_size, patch_size, n_bands))
    x, size = inputs, patch_size
    for i, f in enumerate(filters):
        kernel = 3 if padding == "same" or size >= 3 else 1
        x = layers.Conv2D(f, kernel, padding=padding, activation="relu", kernel_initializer=init,
                          name=f"conv{i + 1}")(x)
        if padding == "valid":
            size -= kernel - 1
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense, activation="relu", kernel_initializer=init, name="dense")(x)
    outputs = layers.Dense(n_classes, activation="softmax", kernel_initializer=init, name="classes",
                           dtype="float32")(x)  # float32 softmax under mixed precision
    model = keras.Model(inputs, outputs, name=f"patch_cnn_{patch_size}_{padding}")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"], steps_per_execution=STEPS_PER_EXECUTION)
    return model


def fully_convolutional(model):
    """Turn a ``valid`` patch CNN into a fully convolutional network.

    Flatten + Dense(1000) becomes a Conv2D whose kernel covers the last conv
    layer's output (s x s), the softmax Dense a 1x1 Conv2D; the weights are
    copied. On an input of (H, W, bands) the result is (H - p + 1, W - p + 1,
    classes): at (r, c) the class probabilities of the patch whose top-left
    corner is (r, c), exactly what the patch model gives for that patch.
    """
    import keras
    from keras import layers

    convs = [layer for layer in model.layers if isinstance(layer, layers.Conv2D)]
    if any(layer.padding != "valid" for layer in convs):
        raise ValueError(f"model {model.name} uses 'same' padding: only a CNN_PADDING='valid' model can be "
                         "made fully convolutional")
    dense, out = model.get_layer("dense"), model.get_layer("classes")
    n_bands = model.input_shape[-1]
    last = convs[-1].output.shape  # (None, s, s, filters)
    s, f = last[1], last[3]
    inputs = keras.Input(shape=(None, None, n_bands))
    x = inputs
    for layer in convs:
        clone = layers.Conv2D(layer.filters, layer.kernel_size, padding="valid", activation="relu", name=layer.name)
        x = clone(x)
        clone.set_weights(layer.get_weights())
    w, b = dense.get_weights()
    head = layers.Conv2D(w.shape[1], (s, s), padding="valid", activation="relu", name="dense_conv")
    x = head(x)
    head.set_weights([w.reshape(s, s, f, w.shape[1]), b])  # Flatten is row-major over (s, s, f)
    w2, b2 = out.get_weights()
    cls = layers.Conv2D(w2.shape[1], 1, padding="valid", activation="softmax", name="classes_conv")
    x = cls(x)
    cls.set_weights([w2.reshape(1, 1, *w2.shape), b2])
    return keras.Model(inputs, x, name=model.name + "_fcn")


def save_model(path, model, metadata: dict) -> None:
    """Save a Keras model (``.keras``) with a JSON of its metadata beside it, atomically."""
    import json
    from pathlib import Path

    from landcover.files import atomic_write

    path = Path(path)
    with atomic_write(path) as tmp:
        model.save(tmp)
    with atomic_write(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(metadata, indent=2))
    log.info("wrote %s and its metadata %s", path, path.with_suffix(".json").name)


def load_metadata(path) -> dict:
    """The metadata saved beside a model by :func:`save_model`."""
    import json

    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.exists() or not meta_path.exists():
        raise FileNotFoundError(f"model {path} or its metadata {meta_path.name} is missing; run patches.py first")
    return json.loads(meta_path.read_text())


def load_model(path, threads: int | None = None):
    """Load a model saved by :func:`save_model` (or a per-pixel classifier of test_segment.py, as a
    :class:`landcover.pixel_maps.PixelClassifier`); returns ``(model, metadata)``."""
    meta = load_metadata(path)
    from landcover import pixel_maps

    if pixel_maps.is_pixel_model(meta):
        return pixel_maps.load(Path(path), meta, threads), meta
    import keras

    return keras.models.load_model(Path(path)), meta


def build_bigearth_cnn(n_bands: int, n_classes: int, *, multi_label: bool = False, learning_rate: float = 5e-4,
                       patch_size: int = 120):
    """The study's BigEarthNet CNN for (N, 120, 120, bands) inputs of raw values (x 10000):
    Rescaling 1/10000; Conv 32, 32, max-pool, dropout 0.2; Conv 64, 64, max-pool,
    dropout 0.2; Conv 128, 128, max-pool; Flatten; Dense 200; dropout 0.2;
    softmax (sigmoid for multi-label); Adam.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=(patch_size, patch_size, n_bands))
    x = layers.Rescaling(1 / 10000, name="rescale")(inputs)
    for i, f in enumerate((32, 64, 128)):
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv{2 * i + 1}")(x)
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv{2 * i + 2}")(x)
        x = layers.MaxPooling2D(name=f"pool{i + 1}")(x)
        if i < 2:
            x = layers.Dropout(0.2, name=f"dropout{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(200, activation="relu", name="dense")(x)
    x = layers.Dropout(0.2, name="dropout3")(x)
    outputs = layers.Dense(n_classes, activation="sigmoid" if multi_label else "softmax", name="classes",
                           dtype="float32")(x)  # float32 output under mixed precision
    model = keras.Model(inputs, outputs, name="bigearth_cnn")
    if multi_label:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy",
                      metrics=[keras.metrics.BinaryAccuracy(name="accuracy")], steps_per_execution=STEPS_PER_EXECUTION)
    else:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], steps_per_execution=STEPS_PER_EXECUTION)
    return model


def split_at_flatten(model):
    """Split a CNN into its convolutional base (input -> Flatten output) and its head.

    Returns:
        ``(base, head)``: base maps patches to flat features; head maps those
        features to class scores with the model's own trained layers.
    """
    import keras

    flatten = model.get_layer("flatten")
    base = keras.Model(model.input, flatten.output, name=model.name + "_base")
    features = keras.Input(shape=flatten.output.shape[1:])
    x, after = features, False
    for layer in model.layers:
        if after:
            x = layer(x)
        after = after or layer is flatten
    return base, keras.Model(features, x, name=model.name + "_head")


def build_transfer_head(n_features: int, n_classes: int, learning_rate: float = 5e-4):
    """A new head for frozen convolutional features: Dense 200 (ReLU), dropout 0.2, softmax."""
    import keras
    from keras import layers

    model = keras.Sequential([keras.Input(shape=(n_features,)), layers.Dense(200, activation="relu"),
                              layers.Dropout(0.2), layers.Dense(n_classes, activation="softmax")], name="transfer_head")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], steps_per_execution=STEPS_PER_EXECUTION)
    return model
