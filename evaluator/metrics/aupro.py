"""AUPRO: area under the per-region-overlap curve up to a false-positive rate of 0.3.

The ground truth of a class splits into 8-connected regions (over all its test
images). At a threshold t, a region's overlap is the fraction of its pixels
predicted anomalous; PRO(t) is the mean overlap over all regions of the class
and FPR(t) the fraction of the class's normal pixels predicted anomalous. With
the PRO weight of an anomalous pixel set to 1 / (area of its region), PRO(t) is
the weighted true-positive rate ``sum of weights above t / number of regions``:
AUPRO is a ROC whose positives are weighted, computed from the same
:class:`~evaluator.metrics.kernels.KeyCounts` table as the other metrics.

Profile ``exact`` (MVTec AD's definition): a point (FPR, PRO) at every distinct
map value t (pixel anomalous if value >= t), from (0, 0); the trapezoid area of
PRO over FPR from 0 to 0.3, the curve linearly interpolated at FPR = 0.3,
divided by 0.3, so a perfect detector scores 1.

Profile ``ader-bench``: ADEval's binned AUPRO (:mod:`evaluator.metrics.binned`).

Profile ``ader`` (ADer's ``cal_pro_score`` with ``max_step`` S, 100 as the
published configs pass it), differing from ``exact`` in:

- thresholds: only ``np.arange(min, max, delta)`` with
  ``delta = float(float32(max) - float32(min)) / S`` over the raw maps of the
  class (float32, or float16 widened exactly): under NumPy 1.x, which ADer ran,
  the float32 difference stays float32 and the division by the integer S
  gives a float64, so arange is float64 (about S points; the maximum itself is none);
- a pixel is anomalous if its value is ``> t``, compared in float32 (NumPy 1.x
  rounds the float64 threshold to the float32 array's type), so ``v > float32(t)``;
- the points with FPR < 0.3 are kept (no interpolation at 0.3), their FPRs
  rescaled to (f - min f) / (max f - min f), and the area is the trapezoid
  rule in threshold order (``sklearn.metrics.auc``), which is not divided by
  0.3 but rescaled in FPR instead;
- ADer averages per-region overlaps region by region; the weighted sum here is
  the same number up to float64 rounding (~1e-16);
- undefined (``None``; ADer would give NaN) for constant maps, or when fewer
  than two thresholds have distinct FPRs below 0.3.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from evaluator.metrics.kernels import KeyCounts, suffix_sums_at
from evaluator.metrics.params import ADER_AUPRO_STEPS, AUPRO_FPR_LIMIT, PROFILES


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")


def aupro_from_counts(kc: KeyCounts, profile: str = "exact", steps: int = ADER_AUPRO_STEPS) -> float | None:
    """AUPRO of a pixel table (see the module docstring); ``None`` if undefined.

    Undefined: no ground-truth region (no anomalous pixel) or no normal pixel;
    for ``ader`` also constant maps or a degenerate kept FPR range. ``steps``:
    ADer's ``max_step_aupro`` (profile ``ader`` only).
    """
    _check_profile(profile)
    if kc.values.size == 0 or kc.n_regions == 0 or kc.n_neg == 0:
        return None
    if profile == "exact":
        return _aupro_exact(kc)
    if profile == "ader-bench":
        from evaluator.metrics.binned import adeval_pixel_metrics

        return adeval_pixel_metrics(kc)["AUPRO"]
    return _aupro_ader(kc, steps)


@njit(cache=True)
def _aupro_exact_kernel(neg, weight, limit):
    # Points (FPR, PRO) from the largest value down, starting at (0, 0). PRO
    # divides by the float total of the weights (n_regions up to rounding,
    # summed in the same order), so it is exactly 1 once every anomalous
    # pixel is covered.
    n_neg = 0
    total = 0.0
    for i in range(neg.size - 1, -1, -1):
        n_neg += neg[i]
        total += weight[i]
    fp = 0
    w = 0.0
    x0 = 0.0
    y0 = 0.0
    area = 0.0
    for i in range(neg.size - 1, -1, -1):
        fp += neg[i]
        w += weight[i]
        x1 = fp / n_neg
        y1 = w / total
        if x1 >= limit:
            if x1 == limit:
                return (area + (x1 - x0) * (y1 + y0) / 2.0) / limit
            y_lim = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
            return (area + (limit - x0) * (y_lim + y0) / 2.0) / limit
        area += (x1 - x0) * (y1 + y0) / 2.0
        x0 = x1
        y0 = y1
    return np.nan  # not reached: the FPR ends at 1


def _aupro_exact(kc: KeyCounts) -> float:
    return float(_aupro_exact_kernel(kc.neg, kc.weight, AUPRO_FPR_LIMIT))


def ader_aupro_thresholds(lo: float, hi: float, steps: int) -> np.ndarray:
    """ADer's AUPRO thresholds for maps of float32 minimum ``lo`` and maximum
    ``hi``, as NumPy 1.x computes them (see the module docstring), float64."""
    lo32, hi32 = np.float32(lo), np.float32(hi)
    with np.errstate(over="ignore"):
        span = hi32 - lo32
    return np.arange(float(lo32), float(hi32), float(span) / steps)


def _check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"AUPRO steps must be a positive integer, got {steps!r}")
    return int(steps)


def _aupro_ader(kc: KeyCounts, steps: int = ADER_AUPRO_STEPS) -> float | None:
    steps = _check_steps(steps)
    lo, hi = kc.values[0], kc.values[-1]
    if hi == lo:
        return None
    thresholds = ader_aupro_thresholds(lo, hi, steps)
    # Pixels strictly above float32(t) are the table entries from index `first`
    # on (the table's float64 values are float32 values, so this compare is exact).
    first = np.searchsorted(kc.values, thresholds.astype(np.float32).astype(np.float64), side="right")
    fpr = suffix_sums_at(kc.neg, first) / kc.n_neg
    # Divided by the total weight (= n_regions up to rounding; see the exact kernel).
    pro = suffix_sums_at(kc.weight, first) / suffix_sums_at(kc.weight, np.zeros(1, np.int64))[0]
    keep = fpr < AUPRO_FPR_LIMIT
    fpr, pro = fpr[keep], pro[keep]
    if fpr.size < 2 or fpr.max() == fpr.min():
        return None
    fpr = (fpr - fpr.min()) / (fpr.max() - fpr.min())
    # FPR falls as t rises: the area is minus the trapezoid sum in threshold order.
    return float(-np.sum(np.diff(fpr) * (pro[1:] + pro[:-1])) / 2.0)


def aupro(masks, maps, profile: str = "exact", steps: int = ADER_AUPRO_STEPS) -> float | None:
    """AUPRO of a class's ground-truth masks and anomaly maps (see the module docstring).

    ``masks``: boolean (N, H, W) or a sequence of (H, W) masks; ``maps``:
    float16/float32 of the same shapes. ``None`` if undefined. ``steps``:
    ADer's threshold count (profile ``ader`` only).

    A detector whose region outranks every normal pixel covers it fully
    before any false positive, so PRO = 1 over the whole FPR range:

    >>> mask = np.zeros((1, 4), bool); mask[0, 3] = True
    >>> ramp = np.array([[0.0, 1.0, 2.0, 3.0]], np.float32)
    >>> aupro([mask], [ramp])
    1.0
    """
    from evaluator.metrics.accumulate import pixel_counts

    return aupro_from_counts(pixel_counts(masks, maps), profile, steps)
