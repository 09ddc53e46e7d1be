"""`landuse evaluate MODEL DATASET_DIR`: precision / recall / AP per tag, like Custom Vision's Performance page."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from landuse import defaults
from landuse.cli import options as o
from landuse.training.evaluate import Evaluation


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:.1f}%"


def render(ev: Evaluation, max_mistakes: int = 20) -> None:
    """Print the evaluation as rich tables on stdout."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]{ev.model.get('id', '')}[/bold] on {ev.dataset}: {ev.images} images, "
        f"probability threshold {ev.threshold:g}"
    )
    t = Table(title="Performance per tag")
    for col in ("Tag", "Images", "Precision", "Recall", "AP"):
        t.add_column(col, justify="left" if col == "Tag" else "right")
    for m in ev.per_tag:
        t.add_row(m.tag, str(m.images), _pct(m.precision), _pct(m.recall), _pct(m.ap))
    t.add_section()
    t.add_row("[bold]overall[/bold]", str(ev.images), _pct(ev.precision), _pct(ev.recall),
              f"{_pct(ev.map)} (mAP)")
    console.print(t)
    console.print(f"Top-tag accuracy: {_pct(ev.accuracy)}")
    if ev.unknown:
        console.print(f"Flagged unknown: {ev.unknown['flagged']} of {ev.images} "
                      f"({_pct(ev.unknown['share_flagged'])}; {ev.unknown['description']})")
    if ev.trained_on.get("recorded"):
        note = " - these figures are not a test of generalisation" if ev.trained_on["images"] else ""
        console.print(f"Trained on: {ev.trained_on['images']} of these {ev.images} images were the "
                      f"model's own training images{note}")
    elif ev.trained_on:
        console.print("Trained on: the model records no training-image hashes (cannot tell overlap)")

    cm = Table(title="Confusion matrix (rows: truth, columns: top tag)")
    cm.add_column("truth \\ predicted")
    for lab in ev.labels:
        cm.add_column(lab, justify="right")
    for lab, row in zip(ev.labels, ev.confusion, strict=True):
        cm.add_row(lab, *(str(v) for v in row))
    console.print(cm)

    if ev.mistakes:
        mt = Table(title=f"Mistakes ({len(ev.mistakes)}, most confident first)")
        for col in ("File", "Truth", "Predicted", "Probability"):
            mt.add_column(col, justify="right" if col == "Probability" else "left")
        for mk in ev.mistakes[:max_mistakes]:
            mt.add_row(mk.file, mk.truth, mk.predicted, _pct(mk.probability))
        console.print(mt)
        if len(ev.mistakes) > max_mistakes:
            console.print(f"... and {len(ev.mistakes) - max_mistakes} more (all of them with --json)")
    else:
        console.print("No mistakes.")


@click.command("evaluate")
@click.argument("model")
@click.argument("dataset_dir", type=click.Path(path_type=Path))
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=defaults.THRESHOLD, show_default=True,
              help="Probability a tag needs to count as predicted (for precision / recall).")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Images per inference call.")
@o.threads
@click.option("--mistakes", "max_mistakes", type=click.IntRange(min=0), default=20, show_default=True,
              help="Mistakes listed on the terminal.")
def command(model: str, dataset_dir: Path, threshold: float, as_json: bool, batch_size: int,
            threads: int | None, max_mistakes: int) -> None:
    """Evaluate MODEL ('default', an export zip / folder or .onnx) on DATASET_DIR (a folder per tag).

    Per tag precision and recall at --threshold, AP (non-interpolated area under the
    precision/recall curve), overall precision / recall / mAP, confusion matrix and mistakes.
    """
    from landuse.api import evaluate

    ev = evaluate(model, dataset_dir, threshold=threshold, batch_size=batch_size, threads=threads)
    if as_json:
        sys.stdout.write(json.dumps(ev.to_dict(), indent=2) + "\n")
    else:
        render(ev, max_mistakes)
