"""``landuse classify``: classify every plot of one period's imagery into a run directory."""

from __future__ import annotations

from pathlib import Path

import click

from landuse import defaults
from landuse.cli import options as o
from landuse.cli.search import stac_options, stac_source


@click.command("classify")
@click.argument("imagery", nargs=-1)
@stac_options
@click.option("--period", required=True, help="Name of the period (e.g. 2016 or 2018-07-16).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Run directory.")
@o.model
@o.aoi
@click.option("--aoi-where", help="Keep only the AOI features this attribute filter selects, e.g. \"GEOID = '06025'\" (a TIGER county file).")
@o.grid
@o.plot_size()
@o.min_valid()
@click.option("--scheduler", default=defaults.SCHEDULER, show_default=True, help="auto (threads on up to 4 cores, else local) | local (a Dask LocalCluster, one process per core) | threads | synchronous | "
              "tcp://HOST:8786 (an existing cluster: the imagery and model paths must be reachable from its "
              "workers, via shared storage or URLs; parts are written here by the client).")
@click.option("--workers", type=int, help="Worker processes / threads (default: the cores available).")
@click.option("--chunk-plots", default=defaults.CHUNK_PLOTS, show_default=True, type=int, help="Plots per task (contiguous).")
@click.option("--batch-size", default=defaults.BATCH_SIZE, show_default=True, type=int, help="Plots per model call.")
@click.option("--bands", help="Source bands for R,G,B (1-based), e.g. 1,2,3.")
@click.option("--backend", type=click.Choice(["onnx", "customvision"]), default=defaults.BACKEND, show_default=True,
              help="Local ONNX model, or the Custom Vision prediction endpoint (LANDUSE_CV_* settings).")
@o.tier
@o.tps
@click.option("--store", is_flag=True, help="Custom Vision: keep the images in the portal (the stored route).")
@click.option("--overwrite", is_flag=True, help="Replace an existing, different run in --out.")
@click.option("--stretch", default=None, help="Map non-8-bit imagery to 0..255: 'auto' (2-98 percentiles), LOW,HIGH, or "
              "LOW,HIGH,LOW,HIGH,LOW,HIGH per band (R,G,B).")
@click.option("--yes", is_flag=True, help="Run a job over the stated size (plots / hours) without asking.")
@click.option("--wait", is_flag=True, help="If another run is writing --out, wait for it instead of failing.")
@click.option("--dry-run", is_flag=True, help="Count the plots (and, for Custom Vision, the calls and their cost); classify nothing.")
@click.pass_context
def command(ctx: click.Context, imagery: tuple[str, ...], stac_url: str | None, collections: tuple[str, ...],
            stac_datetime: str | None, stac_query: str | None, stac_filter: str | None, asset: str | None,
            period: str, out: Path, model: str, aoi: Path | None, aoi_where: str | None, grid: Path | None, plot_size_m: float, min_valid: float, scheduler: str, workers: int | None,
            chunk_plots: int, batch_size: int, bands: str | None, backend: str, tier: str | None, tps: float | None,
            store: bool, overwrite: bool, stretch: str | None, yes: bool, wait: bool, dry_run: bool) -> None:
    """Classify every plot of IMAGERY (one period), or of the items a STAC search finds (--stac
    with --collection, --datetime and --aoi or --grid), into the run directory --out.

    Writes plots.parquet, plots.geojson, classes.tif, probabilities.tif and summary.json. A
    rerun resumes an interrupted run; a finished run is not recomputed.
    """
    from landuse import aoi_of
    from landuse.api import ClassifyOptions, CustomVisionOptions, classify, classify_plan

    stac = stac_source(stac_url, collections, stac_datetime, stac_query, stac_filter, asset)
    if stac is None and not imagery:
        raise click.UsageError("give IMAGERY files or a STAC source (--stac URL --collection ... --datetime ...)")
    cv = CustomVisionOptions(tier=tier, tps=tps, store=store)  # type: ignore[arg-type]
    common = dict(backend=backend, grid=grid, aoi=aoi_of(aoi, aoi_where), plot_size_m=plot_size_m, bands=bands,
                  customvision=cv, stac=stac, stretch=stretch)
    if dry_run:
        click.echo(classify_plan(imagery, min_valid=min_valid, workers=workers, **common))  # type: ignore[arg-type]
        return
    opts = ClassifyOptions(min_valid=min_valid, chunk_plots=chunk_plots, batch_size=batch_size,
                           scheduler=scheduler, workers=workers)
    classify(imagery, out, period=period, model=model, options=opts, overwrite=overwrite,
             progress=not o.is_quiet(ctx), yes=yes, wait=wait, **common)  # type: ignore[arg-type]
