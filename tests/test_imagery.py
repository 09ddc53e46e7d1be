"""Scene: synthetic rasters in tmp_path exercise both read paths, masks, bands and stretch.

Most rasters here encode their own ground coordinates linearly (R = 0.4 * metres east of an
origin, G = 0.4 * metres south of it), so the value expected at any output pixel is computed from
the plot geometry alone, independently of the reader, and bilinear / average resampling of a
linear function is exact away from the edges.
"""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest
from affine import Affine
from pyproj import Transformer

from landuse.errors import InputError, LanduseError, RasterError
from landuse.grid import Chunk, PlotGrid
from landuse.imagery import Scene, expand_sources

UTM14 = "EPSG:32614"
X0, Y0 = 224.0 * 2232, 224.0 * 20000  # a plot corner of the UTM 14N grid (499968, 4480000)
# the same ground as UTM 14N, shifted 100 km east: a different CRS with identical geometry
UTM14_SHIFTED = "+proj=tmerc +lat_0=0 +lon_0=-99 +k=0.9996 +x_0=600000 +y_0=0 +datum=WGS84 +units=m +no_defs"


def encode(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The coordinate encoding (3, ...) as float: R east, G south of (X0, Y0), B constant."""
    return np.stack([0.4 * (xs - X0) + 10.0, 0.4 * (Y0 - ys) + 10.0, np.full_like(xs, 128.0)])


def encoded_raster(res: float, left: float, top: float, width: int, height: int, crs_shift: float = 0.0) -> tuple[np.ndarray, Affine]:
    """uint8 (3, h, w) encoding the coordinates of its pixel centres, and its transform."""
    cols = left + (np.arange(width) + 0.5) * res
    rows = top - (np.arange(height) + 0.5) * res
    xs, ys = np.meshgrid(cols, rows)
    data = np.clip(np.round(encode(xs, ys)), 0, 255).astype(np.uint8)
    return data, Affine(res, 0, left + crs_shift, 0, -res, top)


def expected_plot(grid: PlotGrid, row: int, col: int, pixels: int = 224) -> np.ndarray:
    """(pixels, pixels, 3) values the encoding gives at the output pixel centres of a plot."""
    minx, _, _, maxy = grid.plot_bounds(row, col)
    step = grid.plot_size / pixels
    xs, ys = np.meshgrid(minx + (np.arange(pixels) + 0.5) * step, maxy - (np.arange(pixels) + 0.5) * step)
    return encode(xs, ys).transpose(1, 2, 0)


def overlap_fraction(grid: PlotGrid, row: int, col: int, box: tuple[float, float, float, float]) -> float:
    a = grid.plot_bounds(row, col)
    w = max(0.0, min(a[2], box[2]) - max(a[0], box[0]))
    h = max(0.0, min(a[3], box[3]) - max(a[1], box[1]))
    return w * h / grid.plot_size**2


def interior(a: np.ndarray, m: int = 3) -> np.ndarray:
    return a[m:-m, m:-m]


def assert_matches(pix: np.ndarray, exp: np.ndarray, max_abs: float = 1.6, max_bias: float = 0.12) -> None:
    """Values within ``max_abs`` DN, and no systematic offset: at 0.4 DN per metre a bias above
    0.12 DN means the pixels sit more than 0.3 m from their ground."""
    diff = interior(pix.astype(float) - exp)
    assert np.abs(diff).max() <= max_abs
    bias = diff.reshape(-1, diff.shape[-1]).mean(axis=0)
    assert np.abs(bias).max() <= max_bias, bias


# -- fast path ----------------------------------------------------------------------------------


def test_aligned_1m_source_is_copied_exactly_and_chunks_are_row_major(write_raster):
    rng = np.random.default_rng(0)
    data = rng.integers(1, 255, (3, 448, 672), dtype=np.uint8)
    path = write_raster("a.tif", data, UTM14, Affine(1, 0, X0, 0, -1, Y0))
    scene = Scene.open(path)
    grid = PlotGrid.from_footprints(scene.footprints())
    assert grid.shape == (2, 3)
    pixels, valid = scene.read_chunk(grid, Chunk(0, 0, 2, 3))
    assert pixels.shape == (6, 224, 224, 3) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(valid, np.ones(6, np.float32))
    for i, (r, c) in enumerate([(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]):
        src = data[:, r * 224 : (r + 1) * 224, c * 224 : (c + 1) * 224].transpose(1, 2, 0)
        np.testing.assert_array_equal(pixels[i], src)
    one, mask = scene.read_plot(grid, 1, 2)
    np.testing.assert_array_equal(one, pixels[5])
    assert mask.all()


@pytest.mark.parametrize(
    ("res", "dx", "dy"),
    [(1.0, 0.5, 0.5), (0.6, 0.0, 0.0), (0.6, 0.3, 0.3), (2.0, 1.0, 0.0)],
    ids=["1m-half-pixel-offset", "0.6m", "0.6m-half-pixel-offset", "2m-upsampled"],
)
def test_resampled_sources_land_on_their_ground(write_raster, res, dx, dy):
    left, top = X0 + 13 + dx, Y0 - 7 - dy  # origin not on a plot corner
    w, h = int(600 / res), int(500 / res)  # 600 m x 500 m: not divisible by 224
    data, transform = encoded_raster(res, left, top, w, h)
    scene = Scene.open(write_raster("r.tif", data, UTM14, transform))
    grid = PlotGrid.from_footprints(scene.footprints())
    box = (left, top - h * res, left + w * res, top)
    pixels, valid = scene.read_chunk(grid, Chunk(0, 0, grid.height, grid.width))
    rows, cols = Chunk(0, 0, grid.height, grid.width).rows_cols()
    for i, (r, c) in enumerate(zip(rows, cols, strict=True)):
        assert valid[i] == pytest.approx(overlap_fraction(grid, r, c, box), abs=0.012)
        if valid[i] == 1.0:
            assert_matches(pixels[i], expected_plot(grid, r, c))


def test_partial_plot_pixels_outside_the_raster_are_invalid_and_black(write_raster):
    data, transform = encoded_raster(1.0, X0 + 100, Y0 - 50, 300, 300)
    scene = Scene.open(write_raster("p.tif", data, UTM14, transform))
    grid = PlotGrid.from_bounds((X0, Y0 - 448, X0 + 448, Y0), UTM14)
    pix, mask = scene.read_plot(grid, 0, 0)
    assert not mask[:, :100].any() and not mask[:50, :].any()
    assert mask[50:, 100:].all()
    assert (pix[~mask] == 0).all()


def test_nodata_border_lowers_valid_fraction(write_raster):
    data = np.full((3, 448, 448), 90, np.uint8)
    data[:, :, :112] = 0  # nodata strip: half of the left plots
    scene = Scene.open(write_raster("n.tif", data, UTM14, Affine(1, 0, X0, 0, -1, Y0), nodata=0))
    grid = PlotGrid.from_footprints(scene.footprints())
    pixels, valid = scene.read_chunk(grid, Chunk(0, 0, 2, 2))
    np.testing.assert_allclose(valid, [0.5, 1.0, 0.5, 1.0])
    assert (pixels[0][:, :112] == 0).all() and (pixels[0][:, 112:] == 90).all()


def test_alpha_band_and_internal_mask_are_honoured(write_raster):
    import rasterio

    rgb = np.full((3, 224, 224), 77, np.uint8)
    alpha = np.zeros((1, 224, 224), np.uint8)
    alpha[:, :, 56:] = 255
    p1 = write_raster("rgba.tif", np.concatenate([rgb, alpha]), UTM14, Affine(1, 0, X0, 0, -1, Y0), photometric="RGB", alpha="YES")
    with rasterio.open(p1) as ds:
        assert ds.colorinterp[3].name == "alpha"
    grid = PlotGrid.from_bounds((X0, Y0 - 224, X0 + 224, Y0), UTM14)
    _, valid = Scene.open(p1).read_chunk(grid, Chunk(0, 0, 1, 1))
    assert valid[0] == pytest.approx(0.75)

    p2 = write_raster("masked.tif", rgb, UTM14, Affine(1, 0, X0, 0, -1, Y0))
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(p2, "r+") as ds:
        m = np.zeros((224, 224), np.uint8)
        m[:112] = 255
        ds.write_mask(m)
    pix, mask = Scene.open(p2).read_plot(grid, 0, 0)
    assert mask[:112].all() and not mask[112:].any()
    assert (pix[:112] == 77).all()


def test_overlapping_files_first_valid_pixel_wins(write_raster):
    a = np.full((3, 224, 224), 100, np.uint8)
    a[:, :, :50] = 0
    b = np.full((3, 224, 224), 200, np.uint8)
    pa = write_raster("a.tif", a, UTM14, Affine(1, 0, X0, 0, -1, Y0), nodata=0)
    pb = write_raster("b.tif", b, UTM14, Affine(1, 0, X0, 0, -1, Y0))
    grid = PlotGrid.from_bounds((X0, Y0 - 224, X0 + 224, Y0), UTM14)
    pix, mask = Scene.open([pa, pb]).read_plot(grid, 0, 0)
    assert mask.all()
    assert (pix[:, 50:] == 100).all() and (pix[:, :50] == 200).all()
    pix2, _ = Scene.open([pb, pa]).read_plot(grid, 0, 0)
    assert (pix2 == 200).all()


def test_adjacent_tiles_cut_off_pixel_grid_leave_no_seam(write_raster):
    # two 0.6 m tiles meeting at x = X0 + 224.3 m (inside a 1 m output pixel)
    seam = 374
    left = X0 + 224.3 - seam * 0.6
    da, ta = encoded_raster(0.6, left, Y0, seam, 746)
    db, tb = encoded_raster(0.6, X0 + 224.3, Y0, 400, 746)
    scene = Scene.open([write_raster("w.tif", da, UTM14, ta), write_raster("e.tif", db, UTM14, tb)])
    grid = PlotGrid.from_bounds((X0 + 224, Y0 - 224, X0 + 448, Y0), UTM14)
    pix, mask = scene.read_plot(grid, 0, 0)
    assert mask.all()
    assert_matches(pix, expected_plot(grid, 0, 0), max_abs=2.0)


# -- warp path ----------------------------------------------------------------------------------


def test_warp_path_agrees_with_fast_path(write_raster):
    rng = np.random.default_rng(1)
    base, transform = encoded_raster(1.0, X0, Y0, 700, 500)
    noise = rng.integers(-8, 9, base.shape)
    data = np.clip(base.astype(int) + noise, 0, 255).astype(np.uint8)
    fast = Scene.open(write_raster("fast.tif", data, UTM14, transform))
    shifted = Affine(1, 0, X0 + 100_000, 0, -1, Y0)
    warp = Scene.open(write_raster("warp.tif", data, UTM14_SHIFTED, shifted))
    assert warp.files[0].crs != fast.files[0].crs
    grid = PlotGrid.from_footprints(fast.footprints())
    chunk = Chunk(0, 0, grid.height, grid.width)
    pf, vf = fast.read_chunk(grid, chunk)
    pw, vw = warp.read_chunk(grid, chunk)
    np.testing.assert_allclose(vw, vf, atol=0.01)
    both = vf == 1.0
    diff = np.abs(pf[both].astype(int) - pw[both].astype(int))
    assert diff.mean() < 0.5 and diff.max() <= 3


def test_source_in_another_utm_zone_is_warped_onto_the_grid(write_raster):
    # ground near the 14/15 zone boundary; the source is in UTM 15, the grid in UTM 14
    to15 = Transformer.from_crs(UTM14, "EPSG:32615", always_xy=True)
    left15, top15 = (round(v) for v in to15.transform(X0 + 700_000 - 500_000, Y0))
    res = 1.0
    cols = left15 + (np.arange(900) + 0.5) * res
    rows = top15 - (np.arange(900) + 0.5) * res
    xs, ys = np.meshgrid(cols, rows)
    enc15 = np.stack([0.25 * (xs - left15) + 5, 0.25 * (top15 - ys) + 5, np.full_like(xs, 50.0)])
    path = write_raster("z15.tif", np.round(enc15).astype(np.uint8), "EPSG:32615", Affine(res, 0, left15, 0, -res, top15))
    scene = Scene.open(path)
    grid = PlotGrid.from_footprints(scene.footprints(), crs=UTM14)
    cov = scene.coverage(grid)
    r, c = np.argwhere(cov == 1.0)[0]
    pix, mask = scene.read_plot(grid, r, c)
    assert mask.all()
    minx, _, _, maxy = grid.plot_bounds(r, c)
    gx, gy = np.meshgrid(minx + np.arange(224) + 0.5, maxy - np.arange(224) - 0.5)
    sx, sy = Transformer.from_crs(UTM14, "EPSG:32615", always_xy=True).transform(gx, gy)
    exp = np.stack([0.25 * (sx - left15) + 5, 0.25 * (top15 - sy) + 5, np.full_like(sx, 50.0)], axis=-1)
    assert_matches(pix, exp, max_bias=0.3 * 0.25 / 0.4)


def test_geographic_source_reads_onto_a_utm_grid(write_raster):
    lon0, lat0, res = -97.0, 40.0, 0.00002  # ~1.7 m x 2.2 m pixels
    w = h = 600
    lons = lon0 + (np.arange(w) + 0.5) * res
    lats = lat0 - (np.arange(h) + 0.5) * res
    lo, la = np.meshgrid(lons, lats)
    enc = np.stack([(lo - lon0) / res * 0.4, (lat0 - la) / res * 0.4, np.full_like(lo, 9.0)])
    path = write_raster("geo.tif", np.round(enc).astype(np.uint8), "EPSG:4326", Affine(res, 0, lon0, 0, -res, lat0))
    scene = Scene.open(path)
    grid = PlotGrid.from_footprints(scene.footprints())
    assert grid.crs.to_epsg() == 32614
    cov = scene.coverage(grid)
    full = np.argwhere(cov == 1.0)
    assert len(full) >= 1
    r, c = full[0]
    pix, mask = scene.read_plot(grid, r, c)
    assert mask.all()
    minx, _, _, maxy = grid.plot_bounds(r, c)
    gx, gy = np.meshgrid(minx + np.arange(224) + 0.5, maxy - np.arange(224) - 0.5)
    lo, la = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(gx, gy)
    exp = np.stack([(lo - lon0) / res * 0.4, (lat0 - la) / res * 0.4], axis=-1)
    assert_matches(pix[..., :2], exp, max_bias=0.15)


def test_two_periods_at_different_resolutions_line_up_plot_by_plot(write_raster):
    d1, t1 = encoded_raster(1.0, X0 + 3.5, Y0 - 2.5, 590, 590)  # period 1: 1 m, half-pixel offset
    d2, t2 = encoded_raster(0.6, X0 + 1.2, Y0 - 0.9, 1000, 960)  # period 2: 0.6 m, other extent
    s1 = Scene.open(write_raster("p1.tif", d1, UTM14, t1))
    s2 = Scene.open(write_raster("p2.tif", d2, UTM14, t2))
    g1 = PlotGrid.from_footprints(s1.footprints())
    g2 = PlotGrid.from_footprints(s2.footprints())
    ids1 = dict(zip(g1.plot_ids(), zip(*g1.all_rows_cols(), strict=True), strict=True))
    ids2 = dict(zip(g2.plot_ids(), zip(*g2.all_rows_cols(), strict=True), strict=True))
    common = sorted(set(ids1) & set(ids2))
    assert len(common) >= 4
    compared = 0
    for pid in common:
        a, ma = s1.read_plot(g1, *ids1[pid])
        b, mb = s2.read_plot(g2, *ids2[pid])
        both = ma & mb
        if both.mean() < 0.5:
            continue
        both[:3], both[-3:], both[:, :3], both[:, -3:] = False, False, False, False
        diff = a[both].astype(float) - b[both].astype(float)
        assert np.abs(diff).max() <= 2, pid
        assert np.abs(diff.mean(axis=0)[:2]).max() <= 0.15, pid  # < 0.4 m apart
        compared += 1
    assert compared >= 4


def test_scene_with_files_in_two_utm_zones(write_raster):
    # two tiles either side of the 14/15 boundary (-96 deg), each in its own zone
    paths = []
    for zone, lon in ((14, -96.01), (15, -95.99)):
        crs = f"EPSG:{32600 + zone}"
        x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, 40.0)
        data = np.full((3, 400, 400), 60 + zone, np.uint8)
        paths.append(write_raster(f"z{zone}.tif", data, crs, Affine(2, 0, round(x) - 400, 0, -2, round(y) + 400)))
    scene = Scene.open(paths)
    grid = PlotGrid.from_footprints(scene.footprints())
    cov = scene.coverage(grid)
    pixels, valid = scene.read_chunk(grid, Chunk(0, 0, grid.height, grid.width), pixels=32)
    values = set(np.unique(pixels[valid > 0.99]).tolist())
    assert {74, 75} <= values
    np.testing.assert_allclose(valid.reshape(grid.shape), cov, atol=0.1)


# -- bands, stretch, errors ----------------------------------------------------------------------


def test_rgbn_reads_rgb_by_default_and_bands_are_configurable(write_raster):
    data = np.stack([np.full((224, 224), v, np.uint8) for v in (10, 20, 30, 40)])
    path = write_raster("rgbn.tif", data, UTM14, Affine(1, 0, X0, 0, -1, Y0))
    grid = PlotGrid.from_bounds((X0, Y0 - 224, X0 + 224, Y0), UTM14)
    pix, _ = Scene.open(path).read_plot(grid, 0, 0)
    assert pix[0, 0].tolist() == [10, 20, 30]
    pix, _ = Scene.open(path, bands=(4, 1, 2)).read_plot(grid, 0, 0)
    assert pix[0, 0].tolist() == [40, 10, 20]
    pix, _ = Scene.open(path, bands="3,2,1").read_plot(grid, 0, 0)
    assert pix[0, 0].tolist() == [30, 20, 10]


def test_colour_interpretation_tags_pick_the_rgb_bands(write_raster):
    import rasterio
    from rasterio.enums import ColorInterp

    data = np.stack([np.full((224, 224), v, np.uint8) for v in (30, 20, 10)])  # stored B, G, R
    path = write_raster("bgr.tif", data, UTM14, Affine(1, 0, X0, 0, -1, Y0))
    with rasterio.open(path, "r+") as ds:
        ds.colorinterp = [ColorInterp.blue, ColorInterp.green, ColorInterp.red]
    grid = PlotGrid.from_bounds((X0, Y0 - 224, X0 + 224, Y0), UTM14)
    pix, _ = Scene.open(path).read_plot(grid, 0, 0)
    assert pix[0, 0].tolist() == [10, 20, 30]


def test_one_band_raster_needs_bands(write_raster):
    data = np.full((1, 224, 224), 42, np.uint8)
    path = write_raster("grey.tif", data, UTM14, Affine(1, 0, X0, 0, -1, Y0))
    with pytest.raises(RasterError, match=r"grey\.tif has 1 band.*`bands`"):
        Scene.open(path)
    grid = PlotGrid.from_bounds((X0, Y0 - 224, X0 + 224, Y0), UTM14)
    pix, _ = Scene.open(path, bands=(1, 1, 1)).read_plot(grid, 0, 0)
    assert (pix == 42).all()
    with pytest.raises(RasterError, match="has 1 band"):
        Scene.open(path, bands=(1, 2, 3))


def test_uint16_gets_a_percentile_stretch_recorded_in_provenance(write_raster):
    ramp = np.linspace(1000, 3000, 224 * 448).reshape(224, 448)
    data = np.stack([ramp, ramp, ramp]).astype(np.uint16)
    path = write_raster("u16.tif", data, UTM14, Affine(1, 0, X0, 0, -1, Y0))
    scene = Scene.open(path)
    st = scene.provenance()["stretch"]
    assert st["method"] == "percentile"
    assert st["low"][0] == pytest.approx(1040, abs=5) and st["high"][0] == pytest.approx(2960, abs=5)
    grid = PlotGrid.from_footprints(scene.footprints())
    pixels, _ = scene.read_chunk(grid, Chunk(0, 0, 1, 2))
    assert pixels.dtype == np.uint8
    assert pixels[0, 0, 0, 0] == 0 and pixels[1, -1, -1, 0] == 255
    # explicit stretch: 2000 -> 255 * (2000 - 1000) / 2000 = 127.5
    fixed = Scene.open(path, stretch=(1000, 3000))
    pix, _ = fixed.read_plot(grid, 0, 0)
    mid = np.abs(ramp[:, :224] - 2000).argmin()
    assert abs(int(pix.reshape(-1, 3)[mid, 0]) - 128) <= 1
    assert fixed.provenance()["stretch"]["method"] == "user"


def test_float_imagery_needs_a_stretch(write_raster):
    data = np.random.default_rng(2).random((3, 224, 224)).astype(np.float32)
    path = write_raster("f.tif", data, UTM14, Affine(1, 0, X0, 0, -1, Y0))
    with pytest.raises(RasterError, match="float32.*`stretch`"):
        Scene.open(path)
    scene = Scene.open(path, stretch="0,1")
    grid = PlotGrid.from_bounds((X0, Y0 - 224, X0 + 224, Y0), UTM14)
    pix, _ = scene.read_plot(grid, 0, 0)
    np.testing.assert_allclose(pix.astype(float) / 255, data.transpose(1, 2, 0), atol=1 / 255 + 1e-6)


def test_rasters_without_crs_or_rotated_are_refused(write_raster):
    data = np.zeros((3, 10, 10), np.uint8)
    p1 = write_raster("nocrs.tif", data, None, Affine(1, 0, X0, 0, -1, Y0))
    with pytest.raises(RasterError, match=r"nocrs\.tif has no CRS"):
        Scene.open(p1)
    p2 = write_raster("rot.tif", data, UTM14, Affine(1, 0.2, X0, 0.2, -1, Y0))
    with pytest.raises(RasterError, match=r"rot\.tif has a rotated geotransform"):
        Scene.open(p2)


def test_grid_not_overlapping_the_imagery_is_an_error(write_raster):
    data = np.ones((3, 224, 224), np.uint8)
    scene = Scene.open(write_raster("a.tif", data, UTM14, Affine(1, 0, X0, 0, -1, Y0)))
    far = PlotGrid.from_bounds((X0 + 50_000, Y0 - 224, X0 + 50_224, Y0), UTM14)
    with pytest.raises(RasterError, match="does not overlap"):
        scene.read_chunk(far, Chunk(0, 0, 1, 1))
    with pytest.raises(RasterError, match="does not overlap"):
        scene.coverage(far)


def test_sources_globs_and_missing_files(write_raster, tmp_path):
    data = np.ones((3, 8, 8), np.uint8)
    a = write_raster("t_a.tif", data, UTM14, Affine(1, 0, X0, 0, -1, Y0))
    b = write_raster("t_b.tif", data, UTM14, Affine(1, 0, X0 + 8, 0, -1, Y0))
    assert expand_sources(str(tmp_path / "t_*.tif")) == [str(a), str(b)]
    assert expand_sources([a, str(tmp_path / "t_*.tif")]) == [str(a), str(b)]
    assert expand_sources(tmp_path) == [str(a), str(b)]
    with pytest.raises(RasterError, match="no file matches"):
        expand_sources(str(tmp_path / "zz*.tif"))
    with pytest.raises(RasterError, match="does not exist"):
        Scene.open(tmp_path / "missing.tif")
    with pytest.raises(InputError):
        Scene.open([])


def test_vrt_source(write_raster, tmp_path):
    import shutil
    import subprocess

    if shutil.which("gdalbuildvrt") is None:
        from rasterio.shutil import copy as rcopy  # a VRT made by GDAL's VRT driver instead

        def build(dst, src):
            rcopy(src, dst, driver="VRT")
    else:
        def build(dst, src):
            subprocess.run(["gdalbuildvrt", "-q", dst, src], check=True)
    data, transform = encoded_raster(1.0, X0, Y0, 224, 224)
    src = write_raster("v.tif", data, UTM14, transform)
    vrt = tmp_path / "v.vrt"
    build(str(vrt), str(src))
    scene = Scene.open(vrt)
    grid = PlotGrid.from_footprints(scene.footprints())
    pix, mask = scene.read_plot(grid, 0, 0)
    assert mask.all()
    np.testing.assert_array_equal(pix, data.transpose(1, 2, 0))


# -- spec, pickling, threads, coverage -------------------------------------------------------------


def test_scene_pickles_small_and_reads_the_same(write_raster):
    data, transform = encoded_raster(0.6, X0 + 3, Y0 - 3, 800, 800)
    scene = Scene.open(write_raster("s.tif", data, UTM14, transform))
    grid = PlotGrid.from_footprints(scene.footprints())
    blob = pickle.dumps(scene)
    assert len(blob) < 4000
    again = pickle.loads(blob)
    assert again == scene and Scene.from_spec(scene.spec()) == scene
    chunk = Chunk(0, 0, grid.height, grid.width)
    a, va = scene.read_chunk(grid, chunk)
    b, vb = again.read_chunk(grid, chunk)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(va, vb)
    prov = scene.provenance()
    assert prov["inputs"][0]["size"] > 0 and prov["inputs"][0]["mtime"] > 0


def test_threads_each_read_with_their_own_handle(write_raster):
    rng = np.random.default_rng(3)
    data = rng.integers(0, 255, (3, 896, 896), dtype=np.uint8)
    scene = Scene.open(write_raster("t.tif", data, UTM14, Affine(0.8, 0, X0, 0, -0.8, Y0)))
    grid = PlotGrid.from_footprints(scene.footprints())
    chunks = grid.chunks(rows=1)
    serial = [scene.read_chunk(grid, c)[0] for c in chunks]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(3):
                results[i] = scene.read_chunk(grid, chunks[i])[0]
        except BaseException as exc:  # noqa: BLE001 - re-raised below in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(chunks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, s in enumerate(serial):
        np.testing.assert_array_equal(results[i], s)


def test_coverage_matches_the_exact_valid_fraction(write_raster):
    data = np.full((3, 700, 650), 50, np.uint8)
    data[:, 400:, :300] = 0
    scene = Scene.open(write_raster("c.tif", data, UTM14, Affine(1, 0, X0 + 30, 0, -1, Y0 - 20), nodata=0))
    grid = PlotGrid.from_footprints(scene.footprints())
    cov = scene.coverage(grid)
    assert cov.shape == grid.shape and cov.dtype == np.float32
    _, valid = scene.read_chunk(grid, Chunk(0, 0, grid.height, grid.width), pixels=112)
    np.testing.assert_allclose(cov, valid.reshape(grid.shape), atol=0.08)
    assert (cov > 0).sum() == (valid > 0).sum()


def test_read_chunk_rejects_bad_requests(write_raster):
    scene = Scene.open(write_raster("a.tif", np.ones((3, 224, 224), np.uint8), UTM14, Affine(1, 0, X0, 0, -1, Y0)))
    grid = PlotGrid.from_footprints(scene.footprints())
    with pytest.raises(LanduseError, match="not inside"):
        scene.read_chunk(grid, Chunk(0, 0, 2, 1))
    with pytest.raises(LanduseError, match="at least 1"):
        scene.read_chunk(grid, Chunk(0, 0, 1, 1), pixels=0)


def test_only_files_meeting_the_chunk_are_opened(write_raster):
    from landuse import imagery

    paths = []
    for i in range(6):  # a row of six 224 m tiles, one plot each
        data = np.full((3, 224, 224), 10 + i, np.uint8)
        paths.append(write_raster(f"t{i}.tif", data, UTM14, Affine(1, 0, X0 + 224 * i, 0, -1, Y0)))
    scene = Scene.open(paths)
    grid = PlotGrid.from_footprints(scene.footprints())
    imagery.close_datasets()
    pixels, valid = scene.read_chunk(grid, Chunk(0, 2, 1, 2))
    assert sorted(imagery._local.cache) == [str(paths[2]), str(paths[3])]
    assert pixels[0, 0, 0].tolist() == [12, 12, 12] and pixels[1, 0, 0].tolist() == [13, 13, 13]
    np.testing.assert_array_equal(valid, [1.0, 1.0])


def test_mixed_data_types_are_refused(write_raster):
    a = write_raster("u8.tif", np.ones((3, 8, 8), np.uint8), UTM14, Affine(1, 0, X0, 0, -1, Y0))
    b = write_raster("u16.tif", np.ones((3, 8, 8), np.uint16), UTM14, Affine(1, 0, X0 + 8, 0, -1, Y0))
    with pytest.raises(RasterError, match="mixes data types"):
        Scene.open([a, b])
