"""Plot labels from land-cover rasters: hand-computed shares, purity decisions, mappings, datasets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from landuse.cli import main
from landuse.errors import InputError
from landuse.grid import PlotGrid
from landuse.training.dataset import TagDataset
from landuse.training.labels import REASONS, balanced_sample, load_mapping, plot_labels
from tests.conftest import shared_data

CRS14 = CRS.from_epsg(32614)
X0, Y0 = 224.0 * 2000, 224.0 * 20000  # an origin-anchored corner


def grid_of(width: int, height: int = 1) -> PlotGrid:
    return PlotGrid(CRS14, Affine(224.0, 0, X0, 0, -224.0, Y0), width, height)


def five_plots() -> np.ndarray:
    """A 28 m label raster (8 x 8 px a plot) over 4.5 plots: each plot's composition by hand."""
    a = np.zeros((8, 36), np.uint8)
    a[:, 0:8] = 41  # plot 0: Forested 64/64
    a[:, 8:16] = 21  # plot 1: Developed 48/64 = 0.75, Cultivated 16/64
    a[6:8, 8:16] = 81
    a[:, 16:24] = 11  # plot 2: water 32/64, Forested 20/64, Cultivated 12/64
    a[4:8, 16:24] = 41
    a[7:8, 16:20] = 82
    a[7:8, 20:24] = 82
    a[6:7, 20:24] = 82
    a[:, 24:32] = 81  # plot 3: Cultivated 40/64 = 0.625, Grassland 24/64
    a[5:8, 24:32] = 71
    a[:, 32:36] = 82  # plot 4: half covered (Cultivated 0.5), half outside the raster
    return a


def test_hand_computed_shares_and_decisions(write_raster) -> None:
    path = write_raster("nlcd.tif", five_plots(), CRS14, Affine(28.0, 0, X0, 0, -28.0, Y0))
    pl = plot_labels(path, grid_of(5), purity=0.75)
    tags = pl.tags
    share = {t: pl.shares[i, 0] for i, t in enumerate(tags)}
    assert share["Forested"].tolist() == pytest.approx([1.0, 0, 20 / 64, 0, 0])
    assert share["Developed"].tolist() == pytest.approx([0, 48 / 64, 0, 0, 0])
    assert share["Cultivated"].tolist() == pytest.approx([0, 16 / 64, 12 / 64, 40 / 64, 0.5])
    assert share["Grassland"].tolist() == pytest.approx([0, 0, 0, 24 / 64, 0])
    assert pl.unmapped[0].tolist() == pytest.approx([0, 0, 0.5, 0, 0])
    assert pl.nodata[0].tolist() == pytest.approx([0, 0, 0, 0, 0.5])
    assert [tags[i] if i >= 0 else None for i in pl.label[0]] == ["Forested", "Developed", None, None, None]
    assert [REASONS[r] for r in pl.reason[0]] == ["labelled", "labelled", "unmapped", "impure", "nodata"]
    # purity is a threshold: a stricter one leaves the 0.75 plot out as impure
    strict = plot_labels(path, grid_of(5), purity=0.8)
    assert strict.label[0, 1] == -1 and REASONS[strict.reason[0, 1]] == "impure"
    assert pl.counts() == {"Barren": 0, "Cultivated": 0, "Developed": 1, "Forested": 1, "Grassland": 0, "Shrub": 0,
                           "impure": 1, "nodata": 1, "unmapped": 1}


def test_misaligned_raster_never_invents_codes(write_raster) -> None:
    """21 next to 41 shifted by 7 m: nearest keeps codes (bilinear would make 31 = Barren)."""
    a = np.full((16, 24), 41, np.uint8)
    a[:, :11] = 21
    path = write_raster("lc.tif", a, CRS14, Affine(30.0, 0, X0 - 7.0, 0, -30.0, Y0 + 7.0))
    pl = plot_labels(path, grid_of(2, 2))
    barren = pl.tags.index("Barren")
    assert pl.shares[barren].max() == 0 and not pl.unknown_codes
    total = pl.shares.sum(axis=0) + pl.unmapped + pl.nodata
    assert np.allclose(total, 1.0)


def test_mapping_yaml_override_and_errors(tmp_path: Path, write_raster) -> None:
    good = tmp_path / "chesapeake.yaml"
    good.write_text("name: Chesapeake\nclasses:\n  Water: [1]\n  Trees: ['3-4']\n  Built: [7, 8]\nignore: [5]\nnodata: [0]\n")
    m = load_mapping(good)
    assert m.tags == ["Water", "Trees", "Built"] and m.code_table() == {1: 0, 3: 1, 4: 1, 7: 2, 8: 2}
    a = np.array([[1] * 8 + [4] * 8] * 8, np.uint8)
    path = write_raster("cb.tif", a, CRS14, Affine(28.0, 0, X0, 0, -28.0, Y0))
    pl = plot_labels(path, grid_of(2), mapping=m)
    assert [pl.tags[i] for i in pl.label[0]] == ["Water", "Trees"]
    cases = {
        "overlap.yaml": ("classes:\n  A: [1, 2]\n  B: ['2-3']\n", "code 2 is in both"),
        "badtag.yaml": ("classes:\n  'a/b': [1]\n", "cannot be a folder name"),
        "extra.yaml": ("classes:\n  A: [1]\nclases: {}\n", "clases"),
        "range.yaml": ("classes:\n  A: ['9-3']\n", "runs backwards"),
        "empty.yaml": ("classes: {}\n", "classes is empty"),
        "notyaml.yaml": ("classes: [1, 2\n", "not valid YAML"),
    }
    for name, (text, expect) in cases.items():
        p = tmp_path / name
        p.write_text(text)
        with pytest.raises(InputError, match=expect) as info:
            load_mapping(p)
        assert name in str(info.value)


def test_balanced_sampling_is_seeded() -> None:
    label = np.array([[0] * 50 + [1] * 7 + [-1] * 3])
    a = balanced_sample(label, 2, 5, seed=3)
    assert a.tolist() == balanced_sample(label, 2, 5, seed=3).tolist()
    assert a.tolist() != balanced_sample(label, 2, 5, seed=4).tolist()
    assert (label.ravel()[a] == 0).sum() == 5 and (label.ravel()[a] == 1).sum() == 5
    assert balanced_sample(label, 2, None, seed=0).size == 57


def test_dataset_on_real_nlcd(tmp_path: Path) -> None:
    d = shared_data("rasters", "naip_wv_two_dates")
    nlcd = next(d.glob("*nlcd.tif"))
    naip = next(d.glob("*naip-new.tif"))
    out = tmp_path / "ds"
    assert main(["dataset", str(naip), "--labels", str(nlcd), "--out", str(out), "--per-class", "12",
                 "--chip-size", "224", "--seed", "1"]) == 0
    index = json.loads((out / "index.geojson").read_text())
    feats = index["features"]
    counts = {}
    grid = PlotGrid.load(out / "grid.json")
    import rasterio

    with rasterio.open(nlcd) as src:
        codes = src.read(1)
        for f in feats[:25]:
            p = f["properties"]
            counts[p["label"]] = counts.get(p["label"], 0) + 1
            assert (out / p["file"]).exists() and p["file"].startswith(p["label"] + "/")
            assert p[f"share_{p['label']}"] >= 0.75
            # independent check: NLCD sampled at the plot's 16 x 16 sub-cell centres via src.index
            minx, miny, maxx, maxy = grid.plot_bounds(p["row"], p["col"])
            step = (maxx - minx) / 16
            xs = minx + step * (np.arange(16) + 0.5)
            ys = maxy - step * (np.arange(16) + 0.5)
            vals = [codes[src.index(x, y)] for y in ys for x in xs]
            groups = {"Developed": {21, 22, 23, 24}, "Forested": {41, 42, 43}, "Cultivated": {81, 82},
                      "Grassland": {71, 72, 73, 74}, "Shrub": {51, 52}, "Barren": {31}}
            share = np.isin(vals, list(groups[p["label"]])).mean()
            assert share == pytest.approx(p[f"share_{p['label']}"], abs=1 / 256 + 1e-6)
    per = {}
    for f in feats:
        per[f["properties"]["label"]] = per.get(f["properties"]["label"], 0) + 1
    assert max(per.values()) <= 12 and per["Forested"] == 12 and per["Developed"] == 12
    ds = TagDataset.open(out, min_per_tag=1)
    assert sum(ds.counts().values()) == len(feats)
    left = index["landuse"]["left_out"]
    assert left["unmapped"] > 0 and left["impure"] > 0  # water 11, wetlands 90/95 and mixed plots exist
    # rerun without --overwrite refuses; with the same seed the same plots come out
    assert main(["dataset", str(naip), "--labels", str(nlcd), "--out", str(out)]) == 1
    out2 = tmp_path / "ds2"
    main(["dataset", str(naip), "--labels", str(nlcd), "--out", str(out2), "--per-class", "12", "--chip-size", "224", "--seed", "1"])
    ids2 = [f["properties"]["plot_id"] for f in json.loads((out2 / "index.geojson").read_text())["features"]]
    assert ids2 == [f["properties"]["plot_id"] for f in feats]
