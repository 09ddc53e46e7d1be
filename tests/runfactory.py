"""Writers of small synthetic run directories and change directories for tests and benchmarks.

They follow the run-store contract (``grid.json``, ``manifest.json``, ``plots.parquet``,
``plots.geojson``, ``classes.tif``, ``probabilities.tif``, ``summary.json``) and the change
directory contract of ``landuse change`` (``change.geojson``, ``change.tif``, ``transitions.csv``,
``matrix_plots.csv``, ``matrix_hectares.csv``, ``summary.json``, ``summary.md``). The class maps are
blobby (Voronoi regions of random seeds) so the web map looks like land use, and period B is
period A with a chosen fraction of plots changed (mostly to Developed: urbanization).

Nothing here is the toolkit's own change analysis: :func:`write_change` is a plain, independent
implementation of the contract so report code can be tested on known inputs.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from rasterio.crs import CRS

from landuse.grid import PlotGrid
from landuse.store import OUTPUTS, mark_complete

LABELS: tuple[str, ...] = ("Barren", "Cultivated", "Developed", "Forest")
# Colour per class (RGB) written into classes.tif's colour table; deliberately not the report's
# defaults, so a test can tell that the report reads the colour table.
COLORS: dict[str, tuple[int, int, int]] = {
    "Barren": (166, 118, 29),
    "Cultivated": (240, 210, 40),
    "Developed": (200, 30, 60),
    "Forest": (30, 120, 50),
    "Grass": (150, 210, 90),
    "Water": (40, 100, 200),
}
CRS_DEFAULT = "EPSG:26914"  # NAD83 / UTM 14N (North Dakota)


@dataclass(frozen=True)
class SyntheticRun:
    """What was written for one period, for tests to compute expectations from."""

    path: Path
    grid: PlotGrid
    period: str
    labels: tuple[str, ...]
    classes: np.ndarray  # int16 (h, w), -1 where not classified
    probs: np.ndarray  # float32 (h, w, n), NaN where not classified
    valid: np.ndarray  # float32 (h, w) valid fraction


def make_grid(rows: int, cols: int, crs: str = CRS_DEFAULT, x0: float = 560_000.0, y0: float = 5_200_000.0) -> PlotGrid:
    """An origin-anchored grid of ``rows`` x ``cols`` 224 m plots near (x0, y0) (top-left)."""
    size = 224.0
    c0 = int(x0 // size)
    r0 = int(-y0 // size)
    return PlotGrid(CRS.from_user_input(crs), Affine(size, 0, c0 * size, 0, -size, -r0 * size), cols, rows)


def blob_classes(shape: tuple[int, int], n_classes: int, seed: int = 0, seeds_per_1000: float = 4.0) -> np.ndarray:
    """A blobby class map (Voronoi regions of random seed points), int16 (h, w)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    k = max(n_classes * 2, int(h * w / 1000 * seeds_per_1000))
    sy, sx = rng.uniform(0, h, k), rng.uniform(0, w, k)
    sc = rng.integers(0, n_classes, k)
    sc[:n_classes] = np.arange(n_classes)  # every class appears
    yy, xx = np.mgrid[0:h, 0:w]
    best = np.full(shape, np.inf)
    out = np.zeros(shape, dtype=np.int16)
    for i in range(k):  # k small: loop over seeds, vectorised over plots
        d = (yy - sy[i]) ** 2 + (xx - sx[i]) ** 2
        closer = d < best
        best[closer] = d[closer]
        out[closer] = sc[i]
    return out


def probabilities_for(classes: np.ndarray, n_classes: int, seed: int = 0, low: float = 0.62) -> np.ndarray:
    """float32 (h, w, n) probabilities whose argmax is ``classes`` (winner in [low, 0.99])."""
    rng = np.random.default_rng(seed)
    h, w = classes.shape
    win = rng.uniform(low, 0.99, (h, w))
    rest = rng.dirichlet(np.ones(n_classes - 1), (h, w)) * (1 - win)[..., None]
    probs = np.empty((h, w, n_classes), dtype=np.float32)
    for c in range(n_classes):
        others = [o for o in range(n_classes) if o != c]
        sel = classes == c
        probs[sel, c] = win[sel]
        for j, o in enumerate(others):
            probs[sel, o] = rest[sel, j]
    # a runner-up never beats the winner: rest <= 1 - win < win because win > 0.5
    probs[classes < 0] = np.nan
    return probs


def write_run(
    path: Path,
    grid: PlotGrid,
    classes: np.ndarray,
    probs: np.ndarray,
    period: str,
    labels: tuple[str, ...] = LABELS,
    valid: np.ndarray | None = None,
    inputs: list[Path] | None = None,
    model_id: str = "synthetic-model",
    plots_geojson: bool = True,
) -> SyntheticRun:
    """Write a run directory of the store contract from a class map and probabilities."""
    import geopandas as gpd
    import pandas as pd
    import rasterio

    path.mkdir(parents=True, exist_ok=True)
    h, w = grid.shape
    n = len(labels)
    classes = np.asarray(classes, dtype=np.int16)
    assert classes.shape == (h, w) and probs.shape == (h, w, n)
    valid = np.where(classes >= 0, 1.0, 0.0).astype(np.float32) if valid is None else valid.astype(np.float32)
    grid.save(path / "grid.json")
    manifest = {
        "period": period,
        "labels": list(labels),
        "model": {"id": model_id, "sha256": "0" * 64},
        "inputs": [{"path": str(p), "size": p.stat().st_size, "mtime": p.stat().st_mtime} for p in (inputs or [])],
        "toolkit_version": "0.1.0",
        "grid": grid.to_dict(),
    }
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2))

    rows, cols = grid.all_rows_cols()
    flat = classes.ravel()
    status = np.where(flat >= 0, "classified", "nodata")
    status = np.where((flat >= 0) & (valid.ravel() < 1.0), "partial", status)
    df = pd.DataFrame(
        {
            "plot_id": grid.plot_ids(rows, cols),
            "row": rows.astype(np.int32),
            "col": cols.astype(np.int32),
            "label": [labels[c] if c >= 0 else None for c in flat.tolist()],
            "class_index": flat.astype(np.int16),
        }
    )
    for i, tag in enumerate(labels):
        df[f"prob_{tag}"] = probs[..., i].ravel().astype(np.float32)
    df["valid_fraction"] = valid.ravel()
    df["status"] = status
    df["reason"] = np.where(flat >= 0, "", "no imagery")
    gdf = gpd.GeoDataFrame(df, geometry=grid.footprints(rows, cols), crs=grid.crs.to_wkt())
    gdf.to_parquet(path / "plots.parquet")
    if plots_geojson:
        gdf.to_crs("EPSG:4326").to_file(path / "plots.geojson", driver="GeoJSON")

    cmap = {i: (*COLORS.get(tag, (128, 128, 128)), 255) for i, tag in enumerate(labels)}
    prof = dict(driver="GTiff", width=w, height=h, crs=grid.crs, transform=grid.transform)
    with rasterio.open(path / "classes.tif", "w", count=1, dtype="uint8", nodata=255, **prof) as dst:
        dst.write_colormap(1, cmap)  # before the pixels: libtiff cannot change the photometric tag once writing
        dst.write(np.where(classes >= 0, classes, 255).astype(np.uint8), 1)
    with rasterio.open(path / "probabilities.tif", "w", count=n, dtype="float32", nodata=np.nan, **prof) as dst:
        dst.write(np.moveaxis(probs, -1, 0).astype(np.float32))
        for i, tag in enumerate(labels):
            dst.set_band_description(i + 1, tag)
    ha = grid.plot_area_ha
    summary = {
        "period": period,
        "plots": {"total": int(h * w), "classified": int((flat >= 0).sum())},
        "area_by_class_ha": {tag: float((valid[classes == i]).sum() * ha) for i, tag in enumerate(labels)},
    }
    (path / "summary.json").write_text(json.dumps(summary, indent=2))
    # the finished-run marker, last, as `landuse classify` writes it
    mark_complete(path, parts=1, plots=h * w, files=[name for name in OUTPUTS if (path / name).exists()])
    return SyntheticRun(path, grid, period, tuple(labels), classes, probs, valid)


def remark_complete(path: Path) -> None:
    """Rewrite a run's finished-run marker after a test edited its outputs by hand (as a fixture
    standing for what a newer ``landuse classify`` would write)."""
    from landuse.store import COMPLETE

    marker = json.loads((path / COMPLETE).read_text())
    mark_complete(path, parts=marker["parts"], plots=marker["plots"], files=list(marker["files"]))


def change_classes(
    classes: np.ndarray, fraction: float, n_classes: int, to_class: int | None = 2, seed: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Copy of ``classes`` with ``fraction`` of the classified plots changed; returns (new, changed mask).

    Changed plots become ``to_class`` (default 2, Developed in :data:`LABELS`) unless they already
    are, in which case another class; ``to_class=None`` picks random other classes.
    """
    rng = np.random.default_rng(seed)
    out = classes.copy()
    idx = np.flatnonzero(classes.ravel() >= 0)
    pick = rng.choice(idx, size=int(round(len(idx) * fraction)), replace=False)
    flat = out.ravel()
    for p in pick.tolist():
        cur = int(flat[p])
        if to_class is not None and cur != to_class:
            flat[p] = to_class
        else:
            flat[p] = (cur + 1 + int(rng.integers(0, n_classes - 1))) % n_classes
    changed = np.zeros(classes.size, dtype=bool)
    changed[pick] = True
    return out, changed.reshape(classes.shape)


def write_change(path: Path, a: SyntheticRun, b: SyntheticRun, min_confidence: float = 0.6) -> dict:
    """Write a change directory of the ``landuse change`` contract comparing runs ``a`` and ``b``."""
    import rasterio

    path.mkdir(parents=True, exist_ok=True)
    grid, labels = a.grid, a.labels
    n = len(labels)
    ha = grid.plot_area_ha
    both = (a.classes >= 0) & (b.classes >= 0)
    pa = np.where(both, np.take_along_axis(np.nan_to_num(a.probs), np.clip(a.classes, 0, None)[..., None], -1)[..., 0], 0)
    pb = np.where(both, np.take_along_axis(np.nan_to_num(b.probs), np.clip(b.classes, 0, None)[..., None], -1)[..., 0], 0)
    differ = both & (a.classes != b.classes)
    confident = (pa >= min_confidence) & (pb >= min_confidence)
    changed = differ & confident
    uncertain = differ & ~confident
    unchanged = both & ~differ
    area = np.minimum(a.valid, b.valid) * ha
    excluded = ~both

    def count(mask: np.ndarray) -> dict:
        return {"plots": int(mask.sum()), "hectares": float(area[mask].sum())}

    mat_p = np.zeros((n, n), dtype=np.int64)
    mat_h = np.zeros((n, n), dtype=np.float64)
    sel = both & ~uncertain
    np.add.at(mat_p, (a.classes[sel], b.classes[sel]), 1)
    np.add.at(mat_h, (a.classes[sel], b.classes[sel]), area[sel])
    off = mat_h - np.diag(np.diag(mat_h))
    gain, loss = off.sum(axis=0), off.sum(axis=1)
    dev = labels.index("Developed") if "Developed" in labels else None
    by_source = {labels[i]: float(off[i, dev]) for i in range(n) if dev is not None and i != dev}
    try:
        years = int(b.period) - int(a.period)
    except ValueError:
        years = 0
    total_urban = float(sum(by_source.values()))
    unc_h = np.zeros((n, n), dtype=np.float64)
    unc_p = np.zeros((n, n), dtype=np.int64)
    np.add.at(unc_h, (a.classes[uncertain], b.classes[uncertain]), area[uncertain])
    np.add.at(unc_p, (a.classes[uncertain], b.classes[uncertain]), 1)
    unc_urban = float(sum(unc_h[i, dev] for i in range(n) if dev is not None and i != dev))
    summary = {
        "labels": list(labels),
        "periods": [a.period, b.period],
        "min_confidence": min_confidence,
        "compared": count(both),
        "changed": count(changed),
        "uncertain": count(uncertain),
        "unchanged": count(unchanged),
        "unknown": {"plots": 0, "hectares": 0.0},
        "excluded": {"plots": int(excluded.sum()), "hectares": float(excluded.sum() * ha)},
        "uncertain_transitions": [
            {"from": labels[i], "to": labels[j], "plots": int(unc_p[i, j]), "hectares": float(unc_h[i, j])}
            for i in range(n) for j in range(n) if unc_p[i, j]
        ],
        "area_by_class_ha": {
            r.period: {tag: float(area[both & (r.classes == i)].sum()) for i, tag in enumerate(labels)} for r in (a, b)
        },
        "classes": {
            tag: {
                "area_a": float(area[both & (a.classes == i)].sum()),
                "area_b": float(area[both & (b.classes == i)].sum()),
                "net": float(gain[i] - loss[i]),
                "uncertain_net": float(unc_h[:, i].sum() - unc_h[i, :].sum()),
            }
            for i, tag in enumerate(labels)
        },
        "gain_ha": {tag: float(gain[i]) for i, tag in enumerate(labels)},
        "loss_ha": {tag: float(loss[i]) for i, tag in enumerate(labels)},
        "net_ha": {tag: float(gain[i] - loss[i]) for i, tag in enumerate(labels)},
        "urbanization": {
            "tag": "Developed" if dev is not None else None,
            "total_ha": total_urban,
            "uncertain_ha": unc_urban,
            "upper_bound_ha": total_urban + unc_urban,
            "by_source_ha": by_source,
            "per_year_ha": total_urban / years if years > 0 else None,
        },
        "hotspots": [],
    }
    (path / "summary.json").write_text(json.dumps(summary, indent=2))

    rows, cols = np.nonzero(changed | uncertain)
    geoms = grid.footprints(rows, cols, to_crs="EPSG:4326")
    ids = grid.plot_ids(rows, cols)
    feats = []
    for k, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
        feats.append(
            {
                "type": "Feature",
                "geometry": json.loads(shapely.to_geojson(geoms[k])),
                "properties": {
                    "plot_id": str(ids[k]),
                    "row": r,
                    "col": c,
                    "from": labels[a.classes[r, c]],
                    "to": labels[b.classes[r, c]],
                    "prob_from": round(float(pa[r, c]), 4),
                    "prob_to": round(float(pb[r, c]), 4),
                    "status": "changed" if changed[r, c] else "uncertain",
                    "area_ha": round(float(area[r, c]), 4),
                },
            }
        )
    (path / "change.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))

    code = np.where(both, np.clip(a.classes, 0, None) * n + np.clip(b.classes, 0, None), 255).astype(np.uint8)
    with rasterio.open(
        path / "change.tif", "w", driver="GTiff", width=grid.width, height=grid.height, count=1,
        dtype="uint8", nodata=255, crs=grid.crs, transform=grid.transform,
    ) as dst:
        dst.write(code, 1)
    with open(path / "transitions.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["from", "to", "plots", "hectares"])
        for i in range(n):
            for j in range(n):
                if mat_p[i, j]:
                    wr.writerow([labels[i], labels[j], int(mat_p[i, j]), round(float(mat_h[i, j]), 4)])
    for name, mat in (("matrix_plots.csv", mat_p), ("matrix_hectares.csv", mat_h)):
        with open(path / name, "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(["from \\ to", *labels])
            for i in range(n):
                wr.writerow([labels[i], *[float(v) if mat.dtype.kind == "f" else int(v) for v in mat[i]]])
    (path / "summary.md").write_text(
        f"# Change {a.period} -> {b.period}\n\nchanged {summary['changed']['plots']} plots, "
        f"urbanization {total_urban:.1f} ha\n"
    )
    return summary


def write_imagery(path: Path, grid: PlotGrid, classes: np.ndarray, res_m: float = 8.0, seed: int = 0) -> Path:
    """A synthetic RGB GeoTIFF over the grid whose colour follows the class map (with texture)."""
    import rasterio

    rng = np.random.default_rng(seed)
    k = int(round(grid.plot_size / res_m))
    h, w = grid.height * k, grid.width * k
    base = np.array([[150, 130, 100], [200, 190, 90], [120, 120, 130], [40, 90, 40], [60, 90, 160], [90, 160, 70]], np.int16)
    cls = np.kron(np.clip(classes, 0, None), np.ones((k, k), dtype=np.int16))
    rgb = base[cls % len(base)] + rng.integers(-25, 25, (h, w, 1), dtype=np.int16)
    rgb[np.kron(classes < 0, np.ones((k, k), dtype=bool))] = 0
    data = np.clip(rgb, 0, 255).astype(np.uint8)
    t = grid.transform @ Affine.scale(1.0 / k)
    with rasterio.open(
        path, "w", driver="GTiff", width=w, height=h, count=3, dtype="uint8", crs=grid.crs, transform=t,
        tiled=True, blockxsize=256, blockysize=256, compress="deflate",
    ) as dst:
        dst.write(np.moveaxis(data, -1, 0))
    return path


def make_pair(
    root: Path,
    rows: int = 30,
    cols: int = 40,
    fraction: float = 0.03,
    periods: tuple[str, str] = ("2016", "2021"),
    labels: tuple[str, ...] = LABELS,
    seed: int = 0,
    imagery: bool = False,
    nodata_corner: bool = True,
    change: bool = True,
    plots_geojson: bool = True,
) -> tuple[SyntheticRun, SyntheticRun, Path | None]:
    """Two runs of one grid (B = A with ``fraction`` changed) and, by default, their change dir."""
    grid = make_grid(rows, cols)
    n = len(labels)
    ca = blob_classes((rows, cols), n, seed=seed)
    if nodata_corner:  # a few unclassified plots, as at an imagery edge
        ca[: max(1, rows // 10), : max(1, cols // 10)] = -1
    cb, _ = change_classes(ca, fraction, n, to_class=labels.index("Developed") if "Developed" in labels else None, seed=seed + 1)
    pa = probabilities_for(ca, n, seed=seed + 2)
    pb = probabilities_for(cb, n, seed=seed + 3, low=0.5)  # some B winners below 0.6 -> uncertain
    runs = []
    for period, cls, probs, s in ((periods[0], ca, pa, seed), (periods[1], cb, pb, seed + 7)):
        inputs = None
        if imagery:
            img_dir = root / f"imagery_{period}"
            img_dir.mkdir(parents=True, exist_ok=True)
            inputs = [write_imagery(img_dir / f"naip_{period}.tif", grid, cls, seed=s)]
        runs.append(
            write_run(root / f"run_{period}", grid, cls, probs, period, labels, inputs=inputs, plots_geojson=plots_geojson)
        )
    change_dir = None
    if change:
        change_dir = root / f"change_{periods[0]}_{periods[1]}"
        write_change(change_dir, runs[0], runs[1])
    return runs[0], runs[1], change_dir
