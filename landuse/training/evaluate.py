"""Evaluation of a classifier the way Custom Vision's Performance page reports it.

Definitions (``../shared/reference/customvision.md`` section 5):

* per tag, an image is a *predicted positive* when that tag's probability >= ``threshold``;
  precision = TP / (TP + FP) (0 when the tag is never predicted), recall = TP / (TP + FN)
  (undefined - ``None`` in JSON - for a tag with no images);
* overall precision / recall are pooled over tags: sum of TP over sum of TP + FP (or TP + FN);
* AP of a tag is the area under its precision / recall curve obtained by ranking all images
  by that tag's probability. Interpolation: **none** - the step-wise sum
  ``AP = sum_k (R_k - R_{k-1}) * P_k`` over the distinct probability values taken as
  thresholds (tied probabilities form one step), with ``R_0 = 0``; this is the definition of
  scikit-learn's ``average_precision_score``. AP does not depend on ``threshold``.
* mAP is the mean AP over tags that have at least one image;
* accuracy and the confusion matrix use the top tag (argmax) of each image; rows are the
  truth, columns the prediction, both in ``labels`` order; a *mistake* is an image whose top
  tag is not its truth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from landuse.errors import DatasetError, InputError

if TYPE_CHECKING:
    from landuse.classify.base import Classifier


@dataclass
class TagMetrics:
    """Precision, recall and AP of one tag."""

    tag: str
    images: int  # images whose truth is this tag
    predicted: int  # images whose probability for this tag >= threshold
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float | None
    ap: float | None


@dataclass
class Mistake:
    """An image whose top tag is not its truth."""

    file: str
    truth: str
    predicted: str
    probability: float  # of the predicted tag
    truth_probability: float


@dataclass
class Evaluation:
    """Everything ``landuse evaluate`` reports."""

    labels: list[str]
    threshold: float
    images: int
    per_tag: list[TagMetrics]
    precision: float
    recall: float | None
    map: float | None
    accuracy: float | None
    confusion: list[list[int]]
    mistakes: list[Mistake] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    dataset: str = ""
    unknown: dict[str, Any] = field(default_factory=dict)  # share flagged, method, threshold
    trained_on: dict[str, Any] = field(default_factory=dict)  # evaluated images that trained the model

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN never appears: undefined values are ``None``)."""
        return asdict(self)


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Non-interpolated AP of one tag: ``sum_k (R_k - R_{k-1}) * P_k`` over distinct thresholds.

    ``None`` when there is no positive image.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    if n_pos == 0:
        return None
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], positive[order]
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # end of each run of equal scores
    tp, fp = tp[last], fp[last]
    precision = tp / (tp + fp)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def evaluate_predictions(
    probs: np.ndarray,
    truth_idx: np.ndarray | Sequence[int],
    labels: Sequence[str],
    threshold: float = 0.5,
    files: Sequence[str] | None = None,
) -> Evaluation:
    """Metrics of probabilities ``(N, C)`` against true label indices ``(N,)`` (pure numpy).

    ``files`` (optional, N names) label the mistakes; without them mistakes are named by row.
    """
    probs = np.asarray(probs, dtype=np.float64)
    truth = np.asarray(truth_idx, dtype=np.int64)
    labels = list(labels)
    c = len(labels)
    if probs.ndim != 2 or probs.shape[1] != c:
        raise InputError(f"probabilities shaped {probs.shape} do not match {c} labels; pass (N, {c})")
    if truth.shape != (probs.shape[0],):
        raise InputError(f"{truth.shape} truth indices for {probs.shape[0]} rows of probabilities; pass one per row")
    if truth.size and (truth.min() < 0 or truth.max() >= c):
        raise InputError(f"truth indices must lie in 0..{c - 1}; got {truth.min()}..{truth.max()}")
    if not 0.0 <= threshold <= 1.0:
        raise InputError(f"threshold {threshold} is outside 0..1; pass a probability such as 0.5")
    if files is not None and len(files) != probs.shape[0]:
        raise InputError(f"{len(files)} file names for {probs.shape[0]} rows; pass one per row")

    onehot = truth[:, None] == np.arange(c)[None, :]
    hit = probs >= threshold
    per_tag: list[TagMetrics] = []
    aps: list[float] = []
    for j, tag in enumerate(labels):
        tp = int(np.sum(hit[:, j] & onehot[:, j]))
        fp = int(np.sum(hit[:, j] & ~onehot[:, j]))
        fn = int(np.sum(~hit[:, j] & onehot[:, j]))
        n = int(onehot[:, j].sum())
        ap = average_precision(probs[:, j], onehot[:, j])
        if ap is not None:
            aps.append(ap)
        per_tag.append(TagMetrics(
            tag=tag, images=n, predicted=tp + fp, tp=tp, fp=fp, fn=fn,
            precision=tp / (tp + fp) if tp + fp else 0.0,
            recall=tp / n if n else None, ap=ap,
        ))
    tp_all = sum(t.tp for t in per_tag)
    fp_all = sum(t.fp for t in per_tag)
    fn_all = sum(t.fn for t in per_tag)

    top = probs.argmax(axis=1) if probs.shape[0] else np.zeros(0, dtype=np.int64)
    confusion = np.zeros((c, c), dtype=np.int64)
    np.add.at(confusion, (truth, top), 1)
    mistakes = []
    for i in np.flatnonzero(top != truth):
        mistakes.append(Mistake(
            file=str(files[int(i)]) if files is not None else str(i),
            truth=labels[int(truth[i])], predicted=labels[int(top[i])],
            probability=float(probs[i, top[i]]), truth_probability=float(probs[i, truth[i]]),
        ))
    mistakes.sort(key=lambda m: -m.probability)
    n_img = int(probs.shape[0])
    return Evaluation(
        labels=labels, threshold=float(threshold), images=n_img, per_tag=per_tag,
        precision=tp_all / (tp_all + fp_all) if tp_all + fp_all else 0.0,
        recall=tp_all / (tp_all + fn_all) if tp_all + fn_all else None,
        map=float(np.mean(aps)) if aps else None,
        accuracy=float(np.mean(top == truth)) if n_img else None,
        confusion=confusion.tolist(), mistakes=mistakes,
    )


def match_tags(tags: Sequence[str], labels: Sequence[str], where: str) -> dict[str, int]:
    """Map dataset tags to model label indices (exact, else case-insensitive); DatasetError if absent."""
    exact = {lab: i for i, lab in enumerate(labels)}
    folded: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        folded.setdefault(lab.casefold(), []).append(i)
    out: dict[str, int] = {}
    missing = []
    for tag in tags:
        if tag in exact:
            out[tag] = exact[tag]
        elif len(folded.get(tag.casefold(), [])) == 1:
            out[tag] = folded[tag.casefold()][0]
        else:
            missing.append(tag)
    if missing:
        raise DatasetError(
            f"tag folders {', '.join(missing)} of {where} are not labels of the model "
            f"({', '.join(labels)}); rename the folders or use a model trained on these tags"
        )
    return out


def evaluate_dataset(
    classifier: Classifier,
    dataset_dir: str | Path,
    threshold: float = 0.5,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Run ``classifier`` over a folder-per-tag dataset and evaluate it.

    Images are read at the classifier's input size (bilinear). Dataset tags must be labels of
    the model; model labels without a folder are reported with no images.
    """
    from landuse.training.dataset import TagDataset, load_image

    ds = dataset_dir if isinstance(dataset_dir, TagDataset) else TagDataset.open(dataset_dir, min_per_tag=1)
    mapping = match_tags(ds.tags, classifier.labels, str(ds.root))
    truth = np.array([mapping[tag] for _, tag in ds.items], dtype=np.int64)
    n = len(ds.items)
    from landuse.classify.base import sha256_file
    from landuse.classify.unknown import method_of, predict_with_unknown

    probs = np.empty((n, len(classifier.labels)), dtype=np.float32)
    scores = np.empty(n, dtype=np.float32)
    height, width = classifier.input_size
    size = (int(height), int(width))
    for start in range(0, n, batch_size):
        chunk = ds.items[start:start + batch_size]
        batch = np.stack([load_image(p, size=size) for p, _ in chunk])
        probs[start:start + len(chunk)], scores[start:start + len(chunk)] = predict_with_unknown(classifier, batch)
        if progress is not None:
            progress(start + len(chunk), n)
    files = [str(p.relative_to(ds.root)) for p, _ in ds.items]
    ev = evaluate_predictions(probs, truth, classifier.labels, threshold, files=files)
    um = method_of(classifier)
    flagged = scores > um.threshold
    ev.unknown = {**um.to_dict(), "flagged": int(flagged.sum()), "share_flagged": float(flagged.mean()) if n else None,
                  "flagged_files": [f for f, k in zip(files, flagged, strict=True) if k]}
    known = getattr(classifier, "training_sha256", None)
    if known:
        seen = [f for (p, _), f in zip(ds.items, files, strict=True) if sha256_file(p) in known]
        ev.trained_on = {"recorded": True, "images": len(seen), "of": n, "files": seen}
    else:
        ev.trained_on = {"recorded": False, "images": None, "of": n, "files": []}
    ev.dataset = str(ds.root)
    ev.model = {
        "id": getattr(classifier, "model_id", ""),
        "hash": getattr(classifier, "model_hash", ""),
        "backend": getattr(classifier, "backend", ""),
    }
    return ev
