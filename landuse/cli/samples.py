"""`landuse samples`: write synthetic two-period sample imagery with known truth per plot."""

from __future__ import annotations

import time
from pathlib import Path

import click

from landuse.samples import DEFAULT_PLOTS_X, DEFAULT_PLOTS_Y, DEFAULT_SEED, area_summary, generate


@click.command("samples")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Directory to write <year>.tif and truth.geojson into.")
@click.option("--plots-x", type=click.IntRange(min=3), default=DEFAULT_PLOTS_X, show_default=True, help="Imagery width in 224 m plots.")
@click.option("--plots-y", type=click.IntRange(min=3), default=DEFAULT_PLOTS_Y, show_default=True, help="Imagery height in 224 m plots.")
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Random seed (same seed, same files).")
@click.option("--overwrite", is_flag=True, help="Replace existing files.")
@click.pass_context
def command(ctx: click.Context, out: Path, plots_x: int, plots_y: int, seed: int, overwrite: bool) -> None:
    """Write a synthetic two-period "county" (NAIP-like RGBN GeoTIFFs, 1 m, UTM 11N) with truth."""
    import geopandas as gpd

    t0 = time.perf_counter()
    result = generate(out, plots_x=plots_x, plots_y=plots_y, seed=seed, overwrite=overwrite)
    truth = gpd.read_file(result.truth)
    if not (ctx.obj or {}).get("quiet"):
        files = ", ".join(str(p) for p in (*result.rasters, result.truth))
        click.echo(
            f"Wrote {files} in {time.perf_counter() - t0:.1f} s: {plots_x * 224} x {plots_y * 224} px at 1 m, "
            f"{result.grid.describe()}; {area_summary(truth, result.years)}."
        )
