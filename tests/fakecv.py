"""A fault-injecting Custom Vision *prediction* server for tests and benchmarks.

A real HTTP/1.1 server on 127.0.0.1 (a thread of the calling process, or its own process via
``python -m tests.fakecv``) that answers the classify routes of the v3.0 / v3.1 prediction API
(octet-stream or multipart ``imageData`` bodies, paths matched case-insensitively) with an
``ImagePrediction`` whose probabilities are :func:`colour_probabilities` of the decoded image,
so a test can check every plot got *its own* answer.

Faults: ``plan`` is a list consumed one per request, in arrival order:
``"ok"``, ``"429"`` (with ``Retry-After``), ``"429text"`` (no header, the gateway's "retry after
N second" text), ``"429bare"`` (neither), ``"503"``, ``"slow"`` (answers after
``slow_seconds``), ``"drop"`` (closes the connection without answering), ``"401"``.
After the plan, ``p429`` / ``p503`` inject random faults, and ``quota_tps`` enforces a quota
over any sliding 1-second window (excess requests get 429 "retry after 1 second").
``GET /_stats`` returns the counters as JSON.
"""

from __future__ import annotations

import argparse
import collections
import email.parser
import email.policy
import hashlib
import io
import json
import random
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

DEFAULT_TAGS = ("Barren", "Cultivated", "Developed")
ROUTE = re.compile(
    r"^(?:/.*)?/customvision/v3\.[01]/prediction/(?P<project>[^/]+)/classify/iterations/"
    r"(?P<name>[^/]+)/image(?P<nostore>/nostore)?/?$",
    re.IGNORECASE,
)


def colour_probabilities(pixels: np.ndarray, n_tags: int) -> np.ndarray:
    """Deterministic probabilities of an RGB image: a softmax of its channel means (test oracle)."""
    px = np.asarray(pixels, dtype=np.float64)
    means = px.reshape(-1, 3).mean(axis=0)
    logits = np.array([means[i % 3] / 32.0 - 0.5 * (i // 3) for i in range(n_tags)])
    e = np.exp(logits - logits.max())
    return (e / e.sum()).astype(np.float32)


class ColourClassifier:
    """A tiny local :class:`~landuse.classify.base.Classifier` giving :func:`colour_probabilities`."""

    backend = "test"
    multilabel = False

    def __init__(self, labels: tuple[str, ...] = DEFAULT_TAGS, input_size: tuple[int, int] = (224, 224)) -> None:
        self.labels = list(labels)
        self.input_size = input_size
        self.model_id = "test:colour"
        self.model_hash = hashlib.sha256(b"colour").hexdigest()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return np.stack([colour_probabilities(px, len(self.labels)) for px in batch]).astype(np.float32)


def make_colour_classifier() -> ColourClassifier:
    """Factory used by ``landuse serve py:tests.fakecv:make_colour_classifier``."""
    return ColourClassifier()


def random_plots(n: int, size: int = 224, seed: int = 0) -> np.ndarray:
    """``n`` distinct uint8 RGB plots (blocky noise around a random colour)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, 1, 1, 3))
    noise = rng.integers(-40, 41, (n, size // 8, size // 8, 3)).repeat(8, 1).repeat(8, 2)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _image_from_body(content_type: str, body: bytes) -> bytes | None:
    if content_type.lower().startswith("multipart/form-data"):
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        for part in msg.iter_parts():
            if part.get_param("name", header="content-disposition") == "imageData":
                return part.get_payload(decode=True)
        return None
    return body


class FakeCustomVision:
    """The server; use as a context manager. ``endpoint`` is what the SDK takes."""

    def __init__(
        self,
        key: str = "test-prediction-key",
        tags: tuple[str, ...] = DEFAULT_TAGS,
        negative: bool = False,
        project_id: str | None = None,
        published_name: str = "Iteration1",
        plan: list[str] | None = None,
        p429: float = 0.0,
        p503: float = 0.0,
        quota_tps: float | None = None,
        retry_after: float = 0.05,
        slow_seconds: float = 1.0,
        seed: int = 0,
        port: int = 0,
    ) -> None:
        self.key = key
        self.tags = list(tags) + (["Negative"] if negative else [])
        self.negative = negative
        self.project_id = project_id or str(uuid.uuid4())
        self.published_name = published_name
        self.plan = collections.deque(plan or [])
        self.p429, self.p503 = p429, p503
        self.quota_tps = quota_tps
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.window: collections.deque[float] = collections.deque()
        self.log: list[dict[str, Any]] = []  # one record per request
        self.served: collections.Counter[str] = collections.Counter()  # image sha256 -> 200s
        self.max_in_window = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeCustomVision:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeCustomVision:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def statuses(self) -> collections.Counter[Any]:
        with self.lock:
            return collections.Counter(r["status"] for r in self.log)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            times = [r["t"] for r in self.log]
            ok = [r["t"] for r in self.log if r["status"] == 200]
            return {
                "requests": len(self.log),
                "ok": len(ok),
                "statuses": {str(k): v for k, v in collections.Counter(r["status"] for r in self.log).items()},
                "quota_rejections": sum(1 for r in self.log if r.get("fault") == "quota"),
                "max_in_window": self.max_in_window,
                "first": min(times) if times else None,
                "last": max(times) if times else None,
                "first_ok": min(ok) if ok else None,
                "last_ok": max(ok) if ok else None,
                "distinct_images": len(self.served),
                "duplicates": sum(v - 1 for v in self.served.values() if v > 1),
            }

    # -- request handling ------------------------------------------------------------------------

    def _next_fault(self, now: float) -> str:
        with self.lock:
            if self.plan:
                return self.plan.popleft()
            if self.quota_tps is not None:
                while self.window and self.window[0] <= now - 1.0:
                    self.window.popleft()
                if len(self.window) >= self.quota_tps:
                    return "quota"
            r = self.rng.random()
            fault = "429" if r < self.p429 else "503" if r < self.p429 + self.p503 else "ok"
            if self.quota_tps is not None and fault != "quota":
                self.window.append(now)  # every request let through counts against the quota
                self.max_in_window = max(self.max_in_window, len(self.window))
            return fault

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: Any, reason: str | None = None, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status, reason)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/_stats":
                    self._send(200, fake.stats())
                else:
                    self._send(404, {"code": "NotFound", "message": "Not found"})

            def do_POST(self) -> None:
                now = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                rec: dict[str, Any] = {"t": now, "path": self.path, "status": None}
                with fake.lock:
                    fake.log.append(rec)  # logged on arrival; status filled in below
                try:
                    self._post(body, rec, now)
                except (BrokenPipeError, ConnectionResetError):
                    rec["status"] = "client-gone"

            def _post(self, body: bytes, rec: dict[str, Any], now: float) -> None:
                if self.headers.get("Prediction-Key") != fake.key:
                    rec["status"] = 401
                    self._send(401, {"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint."}}, "Access Denied")
                    return
                m = ROUTE.match(self.path.split("?")[0])
                if m is None:
                    rec["status"] = 404
                    self._send(404, {"code": "NotFound", "message": "Resource not found"})
                    return
                if m["project"] != fake.project_id:
                    rec["status"] = 404
                    self._send(404, {"code": "NotFoundProject", "message": "Invalid project"})
                    return
                if m["name"] != fake.published_name:
                    rec["status"] = 404
                    self._send(404, {"code": "NotFoundIteration", "message": "Invalid iteration"})
                    return
                image = _image_from_body(self.headers.get("Content-Type", ""), body)
                rec["body"] = hashlib.sha256(image or b"").hexdigest()
                fault = fake._next_fault(now)
                rec["fault"] = fault
                if fault == "drop":
                    rec["status"] = "drop"
                    self.close_connection = True
                    return
                if fault == "401":
                    rec["status"] = 401
                    self._send(401, {"error": {"code": "401", "message": "Access denied"}}, "Access Denied")
                    return
                if fault in ("429", "429text", "429bare", "quota"):
                    rec["status"] = 429
                    secs = 1 if fault == "quota" else fake.retry_after
                    text = f"Requests to the ClassifyImage Operation under Custom Vision Prediction have exceeded rate limit of your current S0 pricing tier. Please retry after {secs} second."
                    if fault == "429bare":
                        text = "Rate limit is exceeded."
                    headers = {"Retry-After": str(secs)} if fault in ("429", "quota") else {}
                    self._send(429, {"error": {"code": "429", "message": text}}, "Too Many Requests", headers)
                    return
                if fault == "503":
                    rec["status"] = 503
                    self._send(503, {"code": "ErrorPredictionServiceUnavailable", "message": "Service unavailable"})
                    return
                if fault == "slow":
                    time.sleep(fake.slow_seconds)
                try:
                    from PIL import Image

                    pixels = np.asarray(Image.open(io.BytesIO(image or b"")).convert("RGB"))
                except Exception:  # noqa: BLE001 - any decode failure is a bad image
                    rec["status"] = 400
                    self._send(400, {"code": "BadRequestImageFormat", "message": "Bad Request Image Format"})
                    return
                digest = hashlib.sha256(pixels.tobytes()).hexdigest()
                rec["image"] = digest
                probs = colour_probabilities(pixels, len(fake.tags))
                preds = [
                    {
                        "probability": float(p),
                        "tagId": str(uuid.uuid5(uuid.NAMESPACE_OID, t)),
                        "tagName": t,
                        "tagType": "Negative" if t == "Negative" else "Regular",
                    }
                    for t, p in zip(fake.tags, probs, strict=True)
                ]
                preds.sort(key=lambda d: -d["probability"])
                rec["status"] = 200
                self._send(200, {
                    "id": str(uuid.uuid4()),
                    "project": fake.project_id,
                    "iteration": str(uuid.uuid5(uuid.NAMESPACE_OID, fake.published_name)),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                    "predictions": preds,
                })
                with fake.lock:
                    fake.served[digest] += 1

        return Handler


def main(argv: list[str] | None = None) -> None:
    """Run a server in this process; print ``endpoint project_id`` on one line, serve until killed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--key", default="test-prediction-key")
    ap.add_argument("--quota-tps", type=float)
    ap.add_argument("--p429", type=float, default=0.0)
    ap.add_argument("--p503", type=float, default=0.0)
    ap.add_argument("--retry-after", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    fake = FakeCustomVision(key=a.key, quota_tps=a.quota_tps, p429=a.p429, p503=a.p503, retry_after=a.retry_after, seed=a.seed)
    print(fake.endpoint, fake.project_id, flush=True)
    try:
        fake._server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
