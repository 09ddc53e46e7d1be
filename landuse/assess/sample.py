"""A reference sample on disk: drawn from a run or a change analysis, labelled, then estimated.

Layout of a sample folder (``SAMPLE``)::

    design.json      the design: source, kind (run / change), strata with N_h, hectares, n_h,
                     inclusion probabilities and weights, how n was chosen, seed, provenance
    sample.csv       one row per sample plot: plot_id, row, col, x, y, crs, stratum, map_class,
                     area_ha, inclusion_probability, weight (plots it stands for)
    sample.geojson   the same plots as EPSG:4326 footprints (for a GIS, or to find them)
    strata.tif       on the plot grid: band 1 the stratum index of every population plot (-1: not in
                     it), band 2 its hectares

Reference labels come from a labelling index ``labels.csv`` (``plot_id, label, run, period, x, y,
crs, chip, labelled_at``; the format ``landuse label`` writes), by default ``SAMPLE/labels.csv`` or
``SAMPLE/labels/labels.csv``. For a change sample a plot's reference class is its label in the
first period ``->`` its label in the second (two rows, one per period), or one label written as
``"A -> B"``. ``estimate`` writes ``estimate.json`` and ``estimate.md`` into the sample folder.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from landuse import __version__, defaults
from landuse.assess.design import (
    Stratum,
    allocate,
    draw,
    expected_se_overall,
    sample_size_area,
    sample_size_overall,
)
from landuse.assess.estimate import Assessment, assess, assessment_from_dict, assessment_markdown
from landuse.errors import InputError, OutputExistsError, RunStoreError
from landuse.grid import PlotGrid
from landuse.store import atomic_write_bytes, atomic_write_json

ARROW = " -> "
DEFAULT_EXPECTED_USERS = defaults.ASSESS_EXPECTED_UA
DEFAULT_TARGET_SE = defaults.ASSESS_TARGET_SE
DEFAULT_MIN_PER_STRATUM = defaults.ASSESS_MIN_PER_STRATUM
SAMPLE_COLUMNS = ("plot_id", "row", "col", "x", "y", "crs", "stratum", "map_class", "area_ha", "inclusion_probability", "weight")
NOT_MAPPED = "not mapped"
SKIPPED_LABELS = frozenset({"", "skip"})
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Population:
    """The plots a map makes a claim about, with the claim (map class) and the area of each."""

    kind: str  # "run" | "change"
    source: Path
    grid: PlotGrid
    rows: np.ndarray  # int64 (P,)
    cols: np.ndarray
    map_class: np.ndarray  # object (P,): a tag, or "A -> B" for a change
    area_ha: np.ndarray  # float64 (P,)
    classes: list[str]  # map classes in display order
    periods: list[str]
    runs: list[str]
    tags: list[str]

    def mapped_area(self) -> dict[str, float]:
        return {c: float(self.area_ha[self.map_class == c].sum()) for c in self.classes}


def _is_change_dir(path: Path) -> bool:
    return (path / "summary.json").exists() and (path / "change.tif").exists() and not (path / "plots.parquet").exists()


def load_population(source: str | Path) -> Population:
    """The population of a finished run directory (its classified plots) or of a ``landuse change``
    output folder (the plots compared in both periods, by transition as classified)."""
    from landuse.change import compare, load_run

    source = Path(source)
    if not source.exists():
        raise InputError(f"{source} does not exist; give a run directory (the `out` of classify) or a change folder (the `out` of change)")
    if _is_change_dir(source):
        try:
            summary = json.loads((source / "summary.json").read_text())
            run_paths, periods = list(summary["runs"]), [str(p) for p in summary["periods"]]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise RunStoreError(f"{source / 'summary.json'} is not a change summary ({exc}); rerun landuse change") from None
        a, b = load_run(run_paths[0]), load_run(run_paths[1])
        comp = compare(a, b, min_confidence=float(summary.get("min_confidence", 0.6)), smooth=bool(summary.get("smoothed", False)))
        ok = (comp.from_cls >= 0) & (comp.to_cls >= 0)
        rows, cols = np.nonzero(ok)
        tags = list(comp.labels)
        names = np.array([f"{tags[f]}{ARROW}{tags[t]}" for f, t in zip(comp.from_cls[ok].tolist(), comp.to_cls[ok].tolist(), strict=True)], dtype=object)
        order = [f"{x}{ARROW}{y}" for x in tags for y in tags]
        classes = [c for c in order if (names == c).any()]
        return Population("change", source, comp.grid, rows.astype(np.int64), cols.astype(np.int64), names,
                          comp.area_ha[ok].astype(np.float64), classes, periods, [str(p) for p in run_paths], tags)
    run = load_run(source)
    ok = run.classes >= 0
    rows, cols = np.nonzero(ok)
    names = np.array([run.labels[c] for c in run.classes[ok].tolist()], dtype=object)
    classes = [t for t in run.labels if (names == t).any()]
    area = (run.grid.plot_area_ha * run.valid[ok]).astype(np.float64)
    return Population("run", source, run.grid, rows.astype(np.int64), cols.astype(np.int64), names, area, classes,
                      [run.period], [str(run.path)], list(run.labels))


@dataclass(frozen=True)
class SampleDesign:
    """A drawn sample and its design (what ``design.json`` and ``sample.csv`` hold)."""

    path: Path
    kind: str
    source: str
    periods: list[str]
    runs: list[str]
    grid: PlotGrid
    classes: list[str]
    strata: list[Stratum]
    seed: int
    sizing: dict[str, Any]
    plots: list[dict[str, Any]]  # the rows of sample.csv
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.plots)

    @property
    def plot_ids(self) -> list[str]:
        return [str(p["plot_id"]) for p in self.plots]

    def stratum(self, name: str) -> Stratum:
        for s in self.strata:
            if s.name == name:
                return s
        raise KeyError(name)

    @classmethod
    def open(cls, path: str | Path) -> SampleDesign:
        """Read a sample folder written by :func:`design_sample`."""
        path = Path(path)
        dpath, spath = path / "design.json", path / "sample.csv"
        for p in (dpath, spath):
            if not p.exists():
                raise InputError(f"{path} is not a sample folder ({p.name} missing); draw one with `landuse assess design RUN --out {path}`")
        try:
            d = json.loads(dpath.read_text())
            strata = [Stratum(str(s["name"]), int(s["plots"]), float(s["area_ha"]), int(s["n"])) for s in d["strata"]]
            grid = PlotGrid.from_dict(d["grid"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{dpath} is not a sample design ({exc}); draw the sample again with `overwrite=True`") from None
        with open(spath, newline="") as f:
            plots = list(csv.DictReader(f))
        for row in plots:
            row["row"], row["col"] = int(row["row"]), int(row["col"])  # type: ignore[assignment]
            row["area_ha"] = float(row["area_ha"])  # type: ignore[assignment]
        return cls(path, str(d["kind"]), str(d["source"]), list(d["periods"]), list(d["runs"]), grid, list(d["classes"]),
                   strata, int(d["seed"]), dict(d.get("sizing") or {}), plots, d)


def design_sample(
    source: str | Path,
    out: str | Path,
    *,
    n: int | None = None,
    target_se: float = DEFAULT_TARGET_SE,
    target_class: str | None = None,
    target_se_ha: float | None = None,
    expected_users: float | dict[str, float] = DEFAULT_EXPECTED_USERS,
    min_per_stratum: int = DEFAULT_MIN_PER_STRATUM,
    seed: int = 0,
    overwrite: bool = False,
) -> SampleDesign:
    """Draw a stratified random sample of plots of a run (strata = mapped classes) or of a change
    analysis (strata = transitions as mapped; rare change strata get ``min_per_stratum`` plots).

    The size is ``n`` if given; else from ``target_se_ha`` of ``target_class``'s area, or from
    ``target_se`` of the overall accuracy (see :mod:`landuse.assess.design`). Writes the sample
    folder ``out`` atomically and returns its design.
    """
    source = getattr(source, "path", source)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(f"{out} already exists and is not empty (a sample and perhaps its labels); pass `overwrite=True` or choose another `out`")
    pop = load_population(source)
    if pop.rows.size == 0:
        raise InputError(f"{source} has no classified plot to sample")
    sizes = {c: int((pop.map_class == c).sum()) for c in pop.classes}
    areas = {c: float(pop.area_ha[pop.map_class == c].sum()) for c in pop.classes}
    if isinstance(expected_users, dict):
        missing = [c for c in pop.classes if c not in expected_users]
        if missing:
            raise InputError(f"expected user's accuracy missing for strata {missing}")
        eu = {c: float(expected_users[c]) for c in pop.classes}
    else:
        eu = {c: float(expected_users) for c in pop.classes}
    total_plots = int(pop.rows.size)
    total_ha = float(pop.area_ha.sum())
    if n is not None:
        sizing: dict[str, Any] = {"rule": "given", "n": int(n)}
        n_req = int(n)
    elif target_class is not None:
        if target_se_ha is None:
            raise InputError("`target_class` needs `target_se_ha` (the standard error of that class's area, in hectares)")
        se_p = float(target_se_ha) / total_ha
        n_req = sample_size_area(areas, eu, target_class, se_p, total_plots)
        sizing = {"rule": "target standard error of a class's area (Cochran 1977 eq. 5.25, finite-population corrected)",
                  "target_class": target_class, "target_se_ha": float(target_se_ha), "target_se_proportion": se_p,
                  "expected_users_accuracy": eu, "n": n_req}
    else:
        n_req = sample_size_overall(areas, eu, float(target_se), total_plots)
        sizing = {"rule": "target standard error of overall accuracy (Olofsson et al. 2014 eq. 13, finite-population corrected)",
                  "target_se": float(target_se), "expected_users_accuracy": eu, "n": n_req}
    alloc = allocate(n_req, sizes, min_per_stratum)
    strata = [Stratum(c, sizes[c], areas[c], alloc[c]) for c in pop.classes]
    sizing["min_per_stratum"] = int(min_per_stratum)
    sizing["allocation"] = "proportional to plots, at least min_per_stratum per stratum, capped at the stratum's plots"
    sizing["expected_se_overall_accuracy"] = expected_se_overall(strata, eu)
    units = {c: np.flatnonzero(pop.map_class == c).tolist() for c in pop.classes}
    picks = draw(units, alloc, seed)
    grid = pop.grid
    crs = grid.crs_key
    rows_out: list[dict[str, Any]] = []
    for s in strata:
        idx = np.array(picks[s.name], dtype=np.int64)
        if idx.size == 0:
            continue
        r, c = pop.rows[idx], pop.cols[idx]
        xs, ys = grid.centres(r, c)
        ids = grid.plot_ids(r, c)
        for k in range(idx.size):
            rows_out.append({
                "plot_id": str(ids[k]), "row": int(r[k]), "col": int(c[k]), "x": round(float(xs[k]), 3), "y": round(float(ys[k]), 3),
                "crs": crs, "stratum": s.name, "map_class": str(pop.map_class[idx[k]]), "area_ha": round(float(pop.area_ha[idx[k]]), 6),
                "inclusion_probability": round(s.inclusion_probability, 8), "weight": round(s.weight, 8),
            })
    design = {
        "kind": pop.kind,
        "version": 1,
        "source": str(pop.source),
        "runs": pop.runs,
        "periods": pop.periods,
        "tags": pop.tags,
        "classes": pop.classes,
        "grid": grid.to_dict(),
        "population": {"plots": total_plots, "area_ha": total_ha,
                       "rule": "classified plots; area = plot_area_ha * valid fraction" if pop.kind == "run"
                       else "plots compared in both periods (unknown excluded); area = plot_area_ha * min(valid_a, valid_b); strata = transitions as classified"},
        "strata": [{"name": s.name, "plots": s.plots, "area_ha": s.area_ha, "weight_area": s.area_ha / total_ha,
                    "n": s.n, "inclusion_probability": s.inclusion_probability, "weight": s.weight} for s in strata],
        "sample_size": len(rows_out),
        "seed": int(seed),
        "sizing": sizing,
        "toolkit": {"name": "landuse", "version": __version__},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    _write_sample_folder(out, design, rows_out, pop, strata, overwrite)
    return SampleDesign.open(out)


def _write_sample_folder(out: Path, design: dict, rows: list[dict], pop: Population, strata: list[Stratum], overwrite: bool) -> None:
    import rasterio
    import shapely

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "design.json").write_text(json.dumps(design, indent=2) + "\n")
        with open(tmp / "sample.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(SAMPLE_COLUMNS))
            w.writeheader()
            w.writerows(rows)
        grid = pop.grid
        feats = []
        if rows:
            r = np.array([p["row"] for p in rows]), np.array([p["col"] for p in rows])
            polys = grid.footprints(r[0], r[1], to_crs="EPSG:4326")
            for p, poly in zip(rows, polys, strict=True):
                feats.append({"type": "Feature", "geometry": json.loads(shapely.to_geojson(poly)), "properties": dict(p)})
        (tmp / "sample.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}) + "\n")
        code = np.full((2, *grid.shape), -1.0, dtype=np.float32)
        code[1] = 0.0
        index = {s.name: i for i, s in enumerate(strata)}
        code[0, pop.rows, pop.cols] = np.array([index[str(c)] for c in pop.map_class.tolist()], dtype=np.float32)
        code[1, pop.rows, pop.cols] = pop.area_ha.astype(np.float32)
        profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=2, dtype="float32", crs=grid.crs,
                       transform=grid.transform, compress="deflate")
        with rasterio.open(tmp / "strata.tif", "w", **profile) as dst:
            dst.write(code)
            dst.set_band_description(1, "stratum index (-1: not in the population)")
            dst.set_band_description(2, "hectares of the plot")
            dst.update_tags(landuse_kind="assessment strata", strata=json.dumps([s.name for s in strata]))
        if out.exists():
            shutil.rmtree(out)
        tmp.replace(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_strata(sample: SampleDesign) -> tuple[np.ndarray, np.ndarray]:
    """The stratum index (-1 where not in the population) and the hectares of every plot of the grid."""
    import rasterio

    path = sample.path / "strata.tif"
    if not path.exists():
        raise InputError(f"{path} is missing; draw the sample again with `overwrite=True`")
    with rasterio.open(path) as src:
        data = src.read()
    return data[0].astype(np.int16), data[1].astype(np.float64)


def find_labels(sample_dir: Path, labels: str | Path | None) -> Path:
    """The labels index to read: ``labels`` (a labels.csv, or a dataset folder holding one), else the
    sample folder's own."""
    candidates = [Path(labels)] if labels is not None else [sample_dir / "labels.csv", sample_dir / "labels"]
    for c in candidates:
        p = c / "labels.csv" if c.is_dir() else c
        if p.exists():
            return p
    where = labels if labels is not None else f"{sample_dir}/labels.csv"
    raise InputError(f"no labels index at {where}; label the sample's plots first (landuse label ...) or pass `labels` PATH")


def read_labels(path: Path) -> list[dict[str, str]]:
    """Rows of a labels index (``labels.csv``)."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise InputError(f"cannot read {path} ({exc})") from None
    if rows and ("plot_id" not in rows[0] or "label" not in rows[0]):
        raise InputError(f"{path} has no plot_id / label columns; it is not a labels index of landuse label")
    return rows


def reference_classes(sample: SampleDesign, rows: list[dict[str, str]]) -> tuple[dict[str, str], list[str]]:
    """Reference class per sample plot id from labels-index rows (the last row of a plot and period
    wins), and notes on what could not be used."""
    wanted = set(sample.plot_ids)
    latest: dict[tuple[str, str], str] = {}
    for r in rows:
        pid = str(r.get("plot_id", ""))
        if pid in wanted:
            latest[(pid, str(r.get("period") or ""))] = str(r.get("label") or "").strip()
    notes: list[str] = []
    out: dict[str, str] = {}
    unknown = 0
    for pid in sample.plot_ids:
        by_period = {p: lab for (q, p), lab in latest.items() if q == pid and lab not in SKIPPED_LABELS}
        if not by_period:
            continue
        if sample.kind == "change":
            a, b = sample.periods[0], sample.periods[1]
            one = [lab for lab in by_period.values() if ARROW.strip() in lab]
            if a in by_period and b in by_period:
                la, lb = by_period[a], by_period[b]
            elif one:
                la, lb = (x.strip() for x in one[-1].split(ARROW.strip(), 1))
            else:
                continue
            if UNKNOWN in (la, lb):
                unknown += 1
                continue
            out[pid] = f"{la}{ARROW}{lb}"
        else:
            period = sample.periods[0] if sample.periods else ""
            lab = by_period.get(period) or by_period.get("") or list(by_period.values())[-1]
            if lab == UNKNOWN:
                unknown += 1
                continue
            out[pid] = lab
    if unknown:
        notes.append(f"{unknown} sample plots were labelled unknown and are left out of the estimates")
    return out, notes


@dataclass(frozen=True)
class SampleEstimate:
    """The estimates of one labelled sample and where they were written."""

    sample: SampleDesign
    assessment: Assessment
    labels_path: Path
    labelled: int
    unlabelled: list[str]
    map_source: str
    json_path: Path | None
    markdown_path: Path | None

    @classmethod
    def open(cls, path: str | Path) -> SampleEstimate:
        """Read the estimate a sample folder holds (``estimate.json``) without estimating again."""
        path = Path(path)
        jpath = path / "estimate.json"
        if not jpath.exists():
            raise InputError(f"{path} holds no estimate.json; run `landuse assess estimate {path}` first")
        try:
            d = json.loads(jpath.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{jpath} is not valid JSON ({exc}); run landuse assess estimate again") from None
        md = path / "estimate.md"
        return cls(SampleDesign.open(path), assessment_from_dict(d), Path(d.get("labels", "")), int(d.get("labelled_plots", 0)),
                   list(d.get("unlabelled_plots") or []), str(d.get("map", "")), jpath, md if md.exists() else None)

    def to_dict(self) -> dict[str, Any]:
        d = self.assessment.to_dict()
        d.update({
            "sample": str(self.sample.path), "kind": self.sample.kind, "periods": self.sample.periods,
            "map": self.map_source, "design_source": self.sample.source, "labels": str(self.labels_path),
            "labelled_plots": self.labelled, "unlabelled_plots": list(self.unlabelled),
            "toolkit": {"name": "landuse", "version": __version__},
        })
        return d


def estimate_sample(
    sample: str | Path | SampleDesign,
    *,
    labels: str | Path | None = None,
    map_source: str | Path | None = None,
    fpc: bool = True,
    write: bool = True,
) -> SampleEstimate:
    """Estimate accuracy and error-adjusted areas from a labelled sample.

    ``map_source`` assesses another run (or change folder) of the same grid with this sample: its
    classes become the map classes and the design's strata stay, so the Stehman (2014) estimator
    applies. Writes ``estimate.json`` and ``estimate.md`` into the sample folder when ``write``.
    """
    design = sample if isinstance(sample, SampleDesign) else SampleDesign.open(getattr(sample, "path", sample))
    map_source = getattr(map_source, "path", map_source)
    lpath = find_labels(design.path, labels)
    ref, notes = reference_classes(design, read_labels(lpath))
    unlabelled = [pid for pid in design.plot_ids if pid not in ref]
    plots = [p for p in design.plots if p["plot_id"] in ref]
    if not plots:
        raise InputError(f"none of the {design.n} sample plots has a usable label in {lpath}; label them first")
    pop_strata, pop_area = read_strata(design)
    if map_source is None:
        mapped = [str(p["map_class"]) for p in plots]
        mapped_area = {s.name: s.area_ha for s in design.strata}
        source = design.source
    else:
        other = load_population(map_source)
        design.grid.require_equal(other.grid, what=f"the sample {design.path} and the map {map_source}")
        if other.kind != design.kind:
            raise InputError(f"the sample is of a {design.kind} map but {map_source} is a {other.kind}; assess a map of the same kind")
        cls_grid = np.full(design.grid.shape, NOT_MAPPED, dtype=object)
        cls_grid[other.rows, other.cols] = other.map_class
        mapped = [str(cls_grid[p["row"], p["col"]]) for p in plots]
        in_pop = pop_strata >= 0
        mapped_area = {str(c): float(pop_area[in_pop & (cls_grid == c)].sum()) for c in np.unique(cls_grid[in_pop]).tolist()}
        source = str(map_source)
    tags = list(design.manifest.get("tags") or [])
    if design.kind == "change":
        order = [f"{a}{ARROW}{b}" for a in tags for b in tags]
    else:
        order = list(tags)
    present = set(mapped) | set(ref[p["plot_id"]] for p in plots) | {k for k, v in mapped_area.items() if v > 0}
    classes = [c for c in order if c in present] + sorted(present - set(order))
    groups = None
    if design.kind == "change":
        change = [c for c in classes if ARROW in c and c.split(ARROW)[0] != c.split(ARROW)[1]]
        groups = {"any change": change}
    acc = assess(
        [str(p["stratum"]) for p in plots], mapped, [ref[p["plot_id"]] for p in plots],
        {s.name: s.plots for s in design.strata},
        unit_area=[float(p["area_ha"]) for p in plots],
        total_area=float(sum(s.area_ha for s in design.strata)),
        mapped_area=mapped_area, classes=classes, groups=groups, area_unit="ha", fpc=fpc,
    )
    warn = list(notes)
    if unlabelled:
        warn.append(f"{len(unlabelled)} of {design.n} sample plots have no label yet; estimates use the {len(plots)} labelled ones")
    acc = replace(acc, warnings=[*acc.warnings, *warn])
    res = SampleEstimate(design, acc, lpath, len(plots), unlabelled, source, None, None)
    if not write:
        return res
    jpath, mpath = design.path / "estimate.json", design.path / "estimate.md"
    atomic_write_json(jpath, res.to_dict())
    title = "How sure are these hectares?"
    periods = " -> ".join(design.periods)
    md = assessment_markdown(acc, title=f"{title} ({periods})")
    atomic_write_bytes(mpath, md.encode())
    return SampleEstimate(design, acc, lpath, len(plots), unlabelled, source, jpath, mpath)


def describe_design(d: SampleDesign) -> str:
    """A few lines for the terminal."""
    lines = [f"sample of {d.n} plots in {len(d.strata)} strata from {d.source} ({d.kind}, seed {d.seed}); {d.sizing.get('rule')}"]
    for s in d.strata:
        lines.append(f"  {s.name}: {s.n} of {s.plots} plots ({s.area_ha:.1f} ha), inclusion probability {s.inclusion_probability:.3f}")
    se = d.sizing.get("expected_se_overall_accuracy")
    if se is not None:
        lines.append(f"expected standard error of overall accuracy: {se:.3f} (if user's accuracies are as expected)")
    return "\n".join(lines)


def describe_estimate(e: SampleEstimate) -> str:
    """The areas as ``value ± interval`` and the accuracies, for the terminal."""
    a = e.assessment
    lines = [f"{a.method}; {e.labelled} labelled plots" + (f" ({len(e.unlabelled)} unlabelled)" if e.unlabelled else "")]
    ov = a.overall
    if ov.value is not None:
        lines.append(f"overall accuracy {ov.value:.3f}" + (f" ± {ov.ci:.3f}" if ov.ci is not None else ""))
    for c in a.classes:
        ar = a.area[c]
        if ar.value is None:
            continue
        ci = f" ± {ar.ci:,.1f}" if ar.ci is not None else ""
        lines.append(f"  {c}: {ar.value:,.1f}{ci} ha (mapped {a.mapped_area.get(c, 0.0):,.1f} ha)")
    for g, ar in a.groups.items():
        if ar.value is not None:
            lines.append(f"  {g}: {ar.value:,.1f}" + (f" ± {ar.ci:,.1f}" if ar.ci is not None else "") + " ha")
    for w in a.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines)
