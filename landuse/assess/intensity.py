"""Intensity analysis of a series of transition matrices (Aldwaik & Pontius 2012).

Aldwaik, S. Z. and Pontius Jr, R. G. (2012) "Intensity analysis to unify measurements of size and
stationarity of land changes by interval, category, and transition", Landscape and Urban Planning
106: 103-114.

Input: one square matrix per time interval, ``C[t][i, j]`` = area that was category ``i`` at the
start of interval ``t`` and category ``j`` at its end (any unit: hectares, plots, pixels), and the
``T + 1`` time points (years). Every intensity is an **annual change as a percentage** of the
relevant size, as in the paper:

* interval level — ``S_t`` = annual change in interval ``t`` as % of the domain; the uniform line
  ``U`` = the same over the whole series. ``S_t > U``: a *fast* interval, else *slow*;
* category level — gross gain ``G_tj`` (% of category ``j`` at the end of the interval) and gross
  loss ``L_ti`` (% of ``i`` at its start), against ``S_t``: *active* above it, *dormant* below;
* transition level — for the gain of category ``n``: ``R_tin`` = annual transition ``i -> n`` as %
  of ``i`` at the start, against ``W_tn`` (uniform: ``n``'s annual gain spread over every other
  category's start size); *targeted* above, *avoided* below. For the loss of category ``m``:
  ``Q_tmj`` = annual transition ``m -> j`` as % of ``j`` at the end, against ``V_tm``.

Everything here is pure arithmetic on the matrices; it imports nothing of the package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from landuse.errors import InputError


@dataclass(frozen=True)
class IntervalIntensity:
    """Interval level: one row per time interval."""

    start: float
    end: float
    change: float  # area changed in the interval (sum of off-diagonal cells)
    annual_change: float  # change / duration
    intensity_pct: float  # S_t: annual change as % of the domain
    uniform_pct: float  # U: the same over the whole series
    behaviour: str  # "fast" | "slow"


@dataclass(frozen=True)
class CategoryIntensity:
    """Category level for one category in one interval: gross gain and gross loss."""

    category: str
    start: float
    end: float
    annual_gain: float
    annual_loss: float
    gain_intensity_pct: float | None  # G_tj (% of the category at the end); None if it ends at size 0
    loss_intensity_pct: float | None  # L_ti (% of the category at the start); None if it starts at size 0
    uniform_pct: float  # S_t
    gain_behaviour: str | None  # "active" | "dormant"
    loss_behaviour: str | None


@dataclass(frozen=True)
class TransitionIntensity:
    """Transition level for one target category (gain of ``n`` or loss of ``m``) in one interval."""

    category: str  # the gaining (``side == "gain"``) or losing category
    side: str  # "gain" | "loss"
    start: float
    end: float
    annual_size: dict[str, float]  # other category -> annual transition size
    intensity_pct: dict[str, float | None]  # R_tin (gain) or Q_tmj (loss), per other category
    uniform_pct: float | None  # W_tn (gain) or V_tm (loss)
    behaviour: dict[str, str | None]  # "targeted" | "avoided"


@dataclass(frozen=True)
class IntensityAnalysis:
    """The three levels for a series of intervals."""

    labels: list[str]
    times: list[float]
    unit: str
    intervals: list[IntervalIntensity]
    categories: list[list[CategoryIntensity]]  # [interval][category]
    gains: list[list[TransitionIntensity]]  # [interval][gaining category]
    losses: list[list[TransitionIntensity]]  # [interval][losing category]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``summary.json``'s ``intensity`` key)."""
        from dataclasses import asdict

        return {
            "method": "intensity analysis (Aldwaik & Pontius 2012); intensities are annual % changes",
            "labels": list(self.labels),
            "times": list(self.times),
            "unit": self.unit,
            "interval_level": [asdict(i) for i in self.intervals],
            "category_level": [[asdict(c) for c in row] for row in self.categories],
            "transition_level_gain": [[asdict(g) for g in row] for row in self.gains],
            "transition_level_loss": [[asdict(g) for g in row] for row in self.losses],
            "notes": list(self.notes),
        }


def _check(matrices: Sequence[np.ndarray], times: Sequence[float], labels: Sequence[str]) -> list[np.ndarray]:
    mats = [np.asarray(m, dtype=np.float64) for m in matrices]
    k = len(labels)
    if not mats:
        raise InputError("intensity analysis needs at least one transition matrix")
    if len(times) != len(mats) + 1:
        raise InputError(f"intensity analysis needs {len(mats) + 1} time points for {len(mats)} intervals, got {len(times)}")
    for t, m in enumerate(mats):
        if m.shape != (k, k):
            raise InputError(f"transition matrix {t} has shape {m.shape}, expected {k} x {k} for tags {list(labels)}")
        if (m < 0).any() or not np.isfinite(m).all():
            raise InputError(f"transition matrix {t} has negative or non-finite cells")
    for a, b in zip(times[:-1], times[1:], strict=True):
        if not b > a:
            raise InputError(f"intensity analysis needs increasing time points, got {list(times)}; give the runs in time order with dated periods")
    return mats


def _behaviour(value: float | None, uniform: float | None, above: str, below: str) -> str | None:
    if value is None or uniform is None:
        return None
    return above if value > uniform else below


def interval_level(matrices: Sequence[np.ndarray], times: Sequence[float]) -> list[IntervalIntensity]:
    """``S_t`` per interval and the uniform ``U`` (percent of the domain per year)."""
    mats = [np.asarray(m, dtype=np.float64) for m in matrices]
    changes = [float(m.sum() - np.trace(m)) for m in mats]
    domain = float(mats[0].sum())
    span = float(times[-1] - times[0])
    uniform = 100.0 * sum(changes) / domain / span if domain else 0.0
    out = []
    for t, (m, ch) in enumerate(zip(mats, changes, strict=True)):
        dur = float(times[t + 1] - times[t])
        s = 100.0 * ch / float(m.sum()) / dur if m.sum() else 0.0
        out.append(IntervalIntensity(float(times[t]), float(times[t + 1]), ch, ch / dur, s, uniform, "fast" if s > uniform else "slow"))
    return out


def category_level(matrix: np.ndarray, start: float, end: float, labels: Sequence[str]) -> list[CategoryIntensity]:
    """Gross gain ``G_tj`` and gross loss ``L_ti`` intensities of every category in one interval."""
    m = np.asarray(matrix, dtype=np.float64)
    dur = float(end - start)
    total = float(m.sum())
    s_t = 100.0 * float(m.sum() - np.trace(m)) / total / dur if total else 0.0
    size_start, size_end, diag = m.sum(axis=1), m.sum(axis=0), np.diag(m)
    out = []
    for j, tag in enumerate(labels):
        gain = float(size_end[j] - diag[j]) / dur
        loss = float(size_start[j] - diag[j]) / dur
        g = 100.0 * gain / float(size_end[j]) if size_end[j] > 0 else None
        lo = 100.0 * loss / float(size_start[j]) if size_start[j] > 0 else None
        out.append(CategoryIntensity(str(tag), float(start), float(end), gain, loss, g, lo, s_t,
                                     _behaviour(g, s_t, "active", "dormant"), _behaviour(lo, s_t, "active", "dormant")))
    return out


def _transition(m: np.ndarray, start: float, end: float, labels: Sequence[str], n: int, kind: str) -> TransitionIntensity:
    """Intensities of the flows into category ``n`` of ``m`` (rows: from, columns: to), relative
    to the size of each source category; a loss is the same computation on the transposed matrix."""
    dur = float(end - start)
    size_from = m.sum(axis=1)
    others = [i for i in range(len(labels)) if i != n]
    flow = float(m[others, n].sum()) / dur
    denom = float(size_from[others].sum())
    uniform = 100.0 * flow / denom if denom > 0 else None
    size = {labels[i]: float(m[i, n]) / dur for i in others}
    inten = {labels[i]: (100.0 * float(m[i, n]) / dur / float(size_from[i]) if size_from[i] > 0 else None) for i in others}
    beh = {k: _behaviour(v, uniform, "targeted", "avoided") for k, v in inten.items()}
    return TransitionIntensity(str(labels[n]), kind, float(start), float(end), size, inten, uniform, beh)


def transition_gain(matrix: np.ndarray, start: float, end: float, labels: Sequence[str], n: int) -> TransitionIntensity:
    """The gain of category ``n``: ``R_tin`` per losing category ``i`` and the uniform ``W_tn``."""
    return _transition(np.asarray(matrix, dtype=np.float64), start, end, labels, n, "gain")


def transition_loss(matrix: np.ndarray, start: float, end: float, labels: Sequence[str], mi: int) -> TransitionIntensity:
    """The loss of category ``m``: ``Q_tmj`` per gaining category ``j`` and the uniform ``V_tm``
    (the gain computation on the transposed matrix: sizes are then the end-of-interval sizes)."""
    return _transition(np.asarray(matrix, dtype=np.float64).T, start, end, labels, mi, "loss")


def intensity_analysis(
    matrices: Sequence[np.ndarray], times: Sequence[float], labels: Sequence[str], unit: str = "ha"
) -> IntensityAnalysis:
    """All three levels for ``len(matrices)`` consecutive intervals between ``times``.

    The domain must be the same in every interval (the same plots compared throughout); a
    difference in totals larger than 0.1 % is noted, since the levels then compare different
    areas.
    """
    labels = [str(t) for t in labels]
    mats = _check(matrices, times, labels)
    notes = []
    totals = [float(m.sum()) for m in mats]
    if max(totals) > 0 and (max(totals) - min(totals)) / max(totals) > 1e-3:
        notes.append(f"the intervals cover different totals ({', '.join(f'{t:.1f}' for t in totals)} {unit}); "
                     "intensities compare slightly different domains")
    k = len(labels)
    cats, gains, losses = [], [], []
    for t, m in enumerate(mats):
        a, b = float(times[t]), float(times[t + 1])
        cats.append(category_level(m, a, b, labels))
        gains.append([transition_gain(m, a, b, labels, n) for n in range(k)])
        losses.append([transition_loss(m, a, b, labels, i) for i in range(k)])
    return IntensityAnalysis(labels, [float(x) for x in times], unit, interval_level(mats, times), cats, gains, losses, notes)


def intensity_markdown(ia: IntensityAnalysis | dict[str, Any]) -> str:
    """The three levels as Markdown tables (annual % intensities, uniform lines, behaviour); takes
    the analysis or its :meth:`IntensityAnalysis.to_dict` form (as stored in ``summary.json``)."""
    d = ia.to_dict() if isinstance(ia, IntensityAnalysis) else ia
    unit = d.get("unit", "")

    def f(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f}"

    def span(x: dict[str, Any]) -> str:
        return f"{x['start']:g}–{x['end']:g}"

    lines = ["## Intensity analysis (Aldwaik & Pontius 2012)", "",
             "Annual change as % of the relevant size, against the uniform intensity of its level.", "",
             "### Interval level", "", "| interval | change | S_t (%/yr) | U (%/yr) | |", "|---|---:|---:|---:|---|"]
    for i in d["interval_level"]:
        lines.append(f"| {span(i)} | {i['change']:.1f} {unit} | {i['intensity_pct']:.2f} | {i['uniform_pct']:.2f} | {i['behaviour']} |")
    lines += ["", "### Category level (gross gain and gross loss)", "",
              "| interval | category | gain (%/yr) | loss (%/yr) | uniform S_t | gain | loss |", "|---|---|---:|---:|---:|---|---|"]
    for row in d["category_level"]:
        for c in row:
            lines.append(f"| {span(c)} | {c['category']} | {f(c['gain_intensity_pct'])} | {f(c['loss_intensity_pct'])} | "
                         f"{c['uniform_pct']:.2f} | {c['gain_behaviour'] or '—'} | {c['loss_behaviour'] or '—'} |")
    lines += ["", "### Transition level (the gain of each category: which categories it targets)", "",
              "| interval | gain of | from | intensity (%/yr) | uniform W_tn (%/yr) | |", "|---|---|---|---:|---:|---|"]
    for row in d["transition_level_gain"]:
        for g in row:
            if not any(v > 0 for v in g["annual_size"].values()):
                continue
            for other, v in g["intensity_pct"].items():
                lines.append(f"| {span(g)} | {g['category']} | {other} | {f(v)} | {f(g['uniform_pct'])} | {g['behaviour'][other] or '—'} |")
    for n in d.get("notes") or []:
        lines += ["", f"Note: {n}"]
    return "\n".join(lines) + "\n"
