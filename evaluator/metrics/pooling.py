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


# Only the max reduction may be vectorised ("no NaN" lets LLVM reorder max,
# which is exact); the window sums keep IEEE order, so they equal the
# reference's bit for bit.
@njit(cache=True, nogil=True, fastmath={"nnan", "ninf", "nsz"})
def _window_max(s, k):
    """Largest k×k window sum of the integral image ``s``, divided by k².

    Window (i, j) = (s[i+k, j+k] - s[i, j+k]) - (s[i+k, j] - s[i, j]): the
    difference of two column strips, each computed once per row pair.
    """
    h = s.shape[0] - 1
    w = s.shape[1] - 1
    strip = np.empty(w + 1, np.float64)
    best = -np.inf
    for i in range(h - k + 1):
        top = s[i]
        bottom = s[i + k]
        for j in range(w + 1):
            strip[j] = bottom[j] - top[j]
        for j in range(w - k + 1):
            best = max(best, strip[j + k] - strip[j])
    return best / (k * k)


@njit(cache=True, nogil=True)
def _integral_block(rows, n, i, s, col):
    # Adds the n (<= 4) float64 rows ``rows[:n]`` (map rows i … i + n - 1) to
    # the integral image: s[i + 1, j + 1] = sum of a[:i + 1, :j + 1], i.e.
    # cumsum down the columns (col), then along the rows (run), as
    # np.cumsum(np.cumsum(a, 0), 1). Four rows go together so that their
    # running sums overlap in the pipeline; each element still sees the same
    # additions in the same order.
    w = s.shape[1] - 1
    if n == 4:
        r0 = 0.0
        r1 = 0.0
        r2 = 0.0
        r3 = 0.0
        for j in range(w):
            c0 = col[j] + rows[0, j]
            c1 = c0 + rows[1, j]
            c2 = c1 + rows[2, j]
            c3 = c2 + rows[3, j]
            col[j] = c3
            r0 += c0
            r1 += c1
            r2 += c2
            r3 += c3
            s[i + 1, j + 1] = r0
            s[i + 2, j + 1] = r1
            s[i + 3, j + 1] = r2
            s[i + 4, j + 1] = r3
    else:
        for r in range(n):
            run = 0.0
            for j in range(w):
                col[j] += rows[r, j]
                run += col[j]
                s[i + r + 1, j + 1] = run
    for r in range(n):
        s[i + r + 1, 0] = 0.0


@njit(cache=True, nogil=True)
def _integral(a, s, col):
    """Integral image of a float32 (or any real) map into ``s`` (H + 1, W + 1); ``col``: (5, W) scratch."""
    h, w = a.shape
    s[0, :] = 0.0
    col[0, :] = 0.0
    rows = col[1:]
    for i in range(0, h, 4):
        n = min(4, h - i)
        for r in range(n):
            for j in range(w):
                rows[r, j] = np.float64(a[i + r, j])
        _integral_block(rows, n, i, s, col[0])


@njit(cache=True, nogil=True)
def _integral_f16(bits, table, s, col):
    """:func:`_integral` of a float16 map given by its raw bits (``table``: value of each pattern)."""
    h, w = bits.shape
    s[0, :] = 0.0
    col[0, :] = 0.0
    rows = col[1:]
    for i in range(0, h, 4):
        n = min(4, h - i)
        for r in range(n):
            for j in range(w):
                rows[r, j] = table[bits[i + r, j]]
        _integral_block(rows, n, i, s, col[0])


@njit(cache=True, nogil=True)
def _pooled_max(a, k):
    h, w = a.shape
    s = np.empty((h + 1, w + 1), np.float64)
    _integral(a, s, np.empty((5, w), np.float64))
    return _window_max(s, k)


#: float64 value of every float16 bit pattern (indexed by the raw 16 bits).
F16_BY_BITS = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float64)


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
    amap = np.ascontiguousarray(amap)
    if amap.dtype == np.float16:  # Numba has no float16 arrays: read the bits
        h, w = amap.shape
        s = np.empty((h + 1, w + 1), np.float64)
        _integral_f16(amap.view(np.uint16), F16_BY_BITS, s, np.empty((5, w), np.float64))
        return float(_window_max(s, k))
    return float(_pooled_max(amap, k))
