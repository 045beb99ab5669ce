"""The shared kernel: per-score-key counts of positives, negatives and PRO weight.

Every pixel metric of a class is a function of one table, :class:`KeyCounts`:
for each distinct map value (ascending), how many anomalous pixels (``pos``)
and normal pixels (``neg``) carry it, and the PRO weight of its anomalous
pixels (``weight`` = the sum over them of 1 / area of their ground-truth
region). ROC, PR and F1 curves sweep this table from the top; AUPRO is the ROC
whose positives are weighted by 1 / region area, divided by the number of
regions; the normalised-threshold metrics cut it at normalised values. No value
is binned, so every metric is exact.

:class:`PixelCounter` builds the table while maps stream in, one image at a
time:

- float16 maps: a float16's 16-bit pattern maps to an order-preserving key
  (sign bit flipped for positives, all bits flipped for negatives, -0 folded
  onto +0), so one dense table of 65,536 keys per class (counts int64, weight
  float64: 1.5 MiB) is exact and does not grow with the number of images.
- float32 maps: the 2^32 keys cannot be a dense table, so the 32-bit sortable
  key of every pixel is kept (4 bytes per normal pixel; 8 bytes per anomalous
  pixel, key and region area packed in 64 bits) and sorted once when the table
  is asked for. The buffer grows by half when full, so it holds up to 1.5× that
  (about 6 bytes per pixel, 1.3–2 GiB for a COCO-AD split of 325 M pixels).
- Both kinds in one class are merged by value (a float16 value is exactly a
  float32 value).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from evaluator.metrics.regions import _label8

# ---------------------------------------------------------------- key maps

_F16_SIGN = 0x8000
_F32_SIGN = 0x80000000


def _f16_values() -> np.ndarray:
    keys = np.arange(65536, dtype=np.int64)
    bits = np.where(keys >= _F16_SIGN, keys & 0x7FFF, keys ^ 0xFFFF).astype(np.uint16)
    return bits.view(np.float16).astype(np.float64)


#: float64 value of each float16 key (key 0x7FFF would be -0, which is folded
#: onto +0 and never counted; NaN patterns are rejected before counting).
F16_VALUES = _f16_values()


def f32_key_values(keys: np.ndarray) -> np.ndarray:
    """float64 values of 32-bit sortable keys (the inverse of the key map)."""
    keys = keys.astype(np.int64)
    bits = np.where(keys >= _F32_SIGN, keys & 0x7FFFFFFF, keys ^ 0xFFFFFFFF)
    return bits.astype(np.uint32).view(np.float32).astype(np.float64)


# ------------------------------------------------------- per-image kernels


@njit(cache=True, nogil=True)
def _hist_f16(bits, gt, labels, inv_area, pos, neg, weight):
    """Count one float16 image into the dense table.

    ``labels``/``inv_area`` may be empty when ``gt`` has no anomalous pixel.
    Returns (largest key seen, number of non-finite pixels).
    """
    # A rejected map must change nothing, so look for inf/NaN (exponent all
    # ones) before counting anything.
    bad = 0
    for i in range(bits.size):
        if (bits[i] & 0x7C00) == 0x7C00:
            bad += 1
    if bad:
        return -1, bad
    kmax = -1
    has_pos = labels.size > 0
    for i in range(bits.size):
        b = np.int64(bits[i])
        if b == 0x8000:
            b = 0
        if b & 0x8000:
            k = b ^ 0xFFFF
        else:
            k = b | 0x8000
        if k > kmax:
            kmax = k
        if has_pos and gt[i]:
            pos[k] += 1
            weight[k] += inv_area[labels[i]]
        else:
            neg[k] += 1
    return kmax, bad


@njit(cache=True, nogil=True)
def _keys_f32(bits, gt, labels, areas, negbuf, nneg, posbuf, npos):
    """Append one float32 image's sortable keys to the pixel buffers.

    Normal pixels append their 32-bit key to ``negbuf``; anomalous pixels
    append ``key << 32 | region area`` to ``posbuf``. Returns the new fill
    levels, the largest key seen and the number of non-finite pixels.
    """
    bad = 0
    for i in range(bits.size):
        if (bits[i] & 0x7F800000) == 0x7F800000:
            bad += 1
    if bad:
        return nneg, npos, -1, bad
    kmax = -1
    has_pos = labels.size > 0
    for i in range(bits.size):
        b = np.int64(bits[i])
        if b == 0x80000000:
            b = 0
        if b & 0x80000000:
            k = b ^ 0xFFFFFFFF
        else:
            k = b | 0x80000000
        if k > kmax:
            kmax = k
        if has_pos and gt[i]:
            posbuf[npos] = (np.uint64(k) << np.uint64(32)) | np.uint64(areas[labels[i]])
            npos += 1
        else:
            negbuf[nneg] = np.uint32(k)
            nneg += 1
    return nneg, npos, kmax, bad


# ------------------------------------------------------ table reductions


@njit(cache=True)
def _runs_neg(sorted_keys):
    m = 0
    for i in range(sorted_keys.size):
        if i == 0 or sorted_keys[i] != sorted_keys[i - 1]:
            m += 1
    keys = np.empty(m, np.int64)
    counts = np.zeros(m, np.int64)
    j = -1
    for i in range(sorted_keys.size):
        if i == 0 or sorted_keys[i] != sorted_keys[i - 1]:
            j += 1
            keys[j] = sorted_keys[i]
        counts[j] += 1
    return keys, counts


@njit(cache=True)
def _runs_pos(sorted_packed):
    # Within a key the packed values are sorted by area, so the weight sum has
    # a fixed order: the table does not depend on the order images came in.
    m = 0
    for i in range(sorted_packed.size):
        if i == 0 or (sorted_packed[i] >> np.uint64(32)) != (sorted_packed[i - 1] >> np.uint64(32)):
            m += 1
    keys = np.empty(m, np.int64)
    counts = np.zeros(m, np.int64)
    weight = np.zeros(m, np.float64)
    j = -1
    for i in range(sorted_packed.size):
        k = np.int64(sorted_packed[i] >> np.uint64(32))
        if i == 0 or k != keys[j]:
            j += 1
            keys[j] = k
        counts[j] += 1
        weight[j] += 1.0 / np.float64(sorted_packed[i] & np.uint64(0xFFFFFFFF))
    return keys, counts, weight


@njit(cache=True)
def _merge_sorted(k1, p1, n1, w1, k2, p2, n2, w2):
    """Union of two tables sorted by key (int64 or float64), summing equal keys."""
    out_k = np.empty(k1.size + k2.size, k1.dtype)
    out_p = np.zeros(k1.size + k2.size, np.int64)
    out_n = np.zeros(k1.size + k2.size, np.int64)
    out_w = np.zeros(k1.size + k2.size, np.float64)
    i = 0
    j = 0
    m = 0
    while i < k1.size or j < k2.size:
        if j >= k2.size or (i < k1.size and k1[i] < k2[j]):
            out_k[m] = k1[i]
            out_p[m] = p1[i]
            out_n[m] = n1[i]
            out_w[m] = w1[i]
            i += 1
        elif i >= k1.size or k2[j] < k1[i]:
            out_k[m] = k2[j]
            out_p[m] = p2[j]
            out_n[m] = n2[j]
            out_w[m] = w2[j]
            j += 1
        else:
            out_k[m] = k1[i]
            out_p[m] = p1[i] + p2[j]
            out_n[m] = n1[i] + n2[j]
            out_w[m] = w1[i] + w2[j]
            i += 1
            j += 1
        m += 1
    return out_k[:m].copy(), out_p[:m].copy(), out_n[:m].copy(), out_w[:m].copy()


# ------------------------------------------------------------- the table


@dataclass(frozen=True)
class KeyCounts:
    """Per-distinct-value counts of one class's pixels (or images).

    ``values`` float64, strictly ascending; ``pos`` / ``neg`` int64, the number
    of anomalous / normal samples with that value; ``weight`` float64, the PRO
    weight of the anomalous ones (sum of 1 / region area; all zero for image
    scores); ``n_regions`` the number of ground-truth regions (sum of weights).
    """

    values: np.ndarray
    pos: np.ndarray
    neg: np.ndarray
    weight: np.ndarray
    n_regions: int = 0

    @property
    def n_pos(self) -> int:
        return int(self.pos.sum())

    @property
    def n_neg(self) -> int:
        return int(self.neg.sum())

    @classmethod
    def empty(cls) -> "KeyCounts":
        z = np.zeros(0, np.int64)
        return cls(np.zeros(0, np.float64), z, z, np.zeros(0, np.float64), 0)

    @classmethod
    def from_arrays(cls, y_true, y_score, weight=None, n_regions: int = 0) -> "KeyCounts":
        """Table of 1-D arrays: binary ``y_true``, finite ``y_score``, optional ``weight``."""
        y_true = np.asarray(y_true).ravel()
        y_score = np.asarray(y_score, dtype=np.float64).ravel()
        if y_true.shape != y_score.shape:
            raise ValueError(f"y_true has {y_true.size} values but y_score has {y_score.size}")
        if y_true.size and not np.isin(y_true, (0, 1)).all():
            raise ValueError("y_true must hold only 0/1 (or False/True)")
        if not np.isfinite(y_score).all():
            raise ValueError("y_score must be finite (no NaN or inf)")
        if y_score.size == 0:
            return cls.empty()
        # np.unique treats -0.0 and +0.0 as one value, as a threshold does.
        values, inverse = np.unique(y_score, return_inverse=True)
        y = y_true.astype(bool)
        pos = np.bincount(inverse[y], minlength=values.size).astype(np.int64)
        neg = np.bincount(inverse[~y], minlength=values.size).astype(np.int64)
        if weight is None:
            w = np.zeros(values.size, np.float64)
        else:
            weight = np.asarray(weight, dtype=np.float64).ravel()
            w = np.bincount(inverse[y], weights=weight[y], minlength=values.size)
        return cls(values, pos, neg, w, int(n_regions))

    def merged(self, other: "KeyCounts") -> "KeyCounts":
        """The table of both sample sets (equal values summed)."""
        v, p, n, w = _merge_sorted(self.values, self.pos, self.neg, self.weight,
                                   other.values, other.pos, other.neg, other.weight)
        return KeyCounts(v, p, n, w, self.n_regions + other.n_regions)


# -------------------------------------------------- streaming pixel counter


class PixelCounter:
    """Streams (ground truth, map) pairs of one class into a :class:`KeyCounts`.

    ``add`` labels the 8-connected regions of the mask, counts the map and
    returns the image's maximum value. ``counts()`` returns the table (cached
    until the next ``add``). Memory: see the module docstring.
    """

    def __init__(self):
        self._f16_pos = np.zeros(65536, np.int64)
        self._f16_neg = np.zeros(65536, np.int64)
        self._f16_w = np.zeros(65536, np.float64)
        self._f16_any = False
        self._negbuf = np.zeros(0, np.uint32)
        self._posbuf = np.zeros(0, np.uint64)
        self._nneg = 0
        self._npos = 0
        self.n_regions = 0
        self.n_pixels = 0
        self._cache: KeyCounts | None = None

    def add(self, gt: np.ndarray, amap: np.ndarray) -> float:
        """Count one image: ``gt`` bool (H, W), ``amap`` float16/float32 (H, W), C order.

        Returns the maximum of ``amap`` as a float. Raises ValueError (counting
        nothing) if ``amap`` has a non-finite value.
        """
        if gt.any():
            labels, areas = _label8(gt)
            labels = labels.ravel()
            n_regions = areas.size - 1
        else:
            labels = np.zeros(0, np.int32)
            areas = np.zeros(1, np.int64)
            n_regions = 0
        flat_gt = gt.ravel()
        if amap.dtype == np.float16:
            kmax = self._add_f16(amap.ravel().view(np.uint16), flat_gt, labels, areas)
            vmax = F16_VALUES[kmax]
        else:
            kmax = self._add_f32(amap.ravel().view(np.uint32), flat_gt, labels, areas)
            vmax = float(f32_key_values(np.array([kmax]))[0])
        self.n_regions += n_regions
        self.n_pixels += amap.size
        self._cache = None
        return float(vmax)

    def _add_f16(self, bits, gt, labels, areas):
        inv_area = 1.0 / np.maximum(areas, 1).astype(np.float64)
        kmax, bad = _hist_f16(bits, gt, labels, inv_area, self._f16_pos, self._f16_neg, self._f16_w)
        if bad:
            raise ValueError(f"the map has {bad} non-finite value(s) (NaN or inf)")
        self._f16_any = True
        return kmax

    def _add_f32(self, bits, gt, labels, areas):
        n_anomalous = int(areas.sum())
        self._negbuf = _reserve(self._negbuf, self._nneg + bits.size - n_anomalous)
        self._posbuf = _reserve(self._posbuf, self._npos + n_anomalous)
        nneg, npos, kmax, bad = _keys_f32(bits, gt, labels, areas,
                                          self._negbuf, self._nneg, self._posbuf, self._npos)
        if bad:
            raise ValueError(f"the map has {bad} non-finite value(s) (NaN or inf)")
        self._nneg, self._npos = nneg, npos
        return kmax

    def counts(self) -> KeyCounts:
        """The class's :class:`KeyCounts` so far."""
        if self._cache is not None:
            return self._cache
        table = KeyCounts.empty()
        if self._f16_any:
            idx = np.flatnonzero((self._f16_pos != 0) | (self._f16_neg != 0))
            table = KeyCounts(F16_VALUES[idx], self._f16_pos[idx].copy(),
                              self._f16_neg[idx].copy(), self._f16_w[idx].copy(), 0)
        if self._nneg or self._npos:
            neg = self._negbuf[: self._nneg]
            pos = self._posbuf[: self._npos]
            neg.sort()  # in place: the buffers hold a multiset, order is free
            pos.sort()
            kn, cn = _runs_neg(neg)
            kp, cp, wp = _runs_pos(pos)
            keys, p, n, w = _merge_sorted(kp, cp, np.zeros(kp.size, np.int64), wp,
                                          kn, np.zeros(kn.size, np.int64), cn,
                                          np.zeros(kn.size, np.float64))
            f32 = KeyCounts(f32_key_values(keys), p, n, w, 0)
            table = f32 if table.values.size == 0 else table.merged(f32)
        table = KeyCounts(table.values, table.pos, table.neg, table.weight, self.n_regions)
        self._cache = table
        return table


def _reserve(buf: np.ndarray, need: int) -> np.ndarray:
    if need <= buf.size:
        return buf
    grown = np.empty(max(need, buf.size + buf.size // 2, 1 << 20), buf.dtype)
    grown[: buf.size] = buf
    return grown
