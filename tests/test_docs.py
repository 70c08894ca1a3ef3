"""The manual: the configuration reference matches config.py, and the docs' commands and links are real."""

import re
from pathlib import Path

import config
from landcover import cli, config_reference

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SETTINGS = set(cli.config_keys()) - set(config_reference.NOT_SETTINGS)


def test_reference_names_every_key_and_no_other():
    named = config_reference.keys_in((ROOT / "docs" / "configuration.md").read_text())
    assert not SETTINGS - named, f"keys missing from docs/configuration.md: {sorted(SETTINGS - named)}; " \
                                 "run python docs/make_config_reference.py"
    assert not named - SETTINGS, f"docs/configuration.md names keys config.py lacks: {sorted(named - SETTINGS)}"


def test_reference_is_what_the_script_writes_from_config_py():
    written = config_reference.markdown(ROOT / "config.py")
    assert (ROOT / "docs" / "configuration.md").read_text() == written, \
        "docs/configuration.md is stale; run python docs/make_config_reference.py"


def test_reference_takes_each_comment_and_shares_one_over_consecutive_keys():
    source = ('from pathlib import Path\nROOT = Path(".")\n# ---------- inputs ----\n# Bands to merge.\nBANDS = ["B02"]\n'
              '# Threshold (0..1) and dilation (m).\nA_ONE = 0.4\nA_TWO = 120\n\n# -------- later ----\n'
              '# Seed.\nSEED = 42\nPRESETS = {}\n')
    found = {s.key: s for s in config_reference.settings(source)}
    assert list(found) == ["BANDS", "A_ONE", "A_TWO", "SEED"]
    assert found["A_TWO"].comment == found["A_ONE"].comment == "Threshold (0..1) and dilation (m)."
    assert (found["BANDS"].section, found["SEED"].section, found["SEED"].default) == ("inputs", "later", "42")


def _commands() -> list[tuple[Path, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text().replace("\\\n", " ")
        found += [(doc, line.strip()) for line in text.splitlines()
                  if re.match(r"\s*(\.venv/bin/)?python3? ", line.strip()) or "&& .venv/bin/python" in line]
        found += [(doc, inline) for inline in re.findall(r"`((?:\.venv/bin/)?python3? [^`]+)`", text)]
    return found


def test_every_command_names_a_script_keys_and_presets_that_exist():
    commands = _commands()
    assert len(commands) > 25
    for doc, command in commands:
        for script in re.findall(r"python3? (?:-m \S+ )?(\S+\.py)", command):
            assert (ROOT / script).exists(), f"{doc.name}: {command}: no {script}"
        for key in re.findall(r"--set \"?([A-Za-z_]+)=", command):
            assert key in SETTINGS, f"{doc.name}: {command}: unknown key {key}"
        for preset in re.findall(r"--preset (\w+)", command):
            assert preset in config.PRESETS, f"{doc.name}: {command}: unknown preset {preset}"


def test_every_relative_link_leads_to_a_file():
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" not in target:
                assert (doc.parent / target).exists(), f"{doc.name}: broken link {target}"
