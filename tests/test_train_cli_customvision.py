"""`landuse train --backend customvision` end to end: one command takes a tag-per-folder dataset to a
published iteration and an exported model (against the fake training API); `landuse classify --model`
runs the export and `--backend customvision` runs the published iteration (served by `landuse serve`
from the same export, as Custom Vision would), with equal labels."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest

from landuse.cli import main
from landuse.training.customvision import ENV_ENDPOINT, ENV_KEY, ENV_PREDICTION_RESOURCE
from tests.faketrain import FakeTraining
from tests.test_cv_training import RESOURCE, make_dataset
from tests.test_serve import KEY, start_serve, stop

SAMPLE = Path(__file__).resolve().parents[1] / "sample_rasters" / "2016.tif"


def test_one_command_to_published_export_then_both_backends_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    ds = make_dataset(tmp_path / "ds", per_tag=6)
    model = tmp_path / "model"
    # a 224 px model: the ONNX path reads plots at 224 px and the cloud path sends 224 px PNGs, so
    # both feed the model the same pixels (a smaller model would see two different resamplings)
    with FakeTraining(image_size=224) as fake:
        monkeypatch.setenv(ENV_ENDPOINT, fake.endpoint)
        monkeypatch.setenv(ENV_KEY, fake.key)
        monkeypatch.setenv(ENV_PREDICTION_RESOURCE, RESOURCE)
        rc = main(["train", str(ds), "--backend", "customvision", "--project", "plots", "--out", str(model)])
        assert rc == 0
        published = dict(fake.published)
    text = capsys.readouterr().out
    assert "(mAP)" in text and fake.key not in text
    assert list(published.values()) == [("production", RESOURCE)]
    assert (model / "model.onnx").exists() and (model / "performance.json").exists()

    # the exported model through the ONNX backend ...
    onnx_run = tmp_path / "onnx"
    assert main(["-q", "classify", str(SAMPLE), "--period", "2016", "--model", str(model), "--out", str(onnx_run),
                 "--scheduler", "threads"]) == 0
    # ... and the "published iteration" through the Custom Vision backend
    served = start_serve([str(model)])
    try:
        for k, v in {"LANDUSE_CV_ENDPOINT": served.endpoint, "LANDUSE_CV_PROJECT_ID": "00000000-0000-0000-0000-000000000001",
                     "LANDUSE_CV_PUBLISHED_NAME": "production", "LANDUSE_CV_PREDICTION_KEY": KEY,
                     "LANDUSE_CACHE_DIR": str(tmp_path / "cache")}.items():
            monkeypatch.setenv(k, v)
        cv_run = tmp_path / "cv"
        assert main(["-q", "classify", str(SAMPLE), "--period", "2016", "--backend", "customvision", "--tps", "50",
                     "--out", str(cv_run), "--scheduler", "threads"]) == 0
    finally:
        stop(served)
    a = gpd.read_parquet(onnx_run / "plots.parquet").set_index("plot_id")
    b = gpd.read_parquet(cv_run / "plots.parquet").set_index("plot_id")
    # scored plots (classified, or unknown by the probability fallback both backends use here)
    classified = a["status"].isin(["classified", "unknown"])
    assert classified.sum() > 10
    ids = classified.index[classified]
    probs = [c for c in a.columns if c.startswith("prob_")]
    assert (a.loc[ids, "label"] == b.loc[ids, "label"]).all()
    assert (a.loc[ids, probs] - b.loc[ids, probs]).abs().to_numpy().max() < 1e-3
