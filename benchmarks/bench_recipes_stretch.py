"""Second round of the recipe search: the per-plot 2-98 % stretch, on the features cached by
bench_recipes.py (run that first; this adds the stretched images' features to the cache).

Candidates: stretch + clean views (L2 0.01 / 0.1 / 1), stretch + 3 m and 5 m views, against the
unstretched clean / colour heads. Same proxies (out-of-fold CV, 5 m shift, leave-county-out at
1 m and 5 m, ND raw agreement and Developed share, wv_1m_patches kNN flag, the kNN flag's ND
share), plus the canopy evidence's thresholds. -> benchmarks/results/recipe_stretch.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import recipe_data as rd  # noqa: E402
from bench_recipes import cpu_flags, shifts  # noqa: E402

from landuse.classify.unknown import KnnScorer, canopy_share, water_share  # noqa: E402
from landuse.training.features import degrade_resolution  # noqa: E402
from landuse.training.head import fit_head  # noqa: E402
from landuse.training.local import stratified_folds  # noqa: E402


def stretch(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32)
    lo = np.percentile(a, 2, axis=(1, 2), keepdims=True)
    hi = np.percentile(a, 98, axis=(1, 2), keepdims=True)
    return np.clip((a - lo) / np.maximum(hi - lo, 1) * 255, 0, 255).astype(np.uint8)


def main() -> None:
    x, y, tags, county, names = rd.aerialsmall()
    c = rd.CACHE
    V = {n: np.load(c / f"as_{n}.npy") for n in ("clean", "res5", "col0", "col1", "col2", "col3")}
    V["st_clean"] = rd.cached("st_clean", lambda: stretch(x))
    V["st_res5"] = rd.cached("st_res5", lambda: stretch(degrade_resolution(x, 5)))
    V["st_res3"] = rd.cached("st_res3", lambda: stretch(degrade_resolution(x, 3)))
    wv_img = rd.wv_patches()
    wv = {"raw": np.load(c / "wv.npy"), "st": rd.cached("st_wv", lambda: stretch(wv_img))}
    nd = {}
    for yr in ("2010", "2018"):
        rgb = np.load(c / f"nd{yr}_rgb.npy")
        nir = np.load(c / f"nd{yr}_nir.npy")
        g = rgb[..., 1].reshape(len(rgb), 56, 4, 56, 4).mean((2, 4))
        n = nir.reshape(len(nir), 56, 4, 56, 4).mean((2, 4))
        nd[yr] = ({"raw": np.load(c / f"nd{yr}.npy"), "st": rd.cached("st_nd" + yr, lambda rgb=rgb: stretch(rgb))},
                  water_share(g, n), np.load(c / f"nd{yr}_ids.npy"))
    common = np.intersect1d(nd["2010"][2], nd["2018"][2])
    i10 = np.array([list(nd["2010"][2]).index(p) for p in common])
    i18 = np.array([list(nd["2018"][2]).index(p) for p in common])
    sub = np.arange(0, len(y), 2)  # shifts on every second plot, as bench_recipes.py
    pos_sub = np.full(len(y), -1)
    pos_sub[sub] = np.arange(len(sub))
    S = {name: {"raw": np.load(c / ("as_shift2_" + name.replace(" ", "_").replace("(", "").replace(")", "")
                                     .replace(",", "") + ".npy")),
                "st": rd.cached("st_shift2_" + name.replace(" ", "_").replace("(", "").replace(")", "").replace(",", ""),
                                lambda fn=fn: stretch(fn(x[sub])))}
         for name, fn in shifts().items()}
    fold = stratified_folds(y, 5, 0)
    la = (county == "ca037") & (y == 2)
    imp = (county == "ca025") & (y == 2)
    cands = [("clean", ["clean"], 0.1, "raw"), ("colour", ["clean", "col0", "col1", "col2", "col3"], 0.1, "raw"),
             ("stretch clean", ["st_clean"], 0.01, "st"), ("stretch clean", ["st_clean"], 0.1, "st"),
             ("stretch clean", ["st_clean"], 1.0, "st"), ("stretch clean+3m", ["st_clean", "st_res3"], 0.1, "st"),
             ("stretch clean+3m+5m", ["st_clean", "st_res3", "st_res5"], 0.1, "st")]
    results = []
    for name, views, l2, kind in cands:
        tc, t5 = ("st_clean", "st_res5") if kind == "st" else ("clean", "res5")
        oof, oof5, sc = np.zeros(len(y), int), np.zeros(len(y), int), np.zeros(len(y))
        shift_ok = {k: 0 for k in S}
        for k in range(5):
            tr, te = fold != k, fold == k
            hk = fit_head(np.concatenate([V[v][tr] for v in views]), np.tile(y[tr], len(views)), 3, l2=l2)
            oof[te], oof5[te] = hk.probs(V[tc][te]).argmax(1), hk.probs(V[t5][te]).argmax(1)
            ts = pos_sub[np.flatnonzero(te)]
            ts = ts[ts >= 0]
            for shift_name, f in S.items():
                shift_ok[shift_name] += int((hk.probs(f[kind][ts]).argmax(1) == y[sub][ts]).sum())
            sc[te] = KnnScorer.fit(np.concatenate([V[v][tr] for v in views])).score(V[tc][te])
        lco = {}
        for key, held in (("los_angeles_developed", la), ("imperial_developed", imp)):
            hk = fit_head(np.concatenate([V[v][~held] for v in views]), np.tile(y[~held], len(views)), 3, l2=l2)
            lco[key] = {"recall": float((hk.probs(V[tc][held]).argmax(1) == 2).mean()),
                        "recall_5m": float((hk.probs(V[t5][held]).argmax(1) == 2).mean())}
        h = fit_head(np.concatenate([V[v] for v in views]), np.tile(y, len(views)), 3, l2=l2)
        knn = KnnScorer.fit(np.concatenate([V[v] for v in views]))
        thr = float(np.quantile(sc, 0.98))
        p = {yr: h.probs(nd[yr][0][kind]).argmax(1) for yr in nd}
        r = {"candidate": name, "views": views, "l2": l2, "cv_accuracy": float((oof == y).mean()),
             "accuracy_5m": float((oof5 == y).mean()), "leave_county_out": lco,
             "shift_accuracy": {n_: v / len(sub) for n_, v in shift_ok.items()},
             "nd_agreement": float((p["2010"][i10] == p["2018"][i18]).mean()),
             "nd_developed": {yr: float((p[yr] == 2).mean()) for yr in p},
             "nd_counts": {yr: np.bincount(p[yr], minlength=3).tolist() for yr in p},
             "nd_knn_flagged_q98": {yr: float((knn.score(nd[yr][0][kind]) > thr).mean()) for yr in nd},
             "wv_knn_flagged_q98": int((knn.score(wv[kind]) > thr).sum()),
             "wv_called": np.bincount(h.probs(wv[kind]).argmax(1), minlength=3).tolist()}
        results.append(r)
        print(json.dumps(r), flush=True)
    cs, cw = canopy_share(x), canopy_share(wv_img)
    canopy = {str(q): {"threshold": float(np.quantile(cs, q)), "wv_flagged": int((cw > np.quantile(cs, q)).sum()),
                       "training_flagged": float((cs > np.quantile(cs, q)).mean())} for q in (0.98, 0.99, 0.995)}
    print("canopy", canopy)
    out = {"benchmark": "bench_recipes_stretch", "cpu_flags": cpu_flags(), "tags": tags,
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results, "canopy": canopy}
    (Path(__file__).resolve().parent / "results" / "recipe_stretch.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
