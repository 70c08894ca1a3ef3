"""CORINE Land Cover legend: grid code -> CLC code -> name -> official colour.

The 44 level-3 classes of the CLC nomenclature in code order. The grid code of
the EEA's 100 m CLC raster is the position in this list + 1 (111 -> 1 ...
523 -> 44); grid code 48 is the raster's "NODATA" class and 49/50 are
"UNCLASSIFIED". Colours are the official RGB triplets of the CLC legend.

Ground truths in another vocabulary (for example OpenStreetMap land use) get a
:class:`ClassInfo` of their own through :func:`custom_classes`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from matplotlib import colormaps


@dataclass(frozen=True)
class ClassInfo:
    """One land-cover class: integer code as stored in label rasters, name, colour."""

    code: int
    name: str
    rgb: tuple[int, int, int]


CLC_CLASSES: tuple[ClassInfo, ...] = tuple(
    ClassInfo(code, name, rgb)
    for code, name, rgb in [
        (111, "Continuous urban fabric", (230, 0, 77)),
        (112, "Discontinuous urban fabric", (255, 0, 0)),
        (121, "Industrial or commercial units", (204, 77, 242)),
        (122, "Road and rail networks and associated land", (204, 0, 0)),
        (123, "Port areas", (230, 204, 204)),
        (124, "Airports", (230, 204, 230)),
        (131, "Mineral extraction sites", (166, 0, 204)),
        (132, "Dump sites", (166, 77, 0)),
        (133, "Construction sites", (255, 77, 255)),
        (141, "Green urban areas", (255, 166, 255)),
        (142, "Sport and leisure facilities", (255, 230, 255)),
        (211, "Non-irrigated arable land", (255, 255, 168)),
        (212, "Permanently irrigated land", (255, 255, 0)),
        (213, "Rice fields", (230, 230, 0)),
        (221, "Vineyards", (230, 128, 0)),
        (222, "Fruit trees and berry plantations", (242, 166, 77)),
        (223, "Olive groves", (230, 166, 0)),
        (231, "Pastures", (230, 230, 77)),
        (241, "Annual crops associated with permanent crops", (255, 230, 166)),
        (242, "Complex cultivation patterns", (255, 230, 77)),
        (243, "Land principally occupied by agriculture, with significant areas of natural vegetation", (230, 204, 77)),
        (244, "Agro-forestry areas", (242, 204, 166)),
        (311, "Broad-leaved forest", (128, 255, 0)),
        (312, "Coniferous forest", (0, 166, 0)),
        (313, "Mixed forest", (77, 255, 0)),
        (321, "Natural grasslands", (204, 242, 77)),
        (322, "Moors and heathland", (166, 255, 128)),
        (323, "Sclerophyllous vegetation", (166, 230, 77)),
        (324, "Transitional woodland-shrub", (166, 242, 0)),
        (331, "Beaches, dunes, sands", (230, 230, 230)),
        (332, "Bare rocks", (204, 204, 204)),
        (333, "Sparsely vegetated areas", (204, 255, 204)),
        (334, "Burnt areas", (0, 0, 0)),
        (335, "Glaciers and perpetual snow", (166, 230, 204)),
        (411, "Inland marshes", (166, 166, 255)),
        (412, "Peat bogs", (77, 77, 255)),
        (421, "Salt marshes", (204, 204, 255)),
        (422, "Salines", (230, 230, 255)),
        (423, "Intertidal flats", (166, 166, 230)),
        (511, "Water courses", (0, 204, 242)),
        (512, "Water bodies", (128, 242, 230)),
        (521, "Coastal lagoons", (0, 255, 166)),
        (522, "Estuaries", (166, 255, 230)),
        (523, "Sea and ocean", (230, 242, 255)),
    ]
)

CLC_BY_CODE: dict[int, ClassInfo] = {c.code: c for c in CLC_CLASSES}
CLC_CODES: frozenset[int] = frozenset(CLC_BY_CODE)
# Grid codes of the EEA raster: 1..44 are classes, these are "no data".
CLC_GRID_NODATA = frozenset({48, 49, 50, 128, 255, -128})

# The 16 classes of the study's AOI near Swindon (used by the demo data).
STUDY_CLASSES: tuple[int, ...] = (
    111, 112, 121, 122, 124, 132, 133, 141, 142, 211, 231, 243, 311, 313, 324, 512,
)


def grid_code_to_clc(grid: np.ndarray) -> np.ndarray:
    """Map EEA raster grid codes (1..44) to CLC codes (111..523).

    Args:
        grid: integer array of any shape holding grid codes.

    Returns:
        uint16 array of the same shape; 0 where the grid code is not 1..44.
    """
    lut = np.zeros(256, dtype=np.uint16)
    lut[1:45] = [c.code for c in CLC_CLASSES]
    grid = np.asarray(grid)
    inside = (grid >= 0) & (grid < 256)
    return np.where(inside, lut[np.clip(grid, 0, 255).astype(np.intp)], 0).astype(np.uint16)


def clc_to_grid(codes: np.ndarray) -> np.ndarray:
    """Map CLC codes (111..523) to EEA grid codes (1..44) as uint8; 0 for anything else.

    Args:
        codes: integer array of any shape.
    """
    lut = np.zeros(1000, dtype=np.uint8)
    lut[[c.code for c in CLC_CLASSES]] = np.arange(1, len(CLC_CLASSES) + 1)
    codes = np.asarray(codes)
    return np.where((codes >= 0) & (codes < 1000), lut[np.clip(codes, 0, 999).astype(np.intp)], 0).astype(np.uint8)


def clc_to_grid_code(code: int) -> int:
    """Grid code (1..44) of a three-digit CLC code; ValueError if unknown."""
    if code not in CLC_CODES:
        raise ValueError(f"{code} is not a CLC level-3 code")
    return int(clc_to_grid(np.array(code)))


def normalise_name(name: str) -> str:
    """Lower-case a class name and fold punctuation, so spellings such as
    "Transitional woodland/shrub" and "Transitional woodland-shrub" agree."""
    return re.sub(r"[^a-z0-9]+", " ", str(name).lower()).strip()


# Other spellings in use (BigEarthNet v1 and several CLC distributions).
_ALIASES = {
    "Natural grassland": 321,
    "Bare rock": 332,
    "Peatbogs": 412,
    "Beaches dunes sand": 331,
    "Sea and Ocean": 523,
}
_CLC_BY_NAME = {normalise_name(c.name): c.code for c in CLC_CLASSES}
_CLC_BY_NAME.update({normalise_name(k): v for k, v in _ALIASES.items()})


def clc_code_for_name(name: str) -> int | None:
    """CLC code of a CLC class name in any of its usual spellings, else None."""
    return _CLC_BY_NAME.get(normalise_name(name))


def custom_classes(names: list[str]) -> list[ClassInfo]:
    """Classes for a non-CLC vocabulary: codes 1..N in sorted name order and
    colours from matplotlib's qualitative ``tab20`` map (repeating after 20)."""
    cmap = colormaps["tab20"]
    out = []
    for i, name in enumerate(sorted(set(map(str, names)))):
        r, g, b, _ = cmap(i % 20)
        out.append(ClassInfo(i + 1, name, (round(r * 255), round(g * 255), round(b * 255))))
    return out


def colormap(classes: list[ClassInfo]) -> dict[int, tuple[int, int, int, int]]:
    """A rasterio colour map (value -> RGBA) for ``classes``; 0 is transparent."""
    cmap = {0: (0, 0, 0, 0)}
    cmap.update({c.code: (*c.rgb, 255) for c in classes})
    return cmap


def classes_to_json(classes: list[ClassInfo]) -> list[dict]:
    """JSON-friendly list of ``{"code", "name", "rgb"}`` dicts."""
    return [{"code": c.code, "name": c.name, "rgb": list(c.rgb)} for c in classes]


def classes_from_json(items: list[dict]) -> list[ClassInfo]:
    """Inverse of :func:`classes_to_json`."""
    return [ClassInfo(int(d["code"]), str(d["name"]), tuple(d["rgb"])) for d in items]


# BigEarthNet's 19-class nomenclature (used by BigEarthNet v2 / reBEN): each
# class groups CLC level-3 codes.
BEN19_GROUPS: dict[str, tuple[int, ...]] = {
    "Urban fabric": (111, 112),
    "Industrial or commercial units": (121,),
    "Arable land": (211, 212, 213),
    "Permanent crops": (221, 222, 223, 241),
    "Pastures": (231,),
    "Complex cultivation patterns": (242,),
    "Land principally occupied by agriculture, with significant areas of natural vegetation": (243,),
    "Agro-forestry areas": (244,),
    "Broad-leaved forest": (311,),
    "Coniferous forest": (312,),
    "Mixed forest": (313,),
    "Natural grassland and sparsely vegetated areas": (321, 333),
    "Moors, heathland and sclerophyllous vegetation": (322, 323),
    "Transitional woodland, shrub": (324,),
    "Beaches, dunes, sands": (331,),
    "Inland wetlands": (411, 412),
    "Coastal wetlands": (421, 422),
    "Inland waters": (511, 512),
    "Marine waters": (521, 522, 523),
}
_BEN19_BY_NAME = {normalise_name(k): v for k, v in BEN19_GROUPS.items()}


def ben19_codes(name: str) -> tuple[int, ...] | None:
    """CLC codes grouped under a BigEarthNet-19 class name, else None."""
    return _BEN19_BY_NAME.get(normalise_name(name))


# ESA WorldCover 10 m (2020 v100, 2021 v200): the official classes and colours
# (the colour table the tiles embed).
WORLDCOVER_CLASSES: tuple[ClassInfo, ...] = tuple(ClassInfo(c, n, rgb) for c, n, rgb in [
    (10, "Tree cover", (0, 100, 0)),
    (20, "Shrubland", (255, 187, 34)),
    (30, "Grassland", (255, 255, 76)),
    (40, "Cropland", (240, 150, 255)),
    (50, "Built-up", (250, 0, 0)),
    (60, "Bare / sparse vegetation", (180, 180, 180)),
    (70, "Snow and ice", (240, 240, 240)),
    (80, "Permanent water bodies", (0, 100, 200)),
    (90, "Herbaceous wetland", (0, 150, 160)),
    (95, "Mangroves", (0, 207, 117)),
    (100, "Moss and lichen", (250, 230, 160)),
])

# Copernicus CLC+ Backbone 10 m raster: classes 1..11 and their colours;
# 253 (coastal seawater buffer), 254 (outside area) and 255 (no data) are no label.
CLCPLUS_CLASSES: tuple[ClassInfo, ...] = tuple(ClassInfo(c, n, rgb) for c, n, rgb in [
    (1, "Sealed", (255, 0, 0)),
    (2, "Woody needle leaved trees", (34, 139, 34)),
    (3, "Woody broadleaved deciduous trees", (128, 255, 0)),
    (4, "Woody broadleaved evergreen trees", (0, 255, 8)),
    (5, "Low-growing woody plants (bushes, shrubs)", (128, 64, 0)),
    (6, "Permanent herbaceous", (204, 242, 77)),
    (7, "Periodically herbaceous", (255, 255, 128)),
    (8, "Lichens and mosses", (255, 128, 255)),
    (9, "Non- and sparsely-vegetated", (191, 191, 191)),
    (10, "Water", (0, 128, 255)),
    (11, "Snow and ice", (0, 255, 255)),
])


@dataclass(frozen=True)
class Vocabulary:
    """A label nomenclature: its classes and the raster values that mean "no label"."""

    name: str
    classes: tuple[ClassInfo, ...]
    no_label: frozenset[int]

    def by_code(self) -> dict[int, ClassInfo]:
        return {c.code: c for c in self.classes}

    def code_for_name(self, name: str) -> int | None:
        key = normalise_name(name)
        return next((c.code for c in self.classes if normalise_name(c.name) == key), None)


VOCABULARIES: dict[str, Vocabulary] = {
    # CORINE with three-digit codes; the grid codes 1..44 are mapped to these first
    "clc": Vocabulary("clc", CLC_CLASSES, frozenset({0, 999})),
    "worldcover": Vocabulary("worldcover", WORLDCOVER_CLASSES, frozenset({0})),
    "clcplus": Vocabulary("clcplus", CLCPLUS_CLASSES, frozenset({0, 253, 254, 255})),
}
