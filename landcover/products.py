"""Sentinel-2 products: which files hold which band, and what their numbers mean.

A :class:`Product` is one thing a user downloaded: a ``.SAFE`` (L1C or L2A),
its ``IMG_DATA`` folder, a folder of band files, or a STAC item (see
:mod:`landcover.stac`). It knows each band's file, the radiometric offset and
quantification value from the product metadata, and where its own cloud mask
is (see :mod:`landcover.clouds`).

Radiometry. Products of processing baseline 04.00 and later store
``DN = QUANTIFICATION * reflectance - OFFSET`` (``OFFSET`` = -1000, read per
band from ``MTD_MSIL2A.xml`` / ``MTD_MSIL1C.xml``); older ones store
``DN = 10000 * reflectance``. With ``HARMONIZE`` every product is written in
one convention, :data:`CONVENTION`: the old one, ``10000 x reflectance``, as
int16 so that the negative reflectances of dark water survive, with
:data:`HARMONIZED_NODATA` as nodata. DN 0 is nodata in every baseline and is
masked before the offset is applied. The baseline is never guessed from the
sensing date.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from landcover import clouds, rasters

log = logging.getLogger(__name__)

# The convention scene.tif is written in when HARMONIZE is on.
CONVENTION = "DN = 10000 x reflectance (processing baseline < 04.00 convention), int16, nodata -32768"
HARMONIZED_DTYPE = "int16"
HARMONIZED_NODATA = -32768
# Band order of band_id in the product metadata (0-based, B10 included); used
# only to name the physicalBand values, which are always read from the file.
_PHYSICAL = re.compile(r"^B0*(\d+A?)$", re.IGNORECASE)


def band_key(name: str) -> str:
    """Our spelling of a band name: ``"B2"`` / ``"b02"`` -> ``"B02"``, ``"B8A"`` stays."""
    m = _PHYSICAL.match(name.strip())
    if not m:
        return name.strip().upper()
    num = m.group(1).upper()
    return f"B{num}" if num.endswith("A") else f"B{num.zfill(2)}"


@dataclass
class Metadata:
    """Radiometric metadata of one product.

    Attributes:
        level: ``"L2A"``, ``"L1C"`` or ``None`` (no metadata).
        baseline: processing baseline such as ``"04.00"``, or None.
        quantification: DN per unit reflectance (10000).
        offsets: ``{band: DN offset}`` to add before dividing (-1000 from 04.00; 0 before).
        source: the file it was read from, or a note.
    """

    level: str | None
    baseline: str | None
    quantification: float = 10000.0
    offsets: dict[str, float] = field(default_factory=dict)
    source: str = "none"

    def offset(self, band: str) -> float:
        return float(self.offsets.get(band, 0.0))

    def as_json(self) -> dict:
        return {"level": self.level, "baseline": self.baseline, "quantification": self.quantification,
                "offsets": self.offsets, "source": self.source}


def _local(tag: str) -> str:
    """Element name without its namespace (the namespace URL changes between versions)."""
    return tag.rsplit("}", 1)[-1]


def _find_all(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if _local(e.tag) == name]


def parse_metadata(path: Path) -> Metadata:
    """Read baseline, quantification value and per-band offsets from ``MTD_MSIL2A.xml`` / ``MTD_MSIL1C.xml``.

    ``band_id`` of the offsets is 0-based over the 13 bands (B10 included) and
    is mapped to a band name through ``Spectral_Information/@physicalBand``.

    Raises:
        ValueError: unreadable XML, or metadata that contradicts itself (an
            offset for a band id the file does not define, no quantification
            value, a baseline that is not NN.NN).
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as err:
        raise ValueError(f"{path}: not readable product metadata (XML): {err}") from err
    level = "L2A" if "2A" in _local(root.tag) else "L1C" if "1C" in _local(root.tag) else None
    baselines = {e.text.strip() for e in _find_all(root, "PROCESSING_BASELINE") if e.text}
    if len(baselines) > 1:
        raise ValueError(f"{path}: several processing baselines {sorted(baselines)} in one product")
    baseline = baselines.pop() if baselines else None
    if baseline is not None and not re.fullmatch(r"\d{2}\.\d{2}", baseline):
        raise ValueError(f"{path}: processing baseline {baseline!r} is not of the form NN.NN")
    quant_name = "BOA_QUANTIFICATION_VALUE" if level == "L2A" else "QUANTIFICATION_VALUE"
    quants = _find_all(root, quant_name)
    if not quants or not (quants[0].text or "").strip():
        raise ValueError(f"{path}: no {quant_name}; the metadata is incomplete")
    quantification = float(quants[0].text)
    if quantification <= 0:
        raise ValueError(f"{path}: {quant_name} is {quantification}, expected a positive number")
    physical = {e.get("bandId"): band_key(e.get("physicalBand", ""))
                for e in _find_all(root, "Spectral_Information") if e.get("bandId") is not None}
    offset_name = "BOA_ADD_OFFSET" if level == "L2A" else "RADIO_ADD_OFFSET"
    offsets: dict[str, float] = {}
    for e in _find_all(root, offset_name):
        band_id = e.get("band_id")
        if band_id not in physical:
            raise ValueError(f"{path}: {offset_name} for band_id {band_id!r}, which Spectral_Information does "
                             f"not define (ids {sorted(physical, key=int)})")
        offsets[physical[band_id]] = float(e.text)
    return Metadata(level, baseline, quantification, offsets, str(path))


def find_metadata_file(scene_path: Path) -> Path | None:
    """``MTD_MSIL2A.xml`` / ``MTD_MSIL1C.xml`` of the product holding ``scene_path``.

    Looks in the folder itself and up to three levels above it, so an
    ``IMG_DATA`` or granule folder finds its product's metadata.
    """
    folder = Path(scene_path).resolve()
    for candidate in [folder, *list(folder.parents)[:3]]:
        found = sorted(candidate.glob("MTD_MSIL[12][AC].xml"))
        if found:
            return found[0]
    return None


@dataclass
class Product:
    """One Sentinel-2 product, ready to read.

    Attributes:
        name: a short name for logs (the ``.SAFE`` name or the item id).
        source: the path or URL the user gave.
        bands: ``{band: path or URL}`` in the order of ``BANDS``.
        meta: radiometric metadata.
        mask: where the product's own cloud mask is: ``("scl", path)``,
            ``("classi", path)``, ``("gml", path)`` or None.
        folder: the product's folder (None for a STAC item).
    """

    name: str
    source: str
    bands: dict[str, str]
    meta: Metadata
    mask: tuple[str, str] | None = None
    folder: Path | None = None

    def describe(self) -> dict:
        return {"name": self.name, "source": self.source, **self.meta.as_json(),
                "mask": None if self.mask is None else {"kind": self.mask[0], "path": str(self.mask[1])}}


def product_from_folder(scene_path: Path, bands: list[str], resolution: int, scene_offset: float | None) -> Product:
    """A ``.SAFE``, ``IMG_DATA`` or band-file folder as a :class:`Product`.

    Args:
        scene_offset: ``SCENE_OFFSET``: the DN offset of a folder without
            metadata (None: no offset, said in one log line). Ignored, with a
            warning, where the product metadata gives one.
    """
    scene_path = Path(scene_path)
    files = rasters.find_band_files(scene_path, bands, resolution)
    mtd = find_metadata_file(scene_path)
    if mtd is not None:
        meta = parse_metadata(mtd)
        if scene_offset is not None:
            log.warning("SCENE_OFFSET=%s ignored: %s gives the offsets", scene_offset, mtd)
    elif scene_offset is not None:
        meta = Metadata(None, None, 10000.0, {b: float(scene_offset) for b in bands}, "SCENE_OFFSET")
        log.info("%s: no product metadata; DN offset %s from SCENE_OFFSET", scene_path, scene_offset)
    else:
        meta = Metadata(None, None, 10000.0, {}, "none")
        log.info("%s: no product metadata (MTD_MSIL*.xml): no radiometric offset applied; set SCENE_OFFSET "
                 "(e.g. -1000 for baseline 04.00 and later) if the files carry one", scene_path)
    # a granule of an old multi-granule product is named by its granule, a product by its .SAFE
    name = (rasters.granule_folder(scene_path) or (mtd.parent if mtd is not None else scene_path)).name
    return Product(name, str(scene_path), {b: str(p) for b, p in files.items()}, meta,
                   clouds.find_product_mask(scene_path), scene_path)


def is_stac(source) -> bool:
    """True for a STAC item: a ``.json`` file or an http(s) URL."""
    text = str(source)
    return text.lower().endswith(".json") or text.startswith(("http://", "https://"))


def open_products(scene_path, bands: list[str], resolution: int, scene_offset: float | None) -> list[Product]:
    """``SCENE_PATH`` (one product, a STAC item, or a list of them) as products, in list order."""
    sources = list(scene_path) if isinstance(scene_path, (list, tuple)) else [scene_path]
    if not sources:
        raise ValueError("SCENE_PATH is an empty list; give a product, a STAC item or a list of them")
    out = []
    for src in sources:
        if is_stac(src):
            from landcover import stac  # pystac is imported only for STAC items (and stac uses this module)

            out.append(stac.product_from_item(str(src), bands, resolution))
        else:
            out.append(product_from_folder(Path(src), bands, resolution, scene_offset))
    return out


def harmonise(dn: np.ndarray, valid: np.ndarray, offset: float, quantification: float) -> np.ndarray:
    """Stored DN to :data:`CONVENTION`: ``round((DN + offset) * 10000 / quantification)``.

    Args:
        dn: (rows, cols) stored values (any numeric dtype; float from resampling).
        valid: (rows, cols) bool; False where the stored value is nodata (DN 0).
            Masked before the offset, so nodata never becomes -0.1 reflectance.
        offset: DN offset (``BOA_ADD_OFFSET`` / ``RADIO_ADD_OFFSET``; 0 before 04.00).
        quantification: DN per unit reflectance.

    Returns:
        (rows, cols) int16; :data:`HARMONIZED_NODATA` where not valid. Negative
        values (dark water) are kept; values beyond int16 are clipped to
        +-32767 (reflectance 3.3, saturated pixels only).
    """
    out = np.full(dn.shape, HARMONIZED_NODATA, np.int16)
    value = np.rint((dn[valid].astype(np.float64) + offset) * (10000.0 / quantification))
    beyond = int((np.abs(value) > 32767).sum())
    if beyond:
        log.warning("%d values beyond reflectance +-3.28 (saturated pixels) clipped to the int16 range", beyond)
    out[valid] = np.clip(value, -32767, 32767).astype(np.int16)
    return out
