"""The out-of-class flag end to end with the default model: real forest comes out ``unknown``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from landuse.classify.base import DEFAULT_MODEL_DIR, load_classifier
from landuse.classify.unknown import UNKNOWN_CLASS_VALUE
from tests.conftest import shared_data

FOREST = "wv_1m_2014-m_3708020_sw_17_1-1.png"  # NLCD 41 on 100 % of the patch


def _default():
    clf = load_classifier("default")
    if clf.unknown_method is None:
        pytest.skip(f"{DEFAULT_MODEL_DIR} carries no unknown-flag statistics")
    return clf


def _forest_raster(write_raster, gsd: float = 1.0, name: str = "forest.tif") -> Path:
    from PIL import Image

    rgb = np.asarray(Image.open(shared_data("wv_1m_patches", FOREST)).convert("RGB"))  # 256 x 256 at 1 m
    if gsd != 1.0:
        side = int(round(256 / gsd))
        rgb = np.asarray(Image.fromarray(rgb).resize((side, side), Image.BOX))
    # UTM 17N, origin on a multiple of 224 m so one plot lies wholly inside the patch
    x0, y0 = 224 * 2000 - 16, 224 * 18000 + 240
    return write_raster(name, rgb.transpose(2, 0, 1).copy(), "EPSG:32617", Affine(gsd, 0, x0, 0, -gsd, y0))


def test_default_model_records_gsd_features_and_training_hashes() -> None:
    clf = _default()
    assert clf.gsd_m == 1.0
    assert clf.features_name == "features"
    assert clf.unknown_method.name == "features" and 0 < clf.unknown_method.threshold < 2
    data = shared_data("aerialsmall", "train")
    from landuse.classify.base import sha256_file

    some = sorted((data / "Barren").glob("*.png"))[:3]
    assert all(sha256_file(p) in clf.training_sha256 for p in some)


def test_real_forest_plots_are_flagged_and_training_plots_are_not() -> None:
    from landuse.training.dataset import load_image

    clf = _default()
    wv = sorted(shared_data("wv_1m_patches").glob("*.png"))
    forest = np.stack([load_image(p, (224, 224)) for p in wv])
    _, scores = clf.predict_unknown(forest)
    assert (scores > clf.unknown_method.threshold).sum() >= 12  # the acceptance is 14 of 16
    data = shared_data("aerialsmall", "train")
    own = np.stack([load_image(p, (224, 224)) for tag in clf.labels for p in sorted((data / tag).glob("*.png"))[:4]])
    _, s_own = clf.predict_unknown(own)
    assert (s_own > clf.unknown_method.threshold).sum() <= 1


def test_classify_flags_real_forest_unknown_everywhere(tmp_path: Path, write_raster) -> None:
    """A real 1 m forest plot, georeferenced in tmp_path: unknown in plots.parquet / geojson,
    254 in classes.tif, counted apart in summary.json; no resolution warning at 1 m."""
    import geopandas as gpd
    import rasterio

    from landuse.pipeline import classify_imagery

    _default()
    tif = _forest_raster(write_raster)
    run = classify_imagery([tif], tmp_path / "run", period="2014", scheduler="synchronous", quiet=True)
    df = gpd.read_parquet(run.outputs["plots.parquet"])
    scored = df[df["status"].isin(["classified", "unknown"])]
    assert len(scored) >= 1
    assert (scored["status"] == "unknown").all()
    assert (scored["label"] == "unknown").all()
    assert scored["class_index"].isna().all()
    assert (scored["unknown_score"] > 0).all()
    assert scored[[c for c in df.columns if c.startswith("prob_")]].notna().all().all()
    gj = json.loads(Path(run.outputs["plots.geojson"]).read_text())
    props = [f["properties"] for f in gj["features"] if f["properties"]["status"] == "unknown"]
    assert props and all(p["unknown_score"] is not None for p in props)
    with rasterio.open(run.outputs["classes.tif"]) as ds:
        band = ds.read(1)
    assert (band == UNKNOWN_CLASS_VALUE).sum() == len(scored)
    summary = json.loads(Path(run.outputs["summary.json"]).read_text())
    assert summary["unknown"]["plots"] == len(scored)
    assert summary["unknown"]["hectares"] == pytest.approx(len(scored) * 224 * 224 / 1e4, rel=1e-3)
    assert sum(c["plots"] for c in summary["classes"].values()) == 0
    assert "model statistics" in summary["unknown_method"] and "probability threshold" not in summary["unknown_method"]
    assert summary["warnings"] == []


def test_coarse_imagery_is_named_in_one_line_and_in_the_summary(tmp_path: Path, write_raster, capsys) -> None:
    from landuse.pipeline import classify_imagery

    _default()
    tif = _forest_raster(write_raster, gsd=4.0, name="forest_4m.tif")
    run = classify_imagery([tif], tmp_path / "run4", period="2014", scheduler="synchronous")
    out = capsys.readouterr()
    lines = [ln for ln in (out.out + out.err).splitlines() if "m per pixel" in ln]
    assert len(lines) == 1 and "4 m per pixel" in lines[0] and "expects 1 m" in lines[0]
    summary = json.loads(Path(run.outputs["summary.json"]).read_text())
    assert len(summary["warnings"]) == 1 and "4 m per pixel" in summary["warnings"][0]
