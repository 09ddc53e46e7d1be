"""The linear-head recipe: frozen ImageNet features + a logistic-regression head, and its
adaptation to new labels (``landuse train DATASET --init MODEL``).

A model folder made here is a Custom Vision-layout export plus two sidecars:

* ``landuse_model.json`` — the ground sample distance the model expects, the unknown-flag method
  and threshold (chosen on held-out training plots only), the recipe, the training images'
  sha256, and (for adapted models) the base model and the labels added;
* ``features.npz`` — the pooled features of the training plots' views (float16), their tag
  index, view name and image sha256: what the unknown flag compares plots with and what
  adaptation refits the head on (a user has the model, not the base model's images).

Adaptation never needs torch: the head is a ``Gemm`` whose weights are replaced in the ONNX graph
(the int8 trunk stays as shipped); features of the new chips come from the model's own
``features`` output.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import platform
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from landuse.classify.unknown import (
    CANOPY_GREEN_MIN,
    KnnScorer,
    canopy_evidence,
    canopy_share,
    green_share,
)
from landuse.errors import InputError, ModelError, OutputExistsError
from landuse.training.head import LinearHead, fit_head

log = logging.getLogger(__name__)

LANDUSE_FILE = "landuse_model.json"
FEATURES_FILE = "features.npz"


@dataclass(frozen=True)
class LinearRecipe:
    """What the default model is fitted with (chosen in benchmarks/bench_recipes.py)."""

    views: tuple[str, ...] = ("clean",)
    l2: float = 1.0
    knn_k: int = 5
    unknown_quantile: float = 0.98  # share of held-out training plots NOT flagged (kNN distance)
    folds: int = 5
    seed: int = 0
    gsd_m: float = 1.0
    stored_views: tuple[str, ...] = ("clean",)  # kept in features.npz
    knn_flag: bool = False  # measured: the kNN distance says "another county" (bench_recipes.py)
    canopy_quantile: float = 0.98
    canopy_scale: int = 4  # texture read on 4 x 4 box-averaged plots (bench_model_heldout.py, model card)
    # 7-bit int8 weights: 8-bit ones saturate onnxruntime's U8S8 kernels on x86 CPUs without VNNI,
    # so features (and labels) depended on the user's CPU (benchmarks/bench_int8_cpu.py)
    int8_reduce_range: bool = True
    # training-plot weights (training_weights; benchmarks/bench_recipe_weights.py, model card):
    # plots of ``open_space_class`` more than ``open_space_green_max`` green vegetation (NLCD
    # "Developed, open space": parks, sports fields, golf courses) weigh ``open_space_weight`` -- in
    # RGB they are grassland, and they are the nearest training plots of the real farmland the
    # unweighted head called Developed; within each class every county (``group_of``) weighs the
    # same (Developed is the one class present in both training counties)
    open_space_class: str | None = "Developed"
    open_space_green_max: float = 0.4
    open_space_weight: float = 0.0
    group_balanced: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


_GROUP = re.compile(r"_([a-z]{2}\d{3})_")


def group_of(name: str) -> str:
    """The county of a training image from its file name (AerialSmall / NAIP style ``..._ca025_...``:
    state and county FIPS code), or ``""`` when the name carries none."""
    m = _GROUP.search(name.lower())
    return m.group(1) if m else ""


def training_weights(x: np.ndarray, y: np.ndarray, tags: Sequence[str], groups: np.ndarray | None,
                     recipe: LinearRecipe) -> np.ndarray:
    """Per-plot weights of the head's training plots (uint8 ``x``, tag index ``y``):
    ``open_space_weight`` for open-space plots of ``recipe.open_space_class`` (more than
    ``open_space_green_max`` of their pixels green), 1 for the others; then, with
    ``group_balanced``, every group (county) of a class scaled to the same total weight.
    float32 (N,); ``fit_head`` still weighs every class the same."""
    w = np.ones(len(y), np.float64)
    cls = recipe.open_space_class
    if cls is not None and cls in tags and recipe.open_space_green_max < 1.0:
        c = list(tags).index(cls)
        w[(y == c) & (green_share(x) > recipe.open_space_green_max)] = recipe.open_space_weight
    if recipe.group_balanced and groups is not None:
        for c in np.unique(y):
            kept = (y == c) & (w > 0)
            names = np.unique(groups[kept])
            if len(names) < 2:
                continue
            share = w[kept].sum() / len(names)
            for g in names:
                m = kept & (groups == g)
                w[m] *= share / w[m].sum()
    return w.astype(np.float32)


def view_images(x: np.ndarray, view: str, seed: int = 0) -> np.ndarray:
    """uint8 plots ``x`` under one named training view: ``clean``, ``rot90``, ``flip``, ``resN``
    (N m resolution), ``blurS`` (Gaussian blur, sigma S pixels)."""
    from landuse.training.features import degrade_resolution

    if view == "clean":
        return x
    if view == "rot90":
        return np.ascontiguousarray(np.rot90(x, 1, axes=(1, 2)))
    if view == "flip":
        return np.ascontiguousarray(x[:, :, ::-1])
    if view.startswith("res"):
        return degrade_resolution(x, float(view[3:]))
    if view.startswith("blur"):
        from PIL import Image, ImageFilter

        sigma = float(view[4:])
        return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(i)).filter(ImageFilter.GaussianBlur(sigma)))
                         for i in x])
    raise InputError(f"unknown training view {view!r}; use clean, rot90, flip, resN or blurS")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def calibrate_threshold(feats_by_view: dict[str, np.ndarray], y: np.ndarray, recipe: LinearRecipe,
                        ref_views: Sequence[str]) -> tuple[float, np.ndarray]:
    """Unknown threshold: the ``unknown_quantile`` of out-of-fold kNN scores of clean training plots
    (each fold scored against the other folds' reference views). Returns (threshold, scores)."""
    from landuse.training.local import stratified_folds

    fold = stratified_folds(y, recipe.folds, recipe.seed)
    scores = np.zeros(len(y), np.float32)
    for k in range(recipe.folds):
        tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        knn = KnnScorer.fit(np.concatenate([feats_by_view[v][tr] for v in ref_views]), k=recipe.knn_k)
        scores[te] = knn.score(feats_by_view["clean"][te])
    return float(np.quantile(scores, recipe.unknown_quantile)), scores


def replace_head(src: Path, dst: Path, head: LinearHead, labels: Sequence[str]) -> Path:
    """Copy ONNX model ``src`` to ``dst`` with the last Gemm's weights set to ``head``."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    g = model.graph
    gemms = [n for n in g.node if n.op_type == "Gemm"]
    if not gemms:
        raise ModelError(f"model {src} has no linear head (Gemm) to refit; adapt a model made by landuse train")
    node = gemms[-1]
    inits = {i.name: i for i in g.initializer}
    if node.input[1] not in inits or len(node.input) < 3 or node.input[2] not in inits:
        raise ModelError(f"the head of model {src} is not a plain Gemm with constant weights; re-export it")
    trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
    w = head.weight if trans_b else head.weight.T
    inits[node.input[1]].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(w, np.float32), node.input[1]))
    inits[node.input[2]].CopyFrom(numpy_helper.from_array(head.bias.astype(np.float32), node.input[2]))
    for out in g.output:
        if out.name == "model_output":
            out.type.tensor_type.shape.dim[1].dim_value = len(labels)
    del g.value_info[:]  # shapes after the head change with the class count; onnxruntime re-infers
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst


def features_npz(feats: np.ndarray, y: np.ndarray, views: np.ndarray, sha: np.ndarray,
                 tags: Sequence[str], weight: np.ndarray | None = None) -> bytes:
    """The ``features.npz`` bytes (compressed; features float16)."""
    buf = io.BytesIO()
    np.savez_compressed(
        buf, features=feats.astype(np.float16), y=y.astype(np.int16), view=views.astype("U8"),
        sha256=sha.astype("U64"), tags=np.array(list(tags), dtype="U64"),
        weight=(np.ones(len(y), np.float32) if weight is None else weight.astype(np.float32)),
    )
    return buf.getvalue()


def landuse_meta(recipe: LinearRecipe, threshold: float | None, tags: Sequence[str], sha: Sequence[str],
                 canopy_threshold: float | None = None, **extra: Any) -> dict[str, Any]:
    """The ``landuse_model.json`` content (``threshold``: the kNN distance threshold)."""
    parts = []
    if threshold is not None:
        parts.append(f"mean cosine distance to the {recipe.knn_k} nearest training-plot features above "
                     f"{threshold:.4g} (the {recipe.unknown_quantile:.0%} quantile of held-out training plots)")
    if canopy_threshold is not None:
        parts.append(f"green textured (tree canopy) pixels on more than {canopy_threshold:.3g} of a plot "
                     f"more than {CANOPY_GREEN_MIN:.0%} green (the {recipe.canopy_quantile:.0%} quantile of the "
                     "training plots' canopy share)")
    return {
        "schema": 1,
        "gsd_m": recipe.gsd_m,
        "labels": list(tags),
        "features_output": "features",
        "unknown": {
            "method": "features",
            "k": recipe.knn_k,
            "threshold": 1.0,
            "knn_threshold": threshold,
            "canopy_threshold": canopy_threshold,
            "canopy_green_min": CANOPY_GREEN_MIN,
            "canopy_scale": recipe.canopy_scale,
            "quantile": recipe.unknown_quantile,
            "reference": FEATURES_FILE,
            "description": ("model statistics: " + "; or ".join(parts)
                            + "; score = the larger evidence / its threshold, unknown above 1"
                            + "; plus open water by NDWI where the imagery has a NIR band"),
        },
        "recipe": {k: v for k, v in asdict(recipe).items() if k != "extra"},
        "training_images_sha256": sorted(set(sha)),
        **extra,
    }


# ------------------------------------------------------------------------------- adaptation


@dataclass
class AdaptResult:
    """What ``train --init`` made."""

    out: Path
    labels: list[str]
    base: str
    added: dict[str, int]
    new_weight: float
    threshold: float | None  # canopy threshold of the adapted model
    seconds: float
    heldout_flagged: float
    report: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        return d


def adapt_model(
    dataset_dir: str | Path,
    out_dir: str | Path,
    init: str | Path | None = None,
    *,
    label_weight: float | None = None,
    min_per_tag: int = 3,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
    command: str | None = None,
) -> AdaptResult:
    """Refit the head (and the unknown-flag statistics) of ``init`` on its own training features
    plus the labelled chips of ``dataset_dir`` (tag-per-folder; new tags allowed).

    Each new chip counts ``label_weight`` times a base training view (default: so the new labels
    weigh as much in total as the base data, capped at 20x a base plot). Chips are used as given,
    rotated 90 degrees and flipped. ``unknown`` / ``skip`` folders are not tags.
    """
    from landuse import __version__
    from landuse.classify.base import load_classifier, sha256_file
    from landuse.classify.onnx import OnnxClassifier
    from landuse.training.dataset import TagDataset, load_image
    from landuse.training.export import write_export

    t0 = time.perf_counter()
    say = progress or (lambda m: log.info(m))
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise OutputExistsError(f"model folder {out_dir} exists; pass `overwrite=True` or choose another `out`")
    base = load_classifier(init)
    if not isinstance(base, OnnxClassifier) or base.features_name is None:
        raise ModelError(
            f"model {base.model_id} has no features output; `init` needs a model made by landuse "
            f"(the default, or one adapted from it with `init`)"
        )
    stored = base.training_features()
    base_meta = dict(base.landuse_meta)
    recorded: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v)  # JSON from the model folder
                                for k, v in base_meta.get("recipe", {}).items() if k in LinearRecipe.__dataclass_fields__}
    recorded.setdefault("canopy_scale", base_meta.get("unknown", {}).get("canopy_scale", 1))  # older models: 1
    recorded.setdefault("int8_reduce_range", False)  # models recorded before the field were 8-bit
    recipe = LinearRecipe(**recorded)
    ds = TagDataset.open(dataset_dir, min_per_tag=min_per_tag, ignore=("unknown", "skip"))
    base_tags = [str(t) for t in stored["tags"]]
    tags = base_tags + [t for t in ds.tags if t not in base_tags]
    say(ds.balance_report())
    x = np.stack([load_image(p, base.input_size) for p, _ in ds.items])
    y_new = np.array([tags.index(t) for _, t in ds.items], np.int64)
    sha_new = np.array([sha256_file(p) for p, _ in ds.items])
    new_views = ("clean", "rot90", "flip")
    feats_new = {}
    for v in new_views:
        _, f = base._run(view_images(x, v), with_features=True)
        feats_new[v] = f
    say(f"features of {len(x)} chips x {len(new_views)} views ({time.perf_counter() - t0:.1f} s)")

    fb = stored["features"].astype(np.float32)
    yb = stored["y"].astype(np.int64)
    wb = stored["weight"].astype(np.float32) if "weight" in stored else np.ones(len(yb), np.float32)
    vb = stored["view"]
    n_base_plots = int((vb == "clean").sum())
    if label_weight is None:
        label_weight = float(min(20.0, max(1.0, n_base_plots / max(len(x), 1))))
    fn = np.concatenate([feats_new[v] for v in new_views])
    yn = np.tile(y_new, len(new_views))
    wn = np.full(len(yn), label_weight, np.float32)
    feats = np.concatenate([fb, fn])
    y = np.concatenate([yb, yn])
    w = np.concatenate([wb, wn])
    head = fit_head(feats, y, len(tags), l2=recipe.l2, sample_weight=w)

    # unknown threshold: out-of-fold over base + new clean plots, reference = every stored view
    views_all = np.concatenate([vb, np.repeat(np.array(new_views), len(x))])
    per_view = {}
    for v in np.unique(views_all):
        per_view[str(v)] = feats[views_all == v]
    y_clean = y[views_all == "clean"]
    ref_views = [v for v in per_view if len(per_view[v]) == len(y_clean)]
    knn_thr, oof = calibrate_threshold(per_view, y_clean, recipe, ref_views)
    thr = knn_thr if recipe.knn_flag else None
    # tree canopy: the labels may show that canopy is one of the tags now (e.g. Forested)
    base_canopy = base_meta.get("unknown", {}).get("canopy_threshold")
    canopy_new = canopy_evidence(x, CANOPY_GREEN_MIN, recipe.canopy_scale)
    canopy_thr = (max(float(base_canopy), float(canopy_new.max()) + 1e-3)
                  if base_canopy is not None else None)
    flagged = (oof > knn_thr) if recipe.knn_flag else np.zeros(len(oof), bool)
    say(f"head refitted on {len(yb)} base + {len(yn)} new views (weight {label_weight:g}); "
        f"canopy threshold {canopy_thr}")

    work = Path(tempfile.mkdtemp(prefix="landuse-adapt-"))
    try:
        onnx_file = replace_head(Path(base._src.model_name), work / "model.onnx", head, tags)
        sha_all = np.concatenate([stored["sha256"], np.tile(sha_new, len(new_views))])
        (work / FEATURES_FILE).write_bytes(features_npz(feats, y, views_all, sha_all, tags, w))
        runs = _runs_of(Path(dataset_dir))
        added = {t: int((y_new == i).sum()) for i, t in enumerate(tags) if (y_new == i).any()}
        provenance_extra = {
            "base_model": {"id": str(base.model_id), "sha256": base.model_hash,
                           "labels": base_tags},
            "labels_added": {"dataset": str(Path(dataset_dir).resolve()), "counts": added,
                             "weight": label_weight, "runs": runs},
        }
        meta = landuse_meta(recipe, thr, tags, sha_all.tolist(), canopy_thr, **provenance_extra,
                            base_training=base_meta.get("training", {}))
        (work / LANDUSE_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        provenance = {
            **(base.manifest.get("Training") or {}),
            "toolkit": "landuse", "toolkit_version": __version__, "python": platform.python_version(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": command,
            "adapted_from": provenance_extra["base_model"], "labels_added": provenance_extra["labels_added"],
            "run_id": sha256_bytes(json.dumps([base.model_hash, sorted(sha_new.tolist()), label_weight]).encode())[:16],
        }
        provenance.pop("metrics", None)
        write_export(out_dir, onnx_file, tags, base.input_size[0], provenance, overwrite,
                     extra_files={FEATURES_FILE: work / FEATURES_FILE, LANDUSE_FILE: work / LANDUSE_FILE})
    finally:
        for leftover in work.iterdir():
            leftover.unlink()
        work.rmdir()
    secs = time.perf_counter() - t0
    say(f"adapted model written to {out_dir} in {secs:.1f} s")
    return AdaptResult(out_dir, tags, str(base.model_id), added, label_weight, canopy_thr, round(secs, 2),
                       float(flagged.mean()))


def _runs_of(dataset: Path) -> list[str]:
    """The runs named in a labelled dataset's ``labels.csv`` (the labelling page's index)."""
    import csv

    index = dataset / "labels.csv"
    if not index.is_file():
        return []
    with open(index, newline="", encoding="utf-8") as f:
        return sorted({row.get("run", "") for row in csv.DictReader(f) if row.get("run")})


# ------------------------------------------------------------------------------- the base model


@dataclass(frozen=True)
class FittedRecipe:
    """What :func:`fit_recipe` fits on a set of training plots: the head and the unknown statistics."""

    head: LinearHead
    canopy_threshold: float  # the recipe's quantile of the training plots' canopy share
    knn_threshold: float  # the recipe's quantile of out-of-fold kNN distances (used when knn_flag)
    knn_oof: np.ndarray  # those out-of-fold distances
    knn: KnnScorer | None  # the reference set, when the recipe flags by kNN distance
    recipe: LinearRecipe
    weights: np.ndarray  # the head's per-plot training weights (training_weights)

    def unknown_scores(self, x: np.ndarray, feats: np.ndarray | None = None) -> np.ndarray:
        """The exported model's unknown score of uint8 plots ``x`` (features ``feats`` for the kNN
        evidence): what ``OnnxClassifier.predict_unknown`` computes from ``landuse_model.json``."""
        score = canopy_evidence(x, CANOPY_GREEN_MIN, self.recipe.canopy_scale) / self.canopy_threshold
        if self.knn is not None and feats is not None:
            score = np.maximum(score, self.knn.score(feats) / self.knn_threshold)
        return score.astype(np.float32)


def fit_recipe(x: np.ndarray, feats: dict[str, np.ndarray], y: np.ndarray, tags: Sequence[str],
               recipe: LinearRecipe, groups: np.ndarray | None = None) -> FittedRecipe:
    """Fit the recipe on training plots ``x`` (uint8) with features per training view ``feats``
    (``clean`` required), tag index ``y`` into ``tags`` and county per plot ``groups``: the head
    (weighted by :func:`training_weights`), the canopy threshold (the ``canopy_quantile`` of the
    plots' canopy share) and the kNN threshold. The one code path of the shipped model
    (:func:`build_linear_model`) and of the held-out benchmarks."""
    weights = training_weights(x, y, tags, groups, recipe)
    fx = np.concatenate([feats[v] for v in recipe.views])
    fy = np.tile(y, len(recipe.views))
    head = fit_head(fx, fy, len(tags), l2=recipe.l2, sample_weight=np.tile(weights, len(recipe.views)))
    stored = [v for v in recipe.stored_views if v in feats]
    knn_thr, oof = calibrate_threshold(feats, y, recipe, stored)
    canopy_thr = float(np.quantile(canopy_share(x, recipe.canopy_scale), recipe.canopy_quantile))
    knn = KnnScorer.fit(np.concatenate([feats[v] for v in stored]), k=recipe.knn_k) if recipe.knn_flag else None
    return FittedRecipe(head, canopy_thr, knn_thr, oof, knn, recipe, weights)



def build_linear_model(
    dataset_dir: str | Path,
    out_dir: str | Path,
    recipe: LinearRecipe | None = None,
    *,
    int8: bool = False,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
    command: str | None = None,
    exclude: Callable[[str], bool] | None = None,
    fp32_preprocessing: bool = False,
) -> dict[str, Any]:
    """Fit the linear-head recipe on ``dataset_dir`` and export it (with its sidecars) to ``out_dir``.

    With ``int8`` the trunk is quantised first and every feature (head fitting, unknown
    statistics) comes from the int8 graph that ships; fp32 figures are reported beside it.
    ``exclude(file_name)`` drops images (e.g. for leave-county-out checks). ``fp32_preprocessing``
    keeps the in-graph stretch unquantised (see ``landuse.training.quantize``). Returns a report.
    """
    from landuse import __version__
    from landuse.classify.base import sha256_file
    from landuse.training.dataset import TagDataset, load_image
    from landuse.training.export import write_export
    from landuse.training.features import export_linear_model
    from landuse.training.local import calibration_set, dataset_hash
    from landuse.training.quantize import quantize_int8

    recipe = recipe or LinearRecipe()
    t0 = time.perf_counter()
    say = progress or (lambda m: log.info(m))
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise OutputExistsError(f"model folder {out_dir} exists; pass `overwrite=True` or choose another `out`")
    ds = TagDataset.open(dataset_dir)
    items = [(p, t) for p, t in ds.items if not (exclude and exclude(p.name))]
    tags = list(ds.tags)
    x = np.stack([load_image(p, (224, 224)) for p, _ in items])
    y = np.array([tags.index(t) for _, t in items], np.int64)
    sha = np.array([sha256_file(p) for p, _ in items])
    work = Path(tempfile.mkdtemp(prefix="landuse-linear-"))
    try:
        fp32 = export_linear_model(work / "fp32.onnx", np.zeros((len(tags), 1280), np.float32),
                                   np.zeros(len(tags), np.float32), "landuse-default", __version__)
        graph = fp32
        if int8:
            graph = quantize_int8(fp32, work / "int8.onnx", calibration_set(x, 64, recipe.seed),
                                  fp32_preprocessing=fp32_preprocessing, reduce_range=recipe.int8_reduce_range)
        feats = {v: _graph_features(graph, view_images(x, v, recipe.seed)) for v in recipe.views}
        say(f"features of {len(x)} plots x {len(recipe.views)} views ({time.perf_counter() - t0:.0f} s)")
        groups = np.array([group_of(p.name) for p, _ in items])
        fitted = fit_recipe(x, feats, y, tags, recipe, groups)
        head, knn_thr, oof, canopy_thr = fitted.head, fitted.knn_threshold, fitted.knn_oof, fitted.canopy_threshold
        stored = [v for v in recipe.stored_views if v in feats]
        thr = knn_thr if recipe.knn_flag else None
        flagged = fitted.unknown_scores(x, feats["clean"]) > 1.0
        say(f"head fitted; canopy threshold {canopy_thr:.3g}, kNN {knn_thr:.4g} "
            f"({'used' if recipe.knn_flag else 'not used'}); {flagged.mean():.1%} of training plots flagged")
        final = replace_head(graph, work / "model.onnx", head, tags)
        views = np.repeat(np.array(stored), len(y))
        (work / FEATURES_FILE).write_bytes(features_npz(
            np.concatenate([feats[v] for v in stored]), np.tile(y, len(stored)), views,
            np.tile(sha, len(stored)), tags, np.tile(fitted.weights, len(stored))))
        meta = landuse_meta(recipe, thr, tags, sha.tolist(), canopy_thr,
                            knn_heldout_quantiles={str(q): float(np.quantile(oof, q)) for q in (0.9, 0.95, 0.98, 0.99, 1.0)},
                            training={"dataset": str(dataset_dir), "counts": {t: int((y == i).sum()) for i, t in enumerate(tags)}})
        (work / LANDUSE_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        provenance = {
            "toolkit": "landuse", "toolkit_version": __version__, "python": platform.python_version(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": command,
            "dataset": {"path": str(dataset_dir), "counts": {t: int((y == i).sum()) for i, t in enumerate(tags)},
                        "sha256": dataset_hash(ds)},
            "backbone": "EfficientNet-Lite0, ImageNet weights (efficientnet-lite0-57934424.pth), frozen",
            "head": f"multinomial logistic regression on the 1280 pooled features, L2 {recipe.l2:g}",
            "preprocessing": "RGB 0-255 in, (x - 127) / 128 inside the graph, stretch to 224x224, no crop",
            "precision": ("int8" + (" (stretch fp32)" if fp32_preprocessing else "")
                          + (" (7-bit weights)" if recipe.int8_reduce_range else "")) if int8 else "fp32",
            "recipe": {k: v for k, v in asdict(recipe).items() if k != "extra"},
            "gsd_m": recipe.gsd_m,
            "unknown": meta["unknown"],
            "run_id": sha256_bytes(json.dumps([recipe.seed, dataset_hash(ds), __version__]).encode())[:16],
        }
        write_export(out_dir, final, tags, 224, provenance, overwrite,
                     extra_files={FEATURES_FILE: work / FEATURES_FILE, LANDUSE_FILE: work / LANDUSE_FILE})
        return {"out": str(out_dir), "threshold": thr, "canopy_threshold": canopy_thr,
                "heldout_flagged": float(flagged.mean()), "knn_threshold": knn_thr,
                "seconds": round(time.perf_counter() - t0, 1), "n": len(y), "head": head,
                "fp32_path": None}
    finally:
        for f in work.iterdir():
            f.unlink()
        work.rmdir()


def _graph_features(path: Path, x: np.ndarray, batch: int = 32) -> np.ndarray:
    """The ``features`` output of ONNX model ``path`` on uint8 plots ``x``."""
    import onnxruntime as ort

    from landuse.training.local import prepare_eval

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(["features"], {"data": prepare_eval(x[i : i + batch])})[0]
                           for i in range(0, len(x), batch)]).astype(np.float32)
