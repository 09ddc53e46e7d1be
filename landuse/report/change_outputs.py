"""Files of a change analysis: change.geojson, change.tif, CSV matrices, summary.json / .md."""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from landuse import __version__
from landuse.change import STATUS_CODES, Comparison
from landuse.errors import OutputExistsError
from landuse.report.palette import class_colors, hex_to_rgb

CHANGE_NODATA = 255


def write_change_outputs(comp: Comparison, out: str | Path, summary: dict, overwrite: bool = False) -> Path:
    """Write every output of one comparison into ``out`` atomically (a temp dir renamed at the end)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(f"{out} already exists and is not empty; pass --overwrite or choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_change_geojson(comp, tmp / "change.geojson")
        write_change_tif(comp, tmp / "change.tif")
        write_matrices(comp, tmp)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
        (tmp / "summary.md").write_text(summary_markdown(summary))
        if out.exists():
            shutil.rmtree(out)
        tmp.replace(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _json_default(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_change_geojson(comp: Comparison, path: Path) -> None:
    """Changed and uncertain plots as an RFC 7946 FeatureCollection in EPSG:4326."""
    import shapely

    grid = comp.grid
    keep = (comp.status == STATUS_CODES["changed"]) | (comp.status == STATUS_CODES["uncertain"])
    rows, cols = np.nonzero(keep)
    polys = grid.footprints(rows, cols, to_crs="EPSG:4326") if rows.size else []
    labels = comp.labels
    pa = comp.run_a.probs
    pb = comp.run_b.probs
    status_name = {v: k for k, v in STATUS_CODES.items()}
    ids = grid.plot_ids(rows, cols) if rows.size else []
    features = []
    for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
        f, t = int(comp.from_cls[r, c]), int(comp.to_cls[r, c])
        geom = json.loads(shapely.to_geojson(polys[i]))
        geom["coordinates"] = [[[round(x, 7), round(y, 7)] for x, y in ring] for ring in geom["coordinates"]]
        props = {
            "plot_id": ids[i],
            "row": r,
            "col": c,
            "from": labels[f],
            "to": labels[t],
            "prob_from": round(float(pa[f, r, c]), 4),
            "prob_to": round(float(pb[t, r, c]), 4),
            "status": status_name[int(comp.status[r, c])],
            "area_ha": round(float(comp.area_ha[r, c]), 4),
        }
        for k, tag in enumerate(labels):
            props[f"a_prob_{tag}"] = round(float(pa[k, r, c]), 4)
            props[f"b_prob_{tag}"] = round(float(pb[k, r, c]), 4)
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


def change_colormap(labels: list[str]) -> dict[int, tuple[int, int, int, int]]:
    """Colour table of change codes ``from * n + to``: grey for persistence, the 'to' colour for changes."""
    n = len(labels)
    colors = class_colors(labels)
    cmap: dict[int, tuple[int, int, int, int]] = {}
    for f in range(n):
        for t in range(n):
            cmap[f * n + t] = (200, 200, 200, 255) if f == t else (*hex_to_rgb(colors[labels[t]]), 255)
    cmap[CHANGE_NODATA] = (0, 0, 0, 0)
    return cmap


def write_change_tif(comp: Comparison, path: Path) -> None:
    """change.tif on the plot grid: ``from * n_classes + to``; 255 where not compared; colour table."""
    import rasterio

    n = len(comp.labels)
    if n * n >= CHANGE_NODATA:
        raise ValueError(f"{n} classes do not fit change codes in one byte")
    code = np.where(comp.compared, comp.from_cls.astype(np.int32) * n + comp.to_cls, CHANGE_NODATA).astype(np.uint8)
    grid = comp.grid
    profile = dict(
        driver="GTiff", width=grid.width, height=grid.height, count=1, dtype="uint8", crs=grid.crs,
        transform=grid.transform, nodata=CHANGE_NODATA, compress="deflate", tiled=grid.width >= 256 and grid.height >= 256,
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(code, 1)
        dst.write_colormap(1, change_colormap(comp.labels))
        dst.update_tags(
            landuse_kind="change",
            landuse_version=__version__,
            labels=json.dumps(comp.labels),
            code="from_index * n_classes + to_index",
            periods=json.dumps([comp.run_a.period, comp.run_b.period]),
        )
        dst.update_tags(1, **{str(f * n + t): f"{a} -> {b}" for f, a in enumerate(comp.labels) for t, b in enumerate(comp.labels)})


def write_matrices(comp: Comparison, out: Path) -> None:
    """transitions.csv (long form) and matrix_plots.csv / matrix_hectares.csv (from rows x to columns)."""
    labels = comp.labels
    compared_ha = float(comp.area_ha[comp.compared].sum())
    with open(out / "transitions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["from", "to", "plots", "hectares", "share_of_compared", "uncertain_plots"])
        unc = comp.status == STATUS_CODES["uncertain"]
        for i, a in enumerate(labels):
            for j, b in enumerate(labels):
                n_unc = int((unc & (comp.from_cls == i) & (comp.to_cls == j)).sum())
                if comp.matrix_plots[i, j] or n_unc:
                    ha = float(comp.matrix_ha[i, j])
                    w.writerow([a, b, int(comp.matrix_plots[i, j]), f"{ha:.4f}", f"{ha / compared_ha:.6f}" if compared_ha else "", n_unc])
    for name, m, fmt in (("matrix_plots.csv", comp.matrix_plots, "{:d}"), ("matrix_hectares.csv", comp.matrix_ha, "{:.4f}")):
        with open(out / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["from \\ to", *labels, "total"])
            for i, a in enumerate(labels):
                w.writerow([a, *(fmt.format(v) for v in m[i].tolist()), fmt.format(m[i].sum())])
            w.writerow(["total", *(fmt.format(v) for v in m.sum(axis=0).tolist()), fmt.format(m.sum())])


def summary_markdown(s: dict) -> str:
    """A short human-readable report of ``summary.json``."""
    a, b = s["periods"]
    lines = [f"# Land-use change {a} -> {b}", ""]
    lines.append(f"Plots of {s['plot_area_ha']:.4f} ha; a change counts when both periods' winning probability >= {s['min_confidence']}"
                 + (" (3 x 3 plurality smoothing applied)." if s["smoothed"] else "."))
    lines.append("")
    lines.append("| | plots | hectares |")
    lines.append("|---|---:|---:|")
    for k in ("compared", "unchanged", "changed", "uncertain", "excluded"):
        lines.append(f"| {k} | {s[k]['plots']} | {s[k]['hectares']:.1f} |")
    lines += ["", "## Area by class (ha)", "", f"| class | {a} | {b} | gain | loss | net |", "|---|---:|---:|---:|---:|---:|"]
    for t in s["labels"]:
        c = s["classes"][t]
        lines.append(f"| {t} | {s['area_by_class_ha'][a][t]:.1f} | {s['area_by_class_ha'][b][t]:.1f} | {c['gain']:.1f} | {c['loss']:.1f} | {c['net']:+.1f} |")
    u = s["urbanization"]
    if u["tag"]:
        lines += ["", f"## Urbanization (became {u['tag']})", "", f"Total: {u['total_ha']:.1f} ha ({u['total_plots']} plots)"
                  + (f", {u['per_year_ha']:.1f} ha/year over {s['years']:.2f} years" if u["per_year_ha"] is not None else "") + "."]
        for t, ha in u["by_source_ha"].items():
            lines.append(f"- from {t}: {ha:.1f} ha ({u['by_source_plots'][t]} plots)")
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
