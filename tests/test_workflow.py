"""Workflow files: validation errors name the key and line; plans resolve paths; templates validate."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from landuse.api.workflows import steps as plan
from landuse.cli import main
from landuse.errors import WorkflowError
from landuse.workflow import load_workflow

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / "workflows").glob("*.yaml"))


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "a.tif").write_bytes(b"")  # a path that exists (content is not read by the planner)
    p = tmp_path / "wf.yaml"
    p.write_text(text)
    return p


BASE = """\
output: out
periods:
  - name: "2016"
    imagery: [a.tif]
  - name: "2022"
    imagery: [a.tif]
"""


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_template_validates(path: Path) -> None:
    wf, base = load_workflow(path)
    assert base == path.parent.resolve()
    assert wf.periods or wf.train


def test_unknown_key_names_key_and_line(tmp_path: Path) -> None:
    p = _write(tmp_path, BASE + "change:\n  min_confidance: 0.7\n")
    with pytest.raises(WorkflowError) as e:
        load_workflow(p)
    msg = str(e.value)
    assert "change.min_confidance" in msg and "line 8" in msg and "unknown key" in msg and "\n" not in msg


def test_missing_periods_and_output(tmp_path: Path) -> None:
    p = _write(tmp_path, "output: out\n")
    with pytest.raises(WorkflowError, match="periods"):
        load_workflow(p)
    p = _write(tmp_path, "periods:\n  - name: x\n    imagery: [a.tif]\n")
    with pytest.raises(WorkflowError, match="output: required key is missing"):
        load_workflow(p)


def test_bad_backend_and_value(tmp_path: Path) -> None:
    p = _write(tmp_path, BASE + "backend: azure\n")
    with pytest.raises(WorkflowError, match=r"line 7: backend: .*'onnx' or 'customvision'"):
        load_workflow(p)
    p = _write(tmp_path, BASE + "pipeline:\n  min_valid: 2\n")
    with pytest.raises(WorkflowError, match="pipeline.min_valid"):
        load_workflow(p)


def test_bad_imagery_path_is_named(tmp_path: Path) -> None:
    p = _write(tmp_path, BASE.replace("[a.tif]\n  - name: \"2022\"", "[missing/*.tif]\n  - name: \"2022\""))
    wf, base = load_workflow(p)
    with pytest.raises(WorkflowError, match=r"periods\[2016\].imagery: 'missing/\*.tif' matches no file"):
        plan(wf, base)


def test_invalid_yaml_and_duplicate_periods(tmp_path: Path) -> None:
    p = _write(tmp_path, "output: [unclosed\n")
    with pytest.raises(WorkflowError, match="not valid YAML"):
        load_workflow(p)
    p = _write(tmp_path, BASE.replace('"2022"', '"2016"'))
    with pytest.raises(WorkflowError, match="unique"):
        load_workflow(p)


def test_plan_resolves_paths_against_the_file(tmp_path: Path) -> None:
    p = _write(tmp_path, BASE)
    wf, base = load_workflow(p)
    steps = plan(wf, base)
    titles = [s.title for s in steps]
    assert titles == ["grid", "classify 2016", "classify 2022", "change", "report"]
    classify = {s.title: s.argv for s in steps}["classify 2016"]
    assert str(tmp_path / "a.tif") in classify
    assert classify[classify.index("--out") + 1] == str(tmp_path / "out" / "runs" / "2016")
    assert classify[classify.index("--grid") + 1] == str(tmp_path / "out" / "grid.json")


def test_cli_dry_run_and_error_exit(tmp_path: Path, capsys) -> None:
    p = _write(tmp_path, BASE)
    assert main(["run", str(p), "--dry-run"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("landuse ")]
    assert len(lines) == 5 and all(shlex.split(ln) for ln in lines)
    bad = _write(tmp_path, BASE + "bogus: 1\n")
    assert main(["run", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bogus" in err and "Traceback" not in err
