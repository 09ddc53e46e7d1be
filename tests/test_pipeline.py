"""The batch pipeline: schedulers agree with a plain loop, AOI, resume after SIGKILL, refusals, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio
from affine import Affine

from landuse.errors import OutputExistsError, RunStoreError
from landuse.grid import Chunk
from landuse.pipeline import ModelRef, classify_scene

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from pipeline_fakes import (  # noqa: E402
    LABELS,
    FakeClassifier,
    fake_grid,
    fake_scene,
    make_fake,
    mean_colour_export,
    truth_class,
    truth_covered,
    truth_valid,
)

FAKE = ModelRef(None, factory=make_fake)


def run(tmp: Path, name: str, grid=None, **kw):
    grid = grid or fake_grid()
    kw.setdefault("scheduler", "synchronous")
    kw.setdefault("chunk_plots", 16)
    return classify_scene(fake_scene(grid), grid, kw.pop("model", FAKE), tmp / name, period="2016", quiet=True, **kw)


def table(run_dir: Path):
    return pq.read_table(run_dir / "plots.parquet").drop_columns(["geometry"]).to_pandas()


def eager_loop(grid, min_valid: float = 0.9) -> dict[tuple[int, int], tuple[str, str | None]]:
    """Plot by plot, no chunks, no batches: (status, label) of every plot."""
    scene, clf = fake_scene(grid), FakeClassifier()
    cov = scene.coverage(grid)
    out = {}
    for r in range(grid.height):
        for c in range(grid.width):
            if cov[r, c] == 0:
                out[r, c] = ("nodata", None)
                continue
            px, valid = scene.read_chunk(grid, Chunk(r, c, 1, 1), pixels=clf.input_size[0])
            if valid[0] == 0:
                out[r, c] = ("nodata", None)
            elif valid[0] < min_valid:
                out[r, c] = ("partial", None)
            else:
                out[r, c] = ("classified", LABELS[int(clf.predict(px)[0].argmax())])
    return out


def test_synchronous_run_equals_plain_loop_and_truth(tmp_path):
    grid = fake_grid()
    res = run(tmp_path, "sync")
    df = table(res.run_dir)
    assert len(df) == grid.size
    assert not df.duplicated(["row", "col"]).any()
    expected = eager_loop(grid)
    got = {(int(r), int(c)): (s, lab if isinstance(lab, str) else None) for r, c, s, lab in zip(df.row, df.col, df.status, df.label, strict=True)}
    assert got == expected
    # the fake imagery's painted truth: every classified plot gets its painted class
    cls = df[df.status == "classified"]
    truth = truth_class(cls.row.to_numpy() + grid.row0, cls.col.to_numpy() + grid.col0)
    assert (cls.class_index.to_numpy() == truth).all()
    assert [LABELS[int(i)] for i in cls.class_index] == list(cls.label)
    # statuses follow the fake's valid fractions and coverage
    gr, gc = df.row.to_numpy() + grid.row0, df.col.to_numpy() + grid.col0
    v, covered = truth_valid(gr, gc), truth_covered(gr, gc)
    assert ((df.status == "classified") == (v >= 0.9)).all()
    assert ((df.status == "partial") == ((v > 0) & (v < 0.9))).all()
    assert (df.reason[~covered] == "no imagery covers the plot").all()
    assert df.reason[df.status == "classified"].isna().all()
    probs = df[[f"prob_{t}" for t in LABELS]].to_numpy()
    assert np.allclose(probs[df.status == "classified"].sum(axis=1), 1.0, atol=1e-5)
    assert np.isnan(probs[df.status != "classified"]).all()
    assert res.did_work and res.computed_chunks == len(grid.chunks_of(16))


def test_threads_and_chunking_do_not_change_results(tmp_path):
    a = table(run(tmp_path, "sync").run_dir)
    b = table(run(tmp_path, "threads", scheduler="threads", workers=2, chunk_plots=40, batch_size=3).run_dir)
    assert a.equals(b)


def test_local_cluster_two_workers_equals_synchronous(tmp_path):
    grid = fake_grid(height=6, width=9)
    a = table(run(tmp_path, "sync", grid=grid).run_dir)
    res = run(tmp_path, "dist", grid=grid, scheduler="local", workers=2, chunk_plots=9)
    b = table(res.run_dir)
    assert a.equals(b)
    assert res.summary["timings"]["scheduler"] == "local"


def test_rerun_does_no_work_and_says_so(tmp_path, capsys):
    first = run(tmp_path, "r")
    parts = sorted((first.run_dir / "parts").glob("*.parquet"))
    mtimes = [p.stat().st_mtime_ns for p in parts]
    out_mtime = (first.run_dir / "plots.parquet").stat().st_mtime_ns
    grid = fake_grid()
    second = classify_scene(fake_scene(grid), grid, FAKE, tmp_path / "r", period="2016", chunk_plots=16, scheduler="synchronous")
    assert not second.did_work and second.computed_chunks == 0
    assert "nothing to do" in capsys.readouterr().err
    assert [p.stat().st_mtime_ns for p in parts] == mtimes
    assert (first.run_dir / "plots.parquet").stat().st_mtime_ns == out_mtime


def test_changed_manifest_is_refused_unless_overwrite(tmp_path):
    run(tmp_path, "m")
    with pytest.raises(RunStoreError, match=r"parameters\.min_valid: 0\.9 -> 0\.5") as err:
        run(tmp_path, "m", min_valid=0.5)
    assert "pass `overwrite=True`" in str(err.value)  # the API's parameter (the CLI says --overwrite)
    res = run(tmp_path, "m", min_valid=0.5, overwrite=True)
    assert res.did_work
    df = table(res.run_dir)
    assert (df.status == "partial").sum() == 0  # valid 0.5 now passes


def test_existing_folder_that_is_not_a_run_is_refused(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="notes.txt"):
        run(tmp_path, "x")
    run(tmp_path, "x", overwrite=True)
    assert (tmp_path / "x" / "notes.txt").read_text() == "mine"  # never deletes foreign files


def test_aoi_restricts_plots(tmp_path):
    import geopandas as gpd
    import shapely

    grid = fake_grid()
    minx, miny, maxx, maxy = grid.bounds
    # a triangle over part of the grid, written in EPSG:4326
    tri = shapely.Polygon([(minx + 300, miny + 300), (maxx - 300, miny + 900), (minx + 900, maxy - 300)])
    aoi = tmp_path / "aoi.geojson"
    gpd.GeoDataFrame(geometry=[tri], crs=grid.crs.to_wkt()).to_crs(4326).to_file(aoi)
    mask = grid.aoi_mask(aoi)
    res = run(tmp_path, "aoi", aoi_mask=mask, aoi_info={"path": str(aoi)})
    df = table(res.run_dir)
    xs = grid.transform.c + (df.col.to_numpy() + 0.5) * grid.plot_size
    ys = grid.transform.f - (df.row.to_numpy() + 0.5) * grid.plot_size
    inside = shapely.contains_xy(tri, xs, ys)
    assert 0 < inside.sum() < len(df)
    assert (df.status[~inside] == "outside_aoi").all()
    assert (df.status[inside] != "outside_aoi").all()
    assert df.valid_fraction[~inside].isna().all()
    summary = json.loads((res.run_dir / "summary.json").read_text())
    assert summary["unclassified"]["outside_aoi"]["plots"] == int((~inside).sum())


def finished_parts(parts_dir: Path) -> list[Path]:
    """The finished Parquet parts of a run (not the hidden temporary files being written)."""
    return [p for p in parts_dir.glob("*.parquet") if not p.name.startswith(".")]


def test_resume_after_sigkill_computes_every_plot_once(tmp_path):
    out, log = tmp_path / "killed", tmp_path / "reads.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    # 0.01 s per plot, 16-plot chunks: ~20 chunks at ~0.1 s each
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "pipeline_fakes.py"), str(out), str(log), "0.01", "16"], env=env
    )
    parts_dir = out / "parts"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if parts_dir.is_dir() and len(finished_parts(parts_dir)) >= 4:
            break
        if proc.poll() is not None:
            pytest.fail("the run finished before it could be killed")
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # finished parts only: a kill can leave a half-written ``.<part>.tmp-<pid>.parquet`` behind
    before = {p.name: p.stat().st_mtime_ns for p in finished_parts(parts_dir)}
    n_chunks = len(fake_grid().chunks_of(16))
    assert 4 <= len(before) < n_chunks
    assert not (out / "plots.parquet").exists()
    reads_before = log.read_text().splitlines()

    res = run(tmp_path, "killed", grid=fake_grid())
    assert res.skipped_chunks == len(before) and res.computed_chunks == n_chunks - len(before)
    # finished parts untouched, and none of their plots read again
    assert {p: (parts_dir / p).stat().st_mtime_ns for p in before} == before
    reread = log.read_text().splitlines()[len(reads_before):]
    grid = fake_grid()
    full = {ch.id: ch for ch in grid.chunks_of(16)}
    finished = [full[p.removesuffix(".parquet")] for p in before]
    for line in reread:
        _, r, c, w = (int(v) for v in line.split())
        for ch in finished:
            assert not (ch.row_off <= r < ch.row_off + ch.height and ch.col_off <= c < ch.col_off + ch.width), line
    df = table(res.run_dir)
    assert len(df) == grid.size and not df.duplicated(["row", "col"]).any()
    assert not list(parts_dir.glob(".*.tmp*")), "a killed run's temporary part was left behind"
    ref = table(run(tmp_path, "clean").run_dir)
    assert df.equals(ref)


def test_cli_classify_real_rasters_then_rerun_does_nothing(tmp_path, write_raster):
    from pipeline_fakes import COLOURS

    from landuse.cli import main

    # 6 x 8 plots of 224 m at 7 m/px (32 px a plot), class k painted in column band k % 3
    px, s = 32, 7.0
    h, w = 6 * px, 8 * px
    classes = (np.arange(w) // px) % 3
    rgb = np.empty((3, h, w), dtype=np.uint8)
    for band in range(3):
        rgb[band] = COLOURS[classes, band].astype(np.uint8)[None, :]
    rgb[:, : px // 2, :] = 0  # top half of the first plot row is nodata -> partial
    x0, y0 = 448_000.0, 4_704_000.0
    tif = write_raster("img.tif", rgb, "EPSG:26914", Affine(s, 0, x0, 0, -s, y0), nodata=0)
    model = mean_colour_export(tmp_path / "model")
    out = tmp_path / "run"
    args = ["classify", str(tif), "--period", "2016", "--out", str(out), "--model", str(model),
            "--scheduler", "synchronous", "--chunk-plots", "16"]
    assert main(args) == 0
    df = table(out)
    assert len(df) == 48
    assert (df.status[df.row == 0] == "partial").all()
    body = df[df.row > 0]
    assert (body.status == "classified").all()
    assert (body.class_index.to_numpy() == body.col.to_numpy() % 3).all()
    with rasterio.open(out / "classes.tif") as src:
        assert src.read(1)[1:, :].tolist() == (np.arange(8)[None, :].repeat(5, 0) % 3).tolist()
    mtime = (out / "summary.json").stat().st_mtime_ns
    proc = subprocess.run(
        [sys.executable, "-m", "landuse", *args], capture_output=True, text=True,
        env={**os.environ, "COLUMNS": "200"}, cwd=HERE.parent,
    )
    assert proc.returncode == 0, proc.stderr
    assert "nothing to do" in proc.stderr
    assert (out / "summary.json").stat().st_mtime_ns == mtime
    # a changed parameter is refused with the difference named, exit 1
    proc = subprocess.run([sys.executable, "-m", "landuse", *args[:-2], "--chunk-plots", "8"],
                          capture_output=True, text=True, cwd=HERE.parent)
    assert proc.returncode == 1
    assert "parameters.chunk_plots: 16 -> 8" in proc.stderr


def test_real_naip_both_dates_on_one_grid(tmp_path):
    """Real NAIP (5 m, nodata seam, misregistered dates): every plot once, statuses follow the
    valid fraction measured independently from the file's own mask."""

    from landuse.cli import main
    from landuse.grid import PlotGrid
    from tests.conftest import shared_data

    folder = shared_data("rasters", "naip_nd_timeseries")
    files = sorted(folder.glob("*.tif"))
    model = mean_colour_export(tmp_path / "model")
    grid = PlotGrid.from_rasters(files)
    grid.save(tmp_path / "grid.json")
    for f, name in zip(files, ("p2010", "p2018"), strict=True):
        args = ["classify", str(f), "--period", name, "--out", str(tmp_path / name), "--model", str(model),
                "--grid", str(tmp_path / "grid.json"), "--scheduler", "threads", "--workers", "2", "--bands", "1,2,3"]
        assert main(args) == 0
        df = table(tmp_path / name)
        assert len(df) == grid.size and not df.duplicated(["row", "col"]).any()
        # independent valid fraction: the file's mask sampled at the plot's native pixels
        with rasterio.open(f) as src:
            mask = src.dataset_mask() > 0
            inv = ~src.transform
            fr = np.zeros(len(df))
            for i, (r, c) in enumerate(zip(df.row, df.col, strict=True)):
                minx, miny, maxx, maxy = grid.plot_bounds(r, c)
                xs = np.arange(minx + 2.5, maxx, 5.0)
                ys = np.arange(maxy - 2.5, miny, -5.0)
                X, Y = np.meshgrid(xs, ys)
                cc, rr = inv * (X.ravel(), Y.ravel())
                rr, cc = np.floor(rr).astype(int), np.floor(cc).astype(int)
                inside = (rr >= 0) & (rr < src.height) & (cc >= 0) & (cc < src.width)
                ok = np.zeros(rr.size, bool)
                ok[inside] = mask[rr[inside], cc[inside]]
                fr[i] = ok.mean()
        assert np.abs(df.valid_fraction.to_numpy() - fr).max() < 0.1
        scored = df.status.isin(["classified", "unknown"])  # read and scored (unknown: like no class)
        assert scored[fr > 0.97].all()
        assert not scored[fr < 0.8].any()
        assert scored.sum() > 0.5 * len(df)
        assert (df.status[fr == 0] == "nodata").all()


def test_cli_classify_with_custom_vision_backend(tmp_path, write_raster, monkeypatch):
    """--backend customvision against the fake prediction server on 127.0.0.1: every plot sent
    once, the key nowhere in the run directory."""
    from landuse.cli import main
    from tests.fakecv import FakeCustomVision

    key = "SECRET-pipeline-key-77"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    rng = np.random.default_rng(3)
    rgb = rng.integers(30, 220, (3, 3 * 32, 4 * 32), dtype=np.uint8)
    tif = write_raster("cv.tif", rgb, "EPSG:26914", Affine(7.0, 0, 448_000.0, 0, -7.0, 4_704_000.0))
    with FakeCustomVision(key=key) as fake:
        monkeypatch.setenv("LANDUSE_CV_PREDICTION_KEY", key)
        monkeypatch.setenv("LANDUSE_CV_ENDPOINT", fake.endpoint)
        monkeypatch.setenv("LANDUSE_CV_PROJECT_ID", fake.project_id)
        monkeypatch.setenv("LANDUSE_CV_PUBLISHED_NAME", fake.published_name)
        out = tmp_path / "cv"
        assert main(["classify", str(tif), "--period", "2016", "--out", str(out), "--backend", "customvision",
                     "--tps", "200", "--scheduler", "threads", "--workers", "2", "--chunk-plots", "4"]) == 0
        served = dict(fake.served)
    df = table(out)
    # every plot scored; the cloud backend's unknown flag is the probability fallback
    assert len(df) == 12 and df.status.isin(["classified", "unknown"]).all()
    assert set(df.label) <= {"Barren", "Cultivated", "Developed", "unknown"}
    # 12 plot images once each, plus the probe image each classifier instance sends to read the tags
    counts = sorted(served.values())
    assert len(served) == 13 and counts[:12] == [1] * 12
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["backend"] == "customvision"
    for f in out.rglob("*"):
        if f.is_file():
            assert key.encode() not in f.read_bytes(), f


@pytest.mark.parametrize("year", ["2016", "2022"])
def test_sample_rasters_with_default_model_match_truth(tmp_path, year):
    """End to end on the repository's sample rasters with the bundled model, against truth.geojson."""
    import geopandas as gpd

    from landuse.classify.base import DEFAULT_MODEL_DIR
    from landuse.cli import main

    samples = HERE.parent / "sample_rasters"
    if not (DEFAULT_MODEL_DIR / "model.onnx").exists() or not (samples / f"{year}.tif").exists():
        pytest.skip("the default model or the sample rasters are absent")
    out = tmp_path / year
    assert main(["-q", "classify", str(samples / f"{year}.tif"), "--period", year, "--out", str(out),
                 "--scheduler", "threads"]) == 0
    truth = gpd.read_file(samples / "truth.geojson")
    got = table(out).merge(truth[["plot_id", f"class_{year}", "valid_fraction"]], on="plot_id", suffixes=("", "_truth"))
    assert len(got) == len(truth) == len(table(out))
    # gating follows the truth's valid fraction (allow plots right at the threshold to go either way)
    clear = (got.valid_fraction_truth - 0.9).abs() > 0.02
    scored = got.status.isin(["classified", "unknown"])  # read and scored (unknown: like no class)
    assert (scored == (got.valid_fraction_truth >= 0.9))[clear].all()
    cls = got[got.status == "classified"]
    accuracy = float((cls.label == cls[f"class_{year}"]).mean())
    print(f"{year}: {len(cls)} plots classified, {int((got.status == 'unknown').sum())} unknown, "
          f"{accuracy:.1%} agree with truth.geojson")
    # measured: 22 / 20 of 23 classified (1 / 3 textured green synthetic fields flagged unknown), all agree
    assert len(cls) >= 20 and accuracy >= 0.9
