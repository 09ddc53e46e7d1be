"""Open a run's and a change's outputs in real QGIS and print what QGIS makes of their styles.

A by-hand check (QGIS is too heavy for the test suite). Needs QGIS's Python bindings, e.g. on
Debian / Ubuntu ``apt-get install python3-qgis``, and runs with the *system* Python::

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 docs/check_qgis_styles.py RUN_DIR [CHANGE_DIR]

For each layer it prints the renderer QGIS chose on opening (a GeoPackage carries its default
style in ``layer_styles``; ``classes.tif`` its colour table), then the renderer and the class
names after loading the ``.qml`` (and for vectors the ``.sld``) beside the file.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _raster(path: Path) -> None:
    from qgis.core import QgsRasterLayer

    layer = QgsRasterLayer(str(path), path.stem)
    print(f"{path.name}: valid={layer.isValid()} on open: {layer.renderer().type()}")
    msg, ok = layer.loadNamedStyle(str(path.with_suffix(".qml")))
    classes = [(int(c.value), c.label, c.color.name()) for c in layer.renderer().classes()]
    print(f"  {path.with_suffix('.qml').name}: loaded={ok} {msg} renderer={layer.renderer().type()} classes={classes[:6]}"
          + (f" ... ({len(classes)} in all)" if len(classes) > 6 else ""))


def _vector(path: Path, layer_name: str, style_stem: Path) -> None:
    from qgis.core import QgsVectorLayer

    uri = f"{path}|layername={layer_name}" if path.suffix == ".gpkg" else str(path)
    layer = QgsVectorLayer(uri, layer_name, "ogr")
    r = layer.renderer()
    cats = [(c.value(), c.symbol().color().name()) for c in r.categories()] if hasattr(r, "categories") else []
    print(f"{path.name}: valid={layer.isValid()} features={layer.featureCount()} on open: {r.type()} {cats}")
    for suffix, load in ((".qml", layer.loadNamedStyle), (".sld", layer.loadSldStyle)):
        style = style_stem.with_name(style_stem.name + suffix)
        msg, ok = load(str(style))
        r = layer.renderer()
        if hasattr(r, "categories"):
            names = [(c.value(), c.label()) for c in r.categories()]
        else:
            names = [(x.label(), x.filterExpression()) for x in r.rootRule().children()]
        print(f"  {style.name}: loaded={ok} {msg} renderer={r.type()} {names}")


def main(argv: list[str]) -> int:
    from qgis.core import Qgis, QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    print(f"QGIS {Qgis.version()}")
    run = Path(argv[0])
    _raster(run / "classes.tif")
    _vector(run / "plots.gpkg", "plots", run / "plots")
    _vector(run / "plots.geojson", "plots", run / "plots")
    if len(argv) > 1:
        ch = Path(argv[1])
        _raster(ch / "change.tif")
        _vector(ch / "change.gpkg", "change", ch / "change_plots")
    app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
