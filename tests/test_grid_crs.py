"""Automatic grid CRS: shared CRSs that do not keep ground distances are replaced by UTM."""

from __future__ import annotations

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from landuse.grid import PlotGrid, keeps_distances


def test_keeps_distances() -> None:
    assert keeps_distances(CRS.from_epsg(26914))  # UTM (Transverse Mercator)
    assert keeps_distances(CRS.from_epsg(5070))  # CONUS Albers
    assert keeps_distances(CRS.from_epsg(2263))  # NY State Plane (feet, LCC)
    assert not keeps_distances(CRS.from_epsg(3857))  # Web Mercator
    assert not keeps_distances(CRS.from_epsg(3395))  # World Mercator


def test_web_mercator_source_gets_a_utm_grid(write_raster) -> None:
    # ~1 km square near Seattle (lat 47.6) in Web Mercator: its units are 1/cos(lat) ~ 1.48 ground metres
    x0, y0 = -13_610_000.0, 6_040_000.0
    p = write_raster("wm.tif", np.full((3, 100, 100), 120, np.uint8), "EPSG:3857", Affine(10, 0, x0, 0, -10, y0))
    grid = PlotGrid.from_rasters([p])
    assert grid.crs == CRS.from_epsg(32610)
    # 1000 Web Mercator units at 47.6 N are ~674 m on the ground: 4 plots a side at most
    assert grid.width <= 5 and grid.height <= 5
