"""The Custom Vision cloud prediction endpoint as a :class:`~landuse.classify.base.Classifier`.

Calls go through the official SDK (``CustomVisionPredictionClient`` with msrest
``ApiKeyCredentials(in_headers={"Prediction-key": key})``), the NoStore route by default.

What the SDK does not do, this module does (the SDK never retries a POST):

* **Rate limit** at the tier's quota (F0: 2 TPS; S0: 20 TPS NoStore, 10 TPS stored; or ``tps=N``).
  The limiter is a token schedule kept in a small state file under the cache directory and
  guarded by ``fcntl.flock``: every thread of every process *on this machine* that talks to
  the same endpoint/route reserves the next free slot (slots ``1 / (tps * headroom)`` s apart),
  so all workers of a local Dask cluster share one quota. On a remote cluster (workers on
  several machines) each worker must take its share: ``share=1 / n_workers`` (see
  :meth:`CustomVisionClassifier.with_share`).
* **Retries**: 429 (``Retry-After`` header, else the "retry after N second" text, else
  exponential backoff with jitter), 408 / 5xx, timeouts and connection errors; 401 / 403 / 404
  fail at once with an :class:`~landuse.errors.EndpointError` naming the endpoint and the fix.
* **Bounded concurrency**: a thread pool of ``concurrency`` threads inside ``predict``.
* **A disk cache** (sqlite) keyed by (image sha256, endpoint, project, published name), so a
  rerun is not billed twice.
* **Tag check**: before any plot is sent, one probe call reads the endpoint's tags; the run's
  ``labels`` must be among them (a ``Negative`` tag is dropped, or mapped onto a label).

The prediction key comes from ``LANDUSE_CV_PREDICTION_KEY`` or the config file; it is never
stored on the classifier's picklable state, in reprs, errors, logs, manifests or outputs.
Workers read it from their own environment (a local cluster's workers inherit it).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import io
import json
import logging
import math
import os
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from landuse.errors import EndpointError, InputError
from landuse.retry import RetryPolicy, is_retryable, retry_after_seconds  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

ENV_ENDPOINT = "LANDUSE_CV_ENDPOINT"
ENV_PROJECT = "LANDUSE_CV_PROJECT_ID"
ENV_PUBLISHED = "LANDUSE_CV_PUBLISHED_NAME"
ENV_KEY = "LANDUSE_CV_PREDICTION_KEY"
ENV_CONFIG = "LANDUSE_CV_CONFIG"
DEFAULT_CONFIG_PATHS = (
    Path("~/.config/landuse/customvision.toml"),
    Path("~/.config/landuse/customvision.yaml"),
    Path("~/.config/landuse/customvision.yml"),
)
DEFAULT_CACHE_DIR = Path("~/.cache/landuse/customvision")

MAX_PREDICTION_BYTES = 4 * 1024 * 1024  # the prediction API's image size cap
# (tier, store) -> transactions per second (reference: limits-and-quotas.md)
TIER_TPS: dict[tuple[str, bool], float] = {
    ("F0", False): 2.0,
    ("F0", True): 2.0,
    ("S0", False): 20.0,
    ("S0", True): 10.0,
}
# US$ per 1,000 prediction transactions (Azure price list, S0; F0 is free up to 10,000 a month).
TIER_PRICE_PER_1000: dict[str, float] = {"F0": 0.0, "S0": 2.0}
# A refused connection (nothing listening) is retried this often, after this pause, then reported.
REFUSED_RETRIES = 1
REFUSED_RETRY_S = 0.5


def connection_refused(exc: BaseException) -> bool:
    """True when ``exc`` (an SDK / requests / urllib3 error) comes from a refused TCP connection."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ConnectionRefusedError) or "connection refused" in str(e).lower():
            return True
        todo.extend(x for x in (e.__cause__, e.__context__, getattr(e, "inner_exception", None),
                                getattr(e, "reason", None), *getattr(e, "args", ())) if isinstance(x, BaseException))
    return False

F0_MONTHLY_LIMIT = 10_000



class _Secret:
    """A string that never shows itself in a repr and refuses to be pickled."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a prediction key is never pickled; workers read it from LANDUSE_CV_PREDICTION_KEY")


@dataclass(frozen=True)
class CustomVisionConfig:
    """Everything about an endpoint but its key (safe to pickle, log and write to a manifest)."""

    endpoint: str
    project_id: str
    published_name: str
    store: bool = False  # False: the NoStore route (images not kept in the portal)
    tier: str = "S0"
    tps: float | None = None  # overrides the tier's quota
    headroom: float = 0.98  # fraction of the quota the limiter aims at
    share: float = 1.0  # fraction of the quota this machine may use (remote clusters: 1/n)
    concurrency: int | None = None  # threads in flight; default: half the rate (2..32)
    image_format: str = "png"  # "png" (lossless) or "jpeg"
    jpeg_quality: int = 95
    timeout: float = 30.0  # seconds per call
    max_retries: int = 8
    backoff_base: float = 0.5  # seconds; doubled each retry, with jitter
    backoff_max: float = 30.0
    retry_after_max: float = 60.0
    labels: tuple[str, ...] | None = None  # the run's classes; default: the endpoint's tags
    negative: str | None = None  # None: drop a Negative tag; else add its probability to this label
    multilabel: bool = False
    input_size: tuple[int, int] = (224, 224)
    cache_dir: str | None = None  # default ~/.cache/landuse/customvision
    cache: bool = True
    config_path: str | None = None  # where the key may be read from (workers re-read it)

    def __post_init__(self) -> None:
        if self.tier not in ("F0", "S0"):
            raise InputError(f"tier {self.tier!r} is unknown; use F0 or S0 (or pass tps=N)")
        if self.image_format not in ("png", "jpeg"):
            raise InputError(f"image format {self.image_format!r} is unsupported; use png or jpeg")
        if self.tps is not None and not self.tps > 0:
            raise InputError(f"tps={self.tps} must be > 0")
        if not 0 < self.share <= 1:
            raise InputError(f"share={self.share} must be in (0, 1]")
        if not self.endpoint.startswith(("http://", "https://")):
            raise InputError(
                f"Custom Vision endpoint {self.endpoint!r} is not an http(s) URL; set {ENV_ENDPOINT} "
                "to e.g. https://<resource>.cognitiveservices.azure.com"
            )
        for name in ("project_id", "published_name"):
            if not getattr(self, name):
                raise InputError(f"Custom Vision {name} is empty; set it in the config file or the environment")

    @property
    def quota_tps(self) -> float:
        """The quota in transactions per second (the tier's, or ``tps``)."""
        return float(self.tps) if self.tps is not None else TIER_TPS[(self.tier, self.store)]

    @property
    def rate(self) -> float:
        """Calls per second this machine aims at."""
        return self.quota_tps * self.headroom * self.share

    @property
    def threads(self) -> int:
        """Concurrent calls in flight."""
        if self.concurrency is not None:
            return max(1, int(self.concurrency))
        # enough for the quota at up to ~0.5 s a call; more threads only add new connections
        return int(min(32, max(2, math.ceil(self.rate * 0.5))))

    @property
    def identity(self) -> str:
        """``endpoint/project/published name`` (what the cache and model id key on)."""
        return f"{self.endpoint.rstrip('/')}|{self.project_id}|{self.published_name}"

    def cache_path(self) -> Path:
        return Path(self.cache_dir or DEFAULT_CACHE_DIR).expanduser()


def _read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML or YAML config file into a flat dict."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"cannot read Custom Vision config {path}: {exc.strerror}; fix the path or {ENV_CONFIG}") from None
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text) or {}
    except Exception as exc:  # noqa: BLE001 - any parse error is the file's fault
        raise InputError(f"Custom Vision config {path} is not valid {path.suffix[1:]}: {type(exc).__name__}; fix the file") from None
    if not isinstance(data, dict):
        raise InputError(f"Custom Vision config {path} must be a mapping of keys to values; fix the file")
    section = data.get("customvision", data)
    return {str(k).replace("-", "_"): v for k, v in section.items()}


def _find_config_file(path: str | Path | None) -> Path | None:
    if path is not None:
        return Path(path).expanduser()
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG]).expanduser()
    for candidate in DEFAULT_CONFIG_PATHS:
        if candidate.expanduser().exists():
            return candidate.expanduser()
    return None


def read_prediction_key(config_path: str | Path | None = None) -> _Secret:
    """The prediction key from ``LANDUSE_CV_PREDICTION_KEY``, else the config file's ``prediction_key``."""
    key = os.environ.get(ENV_KEY)
    if not key:
        path = _find_config_file(config_path)
        if path is not None and path.exists():
            key = _read_config_file(path).get("prediction_key")
    if not key:
        raise EndpointError(
            f"no Custom Vision prediction key: set {ENV_KEY} (on every worker) or prediction_key in "
            "~/.config/landuse/customvision.toml"
        )
    return _Secret(str(key).strip())


def load_config(config_path: str | Path | None = None, **overrides: Any) -> CustomVisionConfig:
    """Configuration from the config file, then the environment, then ``overrides`` (not None)."""
    values: dict[str, Any] = {}
    path = _find_config_file(config_path)
    if path is not None and (config_path is not None or path.exists()):
        values.update(_read_config_file(path))
        values["config_path"] = str(path)
    values.pop("prediction_key", None)
    for env, name in ((ENV_ENDPOINT, "endpoint"), (ENV_PROJECT, "project_id"), (ENV_PUBLISHED, "published_name")):
        if os.environ.get(env):
            values[name] = os.environ[env]
    values.update({k: v for k, v in overrides.items() if v is not None})
    missing = [n for n in ("endpoint", "project_id", "published_name") if not values.get(n)]
    if missing:
        env_of = {"endpoint": ENV_ENDPOINT, "project_id": ENV_PROJECT, "published_name": ENV_PUBLISHED}
        raise InputError(
            f"Custom Vision {', '.join(missing)} not configured; set {', '.join(env_of[m] for m in missing)} "
            "or add them to ~/.config/landuse/customvision.toml"
        )
    known = set(CustomVisionConfig.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"unknown Custom Vision setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for name in ("labels", "input_size"):
        if values.get(name) is not None:
            values[name] = tuple(values[name])
    return CustomVisionConfig(**values)


# --------------------------------------------------------------------------------------------
# rate limiter shared by the processes of one machine


class RateLimiter:
    """Evenly spaced call slots shared by every thread and process using the same state file.

    Each :meth:`acquire` reserves the next slot (``interval`` after the previous one, or now)
    under an exclusive ``flock`` of the state file, then sleeps until it. Spacing rather than
    bursts keeps any 1-second window within the quota.
    """

    def __init__(self, path: Path, rate: float, tolerance: float = 0.015) -> None:
        self.path = path
        self.interval = 1.0 / rate
        self.tolerance = tolerance
        self.late = 0
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = -1

    def _open(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def reserve(self, slots: float = 1) -> float:
        """Reserve the next slot (and keep ``slots - 1`` after it free); return its time."""
        slot = 0.0

        def take(last: float, now: float) -> float:
            nonlocal slot
            slot = max(now, last + self.interval)
            return slot + (slots - 1) * self.interval

        self._update(take)
        return slot

    def _update(self, fn: Any) -> None:
        """``last = fn(last, now)`` on the shared state, under the process and file locks."""
        with self._lock:
            fd = self._open()
            try:
                import fcntl
            except ImportError:  # pragma: no cover - Windows: limiter is per process only
                fcntl = None  # type: ignore[assignment]
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                raw = os.pread(fd, 8, 0)
                last = float(np.frombuffer(raw, "<f8")[0]) if len(raw) == 8 else 0.0
                os.pwrite(fd, np.array([fn(last, time.time())], "<f8").tobytes(), 0)
            finally:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def acquire(self, slots: float = 1) -> None:
        """Block until this caller's slot comes (``slots=2``: also keep the next slot free, for a
        call that will be slow to arrive, e.g. the first one on a new connection).

        A caller that wakes more than ``tolerance`` after its slot (CPU contention) pushes the
        unreserved slots back by its lateness before it goes: a late call next to on-time ones
        could otherwise put one call too many into some 1-second window. (Slots already
        reserved by other threads are not moved; with fewer threads than calls per second the
        slot one second later is never among them.)
        """
        slot = self.reserve(slots)
        delay = slot - time.time()
        if delay > 0:
            time.sleep(delay)
        late = time.time() - slot
        if late > self.tolerance:
            self.late += 1
            self._update(lambda last, now: max(last + late, now))

    def __getstate__(self) -> dict:
        return {"path": self.path, "interval": self.interval, "tolerance": self.tolerance}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], 1.0 / state["interval"], state["tolerance"])  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# prediction cache


class PredictionCache:
    """sqlite table: (image sha256, endpoint|project|published name) -> {tag: probability}."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(path, timeout=60, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._con:
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute(
                "CREATE TABLE IF NOT EXISTS predictions (image TEXT, model TEXT, tags TEXT, "
                "created REAL, PRIMARY KEY (image, model))"
            )

    def get_many(self, images: list[str], model: str) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        with self._lock:
            for i in range(0, len(images), 500):
                part = images[i : i + 500]
                rows = self._con.execute(
                    f"SELECT image, tags FROM predictions WHERE model = ? AND image IN ({','.join('?' * len(part))})",
                    [model, *part],
                ).fetchall()
                out.update({img: json.loads(tags) for img, tags in rows})
        return out

    def put(self, image: str, model: str, tags: dict[str, Any]) -> None:
        with self._lock, self._con:
            self._con.execute(
                "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?)",
                (image, model, json.dumps(tags), time.time()),
            )

    def close(self) -> None:
        self._con.close()


# --------------------------------------------------------------------------------------------
# the classifier


def encode_image(pixels: np.ndarray, image_format: str = "png", quality: int = 95) -> bytes:
    """Encode one ``uint8`` RGB plot; refuse more than the 4 MB prediction cap."""
    from PIL import Image

    buf = io.BytesIO()
    img = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), "RGB")
    if image_format == "jpeg":
        img.save(buf, format="JPEG", quality=quality)
    else:
        img.save(buf, format="PNG")
    data = buf.getvalue()
    if len(data) > MAX_PREDICTION_BYTES:
        raise InputError(
            f"a {pixels.shape[1]}x{pixels.shape[0]} plot encodes to {len(data)} bytes as {image_format}, over the "
            "4 MB prediction cap; use image_format='jpeg' or a smaller input size"
        )
    return data


def _image_key(pixels: np.ndarray, image_format: str) -> str:
    h = hashlib.sha256()
    h.update(f"{pixels.shape}|{image_format}|".encode())
    h.update(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())
    return h.hexdigest()


@dataclass
class DryRun:
    """What a run would cost: calls, price, and the time at the quota."""

    plots: int
    cached: int
    calls: int
    tier: str
    price_per_1000: float
    cost: float
    seconds: float
    warning: str | None = None

    def describe(self) -> str:
        text = (
            f"{self.calls} prediction call(s) for {self.plots} plot(s) ({self.cached} cached) at tier {self.tier}: "
            f"${self.cost:.2f} at ${self.price_per_1000:.2f}/1000, ~{self.seconds / 60:.1f} min at the quota"
        )
        return text + (f"; {self.warning}" if self.warning else "")


@dataclass
class CallStats:
    """Counters of one classifier instance (per process)."""

    calls: int = 0
    cached: int = 0
    retries: int = 0
    throttled: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    waited: float = 0.0
    by_status: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, status: int | None = None, **counts: float) -> None:
        """Add to counters (thread-safe)."""
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)
            if status is not None:
                self.by_status[status] = self.by_status.get(status, 0) + 1


class CustomVisionClassifier:
    """A published Custom Vision classification iteration behind the :class:`Classifier` protocol."""

    backend = "customvision"

    def __init__(self, config: CustomVisionConfig, key: str | None = None) -> None:
        self.config = config
        self._key: _Secret | None = _Secret(key) if key is not None else None
        self._labels: list[str] | None = list(config.labels) if config.labels else None
        self._tags: list[tuple[str, str]] | None = None  # (name, type) from the probe
        self._checked = False
        self._init_runtime()

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_env(cls, config_path: str | Path | None = None, **overrides: Any) -> CustomVisionClassifier:
        """Build from the config file / environment (``LANDUSE_CV_*``); ``overrides`` win."""
        return cls(load_config(config_path, **overrides))

    def with_share(self, share: float) -> CustomVisionClassifier:
        """A copy taking ``share`` of the quota (for one machine of a remote cluster)."""
        return CustomVisionClassifier(replace(self.config, share=share))

    def _init_runtime(self) -> None:
        self._local = threading.local()
        self._pool: cf.ThreadPoolExecutor | None = None
        self._limiter: RateLimiter | None = None
        self._cache: PredictionCache | None = None
        self._runtime_lock = threading.Lock()
        self.stats = CallStats()

    def __getstate__(self) -> dict:
        # config only: never the key, clients, pools, files
        return {"config": self.config, "labels": self._labels, "tags": self._tags, "checked": self._checked}

    def __setstate__(self, state: dict) -> None:
        self.config = state["config"]
        self._key = None
        self._labels = state["labels"]
        self._tags = state["tags"]
        self._checked = state["checked"]
        self._init_runtime()

    def __repr__(self) -> str:
        c = self.config
        return (
            f"CustomVisionClassifier(endpoint={c.endpoint!r}, project_id={c.project_id!r}, "
            f"published_name={c.published_name!r}, store={c.store}, rate={c.rate:.2f}/s)"
        )

    # -- protocol attributes -------------------------------------------------------------------

    @property
    def labels(self) -> list[str]:
        if self._labels is None:
            self.check_tags()
        assert self._labels is not None
        return list(self._labels)

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.config.input_size)  # type: ignore[return-value]

    @property
    def multilabel(self) -> bool:
        return self.config.multilabel

    @property
    def model_id(self) -> str:
        c = self.config
        return f"customvision:{c.endpoint.rstrip('/')}/{c.project_id}/{c.published_name}"

    @property
    def model_hash(self) -> str:
        return hashlib.sha256(self.config.identity.encode()).hexdigest()

    def provenance(self) -> dict[str, Any]:
        """What a manifest records about this backend (no key)."""
        d = asdict(self.config)
        d.pop("config_path", None)
        return {"backend": self.backend, "model_id": self.model_id, "model_hash": self.model_hash, "config": d}

    # -- runtime pieces ------------------------------------------------------------------------

    def _secret(self) -> _Secret:
        if self._key is None:
            self._key = read_prediction_key(self.config.config_path)
        return self._key

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            from azure.cognitiveservices.vision.customvision.prediction import (
                CustomVisionPredictionClient,
            )
            from msrest.authentication import ApiKeyCredentials

            creds = ApiKeyCredentials(in_headers={"Prediction-key": self._secret().reveal()})
            client = CustomVisionPredictionClient(self.config.endpoint, creds)
            client.config.enable_http_logger = False  # would log the key header
            # our own retries only: the SDK's would retry connection errors blindly (~4.8 s)
            client.config.retry_policy.retries = 0
            self._local.client = client
        return client

    def _get_limiter(self) -> RateLimiter:
        with self._runtime_lock:
            if self._limiter is None:
                c = self.config
                ident = hashlib.sha256(f"{c.endpoint.rstrip('/')}|{c.store}|{c.rate:.6f}".encode()).hexdigest()[:16]
                # half the slack the headroom leaves in a 1-second window
                tolerance = max(0.002, 0.5 * (1.0 / c.headroom - 1.0))
                self._limiter = RateLimiter(c.cache_path() / f"ratelimit-{ident}.slot", c.rate, tolerance)
            return self._limiter

    def _get_cache(self) -> PredictionCache | None:
        if not self.config.cache:
            return None
        with self._runtime_lock:
            if self._cache is None:
                self._cache = PredictionCache(self.config.cache_path() / "predictions.sqlite")
            return self._cache

    def _get_pool(self) -> cf.ThreadPoolExecutor:
        with self._runtime_lock:
            if self._pool is None:
                self._pool = cf.ThreadPoolExecutor(self.config.threads, thread_name_prefix="customvision")
            return self._pool

    def close(self) -> None:
        """Release the thread pool and cache connection."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    # -- one call with retries -----------------------------------------------------------------

    def _fail(self, status: int, detail: str) -> EndpointError:
        c = self.config
        where = f"Custom Vision endpoint {c.endpoint} (project {c.project_id}, published name {c.published_name!r})"
        if status in (401, 403):
            fix = f"check {ENV_KEY} is the *prediction* key of this resource and {ENV_ENDPOINT} its region/endpoint"
        elif status == 404:
            fix = "check the project id and that the iteration is published under this name (Performance tab > Publish)"
        else:
            fix = "check the request (image format / size) and the endpoint"
        return EndpointError(f"{where} answered {status} {detail}; {fix}")

    @property
    def retry_policy(self) -> RetryPolicy:
        c = self.config
        return RetryPolicy(c.max_retries, c.backoff_base, c.backoff_max, c.retry_after_max)

    def _call(self, data: bytes, cancel: threading.Event) -> list[tuple[str, str, float]]:
        """POST one image; return ``[(tag name, tag type, probability)]``. Retries per the module doc."""
        from msrest.exceptions import ClientRequestError, DeserializationError, HttpOperationError

        c = self.config
        limiter = self._get_limiter()
        client = self._client()
        method = client.classify_image if c.store else client.classify_image_with_no_store
        attempt = 0
        while True:
            if cancel.is_set():
                raise _Cancelled()
            # the first call on a new connection arrives late (TCP/TLS set-up): it gets the
            # following slot too, so it cannot crowd a later call into the same second
            limiter.acquire(1 if getattr(self._local, "warm", False) else 2)
            if cancel.is_set():
                raise _Cancelled()
            self.stats.add(calls=1)
            try:
                result = method(c.project_id, c.published_name, io.BytesIO(data), timeout=c.timeout)
                self._local.warm = True
                self.stats.add(200)
                return [(p.tag_name, p.tag_type or "Regular", float(p.probability)) for p in result.predictions]
            except HttpOperationError as exc:
                response = exc.response
                status = int(getattr(response, "status_code", 0) or 0)
                self._local.warm = True
                self.stats.add(status)
                code = getattr(getattr(exc, "error", None), "code", None)
                detail = f"{code or getattr(response, 'reason', '') or 'error'}"
                if status in (401, 403, 404) or not is_retryable(status):
                    raise self._fail(status, detail) from None
                self.stats.add(**({"throttled": 1} if status == 429 else {"server_errors": 1}))
                delay = self.retry_policy.delay(attempt, response, throttled=status == 429)
                reason = f"{status} {detail}"
            except ClientRequestError as exc:
                self._local.warm = False  # the connection is gone; the next call opens one
                self.stats.add(transport_errors=1)
                if connection_refused(exc):
                    # nothing listens there: one quick retry at most, then say so
                    if attempt >= REFUSED_RETRIES:
                        raise EndpointError(
                            f"Custom Vision endpoint {c.endpoint} is not answering (connection refused); "
                            f"check {ENV_ENDPOINT} and that the service is running"
                        ) from None
                    delay = REFUSED_RETRY_S
                else:
                    delay = self.retry_policy.backoff(attempt)
                reason = type(getattr(exc, "inner_exception", exc)).__name__
            except DeserializationError:
                raise self._fail(200, "a body that is not a Custom Vision ImagePrediction") from None
            attempt += 1
            if attempt > c.max_retries:
                raise EndpointError(
                    f"Custom Vision endpoint {c.endpoint} still failing after {c.max_retries} retries (last: {reason}); "
                    "try again later or lower `tps`"
                )
            self.stats.add(retries=1, waited=delay)
            log.info("Custom Vision call failed (%s); retry %d in %.2f s", reason, attempt, delay)
            if cancel.wait(delay):
                raise _Cancelled()

    # -- tags ------------------------------------------------------------------------------

    def check_tags(self) -> list[tuple[str, str]]:
        """Probe the endpoint once (a blank 256 px image); check the run's labels are among its tags."""
        if self._tags is None:
            blank = encode_image(np.full((256, 256, 3), 127, np.uint8), "png")
            self._tags = [(name, ttype) for name, ttype, _ in self._call(blank, threading.Event())]
        regular = [n for n, t in self._tags if t != "Negative" and n != "Negative"]
        if self._labels is None:
            self._labels = sorted(regular)
        missing = [lab for lab in self._labels if lab not in regular]
        if missing:
            raise EndpointError(
                f"Custom Vision project {self.config.project_id} ({self.config.published_name!r}) has no tag(s) "
                f"{', '.join(missing)} (its tags: {', '.join(n for n, _ in self._tags)}); pass labels= matching "
                "the endpoint's tags or publish an iteration that has them"
            )
        if self.config.negative is not None and self.config.negative not in self._labels:
            raise InputError(f"negative={self.config.negative!r} is not one of the labels {self._labels}; fix the setting")
        self._checked = True
        return list(self._tags)

    def _row(self, preds: list[tuple[str, str, float]]) -> np.ndarray:
        assert self._labels is not None
        index = {lab: i for i, lab in enumerate(self._labels)}
        row = np.zeros(len(self._labels), np.float32)
        for name, ttype, prob in preds:
            if name in index and ttype != "Negative":
                row[index[name]] = prob
            elif (ttype == "Negative" or name == "Negative") and self.config.negative is not None:
                row[index[self.config.negative]] += prob
        return row

    # -- the protocol --------------------------------------------------------------------------

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, len(labels))`` for ``uint8`` RGB ``(N, H, W, 3)``; one call per uncached plot."""
        batch = np.asarray(batch)
        if batch.ndim != 4 or batch.shape[-1] != 3 or batch.dtype != np.uint8:
            raise InputError(f"predict wants uint8 (N, H, W, 3) RGB, got {batch.dtype} {batch.shape}")
        if not self._checked:
            self.check_tags()
        c = self.config
        model = c.identity
        keys = [_image_key(px, c.image_format) for px in batch]
        cache = self._get_cache()
        known = cache.get_many(sorted(set(keys)), model) if cache is not None else {}
        out = np.zeros((len(batch), len(self.labels)), np.float32)
        todo: dict[str, int] = {}  # first index of each uncached image (duplicates called once)
        for i, k in enumerate(keys):
            if k in known:
                self.stats.cached += 1
            elif k not in todo:
                todo[k] = i
        results: dict[str, list[tuple[str, str, float]]] = {
            k: [(n, t, p) for n, (t, p) in ((n, _split(v)) for n, v in tags.items())] for k, tags in known.items()
        }
        if todo:
            cancel = threading.Event()
            pool = self._get_pool()
            futures = {
                pool.submit(self._call, encode_image(batch[i], c.image_format, c.jpeg_quality), cancel): k
                for k, i in todo.items()
            }
            try:
                for fut in cf.as_completed(futures):
                    k = futures[fut]
                    preds = fut.result()
                    results[k] = preds
                    if cache is not None:
                        cache.put(k, model, {n: _join(t, p) for n, t, p in preds})
            except BaseException:
                cancel.set()
                for f in futures:
                    f.cancel()
                cf.wait(futures)
                raise
        for i, k in enumerate(keys):
            out[i] = self._row(results[k])
        return out

    # -- cost --------------------------------------------------------------------------------

    def dry_run(self, plots: int, batch: np.ndarray | None = None, price_per_1000: float | None = None) -> DryRun:
        """Calls and cost of classifying ``plots`` plots (minus cached ones, if ``batch`` is given); no call made."""
        c = self.config
        cached = 0
        if batch is not None and (cache := self._get_cache()) is not None:
            keys = [_image_key(px, c.image_format) for px in batch]
            cached = len(cache.get_many(sorted(set(keys)), c.identity))
        calls = max(0, plots - cached) + (0 if self._checked else 1)  # +1: the tag probe
        price = TIER_PRICE_PER_1000[c.tier] if price_per_1000 is None else price_per_1000
        warning = None
        if c.tier == "F0" and calls > F0_MONTHLY_LIMIT:
            warning = f"over the F0 tier's {F0_MONTHLY_LIMIT} predictions a month; use S0"
        return DryRun(plots, cached, calls, c.tier, price, calls * price / 1000, calls / c.rate, warning)


class _Cancelled(Exception):
    """Internal: a call abandoned because another call of the batch failed."""


def _join(tag_type: str, prob: float) -> list:
    return [tag_type, prob]


def _split(value: Any) -> tuple[str, float]:
    return (str(value[0]), float(value[1]))


def load_customvision(source: str | Path | None = None, **options: Any) -> CustomVisionClassifier:
    """Pipeline model factory (``ModelRef(source, options, factory=load_customvision)``):
    ``source`` is a config file (or ``None``: environment / default file), ``options`` override
    its settings. The pipeline's own ``threads`` / ``batch_size`` options are ignored."""
    for name in ("threads", "batch_size"):
        options.pop(name, None)
    return CustomVisionClassifier.from_env(source, **options)
