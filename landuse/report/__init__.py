"""Output writers (GeoParquet, GeoJSON, GeoTIFF) and the web map report."""
