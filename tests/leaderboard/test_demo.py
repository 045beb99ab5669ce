"""The main job's plan and step skipping, with a fake runner standing in for the child processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leaderboard import demo


class FakeRunner:
    """Records each command and writes the outputs the real tool would (or fails on request)."""

    def __init__(self, workdir: Path, fail: dict | None = None):
        self.w = workdir.resolve()
        self.calls: list[tuple] = []
        self.fail = fail or {}

    def __call__(self, argv: tuple) -> int:
        self.calls.append(argv)
        key = " ".join(argv[:2])
        if key in self.fail:
            return self.fail[key]
        a = list(argv)

        def after(flag):
            return Path(a[a.index(flag) + 1])

        def touch(p: Path):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(key)

        if argv[0] == "benchmark.build":
            touch(after("--out") / "benchmark.json")
        elif argv[0].startswith("baselines."):
            sub = after("--submission")
            assert not sub.exists(), "the baseline refuses to overwrite a submission"
            touch(sub / "submission.json")
        elif argv[:2] == ("evaluator", "score"):
            touch(after("--out"))
        elif argv[0] == "leaderboard":
            touch(after("--out") / "index.html")
        return 0

    def names(self) -> list[str]:
        return [" ".join(c[:2]) for c in self.calls]


# the job's commands: the benchmark, then train/predict, validate and two scores per baseline, the leaderboard
ALL = (["benchmark.build demo"]
       + [c for module, _ in demo.BASELINES
          for c in (f"{module} run", "evaluator validate", "evaluator score", "evaluator score")]
       + ["leaderboard build"])
N = len(ALL)


def _age_all(root: Path) -> None:
    """Give every file one old mtime, so that whatever is written next is newer (mtime resolution varies)."""
    t = time.time() - 100
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, (t, t))


def test_plan_matches_the_documented_commands(tmp_path):
    job = demo.plan(tmp_path / "w")
    w = (tmp_path / "w").resolve()
    argvs = [s.argv for s in job.steps]
    assert argvs[0] == ("benchmark.build", "demo", "--out", str(w / "benchmark"))
    assert argvs[1] == ("baselines.invad", "run", "--benchmark", str(w / "benchmark"), "--preset", "invad-tiny",
                        "--out", str(w / "runs/invad-tiny"), "--submission", str(w / "submissions/invad-tiny"))
    assert argvs[2] == ("evaluator", "validate", str(w / "submissions/invad-tiny"), "--benchmark", str(w / "benchmark"))
    assert argvs[3] == ("evaluator", "score", str(w / "submissions/invad-tiny"), "--benchmark", str(w / "benchmark"),
                        "--profile", "exact", "--panels", "2", "--out", str(w / "results/invad-tiny.exact.json"))
    assert argvs[4][argvs[4].index("--profile") + 1] == "ader"
    assert argvs[4][-1] == str(w / "results/invad-tiny.ader.json")
    assert {("baselines.rd", "rd-tiny"), ("baselines.rdpp", "rdpp-tiny")} <= set(demo.BASELINES)
    for k, (module, preset) in enumerate(demo.BASELINES):
        assert argvs[1 + 4 * k][:2] == (module, "run") and argvs[1 + 4 * k][argvs[1 + 4 * k].index("--preset") + 1] \
            == preset
    assert argvs[-1] == ("leaderboard", "build", "--results", str(w / "results"), "--out", str(w / "leaderboard"))
    assert job.page == w / "leaderboard/index.html"
    quiet = demo.plan(tmp_path / "w", quiet=True)
    assert [s.argv[-1] for s in quiet.steps] == (
        ["--quiet"] + ["--quiet", str(w / "benchmark"), "--quiet", "--quiet"] * len(demo.BASELINES) + ["--quiet"])


def test_runs_everything_then_skips_everything(tmp_path):
    lines = []
    steps = demo.plan(tmp_path).steps
    run = FakeRunner(tmp_path)
    assert demo.run_job(steps, run, say=lines.append) == 0
    assert run.names() == ALL
    assert any(line.startswith(f"==> [1/{N}] build the demo benchmark (0:00:00 elapsed)") for line in lines)
    rerun = FakeRunner(tmp_path)
    lines.clear()
    assert demo.run_job(steps, rerun, say=lines.append) == 0
    assert rerun.calls == []
    assert sum("up to date, skipped" in line for line in lines) == N


def test_resumes_after_the_last_finished_step(tmp_path):
    steps = demo.plan(tmp_path).steps
    first = FakeRunner(tmp_path, fail={"evaluator score": 3})
    lines = []
    assert demo.run_job(steps, first, say=lines.append) == 3
    assert first.names() == ALL[:4]  # stopped at the first score
    assert lines[-1] == (f"demo: step 4/{N} 'score invad-tiny with the exact profile' failed with exit code 3 "
                         "(its output is above); fix it and rerun to resume")
    second = FakeRunner(tmp_path)
    assert demo.run_job(steps, second, say=lambda s: None) == 0
    assert second.names() == ALL[2:]  # benchmark and baseline are not redone


def test_a_changed_result_rebuilds_only_the_leaderboard(tmp_path):
    steps = demo.plan(tmp_path).steps
    demo.run_job(steps, FakeRunner(tmp_path), say=lambda s: None)
    _age_all(tmp_path)
    (tmp_path / "results/invad-tiny.ader.json").write_text("rescored")  # newer than index.html now
    run = FakeRunner(tmp_path)
    demo.run_job(steps, run, say=lambda s: None)
    assert run.names() == ["leaderboard build"]


def test_a_missing_result_revalidates_and_rescores_only_it(tmp_path):
    steps = demo.plan(tmp_path).steps
    demo.run_job(steps, FakeRunner(tmp_path), say=lambda s: None)
    (tmp_path / "results/invad-tiny.exact.json").unlink()
    run = FakeRunner(tmp_path)
    demo.run_job(steps, run, say=lambda s: None)
    assert run.names() == ["evaluator validate", "evaluator score", "leaderboard build"]
    assert "exact" in run.calls[1]


def test_a_rebuilt_benchmark_reruns_everything_after_it(tmp_path):
    steps = demo.plan(tmp_path).steps
    demo.run_job(steps, FakeRunner(tmp_path), say=lambda s: None)
    _age_all(tmp_path)
    (tmp_path / "benchmark/benchmark.json").unlink()
    run = FakeRunner(tmp_path)
    lines = []
    assert demo.run_job(steps, run, say=lines.append) == 0
    assert run.names() == ALL  # the old submission was removed first, so the baseline could write a new one
    assert any("removing the out-of-date" in line and "submissions" in line for line in lines)


def test_a_step_that_writes_nothing_is_an_error(tmp_path):
    steps = demo.plan(tmp_path).steps
    assert demo.run_job(steps[:1], lambda argv: 0, say=lambda s: None) == 1


def test_signal_exit_codes_follow_the_shell(tmp_path):
    steps = demo.plan(tmp_path).steps
    lines = []
    assert demo.run_job(steps, lambda argv: -9, say=lines.append) == 137
    assert "'build the demo benchmark' failed with exit code 137" in lines[-1]


def test_quiet_prints_only_problems(tmp_path):
    steps = demo.plan(tmp_path, quiet=True).steps
    lines = []
    assert demo.run_job(steps, FakeRunner(tmp_path), quiet=True, say=lines.append) == 0
    assert lines == []


def test_cli_failing_step_one_line_and_exit_code(tmp_path):
    """Through the real entry point: the first child fails (its output dir is a file), the job stops there."""
    w = tmp_path / "w"
    w.mkdir()
    (w / "benchmark").write_text("not a folder")
    r = subprocess.run([sys.executable, "-m", "leaderboard.demo", "--workdir", str(w), "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith(f"demo: step 1/{N} 'build the demo benchmark' failed with exit code ")
    assert last.endswith(f"{r.returncode} (its output is above); fix it and rerun to resume")
    assert not (w / "submissions").exists()


@pytest.mark.parametrize("argv", [["--help"]])
def test_cli_help(argv):
    r = subprocess.run([sys.executable, "-m", "leaderboard.demo", *argv], capture_output=True, text=True)
    assert r.returncode == 0 and "--workdir" in r.stdout
