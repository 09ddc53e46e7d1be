"""`landuse train DATASET --init default`: refit the default model's head with a few labels."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_data


def _dataset(tmp_path: Path) -> tuple[Path, list[Path]]:
    """3 real AerialSmall plots per base tag + 4 real wv_1m_patches forest plots as a new tag."""
    from PIL import Image

    aerial = shared_data("aerialsmall", "train")
    wv = sorted(shared_data("wv_1m_patches").glob("*_sw_*.png"))
    ds = tmp_path / "labels"
    for tag in ("Barren", "Cultivated", "Developed"):
        (ds / tag).mkdir(parents=True)
        for p in sorted((aerial / tag).glob("*.png"))[-3:]:
            shutil.copy(p, ds / tag / p.name)
    (ds / "Forested").mkdir()
    for p in wv[:4]:
        a = np.asarray(Image.open(p).convert("RGB"))[16:240, 16:240]
        Image.fromarray(a).save(ds / "Forested" / p.name)
    (ds / "unknown").mkdir()  # the labelling page's "unknown" answers are not a tag
    with open(ds / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["plot_id", "label", "run", "period", "x", "y", "crs", "chip", "labelled_at"])
        w.writerow(["EPSG:32617/224/1/1", "Forested", "runs/wv2014", "2014", 0, 0, "EPSG:32617", "Forested/a.png", ""])
    return ds, wv[4:8]


def test_train_init_default_adds_a_tag_and_records_provenance(tmp_path: Path) -> None:
    from landuse.classify.base import load_classifier
    from landuse.cli import main
    from landuse.training.dataset import load_image

    base = load_classifier("default")
    if getattr(base, "features_name", None) is None:
        pytest.skip("the default model carries no features output")
    ds, held = _dataset(tmp_path)
    out = tmp_path / "adapted"
    assert main(["train", str(ds), "--init", "default", "--out", str(out)]) == 0
    clf = load_classifier(out)
    assert clf.labels == ["Barren", "Cultivated", "Developed", "Forested"]
    assert clf.gsd_m == 1.0 and clf.unknown_method is not None
    manifest = json.loads((out / "cvexport.manifest").read_text())
    training = manifest["Training"]
    assert training["adapted_from"]["sha256"] == base.model_hash
    assert training["labels_added"]["counts"] == {"Barren": 3, "Cultivated": 3, "Developed": 3, "Forested": 4}
    assert training["labels_added"]["runs"] == ["runs/wv2014"]
    # forest plots not among the labels are now Forested; the base tags still hold on their plots
    forest = np.stack([load_image(p, (224, 224)) for p in held])
    assert (clf.predict(forest).argmax(1) == 3).sum() >= 3
    aerial = shared_data("aerialsmall", "train")
    own = [(load_image(p, (224, 224)), i) for i, t in enumerate(base.labels)
           for p in sorted((aerial / t).glob("*.png"))[:10]]
    x = np.stack([a for a, _ in own])
    y = np.array([i for _, i in own])
    # against the base model on this CPU: int8 kernels differ between CPUs (AVX2 vs AVX-512 VNNI),
    # so the base model's own score here is the reference, not a fixed figure
    base_acc = (base.predict(x).argmax(1) == y).mean()
    adapted_acc = (clf.predict(x).argmax(1) == y).mean()
    assert base_acc >= 0.85 and adapted_acc >= base_acc - 0.05, (base_acc, adapted_acc)
    # the new chips' hashes are recorded as training images
    some = next((ds / "Forested").iterdir())
    from landuse.classify.base import sha256_file

    assert sha256_file(some) in clf.training_sha256


def test_train_init_refuses_a_model_without_features(tmp_path: Path) -> None:
    from landuse.cli import main
    from tests.pipeline_fakes import mean_colour_export

    ds, _ = _dataset(tmp_path)
    model = mean_colour_export(tmp_path / "plain")
    assert main(["train", str(ds), "--init", str(model), "--out", str(tmp_path / "o")]) != 0
    assert not (tmp_path / "o").exists()
