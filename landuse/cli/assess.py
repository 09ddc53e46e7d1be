"""`landuse assess design RUN_OR_CHANGE --out SAMPLE` and `landuse assess estimate SAMPLE`."""

from __future__ import annotations

from pathlib import Path

import click

from landuse.assess.sample import DEFAULT_EXPECTED_USERS, DEFAULT_MIN_PER_STRATUM, DEFAULT_TARGET_SE


@click.group("assess")
def command() -> None:
    """How sure are these hectares? A reference sample, error-adjusted areas with 95 % intervals."""


@command.command("design")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Sample folder to write.")
@click.option("--n", "n", type=int, default=None, help="Sample size in plots (default: from --target-se).")
@click.option("--target-se", default=DEFAULT_TARGET_SE, show_default=True, type=float,
              help="Target standard error of the overall accuracy (Olofsson et al. 2014 eq. 13).")
@click.option("--target-class", default=None, help="Size the sample for this (map) class's area instead ...")
@click.option("--target-se-ha", type=float, default=None, help="... to this standard error of its area, in hectares.")
@click.option("--expected-ua", default=DEFAULT_EXPECTED_USERS, show_default=True, type=float,
              help="Expected user's accuracy of every stratum (for the sample size).")
@click.option("--min-per-stratum", default=DEFAULT_MIN_PER_STRATUM, show_default=True, type=int,
              help="At least this many plots in every stratum (rare change strata are over-sampled).")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed (the draw is reproducible).")
@click.option("--overwrite", is_flag=True, help="Replace an existing sample folder (and any labels in it).")
@click.pass_context
def design(ctx: click.Context, source: Path, out: Path, n: int | None, target_se: float, target_class: str | None,
           target_se_ha: float | None, expected_ua: float, min_per_stratum: int, seed: int, overwrite: bool) -> None:
    """Draw a stratified random sample of plots of a run (strata: mapped classes) or of a change
    folder (strata: transitions), with its design beside it."""
    from landuse.assess.sample import describe_design, design_sample

    d = design_sample(source, out, n=n, target_se=target_se, target_class=target_class, target_se_ha=target_se_ha,
                      expected_users=expected_ua, min_per_stratum=min_per_stratum, seed=seed, overwrite=overwrite)
    if not (ctx.find_root().obj or {}).get("quiet"):
        click.echo(describe_design(d))
        click.echo(f"wrote {out}/ (design.json, sample.csv, sample.geojson, strata.tif); label the plots, then `landuse assess estimate {out}`")


@command.command("estimate")
@click.argument("sample", type=click.Path(path_type=Path))
@click.option("--labels", type=click.Path(path_type=Path), default=None,
              help="labels.csv (or the dataset folder holding it); default: SAMPLE/labels.csv or SAMPLE/labels/.")
@click.option("--map", "map_source", type=click.Path(path_type=Path), default=None,
              help="Assess another run (or change folder) of the same grid with this sample (Stehman 2014 estimator).")
@click.option("--fpc/--no-fpc", default=True, show_default=True, help="Finite-population correction of the variances.")
@click.pass_context
def estimate(ctx: click.Context, sample: Path, labels: Path | None, map_source: Path | None, fpc: bool) -> None:
    """Error matrix, accuracies and error-adjusted areas (hectares ± 95 %) from a labelled sample."""
    from landuse.assess.sample import describe_estimate, estimate_sample

    e = estimate_sample(sample, labels=labels, map_source=map_source, fpc=fpc)
    if not (ctx.find_root().obj or {}).get("quiet"):
        click.echo(describe_estimate(e))
        click.echo(f"wrote {e.json_path} and {e.markdown_path}")
