"""A finished run's files read back: GeoParquet, RFC 7946 GeoJSON, class / probability COGs, summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio
import shapely
from pyproj import Transformer

from landuse.pipeline import ModelRef, classify_scene

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from pipeline_fakes import LABELS, fake_grid, fake_scene, make_fake  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    grid = fake_grid()
    out = tmp_path_factory.mktemp("outputs") / "run"
    classify_scene(
        fake_scene(grid), grid, ModelRef(None, factory=make_fake), out, period="2016",
        chunk_plots=16, scheduler="synchronous", quiet=True,
    )
    return out


@pytest.fixture(scope="module")
def plots(run_dir):
    return gpd.read_parquet(run_dir / "plots.parquet")


def test_geoparquet_reads_back_in_grid_crs(run_dir, plots):
    grid = fake_grid()
    assert plots.crs.equals(grid.crs.to_wkt()) or plots.crs.to_epsg() == 26914
    expected = ["plot_id", "row", "col", "label", "class_index", *[f"prob_{t}" for t in LABELS],
                "unknown_score", "valid_fraction", "status", "reason", "geometry"]
    assert list(plots.columns) == expected
    assert len(plots) == grid.size
    first = plots.iloc[0]
    assert first.plot_id == f"EPSG:26914/224/{grid.row0 + first.row}/{grid.col0 + first.col}"
    # geometry = the plot's footprint: 224 m squares at the grid position
    x0 = grid.transform.c + plots.col.to_numpy() * 224.0
    y1 = grid.transform.f - plots.row.to_numpy() * 224.0
    b = plots.geometry.bounds.to_numpy()
    assert np.allclose(b, np.c_[x0, y1 - 224, x0 + 224, y1])
    assert np.allclose(plots.geometry.area, 224.0**2)
    meta = json.loads(pq.read_schema(run_dir / "plots.parquet").metadata[b"landuse"])
    assert meta["period"] == "2016" and meta["labels"] == LABELS and meta["model"]["id"] == "fake-colour"


def test_geojson_is_rfc7946(run_dir, plots):
    doc = json.loads((run_dir / "plots.geojson").read_text())
    assert doc["type"] == "FeatureCollection"
    assert "crs" not in doc  # RFC 7946: always WGS 84 lon/lat, no crs member
    assert doc["landuse"]["period"] == "2016" and doc["landuse"]["grid"]["crs"] == "EPSG:26914"
    feats = doc["features"]
    assert len(feats) == len(plots)
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:26914", always_xy=True)
    by_id = plots.set_index("plot_id")
    for f in feats:
        props = f["properties"]
        assert set(props) >= {"plot_id", "row", "col", "label", "class_index", "valid_fraction", "status", "reason",
                              *[f"prob_{t}" for t in LABELS]}
        ring = f["geometry"]["coordinates"][0]
        assert f["geometry"]["type"] == "Polygon"
        assert ring[0] == ring[-1] and len(ring) >= 5  # closed
        lon, lat = np.array(ring).T
        assert (np.abs(lon) <= 180).all() and (np.abs(lat) <= 90).all()
        assert -100 < lon.mean() < -98 and 42 < lat.mean() < 43  # UTM 14N, northing ~4.70e6
        assert shapely.Polygon(ring).exterior.is_ccw  # right-hand rule
        # back in UTM, the ring is the plot's square
        x, y = to_utm.transform(lon, lat)
        src = by_id.loc[props["plot_id"]]
        assert np.allclose(shapely.Polygon(zip(x, y, strict=True)).bounds, src.geometry.bounds, atol=0.05)
        assert props["status"] == src.status and props["label"] == (src.label if isinstance(src.label, str) else None)


def test_class_raster_is_a_cog_matching_the_plots(run_dir, plots):
    grid = fake_grid()
    with rasterio.open(run_dir / "classes.tif") as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.profile.get("tiled") and src.block_shapes[0] == (256, 256)
        assert (src.width, src.height) == (grid.width, grid.height)
        assert src.transform.almost_equals(grid.transform) and src.crs == grid.crs
        assert src.dtypes[0] == "uint8" and src.nodata == 255
        data = src.read(1)
        cmap = src.colormap(1)
        tags = src.tags()
        band_tags = src.tags(1)
    for r, c, idx in zip(plots.row, plots.col, plots.class_index.fillna(-1).astype(int), strict=True):
        assert data[r, c] == (idx if idx >= 0 else 255)
    assert (data != 255).sum() == (plots.status == "classified").sum()
    assert json.loads(tags["CLASS_NAMES"]) == LABELS
    assert band_tags["CLASS_2"] == "Developed"
    # fixed colours: Barren tan, Cultivated green, Developed red
    tan, green, red = cmap[0], cmap[1], cmap[2]
    assert tan[0] > tan[2] and green[1] > max(green[0], green[2]) and red[0] > 2 * max(red[1], red[2])
    assert json.loads(tags["LANDUSE_MODEL"])["id"] == "fake-colour"


def test_probability_raster_bands_are_the_prob_columns(run_dir, plots):
    with rasterio.open(run_dir / "probabilities.tif") as src:
        assert src.count == len(LABELS) and src.dtypes[0] == "float32"
        assert src.descriptions == tuple(f"prob_{t}" for t in LABELS)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        data = src.read()
    r, c = plots.row.to_numpy(), plots.col.to_numpy()
    for i, t in enumerate(LABELS):
        np.testing.assert_array_equal(data[i, r, c], plots[f"prob_{t}"].to_numpy(dtype=np.float32))


def test_summary_counts_match_the_plots(run_dir, plots):
    s = json.loads((run_dir / "summary.json").read_text())
    area = 224.0**2 / 10_000
    assert s["plots"]["total"] == len(plots)
    assert s["plots"]["classified"] == int((plots.status == "classified").sum())
    for name in LABELS:
        n = int(((plots.status == "classified") & (plots.label == name)).sum())
        assert s["classes"][name]["plots"] == n
        assert s["classes"][name]["hectares"] == pytest.approx(n * area)
    for status in ("partial", "nodata"):
        sel = plots.status == status
        assert s["unclassified"][status]["plots"] == int(sel.sum())
        assert sum(s["unclassified"][status]["by_reason"].values()) == int(sel.sum())
    assert s["model"]["id"] == "fake-colour" and s["timings"]["wall_s"] > 0
