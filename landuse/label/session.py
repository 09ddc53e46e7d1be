"""A labelling session: the plots to ask about, their images, and the labels written as given.

Labels land in a dataset folder in the layout ``landuse train`` and Custom Vision read::

    DATASET/<tag>/<plot file name>_<period>.png   the plot at the model's input size
    DATASET/labels.csv                             plot_id, label, run, period, x, y, crs, chip, labelled_at
    DATASET/.landuse-label/<session>.json          the session: its plots, skips and history (for undo)

Every label is written at once (chip, then index, then session; each file atomically), so a
closed page or a killed server loses at most the label being written. ``unknown`` is a label
(its folder is ``DATASET/unknown``); a skip is remembered in the session only. Reopening a
session (same runs and plots) continues with the first plot neither labelled nor skipped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from landuse.errors import InputError
from landuse.fileio import safe_name
from landuse.label.selection import UNKNOWN, RunPlots, Selection, read_run_plots, select_plots

if TYPE_CHECKING:
    from landuse.grid import PlotGrid
    from landuse.imagery import Scene

INDEX = "labels.csv"
INDEX_FIELDS = ("plot_id", "label", "run", "period", "x", "y", "crs", "chip", "labelled_at")
SESSIONS = ".landuse-label"
SKIP = "skip"
DEFAULT_CONTEXT = 0.25  # context around the plot, as a share of the plot side on each side
MAX_VIEW_PIXELS = 1024


def _safe(text: str) -> str:
    return safe_name(str(text), replacement="-", empty="period")


def run_scene(plots: RunPlots, imagery: Sequence[str] | None = None,
              hint: str = "put the files back where the run read them", stretch: Any = None) -> Scene:
    """The run's imagery (the files, bands and stretch its manifest records, or ``imagery`` /
    ``stretch``) as a Scene."""
    from landuse.imagery import Scene

    inputs = list(imagery or []) or [
        str(i["path"]) for i in plots.manifest.get("inputs") or [] if isinstance(i, dict) and "path" in i]
    missing = [p for p in inputs if "://" not in p and not Path(p).exists()]
    if not inputs or missing:
        what = "not recorded" if not inputs else f"missing: {missing[0]}"
        raise InputError(f"the imagery of run {plots.path} is {what}; {hint}")
    recorded = plots.manifest.get("imagery") or {}
    return Scene.open(inputs, bands=recorded.get("bands_requested"),
                      stretch=stretch if stretch is not None else recorded.get("stretch"))


def native_pixel_size(scene: Scene, grid: PlotGrid, row: int, col: int) -> float:
    """Finest pixel size (grid CRS units) of the scene's files under plot (row, col)."""
    bounds = grid.plot_bounds(row, col)
    sizes = []
    for i in scene.files_intersecting(grid.crs, bounds):
        f = scene.files[int(i)]
        if f.crs == grid.crs:
            sizes.append(f.res[0])
        else:
            b = scene.bboxes(grid.crs)[int(i)]
            sizes.append(float(b[2] - b[0]) / f.width)
    return min(sizes) if sizes else grid.plot_size / 224.0


def encode_image(rgb: np.ndarray, fmt: str = "PNG") -> bytes:
    """PNG or JPEG bytes of a uint8 (H, W, 3) image."""
    from PIL import Image

    buf = io.BytesIO()
    if fmt == "JPEG":
        Image.fromarray(rgb, mode="RGB").save(buf, format="JPEG", quality=88)
    else:
        Image.fromarray(rgb, mode="RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


@dataclass(frozen=True)
class LabelItem:
    """One question: the plot of ``runs[run_index]`` (its period) at row / col."""

    key: str  # plot_id@period
    plot_id: str
    row: int
    col: int
    period: str
    run_index: int
    reason: str
    score: float


@dataclass
class LabelSession:
    """Plots to label from one run (or two: before / after) into ``dataset``."""

    runs: list[RunPlots]
    dataset: Path
    items: list[LabelItem]
    tags: list[str]
    blind: bool = False
    context: float = DEFAULT_CONTEXT
    chip_size: int = 224
    strategy: str = "mix"
    _scenes: dict[int, Scene] = field(default_factory=dict, repr=False)
    _views: dict[tuple[int, int, int], bytes] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        run_dir: str | Path,
        dataset: str | Path,
        *,
        other_run: str | Path | None = None,
        change_dir: str | Path | None = None,
        plot_ids: Sequence[str] | None = None,
        n: int = 40,
        strategy: str = "mix",
        blind: bool = False,
        extra_tags: Sequence[str] = (),
        context: float = DEFAULT_CONTEXT,
        chip_size: int | None = None,
    ) -> LabelSession:
        """Choose the plots (see :func:`select_plots`) and open (or continue) the session."""
        if not 0.0 <= context <= 2.0:
            raise InputError(f"context {context} must lie in [0, 2] (a share of the plot side on each side)")
        runs = [read_run_plots(run_dir)]
        if other_run is not None:
            second = read_run_plots(other_run)
            runs[0].grid.require_equal(second.grid, what=f"runs {runs[0].path} and {second.path}")
            if second.period == runs[0].period:
                raise InputError(f"runs {runs[0].path} and {second.path} are both of period {second.period}; give two periods")
            runs.append(second)
        selection: Selection = select_plots(runs[0], n=n, strategy=strategy, change_dir=change_dir, plot_ids=plot_ids)
        items = [
            LabelItem(f"{p.plot_id}@{run.period}", p.plot_id, p.row, p.col, run.period, k, p.reason, p.score)
            for p in selection.picks for k, run in enumerate(runs)
        ]
        tags = list(runs[0].labels)
        for run in runs[1:]:
            tags += [t for t in run.labels if t not in tags]
        for t in extra_tags:
            t = str(t).strip()
            if not t or t != _safe(t) or t.startswith(".") or t.lower() in (SKIP, UNKNOWN):
                raise InputError(f"tag {t!r} is not usable as a folder name; use letters, digits, - . _ (not skip / unknown)")
            if t not in tags:
                tags.append(t)
        pixels = chip_size or int((runs[0].manifest.get("parameters") or {}).get("pixels") or 224)
        session = cls(runs, Path(dataset), items, [*tags, UNKNOWN], blind, context, pixels, selection.strategy)
        if session.dataset.exists() and not session.dataset.is_dir():
            raise InputError(f"dataset {session.dataset} is a file; give a folder for the labels")
        if session.dataset.is_dir():
            session._reconcile()
        return session

    @property
    def session_id(self) -> str:
        doc = [[str(r.path.resolve()) for r in self.runs], [it.key for it in self.items]]
        return hashlib.sha256(json.dumps(doc).encode()).hexdigest()[:16]

    @property
    def session_path(self) -> Path:
        return self.dataset / SESSIONS / f"{self.session_id}.json"

    # -- images ----------------------------------------------------------------------------

    def scene(self, run_index: int) -> Scene:
        with self._lock:
            if run_index not in self._scenes:
                self._scenes[run_index] = run_scene(self.runs[run_index])
            return self._scenes[run_index]

    def view(self, item_index: int, run_index: int) -> bytes:
        """JPEG of the item's plot in run ``run_index``'s imagery at native resolution, with
        ``context`` of the plot side around it."""
        from landuse.grid import Chunk, PlotGrid

        it = self.items[item_index]
        key = (it.row, it.col, run_index)
        with self._lock:
            if key in self._views:
                return self._views[key]
        run = self.runs[run_index]
        grid, scene = run.grid, self.scene(run_index)
        s = grid.plot_size
        res = native_pixel_size(scene, grid, it.row, it.col)
        side = s * (1 + 2 * self.context)
        pixels = int(min(MAX_VIEW_PIXELS, max(64, round(side / res))))
        minx, _, _, maxy = grid.plot_bounds(it.row, it.col)
        from affine import Affine

        window = PlotGrid(grid.crs, Affine(side, 0, minx - self.context * s, 0, -side, maxy + self.context * s), 1, 1,
                          plot_size_m=side)
        rgb, _ = scene.read_region(window, Chunk(0, 0, 1, 1), pixels)
        data = encode_image(np.ascontiguousarray(rgb.transpose(1, 2, 0)), "JPEG")
        with self._lock:
            self._views[key] = data
        return data

    def chip(self, item: LabelItem) -> bytes:
        """PNG of the plot alone at the model's input size (what the dataset stores)."""
        from landuse.tiler import encode_png

        rgb, _ = self.scene(item.run_index).read_plot(self.runs[item.run_index].grid, item.row, item.col, self.chip_size)
        return encode_png(rgb)

    # -- what the page shows ---------------------------------------------------------------

    def chip_name(self, item: LabelItem) -> str:
        from landuse.tiler import plot_file_name

        return f"{plot_file_name(item.plot_id)}_{_safe(item.period)}.png"

    def describe_item(self, i: int) -> dict[str, Any]:
        """JSON-ready description of item ``i`` (the model's guess left out when blind)."""
        it = self.items[i]
        run = self.runs[it.run_index]
        x, y = run.grid.centres(np.array([it.row]), np.array([it.col]))
        lon, lat = _to_lonlat(run.grid, float(x[0]), float(y[0]))
        d: dict[str, Any] = {
            "index": i, "key": it.key, "plot_id": it.plot_id, "row": it.row, "col": it.col, "period": it.period,
            "run_index": it.run_index, "periods": [r.period for r in self.runs],
            "lon": round(lon, 6), "lat": round(lat, 6),
        }
        if not self.blind:
            d["reason"] = it.reason
            guesses = []
            for r in self.runs:
                k = r.index_of(it.row, it.col)
                guesses.append(r.guess(k) if k is not None else None)
            d["guesses"] = guesses
        return d

    def minimap(self) -> dict[str, Any]:
        """The grid's predicted classes as a PNG data URL (one pixel per plot), for the mini-map."""
        import base64

        from landuse.report.palette import class_colors, hex_to_rgb

        run = self.runs[0]
        h, w = run.grid.shape
        img = np.zeros((h, w, 4), dtype=np.uint8)
        colours = class_colors(list(run.labels))
        colours[UNKNOWN] = "#000000"
        for tag, col in colours.items():
            sel = run.predicted == tag
            if self.blind:
                img[run.rows[sel], run.cols[sel]] = (150, 150, 150, 255)
            else:
                img[run.rows[sel], run.cols[sel]] = (*hex_to_rgb(col), 255)
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(img, mode="RGBA").save(buf, format="PNG")
        return {"width": w, "height": h, "png": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()}

    def page_data(self) -> dict[str, Any]:
        """Everything the page needs up front (no images)."""
        from landuse.report.palette import class_colors

        colours = {} if self.blind else {**class_colors(self.tags[:-1]), UNKNOWN: "#000000"}
        return {
            "session": self.session_id,
            "dataset": str(self.dataset),
            "runs": [{"path": str(r.path), "period": r.period} for r in self.runs],
            "tags": self.tags,
            "colours": colours,
            "blind": self.blind,
            "context": self.context,
            "strategy": self.strategy,
            "items": [self.describe_item(i) for i in range(len(self.items))],
            "minimap": self.minimap(),
            "state": self.state(),
        }

    # -- state on disk ---------------------------------------------------------------------

    def _read_index(self) -> list[dict[str, str]]:
        path = self.dataset / INDEX
        if not path.exists():
            return []
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except (OSError, csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path} is unreadable ({exc}); fix or remove it") from None
        return rows

    def _write_index(self, rows: list[dict[str, str]]) -> None:
        from landuse.store import atomic_write_bytes

        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(INDEX_FIELDS), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self.dataset / INDEX, buf.getvalue().encode("utf-8"))

    def _read_session(self) -> dict[str, Any]:
        path = self.session_path
        if not path.exists():
            return {"skipped": [], "history": []}
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{path} is unreadable ({exc}); remove it to start this session again") from None
        return {"skipped": list(doc.get("skipped") or []), "history": list(doc.get("history") or [])}

    def _write_session(self, doc: dict[str, Any]) -> None:
        from landuse.store import atomic_write_json

        self.session_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.session_path, {
            "session": self.session_id, "runs": [str(r.path) for r in self.runs], "blind": self.blind,
            "strategy": self.strategy,
            "items": [{"key": it.key, "plot_id": it.plot_id, "period": it.period, "reason": it.reason} for it in self.items],
            "skipped": doc["skipped"], "history": doc["history"],
        })

    def _labelled(self) -> dict[str, str]:
        """key -> label of this session's items found in the index."""
        mine = {it.key for it in self.items}
        out = {}
        for row in self._read_index():
            key = f"{row.get('plot_id')}@{row.get('period')}"
            if key in mine:
                out[key] = str(row.get("label"))
        return out

    def _reconcile(self) -> None:
        """Remove chips of this session's plots that the index does not list (a write cut short)."""
        with self._lock:
            labelled = {f"{r.get('chip')}" for r in self._read_index()}
            for it in self.items:
                for p in self.dataset.glob(f"*/{self.chip_name(it)}"):
                    if f"{p.parent.name}/{p.name}" not in labelled:
                        self._remove_chip(p)

    @staticmethod
    def _remove_chip(path: Path) -> None:
        """Delete a chip, and its tag folder when that leaves it empty (train reads every folder as a tag)."""
        path.unlink()
        try:
            path.parent.rmdir()
        except OSError:
            pass  # not empty

    def state(self) -> dict[str, Any]:
        """Labels given, skips, the next item to ask and progress."""
        with self._lock:
            labelled = self._labelled()
            doc = self._read_session()
            skipped = set(doc["skipped"])
            nxt = next((i for i, it in enumerate(self.items) if it.key not in labelled and it.key not in skipped), None)
            return {
                "labels": labelled, "skipped": sorted(skipped), "next": nxt,
                "done": len(labelled) + len(skipped & {it.key for it in self.items}), "total": len(self.items),
                "can_undo": bool(doc["history"]),
            }

    # -- actions ---------------------------------------------------------------------------

    def _item(self, key: str) -> LabelItem:
        for it in self.items:
            if it.key == key:
                return it
        raise InputError(f"{key!r} is not a plot of this labelling session")

    def label(self, key: str, tag: str, labelled_at: str | None = None) -> dict[str, Any]:
        """Record ``tag`` for item ``key``: chip into ``DATASET/<tag>/``, a row in labels.csv."""
        from landuse.store import atomic_write_bytes

        if tag == SKIP:
            return self.skip(key)
        if tag not in self.tags:
            raise InputError(f"label {tag!r} is not one of {', '.join(self.tags)}")
        it = self._item(key)
        data = self.chip(it)
        with self._lock:
            name = self.chip_name(it)
            (self.dataset / tag).mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.dataset / tag / name, data)
            for old in self.dataset.glob(f"*/{name}"):
                if old.parent.name != tag:
                    self._remove_chip(old)
            run = self.runs[it.run_index]
            x, y = run.grid.centres(np.array([it.row]), np.array([it.col]))
            rows = [r for r in self._read_index() if f"{r.get('plot_id')}@{r.get('period')}" != key]
            rows.append({
                "plot_id": it.plot_id, "label": tag, "run": str(run.path), "period": it.period,
                "x": f"{float(x[0]):.2f}", "y": f"{float(y[0]):.2f}", "crs": run.grid.crs_key, "chip": f"{tag}/{name}",
                "labelled_at": labelled_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            })
            self._write_index(rows)
            doc = self._read_session()
            doc["skipped"] = [k for k in doc["skipped"] if k != key]
            doc["history"].append({"key": key, "action": "label", "label": tag})
            self._write_session(doc)
            return self.state()

    def skip(self, key: str) -> dict[str, Any]:
        """Pass over item ``key`` (nothing is written to the dataset)."""
        self._item(key)
        with self._lock:
            doc = self._read_session()
            if key not in doc["skipped"]:
                doc["skipped"].append(key)
            doc["history"].append({"key": key, "action": SKIP})
            self._write_session(doc)
            return self.state()

    def undo(self) -> dict[str, Any]:
        """Take back the last label or skip of this session; the page asks that plot again."""
        with self._lock:
            doc = self._read_session()
            if not doc["history"]:
                return {**self.state(), "undone": None}
            last = doc["history"].pop()
            key = last["key"]
            if last["action"] == SKIP:
                doc["skipped"] = [k for k in doc["skipped"] if k != key]
            else:
                it = self._item(key)
                for p in self.dataset.glob(f"*/{self.chip_name(it)}"):
                    self._remove_chip(p)
                self._write_index([r for r in self._read_index() if f"{r.get('plot_id')}@{r.get('period')}" != key])
            self._write_session(doc)
            return {**self.state(), "undone": key}


def _to_lonlat(grid: PlotGrid, x: float, y: float) -> tuple[float, float]:
    from rasterio.warp import transform

    xs, ys = transform(grid.crs, "EPSG:4326", [x], [y])
    return float(xs[0]), float(ys[0])
