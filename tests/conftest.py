"""Shared fixtures: where ../shared/data is, and a writer of small synthetic GeoTIFFs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, or skip the calling test (with the reason) where it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (real data lives in ../shared/data beside the repository)")
    return path


@pytest.fixture
def write_raster(tmp_path: Path) -> Callable[..., Path]:
    """Factory: write_raster(name, data[bands,h,w], crs, transform, nodata=None, **profile) -> path."""
    import rasterio

    def _write(name: str, data: np.ndarray, crs, transform, nodata=None, **profile) -> Path:
        data = np.asarray(data)
        if data.ndim == 2:
            data = data[None]
        path = tmp_path / name
        prof = dict(
            driver="GTiff",
            width=data.shape[2],
            height=data.shape[1],
            count=data.shape[0],
            dtype=data.dtype,
            crs=crs,
            transform=transform,
            nodata=nodata,
        )
        prof.update(profile)
        with rasterio.open(path, "w", **prof) as dst:
            dst.write(data)
        return path

    return _write


# -- notebook 02 on the sample county, executed once per session ----------------------------------

CHANGE_NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_change_between_years.ipynb"


@pytest.fixture(scope="session")
def change_notebook_on_sample_county(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path, Path]:
    """Notebook 02 executed on the bundled sample county (as committed; the real data hidden),
    used by the notebook test and by the test that its outputs equal the workflow's and the CLI's.

    Returns the executed notebook, the folder its outputs were moved to, and the folder it wrote
    them in (``<LANDUSE_NB_OUT>/02_change_between_years``: the path the other ways write to, so
    that the paths the outputs record are the same)."""
    import os

    import nbformat
    from nbclient import NotebookClient

    root = tmp_path_factory.mktemp("nb02")
    wrote = root / "nb" / CHANGE_NOTEBOOK.stem
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANDUSE_NB_OUT", str(root / "nb"))
        mp.setenv("LANDUSE_NB_SHARED", str(root / "no-shared-data"))
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(CHANGE_NOTEBOOK.parents[1]), os.environ.get("PYTHONPATH")])))
        nb = nbformat.read(CHANGE_NOTEBOOK, as_version=4)
        NotebookClient(nb, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(CHANGE_NOTEBOOK.parent)}}).execute()
    kept = root / "notebook"
    wrote.rename(kept)
    return nb, kept, wrote
