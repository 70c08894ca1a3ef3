"""BigEarthNet reading: a tiny archive the test writes, and the real samples in ../shared/data."""

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine

from landcover import bigearth, legend
from tests.conftest import SHARED_DATA, write_raster

V1 = SHARED_DATA / "bigearthnet-v1"
V2 = SHARED_DATA / "bigearthnet-v2"
BANDS = ["B02", "B03", "B04", "B08"]


def _patch(root, name, labels, value, *, corrupt=False, missing=None):
    folder = root / name
    for band, res in {"B02": 10, "B03": 10, "B04": 10, "B08": 10, "B11": 20, "B01": 60}.items():
        if band == missing:
            continue
        n = 1200 // res
        array = np.full((n, n), value + int(band[1:3].replace("8A", "8")), np.uint16)
        if band == "B11":
            array = np.tile((np.arange(n) * 100 + 100).astype(np.uint16), (n, 1))  # +100 per 20 m column
        write_raster(folder / f"{name}_{band}.tif", array, Affine(res, 0, 400000, 0, -res, 5340000),
                     crs="EPSG:32633", nodata=None)
    if corrupt:
        (folder / f"{name}_B03.tif").write_bytes(b"II*\x00 broken")
    (folder / f"{name}_labels_metadata.json").write_text(json.dumps({"labels": labels}))


@pytest.fixture
def tiny_archive(tmp_path):
    root = tmp_path / "BigEarthNet-v1.0"
    _patch(root, "S2A_MSIL2A_20170613T101031_0_0", ["Non-irrigated arable land", "Pastures"], 1000)
    _patch(root, "S2A_MSIL2A_20170613T101031_0_1", ["Transitional woodland/shrub", "Water bodies"], 2000)
    _patch(root, "S2A_MSIL2A_20170613T101031_0_2", ["Pastures"], 3000)  # cloudy
    _patch(root, "S2A_MSIL2A_20170613T101031_0_3", ["Pastures"], 4000)  # snowy
    _patch(root, "S2A_MSIL2A_20170613T101031_0_4", ["Pastures"], 5000, corrupt=True)
    _patch(root, "S2A_MSIL2A_20170613T101031_0_5", ["Pastures"], 6000, missing="B08")
    _patch(root, "S2A_MSIL2A_20170613T101031_0_6", ["Sea and ocean"], 7000)  # no AOI class
    (root / "patches_with_cloud_and_shadow.csv").write_text("S2A_MSIL2A_20170613T101031_0_2\n")
    (root / "patches_with_seasonal_snow.csv").write_text("S2A_MSIL2A_20170613T101031_0_3\n")
    return root


def test_reader_honours_lists_skips_bad_patches_and_maps_labels(tiny_archive, tmp_path):
    out = tmp_path / "shards"
    manifest = bigearth.write_shards(tiny_archive, out, BANDS, [211, 231, 324], "first", shard_size=1)
    counts = manifest["counts"]
    assert (counts["listed"], counts["cloud_or_shadow"], counts["snow"], counts["unreadable"], counts["no_label"],
            counts["kept"]) == (7, 1, 1, 2, 1, 2)
    assert any("_0_4" in e for e in counts["unreadable_examples"]) and any("_0_5" in e for e in counts["unreadable_examples"])
    xs, y, where = bigearth.open_shards(out, manifest)
    assert len(xs) == 2 and xs[0].shape == (1, 120, 120, 4) and xs[0].dtype == np.int16  # the scene's convention
    assert y.tolist() == [211, 324]  # "first": the first label among the classes kept
    assert xs[0][0, 0, 0].tolist() == [1002, 1003, 1004, 1008]  # band order
    table = pd.read_parquet(out / "manifest.parquet")
    assert table["labels"].tolist() == ["211 231", "324"]


def test_multi_hot_labels_and_resampled_20m_band(tiny_archive, tmp_path):
    manifest = bigearth.write_shards(tiny_archive, tmp_path / "m", ["B02", "B11"], [211, 231, 324, 512], "multi", 10)
    xs, y, _ = bigearth.open_shards(tmp_path / "m", manifest)
    # the patches without B08 or with a broken B03 are readable when those bands are not asked for
    assert y.tolist() == [[1, 1, 0, 0], [0, 0, 1, 1], [0, 1, 0, 0], [0, 1, 0, 0]]
    b11 = xs[0][0, :, :, 1]
    assert b11.shape == (120, 120)
    # 10 m pixel centres between 20 m centres: bilinear gives the mean of the two neighbours
    assert b11[5, 4] == 275 and b11[5, 5] == 325


def test_missing_archive_and_bad_policy(tmp_path):
    with pytest.raises(FileNotFoundError, match="BIGEARTH_PATH"):
        bigearth.list_patches(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a BigEarthNet-S2 archive"):
        bigearth.list_patches(tmp_path / "empty")
    with pytest.raises(ValueError, match="BIGEARTH_LABELS='some'"):
        bigearth.write_shards(tmp_path, tmp_path / "o", BANDS, [211], "some", 10)


@pytest.mark.skipif(not V1.exists(), reason="../shared/data/bigearthnet-v1 is absent")
def test_real_v1_samples(tmp_path):
    manifest = bigearth.write_shards(V1, tmp_path, BANDS + ["B8A"], sorted(legend.CLC_CODES), "multi", 100)
    counts = manifest["counts"]
    assert counts["snow"] == 1 and counts["kept"] == 5 and counts["unreadable"] == 0
    table = pd.read_parquet(tmp_path / "manifest.parquet").set_index("patch")
    assert "S2B_MSIL2A_20180204T94161_57_38" not in table.index  # on the snow list
    for name in table.index:
        meta = json.loads((V1 / name / f"{name}_labels_metadata.json").read_text())
        assert table.loc[name, "labels"] == " ".join(str(legend.clc_code_for_name(n)) for n in meta["labels"])
    assert "324" in table.loc["S2B_MSIL2A_20170924T93020_69_24", "labels"]  # "Transitional woodland/shrub"
    xs, _, _ = bigearth.open_shards(tmp_path, manifest)
    assert xs[0].shape == (5, 120, 120, 5) and (np.asarray(xs[0]) > 0).all()
    # the archive (2017-2018, before baseline 04.00) is already in the scene's convention: int16, same numbers
    name = table.index[0]
    with rasterio.open(V1 / name / f"{name}_B02.tif") as src:
        raw = src.read(1)
    assert xs[0].dtype == np.int16 and np.array_equal(xs[0][table.loc[name, "index"], :, :, 0], raw)
    # an archive that carried the -1000 offset would be brought to the same numbers by BIGEARTH_OFFSET
    shifted = bigearth.write_shards(V1, tmp_path / "o", BANDS + ["B8A"], sorted(legend.CLC_CODES), "multi", 100,
                                    offset=-1000)
    assert np.array_equal(bigearth.open_shards(tmp_path / "o", shifted)[0][0], np.asarray(xs[0]) - 1000)


@pytest.mark.skipif(not V2.exists(), reason="../shared/data/bigearthnet-v2 is absent")
def test_real_v2_samples(tmp_path):
    layout, patches = bigearth.list_patches(V2)
    assert layout == "v2" and len(patches) == 3
    manifest = bigearth.write_shards(V2, tmp_path, BANDS, [211, 231, 243, 311, 312, 313], "multi", 100)
    # the reference-map patch has no S2 bands here: counted, not a crash
    assert manifest["counts"]["unreadable"] == 1 and manifest["counts"]["kept"] == 2
    table = pd.read_parquet(tmp_path / "manifest.parquet").set_index("patch")
    assert table.loc["S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_75_43", "labels"] == "211 243 231"
    assert table.loc["S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_89_18", "labels"] == "312 313 231"
    # a 19-class name whose group holds two targets is ambiguous and dropped
    assert bigearth.map_labels(["Urban fabric", "Pastures"], [111, 112, 231], "v2") == [231]


@pytest.mark.skipif(not (SHARED_DATA / "legend").exists(), reason="../shared/data/legend is absent")
def test_19_class_groups_agree_with_the_official_legend():
    entries = json.loads((SHARED_DATA / "legend" / "clc_metadata.json").read_text())["clc_data"]
    for entry in entries:
        if entry["name_19"] != "UNLABELED":
            assert int(entry["code"]) in legend.ben19_codes(entry["name_19"]), entry
    names = json.loads((SHARED_DATA / "legend" / "label_indices.json").read_text())["original_labels"]
    assert all(legend.clc_code_for_name(n) is not None for n in names)
