"""The one exception hierarchy of the toolkit.

Every user-facing failure is a :class:`LanduseError` whose message is one line that names the
file or value at fault and the fix. The CLI prints it without a traceback and exits 1.

Messages name the library's parameters, never the CLI's flags: a parameter in backticks
("pass `overwrite=True` or choose another `out`"; "`export=False`"), or the error's ``param``
spelt bare at its first mention ("min_valid 0 is outside (0, 1]"). The CLI prints each as its
flag ("pass --overwrite or choose another --out"; "--no-export"; "--min-valid 0 is outside
(0, 1]"): :func:`landuse.cli.options.cli_message`.

As rasterio's errors do, the subclasses also derive from the matching builtin, so API users can
write ``except ValueError`` (a bad value: :class:`InputError`, :class:`WorkflowError`,
:class:`DatasetError`) or ``except OSError`` (files: :class:`OutputExistsError` is a
``FileExistsError``, :class:`RunStoreError` an ``OSError``).
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path


class LanduseError(Exception):
    """Root of every error the toolkit reports to a user."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        # Keep messages to one line: the CLI prints exactly this.
        super().__init__(" ".join(str(message).split()))
        self.param = param
        """The API parameter at fault, named as such in the message (``min_valid``); the CLI
        replaces it there with its flag (``--min-valid``)."""


class InputError(LanduseError, ValueError):
    """A parameter or value given by the user is invalid."""


class RasterError(LanduseError):
    """A raster cannot be read or used (no CRS, rotated, unsupported bands, no overlap ...)."""


class ConfirmationRequired(InputError):
    """A job is larger than the stated size: it runs only when confirmed (``--yes`` / ``yes=True``)."""


class GridError(LanduseError):
    """A plot grid cannot be built or loaded."""


class GridMismatchError(GridError):
    """Two things that must share one plot grid do not."""


class AOIError(LanduseError):
    """An area-of-interest file cannot be read or is empty."""


class ModelError(LanduseError):
    """A model cannot be loaded or does not fit its labels / inputs."""


class DatasetError(LanduseError, ValueError):
    """A labelled dataset (folder per tag) is missing, empty or unbalanced beyond use."""


class EndpointError(LanduseError):
    """A Custom Vision endpoint refused, failed or is misconfigured."""


class OutputExistsError(LanduseError, FileExistsError):
    """An output exists and ``overwrite=True`` was not given."""


class OutputWriteError(LanduseError, OSError):
    """An output cannot be written (no space left, read-only folder, permission denied)."""


class RunStoreError(LanduseError, OSError):
    """A run directory is inconsistent with the requested run (manifest differs, corrupt part)."""


class WorkflowError(LanduseError, ValueError):
    """A workflow file is invalid."""


# -- failed writes (no space, read-only, permission) -------------------------------------------


_WRITE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


# Free space under which a writer's error without an errno (OGR "Cannot write feature", GDAL
# "TIFFAppendToStrip ...") is taken for a full disk.
LOW_SPACE_BYTES = 1 << 20


def write_problem(exc: BaseException, path: str | Path | None = None) -> str | None:
    """What a failed write ran into (no space, read-only, permission), or None when ``exc`` is no
    such error. Looks through GDAL / OGR / Arrow errors, which carry the OS message as text or
    none at all (then a device with less than ``LOW_SPACE_BYTES`` free under ``path`` is full)."""
    if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
        return _WRITE_ERRNOS[exc.errno]
    text = str(exc).lower()
    for code, words in ((errno.ENOSPC, "no space left"), (errno.EDQUOT, "quota exceeded"),
                        (errno.EROFS, "read-only file system"), (errno.EACCES, "permission denied")):
        if words in text:
            return _WRITE_ERRNOS[code]
    if path is not None and _free_bytes(Path(path)) < LOW_SPACE_BYTES:
        return _WRITE_ERRNOS[errno.ENOSPC]
    return None


def _free_bytes(path: Path) -> float:
    """Free bytes on the device holding ``path`` (its nearest existing folder); inf if unknown."""
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return float(shutil.disk_usage(folder).free)
            except OSError:
                return float("inf")
    return float("inf")


def write_error(path: str | Path, exc: BaseException, then: str = "") -> LanduseError:
    """A one-line :class:`OutputWriteError` for a failed write of ``path`` (``then``: what to do
    once fixed, e.g. rerun to resume)."""
    problem = write_problem(exc, path) or f"{type(exc).__name__}: {exc}"
    fix = {
        "no space left on the device": "free some space or choose another `out`",
        "disk quota exceeded": "free some space or choose another `out`",
    }.get(problem, "choose a writable `out`")
    return OutputWriteError(f"cannot write {path}: {problem}; {fix}{'; ' + then if then else ''}")
