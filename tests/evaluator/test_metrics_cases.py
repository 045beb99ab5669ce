"""Random test classes for the metric tests, and checks that they cover the hard cases.

``random_class`` draws one class: masks with several 8-connected blobs (some
touching only at corners), normal images, anomalous images with empty masks,
maps with heavy ties (values rounded to a coarse grid), outliers, and values
of both signs including -0.0.
"""

from __future__ import annotations

import numpy as np


def random_class(seed: int, n: int = 12, shape=(24, 20), dtype=np.float16, ties: bool = True,
                 empty_anomalous: bool = True, mixed: bool = False):
    """Return (masks bool (n, H, W), maps list of (H, W), labels int (n,))."""
    rng = np.random.default_rng(seed)
    h, w = shape
    masks = np.zeros((n, h, w), bool)
    labels = np.zeros(n, np.int64)
    maps = []
    yy, xx = np.mgrid[:h, :w]
    for i in range(n):
        kind = rng.random()
        if i % 7 == 3 and empty_anomalous:
            labels[i] = 1
        elif kind < 0.4:
            labels[i] = 0
        elif kind < 0.5 and empty_anomalous:
            labels[i] = 1  # anomalous by the meta, but its mask is empty
        else:
            labels[i] = 1
            for _ in range(rng.integers(1, 4)):
                cy, cx = rng.integers(0, h), rng.integers(0, w)
                ry, rx = rng.integers(1, 6), rng.integers(1, 6)
                masks[i] |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            if rng.random() < 0.3:  # two pixels touching only at a corner
                masks[i, 0, 0] = masks[i, 1, 1] = True
        a = rng.normal(0.0, 1.0, (h, w)) + 1.5 * masks[i] * rng.random()
        if ties:
            a = np.round(a * 4) / 4
        if rng.random() < 0.2:
            a[rng.integers(0, h), rng.integers(0, w)] = 40.0 * rng.choice([-1, 1])  # outlier
        a[0, -1] = -0.0
        d = dtype
        if mixed:
            d = np.float16 if i % 2 else np.float32
        maps.append(a.astype(d))
    return masks, maps, labels


def stacked(maps) -> np.ndarray:
    return np.stack([np.asarray(m, np.float64) for m in maps])


def test_random_class_covers_the_hard_cases():
    masks, maps, labels = random_class(3, n=40)
    assert labels.sum() > 0 and (labels == 0).sum() > 0
    assert any(lab == 1 and not m.any() for lab, m in zip(labels, masks))
    values = stacked(maps)
    assert np.unique(values).size < values.size / 4  # many ties
    assert np.abs(values).max() == 40.0
    assert np.signbit(values).any() and (values == 0).any()
    m2, maps2, _ = random_class(3, n=4, mixed=True)
    assert {m.dtype for m in maps2} == {np.dtype(np.float16), np.dtype(np.float32)}
