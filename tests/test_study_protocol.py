"""The study's own training protocol: the one-hot forest, SGD decay, no early stopping, uniform init, the preset."""

import numpy as np
import pytest

import config
from landcover import cli, experiment, models


def test_onehot_decision_counts_no_majority_as_wrong():
    rows = np.array([[0, 1, 0], [0, 0, 0], [1, 1, 0], [0, 0, 1]])
    assert models.onehot_decision(rows).tolist() == [1, -1, -1, 2]


def test_onehot_forest_scores_below_the_same_forest_on_overlapping_classes():
    # three classes overlapping in one feature: no class gets a majority on some pixels
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 3000)
    x = (y[:, None] + rng.normal(0, 0.9, (3000, 2))).astype(np.float32)
    train, val, test = np.arange(2000), np.arange(2000, 2500), np.arange(2500, 3000)
    common = dict(seed=42, rf_trees=50, learning_rate=0.01, epochs=1, batch_size=64, patience=1, deterministic=False)
    labels = experiment.run_pixel_classifier("rf", x, y, train, val, test, 3, **common)
    onehot = experiment.run_pixel_classifier("rf_onehot", x, y, train, val, test, 3, **common)
    assert (onehot.test_pred == -1).mean() > 0.02  # pixels with no class (or several) of the one-hot forest
    assert onehot.test["accuracy"] < labels.test["accuracy"]
    # on separable classes both forests agree
    x_easy = (y[:, None] * 10 + rng.normal(0, 0.1, (3000, 2))).astype(np.float32)
    easy = experiment.run_pixel_classifier("rf_onehot", x_easy, y, train, val, test, 3, **common)
    assert easy.test["accuracy"] == 1.0


@pytest.mark.slow
def test_mlp_decay_no_early_stopping_and_uniform_cnn_init():
    import keras

    models.seed_keras(1, False)
    mlp = models.build_mlp(3, 2, 0.01, decay=1e-6)
    schedule = mlp.optimizer.learning_rate if not hasattr(mlp.optimizer, "_learning_rate") else \
        mlp.optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.InverseTimeDecay)
    assert float(schedule(1_000_000)) == pytest.approx(0.01 / 2)  # lr / (1 + 1e-6 * step)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    history = models.fit_keras(mlp, x, y, x, y, epochs=4, batch_size=32, patience=None)
    assert len(history["loss"]) == 4  # no early stopping: every epoch
    cnn = models.build_patch_cnn(5, 4, 3, init="uniform")
    weights = cnn.get_layer("conv1").get_weights()[0]
    assert isinstance(cnn.get_layer("conv1").kernel_initializer, keras.initializers.RandomUniform)
    assert np.abs(weights).max() <= 0.05


def test_paper_preset_is_the_study_protocol():
    cli.apply_preset("paper")
    assert (config.MLP_LEARNING_RATE, config.MLP_DECAY, config.MLP_EPOCHS, config.MLP_BATCH_SIZE,
            config.MLP_PATIENCE) == (0.01, 1e-6, 75, 512, None)
    assert (config.CNN_INIT, config.CNN_LEARNING_RATE, config.CNN_EPOCHS, config.CNN_BATCH_SIZE,
            config.CNN_PATIENCE) == ("uniform", 1e-4, 75, 512, 10)
    assert config.PATCH_MIN_SAMPLES == 101 and config.RF_TREES == 100 and "onehot" in config.RF_TARGETS
    cli.apply_overrides({"MLP_PATIENCE": cli.parse_value("None")})
    assert config.MLP_PATIENCE is None


def test_precision_setting():
    import keras

    assert models.resolve_precision("float32") == "float32"
    assert models.resolve_precision("auto") in ("float32", "mixed_bfloat16")
    with pytest.raises(ValueError, match="PRECISION='float16'"):
        models.resolve_precision("float16")
    models.seed_keras(0, False, "mixed_bfloat16")
    model = models.build_patch_cnn(5, 4, 3)
    assert model.get_layer("conv1").compute_dtype == "bfloat16" and model.get_layer("conv1").variable_dtype == "float32"
    assert model.output.dtype == "float32"  # the softmax stays float32
    models.seed_keras(0, False, "float32")  # the next network is float32 again
    assert models.build_patch_cnn(5, 4, 3).get_layer("conv1").compute_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"
