"""Every scheduler gives the results of a plain plot-by-plot loop on a real raster and a real ONNX model.

The reference reads each plot alone (``Scene.read_plot``) and classifies it alone (batch of one),
so it shares no chunking, batching, streaming or scheduling code with the pipeline.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from affine import Affine

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from pipeline_fakes import COLOURS, mean_colour_export  # noqa: E402

from landuse.classify.base import load_classifier  # noqa: E402
from landuse.grid import PlotGrid  # noqa: E402
from landuse.imagery import Scene  # noqa: E402
from landuse.pipeline import ModelRef, classify_scene  # noqa: E402

PX = 32  # pixels a plot side (the mean-colour model's input)
ROWS, COLS = 7, 9


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A 7 x 9 plot raster (1 m, 32 m plots): noisy class colours, a nodata corner (partial and
    empty plots), a scene, its grid and the model."""
    import rasterio

    tmp = tmp_path_factory.mktemp("sched")
    rng = np.random.default_rng(3)
    h, w = ROWS * PX, COLS * PX
    cls = rng.integers(0, 3, (ROWS, COLS))
    rgb = COLOURS[np.kron(cls, np.ones((PX, PX), dtype=int))].transpose(2, 0, 1)
    rgb = np.clip(rgb + rng.normal(0, 25, rgb.shape), 1, 255).astype(np.uint8)
    rgb[:, : PX + PX // 3, : 2 * PX + 5] = 0  # nodata: two empty plots, partial ones around them
    path = tmp / "img.tif"
    prof = dict(driver="GTiff", width=w, height=h, count=3, dtype="uint8", crs="EPSG:26914",
                transform=Affine(1.0, 0, 448_000.0, 0, -1.0, 4_704_000.0), nodata=0, tiled=True,
                blockxsize=64, blockysize=64, compress="DEFLATE")
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(rgb)
    model = mean_colour_export(tmp / "model")
    scene = Scene.open([str(path)])
    grid = PlotGrid.from_footprints(list(scene.footprints()), plot_size_m=float(PX))
    return tmp, scene, grid, model


def reference(scene, grid, model, min_valid=0.9):
    """Plot by plot: (status, class_index, probabilities) of every (row, col)."""
    clf = load_classifier(str(model))
    cov = scene.coverage(grid)
    out = {}
    for r in range(grid.height):
        for c in range(grid.width):
            if cov[r, c] == 0:
                out[r, c] = ("nodata", None, None)
                continue
            px, mask = scene.read_plot(grid, r, c, pixels=PX)
            v = float(mask.mean())
            if v == 0:
                out[r, c] = ("nodata", None, None)
            elif v < min_valid:
                out[r, c] = ("partial", None, None)
            else:
                p = clf.predict(px[None])[0]
                out[r, c] = ("classified", int(p.argmax()), p)
    return out


@pytest.mark.parametrize("scheduler,workers,chunk,batch", [
    ("synchronous", 1, 16, 8),
    ("threads", 2, 16, 8),
    ("threads", 2, 5, 3),
    ("auto", None, 256, 8),
    ("local", 2, 12, 8),
])
def test_every_scheduler_equals_the_plot_by_plot_loop(inputs, scheduler, workers, chunk, batch):
    tmp, scene, grid, model = inputs
    ref = reference(scene, grid, model)
    out = tmp / f"run-{scheduler}-{chunk}-{batch}"
    res = classify_scene(scene, grid, ModelRef(str(model)), out, period="p", scheduler=scheduler, workers=workers,
                         chunk_plots=chunk, batch_size=batch, quiet=True)
    df = pq.read_table(out / "plots.parquet").drop_columns(["geometry"]).to_pandas()
    assert len(df) == grid.size == ROWS * COLS
    statuses = set()
    for row in df.itertuples():
        st, idx, probs = ref[row.row, row.col]
        statuses.add(st)
        assert row.status == st, (row.row, row.col)
        if st == "classified":
            assert int(row.class_index) == idx
            got = np.array([getattr(row, f"prob_{t}") for t in ("Barren", "Cultivated", "Developed")])
            assert np.allclose(got, probs, atol=1e-6)
        else:
            assert row.class_index is pd.NA and pd.isna(row.label)
    assert statuses == {"classified", "partial", "nodata"}
    assert res.summary["timings"]["scheduler"] in ("synchronous", "threads", "local")


def test_warp_read_of_an_all_valid_file_skips_no_pixel(tmp_path):
    """The warp path's shortcut (an all-valid file whose window is not clipped needs no warped
    validity) gives the pixels and valid fractions of the full path, edges included."""
    import dataclasses

    import rasterio

    rng = np.random.default_rng(5)
    path = tmp_path / "z14.tif"
    with rasterio.open(path, "w", driver="GTiff", width=320, height=288, count=3, dtype="uint8", crs="EPSG:32614",
                       transform=Affine(1.0, 0, 300_000.0, 0, -1.0, 4_500_000.0)) as dst:
        dst.write(rng.integers(0, 256, (3, 288, 320), dtype=np.uint8))
    scene = Scene.open([str(path)])
    assert scene.files[0].all_valid
    full = Scene([dataclasses.replace(f, all_valid=False) for f in scene.files])
    grid = PlotGrid.from_rasters([path], crs="EPSG:32613", plot_size_m=float(PX))
    import rasterio.warp

    from landuse.grid import Chunk

    calls = {"validity": 0}
    original = rasterio.warp.reproject

    def counting(source, destination, **kw):  # noqa: ANN001, ANN202
        calls["validity"] += source.ndim == 2
        return original(source, destination, **kw)

    valid = []
    for r in range(grid.height):
        for c in range(grid.width):
            chunk = Chunk(r, c, 1, 1)  # plot by plot: interior plots take the shortcut
            rasterio.warp.reproject = counting
            try:
                calls["validity"] = 0
                a_px, a_valid = scene.read_chunk(grid, chunk, pixels=PX)
                shortcut = calls["validity"] == 0
            finally:
                rasterio.warp.reproject = original
            b_px, b_valid = full.read_chunk(grid, chunk, pixels=PX)
            assert (a_valid == b_valid).all() and (a_px == b_px).all(), (r, c)
            valid.append((float(a_valid[0]), shortcut))
    assert any(v == 1 and s for v, s in valid), "no plot took the shortcut"
    assert any(0 < v < 1 for v, _ in valid) and any(v == 0 for v, _ in valid)


class _FailingScene:
    """A fake scene whose read of global plot row ``row0 + 5`` fails (a broken file block)."""

    def __init__(self, spec):  # noqa: ANN001
        from pipeline_fakes import FakeScene

        self._inner = FakeScene(spec)

    @classmethod
    def from_spec(cls, spec):  # noqa: ANN001, ANN206
        return cls(spec)

    def __getattr__(self, name):  # noqa: ANN001, ANN204
        return getattr(self._inner, name)

    def read_chunk(self, grid, chunk, pixels=224):  # noqa: ANN001, ANN201
        from landuse.errors import RasterError

        if chunk.row_off == 5:
            raise RasterError("broken.tif: block 3 is unreadable; re-export the file")
        return self._inner.read_chunk(grid, chunk, pixels)


@pytest.mark.parametrize("scheduler", ["threads", "synchronous"])
def test_a_failing_read_stops_the_run_with_its_error(tmp_path, scheduler):
    """The reader thread's error reaches the caller (no hang, no half-written outputs); parts
    written before it are whole, and a rerun without the fault completes the run."""
    from pipeline_fakes import fake_grid, make_fake

    grid = fake_grid()
    scene = _FailingScene({"bounds": list(grid.bounds), "log": None})
    out = tmp_path / "run"
    from landuse.errors import RasterError

    with pytest.raises(RasterError, match="block 3 is unreadable"):
        classify_scene(scene, grid, ModelRef(None, factory=make_fake), out, period="p", scheduler=scheduler,
                       workers=2, chunk_plots=17, quiet=True)
    assert not (out / "plots.parquet").exists() and not (out / "summary.json").exists()
    for part in (out / "parts").glob("*.parquet"):
        assert pq.read_metadata(part).num_rows == 17
    from pipeline_fakes import fake_scene

    res = classify_scene(fake_scene(grid), grid, ModelRef(None, factory=make_fake), out, period="p",
                         scheduler=scheduler, workers=2, chunk_plots=17, quiet=True)
    assert res.did_work and len(pq.read_table(out / "plots.parquet")) == grid.size


def test_warp_path_results_are_equal_for_every_scheduler(inputs):
    """Imagery in another UTM zone than the grid (every plot warped): the same blocks are read
    whatever the scheduler, so every scheduler gives the same table."""
    tmp, scene, _, model = inputs
    grid = PlotGrid.from_footprints(list(scene.footprints()), crs="EPSG:26913", plot_size_m=float(PX))
    tables = {}
    for scheduler, workers in (("synchronous", 1), ("threads", 2), ("local", 2)):
        out = tmp / f"warp-{scheduler}"
        classify_scene(scene, grid, ModelRef(str(model)), out, period="p", scheduler=scheduler, workers=workers,
                       chunk_plots=20, quiet=True)
        tables[scheduler] = pq.read_table(out / "plots.parquet").drop_columns(["geometry"]).to_pandas()
    ref = tables.pop("synchronous")
    assert (ref.status == "classified").sum() > 10
    for t in tables.values():
        assert t.equals(ref)
