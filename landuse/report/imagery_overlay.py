"""A period's imagery as one web-map image layer, downsampled from the run's own sources.

Page budget (stated, measured by ``benchmarks/bench_webmap.py``): each period's imagery is drawn
at the sources' own resolution but never finer than :data:`FINEST_M` (4 m per pixel), and
coarser when the area needs more than :data:`MAX_PIXELS` pixels a period (about 24 million:
a square of ~19.6 km, ~7,600 plots, at 4 m; a 30,000-plot county comes out at ~8 m). The layer is
a lossy WebP with alpha (transparent where the sources have no data), embedded in the page.

Reading goes through the sources' overviews: each band is read decimated to the target
resolution with ``out_shape`` (GDAL picks the nearest overview level of a COG), then reprojected
to Web Mercator; several sources of a period are mosaicked (first one wins where they overlap).
"""

from __future__ import annotations

import base64
import glob
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from landuse.errors import InputError
from landuse.grid import PlotGrid

WEB_CRS = "EPSG:3857"
FINEST_M = 4.0  # metres per pixel: the finest the page carries
MAX_PIXELS = 24_000_000  # per period
WEBP_QUALITY = 62


@dataclass(frozen=True)
class ImageryOverlay:
    """One period's imagery, ready for an image overlay."""

    url: str  # data:image/webp;base64,...
    bounds: list[list[float]]  # [[south, west], [north, east]]
    shape: tuple[int, int]  # (h, w) pixels
    metres_per_px: float  # ground resolution at the grid's centre
    bytes: int  # of the encoded image (before base64)
    sources: int
    decimation: tuple[int, ...]  # per source: read at 1/k of its resolution (GDAL uses the overview for k >= 2 where one exists)


def expand_sources(sources: Sequence[str]) -> list[str]:
    """Paths, globs and folders (``*.tif`` inside) -> files; URLs kept as they are."""
    out: list[str] = []
    for s in sources:
        if "://" in s:
            out.append(s)
        elif any(ch in s for ch in "*?["):
            out += sorted(glob.glob(s))
        elif Path(s).is_dir():
            out += sorted(str(p) for p in Path(s).iterdir() if p.suffix.lower() in (".tif", ".tiff", ".vrt"))
        else:
            out.append(s)
    if not out:
        raise InputError(f"no imagery files match {', '.join(sources)}; pass `imagery_a` / `imagery_b` with the files or `imagery=False`")
    return out


def target_resolution(grid: PlotGrid, native_m: float, finest_m: float = FINEST_M, max_pixels: int = MAX_PIXELS) -> float:
    """Metres per pixel for the grid's area: the native resolution, never finer than ``finest_m``,
    coarser when the area would need more than ``max_pixels``."""
    minx, miny, maxx, maxy = grid.bounds
    area = (maxx - minx) * (maxy - miny)
    return max(native_m, finest_m, math.sqrt(area / max_pixels))


def _stretch(data: np.ndarray, valid: np.ndarray, stretch: dict | None) -> np.ndarray:
    """Bands -> uint8: as is for uint8, else the run's stretch (min / max) or 2-98 % percentiles."""
    if data.dtype == np.uint8:
        return data
    out = np.empty(data.shape, dtype=np.uint8)
    for i, band in enumerate(data.astype(np.float32)):
        vals = band[valid]
        if stretch and "min" in stretch and "max" in stretch:
            lo, hi = float(np.atleast_1d(stretch["min"])[min(i, len(np.atleast_1d(stretch["min"])) - 1)]), float(
                np.atleast_1d(stretch["max"])[min(i, len(np.atleast_1d(stretch["max"])) - 1)])
        elif vals.size:
            lo, hi = np.percentile(vals, [2, 98])
        else:
            lo, hi = 0.0, 1.0
        out[i] = np.clip((band - lo) / max(hi - lo, 1e-9) * 255, 0, 255).astype(np.uint8)
    return out


def imagery_overlay(
    grid: PlotGrid,
    sources: Sequence[str],
    bands: Sequence[int] | None = None,
    stretch: dict | None = None,
    finest_m: float = FINEST_M,
    max_pixels: int = MAX_PIXELS,
    quality: int = WEBP_QUALITY,
) -> ImageryOverlay:
    """Mosaic ``sources`` over the grid's extent in Web Mercator at the budgeted resolution."""
    import rasterio
    from PIL import Image
    from pyproj import Transformer
    from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

    files = expand_sources(sources)
    with rasterio.open(files[0]) as src:
        native = abs(src.res[0]) if src.crs and not src.crs.is_geographic else 1.0
    res_m = target_resolution(grid, native, finest_m, max_pixels)
    # Web Mercator metres are ground metres / cos(latitude)
    lon, lat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(
        (grid.bounds[0] + grid.bounds[2]) / 2, (grid.bounds[1] + grid.bounds[3]) / 2)
    merc_res = res_m / math.cos(math.radians(lat))
    dst_transform, width, height = calculate_default_transform(grid.crs, WEB_CRS, grid.width, grid.height, *grid.bounds,
                                                               resolution=merc_res)
    n_out = 3
    rgb = np.zeros((n_out, height, width), dtype=np.uint8)
    alpha = np.zeros((height, width), dtype=np.uint8)
    levels = []
    for f in files:
        with rasterio.open(f) as src:
            if src.crs is None:
                raise InputError(f"imagery {f} has no CRS; fix the file or pass `imagery=False`")
            idx = list(bands) if bands else list(range(1, min(3, src.count) + 1))
            while len(idx) < 3:
                idx.append(idx[-1])
            idx = idx[:3]
            # the source's footprint in its own pixels, decimated to about the target resolution
            left, bottom, right, top = transform_bounds(WEB_CRS, src.crs, *rasterio.transform.array_bounds(height, width, dst_transform))
            win = rasterio.windows.from_bounds(left, bottom, right, top, src.transform).intersection(
                rasterio.windows.Window(0, 0, src.width, src.height))
            if win.width < 1 or win.height < 1:
                continue
            src_res = abs(src.res[0]) if not src.crs.is_geographic else native
            factor = max(1, int(round(res_m / src_res)))
            out_h, out_w = max(1, int(round(win.height / factor))), max(1, int(round(win.width / factor)))
            data = src.read(idx, window=win, out_shape=(3, out_h, out_w), resampling=Resampling.average)
            mask = src.read_masks(idx[0], window=win, out_shape=(out_h, out_w), resampling=Resampling.nearest) > 0
            levels.append(factor)
            data = _stretch(data, mask, stretch)
            wt = src.window_transform(win) * rasterio.Affine.scale(win.width / out_w, win.height / out_h)
            part = np.zeros((n_out, height, width), dtype=np.uint8)
            part_a = np.zeros((height, width), dtype=np.uint8)
            for b in range(n_out):
                reproject(data[b], part[b], src_transform=wt, src_crs=src.crs, dst_transform=dst_transform, dst_crs=WEB_CRS,
                          resampling=Resampling.bilinear)
            reproject(mask.astype(np.uint8) * 255, part_a, src_transform=wt, src_crs=src.crs, dst_transform=dst_transform,
                      dst_crs=WEB_CRS, resampling=Resampling.nearest)
            take = (part_a > 0) & (alpha == 0)
            rgb[:, take] = part[:, take]
            alpha[take] = 255
    img = Image.fromarray(np.dstack([*rgb, alpha]), mode="RGBA")
    buf = io.BytesIO()
    img.save(buf, format="WEBP", quality=quality, method=4, alpha_quality=50)
    data_bytes = buf.getvalue()
    west, north = dst_transform @ (0, 0)
    east, south = dst_transform @ (width, height)
    tr = Transformer.from_crs(WEB_CRS, "EPSG:4326", always_xy=True)
    lon0, lat0 = tr.transform(west, south)
    lon1, lat1 = tr.transform(east, north)
    url = "data:image/webp;base64," + base64.b64encode(data_bytes).decode("ascii")
    return ImageryOverlay(url, [[lat0, lon0], [lat1, lon1]], (height, width), round(res_m, 3), len(data_bytes), len(files),
                          tuple(levels))
