"""`landuse review RUN_DIR --out REVIEW_DIR`: chips of the plots most worth a human look."""

from __future__ import annotations

from pathlib import Path

import click

from landuse.cli import options as o
from landuse.label.selection import STRATEGIES


@click.command("review")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Review folder to write.")
@click.option("--n", "n", type=int, default=200, show_default=True, help="How many plots.")
@click.option("--strategy", type=click.Choice(list(STRATEGIES)), default="least-confident", show_default=True,
              help="Lowest winning probability first, changed plots (needs --change), flagged unknown, "
                   "diverse (spread over classes and the county), or a mix (as `landuse label`).")
@click.option("--change", "change", type=click.Path(path_type=Path), default=None,
              help="Output folder of `landuse change` (for --strategy changed).")
@click.option("--imagery", multiple=True, type=click.Path(path_type=Path),
              help="Imagery of the run (default: the files its manifest lists).")
@o.chip_size()
@click.option("--stretch", default=None, help="'auto' or LOW,HIGH[,...] for non-8-bit imagery (default: the run's).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out folder.")
@click.pass_context
def command(ctx: click.Context, run_dir: Path, out: Path, n: int, strategy: str, change: Path | None,
            imagery: tuple[Path, ...], chip_size: str, stretch: str | None, overwrite: bool) -> None:
    """Export chips filed under their predicted tag; move each into its true tag's folder, then
    `landuse dataset --merge REVIEW_DIR --out DATASET_DIR`."""
    from landuse.api import review

    res = review(run_dir, out, n=n, strategy=strategy, change=change, imagery=imagery or None,  # type: ignore[arg-type]
                 chip_size=int(chip_size), overwrite=overwrite, stretch=stretch)
    o.echo_unless_quiet(ctx, res.describe())
