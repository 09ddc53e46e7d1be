"""The linear-head recipe: head fitting, the kNN unknown score, head replacement in ONNX, GSD."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from landuse.classify.unknown import (
    FALLBACK,
    KnnScorer,
    method_of,
    predict_with_unknown,
    water_share,
)
from landuse.training.features import degrade_resolution
from landuse.training.head import fit_head


def _clusters(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (3, 16))
    y = np.repeat(np.arange(3), n)
    return centres[y] + rng.normal(0, 1, (3 * n, 16)), y


def test_head_separates_held_out_clusters() -> None:
    x, y = _clusters(40, 0)
    h = fit_head(x, y, 3, l2=0.01)
    xt, yt = _clusters(40, 0)[0] + np.random.default_rng(1).normal(0, 0.5, (120, 16)), y
    assert (h.probs(xt).argmax(1) == yt).mean() >= 0.95
    assert np.allclose(h.probs(xt).sum(1), 1, atol=1e-5)


def test_sample_weight_moves_the_boundary() -> None:
    """Two overlapping classes: weighting class 1 heavily makes the head call the overlap 1."""
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(-1, 1, (200, 2)), rng.normal(1, 1, (200, 2))])
    y = np.repeat([0, 1], 200)
    mid = np.zeros((1, 2))
    even = fit_head(x, y, 2, l2=0.01).probs(mid)[0, 1]
    w = np.where(y == 1, 20.0, 1.0)
    heavy = fit_head(x, y, 2, l2=0.01, sample_weight=w, class_balanced=False).probs(mid)[0, 1]
    assert 0.35 < even < 0.65
    assert heavy > 0.8


def test_knn_score_is_low_near_the_reference_and_high_away() -> None:
    x, _ = _clusters(50, 3)
    knn = KnnScorer.fit(x, k=5)
    near = knn.score(x[:10] + 0.01)
    far = knn.score(np.random.default_rng(4).normal(0, 3, (10, 16)) + 10)
    assert near.max() < far.min()


def test_water_share_from_ndwi() -> None:
    g = np.full((2, 8, 8), 80, np.uint8)
    nir = np.full((2, 8, 8), 70, np.uint8)  # soil: NIR near green (NDWI ~0.07) is not water
    nir[1, :6] = 20  # water: NIR far below green on 6 of 8 rows
    share = water_share(g, nir)
    assert share[0] == 0.0
    assert share[1] == pytest.approx(0.75)


def test_degrade_resolution_removes_detail_but_keeps_mean() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    d = degrade_resolution(x, 5.0)
    assert d.shape == x.shape and d.dtype == np.uint8
    assert d.std() < 0.5 * x.astype(float).std()
    assert abs(float(d.mean()) - float(x.mean())) < 3


def test_probability_fallback_for_models_without_features() -> None:
    class Plain:
        labels = ["a", "b", "c"]

        def predict(self, batch: np.ndarray) -> np.ndarray:
            return np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25]], np.float32)[: len(batch)]

    m = Plain()
    assert method_of(m) is FALLBACK
    probs, scores = predict_with_unknown(m, np.zeros((2, 4, 4, 3), np.uint8))
    assert scores[0] < FALLBACK.threshold < scores[1]
    assert "probability threshold" in FALLBACK.description


def test_replace_head_changes_classes(tmp_path: Path) -> None:
    """A 2-class linear-head ONNX graph refitted to 3 classes gives the new head's probabilities."""
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from landuse.training.head import LinearHead
    from landuse.training.linear import replace_head

    rng = np.random.default_rng(6)
    w0 = rng.normal(size=(2, 4)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Identity", ["data"], ["features"]),
         helper.make_node("Gemm", ["features", "W", "B"], ["logits"], transB=1),
         helper.make_node("Softmax", ["logits"], ["model_output"], axis=1)],
        "g", [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("model_output", TensorProto.FLOAT, ["N", 2]),
         helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(w0, "W"), numpy_helper.from_array(np.zeros(2, np.float32), "B")])
    src = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(src))
    head = LinearHead(rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=3).astype(np.float32))
    dst = replace_head(src, tmp_path / "m3.onnx", head, ["a", "b", "c"])
    x = rng.normal(size=(5, 4)).astype(np.float32)
    out = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(["model_output"], {"data": x})[0]
    assert out.shape == (5, 3)
    assert np.allclose(out, head.probs(x), atol=1e-5)


def test_resolution_warning_names_coarse_imagery(write_raster) -> None:
    from affine import Affine

    from landuse.imagery import Scene
    from landuse.pipeline import resolution_warning

    data = np.full((3, 50, 50), 100, np.uint8)
    coarse = write_raster("coarse.tif", data, "EPSG:32614", Affine(5, 0, 500000, 0, -5, 5200000))
    fine = write_raster("fine.tif", data, "EPSG:32614", Affine(1, 0, 500000, 0, -1, 5200000))
    msg = resolution_warning(Scene.open([str(coarse)]), 1.0)
    assert msg is not None and "5 m per pixel" in msg and "expects 1 m" in msg
    assert resolution_warning(Scene.open([str(fine)]), 1.0) is None
    assert resolution_warning(Scene.open([str(coarse)]), None) is None


def test_training_weights_drop_open_space_and_balance_counties() -> None:
    """Developed plots more than 40 % green weigh 0; both counties' Developed weigh the same."""
    from landuse.training.linear import LinearRecipe, group_of, training_weights

    grey = np.full((224, 224, 3), 120, np.uint8)
    grass = grey.copy()
    grass[..., 1] = 160  # 2G - R - B = 80 > 12: green vegetation everywhere
    half = grey.copy()
    half[:89, :, 1] = 160  # 39.7 % green: not more than the 40 % limit
    x = np.stack([grey, grey, grey, grass, half, grey, grass])
    y = np.array([0, 2, 2, 2, 2, 2, 1])  # Barren, 4 Developed in ca037 / ca025, Cultivated grass
    groups = np.array(["ca025", "ca037", "ca037", "ca037", "ca037", "ca025", "ca025"])
    w = training_weights(x, y, ["Barren", "Cultivated", "Developed"], groups, LinearRecipe())
    assert w[3] == 0.0 and w[6] == 1.0  # the grassy Developed plot out; grassy Cultivated kept
    kept_la, kept_imp = w[[1, 2, 4]], w[[5]]
    assert np.isclose(kept_la.sum(), kept_imp.sum()) and np.isclose(w[y == 2].sum(), 4.0)
    assert w[0] == 1.0  # one county only: nothing to balance
    plain = training_weights(x, y, ["Barren", "Cultivated", "Developed"], None,
                             LinearRecipe(open_space_class=None))
    assert (plain == 1.0).all()
    assert group_of("ortho_1-1_hn_s_ca025_2016_1_9413.png") == "ca025" and group_of("plot_17.png") == ""


def test_water_plots_are_unknown_with_their_water_share_as_score(write_raster, tmp_path: Path) -> None:
    """RGBN imagery: plots all open water are unknown, score = water share / 0.5, one reason."""
    import json

    import pandas as pd
    from affine import Affine

    from landuse.pipeline import WATER_REASON, classify_imagery

    data = np.zeros((4, 448, 448), np.uint8)
    data[0], data[1], data[2] = 90, 110, 80  # dull green-grey land
    data[3] = 160  # land reflects NIR
    data[3, :, :224] = 15  # the western column of plots is open water (NDWI (110 - 15) / 125 = 0.76)
    path = write_raster("rgbn.tif", data, "EPSG:32614", Affine(1, 0, 448000, 0, -1, 5152000), nodata=0)
    classify_imagery([path], tmp_path / "run", period="2020", quiet=True)
    df = pd.read_parquet(tmp_path / "run" / "plots.parquet").sort_values(["row", "col"])
    west, east = df[df.col == df.col.min()], df[df.col == df.col.max()]
    assert len(west) == 2 and (west.status == "unknown").all() and (west.reason == WATER_REASON).all()
    assert np.allclose(west.unknown_score, 2.0)
    assert (east.status != "unknown").all() and (east.unknown_score < 1.0).all()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["unclassified"]["unknown"]["by_reason"] == {WATER_REASON: 2}
