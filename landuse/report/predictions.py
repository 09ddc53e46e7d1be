"""How ``landuse predict`` shows its results: one compact table, CSV or JSON.

The table has one row per image: file, top tag, its probability, and the rest of the tags with
their probabilities (most probable first, as many as ``--top`` leaves). The CSV has one row per
image with every tag's probability in the model's label order; the JSON keeps Custom Vision's
``tagName`` / ``probability`` shape.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, Protocol


class PredictionLike(Protocol):
    @property
    def file(self) -> str: ...
    @property
    def tags(self) -> list[tuple[str, float]]: ...


def _pct(p: float) -> str:
    return f"{100.0 * p:.1f}%"


def prediction_rows(preds: Sequence[PredictionLike]) -> list[tuple[str, str, str, str]]:
    """(file, top tag, probability, the rest) per image, as printed."""
    rows = []
    for p in preds:
        top, prob = p.tags[0]
        if getattr(p, "unknown", False):  # like none of the model's classes: say so first
            top = f"unknown (nearest {top})"
        rest = ", ".join(f"{t} {_pct(v)}" for t, v in p.tags[1:])
        rows.append((p.file, top, _pct(prob), rest))
    return rows


def prediction_table(preds: Sequence[PredictionLike]) -> Any:
    """A rich Table: one row per image."""
    from rich.table import Table

    t = Table(box=None, header_style="bold", pad_edge=False)
    t.add_column("file", no_wrap=True)
    t.add_column("top tag")
    t.add_column("probability", justify="right")
    if any(len(p.tags) > 1 for p in preds):
        t.add_column("the rest")
        for row in prediction_rows(preds):
            t.add_row(*row)
    else:
        for row in prediction_rows(preds):
            t.add_row(*row[:3])
    return t


def prediction_csv(preds: Sequence[PredictionLike], labels: Sequence[str]) -> str:
    """CSV text: file, top_tag, probability, then ``prob_<tag>`` for every tag (model order;
    empty where ``--top`` left a tag out)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "top_tag", "probability", *[f"prob_{t}" for t in labels]])
    for p in preds:
        d = dict(p.tags)
        w.writerow([p.file, p.tags[0][0], f"{p.tags[0][1]:.6f}", *[f"{d[t]:.6f}" if t in d else "" for t in labels]])
    return buf.getvalue()


def prediction_json(preds: Sequence[PredictionLike], model: dict[str, Any]) -> str:
    """JSON text: ``{"model": {...}, "images": [{"file", "predictions": [{"tagName", "probability"}]}]}``."""
    images = [{"file": p.file, "predictions": [{"tagName": t, "probability": v} for t, v in p.tags],
               "unknown": bool(getattr(p, "unknown", False)), "unknown_score": getattr(p, "unknown_score", None)}
              for p in preds]
    return json.dumps({"model": model, "images": images}, indent=2) + "\n"
