"""`landuse change RUN_A RUN_B [RUN_C ...] --out DIR`: transitions, areas, urbanization."""

from __future__ import annotations

from pathlib import Path

import click

from landuse import defaults
from landuse.cli import options as o


@click.command("change")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option("--min-confidence", default=defaults.MIN_CONFIDENCE, show_default=True, type=float,
              help="A change counts only when both periods' winning probabilities reach this.")
@click.option("--smooth/--no-smooth", default=False, show_default=True,
              help="3 x 3 plurality filter on each period's class map before comparing.")
@click.option("--hotspot-block", default=defaults.HOTSPOT_BLOCK, show_default=True, type=int,
              help="Hotspot block size in plots (newly Developed plots counted per block).")
@click.option("--developed-tag", default=defaults.DEVELOPED_TAG, show_default=True, help="The tag that means urbanized.")
@click.option("--allow-reverse", is_flag=True,
              help="Allow a run B earlier than run A (a deliberate backwards comparison).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
@click.pass_context
def command(ctx: click.Context, runs: tuple[Path, ...], out: Path, min_confidence: float, smooth: bool,
            hotspot_block: int, developed_tag: str, allow_reverse: bool, overwrite: bool) -> None:
    """Compare runs of one plot grid: RUN_A RUN_B (or more: consecutive intervals plus first -> last)."""
    from landuse.api import ChangeOptions, change_series
    from landuse.report.change_outputs import CHANGE_FILES

    opts = ChangeOptions(min_confidence=min_confidence, smooth=smooth, hotspot_block=hotspot_block,
                         developed_tag=developed_tag, allow_reverse=allow_reverse)
    for chg in change_series(runs, out, options=opts, overwrite=overwrite):
        o.echo_unless_quiet(ctx, f"{chg.describe()}\nwrote {chg.path}/ ({', '.join(CHANGE_FILES)})")
