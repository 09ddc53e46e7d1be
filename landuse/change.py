"""Change between periods: two class rasters of one plot grid, compared plot by plot.

A run (one period) is read from its run directory (``grid.json``, ``manifest.json``,
``plots.parquet``) into arrays on the plot grid. Two runs are comparable only when their grids are
equal, and are compared in time order (``allow_reverse`` for a deliberate backwards comparison).
A plot is *compared* when it is classified (or flagged ``unknown``) in both periods; every compared
plot has exactly one status:

* ``unchanged`` — same class in both periods;
* ``changed`` — different classes and both winning probabilities >= ``min_confidence``
  (a *confident* change);
* ``uncertain`` — different classes but at least one period below ``min_confidence``: kept apart,
  with its own hectares by transition, never counted as persistence nor as change;
* ``unknown`` — the plot is ``unknown`` (out of every class) in either period: its own row.

So ``compared = unchanged + changed + uncertain + unknown``, in plots and in hectares.

**Area rule** (one rule for every table): a compared plot weighs ``plot_area_ha * min(valid_a,
valid_b)`` hectares, the ground observed in both periods. Class areas of each period sum the
compared plots known in both periods by that period's class as classified, so for every period
``sum(class areas) + unknown = compared``; per class ``area_b - area_a = net (confident) + net
(uncertain)``. The confident matrix holds unchanged plots on its diagonal and confident changes
off it; the uncertain matrix holds the uncertain plots by (from, to); their sum is the matrix as
classified.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from landuse import defaults, status
from landuse.errors import InputError, RunStoreError
from landuse.grid import PlotGrid
from landuse.store import read_finished_run

log = logging.getLogger(__name__)

STATUS_CODES = {"unchanged": 0, "changed": 1, "uncertain": 2, "unknown": 3}
UNKNOWN_CLASS = -2  # from_cls / to_cls of the period where a plot is unknown
UNKNOWN = status.UNKNOWN  # a run plot's status (landuse.status)
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
    unknown: np.ndarray | None = None  # bool (H, W): status ``unknown`` (out of every class)

    def __post_init__(self) -> None:
        if self.unknown is None:
            self.unknown = np.zeros(self.classes.shape, dtype=bool)

    @property
    def unknown_mask(self) -> np.ndarray:
        """bool (H, W): plots flagged ``unknown`` in this period."""
        assert self.unknown is not None
        return self.unknown

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
        names = set(pq.read_schema(path / "plots.parquet").names)
        extra = ["status"] if "status" in names else []
        table = pq.read_table(path / "plots.parquet", columns=["row", "col", "class_index", "valid_fraction", *prob_cols, *extra])
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types
        raise RunStoreError(f"cannot read {path / 'plots.parquet'} ({exc}); rerun the classification with `overwrite=True`") from None
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
    unknown = np.zeros((h, w), dtype=bool)
    if "status" in table.column_names:
        unknown[rows, cols] = np.asarray(table.column("status").fill_null("").to_numpy(zero_copy_only=False)) == UNKNOWN
        classes[unknown] = -1  # the contract: class_index is null for an unknown plot
    probs[:, (classes < 0) & ~unknown] = np.nan
    with np.errstate(invalid="ignore"):
        prob = np.where(classes >= 0, np.nanmax(np.where(classes >= 0, probs, -1.0), axis=0), np.nan).astype(np.float32)
    return Run(path, grid, labels, meta.period, classes, prob, probs, valid, manifest, unknown)


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
    from_cls: np.ndarray  # int16 (H, W): class in A, UNKNOWN_CLASS where unknown, -1 where not compared
    to_cls: np.ndarray
    status: np.ndarray  # int8 (H, W): STATUS_CODES, -1 not compared
    area_ha: np.ndarray  # float64 (H, W): hectares each compared plot weighs
    matrix_plots: np.ndarray  # (C, C) confident: unchanged on the diagonal, confident changes off it
    matrix_ha: np.ndarray  # (C, C) confident
    matrix_raw_plots: np.ndarray  # (C, C) as classified (confident + uncertain)
    warnings: list[str]
    matrix_uncertain_plots: np.ndarray | None = None  # (C, C) uncertain plots by (from, to)
    matrix_uncertain_ha: np.ndarray | None = None

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

    def label_of(self, index: int) -> str:
        """Tag of a class index of ``from_cls`` / ``to_cls`` (``unknown`` for UNKNOWN_CLASS)."""
        return UNKNOWN if index == UNKNOWN_CLASS else self.labels[index]

    def summary(self, hotspot_block: int = DEFAULT_HOTSPOT_BLOCK, developed_tag: str = DEVELOPED) -> dict:
        """Counts, areas, matrices, gains / losses, rates, urbanization and hotspots as a dict."""
        return summarize(self, hotspot_block=hotspot_block, developed_tag=developed_tag)


def check_order(run_a: Run, run_b: Run, allow_reverse: bool = False) -> str | None:
    """Refuse B earlier than A or two runs of one period (unless ``allow_reverse``); return a
    warning when the order cannot be told from the periods / dates."""
    same = run_a.period == run_b.period
    ya, yb = run_a.year, run_b.year
    if same or (ya is not None and yb is not None and ya == yb):
        raise InputError(
            f"runs {run_a.path} and {run_b.path} are both of period {run_a.period!r}"
            + ("" if same else f" / {run_b.period!r}")
            + "; compare runs of two periods (classify with `period` YEAR), not the same one twice"
        )
    if ya is not None and yb is not None:
        if yb < ya and not allow_reverse:
            raise InputError(
                f"run B {run_b.path} (period {run_b.period}) is earlier than run A {run_a.path} (period {run_a.period}); "
                f"give the earlier run first (`landuse change {run_b.path} {run_a.path}`) or pass `allow_reverse=True` "
                "(allow_reverse=True) for a deliberate backwards comparison"
            )
        return None
    return f"cannot tell the order of periods {run_a.period!r} and {run_b.period!r} (no year in them); compared as given, A -> B"


def compare(
    run_a: Run,
    run_b: Run,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    smooth: bool = False,
    allow_reverse: bool = False,
) -> Comparison:
    """Compare two runs on one grid, A then B (see the module docstring for the rules)."""
    if not 0.0 <= min_confidence <= 1.0:
        raise InputError(f"min_confidence must be within 0..1, got {min_confidence}", param="min_confidence")
    run_a.grid.require_equal(run_b.grid, what=f"runs {run_a.path} and {run_b.path}")
    if run_a.labels != run_b.labels:
        raise InputError(
            f"runs {run_a.path} and {run_b.path} have different tags ({run_a.labels} vs {run_b.labels}); "
            "classify both periods with models of the same tags"
        )
    warnings: list[str] = []
    order = check_order(run_a, run_b, allow_reverse)
    if order:
        warnings.append(order)
        log.warning(order)
    ya, yb = run_a.year, run_b.year
    if ya is not None and yb is not None and yb < ya:
        warnings.append(f"backwards comparison (--allow-reverse): {run_a.period} -> {run_b.period} runs against time")
    if run_a.model_key != run_b.model_key:
        msg = f"the two runs were classified by different models ({run_a.model_key[:12] or '?'} vs {run_b.model_key[:12] or '?'}); differences may come from the models, not the ground"
        warnings.append(msg)
        log.warning(msg)
    n = len(run_a.labels)
    a = plurality_filter(run_a.classes, n) if smooth else run_a.classes
    b = plurality_filter(run_b.classes, n) if smooth else run_b.classes
    unk_a, unk_b = run_a.unknown_mask, run_b.unknown_mask
    compared = ((a >= 0) | unk_a) & ((b >= 0) | unk_b)
    unknown = compared & (unk_a | unk_b)
    both = compared & ~unknown
    # winning probabilities of the (possibly smoothed) classes
    pa = _prob_of(run_a.probs, a)
    pb = _prob_of(run_b.probs, b)
    diff = both & (a != b)
    confident = (pa >= min_confidence) & (pb >= min_confidence)
    status = np.full(a.shape, -1, dtype=np.int8)
    status[both & (a == b)] = STATUS_CODES["unchanged"]
    status[diff & confident] = STATUS_CODES["changed"]
    status[diff & ~confident] = STATUS_CODES["uncertain"]
    status[unknown] = STATUS_CODES["unknown"]
    area = np.where(compared, run_a.grid.plot_area_ha * np.minimum(run_a.valid, run_b.valid), 0.0).astype(np.float64)
    from_cls = np.where(compared, np.where(unk_a, UNKNOWN_CLASS, a), -1).astype(np.int16)
    to_cls = np.where(compared, np.where(unk_b, UNKNOWN_CLASS, b), -1).astype(np.int16)
    unc = status == STATUS_CODES["uncertain"]
    sure = both & ~unc
    m_plots = np.zeros((n, n), dtype=np.int64)
    m_ha = np.zeros((n, n), dtype=np.float64)
    u_plots = np.zeros((n, n), dtype=np.int64)
    u_ha = np.zeros((n, n), dtype=np.float64)
    np.add.at(m_plots, (from_cls[sure], to_cls[sure]), 1)
    np.add.at(m_ha, (from_cls[sure], to_cls[sure]), area[sure])
    np.add.at(u_plots, (from_cls[unc], to_cls[unc]), 1)
    np.add.at(u_ha, (from_cls[unc], to_cls[unc]), area[unc])
    return Comparison(run_a, run_b, list(run_a.labels), min_confidence, smooth, from_cls, to_cls, status, area,
                      m_plots, m_ha, m_plots + u_plots, warnings, u_plots, u_ha)


def _prob_of(probs: np.ndarray, cls: np.ndarray) -> np.ndarray:
    idx = np.clip(cls, 0, None).astype(np.int64)[None]
    p = np.take_along_axis(probs, idx, axis=0)[0]
    return np.where(cls >= 0, np.nan_to_num(p, nan=0.0), np.nan).astype(np.float32)


def class_stats(matrix_ha: np.ndarray, labels: list[str], uncertain_ha: np.ndarray | None = None) -> dict:
    """Per class: areas (as classified: confident + uncertain), persistence, confident gross gain /
    loss / net / swap, and the uncertain gain / loss / net (hectares)."""
    m = np.asarray(matrix_ha, dtype=np.float64)
    u = np.zeros_like(m) if uncertain_ha is None else np.asarray(uncertain_ha, dtype=np.float64)
    raw = m + u
    diag = np.diag(m)
    gain = m.sum(axis=0) - diag
    loss = m.sum(axis=1) - diag
    u_gain = u.sum(axis=0) - np.diag(u)
    u_loss = u.sum(axis=1) - np.diag(u)
    out = {}
    for i, t in enumerate(labels):
        out[t] = {
            "area_a": float(raw[i].sum()),
            "area_b": float(raw[:, i].sum()),
            "persistence": float(diag[i]),
            "gain": float(gain[i]),
            "loss": float(loss[i]),
            "net": float(gain[i] - loss[i]),
            "swap": float(2 * min(gain[i], loss[i])),
            "uncertain_gain": float(u_gain[i]),
            "uncertain_loss": float(u_loss[i]),
            "uncertain_net": float(u_gain[i] - u_loss[i]),
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
        raise InputError(f"`hotspot_block` must be at least 1 plot, got {block}")
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
    out.sort(key=lambda d: (-d["new_developed_plots"], d["block_row"], d["block_col"]))  # type: ignore[operator]
    return out


AREA_RULE = (
    "a compared plot weighs plot_area_ha * min(valid_a, valid_b); class areas of each period sum the compared plots "
    "known in both periods by that period's class as classified, so sum(class areas) + unknown = compared and "
    "area_b - area_a = net (confident) + net (uncertain); uncertain plots are neither persistence nor change"
)


def summarize(comp: Comparison, hotspot_block: int = DEFAULT_HOTSPOT_BLOCK, developed_tag: str = DEVELOPED) -> dict:
    """Everything ``summary.json`` holds (see the module docstring for the area rule)."""
    labels = comp.labels
    plot_ha = comp.grid.plot_area_ha
    assert comp.matrix_uncertain_ha is not None and comp.matrix_uncertain_plots is not None
    m_ha, m_plots = comp.matrix_ha, comp.matrix_plots
    u_ha, u_plots = comp.matrix_uncertain_ha, comp.matrix_uncertain_plots

    def _count(mask: np.ndarray) -> dict:
        return {"plots": int(mask.sum()), "hectares": float(comp.area_ha[mask].sum())}

    seen_a = (comp.run_a.classes >= 0) | comp.run_a.unknown_mask
    seen_b = (comp.run_b.classes >= 0) | comp.run_b.unknown_mask
    excluded = (seen_a | seen_b) & ~comp.compared
    excluded_ha = float((plot_ha * np.where(seen_a, comp.run_a.valid, comp.run_b.valid))[excluded].sum())
    stats = class_stats(m_ha, labels, u_ha)
    years = comp.years
    compared_ha = float(comp.area_ha[comp.compared].sum())
    for t in labels:
        st = stats[t]
        st.update(annual_rates(st["area_a"], st["area_b"], years))
        for k in ("persistence", "gain", "loss", "net", "swap"):
            st[f"{k}_share"] = st[k] / compared_ha if compared_ha else None

    def _transitions(mp: np.ndarray, mh: np.ndarray) -> list[dict]:
        return [
            {"from": labels[i], "to": labels[j], "plots": int(mp[i, j]), "hectares": float(mh[i, j])}
            for i in range(len(labels)) for j in range(len(labels)) if i != j and mp[i, j]
        ]

    unknown_mask = comp.status == STATUS_CODES["unknown"]
    unk_a = unknown_mask & (comp.from_cls == UNKNOWN_CLASS)
    unk_b = unknown_mask & (comp.to_cls == UNKNOWN_CLASS)
    unknown = _count(unknown_mask)
    unknown.update({"in_a_plots": int(unk_a.sum()), "in_b_plots": int(unk_b.sum()), "in_both_plots": int((unk_a & unk_b).sum())})

    dev = comp.developed_index(developed_tag)
    urban: dict = {
        "tag": labels[dev] if dev is not None else None, "total_ha": 0.0, "total_plots": 0, "by_source_ha": {},
        "by_source_plots": {}, "per_year_ha": None, "uncertain_ha": 0.0, "uncertain_plots": 0,
        "uncertain_by_source_ha": {}, "uncertain_by_source_plots": {}, "upper_bound_ha": 0.0, "upper_bound_plots": 0,
        "upper_bound_per_year_ha": None,
        "rule": "total_ha: confident changes to the tag; upper_bound_ha: with the uncertain ones too; unknown plots are in neither",
    }
    if dev is not None:
        for i, t in enumerate(labels):
            if i != dev:
                urban["by_source_ha"][t] = float(m_ha[i, dev])
                urban["by_source_plots"][t] = int(m_plots[i, dev])
                urban["uncertain_by_source_ha"][t] = float(u_ha[i, dev])
                urban["uncertain_by_source_plots"][t] = int(u_plots[i, dev])
        urban["total_ha"] = float(sum(urban["by_source_ha"].values()))
        urban["total_plots"] = int(sum(urban["by_source_plots"].values()))
        urban["uncertain_ha"] = float(sum(urban["uncertain_by_source_ha"].values()))
        urban["uncertain_plots"] = int(sum(urban["uncertain_by_source_plots"].values()))
        urban["upper_bound_ha"] = urban["total_ha"] + urban["uncertain_ha"]
        urban["upper_bound_plots"] = urban["total_plots"] + urban["uncertain_plots"]
        urban["per_year_ha"] = urban["total_ha"] / years if years else None
        urban["upper_bound_per_year_ha"] = urban["upper_bound_ha"] / years if years else None

    return {
        "version": 2,
        "labels": labels,
        "periods": [comp.run_a.period, comp.run_b.period],
        "runs": [str(comp.run_a.path), str(comp.run_b.path)],
        "years": years,
        "grid": comp.grid.to_dict(),
        "plot_area_ha": plot_ha,
        "min_confidence": comp.min_confidence,
        "smoothed": comp.smoothed,
        "area_rule": AREA_RULE,
        "compared": _count(comp.compared),
        "unchanged": _count(comp.status == STATUS_CODES["unchanged"]),
        "changed": _count(comp.status == STATUS_CODES["changed"]),
        "uncertain": _count(comp.status == STATUS_CODES["uncertain"]),
        "unknown": unknown,
        "excluded": {"plots": int(excluded.sum()), "hectares": excluded_ha},
        "area_by_class_ha": {comp.run_a.period: {t: stats[t]["area_a"] for t in labels},
                             comp.run_b.period: {t: stats[t]["area_b"] for t in labels}},
        "matrix_plots": m_plots.tolist(),
        "matrix_hectares": m_ha.tolist(),
        "matrix_uncertain_plots": u_plots.tolist(),
        "matrix_uncertain_hectares": u_ha.tolist(),
        "matrix_raw_plots": comp.matrix_raw_plots.tolist(),
        "classes": stats,
        "gain_ha": {t: stats[t]["gain"] for t in labels},
        "loss_ha": {t: stats[t]["loss"] for t in labels},
        "net_ha": {t: stats[t]["net"] for t in labels},
        "uncertain_net_ha": {t: stats[t]["uncertain_net"] for t in labels},
        "total_change_ha": float(sum(stats[t]["gain"] for t in labels)),
        "transitions": _transitions(m_plots, m_ha),
        "uncertain_transitions": _transitions(u_plots, u_ha),
        "urbanization": urban,
        "hotspot_block_plots": hotspot_block,
        "hotspots": hotspots(comp, hotspot_block, developed_tag),
        "models": [comp.run_a.manifest.get("model"), comp.run_b.manifest.get("model")],
        "warnings": list(comp.warnings),
    }


def fmt_ha(v: float | None, sign: bool = False) -> str:
    """Hectares as every view prints them: one decimal, thousands separated (``1,234.5``)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:+,.1f}" if sign else f"{v:,.1f}"


def summary_rows(s: dict) -> list[tuple[str, int, float]]:
    """The status rows of a change summary as (name, plots, hectares), in the order every view
    prints them: unchanged, changed (confident), uncertain, unknown, then compared (their sum)."""
    names = ("unchanged", "changed", "uncertain", "unknown", "compared")
    return [(k, int((s.get(k) or {}).get("plots", 0)), float((s.get(k) or {}).get("hectares", 0.0))) for k in names]


def describe(s: dict) -> str:
    """The change summary in a few lines (the CLI prints this; summary.md and the map panel show
    the same numbers, one decimal)."""
    a, b = s["periods"]
    rows = {k: (n, ha) for k, n, ha in summary_rows(s)}
    n, ha = rows["compared"]
    parts = " + ".join(f"{k if k != 'changed' else 'changed (confident)'} {rows[k][0]:,} ({fmt_ha(rows[k][1])} ha)"
                       for k in ("unchanged", "changed", "uncertain", "unknown"))
    lines = [f"{a} -> {b}: compared {n:,} plots ({fmt_ha(ha)} ha) = {parts}; excluded {s['excluded']['plots']:,}"]
    u = s["urbanization"]
    if u["tag"]:
        src = ", ".join(f"{t} -> {u['tag']} {fmt_ha(v)} ha" for t, v in u["by_source_ha"].items())
        rate = f"; {fmt_ha(u['per_year_ha'])} ha/year" if u["per_year_ha"] is not None else ""
        lines.append(f"urbanization: {fmt_ha(u['total_ha'])} ha confident ({src}){rate}; "
                     f"up to {fmt_ha(u['upper_bound_ha'])} ha with {u['uncertain_plots']:,} uncertain plots")
    for w in s["warnings"]:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def series_pairs(runs: list[Run]) -> list[tuple[Run, Run]]:
    """Consecutive intervals plus first -> last (when there are more than two runs)."""
    if len(runs) < 2:
        raise InputError("change analysis needs at least two runs (periods)")
    pairs = list(zip(runs[:-1], runs[1:], strict=True))
    if len(runs) > 2:
        pairs.append((runs[0], runs[-1]))
    return pairs


def series_intensity(comparisons: list[Comparison]) -> dict | None:
    """Intensity analysis (Aldwaik & Pontius 2012) of consecutive comparisons (two or more
    intervals) on their hectare matrices, as ``summary.json`` holds it; None (with a logged
    reason) when the periods are not dated in increasing order."""
    from landuse.assess.intensity import intensity_analysis

    if len(comparisons) < 2:
        return None
    times = [comparisons[0].run_a.year] + [c.run_b.year for c in comparisons]
    years = [float(t) for t in times if t is not None]
    if len(years) != len(times) or any(b <= a for a, b in zip(years[:-1], years[1:], strict=True)):
        log.warning("intensity analysis skipped: the periods %s are not dated in increasing order",
                    [comparisons[0].run_a.period] + [c.run_b.period for c in comparisons])
        return None
    doc = intensity_analysis([c.matrix_ha for c in comparisons], years, comparisons[0].labels).to_dict()
    doc["notes"].append("from each interval's confident matrix (unchanged plots and confident changes); uncertain and unknown plots are left out")
    return doc
