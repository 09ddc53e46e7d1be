"""int8 quantisation options (landuse.training.quantize): 7-bit weights with ``reduce_range``,
U8U8 weights, and that a reduce_range graph computes on this CPU's integer kernels what its
QuantizeLinear / DequantizeLinear pairs mean (no int16 saturation, whatever the CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from landuse.errors import ModelError  # noqa: E402
from landuse.training.quantize import quantize_int8  # noqa: E402


def _fp32_model(path: Path, seed: int = 0) -> Path:
    """Stem Conv (stays fp32) -> Relu -> two 1x1 Convs with 64 inputs each -> pooled ``features``;
    positive weights, so the 1x1 convs see bright u8 activations against large weights."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(rng.uniform(0, 0.1, (64, 3, 3, 3)).astype(np.float32), "w0"),
        numpy_helper.from_array(rng.uniform(0.5, 1.0, (64, 64, 1, 1)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.2, (32, 64, 1, 1)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("Conv", ["data", "w0"], ["c0"], pads=[1, 1, 1, 1], name="stem"),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("Conv", ["r0", "w1"], ["c1"], name="pw1"),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="pw2"),
        helper.make_node("GlobalAveragePool", ["c2"], ["p"]),
        helper.make_node("Flatten", ["p"], ["features"]),
    ]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 8, 8])],
                          [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 32])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def _calibration(n: int = 8, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, 3, 8, 8)).astype(np.float32)


def _weights(path: Path) -> list[np.ndarray]:
    return [numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer
            if i.data_type in (TensorProto.INT8, TensorProto.UINT8) and i.dims and len(i.dims) == 4]


def _run(path: Path, x: np.ndarray, optimise: bool) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    if not optimise:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return sess.run(["features"], {"data": x})[0]


def test_reduce_range_uses_7_bit_weights(tmp_path: Path) -> None:
    fp32 = _fp32_model(tmp_path / "m.onnx")
    full = quantize_int8(fp32, tmp_path / "u8s8.onnx", _calibration())
    seven = quantize_int8(fp32, tmp_path / "rr.onnx", _calibration(), reduce_range=True)
    w_full, w_seven = _weights(full), _weights(seven)
    assert len(w_full) == len(w_seven) == 2  # the two 1x1 convs; the stem stays fp32
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in w_full) == 127
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in w_seven) <= 64
    props = {p.key: p.value for p in onnx.load(str(seven)).metadata_props}
    assert "reduce_range" in props["quantization"]
    assert "reduce_range" not in {p.key: p.value for p in onnx.load(str(full)).metadata_props}["quantization"]


def test_u8u8_weights_are_uint8(tmp_path: Path) -> None:
    fp32 = _fp32_model(tmp_path / "m.onnx")
    q = quantize_int8(fp32, tmp_path / "u8u8.onnx", _calibration(), weight_type="uint8")
    ws = _weights(q)
    assert ws and all(w.dtype == np.uint8 for w in ws)
    assert "U8U8" in {p.key: p.value for p in onnx.load(str(q)).metadata_props}["quantization"]


def test_unknown_weight_type_is_a_model_error(tmp_path: Path) -> None:
    fp32 = _fp32_model(tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="weight_type"):
        quantize_int8(fp32, tmp_path / "q.onnx", _calibration(), weight_type="int4")


def test_reduce_range_integer_kernels_match_their_float_meaning(tmp_path: Path) -> None:
    """Bright inputs (u8 near 255) into 64-channel 1x1 convs: with 7-bit weights the integer
    kernels of any x86 CPU compute what the QDQ graph says (measured 0.0 on an AVX2 EPYC, where the
    8-bit-weight graph of the same model is 0.024 off: vpmaddubsw saturates)."""
    fp32 = _fp32_model(tmp_path / "m.onnx")
    cal = _calibration()
    seven = quantize_int8(fp32, tmp_path / "rr.onnx", cal, reduce_range=True)
    x = _calibration(16, seed=2)
    got, meant = _run(seven, x, True), _run(seven, x, False)
    ref = _run(fp32, x, True)
    err = np.linalg.norm(got - meant) / np.linalg.norm(meant)
    assert err < 0.005, f"integer kernels differ from the QDQ graph's meaning by {err:.3f}"
    assert np.linalg.norm(meant - ref) / np.linalg.norm(ref) < 0.05  # and it is still the fp32 model
