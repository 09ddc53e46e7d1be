"""Web map report at county scale: HTML size, build time, time until interactive in Chromium.

Targets: issue 5, < 30 MB of HTML and interactive within 10 s for 65,000 plots a period (no
imagery layers: ``--no-imagery``); issue 15, < ~30 MB and interactive within ~5 s for a county of
30,000 plots *with* each period's imagery as a layer (``--county``: 173 x 173 plots).

With ``--imagery`` (the default with ``--county``) each period gets a 4 m imagery GeoTIFF with
overviews (2, 4, 8) over the whole grid: the real North Dakota NAIP (../shared, 5 m) resampled to
4 m and tiled over the county (so the WebP sizes are those of real imagery), else synthetic
imagery; the report reads it through the overviews at the budgeted resolution.

Synthetic runs of ``--rows`` x ``--cols`` plots (default 255 x 255 = 65,025) with ``--fraction``
of the plots changed (default 3 %), written by tests/runfactory.py. Thumbnails (2 per change plot)
come from one of:

* ``--thumbs aerial`` (default when ../shared/data is there): real NAIP 224 m plots of
  ../shared/data/aerialsmall served per plot, so the JPEG sizes are those of real imagery;
  read time is not included (see the ``scene`` mode);
* ``--thumbs scene``: synthetic imagery GeoTIFFs (16 m pixels) read through
  ``landuse.imagery.Scene.read_plot`` as the CLI does: the build time includes the reads;
* ``--thumbs none``.

The page is opened from file:// in headless Chromium (network off through a dead loopback proxy);
"interactive" is the time from ``driver.get`` until both class overlays have decoded and the
change layer exists (``window.landuseReport.ready``), then a popup is opened and timed.

    .venv/bin/python benchmarks/bench_webmap.py            # JSON -> benchmarks/results/webmap.json
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from landuse.grid import PlotGrid  # noqa: E402
from landuse.report.webmap import write_report  # noqa: E402
from tests.runfactory import make_pair  # noqa: E402

AERIAL = ROOT.parent / "shared" / "data" / "aerialsmall" / "train"
TARGET_MB, TARGET_S = 30.0, 10.0
COUNTY_TARGET_S = 5.0
NAIP = sorted((ROOT.parent / "shared" / "data" / "rasters" / "naip_nd_timeseries").glob("*.tif"))


def county_imagery(path: Path, grid: PlotGrid, period: int, res_m: float = 4.0) -> Path:
    """A 4 m RGB GeoTIFF (tiled, deflate, overviews 2/4/8) over the grid: real NAIP tiled, else synthetic."""
    import rasterio
    from affine import Affine
    from rasterio.enums import Resampling

    k = int(round(grid.plot_size / res_m))
    h, w = grid.height * k, grid.width * k
    if NAIP:
        with rasterio.open(NAIP[period % len(NAIP)]) as src:
            scale = abs(src.res[0]) / res_m
            tile = src.read((1, 2, 3), out_shape=(3, int(src.height * scale), int(src.width * scale)),
                            resampling=Resampling.bilinear)
        # mirror-tile so seams are invisible
        tile = np.concatenate([tile, tile[:, ::-1]], axis=1)
        tile = np.concatenate([tile, tile[:, :, ::-1]], axis=2)
        reps = (1, -(-h // tile.shape[1]), -(-w // tile.shape[2]))
        data = np.tile(tile, reps)[:, :h, :w]
    else:
        rng = np.random.default_rng(period)
        data = rng.integers(40, 200, (3, h, w), dtype=np.uint8)
    t = grid.transform @ Affine.scale(1.0 / k)
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=3, dtype="uint8", crs=grid.crs, transform=t,
                       tiled=True, blockxsize=512, blockysize=512, compress="deflate", photometric="RGB") as dst:
        dst.write(data)
        dst.build_overviews([2, 4, 8], Resampling.average)
    return path


class AerialPlots:
    """A PlotReader serving real NAIP plots (aerialsmall PNGs), chosen per plot by a hash."""

    def __init__(self, folder: Path, offset: int) -> None:
        from PIL import Image

        files = sorted(folder.rglob("*.png"))
        if not files:
            raise SystemExit(f"no PNG under {folder}; use --thumbs scene or none")
        self.images = [np.asarray(Image.open(p).convert("RGB")) for p in files[:120]]
        self.offset = offset

    def read_plot(self, grid: PlotGrid, row: int, col: int, pixels: int = 224) -> tuple[np.ndarray, np.ndarray]:
        from PIL import Image

        img = self.images[(row * 7919 + col * 104729 + self.offset) % len(self.images)]
        out = np.asarray(Image.fromarray(img).resize((pixels, pixels), Image.Resampling.BILINEAR))
        return out, np.ones((pixels, pixels), dtype=bool)


def cpu_flags() -> dict[str, bool]:
    """avx2 / avx512 / vnni of this machine (from /proc/cpuinfo)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split("flags", 2)[1].split("\n", 1)[0].split())
    except (OSError, IndexError):
        flags = set()
    return {"avx2": "avx2" in flags, "avx512f": "avx512f" in flags, "vnni": bool({"avx512_vnni", "avx_vnni"} & flags)}


def open_in_chromium(html: Path, shot: Path) -> dict:
    """Open the report offline in headless Chromium; seconds until ready, popup, console errors."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    chromium, driver_bin = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_bin:
        return {"skipped": "chromium / chromedriver not installed"}
    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1280,860", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(driver_bin))
    driver.set_page_load_timeout(120)
    try:
        t0 = time.perf_counter()
        driver.get(html.as_uri())  # returns after the load event
        t_load = time.perf_counter() - t0
        WebDriverWait(driver, 120, poll_frequency=0.05).until(
            lambda d: d.execute_script("return !!(window.landuseReport && window.landuseReport.ready)")
        )
        t_ready = time.perf_counter() - t0
        facts = driver.execute_script(
            """var R = window.landuseReport;
               return {readyAt: R.readyAt, features: R.layers.change.getLayers().length,
                       images: document.querySelectorAll('img.lu-classes').length,
                       imagery: document.querySelectorAll('img.lu-imagery').length,
                       paths: document.querySelectorAll('.leaflet-overlay-pane path').length};"""
        )
        t1 = time.perf_counter()
        driver.execute_script(
            """var R = window.landuseReport, l = R.layers.change.getLayers()[0];
               R.map.setView(l.getBounds().getCenter(), R.map.getZoom() + 2, {animate: false}); l.openPopup();"""
        )
        driver.execute_script("return document.querySelectorAll('.leaflet-popup-content img').length")
        t_popup = time.perf_counter() - t1
        t2 = time.perf_counter()
        driver.execute_script("var R = window.landuseReport; R.map.closePopup(); R.map.fitBounds(R.layers.a.getBounds(), {animate: false}); R.swipe.set(0.3);")
        t_pan = time.perf_counter() - t2
        driver.save_screenshot(str(shot))
        errors = [e["message"][:200] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return {
        "load_event_s": round(t_load, 3),
        "interactive_s": round(t_ready, 3),
        "ready_at_ms_after_navigation": round(facts["readyAt"], 1),
        "popup_open_s": round(t_popup, 3),
        "fit_and_swipe_s": round(t_pan, 3),
        "features_in_page": facts["features"],
        "svg_paths": facts["paths"],
        "class_images": facts["images"],
        "imagery_images": facts["imagery"],
        "console_errors": errors,
        "screenshot": str(shot.relative_to(ROOT)) if shot.is_relative_to(ROOT) else str(shot),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=255)
    ap.add_argument("--cols", type=int, default=255)
    ap.add_argument("--fraction", type=float, default=0.03)
    ap.add_argument("--thumbs", choices=("aerial", "scene", "none"), default="aerial" if AERIAL.exists() else "scene")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--county", action="store_true", help="30,000 plots (173 x 173) with imagery layers (issue 15)")
    ap.add_argument("--imagery", action=argparse.BooleanOptionalAction, default=None,
                    help="imagery layers from 4 m GeoTIFFs with overviews (default: on with --county)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "webmap.json")
    args = ap.parse_args(argv)
    if args.county:
        args.rows = args.cols = 173
        if args.out == ROOT / "benchmarks" / "results" / "webmap.json":
            args.out = ROOT / "benchmarks" / "results" / "webmap_county.json"
    with_imagery = args.county if args.imagery is None else args.imagery
    target_s = COUNTY_TARGET_S if args.county else TARGET_S

    work = Path(tempfile.mkdtemp(prefix="bench-webmap-"))
    try:
        t0 = time.perf_counter()
        a, b, change = make_pair(work, rows=args.rows, cols=args.cols, fraction=args.fraction,
                                 imagery=args.thumbs == "scene", plots_geojson=False)
        t_make = time.perf_counter() - t0
        t_img = 0.0
        if with_imagery:
            t1 = time.perf_counter()
            for run, period in ((a, 0), (b, 1)):
                tif = county_imagery(work / f"imagery_{period}.tif", a.grid, period)
                man = json.loads((run.path / "manifest.json").read_text())
                man["inputs"] = [{"path": str(tif), "size": tif.stat().st_size, "mtime": tif.stat().st_mtime}]
                (run.path / "manifest.json").write_text(json.dumps(man))
            t_img = time.perf_counter() - t1
        readers = None
        if args.thumbs == "aerial":
            readers = (AerialPlots(AERIAL, 0), AerialPlots(AERIAL, 57))
        html = work / "report.html"
        r = write_report(a.path, b.path, html, change_dir=change, basemap="none", thumbnails=args.thumbs != "none",
                         readers=readers, imagery=with_imagery)
        page = html.read_text()
        n_jpeg = page.count("data:image/jpeg;base64,")
        jpeg_bytes = sum(len(s.split('"', 1)[0]) for s in page.split("data:image/jpeg;base64,")[1:])
        png_bytes = sum(len(s.split('"', 1)[0]) for s in page.split("data:image/png;base64,")[1:])
        webp_bytes = sum(len(s.split('"', 1)[0]) for s in page.split("data:image/webp;base64,")[1:])
        result = {
            "benchmark": "webmap",
            "plots_per_period": args.rows * args.cols,
            "grid": f"{args.rows} x {args.cols}",
            "changed_fraction": args.fraction,
            "thumbnails_mode": args.thumbs,
            "change_features": r.change_features,
            "thumbnails": r.thumbnails,
            "html_mb": round(r.bytes / 1e6, 2),
            "html_target_mb": TARGET_MB,
            "html_breakdown_mb": {"thumbnails_b64": round(jpeg_bytes / 1e6, 2), "class_pngs_b64": round(png_bytes / 1e6, 2),
                                  "imagery_webp_b64": round(webp_bytes / 1e6, 2),
                                  "rest": round((r.bytes - jpeg_bytes - png_bytes - webp_bytes) / 1e6, 2)},
            "imagery_layers": with_imagery,
            "imagery_source": ("NAIP ND 5 m resampled to 4 m, tiled" if NAIP else "synthetic 4 m") if with_imagery else None,
            "imagery_m_per_px": r.imagery_m_per_px,
            "imagery_setup_s": round(t_img, 2),
            "mean_thumbnail_b64_bytes": round(jpeg_bytes / n_jpeg) if n_jpeg else None,
            "overlay_px": list(r.overlay_px),
            "build_s": round(r.seconds, 2),
            "synthetic_runs_s": round(t_make, 2),
            "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version(), "cpu_flags": cpu_flags()},
        }
        if not args.no_browser:
            shot = ROOT / "tests" / "artifacts" / "webmap_bench.png"  # gitignored
            shot.parent.mkdir(parents=True, exist_ok=True)
            result["browser"] = open_in_chromium(html, shot)
            ready = result["browser"].get("interactive_s")
            if ready is not None:
                result["interactive_target_s"] = target_s
                result["interactive_vs_target"] = round(ready / target_s, 3)
        result["html_vs_target"] = round(r.bytes / 1e6 / TARGET_MB, 3)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"HTML {result['html_mb']} MB = {result['html_vs_target']:.2f} x the {TARGET_MB:.0f} MB target; "
          f"build {result['build_s']} s", end="")
    if "interactive_s" in result.get("browser", {}):
        print(f"; interactive in {result['browser']['interactive_s']} s = {result['interactive_vs_target']:.2f} x the "
              f"{target_s:.0f} s target")
    else:
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
