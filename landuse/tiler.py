"""Which plots a scene covers, the valid-fraction policy, and chip export (PNG / GeoTIFF).

``tile(scene, grid, out_dir)`` writes::

    out_dir/chips/<plot file name>.png|tif   one chip per plot meeting ``min_valid``
    out_dir/index.geojson                    every plot the scene touches (EPSG:4326): plot id,
                                             row, col, bounds, valid fraction, status (``ok``,
                                             ``partial``, ``nodata``: :mod:`landuse.status`),
                                             reason, source files, chip
    out_dir/grid.json                        the plot grid

Writes are atomic (temporary names, then rename); an existing non-empty ``out_dir`` is refused
unless ``overwrite`` is given.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from landuse import __version__, defaults, status
from landuse.errors import InputError, OutputExistsError
from landuse.fileio import atomic_path
from landuse.fileio import write_bytes as _write_atomic
from landuse.grid import PlotGrid
from landuse.imagery import Scene
from landuse.store import writing

log = logging.getLogger(__name__)

DEFAULT_MIN_VALID = defaults.MIN_VALID
STATUS_OK = status.OK  # the gate's words are landuse.status's (the pipeline's)
# Custom Vision image size limits (bytes): training uploads and prediction requests.
CV_TRAINING_MAX_BYTES = 6 * 1024 * 1024
CV_PREDICTION_MAX_BYTES = 4 * 1024 * 1024
CHIP_FORMATS = ("png", "tif")


def plot_file_name(plot_id: str) -> str:
    """File-safe name of a plot id: ``EPSG:26914/224/-23256/2169`` -> ``EPSG26914_224_r-23256_c2169``."""
    key, size, row, col = plot_id.rsplit("/", 3)
    safe_key = "".join(ch if ch.isalnum() or ch in "-." else "" for ch in key)
    return f"{safe_key}_{size}_r{row}_c{col}"


def validity_status(valid: np.ndarray, min_valid: float = DEFAULT_MIN_VALID) -> tuple[np.ndarray, np.ndarray]:
    """Status and reason per plot for valid fractions (:func:`landuse.status.gate`): ``ok`` at or
    above ``min_valid``, else ``partial`` or ``nodata`` with the pipeline's reasons."""
    return status.gate(valid, min_valid)


def check_chip_size(path: Path, nbytes: int) -> str | None:
    """Raise above Custom Vision's training cap; return a warning above the prediction cap."""
    if nbytes > CV_TRAINING_MAX_BYTES:
        raise InputError(
            f"chip {path.name} is {nbytes / 1e6:.1f} MB, above Custom Vision's 6 MB training limit; "
            "use `fmt` png or a smaller `size`"
        )
    if nbytes > CV_PREDICTION_MAX_BYTES:
        return f"chip {path.name} is {nbytes / 1e6:.1f} MB, above Custom Vision's 4 MB prediction limit"
    return None


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of a uint8 (H, W, 3) image."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _write_geotiff(path: Path, rgb: np.ndarray, grid: PlotGrid, row: int, col: int) -> None:
    import rasterio

    size = rgb.shape[0]
    with atomic_path(path) as tmp, rasterio.open(
        tmp, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8",
        crs=grid.crs, transform=grid.plot_transform(row, col, size),
        photometric="RGB", compress="deflate", tiled=False,
    ) as dst:
        dst.write(rgb.transpose(2, 0, 1))


@dataclass
class TileResult:
    """What :func:`tile` wrote."""

    out_dir: Path
    chips_dir: Path
    index_path: Path
    grid_path: Path
    plots: int = 0
    chips: int = 0
    not_classified: int = 0
    warnings: list[str] = field(default_factory=list)
    grid: PlotGrid | None = None
    min_valid: float = DEFAULT_MIN_VALID

    def describe(self) -> str:
        """What was written, for the terminal."""
        where = self.grid.describe() if self.grid is not None else "the plot grid"
        return "\n".join([
            f"{self.plots} plots touched on {where}: {self.chips} chips "
            f"(valid >= {self.min_valid:g}), {self.not_classified} not classified",
            f"chips:  {self.chips_dir}",
            f"index:  {self.index_path}",
            f"grid:   {self.grid_path}",
        ])


def prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Create ``out_dir``; refuse a non-empty one unless ``overwrite``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputExistsError(f"{out_dir} exists and is not a folder; choose another `out`")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise OutputExistsError(f"{out_dir} is not empty; pass `overwrite=True` or choose another `out`")
    out_dir.mkdir(parents=True, exist_ok=True)


def tile(
    scene: Scene,
    grid: PlotGrid,
    out_dir: str | Path,
    *,
    min_valid: float = DEFAULT_MIN_VALID,
    fmt: str = "png",
    size: int = 224,
    plot_mask: np.ndarray | None = None,
    overwrite: bool = False,
    chunk_plots: int = 64,
    progress: Callable[[int, int], None] | None = None,
    yes: bool = False,
) -> TileResult:
    """Coverage, validity policy and chips for every plot of ``grid`` the scene touches.

    ``plot_mask`` (bool, grid shape) restricts the plots (e.g. an AOI); ``size`` is the chip side
    in pixels (224, or 256 as Custom Vision recommends: the plot is read at that size). The job is
    planned first (:func:`landuse.plan.check_job`: imagery too coarse refused, a job over the
    stated size needs ``yes``); a failure leaves no ``out_dir`` it created.
    """
    from landuse.plan import check_job

    if fmt not in CHIP_FORMATS:
        raise InputError(f"`fmt` {fmt!r} is not one of {', '.join(CHIP_FORMATS)}")
    if size < 32 or size > 2048:
        raise InputError(f"`size` {size} is out of range; use 224 or 256")
    validity_status(np.zeros(0), min_valid)  # validates min_valid
    check_job("tile", grid, scene.files, yes=yes, plots=int(plot_mask.sum()) if plot_mask is not None else None)
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    with writing(out_dir):
        prepare_out_dir(out_dir, overwrite)
    try:
        with writing(out_dir, "then run the same `landuse tile` again"):
            return _tile_into(scene, grid, out_dir, min_valid, fmt, size, plot_mask, chunk_plots, progress)
    except BaseException:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


def _tile_into(
    scene: Scene,
    grid: PlotGrid,
    out_dir: Path,
    min_valid: float,
    fmt: str,
    size: int,
    plot_mask: np.ndarray | None,
    chunk_plots: int,
    progress: Callable[[int, int], None] | None,
) -> TileResult:
    for stale in out_dir.glob(".chips.tmp-*"):  # a killed run's chips
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)

    cov = scene.coverage(grid)
    touched = cov > 0
    if plot_mask is not None:
        if plot_mask.shape != grid.shape:
            raise InputError(f"plot mask shape {plot_mask.shape} differs from the grid's {grid.shape}")
        touched &= plot_mask
    if not touched.any():
        raise InputError(f"the imagery covers no plot of {grid.describe()} (inside the AOI); check `aoi` / `grid`")

    work = out_dir / f".chips.tmp-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    chips_dir = out_dir / "chips"
    result = TileResult(out_dir, chips_dir, out_dir / "index.geojson", out_dir / "grid.json", grid=grid, min_valid=min_valid)
    records: list[dict] = []
    chunks = [c for c in grid.chunks_of(chunk_plots)
              if touched[c.row_off : c.row_off + c.height, c.col_off : c.col_off + c.width].any()]
    bboxes_names = [f.name for f in scene.files]
    try:
        for n, chunk in enumerate(chunks):
            pixels, valid = scene.read_chunk(grid, chunk, size)
            rows, cols = chunk.rows_cols()
            keep = touched[rows, cols]
            states, reason = validity_status(valid, min_valid)
            for i in np.flatnonzero(keep):
                r, c = int(rows[i]), int(cols[i])
                pid = grid.plot_id(r, c)
                chip = None
                if states[i] == status.OK:
                    name = f"{plot_file_name(pid)}.{fmt}"
                    path = work / name
                    if fmt == "png":
                        data = encode_png(pixels[i])
                        warn = check_chip_size(path, len(data))
                        _write_atomic(path, data)
                    else:
                        _write_geotiff(path, pixels[i], grid, r, c)
                        warn = check_chip_size(path, path.stat().st_size)
                    if warn:
                        log.warning(warn)
                        result.warnings.append(warn)
                    chip = f"chips/{name}"
                    result.chips += 1
                else:
                    result.not_classified += 1
                srcs = scene.files_intersecting(grid.crs, grid.plot_bounds(r, c))
                records.append({
                    "row": r, "col": c, "plot_id": pid, "valid_fraction": round(float(valid[i]), 4),
                    "status": states[i], "reason": reason[i],
                    "sources": [bboxes_names[j] for j in srcs], "chip": chip,
                })
            if progress:
                progress(n + 1, len(chunks))
        # swap the finished chips folder in
        if chips_dir.exists():
            old = out_dir / f".chips.old-{os.getpid()}"
            os.replace(chips_dir, old)
            os.replace(work, chips_dir)
            shutil.rmtree(old)
        else:
            os.replace(work, chips_dir)
    finally:
        if work.exists():
            shutil.rmtree(work)
    result.plots = len(records)
    _write_atomic(result.index_path, json.dumps(plot_index(grid, records, scene, min_valid, fmt, size)).encode())
    grid.save(result.grid_path)
    return result


def read_index(path: str | Path) -> dict[str, Any]:
    """A tiles ``index.geojson``, its statuses in today's words (:func:`landuse.status.tile_status`:
    a version-1 file's ``not classified`` is ``partial`` or ``nodata``)."""
    from landuse.fileio import read_json

    doc = read_json(path, "make it again with `landuse tile`")
    for feat in doc.get("features") or []:
        props = feat.get("properties") or {}
        props["status"] = status.tile_status(str(props.get("status")), props.get("valid_fraction"))
    return dict(doc)


def plot_index(grid: PlotGrid, records: list[dict], scene: Scene, min_valid: float, fmt: str, size: int) -> dict:
    """GeoJSON FeatureCollection (EPSG:4326) of plot records, with provenance as a foreign member."""
    import shapely

    rows = np.array([r["row"] for r in records], dtype=np.int64)
    cols = np.array([r["col"] for r in records], dtype=np.int64)
    polys: Any = grid.footprints(rows, cols, to_crs="EPSG:4326") if records else []
    features = []
    for rec, poly in zip(records, polys, strict=True):
        props = dict(rec)
        props["bounds"] = [round(v, 3) for v in grid.plot_bounds(rec["row"], rec["col"])]
        features.append({"type": "Feature", "geometry": json.loads(shapely.to_geojson(poly)), "properties": props})
    return {
        "type": "FeatureCollection",
        "features": features,
        "landuse": {
            "version": __version__,
            "index_version": status.TILE_INDEX_VERSION,
            "grid": grid.to_dict(),
            "bounds_crs": grid.crs_key,
            "min_valid": min_valid,
            "chip_format": fmt,
            "chip_size": size,
            "imagery": scene.provenance(),
        },
    }
