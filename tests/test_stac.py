"""Imagery from a STAC catalog: a real STAC API (stac-fastapi-static) and a real Range-capable HTTP
server (rangehttpserver), both started here on 127.0.0.1; items made with rio-stac from the real
NAIP rasters in ../shared/data and from generated 1 m COGs."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine

from tests.pipeline_fakes import COLOURS, mean_colour_export
from tests.stac_servers import Entry, RangeServer, StacApi, build_catalog

ND = ("rasters", "naip_nd_timeseries")
ND_2018 = "m_4709963_se_14_1_20180716.tif"
ND_2010 = "m_4709963_se_14_1_20100629.tif"
# generated tiles: plot-aligned in EPSG:26914 (origin a multiple of 224 m), 1 m pixels
X0, Y0, P = 224.0 * 2233, 224.0 * 23197, 224
BARREN, CULTIVATED, DEVELOPED = 0, 1, 2


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    # overridable from the environment: short pauses keep the fault tests quick
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.05")
    monkeypatch.setenv("LANDUSE_REMOTE_RETRY_DELAY", "0.05")


def write_tile(path: Path, col0: int, cols: int, rows: int, cls: int, order=(0, 1, 2), cog: bool = True,
               nodata: float | None = 0, row0: int = 0) -> Path:
    """A 1 m, 4-band tile of ``cols`` x ``rows`` plots from plot (``row0``, ``col0``), filled with
    the colour of class ``cls`` (bands stored in ``order`` of R, G, B, then NIR)."""
    h, w = rows * P, cols * P
    rgb = COLOURS[cls].astype(np.uint8)
    data = np.empty((4, h, w), dtype=np.uint8)
    for i, b in enumerate(order):
        data[i] = rgb[b]
    data[3] = 90
    rng = np.random.default_rng(cls + col0)
    data[:3] = np.clip(data[:3].astype(int) + rng.integers(-6, 7, size=(3, h, w)), 1, 255).astype(np.uint8)
    profile = dict(driver="COG" if cog else "GTiff", width=w, height=h, count=4, dtype="uint8", crs="EPSG:26914",
                   transform=Affine(1.0, 0, X0 + col0 * P, 0, -1.0, Y0 - row0 * P), nodata=nodata, compress="deflate")
    if cog:
        profile["blocksize"] = 256
    else:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def box_geojson(path: Path, minx: float, miny: float, maxx: float, maxy: float, crs: str = "EPSG:26914", **props) -> Path:
    import geopandas as gpd
    from shapely.geometry import box

    gpd.GeoDataFrame([props] if props else [{}], geometry=[box(minx, miny, maxx, maxy)], crs=crs).to_crs(
        "EPSG:4326").to_file(path, driver="GeoJSON")
    return path


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """Served files, a static catalog of them and the STAC API over it (servers run for the module)."""
    from tests.conftest import shared_data

    nd = shared_data(*ND)
    root = tmp_path_factory.mktemp("stac")
    files = root / "files"
    files.mkdir()
    for name in (ND_2018, ND_2010):
        os.symlink(nd / name, files / name)
    a = write_tile(files / "gen_a_20160601.tif", 0, 4, 3, BARREN)
    b = write_tile(files / "gen_b_20160815.tif", 2, 4, 3, DEVELOPED, order=(2, 1, 0))  # stored B, G, R, N
    c = write_tile(files / "gen_c_20160701.tif", 3, 2, 3, CULTIVATED)  # inside b, older: left out
    d = write_tile(files / "gen_d_20150710.tif", 6, 2, 3, CULTIVATED)
    big = write_tile(files / "gen_big_20170601.tif", 0, 8, 6, CULTIVATED, cog=False)
    top = write_tile(files / "gen_top_20190601.tif", 0, 8, 3, BARREN, nodata=None)
    bottom = write_tile(files / "gen_bottom_20190601.tif", 0, 8, 3, DEVELOPED, nodata=None, row0=3)
    with RangeServer(files) as http:
        entries = [
            Entry(nd / ND_2018, "nd_2018", dt.datetime(2018, 7, 16), properties={"naip:state": "nd"}),
            Entry(nd / ND_2010, "nd_2010", dt.datetime(2010, 6, 29), properties={"naip:state": "nd"}),
            Entry(a, "gen_a", dt.datetime(2016, 6, 1)),
            Entry(b, "gen_b", dt.datetime(2016, 8, 15), bands=("blue", "green", "red", "nir")),
            Entry(c, "gen_c", dt.datetime(2016, 7, 1)),
            Entry(d, "gen_d", dt.datetime(2015, 7, 10)),
            Entry(big, "gen_big", dt.datetime(2017, 6, 1)),
            Entry(top, "gen_top", dt.datetime(2019, 6, 1)),
            Entry(bottom, "gen_bottom", dt.datetime(2019, 6, 1)),
        ]
        cat = build_catalog(root / "catalog", entries, http.url)
        with StacApi(cat) as api:
            yield {"root": root, "files": files, "http": http, "api": api.url, "catalog": cat, "nd": nd}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return mean_colour_export(tmp_path_factory.mktemp("model") / "model")


def run_cli(*args: str) -> int:
    from landuse.cli import main

    return main([str(a) for a in args])


def plots(run: Path) -> pd.DataFrame:
    import geopandas as gpd

    df = gpd.read_parquet(run / "plots.parquet")
    return df.sort_values("plot_id").reset_index(drop=True)


def nd_aoi(tmp_path: Path) -> Path:
    # a 6 x 5 plot part of the ND quarter-quad, in its own CRS
    return box_geojson(tmp_path / "aoi.geojson", 486_500, 5_206_300, 486_500 + 6 * 224, 5_206_300 + 5 * 224)


def test_search_lists_latest_items_coverage_and_writes_geojson(catalog, tmp_path, capsys):
    aoi = box_geojson(tmp_path / "gen.geojson", X0 + 10, Y0 - 3 * P + 10, X0 + 8 * P - 10, Y0 - 10)
    out = tmp_path / "items.geojson"
    assert run_cli("search", "--stac", catalog["api"], "--collection", "naip", "--datetime", "2016",
                   "--aoi", aoi, "--geojson", out) == 0
    text = capsys.readouterr().out
    got = json.loads(out.read_text())
    ids = [f["id"] for f in got["features"]]
    assert ids == ["gen_b", "gen_a"]  # newest first; gen_c (older, inside gen_b) left out
    assert "left out gen_c 2016-07-01: covered by later acquisitions" in text
    assert got["features"][0]["properties"]["bands"] == [3, 2, 1]  # from eo:bands common names
    assert got["features"][0]["properties"]["href"] == f"{catalog['http'].url}/gen_b_20160815.tif"
    # 8 x 3 plots in the AOI; the last 2 columns have no 2016 item
    assert "coverage: 18 of 24 plots" in text and "6 of 24 plots are covered by no item" in text
    sizes = sum((catalog["files"] / n).stat().st_size for n in ("gen_a_20160601.tif", "gen_b_20160815.tif"))
    assert f"total size: {sizes / 1e6:,.1f} MB in 2 file(s)" in text
    # a range of years fills the gap and is reported as mixed
    assert run_cli("search", "--stac", catalog["api"], "--collection", "naip", "--datetime", "2015/2016",
                   "--aoi", aoi, "--no-sizes") == 0
    text = capsys.readouterr().out
    assert "mixes acquisition years 2015, 2016" in text and "coverage: 24 of 24 plots" in text
    # a CQL2 filter goes to the API
    assert run_cli("search", "--stac", catalog["api"], "--collection", "naip", "--datetime", "2010/2018",
                   "--stac-filter", "\"naip:state\" = 'nd'", "--aoi", nd_aoi(tmp_path), "--no-sizes") == 0
    text = capsys.readouterr().out
    assert "2 item(s) found, 1 chosen" in text and "nd_2018" in text and "covered by later acquisitions" in text


def test_classify_from_stac_equals_disk_and_reruns_resume(catalog, model, tmp_path, capsys):
    aoi = nd_aoi(tmp_path)
    common = ["--period", "2018", "--model", model, "--aoi", aoi, "--scheduler", "threads", "--workers", "2",
              "--chunk-plots", "8"]
    assert run_cli("classify", catalog["nd"] / ND_2018, "--out", tmp_path / "disk", *common) == 0
    stac = ["--stac", catalog["api"], "--collection", "naip", "--datetime", "2018"]
    assert run_cli("classify", *stac, "--out", tmp_path / "http", *common) == 0
    a, b = plots(tmp_path / "disk"), plots(tmp_path / "http")
    assert a.status.isin(["classified", "unknown"]).sum() == 30
    pd.testing.assert_frame_equal(a, b)
    manifest = json.loads((tmp_path / "http" / "manifest.json").read_text())
    rec = manifest["imagery"]["stac"]
    assert [i["id"] for i in rec["items"]] == ["nd_2018"]
    assert rec["items"][0]["datetime"] == "2018-07-16T00:00:00Z"
    assert rec["items"][0]["href"] == f"{catalog['http'].url}/{ND_2018}"
    assert rec["uncovered_plots"] == 0 and rec["search"]["datetime"] == "2018"
    assert manifest["inputs"][0]["path"] == f"{catalog['http'].url}/{ND_2018}"
    # the same command again: nothing to do (the recorded items are fetched by id)
    capsys.readouterr()
    assert run_cli("classify", *stac, "--out", tmp_path / "http", *common) == 0
    assert "nothing to do" in capsys.readouterr().err
    # dry run: the same listing, nothing written
    assert run_cli("classify", *stac, "--out", tmp_path / "dry", *common, "--dry-run") == 0
    text = capsys.readouterr().out
    assert "nd_2018" in text and "coverage: 30 of 30 plots" in text and not (tmp_path / "dry").exists()


def test_band_order_and_latest_item_win_over_http(catalog, model, tmp_path):
    aoi = box_geojson(tmp_path / "gen.geojson", X0 + 10, Y0 - 3 * P + 10, X0 + 8 * P - 10, Y0 - 10)
    assert run_cli("classify", "--stac", catalog["api"], "--collection", "naip", "--datetime", "2016",
                   "--period", "2016", "--out", tmp_path / "run", "--model", model, "--aoi", aoi,
                   "--scheduler", "synchronous") == 0
    df = plots(tmp_path / "run")
    df["c"] = df.col - df.col.min()
    got = df.groupby("c").label.agg(lambda s: ",".join(sorted(set(s.fillna("-")))))
    # cols 0-1: gen_a (Barren); 2-5: gen_b is newer and wins, read as R,G,B from its B,G,R storage;
    # 6-7: no 2016 item
    assert got.tolist() == ["Barren", "Barren"] + ["Developed"] * 4 + ["-", "-"]
    assert (df.status[df.c >= 6] == "nodata").all()
    summary = json.loads((tmp_path / "run" / "manifest.json").read_text())["imagery"]["stac"]
    assert summary["uncovered_plots"] == 6 and [i["id"] for i in summary["items"]] == ["gen_b", "gen_a"]


def test_http_faults_give_identical_results(catalog, model, tmp_path, monkeypatch):
    """Every 3rd range request answered 503 / 429 or dropped: the same plots as from disk."""
    aoi = box_geojson(tmp_path / "big.geojson", X0 + 10, Y0 - 6 * P + 10, X0 + 8 * P - 10, Y0 - 10)
    common = ["--period", "2017", "--model", model, "--aoi", aoi, "--chunk-plots", "8"]
    assert run_cli("classify", catalog["files"] / "gen_big_20170601.tif", "--out", tmp_path / "disk", *common,
                   "--scheduler", "synchronous") == 0
    # worker processes with almost no cache, one request per tile: many range requests
    for key, value in {"GDAL_CACHEMAX": "1", "VSI_CACHE": "FALSE", "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "NO"}.items():
        monkeypatch.setenv(key, value)
    http: RangeServer = catalog["http"]
    before_faults, before = http.faults, http.range_requests()
    http.fault_every = 3
    try:
        assert run_cli("classify", "--stac", catalog["api"], "--collection", "naip", "--datetime", "2017",
                       "--out", tmp_path / "http", *common, "--scheduler", "local", "--workers", "2") == 0
    finally:
        http.fault_every = 0
    # 3 faults or more: one of each kind (503, 429, dropped) answered and overcome
    assert http.range_requests() - before >= 9 and http.faults - before_faults >= 3
    pd.testing.assert_frame_equal(plots(tmp_path / "disk"), plots(tmp_path / "http"))


def test_persistent_http_failure_stops_naming_the_url_and_rerun_resumes(catalog, model, tmp_path, monkeypatch, capsys):
    """The bottom half of the AOI lies on a file whose pixels the server refuses (503, always): the
    run stops naming that URL with the top half's chunks kept; the rerun resumes and matches disk."""
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "1")
    monkeypatch.setenv("LANDUSE_REMOTE_READ_ATTEMPTS", "2")
    aoi = box_geojson(tmp_path / "big.geojson", X0 + 10, Y0 - 6 * P + 10, X0 + 8 * P - 10, Y0 - 10)
    top, bottom = "gen_top_20190601.tif", "gen_bottom_20190601.tif"
    # worker processes (fresh GDAL caches, their own remote settings from the environment)
    common = ["--period", "2019", "--model", model, "--aoi", aoi, "--chunk-plots", "8"]
    assert run_cli("classify", catalog["files"] / top, catalog["files"] / bottom, "--out", tmp_path / "disk", *common,
                   "--scheduler", "synchronous") == 0
    http: RangeServer = catalog["http"]
    stac = ["classify", "--stac", catalog["api"], "--collection", "naip", "--datetime", "2019", "--out", tmp_path / "http",
            *common, "--scheduler", "local", "--workers", "2"]
    from landuse.imagery import close_datasets

    start = http.faults
    http.fail(bottom, from_byte=16384)  # the header (first 16 KB) opens, the pixels fail
    capsys.readouterr()
    try:
        assert run_cli(*stac) == 1
    finally:
        http.fail(None)
    err = capsys.readouterr().err
    assert f"{http.url}/{bottom}" in err and "failed 2 times" in err and "rerun the same command to resume" in err
    done = list((tmp_path / "http" / "parts").glob("*.parquet"))
    assert 1 <= len(done) <= 3 and http.faults > start
    close_datasets()
    assert run_cli(*stac) == 0
    assert "resuming" in capsys.readouterr().err
    pd.testing.assert_frame_equal(plots(tmp_path / "disk"), plots(tmp_path / "http"))


def test_static_item_collection_file_and_aoi_where(catalog, model, tmp_path, capsys):
    """A catalog file instead of an API, and a county picked by attribute from a two-county file."""
    import geopandas as gpd
    import pystac
    from shapely.geometry import box

    cat = pystac.Catalog.from_file(str(catalog["catalog"]))
    items = pystac.ItemCollection(list(cat.get_items(recursive=True)))
    items.save_object(str(tmp_path / "items.json"))
    counties = gpd.GeoDataFrame(
        {"GEOID": ["38093", "38001"], "NAME": ["Stutsman", "Adams"]},
        geometry=[box(486_500, 5_206_300, 486_500 + 4 * 224, 5_206_300 + 3 * 224), box(0, 0, 1000, 1000)],
        crs="EPSG:26914",
    )
    counties.to_file(tmp_path / "counties.gpkg", driver="GPKG")
    assert run_cli("classify", "--stac", tmp_path / "items.json", "--collection", "naip", "--datetime", "2010/2018-07",
                   "--stac-query", '{"naip:state": {"eq": "nd"}, "gsd": {"lte": 1}}', "--stac-filter", "id = 'nd_2018'",
                   "--period", "2018", "--out", tmp_path / "run", "--model", model, "--aoi", tmp_path / "counties.gpkg",
                   "--aoi-where", "GEOID = '38093'", "--scheduler", "synchronous") == 0
    df = plots(tmp_path / "run")
    assert df.status.isin(["classified", "unknown"]).sum() == 12 and set(df.status) <= {"classified", "unknown", "outside_aoi"}
    man = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert man["parameters"]["aoi"]["where"] == "GEOID = '38093'"
    assert [i["id"] for i in man["imagery"]["stac"]["items"]] == ["nd_2018"]
    capsys.readouterr()
    assert run_cli("search", "--stac", tmp_path / "items.json", "--datetime", "2018", "--aoi", tmp_path / "counties.gpkg",
                   "--aoi-where", "GEOID = '99999'") == 1
    assert "no feature of" in capsys.readouterr().err
    # the query extension, evaluated on a static catalog: a state no item has finds nothing
    assert run_cli("search", "--stac", tmp_path / "items.json", "--datetime", "2010/2018", "--aoi", tmp_path / "counties.gpkg",
                   "--aoi-where", "GEOID = '38093'", "--stac-query", '{"naip:state": {"eq": "ca"}}', "--no-sizes") == 0
    assert "0 item(s) found, 0 chosen" in capsys.readouterr().out


def test_signatures_never_recorded_and_signing_only_for_planetary_computer_hosts():
    from landuse.imagery import redact, strip_signature
    from landuse.stac import StacSource, needs_planetary_computer_signature

    signed = ("https://naipeuwest.blob.core.windows.net/naip/v002/nd/2018/x.tif?st=2026-01-01&se=2026-01-02"
              "&sp=rl&sv=2021-06-08&sr=c&skoid=abc&sig=SECRET%3D")
    assert strip_signature(signed) == "https://naipeuwest.blob.core.windows.net/naip/v002/nd/2018/x.tif"
    aws = "https://b.s3.amazonaws.com/k.tif?X-Amz-Signature=SECRET&X-Amz-Credential=ID&version=3"
    assert strip_signature(aws) == "https://b.s3.amazonaws.com/k.tif?version=3"
    assert "SECRET" not in redact(f"cannot open /vsicurl/{signed}: HTTP 403 and {aws}")
    assert needs_planetary_computer_signature("https://naipeuwest.blob.core.windows.net/naip/x.tif")
    assert not needs_planetary_computer_signature("https://example.org/naip/x.tif")
    assert not needs_planetary_computer_signature("http://127.0.0.1:8000/x.tif")
    assert StacSource("https://planetarycomputer.microsoft.com/api/stac/v1").signer() == "planetary-computer"
    assert StacSource("http://127.0.0.1:9/").signer() is None


def test_remote_gdal_settings_are_set_per_process_and_the_environment_wins(monkeypatch):
    from rasterio.env import get_gdal_config

    from landuse.imagery import configure_remote_reads, remote_gdal_settings

    monkeypatch.delenv("GDAL_HTTP_MAX_RETRY", raising=False)
    configure_remote_reads()
    assert get_gdal_config("GDAL_DISABLE_READDIR_ON_OPEN") == "EMPTY_DIR"
    assert str(get_gdal_config("GDAL_HTTP_MAX_RETRY")) == "4"
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "7")
    configure_remote_reads()
    assert str(get_gdal_config("GDAL_HTTP_MAX_RETRY")) == "7" and remote_gdal_settings()["GDAL_HTTP_MAX_RETRY"] == "7"


def test_bad_stac_inputs_are_one_line_errors(catalog, tmp_path, capsys):
    aoi = nd_aoi(tmp_path)
    cases = [
        (["--stac", catalog["api"], "--collection", "naip", "--datetime", "2018/2010", "--aoi", aoi], "ends before it starts"),
        (["--stac", catalog["api"], "--datetime", "2018"], "needs an area"),
        (["--stac", "http://127.0.0.1:9/", "--aoi", aoi], "cannot open the STAC API"),
        (["--stac", catalog["api"], "--collection", "naip", "--asset", "nope", "--aoi", aoi], "has no asset 'nope'"),
        (["--stac", catalog["api"], "--stac-query", "{bad", "--aoi", aoi], "is not valid JSON"),
    ]
    for args, want in cases:
        capsys.readouterr()
        assert run_cli("search", *args, "--no-sizes") == 1, args
        err = capsys.readouterr().err
        assert want in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (args, err)
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_workflow_periods_from_stac(catalog, model, tmp_path):
    """A workflow file says the same as the command line: two periods from the STAC API."""
    import yaml

    aoi = nd_aoi(tmp_path)
    wf = {
        "name": "ND from STAC", "output": "out", "model": str(model),
        "grid": {"aoi": aoi.name},
        "pipeline": {"scheduler": "synchronous"},
        "periods": [
            {"name": "2010", "date": "2010-06-29", "stac": {"url": catalog["api"], "collections": "naip", "datetime": 2010}},
            {"name": "2018", "date": "2018-07-16", "stac": {"url": catalog["api"], "collections": ["naip"], "datetime": "2018",
                                                           "filter": "\"naip:state\" = 'nd'"}},
        ],
        "report": {"enabled": False},
    }
    (tmp_path / "wf.yaml").write_text(yaml.safe_dump(wf))
    assert run_cli("run", tmp_path / "wf.yaml") == 0
    for name, item in (("2010", "nd_2010"), ("2018", "nd_2018")):
        man = json.loads((tmp_path / "out" / "runs" / name / "manifest.json").read_text())
        assert [i["id"] for i in man["imagery"]["stac"]["items"]] == [item]
        assert plots(tmp_path / "out" / "runs" / name).status.isin(["classified", "unknown"]).sum() >= 25
    assert json.loads((tmp_path / "out" / "change" / "summary.json").read_text())["periods"] == ["2010-06-29", "2018-07-16"]
    # the Python API runs the same workflow: every step reused (same items, same manifests)
    import landuse

    result = landuse.run(tmp_path / "wf.yaml")
    assert [r.did_work for r in result.runs.values()] == [False, False]
    # both or neither of imagery / stac is refused with the key named
    wf["periods"][0]["imagery"] = ["x.tif"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(wf))
    assert run_cli("run", tmp_path / "bad.yaml") == 1


def test_gdal_log_records_lose_their_signatures(caplog):
    import logging

    from landuse.imagery import redact_gdal_logs

    redact_gdal_logs()
    with caplog.at_level(logging.DEBUG, logger="rasterio._env"):
        logging.getLogger("rasterio._env").warning("HTTP error on %s", "https://a.blob.core.windows.net/x.tif?sv=1&sig=SECRET")
    assert "SECRET" not in caplog.text and "https://a.blob.core.windows.net/x.tif" in caplog.text


def test_search_is_a_library_function(catalog, tmp_path):
    import landuse

    sel = landuse.search(catalog["api"], collections="naip", datetime=2018, aoi=nd_aoi(tmp_path), sizes=False)
    assert isinstance(sel, landuse.StacSelection)
    assert [i.id for i in sel.items] == ["nd_2018"] and sel.uncovered_plots == 0 and sel.plots == 30


def test_presigned_hrefs_are_read_but_never_written(catalog, model, tmp_path, capsys):
    """An item collection whose href carries a signature (as pre-signed catalogs hand out): the
    server gets it, no file of the run, no log line and no search output holds it."""
    import pystac

    cat = pystac.Catalog.from_file(str(catalog["catalog"]))
    item = next(i for i in cat.get_items(recursive=True) if i.id == "nd_2018")
    item.assets["image"].href += "?sv=2021-06-08&se=2030-01-01&sp=r&sig=SECRETSIG%3D"
    pystac.ItemCollection([item]).save_object(str(tmp_path / "signed.json"))
    capsys.readouterr()
    assert run_cli("-v", "classify", "--stac", tmp_path / "signed.json", "--datetime", "2018", "--period", "2018",
                   "--out", tmp_path / "run", "--model", model, "--aoi", nd_aoi(tmp_path), "--scheduler", "synchronous") == 0
    assert run_cli("search", "--stac", tmp_path / "signed.json", "--aoi", nd_aoi(tmp_path), "--geojson", tmp_path / "i.geojson") == 0
    captured = capsys.readouterr()
    assert "SECRETSIG" not in captured.out + captured.err
    for path in [*(tmp_path / "run").rglob("*"), tmp_path / "i.geojson"]:
        if path.is_file():
            assert b"SECRETSIG" not in path.read_bytes(), path
    man = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert man["imagery"]["stac"]["items"][0]["href"] == f"{catalog['http'].url}/{ND_2018}"
    assert plots(tmp_path / "run").status.isin(["classified", "unknown"]).sum() == 30
