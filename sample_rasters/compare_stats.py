"""Compare the colour / texture statistics of the sample rasters' plots with real NAIP plots.

    python sample_rasters/compare_stats.py [SAMPLE_DIR] [--real DIR] [--sheet OUT_DIR]

For every class, the mean over plots of: per-channel mean and standard deviation (R, G, B), mean
absolute gradient of the grey image (texture), edge density (share of pixels with a grey-level step
> 12) and saturation. Real plots: ../shared/data/aerialsmall/train/<class>/*.png beside the
repository (224 x 224 px, 1 m NAIP). Sample plots: the whole, pure plots of the sample rasters
(truth.geojson: purity 1, valid_fraction 1). ``--sheet`` writes PNG contact sheets of both.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STATS = ("R", "G", "B", "sdR", "sdG", "sdB", "grad", "edges", "sat")


def image_stats(rgb: np.ndarray) -> np.ndarray:
    """The statistics above for one uint8 (H, W, 3) image."""
    a = rgb.astype(np.float32)
    g = a.mean(-1)
    dx, dy = np.abs(np.diff(g, axis=1)), np.abs(np.diff(g, axis=0))
    grad = (dx.mean() + dy.mean()) / 2
    edges = ((dx[:-1, :] > 12) | (dy[:, :-1] > 12)).mean()
    mx, mn = a.max(-1), a.min(-1)
    sat = ((mx - mn) / (mx + 1)).mean()
    flat = a.reshape(-1, 3)
    return np.array([*flat.mean(0), *flat.std(0), grad, edges, sat])


def real_plots(real: Path, cls: str) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.open(f).convert("RGB")) for f in sorted((real / cls).glob("*.png"))]


def sample_plots(sample_dir: Path) -> dict[str, list[np.ndarray]]:
    """Pure whole plots of both periods, by class."""
    import geopandas as gpd
    import rasterio
    from rasterio.windows import Window

    from landuse.grid import PlotGrid

    truth = gpd.read_file(sample_dir / "truth.geojson")
    years = sorted(int(c.split("_")[1]) for c in truth.columns if c.startswith("class_"))
    out: dict[str, list[np.ndarray]] = {}
    for year in years:
        path = sample_dir / f"{year}.tif"
        grid = PlotGrid.from_rasters([path])
        with rasterio.open(path) as src:
            ox = round((grid.transform.c - src.transform.c) / src.transform.a)
            oy = round((src.transform.f - grid.transform.f) / src.transform.a)
            pure = truth[(truth[f"purity_{year}"] >= 1.0) & (truth["valid_fraction"] >= 1.0)]
            for _, t in pure.iterrows():
                r, c = grid.parse_plot_id(t["plot_id"])
                win = Window(ox + c * 224, oy + r * 224, 224, 224)
                rgb = src.read((1, 2, 3), window=win).transpose(1, 2, 0)
                out.setdefault(t[f"class_{year}"], []).append(rgb)
    return out


def contact_sheet(images: list[np.ndarray], path: Path, n: int = 12) -> None:
    from PIL import Image

    pick = images[:: max(1, len(images) // n)][:n]
    sheet = Image.new("RGB", (4 * 224, ((len(pick) + 3) // 4) * 224))
    for i, im in enumerate(pick):
        sheet.paste(Image.fromarray(im), ((i % 4) * 224, (i // 4) * 224))
    sheet.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sample_dir", nargs="?", default=str(ROOT / "sample_rasters"))
    ap.add_argument("--real", default=str(ROOT.parent / "shared" / "data" / "aerialsmall" / "train"))
    ap.add_argument("--sheet", help="write contact sheets (real_<class>.png, sample_<class>.png) here")
    ap.add_argument("--json", help="write the table as JSON here")
    args = ap.parse_args()
    real_dir = Path(args.real)
    samples = sample_plots(Path(args.sample_dir))
    table = {}
    print(f"{'class':<11}{'source':<8}{'n':>4}  " + "".join(f"{s:>7}" for s in STATS))
    for cls in ("Barren", "Cultivated", "Developed"):
        rows = {}
        if real_dir.exists():
            rows["real"] = real_plots(real_dir, cls)
        rows["sample"] = samples.get(cls, [])
        for src, imgs in rows.items():
            if not imgs:
                continue
            s = np.array([image_stats(im) for im in imgs])
            table[f"{cls}/{src}"] = {"n": len(imgs), **dict(zip(STATS, s.mean(0).round(3).tolist(), strict=True))}
            print(f"{cls:<11}{src:<8}{len(imgs):>4}  " + "".join(f"{v:7.2f}" for v in s.mean(0)))
            if args.sheet:
                Path(args.sheet).mkdir(parents=True, exist_ok=True)
                contact_sheet(imgs, Path(args.sheet) / f"{src}_{cls}.png")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()
