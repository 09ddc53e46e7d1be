"""The Custom Vision cloud backend against the fault-injecting server in tests/fakecv.py."""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from landuse.classify.base import Classifier
from landuse.classify.customvision import (
    CustomVisionClassifier,
    CustomVisionConfig,
    encode_image,
    load_config,
)
from landuse.errors import EndpointError, InputError
from tests.fakecv import DEFAULT_TAGS, FakeCustomVision, colour_probabilities, random_plots

KEY = "SECRET-cv-key-5f3a9c"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("LANDUSE_CV_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no user config file leaks in


def make(fake: FakeCustomVision, tmp_path: Path, key: str | None = KEY, **kw) -> CustomVisionClassifier:
    options = dict(tps=200.0, timeout=2.0, backoff_base=0.01, backoff_max=0.05, cache_dir=str(tmp_path / "cache"))
    options.update(kw)
    config = CustomVisionConfig(endpoint=fake.endpoint, project_id=fake.project_id,
                                published_name=fake.published_name, **options)
    return CustomVisionClassifier(config, key=key)


def expected(plots: np.ndarray, n: int = 3) -> np.ndarray:
    return np.stack([colour_probabilities(px, n) for px in plots])


def test_predict_returns_each_plots_own_probabilities(tmp_path: Path) -> None:
    plots = random_plots(12, seed=1)
    with FakeCustomVision(key=KEY) as fake:
        clf = make(fake, tmp_path)
        assert isinstance(clf, Classifier)
        assert clf.labels == sorted(DEFAULT_TAGS)
        probs = clf.predict(plots)
        nostore = all(r["path"].endswith("/image/nostore") for r in fake.log)
    np.testing.assert_allclose(probs, expected(plots), atol=1e-7)
    assert probs.dtype == np.float32
    assert nostore  # the NoStore route by default
    assert clf.backend == "customvision" and fake.project_id in clf.model_id


def test_store_option_uses_the_storing_route(tmp_path: Path) -> None:
    with FakeCustomVision(key=KEY) as fake:
        make(fake, tmp_path, store=True, cache=False).predict(random_plots(2))
        paths = [r["path"] for r in fake.log]
    assert all(p.endswith("/image") for p in paths)


def test_faults_are_retried_no_plot_lost_or_duplicated(tmp_path: Path) -> None:
    plots = random_plots(16, seed=2)
    plan = ["ok", "429", "429text", "429bare", "503", "slow", "drop", "503", "429"]
    with FakeCustomVision(key=KEY, plan=plan, retry_after=0.3, slow_seconds=1.0) as fake:
        clf = make(fake, tmp_path, timeout=0.4, concurrency=4)
        probs = clf.predict(plots)
        log = list(fake.log)
    np.testing.assert_allclose(probs, expected(plots), atol=1e-7)  # every plot got its own answer
    faults = [r.get("fault") for r in log]
    for f in ("429", "429text", "429bare", "503", "slow", "drop"):
        assert f in faults
    # each plot answered exactly once with a 200 the client used (the slow one timed out)
    ok_bodies = defaultdict(int)
    for r in log:
        if r["status"] == 200 and r.get("fault") != "slow":
            ok_bodies[r["body"]] += 1
    assert len(ok_bodies) == 16 + 1  # the plots + the tag probe
    assert max(ok_bodies.values()) == 1
    # Retry-After (header) and "retry after N second" (text) were both honoured
    by_body = defaultdict(list)
    for r in log:
        by_body[r["body"]].append(r)
    for f in ("429", "429text"):
        rec = next(r for r in log if r.get("fault") == f)
        later = [r["t"] for r in by_body[rec["body"]] if r["t"] > rec["t"]]
        assert later and min(later) - rec["t"] >= 0.3 - 0.01
    assert clf.stats.retries >= 8


def test_401_fails_fast_with_endpoint_and_fix(tmp_path: Path) -> None:
    with FakeCustomVision(key="the-right-key") as fake:
        clf = make(fake, tmp_path, key=KEY)
        t = time.time()
        with pytest.raises(EndpointError) as info:
            clf.predict(random_plots(20))
        elapsed = time.time() - t
        seen = len(fake.log)
    msg = str(info.value)
    assert fake.endpoint in msg and "401" in msg and "prediction* key" in msg.replace("*prediction*", "prediction*")
    assert seen == 1  # the probe: no plot was sent
    assert elapsed < 2


def test_401_mid_run_stops_the_batch(tmp_path: Path) -> None:
    with FakeCustomVision(key=KEY, plan=["ok", "ok", "401"]) as fake:
        clf = make(fake, tmp_path, tps=20.0, concurrency=2)
        with pytest.raises(EndpointError, match="401"):
            clf.predict(random_plots(40))
        seen = len(fake.log)
    assert seen <= 6  # fail fast: not 40 requests


def test_unpublished_name_is_404_with_the_fix(tmp_path: Path) -> None:
    with FakeCustomVision(key=KEY) as fake:
        cfg = CustomVisionConfig(endpoint=fake.endpoint, project_id=fake.project_id, published_name="Iteration9",
                                 cache_dir=str(tmp_path))
        with pytest.raises(EndpointError, match="published under this name"):
            CustomVisionClassifier(cfg, key=KEY).predict(random_plots(2))


def test_missing_tags_fail_before_any_plot(tmp_path: Path) -> None:
    with FakeCustomVision(key=KEY) as fake:
        clf = make(fake, tmp_path, labels=("Barren", "Water"))
        with pytest.raises(EndpointError, match="no tag.*Water"):
            clf.predict(random_plots(5))
        assert len(fake.log) == 1


def test_negative_tag_dropped_or_mapped(tmp_path: Path) -> None:
    plots = random_plots(3, seed=4)
    full = expected(plots, 4)  # Barren, Cultivated, Developed, Negative
    with FakeCustomVision(key=KEY, negative=True) as fake:
        dropped = make(fake, tmp_path, cache=False)
        assert dropped.labels == ["Barren", "Cultivated", "Developed"]
        np.testing.assert_allclose(dropped.predict(plots), full[:, :3], atol=1e-7)
        mapped = make(fake, tmp_path, cache=False, labels=("Barren", "Cultivated", "Developed"), negative="Barren")
        got = mapped.predict(plots)
    np.testing.assert_allclose(got[:, 0], full[:, 0] + full[:, 3], atol=1e-6)


def test_cache_means_a_rerun_is_not_billed_twice(tmp_path: Path) -> None:
    plots = random_plots(10, seed=5)
    with FakeCustomVision(key=KEY) as fake:
        first = make(fake, tmp_path).predict(plots)
        n1 = len(fake.log)
        rerun = make(fake, tmp_path)  # a new process would do the same: same cache dir
        second = rerun.predict(plots)
        n2 = len(fake.log)
        dups = rerun.predict(np.concatenate([plots[:2], plots[:2]]))
    assert n1 == 11 and n2 == n1 + 1  # the rerun pays only its tag probe
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(dups[:2], dups[2:])
    assert rerun.stats.cached == 14


def test_key_never_in_errors_reprs_pickles_logs_or_cache(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("LANDUSE_CV_PREDICTION_KEY", KEY)
    with FakeCustomVision(key=KEY, plan=["ok", "429", "503"]) as fake:
        monkeypatch.setenv("LANDUSE_CV_ENDPOINT", fake.endpoint)
        monkeypatch.setenv("LANDUSE_CV_PROJECT_ID", fake.project_id)
        monkeypatch.setenv("LANDUSE_CV_PUBLISHED_NAME", fake.published_name)
        clf = CustomVisionClassifier.from_env(cache_dir=str(tmp_path / "c"), backoff_base=0.01, tps=100.0)
        clf.predict(random_plots(3))
        blob = pickle.dumps(clf)
        texts = [repr(clf), json.dumps(clf.provenance()), caplog.text]
        monkeypatch.setenv("LANDUSE_CV_PREDICTION_KEY", "a-wrong-key")
        with pytest.raises(EndpointError) as info:
            CustomVisionClassifier.from_env(cache_dir=str(tmp_path / "c2")).predict(random_plots(1))
        texts.append(str(info.value))
    assert "429" in caplog.text  # the retries were logged ...
    for text in texts:
        assert KEY not in text and "a-wrong-key" not in text  # ... without the key
    assert KEY.encode() not in blob
    for f in (tmp_path / "c").rglob("*"):
        assert KEY.encode() not in f.read_bytes()


def test_pickled_classifier_reads_the_key_on_the_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plots = random_plots(2, seed=9)
    with FakeCustomVision(key=KEY) as fake:
        clf = make(fake, tmp_path, cache=False)
        clf.predict(plots[:1])
        worker = pickle.loads(pickle.dumps(clf))
        with pytest.raises(EndpointError, match="LANDUSE_CV_PREDICTION_KEY"):
            worker.predict(plots)
        monkeypatch.setenv("LANDUSE_CV_PREDICTION_KEY", KEY)
        worker = pickle.loads(pickle.dumps(clf))
        np.testing.assert_allclose(worker.predict(plots), expected(plots), atol=1e-7)
        assert len(fake.log) == 1 + 1 + 2  # the tag probe is not repeated on the worker


def test_client_stays_within_a_20_tps_quota(tmp_path: Path) -> None:
    with FakeCustomVision(key=KEY, quota_tps=20) as fake:
        clf = make(fake, tmp_path, tps=None, tier="S0", cache=False)
        probs = clf.predict(random_plots(50, seed=3))
        stats = fake.stats()
    assert stats["quota_rejections"] == 0
    assert stats["max_in_window"] <= 20
    assert probs.shape == (50, 3)


def test_two_processes_share_one_quota(tmp_path: Path) -> None:
    """Two worker processes on one machine (same cache dir) share the 20 TPS quota."""
    code = (
        "import sys, numpy as np\n"
        "from landuse.classify.customvision import CustomVisionClassifier, CustomVisionConfig\n"
        "from tests.fakecv import random_plots\n"
        "cfg = CustomVisionConfig(endpoint=sys.argv[1], project_id=sys.argv[2], published_name='Iteration1',"
        " tier='S0', cache=False, cache_dir=sys.argv[3], labels=('Barren',))\n"
        "c = CustomVisionClassifier(cfg)\n"
        "p = c.predict(random_plots(25, seed=int(sys.argv[4])))\n"
        "print(p.shape[0])\n"
    )
    env = dict(os.environ, LANDUSE_CV_PREDICTION_KEY=KEY, PYTHONPATH=str(ROOT))
    with FakeCustomVision(key=KEY, quota_tps=20) as fake:
        procs = [
            subprocess.Popen([sys.executable, "-c", code, fake.endpoint, fake.project_id, str(tmp_path), str(i)],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in range(2)
        ]
        outs = [p.communicate(timeout=60) for p in procs]
        stats = fake.stats()
    assert [o.strip() for o, _ in outs] == ["25", "25"], outs
    assert stats["quota_rejections"] == 0 and stats["max_in_window"] <= 20
    assert stats["ok"] == 52


def test_dry_run_counts_calls_and_cost(tmp_path: Path) -> None:
    cfg = CustomVisionConfig(endpoint="https://example.invalid", project_id="p", published_name="n",
                             cache_dir=str(tmp_path))
    clf = CustomVisionClassifier(cfg)
    run = clf.dry_run(10_000)
    assert run.calls == 10_001 and run.cost == pytest.approx(20.002)  # $2 per 1000, plus the probe
    assert run.seconds == pytest.approx(10_001 / (20 * 0.98))
    free = CustomVisionClassifier(CustomVisionConfig(endpoint="https://example.invalid", project_id="p",
                                                     published_name="n", tier="F0", cache_dir=str(tmp_path)))
    assert free.dry_run(20_000).cost == 0 and "F0" in free.dry_run(20_000).describe()


def test_config_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_file = tmp_path / "cv.toml"
    cfg_file.write_text(
        '[customvision]\nendpoint = "https://r.cognitiveservices.azure.com"\nproject_id = "abc"\n'
        'published_name = "Prod"\nprediction_key = "filekey-123"\ntier = "F0"\n'
    )
    config = load_config(cfg_file)
    assert (config.endpoint, config.project_id, config.tier, config.quota_tps) == (
        "https://r.cognitiveservices.azure.com", "abc", "F0", 2.0)
    assert "filekey" not in repr(config)
    monkeypatch.setenv("LANDUSE_CV_PUBLISHED_NAME", "FromEnv")
    assert load_config(cfg_file).published_name == "FromEnv"
    clf = CustomVisionClassifier(load_config(cfg_file))
    assert clf._secret().reveal() == "filekey-123"
    with pytest.raises(InputError, match="LANDUSE_CV_ENDPOINT"):
        load_config()
    bad = tmp_path / "bad.toml"
    bad.write_text('endpoint = "https://x"\nproject_id = "p"\npublished_name = "n"\nspeed = 3\n')
    with pytest.raises(InputError, match="speed"):
        load_config(bad)
    with pytest.raises(InputError, match="tier"):
        load_config(cfg_file, tier="S9")


def test_images_over_4mb_are_refused_before_sending() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (1400, 1400, 3), dtype=np.uint8)
    with pytest.raises(InputError, match="4 MB"):
        encode_image(noise, "png")
    assert len(encode_image(noise, "jpeg", quality=50)) < 4 * 1024 * 1024
