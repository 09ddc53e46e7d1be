"""Files of a change analysis: change.geojson / .parquet / .gpkg, change.tif, CSV matrices,
summary.json / .md, and the QGIS / SLD styles beside the rasters and vector layers."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from landuse import __version__
from landuse.change import STATUS_CODES, Comparison, fmt_ha, summary_rows
from landuse.errors import OutputExistsError
from landuse.fileio import staged_dir
from landuse.report.palette import UNKNOWN_COLOR, class_colors, hex_to_rgb

CHANGE_NODATA = 255
CHANGE_UNKNOWN = 254
CHANGE_FILES = ("change.geojson", "change.parquet", "change.gpkg", "change.tif", "transitions.csv", "matrix_*.csv",
                "summary.json", "summary.md", "*.qml / *.sld styles")


def write_change_outputs(comp: Comparison, out: str | Path, summary: dict, overwrite: bool = False) -> Path:
    """Write every output of one comparison into ``out`` atomically (a temp dir renamed at the end)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(f"{out} already exists and is not empty; pass `overwrite=True` or choose another `out`")
    with staged_dir(out) as tmp:
        write_change_geojson(comp, tmp / "change.geojson")
        write_change_layers(comp, tmp)
        write_change_tif(comp, tmp / "change.tif")
        write_matrices(comp, tmp)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
        (tmp / "summary.md").write_text(summary_markdown(summary))
    return out


def _json_default(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_change_geojson(comp: Comparison, path: Path) -> None:
    """Changed, uncertain and unknown plots as an RFC 7946 FeatureCollection in EPSG:4326."""
    import shapely

    grid = comp.grid
    keep = comp.compared & (comp.status != STATUS_CODES["unchanged"])
    rows, cols = np.nonzero(keep)
    polys: Any = grid.footprints(rows, cols, to_crs="EPSG:4326") if rows.size else []
    labels = comp.labels
    pa = comp.run_a.probs
    pb = comp.run_b.probs
    status_name = {v: k for k, v in STATUS_CODES.items()}
    ids: Any = grid.plot_ids(rows, cols) if rows.size else []
    features = []
    for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
        f, t = int(comp.from_cls[r, c]), int(comp.to_cls[r, c])
        geom = json.loads(shapely.to_geojson(polys[i]))
        geom["coordinates"] = [[[round(x, 7), round(y, 7)] for x, y in ring] for ring in geom["coordinates"]]
        props = {
            "plot_id": ids[i],
            "row": r,
            "col": c,
            "from": comp.label_of(f),
            "to": comp.label_of(t),
            "prob_from": round(float(pa[f, r, c]), 4) if f >= 0 else None,
            "prob_to": round(float(pb[t, r, c]), 4) if t >= 0 else None,
            "status": status_name[int(comp.status[r, c])],
            "area_ha": round(float(comp.area_ha[r, c]), 4),
        }
        for k, tag in enumerate(labels):
            props[f"a_prob_{tag}"] = _round_or_none(pa[k, r, c])
            props[f"b_prob_{tag}"] = _round_or_none(pb[k, r, c])
        features.append({"type": "Feature", "geometry": geom, "properties": props})
    doc = {
        "type": "FeatureCollection",
        "features": features,
        "landuse": {
            "toolkit_version": __version__,
            "kind": "change",
            "periods": [comp.run_a.period, comp.run_b.period],
            "runs": [str(comp.run_a.path), str(comp.run_b.path)],
            "grid": grid.to_dict(),
            "min_confidence": comp.min_confidence,
            "smoothed": comp.smoothed,
            "models": [comp.run_a.manifest.get("model"), comp.run_b.manifest.get("model")],
        },
    }
    path.write_text(json.dumps(doc) + "\n")


STATUS_STYLE = {  # change layers: one fill per status
    "unchanged": (200, 200, 200, 90),
    "changed": (255, 0, 255, 200),
    "uncertain": (255, 190, 255, 140),
    "unknown": (0, 0, 0, 200),
}


def change_frame(comp: Comparison):  # noqa: ANN201 - a GeoDataFrame (geopandas imported lazily)
    """Every compared plot: id, row, col, from, to, status, winning probabilities, hectares, both
    periods' probabilities; plot footprints in the grid's CRS (as plots.parquet)."""
    import geopandas as gpd
    import pandas as pd

    grid = comp.grid
    rows, cols = np.nonzero(comp.compared)
    status_name = {v: k for k, v in STATUS_CODES.items()}
    f, t = comp.from_cls[rows, cols].astype(np.int64), comp.to_cls[rows, cols].astype(np.int64)
    pa, pb = comp.run_a.probs, comp.run_b.probs
    pf = np.where(f >= 0, pa[np.clip(f, 0, None), rows, cols], np.nan)
    pt = np.where(t >= 0, pb[np.clip(t, 0, None), rows, cols], np.nan)
    df = pd.DataFrame({
        "plot_id": grid.plot_ids(rows, cols) if rows.size else [],
        "row": rows.astype(np.int32),
        "col": cols.astype(np.int32),
        "from": [comp.label_of(int(i)) for i in f.tolist()],
        "to": [comp.label_of(int(i)) for i in t.tolist()],
        "status": [status_name[int(v)] for v in comp.status[rows, cols].tolist()],
        "prob_from": pf.astype(np.float32),
        "prob_to": pt.astype(np.float32),
        "area_ha": comp.area_ha[rows, cols],
    })
    for k, tag in enumerate(comp.labels):
        df[f"a_prob_{tag}"] = pa[k, rows, cols].astype(np.float32)
        df[f"b_prob_{tag}"] = pb[k, rows, cols].astype(np.float32)
    return gpd.GeoDataFrame(df, geometry=grid.footprints(rows, cols) if rows.size else [], crs=grid.crs.to_wkt())


def write_change_layers(comp: Comparison, out: Path) -> None:
    """change.parquet and change.gpkg (same columns; the GeoPackage styled by status) and
    change_plots.qml / .sld for the GeoParquet / GeoJSON layers."""
    from landuse.report import files, styles

    gdf = change_frame(comp)
    provenance = {
        "toolkit_version": __version__, "kind": "change", "periods": [comp.run_a.period, comp.run_b.period],
        "runs": [str(comp.run_a.path), str(comp.run_b.path)], "min_confidence": comp.min_confidence,
    }
    cats = {k: (k, rgba) for k, rgba in STATUS_STYLE.items()}
    files.write_geoparquet(gdf, out / "change.parquet", provenance)
    files.write_geopackage(gdf, out / "change.gpkg", "change", styles.vector_style_texts("change", "status", cats), provenance)
    styles.write_vector_styles(out / "change_plots", "status", cats)


def _round_or_none(v: float) -> float | None:
    return None if np.isnan(v) else round(float(v), 4)


def change_categories(labels: list[str]) -> dict[int, tuple[str, tuple[int, int, int, int]]]:
    """Name and colour of each change.tif code: ``from * n + to`` for unchanged (grey) and confident
    changes (the 'to' colour), ``n * n + from * n + to`` for uncertain changes (the 'to' colour
    paled), 254 unknown, 255 not compared (transparent)."""
    n = len(labels)
    colors = class_colors(labels)
    out: dict[int, tuple[str, tuple[int, int, int, int]]] = {}
    for f in range(n):
        for t in range(n):
            rgb = hex_to_rgb(colors[labels[t]])
            if f == t:
                out[f * n + t] = (f"{labels[f]} (unchanged)", (200, 200, 200, 255))
            else:
                out[f * n + t] = (f"{labels[f]} -> {labels[t]}", (*rgb, 255))  # type: ignore[assignment]
                pale = tuple(int(round(0.45 * v + 0.55 * 255)) for v in rgb)
                out[n * n + f * n + t] = (f"{labels[f]} -> {labels[t]} (uncertain)", (*pale, 255))  # type: ignore[arg-type,assignment]
    out[CHANGE_UNKNOWN] = ("unknown (either period)", (*hex_to_rgb(UNKNOWN_COLOR), 255))
    return out


def change_colormap(labels: list[str]) -> dict[int, tuple[int, int, int, int]]:
    """Colour table of change codes (see :func:`change_categories`); 255 transparent."""
    cmap = {code: rgba for code, (_name, rgba) in change_categories(labels).items()}
    cmap[CHANGE_NODATA] = (0, 0, 0, 0)
    return cmap


def change_codes(comp: Comparison) -> np.ndarray:
    """uint8 change code per plot (see :func:`change_categories`)."""
    n = len(comp.labels)
    f = np.clip(comp.from_cls, 0, None).astype(np.int32)
    t = np.clip(comp.to_cls, 0, None).astype(np.int32)
    code = np.full(comp.status.shape, CHANGE_NODATA, dtype=np.int32)
    sure = (comp.status == STATUS_CODES["unchanged"]) | (comp.status == STATUS_CODES["changed"])
    code[sure] = (f * n + t)[sure]
    unc = comp.status == STATUS_CODES["uncertain"]
    code[unc] = (n * n + f * n + t)[unc]
    code[comp.status == STATUS_CODES["unknown"]] = CHANGE_UNKNOWN
    return code.astype(np.uint8)


def write_change_tif(comp: Comparison, path: Path) -> None:
    """change.tif on the plot grid: ``from * n_classes + to``; 255 where not compared; colour table."""
    import rasterio

    n = len(comp.labels)
    if 2 * n * n >= CHANGE_UNKNOWN:
        raise ValueError(f"{n} classes do not fit change codes in one byte")
    code = change_codes(comp)
    grid = comp.grid
    profile = dict(
        driver="GTiff", width=grid.width, height=grid.height, count=1, dtype="uint8", crs=grid.crs,
        transform=grid.transform, nodata=CHANGE_NODATA, compress="deflate", tiled=grid.width >= 256 and grid.height >= 256,
    )
    with rasterio.open(path, "w", **profile) as dst:
        # the colour table before the pixels: libtiff cannot change the photometric tag once writing
        dst.write_colormap(1, change_colormap(comp.labels))
        dst.update_tags(
            landuse_kind="change",
            landuse_version=__version__,
            labels=json.dumps(comp.labels),
            code="from_index * n_classes + to_index (unchanged / confident change); n_classes**2 + that (uncertain); 254 unknown; 255 not compared",
            periods=json.dumps([comp.run_a.period, comp.run_b.period]),
        )
        dst.update_tags(1, **{str(code): name for code, (name, _rgba) in change_categories(comp.labels).items()})
        dst.write(code, 1)
    from landuse.report.styles import write_raster_styles

    write_raster_styles(path, {code: nc for code, nc in change_categories(comp.labels).items()})


def write_matrices(comp: Comparison, out: Path) -> None:
    """transitions.csv (long form) and matrix_plots.csv / matrix_hectares.csv (from rows x to columns)."""
    labels = comp.labels
    compared_ha = float(comp.area_ha[comp.compared].sum())
    assert comp.matrix_uncertain_plots is not None and comp.matrix_uncertain_ha is not None
    with open(out / "transitions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["from", "to", "status", "plots", "hectares", "share_of_compared"])

        def row(a: str, b: str, status: str, plots: int, ha: float) -> None:
            w.writerow([a, b, status, plots, f"{ha:.4f}", f"{ha / compared_ha:.6f}" if compared_ha else ""])

        for i, a in enumerate(labels):
            for j, b in enumerate(labels):
                if comp.matrix_plots[i, j]:
                    row(a, b, "unchanged" if i == j else "changed", int(comp.matrix_plots[i, j]), float(comp.matrix_ha[i, j]))
                if comp.matrix_uncertain_plots[i, j]:
                    row(a, b, "uncertain", int(comp.matrix_uncertain_plots[i, j]), float(comp.matrix_uncertain_ha[i, j]))
        unk = comp.status == STATUS_CODES["unknown"]
        pairs: dict[tuple[str, str], list[float]] = {}
        for fr, to, ha in zip(comp.from_cls[unk].tolist(), comp.to_cls[unk].tolist(), comp.area_ha[unk].tolist(), strict=True):
            acc = pairs.setdefault((comp.label_of(fr), comp.label_of(to)), [0, 0.0])
            acc[0] += 1
            acc[1] += ha
        for (a, b), (k, ha) in sorted(pairs.items()):
            row(a, b, "unknown", int(k), float(ha))
    for name, m, fmt in (("matrix_plots.csv", comp.matrix_plots, "{:d}"), ("matrix_hectares.csv", comp.matrix_ha, "{:.4f}"),
                         ("matrix_uncertain_plots.csv", comp.matrix_uncertain_plots, "{:d}"),
                         ("matrix_uncertain_hectares.csv", comp.matrix_uncertain_ha, "{:.4f}")):
        with open(out / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["from \\ to", *labels, "total"])
            for i, a in enumerate(labels):
                w.writerow([a, *(fmt.format(v) for v in m[i].tolist()), fmt.format(m[i].sum())])
            w.writerow(["total", *(fmt.format(v) for v in m.sum(axis=0).tolist()), fmt.format(m.sum())])


def summary_markdown(s: dict) -> str:
    """A short human-readable report of ``summary.json`` (the same numbers as the CLI and the map)."""
    a, b = s["periods"]
    lines = [f"# Land-use change {a} -> {b}", ""]
    lines.append(f"Plots of {s['plot_area_ha']:.4f} ha; a change is confident when both periods' winning probability >= {s['min_confidence']}"
                 + (" (3 x 3 plurality smoothing applied)." if s["smoothed"] else "."))
    lines += ["", f"Area rule: {s['area_rule']}.", ""]
    lines.append("| plots | n | hectares |")
    lines.append("|---|---:|---:|")
    for k, n, ha in summary_rows(s):
        name = {"changed": "changed (confident)", "compared": "**compared** (sum)"}.get(k, k)
        lines.append(f"| {name} | {n:,} | {fmt_ha(ha)} |")
    lines.append(f"| excluded (seen in one period only) | {s['excluded']['plots']:,} | {fmt_ha(s['excluded']['hectares'])} |")
    lines += ["", "## Area by class (ha)", "",
              f"| class | {a} | {b} | confident gain | confident loss | confident net | uncertain net |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for t in s["labels"]:
        c = s["classes"][t]
        lines.append(f"| {t} | {fmt_ha(c['area_a'])} | {fmt_ha(c['area_b'])} | {fmt_ha(c['gain'])} | {fmt_ha(c['loss'])} "
                     f"| {fmt_ha(c['net'], sign=True)} | {fmt_ha(c['uncertain_net'], sign=True)} |")
    unk = s["unknown"]
    lines.append(f"| unknown | {fmt_ha(unk['hectares'])} | {fmt_ha(unk['hectares'])} | | | | |")
    for title, key in (("Confident changes", "transitions"), ("Uncertain changes (neither persistence nor change)", "uncertain_transitions")):
        rows = s.get(key) or []
        lines += ["", f"## {title}", ""]
        if not rows:
            lines.append("none")
        for r in rows:
            lines.append(f"- {r['from']} -> {r['to']}: {fmt_ha(r['hectares'])} ha ({r['plots']:,} plots)")
    u = s["urbanization"]
    if u["tag"]:
        lines += ["", f"## Urbanization (became {u['tag']})", "",
                  f"Confident: {fmt_ha(u['total_ha'])} ha ({u['total_plots']:,} plots)"
                  + (f", {fmt_ha(u['per_year_ha'])} ha/year over {s['years']:.2f} years" if u["per_year_ha"] is not None else "")
                  + f"; upper bound with the uncertain plots: {fmt_ha(u['upper_bound_ha'])} ha ({u['upper_bound_plots']:,} plots)."]
        for t, ha in u["by_source_ha"].items():
            lines.append(f"- from {t}: {fmt_ha(ha)} ha confident ({u['by_source_plots'][t]:,} plots), "
                         f"{fmt_ha(u['uncertain_by_source_ha'][t])} ha uncertain ({u['uncertain_by_source_plots'][t]:,} plots)")
    if s["hotspots"]:
        lines += ["", f"## Hotspots ({s['hotspot_block_plots']} x {s['hotspot_block_plots']}-plot blocks)", ""]
        for h in s["hotspots"][:10]:
            lines.append(f"- block ({h['block_row']}, {h['block_col']}), plot rows {h['rows'][0]}-{h['rows'][1]}, cols {h['cols'][0]}-{h['cols'][1]}: {h['new_developed_plots']} plots, {h['new_developed_ha']:.1f} ha")
    if s.get("intensity"):
        from landuse.assess.intensity import intensity_markdown

        lines += ["", intensity_markdown(s["intensity"]).rstrip()]
    for w in s["warnings"]:
        lines += ["", f"**Warning:** {w}"]
    return "\n".join(lines) + "\n"
