"""The workflow file's ``assess`` key: a rerun keeps the sample and estimates once it is labelled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from landuse.cli import main
from landuse.errors import WorkflowError

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_rasters"

WORKFLOW = """
name: assessed sample county
output: out
periods:
  - {{name: "2016", date: 2016-06-15, imagery: [{s}/2016.tif]}}
  - {{name: "2022", date: 2022-06-15, imagery: [{s}/2022.tif]}}
pipeline: {{scheduler: threads}}
report: {{enabled: false}}
assess: {{n: 12, min_per_stratum: 2, seed: 4{extra}}}
"""


def _write(tmp_path: Path, extra: str = "") -> Path:
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW.format(s=SAMPLES, extra=extra))
    return wf


def test_assess_steps_in_both_plans(tmp_path, capsys):
    from landuse.api.workflows import plan

    wf = _write(tmp_path)
    assert main(["run", str(wf), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "# assess design\nlanduse assess design " in out and f"{tmp_path}/out/change --out {tmp_path}/out/sample" in out
    assert "assess estimate" not in out  # nothing labelled yet
    _, steps = plan(wf)
    assert [s.title for s in steps][-1] == "assess design"
    assert steps[-1].argv == out.split("# assess design\n")[1].strip().removeprefix("landuse ").split(" ")
    bad = _write(tmp_path, extra=", of: change")
    bad.write_text(bad.read_text().replace("report: {enabled: false}", "report: {enabled: false}\nchange: {enabled: false}"))
    with pytest.raises(WorkflowError, match="of: last"):
        plan(bad)


def test_workflow_assess_rerun_keeps_the_sample_and_estimates(tmp_path):
    import landuse as lu

    wf = _write(tmp_path)
    first = lu.run(wf)
    assert first.steps[-1] == "assess design"
    sample = tmp_path / "out" / "sample"
    design = lu.SampleDesign.open(sample)
    truth = {f["properties"]["plot_id"]: f["properties"] for f in json.loads((SAMPLES / "truth.geojson").read_text())["features"]}
    (sample / "labels").mkdir()
    lines = ["plot_id,label,run,period,x,y,crs,chip,labelled_at"]
    assert design.periods == ["2016-06-15", "2022-06-15"]  # the runs' periods: the workflow's dates
    for pid in design.plot_ids:
        for period in design.periods:
            lines.append(f"{pid},{truth[pid]['class_' + period[:4]]},r,{period},,,,,")
    (sample / "labels" / "labels.csv").write_text("\n".join(lines) + "\n")
    again = lu.run(wf)
    assert "assess design" not in again.steps and again.steps[-1] == "assess estimate"
    assert lu.SampleDesign.open(sample).plot_ids == design.plot_ids  # the same sample, labels kept
    est = lu.SampleEstimate.open(sample)
    assert est.labelled == design.n and est.sample.kind == "change"
