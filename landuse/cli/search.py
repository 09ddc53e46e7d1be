"""``landuse search``: the STAC items a period would use, their coverage and size (no pixel read).

Also holds the STAC options shared with ``landuse classify`` (``stac_options``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

STAC_HELP = ("STAC API root URL (e.g. https://planetarycomputer.microsoft.com/api/stac/v1) or a static "
             "catalog / collection / item collection JSON file.")


def stac_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--stac, --collection, --datetime, --stac-query, --stac-filter, --asset."""
    opts = [
        click.option("--stac", "stac_url", help=STAC_HELP),
        click.option("--collection", "collections", multiple=True, help="STAC collection id (repeatable), e.g. naip."),
        click.option("--datetime", "stac_datetime", help="Acquisition year, date or range START/END, e.g. 2016 or 2016-06/2016-09."),
        click.option("--stac-query", help="STAC query extension JSON, e.g. '{\"naip:state\": {\"eq\": \"ca\"}}'."),
        click.option("--stac-filter", help="CQL2 filter (text, e.g. \"naip:state = 'ca'\", or JSON)."),
        click.option("--asset", help="Asset key of the imagery (default: 'image', else the item's GeoTIFF data asset)."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def stac_source(stac_url: str | None, collections: tuple[str, ...], stac_datetime: str | None, stac_query: str | None,
                stac_filter: str | None, asset: str | None) -> Any:
    """The :class:`landuse.stac.StacSource` of the options, or None without --stac."""
    if stac_url is None:
        if collections or stac_datetime or stac_query or stac_filter or asset:
            raise click.UsageError("--collection / --datetime / --stac-query / --stac-filter / --asset need --stac")
        return None
    from landuse import StacSource

    return StacSource.of(stac_url, collections, stac_datetime, stac_query, stac_filter, asset)


@click.command("search")
@stac_options
@click.option("--aoi", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="AOI polygons (any CRS) to search over.")
@click.option("--aoi-where", help="Attribute filter on the AOI's features, e.g. \"GEOID = '06025'\".")
@click.option("--grid", "grid_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Search over this grid's footprint (grid.json).")
@click.option("--plot-size", default=224.0, show_default=True, type=float, help="Plot side in metres (for the coverage count).")
@click.option("--geojson", "geojson_out", type=click.Path(dir_okay=False, path_type=Path), help="Write the chosen items as GeoJSON here.")
@click.option("--sizes/--no-sizes", default=True, show_default=True, help="Ask the server for sizes the catalog does not give (HTTP HEAD).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --geojson file.")
def command(stac_url: str | None, collections: tuple[str, ...], stac_datetime: str | None, stac_query: str | None,
            stac_filter: str | None, asset: str | None, aoi: Path | None, aoi_where: str | None, grid_file: Path | None,
            plot_size: float, geojson_out: Path | None, sizes: bool, overwrite: bool) -> None:
    """List the STAC items a period would read over --aoi (or --grid): newest acquisition first,
    the AOI's plots they cover and the bytes to read. Reads no pixel."""
    from landuse import search
    from landuse.errors import OutputExistsError

    source = stac_source(stac_url, collections, stac_datetime, stac_query, stac_filter, asset)
    if source is None:
        raise click.UsageError("give --stac URL (a STAC API or a catalog file)")
    if geojson_out is not None and geojson_out.exists() and not overwrite:
        raise OutputExistsError(f"{geojson_out} exists; pass --overwrite to replace it")
    sel = search(source, aoi=aoi, aoi_where=aoi_where, grid=grid_file, plot_size_m=plot_size, sizes=sizes)
    click.echo(sel.describe())
    if geojson_out is not None:
        sel.write_geojson(geojson_out)
        click.echo(f"wrote {len(sel.items)} item(s) to {geojson_out}")
