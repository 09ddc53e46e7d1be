"""plots/s of the default model vs the previous default, one run, 1 and 2 onnxruntime threads.

    .venv/bin/python benchmarks/bench_model_speed.py [--previous /tmp/landuse-prev-default]

The previous default is recovered from git first:
``git show c0e8ab6:landuse/models/default/model.onnx > /tmp/landuse-prev-default/model.onnx``
(and ``labels.txt``, ``metadata_properties.json``, ``cvexport.manifest``).

Each measurement: 96 real AerialSmall plots (every 5th file), batch 8, through
``landuse.classify.unknown.predict_with_unknown`` (what the pipeline calls: probabilities plus the
unknown score; for the previous default that is the probability fallback), after one warm-up
batch. The two models alternate, three repeats per thread count, median reported, so a load
change on the shared machine hits both. Writes ``benchmarks/results/model_speed.json``.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import recipe_data as rd  # noqa: E402
from bench_recipes import cpu_flags  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def measure(model: str, x: np.ndarray, threads: int, batch: int = 8) -> float:
    from landuse.classify.base import load_classifier
    from landuse.classify.unknown import predict_with_unknown

    clf = load_classifier(model, threads=threads, batch_size=batch)
    predict_with_unknown(clf, x[:batch])
    t0 = time.perf_counter()
    for i in range(0, len(x), batch):
        predict_with_unknown(clf, x[i : i + batch])
    return len(x) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--previous", default="/tmp/landuse-prev-default")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--extra", nargs="*", default=[], metavar="NAME=PATH", help="more models to time")
    args = ap.parse_args()
    from landuse.training.dataset import TagDataset, load_image

    ds = TagDataset.open(rd.AERIAL)
    x = np.stack([load_image(p, (224, 224)) for p, _ in ds.items[::5]])[:96]
    models = {"default": "default", "previous_default": args.previous,
              **dict(e.split("=", 1) for e in args.extra)}
    runs: dict[str, dict[str, list[float]]] = {m: {} for m in models}
    load0 = os.getloadavg()
    for threads in (1, 2):
        for _ in range(args.repeats):
            for name, path in models.items():
                runs[name].setdefault(str(threads), []).append(round(measure(path, x, threads), 1))
        print(f"threads {threads}: " + ", ".join(f"{n} {runs[n][str(threads)]}" for n in models), flush=True)
    med = {n: {t: statistics.median(v) for t, v in r.items()} for n, r in runs.items()}
    ratio = {n: {t: round(med[n][t] / med["previous_default"][t], 3) for t in ("1", "2")} for n in models}
    res = {"benchmark": "bench_model_speed", "python": platform.python_version(), "cpu_flags": cpu_flags(),
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "plots": len(x), "batch": 8,
           "load_average_start": load0, "load_average_end": os.getloadavg(), "models": models,
           "plots_per_s_runs": runs, "plots_per_s_median": med, "ratio_over_previous_default": ratio}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "model_speed.json").write_text(json.dumps(res, indent=1) + "\n")
    print(f"median plots/s {med}; over the previous default {ratio}")


if __name__ == "__main__":
    main()
