"""The bring-your-own example runs as documented, end to end, on the demo benchmark (README, issue 12)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "bring_your_own.py"


def test_example_builds_scores_and_puts_the_result_on_the_board(tmp_path):
    spec = {}
    exec(compile(EXAMPLE.read_text(), str(EXAMPLE), "exec"), spec)  # its helpers, checked against NumPy
    a = np.random.default_rng(0).random((9, 11)).astype(np.float32)
    brute = np.pad(a, 1, mode="edge")
    expected = np.mean([brute[i:i + 9, j:j + 11] for i in range(3) for j in range(3)], axis=0)
    assert np.allclose(spec["box_average"](a, 3), expected, atol=1e-6)

    w = tmp_path / "demo"
    r = subprocess.run([sys.executable, str(EXAMPLE), "--workdir", str(w), "--quiet"], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads((w / "results" / "colour-distance.exact.json").read_text())
    assert result["submission"]["method"]["name"] == "Colour distance"
    assert sorted(result["splits"]) == ["0", "1", "2", "3"] and len(result["panels"]) == 8
    # a model-free map is a weak but real detector on the demo's pasted objects
    assert 0.5 < result["mean"]["I-AUROC"] <= 1.0 and 0.5 < result["mean"]["P-AUROC"] <= 1.0
    board = w / "leaderboard"
    assert "Colour distance" in (board / "leaderboard.md").read_text()
    csv = pd.read_csv(board / "leaderboard.csv", dtype={"split": str})
    assert csv.method.tolist() == ["Colour distance"] * 4
    assert csv["I-AUROC"].tolist() == [result["splits"][s]["I-AUROC"] for s in "0123"]
    assert r.stdout.strip().splitlines()[-1].startswith("board: file://")
