"""Held-out AerialSmall folds, synthetic shifts of them and leave-county-out, for the shipped recipe
(and, with ``--previous``, the previous default's fine-tune recipe), side by side.

    nice -n 10 .venv/bin/python benchmarks/bench_model_heldout.py [--graph shipped|fp32|PATH] [--previous] [--name N]

Shipped recipe (``landuse.training.linear.fit_recipe``, the code path ``build_linear_model`` uses):
for each of the 5 stratified folds (seed 0, as the recipe), the logistic-regression head AND the
unknown thresholds (canopy-share quantile, kNN distance) are fitted on the other four folds only;
the held-out fold is scored: accuracy (arg-max), share flagged unknown, share right and not
flagged. Features come from the ``features`` output of ``--graph``: ``shipped`` = the shipped
``landuse/models/default/model.onnx`` (its trunk is frozen, the head does not change the features;
for an int8 graph the activation ranges were calibrated on 64 of the 500 plots, the one thing not
refitted per fold), ``fp32`` = the stretch + trunk exported in fp32, or any model path with a
``features`` output.

Synthetic shifts (colour, gamma, blur, 2 m, 5 m) are applied to every second plot (250, as in
``bench_recipes.py``) and scored by the head and thresholds of the fold that held it out.
Leave-county-out: trained (head and thresholds) without Los Angeles Developed, those scored;
trained without Imperial Developed, those scored (at 1 m and 5 m).

``--previous``: the previous default's recipe (``landuse.training.local``: EfficientNet-Lite0,
15 blocks frozen, top block + head fine-tuned 3 epochs with the colour / blur augmentation, 4
cached augmentation views, the epoch count it shipped with), retrained per fold on the same folds
and scored on the same shifted plots (torch fp32; it shipped int8); it has no unknown flag of its
own, so "flagged" is the probability fallback (top probability < 0.5).

``wv_1m_patches`` stay out of everything here. Features are cached under
``$LANDUSE_FEATURE_CACHE`` (default ``/tmp/landuse-model-features``).
Writes ``benchmarks/results/model_heldout_<name>.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import recipe_data as rd  # noqa: E402
from bench_recipes import cpu_flags, shifts  # noqa: E402

from landuse.training.features import degrade_resolution  # noqa: E402
from landuse.training.linear import LinearRecipe, fit_recipe  # noqa: E402
from landuse.training.local import stratified_folds  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SHIPPED = ROOT / "landuse" / "models" / "default" / "model.onnx"
PREVIOUS_EPOCHS = 3  # the previous default's final_epochs (default_model_cv.json)


def say(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def graph_path(kind: str) -> Path:
    """The ONNX graph whose ``features`` output the recipe is fitted on."""
    if kind in ("shipped", "int8"):  # int8: the name when the shipped model was int8
        return SHIPPED
    if kind == "fp32":
        from landuse import __version__
        from landuse.training.features import export_linear_model

        p = rd.CACHE / "fp32_stretch_lite0.onnx"
        if not p.exists():
            rd.CACHE.mkdir(parents=True, exist_ok=True)
            export_linear_model(p, np.zeros((3, 1280), np.float32), np.zeros(3, np.float32), "fp32", __version__)
        return p
    return Path(kind)


def graph_features(path: Path, x: np.ndarray, name: str) -> np.ndarray:
    """``features`` of uint8 plots ``x`` through ``path``, cached by graph content and ``name``."""
    from landuse.training.linear import _graph_features

    tag = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    p = rd.CACHE / f"g{tag}_{name}.npy"
    if p.exists():
        return np.load(p)
    t0 = time.perf_counter()
    f = _graph_features(path, x)
    rd.CACHE.mkdir(parents=True, exist_ok=True)
    np.save(p, f)
    say(f"  features {name}: {len(x)} plots, {len(x) / (time.perf_counter() - t0):.0f} plots/s")
    return f


def shifted_images(x: np.ndarray, sub: np.ndarray) -> dict[str, np.ndarray]:
    return {name: fn(x[sub]) for name, fn in shifts().items() if name != "none"}


def rate(mask: np.ndarray) -> float:
    return float(np.mean(mask)) if len(mask) else float("nan")


def score_block(probs: np.ndarray, flagged: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    right = probs.argmax(1) == y
    return {"n": len(y), "accuracy": rate(right), "flagged": rate(flagged), "flagged_n": int(flagged.sum()),
            "right_and_not_flagged": rate(right & ~flagged),
            "accuracy_of_not_flagged": rate(right[~flagged]) if (~flagged).any() else None}


def shipped_recipe(kind: str, x: np.ndarray, y: np.ndarray, tags: list[str], county: np.ndarray,
                   sub: np.ndarray, shifted: dict[str, np.ndarray], views: tuple[str, ...] = ("clean",),
                   nd: bool = False, l2: float | None = None, unweighted: bool = False) -> dict[str, Any]:
    from dataclasses import replace

    from landuse.training.linear import view_images

    recipe = LinearRecipe(views=views) if l2 is None else LinearRecipe(views=views, l2=l2)
    if unweighted:  # the recipe before the training weights: every plot weighs 1 (classes balanced)
        recipe = replace(recipe, open_space_class=None, group_balanced=False)
    path = graph_path(kind)
    F = graph_features(path, x, "as_clean")
    FV = {v: F if v == "clean" else graph_features(path, view_images(x, v), f"as_view_{slug(v)}") for v in views}
    FS = {s: graph_features(path, xs, f"as_shift2_{slug(s)}") for s, xs in shifted.items()}
    dev = tags.index("Developed")
    devs = np.flatnonzero(y == dev)
    F5_dev = graph_features(path, degrade_resolution(x[devs], 5.0), "as_dev_res5")
    pos_sub = np.full(len(y), -1)
    pos_sub[sub] = np.arange(len(sub))
    fold = stratified_folds(y, recipe.folds, recipe.seed)
    out: dict[str, Any] = {"graph": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
                           "kind": kind, "recipe": {"views": list(recipe.views), "l2": recipe.l2,
                                                    "canopy_quantile": recipe.canopy_quantile,
                                                    "knn_flag": recipe.knn_flag,
                                                    "open_space_class": recipe.open_space_class,
                                                    "open_space_green_max": recipe.open_space_green_max,
                                                    "group_balanced": recipe.group_balanced},
                           "folds": []}
    probs_all = np.zeros((len(y), len(tags)), np.float32)
    flag_all = np.zeros(len(y), bool)
    shift_probs = {s: np.zeros((len(sub), len(tags)), np.float32) for s in FS}
    shift_flag = {s: np.zeros(len(sub), bool) for s in FS}
    for k in range(recipe.folds):
        tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        fitted = fit_recipe(x[tr], {v: FV[v][tr] for v in views}, y[tr], tags, recipe, county[tr])
        p = fitted.head.probs(F[te])
        fl = fitted.unknown_scores(x[te], F[te]) > 1.0
        probs_all[te], flag_all[te] = p, fl
        rec = {"fold": k, "canopy_threshold": fitted.canopy_threshold, **score_block(p, fl, y[te]),
               "flagged_by_tag": {t: int(fl[y[te] == i].sum()) for i, t in enumerate(tags)}}
        out["folds"].append(rec)
        say(f"fold {k}: n {rec['n']} accuracy {rec['accuracy']:.3f} flagged {rec['flagged']:.3f} "
            f"(canopy threshold {fitted.canopy_threshold:.3f})")
        ts = pos_sub[te][pos_sub[te] >= 0]
        for s in FS:
            shift_probs[s][ts] = fitted.head.probs(FS[s][ts])
            shift_flag[s][ts] = fitted.unknown_scores(shifted[s][ts], FS[s][ts]) > 1.0
    out["pooled"] = score_block(probs_all, flag_all, y)
    out["pooled"]["flagged_by_tag"] = {t: int(flag_all[y == i].sum()) for i, t in enumerate(tags)}
    out["shifts"] = {"none (the same 250 plots)": score_block(probs_all[sub], flag_all[sub], y[sub]),
                     **{s: score_block(shift_probs[s], shift_flag[s], y[sub]) for s in FS}}
    lco = {}
    for name, held in (("los_angeles_developed", (county == "ca037") & (y == dev)),
                       ("imperial_developed", (county == "ca025") & (y == dev))):
        tr = np.flatnonzero(~held)
        fitted = fit_recipe(x[tr], {v: FV[v][tr] for v in views}, y[tr], tags, recipe, county[tr])
        hd = np.flatnonzero(held)
        p1 = fitted.head.probs(F[hd])
        f1 = fitted.unknown_scores(x[hd], F[hd]) > 1.0
        pos = {int(j): i for i, j in enumerate(devs)}
        f5 = F5_dev[[pos[int(j)] for j in hd]]
        p5 = fitted.head.probs(f5)
        lco[name] = {"n": len(hd), "recall": rate(p1.argmax(1) == dev), "flagged": rate(f1),
                     "recall_and_not_flagged": rate((p1.argmax(1) == dev) & ~f1),
                     "recall_5m": rate(p5.argmax(1) == dev),
                     "predicted_as": {t: int((p1.argmax(1) == i).sum()) for i, t in enumerate(tags)}}
    out["leave_county_out"] = lco
    full = fit_recipe(x, FV, y, tags, recipe, county)
    from landuse.training.dataset import load_image

    # the out-of-class proxy, read as bench_model_proxies.py reads it: scored, never fitted on
    wv = np.stack([load_image(p, (224, 224)) for p in sorted(rd.WV.glob("*.png"))])
    out["wv_flagged"] = int((full.unknown_scores(wv, graph_features(path, wv, "wv")) > 1.0).sum())
    if nd:
        out["nd_approx"] = nd_approx(path, full, tags)
        say(f"ND (head + flags outside the pipeline): {out['nd_approx']}")
    # the full-data fit reproduces the shipped model (same code path): compare with its own outputs
    if kind in ("shipped", "int8") and views == ("clean",):
        from landuse.classify.base import load_classifier

        clf = load_classifier(str(SHIPPED.parent))
        probs_m, score_m = clf.predict_unknown(x)
        out["reproduces_shipped"] = {
            "canopy_threshold_refit": full.canopy_threshold,
            "canopy_threshold_shipped": clf.landuse_meta["unknown"]["canopy_threshold"],
            "max_abs_prob_diff": float(np.abs(full.head.probs(F) - probs_m).max()),
            "flag_agreement": float(((full.unknown_scores(x, F) > 1) == (score_m > 1)).mean()),
            "label_agreement": float((full.head.probs(F).argmax(1) == probs_m.argmax(1)).mean()),
        }
        say(f"full-data refit vs the shipped model: {out['reproduces_shipped']}")
    return out


def nd_approx(path: Path, fitted: Any, tags: list[str]) -> dict[str, Any]:
    """ND 2010 vs 2018 outside the pipeline (the same plot reads, head and flags): share of common
    plots with the same label (unknown counts as a label), Developed and unknown shares."""
    from landuse.classify.unknown import WATER_SHARE, water_share

    lab, ids = {}, {}
    out: dict[str, Any] = {}
    for yr in ("2010", "2018"):
        rgb, nir, pid = rd.nd_plots_cached(yr)
        f = graph_features(path, rgb, f"nd{yr}")
        g = rgb[..., 1].reshape(len(rgb), 56, 4, 56, 4).mean((2, 4))
        n = nir.reshape(len(nir), 56, 4, 56, 4).mean((2, 4))
        unk = (fitted.unknown_scores(rgb, f) > 1.0) | (water_share(g, n) > WATER_SHARE)
        lab[yr] = np.where(unk, -1, fitted.head.probs(f).argmax(1))
        ids[yr] = {p: i for i, p in enumerate(pid)}
        out[yr] = {"plots": len(rgb), "developed": rate(lab[yr] == tags.index("Developed")),
                   "unknown": rate(lab[yr] == -1)}
    common = sorted(set(ids["2010"]) & set(ids["2018"]))
    a = lab["2010"][[ids["2010"][c] for c in common]]
    b = lab["2018"][[ids["2018"][c] for c in common]]
    out["agreement_unknown_as_label"] = rate(a == b)
    both = (a >= 0) & (b >= 0)
    out["agreement_classified_both"] = rate(a[both] == b[both])
    out["common_plots"] = len(common)
    return out


def previous_recipe(x: np.ndarray, y: np.ndarray, tags: list[str], county: np.ndarray, sub: np.ndarray,
                    shifted: dict[str, np.ndarray], threads: int) -> dict[str, Any]:
    """The previous default's fine-tune recipe, retrained per fold (see the module docstring)."""
    import torch

    from landuse.training.local import TrainConfig, _top_probs, clean_trunk, fit, trunk_features

    cfg = TrainConfig(epochs=PREVIOUS_EPOCHS, seed=0, threads=threads)
    t0 = time.perf_counter()
    cache = trunk_features(x, cfg)
    say(f"previous recipe: trunk features of {len(x)} plots x {cfg.views} views + clean ({time.perf_counter() - t0:.0f} s)")
    k_frozen = cfg.freeze_blocks
    tcache = rd.CACHE / "prev_trunk"
    tcache.mkdir(parents=True, exist_ok=True)
    trunks = {}
    for s, xs in shifted.items():
        p = tcache / f"{slug(s)}.pt"
        if p.exists():
            trunks[s] = torch.load(p)
        else:
            trunks[s] = clean_trunk(xs, cfg)
            torch.save(trunks[s], p)
    say(f"previous recipe: trunk features of the shifted plots ({time.perf_counter() - t0:.0f} s)")
    fold = stratified_folds(y, 5, 0)
    pos_sub = np.full(len(y), -1)
    pos_sub[sub] = np.arange(len(sub))
    probs_all = np.zeros((len(y), len(tags)), np.float32)
    shift_probs = {s: np.zeros((len(sub), len(tags)), np.float32) for s in trunks}
    folds = []
    for k in range(5):
        tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        fr = fit(cache, y, len(tags), cfg, tr, epochs=PREVIOUS_EPOCHS)
        p = _top_probs(fr.model, cache.clean[torch.from_numpy(te)], k_frozen)
        probs_all[te] = p
        folds.append({"fold": k, **score_block(p, p.max(1) < 0.5, y[te]), "train_seconds": round(fr.seconds, 1)})
        say(f"previous fold {k}: accuracy {folds[-1]['accuracy']:.3f}")
        ts = pos_sub[te][pos_sub[te] >= 0]
        for s in trunks:
            shift_probs[s][ts] = _top_probs(fr.model, trunks[s][torch.from_numpy(ts)], k_frozen)
    fl = probs_all.max(1) < 0.5
    out: dict[str, Any] = {
        "recipe": f"landuse.training.local fine-tune, freeze_blocks {cfg.freeze_blocks}, {PREVIOUS_EPOCHS} epochs, "
                  f"{cfg.views} augmentation views, seed 0 (torch fp32)",
        "flag": "probability fallback: top probability < 0.5 (the previous default has no unknown statistics)",
        "folds": folds, "pooled": score_block(probs_all, fl, y),
        "shifts": {"none (the same 250 plots)": score_block(probs_all[sub], fl[sub], y[sub]),
                   **{s: score_block(shift_probs[s], shift_probs[s].max(1) < 0.5, y[sub]) for s in trunks}},
    }
    dev = tags.index("Developed")
    lco = {}
    for name, held in (("los_angeles_developed", (county == "ca037") & (y == dev)),
                       ("imperial_developed", (county == "ca025") & (y == dev))):
        fr = fit(cache, y, len(tags), cfg, np.flatnonzero(~held), epochs=PREVIOUS_EPOCHS)
        p = _top_probs(fr.model, cache.clean[torch.from_numpy(np.flatnonzero(held))], k_frozen)
        lco[name] = {"n": int(held.sum()), "recall": rate(p.argmax(1) == dev), "flagged": rate(p.max(1) < 0.5)}
    out["leave_county_out"] = lco
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graph", default="shipped", help="shipped (landuse/models/default), fp32, or an ONNX path with features")
    ap.add_argument("--previous", action="store_true", help="also the previous default's recipe, per fold")
    ap.add_argument("--name", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--views", default="clean", help="training views of the head, e.g. clean,res2,blur1.5")
    ap.add_argument("--nd", action="store_true", help="also ND 2010 / 2018 outside the pipeline")
    ap.add_argument("--l2", type=float, default=None, help="the head's L2 (default: the recipe's)")
    ap.add_argument("--unweighted", action="store_true",
                    help="every training plot weighs 1 (the recipe before open-space / county weights)")
    args = ap.parse_args()
    name = args.name or args.graph
    t0 = time.perf_counter()
    x, y, tags, county, _names = rd.aerialsmall()
    sub = np.arange(0, len(y), 2)
    shifted = shifted_images(x, sub)
    say(f"AerialSmall {len(y)} plots; {len(shifted)} shifts of {len(sub)} plots")
    res: dict[str, Any] = {"benchmark": "bench_model_heldout", "name": name, "python": platform.python_version(),
                           "cpu_flags": cpu_flags(), "load_average_start": os.getloadavg(),
                           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "data": "../shared/data/aerialsmall/train (wv_1m_patches not used)",
                           "folds": "stratified_folds(y, 5, seed 0)", "shift_plots": "every second plot (250)",
                           "tags": tags}
    res["shipped_recipe"] = shipped_recipe(args.graph, x, y, tags, county, sub, shifted,
                                           tuple(args.views.split(",")), args.nd, args.l2, args.unweighted)
    sr = res["shipped_recipe"]
    say(f"shipped recipe pooled: accuracy {sr['pooled']['accuracy']:.3f}, flagged {sr['pooled']['flagged']:.3f}; "
        f"LCO LA {sr['leave_county_out']['los_angeles_developed']['recall']:.3f} "
        f"Imperial {sr['leave_county_out']['imperial_developed']['recall']:.3f}")
    for s, r in sr["shifts"].items():
        say(f"  shift {s:28s} accuracy {r['accuracy']:.3f} flagged {r['flagged']:.3f}")
    if args.previous:
        res["previous_recipe"] = previous_recipe(x, y, tags, county, sub, shifted, args.threads)
        pr = res["previous_recipe"]
        say(f"previous recipe pooled accuracy {pr['pooled']['accuracy']:.3f}; LCO LA "
            f"{pr['leave_county_out']['los_angeles_developed']['recall']:.3f} Imperial "
            f"{pr['leave_county_out']['imperial_developed']['recall']:.3f}")
        for s, r in pr["shifts"].items():
            say(f"  shift {s:28s} accuracy {r['accuracy']:.3f} (shipped {sr['shifts'][s]['accuracy']:.3f}) "
                f"fallback-flagged {r['flagged']:.3f}")
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["load_average_end"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"model_heldout_{name}.json"
    path.write_text(json.dumps(res, indent=1) + "\n")
    say(f"wrote {path}")


if __name__ == "__main__":
    main()
