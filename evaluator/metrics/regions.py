"""8-connected labelling of ground-truth masks (the regions of AUPRO).

A region is a maximal set of anomalous pixels connected through any of the 8
neighbours (edges and corners), as in the MVTec AD evaluation, ADer
(``skimage.measure.label``, full connectivity) and
``scipy.ndimage.label(mask, structure=np.ones((3, 3)))``. Labels are numbered
1, 2, … in the raster order of each region's first pixel, which is also
SciPy's numbering, so the two label images are equal.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _find(parent, x):
    # Path halving keeps the trees flat without recursion.
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@njit(cache=True, nogil=True)
def _union(parent, a, b):
    """Join the trees of labels a and b; the smaller root becomes the root. Returns it."""
    ra = _find(parent, a)
    rb = _find(parent, b)
    if ra < rb:
        parent[rb] = ra
        return ra
    parent[ra] = rb
    return rb


@njit(cache=True, nogil=True)
def row_span(mask):
    """``(first, last + 1)`` of the rows of ``mask`` holding a set pixel; ``(0, 0)`` if none."""
    h, w = mask.shape
    y0 = 0
    while y0 < h and not mask[y0].any():
        y0 += 1
    y1 = h
    while y1 > y0 and not mask[y1 - 1].any():
        y1 -= 1
    return y0, y1


@njit(cache=True, nogil=True)
def _label8_into(mask, labels, parent, y0, y1):
    """Label ``mask`` into ``labels`` (int32, same shape), rows ``y0`` to ``y1 - 1``.

    Every set pixel of ``mask`` must lie in those rows (:func:`row_span`);
    ``labels`` outside them is left as it was. ``parent`` is int32 scratch of
    at least (H + 1) (W + 1) / 4 + 2 entries: a pixel opens a provisional label
    only if no earlier neighbour is set, so no two such pixels are 8-adjacent
    and each 2×2 block holds at most one. Returns the areas, int64 (n + 1,).
    """
    h, w = mask.shape
    parent[0] = 0
    nprov = 0
    for y in range(y0, y1):
        for x in range(w):
            if not mask[y, x]:
                labels[y, x] = 0
                continue
            # Earlier neighbours: W, NW, N, NE. N touches the other three, so
            # if it is set they already share its tree; without N, W touches
            # NW, and only NE may still be a separate tree.
            n_ = y > y0 and mask[y - 1, x]
            if n_:
                labels[y, x] = labels[y - 1, x]
                continue
            ne = y > y0 and x + 1 < w and mask[y - 1, x + 1]
            if x > 0 and mask[y, x - 1]:
                lab = labels[y, x - 1]
            elif y > y0 and x > 0 and mask[y - 1, x - 1]:
                lab = labels[y - 1, x - 1]
            elif ne:
                labels[y, x] = labels[y - 1, x + 1]
                continue
            else:
                nprov += 1
                parent[nprov] = nprov
                labels[y, x] = nprov
                continue
            if ne:
                _union(parent, lab, labels[y - 1, x + 1])
            labels[y, x] = lab
    # Final labels: a tree's root is its smallest provisional label, which its
    # first pixel in raster order opened, so numbering roots in label order is
    # numbering regions in raster order (SciPy's numbering). parent[i] < i for
    # non-roots, so one increasing sweep resolves every label.
    final = np.zeros(nprov + 1, np.int32)
    n = 0
    for i in range(1, nprov + 1):
        if parent[i] == i:
            n += 1
            final[i] = n
        else:
            final[i] = final[parent[i]]
    areas = np.zeros(n + 1, np.int64)
    for y in range(y0, y1):
        for x in range(w):
            # Background is skipped: counting it in areas[0] would chain every
            # pixel through one memory cell.
            if labels[y, x]:
                lab = final[labels[y, x]]
                labels[y, x] = lab
                areas[lab] += 1
    return areas


@njit(cache=True, nogil=True)
def parent_size(h, w):
    return (h + 1) * (w + 1) // 4 + 2


@njit(cache=True, nogil=True)
def _label8(mask):
    h, w = mask.shape
    labels = np.zeros((h, w), np.int32)
    parent = np.empty(parent_size(h, w), np.int32)
    y0, y1 = row_span(mask)
    areas = _label8_into(mask, labels, parent, y0, y1)
    return labels, areas


def label_regions(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label the 8-connected regions of a boolean mask.

    Returns ``(labels, areas)``: ``labels`` int32 (H, W) with 0 for background
    and 1 … n for the regions, numbered in raster order of their first pixel;
    ``areas`` int64 (n + 1,) with ``areas[i]`` the pixel count of region i
    (``areas[0]`` is 0).

    >>> m = np.array([[1, 0, 0, 1],
    ...               [0, 1, 0, 1],
    ...               [0, 0, 0, 0],
    ...               [1, 1, 0, 0]], bool)
    >>> labels, areas = label_regions(m)
    >>> labels
    array([[1, 0, 0, 2],
           [0, 1, 0, 2],
           [0, 0, 0, 0],
           [3, 3, 0, 0]], dtype=int32)
    >>> areas.tolist()
    [0, 2, 2, 2]
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must be boolean, got {mask.dtype}")
    return _label8(np.ascontiguousarray(mask))
