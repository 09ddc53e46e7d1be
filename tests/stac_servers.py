"""Servers for the STAC tests, started and stopped by the tests, bound to 127.0.0.1 on free ports.

* :class:`RangeServer`: ``rangehttpserver``'s Range-capable request handler on a threading HTTP/1.1
  server over a folder; optional fault injection (a share of range requests answered 503 / 429 or
  dropped without an answer, or every request for some files failing) and a request log.
* :class:`StacApi`: the ``stac-fastapi-static`` STAC API (FastAPI) over a static catalog, run by
  uvicorn in a thread on a pre-bound socket.
* :func:`build_catalog`: a static catalog with collection ``naip`` whose items ``rio-stac`` makes
  from real rasters; their ``image`` assets point at the range server.
"""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NAIP_BANDS = ["red", "green", "blue", "nir"]


class RangeServer:
    """A Range-capable static file server on 127.0.0.1, in its own process (context manager).

    Its own process, because GDAL holds the GIL while it opens a dataset: a server thread in the
    reading process could not answer. Fault injection and counters live in shared memory:
    ``fault_every`` (every n-th range request fails, cycling through 503 / 429 / drop),
    ``fail(name, from_byte)`` (every range request for that file starting at or after
    ``from_byte`` fails with 503: past a COG's header, its pixels)."""

    def __init__(self, root: Path) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.root = Path(root)
        self._fault_every = ctx.Value("i", 0)
        self._fail_name = ctx.Array("c", 512)
        self._fail_from = ctx.Value("q", 0)
        self._counts = ctx.Array("q", 3)  # requests, range requests, faults
        self._port = ctx.Value("i", 0)
        self._proc = ctx.Process(target=_serve, args=(str(self.root), self._fault_every, self._fail_name,
                                                       self._fail_from, self._counts, self._port), daemon=True)
        self.url = ""

    def __enter__(self) -> RangeServer:
        self._proc.start()
        t0 = time.monotonic()
        while self._port.value == 0:
            if time.monotonic() - t0 > 30 or not self._proc.is_alive():
                raise RuntimeError("the range server did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self._port.value}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._proc.terminate()
        self._proc.join(10)

    @property
    def fault_every(self) -> int:
        return int(self._fault_every.value)

    @fault_every.setter
    def fault_every(self, n: int) -> None:
        self._fault_every.value = int(n)

    def fail(self, name: str | None, from_byte: int = 0) -> None:
        """Fail every range request for file ``name`` from byte ``from_byte`` on (None: stop failing)."""
        self._fail_from.value = int(from_byte)
        self._fail_name.value = (name or "").encode()

    def range_requests(self) -> int:
        return int(self._counts[1])

    @property
    def faults(self) -> int:
        return int(self._counts[2])


def _serve(root: str, fault_every: Any, fail_name: Any, fail_from: Any, counts: Any, port: Any) -> None:
    """The range server process: rangehttpserver's handler with fault injection."""
    from RangeHTTPServer import RangeRequestHandler

    kinds = ("503", "429", "drop")

    class Handler(RangeRequestHandler):
        protocol_version = "HTTP/1.1"

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=root, **kwargs)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            return

        def _fault(self) -> str | None:
            rng = self.headers.get("Range")
            name = self.path.split("?")[0].rsplit("/", 1)[-1]
            with counts.get_lock():
                counts[0] += 1
                if rng:
                    counts[1] += 1
                n = counts[1]
                failing = fail_name.value.decode()
                start = int(rng.split("=", 1)[1].split("-", 1)[0]) if rng and "=" in rng else 0
                if failing and name == failing and start >= fail_from.value:
                    counts[2] += 1
                    return "503"
                every = fault_every.value
                if rng and every and n % every == 0:
                    counts[2] += 1
                    return kinds[(n // every) % len(kinds)]
            return None

        def _answer(self) -> bool:
            kind = self._fault()
            if kind is None:
                return False
            if kind == "drop":  # close the connection without an answer
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return True
            self.send_response(int(kind))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True

        def do_GET(self) -> None:
            if not self._answer():
                super().do_GET()

        def do_HEAD(self) -> None:
            if not self._answer():
                super().do_HEAD()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port.value = httpd.server_address[1]
    httpd.serve_forever(poll_interval=0.1)


class StacApi:
    """stac-fastapi-static over ``catalog`` (a catalog.json), served by uvicorn on 127.0.0.1."""

    def __init__(self, catalog: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import uvicorn
            from stac_fastapi.api.middleware import CORSMiddleware
            from stac_fastapi.static.api import Settings, make_api

            app = make_api(Settings(catalog_href=str(catalog), reload=False, cache=False)).app
        # stac-fastapi's CORS middleware passes its arguments by position, which the installed
        # Starlette has reordered (TypeError at the first request); browsers are not involved here.
        app.user_middleware = [m for m in app.user_middleware if m.cls is not CORSMiddleware]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="error"))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> StacApi:
        self._thread.start()
        t0 = time.monotonic()
        while not self.server.started:
            if time.monotonic() - t0 > 20 or not self._thread.is_alive():
                raise RuntimeError("the STAC API did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(10)
        self.sock.close()


@dataclass
class Entry:
    """One item of a test catalog: a raster (served as ``name``), its id, date and band names."""

    path: Path
    id: str
    date: dt.datetime
    bands: Sequence[str] = tuple(NAIP_BANDS)
    properties: dict[str, Any] | None = None


def build_catalog(folder: Path, entries: Sequence[Entry], base_url: str, collection: str = "naip") -> Path:
    """A self-contained static catalog (catalog.json -> collection -> items) made with rio-stac;
    the ``image`` asset of each item is ``base_url/<file name>``. Returns catalog.json."""
    import pystac
    from rio_stac import create_stac_item

    items = []
    for e in entries:
        it = create_stac_item(
            str(e.path), input_datetime=e.date.replace(tzinfo=dt.timezone.utc), id=e.id, asset_name="image",
            asset_href=f"{base_url}/{e.path.name}", asset_media_type=pystac.MediaType.COG, asset_roles=["data"],
            with_proj=True, with_eo=True, properties={"gsd": 1.0, **(e.properties or {})},
        )
        eo = it.assets["image"].extra_fields.get("eo:bands") or []
        for b, name in zip(eo, e.bands, strict=False):
            b["common_name"] = name
        items.append(it)
    starts = [e.date.replace(tzinfo=dt.timezone.utc) for e in entries]
    extent = pystac.Extent(pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]),
                           pystac.TemporalExtent([[min(starts), max(starts)]]))
    cat = pystac.Catalog("landuse-test", "test catalog")
    col = pystac.Collection(collection, "NAIP-like test collection", extent)
    for it in items:
        col.add_item(it)
    col.update_extent_from_items()
    cat.add_child(col)
    cat.normalize_hrefs(str(folder))
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    return folder / "catalog.json"
