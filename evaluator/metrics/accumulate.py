"""One class's test set, streamed image by image into every metric of both profiles.

    acc = ClassAccumulator(pool=None)
    for gt, amap, label, score in images_of_one_class:
        acc.add(gt, amap, label, score)
    acc.result("exact"); acc.result("ader"); acc.result("ader-bench")   # all from the one pass
    acc.warnings("exact"); acc.sweep("exact")

Per image, ``add`` labels the ground-truth regions and counts the map into the
class's :class:`~evaluator.metrics.kernels.KeyCounts` table (dense and of fixed
size for float16 maps and 16-bit PNG codes), and keeps one image score per
profile. Everything else is computed from the table when a result is asked
for, so every profile comes from one read of the maps.

Image labels: ``exact`` takes the meta's ``label``, so an anomalous image with
an empty mask (a zero-area annotation, or an object that vanishes at the
evaluation size) still counts as anomalous. ``ader`` and ``ader-bench`` take
it from the ground truth at the evaluation size as ADer does
(``gt_sp = gt_px.max()``), so such an image counts as normal there; the
warnings of those profiles say how many images that concerns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from evaluator.metrics.aupro import _check_steps, aupro_from_counts
from evaluator.metrics.binned import adeval_pixel_metrics
from evaluator.metrics.kernels import KeyCounts, PixelCounter
from evaluator.metrics.params import ADER_AUPRO_STEPS, ADER_PROFILES, ADEVAL_NSTRIPS, METRIC_NAMES, PROFILES
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
    if amap.dtype not in (np.float16, np.float32, np.uint16):
        raise TypeError(f"amap must be float16, float32 or uint16 (16-bit PNG codes), got dtype {amap.dtype}")
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
    """The pixel :class:`KeyCounts` of one class: masks bool, maps float16/float32
    (or uint16: 16-bit PNG codes k, of value float32(k) / 65535).

    ``masks`` and ``maps``: arrays (N, H, W) or sequences of (H, W) arrays.
    """
    counter = PixelCounter()
    for gt, amap in _iter_pairs(masks, maps):
        counter.add(*_check_pair(gt, amap))
    return counter.counts()


def pixel_metrics_from_counts(kc: KeyCounts, profile: str = "exact",
                              aupro_steps: int = ADER_AUPRO_STEPS) -> dict[str, float | None]:
    """AUPRO, P-AUROC, P-AP, P-F1max and the threshold metrics of a pixel table.

    ``aupro_steps``: ADer's AUPRO threshold count (profile ``ader`` only).
    """
    _check_profile(profile)
    if profile == "ader-bench":
        out = adeval_pixel_metrics(kc, ADEVAL_NSTRIPS)
    else:
        out = {
            "AUPRO": aupro_from_counts(kc, profile, aupro_steps),
            "P-AUROC": roc_auc_from_counts(kc),
            "P-AP": average_precision_from_counts(kc),
        }
    out["P-F1max"] = f1_max_from_counts(kc) if profile == "exact" else ader_pixel_f1max_from_counts(kc)
    out.update(threshold_metrics_from_counts(kc, profile))
    return out


def pixel_metrics(masks, maps, profile: str = "exact", aupro_steps: int = ADER_AUPRO_STEPS) -> dict[str, float | None]:
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
    return pixel_metrics_from_counts(pixel_counts(masks, maps), profile, aupro_steps)


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

    ``pool``: for profiles ``ader`` and ``ader-bench``, score an image without a
    given score by the maximum of its ``pool``×``pool`` average-pooled map
    (ADer's ``pooling_ks``; stride 1, no padding) instead of its maximum.
    Profile ``exact`` always uses the maximum. ``aupro_steps``: ADer's AUPRO
    threshold count ``max_step_aupro`` (profile ``ader``).
    """

    def __init__(self, pool: int | None = None, aupro_steps: int = ADER_AUPRO_STEPS):
        if pool is not None:
            if isinstance(pool, bool) or not isinstance(pool, (int, np.integer)) or pool < 1:
                raise ValueError(f"pool must be a positive integer or None, got {pool!r}")
            pool = int(pool)
        self.pool = pool
        self.aupro_steps = _check_steps(aupro_steps)
        self._pixels = PixelCounter(pool)
        self._labels: list[int] = []
        self._mask_labels: list[int] = []  # ADer's label: whether the mask at the evaluation size has a pixel
        self._given: list[float] = []  # submitted scores; NaN where none was given
        self._results: dict[str, dict] = {}

    @property
    def n_images(self) -> int:
        return len(self._labels)

    @property
    def n_anomalous(self) -> int:
        """Anomalous images by the meta's labels."""
        return sum(self._labels)

    def labels(self, profile: str = "exact") -> np.ndarray:
        """The image labels of a profile, in the order added (int64; see the module docstring)."""
        _check_profile(profile)
        return np.asarray(self._mask_labels if profile in ADER_PROFILES else self._labels, np.int64)

    def add(self, gt, amap, label, score: float | None = None) -> None:
        """Add one test image (see the module docstring).

        ``gt`` bool (H, W) and ``amap`` float16/float32 (H, W), or uint16 16-bit
        PNG codes, finite, at the evaluation size; ``label`` 0/1 from the
        meta; ``score`` the submitted image score or ``None`` (then the map's
        maximum, or for the ADer profiles with ``pool`` its pooled maximum). A
        rejected image changes nothing.
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
        # Raises, staging nothing, on inf/NaN; returns whether the mask has a pixel.
        has_pixel = self._pixels.add(gt, amap, pooled=score is None and self.pool is not None)
        self._labels.append(int(label))
        self._mask_labels.append(int(has_pixel))
        self._given.append(math.nan if score is None else score)
        self._results.clear()

    def image_scores(self, profile: str = "exact") -> np.ndarray:
        """The image scores of a profile, in the order added (float64)."""
        _check_profile(profile)
        given = np.asarray(self._given, np.float64)
        own = self._pixels.image_max
        if profile in ADER_PROFILES and self.pool is not None:
            own = self._pixels.image_pooled
        return np.where(np.isnan(given), own, given)

    def result(self, profile: str = "exact") -> dict[str, float | None]:
        """All 11 metrics of ``METRIC_NAMES`` as floats in [0, 1]; ``None`` where undefined."""
        _check_profile(profile)
        if profile not in self._results:
            out = image_metrics(self.labels(profile), self.image_scores(profile))
            out.update(pixel_metrics_from_counts(self._pixels.counts(), profile, self.aupro_steps))
            self._results[profile] = {name: out[name] for name in METRIC_NAMES}
        return dict(self._results[profile])

    def label_disagreements(self) -> tuple[int, int]:
        """``(anomalous by the meta but empty mask, normal by the meta but with mask pixels)``."""
        meta = np.asarray(self._labels, bool)
        mask = np.asarray(self._mask_labels, bool)
        return int(np.count_nonzero(meta & ~mask)), int(np.count_nonzero(~meta & mask))

    def warnings(self, profile: str = "exact") -> list[str]:
        """One line per undefined metric of ``result(profile)``, saying why; for the
        ADer profiles also one line when mask-derived labels differ from the meta's."""
        result = self.result(profile)
        out = [f"{name}: undefined, {self._reason(name, profile)}"
               for name in METRIC_NAMES if result[name] is None]
        if profile in ADER_PROFILES:
            empty, extra = self.label_disagreements()
            if empty:
                out.append(f"{empty} image(s) anomalous by the meta have an empty mask at the evaluation size; "
                           f"profile {profile} counts them as normal, as ADer does (gt_px.max())")
            if extra:
                out.append(f"{extra} image(s) normal by the meta have anomalous mask pixels; "
                           f"profile {profile} counts them as anomalous, as ADer does (gt_px.max())")
        return out

    def _reason(self, name: str, profile: str) -> str:
        if self.n_images == 0:
            return "the class has no test image"
        if name in IMAGE_METRICS:
            labels = self.labels(profile)
            source = "" if profile == "exact" else " with a non-empty mask"
            if not labels.any():
                return f"the class has no anomalous image{source}"
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
            return f"fewer than two of ADer's {self.aupro_steps} thresholds give distinct FPRs below 0.3"
        if name == "AUPRO" and profile == "ader-bench":
            return ("ADEval's AUPRO is not a number here: no bin cut has FPR <= 0.3, "
                    "or PRO is 0 on both sides of FPR 0.3")
        return "degenerate counts"  # not reached by the definitions above

    def sweep(self, profile: str = "exact") -> dict[str, list]:
        """F1 / IoU / recall pooled over the class at normalised thresholds, for plots.

        ``{"thresholds": [...], "F1": [...], "IoU": [...], "recall": [...]}``:
        ``exact`` at 0.00, 0.01, …, 1.00; ``ader`` and ``ader-bench`` at ADer's
        21 thresholds 0, 0.05, …, 1. Empty lists when the maps cannot be normalised.
        """
        return sweep_from_counts(self._pixels.counts(), profile)
