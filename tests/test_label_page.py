"""The labelling page in real headless Chromium: keyboard, mouse, undo, a closed page, reopening."""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from landuse.label import LabelSession, import_labels, serve_session, write_label_html
from landuse.training.dataset import TagDataset

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_rasters"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
KEY = "test-label-key"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The sample county classified in both periods with the bundled model, and their change."""
    from landuse.cli import main

    root = tmp_path_factory.mktemp("label-runs")
    out = {}
    for year in ("2016", "2022"):
        out[year] = root / year
        assert main(["-q", "classify", str(SAMPLES / f"{year}.tif"), "--period", year, "--out", str(out[year]),
                     "--scheduler", "threads"]) == 0
    out["change"] = root / "change"
    assert main(["-q", "change", str(out["2016"]), str(out["2022"]), "--out", str(out["change"])]) == 0
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip("chromium / chromedriver are not installed (make browser installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    downloads = tmp_path_factory.mktemp("downloads")
    for arg in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
        "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
        "--window-size=1400,900",
        # anything but loopback goes to a dead proxy: the page must need no network
        "--proxy-server=127.0.0.1:9",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, script: str, timeout: float = 20.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script))


def _open(driver, url: str) -> dict:
    driver.get(url)
    _wait(driver, "return document.body.dataset.ready === '1'")
    return driver.execute_script("return window.landuseLabel.state()")


def _current(driver) -> str:
    return driver.execute_script("var c = window.landuseLabel.current(); return c ? c.key : null")


def _press(driver, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(key).perform()


def _answered(driver, done_before: int) -> dict:
    """Wait until the page shows one more (or, after an undo, one fewer) answer."""
    _wait(driver, f"var s = window.landuseLabel.state(); return s && s.done !== {done_before}")
    return driver.execute_script("return window.landuseLabel.state()")


def _index(dataset: Path) -> dict[str, dict[str, str]]:
    with open(dataset / "labels.csv", newline="") as f:
        return {f"{r['plot_id']}@{r['period']}": r for r in csv.DictReader(f)}


def _raster_plot(path: Path, grid, row: int, col: int) -> tuple[np.ndarray, np.ndarray]:
    """The plot's pixels read straight from the 1 m sample raster (same CRS, whole-pixel offsets)."""
    import rasterio
    from rasterio.windows import from_bounds

    with rasterio.open(path) as src:
        win = from_bounds(*grid.plot_bounds(row, col), transform=src.transform).round_offsets().round_lengths()
        data = src.read([1, 2, 3], window=win, boundless=True, fill_value=0)
    return np.transpose(data, (1, 2, 0)), (data > 0).any(axis=0)


@pytest.mark.browser
def test_label_keyboard_mouse_undo_close_reopen(runs, browser, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.by import By

    dataset = tmp_path / "dataset"
    session = LabelSession.open(runs["2016"], dataset, n=8)
    tags = session.tags
    assert tags[-1] == "unknown" and len(tags) >= 3
    server, url = serve_session(session, port=0, key=KEY)
    try:
        state = _open(browser, url)
        assert state["done"] == 0 and state["total"] == 8
        assert "#key=" not in browser.current_url  # the key leaves the address bar
        keys = [it.key for it in session.items]
        assert _current(browser) == keys[0]
        # the plot is shown at native resolution (1 m) with a quarter plot of context on each side
        _wait(browser, "var i = document.querySelector('.view img'); return i && i.complete && i.naturalWidth > 0")
        assert browser.execute_script("return document.querySelector('.view img').naturalWidth") == 336
        assert browser.find_element(By.ID, "guess").is_displayed()
        assert browser.find_element(By.CSS_SELECTOR, "#map svg #here") is not None
        given = {}
        _press(browser, "1")  # keyboard: the first tag
        given[keys[0]] = tags[0]
        state = _answered(browser, 0)
        assert _current(browser) == keys[1]
        browser.find_element(By.ID, f"btn-{tags[1]}").click()  # mouse
        given[keys[1]] = tags[1]
        state = _answered(browser, 1)
        _press(browser, "s")  # skip: nothing written
        state = _answered(browser, 2)
        assert _current(browser) == keys[3]
        _press(browser, "u")  # unknown is a label ...
        state = _answered(browser, 3)
        assert _index(dataset)[keys[3]]["label"] == "unknown"
        _press(browser, "z")  # ... taken back
        state = _answered(browser, 4)
        assert _current(browser) == keys[3] and keys[3] not in _index(dataset)
        browser.find_element(By.ID, f"btn-{tags[2]}").click()
        given[keys[3]] = tags[2]
        state = _answered(browser, 3)
        assert state["done"] == 4 and _current(browser) == keys[4]
        browser.get("about:blank")  # the labeller closes the page mid-way
    finally:
        server.stop()

    # the dataset holds exactly the labels given, in the layout train reads
    index = _index(dataset)
    assert {k: r["label"] for k, r in index.items()} == given
    ds = TagDataset.open(dataset, min_per_tag=1)
    assert sorted((p.parent.name, p.name) for p, _ in ds.items) == sorted(
        (r["label"], Path(r["chip"]).name) for r in index.values())
    assert not (dataset / "unknown").exists() or not any((dataset / "unknown").iterdir())
    grid = session.runs[0].grid
    for key, r in index.items():
        it = next(i for i in session.items if i.key == key)
        assert r["chip"] == f"{r['label']}/{Path(r['chip']).name}" and r["period"] == "2016"
        assert r["crs"] == "EPSG:32611" and Path(r["run"]) == runs["2016"]
        x, y = float(r["x"]), float(r["y"])
        assert grid.index_of(x, y) == (it.row, it.col)
        with Image.open(dataset / r["chip"]) as im:
            chip = np.asarray(im.convert("RGB"))
        assert chip.shape == (224, 224, 3)
        want, valid = _raster_plot(SAMPLES / "2016.tif", grid, it.row, it.col)
        assert np.array_equal(chip[valid], want[valid])

    # reopening continues where it stopped: after the skipped plot and the three labels
    again = LabelSession.open(runs["2016"], dataset, n=8)
    assert [it.key for it in again.items] == keys
    server, url = serve_session(again, port=0, key=KEY)
    try:
        state = _open(browser, url)
        assert state["done"] == 4 and state["next"] == 4 and _current(browser) == keys[4]
        _press(browser, "2")
        state = _answered(browser, 4)
        assert _current(browser) == keys[5]
    finally:
        server.stop()
        browser.get("about:blank")
    given[keys[4]] = tags[1]
    assert {k: r["label"] for k, r in _index(dataset).items()} == given
    assert sum(TagDataset.open(dataset, min_per_tag=1).counts().values()) == 4


@pytest.mark.browser
def test_blind_two_periods_side_by_side(runs, browser, tmp_path):
    from selenium.webdriver.common.by import By

    session = LabelSession.open(runs["2016"], tmp_path / "ref", other_run=runs["2022"], change_dir=runs["change"],
                                n=3, strategy="changed", blind=True)
    assert [it.period for it in session.items] == ["2016", "2022"] * 3
    server, url = serve_session(session, port=0, key=KEY)
    try:
        _open(browser, url)
        _wait(browser, "return Array.from(document.querySelectorAll('.view img')).every(i => i.complete && i.naturalWidth > 0)"
                       " && document.querySelectorAll('.view img').length === 2")
        caps = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".view .cap")]
        assert caps[0].startswith("2016") and "label this" in caps[0] and caps[1].startswith("2022")
        assert not browser.find_element(By.ID, "guess").is_displayed()  # blind: no model guess
        page = browser.execute_script("return JSON.stringify(window.landuseLabel.current())")
        assert "guesses" not in page and "reason" not in page
        _press(browser, "1")
        _answered(browser, 0)
        assert _current(browser) == session.items[1].key  # the same plot, now 2022
        target = browser.find_elements(By.CSS_SELECTOR, ".view.target .cap")[0].text
        assert target.startswith("2022")
    finally:
        server.stop()
        browser.get("about:blank")
    rows = _index(tmp_path / "ref")
    assert list(rows) == [session.items[0].key]


@pytest.mark.browser
def test_written_page_exports_labels_file(runs, browser, tmp_path):
    import landuse

    res = landuse.label(runs["2016"], tmp_path / "ds", n=4, html=tmp_path / "page.html")  # the API job
    session = LabelSession.open(runs["2016"], tmp_path / "ds", n=4)
    assert res.session_id == session.session_id and res.total == 4 and res.remaining == 4
    page = res.html
    assert page is not None and not (tmp_path / "ds").exists()  # nothing written before a label is given
    with pytest.raises(Exception, match="exists"):
        write_label_html(session, page)
    text = page.read_text()
    assert "<script src" not in text and "http://" not in text.split("<script>window.LABEL_CONFIG")[0]
    state = _open(browser, page.as_uri())
    assert state["done"] == 0
    _press(browser, "2")
    _answered(browser, 0)
    _press(browser, "s")
    _answered(browser, 1)
    state = _open(browser, page.as_uri())  # reload: the answers are kept in the browser
    assert state["done"] == 2 and _current(browser) == session.items[2].key
    browser.find_element("id", "export").click()
    target = browser.downloads / f"labels-{session.session_id}.json"
    for _ in range(200):
        if target.exists():
            break
        time.sleep(0.05)
    browser.get("about:blank")
    doc = json.loads(target.read_text())
    assert [r["label"] for r in doc["labels"]] == [session.tags[1]] and doc["skipped"] == [session.items[1].key]
    res = import_labels(target, tmp_path / "ds")
    assert res.added == 1 and res.skipped == 1
    index = _index(tmp_path / "ds")
    assert list(index) == [session.items[0].key] and index[session.items[0].key]["label"] == session.tags[1]
    assert index[session.items[0].key]["labelled_at"] == doc["labels"][0]["labelled_at"]


def test_a_change_sample_is_labelled_blind_in_both_periods(runs, tmp_path):
    """`landuse label SAMPLE`: the sample's plots, shuffled, blind, both periods, into SAMPLE/labels,
    in the index format `landuse assess estimate` reads."""
    from landuse.assess.sample import design_sample, estimate_sample
    from landuse.label import resolve_source

    design = design_sample(runs["change"], tmp_path / "sample", n=8, min_per_stratum=1, seed=3)
    src = resolve_source(design.path)
    assert src.blind and src.dataset == design.path / "labels" and src.other_run == Path(design.runs[1])
    assert sorted(src.plot_ids) == sorted(design.plot_ids)
    session = LabelSession.open(src.run, src.dataset, other_run=src.other_run, plot_ids=src.plot_ids, blind=src.blind)
    assert [it.plot_id for it in session.items[::2]] == src.plot_ids
    assert all("guesses" not in session.describe_item(i) for i in range(len(session.items)))
    truth = {f["properties"]["plot_id"]: f["properties"]
             for f in json.loads((SAMPLES / "truth.geojson").read_text())["features"]}
    for it in session.items:  # the truth plays the labeller
        session.label(it.key, truth[it.plot_id][f"class_{it.period}"])
    est = estimate_sample(design.path, write=False)
    assert est.labelled == len(design.plot_ids) and not est.unlabelled
