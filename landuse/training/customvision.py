"""Training in Custom Vision through the official SDK (``CustomVisionTrainingClient``).

``train_customvision(dataset_dir, out_dir, options)`` takes a tag-per-folder dataset to a
trained, published and exported iteration:

1. project: found by name or created (Multiclass / Multilabel) on a compact domain looked up by
   name through ``get_domains`` (compact = exportable);
2. tags: missing ones created (a ``Negative`` folder becomes the Negative tag);
3. upload: ``create_images_from_files`` in batches of at most 64 images and 20 tags, every
   per-image status checked (``OK``, ``OKDuplicate``; errors listed by file); a local ledger
   (``DATASET/.landuse-cv-uploads.jsonl``: project id + file sha256) makes a rerun skip what the
   project already holds;
4. train (``train_project``), poll ``get_iteration`` with backoff until Completed / Failed;
5. ``get_iteration_performance(threshold)`` printed like the portal's Performance page and saved
   as ``performance.json``;
6. publish under ``publish_name`` to ``LANDUSE_CV_PREDICTION_RESOURCE_ID`` (the prediction
   resource's ARM id);
7. export ONNX, poll ``get_exports`` until Done, download the zip and unpack it into ``out_dir``
   (the Custom Vision layout :mod:`landuse.classify.onnx` loads).

Calls are paced at the training quota (F0 2 / S0 10 calls a second) and 429 answers are retried
after ``Retry-After`` (header or "retry after N second" text); 5xx / transport errors of
idempotent calls are retried with backoff; 401 / 403 fail at once. The training key comes from
``LANDUSE_CV_TRAINING_KEY`` and is never printed, logged or written.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from landuse.classify.base import sha256_file
from landuse.classify.customvision import REFUSED_RETRIES, REFUSED_RETRY_S, connection_refused
from landuse.errors import DatasetError, EndpointError, InputError, ModelError, OutputExistsError
from landuse.fileio import swap_in_dir, write_json
from landuse.retry import RetryPolicy, is_retryable

log = logging.getLogger(__name__)

ENV_ENDPOINT = "LANDUSE_CV_TRAINING_ENDPOINT"
ENV_KEY = "LANDUSE_CV_TRAINING_KEY"
ENV_PREDICTION_RESOURCE = "LANDUSE_CV_PREDICTION_RESOURCE_ID"
MAX_BATCH_IMAGES = 64
MAX_BATCH_TAGS = 20
MAX_UPLOAD_BYTES = 6 * 1024 * 1024
TRAINING_TPS = {"F0": 2.0, "S0": 10.0}
LEDGER_NAME = ".landuse-cv-uploads.jsonl"
DEFAULT_DOMAIN = "General (compact)"
OK_STATUSES = ("OK", "OKDuplicate")


@dataclass
class CVTrainOptions:
    """Options of a Custom Vision training run (see ``landuse train --backend customvision``)."""

    project: str
    classification_type: str = "Multiclass"
    domain: str = DEFAULT_DOMAIN
    tier: str = "S0"
    threshold: float = 0.5
    publish_name: str = "production"
    publish: bool = True
    export: bool = True
    export_flavor: str | None = None
    poll_interval: float = 2.0  # first wait between iteration / export polls (s), grows x1.5
    poll_max_interval: float = 30.0
    timeout_s: float = 3600.0  # give up waiting for training / export after this
    max_retries: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    retry_after_max: float = 60.0
    request_timeout: float = 100.0
    tps: float | None = None  # overrides the tier's quota

    def validate(self) -> None:
        """Raise InputError on values that cannot work."""
        if self.classification_type not in ("Multiclass", "Multilabel"):
            raise InputError(f"`classification_type` {self.classification_type!r} must be Multiclass or Multilabel")
        if not 0.0 <= self.threshold <= 1.0:
            raise InputError(f"`threshold` {self.threshold} must lie in [0, 1]")
        if self.tier not in TRAINING_TPS:
            raise InputError(f"`tier` {self.tier!r} must be one of {', '.join(TRAINING_TPS)}")
        if not self.project.strip():
            raise InputError("`project` must name the Custom Vision project")
        if not self.publish_name.strip():
            raise InputError("`publish_name` must not be empty")


@dataclass
class UploadReport:
    """Per-image outcome of the upload step."""

    uploaded: int = 0
    ok: int = 0
    duplicate: int = 0
    skipped: int = 0  # already in the ledger for this project
    batches: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (file, status)

    def describe(self) -> str:
        text = (f"upload: {self.uploaded} sent in {self.batches} batches (OK {self.ok}, OKDuplicate {self.duplicate}), "
                f"{self.skipped} already uploaded")
        if self.errors:
            text += f"; {len(self.errors)} failed: " + "; ".join(f"{f}: {s}" for f, s in self.errors[:20])
            if len(self.errors) > 20:
                text += f" ... (+{len(self.errors) - 20})"
        return text


@dataclass
class CVTrainResult:
    """What a Custom Vision training run produced."""

    project_id: str
    iteration_id: str
    iteration_name: str
    performance: dict[str, Any]
    upload: UploadReport
    published: str | None
    model_dir: Path | None
    out_dir: Path


# ---------------------------------------------------------------------------------------------
# credentials and calls


def read_credentials(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(endpoint, key) from the environment; EndpointError naming the missing variable."""
    env = os.environ if env is None else env
    endpoint = (env.get(ENV_ENDPOINT) or "").strip()
    key = (env.get(ENV_KEY) or "").strip()
    if not endpoint:
        raise EndpointError(f"{ENV_ENDPOINT} is not set; export it (https://<resource>.cognitiveservices.azure.com)")
    if not key:
        raise EndpointError(f"{ENV_KEY} is not set; export the training resource's key (never pass it on the command line)")
    return endpoint.rstrip("/"), key


class TrainingAPI:
    """A ``CustomVisionTrainingClient`` with pacing and retries (the SDK retries no POST)."""

    def __init__(self, endpoint: str, key: str, options: CVTrainOptions) -> None:
        from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
        from msrest.authentication import ApiKeyCredentials

        self.endpoint = endpoint
        self.options = options
        self.client = CustomVisionTrainingClient(endpoint, ApiKeyCredentials(in_headers={"Training-key": key}))
        self.client.config.connection.timeout = options.request_timeout
        # the SDK's urllib3 retry would re-send GETs on 5xx for ~5 s and then raise a transport
        # error; retries are ours (below), so keep the SDK's to connection errors only
        retry = self.client.config.retry_policy.policy
        retry.status_forcelist = set()
        retry.connect = 1  # a refused connection is reported after one quick retry (below), not ~5 s of the SDK's
        self.interval = 1.0 / (options.tps or TRAINING_TPS[options.tier])
        self._next = 0.0
        self.calls = 0
        self.retries = 0
        self.throttled = 0

    def _pace(self) -> None:
        now = time.monotonic()
        if now < self._next:
            time.sleep(self._next - now)
        self._next = max(now, self._next) + self.interval

    @property
    def retry_policy(self) -> RetryPolicy:
        o = self.options
        return RetryPolicy(o.max_retries, o.backoff_base, o.backoff_max, o.retry_after_max)

    def call(self, what: str, fn: Callable[..., Any], *args: Any, idempotent: bool = True, **kwargs: Any) -> Any:
        """Run one SDK call: paced, 429 always retried, 5xx / transport retried when idempotent."""
        from msrest.exceptions import ClientRequestError, HttpOperationError

        attempt = 0
        while True:
            self._pace()
            self.calls += 1
            try:
                return fn(*args, **kwargs)
            except HttpOperationError as exc:
                response = exc.response
                status = int(getattr(response, "status_code", 0) or 0)
                code, message = error_detail(exc)
                if status in (401, 403):
                    raise EndpointError(
                        f"Custom Vision training endpoint {self.endpoint} refused the key ({status} {code or 'Access Denied'}) "
                        f"during {what}; check {ENV_KEY} is the training resource's key and {ENV_ENDPOINT} its endpoint"
                    ) from None
                if status == 429:
                    self.throttled += 1
                    delay = self.retry_policy.delay(attempt, response, throttled=True)
                elif idempotent and is_retryable(status):
                    delay = self.retry_policy.backoff(attempt)
                else:
                    raise CustomVisionCallError(what, status, code, message) from None
                reason = f"{status} {code or ''}".strip()
            except ClientRequestError as exc:
                if connection_refused(exc) and attempt >= REFUSED_RETRIES:
                    raise EndpointError(
                        f"Custom Vision training endpoint {self.endpoint} is not answering (connection refused) "
                        f"during {what}; check {ENV_ENDPOINT} and that the service is running"
                    ) from None
                if not idempotent:
                    raise EndpointError(
                        f"Custom Vision training endpoint {self.endpoint} unreachable during {what} "
                        f"({type(getattr(exc, 'inner_exception', exc)).__name__}); check {ENV_ENDPOINT} and retry"
                    ) from None
                delay = REFUSED_RETRY_S if connection_refused(exc) else self.retry_policy.backoff(attempt)
                reason = type(getattr(exc, "inner_exception", exc)).__name__
            attempt += 1
            if attempt > self.options.max_retries:
                raise EndpointError(
                    f"Custom Vision training endpoint {self.endpoint} still failing {what} after "
                    f"{self.options.max_retries} retries (last: {reason}); try again later or use `tier` F0 pacing"
                )
            self.retries += 1
            log.info("%s failed (%s); retry %d in %.2f s", what, reason, attempt, delay)
            time.sleep(delay)


class CustomVisionCallError(EndpointError):
    """A Custom Vision call answered an error that is not retried (carries the service code)."""

    def __init__(self, what: str, status: int, code: str | None, message: str) -> None:
        self.status = status
        self.code = code
        super().__init__(f"Custom Vision {what} failed: {status} {code or ''} {message}".strip()
                         + "; see the message for the fix")


def error_detail(exc: Any) -> tuple[str | None, str]:
    """(code, message) of an SDK error, from either error body shape."""
    code = getattr(getattr(exc, "error", None), "code", None)
    message = getattr(getattr(exc, "error", None), "message", None) or ""
    text = getattr(getattr(exc, "response", None), "text", "") or ""
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        body = {}
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        code = code or (inner or {}).get("code")
        message = message or (inner or {}).get("message") or ""
    return (str(code) if code else None), str(message)[:300]


# ---------------------------------------------------------------------------------------------
# the upload ledger


class UploadLedger:
    """Append-only JSONL of images a project accepted: {project, sha256, file, tag, status}."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._done: set[tuple[str, str]] = set()
        if path.exists():
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    self._done.add((rec["project"], rec["sha256"]))
                except (ValueError, KeyError, TypeError):
                    raise DatasetError(f"upload ledger {path} line {n} is corrupt; delete the file (images already "
                                       "in the project then come back as OKDuplicate)") from None

    def has(self, project: str, sha: str) -> bool:
        return (project, sha) in self._done

    def add(self, records: list[dict[str, Any]]) -> None:
        """Append records and flush them to disk (a crash loses at most the batch in flight)."""
        if not records:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, sort_keys=True) + "\n")
                self._done.add((rec["project"], rec["sha256"]))
            f.flush()
            os.fsync(f.fileno())


# ---------------------------------------------------------------------------------------------
# steps


def find_domain(api: TrainingAPI, name: str, need_export: bool) -> Any:
    """The classification domain called ``name`` (case-insensitive); it must be exportable to export."""
    domains = api.call("get_domains", api.client.get_domains)
    cls = [d for d in domains if (d.type or "Classification") == "Classification"]
    match = [d for d in cls if (d.name or "").lower() == name.lower()]
    if not match:
        names = ", ".join(sorted(d.name for d in cls if d.name))
        raise InputError(f"`domain` {name!r} is not a classification domain of {api.endpoint}; choose one of: {names}")
    dom = match[0]
    if need_export and not dom.exportable:
        compact = ", ".join(sorted(d.name for d in cls if d.exportable)) or "none"
        raise InputError(f"domain {dom.name!r} cannot be exported; pick a compact domain ({compact}) or pass `export=False`")
    return dom


def ensure_project(api: TrainingAPI, opts: CVTrainOptions, domain: Any) -> Any:
    """The project named ``opts.project`` (checked against the domain / type), created when absent."""
    for p in api.call("get_projects", api.client.get_projects):
        if p.name == opts.project:
            s = p.settings
            if s is not None and s.classification_type and s.classification_type != opts.classification_type:
                raise InputError(
                    f"project {opts.project!r} is {s.classification_type}, not {opts.classification_type}; "
                    "pass the matching `classification_type` or another `project`"
                )
            if s is not None and s.domain_id and s.domain_id != domain.id:
                raise InputError(
                    f"project {opts.project!r} uses another domain (id {s.domain_id}) than {domain.name!r}; "
                    "pass its `domain` or another `project`"
                )
            return p
    return api.call(
        "create_project", api.client.create_project, opts.project, domain_id=domain.id,
        classification_type=opts.classification_type, idempotent=False,
    )


def ensure_tags(api: TrainingAPI, project_id: str, names: list[str]) -> dict[str, str]:
    """tag name -> tag id, creating the missing tags (``Negative`` as the Negative tag)."""
    have = {t.name: t.id for t in api.call("get_tags", api.client.get_tags, project_id)}
    for name in names:
        if name not in have:
            ttype = "Negative" if name.lower() == "negative" else "Regular"
            tag = api.call("create_tag", api.client.create_tag, project_id, name, type=ttype, idempotent=False)
            have[name] = tag.id
    return have


def upload_images(
    api: TrainingAPI,
    project_id: str,
    items: list[tuple[Path, str]],
    tag_ids: dict[str, str],
    ledger: UploadLedger,
    root: Path,
    on_batch: Callable[[int, UploadReport], None] | None = None,
) -> UploadReport:
    """Upload the images the ledger does not hold, in batches of <= 64 images / 20 tags."""
    from azure.cognitiveservices.vision.customvision.training.models import (
        ImageFileCreateBatch,
        ImageFileCreateEntry,
    )

    rep = UploadReport()
    todo: list[tuple[Path, str, str]] = []
    for path, tag in items:
        size = path.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise DatasetError(f"image {path} is {size / 1e6:.1f} MB, above Custom Vision's 6 MB upload limit; shrink it")
        sha = sha256_file(path)
        if ledger.has(project_id, sha):
            rep.skipped += 1
        else:
            todo.append((path, tag, sha))
    batches: list[list[tuple[Path, str, str]]] = []
    cur: list[tuple[Path, str, str]] = []
    for it in todo:
        tags = {t for _, t, _ in cur} | {it[1]}
        if len(cur) >= MAX_BATCH_IMAGES or len(tags) > MAX_BATCH_TAGS:
            batches.append(cur)
            cur = []
        cur.append(it)
    if cur:
        batches.append(cur)
    for n, batch in enumerate(batches, start=1):
        entries = [ImageFileCreateEntry(name=p.name, contents=bytearray(p.read_bytes()), tag_ids=[tag_ids[t]]) for p, t, _ in batch]
        summary = api.call(
            f"create_images_from_files (batch {n}/{len(batches)})", api.client.create_images_from_files,
            project_id, ImageFileCreateBatch(images=entries),
        )
        results = list(summary.images or [])
        if len(results) != len(batch):
            raise EndpointError(
                f"Custom Vision answered {len(results)} image results for a batch of {len(batch)}; "
                "rerun (the ledger keeps what was accepted)"
            )
        accepted = []
        for (p, t, sha), res in zip(batch, results, strict=True):
            status = str(res.status or "ErrorUnknown")
            rel = str(p.relative_to(root))
            if status in OK_STATUSES:
                rep.ok += status == "OK"
                rep.duplicate += status == "OKDuplicate"
                accepted.append({"project": project_id, "sha256": sha, "file": rel, "tag": t, "status": status,
                                 "image_id": getattr(res.image, "id", None) if res.image else None})
            else:
                rep.errors.append((rel, status))
        ledger.add(accepted)
        rep.uploaded += len(batch)
        rep.batches += 1
        if on_batch:
            on_batch(n, rep)
    return rep


def _poll(what: str, fn: Callable[[], Any], done: Callable[[Any], bool], opts: CVTrainOptions,
          say: Callable[[str], None]) -> Any:
    wait = opts.poll_interval
    t0 = time.monotonic()
    while True:
        value = fn()
        if done(value):
            return value
        if time.monotonic() - t0 > opts.timeout_s:
            raise EndpointError(f"{what} not finished after {opts.timeout_s:.0f} s; rerun later (the project keeps it)")
        time.sleep(wait)
        wait = min(opts.poll_max_interval, wait * 1.5)


def train_iteration(api: TrainingAPI, project_id: str, opts: CVTrainOptions, say: Callable[[str], None]) -> Any:
    """Start training (or reuse the newest iteration when nothing changed) and wait for it."""
    try:
        it = api.call("train_project", api.client.train_project, project_id, idempotent=False)
        say(f"training iteration {it.name} ({it.id}) ...")
    except CustomVisionCallError as exc:
        if exc.code not in ("BadRequestTrainingNotNeeded", "BadRequestTrainingNotNeededButTrainingPipelineUpdated"):
            raise
        its = [i for i in api.call("get_iterations", api.client.get_iterations, project_id) if i.status == "Completed"]
        if not its:
            raise
        it = max(its, key=lambda i: (i.trained_at or i.last_modified or i.created).timestamp())
        say(f"nothing changed since iteration {it.name}; reusing it")
    it = _poll(f"training of iteration {it.name}",
               lambda: api.call("get_iteration", api.client.get_iteration, project_id, it.id),
               lambda i: i.status in ("Completed", "Failed"), opts, say)
    if it.status == "Failed":
        detail = getattr(it, "training_error_details", None) or "no detail"
        raise EndpointError(f"Custom Vision training of iteration {it.name} failed ({detail}); check the images and tags, then rerun")
    return it


def performance_dict(perf: Any, threshold: float) -> dict[str, Any]:
    """The iteration performance as plain JSON (per tag and overall)."""

    def f(v: Any) -> float | None:
        return None if v is None else float(v)

    tags = [
        {"tag": t.name, "id": t.id, "precision": f(t.precision), "recall": f(t.recall),
         "average_precision": f(t.average_precision),
         "precision_std": f(t.precision_std_deviation), "recall_std": f(t.recall_std_deviation)}
        for t in (perf.per_tag_performance or [])
    ]
    return {"threshold": threshold, "per_tag": tags, "precision": f(perf.precision), "recall": f(perf.recall),
            "mAP": f(perf.average_precision),
            "precision_std": f(perf.precision_std_deviation), "recall_std": f(perf.recall_std_deviation)}


def performance_table(perf: dict[str, Any]) -> str:
    """The Performance page as text: precision, recall, AP per tag; overall precision / recall / mAP."""

    def pct(v: float | None) -> str:
        return "   -  " if v is None else f"{100 * v:5.1f}%"

    width = max([len("Tag")] + [len(t["tag"]) for t in perf["per_tag"]])
    lines = [f"Performance at probability threshold {100 * perf['threshold']:.0f}%",
             f"  {'Tag':<{width}}  Precision  Recall      AP"]
    for t in perf["per_tag"]:
        lines.append(f"  {t['tag']:<{width}}     {pct(t['precision'])}  {pct(t['recall'])}  {pct(t['average_precision'])}")
    lines.append(f"  {'Overall':<{width}}     {pct(perf['precision'])}  {pct(perf['recall'])}  {pct(perf['mAP'])} (mAP)")
    return "\n".join(lines)


def export_onnx(api: TrainingAPI, project_id: str, iteration: Any, opts: CVTrainOptions,
                say: Callable[[str], None]) -> bytes:
    """Request (or find) the ONNX export of an iteration, wait until Done, return the zip bytes."""
    import requests

    def mine(e: Any) -> bool:
        return e.platform == "ONNX" and (e.flavor or None) == opts.export_flavor

    existing = [e for e in api.call("get_exports", api.client.get_exports, project_id, iteration.id) if mine(e)]
    if not existing or existing[0].status == "Failed":
        try:
            api.call("export_iteration", api.client.export_iteration, project_id, iteration.id, "ONNX",
                     flavor=opts.export_flavor, idempotent=False)
        except CustomVisionCallError as exc:
            if exc.code != "BadRequestExportAlreadyInProgress" and "already queued" not in str(exc):
                raise
        say("exporting ONNX ...")
    exports = _poll(
        f"ONNX export of iteration {iteration.name}",
        lambda: [e for e in api.call("get_exports", api.client.get_exports, project_id, iteration.id) if mine(e)],
        lambda es: bool(es) and es[0].status in ("Done", "Failed"), opts, say,
    )
    ex = exports[0]
    if ex.status == "Failed" or not ex.download_uri:
        raise EndpointError(f"Custom Vision could not export iteration {iteration.name} to ONNX; retrain on a compact domain and rerun")
    uri = ex.download_uri
    if not re.match(r"^https?://", uri):
        raise EndpointError(f"the export's download location {uri!r} is not a URL (own-storage projects); download it from the portal")
    try:
        resp = requests.get(uri, timeout=opts.request_timeout)
    except requests.RequestException as exc:
        raise EndpointError(f"cannot download the ONNX export ({type(exc).__name__}); rerun to retry") from None
    if resp.status_code != 200:
        raise EndpointError(f"downloading the ONNX export answered {resp.status_code}; rerun (the export link may have expired)")
    return resp.content


def unpack_export(data: bytes, out: Path, extra: dict[str, Any], overwrite: bool) -> Path:
    """Unpack an export zip into ``out`` atomically (model.onnx + labels.txt required) plus JSON extras."""
    if out.exists() and not overwrite:
        raise OutputExistsError(f"model folder {out} exists; pass `overwrite=True` or choose another `out`")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for info in zf.infolist():
                    name = Path(info.filename)
                    if info.is_dir():
                        continue
                    if name.is_absolute() or ".." in name.parts:
                        raise ModelError(f"the export zip holds an unsafe path {info.filename!r}; not unpacked")
                    target = tmp / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(zf.read(info))
        except zipfile.BadZipFile:
            raise ModelError("the downloaded ONNX export is not a zip file; rerun to download it again") from None
        for need in ("model.onnx", "labels.txt"):
            if not (tmp / need).exists():
                raise ModelError(f"the ONNX export has no {need}; export again from the portal")
        for fname, obj in extra.items():
            (tmp / fname).write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
        swap_in_dir(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def write_json_atomic(path: Path, obj: Any) -> None:
    write_json(path, obj, default=None)


# ---------------------------------------------------------------------------------------------
# the whole run


def train_customvision(
    dataset_dir: str | Path,
    out_dir: str | Path,
    opts: CVTrainOptions,
    overwrite: bool = False,
    say: Callable[[str], None] | None = None,
    env: Mapping[str, str] | None = None,
    ledger_path: str | Path | None = None,
    on_batch: Callable[[int, UploadReport], None] | None = None,
) -> CVTrainResult:
    """Dataset folder -> Custom Vision project, trained iteration, performance, publish, ONNX export.

    ``out_dir`` receives the exported model (Custom Vision layout) with ``performance.json`` and
    ``customvision.json`` beside it (without export: only those two files).
    """
    from landuse import __version__
    from landuse.training.dataset import TagDataset

    say = say or (lambda m: log.info(m))
    opts.validate()
    env = os.environ if env is None else env
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"model folder {out} exists; pass `overwrite=True` or choose another `out`")
    ds = TagDataset.open(dataset_dir)
    say(ds.balance_report())
    endpoint, key = read_credentials(env)
    resource = (env.get(ENV_PREDICTION_RESOURCE) or "").strip()
    if opts.publish and not resource:
        raise EndpointError(
            f"{ENV_PREDICTION_RESOURCE} is not set; export the prediction resource's ARM id "
            "(/subscriptions/.../providers/Microsoft.CognitiveServices/accounts/<name>) or pass `publish=False`"
        )
    api = TrainingAPI(endpoint, key, opts)
    del key
    domain = find_domain(api, opts.domain, opts.export)
    project = ensure_project(api, opts, domain)
    say(f"project {project.name!r} ({project.id}), domain {domain.name}, {opts.classification_type}")
    tag_ids = ensure_tags(api, project.id, ds.tags)
    ledger = UploadLedger(Path(ledger_path) if ledger_path else ds.root / LEDGER_NAME)
    upload = upload_images(api, project.id, ds.items, tag_ids, ledger, ds.root, on_batch=on_batch)
    say(upload.describe())
    iteration = train_iteration(api, project.id, opts, say)
    perf_raw = api.call("get_iteration_performance", api.client.get_iteration_performance,
                        project.id, iteration.id, threshold=opts.threshold)
    perf = performance_dict(perf_raw, opts.threshold)
    say(performance_table(perf))
    published = None
    if opts.publish:
        if getattr(iteration, "publish_name", None) != opts.publish_name:
            api.call("publish_iteration", api.client.publish_iteration, project.id, iteration.id,
                     opts.publish_name, resource, overwrite=True)
        published = opts.publish_name
        say(f"published iteration {iteration.name} as {published!r} (use with --backend customvision, "
            f"LANDUSE_CV_PROJECT_ID={project.id}, LANDUSE_CV_PUBLISHED_NAME={published})")
    info = {
        "toolkit_version": __version__, "endpoint": endpoint, "project_id": project.id, "project": project.name,
        "domain": {"id": domain.id, "name": domain.name}, "classification_type": opts.classification_type,
        "iteration_id": iteration.id, "iteration_name": iteration.name, "published_name": published,
        "dataset": str(ds.root), "counts": ds.counts(),
        "upload": {k: v for k, v in asdict(upload).items() if k != "errors"} | {"errors": upload.errors},
        "options": {k: v for k, v in asdict(opts).items()},
    }
    model_dir = None
    if opts.export:
        data = export_onnx(api, project.id, iteration, opts, say)
        model_dir = unpack_export(data, out, {"performance.json": perf, "customvision.json": info}, overwrite)
        say(f"exported ONNX model to {model_dir}/ (landuse classify --model {model_dir})")
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "performance.json", perf)
        write_json_atomic(out / "customvision.json", info)
    say(f"training API: {api.calls} calls, {api.retries} retries ({api.throttled} throttled)")
    return CVTrainResult(project.id, iteration.id, iteration.name, perf, upload, published, model_dir, out)
