"""Exact anomaly-detection metrics (SPEC §5), streaming and Numba-accelerated.

One shared kernel (:mod:`~evaluator.metrics.kernels`: per-map-value counts of
anomalous pixels, normal pixels and PRO weight) and thin metric families over
it, one per module:

- :mod:`~evaluator.metrics.ranking`: ROC area, average precision, F1-max;
- :mod:`~evaluator.metrics.aupro`: AUPRO (MVTec AD; ADer's 200-step variant);
- :mod:`~evaluator.metrics.thresholds`: mF1 / mAcc / mIoU at normalised
  thresholds 0.2–0.8, mIoU-max, sweeps;
- :mod:`~evaluator.metrics.regions`: 8-connected labelling of ground truth;
- :mod:`~evaluator.metrics.pooling`: ADer's average-pooled image score;
- :mod:`~evaluator.metrics.accumulate`: :class:`ClassAccumulator`, one class's
  test set streamed once into all 11 metrics of both profiles;
- :mod:`~evaluator.metrics.params`: names, profiles, published grids.

Function arguments follow scikit-learn (``y_true, y_score``; masks before
maps). Undefined metrics are ``None``, never NaN.
"""

from evaluator.metrics.accumulate import (
    ClassAccumulator,
    image_metrics,
    pixel_counts,
    pixel_metrics,
)
from evaluator.metrics.aupro import aupro
from evaluator.metrics.kernels import KeyCounts
from evaluator.metrics.params import METRIC_NAMES, PROFILES
from evaluator.metrics.pooling import pooled_max
from evaluator.metrics.ranking import auroc, average_precision, f1_max
from evaluator.metrics.regions import label_regions
from evaluator.metrics.thresholds import threshold_metrics

__all__ = [
    "METRIC_NAMES",
    "PROFILES",
    "ClassAccumulator",
    "KeyCounts",
    "aupro",
    "auroc",
    "average_precision",
    "f1_max",
    "image_metrics",
    "label_regions",
    "pixel_counts",
    "pixel_metrics",
    "pooled_max",
    "threshold_metrics",
]
