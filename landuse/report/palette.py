"""Fixed class colours shared by classes.tif, change.tif and the web map (one colour per tag)."""

from __future__ import annotations

# Known tags get fixed colours (NLCD-like); others take the fallback palette in order.
FIXED = {
    "barren": "#c8b47d",  # tan
    "cultivated": "#3c9b3c",  # green
    "developed": "#d7301f",  # red
    "forested": "#1b5e20",
    "forest": "#1b5e20",
    "shrub": "#b5a642",
    "grassland": "#dcd939",
    "water": "#2b6cb0",
    "wetlands": "#7fb3d5",
    "negative": "#9e9e9e",
}
FALLBACK = ["#7b3294", "#ff7f00", "#17becf", "#bcbd22", "#e377c2", "#8c564b", "#1f77b4", "#aec7e8"]


def class_colors(labels: list[str]) -> dict[str, str]:
    """Hex colour per tag: fixed for known tags, the fallback palette in order for the rest."""
    out: dict[str, str] = {}
    k = 0
    for t in labels:
        c = FIXED.get(t.lower())
        if c is None:
            c = FALLBACK[k % len(FALLBACK)]
            k += 1
        out[t] = c
    return out


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """'#rrggbb' -> (r, g, b)."""
    c = color.lstrip("#")
    return (int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16))

# Out-of-class ("unknown") plots: classes.tif value 254, change status ``unknown``.
UNKNOWN_COLOR = "#000000"
UNKNOWN_VALUE = 254
