"""Agreement of a local model and a Custom Vision endpoint on one random sample of plots
(``landuse parity``): label agreement, probability differences, the plots that disagree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np

from landuse import defaults
from landuse.errors import InputError, OutputExistsError
from landuse.results import Disagreement, ParityReport


def parity(
    imagery: Sequence[str | Path],
    *,
    model: str | Path = defaults.MODEL,
    endpoint: str | None = None,
    project_id: str | None = None,
    published_name: str | None = None,
    config: str | Path | None = None,
    sample: int = 50,
    seed: int = 0,
    min_valid: float = defaults.MIN_VALID,
    bands: Sequence[int] | str | None = None,
    tier: Literal["F0", "S0"] | None = None,
    tps: float | None = None,
    json_out: str | Path | None = None,
    overwrite: bool = False,
) -> ParityReport:
    """Classify a random sample of the imagery's plots (valid fraction >= ``min_valid``) with
    ``model`` locally and through the Custom Vision endpoint: label agreement, probability
    differences and the disagreeing plots (``json_out``: also written there). The endpoint's tags
    are checked before any plot is sent. ``landuse.parity`` is this function."""
    if json_out is not None and Path(json_out).exists() and not overwrite:
        raise OutputExistsError(f"{json_out} exists; pass `overwrite=True` to replace it")
    rep = _agreement([str(p) for p in imagery], str(model), endpoint, project_id, published_name,
                     None if config is None else str(config), sample, seed, min_valid, bands, tier, tps)
    if json_out is None:
        return rep
    from landuse.report.files import write_json

    path = Path(json_out)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, rep.to_dict())
    return replace(rep, path=path)


def _agreement(imagery: list[str], model: str, endpoint: str | None, project_id: str | None,
               published_name: str | None, config: str | None, sample: int, seed: int, min_valid: float,
               bands: Sequence[int] | str | None, tier: str | None, tps: float | None) -> ParityReport:
    from landuse.classify.base import decide, load_classifier
    from landuse.classify.customvision import load_customvision
    from landuse.grid import PlotGrid
    from landuse.imagery import Scene

    if not 0 < min_valid <= 1:
        raise InputError(f"min_valid {min_valid} is outside (0, 1]; give e.g. 0.9", param="min_valid")
    if sample < 1:
        raise InputError(f"sample {sample} must be at least 1", param="sample")
    scene = Scene.open(list(imagery), bands=bands)
    grid = PlotGrid.from_footprints(list(scene.footprints()))
    local = load_classifier(model)
    labels = [lab for lab in local.labels if lab != "Negative"]
    cloud = load_customvision(
        config, endpoint=endpoint, project_id=project_id, published_name=published_name,
        tier=tier, tps=tps, labels=tuple(labels), input_size=tuple(local.input_size),
    )
    cloud.check_tags()  # fails before any plot is sent if the endpoint lacks a class

    coverage = np.asarray(scene.coverage(grid))
    rows, cols = np.nonzero(coverage >= min_valid)
    if rows.size == 0:
        raise InputError(f"no plot of {', '.join(imagery)} has a valid fraction >= {min_valid}; lower min_valid", param="min_valid")
    rng = np.random.default_rng(seed)
    order = rng.permutation(rows.size)
    size = int(local.input_size[0])
    picked: list[tuple[int, int]] = []
    pixels = []
    for i in order:
        if len(picked) == sample:
            break
        px, mask = scene.read_plot(grid, int(rows[i]), int(cols[i]), pixels=size)
        if float(np.mean(mask)) >= min_valid:
            picked.append((int(rows[i]), int(cols[i])))
            pixels.append(px)
    if not picked:
        raise InputError(f"no sampled plot reached a valid fraction of {min_valid}; lower min_valid", param="min_valid")
    batch = np.stack(pixels).astype(np.uint8)
    index = [list(local.labels).index(lab) for lab in labels]
    p_local = np.asarray(local.predict(batch), dtype=np.float32)[:, index]
    p_cloud = cloud.predict(batch)
    multilabel = bool(getattr(local, "multilabel", False))
    win_l, win_c = decide(p_local, multilabel), decide(p_cloud, multilabel)
    diff = np.abs(p_local - p_cloud)

    def name(i: int) -> str | None:
        return labels[i] if i >= 0 else None

    return ParityReport(
        model=str(getattr(local, "model_id", model)),
        endpoint=str(cloud.model_id),
        plots=len(picked),
        agreement=float(np.mean(win_l == win_c)),
        mean_abs_prob_diff=float(diff.mean()),
        max_abs_prob_diff=float(diff.max()),
        labels=labels,
        disagreements=[
            Disagreement(grid.plot_id(*picked[i]), name(int(win_l[i])), float(p_local[i].max()),
                         name(int(win_c[i])), float(p_cloud[i].max()))
            for i in np.flatnonzero(win_l != win_c)
        ],
    )
