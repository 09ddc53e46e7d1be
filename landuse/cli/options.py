"""Options shared by several commands, declared once (as rasterio's ``rio/options.py``), and the
translation of the library's parameter names into this CLI's flags."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from landuse import defaults
from landuse.errors import LanduseError

F = TypeVar("F", bound=Callable[..., Any])
Decorator = Callable[[F], F]

# library parameter -> flag, where the flag is not simply --<param with dashes>
FLAGS: dict[str, str] = {
    "plot_size_m": "--plot-size",
    "json_out": "--json",
    "fmt": "--format",
    "config": "--config",
    "classification_type": "--classification",
    "filter": "--stac-filter",  # landuse.stac.StacSource
    "query": "--stac-query",
}


def flag_of(param: str) -> str:
    """The CLI flag of a library parameter (``min_valid`` -> ``--min-valid``)."""
    return FLAGS.get(param, "--" + param.replace("_", "-"))


# a parameter named in a library message: `name`, `name=True`, `name=False`, `name=value`
PARAM = re.compile(r"`([a-z_][a-z0-9_]*)(?:=([^`\s]+))?`")


def _flag_text(m: re.Match[str]) -> str:
    name, value = m.group(1), m.group(2)
    if value == "False":
        return "--no-" + flag_of(name).removeprefix("--")
    return flag_of(name) if value in (None, "True") else f"{flag_of(name)} {value}"


def cli_message(exc: LanduseError) -> str:
    """The error's message with the library parameters it names spelt as this CLI's flags:
    ```out``` -> ``--out``, ```overwrite=True``` -> ``--overwrite``, ```export=False``` ->
    ``--no-export``, and the error's ``param`` at its first bare mention (``min_valid 0 is
    outside (0, 1]`` -> ``--min-valid 0 is outside (0, 1]``)."""
    msg = PARAM.sub(_flag_text, str(exc))
    if exc.param:
        msg = re.sub(rf"(?<![\w-]){re.escape(exc.param)}(?![\w-])", flag_of(exc.param), msg, count=1)
    return msg


def is_quiet(ctx: click.Context) -> bool:
    """``landuse -q``: only errors."""
    return bool((ctx.find_root().obj or {}).get("quiet"))


def echo_unless_quiet(ctx: click.Context, text: str) -> None:
    if not is_quiet(ctx):
        click.echo(text)


imagery_arg = click.argument("imagery", nargs=-1, required=True)

out_dir = click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
                       help="Output folder.")

def overwrite_with(help_text: str = "Replace existing outputs.") -> Decorator[Any]:
    """``--overwrite`` (the API's ``overwrite=True``), with a command's own help text."""
    return click.option("--overwrite", is_flag=True, help=help_text)


overwrite = overwrite_with()

model = click.option("--model", default=defaults.MODEL, show_default=True,
                     help="'default', a Custom Vision export (zip or folder), a .onnx file or py:module:factory.")

bands = click.option("--bands", default=None,
                     help="Source bands for R,G,B (1-based), e.g. 1,2,3 (default: tagged colour bands, else 1,2,3).")

aoi = click.option("--aoi", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                   help="AOI polygons (GeoJSON / GeoPackage / Shapefile, any CRS): only plots whose centre lies inside.")

grid = click.option("--grid", "grid", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                    help="Plot grid (grid.json) to use; keeps periods comparable.")

crs = click.option("--crs", default=None,
                   help="Projected grid CRS when the grid is built, e.g. EPSG:32611 (default: the imagery's, else UTM of the centre).")

threads = click.option("--threads", type=click.IntRange(min=1), default=None, help="onnxruntime threads (default 1).")

tier = click.option("--tier", type=click.Choice(["F0", "S0"]), default=None,
                    help="Custom Vision pricing tier (sets the rate limit; default S0).")

tps = click.option("--tps", type=float, default=None, help="Custom Vision calls per second (overrides the tier's quota).")


def min_valid(help_text: str = "Smallest valid-pixel fraction of a plot to classify it.",
              default: float = defaults.MIN_VALID) -> Decorator[Any]:
    return click.option("--min-valid", type=click.FloatRange(0.0, 1.0), default=default, show_default=True,
                        help=help_text)


def plot_size(default: float | None = defaults.PLOT_SIZE_M) -> Decorator[Any]:
    return click.option("--plot-size", "plot_size_m", type=click.FloatRange(min=1.0), default=default,
                        show_default=default is not None,
                        help=f"Plot side in metres (new grids only) [default: {defaults.PLOT_SIZE_M:g}].")


def chip_size(default: str = "256") -> Decorator[Any]:
    return click.option("--chip-size", type=click.Choice(["224", "256"]), default=default, show_default=True,
                        help="Chip side in pixels (Custom Vision upscales images under 256 px).")
