"""Training-plot weights of the linear recipe, side by side on proxies that can say no.

    nice -n 10 .venv/bin/python benchmarks/bench_recipe_weights.py

Every candidate is :func:`landuse.training.linear.fit_recipe` with one ``LinearRecipe`` weight
setting (``open_space_*``: NLCD-Developed plots more than N % green vegetation -- parks, sports
fields, golf courses -- weighted down; ``group_balanced``: both counties' Developed plots weigh the
same), on the features of the shipped graph (the head does not change them), scored on:

* ND 2010 vs 2018 (real 5 m NAIP farmland of another state and years, the same plot reads, head and
  flags as ``bench_model_heldout.py --nd``): share with the same label (unknown counts as a label)
  and share called Developed per year;
* leave-county-out: trained without Los Angeles Developed, those scored (1 m and 5 m); the same for
  Imperial Developed;
* held-out AerialSmall folds (stratified, seed 0): accuracy clean and at 2 m / 5 m (every plot of the
  fold, degraded with ``degrade_resolution``);
* ``wv_1m_patches`` flagged (the weights do not touch the flag; a check).

Writes ``benchmarks/results/recipe_weights.json`` and prints a table.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import recipe_data as rd  # noqa: E402
from bench_model_heldout import SHIPPED, graph_features, nd_approx  # noqa: E402
from bench_recipes import cpu_flags  # noqa: E402

from landuse.classify.unknown import green_share  # noqa: E402
from landuse.training.features import degrade_resolution  # noqa: E402
from landuse.training.linear import LinearRecipe, fit_recipe  # noqa: E402
from landuse.training.local import stratified_folds  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
WITHOUT_LA = "unweighted, Los Angeles plots left out of training"


def candidates() -> list[tuple[str, LinearRecipe]]:
    base = LinearRecipe()
    unweighted = replace(base, open_space_class=None, group_balanced=False)
    out = [("unweighted (the 0596e88 default)", unweighted),
           (WITHOUT_LA, unweighted),
           ("county-balanced only", replace(base, open_space_class=None))]
    for thr in (0.3, 0.4, 0.5, 0.6):
        for w in (0.0, 0.1, 0.25):
            out.append((f"open space > {thr:.0%} green x{w:g}, no county balance",
                        replace(base, open_space_green_max=thr, open_space_weight=w, group_balanced=False)))
            out.append((f"open space > {thr:.0%} green x{w:g} + county-balanced",
                        replace(base, open_space_green_max=thr, open_space_weight=w)))
    return out


def main() -> None:
    t0 = time.perf_counter()
    x, y, tags, county, _ = rd.aerialsmall()
    dev = tags.index("Developed")
    F = {"clean": graph_features(SHIPPED, x, "as_clean")}
    F2 = graph_features(SHIPPED, degrade_resolution(x, 2.0), "as_all_res2")
    F5 = graph_features(SHIPPED, degrade_resolution(x, 5.0), "as_all_res5")
    wv = rd.wv_patches()
    Fwv = graph_features(SHIPPED, wv, "wv")
    green = green_share(x)
    fold = stratified_folds(y, 5, 0)
    rows: list[dict[str, Any]] = []
    for name, recipe in candidates():
        use = county != "ca037" if name == WITHOUT_LA else np.ones(len(y), bool)
        full = fit_recipe(x[use], {"clean": F["clean"][use]}, y[use], tags, recipe, county[use])
        nd = nd_approx(SHIPPED, full, tags)
        acc = {"1m": np.zeros(len(y), bool), "2m": np.zeros(len(y), bool), "5m": np.zeros(len(y), bool)}
        for k in range(5):
            tr, te = np.flatnonzero((fold != k) & use), np.flatnonzero(fold == k)
            h = fit_recipe(x[tr], {"clean": F["clean"][tr]}, y[tr], tags, recipe, county[tr]).head
            for key, f in (("1m", F["clean"]), ("2m", F2), ("5m", F5)):
                acc[key][te] = h.probs(f[te]).argmax(1) == y[te]
        lco = {}
        for cname, held in (("los_angeles", (county == "ca037") & (y == dev)), ("imperial", (county == "ca025") & (y == dev))):
            tr = np.flatnonzero(~held & use)
            h = fit_recipe(x[tr], {"clean": F["clean"][tr]}, y[tr], tags, recipe, county[tr]).head
            lco[cname] = {"1m": float((h.probs(F["clean"][held]).argmax(1) == dev).mean()),
                          "5m": float((h.probs(F5[held]).argmax(1) == dev).mean())}
        row = {"candidate": name, "open_space_class": recipe.open_space_class,
               "open_space_green_max": recipe.open_space_green_max, "open_space_weight": recipe.open_space_weight,
               "group_balanced": recipe.group_balanced,
               "open_space_plots": int(((y == dev) & (green > recipe.open_space_green_max)).sum())
                                   if recipe.open_space_class else 0,
               "nd_agreement": nd["agreement_unknown_as_label"], "nd_developed_2010": nd["2010"]["developed"],
               "nd_developed_2018": nd["2018"]["developed"],
               "heldout_accuracy": {k: float(v.mean()) for k, v in acc.items()}, "leave_county_out": lco,
               "wv_flagged": int((full.unknown_scores(wv, Fwv) > 1.0).sum())}
        rows.append(row)
        print(f"{name:48s} ND {row['nd_agreement']:.1%} Dev {row['nd_developed_2010']:.1%}/{row['nd_developed_2018']:.1%} | "
              f"folds 1m {acc['1m'].mean():.1%} 2m {acc['2m'].mean():.1%} 5m {acc['5m'].mean():.1%} | "
              f"LCO LA {lco['los_angeles']['1m']:.1%}/{lco['los_angeles']['5m']:.1%} "
              f"Imperial {lco['imperial']['1m']:.1%}/{lco['imperial']['5m']:.1%} | wv {row['wv_flagged']}/16", flush=True)
    res = {"benchmark": "bench_recipe_weights", "python": platform.python_version(), "cpu_flags": cpu_flags(),
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_average": os.getloadavg(),
           "graph": "landuse/models/default/model.onnx (features output; frozen trunk)",
           "seconds": round(time.perf_counter() - t0, 1), "candidates": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "recipe_weights.json").write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {RESULTS / 'recipe_weights.json'}")


if __name__ == "__main__":
    main()
