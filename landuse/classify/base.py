"""The classifier protocol every backend implements.

A classifier takes a batch of plots as ``uint8`` RGB arrays shaped ``(N, H, W, 3)`` at its
``input_size`` and returns ``float32`` probabilities shaped ``(N, len(labels))`` in ``labels``
order. Multiclass models are read by argmax; multilabel models by per-tag probability >= a
threshold.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from landuse.errors import ModelError

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "default"


@runtime_checkable
class Classifier(Protocol):
    """What the pipeline needs of a model."""

    labels: list[str]
    input_size: tuple[int, int]  # (height, width) in pixels
    multilabel: bool
    model_id: str  # human-readable id (path or endpoint/project/published name)
    model_hash: str  # sha256 of the model content (or of the endpoint identity)
    backend: str  # "onnx", "customvision", ...

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, len(labels))`` float32 for ``uint8`` RGB ``(N, H, W, 3)``."""
        ...


def decide(probs: np.ndarray, multilabel: bool = False, threshold: float = 0.5) -> np.ndarray:
    """Winning class index per row (multiclass: argmax; multilabel: argmax among >= threshold, else -1)."""
    probs = np.asarray(probs, dtype=np.float32)
    idx = probs.argmax(axis=1).astype(np.int64)
    if multilabel:
        idx[probs.max(axis=1) < threshold] = -1
    return idx


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def load_classifier(spec: str | Path | None = None, **options: object) -> Classifier:
    """Load a classifier from ``spec``: ``None`` / ``"default"`` (the bundled model), an export
    zip or folder, or a ``.onnx`` file. ``options`` go to the backend (``labels``, ``threads`` ...).
    """
    from landuse.classify.onnx import OnnxClassifier  # local: onnxruntime is heavy to import

    if spec is None or str(spec) == "default":
        path = DEFAULT_MODEL_DIR
        if not (path / "model.onnx").exists():
            raise ModelError(
                f"the default model is missing from {path}; reinstall landuse or pass --model PATH"
            )
    else:
        path = Path(spec)
        if not path.exists():
            raise ModelError(f"model {path} does not exist; pass a Custom Vision export (zip or folder), a .onnx file or 'default'")
    return OnnxClassifier.load(path, **options)  # type: ignore[arg-type]
