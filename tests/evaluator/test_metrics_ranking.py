"""ROC area, average precision and F1-max against scikit-learn and closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator.metrics import auroc, average_precision, f1_max
from evaluator.metrics.kernels import KeyCounts

sk = pytest.importorskip("sklearn.metrics")


def sk_f1max(y, s):
    p, r, _ = sk.precision_recall_curve(y, s)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = 2 * p * r / (p + r)
    return float(np.nanmax(f))


@pytest.mark.parametrize("seed", range(12))
def test_random_scores_with_ties_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    y = rng.random(n) < rng.uniform(0.05, 0.9)
    y[0], y[1] = True, False
    s = rng.normal(size=n) + y * rng.uniform(0, 2)
    if seed % 2:
        s = np.round(s * 3) / 3  # heavy ties
    if seed % 3 == 0:
        s[rng.integers(0, n)] = 6e4  # outlier (float16 max is 65504)
    s = s.astype([np.float16, np.float32, np.float64][seed % 3])
    assert auroc(y, s) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-9)
    assert average_precision(y, s) == pytest.approx(sk.average_precision_score(y, s), abs=1e-9)
    assert f1_max(y, s) == pytest.approx(sk_f1max(y, s), abs=1e-9)


def test_closed_forms():
    # All ties: the ROC is the diagonal; AP and F1 are those of predicting everything.
    y = np.array([0, 1, 1, 0, 1, 0, 0, 0])
    s = np.full(8, 0.7)
    assert auroc(y, s) == 0.5
    assert average_precision(y, s) == pytest.approx(3 / 8)
    assert f1_max(y, s) == pytest.approx(2 * 3 / (2 * 3 + 5))
    # A perfect detector.
    s = y + 0.1 * np.arange(8)
    assert auroc(y, s) == average_precision(y, s) == f1_max(y, s) == 1.0
    # The inverse ranking.
    assert auroc(y, -s) == 0.0
    # Mann-Whitney with one tie between classes: (3 + 0.5) / (2 * 2).
    assert auroc([0, 0, 1, 1], [1, 2, 2, 3]) == pytest.approx(3.5 / 4)


def test_undefined_is_none():
    assert auroc([1, 1], [0.1, 0.2]) is None
    assert auroc([0, 0], [0.1, 0.2]) is None
    assert average_precision([0, 0], [0.1, 0.2]) is None
    assert f1_max([0, 0], [0.1, 0.2]) is None
    assert auroc([], []) is None
    # Only anomalous samples: precision is 1 everywhere.
    assert average_precision([1, 1], [0.1, 0.2]) == 1.0


def test_input_errors():
    with pytest.raises(ValueError, match="y_true has 2 values but y_score has 3"):
        auroc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="0/1"):
        auroc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        auroc([0, 1], [0.1, np.nan])


def test_key_counts_merge_and_signed_zero():
    a = KeyCounts.from_arrays([0, 1, 1], [-0.0, 0.0, 2.0], weight=[0, 0.5, 0.25], n_regions=1)
    assert a.values.tolist() == [0.0, 2.0] and a.pos.tolist() == [1, 1] and a.neg.tolist() == [1, 0]
    b = KeyCounts.from_arrays([0, 1], [1.0, 2.0], weight=[0, 1.0], n_regions=1)
    m = a.merged(b)
    assert m.values.tolist() == [0.0, 1.0, 2.0]
    assert m.pos.tolist() == [1, 0, 2] and m.neg.tolist() == [1, 1, 0]
    assert m.weight.tolist() == [0.5, 0.0, 1.25] and m.n_regions == 2
