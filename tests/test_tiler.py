"""Tiler and `landuse tile`: coverage, the min-valid policy, chips, index GeoJSON, output rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from PIL import Image

from landuse.cli import main
from landuse.errors import InputError, OutputExistsError
from landuse.grid import PlotGrid
from landuse.imagery import Scene
from landuse.tiler import (
    CV_PREDICTION_MAX_BYTES,
    CV_TRAINING_MAX_BYTES,
    check_chip_size,
    plot_file_name,
    read_index,
    tile,
    validity_status,
)

UTM14 = "EPSG:32614"
X0, Y0 = 224.0 * 2232, 224.0 * 20000


@pytest.fixture
def scene_path(write_raster) -> Path:
    """3 x 3 plots at 1 m, plot-aligned; the left half of column 0 is nodata, row 2 is 100 m tall
    (valid fractions: column 0 0.5, row 2 100/224 = 0.45, plot (2, 0) 0.22, the rest 1)."""
    rng = np.random.default_rng(5)
    data = rng.integers(1, 255, (4, 548, 672), dtype=np.uint8)  # RGBN, 2 plots + 100 m tall
    data[:, :, :112] = 0
    return write_raster("scene.tif", data, UTM14, Affine(1, 0, X0, 0, -1, Y0), nodata=0)


def test_plot_file_name_is_file_safe_and_unique():
    assert plot_file_name("EPSG:26914/224/-23256/2169") == "EPSG26914_224_r-23256_c2169"
    assert plot_file_name("EPSG:26914/224/-1/21") != plot_file_name("EPSG:26914/224/-12/1")


def test_validity_status_reasons():
    """The tiler's gate speaks the pipeline's words (landuse.status), reasons included."""
    from landuse import pipeline
    from landuse import status as st

    status, reason = validity_status(np.array([1.0, 0.95, 0.42, 0.0]), 0.9)
    assert status.tolist() == ["ok", "ok", "partial", "nodata"]
    assert reason.tolist() == ["", "", "valid fraction below min-valid 0.9", "no valid pixel in the imagery"]
    assert {"partial", "nodata"} <= set(pipeline.STATUSES) and pipeline.STATUSES is st.STATUSES
    assert pipeline.REASON_NO_VALID == reason[3] and st.reason_partial(0.9) == reason[2]
    with pytest.raises(InputError, match="^min_valid must lie in") as err:
        validity_status(np.array([1.0]), 1.5)
    assert err.value.param == "min_valid"


def test_a_version_1_tiles_index_reads_in_todays_words(tmp_path):
    from landuse.status import TILE_INDEX_VERSION
    from landuse.tiler import read_index

    feats = [{"type": "Feature", "geometry": None, "properties": {"status": s, "valid_fraction": v}}
             for s, v in (("ok", 1.0), ("not classified", 0.5), ("not classified", 0.0))]
    (tmp_path / "index.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats,
                                                         "landuse": {"version": "0.1.0"}}))
    doc = read_index(tmp_path / "index.geojson")
    assert [f["properties"]["status"] for f in doc["features"]] == ["ok", "partial", "nodata"]
    assert TILE_INDEX_VERSION == 2


def test_chip_size_caps(tmp_path):
    p = tmp_path / "c.png"
    assert check_chip_size(p, 100_000) is None
    assert "4 MB prediction" in check_chip_size(p, CV_PREDICTION_MAX_BYTES + 1)
    with pytest.raises(InputError, match="6 MB training"):
        check_chip_size(p, CV_TRAINING_MAX_BYTES + 1)


def test_tile_writes_chips_index_and_grid(scene_path, tmp_path):
    scene = Scene.open(scene_path)
    grid = PlotGrid.from_footprints(scene.footprints())
    assert grid.shape == (3, 3)
    out = tmp_path / "out"
    res = tile(scene, grid, out, min_valid=0.9)
    # row 0-1: col 0 half valid (partial), cols 1-2 whole; row 2: 100/224 valid (partial)
    assert res.plots == 9 and res.chips == 4 and res.not_classified == 5
    index = json.loads((out / "index.geojson").read_text())
    feats = {f["properties"]["plot_id"]: f["properties"] for f in index["features"]}
    assert len(feats) == 9
    p00 = feats[grid.plot_id(0, 0)]
    assert p00["status"] == "partial" and p00["reason"] == "valid fraction below min-valid 0.9"
    assert index["landuse"]["index_version"] == 2
    assert read_index(out / "index.geojson") == index  # today's file reads as written
    assert p00["chip"] is None and p00["sources"] == ["scene.tif"]
    p21 = feats[grid.plot_id(2, 1)]
    assert p21["valid_fraction"] == pytest.approx(100 / 224, abs=0.005)
    p11 = feats[grid.plot_id(1, 1)]
    assert p11["status"] == "ok" and p11["reason"] == "" and p11["valid_fraction"] == 1.0
    assert p11["bounds"] == list(grid.plot_bounds(1, 1))
    # chips: one per ok plot, named by the plot id, the pixels of the plot
    chips = sorted(p.name for p in (out / "chips").iterdir())
    assert chips == sorted(f"{plot_file_name(pid)}.png" for pid, p in feats.items() if p["status"] == "ok")
    img = np.array(Image.open(out / p11["chip"]))
    expected, _ = scene.read_plot(grid, 1, 1)
    np.testing.assert_array_equal(img, expected)
    # geometry in EPSG:4326 near the plot centre
    lon, lat = np.mean(index["features"][0]["geometry"]["coordinates"][0], axis=0)
    assert -100 < lon < -98 and 40 < lat < 41
    assert PlotGrid.load(out / "grid.json") == grid
    assert index["landuse"]["imagery"]["inputs"][0]["path"] == str(scene_path)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_tile_256_px_and_geotiff_chips_are_georeferenced(scene_path, tmp_path):
    import rasterio

    scene = Scene.open(scene_path)
    grid = PlotGrid.from_footprints(scene.footprints())
    out = tmp_path / "tif"
    tile(scene, grid, out, fmt="tif", size=256)
    path = out / "chips" / f"{plot_file_name(grid.plot_id(0, 2))}.tif"
    with rasterio.open(path) as ds:
        assert (ds.width, ds.height, ds.count, ds.dtypes[0]) == (256, 256, 3, "uint8")
        assert ds.crs == grid.crs
        assert tuple(ds.bounds) == pytest.approx(grid.plot_bounds(0, 2))


def test_tile_refuses_non_empty_output_and_overwrite_replaces_old_chips(scene_path, tmp_path):
    scene = Scene.open(scene_path)
    grid = PlotGrid.from_footprints(scene.footprints())
    out = tmp_path / "o"
    tile(scene, grid, out)
    with pytest.raises(OutputExistsError, match="not empty.*`overwrite=True`"):
        tile(scene, grid, out)
    stale = out / "chips" / "stale.png"
    stale.write_bytes(b"x")
    res = tile(scene, grid, out, overwrite=True, min_valid=0.4)
    assert not stale.exists()
    assert res.chips == 8 and len(list((out / "chips").iterdir())) == 8


def test_plot_mask_restricts_the_plots(scene_path, tmp_path):
    scene = Scene.open(scene_path)
    grid = PlotGrid.from_footprints(scene.footprints())
    mask = np.zeros(grid.shape, bool)
    mask[1, 1:] = True
    res = tile(scene, grid, tmp_path / "m", plot_mask=mask)
    assert res.plots == 2 and res.chips == 2


def test_cli_tile_prints_outputs_and_errors_in_one_line(scene_path, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["tile", str(scene_path), "--out", str(out), "--min-valid", "0.4", "--size", "256"]) == 0
    printed = capsys.readouterr().out
    assert f"chips:  {out / 'chips'}" in printed and "index:" in printed and "8 chips" in printed
    assert Image.open(next((out / "chips").iterdir())).size == (256, 256)
    # same grid from the written grid.json: same plot ids
    out2 = tmp_path / "cli2"
    assert main(["tile", str(scene_path), "--out", str(out2), "--grid", str(out / "grid.json")]) == 0
    ids1 = {f["properties"]["plot_id"] for f in json.loads((out / "index.geojson").read_text())["features"]}
    ids2 = {f["properties"]["plot_id"] for f in json.loads((out2 / "index.geojson").read_text())["features"]}
    assert ids1 == ids2
    capsys.readouterr()
    assert main(["tile", str(scene_path), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite" in err
    assert main(["tile", str(tmp_path / "nope.tif"), "--out", str(tmp_path / "x")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["tile", str(scene_path), "--out", str(tmp_path / "y"), "--grid", str(out / "grid.json"), "--crs", "EPSG:32614"]) == 1
    assert main(["tile", str(scene_path), "--out", str(tmp_path / "z"), "--format", "jpg"]) == 2


def test_cli_tile_with_aoi(scene_path, tmp_path):
    # AOI: a polygon around the centre of plot (1, 2) only, in EPSG:4326
    import geopandas as gpd
    import shapely

    grid = PlotGrid.from_footprints(Scene.open(scene_path).footprints())
    x, y = grid.centres(np.array([1]), np.array([2]))
    aoi = gpd.GeoDataFrame(geometry=[shapely.box(x[0] - 20, y[0] - 20, x[0] + 20, y[0] + 20)], crs=UTM14).to_crs("EPSG:4326")
    aoi_path = tmp_path / "aoi.geojson"
    aoi.to_file(aoi_path, driver="GeoJSON")
    out = tmp_path / "aoi_out"
    assert main(["tile", str(scene_path), "--out", str(out), "--aoi", str(aoi_path), "--crs", UTM14]) == 0
    feats = json.loads((out / "index.geojson").read_text())["features"]
    assert [f["properties"]["plot_id"] for f in feats] == [grid.plot_id(1, 2)]
