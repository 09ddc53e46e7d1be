"""Plot labels from a land-cover raster (NLCD, Annual NLCD, Chesapeake, CORINE ...).

For every plot of a grid, the share of each land-cover class inside its footprint: the label
raster is reprojected onto a fine sub-grid of the plot grid (``sub`` x ``sub`` cells a plot) with
NEAREST resampling (codes are categories: never bilinear), then the cells are counted per plot.
The plot's label is the mapped class whose share reaches ``purity``; otherwise the plot is left
out with a reason:

* ``nodata``   - the largest part of the footprint is nodata / outside the label raster;
* ``unmapped`` - the largest part is codes the mapping leaves out (water, ice, wetlands ...);
* ``impure``   - the largest part is a mapped class, but below ``purity``.

(Ties go to ``nodata`` first, then ``unmapped``.) Shares are fractions of the whole footprint.

A mapping is YAML::

    name: NLCD
    nodata: [0]                 # codes meaning "no data" besides the raster's own nodata
    classes:                    # tag -> codes (ints or "a-b" ranges)
      Developed: [21, 22, 23, 24]
      Barren: [31]
    ignore: [11, 12, 90, 95]    # codes deliberately left out (reported as unmapped)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from landuse.errors import InputError, RasterError
from landuse.fileio import swap_in_dir
from landuse.grid import PlotGrid

DEFAULT_PURITY = 0.75
DEFAULT_SUB = 16  # sub-cells per plot side: 14 m cells for 224 m plots (NLCD is 30 m)
REASONS = ("labelled", "impure", "nodata", "unmapped")
_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$")
_RANGE_RE = re.compile(r"^\s*(-?\d+)\s*-\s*(-?\d+)\s*$")


def _expand_codes(values: Sequence[int | str], where: str) -> list[int]:
    out: list[int] = []
    for v in values:
        if isinstance(v, bool):
            raise ValueError(f"{where}: {v!r} is not a code")
        if isinstance(v, int):
            out.append(v)
            continue
        m = _RANGE_RE.match(str(v))
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise ValueError(f"{where}: range {v!r} runs backwards; write LOW-HIGH")
            out.extend(range(lo, hi + 1))
        elif str(v).strip().lstrip("-").isdigit():
            out.append(int(str(v).strip()))
        else:
            raise ValueError(f"{where}: {v!r} is not a code or a LOW-HIGH range")
    return out


class LabelMapping(BaseModel):
    """Land-cover codes -> plot tags (validated)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "custom"
    classes: dict[str, list[int | str]]
    ignore: list[int | str] = []
    nodata: list[int | str] = []

    @field_validator("classes")
    @classmethod
    def _check_classes(cls, v: dict[str, list[int | str]]) -> dict[str, list[int | str]]:
        if not v:
            raise ValueError("classes is empty; map at least one tag to its codes")
        for tag, codes in v.items():
            if not _TAG_RE.match(tag):
                raise ValueError(
                    f"tag {tag!r} cannot be a folder name; use letters, digits, space, '_', '-' or '.' "
                    "and start with a letter or digit"
                )
            if not codes:
                raise ValueError(f"tag {tag!r} has no codes")
            _expand_codes(codes, f"classes.{tag}")
        return v

    @model_validator(mode="after")
    def _check_overlaps(self) -> LabelMapping:
        seen: dict[int, str] = {}
        groups = [(f"classes.{t}", c) for t, c in self.classes.items()] + [("ignore", self.ignore), ("nodata", self.nodata)]
        for where, codes in groups:
            for code in _expand_codes(codes, where):
                if code in seen and seen[code] != where:
                    raise ValueError(f"code {code} is in both {seen[code]} and {where}; give each code one place")
                seen[code] = where
        return self

    @property
    def tags(self) -> list[str]:
        """Tags in mapping order."""
        return list(self.classes)

    def code_table(self) -> dict[int, int]:
        """code -> tag index (mapped codes only)."""
        return {c: i for i, t in enumerate(self.classes) for c in _expand_codes(self.classes[t], t)}

    def ignored_codes(self) -> set[int]:
        return set(_expand_codes(self.ignore, "ignore"))

    def nodata_codes(self) -> set[int]:
        return set(_expand_codes(self.nodata, "nodata"))


NLCD_MAPPING = LabelMapping(
    name="NLCD (seed lab grouping)",
    classes={
        "Barren": [31],
        "Cultivated": [81, 82],
        "Developed": ["21-24"],
        "Forested": ["41-43"],
        "Grassland": ["71-74"],
        "Shrub": [51, 52],
    },
    ignore=[11, 12, 90, 95],
    nodata=[0, 250],
)


def load_mapping(path: str | Path | None) -> LabelMapping:
    """The NLCD default (``path`` None) or a YAML mapping file, validated with a one-line error."""
    if path is None:
        return NLCD_MAPPING
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read mapping {path}: {exc.strerror}; check `mapping`") from None
    except yaml.YAMLError as exc:
        raise InputError(f"mapping {path} is not valid YAML ({str(exc).splitlines()[0]}); fix the file") from None
    if not isinstance(data, dict):
        raise InputError(f"mapping {path} must be a YAML mapping with 'classes:' (tag -> codes); see `landuse dataset --help`")
    try:
        return LabelMapping.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise InputError(f"mapping {path}: {loc}: {msg}; fix the file") from None


@dataclass
class PlotLabels:
    """Per-plot class shares and label decisions on a grid."""

    grid: PlotGrid
    tags: list[str]
    purity: float
    shares: np.ndarray  # float32 (K, H, W): share of each mapped tag in the footprint
    unmapped: np.ndarray  # float32 (H, W): share of codes left out by the mapping
    nodata: np.ndarray  # float32 (H, W): share of nodata / outside the raster
    label: np.ndarray  # int16 (H, W): tag index, -1 when left out
    reason: np.ndarray  # int8 (H, W): index into REASONS
    unknown_codes: dict[int, int] = field(default_factory=dict)  # codes in no group -> sub-cells

    def counts(self, mask: np.ndarray | None = None) -> dict[str, int]:
        """Plots per tag and per reason for leaving out (within ``mask``)."""
        m = np.ones(self.grid.shape, bool) if mask is None else mask
        out = {t: int(((self.label == i) & m).sum()) for i, t in enumerate(self.tags)}
        for k, name in enumerate(REASONS[1:], start=1):
            out[name] = int(((self.reason == k) & m).sum())
        return out


def plot_labels(
    label_path: str | Path,
    grid: PlotGrid,
    mapping: LabelMapping | None = None,
    purity: float = DEFAULT_PURITY,
    sub: int = DEFAULT_SUB,
    band: int = 1,
    chunk_rows: int = 64,
) -> PlotLabels:
    """Class shares and labels of every plot of ``grid`` from a categorical raster."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    mapping = mapping or NLCD_MAPPING
    if not 0.0 < purity <= 1.0:
        raise InputError(f"`purity` {purity} must lie in (0, 1]; e.g. 0.75")
    if sub < 1 or sub > 256:
        raise InputError(f"sub-grid {sub} must lie in 1..256 cells a plot side")
    table = mapping.code_table()
    ignored = mapping.ignored_codes()
    nodata_codes = mapping.nodata_codes()
    k = len(mapping.tags)
    h, w = grid.shape
    counts = np.zeros((k + 2, h, w), dtype=np.int64)  # tags..., unmapped, nodata
    unknown: dict[int, int] = {}
    path = Path(label_path)
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise RasterError(f"cannot open label raster {path}: {exc}; check `labels`") from None
    with src:
        if src.crs is None:
            raise RasterError(f"label raster {path} has no CRS; fix the file (gdal_edit.py -a_srs) or pass another `labels`")
        if not np.issubdtype(np.dtype(src.dtypes[band - 1]), np.integer):
            raise RasterError(f"label raster {path} holds {src.dtypes[band - 1]} values; a land-cover raster of integer class codes is needed")
        fill = -(2**31)
        src_nodata = src.nodatavals[band - 1]
        for r0 in range(0, h, chunk_rows):
            rh = min(chunk_rows, h - r0)
            dst = np.full((rh * sub, w * sub), fill, dtype=np.int32)
            reproject(
                source=rasterio.band(src, band),
                destination=dst,
                src_nodata=src_nodata,
                dst_transform=grid.plot_transform(r0, 0, sub),
                dst_crs=grid.crs,
                dst_nodata=fill,
                resampling=Resampling.nearest,
            )
            codes, inv = np.unique(dst, return_inverse=True)
            group = np.empty(codes.size, dtype=np.int64)
            for j, code in enumerate(codes.tolist()):
                if code == fill or code in nodata_codes or (src_nodata is not None and code == src_nodata):
                    group[j] = k + 1
                elif code in table:
                    group[j] = table[code]
                else:
                    group[j] = k
                    if code not in ignored:
                        unknown[code] = unknown.get(code, 0) + int((inv == j).sum())
            g = group[inv.reshape(dst.shape)]
            # plot index of each sub-cell
            plot = (np.arange(rh)[:, None, None, None] * w + np.arange(w)[None, None, :, None])
            plot = np.broadcast_to(plot, (rh, sub, w, sub)).reshape(dst.shape)
            flat = np.bincount((plot * (k + 2) + g).ravel(), minlength=rh * w * (k + 2))
            counts[:, r0 : r0 + rh, :] = flat.reshape(rh, w, k + 2).transpose(2, 0, 1)
    total = float(sub * sub)
    shares = (counts[:k] / total).astype(np.float32)
    unmapped = (counts[k] / total).astype(np.float32)
    nodata = (counts[k + 1] / total).astype(np.float32)
    label, reason = decide(shares, unmapped, nodata, purity)
    return PlotLabels(grid, mapping.tags, purity, shares, unmapped, nodata, label, reason, unknown)


def decide(shares: np.ndarray, unmapped: np.ndarray, nodata: np.ndarray, purity: float) -> tuple[np.ndarray, np.ndarray]:
    """Label (tag index or -1) and reason index (see :data:`REASONS`) per plot."""
    best = shares.argmax(axis=0)
    top = shares.max(axis=0)
    # sub-cell counts are exact multiples of 1/sub^2: compare with a little slack for float32
    ok = top >= purity - 1e-6
    label = np.where(ok, best, -1).astype(np.int16)
    reason = np.zeros(top.shape, dtype=np.int8)
    is_nodata = ~ok & (nodata >= unmapped) & (nodata >= top)
    is_unmapped = ~ok & ~is_nodata & (unmapped >= top)
    reason[~ok] = REASONS.index("impure")
    reason[is_nodata] = REASONS.index("nodata")
    reason[is_unmapped] = REASONS.index("unmapped")
    return label, reason


def balanced_sample(label: np.ndarray, n_tags: int, per_class: int | None, seed: int,
                    eligible: np.ndarray | None = None) -> np.ndarray:
    """Flat plot indices chosen per tag: all, or ``per_class`` drawn at random (seeded), sorted."""
    if per_class is not None and per_class < 1:
        raise InputError(f"`per_class` {per_class} must be at least 1")
    rng = np.random.default_rng(seed)
    flat = label.ravel()
    ok = np.ones(flat.size, bool) if eligible is None else eligible.ravel()
    picked = []
    for t in range(n_tags):
        idx = np.flatnonzero((flat == t) & ok)
        if per_class is not None and idx.size > per_class:
            idx = np.sort(rng.choice(idx, size=per_class, replace=False))
        picked.append(idx)
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


# ---------------------------------------------------------------------------------------------
# labelled chips: the tag-per-folder dataset


@dataclass
class DatasetResult:
    """What :func:`build_dataset` wrote and left out."""

    out: Path
    grid: PlotGrid
    written: dict[str, int]  # chips per tag
    candidates: dict[str, int]  # labelled plots per tag before sampling
    left_out: dict[str, int]  # impure / nodata / unmapped / no imagery (plots in the AOI)
    unknown_codes: dict[int, int]
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """A few lines for the terminal."""
        total = sum(self.written.values())
        lines = [f"wrote {total} chips to {self.out}/ ({self.grid.describe()})"]
        for tag, n in self.written.items():
            lines.append(f"  {tag:<12} {n:>6} chips  (of {self.candidates.get(tag, 0)} labelled plots)")
        why = ", ".join(f"{k} {v}" for k, v in self.left_out.items())
        lines.append(f"  left out: {why}")
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def build_dataset(
    imagery: Sequence[str | Path],
    labels_path: str | Path,
    out: str | Path,
    mapping: LabelMapping | None = None,
    purity: float = DEFAULT_PURITY,
    per_class: int | None = None,
    aoi: str | Path | None = None,
    chip_size: int = 256,
    seed: int = 0,
    min_valid: float = 0.99,
    sub: int = DEFAULT_SUB,
    overwrite: bool = False,
) -> DatasetResult:
    """Label plots from a land-cover raster and write their chips as a tag-per-folder dataset.

    The plot grid covers the imagery (cropped to the AOI's plots when given). A plot needs a
    label (share >= ``purity``) and imagery over at least ``min_valid`` of its footprint.
    Output: ``out/<tag>/<plot file name>.png`` plus ``out/index.geojson`` and ``out/grid.json``.
    """
    import json
    import os
    import shutil

    from landuse import __version__
    from landuse.errors import OutputExistsError
    from landuse.imagery import Scene
    from landuse.tiler import encode_png, plot_file_name

    if chip_size not in (224, 256):
        raise InputError(f"`chip_size` {chip_size} must be 224 or 256")
    if not 0.0 < min_valid <= 1.0:
        raise InputError(f"`min_valid` {min_valid} must lie in (0, 1]")
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"dataset folder {out} exists; pass `overwrite=True`, choose another `out`, or use `merge` alone")
    mapping = mapping or NLCD_MAPPING
    scene = Scene.open([str(p) for p in imagery])
    grid = PlotGrid.from_footprints(scene.footprints())
    mask = np.ones(grid.shape, bool)
    if aoi is not None:
        grid, mask = grid.crop_to_mask(grid.aoi_mask(aoi))
    pl = plot_labels(labels_path, grid, mapping, purity, sub)
    cov = scene.coverage(grid)
    covered = mask & (cov >= min_valid)
    left = pl.counts(mask)
    left_out = {r: left[r] for r in REASONS[1:]}
    labelled = mask & (pl.label >= 0)
    left_out["no imagery"] = int((labelled & ~covered).sum())
    candidates = {t: int(((pl.label == i) & covered).sum()) for i, t in enumerate(pl.tags)}
    if per_class is not None and per_class < 1:
        raise InputError(f"`per_class` {per_class} must be at least 1")
    # every eligible plot of a tag in a seeded random order: plots whose real read falls short
    # of min_valid are replaced by the next ones, so a tag still gets per_class chips
    rng = np.random.default_rng(seed)
    flat_label = np.where(covered & labelled, pl.label, -1).ravel()
    queues = [rng.permutation(np.flatnonzero(flat_label == t)) for t in range(len(pl.tags))]
    if not any(q.size for q in queues):
        raise InputError(
            f"no plot of {grid.describe()} is labelled at purity {purity} with imagery over {min_valid:.0%} of it "
            f"(left out: {left_out}); lower `purity`, check `mapping` or that {Path(labels_path).name} covers the imagery"
        )
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    names = [f.name for f in scene.files]
    written = {t: 0 for t in pl.tags}
    features: list[dict] = []
    try:
        import shapely

        for queue in queues:
            n_t = 0
            for flat in queue.tolist():
                if per_class is not None and n_t >= per_class:
                    break
                r, c = divmod(int(flat), grid.width)
                rgb, valid = scene.read_plot(grid, r, c, chip_size)
                vf = float(valid.mean())
                if vf < min_valid:
                    left_out["no imagery"] += 1
                    continue
                n_t += 1
                tag = pl.tags[int(pl.label[r, c])]
                pid = grid.plot_id(r, c)
                rel = f"{tag}/{plot_file_name(pid)}.png"
                (tmp / tag).mkdir(exist_ok=True)
                (tmp / rel).write_bytes(encode_png(rgb))
                written[tag] += 1
                srcs = scene.files_intersecting(grid.crs, grid.plot_bounds(r, c))
                poly = grid.footprint(r, c, to_crs="EPSG:4326")
                props = {
                    "plot_id": pid, "row": r, "col": c, "label": tag, "file": rel, "origin": "landcover",
                    **{f"share_{t}": round(float(pl.shares[i, r, c]), 4) for i, t in enumerate(pl.tags)},
                    "share_unmapped": round(float(pl.unmapped[r, c]), 4),
                    "share_nodata": round(float(pl.nodata[r, c]), 4),
                    "valid_fraction": round(vf, 4),
                    "sources": [names[j] for j in srcs], "label_source": Path(labels_path).name,
                }
                features.append({"type": "Feature", "geometry": json.loads(shapely.to_geojson(poly)), "properties": props})
        features.sort(key=lambda f: (f["properties"]["row"], f["properties"]["col"]))
        warnings = [f"tag {t} has {n} chips; Custom Vision needs at least 5 a tag" for t, n in written.items() if 0 < n < 5]
        if pl.unknown_codes:
            codes = ", ".join(str(c) for c in sorted(pl.unknown_codes))
            warnings.append(f"codes {codes} of {Path(labels_path).name} are in no group of mapping {mapping.name!r} (counted as unmapped)")
        doc = {
            "type": "FeatureCollection",
            "features": features,
            "landuse": {
                "toolkit_version": __version__, "kind": "dataset", "grid": grid.to_dict(),
                "imagery": [str(p) for p in imagery], "labels": str(labels_path),
                "mapping": mapping.model_dump(), "purity": purity, "per_class": per_class, "seed": seed,
                "chip_size": chip_size, "min_valid": min_valid, "sub_grid": sub,
                "written": written, "candidates": candidates, "left_out": left_out,
            },
        }
        (tmp / "index.geojson").write_text(json.dumps(doc) + "\n")
        grid.save(tmp / "grid.json")
        swap_in_dir(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return DatasetResult(out, grid, written, candidates, left_out, pl.unknown_codes, warnings)
