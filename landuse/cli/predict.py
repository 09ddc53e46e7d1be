"""`landuse predict MODEL IMAGE...`: tag / probability per image, like the portal's Quick Test."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from landuse.cli import options as o


@click.command("predict")
@click.argument("model")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top", type=click.IntRange(min=1), default=None, help="Show only the N most probable tags.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (Custom Vision's tagName / probability).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: file, top_tag, probability, prob_<tag> for every tag.")
@o.threads
def command(model: str, images: tuple[Path, ...], top: int | None, as_json: bool, as_csv: bool, threads: int | None) -> None:
    """Classify IMAGE files (PNG, JPEG, BMP, GeoTIFF) with MODEL ('default', an export zip / folder, .onnx
    or py:module:factory).

    Each image is resized (bilinear) to the model's input size and classified whole.
    """
    from landuse.api import predict
    from landuse.errors import InputError
    from landuse.report.predictions import (
        prediction_csv,
        prediction_json,
        prediction_rows,
        prediction_table,
    )

    if as_json and as_csv:
        raise InputError("--json and --csv both given; choose one")
    res = predict(model, images, top=top, threads=threads)
    if as_json:
        sys.stdout.write(prediction_json(res.images, res.model))
        return
    if as_csv:
        sys.stdout.write(prediction_csv(res.images, res.labels))
        return
    from rich.console import Console

    rows = prediction_rows(res.images)
    need = sum(max(len(r[i]) for r in rows) for i in range(4)) + 24  # a row per image, never wrapped
    Console(width=max(shutil.get_terminal_size((100, 20)).columns, need)).print(prediction_table(res.images))
