"""Baseline (d) of ``bench_pipeline.py``: torchgeo's GridGeoSampler + DataLoader feeding the same ONNX model.

Runs in its OWN environment (torch + torchgeo are not landuse dependencies; this script never
imports landuse). Set it up once, outside the repository::

    python3 -m venv /tmp/tgvenv
    /tmp/tgvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 torchgeo requests onnxruntime numpy rasterio

(torch / torchvision come from wheels already on disk; torchgeo omits its ``requests`` dependency.)

Run it on the raster ``bench_pipeline.py`` generated (``<--work>/county_<size>.tif``, by default
``$TMPDIR/landuse-bench/county_20000.tif``), with the int8 default model and the fp32 variant
(``benchmarks/data/default_model_alt.onnx``, left there by ``landuse.training.default_model``)::

    R=/tmp/landuse-bench/county_20000.tif
    for M in landuse/models/default/model.onnx benchmarks/data/default_model_alt.onnx; do
      for W in 0 2; do
        /tmp/tgvenv/bin/python benchmarks/bench_torchgeo.py --raster $R --model $M --workers $W
      done
    done

What is timed (``wall_s``): sampler + DataLoader iteration (GDAL reads through torchgeo's
RasterDataset, collation with ``stack_samples``, worker start-up) + ``session.run`` on every batch.
Building the dataset's index and loading the model are timed apart (``setup_s``). The model gets
``data``: float32 NCHW RGB 0-255 (the export normalises inside); onnxruntime runs with
``--threads`` intra-op threads (1 per process, as reference/performance.md recommends).
``read_wait_s`` / ``infer_s`` split the loop into waiting for the next batch and inference.

Results go to ``benchmarks/results/bench_torchgeo.json``: one entry per (model precision,
workers, batch size), replaced on re-run. ``bench_pipeline.py`` reads that file when it matches
its raster (same pixel size) and prints b/d = (b) classified plots/s / (d) plots/s next to b/a and
b/c. Targets: b/d >= 1.8 with the fp32 model, >= 3 with int8. Reference: torchgeo feeding fp32
EfficientNet-Lite0 made 123-141 plots/s on this kind of machine vs 298 bare, so with the same
model b/d cannot exceed about 2.1 unless (b) is faster than bare per-plot inference.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_torchgeo.json"


def precision(model: Path) -> str:
    """``int8`` when the graph holds QuantizeLinear nodes (op names are plain strings in the file), else ``fp32``."""
    return "int8" if b"QuantizeLinear" in model.read_bytes() else "fp32"


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_dataset(raster: Path):  # noqa: ANN201 - torchgeo type, imported lazily
    """A torchgeo RasterDataset over one GeoTIFF, reading its first three bands (R, G, B) at 1 m."""
    from torchgeo.datasets import RasterDataset

    class Plots(RasterDataset):
        filename_glob = raster.name
        is_image = True
        separate_files = False
        all_bands = ("R", "G", "B", "N")
        rgb_bands = ("R", "G", "B")

    return Plots(paths=[str(raster)], res=1.0, bands=("R", "G", "B"))


def run(raster: Path, model: Path, plots: int | None, batch: int, workers: int, threads: int) -> dict:
    """Time torchgeo's GridGeoSampler + DataLoader + onnxruntime over the raster's 224 px plots."""
    import onnxruntime as ort
    import rasterio
    import torch
    import torchgeo
    from torch.utils.data import DataLoader
    from torchgeo.datasets import stack_samples
    from torchgeo.samplers import GridGeoSampler

    torch.set_num_threads(1)  # the main process only stacks tensors; ORT has its own threads
    with rasterio.open(raster) as src:
        width, height, count = src.width, src.height, src.count
    if count < 3:
        raise SystemExit(f"{raster}: {count} band(s); needs at least 3 (R, G, B first)")

    t0 = time.perf_counter()
    dataset = make_dataset(raster)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    session.run(None, {name: np.zeros((batch, 3, 224, 224), np.float32)})  # warm-up
    setup_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    sampler = GridGeoSampler(dataset, size=224, stride=224)
    boxes = list(itertools.islice(iter(sampler), plots)) if plots else sampler
    loader = DataLoader(dataset, batch_size=batch, sampler=boxes, num_workers=workers, collate_fn=stack_samples)
    n = 0
    read_wait = infer = 0.0
    it = iter(loader)
    while True:
        t1 = time.perf_counter()
        try:
            sample = next(it)
        except StopIteration:
            break
        t2 = time.perf_counter()
        x = sample["image"].numpy().astype(np.float32, copy=False)
        if x.shape[1:] != (3, 224, 224):
            raise SystemExit(f"{raster}: torchgeo returned a batch of shape {x.shape}, expected (N, 3, 224, 224)")
        session.run(None, {name: np.ascontiguousarray(x)})
        infer += time.perf_counter() - t2
        read_wait += t2 - t1
        n += x.shape[0]
    wall = time.perf_counter() - t0
    return {
        "plots": n,
        "wall_s": round(wall, 3),
        "plots_per_s": round(n / wall, 1),
        "setup_s": round(setup_s, 3),
        "read_wait_s": round(read_wait, 3),
        "infer_s": round(infer, 3),
        "model": str(Path(model).resolve().relative_to(ROOT)) if Path(model).resolve().is_relative_to(ROOT) else str(model),
        "model_sha256": sha256(model),
        "precision": precision(model),
        "batch": batch,
        "workers": workers,
        "threads": threads,
        "raster": {"path": str(raster), "width": width, "height": height, "bands": count,
                   "mb": round(raster.stat().st_size / 1e6, 1)},
        "versions": {"torch": torch.__version__, "torchgeo": torchgeo.__version__, "onnxruntime": ort.__version__,
                     "rasterio": rasterio.__version__, "python": platform.python_version()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def save(entry: dict, path: Path = RESULTS) -> None:
    """Replace the entry with the same (raster size, precision, workers, batch) in ``path``; atomic write."""
    def key(e: dict) -> tuple:
        return (e["raster"]["width"], e["raster"]["height"], e["precision"], e["workers"], e["batch"])

    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    runs = [e for e in runs if key(e) != key(entry)] + [entry]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"benchmark": "bench_torchgeo", "runs": runs}, indent=2) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run once, print the rate and write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raster", type=Path, required=True, help="the GeoTIFF bench_pipeline.py generated")
    ap.add_argument("--model", type=Path, default=ROOT / "landuse" / "models" / "default" / "model.onnx",
                    help="ONNX file with input 'data' float32 (N, 3, 224, 224) RGB 0-255")
    ap.add_argument("--plots", type=int, help="only the first N plots of the grid sampler")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=0, help="DataLoader num_workers (try 0 and 2)")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    for p in (args.raster, args.model):
        if not p.is_file():
            raise SystemExit(f"{p}: no such file; pass --raster / --model (see this script's docstring)")
    entry = run(args.raster.resolve(), args.model.resolve(), args.plots, args.batch_size, args.workers, args.threads)
    print(f"(d) torchgeo [{entry['precision']}, workers {entry['workers']}, batch {entry['batch']}]: "
          f"{entry['plots_per_s']} plots/s ({entry['plots']} plots in {entry['wall_s']} s; "
          f"waiting for batches {entry['read_wait_s']} s, inference {entry['infer_s']} s)", flush=True)
    save(entry, args.out)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
