"""Bare inference rate (plots/s) of the default model, fp32 and int8, at batch 1 / 8 / 32 with
1 and 2 onnxruntime threads (``intra_op_num_threads``; inter-op 1, sequential).

    python benchmarks/bench_inference.py                      # default model + its other precision
    python benchmarks/bench_inference.py --min-time 3 --reps 5

The default model folder holds one precision (``landuse/models/default``). The other one is the
file ``landuse.training.default_model`` leaves in ``benchmarks/data/default_model_alt.onnx``
(gitignored); pass ``--fp32`` / ``--int8`` to measure other files. Input is random uint8 plots
converted once to float32 NCHW (preprocessing is not timed). Each cell is the median of ``--reps``
timed runs of at least ``--min-time`` seconds. Baseline: performance.md section 1 (164 / 276
plots/s fp32 and 303 / 493 int8 at batch 1 with 1 / 2 threads, on a quiet machine of this kind).

Writes benchmarks/results/bench_inference.json and prints a table and the int8/fp32 ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT = ROOT / "landuse" / "models" / "default"
ALT = ROOT / "benchmarks" / "data" / "default_model_alt.onnx"
RESULTS = ROOT / "benchmarks" / "results"
BASELINE = {("fp32", 1, 1): 164.2, ("fp32", 2, 1): 276.2, ("fp32", 1, 8): 147.1, ("fp32", 2, 8): 283.4,
            ("fp32", 1, 32): 137.6, ("fp32", 2, 32): 274.4, ("int8", 1, 1): 295.0, ("int8", 2, 1): 476.3,
            ("int8", 1, 8): 291.2, ("int8", 2, 8): 586.3, ("int8", 1, 32): 276.3, ("int8", 2, 32): 539.8}


def precision_of(path: Path) -> str:
    """``int8`` when the graph holds QuantizeLinear nodes, else ``fp32``."""
    import onnx

    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    return "int8" if "QuantizeLinear" in ops else "fp32"


def rate(path: Path, threads: int, batch: int, size: int, min_time: float, reps: int) -> float:
    """Median plots/s of ``reps`` timed loops (each >= ``min_time`` s) after a warm-up."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).integers(0, 256, (batch, 3, size, size)).astype(np.float32)
    for _ in range(3):
        sess.run(None, {name: x})
    out = []
    for _ in range(reps):
        n, t0 = 0, time.perf_counter()
        while True:
            sess.run(None, {name: x})
            n += batch
            dt = time.perf_counter() - t0
            if dt >= min_time:
                break
        out.append(n / dt)
    return statistics.median(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fp32", type=Path, default=None)
    ap.add_argument("--int8", type=Path, default=None)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)

    models: dict[str, Path] = {}
    for p in (DEFAULT / "model.onnx", ALT):
        if p.exists():
            models.setdefault(precision_of(p), p)
    if args.fp32:
        models["fp32"] = args.fp32
    if args.int8:
        models["int8"] = args.int8
    if not models:
        print(f"no model: {DEFAULT}/model.onnx is missing; train it (python -m landuse.training.default_model)")
        return 1
    size = 224
    rows = []
    print(f"{'model':<6} {'threads':>7} {'batch':>5} {'plots/s':>9} {'baseline':>9} {'ratio':>6}")
    for prec in ("fp32", "int8"):
        if prec not in models:
            print(f"{prec}: no model file (pass --{prec} PATH)")
            continue
        for t in args.threads:
            for b in args.batches:
                r = rate(models[prec], t, b, size, args.min_time, args.reps)
                base = BASELINE.get((prec, t, b))
                rows.append({"precision": prec, "threads": t, "batch": b, "plots_per_s": round(r, 1),
                             "baseline": base, "model": str(models[prec].relative_to(ROOT)
                                                            if models[prec].is_relative_to(ROOT) else models[prec]),
                             "model_bytes": models[prec].stat().st_size})
                print(f"{prec:<6} {t:>7} {b:>5} {r:>9.1f} {base or float('nan'):>9.1f} "
                      f"{(r / base) if base else float('nan'):>6.2f}", flush=True)
    by = {(r["precision"], r["threads"], r["batch"]): r["plots_per_s"] for r in rows}
    ratios = {f"t{t}_b{b}": round(by[("int8", t, b)] / by[("fp32", t, b)], 2)
              for t in args.threads for b in args.batches if ("int8", t, b) in by and ("fp32", t, b) in by}
    if ratios:
        print("int8 / fp32 speed-up: " + ", ".join(f"{k} {v}x" for k, v in ratios.items()))
    load = os.getloadavg()
    print(f"load average during the run: {load[0]:.2f} (2 cores; > 2 means other work competed)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"benchmark": "bench_inference", "rows": rows, "int8_over_fp32": ratios,
           "min_time_s": args.min_time, "reps": args.reps, "loadavg_1min_end": load[0],
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "onnxruntime": __import__("onnxruntime").__version__},
           "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (RESULTS / "bench_inference.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS / 'bench_inference.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
