"""Plain NumPy reference implementations of every metric (no Numba, no streaming).

These hold all maps of a class in memory and follow the textbook recipes, so
they serve as the independent check of :mod:`evaluator.metrics` in the tests
and as the baseline of ``python -m evaluator bench``:

- ranking metrics: one global stable sort of the scores, cumulative TP / FP
  at the last sample of each run of equal scores (as scikit-learn); all pixel
  curve metrics of a class share that one sort;
- AUPRO ``exact``: regions by ``scipy.ndimage.label`` with a 3×3 structure,
  one global sort of all pixels, running totals of normal pixels and of
  1 / region area, linear interpolation at FPR 0.3, divided by 0.3 (MVTec AD);
- AUPRO ``ader``: ADer's loop over its ~100 thresholds, each with a boolean
  map and per-region covered fractions (``np.bincount``), in float32 as ADer
  ran it under NumPy 1.x (thresholds rounded to the maps' float32);
- threshold metrics: boolean maps of the normalised pixels at each threshold
  (``ader``: normalised in float32, thresholds rounded to float32);
- ``ader-bench``: ADEval's CUDA binning of every pixel (float32 bin index,
  the maximum counted twice), histograms, cumulative sums and ``np.trapezoid``;
- image labels: the meta's for ``exact``, the masks' for the ADer profiles.

SciPy is needed only for the region labelling and is imported there (it is a
test extra, not a runtime dependency).
"""

from __future__ import annotations

import numpy as np

from contract.names import METRIC_NAMES

EXACT_MID = np.arange(2, 9) / 10.0
EXACT_SWEEP = np.arange(101) / 100.0
ADER_MID = np.arange(0.2, 0.8 + 1e-3, 0.1)
ADER_MAX = np.arange(0.0, 1.0 + 1e-3, 0.05)
ADER_EPS = 1e-8
FPR_LIMIT = 0.3
ADER_STEPS = 100
NSTRIPS = 50
ADER_PROFILES = ("ader", "ader-bench")

NAMES = METRIC_NAMES  # the names are the contract's; every number here is computed independently


# ------------------------------------------------------------- regions


def label_regions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected regions of a 2-D boolean mask (``scipy.ndimage.label``)."""
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), int))
    return labels.astype(np.int32), int(n)


def pro_weights(masks: np.ndarray) -> tuple[np.ndarray, int]:
    """Per-pixel PRO weight (1 / area of its region; 0 off the mask) and the region count."""
    weights = np.zeros(masks.shape, np.float64)
    total = 0
    for i, mask in enumerate(masks):
        labels, n = label_regions(mask)
        if n:
            area = np.bincount(labels.ravel())
            inv = np.zeros(n + 1)
            inv[1:] = 1.0 / area[1:]
            weights[i] = inv[labels]
        total += n
    return weights, total


# -------------------------------------------------------- sort-based curves


def curve(y_true, y_score, weight=None, order=None):
    """Distinct thresholds (descending) with cumulative TP, FP and weight of ``score >= t``.

    ``order``: a precomputed stable descending argsort of ``y_score`` (reused
    across metrics of the same pixels).
    """
    y_true = np.asarray(y_true).ravel().astype(bool)
    y_score = np.asarray(y_score, np.float64).ravel()
    if order is None:
        order = descending_order(y_score)
    s = y_score[order]
    y = y_true[order]
    last = np.flatnonzero(np.concatenate((s[1:] != s[:-1], [True])))
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    w = None
    if weight is not None:
        w = np.cumsum(np.asarray(weight, np.float64).ravel()[order])[last]
    return s[last], tp, fp, w


def descending_order(y_score) -> np.ndarray:
    """Stable argsort of the scores, largest first."""
    return np.argsort(-np.asarray(y_score, np.float64).ravel(), kind="stable")


def _auroc(tp, fp):
    if tp[-1] == 0 or fp[-1] == 0:
        return None
    tpr = np.concatenate(([0.0], tp / tp[-1]))
    fpr = np.concatenate(([0.0], fp / fp[-1]))
    return float(np.trapezoid(tpr, fpr))


def _average_precision(tp, fp):
    if tp[-1] == 0:
        return None
    precision = tp / (tp + fp)
    recall = np.concatenate(([0.0], tp / tp[-1]))
    return float(np.sum((recall[1:] - recall[:-1]) * precision))


def _f1_max(tp, fp):
    if tp[-1] == 0:
        return None
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    with np.errstate(invalid="ignore"):
        f1 = 2 * precision * recall / (precision + recall)
    return float(np.nanmax(f1))


def _aupro_from_curve(fp, w, n_neg, n_regions):
    if n_regions == 0 or n_neg == 0:
        return None
    fpr = np.concatenate(([0.0], fp / n_neg))
    pro = np.concatenate(([0.0], w / n_regions))
    inside = fpr <= FPR_LIMIT
    area = np.trapezoid(pro[inside], fpr[inside])
    i = int(np.count_nonzero(inside))  # first point beyond the limit
    if fpr[i - 1] != FPR_LIMIT:
        y_lim = pro[i - 1] + (pro[i] - pro[i - 1]) * (FPR_LIMIT - fpr[i - 1]) / (fpr[i] - fpr[i - 1])
        area += 0.5 * (y_lim + pro[i - 1]) * (FPR_LIMIT - fpr[i - 1])
    return float(area / FPR_LIMIT)


def auroc(y_true, y_score) -> float | None:
    _, tp, fp, _ = curve(y_true, y_score)
    return _auroc(tp, fp)


def average_precision(y_true, y_score) -> float | None:
    _, tp, fp, _ = curve(y_true, y_score)
    return _average_precision(tp, fp)


def f1_max(y_true, y_score) -> float | None:
    _, tp, fp, _ = curve(y_true, y_score)
    return _f1_max(tp, fp)


# --------------------------------------------------------------------- AUPRO


def aupro_exact(masks, maps) -> float | None:
    """MVTec AD AUPRO: PRO over FPR up to 0.3, interpolated at 0.3, divided by 0.3."""
    masks = np.asarray(masks, bool)
    weights, n_regions = pro_weights(masks)
    if n_regions == 0:
        return None
    _, _, fp, w = curve(masks, maps, weights)
    return _aupro_from_curve(fp, w, int((~masks).sum()), n_regions)


def aupro_ader(masks, maps, steps: int = ADER_STEPS) -> float | None:
    """ADer's ``cal_pro_score``: ``steps`` raw thresholds, value > t, FPR < 0.3, rescaled, trapezoid.

    As NumPy 1.x runs it on float32 maps: ``max - min`` in float32, divided by
    ``steps`` in float64, ``arange`` in float64, each threshold rounded to
    float32 for the comparison.
    """
    masks = np.asarray(masks, bool)
    amaps = np.asarray(maps, np.float32)
    region = np.zeros(masks.shape, np.int64)
    offset = 0
    for i, mask in enumerate(masks):
        labels, n = label_regions(mask)
        region[i] = np.where(labels > 0, labels + offset, 0)
        offset += n
    if offset == 0 or (~masks).sum() == 0:
        return None
    lo, hi = amaps.min(), amaps.max()  # float32 scalars
    if hi == lo:
        return None
    delta = np.float64(hi - lo) / steps
    r = region[masks]
    area = np.bincount(r, minlength=offset + 1)[1:]
    v_pos = amaps[masks]
    v_neg = amaps[~masks]
    pros, fprs = [], []
    for th in np.arange(np.float64(lo), np.float64(hi), delta):
        th32 = np.float32(th)
        covered = np.bincount(r[v_pos > th32], minlength=offset + 1)[1:]
        pros.append(np.mean(covered / area))
        fprs.append(np.count_nonzero(v_neg > th32) / v_neg.size)
    pros, fprs = np.array(pros), np.array(fprs)
    keep = fprs < FPR_LIMIT
    fprs, pros = fprs[keep], pros[keep]
    if fprs.size < 2 or fprs.max() == fprs.min():
        return None
    fprs = (fprs - fprs.min()) / (fprs.max() - fprs.min())
    return float(-np.trapezoid(pros, fprs))


# ------------------------------------------------------ threshold metrics


def normalise(maps, dtype=np.float64) -> np.ndarray | None:
    """Min-max normalised maps, every operation in ``dtype`` (float64 for exact, float32 as ADer)."""
    amaps = np.asarray(maps, dtype)
    lo, hi = amaps.min(), amaps.max()
    if hi == lo:
        return None
    return (amaps - lo) / (hi - lo)


def _pooled(gt, pred):
    tp = int(np.count_nonzero(gt & pred))
    fp = int(np.count_nonzero(~gt & pred))
    fn = int(np.count_nonzero(gt & ~pred))
    return tp, fp, fn


def _exact_rates(tp, fp, fn):
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0
    recall = tp / (tp + fn) if (tp + fn) else 0.0
    iou = tp / (tp + fp + fn) if (tp + fp + fn) else 0.0
    return f1, recall, iou


def _ader_rates(tp, fp, fn):
    p = tp / (tp + fp + ADER_EPS)
    r = tp / (tp + fn + ADER_EPS)
    f1 = 2 * p * r / (p + r + ADER_EPS)
    return f1, r, tp / (tp + fp + fn + ADER_EPS)


def threshold_metrics_exact(masks, maps, order=None) -> dict[str, float | None]:
    """``order``: optional descending argsort of the maps (the normalised maps sort alike)."""
    masks = np.asarray(masks, bool)
    norm = normalise(maps)
    keys = ("mF1_.2_.8", "mAcc_.2_.8", "mIoU_.2_.8", "mIoU-max")
    if norm is None or not masks.any():
        return dict.fromkeys(keys)
    rates = np.array([_exact_rates(*_pooled(masks, norm > t)) for t in EXACT_MID])
    # Every cut between distinct normalised values: sets norm >= u.
    _, tp, fp, _ = curve(masks, norm, order=order)
    n_pos = int(masks.sum())
    iou_max = max(0.0, float(np.max(tp / (fp + n_pos))))
    return {"mF1_.2_.8": float(np.mean(rates[:, 0])), "mAcc_.2_.8": float(np.mean(rates[:, 1])),
            "mIoU_.2_.8": float(np.mean(rates[:, 2])), "mIoU-max": iou_max}


def threshold_metrics_ader(masks, maps) -> dict[str, float | None]:
    """ADer's thresholded metrics: float32 normalisation, ``norm > float32(t)`` (NumPy 1.x)."""
    masks = np.asarray(masks, bool)
    norm = normalise(maps, np.float32)
    keys = ("mF1_.2_.8", "mAcc_.2_.8", "mIoU_.2_.8", "mIoU-max", "P-F1max")
    if norm is None or not masks.any():
        return dict.fromkeys(keys)
    mid = np.array([_ader_rates(*_pooled(masks, norm > np.float32(t))) for t in ADER_MID])
    top = np.array([_ader_rates(*_pooled(masks, norm > np.float32(t))) for t in ADER_MAX])
    return {"mF1_.2_.8": float(np.mean(mid[:, 0])), "mAcc_.2_.8": float(np.mean(mid[:, 1])),
            "mIoU_.2_.8": float(np.mean(mid[:, 2])), "mIoU-max": float(np.max(top[:, 2])),
            "P-F1max": float(np.max(top[:, 0]))}


def sweep(masks, maps, profile="exact") -> dict[str, list]:
    masks = np.asarray(masks, bool)
    exact = profile == "exact"
    norm = normalise(maps, np.float64 if exact else np.float32)
    if norm is None:
        return {"thresholds": [], "F1": [], "IoU": [], "recall": []}
    grid, rates = (EXACT_SWEEP, _exact_rates) if exact else (ADER_MAX, _ader_rates)
    rows = np.array([rates(*_pooled(masks, norm > (t if exact else np.float32(t)))) for t in grid])
    return {"thresholds": grid.tolist(), "F1": rows[:, 0].tolist(),
            "IoU": rows[:, 2].tolist(), "recall": rows[:, 1].tolist()}


# ------------------------------------------------------------ ader-bench


def adeval_binned(masks, maps, nstrips: int = NSTRIPS) -> dict[str, float | None]:
    """P-AUROC, P-AP, AUPRO as ADEval's CUDA accumulator bins them, pixel by pixel.

    Each pixel's bin: ``int(((v - min) * S) / (max - min))`` in float32 (S
    folded onto S - 1), plus the overflow bin ``v >= max`` (so the maximum
    counts twice); weights 1 / region area (8-connected per image). Then
    cumulative sums, TPR / FPR / precision / PRO at the S + 1 cuts, and
    ``np.trapezoid``; AUPRO up to FPR 0.3 with ADEval's interpolated last piece.
    """
    out = dict.fromkeys(("P-AUROC", "P-AP", "AUPRO"))
    masks = np.asarray(masks, bool)
    v = np.asarray(maps, np.float32)
    lo, hi = v.min(), v.max()
    if hi == lo or not masks.any() or masks.all():
        return out
    weights, n_regions = pro_weights(masks)
    b = (((v - lo) * np.float32(nstrips)) / (hi - lo)).astype(np.int64)
    b = np.where(b == nstrips, nstrips - 1, b) + 1
    top = v == hi

    def hist(sel, w=None):
        h = np.bincount(b[sel], weights=None if w is None else w[sel], minlength=nstrips + 2).astype(np.float64)
        h[-1] += np.count_nonzero(sel & top) if w is None else w[sel & top].sum()
        return h

    def cuts(h):
        c = np.cumsum(h)
        return c[:-1], c[-1] - c[:-1]  # below the cut, at or above it

    fn, tp = cuts(hist(masks))
    tn, fp = cuts(hist(~masks))
    tpr, fpr = tp / (tp + fn), fp / (fp + tn)
    with np.errstate(invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
    out["P-AUROC"] = float(np.trapezoid(tpr[::-1], fpr[::-1]))
    out["P-AP"] = float(np.trapezoid(precision[::-1], tpr[::-1]))
    wfn, wtp = cuts(hist(masks, weights))
    pro = wtp / (wtp + wfn)
    x, y = fpr[::-1], pro[::-1]  # ascending FPR
    k = int(np.count_nonzero(x <= FPR_LIMIT))
    if k == 0 or y[k - 1] + y[k] == 0:
        return out
    piece = 0.5 * (x[k] - x[k - 1]) * (y[k - 1] + y[k])  # the trapezoid across FPR 0.3
    f = (FPR_LIMIT - x[k - 1]) / (x[k] - x[k - 1])
    rect = y[k - 1] / (y[k - 1] + 0.5 * (y[k] - y[k - 1]))
    out["AUPRO"] = float((np.trapezoid(y[:k], x[:k]) + piece * (rect * f + (1 - rect) * f * f)) / FPR_LIMIT)
    return out


# ---------------------------------------------------------------- images


def pooled_max(amap, k: int) -> float:
    """Max of the k×k average pooling (stride 1, no padding) of a float16/float32 map,
    or of uint16 16-bit PNG codes (value code / 65535).

    float16: exact integer window sums in units of 2^-24 (an integral image of
    int64); PNG codes: exact integer sums of the codes; float32: a float64
    integral image. See :mod:`evaluator.metrics.pooling`.
    """
    a = np.asarray(amap)
    h, w = a.shape
    if a.dtype in (np.float16, np.uint16):
        png = a.dtype == np.uint16
        units = a.astype(np.int64) if png else (a.astype(np.float64) * 2.0**24).astype(np.int64)  # float16 = n * 2^-24
        s = np.zeros((h + 1, w + 1), np.int64)
        s[1:, 1:] = np.cumsum(np.cumsum(units, axis=0), axis=1)
        win = (s[k:, k:] - s[:-k, k:]) - (s[k:, :-k] - s[:-k, :-k])
        if png:
            return float(np.float64(win.max()) / 65535.0 / (k * k))
        return float(np.float64(win.max()) * 2.0**-24 / (k * k))
    s = np.zeros((h + 1, w + 1))
    s[1:, 1:] = np.cumsum(np.cumsum(a.astype(np.float64), axis=0), axis=1)
    win = (s[k:, k:] - s[:-k, k:]) - (s[k:, :-k] - s[:-k, :-k])
    return float(win.max() / (k * k))


def png_values(codes) -> np.ndarray:
    """float32 values of 16-bit PNG codes: code / 65535, as the map reader decodes them."""
    return np.asarray(codes).astype(np.float32) / np.float32(65535)


def map_values(m) -> np.ndarray:
    """A map's values: float16/float32 as they are, uint16 PNG codes decoded to float32."""
    m = np.asarray(m)
    return png_values(m) if m.dtype == np.uint16 else m


def image_scores(maps, scores=None, profile="exact", pool=None) -> np.ndarray:
    """``maps``: (N, H, W) or a list of maps; pooling reads each map's own dtype."""
    if scores is not None:
        return np.asarray(scores, np.float64)
    if profile in ADER_PROFILES and pool is not None:
        return np.array([pooled_max(m, pool) for m in maps])
    return np.array([float(np.max(map_values(m))) for m in maps])


# ------------------------------------------------------------------- all 11


def evaluate(masks, maps, labels, scores=None, profile="exact", pool=None,
             aupro_steps: int = ADER_STEPS) -> dict[str, float | None]:
    """All 11 metrics of one class: masks (N, H, W), maps (N, H, W) or a list of maps.

    ``labels`` are the meta's; the ADer profiles take them from the masks
    instead. The pixel curve metrics share one global sort of the pixels (and,
    for ``exact``, the normalised maps reuse it: normalising preserves order).
    """
    masks = np.asarray(masks, bool)
    labels = np.asarray(labels, np.int64)
    if profile in ADER_PROFILES:
        labels = masks.any(axis=(1, 2)).astype(np.int64)
    s = image_scores(maps, scores, profile, pool)
    if not isinstance(maps, np.ndarray) or maps.dtype == np.uint16:  # a list of maps, maybe of mixed dtypes
        maps = np.stack([np.asarray(map_values(m), np.float32 if profile != "exact" else np.float64) for m in maps])
    out: dict[str, float | None] = {}
    if labels.size and labels.any():
        _, tp, fp, _ = curve(labels, s)
        out.update({"I-AUROC": _auroc(tp, fp), "I-AP": _average_precision(tp, fp),
                    "I-F1max": _f1_max(tp, fp)})
    else:
        out.update({"I-AUROC": None, "I-AP": None, "I-F1max": None})
    order = descending_order(maps)
    weights, n_regions = pro_weights(masks)
    _, tp, fp, w = curve(masks, maps, weights, order=order)
    out["P-AUROC"] = _auroc(tp, fp) if masks.any() else None
    out["P-AP"] = _average_precision(tp, fp)
    if profile == "exact":
        out["AUPRO"] = _aupro_from_curve(fp, w, int((~masks).sum()), n_regions)
        out["P-F1max"] = _f1_max(tp, fp)
        out.update(threshold_metrics_exact(masks, maps, order=order))
    else:
        out["AUPRO"] = aupro_ader(masks, maps, aupro_steps)
        out.update(threshold_metrics_ader(masks, maps))
    if profile == "ader-bench":
        out.update(adeval_binned(masks, maps))
    return {name: out[name] for name in NAMES}
