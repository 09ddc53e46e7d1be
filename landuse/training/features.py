"""Frozen ImageNet features and the models built on them (the default model's recipe).

The default model is EfficientNet-Lite0 with its ImageNet weights frozen, global-average pooled
to 1280 features, and a linear softmax head (multinomial logistic regression) fitted on those
features. The exported graph has two outputs: ``model_output`` (probabilities, what Custom
Vision tooling reads) and ``features`` (the pooled features, what the out-of-class flag and
``train --init`` use). A linear head keeps adaptation a refit of ``classes x 1280`` numbers.

Also here: the resolution degradation used as training augmentation (so 2-6 m imagery read at
1 m per pixel looks like what the head was fitted on). torch is imported inside functions only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

FEATURES_OUTPUT = "features"
STRETCH_PERCENT = 2.0  # per-plot, per-band stretch of the 2-98 % range to 0-255, inside the graph
STRETCH_STEP = 4  # the percentiles are taken on every 4th pixel of every 4th row (cheap TopK)


def degrade_resolution(x: np.ndarray, gsd_m: float, size: int = 224) -> np.ndarray:
    """uint8 ``(N,H,W,3)`` 1 m plots as if imaged at ``gsd_m`` metres and read back at 1 m.

    Box-average down to ``size / gsd_m`` pixels, then bilinear up to ``size`` (what the
    pipeline's bilinear read of a coarse raster into 224 px does).
    """
    from PIL import Image

    if gsd_m <= 1.0:
        return x
    small = max(4, int(round(size / gsd_m)))
    out = np.empty((x.shape[0], size, size, 3), dtype=np.uint8)
    for i, img in enumerate(x):
        im = Image.fromarray(np.ascontiguousarray(img)).resize((small, small), Image.Resampling.BOX)
        out[i] = np.asarray(im.resize((size, size), Image.Resampling.BILINEAR))
    return out


def plot_stretch(x: Any, pixels: int, percent: float = STRETCH_PERCENT) -> Any:
    """Torch: stretch each plot's bands so their ``percent`` / ``100 - percent`` percentiles map to
    0 / 255 (clamped). ``x`` float ``[N,3,H,W]`` 0-255 with ``H * W == pixels``. Exports to ONNX
    as TopK."""
    import torch

    flat = x.flatten(2)
    sample = x[:, :, ::STRETCH_STEP, ::STRETCH_STEP].flatten(2)  # percentiles from every 4th pixel
    k = max(1, int(round(pixels / STRETCH_STEP**2 * percent / 100.0)))
    hi = torch.topk(sample, k, dim=2).values[..., -1:]
    lo = -torch.topk(-sample, k, dim=2).values[..., -1:]
    out = (flat - lo) / torch.clamp(hi - lo, min=1.0) * 255.0
    return torch.clamp(out, 0.0, 255.0).view_as(x)


def _net(weight: np.ndarray | None, bias: np.ndarray | None, image_size: int, stretch: bool = True) -> Any:
    """Torch module: RGB 0-255 ``[N,3,H,W]`` -> (probabilities, features) or features only;
    with ``stretch`` the per-plot 2-98 % stretch comes first."""
    import torch
    from torch import nn

    from landuse.training.model import MEAN, STD, build_efficientnet_lite0, load_imagenet

    trunk = load_imagenet(build_efficientnet_lite0(1000, image_size)).eval()

    class FeatureModel(nn.Module):
        mean: torch.Tensor  # buffers registered below
        inv_std: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.trunk = trunk
            self.register_buffer("mean", torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("inv_std", 1.0 / torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1))
            self.head: nn.Linear | None = None
            if weight is not None and bias is not None:
                self.head = nn.Linear(weight.shape[1], weight.shape[0])
                with torch.no_grad():
                    self.head.weight.copy_(torch.from_numpy(np.asarray(weight, np.float32)))
                    self.head.bias.copy_(torch.from_numpy(np.asarray(bias, np.float32)))

        def forward(self, data: torch.Tensor) -> Any:
            if stretch:
                data = plot_stretch(data, image_size * image_size)
            f = self.trunk.features((data - self.mean) * self.inv_std)
            if self.head is None:
                return f
            return torch.softmax(self.head(f), dim=1), f

    return FeatureModel().eval()


def export_feature_extractor(path: Path, image_size: int = 224, stretch: bool = False) -> Path:
    """ONNX of the frozen ImageNet trunk: input ``data`` RGB 0-255, output ``features`` (N, 1280)."""
    import torch

    net = _net(None, None, image_size, stretch)
    dummy = torch.zeros(1, 3, image_size, image_size)
    torch.onnx.export(net, (dummy,), str(path), input_names=["data"], output_names=[FEATURES_OUTPUT],
                      dynamic_axes={"data": {0: "batch"}, FEATURES_OUTPUT: {0: "batch"}},
                      opset_version=17, do_constant_folding=True, dynamo=False)
    return Path(path)


def export_linear_model(path: Path, weight: np.ndarray, bias: np.ndarray, model_name: str, version: str,
                        image_size: int = 224) -> Path:
    """ONNX classifier: trunk + linear softmax head; outputs ``model_output`` then ``features``."""
    import onnx
    import torch

    from landuse.training.export import INPUT_NAME, OPSET, OUTPUT_NAME, set_metadata

    net = _net(weight, bias, image_size)
    dummy = torch.zeros(1, 3, image_size, image_size)
    torch.onnx.export(net, (dummy,), str(path), input_names=[INPUT_NAME],
                      output_names=[OUTPUT_NAME, FEATURES_OUTPUT],
                      dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"},
                                    FEATURES_OUTPUT: {0: "batch"}},
                      opset_version=OPSET, do_constant_folding=True, dynamo=False)
    model = onnx.load(str(path))
    set_metadata(model, model_name, version)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)
