"""GIS outputs: GeoPackages equal the GeoParquet, category names GDAL reads, QGIS / SLD styles
with the palette and class names, in the structure QGIS itself writes (tests/data/qgis)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio

from landuse.change import compare, load_run
from landuse.pipeline import ModelRef, classify_scene
from landuse.report.change_outputs import write_change_outputs
from landuse.report.palette import class_colors

HERE = Path(__file__).resolve().parent
QGIS_REF = HERE / "data" / "qgis"
sys.path.insert(0, str(HERE))
from pipeline_fakes import LABELS, fake_grid, fake_scene, make_fake  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path]:
    """A real run through the pipeline (fake model): its finalised outputs."""
    grid = fake_grid()
    d = tmp_path_factory.mktemp("gis") / "2016"
    classify_scene(fake_scene(grid), grid, ModelRef(None, factory=make_fake), d, period="2016", chunk_plots=16,
                   scheduler="synchronous", quiet=True)
    return (d,)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two synthetic runs with changes, uncertain plots and (by hand, per the contract) unknown plots."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.runfactory import make_pair, remark_complete

    a, b, _ = make_pair(tmp_path_factory.mktemp("gis_pair"), rows=12, cols=15, fraction=0.1, change=False, plots_geojson=False)
    t = pq.read_table(b.path / "plots.parquet")
    status = t.column("status").to_pylist()
    for i in (20, 21, 22):
        status[i] = "unknown"
    t = t.set_column(t.schema.get_field_index("status"), "status", pa.array(status))
    pq.write_table(t, b.path / "plots.parquet")
    remark_complete(b.path)  # the edited run stands for a finished one
    return a, b


@pytest.fixture(scope="module")
def change_dir(pair, tmp_path_factory) -> Path:
    comp = compare(load_run(pair[0].path), load_run(pair[1].path))
    out = tmp_path_factory.mktemp("gis_change") / "change"
    write_change_outputs(comp, out, comp.summary())
    return out


def _same_frames(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    assert a.crs == b.crs
    for col in a.columns:
        if col == a.geometry.name:
            assert a.geometry.geom_equals_exact(b.geometry, tolerance=1e-6).all()
        else:
            pd.testing.assert_series_equal(a[col].reset_index(drop=True), b[col].reset_index(drop=True), check_dtype=False,
                                           check_names=False)


def test_run_geopackage_equals_geoparquet(runs):
    run = runs[0]
    parquet = gpd.read_parquet(run / "plots.parquet")
    gpkg = gpd.read_file(run / "plots.gpkg", layer="plots", engine="pyogrio")
    assert len(parquet) > 0
    _same_frames(parquet, gpkg)
    # the style QGIS opens by default travels inside the GeoPackage
    styles = gpd.read_file(run / "plots.gpkg", layer="layer_styles", engine="pyogrio")
    assert styles["f_table_name"].tolist() == ["plots"] and bool(styles["useAsDefault"].iloc[0])
    import pyogrio

    # QGIS matches the default style on table and geometry column names
    assert styles["f_geometry_column"].iloc[0] == pyogrio.read_info(run / "plots.gpkg", layer="plots")["geometry_name"]
    assert all(f'value="{t}"' in styles["styleQML"].iloc[0] for t in LABELS)
    assert not list(run.glob(".*tmp*"))  # atomic: no temporaries left


def test_change_geopackage_equals_geoparquet(change_dir, pair):
    parquet = gpd.read_parquet(change_dir / "change.parquet")
    gpkg = gpd.read_file(change_dir / "change.gpkg", layer="change", engine="pyogrio")
    _same_frames(parquet, gpkg)
    styles = gpd.read_file(change_dir / "change.gpkg", layer="layer_styles", engine="pyogrio")
    assert styles["f_table_name"].tolist() == ["change"] and 'attr="status"' in styles["styleQML"].iloc[0]
    comp = compare(load_run(pair[0].path), load_run(pair[1].path))
    assert len(parquet) == int(comp.compared.sum())
    assert set(parquet["status"]) <= {"unchanged", "changed", "uncertain", "unknown"}
    n_changed = int((comp.status == 1).sum())
    assert n_changed > 0 and (parquet["status"] == "changed").sum() == n_changed
    assert (parquet["status"] == "unknown").sum() == 3 and (parquet["status"] == "uncertain").sum() > 0


def _gdalinfo_categories(path: Path) -> dict[int, str]:
    out = subprocess.run(["gdalinfo", str(path)], capture_output=True, text=True, check=True).stdout
    block = out.split("Categories:", 1)[1].split("Metadata:", 1)[0]
    cats = {}
    for line in block.splitlines():
        k, _, v = line.strip().partition(":")
        if k.isdigit() and v.strip():
            cats[int(k)] = v.strip()
    return cats


def test_category_names_read_by_gdal(runs, change_dir):
    """GDAL reads the .aux.xml: its metadata reaches rasterio, and gdalinfo (where GDAL's tools are
    installed) lists the category names."""
    classes = runs[0] / "classes.tif"
    assert (runs[0] / "classes.tif.aux.xml").exists()
    with rasterio.open(classes) as src:
        cats = src.tags(1)["LANDUSE_CATEGORIES"]
        assert cats == ";".join([f"{i}={t}" for i, t in enumerate(LABELS)] + ["254=unknown"])
        cmap = src.colormap(1)
    colors = class_colors(list(LABELS))
    for i, t in enumerate(LABELS):
        assert "#{:02x}{:02x}{:02x}".format(*cmap[i][:3]) == colors[t]
    with rasterio.open(change_dir / "change.tif") as src:
        tags = src.tags(1)["LANDUSE_CATEGORIES"]
    from tests.runfactory import LABELS as CL

    n = len(CL)
    assert f"1={CL[0]} -> {CL[1]}" in tags and f"{n * n + 1}={CL[0]} -> {CL[1]} (uncertain)" in tags
    if shutil.which("gdalinfo"):
        assert _gdalinfo_categories(classes) == {**dict(enumerate(LABELS)), 254: "unknown"}
        assert _gdalinfo_categories(change_dir / "change.tif")[n + 2] == f"{CL[1]} -> {CL[2]}"


def _paths(el: ET.Element, prefix: str = "") -> set[str]:
    here = f"{prefix}/{el.tag}"
    out = {here}
    for child in el:
        out |= _paths(child, here)
    return out


def _first(root: ET.Element, tag: str) -> ET.Element:
    el = root.find(f".//{tag}")
    assert el is not None, tag
    return el


def test_raster_qml_has_qgis_structure_and_names(runs):
    ours = ET.parse(runs[0] / "classes.qml").getroot()
    ref = ET.parse(QGIS_REF / "qgis_written_raster.qml").getroot()
    assert _paths(ours) <= _paths(ref)
    for tag in ("rasterrenderer", "paletteEntry"):
        assert set(_first(ref, tag).attrib) <= set(_first(ours, tag).attrib), tag
    assert _first(ours, "rasterrenderer").get("type") == "paletted"
    entries = {e.get("value"): (e.get("label"), e.get("color")) for e in ours.iter("paletteEntry")}
    colors = class_colors(list(LABELS))
    assert entries == {**{str(i): (t, colors[t]) for i, t in enumerate(LABELS)}, "254": ("unknown", "#000000")}
    # the SLD names every class too
    sld = ET.parse(runs[0] / "classes.sld").getroot()
    ns = {"sld": "http://www.opengis.net/sld"}
    labels = [e.get("label") for e in sld.iterfind(".//sld:ColorMapEntry", ns)]
    assert labels == [*LABELS, "unknown"]
    assert sld.find(".//sld:ColorMap", ns).get("type") == "values"


def test_vector_styles_have_qgis_structure_and_names(runs, change_dir):
    from tests.runfactory import LABELS as CL

    ref = ET.parse(QGIS_REF / "qgis_written_vector.qml").getroot()
    for path, field, values in ((runs[0] / "plots.qml", "label", [*LABELS, "unknown"]),
                                (change_dir / "change_plots.qml", "status", ["unchanged", "changed", "uncertain", "unknown"])):
        assert CL
        ours = ET.parse(path).getroot()
        assert _paths(ours) <= _paths(ref), path
        for tag in ("renderer-v2", "category", "symbol", "layer"):
            assert set(_first(ref, tag).attrib) - {"id"} <= set(_first(ours, tag).attrib), (path, tag)
        r = _first(ours, "renderer-v2")
        assert r.get("type") == "categorizedSymbol" and r.get("attr") == field
        assert [c.get("value") for c in ours.iter("category")] == values
        # each category's symbol exists and is filled with a colour
        names = {s.get("name") for s in ours.iter("symbol")}
        assert all(c.get("symbol") in names for c in ours.iter("category"))
    ref_sld = ET.parse(QGIS_REF / "qgis_written_vector.sld").getroot()
    ours_sld = ET.parse(runs[0] / "plots.sld").getroot()

    def local(el: ET.Element, prefix: str = "") -> set[str]:
        here = f"{prefix}/{el.tag.split('}')[-1]}"
        out = {here}
        for child in el:
            out |= local(child, here)
        return out

    # QGIS writes SLD 1.1 (SE); ours is SLD 1.0: the same tree up to 1.0 -> 1.1 renamings
    renamed = {"CssParameter": "SvgParameter", "Rule/Title": "Rule/Description/Title", "UserStyle/Title": "UserStyle/Name"}

    def as_11(path: str) -> str:
        for old, new in renamed.items():
            path = path.replace(old, new)
        return path

    assert {as_11(x) for x in local(ours_sld)} <= local(ref_sld)
    lits = [e.text for e in ours_sld.iter("{http://www.opengis.net/ogc}Literal")]
    assert lits == [*LABELS, "unknown"]


def test_change_tif_styles_name_every_code(change_dir):
    from tests.runfactory import LABELS as CL

    q = ET.parse(change_dir / "change.qml").getroot()
    labels = {e.get("value"): e.get("label") for e in q.iter("paletteEntry")}
    n = len(CL)
    assert labels[str(0)] == f"{CL[0]} (unchanged)"
    assert labels[str(n * n + n + 2)] == f"{CL[1]} -> {CL[2]} (uncertain)"
    assert labels["254"].startswith("unknown")
    assert len(labels) == n + 2 * n * (n - 1) + 1
    with rasterio.open(change_dir / "change.tif") as src:
        data = src.read(1)
    assert set(np.unique(data).tolist()) - {255} <= {int(v) for v in labels}
