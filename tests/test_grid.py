"""PlotGrid: partitions, stable ids, chunks, JSON, CRS choice, AOI restriction, and `landuse grid`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod, Transformer
from rasterio.crs import CRS

from landuse.cli import main
from landuse.errors import AOIError, GridError, GridMismatchError, RasterError
from landuse.grid import PlotGrid

US_SURVEY_FOOT_M = 1200.0 / 3937.0  # exact definition, independent of the code under test
PROPS = settings(max_examples=40, deadline=None)

metric_crs = st.sampled_from(["EPSG:32611", "EPSG:26914", "EPSG:5070", "EPSG:3857"])
# Bounds in a metric CRS: origin anywhere in a 200 km square, 1 m .. 3 km wide / tall.
coords = st.floats(min_value=300_000.0, max_value=500_000.0, allow_nan=False)
extent = st.floats(min_value=1.0, max_value=3_000.0, allow_nan=False)


def _bounds(x: float, y: float, w: float, h: float) -> tuple[float, float, float, float]:
    return (x, 3_500_000.0 + y, x + w, 3_500_000.0 + y + h)


# -- properties ----------------------------------------------------------------------------------


@PROPS
@given(crs=metric_crs, x=coords, y=coords, w=extent, h=extent)
def test_plots_tile_the_grid_without_gap_or_overlap(crs, x, y, w, h):
    b = _bounds(x, y, w, h)
    grid = PlotGrid.from_bounds(b, crs)
    gb = grid.bounds
    # the grid covers the requested bounds, by less than one plot of slack on each side
    assert gb[0] <= b[0] < gb[0] + 224 and gb[1] <= b[1] < gb[1] + 224
    assert gb[2] - 224 < b[2] <= gb[2] and gb[3] - 224 < b[3] <= gb[3]
    polys = grid.footprints()
    assert len(polys) == grid.width * grid.height
    areas = shapely.area(polys)
    np.testing.assert_allclose(areas, 224.0 * 224.0, rtol=1e-9)
    extent_area = (gb[2] - gb[0]) * (gb[3] - gb[1])
    # sum of areas == area of the union == area of the bounds: no gap, no overlap
    assert math.isclose(areas.sum(), extent_area, rel_tol=1e-9)
    union = shapely.union_all(polys)
    assert math.isclose(union.area, extent_area, rel_tol=1e-9)
    assert union.symmetric_difference(shapely.box(*gb)).area < 1e-3


@PROPS
@given(
    crs=metric_crs,
    x=coords,
    y=coords,
    w=extent,
    h=extent,
    grow=st.tuples(*[st.floats(min_value=0.0, max_value=2_000.0)] * 4),
)
def test_plot_ids_do_not_change_when_the_bounds_grow(crs, x, y, w, h, grow):
    b = _bounds(x, y, w, h)
    small = PlotGrid.from_bounds(b, crs)
    big = PlotGrid.from_bounds((b[0] - grow[0], b[1] - grow[1], b[2] + grow[2], b[3] + grow[3]), crs)
    assert big.width >= small.width and big.height >= small.height
    rows, cols = small.all_rows_cols()
    cx, cy = small.centres(rows, cols)
    for r, c, xx, yy in zip(rows, cols, cx, cy, strict=True):
        br, bc = big.index_of(xx, yy)
        assert big.contains(br, bc)
        assert big.plot_id(br, bc) == small.plot_id(r, c)
        assert big.plot_bounds(br, bc) == pytest.approx(small.plot_bounds(r, c), abs=1e-6)


@PROPS
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    crow=st.integers(1, 12),
    ccol=st.one_of(st.none(), st.integers(1, 12)),
    n=st.integers(1, 300),
)
def test_chunks_partition_the_plots(h, w, crow, ccol, n):
    grid = PlotGrid(CRS.from_epsg(32611), Affine(224, 0, 224 * 1000, 0, -224, 224 * 16000), w, h)
    for chunks in (grid.chunks(crow, ccol), grid.chunks_of(n)):
        count = np.zeros(grid.shape, dtype=int)
        for ch in chunks:
            assert ch.height >= 1 and ch.width >= 1
            count[ch.row_off : ch.row_off + ch.height, ch.col_off : ch.col_off + ch.width] += 1
            r, c = ch.rows_cols()
            assert len(r) == ch.size
        assert (count == 1).all()
        assert sum(ch.size for ch in chunks) == grid.size
        assert len({ch.id for ch in chunks}) == len(chunks)
    assert all(ch.size <= max(n, w) for ch in grid.chunks_of(n))


custom_wkt = CRS.from_proj4("+proj=tmerc +lat_0=0 +lon_0=-117 +k=0.9996 +x_0=600000 +y_0=0 +ellps=GRS80 +units=m")


@PROPS
@given(
    crs=st.sampled_from([CRS.from_epsg(32611), CRS.from_epsg(2263), CRS.from_epsg(3857), custom_wkt]),
    x=coords,
    y=coords,
    w=extent,
    h=extent,
    size=st.sampled_from([224.0, 100.0, 30.0]),
)
def test_json_round_trip_is_exact(crs, x, y, w, h, size):
    grid = PlotGrid.from_bounds(_bounds(x, y, w, h), crs, plot_size_m=size)
    again = PlotGrid.from_json(grid.to_json())
    assert again == grid
    assert hash(again) == hash(grid)
    assert again.to_dict() == grid.to_dict()
    assert again.plot_id(0, 0) == grid.plot_id(0, 0)
    assert tuple(again.transform) == tuple(grid.transform)
    # and through a file
    assert json.loads(grid.to_json())["width"] == grid.width


def test_save_load_round_trip_and_bad_json(tmp_path):
    grid = PlotGrid.from_bounds((500_000, 4_000_000, 501_000, 4_000_500), "EPSG:32611")
    path = grid.save(tmp_path / "grid.json")
    assert PlotGrid.load(path) == grid
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(GridError, match="bad.json"):
        PlotGrid.load(tmp_path / "bad.json")
    with pytest.raises(GridError, match="missing.json"):
        PlotGrid.load(tmp_path / "missing.json")


# -- anchoring and CRS choice --------------------------------------------------------------------


def test_origin_snapped_to_multiples_of_224_m():
    grid = PlotGrid.from_bounds((500_123.4, 3_700_050.5, 501_000.0, 3_701_000.0), "EPSG:32611")
    t = grid.transform
    assert t.a == 224 and t.e == -224
    assert t.c == 224 * math.floor(500_123.4 / 224)
    assert t.f == 224 * math.ceil(3_701_000.0 / 224)
    assert grid.row0 == -math.ceil(3_701_000.0 / 224) and grid.col0 == math.floor(500_123.4 / 224)
    assert grid.plot_id(0, 0) == f"EPSG:32611/224/{grid.row0}/{grid.col0}"


def test_us_feet_crs_keeps_plots_224_metres_wide():
    # EPSG:2263: NAD83 / New York Long Island (ftUS)
    b = (980_000.0, 190_000.0, 990_000.0, 200_000.0)
    grid = PlotGrid.from_bounds(b, "EPSG:2263")
    assert grid.plot_size_m == 224
    assert grid.plot_size * US_SURVEY_FOOT_M == pytest.approx(224.0, abs=1e-6)
    # the origin is on a multiple of the plot size in feet
    assert grid.transform.c / grid.plot_size == pytest.approx(round(grid.transform.c / grid.plot_size), abs=1e-6)
    # measured on the ground (UTM 18N) a plot is 224 m wide, not 224 ft
    poly = grid.footprint(2, 2, to_crs="EPSG:4326")
    area, perimeter = Geod(ellps="GRS80").geometry_area_perimeter(poly)
    assert abs(area) == pytest.approx(224 * 224, rel=0.002)
    assert perimeter == pytest.approx(4 * 224, rel=0.001)
    # ~10,000 ft / 734.9 ft plots
    assert grid.width == math.ceil(990_000 / grid.plot_size) - math.floor(980_000 / grid.plot_size)


def _write_rgb(write_raster, name, crs, transform, w=50, h=40):
    data = np.full((3, h, w), 100, dtype=np.uint8)
    return write_raster(name, data, crs, transform)


def test_geographic_rasters_get_the_utm_zone_of_their_centre(write_raster):
    # ~ -117.5, 33.0 -> UTM 11N
    p = _write_rgb(write_raster, "wgs.tif", "EPSG:4326", Affine(0.0001, 0, -117.5, 0, -0.0001, 33.0))
    grid = PlotGrid.from_rasters([p])
    assert grid.crs == CRS.from_epsg(32611)
    assert grid.plot_size == 224
    # southern hemisphere: 151.2 E, 33.9 S -> UTM 56S
    p = _write_rgb(write_raster, "syd.tif", "EPSG:4326", Affine(0.0001, 0, 151.2, 0, -0.0001, -33.9))
    assert PlotGrid.from_rasters([p]).crs == CRS.from_epsg(32756)


def test_mixed_utm_zones_get_the_utm_zone_of_the_centre(write_raster):
    # one raster near -122.5 (zone 10), one near -111.5 (zone 12): centre ~ -117 -> zone 11
    a = _write_rgb(write_raster, "z10.tif", "EPSG:32610", Affine(30, 0, 546_000, 0, -30, 3_800_000))
    b = _write_rgb(write_raster, "z12.tif", "EPSG:32612", Affine(30, 0, 453_000, 0, -30, 3_800_000))
    grid = PlotGrid.from_rasters([a, b])
    assert grid.crs == CRS.from_epsg(32611)
    # both footprints lie inside the grid
    for path, crs in ((a, 32610), (b, 32612)):
        tr = Transformer.from_crs(crs, 32611, always_xy=True)
        import rasterio

        with rasterio.open(path) as src:
            cx, cy = tr.transform((src.bounds.left + src.bounds.right) / 2, (src.bounds.top + src.bounds.bottom) / 2)
        r, c = grid.index_of(cx, cy)
        assert grid.contains(r, c)


def test_shared_projected_crs_is_kept(write_raster):
    a = _write_rgb(write_raster, "a.tif", "EPSG:26914", Affine(1, 0, 600_010, 0, -1, 5_200_000))
    b = _write_rgb(write_raster, "b.tif", "EPSG:26914", Affine(0.6, 0, 600_300, 0, -0.6, 5_199_700))
    grid = PlotGrid.from_rasters([a, b])
    assert grid.crs == CRS.from_epsg(26914)
    assert grid.bounds[0] == 224 * math.floor(600_010 / 224)


def test_geographic_crs_is_refused(write_raster):
    p = _write_rgb(write_raster, "a.tif", "EPSG:32611", Affine(1, 0, 500_000, 0, -1, 3_700_000))
    with pytest.raises(GridError, match="EPSG:4326"):
        PlotGrid.from_rasters([p], crs="EPSG:4326")
    with pytest.raises(GridError, match="projected"):
        PlotGrid.from_bounds((0, 0, 1, 1), "EPSG:4326")


def test_raster_without_crs_is_refused(write_raster):
    p = write_raster("nocrs.tif", np.zeros((1, 5, 5), np.uint8), None, Affine(1, 0, 100, 0, -1, 200))
    with pytest.raises(RasterError, match="nocrs.tif.*no CRS"):
        PlotGrid.from_rasters([p])


# -- AOI -----------------------------------------------------------------------------------------

# Plots (global row, col) of an L-shaped AOI in EPSG:32611: global row -16000 (rows count downward from the CRS origin), col 2000
X0, Y0 = 224 * 2000, 224 * 16000  # a plot corner (top-left of plot row 16000, col 2000)
AOI_CELLS = {(0, 0), (1, 0), (2, 0), (2, 1), (2, 2)}  # (i, j) below / right of the corner


def _l_shape_32611():
    # cells with a 60 m margin outward: every plot centre is >= 50 m from the boundary
    cells = [shapely.box(X0 + j * 224, Y0 - (i + 1) * 224, X0 + (j + 1) * 224, Y0 - i * 224) for i, j in AOI_CELLS]
    return shapely.union_all(cells).buffer(60, join_style="mitre")


def _expected_ids() -> set[str]:
    return {f"EPSG:32611/224/{-16000 + i}/{2000 + j}" for i, j in AOI_CELLS}


@pytest.mark.parametrize("fmt", ["geojson-4326", "gpkg-3857"])
def test_aoi_restricts_to_plots_whose_centre_lies_inside(tmp_path, fmt):
    gs = gpd.GeoSeries([_l_shape_32611()], crs="EPSG:32611")
    if fmt == "geojson-4326":
        path = tmp_path / "aoi.geojson"
        gs.to_crs("EPSG:4326").to_file(path, driver="GeoJSON")
    else:
        path = tmp_path / "aoi.gpkg"
        gs.to_crs("EPSG:3857").to_file(path, driver="GPKG")
    grid = PlotGrid.from_aoi(path)
    assert grid.crs == CRS.from_epsg(32611)  # UTM zone of the AOI's centre
    mask = grid.aoi_mask(path)
    rows, cols = np.nonzero(mask)
    assert set(grid.plot_ids(rows, cols)) == _expected_ids()
    # the same AOI on a larger grid of the same CRS selects the same plots
    big = PlotGrid.from_bounds((X0 - 5000, Y0 - 5000, X0 + 5000, Y0 + 3000), "EPSG:32611")
    rows, cols = np.nonzero(big.aoi_mask(path))
    assert set(big.plot_ids(rows, cols)) == _expected_ids()


def test_aoi_errors(tmp_path):
    grid = PlotGrid.from_bounds((X0, Y0 - 1000, X0 + 1000, Y0), "EPSG:32611")
    with pytest.raises(AOIError, match="nope.geojson"):
        grid.aoi_mask(tmp_path / "nope.geojson")
    with pytest.raises(AOIError, match="nope.geojson"):
        PlotGrid.from_aoi(tmp_path / "nope.geojson")
    empty = tmp_path / "empty.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(AOIError, match="empty.geojson"):
        PlotGrid.from_aoi(empty)
    points = tmp_path / "points.geojson"
    gpd.GeoSeries([shapely.Point(-117.5, 33.0)], crs="EPSG:4326").to_file(points, driver="GeoJSON")
    with pytest.raises(AOIError, match="no polygons"):
        PlotGrid.from_aoi(points)
    far = tmp_path / "far.geojson"
    gpd.GeoSeries([shapely.box(10, 10, 10.01, 10.01)], crs="EPSG:4326").to_file(far, driver="GeoJSON")
    with pytest.raises(AOIError, match="far.geojson"):
        grid.aoi_mask(far)


# -- ids, footprints, equality -------------------------------------------------------------------


def test_footprints_in_4326_are_closed_rings_near_the_plots():
    grid = PlotGrid.from_bounds((X0, Y0 - 900, X0 + 1100, Y0), "EPSG:32611")
    polys = grid.footprints(to_crs="EPSG:4326")
    tr = Transformer.from_crs("EPSG:32611", "EPSG:4326", always_xy=True)
    rows, cols = grid.all_rows_cols()
    cx, cy = grid.centres(rows, cols)
    lon, lat = tr.transform(cx, cy)
    for poly, lo, la in zip(polys, lon, lat, strict=True):
        ring = np.asarray(poly.exterior.coords)
        assert (ring[0] == ring[-1]).all() and len(ring) >= 5
        assert poly.is_valid and poly.exterior.is_ring
        assert poly.contains(shapely.Point(lo, la))
        assert -118 < ring[:, 0].min() and ring[:, 0].max() < -117 and 32 < ring[:, 1].min() < 33
    # neighbours share edges: the union of 4326 polygons is one polygon without holes
    union = shapely.union_all(polys)
    assert union.geom_type == "Polygon" and len(union.interiors) == 0


def test_parse_plot_id_round_trip_and_foreign_ids():
    grid = PlotGrid.from_bounds((X0, Y0 - 2000, X0 + 1500, Y0), "EPSG:32611")
    rows, cols = grid.all_rows_cols()
    for r, c, pid in zip(rows, cols, grid.plot_ids(), strict=True):
        assert grid.parse_plot_id(pid) == (r, c)
    assert grid.plot_id(0, 0) == "EPSG:32611/224/-16000/2000"
    with pytest.raises(GridError):
        grid.parse_plot_id("EPSG:32612/224/-16000/2000")
    with pytest.raises(GridError):
        grid.parse_plot_id("EPSG:32611/224/-16001/2000")  # just above
    with pytest.raises(GridError):
        grid.parse_plot_id("nonsense")


def test_require_equal_names_both_grids():
    a = PlotGrid.from_bounds((X0, Y0 - 3 * 224, X0 + 4 * 224, Y0), "EPSG:32611")
    b = PlotGrid.from_bounds((X0, Y0 - 5 * 224, X0 + 4 * 224, Y0), "EPSG:32611")
    a.require_equal(PlotGrid.from_json(a.to_json()))
    with pytest.raises(GridMismatchError) as err:
        a.require_equal(b, what="2016 and 2022")
    msg = str(err.value)
    assert "3 x 4" in msg and "5 x 4" in msg and "2016 and 2022" in msg and "\n" not in msg


# -- `landuse grid` ------------------------------------------------------------------------------


def _two_rasters(write_raster) -> list[Path]:
    t = Affine(1, 0, X0 + 100, 0, -1, Y0 - 50)
    a = write_raster("a.tif", np.full((3, 500, 700), 90, np.uint8), "EPSG:32611", t)
    b = write_raster("b.tif", np.full((3, 300, 300), 90, np.uint8), "EPSG:32611", Affine(1, 0, X0 + 700, 0, -1, Y0 - 450))
    return [a, b]


def test_cli_grid_writes_grid_json_and_geojson(tmp_path, write_raster, capsys):
    a, b = _two_rasters(write_raster)
    out, gj = tmp_path / "grid.json", tmp_path / "plots.geojson"
    assert main(["grid", str(a), str(b), "--out", str(out), "--geojson", str(gj)]) == 0
    grid = PlotGrid.load(out)
    # union footprint: x from X0+100 to X0+1000, y from Y0-750 to Y0-50 -> 5 cols x 4 rows
    assert grid.crs == CRS.from_epsg(32611)
    assert (grid.width, grid.height) == (5, 4)
    assert grid.plot_id(0, 0) == "EPSG:32611/224/-16000/2000"
    plots = gpd.read_file(gj)
    assert plots.crs.to_epsg() == 4326
    assert len(plots) == 20
    assert set(plots["plot_id"]) == set(grid.plot_ids())
    row0 = plots[plots["plot_id"] == "EPSG:32611/224/-16000/2000"].iloc[0]
    assert (row0["row"], row0["col"]) == (0, 0)
    text = capsys.readouterr().out
    assert "EPSG:32611" in text and "20 plots" in text and "4 x 5" in text
    # 20 plots of 5.0176 ha
    assert "100.4 ha" in text or "100.35 ha" in text
    # no overwrite without --overwrite
    assert main(["grid", str(a), "--out", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert PlotGrid.load(out) == grid
    assert main(["grid", str(a), "--out", str(out), "--overwrite"]) == 0
    assert PlotGrid.load(out) != grid


def test_cli_grid_with_aoi_and_crs(tmp_path, write_raster, capsys):
    aoi = tmp_path / "aoi.geojson"
    gpd.GeoSeries([_l_shape_32611()], crs="EPSG:32611").to_crs("EPSG:4326").to_file(aoi, driver="GeoJSON")
    out, gj = tmp_path / "grid.json", tmp_path / "plots.geojson"
    # AOI alone: grid from the AOI, GeoJSON restricted to the plots whose centre lies inside
    assert main(["grid", "--aoi", str(aoi), "--out", str(out), "--geojson", str(gj)]) == 0
    assert set(gpd.read_file(gj)["plot_id"]) == _expected_ids()
    assert "5 plots" in capsys.readouterr().out
    # imagery + AOI: the grid covers the imagery; the AOI selects
    a, b = _two_rasters(write_raster)
    assert main(["grid", str(a), str(b), "--aoi", str(aoi), "--out", str(out), "--geojson", str(gj), "--overwrite"]) == 0
    ids = set(gpd.read_file(gj)["plot_id"])
    assert ids and ids <= _expected_ids()
    # explicit CRS; geographic refused with exit 1 and a one-line message
    assert main(["grid", str(a), "--crs", "EPSG:32612", "--out", str(out), "--overwrite"]) == 0
    assert PlotGrid.load(out).crs == CRS.from_epsg(32612)
    capsys.readouterr()
    assert main(["grid", str(a), "--crs", "EPSG:4326", "--out", str(out), "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "EPSG:4326" in err and err.count("\n") == 1
    # nothing to build from: usage error
    assert main(["grid", "--out", str(tmp_path / "g2.json")]) == 2


def test_cli_grid_plot_size(tmp_path, write_raster):
    a, _ = _two_rasters(write_raster)
    out = tmp_path / "grid.json"
    assert main(["grid", str(a), "--plot-size", "100", "--out", str(out)]) == 0
    grid = PlotGrid.load(out)
    assert grid.plot_size == 100 and grid.transform.c % 100 == 0
