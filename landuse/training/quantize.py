"""Static int8 quantisation of an exported model (onnxruntime.quantization).

QDQ format, per-channel weights, U8 activations / S8 weights, MinMax calibration on training
images. ``reduce_range`` quantises the weights to 7 bits: onnxruntime's U8S8 kernels on x86 CPUs
without VNNI (AVX2, AVX-512 without VNNI) multiply with ``vpmaddubsw``, whose 16-bit pair sums
saturate for 8-bit weights, so the same graph gives different features on those CPUs than on VNNI
ones; 7-bit weights cannot saturate (``benchmarks/bench_int8_cpu.py``). The stem convolution and the final classifier (Gemm/MatMul) stay in fp32: measured in
``performance.md`` section 2 as the variant closest to fp32 for about 2 % of speed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from landuse.errors import ModelError


def _excluded_nodes(model_path: Path, fp32_preprocessing: bool = False) -> list[str]:
    """Names of the first Conv (the stem), the last Gemm/MatMul (the classifier) and the Softmax;
    with ``fp32_preprocessing`` also every node upstream of the stem (the in-graph per-plot
    stretch and the normalisation), so the stem reads an unquantised image."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    convs = [n for n in graph.node if n.op_type == "Conv"]
    fcs = [n.name for n in graph.node if n.op_type in ("Gemm", "MatMul")]
    soft = [n.name for n in graph.node if n.op_type == "Softmax"]
    names = ([convs[0].name] if convs else []) + ([fcs[-1]] if fcs else []) + soft
    if fp32_preprocessing and convs:
        producer = {o: n for n in graph.node for o in n.output}
        todo, seen = [convs[0].input[0]], set()
        while todo:
            node = producer.get(todo.pop())
            if node is None or node.name in seen:
                continue
            seen.add(node.name)
            todo.extend(node.input)
        names += sorted(seen)
    return names


def quantize_int8(
    fp32_path: Path,
    out_path: Path,
    calibration: np.ndarray,
    input_name: str = "data",
    batch: int = 16,
    *,
    fp32_preprocessing: bool = False,
    reduce_range: bool = False,
    weight_type: str = "int8",
) -> Path:
    """Write a QDQ int8 copy of ``fp32_path`` to ``out_path``, calibrated on ``calibration``.

    ``calibration`` is float32 ``[N,3,H,W]`` already in the model's input scale (RGB 0-255).
    ``fp32_preprocessing``: keep every op before the stem convolution (the per-plot stretch) fp32.
    ``reduce_range``: 7-bit weights (no saturation on non-VNNI x86); ``weight_type``: ``int8``
    (U8S8, the default) or ``uint8`` (U8U8).
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calibration.ndim != 4 or len(calibration) == 0:
        raise ModelError(f"int8 calibration needs a non-empty [N,3,H,W] batch, got shape {calibration.shape}")
    if weight_type not in ("int8", "uint8"):
        raise ModelError(f"int8 weight_type must be 'int8' or 'uint8', got {weight_type!r}")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(
                [{input_name: calibration[i : i + batch]} for i in range(0, len(calibration), batch)]
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    pre = out_path.with_name(out_path.stem + ".pre.onnx")
    try:
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(out_path),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8 if weight_type == "int8" else QuantType.QUInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=_excluded_nodes(pre, fp32_preprocessing),
            reduce_range=reduce_range,
        )
    finally:
        if pre.exists():
            pre.unlink()
    kind = ("U8S8" if weight_type == "int8" else "U8U8") + (" reduce_range (7-bit weights)" if reduce_range else "")
    _copy_metadata(fp32_path, out_path, f"int8 QDQ {kind} per-channel MinMax")
    return out_path


def _copy_metadata(src: Path, dst: Path, quantization: str = "int8 QDQ U8S8 per-channel MinMax") -> None:
    """Carry the embedded metadata_props (pixel format / range, name, version) over to ``dst``."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(src)).metadata_props}
    model = onnx.load(str(dst))
    have = {p.key: p.value for p in model.metadata_props}
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {**have, **props, "quantization": quantization})
    onnx.save(model, str(dst))
