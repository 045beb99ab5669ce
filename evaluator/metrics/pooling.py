"""ADer's pooled image score: the maximum of the k×k average-pooled map.

ADer (``pooling_ks`` in the paper's benchmark configs, k = 16) scores an image
by ``avg_pool2d(map, k, stride=1)`` (no padding) and takes the maximum. Here
the window sums come from a float64 integral image (``cumsum`` down the
columns, then along the rows, exactly the order of the NumPy reference), so
the result is deterministic and independent of the thread count. ADer pools
float32 tensors with torch; the two agree to float32 rounding.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _pooled_max(a, k):
    h, w = a.shape
    # s[i, j] = sum of a[:i, :j]; row and column 0 are zero.
    s = np.zeros((h + 1, w + 1), np.float64)
    col = np.zeros(w, np.float64)
    for i in range(h):
        run = 0.0
        for j in range(w):
            col[j] += np.float64(a[i, j])
            run += col[j]
            s[i + 1, j + 1] = run
    best = -np.inf
    for i in range(h - k + 1):
        for j in range(w - k + 1):
            v = s[i + k, j + k] - s[i, j + k] - s[i + k, j] + s[i, j]
            if v > best:
                best = v
    return best / (k * k)


def pooled_max(amap: np.ndarray, k: int) -> float:
    """Maximum of the k×k average pooling (stride 1, no padding) of a 2-D map.

    >>> pooled_max(np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8]], np.float32), 2)
    6.0
    """
    amap = np.asarray(amap)
    if amap.ndim != 2:
        raise ValueError(f"amap must be 2-D, got shape {amap.shape}")
    k = int(k)
    if k < 1 or k > min(amap.shape):
        raise ValueError(f"pool size {k} does not fit a map of shape {amap.shape}")
    return pooled_max_unchecked(amap, k)


def pooled_max_unchecked(amap: np.ndarray, k: int) -> float:
    """:func:`pooled_max` for a 2-D float16/float32 map already known to fit ``k``."""
    # Numba has no float16 arrays; float16 -> float32 is exact.
    if amap.dtype != np.float32:
        amap = amap.astype(np.float32)
    return float(_pooled_max(np.ascontiguousarray(amap), k))
