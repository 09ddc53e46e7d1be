"""Options of the jobs that take many: frozen dataclasses whose defaults come from
:mod:`landuse.defaults` (defined once; the CLI and the workflow files read the same values)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from landuse import defaults
from landuse.training.customvision import CVTrainOptions
from landuse.training.local import TrainConfig as TrainOptions

__all__ = [
    "ClassifyOptions",
    "CustomVisionOptions",
    "ChangeOptions",
    "ReportOptions",
    "TrainOptions",
    "CVTrainOptions",
]


@dataclass(frozen=True)
class ClassifyOptions:
    """How a classification run reads, batches and schedules (not what it classifies)."""

    min_valid: float = defaults.MIN_VALID
    threshold: float = defaults.THRESHOLD
    chunk_plots: int = defaults.CHUNK_PLOTS
    batch_size: int = defaults.BATCH_SIZE
    scheduler: str = defaults.SCHEDULER
    workers: int | None = None


@dataclass(frozen=True)
class CustomVisionOptions:
    """The Custom Vision prediction endpoint (credentials always from LANDUSE_CV_* / a config file)."""

    tier: Literal["F0", "S0"] | None = None
    tps: float | None = None
    store: bool = False
    config: str | None = None

    def as_backend_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`landuse.classify.customvision.load_customvision`."""
        return {"tier": self.tier, "tps": self.tps, "store": self.store}


@dataclass(frozen=True)
class ChangeOptions:
    """How two periods are compared."""

    min_confidence: float = defaults.MIN_CONFIDENCE
    smooth: bool = False
    hotspot_block: int = defaults.HOTSPOT_BLOCK
    developed_tag: str = defaults.DEVELOPED_TAG
    allow_reverse: bool = False  # allow run B earlier than run A (a deliberate backwards comparison)


@dataclass(frozen=True)
class ReportOptions:
    """The web map report."""

    basemap: str = defaults.REPORT_BASEMAP
    thumbnails: bool = True
    imagery_a: str | None = None
    imagery_b: str | None = None
    thumbnail_px: int = defaults.THUMBNAIL_PX
    max_thumbnails: int = defaults.MAX_THUMBNAILS
    imagery: bool = True  # each period's imagery as a layer under its classes
