"""AUPRO (every profile) against the NumPy references, brute force and closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator import reference as ref
from evaluator.metrics import aupro
from tests.evaluator.test_metrics_cases import random_class, stacked

pytest.importorskip("scipy")


def brute_force_aupro(masks, maps):
    """Per-threshold PRO from scratch: every distinct value, every region, no weights."""
    masks = np.asarray(masks, bool)
    values = np.asarray(maps, np.float64)
    regions = []
    for i, m in enumerate(masks):
        labels, n = ref.label_regions(m)
        regions += [(i, labels == k) for k in range(1, n + 1)]
    normal = ~masks
    fprs, pros = [0.0], [0.0]
    for t in np.unique(values)[::-1]:
        pred = values >= t
        pros.append(np.mean([pred[i][r].mean() for i, r in regions]))
        fprs.append((pred & normal).sum() / normal.sum())
    x, y = np.array(fprs), np.array(pros)
    # Integrate up to 0.3 with an interpolated end point.
    xs = np.concatenate((x[x < 0.3], [0.3]))
    ys = np.concatenate((y[x < 0.3], [np.interp(0.3, x, y)]))
    # np.interp needs a single-valued curve; vertical steps at 0.3 do not change the area.
    return float(np.trapezoid(ys, xs) / 0.3)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_exact_matches_references(seed, dtype):
    masks, maps, _ = random_class(seed, n=10, dtype=dtype)
    got = aupro(masks, maps)
    assert got == pytest.approx(ref.aupro_exact(masks, stacked(maps)), abs=1e-9)
    if seed < 3:
        assert got == pytest.approx(brute_force_aupro(masks, stacked(maps)), abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_ader_matches_reference(seed):
    masks, maps, _ = random_class(seed + 10, n=10, dtype=np.float16, mixed=seed % 2 == 1)
    got = aupro(masks, maps, profile="ader")
    expected = ref.aupro_ader(masks, stacked(maps))
    assert (got is None) == (expected is None)
    assert got == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("n", [3, 10, 37])
def test_ramp_closed_form(n):
    """Region values 1..2n, normal values 1..n: PRO = 1/2 + FPR/2, so AUPRO = 0.575."""
    region = np.arange(1, 2 * n + 1, dtype=np.float32)
    normal = np.arange(1, n + 1, dtype=np.float32)
    amap = np.concatenate((region, normal))[None]
    mask = np.zeros(amap.shape, bool)
    mask[0, : 2 * n] = True
    assert aupro([mask], [amap]) == pytest.approx(0.575, abs=1e-12)
    assert ref.aupro_exact([mask], [amap]) == pytest.approx(0.575, abs=1e-12)


def test_perfect_random_and_constant():
    rng = np.random.default_rng(1)
    masks = np.zeros((3, 16, 16), bool)
    masks[0, 2:6, 3:9] = True
    masks[2, 10:, 10:] = True
    maps = rng.random(masks.shape).astype(np.float32) * 0.5
    perfect = maps + masks
    assert aupro(masks, perfect) == 1.0
    assert aupro(masks, perfect, profile="ader") == pytest.approx(1.0, abs=1e-12)
    # Rows as values, regions spanning whole rows' halves: PRO = FPR (the diagonal).
    rows = np.repeat(np.arange(16, dtype=np.float32)[:, None], 16, axis=1)
    half = np.zeros((16, 16), bool)
    half[:, :8] = True
    assert aupro([half], [rows]) == pytest.approx(0.15, abs=1e-12)
    # A constant map: one step from (0, 0) to (1, 1), interpolated: also 0.15.
    const = np.full(masks.shape, 0.25, np.float16)
    assert aupro(masks, const) == pytest.approx(0.15, abs=1e-12)
    assert aupro(masks, const, profile="ader") is None


def test_single_region():
    # One region of 4 pixels with values 4, 3, 2, 1 and 10 normal pixels at 0…0.9:
    # the region is covered fully before any false positive.
    amap = np.concatenate((np.array([4, 3, 2, 1.0]), np.arange(10) / 10))[None].astype(np.float32)
    mask = np.zeros(amap.shape, bool)
    mask[0, :4] = True
    assert aupro([mask], [amap]) == 1.0
    # Swap one region pixel below every normal pixel: PRO reaches 3/4 at FPR 0.
    amap[0, 3] = -1
    # PRO = 3/4 up to FPR 1, so the area is 3/4.
    assert aupro([mask], [amap]) == pytest.approx(0.75, abs=1e-12)


def test_undefined():
    maps = np.random.default_rng(0).random((2, 4, 4)).astype(np.float32)
    assert aupro(np.zeros((2, 4, 4), bool), maps) is None  # no region
    assert aupro(np.ones((2, 4, 4), bool), maps) is None  # no normal pixel
    with pytest.raises(ValueError, match="unknown profile"):
        aupro(np.zeros((2, 4, 4), bool), maps, profile="fast")


def test_ader_steps_default_100_as_the_published_configs():
    masks, maps, _ = random_class(31, n=12, dtype=np.float32, ties=False)
    values = stacked(maps).astype(np.float32)
    default = aupro(masks, maps, profile="ader")
    assert default == pytest.approx(ref.aupro_ader(masks, values, 100), abs=1e-9)
    assert aupro(masks, maps, profile="ader", steps=200) == pytest.approx(ref.aupro_ader(masks, values, 200), abs=1e-9)
    assert aupro(masks, maps, profile="ader", steps=200) != pytest.approx(default, abs=1e-6)
    with pytest.raises(ValueError, match="positive integer"):
        aupro(masks, maps, profile="ader", steps=0)


def test_ader_thresholds_are_numpy1_float32():
    """max - min of float32 maps stays float32 before the division by S (NumPy 1.x), and each
    threshold is rounded to float32 for the comparison."""
    from evaluator.metrics.aupro import ader_aupro_thresholds

    lo, hi = np.float32(0.1), np.float32(0.7000001)
    th = ader_aupro_thresholds(float(lo), float(hi), 100)
    assert th.dtype == np.float64 and th[0] == float(lo)
    np.testing.assert_array_equal(th, np.arange(float(lo), float(hi), float(hi - lo) / 100))
    assert float(hi - lo) != float(hi) - float(lo)  # the float32 difference is what ADer divides
