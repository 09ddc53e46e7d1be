"""The Python API: one typed function per job (the plain functions behind ``landuse.<job>``).

Data flows one way: cli / workflow -> this package -> pipeline / change / report / training ->
grid, imagery, classify, store. See ``docs/architecture.md``.
"""

from __future__ import annotations

from landuse.api.jobs import (
    change,
    change_series,
    classify,
    classify_plan,
    dataset,
    evaluate,
    grid,
    parity,
    predict,
    report,
    review,
    safe_name,
    series_folder,
    tile,
    train,
)
from landuse.api.options import (
    ChangeOptions,
    ClassifyOptions,
    CustomVisionOptions,
    CVTrainOptions,
    ReportOptions,
    TrainOptions,
)
from landuse.api.workflows import WorkflowResult, run

__all__ = [
    "grid",
    "tile",
    "classify",
    "classify_plan",
    "change",
    "change_series",
    "report",
    "evaluate",
    "train",
    "dataset",
    "review",
    "parity",
    "predict",
    "run",
    "safe_name",
    "series_folder",
    "WorkflowResult",
    "ClassifyOptions",
    "CustomVisionOptions",
    "ChangeOptions",
    "ReportOptions",
    "TrainOptions",
    "CVTrainOptions",
]
