"""The ``python -m evaluator`` front door: sub-commands and usage errors."""

from __future__ import annotations

import sys

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


def _help_texts():
    import argparse

    from evaluator.cli import _parser
    from evaluator.bench import build_parser
    from evaluator.bench_coco import build_parser as coco_parser

    top = _parser()
    subs = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return [top, *subs.choices.values(), build_parser(), coco_parser()]


def test_help_is_plain_text_and_every_positional_is_explained():
    import argparse

    for parser in _help_texts():
        text = parser.format_help()
        assert "``" not in text and ":func:" not in text and ":mod:" not in text, parser.prog
        for action in parser._actions:
            if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"{parser.prog}: positional {action.dest} has no help"


def test_a_bug_prints_its_traceback_and_says_so(valid_sub, bench_dir, capsys, monkeypatch):

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug of ours")

    monkeypatch.setattr(sys.modules["evaluator.score"], "score", broken)
    assert main(["score", str(valid_sub), "--benchmark", str(bench_dir), "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "ZeroDivisionError: a bug of ours" in err
    assert err.rstrip().splitlines()[-1].startswith("python -m evaluator: this is a bug of the evaluator")


def test_an_unreadable_input_is_not_reported_as_cannot_write(valid_sub, bench_dir, bench, tmp_path, capsys):
    item = next(it for it in bench.items("0") if it.mask_path)
    mask = bench_dir / item.mask_path
    mask.unlink()
    mask.mkdir()  # a folder where the mask should be: cannot be read
    out = tmp_path / "r.json"
    assert main(["score", str(valid_sub), "--benchmark", str(bench_dir), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"{mask}: not a regular file") and "cannot write" not in err[0]
    assert not out.exists()


def test_aupro_steps_option(valid_sub, bench_dir, capsys):
    import json

    from evaluator.score import default_out

    assert main(["score", str(valid_sub), "--benchmark", str(bench_dir), "--profile", "ader", "--quiet"]) == 0
    default = json.loads(default_out(valid_sub, "ader").read_text())
    assert default["evaluator"]["aupro_steps"] == 100
    assert main(["score", str(valid_sub), "--benchmark", str(bench_dir), "--profile", "ader",
                 "--aupro-steps", "200", "--quiet"]) == 0
    out = default_out(valid_sub, "ader", None, 200)
    assert out.name == "noise.ader.steps200.json"
    assert json.loads(out.read_text())["evaluator"]["aupro_steps"] == 200
    capsys.readouterr()
    assert main(["score", str(valid_sub), "--benchmark", str(bench_dir), "--aupro-steps", "200"]) == 1
    assert capsys.readouterr().err == "--aupro-steps changes only the ader profile's AUPRO; add --profile ader\n"
    assert main(["score", str(valid_sub), "--benchmark", str(bench_dir), "--profile", "ader-bench", "--pool", "4",
                 "--quiet"]) == 0
    bench_result = json.loads(default_out(valid_sub, "ader-bench", 4).read_text())
    assert bench_result["evaluator"]["aupro_steps"] == 50 and bench_result["evaluator"]["pool"] == 4
