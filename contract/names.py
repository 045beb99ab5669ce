"""Names shared across stages, spelled once (SPEC §5).

The evaluator writes them into result files; the leaderboard reads what a
result file carries and uses these only to order columns and splits.
"""

from __future__ import annotations

import os
from typing import Iterable

#: The 11 reported metrics, in the column order of the paper's tables.
METRIC_NAMES: tuple[str, ...] = (
    "I-AUROC", "I-AP", "I-F1max",
    "AUPRO",
    "P-AUROC", "P-AP", "P-F1max",
    "mF1_.2_.8", "mAcc_.2_.8", "mIoU_.2_.8",
    "mIoU-max",
)  # fmt: skip

#: The image-level metrics among :data:`METRIC_NAMES`.
IMAGE_METRICS: tuple[str, ...] = ("I-AUROC", "I-AP", "I-F1max")

#: Scoring profiles (SPEC §5): ``exact`` (the definitions, unbinned, the
#: default), ``ader`` (ADer's ``util/metric.py`` as the paper's configs ran it)
#: and ``ader-bench`` (as ADer's benchmark configs ran it: P-AUROC, P-AP and
#: AUPRO from the binned ADEval accumulator).
PROFILES: tuple[str, ...] = ("exact", "ader", "ader-bench")

#: The profile used when none is named.
DEFAULT_PROFILE = "exact"


def split_sort_key(sid: str) -> tuple[int, int, str]:
    """Natural order of split ids: numbers numerically, then the rest by name."""
    s = str(sid)
    return (0, int(s), "") if s.isdigit() else (1, 0, s)


def sort_split_ids(ids: Iterable[str]) -> list[str]:
    """Split ids sorted by :func:`split_sort_key` (``["10", "2", "a"]`` → ``["2", "10", "a"]``)."""
    return sorted((str(s) for s in ids), key=split_sort_key)


def default_workers(cap: int = 8) -> int:
    """Worker processes or threads when the user names none: the CPUs, at most ``cap``."""
    return max(1, min(cap, os.cpu_count() or 1))
