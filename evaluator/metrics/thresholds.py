"""Metrics of min-max normalised maps cut at fixed thresholds.

The maps of a class (all its test images) are normalised together,
``n = (v - min) / (max - min)`` in float64 (min, max over every pixel of the
class), and a pixel is predicted anomalous if ``n > t``. Counts are pooled
over the class: TP, FP, FN = anomalous pixels predicted anomalous, normal
pixels predicted anomalous, anomalous pixels predicted normal; P = TP + FN.

Profile ``exact``:

- F1 = 2TP / (2TP + FP + FN), recall = TP / (TP + FN), IoU = TP / (TP + FP + FN),
  each 0 where its denominator is 0;
- ``mF1_.2_.8`` / ``mAcc_.2_.8`` / ``mIoU_.2_.8``: the mean of F1 / recall /
  IoU at t = 0.2, 0.3, …, 0.8 (the doubles nearest to the decimals);
- ``mIoU-max``: the maximum IoU over every threshold, i.e. over every cut
  between distinct normalised values (predicted set ``n >= u`` for each
  distinct normalised value u; the empty set scores 0);
- sweep: F1 / IoU / recall at t = 0.00, 0.01, …, 1.00.

Profiles ``ader`` and ``ader-bench`` (ADer's ``util/metric.py``), differing in:

- precision = TP / (TP + FP + 1e-8), recall = TP / (TP + FN + 1e-8),
  F1 = 2PR / (P + R + 1e-8), IoU = TP / (TP + FP + FN + 1e-8);
- the .2–.8 thresholds are ``np.arange(0.2, 0.8 + 1e-3, 0.1)``;
- ``mIoU-max`` and ``P-F1max`` take the maximum over only the 21 thresholds
  ``np.arange(0, 1 + 1e-3, 0.05)``; the sweep uses the same 21;
- precision: ADer normalises the maps as they are, and a submission's maps
  are float32 (float16 ones widened exactly), so ``n`` is computed in float32,
  each operation rounded (:attr:`KeyCounts.normalised_f32`); ADer compares
  that float32 array with float64 thresholds under NumPy 1.x, whose
  value-based casting rounds the threshold to float32 first (ADer's torch
  2.1 needs NumPy < 2), so ``n > float32(t)``. Hence arange's rounding
  (0.30000000000000004, …) does not matter there, and a pixel whose float32
  ``n`` equals float32(0.3) is not above 0.3, as in ADer.

All of them are undefined (``None``) for a class without an anomalous pixel,
and for constant maps (max = min: no normalisation).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from evaluator.metrics.kernels import KeyCounts, suffix_sums_at
from evaluator.metrics.params import (
    ADER_EPS,
    ADER_MAX_GRID,
    ADER_MID_GRID,
    EXACT_MID_GRID,
    EXACT_SWEEP_GRID,
    PROFILES,
)

THRESHOLD_METRICS = ("mF1_.2_.8", "mAcc_.2_.8", "mIoU_.2_.8", "mIoU-max")


def normalised_values(kc: KeyCounts, profile: str = "exact") -> np.ndarray | None:
    """Min-max normalised ``kc.values`` (float64 for ``exact``, ADer's float32
    otherwise); ``None`` if empty or constant."""
    return kc.normalised if profile == "exact" else kc.normalised_f32


def _above(kc: KeyCounts, norm: np.ndarray, grid: np.ndarray):
    """Pooled (TP, FP) of ``norm > t`` for each t of ``grid`` (in ``norm``'s dtype, see the module docstring)."""
    first = np.searchsorted(norm, grid.astype(norm.dtype), side="right")
    return suffix_sums_at(kc.pos, first), suffix_sums_at(kc.neg, first)


@njit(cache=True)
def _iou_max_over_cuts(norm, pos, neg, n_pos):
    """Largest IoU = TP / (FP + P) over the sets ``norm >= u``, u each distinct value."""
    best = 0.0
    tp = 0
    fp = 0
    for i in range(norm.size - 1, -1, -1):
        tp += pos[i]
        fp += neg[i]
        if i == 0 or norm[i - 1] != norm[i]:
            best = max(best, tp / (fp + n_pos))
    return best


def _ratio(num, den) -> np.ndarray:
    num = np.asarray(num, np.float64)
    den = np.asarray(den, np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


def exact_rates(tp, fp, n_pos) -> dict[str, np.ndarray]:
    """F1, recall, IoU of ``exact`` from pooled counts (0 where a denominator is 0)."""
    tp = np.asarray(tp, np.int64)
    fp = np.asarray(fp, np.int64)
    fn = n_pos - tp
    return {
        "F1": _ratio(2 * tp, 2 * tp + fp + fn),
        "recall": _ratio(tp, tp + fn),
        "IoU": _ratio(tp, tp + fp + fn),
    }


def ader_rates(tp, fp, n_pos) -> dict[str, np.ndarray]:
    """F1, recall, IoU of ``ader`` from pooled counts (ADer's 1e-8 formulas)."""
    tp = np.asarray(tp, np.int64)
    fp = np.asarray(fp, np.int64)
    fn = n_pos - tp
    eps = ADER_EPS
    precision = tp / (tp + fp + eps)
    recall = tp / (tp + fn + eps)
    f1 = 2.0 * precision * recall / (precision + recall + eps)
    return {"F1": f1, "recall": recall, "IoU": tp / (tp + fp + fn + eps)}


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")


def threshold_metrics_from_counts(kc: KeyCounts, profile: str = "exact") -> dict[str, float | None]:
    """``mF1_.2_.8``, ``mAcc_.2_.8``, ``mIoU_.2_.8``, ``mIoU-max`` of a pixel table."""
    _check_profile(profile)
    norm = normalised_values(kc, profile)
    n_pos = kc.n_pos
    if norm is None or n_pos == 0:
        return dict.fromkeys(THRESHOLD_METRICS)
    if profile == "exact":
        tp, fp = _above(kc, norm, EXACT_MID_GRID)
        mid = exact_rates(tp, fp, n_pos)
        iou_max = float(_iou_max_over_cuts(norm, kc.pos, kc.neg, n_pos))
    else:
        tp, fp = _above(kc, norm, ADER_MID_GRID)
        mid = ader_rates(tp, fp, n_pos)
        tp21, fp21 = _above(kc, norm, ADER_MAX_GRID)
        iou_max = float(np.max(ader_rates(tp21, fp21, n_pos)["IoU"]))
    return {
        "mF1_.2_.8": float(np.mean(mid["F1"])),
        "mAcc_.2_.8": float(np.mean(mid["recall"])),
        "mIoU_.2_.8": float(np.mean(mid["IoU"])),
        "mIoU-max": iou_max,
    }


def ader_pixel_f1max_from_counts(kc: KeyCounts) -> float | None:
    """ADer's P-F1max: the largest ADer F1 over the 21 normalised thresholds.

    ``exact`` uses every threshold of the raw maps instead
    (:func:`evaluator.metrics.ranking.f1_max_from_counts`).
    """
    norm = normalised_values(kc, "ader")
    n_pos = kc.n_pos
    if norm is None or n_pos == 0:
        return None
    tp, fp = _above(kc, norm, ADER_MAX_GRID)
    return float(np.max(ader_rates(tp, fp, n_pos)["F1"]))


def sweep_from_counts(kc: KeyCounts, profile: str = "exact") -> dict[str, list]:
    """F1 / IoU / recall at the profile's normalised sweep thresholds.

    ``exact``: t = 0.00, 0.01, …, 1.00 and the exact formulas; ``ader`` and
    ``ader-bench``: the 21 thresholds of ADer and its formulas. Plain Python
    floats. When the normalised maps are undefined (no pixel, constant maps)
    every list is empty.
    """
    _check_profile(profile)
    grid = EXACT_SWEEP_GRID if profile == "exact" else ADER_MAX_GRID
    norm = normalised_values(kc, profile)
    if norm is None:
        return {"thresholds": [], "F1": [], "IoU": [], "recall": []}
    tp, fp = _above(kc, norm, grid)
    rates = (exact_rates if profile == "exact" else ader_rates)(tp, fp, kc.n_pos)
    return {
        "thresholds": [float(t) for t in grid],
        "F1": [float(x) for x in rates["F1"]],
        "IoU": [float(x) for x in rates["IoU"]],
        "recall": [float(x) for x in rates["recall"]],
    }


def threshold_metrics(masks, maps, profile: str = "exact") -> dict[str, float | None]:
    """``mF1_.2_.8``, ``mAcc_.2_.8``, ``mIoU_.2_.8`` and ``mIoU-max`` of one class.

    ``masks``: boolean (N, H, W) or a sequence of (H, W); ``maps`` float16 /
    float32 of the same shapes. Definitions in the module docstring.

    The two top pixels of a 1×4 ramp are anomalous; normalised, the map is
    (0, 1/3, 2/3, 1): at t = 0.2, 0.3 three pixels pass (F1 4/5), at
    t = 0.4, 0.5, 0.6 exactly the two anomalous ones (F1 1), at t = 0.7, 0.8 one
    (F1 2/3, recall 1/2); the cut n >= 2/3 is perfect (IoU 1).

    >>> m = np.array([[False, False, True, True]])
    >>> a = np.array([[0.0, 1.0, 2.0, 3.0]], np.float32)
    >>> r = threshold_metrics([m], [a])
    >>> round(r["mF1_.2_.8"], 6), round(r["mAcc_.2_.8"], 6), r["mIoU-max"]
    (0.847619, 0.857143, 1.0)
    """
    from evaluator.metrics.accumulate import pixel_counts

    return threshold_metrics_from_counts(pixel_counts(masks, maps), profile)
