"""Which plots to ask a person about: a mix worth a labeller's time.

A run's ``plots.parquet`` is read into a :class:`RunPlots` table (one row per plot the model
looked at). :func:`select_plots` then picks ``n`` of them by a strategy:

* ``least-confident`` - the lowest winning probability first (then the smallest margin);
* ``unknown`` - plots the model flagged out-of-class (status ``unknown``), highest
  ``unknown_score`` first; runs of models without the flag have none;
* ``changed`` - the changed and uncertain plots of a ``landuse change`` output, least
  confident change (the lower of the two periods' winning probabilities) first;
* ``diverse`` - a spread across predicted classes (every class gets an equal share while it has
  plots) and across the county (farthest-point sampling on plot position and probability vector);
* ``mix`` (default) - about 20 % unknown, 20 % changed (with a change), 30 % least confident and
  the rest diverse; a share a run cannot fill goes to the diverse part. The picks are interleaved
  by reason, so a labeller who stops early still has seen a mix.

Every pick says why it was chosen (``reason``); the selection is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from landuse import status
from landuse.errors import InputError, RunStoreError
from landuse.fileio import read_json
from landuse.grid import PlotGrid

STRATEGIES = ("mix", "least-confident", "unknown", "changed", "diverse")
UNKNOWN = status.UNKNOWN
# Statuses of plots the model gave an answer for (the rest had too little imagery).
ANSWERED = (status.CLASSIFIED, status.UNCERTAIN, status.UNKNOWN)
MIX_SHARES = {UNKNOWN: 0.2, "changed": 0.2, "least-confident": 0.3}


@dataclass(frozen=True)
class RunPlots:
    """The plots of a finished run the model answered for (status classified / uncertain / unknown)."""

    path: Path
    grid: PlotGrid
    manifest: dict[str, Any]
    labels: list[str]  # the model's tags
    period: str
    rows: np.ndarray  # int64 (m,)
    cols: np.ndarray
    status: np.ndarray  # object (m,)
    predicted: np.ndarray  # object (m,): a tag, or "unknown"
    probs: np.ndarray  # float32 (m, n_tags)
    unknown_score: np.ndarray  # float32 (m,), NaN where the run has none
    has_unknown_score: bool
    valid: np.ndarray  # float32 (m,): valid fraction of the plot's imagery

    @property
    def confidence(self) -> np.ndarray:
        """Winning probability per plot."""
        return np.nanmax(self.probs, axis=1) if len(self.labels) else np.zeros(len(self.rows))

    def index_of(self, row: int, col: int) -> int | None:
        """Position of plot (row, col) in the table, or None when the model gave no answer for it."""
        hit = np.flatnonzero((self.rows == row) & (self.cols == col))
        return int(hit[0]) if hit.size else None

    def guess(self, i: int) -> dict[str, Any]:
        """The model's answer for table row ``i`` (JSON-ready)."""
        probs = {t: round(float(p), 4) for t, p in zip(self.labels, self.probs[i].tolist(), strict=True)}
        score = float(self.unknown_score[i])
        return {
            "predicted": str(self.predicted[i]),
            "confidence": round(float(np.nanmax(self.probs[i])), 4) if self.labels else None,
            "status": str(self.status[i]),
            "probs": probs,
            "unknown_score": None if np.isnan(score) else round(score, 4),
        }


def read_run_plots(run_dir: str | Path) -> RunPlots:
    """Read the answered plots of the finished run ``run_dir``."""
    import pyarrow.parquet as pq

    from landuse.store import read_finished_run

    meta = read_finished_run(run_dir, needs=("plots.parquet",))
    path = meta.path / "plots.parquet"
    try:
        names = set(pq.read_schema(path).names)
        prob_cols = [f"prob_{t}" for t in meta.labels]
        missing = [c for c in ("row", "col", "status", "valid_fraction", *prob_cols) if c not in names]
        if missing:
            raise RunStoreError(f"{path} lacks the columns {', '.join(missing)}; rerun the classification with `overwrite=True`")
        cols = ["row", "col", "status", "valid_fraction", *prob_cols, *[c for c in ("label", "unknown_score") if c in names]]
        table = pq.read_table(path, columns=cols)
    except RunStoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types
        raise RunStoreError(f"cannot read {path} ({exc}); rerun the classification with `overwrite=True`") from None
    status = np.array(table.column("status").to_pylist(), dtype=object)
    keep = np.isin(status, ANSWERED)
    probs = np.stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float32) for c in prob_cols], axis=1) \
        if prob_cols else np.zeros((len(status), 0), np.float32)
    keep &= np.isfinite(probs).all(axis=1)
    if "unknown_score" in names:
        score = np.array([np.nan if v is None else v for v in table.column("unknown_score").to_pylist()], dtype=np.float32)
    else:
        score = np.full(len(status), np.nan, dtype=np.float32)
    probs = probs[keep]
    status = status[keep]
    if "label" in names:
        predicted = np.array(table.column("label").to_pylist(), dtype=object)[keep]
    else:
        predicted = np.array([meta.labels[int(k)] for k in probs.argmax(axis=1)], dtype=object) if len(probs) else status
    predicted = np.where(status == UNKNOWN, UNKNOWN, predicted).astype(object)
    none = np.array([p is None for p in predicted], dtype=bool)
    if none.any():  # uncertain plots of multilabel runs carry no label: show the best tag
        predicted[none] = [meta.labels[int(k)] for k in probs[none].argmax(axis=1)]
    return RunPlots(
        path=meta.path, grid=meta.grid, manifest=meta.manifest, labels=meta.labels, period=meta.period,
        rows=table.column("row").to_numpy().astype(np.int64)[keep], cols=table.column("col").to_numpy().astype(np.int64)[keep],
        status=status, predicted=predicted, probs=probs, unknown_score=score[keep],
        has_unknown_score="unknown_score" in names,
        valid=table.column("valid_fraction").fill_null(0.0).to_numpy().astype(np.float32)[keep],
    )


@dataclass(frozen=True)
class Pick:
    """One plot to ask about, and why."""

    row: int
    col: int
    plot_id: str
    reason: str  # least-confident / unknown / changed / diverse / given
    score: float  # the quantity the reason sorted by (confidence, unknown score ...)


@dataclass(frozen=True)
class Selection:
    """The plots chosen for labelling, in the order to ask them."""

    strategy: str
    picks: list[Pick]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.picks:
            out[p.reason] = out.get(p.reason, 0) + 1
        return out

    def describe(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.counts().items())


# -- the strategies (each returns table positions, best first) ----------------------------


def least_confident(plots: RunPlots, exclude: set[int] | None = None) -> list[int]:
    """Classified plots, lowest winning probability first, then smallest margin, then row / col."""
    ok = np.flatnonzero(plots.status != UNKNOWN)
    if not ok.size:
        return []
    top2 = -np.sort(-plots.probs[ok], axis=1)[:, :2]
    score = top2[:, 0]
    margin = score - (top2[:, 1] if top2.shape[1] > 1 else 0.0)
    order = ok[np.lexsort((plots.cols[ok], plots.rows[ok], margin, score))]
    return [int(i) for i in order if not exclude or int(i) not in exclude]


def flagged_unknown(plots: RunPlots, exclude: set[int] | None = None) -> list[int]:
    """Plots flagged unknown, highest unknown score first (NaN scores last)."""
    idx = np.flatnonzero(plots.status == UNKNOWN)
    score = np.nan_to_num(plots.unknown_score[idx], nan=-np.inf)
    order = idx[np.lexsort((plots.cols[idx], plots.rows[idx], -score))]
    return [int(i) for i in order if not exclude or int(i) not in exclude]


def read_change_plots(change_dir: str | Path, grid: PlotGrid) -> list[tuple[int, int, str, float]]:
    """(row, col, status, confidence) of the changed and uncertain plots of a change output,
    least confident first (confidence: the lower of the two periods' winning probabilities)."""
    change_dir = Path(change_dir)
    path = change_dir / "change.geojson"
    doc = read_json(path, f"run `landuse change RUN_A RUN_B --out {change_dir}` (with `overwrite=True` to redo it)")
    meta = doc.get("landuse") or {}
    if "grid" in meta:
        grid.require_equal(PlotGrid.from_dict(meta["grid"]), what=f"the run and change {change_dir}")
    recs = []
    for f in doc.get("features", []):
        p = f["properties"]
        r, c = grid.parse_plot_id(p["plot_id"])  # GridError when the change is of another grid
        probs = [v for v in (p.get("prob_from"), p.get("prob_to")) if v is not None]  # None: unknown
        recs.append((r, c, str(p.get("status", "changed")), float(min(probs, default=0.0))))
    recs.sort(key=lambda t: (t[3], t[0], t[1]))
    return recs


def changed(plots: RunPlots, change_dir: str | Path, exclude: set[int] | None = None) -> list[int]:
    """Table positions of the change output's changed and uncertain plots answered in this run."""
    out = []
    for r, c, _, _ in read_change_plots(change_dir, plots.grid):
        i = plots.index_of(r, c)
        if i is not None and (not exclude or i not in exclude):
            out.append(i)
    return out


def diverse(plots: RunPlots, n: int, chosen: Sequence[int] = ()) -> list[int]:
    """``n`` plots spread across predicted classes and the county, away from ``chosen``.

    Classes take turns (rarest first) while they have plots left, so a class of 3 plots is asked
    about as often as one of 3,000; within a class the next plot is the one farthest (position in
    grid units scaled to the grid's extent, plus the probability vector) from every plot already
    chosen (farthest-point sampling).
    """
    m = len(plots.rows)
    if m == 0 or n <= 0:
        return []
    extent = float(max(plots.grid.height, plots.grid.width, 1))
    feats = np.column_stack([plots.rows / extent, plots.cols / extent, 0.5 * np.nan_to_num(plots.probs)])
    taken = np.zeros(m, dtype=bool)
    taken[list(chosen)] = True
    dist = np.full(m, np.inf)
    for i in chosen:
        dist = np.minimum(dist, ((feats - feats[i]) ** 2).sum(axis=1))
    classes, counts = np.unique(plots.predicted.astype(str), return_counts=True)
    turn = [str(c) for c in classes[np.lexsort((classes, counts))]]  # rarest first
    members = {c: np.flatnonzero(plots.predicted.astype(str) == c) for c in turn}
    out: list[int] = []
    while len(out) < n:
        progressed = False
        for c in turn:
            if len(out) >= n:
                break
            idx = members[c][~taken[members[c]]]
            if not idx.size:
                continue
            if np.isinf(dist[idx]).all():  # nothing chosen yet: start at the plot nearest the class centre
                centre = feats[idx].mean(axis=0)
                best = idx[int(np.argmin(((feats[idx] - centre) ** 2).sum(axis=1)))]
            else:
                best = idx[int(np.argmax(dist[idx]))]
            out.append(int(best))
            taken[best] = True
            dist = np.minimum(dist, ((feats - feats[best]) ** 2).sum(axis=1))
            progressed = True
        if not progressed:
            break
    return out


def _interleave(groups: list[tuple[str, list[int]]]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    pos = [0] * len(groups)
    while any(pos[k] < len(g) for k, (_, g) in enumerate(groups)):
        for k, (reason, g) in enumerate(groups):
            if pos[k] < len(g):
                out.append((reason, g[pos[k]]))
                pos[k] += 1
    return out


def select_plots(
    plots: RunPlots,
    n: int = 40,
    strategy: str = "mix",
    change_dir: str | Path | None = None,
    plot_ids: Sequence[str] | None = None,
) -> Selection:
    """Choose the plots of ``plots`` to ask about (see the module doc); ``plot_ids`` overrides the
    strategy with an explicit list, asked in the order given."""
    grid = plots.grid
    if plot_ids is not None:
        picks, seen = [], set()
        for pid in plot_ids:
            r, c = grid.parse_plot_id(str(pid))  # GridError names an id of another grid
            if (r, c) not in seen:
                seen.add((r, c))
                picks.append(Pick(r, c, grid.plot_id(r, c), "given", float("nan")))
        if not picks:
            raise InputError("plot_ids is empty; give at least one plot id, or leave it out to choose by `strategy`")
        return Selection("given", picks)
    if strategy not in STRATEGIES:
        raise InputError(f"`strategy` {strategy!r} must be one of {', '.join(STRATEGIES)}")
    if n < 1:
        raise InputError(f"`n` {n} must be at least 1")
    if len(plots.rows) == 0:
        raise InputError(f"run {plots.path} has no classified plot; nothing to label")
    if strategy == "changed" and change_dir is None:
        raise InputError("`strategy` changed needs `change` CHANGE_DIR (the output of landuse change)")
    conf = plots.confidence
    if strategy == "least-confident":
        chosen = [("least-confident", i) for i in least_confident(plots)[:n]]
    elif strategy == UNKNOWN:
        found = flagged_unknown(plots)
        if not found:
            how = "its model does not flag out-of-class plots" if not plots.has_unknown_score else "no plot is flagged"
            raise InputError(f"run {plots.path} has no plot with status unknown ({how}); use `strategy` mix or least-confident")
        chosen = [(UNKNOWN, i) for i in found[:n]]
    elif strategy == "changed":
        found = changed(plots, change_dir)  # type: ignore[arg-type]
        if not found:
            raise InputError(f"{Path(change_dir) / 'change.geojson'} lists no changed plot answered in {plots.path}; nothing to label")  # type: ignore[arg-type]
        chosen = [("changed", i) for i in found[:n]]
    elif strategy == "diverse":
        chosen = [("diverse", i) for i in diverse(plots, n)]
    else:
        taken: set[int] = set()
        groups: list[tuple[str, list[int]]] = []
        for reason, share in MIX_SHARES.items():
            want = int(round(share * n))
            if reason == UNKNOWN:
                got = flagged_unknown(plots, taken)[:want]
            elif reason == "changed":
                got = changed(plots, change_dir, taken)[:want] if change_dir is not None else []
            else:
                got = least_confident(plots, taken)[:want]
            taken.update(got)
            groups.append((reason, got))
        spread = diverse(plots, n - len(taken), chosen=sorted(taken))
        groups.insert(0, ("diverse", spread))
        chosen = _interleave([g for g in groups if g[1]])
    scores = {UNKNOWN: plots.unknown_score}
    picks = [
        Pick(int(plots.rows[i]), int(plots.cols[i]), grid.plot_id(int(plots.rows[i]), int(plots.cols[i])), reason,
             round(float(scores.get(reason, conf)[i]), 4))
        for reason, i in chosen
    ]
    return Selection(strategy, picks)
