"""The web map report: built from synthetic runs, then opened in real headless Chromium offline."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from landuse.errors import GridMismatchError, InputError, OutputExistsError
from landuse.report.webmap import write_report
from tests.pipeline_fakes import mean_colour_export
from tests.runfactory import COLORS, LABELS, make_grid, make_pair, remark_complete, write_run

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("webmap")
    a, b, change = make_pair(root, rows=30, cols=40, fraction=0.04, imagery=True)
    return root, a, b, change


@pytest.fixture(scope="module")
def report(pair):
    root, a, b, change = pair
    result = write_report(a.path, b.path, root / "report.html", change_dir=change, basemap="none")
    return result, pair


def _features(change_dir: Path) -> list[dict]:
    return json.loads((change_dir / "change.geojson").read_text())["features"]


# -- the HTML file ------------------------------------------------------------------------------


def test_report_is_one_self_contained_file(report):
    result, (_root, _a, _b, change) = report
    page = result.path.read_text()
    # no script or stylesheet from anywhere: Leaflet is inlined
    assert not re.search(r"<script[^>]+src=", page, re.I)
    assert not re.search(r"<link[^>]+href=[\"']?(https?:)?//", page, re.I)
    assert "L.imageOverlay" in page and "Leaflet 1.9" in page
    # no tile layer at all with --basemap none
    assert "L.tileLayer" not in page
    n = len(_features(change))
    assert result.change_features == n and result.thumbnails == n and result.thumbnails_skipped == 0
    assert page.count("data:image/jpeg;base64,") == 2 * n  # before + after per change plot
    assert result.bytes == result.path.stat().st_size


def test_class_overlay_colours_follow_classes_tif(report):
    """The overlay image holds exactly the colour-table colours of classes.tif, in class proportions."""
    import base64
    import io

    from landuse.report.webmap import class_overlay, load_run_layer

    _result, (_root, a, _b, _c) = report
    layer = load_run_layer(a.path)
    url, bounds, (h, w) = class_overlay(layer)
    img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA")
    px = np.asarray(img).reshape(-1, 4)
    opaque = px[px[:, 3] > 0][:, :3]
    seen = {tuple(int(v) for v in c) for c in np.unique(opaque, axis=0)}
    assert seen == {COLORS[t] for t in LABELS}
    # area shares survive the reprojection (nearest, several pixels a plot): within 3 points
    cls = a.classes[a.classes >= 0]
    for i, tag in enumerate(LABELS):
        share_grid = (cls == i).mean()
        share_img = (opaque == np.array(COLORS[tag])).all(axis=1).mean()
        assert abs(share_grid - share_img) < 0.03, tag
    # transparent where not classified (the nodata corner exists in the synthetic run)
    assert (px[:, 3] == 0).any()
    # bounds are south-west / north-east lat/lon around the grid's footprint
    (s, wlon), (n, e) = bounds
    assert s < n and wlon < e and 40 < s < 50 and -102 < wlon < -95
    assert h == img.size[1] and w == img.size[0]


def test_refuses_overwrite_mismatch_and_bad_change(pair, tmp_path):
    root, a, b, change = pair
    out = tmp_path / "r.html"
    out.write_text("keep me")
    with pytest.raises(OutputExistsError, match="`overwrite=True`"):
        write_report(a.path, b.path, out, change_dir=change, basemap="none", thumbnails=False)
    assert out.read_text() == "keep me"
    # a run on another grid
    other = make_grid(30, 41)
    cls = np.zeros((30, 41), dtype=np.int16)
    probs = np.full((30, 41, len(LABELS)), 0.1, dtype=np.float32)
    probs[..., 0] = 0.7
    c = write_run(tmp_path / "other", other, cls, probs, "2021", plots_geojson=False)
    with pytest.raises(GridMismatchError, match="different plot grids"):
        write_report(a.path, c.path, tmp_path / "x.html", change_dir=change, basemap="none", thumbnails=False)
    # a change dir of other periods (B -> A)
    with pytest.raises(InputError, match="compares periods"):
        write_report(b.path, a.path, tmp_path / "y.html", change_dir=change, basemap="none", thumbnails=False)
    with pytest.raises(InputError, match="unknown `basemap`"):
        write_report(a.path, b.path, tmp_path / "z.html", change_dir=change, basemap="nope", thumbnails=False)
    assert not (tmp_path / "x.html").exists() and not (tmp_path / "y.html").exists()


def test_missing_imagery_is_an_error_naming_the_fix(pair, tmp_path):
    root, a, b, change = pair
    moved = tmp_path / "run_a"
    shutil.copytree(a.path, moved)
    man = json.loads((moved / "manifest.json").read_text())
    man["inputs"] = [{"path": str(tmp_path / "gone.tif"), "size": 1, "mtime": 0}]
    (moved / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(InputError, match=r"gone\.tif.*`imagery_a`.*`thumbnails=False`"):
        write_report(moved, b.path, tmp_path / "r.html", change_dir=change, basemap="none")
    # given explicitly (a glob), the thumbnails come from there
    glob = str(Path(a.path).parent / "imagery_2016" / "*.tif")
    r = write_report(moved, b.path, tmp_path / "r.html", change_dir=change, basemap="none", imagery_a=glob, max_thumbnails=3)
    assert r.thumbnails == 3 and r.thumbnails_skipped == r.change_features - 3
    assert any("thumbnails for 3 of" in n for n in r.notes)


def test_cli_report_without_change_dir_runs_the_comparison(pair, tmp_path):
    """`landuse report A B --out` with no --change compares in memory (landuse.change)."""
    from landuse.cli import cli

    root, a, b, change = pair
    out = tmp_path / "cli.html"
    res = CliRunner().invoke(cli, ["report", str(a.path), str(b.path), "--out", str(out), "--basemap", "none", "--no-thumbnails"])
    assert res.exit_code == 0, res.output
    assert str(out) in res.output
    page = out.read_text()
    # every changed/uncertain plot of the independent factory's comparison is a feature of the page
    ids = {f["properties"]["plot_id"] for f in _features(change)}
    assert ids and all(i in page for i in ids)
    assert "data:image/jpeg" not in page
    res2 = CliRunner().invoke(cli, ["report", str(a.path), str(b.path), "--out", str(out), "--basemap", "none", "--no-thumbnails"])
    assert res2.exit_code != 0 and "`overwrite=True`" in str(res2.exception or res2.output)  # the group, not main(): untranslated


def test_online_basemap_adds_osm_tiles(pair, tmp_path):
    root, a, b, change = pair
    r = write_report(a.path, b.path, tmp_path / "osm.html", change_dir=change, basemap="osm", thumbnails=False)
    page = r.path.read_text()
    assert "L.tileLayer" in page and "tile.openstreetmap.org" in page
    assert not re.search(r"<script[^>]+src=", page, re.I)


# -- real headless Chromium ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip("chromium / chromedriver are not installed (make browser installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
        "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
        "--window-size=1280,860",
        # network off: every non-file request would go to a dead proxy on loopback and fail
        "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_ready(driver, timeout: float = 15.0) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("return !!(window.landuseReport && window.landuseReport.ready)")
    )


@pytest.mark.browser
def test_report_in_headless_chromium_offline(report, browser):
    result, (_root, a, _b, change) = report
    browser.get(result.path.as_uri())
    _wait_ready(browser)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "webmap_report.png"
    browser.save_screenshot(str(shot))
    feats = _features(change)
    n_changed = sum(f["properties"]["status"] == "changed" for f in feats)
    info = browser.execute_script(
        """
        var R = window.landuseReport;
        var labels = Array.from(document.querySelectorAll('.leaflet-control-layers-overlays label'))
            .map(function (l) { return l.textContent.trim(); });
        return {
          hasMap: !!(R.map && R.map.getContainer() && document.querySelector('.leaflet-container')),
          zoom: R.map.getZoom(),
          images: Array.from(document.querySelectorAll('img.leaflet-image-layer.lu-classes'))
              .map(function (i) { return {ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth}; }),
          imagery: Array.from(document.querySelectorAll('img.leaflet-image-layer.lu-imagery'))
              .map(function (i) { return {ok: i.complete && i.naturalWidth > 0, pane: i.parentNode.className}; }),
          overlayLabels: labels,
          baseLayers: document.querySelectorAll('.leaflet-control-layers-base label').length,
          tiles: document.querySelectorAll('.leaflet-tile').length,
          changeLayers: R.layers.change.getLayers().length,
          changedPaths: R.layers.change.getLayers().filter(function (l) {
              return l.options.color === R.styles.changed.color; }).length,
          svgPaths: document.querySelectorAll('.leaflet-overlay-pane path').length,
          legend: Array.from(document.querySelectorAll('.lu-legend .lu-legend-item'))
              .map(function (d) { return [d.dataset.tag, getComputedStyle(d.querySelector('.lu-swatch')).backgroundColor]; }),
          summary: document.querySelector('.lu-summary') ? document.querySelector('.lu-summary').textContent : null,
          chartBars: document.querySelectorAll('.lu-summary svg.lu-chart .lu-bar').length,
          resources: performance.getEntriesByType('resource').map(function (e) { return e.name; }),
          doc: location.protocol
        };
        """
    )
    assert info["hasMap"] and info["doc"] == "file:"
    assert len(info["images"]) == 2 and all(i["ok"] for i in info["images"])
    # each period's imagery decoded, in that period's (swiped) pane, on by default without a basemap
    assert [i["ok"] for i in info["imagery"]] == [True, True]
    assert "lu_period_a" in info["imagery"][0]["pane"] and "lu_period_b" in info["imagery"][1]["pane"]
    assert info["overlayLabels"][:4] == [f"{a.period} imagery (8 m/px)", "2021 imagery (8 m/px)", f"{a.period} classes", "2021 classes"]
    assert len(info["overlayLabels"]) == 5 and info["overlayLabels"][4].startswith("change 2016")
    assert info["baseLayers"] == 0 and info["tiles"] == 0
    assert info["changeLayers"] == len(feats) > 0 and info["svgPaths"] == len(feats)
    assert info["changedPaths"] == n_changed
    assert [t for t, _ in info["legend"]] == [*LABELS, "unknown"]
    for tag, css in info["legend"][:-1]:
        assert css == "rgb({}, {}, {})".format(*COLORS[tag])
    assert "Urbanization" in info["summary"] and "2016" in info["summary"]
    assert info["chartBars"] == len(LABELS)
    assert all(r.startswith(("data:", "file:")) for r in info["resources"]), info["resources"]

    # open a change popup (centred first, no animation): plot id, from -> to, both thumbnails
    first = feats[0]["properties"]
    popup = browser.execute_script(
        """
        var R = window.landuseReport, l = R.layers.change.getLayers()[0];
        R.map.setView(l.getBounds().getCenter(), R.map.getZoom() + 1, {animate: false});
        l.openPopup();
        var el = document.querySelector('.leaflet-popup-content');
        var imgs = Array.from(el.querySelectorAll('.lu-thumbs img'));
        return {text: el.textContent, imgs: imgs.map(function (i) { return i.src.slice(0, 23); }),
                id: l.feature.properties.plot_id};
        """
    )
    assert popup["id"] == first["plot_id"] and first["plot_id"] in popup["text"]
    assert f"{first['from']} \u2192 {first['to']}" in popup["text"]
    assert popup["imgs"] == ["data:image/jpeg;base64,"] * 2
    time.sleep(0.4)  # the popup fades in
    browser.save_screenshot(str(ARTIFACTS / "webmap_popup.png"))

    # the swipe clips period A to the left part of the map and B to the right
    clips = browser.execute_script(
        """
        var R = window.landuseReport; R.map.closePopup(); R.swipe.set(0.25);
        return [R.map.getPane('lu_period_a').style.clip, R.map.getPane('lu_period_b').style.clip, R.map.getSize().x];
        """
    )
    nums_a = [float(v) for v in re.findall(r"-?[\d.]+", clips[0])]
    nums_b = [float(v) for v in re.findall(r"-?[\d.]+", clips[1])]
    assert nums_a[1] == pytest.approx(nums_a[3] + 0.25 * clips[2], abs=1)  # A: left .. 25 %
    assert nums_b[3] == pytest.approx(nums_a[1], abs=1e-6)  # B starts where A ends

    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


@pytest.mark.browser
def test_offline_browser_setup_catches_network_requests(pair, browser, tmp_path):
    """The harness itself: a page that does fetch tiles (--basemap osm) is caught by the same checks."""
    root, a, b, change = pair
    r = write_report(a.path, b.path, tmp_path / "online.html", change_dir=change, basemap="osm", thumbnails=False)
    browser.get_log("browser")  # drop earlier entries
    browser.get(r.path.as_uri())
    _wait_ready(browser)
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(function (e) { return e.name; })")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert any(x.startswith("https://tile.openstreetmap.org/") for x in resources)
    assert any("ERR_PROXY_CONNECTION_FAILED" in e["message"] for e in errors)


@pytest.mark.browser
def test_real_naip_classify_change_report_in_chromium(tmp_path, browser):
    """Real NAIP (North Dakota 2010 / 2018) through `landuse classify`, `change` and `report`:
    real run store outputs, real change output, thumbnails read from the manifests' imagery."""
    from landuse.cli import main
    from landuse.grid import PlotGrid
    from tests.conftest import shared_data

    files = sorted(shared_data("rasters", "naip_nd_timeseries").glob("*.tif"))
    model = mean_colour_export(tmp_path / "model")
    PlotGrid.from_rasters(files).save(tmp_path / "grid.json")
    for f, period in zip(files, ("2010", "2018"), strict=True):
        assert main(["-q", "classify", str(f), "--period", period, "--out", str(tmp_path / period), "--model", str(model),
                     "--grid", str(tmp_path / "grid.json"), "--scheduler", "synchronous", "--bands", "1,2,3"]) == 0
    assert main(["-q", "change", str(tmp_path / "2010"), str(tmp_path / "2018"), "--out", str(tmp_path / "ch")]) == 0
    out = tmp_path / "naip.html"
    assert main(["-q", "report", str(tmp_path / "2010"), str(tmp_path / "2018"), "--change", str(tmp_path / "ch"),
                 "--out", str(out), "--basemap", "none"]) == 0
    feats = _features(tmp_path / "ch")
    assert feats
    browser.get_log("browser")
    browser.get(out.as_uri())
    _wait_ready(browser)
    info = browser.execute_script(
        """var R = window.landuseReport;
           return {n: R.layers.change.getLayers().length,
                   imgs: Array.from(document.querySelectorAll('img.lu-classes')).filter(function (i) {
                       return i.complete && i.naturalWidth > 0; }).length,
                   thumbs: R.layers.change.getLayers().filter(function (l) {
                       return /^data:image\\/jpeg;base64,/.test(l.feature.properties.thumb_a || ''); }).length};"""
    )
    assert info == {"n": len(feats), "imgs": 2, "thumbs": len(feats)}
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "webmap_naip.png"))
    # a changed plot's popup shows both real thumbnails
    browser.execute_script(
        """var R = window.landuseReport;
           var l = R.layers.change.getLayers().filter(function (x) { return x.feature.properties.status === 'changed'; })[0]
                   || R.layers.change.getLayers()[0];
           R.map.setView(l.getBounds().getCenter(), R.map.getZoom() + 1, {animate: false}); l.openPopup();"""
    )
    n_img = browser.execute_script("return document.querySelectorAll('.leaflet-popup-content .lu-thumbs img').length")
    assert n_img == 2
    time.sleep(0.4)  # the popup fades in
    browser.save_screenshot(str(ARTIFACTS / "webmap_naip_popup.png"))
    browser.execute_script("window.landuseReport.map.closePopup()")
    _check_panel_adds_up(browser, json.loads((tmp_path / "ch" / "summary.json").read_text()))
    _check_imagery_under_classes_and_swiped(browser, tmp_path)
    # the page stays within its budget: imagery at the sources' own 5 m, well under 30 MB
    assert out.stat().st_size < 30e6
    assert "imagery (5 m/px)" in browser.execute_script(
        "return document.querySelector('.leaflet-control-layers-overlays').textContent")
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def _check_panel_adds_up(browser, summary: dict) -> None:
    """The panel's status rows are summary.json's numbers and add up to the compared plots."""
    from landuse.change import fmt_ha

    rows = browser.execute_script(
        """return Array.from(document.querySelectorAll('.lu-summary .lu-counts tr[data-key]')).map(function (r) {
             var td = r.querySelectorAll('td'); return [r.dataset.key, td[1].textContent, td[2].textContent]; });""")
    got = {k: (int(n.replace(",", "")), float(ha.replace(",", ""))) for k, n, ha in rows}
    assert list(got) == ["unchanged", "changed", "uncertain", "unknown", "compared", "excluded"]
    parts = ("unchanged", "changed", "uncertain", "unknown")
    assert sum(got[k][0] for k in parts) == got["compared"][0] == summary["compared"]["plots"]
    assert abs(sum(summary[k]["hectares"] for k in parts) - summary["compared"]["hectares"]) < 1e-6
    assert abs(sum(got[k][1] for k in parts) - got["compared"][1]) <= 0.05 * len(parts)  # one-decimal rounding
    for k, n, ha in rows:
        assert int(n.replace(",", "")) == summary[k]["plots"] and ha == fmt_ha(summary[k]["hectares"]), k
    # class areas: every period's column plus the unknown row adds up to the compared hectares
    areas = browser.execute_script(
        """return Array.from(document.querySelectorAll('.lu-summary .lu-area tr[data-tag]')).map(function (r) {
             var td = r.querySelectorAll('td');
             return [r.dataset.tag, td[1].textContent, td[2].textContent, td[3].textContent, td[4].textContent]; });""")

    def num(x: str) -> float:
        return float(x.replace(",", "").replace("+", ""))

    for tag, a_ha, b_ha, net, unc in areas[:-1]:  # each class row: A + confident net + uncertain net = B
        assert abs(num(a_ha) + num(net) + num(unc) - num(b_ha)) <= 0.2, tag
    assert areas[-1][0] == "unknown"
    for col in (1, 2):
        total = sum(float(r[col].replace(",", "")) for r in areas)
        assert abs(total - summary["compared"]["hectares"]) <= 0.05 * len(areas)
    text = browser.execute_script("return document.querySelector('.lu-summary .lu-urban').textContent")
    u = summary["urbanization"]
    assert f"{fmt_ha(u['total_ha'])} ha confident" in text and f"up to {fmt_ha(u['upper_bound_ha'])} ha" in text


def _crop(png: bytes, x0: float, x1: float) -> np.ndarray:
    import io

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)
    h, w = img.shape[:2]
    return img[int(h * 0.3): int(h * 0.7), int(w * x0): int(w * x1)]


def _check_imagery_under_classes_and_swiped(browser, tmp_path: Path) -> None:
    """Classes transparent: imagery pixels show; the swipe moves imagery and classes alike."""
    ARTIFACTS.mkdir(exist_ok=True)
    R = "var R = window.landuseReport; "
    browser.execute_script(R + "R.summary.getContainer().style.display = 'none'; R.legend.getContainer().style.display = 'none';"
                           "R.map.removeLayer(R.layers.change); R.map.fitBounds(R.layers.a.getBounds(), {animate: false});")
    time.sleep(0.3)
    # classes opaque, divider far right: the crop shows period A's classes (few flat colours)
    browser.execute_script(R + "R.setClassOpacity(1); R.swipe.set(0.95);")
    classes_a = _crop(browser.get_screenshot_as_png(), 0.45, 0.55)
    browser.execute_script(R + "R.setClassOpacity(0);")
    imagery_a = _crop(browser.get_screenshot_as_png(), 0.45, 0.55)
    browser.save_screenshot(str(ARTIFACTS / "webmap_naip_imagery.png"))
    browser.execute_script(R + "R.swipe.set(0.05);")
    imagery_b = _crop(browser.get_screenshot_as_png(), 0.45, 0.55)
    browser.execute_script(R + "R.map.removeLayer(R.layers.imageryA); R.map.removeLayer(R.layers.imageryB);")
    empty = _crop(browser.get_screenshot_as_png(), 0.45, 0.55)
    # imagery is textured (many colours); without it the same place is the empty background
    assert len(np.unique(imagery_a.reshape(-1, 3), axis=0)) > 500
    assert len(np.unique(empty.reshape(-1, 3), axis=0)) < 10
    assert np.abs(imagery_a - classes_a).mean() > 10  # the class layer hid the imagery
    # moving the divider switched the same pixels from 2010 imagery to 2018 imagery
    assert np.abs(imagery_a - imagery_b).mean() > 5
    browser.execute_script(R + "R.map.addLayer(R.layers.imageryA); R.map.addLayer(R.layers.imageryB); R.setClassOpacity(0.85);"
                           "R.summary.getContainer().style.display = ''; R.legend.getContainer().style.display = '';")


@pytest.mark.browser
def test_panel_adds_up_with_unknown_plots_in_chromium(tmp_path, browser):
    """Runs with unknown plots (written by hand per the contract: status 'unknown', classes.tif 254)
    through the real `landuse change` and `report`: the panel's rows are summary.json's and add up."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import rasterio

    from landuse.cli import main

    a, b, _ = make_pair(tmp_path, rows=20, cols=24, fraction=0.08, change=False, plots_geojson=False, imagery=True)
    t = pq.read_table(b.path / "plots.parquet")
    status, label = t.column("status").to_pylist(), t.column("label").to_pylist()
    idx = t.column("class_index").to_pylist()
    picks = [i for i, s in enumerate(status) if s == "classified"][5:17]
    for i in picks:
        status[i], label[i], idx[i] = "unknown", "unknown", None
    for name, values, typ in (("status", status, pa.string()), ("label", label, pa.string()), ("class_index", idx, pa.int16())):
        t = t.set_column(t.schema.get_field_index(name), name, pa.array(values, type=typ))
    pq.write_table(t, b.path / "plots.parquet")
    with rasterio.open(b.path / "classes.tif", "r+") as dst:
        data = dst.read(1)
        rows, cols = t.column("row").to_numpy(), t.column("col").to_numpy()
        data[rows[picks], cols[picks]] = 254
        dst.write(data, 1)
    remark_complete(b.path)  # the hand-edited run stands for a finished one
    assert main(["-q", "change", str(a.path), str(b.path), "--out", str(tmp_path / "ch")]) == 0
    summary = json.loads((tmp_path / "ch" / "summary.json").read_text())
    assert summary["unknown"]["plots"] == len(picks)
    out = tmp_path / "unknown.html"
    assert main(["-q", "report", str(a.path), str(b.path), "--change", str(tmp_path / "ch"), "--out", str(out),
                 "--basemap", "none"]) == 0
    browser.get(out.as_uri())
    _wait_ready(browser)
    _check_panel_adds_up(browser, summary)
    n_unknown = browser.execute_script(
        "return window.landuseReport.layers.change.getLayers().filter(function (l) {"
        " return l.feature.properties.status === 'unknown'; }).length")
    assert n_unknown == len(picks)
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
