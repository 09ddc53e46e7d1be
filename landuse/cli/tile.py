"""`landuse tile`: which plots the imagery covers, and one chip per usable plot."""

from __future__ import annotations

from pathlib import Path

import click

from landuse.cli import options as o


@click.command("tile")
@o.imagery_arg
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder (chips/, index.geojson, grid.json).")
@click.option("--grid", "grid", type=click.Path(dir_okay=False, path_type=Path), help="Plot grid file (grid.json); default: built from the imagery (or --aoi).")
@click.option("--aoi", type=click.Path(dir_okay=False, path_type=Path), help="AOI polygons (any CRS): only plots whose centre lies inside.")
@o.crs
@o.plot_size(default=None)
@o.min_valid("Minimum valid-pixel fraction for a plot to be tiled; the rest are 'not classified'.")
@click.option("--format", "fmt", type=click.Choice(["png", "tif"]), default="png", show_default=True, help="Chip format (tif: GeoTIFF with georeferencing).")
@click.option("--size", type=click.Choice(["224", "256"]), default="224", show_default=True, help="Chip side in pixels (256: Custom Vision's recommended minimum).")
@o.bands
@click.option("--stretch", default=None, help="'auto' (2-98 percentiles) or LOW,HIGH to map non-8-bit imagery to 0..255.")
@click.option("--overwrite", is_flag=True, help="Write into a non-empty --out, replacing earlier chips.")
@click.option("--yes", is_flag=True, help="Tile a job over the stated size without asking.")
@click.pass_context
def command(ctx: click.Context, imagery: tuple[str, ...], out: Path, grid: Path | None, aoi: Path | None,
            crs: str | None, plot_size_m: float | None, min_valid: float, fmt: str, size: str, bands: str | None,
            stretch: str | None, overwrite: bool, yes: bool) -> None:
    """Tile IMAGERY (files, globs, a VRT or URLs) into one chip per plot of the plot grid."""
    from landuse.api import tile

    quiet = o.is_quiet(ctx)

    def progress(done: int, total: int) -> None:
        if not quiet and (done == total or done % 10 == 0):
            click.echo(f"  read {done}/{total} chunks", err=True)

    res = tile(imagery, out, grid=grid, aoi=aoi, crs=crs, plot_size_m=plot_size_m, min_valid=min_valid,
               fmt=fmt, size=int(size), bands=bands, stretch=stretch, overwrite=overwrite, yes=yes,  # type: ignore[arg-type]
               progress=progress)
    if not quiet:
        click.echo(res.describe())
    for w in res.warnings:
        click.echo(f"warning: {w}", err=True)
