"""The run store: one classification run's directory, resumable and idempotent.

Layout of ``RUN_DIR``::

    manifest.json      written first: toolkit version, grid, inputs, model, parameters, period
    grid.json          the plot grid (``PlotGrid.load`` reads it back)
    parts/<chunk>.parquet   one part per chunk of plots, each written atomically
    plots.parquet, plots.geojson, plots.gpkg, classes.tif, probabilities.tif, summary.json   (finalised outputs)
    classes.qml / .sld / .tif.aux.xml, plots.qml / .sld   (styles: palette and class names)
    complete.json      written LAST: part and plot counts, size and sha256 of every output
    .lock              advisory lock held while a process writes the run (holder's pid inside)

A run without ``complete.json`` (killed, out of space, failed mid-finalise) is unfinished: every
reader (:func:`require_finished`, :func:`read_finished_run`) refuses it, and rerunning the same
``landuse classify`` completes it. A rerun with an equal manifest skips finished parts and computes the missing ones; a rerun with
a different manifest is refused (naming the difference) unless ``overwrite`` is given.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from landuse import __version__
from landuse.errors import (
    LanduseError,
    OutputExistsError,
    RunStoreError,
    write_error,
    write_problem,
)
from landuse.fileio import atomic_path, swap_in_dir, write_json  # noqa: F401 (swap_in_dir: re-exported)
from landuse.fileio import write_bytes as atomic_write_bytes  # noqa: F401 (re-exported)
from landuse.grid import Chunk, PlotGrid

MANIFEST = "manifest.json"
GRID = "grid.json"
PARTS = "parts"
OUTPUTS = ("plots.parquet", "plots.geojson", "plots.gpkg", "classes.tif", "probabilities.tif", "summary.json")
SUMMARY = "summary.json"
COMPLETE = "complete.json"
LOCK = ".lock"
COMPLETE_FORMAT = 1
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


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def mark_complete(root: str | Path, *, parts: int, plots: int, files: Iterable[str] = OUTPUTS) -> dict[str, Any]:
    """Write ``complete.json`` (the finished-run marker) LAST: the part and plot counts and the
    size and sha256 of every output in ``files``. Returns what was written."""
    root = Path(root)
    listed: dict[str, Any] = {}
    for name in files:
        p = root / name
        listed[name] = {"size": p.stat().st_size, "sha256": _file_sha256(p)}
    marker = {
        "format": COMPLETE_FORMAT,
        "complete": True,
        "parts": int(parts),
        "plots": int(plots),
        "files": listed,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_json(root / COMPLETE, marker)
    return marker


def unmark_complete(root: str | Path) -> None:
    """Remove the finished-run marker (before anything of the run is rewritten)."""
    (Path(root) / COMPLETE).unlink(missing_ok=True)


def finished_problem(root: str | Path, checksums: bool = False) -> str | None:
    """Why ``root`` is not a finished run (None when it is): no marker, a listed output missing,
    or of another size (or, with ``checksums``, another sha256) than when the run finished."""
    root = Path(root)
    mpath = root / COMPLETE
    if not mpath.is_file():
        return f"no {COMPLETE}"
    try:
        marker = json.loads(mpath.read_text())
        files = dict(marker["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"{COMPLETE} is unreadable"
    if not marker.get("complete"):
        return f"{COMPLETE} does not say complete"
    for name, info in files.items():
        p = root / name
        if not p.is_file():
            return f"{name} missing"
        if p.stat().st_size != info.get("size"):
            return f"{name} changed after the run finished (size {p.stat().st_size} != {info.get('size')})"
        if checksums and _file_sha256(p) != info.get("sha256"):
            return f"{name} changed after the run finished (sha256 differs)"
    return None


def require_finished(path: str | Path, checksums: bool = False) -> Path:
    """Raise :class:`RunStoreError` unless ``path`` is a finished run directory (its
    ``complete.json`` present and its outputs as listed there). The one check every reader of a
    run (change, report, review, label, ``Run.open``) makes first."""
    path = Path(path)
    if not path.is_dir():
        raise RunStoreError(f"{path} is not a finished run (no such folder); give the `out` of a finished `landuse classify`")
    if not (path / MANIFEST).is_file():
        raise RunStoreError(
            f"{path} is not a finished run ({MANIFEST} missing: not a run directory); "
            "give the `out` of a finished `landuse classify`"
        )
    problem = finished_problem(path, checksums)
    if problem is not None:
        raise RunStoreError(f"{path} is unfinished ({problem}): rerun the same `landuse classify` to complete it")
    return path


def read_finished_run(path: str | Path, needs: Iterable[str] = ()) -> FinishedRun:
    """Open a finished run directory (``grid.json``, ``manifest.json`` and the files in ``needs``),
    with one-line errors that say how to fix an incomplete or damaged run."""
    path = require_finished(path)
    for name in ("grid.json", "manifest.json", *needs):
        if not (path / name).exists():
            raise RunStoreError(
                f"{path} is not a finished run ({name} missing); run `landuse classify ... --out {path}` to completion first"
            )
    grid = PlotGrid.load(path / "grid.json")
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except json.JSONDecodeError as exc:
        raise RunStoreError(f"{path / 'manifest.json'} is not valid JSON ({exc}); rerun the classification with `overwrite=True`") from None
    labels = [str(t) for t in manifest.get("labels") or []]
    if not labels:
        raise RunStoreError(f"{path / 'manifest.json'} lists no labels; rerun the classification with `overwrite=True`")
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
            raise OutputExistsError(f"{root} exists and is not a directory; choose another `out` or remove it")
        mpath = root / MANIFEST
        if mpath.exists():
            try:
                old = json.loads(mpath.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                if not overwrite:
                    raise RunStoreError(f"{mpath} is unreadable ({exc}); pass `overwrite=True` to start the run again") from None
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
                        f"{root} holds a different run ({shown}); use another `out`, or pass `overwrite=True` to replace it"
                    )
            cls._clear(root)
        elif root.exists() and any(p.name != LOCK for p in root.iterdir()):
            if not overwrite:
                names = sorted(p.name for p in root.iterdir() if p.name != LOCK)[:3]
                raise OutputExistsError(
                    f"{root} exists and is not a landuse run (holds {', '.join(names)}); "
                    "choose an empty or new `out`, or pass `overwrite=True`"
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
        for name in (COMPLETE, *OUTPUTS, MANIFEST, GRID):
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
            raise RunStoreError(f"{gpath} does not match {self.root / MANIFEST}; pass `overwrite=True` to start the run again")

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
        """True when the run is finished: ``complete.json`` (written last) present and every
        output as it lists."""
        return finished_problem(self.root) is None

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
        with writing(path, "then rerun the same command: finished parts are kept"), atomic_path(path) as tmp:
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


# -- the run lock ------------------------------------------------------------------------------


class RunLock:
    """An exclusive advisory lock (``flock``) on a run directory's ``.lock`` file, held while a
    process writes the run. The file holds the holder's pid; the kernel drops the lock when the
    holder dies, so a stale lock file of a dead process is simply taken over.

    ``wait=False``: a second writer fails at once naming the holder's pid; ``wait=True``: it
    waits for the holder to finish (polling, so Ctrl-C works)."""

    def __init__(self, root: str | Path, wait: bool = False, poll_s: float = 0.2) -> None:
        self.root = Path(root)
        self.wait = wait
        self.poll_s = poll_s
        self.fd: int | None = None
        self.took_over: int | None = None  # pid of a dead holder whose lock file was taken over

    @property
    def path(self) -> Path:
        return self.root / LOCK

    def acquire(self) -> RunLock:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if not self.wait:
                    holder = lock_holder(self.root)
                    who = f"process {holder}" if holder else "another process"
                    raise RunStoreError(
                        f"{self.root} is in use by {who} (another landuse run writing it); wait for it to "
                        "finish, pass `wait=True` to wait, or choose another `out`"
                    ) from None
                time.sleep(self.poll_s)
                continue
            # the file may have been removed (a failed run cleaning up) between open and flock
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            old = os.pread(fd, 32, 0).decode(errors="replace").strip()
            if old.isdigit() and int(old) != os.getpid():
                self.took_over = int(old)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self.fd = fd
            return self

    def release(self, remove: bool = False) -> None:
        """Drop the lock (``remove``: delete the lock file first, while still holding it)."""
        if self.fd is None:
            return
        if remove:
            self.path.unlink(missing_ok=True)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_holder(root: str | Path) -> int | None:
    """The pid written in a run directory's lock file (None when absent or unreadable)."""
    try:
        text = (Path(root) / LOCK).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


# -- opening a run for writing: lock, prepare, undo on an early failure ---------------------------


@contextmanager
def writing(path: str | Path, then: str = "") -> Iterator[None]:
    """Turn a write that fails for lack of space / permission into one :func:`write_error` line
    (other errors pass through unchanged)."""
    try:
        yield
    except LanduseError:
        raise
    except Exception as exc:
        if write_problem(exc, path) is None:
            raise
        raise write_error(path, exc, then) from None


def _has_parts(root: Path) -> bool:
    parts = root / PARTS
    return parts.is_dir() and any(parts.glob("*.parquet"))


@contextmanager
def open_run(root: str | Path, manifest: dict[str, Any], overwrite: bool = False, wait: bool = False) -> Iterator[RunStore]:
    """Open ``root`` for writing ``manifest``'s run: create it, take its :class:`RunLock` (a
    second writer fails naming the holder, or waits with ``wait``), :meth:`RunStore.prepare` it.
    When the body fails before the first part is written, what this call created is removed
    (the whole folder when it did not exist before)."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise OutputExistsError(f"{root} exists and is not a directory; choose another `out` or remove it")
    created = not root.exists()
    with writing(root):
        root.mkdir(parents=True, exist_ok=True)
    lock = RunLock(root, wait=wait)
    try:
        with writing(root):
            lock.acquire()
    except BaseException:
        if created:
            shutil.rmtree(root, ignore_errors=True)
        raise
    store: RunStore | None = None
    try:
        with writing(root, "rerun the same command to continue"):
            store = RunStore.prepare(root, manifest, overwrite=overwrite)
        yield store
    except BaseException:
        if not _has_parts(root):
            if created:
                shutil.rmtree(root, ignore_errors=True)
            elif store is not None and not store.resumed:
                RunStore._clear(root)
                try:
                    (root / PARTS).rmdir()
                except OSError:
                    pass
        raise
    finally:
        lock.release(remove=True)
