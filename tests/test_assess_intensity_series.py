"""`landuse change` on a series of three runs puts the intensity analysis into the first -> last
summary (summary.json and summary.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from runfactory import LABELS, blob_classes, change_classes, make_grid, probabilities_for, write_run

from landuse.cli import main


def test_change_series_has_intensity_analysis(tmp_path):
    grid = make_grid(20, 25)
    c1 = blob_classes(grid.shape, len(LABELS), seed=2)
    c2, _ = change_classes(c1, 0.05, len(LABELS), seed=3)
    c3, _ = change_classes(c2, 0.10, len(LABELS), seed=4)
    runs = []
    for period, cls, seed in (("2010", c1, 1), ("2015", c2, 2), ("2018", c3, 3)):
        runs.append(write_run(tmp_path / f"run_{period}", grid, cls, probabilities_for(cls, len(LABELS), seed=seed, low=0.7), period).path)
    out = tmp_path / "change"
    assert main(["-q", "change", *map(str, runs), "--out", str(out)]) == 0
    whole = json.loads((out / "2010_to_2018" / "summary.json").read_text())
    ia = whole["intensity"]
    assert ia["times"] == [2010.0, 2015.0, 2018.0] and ia["labels"] == whole["labels"]
    for k, (name, years) in enumerate((("2010_to_2015", 5), ("2015_to_2018", 3))):
        m = np.array(json.loads((out / name / "summary.json").read_text())["matrix_hectares"])
        assert "intensity" not in json.loads((out / name / "summary.json").read_text())
        s_t = 100 * (m.sum() - np.trace(m)) / m.sum() / years
        assert ia["interval_level"][k]["intensity_pct"] == pytest.approx(s_t)
    # the second interval changed twice the share in fewer years: fast, the first slow
    assert [i["behaviour"] for i in ia["interval_level"]] == ["slow", "fast"]
    md = (out / "2010_to_2018" / "summary.md").read_text()
    assert "## Intensity analysis (Aldwaik & Pontius 2012)" in md and "### Transition level" in md
    # the API's series gives the same analysis
    import landuse as lu

    changes = lu.change_series(runs, tmp_path / "api_change")
    api = json.loads((tmp_path / "api_change" / "2010_to_2018" / "summary.json").read_text())
    assert api["intensity"] == ia and len(changes) == 3
