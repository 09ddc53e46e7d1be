"""One period's imagery (a Scene) and reading plots from it on a plot grid.

CONTRACT (stable API other modules code against; the implementation is being written):

    scene = Scene.open(sources, bands=None, stretch=None)
        sources: paths, globs, a VRT or GDAL-readable URLs (str | Path, or a list of them).
        bands:   1-based source band indices for R, G, B (default: 1,2,3 for 3/4-band imagery;
                 alpha bands / internal masks / nodata honoured as invalid pixels).
    scene.files -> list[SourceFile]       # path, crs, bounds, res, size, mtime, count, dtype
    scene.footprints() -> list[(CRS, bounds)]   # for PlotGrid.from_footprints
    scene.spec() -> dict                  # small picklable spec; Scene.from_spec(spec) reopens it
    scene.provenance() -> dict            # inputs (path, size, mtime), bands, stretch

    pixels, valid = scene.read_chunk(grid, chunk, pixels=224)
        pixels: uint8 (chunk.size, pixels, pixels, 3) RGB, plots row-major within the chunk
        valid:  float32 (chunk.size,) valid-pixel fraction of each plot in [0, 1]
    pixels, mask = scene.read_plot(grid, row, col, pixels=224)
        pixels: uint8 (pixels, pixels, 3); mask: bool (pixels, pixels), True where valid
    scene.coverage(grid) -> float32 (grid.height, grid.width) valid fraction per plot (cheap,
        from footprints / low resolution), used to skip plots with no data at all.
"""
