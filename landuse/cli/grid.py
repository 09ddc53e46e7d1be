"""`landuse grid`: build the plot grid of some imagery (or an AOI) and write grid.json."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from landuse.errors import OutputExistsError
from landuse.grid import DEFAULT_PLOT_SIZE_M, PlotGrid, crs_label


def _check_writable(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass --overwrite to replace it or choose another --out")


def write_plots_geojson(grid: PlotGrid, path: Path, mask: np.ndarray | None = None) -> int:
    """Write the grid's plots (``mask`` True only) as EPSG:4326 GeoJSON, atomically; returns the count."""
    import geopandas as gpd

    rows, cols = np.nonzero(mask) if mask is not None else grid.all_rows_cols()
    gdf = gpd.GeoDataFrame(
        {"plot_id": grid.plot_ids(rows, cols), "row": rows.astype(int), "col": cols.astype(int)},
        geometry=grid.footprints(rows, cols, to_crs="EPSG:4326"),
        crs="EPSG:4326",
    )
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    gdf.to_file(tmp, driver="GeoJSON")
    tmp.replace(path)
    return len(gdf)


def _crs_name(grid: PlotGrid) -> str:
    from pyproj import CRS as ProjCRS

    return ProjCRS.from_wkt(grid.crs.to_wkt()).name


def summary(grid: PlotGrid, mask: np.ndarray | None = None) -> str:
    """One paragraph: CRS, plot size, shape, plots and hectares (inside the AOI when masked)."""
    n = int(mask.sum()) if mask is not None else grid.size
    text = (
        f"Plot grid in {crs_label(grid.crs)} ({_crs_name(grid)}), "
        f"{grid.plot_size_m:g} m plots ({grid.plot_size:g} CRS units), "
        f"{grid.height} x {grid.width} plots (rows x cols), origin plot row {grid.row0} col {grid.col0}; "
    )
    if mask is not None:
        text += f"{n} plots ({n * grid.plot_area_ha:,.1f} ha) of {grid.size} have their centre in the AOI."
    else:
        text += f"{n} plots ({n * grid.plot_area_ha:,.1f} ha)."
    return text


@click.command("grid")
@click.argument("imagery", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--aoi", type=click.Path(dir_okay=False, path_type=Path), help="AOI polygons (GeoJSON / GeoPackage / Shapefile, any CRS): keep plots whose centre lies inside.")
@click.option("--aoi-where", help="Keep only the AOI features this attribute filter selects, e.g. \"GEOID = '06025'\".")
@click.option("--crs", default=None, help="Projected grid CRS, e.g. EPSG:32611 (default: the imagery's shared projected CRS, else the UTM zone of the centre).")
@click.option("--plot-size", type=click.FloatRange(min=1.0), default=DEFAULT_PLOT_SIZE_M, show_default=True, help="Plot size in metres (also in feet-based CRSs).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="grid.json to write.")
@click.option("--geojson", type=click.Path(dir_okay=False, path_type=Path), help="Also write the plots as EPSG:4326 GeoJSON (plot_id, row, col).")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.pass_context
def command(
    ctx: click.Context,
    imagery: tuple[Path, ...],
    aoi: Path | None,
    aoi_where: str | None,
    crs: str | None,
    plot_size: float,
    out: Path,
    geojson: Path | None,
    overwrite: bool,
) -> None:
    """Build the 224 m plot grid covering IMAGERY (or --aoi) and write it to --out."""
    from landuse.grid import aoi_of

    if not imagery and aoi is None:
        raise click.UsageError("give imagery files or --aoi to build the grid from")
    aoi = aoi_of(aoi, aoi_where)
    _check_writable(out, overwrite)
    if geojson is not None:
        _check_writable(geojson, overwrite)
    if imagery:
        grid = PlotGrid.from_rasters(imagery, crs=crs, plot_size_m=plot_size)
    else:
        grid = PlotGrid.from_aoi(aoi, crs=crs, plot_size_m=plot_size)
    mask = None
    if aoi is not None:
        grid, mask = grid.crop_to_mask(grid.aoi_mask(aoi))
    grid.save(out)
    written = [str(out)]
    if geojson is not None:
        write_plots_geojson(grid, geojson, mask)
        written.append(str(geojson))
    if not (ctx.obj or {}).get("quiet"):
        click.echo(summary(grid, mask) + " Wrote " + " and ".join(written) + ".")
