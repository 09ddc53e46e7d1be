"""Test doubles for the pipeline: a synthetic scene and a colour classifier (tests only).

``FakeScene`` implements the Scene API the pipeline uses (spec / from_spec / provenance /
footprints / coverage / read_chunk). Its content is a pure function of the *global* plot
indices (row and column counted from the CRS origin), so every chunking, batching and scheduler
must give the same answer:

* true class of a plot: ``truth_class(gr, gc)``; the plot is filled with that class's colour
  (plus deterministic pixel noise);
* plots with ``(gr * 7 + gc * 11) % 13 == 0`` are half nodata (valid fraction 0.5: "partial");
* plots with ``(gr * 7 + gc * 11) % 13 == 1`` hold no valid pixel ("nodata" after a read);
* plots with ``gc % 9 == 8`` are not covered at all (coverage 0: never read).

``FakeClassifier`` predicts the class whose colour is nearest to a plot's mean colour.
A ``log`` path in the spec makes every read append ``pid row col width`` to that file.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS

LABELS = ["Barren", "Cultivated", "Developed"]
COLOURS = np.array([[200, 170, 120], [40, 140, 40], [200, 40, 40]], dtype=np.float32)
PIXELS = 16


def truth_class(gr: np.ndarray, gc: np.ndarray) -> np.ndarray:
    """The class painted into global plot (gr, gc)."""
    return ((np.asarray(gr) // 2) * 5 + (np.asarray(gc) // 3) * 3) % 3


def truth_valid(gr: np.ndarray, gc: np.ndarray) -> np.ndarray:
    """The valid fraction of global plot (gr, gc)."""
    gr, gc = np.asarray(gr), np.asarray(gc)
    k = (gr * 7 + gc * 11) % 13
    v = np.where(k == 0, 0.5, np.where(k == 1, 0.0, 1.0)).astype(np.float32)
    return np.where(gc % 9 == 8, 0.0, v).astype(np.float32)


def truth_covered(gr: np.ndarray, gc: np.ndarray) -> np.ndarray:
    return np.asarray(gc) % 9 != 8


class FakeScene:
    """Synthetic imagery following the Scene API."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self._spec = dict(spec)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FakeScene:
        return cls(spec)

    def spec(self) -> dict[str, Any]:
        return dict(self._spec)

    def provenance(self) -> dict[str, Any]:
        return {
            "inputs": [{"path": "synthetic://fake", "size": 0, "mtime": 0}],
            "bands": [1, 2, 3],
            "stretch": None,
        }

    def footprints(self) -> list[tuple[CRS, tuple[float, float, float, float]]]:
        return [(CRS.from_epsg(26914), tuple(self._spec["bounds"]))]

    def coverage(self, grid: Any) -> np.ndarray:
        r, c = grid.all_rows_cols()
        cov = truth_covered(r + grid.row0, c + grid.col0).astype(np.float32)
        return cov.reshape(grid.shape)

    def read_chunk(self, grid: Any, chunk: Any, pixels: int = 224) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = chunk.rows_cols()
        gr, gc = rows + grid.row0, cols + grid.col0
        log = self._spec.get("log")
        if log:
            with open(log, "a") as f:
                f.write(f"{os.getpid()} {chunk.row_off} {chunk.col_off} {chunk.width}\n")
        cls = truth_class(gr, gc)
        valid = truth_valid(gr, gc)
        out = np.zeros((chunk.size, pixels, pixels, 3), dtype=np.uint8)
        for i in range(chunk.size):
            rng = np.random.default_rng([int(gr[i]) + 10**7, int(gc[i]) + 10**7])
            img = COLOURS[cls[i]] + rng.normal(0, 12, (pixels, pixels, 3))
            nvalid = int(round(valid[i] * pixels))
            img[nvalid:] = 0
            out[i] = np.clip(img, 0, 255).astype(np.uint8)
        return out, valid


class FakeClassifier:
    """Nearest class colour of the mean of the valid (non-black) pixels; softmax of -distance."""

    labels = LABELS
    input_size = (PIXELS, PIXELS)
    multilabel = False
    backend = "fake"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.model_id = "fake-colour"
        self.model_hash = "0" * 64
        self.loads_in_pid = os.getpid()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if self.delay:
            time.sleep(self.delay * len(batch))
        x = batch.astype(np.float32)
        keep = x.sum(axis=-1, keepdims=True) > 0
        mean = (x * keep).sum(axis=(1, 2)) / np.maximum(keep.sum(axis=(1, 2)), 1)
        d = np.linalg.norm(mean[:, None, :] - COLOURS[None], axis=-1) / 20.0
        e = np.exp(-(d - d.min(axis=1, keepdims=True)))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def make_fake(source: str | None = None, **options: Any) -> FakeClassifier:
    """Factory for ``ModelRef(source, factory=make_fake)``: ``source`` = per-plot delay in seconds."""
    return FakeClassifier(delay=float(source) if source else 0.0)


def fake_grid(height: int = 13, width: int = 17, row0: int = -21_000, col0: int = 2_000):
    """A grid in EPSG:26914 whose first plot is global (row0, col0)."""
    from landuse.grid import PlotGrid

    s = 224.0
    return PlotGrid.from_bounds((col0 * s, -(row0 + height) * s, (col0 + width) * s, -row0 * s), "EPSG:26914")


def fake_scene(grid: Any, log: str | Path | None = None) -> FakeScene:
    return FakeScene({"bounds": list(grid.bounds), "log": str(log) if log else None})


def main(argv: list[str]) -> None:
    """Run a classification with a slow fake model (for the kill-and-resume test).

    argv: out_dir log_path delay chunk_plots
    """
    from landuse.pipeline import ModelRef, classify_scene

    out, log, delay, chunk_plots = argv
    grid = fake_grid()
    classify_scene(
        fake_scene(grid, log),
        grid,
        ModelRef(delay, factory=make_fake),
        out,
        period="2016",
        chunk_plots=int(chunk_plots),
        scheduler="synchronous",
        quiet=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])


def mean_colour_export(folder: Path) -> Path:
    """A Custom Vision-style export folder: mean colour -> nearest of 3 class colours (softmax)."""
    import onnx
    from onnx import TensorProto, helper

    folder.mkdir()
    w = (COLOURS.T / 255.0 * 30.0).astype(np.float32)  # (3 channels, 3 classes); confident enough
    # that plots of a class colour pass the unknown flag's probability fallback (top probability >= 0.5)
    b = (-0.5 * (COLOURS / 255.0 * 30.0 * COLOURS / 255.0).sum(axis=1)).astype(np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["data"], ["means"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["means", "W"], ["mw"]),
        helper.make_node("Add", ["mw", "B"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["model_output"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "meancolour",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("model_output", TensorProto.FLOAT, ["N", 3])],
        initializer=[helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.ravel().tolist()),
                     helper.make_tensor("B", TensorProto.FLOAT, b.shape, b.ravel().tolist())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    for k, v in {"Image.BitmapPixelFormat": "Rgb8", "Image.NominalPixelRange": "Normalized_0_1"}.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, folder / "model.onnx")
    (folder / "labels.txt").write_text("\n".join(LABELS) + "\n")
    return folder
