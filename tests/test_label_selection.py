"""Which plots the labelling page asks about, the label server's key, and `landuse label` errors."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from landuse.cli import main
from landuse.label import LabelSession, read_run_plots, select_plots, serve_session
from tests.runfactory import LABELS, make_pair, remark_complete


def _flag_unknown(run_dir: Path, rows_cols: list[tuple[int, int]], scores: list[float]) -> None:
    """Mark plots unknown the way the contract says (status / label unknown, class_index null,
    unknown_score; prob_<tag> kept), as the model's flag will."""
    path = run_dir / "plots.parquet"
    t = pq.read_table(path)
    rows, cols = t.column("row").to_numpy(), t.column("col").to_numpy()
    status, label = t.column("status").to_pylist(), t.column("label").to_pylist()
    cls = t.column("class_index").to_pylist()
    score = [None if s != "classified" else 0.1 for s in status]
    for (r, c), s in zip(rows_cols, scores, strict=True):
        i = int(np.flatnonzero((rows == r) & (cols == c))[0])
        status[i], label[i], cls[i], score[i] = "unknown", "unknown", None, s
    for name, values, typ in (("status", status, pa.string()), ("label", label, pa.string()),
                              ("class_index", cls, pa.int16())):
        t = t.set_column(t.schema.get_field_index(name), name, pa.array(values, typ))
    t = t.append_column("unknown_score", pa.array(score, pa.float32()))
    pq.write_table(t, path)
    remark_complete(run_dir)


@pytest.fixture
def pair(tmp_path: Path):
    return make_pair(tmp_path, rows=20, cols=24, fraction=0.05)


def test_mix_covers_unknown_changed_uncertain_and_every_class(pair):
    a, b, change = pair
    flagged = [(5, 5), (10, 12), (15, 20)]
    _flag_unknown(b.path, flagged, [0.7, 0.9, 0.8])
    plots = read_run_plots(b.path)
    assert plots.has_unknown_score and (plots.status == "unknown").sum() == 3
    sel = select_plots(plots, n=40, strategy="mix", change_dir=change)
    got = [(p.row, p.col) for p in sel.picks]
    assert len(got) == len(set(got)) == 40
    counts = sel.counts()
    assert counts["unknown"] == 3 and counts["changed"] == 8 and counts["least-confident"] == 12
    assert counts["diverse"] == 40 - 3 - 8 - 12
    # unknown: highest score first
    assert [(p.row, p.col) for p in sel.picks if p.reason == "unknown"] == [(10, 12), (15, 20), (5, 5)]
    # changed: plots of the change output, least confident change first
    feats = {f["properties"]["plot_id"]: min(f["properties"]["prob_from"], f["properties"]["prob_to"])
             for f in json.loads((change / "change.geojson").read_text())["features"]}
    picked_changed = [p.plot_id for p in sel.picks if p.reason == "changed"]
    assert all(pid in feats for pid in picked_changed)
    assert [feats[pid] for pid in picked_changed] == sorted(feats[pid] for pid in picked_changed)
    # least confident: the lowest winning probabilities of the classified plots not picked before
    ok = (b.classes >= 0) & ~np.isin(np.arange(b.classes.size).reshape(b.classes.shape),
                                     [r * 24 + c for r, c in flagged])
    win = np.where(ok, b.probs.max(axis=-1), np.inf)
    lc = [(p.row, p.col) for p in sel.picks if p.reason == "least-confident"]
    first_lc = np.unravel_index(int(np.argmin(win)), win.shape)
    assert lc[0] == tuple(int(v) for v in first_lc)
    # every predicted class (and unknown) is asked about; the first picks already mix the reasons
    predicted = {str(plots.predicted[plots.index_of(r, c)]) for r, c in got}
    assert predicted == {*LABELS, "unknown"}
    assert {p.reason for p in sel.picks[:4]} == {"unknown", "changed", "least-confident", "diverse"}


def test_diverse_spreads_over_classes_and_the_county(pair):
    a, _, _ = pair
    plots = read_run_plots(a.path)
    sel = select_plots(plots, n=16, strategy="diverse")
    picks = [(p.row, p.col) for p in sel.picks]
    classes = [int(a.classes[r, c]) for r, c in picks]
    # equal turns per class: 4 classes x 4 plots
    assert sorted(np.bincount(classes, minlength=len(LABELS)).tolist()) == [4, 4, 4, 4]
    # spread: the picks reach every quadrant of the grid, and no two are neighbours of one class
    quads = {(r >= 10, c >= 12) for r, c in picks}
    assert len(quads) == 4
    for i, (r, c) in enumerate(picks):
        for r2, c2 in picks[i + 1:]:
            if classes[picks.index((r2, c2))] == classes[i]:
                assert max(abs(r - r2), abs(c - c2)) > 1


def test_without_the_unknown_flag_mix_still_fills_n(pair):
    a, _, _ = pair
    plots = read_run_plots(a.path)
    assert not plots.has_unknown_score
    sel = select_plots(plots, n=30)
    assert len(sel.picks) == 30 and "unknown" not in sel.counts() and "changed" not in sel.counts()
    with pytest.raises(Exception, match="no plot with status unknown"):
        select_plots(plots, n=5, strategy="unknown")


def test_explicit_plot_ids_keep_their_order(pair):
    a, _, _ = pair
    plots = read_run_plots(a.path)
    ids = [a.grid.plot_id(7, 3), a.grid.plot_id(2, 20), a.grid.plot_id(7, 3)]
    sel = select_plots(plots, plot_ids=ids)
    assert [p.plot_id for p in sel.picks] == ids[:2] and sel.strategy == "given"
    with pytest.raises(Exception, match="is not on"):
        select_plots(plots, plot_ids=["EPSG:32611/224/1/1"])


def test_label_server_needs_the_key(pair, tmp_path):
    a, _, _ = pair
    session = LabelSession.open(a.path, tmp_path / "ds", n=3)
    server, url = serve_session(session, port=0, key="right-key")
    base = url.split("#")[0]
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("#key=right-key")
        page = urllib.request.urlopen(base, timeout=10).read().decode()
        assert "landuse label" in page and session.items[0].plot_id not in page  # the page holds no data
        for headers in ({}, {"X-Landuse-Key": "wrong"}):
            req = urllib.request.Request(base + "api/session", headers=headers)
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=10)
            assert err.value.code == 401
        req = urllib.request.Request(base + "api/label", method="POST", headers={"X-Landuse-Key": "wrong"},
                                     data=json.dumps({"key": session.items[0].key, "label": LABELS[0]}).encode())
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 401 and not (tmp_path / "ds").exists()
        req = urllib.request.Request(base + "api/label", method="POST", headers={"X-Landuse-Key": "right-key"},
                                     data=json.dumps({"key": session.items[0].key, "label": "Nonsense"}).encode())
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 400 and "Nonsense" in err.value.read().decode()
        req = urllib.request.Request(base + "api/session", headers={"X-Landuse-Key": "right-key"})
        doc = json.loads(urllib.request.urlopen(req, timeout=10).read())
        assert [it["key"] for it in doc["items"]] == [it.key for it in session.items]
    finally:
        server.stop()


def test_cli_errors_are_one_line(pair, tmp_path, capsys):
    a, _, _ = pair
    assert main(["label", str(a.path), "--out", str(tmp_path / "ds"), "--strategy", "changed", "--html",
                 str(tmp_path / "p.html")]) == 1
    assert "--strategy changed needs --change" in capsys.readouterr().err
    assert main(["label", str(a.path), "--out", str(tmp_path / "ds"), "--tag", "a/b", "--html", str(tmp_path / "p.html")]) == 1
    assert "not usable as a folder name" in capsys.readouterr().err
    assert main(["label", str(tmp_path / "nope"), "--out", str(tmp_path / "ds")]) == 1
    assert "is not a finished run" in capsys.readouterr().err
    assert main(["label", "--import", str(tmp_path / "none.json"), "--out", str(tmp_path / "ds")]) == 1
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists() and not (tmp_path / "p.html").exists()


def test_a_chip_without_its_index_row_is_removed_on_reopening(pair, tmp_path):
    """A server killed between writing a chip and its labels.csv row loses that one label, and
    leaves no chip the index does not list; other files of the dataset are never touched."""
    a, _, _ = pair
    ds = tmp_path / "ds"
    session = LabelSession.open(a.path, ds, n=3)
    first = session.items[0]
    (ds / LABELS[0]).mkdir(parents=True)
    orphan = ds / LABELS[0] / session.chip_name(first)
    orphan.write_bytes(b"cut short")
    other = ds / LABELS[0] / "from_nlcd.png"
    other.write_bytes(b"someone else's chip")
    (ds / "labels.csv").write_text("plot_id,label,run,period,x,y,crs,chip,labelled_at\n"
                                   "EPSG:1/224/0/0,Water,r,2016,0,0,EPSG:1,Water/x.png,2026-01-01T00:00:00+00:00\n")
    again = LabelSession.open(a.path, ds, n=3)
    assert not orphan.exists() and other.exists()
    assert again.state()["next"] == 0 and again.state()["done"] == 0
    assert "EPSG:1/224/0/0" in (ds / "labels.csv").read_text()
