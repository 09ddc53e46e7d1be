"""Throughput and memory of ``landuse classify`` against named baselines (not a timed test).

One script, one run, side by side on the same generated rasters and the same model (the bundled
default model unless ``--model``):

(a) bare inference: ``onnxruntime`` ``session.run`` on pre-loaded float32 tensors, batch 1 / 8 / 32
    x (1 process x 1 thread, 1 process x 2 threads, 2 processes x 1 thread); the best is the
    ceiling. Measured before and after (b), (c), (d); the higher of the two counts (conservative).
(b) ``landuse classify RASTER --period bench --out DIR`` run exactly as a user runs it (the
    console script in a fresh process, default options, start-up and all outputs included) at
    3,600 / 10,000 / 30,000 plots; wall from process start to exit; peak RSS of the process tree.
(c) the warp path: the 10,000-plot raster classified on a grid in the next UTM zone
    (``--grid``), every plot warped.
(d) torchgeo at 10,000 plots: ``bench_torchgeo.py`` run by ``--torchgeo-python`` (a separate
    venv, see that script), DataLoader workers 0 and 2, the best counts.

Also: a per-phase profile of the 10,000-plot run (``summary.json`` ``timings.phases`` plus a
single-thread split of one chunk's read into decode / merge / plot slicing and of a batch into
assembly / preprocessing / ``session.run``), and ``--rss``: peak RSS of the default pipeline on
about 1 GB and about 10 GB of imagery (a VRT mosaic of shifted copies of the 30,000-plot raster),
with the mean-colour test model so the 10 GB run takes minutes, not an hour (the model's own
memory is a constant).

Rasters: RGB uint8 at 1 m in EPSG:32614, tiled 512, DEFLATE + predictor 2, multi-scale noise
(as ``reference/performance.md``'s), the origin on the 224 m plot grid so every plot is whole;
the 10,000-plot raster is generated, the others are cropped / repeated from it.
Every result records the CPU model and flags (avx2 / avx512f / avx512_vnni / amx) and the load
average (``os.getloadavg``) at the start and end of every measurement: the machine is shared.

Usage::

    git archive C | tar -x -C /tmp/before && echo C > /tmp/before/.commit   # optional: "before" runs
    python benchmarks/bench_pipeline.py [--plots 3600,10000,30000] [--torchgeo-python /tmp/tgvenv/bin/python]
        [--rss] [--before-src /tmp/before --before-schedulers local] [--extra-schedulers local] [--model PATH]
    python benchmarks/bench_pipeline.py --report benchmarks/results/bench_pipeline.json   # README tables

Writes ``benchmarks/results/bench_pipeline.json`` and prints b/a, c/b, b/d.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PLOT = 224
# The raster shapes (plot rows x plot columns) of each plot count.
SHAPES = {3600: (60, 60), 10000: (100, 100), 30000: (150, 200)}
sys.path.insert(0, str(ROOT))


def _shown(path: str | Path) -> str:
    """A path as results record it: relative to the repository when inside it (no machine paths)."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(path)


def machine() -> dict:
    """CPU model, the vector flags that decide inference speed, cores, software versions."""
    flags: set[str] = set()
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    import onnxruntime
    import rasterio

    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "flags": {f: f in flags for f in wanted},
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "rasterio": rasterio.__version__,
        "gdal": rasterio.__gdal_version__,
    }


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


# -- inputs ----------------------------------------------------------------------------------


def make_raster(path: Path, rows: int, cols: int, seed: int = 0) -> Path:
    """RGB uint8 ``rows`` x ``cols`` plots at 1 m in EPSG:32614 (origin on the 224 m grid),
    tiled 512, DEFLATE + predictor 2."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    if path.exists():
        return path
    h, w = rows * PLOT, cols * PLOT
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp.tif")
    x0, y0 = 2232 * PLOT, 20982 * PLOT  # 499,968 E / 4,699,968 N: multiples of 224 m
    profile = dict(driver="GTiff", width=w, height=h, count=3, dtype="uint8", crs="EPSG:32614",
                   transform=Affine(1.0, 0, x0, 0, -1.0, y0), tiled=True, blockxsize=512,
                   blockysize=512, compress="DEFLATE", predictor=2, interleave="pixel", BIGTIFF="IF_SAFER")
    coarse = rng.uniform(40, 200, (3, math.ceil(h / 128) + 2, math.ceil(w / 128) + 2)).astype(np.float32)
    cpos = np.arange(w) / 128.0
    ci = cpos.astype(int)
    fc = (cpos - ci)[None, None, :]
    with rasterio.open(tmp, "w", **profile) as dst:
        for r0 in range(0, h, 512):
            hh = min(512, h - r0)
            rpos = np.arange(r0, r0 + hh) / 128.0
            ri = rpos.astype(int)
            fr = (rpos - ri)[None, :, None]
            base = (coarse[:, ri][:, :, ci] * (1 - fr) * (1 - fc) + coarse[:, ri + 1][:, :, ci] * fr * (1 - fc)
                    + coarse[:, ri][:, :, ci + 1] * (1 - fr) * fc + coarse[:, ri + 1][:, :, ci + 1] * fr * fc)
            mid = np.kron(rng.normal(0, 12, (3, math.ceil(hh / 16), math.ceil(w / 16))).astype(np.float32),
                          np.ones((1, 16, 16), np.float32))
            data = base + mid[:, :hh, :w] + rng.normal(0, 6, (1, hh, w)).astype(np.float32)
            dst.write(np.clip(data, 0, 255).astype(np.uint8), window=Window(0, r0, w, hh))
    tmp.rename(path)
    return path


def derive_raster(path: Path, base: Path, rows: int, cols: int) -> Path:
    """A ``rows`` x ``cols`` plot raster of ``base``'s layout and content, cropped or repeated
    (wrapping around; the content repeats only at the base's 22 km scale, so decoding costs the
    same): generating fresh noise for 30,000 plots takes half an hour on a loaded 2-core box."""
    import rasterio
    from rasterio.windows import Window

    if path.exists():
        return path
    tmp = path.with_suffix(".tmp.tif")
    h, w = rows * PLOT, cols * PLOT
    with rasterio.open(base) as src:
        profile = {**src.profile, "width": w, "height": h, "tiled": True, "blockxsize": 512, "blockysize": 512,
                   "compress": "DEFLATE", "predictor": 2, "interleave": "pixel", "BIGTIFF": "IF_SAFER"}
        cols_idx = np.arange(w) % src.width
        with rasterio.open(tmp, "w", **profile) as dst:
            for r0 in range(0, h, 512):
                idx = np.arange(r0, min(h, r0 + 512)) % src.height
                runs = np.split(idx, np.flatnonzero(np.diff(idx) != 1) + 1)
                data = np.concatenate([src.read(window=Window(0, int(r[0]), src.width, r.size)) for r in runs], axis=1)
                dst.write(np.ascontiguousarray(data[:, :, cols_idx]), window=Window(0, r0, w, idx.size))
    tmp.rename(path)
    return path


def mosaic_vrt(path: Path, source: Path, copies: int) -> Path:
    """A VRT placing ``copies`` copies of ``source`` side by side (west to east)."""
    import rasterio

    with rasterio.open(source) as src:
        w, h, t = src.width, src.height, src.transform
        crs = src.crs.to_wkt()
    bands = []
    for b in (1, 2, 3):
        srcs = "".join(
            f'<SimpleSource><SourceFilename relativeToVRT="0">{source}</SourceFilename><SourceBand>{b}</SourceBand>'
            f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/><DstRect xOff="{k * w}" yOff="0" xSize="{w}" ySize="{h}"/>'
            f"</SimpleSource>" for k in range(copies))
        interp = ("Red", "Green", "Blue")[b - 1]
        bands.append(f'<VRTRasterBand dataType="Byte" band="{b}"><ColorInterp>{interp}</ColorInterp>{srcs}</VRTRasterBand>')
    xml = (f'<VRTDataset rasterXSize="{w * copies}" rasterYSize="{h}"><SRS>{crs}</SRS>'
           f"<GeoTransform>{t.c}, {t.a}, 0, {t.f}, 0, {t.e}</GeoTransform>{''.join(bands)}</VRTDataset>")
    path.write_text(xml)
    return path


def mean_colour_model(folder: Path) -> Path:
    """The serve tests' 224 px mean-colour export (ReduceMean + MatMul + Softmax): costs ~nothing,
    so a run over 10 GB of imagery measures the pipeline's memory, not the model's speed."""
    if not (folder / "model.onnx").exists():
        from tests.test_serve import build_mean_colour_export

        build_mean_colour_export(folder, ["red", "green", "blue"])
    return folder


class RssSampler:
    """Peak RSS (MB) of a process tree (a pid and its children), sampled every 0.1 s with psutil."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        import threading

        self.pid, self.every = pid, every
        self.peak = {"main": 0.0, "largest_child": 0.0, "total": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        import psutil

        try:
            me = psutil.Process(self.pid)
            own = me.memory_info().rss / 2**20
            kids = []
            for child in me.children(recursive=True):
                try:
                    kids.append(child.memory_info().rss / 2**20)
                except psutil.Error:
                    continue
        except psutil.Error:
            return
        self.peak["main"] = max(self.peak["main"], own)
        self.peak["largest_child"] = max(self.peak["largest_child"], max(kids, default=0.0))
        self.peak["total"] = max(self.peak["total"], own + sum(kids))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = {k: round(v, 1) for k, v in self.peak.items()}


# -- (a) bare inference ----------------------------------------------------------------------


def _session(model: str, threads: int):  # noqa: ANN202 - onnxruntime type
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(str(Path(model) / "model.onnx"), sess_options=so, providers=["CPUExecutionProvider"])


def _bare(model: str, batch: int, threads: int, seconds: float, barrier=None) -> tuple[int, float]:  # noqa: ANN001
    """Images and seconds of ``session.run`` on one pre-loaded float32 batch, for ~``seconds``."""
    sess = _session(model, threads)
    inp = sess.get_inputs()[0]
    shape = [batch if not isinstance(d, int) or d <= 0 else d for d in inp.shape]
    if shape[0] != batch:
        batch = shape[0]
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    name = inp.name
    t0 = time.perf_counter()
    k = 0
    while time.perf_counter() - t0 < 0.3 or k < 2:  # warm-up, and the calls per second
        sess.run(None, {name: x})
        k += 1
    calls = max(3, int(seconds * k / (time.perf_counter() - t0)))
    if barrier is not None:
        barrier.wait()
    t0 = time.perf_counter()
    for _ in range(calls):
        sess.run(None, {name: x})
    return calls * batch, time.perf_counter() - t0


def _bare_proc(args: tuple) -> tuple[int, float]:
    model, batch, threads, seconds, barrier = args
    return _bare(model, batch, threads, seconds, barrier)


def bench_a(model: str, seconds: float = 2.0) -> dict:
    """Best of batch 1 / 8 / 32 x (1 x 1, 1 x 2, 2 processes x 1 thread)."""
    import multiprocessing as mp

    out: dict = {"load_before": load(), "runs": []}
    ctx = mp.get_context("spawn")
    for batch in (1, 8, 32):
        for procs, threads in ((1, 1), (1, 2), (2, 1)):
            if procs == 1:
                n, s = _bare(model, batch, threads, seconds)
                rate = n / s
            else:
                with ctx.Manager() as mgr:
                    barrier = mgr.Barrier(procs)
                    with ctx.Pool(procs) as pool:
                        res = pool.map(_bare_proc, [(model, batch, threads, seconds, barrier)] * procs)
                rate = sum(n for n, _ in res) / max(s for _, s in res)
            out["runs"].append({"batch": batch, "procs": procs, "threads": threads, "plots_per_s": round(rate, 1)})
    best = max(out["runs"], key=lambda r: r["plots_per_s"])
    out["best"] = best
    out["best_plots_per_s"] = best["plots_per_s"]
    out["load_after"] = load()
    return out


# -- (b) / (c) the command as a user runs it -------------------------------------------------


def scored(summary: dict) -> int:
    """Plots of a run that went through the model (classified, unknown or uncertain)."""
    un = summary.get("unclassified", {})
    return int(summary["plots"]["classified"] + sum(un.get(k, {}).get("plots", 0) for k in ("unknown", "uncertain")))


def landuse_exe() -> str:
    exe = Path(sys.executable).parent / "landuse"
    return str(exe) if exe.exists() else "landuse"


def run_cli(raster: Path, out: Path, extra: list[str] | None = None, model: str | None = None,
            src: Path | None = None) -> dict:
    """``landuse classify RASTER --period bench --out OUT --overwrite [extra]``: wall (process
    start to exit), peak RSS of the process tree, and the run's summary timings. ``src``: run the
    package found there instead (an export of an older commit, via PYTHONPATH)."""
    cmd = [landuse_exe(), "classify", str(raster), "--period", "bench", "--out", str(out), "--overwrite"]
    if model:
        cmd += ["--model", model]
    cmd += extra or []
    import resource

    before = load()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(src)} if src else None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=src or ROOT, env=env)
    with RssSampler(proc.pid) as rss:
        stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr[-3000:]}")
    s = json.loads((out / "summary.json").read_text())
    t = s["timings"]
    return {
        "command": " ".join(["landuse", *cmd[1:2], _shown(raster), *cmd[3:5], "DIR", *cmd[6:]]),
        "plots": s["plots"]["total"],
        "plots_classified": s["plots"]["classified"],
        # plots the model ran on: classified, flagged unknown (the default model flags ~40 % of
        # this noise raster as canopy) or below the tag threshold; (a) counts the same
        "plots_scored": scored(s),
        "wall_s": round(wall, 3),
        "classified_per_s": round(s["plots"]["classified"] / wall, 1),
        "scored_per_s": round(scored(s) / wall, 1),
        # CPU seconds of the command (user + system, its whole process tree): steadier than the
        # wall on a loaded machine; per classified plot it compares with (a)'s session.run CPU
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_plot": round(cpu / max(scored(s), 1) * 1e3, 3),
        "startup_s": round(wall - t["wall_s"] - sum(t.get("phases", {}).get(k, 0.0) for k in ("open_imagery", "plan_grid")), 3)
        if "phases" in t else None,
        "outside_classify_scene_s": round(wall - t["wall_s"], 3),
        "timings": t,
        "peak_rss_mb": rss.peak,
        "load_before": before,
        "load_after": load(),
    }


# -- the profile's single-thread split of read and inference ---------------------------------


def micro_profile(raster: Path, model: str, plots: int = 800) -> dict:
    """Per plot (ms of CPU of one thread, ``time.thread_time``: steadier than wall on a shared
    machine): GDAL read of the strips (decode), Scene.read_region (read + merge),
    Scene.read_chunk (+ slicing into plots), the same ground read through the warp path (grid in
    the next UTM zone); batch assembly, preprocessing, session.run."""
    import rasterio
    from rasterio.windows import Window

    from landuse.classify.base import load_classifier
    from landuse.grid import Chunk, PlotGrid
    from landuse.imagery import Scene

    scene = Scene.open([str(raster)])
    grid = PlotGrid.from_footprints(list(scene.footprints()))
    width = min(grid.width, 100)
    rows = max(1, plots // width)
    strips = [Chunk(r, 0, 1, width) for r in range(rows)]
    n = rows * width
    out: dict = {"plots": n, "load_before": load()}
    os.environ.setdefault("GDAL_CACHEMAX", "256")
    with rasterio.open(raster) as ds:
        t0 = time.thread_time()
        for ch in strips:
            ds.read([1, 2, 3], window=Window(ch.col_off * PLOT, ch.row_off * PLOT, ch.width * PLOT, PLOT))
        out["gdal_read_ms"] = (time.thread_time() - t0) / n * 1e3
    from landuse.imagery import close_datasets

    close_datasets()
    t0 = time.thread_time()
    for ch in strips:
        scene.read_region(grid, ch)
    out["read_region_ms"] = (time.thread_time() - t0) / n * 1e3
    close_datasets()
    t0 = time.thread_time()
    pix = None
    for ch in strips:
        pix, _ = scene.read_chunk(grid, ch)
    out["read_chunk_ms"] = (time.thread_time() - t0) / n * 1e3
    # the warp path's read of the same ground: the grid in the next UTM zone (every plot resampled)
    wgrid = PlotGrid.from_rasters([raster], crs="EPSG:32613")
    cov = scene.coverage(wgrid)
    r_mid = wgrid.height // 2
    inside = np.flatnonzero(cov[r_mid] >= 1.0)
    wstrips = [Chunk(r, int(inside[0]) + k, 1, 32) for r in range(r_mid - rows // 2, r_mid + rows - rows // 2)
               for k in range(0, min(width, inside.size - 32), 32)]
    close_datasets()
    t0 = time.thread_time()
    for ch in wstrips:
        scene.read_chunk(wgrid, ch)
    wn = sum(ch.size for ch in wstrips)
    out["warp_read_chunk_ms"] = (time.thread_time() - t0) / max(wn, 1) * 1e3
    clf = load_classifier(model, threads=1, batch_size=8)
    assert pix is not None
    idx = np.arange(pix.shape[0])
    t_asm = t_pred = 0.0
    k = 0
    for b in range(0, pix.shape[0] - 7, 8):
        t0 = time.thread_time()
        batch = np.ascontiguousarray(pix[idx[b : b + 8]])
        t1 = time.thread_time()
        clf.predict(batch)
        t2 = time.thread_time()
        t_asm, t_pred, k = t_asm + t1 - t0, t_pred + t2 - t1, k + 8
    sess = _session(model, 1)
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(1).random((8, 3, *clf.input_size), dtype=np.float32)
    t0 = time.thread_time()
    reps = max(1, k // 8)
    for _ in range(reps):
        sess.run(None, {name: x})
    run_ms = (time.thread_time() - t0) / (reps * 8) * 1e3
    out.update({
        "batch_assembly_ms": t_asm / k * 1e3,
        "predict_ms": t_pred / k * 1e3,
        "session_run_ms": run_ms,
    })
    out["decode_ms"] = out["gdal_read_ms"]
    out["merge_ms"] = out["read_region_ms"] - out["gdal_read_ms"]
    out["slice_into_plots_ms"] = out["read_chunk_ms"] - out["read_region_ms"]
    out["preprocess_ms"] = out["predict_ms"] - run_ms
    out["resample_warp_ms"] = out["warp_read_chunk_ms"] - out["read_chunk_ms"]
    out = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}
    out["load_after"] = load()
    return out


# -- (d) torchgeo ------------------------------------------------------------------------------


def bench_d(python: str, raster: Path, model: str, work: Path) -> dict:
    runs = []
    for workers in (0, 2):
        dest = work / f"torchgeo-{workers}.json"
        dest.unlink(missing_ok=True)
        before = load()
        cmd = [python, str(ROOT / "benchmarks" / "bench_torchgeo.py"), "--raster", str(raster),
               "--model", str(Path(model) / "model.onnx"), "--workers", str(workers), "--out", str(dest)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
            return {"error": f"{' '.join(cmd[:2])} failed: {last}", "runs": runs}
        entry = json.loads(dest.read_text())["runs"][-1]
        entry["load_before"], entry["load_after"] = before, load()
        runs.append(entry)
    return {"runs": runs, "best_plots_per_s": max(r["plots_per_s"] for r in runs)}


# -- the README tables -------------------------------------------------------------------------


def markdown(result: dict) -> str:
    """The README's tables from a results file (``--report FILE``)."""
    a = result["a_best_plots_per_s"]
    lines = ["| run | plots scored | wall s | plots/s | ratio | load (1 min) |", "|---|---:|---:|---:|---:|---:|"]
    best = max([result["a_first"], result["a_again"]], key=lambda x: x["best_plots_per_s"])["best"]
    lines.append(f"| (a) bare `session.run`, best: batch {best['batch']}, {best['procs']} proc x {best['threads']} thread "
                 f"| | | {a:,.1f} | | {result['a_first']['load_before'][0]} / {result['a_again']['load_before'][0]} |")

    def row(name: str, r: dict, ratio: str) -> str:
        return (f"| {name} | {r['plots_scored']:,} | {r['wall_s']:,.1f} | {r['scored_per_s']:,.1f} | {ratio} "
                f"| {r['load_before'][0]} |")

    for n, r in result["b"].items():
        lines.append(row(f"(b) `landuse classify`, {int(n):,} plots ({r['timings']['scheduler']})", r,
                         f"b/a {result['ratios'][f'b/a {n}']}"))
    for sched, r in result.get("b_before", {}).items():
        if isinstance(r, dict):
            lines.append(row(f"(b) before, {result['b_before']['src_commit']}, 10,000 plots ({sched})", r,
                             f"b/a {result['ratios'][f'b/a 10000 before ({sched})']}"))
    if "c" in result:
        lines.append(row("(c) warp path, 10,000-plot raster on an EPSG:32613 grid", result["c"],
                         f"c/b {result['ratios'].get('c/b 10000')}"))
    d = result.get("d", {})
    if "best_plots_per_s" in d:
        lines.append(f"| (d) torchgeo, 10,000 plots | | | {d['best_plots_per_s']} | b/d {result['ratios'].get('b/d 10000')} | |")
    elif d:
        lines.append(f"| (d) torchgeo | not run: {d.get('error', '')} | | | | |")
    out = ["\n".join(lines)]
    b = result["b"].get("10000")
    if b:
        ph = b["timings"]["phases"]
        t = b["timings"]
        prof = result.get("profile_10000", {})
        rows = [
            ("process start + imports (outside the pipeline)", b["startup_s"]),
            ("open imagery + plan grid", ph.get("open_imagery", 0) + ph.get("plan_grid", 0)),
            ("model load (background thread, overlaps the above)", ph.get("model_load_background")),
            ("model load, client waiting for it", ph.get("model_load_client")),
            ("coverage (masks)", ph.get("coverage")),
            ("cluster start", ph.get("cluster_start")),
            ("model load per worker thread (sum)", ph.get("worker_model_load")),
            ("read (reader threads, sum)", ph.get("worker_read")),
            ("batch assembly (sum)", ph.get("worker_assemble")),
            ("inference incl. preprocessing (inference threads, sum)", ph.get("worker_infer")),
            ("inference threads waiting for pixels (sum)", ph.get("inference_waiting_for_pixels")),
            ("result transfer", ph.get("result_transfer")),
            ("Parquet parts (client thread, during the run)", ph.get("parquet_parts")),
            ("classify (wall)", t.get("classify_s")),
            ("finalise (wall)", t.get("finalise_s")),
            ("  GeoParquet (thread)", ph.get("finalise_geoparquet")),
            ("  GeoJSON (thread)", ph.get("finalise_geojson")),
            ("  GeoPackage (thread)", ph.get("finalise_gpkg")),
            ("  COGs", ph.get("finalise_cog")),
            ("whole command (wall)", b["wall_s"]),
        ]
        tab = ["| phase (10,000 plots) | seconds |", "|---|---:|"]
        tab += [f"| {k} | {v:,.3f} |" for k, v in rows if v is not None]
        out.append("\n".join(tab))
        if prof:
            keys = ["decode_ms", "merge_ms", "slice_into_plots_ms", "resample_warp_ms", "batch_assembly_ms",
                    "preprocess_ms", "session_run_ms"]
            tab = ["| per plot, one thread's CPU | ms |", "|---|---:|"]
            tab += [f"| {k.removesuffix('_ms').replace('_', ' ')} | {prof[k]:.3f} |" for k in keys if k in prof]
            out.append("\n".join(tab))
    if "rss" in result:
        tab = ["| imagery | plots | peak RSS MB (whole process tree) |", "|---|---:|---:|"]
        tab += [f"| {v['imagery_gb']} GB | {v['plots']:,} | {v['peak_rss_mb']['total']:,.0f} |" for v in result["rss"].values()]
        tab += [f"| {result['rasters'][n]['mb'] / 1e3:.2f} GB, default model | {int(n):,} | {r['peak_rss_mb']['total']:,.0f} |"
                for n, r in result["b"].items()]
        out.append("\n".join(tab))
    return "\n\n".join(out)


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plots", default="3600,10000,30000", help="plot counts of (b): any of 3600, 10000, 30000")
    ap.add_argument("--model", help="model export folder (default: the bundled model)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "landuse-bench", help="scratch folder")
    ap.add_argument("--torchgeo-python", default="/tmp/tgvenv/bin/python", help="python of the torchgeo venv for (d)")
    ap.add_argument("--extra-schedulers", default="", help="also run (b) at 10,000 plots with these --scheduler values")
    ap.add_argument("--skip-warp", action="store_true")
    ap.add_argument("--before-src", type=Path, help="also run (b) at 10,000 plots with the package in this folder "
                    "(`git archive C | tar -x -C DIR; echo C > DIR/.commit`): the figures before the changes")
    ap.add_argument("--before-schedulers", default="local,threads", help="--scheduler values of the --before-src runs")
    ap.add_argument("--rss", action="store_true", help="peak RSS on ~1 GB and ~10 GB of imagery (mean-colour model)")
    ap.add_argument("--a-seconds", type=float, default=2.0)
    ap.add_argument("--out", type=Path, default=RESULTS / "bench_pipeline.json")
    ap.add_argument("--report", type=Path, help="print the README tables of this results file and stop")
    args = ap.parse_args(argv)
    if args.report:
        print(markdown(json.loads(args.report.read_text())))
        return 0

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    from landuse.classify.base import DEFAULT_MODEL_DIR, sha256_file

    model = str(Path(args.model).resolve()) if args.model else str(DEFAULT_MODEL_DIR)
    plots = [int(p) for p in args.plots.split(",") if p]
    rasters = {}
    for n in sorted(set(plots) | {10000}, key=lambda k: k != 10000):
        t0 = time.perf_counter()
        path = work / f"county_{SHAPES[n][0]}x{SHAPES[n][1]}.tif"
        rasters[n] = make_raster(path, *SHAPES[n]) if n == 10000 else derive_raster(path, rasters[10000], *SHAPES[n])
        print(f"raster {n:,} plots: {rasters[n]} ({rasters[n].stat().st_size / 1e6:.0f} MB, {time.perf_counter() - t0:.0f} s)", flush=True)

    result: dict = {
        "machine": machine(),
        "model": {"path": _shown(model), "sha256": sha256_file(Path(model) / "model.onnx"),
                  "int8": b"QuantizeLinear" in (Path(model) / "model.onnx").read_bytes()},
        "rasters": {str(n): {"plots": n, "shape_plots": SHAPES[n], "mb": round(r.stat().st_size / 1e6, 1),
                             "layout": "1 m RGB, tiled 512, DEFLATE+PRED2, origin on the 224 m grid"}
                    for n, r in rasters.items()},
        "load_start": load(),
    }
    print(f"machine: {result['machine']}\nmodel: {result['model']}", flush=True)
    result["a_first"] = bench_a(model, args.a_seconds)
    print(f"(a) bare inference: best {result['a_first']['best']} load {result['a_first']['load_before']}", flush=True)

    result["b"] = {}
    for n in plots:
        r = run_cli(rasters[n], work / f"run-{n}")
        result["b"][str(n)] = r
        print(f"(b) landuse classify, {n:,} plots: {r['scored_per_s']} plots/s, wall {r['wall_s']} s "
              f"(start-up {r['startup_s']} s), scheduler {r['timings']['scheduler']}, peak RSS {r['peak_rss_mb']}, "
              f"load {r['load_before']}", flush=True)
    result["b_schedulers"] = {}
    for sched in [s for s in args.extra_schedulers.split(",") if s]:
        r = run_cli(rasters[10000], work / f"run-10000-{sched}", ["--scheduler", sched])
        result["b_schedulers"][sched] = r
        print(f"(b) --scheduler {sched}, 10,000 plots: {r['scored_per_s']} plots/s, wall {r['wall_s']} s", flush=True)
    if args.before_src:
        marker = args.before_src / ".commit"  # written by whoever exported the tree
        result["b_before"] = {"src_commit": marker.read_text().strip() if marker.exists() else args.before_src.name}
        for sched in [s for s in args.before_schedulers.split(",") if s]:
            r = run_cli(rasters[10000], work / f"run-10000-before-{sched}", ["--scheduler", sched], src=args.before_src.resolve())
            result["b_before"][sched] = r
            print(f"(b) before the changes, --scheduler {sched}, 10,000 plots: {r['scored_per_s']} plots/s, "
                  f"wall {r['wall_s']} s, load {r['load_before']}", flush=True)
    result["profile_10000"] = micro_profile(rasters[10000], model)
    print(f"profile (ms per plot, one thread): {result['profile_10000']}", flush=True)

    if not args.skip_warp:
        from landuse.grid import PlotGrid

        gfile = work / "grid_zone13.json"
        PlotGrid.from_rasters([rasters[10000]], crs="EPSG:32613").save(gfile)
        r = run_cli(rasters[10000], work / "run-10000-warp", ["--grid", str(gfile)])
        result["c"] = r
        print(f"(c) warp path, grid in EPSG:32613: {r['scored_per_s']} plots/s of {r['plots_scored']:,} "
              f"scored, wall {r['wall_s']} s", flush=True)
    tg = Path(args.torchgeo_python)
    if tg.exists():
        result["d"] = bench_d(str(tg), rasters[10000], model, work)
        print(f"(d) torchgeo, 10,000 plots: {result['d'].get('error') or [(r['workers'], r['plots_per_s']) for r in result['d']['runs']]}",
              flush=True)
    else:
        print(f"(d) skipped: {tg} does not exist (see bench_torchgeo.py)", flush=True)

    result["a_again"] = bench_a(model, args.a_seconds)
    print(f"(a) bare inference, again: best {result['a_again']['best']}", flush=True)
    a = max(result["a_first"]["best_plots_per_s"], result["a_again"]["best_plots_per_s"])
    result["a_best_plots_per_s"] = a

    if args.rss:
        tiny = str(mean_colour_model(work / "meancolour224-model"))
        big = mosaic_vrt(work / "county_4x_30000.vrt", derive_raster(work / "county_150x200.tif", rasters[10000], *SHAPES[30000]), 4)
        gb_small = rasters[10000].stat().st_size / 1e9
        gb_big = 4 * (work / "county_150x200.tif").stat().st_size / 1e9
        result["rss"] = {}
        for name, src, gb in (("small", rasters[10000], gb_small), ("big", big, gb_big)):
            r = run_cli(src, work / f"run-rss-{name}", model=tiny)
            result["rss"][name] = {"imagery_gb": round(gb, 2), "plots": r["plots"], "wall_s": r["wall_s"],
                                   "peak_rss_mb": r["peak_rss_mb"], "load_before": r["load_before"]}
            print(f"RSS on {gb:.1f} GB of imagery ({r['plots']:,} plots, mean-colour model): {r['peak_rss_mb']}", flush=True)

    ratios: dict = {}
    for n, r in result["b"].items():
        ratios[f"b/a {n}"] = round(r["scored_per_s"] / a, 3)
    for sched, r in result.get("b_before", {}).items():
        if isinstance(r, dict):
            ratios[f"b/a 10000 before ({sched})"] = round(r["scored_per_s"] / a, 3)
    if "c" in result and "10000" in result["b"]:
        ratios["c/b 10000"] = round(result["c"]["scored_per_s"] / result["b"]["10000"]["scored_per_s"], 3)
    if "best_plots_per_s" in result.get("d", {}) and "10000" in result["b"]:
        ratios["b/d 10000"] = round(result["b"]["10000"]["scored_per_s"] / result["d"]["best_plots_per_s"], 3)
    result["ratios"] = ratios
    result["targets"] = {"b/a 10000": ">= 0.90", "b/a 3600": ">= 0.85", "30000 wall_s": "<= 90",
                         "c/b": ">= 0.8", "peak_rss_mb": "< 1500, flat from 1 to 10 GB"}
    result["load_end"] = load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n| ratio | value | target |\n|---|---:|---|")
    for k, v in ratios.items():
        tgt = result["targets"].get(k, result["targets"].get(k.split(" ")[0], ""))
        print(f"| {k} | {v} | {tgt} |")
    if "30000" in result["b"]:
        print(f"30,000 plots: {result['b']['30000']['wall_s']} s wall (target <= 90 s)")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
