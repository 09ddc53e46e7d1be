"""Recipe search for the default model, by proxies a county-memorising model fails.

Every candidate is a linear softmax head on frozen ImageNet EfficientNet-Lite0 pooled features
(cached once per data set and transform, see ``recipe_data.py``), differing in the training views
(clean, colour jitter, resolution degradation 2-6 m, both) and the L2 penalty. For each it writes:

* 5-fold out-of-fold accuracy on AerialSmall (reported, NOT used to select);
* leave-county-out: Developed recall of Los Angeles plots for a head trained without them, and
  of Imperial Developed plots for a head trained without those (clean and at 5 m);
* synthetic shifts of the held-out folds: colour, gamma, blur, 2 m and 5 m resolution;
* ND 2010 vs 2018 (5 m NAIP of one quarter-quad of prairie farmland): share of plots whose raw
  label is the same in both years and share called Developed;
* the out-of-class flag (kNN distance in feature space, threshold at the 98th percentile of
  held-out training plots): share flagged of the held-out folds, of the shifted folds, of the
  16 wv_1m_patches forest plots (never in training or calibration) and of ND.

Usage: ``nice -n 10 .venv/bin/python benchmarks/bench_recipes.py`` -> ``benchmarks/results/recipe_round1.json``.
Needs ``../shared/data`` and the ``train`` extra (torch, for the colour augmentation draws).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import recipe_data as rd  # noqa: E402

from landuse.classify.unknown import KnnScorer  # noqa: E402
from landuse.training.features import degrade_resolution  # noqa: E402
from landuse.training.head import fit_head  # noqa: E402
from landuse.training.local import colour_shifts, stratified_folds  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_flags() -> dict[str, bool]:
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags")[1].split("\n")[0].split()
    except (OSError, IndexError):
        flags = []
    return {k: k in flags for k in ("avx2", "avx512f", "avx512_vnni", "avx_vnni")}


def colour_views(x: np.ndarray, n: int, seed: int, res: bool) -> list[np.ndarray]:
    """``n`` colour-jitter draws (the training augmentation of landuse.training.local), optionally
    followed by a random resolution degradation of U(1, 6) m."""
    import torch

    from landuse.training.local import augment_batch

    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        v = np.concatenate([augment_batch(torch.from_numpy(x[i : i + 32]), gen, 224).round().clamp(0, 255)
                            .to(torch.uint8).permute(0, 2, 3, 1).numpy() for i in range(0, len(x), 32)])
        if res:
            g = rng.uniform(1.0, 6.0, len(v))
            v = np.concatenate([degrade_resolution(v[i : i + 1], float(g[i])) for i in range(len(v))])
        out.append(v)
    return out


def shifts() -> dict[str, object]:
    s = dict(colour_shifts())

    def gamma(k: float):  # noqa: ANN202
        return lambda x: np.clip(255.0 * (x / 255.0) ** k, 0, 255).astype(np.uint8)

    s["gamma 0.7"] = gamma(0.7)
    s["gamma 1.4"] = gamma(1.4)
    s["2 m"] = lambda x: degrade_resolution(x, 2.0)
    s["5 m"] = lambda x: degrade_resolution(x, 5.0)
    return s


def main() -> None:
    t_start = time.perf_counter()
    x, y, tags, county, names = rd.aerialsmall()
    n_cls = len(tags)
    print(f"AerialSmall {len(y)} plots {tags}", flush=True)
    V: dict[str, np.ndarray] = {"clean": rd.cached("as_clean", lambda: x)}
    for g in (2, 3, 4, 5, 6):
        V[f"res{g}"] = rd.cached(f"as_res{g}", lambda g=g: degrade_resolution(x, g))
    col = None
    for i in range(4):
        def mk(i: int = i) -> np.ndarray:
            nonlocal col
            if col is None:
                col = colour_views(x, 4, 11, res=False)
            return col[i]
        V[f"col{i}"] = rd.cached(f"as_col{i}", mk)
    colres = None
    for i in range(2):
        def mk2(i: int = i) -> np.ndarray:
            nonlocal colres
            if colres is None:
                colres = colour_views(x, 2, 23, res=True)
            return colres[i]
        V[f"colres{i}"] = rd.cached(f"as_colres{i}", mk2)
    sub = np.arange(0, len(y), 2)  # shifts on every second plot (250), as in the model card
    S = {name: rd.cached("as_shift2_" + name.replace(" ", "_").replace("(", "").replace(")", "").replace(",", ""),
                         lambda fn=fn: fn(x[sub])) for name, fn in shifts().items()}
    pos_sub = np.full(len(y), -1)
    pos_sub[sub] = np.arange(len(sub))
    wv = rd.cached("wv", rd.wv_patches)
    nd: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for year in ("2010", "2018"):
        rgb, _, ids = rd.nd_plots_cached(year)
        nd[year] = (rd.cached(f"nd{year}", lambda rgb=rgb: rgb), ids)
    print(f"features ready ({time.perf_counter() - t_start:.0f} s)", flush=True)

    candidates = {
        "clean": ["clean"],
        "colour": ["clean", "col0", "col1", "col2", "col3"],
        "res": ["clean", "res2", "res3", "res4", "res5", "res6"],
        "colour+res": ["clean", "col0", "col1", "col2", "col3", "colres0", "colres1", "res2", "res4", "res6"],
        "res+colres": ["clean", "res2", "res3", "res4", "res5", "res6", "colres0", "colres1"],
    }
    l2s = (1e-2, 1e-1, 1.0)
    fold = stratified_folds(y, 5, 0)
    la = (county == "ca037") & (y == tags.index("Developed"))
    imp_dev = (county == "ca025") & (y == tags.index("Developed"))
    dev = tags.index("Developed")
    common = np.intersect1d(nd["2010"][1], nd["2018"][1])
    pos = {yr: {pid: i for i, pid in enumerate(nd[yr][1])} for yr in nd}
    i10 = np.array([pos["2010"][p] for p in common])
    i18 = np.array([pos["2018"][p] for p in common])

    def train(idx: np.ndarray, views: list[str], l2: float):  # noqa: ANN202
        f = np.concatenate([V[v][idx] for v in views])
        yy = np.tile(y[idx], len(views))
        return fit_head(f, yy, n_cls, l2=l2)

    results = []
    for cname, views in candidates.items():
        for l2 in l2s:
            t0 = time.perf_counter()
            r: dict[str, object] = {"candidate": cname, "views": views, "l2": l2}
            oof = np.zeros((len(y), n_cls), np.float32)
            oof_shift = {k: np.zeros((len(sub), n_cls), np.float32) for k in S}
            score_oof = np.zeros(len(y))
            score_shift = {k: np.zeros(len(sub)) for k in S}
            for k in range(5):
                tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
                h = train(tr, views, l2)
                oof[te] = h.probs(V["clean"][te])
                knn = KnnScorer.fit(np.concatenate([V[v][tr] for v in views]))
                score_oof[te] = knn.score(V["clean"][te])
                ts = pos_sub[te][pos_sub[te] >= 0]
                for s, fs in S.items():
                    oof_shift[s][ts] = h.probs(fs[ts])
                    score_shift[s][ts] = knn.score(fs[ts])
            thr = float(np.quantile(score_oof, 0.98))
            r["cv_accuracy"] = float((oof.argmax(1) == y).mean())
            r["shift_accuracy"] = {s: float((p.argmax(1) == y[sub]).mean()) for s, p in oof_shift.items()}
            r["shift_accuracy_min"] = min(r["shift_accuracy"].values())
            r["shift_flagged"] = {s: float((v > thr).mean()) for s, v in score_shift.items()}
            # leave-county-out
            lco = {}
            for name, held in (("los_angeles_developed", la), ("imperial_developed", imp_dev)):
                h = train(np.flatnonzero(~held), views, l2)
                lco[name] = {"n": int(held.sum()),
                             "recall": float((h.probs(V["clean"][held]).argmax(1) == dev).mean()),
                             "recall_5m": float((h.probs(V["res5"][held]).argmax(1) == dev).mean()),
                             "recall_2m": float((h.probs(V["res2"][held]).argmax(1) == dev).mean())}
            r["leave_county_out"] = lco
            # all data: ND, wv
            allidx = np.arange(len(y))
            h = train(allidx, views, l2)
            knn = KnnScorer.fit(np.concatenate([V[v] for v in views]))
            p10, p18 = h.probs(nd["2010"][0]).argmax(1), h.probs(nd["2018"][0]).argmax(1)
            s10, s18 = knn.score(nd["2010"][0]), knn.score(nd["2018"][0])
            r["nd"] = {
                "plots_compared": len(common),
                "agreement": float((p10[i10] == p18[i18]).mean()),
                "developed_2010": float((p10 == dev).mean()), "developed_2018": float((p18 == dev).mean()),
                "counts_2010": {t: int((p10 == i).sum()) for i, t in enumerate(tags)},
                "counts_2018": {t: int((p18 == i).sum()) for i, t in enumerate(tags)},
                "flagged_2010": float((s10 > thr).mean()), "flagged_2018": float((s18 > thr).mean()),
            }
            pw = h.probs(wv)
            r["wv"] = {"flagged": int((knn.score(wv) > thr).sum()), "n": len(wv),
                       "called": {t: int((pw.argmax(1) == i).sum()) for i, t in enumerate(tags)},
                       "max_prob_mean": float(pw.max(1).mean())}
            r["heldout_flagged"] = float((score_oof > thr).mean())
            r["seconds"] = round(time.perf_counter() - t0, 1)
            results.append(r)
            print(f"{cname:11s} l2={l2:<5g} cv {r['cv_accuracy']:.3f} shiftmin {r['shift_accuracy_min']:.3f} "
                  f"5m {r['shift_accuracy']['5 m']:.3f} LA {lco['los_angeles_developed']['recall']:.3f}/"
                  f"{lco['los_angeles_developed']['recall_5m']:.3f} Imp {lco['imperial_developed']['recall']:.3f}/"
                  f"{lco['imperial_developed']['recall_5m']:.3f} ND agree {r['nd']['agreement']:.3f} "
                  f"dev {r['nd']['developed_2010']:.3f}/{r['nd']['developed_2018']:.3f} "
                  f"{r['nd']['counts_2010']} wv {r['wv']['flagged']}/16 {r['wv']['called']} "
                  f"held {r['heldout_flagged']:.3f} ndflag {r['nd']['flagged_2010']:.2f} "
                  f"5mflag {r['shift_flagged']['5 m']:.2f}", flush=True)
    out = {"benchmark": "bench_recipes", "python": platform.python_version(), "cpu_flags": cpu_flags(),
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "nd_plots": {k: len(v[1]) for k, v in nd.items()},
           "unknown_threshold_quantile": 0.98, "results": results,
           "seconds": round(time.perf_counter() - t_start, 1)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "recipe_round1.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS / 'recipe_round1.json'}; cpu flags {out['cpu_flags']}")


if __name__ == "__main__":
    main()
