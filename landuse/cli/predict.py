"""`landuse predict MODEL IMAGE...`: tag / probability per image, like the portal's Quick Test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np


@click.command("predict")
@click.argument("model")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top", type=click.IntRange(min=1), default=None, help="Show only the N most probable tags.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (Custom Vision's tagName / probability).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="onnxruntime threads (default 1).")
def command(model: str, images: tuple[Path, ...], top: int | None, as_json: bool, threads: int | None) -> None:
    """Classify IMAGE files (PNG, JPEG, BMP, GeoTIFF) with MODEL ('default', an export zip / folder or .onnx).

    Each image is resized (bilinear) to the model's input size and classified whole.
    """
    from landuse.classify.base import load_classifier
    from landuse.classify.unknown import method_of, predict_with_unknown
    from landuse.training.dataset import load_image

    clf = load_classifier(model, **({"threads": threads} if threads else {}))
    size = tuple(clf.input_size)
    outs = [predict_with_unknown(clf, np.stack([load_image(p, size=size) for p in images[i:i + 32]]))
            for i in range(0, len(images), 32)]
    probs = np.concatenate([o[0] for o in outs])
    scores = np.concatenate([o[1] for o in outs])
    um = method_of(clf)
    results = []
    for path, row, sc in zip(images, probs, scores, strict=True):
        order = np.argsort(-row, kind="stable")[: top or len(row)]
        results.append({
            "file": str(path),
            "predictions": [{"tagName": clf.labels[i], "probability": round(float(row[i]), 6)} for i in order],
            "unknown": {"score": round(float(sc), 6), "flagged": bool(sc > um.threshold)},
        })
    if as_json:
        doc = {"model": {"id": clf.model_id, "hash": clf.model_hash, "backend": clf.backend},
               "unknown_method": um.to_dict(), "images": results}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for res in results:
        unk = res["unknown"]
        note = (f"  [bold]unknown[/bold]: like none of the model's classes (score {unk['score']:.3f} > "
                f"{um.threshold:.3f}, {um.name})" if unk["flagged"] else "")
        t = Table(title=str(res["file"]) + note, title_justify="left")
        t.add_column("Tag")
        t.add_column("Probability", justify="right")
        for p in res["predictions"]:
            t.add_row(p["tagName"], f"{100.0 * p['probability']:.1f}%")
        console.print(t)
