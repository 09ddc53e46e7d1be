"""Reading COGs over HTTP versus from local disk: the same file, read by the same pipeline.

    python benchmarks/bench_stac_http.py                # 8,960 x 8,960 px 1 m RGBN COG (1,600 plots)
    python benchmarks/bench_stac_http.py --size 4480    # quicker

Generates (if absent) a 1 m RGBN COG under benchmarks/data/ (gitignored), serves its folder with
rangehttpserver's Range-capable handler on 127.0.0.1 (a separate process, port chosen by the OS),
and measures, for the local path and for the ``http://127.0.0.1:PORT/...`` URL (GDAL ``/vsicurl/``
with landuse's remote settings):

    read        Scene.read_chunk over every plot, one thread (plots/s)
    pipeline    landuse classify (threads scheduler, 2 workers, the bundled int8 model), plots/s

Writes benchmarks/results/bench_stac_http.json and prints the HTTP / disk ratios and the CPU flags.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_read import ORIGIN, SRC_CRS, _field_strip  # noqa: E402
from landuse.grid import PlotGrid  # noqa: E402
from landuse.imagery import Scene, close_datasets, remote_gdal_settings  # noqa: E402

DATA = ROOT / "benchmarks" / "data"
RESULTS = ROOT / "benchmarks" / "results"


def cpu_flags() -> dict[str, bool]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    return {"avx2": "avx2" in flags, "avx512f": "avx512f" in flags, "avx512_vnni": "avx512_vnni" in flags,
            "avx_vnni": "avx_vnni" in flags}


def make_cog(path: Path, size: int) -> Path:
    """A 1 m RGBN COG (512 px tiles, DEFLATE, overviews) of size x size px."""
    import numpy as np
    import rasterio
    from affine import Affine
    from rasterio.shutil import copy as rio_copy
    from rasterio.windows import Window

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        src = Path(tmp) / "src.tif"
        profile = dict(driver="GTiff", width=size, height=size, count=4, dtype="uint8", crs=SRC_CRS,
                       transform=Affine(1.0, 0, ORIGIN[0], 0, -1.0, ORIGIN[1]), tiled=True, blockxsize=512,
                       blockysize=512, compress="deflate")
        with rasterio.open(src, "w", **profile) as dst:
            for r in range(0, size, 512):
                rows = min(512, size - r)
                dst.write(np.asarray(_field_strip(7, r, rows, size, 1.0), dtype=np.uint8), window=Window(0, r, size, rows))
        part = path.with_name(f".{path.name}.tmp")
        rio_copy(src, part, driver="COG", compress="DEFLATE", blocksize=512)
        os.replace(part, path)
    return path


def bench_read(source: str, grid: PlotGrid, reps: int) -> float:
    """Best plots/s of read_chunk over the whole grid (8 x 8 plot chunks), one thread."""
    best = 0.0
    for _ in range(reps):
        close_datasets()
        scene = Scene.open([source])
        t0 = time.perf_counter()
        n = 0
        for ch in grid.chunks(8, 8):
            scene.read_chunk(grid, ch, pixels=224)
            n += ch.size
        best = max(best, n / (time.perf_counter() - t0))
    return best


def bench_pipeline(source: str, out: Path) -> dict:
    from landuse.pipeline import classify_imagery

    res = classify_imagery([source], out, period="bench", scheduler="threads", workers=2, quiet=True, overwrite=True)
    t = res.summary["timings"]
    return {"plots_per_s": t["plots_per_s"], "read_s": t["read_s"], "infer_s": t["infer_s"], "wall_s": t["wall_s"]}


def main(argv: list[str] | None = None) -> int:
    from tests.stac_servers import RangeServer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=8960)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args(argv)
    cog = make_cog(DATA / f"stac_http_{args.size}.tif", args.size)
    grid = PlotGrid.from_rasters([cog])
    results: dict = {"raster": {"path": str(cog.relative_to(ROOT)), "size_px": args.size, "bytes": cog.stat().st_size,
                                "plots": grid.size}, "cpu_flags": cpu_flags(),
                     "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
                     "gdal_remote_settings": remote_gdal_settings(), "load_average_start": list(os.getloadavg())}
    with RangeServer(cog.parent) as http, tempfile.TemporaryDirectory() as tmp:
        url = f"{http.url}/{cog.name}"
        for name, src in (("disk", str(cog)), ("http", url)):
            r0 = http.range_requests()
            read = bench_read(src, grid, args.reps)
            pipe = bench_pipeline(src, Path(tmp) / name)
            results[name] = {"read_plots_per_s": round(read, 1), "pipeline": pipe,
                             "range_requests": http.range_requests() - r0 if name == "http" else 0}
            print(f"{name:5s}: read {read:8.1f} plots/s   pipeline {pipe['plots_per_s']:7.1f} plots/s "
                  f"(read {pipe['read_s']:.1f} s, infer {pipe['infer_s']:.1f} s)", flush=True)
    results["ratios"] = {
        "read_http_over_disk": round(results["http"]["read_plots_per_s"] / results["disk"]["read_plots_per_s"], 3),
        "pipeline_http_over_disk": round(results["http"]["pipeline"]["plots_per_s"] / results["disk"]["pipeline"]["plots_per_s"], 3),
    }
    print(f"http / disk: read {results['ratios']['read_http_over_disk']:.2f}, "
          f"pipeline {results['ratios']['pipeline_http_over_disk']:.2f}; "
          f"{results['http']['range_requests']} range requests; cpu flags {results['cpu_flags']}")
    results["load_average_end"] = list(os.getloadavg())
    print(f"load average (1, 5, 15 min) at the start {results['load_average_start']}, at the end {results['load_average_end']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_stac_http.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
