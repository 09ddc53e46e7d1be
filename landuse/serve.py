"""A Custom Vision-compatible prediction server over any local :class:`Classifier`.

What the Custom Vision Docker export gives, without Docker: code written for the cloud
(the official SDK's ``classify_image`` / ``classify_image_with_no_store`` with a project id
and published name) runs against it unchanged.

Routes (paths matched case-insensitively, any path prefix before ``/customvision``):

* ``POST {prefix}/customvision/v3.0|v3.1/prediction/{projectId}/classify/iterations/{publishedName}/image[/nostore]``
  - body: multipart ``imageData`` or raw bytes (``application/octet-stream``); answer: an
  ``ImagePrediction`` (``tagType`` in v3.1), predictions sorted by probability, descending.
* the Docker export's ``POST /image``, ``/{project}/image[/nostore]`` and
  ``/{project}/classify/iterations/{name}/image[/nostore]``;
* ``.../url[/nostore]`` variants only with ``enable_url_routes`` (they make the server fetch URLs);
* ``GET /`` -> ``CustomVision.ai model host harness`` (as the Docker export), ``GET /health`` -> JSON.

Every prediction route needs the ``Prediction-Key`` header. Errors follow Custom Vision:
401 (gateway envelope ``{"error": {...}}``), 400 ``BadRequestImageFormat`` /
``BadRequestImageSizeBytes`` (over 4 MB) / ``BadRequestImageDimensions``, 404
``NotFoundProject`` / ``NotFoundIteration`` (flat ``{"code", "message"}``).
FastAPI and uvicorn (the ``serve`` extra) are imported inside the functions.
"""

# no `from __future__ import annotations`: FastAPI must resolve the route signatures, whose
# types (Request) are imported inside create_app.

import datetime as dt
import hashlib
import hmac
import io
import ipaddress
import json
import os
import re
import secrets
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np

from landuse.classify.base import Classifier
from landuse.errors import InputError

ENV_SERVE_KEY = "LANDUSE_SERVE_KEY"
ENV_SERVE_CONFIG = "LANDUSE_SERVE_CONFIG"
DEFAULT_SERVE_CONFIG = Path("~/.config/landuse/serve.toml")
MAX_IMAGE_BYTES = 4 * 1024 * 1024
MULTIPART_SLACK = 64 * 1024  # framing allowed on top of the image in a multipart body
MAX_SIDE = 10240
# Pixels one request may decode: this many times the model's input (224 x 224 -> 12.8 MP, about
# 3,600 x 3,600): anything larger is resampled down to the input anyway, and decoding it costs
# ~0.1 s per 10 MP of one core.
PIXEL_BUDGET_FACTOR = 256
# Decoding runs in a pool of this many threads; at most DECODE_QUEUE requests wait for it
# (more answer 429, as the cloud does when over its quota).
DECODE_THREADS = 2
DECODE_QUEUE = 16
HARNESS_TEXT = "CustomVision.ai model host harness"

_CLOUD = re.compile(
    r"^(?:/.*)?/customvision/v3\.(?P<minor>[01])/prediction/(?P<project>[^/]+)/classify/iterations/"
    r"(?P<name>[^/]+)/(?P<kind>image|url)(?P<nostore>/nostore)?/?$",
    re.IGNORECASE,
)
_DOCKER = (
    re.compile(r"^/(?:(?P<project>[^/]+)/classify/iterations/(?P<name>[^/]+)/)?(?P<kind>image|url)(?P<nostore>/nostore)?/?$", re.I),
    re.compile(r"^/(?P<project>[^/]+)/(?P<kind>image|url)(?P<nostore>/nostore)?/?$", re.I),
)
_FORMATS = {"PNG", "JPEG", "BMP", "GIF"}


class _CVError(Exception):
    """An error answer: status, Custom Vision code, message; ``gateway`` uses ``{"error": {...}}``."""

    def __init__(self, status: int, code: str, message: str, gateway: bool = False) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.gateway = status, code, message, gateway

    def body(self) -> dict[str, Any]:
        if self.gateway:
            return {"error": {"code": str(self.status), "message": self.message}}
        return {"code": self.code, "message": self.message}


def resolve_key(config_path: str | Path | None = None) -> tuple[str, bool]:
    """The serving key: ``LANDUSE_SERVE_KEY``, else ``key`` in the serve config file, else a new
    random one. Returns ``(key, generated)``."""
    key = os.environ.get(ENV_SERVE_KEY)
    if key:
        return key, False
    path = Path(config_path or os.environ.get(ENV_SERVE_CONFIG) or DEFAULT_SERVE_CONFIG).expanduser()
    if path.exists():
        import tomllib

        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InputError(f"serve config {path} is unreadable ({type(exc).__name__}); fix it or set {ENV_SERVE_KEY}") from None
        key = (data.get("serve", data) or {}).get("key")
        if key:
            return str(key), False
    elif config_path is not None:
        raise InputError(f"serve config {path} does not exist; fix the path or set {ENV_SERVE_KEY}")
    return secrets.token_hex(16), True


def load_served_model(spec: str | None) -> Classifier:
    """The model to serve (the model-spec grammar of :func:`landuse.classify.base.load_classifier`)."""
    from landuse.classify.base import load_classifier

    return load_classifier(spec)


def pixel_budget(size: tuple[int, int]) -> int:
    """Most pixels one request may decode for a model whose input is ``size`` (height, width)."""
    return int(PIXEL_BUDGET_FACTOR * size[0] * size[1])


def public_model_id(model_id: str) -> str:
    """A model id without the server's filesystem layout (the file or folder name only)."""
    text = str(model_id)
    return Path(text).name if ("/" in text or "\\" in text) and "://" not in text else text


def _decode(data: bytes, size: tuple[int, int], max_pixels: int | None = None) -> np.ndarray:
    """Image bytes -> uint8 RGB (H, W, 3) at the model's ``size`` (height, width); bomb guard on:
    at most ``max_pixels`` (default :func:`pixel_budget`) are decoded."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    budget = pixel_budget(size) if max_pixels is None else max_pixels

    if len(data) > MAX_IMAGE_BYTES:
        raise _CVError(400, "BadRequestImageSizeBytes", f"Image size {len(data)} bytes is over the 4 MB limit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.format not in _FORMATS:
                raise _CVError(400, "BadRequestImageFormat", f"Bad Request Image Format ({img.format}); send JPEG, PNG, BMP or GIF")
            w, h = img.size
            if max(w, h) > MAX_SIDE or min(w, h) < 1:
                raise _CVError(400, "BadRequestImageDimensions", f"Image dimensions {w}x{h} are out of range")
            if w * h > budget:
                raise _CVError(
                    400, "BadRequestImageDimensions",
                    f"Image dimensions {w}x{h} are over this server's budget of {budget:,} pixels; resize it first",
                )
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _CVError(400, "BadRequestImageDimensions", "Image has too many pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise _CVError(400, "BadRequestImageFormat", "Bad Request Image Format") from None
    rgb = ImageOps.exif_transpose(img).convert("RGB")
    height, width = size
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def _fetch_url(url: str) -> bytes:
    import urllib.request

    if not url.lower().startswith(("http://", "https://")):
        raise _CVError(400, "BadRequestImageUrl", "Image URL must be http or https")
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - scheme checked above
            data = resp.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        raise _CVError(400, "BadRequestImageUrl", f"Image URL could not be fetched ({type(exc).__name__})") from None
    return data


def create_app(
    classifier: Classifier,
    key: str,
    project_id: str | None = None,
    published_name: str | None = None,
    enable_url_routes: bool = False,
) -> Any:
    """The FastAPI app serving ``classifier`` behind the Custom Vision prediction routes."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import Headers
    from starlette.formparsers import MultiPartException, MultiPartParser

    labels = list(classifier.labels)
    height, width = classifier.input_size
    size = (int(height), int(width))
    model_hash = str(getattr(classifier, "model_hash", "") or hashlib.sha256(repr(labels).encode()).hexdigest())
    namespace = uuid.uuid5(uuid.NAMESPACE_OID, model_hash)
    iteration = str(uuid.uuid5(namespace, "iteration"))
    tag_ids = [str(uuid.uuid5(namespace, f"tag:{lab}")) for lab in labels]
    predict_lock = threading.Lock()
    from concurrent.futures import ThreadPoolExecutor

    decoder = ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="landuse-decode")
    waiting = threading.BoundedSemaphore(DECODE_THREADS + DECODE_QUEUE)
    budget = pixel_budget(size)

    async def decode(data: bytes) -> np.ndarray:
        """Decode off the event loop, in the bounded pool (429 when its queue is full)."""
        import asyncio

        if not waiting.acquire(blocking=False):
            raise _CVError(429, "TooManyRequests", "Too many images waiting to be decoded; retry shortly")
        try:
            return await asyncio.get_running_loop().run_in_executor(decoder, _decode, data, size, budget)
        finally:
            waiting.release()

    app = FastAPI(title="landuse serve (Custom Vision prediction API)", docs_url=None, redoc_url=None, openapi_url=None)

    def classify(pixels: np.ndarray) -> np.ndarray:
        with predict_lock:
            return np.asarray(classifier.predict(pixels[None]))[0]

    def answer(probs: np.ndarray, project: str, minor: str | None) -> dict[str, Any]:
        preds = []
        for lab, tag_id, p in zip(labels, tag_ids, probs.tolist(), strict=True):
            d: dict[str, Any] = {"probability": float(p), "tagId": tag_id, "tagName": lab}
            if minor == "1":
                d["tagType"] = "Negative" if lab == "Negative" else "Regular"
            preds.append(d)
        preds.sort(key=lambda d: -d["probability"])
        return {
            "id": str(uuid.uuid4()),
            "project": project,
            "iteration": iteration,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "predictions": preds,
        }

    def match(raw_path: str) -> tuple[dict[str, str], str | None] | None:
        m = _CLOUD.match(raw_path)
        if m:
            return m.groupdict(), m["minor"]
        for rx in _DOCKER:
            m = rx.match(raw_path)
            if m:
                return {k: v for k, v in m.groupdict().items() if v is not None}, None
        return None

    async def read_body(request: Request, limit: int) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise _CVError(400, "BadRequestImageSizeBytes", f"Request body of {declared} bytes is over the 4 MB image limit")
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise _CVError(400, "BadRequestImageSizeBytes", "Request body is over the 4 MB image limit")
            chunks.append(chunk)
        return b"".join(chunks)

    async def image_bytes(request: Request) -> bytes:
        body = await read_body(request, MAX_IMAGE_BYTES + MULTIPART_SLACK)
        ctype = request.headers.get("content-type", "")
        if not ctype.lower().startswith("multipart/form-data"):
            return body

        async def stream():  # type: ignore[no-untyped-def]
            yield body

        try:
            form = await MultiPartParser(Headers(raw=[(b"content-type", ctype.encode("latin-1"))]), stream(), max_part_size=MAX_IMAGE_BYTES + 1).parse()
        except MultiPartException:
            raise _CVError(400, "BadRequestImageFormat", "Bad Request Image Format (malformed multipart body)") from None
        part = form.get("imageData")
        if part is None:
            raise _CVError(400, "BadRequestImageFormat", "Bad Request Image Format (no imageData part)")
        if isinstance(part, str):
            return part.encode("latin-1", errors="replace")
        return await part.read()

    @app.exception_handler(_CVError)
    async def _cv_error(request: Request, exc: _CVError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.get("/")
    async def harness() -> PlainTextResponse:
        return PlainTextResponse(HARNESS_TEXT)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model_id": public_model_id(getattr(classifier, "model_id", "")),
            "model_sha256": model_hash,
            "backend": getattr(classifier, "backend", ""),
            "labels": labels,
            "input_size": list(size),
            "project_id": project_id,
            "published_name": published_name,
            "url_routes": enable_url_routes,
            "max_pixels": budget,
        }

    @app.post("/{path:path}")
    async def predict(request: Request, path: str) -> JSONResponse:
        # the raw (still %-encoded) path: a published name may contain an encoded "/"
        raw = request.scope.get("raw_path", b"").decode("latin-1").split("?")[0]
        found = match(raw)
        if found is None:
            raise _CVError(404, "NotFound", "Resource not found")
        params, minor = found
        given = request.headers.get("prediction-key")
        if not given or not hmac.compare_digest(given.encode(), key.encode()):
            raise _CVError(
                401, "401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
                "a valid key for an active subscription and use a correct regional API endpoint for your resource.",
                gateway=True,
            )
        project = unquote(params.get("project", "")) or (project_id or "")
        name = unquote(params.get("name", ""))
        if project_id is not None and "project" in params and project.lower() != project_id.lower():
            raise _CVError(404, "NotFoundProject", "Invalid project")
        if published_name is not None and "name" in params and name != published_name:
            raise _CVError(404, "NotFoundIteration", "Invalid iteration")
        if params["kind"].lower() == "url":
            if not enable_url_routes:
                raise _CVError(404, "NotFound", "URL routes are disabled on this server (start it with --enable-url-routes)")
            try:
                url = json.loads(await read_body(request, 64 * 1024)).get("url", "")
            except (ValueError, AttributeError):
                raise _CVError(400, "BadRequestImageUrl", "Body must be JSON {\"url\": ...}") from None
            data = await run_in_threadpool(_fetch_url, str(url))
        else:
            data = await image_bytes(request)
        pixels = await decode(data)
        try:
            probs = await run_in_threadpool(classify, pixels)
        except Exception as exc:  # noqa: BLE001 - a model failure is a 500, not a crash
            raise _CVError(500, "ErrorPrediction", f"Prediction failed ({type(exc).__name__})") from None
        return JSONResponse(answer(probs, project, minor))

    app.router.on_shutdown.append(lambda: decoder.shutdown(wait=False, cancel_futures=True))
    return app


def is_loopback(host: str) -> bool:
    """Whether ``host`` binds only the local machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_server(app: Any, host: str = "127.0.0.1", port: int = 8080, log_level: str = "warning") -> None:
    """Serve ``app`` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
