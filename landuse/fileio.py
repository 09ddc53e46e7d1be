"""The one owner of how the toolkit writes and names files: atomic file writes (a temporary name
beside the target, renamed over it), folder swaps (a finished temporary folder replaces the old
one only once complete), JSON documents read with one-line errors, and file-safe names.

Nothing unfinished is ever taken for finished: a reader sees the old file or the new one, never a
half-written one. This module imports nothing of the package but :mod:`landuse.errors`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from landuse.errors import InputError, LanduseError

__all__ = [
    "atomic_path",
    "write_bytes",
    "write_text",
    "write_json",
    "swap_in_dir",
    "staged_dir",
    "read_text",
    "read_json",
    "parse_json",
    "safe_name",
]


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so format drivers recognise it);
    rename it over ``path`` when the block succeeds, remove it when it fails."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """``data`` to ``path``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """``text`` (UTF-8) to ``path``, atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any, indent: int | None = 2, default: Callable[[Any], Any] | None = str) -> Path:
    """``obj`` as JSON (one trailing newline) to ``path``, atomically."""
    return write_text(path, json.dumps(obj, indent=indent, default=default) + "\n")


def swap_in_dir(tmp: Path, out: Path) -> None:
    """Move a finished temporary folder to ``out``, replacing an existing ``out`` only after the new
    one is complete (the old one is renamed aside, then removed)."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        tmp.rename(out)


@contextmanager
def staged_dir(out: str | Path) -> Iterator[Path]:
    """Yield a new temporary folder beside ``out`` to write into; when the block succeeds it
    replaces ``out`` (:func:`swap_in_dir`), when it fails it is removed and ``out`` is untouched."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        swap_in_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_text(path: str | Path, what: str, error: type[LanduseError] = InputError) -> str:
    """The text of ``path`` (a ``what``: "grid file", "workflow" ...); an unreadable file raises
    ``error`` naming it."""
    path = Path(path)
    try:
        return path.read_text()
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}; check the path") from None


def parse_json(text: str, what: str, fix: str, error: type[LanduseError] = InputError, kind: type = dict) -> Any:
    """``text`` as JSON of type ``kind`` (an object unless said otherwise); invalid JSON or another
    type raises ``error`` naming ``what`` and ``fix`` (what to do about it)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not valid JSON ({exc}); {fix}") from None
    if not isinstance(data, kind):
        raise error(f"{what} is not a JSON {'object' if kind is dict else kind.__name__}; {fix}")
    return data


def read_json(
    path: str | Path,
    fix: str,
    error: type[LanduseError] = InputError,
    missing: str = "not found",
) -> Any:
    """The JSON document at ``path``; a missing or invalid file raises ``error`` naming the file
    and ``fix`` (what to do about it)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError:
        raise error(f"{path} {missing}; {fix}") from None
    return parse_json(text, str(path), fix, error, kind=object)


def safe_name(text: str, replacement: str = "_", keep: str = "-_.", empty: str = "") -> str:
    """``text`` as a file or folder name: characters other than letters, digits and ``keep``
    become ``replacement``; ``empty`` stands in for a name left empty."""
    return "".join(ch if ch.isalnum() or ch in keep else replacement for ch in str(text)) or empty
