"""Custom Vision training through the real SDK against tests/faketrain.py (a local fake)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from landuse.errors import EndpointError
from landuse.training.customvision import (
    ENV_ENDPOINT,
    ENV_KEY,
    ENV_PREDICTION_RESOURCE,
    LEDGER_NAME,
    CVTrainOptions,
    train_customvision,
)
from tests.faketrain import FakeTraining

RESOURCE = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/pred"
TAGS = {"Barren": (200, 180, 140), "Cultivated": (90, 160, 60), "Developed": (120, 120, 130)}


def make_dataset(root: Path, per_tag: int = 6, size: int = 40) -> Path:
    """Tag folders of small distinct PNGs (colour per tag plus seeded noise)."""
    rng = np.random.default_rng(1)
    for tag, rgb in TAGS.items():
        (root / tag).mkdir(parents=True)
        for i in range(per_tag):
            img = np.clip(np.array(rgb)[None, None] + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / tag / f"{tag.lower()}_{i}.png")
    return root


def env_for(fake: FakeTraining, key: str | None = None) -> dict[str, str]:
    return {ENV_ENDPOINT: fake.endpoint, ENV_KEY: key or fake.key, ENV_PREDICTION_RESOURCE: RESOURCE}


def fast(**kw) -> CVTrainOptions:
    return CVTrainOptions(project=kw.pop("project", "plots"), poll_interval=0.05, poll_max_interval=0.2,
                          backoff_base=0.01, tps=1000, timeout_s=120, **kw)


def test_dataset_to_published_exported_model(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "ds", per_tag=40)  # 120 images: two batches of <= 64
    out = tmp_path / "model"
    lines: list[str] = []
    with FakeTraining(upload_429={2}) as fake:
        res = train_customvision(ds, out, fast(threshold=0.3), env=env_for(fake), say=lines.append)
        # uploads: batches of at most 64, the 429 retried, every image stored once
        assert fake.count("POST", r"/images/files$") == 3  # 2 batches + the throttled retry
        assert sorted(fake.received.values()) == [1] * 120
        assert res.upload.ok == 120 and res.upload.batches == 2 and not res.upload.errors
        pid = res.project_id
        assert fake.projects[pid]["settings"]["domainId"] == "0732100f-1a38-4e49-a514-c9b44c697ab5"
        assert fake.projects[pid]["settings"]["classificationType"] == "Multiclass"
        assert sorted(t["name"] for t in fake.tags[pid]) == sorted(TAGS)
        assert fake.published[res.iteration_id] == ("production", RESOURCE)
        model = fake.models[res.iteration_id]
    # the exported model is on disk in the Custom Vision layout, with performance beside it
    for name in ("model.onnx", "labels.txt", "cvexport.manifest", "performance.json", "customvision.json"):
        assert (out / name).exists(), name
    assert (out / "labels.txt").read_text().split() == sorted(TAGS)
    perf = json.loads((out / "performance.json").read_text())
    from tests.faketrain import performance

    expect = performance(model["probs"], model["truth"], model["labels"], 0.3)
    got = [v for t in perf["per_tag"] for v in (t["precision"], t["recall"], t["average_precision"])]
    assert got == pytest.approx([v for row in expect["per_tag"] for v in row])
    assert [t["tag"] for t in perf["per_tag"]] == sorted(TAGS) and perf["threshold"] == 0.3
    assert perf["mAP"] == pytest.approx(expect["ap"])
    text = "\n".join(lines)
    assert "threshold 30%" in text and "Precision  Recall      AP" in text and f"{100 * expect['ap']:5.1f}% (mAP)" in text
    assert fake.key not in text and fake.key not in (out / "customvision.json").read_text()
    # the ONNX backend loads the export and gives one probability row per image
    from landuse.classify.onnx import OnnxClassifier

    clf = OnnxClassifier.load(out)
    assert list(clf.labels) == sorted(TAGS)
    probs = clf.predict(np.zeros((2, 40, 40, 3), np.uint8))
    assert probs.shape == (2, 3) and np.allclose(probs.sum(1), 1, atol=1e-4)


def test_partial_batch_interruption_and_rerun(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "ds", per_tag=30)  # 90 images: batches of 64 + 26
    (ds / "Barren" / "broken.png").write_bytes(b"not a png at all")  # TagDataset checks headers ...
    with pytest.raises(Exception, match="broken.png"):
        train_customvision(ds, tmp_path / "m0", fast(), env={})
    (ds / "Barren" / "broken.png").unlink()
    lines: list[str] = []

    def interrupt(n: int, rep) -> None:
        if n == 1:
            raise KeyboardInterrupt

    with FakeTraining(bad_names={"developed_3.png"}) as fake:
        with pytest.raises(KeyboardInterrupt):
            train_customvision(ds, tmp_path / "m1", fast(publish=False, export=False), env=env_for(fake),
                               on_batch=interrupt)
        first = sum(fake.received.values())
        assert first == 64
        ledger = (ds / LEDGER_NAME).read_text().splitlines()
        assert len(ledger) == 64
        # the rerun sends only the 26 images the first run did not get to
        res = train_customvision(ds, tmp_path / "m1", fast(publish=False, export=False), env=env_for(fake),
                                 say=lines.append)
        assert res.upload.skipped == 64 and res.upload.uploaded == 26
        assert max(fake.received.values()) == 1 and sum(fake.received.values()) == 90
        # the file the service refused (in the second batch) is listed by name
        assert res.upload.errors == [("Developed/developed_3.png", "ErrorImageFormat")]
        # a third run: nothing new to upload but the refused file -> it is sent again, nothing else
        before = sum(fake.received.values())
        lines.clear()
        res3 = train_customvision(ds, tmp_path / "m1", fast(publish=False, export=False), env=env_for(fake),
                                  overwrite=True, say=lines.append)
        assert sum(fake.received.values()) - before == 1
        assert res3.iteration_id == res.iteration_id  # nothing changed: the iteration is reused
        assert any("reusing" in line for line in lines)


def test_207_batch_with_duplicates_and_format_errors(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "ds", per_tag=6)
    # a byte-identical copy of an image under another name: the service says OKDuplicate
    (ds / "Barren" / "copy.png").write_bytes((ds / "Barren" / "barren_0.png").read_bytes())
    with FakeTraining(bad_names={"cultivated_2.png"}) as fake:
        lines: list[str] = []
        res = train_customvision(ds, tmp_path / "m", fast(publish=False, export=False), env=env_for(fake),
                                 say=lines.append, ledger_path=tmp_path / "ledger.jsonl")
        assert any(s == 207 for m, p, s in fake.log if p.endswith("/images/files"))
    assert res.upload.ok == 17 and res.upload.duplicate == 1
    assert res.upload.errors == [("Cultivated/cultivated_2.png", "ErrorImageFormat")]
    assert any("Cultivated/cultivated_2.png: ErrorImageFormat" in line for line in lines)
    recs = [json.loads(x) for x in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert len(recs) == 18 and not any(r["file"].endswith("cultivated_2.png") for r in recs)


def test_wrong_key_fails_fast_without_showing_it(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "ds")
    secret = "wrong-key-0123456789abcdef"
    with FakeTraining() as fake:
        with pytest.raises(EndpointError) as info:
            train_customvision(ds, tmp_path / "m", fast(), env=env_for(fake, key=secret))
        assert len(fake.log) == 1  # the first call was refused; nothing retried
    msg = str(info.value)
    assert "401" in msg and ENV_KEY in msg and secret not in msg
    assert not (tmp_path / "m").exists()


def test_missing_settings_are_named(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "ds")
    with pytest.raises(EndpointError, match=ENV_ENDPOINT):
        train_customvision(ds, tmp_path / "m", fast(), env={ENV_KEY: "k"})
    with pytest.raises(EndpointError, match=ENV_PREDICTION_RESOURCE):
        train_customvision(ds, tmp_path / "m", fast(), env={ENV_KEY: "k", ENV_ENDPOINT: "http://127.0.0.1:9"})
