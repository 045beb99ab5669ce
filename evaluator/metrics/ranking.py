"""Curve metrics of ranked scores: ROC area, average precision, F1-max.

All three sweep a :class:`~evaluator.metrics.kernels.KeyCounts` table from its
largest value down. At the threshold ``t`` equal to each distinct value, a
sample is predicted anomalous if its score is ``>= t`` (scikit-learn's
convention); ``TP(t)``, ``FP(t)`` are the anomalous / normal samples so
predicted, ``P``, ``N`` the totals. They serve image scores (I-AUROC, I-AP,
I-F1max) and pixels (P-AUROC, P-AP, and P-F1max of profile ``exact``) alike.
Profile ``ader`` uses scikit-learn for these (``roc_auc_score``,
``average_precision_score``, ``precision_recall_curve``), which are the same
definitions, so they do not depend on the profile; only ADer's pixel F1-max
differs (see :func:`evaluator.metrics.thresholds.ader_pixel_f1max`).

An undefined metric is ``None`` (scikit-learn raises or warns and returns NaN).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from evaluator.metrics.kernels import KeyCounts


@njit(cache=True)
def _curve_stats(pos, neg):
    """One sweep from the largest value down: (ROC area, AP, F1-max); P > 0 assumed.

    ROC area = sum over values of neg * (TP above + pos / 2) / (P N) (the
    trapezoids of the ROC; NaN if N = 0); AP = sum of pos / P * precision;
    F1 = 2 TP / (TP + FP + P).
    """
    n_pos = 0
    n_neg = 0
    for i in range(pos.size):
        n_pos += pos[i]
        n_neg += neg[i]
    tp = 0
    fp = 0
    area = 0.0
    ap = 0.0
    f1 = 0.0
    for i in range(pos.size - 1, -1, -1):
        p = pos[i]
        n = neg[i]
        area += np.float64(n) * np.float64(2 * tp + p)
        tp += p
        fp += n
        if p:
            ap += p * (tp / (tp + fp))
        f1 = max(f1, 2.0 * tp / (tp + fp + n_pos))
    roc = area / (2.0 * n_pos * n_neg) if n_neg else np.nan
    return roc, ap / n_pos, f1


def _stats(kc: KeyCounts):
    if kc.values.size == 0 or kc.n_pos == 0:
        return None
    # One sweep serves all three metrics; it is kept with the table.
    cached = kc.__dict__.get("_curve_stats")
    if cached is None:
        cached = kc.__dict__["_curve_stats"] = _curve_stats(kc.pos, kc.neg)
    return cached


def roc_auc_from_counts(kc: KeyCounts) -> float | None:
    """ROC area of a table; ``None`` without both an anomalous and a normal sample."""
    stats = _stats(kc)
    if stats is None or kc.n_neg == 0:
        return None
    return float(stats[0])


def average_precision_from_counts(kc: KeyCounts) -> float | None:
    """Step-wise average precision of a table; ``None`` without an anomalous sample."""
    stats = _stats(kc)
    return None if stats is None else float(stats[1])


def f1_max_from_counts(kc: KeyCounts) -> float | None:
    """Largest F1 over every threshold of a table; ``None`` without an anomalous sample."""
    stats = _stats(kc)
    return None if stats is None else float(stats[2])


def auroc(y_true, y_score) -> float | None:
    """Area under the ROC curve of binary labels and scores.

    ROC points (FPR, TPR) = (FP(t) / N, TP(t) / P) at every distinct score t
    (sample positive if score >= t), from (0, 0) to (1, 1), joined by straight
    lines; equal scores therefore count one half (Mann-Whitney U / (P N)).
    ``None`` if ``y_true`` lacks either class.

    >>> auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> auroc([0, 1], [0.5, 0.5])
    0.5
    """
    return roc_auc_from_counts(KeyCounts.from_arrays(y_true, y_score))


def average_precision(y_true, y_score) -> float | None:
    """Average precision, step-wise as scikit-learn's ``average_precision_score``.

    AP = sum over distinct scores t, from the largest down, of
    (R(t) - R(previous t)) * P(t), with precision P = TP / (TP + FP) and
    recall R = TP / P (no interpolation). ``None`` without an anomalous sample.

    >>> round(average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 6)
    0.833333
    """
    return average_precision_from_counts(KeyCounts.from_arrays(y_true, y_score))


def f1_max(y_true, y_score) -> float | None:
    """Maximum F1 over every threshold of the scores.

    F1(t) = 2 TP / (2 TP + FP + FN) at each distinct score t (positive if
    score >= t); the maximum over t. Equal to the maximum of 2PR / (P + R)
    along scikit-learn's ``precision_recall_curve``. ``None`` without an
    anomalous sample.

    >>> f1_max([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.8
    """
    return f1_max_from_counts(KeyCounts.from_arrays(y_true, y_score))
