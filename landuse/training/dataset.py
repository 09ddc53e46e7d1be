"""Labelled image datasets in the Custom Vision layout: one folder per tag.

    DATASET/
      Barren/      a.png b.png ...
      Cultivated/  ...
      Negative/    (optional; kept as an ordinary tag)

Tags are the sorted folder names. Images may be PNG, JPEG, BMP or GeoTIFF. Custom Vision needs
at least 5 images per tag, so does :meth:`TagDataset.open` by default.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from landuse.errors import DatasetError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
TIFF_SUFFIXES = frozenset({".tif", ".tiff"})
# Files that operating systems drop into folders; never images, never worth a warning.
_JUNK = frozenset({"thumbs.db", "desktop.ini"})
MIN_PER_TAG = 5


def is_image_file(path: Path) -> bool:
    """True for a file whose suffix is one of the supported image formats."""
    return path.suffix.lower() in IMAGE_SUFFIXES


@dataclass
class TagDataset:
    """A folder-per-tag dataset: ``items`` are ``(image path, tag)`` sorted by tag then name."""

    root: Path
    tags: list[str]
    items: list[tuple[Path, str]]
    ignored: list[Path] = field(default_factory=list)  # non-image files found in tag folders

    @classmethod
    def open(cls, path: str | Path, min_per_tag: int = MIN_PER_TAG, ignore: tuple[str, ...] = ()) -> TagDataset:
        """Scan ``path`` (one sub-folder per tag) and check it is usable.

        ``ignore``: folder names that are not tags (e.g. ``unknown`` for ``train --init``).
        Raises :class:`DatasetError` when the folder is missing, holds no tag folders or no
        images, a tag has fewer than ``min_per_tag`` images, or an image cannot be opened.
        """
        root = Path(path)
        if not root.exists():
            raise DatasetError(f"dataset folder {root} does not exist; pass a folder holding one sub-folder per tag")
        if not root.is_dir():
            raise DatasetError(f"dataset {root} is not a folder; pass a folder holding one sub-folder per tag")
        tag_dirs = sorted(p for p in root.iterdir()
                          if p.is_dir() and not p.name.startswith(".") and p.name not in ignore)
        if not tag_dirs:
            raise DatasetError(
                f"dataset folder {root} has no tag sub-folders; put each tag's images in {root}/<tag>/"
            )
        items: list[tuple[Path, str]] = []
        ignored: list[Path] = []
        for tag_dir in tag_dirs:
            for f in sorted(tag_dir.iterdir()):
                if f.name.startswith(".") or f.name.lower() in _JUNK:
                    continue
                if f.is_file() and is_image_file(f):
                    items.append((f, tag_dir.name))
                else:
                    ignored.append(f)
        if not items:
            raise DatasetError(
                f"dataset folder {root} holds no images (PNG, JPEG, BMP, GeoTIFF) in its tag folders "
                f"{', '.join(p.name for p in tag_dirs)}; add images to {root}/<tag>/"
            )
        ds = cls(root=root, tags=[p.name for p in tag_dirs], items=items, ignored=ignored)
        counts = ds.counts()
        short = [f"{tag} ({n})" for tag, n in counts.items() if n < min_per_tag]
        if short:
            raise DatasetError(
                f"dataset {root}: tag folders with fewer than {min_per_tag} images: {', '.join(short)}; "
                f"Custom Vision needs at least {min_per_tag} images per tag - add images or remove the folder"
            )
        for f, _ in items:
            check_image(f)
        return ds

    def counts(self) -> dict[str, int]:
        """Number of images per tag, in ``tags`` order."""
        c = Counter(tag for _, tag in self.items)
        return {tag: c.get(tag, 0) for tag in self.tags}

    def balance_report(self) -> str:
        """A short multi-line text: images per tag with shares, and the imbalance ratio."""
        counts = self.counts()
        total = sum(counts.values())
        width = max(len(t) for t in self.tags)
        lines = [f"{self.root}: {total} images, {len(self.tags)} tags"]
        for tag, n in counts.items():
            lines.append(f"  {tag:<{width}}  {n:>6}  {100.0 * n / total:5.1f} %")
        lo, hi = min(counts.values()), max(counts.values())
        ratio = hi / lo if lo else float("inf")
        note = "  (imbalanced: consider more images for the smaller tags)" if ratio > 2 else ""
        lines.append(f"  largest / smallest tag: {ratio:.2f}{note}")
        if self.ignored:
            lines.append(
                f"  ignored {len(self.ignored)} non-image entries, e.g. {self.ignored[0]}"
            )
        return "\n".join(lines)

    def labels_index(self) -> np.ndarray:
        """The tag index (into ``tags``) of every item, int64."""
        pos = {t: i for i, t in enumerate(self.tags)}
        return np.array([pos[tag] for _, tag in self.items], dtype=np.int64)


def check_image(path: Path) -> None:
    """Open ``path``'s header; :class:`DatasetError` naming the file when it is not a readable image."""
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            import rasterio

            with rasterio.open(path) as src:
                _ = src.count
        else:
            from PIL import Image

            with Image.open(path) as im:
                im.verify()
    except DatasetError:
        raise
    except Exception as exc:  # any decoder failure means the same thing to the user
        raise DatasetError(f"image {path} cannot be read ({type(exc).__name__}: {exc}); replace or remove it") from exc


def load_image(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read an image as ``uint8`` RGB ``(H, W, 3)``, resized (bilinear) to ``size=(h, w)`` if given.

    PNG / JPEG / BMP through Pillow (EXIF orientation applied; grayscale, palette and RGBA
    converted to RGB, alpha dropped); GeoTIFF through rasterio (bands 1-3 of a 3- or 4-band
    raster, or the single band of a grayscale one; 8-bit only).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"image {path} does not exist; check the path")
    if path.suffix.lower() in TIFF_SUFFIXES:
        rgb = _read_tiff(path)
    else:
        rgb = _read_pillow(path)
    if size is not None:
        h, w = int(size[0]), int(size[1])
        if rgb.shape[:2] != (h, w):
            from PIL import Image

            rgb = np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.BILINEAR))
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def max_image_pixels() -> int:
    """Most pixels an image file may have (Pillow's decompression-bomb limit, ~89 MP)."""
    from PIL import Image

    return int(Image.MAX_IMAGE_PIXELS or 89_478_485)


def _too_large(path: Path, w: int, h: int) -> DatasetError:
    return DatasetError(
        f"image {path} is {w} x {h} pixels, over the {max_image_pixels():,}-pixel safety limit for one image "
        "(a decompression bomb, or a whole scene); resize it, or classify a scene with `landuse classify`"
    )


def _read_pillow(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings(), Image.open(path) as im:
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            w, h = im.size
            if w * h > max_image_pixels():
                raise _too_large(path, w, h)
            upright = ImageOps.exif_transpose(im)
            if upright.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                raise DatasetError(
                    f"image {path} has {upright.mode} pixels; only 8-bit images are supported - convert it to 8-bit RGB"
                )
            return np.asarray(upright.convert("RGB"))
    except DatasetError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DatasetError(
            f"image {path} has more pixels than the safety limit ({max_image_pixels():,}); resize it first"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DatasetError(f"image {path} cannot be read ({exc}); replace it with a PNG, JPEG, BMP or GeoTIFF") from exc


def _read_tiff(path: Path) -> np.ndarray:
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.errors import RasterioError

    try:
        with rasterio.open(path) as src:
            if src.width * src.height > max_image_pixels():
                raise _too_large(path, src.width, src.height)
            if src.dtypes[0] != "uint8":
                raise DatasetError(
                    f"image {path} is {src.dtypes[0]}; only 8-bit imagery is supported - "
                    f"convert it (gdal_translate -ot Byte -scale)"
                )
            if src.count >= 3:
                interp = list(src.colorinterp)
                want = (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
                if all(c in interp for c in want):
                    bands = [interp.index(c) + 1 for c in want]
                else:
                    bands = [1, 2, 3]
                data = src.read(bands)
            elif src.count in (1, 2):  # grayscale, or grayscale + alpha
                data = np.repeat(src.read(1)[None], 3, axis=0)
            else:
                raise DatasetError(f"image {path} has {src.count} bands; expected 1, 3 or 4 (RGB[N/A])")
    except DatasetError:
        raise
    except RasterioError as exc:
        raise DatasetError(f"image {path} cannot be read ({exc}); replace it with a valid GeoTIFF") from exc
    return np.transpose(data, (1, 2, 0))
