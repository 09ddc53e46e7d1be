"""Generator of synthetic two-period sample imagery with known truth per plot.

A small "county" in UTM zone 11N at 1 m: NAIP-like RGBN uint8 GeoTIFFs (tiled 256, DEFLATE, nodata
0) of irrigated fields (row texture, varied crop tones, centre pivots, dirt field roads), desert
(bare ground, sparse shrubs, washes) and a town of residential blocks (streets, roofs, driveways,
lawns, trees, pools). Between the two periods the town grows over neighbouring Cultivated and
Barren plots. The raster origin is deliberately off the 224 m plot grid (partial plots at the edges)
and one corner is nodata.

Every texture is a pure function of ground coordinates and the seed (hashed lattices, value
noise), so the imagery is rendered strip by strip with vectorised numpy, seamlessly and
deterministically, at any size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from affine import Affine

from landuse.errors import InputError, OutputExistsError
from landuse.fileio import atomic_path
from landuse.grid import PlotGrid

CLASSES = ("Barren", "Cultivated", "Developed")
BARREN, CULTIVATED, DEVELOPED = 0, 1, 2
NODATA_CLASS = 255
DEFAULT_CRS = "EPSG:32611"
PLOT_M = 224
# Top-left of the sample area: near El Centro, Imperial County (UTM 11N), deliberately off the
# 224 m grid by (97 m, 61 m) so edge plots are partial.
_GRID_X0, _GRID_Y0 = 224 * 2834, 224 * 16201
ORIGIN_OFFSET_M = (97.0, 61.0)
DEFAULT_PLOTS_X, DEFAULT_PLOTS_Y, DEFAULT_SEED = 7, 5, 2016
BLOCK_PX = 1024  # rendering / writing block side (a multiple of the 256 px tiles): bounds memory
SENSOR_NOISE = 1.5  # +- grey levels of uniform per-pixel noise (shared by the bands)

# ------------------------------------------------------------------------------------------------
# hashing and noise: pure functions of integer lattices and the seed
# ------------------------------------------------------------------------------------------------

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def _mix(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(30))
    h = h * _M1
    h = h ^ (h >> np.uint64(27))
    h = h * _M2
    return h ^ (h >> np.uint64(31))


def _rand(seed: int, salt: int, *ints: np.ndarray | int) -> np.ndarray:
    """Uniform [0, 1) float64, a pure function of (seed, salt, integer coordinates)."""
    with np.errstate(over="ignore"):
        h = _mix(np.asarray((seed * 1_000_003 + salt) & 0xFFFFFFFFFFFF, dtype=np.uint64) * _GOLD + _GOLD)
        for a in ints:
            h = _mix(h ^ (np.asarray(a, dtype=np.int64).astype(np.uint64) * _GOLD))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def _rand2(seed: int, salt: int, cx: np.ndarray, cy: np.ndarray, pad: int = 0):
    """:func:`_rand` of 2-D cells, computed once per distinct cell (a table) and gathered.

    Returns a function ``(dx, dy) -> values`` giving the cells offset by up to ``pad``."""
    if cx.size == 0:
        return lambda dx=0, dy=0: np.zeros(0)
    x0, y0 = int(cx.min()), int(cy.min())
    nx, ny = int(cx.max()) - x0 + 1 + pad, int(cy.max()) - y0 + 1 + pad
    if nx * ny > 4 * cx.size + 1024:  # sparse cells: hash directly
        return lambda dx=0, dy=0: _rand(seed, salt, cx + dx, cy + dy)
    gx, gy = np.meshgrid(np.arange(x0, x0 + nx), np.arange(y0, y0 + ny))
    table = _rand(seed, salt, gx, gy).astype(np.float32).ravel()
    base = (cy - y0) * nx + (cx - x0)
    return lambda dx=0, dy=0: table[base + (dy * nx + dx)]


def _rand_cells(seed: int, salt: int, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) per 2-D cell (float32), equal to :func:`_rand` of the cell."""
    return _rand2(seed, salt, cx, cy)()


def _noise(seed: int, salt: int, x: np.ndarray, y: np.ndarray, scale: float) -> np.ndarray:
    """Smooth value noise in [0, 1) with features of about ``scale`` metres."""
    fx, fy = x / scale, y / scale
    ix, iy = np.floor(fx), np.floor(fy)
    tx, ty = (fx - ix).astype(np.float32), (fy - iy).astype(np.float32)
    tx = tx * tx * (3 - 2 * tx)
    ty = ty * ty * (3 - 2 * ty)
    corner = _rand2(seed, salt, ix.astype(np.int64), iy.astype(np.int64), pad=1)
    a, b, c, d = corner(0, 0), corner(1, 0), corner(0, 1), corner(1, 1)
    top = a + (b - a) * tx
    return top + ((c + (d - c) * tx) - top) * ty


def _fbm(seed: int, salt: int, x: np.ndarray, y: np.ndarray, scale: float, octaves: int = 3) -> np.ndarray:
    """Fractal noise in about [0, 1): ``octaves`` of value noise halving in scale."""
    total: np.ndarray | float = 0.0
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        total = total + amp * _noise(seed, salt + 101 * o, x, y, scale / 2**o)
        norm += amp
        amp *= 0.5
    return np.asarray(total) / norm


def _cells(x: np.ndarray, y: np.ndarray, size: float, ox: float | np.ndarray = 0.0, oy: float | np.ndarray = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Integer cell indices and local coordinates in a lattice of ``size`` metres."""
    cx, cy = np.floor((x - ox) / size), np.floor((y - oy) / size)
    return cx.astype(np.int64), cy.astype(np.int64), x - ox - cx * size, y - oy - cy * size


def _blob_layer(seed, salt, x, y, cell, prob, rmin, rmax):
    """Round blobs (shrubs, tree crowns) on a jittered lattice: (coverage 0..1, inside-shadow 0..1,
    per-blob random) for each point. One blob at most per cell; radius < cell / 2."""
    cx, cy, lx, ly = _cells(x, y, cell)
    present = _rand_cells(seed, salt, cx, cy) < prob
    r = rmin + (rmax - rmin) * _rand_cells(seed, salt + 1, cx, cy)
    px = r + (cell - 2 * r) * _rand_cells(seed, salt + 2, cx, cy)
    py = r + (cell - 2 * r) * _rand_cells(seed, salt + 3, cx, cy)
    d = np.hypot(lx - px, ly - py)
    cover = np.clip(r - d + 0.5, 0.0, 1.0) * present
    # shadow cast to the north-west by ~0.6 r (morning sun from the south-east)
    ds = np.hypot(lx - px + 0.6 * r, ly - py + 0.6 * r)
    shadow = np.clip(r - ds + 0.5, 0.0, 1.0) * present * (1 - cover)
    return cover, shadow, _rand_cells(seed, salt + 4, cx, cy)


def _mixc(base: np.ndarray, colour, alpha) -> np.ndarray:
    """Blend ``colour`` ((4,) or (n, 4)) over ``base`` (n, 4, float32) in place where ``alpha`` > 0."""
    alpha = np.asarray(alpha)
    idx = np.flatnonzero(alpha > 0)
    if idx.size == 0:
        return base
    a = alpha[idx].astype(np.float32)[:, None]
    col = np.asarray(colour, dtype=np.float32)
    if col.ndim == 2:
        col = col[idx]
    base[idx] = base[idx] * (1 - a) + col * a
    return base


def _palette(choice: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Colours (n, 4) picked by a uniform [0, 1) ``choice`` from a (k, 4) table."""
    idx = np.minimum((choice * len(colours)).astype(np.int64), len(colours) - 1)
    return colours[idx]


# ------------------------------------------------------------------------------------------------
# textures: (seed, period, x, y) -> RGBN float (n, 4); x east, y south, metres
# ------------------------------------------------------------------------------------------------


def _barren(seed: int, period: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Desert: pale sand with mottling, sparse dark shrubs, washes with denser shrubs."""
    n = x.size
    tone = _fbm(seed, 10, x, y, 600.0, 2)
    sand = np.array([188.0, 181.0, 169.0, 196.0])
    grey = np.array([176.0, 175.0, 170.0, 186.0])
    pink = np.array([194.0, 179.0, 164.0, 200.0])
    base = _mixc(np.tile(sand.astype(np.float32), (n, 1)), grey, np.clip(tone * 1.6 - 0.5, 0, 1))
    base = _mixc(base, pink, np.clip(0.8 - tone * 1.6, 0, 1) * 0.6)
    mott = (_fbm(seed, 11, x, y, 40.0, 3) - 0.5) * 8.0 + (_noise(seed, 12, x, y, 4.0) - 0.5) * 4.0
    base += mott[:, None]
    # washes: sinuous channels where a noise field crosses its median
    # washes: sinuous channels where a noise field (stretched: they run roughly west-east)
    # crosses its median
    w = np.abs(_fbm(seed, 13, x * 0.35, y, 160.0, 3) - 0.5)
    width = 0.004 + 0.008 * _noise(seed, 14, x, y, 120.0)
    channel = np.clip((width - w) / 0.004, 0, 1)
    bank = np.clip((2.5 * width - w) / (1.5 * width), 0, 1)
    base = _mixc(base, [203.0, 196.0, 184.0, 206.0], channel * 0.8)
    # faint streaks (wind / sheet flow)
    streak = np.sin((x * 0.8 + y * 0.3) / 7.0 + 6 * _noise(seed, 15, x, y, 80.0)) * 1.5
    base += streak[:, None]
    density = 0.04 + 0.3 * _noise(seed, 16, x, y, 150.0) ** 2 + 0.4 * bank
    cover, shadow, pick = _blob_layer(seed, 17, x, y, 5.0, density, 0.5, 1.5)
    shrub = _palette(pick, np.array([[112.0, 104.0, 90.0, 150.0], [132.0, 120.0, 100.0, 160.0], [96.0, 94.0, 84.0, 150.0]]))
    base = _mixc(base, [150.0, 143.0, 133.0, 160.0], shadow * 0.5)
    base = _mixc(base, shrub, cover * 0.9)
    return base


_CROPS = np.array(
    [  # R, G, B, N ; row amplitude
        [58.0, 75.0, 63.0, 185.0, 3.0],  # dense dark green (alfalfa, sugar beet)
        [68.0, 85.0, 70.0, 195.0, 4.0],
        [82.0, 99.0, 77.0, 200.0, 5.0],  # green
        [100.0, 110.0, 88.0, 175.0, 7.0],  # young / sparse green
        [122.0, 104.0, 92.0, 100.0, 10.0],  # ploughed brown
        [102.0, 88.0, 80.0, 85.0, 8.0],  # wet dark soil
        [148.0, 132.0, 115.0, 125.0, 8.0],  # dry soil
        [176.0, 160.0, 138.0, 150.0, 4.0],  # fallow tan
        [156.0, 145.0, 118.0, 145.0, 5.0],  # stubble / hay
    ]
)
_CROP_P = np.cumsum([0.16, 0.14, 0.16, 0.1, 0.12, 0.07, 0.09, 0.1, 0.06])


def _cultivated(seed: int, period: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Irrigated fields: quarter-mile field lattice, dirt roads, crops with rows, centre pivots."""
    cell = 402.0
    ox, oy = 150.0 + 100 * _rand(seed, 20, 0), 90.0 + 100 * _rand(seed, 21, 0)
    cx, cy, lx, ly = _cells(x, y, cell, ox, oy)
    pivot = _rand_cells(seed, 22, cx, cy) < 0.12
    split = _rand_cells(seed, 23, cx, cy)
    # fields: whole cell, halves across x or across y
    half = np.where(split < 0.3, 0, np.where(split < 0.65, 1 + (lx > cell / 2), 3 + (ly > cell / 2)))
    half = np.where(pivot, 0, half)
    fid = cx * 7 + half
    crop_u = _rand_cells(seed, 24 + 1000 * period, fid, cy)
    crop = np.searchsorted(_CROP_P, crop_u * _CROP_P[-1], side="right")
    crop = np.minimum(crop, len(_CROPS) - 1)
    c = _CROPS[crop]
    jitter = (_rand_cells(seed, 25 + 1000 * period, fid, cy) - 0.5) * 14.0
    base = (c[:, :4] + jitter[:, None] * np.array([1.0, 1.0, 0.8, 1.5])).astype(np.float32)
    # rows: parallel to the field's long side (or circles in pivots)
    along_x = _rand_cells(seed, 26, fid, cy) < 0.5
    period_m = 2.0 + 3.0 * _rand_cells(seed, 27, fid, cy)
    r = np.hypot(lx - cell / 2, ly - cell / 2)
    s = np.where(pivot, r, np.where(along_x, ly, lx))
    rows = np.sin(2 * np.pi * s / period_m)
    base += (rows * c[:, 4])[:, None] * np.array([1.0, 1.0, 1.0, 1.2])
    # within-field variability: irrigation patterns, soil moisture
    var = (_fbm(seed, 28 + period, x, y, 90.0, 3) - 0.5) * 18.0 + (_noise(seed, 29, x, y, 3.0) - 0.5) * 4.0
    base += var[:, None]
    # wheel tracks every 25-40 m across rows in some fields
    tr = _rand_cells(seed, 30, fid, cy)
    tp = 25.0 + 15.0 * tr
    t = np.where(along_x, lx, ly) % tp
    base = _mixc(base, [150.0, 138.0, 118.0, 120.0], (t < 1.2) * (tr < 0.4) * 0.3)
    # centre pivot corners: fallow / desert-like soil outside the circle
    outside = pivot & (r > cell / 2 - 8)
    base = _mixc(base, [176.0, 162.0, 140.0, 150.0], outside * 1.0)
    # field borders: dirt roads on the cell edges, a ditch, narrower berms between halves
    e = np.minimum(np.minimum(lx, cell - lx), np.minimum(ly, cell - ly))
    hb = np.where(half == 0, 99.0, np.where(half < 3, np.abs(lx - cell / 2), np.abs(ly - cell / 2)))
    road = np.clip(5.5 - e, 0, 1)
    berm = np.clip(1.8 - hb, 0, 1)
    dirt = np.array([182.0, 168.0, 146.0, 165.0]) + ((_noise(seed, 31, x, y, 2.0) - 0.5) * 10)[:, None]
    base = _mixc(base, dirt, np.maximum(road, berm))
    ditch = np.clip(1.2 - np.abs(e - 7.0), 0, 1) * (_rand_cells(seed, 32, cx, cy) < 0.6)
    base = _mixc(base, [95.0, 100.0, 90.0, 120.0], ditch * 0.7)
    # occasional trees / shrubs along roads
    cover, shadow, _ = _blob_layer(seed, 33, x, y, 9.0, np.where(e < 12, 0.06, 0.0), 1.5, 3.5)
    base = _mixc(base, [70.0, 72.0, 60.0, 110.0], shadow * 0.5)
    base = _mixc(base, [62.0, 78.0, 55.0, 170.0], cover)
    return base


_ROOFS = np.array(
    [
        [118.0, 118.0, 116.0, 110.0],
        [146.0, 144.0, 140.0, 135.0],
        [92.0, 92.0, 95.0, 90.0],
        [135.0, 135.0, 138.0, 125.0],
        [162.0, 160.0, 158.0, 150.0],
        [110.0, 112.0, 118.0, 100.0],
        [168.0, 100.0, 80.0, 130.0],  # terracotta tile
        [150.0, 92.0, 78.0, 120.0],
        [132.0, 108.0, 92.0, 120.0],  # brown shingle
        [190.0, 182.0, 168.0, 175.0],  # beige
        [214.0, 214.0, 208.0, 200.0],  # white / light
        [108.0, 100.0, 98.0, 100.0],
    ]
)
_LAWNS = np.array(
    [
        [92.0, 104.0, 76.0, 190.0],
        [104.0, 112.0, 84.0, 180.0],
        [132.0, 128.0, 106.0, 150.0],  # dry
        [150.0, 144.0, 128.0, 150.0],  # dirt / gravel / patio
        [116.0, 116.0, 96.0, 165.0],
    ]
)


def _developed(seed: int, period: int, x: np.ndarray, y: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Residential blocks: streets and sidewalks, lots with roofs, driveways, lawns, trees, pools.

    ``new`` marks points of subdivisions built between the periods: sparser, smaller trees,
    lighter roofs, some lots still graded dirt.
    """
    bx, by, street = 196.0, 92.0, 12.0
    ox, oy = 37.0 + 50 * _rand(seed, 40, 0), 21.0 + 40 * _rand(seed, 41, 0)
    bxi = np.floor((x - ox) / bx).astype(np.int64)
    byi = np.floor((y - oy) / by).astype(np.int64)
    a = x - ox - bxi * bx  # 0..bx within block cell (street occupies the first `street` m)
    b = y - oy - byi * by
    in_street = (a < street) | (b < street)
    sidewalk = ((a >= street) & (a < street + 1.6)) | ((b >= street) & (b < street + 1.6)) | (a > bx - 1.6) | (b > by - 1.6)
    # lots: two rows back to back, lot width per block
    depth = (by - street) / 2
    lotw = 13.0 + 4.0 * _rand_cells(seed, 42, bxi, byi)
    aa = a - street
    bb = b - street
    row = (bb > depth).astype(np.int64)
    lv = np.where(row == 0, bb, (by - street) - bb)  # distance from the lot's street
    k = np.floor(aa / lotw).astype(np.int64)
    lu = aa - k * lotw
    lot = bxi * 64 + k * 2 + row
    lot_r = [_rand_cells(seed, 43 + i, lot, byi) for i in range(8)]
    # ground: lawn / dry yard
    lawn = _palette(lot_r[0], _LAWNS)
    base = (lawn + ((_noise(seed, 44, x, y, 3.0) - 0.5) * 12)[:, None]).astype(np.float32)
    # house: front setback 5-8 m, depth 12-18 m, side yards 1.5-2.5 m
    front = 5.0 + 3.0 * lot_r[1]
    hd = 13.0 + 7.0 * lot_r[2]
    side = 1.0 + 0.8 * lot_r[3]
    drive_left = lot_r[4] < 0.5
    dw = 3.2
    hx0 = np.where(drive_left, side + dw, side)
    hx1 = np.where(drive_left, lotw - side, lotw - side - dw)
    house = (lu > hx0) & (lu < hx1) & (lv > front) & (lv < front + hd)
    # garage / granny flat at the back of half the lots
    back = (lot_r[7] > 0.5) & (lu > lotw - side - 6.5) & (lu < lotw - side) & (lv > front + hd + 5) & (lv < front + hd + 11)
    house |= back & ~new
    shadow = (lu - 2.0 > hx0) & (lu - 2.0 < hx1) & (lv - 2.0 > front) & (lv - 2.0 < front + hd) & ~house
    drive = np.where(drive_left, lu < side + dw, lu > lotw - side - dw) & (lu > 0.3) & (lu < lotw - 0.3) & (lv < front + hd)
    pool = (lot_r[5] < np.where(new, 0.05, 0.18)) & (lv > front + hd + 3) & (lv < front + hd + 8) & (np.abs(lu - lotw / 2) < 3)
    base = _mixc(base, [178.0, 174.0, 166.0, 160.0], drive * 1.0)
    base = _mixc(base, [196.0, 194.0, 186.0, 170.0], pool * 0.35)
    base = _mixc(base, [70.0, 168.0, 188.0, 70.0], pool * 0.9)
    # backyard fences / walls: thin light lines on lot edges
    fence = (np.minimum(lu, lotw - lu) < 0.5) & (lv > front)
    base = _mixc(base, [160.0, 156.0, 148.0, 150.0], fence * 0.6)
    base = _mixc(base, [58.0, 60.0, 62.0, 60.0], shadow * 0.75)
    h = np.flatnonzero(house)
    roof = _palette(np.where(new[h], 0.3 + 0.5 * lot_r[6][h], lot_r[6][h]), _ROOFS)
    # hip roofs: the faces towards the sun are brighter
    mid = front[h] + hd[h] / 2
    lvh, luh = lv[h], lu[h]
    face = np.where(lvh < mid, 1.07, 0.93) * np.where(np.abs(luh - (hx0[h] + hx1[h]) / 2) < np.abs(lvh - mid) * 0.6, 1.0, 1.04)
    base[h] = roof * face[:, None] + ((_noise(seed, 45, x[h], y[h], 1.5) - 0.5) * 8)[:, None]
    # graded lots (under construction) in new subdivisions
    graded = new & (lot_r[7] < 0.15)
    base = _mixc(base, [188.0, 172.0, 150.0, 165.0], graded * 1.0)
    # trees: yards and parkways, fewer and smaller in new subdivisions
    tp = np.where(new, 0.1, 0.5)
    tc, ts, tpick = _blob_layer(seed, 46, x, y, 8.0, tp, 1.5, 3.8)
    tc = np.where(new, tc * 0.7, tc)
    base = _mixc(base, [52.0, 56.0, 50.0, 70.0], ts * 0.8 * ~house)
    t = np.flatnonzero(tc > 0)
    tree = _palette(tpick[t], np.array([[50.0, 68.0, 46.0, 165.0], [64.0, 82.0, 56.0, 175.0], [78.0, 88.0, 64.0, 170.0]]))
    tree += ((_noise(seed, 47, x[t], y[t], 1.2) - 0.5) * 22)[:, None]
    a = tc[t].astype(np.float32)[:, None]
    base[t] = base[t] * (1 - a) + tree * a
    # streets and sidewalks on top of everything
    _mixc(base, [188.0, 186.0, 180.0, 170.0], (sidewalk & ~in_street) * 0.85)
    st = np.flatnonzero(in_street)
    base[st] = np.array([96.0, 98.0, 102.0, 85.0]) + ((_noise(seed, 48, x[st], y[st], 6.0) - 0.5) * 10)[:, None]
    # a few parked cars on streets
    car_cell_x, car_cell_y, clx, cly = _cells(x, y, 6.0, 1.0, 2.0)
    car = in_street & (_rand_cells(seed, 49, car_cell_x, car_cell_y) < 0.06) & (np.abs(clx - 3) < 2.2) & (np.abs(cly - 3) < 1.0)
    car_col = _palette(_rand_cells(seed, 50, car_cell_x, car_cell_y), np.array([[210.0, 210, 210, 190], [40, 40, 45, 40], [150, 30, 30, 60], [120, 125, 130, 110]]))
    base[car] = car_col[car]
    return base


# ------------------------------------------------------------------------------------------------
# layout and truth
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleLayout:
    """The sample area: raster georeferencing, its plot grid and the class of every plot per period."""

    transform: Affine
    width: int
    height: int
    grid: PlotGrid
    classes: tuple[np.ndarray, np.ndarray]  # (grid.height, grid.width) uint8 per period
    new_dev: np.ndarray  # plots developed between the periods
    crs: str = DEFAULT_CRS


def make_layout(plots_x: int = DEFAULT_PLOTS_X, plots_y: int = DEFAULT_PLOTS_Y, seed: int = DEFAULT_SEED) -> SampleLayout:
    """Raster extent (``plots_x`` x ``plots_y`` plots of imagery, off the grid) and plot classes."""
    if plots_x < 3 or plots_y < 3:
        raise InputError(f"`plots_x` / `plots_y` must be at least 3, got {plots_x} x {plots_y}")
    if plots_x * plots_y > 40_000:
        raise InputError(f"{plots_x} x {plots_y} plots is too large for samples (limit 40,000 plots)")
    x0, y0 = _GRID_X0 + ORIGIN_OFFSET_M[0], _GRID_Y0 - ORIGIN_OFFSET_M[1]
    transform = Affine(1.0, 0.0, x0, 0.0, -1.0, y0)
    width, height = plots_x * PLOT_M, plots_y * PLOT_M
    grid = PlotGrid.from_bounds((x0, y0 - height, x0 + width, y0), DEFAULT_CRS)
    gh, gw = grid.shape
    rr, cc = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
    # desert on the east side behind a wavy edge; fields elsewhere
    wave = _fbm(seed, 1, rr.astype(float), cc.astype(float), 6.0, 2) - 0.5
    east = (cc + 0.5) / gw + 0.35 * wave
    c16 = np.where(east > 0.68, BARREN, CULTIVATED).astype(np.uint8)
    # towns: the first on the desert edge, more on larger maps
    n_towns = max(1, round(gh * gw / 150))
    centres = [(gh * 0.5, gw * 0.62)]
    for t in range(1, n_towns):
        centres.append((float(gh * _rand(seed, 2, t)[()]), float(gw * _rand(seed, 3, t)[()])))
    c22 = c16.copy()
    for t, (tr, tc) in enumerate(centres):
        r0 = (1.6 if t == 0 else 1.2) + (0.8 * _rand(seed, 4, t)[()] if t else 0.0)
        jag = (_rand(seed, 5 + t, rr, cc) - 0.5) * 0.8
        d = np.hypot(rr + 0.5 - tr, (cc + 0.5 - tc) * 0.9) + jag
        c16[d < r0] = DEVELOPED
        # growth: about one plot outward, in two sectors (along roads)
        ang = np.arctan2(rr + 0.5 - tr, cc + 0.5 - tc)
        sector = (np.cos(ang - 2 * np.pi * _rand(seed, 6, t)[()]) > 0.5) | (np.cos(ang - 0.3) > 0.7)
        c22[(d < r0) | ((d < r0 + 1.1) & sector)] = DEVELOPED
    c22 = np.where(c16 == DEVELOPED, DEVELOPED, c22).astype(np.uint8)
    new_dev = (c22 == DEVELOPED) & (c16 != DEVELOPED)
    return SampleLayout(transform, width, height, grid, (c16, c22), new_dev)


def _nodata_corner(rows: np.ndarray, cols: np.ndarray, width: int, height: int) -> np.ndarray:
    """True in the nodata triangle at the bottom-right corner (a quarter-quad edge)."""
    return (width - cols) + (height - rows) < 0.15 * min(width, height) + 0.06 * max(width, height)


def _render_block(
    layout: SampleLayout, seed: int, period: int, row0: int, nrows: int, col0: int = 0, ncols: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """RGBN uint8 (4, nrows, ncols) of a block of one period and its pixel class map."""
    w = layout.width
    ncols = w - col0 if ncols is None else ncols
    rows = np.arange(row0, row0 + nrows, dtype=np.float64)[:, None] + 0.5
    cols = np.arange(col0, col0 + ncols, dtype=np.float64)[None, :] + 0.5
    X = layout.transform.c + cols
    Y = layout.transform.f - rows
    g = layout.grid
    pr = np.floor((g.transform.f - Y) / g.plot_size).astype(np.int64)
    pc = np.floor((X - g.transform.c) / g.plot_size).astype(np.int64)
    pr, pc = np.broadcast_arrays(pr, pc)
    cls = layout.classes[period][pr, pc]
    new = layout.new_dev[pr, pc] if period == 1 else np.zeros_like(cls, dtype=bool)
    nod = _nodata_corner(rows, cols, w, layout.height) & np.ones_like(cls, dtype=bool)
    cls = np.where(nod, NODATA_CLASS, cls).astype(np.uint8)
    # ground coordinates (metres east / south of the area's corner) drive every texture
    gx = np.broadcast_to(cols, cls.shape)
    gy = np.broadcast_to(rows, cls.shape)
    out = np.zeros((nrows, ncols, 4), dtype=np.float32)
    for k, fn in ((BARREN, _barren), (CULTIVATED, _cultivated), (DEVELOPED, _developed)):
        m = cls == k
        if m.any():
            args = (new[m],) if k == DEVELOPED else ()
            out[m] = fn(seed, period, gx[m], gy[m], *args)
    valid = cls != NODATA_CLASS
    # sensor noise and the period's radiometry (a different flight, sun and processing)
    rng = np.random.default_rng([seed, period, row0, col0])
    out *= np.array(((1.0, 1.0, 1.0, 1.0), (1.035, 1.02, 0.99, 1.05))[period], dtype=np.float32)
    out += (rng.random((nrows, ncols, 1), dtype=np.float32) - 0.5) * (2 * SENSOR_NOISE)
    np.clip(np.rint(out, out=out), 1, 255, out=out)
    out[~valid] = 0
    return out.astype(np.uint8).transpose(2, 0, 1), cls


def render(layout: SampleLayout, seed: int, period: int, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """RGBN uint8 (4, h, w) of a window (row_off, col_off, height, width) of one period."""
    r0, c0, h, w = window or (0, 0, layout.height, layout.width)
    return _render_block(layout, seed, period, r0, h, c0, w)[0]


def truth_table(layout: SampleLayout, years: tuple[int, int]):
    """GeoDataFrame (EPSG:4326) of every plot: plot_id, row, col, class per year, changed,
    purity (share of the plot's valid pixels in its class) and valid_fraction."""
    import geopandas as gpd

    g = layout.grid
    h, w = layout.height, layout.width
    # valid pixels per plot, by blocks of rows (classes follow plot boundaries, so a plot's
    # pixels are all of its class; only the nodata corner and the raster edges cut plots)
    n_valid = np.zeros(g.size, dtype=np.int64)
    cols = np.arange(w)[None, :] + 0.5
    pc = np.floor((layout.transform.c + cols - g.transform.c) / g.plot_size).astype(np.int64)
    for r0 in range(0, h, BLOCK_PX):
        rows = np.arange(r0, min(h, r0 + BLOCK_PX))[:, None] + 0.5
        pr = np.floor((g.transform.f - (layout.transform.f - rows)) / g.plot_size).astype(np.int64)
        valid = ~_nodata_corner(rows, cols, w, h)
        idx = np.broadcast_to(pr * g.width + pc, valid.shape)[valid]
        n_valid += np.bincount(idx, minlength=g.size)
    full = g.plot_size**2
    data: dict[str, object] = {}
    rr, cc = g.all_rows_cols()
    data["plot_id"] = g.plot_ids(rr, cc)
    data["row"], data["col"] = rr, cc
    names = np.array(CLASSES + ("",), dtype=object)
    has = n_valid > 0
    for year, classes in zip(years, layout.classes, strict=True):
        data[f"class_{year}"] = np.where(has, names[classes.ravel()], None)
        data[f"purity_{year}"] = has.astype(np.float64)
    data["changed"] = np.array(data[f"class_{years[0]}"] != data[f"class_{years[1]}"], dtype=bool)
    data["valid_fraction"] = (n_valid / full).round(4)
    return gpd.GeoDataFrame(data, geometry=g.footprints(rr, cc, to_crs="EPSG:4326"), crs="EPSG:4326")


# ------------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleSet:
    """What :func:`generate` wrote."""

    rasters: tuple[Path, Path]
    truth: Path
    grid: PlotGrid
    years: tuple[int, int]


def write_raster(layout: SampleLayout, seed: int, period: int, path: Path, year: int) -> Path:
    """Write one period as a NAIP-like RGBN GeoTIFF (tiled 256, DEFLATE, nodata 0), atomically."""
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.windows import Window

    tmp = path.with_name(f".{path.name}.tmp")
    profile = dict(
        driver="GTiff",
        width=layout.width,
        height=layout.height,
        count=4,
        dtype="uint8",
        crs=layout.crs,
        transform=layout.transform,
        nodata=0,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
        predictor=2,
        zlevel=9,
        interleave="pixel",
        photometric="RGB",
    )
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined]
        for i, name in enumerate(("red", "green", "blue", "nir"), start=1):
            dst.set_band_description(i, name)
        dst.update_tags(
            SAMPLE="landuse synthetic sample imagery", SAMPLE_SEED=str(seed), SAMPLE_YEAR=str(year), BANDS="R,G,B,NIR"
        )
        for r0 in range(0, layout.height, BLOCK_PX):
            for c0 in range(0, layout.width, BLOCK_PX):
                h, w = min(BLOCK_PX, layout.height - r0), min(BLOCK_PX, layout.width - c0)
                img, _ = _render_block(layout, seed, period, r0, h, c0, w)
                dst.write(img, window=Window(c0, r0, w, h))
    tmp.replace(path)
    return path


def generate(
    out_dir: str | Path,
    plots_x: int = DEFAULT_PLOTS_X,
    plots_y: int = DEFAULT_PLOTS_Y,
    seed: int = DEFAULT_SEED,
    years: tuple[int, int] = (2016, 2022),
    overwrite: bool = False,
) -> SampleSet:
    """Write ``<year>.tif`` for both periods and ``truth.geojson`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = (out / f"{years[0]}.tif", out / f"{years[1]}.tif")
    truth_path = out / "truth.geojson"
    for p in (*paths, truth_path):
        if p.exists() and not overwrite:
            raise OutputExistsError(f"{p} exists; pass `overwrite=True` to replace it or choose another `out`")
    layout = make_layout(plots_x, plots_y, seed)
    for period, (p, year) in enumerate(zip(paths, years, strict=True)):
        write_raster(layout, seed, period, p, year)
    truth = truth_table(layout, years)
    with atomic_path(truth_path) as tmp:
        # the layer name as it always was (the file is committed in sample_rasters/)
        truth.to_file(tmp, driver="GeoJSON", layer=f".{truth_path.name}", COORDINATE_PRECISION=7)
    return SampleSet(paths, truth_path, layout.grid, years)


def area_summary(truth, years: tuple[int, int]) -> str:
    """Counts of plots per class and period, and the urbanization between them."""
    parts = []
    for y in years:
        vc = truth[f"class_{y}"].value_counts()
        parts.append(f"{y}: " + ", ".join(f"{c} {int(vc.get(c, 0))}" for c in CLASSES))
    ch = truth[truth["changed"]]
    trans = ch.groupby([f"class_{years[0]}", f"class_{years[1]}"]).size()
    parts.append("changed: " + (", ".join(f"{a} -> {b} {n}" for (a, b), n in trans.items()) or "none"))
    return "; ".join(parts)
