"""The batch pipeline: plot chunks -> (read + classify) tasks -> run store -> outputs.

The grid is split into chunks of contiguous plots (:meth:`PlotGrid.chunks_of`). One task per
chunk opens the scene and the model itself (both cached per worker thread, so once per worker
process on a distributed cluster), reads the chunk strip by strip (``Scene.read_chunk``), applies
the ``min_valid`` policy, classifies in batches and returns the chunk's columns; the client writes
each chunk's Parquet part atomically as soon as it arrives, so a killed run resumes where it
stopped and a remote cluster's workers need not see the run directory (only the imagery and the
model).

Plot status (``status`` / ``reason`` columns):

* ``classified`` — valid fraction >= ``min_valid``; label, class index and probabilities set;
* ``partial`` — some valid pixels but fewer than ``min_valid``;
* ``nodata`` — no imagery covers the plot (not read) or no valid pixel in it;
* ``outside_aoi`` — the plot centre lies outside the AOI (not read);
* ``uncertain`` — multilabel models only: no tag reaches the threshold;
* ``unknown`` — read and scored but like none of the model's classes (``unknown_score`` above
  the model's threshold, or mostly open water by NDWI where the imagery has a NIR band; see
  :mod:`landuse.classify.unknown`): label ``unknown``, no class index, probabilities kept.

Schedulers: ``local`` (a ``distributed.LocalCluster`` started for the run: one process per
core, one thread each, onnxruntime with one intra-op thread), ``threads`` (a thread pool in this
process; cheapest on 2 cores), ``synchronous`` (a plain loop, for debugging) or
``tcp://host:port`` (an existing Dask cluster). Results are identical whatever the scheduler.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from landuse.classify.base import decide, load_classifier, sha256_file
from landuse.classify.unknown import (
    UNKNOWN_CLASS_VALUE,
    UNKNOWN_LABEL,
    UNKNOWN_STATUS,
    WATER_SHARE,
    method_of,
    predict_with_unknown,
    water_share,
)
from landuse.errors import InputError, LanduseError, RunStoreError
from landuse.grid import Chunk, PlotGrid
from landuse.store import RunStore, build_manifest

log = logging.getLogger(__name__)

DEFAULT_CHUNK_PLOTS = 256
DEFAULT_BATCH_SIZE = 8
DEFAULT_MIN_VALID = 0.9
DEFAULT_THRESHOLD = 0.5
# Most plots read at once inside a task (bounds a task's pixel memory: 128 x 150 KB = 19 MB).
MAX_READ_PLOTS = 128
STATUSES = ("classified", "partial", "nodata", "outside_aoi", "uncertain", "unknown")
REASON_NO_COVERAGE = "no imagery covers the plot"
REASON_NO_VALID = "no valid pixel in the imagery"
REASON_OUTSIDE_AOI = "plot centre outside the AOI"
# GDAL block cache per process unless GDAL_CACHEMAX is set: enough for a few 512-px block rows of
# a county-wide raster (tasks read strips in row-major order), instead of GDAL's 5 % of RAM,
# which a long run fills (1.2 GB on a 24 GB machine) and which then dominates the peak RSS.
DEFAULT_GDAL_CACHE_BYTES = 256 * 2**20


# -- picklable references to the scene and the model ----------------------------------------


@dataclass(frozen=True)
class SceneRef:
    """How a worker reopens the scene: ``opener(spec)`` (default ``Scene.from_spec``)."""

    spec: dict[str, Any]
    opener: Callable[[dict[str, Any]], Any] | None = None

    @classmethod
    def of(cls, scene: Any) -> SceneRef:
        """The reference of an open scene (its class's ``from_spec`` reopens it)."""
        return cls(scene.spec(), type(scene).from_spec)

    def key(self) -> str:
        opener = self.opener
        name = f"{opener.__module__}.{opener.__qualname__}" if opener is not None else "Scene.from_spec"
        return name + json.dumps(self.spec, sort_keys=True, default=str)

    def open(self) -> Any:
        if self.opener is not None:
            return self.opener(self.spec)
        from landuse.imagery import Scene

        return Scene.from_spec(self.spec)


@dataclass(frozen=True)
class ModelRef:
    """How a worker loads the model: ``factory(source, **options)`` (default
    :func:`landuse.classify.base.load_classifier`)."""

    source: str | None = None
    options: tuple[tuple[str, Any], ...] = ()
    factory: Callable[..., Any] | None = None

    def key(self) -> str:
        f = self.factory
        name = f"{f.__module__}.{f.__qualname__}" if f is not None else "load_classifier"
        return f"{name}|{self.source}|{sorted(self.options)!r}"

    def load(self) -> Any:
        factory = self.factory or load_classifier
        return factory(self.source, **dict(self.options))


def load_customvision(source: str | None = None, **options: Any) -> Any:
    """Factory of the Custom Vision cloud backend (``source``: config file or None; ``options``:
    tier / tps / store ...; the pipeline's onnxruntime options are ignored)."""
    from landuse.classify.customvision import CustomVisionClassifier

    options = {k: v for k, v in options.items() if k not in ("threads", "batch_size")}
    return CustomVisionClassifier.from_env(source, **options)


# Per worker thread: one open scene and one model session (a distributed worker has one thread,
# so this is once per worker process; the threads scheduler gets one per thread, because
# sessions' input buffers and rasterio handles are not shared across threads).
_LOCAL = threading.local()


def _cached(kind: str, key: str, make: Callable[[], Any]) -> Any:
    cache = getattr(_LOCAL, kind, None)
    if cache is None:
        cache = {}
        setattr(_LOCAL, kind, cache)
    if key not in cache:
        if len(cache) >= 4:  # a long-lived worker serving several runs
            cache.pop(next(iter(cache)))
        cache[key] = make()
    return cache[key]


_GDAL_LOCK = threading.Lock()
_GDAL_CACHE_SET = False


def limit_gdal_cache() -> None:
    """Cap GDAL's block cache of this process (once) unless the user set ``GDAL_CACHEMAX``."""
    global _GDAL_CACHE_SET
    with _GDAL_LOCK:
        if _GDAL_CACHE_SET or os.environ.get("GDAL_CACHEMAX"):
            return
        from rasterio.env import set_gdal_config

        set_gdal_config("GDAL_CACHEMAX", DEFAULT_GDAL_CACHE_BYTES)
        _GDAL_CACHE_SET = True


def cached_model(ref: ModelRef) -> Any:
    """The model of ``ref``, loaded once per worker thread."""
    return _cached("models", ref.key(), ref.load)


def cached_scene(ref: SceneRef) -> Any:
    """The scene of ``ref``, opened once per worker thread."""
    return _cached("scenes", ref.key(), ref.open)


# -- one task --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkTask:
    """Everything a worker needs for one chunk; small and picklable."""

    scene: SceneRef
    grid: dict[str, Any]
    chunk: Chunk
    model: ModelRef
    n_labels: int
    pixels: int
    min_valid: float
    batch_size: int
    multilabel: bool = False
    threshold: float = DEFAULT_THRESHOLD
    coverage: np.ndarray | None = None  # float32 (chunk.height, chunk.width); 0 = skip
    aoi: np.ndarray | None = None  # bool (chunk.height, chunk.width); False = outside
    nir: SceneRef | None = None  # the scene's NIR band as a grey scene (unknown flag: open water)
    flag_unknown: bool = True


@dataclass
class ChunkResult:
    """The columns of one chunk (row-major) and what the task spent."""

    chunk: Chunk
    columns: dict[str, np.ndarray]
    read_s: float = 0.0
    infer_s: float = 0.0
    plots_read: int = 0
    plots_classified: int = 0
    worker: str = ""


def process_chunk(task: ChunkTask) -> ChunkResult:
    """Read, gate and classify one chunk of plots (runs on a worker)."""
    ch = task.chunk
    n = ch.size
    rows, cols = ch.rows_cols()
    valid = np.zeros(n, dtype=np.float32)
    status = np.full(n, "nodata", dtype=object)
    reason = np.full(n, REASON_NO_COVERAGE, dtype=object)
    class_index = np.full(n, -1, dtype=np.int16)
    probs = np.full((n, task.n_labels), np.nan, dtype=np.float32)
    unknown_score = np.full(n, np.nan, dtype=np.float32)

    want = np.ones((ch.height, ch.width), dtype=bool)
    if task.aoi is not None:
        outside = ~task.aoi.ravel()
        status[outside] = "outside_aoi"
        reason[outside] = REASON_OUTSIDE_AOI
        valid[outside] = np.nan
        want &= task.aoi
    if task.coverage is not None:
        want &= task.coverage > 0

    result = ChunkResult(ch, {}, worker=f"{os.getpid()}/{threading.get_ident()}")
    if want.any():
        limit_gdal_cache()
        grid = PlotGrid.from_dict(task.grid)
        scene = cached_scene(task.scene)
        model = None
        for r in range(ch.height):
            cols_wanted = np.flatnonzero(want[r])
            if cols_wanted.size == 0:
                continue
            c0, c1 = int(cols_wanted[0]), int(cols_wanted[-1]) + 1
            for s0 in range(c0, c1, MAX_READ_PLOTS):
                s1 = min(c1, s0 + MAX_READ_PLOTS)
                seg = want[r, s0:s1]
                if not seg.any():
                    continue
                sub = Chunk(ch.row_off + r, ch.col_off + s0, 1, s1 - s0)
                t0 = time.perf_counter()
                pixels, frac = scene.read_chunk(grid, sub, pixels=task.pixels)
                result.read_s += time.perf_counter() - t0
                result.plots_read += sub.size
                frac = np.asarray(frac, dtype=np.float32)
                idx = r * ch.width + np.arange(s0, s1)  # positions in the chunk, row-major
                sel = idx[seg]
                f = frac[seg]
                valid[sel] = f
                reason[sel[f <= 0]] = REASON_NO_VALID
                part = sel[(f > 0) & (f < task.min_valid)]
                status[part] = "partial"
                reason[part] = f"valid fraction below min-valid {task.min_valid:g}"
                ok_local = np.flatnonzero(seg)[f >= task.min_valid]
                if ok_local.size == 0:
                    continue
                if model is None:
                    model = cached_model(task.model)
                    umethod = method_of(model)
                t0 = time.perf_counter()
                out = np.empty((ok_local.size, task.n_labels), dtype=np.float32)
                score = np.empty(ok_local.size, dtype=np.float32)
                for b in range(0, ok_local.size, task.batch_size):
                    take = ok_local[b : b + task.batch_size]
                    out[b : b + take.size], score[b : b + take.size] = predict_with_unknown(
                        model, np.ascontiguousarray(pixels[take]))
                result.infer_s += time.perf_counter() - t0
                dest = idx[ok_local]
                probs[dest] = out
                unknown_score[dest] = score
                win = decide(out, task.multilabel, task.threshold)
                class_index[dest] = win
                status[dest] = np.where(win >= 0, "classified", "uncertain")
                reason[dest] = np.where(win >= 0, None, f"no tag probability >= {task.threshold:g}")
                if task.flag_unknown:
                    far = score > umethod.threshold
                    water = (_water_shares(task, grid, sub, pixels, ok_local)
                             if task.nir is not None else np.zeros(ok_local.size, np.float32))
                    wet = water > WATER_SHARE
                    unk = far | wet
                    class_index[dest[unk]] = -1
                    status[dest[unk]] = UNKNOWN_STATUS
                    reason[dest[far]] = f"unknown score above {umethod.threshold:.4g} ({umethod.name})"
                    for d, w in zip(dest[wet], water[wet], strict=True):
                        reason[d] = f"open water by NDWI on {w:.0%} of the plot (NIR band)"
                result.plots_classified += int((class_index[dest] >= 0).sum())
    reason[status == "classified"] = None
    result.columns = {
        "row": rows.astype(np.int32),
        "col": cols.astype(np.int32),
        "class_index": class_index,
        "probs": probs,
        "unknown_score": unknown_score,
        "valid_fraction": valid,
        "status": status,
        "reason": reason,
    }
    return result


def _water_shares(task: ChunkTask, grid: PlotGrid, sub: Chunk, pixels: np.ndarray,
                  ok_local: np.ndarray) -> np.ndarray:
    """Open-water share (NDWI from the green and NIR bands at 1/4 resolution) of the plots
    ``ok_local`` of strip ``sub``."""
    assert task.nir is not None
    p = max(8, task.pixels // 4)
    nir, _ = cached_scene(task.nir).read_chunk(grid, sub, pixels=p)
    g = pixels[ok_local][..., 1].astype(np.float32)
    k = g.shape[1] // p
    g = g[:, : p * k, : p * k].reshape(len(ok_local), p, k, p, k).mean(axis=(2, 4))
    return water_share(g, nir[ok_local][..., 0])


def nir_ref(scene: Any) -> SceneRef | None:
    """The NIR band of a NAIP-like scene (uint8, >= 4 bands, RGB = 1,2,3) as a grey scene, else None."""
    from landuse.imagery import Scene

    if type(scene) is not Scene:
        return None
    spec = scene.spec()
    files = spec.get("files") or []
    if scene.stretch is not None or not files or not all(
            f.get("count", 0) >= 4 and f.get("dtype") == "uint8" and list(f.get("rgb", [])) == [1, 2, 3]
            for f in files):
        return None
    spec = {**spec, "bands": [4, 4, 4], "files": [{**f, "rgb": [4, 4, 4]} for f in files]}
    return SceneRef(spec, Scene.from_spec)


def result_table(result: ChunkResult, labels: Sequence[str]) -> pa.Table:
    """A chunk's Parquet part: row, col, label, class_index, prob_<tag>..., unknown_score,
    valid_fraction, status, reason."""
    c = result.columns
    idx = c["class_index"]
    lab = np.array(list(labels) + [None], dtype=object)
    label = lab[np.where(idx >= 0, idx, len(labels))]
    label[c["status"] == UNKNOWN_STATUS] = UNKNOWN_LABEL
    arrays: dict[str, pa.Array] = {
        "row": pa.array(c["row"], pa.int32()),
        "col": pa.array(c["col"], pa.int32()),
        "label": pa.array(label, pa.string()),
        "class_index": pa.array(idx, pa.int16(), mask=idx < 0),
    }
    for i, name in enumerate(labels):
        arrays[f"prob_{name}"] = pa.array(c["probs"][:, i], pa.float32(), from_pandas=True)
    arrays["unknown_score"] = pa.array(c["unknown_score"], pa.float32(), from_pandas=True)
    arrays["valid_fraction"] = pa.array(c["valid_fraction"], pa.float32(), from_pandas=True)
    arrays["status"] = pa.array(c["status"], pa.string())
    arrays["reason"] = pa.array(c["reason"], pa.string())
    return pa.table(arrays)


# -- schedulers ------------------------------------------------------------------------------


def default_workers() -> int:
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def check_scheduler(scheduler: str) -> str:
    """Validate a ``--scheduler`` value."""
    if scheduler in ("local", "threads", "synchronous") or scheduler.startswith("tcp://"):
        return scheduler
    raise InputError(f"--scheduler {scheduler!r} is not known; use local, threads, synchronous or tcp://HOST:PORT")


class _Executor:
    """Runs tasks, at most ``inflight`` at a time, yielding results as they complete."""

    def __init__(self, scheduler: str, workers: int, notify: Callable[[str], None]) -> None:
        self.scheduler = check_scheduler(scheduler)
        self.workers = workers
        self.notify = notify
        self.client: Any = None
        self.cluster: Any = None
        self.pool: Any = None

    def __enter__(self) -> _Executor:
        if self.scheduler == "threads":
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="landuse")
        elif self.scheduler == "local":
            from distributed import Client, LocalCluster

            self.cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=_dashboard_address(),
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)
            self._say_dashboard()
        elif self.scheduler.startswith("tcp://"):
            from distributed import Client

            try:
                self.client = Client(self.scheduler, timeout="10s")
            except OSError as exc:
                raise InputError(f"cannot reach the Dask scheduler {self.scheduler} ({exc}); check the address or use --scheduler local") from None
            self.workers = max(1, sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values()))
            self._say_dashboard()
        return self

    def _say_dashboard(self) -> None:
        has_dashboard = self.cluster is None or _dashboard_address() is not None
        link = getattr(self.client, "dashboard_link", None)
        if link and has_dashboard:
            self.notify(f"Dask dashboard: {link}")

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def run(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterable[Any]:
        """Yield ``fn(item)`` for every item, in completion order."""
        items = iter(items)
        inflight = 2 * self.workers + 2
        if self.scheduler == "synchronous":
            for item in items:
                yield fn(item)
        elif self.pool is not None:
            from concurrent.futures import FIRST_COMPLETED, wait

            pending = {self.pool.submit(fn, it) for it in _take(items, inflight)}
            try:
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        yield fut.result()
                        pending |= {self.pool.submit(fn, it) for it in _take(items, 1)}
            finally:
                for fut in pending:
                    fut.cancel()
        else:
            from distributed import as_completed

            first = [self.client.submit(fn, it, pure=False) for it in _take(items, inflight)]
            ac = as_completed(first)
            try:
                for fut in ac:
                    res = fut.result()
                    fut.release()
                    yield res
                    for it in _take(items, 1):
                        ac.add(self.client.submit(fn, it, pure=False))
            finally:
                for fut in list(ac.futures):
                    fut.cancel()


def _take(items: Any, n: int) -> list[Any]:
    out = []
    for _ in range(n):
        try:
            out.append(next(items))
        except StopIteration:
            break
    return out


def _dashboard_address() -> str | None:
    """``:0`` (a free port) when the dashboard can be served (bokeh installed), else None."""
    import importlib.util

    return ":0" if importlib.util.find_spec("bokeh") is not None else None


# -- a run -----------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What a classification run did."""

    run_dir: Path
    did_work: bool
    message: str
    outputs: dict[str, Path] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    computed_chunks: int = 0
    skipped_chunks: int = 0


class _Reporter:
    """Messages and the rich progress bar (both silent when ``quiet``)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.console: Any = None
        if not quiet:
            from rich.console import Console

            self.console = Console(stderr=True)

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def progress(self, total: int) -> Any:
        from contextlib import nullcontext

        if self.console is None:
            return nullcontext(None)
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task: Any) -> Text:
                speed = task.finished_speed or task.speed
                if not speed and task.completed and task.elapsed:
                    speed = task.completed / task.elapsed  # one update only (a small run)
                return Text(f"{speed:,.0f} plots/s" if speed else "- plots/s")

        bar = Progress(
            TextColumn("classifying"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("plots"),
            Rate(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        bar.add_task("plots", total=total)
        return bar


def classify_scene(
    scene: Any,
    grid: PlotGrid,
    model: ModelRef,
    out: str | Path,
    *,
    period: str,
    aoi_mask: np.ndarray | None = None,
    aoi_info: dict[str, Any] | None = None,
    min_valid: float = DEFAULT_MIN_VALID,
    threshold: float = DEFAULT_THRESHOLD,
    chunk_plots: int = DEFAULT_CHUNK_PLOTS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    scheduler: str = "local",
    workers: int | None = None,
    overwrite: bool = False,
    quiet: bool = False,
) -> RunResult:
    """Classify every plot of ``grid`` from ``scene`` into the run directory ``out``.

    Resumable: parts already in ``out`` for an equal manifest are kept; a different manifest
    raises :class:`RunStoreError` unless ``overwrite``.
    """
    t_start = time.perf_counter()
    check_scheduler(scheduler)
    if not 0.0 < min_valid <= 1.0:
        raise InputError(f"--min-valid {min_valid} is outside (0, 1]; give e.g. 0.9")
    if batch_size < 1:
        raise InputError(f"--batch-size {batch_size} must be at least 1")
    if workers is not None and workers < 1:
        raise InputError(f"--workers {workers} must be at least 1")
    if aoi_mask is not None and aoi_mask.shape != grid.shape:
        raise InputError(f"AOI mask {aoi_mask.shape} does not match {grid.describe()}")
    workers = workers or default_workers()
    limit_gdal_cache()
    rep = _Reporter(quiet)
    chunks = grid.chunks_of(chunk_plots)

    clf = model.load()
    labels = [str(t) for t in clf.labels]
    pixels = int(clf.input_size[0])
    umethod = method_of(clf)
    nir = nir_ref(scene)
    gsd_warning = resolution_warning(scene, getattr(clf, "gsd_m", None))
    if gsd_warning:
        rep.say(f"warning: {gsd_warning}")
    prov = dict(scene.provenance())
    inputs = prov.pop("inputs", [])
    manifest = build_manifest(
        grid=grid,
        inputs=inputs,
        imagery=prov,
        model={
            "id": str(clf.model_id),
            "sha256": str(clf.model_hash),
            "backend": str(clf.backend),
            "input_size": list(clf.input_size),
            "multilabel": bool(clf.multilabel),
            "options": {k: v for k, v in model.options if k not in ("threads", "batch_size")},
            "gsd_m": getattr(clf, "gsd_m", None),
            "unknown": {**umethod.to_dict(), "nir_water": nir is not None},
        },
        labels=labels,
        parameters={
            "min_valid": float(min_valid),
            "threshold": float(threshold),
            "pixels": pixels,
            "chunk_plots": int(chunk_plots),
            "aoi": aoi_info,
        },
        period=period,
    )
    store = RunStore.prepare(out, manifest, overwrite=overwrite)
    todo = [ch for ch in chunks if not store.has_part(ch)]
    skipped = len(chunks) - len(todo)
    if not todo and store.is_finalised():
        msg = (
            f"nothing to do: {store.root} already holds all {grid.size:,} plots of this run "
            f"(same manifest); pass --overwrite to recompute"
        )
        rep.say(msg)
        summary = json.loads(store.output("summary.json").read_text())
        return RunResult(store.root, False, msg, _outputs(store), summary, 0, skipped)
    if skipped:
        rep.say(f"resuming {store.root}: {skipped} of {len(chunks)} chunks already done, {len(todo)} to compute")

    coverage = np.asarray(scene.coverage(grid), dtype=np.float32) if todo else None
    if coverage is not None and coverage.shape != grid.shape:
        raise LanduseError(f"scene coverage {coverage.shape} does not match {grid.describe()}; this is a bug in the imagery module")
    sref = SceneRef.of(scene)
    mref = ModelRef(model.source, tuple(sorted({**dict(model.options), "threads": 1, "batch_size": batch_size}.items())), model.factory)
    gdict = grid.to_dict()

    def task_of(ch: Chunk) -> ChunkTask:
        win = np.s_[ch.row_off : ch.row_off + ch.height, ch.col_off : ch.col_off + ch.width]
        return ChunkTask(
            sref, gdict, ch, mref, len(labels), pixels, float(min_valid), int(batch_size),
            bool(clf.multilabel), float(threshold),
            coverage[win].copy() if coverage is not None else None,
            aoi_mask[win].copy() if aoi_mask is not None else None,
            nir,
        )

    def needs_reading(ch: Chunk) -> bool:
        win = np.s_[ch.row_off : ch.row_off + ch.height, ch.col_off : ch.col_off + ch.width]
        want = coverage[win] > 0
        if aoi_mask is not None:
            want &= aoi_mask[win]
        return bool(want.any())

    stats = {"read_s": 0.0, "infer_s": 0.0, "plots_read": 0, "plots_classified": 0}
    t_classify = time.perf_counter()
    computed = 0
    if todo:
        busy = [ch for ch in todo if needs_reading(ch)]
        empty = [ch for ch in todo if not needs_reading(ch)]
        total = sum(ch.size for ch in todo)
        with rep.progress(total) as bar:

            def done(res: ChunkResult) -> None:
                nonlocal computed
                store.write_part(res.chunk, result_table(res, labels))
                computed += 1
                for k in stats:
                    stats[k] += getattr(res, k)
                if bar is not None:
                    bar.advance(bar.task_ids[0], res.chunk.size)

            for ch in empty:  # nothing to read or classify: no need for a worker
                done(process_chunk(task_of(ch)))
            if busy:
                n_workers = min(workers, len(busy))
                with _Executor(scheduler, n_workers, rep.say) as ex:
                    for res in ex.run(process_chunk, (task_of(ch) for ch in busy)):
                        done(res)
    classify_s = time.perf_counter() - t_classify

    t_final = time.perf_counter()
    summary = finalise(store, chunks)
    summary["warnings"] = [gsd_warning] if gsd_warning else []
    summary["timings"] = {
        "wall_s": round(time.perf_counter() - t_start, 3),
        "classify_s": round(classify_s, 3),
        "finalise_s": round(time.perf_counter() - t_final, 3),
        "read_s": round(stats["read_s"], 3),
        "infer_s": round(stats["infer_s"], 3),
        "plots_read": stats["plots_read"],
        "plots_classified_now": stats["plots_classified"],
        "plots_per_s": round(sum(ch.size for ch in todo) / classify_s, 2) if todo and classify_s > 0 else None,
        "computed_chunks": computed,
        "skipped_chunks": skipped,
        "scheduler": scheduler,
        "workers": workers,
        "batch_size": batch_size,
    }
    from landuse.report.files import write_json

    write_json(store.output("summary.json"), summary)
    msg = f"classified {grid.size:,} plots into {store.root} ({computed} chunks computed, {skipped} reused)"
    rep.say(msg)
    for name, path in _outputs(store).items():
        rep.say(f"  {name}: {path}")
    return RunResult(store.root, True, msg, _outputs(store), summary, computed, skipped)


def _outputs(store: RunStore) -> dict[str, Path]:
    from landuse.store import OUTPUTS

    return {name: store.output(name) for name in OUTPUTS}


def finalise(store: RunStore, chunks: Sequence[Chunk]) -> dict[str, Any]:
    """Merge the parts into plots.parquet, plots.geojson, classes.tif, probabilities.tif;
    return the summary (without timings; the caller writes summary.json last)."""
    import geopandas as gpd
    import pandas as pd

    from landuse.report import files

    grid = store.grid
    labels = store.labels
    table = store.read_parts(chunks)
    rows = table.column("row").to_numpy().astype(np.int64)
    cols = table.column("col").to_numpy().astype(np.int64)
    flat = rows * grid.width + cols
    if table.num_rows != grid.size or np.unique(flat).size != grid.size:
        raise RunStoreError(
            f"{store.root} parts hold {table.num_rows} rows for {grid.size} plots (duplicates or gaps); rerun with --overwrite"
        )
    # keep class_index an integer column with nulls (pandas would make it float64)
    df = table.to_pandas(types_mapper={pa.int16(): pd.Int16Dtype()}.get)
    df.insert(0, "plot_id", grid.plot_ids(rows, cols))
    gdf = gpd.GeoDataFrame(df, geometry=grid.footprints(rows, cols), crs=grid.crs.to_wkt())
    provenance = {k: v for k, v in store.manifest.items()}

    files.write_geoparquet(gdf, store.output("plots.parquet"), provenance)
    files.write_geojson(gdf, store.output("plots.geojson"), provenance)
    cls = np.full(grid.shape, -1, dtype=np.int16)
    cls[rows, cols] = table.column("class_index").fill_null(-1).to_numpy()
    if "unknown_score" in table.column_names:
        unk = table.column("status").to_numpy(zero_copy_only=False) == UNKNOWN_STATUS
        cls[rows[unk], cols[unk]] = UNKNOWN_CLASS_VALUE
    files.write_class_raster(store.output("classes.tif"), grid, cls, labels, _tag_provenance(store.manifest))
    probs = np.full((len(labels), *grid.shape), np.nan, dtype=np.float32)
    for i, name in enumerate(labels):
        probs[i, rows, cols] = table.column(f"prob_{name}").to_numpy(zero_copy_only=False)
    probs[:, (cls < 0) | (cls == UNKNOWN_CLASS_VALUE)] = np.nan
    files.write_probability_raster(store.output("probabilities.tif"), grid, probs, labels, _tag_provenance(store.manifest))
    return summarise(df, grid, labels, store.manifest)


def _tag_provenance(manifest: dict[str, Any]) -> dict[str, Any]:
    keys = ("toolkit", "period", "grid", "inputs", "model", "parameters", "created")
    return {k: manifest.get(k) for k in keys}


def summarise(df: Any, grid: PlotGrid, labels: Sequence[str], manifest: dict[str, Any]) -> dict[str, Any]:
    """Plots and hectares per class and unclassified plots by status and reason.

    Hectares: a classified plot counts whole (``plot_area_ha``), because the label stands for
    the plot; ``imaged_hectares`` weighs each plot by its valid fraction (the area actually
    seen). Unclassified plots count whole per status.
    """
    area = grid.plot_area_ha
    status = df["status"].to_numpy()
    valid = df["valid_fraction"].to_numpy(dtype=float)
    idx = df["class_index"].fillna(-1).to_numpy(dtype=int)
    classified = status == "classified"
    n_cls = int(classified.sum())
    classes = {}
    for i, name in enumerate(labels):
        sel = classified & (idx == i)
        k = int(sel.sum())
        classes[name] = {
            "index": i,
            "plots": k,
            "hectares": round(k * area, 4),
            "imaged_hectares": round(float(np.nansum(valid[sel])) * area, 4),
            "share": round(k / n_cls, 6) if n_cls else None,
        }
    unclassified: dict[str, Any] = {}
    for st in STATUSES:
        if st == "classified":
            continue
        sel = status == st
        if not sel.any():
            continue
        reasons = df.loc[sel, "reason"].value_counts()
        unclassified[st] = {
            "plots": int(sel.sum()),
            "hectares": round(int(sel.sum()) * area, 4),
            "by_reason": {str(r): int(c) for r, c in reasons.items()},
        }
    n_unk = int((status == UNKNOWN_STATUS).sum())
    unk_method = (manifest.get("model") or {}).get("unknown") or {}
    return {
        "period": manifest.get("period"),
        "grid": {**grid.to_dict(), "plots": grid.size, "plot_area_ha": area, "describe": grid.describe()},
        "plots": {"total": int(len(df)), "classified": n_cls, "unclassified": int(len(df) - n_cls),
                  "unknown": n_unk},
        "classes": classes,
        "unknown": {"plots": n_unk, "hectares": round(n_unk * area, 4),
                    "share_of_scored": round(n_unk / (n_cls + n_unk), 6) if n_cls + n_unk else None},
        "unknown_method": unk_method.get("description", unk_method.get("method")),
        "unclassified": unclassified,
        "hectares_method": (
            "hectares = classified plots x plot area (a label stands for its whole plot, valid fraction "
            ">= min_valid); imaged_hectares = sum of plot area x valid fraction"
        ),
        "model": manifest.get("model"),
        "labels": list(labels),
        "parameters": manifest.get("parameters"),
        "toolkit": manifest.get("toolkit"),
    }


# -- the command's entry point ----------------------------------------------------------------

# Imagery coarser than this many times the model's ground sample distance is named in a warning.
GSD_WARN_FACTOR = 1.5


def imagery_gsd_m(scene: Any) -> float | None:
    """The finest pixel size of the scene's files in metres (None for degrees or unknown CRSs)."""
    from landuse.grid import linear_unit_factor

    sizes = []
    for f in getattr(scene, "files", []):
        try:
            if f.crs is None or not f.crs.is_projected:
                continue
            sizes.append(min(f.res) * linear_unit_factor(f.crs))
        except (AttributeError, ValueError, LanduseError):
            continue
    return min(sizes) if sizes else None


def resolution_warning(scene: Any, model_gsd_m: float | None) -> str | None:
    """One line when the imagery is much coarser than the model expects, else None."""
    if not model_gsd_m:
        return None
    gsd = imagery_gsd_m(scene)
    if gsd is None or gsd <= GSD_WARN_FACTOR * model_gsd_m:
        return None
    return (f"the imagery is {gsd:.3g} m per pixel but the model expects {model_gsd_m:g} m: "
            f"plots are up-sampled {gsd / model_gsd_m:.1f}x and accuracy is lower; check the "
            f"unknown share, or adapt the model to this imagery (landuse train DATASET --init)")


def aoi_info(aoi: str | Path | None) -> dict[str, Any] | None:
    """Provenance of an AOI file (path and sha256)."""
    if aoi is None:
        return None
    p = Path(aoi)
    return {"path": str(p.resolve()), "sha256": sha256_file(p)}


def plan_grid(
    scene: Any,
    grid_file: str | Path | None = None,
    aoi: str | Path | None = None,
    plot_size_m: float = 224.0,
) -> tuple[PlotGrid, np.ndarray | None]:
    """The run's grid and AOI mask: ``grid_file`` if given; else the AOI's grid (in the imagery's
    CRS when the sources share a projected one) when ``aoi`` is given; else the imagery's grid."""
    if grid_file is not None:
        grid = PlotGrid.load(grid_file)
    elif aoi is not None:
        fps = list(scene.footprints())
        crss = {c.to_wkt(): c for c, _ in fps}
        only = next(iter(crss.values())) if len(crss) == 1 else None
        crs = only if only is not None and only.is_projected else None
        grid = PlotGrid.from_aoi(aoi, crs=crs, plot_size_m=plot_size_m)
    else:
        grid = PlotGrid.from_footprints(list(scene.footprints()), plot_size_m=plot_size_m)
    mask = grid.aoi_mask(aoi) if aoi is not None else None
    return grid, mask


def classify_imagery(
    sources: Sequence[str | Path],
    out: str | Path,
    *,
    period: str,
    model: str | Path | None = None,
    aoi: str | Path | None = None,
    grid_file: str | Path | None = None,
    plot_size_m: float = 224.0,
    bands: Sequence[int] | None = None,
    backend: str = "onnx",
    backend_options: dict[str, Any] | None = None,
    **options: Any,
) -> RunResult:
    """``landuse classify``: open the imagery, plan the grid, classify (see :func:`classify_scene`)."""
    from landuse.imagery import Scene

    if not sources:
        raise InputError("no imagery given; pass one or more GeoTIFFs, a VRT or URLs")
    scene = Scene.open(list(sources), bands=list(bands) if bands else None)
    grid, mask = plan_grid(scene, grid_file, aoi, plot_size_m)
    if backend == "onnx":
        source = None if model is None or str(model) == "default" else str(Path(model).resolve())
        ref = ModelRef(source, tuple(sorted((backend_options or {}).items())))
    elif backend == "customvision":
        opts = {k: v for k, v in (backend_options or {}).items() if v is not None}
        ref = ModelRef(None, tuple(sorted(opts.items())), load_customvision)
    else:
        raise InputError(f"--backend {backend!r} is not known; use onnx or customvision")
    return classify_scene(
        scene, grid, ref, out, period=period, aoi_mask=mask, aoi_info=aoi_info(aoi), **options
    )
