"""(Re)build the bundled default model.

    python -m landuse.training.default_model [--data DIR] [--out DIR]            # the linear recipe
    python -m landuse.training.default_model --recipe finetune [--skip-train] [--skip-lco]

The default (``--recipe linear``, chosen by the proxies in the model card, not by CV): frozen
ImageNet EfficientNet-Lite0 in fp32 with the per-plot 2-98 % stretch in the graph, a
logistic-regression head on the pooled features of the clean plots, the unknown-flag statistics
(``landuse.training.linear``). ``--int8`` quantises the trunk (7-bit weights unless
``--no-int8-reduce-range``: ``benchmarks/bench_int8_cpu.py``; ``--fp32-stretch`` keeps the in-graph
stretch unquantised): the variants measured in ``benchmarks/results/model_heldout_*.json``.

The earlier recipe (``--recipe finetune``), kept for comparison:

1. ``landuse train DATA --backend local --folds 5 --int8 --epochs 10 --seed 0`` equivalent:
   5-fold cross-validation (fp32 and int8, colour-shift robustness), then a final model on all
   images exported to ``landuse/models/default`` (int8 if within 1 point of fp32 in CV);
   the full report goes to ``benchmarks/results/default_model_cv.json``.
2. Leave-county-out checks (file names carry the county: ``ca025`` Imperial, ``ca037`` Los Angeles):
   train without one county's Developed plots and measure how many of them are still called
   Developed -> ``benchmarks/results/default_model_lco.json``.

DATA defaults to ``../shared/data/aerialsmall/train`` beside the repository.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "aerialsmall" / "train"
DEFAULT_OUT = ROOT / "landuse" / "models" / "default"
RESULTS = ROOT / "benchmarks" / "results"
EPOCHS = 10
SEED = 0


def county_of(name: str) -> str:
    """The county code in an AerialSmall file name (``..._ca025_2016_...`` -> ``ca025``), or ``?``."""
    m = re.search(r"_([a-z]{2}\d{3})_", name)
    return m.group(1) if m else "?"


def leave_county_out(data: Path, epochs: int, seed: int, say: Any, threads: int = 1,
                     freeze_blocks: int = 15) -> dict[str, Any]:
    """Train without one county's Developed plots; report how those held-out plots are classified."""
    from landuse.training.dataset import TagDataset
    from landuse.training.local import (
        TrainConfig,
        colour_shifts,
        fit,
        load_arrays,
        predict_probs,
        trunk_features,
    )

    cfg = TrainConfig(epochs=epochs, seed=seed, threads=threads, freeze_blocks=freeze_blocks)
    ds = TagDataset.open(data)
    x, y = load_arrays(ds, cfg.image_size)
    cache = trunk_features(x, cfg, say)  # the same cache as the cross-validation when run in one process
    counties = np.array([county_of(p.name) for p, _ in ds.items])
    dev = ds.tags.index("Developed")
    out: dict[str, Any] = {"epochs": epochs, "seed": seed, "freeze_blocks": freeze_blocks,
                           "labels": ds.tags, "checks": []}
    for held_county in ("ca037", "ca025"):
        test = np.flatnonzero((y == dev) & (counties == held_county))
        train = np.setdiff1d(np.arange(len(y)), test)
        say(f"leave-county-out: Developed {held_county} held out ({len(test)}), train {len(train)}")
        fr = fit(cache, y, len(ds.tags), cfg, train, progress=say)
        shifts = {}
        for name, fn in colour_shifts().items():
            probs = predict_probs(fr.model, fn(x[test]), cfg.image_size)
            shifts[name] = float((probs.argmax(1) == dev).mean())
        probs = predict_probs(fr.model, x[test], cfg.image_size)
        pred = probs.argmax(1)
        out["checks"].append({
            "held_out": f"Developed plots of {held_county}",
            "train_counts": {t: int((y[train] == i).sum()) for i, t in enumerate(ds.tags)},
            "n_test": len(test),
            "developed_recall": float((pred == dev).mean()),
            "predicted_as": {t: int((pred == i).sum()) for i, t in enumerate(ds.tags)},
            "developed_recall_under_shift": shifts,
            "train_seconds": fr.seconds,
        })
        say(json.dumps(out["checks"][-1]))
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the default-model training and checks; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch / onnxruntime threads; 1 is faster than 2 on a busy 2-core machine")
    ap.add_argument("--recipe", choices=["linear", "finetune"], default="linear")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--skip-lco", action="store_true")
    ap.add_argument("--freeze-blocks", type=int, default=15,
                    help="leave-county-out only: MBConv blocks kept frozen (compare recipes)")
    ap.add_argument("--int8", action="store_true",
                    help="linear recipe: int8 trunk (the shipped default is fp32, see the model card)")
    ap.add_argument("--fp32-stretch", action="store_true",
                    help="linear recipe, with --int8: the in-graph stretch kept fp32")
    ap.add_argument("--int8-reduce-range", action=argparse.BooleanOptionalAction, default=True,
                    help="linear recipe: 7-bit int8 weights, the same features on AVX2 and VNNI CPUs "
                         "(default; benchmarks/bench_int8_cpu.py); --no-int8-reduce-range: 8-bit")
    ap.add_argument("--lco-out", default="default_model_lco.json",
                    help="leave-county-out result file name under benchmarks/results")
    args = ap.parse_args(argv)

    def say(msg: str) -> None:
        print(time.strftime("%H:%M:%S"), msg, flush=True)

    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.recipe == "linear":
        import os

        from landuse.training.linear import LinearRecipe, build_linear_model

        out = args.out.resolve()
        os.chdir(ROOT)
        data = Path(os.path.relpath(args.data.resolve(), ROOT))
        cmd = " ".join(["python -m landuse.training.default_model --recipe linear",
                        *(["--int8"] if args.int8 else []), *(["--fp32-stretch"] if args.fp32_stretch else []),
                        *(["--no-int8-reduce-range"] if args.int8 and not args.int8_reduce_range else [])])
        rep = build_linear_model(data, out, LinearRecipe(int8_reduce_range=args.int8_reduce_range),
                                 overwrite=True, progress=say, int8=args.int8,
                                 fp32_preprocessing=args.fp32_stretch, command=cmd)
        say(f"exported the linear-recipe model to {args.out}: canopy threshold {rep['canopy_threshold']:.3g}, "
            f"{rep['heldout_flagged']:.1%} of held-out training plots flagged, {rep['seconds']} s")
        return 0
    if not args.skip_train:
        import os

        from landuse.training.local import TrainConfig, train_local

        os.chdir(ROOT)  # record the dataset path relative to the repository, not this machine's layout
        data = Path(os.path.relpath(args.data.resolve(), ROOT))
        cmd = (f"landuse train {data} --backend local --out landuse/models/default --folds 5 --int8 --epochs {args.epochs} "
               f"--seed {args.seed} --threads {args.threads} --overwrite")
        rep = train_local(data, args.out, TrainConfig(epochs=args.epochs, folds=5, int8=True, seed=args.seed, threads=args.threads),
                          overwrite=True, progress=say, command=cmd,
                          report_path=RESULTS / "default_model_cv.json",
                          alternate_out=ROOT / "benchmarks" / "data" / "default_model_alt.onnx")
        say(f"exported {rep['precision']} model to {args.out}; {rep.get('int8_decision')}")
    if not args.skip_lco:
        res = leave_county_out(args.data, args.epochs, args.seed, say, args.threads, args.freeze_blocks)
        (RESULTS / args.lco_out).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
