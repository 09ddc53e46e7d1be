"""Probability outputs that miss 1 by a little (int8-quantised softmax) are not squashed by a
second softmax: the regression that turned 0.99 confidences into 0.57."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from landuse.classify.onnx import OnnxClassifier


def _model(path: Path, out_name: str, scale: float) -> Path:
    """Mean colour -> 3 logits -> softmax -> * scale (rows then sum to ``scale``)."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 3], (np.eye(3) * 0.2).ravel().tolist())
    s = helper.make_tensor("s", TensorProto.FLOAT, [], [scale])
    nodes = [
        helper.make_node("ReduceMean", ["data"], ["m"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["m", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["p"], axis=1),
        helper.make_node("Mul", ["p", "s"], [out_name]),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N", 3])],
        initializer=[w, s],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("out_name", ["model_output", "probs"])
def test_near_one_rows_are_renormalised_not_softmaxed(tmp_path: Path, out_name: str) -> None:
    clf = OnnxClassifier.load(_model(tmp_path / "m.onnx", out_name, 0.99), labels=["a", "b", "c"])
    red = np.zeros((1, 8, 8, 3), np.uint8)
    red[..., 0] = 255
    p = clf.predict(red)[0]
    # by hand: logits (51, 0, 0) -> softmax ~ (1, 0, 0); a second softmax would give ~0.58
    assert p[0] > 0.99 and abs(p.sum() - 1) < 1e-5


def test_rows_far_from_one_are_logits(tmp_path: Path) -> None:
    clf = OnnxClassifier.load(_model(tmp_path / "m.onnx", "scores", 0.5), labels=["a", "b", "c"])
    red = np.zeros((1, 8, 8, 3), np.uint8)
    red[..., 0] = 255
    p = clf.predict(red)[0]
    # rows summing to 0.5 are not probabilities: softmax of (0.5, 0, 0) = (0.452, 0.274, 0.274)
    np.testing.assert_allclose(p, np.exp([0.5, 0, 0]) / np.exp([0.5, 0, 0]).sum(), atol=1e-3)
