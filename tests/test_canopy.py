"""The canopy evidence (the unknown flag's RGB half) keeps the values of its plain definition.

``landuse.classify.unknown`` computes it in place on int16 planes and skips the texture of plots
that are not green enough, for speed; these tests hold it to the formula written out directly."""

from __future__ import annotations

import numpy as np
import pytest

from landuse.classify.unknown import canopy_evidence, canopy_share


def reference_share(batch: np.ndarray) -> np.ndarray:
    a = batch.astype(np.int32)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    v = r + g + b
    green = (2 * g - r - b)[:, 1:-1, 1:-1] > 12
    lap = 4 * v[:, 1:-1, 1:-1] - v[:, :-2, 1:-1] - v[:, 2:, 1:-1] - v[:, 1:-1, :-2] - v[:, 1:-1, 2:]
    tex = np.abs(lap) > 36
    return ((green & tex).sum(axis=(1, 2)) / float(a.shape[1] * a.shape[2])).astype(np.float32)


def reference_evidence(batch: np.ndarray, green_min: float) -> np.ndarray:
    a = batch.astype(np.int32)
    green = ((2 * a[..., 1] - a[..., 0] - a[..., 2]) > 12).mean(axis=(1, 2))
    return np.where(green > green_min, reference_share(batch), 0.0).astype(np.float32)


def plots() -> np.ndarray:
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    leafy = noise.copy()
    leafy[..., 1] = np.maximum(leafy[..., 1], 200)  # green and textured: canopy-like
    flat = np.full((3, 64, 64, 3), (90, 160, 70), np.uint8)  # green but smooth: a lawn
    grey = np.full((3, 64, 64, 3), 128, np.uint8)
    half = leafy[:3].copy()
    half[:, :, :32] = 128  # half green
    return np.concatenate([noise, leafy, flat, grey, half])


@pytest.mark.parametrize("green_min", [0.0, 0.4, 0.5, 0.9])
def test_canopy_evidence_equals_its_definition(green_min: float) -> None:
    batch = plots()
    got = canopy_evidence(batch, green_min)
    assert got.dtype == np.float32 and got.shape == (len(batch),)
    np.testing.assert_array_equal(got, reference_evidence(batch, green_min))
    assert (got[12:18] == 0).all()  # a smooth lawn and grey are not canopy
    if green_min <= 0.5:
        assert (got[6:12] > 0.3).all()  # green textured noise is


def test_canopy_share_equals_its_definition_and_handles_edges() -> None:
    batch = plots()
    np.testing.assert_array_equal(canopy_share(batch), reference_share(batch))
    assert canopy_share(batch[:0]).shape == (0,)
    assert canopy_evidence(batch[:1, :2, :2]).tolist() == [0.0]  # too small for a texture


def reference_box(batch: np.ndarray, scale: int) -> np.ndarray:
    n, h, w = batch.shape[:3]
    h, w = h - h % scale, w - w % scale
    a = batch[:, :h, :w, :3].reshape(n, h // scale, scale, w // scale, scale, 3).mean(axis=(2, 4), dtype=np.float32)
    return np.rint(a).astype(np.uint8)


@pytest.mark.parametrize("scale", [2, 3, 4, 5])
def test_box_down_is_the_rounded_block_mean(scale: int) -> None:
    from landuse.classify.unknown import box_down

    rng = np.random.default_rng(scale)
    for batch in (plots(), rng.integers(0, 256, (4, 61, 67, 3), dtype=np.uint8)):
        np.testing.assert_array_equal(box_down(batch, scale), reference_box(batch, scale))
    half = np.zeros((1, scale, scale, 3), np.uint8)
    half[0, : scale // 2 + scale % 2] = 1  # a block mean at or near a half: rounded as np.rint does
    np.testing.assert_array_equal(box_down(half, scale), reference_box(half, scale))
