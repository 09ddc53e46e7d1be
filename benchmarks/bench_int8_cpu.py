"""Does the int8 default model give the same features on every x86 CPU?

    nice -n 10 .venv/bin/python benchmarks/bench_int8_cpu.py [--data DIR] [--n 500] [--threads 1]

onnxruntime's U8S8 kernels (activations uint8, weights int8) multiply with ``vpmaddubsw`` on x86
CPUs without VNNI (AVX2; AVX-512 without VNNI): two u8 x s8 products are summed into a saturating
int16, which overflows for 8-bit weights (255 * 127 * 2 > 32767). VNNI CPUs (``vpdpbusd``) sum in
int32. The shipped model was quantised and its ``features.npz`` computed on a VNNI CPU.

The graphs compared, all on the training images whose features ``features.npz`` stores (matched by
sha256), on this CPU:

* ``fp32``: the recipe's fp32 graph rebuilt here (``export_linear_model``; torch + ImageNet weights);
* ``stored``: the features in the shipped ``features.npz`` (int8 on the VNNI build machine, float16);
* ``shipped_int8``: the shipped ``model.onnx``;
* ``shipped_int8_emulated``: the same graph with onnxruntime graph optimisations off, so each
  QuantizeLinear / DequantizeLinear pair runs in float around a float Conv (no integer kernel, no
  saturation): what the int8 graph means, independent of the CPU;
* ``requant_u8s8``: the recipe's quantisation redone here (check: the same graph as shipped);
* ``reduce_range`` (+ ``_emulated``): the same with ``reduce_range=True`` (7-bit weights);
* ``u8u8``: weights QUInt8 (onnxruntime's other remedy for saturation).

Each against ``fp32`` and against ``stored``: per-image cosine similarity and relative L2 error of
the 1280 pooled features, and top-label agreement through the shipped model's head (plus accuracy
against the true tags). Plus plots/s of each ONNX graph on one thread (batch 8, one run; ratios
to ``shipped_int8``). Writes ``benchmarks/results/int8_cpu_consistency.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "aerialsmall" / "train"
MODEL = ROOT / "landuse" / "models" / "default"
RESULTS = ROOT / "benchmarks" / "results"


def cpu_flags() -> dict[str, bool]:
    """The x86 flags that decide onnxruntime's int8 kernels."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags")[1].split("\n")[0].split()
    except (OSError, IndexError):
        flags = []
    keys = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "amx_tile")
    return {k: k in flags for k in keys}


def session(path: Path, threads: int, optimise: bool = True) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    if not optimise:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def features(sess: Any, x: np.ndarray, batch: int = 16) -> np.ndarray:
    from landuse.training.local import prepare_eval

    return np.concatenate([sess.run(["features"], {"data": prepare_eval(x[i : i + batch])})[0]
                           for i in range(0, len(x), batch)]).astype(np.float32)


def plots_per_s(sess: Any, n: int = 64, batch: int = 8) -> float:
    from landuse.training.local import prepare_eval

    x = prepare_eval(np.random.default_rng(0).integers(0, 256, (n, 224, 224, 3), dtype=np.uint8))
    sess.run(None, {"data": x[:batch]})
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        sess.run(None, {"data": x[i : i + batch]})
    return n / (time.perf_counter() - t0)


def shipped_head(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(weight [classes, 1280], bias) of the last Gemm of ``path``."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load(str(path)).graph
    node = [n for n in g.node if n.op_type == "Gemm"][-1]
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    w = inits[node.input[1]]
    trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
    return (w if trans_b else w.T).astype(np.float32), inits[node.input[2]].astype(np.float32)


def compare(a: np.ndarray, ref: np.ndarray, head: tuple[np.ndarray, np.ndarray], y: np.ndarray) -> dict[str, Any]:
    """Per-image cosine / relative L2 of features ``a`` against ``ref``, and head-label agreement."""
    cos = (a * ref).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(ref, axis=1) + 1e-12)
    rel = np.linalg.norm(a - ref, axis=1) / (np.linalg.norm(ref, axis=1) + 1e-12)
    la, lr = (a @ head[0].T + head[1]).argmax(1), (ref @ head[0].T + head[1]).argmax(1)
    q = lambda v, p: round(float(np.quantile(v, p)), 4)  # noqa: E731
    return {"cosine_median": q(cos, 0.5), "cosine_p05": q(cos, 0.05), "cosine_min": round(float(cos.min()), 4),
            "rel_l2_median": q(rel, 0.5), "rel_l2_p95": q(rel, 0.95), "rel_l2_max": round(float(rel.max()), 4),
            "top_label_agreement": round(float((la == lr).mean()), 4),
            "accuracy": round(float((la == y).mean()), 4)}


def initializer_diff(a: Path, b: Path) -> dict[str, Any]:
    """How far the trunk initializers (weights, scales, zero points; not the head) of two graphs differ."""
    import onnx
    from onnx import numpy_helper

    ga, gb = onnx.load(str(a)).graph, onnx.load(str(b)).graph
    head = set([n for n in gb.node if n.op_type == "Gemm"][-1].input)
    ia = {i.name: numpy_helper.to_array(i) for i in ga.initializer if i.name not in head}
    ib = {i.name: numpy_helper.to_array(i) for i in gb.initializer if i.name not in head}
    common = [k for k in ia if k in ib and ia[k].shape == ib[k].shape]
    exact = sum(bool(np.array_equal(ia[k], ib[k])) for k in common)
    worst = max((float(np.max(np.abs(ia[k].astype(np.float64) - ib[k].astype(np.float64)) /
                       (np.max(np.abs(ib[k].astype(np.float64))) + 1e-30)))
                 for k in common if ia[k].size), default=0.0)
    differing = [k for k in common if not np.array_equal(ia[k], ib[k])]
    return {"initializers_a": len(ia), "initializers_b": len(ib), "common": len(common),
            "identical": exact, "max_relative_difference": worst, "differing_examples": differing[:5]}


def kernel_probe(tmp: Path, threads: int) -> dict[str, Any]:
    """One QDQ 1x1 Conv, 64 input channels all 255 (u8, zero point 0), weights all ``w`` (s8):
    the exact output is 255 * w * 64. Run with onnxruntime's integer kernels and emulated in float.
    ``vpmaddubsw`` sums pairs into a saturating int16: 255 * 127 * 2 = 64770 > 32767, 255 * 63 * 2 fits."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out: dict[str, Any] = {}
    k = 64
    for w in (127, 63):
        expect = 255.0 * w * k
        osc = expect * 1.25 / 255.0
        inits = [numpy_helper.from_array(np.full((8, k, 1, 1), w, np.int8), "w"),
                 numpy_helper.from_array(np.array(1.0, np.float32), "one"),
                 numpy_helper.from_array(np.array(0, np.uint8), "zu"),
                 numpy_helper.from_array(np.array(0, np.int8), "zs"),
                 numpy_helper.from_array(np.array(osc, np.float32), "osc")]
        nodes = [helper.make_node("QuantizeLinear", ["x", "one", "zu"], ["xq"]),
                 helper.make_node("DequantizeLinear", ["xq", "one", "zu"], ["xd"]),
                 helper.make_node("DequantizeLinear", ["w", "one", "zs"], ["wd"]),
                 helper.make_node("Conv", ["xd", "wd"], ["c"]),
                 helper.make_node("QuantizeLinear", ["c", "osc", "zu"], ["cq"]),
                 helper.make_node("DequantizeLinear", ["cq", "osc", "zu"], ["y"])]
        g = helper.make_graph(nodes, "probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 4, 4])], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        path = tmp / f"probe{w}.onnx"
        onnx.save(m, str(path))
        x = np.full((1, k, 4, 4), 255.0, np.float32)
        got = {name: float(session(path, threads, opt).run(["y"], {"x": x})[0].mean())
               for name, opt in (("integer_kernels", True), ("emulated", False))}
        out[f"weight_{w}"] = {"exact": expect, **got, "output_step": osc,
                              "integer_over_exact": round(got["integer_kernels"] / expect, 4)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", type=Path, default=MODEL)
    ap.add_argument("--n", type=int, default=500, help="training images compared (all 500 by default)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-u8u8", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS / "int8_cpu_consistency.json")
    args = ap.parse_args(argv)

    from landuse import __version__
    from landuse.classify.base import sha256_file
    from landuse.training.dataset import TagDataset, load_image
    from landuse.training.features import export_linear_model
    from landuse.training.local import calibration_set
    from landuse.training.quantize import quantize_int8

    def say(msg: str) -> None:
        print(time.strftime("%H:%M:%S"), msg, flush=True)

    t0 = time.perf_counter()
    ds = TagDataset.open(args.data)
    tags = list(ds.tags)
    x_all = np.stack([load_image(p, (224, 224)) for p, _ in ds.items])  # the recipe's order
    sha_all = np.array([sha256_file(p) for p, _ in ds.items])
    stored_npz = np.load(args.model / "features.npz")
    clean = stored_npz["view"] == "clean"
    stored_by_sha = dict(zip(stored_npz["sha256"][clean].tolist(), stored_npz["features"][clean].astype(np.float32),
                             strict=True))
    have = np.array([s in stored_by_sha for s in sha_all])
    say(f"{len(sha_all)} training images, {int(have.sum())} with stored features")
    idx = np.flatnonzero(have)[: args.n] if args.n < have.sum() else np.flatnonzero(have)
    if args.n < have.sum():  # an even spread over the tags, not the first folder
        idx = np.flatnonzero(have)[np.linspace(0, int(have.sum()) - 1, args.n).round().astype(int)]
    x, y = x_all[idx], np.array([tags.index(t) for _, t in ds.items])[idx]
    stored = np.stack([stored_by_sha[s] for s in sha_all[idx]])
    head = shipped_head(args.model / "model.onnx")

    res: dict[str, Any] = {
        "benchmark": "bench_int8_cpu", "python": platform.python_version(), "cpu_flags": cpu_flags(),
        "cpu": platform.processor() or platform.machine(), "onnxruntime": __import__("onnxruntime").__version__,
        "landuse": __version__, "load_average": os.getloadavg(), "threads": args.threads,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "n_images": len(idx),
        "stored_features": "landuse/models/default/features.npz (float16, computed on the build machine)",
        "shipped_quantization": None, "variants": {}, "plots_per_s_1thread_batch8": {},
    }
    import onnx

    res["shipped_quantization"] = {p.key: p.value for p in onnx.load(str(args.model / "model.onnx")).metadata_props
                                   }.get("quantization")
    feats: dict[str, np.ndarray] = {"stored": stored}
    with tempfile.TemporaryDirectory(prefix="landuse-int8cpu-") as tmp:
        work = Path(tmp)
        fp32 = export_linear_model(work / "fp32.onnx", np.zeros((len(tags), 1280), np.float32),
                                   np.zeros(len(tags), np.float32), "landuse-default", __version__)
        cal = calibration_set(x_all, 64, 0)  # the recipe: calibration_set(x, 64, recipe.seed)
        graphs: dict[str, tuple[Path, bool]] = {
            "fp32": (fp32, True),
            "shipped_int8": (args.model / "model.onnx", True),
            "shipped_int8_emulated": (args.model / "model.onnx", False),
        }
        say("quantising: U8S8 (the recipe), reduce_range, U8U8")
        graphs["requant_u8s8"] = (quantize_int8(fp32, work / "u8s8.onnx", cal), True)
        graphs["reduce_range"] = (quantize_int8(fp32, work / "rr.onnx", cal, reduce_range=True), True)
        graphs["reduce_range_emulated"] = (work / "rr.onnx", False)
        if not args.no_u8u8:
            graphs["u8u8"] = (quantize_int8(fp32, work / "u8u8.onnx", cal, weight_type="uint8"), True)
            graphs["u8u8_emulated"] = (work / "u8u8.onnx", False)
        res["kernel_probe"] = kernel_probe(work, args.threads)
        say(f"kernel probe (1x1 QDQ Conv, u8 255 x s8 w, 64 channels): {res['kernel_probe']}")
        res["requant_vs_shipped_initializers"] = initializer_diff(work / "u8s8.onnx", args.model / "model.onnx")
        say(f"re-quantised U8S8 vs shipped initializers: {res['requant_vs_shipped_initializers']}")
        for name, (path, opt) in graphs.items():
            sess = session(path, args.threads, opt)
            feats[name] = features(sess, x)
            if opt:
                res["plots_per_s_1thread_batch8"][name] = round(plots_per_s(session(path, 1, True)), 1)
            say(f"{name}: features of {len(x)} images"
                + (f"; {res['plots_per_s_1thread_batch8'][name]} plots/s (1 thread)" if opt else ""))
    speed = res["plots_per_s_1thread_batch8"]
    res["speed_ratio_to_shipped_int8"] = {k: round(v / speed["shipped_int8"], 3) for k, v in speed.items()}
    for name, f in feats.items():
        res["variants"][name] = {"vs_fp32": compare(f, feats["fp32"], head, y),
                                 "vs_stored": compare(f, stored, head, y)}
    # the same graph with integer kernels on this CPU vs emulated in float; and the VNNI build's
    pairs = [("shipped_int8", "shipped_int8_emulated"), ("stored", "shipped_int8_emulated"),
             ("stored", "shipped_int8"), ("requant_u8s8", "shipped_int8"),
             ("reduce_range", "reduce_range_emulated"), ("u8u8", "u8u8_emulated")]
    res["consistency"] = {f"{a} vs {b}": compare(feats[a], feats[b], head, y)
                          for a, b in pairs if a in feats and b in feats}
    res["seconds"] = round(time.perf_counter() - t0, 1)

    print(f"\nCPU flags {res['cpu_flags']}; {len(idx)} training images; shipped: {res['shipped_quantization']}")
    print(f"{'variant':24s} {'cos/fp32 med':>12s} {'min':>6s} {'relL2 med':>9s} {'p95':>6s} {'label=fp32':>10s} "
          f"{'cos/stored med':>14s} {'min':>6s} {'relL2 med':>9s} {'label=stored':>12s} {'acc':>6s} {'plots/s':>8s}")
    for name, v in res["variants"].items():
        a, b = v["vs_fp32"], v["vs_stored"]
        print(f"{name:24s} {a['cosine_median']:12.4f} {a['cosine_min']:6.3f} {a['rel_l2_median']:9.4f} "
              f"{a['rel_l2_p95']:6.3f} {a['top_label_agreement']:10.3f} {b['cosine_median']:14.4f} "
              f"{b['cosine_min']:6.3f} {b['rel_l2_median']:9.4f} {b['top_label_agreement']:12.3f} "
              f"{a['accuracy']:6.3f} {speed.get(name, float('nan')):8.1f}")
    print("\nsame graph, integer kernels vs float emulation (and the stored VNNI features):")
    for name, c in res["consistency"].items():
        print(f"  {name:44s} cosine median {c['cosine_median']:.4f} min {c['cosine_min']:.4f}  "
              f"rel L2 median {c['rel_l2_median']:.4f} max {c['rel_l2_max']:.4f}  labels {c['top_label_agreement']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {args.out} ({res['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
