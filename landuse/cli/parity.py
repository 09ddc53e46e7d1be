"""``landuse parity``: one sample of plots through a local model and a Custom Vision endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import click

from landuse.errors import InputError, OutputExistsError


@click.command("parity")
@click.argument("imagery", nargs=-1, required=True)
@click.option("--model", default="default", show_default=True, help="Local model: export zip/folder, .onnx, 'default' or py:module:factory.")
@click.option("--endpoint", default=None, help="Custom Vision endpoint (or a `landuse serve` URL); default $LANDUSE_CV_ENDPOINT.")
@click.option("--project-id", default=None, help="Default $LANDUSE_CV_PROJECT_ID.")
@click.option("--published-name", default=None, help="Default $LANDUSE_CV_PUBLISHED_NAME.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help="Custom Vision config file (TOML/YAML).")
@click.option("--sample", default=50, show_default=True, type=click.IntRange(1), help="Plots to compare.")
@click.option("--seed", default=0, show_default=True, type=int, help="Sampling seed.")
@click.option("--min-valid", default=0.9, show_default=True, type=float, help="Smallest valid-pixel fraction of a sampled plot.")
@click.option("--bands", default=None, help="Source bands for R,G,B (1-based), e.g. 1,2,3.")
@click.option("--tier", type=click.Choice(["F0", "S0"]), default=None, help="Quota tier of the endpoint (default S0).")
@click.option("--tps", type=float, default=None, help="Calls per second instead of the tier's quota.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the report here.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --json file.")
def command(
    imagery: tuple[str, ...],
    model: str,
    endpoint: str | None,
    project_id: str | None,
    published_name: str | None,
    config_path: str | None,
    sample: int,
    seed: int,
    min_valid: float,
    bands: str | None,
    tier: str | None,
    tps: float | None,
    json_out: Path | None,
    overwrite: bool,
) -> None:
    """Classify a random sample of IMAGERY's plots with --model locally and through the Custom
    Vision endpoint; report label agreement, mean / max probability difference and the plots
    that disagree. The key comes from $LANDUSE_CV_PREDICTION_KEY or the config file."""
    import numpy as np

    from landuse.classify.base import decide
    from landuse.classify.customvision import load_customvision
    from landuse.grid import PlotGrid
    from landuse.imagery import Scene
    from landuse.serve import load_served_model

    if json_out is not None and json_out.exists() and not overwrite:
        raise OutputExistsError(f"{json_out} exists; pass --overwrite to replace it")
    if not 0 < min_valid <= 1:
        raise InputError(f"--min-valid {min_valid} is outside (0, 1]; give e.g. 0.9")
    band_list = [int(b) for b in bands.split(",")] if bands else None
    scene = Scene.open(list(imagery), bands=band_list)
    grid = PlotGrid.from_footprints(list(scene.footprints()))
    local = load_served_model(model)
    labels = [lab for lab in local.labels if lab != "Negative"]
    cloud = load_customvision(
        config_path, endpoint=endpoint, project_id=project_id, published_name=published_name,
        tier=tier, tps=tps, labels=tuple(labels), input_size=tuple(local.input_size),
    )
    cloud.check_tags()  # fails before any plot is sent if the endpoint lacks a class

    coverage = np.asarray(scene.coverage(grid))
    rows, cols = np.nonzero(coverage >= min_valid)
    if rows.size == 0:
        raise InputError(f"no plot of {', '.join(imagery)} has a valid fraction >= {min_valid}; lower --min-valid")
    rng = np.random.default_rng(seed)
    order = rng.permutation(rows.size)
    size = int(local.input_size[0])
    picked, pixels = [], []
    for i in order:
        if len(picked) == sample:
            break
        px, mask = scene.read_plot(grid, int(rows[i]), int(cols[i]), pixels=size)
        if float(np.mean(mask)) >= min_valid:
            picked.append((int(rows[i]), int(cols[i])))
            pixels.append(px)
    if not picked:
        raise InputError(f"no sampled plot reached a valid fraction of {min_valid}; lower --min-valid")
    batch = np.stack(pixels).astype(np.uint8)
    index = [list(local.labels).index(lab) for lab in labels]
    p_local = np.asarray(local.predict(batch), dtype=np.float32)[:, index]
    p_cloud = cloud.predict(batch)
    multilabel = bool(getattr(local, "multilabel", False))
    win_l, win_c = decide(p_local, multilabel), decide(p_cloud, multilabel)
    diff = np.abs(p_local - p_cloud)
    disagree = np.flatnonzero(win_l != win_c)

    def name(i: int) -> str | None:
        return labels[i] if i >= 0 else None

    report = {
        "model": str(getattr(local, "model_id", model)),
        "endpoint": cloud.model_id,
        "plots": len(picked),
        "agreement": float(np.mean(win_l == win_c)),
        "mean_abs_prob_diff": float(diff.mean()),
        "max_abs_prob_diff": float(diff.max()),
        "labels": labels,
        "disagreements": [
            {
                "plot_id": grid.plot_id(*picked[i]),
                "local": name(int(win_l[i])),
                "local_prob": float(p_local[i].max()),
                "endpoint": name(int(win_c[i])),
                "endpoint_prob": float(p_cloud[i].max()),
            }
            for i in disagree
        ],
    }
    click.echo(
        f"{report['plots']} plots: label agreement {report['agreement']:.1%}, probability difference "
        f"mean {report['mean_abs_prob_diff']:.2e} max {report['max_abs_prob_diff']:.2e}"
    )
    for d in report["disagreements"]:
        click.echo(f"  {d['plot_id']}: local {d['local']} ({d['local_prob']:.3f}) vs endpoint {d['endpoint']} ({d['endpoint_prob']:.3f})")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        tmp = json_out.with_name(json_out.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=2))
        tmp.replace(json_out)
