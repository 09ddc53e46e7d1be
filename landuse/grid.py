"""The plot grid: a raster whose pixels are plots.

A :class:`PlotGrid` is a projected CRS, an affine transform whose pixel size is the plot size
(224 m by default) and a shape. Its origin is snapped to a multiple of the plot size in that CRS,
so plot ``(row, col)`` covers the same ground in every period, run and county of that CRS, and its
id (``EPSG:32614/224/r/c`` with ``r``/``c`` counted from the CRS origin) is stable.

This module imports nothing of the package but :mod:`landuse.errors`, :mod:`landuse.defaults` and
:mod:`landuse.fileio`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS as ProjCRS
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.windows import Window

from landuse.defaults import PLOT_SIZE_M
from landuse.errors import AOIError, GridError, GridMismatchError, RasterError

DEFAULT_PLOT_SIZE_M = PLOT_SIZE_M
GRID_JSON_VERSION = 1
# Automatic UTM grids refuse footprints wider than this (a UTM zone is 6 degrees wide).
MAX_AUTO_UTM_SPAN_DEG = 12.0
# A grid larger than this is a mistake (a continent of 224 m plots), not a county.
MAX_PLOTS = 50_000_000
# Coordinates are snapped with this tolerance (CRS units) so float noise never shifts a plot.
_EPS = 1e-6


@dataclass(frozen=True)
class Chunk:
    """A contiguous block of plots of a grid (a window in plot units)."""

    row_off: int
    col_off: int
    height: int
    width: int

    @property
    def id(self) -> str:
        """Stable, file-name safe id of the chunk within its grid."""
        return f"r{self.row_off:06d}_c{self.col_off:06d}_{self.height}x{self.width}"

    @property
    def window(self) -> Window:
        return Window(self.col_off, self.row_off, self.width, self.height)

    @property
    def size(self) -> int:
        return self.height * self.width

    def rows_cols(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices (in the grid) of every plot of the chunk, row-major."""
        r, c = np.meshgrid(
            np.arange(self.row_off, self.row_off + self.height),
            np.arange(self.col_off, self.col_off + self.width),
            indexing="ij",
        )
        return r.ravel(), c.ravel()


def linear_unit_factor(crs: CRS) -> float:
    """Metres per CRS unit of a projected CRS (1.0 for metres, 0.3048 for international feet)."""
    pcrs = ProjCRS.from_wkt(crs.to_wkt())
    axis = pcrs.axis_info[0] if pcrs.axis_info else None
    factor = getattr(axis, "unit_conversion_factor", None) if axis else None
    if not factor:
        raise GridError(f"cannot tell the linear unit of CRS {crs_label(crs)}; use a metric projected CRS (`crs` EPSG:XXXXX)")
    return float(factor)


def crs_label(crs: CRS) -> str:
    """Short printable name of a CRS: ``EPSG:32614`` when it has one, else its name."""
    epsg = crs.to_epsg() if crs else None
    if epsg:
        return f"EPSG:{epsg}"
    try:
        return ProjCRS.from_wkt(crs.to_wkt()).name
    except Exception:  # noqa: BLE001 - only for a label
        return "custom CRS"


def utm_crs_for(lon: float, lat: float) -> CRS:
    """The WGS 84 UTM zone CRS containing a longitude / latitude."""
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise GridError(f"centre ({lon}, {lat}) is not a longitude/latitude; check the sources' CRS")
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def parse_crs(value: str | int | CRS | None) -> CRS | None:
    """A CRS from user input (``EPSG:32614``, ``32614``, WKT, PROJ string) or ``None``."""
    if value is None or isinstance(value, CRS):
        return value
    try:
        return CRS.from_user_input(value)
    except Exception as exc:  # rasterio raises CRSError
        raise GridError(f"cannot parse CRS {value!r} ({exc}); give e.g. EPSG:32614") from None


# Projections whose units are far from ground metres at county scale (Web Mercator stretches by
# 1/cos(latitude); a geostationary view is not a map projection for plots): never a plot grid CRS
# chosen automatically. A user can still pass one with --crs.
_DISTORTING_METHODS = ("pseudo mercator", "mercator (variant", "mercator (1sp)", "mercator (2sp)", "geostationary")


def keeps_distances(crs: CRS) -> bool:
    """True unless the CRS is a (pseudo-)Mercator or geostationary projection."""
    try:
        op = ProjCRS.from_wkt(crs.to_wkt()).coordinate_operation
    except Exception:  # noqa: BLE001 - PROJ raises several types
        return False
    method = (op.method_name if op else "").lower()
    return method != "mercator" and not any(m in method for m in _DISTORTING_METHODS)


def _check_projected(crs: CRS) -> None:
    if crs.is_geographic or not crs.is_projected:
        raise GridError(
            f"plot grids need a projected CRS, got {crs_label(crs)} (degrees); "
            "omit `crs` to use the UTM zone of the area's centre"
        )


@dataclass(frozen=True, eq=False)
class PlotGrid:
    """CRS + affine (pixel = plot) + shape; origin on a multiple of the plot size."""

    crs: CRS
    transform: Affine
    width: int
    height: int
    plot_size_m: float = DEFAULT_PLOT_SIZE_M

    # -- construction -------------------------------------------------------------------------

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise GridError(f"a plot grid needs at least one plot, got {self.height} x {self.width}")
        if self.plot_size_m <= 0:
            raise GridError(f"plot size must be positive, got {self.plot_size_m}")
        _check_projected(self.crs)
        t = self.transform
        if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0 or not math.isclose(t.a, -t.e):
            raise GridError(f"a plot grid transform must be north-up with square pixels, got {tuple(t)[:6]}")

    @classmethod
    def from_bounds(
        cls,
        bounds: Sequence[float],
        crs: str | int | CRS,
        plot_size_m: float = DEFAULT_PLOT_SIZE_M,
    ) -> PlotGrid:
        """The smallest origin-anchored grid covering ``bounds`` (minx, miny, maxx, maxy) in ``crs``."""
        crs = parse_crs(crs)
        _check_projected(crs)
        minx, miny, maxx, maxy = (float(v) for v in bounds)
        if not all(map(math.isfinite, (minx, miny, maxx, maxy))) or maxx <= minx or maxy <= miny:
            raise GridError(f"bounds {tuple(bounds)} are empty or not finite; check the input footprint")
        size = plot_size_m / linear_unit_factor(crs)
        c0 = math.floor(minx / size + _EPS)
        c1 = math.ceil(maxx / size - _EPS)
        r0 = math.floor(-maxy / size + _EPS)  # rows counted downward from the CRS origin
        r1 = math.ceil(-miny / size - _EPS)
        if (c1 - c0) * (r1 - r0) > MAX_PLOTS:
            raise GridError(
                f"bounds {tuple(round(v) for v in bounds)} in {crs_label(crs)} make {(c1 - c0) * (r1 - r0):,} plots "
                f"(limit {MAX_PLOTS:,}); restrict the area with `aoi` or check the rasters' CRS"
            )
        transform = Affine(size, 0.0, c0 * size, 0.0, -size, -r0 * size)
        return cls(crs, transform, max(c1 - c0, 1), max(r1 - r0, 1), float(plot_size_m))

    @classmethod
    def from_rasters(
        cls,
        paths: Iterable[str | Path],
        crs: str | int | CRS | None = None,
        plot_size_m: float = DEFAULT_PLOT_SIZE_M,
    ) -> PlotGrid:
        """Grid covering the union of the rasters' footprints.

        CRS: ``crs`` if given; else the sources' projected CRS when they share one that keeps
        ground distances (not Web Mercator or geostationary); else the UTM zone of the footprints'
        centre. Never a geographic CRS.
        """
        import rasterio  # local: keep grid import light

        infos: list[tuple[CRS, tuple[float, float, float, float]]] = []
        for p in paths:
            try:
                with rasterio.open(p) as src:
                    if src.crs is None:
                        raise RasterError(f"{p} has no CRS; fix the file (gdal_edit.py -a_srs) or leave it out")
                    if src.transform.b != 0 or src.transform.d != 0:
                        raise RasterError(f"{p} has a rotated geotransform; warp it north-up first (gdalwarp)")
                    if src.transform == Affine.identity() and not src.gcps[0]:
                        raise RasterError(f"{p} is not georeferenced (identity transform); fix the file")
                    infos.append((src.crs, tuple(src.bounds)))
            except rasterio.errors.RasterioIOError as exc:
                raise RasterError(f"cannot open {p}: {exc}; check the path") from None
        if not infos:
            raise GridError("no rasters given to build a plot grid from; pass at least one imagery file")
        return cls.from_footprints(infos, crs=crs, plot_size_m=plot_size_m)

    @classmethod
    def from_footprints(
        cls,
        footprints: Sequence[tuple[CRS, Sequence[float]]],
        crs: str | int | CRS | None = None,
        plot_size_m: float = DEFAULT_PLOT_SIZE_M,
    ) -> PlotGrid:
        """Grid covering the union of (crs, bounds) footprints; CRS chosen as in :meth:`from_rasters`."""
        from rasterio.warp import transform_bounds

        target = parse_crs(crs)
        if target is None:
            crss = {c.to_wkt(): c for c, _ in footprints}
            only = next(iter(crss.values()))
            if len(crss) == 1 and only.is_projected and keeps_distances(only):
                target = only
            else:
                lonlat = [transform_bounds(c, "EPSG:4326", *b, densify_pts=21) for c, b in footprints]
                lo = np.array(lonlat)
                if not np.isfinite(lo).all():
                    raise GridError(
                        "a footprint has no finite longitude/latitude bounds (e.g. a full-disk or "
                        "non-Earth projection); crop the imagery or pass `crs` with a projected CRS"
                    )
                if lo[:, 2].max() - lo[:, 0].min() > MAX_AUTO_UTM_SPAN_DEG:
                    raise GridError(
                        f"the imagery spans {lo[:, 2].max() - lo[:, 0].min():.1f} degrees of longitude, too wide "
                        "for one UTM plot grid; split it by UTM zone or pass `crs` with a suitable projected CRS"
                    )
                lon = (lo[:, 0].min() + lo[:, 2].max()) / 2
                lat = (lo[:, 1].min() + lo[:, 3].max()) / 2
                target = utm_crs_for(float(lon), float(lat))
        _check_projected(target)
        boxes = []
        for c, b in footprints:
            try:
                boxes.append(b if c == target else transform_bounds(c, target, *b, densify_pts=21))
            except Exception as exc:  # noqa: BLE001 - PROJ raises several types
                raise GridError(f"cannot reproject a footprint from {crs_label(c)} to {crs_label(target)}: {exc}") from None
        arr = np.array(boxes, dtype=float)
        if not np.isfinite(arr).all():
            raise GridError(f"a footprint does not reproject to {crs_label(target)} (outside its area of use); pass `crs`")
        bounds = (arr[:, 0].min(), arr[:, 1].min(), arr[:, 2].max(), arr[:, 3].max())
        return cls.from_bounds(bounds, target, plot_size_m)

    @classmethod
    def from_aoi(
        cls,
        aoi: AoiLike,
        crs: str | int | CRS | None = None,
        plot_size_m: float = DEFAULT_PLOT_SIZE_M,
    ) -> PlotGrid:
        """Grid covering an AOI file's bounds (UTM zone of its centre unless ``crs`` is given)."""
        geom, gcrs = read_aoi(aoi)
        if crs is None:
            from rasterio.warp import transform_bounds

            # an AOI's own CRS may be anything (Web Mercator, a state plane): use the UTM zone
            lon0, lat0, lon1, lat1 = transform_bounds(gcrs, "EPSG:4326", *geom.bounds, densify_pts=21)
            crs = utm_crs_for((lon0 + lon1) / 2, (lat0 + lat1) / 2)
        return cls.from_footprints([(gcrs, geom.bounds)], crs=crs, plot_size_m=plot_size_m)

    # -- identity ------------------------------------------------------------------------------

    def _key(self) -> tuple:
        return (self.crs.to_wkt(), tuple(round(v, 9) for v in tuple(self.transform)[:6]), self.width, self.height)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PlotGrid):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"PlotGrid({crs_label(self.crs)}, {self.plot_size_m:g} m, {self.height} x {self.width} plots, "
            f"origin row {self.row0} col {self.col0})"
        )

    def describe(self) -> str:
        """One line for messages: CRS, plot size, shape and origin."""
        return repr(self)

    def require_equal(self, other: PlotGrid, what: str = "the two runs") -> None:
        """Raise :class:`GridMismatchError` naming both grids unless ``other`` equals this grid."""
        if self != other:
            raise GridMismatchError(
                f"{what} are on different plot grids ({self.describe()} vs {other.describe()}); "
                "rerun both on one grid with `grid` grid.json"
            )

    # -- geometry ------------------------------------------------------------------------------

    @property
    def plot_size(self) -> float:
        """Plot size in CRS units."""
        return self.transform.a

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def size(self) -> int:
        return self.width * self.height

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        t = self.transform
        return (t.c, t.f + t.e * self.height, t.c + t.a * self.width, t.f)

    @property
    def row0(self) -> int:
        """Row of this grid's first row, counted downward from the CRS origin."""
        return int(round(-self.transform.f / self.plot_size))

    @property
    def col0(self) -> int:
        """Column of this grid's first column, counted from the CRS origin."""
        return int(round(self.transform.c / self.plot_size))

    @property
    def plot_area_ha(self) -> float:
        """Area of one whole plot in hectares."""
        return self.plot_size_m**2 / 10_000.0

    @property
    def crs_key(self) -> str:
        """The CRS part of plot ids: ``EPSG:n`` or ``WKT-<hash>`` for CRSs without an EPSG code."""
        epsg = self.crs.to_epsg()
        if epsg:
            return f"EPSG:{epsg}"
        import hashlib

        return "WKT-" + hashlib.sha1(self.crs.to_wkt().encode()).hexdigest()[:8]

    def plot_id(self, row: int, col: int) -> str:
        """Stable printable id of plot (row, col): ``EPSG:32614/224/<global row>/<global col>``."""
        return f"{self.crs_key}/{self.plot_size_m:g}/{self.row0 + int(row)}/{self.col0 + int(col)}"

    def plot_ids(self, rows: np.ndarray | None = None, cols: np.ndarray | None = None) -> np.ndarray:
        """Ids of the given plots (default: all, row-major) as a numpy array of str."""
        if rows is None or cols is None:
            rows, cols = self.all_rows_cols()
        prefix = f"{self.crs_key}/{self.plot_size_m:g}/"
        gr = np.asarray(rows, dtype=np.int64) + self.row0
        gc = np.asarray(cols, dtype=np.int64) + self.col0
        return np.array([f"{prefix}{r}/{c}" for r, c in zip(gr.tolist(), gc.tolist(), strict=True)], dtype=object)

    def parse_plot_id(self, plot_id: str) -> tuple[int, int]:
        """(row, col) in this grid of a plot id; raises GridError for ids of another grid."""
        try:
            key, size, r, c = plot_id.rsplit("/", 3)
            row, col = int(r) - self.row0, int(c) - self.col0
        except ValueError:
            raise GridError(f"{plot_id!r} is not a plot id (expected CRS/size/row/col)") from None
        if key != self.crs_key or float(size) != self.plot_size_m or not self.contains(row, col):
            raise GridError(f"plot {plot_id} is not on {self.describe()}")
        return row, col

    def contains(self, row: int, col: int) -> bool:
        return 0 <= row < self.height and 0 <= col < self.width

    def all_rows_cols(self) -> tuple[np.ndarray, np.ndarray]:
        return Chunk(0, 0, self.height, self.width).rows_cols()

    def plot_bounds(self, row: int, col: int) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) of plot (row, col) in the grid CRS."""
        s = self.plot_size
        x0 = self.transform.c + col * s
        y1 = self.transform.f - row * s
        return (x0, y1 - s, x0 + s, y1)

    def plot_transform(self, row: int, col: int, pixels: int) -> Affine:
        """Affine of plot (row, col) sampled at ``pixels`` x ``pixels``."""
        minx, _, _, maxy = self.plot_bounds(row, col)
        px = self.plot_size / pixels
        return Affine(px, 0.0, minx, 0.0, -px, maxy)

    def chunk_transform(self, chunk: Chunk, pixels: int) -> Affine:
        """Affine of a chunk's footprint sampled at ``pixels`` per plot side."""
        return self.plot_transform(chunk.row_off, chunk.col_off, pixels)

    def centres(self, rows: np.ndarray | None = None, cols: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """x, y of plot centres in the grid CRS."""
        if rows is None or cols is None:
            rows, cols = self.all_rows_cols()
        s = self.plot_size
        x = self.transform.c + (np.asarray(cols) + 0.5) * s
        y = self.transform.f - (np.asarray(rows) + 0.5) * s
        return x, y

    def index_of(self, x: float, y: float) -> tuple[int, int]:
        """(row, col) of the plot containing point (x, y) of the grid CRS (may lie outside)."""
        t = self.transform
        col, row = (x - t.c) / t.a, (y - t.f) / t.e
        return int(math.floor(row)), int(math.floor(col))

    def footprints(
        self,
        rows: np.ndarray | None = None,
        cols: np.ndarray | None = None,
        to_crs: str | int | CRS | None = None,
        densify: int = 4,
    ) -> np.ndarray:
        """Plot polygons (shapely array) in the grid CRS, or reprojected to ``to_crs``.

        Reprojected rings are densified (``densify`` points a side) so edges follow the projection.
        """
        if rows is None or cols is None:
            rows, cols = self.all_rows_cols()
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        s = self.plot_size
        x0 = self.transform.c + cols * s
        y1 = self.transform.f - rows * s
        target = parse_crs(to_crs)
        if target is None or target == self.crs:
            return shapely.box(x0, y1 - s, x0 + s, y1)
        # ring: top-left -> top-right -> bottom-right -> bottom-left, densified, closed
        t = np.linspace(0.0, 1.0, max(densify, 1), endpoint=False)
        ux = np.concatenate([t, np.ones_like(t), 1 - t, np.zeros_like(t), [0.0]])
        uy = np.concatenate([np.zeros_like(t), t, np.ones_like(t), 1 - t, [0.0]])
        xs = x0[:, None] + ux[None, :] * s
        ys = y1[:, None] - uy[None, :] * s
        tr = Transformer.from_crs(self.crs.to_wkt(), target.to_wkt(), always_xy=True)
        X, Y = tr.transform(xs, ys)
        coords = np.stack([X, Y], axis=-1)
        return np.asarray(shapely.polygons(coords))

    def footprint(self, row: int, col: int, to_crs: str | int | CRS | None = None):
        """One plot's polygon (grid CRS, or reprojected)."""
        return self.footprints(np.array([row]), np.array([col]), to_crs=to_crs)[0]

    # -- partitions ----------------------------------------------------------------------------

    def chunks(self, rows: int = 8, cols: int | None = None) -> list[Chunk]:
        """Contiguous blocks of ``rows`` x ``cols`` plots (default: bands of full width) that
        partition the grid, row-major."""
        if rows < 1 or (cols is not None and cols < 1):
            raise GridError(f"chunk size must be at least 1 x 1 plots, got {rows} x {cols}")
        cols = self.width if cols is None else cols
        out = []
        for r in range(0, self.height, rows):
            for c in range(0, self.width, cols):
                out.append(Chunk(r, c, min(rows, self.height - r), min(cols, self.width - c)))
        return out

    def chunks_of(self, plots: int) -> list[Chunk]:
        """Chunks of about ``plots`` plots each: bands of whole rows when a row is short enough,
        else row segments of ``plots`` columns."""
        if plots < 1:
            raise GridError(f"`chunk_plots` must be at least 1, got {plots}")
        if plots >= self.width:
            return self.chunks(rows=max(1, plots // self.width))
        # square-ish blocks keep reads local in both directions
        side = max(1, int(math.sqrt(plots)))
        return self.chunks(rows=side, cols=max(1, plots // side))

    def iter_chunks(self, rows: int = 8, cols: int | None = None) -> Iterator[Chunk]:
        yield from self.chunks(rows, cols)

    def subgrid(self, chunk: Chunk) -> PlotGrid:
        """The chunk as a grid of its own (same CRS and anchoring)."""
        a = self.transform
        t = Affine(a.a, 0.0, a.c + chunk.col_off * a.a, 0.0, a.e, a.f + chunk.row_off * a.e)
        return PlotGrid(self.crs, t, chunk.width, chunk.height, self.plot_size_m)

    # -- AOI -----------------------------------------------------------------------------------

    def aoi_mask(self, aoi: AoiLike) -> np.ndarray:
        """Boolean (height, width): plots whose centre lies inside the AOI polygon(s)."""
        geom, gcrs = read_aoi(aoi)
        if gcrs != self.crs:
            import geopandas as gpd

            geom = gpd.GeoSeries([geom], crs=gcrs).to_crs(self.crs).iloc[0]
        x, y = self.centres()
        mask = shapely.contains_xy(geom, x, y).reshape(self.shape)
        if not mask.any():
            raise AOIError(f"no plot centre of {self.describe()} lies inside AOI {aoi}; check the AOI and imagery overlap")
        return mask

    def crop_to_mask(self, mask: np.ndarray) -> tuple[PlotGrid, np.ndarray]:
        """The smallest subgrid holding every True plot of ``mask``, and the mask cropped to it."""
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            raise GridError("the plot mask is empty; nothing to crop to")
        ch = Chunk(int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1))
        return self.subgrid(ch), mask[ch.row_off : ch.row_off + ch.height, ch.col_off : ch.col_off + ch.width]

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        epsg = self.crs.to_epsg()
        return {
            "version": GRID_JSON_VERSION,
            "crs": f"EPSG:{epsg}" if epsg and CRS.from_epsg(epsg) == self.crs else self.crs.to_wkt(),
            "plot_size_m": self.plot_size_m,
            "transform": list(tuple(self.transform)[:6]),
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_dict(cls, data: dict) -> PlotGrid:
        try:
            t = [float(v) for v in data["transform"]]
            return cls(
                CRS.from_user_input(data["crs"]),
                Affine(*t),
                int(data["width"]),
                int(data["height"]),
                float(data.get("plot_size_m", DEFAULT_PLOT_SIZE_M)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GridError(f"not a plot grid description ({exc}); expected crs, transform, width, height") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> PlotGrid:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GridError(f"grid JSON is not valid JSON ({exc})") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> Path:
        """Write ``grid.json`` atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        from landuse.fileio import write_text

        return write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> PlotGrid:
        from landuse.fileio import read_text

        path = Path(path)
        text = read_text(path, "grid file", GridError)
        try:
            return cls.from_json(text)
        except GridError as exc:
            raise GridError(f"{path}: {exc}") from None


@dataclass(frozen=True)
class AoiFile:
    """An AOI file with an attribute filter (``where``, an OGR SQL expression such as
    ``GEOID = '06025'``), e.g. one county of a Census TIGER county file. Usable as a path."""

    path: Path
    where: str | None = None

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return f"{self.path} where {self.where}" if self.where else str(self.path)


AoiLike = str | Path | AoiFile
"""An AOI argument: a polygon file path, or an :class:`AoiFile` (a path with an attribute filter)."""


def aoi_of(path: str | Path | None, where: str | None = None) -> AoiFile | Path | None:
    """The AOI argument for ``path`` and an optional attribute filter."""
    if path is None:
        if where:
            raise AOIError(f"`aoi_where` {where!r} needs `aoi` (the file to pick features from)")
        return None
    return AoiFile(Path(path), where.strip()) if where and where.strip() else Path(path)


def _aoi_fields(path: Path) -> str:
    try:
        import pyogrio

        return ", ".join(str(f) for f in pyogrio.read_info(path)["fields"][:12])
    except Exception:  # noqa: BLE001 - best effort, for the message only
        return "unknown"


def read_aoi(aoi: AoiLike) -> tuple[Any, CRS]:
    """The union of an AOI file's polygons and its CRS (GeoJSON / GeoPackage / Shapefile ...);
    an :class:`AoiFile` keeps only the features its ``where`` selects."""
    import geopandas as gpd

    path = Path(aoi)
    where = getattr(aoi, "where", None)
    if not path.exists():
        raise AOIError(f"AOI file {path} does not exist; check the path")
    try:
        gdf = gpd.read_file(path, where=where) if where else gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - pyogrio raises many types
        if where:
            raise AOIError(f"`aoi_where` {where!r} cannot filter {path} ({exc}); fields: {_aoi_fields(path)}") from None
        raise AOIError(f"cannot read AOI {path} ({exc}); give a GeoJSON, GeoPackage or Shapefile") from None
    if gdf.empty and where:
        raise AOIError(f"no feature of {path} matches `aoi_where` {where!r}; check the value (fields: {_aoi_fields(path)})")
    if gdf.empty:
        raise AOIError(f"AOI {path} has no features; give a file with at least one polygon")
    if gdf.crs is None:
        raise AOIError(f"AOI {path} has no CRS; set one (GeoJSON is EPSG:4326 by definition)")
    polys = gdf.geometry[gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polys.empty:
        raise AOIError(f"AOI {path} has no polygons (found {sorted(set(gdf.geom_type))}); give an area, not points or lines")
    geom = shapely.make_valid(polys.union_all())
    return geom, CRS.from_user_input(gdf.crs.to_wkt())
