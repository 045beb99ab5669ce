"""ADEval's binned P-AUROC, P-AP and AUPRO: profile ``ader-bench``.

ADer's benchmark tables (``configs/benchmark/README.md``) were computed with
``use_adeval=True``: ``util/metric.py`` feeds a class's maps and masks into
``adeval.EvalAccumulatorCuda(min − 1e-7, max + 1e-7, map min, map max,
nstrips=50)`` and takes ``p_auroc``, ``p_aupr`` and ``p_aupro`` from its
summary (the image metrics and the thresholded ones stay scikit-learn / ADer's
own, as in profile ``ader``). This module reproduces that accumulator from a
class's exact :class:`~evaluator.metrics.kernels.KeyCounts` table, binning the
per-value counts instead of the pixels; same bins, same sums.

The CUDA accumulator (the one ADer ran; ``adeval``'s CPU ``EvalAccumulator``
bins differently, with ``np.histogram`` on float32 ``linspace`` edges and
without the double count below), with S = nstrips, lo / hi the minimum and
maximum of the class's maps (float32):

- a pixel of value v goes to bin ``b = int(((v − lo) · S) / (hi − lo))``
  computed in float32, one rounding per operation (``torch.histc``'s CUDA
  kernel on float32 maps), ``b = S`` folded onto ``S − 1``; plus an
  underflow bin (v < lo: empty here) and an overflow bin for ``v >= hi``. A
  pixel equal to ``hi`` is counted twice, in bin S − 1 *and* in the overflow
  bin (``histc`` includes its upper edge; the overflow count is
  ``greater_equal(max)``), so the totals P and N are one or a few pixels
  larger than the class's;
- per bin: the count of anomalous pixels, of normal pixels, and the PRO weight
  of the anomalous ones (1 / region area, 8-connected regions per image);
- curves at the S + 1 cuts between bins (cumulative sums from the low end):
  TPR = TP / (TP + FN), FPR = FP / (FP + TN), precision = TP / (TP + FP)
  (1 where nothing is predicted), PRO = weighted TPR;
- P-AUROC and P-AP: the trapezoid rule over those points (``np.trapz``), in
  FPR and in recall, without the (0, 0) end point;
- AUPRO: the trapezoids of PRO over FPR up to the last point with FPR <= 0.3,
  plus the part of the next trapezoid up to FPR = 0.3 (ADEval's
  ``_trapezoid_intep``: that trapezoid's area split into a rectangle scaled by
  the fraction and a triangle scaled by its square), divided by 0.3.

Version: ``adeval`` 1.1.0, whose CUDA accumulator honours ``nstrips``; 1.0.0
ignored it there (1,000 strips), and ADer does not record which version
computed its tables (``adeval_pixel_metrics(kc, 1000)`` gives 1.0.0's numbers).

Differences from ADEval, all below 1e-7: ADEval rounds each region's weight
1 / area to float32 and sums float32 histograms per image and weight; here the
weights are exact float64 sums.

Undefined (``None``) where ADer gets NaN or stops: constant maps (ADEval's
``assert min < max``), no anomalous or no normal pixel, no point with
FPR <= 0.3 (more than 30 % of the normal pixels at the maximum), or PRO 0 on
both sides of FPR = 0.3 (ADEval divides 0 by 0 there).
"""

from __future__ import annotations

import numpy as np

from evaluator.metrics.kernels import KeyCounts
from evaluator.metrics.params import ADEVAL_NSTRIPS, AUPRO_FPR_LIMIT

BINNED_METRICS = ("P-AUROC", "P-AP", "AUPRO")


def adeval_bins(values: np.ndarray, lo: float, hi: float, nstrips: int = ADEVAL_NSTRIPS) -> np.ndarray:
    """Bin index (1 … S, after the underflow bin 0) of each float32-representable value in [lo, hi].

    ``int(((v − lo) · S) / (hi − lo))`` in float32 arithmetic, S folded onto
    S − 1. Values whose float32 arithmetic overflows (a range wider than
    float32's) land in the first bin.
    """
    v = np.asarray(values, np.float32)
    lo32, hi32 = np.float32(lo), np.float32(hi)
    with np.errstate(over="ignore", invalid="ignore"):
        q = ((v - lo32) * np.float32(nstrips)) / (hi32 - lo32)
    q = np.where(np.isfinite(q), q, np.float32(0))
    b = np.minimum(q.astype(np.int64), nstrips - 1)  # q >= 0: truncation is floor
    return b + 1


def adeval_stats(kc: KeyCounts, nstrips: int = ADEVAL_NSTRIPS):
    """ADEval's per-bin statistics of a pixel table: ``(pos, neg, weight)``, float64 (S + 2,) each.

    ``None`` for an empty or constant table. See the module docstring.
    """
    if kc.values.size == 0 or kc.values[-1] == kc.values[0]:
        return None
    bins = adeval_bins(kc.values, kc.values[0], kc.values[-1], nstrips)
    size = nstrips + 2
    pos = np.bincount(bins, weights=kc.pos.astype(np.float64), minlength=size)
    neg = np.bincount(bins, weights=kc.neg.astype(np.float64), minlength=size)
    weight = np.bincount(bins, weights=kc.weight, minlength=size)
    # The overflow bin: values >= the maximum, i.e. the last entry, counted a second time.
    pos[-1] += kc.pos[-1]
    neg[-1] += kc.neg[-1]
    weight[-1] += kc.weight[-1]
    return pos, neg, weight


def _cut_counts(stat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(negatives below each cut, positives at or above it) as ADEval sums them."""
    cum = np.cumsum(stat)
    below, total = cum[:-1], float(cum[-1])
    return below, total - below


def _trapz(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.trapezoid(y, x))


def _interpolated_part(fraction: float, area: float, y1: float, y2: float) -> float:
    """ADEval's ``_trapezoid_intep``: the part up to ``fraction`` of a trapezoid of ``area``
    whose sides are ``y1 <= y2`` (a rectangle share scaled linearly, a triangle share quadratically)."""
    rect = y1 / (y1 + 0.5 * (y2 - y1))
    return area * rect * fraction + area * (1.0 - rect) * fraction * fraction


def adeval_pixel_metrics(kc: KeyCounts, nstrips: int = ADEVAL_NSTRIPS) -> dict[str, float | None]:
    """``P-AUROC``, ``P-AP`` and ``AUPRO`` of a pixel table, binned as ADEval (module docstring).

    A perfect 1×4 ramp: the two anomalous pixels 2 and 3 fall into bins 34
    and 50 (3 also into the overflow bin), so the recall of the highest cut is
    1/3 and the precision-recall curve starts there: P-AP = 2/3, where the
    exact P-AP is 1.

    >>> m = np.array([[[False, False, True, True]]])
    >>> a = np.array([[[0.0, 1.0, 2.0, 3.0]]], np.float32)
    >>> from evaluator.metrics.accumulate import pixel_counts
    >>> r = adeval_pixel_metrics(pixel_counts(m, a))
    >>> r["P-AUROC"], round(r["P-AP"], 6), r["AUPRO"]
    (1.0, 0.666667, 1.0)
    """
    out: dict[str, float | None] = dict.fromkeys(BINNED_METRICS)
    stats = adeval_stats(kc, nstrips)
    if stats is None or kc.n_pos == 0 or kc.n_neg == 0:
        return out
    pos, neg, weight = stats
    fn, tp = _cut_counts(pos)
    tn, fp = _cut_counts(neg)
    tpr = tp / (tp + fn)
    fpr = fp / (fp + tn)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / (tp + fp)
    precision[~(tp + fp > 0)] = 1.0
    out["P-AUROC"] = _trapz(tpr[::-1], fpr[::-1])
    out["P-AP"] = _trapz(precision[::-1], tpr[::-1])
    if kc.n_regions:
        wfn, wtp = _cut_counts(weight)
        pro = wtp / (wtp + wfn)
        inside = fpr <= AUPRO_FPR_LIMIT
        if inside.any():
            lo_pro, lo_fpr = pro[inside][::-1], fpr[inside][::-1]
            hi_pro, hi_fpr = pro[~inside][::-1], fpr[~inside][::-1]
            lo = _trapz(lo_pro, lo_fpr)
            hi = _trapz(hi_pro, hi_fpr)
            total = _trapz(pro[::-1], fpr[::-1])
            y1, y2 = float(lo_pro[-1]), float(hi_pro[0])
            if y1 + 0.5 * (y2 - y1) != 0:
                fraction = (AUPRO_FPR_LIMIT - float(lo_fpr[-1])) / (float(hi_fpr[0]) - float(lo_fpr[-1]))
                part = _interpolated_part(fraction, total - (lo + hi), y1, y2)
                out["AUPRO"] = (lo + part) / AUPRO_FPR_LIMIT
    return out
