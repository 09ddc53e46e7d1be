"""The ONNX backend against tiny models built here with onnx.helper (both Custom Vision generations).

The models average each input channel over the image (ReduceMean), multiply by a weight matrix
(MatMul) and apply Softmax, so the expected probabilities of a uniform-colour plot are a softmax
of known numbers, computed here by hand with math.exp.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from landuse.classify.base import load_classifier
from landuse.classify.onnx import OnnxClassifier
from landuse.errors import ModelError

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def build_model(
    path: Path,
    *,
    weights: np.ndarray | None = None,
    size: int = 32,
    batch: int | str = "N",
    layout: str = "NCHW",
    dtype: int = TensorProto.FLOAT,
    softmax: bool = True,
    output: str = "model_output",
    metadata: dict[str, str] | None = None,
    generation: str = "B",
    zipmap_labels: list[str] | None = None,
) -> Path:
    """Write a mean-colour classifier: probs = softmax(mean_rgb_per_channel @ weights)."""
    w = np.eye(3, dtype=np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
    n_cls = w.shape[1]
    shape = [batch, 3, size, size] if layout == "NCHW" else [batch, size, size, 3]
    axes = [2, 3] if layout == "NCHW" else [1, 2]
    nodes, x = [], "data"
    if dtype == TensorProto.FLOAT16:
        nodes.append(helper.make_node("Cast", ["data"], ["x32"], to=TensorProto.FLOAT))
        x = "x32"
    nodes.append(helper.make_node("ReduceMean", [x], ["means"], axes=axes, keepdims=0))
    inits = [helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.flatten().tolist())]
    nodes.append(helper.make_node("MatMul", ["means", "W"], ["logits" if softmax else output]))
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs" if generation == "A" else output], axis=1))
    inputs = [helper.make_tensor_value_info("data", dtype, shape)]
    if generation == "A":
        labels = zipmap_labels or [f"c{i}" for i in range(n_cls)]
        nodes += [
            helper.make_node("ZipMap", ["probs"], ["loss"], domain="ai.onnx.ml", classlabels_strings=labels),
            helper.make_node("ArgMax", ["probs"], ["idx"], axis=1, keepdims=1),
            helper.make_node("LabelEncoder", ["idx"], ["classLabel"], domain="ai.onnx.ml",
                             keys_int64s=list(range(n_cls)), values_strings=labels, default_string="?"),
        ]
        seq = helper.make_sequence_type_proto(
            helper.make_map_type_proto(TensorProto.STRING, helper.make_tensor_type_proto(TensorProto.FLOAT, []))
        )
        outputs = [
            helper.make_tensor_value_info("classLabel", TensorProto.STRING, [batch, 1]),
            helper.make_value_info("loss", seq),
        ]
    else:
        outputs = [helper.make_tensor_value_info(output, TensorProto.FLOAT, [batch, n_cls])]
    graph = helper.make_graph(nodes, "meancolour", inputs, outputs, initializer=inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("ai.onnx.ml", 2)]
    )
    model.ir_version = 8
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def export_folder(
    folder: Path,
    labels: list[str],
    *,
    sidecar: dict | None = None,
    manifest: dict | None = None,
    **model_kw,
) -> Path:
    """A Custom Vision style export folder: model.onnx, labels.txt, optional sidecars."""
    folder.mkdir(parents=True, exist_ok=True)
    build_model(folder / "model.onnx", **model_kw)
    (folder / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    if sidecar is not None:
        (folder / "metadata_properties.json").write_text(json.dumps(sidecar))
    if manifest is not None:
        (folder / "cvexport.manifest").write_text(json.dumps(manifest))
    return folder


def zip_folder(folder: Path, dest: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, prefix + f.name)
    return dest


def plots(*colours: tuple[int, int, int], size: int = 32) -> np.ndarray:
    return np.stack([np.broadcast_to(np.array(c, np.uint8), (size, size, 3)) for c in colours]).copy()


def softmax(values: list[float]) -> list[float]:
    e = [math.exp(v) for v in values]
    return [x / sum(e) for x in e]


def trainer_like(tmp_path: Path) -> Path:
    """The layout the trainer exports: newer generation, 224 px, dynamic batch, RGB 0-255."""
    return export_folder(
        tmp_path / "export",
        ["Barren", "Cultivated", "Developed"],
        size=224,
        weights=np.eye(3) * 0.01,
        metadata={"Image.BitmapPixelFormat": "Rgb8", "Image.NominalPixelRange": "NominalRange_0_255"},
        # the sidecar contradicts the embedded metadata, as real exports do; it must be ignored
        sidecar={"CustomVision.Postprocess.Method": "ClassificationMultiClass",
                 "Image.BitmapPixelFormat": "Bgr8", "Image.NominalPixelRange": "Normalized_0_1"},
        manifest={"DomainType": "Classification", "Platform": "ONNX", "ModelFileName": "model.onnx",
                  "LabelFileName": "labels.txt"},
    )


# ---------------------------------------------------------------------------- newer generation
def test_trainer_export_loads_with_no_flags(tmp_path: Path) -> None:
    folder = trainer_like(tmp_path)
    clf = load_classifier(folder)
    assert isinstance(clf, OnnxClassifier)
    assert clf.labels == ["Barren", "Cultivated", "Developed"]
    assert clf.input_size == (224, 224)
    assert (clf.color, clf.scale, clf.generation, clf.layout) == ("rgb", "0-255", "B", "NCHW")
    assert clf.multilabel is False and clf.backend == "onnx"
    assert clf.fixed_batch is None
    assert clf.model_hash == hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    probs = clf.predict(plots(RED, BLUE, (100, 50, 0), size=224))
    assert probs.dtype == np.float32 and probs.shape == (3, 3)
    np.testing.assert_allclose(probs[0], softmax([2.55, 0, 0]), rtol=1e-5)
    np.testing.assert_allclose(probs[1], softmax([0, 0, 2.55]), rtol=1e-5)
    np.testing.assert_allclose(probs[2], softmax([1.0, 0.5, 0]), rtol=1e-5)


def test_bgr_model_sees_red_in_channel_2(tmp_path: Path) -> None:
    folder = export_folder(tmp_path / "m", ["ch0", "ch1", "ch2"], metadata={"Image.BitmapPixelFormat": "Bgr8"})
    clf = OnnxClassifier.load(folder)
    assert clf.color == "bgr"
    probs = clf.predict(plots(RED))
    assert probs[0].argmax() == 2
    np.testing.assert_allclose(probs[0], softmax([0, 0, 255]), atol=1e-6)
    # the explicit override wins over the metadata
    assert OnnxClassifier.load(folder, color="rgb").predict(plots(RED))[0].argmax() == 0


def test_metadata_keys_and_values_are_case_insensitive(tmp_path: Path) -> None:
    folder = export_folder(tmp_path / "m", ["a", "b", "c"],
                           metadata={"image.bitmappixelformat": "BGR8", "IMAGE.NOMINALPIXELRANGE": "normalized_0_1"})
    clf = OnnxClassifier.load(folder)
    assert (clf.color, clf.scale) == ("bgr", "0-1")


@pytest.mark.parametrize(
    ("pixel_range", "expected_logits"),
    [
        ("NominalRange_0_255", [255.0, 0.0, 0.0]),
        ("Normalized_0_1", [1.0, 0.0, 0.0]),
        ("Normalized_1_1", [1.0, -1.0, -1.0]),
    ],
)
def test_metadata_driven_pixel_range(tmp_path: Path, pixel_range: str, expected_logits: list[float]) -> None:
    folder = export_folder(tmp_path / "m", ["r", "g", "b"], metadata={"Image.NominalPixelRange": pixel_range})
    probs = OnnxClassifier.load(folder).predict(plots(RED))
    np.testing.assert_allclose(probs[0], softmax(expected_logits), rtol=1e-5, atol=1e-7)


def test_scale_override_and_default(tmp_path: Path) -> None:
    folder = export_folder(tmp_path / "m", ["r", "g", "b"])  # no metadata at all
    clf = OnnxClassifier.load(folder)
    assert (clf.color, clf.scale) == ("rgb", "0-255")
    assert clf.preprocessing["scale_from"] == "default"
    probs = OnnxClassifier.load(folder, scale="0-1").predict(plots((51, 0, 102)))
    np.testing.assert_allclose(probs[0], softmax([0.2, 0.0, 0.4]), rtol=1e-5)


def test_float16_input(tmp_path: Path) -> None:
    folder = export_folder(tmp_path / "m", ["r", "g", "b"], dtype=TensorProto.FLOAT16,
                           metadata={"Image.NominalPixelRange": "Normalized_0_1"})
    clf = OnnxClassifier.load(folder)
    assert clf.input_dtype == np.float16
    probs = clf.predict(plots((51, 0, 102), GREEN))
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs[0], softmax([0.2, 0.0, 0.4]), rtol=2e-3)
    np.testing.assert_allclose(probs[1], softmax([0.0, 1.0, 0.0]), rtol=2e-3)


def test_nhwc_input(tmp_path: Path) -> None:
    folder = export_folder(tmp_path / "m", ["r", "g", "b"], layout="NHWC", size=16, weights=np.eye(3) * 0.01)
    clf = OnnxClassifier.load(folder)
    assert clf.layout == "NHWC" and clf.input_size == (16, 16)
    probs = clf.predict(plots(GREEN, (10, 20, 30), size=16))
    np.testing.assert_allclose(probs[0], softmax([0, 2.55, 0]), rtol=1e-5)
    np.testing.assert_allclose(probs[1], softmax([0.1, 0.2, 0.3]), rtol=1e-5)


def test_fixed_batch_of_one(tmp_path: Path) -> None:
    folder = export_folder(tmp_path / "m", ["r", "g", "b"], batch=1, weights=np.eye(3) * 0.01)
    clf = OnnxClassifier.load(folder)
    assert clf.fixed_batch == 1
    colours = [RED, GREEN, BLUE, (10, 20, 30), (200, 100, 0)]
    probs = clf.predict(plots(*colours))
    assert probs.shape == (5, 3)
    for row, c in zip(probs, colours, strict=True):
        np.testing.assert_allclose(row, softmax([v * 0.01 for v in c]), rtol=1e-5)
    session = clf.session()
    again = clf.predict(plots(*colours[::-1]))
    assert clf.session() is session  # the session is never re-created
    np.testing.assert_allclose(again, probs[::-1], rtol=1e-6)


def test_fixed_batch_of_four_pads_the_last_chunk(tmp_path: Path) -> None:
    folder = export_folder(tmp_path / "m", ["r", "g", "b"], batch=4, weights=np.eye(3) * 0.01)
    clf = OnnxClassifier.load(folder)
    colours = [RED, GREEN, BLUE, (10, 20, 30), (200, 100, 0), (1, 2, 3)]
    probs = clf.predict(plots(*colours))
    for row, c in zip(probs, colours, strict=True):
        np.testing.assert_allclose(row, softmax([v * 0.01 for v in c]), rtol=1e-5)


def test_small_batch_size_option_splits_runs(tmp_path: Path) -> None:
    folder = export_folder(tmp_path / "m", ["r", "g", "b"], weights=np.eye(3) * 0.01)
    colours = [RED, GREEN, BLUE, (10, 20, 30), (200, 100, 0)]
    whole = OnnxClassifier.load(folder).predict(plots(*colours))
    split = OnnxClassifier.load(folder, batch_size=2).predict(plots(*colours))
    np.testing.assert_allclose(split, whole, rtol=1e-6)
    assert OnnxClassifier.load(folder).predict(plots(RED)[:0]).shape == (0, 3)


def test_plots_not_at_input_size_are_resized(tmp_path: Path) -> None:
    folder = export_folder(tmp_path / "m", ["r", "g", "b"], size=32, weights=np.eye(3) * 0.01)
    clf = OnnxClassifier.load(folder)
    big = plots((10, 20, 30), size=224)
    np.testing.assert_allclose(clf.predict(big)[0], softmax([0.1, 0.2, 0.3]), rtol=1e-5)


def test_generic_logits_get_softmax(tmp_path: Path) -> None:
    model = build_model(tmp_path / "net.onnx", softmax=False, output="logits", weights=np.eye(3) * 0.01)
    clf = OnnxClassifier.load(model, labels=["r", "g", "b"])
    assert clf.generation == "generic"
    probs = clf.predict(plots((100, 200, 50)))
    np.testing.assert_allclose(probs[0], softmax([1.0, 2.0, 0.5]), rtol=1e-5)
    assert clf.preprocessing["postprocess"] == "softmax"


def test_generic_probabilities_are_not_softmaxed_twice(tmp_path: Path) -> None:
    model = build_model(tmp_path / "net.onnx", output="prob", weights=np.eye(3) * 0.01)
    probs = OnnxClassifier.load(model, labels=["r", "g", "b"]).predict(plots((100, 200, 50)))
    np.testing.assert_allclose(probs[0], softmax([1.0, 2.0, 0.5]), rtol=1e-5)


def test_bare_onnx_with_labels_file_and_html_escapes(tmp_path: Path) -> None:
    model = build_model(tmp_path / "a" / "net.onnx")
    lab = tmp_path / "my_labels.txt"
    lab.write_text("\ufeffLow\n\n High(&gt;10) \nMid\n", encoding="utf-8")
    clf = OnnxClassifier.load(model, labels=lab)
    assert clf.labels == ["Low", "High(>10)", "Mid"]
    # a labels.txt beside a bare model is picked up
    (model.parent / "labels.txt").write_text("x\ny\nz\n")
    assert OnnxClassifier.load(model).labels == ["x", "y", "z"]


# ---------------------------------------------------------------------------- layouts
def test_zip_and_folder_give_the_same_result(tmp_path: Path) -> None:
    folder = trainer_like(tmp_path)
    z1 = zip_folder(folder, tmp_path / "export.zip")
    z2 = zip_folder(folder, tmp_path / "nested.zip", prefix="export/")
    batch = plots(RED, (10, 20, 30), size=224)
    ref = OnnxClassifier.load(folder).predict(batch)
    for z in (z1, z2):
        clf = load_classifier(z)
        assert clf.labels == ["Barren", "Cultivated", "Developed"]
        assert clf.model_hash == hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
        np.testing.assert_allclose(clf.predict(batch), ref, rtol=1e-6)


def test_multilabel_from_sidecar_postprocess_method(tmp_path: Path) -> None:
    folder = export_folder(tmp_path / "m", ["a", "b", "c"],
                           sidecar={"CustomVision.Postprocess.Method": "ClassificationMultiLabel"})
    assert OnnxClassifier.load(folder).multilabel is True
    folder2 = export_folder(tmp_path / "m2", ["a", "b", "c"], manifest={"ClassificationType": "Multilabel"})
    assert OnnxClassifier.load(folder2).multilabel is True
    folder3 = export_folder(tmp_path / "m3", ["a", "b", "c"])
    assert OnnxClassifier.load(folder3).multilabel is False


def test_pickle_roundtrip_recreates_the_session(tmp_path: Path) -> None:
    clf = OnnxClassifier.load(zip_folder(trainer_like(tmp_path), tmp_path / "e.zip"), threads=2)
    batch = plots(RED, BLUE, size=224)
    ref = clf.predict(batch)
    blob = pickle.dumps(clf)
    assert len(blob) < 10_000  # path + options + settings, not the model
    other = pickle.loads(blob)
    assert other._session is None
    np.testing.assert_allclose(other.predict(batch), ref, rtol=1e-6)
    assert other.session().get_session_options().intra_op_num_threads == 2


def test_session_threads(tmp_path: Path) -> None:
    folder = export_folder(tmp_path / "m", ["a", "b", "c"])
    opts = OnnxClassifier.load(folder).session().get_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
    assert OnnxClassifier.load(folder, threads=2).session().get_session_options().intra_op_num_threads == 2


# ---------------------------------------------------------------------------- older generation
def gen_a(tmp_path: Path, labels_txt: list[str] | None, zip_labels: list[str]) -> Path:
    folder = tmp_path / "gena"
    folder.mkdir()
    build_model(folder / "model.onnx", generation="A", size=227, zipmap_labels=zip_labels,
                weights=np.eye(3) * 0.01, metadata={"Image.BitmapPixelFormat": "Bgr8"})
    if labels_txt is not None:
        (folder / "labels.txt").write_text("\n".join(labels_txt))
    return folder


def test_generation_a_zipmap_is_bgr_0_255(tmp_path: Path) -> None:
    # ZipMap keys in graph order ch0..ch2; labels.txt lists them in another order
    folder = gen_a(tmp_path, ["ch2", "ch0", "ch1"], ["ch0", "ch1", "ch2"])
    clf = OnnxClassifier.load(folder)
    assert clf.generation == "A" and clf.input_size == (227, 227)
    assert (clf.color, clf.scale) == ("bgr", "0-255")  # no NominalPixelRange: 0-255 all the same
    probs = clf.predict(plots(RED, (10, 20, 30), size=224))  # resized to 227, batch of 2
    assert probs.shape == (2, 3)
    # BGR: red lands in graph channel 2 -> ZipMap key ch2, which is labels.txt line 0
    exp0 = softmax([0.0, 0.0, 2.55])  # ch0, ch1, ch2
    np.testing.assert_allclose(probs[0], [exp0[2], exp0[0], exp0[1]], rtol=1e-5)
    exp1 = softmax([0.30, 0.20, 0.10])
    np.testing.assert_allclose(probs[1], [exp1[2], exp1[0], exp1[1]], rtol=1e-5)


def test_generation_a_labels_from_zipmap_when_no_labels_file(tmp_path: Path) -> None:
    clf = OnnxClassifier.load(gen_a(tmp_path, None, ["cat", "dog", "Negative"]))
    assert clf.labels == ["cat", "dog", "Negative"]
    assert clf.predict(plots(BLUE, size=227))[0].argmax() == 0  # blue is graph channel 0 in BGR


def test_generation_a_labels_mismatch(tmp_path: Path) -> None:
    folder = gen_a(tmp_path, ["cat", "dog", "bird"], ["cat", "dog", "Negative"])
    with pytest.raises(ModelError, match=r"labels\.txt"):
        OnnxClassifier.load(folder)


# ---------------------------------------------------------------------------- errors
def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="nope.zip does not exist"):
        load_classifier(tmp_path / "nope.zip")
    with pytest.raises(ModelError, match="nope.onnx does not exist"):
        OnnxClassifier.load(tmp_path / "nope.onnx", labels=["a"])


def test_folder_without_model(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"empty has no model\.onnx"):
        OnnxClassifier.load(tmp_path / "empty")


def test_zip_without_model(tmp_path: Path) -> None:
    z = tmp_path / "export.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("labels.txt", "a\nb\n")
    with pytest.raises(ModelError, match=r"export\.zip holds no model\.onnx"):
        OnnxClassifier.load(z)


def test_corrupt_zip(tmp_path: Path) -> None:
    z = tmp_path / "broken.zip"
    z.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ModelError, match=r"broken\.zip is corrupt"):
        OnnxClassifier.load(z)


def test_corrupt_onnx(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"\x00garbage" * 100)
    (folder / "labels.txt").write_text("a\nb\n")
    with pytest.raises(ModelError, match=r"model\.onnx cannot be loaded"):
        OnnxClassifier.load(folder)


def test_bare_onnx_without_labels(tmp_path: Path) -> None:
    model = build_model(tmp_path / "net.onnx")
    with pytest.raises(ModelError, match=r"net\.onnx has no labels\.txt"):
        OnnxClassifier.load(model)
    with pytest.raises(ModelError, match="missing.txt does not exist"):
        OnnxClassifier.load(model, labels=tmp_path / "missing.txt")
    with pytest.raises(ModelError, match="empty labels list"):
        OnnxClassifier.load(model, labels=[])


def test_label_count_mismatch(tmp_path: Path) -> None:
    folder = export_folder(tmp_path / "m", ["a", "b"])  # 3 outputs, 2 labels
    with pytest.raises(ModelError, match=r"outputs 3 classes but 2 labels"):
        OnnxClassifier.load(folder)
    # a class dimension that shape inference cannot know is checked at predict time:
    # here the "classes" are the columns of a 4-row input of dynamic width (224 by default)
    g = helper.make_graph(
        [helper.make_node("ReduceMean", ["data"], ["out"], axes=[1, 2], keepdims=0)], "dyn",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 4, "W"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", "W"])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, tmp_path / "dyn.onnx")
    clf = OnnxClassifier.load(tmp_path / "dyn.onnx", labels=["a", "b"])
    assert clf.input_size == (4, 224)
    with pytest.raises(ModelError, match=r"dyn\.onnx outputs 224 classes but has 2 labels"):
        clf.predict(plots(RED))


def test_bad_labels_files(tmp_path: Path) -> None:
    folder = export_folder(tmp_path / "m", ["a", "b", "c"])
    (folder / "labels.txt").write_text("\n \n")
    with pytest.raises(ModelError, match=r"labels\.txt is empty"):
        OnnxClassifier.load(folder)
    (folder / "labels.txt").write_text("a\nb\na\n")
    with pytest.raises(ModelError, match="repeats a"):
        OnnxClassifier.load(folder)
    (folder / "labels.txt").write_text("a\nb\nc\n")
    (folder / "metadata_properties.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"metadata_properties\.json is not valid JSON"):
        OnnxClassifier.load(folder)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 32, 32, 3), dtype=np.float32),  # not uint8
        np.zeros((32, 32, 3), dtype=np.uint8),  # no batch axis
        np.zeros((2, 32, 32, 4), dtype=np.uint8),  # RGBA
        [[1, 2, 3]],  # not an array
    ],
)
def test_non_image_inputs(tmp_path: Path, bad: object) -> None:
    folder = export_folder(tmp_path / "m", ["a", "b", "c"])
    clf = OnnxClassifier.load(folder)
    with pytest.raises(ModelError, match=r"takes uint8 RGB plots shaped \(N, H, W, 3\)"):
        clf.predict(bad)  # type: ignore[arg-type]


def test_bad_preprocessing_options_and_metadata(tmp_path: Path) -> None:
    folder = export_folder(tmp_path / "m", ["a", "b", "c"])
    with pytest.raises(ModelError, match="pixel range '0-100'"):
        OnnxClassifier.load(folder, scale="0-100")
    with pytest.raises(ModelError, match="pixel format 'hsv'"):
        OnnxClassifier.load(folder, color="hsv")
    gray = export_folder(tmp_path / "g", ["a", "b", "c"], metadata={"Image.BitmapPixelFormat": "Gray8"})
    with pytest.raises(ModelError, match=r"'Gray8' \(Image\.BitmapPixelFormat of .*model\.onnx\)"):
        OnnxClassifier.load(gray)


def test_models_that_are_not_image_classifiers(tmp_path: Path) -> None:
    # two inputs
    g = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"])], "two",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3, 8, 8]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, tmp_path / "two.onnx")
    with pytest.raises(ModelError, match=r"two\.onnx has 2 inputs"):
        OnnxClassifier.load(tmp_path / "two.onnx", labels=["a"])
    # int input
    g = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)], "int",
        [helper.make_tensor_value_info("x", TensorProto.INT32, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, tmp_path / "int.onnx")
    with pytest.raises(ModelError, match=r"int\.onnx input 'x' is tensor\(int32\)"):
        OnnxClassifier.load(tmp_path / "int.onnx", labels=["a"])


def test_changed_model_file_is_detected_after_unpickling(tmp_path: Path) -> None:
    folder = export_folder(tmp_path / "m", ["a", "b", "c"])
    blob = pickle.dumps(OnnxClassifier.load(folder))
    build_model(folder / "model.onnx", weights=np.eye(3) * 2)
    with pytest.raises(ModelError, match="changed since it was loaded"):
        pickle.loads(blob).predict(plots(RED))
