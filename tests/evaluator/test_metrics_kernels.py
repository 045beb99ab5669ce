"""The order-preserving keys and the streamed table against plain NumPy counting."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator.metrics.kernels import F16_VALUES, KeyCounts, PixelCounter, f32_key_values
from tests.evaluator.test_metrics_cases import random_class, stacked


def test_every_finite_float16_has_its_own_ordered_key():
    bits = np.arange(65536, dtype=np.uint16)
    values = bits.view(np.float16)
    finite = np.isfinite(values) & (bits != 0x8000)  # -0 is folded onto +0
    table = F16_VALUES
    keyed = np.sort(table[np.isfinite(table)])
    assert keyed.size == finite.sum() + 1  # + the (unused) -0 key
    assert np.all(np.diff(table[~np.isnan(table)]) >= 0)
    assert set(values[finite].astype(np.float64)) == set(table[np.isfinite(table)])


def test_float32_keys_are_ordered():
    rng = np.random.default_rng(0)
    v = np.concatenate((rng.normal(size=2000) * 10.0 ** rng.integers(-30, 30, 2000),
                        [0.0, -0.0, np.finfo(np.float32).max, -np.finfo(np.float32).max])).astype(np.float32)
    counter = PixelCounter()
    counter.add(np.zeros((1, v.size), bool), v[None])
    kc = counter.counts()
    np.testing.assert_array_equal(kc.values, np.unique(v.astype(np.float64)))
    assert f32_key_values(np.array([0x80000000]))[0] == 0.0


@pytest.mark.parametrize("dtype,mixed", [(np.float16, False), (np.float32, False), (np.float16, True)])
def test_streamed_table_equals_numpy_counts(dtype, mixed):
    pytest.importorskip("scipy")
    from evaluator.reference import pro_weights

    masks, maps, _ = random_class(7, n=15, dtype=dtype, mixed=mixed)
    counter = PixelCounter()
    for m, a in zip(masks, maps):
        counter.add(m, a)
    kc = counter.counts()
    weights, n_regions = pro_weights(masks)
    expected = KeyCounts.from_arrays(masks, stacked(maps), weights, n_regions)
    np.testing.assert_array_equal(kc.values, expected.values)
    np.testing.assert_array_equal(kc.pos, expected.pos)
    np.testing.assert_array_equal(kc.neg, expected.neg)
    np.testing.assert_allclose(kc.weight, expected.weight, rtol=0, atol=1e-12)
    assert kc.n_regions == n_regions
    # Asking twice (the float32 buffers are sorted in place) gives the same table.
    counter._cache = None
    again = counter.counts()
    np.testing.assert_array_equal(again.pos, kc.pos)
    np.testing.assert_array_equal(again.weight, kc.weight)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_non_finite_map_is_rejected_and_counts_nothing(dtype):
    counter = PixelCounter()
    gt = np.zeros((4, 4), bool)
    gt[1:3, 1:3] = True
    counter.add(gt, np.arange(16, dtype=dtype).reshape(4, 4))
    before = counter.counts()
    for bad in (np.nan, np.inf, -np.inf):
        a = np.ones((4, 4), dtype)
        a[2, 2] = bad
        with pytest.raises(ValueError, match="non-finite"):
            counter.add(gt, a)
    after = counter.counts()
    np.testing.assert_array_equal(after.pos, before.pos)
    np.testing.assert_array_equal(after.neg, before.neg)
    assert after.n_regions == before.n_regions == 1


def test_mixed_shapes_and_dtypes_in_one_class():
    pytest.importorskip("scipy")
    from evaluator.reference import pro_weights

    parts = [random_class(s, n=7, shape=shape, dtype=dt)
             for s, shape, dt in [(1, (24, 20), np.float16), (2, (20, 24), np.float32),
                                  (3, (24, 20), np.float16), (4, (9, 31), np.float32)]]
    counter = PixelCounter()
    for masks, maps, _ in parts:
        for m, a in zip(masks, maps):
            counter.add(m, a)
    kc = counter.counts()
    ys, vs, ws, n_regions = [], [], [], 0
    for masks, maps, _ in parts:
        w, n = pro_weights(masks)
        ys.append(masks.ravel())
        vs.append(stacked(maps).ravel())
        ws.append(w.ravel())
        n_regions += n
    expected = KeyCounts.from_arrays(np.concatenate(ys), np.concatenate(vs), np.concatenate(ws), n_regions)
    np.testing.assert_array_equal(kc.values, expected.values)
    np.testing.assert_array_equal(kc.pos, expected.pos)
    np.testing.assert_array_equal(kc.neg, expected.neg)
    np.testing.assert_allclose(kc.weight, expected.weight, rtol=0, atol=1e-12)
    assert kc.n_regions == n_regions
    assert counter.image_max.tolist() == [float(np.max(a)) for _, maps, _ in parts for a in maps]


def test_results_do_not_depend_on_thread_count():
    import numba

    from evaluator.metrics import ClassAccumulator

    masks, maps, labels = random_class(12, n=40, dtype=np.float16)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, before}):
            numba.set_num_threads(threads)
            acc = ClassAccumulator(pool=3)
            for m, a, lab in zip(masks, maps, labels):
                acc.add(m, a, lab)
            results.append((acc.result("exact"), acc.result("ader"), acc._pixels.counts().weight.tobytes()))
    finally:
        numba.set_num_threads(before)
    assert all(r == results[0] for r in results)
