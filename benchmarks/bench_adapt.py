"""The adaptation curve of ``landuse train DATASET --init default``, on a shifted domain.

Domain: the AerialSmall plots under a strong imagery shift (5 m resolution read back at 1 m,
warm tint R x1.12 B x0.88, gamma 1.3) — another sensor / season / resolution in miniature. The
base model is the bundled default (it saw these plots at 1 m unshifted, so the shift is the only
novelty: read the curve as "how fast a few labels fix a shift", not as cross-county accuracy).
For n = 5, 10, 20 labels per class drawn (seeded) from the shifted plots, the real
``adapt_model`` engine makes a model; it is scored on the shifted plots not drawn; each step's
wall time is the whole ``adapt_model`` call. -> ``benchmarks/results/bench_adapt.json``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import recipe_data as rd  # noqa: E402
from bench_recipes import cpu_flags  # noqa: E402

from landuse.training.features import degrade_resolution  # noqa: E402


def shift(x: np.ndarray) -> np.ndarray:
    d = degrade_resolution(x, 5.0).astype(np.float32) * np.array([1.12, 1.0, 0.88], np.float32)
    return np.clip(255.0 * (np.clip(d, 0, 255) / 255.0) ** 1.3, 0, 255).astype(np.uint8)


def main() -> None:
    from PIL import Image

    from landuse.classify.base import load_classifier
    from landuse.training.linear import adapt_model

    x, y, tags, _, names = rd.aerialsmall()
    xs = shift(x)
    base = load_classifier("default")
    rng = np.random.default_rng(0)
    order = {c: rng.permutation(np.flatnonzero(y == c)) for c in range(len(tags))}
    test = np.setdiff1d(np.arange(len(y)), np.concatenate([o[:20] for o in order.values()]))
    res = {"benchmark": "bench_adapt", "cpu_flags": cpu_flags(), "load_average": os.getloadavg(),
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "domain": "AerialSmall under 5 m + warm tint (1.12, 1, 0.88) + gamma 1.3",
           "test_plots": len(test), "steps": []}
    acc0 = float((base.predict(xs[test]).argmax(1) == y[test]).mean())
    res["steps"].append({"labels_per_class": 0, "accuracy": acc0, "seconds": 0.0})
    print(f"base: {acc0:.3f} on {len(test)} shifted plots", flush=True)
    with tempfile.TemporaryDirectory(prefix="landuse-adapt-bench-") as tmp:
        for n in (5, 10, 20):
            ds = Path(tmp) / f"labels{n}"
            for c, t in enumerate(tags):
                (ds / t).mkdir(parents=True)
                for i in order[c][:n]:
                    Image.fromarray(xs[i]).save(ds / t / f"{names[i]}")
            t0 = time.perf_counter()
            r = adapt_model(ds, Path(tmp) / f"model{n}", "default")
            secs = time.perf_counter() - t0
            clf = load_classifier(Path(tmp) / f"model{n}")
            acc = float((clf.predict(xs[test]).argmax(1) == y[test]).mean())
            res["steps"].append({"labels_per_class": n, "accuracy": acc, "seconds": round(secs, 1),
                                 "label_weight": r.new_weight})
            print(f"{n} labels per class: {acc:.3f} ({secs:.1f} s, weight {r.new_weight:g})", flush=True)
    out = Path(__file__).resolve().parent / "results" / "bench_adapt.json"
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
