"""ClassAccumulator: all 11 metrics of every profile from one pass, against the references."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator import reference as ref
from evaluator.metrics import METRIC_NAMES, PROFILES, ClassAccumulator, pixel_metrics
from tests.evaluator.test_metrics_cases import random_class, stacked

pytest.importorskip("scipy")


def fill(masks, maps, labels, scores=None, pool=None):
    acc = ClassAccumulator(pool=pool)
    for i, (m, a, lab) in enumerate(zip(masks, maps, labels)):
        acc.add(m, a, lab, None if scores is None else scores[i])
    return acc


def assert_same(got, want):
    assert list(got) == list(METRIC_NAMES)
    for k in METRIC_NAMES:
        if want[k] is None:
            assert got[k] is None, k
        else:
            assert got[k] == pytest.approx(want[k], abs=1e-9), k
            assert type(got[k]) is float


@pytest.mark.parametrize("seed", range(10))
def test_random_classes_match_reference(seed):
    dtype = (np.float16, np.float32)[seed % 2]
    masks, maps, labels = random_class(seed + 1000, n=int(4 + seed), dtype=dtype,
                                       ties=seed % 3 != 2, mixed=seed in (4, 7))
    pool = (None, 3, 5)[seed % 3]
    scores = None
    if seed in (3, 8):
        scores = np.random.default_rng(seed).normal(size=len(maps)).round(1)
    acc = fill(masks, maps, labels, scores, pool)
    for profile in PROFILES:  # the list of maps keeps each map's dtype (pooling)
        assert_same(acc.result(profile),
                    ref.evaluate(masks, maps, labels, scores, profile=profile, pool=pool))
    assert acc.n_images == len(maps) and acc.n_anomalous == int(labels.sum())


def test_exact_takes_the_meta_label_ader_the_mask():
    masks, maps, labels = random_class(11, n=10)
    empty_anomalous = [i for i in range(10) if labels[i] and not masks[i].any()]
    assert empty_anomalous
    acc = fill(masks, maps, labels)
    scores = [float(np.max(m)) for m in maps]
    got = acc.result()["I-AUROC"]
    assert got == pytest.approx(ref.auroc(labels, scores))
    from_masks = ref.auroc(masks.any(axis=(1, 2)), scores)
    assert got != pytest.approx(from_masks)
    # ADer's gt_sp = gt_px.max(): the empty-mask images count as normal, and the warnings say how many.
    for profile in ("ader", "ader-bench"):
        assert acc.result(profile)["I-AUROC"] == pytest.approx(from_masks)
        assert acc.labels(profile).tolist() == masks.any(axis=(1, 2)).astype(int).tolist()
        assert (f"{len(empty_anomalous)} image(s) anomalous by the meta have an empty mask at the evaluation size; "
                f"profile {profile} counts them as normal") in " ".join(acc.warnings(profile))
    assert not any("empty mask" in w for w in acc.warnings("exact"))


def test_perfect_detector_scores_one():
    rng = np.random.default_rng(0)
    masks = np.zeros((6, 20, 20), bool)
    masks[1, 3:8, 4:12] = True
    masks[3, 10:18, 10:14] = True
    masks[3, 0, 0] = True
    masks[4, 15:, :5] = True
    labels = masks.any(axis=(1, 2)).astype(int)
    maps = (rng.random(masks.shape) * 0.4 + masks).astype(np.float16)
    acc = fill(masks, maps, labels)
    for profile in PROFILES:
        r = acc.result(profile)
        for k in METRIC_NAMES:
            if k == "mF1_.2_.8" or k.startswith("mAcc") or k.startswith("mIoU_"):
                continue  # the fixed thresholds may cut into the normal range
            if (profile, k) == ("ader-bench", "P-AP"):
                # ADEval's PR curve starts at the recall of its top bin, not at 0.
                assert r[k] == pytest.approx(ref.adeval_binned(masks, maps)["P-AP"], abs=1e-12) and r[k] < 0.999
                continue
            # ADer's 1e-8 epsilons keep its thresholded metrics just below 1.
            assert r[k] == pytest.approx(1.0, abs=1e-12 if profile == "exact" else 1e-7), (profile, k)
    assert acc.warnings() == [] and acc.warnings("ader") == [] and acc.warnings("ader-bench") == []


def test_ader_pooled_image_score():
    masks, maps, labels = random_class(21, n=8, dtype=np.float32)
    acc = fill(masks, maps, labels, pool=4)
    np.testing.assert_array_equal(acc.image_scores("ader"), [ref.pooled_max(m, 4) for m in maps])
    np.testing.assert_array_equal(acc.image_scores("exact"), [float(np.max(m)) for m in maps])
    # A given score wins in both profiles.
    acc = fill(masks, maps, labels, scores=np.arange(8.0), pool=4)
    np.testing.assert_array_equal(acc.image_scores("ader"), np.arange(8.0))


def test_no_anomalous_image_and_empty_class():
    acc = ClassAccumulator()
    assert all(v is None for v in acc.result().values())
    assert acc.warnings() == [f"{k}: undefined, the class has no test image" for k in METRIC_NAMES]
    rng = np.random.default_rng(3)
    for _ in range(3):
        acc.add(np.zeros((5, 5), bool), rng.random((5, 5)).astype(np.float32), 0)
    r = acc.result()
    assert all(v is None for v in r.values())
    w = acc.warnings()
    assert w[0] == "I-AUROC: undefined, the class has no anomalous image"
    assert w[3] == "AUPRO: undefined, the class has no anomalous pixel"
    acc2 = ClassAccumulator()
    acc2.add(np.ones((3, 3), bool), rng.random((3, 3)).astype(np.float32), 1)
    r = acc2.result()
    assert r["I-AUROC"] is None and r["I-AP"] == 1.0 and r["P-AP"] == 1.0
    assert r["P-AUROC"] is None and r["AUPRO"] is None
    assert "I-AUROC: undefined, the class has no normal image" in acc2.warnings()
    assert "AUPRO: undefined, the class has no normal pixel" in acc2.warnings()


def test_results_refresh_after_add():
    masks, maps, labels = random_class(8, n=8)
    acc = fill(masks[:4], maps[:4], labels[:4])
    first = acc.result()
    for m, a, lab in zip(masks[4:], maps[4:], labels[4:]):
        acc.add(m, a, lab)
    assert acc.result() != first
    assert_same(acc.result(), ref.evaluate(masks, stacked(maps), labels))


def test_bad_input_is_rejected_and_changes_nothing():
    acc = ClassAccumulator(pool=4)
    gt = np.zeros((8, 8), bool)
    gt[2:5, 2:5] = True
    amap = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    acc.add(gt, amap, 1)
    acc.add(~gt, amap, 0)
    before = acc.result("ader")
    bad = amap.copy()
    bad[0, 0] = np.nan
    cases = [
        ((gt, bad, 1), ValueError, "non-finite"),
        ((gt, amap.astype(np.float64), 1), TypeError, "float16, float32 or uint16"),
        ((gt.astype(np.uint8), amap, 1), TypeError, "boolean"),
        ((gt[:4], amap, 1), ValueError, "shape"),
        ((gt[None], amap[None], 1), ValueError, "2-D"),
        ((gt, amap, 2), ValueError, "label must be 0 or 1"),
        ((gt, amap, 1, float("inf")), ValueError, "score must be finite"),
        ((gt, amap, 1, "high"), TypeError, "score must be a number"),
        ((gt[:3, :3], amap[:3, :3], 1), ValueError, "pool size 4"),
    ]
    for args, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            acc.add(*args)
    assert acc.n_images == 2 and acc.result("ader") == before
    with pytest.raises(ValueError, match="pool"):
        ClassAccumulator(pool=0)
    with pytest.raises(ValueError, match="unknown profile"):
        acc.result("fast")


def test_non_contiguous_inputs():
    masks, maps, labels = random_class(4, n=5, dtype=np.float32)
    acc = fill([m.T for m in masks], [a.T for a in maps], labels)
    assert_same(acc.result(), ref.evaluate(np.transpose(masks, (0, 2, 1)),
                                           np.transpose(stacked(maps), (0, 2, 1)), labels))


def test_pixel_metrics_function():
    masks, maps, labels = random_class(9, n=6)
    r = pixel_metrics(masks, maps)
    want = ref.evaluate(masks, stacked(maps), labels)
    assert set(r) == set(METRIC_NAMES) - {"I-AUROC", "I-AP", "I-F1max"}
    for k in r:
        assert r[k] == pytest.approx(want[k], abs=1e-9)
    with pytest.raises(ValueError, match="6 masks but 5 maps"):
        pixel_metrics(masks, maps[:5])


def test_png_codes_use_the_dense_table_and_equal_their_values():
    """uint16 maps are 16-bit PNG codes c of value float32(c) / 65535: counted in a fixed table of
    65,536 keys (no per-pixel float32 storage), with the metrics of those values."""
    masks, maps, labels = random_class(41, n=9, dtype=np.float32, ties=False)
    codes = [np.round((m - m.min()) / (m.max() - m.min()) * 65535).astype(np.uint16) for m in maps]
    values = np.stack([ref.png_values(c) for c in codes])
    acc = fill(masks, codes, labels, pool=3)
    for profile in PROFILES:
        assert_same(acc.result(profile), ref.evaluate(masks, codes, labels, profile=profile, pool=3))
    assert_same(acc.result(), ref.evaluate(masks, values, labels))  # the values themselves, as float32 maps
    assert set(acc._pixels._dense) == {"png"} and not acc._pixels._negs
    np.testing.assert_array_equal(acc.image_scores("ader"), [ref.pooled_max(c, 3) for c in codes])
    # Mixed with float16 and float32 maps in one class: merged by value.
    mixed = [codes[i] if i % 3 == 0 else values[i].astype(np.float32 if i % 3 == 1 else np.float16) for i in range(9)]
    as_values = np.stack([ref.map_values(m).astype(np.float64) for m in mixed])
    assert_same(fill(masks, mixed, labels).result(), ref.evaluate(masks, as_values, labels))


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_a_class_across_staging_batches_and_chunk_boundaries(monkeypatch, dtype):
    """Tiny staging batches (one image per lane) and key chunks of 300 entries: 37 images
    flush in 5 batches and the float32 keys span many chunks; the metrics do not change."""
    from evaluator.metrics import kernels

    monkeypatch.setattr(kernels, "STAGE_BYTES", 1)
    monkeypatch.setattr(kernels, "CHUNK", 300)
    assert kernels.batch_size(24, 20, 4) == kernels.LANES
    masks, maps, labels = random_class(51, n=37, dtype=dtype, ties=False)
    acc = fill(masks, maps, labels, pool=4)
    assert acc._pixels._n_flushed == 32 and acc._pixels._nb == 5  # four full batches, one staged
    if dtype == np.float32:
        assert len(acc._pixels._negs) > 1 and len(acc._pixels._poss) > 1
    for profile in PROFILES:
        assert_same(acc.result(profile), ref.evaluate(masks, maps, labels, profile=profile, pool=4))
