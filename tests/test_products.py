"""Real products: metadata offsets, harmonisation, cloud masks, several tiles, STAC items."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform as warp_transform
from shapely.geometry import box, mapping

from landcover import clouds, mosaic, products, stac
from landcover.rasters import Grid
from tests.conftest import SHARED_DATA, write_raster

META = SHARED_DATA / "s2-metadata"
needs_meta = pytest.mark.skipif(not META.exists(), reason="../shared/data/s2-metadata is absent")
SAFE = {
    "05.09": "S2A_MSIL2A_20230821T221941_N0509_R029_T01KAB_20230822T021825.SAFE",
    "04.00": "S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_20220414T082126.SAFE",
    "02.12": "S2B_MSIL2A_20191228T210519_N0212_R071_T01CCV_20201003T104658.SAFE",
    "L1C 03.01": "S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE",
}
BANDS = ["B02", "B03", "B04", "B08"]
ALL13 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
ORIGIN = (580000.0, 5715000.0)
UTM30 = CRS.from_epsg(32630)


# ------------------------------------------------------------------ metadata ----
@needs_meta
@pytest.mark.parametrize("key, level, baseline, offset", [
    ("05.09", "L2A", "05.09", -1000.0), ("04.00", "L2A", "04.00", -1000.0),
    ("02.12", "L2A", "02.12", None), ("L1C 03.01", "L1C", "03.01", None),
])
def test_real_metadata_offsets_per_band(key, level, baseline, offset):
    name = "MTD_MSIL1C.xml" if level == "L1C" else "MTD_MSIL2A.xml"
    meta = products.parse_metadata(META / SAFE[key] / name)
    assert (meta.level, meta.baseline, meta.quantification) == (level, baseline, 10000.0)
    if offset is None:
        assert meta.offsets == {}
    else:  # all 13 bands, B10 and B8A included, named through physicalBand
        assert meta.offsets == {b: offset for b in ALL13}
    assert meta.offset("B04") == (offset or 0.0)


def _mtd(tmp_path: Path, baseline: str, offsets: dict[int, int] | None, level: str = "L2A") -> str:
    """A minimal MTD file in another namespace version, to prove elements are matched by local name."""
    ns = f"https://psd-99.sentinel2.eo.esa.int/PSD/User_Product_Level-{level[1:]}.xsd"
    q = "BOA_QUANTIFICATION_VALUE" if level == "L2A" else "QUANTIFICATION_VALUE"
    o = "BOA_ADD_OFFSET" if level == "L2A" else "RADIO_ADD_OFFSET"
    spectral = "".join(f'<Spectral_Information bandId="{i}" physicalBand="{b.replace("B0", "B")}"/>'
                       for i, b in enumerate(ALL13))
    offs = "".join(f'<{o} band_id="{i}">{v}</{o}>' for i, v in (offsets or {}).items())
    return (f'<?xml version="1.0"?><n9:Level-{level[1:]}_User_Product xmlns:n9="{ns}"><General_Info><Product_Info>'
            f"<PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE></Product_Info><Product_Image_Characteristics>"
            f"<{q}>10000</{q}><OFFSETS>{offs}</OFFSETS><Spectral_Information_List>{spectral}"
            f"</Spectral_Information_List></Product_Image_Characteristics></General_Info>"
            f"</n9:Level-{level[1:]}_User_Product>")


def test_offsets_map_band_id_through_physical_band(tmp_path):
    path = tmp_path / "MTD_MSIL2A.xml"
    path.write_text(_mtd(tmp_path, "04.00", {8: -1000, 10: -500, 12: -1200}))
    meta = products.parse_metadata(path)
    assert meta.offsets == {"B8A": -1000.0, "B10": -500.0, "B12": -1200.0}


@pytest.mark.parametrize("text, message", [
    (lambda t: t.replace('band_id="12"', 'band_id="13"'), "band_id '13', which Spectral_Information does not define"),
    (lambda t: t.replace("<BOA_QUANTIFICATION_VALUE>10000</BOA_QUANTIFICATION_VALUE>", ""), "no BOA_QUANTIFICATION"),
    (lambda t: t.replace("<PROCESSING_BASELINE>04.00", "<PROCESSING_BASELINE>four"), "is not of the form NN.NN"),
    (lambda t: t[:50], "not readable product metadata"),
])
def test_metadata_that_contradicts_itself_is_refused(tmp_path, text, message):
    path = tmp_path / "MTD_MSIL2A.xml"
    path.write_text(text(_mtd(tmp_path, "04.00", {12: -1000})))
    with pytest.raises(ValueError, match=message):
        products.parse_metadata(path)


# -------------------------------------------------------------- tiny products ----
def write_product(root: Path, name: str, dn: np.ndarray, transform: Affine, crs=UTM30, mtd: str | None = None,
                  scl: np.ndarray | None = None, level: str = "L2A") -> Path:
    """A tiny .SAFE with (bands, rows, cols) ``dn`` as B02/B03/B04/B08 at 10 m, optional MTD and 20 m SCL."""
    safe = root / f"{name}.SAFE"
    img = safe / "GRANULE" / f"{level}_T30UWC_A000001_20200101T110621" / "IMG_DATA"
    sub = img / "R10m" if level == "L2A" else img
    for i, band in enumerate(BANDS):
        suffix = "_10m" if level == "L2A" else ""
        write_raster(sub / f"T30UWC_20200101T110621_{band}{suffix}.tif", dn[i], transform, crs=str(crs), nodata=0)
    if mtd is not None:
        (safe / ("MTD_MSIL2A.xml" if level == "L2A" else "MTD_MSIL1C.xml")).write_text(mtd)
    if scl is not None:
        t20 = Affine(20, 0, transform.c, 0, -20, transform.f)
        write_raster(img / "R20m" / "T30UWC_20200101T110621_SCL_20m.tif", scl, t20, crs=str(crs), nodata=None)
    return safe


def reflectance_field(shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.01, 0.5, (4, *shape)).astype(np.float32)


def scene_of(paths, aoi=None, **kwargs):
    prods = products.open_products(paths, BANDS, 10, None)
    grid, geom = mosaic.target_grid(prods, aoi, 10, kwargs.pop("target_crs", None))
    return mosaic.read_mosaic(prods, grid, geom, scl_classes=[0, 1, 3, 8, 9, 10, 11], **kwargs)


def test_old_and_new_baseline_give_the_same_scene(tmp_path):
    refl = reflectance_field((30, 40))
    transform = Affine(10, 0, *ORIGIN[:1], 0, -10, ORIGIN[1])
    old = np.rint(refl * 10000).astype(np.uint16)
    new = old + 1000
    old[:, 0, :5] = new[:, 0, :5] = 0  # nodata
    a = write_product(tmp_path / "a", "S2B_MSIL2A_20200101T110621_N0212_R037_T30UWC_20200101T120000",
                      old, transform, mtd=_mtd(tmp_path, "02.12", None))
    b = write_product(tmp_path / "b", "S2B_MSIL2A_20200101T110621_N0509_R037_T30UWC_20230101T120000",
                      new, transform, mtd=_mtd(tmp_path, "05.09", {i: -1000 for i in range(13)}))
    scene_a, prof_a, info_a = scene_of(a)
    scene_b, prof_b, info_b = scene_of(b)
    assert scene_a.dtype == np.int16 and prof_a["nodata"] == products.HARMONIZED_NODATA
    assert np.array_equal(scene_a, scene_b) and prof_a == prof_b
    assert np.array_equal(scene_a[:, 1:], old[:, 1:].astype(np.int16))
    assert (scene_b[:, 0, :5] == products.HARMONIZED_NODATA).all()  # DN 0 is nodata, never -0.1 reflectance
    assert info_b["products"][0]["baseline"] == "05.09" and info_b["products"][0]["offsets"]["B04"] == -1000
    assert mosaic.tags(info_b)["PROCESSING_BASELINES"] == "05.09"


def test_dark_water_stays_negative_and_harmonize_false_keeps_stored_values(tmp_path):
    dn = np.full((4, 30, 40), 1500, np.uint16)
    dn[:, 5, 5] = 950  # reflectance -0.005: dark water after the offset
    safe = write_product(tmp_path, "S2B_MSIL2A_20230101T110621_N0509_R037_T30UWC_20230101T120000",
                         dn, Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]), mtd=_mtd(tmp_path, "05.09", {1: -1000,
                         2: -1000, 3: -1000, 7: -1000}))
    scene, _, info = scene_of(safe)
    assert (scene[:, 5, 5] == -50).all() and (scene[:, 0, 0] == 500).all()
    assert info["convention"] == products.CONVENTION
    raw, profile, _ = scene_of(safe, harmonize=False)
    assert raw.dtype == np.uint16 and profile["nodata"] == 0 and (raw == dn).all()


def test_scl_masks_clouds_and_shadows_and_reports_shares(tmp_path):
    dn = np.full((4, 40, 40), 2000, np.uint16)
    scl = np.full((20, 20), 4, np.uint8)
    scl[0:5, 0:5] = 9    # 10 x 10 px of high-probability cloud at 10 m
    scl[10:15, 0:5] = 3  # and as much cloud shadow
    scl[15:20, 15:20] = 6  # water stays
    safe = write_product(tmp_path, "S2B_MSIL2A_20230101T110621_N0509_R037_T30UWC_20230101T120000", dn,
                         Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]), mtd=_mtd(tmp_path, "05.09", {}), scl=scl)
    scene, profile, info = scene_of(safe)
    nodata = (scene == profile["nodata"]).all(axis=0)
    assert nodata[0:10, 0:10].all() and nodata[20:30, 0:10].all() and nodata.sum() == 200
    assert info["masked_share"]["cloud high probability"] == pytest.approx(100 / 1600, abs=1e-6)
    assert info["masked_share"]["cloud shadows"] == pytest.approx(100 / 1600, abs=1e-6)
    assert info["masked_total"] == pytest.approx(200 / 1600, abs=1e-6)
    unmasked, _, info0 = scene_of(safe, mask_mode=False)
    assert (unmasked != profile["nodata"]).all() and info0["masked_total"] == 0


def test_scl_of_another_grid_is_refused(tmp_path):
    dn = np.full((4, 40, 40), 2000, np.uint16)
    safe = write_product(tmp_path, "S2B_MSIL2A_20230101T110621_N0509_R037_T30UWC_20230101T120000", dn,
                         Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]), mtd=_mtd(tmp_path, "05.09", {}),
                         scl=np.full((20, 20), 4, np.uint8))
    scl_path = next(safe.rglob("*_SCL_20m.tif"))
    write_raster(scl_path, np.full((20, 20), 4, np.uint8), Affine(20, 0, ORIGIN[0] + 5000, 0, -20, ORIGIN[1]),
                 nodata=None)
    with pytest.raises(ValueError, match=r"SCL_20m\.tif: the mask covers .* not the product's tile"):
        scene_of(safe)


def _l1c(tmp_path, baseline: str) -> Path:
    dn = np.full((4, 60, 60), 2000, np.uint16)
    return write_product(tmp_path, f"S2A_MSIL1C_20200101T110621_N{baseline.replace('.', '')}_R037_T30UWC_2020",
                         dn, Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]),
                         mtd=_mtd(tmp_path, baseline, {i: -1000 for i in range(13)} if baseline >= "04" else None,
                                  level="L1C"), level="L1C")


def test_l1c_classi_raster_mask(tmp_path):
    safe = _l1c(tmp_path, "04.00")
    flags = np.zeros((3, 10, 10), np.uint8)
    flags[0, 0, 0] = 1  # one 60 m cell of opaque cloud = 6 x 6 px at 10 m
    flags[2, 9, 9] = 1  # and one of snow in the far corner
    qi = safe / "GRANULE" / "L1C_T30UWC_A000001_20200101T110621" / "QI_DATA"
    write_raster(qi / "MSK_CLASSI_B00.tif", flags, Affine(60, 0, ORIGIN[0], 0, -60, ORIGIN[1]), nodata=None)
    scene, profile, info = scene_of(safe)
    nodata = (scene == profile["nodata"]).all(axis=0)
    assert nodata[:6, :6].all() and nodata[54:, 54:].all() and nodata.sum() == 72
    assert info["masked_share"] == {"opaque clouds": pytest.approx(36 / 3600, abs=1e-6), "cirrus": 0.0,
                                    "snow": pytest.approx(36 / 3600, abs=1e-6)}
    assert scene[0, 10, 10] == 1000  # 2000 DN with the -1000 offset


GML = """<?xml version="1.0" encoding="UTF-8"?>
<eop:Mask xmlns:eop="http://www.opengis.net/eop/2.0" xmlns:gml="http://www.opengis.net/gml/3.2" gml:id="m">
<gml:boundedBy><gml:Envelope srsName="urn:ogc:def:crs:EPSG::32630"><gml:lowerCorner>580000 5714600</gml:lowerCorner>
<gml:upperCorner>580400 5715000</gml:upperCorner></gml:Envelope></gml:boundedBy>
<eop:maskMembers>{members}</eop:maskMembers></eop:Mask>"""
MEMBER = """<eop:MaskFeature gml:id="OPAQUE.0"><eop:maskType codeSpace="urn:x">OPAQUE</eop:maskType>
<eop:extentOf><gml:Polygon gml:id="p0" srsName="urn:ogc:def:crs:EPSG::32630"><gml:exterior><gml:LinearRing>
<gml:posList srsDimension="2">580000 5715000 580100 5715000 580100 5714900 580000 5714900 580000 5715000</gml:posList>
</gml:LinearRing></gml:exterior></gml:Polygon></eop:extentOf></eop:MaskFeature>"""


@pytest.mark.parametrize("members, masked", [(MEMBER, 100), ("", 0)])
def test_l1c_gml_mask_with_and_without_clouds(tmp_path, members, masked):
    safe = _l1c(tmp_path, "03.01")
    qi = safe / "GRANULE" / "L1C_T30UWC_A000001_20200101T110621" / "QI_DATA"
    qi.mkdir(parents=True)
    (qi / "MSK_CLOUDS_B00.gml").write_text(GML.format(members=members))
    scene, profile, info = scene_of(safe)
    nodata = (scene == profile["nodata"]).all(axis=0)
    assert nodata.sum() == masked and (masked == 0 or nodata[:10, :10].all())
    assert scene[0, 20, 20] == 2000  # no offset before baseline 04.00


def test_too_cloudy_or_nothing_over_the_aoi(tmp_path):
    dn = np.full((4, 40, 40), 2000, np.uint16)
    safe = write_product(tmp_path, "S2B_MSIL2A_20230101T110621_N0509_R037_T30UWC_20230101T120000", dn,
                         Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]), mtd=_mtd(tmp_path, "05.09", {}),
                         scl=np.full((20, 20), 9, np.uint8))
    with pytest.raises(ValueError, match="every pixel is masked"):
        scene_of(safe)
    empty = dn.copy()
    empty[:] = 0
    other = write_product(tmp_path / "o", "S2B_MSIL2A_20230101T110621_N0509_R037_T30UWC_20230102T120000", empty,
                          Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]), mtd=_mtd(tmp_path, "05.09", {}))
    with pytest.raises(ValueError, match=r"no valid, unmasked pixel of .*N0509.* lies in the AOI"):
        scene_of([other])


# ------------------------------------------------------ several tiles and zones ----
def _field(lon, lat):
    """A smooth reflectance pattern defined on the ground (lon/lat), in DN."""
    return 2000 + 1500 * np.sin(lon * 60) * np.cos(lat * 45)


def _tile(root, name, crs, left, top, width, height):
    transform = Affine(10, 0, left, 0, -10, top)
    rows, cols = np.mgrid[0:height, 0:width]
    xs, ys = rasterio.transform.xy(transform, rows.ravel(), cols.ravel())
    lon, lat = warp_transform(crs, "EPSG:4326", xs, ys)
    values = _field(np.asarray(lon), np.asarray(lat)).reshape(height, width)
    dn = np.repeat((values + 1000)[np.newaxis], 4, axis=0).astype(np.uint16)
    return write_product(root, name, dn, transform, crs=crs, mtd=_mtd(root, "05.09", {i: -1000 for i in range(13)}))


def zone_tiles(root, west_of_border: int, east_of_border: int, north: int, width: int, height: int):
    """Two tiles near 0 degrees east, 50 N, where UTM 30N meets 31N: the first in 30N with its left edge
    ``west_of_border`` m west of the border, the second in 31N with its left edge ``east_of_border`` m east
    of it (negative: west), both with their top ``north`` m north of 50 N; ``width`` x ``height`` px at 10 m."""
    utm30, utm31 = CRS.from_epsg(32630), CRS.from_epsg(32631)
    x30, y30 = warp_transform("EPSG:4326", utm30, [0.0], [50.0])
    x31, y31 = warp_transform("EPSG:4326", utm31, [0.0], [50.0])
    a = _tile(root / "a", "S2A_MSIL2A_20230101T110621_N0509_R037_T30UYA_20230101T1", utm30,
              round(x30[0] / 10) * 10 - west_of_border, round(y30[0] / 10) * 10 + north, width, height)
    b = _tile(root / "b", "S2A_MSIL2A_20230101T110621_N0509_R037_T31UCR_20230101T1", utm31,
              round(x31[0] / 10) * 10 + east_of_border, round(y31[0] / 10) * 10 + north, width, height)
    return a, b


def test_two_tiles_in_two_utm_zones_mosaic_without_a_seam(tmp_path):
    # the 30N / 31N border is at 0 degrees east; two tiles of 4 x 3 km that each reach 1 km past it
    a, b = zone_tiles(tmp_path, 3000, -1000, 1500, 400, 300)
    aoi = (-0.02, 49.995, 0.02, 50.005)  # 2.9 x 1.1 km across the border
    scene, profile, info = scene_of([a, b], aoi)
    assert profile["crs"] == CRS.from_epsg(32631)  # the zone of the AOI's centre (0.0 E lies in 31N)
    grid = Grid(profile["crs"], profile["transform"], profile["width"], profile["height"])
    inside = ~rasterio.features.geometry_mask(
        [mapping(mosaic.aoi_mod.aoi_geometry(aoi, grid.crs))], out_shape=grid.shape, transform=grid.transform)
    valid = (scene != profile["nodata"]).all(axis=0)
    assert valid[inside].all()  # no gap
    rows, cols = np.nonzero(inside)
    xs, ys = rasterio.transform.xy(grid.transform, rows, cols)
    lon, lat = warp_transform(grid.crs, "EPSG:4326", xs, ys)
    expected = _field(np.asarray(lon), np.asarray(lat))
    error = np.abs(scene[0][rows, cols] - expected)
    assert np.percentile(error, 99) < 15 and error.max() < 40  # bilinear resampling of a smooth field
    # the western half came from the 30N tile, resampled; the eastern one is copied from 31N pixel for pixel
    assert [p["name"] for p in info["products"]] == [a.name, b.name]


def test_one_product_in_its_own_zone_is_not_resampled(tmp_path):
    refl = reflectance_field((30, 40))
    dn = (np.rint(refl * 10000) + 1000).astype(np.uint16)
    safe = write_product(tmp_path, "S2B_MSIL2A_20230101T110621_N0509_R037_T30UWC_20230101T120000", dn,
                         Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]),
                         mtd=_mtd(tmp_path, "05.09", {i: -1000 for i in range(13)}))
    scene, profile, _ = scene_of(safe)
    assert profile["transform"] == Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1])
    assert np.array_equal(scene, dn.astype(np.int16) - 1000)


# ---------------------------------------------------------------------- STAC ----
@needs_meta
def test_real_stac_item_fields():
    item = META / SAFE["04.00"] / "stac_item.json"
    product = stac.product_from_item(str(item), ["B02", "B04", "B8A", "B11"], 10)
    assert product.bands["B02"].endswith("R10m/T33XWJ_20220413T150759_B02_10m.tif")
    assert product.bands["B8A"].endswith("R20m/T33XWJ_20220413T150759_B8A_20m.tif")  # no 10 m B8A
    assert product.meta.baseline == "04.00" and product.meta.level == "L2A"
    assert product.meta.quantification == 10000 and product.meta.offsets["B11"] == pytest.approx(-1000)
    assert product.mask[0] == "scl" and product.mask[1].endswith("SCL_20m.tif")


def _item(tmp_path, dn, transform, bands=("blue", "green", "red", "nir"), scl=None) -> Path:
    import pystac

    item = pystac.Item("S2B_30UWC_20230101_0_L2A", mapping(box(-1.9, 51.5, -1.7, 51.6)), [-1.9, 51.5, -1.7, 51.6],
                       __import__("datetime").datetime(2023, 1, 1), {"s2:processing_baseline": "05.09"})
    from rasterio.shutil import copy as copy_raster

    for i, key in enumerate(bands):
        plain = write_raster(tmp_path / f"{key}_plain.tif", dn[i], transform, nodata=0)
        path = tmp_path / f"{key}.tif"
        copy_raster(plain, path, driver="COG", blocksize=16)  # a Cloud-Optimised GeoTIFF, as catalogues serve
        asset = pystac.Asset(str(path), media_type=pystac.MediaType.COG, roles=["data", "reflectance"],
                             extra_fields={"raster:bands": [{"nodata": 0, "scale": 0.0001, "offset": -0.1,
                                                             "spatial_resolution": 10}]})
        item.add_asset(key, asset)
    if scl is not None:
        path = write_raster(tmp_path / "scl.tif", scl, Affine(20, 0, transform.c, 0, -20, transform.f), nodata=None)
        item.add_asset("scl", pystac.Asset(str(path), roles=["data"]))
    item.set_self_href(str(tmp_path / "item.json"))
    item.save_object(include_self_link=False)
    return tmp_path / "item.json"


def test_local_stac_item_reads_windows_with_scale_and_offset(tmp_path):
    refl = reflectance_field((30, 40))
    transform = Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1])
    dn = (np.rint(refl * 10000) + 1000).astype(np.uint16)
    scl = np.full((15, 20), 4, np.uint8)
    scl[0, 0] = 9
    item = _item(tmp_path / "cogs", dn, transform, scl=scl)
    scene, profile, info = scene_of(str(item))
    expected = (dn.astype(np.int16) - 1000)
    expected[:, :2, :2] = products.HARMONIZED_NODATA
    assert np.array_equal(scene, expected)
    assert info["masked_share"]["cloud high probability"] == pytest.approx(4 / 1200, abs=1e-6)
    # the same reflectances from a .SAFE at the old baseline give the same scene
    safe = write_product(tmp_path, "S2B_MSIL2A_20200101T110621_N0212_R037_T30UWC_20200101T120000",
                         (dn - 1000).astype(np.uint16), transform, mtd=_mtd(tmp_path, "02.12", None))
    old, _, _ = scene_of(safe, mask_mode=False)
    new, _, _ = scene_of(str(item), mask_mode=False)
    assert np.array_equal(old, new)


def test_stac_item_whose_catalogue_applied_the_offset_gets_none(tmp_path):
    # Earth Search's older collection: harmonised files, but raster:bands still says -0.1
    import json

    dn = np.full((4, 10, 10), 1500, np.uint16)
    item = _item(tmp_path, dn, Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]))
    data = json.loads(item.read_text())
    data["properties"]["earthsearch:boa_offset_applied"] = True
    item.write_text(json.dumps(data))
    scene, _, info = scene_of(str(item))
    assert (scene == 1500).all() and info["products"][0]["offsets"] == {}


def test_stac_item_without_the_bands_is_refused(tmp_path):
    dn = np.full((4, 10, 10), 1500, np.uint16)
    item = _item(tmp_path, dn, Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]), bands=("blue", "green", "red", "swir16"))
    with pytest.raises(ValueError, match=r"item\.json: the STAC item has no asset for band\(s\) \['B08'\]"):
        products.open_products(str(item), BANDS, 10, None)


# ---------------------------------------------------------------- s2cloudless ----
def test_s2cloudless_missing_gives_one_line(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "s2cloudless", None)
    safe = _l1c(tmp_path, "04.00")
    with pytest.raises(ValueError, match="needs the s2cloudless package: pip install s2cloudless"):
        scene_of(safe, mask_mode="s2cloudless")


def test_s2cloudless_flags_a_bright_cloud(tmp_path):
    pytest.importorskip("s2cloudless", reason="s2cloudless is an optional extra (pip install s2cloudless)")
    # an L1C of 1.2 x 1.2 km: vegetation, and a bright, cold-SWIR cloud over its north-west quarter
    transform = Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1])
    veg = dict(zip(clouds.S2CLOUDLESS_BANDS, (0.10, 0.08, 0.05, 0.10, 0.30, 0.32, 0.12, 0.01, 0.18, 0.09)))
    cloud = dict(zip(clouds.S2CLOUDLESS_BANDS, (0.55, 0.55, 0.56, 0.57, 0.60, 0.60, 0.40, 0.08, 0.45, 0.35)))
    safe = tmp_path / "S2A_MSIL1C_20230101T110621_N0509_R037_T30UWC_20230101T120000.SAFE"
    img = safe / "GRANULE" / "L1C_T30UWC_A000001_20230101T110621" / "IMG_DATA"
    for band in sorted(set(clouds.S2CLOUDLESS_BANDS) | set(BANDS)):
        values = np.full((120, 120), veg.get(band, 0.1), np.float32)
        values[:60, :60] = cloud.get(band, 0.55)
        write_raster(img / f"T30UWC_20230101T110621_{band}.tif", (values * 10000 + 1000).astype(np.uint16),
                     transform, nodata=0)
    (safe / "MTD_MSIL1C.xml").write_text(_mtd(tmp_path, "05.09", {i: -1000 for i in range(13)}, level="L1C"))
    scene, profile, info = scene_of(safe, mask_mode="s2cloudless", cloud_threshold=0.4, cloud_dilation_m=0)
    masked = (scene == profile["nodata"]).all(axis=0)
    assert masked[:60, :60].mean() > 0.9 and masked[70:, 70:].mean() < 0.1
    assert info["masked_share"]["s2cloudless clouds"] == pytest.approx(masked.mean(), abs=1e-6)


def test_each_granule_of_an_old_multi_granule_safe_is_a_product_with_its_own_mask(tmp_path):
    safe = tmp_path / "S2A_OPER_PRD_MSIL1C_PDMC_20160101T000000_R037_V20160101T110621_20160101T110621.SAFE"
    imgs = []
    for k, col in enumerate((0, 40)):
        granule = safe / "GRANULE" / f"S2A_OPER_MSI_L1C_TL_SGS__20160101T000000_A00000{k}_T30UWC_N02.01"
        for i, band in enumerate(BANDS):
            write_raster(granule / "IMG_DATA" / f"S2A_OPER_MSI_L1C_TL_SGS__20160101_A00000{k}_T30UWC_{band}.jp2",
                         np.full((40, 40), 2000 + k, np.uint16), Affine(10, 0, ORIGIN[0] + 10 * col, 0, -10, ORIGIN[1]),
                         driver="JP2OpenJPEG")
        (granule / "QI_DATA").mkdir(parents=True)
        (granule / "QI_DATA" / "MSK_CLOUDS_B00.gml").write_text(GML.format(members=MEMBER if k == 1 else ""))
        imgs.append(granule / "IMG_DATA")
    (safe / "MTD_MSIL1C.xml").write_text(_mtd(tmp_path, "02.01", None, level="L1C"))
    with pytest.raises(ValueError, match="several files for band B02"):
        products.open_products(safe, BANDS, 10, None)
    prods = products.open_products(imgs, BANDS, 10, None)
    assert [Path(p.mask[1]).parents[1].name[-30:] for p in prods] == [i.parent.name[-30:] for i in imgs]
    scene, profile, info = scene_of(imgs)
    # granule 2's polygon (its own mask) lies over granule 1, which is first in the list and clear there
    assert (scene[0, :, :40] == 2000).all() and (scene[0, :, 40:] == 2001).all() and info["masked_total"] == 0


RANGE_SERVER = """
import os, re, sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class Handler(SimpleHTTPRequestHandler):
    # a file server that honours HTTP Range requests, as object stores do, and logs the bytes it sends

    def log_message(self, *args):
        pass

    def send_head(self):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            return None
        size = os.path.getsize(path)
        match = re.match(r"bytes=(\\d+)-(\\d*)", self.headers.get("Range", ""))
        start, end = (int(match.group(1)), min(int(match.group(2) or size - 1), size - 1)) if match else (0, size - 1)
        self.send_response(206 if match else 200)
        if match:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.range = (start, end)
        return open(path, "rb")

    def copyfile(self, source, outputfile):
        start, end = self.range
        source.seek(start)
        data = source.read(end - start + 1)
        with open(sys.argv[2], "a") as log:
            log.write(f"{len(data)}\\n")
        outputfile.write(data)


server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=sys.argv[1]))
with open(sys.argv[3], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
"""


def test_stac_item_over_http_reads_only_the_aoi_window(tmp_path):
    import subprocess
    import sys
    import time

    # a 2048 x 2048 px band as a COG served over HTTP (in its own process, as a remote server is);
    # the AOI is a 100 x 100 px window of it
    rng = np.random.default_rng(0)
    dn = rng.integers(1001, 6000, (4, 2048, 2048), dtype=np.uint16)
    transform = Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1])
    item_path = _item(tmp_path / "cogs", dn, transform)
    (tmp_path / "server.py").write_text(RANGE_SERVER)
    log, port_file = tmp_path / "sent.txt", tmp_path / "port.txt"
    server = subprocess.Popen([sys.executable, str(tmp_path / "server.py"), str(tmp_path / "cogs"), str(log),
                               str(port_file)])
    try:
        for _ in range(100):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        text = item_path.read_text().replace(str(tmp_path / "cogs"), url)
        (tmp_path / "cogs" / "item_http.json").write_text(text)
        x0, y0 = ORIGIN[0] + 10 * 1000, ORIGIN[1] - 10 * 1000
        lon, lat = warp_transform(UTM30, "EPSG:4326", [x0 + 5, x0 + 995], [y0 - 995, y0 - 5])
        aoi = (lon[0], lat[0], lon[1], lat[1])
        scene, profile, _ = scene_of(f"{url}/item_http.json", aoi, mask_mode=False)
    finally:
        server.terminate()
        server.wait()
    sent = sum(int(line) for line in log.read_text().split())
    r0 = round((ORIGIN[1] - profile["transform"].f) / 10)
    c0 = round((profile["transform"].c - ORIGIN[0]) / 10)
    h, w = scene.shape[1:]
    assert 95 <= h <= 110 and 95 <= w <= 110
    valid = scene != products.HARMONIZED_NODATA
    assert valid.mean() > 0.9
    assert np.array_equal(scene[valid], (dn[:, r0:r0 + h, c0:c0 + w].astype(np.int16) - 1000)[valid])
    whole = sum((tmp_path / "cogs" / f"{k}.tif").stat().st_size for k in ("blue", "green", "red", "nir"))
    assert sent < 0.1 * whole, (sent, whole)  # windowed reads of the COG's tiles, not whole files
