"""`landuse report RUN_A RUN_B [--change DIR] --out report.html`: the interactive web map."""

from __future__ import annotations

from pathlib import Path

import click

from landuse import defaults
from landuse.cli import options as o


@click.command("report")
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option("--change", "change", type=click.Path(path_type=Path), default=None,
              help="Output folder of `landuse change RUN_A RUN_B` (default: compare the runs now, default settings).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="The HTML file to write.")
@click.option("--basemap", default=defaults.REPORT_BASEMAP, show_default=True,
              help="none (offline: no tiles at all), osm, carto-light, carto-dark, esri-imagery, or a tile URL template.")
@click.option("--thumbnails/--no-thumbnails", default=True, show_default=True,
              help="Before / after imagery thumbnails in the change popups (imagery from the manifests or --imagery-a/-b).")
@click.option("--imagery-a", default=None, help="Period A imagery (path, glob, folder or VRT) when the manifest's inputs moved.")
@click.option("--imagery-b", default=None, help="Period B imagery (path, glob, folder or VRT) when the manifest's inputs moved.")
@click.option("--imagery/--no-imagery", default=True, show_default=True,
              help="Each period's imagery as a layer under its classes (on by default with --basemap none).")
@click.option("--thumbnail-px", default=defaults.THUMBNAIL_PX, show_default=True, type=int, help="Thumbnail size in pixels.")
@click.option("--max-thumbnails", default=defaults.MAX_THUMBNAILS, show_default=True, type=int,
              help="At most this many change plots get thumbnails (changed first, largest first); keeps the HTML small.")
@click.option("--overwrite", is_flag=True, help="Replace an existing report.")
@click.pass_context
def command(ctx: click.Context, run_a: Path, run_b: Path, change: Path | None, out: Path, basemap: str,
            thumbnails: bool, imagery_a: str | None, imagery_b: str | None, imagery: bool, thumbnail_px: int,
            max_thumbnails: int, overwrite: bool) -> None:
    """One self-contained HTML web map comparing RUN_A and RUN_B: class layers, swipe, changes, summary."""
    from landuse.api import ReportOptions, report

    quiet = o.is_quiet(ctx)
    opts = ReportOptions(basemap=basemap, thumbnails=thumbnails, imagery_a=imagery_a, imagery_b=imagery_b,
                         thumbnail_px=thumbnail_px, max_thumbnails=max_thumbnails, imagery=imagery)
    r = report(run_a, run_b, out, change=change, options=opts, overwrite=overwrite,
               progress=None if quiet else (lambda msg: click.echo(msg, err=True)))
    for note in r.notes:
        click.echo(f"note: {note}", err=True)
    if not quiet:
        shown = f"; imagery {r.imagery_m_per_px:g} m/px" if r.imagery_m_per_px else ""
        click.echo(f"wrote {r.path} ({r.bytes / 1e6:.1f} MB; {r.change_features:,} change plots, "
                   f"{r.thumbnails:,} with thumbnails{shown}; {r.seconds:.1f} s)")
