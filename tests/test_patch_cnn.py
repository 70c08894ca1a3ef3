"""Patch cutting, the patch CNN, whole-scene prediction and its exactness."""

import numpy as np
import pytest

from landcover import inference, models, patch_data, sampling
from landcover.legend import CLC_BY_CODE


def _scene(shape=(4, 23, 31), seed=0):
    return np.random.default_rng(seed).integers(1, 4000, shape).astype(np.uint16)


def test_dataset_patches_equal_symmetric_padding_by_hand():
    scene = _scene()
    mean, std = np.full(4, 2000.0), np.full(4, 1000.0)
    padded = patch_data.normalised_padded(scene, mean, std, 5)
    rows, cols = np.array([0, 22, 11, 0]), np.array([0, 30, 15, 30])
    batches = list(patch_data.patch_dataset(padded, 5, rows, cols, np.arange(4), batch_size=3).as_numpy_iterator())
    patches = np.concatenate([x for x, _ in batches])
    by_hand = (sampling.cut_patches(scene, rows, cols, 5).astype(np.float32) - 2000) / 1000
    assert len(batches) == 2 and batches[0][1].tolist() == [0, 1, 2] and patches.shape == (4, 5, 5, 4)
    assert np.allclose(patches, by_hand)
    assert np.allclose(patches[:, 2, 2], (scene[:, rows, cols].T - 2000.0) / 1000.0)  # the point is the centre


def test_dataset_yields_class_weights_as_sample_weights_and_shuffles():
    scene = _scene()
    padded = patch_data.normalised_padded(scene, np.zeros(4), np.ones(4), 3)
    labels = np.array([0, 0, 0, 1, 0, 0, 0, 0])
    rows, cols = np.arange(8), np.arange(8) * 2
    data = patch_data.patch_dataset(padded, 3, rows, cols, labels, batch_size=8, class_weights={0: 0.5, 1: 2.0},
                                    shuffle=True, seed=1)
    (x1, y1, w1), = list(data.as_numpy_iterator())
    (x2, y2, _), = list(data.as_numpy_iterator())  # the next epoch: another order of the same patches
    assert np.array_equal(w1, np.where(y1 == 1, 2.0, 0.5))
    centres = x1[:, 1, 1, 0]  # band 1 at each patch's centre identifies the point
    assert sorted(centres.tolist()) == sorted(scene[0, rows, cols].astype(np.float32).tolist())
    assert not np.array_equal(centres, x2[:, 1, 1, 0]) and sorted(centres) == sorted(x2[:, 1, 1, 0])
    assert np.array_equal(y1, labels[[np.flatnonzero(scene[0, rows, cols] == c)[0] for c in centres]])


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_whole_scene_prediction_equals_one_window_at_a_time(padding):
    models.seed_keras(3, True)
    scene = _scene()
    model = models.build_patch_cnn(5, 4, 6, padding=padding)
    valid = np.ones(scene.shape[1:], bool)
    valid[0, :4] = False
    padded = patch_data.normalised_padded(scene, scene.mean(axis=(1, 2)), scene.std(axis=(1, 2)), 5)
    # tiny tiles and batches: many tiles, a ragged last batch
    probs = inference.predict_windows(model, padded, 5, valid, batch_size=50, tile_mb=0.05)
    rows, cols = np.nonzero(valid)
    one_by_one = np.concatenate([model.predict_on_batch(patch_data.windows(padded, 5)[r:r + 1, c])
                                 for r, c in zip(rows, cols)])
    assert np.array_equal(probs[rows, cols].argmax(-1), one_by_one.argmax(-1))
    assert np.allclose(probs[rows, cols], one_by_one, atol=1e-6)
    assert (probs[~valid] == 0).all()
    if padding == "valid":
        fcn = inference.predict_fully_convolutional(models.fully_convolutional(model), padded, 5, valid, tile_mb=0.01)
        assert np.array_equal(fcn[rows, cols].argmax(-1), one_by_one.argmax(-1))
        assert np.allclose(fcn[rows, cols], one_by_one, atol=1e-5)


def test_same_padding_model_cannot_be_made_fully_convolutional():
    model = models.build_patch_cnn(3, 4, 2, padding="same")
    with pytest.raises(ValueError, match="uses 'same' padding"):
        models.fully_convolutional(model)


def test_valid_cnn_shrinks_to_1x1_then_uses_1x1_convolutions():
    model = models.build_patch_cnn(5, 4, 3, padding="valid")
    kernels = [layer.kernel_size for layer in model.layers if layer.name.startswith("conv")]
    assert kernels == [(3, 3), (3, 3), (1, 1), (1, 1), (1, 1), (1, 1)]
    assert model.get_layer("flatten").output.shape[-1] == 128


def test_model_that_does_not_fit_the_scene_is_refused():
    classes = [CLC_BY_CODE[211], CLC_BY_CODE[231]]
    meta = {"bands": ["B02", "B03", "B04", "B08"], "patch_size": 7,
            "classes": [{"code": 211, "name": "Non-irrigated arable land", "rgb": [1, 2, 3]}]}
    inference.check_model_fits(meta, "m.keras", ["B02", "B03", "B04", "B08"], classes)
    with pytest.raises(ValueError, match=r"m\.keras: the model was trained on bands"):
        inference.check_model_fits(meta, "m.keras", ["B02", "B03", "B04"], classes)
    other = dict(meta, classes=[{"code": 1, "name": "farmland", "rgb": [1, 2, 3]}])
    with pytest.raises(ValueError, match=r"m\.keras: the model's classes \[1\] do not fit"):
        inference.check_model_fits(other, "m.keras", ["B02", "B03", "B04", "B08"], classes)
    with pytest.raises(ValueError, match="no valid odd patch_size"):
        inference.check_model_fits(dict(meta, patch_size=4), "m.keras", ["B02", "B03", "B04", "B08"], classes)
