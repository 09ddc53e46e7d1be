"""landuse: land-use tracking from aerial imagery on a stable 224 m plot grid.

The Python API is the product; the ``landuse`` command line, the workflow files and the
notebooks are three ways of calling it::

    import landuse as lu

    run = lu.classify(["2016.tif"], "runs/2016", period="2016")
    run.plots            # the GeoDataFrame plots.parquet holds
    chg = lu.change("runs/2016", "runs/2022", "change")
    chg.matrix           # hectares, from-class rows x to-class columns

Every job is one function (``grid``, ``tile``, ``classify``, ``change``, ``report``, ``evaluate``,
``train``, ``dataset``, ``review``, ``parity``, ``predict``, ``run``, ``assess_design``,
``assess_estimate``) returning a typed result (``Run``, ``Change``, ``Evaluation``,
``TrainedModel``, ``ParityReport``, ``SampleDesign``, ``SampleEstimate`` ...). Nothing heavy is
imported until a function is called.

Five job names are also names of modules of the package (``landuse.grid``, ``landuse.classify``,
``landuse.change``, ``landuse.report``, ``landuse.label``). Those modules are made callable: ``landuse.change(...)``
runs the job, ``from landuse.change import compare`` still imports from the module. The plain
functions live in :mod:`landuse.api`.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from landuse.errors import LanduseError

__version__ = "0.1.0"

# name -> module of the API holding it (imported on first use: keeps ``import landuse`` light)
_API: dict[str, str] = {
    # jobs
    "grid": "landuse.api",
    "tile": "landuse.api",
    "classify": "landuse.api",
    "change": "landuse.api",
    "change_series": "landuse.api",
    "classify_plan": "landuse.api",
    "report": "landuse.api",
    "evaluate": "landuse.api",
    "train": "landuse.api",
    "dataset": "landuse.api",
    "review": "landuse.api",
    "parity": "landuse.api",
    "predict": "landuse.api",
    "run": "landuse.api",
    "label": "landuse.label",
    "assess_design": "landuse.assess",
    "assess_estimate": "landuse.assess",
    "intensity_analysis": "landuse.assess",
    "search": "landuse.stac",
    # results
    "Run": "landuse.results",
    "RunSummary": "landuse.results",
    "Change": "landuse.results",
    "ChangeSummary": "landuse.results",
    "GridResult": "landuse.results",
    "TrainedModel": "landuse.results",
    "ParityReport": "landuse.results",
    "Prediction": "landuse.results",
    "Predictions": "landuse.results",
    "LabelledDataset": "landuse.results",
    "WorkflowResult": "landuse.api",
    "Evaluation": "landuse.training.evaluate",
    "TileResult": "landuse.tiler",
    "ReportResult": "landuse.report.webmap",
    "ReviewResult": "landuse.training.review",
    "LabelResult": "landuse.label",
    "PlotGrid": "landuse.grid",
    "aoi_of": "landuse.grid",
    "SampleDesign": "landuse.assess",
    "SampleEstimate": "landuse.assess",
    "Assessment": "landuse.assess",
    "IntensityAnalysis": "landuse.assess",
    "StacSource": "landuse.stac",
    "StacSelection": "landuse.stac",
    # options (defaults defined once, in landuse.defaults)
    "ClassifyOptions": "landuse.api",
    "CustomVisionOptions": "landuse.api",
    "ChangeOptions": "landuse.api",
    "ReportOptions": "landuse.api",
    "TrainOptions": "landuse.api",
    "CVTrainOptions": "landuse.api",
}

# jobs whose name is also a module of the package: that module is made callable
_CALLABLE_MODULES = ("grid", "classify", "change", "report", "label")

__all__ = ["LanduseError", "__version__", *_API]


class _CallableModule(types.ModuleType):
    """A module of the package that is also the API job of the same name."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        job = getattr(importlib.import_module(_API[self.__name__.rsplit(".", 1)[1]]), self.__name__.rsplit(".", 1)[1])
        return job(*args, **kwargs)


class _Package(types.ModuleType):
    """``landuse`` itself: makes the job-named submodules callable as they are bound to it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _CALLABLE_MODULES and isinstance(value, types.ModuleType) and type(value) is types.ModuleType:
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


def __getattr__(name: str) -> Any:
    if name in _CALLABLE_MODULES:
        return importlib.import_module(f"landuse.{name}")
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'landuse' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


sys.modules[__name__].__class__ = _Package
for _name in _CALLABLE_MODULES:  # already imported (e.g. by a test) before the package was set up
    _mod = sys.modules.get(f"{__name__}.{_name}")
    if _mod is not None:
        setattr(sys.modules[__name__], _name, _mod)

if TYPE_CHECKING:  # what type checkers see: the functions and types themselves
    from landuse.api import *  # noqa: F403  (the jobs, their options, run and WorkflowResult)
    from landuse.assess import (  # noqa: F401
        Assessment,
        IntensityAnalysis,
        SampleDesign,
        SampleEstimate,
        assess_design,
        assess_estimate,
        intensity_analysis,
    )
    from landuse.grid import PlotGrid, aoi_of  # noqa: F401
    from landuse.label import LabelResult, label  # noqa: F401
    from landuse.report.webmap import ReportResult  # noqa: F401
    from landuse.results import *  # noqa: F403  (Run, Change, ... : landuse.results.__all__)
    from landuse.stac import StacSelection, StacSource, search  # noqa: F401
    from landuse.tiler import TileResult  # noqa: F401
    from landuse.training.evaluate import Evaluation  # noqa: F401
    from landuse.training.review import ReviewResult  # noqa: F401
