"""Writers of a run's files: GeoParquet, GeoJSON (RFC 7946), class and probability COGs, JSON.

Every writer is atomic (temporary name in the same folder, then rename) and records the run's
provenance in the file (GeoParquet schema metadata, a ``landuse`` member of the GeoJSON
FeatureCollection, GeoTIFF metadata tags).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from landuse import fileio
from landuse.fileio import atomic_path  # noqa: F401 (re-exported)
from landuse.grid import PlotGrid

CLASS_NODATA = 255


def class_colours(labels: Sequence[str]) -> list[tuple[int, int, int]]:
    """RGB colour of each label (the shared palette of :mod:`landuse.report.palette`)."""
    from landuse.report.palette import class_colors, hex_to_rgb

    hexes = class_colors(list(labels))
    return [hex_to_rgb(hexes[label]) for label in labels]


def write_json(path: str | Path, obj: Any) -> Path:
    """Indented JSON, atomically."""
    return fileio.write_json(path, obj)


def write_geoparquet(gdf: Any, path: str | Path, provenance: dict[str, Any] | None = None) -> Path:
    """GeoParquet (geopandas, WKB geometry, the frame's CRS) with provenance in the schema
    metadata under ``landuse``."""
    import pyarrow.parquet as pq
    from geopandas.io.arrow import _geopandas_to_arrow

    table = _geopandas_to_arrow(gdf, index=False)
    meta = dict(table.schema.metadata or {})
    if provenance is not None:
        meta[b"landuse"] = json.dumps(provenance, default=str).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return Path(path)


def write_geojson(gdf: Any, path: str | Path, provenance: dict[str, Any] | None = None) -> Path:
    """RFC 7946 GeoJSON (EPSG:4326, counter-clockwise exterior rings, 7 decimals) with the
    provenance as a top-level ``landuse`` member of the FeatureCollection (GDAL's writer)."""
    gdf = gdf.to_crs("EPSG:4326")
    options: dict[str, str] = {"RFC7946": "YES", "WRITE_NAME": "NO"}
    if provenance is not None:
        options["FOREIGN_MEMBERS_COLLECTION"] = json.dumps({"landuse": provenance}, default=str)
    with atomic_path(path) as tmp:
        gdf.to_file(tmp, driver="GeoJSON", engine="pyogrio", **options)
    return Path(path)


def write_geopackage(gdf: Any, path: str | Path, layer: str, styles: tuple[str, str] | None = None,
                     provenance: dict[str, Any] | None = None) -> Path:
    """A GeoPackage of one layer (the frame's columns and CRS, as in the GeoParquet), atomically.

    ``styles`` (QML, SLD) go into the ``layer_styles`` table QGIS reads, as the layer's default
    style, so the layer opens styled; the provenance goes into the layer's metadata."""
    import pandas as pd

    with atomic_path(path) as tmp:
        kw: dict[str, Any] = {}
        if provenance is not None:
            kw["layer_metadata"] = {"landuse": json.dumps(provenance, default=str)}
        # GeoPackage 1.3: what QGIS / GDAL releases before GDAL 3.6 open without a warning
        gdf.to_file(tmp, driver="GPKG", layer=layer, engine="pyogrio", dataset_options={"VERSION": "1.3"}, **kw)
        if styles is not None:
            import pyogrio

            qml, sld = styles
            geom = pyogrio.read_info(tmp, layer=layer).get("geometry_name") or "geom"  # GDAL names it "geom"
            table = pd.DataFrame({
                "f_table_catalog": [""], "f_table_schema": [""], "f_table_name": [layer], "f_geometry_column": [geom],
                "styleName": [layer], "styleQML": [qml], "styleSLD": [sld], "useAsDefault": [True],
                "description": ["landuse palette and class names"], "owner": [""], "ui": [""],
                "update_time": [pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")],
            })
            pyogrio.write_dataframe(table, tmp, layer="layer_styles", driver="GPKG", append=True)
    return Path(path)


def write_plot_layers(gdf: Any, gpkg: Path, labels: Sequence[str], provenance: dict[str, Any] | None) -> None:
    """plots.gpkg (layer ``plots``, the GeoParquet's columns, styled) and plots.qml / plots.sld
    (QGIS loads them with plots.gpkg / .geojson / .parquet): a fill per ``label``."""
    from landuse.report import styles

    cats = {name: (name, c) for name, c in styles.class_categories(list(labels)).values()}
    write_geopackage(gdf, gpkg, "plots", styles.vector_style_texts("plots", "label", cats), provenance)
    styles.write_vector_styles(gpkg.with_suffix(""), "label", cats)


def _tags(provenance: dict[str, Any] | None) -> dict[str, str]:
    if not provenance:
        return {}
    return {f"LANDUSE_{k.upper()}": v if isinstance(v, str) else json.dumps(v, default=str) for k, v in provenance.items()}


def _write_cog(path: Path, array: np.ndarray, grid: PlotGrid, nodata: float, setup: Any, resampling: str) -> None:
    """Write ``array`` (bands, h, w) on ``grid`` as a Cloud-Optimized GeoTIFF via GDAL's COG driver."""
    import rasterio
    import rasterio.shutil
    from rasterio.io import MemoryFile

    profile = dict(
        driver="GTiff",
        width=grid.width,
        height=grid.height,
        count=array.shape[0],
        dtype=array.dtype,
        crs=grid.crs,
        transform=grid.transform,
        nodata=nodata,
    )
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            setup(dst)  # colour table and tags first: libtiff cannot change the photometric tag once writing
            dst.write(array)
        with mem.open() as src, atomic_path(path) as tmp:
            rasterio.shutil.copy(
                src,
                tmp,
                driver="COG",
                BLOCKSIZE=256,
                COMPRESS="DEFLATE",
                RESAMPLING=resampling,
                OVERVIEWS="AUTO",
            )


def write_class_raster(
    path: str | Path,
    grid: PlotGrid,
    class_index: np.ndarray,
    labels: Sequence[str],
    provenance: dict[str, Any] | None = None,
    unknown: np.ndarray | None = None,
) -> Path:
    """One pixel per plot: uint8 class index (254 = unknown, 255 = not classified), a colour table
    with the class colours, class names in the tags (``CLASS_NAMES`` JSON list, ``CLASS_<i>``), as
    a COG; beside it ``.aux.xml`` category names / attribute table and ``.qml`` / ``.sld`` styles."""
    if class_index.shape != grid.shape:
        raise ValueError(f"class array {class_index.shape} is not the grid's shape {grid.shape}")
    from landuse.report.palette import UNKNOWN_VALUE
    from landuse.report.styles import class_categories, write_raster_styles

    if len(labels) >= UNKNOWN_VALUE:
        raise ValueError(f"{len(labels)} classes do not fit a uint8 raster with unknown {UNKNOWN_VALUE} / nodata {CLASS_NODATA}")
    data = np.where(class_index < 0, CLASS_NODATA, class_index).astype(np.uint8)
    if unknown is not None:
        data[np.asarray(unknown, dtype=bool)] = UNKNOWN_VALUE
    data = data[None]
    categories = class_categories(list(labels))

    def setup(dst: Any) -> None:
        cmap = {v: rgba for v, (_name, rgba) in categories.items()}
        cmap[CLASS_NODATA] = (0, 0, 0, 0)
        dst.write_colormap(1, cmap)
        dst.set_band_description(1, "class_index")
        dst.update_tags(CLASS_NAMES=json.dumps(list(labels)), NODATA_MEANS="not classified",
                        UNKNOWN_VALUE=str(UNKNOWN_VALUE), **_tags(provenance))
        dst.update_tags(1, **{f"CLASS_{i}": name for i, name in enumerate(labels)})

    _write_cog(Path(path), data, grid, CLASS_NODATA, setup, "NEAREST")
    write_raster_styles(path, categories)
    return Path(path)


def write_probability_raster(
    path: str | Path,
    grid: PlotGrid,
    probabilities: np.ndarray,
    labels: Sequence[str],
    provenance: dict[str, Any] | None = None,
) -> Path:
    """One pixel per plot, one float32 band per class (band i+1 = probability of ``labels[i]``),
    NaN where not classified, as a COG."""
    if probabilities.shape != (len(labels), *grid.shape):
        raise ValueError(f"probability array {probabilities.shape} is not (classes, *grid shape)")

    def setup(dst: Any) -> None:
        for i, name in enumerate(labels):
            dst.set_band_description(i + 1, f"prob_{name}")
            dst.update_tags(i + 1, CLASS_NAME=name)
        dst.update_tags(CLASS_NAMES=json.dumps(list(labels)), **_tags(provenance))

    _write_cog(Path(path), probabilities.astype(np.float32), grid, float("nan"), setup, "AVERAGE")
    return Path(path)


def write_grid_geojson(grid: PlotGrid, path: str | Path, mask: np.ndarray | None = None) -> int:
    """The grid's plots (``mask`` True only) as EPSG:4326 GeoJSON (plot_id, row, col), atomically;
    returns the count."""
    import geopandas as gpd

    path = Path(path)
    rows, cols = np.nonzero(mask) if mask is not None else grid.all_rows_cols()
    gdf = gpd.GeoDataFrame(
        {"plot_id": grid.plot_ids(rows, cols), "row": rows.astype(int), "col": cols.astype(int)},
        geometry=grid.footprints(rows, cols, to_crs="EPSG:4326"),
        crs="EPSG:4326",
    )
    with atomic_path(path) as tmp:
        gdf.to_file(tmp, driver="GeoJSON", layer=path.stem)
    return len(gdf)
