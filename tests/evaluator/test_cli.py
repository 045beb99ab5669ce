"""The ``python -m evaluator`` front door: sub-commands and usage errors."""

from __future__ import annotations

import pytest

from evaluator.cli import main


def test_bench_is_dispatched_to_evaluator_bench(monkeypatch):
    import evaluator.bench

    seen = []
    monkeypatch.setattr(evaluator.bench, "main", lambda argv: seen.append(argv) or 0)
    assert main(["bench", "--n-images", "3", "--size", "8"]) == 0
    assert seen == [["--n-images", "3", "--size", "8"]]


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["score", "sub"], ["validate"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage: python -m evaluator" in capsys.readouterr().err


def test_score_argument_errors_are_one_line(valid_sub, bench_dir, capsys):
    assert main(["score", str(valid_sub), "--benchmark", str(bench_dir), "--panels", "-1"]) == 1
    assert capsys.readouterr().err == "--panels must be >= 0, got -1\n"
    assert main(["score", str(valid_sub), "--benchmark", str(bench_dir), "--profile", "ader", "--pool", "0"]) == 1
    assert capsys.readouterr().err == "--pool must be a positive integer, got 0\n"
    assert not (valid_sub.parent / "results").exists()
