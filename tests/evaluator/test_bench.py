"""python -m evaluator bench: runs, agrees with the reference, reports times and memory."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator.bench import main, synthetic_image
from evaluator.metrics import METRIC_NAMES


def test_synthetic_data_is_deterministic_and_varied():
    a = [synthetic_image(3, i, 48) for i in range(30)]
    b = [synthetic_image(3, i, 48) for i in range(30)]
    for (g1, m1, l1), (g2, m2, l2) in zip(a, b):
        assert l1 == l2 and np.array_equal(g1, g2) and np.array_equal(m1, m2)
    assert a[0][1].dtype == np.float16 and synthetic_image(3, 0, 48, np.float32)[1].dtype == np.float32
    labels = [lab for _, _, lab in a]
    assert 0 < sum(labels) < 30
    assert any(g.any() for g, _, _ in a)
    assert not np.array_equal(synthetic_image(4, 0, 48)[1], a[0][1])


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_bench_runs_and_matches_reference(capsys, dtype):
    pytest.importorskip("scipy")
    assert main(["--n-images", "12", "--size", "40", "--pool", "8", "--dtype", dtype,
                 "--reference", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "accumulator, exact + ader + ader-bench from one pass" in out
    assert "NumPy reference, exact only" in out and "speed-up" in out and "peak RSS" in out
    for name in METRIC_NAMES:
        assert f"  {name} " in out


def test_bench_skips_reference_and_rejects_bad_options(capsys):
    assert main(["--n-images", "3", "--size", "16", "--no-reference", "--quiet"]) == 0
    assert "reference skipped" in capsys.readouterr().out
    assert main(["--n-images", "0", "--quiet"]) == 2
    assert main(["--size", "16", "--pool", "17", "--quiet"]) == 2
    assert "--pool 17 does not fit" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--dtype", "float64"])


def test_python_m_evaluator_bench_is_wired(capsys):
    cli = pytest.importorskip("evaluator.cli")
    assert cli.main(["bench", "--n-images", "2", "--size", "16", "--no-reference", "--quiet"]) == 0
    assert "bench: 2 maps of 16×16 float16" in capsys.readouterr().out


@pytest.mark.parametrize("ground_truth", ["eval-size", "masks"])
def test_coco_split_mode_times_the_whole_command(capsys, tmp_path, ground_truth):
    keep = tmp_path / "case"
    assert main(["--coco-split", "--n-images", "6", "--ground-truth", ground_truth, "--keep", str(keep),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "built 6 maps of 256x256 float16 and 4 masks of 480x640" in out
    assert f"ground truth: {'evaluation-size file' if ground_truth == 'eval-size' else 'mask PNGs'}" in out
    assert "python -m evaluator score: " in out and "s CPU, peak RSS" in out and f"({ground_truth})" in out
    assert (keep / "benchmark" / "benchmark.json").is_file() and (keep / "result0.json").is_file()
