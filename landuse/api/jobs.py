"""The jobs of the toolkit, one typed function each. The ``landuse`` CLI, the workflow runner
and the notebooks call these; each takes plain arguments (paths, numbers, a model spec, an
options dataclass where there are many) and returns a typed result.

Model specs (one grammar everywhere): ``"default"`` (the bundled model), a Custom Vision export
(zip or folder), a ``.onnx`` file, or ``"py:package.module:factory"`` (a callable returning any
:class:`~landuse.classify.base.Classifier`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from landuse import defaults
from landuse.agreement import parity
from landuse.api.options import (
    ChangeOptions,
    ClassifyOptions,
    CustomVisionOptions,
    CVTrainOptions,
    ReportOptions,
    TrainOptions,
)
from landuse.errors import InputError, OutputExistsError
from landuse.fileio import safe_name
from landuse.results import (
    Change,
    GridResult,
    LabelledDataset,
    Prediction,
    Predictions,
    Run,
    TrainedModel,
)

if TYPE_CHECKING:
    from landuse.change import Run as RunArrays
    from landuse.grid import AoiLike
    from landuse.pipeline import RunResult
    from landuse.report.webmap import ReportResult
    from landuse.stac import StacSource
    from landuse.tiler import TileResult
    from landuse.training.evaluate import Evaluation
    from landuse.training.review import ReviewResult

PathLike = str | Path
Say = Callable[[str], None]

__all__ = [
    "grid",
    "tile",
    "classify",
    "classify_plan",
    "change",
    "change_series",
    "report",
    "evaluate",
    "train",
    "dataset",
    "review",
    "parity",
    "predict",
    "safe_name",
    "series_folder",
]


def _check_writable(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass `overwrite=True` to replace it or choose another `out`")


# -- the plot grid and chips -------------------------------------------------------------------


def grid(
    imagery: Sequence[PathLike] = (),
    *,
    aoi: AoiLike | None = None,
    crs: str | None = None,
    plot_size_m: float = defaults.PLOT_SIZE_M,
    out: PathLike | None = None,
    geojson: PathLike | None = None,
    overwrite: bool = False,
    yes: bool = False,
) -> GridResult:
    """The plot grid covering ``imagery`` (or ``aoi``), cropped to the AOI's plots when given;
    written to ``out`` (grid.json) and ``geojson`` (EPSG:4326 plots) when given (a GeoJSON of
    more plots than :data:`landuse.plan.CONFIRM_PLOTS` needs ``yes``)."""
    from landuse.grid import PlotGrid
    from landuse.report.files import write_grid_geojson

    if not imagery and aoi is None:
        raise InputError("give imagery files or an aoi to build the grid from")
    out_p = Path(out) if out is not None else None
    geo_p = Path(geojson) if geojson is not None else None
    for p in (out_p, geo_p):
        if p is not None:
            _check_writable(p, overwrite)
    if imagery:
        g = PlotGrid.from_rasters([Path(p) for p in imagery], crs=crs, plot_size_m=plot_size_m)
    else:
        assert aoi is not None
        g = PlotGrid.from_aoi(aoi, crs=crs, plot_size_m=plot_size_m)
    mask = None
    if aoi is not None:
        g, mask = g.crop_to_mask(g.aoi_mask(aoi))
    if geo_p is not None:
        from landuse.plan import check_job

        check_job("grid", g, plots=int(mask.sum()) if mask is not None else None, yes=yes)
    if out_p is not None:
        g.save(out_p)
    if geo_p is not None:
        write_grid_geojson(g, geo_p, mask)
    return GridResult(g, mask, out_p, geo_p)


def tile(
    imagery: Sequence[PathLike],
    out: PathLike,
    *,
    grid: PathLike | None = None,
    aoi: PathLike | None = None,
    crs: str | None = None,
    plot_size_m: float | None = None,
    min_valid: float = defaults.MIN_VALID,
    fmt: Literal["png", "tif"] = "png",
    size: int = 224,
    bands: Sequence[int] | str | None = None,
    stretch: str | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    yes: bool = False,
) -> TileResult:
    """Which plots of the grid the imagery covers, and one chip per plot with at least
    ``min_valid`` valid pixels (``out/chips/``, ``out/index.geojson``, ``out/grid.json``).
    Imagery coarser than 1/8 of the plot is refused; a job over the stated size needs ``yes``."""
    from landuse.grid import PlotGrid
    from landuse.imagery import Scene
    from landuse.tiler import tile as tile_scene

    scene = Scene.open([str(p) for p in imagery], bands=bands, stretch=stretch)
    if grid is not None:
        if crs is not None or plot_size_m is not None:
            raise InputError("crs and plot_size_m apply only to a grid built here, not to a given grid file; drop them or the grid")
        g = PlotGrid.load(grid)
    elif aoi is not None:
        g = PlotGrid.from_aoi(aoi, crs=crs, plot_size_m=plot_size_m or defaults.PLOT_SIZE_M)
    else:
        g = PlotGrid.from_footprints(scene.footprints(), crs=crs, plot_size_m=plot_size_m or defaults.PLOT_SIZE_M)
    mask = g.aoi_mask(aoi) if aoi is not None else None
    return tile_scene(scene, g, out, min_valid=min_valid, fmt=fmt, size=size, plot_mask=mask,
                      overwrite=overwrite, progress=progress, yes=yes)


# -- classification ----------------------------------------------------------------------------


def classify(
    imagery: Sequence[PathLike],
    out: PathLike,
    *,
    period: str,
    stac: StacSource | None = None,
    model: PathLike = defaults.MODEL,
    backend: Literal["onnx", "customvision"] = "onnx",
    grid: PathLike | None = None,
    aoi: AoiLike | None = None,
    plot_size_m: float = defaults.PLOT_SIZE_M,
    bands: Sequence[int] | str | None = None,
    options: ClassifyOptions | None = None,
    customvision: CustomVisionOptions | None = None,
    overwrite: bool = False,
    progress: bool = False,
    stretch: str | Sequence[float] | None = None,
    yes: bool = False,
    wait: bool = False,
) -> Run:
    """Classify every plot of one period's ``imagery`` into the run directory ``out``.

    ``grid`` (a grid.json) keeps periods comparable; without it the grid is built from the AOI
    or the imagery. A rerun resumes an interrupted run; a finished one is not recomputed.
    ``progress`` prints messages and a progress bar on stderr. ``stretch`` maps non-8-bit
    imagery to 0..255 (``"auto"``: 2-98 percentiles; ``(low, high)`` or three such pairs).

    Planned first (:mod:`landuse.plan`): imagery coarser than 1/8 of the plot is refused, and a
    job over the stated size (plots or hours at the measured rate) runs only with ``yes``. The
    run directory is locked while written: another run into it fails naming its pid, or waits
    for it with ``wait``.
    ``stac`` (a
    :class:`landuse.stac.StacSource`, with ``imagery`` empty) reads the items a STAC search finds.

    ``overwrite`` replaces what ``out`` holds (e.g. a run made with another model) atomically:
    the new run is written beside it and swapped in once finished, so a failure leaves the old
    run as it was.
    """
    from landuse.imagery import parse_bands
    from landuse.pipeline import classify_imagery

    opts = options or ClassifyOptions()
    cv = customvision or CustomVisionOptions()

    def into(target: Path, replace_it: bool) -> RunResult:
        return classify_imagery(
            [str(p) for p in imagery],
            target,
            period=period,
            model=model,
            aoi=aoi,
            grid_file=grid,
            plot_size_m=plot_size_m,
            bands=parse_bands(bands),
            backend=backend,
            backend_options=cv.as_backend_options() if backend == "customvision" else None,
            min_valid=opts.min_valid,
            threshold=opts.threshold,
            chunk_plots=opts.chunk_plots,
            batch_size=opts.batch_size,
            scheduler=opts.scheduler,
            workers=opts.workers,
            overwrite=replace_it,
            quiet=not progress,
            stretch=stretch,
            yes=yes,
            wait=wait,
            stac=stac,
        )

    out = Path(out)
    if not (overwrite and out.is_dir() and any(p.name != ".lock" for p in out.iterdir())):
        res = into(out, overwrite)
        return replace(Run.open(res.run_dir), did_work=res.did_work, message=res.message)
    # replace a run atomically: the new one is classified beside it (holding the old one's lock)
    import os
    import stat

    from landuse.fileio import staged_dir
    from landuse.store import RunLock, writing

    lock = RunLock(out, wait=wait)
    with writing(out):
        lock.acquire()
    try:
        with staged_dir(out) as tmp:
            os.chmod(tmp, stat.S_IMODE(out.stat().st_mode))
            res = into(tmp, False)
    finally:
        lock.release(remove=True)
    return replace(Run.open(out), did_work=res.did_work, message=res.message.replace(str(tmp), str(out)))


def classify_plan(
    imagery: Sequence[PathLike],
    *,
    backend: Literal["onnx", "customvision"] = "onnx",
    grid: PathLike | None = None,
    aoi: PathLike | None = None,
    plot_size_m: float = defaults.PLOT_SIZE_M,
    bands: Sequence[int] | str | None = None,
    min_valid: float = defaults.MIN_VALID,
    customvision: CustomVisionOptions | None = None,
    stretch: str | Sequence[float] | None = None,
    workers: int | None = None,
    stac: StacSource | None = None,
) -> str:
    """What :func:`classify` would do, from the imagery footprints and masks only: the plan
    (plots, coarsest pixel, time at the measured rate), plots to classify and (for Custom
    Vision) the calls, cost and time at the quota. Nothing is read or sent. Imagery too coarse
    for the plots is refused here too. For ``stac``: the items the search chooses and the plots
    on them (no pixel read)."""
    from landuse.imagery import Scene
    from landuse.pipeline import load_customvision, plan_grid
    from landuse.plan import check_pixels, check_plot_size, plan_job

    if stac is not None:
        from landuse.stac import dry_run_lines

        lines, plots = dry_run_lines(stac, aoi=aoi, grid_file=grid, plot_size_m=plot_size_m, min_valid=min_valid)
    else:
        check_plot_size(plot_size_m)
        scene = Scene.open([str(p) for p in imagery], bands=bands, stretch=stretch)
        g, mask = plan_grid(scene, grid, aoi, plot_size_m)
        tps = (customvision or CustomVisionOptions()).tps if backend == "customvision" else None
        job = plan_job("classify", g, scene.files, plots=int(mask.sum()) if mask is not None else None,
                       workers=workers, plots_per_s=tps)
        check_pixels(job)
        cov = scene.coverage(g)
        if mask is not None:
            cov = cov * mask
        plots = int((cov >= min_valid).sum())
        lines = [
            f"plan: {job.describe()}",
            f"dry run: {g.describe()}; about {plots} of {g.size} plots have >= {min_valid:g} valid imagery "
            f"(estimated from the masks) and would be classified; {int(((cov > 0) & (cov < min_valid)).sum())} partial, "
            f"{int((cov == 0).sum())} without imagery"
        ]
    if backend == "customvision":
        cv = customvision or CustomVisionOptions()
        clf = load_customvision(None, **{k: v for k, v in cv.as_backend_options().items() if v is not None})
        lines.append(clf.dry_run(plots).describe() + "; no call made")
    else:
        lines.append("nothing was read or classified")
    return "\n".join(lines)


# -- change and report -------------------------------------------------------------------------


def _arrays(run: PathLike | Run) -> RunArrays:
    from landuse.change import load_run

    return run.arrays() if isinstance(run, Run) else load_run(run)


def change(
    run_a: PathLike | Run,
    run_b: PathLike | Run,
    out: PathLike,
    *,
    options: ChangeOptions | None = None,
    overwrite: bool = False,
) -> Change:
    """Compare two runs of one plot grid: transitions, matrices, areas, urbanization, hotspots,
    written to the folder ``out`` (change.geojson, change.tif, CSVs, summary.json / .md)."""
    return _compare(_arrays(run_a), _arrays(run_b), Path(out), options or ChangeOptions(), overwrite)


def change_series(
    runs: Sequence[PathLike | Run],
    out: PathLike,
    *,
    options: ChangeOptions | None = None,
    overwrite: bool = False,
) -> list[Change]:
    """Compare runs in order: each consecutive interval, plus first -> last when more than two.
    Two runs write into ``out``; more write one sub-folder per interval (``<A>_to_<B>``)."""
    from landuse.change import check_order, compare, series_intensity, series_pairs

    opts = options or ChangeOptions()
    loaded = [_arrays(r) for r in runs]
    pairs = series_pairs(loaded)
    for a, b in pairs:  # refuse a wrong order before writing anything
        check_order(a, b, opts.allow_reverse)
    out = Path(out)
    # a series of three or more runs: intensity analysis of its consecutive intervals, in the
    # first -> last summary
    intensity = None
    if len(loaded) > 2:
        intensity = series_intensity([compare(a, b, min_confidence=opts.min_confidence, smooth=opts.smooth, allow_reverse=opts.allow_reverse)
                                      for a, b in pairs[:-1]])
    return [
        _compare(a, b, out if len(pairs) == 1 else out / series_folder(a.period, b.period), opts, overwrite,
                 extra={"intensity": intensity} if intensity is not None and (a, b) == (loaded[0], loaded[-1]) else None)
        for a, b in pairs
    ]


def series_folder(period_a: str, period_b: str) -> str:
    """Sub-folder of one interval of a change series."""
    return f"{safe_name(period_a)}_to_{safe_name(period_b)}"


def _compare(a: RunArrays, b: RunArrays, out: Path, opts: ChangeOptions, overwrite: bool,
             extra: dict[str, object] | None = None) -> Change:
    from landuse.change import compare
    from landuse.report.change_outputs import write_change_outputs
    from landuse.results import ChangeSummary

    comp = compare(a, b, min_confidence=opts.min_confidence, smooth=opts.smooth, allow_reverse=opts.allow_reverse)
    summary = comp.summary(hotspot_block=opts.hotspot_block, developed_tag=opts.developed_tag)
    summary.update(extra or {})
    write_change_outputs(comp, out, summary, overwrite=overwrite)
    import json

    # read back what was written, so the result is exactly what Change.open gives
    doc = json.loads((out / "summary.json").read_text())
    return Change(out, ChangeSummary.from_dict(doc), comp)


def report(
    run_a: PathLike | Run,
    run_b: PathLike | Run,
    out: PathLike,
    *,
    change: PathLike | Change | None = None,
    options: ReportOptions | None = None,
    overwrite: bool = False,
    progress: Say | None = None,
) -> ReportResult:
    """One self-contained HTML web map comparing two runs: class layers, swipe, changes, summary.
    Without ``change`` the runs are compared now with the default change options."""
    from landuse.report.webmap import write_report

    opts = options or ReportOptions()

    def path_of(x: PathLike | Run | Change) -> Path:
        return x.path if isinstance(x, (Run, Change)) else Path(x)

    return write_report(
        path_of(run_a), path_of(run_b), out, change_dir=None if change is None else path_of(change),
        basemap=opts.basemap, thumbnails=opts.thumbnails, imagery_a=opts.imagery_a, imagery_b=opts.imagery_b,
        overwrite=overwrite, thumb_px=opts.thumbnail_px, max_thumbnails=opts.max_thumbnails, progress=progress,
        imagery=opts.imagery,
    )


# -- models: predict, evaluate, train, parity --------------------------------------------------


def predict(
    model: PathLike,
    images: Sequence[PathLike],
    *,
    top: int | None = None,
    threads: int | None = None,
) -> Predictions:
    """Tags and probabilities of whole images (PNG, JPEG, BMP, GeoTIFF), each resized (bilinear)
    to the model's input size, most probable first (``top``: only the first N)."""
    import numpy as np

    from landuse.classify.base import load_classifier
    from landuse.classify.unknown import method_of, predict_with_unknown
    from landuse.training.dataset import load_image

    clf = load_classifier(str(model), **({"threads": threads} if threads else {}))
    size = (int(clf.input_size[0]), int(clf.input_size[1]))
    paths = [Path(p) for p in images]
    outs = [predict_with_unknown(clf, np.stack([load_image(p, size=size) for p in paths[i:i + 32]]))
            for i in range(0, len(paths), 32)]
    probs = np.concatenate([o[0] for o in outs])
    scores = np.concatenate([o[1] for o in outs])
    thr = method_of(clf).threshold
    out = []
    for path, row, sc in zip(paths, probs, scores, strict=True):
        order = np.argsort(-row, kind="stable")[: top or len(row)]
        out.append(Prediction(str(path), [(str(clf.labels[i]), round(float(row[i]), 6)) for i in order],
                              round(float(sc), 6), bool(sc > thr)))
    model_info = {"id": str(clf.model_id), "hash": str(clf.model_hash), "backend": str(clf.backend)}
    return Predictions(model_info, out, [str(t) for t in clf.labels])


def evaluate(
    model: PathLike,
    dataset: PathLike,
    *,
    threshold: float = defaults.THRESHOLD,
    batch_size: int = 32,
    threads: int | None = None,
) -> Evaluation:
    """Precision / recall / AP per tag of ``model`` on a folder-per-tag ``dataset``, as Custom
    Vision's Performance page reports them, with the confusion matrix and the mistakes."""
    from landuse.classify.base import load_classifier
    from landuse.training.evaluate import evaluate_dataset

    options: dict[str, object] = {"batch_size": batch_size}
    if threads:
        options["threads"] = threads
    clf = load_classifier(str(model), **options)
    return evaluate_dataset(clf, Path(dataset), threshold=threshold, batch_size=batch_size)


def train(
    dataset: PathLike,
    out: PathLike,
    *,
    backend: Literal["local", "customvision"] = "local",
    options: TrainOptions | None = None,
    customvision: CVTrainOptions | None = None,
    report: PathLike | None = None,
    overwrite: bool = False,
    progress: Say | None = None,
    command: str | None = None,
    init: PathLike | None = None,
    label_weight: float | None = None,
) -> TrainedModel:
    """Train a classifier from a folder-per-tag ``dataset`` and export it to ``out`` in the
    Custom Vision export layout: locally (transfer learning, the ``train`` extra) or in Azure
    Custom Vision (``customvision`` options; LANDUSE_CV_TRAINING_* settings). With ``init``
    (a landuse model folder, or ``"default"``), adapt that model instead (``train --init``:
    its head refit on its own training features plus the dataset's labels; no torch, seconds)."""
    out = Path(out)
    if init is not None:
        from landuse.training.linear import adapt_model

        adapted = adapt_model(dataset, out, init, label_weight=label_weight, overwrite=overwrite,
                              progress=progress, command=command)
        return TrainedModel(out, "local", None, adapted.to_dict())
    if backend == "customvision":
        from landuse.training.customvision import train_customvision

        if customvision is None or not customvision.project:
            raise InputError("backend customvision needs customvision options with a project name (the Custom Vision project to create or reuse)")
        res = train_customvision(dataset, out, customvision, overwrite=overwrite, say=progress)
        return TrainedModel(out, "customvision", None, {"result": res})
    if backend != "local":
        raise InputError(f"backend {backend!r} is not known; use local or customvision", param="backend")
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise InputError("local training needs torch; pip install 'landuse[train]'") from exc
    from landuse.training.local import train_local

    if report is not None and Path(report).exists() and not overwrite:
        raise OutputExistsError(f"report {report} exists; pass `overwrite=True` or choose another `report`")
    rep = train_local(dataset, out, options or TrainOptions(), overwrite=overwrite, progress=progress,
                      command=command, report_path=report)
    return TrainedModel(out, "local", str(rep.get("precision") or "") or None, rep)


# -- labelled data -----------------------------------------------------------------------------


def dataset(
    out: PathLike,
    imagery: Sequence[PathLike] = (),
    *,
    labels: PathLike | None = None,
    mapping: PathLike | None = None,
    purity: float | None = None,
    per_class: int | None = None,
    aoi: PathLike | None = None,
    chip_size: int = 256,
    min_valid: float = 0.99,
    seed: int = 0,
    merge: PathLike | None = None,
    overwrite: bool = False,
) -> LabelledDataset:
    """A folder-per-tag dataset in ``out``: plots of ``imagery`` labelled from a land-cover raster
    (``labels``, NLCD codes unless ``mapping``), and / or the reviewed chips of a ``merge`` folder."""
    if not imagery and merge is None:
        raise InputError("give imagery files with labels, or merge REVIEW_DIR (or both)")
    built = merged = None
    if imagery:
        if labels is None:
            raise InputError("labels (a land-cover raster) is required to label plots of the imagery", param="labels")
        from landuse.training.labels import DEFAULT_PURITY, build_dataset, load_mapping

        built = build_dataset([str(p) for p in imagery], labels, out, mapping=load_mapping(mapping),
                              purity=DEFAULT_PURITY if purity is None else purity, per_class=per_class,
                              aoi=aoi, chip_size=chip_size, seed=seed, min_valid=min_valid, overwrite=overwrite)
    if merge is not None:
        from landuse.training.review import merge_review

        merged = merge_review(merge, out)
    return LabelledDataset(Path(out), built, merged)


def review(
    run: PathLike | Run,
    out: PathLike,
    *,
    n: int = 200,
    strategy: Literal["least-confident", "changed", "unknown", "diverse", "mix"] = "least-confident",
    change: PathLike | Change | None = None,
    imagery: Sequence[PathLike] | None = None,
    chip_size: int = 256,
    overwrite: bool = False,
    stretch: str | Sequence[float] | None = None,
) -> ReviewResult:
    """Chips of the plots most worth a human look, filed under their predicted tag (move each
    into its true tag's folder, then :func:`dataset` with ``merge``). ``stretch``: as in
    :func:`classify` (default: the stretch the run recorded)."""
    from landuse.training.review import export_review

    run_dir = run.path if isinstance(run, Run) else Path(run)
    change_dir = change.path if isinstance(change, Change) else change
    return export_review(run_dir, out, n=n, strategy=strategy, change_dir=change_dir,
                         imagery=[str(p) for p in imagery] if imagery else None, chip_size=chip_size,
                         overwrite=overwrite, stretch=stretch)
