"""Declarative job files (YAML) for the common jobs: ``landuse run WORKFLOW.yaml``.

A workflow names its periods (imagery globs or lists, a date or year), the grid settings, the
backend and model, pipeline settings, change and report options, and an output folder. Relative
paths resolve against the workflow file. Each step reuses finished work: a period whose run is
complete is not classified again (the run store resumes), so rerunning a workflow after a failure
continues where it stopped.

The runner (:mod:`landuse.api.workflows`, ``landuse.run``) turns a workflow into API calls; each
step keeps its equivalent command line (``landuse run --dry-run`` prints them).
"""

from __future__ import annotations

import datetime as dt
import glob as globlib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from landuse import defaults
from landuse.errors import WorkflowError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GridSpec(_Strict):
    """How the one plot grid of all periods is made."""

    plot_size: float = Field(defaults.PLOT_SIZE_M, gt=0, description="plot side in metres")
    crs: str | None = Field(None, description="projected CRS (default: the imagery's, else UTM of the centre)")
    aoi: str | None = Field(None, description="AOI polygon file: plots whose centre lies inside")
    aoi_where: str | None = Field(None, description="attribute filter on the AOI's features, e.g. GEOID = '06025'")
    file: str | None = Field(None, description="an existing grid.json to use instead")


class StacSpec(_Strict):
    """A period's imagery from a STAC search (see ``landuse search``); the area is the grid's AOI."""

    url: str = Field(..., min_length=1, description="STAC API root URL, or a catalog / item collection file")
    collections: list[str] = Field(default_factory=list, description="collection ids, e.g. [naip]")
    datetime: str | int | None = Field(None, description="a year, a date or a range START/END")
    query: dict[str, Any] | None = Field(None, description="STAC query extension object")
    filter: str | dict[str, Any] | None = Field(None, description="CQL2 filter (text or JSON)")
    asset: str | None = Field(None, description="asset key (default: image, else the GeoTIFF data asset)")

    @field_validator("collections", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class PeriodSpec(_Strict):
    """One period: a name, its imagery (files or a STAC search) and (optionally) a date or year."""

    name: str = Field(..., min_length=1)
    imagery: list[str] | None = Field(None, min_length=1, description="files, globs, VRTs or GDAL URLs")
    stac: StacSpec | None = Field(None, description="or: the imagery a STAC search finds")
    date: dt.date | int | None = Field(None, description="acquisition date or year (for annual rates)")
    bands: list[int] | None = Field(None, description="1-based source bands for R, G, B")
    stretch: str | list[float] | None = Field(
        None, description="non-8-bit imagery to 0..255: 'auto' (2-98 percentiles), [low, high] or [low, high] x 3 (R, G, B)"
    )

    @field_validator("imagery", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _one_source(self) -> PeriodSpec:
        if (self.imagery is None) == (self.stac is None):
            raise ValueError("give a period either 'imagery' (files) or 'stac' (a search), not both or neither")
        return self


class PipelineSpec(_Strict):
    scheduler: str = Field(defaults.SCHEDULER, description="auto | local | synchronous | threads | tcp://HOST:PORT")
    workers: int | None = Field(None, ge=1)
    chunk_plots: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1)
    min_valid: float = Field(defaults.MIN_VALID, ge=0.0, le=1.0)


class CustomVisionSpec(_Strict):
    """Cloud backend settings; credentials always come from the environment (LANDUSE_CV_*)."""

    tier: Literal["F0", "S0"] = "S0"
    tps: float | None = Field(None, gt=0)
    store: bool = False


class ChangeSpec(_Strict):
    enabled: bool = True
    min_confidence: float = Field(defaults.MIN_CONFIDENCE, ge=0.0, le=1.0)
    smooth: bool = False
    hotspot_block: int = Field(defaults.HOTSPOT_BLOCK, ge=1)


class ReportSpec(_Strict):
    enabled: bool = True
    basemap: str = "none"
    thumbnails: bool = True
    file: str = "report.html"


class DatasetSpec(_Strict):
    """Labelled plots from imagery and a land-cover raster (``landuse dataset IMAGERY --labels``)."""

    imagery: list[str] = Field(..., min_length=1, description="files or globs of the imagery to cut plots from")
    labels: str = Field(..., description="land-cover raster (NLCD codes by default)")
    mapping: str | None = Field(None, description="YAML mapping of raster codes to tags")
    per_class: int | None = Field(None, ge=1)
    purity: float | None = Field(None, gt=0.0, le=1.0)
    min_valid: float | None = Field(None, ge=0.0, le=1.0, description="least imaged share of a chip (default 0.99)")
    out: str = Field("dataset", description="dataset folder, inside the output folder")

    @field_validator("imagery", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class TrainSpec(_Strict):
    dataset: str | None = Field(None, description="tag-per-folder dataset (default: the dataset step's)")
    init: str | None = Field(None, description="adapt this model (e.g. default) instead of training from scratch")
    label_weight: float | None = Field(None, gt=0, description="init: weight of a new label relative to a base plot")
    backend: Literal["local", "customvision"] = "local"
    epochs: int | None = Field(None, ge=1)
    folds: int | None = Field(None, ge=2)
    image_size: int | None = Field(None, ge=32)
    seed: int | None = None
    int8: bool = False
    out: str = "model"
    use_for_runs: bool = True


class EvaluateSpec(_Strict):
    dataset: str
    threshold: float = Field(defaults.THRESHOLD, ge=0.0, le=1.0)


class AssessSpec(_Strict):
    """A reference sample of the change map (or of the last period's run) and, once it is
    labelled, its error-adjusted areas (``landuse assess design`` / ``estimate``)."""

    of: Literal["change", "last"] = Field("change", description="sample the change map, or the last period's run")
    n: int | None = Field(None, ge=1, description="sample size (default: from target_se)")
    target_se: float = Field(defaults.ASSESS_TARGET_SE, gt=0, lt=1)
    expected_ua: float = Field(defaults.ASSESS_EXPECTED_UA, gt=0, lt=1)
    min_per_stratum: int = Field(defaults.ASSESS_MIN_PER_STRATUM, ge=0)
    seed: int = 0
    out: str = Field(defaults.ASSESS_SAMPLE, description="sample folder, inside the output folder")
    labels: str | None = Field(None, description="labels index (labels.csv or its folder); default: the sample's own")


class Workflow(_Strict):
    """A whole job: dataset? -> train? -> classify each period -> change -> report."""

    name: str = "landuse job"
    output: str = Field(..., description="output folder (relative to this file)")
    backend: Literal["onnx", "customvision"] = "onnx"
    model: str = "default"
    grid: GridSpec = GridSpec()
    pipeline: PipelineSpec = PipelineSpec()
    customvision: CustomVisionSpec = CustomVisionSpec()
    periods: list[PeriodSpec] = Field(default_factory=list)
    change: ChangeSpec = ChangeSpec()
    report: ReportSpec = ReportSpec()
    dataset: DatasetSpec | None = None
    train: TrainSpec | None = None
    evaluate: EvaluateSpec | None = None
    assess: AssessSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> Workflow:
        names = [p.name for p in self.periods]
        if len(set(names)) != len(names):
            raise ValueError(f"period names must be unique, got {names}")
        if not self.periods and self.train is None:
            raise ValueError("a workflow needs 'periods' (at least one) or a 'train' step")
        if self.train is not None and self.train.dataset is None and self.dataset is None:
            raise ValueError("train needs 'dataset' (a tag-per-folder folder) or a top-level 'dataset' step")
        return self


def _line_of(text: str, loc: tuple) -> int | None:
    """Line (1-based) of the YAML node at ``loc`` (pydantic error location), best effort."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if k.value == key:
                    line, nxt = k.start_mark.line + 1, v
                    break
            if nxt is None:
                return line if line is not None else (node.start_mark.line + 1)
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


def load_workflow(path: str | Path) -> tuple[Workflow, Path]:
    """Parse and validate a workflow file; returns it and the folder relative paths resolve against."""
    from landuse.fileio import read_text

    path = Path(path)
    text = read_text(path, "workflow", WorkflowError)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise WorkflowError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)}); fix the syntax") from None
    if not isinstance(data, dict):
        raise WorkflowError(f"{path}: a workflow is a YAML mapping (keys output, periods, ...); see workflows/sample_county.yaml")
    try:
        wf = Workflow.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(text, loc)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see workflows/sample_county.yaml for the format)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        where = f" line {line}" if line else ""
        raise WorkflowError(f"{path}{where}: {key}: {msg}") from None
    return wf, path.resolve().parent


def resolve(base: Path, value: str) -> str:
    """A path of the workflow made absolute against its folder (URLs and /vsi paths untouched)."""
    if "://" in value or value.startswith("/vsi"):
        return value
    p = Path(value).expanduser()
    return os.path.normpath(p if p.is_absolute() else (base / p))


def expand_imagery(base: Path, patterns: list[str], where: str) -> list[str]:
    """Resolve and glob a period's imagery; a pattern matching nothing is an error."""
    out: list[str] = []
    for pat in patterns:
        full = resolve(base, pat)
        if "://" in full or full.startswith("/vsi"):
            out.append(full)
            continue
        hits = sorted(globlib.glob(full)) if any(ch in full for ch in "*?[") else ([full] if Path(full).exists() else [])
        if not hits:
            raise WorkflowError(f"{where}: {pat!r} matches no file (resolved to {full}); fix the path, relative to the workflow file")
        out.extend(hits)
    return out


def assess_plan(wf: Workflow, base: Path, out: Path, runs: list[str], change_source: str | None) -> list[tuple[str, list[str], dict[str, Any]]]:
    """The ``assess`` steps as (title, landuse CLI arguments, keyword arguments of the API call).

    The design step is left out when the sample folder already holds a design (a rerun keeps the
    sample and its labels); the estimate runs once there are labels."""
    a = wf.assess
    if a is None or not runs:
        return []
    source = change_source if a.of == "change" else runs[-1]
    if source is None:
        raise WorkflowError("assess.of: 'change' needs two or more periods and change enabled; use 'of: last' to sample the last run")
    sample = out / a.out
    steps: list[tuple[str, list[str], dict[str, Any]]] = []
    if not (sample / "design.json").exists():
        args = ["assess", "design", source, "--out", str(sample), "--target-se", f"{a.target_se:g}", "--expected-ua",
                f"{a.expected_ua:g}", "--min-per-stratum", str(a.min_per_stratum), "--seed", str(a.seed)]
        if a.n is not None:
            args += ["--n", str(a.n)]
        steps.append(("assess design", args, {"source": source, "out": str(sample), "n": a.n, "target_se": a.target_se,
                                              "expected_users": a.expected_ua, "min_per_stratum": a.min_per_stratum, "seed": a.seed}))
    labels = resolve(base, a.labels) if a.labels else None
    if labels is not None or (sample / "labels.csv").exists() or (sample / "labels" / "labels.csv").exists():
        args = ["assess", "estimate", str(sample), *(["--labels", labels] if labels else [])]
        steps.append(("assess estimate", args, {"sample": str(sample), "labels": labels}))
    return steps


def stac_source(base: Path, stac: StacSpec | None) -> Any:
    """The :class:`landuse.stac.StacSource` of a period's search (None without one); a catalog
    file resolves against the workflow's folder."""
    if stac is None:
        return None
    from landuse.stac import StacSource

    url = stac.url if stac.url.startswith(("http://", "https://")) else resolve(base, stac.url)
    return StacSource.of(url, stac.collections, stac.datetime, stac.query, stac.filter, stac.asset)


def stac_args(base: Path, stac: StacSpec | None) -> list[str]:
    """``classify`` options of a period's STAC search (a catalog file resolves against the workflow)."""
    if stac is None:
        return []
    import json

    url = stac.url if stac.url.startswith(("http://", "https://")) else resolve(base, stac.url)
    args = ["--stac", url]
    for c in stac.collections:
        args += ["--collection", c]
    if stac.datetime is not None:
        args += ["--datetime", str(stac.datetime)]
    if stac.query is not None:
        args += ["--stac-query", json.dumps(stac.query)]
    if stac.filter is not None:
        args += ["--stac-filter", stac.filter if isinstance(stac.filter, str) else json.dumps(stac.filter)]
    if stac.asset:
        args += ["--asset", stac.asset]
    return args
