"""The review loop: landuse review -> a reviewer moves chips -> landuse dataset --merge -> train."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from landuse.cli import main
from landuse.training.customvision import CVTrainOptions, train_customvision
from landuse.training.dataset import TagDataset
from tests.faketrain import FakeTraining
from tests.runfactory import LABELS, make_pair
from tests.test_cv_training import RESOURCE, env_for


def test_review_merge_train_loop(tmp_path: Path) -> None:
    a, b, change = make_pair(tmp_path, rows=12, cols=14, imagery=True)
    review = tmp_path / "review"
    assert main(["review", str(a.path), "--out", str(review), "--n", "12", "--chip-size", "224"]) == 0
    doc = json.loads((review / "review.json").read_text())
    # the 12 classified plots with the lowest winning probability (computed here from the run's arrays)
    ok = a.classes >= 0
    win = np.where(ok, a.probs.max(axis=-1), np.inf)
    expect = set(np.argsort(win, axis=None, kind="stable")[:12].tolist())
    got = {it["row"] * a.grid.width + it["col"] for it in doc["items"]}
    assert got == expect
    assert sorted(p.name for p in review.iterdir() if p.is_dir()) == sorted([*LABELS, "_unsure"])
    for it in doc["items"]:
        assert it["predicted"] == LABELS[a.classes[it["row"], it["col"]]]
        assert (review / it["predicted"] / it["file"]).exists()
        assert it["probs"][it["predicted"]] == max(it["probs"].values())
        with Image.open(review / it["predicted"] / it["file"]) as im:
            assert im.size == (224, 224)
    # the reviewer: first chip -> another tag, second -> _unsure, the rest confirmed
    first, second = doc["items"][0], doc["items"][1]
    truth = next(t for t in LABELS if t != first["predicted"])
    shutil.move(review / first["predicted"] / first["file"], review / truth / first["file"])
    shutil.move(review / second["predicted"] / second["file"], review / "_unsure" / second["file"])
    # a base dataset of 5 images a tag, one of them the first plot under its predicted (wrong) tag
    ds = tmp_path / "ds"
    rng = np.random.default_rng(0)
    for k, tag in enumerate(LABELS):
        (ds / tag).mkdir(parents=True)
        for i in range(5):
            img = np.clip(rng.normal(60 * k + 20, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(ds / tag / f"base_{i}.png")
    (ds / first["predicted"] / first["file"]).write_bytes(b"old copy")
    assert main(["dataset", "--merge", str(review), "--out", str(ds)]) == 0
    assert (ds / truth / first["file"]).exists() and not (ds / first["predicted"] / first["file"]).exists()
    assert not any(ds.glob(f"*/{second['file']}"))
    merged = TagDataset.open(ds)
    assert sum(merged.counts().values()) == 20 + 11
    index = json.loads((ds / "index.geojson").read_text())
    props = {f["properties"]["file"]: f["properties"] for f in index["features"]}
    assert props[f"{truth}/{first['file']}"]["plot_id"] == first["plot_id"]
    assert props[f"{truth}/{first['file']}"]["predicted"] == first["predicted"]
    assert all(p["origin"] == "review" for p in props.values()) and len(props) == 11
    # ... and the merged dataset trains (Custom Vision fake), a rerun merge adds nothing new
    with FakeTraining() as fake:
        res = train_customvision(ds, tmp_path / "model", CVTrainOptions(project="loop", poll_interval=0.05, tps=1000),
                                 env=env_for(fake))
        assert res.upload.ok == 31 and fake.published[res.iteration_id][1] == RESOURCE
    assert (tmp_path / "model" / "model.onnx").exists()
    assert main(["dataset", "--merge", str(review), "--out", str(ds)]) == 0
    assert sum(TagDataset.open(ds).counts().values()) == 31


def test_review_changed_plots(tmp_path: Path) -> None:
    a, b, change = make_pair(tmp_path, rows=12, cols=14, imagery=True, fraction=0.1)
    review = tmp_path / "review"
    assert main(["review", str(b.path), "--out", str(review), "--strategy", "changed", "--change", str(change),
                 "--n", "5", "--chip-size", "224"]) == 0
    doc = json.loads((review / "review.json").read_text())
    feats = json.loads((change / "change.geojson").read_text())["features"]
    scored = sorted((min(f["properties"]["prob_from"], f["properties"]["prob_to"]), f["properties"]["row"],
                     f["properties"]["col"]) for f in feats)
    assert [(it["row"], it["col"]) for it in doc["items"]] == [(r, c) for _, r, c in scored[:5]]
    assert all(it["predicted"] == LABELS[b.classes[it["row"], it["col"]]] for it in doc["items"])
    # without --change the strategy cannot work; an existing output is not overwritten
    assert main(["review", str(b.path), "--out", str(tmp_path / "r2"), "--strategy", "changed"]) == 1
    assert main(["review", str(b.path), "--out", str(review)]) == 1
