"""The batch pipeline: plot chunks -> (read + classify) tasks -> run store -> outputs.

The grid is split into chunks of contiguous plots (:meth:`PlotGrid.chunks_of`). On a Dask
cluster one task per chunk opens the scene and the model itself (both cached per worker, so once
per worker process), reads the chunk block by block (:func:`segments`, ``Scene.read_chunk``),
applies the ``min_valid`` policy, classifies in batches and returns the chunk's columns. In
process (``threads``) the same blocks are read by reader threads and classified batch by batch by
one inference thread per core (:class:`InProcessStream`). Either way the client writes each
chunk's Parquet part atomically as soon as it is complete, so a killed run resumes where it
stopped and a remote cluster's workers need not see the run directory (only the imagery and the
model). Seconds per phase go to ``summary.json`` (``timings.phases``).

Plot status (``status`` / ``reason`` columns):

* ``classified`` — valid fraction >= ``min_valid``; label, class index and probabilities set;
* ``partial`` — some valid pixels but fewer than ``min_valid``;
* ``nodata`` — no imagery covers the plot (not read) or no valid pixel in it;
* ``outside_aoi`` — the plot centre lies outside the AOI (not read);
* ``uncertain`` — multilabel models only: no tag reaches the threshold;
* ``unknown`` — read and scored but like none of the model's classes (``unknown_score`` above
  the model's threshold, or mostly open water by NDWI where the imagery has a NIR band, when
  ``unknown_score`` carries the water share on the same scale; see :mod:`landuse.classify.unknown`):
  label ``unknown``, no class index, probabilities kept.

Schedulers: ``auto`` (the default: ``threads`` on a machine of up to 4 cores, else ``local``),
``local`` (a ``distributed.LocalCluster`` started for the run: one process per core, one thread
each, onnxruntime with one intra-op thread), ``threads`` (a thread pool in this process, one
onnxruntime session of one intra-op thread per thread; cheapest on small machines),
``synchronous`` (a plain loop, for debugging) or ``tcp://host:port`` (an existing Dask cluster).
Results are identical whatever the scheduler.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from landuse import defaults
from landuse import status as st
from landuse.classify.base import decide, load_classifier, resolve_model_spec, sha256_file
from landuse.classify.unknown import (
    UNKNOWN_LABEL,
    UNKNOWN_STATUS,
    WATER_SHARE,
    method_of,
    predict_with_unknown,
    water_share,
)
from landuse.errors import InputError, LanduseError, RunStoreError
from landuse.grid import AoiLike, Chunk, PlotGrid
from landuse.store import (
    RunStore,
    build_manifest,
    mark_complete,
    open_run,
    unmark_complete,
    writing,
)

if TYPE_CHECKING:
    import pandas as pd

    from landuse.classify.base import Classifier
    from landuse.classify.customvision import CustomVisionClassifier
    from landuse.imagery import SceneLike
    from landuse.stac import StacSource

log = logging.getLogger(__name__)

DEFAULT_CHUNK_PLOTS = defaults.CHUNK_PLOTS
DEFAULT_BATCH_SIZE = defaults.BATCH_SIZE
DEFAULT_MIN_VALID = defaults.MIN_VALID
DEFAULT_THRESHOLD = defaults.THRESHOLD
# Plots one read covers, in a near-square block of the chunk (the same blocks for every
# scheduler, so results never depend on it): a warped read costs the bounding box of the block
# in the source, which for a long strip on a grid rotated 4 deg (the next UTM zone) is 3x its
# area, for a block ~1.2x; small enough that a task's pixels stay small (32 x 150 KB = 5 MB).
READ_PLOTS = 32
# In-process stream: one more reader thread when reading a plot takes longer than this share of
# the time the inference threads take to classify it (per reader).
READER_SHARE = 0.8
WATER_REASON = f"open water by NDWI (NIR band) on more than {WATER_SHARE:.0%} of the plot"
# the statuses and reasons of plots (and the min_valid gate's words) are landuse.status's
STATUSES = st.STATUSES
REASON_NO_COVERAGE = st.REASON_NO_COVERAGE
REASON_NO_VALID = st.REASON_NO_VALID
REASON_OUTSIDE_AOI = st.REASON_OUTSIDE_AOI
# GDAL block cache per process unless GDAL_CACHEMAX is set: enough for a few 512-px block rows of
# a county-wide raster (tasks read strips in row-major order), instead of GDAL's 5 % of RAM,
# which a long run fills (1.2 GB on a 24 GB machine) and which then dominates the peak RSS.
DEFAULT_GDAL_CACHE_BYTES = 256 * 2**20


# -- picklable references to the scene and the model ----------------------------------------


@dataclass(frozen=True)
class SceneRef:
    """How a worker reopens the scene: ``opener(spec)`` (default ``Scene.from_spec``)."""

    spec: dict[str, Any]
    opener: Callable[[dict[str, Any]], SceneLike] | None = None

    @classmethod
    def of(cls, scene: SceneLike) -> SceneRef:
        """The reference of an open scene (its class's ``from_spec`` reopens it)."""
        return cls(scene.spec(), type(scene).from_spec)

    def key(self) -> str:
        opener = self.opener
        name = f"{opener.__module__}.{opener.__qualname__}" if opener is not None else "Scene.from_spec"
        return name + json.dumps(self.spec, sort_keys=True, default=str)

    def open(self) -> SceneLike:
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

    def load(self) -> Classifier:
        factory = self.factory or load_classifier
        return factory(self.source, **dict(self.options))


def worker_model_ref(model: ModelRef, batch_size: int) -> ModelRef:
    """The model as a worker loads it: one onnxruntime intra-op thread, the run's batch size."""
    opts = {**dict(model.options), "threads": 1, "batch_size": int(batch_size)}
    return ModelRef(model.source, tuple(sorted(opts.items())), model.factory)


def load_customvision(source: str | None = None, **options: Any) -> CustomVisionClassifier:
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


def _adopt_model(offered: list[tuple[str, Any]]) -> None:
    """Pool-thread initializer: the first thread takes the model the client already loaded."""
    try:
        key, model = offered.pop()
    except IndexError:
        return
    cache = getattr(_LOCAL, "models", None)
    if cache is not None:
        cache.pop(key, None)  # the fresh load wins over one cached by an earlier run of this thread
    _cached("models", key, lambda: model)


def cached_model(ref: ModelRef) -> Classifier:
    """The model of ``ref``, loaded once per worker thread."""
    return _cached("models", ref.key(), ref.load)


def cached_scene(ref: SceneRef) -> SceneLike:
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
    assemble_s: float = 0.0  # batch assembly: plots gathered into one contiguous batch
    model_load_s: float = 0.0  # model (session) loaded in this task (first task of a worker)
    task_s: float = 0.0  # the whole task on the worker
    finished_at: float = 0.0  # time.time() when the task ended (the client derives the transfer)


def new_columns(task: ChunkTask) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A chunk's columns before anything is read (every plot ``nodata`` or ``outside_aoi``) and
    the (height, width) mask of the plots to read."""
    ch = task.chunk
    n = ch.size
    rows, cols = ch.rows_cols()
    columns: dict[str, np.ndarray] = {
        "row": rows.astype(np.int32),
        "col": cols.astype(np.int32),
        "class_index": np.full(n, -1, dtype=np.int16),
        "probs": np.full((n, task.n_labels), np.nan, dtype=np.float32),
        "unknown_score": np.full(n, np.nan, dtype=np.float32),
        "valid_fraction": np.zeros(n, dtype=np.float32),
        "status": np.full(n, st.NODATA, dtype=object),
        "reason": np.full(n, REASON_NO_COVERAGE, dtype=object),
    }
    want = np.ones((ch.height, ch.width), dtype=bool)
    if task.aoi is not None:
        outside = ~task.aoi.ravel()
        columns["status"][outside] = st.OUTSIDE_AOI
        columns["reason"][outside] = REASON_OUTSIDE_AOI
        columns["valid_fraction"][outside] = np.nan
        want &= task.aoi
    if task.coverage is not None:
        want &= task.coverage > 0
    return columns, want


def segments(want: np.ndarray, max_plots: int) -> list[tuple[int, int, int, int]]:
    """The blocks to read, ``(row0, row1, col0, col1)`` in chunk coordinates: bands of
    ``isqrt(max_plots)`` rows (at most the chunk's), each from its first to its last wanted
    column, cut every ``max_plots // rows`` columns; blocks with nothing wanted dropped."""
    height = want.shape[0]
    bh = max(1, min(height, math.isqrt(max_plots)))
    bw = max(1, max_plots // bh)
    out = []
    for r0 in range(0, height, bh):
        r1 = min(height, r0 + bh)
        cols_wanted = np.flatnonzero(want[r0:r1].any(axis=0))
        if cols_wanted.size == 0:
            continue
        c0, c1 = int(cols_wanted[0]), int(cols_wanted[-1]) + 1
        for s0 in range(c0, c1, bw):
            s1 = min(c1, s0 + bw)
            if want[r0:r1, s0:s1].any():
                out.append((r0, r1, s0, s1))
    return out


@dataclass
class ReadStrip:
    """A strip read and gated: its pixels, the chunk positions of its plots, and which of them
    (strip-local indices) are to be classified."""

    pixels: np.ndarray
    idx: np.ndarray
    ok: np.ndarray
    water: np.ndarray | None = None  # open-water share per strip plot (NIR band), where read


def read_segment(task: ChunkTask, columns: dict[str, np.ndarray], want: np.ndarray,
                 segment: tuple[int, int, int, int], stats: ChunkResult) -> ReadStrip:
    """Read one block ``(row0, row1, col0, col1)`` of a chunk and gate it by ``min_valid``: valid
    fraction, ``partial`` / no-valid-pixel statuses go into ``columns`` (the block's positions only)."""
    ch = task.chunk
    r0, r1, s0, s1 = segment
    seg = want[r0:r1, s0:s1].ravel()
    grid = _cached("grids", json.dumps(task.grid, sort_keys=True, default=str), lambda: PlotGrid.from_dict(task.grid))
    scene = cached_scene(task.scene)
    sub = Chunk(ch.row_off + r0, ch.col_off + s0, r1 - r0, s1 - s0)
    t0 = time.perf_counter()
    pixels, frac = scene.read_chunk(grid, sub, pixels=task.pixels)
    stats.read_s += time.perf_counter() - t0
    stats.plots_read += sub.size
    valid, status, reason = columns["valid_fraction"], columns["status"], columns["reason"]
    frac = np.asarray(frac, dtype=np.float32)
    idx = (np.arange(r0, r1)[:, None] * ch.width + np.arange(s0, s1)[None, :]).ravel()  # chunk positions, row-major
    sel = idx[seg]
    f = frac[seg]
    valid[sel] = f
    reason[sel[f <= 0]] = REASON_NO_VALID
    part = sel[(f > 0) & (f < task.min_valid)]
    status[part] = st.PARTIAL
    reason[part] = st.reason_partial(task.min_valid)
    ok = np.flatnonzero(seg)[f >= task.min_valid]
    water = None
    if task.nir is not None and task.flag_unknown and ok.size:
        water = np.zeros(len(idx), np.float32)
        water[ok] = _water_shares(task, grid, sub, pixels, ok)
    return ReadStrip(pixels, idx, ok, water)


def classify_batch(task: ChunkTask, columns: dict[str, np.ndarray], strip: ReadStrip, take: np.ndarray,
                   stats: ChunkResult) -> None:
    """Classify the plots ``take`` (strip-local indices) of a read strip; write probabilities,
    class, status and reason into ``columns``."""
    t0 = time.perf_counter()
    model = cached_model(task.model)
    t1 = time.perf_counter()
    pixels = strip.pixels
    # consecutive plots are a view of the strip (C-contiguous): no copy
    batch = pixels[take[0] : take[-1] + 1] if take[-1] - take[0] + 1 == take.size else pixels[take]
    t2 = time.perf_counter()
    out, score = predict_with_unknown(model, np.ascontiguousarray(batch))
    out = np.asarray(out, dtype=np.float32)
    t3 = time.perf_counter()
    stats.model_load_s += t1 - t0
    stats.assemble_s += t2 - t1
    stats.infer_s += t3 - t2
    dest = strip.idx[take]
    columns["probs"][dest] = out
    columns["unknown_score"][dest] = score
    win = decide(out, task.multilabel, task.threshold)
    columns["class_index"][dest] = win
    columns["status"][dest] = np.where(win >= 0, st.CLASSIFIED, st.UNCERTAIN)
    columns["reason"][dest] = np.where(win >= 0, None, f"no tag probability >= {task.threshold:g}")  # type: ignore[call-overload]  # numpy stubs reject a None scalar
    if task.flag_unknown:
        umethod = method_of(model)
        far = score > umethod.threshold
        water = strip.water[take] if strip.water is not None else np.zeros(take.size, np.float32)
        wet = water > WATER_SHARE
        unk = far | wet
        columns["class_index"][dest[unk]] = -1
        columns["status"][dest[unk]] = UNKNOWN_STATUS
        columns["reason"][dest[far]] = f"unknown score above {umethod.threshold:.4g} ({umethod.name})"
        # the water evidence on the method's scale (above its threshold exactly when the plot is more
        # than WATER_SHARE water), so unknown_score says how much water; one reason for all of them
        columns["unknown_score"][dest[wet]] = np.maximum(score[wet], water[wet] / WATER_SHARE * umethod.threshold)
        columns["reason"][dest[wet]] = WATER_REASON
    stats.plots_classified += int((columns["class_index"][dest] >= 0).sum())


def batches_of(strip: ReadStrip, batch_size: int) -> list[np.ndarray]:
    """The strip's plots to classify, in batches of at most ``batch_size``."""
    return [strip.ok[b : b + batch_size] for b in range(0, strip.ok.size, batch_size)]


def process_segment(task: ChunkTask, columns: dict[str, np.ndarray], want: np.ndarray,
                    segment: tuple[int, int, int, int], stats: ChunkResult) -> None:
    """Read one strip of a chunk, gate it, classify it in batches (into ``columns``)."""
    strip = read_segment(task, columns, want, segment, stats)
    for take in batches_of(strip, task.batch_size):
        classify_batch(task, columns, strip, take, stats)


def finish_columns(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Classified plots have no reason."""
    columns["reason"][columns["status"] == st.CLASSIFIED] = None
    return columns


def process_chunk(task: ChunkTask) -> ChunkResult:
    """Read, gate and classify one chunk of plots (runs on a worker)."""
    t_task = time.perf_counter()
    columns, want = new_columns(task)
    result = ChunkResult(task.chunk, {}, worker=f"{os.getpid()}/{threading.get_ident()}")
    if want.any():
        limit_gdal_cache()
        for segment in segments(want, READ_PLOTS):
            process_segment(task, columns, want, segment, result)
    result.columns = finish_columns(columns)
    result.task_s = time.perf_counter() - t_task
    result.finished_at = time.time()
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


def nir_ref(scene: SceneLike) -> SceneRef | None:
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


# Up to this many cores, ``auto`` runs the tasks on threads of this process: onnxruntime and GDAL
# release the GIL, and a LocalCluster's scheduler, nanny and worker processes cost a small
# machine ~10 % (measured on 2 cores: benchmarks/results/bench_pipeline.json).
AUTO_THREADS_MAX_CORES = 4


def check_scheduler(scheduler: str) -> str:
    """Validate a ``--scheduler`` value."""
    if scheduler in ("auto", "local", "threads", "synchronous") or scheduler.startswith("tcp://"):
        return scheduler
    raise InputError(f"`scheduler` {scheduler!r} is not known; use auto, local, threads, synchronous or tcp://HOST:PORT")


def resolve_scheduler(scheduler: str, cores: int | None = None) -> str:
    """``auto``: ``threads`` on a machine of up to :data:`AUTO_THREADS_MAX_CORES` cores, else
    ``local``; any other value is returned as is (validated)."""
    scheduler = check_scheduler(scheduler)
    if scheduler != "auto":
        return scheduler
    return "threads" if (cores or default_workers()) <= AUTO_THREADS_MAX_CORES else "local"


class _Executor:
    """Runs tasks, at most ``inflight`` at a time, yielding results as they complete."""

    def __init__(self, scheduler: str, workers: int, notify: Callable[[str], None],
                 adopt: tuple[str, Any] | None = None) -> None:
        self.scheduler = check_scheduler(scheduler)
        self.workers = workers
        self.notify = notify
        self.adopt = adopt  # (model key, loaded model): reused by one in-process worker thread
        self.client: Any = None
        self.cluster: Any = None
        self.stream: InProcessStream | None = None

    def __enter__(self) -> _Executor:
        if self.scheduler == "threads":
            pass  # the in-process stream starts its own threads (InProcessStream)
        elif self.scheduler == "synchronous" and self.adopt:
            _adopt_model([self.adopt])
        elif self.scheduler == "local":
            from distributed import Client, LocalCluster

            self.cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=_dashboard_address(),
                # workers' own log lines (shutdown heartbeats ...) only with -v
                silence_logs=logging.ERROR if logging.getLogger().isEnabledFor(logging.INFO) else logging.CRITICAL,
            )
            self.client = Client(self.cluster)
            self._say_dashboard()
        elif self.scheduler.startswith("tcp://"):
            from distributed import Client

            try:
                self.client = Client(self.scheduler, timeout="10s")
            except OSError as exc:
                raise InputError(f"cannot reach the Dask scheduler {self.scheduler} ({exc}); check the address or use `scheduler` local") from None
            self.workers = max(1, sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values()))
            self._say_dashboard()
        return self

    def _say_dashboard(self) -> None:
        has_dashboard = self.cluster is None or _dashboard_address() is not None
        link = getattr(self.client, "dashboard_link", None)
        if link and has_dashboard:
            self.notify(f"Dask dashboard: {link}")

    def __exit__(self, *exc: object) -> None:
        with _quiet_dask_shutdown():
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
        elif self.scheduler == "threads":
            if fn is not process_chunk:
                raise LanduseError("the threads scheduler runs process_chunk only; this is a bug")
            self.stream = InProcessStream(items, self.workers, self.adopt)
            yield from self.stream.results()
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


@dataclass
class _OpenChunk:
    """A chunk in the in-process stream: strips still to read, batches still to classify."""

    task: ChunkTask
    columns: dict[str, np.ndarray]
    want: np.ndarray
    unread: int
    result: ChunkResult
    batches_left: int = 0


class InProcessStream:
    """The threads scheduler: reader threads read blocks (:data:`READ_PLOTS` plots) in order and
    queue their batches; ``workers`` inference threads (one onnxruntime session of one thread
    each) classify batch by batch; results go straight into the chunk's columns.

    Reading overlaps inference, no thread idles at the end of a run for more than one batch, and
    one reader (the default while reads keep up) decodes each block of the file once: readers
    of their own GDAL handles decode the 512-px blocks two plot rows share twice (measured +57 %
    read CPU). Another reader starts when reading a plot takes longer than
    :data:`READER_SHARE` of classifying one per inference thread (slow reads: warping,
    resampling, remote files), up to ``workers`` readers.
    """

    def __init__(self, tasks: Iterable[ChunkTask], workers: int, adopt: tuple[str, Any] | None = None,
                 queued_batches: int | None = None) -> None:
        import queue

        self.workers = workers
        self.max_readers = workers
        self.adopt = [adopt] if adopt else []
        self._work = self._strips(iter(tasks))
        self._lock = threading.Lock()
        self._ready: queue.Queue[Any] = queue.Queue(maxsize=queued_batches or 4 * workers)
        self._events: queue.Queue[Any] = queue.Queue()
        self._stop = threading.Event()
        self._readers = 0
        self._readers_done = 0
        self._exhausted = False
        # seconds per plot read / classified so far (wall of the threads), to decide on readers
        self._read = [0.0, 0]
        self._infer = [0.0, 0]
        self._threads: list[threading.Thread] = []
        self.readers_started = 0
        self.wait_for_pixels_s = 0.0

    def _strips(self, tasks: Iterator[ChunkTask]) -> Iterator[tuple[_OpenChunk, tuple[int, int, int, int]]]:
        for task in tasks:
            columns, want = new_columns(task)
            segs = segments(want, READ_PLOTS)
            chunk = _OpenChunk(task, columns, want, len(segs), ChunkResult(task.chunk, {}))
            for seg in segs:
                yield chunk, seg

    def _start(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=self._guard(target), name=name, daemon=True)
        self._threads.append(t)
        t.start()

    def _guard(self, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 - handed to the client thread, re-raised there
                self._stop.set()
                self._events.put(("error", None, 0, exc))

        return run

    def _add_reader(self) -> None:
        with self._lock:
            if self._readers >= self.max_readers or self._exhausted:
                return
            self._readers += 1
            self.readers_started += 1
            k = self._readers
        self._start(self._read_loop, f"landuse-read-{k}")

    def _read_loop(self) -> None:
        import queue

        limit_gdal_cache()
        try:
            while not self._stop.is_set():
                with self._lock:
                    item = next(self._work, None)
                    if item is None:
                        self._exhausted = True
                if item is None:
                    break
                chunk, seg = item
                stats = ChunkResult(chunk.task.chunk, {})
                strip = read_segment(chunk.task, chunk.columns, chunk.want, seg, stats)
                batches = batches_of(strip, chunk.task.batch_size)
                self._events.put(("read", chunk, len(batches), stats))
                for take in batches:
                    while not self._stop.is_set():
                        try:
                            self._ready.put((chunk, strip, take), timeout=0.1)
                            break
                        except queue.Full:
                            continue
        finally:
            with self._lock:
                self._readers_done += 1
                last = self._readers_done == self._readers and self._exhausted
            if last and not self._stop.is_set():
                for _ in range(self.workers):
                    self._ready.put(None)  # the inference threads drain the queue, then stop

    def _infer_loop(self) -> None:
        import queue

        _adopt_model(self.adopt)
        name = threading.current_thread().name
        while not self._stop.is_set():
            try:
                item = self._ready.get_nowait()
            except queue.Empty:
                t0 = time.perf_counter()
                item = self._ready.get()
                with self._lock:
                    self.wait_for_pixels_s += time.perf_counter() - t0
            if item is None:
                break
            chunk, strip, take = item
            stats = ChunkResult(chunk.task.chunk, {}, worker=f"{os.getpid()}/{name}")
            classify_batch(chunk.task, chunk.columns, strip, take, stats)
            self._events.put(("batch", chunk, int(take.size), stats))
        self._events.put(("exit", None, 0, None))

    def _more_readers(self) -> None:
        """Start another reader when reads do not keep up with the inference threads."""
        (rs, rn), (cs, cn) = self._read, self._infer
        if rn < 2 * READ_PLOTS or cn < 2 * READ_PLOTS or self._readers >= self.max_readers:
            return
        if rs / rn > READER_SHARE * (cs / cn) / self.workers * self._readers:
            self._add_reader()
            self._read, self._infer = [0.0, 0], [0.0, 0]  # judge the new setting afresh

    def results(self) -> Iterator[ChunkResult]:
        """Run the stream; yield each chunk when its last batch is classified (completion order)."""
        for k in range(self.workers):
            self._start(self._infer_loop, f"landuse-infer-{k + 1}")
        self._add_reader()
        live = self.workers
        try:
            while live:
                kind, chunk, n, stats = self._events.get()
                if kind == "error":
                    raise stats if stats is not None else chunk  # pragma: no cover - defensive
                if kind == "exit":
                    live -= 1
                    continue
                res = chunk.result
                for attr in ("read_s", "infer_s", "assemble_s", "model_load_s", "plots_read", "plots_classified"):
                    setattr(res, attr, getattr(res, attr) + getattr(stats, attr))
                if kind == "read":
                    chunk.unread -= 1
                    chunk.batches_left += n
                    self._read[0] += stats.read_s
                    self._read[1] += stats.plots_read
                    self._more_readers()
                else:
                    chunk.batches_left -= 1
                    res.worker = stats.worker
                    self._infer[0] += stats.infer_s + stats.assemble_s
                    self._infer[1] += n
                if chunk.unread == 0 and chunk.batches_left == 0:
                    res.columns = finish_columns(chunk.columns)
                    res.task_s = res.read_s + res.infer_s + res.assemble_s
                    res.finished_at = time.time()
                    yield res
        finally:
            self._stop.set()
            for _ in range(self.workers):
                try:
                    self._ready.put_nowait(None)
                except Exception:  # noqa: BLE001 - queue full: the threads see the stop flag
                    pass
            for t in self._threads:
                t.join(timeout=30)


@contextmanager
def _transient_on_error(bar: Any) -> Iterator[None]:
    """A run that fails leaves no half-drawn progress bar above its one error line."""
    try:
        yield
    except BaseException:
        live = getattr(bar, "live", None)
        if live is not None:
            live.transient = True
        raise


@contextmanager
def _quiet_dask_shutdown() -> Iterator[None]:
    """Closing a cluster logs heartbeat / stream-closed noise: silence Dask's loggers meanwhile
    (unless -v asked for INFO logs)."""
    if logging.getLogger().isEnabledFor(logging.INFO):
        yield
        return
    loggers = [logging.getLogger(n) for n in ("distributed", "tornado", "asyncio")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


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
            refresh_per_second=2,  # rich's default 10 redraws a second cost ~1 % of a 2-core run
        )
        bar.add_task("plots", total=total)
        return bar


class PhaseClock:
    """Seconds spent per named phase of a run (``with clock("phase"): ...`` accumulates)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, phase: str, seconds: float) -> None:
        with self._lock:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def timed(self, phase: str, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``, its seconds added to ``phase``."""
        with self(phase):
            return fn(*args)

    def __call__(self, phase: str) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def timed() -> Any:
            t0 = time.perf_counter()
            try:
                yield
            finally:
                self.add(phase, time.perf_counter() - t0)

        return timed()

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.seconds.items()}


def classify_scene(
    scene: SceneLike,
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
    scheduler: str = defaults.SCHEDULER,
    workers: int | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    clock: PhaseClock | None = None,
    preloaded: _Background | None = None,
    wait: bool = False,
) -> RunResult:
    """Classify every plot of ``grid`` from ``scene`` into the run directory ``out``.

    Resumable: parts already in ``out`` for an equal manifest are kept; a different manifest
    raises :class:`RunStoreError` unless ``overwrite``. ``clock`` collects the seconds per
    phase (``summary.json`` ``timings.phases``); ``preloaded``: the model of
    ``worker_model_ref(model, batch_size)``, already loading on a thread.
    """
    t_start = time.perf_counter()
    clock = clock or PhaseClock()
    scheduler = resolve_scheduler(scheduler)
    if not 0.0 < min_valid <= 1.0:
        raise InputError(f"min_valid {min_valid} is outside (0, 1]; give e.g. 0.9", param="min_valid")
    if batch_size < 1:
        raise InputError(f"batch_size {batch_size} must be at least 1", param="batch_size")
    if workers is not None and workers < 1:
        raise InputError(f"workers {workers} must be at least 1", param="workers")
    if aoi_mask is not None and aoi_mask.shape != grid.shape:
        raise InputError(f"AOI mask {aoi_mask.shape} does not match {grid.describe()}")
    workers = workers or default_workers()
    limit_gdal_cache()
    rep = _Reporter(quiet)
    chunks = grid.chunks_of(chunk_plots)

    # the workers' model reference: one onnxruntime thread per worker, the run's batch size; the
    # session loaded here is handed to one worker thread of an in-process scheduler
    mref = worker_model_ref(model, batch_size)
    with clock("model_load_client"):
        if preloaded is not None:
            clf = preloaded.result()
            clock.add("model_load_background", preloaded.seconds)
        else:
            clf = mref.load()
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
    then = "then rerun the same `landuse classify` to complete the run (its parts are kept)"
    with open_run(out, manifest, overwrite=overwrite, wait=wait) as store, writing(out, then):
        todo = [ch for ch in chunks if not store.has_part(ch)]
        skipped = len(chunks) - len(todo)
        if not todo and store.is_finalised():
            msg = (
                f"nothing to do: {store.root} already holds all {grid.size:,} plots of this run "
                f"(same manifest); to recompute, pass `overwrite=True` (CLI: --overwrite)"
            )
            rep.say(msg)
            summary = json.loads(store.output("summary.json").read_text())
            return RunResult(store.root, False, msg, _outputs(store), summary, 0, skipped)
        unmark_complete(store.root)  # from here on the outputs are rewritten: not finished until the end
        if skipped:
            rep.say(f"resuming {store.root}: {skipped} of {len(chunks)} chunks already done, {len(todo)} to compute")

        with clock("coverage"):
            coverage = np.asarray(scene.coverage(grid), dtype=np.float32) if todo else None
        if coverage is not None and coverage.shape != grid.shape:
            raise LanduseError(f"scene coverage {coverage.shape} does not match {grid.describe()}; this is a bug in the imagery module")
        sref = SceneRef.of(scene)
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
            assert coverage is not None  # computed whenever there are chunks to do (the only callers)
            win = np.s_[ch.row_off : ch.row_off + ch.height, ch.col_off : ch.col_off + ch.width]
            want = coverage[win] > 0
            if aoi_mask is not None:
                want &= aoi_mask[win]
            return bool(want.any())

        stats = {"read_s": 0.0, "infer_s": 0.0, "plots_read": 0, "plots_classified": 0}
        readers: int | None = None
        t_classify = time.perf_counter()
        computed = 0
        if todo:
            busy = [ch for ch in todo if needs_reading(ch)]
            empty = [ch for ch in todo if not needs_reading(ch)]
            total = sum(ch.size for ch in todo)
            with rep.progress(total) as bar, _transient_on_error(bar):

                def done(res: ChunkResult) -> None:
                    nonlocal computed
                    if res.finished_at:
                        clock.add("result_transfer", max(0.0, time.time() - res.finished_at))
                    with clock("parquet_parts"):
                        store.write_part(res.chunk, result_table(res, labels))
                    computed += 1
                    for k in stats:
                        stats[k] += getattr(res, k)
                    for k in ("read_s", "infer_s", "assemble_s", "model_load_s", "task_s"):
                        clock.add("worker_" + k[:-2], getattr(res, k))
                    if bar is not None:
                        bar.advance(bar.task_ids[0], res.chunk.size)

                for ch in empty:  # nothing to read or classify: no need for a worker
                    done(process_chunk(task_of(ch)))
                if busy:
                    n_workers = min(workers, len(busy))
                    t0 = time.perf_counter()
                    with _Executor(scheduler, n_workers, rep.say, adopt=(mref.key(), clf)) as ex:
                        clock.add("cluster_start", time.perf_counter() - t0)
                        for res in ex.run(process_chunk, (task_of(ch) for ch in busy)):
                            done(res)
                        if ex.stream is not None:
                            clock.add("inference_waiting_for_pixels", ex.stream.wait_for_pixels_s)
                            readers = ex.stream.readers_started
        classify_s = time.perf_counter() - t_classify

        t_final = time.perf_counter()
        summary = finalise(store, chunks, clock)
        summary["warnings"] = [gsd_warning] if gsd_warning else []
        summary["timings"] = {
            "wall_s": round(time.perf_counter() - t_start, 3),
            "classify_s": round(classify_s, 3),
            "finalise_s": round(time.perf_counter() - t_final, 3),
            "read_s": round(stats["read_s"], 3),
            "infer_s": round(stats["infer_s"], 3),
            "plots_read": stats["plots_read"],
            "plots_classified_now": stats["plots_classified"],
            "reader_threads": readers,
            "plots_per_s": round(sum(ch.size for ch in todo) / classify_s, 2) if todo and classify_s > 0 else None,
            "computed_chunks": computed,
            "skipped_chunks": skipped,
            "scheduler": scheduler,
            "workers": workers,
            "batch_size": batch_size,
            "phases": clock.rounded(),
        }
        from landuse.report.files import write_json

        write_json(store.output("summary.json"), summary)
        mark_complete(store.root, parts=len(chunks), plots=grid.size)
        msg = f"classified {grid.size:,} plots into {store.root} ({computed} chunks computed, {skipped} reused)"
        rep.say(msg)
        for name, path in _outputs(store).items():
            rep.say(f"  {name}: {path}")
        return RunResult(store.root, True, msg, _outputs(store), summary, computed, skipped)


def _outputs(store: RunStore) -> dict[str, Path]:
    from landuse.store import OUTPUTS

    return {name: store.output(name) for name in OUTPUTS}


def finalise(store: RunStore, chunks: Sequence[Chunk], clock: PhaseClock | None = None) -> dict[str, Any]:
    """Merge the parts into plots.parquet, plots.geojson, classes.tif, probabilities.tif;
    return the summary (without timings; the caller writes summary.json last)."""
    clock = clock or PhaseClock()
    with clock("finalise_imports"):
        import geopandas as gpd
        import pandas as pd

        from landuse.report import files

    grid = store.grid
    labels = store.labels
    with clock("finalise_read_parts"):
        table = store.read_parts(chunks)
    rows = table.column("row").to_numpy().astype(np.int64)
    cols = table.column("col").to_numpy().astype(np.int64)
    flat = rows * grid.width + cols
    if table.num_rows != grid.size or np.unique(flat).size != grid.size:
        raise RunStoreError(
            f"{store.root} parts hold {table.num_rows} rows for {grid.size} plots (duplicates or gaps); rerun with `overwrite=True`"
        )
    with clock("finalise_frame"):
        # keep class_index an integer column with nulls (pandas would make it float64)
        df = table.to_pandas(types_mapper={pa.int16(): pd.Int16Dtype()}.get)
        df.insert(0, "plot_id", grid.plot_ids(rows, cols))
        gdf = gpd.GeoDataFrame(df, geometry=grid.footprints(rows, cols), crs=grid.crs.to_wkt())
    provenance = {k: v for k, v in store.manifest.items()}

    from concurrent.futures import ThreadPoolExecutor

    # the vector writers run at once on threads (GDAL / pyarrow release the GIL; the GeoPackage
    # writer mostly waits on SQLite): the finalise no longer leaves the other cores idle
    with ThreadPoolExecutor(3, thread_name_prefix="landuse-finalise") as pool:
        writes = [
            pool.submit(clock.timed, "finalise_geoparquet", files.write_geoparquet, gdf, store.output("plots.parquet"), provenance),
            pool.submit(clock.timed, "finalise_geojson", files.write_geojson, gdf, store.output("plots.geojson"), provenance),
            pool.submit(clock.timed, "finalise_gpkg", files.write_plot_layers, gdf, store.output("plots.gpkg"), labels, provenance),
        ]
        with clock("finalise_cog"):
            cls = np.full(grid.shape, -1, dtype=np.int16)
            cls[rows, cols] = table.column("class_index").fill_null(-1).to_numpy()
            unknown = np.zeros(grid.shape, dtype=bool)
            unknown[rows, cols] = np.asarray(table.column("status").to_numpy(zero_copy_only=False)) == "unknown"
            files.write_class_raster(store.output("classes.tif"), grid, cls, labels, _tag_provenance(store.manifest), unknown=unknown)
            probs = np.full((len(labels), *grid.shape), np.nan, dtype=np.float32)
            for i, name in enumerate(labels):
                probs[i, rows, cols] = table.column(f"prob_{name}").to_numpy(zero_copy_only=False)
            probs[:, cls < 0] = np.nan
            files.write_probability_raster(store.output("probabilities.tif"), grid, probs, labels, _tag_provenance(store.manifest))
        with clock("finalise_summary"):
            summary = summarise(df, grid, labels, store.manifest)
        with clock("finalise_wait_vector_writers"):
            for w in writes:
                w.result()
    return summary


def _tag_provenance(manifest: dict[str, Any]) -> dict[str, Any]:
    keys = ("toolkit", "period", "grid", "inputs", "model", "parameters", "created")
    return {k: manifest.get(k) for k in keys}


def summarise(df: pd.DataFrame, grid: PlotGrid, labels: Sequence[str], manifest: dict[str, Any]) -> dict[str, Any]:
    """Plots and hectares per class and unclassified plots by status and reason.

    Hectares: a classified plot counts whole (``plot_area_ha``), because the label stands for
    the plot; ``imaged_hectares`` weighs each plot by its valid fraction (the area actually
    seen). Unclassified plots count whole per status.
    """
    area = grid.plot_area_ha
    status = df["status"].to_numpy()
    valid = df["valid_fraction"].to_numpy(dtype=float)
    idx = df["class_index"].fillna(-1).to_numpy(dtype=int)
    classified = status == st.CLASSIFIED
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
    for name in STATUSES:
        if name == st.CLASSIFIED:
            continue
        sel = status == name
        if not sel.any():
            continue
        reasons = df.loc[sel, "reason"].value_counts()
        unclassified[name] = {
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


def imagery_gsd_m(scene: SceneLike) -> float | None:
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


def resolution_warning(scene: SceneLike, model_gsd_m: float | None) -> str | None:
    """One line when the imagery is much coarser than the model expects, else None."""
    if not model_gsd_m:
        return None
    gsd = imagery_gsd_m(scene)
    if gsd is None or gsd <= GSD_WARN_FACTOR * model_gsd_m:
        return None
    return (f"the imagery is {gsd:.3g} m per pixel but the model expects {model_gsd_m:g} m: "
            f"plots are up-sampled {gsd / model_gsd_m:.1f}x and accuracy is lower; check the "
            f"unknown share, or adapt the model to this imagery (landuse train DATASET --init)")


def aoi_info(aoi: AoiLike | None) -> dict[str, Any] | None:
    """Provenance of an AOI file (path and sha256)."""
    if aoi is None:
        return None
    p = Path(aoi)
    info = {"path": str(p.resolve()), "sha256": sha256_file(p)}
    where = getattr(aoi, "where", None)  # landuse.grid.AoiFile: features picked by attribute
    return {**info, "where": where} if where else info


def plan_grid(
    scene: SceneLike,
    grid_file: str | Path | None = None,
    aoi: AoiLike | None = None,
    plot_size_m: float = defaults.PLOT_SIZE_M,
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
    aoi: AoiLike | None = None,
    grid_file: str | Path | None = None,
    plot_size_m: float = defaults.PLOT_SIZE_M,
    bands: Sequence[int] | None = None,
    backend: str = "onnx",
    backend_options: dict[str, Any] | None = None,
    stac: StacSource | None = None,
    stretch: Any = None,
    yes: bool = False,
    **options: Any,
) -> RunResult:
    """``landuse classify``: open the imagery (files, or ``stac``: a :class:`landuse.stac.StacSource`), plan the grid, classify (see :func:`classify_scene`)."""
    from landuse.imagery import Scene
    from landuse.plan import check_plot_size

    check_plot_size(plot_size_m)
    clock = PhaseClock()
    if stac is None and not sources:
        raise InputError("no imagery given; pass one or more GeoTIFFs, a VRT or URLs")
    if stac is not None and sources:
        raise InputError("give imagery files or a STAC source (`stac`), not both")
    if backend == "onnx":
        source = resolve_model_spec(model)
        ref = ModelRef(source, tuple(sorted((backend_options or {}).items())))
    elif backend == "customvision":
        opts = {k: v for k, v in (backend_options or {}).items() if v is not None}
        ref = ModelRef(None, tuple(sorted(opts.items())), load_customvision)
    else:
        raise InputError(f"backend {backend!r} is not known; use onnx or customvision", param="backend")
    # the model loads (onnxruntime import + session) on a thread while the imagery is opened and
    # the grid planned: start-up uses both cores of a small machine
    preload = _Background(worker_model_ref(ref, int(options.get("batch_size", DEFAULT_BATCH_SIZE))).load)
    if stac is not None:  # imagery from a STAC search (landuse.stac)
        from landuse.stac import open_period

        with clock("open_imagery"):
            scene, selection = open_period(stac, aoi=aoi, grid_file=grid_file, bands=bands, out=out,
                                           overwrite=bool(options.get("overwrite")))
        with clock("plan_grid"):
            grid, mask = plan_grid(scene, grid_file, aoi, plot_size_m)
            selection.attach(scene, grid, mask)
    else:
        with clock("open_imagery"):
            scene = Scene.open(list(sources), bands=list(bands) if bands else None, stretch=stretch)
        with clock("plan_grid"):
            grid, mask = plan_grid(scene, grid_file, aoi, plot_size_m)
    from landuse.plan import check_job

    tps = (backend_options or {}).get("tps") if backend == "customvision" else None
    check_job("classify", grid, scene.files, yes=yes, plots=int(mask.sum()) if mask is not None else None,
              workers=options.get("workers"), plots_per_s=tps)
    return classify_scene(
        scene, grid, ref, out, period=period, aoi_mask=mask, aoi_info=aoi_info(aoi), clock=clock,
        preloaded=preload, **options
    )


class _Background:
    """``fn()`` started on a daemon thread; :meth:`result` waits and returns it (or raises)."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, args=(fn,), name="landuse-preload", daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        t0 = time.perf_counter()
        try:
            self._value = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised by result() in the caller's thread
            self._error = exc
        self.seconds = time.perf_counter() - t0

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value
