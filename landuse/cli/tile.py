"""`landuse tile`: which plots the imagery covers, and one chip per usable plot."""

from __future__ import annotations

from pathlib import Path

import click

from landuse.errors import InputError
from landuse.grid import DEFAULT_PLOT_SIZE_M, PlotGrid
from landuse.imagery import Scene
from landuse.tiler import DEFAULT_MIN_VALID, tile


@click.command("tile")
@click.argument("imagery", nargs=-1, required=True)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder (chips/, index.geojson, grid.json).")
@click.option("--grid", "grid_path", type=click.Path(dir_okay=False, path_type=Path), help="Plot grid file (grid.json); default: built from the imagery (or --aoi).")
@click.option("--aoi", type=click.Path(dir_okay=False, path_type=Path), help="AOI polygons (any CRS): only plots whose centre lies inside.")
@click.option("--crs", default=None, help="Projected grid CRS when the grid is built, e.g. EPSG:32614.")
@click.option("--plot-size", type=click.FloatRange(min=1.0), default=None, help=f"Plot size in metres when the grid is built [default: {DEFAULT_PLOT_SIZE_M:g}].")
@click.option("--min-valid", type=click.FloatRange(0.0, 1.0), default=DEFAULT_MIN_VALID, show_default=True, help="Minimum valid-pixel fraction for a plot to be tiled; the rest are 'not classified'.")
@click.option("--format", "fmt", type=click.Choice(["png", "tif"]), default="png", show_default=True, help="Chip format (tif: GeoTIFF with georeferencing).")
@click.option("--size", type=click.Choice(["224", "256"]), default="224", show_default=True, help="Chip side in pixels (256: Custom Vision's recommended minimum).")
@click.option("--bands", default=None, help="Source bands for R,G,B, e.g. 1,2,3 (default: tagged colour bands, else 1,2,3).")
@click.option("--stretch", default=None, help="'auto' (2-98 percentiles) or LOW,HIGH to map non-8-bit imagery to 0..255.")
@click.option("--overwrite", is_flag=True, help="Write into a non-empty --out, replacing earlier chips.")
@click.option("--yes", is_flag=True, help="Tile a job over the stated size without asking.")
@click.pass_context
def command(
    ctx: click.Context,
    imagery: tuple[str, ...],
    out: Path,
    grid_path: Path | None,
    aoi: Path | None,
    crs: str | None,
    plot_size: float | None,
    min_valid: float,
    fmt: str,
    size: str,
    bands: str | None,
    stretch: str | None,
    overwrite: bool,
    yes: bool,
) -> None:
    """Tile IMAGERY (files, globs, a VRT or URLs) into one chip per plot of the plot grid."""
    scene = Scene.open(list(imagery), bands=bands, stretch=stretch)
    mask = None
    if grid_path is not None:
        if crs is not None or plot_size is not None:
            raise InputError("--crs and --plot-size only apply when the grid is built; drop them or drop --grid")
        grid = PlotGrid.load(grid_path)
    elif aoi is not None:
        grid = PlotGrid.from_aoi(aoi, crs=crs, plot_size_m=plot_size or DEFAULT_PLOT_SIZE_M)
    else:
        grid = PlotGrid.from_footprints(scene.footprints(), crs=crs, plot_size_m=plot_size or DEFAULT_PLOT_SIZE_M)
    if aoi is not None:
        mask = grid.aoi_mask(aoi)
    quiet = bool(ctx.obj and ctx.obj.get("quiet"))

    def progress(done: int, total: int) -> None:
        if not quiet and (done == total or done % 10 == 0):
            click.echo(f"  read {done}/{total} chunks", err=True)

    result = tile(scene, grid, out, min_valid=min_valid, fmt=fmt, size=int(size), plot_mask=mask,
                  overwrite=overwrite, progress=progress, yes=yes)
    if not quiet:
        click.echo(
            f"{result.plots} plots touched on {grid.describe()}: {result.chips} chips "
            f"(valid >= {min_valid:g}), {result.not_classified} not classified"
        )
        click.echo(f"chips:  {result.chips_dir}")
        click.echo(f"index:  {result.index_path}")
        click.echo(f"grid:   {result.grid_path}")
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
