"""`landuse predict MODEL IMAGE...`: tag / probability per image, like the portal's Quick Test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from landuse.cli import options as o


@click.command("predict")
@click.argument("model")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top", type=click.IntRange(min=1), default=None, help="Show only the N most probable tags.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (Custom Vision's tagName / probability).")
@o.threads
def command(model: str, images: tuple[Path, ...], top: int | None, as_json: bool, threads: int | None) -> None:
    """Classify IMAGE files (PNG, JPEG, BMP, GeoTIFF) with MODEL ('default', an export zip / folder, .onnx
    or py:module:factory).

    Each image is resized (bilinear) to the model's input size and classified whole.
    """
    from landuse.api import predict

    res = predict(model, images, top=top, threads=threads)
    if as_json:
        doc = {"model": res.model, "images": [p.to_dict() for p in res.images]}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for p in res.images:
        t = Table(title=p.file, title_justify="left")
        t.add_column("Tag")
        t.add_column("Probability", justify="right")
        for tag, prob in p.tags:
            t.add_row(tag, f"{100.0 * prob:.1f}%")
        console.print(t)
