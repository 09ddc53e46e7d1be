"""End to end on the bundled sample county: design a sample of the change map, label it (a few
plots through the labelling page in headless Chromium, the rest through the labelling API, with
``sample_rasters/truth.geojson`` playing the labeller), estimate; the true areas fall inside the
95 % intervals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from test_label_page import KEY, _answered, _current, _open, _press, browser, runs  # noqa: F401 - fixtures

from landuse.assess import SampleDesign
from landuse.cli import main
from landuse.label import LabelSession, resolve_source, serve_session

ROOT = Path(__file__).resolve().parents[1]
TRUTH = ROOT / "sample_rasters" / "truth.geojson"


def _truth() -> dict[str, dict]:
    return {f["properties"]["plot_id"]: f["properties"] for f in json.loads(TRUTH.read_text())["features"]}


def _population(sample: Path) -> tuple[np.ndarray, np.ndarray]:
    with rasterio.open(sample / "strata.tif") as src:
        data = src.read()
    return data[0] >= 0, data[1].astype(np.float64)


def _check_inside(sample: Path, truth_class) -> dict:
    """Every class's true area over the sample's population lies inside its 95 % interval."""
    est = json.loads((sample / "estimate.json").read_text())
    design = SampleDesign.open(sample)
    inpop, area = _population(sample)
    rows, cols = np.nonzero(inpop)
    ids = design.grid.plot_ids(rows, cols)
    true = {}
    for pid, r, c in zip(ids, rows.tolist(), cols.tolist(), strict=True):
        true[truth_class(pid)] = true.get(truth_class(pid), 0.0) + float(area[r, c])
    for cls in set(true) | set(est["area"]):
        e = est["area"].get(cls)
        t = true.get(cls, 0.0)
        assert e is not None, f"true class {cls} ({t:.1f} ha) has no estimate"
        assert e["lower"] - 1e-6 <= t <= e["upper"] + 1e-6, (cls, e, t)
    return est


@pytest.mark.browser
def test_sample_county_change_design_label_estimate(runs, browser, tmp_path, capsys):  # noqa: F811
    from selenium.webdriver.common.by import By

    truth = _truth()
    sample = tmp_path / "sample"
    assert main(["assess", "design", str(runs["change"]), "--out", str(sample), "--n", "16", "--min-per-stratum", "3",
                 "--seed", "1"]) == 0
    print(capsys.readouterr().out)
    design = SampleDesign.open(sample)
    assert design.kind == "change" and design.n >= 12
    src = resolve_source(sample)  # what `landuse label SAMPLE` opens: the sample's plots, blind, both periods
    assert src.blind and src.other_run == runs["2022"] and sorted(src.plot_ids) == sorted(design.plot_ids)
    session = LabelSession.open(src.run, src.dataset, other_run=src.other_run, plot_ids=src.plot_ids, blind=src.blind)
    assert len(session.items) == 2 * design.n and src.dataset == sample / "labels"

    def answer(key: str) -> str:
        pid, period = key.rsplit("@", 1)
        return truth[pid][f"class_{period}"]

    server, url = serve_session(session, port=0, key=KEY)
    try:  # the first two plots, both periods, with the keyboard on the blind page
        _open(browser, url)
        assert not browser.find_element(By.ID, "guess").is_displayed()
        for done in range(4):
            key = _current(browser)
            assert key == session.items[done].key
            _press(browser, str(session.tags.index(answer(key)) + 1))
            _answered(browser, done)
    finally:
        server.stop()
        browser.get("about:blank")
    for it in session.items[4:]:  # the rest through the labelling API
        session.label(it.key, answer(it.key))
    assert main(["assess", "estimate", str(sample)]) == 0
    print(capsys.readouterr().out)
    est = _check_inside(sample, lambda pid: f"{truth[pid]['class_2016']} -> {truth[pid]['class_2022']}")
    assert est["labelled_plots"] == design.n and est["kind"] == "change"
    assert "any change" in est["groups"]


def test_sample_county_run_design_label_estimate(runs, tmp_path, capsys):  # noqa: F811
    truth = _truth()
    sample = tmp_path / "sample2022"
    assert main(["assess", "design", str(runs["2022"]), "--out", str(sample), "--target-se", "0.05",
                 "--min-per-stratum", "4", "--seed", "3"]) == 0
    design = SampleDesign.open(sample)
    src = resolve_source(sample)
    session = LabelSession.open(src.run, src.dataset, plot_ids=src.plot_ids, blind=src.blind)
    assert src.other_run is None and len(session.items) == design.n
    for it in session.items:
        session.label(it.key, truth[it.plot_id]["class_2022"])
    assert main(["assess", "estimate", str(sample)]) == 0
    print(capsys.readouterr().out)
    _check_inside(sample, lambda pid: truth[pid]["class_2022"])
