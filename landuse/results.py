"""Typed results of the jobs. Each reads back the finished directory it describes
(``Run.open(path)``, ``Change.open(path)``); the JSON on disk is their serialised form.

The summaries keep the document they were read from (``raw``): its keys and order are the
on-disk format, unchanged; the typed fields are views of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from landuse.errors import RunStoreError

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

    from landuse.change import Comparison
    from landuse.change import Run as RunArrays
    from landuse.grid import PlotGrid
    from landuse.training.labels import DatasetResult
    from landuse.training.review import MergeResult

__all__ = [
    "Area",
    "ClassArea",
    "StatusArea",
    "PlotCounts",
    "RunSummary",
    "Run",
    "Urbanization",
    "ChangeSummary",
    "Change",
    "GridResult",
    "TrainedModel",
    "ParityReport",
    "Disagreement",
    "Prediction",
    "Predictions",
    "LabelledDataset",
]


def _read_json(path: Path, what: str) -> dict[str, Any]:
    from landuse.fileio import read_json

    doc = read_json(path, what, RunStoreError, missing="is missing")
    if not isinstance(doc, dict):
        raise RunStoreError(f"{path} is not a JSON object; {what}")
    return doc


# -- a classification run ----------------------------------------------------------------------


@dataclass(frozen=True)
class Area:
    """A number of plots and their hectares."""

    plots: int
    hectares: float

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Area:
        return cls(int(d.get("plots", 0)), float(d.get("hectares", 0.0)))


@dataclass(frozen=True)
class ClassArea:
    """Plots and hectares of one class in a run."""

    index: int
    plots: int
    hectares: float
    imaged_hectares: float
    share: float | None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ClassArea:
        return cls(int(d["index"]), int(d["plots"]), float(d["hectares"]), float(d.get("imaged_hectares", 0.0)),
                   None if d.get("share") is None else float(d["share"]))


@dataclass(frozen=True)
class StatusArea:
    """Plots of one status that were not classified, by reason."""

    plots: int
    hectares: float
    by_reason: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StatusArea:
        return cls(int(d.get("plots", 0)), float(d.get("hectares", 0.0)),
                   {str(k): int(v) for k, v in (d.get("by_reason") or {}).items()})


@dataclass(frozen=True)
class PlotCounts:
    total: int
    classified: int
    unclassified: int


@dataclass(frozen=True)
class RunSummary:
    """``summary.json`` of a run: plots and hectares per class, unclassified plots by status."""

    period: str
    labels: list[str]
    plots: PlotCounts
    classes: dict[str, ClassArea]
    unclassified: dict[str, StatusArea]
    grid: dict[str, Any]
    model: dict[str, Any]
    parameters: dict[str, Any]
    timings: dict[str, Any]
    unknown: Area | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunSummary:
        p = d.get("plots") or {}
        unknown = d.get("unknown")
        return cls(
            period=str(d.get("period") or ""),
            labels=[str(t) for t in d.get("labels") or []],
            plots=PlotCounts(int(p.get("total", 0)), int(p.get("classified", 0)), int(p.get("unclassified", 0))),
            classes={str(k): ClassArea.from_dict(v) for k, v in (d.get("classes") or {}).items()},
            unclassified={str(k): StatusArea.from_dict(v) for k, v in (d.get("unclassified") or {}).items()},
            grid=dict(d.get("grid") or {}),
            model=dict(d.get("model") or {}),
            parameters=dict(d.get("parameters") or {}),
            timings=dict(d.get("timings") or {}),
            unknown=Area.from_dict(unknown) if isinstance(unknown, Mapping) else None,
            raw=dict(d),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (as written to ``summary.json``)."""
        return dict(self.raw)

    def hectares(self) -> dict[str, float]:
        """Hectares per class."""
        return {t: c.hectares for t, c in self.classes.items()}


@dataclass(frozen=True)
class Run:
    """A finished classification run directory (one period on one plot grid).

    ``plots`` is the GeoDataFrame ``plots.parquet`` holds (read on first use); ``summary`` the
    typed ``summary.json``; ``manifest`` the run's provenance (grid, inputs, model, parameters).
    """

    path: Path
    grid: PlotGrid
    period: str
    labels: list[str]
    manifest: dict[str, Any] = field(repr=False)
    summary: RunSummary = field(repr=False)
    did_work: bool = field(default=False, compare=False)
    message: str = field(default="", compare=False)

    @classmethod
    def open(cls, path: str | Path) -> Run:
        """Read a finished run directory (written by :func:`landuse.classify`)."""
        from landuse.store import OUTPUTS, SUMMARY, read_finished_run

        meta = read_finished_run(path, needs=OUTPUTS)
        summary = RunSummary.from_dict(_read_json(meta.path / SUMMARY, "rerun the classification to finish it"))
        return cls(meta.path, meta.grid, meta.period, meta.labels, meta.manifest, summary)

    @property
    def plots_parquet(self) -> Path:
        return self.path / "plots.parquet"

    @property
    def plots_geojson(self) -> Path:
        return self.path / "plots.geojson"

    @property
    def classes_tif(self) -> Path:
        return self.path / "classes.tif"

    @property
    def probabilities_tif(self) -> Path:
        return self.path / "probabilities.tif"

    @property
    def summary_json(self) -> Path:
        return self.path / "summary.json"

    @cached_property
    def plots(self) -> gpd.GeoDataFrame:
        """One row per plot of the grid: plot_id, row, col, status, label, probabilities, geometry."""
        import geopandas as gpd

        return gpd.read_parquet(self.plots_parquet)

    def classes(self) -> np.ndarray:
        """The class map on the plot grid (``classes.tif``: class index, 255 not classified)."""
        import rasterio

        with rasterio.open(self.classes_tif) as src:
            return np.asarray(src.read(1))

    def arrays(self) -> RunArrays:
        """Classes, probabilities and valid fractions as arrays on the grid (what change reads)."""
        from landuse.change import load_run

        return load_run(self.path)


# -- a change analysis -------------------------------------------------------------------------


@dataclass(frozen=True)
class Urbanization:
    """Hectares (and plots) that became the developed tag, by the class they came from:
    ``total_ha`` confident changes, ``upper_bound_ha`` with the uncertain ones too."""

    tag: str | None
    total_ha: float
    total_plots: int
    by_source_ha: dict[str, float]
    by_source_plots: dict[str, int]
    per_year_ha: float | None
    uncertain_ha: float = 0.0
    upper_bound_ha: float = 0.0
    uncertain_by_source_ha: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Urbanization:
        return cls(
            None if d.get("tag") is None else str(d["tag"]),
            float(d.get("total_ha", 0.0)),
            int(d.get("total_plots", 0)),
            {str(k): float(v) for k, v in (d.get("by_source_ha") or {}).items()},
            {str(k): int(v) for k, v in (d.get("by_source_plots") or {}).items()},
            None if d.get("per_year_ha") is None else float(d["per_year_ha"]),
            float(d.get("uncertain_ha", 0.0)),
            float(d.get("upper_bound_ha", d.get("total_ha", 0.0))),
            {str(k): float(v) for k, v in (d.get("uncertain_by_source_ha") or {}).items()},
        )


@dataclass(frozen=True)
class ChangeSummary:
    """``summary.json`` of a change analysis."""

    periods: tuple[str, str]
    runs: tuple[str, str]
    labels: list[str]
    years: float | None
    min_confidence: float
    smoothed: bool
    compared: Area
    changed: Area
    uncertain: Area
    unchanged: Area
    excluded: Area
    urbanization: Urbanization
    total_change_ha: float
    warnings: list[str]
    raw: dict[str, Any] = field(repr=False, compare=False)
    unknown: Area = Area(0, 0.0)  # plots unknown (out of class) in either period: neither change nor persistence

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ChangeSummary:
        periods = [str(p) for p in d.get("periods") or ["", ""]]
        runs = [str(r) for r in d.get("runs") or ["", ""]]

        def area(key: str) -> Area:
            return Area.from_dict(d.get(key) or {})

        return cls(
            periods=(periods[0], periods[-1]),
            runs=(runs[0], runs[-1]),
            labels=[str(t) for t in d.get("labels") or []],
            years=None if d.get("years") is None else float(d["years"]),
            min_confidence=float(d.get("min_confidence", 0.0)),
            smoothed=bool(d.get("smoothed", False)),
            compared=area("compared"),
            changed=area("changed"),
            uncertain=area("uncertain"),
            unchanged=area("unchanged"),
            excluded=area("excluded"),
            urbanization=Urbanization.from_dict(d.get("urbanization") or {}),
            total_change_ha=float(d.get("total_change_ha", 0.0)),
            warnings=[str(w) for w in d.get("warnings") or []],
            raw=dict(d),
            unknown=area("unknown"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (as written to ``summary.json``)."""
        return dict(self.raw)


@dataclass(frozen=True)
class Change:
    """A finished change analysis folder (two periods of one plot grid).

    ``matrix`` is the confident transition matrix in hectares (rows: class in period A, columns:
    class in period B; unchanged plots on the diagonal), ``matrix_uncertain`` the uncertain plots
    by (from, to); ``transitions`` the long table of ``transitions.csv``.
    """

    path: Path
    summary: ChangeSummary = field(repr=False)
    comparison: Comparison | None = field(default=None, repr=False, compare=False)

    @classmethod
    def open(cls, path: str | Path) -> Change:
        """Read a change folder (written by :func:`landuse.change`)."""
        path = Path(path)
        doc = _read_json(path / "summary.json", f"run `landuse change RUN_A RUN_B --out {path}` first")
        return cls(path, ChangeSummary.from_dict(doc))

    @property
    def labels(self) -> list[str]:
        return self.summary.labels

    @property
    def periods(self) -> tuple[str, str]:
        return self.summary.periods

    @property
    def urbanization(self) -> Urbanization:
        return self.summary.urbanization

    def _matrix(self, key: str) -> pd.DataFrame:
        import pandas as pd

        labels = self.labels
        df = pd.DataFrame(self.summary.raw[key], index=pd.Index(labels, name="from"), columns=pd.Index(labels, name="to"))
        return df

    @property
    def matrix(self) -> pd.DataFrame:
        """Confident transition matrix in hectares (uncertain and unknown plots are not in it)."""
        return self._matrix("matrix_hectares")

    @property
    def matrix_plots(self) -> pd.DataFrame:
        """Confident transition matrix in plots."""
        return self._matrix("matrix_plots")

    @property
    def matrix_uncertain(self) -> pd.DataFrame:
        """Uncertain plots' hectares by (from, to): neither persistence nor confident change."""
        return self._matrix("matrix_uncertain_hectares")

    @property
    def transitions(self) -> pd.DataFrame:
        """from, to, status, plots, hectares, share_of_compared (``transitions.csv``)."""
        import pandas as pd

        return pd.read_csv(self.path / "transitions.csv")

    @property
    def geojson(self) -> Path:
        return self.path / "change.geojson"

    @property
    def tif(self) -> Path:
        return self.path / "change.tif"

    def describe(self) -> str:
        """A few lines: the status rows (they add up to the compared plots) and urbanization
        (confident, and the upper bound with the uncertain plots) — what the CLI prints."""
        from landuse.change import describe

        return describe(self.summary.raw)


# -- the other jobs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GridResult:
    """A plot grid built by :func:`landuse.grid` (and where it was written)."""

    grid: PlotGrid
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)
    path: Path | None = None
    geojson: Path | None = None

    @property
    def plots(self) -> int:
        """Plots of the grid (inside the AOI when one was given)."""
        return int(self.mask.sum()) if self.mask is not None else self.grid.size

    @property
    def hectares(self) -> float:
        return self.plots * self.grid.plot_area_ha

    def describe(self) -> str:
        """One paragraph: CRS, plot size, shape, plots and hectares (inside the AOI when masked)."""
        from pyproj import CRS as ProjCRS

        from landuse.grid import crs_label

        g = self.grid
        text = (
            f"Plot grid in {crs_label(g.crs)} ({ProjCRS.from_wkt(g.crs.to_wkt()).name}), "
            f"{g.plot_size_m:g} m plots ({g.plot_size:g} CRS units), "
            f"{g.height} x {g.width} plots (rows x cols), origin plot row {g.row0} col {g.col0}; "
        )
        if self.mask is not None:
            return text + f"{self.plots} plots ({self.hectares:,.1f} ha) of {g.size} have their centre in the AOI."
        return text + f"{self.plots} plots ({self.hectares:,.1f} ha)."


@dataclass(frozen=True)
class TrainedModel:
    """A model folder written by :func:`landuse.train` (Custom Vision export layout)."""

    path: Path
    backend: str
    precision: str | None = None
    report: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def labels(self) -> list[str]:
        f = self.path / "labels.txt"
        return [t.strip() for t in f.read_text().splitlines() if t.strip()] if f.exists() else []

    @property
    def metrics(self) -> dict[str, Any] | None:
        """Cross-validation (or validation split) metrics of the fp32 model, when trained locally."""
        section = self.report.get("cv") or self.report.get("validation")
        return dict(section["fp32"]) if section and "fp32" in section else None


@dataclass(frozen=True)
class Disagreement:
    """A plot where the local model and the endpoint chose different tags."""

    plot_id: str
    local: str | None
    local_prob: float
    endpoint: str | None
    endpoint_prob: float


@dataclass(frozen=True)
class ParityReport:
    """One sample of plots through a local model and a Custom Vision endpoint."""

    model: str
    endpoint: str
    plots: int
    agreement: float
    mean_abs_prob_diff: float
    max_abs_prob_diff: float
    labels: list[str]
    disagreements: list[Disagreement]
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (``--json`` file)."""
        from dataclasses import asdict

        d = asdict(self)
        d.pop("path")
        return d

    @classmethod
    def open(cls, path: str | Path) -> ParityReport:
        d = _read_json(Path(path), "write it with `landuse parity ... --json FILE`")
        return cls(
            str(d["model"]), str(d["endpoint"]), int(d["plots"]), float(d["agreement"]),
            float(d["mean_abs_prob_diff"]), float(d["max_abs_prob_diff"]), [str(t) for t in d["labels"]],
            [Disagreement(**x) for x in d["disagreements"]], Path(path),
        )

    def describe(self) -> str:
        lines = [
            f"{self.plots} plots: label agreement {self.agreement:.1%}, probability difference "
            f"mean {self.mean_abs_prob_diff:.2e} max {self.max_abs_prob_diff:.2e}"
        ]
        for d in self.disagreements:
            lines.append(f"  {d.plot_id}: local {d.local} ({d.local_prob:.3f}) vs endpoint {d.endpoint} ({d.endpoint_prob:.3f})")
        return "\n".join(lines)


@dataclass(frozen=True)
class Prediction:
    """Tags and probabilities of one image, most probable first (like the portal's Quick Test)."""

    file: str
    tags: list[tuple[str, float]]
    unknown_score: float | None = None  # higher = less like any class (landuse.classify.unknown)
    unknown: bool = False  # flagged: like none of the model's classes

    @property
    def tag(self) -> str:
        return self.tags[0][0]

    def to_dict(self) -> dict[str, Any]:
        """Custom Vision's shape: ``{"file", "predictions": [{"tagName", "probability"}]}`` plus
        ``unknown`` / ``unknown_score``."""
        return {"file": self.file, "predictions": [{"tagName": t, "probability": p} for t, p in self.tags],
                "unknown": self.unknown, "unknown_score": self.unknown_score}


@dataclass(frozen=True)
class Predictions:
    """What :func:`landuse.predict` gave: the model (id, hash, backend) and one entry per image."""

    model: dict[str, str]
    images: list[Prediction]
    labels: list[str] = field(default_factory=list)  # the model's tags, in its order

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Prediction:
        return self.images[i]


@dataclass(frozen=True)
class LabelledDataset:
    """What :func:`landuse.dataset` did: chips labelled from a land-cover raster, reviewed chips merged."""

    path: Path
    built: DatasetResult | None = None
    merged: MergeResult | None = None

    def describe(self) -> str:
        parts: list[str] = []
        if self.built is not None:
            parts.append(self.built.describe())
        if self.merged is not None:
            parts.append(self.merged.describe(self.path))
        return "\n".join(parts)

