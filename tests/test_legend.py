"""The CLC legend module against the official legend and its own invariants."""

import json

import numpy as np
import pytest

from landcover import legend
from tests.conftest import SHARED_DATA

CLC_METADATA = SHARED_DATA / "legend" / "clc_metadata.json"


def test_44_classes_and_grid_codes():
    assert len(legend.CLC_CLASSES) == 44
    grid = np.array([[1, 2, 12], [44, 0, 48]])
    assert legend.grid_code_to_clc(grid).tolist() == [[111, 112, 211], [523, 0, 0]]
    assert legend.clc_to_grid_code(231) == 18


@pytest.mark.skipif(not CLC_METADATA.exists(), reason="../shared/data/legend is absent (the project is not checked out beside shared/)")
def test_agrees_with_official_metadata_on_every_code():
    entries = [e for e in json.loads(CLC_METADATA.read_text())["clc_data"] if e["code"] != "999"]
    assert [int(e["code"]) for e in entries] == [c.code for c in legend.CLC_CLASSES]
    for position, entry in enumerate(entries):
        code = int(entry["code"])
        assert legend.CLC_BY_CODE[code].rgb == tuple(entry["color"][:3]), code
        assert legend.clc_code_for_name(entry["name_clc"]) == code, entry["name_clc"]
        assert legend.clc_to_grid_code(code) == position + 1


def test_name_spellings_fold():
    assert legend.clc_code_for_name("Transitional woodland/shrub") == 324
    assert legend.clc_code_for_name("transitional woodland-shrub") == 324
    assert legend.clc_code_for_name("Peatbogs") == 412
    assert legend.clc_code_for_name("Residential") is None


def test_custom_classes_are_sorted_and_coloured():
    classes = legend.custom_classes(["forest", "farmland", "residential", "forest"])
    assert [(c.code, c.name) for c in classes] == [(1, "farmland"), (2, "forest"), (3, "residential")]
    assert len({c.rgb for c in classes}) == 3
