"""The Python API: one typed function per job (the plain functions behind ``landuse.<job>``).

Data flows one way: cli / workflow -> this package -> pipeline / change / report / training ->
grid, imagery, classify, store. See ``docs/architecture.md``.

The names are those of the modules' ``__all__`` (each module lists what it defines, once).
"""

from __future__ import annotations

from landuse.api import jobs, options, workflows
from landuse.api.jobs import *  # noqa: F403
from landuse.api.options import *  # noqa: F403
from landuse.api.workflows import WorkflowResult as WorkflowResult  # noqa: PLC0414
from landuse.api.workflows import run as run

__all__ = [*jobs.__all__, *options.__all__, *workflows.PUBLIC]
