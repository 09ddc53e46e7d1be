"""Styles that make the outputs open with the project's palette and class names in GIS software.

* ``<raster>.aux.xml`` — GDAL's PAM side-car: category names and a raster attribute table
  (value, class name, RGB), so ``gdalinfo``, QGIS and ArcGIS show names, not indices;
* ``<stem>.qml`` — a QGIS style beside a raster (paletted renderer) or vector layer (categorized
  renderer); QGIS loads ``<stem>.qml`` automatically with ``<stem>.<ext>``;
* ``<stem>.sld`` — the same as an OGC Styled Layer Descriptor 1.0 for other clients (GeoServer,
  MapServer, QGIS's "Load Style").

The XML follows what QGIS 3 writes for these renderers (``rasterrenderer type="paletted"``,
``renderer-v2 type="categorizedSymbol"``); it is built with :mod:`xml.etree.ElementTree`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from landuse.report.files import atomic_path

Category = tuple[str, tuple[int, int, int, int]]  # (name, RGBA)
QGIS_VERSION = "3.22.16-Białowieża"
SLD_NS = "http://www.opengis.net/sld"
OGC_NS = "http://www.opengis.net/ogc"
SE_NS = "http://www.opengis.net/se"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"


def _hex(rgba: tuple[int, int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgba[:3])


def _write_xml(path: Path, root: ET.Element, doctype: str | None = None) -> Path:
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    text = (doctype + "\n" if doctype else "") + body + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# -- GDAL PAM (.aux.xml) -------------------------------------------------------------------------


def aux_xml(categories: Mapping[int, Category], nodata_name: str = "not classified") -> ET.Element:
    """A ``PAMDataset`` with band 1's category names (index = pixel value) and a thematic raster
    attribute table (Value, Class_Name, Red, Green, Blue, Alpha)."""
    root = ET.Element("PAMDataset")
    band = ET.SubElement(root, "PAMRasterBand", band="1")
    names = ET.SubElement(band, "CategoryNames")
    top = max(categories) if categories else -1
    for v in range(top + 1):
        ET.SubElement(names, "Category").text = categories[v][0] if v in categories else ""
    rat = ET.SubElement(band, "GDALRasterAttributeTable", tableType="thematic")
    for i, (name, typ, usage) in enumerate(
        (("Value", 0, 5), ("Class_Name", 2, 2), ("Red", 0, 6), ("Green", 0, 7), ("Blue", 0, 8), ("Alpha", 0, 9))
    ):
        fd = ET.SubElement(rat, "FieldDefn", index=str(i))
        ET.SubElement(fd, "Name").text = name
        ET.SubElement(fd, "Type").text = str(typ)
        ET.SubElement(fd, "Usage").text = str(usage)
    for k, (value, (name, rgba)) in enumerate(sorted(categories.items())):
        row = ET.SubElement(rat, "Row", index=str(k))
        for cell in (value, name, *rgba):
            ET.SubElement(row, "F").text = str(cell)
    md = ET.SubElement(band, "Metadata")
    ET.SubElement(md, "MDI", key="LANDUSE_CATEGORIES").text = ";".join(f"{v}={n}" for v, (n, _c) in sorted(categories.items()))
    ET.SubElement(md, "MDI", key="LANDUSE_NODATA").text = nodata_name
    return root


# -- QGIS .qml -----------------------------------------------------------------------------------


def raster_qml(categories: Mapping[int, Category]) -> ET.Element:
    """QGIS style of a paletted (unique values) single-band raster with class labels."""
    root = ET.Element("qgis", version=QGIS_VERSION, styleCategories="AllStyleCategories", hasScaleBasedVisibilityFlag="0",
                      minScale="1e+08", maxScale="0")
    flags = ET.SubElement(root, "flags")
    for f in ("Identifiable", "Removable", "Searchable", "Private"):
        ET.SubElement(flags, f).text = "0" if f == "Private" else "1"
    pipe = ET.SubElement(root, "pipe")
    rr = ET.SubElement(pipe, "rasterrenderer", type="paletted", band="1", opacity="1", alphaBand="-1", nodataColor="")
    ET.SubElement(rr, "rasterTransparency")
    mmo = ET.SubElement(rr, "minMaxOrigin")
    for tag, text in (("limits", "None"), ("extent", "WholeRaster"), ("statAccuracy", "Estimated"),
                      ("cumulativeCutLower", "0.02"), ("cumulativeCutUpper", "0.98"), ("stdDevFactor", "2")):
        ET.SubElement(mmo, tag).text = text
    pal = ET.SubElement(rr, "colorPalette")
    for value, (name, rgba) in sorted(categories.items()):
        ET.SubElement(pal, "paletteEntry", value=str(value), color=_hex(rgba), alpha=str(rgba[3]), label=name)
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", grayscaleMode="0", colorizeOn="0", colorizeRed="255",
                  colorizeGreen="128", colorizeBlue="128", colorizeStrength="100", invertColors="0")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(pipe, "resamplingStage").text = "resamplingFilter"
    ET.SubElement(root, "blendMode").text = "0"
    return root


def _option(parent: ET.Element, name: str, value: str) -> None:
    ET.SubElement(parent, "Option", type="QString", name=name, value=value)


def vector_qml(field: str, categories: Mapping[str, Category], outline: str = "35,35,35,255") -> ET.Element:
    """QGIS style of a polygon layer: a categorized renderer on ``field`` (one fill per value)."""
    root = ET.Element("qgis", version=QGIS_VERSION, styleCategories="Symbology")
    rend = ET.SubElement(root, "renderer-v2", type="categorizedSymbol", attr=field, symbollevels="0",
                         enableorderby="0", forceraster="0", referencescale="-1")
    cats = ET.SubElement(rend, "categories")
    syms = ET.SubElement(rend, "symbols")
    for k, (value, (label, rgba)) in enumerate(categories.items()):
        ET.SubElement(cats, "category", value=value, symbol=str(k), label=label, render="true", type="string")
        sym = ET.SubElement(syms, "symbol", type="fill", name=str(k), alpha="1", clip_to_extent="1", force_rhr="0",
                            frame_rate="10", is_animated="0")
        ET.SubElement(ET.SubElement(sym, "data_defined_properties"), "Option", type="Map")
        layer = ET.SubElement(sym, "layer", {"class": "SimpleFill", "enabled": "1", "locked": "0", "pass": "0"})
        opts = ET.SubElement(layer, "Option", type="Map")
        color = ",".join(str(v) for v in rgba)
        for name, value in (("border_width_map_unit_scale", "3x:0,0,0,0,0,0"), ("color", color), ("joinstyle", "bevel"),
                            ("offset", "0,0"), ("offset_map_unit_scale", "3x:0,0,0,0,0,0"), ("offset_unit", "MM"),
                            ("outline_color", outline), ("outline_style", "solid"), ("outline_width", "0.1"),
                            ("outline_width_unit", "MM"), ("style", "solid")):
            _option(opts, name, value)
        # QGIS < 3.26 reads <prop k= v=>; newer ones read <Option>; both are written by QGIS 3.22
        for name, value in (("color", color), ("outline_color", outline), ("outline_width", "0.1"), ("style", "solid")):
            ET.SubElement(layer, "prop", k=name, v=value)
    ET.SubElement(rend, "rotation")
    ET.SubElement(rend, "sizescale")
    ET.SubElement(root, "blendMode").text = "0"
    ET.SubElement(root, "featureBlendMode").text = "0"
    ET.SubElement(root, "layerGeometryType").text = "2"
    return root


# -- SLD 1.0 -------------------------------------------------------------------------------------


def _sld_root(name: str) -> tuple[ET.Element, ET.Element]:
    ET.register_namespace("sld", SLD_NS)
    ET.register_namespace("ogc", OGC_NS)
    ET.register_namespace("xlink", XLINK_NS)
    ET.register_namespace("xsi", XSI_NS)
    root = ET.Element(f"{{{SLD_NS}}}StyledLayerDescriptor", {
        "version": "1.0.0",
        f"{{{XSI_NS}}}schemaLocation": "http://www.opengis.net/sld http://schemas.opengis.net/sld/1.0.0/StyledLayerDescriptor.xsd",
    })
    nl = ET.SubElement(root, f"{{{SLD_NS}}}NamedLayer")
    ET.SubElement(nl, f"{{{SLD_NS}}}Name").text = name
    us = ET.SubElement(nl, f"{{{SLD_NS}}}UserStyle")
    ET.SubElement(us, f"{{{SLD_NS}}}Title").text = name
    return root, ET.SubElement(us, f"{{{SLD_NS}}}FeatureTypeStyle")


def raster_sld(name: str, categories: Mapping[int, Category]) -> ET.Element:
    """SLD 1.0 RasterSymbolizer with a ``values`` ColorMap (one entry per class, labelled)."""
    root, fts = _sld_root(name)
    rule = ET.SubElement(fts, f"{{{SLD_NS}}}Rule")
    rs = ET.SubElement(rule, f"{{{SLD_NS}}}RasterSymbolizer")
    ET.SubElement(rs, f"{{{SLD_NS}}}Opacity").text = "1.0"
    cm = ET.SubElement(rs, f"{{{SLD_NS}}}ColorMap", type="values")
    for value, (label, rgba) in sorted(categories.items()):
        ET.SubElement(cm, f"{{{SLD_NS}}}ColorMapEntry", color=_hex(rgba), quantity=str(value), label=label,
                      opacity=f"{rgba[3] / 255:g}")
    return root


def vector_sld(name: str, field: str, categories: Mapping[str, Category]) -> ET.Element:
    """SLD 1.0: one Rule per value of ``field`` (PropertyIsEqualTo) with a PolygonSymbolizer."""
    root, fts = _sld_root(name)
    for value, (label, rgba) in categories.items():
        rule = ET.SubElement(fts, f"{{{SLD_NS}}}Rule")
        ET.SubElement(rule, f"{{{SLD_NS}}}Name").text = label
        ET.SubElement(rule, f"{{{SLD_NS}}}Title").text = label
        flt = ET.SubElement(rule, f"{{{OGC_NS}}}Filter")
        eq = ET.SubElement(flt, f"{{{OGC_NS}}}PropertyIsEqualTo")
        ET.SubElement(eq, f"{{{OGC_NS}}}PropertyName").text = field
        ET.SubElement(eq, f"{{{OGC_NS}}}Literal").text = value
        ps = ET.SubElement(rule, f"{{{SLD_NS}}}PolygonSymbolizer")
        fill = ET.SubElement(ps, f"{{{SLD_NS}}}Fill")
        ET.SubElement(fill, f"{{{SLD_NS}}}CssParameter", name="fill").text = _hex(rgba)
        ET.SubElement(fill, f"{{{SLD_NS}}}CssParameter", name="fill-opacity").text = f"{rgba[3] / 255:g}"
        stroke = ET.SubElement(ps, f"{{{SLD_NS}}}Stroke")
        ET.SubElement(stroke, f"{{{SLD_NS}}}CssParameter", name="stroke").text = "#232323"
        ET.SubElement(stroke, f"{{{SLD_NS}}}CssParameter", name="stroke-width").text = "0.5"
    return root


# -- writers -------------------------------------------------------------------------------------

QML_DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"


def write_raster_styles(raster: str | Path, categories: Mapping[int, Category], nodata_name: str = "not classified") -> list[Path]:
    """``<raster>.aux.xml``, ``<stem>.qml`` and ``<stem>.sld`` beside ``raster``."""
    raster = Path(raster)
    return [
        _write_xml(raster.with_name(raster.name + ".aux.xml"), aux_xml(categories, nodata_name)),
        _write_xml(raster.with_suffix(".qml"), raster_qml(categories), QML_DOCTYPE),
        _write_xml(raster.with_suffix(".sld"), raster_sld(raster.stem, categories), '<?xml version="1.0" encoding="UTF-8"?>'),
    ]


def vector_style_texts(name: str, field: str, categories: Mapping[str, Category]) -> tuple[str, str]:
    """(QML, SLD) documents of a categorized polygon style, as text (for files or a GeoPackage)."""
    q, s = vector_qml(field, categories), vector_sld(name, field, categories)
    ET.indent(q)
    ET.indent(s)
    return (QML_DOCTYPE + "\n" + ET.tostring(q, encoding="unicode") + "\n",
            '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(s, encoding="unicode") + "\n")


def write_vector_styles(stem_path: str | Path, field: str, categories: Mapping[str, Category]) -> list[Path]:
    """``<stem>.qml`` and ``<stem>.sld`` for the vector layers named ``<stem>.*``."""
    p = Path(stem_path)
    qml, sld = vector_style_texts(p.name, field, categories)
    out = []
    for suffix, text in ((".qml", qml), (".sld", sld)):
        target = p.with_name(p.name + suffix)
        with atomic_path(target) as tmp:
            tmp.write_text(text, encoding="utf-8")
        out.append(target)
    return out


def class_categories(labels: list[str], unknown: bool = True) -> dict[int, Category]:
    """classes.tif categories: class index -> (tag, colour); 254 unknown."""
    from landuse.report.palette import UNKNOWN_COLOR, UNKNOWN_VALUE, class_colors, hex_to_rgb

    colors = class_colors(labels)
    cats: dict[int, Category] = {i: (t, (*hex_to_rgb(colors[t]), 255)) for i, t in enumerate(labels)}
    if unknown:
        cats[UNKNOWN_VALUE] = ("unknown", (*hex_to_rgb(UNKNOWN_COLOR), 255))
    return cats
