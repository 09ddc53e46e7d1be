"""`landuse grid`: build the plot grid of some imagery (or an AOI) and write grid.json."""

from __future__ import annotations

from pathlib import Path

import click

from landuse.cli import options as o


@click.command("grid")
@click.argument("imagery", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--aoi", type=click.Path(dir_okay=False, path_type=Path), help="AOI polygons (GeoJSON / GeoPackage / Shapefile, any CRS): keep plots whose centre lies inside.")
@click.option("--aoi-where", help="Keep only the AOI features this attribute filter selects, e.g. \"GEOID = '06025'\".")
@click.option("--crs", default=None, help="Projected grid CRS, e.g. EPSG:32611 (default: the imagery's shared projected CRS, else the UTM zone of the centre).")
@o.plot_size()
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="grid.json to write.")
@click.option("--geojson", type=click.Path(dir_okay=False, path_type=Path), help="Also write the plots as EPSG:4326 GeoJSON (plot_id, row, col).")
@o.overwrite
@click.option("--yes", is_flag=True, help="Write a --geojson over the stated size without asking.")
@click.pass_context
def command(ctx: click.Context, imagery: tuple[Path, ...], aoi: Path | None, aoi_where: str | None, crs: str | None, plot_size_m: float,
            out: Path, geojson: Path | None, overwrite: bool, yes: bool) -> None:
    """Build the 224 m plot grid covering IMAGERY (or --aoi) and write it to --out."""
    from landuse import aoi_of
    from landuse.api import grid

    if not imagery and aoi is None:
        raise click.UsageError("give imagery files or --aoi to build the grid from")
    res = grid(imagery, aoi=aoi_of(aoi, aoi_where), crs=crs, plot_size_m=plot_size_m, out=out, geojson=geojson, overwrite=overwrite, yes=yes)
    written = " and ".join(str(p) for p in (res.path, res.geojson) if p is not None)
    o.echo_unless_quiet(ctx, f"{res.describe()} Wrote {written}.")
