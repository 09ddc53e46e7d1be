"""Plot statuses, defined once: the ``min_valid`` gate (shared by the tiler and the pipeline)
and what classification made of a plot (``plots.parquet`` ``status`` / ``reason``, the
``unclassified`` block of ``summary.json``, the tiles' ``index.geojson``).

The gate, for a plot the imagery touches, by its valid-pixel fraction ``v``:

* ``v >= min_valid`` (and ``v > 0``): :data:`OK`, the plot is read at full size (the tiler writes
  its chip; the pipeline classifies it, so in a run it becomes :data:`CLASSIFIED`,
  :data:`UNCERTAIN` or :data:`UNKNOWN`);
* ``0 < v < min_valid``: :data:`PARTIAL`;
* ``v == 0``: :data:`NODATA` (so is a plot no imagery covers);

and :data:`OUTSIDE_AOI` for a plot whose centre lies outside the AOI (not read).

This module imports nothing but numpy.
"""

from __future__ import annotations

import numpy as np

CLASSIFIED = "classified"
"""Valid fraction >= ``min_valid``; label, class index and probabilities set."""
PARTIAL = "partial"
"""Some valid pixels, but fewer than ``min_valid``."""
NODATA = "nodata"
"""No imagery covers the plot, or no valid pixel in it."""
OUTSIDE_AOI = "outside_aoi"
"""The plot centre lies outside the AOI (not read)."""
UNCERTAIN = "uncertain"
"""Multilabel models only: no tag reaches the threshold."""
UNKNOWN = "unknown"
"""Read and scored, but like none of the model's classes (:mod:`landuse.classify.unknown`)."""
OK = "ok"
"""Tiles only: passed the gate, chip written (not classified: tiling classifies nothing)."""

STATUSES = (CLASSIFIED, PARTIAL, NODATA, OUTSIDE_AOI, UNCERTAIN, UNKNOWN)
"""Every status of a run's plot, in the order ``summary.json`` lists them."""
GATE = (OK, PARTIAL, NODATA)
"""The statuses of the ``min_valid`` gate (a tiles index holds these)."""

REASON_NO_COVERAGE = "no imagery covers the plot"
REASON_NO_VALID = "no valid pixel in the imagery"
REASON_OUTSIDE_AOI = "plot centre outside the AOI"


def reason_partial(min_valid: float) -> str:
    """The reason of a :data:`PARTIAL` plot."""
    return f"valid fraction below min-valid {min_valid:g}"


def check_min_valid(min_valid: float) -> float:
    """``min_valid`` as a float, or :class:`~landuse.errors.InputError` naming it."""
    from landuse.errors import InputError

    if not 0.0 <= float(min_valid) <= 1.0:
        raise InputError(f"min_valid must lie in [0, 1], got {min_valid}", param="min_valid")
    return float(min_valid)


def gate(valid: np.ndarray, min_valid: float) -> tuple[np.ndarray, np.ndarray]:
    """Status (:data:`GATE`) and reason per plot of valid fractions ``valid``; the reason of an
    :data:`OK` plot is empty."""
    check_min_valid(min_valid)
    v = np.asarray(valid, dtype=float)
    ok = (v >= min_valid) & (v > 0)
    status = np.where(ok, OK, np.where(v > 0, PARTIAL, NODATA)).astype(object)
    reason = np.where(ok, "", np.where(v > 0, reason_partial(min_valid), REASON_NO_VALID)).astype(object)
    return status, reason


# -- files written before the vocabulary was one --------------------------------------------------

TILE_INDEX_VERSION = 2
"""Version of a tiles ``index.geojson`` (``landuse.index_version``). Version 1 (no key) said
``not classified`` for :data:`PARTIAL` and :data:`NODATA` plots."""
LEGACY_NOT_CLASSIFIED = "not classified"


def tile_status(status: str, valid_fraction: float | None) -> str:
    """A tiles index status in today's words (a version-1 ``not classified`` becomes
    :data:`PARTIAL` or :data:`NODATA` by the plot's valid fraction)."""
    if status == LEGACY_NOT_CLASSIFIED:
        return PARTIAL if valid_fraction is not None and valid_fraction > 0 else NODATA
    return status
