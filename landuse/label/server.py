"""The label server: the labelling page and its JSON API over a :class:`LabelSession`.

Routes (all under the page's address; every ``/api`` route needs the ``X-Landuse-Key`` header,
compared in constant time; the key comes from the same place as ``landuse serve``'s):

* ``GET /`` - the page (holds no data; it reads the key from the address's ``#key=`` fragment,
  which browsers never send to a server);
* ``GET /api/session`` - tags, plots, mini-map, state; ``GET /api/view/{item}/{period}`` - JPEG;
* ``POST /api/label`` ``{"key", "label"}``, ``POST /api/skip`` ``{"key"}``, ``POST /api/undo``.

FastAPI and uvicorn (the ``serve`` extra) are imported inside the functions.
"""

# no `from __future__ import annotations`: FastAPI resolves the route signatures at runtime.

import hmac
import threading
import time
from typing import Any

from landuse.errors import InputError, LanduseError
from landuse.label.page import render_page
from landuse.label.session import LabelSession

KEY_HEADER = "x-landuse-key"


def create_label_app(session: LabelSession, key: str) -> Any:
    """The FastAPI app serving ``session``'s page behind ``key``."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool

    app = FastAPI(title="landuse label", docs_url=None, redoc_url=None, openapi_url=None)
    page = render_page({"mode": "serve"})

    def check(request: Request) -> None:
        given = request.headers.get(KEY_HEADER) or ""
        if not given or not hmac.compare_digest(given.encode(), key.encode()):
            raise HTTPException(401, "wrong or missing key: open the address `landuse label` printed")

    async def body(request: Request) -> dict[str, Any]:
        try:
            doc = await request.json()
        except ValueError:
            raise HTTPException(400, "the body must be JSON") from None
        if not isinstance(doc, dict):
            raise HTTPException(400, "the body must be a JSON object")
        return doc

    @app.exception_handler(LanduseError)
    async def _landuse_error(request: Request, exc: LanduseError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.get("/")
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store", "Content-Security-Policy":
                                           "default-src 'self'; img-src 'self' data: blob:; style-src 'unsafe-inline'; "
                                           "script-src 'unsafe-inline'; connect-src 'self'"})

    @app.get("/api/session")
    async def get_session(request: Request) -> JSONResponse:
        check(request)
        return JSONResponse(await run_in_threadpool(session.page_data))

    @app.get("/api/view/{item}/{run_index}")
    async def view(request: Request, item: int, run_index: int) -> Response:
        check(request)
        if not (0 <= item < len(session.items) and 0 <= run_index < len(session.runs)):
            raise HTTPException(404, f"no view {item}/{run_index}")
        data = await run_in_threadpool(session.view, item, run_index)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @app.post("/api/label")
    async def post_label(request: Request) -> JSONResponse:
        check(request)
        doc = await body(request)
        return JSONResponse(await run_in_threadpool(session.label, str(doc.get("key")), str(doc.get("label"))))

    @app.post("/api/skip")
    async def post_skip(request: Request) -> JSONResponse:
        check(request)
        doc = await body(request)
        return JSONResponse(await run_in_threadpool(session.skip, str(doc.get("key"))))

    @app.post("/api/undo")
    async def post_undo(request: Request) -> JSONResponse:
        check(request)
        return JSONResponse(await run_in_threadpool(session.undo))

    return app


class LabelServer:
    """uvicorn serving a label app in a background thread (``start`` / ``stop``, or ``with``)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.host = host
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        for server in self._server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        raise InputError("the label server is not listening")

    def start(self, timeout: float = 20.0) -> "LabelServer":
        self._thread = threading.Thread(target=self._server.run, name="landuse-label", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise InputError(f"the label server did not start on {self.host}; is the port free?")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> "LabelServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
