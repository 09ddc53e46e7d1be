"""Sample folders: design from a run or a change analysis, labels in the labelling index format,
estimates (stratified and Stehman), the CLI and its errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from runfactory import LABELS, blob_classes, change_classes, make_grid, probabilities_for, write_run

from landuse.assess import SampleDesign, design_sample, estimate_sample
from landuse.cli import main
from landuse.errors import InputError, OutputExistsError

INDEX_COLUMNS = ["plot_id", "label", "run", "period", "x", "y", "crs", "chip", "labelled_at"]


def _noisy(classes: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """The map: the truth with ``rate`` of the plots given another class (Developed errors twice as often)."""
    rng = np.random.default_rng(seed)
    out = classes.copy()
    flip = (rng.random(classes.shape) < rate) & (classes >= 0)
    out[flip] = (classes[flip] + rng.integers(1, len(LABELS), int(flip.sum()))) % len(LABELS)
    return out


def write_index(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """A labels index in the labelling page's format: (plot_id, label, period) rows."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(INDEX_COLUMNS)
        for pid, label, period in rows:
            w.writerow([pid, label, "run", period, "", "", "", "", "2026-12-01T21:00:00+00:00"])
    return path


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    """Truth of two periods on a 30 x 40 grid, two mapped runs with errors, and their change."""
    root = tmp_path_factory.mktemp("county")
    grid = make_grid(30, 40)
    truth_a = blob_classes(grid.shape, len(LABELS), seed=5)
    truth_b, _ = change_classes(truth_a, 0.06, len(LABELS), to_class=LABELS.index("Developed"), seed=6)
    map_a, map_b = _noisy(truth_a, 0.12, 1), _noisy(truth_b, 0.12, 2)
    n = len(LABELS)
    run_a = write_run(root / "run_2016", grid, map_a, probabilities_for(map_a, n, seed=3, low=0.7), "2016")
    run_b = write_run(root / "run_2022", grid, map_b, probabilities_for(map_b, n, seed=4, low=0.7), "2022")
    assert main(["-q", "change", str(run_a.path), str(run_b.path), "--out", str(root / "change")]) == 0
    return {"root": root, "grid": grid, "truth": {"2016": truth_a, "2022": truth_b}, "runs": (run_a, run_b),
            "change": root / "change"}


def _true_ha(county, period: str) -> dict[str, float]:
    t = county["truth"][period]
    return {tag: float((t == i).sum() * county["grid"].plot_area_ha) for i, tag in enumerate(LABELS)}


def test_design_of_a_run_is_reproducible_and_documented(county, tmp_path):
    run_a = county["runs"][0]
    d = design_sample(run_a.path, tmp_path / "s1", target_se=0.03, min_per_stratum=30, seed=11)
    again = design_sample(run_a.path, tmp_path / "s2", target_se=0.03, min_per_stratum=30, seed=11)
    other = design_sample(run_a.path, tmp_path / "s3", target_se=0.03, min_per_stratum=30, seed=12)
    assert d.plot_ids == again.plot_ids and d.plot_ids != other.plot_ids
    sizes = {t: int((run_a.classes == i).sum()) for i, t in enumerate(LABELS)}
    assert {s.name: s.plots for s in d.strata} == sizes
    assert all(s.n >= 30 for s in d.strata) and sum(s.n for s in d.strata) == d.n == len(set(d.plot_ids))
    design = json.loads((tmp_path / "s1" / "design.json").read_text())
    for s in design["strata"]:
        assert s["inclusion_probability"] == pytest.approx(s["n"] / s["plots"])
        assert s["weight"] == pytest.approx(s["plots"] / s["n"])
    with open(tmp_path / "s1" / "sample.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:  # every plot is of its stratum in the map, with its stratum's inclusion probability
        assert r["stratum"] == r["map_class"] == LABELS[run_a.classes[int(r["row"]), int(r["col"])]]
        assert float(r["inclusion_probability"]) == pytest.approx(d.stratum(r["stratum"]).inclusion_probability)
    with rasterio.open(tmp_path / "s1" / "strata.tif") as src:
        code = src.read(1)
    assert {design["strata"][k]["name"]: int((code == k).sum()) for k in range(len(LABELS))} == sizes
    assert d.sizing["n"] == design["sizing"]["n"] and "eq. 13" in d.sizing["rule"]
    with pytest.raises(OutputExistsError, match="`overwrite=True`"):
        design_sample(run_a.path, tmp_path / "s1", seed=11)


def test_estimate_of_a_run_sample_covers_the_truth(county, tmp_path):
    run_a = county["runs"][0]
    d = design_sample(run_a.path, tmp_path / "s", n=160, min_per_stratum=30, seed=3)
    with pytest.raises(InputError, match="label"):
        estimate_sample(d.path)
    truth = county["truth"]["2016"]
    write_index(d.path / "labels.csv", [(p["plot_id"], LABELS[truth[p["row"], p["col"]]], "2016") for p in d.plots])
    e = estimate_sample(d.path)
    acc = e.assessment
    assert acc.method.startswith("stratified") and e.labelled == d.n and not e.unlabelled
    true_ha = _true_ha(county, "2016")
    for tag in LABELS:
        assert acc.area[tag].lower <= true_ha[tag] <= acc.area[tag].upper, (tag, acc.area[tag], true_ha[tag])
    # the map's own accuracy, computed plot by plot over the whole county, is inside the interval too
    classified = run_a.classes >= 0
    true_oa = float((run_a.classes == truth)[classified].mean())
    assert acc.overall.lower <= true_oa <= acc.overall.upper
    saved = json.loads((d.path / "estimate.json").read_text())
    assert saved["area"]["Developed"]["value"] == pytest.approx(acc.area["Developed"].value)
    assert saved["error_matrix_counts"]["matrix"] == acc.counts.tolist()
    md = (d.path / "estimate.md").read_text()
    assert "Error-adjusted area" in md and f"{acc.area['Developed'].value:,.1f} ± {acc.area['Developed'].ci:,.1f}" in md


def test_partly_labelled_sample_warns_and_a_thin_stratum_is_refused(county, tmp_path):
    d = design_sample(county["runs"][0].path, tmp_path / "s", n=80, min_per_stratum=10, seed=4)
    truth = county["truth"]["2016"]
    rows = [(p["plot_id"], LABELS[truth[p["row"], p["col"]]], "2016") for p in d.plots]
    write_index(d.path / "labels.csv", rows[:-3] + [(rows[-1][0], "skip", "2016")])
    e = estimate_sample(d.path, write=False)
    assert len(e.unlabelled) == 3 and any("3 of 80 sample plots have no label" in w for w in e.assessment.warnings)
    only = d.strata[0].name
    write_index(tmp_path / "few.csv", [r for r, p in zip(rows, d.plots, strict=True) if p["stratum"] == only])
    with pytest.raises(InputError, match="no labelled plot"):
        estimate_sample(d.path, labels=tmp_path / "few.csv", write=False)


def test_change_sample_oversamples_rare_change_and_estimates_transitions(county, tmp_path):
    d = design_sample(county["change"], tmp_path / "cs", n=200, min_per_stratum=8, seed=5)
    assert d.kind == "change" and d.periods == ["2016", "2022"]
    change_strata = [s for s in d.strata if s.name.split(" -> ")[0] != s.name.split(" -> ")[1]]
    stable = [s for s in d.strata if s not in change_strata]
    assert change_strata and all(s.n >= min(8, s.plots) for s in change_strata)
    # rare change strata are over-sampled: a changed plot is likelier to be drawn than a stable one
    assert min(s.inclusion_probability for s in change_strata) > max(s.inclusion_probability for s in stable)
    ta, tb = county["truth"]["2016"], county["truth"]["2022"]
    rows = []
    for p in d.plots:
        rows.append((p["plot_id"], LABELS[ta[p["row"], p["col"]]], "2016"))
        rows.append((p["plot_id"], LABELS[tb[p["row"], p["col"]]], "2022"))
    write_index(d.path / "labels.csv", rows)
    e = estimate_sample(d.path)
    acc = e.assessment
    ha = county["grid"].plot_area_ha
    true_change = float((ta != tb).sum() * ha)
    g = acc.groups["any change"]
    assert g.lower <= true_change <= g.upper, (g, true_change)
    # every transition's estimate: most true areas inside their 95 % intervals
    inside = []
    for c in acc.classes:
        a, b = (LABELS.index(x) for x in c.split(" -> "))
        true = float(((ta == a) & (tb == b)).sum() * ha)
        e_ = acc.area[c]
        if e_.ci is not None:
            inside.append(e_.lower <= true <= e_.upper)
    assert sum(inside) >= 0.8 * len(inside), inside


def test_a_sample_of_one_run_assesses_another_with_stehman(county, tmp_path):
    """A sample drawn on one map, used for another map of the same period: the strata are no longer
    the map classes, and the Stehman (2014) estimator applies."""
    run_a = county["runs"][0]
    truth = county["truth"]["2016"]
    better = _noisy(truth, 0.04, 9)
    other = write_run(tmp_path / "run_2016_v2", county["grid"], better, probabilities_for(better, len(LABELS), seed=8), "2016")
    d = design_sample(run_a.path, tmp_path / "s", n=160, min_per_stratum=30, seed=6)
    write_index(d.path / "labels.csv", [(p["plot_id"], LABELS[truth[p["row"], p["col"]]], "2016") for p in d.plots])
    e = estimate_sample(d.path, map_source=other.path)
    acc = e.assessment
    assert acc.method.startswith("Stehman") and e.map_source == str(other.path)
    ha = county["grid"].plot_area_ha
    assert acc.mapped_area["Developed"] == pytest.approx(float((better == LABELS.index("Developed")).sum() * ha))
    true_oa = float((better == truth)[better >= 0].mean())
    assert acc.overall.lower <= true_oa <= acc.overall.upper
    first = estimate_sample(d.path, write=False).assessment
    assert acc.overall.value > first.overall.value  # the better map is found better by the same sample


def test_cli_design_and_estimate(county, tmp_path, capsys):
    sample = tmp_path / "cli_sample"
    run = county["runs"][1]
    assert main(["assess", "design", str(run.path), "--out", str(sample), "--target-class", "Developed",
                 "--target-se-ha", "150", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "Developed" in out and "inclusion probability" in out
    d = SampleDesign.open(sample)
    assert d.sizing["target_class"] == "Developed"
    truth = county["truth"]["2022"]
    (sample / "labels").mkdir()
    write_index(sample / "labels" / "labels.csv", [(p["plot_id"], LABELS[truth[p["row"], p["col"]]], "2022") for p in d.plots])
    assert main(["assess", "estimate", str(sample)]) == 0
    out = capsys.readouterr().out
    assert "overall accuracy" in out and " ha (mapped " in out
    assert main(["assess", "estimate", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("landuse: error:") and "is not a sample folder" in err and len(err.strip().splitlines()) == 1
    assert main(["assess", "design", str(run.path), "--out", str(sample)]) == 1
    assert "--overwrite" in capsys.readouterr().err


def test_api_names_and_reading_an_estimate_back(county, tmp_path):
    import landuse as lu

    run_a = county["runs"][0]
    d = lu.assess_design(run_a, tmp_path / "s", n=60, min_per_stratum=10, seed=8)  # a Run object or a path
    assert isinstance(d, lu.SampleDesign) and SampleDesign.open(tmp_path / "s").plot_ids == d.plot_ids
    truth = county["truth"]["2016"]
    write_index(d.path / "labels.csv", [(p["plot_id"], LABELS[truth[p["row"], p["col"]]], "2016") for p in d.plots])
    e = lu.assess_estimate(d)
    back = lu.SampleEstimate.open(d.path)
    assert isinstance(e, lu.SampleEstimate) and back.labelled == e.labelled == d.n
    assert back.assessment.classes == e.assessment.classes and back.assessment.counts.tolist() == e.assessment.counts.tolist()
    for c in e.assessment.classes:
        assert back.assessment.area[c] == e.assessment.area[c] and back.assessment.users[c] == e.assessment.users[c]
    assert back.assessment.overall == e.assessment.overall and back.assessment.z == e.assessment.z
    with pytest.raises(InputError, match="estimate.json"):
        lu.SampleEstimate.open(tmp_path / "nothing")
