"""The run store: one classification run's directory, resumable and idempotent.

Layout of ``RUN_DIR``::

    manifest.json      written first: toolkit version, grid, inputs, model, parameters, period
    grid.json          the plot grid (``PlotGrid.load`` reads it back)
    parts/<chunk>.parquet   one part per chunk of plots, each written atomically
    plots.parquet, plots.geojson, plots.gpkg, classes.tif, probabilities.tif, summary.json   (finalised outputs)
    classes.qml / .sld / .tif.aux.xml, plots.qml / .sld   (styles: palette and class names)

A rerun with an equal manifest skips finished parts and computes the missing ones; a rerun with
a different manifest is refused (naming the difference) unless ``overwrite`` is given.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from landuse import __version__
from landuse.errors import OutputExistsError, RunStoreError
from landuse.fileio import atomic_path, swap_in_dir, write_json  # noqa: F401 (swap_in_dir: re-exported)
from landuse.fileio import write_bytes as atomic_write_bytes  # noqa: F401 (re-exported)
from landuse.grid import Chunk, PlotGrid

MANIFEST = "manifest.json"
GRID = "grid.json"
PARTS = "parts"
OUTPUTS = ("plots.parquet", "plots.geojson", "plots.gpkg", "classes.tif", "probabilities.tif", "summary.json")
SUMMARY = "summary.json"
# Manifest keys that describe the moment, not the run: never compared.
VOLATILE_KEYS = frozenset({"created"})


@dataclass(frozen=True)
class FinishedRun:
    """What every reader of a finished run directory needs first: grid, manifest, tags, period."""

    path: Path
    grid: PlotGrid
    manifest: dict[str, Any]
    labels: list[str]
    period: str


def read_finished_run(path: str | Path, needs: Iterable[str] = ()) -> FinishedRun:
    """Open a finished run directory (``grid.json``, ``manifest.json`` and the files in ``needs``),
    with one-line errors that say how to fix an incomplete or damaged run."""
    path = Path(path)
    for name in ("grid.json", "manifest.json", *needs):
        if not (path / name).exists():
            raise RunStoreError(
                f"{path} is not a finished run ({name} missing); run `landuse classify ... --out {path}` to completion first"
            )
    grid = PlotGrid.load(path / "grid.json")
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except json.JSONDecodeError as exc:
        raise RunStoreError(f"{path / 'manifest.json'} is not valid JSON ({exc}); rerun the classification with --overwrite") from None
    labels = [str(t) for t in manifest.get("labels") or []]
    if not labels:
        raise RunStoreError(f"{path / 'manifest.json'} lists no labels; rerun the classification with --overwrite")
    return FinishedRun(path, grid, manifest, labels, str(manifest.get("period") or path.name))


def build_manifest(
    *,
    grid: PlotGrid,
    inputs: list[dict[str, Any]],
    model: dict[str, Any],
    labels: list[str],
    parameters: dict[str, Any],
    period: str,
    imagery: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of a run (JSON-ready). ``model`` holds id, sha256 and backend."""
    return {
        "toolkit": {"name": "landuse", "version": __version__},
        "period": str(period),
        "grid": grid.to_dict(),
        "inputs": inputs,
        "imagery": imagery or {},
        "model": model,
        "labels": list(labels),
        "parameters": parameters,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def manifest_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Differences between two manifests as ``key: old -> new`` strings (volatile keys ignored)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            if not prefix and key in VOLATILE_KEYS:
                continue
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                out.append(f"{path}: (absent) -> {_short(new[key])}")
            elif key not in new:
                out.append(f"{path}: {_short(old[key])} -> (absent)")
            else:
                out.extend(manifest_differences(old[key], new[key], path))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out.extend(manifest_differences(a, b, f"{prefix}[{i}]"))
        return out
    return [] if old == new else [f"{prefix}: {_short(old)} -> {_short(new)}"]


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _canonical(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as it reads back from JSON (tuples -> lists ...)."""
    return json.loads(json.dumps(manifest, default=str))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    write_json(path, obj)


@dataclass
class RunStore:
    """A run directory. Use :meth:`prepare` to open (or create) one for a manifest."""

    root: Path
    manifest: dict[str, Any]
    resumed: bool = False

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def prepare(cls, root: str | Path, manifest: dict[str, Any], overwrite: bool = False) -> RunStore:
        """Open ``root`` for ``manifest``: create it, resume an equal run, or (``overwrite``)
        clear a different one. Raises :class:`RunStoreError` if an existing run differs and
        :class:`OutputExistsError` if ``root`` holds files that are not a run."""
        root = Path(root)
        manifest = _canonical(manifest)
        if root.exists() and not root.is_dir():
            raise OutputExistsError(f"{root} exists and is not a directory; choose another --out or remove it")
        mpath = root / MANIFEST
        if mpath.exists():
            try:
                old = json.loads(mpath.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                if not overwrite:
                    raise RunStoreError(f"{mpath} is unreadable ({exc}); pass --overwrite to start the run again") from None
                old = None
            if old is not None:
                diffs = manifest_differences(old, manifest)
                if not diffs and not overwrite:
                    store = cls(root, old, resumed=True)
                    store._clean_temporaries()
                    store._check_grid_file()
                    return store
                if diffs and not overwrite:
                    shown = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
                    raise RunStoreError(
                        f"{root} holds a different run ({shown}); use another --out, or pass --overwrite to replace it"
                    )
            cls._clear(root)
        elif root.exists() and any(root.iterdir()):
            if not overwrite:
                names = sorted(p.name for p in root.iterdir())[:3]
                raise OutputExistsError(
                    f"{root} exists and is not a landuse run (holds {', '.join(names)}); "
                    "choose an empty or new --out, or pass --overwrite"
                )
            cls._clear(root)
        root.mkdir(parents=True, exist_ok=True)
        (root / PARTS).mkdir(exist_ok=True)
        atomic_write_json(mpath, manifest)
        PlotGrid.from_dict(manifest["grid"]).save(root / GRID)
        return cls(root, manifest, resumed=False)

    @staticmethod
    def _clear(root: Path) -> None:
        """Remove what a run writes (never anything else of the folder)."""
        parts = root / PARTS
        if parts.is_dir():
            for p in parts.iterdir():
                if p.suffix == ".parquet" or ".tmp" in p.name:
                    p.unlink()
        for name in (*OUTPUTS, MANIFEST, GRID):
            (root / name).unlink(missing_ok=True)
        for p in root.glob(".*.tmp*"):
            p.unlink()

    def _clean_temporaries(self) -> None:
        """Delete temporary files a killed run left behind."""
        for folder in (self.root, self.parts_dir):
            if folder.is_dir():
                for p in folder.glob(".*.tmp*"):
                    p.unlink()
        self.parts_dir.mkdir(exist_ok=True)

    def _check_grid_file(self) -> None:
        gpath = self.root / GRID
        if not gpath.exists():
            self.grid.save(gpath)
        elif PlotGrid.load(gpath) != self.grid:
            raise RunStoreError(f"{gpath} does not match {self.root / MANIFEST}; pass --overwrite to start the run again")

    # -- properties ----------------------------------------------------------------------------

    @property
    def parts_dir(self) -> Path:
        return self.root / PARTS

    @property
    def grid(self) -> PlotGrid:
        return PlotGrid.from_dict(self.manifest["grid"])

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    def output(self, name: str) -> Path:
        return self.root / name

    def is_finalised(self) -> bool:
        """True when every output exists (summary.json is written last)."""
        return all((self.root / name).exists() for name in OUTPUTS)

    # -- parts ---------------------------------------------------------------------------------

    def part_path(self, chunk: Chunk) -> Path:
        return self.parts_dir / f"{chunk.id}.parquet"

    def has_part(self, chunk: Chunk) -> bool:
        """True when the chunk's part exists and holds one row per plot of the chunk."""
        path = self.part_path(chunk)
        if not path.exists():
            return False
        try:
            rows = pq.read_metadata(path).num_rows
        except (OSError, pa.ArrowInvalid) as exc:
            raise RunStoreError(f"part {path} is unreadable ({exc}); delete it and rerun to recompute it") from None
        if rows != chunk.size:
            raise RunStoreError(
                f"part {path} holds {rows} plots, expected {chunk.size}; delete it and rerun to recompute it"
            )
        return True

    def write_part(self, chunk: Chunk, table: pa.Table) -> Path:
        """Write a chunk's table atomically (temporary name, then rename)."""
        if table.num_rows != chunk.size:
            raise RunStoreError(f"chunk {chunk.id} produced {table.num_rows} rows for {chunk.size} plots")
        path = self.part_path(chunk)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
        return path

    def read_parts(self, chunks: Iterable[Chunk]) -> pa.Table:
        """All parts of ``chunks`` as one table sorted by (row, col)."""
        tables = []
        for ch in chunks:
            path = self.part_path(ch)
            if not path.exists():
                raise RunStoreError(f"part {path} is missing; rerun the same command to compute it")
            tables.append(pq.read_table(path))
        if not tables:
            raise RunStoreError(f"{self.root} has no parts to finalise; rerun the same command")
        table = pa.concat_tables(tables)
        return table.sort_by([("row", "ascending"), ("col", "ascending")])
