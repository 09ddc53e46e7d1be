"""Real rasters from ../shared/data/rasters (skipped where absent).

Every file of rasterio_testdata/ either reads onto its plot grid or raises a LanduseError whose
message says what to do; the table below is the expected outcome per file.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from landuse.errors import GridError, LanduseError, RasterError
from landuse.grid import PlotGrid
from landuse.imagery import Scene
from landuse.tiler import tile
from tests.conftest import shared_data

READS = "reads"
# file -> (outcome, error class, regex the message must match: the file / cause and the fix)
TESTDATA = {
    "RGB.byte.tif": (READS, None, None),  # UTM 18N, 300 m, nodata border
    "RGB2.byte.tif": (READS, None, None),  # same pixels, custom WKT without EPSG code
    "RGBA.byte.tif": (READS, None, None),  # alpha band
    "RGBA.uint16.tif": (READS, None, None),  # uint16 (BGRA tagged): percentile stretch
    "alpha.tif": (READS, None, None),  # Web Mercator, mostly transparent
    "cogeo.tif": (READS, None, None),  # 0.6 m JPEG COG with overviews and an internal mask
    "rgb-byte-tenth.tif": (READS, None, None),
    "rgb1.tif": (READS, None, None),
    "rgb_deflate.tif": (READS, None, None),
    "rgb_lzw.tif": (READS, None, None),
    "all-nodata.tif": ("error", RasterError, r"all-nodata\.tif.*no valid pixels.*leave"),
    "byte.tif": ("error", RasterError, r"byte\.tif has 1 band.*`bands`"),
    "shade.tif": ("error", RasterError, r"shade\.tif has 1 band.*`bands`"),
    "test_esri_wkt.tif": ("error", RasterError, r"test_esri_wkt\.tif has 1 band.*`bands`"),
    "world.byte.tif": ("error", RasterError, r"world\.byte\.tif has 1 band.*`bands`"),
    "float_nan.tif": ("error", RasterError, r"float_nan\.tif has no CRS.*-a_srs"),
    "rotated.tif": ("error", RasterError, r"rotated\.tif has no CRS.*-a_srs"),
    # whole-earth / whole-disk footprints: no sensible 224 m grid; the grid says how to restrict it
    "world.rgb.tif": ("error", GridError, r"spans 360\.0 degrees.*`crs`"),
    "goes.tif": ("error", GridError, r"no finite longitude/latitude.*`crs`"),
}


def test_table_lists_every_file():
    folder = shared_data("rasters", "rasterio_testdata")
    assert sorted(p.name for p in folder.glob("*.tif")) == sorted(TESTDATA)


@pytest.mark.parametrize("name", sorted(TESTDATA))
def test_rasterio_testdata(name):
    path = shared_data("rasters", "rasterio_testdata", name)
    outcome, err, pattern = TESTDATA[name]
    if outcome != READS:
        with pytest.raises(err, match=pattern) as info:
            scene = Scene.open(path)
            PlotGrid.from_footprints(scene.footprints())
        assert "\n" not in str(info.value)
        return
    scene = Scene.open(path)
    grid = PlotGrid.from_footprints(scene.footprints())
    cov = scene.coverage(grid)
    assert cov.shape == grid.shape and 0 < cov.max() <= 1
    r, c = np.unravel_index(np.argmax(cov), cov.shape)
    pix, mask = scene.read_plot(grid, r, c, pixels=64)
    assert pix.shape == (64, 64, 3) and pix.dtype == np.uint8
    assert abs(mask.mean() - cov[r, c]) < 0.15
    assert (pix[~mask] == 0).all()


def test_alpha_and_nodata_variants_agree_on_the_landsat_scene():
    d = shared_data("rasters", "rasterio_testdata")
    ref = Scene.open(d / "RGB.byte.tif")
    grid = PlotGrid.from_footprints(ref.footprints())
    # the south-west corner of the footprint is nodata (the border of the Landsat scene)
    cov = ref.coverage(grid)
    assert cov[-1, 0] == 0 and cov.mean() < 0.8
    r, c = grid.height // 2, grid.width // 2
    a, ma = ref.read_plot(grid, r, c)
    for name in ("rgb_lzw.tif", "rgb_deflate.tif", "RGBA.byte.tif"):
        b, mb = Scene.open(d / name).read_plot(grid, r, c)
        np.testing.assert_array_equal(b, a)
        np.testing.assert_array_equal(mb, ma)
    alpha = Scene.open(d / "RGBA.byte.tif").coverage(grid)
    # the alpha band also masks a few interior pixels the nodata mask keeps
    assert (np.abs(alpha - cov) > 0.02).mean() < 0.001


def test_uint16_stretch_is_recorded():
    scene = Scene.open(shared_data("rasters", "rasterio_testdata", "RGBA.uint16.tif"))
    st = scene.provenance()["stretch"]
    assert st["method"] == "percentile" and st["low"][0] < st["high"][0]
    assert scene.files[0].rgb == (3, 2, 1)  # tagged blue, green, red, alpha
    assert scene.files[0].alpha == 4


def test_naip_crops_in_five_utm_zones():
    folder = shared_data("rasters", "naip_crops")
    files = sorted(folder.glob("*.tif"))
    zones = set()
    for path in files:
        scene = Scene.open(path)
        f = scene.files[0]
        grid = PlotGrid.from_footprints(scene.footprints())
        assert grid.crs == f.crs  # the file's own UTM zone (NAD83)
        zones.add(f.crs.to_epsg())
        cov = scene.coverage(grid)
        minx, miny, maxx, maxy = f.bounds
        area = (maxx - minx) * (maxy - miny) / grid.plot_size**2
        if area < 1:  # the two native 0.6 m crops smaller than one plot
            assert "_060_" in path.name and f.res[0] < 1
            assert (cov < 1).all()
            r, c = np.unravel_index(np.argmax(cov), cov.shape)
            pix, mask = scene.read_plot(grid, r, c)
            frac = max(0.0, min(maxx, grid.plot_bounds(r, c)[2]) - max(minx, grid.plot_bounds(r, c)[0])) * max(
                0.0, min(maxy, grid.plot_bounds(r, c)[3]) - max(miny, grid.plot_bounds(r, c)[1])
            ) / grid.plot_size**2
            assert mask.mean() <= frac + 0.02  # alpha may remove more, never add
            assert mask.mean() > 0.05
        else:
            pixels, valid = scene.read_chunk(grid, grid.chunks()[0], pixels=32)
            assert valid.max() > 0.9
    assert len(zones) == 5
    with pytest.raises(GridError, match="too wide for one UTM plot grid"):
        PlotGrid.from_footprints(Scene.open(files).footprints())


def test_north_dakota_dates_get_the_same_plot_ids(tmp_path):
    folder = shared_data("rasters", "naip_nd_timeseries")
    (p10,) = folder.glob("*2010*.tif")
    (p18,) = folder.glob("*2018*.tif")
    ids = {}
    for tag, path in (("2010", p10), ("2018", p18)):
        scene = Scene.open(path)
        grid = PlotGrid.from_footprints(scene.footprints())
        res = tile(scene, grid, tmp_path / tag, size=32)
        index = json.loads(res.index_path.read_text())
        ids[tag] = {f["properties"]["plot_id"] for f in index["features"] if f["properties"]["status"] == "ok"}
        assert res.chips == len(ids[tag]) > 200
    assert ids["2010"] == ids["2018"]
    assert PlotGrid.load(tmp_path / "2010" / "grid.json") == PlotGrid.load(tmp_path / "2018" / "grid.json")


def test_west_virginia_old_and_new_on_one_grid():
    folder = shared_data("rasters", "naip_wv_two_dates")
    old = Scene.open(next(folder.glob("*naip-old.tif")))
    new = Scene.open(next(folder.glob("*naip-new.tif")))
    grid = PlotGrid.from_footprints(old.footprints() + new.footprints())
    assert grid == PlotGrid.from_footprints(old.footprints()) == PlotGrid.from_footprints(new.footprints())
    c_old, c_new = old.coverage(grid), new.coverage(grid)
    assert (np.abs(c_old - c_new) <= 0.02).mean() > 0.97  # one footprint; the masks differ a little
    chunk = grid.chunks(rows=4)[1]
    a, va = old.read_chunk(grid, chunk, pixels=16)
    b, vb = new.read_chunk(grid, chunk, pixels=16)
    assert np.abs(va - vb).mean() < 0.05
    assert not np.array_equal(a, b)  # two dates, different pixels
    with pytest.raises(RasterError, match="has 1 band"):
        Scene.open(next(folder.glob("*nlcd.tif")))


def test_every_error_is_a_landuse_error():
    assert all(issubclass(err, LanduseError) for _, err, _ in TESTDATA.values() if err)
