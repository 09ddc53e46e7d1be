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
