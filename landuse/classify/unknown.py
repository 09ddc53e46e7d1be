"""The out-of-class ("unknown") flag: a plot that resembles none of the model's classes.

Two methods, said in every run summary (``unknown_method``):

* ``features`` — our own exports carry a ``features`` output (pooled ImageNet features) and, in
  ``landuse_model.json`` + ``features.npz``, the features of the model's training plots (clean
  and augmented views). Two pieces of evidence, each divided by its threshold (chosen on the
  training plots only, at a stated quantile), and the score is the larger: the mean cosine
  distance of a plot's features to its ``k`` nearest training features (:class:`KnnScorer`),
  and the share of green, textured pixels on mostly green plots (:func:`canopy_evidence`, tree
  canopy in RGB). A plot is unknown when its score is above 1. Where the imagery has a near-infrared band, plots mostly open
  water by NDWI are flagged too (:func:`water_share`).
* ``probability threshold`` — Custom Vision exports and the cloud backend carry no features:
  score = 1 - top probability, flagged when the top probability is below
  :data:`FALLBACK_MIN_PROBABILITY`. Much weaker (a confident wrong class is not flagged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from landuse import status

if TYPE_CHECKING:
    from landuse.classify.base import Classifier

UNKNOWN_LABEL = "unknown"
UNKNOWN_STATUS = status.UNKNOWN  # the plot status (landuse.status)
UNKNOWN_CLASS_VALUE = 254  # classes.tif pixel value of an unknown plot (255 = not classified)
FALLBACK_MIN_PROBABILITY = 0.5
# NIR evidence: a plot whose pixels are NDWI > WATER_NDWI on more than WATER_SHARE of its area
WATER_NDWI = 0.2  # measured on the ND NAIP: fallow soil sits at 0-0.1, open water well above
WATER_SHARE = 0.5


@dataclass(frozen=True)
class KnnScorer:
    """Mean cosine distance to the ``k`` nearest reference features (standardised per feature)."""

    reference: np.ndarray  # float32 (M, F), standardised and L2-normalised
    mean: np.ndarray  # float32 (F,)
    scale: np.ndarray  # float32 (F,)
    k: int = 5

    @classmethod
    def fit(cls, feats: np.ndarray, k: int = 5) -> KnnScorer:
        """Scorer with ``feats`` (M, F) as the reference set."""
        f = np.asarray(feats, np.float32)
        mean = f.mean(axis=0)
        scale = f.std(axis=0) + 1e-3
        return cls(_unit((f - mean) / scale), mean.astype(np.float32), scale.astype(np.float32), int(k))

    def score(self, feats: np.ndarray, batch: int = 256) -> np.ndarray:
        """float32 (N,) scores of ``feats`` (N, F); higher = farther from the training plots."""
        f = _unit((np.asarray(feats, np.float32) - self.mean) / self.scale)
        out = np.empty(len(f), np.float32)
        k = min(self.k, len(self.reference))
        for i in range(0, len(f), batch):
            sim = f[i : i + batch] @ self.reference.T
            top = np.partition(sim, sim.shape[1] - k, axis=1)[:, -k:]
            out[i : i + batch] = 1.0 - top.mean(axis=1)
        return out


CANOPY_GREEN_MIN = 0.5  # canopy evidence counts only on plots mostly green (forest, not leafy suburbs)
GREEN_EXCESS = 12  # a pixel is green vegetation when 2G - R - B exceeds this (canopy, open-space weights)


def canopy_evidence(batch: np.ndarray, green_min: float = CANOPY_GREEN_MIN, scale: int = 1) -> np.ndarray:
    """:func:`canopy_share` where more than ``green_min`` of the plot is green, else 0 (both read
    on the plot box-averaged by ``scale``)."""
    return _canopy(box_down(batch, scale), green_min)


def canopy_share(batch: np.ndarray, scale: int = 1) -> np.ndarray:
    """Share of each uint8 RGB plot's pixels that are green (2G - R - B > 12) and textured
    (brightness differs from its 4-neighbour mean by more than 3 grey levels), read on the plot
    box-averaged by ``scale``: tree canopy reads so; fields, lawns and desert are smooth or not
    green. At ``scale`` 4 (4 m pixels) tree crowns stay textured while 1 m crop rows smooth out.
    float32 (N,)."""
    return _canopy(box_down(batch, scale), None)


def green_share(batch: np.ndarray) -> np.ndarray:
    """Share of each uint8 RGB plot's pixels that are green vegetation (2G - R - B > 12, the canopy
    evidence's green). float32 (N,)."""
    out = np.empty(len(batch), np.float32)
    for i, plot in enumerate(batch):  # one plot at a time: int16 planes of one plot only
        r, g, b = (plot[..., k].astype(np.int16) for k in range(3))
        out[i] = float(((g + g - r - b) > GREEN_EXCESS).mean())
    return out


def box_down(batch: np.ndarray, scale: int) -> np.ndarray:
    """uint8 (N, H, W, 3) plots box-averaged by ``scale`` (H, W cropped to a multiple of it)."""
    if scale <= 1:
        return batch
    n, h, w = batch.shape[:3]
    h, w = h - h % scale, w - w % scale
    # sums of whole rows, then of column groups, in uint16 (<= 255 x scale^2), by slice adds:
    # 13x faster than a mean over the two strided axes, and the same values (exact integer sums,
    # one float32 division, round half to even as np.rint)
    r = batch[:, :h, :w, :3].reshape(n, h // scale, scale, w * 3)
    rows = r[:, :, 0].astype(np.uint16)
    for k in range(1, scale):
        rows += r[:, :, k]
    c = rows.reshape(n, h // scale, w // scale, scale, 3)
    sums = c[:, :, :, 0].copy()
    for k in range(1, scale):
        sums += c[:, :, :, k]
    out = sums.astype(np.float32)
    out /= np.float32(scale * scale)
    return np.rint(out).astype(np.uint8)


def _canopy(batch: np.ndarray, green_min: float | None) -> np.ndarray:
    """Both canopy measures in one pass: contiguous int16 band planes, in-place arithmetic, and
    the texture only of plots more than ``green_min`` green (all plots where None). It runs on
    every classified plot, so it is written for speed (3x the plain numpy expression, same values)."""
    n, h, w = batch.shape[:3]
    out = np.zeros(n, np.float32)
    if n == 0 or h < 3 or w < 3:
        return out
    r, g, b = (batch[..., k].astype(np.int16) for k in range(3))
    greenness = g + g
    greenness -= r
    greenness -= b
    green = greenness > GREEN_EXCESS
    if green_min is not None:
        sel = np.flatnonzero(green.mean(axis=(1, 2)) > green_min)
        if sel.size == 0:
            return out
        if sel.size < n:
            r, g, b, green = r[sel], g[sel], b[sel], green[sel]
    else:
        sel = np.arange(n)
    v = r
    v += g
    v += b  # 3 x brightness
    lap = v[:, 1:-1, 1:-1] * 4
    lap -= v[:, :-2, 1:-1]
    lap -= v[:, 2:, 1:-1]
    lap -= v[:, 1:-1, :-2]
    lap -= v[:, 1:-1, 2:]
    np.abs(lap, out=lap)
    tex = lap > 36  # |brightness - neighbour mean| > 3, in units of 12 x brightness
    tex &= green[:, 1:-1, 1:-1]
    out[sel] = tex.sum(axis=(1, 2)) / float(h * w)
    return out


def _unit(a: np.ndarray) -> np.ndarray:
    return (a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-12)).astype(np.float32)


def water_share(green: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """Share of each plot's pixels with NDWI = (G - NIR) / (G + NIR) above :data:`WATER_NDWI`.

    ``green`` / ``nir``: uint8 (N, H, W) of the same plots.
    """
    g = green.astype(np.float32)
    n = nir.astype(np.float32)
    ndwi = (g - n) / np.maximum(g + n, 1.0)
    return (ndwi > WATER_NDWI).mean(axis=(1, 2)).astype(np.float32)


@dataclass(frozen=True)
class UnknownMethod:
    """How a classifier's unknown scores are computed and thresholded."""

    name: str  # "features" or "probability threshold"
    threshold: float  # a plot is unknown when its score > threshold
    description: str

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.name, "threshold": self.threshold, "description": self.description}


FALLBACK = UnknownMethod(
    "probability threshold",
    1.0 - FALLBACK_MIN_PROBABILITY,
    f"probability threshold: flagged when the top probability is below {FALLBACK_MIN_PROBABILITY:g} "
    "(the model carries no training features; a confidently wrong class is not flagged)",
)


def method_of(model: Classifier) -> UnknownMethod:
    """The unknown method a classifier supports (its own, else the probability fallback)."""
    m = getattr(model, "unknown_method", None)
    return m if isinstance(m, UnknownMethod) else FALLBACK


def predict_with_unknown(model: Classifier, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, unknown scores) of uint8 RGB ``batch`` with ``model``'s method."""
    fn = getattr(model, "predict_unknown", None)
    if callable(fn) and isinstance(getattr(model, "unknown_method", None), UnknownMethod):
        probs, scores = fn(batch)
        return probs, scores
    probs = model.predict(batch)
    return probs, (1.0 - probs.max(axis=1)).astype(np.float32)
