"""Sample rasters: valid NAIP-like GeoTIFFs, truth on the rasters' plot grid, determinism, README."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS

from landuse.cli import main
from landuse.errors import InputError
from landuse.grid import PlotGrid
from landuse.samples import generate

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_rasters"
CLASSES = {"Barren", "Cultivated", "Developed"}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("samples")
    generate(out, plots_x=4, plots_y=3, seed=7)
    return out


def _check_raster(path: Path, width: int, height: int) -> np.ndarray:
    with rasterio.open(path) as src:
        assert src.crs == CRS.from_epsg(32611)
        assert (src.width, src.height, src.count) == (width, height, 4)
        assert src.dtypes == ("uint8",) * 4
        assert src.nodata == 0
        assert src.res == (1.0, 1.0)
        assert src.transform.b == 0 and src.transform.d == 0
        assert src.profile["tiled"] and src.block_shapes[0] == (256, 256)
        assert src.compression.name.lower() == "deflate"
        assert src.descriptions == ("red", "green", "blue", "nir")
        # the origin is deliberately off the 224 m grid: partial plots at the edges
        assert src.transform.c % 224 != 0 and src.transform.f % 224 != 0
        data = src.read()
        mask = src.dataset_mask()
    nodata = (data == 0).all(axis=0)
    assert nodata.any(), "a nodata corner is expected"
    assert nodata[-1, -1] and not nodata[0, 0] and not nodata[height // 2, width // 2]
    assert ((mask == 0) == nodata).all()
    assert (data[:, ~nodata] > 0).all()  # valid pixels never collide with nodata
    return data


def test_generated_files_are_georeferenced_rgbn_geotiffs(small):
    for year in (2016, 2022):
        data = _check_raster(small / f"{year}.tif", 4 * 224, 3 * 224)
        valid = (data > 0).all(axis=0)
        # imagery, not a flat fill: varied values in every band
        assert all(data[b][valid].std() > 5 for b in range(4))


def test_truth_ids_match_the_plot_grid_of_the_rasters(small):
    truth = gpd.read_file(small / "truth.geojson")
    assert truth.crs.to_epsg() == 4326
    grid = PlotGrid.from_rasters([small / "2016.tif", small / "2022.tif"])
    assert grid == PlotGrid.from_rasters([small / "2022.tif"])
    # 4 x 3 plots of imagery off the grid touch 5 x 4 grid plots
    assert grid.shape == (4, 5)
    assert sorted(truth["plot_id"]) == sorted(grid.plot_ids())
    for _, t in truth.iterrows():
        assert grid.parse_plot_id(t["plot_id"]) == (t["row"], t["col"])
        # the truth polygon is the plot's footprint
        centre = t.geometry.centroid
        assert grid.footprint(t["row"], t["col"], to_crs="EPSG:4326").contains(centre)
    # partial plots at the edges, whole plots inside
    vf = truth.set_index(["row", "col"])["valid_fraction"]
    assert vf[(0, 0)] < 1 and vf[(3, 4)] < 1 and vf[(1, 1)] == 1
    assert set(truth["class_2016"].dropna()) <= CLASSES
    assert set(truth["class_2022"].dropna()) <= CLASSES


def test_truth_classes_match_the_pixels(small):
    """Developed plots are busier (streets, roofs) than fields; Barren is the brightest."""
    truth = gpd.read_file(small / "truth.geojson")
    grid = PlotGrid.from_rasters([small / "2016.tif"])
    with rasterio.open(small / "2016.tif") as src:
        ox = round(grid.transform.c - src.transform.c)
        oy = round(src.transform.f - grid.transform.f)
        img = src.read((1, 2, 3)).astype(np.float32)
    by_class: dict[str, list[tuple[float, float]]] = {}
    for _, t in truth[truth["valid_fraction"] > 0.25].iterrows():
        r0, c0 = oy + t["row"] * 224, ox + t["col"] * 224
        plot = img[:, max(r0, 0) : r0 + 224, max(c0, 0) : c0 + 224].mean(axis=0)
        valid = plot > 0
        dx = np.abs(np.diff(plot, axis=1))[valid[:, 1:] & valid[:, :-1]]
        dy = np.abs(np.diff(plot, axis=0))[valid[1:, :] & valid[:-1, :]]
        by_class.setdefault(t["class_2016"], []).append((plot[valid].mean(), (dx.mean() + dy.mean()) / 2))
    assert set(by_class) == CLASSES
    assert min(g for _, g in by_class["Developed"]) > max(g for _, g in by_class["Cultivated"])
    assert min(g for _, g in by_class["Developed"]) > max(g for _, g in by_class["Barren"])
    assert min(b for b, _ in by_class["Barren"]) > max(b for b, _ in by_class["Cultivated"])


def _check_urbanization(truth: gpd.GeoDataFrame) -> None:
    ch = truth[truth["changed"]]
    assert len(ch) > 0
    assert (ch["class_2022"] == "Developed").all()
    assert set(ch["class_2016"]) <= {"Cultivated", "Barren"}
    same = truth[~truth["changed"]]
    assert (same["class_2016"].fillna("") == same["class_2022"].fillna("")).all()
    # no de-urbanization
    dev16 = truth["class_2016"] == "Developed"
    assert (truth.loc[dev16, "class_2022"] == "Developed").all()


def test_urbanization_is_only_cultivated_or_barren_to_developed(small):
    _check_urbanization(gpd.read_file(small / "truth.geojson"))


def test_changed_plots_differ_between_periods_and_others_barely(small):
    truth = gpd.read_file(small / "truth.geojson")
    grid = PlotGrid.from_rasters([small / "2016.tif"])
    with rasterio.open(small / "2016.tif") as a, rasterio.open(small / "2022.tif") as b:
        ox = round(grid.transform.c - a.transform.c)
        oy = round(a.transform.f - grid.transform.f)
        d16, d22 = a.read((1, 2, 3)).astype(np.float32), b.read((1, 2, 3)).astype(np.float32)
    for _, t in truth[(truth["valid_fraction"] == 1) & (truth["class_2016"] != "Cultivated")].iterrows():
        r0, c0 = oy + t["row"] * 224, ox + t["col"] * 224
        diff = np.abs(d16[:, r0 : r0 + 224, c0 : c0 + 224] - d22[:, r0 : r0 + 224, c0 : c0 + 224]).mean()
        # unchanged town / desert: only radiometry and noise differ; new town: everything
        assert (diff > 15) if t["changed"] else (diff < 8), (t["plot_id"], diff)


def test_same_seed_same_pixels_other_seed_other_pixels(small, tmp_path):
    again = generate(tmp_path / "again", plots_x=4, plots_y=3, seed=7)
    other = generate(tmp_path / "other", plots_x=4, plots_y=3, seed=8)
    for year in (2016, 2022):
        with rasterio.open(small / f"{year}.tif") as a, rasterio.open(again.rasters[year == 2022]) as b:
            assert np.array_equal(a.read(), b.read())
        with rasterio.open(small / f"{year}.tif") as a, rasterio.open(other.rasters[year == 2022]) as c:
            assert not np.array_equal(a.read(), c.read())
    t1 = gpd.read_file(small / "truth.geojson").drop(columns="geometry")
    t2 = gpd.read_file(again.truth).drop(columns="geometry")
    assert t1.equals(t2)


def test_existing_outputs_need_overwrite(small, tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["samples", "--out", str(out), "--plots-x", "3", "--plots-y", "3", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert "2016.tif" in text and "truth.geojson" in text and "EPSG:32611" in text
    assert main(["samples", "--out", str(out), "--plots-x", "3", "--plots-y", "3"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["samples", "--out", str(out), "--plots-x", "3", "--plots-y", "3", "--overwrite"]) == 0
    assert main(["samples", "--out", str(out), "--plots-x", "2"]) == 2  # click range check
    with pytest.raises(InputError):
        generate(tmp_path / "big", plots_x=300, plots_y=300)


# -- the committed sample pair ----------------------------------------------------------------


def _readme() -> str:
    return (SAMPLES / "README.md").read_text()


def test_committed_samples_match_their_readme():
    text = _readme()
    m = re.search(r"landuse samples --out sample_rasters --plots-x (\d+) --plots-y (\d+) --seed (\d+)", text)
    assert m, "README must give the exact command"
    px, py = int(m.group(1)), int(m.group(2))
    size = re.search(r"(\d+) x (\d+) px", text)
    assert size and (int(size.group(1)), int(size.group(2))) == (px * 224, py * 224)
    assert "EPSG:32611" in text
    for year in (2016, 2022):
        _check_raster(SAMPLES / f"{year}.tif", px * 224, py * 224)
    total = sum(p.stat().st_size for p in SAMPLES.iterdir() if p.is_file())
    assert total <= 5_000_000
    truth = gpd.read_file(SAMPLES / "truth.geojson")
    grid = PlotGrid.from_rasters([SAMPLES / "2016.tif", SAMPLES / "2022.tif"])
    assert sorted(truth["plot_id"]) == sorted(grid.plot_ids())
    assert {"plot_id", "row", "col", "class_2016", "class_2022", "changed"} <= set(truth.columns)
    _check_urbanization(truth)
    # the README's counts are the truth's counts
    for year in (2016, 2022):
        for cls in CLASSES:
            n = int((truth[f"class_{year}"] == cls).sum())
            assert re.search(rf"{year}\D[^\n]*{cls} {n}\b", text), (year, cls, n)


def test_committed_samples_regenerate_from_the_readme_command(tmp_path):
    m = re.search(r"--plots-x (\d+) --plots-y (\d+) --seed (\d+)", _readme())
    px, py, seed = (int(v) for v in m.groups())
    again = generate(tmp_path, plots_x=px, plots_y=py, seed=seed)
    for year, path in zip((2016, 2022), again.rasters, strict=True):
        with rasterio.open(SAMPLES / f"{year}.tif") as a, rasterio.open(path) as b:
            assert a.transform == b.transform
            assert np.array_equal(a.read(), b.read()), f"sample_rasters/{year}.tif is stale; rerun the README command"
