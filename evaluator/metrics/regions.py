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
def _label8(mask):
    h, w = mask.shape
    labels = np.zeros((h, w), np.int32)
    parent = np.empty(h * w // 2 + 2, np.int32)  # provisional labels; see growth below
    parent[0] = 0
    nprov = 0
    for y in range(h):
        for x in range(w):
            if not mask[y, x]:
                continue
            # Neighbours already visited in raster order: W, NW, N, NE.
            best = 0
            for dy, dx in ((0, -1), (-1, -1), (-1, 0), (-1, 1)):
                yy = y + dy
                xx = x + dx
                if yy < 0 or xx < 0 or xx >= w:
                    continue
                lab = labels[yy, xx]
                if lab == 0:
                    continue
                r = _find(parent, lab)
                if best == 0:
                    best = r
                elif r != best:
                    # Union by smaller root, so a root is its tree's first label.
                    if r < best:
                        parent[best] = r
                        best = r
                    else:
                        parent[r] = best
            if best == 0:
                nprov += 1
                if nprov >= parent.size:
                    grown = np.empty(parent.size * 2, np.int32)
                    grown[: parent.size] = parent
                    parent = grown
                parent[nprov] = nprov
                best = nprov
            labels[y, x] = best
    # Second pass: final labels in raster order of first appearance.
    final = np.zeros(nprov + 1, np.int32)
    n = 0
    for y in range(h):
        for x in range(w):
            lab = labels[y, x]
            if lab == 0:
                continue
            r = _find(parent, lab)
            if final[r] == 0:
                n += 1
                final[r] = n
            labels[y, x] = final[r]
    areas = np.zeros(n + 1, np.int64)
    for y in range(h):
        for x in range(w):
            areas[labels[y, x]] += 1
    areas[0] = 0
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
