"""A multinomial logistic-regression head on pooled features (numpy only).

Fitted by full-batch Nesterov gradient descent on standardised features with an L2 penalty
(a convex problem: the result does not depend on a seed). Per-sample weights let a few dozen
new labels count against hundreds of base-model plots (``train --init``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LinearHead:
    """``probs = softmax(features @ weight.T + bias)`` in raw feature units."""

    weight: np.ndarray  # float32 (classes, features)
    bias: np.ndarray  # float32 (classes,)

    def logits(self, feats: np.ndarray) -> np.ndarray:
        return np.asarray(feats, np.float32) @ self.weight.T + self.bias

    def probs(self, feats: np.ndarray) -> np.ndarray:
        return softmax(self.logits(feats))


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def fit_head(
    feats: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    l2: float = 1e-2,
    sample_weight: np.ndarray | None = None,
    class_balanced: bool = True,
    iterations: int = 300,
) -> LinearHead:
    """Fit a softmax head to ``feats`` (N, F) with labels ``y`` (N,) in ``0..n_classes-1``.

    ``l2`` is the penalty on the standardised weights (per unit of the mean sample weight);
    ``class_balanced`` weights every class equally in total.
    """
    x = np.asarray(feats, np.float64)
    y = np.asarray(y, np.int64)
    n, f = x.shape
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64).copy()
    if class_balanced:
        for c in range(n_classes):
            m = y == c
            if m.any():
                w[m] *= (n / n_classes) / w[m].sum()
    w = w / w.mean()
    mu = x.mean(axis=0)
    sd = x.std(axis=0) + 1e-3
    z = (x - mu) / sd
    onehot = np.eye(n_classes)[y]
    big_w = np.zeros((f, n_classes))
    b = np.zeros(n_classes)
    vw, vb = np.zeros_like(big_w), np.zeros_like(b)
    # step 1/L, L = 0.5 * largest eigenvalue of z' diag(w) z / n (power iteration) + l2
    v = np.ones(f) / np.sqrt(f)
    for _ in range(30):
        v = z.T @ (w * (z @ v)) / n
        lam = float(np.linalg.norm(v))
        v /= lam
    lip = 0.5 * lam + l2
    lr = 1.0 / lip
    for t in range(iterations):
        mom = t / (t + 3)
        lw, lb = big_w + mom * vw, b + mom * vb
        p = softmax(z @ lw + lb).astype(np.float64)
        g = (p - onehot) * w[:, None] / n
        gw = z.T @ g + l2 * lw
        gb = g.sum(axis=0)
        vw = mom * vw - lr * gw
        vb = mom * vb - lr * gb
        big_w, b = big_w + vw, b + vb
    weight = (big_w / sd[:, None]).T
    bias = b - (mu / sd) @ big_w
    return LinearHead(weight.astype(np.float32), bias.astype(np.float32))
