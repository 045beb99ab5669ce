"""Profile ader-bench: ADEval's binned P-AUROC, P-AP and AUPRO, against the ``adeval`` package itself.

ADer's ``util/metric.py`` runs ``adeval.EvalAccumulatorCuda``. There is no GPU
here, so its CUDA module runs on the CPU with two substitutions that keep
its arithmetic: tensors are allocated on the CPU, and ``torch.histc(x, out=o)``
is computed in the input's dtype and then copied into ``o`` — what CUDA's
``_histc_out_cuda`` does; CPU ``histc`` refuses an ``out`` of another dtype.
CPU and CUDA ``histc`` share the bin formula (``(v - min) * bins / (max - min)``
in the input's dtype, truncated; the maximum in the last bin).
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from evaluator import reference as ref
from evaluator.bench import synthetic_image
from evaluator.metrics import ClassAccumulator, pixel_counts
from evaluator.metrics.binned import adeval_bins, adeval_pixel_metrics
from tests.evaluator.test_metrics_cases import random_class

torch = pytest.importorskip("torch")
pytest.importorskip("cv2")
adeval_cuda = pytest.importorskip("adeval.iterative_cuda")
adeval_cme = pytest.importorskip("adeval.cuda_mem_effic")
pytest.importorskip("scipy")


class _TorchOnCPU(types.ModuleType):
    """``torch`` as adeval's CUDA module sees it, run on the CPU (see the module docstring)."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def zeros(*args, device=None, **kwargs):
        return torch.zeros(*args, **kwargs)

    @staticmethod
    def histc(input, bins, min, max, out=None):
        hist = torch.histc(input, bins=bins, min=min, max=max)
        if out is None:
            return hist
        out.copy_(hist)
        return out


@pytest.fixture
def adeval_on_cpu(monkeypatch):
    monkeypatch.setattr(adeval_cme, "torch", _TorchOnCPU("torch"))
    if not hasattr(np, "trapz"):  # NumPy 2.4 dropped the alias adeval calls; trapezoid is the same function
        monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)

    def run(masks, maps, nstrips=50):
        """ADer's call: EvalAccumulatorCuda(score bounds, map min, map max, nstrips=50), add_anomap_batch."""
        maps = np.asarray(maps, np.float32)
        acc = adeval_cuda.EvalAccumulator(0.0, 1.0, float(maps.min()), float(maps.max()),
                                          skip_pixel_aupro=False, nstrips=nstrips)
        acc.add_anomap_batch(torch.tensor(maps), torch.tensor(np.asarray(masks).astype(np.uint8)))
        with np.errstate(invalid="ignore", divide="ignore"):  # its image accumulator is empty here
            s = acc.summary()
        return {"P-AUROC": s["p_auroc"], "P-AP": s["p_aupr"], "AUPRO": s["p_aupro"]}

    return run


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_matches_adeval_cuda_accumulator(adeval_on_cpu, seed, dtype):
    data = [synthetic_image(seed, i, 48, dtype) for i in range(24)]
    masks = np.stack([d[0] for d in data])
    maps = np.stack([d[1] for d in data])
    got = adeval_pixel_metrics(pixel_counts(masks, maps))
    want = adeval_on_cpu(masks, maps)
    for k in want:
        # ADEval rounds each region weight 1 / area to float32; we sum exact float64 weights.
        assert got[k] == pytest.approx(want[k], abs=1e-6), k


def test_ties_outliers_and_mixed_dtypes_match_adeval(adeval_on_cpu):
    masks, maps, labels = random_class(7, n=16, mixed=True)  # heavy ties, ±40 outliers, -0.0
    stacked32 = np.stack([m.astype(np.float32) for m in maps])
    acc = ClassAccumulator()
    for m, a, lab in zip(masks, maps, labels):
        acc.add(m, a, lab)
    got = acc.result("ader-bench")
    want = adeval_on_cpu(masks, stacked32)
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-6), k
    # The per-pixel NumPy reference bins the same way; it sums exact weights too.
    r = ref.adeval_binned(masks, stacked32)
    for k in want:
        assert got[k] == pytest.approx(r[k], abs=1e-12), k


def test_bins_follow_float32_arithmetic_and_the_maximum_counts_twice():
    lo, hi = np.float32(0.1), np.float32(0.7)
    v = np.array([0.1, 0.7, 0.4, 0.22000001], np.float32)
    b = adeval_bins(v.astype(np.float64), float(lo), float(hi))
    q = ((v - lo) * np.float32(50)) / (hi - lo)
    assert b.tolist() == [1, 50, min(int(q[2]), 49) + 1, int(q[3]) + 1]
    # One anomalous pixel at the maximum: it is in the top bin and in the overflow bin.
    m = np.array([[[False, True]]])
    a = np.array([[[0.0, 1.0]]], np.float32)
    from evaluator.metrics.binned import adeval_stats

    pos, neg, _ = adeval_stats(pixel_counts(m, a))
    assert pos[50] == 1 and pos[51] == 1 and pos.sum() == 2 and neg.sum() == 1


def test_undefined_where_adeval_fails():
    m = np.zeros((2, 4, 4), bool)
    m[0, 1:3, 1:3] = True
    const = np.full((2, 4, 4), 0.5, np.float32)  # ADEval asserts min < max
    assert adeval_pixel_metrics(pixel_counts(m, const)) == {"P-AUROC": None, "P-AP": None, "AUPRO": None}
    noise = np.random.default_rng(0).random((2, 4, 4)).astype(np.float32)
    assert adeval_pixel_metrics(pixel_counts(np.zeros((2, 4, 4), bool), noise))["P-AUROC"] is None
    # More than 30 % of the normal pixels at the maximum: no cut has FPR <= 0.3.
    flat = np.zeros((1, 4, 4), np.float32)
    flat[0, :2] = 1.0
    region = np.zeros((1, 4, 4), bool)
    region[0, 3, 3] = True
    acc = ClassAccumulator()
    acc.add(region[0], flat[0], 1)
    assert acc.result("ader-bench")["AUPRO"] is None
    assert any("ADEval's AUPRO" in w for w in acc.warnings("ader-bench"))
