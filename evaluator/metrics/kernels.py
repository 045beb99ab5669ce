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
  onto +0), so a dense table of 65,536 keys (counts int64, weight float64:
  1.5 MiB; one per lane, 12 MiB) is exact and does not grow with the number
  of images. With the staging and scratch buffers a class holds ~20 MiB.
- 16-bit PNG maps (uint16 codes c, value float32(c) / 65535, see
  :mod:`evaluator.maps`): the code is its own key in a second dense table
  of the same size, so these maps are exact in constant memory too.
- float32 maps: the 2^32 keys cannot be a dense table, so the 32-bit sortable
  key of every pixel is kept: 4 bytes per normal pixel, 8 bytes per anomalous
  pixel (key and region area packed in 64 bits), in chunks of 2^24 entries
  (1.3–1.5 GB for a COCO-AD split of 325 M pixels). Building the table joins
  the chunks (a transient second copy), sorts them in place and needs 32
  bytes per distinct value (up to another ~10 GB if nearly every pixel of such
  a split has its own value), so float32 scoring of COCO-AD wants ~12 GB free;
  store float16 maps for constant memory.
- Several kinds in one class are merged by value (a float16 value, and the
  value of a PNG code, are exactly float32 values).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numba import njit, parallel_chunksize, prange

from evaluator.metrics.pooling import _pooled_max_f32, _pooled_max_fixed
from evaluator.metrics.regions import _label8_into, parent_size, row_span

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


#: float64 value of each 16-bit PNG code: float32(code) / float32(65535), as
#: :mod:`evaluator.maps` decodes it (distinct and increasing in the code).
PNG_VALUES = (np.arange(65536, dtype=np.float32) / np.float32(65535)).astype(np.float64)

_DENSE_VALUES = {"f16": F16_VALUES, "png": PNG_VALUES}


def dense_keys(amap: np.ndarray) -> np.ndarray:
    """The dense-table keys (uint16) of a float16 map, or of a uint16 map of PNG codes (the codes)."""
    if amap.dtype == np.uint16:
        return amap
    b = np.ascontiguousarray(amap).view(np.uint16).astype(np.int64)
    b[b == _F16_SIGN] = 0  # -0 is +0
    return np.where(b >= _F16_SIGN, b ^ 0xFFFF, b | _F16_SIGN).astype(np.uint16)


def f32_key_values(keys: np.ndarray) -> np.ndarray:
    """float64 values of 32-bit sortable keys (the inverse of the key map)."""
    keys = keys.astype(np.int64)
    bits = np.where(keys >= _F32_SIGN, keys & 0x7FFFFFFF, keys ^ 0xFFFFFFFF)
    return bits.astype(np.uint32).view(np.float32).astype(np.float64)


# ------------------------------------------------------- per-image kernels

#: Images are spread over this many lanes (image i -> lane i % LANES); each
#: lane has its own float16 table and is filled by one thread in image order,
#: so the float sums of PRO weight do not depend on the thread count.
LANES = 8
#: Bytes of map bits staged before a parallel flush (32 maps of 256×256 float16).
STAGE_BYTES = 4 << 20


def batch_size(h: int, w: int, itemsize: int) -> int:
    """Images staged per flush: ~STAGE_BYTES of map, at least one per lane, at most 64."""
    return max(LANES, min(64, STAGE_BYTES // (h * w * itemsize)))


#: Staging modes: how ``_stage`` stores a map's 16 or 32 bits.
_MODE_F16, _MODE_PNG, _MODE_F32 = 0, 1, 2


@njit(cache=True, nogil=True)
def _stage(src_bits, src_gt, dst, dst_gt, mode):
    """Copy one image into the batch; returns (non-finite pixels, anomalous pixels).

    float16 bits are stored as their table keys and PNG codes as they are
    (both are dense-table keys then); float32 bits as they are. A value whose
    exponent field is all ones is inf or NaN (never for PNG codes). The loops
    keep to the data's own integer width so that they vectorise.
    """
    bad = 0
    n = src_bits.size
    if mode == _MODE_F16:
        sign, expo = np.uint16(0x8000), np.uint16(0x7C00)
        for i in range(n):  # separate loops vectorise, one fused loop does not
            b = src_bits[i]
            bad += (b & expo) == expo
        for i in range(n):
            # The key map of _key16: -0 folded onto +0, then positives get the
            # sign bit and negatives have every bit flipped.
            b = src_bits[i]
            b = b & ~(np.uint16(b == sign) << np.uint16(15))
            dst[i] = b ^ ((np.uint16(0) - (b >> np.uint16(15))) | sign)
    elif mode == _MODE_PNG:
        for i in range(n):
            dst[i] = src_bits[i]
    else:
        expo32 = np.uint32(0x7F800000)
        for i in range(n):
            b = src_bits[i]
            bad += (b & expo32) == expo32
        for i in range(n):
            dst[i] = src_bits[i]
    npos = 0
    g8 = src_gt.view(np.uint8)
    d8 = dst_gt.view(np.uint8)
    for i in range(n):
        g = g8[i]
        d8[i] = g
        npos += g
    return bad, npos


@njit(cache=True, nogil=True)
def _key16(b):
    # Fold -0 onto +0, then flip the sign bit of positives and every bit of
    # negatives: unsigned order of keys = numeric order of values. Branch-free,
    # as map values near 0 have unpredictable signs.
    b = b & ~(np.int64(b == 0x8000) << 15)
    return b ^ (((b >> 15) * 0x7FFF) | 0x8000)


@njit(cache=True, nogil=True)
def _key32(b):
    b = b & ~(np.int64(b == 0x80000000) << 31)
    return b ^ (((b >> 31) * 0x7FFFFFFF) | 0x80000000)


@njit(cache=True, nogil=True)
def _count_dense(keys, gt, npos, gt2d, labels, parent, pos, neg, weight):
    """Count one image's dense-table keys; returns (largest key, regions)."""
    # Every pixel first counts as normal (a tight loop with no branch on the
    # mask), then the few anomalous ones move over to ``pos``: faster than
    # branching per pixel.
    kmax = np.int64(-1)
    for i in range(keys.size):
        k = np.int64(keys[i])
        kmax = max(kmax, k)
        neg[k] += 1
    if npos == 0:
        return kmax, 0
    # Only the rows that hold anomalous pixels are labelled and revisited.
    y0, y1 = row_span(gt2d)
    areas = _label8_into(gt2d, labels, parent, y0, y1)
    inv_area = 1.0 / np.maximum(areas, 1).astype(np.float64)
    flat = labels.reshape(-1)
    w = gt2d.shape[1]
    for i in range(y0 * w, y1 * w):
        if gt[i]:
            k = np.int64(keys[i])
            neg[k] -= 1
            pos[k] += 1
            weight[k] += inv_area[flat[i]]
    return kmax, areas.size - 1


@njit(cache=True, nogil=True)
def _keys_f32(bits, gt, npos, gt2d, labels, parent, negbuf, noff, posbuf, poff):
    """Write one float32 image's sortable keys into its ranges of the pixel buffers.

    Normal pixels: the 32-bit key, at ``negbuf[noff:]``; anomalous pixels:
    ``key << 32 | region area``, at ``posbuf[poff:]``. Returns (largest key, regions).
    """
    kmax = np.int64(-1)
    if npos == 0:
        for i in range(bits.size):
            k = _key32(np.int64(bits[i]))
            kmax = max(kmax, k)
            negbuf[noff + i] = np.uint32(k)
        return kmax, 0
    y0, y1 = row_span(gt2d)
    areas = _label8_into(gt2d, labels, parent, y0, y1)
    flat = labels.reshape(-1)
    for i in range(bits.size):
        k = _key32(np.int64(bits[i]))
        kmax = max(kmax, k)
        if gt[i]:
            posbuf[poff] = (np.uint64(k) << np.uint64(32)) | np.uint64(areas[flat[i]])
            poff += 1
        else:
            negbuf[noff] = np.uint32(k)
            noff += 1
    return kmax, areas.size - 1


@njit(parallel=True, cache=True)
def _flush_dense(keys, gts, gts2d, keys2d, npos, nb, first, pos, neg, weight, png,
                 labels, parent, ring, vsum, prefix, pool, need_pool, out_kmax, out_pooled, out_regions):
    """Count ``nb`` staged dense-keyed images (float16 or PNG), lane by lane in parallel."""
    lanes = pos.shape[0]
    for lane in prange(lanes):
        for j in range(nb):
            if (first + j) % lanes != lane:
                continue
            kmax, nreg = _count_dense(keys[j], gts[j], npos[j], gts2d[j], labels[lane],
                                      parent[lane], pos[lane], neg[lane], weight[lane])
            out_kmax[j] = kmax
            out_regions[j] = nreg
            if need_pool[j]:
                out_pooled[j] = _pooled_max_fixed(keys2d[j], pool, png, ring[lane], vsum[lane], prefix[lane])


@njit(parallel=True, cache=True)
def _flush_f32(bits, gts, gts2d, values2d, npos, nb, negbuf, noffs, posbuf, poffs,
               labels, parent, integ, pool, need_pool, out_kmax, out_pooled, out_regions):
    """Key ``nb`` staged float32 images into disjoint buffer ranges, in parallel."""
    lanes = labels.shape[0]
    for lane in prange(lanes):
        for j in range(nb):
            if j % lanes != lane:
                continue
            kmax, nreg = _keys_f32(bits[j], gts[j], npos[j], gts2d[j], labels[lane], parent[lane],
                                   negbuf, noffs[j], posbuf, poffs[j])
            out_kmax[j] = kmax
            out_regions[j] = nreg
            if need_pool[j]:
                out_pooled[j] = _pooled_max_f32(values2d[j], pool, integ[lane])


# ------------------------------------------------------ table reductions


@njit(cache=True)
def _table_from_sorted(negs, poss):
    """The float32 table from sorted pixel keys: (bits uint32, pos, neg, weight).

    ``negs``: sorted 32-bit keys of normal pixels; ``poss``: sorted
    ``key << 32 | region area`` of anomalous pixels. Within a key the anomalous
    entries are sorted by area, so the weight sums have a fixed order and the
    table does not depend on the order the images came in.
    """
    shift = np.uint64(32)
    low = np.uint64(0xFFFFFFFF)
    # Pass 1: the number of distinct keys of the merged streams.
    m = 0
    i = 0
    j = 0
    while i < negs.size or j < poss.size:
        if j >= poss.size or (i < negs.size and np.uint64(negs[i]) < (poss[j] >> shift)):
            k = np.uint64(negs[i])
        else:
            k = poss[j] >> shift
        m += 1
        while i < negs.size and np.uint64(negs[i]) == k:
            i += 1
        while j < poss.size and (poss[j] >> shift) == k:
            j += 1
    keys = np.empty(m, np.uint32)
    pos = np.zeros(m, np.int64)
    neg = np.zeros(m, np.int64)
    weight = np.zeros(m, np.float64)
    # Pass 2: fill.
    r = 0
    i = 0
    j = 0
    while i < negs.size or j < poss.size:
        if j >= poss.size or (i < negs.size and np.uint64(negs[i]) < (poss[j] >> shift)):
            k = np.uint64(negs[i])
        else:
            k = poss[j] >> shift
        keys[r] = np.uint32(k)
        while i < negs.size and np.uint64(negs[i]) == k:
            neg[r] += 1
            i += 1
        while j < poss.size and (poss[j] >> shift) == k:
            pos[r] += 1
            weight[r] += 1.0 / np.float64(poss[j] & low)
            j += 1
        r += 1
    # Keys back to float32 bit patterns.
    for r in range(m):
        k = np.int64(keys[r])
        if k >= 0x80000000:
            keys[r] = np.uint32(k & 0x7FFFFFFF)
        else:
            keys[r] = np.uint32(k ^ 0xFFFFFFFF)
    return keys, pos, neg, weight


@njit(cache=True)
def _merge_sorted(k1, p1, n1, w1, k2, p2, n2, w2):
    """Union of two tables sorted by value, summing equal values."""
    m = 0
    i = 0
    j = 0
    while i < k1.size or j < k2.size:
        if j >= k2.size or (i < k1.size and k1[i] < k2[j]):
            i += 1
        elif i >= k1.size or k2[j] < k1[i]:
            j += 1
        else:
            i += 1
            j += 1
        m += 1
    out_k = np.empty(m, k1.dtype)
    out_p = np.zeros(m, np.int64)
    out_n = np.zeros(m, np.int64)
    out_w = np.zeros(m, np.float64)
    i = 0
    j = 0
    for r in range(m):
        if j >= k2.size or (i < k1.size and k1[i] < k2[j]):
            out_k[r] = k1[i]
            out_p[r] = p1[i]
            out_n[r] = n1[i]
            out_w[r] = w1[i]
            i += 1
        elif i >= k1.size or k2[j] < k1[i]:
            out_k[r] = k2[j]
            out_p[r] = p2[j]
            out_n[r] = n2[j]
            out_w[r] = w2[j]
            j += 1
        else:
            out_k[r] = k1[i]
            out_p[r] = p1[i] + p2[j]
            out_n[r] = n1[i] + n2[j]
            out_w[r] = w1[i] + w2[j]
            i += 1
            j += 1
    return out_k, out_p, out_n, out_w


@njit(cache=True)
def suffix_sums_at(arr, starts):
    """``arr[s:].sum()`` for each s of the non-decreasing ``starts`` (one backward pass)."""
    out = np.zeros(starts.size, arr.dtype)
    total = arr.dtype.type(0)
    q = starts.size - 1
    for i in range(arr.size, -1, -1):
        if i < arr.size:
            total += arr[i]
        while q >= 0 and starts[q] == i:
            out[q] = total
            q -= 1
        if q < 0:
            break
    return out


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

    @cached_property
    def n_pos(self) -> int:
        return int(self.pos.sum())

    @cached_property
    def n_neg(self) -> int:
        return int(self.neg.sum())

    @cached_property
    def normalised(self) -> np.ndarray | None:
        """Min-max normalised values, ``(v - min) / (max - min)`` in float64; ``None`` if constant or empty."""
        if self.values.size == 0 or self.values[-1] == self.values[0]:
            return None
        lo, hi = self.values[0], self.values[-1]
        out = np.subtract(self.values, lo)  # the same two IEEE operations, one buffer
        return np.divide(out, hi - lo, out=out)

    @cached_property
    def normalised_f32(self) -> np.ndarray | None:
        """``(v - min) / (max - min)`` as ADer computes it on float32 maps: every
        operation rounded to float32 (float32 array, non-decreasing); ``None`` if
        constant or empty. The values must be float32-representable (pixels)."""
        if self.values.size == 0 or self.values[-1] == self.values[0]:
            return None
        v = self.values.astype(np.float32)
        lo, hi = v[0], v[-1]
        with np.errstate(over="ignore"):  # a value range beyond float32's: ADer's inf, ours too
            span = hi - lo
            np.subtract(v, lo, out=v)
            return np.divide(v, span, out=v)

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

    ``add`` checks and stages an image; every :func:`batch_size` images (and whenever
    the table or per-image values are asked for) the staged images are
    labelled and counted in parallel. Per image it records the map's maximum
    and, when asked, the maximum of its ``pool``×``pool`` average pooling
    (:mod:`evaluator.metrics.pooling`). Memory: see the module docstring, plus
    fixed scratch of ~60 bytes per pixel of one image (staging and lanes).
    """

    def __init__(self, pool: int | None = None):
        self.pool = pool
        self.n_regions = 0
        self.n_pixels = 0
        self._n_added = 0
        self._n_flushed = 0
        # Dense lane tables (pos, neg, weight) per kind, "f16" or "png", allocated on first use.
        self._dense: dict[str, tuple] = {}
        # float32 pixel keys: lists of [array, fill] chunks (normal, anomalous).
        self._negs: list[list] = []
        self._poss: list[list] = []
        self._stage = None  # ((dtype, shape), bits, gts, npos, need_pool)
        self._nb = 0
        self._labels = None  # (shape, labels, parent): labelling scratch per lane
        self._pooling = None  # (key, arrays): pooled-score scratch per lane
        self._image_max: list[float] = []
        self._image_pooled: list[float] = []
        self._cache: KeyCounts | None = None

    # ---------------------------------------------------------------- input
    def add(self, gt: np.ndarray, amap: np.ndarray, pooled: bool = False) -> bool:
        """Stage one image: ``gt`` bool (H, W), ``amap`` float16/float32 or uint16
        PNG codes (H, W), both C order. Returns whether ``gt`` has an anomalous pixel.

        ``pooled``: also compute the image's pooled maximum (needs ``pool``).
        Raises ValueError, staging nothing, if ``amap`` has a non-finite value.
        """
        key = (amap.dtype, amap.shape)
        if self._stage is None or self._stage[0] != key:
            self.flush()
            h, w = amap.shape
            bits_dtype = np.uint32 if amap.dtype == np.float32 else np.uint16
            nmax = batch_size(h, w, amap.itemsize)
            self._stage = (key, np.empty((nmax, h * w), bits_dtype), np.empty((nmax, h * w), np.bool_),
                           np.zeros(nmax, np.int64), np.zeros(nmax, np.bool_))
        _, bits, gts, npos, need_pool = self._stage
        j = self._nb
        src = amap.reshape(-1).view(bits.dtype)
        mode = {np.dtype(np.float16): _MODE_F16, np.dtype(np.uint16): _MODE_PNG}.get(amap.dtype, _MODE_F32)
        bad, n_anomalous = _stage(src, gt.reshape(-1), bits[j], gts[j], mode)
        if bad:
            raise ValueError(f"the map has {bad} non-finite value(s) (NaN or inf)")
        npos[j] = n_anomalous
        need_pool[j] = bool(pooled and self.pool)
        self._nb += 1
        self._n_added += 1
        self.n_pixels += amap.size
        self._cache = None
        if self._nb == bits.shape[0]:
            self.flush()
        return n_anomalous > 0

    def flush(self) -> None:
        """Count the staged images."""
        if not self._nb:
            return
        (dtype, shape), bits, gts, npos, need_pool = self._stage
        nb = self._nb
        h, w = shape
        labels, parent = self._label_scratch(shape)
        out_kmax = np.zeros(nb, np.int64)
        out_pooled = np.full(nb, np.nan)
        out_regions = np.zeros(nb, np.int64)
        pool = int(self.pool or 1)
        nmax = bits.shape[0]
        gts2d = gts.reshape(nmax, h, w)
        if dtype != np.float32:
            kind = "png" if dtype == np.uint16 else "f16"
            if kind not in self._dense:
                self._dense[kind] = (np.zeros((LANES, 65536), np.int64), np.zeros((LANES, 65536), np.int64),
                                     np.zeros((LANES, 65536), np.float64))
            pos, neg, weight = self._dense[kind]
            ring, vsum, prefix = self._pool_scratch(("dense", shape, pool), (LANES, pool, w), (LANES, w),
                                                    (LANES, w + 1), dtype=np.int64)
            with parallel_chunksize(1):  # lanes go to whichever thread is free
                _flush_dense(bits, gts, gts2d, bits.reshape(nmax, h, w), npos, nb, self._n_flushed,
                             pos, neg, weight, kind == "png", labels, parent, ring, vsum, prefix, pool,
                             need_pool, out_kmax, out_pooled, out_regions)
            self._image_max.extend(_DENSE_VALUES[kind][out_kmax].tolist())
        else:
            n_anom = npos[:nb]
            n_norm = h * w - n_anom
            negbuf, nfill = _chunk_for(self._negs, int(n_norm.sum()), np.uint32)
            posbuf, pfill = _chunk_for(self._poss, int(n_anom.sum()), np.uint64)
            noffs = nfill + np.concatenate(([0], np.cumsum(n_norm)[:-1]))
            poffs = pfill + np.concatenate(([0], np.cumsum(n_anom)[:-1]))
            (integ,) = self._pool_scratch(("f32", shape), (LANES, h + 1, w + 1), dtype=np.float64)
            with parallel_chunksize(1):
                _flush_f32(bits, gts, gts2d, bits.view(np.float32).reshape(nmax, h, w), npos, nb,
                           negbuf, noffs, posbuf, poffs, labels, parent, integ,
                           pool, need_pool, out_kmax, out_pooled, out_regions)
            self._negs[-1][1] += int(n_norm.sum())
            self._poss[-1][1] += int(n_anom.sum())
            self._image_max.extend(f32_key_values(out_kmax).tolist())
        self._image_pooled.extend(out_pooled.tolist())
        self.n_regions += int(out_regions.sum())
        self._n_flushed += nb
        self._nb = 0

    def _label_scratch(self, shape):
        if self._labels is None or self._labels[0] != shape:
            h, w = shape
            self._labels = (shape, np.empty((LANES, h, w), np.int32),
                            np.empty((LANES, parent_size(h, w)), np.int32))
        return self._labels[1:]

    def _pool_scratch(self, key, *shapes, dtype):
        """Per-lane scratch of the pooled score; only allocated when pooling is asked for."""
        if not self.pool:
            return tuple(np.empty((LANES,) + (1,) * (len(s) - 1), dtype) for s in shapes)
        if self._pooling is None or self._pooling[0] != key:
            self._pooling = (key, tuple(np.empty(s, dtype) for s in shapes))
        return self._pooling[1]

    # --------------------------------------------------------------- output
    @property
    def image_max(self) -> np.ndarray:
        """Maximum of each map, in the order added (float64)."""
        self.flush()
        return np.asarray(self._image_max, np.float64)

    @property
    def image_pooled(self) -> np.ndarray:
        """Pooled maximum of each map added with ``pooled=True`` (NaN for the others)."""
        self.flush()
        return np.asarray(self._image_pooled, np.float64)

    def counts(self) -> KeyCounts:
        """The class's :class:`KeyCounts` so far."""
        self.flush()
        if self._cache is not None:
            return self._cache
        table = KeyCounts.empty()
        for kind in sorted(self._dense):  # "f16", then "png": a fixed order of float sums
            lanes_pos, lanes_neg, lanes_w = self._dense[kind]
            pos = lanes_pos.sum(axis=0)
            neg = lanes_neg.sum(axis=0)
            weight = lanes_w[0].copy()
            for lane in range(1, LANES):  # a fixed order of float sums
                weight += lanes_w[lane]
            idx = np.flatnonzero((pos != 0) | (neg != 0))
            dense = KeyCounts(_DENSE_VALUES[kind][idx], pos[idx], neg[idx], weight[idx], 0)
            table = dense if table.values.size == 0 else table.merged(dense)
        if self._negs:
            negs = _sorted_chunks(self._negs)
            poss = _sorted_chunks(self._poss)
            bits, p, n, w = _table_from_sorted(negs, poss)
            f32 = KeyCounts(bits.view(np.float32).astype(np.float64), p, n, w, 0)
            table = f32 if table.values.size == 0 else table.merged(f32)
        table = KeyCounts(table.values, table.pos, table.neg, table.weight, self.n_regions)
        self._cache = table
        return table


#: float32 pixel keys are kept in chunks of this many entries (or one batch's worth).
CHUNK = 1 << 24


def _chunk_for(chunks: list[list], need: int, dtype) -> tuple[np.ndarray, int]:
    """The last chunk and its fill level, after starting a new one if ``need`` entries do not fit."""
    if not chunks or chunks[-1][0].size - chunks[-1][1] < need:
        chunks.append([np.empty(max(CHUNK, need), dtype), 0])
    return chunks[-1][0], chunks[-1][1]


def _sorted_chunks(chunks: list[list]) -> np.ndarray:
    """The chunks' entries, sorted, as one array (joined in place of the chunks if several)."""
    if len(chunks) > 1:
        joined = np.concatenate([c[:fill] for c, fill in chunks])
        chunks.clear()
        chunks.append([joined, joined.size])
    entries = chunks[0][0][: chunks[0][1]]
    entries.sort()  # in place: the chunks hold a multiset, so their order is free
    return entries
