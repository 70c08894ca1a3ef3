"""The configuration reference (docs/configuration.md), written from config.py's own comments.

Every setting of ``config.py`` is a constant with a comment above it, under a
section ruler (``# ---- scene_prep ----``). This module reads the file's source
(not the imported module, whose values overrides may have changed) and writes
one table per section: key, default (as written in config.py) and the comment.
A comment above several constants in a row describes all of them. The presets
follow, each with its overrides.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

RULER = re.compile(r"^#\s*-{3,}\s*(?P<name>[^-].*?)\s*-{2,}\s*$")
NOT_SETTINGS = ("ROOT", "PRESETS")  # the repository's folder and the presets table: documented apart


@dataclass
class Setting:
    key: str
    default: str
    comment: str
    section: str


def settings(source: str) -> list[Setting]:
    """The settings of config.py's ``source`` in file order, each with its default's source text,
    its comment and its section."""
    lines = source.splitlines()
    section_at = {}
    section = "general"
    for i, line in enumerate(lines, start=1):
        match = RULER.match(line)
        if match:
            section = match.group("name")
        section_at[i] = section
    found: list[Setting] = []
    previous_end, previous_comment = 0, ""
    for node in ast.parse(source).body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            continue
        key = node.targets[0].id
        block = []
        for line in reversed(lines[previous_end:node.lineno - 1]):
            text = line.strip()
            if not text.startswith("#") or RULER.match(text):
                break
            block.insert(0, text.lstrip("#").strip())
        # a constant right under another one (no comment between) shares that one's comment
        comment = " ".join(block) if block or node.lineno - 1 > previous_end else previous_comment
        previous_end, previous_comment = node.end_lineno, comment
        if key in NOT_SETTINGS or not key.isupper():
            continue
        default = " ".join(ast.get_source_segment(source, node.value).split())
        found.append(Setting(key, default, comment, section_at[node.lineno]))
    return found


def _short(default: str) -> str:
    return default if len(default) <= 60 else default[:57] + "..."


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(config_path: Path) -> str:
    """docs/configuration.md: one table per section of config.py, then the presets."""
    import importlib.util

    source = Path(config_path).read_text()
    out = ["# Configuration reference", "",
           "Written by `python docs/make_config_reference.py` from `config.py`'s own comments; do not edit it by "
           "hand (a test fails when it and `config.py` differ). Change a value for one run with "
           "`--set KEY=VALUE` on any stage or `study.py`, or take a preset with `--preset NAME` (applied first); "
           "unknown keys and values of the wrong type are refused. See [Settings](settings.md) for how overrides "
           "work and what the presets mean.", ""]
    groups: list[list[Setting]] = []
    for setting in settings(source):  # constants under one comment share a row
        if groups and groups[-1][0].comment == setting.comment and groups[-1][0].section == setting.section:
            groups[-1].append(setting)
        else:
            groups.append([setting])
    current = None
    for group in groups:
        if group[0].section != current:
            current = group[0].section
            out += ["", f"## {current}", "", "| key = default | meaning |", "|---|---|"]
        keys = "<br>".join(f"`{s.key}` = `{_cell(_short(s.default))}`" for s in group)
        out.append(f"| {keys} | {_cell(group[0].comment)} |")
    spec = importlib.util.spec_from_file_location("_config_for_reference", config_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out += ["", "## Presets", "", "| preset | overrides |", "|---|---|"]
    for name, overrides in module.PRESETS.items():
        text = ", ".join(f"`{k}={v!r}`" for k, v in overrides.items()) or "none: `config.py` as it is"
        out.append(f"| `{name}` | {_cell(text)} |")
    return "\n".join(out) + "\n"


def keys_in(markdown_text: str) -> set[str]:
    """The keys a reference's tables name (their first column)."""
    return set(re.findall(r"`([A-Z][A-Z0-9_]*)` = `", markdown_text))
