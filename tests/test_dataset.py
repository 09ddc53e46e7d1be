"""Folder-per-tag datasets and image loading (PNG / JPEG / BMP / GeoTIFF)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rasterio.transform import from_origin

from landuse.errors import DatasetError
from landuse.training.dataset import TagDataset, load_image
from tests.conftest import shared_data


def make_dataset(root: Path, counts: dict[str, int], suffix: str = ".png") -> Path:
    for t, (tag, n) in enumerate(counts.items()):
        (root / tag).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", (8, 8), (t * 40, i, 0)).save(root / tag / f"{tag}_{i}{suffix}")
    return root


def test_open_counts_and_items(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds", {"Developed": 7, "Barren": 5, "Negative": 6})
    (root / "Barren" / "notes.txt").write_text("not an image")
    (root / "Barren" / ".DS_Store").write_bytes(b"\0")
    (root / "README.md").write_text("top-level files are not tags")
    ds = TagDataset.open(root)
    assert ds.root == root
    assert ds.tags == ["Barren", "Developed", "Negative"]
    assert ds.counts() == {"Barren": 5, "Developed": 7, "Negative": 6}
    assert len(ds.items) == 18
    assert ds.items[0] == (root / "Barren" / "Barren_0.png", "Barren")
    assert ds.ignored == [root / "Barren" / "notes.txt"]
    assert ds.labels_index().tolist() == [0] * 5 + [1] * 7 + [2] * 6
    report = ds.balance_report()
    assert "18 images, 3 tags" in report
    assert "Developed" in report and "38.9 %" in report  # 7 / 18
    assert "1.40" in report  # 7 / 5
    assert "notes.txt" in report


def test_imbalance_is_flagged(tmp_path: Path) -> None:
    ds = TagDataset.open(make_dataset(tmp_path / "ds", {"a": 5, "b": 11}))
    assert "2.20" in ds.balance_report() and "imbalanced" in ds.balance_report()


def test_errors_name_the_folder_or_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="nowhere does not exist"):
        TagDataset.open(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    with pytest.raises(DatasetError, match="flat has no tag sub-folders"):
        TagDataset.open(tmp_path / "flat")
    (tmp_path / "noimg" / "tagA").mkdir(parents=True)
    (tmp_path / "noimg" / "tagA" / "x.txt").write_text("x")
    with pytest.raises(DatasetError, match="noimg holds no images"):
        TagDataset.open(tmp_path / "noimg")
    root = make_dataset(tmp_path / "few", {"a": 5, "b": 4, "c": 0})
    with pytest.raises(DatasetError, match=r"fewer than 5 images: b \(4\), c \(0\)"):
        TagDataset.open(root)
    bad = make_dataset(tmp_path / "bad", {"a": 5, "b": 5})
    (bad / "b" / "b_3.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DatasetError, match=r"b_3\.png cannot be read"):
        TagDataset.open(bad)


def test_min_per_tag_is_configurable(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds", {"a": 2, "b": 3})
    assert TagDataset.open(root, min_per_tag=1).counts() == {"a": 2, "b": 3}


def test_load_png_modes_and_resize(tmp_path: Path) -> None:
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    img = load_image(tmp_path / "rgba.png")
    assert img.dtype == np.uint8 and img.shape == (4, 6, 3)
    assert img[0, 0].tolist() == [200, 0, 0]
    Image.fromarray(np.full((5, 5), 77, np.uint8), "L").save(tmp_path / "gray.jpg", quality=100)
    g = load_image(tmp_path / "gray.jpg")
    assert g.shape == (5, 5, 3) and np.all(np.abs(g.astype(int) - 77) <= 1)
    Image.new("RGB", (3, 2), (10, 20, 30)).save(tmp_path / "x.bmp")
    assert load_image(tmp_path / "x.bmp")[1, 2].tolist() == [10, 20, 30]
    # bilinear resize to (h, w): a left-black / right-white image gets a grey ramp
    half = np.zeros((4, 4, 3), np.uint8)
    half[:, 2:] = 255
    Image.fromarray(half).save(tmp_path / "half.png")
    r = load_image(tmp_path / "half.png", size=(2, 8))
    assert r.shape == (2, 8, 3)
    assert r[0, 0, 0] == 0 and r[0, 7, 0] == 255 and 0 < r[0, 4, 0] < 255


def test_load_geotiff_rgb_from_four_bands(write_raster) -> None:
    data = np.zeros((4, 6, 5), np.uint8)
    data[0], data[1], data[2], data[3] = 10, 20, 30, 250  # R G B NIR
    path = write_raster("rgbn.tif", data, "EPSG:26914", from_origin(500000, 4000000, 1, 1))
    img = load_image(path)
    assert img.shape == (6, 5, 3)
    assert img[0, 0].tolist() == [10, 20, 30]
    assert load_image(path, size=(3, 3)).shape == (3, 3, 3)


def test_load_geotiff_single_band_and_bad_ones(write_raster, tmp_path: Path) -> None:
    gray = write_raster("g.tif", np.full((1, 4, 4), 9, np.uint8), "EPSG:26914", from_origin(500000, 4000000, 1, 1))
    assert load_image(gray)[0, 0].tolist() == [9, 9, 9]
    u16 = write_raster("u16.tif", np.zeros((3, 4, 4), np.uint16), "EPSG:26914", from_origin(500000, 4000000, 1, 1))
    with pytest.raises(DatasetError, match=r"u16\.tif is uint16"):
        load_image(u16)
    (tmp_path / "junk.tif").write_bytes(b"II*\0garbage")
    with pytest.raises(DatasetError, match=r"junk\.tif cannot be read"):
        load_image(tmp_path / "junk.tif")
    with pytest.raises(DatasetError, match=r"absent\.png does not exist"):
        load_image(tmp_path / "absent.png")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(DatasetError, match=r"text\.png cannot be read"):
        load_image(tmp_path / "text.png")


def test_real_aerialsmall() -> None:
    ds = TagDataset.open(shared_data("aerialsmall", "train"))
    assert ds.counts() == {"Barren": 150, "Cultivated": 150, "Developed": 200}
    img = load_image(ds.items[0][0])
    assert img.shape == (224, 224, 3) and img.dtype == np.uint8
