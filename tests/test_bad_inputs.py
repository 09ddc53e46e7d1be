"""The catalogue of bad and odd inputs (issue 14): each case runs a real command and asserts the
exit code, exactly one line on stderr (``landuse: error: ...``) naming the fault, no traceback,
and nothing half-written that a later command would accept.

Full-disk and read-only folders are real small ``tmpfs`` mounts where the tests run as root;
elsewhere the writer is patched to raise ``ENOSPC`` / ``EROFS`` (said in the test's output).
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from landuse.cli import main
from landuse.store import COMPLETE, LOCK, OUTPUTS, RunLock, lock_holder, mark_complete
from tests.pipeline_fakes import mean_colour_export

ROOT = Path(__file__).resolve().parents[1]
CRS = "EPSG:32614"
X0, Y0 = 448_000.0, 4_704_000.0  # multiples of 224 m: a 448 m raster is exactly 2 x 2 plots


# -- helpers -------------------------------------------------------------------------------------


def write_tif(path: Path, data: np.ndarray, res: float = 1.0, crs: str | None = CRS, **profile) -> Path:
    data = np.asarray(data)
    prof = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0], dtype=data.dtype,
                crs=crs, transform=Affine(res, 0, X0, 0, -res, Y0))
    prof.update(profile)
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(data)
    return path


def rgb(h: int = 448, w: int = 448, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(20, 230, (3, h, w), dtype=np.uint8)


def big_vrt(path: Path, res: float, side_px: int) -> Path:
    """A VRT with no sources (reads as zeros): a huge extent at a fine pixel, a few hundred bytes."""
    bands = "".join(
        f'<VRTRasterBand dataType="Byte" band="{b}"><ColorInterp>{c}</ColorInterp></VRTRasterBand>'
        for b, c in ((1, "Red"), (2, "Green"), (3, "Blue"))
    )
    wkt = rasterio.crs.CRS.from_string(CRS).to_wkt()
    path.write_text(
        f'<VRTDataset rasterXSize="{side_px}" rasterYSize="{side_px}"><SRS>{wkt}</SRS>'
        f"<GeoTransform>{X0}, {res}, 0, {Y0}, 0, {-res}</GeoTransform>{bands}</VRTDataset>"
    )
    return path


def fails(capfd: pytest.CaptureFixture[str], args: list[str], match: str, code: int = 1) -> str:
    """Run the CLI; assert exit ``code``, one stderr line matching ``match``, no traceback."""
    rc = main(args)
    out, err = capfd.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in out + err, err
    assert rc == code, (rc, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("landuse: error: "), lines[0]
    assert re.search(match, lines[0]), lines[0]
    return lines[0]


def run_cli(args: list[str], timeout: float = 120, **kw) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANDUSE_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(kw.pop("env", {}))
    return subprocess.run([sys.executable, "-m", "landuse", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, **kw)


def one_line_failure(proc: subprocess.CompletedProcess[str], match: str) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert re.search(match, lines[0]), lines[0]
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mean_colour_export(tmp_path_factory.mktemp("m") / "export")


@pytest.fixture
def tif(tmp_path: Path) -> Path:
    return write_tif(tmp_path / "ok.tif", rgb())


def classify_args(tif: Path | str, out: Path, model: Path, *extra: str, period: str = "2016") -> list[str]:
    return ["classify", str(tif), "--period", period, "--out", str(out), "--model", str(model),
            "--scheduler", "synchronous", "--chunk-plots", "1", *extra]


def finished_run(tmp_path: Path, tif: Path, model: Path, name: str = "run", period: str = "2016") -> Path:
    out = tmp_path / name
    assert main(["-q", *classify_args(tif, out, model, period=period)]) == 0
    assert (out / COMPLETE).exists()
    return out


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[object]:
    """mount(size_kb, ro=False) -> a fresh tmpfs folder (None where mounting is not allowed)."""
    mounted: list[Path] = []

    def mount(size_kb: int, ro: bool = False) -> Path | None:
        where = tmp_path / f"tmpfs{len(mounted)}"
        where.mkdir()
        opts = f"size={size_kb}k" + (",ro" if ro else "")
        if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                                               capture_output=True).returncode != 0:
            return None
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


# -- classify: the plan refuses absurd jobs at once ---------------------------------------------------


def test_coarse_pixels_refused_fast_and_nothing_written(tmp_path: Path, capfd, model: Path) -> None:
    coarse = write_tif(tmp_path / "coarse300.tif", np.zeros((3, 400, 400), np.uint8), res=300.0)
    out = tmp_path / "run"
    t0 = time.perf_counter()
    line = fails(capfd, classify_args(coarse, out, model), r"coarse300\.tif has 300 m pixels.*28 m.*--plot-size")
    assert time.perf_counter() - t0 < 2.0, line
    assert not out.exists()


def test_landsat_30m_refused(tmp_path: Path, capfd, model: Path) -> None:
    landsat = write_tif(tmp_path / "landsat.tif", rgb(64, 64), res=30.0)
    fails(capfd, classify_args(landsat, tmp_path / "run", model), r"landsat\.tif has 30 m pixels.*finer")
    assert not (tmp_path / "run").exists()


def test_geographic_pixels_in_degrees_measured_in_metres(tmp_path: Path, capfd, model: Path) -> None:
    deg = write_tif(tmp_path / "deg.tif", rgb(32, 32), res=0.01, crs="EPSG:4326",
                    transform=Affine(0.01, 0, -100.0, 0, -0.01, 45.0))
    fails(capfd, classify_args(deg, tmp_path / "run", model), r"deg\.tif has 1\.11e\+03 m pixels|deg\.tif has \d")


@pytest.mark.parametrize("size", ["0", "-5", "nan", "0.5"])
def test_plot_size_zero_negative_nan_tiny(tmp_path: Path, capfd, model: Path, tif: Path, size: str) -> None:
    # the CLI refuses it as a usage error (exit 2, no traceback); the library names the parameter
    if size == "nan":  # passes the option's range check: the library's one line
        fails(capfd, classify_args(tif, tmp_path / "run", model, "--plot-size", size), r"--plot-size nan .*at least 1")
    else:
        rc = main(classify_args(tif, tmp_path / "run", model, "--plot-size", size))
        err = capfd.readouterr().err
        assert rc == 2 and "Invalid value for '--plot-size'" in err and "Traceback" not in err, err
    from landuse.errors import InputError
    from landuse.pipeline import classify_imagery

    with pytest.raises(InputError, match=r"^`plot_size_m` .* at least 1"):
        classify_imagery([str(tif)], tmp_path / "run", period="2016", model=str(model), plot_size_m=float(size))
    assert not (tmp_path / "run").exists()


def test_plot_size_finer_than_the_pixels(tmp_path: Path, capfd, model: Path, tif: Path) -> None:
    fails(capfd, classify_args(tif, tmp_path / "run", model, "--plot-size", "4"), r"ok\.tif has 1 m pixels, coarser than 0\.5 m")


def test_huge_job_asks_for_yes_and_says_the_cost(tmp_path: Path, capfd, model: Path) -> None:
    vrt = big_vrt(tmp_path / "state.vrt", res=20.0, side_px=60_000)  # 1,200 km square at 20 m
    out = tmp_path / "run"
    t0 = time.perf_counter()
    line = fails(capfd, classify_args(vrt, out, model), r"large .*28,\d{3},\d{3} plots \(about [\d.]+ h at .*--dry-run.*--yes")
    assert time.perf_counter() - t0 < 2.0, line
    assert not out.exists()


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path, capfd, model: Path, tif: Path) -> None:
    out = tmp_path / "run"
    assert main(classify_args(tif, out, model, "--dry-run")) == 0
    printed = capfd.readouterr().out
    assert "plan: classify:" in printed and "coarsest imagery pixel 1 m (ok.tif)" in printed and "4 plots" in printed
    assert not out.exists()


# -- classify: unreadable / odd inputs ----------------------------------------------------------------


def test_truncated_geotiff_one_line_and_no_run_left(tmp_path: Path, capfd, model: Path) -> None:
    full = write_tif(tmp_path / "full.tif", rgb(), tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    data = full.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "run"
    one_chunk = classify_args(cut, out, model)
    one_chunk[one_chunk.index("--chunk-plots") + 1] = "256"
    fails(capfd, one_chunk, r"cut\.tif.*(damaged or truncated|cannot open)")
    assert not out.exists()  # failed before the first part: nothing left
    fails(capfd, classify_args(cut, out, model), r"cut\.tif.*damaged or truncated")
    assert not out.exists()
    fails(capfd, ["change", str(out), str(out), "--out", str(tmp_path / "c")], r"run is not a finished run")
    fails(capfd, ["tile", str(cut), "--out", str(tmp_path / "chips")], r"cut\.tif.*(damaged or truncated|cannot open)")
    assert not (tmp_path / "chips").exists()


@pytest.mark.parametrize("case", ["missing", "no_crs", "two_bands", "bad_bands", "min_valid", "model"])
def test_classify_simple_mistakes(tmp_path: Path, capfd, model: Path, tif: Path, case: str) -> None:
    out = tmp_path / "run"
    if case == "missing":
        fails(capfd, classify_args(tmp_path / "nope.tif", out, model), r"nope\.tif")
    elif case == "no_crs":
        bare = tmp_path / "bare.tif"
        with rasterio.open(bare, "w", driver="GTiff", width=32, height=32, count=3, dtype="uint8") as dst:
            dst.write(rgb(32, 32))
        fails(capfd, classify_args(bare, out, model), r"bare\.tif has no CRS")
    elif case == "two_bands":
        two = write_tif(tmp_path / "two.tif", rgb()[:2])
        fails(capfd, classify_args(two, out, model), r"two\.tif has 2 band.*--bands")
    elif case == "bad_bands":
        fails(capfd, classify_args(tif, out, model, "--bands", "1,2"), r"--bands \(1, 2\)|--bands '1,2'")
    elif case == "min_valid":  # a usage error of the option's range (exit 2), no traceback
        assert main(classify_args(tif, out, model, "--min-valid", "2")) == 2
        err = capfd.readouterr().err
        assert "Invalid value for '--min-valid'" in err and "Traceback" not in err
    else:
        fails(capfd, classify_args(tif, out, tmp_path / "no_model"), r"no_model")
    assert not out.exists()


def test_float_imagery_needs_stretch_then_classifies_with_it(tmp_path: Path, capfd, model: Path) -> None:
    data = np.random.default_rng(1).uniform(0.0, 0.3, (3, 448, 448)).astype("float32")
    flt = write_tif(tmp_path / "reflectance.tif", data)
    fails(capfd, classify_args(flt, tmp_path / "run", model), r"reflectance\.tif holds float32.*--stretch auto")
    assert not (tmp_path / "run").exists()
    fails(capfd, classify_args(flt, tmp_path / "run", model, "--stretch", "0.3,0.1"), r"stretch .*low < high")
    assert main(["-q", *classify_args(flt, tmp_path / "auto", model, "--stretch", "auto")]) == 0
    # explicit min-max per band (R, G, B)
    assert main(["-q", *classify_args(flt, tmp_path / "pb", model, "--stretch", "0,0.3,0,0.31,0,0.32")]) == 0
    stretch = json.loads((tmp_path / "pb" / "manifest.json").read_text())["imagery"]["stretch"]
    assert stretch == {"method": "user", "low": [0.0, 0.0, 0.0], "high": [0.3, 0.31, 0.32]}
    assert (tmp_path / "auto" / COMPLETE).exists() and (tmp_path / "pb" / COMPLETE).exists()
    capfd.readouterr()


def test_sixteen_bit_stretch_on_tile(tmp_path: Path, capfd) -> None:
    data = np.random.default_rng(2).integers(0, 4000, (3, 448, 448)).astype("uint16")
    t16 = write_tif(tmp_path / "u16.tif", data)
    assert main(["-q", "tile", str(t16), "--out", str(tmp_path / "chips"), "--stretch", "0,4000"]) == 0
    assert len(list((tmp_path / "chips" / "chips").glob("*.png"))) == 4
    fails(capfd, ["tile", str(t16), "--out", str(tmp_path / "c2"), "--stretch", "lots"], r"stretch 'lots'")
    assert not (tmp_path / "c2").exists()


def test_aoi_missing_the_imagery_leaves_nothing(tmp_path: Path, capfd, model: Path, tif: Path) -> None:
    aoi = tmp_path / "far.geojson"
    aoi.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [[[10, 50], [10.01, 50], [10.01, 50.01], [10, 50.01], [10, 50]]]}}]}))
    out = tmp_path / "run"
    fails(capfd, classify_args(tif, out, model, "--aoi", str(aoi)), r"(does not overlap|outside|no plot|AOI)")
    assert not out.exists()


def test_unreachable_scheduler_leaves_nothing(tmp_path: Path, capfd, model: Path, tif: Path) -> None:
    out = tmp_path / "run"
    args = classify_args(tif, out, model)
    args[args.index("--scheduler") + 1] = f"tcp://127.0.0.1:{free_port()}"
    fails(capfd, args, r"cannot reach the Dask scheduler tcp://127\.0\.0\.1:\d+")
    assert not out.exists()


def test_out_is_a_file_or_a_foreign_folder(tmp_path: Path, capfd, model: Path, tif: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    fails(capfd, classify_args(tif, f, model), r"file\.txt exists and is not a directory")
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"x")
    fails(capfd, classify_args(tif, foreign, model), r"photos exists and is not a landuse run .*cat\.jpg")
    assert sorted(p.name for p in foreign.iterdir()) == ["cat.jpg"]


def test_different_run_in_out_refused_and_kept(tmp_path: Path, capfd, model: Path, tif: Path) -> None:
    out = finished_run(tmp_path, tif, model)
    before = (out / "plots.parquet").read_bytes()
    fails(capfd, classify_args(tif, out, model, "--min-valid", "0.5"), r"holds a different run.*min_valid.*--overwrite")
    assert (out / "plots.parquet").read_bytes() == before and (out / COMPLETE).exists()


# -- full disk, read-only folder ------------------------------------------------------------------------


def test_read_only_out(tmp_path: Path, capfd, model: Path, tif: Path, tmpfs, monkeypatch) -> None:
    ro = tmpfs(64, ro=True)
    if ro is None:  # not root: the OS call fails the same way
        ro = tmp_path / "ro"
        ro.mkdir()
        real_mkdir = Path.mkdir

        def mkdir(self: Path, *a, **k):  # type: ignore[no-untyped-def]
            if str(self).startswith(str(ro)):
                raise OSError(errno.EROFS, "Read-only file system", str(self))
            return real_mkdir(self, *a, **k)

        monkeypatch.setattr(Path, "mkdir", mkdir)
        print("read-only folder simulated (mount not allowed)")
    fails(capfd, classify_args(tif, ro / "run", model), r"cannot write .*run: read-only file system; choose a writable --out")
    fails(capfd, ["tile", str(tif), "--out", str(ro / "chips")], r"read-only file system")
    fails(capfd, ["grid", str(tif), "--out", str(ro / "grid.json")], r"read-only file system")


def test_full_disk_during_finalise_is_one_line_and_unfinished(tmp_path: Path, capfd, model: Path, tmpfs, monkeypatch) -> None:
    # 48 x 48 plots at 8 m: parts fit in a 400 KB tmpfs, plots.geojson (~2 MB) does not
    big = write_tif(tmp_path / "big.tif", rgb(48 * 28, 48 * 28), res=8.0)
    small = tmpfs(400)
    simulated = small is None
    if small is None:
        small = tmp_path / "disk"
        small.mkdir()
        import landuse.report.files as files

        def full(*a, **k):  # type: ignore[no-untyped-def]
            raise OSError(errno.ENOSPC, "No space left on device", str(small / "run" / "plots.geojson"))

        monkeypatch.setattr(files, "write_geojson", full)
        print("full disk simulated (mount not allowed)")
    out = small / "run"
    args = ["-q", *classify_args(big, out, model)]  # -q: no progress bar of the finished classify phase
    args[args.index("--chunk-plots") + 1] = "512"
    pattern = r"cannot write .*: no space left on the device; free some space.*rerun the same `landuse classify`"
    if simulated:
        fails(capfd, args, pattern)
    else:  # a fresh process, as a user's command is (GDAL's own error printing is set up once per process)
        one_line_failure(run_cli(args), pattern)
    assert out.is_dir() and not (out / COMPLETE).exists()
    assert not list(out.rglob(".*.tmp*")), list(out.rglob("*"))
    fails(capfd, ["change", str(out), str(out), "--out", str(tmp_path / "chg")], r"unfinished.*rerun the same `landuse classify`")
    fails(capfd, ["report", str(out), str(out), "--out", str(tmp_path / "r.html"), "--basemap", "none"], r"unfinished")


def test_enospc_writing_a_part_keeps_the_finished_parts(tmp_path: Path, capfd, model: Path, tif: Path, monkeypatch) -> None:
    import pyarrow.parquet as pq

    real = pq.write_table
    calls = {"n": 0}

    def write_table(table, where, *a, **k):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, where, *a, **k)

    monkeypatch.setattr(pq, "write_table", write_table)
    out = tmp_path / "run"
    fails(capfd, classify_args(tif, out, model), r"cannot write .*parts.*no space left.*finished parts are kept")
    assert len(list((out / "parts").glob("*.parquet"))) == 2 and not list((out / "parts").glob(".*"))
    monkeypatch.setattr(pq, "write_table", real)
    assert main(["-q", *classify_args(tif, out, model)]) == 0 and (out / COMPLETE).exists()


# -- finished runs, the lock ----------------------------------------------------------------------------


def test_unfinished_and_altered_runs_refused_by_readers(tmp_path: Path, capfd, model: Path, tif: Path) -> None:
    a = finished_run(tmp_path, tif, model, "a")
    b = finished_run(tmp_path, tif, model, "b", period="2021")
    (b / COMPLETE).unlink()
    for args in (["change", str(a), str(b), "--out", str(tmp_path / "c")],
                 ["report", str(a), str(b), "--out", str(tmp_path / "r.html"), "--basemap", "none"],
                 ["review", str(b), "--out", str(tmp_path / "rev")]):
        fails(capfd, args, r"b is unfinished \(no complete\.json\): rerun the same `landuse classify` to complete it")
    assert not (tmp_path / "c").exists() and not (tmp_path / "r.html").exists() and not (tmp_path / "rev").exists()
    # rerunning the same command completes it without recomputing
    assert main(["-q", *classify_args(tif, b, model, period="2021")]) == 0 and (b / COMPLETE).exists()
    # an output changed after the run finished
    with open(a / "plots.geojson", "ab") as f:
        f.write(b" ")
    fails(capfd, ["change", str(a), str(b), "--out", str(tmp_path / "c")], r"plots\.geojson changed after the run finished")
    fails(capfd, ["change", str(tmp_path / "nowhere"), str(b), "--out", str(tmp_path / "c")], r"nowhere is not a finished run")


def test_second_run_into_a_locked_out_names_the_holder_then_waits(tmp_path: Path, capfd, model: Path, tif: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from landuse.store import RunLock
            lock = RunLock({str(out)!r}).acquire()
            print("held", flush=True)
            time.sleep(float(sys.argv[1]))
            lock.release(remove=True)
        """), "2.5"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        line = fails(capfd, classify_args(tif, out, model), rf"run is in use by process {holder.pid} .*--wait")
        assert str(holder.pid) in line and not (out / "manifest.json").exists()
        assert main(["-q", *classify_args(tif, out, model, "--wait")]) == 0
        assert holder.wait(timeout=30) == 0 and (out / COMPLETE).exists() and not (out / LOCK).exists()
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path, model: Path, tif: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / LOCK).write_text(f"{dead.pid}\n")
    assert lock_holder(out) == dead.pid
    lock = RunLock(out).acquire()
    assert lock.took_over == dead.pid and lock_holder(out) == os.getpid()
    lock.release(remove=True)
    (out / LOCK).write_text(f"{dead.pid}\n")
    assert main(["-q", *classify_args(tif, out, model)]) == 0 and (out / COMPLETE).exists()


KILL_AFTER_PLOTS_PARQUET = """
import os, signal
import landuse.report.files as files
real = files.write_geoparquet
def killed(gdf, path, *a, **k):
    real(gdf, path, *a, **k)   # plots.parquet is written ...
    os.kill(os.getpid(), signal.SIGKILL)   # ... and the process dies inside finalise
files.write_geoparquet = killed
"""
KILL_BEFORE_MARKER = """
import os, signal
import landuse.pipeline as pipeline
def killed(root, **k):   # every output written, summary.json included: what the old code took for finished
    assert (root / "plots.parquet").exists() and (root / "summary.json").exists()
    os.kill(os.getpid(), signal.SIGKILL)
pipeline.mark_complete = killed
"""


@pytest.mark.parametrize("kill", [KILL_AFTER_PLOTS_PARQUET, KILL_BEFORE_MARKER], ids=["after_plots_parquet", "before_marker"])
def test_sigkill_inside_finalise_then_change_refuses_and_rerun_completes(tmp_path: Path, model: Path, tif: Path,
                                                                         kill: str) -> None:
    """Killed between plots.parquet and the marker: the run is unfinished until rerun."""
    a = finished_run(tmp_path, tif, model, "a")
    b = tmp_path / "b"
    script = kill + f"from landuse.cli import main\nmain({classify_args(tif, b, model, period='2021')!r})\n"
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (b / "plots.parquet").exists() and not (b / COMPLETE).exists()
    refused = run_cli(["change", str(a), str(b), "--out", str(tmp_path / "chg")])
    one_line_failure(refused, r"b is unfinished .*rerun the same `landuse classify` to complete it")
    assert not (tmp_path / "chg").exists()
    rerun = run_cli(["-q", *classify_args(tif, b, model, period="2021")])
    assert rerun.returncode == 0, rerun.stderr
    marker = json.loads((b / COMPLETE).read_text())
    assert marker["complete"] and marker["parts"] == 4 and marker["plots"] == 4
    assert set(marker["files"]) == set(OUTPUTS) and {"plots.parquet", "classes.tif", "summary.json"} <= set(OUTPUTS)
    assert main(["-q", "change", str(a), str(b), "--out", str(tmp_path / "chg")]) == 0


def test_marker_lists_checksums_of_the_outputs(tmp_path: Path, model: Path, tif: Path) -> None:
    import hashlib

    out = finished_run(tmp_path, tif, model)
    marker = json.loads((out / COMPLETE).read_text())
    for name, info in marker["files"].items():
        data = (out / name).read_bytes()
        assert info == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    # the marker is the last file written
    newest = max((p for p in out.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime_ns)
    assert newest.name == COMPLETE
    assert mark_complete(out, parts=4, plots=4)["files"] == marker["files"]


# -- tile, grid ------------------------------------------------------------------------------------


def test_tile_on_30m_refused_and_no_folder(tmp_path: Path, capfd) -> None:
    landsat = write_tif(tmp_path / "landsat.tif", rgb(64, 64), res=30.0)
    fails(capfd, ["tile", str(landsat), "--out", str(tmp_path / "chips")], r"landsat\.tif has 30 m pixels")
    assert not (tmp_path / "chips").exists()


def test_tile_big_job_asks_for_yes(tmp_path: Path, capfd) -> None:
    vrt = big_vrt(tmp_path / "big.vrt", res=1.0, side_px=100_000)  # 100 km at 1 m: 199,809 plots
    t0 = time.perf_counter()
    fails(capfd, ["tile", str(vrt), "--out", str(tmp_path / "chips")], r"this tile is large .*--aoi.*--yes")  # tile has no dry run
    assert time.perf_counter() - t0 < 2.0
    assert not (tmp_path / "chips").exists()


def test_tile_cleans_a_killed_runs_temporaries(tmp_path: Path, tif: Path) -> None:
    out = tmp_path / "chips"
    (out / ".chips.tmp-99999").mkdir(parents=True)
    (out / ".chips.tmp-99999" / "half.png").write_bytes(b"x")
    assert main(["-q", "tile", str(tif), "--out", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["chips", "grid.json", "index.geojson"]


def test_grid_geojson_of_millions_of_plots_asks_for_yes(tmp_path: Path, capfd) -> None:
    coarse = write_tif(tmp_path / "coarse300.tif", np.zeros((3, 1000, 1000), np.uint8), res=300.0)
    t0 = time.perf_counter()
    fails(capfd, ["grid", str(coarse), "--out", str(tmp_path / "g.json"), "--geojson", str(tmp_path / "g.geojson")],
          r"this grid is large .*1,795,\d{3} plots.*--yes")
    assert time.perf_counter() - t0 < 2.0
    assert not (tmp_path / "g.json").exists() and not (tmp_path / "g.geojson").exists()
    # grid.json alone is small whatever the grid
    assert main(["-q", "grid", str(coarse), "--out", str(tmp_path / "g.json")]) == 0


def test_grid_of_a_missing_file(tmp_path: Path, capfd) -> None:
    fails(capfd, ["grid", str(tmp_path / "nope.tif"), "--out", str(tmp_path / "g.json")], r"nope\.tif")
    assert not (tmp_path / "g.json").exists()


# -- change, report -----------------------------------------------------------------------------------


def test_change_of_runs_on_different_grids(tmp_path: Path, capfd, model: Path, tif: Path) -> None:
    a = finished_run(tmp_path, tif, model, "a")
    other = write_tif(tmp_path / "east.tif", rgb(), transform=Affine(1, 0, X0 + 4480, 0, -1, Y0))
    b = finished_run(tmp_path, other, model, "b", period="2021")
    fails(capfd, ["change", str(a), str(b), "--out", str(tmp_path / "c")], r"grid")
    assert not (tmp_path / "c").exists()


def test_report_with_missing_imagery_override(tmp_path: Path, capfd, model: Path, tif: Path) -> None:
    a = finished_run(tmp_path, tif, model, "a")
    b = finished_run(tmp_path, tif, model, "b", period="2021")
    out = tmp_path / "r.html"
    fails(capfd, ["report", str(a), str(b), "--out", str(out), "--basemap", "none", "--imagery-a", str(tmp_path / "nope.tif")],
          r"--imagery-a.*nope\.tif does not exist")
    assert not out.exists()


# -- predict, evaluate, train --------------------------------------------------------------------------


def png_header_only(path: Path, w: int, h: int) -> Path:
    """A PNG whose header claims w x h pixels (a decompression bomb's shape), a few bytes long."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("w, h", [(20_000, 20_000), (12_000, 9_000)])
def test_predict_on_a_decompression_bomb(tmp_path: Path, capfd, model: Path, w: int, h: int) -> None:
    bomb = png_header_only(tmp_path / "bomb.png", w, h)
    fails(capfd, ["predict", str(model), str(bomb)], rf"bomb\.png (is {w} x {h} pixels|has more pixels).*safety limit")


def test_predict_on_a_text_file_and_a_missing_model(tmp_path: Path, capfd, model: Path) -> None:
    txt = tmp_path / "notes.png"
    txt.write_text("not an image")
    fails(capfd, ["predict", str(model), str(txt)], r"notes\.png cannot be read")
    fails(capfd, ["predict", str(tmp_path / "nomodel"), str(txt)], r"nomodel")


@pytest.mark.parametrize("command", ["evaluate", "train"])
def test_dataset_missing_or_empty(tmp_path: Path, capfd, model: Path, command: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    pre = [command, str(model)] if command == "evaluate" else [command]
    post = [] if command == "evaluate" else ["--out", str(tmp_path / "trained")]
    fails(capfd, [*pre, str(tmp_path / "nope"), *post], r"nope")
    fails(capfd, [*pre, str(empty), *post], r"empty")
    assert not (tmp_path / "trained").exists()


def test_evaluate_dataset_with_a_bomb_image(tmp_path: Path, capfd, model: Path) -> None:
    from PIL import Image

    ds = tmp_path / "ds"
    for tag in ("Barren", "Cultivated", "Developed"):
        (ds / tag).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((32, 32, 3), 40 * i + 60, np.uint8)).save(ds / tag / f"{i}.png")
    png_header_only(ds / "Barren" / "bomb.png", 20_000, 20_000)
    fails(capfd, ["evaluate", str(model), str(ds)], r"bomb\.png")


# -- run (workflows) ------------------------------------------------------------------------------------


def test_run_missing_and_invalid_workflows(tmp_path: Path, capfd) -> None:
    fails(capfd, ["run", str(tmp_path / "nope.yaml")], r"nope\.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    fails(capfd, ["run", str(bad)], r"bad\.yaml")
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: x\noutput: o\nperiods:\n  - name: a\n    imagery: a.tif\n    strech: auto\n")
    fails(capfd, ["run", str(typo)], r"typo\.yaml.*strech")


def test_workflow_stretch_reaches_classify(tmp_path: Path) -> None:
    from landuse.api.workflows import plan

    (tmp_path / "a.tif").write_bytes(b"")
    (tmp_path / "b.tif").write_bytes(b"")
    wf = tmp_path / "wf.yaml"
    wf.write_text(textwrap.dedent("""
        name: floats
        output: out
        periods:
          - name: "2016"
            imagery: a.tif
            stretch: [0, 0.3]
          - name: "2021"
            imagery: b.tif
            stretch: auto
    """))
    steps = {step.title: step.argv for step in plan(wf)[1]}
    assert steps["classify 2016"][steps["classify 2016"].index("--stretch") + 1] == "0,0.3"
    assert steps["classify 2021"][steps["classify 2021"].index("--stretch") + 1] == "auto"


# -- Custom Vision, serve, Dask --------------------------------------------------------------------------


def test_custom_vision_connection_refused_fails_fast(tmp_path: Path, capfd, tif: Path, monkeypatch) -> None:
    port = free_port()  # nothing listens there
    endpoint = f"http://127.0.0.1:{port}"
    for k, v in {"LANDUSE_CV_PREDICTION_KEY": "k", "LANDUSE_CV_ENDPOINT": endpoint,
                 "LANDUSE_CV_PROJECT_ID": "00000000-0000-0000-0000-000000000001", "LANDUSE_CV_PUBLISHED_NAME": "p"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("HOME", str(tmp_path))
    out = tmp_path / "run"
    t0 = time.perf_counter()
    fails(capfd, ["classify", str(tif), "--period", "2016", "--out", str(out), "--backend", "customvision",
                  "--scheduler", "synchronous"], rf"endpoint {re.escape(endpoint)} is not answering \(connection refused\)")
    assert time.perf_counter() - t0 < 10.0  # was 8 retries over 63-74 s
    assert not out.exists()


def test_serve_refuses_pixel_bombs_and_health_shows_no_paths(tmp_path: Path, model: Path) -> None:
    import requests
    from PIL import Image

    from tests.test_serve import KEY, start_serve, stop

    served = start_serve([str(model)])
    try:
        health = requests.get(served.url("/health"), timeout=10).json()
        assert health["model_id"] == "export" and health["max_pixels"] == 256 * 32 * 32
        assert str(tmp_path) not in json.dumps(health) and "/" not in json.dumps(health["model_id"])
        buf = tmp_path / "big.png"
        Image.new("RGB", (9400, 9400), (90, 120, 60)).save(buf, optimize=True)
        assert buf.stat().st_size < 400_000
        url = served.url("/image")
        r = requests.post(url, data=buf.read_bytes(), headers={"Prediction-Key": KEY}, timeout=30)
        assert r.status_code == 400 and r.json()["code"] == "BadRequestImageDimensions"
        assert "budget" in r.json()["message"]
        small = io_png(np.full((32, 32, 3), 100, np.uint8))
        ok = requests.post(url, data=small, headers={"Prediction-Key": KEY}, timeout=30)
        assert ok.status_code == 200 and len(ok.json()["predictions"]) == 3
    finally:
        err = stop(served)
    assert "Traceback" not in err


def io_png(pixels: np.ndarray) -> bytes:
    import io

    from PIL import Image

    b = io.BytesIO()
    Image.fromarray(pixels).save(b, format="PNG")
    return b.getvalue()


def test_serve_with_a_missing_model(tmp_path: Path) -> None:
    proc = run_cli(["serve", str(tmp_path / "nomodel"), "--port", "0"], env={"LANDUSE_SERVE_KEY": "k"})
    one_line_failure(proc, r"nomodel")


def test_quiet_local_cluster_prints_nothing(tmp_path: Path, model: Path, tif: Path) -> None:
    args = classify_args(tif, tmp_path / "run", model)
    args[args.index("--scheduler") + 1] = "local"
    proc = run_cli(["-q", *args, "--workers", "2"], timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "" and proc.stdout.strip() == "", proc.stderr
    assert (tmp_path / "run" / COMPLETE).exists()


def test_custom_vision_training_connection_refused_fails_fast(tmp_path: Path, capfd, monkeypatch) -> None:
    from tests.test_cv_training import RESOURCE, make_dataset

    ds = make_dataset(tmp_path / "ds", per_tag=6)
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LANDUSE_CV_TRAINING_ENDPOINT", endpoint)
    monkeypatch.setenv("LANDUSE_CV_TRAINING_KEY", "k")
    monkeypatch.setenv("LANDUSE_CV_PREDICTION_RESOURCE_ID", RESOURCE)
    t0 = time.perf_counter()
    fails(capfd, ["train", str(ds), "--backend", "customvision", "--project", "plots", "--out", str(tmp_path / "m")],
          rf"training endpoint {re.escape(endpoint)} is not answering \(connection refused\)")
    assert time.perf_counter() - t0 < 10.0
    assert not (tmp_path / "m").exists()


def test_serve_decodes_off_the_event_loop(monkeypatch) -> None:
    """While an image's decode is held inside the decode pool, /health is still answered: the
    event loop never waits for a decode (before: a 9400 px PNG stalled every request ~1.3 s)."""
    import threading

    import requests
    import uvicorn

    import landuse.serve as serve
    from tests.fakecv import make_colour_classifier

    entered, release = threading.Event(), threading.Event()
    real = serve._decode

    def held(data: bytes, size, max_pixels=None):  # type: ignore[no-untyped-def]
        entered.set()
        release.wait(60)
        return real(data, size, max_pixels)

    monkeypatch.setattr(serve, "_decode", held)
    server = uvicorn.Server(uvicorn.Config(serve.create_app(make_colour_classifier(), "k"), host="127.0.0.1",
                                           port=0, log_level="error"))
    runner = threading.Thread(target=server.run, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while not (server.started and server.servers) and time.monotonic() < deadline:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        answer: dict[str, requests.Response] = {}
        poster = threading.Thread(target=lambda: answer.update(r=requests.post(
            base + "/image", data=io_png(np.full((64, 64, 3), 90, np.uint8)), headers={"Prediction-Key": "k"}, timeout=60)))
        poster.start()
        assert entered.wait(30), "the image never reached the decoder"
        health = requests.get(base + "/health", timeout=5)  # the decode is still held
        assert health.status_code == 200 and not release.is_set()
        release.set()
        poster.join(60)
        assert answer["r"].status_code == 200 and len(answer["r"].json()["predictions"]) == 3
    finally:
        release.set()
        server.should_exit = True
        runner.join(10)
