"""The one exception hierarchy of the toolkit.

Every user-facing failure is a :class:`LanduseError` whose message is one line that names the
file or value at fault and the fix. The CLI prints it without a traceback and exits 1.

As rasterio's errors do, the subclasses also derive from the matching builtin, so API users can
write ``except ValueError`` (a bad value: :class:`InputError`, :class:`WorkflowError`,
:class:`DatasetError`) or ``except OSError`` (files: :class:`OutputExistsError` is a
``FileExistsError``, :class:`RunStoreError` an ``OSError``).
"""

from __future__ import annotations


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
    """An output exists and --overwrite was not given."""


class OutputWriteError(LanduseError, OSError):
    """An output cannot be written (no space left, read-only folder, permission denied)."""


class RunStoreError(LanduseError, OSError):
    """A run directory is inconsistent with the requested run (manifest differs, corrupt part)."""


class WorkflowError(LanduseError, ValueError):
    """A workflow file is invalid."""
