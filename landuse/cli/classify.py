"""``landuse classify``: classify every plot of one period's imagery into a run directory."""

from __future__ import annotations

from pathlib import Path

import click

from landuse.errors import InputError


def _parse_bands(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        bands = [int(v) for v in value.split(",")]
    except ValueError:
        raise InputError(f"--bands {value!r} is not a list of band numbers; give e.g. 1,2,3") from None
    if len(bands) != 3 or min(bands) < 1:
        raise InputError(f"--bands {value!r} must name three 1-based bands (R,G,B), e.g. 1,2,3")
    return bands


@click.command("classify")
@click.argument("imagery", nargs=-1, required=True)
@click.option("--period", required=True, help="Name of the period (e.g. 2016 or 2018-07-16).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Run directory.")
@click.option("--model", default="default", show_default=True, help="Custom Vision export (zip/folder), .onnx file or 'default'.")
@click.option("--aoi", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Only plots whose centre is inside this polygon file.")
@click.option("--grid", "grid_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Plot grid (grid.json) to use; keeps periods comparable.")
@click.option("--plot-size", default=224.0, show_default=True, type=float, help="Plot side in metres (new grids only).")
@click.option("--min-valid", default=0.9, show_default=True, type=float, help="Smallest valid-pixel fraction to classify a plot.")
@click.option("--scheduler", default="auto", show_default=True, help="auto (threads on up to 4 cores, else local) | local (a Dask LocalCluster, one process per core) | threads | synchronous | "
              "tcp://HOST:8786 (an existing cluster: the imagery and model paths must be reachable from its "
              "workers, via shared storage or URLs; parts are written here by the client).")
@click.option("--workers", type=int, help="Worker processes / threads (default: the cores available).")
@click.option("--chunk-plots", default=256, show_default=True, type=int, help="Plots per task (contiguous).")
@click.option("--batch-size", default=8, show_default=True, type=int, help="Plots per model call.")
@click.option("--bands", help="Source bands for R,G,B (1-based), e.g. 1,2,3.")
@click.option("--backend", type=click.Choice(["onnx", "customvision"]), default="onnx", show_default=True,
              help="Local ONNX model, or the Custom Vision prediction endpoint (LANDUSE_CV_* settings).")
@click.option("--tier", type=click.Choice(["F0", "S0"]), help="Custom Vision pricing tier (sets the rate limit).")
@click.option("--tps", type=float, help="Custom Vision calls per second (overrides the tier's quota).")
@click.option("--store", is_flag=True, help="Custom Vision: keep the images in the portal (the stored route).")
@click.option("--overwrite", is_flag=True, help="Replace an existing, different run in --out.")
@click.option("--dry-run", is_flag=True, help="Count the plots (and, for Custom Vision, the calls and their cost); classify nothing.")
@click.pass_context
def command(
    ctx: click.Context,
    imagery: tuple[str, ...],
    period: str,
    out: Path,
    model: str,
    aoi: Path | None,
    grid_file: Path | None,
    plot_size: float,
    min_valid: float,
    scheduler: str,
    workers: int | None,
    chunk_plots: int,
    batch_size: int,
    bands: str | None,
    backend: str,
    tier: str | None,
    tps: float | None,
    store: bool,
    overwrite: bool,
    dry_run: bool,
) -> None:
    """Classify every plot of IMAGERY (one period) into the run directory --out.

    Writes plots.parquet, plots.geojson, classes.tif, probabilities.tif and summary.json. A
    rerun resumes an interrupted run; a finished run is not recomputed.
    """
    from landuse.pipeline import classify_imagery

    quiet = bool((ctx.obj or {}).get("quiet"))
    if dry_run:
        click.echo(dry_run_text(list(imagery), grid_file, aoi, plot_size, _parse_bands(bands), min_valid, backend,
                                {"tier": tier, "tps": tps, "store": store}))
        return
    classify_imagery(
        list(imagery),
        out,
        period=period,
        model=model,
        aoi=aoi,
        grid_file=grid_file,
        plot_size_m=plot_size,
        bands=_parse_bands(bands),
        backend=backend,
        backend_options={"tier": tier, "tps": tps, "store": store} if backend == "customvision" else None,
        min_valid=min_valid,
        chunk_plots=chunk_plots,
        batch_size=batch_size,
        scheduler=scheduler,
        workers=workers,
        overwrite=overwrite,
        quiet=quiet,
    )


def dry_run_text(
    imagery: list[str],
    grid_file: Path | None,
    aoi: Path | None,
    plot_size: float,
    bands: list[int] | None,
    min_valid: float,
    backend: str,
    cv_options: dict,
) -> str:
    """What a run would do, from the imagery footprints and masks only (no model call)."""
    from landuse.imagery import Scene
    from landuse.pipeline import plan_grid

    scene = Scene.open(imagery, bands=bands)
    grid, mask = plan_grid(scene, grid_file, aoi, plot_size)
    cov = scene.coverage(grid)
    if mask is not None:
        cov = cov * mask
    plots = int((cov >= min_valid).sum())
    lines = [
        f"dry run: {grid.describe()}; about {plots} of {grid.size} plots have >= {min_valid:g} valid imagery "
        f"(estimated from the masks) and would be classified; {int(((cov > 0) & (cov < min_valid)).sum())} partial, "
        f"{int((cov == 0).sum())} without imagery"
    ]
    if backend == "customvision":
        from landuse.pipeline import load_customvision

        clf = load_customvision(None, **{k: v for k, v in cv_options.items() if v is not None})
        lines.append(clf.dry_run(plots).describe() + "; no call made")
    else:
        lines.append("nothing was read or classified")
    return "\n".join(lines)
