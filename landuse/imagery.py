"""One period's imagery (a Scene) and reading plots from it on a plot grid.

CONTRACT (stable API other modules code against):

    scene = Scene.open(sources, bands=None, stretch=None)
        sources: paths, globs, a VRT or GDAL-readable URLs (str | Path, or a list of them).
        bands:   1-based source band indices for R, G, B (default: the bands tagged red / green /
                 blue, else 1,2,3 for 3/4-band imagery; alpha bands / internal masks / nodata
                 honoured as invalid pixels).
        stretch: None (8-bit imagery as is; 16-bit imagery gets a per-scene 2-98 percentile
                 stretch computed once), "auto" (that stretch, also for float imagery),
                 (low, high) or [(low, high)] * 3 (a fixed linear stretch to 0..255).
    scene.files -> list[SourceFile]       # path, crs, bounds, res, size, mtime, count, dtype
    scene.footprints() -> list[(CRS, bounds)]   # for PlotGrid.from_footprints
    scene.spec() -> dict                  # small picklable spec; Scene.from_spec(spec) reopens it
    scene.provenance() -> dict            # inputs (path, size, mtime), bands, stretch

    pixels, valid = scene.read_chunk(grid, chunk, pixels=224)
        pixels: uint8 (chunk.size, pixels, pixels, 3) RGB, plots row-major within the chunk
        valid:  float32 (chunk.size,) valid-pixel fraction of each plot in [0, 1]
    pixels, mask = scene.read_plot(grid, row, col, pixels=224)
        pixels: uint8 (pixels, pixels, 3); mask: bool (pixels, pixels), True where valid
    scene.coverage(grid) -> float32 (grid.height, grid.width) valid fraction per plot (cheap,
        from footprints / low resolution), used to skip plots with no data at all.

Read paths. A source that shares the grid's CRS and is north-up is read with ONE windowed read per
chunk (float window, ``out_shape`` resampling: average when down-sampling, bilinear otherwise),
then sliced into plots (a window as large as the output, i.e. the same pixel size, is shifted by
its sub-pixel offset in numpy, since GDAL would copy it at a rounded offset); the sub-pixel fringe where the source's edge cuts a destination pixel goes
through the warp path. Any other source is warped for the whole chunk at once: a windowed
(decimated when much finer) read of the source and its validity mask, then
``rasterio.warp.reproject`` of both into the chunk (data bilinear, validity nearest).
Overlapping files merge: the first valid pixel wins.

Datasets are opened lazily and cached per process and thread (GDAL handles are not thread-safe);
a Scene pickles as its small spec.
"""

from __future__ import annotations

import functools
import glob
import logging
import math
import os
import re
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from affine import Affine
from rasterio._err import CPLE_BaseError
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import NodataShadowWarning, RasterioError
from rasterio.windows import Window

from landuse.errors import InputError, RasterError
from landuse.grid import Chunk, PlotGrid

log = logging.getLogger(__name__)

SPEC_VERSION = 1
# Auto stretch: these percentiles of the valid pixels of the three bands map to 0 and 255.
STRETCH_PERCENTILES = (2.0, 98.0)
# Longest side of the decimated read used to compute a stretch (GDAL uses overviews when present).
STRETCH_SAMPLE_SIDE = 1024
# At most this many files are sampled for a scene's stretch (evenly spread over the list).
STRETCH_MAX_FILES = 16
# Open datasets kept per thread.
MAX_OPEN_PER_THREAD = 32
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img")
_URL_PREFIXES = ("http://", "https://", "s3://", "gs://", "az://", "/vsi")
_EPS = 1e-6


def _name(path: str) -> str:
    return redact(path) if _is_url(path) else Path(path).name


def _is_url(path: str) -> bool:
    return path.startswith(_URL_PREFIXES)


# -- dataset handles: one per (process, thread, path) ---------------------------------------------

_local = threading.local()


def open_dataset(path: str, sign: str | None = None):
    """An open rasterio dataset for ``path``, cached for this process and thread.

    ``sign`` names how to sign a remote href just before it is opened (``"planetary-computer"``);
    the signed URL is never cached, logged or returned in an error (see :mod:`landuse.stac`)."""
    import rasterio

    cache: OrderedDict | None = getattr(_local, "cache", None)
    if cache is None or getattr(_local, "pid", None) != os.getpid():
        cache = OrderedDict()  # after a fork, never reuse the parent's handles
        _local.cache, _local.pid = cache, os.getpid()
    ds = cache.get(path)
    if ds is not None and not ds.closed:
        cache.move_to_end(path)
        return ds
    target = path
    if _is_url(path):
        configure_remote_reads()
        if sign:
            from landuse.stac import sign_href

            target = sign_href(path, sign)
    try:
        ds = rasterio.open(target)
    except rasterio.errors.RasterioIOError as exc:
        raise RasterError(f"cannot open {redact(path)}: {redact(str(exc))}; check the path or URL") from None
    cache[path] = ds
    while len(cache) > MAX_OPEN_PER_THREAD:
        _, old = cache.popitem(last=False)
        old.close()
    return ds


def forget_dataset(path: str) -> None:
    """Close and drop this thread's cached handle of ``path`` (the next open starts afresh)."""
    cache = getattr(_local, "cache", None)
    ds = cache.pop(path, None) if cache else None
    if ds is not None:
        ds.close()


# -- remote reads (COGs over HTTP through GDAL's /vsicurl/) --------------------------------------

# GDAL settings for remote rasters, applied per process and thread (the pipeline's workers open
# their files themselves, so each worker sets them on its first remote open). A variable set in the
# environment wins over the default here.
REMOTE_GDAL_DEFAULTS: dict[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # no directory listing per open
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF,.vrt,.jp2,.img",  # no probing of sidecars
    "GDAL_HTTP_MULTIRANGE": "YES",  # the blocks of one read fetched in parallel
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",  # neighbouring tiles in one request
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": str(16 * 2**20),  # per open file
    "GDAL_HTTP_MAX_RETRY": "4",  # 429 / 502 / 503 / 504 retried by GDAL ...
    "GDAL_HTTP_RETRY_DELAY": "0.5",  # ... after 0.5 s, doubling
    "GDAL_HTTP_TIMEOUT": "60",
    "GDAL_HTTP_CONNECTTIMEOUT": "15",
}
# A failed read of a remote file (after GDAL's own retries) is retried this many times in all,
# with the file reopened, before the chunk fails (env LANDUSE_REMOTE_READ_ATTEMPTS).
REMOTE_READ_ATTEMPTS = 3
REMOTE_RETRY_DELAY_S = 0.5  # first pause between those attempts, doubling (env LANDUSE_REMOTE_RETRY_DELAY)


def remote_gdal_settings() -> dict[str, str]:
    """The GDAL settings remote reads use in this process: the defaults, or the environment's."""
    return {k: os.environ.get(k, v) for k, v in REMOTE_GDAL_DEFAULTS.items()}


def configure_remote_reads() -> None:
    """Apply :func:`remote_gdal_settings` in this thread of this process (again only when the
    environment changed). Per thread: rasterio's ``set_gdal_config`` sets GDAL's thread-local
    configuration, which a dataset opened (and read) in another thread does not see."""
    wanted = remote_gdal_settings()
    if getattr(_local, "remote", None) == (os.getpid(), wanted):
        return
    from rasterio.env import set_gdal_config

    redact_gdal_logs()
    for key, value in wanted.items():
        set_gdal_config(key, value)
    _local.remote = (os.getpid(), wanted)


def _env_number(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name, default)))
    except ValueError:
        return default


def remote_read_attempts() -> int:
    return max(1, int(_env_number("LANDUSE_REMOTE_READ_ATTEMPTS", REMOTE_READ_ATTEMPTS)))


class _RedactFilter(logging.Filter):
    """Removes URL signatures from log records (GDAL's messages name the URLs they read)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "http" in str(record.msg) or any("http" in str(a) for a in (record.args or ())):
            record.msg, record.args = redact(record.getMessage()), None
        return True


_REDACT = _RedactFilter()
# the loggers GDAL's error handler and rasterio's open / read paths write to
_GDAL_LOGGERS = ("rasterio", "rasterio._env", "rasterio._err", "rasterio._base", "rasterio._io", "rasterio.env")


def redact_gdal_logs() -> None:
    """Attach the signature-removing filter to rasterio's loggers (idempotent)."""
    for name in _GDAL_LOGGERS:
        lg = logging.getLogger(name)
        if _REDACT not in lg.filters:
            lg.addFilter(_REDACT)


def retry_remote(path: str, fn: Callable[[], Any], what: str = "reading") -> Any:
    """``fn()``, retried for a remote ``path`` when GDAL fails (after its own HTTP retries): the
    cached handle is dropped and the file reopened, with a growing pause. A persistent failure is a
    :class:`RasterError` naming the URL (signature removed); local paths are not retried."""
    import rasterio

    if not _is_url(path):
        return fn()
    attempts = remote_read_attempts()
    last: Exception | None = None
    for k in range(attempts):
        try:
            configure_remote_reads()
            return fn()
        except (rasterio.errors.RasterioIOError, RasterError) as exc:
            last = exc
            forget_dataset(path)
            if k + 1 < attempts:
                log.info("%s %s failed (%s); retrying", what, redact(path), redact(str(exc)))
                time.sleep(min(8.0, _env_number("LANDUSE_REMOTE_RETRY_DELAY", REMOTE_RETRY_DELAY_S) * 2**k))
    detail = redact(str(last)).split("; check the path")[0]
    raise RasterError(
        f"{what} {redact(path)} failed {attempts} times ({detail}); the run stopped: finished chunks are "
        "kept, rerun the same command to resume once the server answers"
    )


# Query parameters that carry a signature or credential (Azure SAS, AWS / GCS presigned URLs, tokens).
_SECRET_PARAM = re.compile(
    r"^(sig|signature|se|st|sp|sv|sr|srt|ss|spr|skoid|sktid|skt|ske|sks|skv|sdd|token|access_token|"
    r"key|api_key|apikey|subscription-key|code|x-amz-.*|x-goog-.*|awsaccesskeyid|expires|policy|key-pair-id)$",
    re.IGNORECASE,
)
_URL_IN_TEXT = re.compile(r"(?:/vsicurl/)?https?://[^\s'\"<>]+")


def strip_signature(url: str) -> str:
    """``url`` without the query parameters that sign it (the rest of the query is kept)."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    if "?" not in url:
        return url
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _SECRET_PARAM.match(k)]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def redact(text: str) -> str:
    """``text`` with every URL's signature removed (for messages and logs)."""
    return _URL_IN_TEXT.sub(lambda m: strip_signature(m.group(0)), text)


def close_datasets() -> None:
    """Close this thread's cached datasets."""
    cache = getattr(_local, "cache", None)
    while cache:
        _, ds = cache.popitem()
        ds.close()


def unreadable(name: str, exc: BaseException) -> RasterError:
    """One line for a raster whose pixels cannot be read (truncated / damaged file, lost URL)."""
    detail = " ".join(str(exc).split())[:160]
    return RasterError(
        f"cannot read the pixels of {name} ({detail}); the file is damaged or truncated: check it with "
        "`gdalinfo -checksum`, copy it again, or leave it out"
    )


# -- sources ----------------------------------------------------------------------------------


def expand_sources(sources: str | Path | Iterable[str | Path]) -> list[str]:
    """Paths / globs / folders / URLs -> ordered list of raster paths (no duplicates)."""
    items = [sources] if isinstance(sources, (str, Path)) else list(sources)
    out: list[str] = []
    for item in items:
        s = str(item)
        if _is_url(s):
            out.append(s)
        elif any(ch in s for ch in "*?["):
            matches = sorted(glob.glob(s))
            if not matches:
                raise RasterError(f"no file matches {s}; check the pattern")
            out.extend(matches)
        elif Path(s).is_dir():
            found = sorted(str(p) for p in Path(s).iterdir() if p.suffix.lower() in RASTER_SUFFIXES)
            if not found:
                raise RasterError(f"folder {s} holds no raster ({', '.join(RASTER_SUFFIXES)}); give the files")
            out.extend(found)
        elif not Path(s).exists():
            raise RasterError(f"{s} does not exist; check the path")
        else:
            out.append(s)
    if not out:
        raise InputError("no imagery given; pass at least one raster file, glob, VRT or URL")
    return list(dict.fromkeys(out))


def _crs_to_str(crs: CRS) -> str:
    epsg = crs.to_epsg()
    if epsg and CRS.from_epsg(epsg) == crs:
        return f"EPSG:{epsg}"
    return crs.to_wkt()


@dataclass(frozen=True)
class SourceFile:
    """One raster of a scene: where it is, its georeferencing and which bands make RGB."""

    path: str
    crs: CRS
    transform: Affine
    width: int
    height: int
    count: int
    dtype: str
    nodata: float | None
    rgb: tuple[int, int, int]
    alpha: int | None
    all_valid: bool
    size: int | None  # bytes on disk (None for URLs)
    mtime: float | None
    sign: str | None = None  # how to sign the href at open time (remote catalogs), else None

    def open(self):
        """This file's dataset, cached per process and thread (see :func:`open_dataset`)."""
        return open_dataset(self.path, self.sign)

    @property
    def name(self) -> str:
        return _name(self.path)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        t = self.transform
        xs = (t.c, t.c + t.a * self.width)
        ys = (t.f, t.f + t.e * self.height)
        return (min(xs), min(ys), max(xs), max(ys))

    @property
    def res(self) -> tuple[float, float]:
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def north_up(self) -> bool:
        t = self.transform
        return t.b == 0 and t.d == 0 and t.a > 0 and t.e < 0

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "crs": _crs_to_str(self.crs),
            "transform": list(tuple(self.transform)[:6]),
            "width": self.width,
            "height": self.height,
            "count": self.count,
            "dtype": self.dtype,
            "nodata": None if self.nodata is None or math.isnan(self.nodata) else self.nodata,
            "nodata_nan": self.nodata is not None and math.isnan(self.nodata),
            "rgb": list(self.rgb),
            "alpha": self.alpha,
            "all_valid": self.all_valid,
            "size": self.size,
            "mtime": self.mtime,
            **({"sign": self.sign} if self.sign else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> SourceFile:
        return cls(
            path=d["path"],
            crs=CRS.from_user_input(d["crs"]),
            transform=Affine(*d["transform"]),
            width=int(d["width"]),
            height=int(d["height"]),
            count=int(d["count"]),
            dtype=d["dtype"],
            nodata=float("nan") if d.get("nodata_nan") else d["nodata"],
            rgb=tuple(d["rgb"]),
            alpha=d["alpha"],
            all_valid=bool(d["all_valid"]),
            size=d["size"],
            mtime=d["mtime"],
            sign=d.get("sign"),
        )


def parse_bands(bands: Sequence[int] | str | None) -> tuple[int, int, int] | None:
    """The one parser of band choices: ``"1,2,3"`` or a sequence -> (R, G, B) 1-based, or None."""
    if bands is None:
        return None
    if isinstance(bands, str):
        try:
            bands = [int(b) for b in bands.replace(" ", "").split(",")]
        except ValueError:
            raise InputError(f"bands {bands!r} are not band numbers; give three, e.g. 1,2,3", param="bands") from None
    bands = tuple(int(b) for b in bands)
    if len(bands) != 3 or min(bands) < 1:
        raise InputError(f"bands {bands} must be three 1-based band numbers for R,G,B, e.g. 1,2,3", param="bands")
    return bands  # type: ignore[return-value]


def inspect_source(path: str, bands: tuple[int, int, int] | None = None, sign: str | None = None) -> SourceFile:
    """Open ``path`` once, check it is usable imagery and describe it."""
    try:
        return _inspect_source(path, bands, sign)
    except (RasterioError, CPLE_BaseError) as exc:
        raise unreadable(_name(path), exc) from None


def _inspect_source(path: str, bands: tuple[int, int, int] | None, sign: Any) -> SourceFile:
    ds = retry_remote(path, lambda: open_dataset(path, sign), "opening")
    name = _name(path)
    if ds.crs is None:
        raise RasterError(f"{name} has no CRS; fix the file (gdal_edit.py -a_srs EPSG:XXXX) or leave it out")
    t = ds.transform
    if t.b != 0 or t.d != 0:
        raise RasterError(f"{name} has a rotated geotransform; warp it north-up first (gdalwarp) or leave it out")
    if t == Affine.identity():
        raise RasterError(f"{name} is not georeferenced (identity transform); fix the file or leave it out")
    interp = list(ds.colorinterp)
    if bands is not None:
        if max(bands) > ds.count:
            raise RasterError(f"{name} has {ds.count} band(s) but bands {list(bands)} were asked for; pass valid band numbers")
        rgb = bands
    elif all(ci in interp for ci in (ColorInterp.red, ColorInterp.green, ColorInterp.blue)):
        red, green, blue = (interp.index(ci) + 1 for ci in (ColorInterp.red, ColorInterp.green, ColorInterp.blue))
        rgb = (red, green, blue)
    elif ds.count in (3, 4):
        rgb = (1, 2, 3)
    else:
        layout = ", ".join(ci.name for ci in interp)
        raise RasterError(
            f"{name} has {ds.count} band(s) ({layout}), not an RGB / RGBN layout; "
            "say which bands are R,G,B with `bands` (e.g. `bands` 1,1,1 for grey) or leave it out"
        )
    alpha = next((i + 1 for i, ci in enumerate(interp) if ci == ColorInterp.alpha and i + 1 not in rgb), None)
    flags = ds.mask_flag_enums
    all_valid = all(MaskFlags.all_valid in flags[b - 1] for b in rgb)
    size = mtime = None
    if not _is_url(path):
        st = os.stat(path)
        size, mtime = st.st_size, st.st_mtime
    return SourceFile(
        path=path,
        crs=ds.crs,
        transform=t,
        width=ds.width,
        height=ds.height,
        count=ds.count,
        dtype=ds.dtypes[rgb[0] - 1],
        nodata=ds.nodata,
        rgb=rgb,  # type: ignore[arg-type]
        alpha=alpha,
        all_valid=all_valid,
        size=size,
        mtime=mtime,
        sign=sign,
    )


# -- stretch ----------------------------------------------------------------------------------


def _user_stretch(stretch: Any) -> dict:
    """A user stretch ((lo, hi) or three of them, or a spec dict) -> canonical dict."""
    if isinstance(stretch, dict):
        return {k: stretch[k] for k in ("method", "percentiles", "low", "high") if k in stretch}
    if isinstance(stretch, str):
        try:
            stretch = [float(v) for v in stretch.split(",")]
        except ValueError:
            raise InputError(f"stretch {stretch!r} is not 'auto' or LOW,HIGH; e.g. `stretch` 0,3000") from None
    try:
        arr = np.asarray(stretch, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"stretch {stretch!r} is not (low, high) or three such pairs") from None
    if arr.shape == (2,):
        arr = np.tile(arr, (3, 1))
    elif arr.shape == (6,):  # LOW,HIGH per band (R, G, B)
        arr = arr.reshape(3, 2)
    if arr.shape != (3, 2) or not np.isfinite(arr).all() or (arr[:, 1] <= arr[:, 0]).any():
        raise InputError(
            f"stretch {stretch!r} must be LOW,HIGH with low < high, or three such pairs (R,G,B); e.g. `stretch` 0,3000"
        )
    return {"method": "user", "low": arr[:, 0].tolist(), "high": arr[:, 1].tolist()}


def _read_sample(f: SourceFile, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Decimated read (uses overviews when present): data (3, h, w) and valid (h, w)."""
    ds = f.open()
    scale = max(1.0, max(f.width, f.height) / side)
    shape = (max(1, round(f.height / scale)), max(1, round(f.width / scale)))
    data = ds.read(list(f.rgb), out_shape=(3, *shape), resampling=Resampling.nearest)
    valid = _read_valid(ds, f, None, shape)
    return data, valid


def compute_stretch(files: Sequence[SourceFile], percentiles: tuple[float, float] = STRETCH_PERCENTILES) -> dict:
    """One linear stretch for the scene: common percentiles of the valid R, G, B samples (the
    same low/high for the three bands keeps the colour balance)."""
    picks = files if len(files) <= STRETCH_MAX_FILES else [files[i] for i in np.linspace(0, len(files) - 1, STRETCH_MAX_FILES).astype(int)]
    samples = []
    for f in picks:
        data, valid = _read_sample(f, STRETCH_SAMPLE_SIDE)
        vals = data[:, valid].astype(np.float64).ravel()
        samples.append(vals[np.isfinite(vals)])
    vals = np.concatenate(samples) if samples else np.empty(0)
    if vals.size == 0:
        names = ", ".join(f.name for f in picks)
        raise RasterError(f"{names}: no valid pixels to compute a stretch from (all nodata / masked); leave the file(s) out")
    lo, hi = (float(v) for v in np.percentile(vals, percentiles))
    if hi <= lo:
        hi = lo + 1.0
    return {"method": "percentile", "percentiles": list(percentiles), "low": [lo] * 3, "high": [hi] * 3,
            "sampled_files": len(picks)}


def _apply_stretch(data: np.ndarray, stretch: dict | None) -> np.ndarray:
    if stretch is None:
        return data if data.dtype == np.uint8 else np.clip(np.rint(data), 0, 255).astype(np.uint8)
    lo = np.asarray(stretch["low"], dtype=np.float32).reshape(3, *([1] * (data.ndim - 1)))
    hi = np.asarray(stretch["high"], dtype=np.float32).reshape(lo.shape)
    out = (data.astype(np.float32) - lo) * (255.0 / (hi - lo)) + 0.5
    return np.clip(np.nan_to_num(out, nan=0.0), 0, 255).astype(np.uint8)


# -- reading helpers --------------------------------------------------------------------------


def _read_valid(ds, f: SourceFile, window: Window | None, shape: tuple[int, int]) -> np.ndarray:
    """Validity (h, w) of the RGB bands: nodata / alpha / internal masks; valid if any band is."""
    if f.all_valid:
        return np.ones(shape, dtype=bool)
    with warnings.catch_warnings():
        # 4-band + nodata: rasterio warns that nodata (not band 4) defines the mask - as intended
        warnings.simplefilter("ignore", NodataShadowWarning)
        m = ds.read_masks(list(f.rgb), window=window, out_shape=(3, *shape), resampling=Resampling.nearest)
    return m.any(axis=0)


def _pixel_range(bounds: Sequence[float] | np.ndarray, dst_transform: Affine, shape: tuple[int, int], inward: bool) -> tuple[int, int, int, int]:
    """(r0, r1, c0, c1) of destination pixels covering ``bounds`` (outward) or inside it (inward)."""
    minx, miny, maxx, maxy = bounds
    c_lo, r_lo = ~dst_transform @ (minx, maxy)
    c_hi, r_hi = ~dst_transform @ (maxx, miny)
    if inward:
        c0, r0 = math.ceil(c_lo - _EPS), math.ceil(r_lo - _EPS)
        c1, r1 = math.floor(c_hi + _EPS), math.floor(r_hi + _EPS)
    else:
        c0, r0 = math.floor(c_lo + _EPS), math.floor(r_lo + _EPS)
        c1, r1 = math.ceil(c_hi - _EPS), math.ceil(r_hi - _EPS)
    h, w = shape
    return max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)


def _window_for(f: SourceFile, dst_transform: Affine, r0: int, r1: int, c0: int, c1: int) -> Window:
    """Float source window of destination pixels [r0, r1) x [c0, c1) (same CRS, north-up)."""
    x0, y0 = dst_transform @ (c0, r0)
    x1, y1 = dst_transform @ (c1, r1)
    inv = ~f.transform
    col0, row0 = inv @ (x0, y0)
    col1, row1 = inv @ (x1, y1)
    col0, row0 = max(col0, 0.0), max(row0, 0.0)
    col1, row1 = min(col1, float(f.width)), min(row1, float(f.height))
    return Window(col0, row0, col1 - col0, row1 - row0)


def _same_size_read(ds, f: SourceFile, window: Window, shape: tuple[int, int]) -> tuple[np.ndarray, Window]:
    """Read a window as large as the output: an exact copy when it sits on whole source pixels,
    else a bilinear sub-pixel shift (GDAL's RasterIO would round the offset, moving the image
    up to half a pixel). Returns the data and the integer window used for the mask."""
    h, w = shape
    k0, l0 = math.floor(window.col_off + _EPS), math.floor(window.row_off + _EPS)
    fx, fy = window.col_off - k0, window.row_off - l0
    fx, fy = (0.0 if fx < 1e-3 else fx), (0.0 if fy < 1e-3 else fy)
    if fx > 1 - 1e-3:
        k0, fx = k0 + 1, 0.0
    if fy > 1 - 1e-3:
        l0, fy = l0 + 1, 0.0
    k0, l0 = min(max(k0, 0), f.width - w), min(max(l0, 0), f.height - h)
    if fx == 0.0 and fy == 0.0:
        win = Window(k0, l0, w, h)
        return ds.read(list(f.rgb), window=win), win
    ww, hh = min(w + 1, f.width - k0), min(h + 1, f.height - l0)
    a = ds.read(list(f.rgb), window=Window(k0, l0, ww, hh)).astype(np.float32)
    if ww < w + 1 or hh < h + 1:
        a = np.pad(a, ((0, 0), (0, h + 1 - hh), (0, w + 1 - ww)), mode="edge")
    top = a[:, :h, :w] * (1 - fx) + a[:, :h, 1:] * fx
    bottom = a[:, 1:, :w] * (1 - fx) + a[:, 1:, 1:] * fx
    out = top * (1 - fy) + bottom * fy
    win = Window(min(k0 + round(fx), f.width - w), min(l0 + round(fy), f.height - h), w, h)
    return out, win


class _Target:
    """The destination of one read: RGB uint8 (3, H, W), validity (H, W), in the grid CRS."""

    def __init__(self, crs: CRS, transform: Affine, shape: tuple[int, int]) -> None:
        self.crs, self.transform, self.shape = crs, transform, shape
        self.rgb = np.zeros((3, *shape), dtype=np.uint8)
        self.valid = np.zeros(shape, dtype=bool)

    def merge(self, r0: int, r1: int, c0: int, c1: int, data: np.ndarray, valid: np.ndarray) -> None:
        """First valid pixel wins."""
        cur = self.valid[r0:r1, c0:c1]
        region = self.rgb[:, r0:r1, c0:c1]
        if not cur.any():
            if valid.all():
                region[...] = data
                cur[...] = True
                return
            new = valid
        else:
            new = valid & ~cur
        np.copyto(region, data, where=new[None])
        cur |= new

    def full(self, r0: int = 0, r1: int | None = None, c0: int = 0, c1: int | None = None) -> bool:
        return bool(self.valid[r0:r1, c0:c1].all())


# -- the scene --------------------------------------------------------------------------------


class SceneLike(Protocol):
    """What the pipeline needs of one period's imagery (:class:`Scene` is one; so is any class
    with these methods, e.g. a synthetic scene in tests). A worker reopens it from its
    :meth:`spec` with its class's :meth:`from_spec`."""

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> SceneLike: ...

    def spec(self) -> dict[str, Any]:
        """Small, JSON-able description the scene is rebuilt from."""
        ...

    def provenance(self) -> dict[str, Any]:
        """The manifest's record of the imagery (``inputs``, bands, stretch ...)."""
        ...

    def footprints(self) -> list[tuple[CRS, tuple[float, float, float, float]]]:
        """(CRS, bounds) of every source, for :meth:`PlotGrid.from_footprints`."""
        ...

    def coverage(self, grid: PlotGrid) -> np.ndarray:
        """float32 (height, width): valid fraction per plot of ``grid``, estimated cheaply."""
        ...

    def read_chunk(self, grid: PlotGrid, chunk: Chunk, pixels: int = 224) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (n, pixels, pixels, 3) pixels and float32 (n,) valid fractions of the chunk's plots."""
        ...


class Scene:
    """One period's imagery: a list of source rasters read as one mosaic."""

    def __init__(
        self,
        files: Sequence[SourceFile],
        bands: tuple[int, int, int] | None = None,
        stretch: dict | None = None,
        origin: dict | None = None,
    ) -> None:
        if not files:
            raise InputError("a scene needs at least one raster")
        self._files = list(files)
        self.bands = bands
        self.stretch = stretch
        # where the files came from (a STAC search: query, items), recorded in the provenance
        self.origin = origin
        self._index: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    # -- construction / identity ----------------------------------------------------------

    @classmethod
    def open(
        cls,
        sources: str | Path | Iterable[str | Path],
        bands: Sequence[int] | str | None = None,
        stretch: Any = None,
    ) -> Scene:
        """Scene from paths, globs, folders, a VRT or GDAL-readable URLs (see module doc)."""
        bands_t = parse_bands(bands)
        files = [inspect_source(p, bands_t) for p in expand_sources(sources)]
        return cls.from_files(files, bands_t, stretch)

    @classmethod
    def from_files(
        cls,
        files: Sequence[SourceFile],
        bands: tuple[int, int, int] | None = None,
        stretch: Any = None,
        origin: dict | None = None,
    ) -> Scene:
        """Scene from inspected files (:func:`inspect_source`); resolves the stretch."""
        if not files:
            raise InputError("no imagery given; pass at least one raster file, glob, VRT or URL")
        dtypes = sorted({f.dtype for f in files})
        if len(dtypes) > 1:
            raise RasterError(f"the imagery mixes data types {dtypes}; give one period's files of one type per scene")
        dtype = dtypes[0]
        if stretch is None or (isinstance(stretch, str) and stretch.lower() == "none"):
            if dtype == "uint8":
                resolved = None
            elif np.issubdtype(np.dtype(dtype), np.integer):
                resolved = compute_stretch(files)
            else:
                raise RasterError(
                    f"{files[0].name} holds {dtype} values; say how to map them to 0..255 with "
                    "`stretch` auto (2-98 percentiles) or `stretch` LOW,HIGH"
                )
        elif isinstance(stretch, str) and stretch.lower() in ("auto", "percentile"):
            resolved = compute_stretch(files)
        else:
            resolved = _user_stretch(stretch)
        return cls(files, bands, resolved, origin)

    @property
    def files(self) -> list[SourceFile]:
        return list(self._files)

    def footprints(self) -> list[tuple[CRS, tuple[float, float, float, float]]]:
        """(CRS, bounds) of every file, for :meth:`PlotGrid.from_footprints`."""
        return [(f.crs, f.bounds) for f in self._files]

    def spec(self) -> dict:
        """Small, JSON-able description; :meth:`from_spec` rebuilds the scene without re-scanning."""
        return {
            "version": SPEC_VERSION,
            "bands": list(self.bands) if self.bands else None,
            "stretch": self.stretch,
            "files": [f.to_dict() for f in self._files],
        }

    @classmethod
    def from_spec(cls, spec: dict) -> Scene:
        try:
            files = [SourceFile.from_dict(d) for d in spec["files"]]
            bands = tuple(spec["bands"]) if spec.get("bands") else None
            return cls(files, bands, spec.get("stretch"))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a scene spec ({exc}); rebuild it with Scene.open(...).spec()") from None

    def __reduce__(self):
        return (Scene.from_spec, (self.spec(),))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scene) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(tuple(f.path for f in self._files))

    def __repr__(self) -> str:
        return f"Scene({len(self._files)} file(s): {', '.join(f.name for f in self._files[:3])}{' ...' if len(self._files) > 3 else ''})"

    def provenance(self) -> dict:
        """Inputs (path, size, mtime), bands per file and the stretch, for outputs' provenance."""
        out = {
            "inputs": [{"path": strip_signature(f.path), "size": f.size, "mtime": f.mtime} for f in self._files],
            "bands": {f.name: list(f.rgb) for f in self._files},
            "bands_requested": list(self.bands) if self.bands else None,
            "dtype": self._files[0].dtype,
            "stretch": self.stretch,
            "resampling": {"same_crs": "window read: average when down-sampling, else bilinear",
                           "other_crs": "reproject bilinear (source decimated by average when finer)"},
        }
        if self.origin is not None:
            out["stac"] = self.origin
        return out

    # -- footprint index ------------------------------------------------------------------

    def bboxes(self, crs: CRS) -> np.ndarray:
        """(n_files, 4) bounding boxes of the files in ``crs`` (NaN where they do not reproject)."""
        key = crs.to_wkt()
        with self._lock:
            cached = self._index.get(key)
        if cached is not None:
            return cached
        from rasterio.warp import transform_bounds

        rows = []
        for f in self._files:
            if f.crs == crs:
                rows.append(f.bounds)
                continue
            try:
                rows.append(transform_bounds(f.crs, crs, *f.bounds, densify_pts=21))
            except Exception:  # noqa: BLE001 - PROJ raises several types; NaN = no overlap
                rows.append((np.nan,) * 4)
        arr = np.array(rows, dtype=float).reshape(-1, 4)
        arr[~np.isfinite(arr).all(axis=1)] = np.nan
        with self._lock:
            self._index[key] = arr
        return arr

    def files_intersecting(self, crs: CRS, bounds: Sequence[float]) -> np.ndarray:
        """Indices (scene order) of files whose footprint box meets ``bounds`` in ``crs``."""
        b = self.bboxes(crs)
        minx, miny, maxx, maxy = bounds
        with np.errstate(invalid="ignore"):
            hit = (b[:, 0] < maxx) & (b[:, 2] > minx) & (b[:, 1] < maxy) & (b[:, 3] > miny)
        return np.flatnonzero(hit)

    def check_overlap(self, grid: PlotGrid) -> np.ndarray:
        """Indices of files overlapping the grid; RasterError when none does."""
        idx = self.files_intersecting(grid.crs, grid.bounds)
        if idx.size == 0:
            names = ", ".join(f.name for f in self._files[:3]) + (" ..." if len(self._files) > 3 else "")
            raise RasterError(
                f"the imagery ({names}) does not overlap {grid.describe()}; "
                "check the grid file, `crs` or that the rasters cover the area"
            )
        return idx

    # -- reads ----------------------------------------------------------------------------

    def read_region(self, grid: PlotGrid, chunk: Chunk, pixels: int = 224) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 (3, H, W) and valid (H, W) of a chunk sampled at ``pixels`` per plot side."""
        if pixels < 1:
            raise InputError(f"pixels per plot must be at least 1, got {pixels}")
        if not (grid.contains(chunk.row_off, chunk.col_off)
                and grid.contains(chunk.row_off + chunk.height - 1, chunk.col_off + chunk.width - 1)):
            raise InputError(f"chunk {chunk.id} is not inside {grid.describe()}")
        self.check_overlap(grid)
        transform = grid.chunk_transform(chunk, pixels)
        target = _Target(grid.crs, transform, (chunk.height * pixels, chunk.width * pixels))
        s = grid.plot_size
        minx = grid.transform.c + chunk.col_off * s
        maxy = grid.transform.f - chunk.row_off * s
        cb = (minx, maxy - chunk.height * s, minx + chunk.width * s, maxy)
        bboxes = self.bboxes(grid.crs)
        for i in self.files_intersecting(grid.crs, cb):
            if target.full():
                break
            f = self._files[i]
            try:
                retry_remote(f.path, functools.partial(self._read_into, f, bboxes[i], target))
            except (RasterioError, CPLE_BaseError) as exc:
                raise unreadable(f.name, exc) from None
        return target.rgb, target.valid

    def read_chunk(self, grid: PlotGrid, chunk: Chunk, pixels: int = 224) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (chunk.size, pixels, pixels, 3) RGB and float32 (chunk.size,) valid fractions."""
        rgb, valid = self.read_region(grid, chunk, pixels)
        h, w, p = chunk.height, chunk.width, pixels
        out = np.empty((h, w, p, p, 3), dtype=np.uint8)
        for b in range(3):  # band by band: ~5x faster than one 5-D transpose
            out[..., b] = rgb[b].reshape(h, p, w, p).transpose(0, 2, 1, 3)
        plots = out.reshape(h * w, p, p, 3)
        frac = valid.reshape(h, p, w, p).mean(axis=(1, 3), dtype=np.float64).astype(np.float32).ravel()
        return plots, frac

    def read_plot(self, grid: PlotGrid, row: int, col: int, pixels: int = 224) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (pixels, pixels, 3) RGB of one plot and its bool validity mask."""
        rgb, valid = self.read_region(grid, Chunk(int(row), int(col), 1, 1), pixels)
        return np.ascontiguousarray(rgb.transpose(1, 2, 0)), valid

    def _read_into(self, f: SourceFile, bbox: np.ndarray, target: _Target) -> None:
        outer = _pixel_range(bbox, target.transform, target.shape, inward=False)
        r0, r1, c0, c1 = outer
        if r1 <= r0 or c1 <= c0 or target.full(r0, r1, c0, c1):
            return
        if f.crs == target.crs and f.north_up:
            inner = _pixel_range(bbox, target.transform, target.shape, inward=True)
            i0, i1, j0, j1 = inner
            if i1 > i0 and j1 > j0:
                self._fast_read(f, target, *inner)
                # the fringe: destination pixels the file's edge cuts
                strips = [(r0, i0, c0, c1), (i1, r1, c0, c1), (i0, i1, c0, j0), (i0, i1, j1, c1)]
            else:
                strips = [outer]
            for s in strips:
                if s[1] > s[0] and s[3] > s[2] and not target.full(*s):
                    self._warp_read(f, target, *s)
        else:
            self._warp_read(f, target, *outer)

    def _fast_read(self, f: SourceFile, target: _Target, r0: int, r1: int, c0: int, c1: int) -> None:
        """Same CRS, north-up: one windowed read with out_shape resampling."""
        ds = f.open()
        window = _window_for(f, target.transform, r0, r1, c0, c1)
        shape = (r1 - r0, c1 - c0)
        down = target.transform.a > f.res[0] * (1 + 1e-9)
        resampling = Resampling.average if down else Resampling.bilinear
        if round(window.width) == shape[1] and round(window.height) == shape[0]:
            # same pixel size: GDAL would copy at a rounded offset, so shift sub-pixel here
            data, window = _same_size_read(ds, f, window, shape)
        else:
            data = ds.read(list(f.rgb), window=window, out_shape=(3, *shape), resampling=resampling)
        valid = _read_valid(ds, f, window, shape)
        target.merge(r0, r1, c0, c1, _apply_stretch(data, self.stretch), valid)

    def _warp_read(self, f: SourceFile, target: _Target, r0: int, r1: int, c0: int, c1: int) -> None:
        """Any CRS: read the source window (decimated if much finer) and its validity, then
        reproject both into destination pixels [r0, r1) x [c0, c1)."""
        from rasterio.warp import reproject, transform_bounds

        ds = f.open()
        dst_transform = target.transform @ Affine.translation(c0, r0)
        h, w = r1 - r0, c1 - c0
        x0, y1 = dst_transform @ (0, 0)
        x1, y0 = dst_transform @ (w, h)
        try:
            sb = (x0, y0, x1, y1) if f.crs == target.crs else transform_bounds(target.crs, f.crs, x0, y0, x1, y1, densify_pts=21)
        except Exception:  # noqa: BLE001 - PROJ raises several types
            return
        if not all(map(math.isfinite, sb)):
            return
        inv = ~f.transform
        cs, rs = zip(*(inv @ (x, y) for x in (sb[0], sb[2]) for y in (sb[1], sb[3])), strict=True)
        margin = 2
        full_c0, full_c1 = math.floor(min(cs)) - margin, math.ceil(max(cs)) + margin
        full_r0, full_r1 = math.floor(min(rs)) - margin, math.ceil(max(rs)) + margin
        wc0, wc1 = max(full_c0, 0), min(full_c1, f.width)
        wr0, wr1 = max(full_r0, 0), min(full_r1, f.height)
        if wc1 <= wc0 or wr1 <= wr0:
            return
        # source pixels per destination pixel; read decimated when the source is much finer
        factor = min((full_c1 - full_c0) / max(w, 1), (full_r1 - full_r0) / max(h, 1))
        window = Window(wc0, wr0, wc1 - wc0, wr1 - wr0)
        if factor > 1.1:
            shape = (max(1, math.ceil((wr1 - wr0) / factor)), max(1, math.ceil((wc1 - wc0) / factor)))
            resampling = Resampling.average
        else:
            shape = (wr1 - wr0, wc1 - wc0)
            resampling = Resampling.nearest  # native resolution: no resampling happens
        data = ds.read(list(f.rgb), window=window, out_shape=(3, *shape), resampling=resampling)
        valid = _read_valid(ds, f, window, shape)
        src_transform = f.transform @ Affine.translation(wc0, wr0) @ Affine.scale((wc1 - wc0) / shape[1], (wr1 - wr0) / shape[0])
        work = np.float32 if data.dtype.kind == "f" else data.dtype
        common = dict(src_transform=src_transform, src_crs=f.crs, dst_transform=dst_transform, dst_crs=target.crs)
        # data and validity are warped apart: GDAL's no-mask kernels are fast, while a source
        # alpha band drops it into its general case (measured 5x slower). The price: bilinear
        # blends invalid (black) source pixels into the valid pixels next to them.
        dst = np.zeros((4, h, w), dtype=work)
        # the source is at most ~1.1x finer than the output now: a plain 2x2 bilinear kernel
        # (XSCALE/YSCALE=1) instead of GDAL's widened one, ~3x faster
        reproject(np.asarray(data, dtype=work), dst[:3], resampling=Resampling.bilinear, XSCALE=1, YSCALE=1, **common)
        if f.all_valid and full_c0 >= 0 and full_r0 >= 0 and full_c1 <= f.width and full_r1 <= f.height:
            # every destination pixel maps inside the file (the window, margin included, is not
            # clipped) and every source pixel is valid: warping the validity would give all 1s
            dst[3] = 255
        else:
            inside = np.zeros((h, w), dtype=np.uint8)
            reproject(valid.astype(np.uint8), inside, resampling=Resampling.nearest, **common)
            dst[3] = np.where(inside > 0, 255, 0)
        if data.dtype.kind == "f":
            dst[:3][~np.isfinite(dst[:3])] = 0
        target.merge(r0, r1, c0, c1, _apply_stretch(dst[:3], self.stretch), dst[3] >= 128)

    # -- coverage -------------------------------------------------------------------------

    def coverage(self, grid: PlotGrid, samples: int = 16) -> np.ndarray:
        """float32 (height, width): valid fraction per plot from low-resolution masks (cheap)."""
        idx = self.check_overlap(grid)
        k = max(1, min(samples, int(math.sqrt(16_000_000 / grid.size))))
        target_valid = np.zeros((grid.height * k, grid.width * k), dtype=bool)
        transform = grid.transform @ Affine.scale(1.0 / k)
        bboxes = self.bboxes(grid.crs)
        for i in idx:
            f = self._files[i]
            try:
                retry_remote(f.path, functools.partial(self._coverage_into, f, bboxes[i], grid.crs, transform, target_valid))
            except (RasterioError, CPLE_BaseError) as exc:
                raise unreadable(f.name, exc) from None
        cov = target_valid.reshape(grid.height, k, grid.width, k).mean(axis=(1, 3), dtype=np.float64)
        return cov.astype(np.float32)

    def _coverage_into(self, f: SourceFile, bbox: np.ndarray, crs: CRS, transform: Affine, out: np.ndarray) -> None:
        from rasterio.warp import reproject

        r0, r1, c0, c1 = _pixel_range(bbox, transform, out.shape, inward=False)
        if r1 <= r0 or c1 <= c0:
            return
        ds = f.open()
        side = 2048
        scale = max(1.0, max(f.width, f.height) / side)
        shape = (max(1, round(f.height / scale)), max(1, round(f.width / scale)))
        valid = _read_valid(ds, f, None, shape).astype(np.uint8)
        src_transform = f.transform @ Affine.scale(f.width / shape[1], f.height / shape[0])
        dst = np.zeros((r1 - r0, c1 - c0), dtype=np.uint8)
        reproject(
            valid,
            dst,
            src_transform=src_transform,
            src_crs=f.crs,
            src_nodata=0,
            dst_transform=transform @ Affine.translation(c0, r0),
            dst_crs=crs,
            dst_nodata=0,
            resampling=Resampling.nearest,
        )
        out[r0:r1, c0:c1] |= dst > 0
