"""ADer's pooled image score: the maximum of the k×k average-pooled map.

ADer (``pooling_ks`` in the paper's benchmark configs, k = 16) scores an image
by ``avg_pool2d(map, k, stride=1)`` (no padding) and takes its maximum. ADer
pools float32 tensors with torch, rounding every partial sum to float32; here
the window sums are exact or nearly so, so the two agree to float32 rounding:

- float16 maps: every float16 is an integer multiple of 2^-24 below 2^16, so
  the map is read as int64 multiples of 2^-24 and the window sums are exact
  integers (running column sums, then a prefix sum along each row). The score
  is ``float(max sum) * 2^-24 / k²``: the exact largest window mean, rounded
  once or twice.
- 16-bit PNG maps (codes c, value c / 65535): the same exact integer sums of
  the codes; the score is ``float(max sum) / 65535 / k²``.
- float32 maps: window sums from a float64 integral image (``cumsum`` down the
  columns, then along the rows); exact while the map's values span less than
  about 2^29 in magnitude, and always the same bits as the NumPy reference
  (:func:`evaluator.reference.pooled_max`), which does the same operations.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _f16_fixed(b):
    """A float16 (its 16 bits in an int64) as an exact int64 multiple of 2^-24."""
    e = (b >> 10) & 31
    m = b & 1023
    normal = np.int64(e != 0)
    mag = (m + (normal << 10)) << (e - normal)
    return mag - 2 * mag * (b >> 15)


@njit(cache=True, nogil=True, inline="always")
def _fixed_of_key(key, png):
    """The value of a dense-table key as an exact int64: 16-bit PNG codes are
    their own integer (value = code / 65535); float16 keys (see
    :mod:`evaluator.metrics.kernels`) go back to their bits, then to multiples of 2^-24."""
    if png:
        return key
    bits = key & 0x7FFF if key >= 0x8000 else key ^ 0xFFFF
    return _f16_fixed(bits)


@njit(cache=True, nogil=True)
def _pooled_max_fixed(keys, k, png, ring, vsum, prefix):
    """Exact pooled maximum of a map given by its dense-table keys (H, W).

    Window sums are exact int64 sums of :func:`_fixed_of_key`; the result is
    ``max sum · 2^-24 / k²`` for float16, ``max sum / 65535 / k²`` for PNG codes.
    Scratch: ``ring`` int64 (>= k, W) holds the last k rows, ``vsum`` int64
    (W,) their column sums, ``prefix`` int64 (W + 1,).
    """
    h, w = keys.shape
    for j in range(w):
        vsum[j] = 0
    for i in range(k):
        for j in range(w):
            x = _fixed_of_key(np.int64(keys[i, j]), png)
            ring[i, j] = x
            vsum[j] += x
    best = np.iinfo(np.int64).min
    prefix[0] = 0
    for i in range(h - k + 1):
        if i > 0:  # row i - 1 leaves the window, row i + k - 1 takes its slot
            slot = (i - 1) % k
            for j in range(w):
                x = _fixed_of_key(np.int64(keys[i + k - 1, j]), png)
                vsum[j] += x - ring[slot, j]
                ring[slot, j] = x
        run = 0
        for j in range(w):
            run += vsum[j]
            prefix[j + 1] = run
        for j in range(w - k + 1):
            best = max(best, prefix[j + k] - prefix[j])
    if png:
        return np.float64(best) / 65535.0 / (k * k)
    return np.float64(best) * 2.0**-24 / (k * k)


# Only the max reduction may be vectorised ("no NaN" lets LLVM reorder max,
# which is exact); the window sums keep IEEE order, so they equal the
# reference's bit for bit.
@njit(cache=True, nogil=True, fastmath={"nnan", "ninf", "nsz"})
def _window_max(s, k):
    """Largest k×k window sum of the float64 integral image ``s``, divided by k².

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
def _integral(a, s):
    """s[i + 1, j + 1] = sum of a[:i + 1, :j + 1] in float64, as np.cumsum(np.cumsum(a, 0), 1)."""
    h, w = a.shape
    s[0, :] = 0.0
    s[1:, 0] = 0.0
    for j in range(w):  # row 1 holds the first column-cumsum row until the row pass
        s[1, j + 1] = np.float64(a[0, j])
    for i in range(1, h):
        for j in range(w):
            s[i + 1, j + 1] = s[i, j + 1] + np.float64(a[i, j])
    for i in range(h):
        run = 0.0
        for j in range(w):
            run += s[i + 1, j + 1]
            s[i + 1, j + 1] = run
    return s


@njit(cache=True, nogil=True)
def _pooled_max_f32(a, k, s):
    """Pooled maximum of a float32 map; ``s`` float64 (H + 1, W + 1) scratch."""
    _integral(a, s)
    return _window_max(s, k)


def pooled_max(amap: np.ndarray, k: int) -> float:
    """Maximum of the k×k average pooling (stride 1, no padding) of a 2-D map.

    ``amap`` float16 or float32, or uint16 16-bit PNG codes (value code / 65535).
    See the module docstring for the arithmetic.

    >>> pooled_max(np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8]], np.float32), 2)
    6.0
    """
    amap = np.asarray(amap)
    if amap.ndim != 2:
        raise ValueError(f"amap must be 2-D, got shape {amap.shape}")
    if amap.dtype not in (np.float16, np.float32, np.uint16):
        raise TypeError(f"amap must be float16, float32 or uint16 (16-bit PNG codes), got dtype {amap.dtype}")
    k = int(k)
    if k < 1 or k > min(amap.shape):
        raise ValueError(f"pool size {k} does not fit a map of shape {amap.shape}")
    amap = np.ascontiguousarray(amap)
    h, w = amap.shape
    if amap.dtype in (np.float16, np.uint16):  # Numba has no float16 arrays: their table keys
        from evaluator.metrics.kernels import dense_keys

        return float(_pooled_max_fixed(dense_keys(amap), k, amap.dtype == np.uint16, np.empty((k, w), np.int64),
                                       np.empty(w, np.int64), np.empty(w + 1, np.int64)))
    return float(_pooled_max_f32(amap, k, np.empty((h + 1, w + 1), np.float64)))
