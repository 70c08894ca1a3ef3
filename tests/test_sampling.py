"""Sampling of labelled valid pixels, the points table and patch cutting."""

import numpy as np
import pytest
from affine import Affine

from landcover import sampling
from landcover.legend import CLC_BY_CODE


def _scene_and_labels():
    rng = np.random.default_rng(0)
    scene = rng.integers(1, 5000, size=(4, 30, 40)).astype(np.uint16)
    scene[2, :5, :] = 0  # nodata in one band
    labels = np.full((30, 40), 211, np.uint16)
    labels[:, 35:] = 0  # unlabelled
    labels[20:, :35] = 231
    return scene, labels


def test_only_valid_labelled_pixels_are_sampled():
    scene, labels = _scene_and_labels()
    valid = sampling.valid_mask(scene, 0)
    rows, cols = sampling.sample_pixels(labels, valid, 800, np.random.default_rng(1))
    assert len(set(zip(rows.tolist(), cols.tolist()))) == 800
    assert (rows >= 5).all() and (cols < 35).all()
    assert (scene[:, rows, cols] != 0).all()


def test_same_seed_same_table_other_seed_other_table():
    scene, labels = _scene_and_labels()
    valid = sampling.valid_mask(scene, 0)
    classes = [CLC_BY_CODE[211], CLC_BY_CODE[231]]

    def table(seed):
        rows, cols = sampling.sample_pixels(labels, valid, 300, np.random.default_rng(seed))
        return sampling.points_table(scene, labels, rows, cols, Affine(10, 0, 5000, 0, -10, 9000),
                                     ["B02", "B03", "B04", "B08"], classes)

    a, b, c = table(42), table(42), table(43)
    assert a.equals(b)
    assert not a.equals(c)
    row = a.iloc[0]
    assert row["x"] == 5000 + 10 * row["col"] + 5 and row["y"] == 9000 - 10 * row["row"] - 5
    assert row["B03"] == scene[1, row["row"], row["col"]]
    assert row["class_name"] == CLC_BY_CODE[row["label"]].name
    red, nir = float(row["B04"]), float(row["B08"])
    assert row["NDVI"] == pytest.approx((nir - red) / (nir + red), rel=1e-5)


def test_too_many_points_is_an_error():
    scene, labels = _scene_and_labels()
    valid = sampling.valid_mask(scene, 0)
    with pytest.raises(ValueError, match=r"N_POINTS=10000 is larger than the 875 labelled valid pixels"):
        sampling.sample_pixels(labels, valid, 10_000, np.random.default_rng(0))


def test_patches_equal_symmetric_padding_by_hand():
    scene, _ = _scene_and_labels()
    rows = np.array([0, 0, 29, 15, 3])
    cols = np.array([0, 39, 39, 20, 1])
    patches = sampling.cut_patches(scene, rows, cols, 7)
    assert patches.shape == (5, 7, 7, 4)
    padded = np.pad(scene, ((0, 0), (3, 3), (3, 3)), mode="symmetric")
    for k, (r, c) in enumerate(zip(rows, cols)):
        assert np.array_equal(patches[k], padded[:, r:r + 7, c:c + 7].transpose(1, 2, 0))
        assert np.array_equal(patches[k, 3, 3], scene[:, r, c])
    # symmetric padding repeats the edge pixel: row -1 mirrors row 0
    assert np.array_equal(patches[0, 2, 3], scene[:, 0, 0])
    with pytest.raises(ValueError, match="must be odd"):
        sampling.cut_patches(scene, rows, cols, 4)
