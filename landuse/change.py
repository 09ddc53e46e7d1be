"""Change between periods: two class rasters of one plot grid, compared plot by plot.

A run (one period) is read from its run directory (``grid.json``, ``manifest.json``,
``plots.parquet``) into arrays on the plot grid. Two runs are comparable only when their grids are
equal. Per plot the comparison gives ``from``, ``to``, both winning probabilities and a status:

* ``unchanged`` — same class in both periods;
* ``changed`` — different classes and both winning probabilities >= ``min_confidence``;
* ``uncertain`` — different classes but at least one period below ``min_confidence``.

Statistics are computed on the **gated** transition matrix: an uncertain plot counts as persistence
of its period-A class (a change counts only when it is confident). The raw matrix (labels as
classified) is kept in the summary too. Areas: a plot weighs ``plot_area_ha * min(valid_a,
valid_b)`` hectares — the ground observed in both periods, so partial edge plots count by their
valid fraction.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from landuse import defaults
from landuse.errors import GridMismatchError, InputError, RunStoreError
from landuse.grid import PlotGrid
from landuse.store import read_finished_run

log = logging.getLogger(__name__)

STATUS_CODES = {"unchanged": 0, "changed": 1, "uncertain": 2}
NOT_COMPARED = -1
DEFAULT_MIN_CONFIDENCE = defaults.MIN_CONFIDENCE
DEFAULT_HOTSPOT_BLOCK = defaults.HOTSPOT_BLOCK
DEVELOPED = defaults.DEVELOPED_TAG


@dataclass
class Run:
    """One period's classification on a plot grid, as arrays (row, col) of the grid."""

    path: Path
    grid: PlotGrid
    labels: list[str]
    period: str
    classes: np.ndarray  # int16 (H, W); -1 where not classified
    prob: np.ndarray  # float32 (H, W) winning probability; NaN where not classified
    probs: np.ndarray  # float32 (C, H, W) per-class probabilities; NaN where not classified
    valid: np.ndarray  # float32 (H, W) valid fraction; 0 where not read
    manifest: dict = field(default_factory=dict)

    @property
    def year(self) -> float | None:
        """Decimal year of the period (from ``manifest['date']`` or the period name), if any."""
        return period_year(str(self.manifest.get("date") or self.period))

    @property
    def model_key(self) -> str:
        model = self.manifest.get("model") or {}
        return str(model.get("sha256") or model.get("id") or "")


def period_year(text: str) -> float | None:
    """``"2016"`` -> 2016.0; ``"2018-07-16"`` -> 2018.54; None when no year is recognisable."""
    m = re.search(r"(?<!\d)(1[89]\d\d|2\d\d\d)(?:-(\d\d)(?:-(\d\d))?)?(?!\d)", text)
    if not m:
        return None
    year = float(m.group(1))
    if m.group(2):
        month = min(max(int(m.group(2)), 1), 12)
        day = min(max(int(m.group(3) or 1), 1), 31)
        year += ((month - 1) * 30.44 + (day - 1)) / 365.25
    return round(year, 4)


def load_run(path: str | Path) -> Run:
    """Read a finished run directory into arrays."""
    import pyarrow.parquet as pq

    meta = read_finished_run(path, needs=("plots.parquet",))
    path, grid, manifest, labels = meta.path, meta.grid, meta.manifest, meta.labels
    prob_cols = [f"prob_{t}" for t in labels]
    try:
        table = pq.read_table(path / "plots.parquet", columns=["row", "col", "class_index", "valid_fraction", *prob_cols])
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types
        raise RunStoreError(f"cannot read {path / 'plots.parquet'} ({exc}); rerun the classification with --overwrite") from None
    rows = table.column("row").to_numpy().astype(np.int64)
    cols = table.column("col").to_numpy().astype(np.int64)
    if rows.size and (rows.min() < 0 or cols.min() < 0 or rows.max() >= grid.height or cols.max() >= grid.width):
        raise RunStoreError(f"{path / 'plots.parquet'} has plots outside {grid.describe()}; the run directory is inconsistent")
    h, w = grid.shape
    classes = np.full((h, w), -1, dtype=np.int16)
    valid = np.zeros((h, w), dtype=np.float32)
    probs = np.full((len(labels), h, w), np.nan, dtype=np.float32)
    cls = table.column("class_index").fill_null(-1).to_numpy().astype(np.int16)
    classes[rows, cols] = cls
    valid[rows, cols] = table.column("valid_fraction").fill_null(0.0).to_numpy().astype(np.float32)
    for i, c in enumerate(prob_cols):
        probs[i, rows, cols] = table.column(c).to_numpy(zero_copy_only=False).astype(np.float32)
    probs[:, classes < 0] = np.nan
    with np.errstate(invalid="ignore"):
        prob = np.where(classes >= 0, np.nanmax(np.where(classes >= 0, probs, -1.0), axis=0), np.nan).astype(np.float32)
    return Run(path, grid, labels, meta.period, classes, prob, probs, valid, manifest)


def plurality_filter(classes: np.ndarray, n_classes: int) -> np.ndarray:
    """3 x 3 plurality (mode) filter over classified plots.

    Each classified plot takes the class most frequent among the classified plots of its 3 x 3
    neighbourhood (itself included); on a tie its own class wins if it is among the tied, else the
    lowest class index. Unclassified plots (-1) stay unclassified and do not vote.
    """
    h, w = classes.shape
    padded = np.pad(classes, 1, constant_values=-1)
    counts = np.zeros((n_classes, h, w), dtype=np.int16)
    for dr in range(3):
        for dc in range(3):
            win = padded[dr : dr + h, dc : dc + w]
            for k in range(n_classes):
                counts[k] += win == k
    best = counts.max(axis=0)
    own = np.clip(classes, 0, None)
    own_count = np.take_along_axis(counts, own[None].astype(np.int64), axis=0)[0]
    winner = np.where(own_count == best, own, counts.argmax(axis=0))
    return np.where(classes >= 0, winner, -1).astype(classes.dtype)


@dataclass
class Comparison:
    """The plot-by-plot comparison of two runs and its statistics."""

    run_a: Run
    run_b: Run
    labels: list[str]
    min_confidence: float
    smoothed: bool
    from_cls: np.ndarray  # int16 (H, W), -1 where not compared
    to_cls: np.ndarray
    status: np.ndarray  # int8 (H, W): STATUS_CODES, -1 not compared
    area_ha: np.ndarray  # float64 (H, W): hectares each compared plot weighs
    matrix_plots: np.ndarray  # (C, C) gated
    matrix_ha: np.ndarray  # (C, C) gated
    matrix_raw_plots: np.ndarray  # (C, C) as classified
    warnings: list[str]

    @property
    def grid(self) -> PlotGrid:
        return self.run_a.grid

    @property
    def compared(self) -> np.ndarray:
        return self.status >= 0

    @property
    def years(self) -> float | None:
        ya, yb = self.run_a.year, self.run_b.year
        if ya is None or yb is None or yb <= ya:
            return None
        return round(yb - ya, 4)

    def developed_index(self, tag: str = DEVELOPED) -> int | None:
        lowered = [t.lower() for t in self.labels]
        return lowered.index(tag.lower()) if tag.lower() in lowered else None

    def summary(self, hotspot_block: int = DEFAULT_HOTSPOT_BLOCK, developed_tag: str = DEVELOPED) -> dict:
        """Counts, areas, matrices, gains / losses, rates, urbanization and hotspots as a dict."""
        return summarize(self, hotspot_block=hotspot_block, developed_tag=developed_tag)


def compare(
    run_a: Run,
    run_b: Run,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    smooth: bool = False,
) -> Comparison:
    """Compare two runs on one grid (see the module docstring for the rules)."""
    if not 0.0 <= min_confidence <= 1.0:
        raise InputError(f"min_confidence must be within 0..1, got {min_confidence}", param="min_confidence")
    try:
        run_a.grid.require_equal(run_b.grid, what=f"runs {run_a.path} and {run_b.path}")
    except GridMismatchError:
        raise
    if run_a.labels != run_b.labels:
        raise InputError(
            f"runs {run_a.path} and {run_b.path} have different tags ({run_a.labels} vs {run_b.labels}); "
            "classify both periods with models of the same tags"
        )
    warnings: list[str] = []
    if run_a.model_key != run_b.model_key:
        msg = f"the two runs were classified by different models ({run_a.model_key[:12] or '?'} vs {run_b.model_key[:12] or '?'}); differences may come from the models, not the ground"
        warnings.append(msg)
        log.warning(msg)
    n = len(run_a.labels)
    a = plurality_filter(run_a.classes, n) if smooth else run_a.classes
    b = plurality_filter(run_b.classes, n) if smooth else run_b.classes
    both = (a >= 0) & (b >= 0)
    # winning probabilities of the (possibly smoothed) classes
    pa = _prob_of(run_a.probs, a)
    pb = _prob_of(run_b.probs, b)
    diff = both & (a != b)
    confident = (pa >= min_confidence) & (pb >= min_confidence)
    status = np.full(a.shape, -1, dtype=np.int8)
    status[both & (a == b)] = STATUS_CODES["unchanged"]
    status[diff & confident] = STATUS_CODES["changed"]
    status[diff & ~confident] = STATUS_CODES["uncertain"]
    area = np.where(both, run_a.grid.plot_area_ha * np.minimum(run_a.valid, run_b.valid), 0.0).astype(np.float64)
    from_cls = np.where(both, a, -1).astype(np.int16)
    to_cls = np.where(both, b, -1).astype(np.int16)
    gated_to = np.where(status == STATUS_CODES["uncertain"], from_cls, to_cls)
    m_plots = np.zeros((n, n), dtype=np.int64)
    m_ha = np.zeros((n, n), dtype=np.float64)
    m_raw = np.zeros((n, n), dtype=np.int64)
    fa, tb, tg, ar = from_cls[both], to_cls[both], gated_to[both], area[both]
    np.add.at(m_plots, (fa, tg), 1)
    np.add.at(m_ha, (fa, tg), ar)
    np.add.at(m_raw, (fa, tb), 1)
    return Comparison(run_a, run_b, list(run_a.labels), min_confidence, smooth, from_cls, to_cls, status, area, m_plots, m_ha, m_raw, warnings)


def _prob_of(probs: np.ndarray, cls: np.ndarray) -> np.ndarray:
    idx = np.clip(cls, 0, None).astype(np.int64)[None]
    p = np.take_along_axis(probs, idx, axis=0)[0]
    return np.where(cls >= 0, np.nan_to_num(p, nan=0.0), np.nan).astype(np.float32)


def class_stats(matrix_ha: np.ndarray, labels: list[str]) -> dict:
    """Per class persistence, gross gain, gross loss, net change and swap (hectares) of a matrix."""
    m = np.asarray(matrix_ha, dtype=np.float64)
    diag = np.diag(m)
    gain = m.sum(axis=0) - diag
    loss = m.sum(axis=1) - diag
    out = {}
    for i, t in enumerate(labels):
        out[t] = {
            "area_a": float(m[i].sum()),
            "area_b": float(m[:, i].sum()),
            "persistence": float(diag[i]),
            "gain": float(gain[i]),
            "loss": float(loss[i]),
            "net": float(gain[i] - loss[i]),
            "swap": float(2 * min(gain[i], loss[i])),
        }
    return out


def annual_rates(area_a: float, area_b: float, years: float | None) -> dict:
    """Linear (ha/yr and %/yr of the start area) and compound (%/yr) rates of change."""
    if not years:
        return {"linear_ha_per_year": None, "linear_pct_per_year": None, "compound_pct_per_year": None}
    lin = (area_b - area_a) / years
    lin_pct = 100.0 * lin / area_a if area_a > 0 else None
    comp = 100.0 * ((area_b / area_a) ** (1.0 / years) - 1.0) if area_a > 0 and area_b > 0 else None
    return {"linear_ha_per_year": lin, "linear_pct_per_year": lin_pct, "compound_pct_per_year": comp}


def hotspots(comp: Comparison, block: int = DEFAULT_HOTSPOT_BLOCK, developed_tag: str = DEVELOPED) -> list[dict]:
    """Newly Developed plots counted on a block grid of ``block`` x ``block`` plots, busiest first."""
    if block < 1:
        raise InputError(f"--hotspot-block must be at least 1 plot, got {block}")
    dev = comp.developed_index(developed_tag)
    if dev is None:
        return []
    new = (comp.status == STATUS_CODES["changed"]) & (comp.to_cls == dev) & (comp.from_cls != dev)
    if not new.any():
        return []
    h, w = new.shape
    bh, bw = math.ceil(h / block), math.ceil(w / block)
    counts = np.zeros((bh, bw), dtype=np.int64)
    area = np.zeros((bh, bw), dtype=np.float64)
    r, c = np.nonzero(new)
    np.add.at(counts, (r // block, c // block), 1)
    np.add.at(area, (r // block, c // block), comp.area_ha[r, c])
    grid = comp.grid
    out = []
    for br, bc in zip(*np.nonzero(counts), strict=True):
        r0, c0 = int(br) * block, int(bc) * block
        r1, c1 = min(r0 + block, h), min(c0 + block, w)
        minx, _, _, maxy = grid.plot_bounds(r0, c0)
        _, miny, maxx, _ = grid.plot_bounds(r1 - 1, c1 - 1)
        out.append(
            {
                "block_row": int(br),
                "block_col": int(bc),
                "rows": [r0, r1 - 1],
                "cols": [c0, c1 - 1],
                "new_developed_plots": int(counts[br, bc]),
                "new_developed_ha": float(area[br, bc]),
                "bounds": [minx, miny, maxx, maxy],
            }
        )
    out.sort(key=lambda d: (-d["new_developed_plots"], d["block_row"], d["block_col"]))
    return out


def summarize(comp: Comparison, hotspot_block: int = DEFAULT_HOTSPOT_BLOCK, developed_tag: str = DEVELOPED) -> dict:
    """Everything ``summary.json`` holds."""
    labels = comp.labels
    plot_ha = comp.grid.plot_area_ha

    def _count(mask: np.ndarray) -> dict:
        return {"plots": int(mask.sum()), "hectares": float(comp.area_ha[mask].sum())}

    classified_a = comp.run_a.classes >= 0
    classified_b = comp.run_b.classes >= 0
    excluded = (classified_a | classified_b) & ~comp.compared
    excluded_ha = float(
        (plot_ha * np.where(classified_a, comp.run_a.valid, comp.run_b.valid))[excluded].sum()
    )
    stats = class_stats(comp.matrix_ha, labels)
    years = comp.years
    compared_ha = float(comp.area_ha[comp.compared].sum())
    for t in labels:
        s = stats[t]
        s.update(annual_rates(s["area_a"], s["area_b"], years))
        for k in ("persistence", "gain", "loss", "net", "swap"):
            s[f"{k}_share"] = s[k] / compared_ha if compared_ha else None
    dev = comp.developed_index(developed_tag)
    urban: dict = {"tag": labels[dev] if dev is not None else None, "total_ha": 0.0, "total_plots": 0, "by_source_ha": {}, "by_source_plots": {}, "per_year_ha": None}
    if dev is not None:
        for i, t in enumerate(labels):
            if i != dev:
                urban["by_source_ha"][t] = float(comp.matrix_ha[i, dev])
                urban["by_source_plots"][t] = int(comp.matrix_plots[i, dev])
        urban["total_ha"] = float(sum(urban["by_source_ha"].values()))
        urban["total_plots"] = int(sum(urban["by_source_plots"].values()))
        urban["per_year_ha"] = urban["total_ha"] / years if years else None

    def _area_by_class(run: Run) -> dict:
        return {t: float(plot_ha * run.valid[run.classes == i].sum()) for i, t in enumerate(labels)}

    return {
        "labels": labels,
        "periods": [comp.run_a.period, comp.run_b.period],
        "runs": [str(comp.run_a.path), str(comp.run_b.path)],
        "years": years,
        "grid": comp.grid.to_dict(),
        "plot_area_ha": plot_ha,
        "min_confidence": comp.min_confidence,
        "smoothed": comp.smoothed,
        "area_rule": "plot_area_ha * min(valid_a, valid_b); uncertain plots count as persistence of their period-A class",
        "compared": _count(comp.compared),
        "changed": _count(comp.status == STATUS_CODES["changed"]),
        "uncertain": _count(comp.status == STATUS_CODES["uncertain"]),
        "unchanged": _count(comp.status == STATUS_CODES["unchanged"]),
        "excluded": {"plots": int(excluded.sum()), "hectares": excluded_ha},
        "area_by_class_ha": {comp.run_a.period: _area_by_class(comp.run_a), comp.run_b.period: _area_by_class(comp.run_b)},
        "matrix_plots": comp.matrix_plots.tolist(),
        "matrix_hectares": comp.matrix_ha.tolist(),
        "matrix_raw_plots": comp.matrix_raw_plots.tolist(),
        "classes": stats,
        "gain_ha": {t: stats[t]["gain"] for t in labels},
        "loss_ha": {t: stats[t]["loss"] for t in labels},
        "net_ha": {t: stats[t]["net"] for t in labels},
        "total_change_ha": float(sum(stats[t]["gain"] for t in labels)),
        "urbanization": urban,
        "hotspot_block_plots": hotspot_block,
        "hotspots": hotspots(comp, hotspot_block, developed_tag),
        "models": [comp.run_a.manifest.get("model"), comp.run_b.manifest.get("model")],
        "warnings": list(comp.warnings),
    }


def series_pairs(runs: list[Run]) -> list[tuple[Run, Run]]:
    """Consecutive intervals plus first -> last (when there are more than two runs)."""
    if len(runs) < 2:
        raise InputError("change analysis needs at least two runs (periods)")
    pairs = list(zip(runs[:-1], runs[1:], strict=True))
    if len(runs) > 2:
        pairs.append((runs[0], runs[-1]))
    return pairs
