"""The unknown flag end to end with the default model and real imagery: a plot of real 1 m forest
(``wv_1m_patches``) beside real in-class plots (AerialSmall) goes through ``landuse classify``,
``change`` and ``report`` and comes out ``unknown`` everywhere, drawn in the unknown colour by
real headless Chromium. The rasters are built in ``tmp_path`` from ``../shared/data`` (skipped
with the reason where that is absent)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from landuse.classify.unknown import UNKNOWN_CLASS_VALUE
from landuse.report.palette import UNKNOWN_COLOR, hex_to_rgb
from tests.conftest import shared_data
from tests.test_webmap import _wait_ready, browser  # noqa: F401  (the module's headless Chromium fixture)

FOREST = "wv_1m_2014-m_3708020_sw_17_1-1.png"  # NLCD 41 (deciduous forest) on 100 % of the patch
BARREN = "ortho_1-1_hn_s_ca025_2016_1_4212.png"  # real Imperial County plots the default model knows
CULTIVATED = "ortho_1-1_hn_s_ca025_2016_1_10065.png"
X0, Y0 = 224 * 2000, 224 * 18001  # UTM 17N, on the 224 m grid: two whole plots side by side


def _rgb(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def _two_plot_raster(write_raster, name: str, left: np.ndarray, right: np.ndarray) -> Path:
    img = np.concatenate([left, right], axis=1)  # 224 x 448, 1 m
    return write_raster(name, img.transpose(2, 0, 1).copy(), "EPSG:32617", Affine(1.0, 0, X0, 0, -1.0, Y0))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Period 2014: [real forest | real Barren]; 2016: [real Cultivated | the same Barren];
    classified with the default model on one grid, compared, reported."""
    from landuse.classify.base import load_classifier
    from landuse.cli import main
    from landuse.grid import PlotGrid

    if load_classifier("default").unknown_method is None:
        pytest.skip("the default model carries no unknown-flag statistics")
    forest = _rgb(shared_data("wv_1m_patches", FOREST))[16:240, 16:240]
    train = shared_data("aerialsmall", "train")
    barren, cultivated = _rgb(train / "Barren" / BARREN), _rgb(train / "Cultivated" / CULTIVATED)
    root = tmp_path_factory.mktemp("unknown_e2e")

    def write_raster(name, data, crs, transform):
        import rasterio

        path = root / name
        with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=3,
                           dtype="uint8", crs=crs, transform=transform) as dst:
            dst.write(data)
        return path

    a = _two_plot_raster(write_raster, "a_2014.tif", forest, barren)
    b = _two_plot_raster(write_raster, "b_2016.tif", cultivated, barren)
    PlotGrid.from_rasters([a, b]).save(root / "grid.json")
    for tif, period in ((a, "2014"), (b, "2016")):
        assert main(["-q", "classify", str(tif), "--period", period, "--out", str(root / period),
                     "--grid", str(root / "grid.json"), "--scheduler", "synchronous"]) == 0
    assert main(["-q", "change", str(root / "2014"), str(root / "2016"), "--out", str(root / "ch")]) == 0
    assert main(["-q", "report", str(root / "2014"), str(root / "2016"), "--change", str(root / "ch"),
                 "--out", str(root / "report.html"), "--basemap", "none"]) == 0
    return root


def _plots(run: Path):
    import geopandas as gpd

    df = gpd.read_parquet(run / "plots.parquet")
    return df[df["status"].isin(["classified", "unknown"])].sort_values("col")


def test_forest_plot_is_unknown_in_classify_outputs(runs: Path) -> None:
    import rasterio

    a, b = _plots(runs / "2014"), _plots(runs / "2016")
    assert len(a) == len(b) == 2
    assert a["status"].tolist() == ["unknown", "classified"] and a["label"].tolist() == ["unknown", "Barren"]
    assert a["unknown_score"].iloc[0] > 1.0 > a["unknown_score"].iloc[1]
    assert b["status"].tolist() == ["classified", "classified"] and b["label"].tolist() == ["Cultivated", "Barren"]
    with rasterio.open(runs / "2014" / "classes.tif") as ds:
        band = ds.read(1)
    r, c = int(a["row"].iloc[0]), int(a["col"].iloc[0])
    assert band[r, c] == UNKNOWN_CLASS_VALUE
    assert band[int(a["row"].iloc[1]), int(a["col"].iloc[1])] == 0  # Barren, index 0
    s = json.loads((runs / "2014" / "summary.json").read_text())
    assert s["unknown"]["plots"] == 1
    assert {t: v["plots"] for t, v in s["classes"].items()} == {"Barren": 1, "Cultivated": 0, "Developed": 0}
    assert s["warnings"] == []  # 1 m imagery for a 1 m model: no resolution warning


def test_change_gives_the_unknown_plot_its_own_row(runs: Path) -> None:
    s = json.loads((runs / "ch" / "summary.json").read_text())
    assert s["compared"]["plots"] == 2
    assert s["unknown"]["plots"] == 1 and s["unknown"]["in_a_plots"] == 1 and s["unknown"]["in_b_plots"] == 0
    assert s["unchanged"]["plots"] == 1 and s["changed"]["plots"] == 0 and s["uncertain"]["plots"] == 0
    # neither persistence nor change: the Cultivated it became in 2016 is no gain, Barren keeps its one plot
    ha = 224 * 224 / 1e4
    assert s["area_by_class_ha"]["2014"] == pytest.approx({"Barren": ha, "Cultivated": 0.0, "Developed": 0.0})
    assert s["area_by_class_ha"]["2016"] == pytest.approx({"Barren": ha, "Cultivated": 0.0, "Developed": 0.0})
    assert s["urbanization"]["total_plots"] == 0 and s["urbanization"]["upper_bound_plots"] == 0
    feats = json.loads((runs / "ch" / "change.geojson").read_text())["features"]
    unknown = [f["properties"] for f in feats if f["properties"]["status"] == "unknown"]
    assert len(unknown) == 1 and unknown[0]["from"] == "unknown" and unknown[0]["to"] == "Cultivated"


@pytest.mark.browser
def test_web_map_draws_the_forest_plot_in_the_unknown_colour(runs: Path, browser) -> None:  # noqa: F811
    import rasterio
    from PIL import Image

    with rasterio.open(runs / "2014" / "classes.tif") as ds:
        barren_rgb = ds.colormap(1)[0][:3]
    browser.get_log("browser")
    browser.get((runs / "report.html").as_uri())
    _wait_ready(browser)
    legend = browser.execute_script(
        "return Array.from(document.querySelectorAll('.lu-legend .lu-legend-item')).map(function (d) {"
        " return [d.dataset.tag, getComputedStyle(d.querySelector('.lu-swatch')).backgroundColor]; });")
    assert [t for t, _ in legend] == ["Barren", "Cultivated", "Developed", "unknown"]
    assert legend[-1][1] == "rgb({}, {}, {})".format(*hex_to_rgb(UNKNOWN_COLOR))
    # period A's class layer alone, opaque, over the whole map; where are the two plots on screen?
    pts = browser.execute_script(
        """var R = window.landuseReport;
           var l = R.layers.change.getLayers().filter(function (x) { return x.feature.properties.status === 'unknown'; });
           R.summary.getContainer().style.display = 'none'; R.legend.getContainer().style.display = 'none';
           R.map.removeLayer(R.layers.change); R.map.removeLayer(R.layers.imageryA); R.map.removeLayer(R.layers.imageryB);
           R.map.fitBounds(R.layers.a.getBounds(), {animate: false}); R.setClassOpacity(1); R.swipe.set(0.98);
           var b = l[0].getBounds(), c = b.getCenter(), w = b.getEast() - b.getWest();
           var p = R.map.latLngToContainerPoint(c), q = R.map.latLngToContainerPoint([c.lat, c.lng + w]);
           return {n: l.length, forest: [p.x, p.y], barren: [q.x, q.y]};""")
    assert pts["n"] == 1
    img = np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")).astype(int)

    def colour_at(xy: list[float]) -> np.ndarray:
        x, y = int(round(xy[0])), int(round(xy[1]))
        return np.median(img[y - 3 : y + 4, x - 3 : x + 4].reshape(-1, 3), axis=0)

    assert np.abs(colour_at(pts["forest"]) - hex_to_rgb(UNKNOWN_COLOR)).max() <= 8
    assert np.abs(colour_at(pts["barren"]) - np.array(barren_rgb)).max() <= 8
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
