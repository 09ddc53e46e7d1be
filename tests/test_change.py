"""Change analysis: hand-computed matrices, identities, gating, smoothing, grids, series, outputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rasterio

from landuse.change import (
    STATUS_CODES,
    compare,
    load_run,
    period_year,
    plurality_filter,
    series_pairs,
)
from landuse.cli import main
from landuse.errors import GridMismatchError, InputError, RunStoreError
from landuse.grid import PlotGrid
from landuse.store import mark_complete

LABELS = ["Barren", "Cultivated", "Developed"]
PLOT_HA = 224 * 224 / 10_000  # 5.0176 ha


def write_run(path: Path, grid: PlotGrid, classes, winning=None, valid=None, period="2016", model="m1", unknown=None) -> Path:
    """Minimal run directory: grid.json, manifest.json, plots.parquet (the columns change.py reads).

    ``unknown`` (bool mask): those plots are written as the model contract flags an out-of-class
    plot: status ``unknown``, label ``unknown``, class_index null, probabilities kept."""
    classes = np.asarray(classes)
    h, w = classes.shape
    winning = np.full((h, w), 0.9) if winning is None else np.asarray(winning, dtype=float)
    valid = np.ones((h, w)) if valid is None else np.asarray(valid, dtype=float)
    path.mkdir(parents=True)
    grid.save(path / "grid.json")
    (path / "manifest.json").write_text(json.dumps({"period": period, "labels": LABELS, "model": {"id": model, "sha256": model}}))
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    cls = classes.ravel()
    data = {"row": rows.ravel(), "col": cols.ravel(), "class_index": cls, "valid_fraction": valid.ravel()}
    for k, t in enumerate(LABELS):
        p = np.where(cls == k, winning.ravel(), (1 - winning.ravel()) / 2)
        data[f"prob_{t}"] = np.where(cls >= 0, p, np.nan).astype(np.float32)
    status = np.where(cls >= 0, "classified", "nodata").astype(object)
    label = np.array([LABELS[c] if c >= 0 else None for c in cls.tolist()], dtype=object)
    class_index = pa.array(cls, type=pa.int16(), mask=cls < 0)
    if unknown is not None:
        u = np.asarray(unknown, dtype=bool).ravel()
        status[u], label[u] = "unknown", "unknown"
        class_index = pa.array(cls, type=pa.int16(), mask=(cls < 0) | u)
    data["class_index"] = class_index
    data["status"] = status.tolist()
    data["label"] = label.tolist()
    pq.write_table(pa.table(data), path / "plots.parquet")
    mark_complete(path, parts=1, plots=h * w, files=["plots.parquet"])
    return path


@pytest.fixture
def grid() -> PlotGrid:
    return PlotGrid.from_bounds((500_000, 5_200_000, 500_000 + 3 * 224, 5_200_000 + 3 * 224), "EPSG:32614")


@pytest.fixture
def pair(tmp_path: Path, grid: PlotGrid):
    a = [[0, 0, 1], [1, 1, 2], [2, -1, 0]]
    b = [[2, 0, 1], [2, 1, 2], [2, 0, -1]]
    wa = np.full((3, 3), 0.9)
    wa[1, 0] = 0.5  # C -> D at (1, 0) is not confident in period A: uncertain
    va = np.ones((3, 3))
    va[0, 0] = 0.5  # partial plot: half valid in A
    ra = write_run(tmp_path / "a", grid, a, wa, va, period="2016")
    rb = write_run(tmp_path / "b", grid, b, period="2022")
    return load_run(ra), load_run(rb)


def test_hand_computed_matrix_and_counts(pair) -> None:
    comp = compare(*pair, min_confidence=0.6)
    # confident: B->B 1, B->D 1 (half plot), C->C 2, D->D 2; the uncertain C->D is in neither
    assert comp.matrix_plots.tolist() == [[1, 0, 1], [0, 2, 0], [0, 0, 2]]
    assert comp.matrix_uncertain_plots.tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 0]]
    assert comp.matrix_raw_plots.tolist() == [[1, 0, 1], [0, 2, 1], [0, 0, 2]]
    expected_ha = np.array([[PLOT_HA, 0, PLOT_HA / 2], [0, 2 * PLOT_HA, 0], [0, 0, 2 * PLOT_HA]])
    np.testing.assert_allclose(comp.matrix_ha, expected_ha)
    s = comp.summary()
    assert {k: s[k]["plots"] for k in ("compared", "changed", "uncertain", "unknown", "unchanged", "excluded")} == {
        "compared": 7, "changed": 1, "uncertain": 1, "unknown": 0, "unchanged": 5, "excluded": 2,
    }
    assert s["uncertain_transitions"] == [{"from": "Cultivated", "to": "Developed", "plots": 1, "hectares": pytest.approx(PLOT_HA)}]
    assert s["changed"]["hectares"] == pytest.approx(PLOT_HA / 2)
    assert s["compared"]["hectares"] == pytest.approx(6.5 * PLOT_HA)
    assert s["years"] == pytest.approx(6.0)


def test_gain_loss_identities_and_urbanization(pair) -> None:
    s = compare(*pair).summary()
    gain, loss = s["gain_ha"], s["loss_ha"]
    assert sum(gain.values()) == pytest.approx(sum(loss.values()))
    assert gain["Developed"] == pytest.approx(PLOT_HA / 2)
    assert loss["Barren"] == pytest.approx(PLOT_HA / 2)
    for t in LABELS:
        c = s["classes"][t]
        assert c["net"] == pytest.approx(c["gain"] - c["loss"])
        assert c["swap"] == pytest.approx(2 * min(c["gain"], c["loss"]))
        # every class row adds up: the change in area is the confident net plus the uncertain net
        assert c["area_b"] - c["area_a"] == pytest.approx(c["net"] + c["uncertain_net"])
    assert s["classes"]["Developed"]["uncertain_net"] == pytest.approx(PLOT_HA)
    # class areas as classified (hand-computed): A: Barren 1.5, Cultivated 3, Developed 2 plots
    assert s["area_by_class_ha"]["2016"] == pytest.approx({"Barren": 1.5 * PLOT_HA, "Cultivated": 3 * PLOT_HA, "Developed": 2 * PLOT_HA})
    assert s["area_by_class_ha"]["2022"] == pytest.approx({"Barren": PLOT_HA, "Cultivated": 2 * PLOT_HA, "Developed": 3.5 * PLOT_HA})
    u = s["urbanization"]
    assert u["by_source_ha"] == pytest.approx({"Barren": PLOT_HA / 2, "Cultivated": 0.0})
    assert u["uncertain_by_source_ha"] == pytest.approx({"Barren": 0.0, "Cultivated": PLOT_HA})
    assert u["total_ha"] == pytest.approx(PLOT_HA / 2) and u["upper_bound_ha"] == pytest.approx(1.5 * PLOT_HA)
    assert u["per_year_ha"] == pytest.approx(PLOT_HA / 2 / 6)
    dev = s["classes"]["Developed"]
    assert dev["compound_pct_per_year"] == pytest.approx(100 * ((3.5 / 2.0) ** (1 / 6) - 1))
    assert dev["linear_ha_per_year"] == pytest.approx(1.5 * PLOT_HA / 6)
    assert len(s["hotspots"]) == 1 and s["hotspots"][0]["new_developed_plots"] == 1


def test_confidence_gating_threshold(pair) -> None:
    # with a lower bar the uncertain C -> D becomes a change
    s = compare(*pair, min_confidence=0.4).summary()
    assert s["changed"]["plots"] == 2 and s["uncertain"]["plots"] == 0
    assert s["urbanization"]["by_source_plots"] == {"Barren": 1, "Cultivated": 1}
    with pytest.raises(InputError):
        compare(*pair, min_confidence=1.5)


def test_plurality_filter_known_patterns() -> None:
    salt = np.zeros((3, 3), dtype=np.int16)
    salt[1, 1] = 1
    assert (plurality_filter(salt, 3) == 0).all()
    # a tie keeps the plot's own class
    checker = np.array([[0, 1], [1, 0]], dtype=np.int16)
    assert (plurality_filter(checker, 2) == checker).all()
    # unclassified plots neither vote nor get a class; a straight boundary is stable
    half = np.array([[0, 0, 2, 2], [0, 0, 2, 2], [0, -1, 2, 2]], dtype=np.int16)
    out = plurality_filter(half, 3)
    assert out[2, 1] == -1
    assert (out[half >= 0] == half[half >= 0]).all()


def test_smoothing_removes_isolated_change(tmp_path: Path) -> None:
    g = PlotGrid.from_bounds((0, 0, 5 * 224, 5 * 224), "EPSG:32614")
    a = np.ones((5, 5), dtype=int)
    b = a.copy()
    b[2, 2] = 2  # one isolated "Developed" speck
    ra = load_run(write_run(tmp_path / "a", g, a))
    rb = load_run(write_run(tmp_path / "b", g, b, period="2020"))
    assert compare(ra, rb).summary()["changed"]["plots"] == 1
    assert compare(ra, rb, smooth=True).summary()["changed"]["plots"] == 0


def test_grid_mismatch_refused(tmp_path: Path, grid: PlotGrid) -> None:
    other = PlotGrid.from_bounds((500_224, 5_200_000, 500_224 + 3 * 224, 5_200_000 + 3 * 224), "EPSG:32614")
    ra = load_run(write_run(tmp_path / "a", grid, np.zeros((3, 3), int)))
    rb = load_run(write_run(tmp_path / "b", other, np.zeros((3, 3), int)))
    with pytest.raises(GridMismatchError, match="different plot grids.*`grid`"):
        compare(ra, rb)


def test_models_differ_warns(tmp_path: Path, grid: PlotGrid) -> None:
    ra = load_run(write_run(tmp_path / "a", grid, np.zeros((3, 3), int), model="m1"))
    rb = load_run(write_run(tmp_path / "b", grid, np.zeros((3, 3), int), model="m2", period="2020"))
    s = compare(ra, rb).summary()
    assert any("different models" in w for w in s["warnings"])


def test_series_pairs_consecutive_plus_first_last(tmp_path: Path, grid: PlotGrid) -> None:
    runs = [load_run(write_run(tmp_path / p, grid, np.zeros((3, 3), int), period=p)) for p in ("2010", "2014", "2018")]
    pairs = series_pairs(runs)
    assert [(a.period, b.period) for a, b in pairs] == [("2010", "2014"), ("2014", "2018"), ("2010", "2018")]
    with pytest.raises(InputError):
        series_pairs(runs[:1])


def test_period_year() -> None:
    assert period_year("2016") == 2016.0
    assert period_year("naip_2018-07-16") == pytest.approx(2018 + (6 * 30.44 + 15) / 365.25, abs=1e-3)
    assert period_year("spring") is None


def test_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(RunStoreError, match="not a finished run"):
        load_run(tmp_path)


def test_cli_writes_outputs(tmp_path: Path, pair, capsys) -> None:
    out = tmp_path / "chg"
    rc = main(["change", str(pair[0].path), str(pair[1].path), "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "urbanization" in printed and "Barren -> Developed 2.5 ha" in printed
    assert "2.5 ha confident" in printed and "up to 7.5 ha with 1 uncertain plots" in printed
    with rasterio.open(out / "change.tif") as src:
        code = src.read(1)
        assert src.nodata == 255
        assert code[0, 0] == 0 * 3 + 2 and code[0, 1] == 0 and code[2, 1] == 255 and code[2, 2] == 255
        assert src.colormap(1)[2][:3] != src.colormap(1)[0][:3]
    gj = json.loads((out / "change.geojson").read_text())
    statuses = sorted(f["properties"]["status"] for f in gj["features"])
    assert statuses == ["changed", "uncertain"]
    with rasterio.open(out / "change.tif") as src:
        assert src.read(1)[1, 0] == 9 + 1 * 3 + 2  # uncertain C -> D: n * n + from * n + to
    for f in gj["features"]:
        ring = f["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1]
        assert all(-180 <= x <= 180 and -90 <= y <= 90 for x, y in ring)
    with open(out / "matrix_plots.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["from \\ to", *LABELS, "total"]
    assert rows[-1][-1] == "6"  # confident: the uncertain plot is in matrix_uncertain_plots.csv
    with open(out / "matrix_uncertain_plots.csv") as f:
        assert list(csv.reader(f))[-1][-1] == "1"
    with open(out / "transitions.csv") as f:
        tr = list(csv.DictReader(f))
    assert sum(int(r["plots"]) for r in tr) == 7
    assert {(r["from"], r["to"], r["status"]) for r in tr if r["status"] != "unchanged"} == {
        ("Barren", "Developed", "changed"), ("Cultivated", "Developed", "uncertain")}
    s = json.loads((out / "summary.json").read_text())
    assert s["changed"]["plots"] == 1 and "Urbanization" in (out / "summary.md").read_text()
    # existing output is not overwritten without --overwrite, and nothing is lost
    rc = main(["change", str(pair[0].path), str(pair[1].path), "--out", str(out)])
    assert rc == 1 and "--overwrite" in capsys.readouterr().err
    assert (out / "summary.json").exists()
    assert main(["change", str(pair[0].path), str(pair[1].path), "--out", str(out), "--overwrite"]) == 0


def test_status_codes_cover_compared(pair) -> None:
    comp = compare(*pair)
    assert set(np.unique(comp.status[comp.compared]).tolist()) <= set(STATUS_CODES.values())
    assert not comp.compared[2, 1] and not comp.compared[2, 2]


def test_unknown_plots_have_their_own_row_and_every_row_adds_up(tmp_path: Path, grid: PlotGrid) -> None:
    """The unknown contract: unknown in either period -> change status unknown, kept out of the
    class areas; compared = unchanged + changed + uncertain + unknown (plots and hectares)."""
    a = [[0, 0, 1], [1, 1, 2], [2, 2, 0]]
    b = [[2, 0, 1], [2, 1, 2], [2, 0, 0]]
    wa = np.full((3, 3), 0.9)
    wa[1, 0] = 0.5  # uncertain C -> D
    ua = np.zeros((3, 3), bool)
    ua[2, 1] = True  # unknown in A only (B says Barren)
    ub = np.zeros((3, 3), bool)
    ub[0, 1] = ub[2, 1] = True  # unknown in B (and (2, 1) in both)
    ra = load_run(write_run(tmp_path / "a", grid, a, wa, period="2016", unknown=ua))
    rb = load_run(write_run(tmp_path / "b", grid, b, period="2020", unknown=ub))
    assert ra.classes[2, 1] == -1 and ra.unknown_mask[2, 1]
    comp = compare(ra, rb)
    assert comp.status[0, 1] == STATUS_CODES["unknown"] and comp.status[2, 1] == STATUS_CODES["unknown"]
    s = comp.summary()
    counts = {k: s[k]["plots"] for k in ("compared", "unchanged", "changed", "uncertain", "unknown")}
    assert counts == {"compared": 9, "unchanged": 5, "changed": 1, "uncertain": 1, "unknown": 2}
    assert s["unknown"]["in_a_plots"] == 1 and s["unknown"]["in_b_plots"] == 2 and s["unknown"]["in_both_plots"] == 1
    for unit in ("plots", "hectares"):
        parts = sum(s[k][unit] for k in ("unchanged", "changed", "uncertain", "unknown"))
        assert parts == pytest.approx(s["compared"][unit])
    for period in ("2016", "2020"):
        assert sum(s["area_by_class_ha"][period].values()) + s["unknown"]["hectares"] == pytest.approx(s["compared"]["hectares"])
    # unknown plots are in neither matrix: 7 plots known in both periods
    assert comp.matrix_raw_plots.sum() == 7
    out = tmp_path / "chg"
    assert main(["-q", "change", str(ra.path), str(rb.path), "--out", str(out)]) == 0
    feats = json.loads((out / "change.geojson").read_text())["features"]
    unk = sorted((f["properties"]["from"], f["properties"]["to"]) for f in feats if f["properties"]["status"] == "unknown")
    assert unk == [("Barren", "unknown"), ("unknown", "unknown")]
    with rasterio.open(out / "change.tif") as src:
        assert src.read(1)[0, 1] == 254 and src.read(1)[2, 1] == 254
    md = (out / "summary.md").read_text()
    assert "| unknown | 2 | 10.0 |" in md


def test_period_order_refused_with_the_fix(tmp_path: Path, grid: PlotGrid, capsys) -> None:
    cls = np.zeros((3, 3), int)
    r16 = write_run(tmp_path / "r16", grid, cls, period="2016")
    r22 = write_run(tmp_path / "r22", grid, cls, period="2022")
    r16b = write_run(tmp_path / "r16b", grid, cls, period="2016")
    with pytest.raises(InputError, match=r"earlier than run A.*`allow_reverse=True`"):
        compare(load_run(r22), load_run(r16))
    with pytest.raises(InputError, match="both of period '2016'"):
        compare(load_run(r16), load_run(r16b))
    back = compare(load_run(r22), load_run(r16), allow_reverse=True).summary()
    assert back["periods"] == ["2022", "2016"] and any("backwards" in w for w in back["warnings"])
    out = tmp_path / "out"
    assert main(["change", str(r22), str(r16), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "--allow-reverse" in err and "Traceback" not in err and not out.exists()
    assert main(["change", str(r16), str(r16b), "--out", str(out)]) == 1
    assert "same one twice" in capsys.readouterr().err and not out.exists()
    assert main(["-q", "change", str(r22), str(r16), "--out", str(out), "--allow-reverse"]) == 0
    # a series with one step back is refused before anything is written
    assert main(["change", str(r16), str(r22), str(r16b), "--out", str(tmp_path / "series")]) == 1
    assert not (tmp_path / "series").exists()


def test_cli_line_and_summary_md_print_summary_json_numbers(tmp_path: Path, pair, capsys) -> None:
    """The same status rows, the same figures (one decimal) in the CLI line and summary.md."""
    from landuse.change import fmt_ha, summary_rows

    out = tmp_path / "chg"
    assert main(["change", str(pair[0].path), str(pair[1].path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    md = (out / "summary.md").read_text()
    rows = summary_rows(s)
    assert [k for k, _n, _ha in rows] == ["unchanged", "changed", "uncertain", "unknown", "compared"]
    assert sum(n for k, n, _ in rows[:-1]) == rows[-1][1]
    for k, n, ha in rows:
        assert f"{n:,} ({fmt_ha(ha)} ha)" in printed or f"{n:,} plots ({fmt_ha(ha)} ha)" in printed, k
        assert f"| {n:,} | {fmt_ha(ha)} |" in md, k
    u = s["urbanization"]
    for text in (printed, md):
        assert fmt_ha(u["total_ha"]) in text and fmt_ha(u["upper_bound_ha"]) in text
