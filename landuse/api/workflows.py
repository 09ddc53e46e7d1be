"""``landuse.run(workflow)``: a declarative job file run as API calls (dataset? -> train? ->
evaluate? -> grid -> classify each period -> change -> report).

Each step is an API call; its equivalent command line is kept beside it (``--dry-run`` prints
those). Finished work is reused: a period whose run is complete is not classified again, and a
run made with other settings (another model: the workflow trained a new one) is refused unless
``overwrite``, which replaces it atomically (:func:`landuse.api.classify`).
"""

from __future__ import annotations

import datetime as dt
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from landuse.api import jobs
from landuse.api.options import (
    ChangeOptions,
    ClassifyOptions,
    CustomVisionOptions,
    ReportOptions,
    TrainOptions,
)
from landuse.errors import LanduseError, WorkflowError

if TYPE_CHECKING:
    from landuse.training.evaluate import Evaluation
    from landuse.workflow import Workflow

from landuse.results import Change, GridResult, Run, TrainedModel

__all__ = ["Step", "WorkflowResult", "plan", "run", "steps"]
PUBLIC = ["WorkflowResult", "run"]  # what landuse.api exports of this module


@dataclass(frozen=True)
class Step:
    """One step of a workflow: a title, the API call, and the equivalent ``landuse`` arguments."""

    title: str
    argv: list[str]
    call: Callable[[], object] = field(repr=False)

    @property
    def command(self) -> str:
        return f"landuse {shlex.join(self.argv)}"


@dataclass
class WorkflowResult:
    """What a workflow did: its runs (by period name), change, report and trained model."""

    name: str
    output: Path
    steps: list[str] = field(default_factory=list)
    runs: dict[str, Run] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    report: Path | None = None
    model: TrainedModel | None = None
    evaluation: Evaluation | None = None
    seconds: float = 0.0

    @property
    def change(self) -> Change | None:
        """The first -> last period change (the only one with two periods)."""
        return self.changes[-1] if self.changes else None

    def describe(self) -> str:
        lines = [f"{self.name}: done in {self.seconds:.0f} s; outputs in {self.output}/"]
        c = self.change
        if c is not None and c.urbanization.tag:
            u = c.urbanization
            a, b = c.periods
            lines.append(f"Urbanization {a} -> {b}: {u.total_ha:.1f} ha became {u.tag} (confident; "
                         f"up to {u.upper_bound_ha:.1f} ha with the uncertain plots)")
            for src, ha in u.by_source_ha.items():
                lines.append(f"  {src:>12} -> {u.tag}: {ha:8.1f} ha ({u.by_source_plots[src]} plots)")
        if self.report is not None:
            lines.append(f"Report: {self.report}")
        return "\n".join(lines)


def _opt(args: list[str], flag: str, value: object) -> None:
    if value is not None:
        args += [flag, str(value)]


def plan(path: str | Path, progress: bool = False, overwrite: bool = False) -> tuple[Workflow, list[Step]]:
    """The workflow file parsed and validated, and its steps in order (every path checked first)."""
    from landuse.workflow import load_workflow

    wf, base = load_workflow(path)
    return wf, steps(wf, base, progress, overwrite)


def steps(wf: Workflow, base: Path, progress: bool = False, overwrite: bool = False) -> list[Step]:
    """The steps of a validated workflow whose relative paths resolve against ``base``
    (``overwrite``: its classify steps replace finished runs; the other steps always do)."""
    from landuse.grid import aoi_of
    from landuse.workflow import expand_imagery, resolve, stac_args, stac_source

    out = Path(resolve(base, wf.output))
    todo: list[Step] = []
    model = wf.model if wf.model == "default" else resolve(base, wf.model)
    dataset_dir = None
    if wf.dataset is not None:
        d = wf.dataset
        dataset_dir = str(out / d.out)
        dimagery = expand_imagery(base, d.imagery, "dataset.imagery")
        labels, mapping = resolve(base, d.labels), resolve(base, d.mapping) if d.mapping else None
        args = ["dataset", *dimagery, "--labels", labels, "--out", dataset_dir, "--overwrite"]
        for flag, val in (("--mapping", mapping), ("--per-class", d.per_class), ("--purity", d.purity),
                          ("--min-valid", d.min_valid)):
            _opt(args, flag, val)
        todo.append(Step("dataset", args, partial(jobs.dataset, dataset_dir, dimagery, labels=labels, mapping=mapping,
                                                   purity=d.purity, per_class=d.per_class, overwrite=True,
                                                   min_valid=0.99 if d.min_valid is None else d.min_valid)))
    if wf.train is not None and wf.train.init is not None:
        t = wf.train
        model_dir = str(out / t.out)
        data = resolve(base, t.dataset) if t.dataset is not None else str(dataset_dir)
        init = t.init if t.init == "default" else resolve(base, wf.train.init)
        # adaptation is fast and deterministic, so a rerun simply refits (new labels included)
        args = ["train", data, "--init", init, "--out", model_dir, "--overwrite"]
        _opt(args, "--label-weight", t.label_weight)
        todo.append(Step("train", args, partial(jobs.train, data, model_dir, init=init, label_weight=t.label_weight,
                                                 overwrite=True, command=f"landuse {shlex.join(args)}")))
        if t.use_for_runs:
            model = model_dir
    elif wf.train is not None:
        t = wf.train
        model_dir = str(out / t.out)
        data = resolve(base, t.dataset) if t.dataset is not None else str(dataset_dir)
        topts = TrainOptions()
        topts.epochs = t.epochs if t.epochs is not None else topts.epochs
        topts.folds = t.folds if t.folds is not None else topts.folds
        topts.image_size = t.image_size if t.image_size is not None else topts.image_size
        topts.seed = t.seed if t.seed is not None else topts.seed
        topts.int8 = t.int8
        args = ["train", data, "--backend", t.backend, "--out", model_dir]
        for flag, val in (("--epochs", t.epochs), ("--folds", t.folds), ("--image-size", t.image_size), ("--seed", t.seed)):
            _opt(args, flag, val)
        if t.int8:
            args.append("--int8")
        todo.append(Step("train", args, partial(jobs.train, data, model_dir, backend=t.backend,
                                                 options=topts, command=f"landuse {shlex.join(args)}")))
        if t.use_for_runs:
            model = model_dir
    if wf.evaluate is not None:
        e = wf.evaluate
        args = ["evaluate", model, resolve(base, e.dataset), "--threshold", str(e.threshold)]
        todo.append(Step("evaluate", args, partial(jobs.evaluate, model, resolve(base, e.dataset), threshold=e.threshold)))
    if not wf.periods:
        return todo
    grid_file = str(out / "grid.json")
    imagery = {p.name: expand_imagery(base, p.imagery, f"periods[{p.name}].imagery") if p.imagery else []
               for p in wf.periods}
    g = wf.grid
    aoi = aoi_of(resolve(base, g.aoi) if g.aoi else None, g.aoi_where)
    if any(p.stac for p in wf.periods) and not (g.aoi or g.file):
        raise WorkflowError("a period with 'stac' needs grid.aoi (the area to search) or grid.file")
    if g.file:
        grid_file = resolve(base, g.file)
        if not Path(grid_file).exists():
            raise WorkflowError(f"grid.file: {g.file!r} does not exist (resolved to {grid_file}); fix the path or remove the key")
    else:
        every = [f for files in imagery.values() for f in files]
        args = ["grid", *every, "--out", grid_file, "--plot-size", f"{g.plot_size:g}", "--overwrite"]
        _opt(args, "--crs", g.crs)
        _opt(args, "--aoi", g.aoi and resolve(base, g.aoi))
        _opt(args, "--aoi-where", g.aoi_where)
        todo.append(Step("grid", args, partial(jobs.grid, every, aoi=aoi, crs=g.crs, plot_size_m=g.plot_size,
                                                out=grid_file, overwrite=True)))
    pl = wf.pipeline
    copts = ClassifyOptions(min_valid=pl.min_valid, scheduler=pl.scheduler, workers=pl.workers,
                            **{k: v for k, v in (("chunk_plots", pl.chunk_plots), ("batch_size", pl.batch_size)) if v is not None})
    cv = CustomVisionOptions(tier=wf.customvision.tier, tps=wf.customvision.tps, store=wf.customvision.store)
    runs: list[str] = []
    periods: list[str] = []
    for p in wf.periods:
        run_dir = str(out / "runs" / p.name)
        period = p.date.isoformat() if isinstance(p.date, dt.date) else (str(p.date) if p.date else p.name)
        runs.append(run_dir)
        periods.append(period)
        args = ["classify", *imagery[p.name], *stac_args(base, p.stac), "--period", period, "--out", run_dir, "--grid", grid_file,
                "--min-valid", str(pl.min_valid), "--scheduler", pl.scheduler]
        if wf.backend == "onnx":
            args += ["--model", model]
        else:
            args += ["--backend", "customvision", "--tier", wf.customvision.tier]
            _opt(args, "--tps", wf.customvision.tps)
            if wf.customvision.store:
                args.append("--store")
        _opt(args, "--aoi", g.aoi and resolve(base, g.aoi))
        _opt(args, "--aoi-where", g.aoi_where)
        for flag, val in (("--workers", pl.workers), ("--chunk-plots", pl.chunk_plots), ("--batch-size", pl.batch_size)):
            _opt(args, flag, val)
        if p.bands:
            args += ["--bands", ",".join(map(str, p.bands))]
        if p.stretch is not None:
            args += ["--stretch", p.stretch if isinstance(p.stretch, str) else ",".join(f"{v:g}" for v in p.stretch)]
        if overwrite:
            args.append("--overwrite")
        todo.append(Step(f"classify {p.name}", args, partial(
            jobs.classify, imagery[p.name], run_dir, period=period, model=model, backend=wf.backend, grid=grid_file,
            aoi=aoi, bands=p.bands, options=copts, customvision=cv, progress=progress, stac=stac_source(base, p.stac),
            stretch=p.stretch, overwrite=overwrite)))
    if len(runs) >= 2 and wf.change.enabled:
        c = wf.change
        change_dir = str(out / "change")
        args = ["change", *runs, "--out", change_dir, "--min-confidence", str(c.min_confidence),
                "--hotspot-block", str(c.hotspot_block), "--overwrite", "--smooth" if c.smooth else "--no-smooth"]
        chopts = ChangeOptions(min_confidence=c.min_confidence, smooth=c.smooth, hotspot_block=c.hotspot_block)
        todo.append(Step("change", args, partial(jobs.change_series, runs, change_dir, options=chopts, overwrite=True)))
        if wf.report.enabled:
            r = wf.report
            report_file = str(out / r.file)
            change_of_report = change_dir if len(runs) == 2 else str(Path(change_dir) / jobs.series_folder(periods[0], periods[-1]))
            args = ["report", runs[0], runs[-1], "--out", report_file, "--basemap", r.basemap, "--overwrite",
                    "--change", change_of_report, "--thumbnails" if r.thumbnails else "--no-thumbnails"]
            ropts = ReportOptions(basemap=r.basemap, thumbnails=r.thumbnails)
            todo.append(Step("report", args, partial(jobs.report, runs[0], runs[-1], report_file,
                                                      change=change_of_report, options=ropts, overwrite=True)))
    if wf.assess is not None:
        from landuse.assess import design_sample, estimate_sample
        from landuse.workflow import assess_plan

        change_source = None
        if len(runs) >= 2 and wf.change.enabled:
            change_source = str(out / "change") if len(runs) == 2 else str(out / "change" / jobs.series_folder(periods[0], periods[-1]))
        for title, args, kw in assess_plan(wf, base, out, runs, change_source):
            job = design_sample if title == "assess design" else estimate_sample
            todo.append(Step(title, args, partial(job, **kw)))
    return todo


def run(
    workflow: str | Path,
    *,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> WorkflowResult:
    """Run a workflow file (YAML, see ``workflows/``). Finished steps are reused: a rerun
    continues where it stopped. ``overwrite`` replaces finished runs of the periods (atomically:
    a failed step leaves the old run), e.g. after a rerun trained a new model; without it such a
    run is refused. ``progress`` receives a line per step (and per step result)."""
    from landuse.report.webmap import ReportResult
    from landuse.training.evaluate import Evaluation
    from landuse.workflow import resolve

    wf, todo = plan(workflow, progress=progress is not None, overwrite=overwrite)
    base = Path(workflow).resolve().parent
    result = WorkflowResult(wf.name, Path(resolve(base, wf.output)))
    t0 = time.perf_counter()
    say = progress or (lambda _text: None)
    for i, step in enumerate(todo, 1):
        say(f"[{i}/{len(todo)}] {step.title}")
        try:
            value = step.call()
        except LanduseError as exc:
            text = f"workflow {workflow} step '{step.title}': {exc}"
            try:
                again = type(exc)(text, param=exc.param)
            except TypeError:  # an error class of its own signature
                again = LanduseError(text, param=exc.param)
            raise again from None
        result.steps.append(step.title)
        if isinstance(value, Run):
            result.runs[step.title.removeprefix("classify ")] = value
            if not value.did_work:
                say(value.message)
        elif isinstance(value, list) and value and isinstance(value[0], Change):
            result.changes = value
            for c in value:
                say(c.describe())
        elif isinstance(value, ReportResult):
            result.report = value.path
            say(f"wrote {value.path} ({value.bytes / 1e6:.1f} MB)")
        elif isinstance(value, TrainedModel):
            result.model = value
        elif isinstance(value, Evaluation):
            result.evaluation = value
        elif isinstance(value, GridResult):
            say(value.describe())
    result.seconds = time.perf_counter() - t0
    return result
