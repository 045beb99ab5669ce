"""8-connected labelling against scipy.ndimage.label with a 3×3 structure."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator.metrics import label_regions

ndimage = pytest.importorskip("scipy.ndimage")


def scipy_label(mask):
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), int))
    return labels, n


@pytest.mark.parametrize("density", [0.05, 0.3, 0.5, 0.7, 0.95])
def test_random_masks_match_scipy(density):
    rng = np.random.default_rng(int(density * 100))
    for shape in [(1, 1), (1, 17), (17, 1), (13, 29), (64, 64)]:
        for _ in range(5):
            mask = rng.random(shape) < density
            labels, areas = label_regions(mask)
            expected, n = scipy_label(mask)
            np.testing.assert_array_equal(labels, expected)
            assert areas.size == n + 1
            np.testing.assert_array_equal(areas[1:], np.bincount(expected.ravel(), minlength=n + 1)[1:])


def test_special_shapes():
    empty = np.zeros((5, 6), bool)
    labels, areas = label_regions(empty)
    assert not labels.any() and areas.tolist() == [0]
    full = np.ones((5, 6), bool)
    labels, areas = label_regions(full)
    assert (labels == 1).all() and areas.tolist() == [0, 30]
    # Corner contact joins; a checkerboard is one region under 8-connectivity.
    checker = (np.add.outer(np.arange(7), np.arange(7)) % 2) == 0
    labels, areas = label_regions(checker)
    assert areas.tolist() == [0, int(checker.sum())]
    # A U shape whose arms meet late: the provisional labels must merge.
    u = np.zeros((5, 7), bool)
    u[:, 0] = u[:, 6] = u[4, :] = True
    labels, areas = label_regions(u)
    assert areas.tolist() == [0, int(u.sum())]
    # Anti-diagonal: only corner (north-east) contacts.
    anti = np.fliplr(np.eye(6, dtype=bool))
    assert label_regions(anti)[1].tolist() == [0, 6]


def test_input_errors():
    with pytest.raises(TypeError):
        label_regions(np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError):
        label_regions(np.zeros((3, 3, 3), bool))
