"""The README's bring-your-own snippet runs as printed and writes a valid submission."""

from __future__ import annotations

import re
from pathlib import Path

import evaluator

README = Path(__file__).resolve().parents[2] / "README.md"


def _snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    (code,) = [b for b in blocks if "SubmissionWriter(" in b and "anomaly_map" in b]
    return code


def test_readme_snippet_writes_a_valid_submission(make_benchmark, tmp_path, monkeypatch):
    bench = make_benchmark(splits=("0", "1"), n_test_normal=2, n_test_anomalous=2)
    monkeypatch.chdir(tmp_path)  # the snippet writes submissions/my-method relative to the working folder
    code = _snippet().replace('"runs/demo/benchmark"', repr(str(bench)))
    assert code != _snippet()
    exec(compile(code, str(README), "exec"), {})
    sub = tmp_path / "submissions" / "my-method"
    assert evaluator.validate(sub, bench) == []
    assert sorted(p.name for p in sub.iterdir()) == ["0", "1", "submission.json"]
