"""One class's test set, streamed image by image into every metric of both profiles.

    acc = ClassAccumulator(pool=None)
    for gt, amap, label, score in images_of_one_class:
        acc.add(gt, amap, label, score)
    acc.result("exact"); acc.result("ader")      # both from the one pass
    acc.warnings("exact"); acc.sweep("exact")

Per image, ``add`` labels the ground-truth regions and counts the map into the
class's :class:`~evaluator.metrics.kernels.KeyCounts` table (dense and of fixed
size for float16 maps), and keeps one image score per profile. Everything else
is computed from the table when a result is asked for, so both profiles come
from one read of the maps.

Image labels come from the meta (``label``), not from the mask: an anomalous
image may have an empty mask (a zero-area annotation) and still counts as
anomalous for the image metrics. ADer takes the image label from the mask
(``gt_px.max()``), so for such images the ``ader`` image metrics differ from
ADer's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from evaluator.metrics.aupro import aupro_from_counts
from evaluator.metrics.kernels import KeyCounts, PixelCounter
from evaluator.metrics.params import METRIC_NAMES, PROFILES
from evaluator.metrics.ranking import (
    average_precision_from_counts,
    f1_max_from_counts,
    roc_auc_from_counts,
)
from evaluator.metrics.thresholds import (
    THRESHOLD_METRICS,
    ader_pixel_f1max_from_counts,
    normalised_values,
    sweep_from_counts,
    threshold_metrics_from_counts,
)

IMAGE_METRICS = ("I-AUROC", "I-AP", "I-F1max")
PIXEL_METRICS = ("AUPRO", "P-AUROC", "P-AP", "P-F1max") + THRESHOLD_METRICS


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")


def _check_pair(gt, amap) -> tuple[np.ndarray, np.ndarray]:
    gt = np.asarray(gt)
    amap = np.asarray(amap)
    if amap.ndim != 2:
        raise ValueError(f"amap must be 2-D (H, W), got shape {amap.shape}")
    if gt.shape != amap.shape:
        raise ValueError(f"gt has shape {gt.shape} but amap has shape {amap.shape}")
    if gt.dtype != np.bool_:
        raise TypeError(f"gt must be a boolean mask, got dtype {gt.dtype}")
    if amap.dtype not in (np.float16, np.float32):
        raise TypeError(f"amap must be float16 or float32, got dtype {amap.dtype}")
    if amap.size == 0:
        raise ValueError("amap is empty")
    return np.ascontiguousarray(gt), np.ascontiguousarray(amap)


def _iter_pairs(masks, maps) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    masks = list(masks) if not isinstance(masks, np.ndarray) else masks
    maps = list(maps) if not isinstance(maps, np.ndarray) else maps
    if len(masks) != len(maps):
        raise ValueError(f"{len(masks)} masks but {len(maps)} maps")
    return zip(masks, maps)


def pixel_counts(masks, maps) -> KeyCounts:
    """The pixel :class:`KeyCounts` of one class: masks bool, maps float16/float32.

    ``masks`` and ``maps``: arrays (N, H, W) or sequences of (H, W) arrays.
    """
    counter = PixelCounter()
    for gt, amap in _iter_pairs(masks, maps):
        counter.add(*_check_pair(gt, amap))
    return counter.counts()


def pixel_metrics_from_counts(kc: KeyCounts, profile: str = "exact") -> dict[str, float | None]:
    """AUPRO, P-AUROC, P-AP, P-F1max and the threshold metrics of a pixel table."""
    _check_profile(profile)
    out = {
        "AUPRO": aupro_from_counts(kc, profile),
        "P-AUROC": roc_auc_from_counts(kc),
        "P-AP": average_precision_from_counts(kc),
        "P-F1max": (f1_max_from_counts(kc) if profile == "exact"
                    else ader_pixel_f1max_from_counts(kc)),
    }
    out.update(threshold_metrics_from_counts(kc, profile))
    return out


def pixel_metrics(masks, maps, profile: str = "exact") -> dict[str, float | None]:
    """Every pixel metric of one class (AUPRO, P-AUROC, P-AP, P-F1max, mF1/mAcc/mIoU .2–.8, mIoU-max).

    ``masks`` bool and ``maps`` float16/float32, (N, H, W) or sequences of
    (H, W). Definitions: :mod:`evaluator.metrics.ranking`,
    :mod:`evaluator.metrics.aupro`, :mod:`evaluator.metrics.thresholds`.

    >>> m = np.array([[[False, False, True, True]]])
    >>> a = np.array([[[0.0, 1.0, 2.0, 3.0]]], np.float16)
    >>> r = pixel_metrics(m, a)
    >>> r["P-AUROC"], r["P-AP"], r["P-F1max"], r["AUPRO"], r["mIoU-max"]
    (1.0, 1.0, 1.0, 1.0, 1.0)
    """
    return pixel_metrics_from_counts(pixel_counts(masks, maps), profile)


def image_metrics(y_true, y_score) -> dict[str, float | None]:
    """I-AUROC, I-AP and I-F1max of image labels and scores (the same in both profiles).

    >>> image_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])["I-AUROC"]
    0.75
    """
    kc = KeyCounts.from_arrays(y_true, y_score)
    return {
        "I-AUROC": roc_auc_from_counts(kc),
        "I-AP": average_precision_from_counts(kc),
        "I-F1max": f1_max_from_counts(kc),
    }


class ClassAccumulator:
    """Every metric of one (split, class), from maps streamed one image at a time.

    ``pool``: for profile ``ader``, score an image without a given score by the
    maximum of its ``pool``×``pool`` average-pooled map (ADer's ``pooling_ks``;
    stride 1, no padding) instead of its maximum. Profile ``exact`` always uses
    the maximum.
    """

    def __init__(self, pool: int | None = None):
        if pool is not None:
            if isinstance(pool, bool) or not isinstance(pool, (int, np.integer)) or pool < 1:
                raise ValueError(f"pool must be a positive integer or None, got {pool!r}")
            pool = int(pool)
        self.pool = pool
        self._pixels = PixelCounter(pool)
        self._labels: list[int] = []
        self._given: list[float] = []  # submitted scores; NaN where none was given
        self._results: dict[str, dict] = {}

    @property
    def n_images(self) -> int:
        return len(self._labels)

    @property
    def n_anomalous(self) -> int:
        return sum(self._labels)

    def add(self, gt, amap, label, score: float | None = None) -> None:
        """Add one test image (see the module docstring).

        ``gt`` bool (H, W) and ``amap`` float16/float32 (H, W), finite, at the
        evaluation size; ``label`` 0/1 from the meta; ``score`` the submitted
        image score or ``None`` (then the map's maximum, or for ``ader`` with
        ``pool`` its pooled maximum). A rejected image changes nothing.
        """
        gt, amap = _check_pair(gt, amap)
        if isinstance(label, (bool, np.bool_)):
            label = int(label)
        if not isinstance(label, (int, np.integer)) or label not in (0, 1):
            raise ValueError(f"label must be 0 or 1, got {label!r}")
        if score is not None:
            try:
                score = float(score)
            except (TypeError, ValueError):
                raise TypeError(f"score must be a number or None, got {score!r}") from None
            if not math.isfinite(score):
                raise ValueError(f"score must be finite, got {score!r}")
        if score is None and self.pool is not None and self.pool > min(amap.shape):
            raise ValueError(f"pool size {self.pool} does not fit a map of shape {amap.shape}")
        # Raises, staging nothing, on inf/NaN.
        self._pixels.add(gt, amap, pooled=score is None and self.pool is not None)
        self._labels.append(int(label))
        self._given.append(math.nan if score is None else score)
        self._results.clear()

    def image_scores(self, profile: str = "exact") -> np.ndarray:
        """The image scores of a profile, in the order added (float64)."""
        _check_profile(profile)
        given = np.asarray(self._given, np.float64)
        own = self._pixels.image_max
        if profile == "ader" and self.pool is not None:
            own = self._pixels.image_pooled
        return np.where(np.isnan(given), own, given)

    def result(self, profile: str = "exact") -> dict[str, float | None]:
        """All 11 metrics of ``METRIC_NAMES`` as floats in [0, 1]; ``None`` where undefined."""
        _check_profile(profile)
        if profile not in self._results:
            out = image_metrics(np.asarray(self._labels, np.int64), self.image_scores(profile))
            out.update(pixel_metrics_from_counts(self._pixels.counts(), profile))
            self._results[profile] = {name: out[name] for name in METRIC_NAMES}
        return dict(self._results[profile])

    def warnings(self, profile: str = "exact") -> list[str]:
        """One line per undefined metric of ``result(profile)``, saying why."""
        result = self.result(profile)
        return [f"{name}: undefined, {self._reason(name, profile)}"
                for name in METRIC_NAMES if result[name] is None]

    def _reason(self, name: str, profile: str) -> str:
        if self.n_images == 0:
            return "the class has no test image"
        if name in IMAGE_METRICS:
            if self.n_anomalous == 0:
                return "the class has no anomalous image"
            return "the class has no normal image"
        kc = self._pixels.counts()
        if kc.n_pos == 0:
            return "the class has no anomalous pixel"
        if name in ("P-AUROC", "AUPRO") and kc.n_neg == 0:
            return "the class has no normal pixel"
        if normalised_values(kc) is None:
            return (f"every map value of the class is {float(kc.values[0])!r}, so the maps "
                    "cannot be min-max normalised or thresholded")
        if name == "AUPRO" and profile == "ader":
            return "fewer than two of ADer's 200 thresholds give distinct FPRs below 0.3"
        return "degenerate counts"  # not reached by the definitions above

    def sweep(self, profile: str = "exact") -> dict[str, list]:
        """F1 / IoU / recall pooled over the class at normalised thresholds, for plots.

        ``{"thresholds": [...], "F1": [...], "IoU": [...], "recall": [...]}``:
        ``exact`` at 0.00, 0.01, …, 1.00; ``ader`` at its 21 thresholds
        0, 0.05, …, 1. Empty lists when the maps cannot be normalised.
        """
        return sweep_from_counts(self._pixels.counts(), profile)
