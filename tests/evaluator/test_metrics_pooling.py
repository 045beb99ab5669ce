"""ADer's pooled image score: bit for bit the NumPy integral-image reference."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator import reference as ref
from evaluator.metrics import pooled_max


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (5, 5), (17, 9), (64, 61)])
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_equals_reference_bit_for_bit(shape, dtype):
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    a = (rng.normal(size=shape) * 10.0 ** rng.integers(-3, 3, size=shape)).astype(dtype)
    for k in sorted({1, min(2, min(shape)), min(shape), max(1, min(shape) // 2)}):
        assert pooled_max(a, k) == ref.pooled_max(a.astype(np.float64), k)


def test_closed_form_and_errors():
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    assert pooled_max(a, 1) == 15.0
    assert pooled_max(a, 4) == 7.5
    assert pooled_max(a, 2) == (10 + 11 + 14 + 15) / 4
    with pytest.raises(ValueError, match="does not fit"):
        pooled_max(a, 5)
    with pytest.raises(ValueError, match="2-D"):
        pooled_max(a[None], 2)
