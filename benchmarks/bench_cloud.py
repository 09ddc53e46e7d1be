"""Cloud backend under a quota: sustained rate as a fraction of the quota, and plots lost.

Starts the fault-injecting Custom Vision server (tests/fakecv.py) in its own process, enforcing
20 requests/s over any sliding 1-second window and answering a set fraction of requests with
429 (Retry-After: 1) and 503 at random; classifies N distinct plots through
:class:`landuse.classify.customvision.CustomVisionClassifier` (tier S0, NoStore) from one or
more worker processes sharing the machine's rate limiter. Targets: rate >= 0.95 of the quota,
0 plots lost, 0 quota rejections.

    .venv/bin/python benchmarks/bench_cloud.py [--plots 600] [--fault-rate 0.02] [--processes 1 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from landuse.classify.customvision import CustomVisionClassifier, CustomVisionConfig  # noqa: E402
from tests.fakecv import colour_probabilities, random_plots  # noqa: E402

KEY = "bench-key"
QUOTA = 20.0


def _worker(args: tuple[str, str, str, int, int, int]) -> dict:
    endpoint, project, cache_dir, n, seed, tags = args
    os.environ["LANDUSE_CV_PREDICTION_KEY"] = KEY
    cfg = CustomVisionConfig(endpoint=endpoint, project_id=project, published_name="Iteration1", tier="S0",
                             cache=False, cache_dir=cache_dir, labels=("Barren", "Cultivated", "Developed"),
                             max_retries=10)
    clf = CustomVisionClassifier(cfg)
    clf.check_tags()  # the probe, before the clock starts
    plots = random_plots(n, seed=seed)
    t0 = time.time()
    probs = clf.predict(plots)
    t1 = time.time()
    want = np.stack([colour_probabilities(px, tags) for px in plots])
    correct = int(np.isclose(probs, want, atol=1e-6).all(axis=1).sum())
    clf.close()
    s = clf.stats
    late = clf._limiter.late if clf._limiter is not None else 0
    return {"late_wakes": late, "t0": t0, "t1": t1, "plots": n, "correct": correct, "calls": s.calls, "retries": s.retries,
            "throttled": s.throttled, "server_errors": s.server_errors, "transport_errors": s.transport_errors}


def run(plots: int, fault_rate: float, processes: int, seed: int) -> dict:
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fakecv", "--key", KEY, "--quota-tps", str(QUOTA),
         "--p429", str(fault_rate / 2), "--p503", str(fault_rate / 2), "--retry-after", "1", "--seed", str(seed)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        endpoint, project = server.stdout.readline().split()
        with tempfile.TemporaryDirectory() as cache_dir:
            share = [plots // processes + (i < plots % processes) for i in range(processes)]
            jobs = [(endpoint, project, cache_dir, n, seed * 100 + i, 3) for i, n in enumerate(share)]
            with mp.get_context("spawn").Pool(processes) as pool:
                results = pool.map(_worker, jobs)
        with urllib.request.urlopen(endpoint + "/_stats") as r:
            stats = json.loads(r.read())
    finally:
        server.terminate()
        server.wait()
    t0, t1 = min(r["t0"] for r in results), max(r["t1"] for r in results)
    correct = sum(r["correct"] for r in results)
    # requests of the measured run (the tag probes came before t0), over the run's wall time
    span = t1 - t0
    requests = stats["requests"] - processes
    return {
        "plots": plots,
        "processes": processes,
        "fault_rate": fault_rate,
        "quota_tps": QUOTA,
        "wall_s": round(t1 - t0, 3),
        "server_requests": requests,
        "server_statuses": stats["statuses"],
        "quota_rejections": stats["quota_rejections"],
        "max_requests_in_any_1s": stats["max_in_window"],
        "request_rate_fraction_of_quota": round(requests / span / QUOTA, 4) if span > 0 else None,
        "plot_rate_fraction_of_quota": round(plots / (t1 - t0) / QUOTA, 4),
        "plots_lost": plots - correct,
        "duplicates_answered": stats["duplicates"],
        "client": {k: sum(r[k] for r in results) for k in ("calls", "retries", "throttled", "server_errors", "transport_errors", "late_wakes")},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plots", type=int, default=600)
    ap.add_argument("--fault-rate", type=float, default=0.02, help="fraction of requests answered 429 or 503 (half each)")
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_cloud.json")
    a = ap.parse_args()
    rows = []
    for p in a.processes:
        row = run(a.plots, a.fault_rate, p, a.seed)
        rows.append(row)
        print(
            f"{p} process(es), {a.plots} plots, faults {a.fault_rate:.0%}: request rate {row['request_rate_fraction_of_quota']:.3f} "
            f"of the {QUOTA:g} TPS quota (target >= 0.95), plot rate {row['plot_rate_fraction_of_quota']:.3f}, "
            f"lost {row['plots_lost']} (target 0), quota rejections {row['quota_rejections']}, "
            f"max in 1 s {row['max_requests_in_any_1s']}, statuses {row['server_statuses']}"
        )
    result = {
        "benchmark": "bench_cloud",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "targets": {"request_rate_fraction_of_quota": ">= 0.95", "plots_lost": 0},
        "runs": rows,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
