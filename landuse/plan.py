"""Plan a job before doing it: how many plots, at what pixel size, for what cost.

Every job that reads imagery (classify, tile; grid with ``--geojson`` writes one feature per
plot) calls :func:`check_job` once its grid is known and before it writes anything:

* **pixel size**: imagery whose pixels are coarser than ``MAX_PIXEL_FRACTION`` of the plot
  (28 m for 224 m plots) is refused: a plot would hold fewer than 8 x 8 real pixels, blown up to
  the model's 224 x 224 input; the message names the file, its pixel size and the fix;
* **size**: a job over ``CONFIRM[job]`` plots, or longer than ``CONFIRM_HOURS`` at the measured
  rate, needs ``yes=True`` (``--yes``); the message says what it would cost and suggests
  ``--dry-run``.

Both checks read only headers and footprints (no pixel), so a refused job returns at once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from landuse.errors import ConfirmationRequired, InputError

# Coarsest imagery pixel, as a fraction of the plot side (1/8: 28 m for 224 m plots).
MAX_PIXEL_FRACTION = 1.0 / 8.0
# Plots above which a job asks for --yes, per job (classify: ~40 min at the measured rate on
# 2 cores; tile: ~10 GB of 224 px PNG chips; grid --geojson: a ~1 GB GeoJSON file).
CONFIRM_PLOTS: dict[str, int] = {"classify": 500_000, "tile": 100_000, "grid": 1_000_000}
# Estimated hours above which a job asks for --yes.
CONFIRM_HOURS = 1.0
# Measured end-to-end rate of `landuse classify` with the bundled int8 model, per core
# (README "Performance": 211 plots/s with the default LocalCluster, 2 workers x 1 thread).
MEASURED_PLOTS_PER_S_PER_CORE = 105.0
# Measured chip export rate of `landuse tile` (224 px PNG), per process.
MEASURED_TILE_PLOTS_PER_S = 150.0
_M_PER_DEG = 111_320.0


@dataclass(frozen=True)
class JobPlan:
    """What a job will cost, known before it starts."""

    job: str
    grid: str  # PlotGrid.describe()
    plots: int
    plot_size_m: float
    pixel_m: float | None = None  # coarsest imagery pixel in metres
    pixel_file: str | None = None  # the file holding it
    plots_per_s: float | None = None  # the rate the estimate uses

    @property
    def seconds(self) -> float | None:
        """Estimated run time (None without a rate)."""
        return self.plots / self.plots_per_s if self.plots_per_s else None

    def cost(self) -> str:
        """``28,700,000 plots (about 38 h at ~210 plots/s)``."""
        text = f"{self.plots:,} plots"
        if self.seconds is not None and self.plots_per_s:
            text += f" (about {format_duration(self.seconds)} at ~{self.plots_per_s:,.0f} plots/s)"
        return text

    def describe(self) -> str:
        """One line: the grid, the pixel size and the cost."""
        px = f"; coarsest imagery pixel {self.pixel_m:.3g} m ({self.pixel_file})" if self.pixel_m is not None else ""
        return f"{self.job}: {self.grid}{px}; {self.cost()}"


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.4 h``, ``2.1 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def pixel_size_m(file: Any) -> float:
    """Ground size in metres of a source file's pixel (the coarser axis); degrees are converted at
    the file's centre latitude, feet by the CRS's unit."""
    from landuse.grid import linear_unit_factor

    rx, ry = file.res
    crs = file.crs
    if crs.is_geographic:
        b = file.bounds
        lat = math.radians(max(-89.0, min(89.0, (b[1] + b[3]) / 2)))
        return max(rx * _M_PER_DEG * math.cos(lat), ry * _M_PER_DEG)
    try:
        factor = linear_unit_factor(crs)
    except Exception:  # noqa: BLE001 - an odd CRS: assume metres rather than refuse the file
        factor = 1.0
    return max(rx, ry) * factor


def coarsest_pixel(files: Sequence[Any]) -> tuple[str, float] | None:
    """(file name, pixel metres) of the coarsest file, or None for no files."""
    if not files:
        return None
    sizes = [(f.name, pixel_size_m(f)) for f in files]
    return max(sizes, key=lambda t: t[1])


def check_plot_size(plot_size_m: float) -> float:
    """A usable plot side in metres (finite, at least 1 m)."""
    if not isinstance(plot_size_m, (int, float)) or not math.isfinite(plot_size_m) or plot_size_m < 1.0:
        raise InputError(f"`plot_size_m` {plot_size_m} is not a plot side in metres; give at least 1 (the default is 224)")
    return float(plot_size_m)


def rate_for(job: str, workers: int | None = None, plots_per_s: float | None = None) -> float | None:
    """The rate an estimate uses: ``plots_per_s`` if known (a Custom Vision quota), else the
    measured rate of the job on ``workers`` cores."""
    if plots_per_s:
        return float(plots_per_s)
    if job == "classify":
        return MEASURED_PLOTS_PER_S_PER_CORE * (workers or len(os.sched_getaffinity(0)))
    if job == "tile":
        return MEASURED_TILE_PLOTS_PER_S
    return None


def plan_job(
    job: str,
    grid: Any,
    files: Sequence[Any] = (),
    *,
    plots: int | None = None,
    workers: int | None = None,
    plots_per_s: float | None = None,
) -> JobPlan:
    """The plan of ``job`` on ``grid`` (``plots``: the plots it works on, default all of the
    grid) from the imagery ``files`` (their headers only)."""
    coarse = coarsest_pixel(files)
    return JobPlan(
        job=job,
        grid=grid.describe(),
        plots=int(grid.size if plots is None else plots),
        plot_size_m=float(grid.plot_size_m),
        pixel_m=coarse[1] if coarse else None,
        pixel_file=coarse[0] if coarse else None,
        plots_per_s=rate_for(job, workers, plots_per_s),
    )


def check_pixels(plan: JobPlan, max_fraction: float = MAX_PIXEL_FRACTION) -> None:
    """Refuse imagery whose pixels are coarser than ``max_fraction`` of the plot side."""
    if plan.pixel_m is None:
        return
    limit = plan.plot_size_m * max_fraction
    if plan.pixel_m > limit * (1 + 1e-6):
        per_side = plan.plot_size_m / plan.pixel_m
        raise InputError(
            f"{plan.pixel_file} has {plan.pixel_m:.3g} m pixels, coarser than {limit:.3g} m "
            f"(1/{round(1 / max_fraction)} of the {plan.plot_size_m:g} m plot): a plot would hold only "
            f"{per_side:.1f} x {per_side:.1f} of its pixels; use imagery with pixels of {limit:.3g} m or finer "
            f"(aerial imagery is ~1 m), or plots of at least {plan.pixel_m / max_fraction:,.0f} m (`plot_size_m`)"
        )


def check_size(
    plan: JobPlan,
    yes: bool = False,
    max_plots: int | None = None,
    max_hours: float = CONFIRM_HOURS,
) -> None:
    """Ask for ``yes`` (``--yes``) when the job is larger than ``max_plots`` or longer than
    ``max_hours``; raise :class:`ConfirmationRequired` saying the cost."""
    if yes:
        return
    limit = CONFIRM_PLOTS.get(plan.job, 1_000_000) if max_plots is None else max_plots
    too_long = plan.seconds is not None and plan.seconds > max_hours * 3600
    if plan.plots > limit or too_long:
        why = f"over {limit:,} plots" if plan.plots > limit else f"over {max_hours:g} h"
        first = "check it first (`landuse classify --dry-run`, or landuse.classify_plan), " if plan.job == "classify" else ""
        raise ConfirmationRequired(
            f"this {plan.job} is large ({why}): {plan.cost()} on {plan.grid}; {first}"
            "restrict it with `aoi`, or pass `yes=True` to run it"
        )


def check_job(
    job: str,
    grid: Any,
    files: Sequence[Any] = (),
    *,
    yes: bool = False,
    plots: int | None = None,
    workers: int | None = None,
    plots_per_s: float | None = None,
) -> JobPlan:
    """Plan ``job`` and apply both guards (pixel size always, size unless ``yes``)."""
    plan = plan_job(job, grid, files, plots=plots, workers=workers, plots_per_s=plots_per_s)
    check_pixels(plan)
    check_size(plan, yes)
    return plan
