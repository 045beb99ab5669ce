"""The NumPy references themselves, against scikit-learn, scikit-image, torch and closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator import reference as ref
from tests.evaluator.test_metrics_cases import random_class, stacked

sk = pytest.importorskip("sklearn.metrics")
pytest.importorskip("scipy")


@pytest.mark.parametrize("seed", range(5))
def test_ranking_matches_sklearn(seed):
    masks, maps, labels = random_class(seed + 50, n=8)
    y, s = masks.ravel(), stacked(maps).ravel()
    assert ref.auroc(y, s) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-12)
    assert ref.average_precision(y, s) == pytest.approx(sk.average_precision_score(y, s), abs=1e-12)
    p, r, _ = sk.precision_recall_curve(y, s)
    with np.errstate(invalid="ignore"):
        assert ref.f1_max(y, s) == pytest.approx(np.nanmax(2 * p * r / (p + r)), abs=1e-12)


@pytest.mark.parametrize("steps", [100, 200])
def test_aupro_ader_follows_skimage_regions_and_sklearn_auc(steps):
    """ADer's recipe written out with its own tools: skimage regions, sklearn.metrics.auc.

    ADer ran it under NumPy 1.x on float32 maps: there ``max - min`` of two
    float32 scalars stays float32, its division by the int ``max_step`` is
    float64, and ``amaps > th`` compares in float32 (value-based casting).
    NumPy 2 promotes differently, so those two casts are written out here.
    """
    measure = pytest.importorskip("skimage.measure")
    masks, maps, _ = random_class(77, n=6, dtype=np.float32)
    amaps = stacked(maps).astype(np.float32)
    lo, hi = amaps.min(), amaps.max()
    regions = [(i, r.coords) for i, m in enumerate(masks) for r in measure.regionprops(measure.label(m))]
    pros, fprs = [], []
    for th in np.arange(lo, hi, np.float64(hi - lo) / steps):
        binary = amaps > np.float32(th)
        pros.append(np.mean([binary[i][c[:, 0], c[:, 1]].sum() / len(c) for i, c in regions]))
        fprs.append(np.logical_and(~masks, binary).sum() / (~masks).sum())
    pros, fprs = np.array(pros), np.array(fprs)
    keep = fprs < 0.3
    f = fprs[keep]
    f = (f - f.min()) / (f.max() - f.min())
    assert ref.aupro_ader(masks, amaps, steps) == pytest.approx(sk.auc(f, pros[keep]), abs=1e-12)


def test_pooled_max_matches_torch_avg_pool():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for k in (1, 2, 5, 16):
        a = rng.random((37, 41)).astype(np.float32)
        t = torch.nn.functional.avg_pool2d(torch.from_numpy(a)[None, None].double(), k, stride=1)
        assert ref.pooled_max(a, k) == pytest.approx(float(t.max()), abs=1e-12)


def test_closed_forms():
    n = 20
    amap = np.concatenate((np.arange(1, 2 * n + 1), np.arange(1, n + 1))).astype(np.float32)[None, None]
    mask = np.zeros(amap.shape, bool)
    mask[..., : 2 * n] = True
    assert ref.aupro_exact(mask, amap) == pytest.approx(0.575, abs=1e-12)
    assert ref.auroc(mask, amap) == pytest.approx(0.75, abs=1e-12)
    const = np.zeros((1, 4, 4))
    m = np.zeros((1, 4, 4), bool)
    m[0, 0, 0] = True
    assert ref.aupro_exact(m, const) == pytest.approx(0.15)
    assert ref.aupro_ader(m, const) is None
    assert ref.threshold_metrics_exact(m, const)["mIoU-max"] is None
