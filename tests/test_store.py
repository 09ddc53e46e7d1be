"""The run store: manifest first, resume, refusals, atomic parts, cleaning."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from landuse.errors import OutputExistsError, RunStoreError
from landuse.grid import Chunk, PlotGrid
from landuse.store import RunStore, build_manifest, manifest_differences


def grid() -> PlotGrid:
    return PlotGrid.from_bounds((448_000, 4_700_000, 448_000 + 224 * 5, 4_700_000 + 224 * 4), "EPSG:26914")


def manifest(**params) -> dict:
    return build_manifest(
        grid=grid(),
        inputs=[{"path": "/data/a.tif", "size": 10, "mtime": 1.5}],
        model={"id": "m", "sha256": "ab" * 32, "backend": "onnx"},
        labels=["Barren", "Developed"],
        parameters={"min_valid": 0.9, "chunk_plots": 4, **params},
        period="2016",
    )


def part(n: int) -> pa.Table:
    return pa.table({"row": pa.array(range(n), pa.int32()), "col": pa.array([0] * n, pa.int32())})


def test_new_run_writes_manifest_and_grid_first(tmp_path):
    m = manifest()
    store = RunStore.prepare(tmp_path / "run", m)
    assert not store.resumed
    on_disk = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert on_disk["labels"] == ["Barren", "Developed"] and on_disk["period"] == "2016"
    assert on_disk["toolkit"]["name"] == "landuse" and on_disk["created"]
    assert PlotGrid.load(tmp_path / "run" / "grid.json") == grid()
    assert (tmp_path / "run" / "parts").is_dir()


def test_equal_manifest_resumes_and_keeps_parts(tmp_path):
    store = RunStore.prepare(tmp_path / "run", manifest())
    ch = Chunk(0, 0, 1, 4)
    store.write_part(ch, part(4))
    later = manifest()
    later["created"] = "2099-01-01T00:00:00+00:00"  # the moment is not part of the run's identity
    again = RunStore.prepare(tmp_path / "run", later)
    assert again.resumed and again.has_part(ch)
    assert not again.has_part(Chunk(1, 0, 1, 4))


def test_different_manifest_refused_naming_the_difference(tmp_path):
    RunStore.prepare(tmp_path / "run", manifest())
    with pytest.raises(RunStoreError, match=r"parameters\.min_valid: 0\.9 -> 0\.8.*`overwrite=True`"):
        RunStore.prepare(tmp_path / "run", manifest(min_valid=0.8))


def test_overwrite_clears_parts_and_outputs_only(tmp_path):
    store = RunStore.prepare(tmp_path / "run", manifest())
    ch = Chunk(0, 0, 1, 4)
    store.write_part(ch, part(4))
    (tmp_path / "run" / "plots.parquet").write_bytes(b"old")
    (tmp_path / "run" / "keep.txt").write_text("user file")
    new = RunStore.prepare(tmp_path / "run", manifest(min_valid=0.8), overwrite=True)
    assert not new.has_part(ch)
    assert not (tmp_path / "run" / "plots.parquet").exists()
    assert (tmp_path / "run" / "keep.txt").read_text() == "user file"
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["parameters"]["min_valid"] == 0.8


def test_folder_that_is_not_a_run_needs_overwrite(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "x.tif").write_bytes(b"")
    with pytest.raises(OutputExistsError, match="x.tif"):
        RunStore.prepare(tmp_path / "run", manifest())
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputExistsError, match="not a directory"):
        RunStore.prepare(tmp_path / "file", manifest())


def test_parts_are_atomic_and_checked(tmp_path):
    store = RunStore.prepare(tmp_path / "run", manifest())
    ch = Chunk(0, 0, 1, 4)
    with pytest.raises(RunStoreError, match="3 rows for 4 plots"):
        store.write_part(ch, part(3))
    assert not store.part_path(ch).exists()
    assert list(store.parts_dir.iterdir()) == []  # no temporary left behind by the refusal
    store.write_part(ch, part(4))
    # a part of the wrong size (a foreign or damaged file) is reported, not silently reused
    store.write_part(Chunk(2, 0, 1, 2), part(2))
    store.part_path(Chunk(2, 0, 1, 2)).rename(store.part_path(Chunk(3, 0, 1, 3)))
    with pytest.raises(RunStoreError, match="holds 2 plots, expected 3"):
        store.has_part(Chunk(3, 0, 1, 3))
    store.part_path(Chunk(3, 0, 1, 3)).write_bytes(b"not parquet")
    with pytest.raises(RunStoreError, match="unreadable"):
        store.has_part(Chunk(3, 0, 1, 3))


def test_resume_deletes_temporaries_of_a_killed_run(tmp_path):
    store = RunStore.prepare(tmp_path / "run", manifest())
    tmp = store.parts_dir / ".r000000_c000000_1x4.parquet.tmp-999"
    tmp.write_bytes(b"half")
    RunStore.prepare(tmp_path / "run", manifest())
    assert not tmp.exists()


def test_read_parts_sorted_and_missing_part_named(tmp_path):
    store = RunStore.prepare(tmp_path / "run", manifest())
    a, b = Chunk(1, 0, 1, 2), Chunk(0, 0, 1, 2)
    store.write_part(a, pa.table({"row": pa.array([1, 1], pa.int32()), "col": pa.array([1, 0], pa.int32())}))
    store.write_part(b, pa.table({"row": pa.array([0, 0], pa.int32()), "col": pa.array([0, 1], pa.int32())}))
    t = store.read_parts([a, b])
    assert list(zip(t.column("row").to_pylist(), t.column("col").to_pylist(), strict=True)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    with pytest.raises(RunStoreError, match="r000002_c000000_1x2.parquet is missing"):
        store.read_parts([a, Chunk(2, 0, 1, 2)])


def test_manifest_differences_lists_paths():
    old = {"a": 1, "b": {"c": [1, 2], "d": "x"}, "created": "t1"}
    new = {"a": 1, "b": {"c": [1, 3], "e": "y"}, "created": "t2"}
    assert manifest_differences(old, new) == ['b.c[1]: 2 -> 3', 'b.d: "x" -> (absent)', 'b.e: (absent) -> "y"']
