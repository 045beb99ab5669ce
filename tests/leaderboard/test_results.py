"""Result files are checked up front: a bad one is rejected with one line and nothing is written."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import leaderboard.results as results_mod
from leaderboard.__main__ import main
from leaderboard.results import ResultError, load_results

from .conftest import make_result


@pytest.fixture(params=["schema", "own-checks"])
def checker(request, monkeypatch):
    """Run each case with the evaluator's result schema (when it ships one) and with the built-in checks alone."""
    if request.param == "own-checks":
        monkeypatch.setattr(results_mod, "_result_schema_path", lambda: None)
    elif results_mod._result_schema_path() is None:
        pytest.skip("the evaluator ships no result.schema.json yet")
    return request.param


def _edit(path, fn):
    obj = json.loads(path.read_text())
    fn(obj)
    path.write_text(json.dumps(obj))


CASES = {
    "not-json": (lambda p: p.write_text("{not json"), "not JSON"),
    "missing-mean": (lambda p: _edit(p, lambda o: o.pop("mean")), "mean"),
    "metric-out-of-range": (lambda p: _edit(p, lambda o: o["splits"]["0"].__setitem__("I-AUROC", 1.5)), "I-AUROC"),
    "metric-missing": (lambda p: _edit(p, lambda o: o["mean"].pop("AUPRO")), "AUPRO"),
    "bad-sha": (lambda p: _edit(p, lambda o: o["benchmark"].__setitem__("sha256", "xyz")), "sha256"),
    "panel-escapes": (lambda p: _edit(p, lambda o: o["panels"][0].__setitem__("file", "../x.png")), "panels"),
    "not-an-object": (lambda p: p.write_text("[1, 2]"), "result"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_result_is_rejected_in_one_line(case, checker, tmp_path, capsys):
    res = tmp_path / "results"
    make_result(res, "good.exact", panels=1)
    bad = make_result(res, "bad.exact", panels=1)
    CASES[case][0](bad)
    out = tmp_path / "board"
    rc = main(["build", "--results", str(res), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(bad) in lines[0] and CASES[case][1] in lines[0]
    assert "evaluator score" in lines[0]  # says how to make a valid one
    assert not out.exists()  # nothing written


def test_missing_panel_file_is_named(tmp_path):
    res = tmp_path / "results"
    p = make_result(res, "a.exact", panels=1)
    (res / "a.exact_panels" / "0" / f"{0:012d}.png").unlink()
    with pytest.raises(ResultError, match=r"panels\[0\] lists 'a.exact_panels/0/000000000000.png'"):
        load_results(res)


def test_empty_or_missing_results_folder(tmp_path):
    with pytest.raises(ResultError, match="no such results folder"):
        load_results(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultError, match="holds no"):
        load_results(tmp_path / "empty")


def test_hidden_files_are_not_results(tmp_path):
    res = tmp_path / "results"
    make_result(res, "a.exact")
    (res / ".a.exact.json.partial.json").write_text("{")
    assert [r.rel for r in load_results(res)] == ["a.exact.json"]


def test_cli_error_has_no_traceback_and_keeps_previous_board(tmp_path):
    res = tmp_path / "results"
    make_result(res, "a.exact", splits=("0",), sweeps=False)
    out = tmp_path / "board"
    ok = subprocess.run([sys.executable, "-m", "leaderboard", "build", "--results", str(res), "--out", str(out),
                         "--reported", "none", "--quiet"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (res / "b.exact.json").write_text('{"evaluator": {}}')
    r = subprocess.run([sys.executable, "-m", "leaderboard", "build", "--results", str(res), "--out", str(out),
                        "--reported", "none"], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("leaderboard: error: ") and "b.exact.json" in r.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert "Reported in the paper" not in (out / "leaderboard.md").read_text()


def test_cli_bad_reported_file_is_one_line(tmp_path, capsys):
    res = tmp_path / "results"
    make_result(res, "a.exact", splits=("0",), sweeps=False)
    (tmp_path / "paper.csv").write_text("benchmark,method\n")
    rc = main(["build", "--results", str(res), "--out", str(tmp_path / "b"), "--reported", str(tmp_path / "paper.csv")])
    err = capsys.readouterr().err
    assert rc == 1 and len(err.strip().splitlines()) == 1 and "header must be" in err
    assert not (tmp_path / "b").exists()
