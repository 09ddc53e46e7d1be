"""`landuse change RUN_A RUN_B [RUN_C ...] --out DIR`: transitions, areas, urbanization."""

from __future__ import annotations

from pathlib import Path

import click

from landuse.change import (
    DEFAULT_HOTSPOT_BLOCK,
    DEFAULT_MIN_CONFIDENCE,
    DEVELOPED,
    check_order,
    compare,
    describe,
    load_run,
    series_intensity,
    series_pairs,
)


@click.command("change")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option("--min-confidence", default=DEFAULT_MIN_CONFIDENCE, show_default=True, type=float,
              help="A change counts only when both periods' winning probabilities reach this.")
@click.option("--smooth/--no-smooth", default=False, show_default=True,
              help="3 x 3 plurality filter on each period's class map before comparing.")
@click.option("--hotspot-block", default=DEFAULT_HOTSPOT_BLOCK, show_default=True, type=int,
              help="Hotspot block size in plots (newly Developed plots counted per block).")
@click.option("--developed-tag", default=DEVELOPED, show_default=True, help="The tag that means urbanized.")
@click.option("--allow-reverse", is_flag=True,
              help="Allow a run B earlier than run A (a deliberate backwards comparison).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
@click.pass_context
def command(ctx: click.Context, runs: tuple[Path, ...], out: Path, min_confidence: float, smooth: bool,
            hotspot_block: int, developed_tag: str, allow_reverse: bool, overwrite: bool) -> None:
    """Compare runs of one plot grid: RUN_A RUN_B (or more: consecutive intervals plus first -> last)."""
    from landuse.report.change_outputs import CHANGE_FILES, write_change_outputs

    quiet = bool((ctx.obj or {}).get("quiet"))
    loaded = [load_run(r) for r in runs]
    pairs = series_pairs(loaded)
    for a, b in pairs:  # refuse a wrong order before writing anything
        check_order(a, b, allow_reverse)
    comps = [compare(a, b, min_confidence=min_confidence, smooth=smooth, allow_reverse=allow_reverse) for a, b in pairs]
    intensity = series_intensity(comps[: len(loaded) - 1]) if len(loaded) > 2 else None
    for (a, b), comp in zip(pairs, comps, strict=True):
        summary = comp.summary(hotspot_block=hotspot_block, developed_tag=developed_tag)
        if intensity is not None and (a, b) == (loaded[0], loaded[-1]):
            summary["intensity"] = intensity  # the whole series, in the first -> last summary
        target = out if len(pairs) == 1 else out / f"{_safe(a.period)}_to_{_safe(b.period)}"
        write_change_outputs(comp, target, summary, overwrite=overwrite)
        if not quiet:
            click.echo(describe(summary))
            click.echo(f"wrote {target}/ ({', '.join(CHANGE_FILES)})")


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)
