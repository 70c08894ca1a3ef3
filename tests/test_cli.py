"""Overrides, presets and the stage runner."""

from pathlib import Path

import pytest

import config
from landcover import cli


def test_set_parses_literals_and_plain_strings():
    cli.apply_overrides({"N_POINTS": cli.parse_value("1234"), "SCENE_PATH": cli.parse_value("/data/x.SAFE")})
    assert config.N_POINTS == 1234
    assert config.SCENE_PATH == Path("/data/x.SAFE")


def test_unknown_key_is_refused():
    with pytest.raises(ValueError, match="unknown config key 'N_POINT'"):
        cli.apply_overrides({"N_POINT": 5})


@pytest.mark.parametrize("key, value", [("N_POINTS", "many"), ("SEGMENT", 1), ("BANDS", "B02"), ("N_POINTS", 2.5)])
def test_wrong_type_is_refused(key, value):
    with pytest.raises(ValueError, match=key):
        cli.apply_overrides({key: value})


def test_aoi_accepts_box_path_or_none():
    for value, expected in [((-2.0, 51.0, -1.9, 51.1), (-2.0, 51.0, -1.9, 51.1)), ("aoi.gpkg", Path("aoi.gpkg")),
                            (None, None)]:
        cli.apply_overrides({"AOI": value})
        assert config.AOI == expected
    with pytest.raises(ValueError, match="AOI=5"):
        cli.apply_overrides({"AOI": 5})
    cli.apply_overrides({"PREDICT_MODEL": "models/m.keras", "LABEL_LAYER": "clc"})
    assert config.PREDICT_MODEL == Path("models/m.keras") and config.LABEL_LAYER == "clc"


def test_paper_preset_sets_the_study_scale():
    cli.apply_preset("paper")
    assert config.N_POINTS == 400_000
    assert config.AOI == config.STUDY_AOI
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        cli.apply_preset("fast")


def test_run_stage_reports_bad_input_on_one_line_and_exits_2(capsys):
    def stage():
        raise FileNotFoundError("B02 missing\nsecond line")

    assert cli.run_stage(stage, "doc", ["--set", "N_POINTS=10"]) == 2
    assert config.N_POINTS == 10
    assert "ERROR" in capsys.readouterr().err.split("B02 missing second line")[0].splitlines()[-1]
    assert cli.run_stage(stage, "doc", ["--set", "NOPE=1"]) == 2
    assert "unknown config key 'NOPE'" in capsys.readouterr().err


def test_each_stage_run_starts_from_config_py(tmp_path):
    # a second stage run in the same process does not inherit the first one's --set
    seen = []

    def stage():
        seen.append((config.N_POINTS, config.SCENE_OFFSET))

    default = config.N_POINTS
    assert cli.run_stage(stage, None, ["--set", "N_POINTS=7", "--set", "SCENE_OFFSET=-1000"]) == 0
    assert cli.run_stage(stage, None, []) == 0
    assert seen == [(7, -1000), (default, None)]
