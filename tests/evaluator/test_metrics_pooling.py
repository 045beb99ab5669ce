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
        assert pooled_max(a, k) == ref.pooled_max(a, k)


def test_float16_windows_are_exact():
    """Exact means: against Python fractions, on values spanning the whole float16 range."""
    from fractions import Fraction

    rng = np.random.default_rng(5)
    bits = rng.integers(0, 65536, size=(6, 7)).astype(np.uint16)
    a = bits.view(np.float16).copy()
    a[~np.isfinite(a)] = 0
    k = 3
    exact = max(sum(Fraction(float(a[i + di, j + dj])) for di in range(k) for dj in range(k))
                for i in range(6 - k + 1) for j in range(7 - k + 1))
    # The integer sum converts exactly (< 2^53), so one rounding: the nearest double.
    assert pooled_max(a, k) == float(exact / 9)


def test_closed_form_and_errors():
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    assert pooled_max(a, 1) == 15.0
    assert pooled_max(a, 4) == 7.5
    assert pooled_max(a, 2) == (10 + 11 + 14 + 15) / 4
    with pytest.raises(ValueError, match="does not fit"):
        pooled_max(a, 5)
    with pytest.raises(ValueError, match="2-D"):
        pooled_max(a[None], 2)
