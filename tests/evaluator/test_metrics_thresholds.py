"""Normalised-threshold metrics (mF1/mAcc/mIoU .2-.8, mIoU-max, sweeps) against NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator import reference as ref
from evaluator.metrics import ClassAccumulator, pixel_counts, threshold_metrics
from evaluator.metrics.thresholds import (
    ader_pixel_f1max_from_counts,
    normalised_values,
    sweep_from_counts,
)
from tests.evaluator.test_metrics_cases import random_class, stacked


@pytest.mark.parametrize("seed", range(8))
def test_exact_and_ader_match_references(seed):
    dtype = np.float16 if seed % 2 else np.float32
    masks, maps, _ = random_class(seed + 100, n=9, dtype=dtype, ties=seed % 3 != 0)
    values = stacked(maps)
    got = threshold_metrics(masks, maps)
    want = ref.threshold_metrics_exact(masks, values)
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-9), k
    got = threshold_metrics(masks, maps, profile="ader")
    want = ref.threshold_metrics_ader(masks, values)
    for k in got:
        assert got[k] == pytest.approx(want[k], abs=1e-9), k
    kc = pixel_counts(masks, maps)
    assert ader_pixel_f1max_from_counts(kc) == pytest.approx(want["P-F1max"], abs=1e-9)
    for profile in ("exact", "ader"):
        s, r = sweep_from_counts(kc, profile), ref.sweep(masks, values, profile)
        assert s["thresholds"] == r["thresholds"]
        for k in ("F1", "IoU", "recall"):
            np.testing.assert_allclose(s[k], r[k], rtol=0, atol=1e-9)


def test_the_same_pixels_pass_bit_for_bit():
    """Normalisation per key equals the reference's per pixel, so counts agree exactly."""
    masks, maps, _ = random_class(5, n=20, dtype=np.float16, ties=False)
    values = stacked(maps)
    kc = pixel_counts(masks, maps)
    norm_keys = normalised_values(kc)
    norm_pixels = ref.normalise(values)
    np.testing.assert_array_equal(np.unique(norm_pixels), norm_keys)
    for t in np.arange(0, 1.0001, 0.01):
        tp = int((masks & (norm_pixels > t)).sum())
        assert tp == int(kc.pos[norm_keys > t].sum())


def test_strict_threshold_and_ader_epsilons():
    # The middle pixel normalises to exactly 0.3 (3 / 10): value > t is strict,
    # so it fails t = 0.3 in both profiles (ADer's 0.30000000000000004 as well).
    m = np.array([[False, True, True]])
    amap = np.array([[0.0, 3.0, 10.0]], np.float32)
    assert ref.normalise(amap)[0, 1] == 0.3
    r = threshold_metrics([m], [amap])
    assert r["mAcc_.2_.8"] == pytest.approx((1.0 + 6 * 0.5) / 7)
    assert r["mIoU_.2_.8"] == pytest.approx((1.0 + 6 * 0.5) / 7)
    r = threshold_metrics([m], [amap], profile="ader")
    assert r["mAcc_.2_.8"] == pytest.approx((2 / (2 + 1e-8) + 6 * (1 / (2 + 1e-8))) / 7, abs=1e-15)


def test_constant_and_empty_are_none_with_warnings():
    masks = np.zeros((2, 4, 4), bool)
    masks[0, 1:3, 1:3] = True
    const = np.full((2, 4, 4), 0.5, np.float16)
    for profile in ("exact", "ader"):
        r = threshold_metrics(masks, const, profile=profile)
        assert all(v is None for v in r.values())
    acc = ClassAccumulator()
    for m, a, lab in zip(masks, const, (1, 0)):
        acc.add(m, a, lab)
    res = acc.result()
    assert res["P-AUROC"] == 0.5 and res["P-AP"] == pytest.approx(4 / 32)
    assert res["AUPRO"] == pytest.approx(0.15)
    assert res["mF1_.2_.8"] is None and res["mIoU-max"] is None
    warns = acc.warnings()
    assert len(warns) == 4 and all("0.5" in w and "normalised" in w for w in warns)
    ader = acc.result("ader")
    assert ader["AUPRO"] is None and ader["P-F1max"] is None
    assert len(acc.warnings("ader")) == 6
    assert acc.sweep() == {"thresholds": [], "F1": [], "IoU": [], "recall": []}
    # No anomalous pixel: defined normalisation, but the pixel metrics are undefined.
    r = threshold_metrics(np.zeros((1, 3, 3), bool), np.arange(9, dtype=np.float32).reshape(1, 3, 3))
    assert all(v is None for v in r.values())


def test_sweep_shapes():
    masks, maps, _ = random_class(2, n=6)
    acc = ClassAccumulator()
    for m, a, lab in zip(masks, maps, np.ones(6, int)):
        acc.add(m, a, lab)
    s = acc.sweep("exact")
    assert len(s["thresholds"]) == 101 and s["thresholds"][:3] == [0.0, 0.01, 0.02]
    assert s["thresholds"][-1] == 1.0 and all(type(x) is float for x in s["F1"])
    s = acc.sweep("ader")
    assert len(s["thresholds"]) == 21 and len(s["IoU"]) == 21
    with pytest.raises(ValueError, match="unknown profile"):
        acc.sweep("fast")


def test_ader_normalises_in_float32_and_rounds_thresholds_to_float32():
    """ADer normalises float32 maps in float32 and, under NumPy 1.x, compares them with
    float32(t): the pixel 3.0000002 of a 0…10 map normalises to 0.30000002 in float64,
    above 0.3, but to float32(0.3) in float32, which is not above float32(0.3)."""
    m = np.array([[False, True, True]])
    amap = np.array([[0.0, 3.0000002, 10.0]], np.float32)
    assert ref.normalise(amap)[0, 1] > 0.3 and ref.normalise(amap, np.float32)[0, 1] == np.float32(0.3)
    eps = 1e-8
    half, full = 1 / (2 + eps), 2 / (2 + eps)
    got = threshold_metrics([m], [amap], profile="ader")
    assert got["mAcc_.2_.8"] == pytest.approx((full + 6 * half) / 7, abs=1e-15)  # at 0.3 only the 10 is above
    assert got["mAcc_.2_.8"] == pytest.approx(ref.threshold_metrics_ader([m], [amap])["mAcc_.2_.8"], abs=1e-15)
    exact = threshold_metrics([m], [amap])
    assert exact["mAcc_.2_.8"] == pytest.approx((2 + 5 * 0.5) / 7)  # exact keeps float64
