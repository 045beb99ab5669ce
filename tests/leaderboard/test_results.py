"""Result files are checked up front: a bad one is refused with one line and nothing is written.

Also the hostile inputs of issue 11: links (#1), JSON nested 100,000 deep, huge integer literals and
400-digit floats (#9), split ids that are markup (#2).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import leaderboard.results as results_mod
from leaderboard.__main__ import main
from leaderboard.results import ResultError, read_results

from .conftest import CONTRACT, make_result


@pytest.fixture(params=["schema", "own-checks"])
def checker(request, monkeypatch):
    """Run each case with the evaluator's result schema (it ships one) and with the built-in checks alone."""
    if request.param == "own-checks":
        monkeypatch.setattr(results_mod, "_result_schema_path", lambda: None)
    else:
        assert results_mod._result_schema_path() is not None, "the evaluator ships evaluator/schemas/result.schema.json"
    return request.param


def _edit(path, fn):
    obj = json.loads(path.read_text())
    fn(obj)
    path.write_text(json.dumps(obj))


def _build(argv, capsys):
    rc = main(["build", *argv, "--reported", "none"])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


CASES = {
    "missing-mean": (lambda p: _edit(p, lambda o: o.pop("mean")), "mean"),
    "metric-out-of-range": (lambda p: _edit(p, lambda o: o["splits"]["0"].__setitem__("I-AUROC", 1.5)), "I-AUROC"),
    "metric-missing": (lambda p: _edit(p, lambda o: o["mean"].pop("AUPRO")), "AUPRO"),
    "bad-sha": (lambda p: _edit(p, lambda o: o["benchmark"].__setitem__("sha256", "xyz")), "sha256"),
    "panel-escapes": (lambda p: _edit(p, lambda o: o["panels"][0].__setitem__("file", "../x.png")), "panels"),
    "evaluator-not-an-object": (lambda p: p.write_text('{"evaluator": 1}'), "evaluator"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_result_is_rejected_in_one_line(case, checker, tmp_path, capsys):
    res = tmp_path / "results"
    make_result(res, "good.exact", panels=1, splits=("0",), sweeps=False)
    bad = make_result(res, "bad.exact", panels=1, splits=("0",), sweeps=False)
    CASES[case][0](bad)
    out = tmp_path / "board"
    rc, _, err = _build(["--results", str(res), "--out", str(out)], capsys)
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(bad) in lines[0] and CASES[case][1] in lines[0]
    assert "evaluator score" in lines[0]  # says how to make a valid one
    assert not out.exists()  # nothing written


HOSTILE = {
    # issue 11 #9: each of these gave a traceback (RecursionError, ValueError, OverflowError)
    "nested-100000-deep": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "nested-in-a-result": ('{"evaluator": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    "int-5000-digits": ('{"evaluator": {}, "seconds": ' + "9" * 5000 + "}", "5,000 digits"),
    "int-400-digits": ('{"evaluator": {}, "seconds": ' + "9" * 400 + "}", "400 digits"),
    "float-400-digits": ('{"evaluator": {}, "seconds": ' + "9" * 400 + ".5}", "out of range"),
    "nan-literal": ('{"evaluator": {}, "seconds": NaN}', "NaN is not a number JSON allows"),
    "not-json": ("{not json", "not JSON"),
    "not-utf8": (b'{"evaluator": "\xff"}', "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_json_named_directly_is_one_line(case, tmp_path, capsys):
    text, needle = HOSTILE[case]
    bad = tmp_path / "bad.json"
    bad.write_bytes(text if isinstance(text, bytes) else text.encode())
    rc, _, err = _build(["--results", str(bad), "--out", str(tmp_path / "board")], capsys)
    assert rc == 1 and len(err.strip().splitlines()) == 1, err
    assert str(bad) in err and needle in err and "Traceback" not in err
    assert not (tmp_path / "board").exists()


def test_hostile_json_in_a_folder_is_skipped_with_a_note(tmp_path, capsys, own_checks):
    res = tmp_path / "results"
    make_result(res, "good.exact", splits=("0",), sweeps=False)
    for case, (text, _) in HOSTILE.items():
        (res / f"{case}.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    rc, _, err = _build(["--results", str(res), "--out", str(tmp_path / "board"), "--quiet"], capsys)
    assert rc == 0, err
    notes = err.strip().splitlines()
    assert len(notes) == len(HOSTILE)
    for case, (_, needle) in HOSTILE.items():
        line = next(n for n in notes if f"{case}.json" in n)
        assert line.startswith("leaderboard: note: ") and "skipped, not an evaluator result" in line
        if case not in ("not-json", "not-utf8"):
            assert needle in line


def test_split_id_that_is_markup_is_refused(tmp_path, capsys, own_checks):
    res = tmp_path / "results"
    p = make_result(res, "a.exact", splits=("0",), sweeps=False)
    _edit(p, lambda o: o["splits"].__setitem__("<script>x</script>", o["splits"].pop("0")))
    rc, _, err = _build(["--results", str(p), "--out", str(tmp_path / "board")], capsys)
    # Refused by the result schema's split-id pattern where the schema has it, else by the leaderboard's own check.
    why = "does not match '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'" if CONTRACT else "a split id is 1-64 letters"
    assert rc == 1 and why in err and len(err.strip().splitlines()) == 1


# Issue 11 #1: never read through links. Each case used to copy /etc/passwd-like files into the page.
def _secret(tmp_path):
    s = tmp_path / "secret"
    s.mkdir(exist_ok=True)
    (s / "passwd.png").write_bytes(b"\x89PNG\r\n\x1a\nroot:x:0:0:secret")
    (s / "panels").mkdir(exist_ok=True)
    (s / "panels" / "000000000000.png").write_bytes(b"\x89PNG\r\n\x1a\nsecret panel")
    return s


def _no_secret_published(out):
    if out.exists():
        for p in out.rglob("*"):
            assert not (p.is_file() and b"secret" in p.read_bytes()), p


def test_panel_file_that_is_a_link_is_refused(tmp_path, capsys, own_checks):
    secret = _secret(tmp_path)
    res = tmp_path / "results"
    p = make_result(res, "a.exact", panels=1, splits=("0",), sweeps=False)
    f = res / "a.exact_panels" / "0" / "000000000000.png"
    f.unlink()
    f.symlink_to(secret / "passwd.png")
    rc, _, err = _build(["--results", str(res), "--out", str(tmp_path / "board")], capsys)
    assert rc == 1 and len(err.strip().splitlines()) == 1
    assert str(p) in err and "symbolic link" in err
    _no_secret_published(tmp_path / "board")


def test_panel_folder_that_is_a_link_is_refused(tmp_path, capsys, own_checks):
    secret = _secret(tmp_path)
    res = tmp_path / "results"
    make_result(res, "a.exact", panels=1, splits=("0",), sweeps=False)
    folder = res / "a.exact_panels" / "0"
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    folder.symlink_to(secret / "panels")
    rc, _, err = _build(["--results", str(res), "--out", str(tmp_path / "board")], capsys)
    errors = [line for line in err.splitlines() if line.startswith("leaderboard: error: ")]
    assert rc == 1 and len(errors) == 1 and "symbolic link" in errors[0] and "Traceback" not in err
    _no_secret_published(tmp_path / "board")


def test_result_files_and_folders_that_are_links_are_skipped(tmp_path, capsys, own_checks):
    outside = tmp_path / "outside"
    make_result(outside, "x.exact", method="Outsider", splits=("0",), sweeps=False)
    res = tmp_path / "results"
    make_result(res, "a.exact", splits=("0",), sweeps=False)
    (res / "linked.json").symlink_to(outside / "x.exact.json")
    (res / "linked-folder").symlink_to(outside)
    rc, _, err = _build(["--results", str(res), "--out", str(tmp_path / "board")], capsys)
    assert rc == 0, err
    notes = sorted(err.strip().splitlines())
    assert len(notes) == 2 and all("skipped, a symbolic link" in n for n in notes)
    assert "Outsider" not in (tmp_path / "board" / "leaderboard.md").read_text()
    # named directly, a linked result file is refused
    rc, _, err = _build(["--results", str(res / "linked.json"), "--out", str(tmp_path / "board2")], capsys)
    assert rc == 1 and "symbolic link" in err and len(err.strip().splitlines()) == 1


def test_a_link_swapped_in_after_the_check_is_not_followed(tmp_path, own_checks):
    """The panel is re-read without following links when it is copied, not only checked once."""
    from leaderboard.results import read_panel

    secret = _secret(tmp_path)
    res = tmp_path / "results"
    make_result(res, "a.exact", panels=1, splits=("0",), sweeps=False)
    (result,) = read_results([res])
    f = res / "a.exact_panels" / "0" / "000000000000.png"
    f.unlink()
    f.symlink_to(secret / "passwd.png")
    with pytest.raises(ResultError, match="symbolic link"):
        read_panel(result, result.panels[0])


def test_missing_panel_file_is_named(tmp_path):
    res = tmp_path / "results"
    make_result(res, "a.exact", panels=1)
    (res / "a.exact_panels" / "0" / f"{0:012d}.png").unlink()
    with pytest.raises(ResultError, match=r"panels\[0\] \('a.exact_panels/0/000000000000.png'\)"):
        read_results(res)


def test_panel_that_is_not_a_png_is_refused(tmp_path, own_checks):
    res = tmp_path / "results"
    make_result(res, "a.exact", panels=1, splits=("0",), sweeps=False)
    (res / "a.exact_panels" / "0" / f"{0:012d}.png").write_text("<svg onload=alert(1)>")
    with pytest.raises(ResultError, match="is not a PNG file"):
        read_results(res)


def test_empty_or_missing_results(tmp_path):
    with pytest.raises(ResultError, match="no such results folder or file"):
        read_results(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultError, match="holds no evaluator result files"):
        read_results(tmp_path / "empty")


def test_hidden_files_are_not_results(tmp_path):
    res = tmp_path / "results"
    make_result(res, "a.exact")
    (res / ".a.exact.json.partial.json").write_text("{")
    assert [r.key for r in read_results(res)] == ["a.exact.json"]


def test_contract_fields_are_read_and_older_results_accepted(tmp_path, own_checks):
    res = tmp_path / "results"
    make_result(res, "new.ader", profile="ader", contract=True, splits=("3",), aupro_steps=100)
    make_result(res, "old.exact", contract=False)
    new, old = sorted(read_results(res), key=lambda r: r.key)
    assert (new.complete, new.aupro_steps, new.benchmark_split_ids, new.masks, new.ground_truth) == \
        (False, 100, ["0", "1", "2", "3"], "pycocotools", "eval-size")
    assert (old.complete, old.aupro_steps, old.benchmark_split_ids, old.masks) == (None, None, None, None)


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
    assert "Reported in" not in (out / "leaderboard.md").read_text()


def test_cli_bad_reported_file_is_one_line(tmp_path, capsys):
    res = tmp_path / "results"
    make_result(res, "a.exact", splits=("0",), sweeps=False)
    (tmp_path / "paper.csv").write_text("benchmark,method\n")
    rc = main(["build", "--results", str(res), "--out", str(tmp_path / "b"), "--reported", str(tmp_path / "paper.csv")])
    err = capsys.readouterr().err
    assert rc == 1 and len(err.strip().splitlines()) == 1 and "header must be" in err
    assert not (tmp_path / "b").exists()


def test_error_messages_carry_no_control_characters(tmp_path, capsys):
    """A key with a terminal escape sequence is quoted, not sent to the terminal as is."""
    res = tmp_path / "results"
    p = make_result(res, "a.exact", splits=("0",), sweeps=False)
    bad = "\x1b[2J\x1b]0;pwned\x07"

    def edit(o):
        o["splits"][bad] = o["splits"].pop("0")
        o["splits"][bad]["I-AUROC"] = 5  # the schema names the path to it, key and all
    _edit(p, edit)
    rc, _, err = _build(["--results", str(p), "--out", str(tmp_path / "board")], capsys)
    assert rc == 1 and len(err.strip().splitlines()) == 1
    assert "\x1b" not in err and "\x07" not in err
