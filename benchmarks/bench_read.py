"""Read throughput of Scene.read_chunk: the fast path (source in the grid's CRS: one windowed read
per chunk) against the warp path (source in another CRS: reproject per chunk), in plots/s.

    python benchmarks/bench_read.py                 # 20,000 x 20,000 px 1 m RGBN (generated once)
    python benchmarks/bench_read.py --size 4000     # quick run on a smaller raster

Generates (if absent) under benchmarks/data/ (gitignored) a tiled DEFLATE RGBN GeoTIFF at 1 m and
one at 0.6 m (half the size in pixels), with field-like content, then measures:

    fast            1 m source, grid in its CRS, plots at 224 px: no resampling
    fast-0.6m       0.6 m source, grid in its CRS: out_shape average resampling
    warp            1 m source, grid in the neighbouring UTM zone: reproject
    warp-0.6m       0.6 m source, grid in the neighbouring UTM zone
    baseline        WarpedVRT (bilinear) and one 224 px window read per plot (the naive way)

Writes benchmarks/results/bench_read.json and prints a table and the warp/fast ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from landuse.grid import PlotGrid  # noqa: E402
from landuse.imagery import Scene, close_datasets  # noqa: E402

DATA = ROOT / "benchmarks" / "data"
RESULTS = ROOT / "benchmarks" / "results"
SRC_CRS = "EPSG:26910"
WARP_CRS = "EPSG:26911"
ORIGIN = (224.0 * 2300, 224.0 * 19000)  # x, y: a plot corner of the UTM 10N grid


def _field_strip(rng_seed: int, row0: int, rows: int, width: int, res: float) -> np.ndarray:
    """RGBN uint8 (4, rows, width): parcels of ~250 m with row texture, roads, noise."""
    rng = np.random.default_rng(rng_seed)
    parcel = 250.0 / res
    n_px = int(np.ceil(width / parcel)) + 1
    n_py = int(np.ceil((row0 + rows) / parcel)) + 1
    tones = rng.integers(40, 200, (n_py, n_px, 4)).astype(np.float32)  # same seed: same parcels
    angle = rng.random((n_py, n_px)) * np.pi
    y = (row0 + np.arange(rows))[:, None] * res
    x = np.arange(width)[None, :] * res
    py = np.minimum((y / 250.0).astype(int), n_py - 1)
    px = np.minimum((x / 250.0).astype(int), n_px - 1)
    base = tones[py, px]  # (rows, width, 4)
    a = angle[py, px]
    stripes = 12.0 * np.sin((x * np.cos(a) + y * np.sin(a)) * (2 * np.pi / 6.0))
    road = ((np.abs((x % 500.0) - 3) < 4) | (np.abs((y % 750.0) - 3) < 4)).astype(np.float32) * 60.0
    noise = np.random.default_rng(rng_seed + row0).normal(0.0, 6.0, (rows, width)).astype(np.float32)
    out = base + (stripes + road + noise)[..., None] * np.array([1.0, 0.9, 0.8, 0.5], np.float32)
    return np.clip(out, 1, 255).astype(np.uint8).transpose(2, 0, 1)


def _nir_not_alpha(path: Path) -> None:
    """Tag band 4 as undefined (NIR), as NAIP does: GDAL tags a 4th byte band alpha by default."""
    import rasterio
    from rasterio.enums import ColorInterp

    with rasterio.open(path) as ds:
        if ds.colorinterp[3] != ColorInterp.alpha:
            return
    with rasterio.open(path, "r+") as ds:
        ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined]


def make_raster(path: Path, size: int, res: float) -> Path:
    """Tiled DEFLATE RGBN GeoTIFF of size x size px at ``res`` m, written strip by strip."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    if path.exists():
        _nir_not_alpha(path)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    profile = dict(
        driver="GTiff", width=size, height=size, count=4, dtype="uint8", crs=SRC_CRS,
        transform=Affine(res, 0, ORIGIN[0], 0, -res, ORIGIN[1]), tiled=True, blockxsize=512,
        blockysize=512, compress="deflate", predictor=2, interleave="pixel", BIGTIFF="IF_SAFER",
    )
    t0 = time.perf_counter()
    with rasterio.open(tmp, "w", **profile) as dst:
        for r in range(0, size, 512):
            rows = min(512, size - r)
            dst.write(_field_strip(7, r, rows, size, res), window=Window(0, r, size, rows))
    _nir_not_alpha(tmp)
    os.replace(tmp, path)
    print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def bench_scene(scene: Scene, grid: PlotGrid, max_plots: int, chunk_rows: int, chunk_cols: int, reps: int) -> dict:
    """Median plots/s of read_chunk over the first chunks holding up to ``max_plots`` plots."""
    chunks, n = [], 0
    for c in grid.chunks(rows=chunk_rows, cols=chunk_cols):
        if n >= max_plots:
            break
        chunks.append(c)
        n += c.size
    times, valid = [], 0.0
    for _ in range(reps):
        close_datasets()
        t0 = time.perf_counter()
        for c in chunks:
            _, v = scene.read_chunk(grid, c)
            valid += float(v.sum())
        times.append(time.perf_counter() - t0)
    t = float(np.median(times))
    return {"plots": n, "chunks": len(chunks), "seconds": round(t, 3), "plots_per_s": round(n / t, 1),
            "ms_per_plot": round(1000 * t / n, 2), "mean_valid": round(valid / (n * reps), 3)}


def bench_baseline(path: Path, grid: PlotGrid, max_plots: int) -> dict:
    """WarpedVRT onto the grid (bilinear), one window read per plot."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window

    rows, cols = grid.all_rows_cols()
    rows, cols = rows[:max_plots], cols[:max_plots]
    px = 224
    t0 = time.perf_counter()
    with rasterio.open(path) as src, WarpedVRT(
        src, crs=grid.crs, transform=grid.plot_transform(0, 0, px), width=grid.width * px,
        height=grid.height * px, resampling=Resampling.bilinear,
    ) as vrt:
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            vrt.read([1, 2, 3], window=Window(c * px, r * px, px, px))
    t = time.perf_counter() - t0
    n = len(rows)
    return {"plots": n, "chunks": n, "seconds": round(t, 3), "plots_per_s": round(n / t, 1),
            "ms_per_plot": round(1000 * t / n, 2), "mean_valid": None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=20000, help="side of the 1 m raster in pixels (default 20000)")
    ap.add_argument("--fast-plots", type=int, default=100_000, help="max plots read per fast-path case")
    ap.add_argument("--warp-plots", type=int, default=1024, help="max plots read per warp-path case")
    ap.add_argument("--baseline-plots", type=int, default=128, help="plots for the WarpedVRT baseline (0: skip)")
    ap.add_argument("--chunk-rows", type=int, default=4)
    ap.add_argument("--chunk-cols", type=int, default=16)
    ap.add_argument("--reps", type=int, default=1)
    args = ap.parse_args(argv)

    one_m = make_raster(DATA / f"county_rgbn_1m_{args.size}.tif", args.size, 1.0)
    sixty = make_raster(DATA / f"county_rgbn_0.6m_{args.size // 2}.tif", args.size // 2, 0.6)
    results: dict[str, dict] = {}
    cases = [
        ("fast", one_m, None, args.fast_plots),
        ("fast-0.6m", sixty, None, args.fast_plots),
        ("warp", one_m, WARP_CRS, args.warp_plots),
        ("warp-0.6m", sixty, WARP_CRS, args.warp_plots),
    ]
    for name, path, crs, max_plots in cases:
        scene = Scene.open(path)
        grid = PlotGrid.from_footprints(scene.footprints(), crs=crs)
        if crs is not None:  # the interior of the warped footprint, so plots are full
            grid = grid.subgrid(type(grid.chunks()[0])(1, 1, grid.height - 2, grid.width - 2))
        results[name] = bench_scene(scene, grid, max_plots, args.chunk_rows, args.chunk_cols, args.reps)
        print(f"{name:10s} {results[name]}", flush=True)
    if args.baseline_plots:
        scene = Scene.open(sixty)
        grid = PlotGrid.from_footprints(scene.footprints())
        results["baseline-warpedvrt-0.6m"] = bench_baseline(sixty, grid, args.baseline_plots)
        print(f"baseline   {results['baseline-warpedvrt-0.6m']}", flush=True)

    ratio = results["fast"]["plots_per_s"] / results["warp"]["plots_per_s"]
    ratio06 = results["fast-0.6m"]["plots_per_s"] / results["warp-0.6m"]["plots_per_s"]
    out = {
        "benchmark": "bench_read",
        "command": "python benchmarks/bench_read.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "raster_1m": {"path": str(one_m.relative_to(ROOT)), "size_px": args.size, "bytes": one_m.stat().st_size},
        "raster_0.6m": {"path": str(sixty.relative_to(ROOT)), "size_px": args.size // 2, "bytes": sixty.stat().st_size},
        "chunk": [args.chunk_rows, args.chunk_cols],
        "results": results,
        "ratio_warp_over_fast_time": round(ratio, 2),
        "ratio_warp_over_fast_time_0.6m": round(ratio06, 2),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    dest = RESULTS / "bench_read.json"
    tmp = dest.with_name(".bench_read.json.tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    os.replace(tmp, dest)

    print()
    print(f"{'case':26s} {'plots':>7s} {'plots/s':>9s} {'ms/plot':>8s}")
    for name, r in results.items():
        print(f"{name:26s} {r['plots']:7d} {r['plots_per_s']:9.1f} {r['ms_per_plot']:8.2f}")
    print(f"warp path is {ratio:.1f}x slower than the fast path at 1 m ({ratio06:.1f}x for the 0.6 m source)")
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
