"""The contract between the stages: result files the real evaluator writes build into a leaderboard.

Submissions are written with the public SubmissionWriter into a hand-made
benchmark folder (tests/conftest.py), scored by ``python -m evaluator score``
(a child process, as the main job does), then read by ``leaderboard build``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from benchmark import open_benchmark
from evaluator.submission import SubmissionWriter
from leaderboard.build import build
from leaderboard.results import METRICS
from leaderboard.table import percent


def _submit(folder, bench, name, noise, seed):
    rng = np.random.default_rng(seed)
    with SubmissionWriter(folder, bench, method={"name": name, "paper": f"https://example.org/{name}"},
                          splits=list(bench.split_ids)) as w:
        for sid in bench.split_ids:
            for item in bench.items(sid):
                gt = bench.gt_mask(item).astype(np.float32)
                w.add(sid, item.img_path, gt * (1 - noise) + noise * rng.random(gt.shape, dtype=np.float32))


def test_leaderboard_of_real_evaluator_results(make_benchmark, tmp_path):
    root = make_benchmark(splits=("0", "1"), n_test_normal=4, n_test_anomalous=4, name="coco-ad-demo")
    bench = open_benchmark(root)
    results = tmp_path / "results"
    for name, noise, seed, panels in (("Sharp", 0.3, 0, "1"), ("Blurry", 0.95, 1, "0")):
        sub = tmp_path / "submissions" / name.lower()
        _submit(sub, bench, name, noise, seed)
        r = subprocess.run([sys.executable, "-m", "evaluator", "score", str(sub), "--benchmark", str(root),
                            "--profile", "exact", "--panels", panels, "--quiet",
                            "--out", str(results / f"{name.lower()}.exact.json")],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    out = tmp_path / "board"
    summary = build(results, out, reported=None, quiet=True)  # the paper's rows are tested elsewhere
    assert "plots/coco-ad-demo-sweeps.svg" in summary.files
    assert sum(f.startswith("panels/") for f in summary.files) == 2  # 1 per split of the Sharp result
    sharp = json.loads((results / "sharp.exact.json").read_text())
    md = (out / "leaderboard.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| ") and "[Sharp]" in line)
    cells = [c.strip().strip("*") for c in row.strip("|").split("|")]
    assert cells[1].startswith("[Sharp]")
    assert cells[3:3 + len(METRICS)] == [percent(sharp["mean"][m]) for m in METRICS]
    assert "**" in row  # the sharp maps win at least one column against the blurry ones
    # the two results share the build, the splits and the profile: one group, ranked together
    assert cells[0] in ("1", "2") and md.count("### Scored: exact, splits 0, 1") == 1
