"""Output column types a GIS user relies on: class_index stays an integer column with nulls."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from landuse.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "sample_rasters" / "2016.tif"


def test_class_index_is_nullable_int16(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["-q", "classify", str(SAMPLE), "--period", "2016", "--out", str(out), "--scheduler", "synchronous"]) == 0
    table = pq.read_table(out / "plots.parquet")
    assert table.schema.field("class_index").type == pa.int16()
    idx = table.column("class_index")
    status = table.column("status").to_pylist()
    assert idx.null_count == sum(s != "classified" for s in status) > 0
    assert all(i is not None and i >= 0 for i, s in zip(idx.to_pylist(), status, strict=True) if s == "classified")
