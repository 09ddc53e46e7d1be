"""Local transfer learning on CPU: EfficientNet-Lite0 (ImageNet) -> a Custom Vision-layout export.

Recipe (chosen for generalising across imagery, not for the last point of cross-validation):
1. head warm-up: backbone frozen (eval mode), only the new classifier trains;
2. fine-tune the whole network at a low learning rate (AdamW, cosine decay, label smoothing);
3. augmentations that hold across sensors / counties / seasons: 90-degree rotations, flips, small
   scale jitter, strong brightness / contrast / saturation / hue / gamma / per-channel gain jitter,
   occasional per-image auto-contrast or grayscale, Gaussian blur and noise;
4. with a validation split: keep the epoch with the lowest validation loss (early stopping);
   with k folds: every fold reports out-of-fold probabilities, then a final model is trained on
   all images for the median best epoch count.

Everything is seeded (numpy + torch generators). torch is imported inside functions only.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from landuse.errors import InputError, OutputExistsError
from landuse.training.dataset import TagDataset, load_image

log = logging.getLogger(__name__)

AUGMENTATIONS = (
    "rot90 (k=0..3)",
    "horizontal flip (p=0.5)",
    "scale jitter: random crop 80-100 % of the side, resized back (p=0.7)",
    "brightness x U(0.6, 1.4)",
    "contrast x U(0.6, 1.4)",
    "saturation x U(0.4, 1.6)",
    "hue rotation U(-0.08, 0.08) turn",
    "per-channel gain U(0.85, 1.15) (white balance)",
    "gamma U(0.7, 1.4)",
    "per-image auto-contrast (p=0.15)",
    "grayscale (p=0.1)",
    "Gaussian blur sigma U(0.3, 1.8) (p=0.35)",
    "Gaussian noise sigma U(0, 6) (p=0.25)",
)


@dataclass
class TrainConfig:
    """Hyper-parameters of a local training run."""

    epochs: int = 10
    warmup_epochs: int = 1
    batch_size: int = 32
    lr_head: float = 2e-3
    lr_backbone: float = 3e-4
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    freeze_blocks: int = 15  # stem + this many MBConv blocks stay frozen (ImageNet, BN in eval mode)
    views: int = 4  # augmentation draws per image pushed through the frozen trunk (cached)
    image_size: int = 224
    seed: int = 0
    folds: int = 0  # > 1: k-fold cross-validation then a final model on all data
    val_split: float = 0.2  # used when folds <= 1
    int8: bool = False
    threads: int = 2
    augment: bool = True
    min_per_tag: int = 5
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise InputError on values that cannot train."""
        if self.epochs < 1:
            raise InputError(f"`epochs` {self.epochs} must be >= 1")
        if self.folds == 1 or self.folds < 0:
            raise InputError(f"`folds` {self.folds} must be 0 (use `val_split`) or >= 2")
        if self.folds == 0 and not 0.0 <= self.val_split < 0.9:
            raise InputError(f"`val_split` {self.val_split} must be in [0, 0.9)")
        if self.image_size < 32:
            raise InputError(f"`image_size` {self.image_size} must be >= 32")
        if not 0 <= self.freeze_blocks <= 16:
            raise InputError(f"freeze_blocks {self.freeze_blocks} must be in 0..16 (EfficientNet-Lite0 has 16 blocks)")
        if not 1 <= self.threads <= 2:
            raise InputError(f"`threads` {self.threads} must be 1 or 2 (the machine is shared)")


# ---------------------------------------------------------------------------------------------
# data


def load_arrays(ds: TagDataset, size: int) -> tuple[np.ndarray, np.ndarray]:
    """All images of ``ds`` as uint8 ``(N, size, size, 3)`` plus tag indices ``(N,)``."""
    x = np.stack([load_image(p, (size, size)) for p, _ in ds.items])
    return x, ds.labels_index()


def dataset_hash(ds: TagDataset) -> str:
    """sha256 over (tag, file name, file content) of every item, in order."""
    h = hashlib.sha256()
    for path, tag in ds.items:
        h.update(f"{tag}/{path.name}\n".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def stratified_folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold index (0..k-1) per item, each class spread evenly over the folds (seeded)."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    offset = 0
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        fold[idx] = (np.arange(len(idx)) + offset) % k
        offset += len(idx)
    return fold


# ---------------------------------------------------------------------------------------------
# augmentation (batched, on float tensors in 0-255)


def augment_batch(x: Any, gen: Any, image_size: int) -> Any:
    """Augment a uint8 ``[B,H,W,3]`` tensor -> float ``[B,3,S,S]`` RGB 0-255 (seeded by ``gen``)."""
    import torch
    import torch.nn.functional as F

    b = x.shape[0]

    def u(lo: float, hi: float, n: int = b) -> torch.Tensor:
        return torch.rand(n, generator=gen) * (hi - lo) + lo

    def p(prob: float) -> torch.Tensor:
        return torch.rand(b, generator=gen) < prob

    x = x.permute(0, 3, 1, 2).float()
    out = []
    ks = torch.randint(0, 4, (b,), generator=gen)
    flips = p(0.5)
    crops = p(0.7)
    scales = u(0.8, 1.0)
    pos = torch.rand(b, 2, generator=gen)
    for i in range(b):
        img = x[i]
        if crops[i]:
            h, w = img.shape[1:]
            ch, cw = max(8, int(round(h * scales[i].item()))), max(8, int(round(w * scales[i].item())))
            top, left = int(pos[i, 0] * (h - ch)), int(pos[i, 1] * (w - cw))
            img = img[:, top : top + ch, left : left + cw]
        if img.shape[1:] != (image_size, image_size):
            img = F.interpolate(img[None], size=(image_size, image_size), mode="bilinear",
                                align_corners=False, antialias=True)[0]
        img = torch.rot90(img, int(ks[i]), dims=(1, 2))
        if flips[i]:
            img = img.flip(2)
        out.append(img)
    x = torch.stack(out) / 255.0

    # per-image auto-contrast (stretch each channel's 1-99 % range), then grayscale
    ac = p(0.15)
    if ac.any():
        sub = x[ac].flatten(2)
        lo = sub.quantile(0.01, dim=2, keepdim=True)
        hi = sub.quantile(0.99, dim=2, keepdim=True)
        x[ac] = ((sub - lo) / (hi - lo).clamp_min(1e-3)).clamp(0, 1).view_as(x[ac])
    gray_w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    g = p(0.1)
    if g.any():
        x[g] = (x[g] * gray_w).sum(1, keepdim=True).expand(-1, 3, -1, -1)

    v = lambda t: t.view(b, 1, 1, 1)  # noqa: E731
    x = x * v(u(0.6, 1.4))  # brightness
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * v(u(0.6, 1.4)) + mean  # contrast
    gray = (x * gray_w).sum(1, keepdim=True)
    x = gray + (x - gray) * v(u(0.4, 1.6))  # saturation
    x = _hue_rotate(x, u(-0.08, 0.08))
    x = x * (torch.rand(b, 3, 1, 1, generator=gen) * 0.3 + 0.85)  # per-channel gain
    x = x.clamp(0, 1) ** v(u(0.7, 1.4))  # gamma

    bl = p(0.35)
    if bl.any():
        x[bl] = _gaussian_blur(x[bl], u(0.3, 1.8, int(bl.sum())))
    nz = p(0.25)
    if nz.any():
        sig = u(0.0, 6.0 / 255.0, int(nz.sum())).view(-1, 1, 1, 1)
        x[nz] = x[nz] + torch.randn(x[nz].shape, generator=gen) * sig
    return (x.clamp(0, 1) * 255.0).contiguous()


def _hue_rotate(x: Any, turns: Any) -> Any:
    """Rotate hue by ``turns`` (fraction of a full turn) per image, in YIQ space."""
    import torch

    rgb2yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    yiq2rgb = torch.linalg.inv(rgb2yiq)
    th = turns * 2 * math.pi
    c, s = torch.cos(th), torch.sin(th)
    rot = torch.zeros(len(turns), 3, 3)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
    m = yiq2rgb @ rot @ rgb2yiq  # [B,3,3]
    return torch.einsum("bij,bjhw->bihw", m, x)


def _gaussian_blur(x: Any, sigmas: Any) -> Any:
    """Blur each image of ``x`` [B,3,H,W] with its own sigma (separable 7-tap kernel)."""
    import torch
    import torch.nn.functional as F

    r = 3
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    out = []
    for img, s in zip(x, sigmas, strict=True):
        k = torch.exp(-(t**2) / (2 * float(s) ** 2))
        k = (k / k.sum()).to(img.dtype)
        img = F.pad(img[None], (r, r, r, r), mode="reflect")
        img = F.conv2d(img, k.view(1, 1, 1, -1).expand(3, 1, 1, -1).contiguous(), groups=3)
        img = F.conv2d(img, k.view(1, 1, -1, 1).expand(3, 1, -1, 1).contiguous(), groups=3)
        out.append(img[0])
    return torch.stack(out)


def prepare_eval(x: np.ndarray) -> np.ndarray:
    """uint8 ``(N,H,W,3)`` -> float32 ``(N,3,H,W)`` RGB 0-255, the exported model's input."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# training


@dataclass
class FitResult:
    """A trained network and its history."""

    model: Any  # EfficientNet-Lite0 torch module (normalised input)
    history: list[dict[str, float]]
    best_epoch: int  # 1-based epoch kept (the last one when there is no validation)
    seconds: float


@dataclass
class FeatureCache:
    """Activations of the frozen trunk (stem + first ``freeze_blocks`` blocks), float16.

    ``views[v, i]`` is image ``i`` under augmentation draw ``v``; ``clean[i]`` is the plain image.
    The trunk never trains, so these are exactly what the full network computes on those inputs;
    caching them once makes every fold and epoch pay only for the trainable top.
    """

    views: Any  # torch float16 [V, N, C, h, w]
    clean: Any  # torch float16 [N, C, h, w]
    seconds: float


_CACHE: dict[tuple, FeatureCache] = {}


def _trunk(model: Any, x: Any, k: int) -> Any:
    x = model.act(model._bn0(model._conv_stem(x)))
    for block in list(model._blocks)[:k]:
        x = block(x)
    return x


def _top_features(model: Any, f: Any, k: int) -> Any:
    for block in list(model._blocks)[k:]:
        f = block(f)
    return model.act(model._bn1(model._conv_head(f))).mean(dim=(2, 3))


def _top(model: Any, f: Any, k: int) -> Any:
    return model._fc(model._dropout(_top_features(model, f, k)))


def _top_probs(model: Any, feats: Any, k: int, batch: int = 64) -> np.ndarray:
    import torch

    was = model.training
    model.eval()
    with torch.no_grad():
        out = [torch.softmax(_top(model, feats[i : i + batch].float(), k), 1).numpy()
               for i in range(0, len(feats), batch)]
    model.train(was)
    return np.concatenate(out)


def trunk_features(x: np.ndarray, cfg: TrainConfig, progress: Callable[[str], None] | None = None) -> FeatureCache:
    """Frozen-trunk activations of uint8 ``x`` for ``cfg.views`` augmentation draws plus the clean images."""
    import torch

    from landuse.training.model import MEAN, STD, pretrained_lite0

    key = (hashlib.sha1(np.ascontiguousarray(x).data).hexdigest(), x.shape, cfg.image_size,
           cfg.freeze_blocks, cfg.views, cfg.seed, cfg.augment)
    if key in _CACHE:
        return _CACHE[key]
    torch.set_num_threads(min(2, cfg.threads))
    t0 = time.perf_counter()
    model = pretrained_lite0(2, cfg.image_size).eval()
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    gen = torch.Generator().manual_seed(cfg.seed + 7919)
    xt = torch.from_numpy(x)
    n_views = cfg.views if cfg.augment else 0

    def run(prep: Callable[[Any], Any]) -> Any:
        out = []
        with torch.no_grad():
            for i in range(0, len(x), 32):
                out.append(_trunk(model, (prep(xt[i : i + 32]) - mean) / std, cfg.freeze_blocks).half())
        return torch.cat(out)

    clean = run(lambda b: prepare_t(b, cfg.image_size))
    views = []
    for v in range(n_views):
        views.append(run(lambda b: augment_batch(b, gen, cfg.image_size)))
        if progress:
            progress(f"trunk features: view {v + 1}/{n_views} ({time.perf_counter() - t0:.0f} s)")
    cache = FeatureCache(torch.stack(views) if views else clean[None], clean, time.perf_counter() - t0)
    _CACHE.clear()  # keep one dataset's activations in memory at most
    _CACHE[key] = cache
    return cache


def clean_trunk(x: np.ndarray, cfg: TrainConfig, batch: int = 32) -> Any:
    """Frozen-trunk activations (float16) of uint8 ``x`` without augmentation."""
    import torch

    from landuse.training.model import MEAN, STD, pretrained_lite0

    torch.set_num_threads(min(2, cfg.threads))
    model = pretrained_lite0(2, cfg.image_size).eval()
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        return torch.cat([
            _trunk(model, (prepare_t(xt[i : i + batch], cfg.image_size) - mean) / std, cfg.freeze_blocks).half()
            for i in range(0, len(x), batch)
        ])


def fit(
    cache: FeatureCache,
    y: np.ndarray,
    n_classes: int,
    cfg: TrainConfig,
    train_idx: np.ndarray,
    val_idx: np.ndarray | None = None,
    epochs: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> FitResult:
    """Train the top of EfficientNet-Lite0 (ImageNet init) on cached trunk features of ``train_idx``.

    Epoch 1..warmup: only the classifier; then the unfrozen blocks, head conv and classifier at a
    low learning rate (cosine decay). Each epoch draws one augmented view per image. With
    ``val_idx`` the epoch of lowest validation loss is kept (early stopping).
    """
    import torch
    import torch.nn.functional as F

    from landuse.training.model import pretrained_lite0

    torch.set_num_threads(min(2, cfg.threads))
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    epochs = epochs or cfg.epochs
    k = cfg.freeze_blocks
    model = pretrained_lite0(n_classes, cfg.image_size)
    trunk = [model._conv_stem, model._bn0, *list(model._blocks)[:k]]
    for m in trunk:
        for p_ in m.parameters():
            p_.requires_grad_(False)
    head = list(model._fc.parameters())
    top = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("_fc.")]
    yt = torch.from_numpy(y.astype(np.int64))
    tr = torch.from_numpy(np.asarray(train_idx, dtype=np.int64))
    n_views = cache.views.shape[0]
    steps = max(1, math.ceil(len(tr) / cfg.batch_size))
    warm = min(cfg.warmup_epochs, epochs - 1) if epochs > 1 else 0
    opt_head = torch.optim.AdamW(head, lr=cfg.lr_head, weight_decay=cfg.weight_decay)
    opt = torch.optim.AdamW(
        [{"params": top, "lr": cfg.lr_backbone}, {"params": head, "lr": cfg.lr_head / 4}],
        weight_decay=cfg.weight_decay,
    )
    total_ft = max(1, (epochs - warm) * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_ft) / total_ft))
    )
    history: list[dict[str, Any]] = []
    best: tuple[float, int, Any] = (math.inf, 0, None)
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        warming = epoch <= warm
        model.train()
        for m in trunk:
            m.eval()
        perm = tr[torch.randperm(len(tr), generator=gen)]
        view = torch.randint(0, n_views, (len(perm),), generator=gen)
        loss_sum, correct, seen = 0.0, 0, 0
        for s in range(steps):
            sl = slice(s * cfg.batch_size, (s + 1) * cfg.batch_size)
            idx = perm[sl]
            if len(idx) < 2:  # BatchNorm needs > 1 sample
                continue
            fb = cache.views[view[sl], idx].float()
            if warming:  # classifier only, on the ImageNet features (batch-norm statistics untouched)
                model.eval()
                with torch.no_grad():
                    feats = _top_features(model, fb, k)
                model.train()
                logits = model._fc(model._dropout(feats))
            else:
                logits = _top(model, fb, k)
            loss = F.cross_entropy(logits, yt[idx], label_smoothing=cfg.label_smoothing)
            o = opt_head if warming else opt
            o.zero_grad(set_to_none=True)
            loss.backward()
            o.step()
            if not warming:
                sched.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yt[idx]).sum())
            seen += len(idx)
        if not warming:
            recalibrate_bn(model, cache.views[view, perm], k)
        rec: dict[str, Any] = {"epoch": epoch, "train_loss": loss_sum / max(seen, 1),
                               "train_acc": correct / max(seen, 1), "seconds": time.perf_counter() - t0}
        if val_idx is not None and len(val_idx):
            probs = _top_probs(model, cache.clean[torch.from_numpy(np.asarray(val_idx))], k)
            yv = y[val_idx]
            vl = float(-np.log(np.clip(probs[np.arange(len(yv)), yv], 1e-7, 1)).mean())
            rec.update(val_loss=vl, val_acc=float((probs.argmax(1) == yv).mean()))
            if vl < best[0]:
                best = (vl, epoch, copy.deepcopy(model.state_dict()))
        history.append(rec)
        if progress:
            progress(" ".join(f"{a}={b:.4g}" if isinstance(b, float) else f"{a}={b}" for a, b in rec.items()))
    best_epoch = epochs
    if best[2] is not None:
        model.load_state_dict(best[2])
        best_epoch = best[1]
    model.eval()
    return FitResult(model, history, best_epoch, time.perf_counter() - t0)


def recalibrate_bn(model: Any, feats: Any, k: int, batch: int = 64) -> None:
    """Re-estimate the running statistics of the trainable batch-norm layers on ``feats``.

    With the TensorFlow momentum (0.01) and a few hundred steps the running averages lag the
    moving weights, and an eval-mode model then scores far below its training accuracy; an exact
    (cumulative) pass over this epoch's training views fixes that.
    """
    import torch

    bns = [m for block in list(model._blocks)[k:] for m in block.modules()
           if isinstance(m, torch.nn.BatchNorm2d)] + [model._bn1]
    saved = [bn.momentum for bn in bns]
    was = model.training
    model.eval()
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
        bn.train()
    with torch.no_grad():
        for i in range(0, len(feats), batch):
            _top_features(model, feats[i : i + batch].float(), k)
    for bn, m in zip(bns, saved, strict=True):
        bn.momentum = m
    model.train(was)


def fit_arrays(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    cfg: TrainConfig,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    epochs: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> FitResult:
    """:func:`fit` on uint8 arrays (``val`` optional), building the trunk-feature cache first."""
    xs, ys = (x, y) if val is None else (np.concatenate([x, val[0]]), np.concatenate([y, val[1]]))
    cache = trunk_features(xs, cfg, progress)
    val_idx = None if val is None else np.arange(len(x), len(xs))
    return fit(cache, ys, n_classes, cfg, np.arange(len(x)), val_idx, epochs=epochs, progress=progress)


def prepare_t(xb: Any, image_size: int) -> Any:
    """uint8 ``[B,H,W,3]`` tensor -> float ``[B,3,S,S]`` 0-255 without augmentation."""
    import torch.nn.functional as F

    x = xb.permute(0, 3, 1, 2).float()
    if x.shape[2:] != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return x


def predict_probs(model: Any, x: np.ndarray, image_size: int, batch: int = 64) -> np.ndarray:
    """Softmax probabilities of ``model`` (normalised-input torch net) on uint8 ``x``."""
    import torch

    from landuse.training.model import export_wrapper

    wrapper = export_wrapper(model).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(wrapper(prepare_t(torch.from_numpy(x[i : i + batch]), image_size)).numpy())
    return np.concatenate(out).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# robustness: fixed colour / blur shifts applied to validation images


def colour_shifts() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Named deterministic shifts of uint8 RGB batches, for robustness reports."""

    def f(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
        return lambda x: np.clip(fn(x.astype(np.float32)), 0, 255).astype(np.uint8)

    def sat(x: np.ndarray, k: float) -> np.ndarray:
        g = (x * np.array([0.299, 0.587, 0.114], np.float32)).sum(-1, keepdims=True)
        return g + (x - g) * k

    def contrast(x: np.ndarray, k: float) -> np.ndarray:
        m = x.mean(axis=(1, 2, 3), keepdims=True)
        return (x - m) * k + m

    def blur(x: np.ndarray) -> np.ndarray:
        from PIL import Image, ImageFilter

        return np.stack([np.asarray(Image.fromarray(i.astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.5)))
                         for i in x]).astype(np.float32)

    return {
        "none": f(lambda x: x),
        "darker x0.7": f(lambda x: x * 0.7),
        "brighter x1.3": f(lambda x: x * 1.3),
        "low contrast x0.6": f(lambda x: contrast(x, 0.6)),
        "desaturated x0.5": f(lambda x: sat(x, 0.5)),
        "warm tint (1.12, 1.0, 0.88)": f(lambda x: x * np.array([1.12, 1.0, 0.88], np.float32)),
        "blur sigma 1.5": f(blur),
    }


# ---------------------------------------------------------------------------------------------
# ONNX helpers


def onnx_probs(path: Path, x: np.ndarray, threads: int = 2, batch: int = 32) -> np.ndarray:
    """Run an exported model (input ``data`` RGB 0-255) on uint8 ``x`` with onnxruntime."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    out = [sess.run(None, {"data": prepare_eval(x[i : i + batch])})[0] for i in range(0, len(x), batch)]
    return np.concatenate(out).astype(np.float32)


def export_model(model: Any, path: Path, image_size: int, name: str, version: str) -> Path:
    """Export a trained net (normalisation and softmax inside) to ``path``."""
    from landuse.training.export import export_onnx
    from landuse.training.model import export_wrapper

    return export_onnx(export_wrapper(model), path, image_size, name, version)


def calibration_set(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Up to ``n`` training images (seeded choice) with their four rotations, as float NCHW 0-255."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x), size=min(n, len(x)), replace=False)
    imgs = x[pick]
    rots = [np.rot90(imgs, k, axes=(1, 2)) for k in range(4)]
    return prepare_eval(np.concatenate([r[i::4] for i, r in enumerate(rots)]))


# ---------------------------------------------------------------------------------------------
# the full run


def _metrics(probs: np.ndarray, y: np.ndarray, labels: list[str], files: list[str] | None = None) -> dict[str, Any]:
    """Per-tag P/R/AP, overall accuracy / P / R / mAP and confusion (via training.evaluate)."""
    acc = float((probs.argmax(1) == y).mean())
    try:
        from landuse.training.evaluate import evaluate_predictions
    except ImportError:  # evaluate.py is written in parallel; the report says so explicitly
        return {"accuracy": acc, "note": "landuse.training.evaluate unavailable: per-tag metrics not computed"}
    res = evaluate_predictions(probs, y, labels, 0.5, files=files)
    out = res if isinstance(res, dict) else _as_dict(res)
    out["accuracy"] = acc
    return out


def _as_dict(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "to_dict"):
        return dict(obj.to_dict())
    from dataclasses import is_dataclass

    if is_dataclass(obj):
        return asdict(obj)  # type: ignore[arg-type]
    return dict(vars(obj))


def train_local(
    dataset_dir: str | Path,
    out_dir: str | Path,
    cfg: TrainConfig,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
    command: str | None = None,
    report_path: str | Path | None = None,
    alternate_out: str | Path | None = None,
) -> dict[str, Any]:
    """Train, evaluate (k-fold or validation split), export to ``out_dir``; returns the report.

    With ``cfg.int8`` the int8 model is evaluated beside fp32 and exported when it stays within
    one point of fp32 accuracy on the held-out images (else fp32 is kept and the report says so).
    """
    import torch

    from landuse import __version__
    from landuse.training.quantize import quantize_int8

    cfg.validate()
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise OutputExistsError(f"model folder {out_dir} exists; pass `overwrite=True` or choose another `out`")
    say = progress or (lambda m: log.info(m))
    ds = TagDataset.open(dataset_dir, min_per_tag=cfg.min_per_tag)
    say(ds.balance_report())
    labels = list(ds.tags)
    x, y = load_arrays(ds, cfg.image_size)
    cache = trunk_features(x, cfg, say)
    names = [p.name for p, _ in ds.items]
    rng_seed = cfg.seed
    report: dict[str, Any] = {"labels": labels, "counts": ds.counts(), "n": len(y)}
    shifts = colour_shifts()
    work = Path(tempfile.mkdtemp(prefix="landuse-train-"))

    # robustness: trunk features of every second image under each fixed shift, computed once
    sub = np.arange(0, len(y), 2)
    say(f"trunk features of {len(sub)} images under {len(shifts)} colour / blur shifts")
    shift_feats = {name: clean_trunk(fn(x[sub]), cfg) for name, fn in shifts.items()}
    pos_in_sub = np.full(len(y), -1)
    pos_in_sub[sub] = np.arange(len(sub))

    def evaluate_heldout(fr: FitResult, tr: np.ndarray, te: np.ndarray, tag: str) -> dict[str, Any]:
        import torch

        fp32 = work / f"{tag}.onnx"
        export_model(fr.model, fp32, cfg.image_size, "landuse-local", tag)
        res: dict[str, Any] = {"fp32": onnx_probs(fp32, x[te], cfg.threads)}
        res["torch"] = _top_probs(fr.model, cache.clean[torch.from_numpy(te)], cfg.freeze_blocks)
        te_sub = te[pos_in_sub[te] >= 0]
        res["shift_n"] = len(te_sub)
        res["shift_correct"] = {
            name: int((_top_probs(fr.model, feats[torch.from_numpy(pos_in_sub[te_sub])], cfg.freeze_blocks)
                       .argmax(1) == y[te_sub]).sum())
            for name, feats in shift_feats.items()
        }
        res["shift_acc"] = {n: c / max(len(te_sub), 1) for n, c in res["shift_correct"].items()}
        if cfg.int8:
            q = work / f"{tag}.int8.onnx"
            quantize_int8(fp32, q, calibration_set(x[tr], 64, rng_seed))
            res["int8"] = onnx_probs(q, x[te], cfg.threads)
        return res

    folds_used = cfg.folds if cfg.folds > 1 else 0
    final_epochs = cfg.epochs
    if folds_used:
        fold = stratified_folds(y, folds_used, cfg.seed)
        oof = {k: np.zeros((len(y), len(labels)), np.float32) for k in ("fp32", "torch", "int8")}
        shift_acc: dict[str, list[float]] = {}
        best_epochs, fold_hist = [], []
        for k in range(folds_used):
            tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
            say(f"fold {k + 1}/{folds_used}: train {len(tr)}, validate {len(te)}")
            fr = fit(cache, y, len(labels), cfg, tr, te, progress=say)
            best_epochs.append(fr.best_epoch)
            fold_hist.append({"best_epoch": fr.best_epoch, "history": fr.history})
            res = evaluate_heldout(fr, tr, te, f"fold{k}")
            for key in ("fp32", "torch", "int8"):
                if key in res:
                    oof[key][te] = res[key]
            for name, c in res["shift_correct"].items():
                shift_acc.setdefault(name, []).append(c)
            say(f"fold {k + 1}: best epoch {fr.best_epoch}, fp32 acc {float((res['fp32'].argmax(1) == y[te]).mean()):.4f}")
        final_epochs = max(cfg.warmup_epochs + 1, int(np.median(best_epochs)))
        report["cv"] = {
            "folds": folds_used,
            "fold_of_item": fold.tolist(),
            "best_epochs": best_epochs,
            "final_epochs": final_epochs,
            "fp32": _metrics(oof["fp32"], y, labels, names),
            "torch_vs_onnx_max_abs": float(np.abs(oof["torch"] - oof["fp32"]).max()),
            "colour_shift_accuracy": {n: sum(v) / len(sub) for n, v in shift_acc.items()},
            "colour_shift_images": len(sub),
            "fold_history": fold_hist,
        }
        if cfg.int8:
            report["cv"]["int8"] = _metrics(oof["int8"], y, labels, names)
            report["cv"]["int8_agreement"] = float((oof["int8"].argmax(1) == oof["fp32"].argmax(1)).mean())
        report["oof"] = {"files": names, "truth": y.tolist(), "fp32": oof["fp32"].round(5).tolist(),
                         **({"int8": oof["int8"].round(5).tolist()} if cfg.int8 else {})}
        say(f"final model on all {len(y)} images for {final_epochs} epochs")
        fr = fit(cache, y, len(labels), cfg, np.arange(len(y)), None, epochs=final_epochs, progress=say)
        train_idx, held = np.arange(len(y)), None
    else:
        held = None
        train_idx = np.arange(len(y))
        if cfg.val_split > 0:
            rng = np.random.default_rng(cfg.seed)
            held = np.concatenate([rng.permutation(np.flatnonzero(y == c))[: max(1, int(round(cfg.val_split * (y == c).sum())))]
                                   for c in np.unique(y)])
            train_idx = np.setdiff1d(np.arange(len(y)), held)
        fr = fit(cache, y, len(labels), cfg, train_idx, held, progress=say)
        report["history"] = fr.history
        report["best_epoch"] = fr.best_epoch
    final_fp32 = work / "final.onnx"
    export_model(fr.model, final_fp32, cfg.image_size, "landuse-local", __version__)
    chosen = final_fp32
    precision = "fp32"
    if held is not None:
        res = evaluate_heldout(fr, train_idx, held, "final")
        report["validation"] = {"n": len(held), "fp32": _metrics(res["fp32"], y[held], labels),
                                "colour_shift_accuracy": res["shift_acc"],
                                "torch_vs_onnx_max_abs": float(np.abs(res["torch"] - res["fp32"]).max())}
        if cfg.int8:
            report["validation"]["int8"] = _metrics(res["int8"], y[held], labels)
    if cfg.int8:
        q = work / "final.int8.onnx"
        quantize_int8(final_fp32, q, calibration_set(x[train_idx], 64, rng_seed))
        section = report.get("cv") or report.get("validation")
        if section is None:
            precision, chosen = "int8", q
            report["int8_decision"] = "int8 exported without a held-out check (no validation images)"
        else:
            gap = section["fp32"]["accuracy"] - section["int8"]["accuracy"]
            if gap <= 0.01:
                precision, chosen = "int8", q
            report["int8_decision"] = (
                f"int8 accuracy {section['int8']['accuracy']:.4f} vs fp32 {section['fp32']['accuracy']:.4f}: "
                f"{'int8 kept' if precision == 'int8' else 'fp32 kept (int8 loses more than 1 point)'}"
            )
        report["sizes_bytes"] = {"fp32": final_fp32.stat().st_size, "int8": q.stat().st_size}
    provenance = {
        "toolkit": "landuse",
        "toolkit_version": __version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "dataset": {"path": str(Path(dataset_dir)), "counts": ds.counts(), "sha256": dataset_hash(ds)},
        "backbone": "EfficientNet-Lite0, ImageNet weights (efficientnet-lite0-57934424.pth)",
        "preprocessing": "RGB 0-255 in, (x - 127) / 128 inside the graph, stretch to "
                         f"{cfg.image_size}x{cfg.image_size}, no crop",
        "precision": precision,
        "config": {k: v for k, v in asdict(cfg).items() if k != "extra"},
        "final_epochs": final_epochs,
        "augmentations": list(AUGMENTATIONS) if cfg.augment else [],
        "metrics": _summary(report),
        "int8_decision": report.get("int8_decision"),
        "run_id": hashlib.sha256(json.dumps([cfg.seed, dataset_hash(ds), __version__]).encode()).hexdigest()[:16],
    }
    write_export(out_dir, chosen, labels, cfg.image_size, provenance, overwrite)
    if alternate_out is not None and cfg.int8:  # the precision not exported, e.g. for benchmarks
        other = final_fp32 if chosen != final_fp32 else work / "final.int8.onnx"
        Path(alternate_out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(other, alternate_out)
        report["alternate"] = {"precision": "fp32" if other == final_fp32 else "int8", "path": str(alternate_out)}
    report["precision"] = precision
    report["out"] = str(out_dir)
    if report_path is not None:
        from landuse.fileio import write_json

        write_json(Path(report_path), report, indent=1, default=_jsonable)
    for f in work.iterdir():
        f.unlink()
    work.rmdir()
    return report


def write_export(*args: Any, **kwargs: Any) -> Path:
    """Thin indirection to :func:`landuse.training.export.write_export` (keeps imports lazy)."""
    from landuse.training.export import write_export as _write

    return _write(*args, **kwargs)


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    """Compact metrics for the manifest: accuracy and per-tag P/R/AP for fp32 (and int8)."""
    section = report.get("cv") or report.get("validation") or {}
    out: dict[str, Any] = {"kind": "cv" if "cv" in report else ("validation" if section else "none")}
    for prec in ("fp32", "int8"):
        m = section.get(prec)
        if m:
            out[prec] = {k: m[k] for k in ("accuracy", "per_tag", "precision", "recall", "map", "confusion") if k in m}
    if "colour_shift_accuracy" in section:
        out["colour_shift_accuracy"] = section["colour_shift_accuracy"]
    return json.loads(json.dumps(out, default=_jsonable))


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    return str(o)
