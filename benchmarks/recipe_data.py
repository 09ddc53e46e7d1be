"""Cached ImageNet EfficientNet-Lite0 features of the proxy data sets (for bench_recipes.py).

Everything the recipe search compares is a head on frozen pooled features, so the images are
pushed through the trunk once per (data set, transform) and cached as ``.npz`` under
``$LANDUSE_FEATURE_CACHE`` (default ``/tmp/landuse-model-features``). Data come from
``../shared/data`` (never copied into the repository).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
AERIAL = SHARED / "aerialsmall" / "train"
ND = SHARED / "rasters" / "naip_nd_timeseries"
WV = SHARED / "wv_1m_patches"
CACHE = Path(os.environ.get("LANDUSE_FEATURE_CACHE", "/tmp/landuse-model-features"))


def extractor() -> object:
    """An onnxruntime session of the frozen ImageNet trunk: RGB 0-255 -> 1280 pooled features."""
    import onnxruntime as ort

    from landuse.training.features import export_feature_extractor

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "lite0_features.onnx"
    if not path.exists():
        export_feature_extractor(path)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


_SESSION: object | None = None


def features(x: np.ndarray, batch: int = 32) -> np.ndarray:
    """Pooled features (N, 1280) float32 of uint8 RGB ``x`` (N, 224, 224, 3)."""
    global _SESSION
    if _SESSION is None:
        _SESSION = extractor()
    out = []
    for i in range(0, len(x), batch):
        feed = np.ascontiguousarray(x[i : i + batch].transpose(0, 3, 1, 2), dtype=np.float32)
        out.append(_SESSION.run(["features"], {"data": feed})[0])  # type: ignore[attr-defined]
    return np.concatenate(out).astype(np.float32)


def cached(name: str, make_images: callable) -> np.ndarray:  # type: ignore[valid-type]
    """Features of ``make_images()`` cached under ``name``."""
    p = CACHE / f"{name}.npy"
    if p.exists():
        return np.load(p)
    t0 = time.perf_counter()
    x = make_images()
    f = features(x)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(p, f)
    print(f"  features {name}: {len(x)} images, {len(x) / (time.perf_counter() - t0):.0f} images/s", flush=True)
    return f


# ------------------------------------------------------------------------ the data sets


def aerialsmall() -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, list[str]]:
    """uint8 images, tag index, tags, county per image ('ca025' / 'ca037'), file names."""
    from landuse.training.dataset import TagDataset, load_image

    ds = TagDataset.open(AERIAL)
    x = np.stack([load_image(p, (224, 224)) for p, _ in ds.items])
    names = [p.name for p, _ in ds.items]
    county = np.array(["ca037" if "ca037" in n else "ca025" for n in names])
    return x, ds.labels_index(), list(ds.tags), county, names


def wv_patches() -> np.ndarray:
    """The 16 real 1 m forest / pasture patches, centre 224 x 224 px (one plot)."""
    from PIL import Image

    files = sorted(WV.glob("*.png"))
    out = []
    for f in files:
        a = np.asarray(Image.open(f).convert("RGB"))
        o = (a.shape[0] - 224) // 2
        out.append(a[o : o + 224, o : o + 224])
    return np.stack(out)


def nd_plots(year: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(RGB uint8 (N,224,224,3), NIR uint8 (N,224,224), plot ids) of the ND plots >= 90 % valid."""
    from landuse.imagery import Scene
    from landuse.pipeline import plan_grid

    path = next(ND.glob(f"*_{year}*.tif"))
    scene = Scene.open([str(path)])
    nir_scene = Scene.open([str(path)], bands=[4, 4, 4])
    grid, _ = plan_grid(scene, None, None, 224.0)
    rgbs, nirs, ids = [], [], []
    for ch in grid.chunks_of(64):
        px, frac = scene.read_chunk(grid, ch, pixels=224)
        nir, _ = nir_scene.read_chunk(grid, ch, pixels=224)
        rows, cols = ch.rows_cols()
        ok = frac >= 0.9
        rgbs.append(px[ok])
        nirs.append(nir[ok][..., 0])
        ids.extend(grid.plot_ids(rows[ok], cols[ok]).tolist())
    return np.concatenate(rgbs), np.concatenate(nirs), np.array(ids)


def nd_plots_cached(year: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`nd_plots`, read once and kept as ``nd<year>_{rgb,nir,ids}.npy`` under :data:`CACHE`."""
    paths = [CACHE / f"nd{year}_{k}.npy" for k in ("rgb", "nir", "ids")]
    if not paths[2].exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        for p, a in zip(paths, nd_plots(year), strict=True):
            np.save(p, a)
    rgb, nir, ids = (np.load(p) for p in paths)
    return rgb, nir, ids
