"""STAC items of Sentinel-2 L2A / L1C as products (pystac).

An item's assets are found by band name: the asset key (``B02``, ``b02``),
the ``eo:bands`` name, or the common name (``blue`` ...). Where a band exists
at several resolutions (``blue``, ``blue_20m``), the asset at ``RESOLUTION``
is taken, else the finest. ``raster:bands`` scale and offset give the
radiometry (``reflectance = DN * scale + offset``); an item without them but
with ``s2:processing_baseline`` 04.00 or later gets the ESA offset of -1000 DN
(Planetary Computer items are published so); an item that says
``earthsearch:boa_offset_applied: true`` gets none (the catalogue harmonised
its files, whatever ``raster:bands`` says). Only the AOI window of each
asset is read (rasterio windowed reads of the COGs, local or remote).
"""

from __future__ import annotations

import logging

from landcover.products import Metadata, Product, band_key

log = logging.getLogger(__name__)

COMMON_NAMES = {"coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05",
                "rededge2": "B06", "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09",
                "cirrus": "B10", "swir16": "B11", "swir22": "B12"}


def _asset_band(key: str, asset) -> str | None:
    """The band an asset holds (one band only), else None."""
    eo = asset.extra_fields.get("eo:bands") or []
    if len(eo) > 1:
        return None  # e.g. the true-colour "visual" asset
    if eo and eo[0].get("name"):
        return band_key(eo[0]["name"])
    base = key.split("_")[0].lower()
    if base in COMMON_NAMES:
        return COMMON_NAMES[base]
    if base.upper().startswith("B") and base[1:2].isdigit():
        return band_key(base)
    return None


def _resolution(asset) -> float | None:
    rb = asset.extra_fields.get("raster:bands") or []
    if rb and rb[0].get("spatial_resolution"):
        return float(rb[0]["spatial_resolution"])
    gsd = asset.extra_fields.get("gsd") or asset.common_metadata.gsd
    return float(gsd) if gsd else None


def offset_already_applied(properties: dict) -> bool:
    """True where the item says its files were harmonised already
    (``earthsearch:boa_offset_applied``, formerly ``sentinel:boa_offset_applied``)."""
    return any(properties.get(k) is True for k in ("earthsearch:boa_offset_applied", "sentinel:boa_offset_applied"))


def product_from_item(href: str, bands: list[str], resolution: int) -> Product:
    """A STAC item (local ``.json`` or URL) as a :class:`~landcover.products.Product`.

    Raises:
        FileNotFoundError: a local item that does not exist.
        ValueError: not a STAC item, or an item without one of ``bands``.
    """
    import pystac

    try:
        item = pystac.Item.from_file(href)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"SCENE_PATH {href}: the STAC item does not exist") from err
    except Exception as err:  # pystac raises several types for JSON that is not an item
        raise ValueError(f"{href}: not a readable STAC item: {err}") from err
    by_band: dict[str, list[tuple[float, str, object]]] = {}
    for key, asset in item.assets.items():
        band = _asset_band(key, asset)
        if band is not None and "data" in (asset.roles or ["data"]):
            by_band.setdefault(band, []).append((_resolution(asset) or 0.0, key, asset))
    missing = [b for b in bands if b not in by_band]
    if missing:
        raise ValueError(f"{href}: the STAC item has no asset for band(s) {missing} (it has {sorted(by_band)}); "
                         "check BANDS")
    baseline = item.properties.get("s2:processing_baseline")
    kind = f"{item.properties.get('s2:product_type', '')} {item.id}".upper()
    level = "L2A" if "2A" in kind else "L1C" if "1C" in kind else None
    files, offsets, quants = {}, {}, set()
    for band in bands:
        options = sorted(by_band[band], key=lambda t: (t[0] != resolution, t[0]))
        res, key, asset = options[0]
        if res and res != resolution:
            log.warning("band %s: no asset at %d m in %s; using %r (%g m), resampled bilinearly", band, resolution,
                        item.id, key, res)
        files[band] = asset.get_absolute_href()
        rb = (asset.extra_fields.get("raster:bands") or [{}])[0]
        scale, offset = rb.get("scale"), rb.get("offset")
        if scale:
            quants.add(round(1.0 / float(scale), 6))
            offsets[band] = float(offset or 0.0) / float(scale)
        elif baseline is not None and baseline >= "04.00":
            offsets[band] = -1000.0
    if not quants and offsets:
        log.info("%s: no raster:bands scale/offset; processing baseline %s gives a -1000 DN offset", item.id, baseline)
    if offset_already_applied(item.properties):
        # Earth Search's older collection removed the offset from its COGs but kept raster:bands' -0.1
        log.info("%s: the catalogue says the offset was already applied to these files; no offset added", item.id)
        offsets = {}
    if len(quants) > 1:
        raise ValueError(f"{href}: the bands have different raster:bands scales {sorted(quants)}")
    meta = Metadata(level, baseline, quants.pop() if quants else 10000.0, offsets, f"STAC item {item.id}")
    mask = None
    scl = [(res, a) for key, a in item.assets.items() if key.lower().startswith("scl") for res in [_resolution(a)]]
    if scl:
        scl.sort(key=lambda t: (t[0] != 20, t[0] or 0))
        mask = ("scl", scl[0][1].get_absolute_href())
    return Product(item.id, href, files, meta, mask, None)
