"""The interactive web map report: one self-contained HTML file comparing two runs.

What the page holds (built with folium, Leaflet inlined from the ``xstatic-leaflet`` wheel so the
file works from ``file://`` with the network off):

* period A and period B class layers: each run's ``classes.tif`` (one pixel per plot) reprojected
  to Web Mercator with nearest resampling, upsampled so plot edges stay crisp, colourised with the
  raster's own colour table and embedded as a base64 PNG image overlay (never a polygon per plot);
* period A and period B imagery under their class layers, downsampled from the runs' own sources
  (through the COG overviews; page budget in :mod:`landuse.report.imagery_overlay`), on by
  default when there is no basemap;
* a swipe between the two periods (A left of the divider, B right; each period's imagery and
  classes live in that period's map pane, clipped by a slider: no plug-in, no network), and a
  class-layer opacity slider;
* the change layer: vector features only for changed / uncertain plots (``change.geojson``),
  with popups: plot id, from -> to, probabilities, area and small before / after thumbnails of
  the imagery (base64 JPEG, read through :meth:`landuse.imagery.Scene.read_plot`);
* a layer control, a categorical legend (the colours of ``classes.tif``, unknown plots), a summary
  panel with the numbers of ``summary.json`` / ``summary.md`` / the CLI line (status rows that add
  up to the compared plots, class areas with confident and uncertain net change, urbanization
  confident and its upper bound) and an inline SVG chart of confident gains and losses per class;
* no basemap (``basemap="none"``, offline) or an online tile layer (OpenStreetMap by default).

The change comes from ``landuse change`` output (``change_dir``) or, when none is given, from
:func:`landuse.change.compare` run in memory with its defaults.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from landuse import defaults
from landuse.errors import InputError, LanduseError, OutputExistsError, RunStoreError
from landuse.fileio import write_bytes
from landuse.grid import PlotGrid
from landuse.report.imagery_overlay import FINEST_M, MAX_PIXELS, ImageryOverlay, imagery_overlay
from landuse.report.palette import UNKNOWN_COLOR, UNKNOWN_VALUE
from landuse.store import read_finished_run

log = logging.getLogger(__name__)

WEB_CRS = "EPSG:3857"
NODATA = 255
MAX_OVERLAY_SIDE = 2048  # px: longest side of a class overlay image
MAX_UPSAMPLE = 8  # overlay pixels per plot side at most
DEFAULT_THUMB_PX = defaults.THUMBNAIL_PX
DEFAULT_MAX_THUMBNAILS = defaults.MAX_THUMBNAILS
CHANGED_STYLE = {"color": "#ff00ff", "weight": 2, "opacity": 1.0, "fillColor": "#ff00ff", "fillOpacity": 0.12}
UNCERTAIN_STYLE = {"color": "#202020", "weight": 1.5, "opacity": 0.9, "dashArray": "4 3", "fillColor": "#ffffff", "fillOpacity": 0.08}
UNKNOWN_STYLE = {"color": "#000000", "weight": 2, "opacity": 1.0, "dashArray": "1 3", "fillColor": "#000000", "fillOpacity": 0.25}
BASEMAPS = {
    "osm": ("OpenStreetMap", None),
    "openstreetmap": ("OpenStreetMap", None),
    "carto-light": ("CartoDB positron", None),
    "carto-dark": ("CartoDB dark_matter", None),
    "esri-imagery": (
        "https://server.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{z}/{y}/{x}",
        "Tiles &copy; Esri",
    ),
}


class PlotReader(Protocol):
    """What thumbnails need of a period's imagery (:class:`landuse.imagery.Scene` is one)."""

    def read_plot(self, grid: PlotGrid, row: int, col: int, pixels: int = 224) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class RunLayer:
    """What the report needs of one run directory."""

    path: Path
    grid: PlotGrid
    manifest: dict
    period: str
    labels: list[str]
    classes: np.ndarray  # uint8 (h, w), 255 where not classified
    colors: list[str]  # '#rrggbb' per class index, from classes.tif's colour table


@dataclass
class ReportResult:
    """What :func:`write_report` wrote."""

    path: Path
    bytes: int
    seconds: float
    change_features: int
    thumbnails: int
    thumbnails_skipped: int
    overlay_px: tuple[int, int]
    notes: list[str] = field(default_factory=list)
    imagery_m_per_px: float | None = None  # ground resolution of the imagery layers (None: none drawn)
    imagery_bytes: int = 0  # of both imagery images


# -- reading the inputs --------------------------------------------------------------------------


def load_run_layer(path: str | Path) -> RunLayer:
    """Grid, manifest, class raster and its colours of a finished run directory."""
    import rasterio

    meta = read_finished_run(path, needs=("classes.tif",))
    path, grid, manifest, labels, period = meta.path, meta.grid, meta.manifest, meta.labels, meta.period
    with rasterio.open(path / "classes.tif") as src:
        if (src.height, src.width) != grid.shape or src.crs != grid.crs:
            raise RunStoreError(
                f"{path / 'classes.tif'} ({src.height} x {src.width}, {src.crs}) is not on the run's grid "
                f"{grid.describe()}; rerun the classification with `overwrite=True`"
            )
        classes = src.read(1)
        try:
            cmap = src.colormap(1)
        except ValueError:  # no colour table
            cmap = {}
    if classes.dtype != np.uint8:
        raise RunStoreError(f"{path / 'classes.tif'} is {classes.dtype}, expected uint8 class indices; rerun the classification")
    bad = (classes != NODATA) & (classes != UNKNOWN_VALUE) & (classes >= len(labels))
    if bad.any():
        raise RunStoreError(
            f"{path / 'classes.tif'} holds class index {int(classes[bad].max())} but the manifest lists "
            f"{len(labels)} labels; rerun the classification with `overwrite=True`"
        )
    colors = _class_colors(labels, cmap)
    return RunLayer(path, grid, manifest, period, labels, classes, colors)


def _class_colors(labels: list[str], cmap: dict[int, tuple[int, ...]]) -> list[str]:
    """Colour per class: the raster's colour table where it has the entry, else the toolkit palette."""
    from landuse.report.palette import class_colors

    fallback = class_colors(labels)
    out = []
    for i, tag in enumerate(labels):
        rgba = cmap.get(i)
        out.append("#{:02x}{:02x}{:02x}".format(*rgba[:3]) if rgba is not None and len(rgba) >= 3 else fallback[tag])
    return out


def load_change(change_dir: str | Path, a: RunLayer, b: RunLayer) -> tuple[dict, list[dict]]:
    """``summary.json`` and the features of ``change.geojson`` of a ``landuse change`` output,
    checked against the two runs (periods and labels)."""
    change_dir = Path(change_dir)
    docs = {}
    for name in ("summary.json", "change.geojson"):
        p = change_dir / name
        if not p.exists():
            raise InputError(f"{change_dir} has no {name}; make it with `landuse change {a.path} {b.path} --out {change_dir}`")
        try:
            docs[name] = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{p} is not valid JSON ({exc}); rerun `landuse change ... --overwrite`") from None
    summary, geo = docs["summary.json"], docs["change.geojson"]
    periods = [str(p) for p in summary.get("periods") or []]
    if periods != [a.period, b.period]:
        raise InputError(
            f"{change_dir} compares periods {periods}, not {a.period} -> {b.period}; "
            f"pass the change output of these runs or rerun `landuse change {a.path} {b.path} --out DIR`"
        )
    if list(summary.get("labels") or []) != a.labels:
        raise InputError(f"{change_dir / 'summary.json'} labels {summary.get('labels')} differ from the runs' {a.labels}; rerun `landuse change`")
    features = geo.get("features")
    if not isinstance(features, list):
        raise InputError(f"{change_dir / 'change.geojson'} is not a FeatureCollection; rerun `landuse change ... --overwrite`")
    return summary, features


def compute_change(run_a: Path, run_b: Path) -> tuple[dict, list[dict]]:
    """Summary and change features of two runs compared in memory with ``landuse change`` defaults."""
    from landuse.change import compare, load_run
    from landuse.report.change_outputs import write_change_geojson

    comp = compare(load_run(run_a), load_run(run_b))
    summary = comp.summary()
    with tempfile.TemporaryDirectory(prefix="landuse-report-") as tmp:
        p = Path(tmp) / "change.geojson"
        write_change_geojson(comp, p)
        features = json.loads(p.read_text())["features"]
    return summary, features


# -- layers -------------------------------------------------------------------------------------


def class_overlay(layer: RunLayer, max_side: int = MAX_OVERLAY_SIDE) -> tuple[str, list[list[float]], tuple[int, int]]:
    """The class raster as a Web Mercator PNG data URL, its [[south, west], [north, east]] bounds
    and its pixel size (h, w). Nearest resampling, ``k`` overlay pixels per plot side."""
    from pyproj import Transformer
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    grid = layer.grid
    k = int(max(1, min(MAX_UPSAMPLE, max_side // max(grid.width, grid.height))))
    transform, width, height = calculate_default_transform(
        grid.crs, WEB_CRS, grid.width * k, grid.height * k, *grid.bounds
    )
    dst = np.full((height, width), NODATA, dtype=np.uint8)
    reproject(
        layer.classes, dst, src_transform=grid.transform, src_crs=grid.crs, src_nodata=NODATA,
        dst_transform=transform, dst_crs=WEB_CRS, dst_nodata=NODATA, resampling=Resampling.nearest,
    )
    west, north = transform @ (0, 0)
    east, south = transform @ (width, height)
    tr = Transformer.from_crs(WEB_CRS, "EPSG:4326", always_xy=True)
    lon0, lat0 = tr.transform(west, south)
    lon1, lat1 = tr.transform(east, north)
    return _palette_png(dst, layer.colors), [[lat0, lon0], [lat1, lon1]], (height, width)


def _palette_png(index: np.ndarray, colors: Sequence[str]) -> str:
    """uint8 class indices -> palette PNG data URL (index 255 transparent)."""
    from PIL import Image

    from landuse.report.palette import hex_to_rgb

    pal = np.zeros((256, 3), dtype=np.uint8)
    for i, c in enumerate(colors):
        pal[i] = hex_to_rgb(c)
    pal[UNKNOWN_VALUE] = hex_to_rgb(UNKNOWN_COLOR)
    img = Image.fromarray(index, mode="P")
    img.putpalette(pal.ravel().tolist())
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True, transparency=NODATA)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _round_coords(obj: Any, nd: int = 6) -> Any:
    if isinstance(obj, float):
        return round(obj, nd)
    if isinstance(obj, list):
        return [_round_coords(v, nd) for v in obj]
    return obj


def change_features(features: list[dict], keep_probs: bool = True) -> list[dict]:
    """Change features trimmed for the page: rounded coordinates, the popup's properties only."""
    out = []
    for f in features:
        p = f.get("properties") or {}
        geom = f.get("geometry") or {}
        if p.get("status") not in ("changed", "uncertain", "unknown") or not geom:
            continue
        props = {k: p[k] for k in ("plot_id", "row", "col", "from", "to", "prob_from", "prob_to", "status", "area_ha") if k in p}
        if keep_probs:
            for side in ("a", "b"):
                probs = {k[len(side) + 6 :]: v for k, v in p.items() if k.startswith(f"{side}_prob_")}
                if probs:
                    props[f"probs_{side}"] = probs
        out.append({"type": "Feature", "geometry": {"type": geom["type"], "coordinates": _round_coords(geom["coordinates"])}, "properties": props})
    return out


# -- thumbnails ----------------------------------------------------------------------------------


def imagery_sources(layer: RunLayer, override: str | Sequence[str] | None, side: str = "a", what: str = "thumbnails",
                    off: str = "`thumbnails=False`") -> list[str]:
    """Imagery of a run: the given paths / globs, else the manifest's inputs (which must exist)."""
    if override:
        return [override] if isinstance(override, str) else [str(s) for s in override]
    inputs = [str(i.get("path")) for i in layer.manifest.get("inputs") or [] if i.get("path")]
    if not inputs:
        raise InputError(
            f"{layer.path / 'manifest.json'} lists no imagery inputs for {what}; pass `imagery_{side}` GLOB or {off}"
        )
    missing = [p for p in inputs if "://" not in p and not Path(p).exists()]
    if missing:
        raise InputError(
            f"imagery {missing[0]} of run {layer.path} is not there any more; pass `imagery_{side}` GLOB "
            f"(where the files are now) or {off}"
        )
    return inputs


def check_imagery_given(given: str | Sequence[str] | None, flag: str) -> None:
    """Fail at once (not only when a thumbnail is needed) when given imagery does not exist."""
    if not given:
        return
    from landuse.imagery import expand_sources

    try:
        paths = expand_sources([given] if isinstance(given, str) else list(given))
    except LanduseError as exc:
        raise InputError(f"{flag}: {exc}") from None
    for path in paths:
        if "://" not in path and not path.startswith("/vsi") and not Path(path).exists():
            raise InputError(f"{flag} {path} does not exist; give the imagery's path, glob or folder, or leave {flag} out")


def open_scene(layer: RunLayer, override: str | Sequence[str] | None, side: str = "a") -> PlotReader:
    """A :class:`landuse.imagery.Scene` over the run's imagery (bands / stretch as recorded)."""
    from landuse.imagery import Scene

    info = layer.manifest.get("imagery") or {}
    bands = info.get("bands_requested") or info.get("bands_arg")
    stretch = info.get("stretch")
    return Scene.open(imagery_sources(layer, override, side), bands=bands if isinstance(bands, list) else None,
                      stretch=stretch if isinstance(stretch, dict) else None)


def thumbnail_data_url(pixels: np.ndarray, mask: np.ndarray | None, size: int, quality: int = 70) -> str:
    """uint8 RGB (h, w, 3) -> ``size`` px JPEG data URL; invalid pixels painted mid grey."""
    from PIL import Image

    rgb = np.ascontiguousarray(pixels[..., :3]).copy()
    if mask is not None:
        rgb[~np.asarray(mask, dtype=bool)] = 128
    img = Image.fromarray(rgb, mode="RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def add_thumbnails(
    features: list[dict], grid: PlotGrid, readers: tuple[PlotReader, PlotReader], size: int, limit: int
) -> tuple[int, int]:
    """Put before / after thumbnails into the features' properties (changed plots first, largest
    area first). Returns (plots with thumbnails, plots left without because of ``limit``)."""
    order = sorted(
        range(len(features)),
        key=lambda i: (features[i]["properties"].get("status") != "changed", -float(features[i]["properties"].get("area_ha") or 0)),
    )
    done = 0
    for i in order[:limit]:
        p = features[i]["properties"]
        try:
            row, col = int(p["row"]), int(p["col"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"change feature {p.get('plot_id')!r} has no row/col; rerun `landuse change ... --overwrite`") from None
        if not grid.contains(row, col):
            raise InputError(f"change feature {p.get('plot_id')!r} (row {row}, col {col}) is not on {grid.describe()}; rerun `landuse change`")
        for key, reader in (("thumb_a", readers[0]), ("thumb_b", readers[1])):
            px, mask = reader.read_plot(grid, row, col, pixels=size)
            p[key] = thumbnail_data_url(px, mask, size)
        done += 1
    return done, max(0, len(features) - limit)


# -- panels --------------------------------------------------------------------------------------


def _fmt(v: float | None, nd: int = 1) -> str:
    return "&ndash;" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.{nd}f}"


def gain_loss_svg(labels: Sequence[str], colors: Sequence[str], gain: dict, loss: dict, net: dict, title: str) -> str:
    """Inline SVG: per class, loss bar to the left, gain bar to the right, a tick at the net."""
    row_h, label_w, bar_w, pad = 20, 84, 96, 6
    width = label_w + 2 * bar_w + 2 * pad
    height = 22 + row_h * len(labels) + 16
    vmax = max([abs(float(gain.get(t, 0) or 0)) for t in labels] + [abs(float(loss.get(t, 0) or 0)) for t in labels] + [1e-9])
    x0 = label_w + pad + bar_w  # axis
    parts = [
        f'<svg class="lu-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{width / 2:.0f}" y="13" text-anchor="middle" font-size="11" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i, (tag, col) in enumerate(zip(labels, colors, strict=True)):
        y = 20 + i * row_h
        g = float(gain.get(tag, 0) or 0)
        lo = float(loss.get(tag, 0) or 0)
        nt = float(net.get(tag, g - lo) or 0)
        gw, lw, nx = bar_w * g / vmax, bar_w * lo / vmax, x0 + bar_w * nt / vmax
        parts += [
            f'<g class="lu-bar" data-tag="{html.escape(tag)}">',
            f'<rect x="2" y="{y + 5}" width="9" height="9" fill="{col}" stroke="#333" stroke-width="0.5"/>',
            f'<text x="14" y="{y + 13}" font-size="10">{html.escape(tag[:12])}</text>',
            f'<rect class="lu-loss" x="{x0 - lw:.1f}" y="{y + 3}" width="{lw:.1f}" height="13" fill="#d6604d"><title>{html.escape(tag)} loss {lo:,.1f} ha</title></rect>',
            f'<rect class="lu-gain" x="{x0:.1f}" y="{y + 3}" width="{gw:.1f}" height="13" fill="#4393c3"><title>{html.escape(tag)} gain {g:,.1f} ha</title></rect>',
            f'<line x1="{nx:.1f}" x2="{nx:.1f}" y1="{y + 1}" y2="{y + 18}" stroke="#000" stroke-width="2"><title>{html.escape(tag)} net {nt:+,.1f} ha</title></line>',
            "</g>",
        ]
    yb = 20 + len(labels) * row_h
    parts += [
        f'<line x1="{x0}" x2="{x0}" y1="18" y2="{yb}" stroke="#555" stroke-width="1"/>',
        f'<text x="{x0 - bar_w}" y="{yb + 12}" font-size="9">&#8722;{vmax:,.0f} ha</text>',
        f'<text x="{x0 + bar_w}" y="{yb + 12}" font-size="9" text-anchor="end">+{vmax:,.0f} ha</text>',
        f'<text x="{x0}" y="{yb + 12}" font-size="9" text-anchor="middle">loss | gain</text>',
        "</svg>",
    ]
    return "".join(parts)


def legend_html(labels: Sequence[str], colors: Sequence[str]) -> str:
    """The categorical legend: one swatch per class (the classes.tif colours), unknown plots, the
    change symbols and the class-layer opacity slider."""
    rows = "".join(
        f'<div class="lu-legend-item" data-tag="{html.escape(t)}"><span class="lu-swatch" style="background:{c}"></span>{html.escape(t)}</div>'
        for t, c in zip(labels, colors, strict=True)
    )
    rows += (f'<div class="lu-legend-item" data-tag="unknown"><span class="lu-swatch" style="background:{UNKNOWN_COLOR}"></span>'
             "unknown (out of every class)</div>")
    return (
        '<div class="lu-title">Land use</div>' + rows
        + '<div class="lu-legend-sep"></div>'
        + f'<div class="lu-legend-change"><span class="lu-swatch" style="border:2px solid {CHANGED_STYLE["color"]};background:transparent"></span>changed (confident)</div>'
        + f'<div class="lu-legend-change"><span class="lu-swatch" style="border:2px dashed {UNCERTAIN_STYLE["color"]};background:transparent"></span>uncertain change</div>'
        + f'<div class="lu-legend-change"><span class="lu-swatch" style="border:2px dotted {UNKNOWN_STYLE["color"]};background:rgba(0,0,0,0.25)"></span>unknown in a period</div>'
        + '<div class="lu-legend-sep"></div>'
        + '<label class="lu-opacity">classes <input type="range" min="0" max="1" step="0.05" value="0.85" aria-label="class layer opacity"></label>'
    )


def summary_html(a: RunLayer, b: RunLayer, summary: dict, notes: Sequence[str]) -> str:
    """Summary panel: the status rows (adding up to the compared plots), class areas with the
    confident and uncertain net change, uncertain transitions, urbanization (confident and upper
    bound), the gains/losses chart — the numbers of summary.json, summary.md and the CLI line."""
    from landuse.change import fmt_ha, summary_rows

    pa, pb = a.period, b.period
    classes = summary.get("classes") or {}
    area = summary.get("area_by_class_ha") or {}
    unknown = summary.get("unknown") or {"plots": 0, "hectares": 0.0}

    def cls(t: str, key: str, fallback: dict) -> float | None:
        v = (classes.get(t) or {}).get(key)
        return fallback.get(t) if v is None else v

    rows = "".join(
        f'<tr data-tag="{html.escape(t)}"><td><span class="lu-swatch" style="background:{c}"></span>{html.escape(t)}</td>'
        f"<td>{fmt_ha(cls(t, 'area_a', area.get(pa) or {}))}</td><td>{fmt_ha(cls(t, 'area_b', area.get(pb) or {}))}</td>"
        f"<td>{fmt_ha(cls(t, 'net', summary.get('net_ha') or {}), sign=True)}</td>"
        f"<td>{fmt_ha((classes.get(t) or {}).get('uncertain_net'), sign=True)}</td></tr>"
        for t, c in zip(a.labels, a.colors, strict=True)
    )
    rows += (f'<tr data-tag="unknown"><td><span class="lu-swatch" style="background:{UNKNOWN_COLOR}"></span>unknown</td>'
             f"<td>{fmt_ha(unknown.get('hectares'))}</td><td>{fmt_ha(unknown.get('hectares'))}</td><td></td><td></td></tr>")
    names = {"changed": "changed (confident)", "compared": "= compared"}
    counts = "".join(
        f'<tr data-key="{k}"{" class=lu-total" if k == "compared" else ""}><td>{names.get(k, k)}</td><td>{n:,}</td><td>{fmt_ha(ha)}</td></tr>'
        for k, n, ha in summary_rows(summary)
    )
    ex = summary.get("excluded") or {}
    counts += (f'<tr data-key="excluded" class="lu-aside"><td>excluded (one period only)</td><td>{int(ex.get("plots", 0)):,}</td>'
               f"<td>{fmt_ha(ex.get('hectares'))}</td></tr>")
    unc = summary.get("uncertain_transitions") or []
    unc_html = ""
    if unc:
        items = "".join(f"<li>{html.escape(r['from'])} &rarr; {html.escape(r['to'])}: {fmt_ha(r['hectares'])} ha ({r['plots']:,} plots)</li>"
                        for r in sorted(unc, key=lambda r: -r["hectares"])[:8])
        unc_html = f'<div class="lu-uncertain"><b>Uncertain changes</b> (neither persistence nor change)<ul>{items}</ul></div>'
    urb = summary.get("urbanization") or {}
    urban = ""
    if urb.get("tag"):
        tag = html.escape(str(urb["tag"]))
        by_src = urb.get("by_source_ha") or {}
        unc_src = urb.get("uncertain_by_source_ha") or {}
        src = "".join(
            f"<li>{html.escape(str(t))} &rarr; {tag}: {fmt_ha(v)} ha" + (f" (+{fmt_ha(unc_src.get(t))} uncertain)" if unc_src.get(t) else "") + "</li>"
            for t, v in by_src.items() if v or unc_src.get(t)
        )
        per_year = urb.get("per_year_ha")
        upper = urb.get("upper_bound_ha", urb.get("total_ha"))
        urban = (
            f'<div class="lu-urban"><b>Urbanization</b>: <span data-key="urban-confident">{fmt_ha(urb.get("total_ha"))}</span> ha confident'
            + (f" ({fmt_ha(per_year)} ha/year)" if per_year is not None else "")
            + f'; up to <span data-key="urban-upper">{fmt_ha(upper)}</span> ha with the uncertain plots'
            + (f"<ul>{src}</ul>" if src else "")
            + "</div>"
        )
    chart = gain_loss_svg(a.labels, a.colors, summary.get("gain_ha") or {}, summary.get("loss_ha") or {}, summary.get("net_ha") or {},
                          f"Confident gains and losses {pa} \u2192 {pb} (ha)")
    note_html = "".join(f'<div class="lu-note">{html.escape(n)}</div>' for n in notes)
    rule = summary.get("area_rule")
    rule_html = f'<div class="lu-rule">Area rule: {html.escape(str(rule))}.</div>' if rule else ""
    return (
        f'<details open><summary class="lu-title">Land use {html.escape(pa)} &rarr; {html.escape(pb)}</summary>'
        f'<table class="lu-table lu-counts"><thead><tr><th>plots</th><th>n</th><th>ha</th></tr></thead><tbody>{counts}</tbody></table>'
        f'<table class="lu-table lu-area"><thead><tr><th>class (ha)</th><th>{html.escape(pa)}</th><th>{html.escape(pb)}</th>'
        f"<th>net</th><th>uncertain</th></tr></thead><tbody>{rows}</tbody></table>"
        f"{unc_html}{urban}{chart}{rule_html}{note_html}</details>"
    )


# -- page ----------------------------------------------------------------------------------------

_CSS = """
html, body { margin: 0; padding: 0; height: 100%; }
.lu-panel { background: rgba(255,255,255,0.93); padding: 6px 8px; border-radius: 5px; font: 11px/1.35 sans-serif;
  box-shadow: 0 1px 5px rgba(0,0,0,0.4); }
.lu-summary { max-height: calc(100vh - 130px); max-width: 340px; overflow: auto; }
.lu-title { font-weight: bold; font-size: 12px; margin-bottom: 3px; cursor: pointer; }
.lu-swatch { display: inline-block; width: 12px; height: 12px; margin-right: 5px; vertical-align: -2px;
  border: 1px solid #555; box-sizing: border-box; }
.lu-legend-sep { border-top: 1px solid #bbb; margin: 4px 0; }
.lu-table { border-collapse: collapse; margin: 4px 0; }
.lu-table td, .lu-table th { padding: 1px 5px; text-align: right; }
.lu-table td:first-child, .lu-table th:first-child { text-align: left; }
.lu-table thead th { border-bottom: 1px solid #999; }
.lu-urban ul, .lu-uncertain ul { margin: 2px 0 4px 16px; padding: 0; }
.lu-total td { border-top: 1px solid #999; font-weight: bold; }
.lu-aside td { color: #666; }
.lu-rule { color: #555; font-size: 10px; margin-top: 3px; }
.lu-opacity { display: block; }
.lu-opacity input { width: 110px; vertical-align: middle; }
.lu-note { color: #7a4b00; margin-top: 3px; }
.lu-popup table { border-collapse: collapse; font-size: 11px; }
.lu-popup td { padding: 0 4px; }
.lu-thumbs { display: flex; gap: 6px; margin-top: 4px; }
.lu-thumbs figure { margin: 0; text-align: center; font-size: 10px; }
.lu-thumbs img { display: block; width: 128px; height: 128px; image-rendering: auto; border: 1px solid #444; }
.lu-swipe { position: absolute; inset: 0; z-index: 500; pointer-events: none; }
.lu-swipe-line { position: absolute; top: 0; bottom: 0; width: 3px; margin-left: -1px; background: #fff;
  box-shadow: 0 0 3px rgba(0,0,0,0.8); }
.lu-swipe-tag { position: absolute; top: 6px; padding: 1px 5px; background: rgba(0,0,0,0.6); color: #fff;
  font: bold 11px sans-serif; border-radius: 3px; white-space: nowrap; }
.lu-swipe-range { position: absolute; left: 0; width: 100%; top: 50%; margin: 0; padding: 0; height: 0;
  -webkit-appearance: none; appearance: none; background: transparent; pointer-events: none; outline: none; }
.lu-swipe-range::-webkit-slider-thumb { -webkit-appearance: none; appearance: none; pointer-events: auto;
  width: 30px; height: 30px; border-radius: 15px; background: #fff; border: 2px solid #333; cursor: ew-resize; }
.lu-swipe-range::-moz-range-thumb { pointer-events: auto; width: 30px; height: 30px; border-radius: 15px;
  background: #fff; border: 2px solid #333; cursor: ew-resize; }
.leaflet-image-layer.lu-classes { image-rendering: pixelated; image-rendering: crisp-edges; }
"""

_JS = """
(function () {
  var map = %(map)s;
  var layers = {a: %(a)s, b: %(b)s, change: %(change)s, imageryA: %(img_a)s, imageryB: %(img_b)s};
  var R = window.landuseReport = {map: map, layers: layers, control: %(control)s, ready: false,
                                  readyAt: null, periods: %(periods)s, styles: %(styles)s};
  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) {
    return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]; }); }
  function pct(v) { return (v === null || v === undefined) ? '&ndash;' : (100 * v).toFixed(0) + '%%'; }
  function probs(obj) {
    if (!obj) return '';
    return Object.keys(obj).map(function (k) { return esc(k) + ' ' + pct(obj[k]); }).join(', ');
  }
  R.popupHtml = function (p) {
    var h = '<div class="lu-popup"><b>' + esc(p.status) + '</b>: ' + esc(p.from) + ' &rarr; ' + esc(p.to) +
      '<table><tr><td>plot</td><td>' + esc(p.plot_id) + '</td></tr>' +
      '<tr><td>' + esc(R.periods[0]) + '</td><td>' + esc(p.from) + ' ' + pct(p.prob_from) + '</td></tr>' +
      '<tr><td>' + esc(R.periods[1]) + '</td><td>' + esc(p.to) + ' ' + pct(p.prob_to) + '</td></tr>' +
      '<tr><td>area</td><td>' + (p.area_ha === undefined ? '&ndash;' : Number(p.area_ha).toFixed(2) + ' ha') + '</td></tr>';
    if (p.probs_a) h += '<tr><td colspan="2" style="color:#555">' + esc(R.periods[0]) + ': ' + probs(p.probs_a) + '</td></tr>';
    if (p.probs_b) h += '<tr><td colspan="2" style="color:#555">' + esc(R.periods[1]) + ': ' + probs(p.probs_b) + '</td></tr>';
    h += '</table>';
    if (p.thumb_a || p.thumb_b) {
      h += '<div class="lu-thumbs"><figure><img alt="before" src="' + (p.thumb_a || '') + '"><figcaption>' +
        esc(R.periods[0]) + '</figcaption></figure><figure><img alt="after" src="' + (p.thumb_b || '') +
        '"><figcaption>' + esc(R.periods[1]) + '</figcaption></figure></div>';
    }
    return h + '</div>';
  };
  function panel(position, cls, content) {
    var c = L.control({position: position});
    c.onAdd = function () {
      var d = L.DomUtil.create('div', 'lu-panel ' + cls);
      d.innerHTML = content;
      L.DomEvent.disableClickPropagation(d);
      L.DomEvent.disableScrollPropagation(d);
      return d;
    };
    c.addTo(map);
    return c;
  }
  R.summary = panel('topleft', 'lu-summary', %(summary_html)s);
  R.legend = panel('bottomright', 'lu-legend', %(legend_html)s);

  // swipe: period A left of the divider, period B right (each class layer in its own pane)
  var paneA = map.getPane(%(pane_a)s), paneB = map.getPane(%(pane_b)s);
  var box = L.DomUtil.create('div', 'lu-swipe', map.getContainer());
  box.innerHTML = '<div class="lu-swipe-line"><span class="lu-swipe-tag" style="right:8px">' + esc(R.periods[0]) +
    ' &#9664;</span><span class="lu-swipe-tag" style="left:8px">&#9654; ' + esc(R.periods[1]) + '</span></div>' +
    '<input class="lu-swipe-range" type="range" min="0" max="1" step="any" value="0.5" aria-label="swipe">';
  var line = box.querySelector('.lu-swipe-line'), range = box.querySelector('.lu-swipe-range');
  L.DomEvent.disableClickPropagation(range);
  ['mousedown', 'touchstart', 'pointerdown'].forEach(function (e) {
    L.DomEvent.on(range, e, L.DomEvent.stopPropagation);
  });
  function clip() {
    var size = map.getSize(), f = parseFloat(range.value);
    var nw = map.containerPointToLayerPoint([0, 0]), se = map.containerPointToLayerPoint(size);
    var x = nw.x + size.x * f;
    paneA.style.clip = 'rect(' + [nw.y, x, se.y, nw.x].join('px,') + 'px)';
    paneB.style.clip = 'rect(' + [nw.y, se.x, se.y, x].join('px,') + 'px)';
    line.style.left = (size.x * f) + 'px';
  }
  R.swipe = {range: range, clip: clip, set: function (f) { range.value = f; clip(); }};
  range.addEventListener('input', clip);
  map.on('move zoom resize viewreset', clip);
  // the divider would cross an open popup: hide it meanwhile (the clip stays)
  map.on('popupopen', function () { box.style.display = 'none'; });
  map.on('popupclose', function () { box.style.display = ''; });
  clip();

  // on a wide window, keep the map clear of the summary panel
  var sz = map.getSize();
  if (sz.x > 900) {
    map.fitBounds(layers.a.getBounds(), {paddingTopLeft: [R.summary.getContainer().offsetWidth + 20, 10],
                                         paddingBottomRight: [10, 10], animate: false});
  }

  // class-layer opacity (both periods)
  var op = R.legend.getContainer().querySelector('.lu-opacity input');
  R.setClassOpacity = function (v) { op.value = v; layers.a.setOpacity(+v); layers.b.setOpacity(+v); };
  op.addEventListener('input', function () { R.setClassOpacity(op.value); });

  // ready once the overlays on the map have decoded
  var shown = [layers.a, layers.b, layers.imageryA, layers.imageryB].filter(function (o) { return o && map.hasLayer(o); });
  var pending = shown.length;
  function done() { if (--pending === 0) { R.ready = true; R.readyAt = performance.now(); } }
  shown.forEach(function (o) {
    var el = o.getElement();
    if (el && el.complete && el.naturalWidth) { done(); } else { o.once('load', done); }
  });
})();
"""

_ON_EACH_FEATURE = """function (feature, layer) {
  var p = feature.properties;
  layer.setStyle(p.status === 'changed' ? %(changed)s : (p.status === 'unknown' ? %(unknown)s : %(uncertain)s));
  layer.bindPopup(function () { return window.landuseReport.popupHtml(p); }, {maxWidth: 340});
}"""


def _js_string(text: str) -> str:
    """A JSON string literal safe inside <script> (no '</' sequences)."""
    return json.dumps(text).replace("</", "<\\/")


def leaflet_assets() -> tuple[str, str]:
    """Leaflet's JS and CSS (CSS images inlined as data URLs) from the installed xstatic-leaflet."""
    try:
        import xstatic.pkg.leaflet as xl
    except ImportError:
        raise InputError("the web map needs the xstatic-leaflet package (Leaflet JS/CSS); pip install xstatic-leaflet") from None
    base = Path(xl.BASE_DIR)
    js = (base / "leaflet.js").read_text(encoding="utf-8")
    css = (base / "leaflet.css").read_text(encoding="utf-8")

    def inline(m: re.Match) -> str:
        p = base / m.group(1)
        return f"url(data:image/png;base64,{base64.b64encode(p.read_bytes()).decode('ascii')})"

    css = re.sub(r"url\((images/[\w.-]+\.png)\)", inline, css)
    return js.replace("</script", "<\\/script"), css


def _tile_layer(basemap: str) -> tuple[str, str | None] | None:
    """Basemap name -> (folium tiles, attribution), None for 'none'."""
    key = basemap.strip().lower()
    if key in ("none", "off", ""):
        return None
    if key in BASEMAPS:
        return BASEMAPS[key]
    if basemap.startswith(("http://", "https://")) and "{z}" in basemap and "{x}" in basemap and "{y}" in basemap:
        return basemap, "basemap: " + basemap.split("/")[2]
    raise InputError(
        f"unknown `basemap` {basemap!r}; use none (offline), {', '.join(sorted(set(BASEMAPS) - {'openstreetmap'}))} "
        "or a tile URL template with {z}/{x}/{y}"
    )


def build_map(
    a: RunLayer,
    b: RunLayer,
    summary: dict,
    features: list[dict],
    basemap: str = "none",
    notes: Sequence[str] = (),
    imagery: tuple[ImageryOverlay, ImageryOverlay] | None = None,
) -> tuple[Any, dict]:
    """The folium map (not yet made self-contained) and facts about it. ``imagery``: each
    period's imagery, drawn under that period's classes (on by default without a basemap)."""
    import folium
    from branca.element import Element, MacroElement
    from jinja2 import Template

    tiles = _tile_layer(basemap)
    url_a, bounds, shape = class_overlay(a)
    url_b, bounds_b, _ = class_overlay(b)
    m = folium.Map(tiles=None, control_scale=True, zoom_snap=0.25, prefer_canvas=False)
    m.get_root().title = f"Land use {a.period} \u2192 {b.period}"  # type: ignore[attr-defined]  # a folium Figure
    if tiles is not None:
        folium.TileLayer(tiles[0], attr=tiles[1], name="basemap", overlay=False, control=True).add_to(m)
    pane_a, pane_b = "lu_period_a", "lu_period_b"
    # between the tile pane (200) and the vector overlay pane (400): changes draw above the classes
    folium.map.CustomPane(pane_a, z_index=350, pointer_events=False).add_to(m)
    folium.map.CustomPane(pane_b, z_index=351, pointer_events=False).add_to(m)
    img_names = ["null", "null"]
    if imagery is not None:
        # each period's imagery in that period's pane, added first: under its classes, clipped by the same swipe
        for side, (ov, pane, layer) in enumerate(zip(imagery, (pane_a, pane_b), (a, b), strict=True)):
            im = folium.raster_layers.ImageOverlay(ov.url, ov.bounds, name=f"{layer.period} imagery ({ov.metres_per_px:g} m/px)",
                                                   pane=pane, opacity=1.0, interactive=False, className="lu-imagery",
                                                   show=tiles is None)
            im.add_to(m)
            img_names[side] = im.get_name()
    opts: dict[str, Any] = dict(opacity=0.85, pixelated=True, interactive=False, className="lu-classes")
    ov_a = folium.raster_layers.ImageOverlay(url_a, bounds, name=f"{a.period} classes", pane=pane_a, **opts)
    ov_b = folium.raster_layers.ImageOverlay(url_b, bounds_b, name=f"{b.period} classes", pane=pane_b, **opts)
    ov_a.add_to(m)
    ov_b.add_to(m)
    on_each = _ON_EACH_FEATURE % {"changed": json.dumps(CHANGED_STYLE), "uncertain": json.dumps(UNCERTAIN_STYLE),
                                  "unknown": json.dumps(UNKNOWN_STYLE)}
    gj = folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name=f"change {a.period} \u2192 {b.period} ({len(features):,} plots)",
        on_each_feature=folium.JsCode(on_each),
        smooth_factor=0,
    )
    gj.add_to(m)
    control = folium.LayerControl(position="topright", collapsed=False)
    control.add_to(m)
    m.fit_bounds(bounds)

    root: Any = m.get_root()  # a folium Figure (header, html, script)
    root.header.add_child(Element(f"<style>{_CSS}</style>"), name="landuse_css")
    script = _JS % {
        "map": m.get_name(),
        "a": ov_a.get_name(),
        "b": ov_b.get_name(),
        "change": gj.get_name(),
        "control": control.get_name(),
        "periods": json.dumps([a.period, b.period]),
        "styles": json.dumps({"changed": CHANGED_STYLE, "uncertain": UNCERTAIN_STYLE, "unknown": UNKNOWN_STYLE}),
        "img_a": img_names[0],
        "img_b": img_names[1],
        "summary_html": _js_string(summary_html(a, b, summary, notes)),
        "legend_html": _js_string(legend_html(a.labels, a.colors)),
        "pane_a": json.dumps(pane_a),
        "pane_b": json.dumps(pane_b),
    }

    class _Script(MacroElement):
        _template = Template("{% macro script(this, kwargs) %}{{ this.code }}{% endmacro %}")

        def __init__(self, code: str) -> None:
            super().__init__()
            self._name = "LanduseReport"
            self.code = code

    # added last so it runs after the layers and the control exist
    m.add_child(_Script(script), name="landuse_report")
    return m, {"overlay_px": shape, "features": len(features)}


def imagery_layers(a: RunLayer, b: RunLayer, imagery_a: str | Sequence[str] | None, imagery_b: str | Sequence[str] | None,
                   finest_m: float = FINEST_M, max_pixels: int = MAX_PIXELS) -> tuple[ImageryOverlay, ImageryOverlay]:
    """Both periods' imagery overlays, from the runs' own sources (or the given ones)."""
    out = []
    for layer, override, side in ((a, imagery_a, "a"), (b, imagery_b, "b")):
        info = layer.manifest.get("imagery") or {}
        bands = info.get("bands_requested") or info.get("bands_arg")
        stretch = info.get("stretch")
        out.append(imagery_overlay(a.grid, imagery_sources(layer, override, side, what="the imagery layers", off="`imagery=False`"),
                                   bands=bands if isinstance(bands, list) else None,
                                   stretch=stretch if isinstance(stretch, dict) else None, finest_m=finest_m, max_pixels=max_pixels))
    return out[0], out[1]


def render_offline(m: Any) -> str:
    """Render the map to HTML with Leaflet inlined and no external script or stylesheet."""
    from branca.element import Element

    m.default_js = []
    m.default_css = []
    js, css = leaflet_assets()
    root: Any = m.get_root()
    root.header.add_child(Element(f"<style>{css}</style>\n<script>{js}</script>"), name="leaflet_inline", index=0)
    page = root.render()
    external = re.findall(r"<(?:script[^>]+src|link[^>]+href)\s*=\s*[\"']?(https?:)?//", page, flags=re.I)
    if external:
        raise RuntimeError("the rendered report still links an external script or stylesheet")  # a bug, not user input
    return page


def write_report(
    run_a: str | Path,
    run_b: str | Path,
    out: str | Path,
    change_dir: str | Path | None = None,
    basemap: str = "osm",
    thumbnails: bool = True,
    imagery_a: str | Sequence[str] | None = None,
    imagery_b: str | Sequence[str] | None = None,
    overwrite: bool = False,
    thumb_px: int = DEFAULT_THUMB_PX,
    max_thumbnails: int = DEFAULT_MAX_THUMBNAILS,
    readers: tuple[PlotReader, PlotReader] | None = None,
    progress: Callable[[str], None] | None = None,
    imagery: bool = True,
    imagery_m: float = FINEST_M,
    imagery_max_pixels: int = MAX_PIXELS,
) -> ReportResult:
    """Build the web map report of runs A and B (and their change) into one HTML file, atomically.

    ``readers`` replaces the imagery scenes for thumbnails (anything with ``read_plot``);
    ``imagery`` adds each period's imagery under its classes (at ``imagery_m`` metres per pixel
    or coarser, at most ``imagery_max_pixels`` a period).
    """
    t0 = time.perf_counter()
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists; pass `overwrite=True` or choose another `out`")
    if out.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"`out` {out} should be an .html file; e.g. `out` report.html")
    if not 16 <= thumb_px <= 256:
        raise InputError(f"thumbnail size {thumb_px} px is outside 16..256; e.g. 64")
    if max_thumbnails < 0:
        raise InputError(f"`max_thumbnails` must be >= 0, got {max_thumbnails}")
    for side, given in (("a", imagery_a), ("b", imagery_b)):
        check_imagery_given(given, f"`imagery_{side}`")
    _tile_layer(basemap)  # validate early
    say = progress or (lambda _msg: None)
    a = load_run_layer(run_a)
    b = load_run_layer(run_b)
    a.grid.require_equal(b.grid, what=f"runs {a.path} and {b.path}")
    if a.labels != b.labels:
        raise InputError(f"runs {a.path} and {b.path} have different tags ({a.labels} vs {b.labels}); classify both with models of the same tags")
    if change_dir is not None:
        summary, raw = load_change(change_dir, a, b)
    else:
        say("comparing the two runs (no --change given)")
        summary, raw = compute_change(a.path, b.path)
    features = change_features(raw)
    notes: list[str] = []
    n_thumbs = skipped = 0
    if thumbnails and features:
        if readers is None:
            readers = (open_scene(a, imagery_a, "a"), open_scene(b, imagery_b, "b"))
        say(f"reading thumbnails of {min(len(features), max_thumbnails):,} plots")
        n_thumbs, skipped = add_thumbnails(features, a.grid, readers, thumb_px, max_thumbnails)
        if skipped:
            notes.append(f"thumbnails for {n_thumbs:,} of {len(features):,} change plots (limit {max_thumbnails:,}); the rest have none")
            log.warning(notes[-1])
    elif not thumbnails:
        notes.append("no imagery thumbnails (--no-thumbnails)")
    for w in summary.get("warnings") or []:
        notes.append(str(w))
    overlays = None
    if imagery:
        say("drawing the imagery layers")
        overlays = imagery_layers(a, b, imagery_a, imagery_b, imagery_m, imagery_max_pixels)
        notes.append(f"imagery at {overlays[0].metres_per_px:g} m/px ({(overlays[0].bytes + overlays[1].bytes) / 1e6:.2f} MB)")
    say("building the map")
    m, facts = build_map(a, b, summary, features, basemap=basemap, notes=notes, imagery=overlays)
    page = render_offline(m)
    data = page.encode("utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(out, data)
    return ReportResult(out, len(data), time.perf_counter() - t0, len(features), n_thumbs, skipped, facts["overlay_px"], notes,
                        overlays[0].metres_per_px if overlays else None, sum(o.bytes for o in overlays) if overlays else 0)
