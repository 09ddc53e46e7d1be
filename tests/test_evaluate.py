"""Evaluation metrics against hand-computed values, and the evaluate / predict commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rasterio.transform import from_origin

from landuse.cli import main
from landuse.errors import InputError
from landuse.training.evaluate import average_precision, evaluate_predictions
from tests.test_onnx import export_folder

# ---------------------------------------------------------------------------- metrics
# 6 images, 3 tags. Worked by hand at threshold 0.5 (">=" counts):
#   A: predicted by i0 (0.7, truth A) and i5 (0.5, truth C) -> TP 1 FP 1; i1 (truth A, 0.4) missed -> FN 1
#   B: predicted by i1 (0.5, truth A) and i2 (0.8, truth B) -> TP 1 FP 1; i3 missed -> FN 1
#   C: predicted by i4 (0.8, truth C) -> TP 1 FP 0; i5 (0.45) missed -> FN 1
#   pooled: TP 3, FP 2, FN 3 -> P 3/5, R 3/6
#   AP A: ranking 0.7(+) 0.5(-) 0.4(+) ... -> 1/2 * 1 + 1/2 * 2/3 = 5/6
#   AP B: ranking 0.8(+) 0.5(-) 0.3(+) ... -> 5/6
#   AP C: ranking 0.8(+) 0.45(+) 0.4(-) ... -> 1
PROBS = np.array([
    [0.70, 0.20, 0.10],
    [0.40, 0.50, 0.10],
    [0.10, 0.80, 0.10],
    [0.30, 0.30, 0.40],
    [0.05, 0.15, 0.80],
    [0.50, 0.05, 0.45],
])
TRUTH = [0, 0, 1, 1, 2, 2]
LABELS = ["A", "B", "C"]


def test_metrics_match_hand_computed_values() -> None:
    ev = evaluate_predictions(PROBS, TRUTH, LABELS, threshold=0.5, files=[f"i{i}" for i in range(6)])
    got = {m.tag: (m.tp, m.fp, m.fn, m.precision, m.recall, m.ap, m.images) for m in ev.per_tag}
    assert got["A"][:3] == (1, 1, 1) and got["B"][:3] == (1, 1, 1) and got["C"][:3] == (1, 0, 1)
    assert got["A"][3:5] == pytest.approx((0.5, 0.5))
    assert got["B"][3:5] == pytest.approx((0.5, 0.5))
    assert got["C"][3:5] == pytest.approx((1.0, 0.5))
    assert [got[t][5] for t in LABELS] == pytest.approx([5 / 6, 5 / 6, 1.0])
    assert [got[t][6] for t in LABELS] == [2, 2, 2]
    assert ev.precision == pytest.approx(3 / 5)
    assert ev.recall == pytest.approx(3 / 6)
    assert ev.map == pytest.approx((5 / 6 + 5 / 6 + 1) / 3)
    assert ev.accuracy == pytest.approx(3 / 6)
    assert ev.confusion == [[1, 1, 0], [0, 1, 1], [1, 0, 1]]
    mistakes = [(m.file, m.truth, m.predicted, m.probability) for m in ev.mistakes]
    assert mistakes == [("i1", "A", "B", 0.5), ("i5", "C", "A", 0.5), ("i3", "B", "C", 0.4)]
    assert ev.mistakes[1].truth_probability == pytest.approx(0.45)


def test_threshold_changes_precision_recall_but_not_ap() -> None:
    ev = evaluate_predictions(PROBS, TRUTH, LABELS, threshold=0.4)
    a = ev.per_tag[0]
    # A at 0.4: i0 0.7 (+), i1 0.4 (+), i5 0.5 (-) -> TP 2 FP 1 FN 0
    assert (a.tp, a.fp, a.fn) == (2, 1, 0)
    assert a.precision == pytest.approx(2 / 3) and a.recall == pytest.approx(1.0)
    assert a.ap == pytest.approx(5 / 6)


def test_average_precision_on_a_ranked_list() -> None:
    # ranks 1..5 with hits at 1, 3, 5: precisions 1/1, 2/3, 3/5; each hit adds 1/3 recall
    ap = average_precision(np.array([0.9, 0.8, 0.7, 0.6, 0.5]), np.array([1, 0, 1, 0, 1]))
    assert ap == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)  # 0.755555...
    # a tie is one threshold: {0.9}: P 1, R 1/2; {0.8, 0.8}: P 2/3, R 1 -> 1/2 + 1/2 * 2/3
    tied = average_precision(np.array([0.9, 0.8, 0.8, 0.3]), np.array([1, 0, 1, 0]))
    assert tied == pytest.approx(0.5 + 0.5 * 2 / 3)
    # order of equal scores does not matter
    assert average_precision(np.array([0.9, 0.8, 0.8, 0.3]), np.array([1, 1, 0, 0])) == pytest.approx(tied)
    assert average_precision(np.array([0.2, 0.9]), np.array([1, 1])) == pytest.approx(1.0)
    assert average_precision(np.array([0.2, 0.9]), np.array([0, 0])) is None


def test_tag_without_images_is_undefined_and_json_safe() -> None:
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    ev = evaluate_predictions(probs, [0, 1, 1], LABELS)
    c = ev.per_tag[2]
    assert (c.images, c.recall, c.ap, c.precision) == (0, None, None, 0.0)
    assert ev.map == pytest.approx((1.0 + 1.0) / 2)  # A: 0.9(+) first; B: 0.7(+) 0.3(+) ahead of 0.05
    json.dumps(ev.to_dict(), allow_nan=False)


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="do not match 3 labels"):
        evaluate_predictions(PROBS[:, :2], TRUTH, LABELS)
    with pytest.raises(InputError, match="truth indices must lie in 0..2"):
        evaluate_predictions(PROBS, [0, 0, 1, 1, 2, 3], LABELS)
    with pytest.raises(InputError, match="threshold 1.5"):
        evaluate_predictions(PROBS, TRUTH, LABELS, threshold=1.5)


# ---------------------------------------------------------------------------- commands
COLOURS = {"Red": (220, 30, 30), "Green": (30, 200, 30), "Blue": (20, 30, 210)}


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    # outputs in Red, Green, Blue order; probabilities = softmax(0.05 * mean RGB)
    return export_folder(
        tmp_path / "model", ["Red", "Green", "Blue"], size=32, weights=np.eye(3) * 0.05,
        metadata={"Image.BitmapPixelFormat": "Rgb8", "Image.NominalPixelRange": "NominalRange_0_255"},
    )


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    for tag, colour in COLOURS.items():
        (root / tag).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (40, 40), tuple(min(255, v + i) for v in colour)).save(root / tag / f"{i}.png")
    # greener than every Green plot: the most "Green" and the least "Red" plot of the set
    Image.new("RGB", (40, 40), (30, 250, 30)).save(root / "Red" / "mislabelled.png")
    return root


def test_evaluate_command_json(model_dir: Path, dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(model_dir), str(dataset), "--json", "--batch-size", "4"]) == 0
    doc = json.loads(capsys.readouterr().out)
    tags = {t["tag"]: t for t in doc["per_tag"]}
    assert doc["images"] == 16 and doc["labels"] == ["Red", "Green", "Blue"]
    assert tags["Red"]["images"] == 6 and tags["Red"]["recall"] == pytest.approx(5 / 6)
    assert tags["Red"]["precision"] == pytest.approx(1.0)
    assert tags["Green"]["precision"] == pytest.approx(5 / 6) and tags["Green"]["recall"] == pytest.approx(1.0)
    assert tags["Blue"]["precision"] == pytest.approx(1.0) and tags["Blue"]["recall"] == pytest.approx(1.0)
    assert doc["precision"] == pytest.approx(15 / 16) and doc["recall"] == pytest.approx(15 / 16)
    assert doc["confusion"] == [[5, 1, 0], [0, 5, 0], [0, 0, 5]]
    assert [(m["file"], m["truth"], m["predicted"]) for m in doc["mistakes"]] == [
        (str(Path("Red") / "mislabelled.png"), "Red", "Green")
    ]
    # Red AP: the mislabelled plot has the lowest Red probability of all 16 -> P 6/16 at its rank
    assert tags["Red"]["ap"] == pytest.approx(5 / 6 * 1 + 1 / 6 * 6 / 16)
    # Green AP: it ranks first for Green (a false positive), then the 5 Green plots, which tie
    # (adding i to every channel cancels in the softmax): one step to recall 1 at precision 5/6
    assert tags["Green"]["ap"] == pytest.approx(5 / 6)
    assert tags["Blue"]["ap"] == pytest.approx(1.0)
    assert doc["map"] == pytest.approx((tags["Red"]["ap"] + tags["Green"]["ap"] + 1.0) / 3)
    assert doc["model"]["backend"] == "onnx"


def test_evaluate_command_table(model_dir: Path, dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(model_dir), str(dataset), "--threshold", "0.9"]) == 0
    out = capsys.readouterr().out
    assert "Performance per tag" in out and "overall" in out and "mAP" in out
    assert "Confusion matrix" in out and "mislabelled.png" in out


def test_evaluate_command_errors(model_dir: Path, dataset: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    (dataset / "Water").mkdir()
    Image.new("RGB", (4, 4)).save(dataset / "Water" / "w.png")
    assert main(["evaluate", str(model_dir), str(dataset)]) == 1
    assert "tag folders Water" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "no_model"), str(dataset)]) == 1
    assert "no_model does not exist" in capsys.readouterr().err


def test_predict_png_and_geotiff(model_dir: Path, tmp_path: Path, write_raster,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "plot.png"
    Image.new("RGB", (224, 224), COLOURS["Blue"]).save(png)
    data = np.zeros((4, 50, 50), np.uint8)
    data[0], data[1], data[2], data[3] = 30, 200, 30, 255  # green plot with a NIR band
    tif = write_raster("plot.tif", data, "EPSG:26914", from_origin(500000, 4000000, 1, 1))
    assert main(["predict", str(model_dir), str(png), str(tif), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    first, second = doc["images"]
    assert first["file"] == str(png) and first["predictions"][0]["tagName"] == "Blue"
    assert second["predictions"][0]["tagName"] == "Green"
    assert len(second["predictions"]) == 3
    probs = [p["probability"] for p in second["predictions"]]
    assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0, abs=1e-5)
    assert main(["predict", str(model_dir), str(tif), "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "plot.tif" in out and "Green" in out and "Red" not in out


def test_predict_one_compact_table_and_csv(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Several images: one table (a row per image: file, top tag, probability, the rest), and CSV."""
    import csv
    import io

    files = []
    for tag, colour in COLOURS.items():
        files.append(tmp_path / f"{tag.lower()}.png")
        Image.new("RGB", (64, 64), colour).save(files[-1])
    assert main(["predict", str(model_dir), *map(str, files)]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 + len(files), out  # one header, one row per image: not one table per image
    assert "top tag" in lines[0] and "the rest" in lines[0]
    for line, (tag, _c) in zip(lines[1:], COLOURS.items(), strict=True):
        others = [t for t in COLOURS if t != tag]
        assert f"{tag.lower()}.png" in line and line.split()[1] == tag and all(o in line for o in others)
    assert main(["predict", str(model_dir), *map(str, files), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["top_tag"] for r in rows] == list(COLOURS)
    for r in rows:
        probs = [float(r[f"prob_{t}"]) for t in ("Red", "Green", "Blue")]
        assert sum(probs) == pytest.approx(1.0, abs=1e-5) and float(r["probability"]) == pytest.approx(max(probs), abs=1e-6)
    assert main(["predict", str(model_dir), str(files[0]), "--csv", "--json"]) == 1
    assert "choose one" in capsys.readouterr().err


def test_predict_errors(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["predict", str(model_dir), str(tmp_path / "notes.txt")]) == 1
    assert "notes.txt cannot be read" in capsys.readouterr().err
    assert main(["predict", str(model_dir), str(tmp_path / "gone.png")]) == 1
    assert "gone.png does not exist" in capsys.readouterr().err


def test_landuse_predict_subprocess(model_dir: Path, tmp_path: Path) -> None:
    png = tmp_path / "red.png"
    Image.new("RGB", (64, 64), COLOURS["Red"]).save(png)
    exe = Path(sys.executable).with_name("landuse")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "landuse"]
    res = subprocess.run([*cmd, "predict", str(model_dir), str(png), "--json"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["images"][0]["predictions"][0]["tagName"] == "Red"
