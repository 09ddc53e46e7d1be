"""`landuse dataset IMAGERY... --labels LANDCOVER.tif --out DATASET_DIR`: labelled chips from a land-cover raster."""

from __future__ import annotations

from pathlib import Path

import click

from landuse.cli import options as o


@click.command("dataset")
@click.argument("imagery", nargs=-1, type=click.Path(path_type=Path))
@click.option("--labels", "labels", type=click.Path(path_type=Path), help="Land-cover raster (NLCD codes by default).")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Dataset folder (one folder per tag).")
@click.option("--mapping", type=click.Path(path_type=Path), default=None,
              help="YAML: tag -> land-cover codes (default: NLCD grouping; water, ice, wetlands left out).")
@click.option("--purity", type=float, default=0.75, show_default=True,
              help="Share of the plot its class must cover to label it.")
@click.option("--per-class", type=int, default=None, help="At most this many plots per tag (seeded random choice).")
@click.option("--aoi", type=click.Path(path_type=Path), default=None, help="Only plots whose centre is inside this area.")
@o.chip_size()
@click.option("--min-valid", type=float, default=0.99, show_default=True, help="Imagery must cover this share of a plot.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--merge", "merge", type=click.Path(path_type=Path), default=None,
              help="Add the reviewed chips of a `landuse review` folder to --out.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out folder (when building from imagery).")
@click.pass_context
def command(ctx: click.Context, imagery: tuple[Path, ...], labels: Path | None, out: Path, mapping: Path | None,
            purity: float, per_class: int | None, aoi: Path | None, chip_size: str, min_valid: float, seed: int,
            merge: Path | None, overwrite: bool) -> None:
    """Label plots of IMAGERY from a land-cover raster; write tag folders of chips and index.geojson."""
    from landuse.api import dataset

    res = dataset(out, imagery, labels=labels, mapping=mapping, purity=purity, per_class=per_class, aoi=aoi,
                  chip_size=int(chip_size), min_valid=min_valid, seed=seed, merge=merge, overwrite=overwrite)
    o.echo_unless_quiet(ctx, res.describe())
