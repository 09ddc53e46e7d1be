"""`landuse classify --dry-run`: counts plots (and Custom Vision calls and cost), sends and writes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from landuse.cli import main
from tests.fakecv import FakeCustomVision

SAMPLE = Path(__file__).resolve().parents[1] / "sample_rasters" / "2016.tif"


def test_dry_run_onnx_counts_and_writes_nothing(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["classify", str(SAMPLE), "--period", "2016", "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    # the committed sample grid is 6 x 8 plots (sample_rasters/README.md)
    m = re.search(r"about (\d+) of 48 plots", text)
    assert m and 0 < int(m.group(1)) < 48
    assert not out.exists()


def test_dry_run_customvision_makes_no_call(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeCustomVision() as fake:
        monkeypatch.setenv("LANDUSE_CV_ENDPOINT", fake.endpoint)
        monkeypatch.setenv("LANDUSE_CV_PROJECT_ID", fake.project_id)
        monkeypatch.setenv("LANDUSE_CV_PUBLISHED_NAME", fake.published_name)
        monkeypatch.setenv("LANDUSE_CV_PREDICTION_KEY", fake.key)
        monkeypatch.setenv("LANDUSE_CACHE_DIR", str(tmp_path / "cache"))
        rc = main(["classify", str(SAMPLE), "--period", "2016", "--out", str(tmp_path / "run"),
                   "--backend", "customvision", "--tier", "S0", "--dry-run"])
        assert rc == 0
        assert fake.log == []  # not one request
    text = capsys.readouterr().out
    plots = int(re.search(r"about (\d+) of", text).group(1))
    calls = int(re.search(r"(\d+) prediction call", text).group(1))
    assert calls == plots + 1  # + the tag probe a real run makes first
    assert "no call made" in text and fake.key not in text
