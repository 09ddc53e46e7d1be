"""A fake Custom Vision TRAINING API (v3.4-preview) for tests: a real HTTP server on 127.0.0.1.

Answers the routes ``CustomVisionTrainingClient`` calls: domains, projects, tags, images/files,
train, iterations, performance, publish, export / exports, plus ``GET /download/<token>.zip``.
"Training" runs the toolkit's local trainer (:func:`landuse.training.local.train_local`) on a
tiny budget (32 px, 1 epoch, no augmentation), so the exported zip holds a real ONNX model in the
Custom Vision layout. Performance is computed here (the test oracle) from that model's
probabilities on the project's images: per tag precision / recall at the requested threshold,
AP as the mean precision at each true image ranked by the tag's probability.

Faults: ``upload_429`` = upload request numbers (1-based) answered 429 with ``Retry-After``;
``bad_names`` = image names answered ``ErrorImageFormat`` (undecodable images are too).
Duplicates (same bytes already in the project) are answered ``OKDuplicate`` with a 207 batch.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import io
import json
import re
import tempfile
import threading
import time
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

BASE = "/customvision/v3.4-preview/training"
DOMAINS = [
    ("ee85a74c-405e-4adc-bb47-ffa8ca0c9f31", "General", False),
    ("2e37d7fb-3a54-486a-b4d6-cfc369af0018", "General [A2]", False),
    ("0732100f-1a38-4e49-a514-c9b44c697ab5", "General (compact)", True),
    ("a1db07ca-a19a-4830-bae8-e004a42dc863", "General (compact) [S1]", True),
    ("b5cfd229-2ac7-4b2b-8d0a-2b0661344894", "Landmarks (compact)", True),
]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def tiny_local_trainer(dataset_dir: Path, out_dir: Path, image_size: int = 32) -> None:
    """The toolkit's local trainer on a tiny budget (the fake service's 'training')."""
    from landuse.training.local import TrainConfig, train_local

    cfg = TrainConfig(epochs=1, warmup_epochs=0, batch_size=16, image_size=image_size, val_split=0.0,
                      augment=False, threads=1, min_per_tag=1)
    train_local(dataset_dir, out_dir, cfg)


def performance(probs: np.ndarray, truth: np.ndarray, tags: list[str], threshold: float) -> dict[str, Any]:
    """Per tag precision / recall at ``threshold`` and AP; overall pooled P / R and mean AP."""
    per, tp_all, pos_all, n_all, aps = [], 0, 0, 0, []
    for c, _ in enumerate(tags):
        pos = probs[:, c] >= threshold
        true = truth == c
        tp = int((pos & true).sum())
        prec = tp / int(pos.sum()) if pos.any() else 0.0
        rec = tp / int(true.sum()) if true.any() else 0.0
        order = np.argsort(-probs[:, c], kind="stable")
        hits = true[order]
        ranks = np.flatnonzero(hits) + 1
        ap = float(np.mean(np.cumsum(hits)[hits] / ranks)) if hits.any() else 0.0
        per.append((prec, rec, ap))
        tp_all, pos_all, n_all = tp_all + tp, pos_all + int(pos.sum()), n_all + int(true.sum())
        aps.append(ap)
    return {
        "per_tag": per,
        "precision": tp_all / pos_all if pos_all else 0.0,
        "recall": tp_all / n_all if n_all else 0.0,
        "ap": float(np.mean(aps)),
    }


class FakeTraining:
    """The server; a context manager. ``endpoint`` is what the SDK takes."""

    def __init__(self, key: str = "test-training-key", trainer: Any = tiny_local_trainer,
                 upload_429: set[int] | None = None, bad_names: set[str] | None = None,
                 export_polls: int = 1, image_size: int = 32) -> None:
        self.key = key
        self.trainer = trainer
        self.image_size = image_size
        self.upload_429 = set(upload_429 or ())
        self.bad_names = set(bad_names or ())
        self.export_polls = export_polls
        self.lock = threading.Lock()
        self.projects: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        self.images: dict[str, dict[str, dict[str, Any]]] = collections.defaultdict(dict)  # pid -> sha -> image
        self.iterations: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        self.models: dict[str, dict[str, Any]] = {}  # iteration id -> zip bytes, probs, truth, tags
        self.exports: dict[str, dict[str, Any]] = {}
        self.downloads: dict[str, bytes] = {}
        self.published: dict[str, tuple[str, str]] = {}  # iteration id -> (name, resource)
        self.log: list[tuple[str, str, int]] = []  # method, path, status
        self.received: collections.Counter[str] = collections.Counter()  # image sha -> times sent
        self.upload_requests = 0
        self.trained_images: dict[str, int] = {}
        self.errors: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeTraining:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def count(self, method: str, pattern: str) -> int:
        """Requests whose method matches and path matches the regex ``pattern``."""
        return sum(1 for m, p, _ in self.log if m == method and re.search(pattern, p))

    # -- state transitions ------------------------------------------------------------------

    def _train(self, pid: str, it: dict[str, Any]) -> None:
        try:
            tags = sorted(self.tags[pid], key=lambda t: t["name"])
            names = {t["id"]: t["name"] for t in tags}
            with tempfile.TemporaryDirectory() as tmp:
                ds, out = Path(tmp) / "ds", Path(tmp) / "model"
                files, truth = [], []
                for sha, img in self.images[pid].items():
                    name = names[img["tagIds"][0]]
                    (ds / name).mkdir(parents=True, exist_ok=True)
                    path = ds / name / f"{sha[:16]}.png"
                    path.write_bytes(img["bytes"])
                    files.append(path)
                    truth.append(name)
                if self.trainer is tiny_local_trainer:
                    self.trainer(ds, out, image_size=self.image_size)
                else:
                    self.trainer(ds, out)
                labels = (out / "labels.txt").read_text().split()
                from landuse.training.dataset import load_image
                from landuse.training.local import onnx_probs

                x = np.stack([load_image(f, (self.image_size, self.image_size)) for f in files])
                probs = onnx_probs(out / "model.onnx", x, threads=1)
                buf = io.BytesIO()
                with zipfile.ZipFile(buf, "w") as zf:
                    for f in sorted(out.iterdir()):
                        zf.write(f, f.name)
            self.models[it["id"]] = {"zip": buf.getvalue(), "probs": probs, "labels": labels,
                                     "truth": np.array([labels.index(t) for t in truth]),
                                     "tag_ids": {t["name"]: t["id"] for t in tags}}
            it.update(status="Completed", trainedAt=_now(), lastModified=_now(), exportable=True,
                      exportableTo=["ONNX"])
        except Exception as exc:  # noqa: BLE001 - the fake reports any trainer failure as Failed
            self.errors.append(repr(exc))
            it.update(status="Failed", trainingErrorDetails=repr(exc)[:200])

    # -- HTTP ------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, reason: str | None = None, headers: dict | None = None,
                      raw: bytes | None = None, ctype: str = "application/json") -> None:
                data = raw if raw is not None else json.dumps(body).encode()
                # log before answering: a client may act on the answer before this thread resumes
                fake.log.append((self.command, urlsplit(self.path).path, status))
                self.send_response(status, reason)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _err(self, status: int, code: str, message: str) -> None:
                self._send(status, {"code": code, "message": message})

            def do_GET(self) -> None:
                self._route("GET", b"")

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                self._route("POST", self.rfile.read(n) if n else b"")

            def _route(self, method: str, body: bytes) -> None:
                url = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                path = url.path
                m = re.match(r"^/download/([0-9a-f]+)\.zip$", path)
                if m and method == "GET":
                    data = fake.downloads.get(m.group(1))
                    if data is None:
                        self._err(404, "NotFound", "no such blob")
                    else:
                        self._send(200, None, raw=data, ctype="application/zip")
                    return
                if not path.lower().startswith(BASE.lower()):
                    self._err(404, "NotFound", f"no route {path}")
                    return
                if self.headers.get("Training-Key") != fake.key:
                    self._send(401, {"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}, "Access Denied")
                    return
                rest = path[len(BASE):]
                with fake.lock:
                    self._dispatch(method, rest, q, body)

            def _dispatch(self, method: str, rest: str, q: dict[str, str], body: bytes) -> None:
                if rest == "/domains" and method == "GET":
                    self._send(200, [{"id": i, "name": n, "type": "Classification", "exportable": e, "enabled": True,
                                      "exportablePlatforms": ["ONNX", "TensorFlow"] if e else []} for i, n, e in DOMAINS])
                    return
                if rest == "/projects":
                    if method == "GET":
                        self._send(200, list(fake.projects.values()))
                        return
                    pid = str(uuid.uuid4())
                    dom = q.get("domainId") or DOMAINS[0][0]
                    if dom not in {d[0] for d in DOMAINS}:
                        self._err(400, "BadRequestDomainInvalid", "invalid domain")
                        return
                    p = {"id": pid, "name": q.get("name", ""), "description": "", "created": _now(), "lastModified": _now(),
                         "status": "Succeeded",
                         "settings": {"domainId": dom, "classificationType": q.get("classificationType", "Multiclass"),
                                      "targetExportPlatforms": []}}
                    fake.projects[pid] = p
                    self._send(200, p)
                    return
                m = re.match(r"^/projects/([^/]+)(/.*)?$", rest)
                if not m or m.group(1) not in fake.projects:
                    self._err(404, "NotFoundProject", "project not found")
                    return
                pid, sub = m.group(1), m.group(2) or ""
                if sub == "" and method == "GET":
                    self._send(200, fake.projects[pid])
                elif sub == "/tags" and method == "GET":
                    self._send(200, fake.tags[pid])
                elif sub == "/tags" and method == "POST":
                    if any(t["name"] == q["name"] for t in fake.tags[pid]):
                        self._err(400, "BadRequestTagNameNotUnique", "tag name not unique")
                        return
                    t = {"id": str(uuid.uuid4()), "name": q["name"], "description": "", "type": q.get("type", "Regular"),
                         "imageCount": 0}
                    fake.tags[pid].append(t)
                    self._send(200, t)
                elif sub == "/images/files" and method == "POST":
                    self._upload(pid, body)
                elif sub == "/train" and method == "POST":
                    trained = fake.trained_images.get(pid)
                    if trained == len(fake.images[pid]):
                        self._err(400, "BadRequestTrainingNotNeeded", "Nothing changed since last training")
                        return
                    n = len(fake.iterations[pid]) + 1
                    it = {"id": str(uuid.uuid4()), "name": f"Iteration {n}", "status": "Training", "created": _now(),
                          "lastModified": _now(), "projectId": pid, "exportable": False, "exportableTo": [],
                          "domainId": fake.projects[pid]["settings"]["domainId"],
                          "classificationType": fake.projects[pid]["settings"]["classificationType"],
                          "trainingType": "Regular", "reservedBudgetInHours": 0, "publishName": None}
                    fake.iterations[pid].append(it)
                    fake.trained_images[pid] = len(fake.images[pid])
                    threading.Thread(target=fake._train, args=(pid, it), daemon=True).start()
                    self._send(200, it)
                elif sub == "/iterations" and method == "GET":
                    self._send(200, fake.iterations[pid])
                else:
                    self._iteration(method, pid, sub, q)

            def _iteration(self, method: str, pid: str, sub: str, q: dict[str, str]) -> None:
                m = re.match(r"^/iterations/([^/]+)(/.*)?$", sub)
                its = {i["id"]: i for i in fake.iterations[pid]}
                if not m or m.group(1) not in its:
                    self._err(404, "NotFoundIteration", "iteration not found")
                    return
                it, what = its[m.group(1)], m.group(2) or ""
                if what == "" and method == "GET":
                    self._send(200, it)
                    return
                if it["status"] != "Completed":
                    self._err(400, "BadRequestIterationNotCompleted", "iteration not completed")
                    return
                model = fake.models[it["id"]]
                if what == "/performance" and method == "GET":
                    th = float(q.get("threshold", 0.5))
                    res = performance(model["probs"], model["truth"], model["labels"], th)
                    self._send(200, {
                        "perTagPerformance": [
                            {"id": model["tag_ids"][t], "name": t, "precision": p, "precisionStdDeviation": 0.0,
                             "recall": r, "recallStdDeviation": 0.0, "averagePrecision": ap}
                            for t, (p, r, ap) in zip(model["labels"], res["per_tag"], strict=True)],
                        "precision": res["precision"], "precisionStdDeviation": 0.0, "recall": res["recall"],
                        "recallStdDeviation": 0.0, "averagePrecision": res["ap"]})
                elif what == "/publish" and method == "POST":
                    if not q.get("predictionId", "").startswith("/subscriptions/"):
                        self._err(400, "BadRequestInvalidPublishTarget", "predictionId must be a resource id")
                        return
                    fake.published[it["id"]] = (q["publishName"], q["predictionId"])
                    it["publishName"] = q["publishName"]
                    self._send(200, True)
                elif what == "/export" and method == "POST":
                    if it["id"] in fake.exports:
                        self._err(400, "BadRequestExportAlreadyInProgress", "ONNX is already queued for export")
                        return
                    ex = {"platform": q.get("platform"), "status": "Exporting", "downloadUri": None,
                          "flavor": q.get("flavor"), "newerVersionAvailable": False, "_polls": 0}
                    fake.exports[it["id"]] = ex
                    self._send(200, {k: v for k, v in ex.items() if not k.startswith("_")})
                elif what == "/export" and method == "GET":
                    ex = fake.exports.get(it["id"])
                    if ex is not None:
                        ex["_polls"] += 1
                        if ex["_polls"] > fake.export_polls and ex["status"] == "Exporting":
                            token = uuid.uuid4().hex
                            fake.downloads[token] = model["zip"]
                            ex.update(status="Done", downloadUri=f"{fake.endpoint}/download/{token}.zip")
                    self._send(200, [] if ex is None else [{k: v for k, v in ex.items() if not k.startswith("_")}])
                else:
                    self._err(404, "NotFound", f"no route {method} {sub}")

            def _upload(self, pid: str, body: bytes) -> None:
                fake.upload_requests += 1
                if fake.upload_requests in fake.upload_429:
                    self._send(429, {"error": {"code": "429", "message": "Requests to the CreateImagesFromFiles Operation under Custom Vision Training have exceeded rate limit of your current F0 pricing tier. Please retry after 1 second."}},
                               "Too Many Requests", {"Retry-After": "0.05"})
                    return
                doc = json.loads(body)
                images = doc.get("images") or []
                if len(images) > 64:
                    self._err(400, "BadRequestImageBatch", "at most 64 images a batch")
                    return
                tag_ids = {t["id"] for t in fake.tags[pid]}
                results = []
                from PIL import Image

                for entry in images:
                    data = base64.b64decode(entry["contents"])
                    sha = hashlib.sha256(data).hexdigest()
                    fake.received[sha] += 1
                    name = entry.get("name")
                    status = "OK"
                    try:
                        with Image.open(io.BytesIO(data)) as im:
                            im.load()
                            w, h = im.size
                    except Exception:  # noqa: BLE001 - any decode failure is a bad image
                        status = "ErrorImageFormat"
                    if name in fake.bad_names:
                        status = "ErrorImageFormat"
                    if status == "OK" and not set(entry.get("tagIds") or []) <= tag_ids:
                        status = "ErrorInvalidTag"
                    image = None
                    if status == "OK":
                        if sha in fake.images[pid]:
                            status, image = "OKDuplicate", fake.images[pid][sha]["public"]
                        else:
                            image = {"id": str(uuid.uuid4()), "created": _now(), "width": w, "height": h}
                            fake.images[pid][sha] = {"bytes": data, "tagIds": entry["tagIds"], "public": image}
                    results.append({"sourceUrl": f'"{name}"', "status": status, "image": image})
                ok = all(r["status"] == "OK" for r in results)
                self._send(200 if ok else 207, {"isBatchSuccessful": ok, "images": results})

        return Handler
