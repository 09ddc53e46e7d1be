"""The default model's acceptance proxies, through the real pipeline, against a named baseline.

    nice -n 10 .venv/bin/python benchmarks/bench_model_proxies.py [--model M] [--baseline B] [--name N]

For each model (default: the bundled one; ``--baseline`` e.g. a copy of the previous default):

* ND: ``classify`` both NAIP dates of ``naip_nd_timeseries`` (5 m, RGBN) on one grid, then
  ``change``: share of plots compared whose raw label is the same in both years (unknown counts as
  a label: a plot unknown in both years agrees), the same among plots classified in both years,
  share called Developed per year, share unknown, the resolution warning, and the share
  ``change`` marks uncertain;
* ``wv_1m_patches``: how many of the 16 real forest / pasture plots are flagged unknown;
* plots/s of the model on one thread (batch 8), onnxruntime.

Writes ``benchmarks/results/model_proxies_<name>.json`` and prints the figures.
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

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_recipes import cpu_flags  # noqa: E402


def nd_proxies(model: str, work: Path) -> dict:
    import pandas as pd

    from landuse.change import compare, load_run, summarize
    from landuse.grid import PlotGrid
    from landuse.pipeline import classify_imagery

    files = sorted((SHARED / "rasters" / "naip_nd_timeseries").glob("*.tif"))
    grid = PlotGrid.from_rasters(files)
    grid.save(work / "grid.json")
    runs, tables, summaries = [], [], []
    for f, year in zip(files, ("2010", "2018"), strict=True):
        out = work / year
        r = classify_imagery([f], out, period=year, model=None if model == "default" else model,
                             grid_file=work / "grid.json", scheduler="threads", quiet=True)
        runs.append(out)
        summaries.append(r.summary)
        tables.append(pd.read_parquet(out / "plots.parquet"))
    a, b = tables
    m = a.merge(b, on="plot_id", suffixes=("_a", "_b"))
    scored = {"classified", "unknown"}
    both = m.status_a.isin(scored) & m.status_b.isin(scored)
    cls_both = (m.status_a == "classified") & (m.status_b == "classified")
    comp = compare(load_run(runs[0]), load_run(runs[1]))
    cs = summarize(comp)
    out = {
        "plots_compared": int(both.sum()),
        "agreement_unknown_as_label": float((m.label_a[both] == m.label_b[both]).mean()),
        "agreement_classified_both": float((m.label_a[cls_both] == m.label_b[cls_both]).mean()) if cls_both.any() else None,
        "classified_both": int(cls_both.sum()),
        "change_compared_plots": cs["compared"]["plots"],
        "change_uncertain_plots": cs["uncertain"]["plots"],
        "change_uncertain_share": cs["uncertain"]["plots"] / max(cs["compared"]["plots"], 1),
        "change_changed_plots": cs["changed"]["plots"],
    }
    for year, t, s in zip(("2010", "2018"), tables, summaries, strict=True):
        sc = t[t.status.isin(scored)]
        out[year] = {
            "scored": len(sc),
            "labels": sc.label.value_counts().to_dict(),
            "developed_share": float((sc.label == "Developed").mean()),
            "unknown_share": float((sc.status == "unknown").mean()),
            "unknown_reasons": t[t.status == "unknown"].reason.str.split(" \\(").str[0].str[:40].value_counts().to_dict(),
            "warnings": s.get("warnings", []),
        }
    return out


def wv_proxy(model: str) -> dict:
    from landuse.classify.base import load_classifier
    from landuse.classify.unknown import method_of, predict_with_unknown
    from landuse.training.dataset import load_image

    clf = load_classifier(model)
    files = sorted((SHARED / "wv_1m_patches").glob("*.png"))
    x = np.stack([load_image(p, (224, 224)) for p in files])
    probs, scores = predict_with_unknown(clf, x)
    um = method_of(clf)
    return {"n": len(files), "flagged": int((scores > um.threshold).sum()), "method": um.name,
            "called": {t: int((probs.argmax(1) == i).sum()) for i, t in enumerate(clf.labels)},
            "scores": [round(float(s), 4) for s in scores], "threshold": um.threshold}


def speed(model: str, n: int = 96) -> float:
    from landuse.classify.base import load_classifier
    from landuse.classify.unknown import predict_with_unknown

    clf = load_classifier(model, threads=1, batch_size=8)
    x = np.random.default_rng(0).integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)
    predict_with_unknown(clf, x[:8])
    t0 = time.perf_counter()
    for i in range(0, n, 8):
        predict_with_unknown(clf, x[i : i + 8])
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--name", default="default")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="landuse-proxies-") as tmp:
        res = {"benchmark": "bench_model_proxies", "model": args.model, "name": args.name,
               "python": platform.python_version(), "cpu_flags": cpu_flags(),
               "load_average": os.getloadavg(),
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        res["wv"] = wv_proxy(args.model)
        print(f"wv_1m_patches flagged {res['wv']['flagged']}/16; called {res['wv']['called']}", flush=True)
        res["nd"] = nd_proxies(args.model, Path(tmp))
        nd = res["nd"]
        print(f"ND agreement {nd['agreement_unknown_as_label']:.3f} (classified both: {nd['agreement_classified_both']}), "
              f"Developed {nd['2010']['developed_share']:.3f}/{nd['2018']['developed_share']:.3f}, "
              f"unknown {nd['2010']['unknown_share']:.3f}/{nd['2018']['unknown_share']:.3f}, "
              f"change uncertain {nd['change_uncertain_share']:.3f}", flush=True)
        print(f"  2010 {nd['2010']['labels']}  2018 {nd['2018']['labels']}", flush=True)
        res["plots_per_s_1thread_batch8"] = round(speed(args.model), 1)
        print(f"plots/s (1 thread, batch 8, with the unknown score): {res['plots_per_s_1thread_batch8']}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"model_proxies_{args.name}.json"
    path.write_text(json.dumps(res, indent=1, default=str) + "\n")
    print(f"wrote {path}; cpu flags {res['cpu_flags']}")


if __name__ == "__main__":
    sys.exit(main())
