"""Imagery from a STAC catalog: search a period's items, choose them as an analyst would, read them.

A :class:`StacSource` says where to look: a STAC API root URL (searched with ``pystac-client``:
collections, ``datetime`` as a year, a month, a day or a range ``2016/2018``, the AOI or the
grid's footprint as ``intersects``, an optional ``query`` / CQL2 ``filter``) or a static catalog,
collection or item collection file (walked with ``pystac`` and filtered here the same way).

:func:`choose_items` picks the items of one period: the newest acquisition first, an item whose
footprint (inside the AOI) later items already cover is left out, the asset is the item's COG
(``image`` on NAIP catalogs, else the data asset that is a GeoTIFF) and the R, G, B bands come
from the asset's ``eo:bands`` common names. :class:`StacSelection` reports what was chosen: the
years mixed, the plots no item covers and the bytes to read, and becomes a
:class:`~landuse.imagery.Scene` whose files are listed newest first (the scene's mosaic keeps the
first valid pixel, so the latest acquisition wins where quarter-quads overlap).

Signed catalogs: hrefs of the Planetary Computer's blob storage are signed with the optional
``planetary-computer`` package at open time, in the process that reads them, and nowhere else;
other catalogs' credentials go through GDAL's own configuration (``GDAL_HTTP_HEADERS``,
``AWS_*``). Hrefs are recorded with any signature removed (:func:`landuse.imagery.strip_signature`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from landuse.errors import InputError, LanduseError, RasterError
from landuse.imagery import Scene, inspect_source, redact, strip_signature

if TYPE_CHECKING:
    from landuse.grid import AoiLike, PlotGrid

log = logging.getLogger(__name__)

# Hosts whose hrefs the Planetary Computer signs (its blob storage accounts).
PLANETARY_COMPUTER_API_HOST = "planetarycomputer.microsoft.com"
PLANETARY_COMPUTER_BLOB_SUFFIX = ".blob.core.windows.net"
SIGN_PLANETARY_COMPUTER = "planetary-computer"
DEFAULT_MAX_ITEMS = 5000
# An item is superseded when later items cover all but this share of its footprint in the AOI
# (footprints in EPSG:4326 are straight-edged approximations: neighbours' shared edges differ by
# slivers; 0.1 % of a quarter-quad is a 7 m strip, less than one plot).
SUPERSEDED_TOLERANCE = 1e-3
PROVENANCE_VERSION = 1
# Most remote headers opened at once when a period's items are inspected.
OPEN_THREADS = 8


class StacError(LanduseError):
    """A STAC catalog cannot be searched, or its items cannot be used as imagery."""


def _need_pystac() -> Any:
    try:
        import pystac
        import pystac_client  # noqa: F401
    except ImportError:
        raise InputError("STAC sources need pystac-client; install it with pip install 'landuse[stac]'") from None
    return pystac


# -- the source ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StacSource:
    """Where a period's imagery is searched (see the module doc)."""

    url: str
    collections: tuple[str, ...] = ()
    datetime: str | None = None
    query: dict[str, Any] | None = None
    filter: dict[str, Any] | str | None = None
    asset: str | None = None
    max_items: int = DEFAULT_MAX_ITEMS

    def __post_init__(self) -> None:
        if not self.url:
            raise InputError("`stac` needs a STAC API URL or a catalog / item collection file")
        if self.datetime is not None:
            datetime_range(self.datetime)  # validates
        if isinstance(self.filter, str) and self.filter.strip().startswith("{"):
            try:
                object.__setattr__(self, "filter", json.loads(self.filter))
            except json.JSONDecodeError as exc:
                raise InputError(f"`filter` {self.filter!r} is not valid CQL2 JSON ({exc}); give CQL2 text or JSON") from None

    @classmethod
    def of(
        cls,
        url: str,
        collections: Sequence[str] | str | None = None,
        datetime: str | int | None = None,
        query: dict[str, Any] | str | None = None,
        filter: dict[str, Any] | str | None = None,
        asset: str | None = None,
    ) -> StacSource:
        """A source from plain values (a query may be JSON text, collections one name)."""
        from landuse.fileio import parse_json

        q: dict[str, Any] | None = parse_json(query, f"`query` {query!r}", "give an object of property -> condition, "
                                              "e.g. '{\"naip:state\": {\"eq\": \"nd\"}}'") if isinstance(query, str) else query
        cols = (collections,) if isinstance(collections, str) else tuple(collections or ())
        return cls(str(url), cols, None if datetime is None else str(datetime), q, filter, asset)

    @property
    def is_api(self) -> bool:
        """True for an API root URL; False for a static catalog / collection / item collection file."""
        if not self.url.startswith(("http://", "https://")):
            return False
        return not urlsplit(self.url).path.lower().endswith((".json", ".geojson"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": strip_signature(self.url),
            "collections": list(self.collections),
            "datetime": self.datetime,
            "query": self.query,
            "filter": self.filter,
            "asset": self.asset,
        }

    def signer(self) -> str | None:
        """The signing the hrefs of this catalog get at open time (only the Planetary Computer's)."""
        host = urlsplit(self.url).hostname or ""
        return SIGN_PLANETARY_COMPUTER if host.endswith(PLANETARY_COMPUTER_API_HOST) else None


def datetime_range(value: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``2016`` / ``2016-06`` / ``2016-06-15`` / an ISO time / ``A/B`` (``..`` open) -> UTC [start, end]."""
    text = str(value).strip()
    parts = text.split("/") if "/" in text else [text, text]
    if len(parts) != 2:
        raise InputError(f"`datetime` {value!r} is not a year, a date or a range START/END (e.g. 2016 or 2016/2018)")

    def bound(part: str, end: bool) -> dt.datetime | None:
        part = part.strip()
        if part in ("", ".."):
            return None
        try:
            if len(part) == 4 and part.isdigit():
                y = int(part)
                return dt.datetime(y, 12, 31, 23, 59, 59, 999999, dt.timezone.utc) if end else dt.datetime(y, 1, 1, tzinfo=dt.timezone.utc)
            if len(part) == 7:
                y, m = (int(v) for v in part.split("-"))
                if not end:
                    return dt.datetime(y, m, 1, tzinfo=dt.timezone.utc)
                nxt = dt.datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=dt.timezone.utc)
                return nxt - dt.timedelta(microseconds=1)
            if len(part) == 10:
                d = dt.date.fromisoformat(part)
                t = dt.time(23, 59, 59, 999999) if end else dt.time(0)
                return dt.datetime.combine(d, t, dt.timezone.utc)
            stamp = dt.datetime.fromisoformat(part.replace("Z", "+00:00"))
            return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)
        except ValueError:
            raise InputError(f"`datetime` {value!r}: {part!r} is not a year, YYYY-MM, a date or an ISO time") from None

    start, stop = bound(parts[0], False), bound(parts[1], True)
    if start and stop and stop < start:
        raise InputError(f"`datetime` {value!r} ends before it starts; give START/END")
    return start, stop


# -- signing ---------------------------------------------------------------------------------


def needs_planetary_computer_signature(href: str) -> bool:
    """True for an https href on the Planetary Computer's blob storage (the only ones it signs)."""
    parts = urlsplit(href.removeprefix("/vsicurl/"))
    return parts.scheme == "https" and (parts.hostname or "").endswith(PLANETARY_COMPUTER_BLOB_SUFFIX)


def sign_href(href: str, how: str) -> str:
    """``href`` signed for reading (``how`` = ``"planetary-computer"``); other hosts unchanged.

    The Planetary Computer SDK caches its tokens per process and renews them before they expire;
    ``PC_SDK_SUBSCRIPTION_KEY`` in the environment raises the rate limits."""
    if how != SIGN_PLANETARY_COMPUTER:
        raise InputError(f"unknown href signing {how!r}; use {SIGN_PLANETARY_COMPUTER!r}")
    if not needs_planetary_computer_signature(href):
        return href
    try:
        import planetary_computer
    except ImportError:
        raise InputError(
            "reading Planetary Computer imagery needs its URL signing: pip install 'landuse[planetary-computer]'"
        ) from None
    prefix = "/vsicurl/" if href.startswith("/vsicurl/") else ""
    try:
        return prefix + str(planetary_computer.sign(href.removeprefix("/vsicurl/")))
    except Exception as exc:  # noqa: BLE001 - requests / SDK errors of many kinds
        raise StacError(f"cannot sign {strip_signature(href)} with the Planetary Computer ({redact(str(exc))}); check the network or PC_SDK_SUBSCRIPTION_KEY") from None


# -- searching -------------------------------------------------------------------------------


def search_items(source: StacSource, intersects: dict[str, Any] | None, ids: Sequence[str] | None = None) -> list[Any]:
    """The items (``pystac.Item``) of ``source`` meeting its collections, datetime, filters and
    ``intersects`` (GeoJSON in EPSG:4326); ``ids`` restricts them to those item ids."""
    _need_pystac()
    if source.is_api:
        return _search_api(source, intersects, ids)
    return _search_static(source, intersects, ids)


def _search_api(source: StacSource, intersects: dict[str, Any] | None, ids: Sequence[str] | None) -> list[Any]:
    import requests
    from pystac_client import Client
    from pystac_client.conformance import ConformanceClasses
    from pystac_client.exceptions import APIError

    url = source.url
    try:
        client = Client.open(url)
    except (APIError, requests.RequestException, OSError) as exc:
        raise StacError(f"cannot open the STAC API {strip_signature(url)} ({redact(str(exc))[:200]}); check the URL and that the server runs") from None
    except Exception as exc:  # noqa: BLE001 - pystac raises many types for a non-STAC answer
        raise StacError(f"{strip_signature(url)} is not a STAC API landing page ({type(exc).__name__}: {redact(str(exc))[:160]}); check the URL") from None
    if not client.conforms_to(ConformanceClasses.ITEM_SEARCH):
        raise StacError(f"{strip_signature(url)} does not offer STAC item search; give a STAC API root or a catalog file")
    if source.filter is not None and not client.conforms_to(ConformanceClasses.FILTER):
        raise StacError(f"the STAC API {strip_signature(url)} does not support CQL2 filters (no filter conformance); drop `filter` or use `query`")
    if source.query is not None and not client.conforms_to(ConformanceClasses.QUERY):
        raise StacError(f"the STAC API {strip_signature(url)} does not support the query extension; drop `query` or use `filter` (CQL2)")
    kwargs: dict[str, Any] = {
        "collections": list(source.collections) or None,
        "datetime": source.datetime,
        "intersects": intersects,
        "query": source.query,
        "max_items": source.max_items,
    }
    if ids:
        kwargs["ids"] = list(ids)
    if source.filter is not None:
        kwargs["filter"] = source.filter
        kwargs["filter_lang"] = "cql2-json" if isinstance(source.filter, dict) else "cql2-text"
    try:
        return list(client.search(**kwargs).items())
    except (APIError, requests.RequestException) as exc:
        raise StacError(f"the STAC search of {strip_signature(url)} failed ({redact(str(exc))[:300]}); check the collection, datetime and filter") from None


def _search_static(source: StacSource, intersects: dict[str, Any] | None, ids: Sequence[str] | None) -> list[Any]:
    import pystac
    import shapely.geometry

    where = source.url
    if not where.startswith(("http://", "https://")) and not Path(where).exists():
        raise StacError(f"STAC catalog file {where} does not exist; give a STAC API URL or a catalog / item collection JSON")
    try:
        with open(where) if not where.startswith(("http://", "https://")) else _nullctx() as fh:
            data = json.load(fh) if fh is not None else pystac.StacIO.default().read_json(where)
        if data.get("type") == "FeatureCollection":
            items = list(pystac.ItemCollection.from_dict(data, preserve_dict=False).items)
            base = where
            for it in items:
                if it.get_self_href() is None and not where.startswith(("http://", "https://")):
                    it.set_self_href(str(Path(base).resolve()))
        else:
            obj = pystac.read_file(where)
            if isinstance(obj, pystac.Item):
                items = [obj]
            elif isinstance(obj, pystac.Catalog):
                items = list(obj.get_items(recursive=True))
            else:
                raise StacError(f"{where} is a STAC {type(obj).__name__}, not a catalog, collection, item collection or item")
        for it in items:
            it.make_asset_hrefs_absolute()
    except StacError:
        raise
    except Exception as exc:  # noqa: BLE001 - JSON / pystac errors of many kinds
        raise StacError(f"cannot read STAC catalog {where} ({type(exc).__name__}: {redact(str(exc))[:200]}); give a valid catalog or item collection") from None
    start, stop = datetime_range(source.datetime) if source.datetime else (None, None)
    area = shapely.geometry.shape(intersects) if intersects else None
    test = _filter_test(source.filter) if source.filter is not None else None
    out = []
    for it in items:
        if source.collections and it.collection_id not in source.collections:
            continue
        if ids and it.id not in ids:
            continue
        if start or stop:
            t0 = it.common_metadata.start_datetime or it.datetime
            t1 = it.common_metadata.end_datetime or it.datetime
            if t0 is None or (stop and t0 > stop) or (start and t1 is not None and t1 < start):
                continue
        if area is not None and (it.geometry is None or not shapely.geometry.shape(it.geometry).intersects(area)):
            continue
        if source.query and not _query_matches(source.query, it):
            continue
        if test is not None and not test(it):
            continue
        out.append(it)
    return out[: source.max_items]


class _nullctx:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_QUERY_OPS = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "lt": lambda a, b: a is not None and a < b,
    "lte": lambda a, b: a is not None and a <= b,
    "gt": lambda a, b: a is not None and a > b,
    "gte": lambda a, b: a is not None and a >= b,
    "in": lambda a, b: a in b,
    "startsWith": lambda a, b: isinstance(a, str) and a.startswith(b),
}


def _query_matches(query: dict[str, Any], item: Any) -> bool:
    """The STAC query extension on one item's properties (static catalogs)."""
    props = {**item.properties, "id": item.id}
    for name, cond in query.items():
        if not isinstance(cond, dict):
            raise InputError(f"`query` {name}: {cond!r} is not an operator object such as {{\"eq\": 2016}}")
        for op, want in cond.items():
            fn = _QUERY_OPS.get(op)
            if fn is None:
                raise InputError(f"`query` {name}: operator {op!r} is not one of {', '.join(_QUERY_OPS)}")
            if not fn(props.get(name), want):
                return False
    return True


def _filter_test(flt: dict[str, Any] | str) -> Any:
    """A CQL2 filter (text or JSON) as a test of one item (static catalogs), via ``cql2``."""
    try:
        import cql2
    except ImportError:
        raise InputError("a CQL2 filter on a static catalog needs the cql2 package: pip install 'landuse[stac]'") from None
    try:
        expr = cql2.Expr(flt)
    except Exception as exc:  # noqa: BLE001 - cql2 parse errors
        raise InputError(f"`filter` {flt!r} is not valid CQL2 ({exc}); see the CQL2 text or JSON syntax") from None

    def test(item: Any) -> bool:
        return bool(expr.matches(item.to_dict(include_self_link=False, transform_hrefs=False)))

    return test


# -- choosing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChosenItem:
    """One item a period reads: its COG asset and the bands that make R, G, B."""

    id: str
    collection: str | None
    datetime: str
    asset: str
    href: str  # as the catalog gives it (may carry a signature: never written)
    bands: tuple[int, int, int] | None
    size: int | None
    geometry: dict[str, Any]

    @property
    def year(self) -> int:
        return int(self.datetime[:4])

    def record(self) -> dict[str, Any]:
        """What the manifest keeps: id, datetime, asset, href without signature, bands, size."""
        return {"id": self.id, "collection": self.collection, "datetime": self.datetime, "asset": self.asset,
                "href": strip_signature(self.href), "bands": list(self.bands) if self.bands else None, "size": self.size}


def _item_datetime(item: Any) -> str:
    t = item.datetime or item.common_metadata.start_datetime
    if t is None:
        raise StacError(f"STAC item {item.id} has no datetime; the catalog is not usable for periods")
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def pick_asset(item: Any, asset: str | None = None) -> str:
    """The key of the item's imagery asset: ``asset`` if given, else ``image``, else the first data
    asset that is a GeoTIFF / COG."""
    keys = list(item.assets)
    if asset is not None:
        if asset not in item.assets:
            raise StacError(f"STAC item {item.id} has no asset {asset!r} (it has {', '.join(keys)}); pass `asset` with one of them")
        return asset
    if "image" in item.assets:
        return "image"

    def is_tiff(a: Any) -> bool:
        media = (a.media_type or "").lower()
        return "tiff" in media or urlsplit(a.href).path.lower().endswith((".tif", ".tiff"))

    for want_data in (True, False):
        for key, a in item.assets.items():
            if is_tiff(a) and (not want_data or "data" in (a.roles or [])):
                return key
    raise StacError(f"STAC item {item.id} has no GeoTIFF asset (assets: {', '.join(keys)}); pass `asset` KEY")


def item_bands(item: Any, key: str) -> tuple[int, int, int] | None:
    """1-based R, G, B band numbers from the asset's (or item's) ``eo:bands`` / ``bands`` common
    names; None when they do not say (the raster's own colour interpretation decides)."""
    a = item.assets[key]
    for source in (a.extra_fields, item.properties):
        bands = source.get("eo:bands") or source.get("bands")
        if not bands:
            continue
        names = []
        for b in bands:
            name = str(b.get("common_name") or b.get("eo:common_name") or b.get("name") or "").lower()
            names.append(name)
        if all(c in names for c in ("red", "green", "blue")):
            return tuple(names.index(c) + 1 for c in ("red", "green", "blue"))  # type: ignore[return-value]
    return None


def _asset_size(item: Any, key: str) -> int | None:
    a = item.assets[key]
    size = a.extra_fields.get("file:size")
    return int(size) if isinstance(size, (int, float)) else None


def choose_items(items: Sequence[Any], asset: str | None = None, aoi: Any = None) -> tuple[list[ChosenItem], list[dict[str, str]]]:
    """The items a period reads, newest first, and those left out with the reason.

    Newest acquisition first (ties by id); an item outside the AOI (a shapely geometry in EPSG:4326)
    or whose footprint within it later items already cover is left out."""
    import shapely
    import shapely.geometry

    rows = []
    for it in items:
        if it.geometry is None:
            raise StacError(f"STAC item {it.id} has no geometry; the catalog is not usable for an AOI")
        rows.append((_item_datetime(it), it.id, it))
    rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
    chosen: list[ChosenItem] = []
    dropped: list[dict[str, str]] = []
    covered = None
    seen: set[str] = set()
    for when, iid, it in rows:
        if iid in seen:
            dropped.append({"id": iid, "datetime": when, "reason": "duplicate id"})
            continue
        seen.add(iid)
        geom = shapely.make_valid(shapely.geometry.shape(it.geometry))
        part = geom.intersection(aoi) if aoi is not None else geom
        if aoi is not None and part.is_empty:
            dropped.append({"id": iid, "datetime": when, "reason": "outside the AOI"})
            continue
        if covered is not None and part.area > 0 and part.difference(covered).area <= SUPERSEDED_TOLERANCE * part.area:
            dropped.append({"id": iid, "datetime": when, "reason": "covered by later acquisitions"})
            continue
        key = pick_asset(it, asset)
        chosen.append(ChosenItem(iid, it.collection_id, when, key, it.assets[key].href, item_bands(it, key),
                                 _asset_size(it, key), it.geometry))
        covered = part if covered is None else covered.union(part)
    return chosen, dropped


# -- the selection of a period ---------------------------------------------------------------


@dataclass
class StacSelection:
    """The result of a period's search: the items chosen and what they cover."""

    source: StacSource
    search_area: dict[str, Any] | None
    found: int
    items: list[ChosenItem]
    dropped: list[dict[str, str]] = field(default_factory=list)
    plots: int | None = None  # plots of the AOI / grid
    uncovered_plots: int | None = None  # of them, plots whose centre no chosen item covers

    @property
    def years(self) -> list[int]:
        return sorted({i.year for i in self.items})

    @property
    def total_size(self) -> int | None:
        sizes = [i.size for i in self.items]
        return sum(s for s in sizes if s is not None) if sizes and all(s is not None for s in sizes) else None

    def warnings(self) -> list[str]:
        out = []
        if len(self.years) > 1:
            out.append(f"the period mixes acquisition years {', '.join(map(str, self.years))}")
        if self.uncovered_plots:
            out.append(f"{self.uncovered_plots:,} of {self.plots:,} plots are covered by no item (gaps in the catalog for this AOI)")
        return out

    def provenance(self) -> dict[str, Any]:
        """The manifest's record: the search, the items (hrefs without signatures), coverage."""
        return {
            "version": PROVENANCE_VERSION,
            "search": search_key(self.source, self.search_area),
            "items": [i.record() for i in self.items],
            "dropped": list(self.dropped),
            "found": self.found,
            "years": self.years,
            "plots": self.plots,
            "uncovered_plots": self.uncovered_plots,
            "sign": self.source.signer(),
        }

    def describe(self) -> str:
        """Human summary: one line per item, then coverage, size and warnings."""
        src = strip_signature(self.source.url)
        lines = [f"STAC {src} {','.join(self.source.collections) or '(all collections)'} datetime {self.source.datetime or '(any)'}: "
                 f"{self.found} item(s) found, {len(self.items)} chosen"]
        for i in self.items:
            size = f"{i.size / 1e6:,.1f} MB" if i.size is not None else "size ?"
            bands = ",".join(map(str, i.bands)) if i.bands else "from file"
            lines.append(f"  {i.id}  {i.datetime[:10]}  asset {i.asset}  bands {bands}  {size}  {strip_signature(i.href)}")
        for d in self.dropped:
            lines.append(f"  (left out {d['id']} {d['datetime'][:10]}: {d['reason']})")
        if self.plots is not None:
            cov = self.plots - (self.uncovered_plots or 0)
            lines.append(f"coverage: {cov:,} of {self.plots:,} plots ({100.0 * cov / max(self.plots, 1):.1f} %) lie on a chosen item")
        total = self.total_size
        known = [i.size for i in self.items if i.size is not None]
        if total is not None:
            lines.append(f"total size: {total / 1e6:,.1f} MB in {len(self.items)} file(s)")
        elif known:
            lines.append(f"total size: at least {sum(known) / 1e6:,.1f} MB ({len(self.items) - len(known)} file size(s) unknown)")
        else:
            lines.append(f"total size: unknown ({len(self.items)} file(s); the catalog gives no file:size)")
        lines += [f"warning: {w}" for w in self.warnings()]
        return "\n".join(lines)

    def attach(self, scene: Scene, grid: PlotGrid, mask: np.ndarray | None) -> None:
        """Count the plots of ``grid`` (within ``mask``) no item covers, record the selection in
        ``scene``'s provenance and log the warnings (mixed years, gaps)."""
        self.plots, self.uncovered_plots = uncovered_plots(grid, mask, self.items)
        scene.origin = self.provenance()
        for w in self.warnings():
            log.warning("STAC %s: %s", ",".join(self.source.collections) or strip_signature(self.source.url), w)

    def to_geojson(self) -> dict[str, Any]:
        """The chosen items as a GeoJSON FeatureCollection (hrefs without signatures)."""
        feats = [{"type": "Feature", "id": i.id, "geometry": i.geometry, "properties": i.record()} for i in self.items]
        return {"type": "FeatureCollection", "features": feats, "properties": {k: v for k, v in self.provenance().items() if k != "items"}}

    def write_geojson(self, path: str | Path) -> None:
        """Write :meth:`to_geojson` to ``path`` atomically."""
        from landuse.store import atomic_write_bytes

        atomic_write_bytes(Path(path), (json.dumps(self.to_geojson(), indent=1) + "\n").encode())

    def scene(self, bands: Sequence[int] | None = None, stretch: Any = None) -> Scene:
        """The period's :class:`~landuse.imagery.Scene`: the items' COGs newest first."""
        from concurrent.futures import ThreadPoolExecutor

        from landuse.imagery import Scene, parse_bands

        if not self.items:
            raise StacError(f"the STAC search found no usable item ({self.describe().splitlines()[0]}); check the collection, datetime and AOI")
        user = parse_bands(bands)
        sign = self.source.signer()

        def inspect(i: ChosenItem) -> Any:
            try:
                return inspect_source(i.href, user or i.bands, sign)
            except RasterError as exc:
                raise RasterError(f"STAC item {i.id}: {exc}") from None

        with ThreadPoolExecutor(min(OPEN_THREADS, len(self.items))) as pool:
            files = list(pool.map(inspect, self.items))
        return Scene.from_files(files, user, stretch, origin=self.provenance())


def search_key(source: StacSource, area: dict[str, Any] | None) -> dict[str, Any]:
    """The search as recorded (the area as its sha256 and bounds): equal searches, equal keys."""
    import shapely.geometry

    key = source.to_dict()
    if area is None:
        key["intersects"] = None
    else:
        text = json.dumps(area, sort_keys=True)
        key["intersects"] = {"sha256": hashlib.sha256(text.encode()).hexdigest(),
                             "bounds": [round(v, 6) for v in shapely.geometry.shape(area).bounds]}
    return key


# -- AOI / grid -> search area -------------------------------------------------------------


def search_area(aoi: AoiLike | None = None, grid: PlotGrid | None = None) -> dict[str, Any]:
    """The GeoJSON (EPSG:4326) to search with: the AOI's polygons (slightly grown, simplified),
    else the grid's footprint."""
    import geopandas as gpd
    import shapely
    import shapely.geometry

    if aoi is not None:
        from landuse.grid import read_aoi

        geom, crs = read_aoi(aoi)
        g = gpd.GeoSeries([geom], crs=crs.to_wkt()).to_crs("EPSG:4326").iloc[0]
        # about 100 m larger, then simplified: a county from TIGER has many thousand vertices
        g = shapely.make_valid(g.buffer(0.001).simplify(0.0005, preserve_topology=True))
    elif grid is not None:
        minx, miny, maxx, maxy = grid.bounds
        box = shapely.geometry.box(minx, miny, maxx, maxy).segmentize(max(maxx - minx, maxy - miny) / 16)
        g = gpd.GeoSeries([box], crs=grid.crs.to_wkt()).to_crs("EPSG:4326").iloc[0]
    else:
        raise InputError("a STAC search needs an area: pass `aoi` (a polygon file) or `grid` (grid.json)")
    return json.loads(json.dumps(shapely.geometry.mapping(shapely.set_precision(g, 1e-7))))


def uncovered_plots(grid: PlotGrid, mask: np.ndarray | None, items: Sequence[ChosenItem]) -> tuple[int, int]:
    """(plots, plots whose centre no item's footprint covers), within ``mask`` when given."""
    import geopandas as gpd
    import shapely
    import shapely.geometry

    want = np.ones(grid.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    total = int(want.sum())
    if not items:
        return total, total
    union = shapely.union_all([shapely.make_valid(shapely.geometry.shape(i.geometry)) for i in items])
    union = gpd.GeoSeries([union], crs="EPSG:4326").to_crs(grid.crs.to_wkt()).iloc[0]
    x, y = grid.centres()
    inside = shapely.contains_xy(union, x, y).reshape(grid.shape)
    return total, int((want & ~inside).sum())


def recorded_item_ids(out: str | Path | None, key: dict[str, Any]) -> list[str] | None:
    """The item ids a run in ``out`` used for an equal search (a rerun reads the same items)."""
    if out is None:
        return None
    path = Path(out) / "manifest.json"
    if not path.exists():
        return None
    try:
        stac = json.loads(path.read_text()).get("imagery", {}).get("stac")
    except (OSError, json.JSONDecodeError):
        return None
    if not stac or json.loads(json.dumps(stac.get("search"))) != json.loads(json.dumps(key)):
        return None
    return [str(i["id"]) for i in stac.get("items", [])]


def select(
    source: StacSource,
    aoi: AoiLike | None = None,
    grid: PlotGrid | None = None,
    mask: np.ndarray | None = None,
    reuse_from: str | Path | None = None,
) -> StacSelection:
    """Search ``source`` over the AOI (or the grid's footprint) and choose the period's items.

    With ``reuse_from`` (a run directory) holding a run of an equal search, the items it recorded
    are fetched by id, so a rerun reads the same items even if the catalog has changed."""
    import shapely.geometry

    area = search_area(aoi, grid)
    key = search_key(source, area)
    ids = recorded_item_ids(reuse_from, key)
    items = search_items(source, area, ids)
    if ids is not None:
        got = {it.id for it in items}
        missing = [i for i in ids if i not in got]
        if missing:
            raise StacError(
                f"{reuse_from} was made from STAC items that the catalog no longer returns ({', '.join(missing[:5])}); "
                "pass `overwrite=True` to search again"
            )
        log.info("reusing the %d STAC item(s) recorded in %s", len(ids), reuse_from)
    chosen, dropped = choose_items(items, source.asset, shapely.geometry.shape(area) if aoi is not None else None)
    sel = StacSelection(source, area, len(items), chosen, dropped)
    if grid is not None:
        sel.plots, sel.uncovered_plots = uncovered_plots(grid, mask, chosen)
    return sel


def open_period(
    source: StacSource,
    *,
    aoi: AoiLike | None = None,
    grid_file: str | Path | None = None,
    bands: Sequence[int] | None = None,
    stretch: Any = None,
    out: str | Path | None = None,
    overwrite: bool = False,
) -> tuple[Scene, StacSelection]:
    """For ``classify``: search, choose and open the period's scene (its provenance carries the
    selection); a rerun into ``out`` reads the items recorded there (unless ``overwrite``).
    Plan the grid from the scene, then call :meth:`StacSelection.attach`."""
    from landuse.grid import PlotGrid

    pre_grid = PlotGrid.load(grid_file) if grid_file is not None else None
    sel = select(source, aoi=aoi, grid=pre_grid, reuse_from=None if overwrite else out)
    return sel.scene(bands, stretch), sel


def footprint_plan(
    source: StacSource,
    *,
    aoi: AoiLike | None = None,
    grid_file: str | Path | None = None,
    plot_size_m: float = 224.0,
) -> tuple[StacSelection, PlotGrid]:
    """For ``search`` and ``classify --dry-run``: the selection and the grid, from the items'
    footprints only (no raster is opened). Without ``grid_file`` the grid is the AOI's (UTM)."""
    from landuse.grid import PlotGrid

    if grid_file is not None:
        grid = PlotGrid.load(grid_file)
    elif aoi is not None:
        grid = PlotGrid.from_aoi(aoi, plot_size_m=plot_size_m)
    else:
        raise InputError("a STAC search needs an area: pass `aoi` (a polygon file) or `grid` (grid.json)")
    mask = grid.aoi_mask(aoi) if aoi is not None else None
    sel = select(source, aoi=aoi, grid=grid, mask=mask)
    return sel, grid


def search(
    stac: StacSource | str,
    *,
    collections: Sequence[str] | str | None = None,
    datetime: str | int | None = None,
    query: dict[str, Any] | str | None = None,
    filter: dict[str, Any] | str | None = None,
    asset: str | None = None,
    aoi: str | Path | None = None,
    aoi_where: str | None = None,
    grid: str | Path | None = None,
    plot_size_m: float = 224.0,
    sizes: bool = True,
) -> StacSelection:
    """The items a period would read over ``aoi`` (or ``grid``'s footprint), newest first, with
    the plots they cover and their sizes (``sizes``: HTTP HEAD where the catalog gives none).
    Reads no pixel. ``stac`` is a :class:`StacSource` or its URL (then the other search fields)."""
    from landuse.grid import aoi_of

    source = stac if isinstance(stac, StacSource) else StacSource.of(stac, collections, datetime, query, filter, asset)
    sel, _grid = footprint_plan(source, aoi=aoi_of(aoi, aoi_where), grid_file=grid, plot_size_m=plot_size_m)
    if sizes:
        head_sizes(sel)
    return sel


def dry_run_lines(
    source: StacSource,
    *,
    aoi: AoiLike | None = None,
    grid_file: str | Path | None = None,
    plot_size_m: float = 224.0,
    min_valid: float = 0.9,
) -> tuple[list[str], int]:
    """``classify --dry-run`` of a STAC source: the ``search`` listing and the plots that would be
    read (from the items' footprints; no pixel read). Returns the lines and that plot count."""
    sel, grid = footprint_plan(source, aoi=aoi, grid_file=grid_file, plot_size_m=plot_size_m)
    covered = (sel.plots or 0) - (sel.uncovered_plots or 0)
    return [sel.describe(), f"dry run: {grid.describe()}; {covered} plots lie on a chosen item and would be read "
            f"(those with >= {min_valid:g} valid imagery classified)"], covered


def head_sizes(sel: StacSelection, timeout: float = 20.0) -> None:
    """Fill in unknown item sizes with HTTP HEAD requests (signed where the catalog needs it)."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    sign = sel.source.signer()

    def size(i: ChosenItem) -> ChosenItem:
        if i.size is not None or not i.href.startswith(("http://", "https://")):
            if i.size is None and Path(i.href).exists():
                return ChosenItem(**{**i.__dict__, "size": Path(i.href).stat().st_size})
            return i
        url = sign_href(i.href, sign) if sign else i.href
        try:
            r = requests.head(url, timeout=timeout, allow_redirects=True)
            n = int(r.headers["Content-Length"]) if r.ok and "Content-Length" in r.headers else None
        except (requests.RequestException, ValueError):
            n = None
        return ChosenItem(**{**i.__dict__, "size": n})

    if sel.items:
        with ThreadPoolExecutor(min(OPEN_THREADS, len(sel.items))) as pool:
            sel.items = list(pool.map(size, sel.items))
