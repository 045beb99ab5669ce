"""Anomaly-map functions of the shared framework against closed forms and scipy."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from baselines.common.maps import (
    cosine_anomaly_map,
    feature_mse,
    gaussian_blur,
    gaussian_kernel1d,
    mean_cosine_anomaly_map,
    pooled_max,
)


@pytest.mark.parametrize("shape", [(1, 40, 33), (2, 64, 64), (1, 7, 5)])
@pytest.mark.parametrize("sigma", [1.0, 4.0])
def test_gaussian_blur_equals_scipy_reflect(shape, sigma):
    # (1, 7, 5) with σ=4 has a radius of 16, far beyond the map: scipy reflects repeatedly
    rng = np.random.default_rng(0)
    maps = rng.random(shape)
    ours = gaussian_blur(torch.from_numpy(maps), sigma).numpy()
    ref = np.stack([ndimage.gaussian_filter(m, sigma) for m in maps])  # mode="reflect", truncate=4
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_gaussian_kernel_is_normalised_with_scipy_radius():
    k = gaussian_kernel1d(4.0, dtype=torch.float64)
    assert k.numel() == 2 * 16 + 1
    assert abs(float(k.sum()) - 1.0) < 1e-12
    assert torch.equal(k, k.flip(0))


def test_blur_keeps_constant_maps():
    m = torch.full((1, 20, 30), 0.25, dtype=torch.float64)
    assert torch.allclose(gaussian_blur(m, 4.0), m, atol=1e-15)


def test_cosine_map_closed_forms():
    torch.manual_seed(0)
    f = [torch.randn(2, 8, 16, 16), torch.randn(2, 4, 8, 8)]
    same = cosine_anomaly_map(f, [t.clone() for t in f], (32, 32))
    assert same.shape == (2, 32, 32)
    assert float(same.abs().max()) < 1e-6
    opposite = cosine_anomaly_map(f, [-t for t in f], (32, 32))
    assert torch.allclose(opposite, torch.full_like(opposite, 2.0), atol=1e-5)
    # reconstructions that differ only by a positive per-position scale are "normal"
    scaled = cosine_anomaly_map(f, [t * 3.0 for t in f], (32, 32))
    assert float(scaled.abs().max()) < 1e-6


def test_cosine_map_one_level_matches_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((1, 5, 6, 6)), rng.standard_normal((1, 5, 6, 6))
    ours = cosine_anomaly_map([torch.from_numpy(a)], [torch.from_numpy(b)], (6, 6), sigma=0).numpy()
    ref = 1 - (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_cosine_map_two_levels_is_mean_of_level_cosines_at_common_size():
    # at equal sizes, unit-normalised levels concatenated: cos = mean of the level cosines
    rng = np.random.default_rng(2)
    a = [rng.standard_normal((1, c, 4, 4)) for c in (3, 7)]
    b = [rng.standard_normal((1, c, 4, 4)) for c in (3, 7)]
    ours = cosine_anomaly_map([torch.from_numpy(x) for x in a], [torch.from_numpy(x) for x in b], (4, 4), 0).numpy()
    cos = [(x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)) for x, y in zip(a, b)]
    np.testing.assert_allclose(ours, 1 - (cos[0] + cos[1]) / 2, atol=1e-6)


def _bilinear_align_corners(m: np.ndarray, out: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D array with corner pixels aligned, written from the definition."""
    h, w = m.shape
    ys = np.linspace(0, h - 1, out[0]) if out[0] > 1 else np.zeros(1)
    xs = np.linspace(0, w - 1, out[1]) if out[1] > 1 else np.zeros(1)
    y0 = np.clip(np.floor(ys).astype(int), 0, h - 1)
    x0 = np.clip(np.floor(xs).astype(int), 0, w - 1)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = m[np.ix_(y0, x0)] * (1 - wx) + m[np.ix_(y0, x1)] * wx
    bot = m[np.ix_(y1, x0)] * (1 - wx) + m[np.ix_(y1, x1)] * wx
    return top * (1 - wy) + bot * wy


def test_mean_cosine_map_is_ader_per_level_average():
    # ADer's cal_anomaly_map(uni_am=False, amap_mode="add", gaussian_sigma=4): 1 - cos per level,
    # each resized (bilinear, align_corners=True) to the image size, averaged, then scipy's Gaussian
    rng = np.random.default_rng(3)
    a = [rng.standard_normal((2, c, s, s)) for c, s in ((6, 16), (5, 8), (4, 4))]
    b = [rng.standard_normal((2, c, s, s)) for c, s in ((6, 16), (5, 8), (4, 4))]
    ours = mean_cosine_anomaly_map([torch.from_numpy(x) for x in a], [torch.from_numpy(x) for x in b], (32, 32)).numpy()
    ref = np.zeros((2, 32, 32))
    for x, y in zip(a, b):
        cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
        ref += np.stack([_bilinear_align_corners(1 - c, (32, 32)) for c in cos])
    ref = np.stack([ndimage.gaussian_filter(m / 3, 4.0) for m in ref])
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_cosine_map_align_corners_matches_reference():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((1, 3, 5, 5)), rng.standard_normal((1, 3, 5, 5))
    ours = cosine_anomaly_map([torch.from_numpy(a)], [torch.from_numpy(b)], (17, 17), 0, align_corners=True).numpy()
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    np.testing.assert_allclose(ours[0], _bilinear_align_corners(1 - cos[0], (17, 17)), atol=1e-6)


def test_feature_mse_sums_levels():
    f = [torch.zeros(1, 2, 3, 3), torch.zeros(1, 4, 2, 2)]
    r = [torch.ones(1, 2, 3, 3), torch.full((1, 4, 2, 2), 2.0)]
    assert float(feature_mse(f, r)) == pytest.approx(1.0 + 4.0)


def test_pooled_max_is_the_max_of_every_window_mean():
    # ADer's pooling_ks image score: F.avg_pool2d(map, k, stride=1) then the maximum, written out with windows
    rng = np.random.default_rng(5)
    maps = rng.random((3, 20, 17)).astype(np.float32)
    for k in (1, 4, 16, 17):
        win = np.lib.stride_tricks.sliding_window_view(maps.astype(np.float64), (k, k), axis=(1, 2))
        ref = win.mean(axis=(3, 4)).max(axis=(1, 2))
        ours = pooled_max(torch.from_numpy(maps), k)
        assert ours.dtype == torch.float64
        np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-12)
    assert float(pooled_max(torch.from_numpy(maps), 1)[0]) == float(maps[0].max())
    with pytest.raises(ValueError, match="does not fit"):
        pooled_max(torch.from_numpy(maps), 18)


@pytest.mark.parametrize("fn", [cosine_anomaly_map, mean_cosine_anomaly_map])
def test_maps_are_smoothed_as_scipy_smooths_a_float32_map(fn):
    # ADer hands scipy's gaussian_filter a float32 map; scipy sums in float64 and rounds once
    torch.manual_seed(6)
    f = [torch.randn(2, 8, 16, 16), torch.randn(2, 4, 8, 8)]
    r = [torch.randn(2, 8, 16, 16), torch.randn(2, 4, 8, 8)]
    raw = fn(f, r, (64, 64), sigma=0)
    assert raw.dtype == torch.float32
    ours = fn(f, r, (64, 64)).numpy()
    ref = np.stack([ndimage.gaussian_filter(m, 4.0) for m in raw.numpy()])
    assert ours.dtype == ref.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=0, atol=np.spacing(np.float32(2)))  # one float32 step at most
