"""`landuse train DATASET_DIR --backend local --out MODEL_DIR`: transfer learning + Custom Vision export."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from landuse.errors import InputError


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100.0 * v:.1f}%"


def _print_metrics(title: str, m: dict) -> None:
    click.echo(f"{title}: accuracy {_pct(m.get('accuracy'))}, precision {_pct(m.get('precision'))}, "
               f"recall {_pct(m.get('recall'))}, mAP {_pct(m.get('map'))}")
    for t in m.get("per_tag", []):
        click.echo(f"  {t['tag']:<16} P {_pct(t['precision']):>7}  R {_pct(t['recall']):>7}  "
                   f"AP {_pct(t['ap']):>7}  ({t['images']} images)")


@click.command("train")
@click.argument("dataset_dir", type=click.Path(path_type=Path))
@click.option("--backend", type=click.Choice(["local", "customvision"]), default="local", show_default=True,
              help="local: transfer learning on this CPU (the 'train' extra); customvision: upload, train, "
                   "publish and export in Azure Custom Vision (LANDUSE_CV_TRAINING_* settings, the 'cloud' extra).")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="Model folder to write (Custom Vision export layout).")
@click.option("--epochs", type=int, default=10, show_default=True, help="Epochs (the first is a head warm-up).")
@click.option("--folds", type=int, default=0, show_default=True,
              help="K-fold cross-validation (>= 2), then a final model on all images.")
@click.option("--val-split", type=float, default=0.2, show_default=True,
              help="Held-out fraction per tag for early stopping when --folds is not given.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--int8", is_flag=True, help="Also quantise (static QDQ int8); export it if within 1 point of fp32.")
@click.option("--image-size", type=int, default=224, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--freeze-blocks", type=int, default=15, show_default=True,
              help="EfficientNet-Lite0 MBConv blocks (of 16) kept frozen at ImageNet weights.")
@click.option("--threads", type=int, default=2, show_default=True, help="torch / onnxruntime threads (1-2).")
@click.option("--report", "report", type=click.Path(path_type=Path), default=None,
              help="Write the full training report (JSON) here.")
@click.option("--project", help="Custom Vision: project name (created when missing).")
@click.option("--classification", type=click.Choice(["Multiclass", "Multilabel"]), default="Multiclass",
              show_default=True, help="Custom Vision: classification type of a new project.")
@click.option("--domain", default=None, help="Custom Vision: domain name (a compact one, so it can be exported).")
@click.option("--tier", type=click.Choice(["F0", "S0"]), default="S0", show_default=True,
              help="Custom Vision: pricing tier (training calls per second).")
@click.option("--threshold", type=float, default=0.5, show_default=True,
              help="Custom Vision: probability threshold of the performance table.")
@click.option("--publish-name", default="production", show_default=True, help="Custom Vision: published iteration name.")
@click.option("--no-publish", is_flag=True, help="Custom Vision: do not publish the iteration.")
@click.option("--no-export", is_flag=True, help="Custom Vision: do not export / download the ONNX model.")
@click.option("--init", "init", default=None,
              help="Adapt this model (a folder made by landuse, or 'default') instead of training from "
                   "scratch: refit its head and unknown-flag statistics on its own training features plus "
                   "DATASET_DIR's labels (as few as 3 per tag; new tags allowed). No torch needed; seconds.")
@click.option("--label-weight", type=click.FloatRange(min=0.0, min_open=True), default=None,
              help="--init: weight of each new label relative to a base training plot (default: the new "
                   "labels weigh as much in total as the base data, at most 20).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out folder.")
def command(dataset_dir: Path, backend: str, out: Path, epochs: int, folds: int, val_split: float,
            seed: int, int8: bool, image_size: int, batch_size: int, freeze_blocks: int, threads: int, report: Path | None,
            project: str | None, classification: str, domain: str | None, tier: str, threshold: float,
            publish_name: str, no_publish: bool, no_export: bool, init: str | None,
            label_weight: float | None, overwrite: bool) -> None:
    """Train a classifier from DATASET_DIR (one folder per tag) and export it to --out."""
    from landuse.api import CVTrainOptions, TrainOptions, train

    if init is not None:
        cmd = "landuse " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else None
        res = train(dataset_dir, out, init=init, label_weight=label_weight, overwrite=overwrite,
                    progress=click.echo, command=cmd).report
        click.echo(f"adapted {res['base']} with {sum(res['added'].values())} labels "
                   f"({', '.join(f'{t} {n}' for t, n in res['added'].items())}) -> {out}: tags "
                   f"{', '.join(res['labels'])}; {res['seconds']:.1f} s")
        return

    if backend == "customvision":
        if not project:
            raise InputError("--backend customvision needs --project NAME (the Custom Vision project to create or reuse)")
        cv = CVTrainOptions(project=project, classification_type=classification, tier=tier, threshold=threshold,
                            publish_name=publish_name, publish=not no_publish, export=not no_export)
        if domain:
            cv.domain = domain
        train(dataset_dir, out, backend="customvision", customvision=cv, overwrite=overwrite, progress=click.echo)
        return
    opts = TrainOptions(epochs=epochs, folds=folds, val_split=val_split, seed=seed, int8=int8, image_size=image_size,
                        batch_size=batch_size, freeze_blocks=freeze_blocks, threads=threads)
    cmd = "landuse " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else None
    rep = train(dataset_dir, out, options=opts, report=report, overwrite=overwrite, progress=click.echo,
                command=cmd).report
    section = rep.get("cv") or rep.get("validation")
    if section:
        kind = f"{rep['cv']['folds']}-fold cross-validation" if "cv" in rep else "validation split"
        _print_metrics(f"{kind}, fp32", section["fp32"])
        if "int8" in section:
            _print_metrics(f"{kind}, int8", section["int8"])
        shifts = section.get("colour_shift_accuracy")
        if shifts:
            click.echo("accuracy under colour / blur shifts: "
                       + ", ".join(f"{k} {_pct(v)}" for k, v in shifts.items()))
    if rep.get("int8_decision"):
        click.echo(rep["int8_decision"])
    click.echo(f"wrote {rep['precision']} model to {out}")
    if report is not None:
        click.echo(f"report: {report}")
    else:
        click.echo(json.dumps({"out": str(out), "precision": rep["precision"]}))
