"""workflows/adapt_county.yaml, NLCD route: dataset from a land-cover raster -> train --init default
-> every period re-classified with the adapted model -> change (on the bundled sample county)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_rasters"
NLCD = {"Barren": 31, "Cultivated": 82, "Developed": 22}  # NLCD codes of the default mapping


def _nlcd_from_truth(path: Path, year: str) -> Path:
    """An NLCD-coded land-cover raster (8 m) of the sample county, burnt from truth.geojson."""
    import geopandas as gpd
    import rasterio
    from rasterio.features import rasterize
    from rasterio.transform import from_origin

    with rasterio.open(SAMPLES / f"{year}.tif") as src:
        crs, b = src.crs, src.bounds
    truth = gpd.read_file(SAMPLES / "truth.geojson").to_crs(crs)
    res = 8.0
    width, height = int(np.ceil((b.right - b.left) / res)), int(np.ceil((b.top - b.bottom) / res))
    transform = from_origin(b.left, b.top, res, res)
    shapes = [(geom, NLCD[c]) for geom, c in zip(truth.geometry, truth[f"class_{year}"], strict=True) if c in NLCD]
    data = rasterize(shapes, out_shape=(height, width), transform=transform, fill=0, dtype="uint8")
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype="uint8",
                       crs=crs, transform=transform, nodata=0) as dst:
        dst.write(data, 1)
    return path


def test_adapt_county_workflow_nlcd_route(tmp_path: Path) -> None:
    import geopandas as gpd

    import landuse
    from landuse.classify.base import load_classifier, sha256_file

    if getattr(load_classifier("default"), "features_name", None) is None:
        pytest.skip("the default model carries no features output (train --init needs it)")
    wf = yaml.safe_load((ROOT / "workflows" / "adapt_county.yaml").read_text())
    nlcd = _nlcd_from_truth(tmp_path / "nlcd_2016.tif", "2016")
    wf["output"] = str(tmp_path / "out")
    wf["dataset"] = {"imagery": [str(SAMPLES / "2016.tif")], "labels": str(nlcd), "per_class": 3, "purity": 0.5, "min_valid": 0.5}
    del wf["train"]["dataset"]
    wf["pipeline"]["scheduler"] = "synchronous"
    wf["report"]["enabled"] = False
    for p in wf["periods"]:
        p["imagery"] = [str(SAMPLES / Path(p["imagery"][0]).name)]
    path = tmp_path / "adapt.yaml"
    path.write_text(yaml.safe_dump(wf))

    from landuse.api.workflows import plan

    _, steps = plan(path)
    assert [s.title for s in steps] == ["dataset", "train", "grid", "classify 2016", "classify 2022", "change"]
    assert "--init default" in steps[1].command

    result = landuse.run(path)
    out = tmp_path / "out"
    model = out / "model"
    assert result.model is not None and result.model.path == model
    ds = out / "dataset"
    counts = {p.name: len(list(p.glob("*.png"))) for p in ds.iterdir() if p.is_dir()}
    assert counts == {t: 3 for t in NLCD}
    training = json.loads((model / "cvexport.manifest").read_text())["Training"]
    assert training["labels_added"]["counts"] == {t: 3 for t in NLCD}
    sha = sha256_file(model / "model.onnx")
    assert sha != load_classifier("default").model_hash
    truth = gpd.read_file(SAMPLES / "truth.geojson")
    for year in ("2016", "2022"):
        run = out / "runs" / year
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["model"]["sha256"] == sha  # every period with the adapted model, none with the default
        plots = gpd.read_parquet(run / "plots.parquet").merge(truth[["plot_id", f"class_{year}"]], on="plot_id")
        ok = plots[plots.status == "classified"]
        assert len(ok) >= 20 and (ok.label == ok[f"class_{year}"]).mean() >= 0.8
    summary = json.loads((out / "change" / "summary.json").read_text())
    assert summary["periods"] == ["2016-06-15", "2022-06-15"]
    assert result.change is not None

    # more labels -> the rerun trains another model, and the finished runs (made with the first
    # model) are refused, naming the parameter (the API) / the flag (the CLI) that replaces them
    from landuse.cli import main
    from landuse.errors import RunStoreError

    wf["dataset"]["per_class"] = 4
    path.write_text(yaml.safe_dump(wf))
    with pytest.raises(RunStoreError, match=r"holds a different run.*overwrite=True"):
        landuse.run(path)
    first = (out / "runs" / "2016" / "plots.parquet").read_bytes()
    assert json.loads((out / "runs" / "2016" / "manifest.json").read_text())["model"]["sha256"] == sha
    assert main(["-q", "run", str(path)]) == 1
    _, steps = plan(path, overwrite=True)
    assert all("--overwrite" in s.argv for s in steps if s.title.startswith("classify"))
    assert main(["-q", "run", "--overwrite", str(path)]) == 0
    sha2 = sha256_file(model / "model.onnx")
    assert sha2 != sha
    for year in ("2016", "2022"):
        manifest = json.loads((out / "runs" / year / "manifest.json").read_text())
        assert manifest["model"]["sha256"] == sha2
        assert (out / "runs" / year / "complete.json").exists()
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["2016", "2022"]  # nothing staged left behind
    assert (out / "runs" / "2016" / "plots.parquet").read_bytes() != first
