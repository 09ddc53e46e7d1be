"""``landuse serve`` as a real subprocess on 127.0.0.1, driven by the official Custom Vision SDK."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from tests.fakecv import DEFAULT_TAGS, colour_probabilities, random_plots

ROOT = Path(__file__).resolve().parents[1]
KEY = "serve-test-key-0123"
PROJECT = str(uuid.UUID(int=42))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, proc: subprocess.Popen, port: int) -> None:
        self.proc, self.port = proc, port
        self.endpoint = f"http://127.0.0.1:{port}"

    def url(self, path: str) -> str:
        return self.endpoint + path


def start_serve(args: list[str], env_extra: dict[str, str] | None = None, key: str | None = KEY) -> Served:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANDUSE_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if key is not None:
        env["LANDUSE_SERVE_KEY"] = key
    env.update(env_extra or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "landuse", "serve", *args, "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"landuse serve exited {proc.returncode}: {proc.stderr.read()}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return Served(proc, port)
        except requests.ConnectionError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("landuse serve did not come up in 60 s")


def stop(served: Served) -> str:
    served.proc.terminate()
    try:
        _, err = served.proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        served.proc.kill()
        _, err = served.proc.communicate()
    return err


@pytest.fixture(scope="module")
def colour_server() -> Iterator[Served]:
    served = start_serve(["py:tests.fakecv:make_colour_classifier"])
    yield served
    stop(served)


@pytest.fixture(scope="module")
def restricted_server() -> Iterator[Served]:
    served = start_serve([
        "py:tests.fakecv:make_colour_classifier", "--project-id", PROJECT, "--published-name", "Prod",
        "--enable-url-routes",
    ])
    yield served
    stop(served)


def sdk_client(endpoint: str, key: str = KEY):
    from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
    from msrest.authentication import ApiKeyCredentials

    return CustomVisionPredictionClient(endpoint, ApiKeyCredentials(in_headers={"Prediction-key": key}))


def png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def post(served: Served, path: str, body: bytes, key: str | None = KEY, ctype: str = "application/octet-stream"):
    headers = {"Content-Type": ctype}
    if key is not None:
        headers["Prediction-Key"] = key
    return requests.post(served.url(path), data=body, headers=headers, timeout=30)


CLOUD = f"/customvision/v3.1/prediction/{PROJECT}/classify/iterations/Prod/image"


# ------------------------------------------------------------------------------ SDK round trip
def test_sdk_classify_image_equals_local_probabilities(colour_server: Served) -> None:
    client = sdk_client(colour_server.endpoint)
    images = random_plots(4, seed=7)
    for i, px in enumerate(images):
        call = client.classify_image if i % 2 else client.classify_image_with_no_store
        result = call(PROJECT, "Iteration 1/a", io.BytesIO(png(px)))
        got = {p.tag_name: p.probability for p in result.predictions}
        expected = colour_probabilities(px, 3)
        assert set(got) == set(DEFAULT_TAGS)
        np.testing.assert_allclose([got[t] for t in DEFAULT_TAGS], expected, rtol=0, atol=1e-7)
        probs = [p.probability for p in result.predictions]
        assert probs == sorted(probs, reverse=True)
        assert result.project == PROJECT
        assert all(p.tag_type == "Regular" for p in result.predictions)
        assert result.created.tzinfo is not None
        assert len({p.tag_id for p in result.predictions}) == 3


def test_seed_snippet_with_open_file_works_unchanged(colour_server: Served, tmp_path: Path) -> None:
    # the seeds' prediction snippet: open the file, classify_image(project.id, publish_iteration_name, ...)
    path = tmp_path / "plot.png"
    px = random_plots(1, seed=3)[0]
    path.write_bytes(png(px))
    predictor = sdk_client(colour_server.endpoint)
    with open(path, "rb") as image_contents:
        results = predictor.classify_image(PROJECT, "Iteration1", image_contents.read())
    top = results.predictions[0]
    assert top.tag_name == DEFAULT_TAGS[int(np.argmax(colour_probabilities(px, 3)))]


def test_v30_octet_stream_case_insensitive_prefix_and_docker_routes(colour_server: Served) -> None:
    body = png(random_plots(1, seed=1)[0])
    r = post(colour_server, f"/some/prefix/CustomVision/v3.0/Prediction/{PROJECT}/classify/iterations/X/image/NoStore", body)
    assert r.status_code == 200, r.text
    assert all("tagType" not in p for p in r.json()["predictions"])
    for path in ("/image", f"/{PROJECT}/image/nostore", f"/{PROJECT}/classify/iterations/X/image"):
        r = post(colour_server, path, body)
        assert r.status_code == 200, (path, r.text)
        assert len(r.json()["predictions"]) == 3
    assert requests.get(colour_server.url("/"), timeout=5).text == "CustomVision.ai model host harness"
    assert requests.get(colour_server.url("/health"), timeout=5).json()["labels"] == list(DEFAULT_TAGS)


# ------------------------------------------------------------------------------ errors
def test_missing_and_wrong_key_are_401(colour_server: Served) -> None:
    from azure.cognitiveservices.vision.customvision.prediction.models import (
        CustomVisionErrorException,
    )

    body = png(random_plots(1)[0])
    for key in (None, "wrong"):
        r = post(colour_server, CLOUD, body, key=key)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "401"
    with pytest.raises(CustomVisionErrorException) as info:
        sdk_client(colour_server.endpoint, key="wrong").classify_image(PROJECT, "Prod", body)
    assert info.value.response.status_code == 401


def test_non_image_and_oversize_bodies_are_400(colour_server: Served) -> None:
    r = post(colour_server, CLOUD, b"this is not an image")
    assert r.status_code == 400 and r.json()["code"] == "BadRequestImageFormat"
    # multipart body declared as octet-stream (the pitfall in the reference) is a bad image too
    r = post(colour_server, CLOUD, b"--b\r\nContent-Disposition: form-data; name=\"imageData\"\r\n\r\nxx\r\n--b--\r\n")
    assert r.status_code == 400 and r.json()["code"] == "BadRequestImageFormat"
    big = os.urandom(4 * 1024 * 1024 + 100)
    r = post(colour_server, CLOUD, big)
    assert r.status_code == 400 and r.json()["code"] == "BadRequestImageSizeBytes"
    r = requests.post(colour_server.url(CLOUD), files={"imageData": ("a.png", big)}, headers={"Prediction-Key": KEY}, timeout=30)
    assert r.status_code == 400 and r.json()["code"] == "BadRequestImageSizeBytes"


def test_decompression_bomb_is_refused(colour_server: Served) -> None:
    buf = io.BytesIO()
    Image.new("1", (10000, 10000)).save(buf, format="PNG")  # 1e8 px > Pillow's guard, ~12 KB
    assert len(buf.getvalue()) < 4 * 1024 * 1024
    r = post(colour_server, CLOUD, buf.getvalue())
    assert r.status_code == 400 and r.json()["code"] == "BadRequestImageDimensions"


def test_url_routes_are_off_by_default(colour_server: Served) -> None:
    r = post(colour_server, CLOUD[: -len("image")] + "url", json.dumps({"url": "http://127.0.0.1:1/x.png"}).encode(),
             ctype="application/json")
    assert r.status_code == 404 and "enable-url-routes" in r.json()["message"]


def test_restricted_project_and_name(restricted_server: Served) -> None:
    body = png(random_plots(1)[0])
    assert post(restricted_server, CLOUD, body).status_code == 200
    r = post(restricted_server, CLOUD.replace(PROJECT, str(uuid.UUID(int=7))), body)
    assert r.status_code == 404 and r.json()["code"] == "NotFoundProject"
    r = post(restricted_server, CLOUD.replace("/Prod/", "/Other/"), body)
    assert r.status_code == 404 and r.json()["code"] == "NotFoundIteration"
    from azure.cognitiveservices.vision.customvision.prediction.models import (
        CustomVisionErrorException,
    )

    with pytest.raises(CustomVisionErrorException) as info:
        sdk_client(restricted_server.endpoint).classify_image_with_no_store(PROJECT, "Other", body)
    assert info.value.error.code == "NotFoundIteration"


def test_enabled_url_route_fetches_the_image(restricted_server: Served) -> None:
    px = random_plots(1, seed=11)[0]
    data = png(px)

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        result = sdk_client(restricted_server.endpoint).classify_image_url(
            PROJECT, "Prod", url=f"http://127.0.0.1:{srv.server_address[1]}/plot.png"
        )
    finally:
        srv.shutdown()
    got = {p.tag_name: p.probability for p in result.predictions}
    np.testing.assert_allclose([got[t] for t in DEFAULT_TAGS], colour_probabilities(px, 3), atol=1e-7)


def test_generated_key_is_printed_once_and_works(tmp_path: Path) -> None:
    served = start_serve(["py:tests.fakecv:make_colour_classifier"], key=None, env_extra={"HOME": str(tmp_path)})
    try:
        time.sleep(0.3)
        body = png(random_plots(1)[0])
        assert post(served, CLOUD, body, key="guess").status_code == 401
    finally:
        err = stop(served)
    lines = [ln for ln in err.splitlines() if "generated Prediction-Key" in ln]
    assert len(lines) == 1
    key = lines[0].split("Prediction-Key ")[1].split()[0]
    assert len(key) == 32
    # a fresh server prints a different key
    assert key != KEY


# ------------------------------------------------------------------------------ a real ONNX model
def build_mean_colour_export(folder: Path, labels: list[str]) -> Path:
    """A Custom Vision style export (model.onnx + labels.txt): softmax(mean RGB @ W), 224 px."""
    import onnx
    from onnx import TensorProto, helper

    w = np.array([[0.02, -0.01, 0.0], [0.0, 0.03, -0.02], [-0.01, 0.0, 0.025]], np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["data"], ["means"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["means", "W"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["model_output"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "meancolour",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("model_output", TensorProto.FLOAT, ["N", 3])],
        initializer=[helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.flatten().tolist())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {"Image.BitmapPixelFormat": "Rgb8", "Image.NominalPixelRange": "NominalRange_0_255"})
    folder.mkdir(parents=True)
    onnx.save(model, folder / "model.onnx")
    (folder / "labels.txt").write_text("\n".join(labels) + "\n")
    return folder


def test_onnx_export_served_equals_local_onnx(tmp_path: Path) -> None:
    from landuse.classify.base import load_classifier

    export = build_mean_colour_export(tmp_path / "export", list(DEFAULT_TAGS))
    local = load_classifier(export)
    served = start_serve([str(export)])
    try:
        client = sdk_client(served.endpoint)
        images = random_plots(3, seed=5)
        expected = local.predict(images)
        for px, exp in zip(images, expected, strict=True):
            got = {p.tag_name: p.probability for p in client.classify_image_with_no_store(PROJECT, "p", png(px)).predictions}
            np.testing.assert_allclose([got[t] for t in local.labels], exp, rtol=0, atol=1e-7)
        assert len(set(np.argmax(expected, axis=1))) > 1  # the images are told apart
    finally:
        stop(served)


# ------------------------------------------------------------------------------ pipeline, both backends
def test_classify_backend_customvision_through_serve_matches_onnx(tmp_path: Path, write_raster,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``landuse classify --backend customvision`` pointed at ``landuse serve`` (serving an ONNX
    export) labels every plot as ``landuse classify`` with the ONNX export does."""
    import pyarrow.parquet as pq

    from landuse.cli import main

    raster = _blocky_raster(write_raster)
    export = build_mean_colour_export(tmp_path / "export", list(DEFAULT_TAGS))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the default cache dir lives there
    served = start_serve([str(export)])
    try:
        for name, value in (("PREDICTION_KEY", KEY), ("ENDPOINT", served.endpoint), ("PROJECT_ID", PROJECT),
                            ("PUBLISHED_NAME", "Iteration1")):
            monkeypatch.setenv(f"LANDUSE_CV_{name}", value)
        common = ["--period", "p", "--scheduler", "synchronous", str(raster)]
        assert main(["-q", "classify", "--out", str(tmp_path / "onnx"), "--model", str(export), *common]) == 0
        assert main(["-q", "classify", "--out", str(tmp_path / "cv"), "--backend", "customvision", "--tps", "100",
                     *common]) == 0
    finally:
        stop(served)
    a, b = (pq.read_table(tmp_path / d / "plots.parquet").to_pandas().sort_values(["row", "col"]) for d in ("onnx", "cv"))
    classified = a["status"] == "classified"
    assert classified.sum() >= 9
    assert list(a["label"]) == list(b["label"])  # 100 % agreement
    assert a.loc[classified, "label"].nunique() > 1
    for t in DEFAULT_TAGS:
        np.testing.assert_allclose(a[f"prob_{t}"], b[f"prob_{t}"], atol=1e-6)
    files = [f for f in (tmp_path / "cv").rglob("*") if f.is_file()]
    assert files and all(KEY.encode() not in f.read_bytes() for f in files)  # manifest, outputs


def _blocky_raster(write_raster) -> Path:
    from affine import Affine

    rng = np.random.default_rng(3)
    blocks = rng.integers(0, 256, (3, 8, 8), dtype=np.uint8)
    data = blocks.repeat(14, axis=1).repeat(14, axis=2)  # 112 x 112 px of 10 m: 5 x 5 plots
    return write_raster("scene.tif", data, "EPSG:26914", Affine(10, 0, 448_000, 0, -10, 5_376_000))


def test_parity_command_onnx_vs_serve(tmp_path: Path, write_raster, monkeypatch: pytest.MonkeyPatch) -> None:
    from landuse.cli import main

    raster = _blocky_raster(write_raster)
    export = build_mean_colour_export(tmp_path / "export", list(DEFAULT_TAGS))
    monkeypatch.setenv("LANDUSE_CV_PREDICTION_KEY", KEY)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    reports = {}
    for served_model in (str(export), "py:tests.fakecv:make_colour_classifier"):
        served = start_serve([served_model])
        try:
            out = tmp_path / f"parity{len(reports)}.json"
            code = main(["parity", "--model", str(export), "--endpoint", served.endpoint, "--project-id", PROJECT,
                         "--published-name", "Iteration1", "--sample", "12", "--tps", "100", "--json", str(out),
                         str(raster)])
            assert code == 0
            reports[served_model] = json.loads(out.read_text())
        finally:
            stop(served)
    same = reports[str(export)]
    assert same["plots"] == 12 and same["agreement"] == 1.0 and same["max_abs_prob_diff"] < 1e-6
    assert same["disagreements"] == []
    other = reports["py:tests.fakecv:make_colour_classifier"]  # a different model behind the endpoint
    assert other["max_abs_prob_diff"] > 0.01
    assert other["disagreements"] and other["agreement"] < 1
    assert len(other["disagreements"]) == round((1 - other["agreement"]) * 12)
    assert all(d["plot_id"].startswith("EPSG:26914/224/") for d in other["disagreements"])
