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


def resolve_model_spec(spec: str | Path | None) -> str | None:
    """A model spec in canonical form: ``None`` for the default model, ``py:`` specs as given,
    paths made absolute (so a worker in another folder finds the same file)."""
    if spec is None or str(spec) == "default":
        return None
    if str(spec).startswith("py:"):
        return str(spec)
    return str(Path(spec).resolve())


def load_classifier(spec: str | Path | None = None, **options: object) -> Classifier:
    """Load a classifier from ``spec`` (one grammar for every command and the API):
    ``None`` / ``"default"`` (the bundled model), a Custom Vision export zip or folder, a
    ``.onnx`` file, or ``py:package.module:factory`` (a callable returning any Classifier; it is
    called without arguments, so ``options`` do not apply to it). ``options`` go to the ONNX
    backend (``labels``, ``threads`` ...).
    """
    if spec is not None and str(spec).startswith("py:"):
        import importlib

        try:
            module, _, attr = str(spec)[3:].partition(":")
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ModelError(f"cannot import classifier factory {spec!r} ({exc}); use py:package.module:callable") from None
        return factory()  # type: ignore[no-any-return]
    from landuse.classify.onnx import OnnxClassifier  # local: onnxruntime is heavy to import

    if spec is None or str(spec) == "default":
        path = DEFAULT_MODEL_DIR
        if not (path / "model.onnx").exists():
            raise ModelError(
                f"the default model is missing from {path}; reinstall landuse or pass `model` PATH"
            )
    else:
        path = Path(spec)
        if not path.exists():
            raise ModelError(f"model {path} does not exist; pass a Custom Vision export (zip or folder), a .onnx file, 'default' or py:module:factory")
    return OnnxClassifier.load(path, **options)  # type: ignore[arg-type]
