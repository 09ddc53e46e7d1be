"""``landuse parity``: one sample of plots through a local model and a Custom Vision endpoint."""

from __future__ import annotations

from pathlib import Path

import click

from landuse.cli import options as o


@click.command("parity")
@o.imagery_arg
@o.model
@click.option("--endpoint", default=None, help="Custom Vision endpoint (or a `landuse serve` URL); default $LANDUSE_CV_ENDPOINT.")
@click.option("--project-id", default=None, help="Default $LANDUSE_CV_PROJECT_ID.")
@click.option("--published-name", default=None, help="Default $LANDUSE_CV_PUBLISHED_NAME.")
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None, help="Custom Vision config file (TOML/YAML).")
@click.option("--sample", default=50, show_default=True, type=click.IntRange(1), help="Plots to compare.")
@click.option("--seed", default=0, show_default=True, type=int, help="Sampling seed.")
@o.min_valid("Smallest valid-pixel fraction of a sampled plot.")
@o.bands
@o.tier
@o.tps
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the report here.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --json file.")
def command(imagery: tuple[str, ...], model: str, endpoint: str | None, project_id: str | None,
            published_name: str | None, config: str | None, sample: int, seed: int, min_valid: float,
            bands: str | None, tier: str | None, tps: float | None, json_out: Path | None, overwrite: bool) -> None:
    """Classify a random sample of IMAGERY's plots with --model locally and through the Custom
    Vision endpoint; report label agreement, mean / max probability difference and the plots
    that disagree. The key comes from $LANDUSE_CV_PREDICTION_KEY or the config file."""
    from landuse.api import parity

    rep = parity(imagery, model=model, endpoint=endpoint, project_id=project_id, published_name=published_name,
                 config=config, sample=sample, seed=seed, min_valid=min_valid, bands=bands, tier=tier,  # type: ignore[arg-type]
                 tps=tps, json_out=json_out, overwrite=overwrite)
    click.echo(rep.describe())
